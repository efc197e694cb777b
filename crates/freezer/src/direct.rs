//! The direct strategy: a cgroup's own freeze file, v1 or v2.

use crate::cgroup::{Cgroup, Version};
use crate::deadline::Deadline;
use crate::error::{Error, Result};
use crate::state::{FrozenBy, Phase};
use crate::{v1, v2};

/// A cgroup's own freeze state, ignoring any subgroup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Direct {
    pub(crate) phase: Phase,
    pub(crate) frozen_by: Option<FrozenBy>,
    /// The nearest visible ancestor asking for the freeze.
    pub(crate) ancestor: Option<String>,
}

pub(crate) fn state(cg: &Cgroup) -> Result<Direct> {
    let thawed = Direct {
        phase: Phase::Thawed,
        frozen_by: None,
        ancestor: None,
    };
    match cg.version() {
        Version::V1 => {
            // `freezer.self_freezing` says who froze it; a thawed cgroup
            // needs no more.
            let Some(phase) = unless_root(cg, || v1::read_phase_of(&cg.dir))? else {
                return Ok(thawed);
            };
            if phase == Phase::Thawed {
                return Ok(thawed);
            }
            // Not by itself: by an ancestor, visible or not.
            let (frozen_by, ancestor) = if v1::read_self_freezing(&cg.dir)? {
                (FrozenBy::Itself, None)
            } else {
                (FrozenBy::Ancestor, nearest_freezing_ancestor(cg)?)
            };
            Ok(Direct {
                phase,
                frozen_by: Some(frozen_by),
                ancestor,
            })
        }
        Version::V2 => {
            let Some(s) = unless_root(cg, || v2::read(&cg.dir))? else {
                return Ok(thawed);
            };
            let ancestor = if s.own {
                None
            } else {
                nearest_freezing_ancestor(cg)?
            };
            let phase = match (s.frozen, s.own || ancestor.is_some()) {
                (true, _) => Phase::Frozen,
                (false, true) => Phase::Freezing,
                (false, false) => Phase::Thawed,
            };
            // Frozen with no visible request: an ancestor above the mount
            // (outside our cgroup namespace) holds it.
            let frozen_by = match phase {
                Phase::Thawed => None,
                _ if s.own => Some(FrozenBy::Itself),
                _ => Some(FrozenBy::Ancestor),
            };
            Ok(Direct {
                phase,
                frozen_by,
                ancestor,
            })
        }
    }
}

/// Whether every task of `cg` is frozen, ignoring any subgroup: the
/// effective phase alone (v1 `freezer.state`, v2 `frozen` in
/// `cgroup.events`, both of which count an ancestor's freeze), without
/// asking whose freeze it is.
pub(crate) fn frozen(cg: &Cgroup) -> Result<bool> {
    let frozen = match cg.version() {
        Version::V1 => unless_root(cg, || v1::read_phase_of(&cg.dir))?.map(|p| p == Phase::Frozen),
        Version::V2 => unless_root(cg, || v2::read_frozen(&cg.dir))?,
    };
    Ok(frozen == Some(true))
}

/// Whether `cg`'s own freeze file asks for a freeze, ignoring any
/// subgroup: what makes [`state`] say `FrozenBy::Itself` (v1
/// `freezer.self_freezing` of a cgroup that is not thawed, v2
/// `cgroup.freeze`), without the reads that say more.
pub(crate) fn asks_itself(cg: &Cgroup) -> Result<bool> {
    let asks = match cg.version() {
        Version::V1 => unless_root(cg, || match v1::read_phase_of(&cg.dir)? {
            Phase::Thawed => Ok(false),
            _ => v1::read_self_freezing(&cg.dir),
        })?,
        Version::V2 => unless_root(cg, || v2::read_own(&cg.dir))?,
    };
    Ok(asks == Some(true))
}

/// Freezes the cgroup's own file and waits for the kernel to confirm.
pub(crate) fn freeze(cg: &Cgroup, deadline: &Deadline) -> Result<()> {
    match cg.version() {
        Version::V1 => v1::freeze(&cg.dir, deadline),
        Version::V2 => v2::set(&cg.dir, true, true, deadline),
    }
}

/// Thaws the cgroup's own file; on v2, waits for the kernel to confirm unless
/// an ancestor keeps it frozen. On v1, the phase read back on the
/// descriptor that thawed it, if that read worked (on v2, `None`: the
/// caller reads it).
pub(crate) fn thaw(cg: &Cgroup, deadline: &Deadline) -> Result<Option<Phase>> {
    match cg.version() {
        Version::V1 => v1::thaw(&cg.dir),
        Version::V2 => {
            let wait = nearest_freezing_ancestor(cg)?.is_none();
            v2::set(&cg.dir, false, wait, deadline).map(|()| None)
        }
    }
}

/// The nearest visible ancestor whose own freeze file asks for a freeze.
fn nearest_freezing_ancestor(cg: &Cgroup) -> Result<Option<String>> {
    let mut at = cg.parent();
    while let Some(c) = at {
        let asks = unless_root(&c, || match c.version() {
            Version::V1 => v1::read_self_freezing(&c.dir),
            Version::V2 => v2::read_own(&c.dir),
        })?;
        // The real root cannot be frozen: nothing above it to ask.
        match asks {
            Some(true) => return Ok(Some(c.path)),
            Some(false) => {}
            None => return Ok(None),
        }
        at = c.parent();
    }
    Ok(None)
}

/// `read` of a cgroup's freeze files, or `None` for the real root of its
/// hierarchy, which has none: a missing file in a directory that is there
/// (what [`Cgroup::is_root`] asks, without its `stat` before every read).
fn unless_root<T>(cg: &Cgroup, read: impl FnOnce() -> Result<T>) -> Result<Option<T>> {
    match read() {
        Ok(value) => Ok(Some(value)),
        Err(Error::Gone { .. }) if cg.dir.is_dir() => Ok(None),
        Err(e) => Err(e),
    }
}
