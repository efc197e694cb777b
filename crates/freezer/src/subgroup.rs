//! The subgroup strategy, for a cgroup whose own freeze file cannot or must
//! not be written (above all a cgroup namespace's root under `nsdelegate`).
//!
//! Pause: create the child [`NAME`], freeze it while it is empty, then move
//! every process of the source into it (`cgroup.procs`) until the source is
//! empty. A process frozen on arrival cannot fork behind the move, so the
//! loop ends; each pass moves what the previous one missed. Unpause: thaw
//! the child, move every process back, remove the child.
//!
//! The child is the only record: a call that finds it finishes what a crashed
//! one started, in either direction.
//!
//! Only processes the caller's PID namespace can see can be moved. cgroup2
//! lists the others as PID 0, and the move fails with [`Error::Unmovable`]
//! (the freeze is undone); the v1 `cgroup.procs` omits them, so on v1 they
//! stay behind unfrozen. Inside a container they do not arise unless a
//! process outside its PID namespace was put in its cgroup.

use std::io;

use crate::cgroup::Cgroup;
use crate::deadline::Deadline;
use crate::direct;
use crate::error::{is_gone_errno, Error, Result};
use crate::kernfs;
use crate::proc::read_pids;

/// The child cgroup's name.
pub const NAME: &str = "stasis-frozen";

/// The child of `cg`, if it exists.
pub(crate) fn existing(cg: &Cgroup) -> Option<Cgroup> {
    let sub = cg.child(NAME);
    sub.dir.is_dir().then_some(sub)
}

/// Whether the source holds no process of its own.
pub(crate) fn source_is_empty(cg: &Cgroup) -> Result<bool> {
    Ok(read_pids(&cg.dir.join("cgroup.procs"))?.is_empty())
}

pub(crate) fn freeze(cg: &Cgroup, deadline: &Deadline) -> Result<()> {
    let sub = cg.child(NAME);
    match std::fs::create_dir(&sub.dir) {
        Ok(()) => tracing::debug!(path = %sub.dir.display(), "created subgroup"),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(source) => {
            return Err(Error::CreateCgroup {
                path: sub.dir,
                source,
            })
        }
    }
    direct::freeze(&sub, deadline)?;
    let moved = move_all(cg, &sub, true, deadline)?;
    tracing::debug!(path = %cg.dir.display(), moved, "moved processes into the frozen subgroup");
    // Confirm every arrival is frozen (each one thaws `frozen` until it is).
    direct::freeze(&sub, deadline)
}

pub(crate) fn thaw(cg: &Cgroup, deadline: &Deadline) -> Result<()> {
    let Some(sub) = existing(cg) else {
        return Ok(());
    };
    direct::thaw(&sub, deadline)?;
    loop {
        move_all(&sub, cg, false, deadline)?;
        match std::fs::remove_dir(&sub.dir) {
            Ok(()) => return Ok(()),
            Err(e) if is_gone_errno(&e) => return Ok(()),
            // A process that forked during the move back may have landed in
            // the child again: move it too, within the deadline.
            Err(e)
                if e.raw_os_error() == Some(rustix::io::Errno::BUSY.raw_os_error())
                    && !deadline.expired() => {}
            Err(source) => {
                return Err(Error::RemoveCgroup {
                    path: sub.dir,
                    source,
                })
            }
        }
    }
}

/// Moves every process of `from` into `to` until `from` is empty; returns
/// how many moves were made. `freezing` says which timeout to report.
fn move_all(from: &Cgroup, to: &Cgroup, freezing: bool, deadline: &Deadline) -> Result<usize> {
    let procs = from.dir.join("cgroup.procs");
    let target = to.dir.join("cgroup.procs");
    let mut moved = 0;
    loop {
        let mut pids = read_pids(&procs)?;
        // cgroup2 lists a process outside the reader's PID namespace as 0,
        // and writing 0 would move the writer itself (into a frozen
        // cgroup, where it would never return). Such a process cannot be
        // moved from here: give up, and let the caller undo the freeze.
        let before = pids.len();
        pids.retain(|&pid| pid != 0);
        if pids.is_empty() && before > 0 {
            return Err(Error::Unmovable {
                path: from.dir.clone(),
            });
        }
        if pids.is_empty() {
            return Ok(moved);
        }
        if deadline.expired() {
            let (path, timeout) = (from.dir.clone(), deadline.budget);
            return Err(if freezing {
                Error::FreezeTimeout { path, timeout }
            } else {
                Error::ThawTimeout { path, timeout }
            });
        }
        for pid in pids {
            match kernfs::write(&target, &pid.to_string()) {
                Ok(()) => moved += 1,
                // Exited since the listing.
                Err(Error::Write { source, .. })
                    if source.raw_os_error() == Some(rustix::io::Errno::SRCH.raw_os_error()) => {}
                Err(e) => return Err(e),
            }
        }
    }
}
