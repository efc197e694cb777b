//! The driver of `bench/cri-sandbox.sh`: pod sandbox start through
//! containerd's CRI plugin with different sandbox images, side by side.
//!
//! ```text
//! cri-sandbox ROUNDS COUNT NAME=ARCHIVE=BINARY...
//! ```
//!
//! For each image (an OCI archive naming itself NAME, whose entrypoint is
//! BINARY) it starts a private containerd (`testkit::containerd`) with the
//! image as its `sandbox_image`, all of them at once. Then ROUNDS rounds,
//! interleaved across the images: RunPodSandbox of a host-network pod, then
//! PodSandboxStatus until READY, timed together (the kubelet's "sandbox
//! ready"), then StopPodSandbox + RemovePodSandbox (not timed). Then, one
//! image at a time, COUNT sandboxes at once: the summed VmRSS and Pss
//! (`/proc/PID/smaps_rollup`) of their processes, once every one runs
//! BINARY, and of their shims. Results go to stdout as Markdown table rows
//! (start: median, 10th–90th percentile; memory: sums over COUNT, and per
//! sandbox); progress to stderr.
//!
//! Everything is removed on the way out (each daemon's guard, then its
//! directory), also after a failure.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use k8s_cri::v1 as cri;
use testkit::containerd::{self, Containerd, RuntimeClient};
use testkit::{pod_uid, unique_name, wait_until};

struct Image {
    name: String,
    binary: Vec<u8>,
    // Declared before `dir`: the daemon stops before its directory goes.
    ctd: Containerd,
    dir: Dir,
}

/// A directory removed on drop.
struct Dir(PathBuf);

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: cri-sandbox ROUNDS COUNT NAME=ARCHIVE=BINARY...";
    let (Some(rounds), Some(count)) = (
        args.first().and_then(|a| a.parse::<usize>().ok()),
        args.get(1).and_then(|a| a.parse::<usize>().ok()),
    ) else {
        eprintln!("{usage}");
        std::process::exit(2);
    };
    let mut images = Vec::new();
    for spec in &args[2..] {
        let parts: Vec<&str> = spec.splitn(3, '=').collect();
        let [name, archive, binary] = parts[..] else {
            eprintln!("{usage}");
            std::process::exit(2);
        };
        let dir = Dir(std::env::temp_dir().join(unique_name()));
        std::fs::create_dir(&dir.0).expect("make the daemon's directory");
        let mut ctd = Containerd::start(&dir.0, Some(&containerd::cri_section(&dir.0, name)));
        ctd.import(Path::new(archive), name);
        images.push(Image {
            name: name.to_owned(),
            binary: std::fs::read(binary).expect("read the image's binary"),
            ctd,
            dir,
        });
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    rt.block_on(async {
        let mut clients = Vec::new();
        for image in &images {
            clients.push(image.ctd.runtime_client().await);
        }
        // One unmeasured round each: the first start pays for loading.
        let mut times: Vec<Vec<f64>> = vec![Vec::new(); images.len()];
        for round in 0..=rounds {
            for (i, image) in images.iter().enumerate() {
                let (ms, id) = run_until_ready(image, &mut clients[i]).await;
                if round > 0 {
                    times[i].push(ms);
                }
                stop_remove(&mut clients[i], &id).await;
            }
            eprint!("\rround {round}/{rounds}");
        }
        eprintln!();
        for (i, image) in images.iter().enumerate() {
            let t = &mut times[i];
            t.sort_by(f64::total_cmp);
            let memory = hundred(image, &mut clients[i], count).await;
            let each = |kib: u64| kib as f64 / count.max(1) as f64;
            println!(
                "| {} | {} B | {:.1} ms ({:.1}–{:.1}) | {} KiB ({:.1} each) | {} KiB ({:.1} each) | {} KiB ({:.0} each) |",
                image.name,
                image.binary.len(),
                percentile(t, 50),
                percentile(t, 10),
                percentile(t, 90),
                memory.rss,
                each(memory.rss),
                memory.pss,
                each(memory.pss),
                memory.shim_pss,
                each(memory.shim_pss),
            );
        }
    });
    drop(images);
}

fn percentile(sorted: &[f64], p: usize) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[(sorted.len() - 1) * p / 100]
}

/// RunPodSandbox, then PodSandboxStatus until READY: the milliseconds
/// it took, and the sandbox's ID.
async fn run_until_ready(image: &Image, client: &mut RuntimeClient) -> (f64, String) {
    let uid = pod_uid();
    let config = containerd::host_network_pod(
        "bench",
        &uid,
        image.ctd.cgroup_parent(),
        &image.dir.0.join("logs"),
    );
    let start = Instant::now();
    let (id, _) = containerd::run_pod_sandbox(client, config).await;
    (start.elapsed().as_secs_f64() * 1000.0, id)
}

async fn stop_remove(client: &mut RuntimeClient, id: &str) {
    testkit::cri_call!(
        client,
        stop_pod_sandbox,
        cri::StopPodSandboxRequest {
            pod_sandbox_id: id.to_owned(),
        }
    );
    testkit::cri_call!(
        client,
        remove_pod_sandbox,
        cri::RemovePodSandboxRequest {
            pod_sandbox_id: id.to_owned(),
        }
    );
}

struct Memory {
    rss: u64,
    pss: u64,
    shim_pss: u64,
}

/// `count` sandboxes at once: the summed memory of their processes (once
/// each runs the image's binary) and of their shims; then all removed.
async fn hundred(image: &Image, client: &mut RuntimeClient, count: usize) -> Memory {
    let mut sandboxes = Vec::new();
    for _ in 0..count {
        let config = containerd::host_network_pod(
            "bench",
            &pod_uid(),
            image.ctd.cgroup_parent(),
            &image.dir.0.join("logs"),
        );
        let (id, status) = containerd::run_pod_sandbox(client, config).await;
        sandboxes.push((id, containerd::sandbox_pid(&status)));
    }
    for &(_, pid) in &sandboxes {
        wait_until(
            Duration::from_secs(10),
            "the sandbox runs its image",
            || std::fs::read(format!("/proc/{pid}/exe")).is_ok_and(|exe| exe == image.binary),
        );
    }
    let mut m = Memory {
        rss: 0,
        pss: 0,
        shim_pss: 0,
    };
    let mut shims = std::collections::BTreeSet::new();
    for &(_, pid) in &sandboxes {
        m.rss += number(pid, "/status", "VmRSS:");
        m.pss += number(pid, "/smaps_rollup", "Pss:");
        let ppid = number(pid, "/status", "PPid:");
        shims.insert(ppid);
    }
    for shim in shims {
        m.shim_pss += number(u32::try_from(shim).expect("a pid"), "/smaps_rollup", "Pss:");
    }
    eprintln!("{}: {count} sandboxes measured", image.name);
    for (id, _) in &sandboxes {
        stop_remove(client, id).await;
    }
    m
}

/// The number after `key` in `/proc/PID<file>` (kB for the memory fields).
fn number(pid: u32, file: &str, key: &str) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}{file}"))
        .unwrap_or_else(|e| panic!("read /proc/{pid}{file}: {e}"));
    text.lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {key} in /proc/{pid}{file}"))
}
