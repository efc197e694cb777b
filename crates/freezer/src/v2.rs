//! The cgroup2 freezer: `cgroup.freeze` (the cgroup's own request, 0 or 1)
//! and `cgroup.events` (`frozen 1` once every task below it is frozen).
//!
//! A freeze is effective when the cgroup or any ancestor asks for it, and
//! the kernel flips `frozen` in `cgroup.events` asynchronously, announcing
//! each change through kernfs: `poll(2)` on an open `cgroup.events` wakes with
//! `POLLPRI` after the file changed since it was last read. So a wait is:
//! read, check, poll, read again — no sleeping. Notifications are rate
//! limited (one per `DIV_ROUND_UP(HZ, 100)` jiffies, the rest deferred to a
//! timer), so each poll is capped and the file re-read. The root cgroup has neither
//! file. Under `nsdelegate`, a cgroup namespace's root refuses writes to its
//! own `cgroup.freeze` with EPERM (the subgroup strategy is for that case).
//! `cgroup.events` also says `populated 0` once no process is left below a
//! cgroup; [`Events`] waits on either key (the `tree` module waits for an
//! emptied subtree with it).

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rustix::event::{PollFd, PollFlags, Timespec};
use rustix::io::Errno;

use crate::deadline::Deadline;
use crate::error::{is_gone_errno, Error, Result};
use crate::kernfs;

const FREEZE: &str = "cgroup.freeze";
const EVENTS: &str = "cgroup.events";

/// The v2 view of one cgroup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct V2State {
    /// `cgroup.freeze`: this cgroup asked to be frozen.
    pub(crate) own: bool,
    /// `frozen` in `cgroup.events`: every task below it is frozen.
    pub(crate) frozen: bool,
}

pub(crate) fn read(dir: &Path) -> Result<V2State> {
    Ok(V2State {
        own: read_own(dir)?,
        frozen: read_frozen(dir)?,
    })
}

/// Reads `frozen` in `cgroup.events` (which the root does not have).
pub(crate) fn read_frozen(dir: &Path) -> Result<bool> {
    let events = dir.join(EVENTS);
    frozen_in(&events, &kernfs::read(&events)?)
}

/// Reads `cgroup.freeze` (which the root does not have).
pub(crate) fn read_own(dir: &Path) -> Result<bool> {
    let path = dir.join(FREEZE);
    match kernfs::read(&path)?.trim() {
        "0" => Ok(false),
        "1" => Ok(true),
        other => Err(Error::Parse {
            path,
            line: other.to_owned(),
        }),
    }
}

/// Asks the kernel to freeze (`true`) or thaw `dir` and, if `wait`, waits for
/// `cgroup.events` to agree. A failed freeze may leave it freezing: the
/// caller thaws it.
pub(crate) fn set(dir: &Path, freeze: bool, wait: bool, deadline: &Deadline) -> Result<()> {
    // Open before writing so that the first read already counts as seen and
    // poll reports every change after it.
    let events = Events::open(dir)?;
    kernfs::write(&dir.join(FREEZE), if freeze { "1" } else { "0" })?;
    if !wait || events.wait_for("frozen", freeze, deadline)? {
        return Ok(());
    }
    Err(if freeze {
        Error::FreezeTimeout {
            path: dir.to_owned(),
            timeout: deadline.budget,
        }
    } else {
        Error::ThawTimeout {
            path: dir.to_owned(),
            timeout: deadline.budget,
        }
    })
}

/// An open `cgroup.events`, to wait on one of its keys (`frozen`,
/// `populated`) without sleeping.
pub(crate) struct Events {
    file: File,
    path: PathBuf,
}

impl Events {
    /// Opens `<dir>/cgroup.events`; a vanished cgroup is [`Error::Gone`].
    pub(crate) fn open(dir: &Path) -> Result<Self> {
        let path = dir.join(EVENTS);
        let file = File::open(&path).map_err(|source| {
            kernfs::gone_or(&path, source, |source| Error::Read {
                path: path.clone(),
                source,
            })
        })?;
        Ok(Events { file, path })
    }

    /// Waits until `key` reads `want`; `false` if the deadline passed first.
    pub(crate) fn wait_for(&self, key: &str, want: bool, deadline: &Deadline) -> Result<bool> {
        let mut buf = [0u8; 256];
        let mut cap = Duration::from_micros(50);
        loop {
            let text = pread_text(&self.file, &self.path, &mut buf)?;
            if flag_in(&self.path, text, key)? == want {
                return Ok(true);
            }
            let remaining = deadline.remaining();
            if remaining.is_zero() {
                return Ok(false);
            }
            // The kernel sends at most one cgroup.events notification per
            // ~10 ms and defers the rest to a timer, while the values
            // themselves are already up to date: a capped wait, growing to
            // 0.5 ms, bounds how late a change is seen.
            wait_for_change(&self.file, &self.path, remaining.min(cap))?;
            cap = (cap * 2).min(Duration::from_micros(500));
        }
    }
}

fn pread_text<'b>(events: &File, path: &Path, buf: &'b mut [u8]) -> Result<&'b str> {
    let n = rustix::io::pread(events, &mut *buf, 0).map_err(|e| {
        let source = std::io::Error::from(e);
        if is_gone_errno(&source) {
            Error::Gone {
                path: path.parent().unwrap_or(path).to_owned(),
            }
        } else {
            Error::Read {
                path: path.to_owned(),
                source,
            }
        }
    })?;
    std::str::from_utf8(&buf[..n]).map_err(|_| Error::Parse {
        path: path.to_owned(),
        line: String::from_utf8_lossy(&buf[..n]).into_owned(),
    })
}

fn wait_for_change(events: &File, path: &Path, remaining: Duration) -> Result<()> {
    let timeout = Timespec {
        tv_sec: remaining.as_secs().try_into().unwrap_or(i64::MAX),
        tv_nsec: remaining.subsec_nanos().into(),
    };
    let mut fds = [PollFd::new(events, PollFlags::PRI)];
    match rustix::event::poll(&mut fds, Some(&timeout)) {
        Ok(_) | Err(Errno::INTR) => Ok(()),
        Err(e) => Err(Error::Wait {
            path: path.to_owned(),
            source: e.into(),
        }),
    }
}

/// The `frozen` value of a `cgroup.events` text.
fn frozen_in(path: &Path, text: &str) -> Result<bool> {
    flag_in(path, text, "frozen")
}

/// The value of the 0/1 key `key` in a `cgroup.events` text.
fn flag_in(path: &Path, text: &str, key: &str) -> Result<bool> {
    for line in text.lines() {
        if let Some(v) = line.strip_prefix(key).and_then(|v| v.strip_prefix(' ')) {
            return match v.trim() {
                "0" => Ok(false),
                "1" => Ok(true),
                _ => Err(Error::Parse {
                    path: path.to_owned(),
                    line: line.to_owned(),
                }),
            };
        }
    }
    Err(Error::Parse {
        path: path.to_owned(),
        line: text.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_events() {
        let p = Path::new("cgroup.events");
        assert!(frozen_in(p, "populated 1\nfrozen 1\n").expect("frozen"));
        assert!(!frozen_in(p, "populated 0\nfrozen 0\n").expect("thawed"));
        assert!(frozen_in(p, "populated 1\n").is_err());
        assert!(frozen_in(p, "frozen x\n").is_err());
    }
}
