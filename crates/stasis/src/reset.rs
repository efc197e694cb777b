//! `--reset-connections` in the CLI: once a target is frozen, destroy its
//! TCP connections (so that peers fail over at once instead of hanging on a
//! frozen process), and refuse new connections to its listening ports with
//! a TCP reset until it is unpaused. The fences and their records are
//! [`connections::fence`]'s; this module reports them and undoes a pause
//! whose reset failed.

use std::path::Path;

use anyhow::{Context, Result};
use freezer::Cgroup;

pub use connections::fence::Fences;

/// After a confirmed freeze of `cgroup` (`what` names it for people): with
/// `reset`, resets its connections, and reports. A reset that fails undoes
/// the pause (`undo` thaws) and the fence, so that nothing is left frozen
/// or fenced behind an error.
pub fn after_pause(
    state_root: &Path,
    cgroup: &Cgroup,
    what: &str,
    reset: bool,
    format: crate::flags::Format,
    undo: impl FnOnce() -> Result<()>,
) -> Result<()> {
    let fences = Fences::new(state_root);
    let outcome = if reset {
        match fences
            .reset(cgroup)
            .context("resetting the target's connections")
        {
            Ok(o) => Some(o),
            Err(e) => {
                let thawed = undo();
                let unfenced = fences.remove(cgroup, None).map_err(anyhow::Error::from);
                let e = e.context(format!("resetting the connections of {what}"));
                return Err(match (thawed, unfenced) {
                    (Ok(()), Ok(_)) => e.context(format!("{what} was thawed again")),
                    (Err(t), _) => e.context(format!("{what} could not be thawed again: {t:#}")),
                    (Ok(()), Err(f)) => e.context(format!("{what} was thawed again, but {f:#}")),
                });
            }
        }
    } else {
        None
    };
    match format {
        crate::flags::Format::Json => {
            let line = serde_json::json!({
                "name": what,
                "cgroup": cgroup.path,
                "paused": true,
                "connections": outcome,
            });
            println!("{line}");
        }
        crate::flags::Format::Table => {
            if let Some(o) = &outcome {
                eprintln!("stasis: {}", o.describe(what));
            }
        }
    }
    Ok(())
}

/// Removes the fences a pause with `--reset-connections` left on any of
/// `cgroups` (the target in every hierarchy: a pause in either tree is
/// tagged by its own path), even one whose pause was killed. Every verb that
/// thaws or ends a target calls it; `pinned` is the target's pinned network
/// namespace, if it has one.
pub fn lift(state_root: &Path, cgroups: &[Cgroup], pinned: Option<&Path>) -> Result<()> {
    let fences = Fences::new(state_root);
    let mut first_err = None;
    for cgroup in cgroups {
        if let Err(e) = fences
            .remove(cgroup, pinned)
            .context("removing the reject rule")
        {
            first_err.get_or_insert(e);
        }
    }
    first_err.map_or(Ok(()), Err)
}

/// After an unpause, whatever its result: [`lift`], then the unpause's
/// result.
pub fn after_unpause<T>(
    state_root: &Path,
    cgroups: &[Cgroup],
    pinned: Option<&Path>,
    unpaused: Result<T>,
) -> Result<T> {
    let lifted = lift(state_root, cgroups, pinned);
    let value = unpaused?;
    lifted?;
    Ok(value)
}
