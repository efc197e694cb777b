//! What must never be frozen: the root cgroup (the whole host), a cgroup
//! holding the host's PID 1, or one holding the caller (it would stop itself
//! halfway and never return).

use crate::cgroup::Cgroup;
use crate::error::{Error, Refusal, Result};
use crate::hierarchies::Hierarchies;

/// Refuses `cg` if freezing it (or its subgroup) would hit one of the rules.
pub fn check(hierarchies: &Hierarchies, cg: &Cgroup) -> Result<()> {
    let refuse = |reason| {
        Err(Error::Refused {
            path: cg.dir.clone(),
            reason,
        })
    };
    if cg.is_root()? {
        return refuse(Refusal::Root);
    }
    if let Some(own) = hierarchies.cgroup_path_from_proc(None, cg.version())? {
        if cg.contains(&own) {
            return refuse(Refusal::Caller);
        }
    }
    if hierarchies.shows_initial_pid_namespace()? {
        if let Some(init) = hierarchies.cgroup_path_from_proc(Some(1), cg.version())? {
            if cg.contains(&init) {
                return refuse(Refusal::HostInit);
            }
        }
    }
    Ok(())
}
