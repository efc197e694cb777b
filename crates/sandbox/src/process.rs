//! A process named by PID and start time (`/proc/PID/stat` field 22, in
//! clock ticks since boot), so that a reused PID is never mistaken for it.
//!
//! [`ProcessRef`] is what the records keep; [`ProcessRef::open`] turns it into
//! a [`Process`]: a pidfd opened *first* and the start time checked *after*,
//! so the descriptor is known to name the recorded process. Signals go
//! through `pidfd_send_signal` and waits poll the pidfd (readable once the
//! process has exited), so neither can reach a process that reused the PID.

use std::os::fd::OwnedFd;
use std::path::Path;
use std::time::Duration;

use rustix::event::{PollFd, PollFlags, Timespec};
use rustix::process::{Pid, PidfdFlags, Signal};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// A process we started, as the host sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessRef {
    pub pid: u32,
    pub start_time: u64,
}

impl ProcessRef {
    /// The process with this PID now (`proc` is `/proc`); `None` if there is
    /// none.
    pub fn of(proc: &Path, pid: u32) -> Option<Self> {
        let (_, start_time) = stat(proc, pid)?;
        Some(ProcessRef { pid, start_time })
    }

    /// Whether it still runs: same PID, same start time, not a zombie.
    pub fn is_alive(&self, proc: &Path) -> bool {
        matches!(stat(proc, self.pid), Some((state, start)) if start == self.start_time && !matches!(state, 'Z' | 'X'))
    }

    /// A pidfd for the process, if it still runs; `None` if it is gone.
    pub fn open(&self, proc: &Path) -> Result<Option<Process>> {
        let Some(pid) = Pid::from_raw(self.pid as i32) else {
            return Ok(None);
        };
        let fd = match rustix::process::pidfd_open(pid, PidfdFlags::empty()) {
            Ok(fd) => fd,
            Err(rustix::io::Errno::SRCH) => return Ok(None),
            Err(e) => {
                return Err(Error::OpenProcess {
                    pid: self.pid,
                    source: e.into(),
                })
            }
        };
        // Opened, then checked: if the PID holds our process now, it held
        // it when the pidfd was made (it started before both).
        if !self.is_alive(proc) {
            return Ok(None);
        }
        Ok(Some(Process { pid: self.pid, fd }))
    }

    /// Sends `signal` if the process is still the one we started.
    pub fn signal(&self, proc: &Path, signal: Signal) -> Result<()> {
        match self.open(proc)? {
            Some(p) => p.signal(signal),
            None => Ok(()),
        }
    }

    /// Waits, bounded, for the process to end; whether it has.
    pub fn wait_gone(&self, proc: &Path, limit: Duration) -> Result<bool> {
        match self.open(proc)? {
            Some(p) => p.wait(limit),
            None => Ok(true),
        }
    }
}

/// An open process: a pidfd known to name it.
#[derive(Debug)]
pub struct Process {
    pid: u32,
    fd: OwnedFd,
}

impl Process {
    /// Its PID.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Sends `signal`; a process that has exited meanwhile is not an error.
    pub fn signal(&self, signal: Signal) -> Result<()> {
        match rustix::process::pidfd_send_signal(&self.fd, signal) {
            Ok(()) | Err(rustix::io::Errno::SRCH) => Ok(()),
            Err(e) => Err(Error::Signal {
                pid: self.pid,
                signal: signal.as_raw(),
                source: e.into(),
            }),
        }
    }

    /// Waits up to `limit` for the process to exit; whether it has.
    pub fn wait(&self, limit: Duration) -> Result<bool> {
        poll_readable(&self.fd, limit).map_err(|source| Error::WaitProcess {
            pid: self.pid,
            source,
        })
    }
}

/// Polls `fd` for input up to `limit` (retrying on EINTR); whether it is
/// readable.
pub(crate) fn poll_readable(fd: &OwnedFd, limit: Duration) -> std::io::Result<bool> {
    let end = std::time::Instant::now() + limit;
    loop {
        let left = end.saturating_duration_since(std::time::Instant::now());
        let timeout = Timespec {
            tv_sec: left.as_secs() as i64,
            tv_nsec: left.subsec_nanos().into(),
        };
        let mut fds = [PollFd::new(fd, PollFlags::IN)];
        match rustix::event::poll(&mut fds, Some(&timeout)) {
            Ok(0) => return Ok(false),
            Ok(_) => return Ok(true),
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
}

/// The state letter and start time of a process.
fn stat(proc: &Path, pid: u32) -> Option<(char, u64)> {
    freezer::proc::stat(proc, pid)
        .ok()
        .map(|s| (s.state, s.start_time))
}

/// Fake `/proc/PID/stat` text, for tests on a fake tree.
#[cfg(test)]
pub(crate) fn fake_stat(pid: u32, state: char, start_time: u64) -> String {
    format!("{pid} (a) b) {state} 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 {start_time} 0 0\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    const PROC: &str = "/proc";

    #[test]
    fn this_process_is_alive_and_a_changed_start_time_is_not() {
        let proc = Path::new(PROC);
        let me = ProcessRef::of(proc, std::process::id()).expect("self");
        assert!(me.is_alive(proc));
        let other = ProcessRef {
            start_time: me.start_time + 1,
            ..me
        };
        assert!(!other.is_alive(proc));
        assert!(other.open(proc).expect("open").is_none(), "a reused PID");
        assert!(me.open(proc).expect("open").is_some());
        assert!(ProcessRef::of(proc, u32::MAX).is_none());
    }

    #[test]
    fn a_child_is_waited_for_through_its_pidfd() {
        let proc = Path::new(PROC);
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .expect("sleep");
        let r = ProcessRef::of(proc, child.id()).expect("child");
        let p = r.open(proc).expect("open").expect("alive");
        assert!(!p.wait(Duration::ZERO).expect("poll"), "still running");
        p.signal(Signal::KILL).expect("kill");
        assert!(p.wait(Duration::from_secs(10)).expect("poll"), "exited");
        let _ = child.wait();
        assert!(!r.is_alive(proc));
    }
}
