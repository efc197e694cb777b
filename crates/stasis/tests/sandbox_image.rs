//! `stasis sandbox-image` through the binary: its refusals, a reproducible
//! archive that `stasis image load` takes, and (root only) the real
//! containerd 1.6 importing it and running it as a task whose PID 1 is
//! stasis-pause, ended by SIGTERM with status 0.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::*;

fn build(s: &Stasis, out: &Path, name: Option<&str>) -> Run {
    let out = out.to_str().expect("utf-8");
    let pause = pause_binary().to_str().expect("utf-8");
    let mut args = vec!["sandbox-image", "--output", out, "--pause", pause];
    if let Some(n) = name {
        args.extend(["--name", n]);
    }
    s.run(&args)
}

#[test]
fn the_archive_is_reproducible_small_and_loads_with_entrypoint_pause() {
    let s = Stasis::new();
    let scratch = Scratch::new();
    let (a, b) = (scratch.0.join("a.tar"), scratch.0.join("b.tar"));
    build(&s, &a, None).ok();
    build(&s, &b, None).ok();
    let (a_bytes, b_bytes) = (std::fs::read(&a).expect("a"), std::fs::read(&b).expect("b"));
    assert_eq!(a_bytes, b_bytes, "two builds of one binary differ");
    // The pause artifact is a few KB; the archive adds JSON and tar blocks.
    assert!(a_bytes.len() < 24 * 1024, "{} bytes", a_bytes.len());

    if !root_or_skip("the_archive_is_reproducible_small_and_loads_with_entrypoint_pause") {
        return;
    }
    let name = format!("localhost/{}:1", unique_name());
    let named = scratch.0.join("named.tar");
    build(&s, &named, Some(&name)).ok();
    let loaded = s
        .run(&["image", "load", "-i", named.to_str().expect("utf-8")])
        .ok();
    assert!(
        loaded.stdout.contains(&format!("Loaded image: {name}")),
        "{loaded:?}"
    );
    let inspect: serde_json::Value =
        serde_json::from_str(&s.run(&["image", "inspect", &name]).ok().stdout).expect("json");
    assert_eq!(
        inspect[0]["Config"]["Entrypoint"],
        serde_json::json!(["/pause"])
    );
    assert_eq!(inspect[0]["Config"]["User"], "65535:65535");
    assert_eq!(inspect[0]["Architecture"], "amd64");
    s.run(&["image", "rm", &name]).ok();
}

#[test]
fn a_missing_or_dynamic_binary_and_a_bad_name_are_refused() {
    let s = Stasis::new();
    let scratch = Scratch::new();
    let out = scratch.0.join("x.tar");
    let out = out.to_str().expect("utf-8");
    s.run(&["sandbox-image", "-o", out, "--pause", "/nonexistent/pause"])
        .fails_with(3, "no such file: /nonexistent/pause");
    s.run(&["sandbox-image", "-o", out, "--pause", "/bin/sh"])
        .fails_with(2, "is not a static x86-64 ELF executable");
    let pause = pause_binary().to_str().expect("utf-8");
    s.run(&[
        "sandbox-image",
        "-o",
        out,
        "--pause",
        pause,
        "--name",
        "No Such",
    ])
    .fails_with(2, "invalid image reference");
    assert!(!Path::new(out).exists(), "a refused build wrote {out}");
}

/// A containerd of the test's own: root, state, sockets and its cgroups
/// (`/<unique>/...` in every hierarchy) private; on drop it kills and
/// deletes the task, removes the container and image, stops the daemon by
/// its PID and removes its cgroups and mounts.
struct Containerd {
    dir: PathBuf,
    child: Child,
    cgroup_parent: String,
    task: Option<String>,
    image: Option<String>,
}

impl Containerd {
    fn start(dir: &Path) -> Self {
        let config = dir.join("config.toml");
        let d = dir.display();
        // The CRI plugin is not wanted here: it would look for CNI and a
        // sandbox image of its own.
        std::fs::write(
            &config,
            format!(
                "version = 2\nroot = \"{d}/root\"\nstate = \"{d}/state\"\n\
                 disabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n\
                 [grpc]\n  address = \"{d}/c.sock\"\n\
                 [ttrpc]\n  address = \"{d}/c.sock.ttrpc\"\n\
                 [debug]\n  address = \"{d}/debug.sock\"\n\
                 [plugins.\"io.containerd.internal.v1.opt\"]\n  path = \"{d}/opt\"\n"
            ),
        )
        .expect("write config");
        let log = std::fs::File::create(dir.join("containerd.log")).expect("log");
        let child = Command::new("containerd")
            .arg("--config")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("containerd (the Debian package; scripts/test.sh installs it)");
        let c = Containerd {
            dir: dir.to_owned(),
            child,
            cgroup_parent: format!("/{}", unique_name()),
            task: None,
            image: None,
        };
        wait_until(Duration::from_secs(20), "containerd answers", || {
            c.ctr(&["version"]).status.success()
        });
        c
    }

    fn ctr(&self, args: &[&str]) -> Run {
        run_bounded(
            Command::new("ctr")
                .arg("-a")
                .arg(self.dir.join("c.sock"))
                .args(["-n", "k8s.io"])
                .args(args),
        )
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            let _ = self.ctr(&["task", "kill", "-s", "SIGKILL", &task]);
            for _ in 0..100 {
                if self
                    .ctr(&["task", "delete", &task])
                    .stderr
                    .contains("not found")
                    || !self.ctr(&["task", "ls", "-q"]).stdout.contains(&task)
                {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = self.ctr(&["container", "rm", &task]);
        }
        if let Some(image) = self.image.take() {
            let _ = self.ctr(&["images", "rm", &image]);
        }
        // SIGTERM by its PID, then SIGKILL if it does not end in 10 s.
        let pid = rustix::process::Pid::from_child(&self.child);
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        let end = std::time::Instant::now() + Duration::from_secs(10);
        while self.child.try_wait().ok().flatten().is_none() {
            if std::time::Instant::now() > end {
                let _ = self.child.kill();
                let _ = self.child.wait();
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        // Any snapshot mount a failed run left under the directory.
        let dir = self.dir.to_string_lossy().into_owned();
        if let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") {
            let mut points: Vec<&str> = info
                .lines()
                .filter_map(|l| l.split(' ').nth(4))
                .filter(|m| m.starts_with(&dir))
                .collect();
            points.sort_by_key(|p| std::cmp::Reverse(p.len()));
            for p in points {
                let _ = Command::new("umount").arg("-l").arg(p).status();
            }
        }
        if let Ok(entries) = std::fs::read_dir("/sys/fs/cgroup") {
            for e in entries.flatten() {
                let _ = std::fs::remove_dir(e.path().join(&self.cgroup_parent[1..]));
            }
        }
    }
}

#[test]
fn containerd_imports_the_image_and_runs_stasis_pause_as_its_pid_1() {
    if !root_or_skip("containerd_imports_the_image_and_runs_stasis_pause_as_its_pid_1") {
        return;
    }
    let s = Stasis::new();
    let scratch = Scratch::new();
    let name = format!("localhost/{}:1", unique_name());
    let archive = scratch.0.join("pause.tar");
    build(&s, &archive, Some(&name)).ok();

    // Declared after the scratch directory: dropped (stopped) before it.
    let mut ctd = Containerd::start(&scratch.0);
    ctd.image = Some(name.clone());
    let import = ctd.ctr(&["images", "import", archive.to_str().expect("utf-8")]);
    assert!(import.status.success(), "{import:?}");
    let ls = ctd.ctr(&["images", "ls", "-q"]);
    assert!(ls.stdout.lines().any(|l| l == name), "{ls:?}");

    let id = unique_name();
    let cgroup = format!("{}/{id}", ctd.cgroup_parent);
    ctd.task = Some(id.clone());
    let started = ctd.ctr(&["run", "-d", "--cgroup", &cgroup, &name, &id]);
    assert!(started.status.success(), "{started:?}");
    let mut pid = 0u32;
    wait_until(Duration::from_secs(20), "the task runs", || {
        let ls = ctd.ctr(&["task", "ls"]).stdout;
        let found = ls.lines().find_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.first() == Some(&id.as_str()) && f.get(2) == Some(&"RUNNING"))
                .then(|| f[1].parse().ok())
                .flatten()
        });
        pid = found.unwrap_or(0);
        pid != 0
    });

    // The task's process is stasis-pause itself, PID 1 of its namespace,
    // as the image's user.
    let exe = std::fs::read(format!("/proc/{pid}/exe")).expect("its executable");
    assert_eq!(
        exe,
        std::fs::read(pause_binary()).expect("the pause artifact"),
        "the task's executable is not stasis-pause"
    );
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    let field = |k: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(k))
            .map(|v| v.split_whitespace().collect::<Vec<_>>())
            .unwrap_or_default()
    };
    assert_eq!(field("NSpid:").last(), Some(&"1"), "{status}");
    assert_eq!(field("Uid:").first(), Some(&"65535"), "{status}");

    let killed = ctd.ctr(&["task", "kill", "-s", "SIGTERM", &id]);
    assert!(killed.status.success(), "{killed:?}");
    wait_until(Duration::from_secs(20), "the task stops", || {
        ctd.ctr(&["task", "ls"]).stdout.lines().any(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.first() == Some(&id.as_str()) && f.last() == Some(&"STOPPED")
        })
    });
    // `ctr task delete` exits with the task's status.
    let deleted = ctd.ctr(&["task", "delete", &id]);
    assert!(
        deleted.status.success(),
        "SIGTERM did not end it with 0: {deleted:?}"
    );
    ctd.ctr(&["container", "rm", &id]).ok();
    ctd.task = None;
    ctd.ctr(&["images", "rm", &name]).ok();
    ctd.image = None;
}
