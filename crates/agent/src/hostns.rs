//! The host's cgroup namespace, for an agent that runs in a pod.
//!
//! A container has a cgroup namespace of its own (Kubernetes gives every
//! container one on cgroup v2 hosts, and there is no pod field to share the
//! host's): in it `/proc/PID/cgroup` and the `root` field of
//! `/proc/self/mountinfo` are relative to the container's cgroup, and the
//! pods' cgroups under a host `/sys/fs/cgroup` mount cannot be named. With
//! `hostPID`, `/proc/1/ns/cgroup` is the host's; `setns(CLONE_NEWCGROUP)`
//! into it (needs `CAP_SYS_ADMIN`) makes both read as on the host. It
//! changes the calling thread only, and threads created afterwards inherit
//! it: call [`enter`] before any runtime starts.

use std::fs::File;
use std::os::fd::AsFd;
use std::path::Path;

use rustix::thread::{move_into_link_name_space, LinkNameSpaceType};

use crate::error::{Error, Result};

/// Joins `<proc_root>/1/ns/cgroup` unless this process is in it already;
/// whether it moved.
pub fn enter(proc_root: &Path) -> Result<bool> {
    let host = proc_root.join("1/ns/cgroup");
    let err = |path: &Path, source: std::io::Error| Error::EnterCgroupNamespace {
        path: path.to_owned(),
        source,
    };
    let theirs = std::fs::read_link(&host).map_err(|e| err(&host, e))?;
    let own = proc_root.join("self/ns/cgroup");
    let ours = std::fs::read_link(&own).map_err(|e| err(&own, e))?;
    if theirs == ours {
        return Ok(false);
    }
    let file = File::open(&host).map_err(|e| err(&host, e))?;
    move_into_link_name_space(file.as_fd(), Some(LinkNameSpaceType::ControlGroup))
        .map_err(|e| err(&host, e.into()))?;
    Ok(true)
}
