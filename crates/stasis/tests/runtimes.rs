//! Pausing containers that other runtimes started, with those runtimes
//! (root only): runc, crun, docker, podman and containerd, each on private
//! roots and sockets with networking off, each container running a counter
//! in a busybox root filesystem built here. Both directions are checked:
//! `stasis pause` seen by the runtime, and the runtime's pause seen and
//! undone by stasis.
//!
//! The tests take one lock, so only one runtime runs at a time: docker's
//! and containerd's shims share `/run/containerd/s`, and two daemons at once
//! would starve the counters on a small machine.

mod common;

use std::fs;
use std::os::unix::fs::symlink;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use common::*;

/// Counts as fast as busybox sh can, into a file the host reads.
const COUNTER: &str = "i=0; while :; do i=$((i+1)); echo $i > /out/counter; done";

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Where `tool` is installed, searching PATH and the sbin directories.
fn which(tool: &str) -> Option<PathBuf> {
    let path = std::env::var("PATH").unwrap_or_default();
    let found = path
        .split(':')
        .chain(["/usr/local/sbin", "/usr/sbin", "/sbin"])
        .map(|dir| Path::new(dir).join(tool))
        .find(|p| p.is_file());
    found
}

/// Root and the runtime's binaries: skips with the reason when missing, and
/// fails instead when `STASIS_REQUIRE_ROOT_TESTS=1` (CI installs them).
fn tools_or_skip(test: &str, tools: &[&str]) -> bool {
    if !root_or_skip(test) {
        return false;
    }
    let missing: Vec<&str> = tools
        .iter()
        .copied()
        .filter(|t| which(t).is_none())
        .collect();
    if missing.is_empty() {
        return true;
    }
    assert!(
        std::env::var_os("STASIS_REQUIRE_ROOT_TESTS").is_none_or(|v| v != "1"),
        "{test} needs {missing:?}, and STASIS_REQUIRE_ROOT_TESTS=1 requires it to run"
    );
    eprintln!("skipping {test}: {missing:?} not installed (STASIS_REQUIRE_ROOT_TESTS=1 makes this a failure)");
    false
}

/// Runs a command (bounded), asserting success; returns its stdout.
#[track_caller]
fn ok(cmd: &mut Command) -> String {
    let run = run_bounded(cmd);
    assert!(run.status.success(), "{cmd:?} failed: {run:?}");
    run.stdout
}

/// Runs a command (bounded) whose output goes to `log`, asserting success:
/// for a runtime's `run -d`, whose container inherits the command's stdio
/// and would hold a pipe open for as long as it lives.
#[track_caller]
fn ok_logged(cmd: &mut Command, log: &Path) {
    let file = fs::File::create(log).expect("log file");
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(file.try_clone().expect("log"))
        .stderr(file)
        .spawn()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    let status = wait_bounded(&mut child, Duration::from_secs(60));
    assert!(
        status.success(),
        "{cmd:?} failed ({status}): {}",
        fs::read_to_string(log).unwrap_or_default()
    );
}

/// A busybox root filesystem with `/out` for the counter, under `dir`.
fn rootfs(dir: &Path) -> PathBuf {
    let root = dir.join("rootfs");
    for d in ["bin", "proc", "dev", "sys", "tmp", "out", "etc"] {
        fs::create_dir_all(root.join(d)).expect("mkdir rootfs");
    }
    fs::copy("/bin/busybox", root.join("bin/busybox")).expect("copy busybox");
    for applet in ["sh", "sleep", "cat", "echo", "true"] {
        symlink("busybox", root.join("bin").join(applet)).expect("symlink applet");
    }
    root
}

/// The root filesystem as a tar, for `docker import` / `podman import`.
fn rootfs_tar(dir: &Path) -> PathBuf {
    let root = rootfs(dir);
    let tar = dir.join("rootfs.tar");
    ok(Command::new("tar")
        .arg("-C")
        .arg(&root)
        .arg("-cf")
        .arg(&tar)
        .arg("."));
    tar
}

/// The counter file a container writes through its `/out` bind mount.
fn out_dir(dir: &Path) -> (PathBuf, PathBuf) {
    let out = dir.join("out");
    fs::create_dir_all(&out).expect("mkdir out");
    let counter = out.join("counter");
    (out, counter)
}

/// The counter's file as it is now. busybox `echo > file` truncates before
/// it writes, so a container frozen in between leaves it empty: compare
/// contents, not numbers.
fn counter_text(counter: &Path) -> String {
    fs::read_to_string(counter).unwrap_or_default()
}

#[track_caller]
fn assert_stopped(counter: &Path) {
    let at = counter_text(counter);
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(counter_text(counter), at, "the counter moved while paused");
}

fn wait_moves(counter: &Path) {
    let at = counter_text(counter);
    wait_until(Duration::from_secs(30), "the counter to move", || {
        counter_text(counter) != at
    });
}

fn wait_counter_starts(counter: &Path) {
    wait_until(Duration::from_secs(60), "the container's counter", || {
        fs::read_to_string(counter).is_ok_and(|s| s.trim().parse::<u64>().is_ok())
    });
}

/// Steps run in reverse order on drop, even after a panic: stop what was
/// started, then unmount and kill whatever is left below our directory.
struct Teardown {
    dir: PathBuf,
    steps: Vec<(String, Box<dyn FnOnce()>)>,
}

impl Teardown {
    fn new(dir: &Path) -> Self {
        Teardown {
            dir: dir.to_owned(),
            steps: Vec::new(),
        }
    }

    fn push(&mut self, what: &str, step: impl FnOnce() + 'static) {
        self.steps.push((what.to_owned(), Box::new(step)));
    }
}

impl Drop for Teardown {
    fn drop(&mut self) {
        while let Some((what, step)) = self.steps.pop() {
            if std::panic::catch_unwind(std::panic::AssertUnwindSafe(step)).is_err() {
                eprintln!("teardown step failed: {what}");
            }
        }
        kill_processes_mentioning(&self.dir);
        unmount_below(&self.dir);
    }
}

/// Kills (by PID) processes whose command line names `dir`: shims and
/// monitors we started, which outlive their daemon if it died first.
fn kill_processes_mentioning(dir: &Path) {
    let needle = dir.display().to_string();
    let me = std::process::id();
    for entry in fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        if pid == me {
            continue;
        }
        let cmdline = fs::read(entry.path().join("cmdline")).unwrap_or_default();
        if String::from_utf8_lossy(&cmdline).contains(&needle) {
            kill(pid);
        }
    }
}

fn kill(pid: u32) {
    if let Some(pid) = rustix::process::Pid::from_raw(pid as i32) {
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
    }
}

/// Detaches every mount at or below `dir`, deepest first.
fn unmount_below(dir: &Path) {
    let text = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut points: Vec<PathBuf> = text
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|p| PathBuf::from(p.replace("\\040", " ")))
        .filter(|p| p.starts_with(dir))
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    for p in points {
        let _ = rustix::mount::unmount(&p, rustix::mount::UnmountFlags::DETACH);
    }
}

/// Thaws a container's cgroup in both hierarchies, so that a runtime can
/// kill it whatever state a failed test left it in.
fn thaw_cgroup(rel: &str) {
    let rel = rel.trim_start_matches('/');
    if rel.is_empty() {
        return;
    }
    let _ = fs::write(
        Path::new(V1_MOUNT).join(rel).join("freezer.state"),
        "THAWED",
    );
    let _ = fs::write(Path::new(V2_MOUNT).join(rel).join("cgroup.freeze"), "0");
}

/// Kills whatever is left in a container's cgroups (ours alone).
fn kill_cgroup(rel: &str) {
    let rel = rel.trim_start_matches('/');
    if rel.is_empty() {
        return;
    }
    for mount in [V1_MOUNT, V2_MOUNT] {
        for pid in read_pids(&Path::new(mount).join(rel)) {
            kill(pid);
        }
    }
}

/// Removes an empty cgroup tree this test made (children first) from every
/// mounted hierarchy; `rmdir` refuses a cgroup that still has processes.
fn remove_cgroup_everywhere(rel: &str) {
    fn remove_tree(dir: &Path) {
        for entry in fs::read_dir(dir).into_iter().flatten().flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                remove_tree(&entry.path());
            }
        }
        if let Err(e) = fs::remove_dir(dir) {
            eprintln!("could not remove {}: {e}", dir.display());
        }
    }
    if rel.is_empty() || rel.contains("..") {
        return;
    }
    // Every v1 controller's mount sits beside the freezer's.
    let controllers = Path::new(V1_MOUNT.as_str())
        .parent()
        .expect("a mount below /");
    for mount in fs::read_dir(controllers).into_iter().flatten().flatten() {
        let dir = mount.path().join(rel);
        if dir.is_dir() {
            remove_tree(&dir);
        }
    }
}

/// Removes the parent cgroup a runtime creates (`/docker`,
/// `/libpod_parent`) after the test, unless it was there before.
fn remove_parent_cgroup_later(teardown: &mut Teardown, name: &'static str) {
    if !Path::new(V1_MOUNT).join(name).exists() {
        teardown.push("remove the runtime's parent cgroup", move || {
            remove_cgroup_everywhere(name)
        });
    }
}

/// A daemon we started; SIGTERM, then SIGKILL after a bounded wait.
struct Daemon {
    child: Child,
    name: &'static str,
}

impl Daemon {
    fn start(name: &'static str, cmd: &mut Command, log: &Path) -> Self {
        let log = fs::File::create(log).expect("daemon log");
        let child = cmd
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            // Its own process group, as `setsid` would: a signal meant for
            // the test's group never reaches it.
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("start {name}: {e}"));
        Daemon { child, name }
    }

    fn stop(mut self) {
        self.terminate();
    }

    fn terminate(&mut self) {
        if !terminate(&mut self.child, Duration::from_secs(20)) {
            eprintln!("{} ignored SIGTERM; it was killed", self.name);
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.terminate();
    }
}

/// Host paths a daemon creates outside its own directories; removed after
/// the test if they were not there before.
struct HostLeftovers(Vec<(PathBuf, bool)>);

impl HostLeftovers {
    fn note(paths: &[&str]) -> Self {
        HostLeftovers(
            paths
                .iter()
                .map(|p| (PathBuf::from(p), Path::new(p).exists()))
                .collect(),
        )
    }

    fn clean(&self) {
        for (path, existed) in &self.0 {
            if *existed || !path.exists() {
                continue;
            }
            let result = if path.is_dir() {
                fs::remove_dir_all(path)
            } else {
                fs::remove_file(path)
            };
            if let Err(e) = result {
                eprintln!("could not remove {}: {e}", path.display());
            }
        }
    }
}

/// `stasis state --container-id ...` as JSON.
fn state_of(target: &[&str]) -> serde_json::Value {
    state_json(target)
}

/// The shared core of every test: `stasis pause` by container ID stops
/// the counter with the kernel saying frozen at `cgroup`; returns the
/// cgroup directory in the v1 freezer (what the runtimes use here).
fn stasis_pauses(target: &[&str], cgroup: &str, counter: &Path) -> PathBuf {
    let mut args = vec!["pause"];
    args.extend_from_slice(target);
    stasis(&args).ok();
    let state = state_of(target);
    assert_eq!(state["cgroup"], cgroup, "{state}");
    assert_eq!(state["phase"], "frozen", "{state}");
    assert_eq!(state["frozen_by"], "self", "{state}");
    let dir = Path::new(V1_MOUNT).join(cgroup.trim_start_matches('/'));
    assert!(kernel_frozen(V::V1, &dir), "the kernel says frozen");
    assert_stopped(counter);
    let mut again = vec!["pause"];
    again.extend_from_slice(target);
    stasis(&again).fails_with(4, "is already paused");
    dir
}

fn stasis_unpauses(target: &[&str], counter: &Path) {
    let mut args = vec!["unpause"];
    args.extend_from_slice(target);
    stasis(&args).ok();
    assert_eq!(state_of(target)["phase"], "thawed");
    wait_moves(counter);
}

/// After the runtime's own pause, stasis sees it and thaws it.
fn runtime_pause_seen_and_undone(target: &[&str], counter: &Path) {
    // crun returns from `pause` while the v1 freezer may still say FREEZING
    // (seen about once in ten runs); the kernel finishes it on a later read
    // of freezer.state, which `state` is.
    let mut state = state_of(target);
    wait_until(
        Duration::from_secs(30),
        "the runtime's freeze to complete",
        || {
            state = state_of(target);
            state["phase"] != "freezing"
        },
    );
    assert_eq!(state["phase"], "frozen", "{state}");
    assert_eq!(state["frozen_by"], "self", "{state}");
    assert_stopped(counter);
    stasis_unpauses(target, counter);
}

/// A runc or crun bundle for the counter, with `/out` bound to `out`.
fn bundle(dir: &Path, out: &Path) -> PathBuf {
    let bundle = dir.join("bundle");
    fs::create_dir_all(&bundle).expect("mkdir bundle");
    rootfs(&bundle);
    ok(Command::new("runc").arg("spec").current_dir(&bundle));
    let path = bundle.join("config.json");
    let mut config: serde_json::Value = serde_json::from_str(&read(&path)).expect("runc spec JSON");
    config["process"]["args"] = serde_json::json!(["/bin/sh", "-c", COUNTER]);
    config["process"]["terminal"] = serde_json::json!(false);
    config["root"] = serde_json::json!({"path": "rootfs", "readonly": true});
    config["mounts"]
        .as_array_mut()
        .expect("mounts")
        .push(serde_json::json!({
            "destination": "/out", "type": "bind",
            "source": out, "options": ["rbind", "rw"]
        }));
    fs::write(&path, config.to_string()).expect("write config.json");
    bundle
}

fn oci_status(runtime: &str, root: &Path, id: &str) -> String {
    let out = ok(Command::new(runtime)
        .arg("--root")
        .arg(root)
        .args(["state", id]));
    let v: serde_json::Value = serde_json::from_str(&out).expect("state JSON");
    v["status"].as_str().expect("status").to_owned()
}

/// runc and crun: both read the freezer from the kernel, so each sees the
/// other's pause; found by cgroup name and by state directory.
fn oci_runtime(runtime: &'static str) {
    let _serial = serial();
    let scratch = Scratch::new();
    let mut teardown = Teardown::new(&scratch.0);
    let (out, counter) = out_dir(&scratch.0);
    let bundle = bundle(&scratch.0, &out);
    let root = scratch.0.join("state");
    let id = unique_name();

    let mut create = match runtime {
        "crun" => {
            // crun refuses a hybrid host whose cgroup2 has a controller
            // (hugetlb here): hide the list in a private mount namespace.
            let empty = scratch.0.join("empty");
            fs::write(&empty, "").expect("empty file");
            let mut cmd = Command::new("unshare");
            cmd.args(["-m", "--propagation", "private", "sh", "-c"])
                .arg(concat!(
                    r#"mount --bind "$0" "$4/cgroup.controllers" && "#,
                    r#"exec crun --root "$1" run -d --bundle "$2" "$3""#
                ))
                .arg(&empty)
                .arg(&root)
                .arg(&bundle)
                .arg(&id)
                .arg(V2_MOUNT.as_str());
            cmd
        }
        _ => {
            let mut cmd = Command::new(runtime);
            cmd.arg("--root")
                .arg(&root)
                .args(["run", "-d", "--bundle"])
                .arg(&bundle)
                .arg(&id);
            cmd
        }
    };
    {
        let (root, id) = (root.clone(), id.clone());
        teardown.push("delete the container", move || {
            thaw_cgroup(&id);
            let _ = run_bounded(
                Command::new(runtime)
                    .arg("--root")
                    .arg(&root)
                    .args(["delete", "-f", &id]),
            );
            kill_cgroup(&id);
        });
    }
    ok_logged(&mut create, &scratch.0.join("run.log"));
    wait_counter_starts(&counter);
    let cgroup = format!("/{id}");
    let status = || oci_status(runtime, &root, &id);

    // stasis pause, found by cgroup name: the runtime reads the kernel.
    let by_name = ["--container-id", id.as_str()];
    stasis_pauses(&by_name, &cgroup, &counter);
    assert_eq!(status(), "paused", "{runtime} state after stasis pause");
    stasis_unpauses(&by_name, &counter);
    assert_eq!(status(), "running");

    // Through the state directory; the runtime's own resume undoes it.
    let root_s = root.display().to_string();
    let by_state = ["--container-id", id.as_str(), "--runtime-root", &root_s];
    stasis_pauses(&by_state, &cgroup, &counter);
    assert_eq!(status(), "paused");
    ok(Command::new(runtime)
        .arg("--root")
        .arg(&root)
        .args(["resume", &id]));
    assert_eq!(state_of(&by_state)["phase"], "thawed");
    wait_moves(&counter);

    // The runtime's pause, seen and undone by stasis.
    ok(Command::new(runtime)
        .arg("--root")
        .arg(&root)
        .args(["pause", &id]));
    runtime_pause_seen_and_undone(&by_state, &counter);
    assert_eq!(status(), "running");

    // A state directory entry whose init is gone is not running.
    let ghost = root.join(format!("{id}-ghost"));
    fs::create_dir(&ghost).expect("mkdir ghost");
    let (file, start_key) = if runtime == "runc" {
        ("state.json", "init_process_start")
    } else {
        ("status", "process-start-time")
    };
    let mut v: serde_json::Value =
        serde_json::from_str(&read(&root.join(&id).join(file))).expect("JSON");
    v[start_key] = serde_json::json!(1);
    fs::write(ghost.join(file), v.to_string()).expect("write ghost");
    let ghost_id = format!("{id}-ghost");
    stasis(&[
        "pause",
        "--container-id",
        &ghost_id,
        "--runtime-root",
        &root_s,
    ])
    .fails_with(4, "is not running");
    fs::remove_dir_all(&ghost).expect("rm ghost");
    drop(teardown);
}

#[test]
fn runc() {
    if tools_or_skip("runc", &["runc", "busybox"]) {
        oci_runtime("runc");
    }
}

#[test]
fn crun() {
    if tools_or_skip("crun", &["crun", "runc", "busybox", "unshare"]) {
        oci_runtime("crun");
    }
}

/// Waits (bounded) until `cmd` succeeds: a daemon answering on its socket.
fn wait_ready(what: &str, daemon: &mut Daemon, mut cmd: impl FnMut() -> Command, log: &Path) {
    let end = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(Some(status)) = daemon.child.try_wait() {
            panic!(
                "{what} exited ({status}): {}",
                fs::read_to_string(log).unwrap_or_default()
            );
        }
        let ready = cmd()
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if ready {
            return;
        }
        assert!(
            Instant::now() < end,
            "{what} not ready within 60s: {}",
            fs::read_to_string(log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn docker() {
    if !tools_or_skip("docker", &["dockerd", "docker", "busybox"]) {
        return;
    }
    let _serial = serial();
    let scratch = Scratch::new();
    let d = scratch.0.clone();
    let leftovers =
        HostLeftovers::note(&["/etc/docker/key.json", "/run/docker", "/run/containerd"]);
    let mut teardown = Teardown::new(&d);
    teardown.push("remove what dockerd left on the host", move || {
        leftovers.clean()
    });
    remove_parent_cgroup_later(&mut teardown, "docker");
    let tar = rootfs_tar(&d);
    let (out, counter) = out_dir(&d);
    let sock = format!("unix://{}/docker.sock", d.display());
    let log = d.join("dockerd.log");
    let mut daemon = Daemon::start(
        "dockerd",
        Command::new("dockerd")
            .arg("--data-root")
            .arg(d.join("data"))
            .arg("--exec-root")
            .arg(d.join("exec"))
            .arg("--pidfile")
            .arg(d.join("docker.pid"))
            .args(["-H", &sock])
            .args([
                "--iptables=false",
                "--ip6tables=false",
                "--ip-masq=false",
                "--ip-forward=false",
                "--bridge=none",
                "--storage-driver=vfs",
            ]),
        &log,
    );
    let docker = {
        let (sock, d) = (sock.clone(), d.clone());
        move || {
            let mut cmd = Command::new("docker");
            cmd.env("DOCKER_CONFIG", d.join("client"))
                .args(["-H", &sock]);
            cmd
        }
    };
    wait_ready(
        "dockerd",
        &mut daemon,
        || {
            let mut c = docker();
            c.arg("version");
            c
        },
        &log,
    );
    teardown.push("stop dockerd", move || daemon.stop());
    let image = format!("localhost/{}", unique_name());
    ok(docker().arg("import").arg(&tar).arg(&image));
    let id = ok(docker()
        .args(["run", "-d", "--network", "none", "-v"])
        .arg(format!("{}:/out", out.display()))
        .args([&image, "/bin/sh", "-c", COUNTER]))
    .trim()
    .to_owned();
    assert_eq!(id.len(), 64, "a full ID: {id:?}");
    {
        let (docker, id) = (docker.clone(), id.clone());
        teardown.push("remove the container", move || {
            thaw_cgroup(&format!("docker/{id}"));
            let _ = run_bounded(docker().args(["rm", "-f", &id]));
            kill_cgroup(&format!("docker/{id}"));
        });
    }
    wait_counter_starts(&counter);
    let cgroup = format!("/docker/{id}");
    let status = || {
        ok(docker().args(["inspect", "-f", "{{.State.Status}} {{.State.Paused}}", &id]))
            .trim()
            .to_owned()
    };
    let prefix = &id[..12];
    let target = ["--container-id", prefix];

    // stasis pause: dockerd keeps its own flag and does not read the kernel.
    stasis_pauses(&target, &cgroup, &counter);
    let after_stasis = status();
    eprintln!("docker after stasis pause: {after_stasis}");
    assert_eq!(after_stasis, "running false");
    let refused = run_bounded(docker().args(["unpause", &id]));
    eprintln!("docker unpause after stasis pause: {refused:?}");
    assert!(
        !refused.status.success(),
        "docker does not know it is paused"
    );
    stasis_unpauses(&target, &counter);

    // docker pause, seen and undone by stasis. docker keeps saying paused,
    // and its own unpause then fails (runc finds the cgroup thawed); a
    // second stasis pause lets docker's unpause bring both back in step.
    ok(docker().args(["pause", &id]));
    runtime_pause_seen_and_undone(&target, &counter);
    let after_unpause = status();
    eprintln!("docker after stasis unpause of a docker pause: {after_unpause}");
    assert_eq!(after_unpause, "paused true");
    let refused = run_bounded(docker().args(["unpause", &id]));
    eprintln!("docker unpause after stasis unpause: {refused:?}");
    assert!(
        refused.stderr.contains("container not paused"),
        "{refused:?}"
    );
    stasis(&["pause", "--container-id", prefix]).ok();
    ok(docker().args(["unpause", &id]));
    assert_eq!(status(), "running false");
    assert_eq!(state_of(&target)["phase"], "thawed");
    wait_moves(&counter);
    drop(teardown);
}

#[test]
fn podman() {
    if !tools_or_skip("podman", &["podman", "conmon", "runc", "busybox"]) {
        return;
    }
    let _serial = serial();
    let scratch = Scratch::new();
    let d = scratch.0.clone();
    let mut teardown = Teardown::new(&d);
    remove_parent_cgroup_later(&mut teardown, "libpod_parent");
    let tar = rootfs_tar(&d);
    let (out, counter) = out_dir(&d);
    for sub in ["tmp", "libpod", "volumes", "net"] {
        fs::create_dir_all(d.join(sub)).expect("mkdir");
    }
    fs::write(
        d.join("containers.conf"),
        format!(
            r#"[containers]
default_ulimits = ["nofile=1024:1024", "nproc=8192:8192"]
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "{d}/events.log"
runtime = "runc"
tmp_dir = "{d}/tmp"
static_dir = "{d}/libpod"
volume_path = "{d}/volumes"
[network]
network_config_dir = "{d}/net"
"#,
            d = d.display()
        ),
    )
    .expect("containers.conf");
    fs::write(
        d.join("storage.conf"),
        format!(
            "[storage]\ndriver = \"vfs\"\nrunroot = \"{d}/run\"\ngraphroot = \"{d}/graph\"\n",
            d = d.display()
        ),
    )
    .expect("storage.conf");
    let podman = {
        let d = d.clone();
        move || {
            let mut cmd = Command::new("podman");
            cmd.env("CONTAINERS_CONF", d.join("containers.conf"))
                .env("CONTAINERS_STORAGE_CONF", d.join("storage.conf"))
                .env("XDG_RUNTIME_DIR", d.join("tmp"));
            cmd
        }
    };
    let image = format!("localhost/{}", unique_name());
    ok(podman().arg("import").arg(&tar).arg(&image));
    let id = ok(podman()
        .args(["run", "-d", "--network", "none", "-v"])
        .arg(format!("{}:/out", out.display()))
        .args([&image, "/bin/sh", "-c", COUNTER]))
    .trim()
    .to_owned();
    assert_eq!(id.len(), 64, "a full ID: {id:?}");
    let cgroup = format!("/libpod_parent/libpod-{id}");
    {
        let (podman, id, cgroup) = (podman.clone(), id.clone(), cgroup.clone());
        teardown.push("remove the container", move || {
            thaw_cgroup(&cgroup);
            let _ = run_bounded(podman().args(["rm", "-f", "-t", "0", &id]));
            kill_cgroup(&cgroup);
            let _ = run_bounded(podman().args(["system", "reset", "-f"]));
        });
    }
    wait_counter_starts(&counter);
    let status = || {
        ok(podman().args(["inspect", "-f", "{{.State.Status}}", &id]))
            .trim()
            .to_owned()
    };
    let target = ["--container-id", &id[..12]];

    // stasis pause: podman keeps its own state; the kernel is not asked.
    stasis_pauses(&target, &cgroup, &counter);
    assert_eq!(status(), "running", "podman after stasis pause");
    let refused = run_bounded(podman().args(["unpause", &id]));
    assert!(refused.stderr.contains("is not paused"), "{refused:?}");
    stasis_unpauses(&target, &counter);

    // podman pause, seen and undone by stasis; podman still says paused
    // and its unpause fails (runc finds the cgroup thawed) until stasis
    // pauses again.
    ok(podman().args(["pause", &id]));
    runtime_pause_seen_and_undone(&target, &counter);
    assert_eq!(status(), "paused", "podman after stasis unpause");
    let refused = run_bounded(podman().args(["unpause", &id]));
    assert!(
        refused.stderr.contains("container not paused"),
        "{refused:?}"
    );
    stasis(&["pause", "--container-id", &id[..12]]).ok();
    ok(podman().args(["unpause", &id]));
    assert_eq!(status(), "running");
    assert_eq!(state_of(&target)["phase"], "thawed");
    wait_moves(&counter);

    // The API pauses it too: `docker -H unix://stasis pause <podman ID>`.
    let sock = d.join("api.sock");
    /// Kills (by its handle) and reaps the service, even on panic.
    struct Served(std::process::Child);
    impl Drop for Served {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let serve = Served(
        Command::new(STASIS)
            .arg("--root")
            .arg(d.join("stasis"))
            .arg("serve")
            .arg("--socket")
            .arg(&sock)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("stasis serve"),
    );
    wait_until(Duration::from_secs(10), "the API socket", || {
        std::os::unix::net::UnixStream::connect(&sock).is_ok()
    });
    let api = |verb: &str| {
        ok(Command::new("curl")
            .args(["-sS", "-X", "POST", "-w", "%{http_code}", "--unix-socket"])
            .arg(&sock)
            .arg(format!(
                "http://stasis/v1.44/containers/{}/{verb}",
                &id[..12]
            )))
    };
    assert_eq!(api("pause"), "204");
    assert_eq!(state_of(&target)["phase"], "frozen");
    assert_stopped(&counter);
    assert!(api("pause").ends_with("409"), "already paused");
    assert_eq!(api("unpause"), "204");
    assert_eq!(state_of(&target)["phase"], "thawed");
    wait_moves(&counter);
    drop(serve);
    drop(teardown);
}

#[test]
fn containerd() {
    if !tools_or_skip(
        "containerd",
        &[
            "containerd",
            "ctr",
            "containerd-shim-runc-v2",
            "runc",
            "busybox",
        ],
    ) {
        return;
    }
    let _serial = serial();
    let scratch = Scratch::new();
    let d = scratch.0.clone();
    let leftovers = HostLeftovers::note(&["/run/containerd"]);
    let ns = unique_name();
    // The shim keeps a runc root per namespace under /run/containerd/runc,
    // which outlives the daemon when /run/containerd was there before.
    let runc_root = Path::new("/run/containerd/runc").join(&ns);
    let mut teardown = Teardown::new(&d);
    teardown.push("remove what containerd left on the host", move || {
        leftovers.clean();
        let _ = fs::remove_dir(&runc_root);
    });
    let root = rootfs(&d);
    let (out, counter) = out_dir(&d);
    let sock = d.join("containerd.sock");
    fs::write(
        d.join("config.toml"),
        format!(
            r#"version = 2
root = "{d}/root"
state = "{d}/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "{d}/containerd.sock"
[ttrpc]
  address = "{d}/containerd.sock.ttrpc"
[debug]
  address = "{d}/debug.sock"
"#,
            d = d.display()
        ),
    )
    .expect("config.toml");
    let log = d.join("containerd.log");
    let mut daemon = Daemon::start(
        "containerd",
        Command::new("containerd")
            .arg("--config")
            .arg(d.join("config.toml")),
        &log,
    );
    let ctr = {
        let (sock, ns) = (sock.clone(), ns.clone());
        move || {
            let mut cmd = Command::new("ctr");
            cmd.arg("-a").arg(&sock).args(["-n", &ns]);
            cmd
        }
    };
    wait_ready(
        "containerd",
        &mut daemon,
        || {
            let mut c = ctr();
            c.arg("version");
            c
        },
        &log,
    );
    teardown.push("stop containerd", move || daemon.stop());
    // A containerd ID is chosen by its client: here a name, not hex.
    let id = unique_name();
    let cgroup = format!("/{ns}/{id}");
    {
        let (ctr, id, cgroup) = (ctr.clone(), id.clone(), cgroup.clone());
        teardown.push("remove the container", move || {
            thaw_cgroup(&cgroup);
            let _ = run_bounded(ctr().args(["task", "kill", "-s", "SIGKILL", &id]));
            kill_cgroup(&cgroup);
            let _ = run_bounded(ctr().args(["task", "delete", "-f", &id]));
            let _ = run_bounded(ctr().args(["container", "delete", &id]));
            // containerd leaves the namespace's cgroup (ours, empty) in
            // every controller.
            let ns_dir = cgroup
                .trim_start_matches('/')
                .split('/')
                .next()
                .unwrap_or("");
            remove_cgroup_everywhere(ns_dir);
        });
    }
    ok(ctr()
        .args(["run", "-d", "--null-io", "--mount"])
        .arg(format!(
            "type=bind,src={},dst=/out,options=rbind:rw",
            out.display()
        ))
        .arg("--rootfs")
        .arg(&root)
        .args([&id, "/bin/sh", "-c", COUNTER]));
    wait_counter_starts(&counter);
    let status = || {
        let out = ok(ctr().args(["task", "ls"]));
        out.lines()
            .find(|l| l.starts_with(id.as_str()))
            .and_then(|l| l.split_whitespace().nth(2))
            .unwrap_or("?")
            .to_owned()
    };
    let target = ["--container-id", id.as_str()];

    // stasis pause: the shim keeps its own state; the kernel is not asked.
    stasis_pauses(&target, &cgroup, &counter);
    assert_eq!(status(), "RUNNING", "ctr after stasis pause");
    let refused = run_bounded(ctr().args(["task", "resume", &id]));
    assert!(
        refused.stderr.contains("cannot resume a running process"),
        "{refused:?}"
    );
    stasis_unpauses(&target, &counter);

    // ctr pause, seen and undone by stasis; ctr still says PAUSED and its
    // resume fails until stasis pauses again.
    ok(ctr().args(["task", "pause", &id]));
    runtime_pause_seen_and_undone(&target, &counter);
    assert_eq!(status(), "PAUSED", "ctr after stasis unpause");
    let refused = run_bounded(ctr().args(["task", "resume", &id]));
    assert!(
        refused.stderr.contains("container not paused"),
        "{refused:?}"
    );
    stasis(&["pause", "--container-id", &id]).ok();
    ok(ctr().args(["task", "resume", &id]));
    assert_eq!(status(), "RUNNING");
    assert_eq!(state_of(&target)["phase"], "thawed");
    wait_moves(&counter);
    drop(teardown);
}
