//! A process named by PID and start time, so that a reused PID is never
//! mistaken for it (`/proc/PID/stat` field 22, in clock ticks since boot).

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// A process we started, as the host sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessRef {
    pub pid: u32,
    pub start_time: u64,
}

impl ProcessRef {
    /// The process with this PID now; `None` if there is none.
    pub fn of(pid: u32) -> Option<Self> {
        let (_, start_time) = stat(pid)?;
        Some(ProcessRef { pid, start_time })
    }

    /// Whether it still runs: same PID, same start time, not a zombie.
    pub fn is_alive(&self) -> bool {
        matches!(stat(self.pid), Some((state, start)) if start == self.start_time && !matches!(state, 'Z' | 'X'))
    }

    /// Sends `signal` if the process is still the one we started.
    pub fn signal(&self, signal: rustix::process::Signal) -> Result<()> {
        if !self.is_alive() {
            return Ok(());
        }
        let pid = rustix::process::Pid::from_raw(self.pid as i32).ok_or_else(|| {
            Error::InvalidArgument {
                what: "PID",
                value: self.pid.to_string(),
                reason: "not a process ID",
            }
        })?;
        match rustix::process::kill_process(pid, signal) {
            Ok(()) | Err(rustix::io::Errno::SRCH) => Ok(()),
            Err(e) => Err(Error::Spawn {
                what: format!("sending signal {} to process {}", signal.as_raw(), self.pid),
                source: e.into(),
            }),
        }
    }
}

/// The state letter and start time of a process.
fn stat(pid: u32) -> Option<(char, u64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: fields follow the last ')'.
    let rest = text.rsplit_once(')')?.1;
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let start_time = fields.nth(18)?.parse().ok()?;
    Some((state, start_time))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_alive_and_a_changed_start_time_is_not() {
        let me = ProcessRef::of(std::process::id()).expect("self");
        assert!(me.is_alive());
        let other = ProcessRef {
            start_time: me.start_time + 1,
            ..me
        };
        assert!(!other.is_alive());
        assert!(ProcessRef::of(u32::MAX).is_none());
    }
}
