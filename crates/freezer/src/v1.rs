//! The v1 freezer controller: `freezer.state`, `freezer.self_freezing`,
//! `freezer.parent_freezing`.
//!
//! Writing `FROZEN` starts a freeze; the kernel finishes it lazily, and only
//! a read of `freezer.state` reports (and records) `FROZEN` once every task
//! is in the refrigerator, so confirming means polling: there is no change
//! notification. A cgroup can stay `FREEZING` while a task sits in an
//! unfreezable wait (vfork, some ptrace stops); thawing and refreezing now and
//! then lets such a task move on and be caught. `THAWED` takes effect at once.
//! The root cgroup has no `freezer.state`.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::deadline::Deadline;
use crate::error::{Error, Result};
use crate::kernfs;
use crate::state::Phase;

const STATE: &str = "freezer.state";

/// The v1 view of one cgroup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct V1State {
    pub(crate) phase: Phase,
    /// This cgroup's own `freezer.state` was set to `FROZEN`.
    pub(crate) self_freezing: bool,
    /// An ancestor's was.
    pub(crate) parent_freezing: bool,
}

pub(crate) fn read(dir: &Path) -> Result<V1State> {
    Ok(V1State {
        phase: read_phase(&dir.join(STATE))?,
        self_freezing: read_flag(&dir.join("freezer.self_freezing"))?,
        parent_freezing: read_flag(&dir.join("freezer.parent_freezing"))?,
    })
}

/// Freezes `dir` and waits until the kernel confirms `FROZEN`. On failure the
/// cgroup may be left `FREEZING`: the caller thaws it.
pub(crate) fn freeze(dir: &Path, deadline: &Deadline) -> Result<()> {
    kernfs::write(&dir.join(STATE), "FROZEN")?;
    confirm(dir, deadline)
}

/// Waits, after `FROZEN` was written, until a read of `freezer.state` says
/// `FROZEN`, thawing and refreezing a cgroup that stays `FREEZING`.
fn confirm(dir: &Path, deadline: &Deadline) -> Result<()> {
    let state = dir.join(STATE);
    let start = Instant::now();
    let mut refrozen_at = start;
    let mut stuck_limit = Duration::from_millis(50);
    loop {
        match read_phase(&state)? {
            Phase::Frozen => return Ok(()),
            Phase::Freezing => {}
            // Someone thawed it under us; ask again.
            Phase::Thawed => kernfs::write(&state, "FROZEN")?,
        }
        if deadline.expired() {
            return Err(Error::FreezeTimeout {
                path: dir.to_owned(),
                timeout: deadline.budget,
            });
        }
        // A task stuck in an unfreezable wait holds the cgroup FREEZING:
        // thaw and refreeze to let it move on, less often each time, so
        // that a large cgroup that is merely slow is not disturbed.
        if refrozen_at.elapsed() >= stuck_limit {
            tracing::debug!(path = %dir.display(), "still FREEZING; thawing and refreezing");
            kernfs::write(&state, "THAWED")?;
            kernfs::write(&state, "FROZEN")?;
            refrozen_at = Instant::now();
            stuck_limit *= 2;
        }
        // A sleeping task reaches the refrigerator within microseconds:
        // yield at first (a sleep costs its timer slack on top), then poll
        // finely for a few milliseconds, then back off.
        let elapsed = start.elapsed();
        if elapsed < SPIN {
            std::thread::yield_now();
            continue;
        }
        let pause = if elapsed < Duration::from_millis(5) {
            POLL_FINE
        } else {
            (elapsed / 8).clamp(POLL_FINE, Duration::from_millis(10))
        };
        std::thread::sleep(pause.min(deadline.remaining()));
    }
}

/// How long to re-read `freezer.state` without sleeping.
const SPIN: Duration = Duration::from_micros(200);
/// How often to re-read it after that, while a freeze is young.
const POLL_FINE: Duration = Duration::from_micros(100);

/// Thaws `dir`'s own freeze. Takes effect at once; an ancestor's freeze, if
/// any, still holds it.
pub(crate) fn thaw(dir: &Path) -> Result<()> {
    kernfs::write(&dir.join(STATE), "THAWED")
}

fn read_phase(path: &Path) -> Result<Phase> {
    let text = kernfs::read(path)?;
    match text.trim() {
        "THAWED" => Ok(Phase::Thawed),
        "FREEZING" => Ok(Phase::Freezing),
        "FROZEN" => Ok(Phase::Frozen),
        other => Err(Error::Parse {
            path: path.to_owned(),
            line: other.to_owned(),
        }),
    }
}

fn read_flag(path: &Path) -> Result<bool> {
    let text = kernfs::read(path)?;
    match text.trim() {
        "0" => Ok(false),
        "1" => Ok(true),
        other => Err(Error::Parse {
            path: path.to_owned(),
            line: other.to_owned(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn reads_state_and_flags() {
        let dir = std::env::temp_dir().join(format!("stasis-unit-v1-{}", std::process::id()));
        fs::create_dir_all(&dir).expect("mkdir");
        fs::write(dir.join(STATE), "FREEZING\n").expect("write");
        fs::write(dir.join("freezer.self_freezing"), "0\n").expect("write");
        fs::write(dir.join("freezer.parent_freezing"), "1\n").expect("write");
        let state = read(&dir);
        fs::write(dir.join(STATE), "BOGUS\n").expect("write");
        let bogus = read(&dir);
        let _ = fs::remove_dir_all(&dir);
        assert_eq!(
            state.expect("read"),
            V1State {
                phase: Phase::Freezing,
                self_freezing: false,
                parent_freezing: true
            }
        );
        assert!(matches!(bogus, Err(Error::Parse { .. })));
    }

    #[test]
    fn a_freeze_is_confirmed_once_the_kernel_says_frozen() {
        // The kernel finishes a v1 freeze lazily: FREEZING until every task
        // is in the refrigerator. A thread plays it, flipping the state once.
        let dir = std::env::temp_dir().join(format!("stasis-unit-v1-wait-{}", std::process::id()));
        fs::create_dir_all(&dir).expect("mkdir");
        fs::write(dir.join(STATE), "FREEZING\n").expect("write");
        let flipped = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let kernel = {
            let (dir, flipped) = (dir.clone(), flipped.clone());
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(1));
                flipped.store(true, std::sync::atomic::Ordering::SeqCst);
                // In place and as long as before, as the kernel changes it:
                // a truncating write could be read half done.
                use std::io::Write;
                fs::OpenOptions::new()
                    .write(true)
                    .open(dir.join(STATE))
                    .and_then(|mut f| f.write_all(b"FROZEN\n\n\n"))
                    .expect("write");
            })
        };
        let result = confirm(&dir, &Deadline::after(Duration::from_secs(10)));
        kernel.join().expect("kernel thread");
        let _ = fs::remove_dir_all(&dir);
        result.expect("confirmed");
        // Only the thread ever writes FROZEN here: the wait saw its flip.
        assert!(flipped.load(std::sync::atomic::Ordering::SeqCst));
    }
}
