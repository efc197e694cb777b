//! End-to-end tests of the `stasis-pause` artifact against the real kernel.
//!
//! They drive the binary the `pause` profile produces (the no-libc static
//! executable that ships), not the hosted variant `cargo test` builds: it is
//! built on first use with `cargo build -p stasis-pause --profile pause` into
//! the same target directory, or taken from `STASIS_PAUSE_BIN` when set (CI can
//! point it at the exact file it checked).
//!
//! Tests that need a new PID namespace need root: without it they print why
//! they skip, and fail instead when `STASIS_REQUIRE_ROOT_TESTS=1`. Every wait is
//! bounded, and every process a test starts is killed (by pidfd or by its
//! unreaped PID, never by name) in a `Drop` guard.

#![allow(unsafe_code)] // fork/setns/pidfd for the process trees under test

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

const TIMEOUT: Duration = Duration::from_secs(30);
const ORPHANS: u32 = 10_000;
/// x86_64 `rt_sigtimedwait`: the only syscall the idle artifact sleeps in.
const SYS_RT_SIGTIMEDWAIT: &str = "128";

// ---------------------------------------------------------------- support --

/// The artifact under test.
fn artifact() -> &'static Path {
    testkit::pause_artifact(Path::new(env!("CARGO_BIN_EXE_stasis-pause")))
}

use testkit::root_or_skip;

/// Polls `done` every few milliseconds until it holds; panics after TIMEOUT.
fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + TIMEOUT;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        sleep(Duration::from_millis(2));
    }
}

/// Waits for a child of ours, killing it (by its unreaped PID) after `limit`.
fn wait_child(child: &mut Child, limit: Duration) -> ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().expect("waitpid on our child") {
            return status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("child {} did not exit within {limit:?}", child.id());
        }
        sleep(Duration::from_millis(2));
    }
}

/// True once `pid` is asleep in `rt_sigtimedwait`: by then it has its signal
/// mask, subreaper flag, working directory and descriptors in their final state.
fn waits_for_signals(pid: u32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/syscall"))
        .is_ok_and(|s| s.split(' ').next() == Some(SYS_RT_SIGTIMEDWAIT))
}

/// A `/proc/<pid>/status` field, if the process (or its zombie) exists.
fn status_field(pid: u32, field: &str) -> Option<String> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        (key == field).then(|| value.trim().to_owned())
    })
}

fn exists(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

fn children_of(pid: u32) -> Vec<u32> {
    fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .map(|p| p.parse().expect("children lists PIDs"))
        .collect()
}

/// A pidfd: signals through it reach the process it was opened for, never a
/// later process that reuses the PID.
struct PidFd(OwnedFd);

impl PidFd {
    fn open(pid: u32) -> io::Result<Self> {
        // SAFETY: pidfd_open(pid, flags = 0) takes no pointers.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: the kernel just returned this descriptor and nothing else owns it.
        Ok(Self(unsafe { OwnedFd::from_raw_fd(fd as RawFd) }))
    }

    fn signal(&self, sig: libc::c_int) {
        // SAFETY: pidfd_send_signal(fd, sig, info = NULL, flags = 0); NULL info
        // means "as kill(2) would".
        unsafe {
            libc::syscall(
                libc::SYS_pidfd_send_signal,
                self.0.as_raw_fd(),
                sig,
                std::ptr::null::<libc::siginfo_t>(),
                0,
            )
        };
    }
}

/// `stasis-pause` started directly by the test (so not PID 1), killed on drop.
struct Pause {
    child: Child,
}

impl Pause {
    fn spawn(command: &mut Command) -> Self {
        let child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn stasis-pause");
        let pause = Self { child };
        let pid = pause.child.id();
        wait_until("stasis-pause waits for signals", || waits_for_signals(pid));
        pause
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends `sig`, waits for the exit, returns the status and stderr.
    fn stop(mut self, sig: libc::c_int) -> (ExitStatus, String) {
        // SAFETY: kill takes no pointers; the PID is our unreaped child.
        unsafe { libc::kill(self.pid() as libc::pid_t, sig) };
        let status = wait_child(&mut self.child, TIMEOUT);
        let mut stderr = String::new();
        if let Some(mut pipe) = self.child.stderr.take() {
            pipe.read_to_string(&mut stderr).expect("read stderr");
        }
        (status, stderr)
    }
}

impl Drop for Pause {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// `stasis-pause` as PID 1 of a new PID namespace, under `unshare --fork`.
struct Pid1 {
    unshare: Child,
    /// The host PID of `stasis-pause`, and a pidfd to signal it safely.
    pid: u32,
    pidfd: PidFd,
}

impl Pid1 {
    fn spawn() -> Self {
        let unshare = Command::new("unshare")
            .args(["--pid", "--fork", "--kill-child", "--"])
            .arg(artifact())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn unshare (util-linux)");
        let mut guard = Pid1Guard(Some(unshare));
        let parent = guard.child().id();
        let mut pid = 0;
        wait_until("unshare forks the namespace's PID 1", || {
            pid = children_of(parent).first().copied().unwrap_or(0);
            pid != 0 && fs::read_link(format!("/proc/{pid}/exe")).is_ok_and(|exe| exe == artifact())
        });
        let pidfd = PidFd::open(pid).expect("pidfd_open stasis-pause");
        wait_until("stasis-pause waits for signals", || waits_for_signals(pid));
        Self {
            unshare: guard.0.take().expect("guard holds unshare"),
            pid,
            pidfd,
        }
    }

    /// Sends `sig` from the host, returns how `unshare` (which exits as its
    /// child did) ended, and stasis-pause's stderr.
    fn stop(mut self, sig: libc::c_int) -> (ExitStatus, String) {
        self.pidfd.signal(sig);
        let status = wait_child(&mut self.unshare, TIMEOUT);
        let mut stderr = String::new();
        if let Some(mut pipe) = self.unshare.stderr.take() {
            pipe.read_to_string(&mut stderr).expect("read stderr");
        }
        (status, stderr)
    }
}

impl Drop for Pid1 {
    fn drop(&mut self) {
        if let Ok(None) = self.unshare.try_wait() {
            // SIGKILL from the parent namespace always reaches a namespace init;
            // its death kills everything else in the namespace. unshare reaps it
            // and exits: killing unshare first would leave a zombie on the host.
            self.pidfd.signal(libc::SIGKILL);
            let deadline = Instant::now() + TIMEOUT;
            while matches!(self.unshare.try_wait(), Ok(None)) && Instant::now() < deadline {
                sleep(Duration::from_millis(2));
            }
            let _ = self.unshare.kill();
            let _ = self.unshare.wait();
        }
    }
}

/// Kills `unshare` if `Pid1::spawn` panics before `Pid1` owns it.
struct Pid1Guard(Option<Child>);

impl Pid1Guard {
    fn child(&self) -> &Child {
        self.0.as_ref().expect("guard holds unshare")
    }
}

impl Drop for Pid1Guard {
    fn drop(&mut self) {
        if let Some(child) = &mut self.0 {
            // unshare --kill-child takes its child down with it.
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Bounded wait for data (or EOF) on a pipe, so a stuck writer fails the test.
fn wait_readable(file: &File) {
    let mut pfd = libc::pollfd {
        fd: file.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    let ms = TIMEOUT.as_millis() as libc::c_int;
    // SAFETY: poll reads and writes exactly the one pollfd it is given.
    let ready = unsafe { libc::poll(&mut pfd, 1, ms) };
    assert_eq!(ready, 1, "pipe not readable within {TIMEOUT:?}");
}

fn pipe() -> (File, File) {
    let mut fds = [0; 2];
    // SAFETY: pipe2 writes two descriptors into `fds`, which has room for two.
    let ret = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) };
    assert_eq!(ret, 0, "pipe2: {}", io::Error::last_os_error());
    // SAFETY: both descriptors were just created and are owned by nobody else.
    unsafe { (File::from_raw_fd(fds[0]), File::from_raw_fd(fds[1])) }
}

// ------------------------------------------------------------- behaviour --

#[test]
fn version_flags_print_name_and_version_and_exit_0() {
    for flag in ["-v", "--version"] {
        let out = Command::new(artifact()).arg(flag).output().expect("run -v");
        assert_eq!(out.status.code(), Some(0), "{flag}");
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            concat!("stasis-pause ", env!("CARGO_PKG_VERSION"), "\n"),
            "{flag}"
        );
        assert!(
            out.stderr.is_empty(),
            "{flag}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn other_arguments_are_a_one_line_usage_error_with_status_2() {
    for args in [&["-h"][..], &["--verbose"], &["-v", "extra"], &[""]] {
        let out = Command::new(artifact()).args(args).output().expect("run");
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(out.stdout.is_empty(), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
        assert!(stderr.contains("usage"), "{args:?}: {stderr}");
    }
}

#[test]
fn sigterm_and_sigint_exit_0_when_not_pid_1() {
    for sig in [libc::SIGTERM, libc::SIGINT] {
        let pause = Pause::spawn(&mut Command::new(artifact()));
        let (status, _) = pause.stop(sig);
        assert_eq!(status.code(), Some(0), "signal {sig}: {status}");
    }
}

#[test]
fn not_pid_1_says_so_in_one_line_on_stderr() {
    let pause = Pause::spawn(&mut Command::new(artifact()));
    assert_eq!(
        status_field(pause.pid(), "NSpid")
            .as_deref()
            .map(|s| s != "1"),
        Some(true)
    );
    let (status, stderr) = pause.stop(libc::SIGTERM);
    assert_eq!(status.code(), Some(0));
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("not running as PID 1"), "{stderr}");
}

#[test]
fn starts_in_root_dir_with_only_stdio_open() {
    let mut command = Command::new(artifact());
    command.current_dir(std::env::temp_dir());
    // SAFETY: the closure runs between fork and exec and only calls dup2,
    // which is async-signal-safe.
    unsafe {
        command.pre_exec(|| {
            // dup2'd descriptors lack FD_CLOEXEC: the inherited leak to clean up.
            for fd in [5, 200] {
                if libc::dup2(2, fd) < 0 {
                    return Err(io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    let pause = Pause::spawn(&mut command);
    let pid = pause.pid();
    assert_eq!(
        fs::read_link(format!("/proc/{pid}/cwd")).expect("cwd"),
        Path::new("/")
    );
    let mut fds: Vec<u32> = fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("list fds")
        .map(|e| {
            e.expect("fd entry")
                .file_name()
                .to_string_lossy()
                .parse()
                .expect("fd")
        })
        .collect();
    fds.sort_unstable();
    assert_eq!(fds, [0, 1, 2]);
    assert_eq!(pause.stop(libc::SIGTERM).0.code(), Some(0));
}

#[test]
fn not_pid_1_reaps_orphans_of_its_descendants_as_subreaper() {
    // The descendant D is forked before exec, so it is a child of stasis-pause
    // from the start; on a byte from the test it forks a long-lived G, reports
    // both PIDs and exits, orphaning G. Without the subreaper flag G would be
    // re-parented to the host's init (or whichever subreaper is above us).
    let (go_r, mut go_w) = pipe();
    let (mut report_r, report_w) = pipe();
    let (go_fd, report_fd) = (go_r.as_raw_fd(), report_w.as_raw_fd());
    let mut command = Command::new(artifact());
    // SAFETY: the closure runs between fork and exec of a single-threaded child,
    // and D and G only make async-signal-safe calls (fork, dup2, close_range,
    // read, write, getpid, pause, _exit) on memory of their own.
    unsafe {
        command.pre_exec(move || {
            match libc::fork() {
                -1 => Err(io::Error::last_os_error()),
                0 => {
                    // D: keep only the two pipe ends (as fds 0 and 1), so no
                    // other test's pipe is held open by this long-lived tree.
                    libc::dup2(go_fd, 0);
                    libc::dup2(report_fd, 1);
                    libc::syscall(libc::SYS_close_range, 2u32, u32::MAX, 0u32);
                    let mut byte = 0u8;
                    if libc::read(0, (&raw mut byte).cast(), 1) != 1 {
                        libc::_exit(3);
                    }
                    let g = libc::fork();
                    if g == 0 {
                        libc::close(0);
                        libc::close(1);
                        loop {
                            libc::pause();
                        }
                    }
                    let pids = [libc::getpid(), g];
                    libc::write(1, pids.as_ptr().cast(), size_of_val(&pids));
                    libc::_exit(0)
                }
                _ => Ok(()),
            }
        });
    }
    let pause = Pause::spawn(&mut command);
    drop((go_r, report_w));
    let pause_pid = pause.pid();

    go_w.write_all(b"g").expect("wake D");
    let mut raw = [0u8; 8];
    wait_readable(&report_r);
    report_r
        .read_exact(&mut raw)
        .expect("D reports its PID and G's");
    let d = u32::from_ne_bytes(raw[..4].try_into().expect("4 bytes"));
    let g = u32::from_ne_bytes(raw[4..].try_into().expect("4 bytes"));
    assert!(g > 0, "D could not fork G");
    let g_fd = PidFd::open(g).expect("pidfd for G");
    let _kill_g = KillOnDrop(&g_fd);

    wait_until("stasis-pause reaps D, its own child", || !exists(d));
    wait_until("orphaned G is re-parented", || {
        status_field(g, "PPid").is_some_and(|p| p != d.to_string())
    });
    assert_eq!(
        status_field(g, "PPid"),
        Some(pause_pid.to_string()),
        "G went elsewhere"
    );

    g_fd.signal(libc::SIGKILL);
    wait_until("stasis-pause reaps G (no zombie left)", || !exists(g));
    assert_eq!(children_of(pause_pid), Vec::<u32>::new());
    assert_eq!(pause.stop(libc::SIGTERM).0.code(), Some(0));
}

struct KillOnDrop<'a>(&'a PidFd);

impl Drop for KillOnDrop<'_> {
    fn drop(&mut self) {
        self.0.signal(libc::SIGKILL);
    }
}

#[test]
fn pid_1_exits_0_on_sigterm_and_sigint() {
    if !root_or_skip("pid_1_exits_0_on_sigterm_and_sigint") {
        return;
    }
    for sig in [libc::SIGTERM, libc::SIGINT] {
        let pid1 = Pid1::spawn();
        let nspid = status_field(pid1.pid, "NSpid").expect("NSpid");
        assert_eq!(nspid.split_whitespace().last(), Some("1"), "NSpid {nspid}");
        let (status, stderr) = pid1.stop(sig);
        // unshare exits with its child's status, or dies of its child's signal.
        assert_eq!(
            status.code(),
            Some(0),
            "signal {sig}: {status:?} (signal {:?})",
            status.signal()
        );
        assert!(stderr.is_empty(), "PID 1 must not warn: {stderr}");
    }
}

#[test]
fn pid_1_reaps_10000_orphans_leaving_no_zombie() {
    if !root_or_skip("pid_1_reaps_10000_orphans_leaving_no_zombie") {
        return;
    }
    let pid1 = Pid1::spawn();
    let ns = File::open(format!("/proc/{}/ns/pid", pid1.pid)).expect("open the pod's pid ns");
    let ns_fd = ns.as_raw_fd();

    // C joins the namespace for its children and forks D there; D forks the
    // orphans, which exit at once, and exits without waiting for any of them,
    // so all are re-parented to stasis-pause (as zombies or about to be).
    // SAFETY: the child of fork in this multi-threaded process only makes
    // async-signal-safe calls (setns, close_range, fork, waitpid, _exit).
    let c = unsafe { libc::fork() };
    assert!(c >= 0, "fork: {}", io::Error::last_os_error());
    if c == 0 {
        // SAFETY: see above; every path ends in _exit.
        unsafe {
            if libc::setns(ns_fd, libc::CLONE_NEWPID) != 0 {
                libc::_exit(10);
            }
            libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32);
            let d = libc::fork();
            if d == 0 {
                for _ in 0..ORPHANS {
                    match libc::fork() {
                        0 => libc::_exit(0),
                        -1 => libc::_exit(12),
                        _ => {}
                    }
                }
                libc::_exit(0);
            }
            let mut status = 0;
            if d < 0 || libc::waitpid(d, &mut status, 0) != d {
                libc::_exit(11);
            }
            libc::_exit(if libc::WIFEXITED(status) {
                libc::WEXITSTATUS(status)
            } else {
                13
            });
        }
    }
    let c_status = wait_pid(c as u32);
    assert_eq!(
        c_status,
        Some(0),
        "forking {ORPHANS} orphans in the namespace failed"
    );

    wait_until("stasis-pause has reaped every orphan", || {
        children_of(pid1.pid).is_empty()
    });
    let ns_id = fs::read_link(format!("/proc/{}/ns/pid", pid1.pid)).expect("ns id");
    let left: Vec<String> = fs::read_dir("/proc")
        .expect("list /proc")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|name| name.bytes().all(|b| b.is_ascii_digit()))
        .filter(|pid| fs::read_link(format!("/proc/{pid}/ns/pid")).is_ok_and(|id| id == ns_id))
        .collect();
    assert_eq!(
        left,
        [pid1.pid.to_string()],
        "processes left in the namespace"
    );
    let (status, _) = pid1.stop(libc::SIGTERM);
    assert_eq!(status.code(), Some(0));
}

/// Bounded wait for a raw-forked child of the test process: its exit code.
fn wait_pid(pid: u32) -> Option<i32> {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let mut status = 0;
        // SAFETY: waitpid writes one int into `status`, which lives for the call.
        let ret = unsafe { libc::waitpid(pid as libc::pid_t, &mut status, libc::WNOHANG) };
        if ret == pid as libc::pid_t {
            return libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status));
        }
        if Instant::now() >= deadline {
            // SAFETY: kill/waitpid take no pointers besides `status`; the PID is
            // our unreaped child, so it cannot have been reused.
            unsafe {
                libc::kill(pid as libc::pid_t, libc::SIGKILL);
                libc::waitpid(pid as libc::pid_t, &mut status, 0);
            }
            panic!("forked child {pid} did not exit within {TIMEOUT:?}");
        }
        sleep(Duration::from_millis(2));
    }
}
