//! An anchor: an empty v1 freezer cgroup held `FROZEN`, so that the
//! kernel's freezer stays switched on while a long-lived caller (the API
//! service) pauses and unpauses one cgroup after another.
//!
//! Since Linux 6.1 the freezer is behind a static key, `freezer_active`
//! (`kernel/freezer.c`): `freezing()`, asked on every signal delivery,
//! costs nothing while no cgroup is freezing. The v1 controller
//! (`kernel/cgroup/legacy_freezer.c`, `freezer_apply_state`) increments
//! the key when a cgroup starts freezing and decrements it when it thaws;
//! the step from 0 to 1 and back patches the kernel's text on every CPU
//! (`static_key_slow_inc_cpuslocked`, `text_poke`, an IPI to each CPU and
//! a wait for all of them). On a host where nothing else is frozen, that
//! is nearly all a v1 freeze and thaw cost: measured here, 0.12 ms for
//! `FROZEN` written and confirmed with the key cold, 0.007 ms with it
//! held (bench/serve.sh). An anchor keeps the count above 0, so each
//! pause is only the freeze itself. cgroup2's freezer
//! (`kernel/cgroup/freezer.c`) works through the tasks' job control and
//! has no such key: there is nothing to anchor.
//!
//! The price is what every host with one paused container pays already:
//! `freezing()` takes its slow path (a flag test and a read of the task's
//! freezer state) on each signal delivery, host-wide, while the anchor is
//! held. An anchor holds no process (it is never written to
//! `cgroup.procs`), so nothing is ever frozen by it.
//!
//! The anchor is `anchor-<PID>` under a directory the caller names (the
//! sandbox's own node of the v1 freezer hierarchy), so several holders
//! never share one. [`Anchor::hold`] first removes the anchors of holders
//! that are gone (killed before they could remove their own: the PID is
//! not alive in `/proc`); dropping the anchor thaws and removes it.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::kernfs;

const PREFIX: &str = "anchor-";
const STATE: &str = "freezer.state";

/// An empty v1 freezer cgroup held frozen for as long as this value
/// lives.
#[derive(Debug)]
pub struct Anchor {
    dir: PathBuf,
}

impl Anchor {
    /// Creates `parent/anchor-<this PID>` (and `parent` if missing) and
    /// freezes it, after removing the anchors under `parent` whose
    /// process is not alive in `proc_root`. `parent` must be a directory
    /// of the v1 freezer hierarchy.
    pub fn hold(parent: &Path, proc_root: &Path) -> Result<Anchor> {
        remove_stale(parent, proc_root);
        let dir = parent.join(format!("{PREFIX}{}", std::process::id()));
        if let Err(source) = std::fs::create_dir_all(&dir) {
            return Err(Error::CreateCgroup { path: dir, source });
        }
        let anchor = Anchor { dir };
        // Empty: the freeze is done the moment it is asked for, and never
        // stops anything.
        kernfs::write(&anchor.dir.join(STATE), "FROZEN")?;
        tracing::debug!(path = %anchor.dir.display(), "holding the freezer's anchor");
        Ok(anchor)
    }

    /// The anchor's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Thaws and removes the anchor, reporting what failed.
    pub fn release(mut self) -> Result<()> {
        let dir = std::mem::take(&mut self.dir);
        remove(&dir)
    }
}

impl Drop for Anchor {
    fn drop(&mut self) {
        if self.dir.as_os_str().is_empty() {
            return;
        }
        if let Err(e) = remove(&self.dir) {
            tracing::warn!(error = %e, "leaving the freezer's anchor behind");
        }
    }
}

/// Thaws and removes one anchor; one that is gone already is fine.
fn remove(dir: &Path) -> Result<()> {
    match kernfs::write(&dir.join(STATE), "THAWED") {
        Ok(()) | Err(Error::Gone { .. }) => {}
        Err(e) => return Err(e),
    }
    match std::fs::remove_dir(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(Error::RemoveCgroup {
            path: dir.to_owned(),
            source,
        }),
    }
}

/// Removes the anchors under `parent` whose holder is not alive. Best
/// effort: what cannot be removed is logged and left to the next holder.
fn remove_stale(parent: &Path, proc_root: &Path) {
    let Ok(entries) = std::fs::read_dir(parent) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix(PREFIX))
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if pid == std::process::id() || proc_root.join(pid.to_string()).exists() {
            continue;
        }
        if let Err(e) = remove(&entry.path()) {
            tracing::warn!(error = %e, "removing a stale freezer anchor");
        }
    }
}

#[cfg(test)]
mod tests {
    //! Against a fake tree: the kernel's side is the real-kernel test's
    //! (crates/freezer/tests/anchor.rs).

    use super::*;
    use std::fs;

    fn fake(tag: &str) -> PathBuf {
        let base =
            std::env::temp_dir().join(format!("stasis-unit-anchor-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&base);
        fs::create_dir_all(base.join("proc").join(std::process::id().to_string())).expect("mkdir");
        fs::create_dir_all(base.join("proc/77")).expect("mkdir");
        base
    }

    #[test]
    fn stale_anchors_go_live_ones_and_other_cgroups_stay() {
        let base = fake("stale");
        let parent = base.join("cg");
        for name in ["anchor-77", "anchor-999999", "anchor-x", "pod"] {
            fs::create_dir_all(parent.join(name)).expect("mkdir");
            fs::write(parent.join(name).join(STATE), "FROZEN").expect("write");
        }
        // A fake tree's directories keep their files: rmdir fails there as
        // it never does on the kernel's (whose files go with the cgroup).
        fs::remove_file(parent.join("anchor-999999").join(STATE)).expect("rm");
        remove_stale(&parent, &base.join("proc"));
        let left: std::collections::BTreeSet<String> = fs::read_dir(&parent)
            .expect("list")
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        let _ = fs::remove_dir_all(&base);
        assert_eq!(
            left,
            ["anchor-77", "anchor-x", "pod"]
                .map(String::from)
                .into_iter()
                .collect()
        );
    }

    #[test]
    fn an_anchor_that_cannot_be_made_says_where() {
        let base = fake("fail");
        // A file where the parent directory should be.
        fs::write(base.join("cg"), "").expect("write");
        let err = Anchor::hold(&base.join("cg"), &base.join("proc")).expect_err("no anchor");
        let _ = fs::remove_dir_all(&base);
        assert!(
            matches!(&err, Error::CreateCgroup { path, .. } if path.ends_with(format!("anchor-{}", std::process::id()))),
            "{err:?}"
        );
    }
}
