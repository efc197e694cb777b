//! Pause, unpause and state of one cgroup: the strategies, docker's
//! semantics, and the rule that a failed freeze leaves the target thawed.

use std::time::Duration;

use serde::Serialize;

use crate::deadline::Deadline;
use crate::error::{Error, Result};
use crate::hierarchy::{Cgroup, Hierarchies};
use crate::state::{FrozenBy, Phase, State};
use crate::{direct, safety, subgroup};

/// How to freeze a cgroup.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Strategy {
    /// Direct; the subgroup strategy when the kernel refuses the cgroup's own
    /// freeze file with EPERM, or when a subgroup is already there.
    #[default]
    Auto,
    /// Write the cgroup's own freeze file.
    Direct,
    /// Move the processes into a frozen child ([`crate::subgroup`]).
    Subgroup,
}

/// The default time a freeze or thaw may take before it is given up.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// Freezes and thaws cgroups. Cheap to build; holds only options.
#[derive(Debug, Clone)]
pub struct Freezer {
    timeout: Duration,
    strategy: Strategy,
}

impl Default for Freezer {
    fn default() -> Self {
        Freezer {
            timeout: DEFAULT_TIMEOUT,
            strategy: Strategy::Auto,
        }
    }
}

/// What a pause or unpause did, and the state it left.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Outcome {
    /// The strategy used: `direct` or `subgroup`.
    pub strategy: Strategy,
    /// The state afterwards, read back from the kernel.
    pub state: State,
}

impl Freezer {
    /// A freezer with the default timeout and the `auto` strategy.
    pub fn new() -> Self {
        Self::default()
    }

    /// How long one pause or unpause may take.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// How to pause.
    pub fn strategy(mut self, strategy: Strategy) -> Self {
        self.strategy = strategy;
        self
    }

    /// Reads the freeze state of `cg` from the kernel, taking a subgroup left
    /// by the subgroup strategy into account.
    pub fn state(&self, cg: &Cgroup) -> Result<State> {
        let own = direct::state(cg)?;
        let sub = subgroup::existing(cg);
        let mut state = State {
            phase: own.phase,
            frozen_by: own.frozen_by,
            ancestor: own.ancestor,
            subgroup: sub.as_ref().map(|s| s.path.clone()),
        };
        if own.phase == Phase::Thawed {
            if let Some(sub) = sub {
                let inner = direct::state(&sub)?;
                if inner.frozen_by == Some(FrozenBy::Itself) {
                    // Frozen only once every process has moved in.
                    let all_in = subgroup::source_is_empty(cg)?;
                    state.phase = if inner.phase == Phase::Frozen && all_in {
                        Phase::Frozen
                    } else {
                        Phase::Freezing
                    };
                    state.frozen_by = Some(FrozenBy::Subgroup);
                }
            }
        }
        Ok(state)
    }

    /// Freezes `cg` (docker's `pause`): refuses what [`safety::check`]
    /// refuses, errs with [`Error::AlreadyPaused`] if it is frozen already,
    /// and on any failure thaws it again before reporting.
    pub fn freeze(&self, hierarchies: &Hierarchies, cg: &Cgroup) -> Result<Outcome> {
        safety::check(hierarchies, cg)?;
        let before = self.state(cg)?;
        if before.is_frozen() {
            return Err(Error::AlreadyPaused {
                path: cg.dir.clone(),
            });
        }
        let deadline = Deadline::after(self.timeout);
        let use_subgroup = match self.strategy {
            Strategy::Subgroup => true,
            Strategy::Direct => false,
            Strategy::Auto => before.subgroup.is_some(),
        };
        let (strategy, result) = if use_subgroup {
            (Strategy::Subgroup, subgroup::freeze(cg, &deadline))
        } else {
            match direct::freeze(cg, &deadline) {
                Err(e) if self.strategy == Strategy::Auto && e.is_refused_by_kernel() => {
                    tracing::info!(path = %cg.dir.display(), "own freeze file refused (EPERM); using the subgroup strategy");
                    (Strategy::Subgroup, subgroup::freeze(cg, &deadline))
                }
                other => (Strategy::Direct, other),
            }
        };
        if let Err(error) = result {
            tracing::debug!(path = %cg.dir.display(), error = %error, "freeze failed; thawing");
            return Err(self.undo(cg, strategy, error));
        }
        tracing::info!(path = %cg.dir.display(), ?strategy, "frozen");
        Ok(Outcome {
            strategy,
            state: self.state(cg)?,
        })
    }

    /// Thaws `cg` (docker's `unpause`), undoing whichever strategy froze it,
    /// and finishing a subgroup pause or unpause that a crashed call left
    /// half done. Errs with [`Error::NotPaused`] if it is not frozen, and with
    /// [`Error::PausedByAncestor`] if only an ancestor's freeze holds it.
    pub fn thaw(&self, cg: &Cgroup) -> Result<Outcome> {
        let before = self.state(cg)?;
        let deadline = Deadline::after(self.timeout);
        let strategy = match (before.frozen_by, &before.subgroup) {
            (_, Some(_)) if before.frozen_by != Some(FrozenBy::Itself) => {
                subgroup::thaw(cg, &deadline)?;
                Strategy::Subgroup
            }
            (Some(FrozenBy::Itself), _) => {
                direct::thaw(cg, &deadline)?;
                Strategy::Direct
            }
            (Some(FrozenBy::Ancestor), None) => {
                return Err(match before.ancestor {
                    Some(ancestor) => Error::PausedByAncestor {
                        path: cg.dir.clone(),
                        ancestor: ancestor.into(),
                    },
                    None => Error::PausedByAncestor {
                        path: cg.dir.clone(),
                        ancestor: "(an ancestor outside the visible hierarchy)".into(),
                    },
                })
            }
            _ => {
                return Err(Error::NotPaused {
                    path: cg.dir.clone(),
                })
            }
        };
        tracing::info!(path = %cg.dir.display(), ?strategy, "thawed");
        Ok(Outcome {
            strategy,
            state: self.state(cg)?,
        })
    }

    /// Thaws after a failed freeze; a thaw that fails too is reported as
    /// [`Error::LeftFrozen`], the original error going to the log.
    fn undo(&self, cg: &Cgroup, strategy: Strategy, error: Error) -> Error {
        // A freeze the kernel refused outright started nothing to undo.
        let started = match strategy {
            Strategy::Subgroup => subgroup::existing(cg).is_some(),
            _ => direct::state(cg).map_or(true, |d| d.frozen_by == Some(FrozenBy::Itself)),
        };
        if !started {
            return error;
        }
        let deadline = Deadline::after(self.timeout);
        let thawed = match strategy {
            Strategy::Subgroup => subgroup::thaw(cg, &deadline),
            _ => direct::thaw(cg, &deadline),
        };
        match thawed {
            Ok(()) => error,
            Err(thaw_error) => {
                tracing::error!(path = %cg.dir.display(), error = %error, "freeze failed");
                Error::LeftFrozen {
                    path: cg.dir.clone(),
                    source: Box::new(thaw_error),
                }
            }
        }
    }
}
