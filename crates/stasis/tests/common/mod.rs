//! Support for the real-kernel tests: the root gate, test cgroups that clean
//! up after themselves, and bounded runs of the `stasis` binary.
#![allow(dead_code)]

pub mod archives;
pub mod terminal;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const STASIS: &str = env!("CARGO_BIN_EXE_stasis");
/// The v1 freezer's mount point, as `/proc/self/mountinfo` shows it.
pub const V1_MOUNT: &Mount = &Mount(V::V1);
/// The cgroup2 mount point, as `/proc/self/mountinfo` shows it.
pub const V2_MOUNT: &Mount = &Mount(V::V2);

/// A hierarchy's mount point, detected on first use (the suites need both:
/// they run on hybrid hosts), usable wherever a path or string is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mount(pub V);

impl Mount {
    pub fn as_str(&self) -> &'static str {
        self.0.mount()
    }
}

impl AsRef<std::ffi::OsStr> for Mount {
    fn as_ref(&self) -> &std::ffi::OsStr {
        self.as_str().as_ref()
    }
}

impl AsRef<Path> for Mount {
    fn as_ref(&self) -> &Path {
        Path::new(self.as_str())
    }
}

impl std::fmt::Display for Mount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The mount points of the v1 freezer and of cgroup2, read once through the
/// freezer's own detection.
fn mounts() -> &'static (String, String) {
    static MOUNTS: std::sync::OnceLock<(String, String)> = std::sync::OnceLock::new();
    MOUNTS.get_or_init(|| {
        let h = freezer::Hierarchies::detect(Path::new("/proc")).expect("reading mountinfo");
        let at = |v| {
            h.get(v)
                .unwrap_or_else(|| panic!("the test hosts mount the {v} freezer hierarchy"))
                .mount_point
                .display()
                .to_string()
        };
        (at(freezer::Version::V1), at(freezer::Version::V2))
    })
}

#[allow(unused_imports)] // each suite uses some of them
pub use testkit::{
    pod_uid, read_trimmed, root_or_skip, run_bounded, run_fed, terminate, unique_name,
    wait_bounded, wait_until, Run,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum V {
    V1,
    V2,
}

impl V {
    pub fn mount(self) -> &'static str {
        match self {
            V::V1 => &mounts().0,
            V::V2 => &mounts().1,
        }
    }

    pub fn flag(self) -> &'static str {
        match self {
            V::V1 => "v1",
            V::V2 => "v2",
        }
    }
}

/// A cgroup this test made, with the processes it started in it. Dropping it
/// kills them all and removes it (and any child), even after a panic.
pub struct TestCgroup {
    pub version: V,
    pub name: String,
    pub dir: PathBuf,
    children: Vec<Child>,
}

impl TestCgroup {
    pub fn new(version: V) -> Self {
        Self::named(version, unique_name())
    }

    /// A test cgroup with a name of the caller's (a `unique_name()`, say the
    /// one another hierarchy's test cgroup has: the same cgroup path in both).
    pub fn named(version: V, name: String) -> Self {
        assert!(
            name.starts_with("stasis-test-"),
            "only our own names: {name}"
        );
        let dir = Path::new(version.mount()).join(&name);
        fs::create_dir(&dir).unwrap_or_else(|e| panic!("mkdir {}: {e}", dir.display()));
        TestCgroup {
            version,
            name,
            dir,
            children: Vec::new(),
        }
    }

    /// The cgroup path in its hierarchy, `/stasis-test-...`.
    pub fn path(&self) -> String {
        format!("/{}", self.name)
    }

    pub fn dir_str(&self) -> String {
        self.dir.display().to_string()
    }

    /// Starts `program args...` inside this cgroup (the shell moves itself in
    /// before exec, so the program never runs outside it). Returns its PID.
    pub fn spawn(&mut self, program: &str, args: &[&str]) -> u32 {
        let dir = self.dir.clone();
        self.spawn_in(&dir, program, args)
    }

    /// Like [`TestCgroup::spawn`], into `dir`, a cgroup below this one.
    pub fn spawn_in(&mut self, dir: &Path, program: &str, args: &[&str]) -> u32 {
        assert!(dir.starts_with(&self.dir), "only into our own cgroups");
        let child = Command::new("sh")
            .arg("-c")
            .arg(r#"echo $$ > "$0/cgroup.procs" && exec "$@""#)
            .arg(dir)
            .arg(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .expect("spawn");
        let pid = child.id();
        self.children.push(child);
        pid
    }

    /// PIDs in this cgroup itself (not its children).
    pub fn procs(&self) -> Vec<u32> {
        read_pids(&self.dir)
    }

    /// PIDs in this cgroup and every cgroup below it.
    pub fn all_procs(&self) -> Vec<u32> {
        let mut out = Vec::new();
        for dir in subdirs_deepest_first(&self.dir) {
            out.extend(read_pids(&dir));
        }
        out
    }

    /// Waits (bounded) until at least `n` processes are in the subtree.
    pub fn wait_for_procs(&self, n: usize) {
        wait_until(
            Duration::from_secs(60),
            &format!("{n} processes in {}", self.name),
            || self.all_procs().len() >= n,
        );
    }

    /// The kernel's own word: v1 `freezer.state`, v2 `frozen` in cgroup.events.
    pub fn kernel_frozen(&self, dir: &Path) -> bool {
        kernel_frozen(self.version, dir)
    }
}

pub fn kernel_frozen(version: V, dir: &Path) -> bool {
    match version {
        V::V1 => read(&dir.join("freezer.state")).trim() == "FROZEN",
        V::V2 => read(&dir.join("cgroup.events"))
            .lines()
            .any(|l| l == "frozen 1"),
    }
}

pub fn kernel_thawed(version: V, dir: &Path) -> bool {
    match version {
        V::V1 => read(&dir.join("freezer.state")).trim() == "THAWED",
        V::V2 => {
            read(&dir.join("cgroup.events"))
                .lines()
                .any(|l| l == "frozen 0")
                && read(&dir.join("cgroup.freeze")).trim() == "0"
        }
    }
}

impl Drop for TestCgroup {
    fn drop(&mut self) {
        let dirs = subdirs_deepest_first(&self.dir);
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let mut left = 0;
            for dir in &dirs {
                match self.version {
                    // cgroup.kill kills the whole subtree, frozen or not,
                    // with no PID to race against reuse.
                    V::V2 => {
                        let _ = fs::write(dir.join("cgroup.kill"), "1");
                    }
                    // v1 has no cgroup.kill. The PIDs listed are ours; a
                    // frozen task takes SIGKILL once thawed, just below.
                    V::V1 => {
                        for pid in read_pids(dir) {
                            let _ = rustix::process::kill_process(
                                rustix::process::Pid::from_raw(pid as i32).expect("pid > 0"),
                                rustix::process::Signal::KILL,
                            );
                        }
                    }
                }
                thaw(self.version, dir);
                left += read_pids(dir).len();
            }
            if left == 0 || Instant::now() > deadline {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        for dir in &dirs {
            for _ in 0..200 {
                if fs::remove_dir(dir).is_ok() || !dir.exists() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }
}

fn thaw(version: V, dir: &Path) {
    let _ = match version {
        V::V1 => fs::write(dir.join("freezer.state"), "THAWED"),
        V::V2 => fs::write(dir.join("cgroup.freeze"), "0"),
    };
}

fn subdirs_deepest_first(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                out.extend(subdirs_deepest_first(&e.path()));
            }
        }
    }
    if dir.is_dir() {
        out.push(dir.to_owned());
    }
    out
}

pub fn read_pids(dir: &Path) -> Vec<u32> {
    fs::read_to_string(dir.join("cgroup.procs"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

pub fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// The state letter of /proc/PID/stat (R, S, D, ...).
pub fn proc_state(pid: u32) -> Option<char> {
    freezer::proc::stat(Path::new("/proc"), pid)
        .ok()
        .map(|s| s.state)
}

/// Runs `stasis args...`, killing it if it takes more than a minute.
pub fn stasis(args: &[&str]) -> Run {
    run_bounded(Command::new(STASIS).args(args))
}

/// The JSON `stasis state` prints.
pub fn state_json(args: &[&str]) -> serde_json::Value {
    let mut full = vec!["state", "--format", "json"];
    full.extend_from_slice(args);
    let run = stasis(&full).ok();
    serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("json {e}: {run:?}"))
}

/// A scratch directory removed on drop.
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new() -> Self {
        let dir = std::env::temp_dir().join(unique_name());
        fs::create_dir(&dir).expect("mkdir scratch");
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

pub fn workload(name: &str) -> String {
    format!("{}/tests/workloads/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// A privileged container next to a target, as the kernel sees one: a
/// process in new cgroup and mount namespaces whose cgroup root is the
/// target's cgroup, with no cgroup filesystem mounted, living in a cgroup of
/// its own beside the target. Commands join its namespaces with `nsenter`.
pub struct Sidecar {
    child: Child,
    pub pid: u32,
}

impl Sidecar {
    /// Roots the namespace at `target` (while it is thawed), then moves the
    /// anchor into `home`, a sibling of the target.
    pub fn new(target: &TestCgroup, home: &TestCgroup) -> Self {
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(concat!(
                r#"echo $$ > "$0/cgroup.procs" && exec unshare --cgroup --mount --propagation private "#,
                r#"sh -c 'umount -l /sys/fs/cgroup && exec sleep 1000'"#
            ))
            .arg(&target.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .expect("spawn");
        let pid = child.id();
        let own_ns = fs::read_link("/proc/self/ns/cgroup").expect("own cgroup ns");
        wait_until(
            Duration::from_secs(30),
            "the sidecar to settle in its namespaces",
            || {
                if let Some(status) = child.try_wait().expect("try_wait") {
                    panic!("the sidecar exited early: {status}");
                }
                fs::read_link(format!("/proc/{pid}/ns/cgroup")).is_ok_and(|ns| ns != own_ns)
                    && fs::read_to_string(format!("/proc/{pid}/cmdline"))
                        .is_ok_and(|c| c.starts_with("sleep"))
            },
        );
        fs::write(home.dir.join("cgroup.procs"), pid.to_string())
            .expect("move to the sidecar's cgroup");
        Sidecar { child, pid }
    }

    /// Runs `stasis args...` in the sidecar's namespaces, from its cgroup.
    pub fn stasis(&self, args: &[&str]) -> Run {
        let run = run_bounded(
            Command::new("nsenter")
                .arg(format!("--target={}", self.pid))
                .args(["--cgroup", "--mount", "--", STASIS])
                .args(args),
        );
        assert_no_private_mount_left(run.pid);
        run
    }

    /// Runs `stasis args...` in the sidecar's namespaces but from inside
    /// `cgroup` (a caller that sits in the namespace root).
    pub fn stasis_from(&self, cgroup: &TestCgroup, args: &[&str]) -> Run {
        let run = run_bounded(
            Command::new("sh")
                .arg("-c")
                .arg(r#"echo $$ > "$0/cgroup.procs" && p=$1 s=$2 && shift 2 && exec nsenter --target="$p" --cgroup --mount -- "$s" "$@""#)
                .arg(&cgroup.dir)
                .arg(self.pid.to_string())
                .arg(STASIS)
                .args(args),
        );
        assert_no_private_mount_left(run.pid);
        run
    }
}

impl Drop for Sidecar {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The private mount stasis makes is named for its PID (nsenter and sh
/// exec it, so it is the PID we spawned); it must be gone.
fn assert_no_private_mount_left(pid: u32) {
    let dir = std::env::temp_dir().join(format!("stasis-cgroup-{pid}"));
    assert!(
        !dir.exists(),
        "private mount point left behind: {}",
        dir.display()
    );
}

/// A target with a busy counter, continuously forking processes and
/// sleepers; returns the counter file.
pub fn busy_forking_target(cg: &mut TestCgroup, scratch: &Scratch) -> PathBuf {
    let counter = scratch.0.join("counter");
    cg.spawn(
        "python3",
        &[&workload("counter.py"), counter.to_str().expect("utf8")],
    );
    for _ in 0..2 {
        cg.spawn("python3", &[&workload("forker.py")]);
    }
    for _ in 0..20 {
        cg.spawn("sleep", &["1000"]);
    }
    cg.wait_for_procs(23);
    wait_until(Duration::from_secs(30), "the counter to start", || {
        fs::read_to_string(&counter).is_ok_and(|s| s.trim().parse::<u64>().is_ok())
    });
    counter
}

/// Reads a counter a shell loop rewrites (retrying a read that caught it
/// truncated).
pub fn read_counter(path: &Path) -> u64 {
    for _ in 0..1000 {
        if let Ok(n) = fs::read_to_string(path).unwrap_or_default().trim().parse() {
            return n;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    panic!("counter {} is unreadable", path.display());
}

/// Asserts the counter does not move for a while.
#[track_caller]
pub fn assert_counter_stopped(path: &Path) {
    let at = read_counter(path);
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(read_counter(path), at, "the counter moved while paused");
}

/// Waits (bounded) for the counter to move.
pub fn wait_counter_moves(path: &Path) {
    let at = read_counter(path);
    wait_until(Duration::from_secs(30), "the counter to move", || {
        read_counter(path) > at
    });
}

/// Defines the tests `$name::v1` and `$name::v2`, each running `$body` with
/// that hierarchy, as root (see [`root_or_skip`]).
#[macro_export]
macro_rules! on_v1_and_v2 {
    ($name:ident, $body:path) => {
        mod $name {
            use super::*;

            #[test]
            fn v1() {
                if root_or_skip(concat!(stringify!($name), "::v1")) {
                    $body(V::V1);
                }
            }

            #[test]
            fn v2() {
                if root_or_skip(concat!(stringify!($name), "::v2")) {
                    $body(V::V2);
                }
            }
        }
    };
}

/// The `stasis-pause` artifact (the `pause` profile's static binary).
pub fn pause_binary() -> &'static Path {
    testkit::pause_artifact(Path::new(STASIS))
}

/// A state root of its own for a test, and the `stasis` commands run in it.
/// Dropping it force-removes every pod left (which kills their processes and
/// removes their cgroups, pins and state), then the directory.
pub struct Stasis {
    pub root: Scratch,
}

impl Stasis {
    pub fn new() -> Self {
        Stasis {
            root: Scratch::new(),
        }
    }

    /// `stasis --root ROOT args...`, not yet started.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(STASIS);
        cmd.arg("--root")
            .arg(&self.root.0)
            .args(args)
            .env("STASIS_PAUSE", pause_binary());
        cmd
    }

    /// Runs `stasis --root ROOT args...`, bounded.
    pub fn run(&self, args: &[&str]) -> Run {
        run_bounded(&mut self.command(args))
    }

    /// Runs `stasis --root ROOT args...` as the user nobody (uid and gid
    /// 65534, no groups), bounded.
    pub fn run_as_nobody(&self, args: &[&str]) -> Run {
        run_bounded(
            Command::new("setpriv")
                .args([
                    "--reuid=65534",
                    "--regid=65534",
                    "--clear-groups",
                    STASIS,
                    "--root",
                ])
                .arg(&self.root.0)
                .args(args),
        )
    }

    /// Starts `stasis --root ROOT args...` with piped stdio, for a caller
    /// that talks to it.
    pub fn spawn(&self, args: &[&str]) -> Child {
        self.command(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn stasis")
    }

    /// `stasis inspect NAME` as JSON (the first element).
    pub fn inspect(&self, name: &str) -> serde_json::Value {
        let run = self.run(&["inspect", name]).ok();
        let v: serde_json::Value = serde_json::from_str(&run.stdout).expect("inspect json");
        v[0].clone()
    }

    /// `stasis pod inspect NAME` as JSON (the first element).
    pub fn pod(&self, name: &str) -> serde_json::Value {
        let run = self.run(&["pod", "inspect", name]).ok();
        let v: serde_json::Value = serde_json::from_str(&run.stdout).expect("pod inspect json");
        v[0].clone()
    }

    /// Waits (bounded) for a container's log to contain `text`.
    pub fn wait_log(&self, container: &str, text: &str) -> String {
        let mut last = String::new();
        wait_until(
            Duration::from_secs(30),
            &format!("{container}'s log to say {text:?}"),
            || {
                // Either stream: the log keeps them apart.
                let logs = self.run(&["logs", container]);
                last = logs.stdout + &logs.stderr;
                last.contains(text)
            },
        );
        last
    }
}

impl Drop for Stasis {
    fn drop(&mut self) {
        let pods = self.run(&["pod", "ls", "-q"]).stdout;
        for pod in pods.split_whitespace() {
            let run = self.run(&["pod", "rm", "-f", pod]);
            if !run.status.success() {
                eprintln!("cleanup: pod rm -f {pod}: {run:?}");
            }
        }
    }
}

/// The host PIDs of a process's children (`/proc/PID/task/PID/children`).
pub fn children_of(pid: u32) -> Vec<u32> {
    fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

/// A busy forking target (counter, forkers, sleepers) whose PID 1 is a
/// shell in a PID namespace of its own, as a container's init is. The
/// `unshare` that makes the namespace stays in `launcher` (as a runtime's
/// monitor stays outside its container's cgroup), or in `cg` when there is
/// none; every process of the namespace is in `cg`. Returns the
/// counter file and the host PID of the namespace's PID 1.
pub fn pid_ns_forking_target(
    cg: &mut TestCgroup,
    launcher: Option<&mut TestCgroup>,
    scratch: &Scratch,
) -> (PathBuf, u32) {
    let counter = scratch.0.join("counter");
    let script = format!(
        r#"python3 {c} {out} & python3 {f} & python3 {f} & for i in $(seq 20); do sleep 1000 & done; wait"#,
        c = workload("counter.py"),
        f = workload("forker.py"),
        out = counter.display()
    );
    // The namespace's PID 1 moves itself (PID 1 there) before it starts
    // anything, so every child begins in the target.
    let script = format!(
        "echo 1 > {}/cgroup.procs && {{ {script}; }}",
        cg.dir.display()
    );
    let unshare = launcher.unwrap_or(cg).spawn(
        "unshare",
        &["--pid", "--fork", "--kill-child", "sh", "-c", &script],
    );
    cg.wait_for_procs(24);
    wait_until(Duration::from_secs(30), "the counter to start", || {
        fs::read_to_string(&counter).is_ok_and(|s| s.trim().parse::<u64>().is_ok())
    });
    let init = *children_of(unshare)
        .first()
        .expect("unshare forked the namespace's PID 1");
    (counter, init)
}

/// A privileged sidecar that shares the target's PID namespace (a
/// Kubernetes debug container, `docker run --pid container:X`): new cgroup
/// and mount namespaces rooted at the target's cgroup, no cgroup
/// filesystem, and a `/proc` of the target's PID namespace, so that PID 1
/// is the target's init. It lives in `home`, beside the target.
pub struct PidSidecar {
    child: Child,
    /// The host PID of the process that anchors the namespaces.
    pub pid: u32,
}

impl PidSidecar {
    pub fn new(target: &TestCgroup, home: &TestCgroup, target_init: u32) -> Self {
        // nsenter forks to enter the PID namespace; its child takes the
        // cgroup namespace rooted where the shell put itself, the target.
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(concat!(
                r#"echo $$ > "$0/cgroup.procs" && exec nsenter --target "$1" --pid -- "#,
                r#"unshare --cgroup --mount --propagation private "#,
                r#"sh -c 'umount -l /sys/fs/cgroup && mount -t proc proc /proc && exec sleep 1000'"#
            ))
            .arg(&target.dir)
            .arg(target_init.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .expect("spawn");
        let nsenter = child.id();
        let mut anchor = 0;
        wait_until(Duration::from_secs(30), "the sidecar to settle", || {
            if let Some(status) = child.try_wait().expect("try_wait") {
                panic!("the sidecar exited early: {status}");
            }
            anchor = children_of(nsenter).first().copied().unwrap_or(0);
            anchor != 0
                && fs::read_to_string(format!("/proc/{anchor}/cmdline"))
                    .is_ok_and(|c| c.starts_with("sleep"))
        });
        for pid in [nsenter, anchor] {
            fs::write(home.dir.join("cgroup.procs"), pid.to_string())
                .expect("move to the sidecar's cgroup");
        }
        PidSidecar { child, pid: anchor }
    }

    /// Runs `stasis args...` in the sidecar's PID, cgroup and mount
    /// namespaces, from its cgroup.
    pub fn stasis(&self, args: &[&str]) -> Run {
        run_bounded(
            Command::new("nsenter")
                .arg(format!("--target={}", self.pid))
                .args(["--pid", "--cgroup", "--mount", "--", STASIS])
                .args(args),
        )
    }
}

impl Drop for PidSidecar {
    fn drop(&mut self) {
        kill_pid(self.pid);
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn kill_pid(pid: u32) {
    if let Some(pid) = rustix::process::Pid::from_raw(pid as i32) {
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
    }
}

/// Asserts that `target` is paused by the subgroup strategy: every process
/// has left it for its frozen `stasis-frozen` child, its counter stands
/// still and nothing forks. Returns the child's directory.
#[track_caller]
pub fn assert_paused_in_subgroup(target: &TestCgroup, counter: &Path) -> PathBuf {
    let sub = target.dir.join("stasis-frozen");
    assert!(target.procs().is_empty(), "every process left the source");
    assert!(
        kernel_frozen(target.version, &sub),
        "the subgroup is frozen"
    );
    let inside = target.all_procs();
    assert_counter_stopped(counter);
    assert_eq!(
        target.all_procs().len(),
        inside.len(),
        "nothing forks while frozen"
    );
    sub
}

/// A port that was free a moment ago on 127.0.0.1.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// The stasis nf_tables tables in the caller's network namespace.
pub fn stasis_tables() -> Vec<String> {
    let run = run_bounded(Command::new("nft").args(["list", "tables"]));
    run.stdout
        .lines()
        .filter(|l| l.contains("stasis-"))
        .map(str::to_owned)
        .collect()
}

/// `stasis sandbox-image --output OUT --pause <the artifact> [--name NAME]`.
pub fn sandbox_image(s: &Stasis, out: &Path, name: Option<&str>) -> Run {
    let out = out.to_str().expect("utf-8");
    let pause = pause_binary().to_str().expect("utf-8");
    let mut args = vec!["sandbox-image", "--output", out, "--pause", pause];
    if let Some(n) = name {
        args.extend(["--name", n]);
    }
    s.run(&args)
}

/// Waits until process `pid` runs the pause artifact: a runtime reports
/// the task started once runc's init was told to exec, and for a moment
/// the process is still runc.
pub fn wait_until_pause_runs(pid: u32) {
    let pause = std::fs::read(pause_binary()).expect("the pause artifact");
    wait_until(
        Duration::from_secs(10),
        &format!("process {pid} runs stasis-pause"),
        || std::fs::read(format!("/proc/{pid}/exe")).is_ok_and(|exe| exe == pause),
    );
}

/// A busybox root filesystem with every applet, and /etc/passwd.
pub fn busybox_root(scratch: &Scratch) -> PathBuf {
    let root = scratch.0.join("rootfs");
    for d in ["bin", "etc", "tmp", "mnt"] {
        std::fs::create_dir_all(root.join(d)).expect("mkdir");
    }
    std::fs::copy("/bin/busybox", root.join("bin/busybox")).expect("busybox-static is installed");
    let list = run_bounded(std::process::Command::new("/bin/busybox").arg("--list")).ok();
    for applet in list.stdout.split_whitespace() {
        if applet != "busybox" {
            std::os::unix::fs::symlink("busybox", root.join("bin").join(applet)).expect("link");
        }
    }
    std::fs::write(
        root.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\n",
    )
    .expect("passwd");
    std::fs::write(root.join("etc/group"), "root:x:0:\nnobody:x:65534:\n").expect("group");
    root
}
