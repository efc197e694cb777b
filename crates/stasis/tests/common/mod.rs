//! Support for the real-kernel tests: the root gate, test cgroups that clean
//! up after themselves, and bounded runs of the `stasis` binary.
#![allow(dead_code)]

use std::collections::hash_map::RandomState;
use std::fs;
use std::hash::{BuildHasher, Hasher};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

pub const STASIS: &str = env!("CARGO_BIN_EXE_stasis");
pub const V1_MOUNT: &str = "/sys/fs/cgroup/freezer";
pub const V2_MOUNT: &str = "/sys/fs/cgroup/unified";

/// Whether a root-only test may run. Skips (with the reason) when not root,
/// and fails instead when `STASIS_REQUIRE_ROOT_TESTS=1`.
pub fn root_or_skip(test: &str) -> bool {
    if rustix::process::geteuid().is_root() {
        return true;
    }
    assert!(
        std::env::var_os("STASIS_REQUIRE_ROOT_TESTS").is_none_or(|v| v != "1"),
        "{test} needs root, and STASIS_REQUIRE_ROOT_TESTS=1 requires root tests to run"
    );
    eprintln!("skipping {test}: needs root (STASIS_REQUIRE_ROOT_TESTS=1 makes this a failure)");
    false
}

/// A unique name: `stasis-test-<random>`.
pub fn unique_name() -> String {
    let mut h = RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    h.write_u128(Instant::now().elapsed().as_nanos());
    format!("stasis-test-{:016x}", h.finish())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum V {
    V1,
    V2,
}

impl V {
    pub fn mount(self) -> &'static str {
        match self {
            V::V1 => V1_MOUNT,
            V::V2 => V2_MOUNT,
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
        let name = unique_name();
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
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')?.1.trim_start().chars().next()
}

/// Polls `cond` until it holds, panicking after `limit`.
pub fn wait_until(limit: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let end = Instant::now() + limit;
    while !cond() {
        assert!(
            Instant::now() < end,
            "timed out after {limit:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// What a bounded run of a command gave.
#[derive(Debug)]
pub struct Run {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn code(&self) -> i32 {
        self.status.code().unwrap_or(-1)
    }

    #[track_caller]
    pub fn ok(self) -> Self {
        assert!(self.status.success(), "expected success, got {self:?}");
        self
    }

    #[track_caller]
    pub fn fails_with(self, code: i32, message: &str) -> Self {
        assert_eq!(self.code(), code, "exit code; {self:?}");
        assert!(
            self.stderr.contains(message),
            "stderr should say {message:?}; {self:?}"
        );
        assert_eq!(
            self.stderr.trim_end().lines().count(),
            1,
            "one line; {self:?}"
        );
        self
    }
}

/// Runs `stasis args...`, killing it if it takes more than a minute.
pub fn stasis(args: &[&str]) -> Run {
    run_bounded(Command::new(STASIS).args(args))
}

pub fn run_bounded(cmd: &mut Command) -> Run {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let status = wait_bounded(&mut child, Duration::from_secs(60));
    let mut stdout = String::new();
    let mut stderr = String::new();
    child
        .stdout
        .take()
        .expect("piped")
        .read_to_string(&mut stdout)
        .expect("stdout");
    child
        .stderr
        .take()
        .expect("piped")
        .read_to_string(&mut stderr)
        .expect("stderr");
    Run {
        status,
        stdout,
        stderr,
    }
}

pub fn wait_bounded(child: &mut Child, limit: Duration) -> ExitStatus {
    let end = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status;
        }
        if Instant::now() > end {
            let _ = child.kill();
            let _ = child.wait();
            panic!("process {} did not finish within {limit:?}", child.id());
        }
        std::thread::sleep(Duration::from_millis(2));
    }
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
