//! The v1 freezer controller: `freezer.state` and `freezer.self_freezing`.
//! (`freezer.parent_freezing` says an ancestor asked; a cgroup frozen but
//! not by itself is frozen by an ancestor whether or not that one is
//! visible, so it is never read.)
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

/// `freezer.state` alone: a thawed cgroup needs no more.
pub(crate) fn read_phase_of(dir: &Path) -> Result<Phase> {
    read_phase(&dir.join(STATE))
}

/// `freezer.self_freezing`: this cgroup's own `freezer.state` asks for a
/// freeze.
pub(crate) fn read_self_freezing(dir: &Path) -> Result<bool> {
    read_flag(&dir.join("freezer.self_freezing"))
}

/// Freezes `dir` and waits until the kernel confirms `FROZEN`. On failure the
/// cgroup may be left `FREEZING`: the caller thaws it.
///
/// One descriptor serves the whole freeze: `FROZEN` written to it, then
/// `freezer.state` re-read from offset 0 (`pread`) until the kernel says
/// so; each read of an open kernfs file is generated afresh.
pub(crate) fn freeze(dir: &Path, deadline: &Deadline) -> Result<()> {
    let path = dir.join(STATE);
    let file = StateFile::open(&path, "FROZEN")?;
    file.write("FROZEN")?;
    confirm(dir, &file, deadline)
}

/// An open `freezer.state`, read and written in place.
struct StateFile<'p> {
    path: &'p Path,
    file: std::fs::File,
}

impl<'p> StateFile<'p> {
    /// Opens it to write `value` (which a failed open's error names).
    fn open(path: &'p Path, value: &str) -> Result<Self> {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .map_err(|source| {
                kernfs::gone_or(path, source, |source| Error::Write {
                    path: path.to_owned(),
                    value: value.to_owned(),
                    source,
                })
            })?;
        Ok(StateFile { path, file })
    }

    /// One `write(2)` of `value`.
    fn write(&self, value: &str) -> Result<()> {
        use std::os::unix::fs::FileExt;
        self.file
            .write_at(value.as_bytes(), 0)
            .map(drop)
            .map_err(|source| {
                kernfs::gone_or(self.path, source, |source| Error::Write {
                    path: self.path.to_owned(),
                    value: value.to_owned(),
                    source,
                })
            })
    }

    /// The state now.
    fn phase(&self) -> Result<Phase> {
        use std::os::unix::fs::FileExt;
        let mut buf = [0u8; 32];
        let n = self.file.read_at(&mut buf, 0).map_err(|source| {
            kernfs::gone_or(self.path, source, |source| Error::Read {
                path: self.path.to_owned(),
                source,
            })
        })?;
        parse_phase(self.path, &String::from_utf8_lossy(&buf[..n]))
    }
}

/// Waits, after `FROZEN` was written, until a read of `freezer.state` says
/// `FROZEN`, thawing and refreezing a cgroup that stays `FREEZING`.
fn confirm(dir: &Path, state: &StateFile<'_>, deadline: &Deadline) -> Result<()> {
    let start = Instant::now();
    let mut refrozen_at = start;
    let mut stuck_limit = Duration::from_millis(50);
    loop {
        match state.phase()? {
            Phase::Frozen => return Ok(()),
            Phase::Freezing => {}
            // Someone thawed it under us; ask again.
            Phase::Thawed => state.write("FROZEN")?,
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
            state.write("THAWED")?;
            state.write("FROZEN")?;
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

/// Thaws `dir`'s own freeze and reads the state back on the same
/// descriptor. Takes effect at once: the state is `THAWED` unless an
/// ancestor's freeze still holds it. The thaw is the write; a read-back
/// that fails is `None` (the caller reads the state afresh), never a
/// failed thaw.
pub(crate) fn thaw(dir: &Path) -> Result<Option<Phase>> {
    let path = dir.join(STATE);
    let file = StateFile::open(&path, "THAWED")?;
    file.write("THAWED")?;
    Ok(file.phase().ok())
}

fn read_phase(path: &Path) -> Result<Phase> {
    parse_phase(path, &kernfs::read(path)?)
}

fn parse_phase(path: &Path, text: &str) -> Result<Phase> {
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
        let phase = read_phase_of(&dir);
        let own = read_self_freezing(&dir);
        fs::write(dir.join(STATE), "BOGUS\n").expect("write");
        let bogus = read_phase_of(&dir);
        let _ = fs::remove_dir_all(&dir);
        assert_eq!(phase.expect("read"), Phase::Freezing);
        assert!(!own.expect("read"));
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
        let path = dir.join(STATE);
        let result = StateFile::open(&path, "FROZEN")
            .and_then(|state| confirm(&dir, &state, &Deadline::after(Duration::from_secs(10))));
        kernel.join().expect("kernel thread");
        let _ = fs::remove_dir_all(&dir);
        result.expect("confirmed");
        // Only the thread ever writes FROZEN here: the wait saw its flip.
        assert!(flipped.load(std::sync::atomic::Ordering::SeqCst));
    }
}
