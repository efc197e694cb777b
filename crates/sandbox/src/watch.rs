//! Waiting for a record directory to change: an inotify watch.
//!
//! A container's log grows by writes (`IN_MODIFY`) and its record is
//! replaced by rename (`IN_MOVED_TO`) when the exit is recorded, so a waiter
//! wakes on either, with a bounded poll as a safety net.

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rustix::fs::inotify::{self, CreateFlags, WatchFlags};

use crate::error::{Error, Result};

/// An inotify watch on a directory.
#[derive(Debug)]
pub(crate) struct Watch {
    fd: OwnedFd,
    dir: PathBuf,
}

impl Watch {
    pub(crate) fn new(dir: &Path) -> Result<Self> {
        let err = |e: rustix::io::Errno| Error::Watch {
            path: dir.to_owned(),
            source: e.into(),
        };
        let fd = inotify::init(CreateFlags::CLOEXEC | CreateFlags::NONBLOCK).map_err(err)?;
        inotify::add_watch(
            &fd,
            dir,
            WatchFlags::MODIFY | WatchFlags::MOVED_TO | WatchFlags::CLOSE_WRITE,
        )
        .map_err(err)?;
        Ok(Watch {
            fd,
            dir: dir.to_owned(),
        })
    }

    /// Waits until something changed or `limit` passed, then drains events.
    pub(crate) fn wait(&mut self, limit: Duration) -> Result<()> {
        crate::process::poll_readable(&self.fd, limit).map_err(|source| Error::Watch {
            path: self.dir.clone(),
            source,
        })?;
        let mut buf = [0u8; 4096];
        while matches!(rustix::io::read(&self.fd, &mut buf), Ok(n) if n > 0) {}
        Ok(())
    }
}
