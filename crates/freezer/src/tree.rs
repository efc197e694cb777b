//! A cgroup and everything below it: the processes in the subtree, killing
//! them all, and removing the subtree bottom-up.
//!
//! Kernel files and their semantics:
//! - `cgroup.procs` (v1 and v2) lists the processes of one cgroup, not of its
//!   children, in the reader's PID namespace; a subtree's processes are the
//!   union over its directories, read top-down (a process moving meanwhile
//!   may be listed twice or missed, which a kill loop absorbs).
//! - `cgroup.kill` (v2, Linux 5.14+): writing `1` sends SIGKILL to every
//!   process in the subtree, including those forked during the write, and
//!   frozen ones die too. v1 has no such file: each listed PID is signalled,
//!   and a task frozen by the v1 freezer dies only once it is thawed.
//! - `cgroup.events` (v2) says `populated 0` once no process is left in the
//!   subtree, announced through `poll(2)` like `frozen` (see the v2 freezer): a
//!   v2 wait is notified. v1 has nothing like it: the listing is re-read.
//! - `rmdir(2)` removes an empty cgroup; a cgroup whose last tasks are still
//!   exiting answers EBUSY for a moment, and one with children too.
//!
//! Every wait is bounded by the caller's budget.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::cgroup::{Cgroup, Version};
use crate::deadline::Deadline;
use crate::error::{is_gone_errno, Error, Result};
use crate::proc::read_pids;
use crate::{kernfs, v2};

/// The PIDs in `cg` and in every cgroup below it. A cgroup removed during
/// the walk is skipped; only `cg` itself must exist.
pub fn procs_below(cg: &Cgroup) -> Result<Vec<u32>> {
    let mut out = read_pids(&cg.dir.join("cgroup.procs"))?;
    for dir in subdirs(&cg.dir)? {
        match read_pids(&dir.join("cgroup.procs")) {
            Ok(pids) => out.extend(pids),
            Err(Error::Gone { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

/// Kills every process in `cg`'s subtree with SIGKILL and waits until the
/// kernel lists none, at most `wait`: [`Error::KillTimeout`] after that.
/// On v1, thaw a frozen subtree first (its tasks die only when thawed). A
/// cgroup that is gone (or vanishes meanwhile) has nothing left to kill.
pub fn kill_all(cg: &Cgroup, wait: Duration) -> Result<()> {
    match kill_all_present(cg, wait) {
        Err(Error::Gone { .. }) => Ok(()),
        other => other,
    }
}

fn kill_all_present(cg: &Cgroup, wait: Duration) -> Result<()> {
    let deadline = Deadline::after(wait);
    let events = match cg.version() {
        Version::V2 => Some(v2::Events::open(&cg.dir)?),
        Version::V1 => None,
    };
    // Older kernels have no cgroup.kill: then the listed PIDs are signalled.
    let kill_file = cg.dir.join("cgroup.kill");
    let killed_by_kernel = events.is_some() && kill_file.exists();
    if killed_by_kernel {
        kernfs::write(&kill_file, "1")?;
    }
    let mut pause = Duration::from_millis(1);
    loop {
        let pids = procs_below(cg)?;
        if pids.is_empty() {
            return Ok(());
        }
        if deadline.expired() {
            return Err(Error::KillTimeout {
                path: cg.dir.clone(),
                timeout: wait,
                left: pids.len(),
            });
        }
        if !killed_by_kernel {
            for pid in &pids {
                signal_kill(*pid)?;
            }
        }
        match &events {
            // Notified once the subtree is empty; a process a v1 caller
            // missed forking is caught by the next listing.
            Some(events) => {
                let step = Deadline::after(deadline.remaining().min(Duration::from_millis(100)));
                events.wait_for("populated", false, &step)?;
            }
            None => {
                std::thread::sleep(pause.min(deadline.remaining()));
                pause = (pause * 2).min(Duration::from_millis(20));
            }
        }
    }
}

/// Removes `dir` (a cgroup directory) and every cgroup below it, deepest
/// first, retrying a cgroup whose last tasks are still exiting (EBUSY) for
/// at most `wait`. A directory already gone is fine; one that holds
/// processes stays busy and ends in [`Error::RemoveCgroup`].
pub fn remove(dir: &Path, wait: Duration) -> Result<()> {
    let deadline = Deadline::after(wait);
    let mut dirs = match subdirs(dir) {
        Ok(d) => d,
        Err(Error::Gone { .. }) => return Ok(()),
        Err(e) => return Err(e),
    };
    // `subdirs` lists parents before children: remove in reverse.
    dirs.reverse();
    dirs.push(dir.to_owned());
    for d in dirs {
        let mut pause = Duration::from_millis(1);
        loop {
            match std::fs::remove_dir(&d) {
                Ok(()) => break,
                Err(e) if is_gone_errno(&e) => break,
                Err(e)
                    if e.raw_os_error() == Some(rustix::io::Errno::BUSY.raw_os_error())
                        && !deadline.expired() =>
                {
                    std::thread::sleep(pause.min(deadline.remaining()));
                    pause = (pause * 2).min(Duration::from_millis(20));
                }
                Err(source) => return Err(Error::RemoveCgroup { path: d, source }),
            }
        }
    }
    Ok(())
}

/// Every directory below `dir`, parents before children. cgroup
/// directories are never symlinks; one is not followed.
fn subdirs(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    let mut first = true;
    while let Some(at) = stack.pop() {
        let entries = match std::fs::read_dir(&at) {
            Ok(e) => e,
            Err(e) if is_gone_errno(&e) && first => return Err(Error::Gone { path: at }),
            Err(e) if is_gone_errno(&e) => continue,
            Err(source) => return Err(Error::Read { path: at, source }),
        };
        first = false;
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                let path = entry.path();
                out.push(path.clone());
                stack.push(path);
            }
        }
    }
    // Depth order: a parent always precedes its children.
    out.sort_by_key(|p| p.components().count());
    Ok(out)
}

fn signal_kill(pid: u32) -> Result<()> {
    let Some(p) = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    else {
        return Ok(());
    };
    match rustix::process::kill_process(p, rustix::process::Signal::KILL) {
        Ok(()) | Err(rustix::io::Errno::SRCH) => Ok(()),
        Err(e) => Err(Error::Kill {
            pid,
            source: e.into(),
        }),
    }
}

#[cfg(test)]
mod tests {
    //! Fake trees: directories with `cgroup.procs` and `cgroup.events` files
    //! that say what the kernel would.

    use super::*;
    use crate::cgroup::Hierarchy;
    use std::fs;

    struct Fake(PathBuf);

    impl Drop for Fake {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn fake(tag: &str, dirs: &[(&str, &str)]) -> (Fake, Cgroup) {
        let base =
            std::env::temp_dir().join(format!("stasis-unit-tree-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&base);
        for (dir, procs) in dirs {
            let d = base.join(dir);
            fs::create_dir_all(&d).expect("mkdir");
            fs::write(d.join("cgroup.procs"), procs).expect("write");
            fs::write(d.join("cgroup.events"), "populated 1\nfrozen 0\n").expect("write");
        }
        let cg = Cgroup {
            hierarchy: Hierarchy {
                version: Version::V2,
                mount_point: base.clone(),
                root: "/".into(),
            },
            path: format!("/{}", dirs[0].0),
            dir: base.join(dirs[0].0),
        };
        (Fake(base), cg)
    }

    #[test]
    fn lists_every_process_below_a_node() {
        let (_f, cg) = fake(
            "list",
            &[
                ("pod", "1\n"),
                ("pod/a", "2\n3\n"),
                ("pod/a/deep", "4\n"),
                ("pod/b", ""),
            ],
        );
        let mut pids = procs_below(&cg).expect("list");
        pids.sort_unstable();
        assert_eq!(pids, [1, 2, 3, 4]);
        let dirs = subdirs(&cg.dir).expect("subdirs");
        let a = dirs.iter().position(|d| d.ends_with("pod/a")).expect("a");
        let deep = dirs
            .iter()
            .position(|d| d.ends_with("a/deep"))
            .expect("deep");
        assert!(a < deep, "parents first: {dirs:?}");
    }

    #[test]
    fn kill_all_writes_cgroup_kill_and_waits_for_populated_0() {
        // No process listed is ours to signal: PIDs stay fictional, and the
        // "kernel" (a thread) empties the tree once cgroup.kill is written.
        let (_f, cg) = fake("kill", &[("pod", "999999999\n"), ("pod/a", "999999998\n")]);
        fs::write(cg.dir.join("cgroup.kill"), "").expect("write");
        let dir = cg.dir.clone();
        let kernel = std::thread::spawn(move || {
            let until = std::time::Instant::now() + Duration::from_secs(10);
            while fs::read_to_string(dir.join("cgroup.kill")).expect("read") != "1" {
                assert!(
                    std::time::Instant::now() < until,
                    "cgroup.kill never written"
                );
                std::thread::sleep(Duration::from_millis(1));
            }
            fs::write(dir.join("a/cgroup.procs"), "").expect("write");
            fs::write(dir.join("cgroup.procs"), "").expect("write");
            // In place, as the kernel changes it: a truncating write could
            // be read half done.
            use std::io::Write;
            fs::OpenOptions::new()
                .write(true)
                .open(dir.join("cgroup.events"))
                .and_then(|mut f| f.write_all(b"populated 0\nfrozen 0\n"))
                .expect("write");
        });
        kill_all(&cg, Duration::from_secs(10)).expect("killed");
        kernel.join().expect("kernel thread");
        assert!(procs_below(&cg).expect("list").is_empty());
    }

    #[test]
    fn kill_all_of_a_vanished_cgroup_has_nothing_to_kill() {
        let (f, cg) = fake("vanished", &[("pod", "")]);
        fs::remove_dir_all(&f.0).expect("rm");
        kill_all(&cg, Duration::from_millis(30)).expect("nothing to kill");
    }

    #[test]
    fn kill_all_gives_up_after_its_budget() {
        let (_f, cg) = fake("stuck", &[("pod", "999999999\n")]);
        fs::write(cg.dir.join("cgroup.kill"), "").expect("write");
        let err = kill_all(&cg, Duration::from_millis(30)).expect_err("never empties");
        assert!(
            matches!(&err, Error::KillTimeout { left: 1, path, .. } if *path == cg.dir),
            "{err}"
        );
    }

    #[test]
    fn remove_goes_bottom_up_and_tolerates_a_missing_tree() {
        let base = std::env::temp_dir().join(format!("stasis-unit-tree-rm-{}", std::process::id()));
        let _ = fs::remove_dir_all(&base);
        fs::create_dir_all(base.join("pod/a/deep")).expect("mkdir");
        fs::create_dir_all(base.join("pod/b")).expect("mkdir");
        let guard = Fake(base.clone());
        remove(&base.join("pod"), Duration::from_secs(1)).expect("remove");
        assert!(!base.join("pod").exists());
        remove(&base.join("pod"), Duration::from_secs(1)).expect("already gone");
        // A directory that is not empty of files (a busy cgroup's stand-in)
        // is reported with its path.
        fs::create_dir_all(base.join("busy")).expect("mkdir");
        fs::write(base.join("busy/file"), "").expect("write");
        let err = remove(&base.join("busy"), Duration::from_millis(10)).expect_err("busy");
        assert!(
            matches!(&err, Error::RemoveCgroup { path, .. } if path.ends_with("busy")),
            "{err}"
        );
        drop(guard);
    }
}
