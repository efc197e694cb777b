//! Bounded waits and runs of commands, and unique names: every wait of a
//! test ends, and everything a test makes is called `stasis-test-<random>`.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::io::Read;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// A unique name: `stasis-test-<random>`.
pub fn unique_name() -> String {
    let mut h = RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    h.write_u128(Instant::now().elapsed().as_nanos());
    format!("stasis-test-{:016x}", h.finish())
}

/// A random Kubernetes pod UID (a version-4-shaped UUID), as the API
/// server gives pods.
pub fn pod_uid() -> String {
    let hex: String = (0..2)
        .map(|i| {
            let mut h = RandomState::new().build_hasher();
            h.write_u32(i);
            format!("{:016x}", h.finish())
        })
        .collect();
    format!(
        "{}-{}-4{}-a{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[13..16],
        &hex[17..20],
        &hex[20..32]
    )
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
    pub pid: u32,
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

    /// A usage error: exit 2 and one line on stderr, as clap's errors print.
    #[track_caller]
    pub fn fails_with_usage(self) -> Self {
        self.fails_with(2, "stasis: ")
    }
}

pub fn run_bounded(cmd: &mut Command) -> Run {
    run_fed(cmd, None)
}

/// [`run_bounded`], with `input` on a pipe as its stdin (closed after it),
/// or `/dev/null` for `None`.
pub fn run_fed(cmd: &mut Command, input: Option<&[u8]>) -> Run {
    let mut child = cmd
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    if let (Some(bytes), Some(mut stdin)) = (input, child.stdin.take()) {
        std::io::Write::write_all(&mut stdin, bytes).expect("feed stdin");
    }
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
        pid: child.id(),
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

/// Stops a child of the test as an operator would: SIGTERM, then SIGKILL
/// if it has not exited within `limit`; reaped either way. Returns whether
/// it exited on the SIGTERM. Safe in a `Drop` (it never panics).
pub fn terminate(child: &mut Child, limit: Duration) -> bool {
    if child.try_wait().ok().flatten().is_some() {
        return true;
    }
    // Our own child, unreaped: its PID is its own.
    let _ = rustix::process::kill_process(
        rustix::process::Pid::from_child(child),
        rustix::process::Signal::TERM,
    );
    let end = Instant::now() + limit;
    while Instant::now() < end {
        if child.try_wait().ok().flatten().is_some() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = child.kill();
    let _ = child.wait();
    false
}

/// A file's text without its surrounding white space (a kernel file's
/// trailing newline); panics naming the path if it cannot be read.
pub fn read_trimmed(path: &std::path::Path) -> String {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .trim()
        .to_owned()
}
