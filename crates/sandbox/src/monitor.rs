//! The monitor: the parent of a container's process, like conmon. It starts
//! the process in the pod's namespaces and the container's cgroup leaf,
//! sends its stdout and stderr to the log, records when it started and how
//! it ended, and reaps whatever the container orphans meanwhile (it is a
//! child subreaper). It reports on `ready` — one JSON line, a [`Ready`] —
//! and closes it, so the CLI can return at once. A container with a health
//! check gets a checker process (see `health`), which the monitor starts
//! once the container runs and kills when it ends. After the exit it does
//! what `teardown` says: `--rm`, and the end of an implicit pod.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::fd::OwnedFd;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use rustix::process::{WaitOptions, WaitStatus};
use serde::{Deserialize, Serialize};

use crate::container::{ContainerRecord, ExitRecord};
use crate::error::{Error, Kind, Result};
use crate::health::HealthState;
use crate::id::Id;
use crate::logs::Stream;
use crate::ns::{self, Namespace};
use crate::process::ProcessRef;
use crate::spawn::{spawn_member, MemberSpawn};
use crate::{now, Sandbox};

/// What the monitor tells the CLI that started it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "ready", rename_all = "lowercase")]
pub(crate) enum Ready {
    /// The container's process runs.
    Started { pid: u32 },
    /// It could not start; `code` is the exit status recorded for it.
    Failed { code: i32, message: String },
}

impl Ready {
    fn send(&self, mut out: impl Write) {
        if let Ok(line) = serde_json::to_string(self) {
            let _ = writeln!(out, "{line}");
            let _ = out.flush();
        }
    }

    /// The message in what the monitor wrote, if it wrote one.
    pub(crate) fn parse(text: &str) -> Option<Ready> {
        serde_json::from_str(text.trim()).ok()
    }
}

impl Sandbox {
    /// Runs the monitor of container `id` until its process ends. Call it
    /// in a process of its own (single-threaded: it switches its PID
    /// namespace for children). `checker` is the command that runs
    /// [`Sandbox::run_health_checks`] for it (the `stasis` binary in its
    /// internal mode), started only if the container has a health check.
    ///
    /// With `restore`, the first process is the container's checkpoint
    /// brought back by CRIU (see `checkpoint`) rather than its command;
    /// a restart its policy asks for later starts the command.
    pub fn run_monitor(
        &self,
        id: &Id,
        ready: impl Write,
        checker: Command,
        restore: Option<crate::checkpoint::Restore>,
    ) -> Result<()> {
        rustix::process::set_child_subreaper(Some(rustix::process::getpid()))
            .map_err(|e| Error::Subreaper(e.into()))?;
        // It outlives the command that started it: hold no directory busy.
        std::env::set_current_dir("/").map_err(|source| Error::Chdir {
            path: "/".into(),
            source,
        })?;
        let container = self.container(id)?;
        // Before the process starts: once `run` hears it started, it
        // connects.
        let interactive = container.stdio.open_stdin || container.stdio.tty;
        let mut server = Server {
            listener: if interactive {
                Some(crate::attach::listen(&self.store.dir(Kind::Container, id))?)
            } else {
                None
            },
            clients: Vec::new(),
            input: None,
        };
        let first = match &restore {
            Some(r) => self.restore_started(&container, &mut server, r),
            None => self
                .start_process(&container, &mut server)
                .map(|(child, output)| (child.id(), output)),
        };
        let (child, mut output) = match first {
            Ok(started) => started,
            Err(e) => {
                // Docker's codes for a command that cannot run.
                let code = e.command_exit_code(false).map_or(126, i32::from);
                let message = crate::error::chain_text(&e);
                // It never ran, but it has ended, with an exit code
                // (recorded after the event, as below).
                self.container_event(&container, "die", &[("exitCode", code.to_string())]);
                self.record(id, |c| {
                    c.exit = Some(ExitRecord {
                        code,
                        finished: now(),
                        error: Some(message.clone()),
                        oom_killed: false,
                        checkpointed: false,
                    })
                })?;
                Ready::Failed { code, message }.send(ready);
                return self.after_exit(&container);
            }
        };
        let checked = container.healthcheck.is_some();
        self.record_start(id, child, |c| {
            c.health = checked.then(HealthState::starting);
            c.checkpointing = false;
            if restore.is_some() {
                // A restored container's policy applies again.
                c.stopped = false;
            }
        })?;
        // Before the answer, so that the event is in the journal by the time
        // `run` returns.
        let event = if restore.is_some() {
            "restore"
        } else {
            "start"
        };
        self.container_event(&container, event, &[]);
        Ready::Started { pid: child }.send(ready);
        // The container runs either way: a checker that cannot start is
        // logged, and its health stays "starting".
        let mut checker = match checked.then(|| start_checker(checker, &container.name)) {
            Some(Ok(child)) => Some(child),
            Some(Err(e)) => {
                tracing::warn!(error = %crate::error::chain_text(&e), "no health checks");
                None
            }
            None => None,
        };
        let cgroups = self.cgroups_of(&container.pod)?;
        let leaf = container.id.as_str();
        let mut backoff = crate::restart::Backoff::default();
        let mut child = child;
        loop {
            let began = Instant::now();
            let oom_before = cgroups.oom_kills(leaf);
            let code = self.reap_until(
                child,
                &mut output,
                &mut server,
                &mut checker,
                &container.name,
            )?;
            let oom_killed = cgroups.oom_kills(leaf) > oom_before;
            if oom_killed {
                self.container_event(&container, "oom", &[]);
            }
            // Decided and recorded under the record's lock, where `stop`,
            // `kill` and `rm` mark it stopped: either they see it restarting
            // and wait for the back-off to end, or it sees them.
            let mut restart = false;
            // Before the exit is recorded: `stop` waits for the record, and
            // its own event must come after this one, as docker orders them.
            self.container_event(&container, "die", &[("exitCode", code.to_string())]);
            self.record(id, |c| {
                let checkpointed = c.checkpointing;
                restart =
                    !c.stopped && !checkpointed && c.restart.should_restart(code, c.restart_count);
                c.restarting = restart;
                c.exit = Some(ExitRecord {
                    // CRIU's kill once the images are written is how a
                    // checkpoint ends it: a clean end, as podman reports.
                    code: if checkpointed { 0 } else { code },
                    finished: now(),
                    error: None,
                    oom_killed,
                    checkpointed,
                })
            })?;
            if !restart {
                break;
            }
            let delay = backoff.next(began.elapsed());
            if !self.restart_delay(id, &cgroups, leaf, delay)? {
                break;
            }
            let fresh = self.container(id)?;
            match self.start_process(&fresh, &mut server) {
                Ok((next, next_output)) => {
                    output = next_output;
                    let mut stopped = false;
                    let next = next.id();
                    self.record_start(id, next, |c| {
                        c.restart_count += 1;
                        c.restarting = false;
                        c.exit = None;
                        stopped = c.stopped;
                    })?;
                    self.container_event(&fresh, "start", &[]);
                    if stopped {
                        // A `stop` came as it started: it ends now.
                        if let Some(p) = rustix::process::Pid::from_raw(next as i32) {
                            let _ = rustix::process::kill_process(p, rustix::process::Signal::KILL);
                        }
                    }
                    child = next;
                }
                Err(e) => {
                    let code = e.command_exit_code(false).map_or(126, i32::from);
                    let message = crate::error::chain_text(&e);
                    self.container_event(&fresh, "die", &[("exitCode", code.to_string())]);
                    self.record(id, |c| {
                        c.restarting = false;
                        c.exit = Some(ExitRecord {
                            code,
                            finished: now(),
                            error: Some(message.clone()),
                            oom_killed: false,
                            checkpointed: false,
                        })
                    })?;
                    break;
                }
            }
        }
        if let Some(mut checker) = checker {
            // Not reaped yet, so its PID is still its own.
            let _ = checker.kill();
            let _ = checker.wait();
        }
        self.after_exit(&self.container(id).unwrap_or(container))
    }

    /// Records a (re)started process, and whatever else `change` says.
    fn record_start(
        &self,
        id: &Id,
        child: u32,
        change: impl FnOnce(&mut ContainerRecord),
    ) -> Result<()> {
        let process = ProcessRef::of(&self.host.proc, child);
        let monitor = ProcessRef::of(&self.host.proc, std::process::id());
        self.record(id, |c| {
            c.process = process;
            c.monitor = monitor;
            c.started = Some(now());
            change(c);
        })
    }

    /// Copies the container's output to its log and reaps everything
    /// until `child` ends; its exit code as docker reports it. A health
    /// checker that ends is forgotten. Single-threaded: one poll on the two
    /// pipes and a pidfd of the container's process (orphans, which this
    /// subreaper inherits, are reaped at each wake-up, at least every
    /// second).
    fn reap_until(
        &self,
        pid: u32,
        output: &mut Output,
        server: &mut Server,
        checker: &mut Option<Child>,
        name: &str,
    ) -> Result<i32> {
        use rustix::event::{PollFd, PollFlags};
        let pidfd = rustix::process::Pid::from_raw(pid as i32)
            .ok_or(Error::WaitChild(std::io::ErrorKind::InvalidInput.into()))
            .and_then(|p| {
                rustix::process::pidfd_open(p, rustix::process::PidfdFlags::empty())
                    .map_err(|e| Error::WaitChild(e.into()))
            })?;
        let timeout = rustix::event::Timespec {
            tv_sec: 1,
            tv_nsec: 0,
        };
        loop {
            let mut fds = vec![PollFd::new(&pidfd, PollFlags::IN)];
            for (_, fd) in output.open() {
                fds.push(PollFd::new(fd, PollFlags::IN));
            }
            server.poll_fds(&mut fds);
            match rustix::event::poll(&mut fds, Some(&timeout)) {
                Ok(_) | Err(rustix::io::Errno::INTR) => {}
                Err(e) => return Err(Error::WaitChild(e.into())),
            }
            drop(fds);
            output.copy()?;
            server.service();
            loop {
                match rustix::process::wait(WaitOptions::NOHANG) {
                    Ok(Some((p, status))) => {
                        let p = p.as_raw_nonzero().get() as u32;
                        if p == pid {
                            // What it wrote last is in the pipes still.
                            output.copy()?;
                            return Ok(code_of(status));
                        }
                        if checker.as_ref().is_some_and(|c| c.id() == p) {
                            tracing::warn!(container = %name, ?status, "the health checker ended");
                            *checker = None;
                        }
                    }
                    Ok(None) | Err(rustix::io::Errno::CHILD) => break,
                    Err(rustix::io::Errno::INTR) => {}
                    Err(e) => return Err(Error::WaitChild(e.into())),
                }
            }
        }
    }

    /// The back-off before a restart, then for as long as the container's
    /// leaf or its pod is frozen (a paused container is not started again:
    /// a process moved into a frozen cgroup would freeze before its exec).
    /// `false` if a `stop`, `kill` or `rm` ended the policy meanwhile (the
    /// record then says it is no longer restarting).
    fn restart_delay(
        &self,
        id: &Id,
        cgroups: &crate::cgroups::PodCgroups,
        leaf: &str,
        delay: Duration,
    ) -> Result<bool> {
        let mut watch = crate::watch::Watch::new(&self.store.dir(Kind::Container, id))?;
        let end = Instant::now() + delay;
        loop {
            let stopped = self.container(id).map_or(true, |c| c.stopped);
            if stopped {
                // Removed meanwhile, or stopped: nothing to restart.
                let _ = self.record(id, |c| c.restarting = false);
                return Ok(false);
            }
            let now = Instant::now();
            let frozen = cgroups.is_frozen(None) || cgroups.is_frozen(Some(leaf));
            if now >= end && !frozen {
                return Ok(true);
            }
            let wait = if now < end {
                end - now
            } else {
                Duration::from_millis(100)
            };
            watch.wait(wait.min(Duration::from_millis(100)))?;
        }
    }

    /// Starts the container's process; its input (`-i`, `-t`) goes to
    /// `server`.
    fn start_process(&self, c: &ContainerRecord, server: &mut Server) -> Result<(Child, Output)> {
        let pod = self.pod(&c.pod)?;
        let (log, log_path, stdio) = self.open_stdio(c, server)?;
        self.spawn_process(c, &pod, log, log_path, stdio)
    }

    /// Brings the container's process back from its checkpoint, its
    /// streams on new pipes (its input to `server`, as for a start); its
    /// PID.
    fn restore_started(
        &self,
        c: &ContainerRecord,
        server: &mut Server,
        restore: &crate::checkpoint::Restore,
    ) -> Result<(u32, Output)> {
        let (log, log_path, stdio) = self.open_stdio(c, server)?;
        match stdio {
            ChildStdio::Tty { .. } => Err(crate::checkpoint::CheckpointError::Refused {
                container: c.name.clone(),
                reason: crate::checkpoint::TTY_REFUSAL.to_owned(),
            }
            .into()),
            ChildStdio::Pipes {
                stdin,
                out_read,
                out_write,
                err_read,
                err_write,
            } => {
                let pid = self.restore_process(c, restore, stdin, out_write, err_write)?;
                Ok((pid, Output::new(log, log_path, vec![out_read, err_read])?))
            }
        }
    }

    /// The container's log, opened to append, and its standard streams.
    fn open_stdio(
        &self,
        c: &ContainerRecord,
        server: &mut Server,
    ) -> Result<(std::fs::File, std::path::PathBuf, ChildStdio)> {
        let log_path = self.log_path(c);
        let open_log = |source| Error::OpenLog {
            path: log_path.clone(),
            source,
        };
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(open_log)?;
        // Two pipes, so that the streams stay apart in the log.
        let pipe = || {
            rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)
                .map_err(|e| open_log(e.into()))
        };
        // A TTY: one terminal for the three streams, its master read into
        // the log as stdout (docker's TTY logs have one stream).
        let stdio = if c.stdio.tty {
            let (master, slave) = open_pty().map_err(Error::Pty)?;
            let input = master.try_clone().map_err(Error::Pty)?;
            rustix::fs::fcntl_setfl(&input, rustix::fs::OFlags::NONBLOCK)
                .map_err(|e| Error::Pty(e.into()))?;
            server.input = Some(crate::attach::Input {
                fd: Some(input),
                pending: Vec::new(),
                tty: true,
                close_after: false,
            });
            ChildStdio::Tty { master, slave }
        } else {
            let (out_read, out_write) = pipe()?;
            let (err_read, err_write) = pipe()?;
            let stdin = if c.stdio.open_stdin {
                let (read, write) = pipe()?;
                rustix::fs::fcntl_setfl(&write, rustix::fs::OFlags::NONBLOCK)
                    .map_err(|e| open_log(e.into()))?;
                server.input = Some(crate::attach::Input {
                    fd: Some(write),
                    pending: Vec::new(),
                    tty: false,
                    close_after: false,
                });
                Some(read)
            } else {
                None
            };
            ChildStdio::Pipes {
                stdin,
                out_read,
                out_write,
                err_read,
                err_write,
            }
        };
        Ok((log, log_path, stdio))
    }

    /// Starts the container's command with these streams.
    fn spawn_process(
        &self,
        c: &ContainerRecord,
        pod: &crate::pod::PodRecord,
        log: std::fs::File,
        log_path: std::path::PathBuf,
        stdio: ChildStdio,
    ) -> Result<(Child, Output)> {
        let spec = MemberSpawn {
            proc: self.host.proc.clone(),
            argv: c.command.clone(),
            env: self.base_env(pod, c),
            workdir: c.workdir.clone(),
            joins: ns::open(&self.pod_dir(pod), &pod.share)?,
            leaf_procs: self.pod_cgroups(pod)?.leaf_procs(c.id.as_str()),
            rootfs: c.rootfs.clone(),
            rootfs_options: c.isolation.rootfs_options(),
            mount_ns: None,
            // Its own PID namespace (or the pod's) needs a /proc of its
            // own, and so a mount namespace of its own.
            mount_proc: true,
            new_session: true,
            controlling_tty: c.stdio.tty,
            user: c.user,
            new_pid_ns: !pod.share.contains(&Namespace::Pid),
            confine: Some(c.isolation.confine()?),
        };
        let (child, output) = match stdio {
            ChildStdio::Tty { master, slave } => {
                let dup = |fd: &OwnedFd| fd.try_clone().map(Stdio::from);
                let (i, o, e) = (dup(&slave), dup(&slave), dup(&slave));
                let (i, o, e) = (
                    i.map_err(Error::Pty)?,
                    o.map_err(Error::Pty)?,
                    e.map_err(Error::Pty)?,
                );
                let child = spawn_member(spec, move |cmd| {
                    cmd.stdin(i).stdout(o).stderr(e);
                })?;
                // The child's copies only: the master sees the end of the
                // terminal once the container's processes close it.
                drop(slave);
                (child, Output::new(log, log_path.clone(), vec![master])?)
            }
            ChildStdio::Pipes {
                stdin,
                out_read,
                out_write,
                err_read,
                err_write,
            } => {
                let child = spawn_member(spec, move |cmd| {
                    cmd.stdin(stdin.map_or_else(Stdio::null, Stdio::from))
                        .stdout(Stdio::from(out_write))
                        .stderr(Stdio::from(err_write));
                })?;
                (
                    child,
                    Output::new(log, log_path.clone(), vec![out_read, err_read])?,
                )
            }
        };
        Ok((child, output))
    }

    /// Updates a container's record under its lock.
    pub(crate) fn record(&self, id: &Id, change: impl FnOnce(&mut ContainerRecord)) -> Result<()> {
        let _lock = self.store.lock_record(Kind::Container, id)?;
        let mut c = self.container(id)?;
        change(&mut c);
        self.store.write(Kind::Container, id, &c)
    }
}

/// The read ends of a container's stdout and stderr, and its log, where
/// what they carry goes as frames (see `logs`).
struct Output {
    log: std::fs::File,
    path: std::path::PathBuf,
    /// Each stream's pipe, until its end of file.
    pipes: Vec<(Stream, Option<OwnedFd>)>,
}

impl Output {
    /// `fds`: stdout and stderr, or a terminal's master alone (stdout).
    fn new(log: std::fs::File, path: std::path::PathBuf, fds: Vec<OwnedFd>) -> Result<Self> {
        for fd in &fds {
            // Drained without blocking: a pipe is read only as far as it has
            // data, so one stream cannot hold the other up.
            rustix::fs::fcntl_setfl(fd, rustix::fs::OFlags::NONBLOCK).map_err(|e| {
                Error::OpenLog {
                    path: path.clone(),
                    source: e.into(),
                }
            })?;
        }
        let pipes = [Stream::Stdout, Stream::Stderr]
            .into_iter()
            .zip(fds)
            .map(|(s, fd)| (s, Some(fd)))
            .collect();
        Ok(Output { log, path, pipes })
    }

    /// The pipes still open.
    fn open(&self) -> impl Iterator<Item = (Stream, &OwnedFd)> {
        self.pipes
            .iter()
            .filter_map(|(s, fd)| fd.as_ref().map(|fd| (*s, fd)))
    }

    /// Copies whatever the pipes hold now to the log.
    fn copy(&mut self) -> Result<()> {
        let mut buf = vec![0u8; 64 * 1024];
        for (stream, slot) in &mut self.pipes {
            let Some(fd) = slot.as_ref() else { continue };
            loop {
                match rustix::io::read(fd, &mut buf) {
                    Ok(0) => {
                        *slot = None;
                        break;
                    }
                    Ok(n) => {
                        let framed = crate::logs::frames(*stream, SystemTime::now(), &buf[..n]);
                        self.log
                            .write_all(&framed)
                            .map_err(|source| Error::CopyLog {
                                path: self.path.clone(),
                                source,
                            })?;
                    }
                    Err(rustix::io::Errno::AGAIN) => break,
                    Err(rustix::io::Errno::INTR) => {}
                    // A terminal's master once no process holds its slave:
                    // its end of file.
                    Err(rustix::io::Errno::IO) => {
                        *slot = None;
                        break;
                    }
                    Err(e) => {
                        return Err(Error::ReadLog {
                            path: self.path.clone(),
                            source: e.into(),
                        })
                    }
                }
            }
        }
        Ok(())
    }
}

/// The container's standard streams, before its start.
enum ChildStdio {
    Tty {
        master: OwnedFd,
        slave: OwnedFd,
    },
    Pipes {
        stdin: Option<OwnedFd>,
        out_read: OwnedFd,
        out_write: OwnedFd,
        err_read: OwnedFd,
        err_write: OwnedFd,
    },
}

/// A new pseudo-terminal: its master and its slave, neither of them the
/// monitor's controlling terminal.
pub(crate) fn open_pty() -> std::io::Result<(OwnedFd, OwnedFd)> {
    use rustix::pty::{grantpt, openpt, ptsname, unlockpt, OpenptFlags};
    let master = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC)?;
    grantpt(&master)?;
    unlockpt(&master)?;
    let name = ptsname(&master, Vec::new())?;
    let slave = rustix::fs::open(
        name.as_c_str(),
        rustix::fs::OFlags::RDWR | rustix::fs::OFlags::NOCTTY | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )?;
    Ok((master, slave))
}

/// The attach socket, the clients connected to it, and the container's
/// input they feed.
struct Server {
    listener: Option<std::os::unix::net::UnixListener>,
    /// Each client and the bytes of a frame it has not finished.
    clients: Vec<(std::os::unix::net::UnixStream, Vec<u8>)>,
    input: Option<crate::attach::Input>,
}

/// Input held for a container that does not read it: past this, clients
/// are not read until it does (they then block, not the monitor).
const INPUT_BACKLOG: usize = 64 * 1024;

impl Server {
    /// What the monitor's poll waits on for it.
    fn poll_fds<'a>(&'a self, fds: &mut Vec<rustix::event::PollFd<'a>>) {
        use rustix::event::{PollFd, PollFlags};
        if let Some(l) = &self.listener {
            fds.push(PollFd::new(l, PollFlags::IN));
        }
        let backlog = self.input.as_ref().map_or(0, |i| i.pending.len());
        if backlog < INPUT_BACKLOG {
            for (c, _) in &self.clients {
                fds.push(PollFd::new(c, PollFlags::IN));
            }
        }
        if let Some(fd) = self
            .input
            .as_ref()
            .filter(|i| !i.pending.is_empty())
            .and_then(|i| i.fd.as_ref())
        {
            fds.push(PollFd::new(fd, PollFlags::OUT));
        }
    }

    /// Accepts new clients, reads what they sent, and passes it on, all
    /// without blocking. A client that hangs up or sends garbage is
    /// dropped; the container runs on.
    fn service(&mut self) {
        if let Some(l) = &self.listener {
            while let Ok((stream, _)) = l.accept() {
                if stream.set_nonblocking(true).is_ok() {
                    self.clients.push((stream, Vec::new()));
                }
            }
        }
        let mut buf = [0u8; 16 * 1024];
        let mut i = 0;
        while i < self.clients.len() {
            if self.input.as_ref().map_or(0, |i| i.pending.len()) >= INPUT_BACKLOG {
                break;
            }
            let (stream, partial) = &mut self.clients[i];
            let keep = loop {
                match std::io::Read::read(stream, &mut buf) {
                    Ok(0) => break false,
                    Ok(n) => {
                        partial.extend_from_slice(&buf[..n]);
                        let Ok(frames) = crate::attach::decode(partial) else {
                            break false;
                        };
                        if let Some(input) = self.input.as_mut() {
                            for f in frames {
                                input.apply(f);
                            }
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break true,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(_) => break false,
                }
            };
            if keep {
                i += 1;
            } else {
                self.clients.swap_remove(i);
            }
        }
        if let Some(input) = self.input.as_mut() {
            input.flush();
        }
    }
}

/// Starts the health checker: detached from the monitor's stdio, in `/`.
fn start_checker(mut checker: Command, container: &str) -> Result<Child> {
    checker
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .current_dir("/")
        .spawn()
        .map_err(|source| Error::SpawnChecker {
            container: container.to_owned(),
            source,
        })
}

fn code_of(status: WaitStatus) -> i32 {
    if let Some(code) = status.exit_status() {
        code
    } else if let Some(sig) = status.terminating_signal() {
        128 + sig
    } else {
        -1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ready_message_round_trips() {
        for msg in [
            Ready::Started { pid: 42 },
            Ready::Failed {
                code: 127,
                message: "nosuch: executable file not found".into(),
            },
        ] {
            let mut out = Vec::new();
            msg.clone().send(&mut out);
            let text = String::from_utf8(out).expect("utf8");
            assert_eq!(Ready::parse(&text), Some(msg));
        }
        assert_eq!(Ready::parse(""), None, "a monitor that died said nothing");
    }
}
