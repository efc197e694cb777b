//! A container's log (its stdout and stderr, as the monitor writes them)
//! and waiting for it to change.
//!
//! Followers watch the container's directory with inotify: the log grows by
//! writes (`IN_MODIFY`) and the record is replaced by rename (`IN_MOVED_TO`)
//! when the exit is recorded, so a follower wakes on either, with a bounded
//! poll as a safety net.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::path::Path;
use std::time::Duration;

use rustix::event::{PollFd, PollFlags, Timespec};
use rustix::fs::inotify::{self, CreateFlags, WatchFlags};

use crate::container::ContainerRecord;
use crate::error::{io_err, Error, Kind, Result};
use crate::Sandbox;

/// An inotify watch on a directory.
#[derive(Debug)]
pub(crate) struct Watch {
    fd: OwnedFd,
}

impl Watch {
    pub(crate) fn new(dir: &Path) -> Result<Self> {
        let fd = inotify::init(CreateFlags::CLOEXEC | CreateFlags::NONBLOCK)
            .map_err(|e| io_err("watching", dir)(e.into()))?;
        inotify::add_watch(
            &fd,
            dir,
            WatchFlags::MODIFY | WatchFlags::MOVED_TO | WatchFlags::CLOSE_WRITE,
        )
        .map_err(|e| io_err("watching", dir)(e.into()))?;
        Ok(Watch { fd })
    }

    /// Waits until something changed or `limit` passed, then drains events.
    pub(crate) fn wait(&mut self, limit: Duration) -> Result<()> {
        let timeout = Timespec {
            tv_sec: limit.as_secs() as i64,
            tv_nsec: limit.subsec_nanos().into(),
        };
        let mut fds = [PollFd::new(&self.fd, PollFlags::IN)];
        match rustix::event::poll(&mut fds, Some(&timeout)) {
            Ok(_) | Err(rustix::io::Errno::INTR) => {}
            Err(e) => {
                return Err(Error::Spawn {
                    what: "waiting for the container".into(),
                    source: e.into(),
                })
            }
        }
        let mut buf = [0u8; 4096];
        while matches!(rustix::io::read(&self.fd, &mut buf), Ok(n) if n > 0) {}
        Ok(())
    }
}

impl Sandbox {
    /// The path of a container's log.
    pub fn log_path(&self, c: &ContainerRecord) -> std::path::PathBuf {
        self.store.dir(Kind::Container, &c.id).join("log")
    }

    /// Copies the container's log to `out`; with `follow`, keeps copying
    /// until the container has exited and the log is drained, and returns
    /// its exit code.
    pub fn copy_logs(
        &self,
        c: &ContainerRecord,
        out: &mut dyn Write,
        follow: bool,
    ) -> Result<Option<i32>> {
        let path = self.log_path(c);
        let mut watch = if follow {
            Some(Watch::new(&self.store.dir(Kind::Container, &c.id))?)
        } else {
            None
        };
        let mut log = match File::open(&path) {
            Ok(f) => Some(f),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(io_err("reading", &path)(e)),
        };
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            // Read the record first: once it says exited, one more drain of
            // the log gets everything the process wrote.
            let fresh = self.container(&c.id)?;
            let done =
                fresh.exit.is_some() || fresh.monitor.as_ref().is_some_and(|m| !m.is_alive());
            if log.is_none() {
                log = File::open(&path).ok();
            }
            if let Some(f) = log.as_mut() {
                loop {
                    let n = f.read(&mut buf).map_err(io_err("reading", &path))?;
                    if n == 0 {
                        break;
                    }
                    out.write_all(&buf[..n])
                        .map_err(io_err("writing the log of", &path))?;
                }
                out.flush().map_err(io_err("writing the log of", &path))?;
            }
            let Some(w) = watch.as_mut() else {
                return Ok(fresh.exit.map(|e| e.code));
            };
            if done {
                return Ok(fresh.exit.map(|e| e.code));
            }
            w.wait(Duration::from_millis(250))?;
        }
    }
}
