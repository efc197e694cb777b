//! What the kernel says about a cgroup's freeze.

use serde::Serialize;

/// The effective freeze phase of a cgroup, as the kernel reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    /// Running.
    Thawed,
    /// Asked to freeze; some tasks are not frozen yet.
    Freezing,
    /// Every task is frozen.
    Frozen,
}

impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Phase::Thawed => "thawed",
            Phase::Freezing => "freezing",
            Phase::Frozen => "frozen",
        })
    }
}

/// Whose request holds a cgroup frozen (or freezing).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FrozenBy {
    /// Its own freeze file (`freezer.state` / `cgroup.freeze`).
    #[serde(rename = "self")]
    Itself,
    /// An ancestor's freeze file.
    Ancestor,
    /// The subgroup strategy: its processes sit in a frozen child.
    Subgroup,
}

/// A cgroup's freeze state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct State {
    /// The effective phase.
    pub phase: Phase,
    /// Why it is frozen or freezing; `None` when thawed.
    pub frozen_by: Option<FrozenBy>,
    /// The nearest visible ancestor that asked for the freeze, as a cgroup
    /// path, when `frozen_by` is `Ancestor` (`None` if it is above the mount).
    pub ancestor: Option<String>,
    /// The subgroup the strategy made, as a cgroup path, if it exists.
    pub subgroup: Option<String>,
}

impl State {
    /// Whether every task is frozen, for whatever reason.
    pub fn is_frozen(&self) -> bool {
        self.phase == Phase::Frozen
    }
}
