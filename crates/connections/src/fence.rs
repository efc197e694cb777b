//! Fences: a paused cgroup's connections reset, and its listening ports
//! refusing new connections until it is thawed, recorded so that whoever
//! thaws it (another process, after a crash) removes the rules.
//!
//! Which sockets are the target's ([`crate::namespaces`]): in a network
//! namespace that only the target's processes are in (a pod, another
//! runtime's container with a namespace of its own), all of them; in a
//! shared one (the host's, one member of a pod), only those its processes
//! hold.
//!
//! Each fence is named by a tag derived from the cgroup's path, so the same
//! target named another way (a PID, a path, a name) has the same tag, and is
//! recorded in `<state root>/fences/<tag>.json` *before* any rule is added:
//! an unpause then removes the rules even if the pause that added them was
//! killed half-way. Files: `<proc_root>/PID/ns/net`, `/proc/PID/fd`, the
//! cgroup's `cgroup.procs` (through [`freezer::tree::procs_below`]).

use std::path::{Path, PathBuf};

use freezer::Cgroup;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::{namespaces, Netfilter, Scope, Tag};

/// What a reset did, for the user and for `--format json`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Outcome {
    /// Connections destroyed (each peer got a TCP reset).
    pub reset: usize,
    /// Sockets already gone when their turn came (usually the other end of
    /// a loopback connection whose first end was just destroyed).
    pub already_gone: usize,
    /// The listening ports that refuse new connections while it is paused.
    pub fenced_ports: Vec<u16>,
}

/// The record of a fence: where its rules are.
#[derive(Debug, Serialize, Deserialize)]
struct Record {
    cgroup: String,
    /// The nsfs inodes of the namespaces that hold a rule.
    namespaces: Vec<u64>,
}

/// The fence records under a state root.
#[derive(Debug)]
pub struct Fences {
    dir: PathBuf,
    proc_root: PathBuf,
}

impl Fences {
    pub fn new(state_root: &Path) -> Self {
        Fences {
            dir: state_root.join("fences"),
            proc_root: PathBuf::from("/proc"),
        }
    }

    fn record_path(&self, tag: &Tag) -> PathBuf {
        self.dir.join(format!("{tag}.json"))
    }

    /// The tag of a cgroup's fence: its path in the hierarchy (the same in
    /// either tree), hashed.
    pub fn tag(cgroup: &Cgroup) -> Tag {
        // FNV-1a, 64 bits: stable across runs and builds, unlike std's hasher.
        let hash = cgroup.path.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
        Tag::new(format!("cg-{hash:016x}")).expect("a hex tag is valid")
    }

    /// Resets the connections of the frozen `cgroup`'s processes and fences
    /// its listening ports.
    pub fn reset(&self, cgroup: &Cgroup) -> Result<Outcome> {
        let pids = freezer::tree::procs_below(cgroup).map_err(|source| Error::ListProcesses {
            cgroup: cgroup.path.clone(),
            source,
        })?;
        // Inside a container's PID namespace some processes are invisible:
        // then no namespace is known to be the target's alone.
        let all_visible =
            freezer::proc::shows_initial_pid_namespace(&self.proc_root).unwrap_or(false);
        let places = namespaces::places(&self.proc_root, &pids, all_visible)?;
        let tag = Self::tag(cgroup);
        let netfilter = Netfilter::new();
        let mut outcome = Outcome::default();
        let mut fenced = Vec::new();
        for place in &places {
            let listeners = crate::listeners(&place.netns, &place.scope, &self.proc_root)?;
            let done = if listeners.is_empty() {
                crate::reset(&place.netns, &place.scope, &self.proc_root)
            } else {
                // Recorded before the rule exists, so no rule is ever left
                // without a record that an unpause will find.
                fenced.push(place.inode);
                self.write(
                    &tag,
                    &Record {
                        cgroup: cgroup.path.clone(),
                        namespaces: fenced.clone(),
                    },
                )?;
                crate::fence_and_reset(
                    &place.netns,
                    &place.scope,
                    &self.proc_root,
                    &netfilter,
                    &tag,
                )
            }?;
            tracing::info!(
                scope = if place.scope == Scope::Namespace {
                    "namespace"
                } else {
                    "processes"
                },
                destroyed = done.destroyed,
                listeners = done.listeners.len(),
                "reset connections"
            );
            outcome.reset += done.destroyed;
            outcome.already_gone += done.already_gone;
            outcome
                .fenced_ports
                .extend(done.listeners.iter().map(|s| s.local.port()));
        }
        outcome.fenced_ports.sort_unstable();
        outcome.fenced_ports.dedup();
        Ok(outcome)
    }

    /// Removes the fence of `cgroup`, if a pause left one; whether there was.
    /// `pinned` names the target's network namespace by a bind mount (a
    /// stasis pod's), for when no process is in it any more.
    pub fn remove(&self, cgroup: &Cgroup, pinned: Option<&Path>) -> Result<bool> {
        let tag = Self::tag(cgroup);
        let path = self.record_path(&tag);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
            Err(source) => return Err(Error::ReadFence { path, source }),
        };
        let record: Record = serde_json::from_str(&text).map_err(|source| Error::ParseFence {
            path: path.clone(),
            source,
        })?;
        let netfilter = Netfilter::new();
        for inode in record.namespaces {
            let pin = pinned
                .map(crate::NetNs::new)
                .filter(|ns| ns.inode().is_ok_and(|i| i == inode));
            // A namespace that no process is in and nothing pins is gone,
            // with its rules.
            let found = match pin {
                Some(ns) => Some(ns),
                None => namespaces::find(&self.proc_root, inode)?,
            };
            if let Some(netns) = found {
                netfilter.remove(&netns, &tag)?;
            }
        }
        std::fs::remove_file(&path).map_err(|source| Error::RemoveFence {
            path: path.clone(),
            source,
        })?;
        Ok(true)
    }

    /// Writes a record atomically: a temporary file of this process's,
    /// fsynced, then renamed over the record.
    fn write(&self, tag: &Tag, record: &Record) -> Result<()> {
        use std::io::Write;
        std::fs::create_dir_all(&self.dir).map_err(|source| Error::WriteFence {
            path: self.dir.clone(),
            source,
        })?;
        let path = self.record_path(tag);
        let tmp = self.dir.join(format!(".{tag}.{}.tmp", std::process::id()));
        let text = serde_json::to_vec(record).expect("a record serializes");
        std::fs::File::create(&tmp)
            .and_then(|mut f| {
                f.write_all(&text)?;
                f.sync_all()
            })
            .and_then(|()| std::fs::rename(&tmp, &path))
            .map_err(|source| Error::WriteFence { path, source })
    }
}

impl Outcome {
    /// The line `pause` prints on stderr.
    pub fn describe(&self, what: &str) -> String {
        let mut line = format!(
            "reset {} connection{} of {what}",
            self.reset,
            if self.reset == 1 { "" } else { "s" }
        );
        if !self.fenced_ports.is_empty() {
            let ports: Vec<String> = self.fenced_ports.iter().map(u16::to_string).collect();
            line.push_str(&format!(
                "; new connections to port{} {} are refused until it is unpaused",
                if ports.len() == 1 { "" } else { "s" },
                ports.join(", ")
            ));
        }
        line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cgroup(path: &str) -> Cgroup {
        Cgroup {
            hierarchy: freezer::Hierarchy {
                version: freezer::Version::V1,
                mount_point: "/sys/fs/cgroup/freezer".into(),
                root: "/".into(),
            },
            path: path.into(),
            dir: PathBuf::from("/sys/fs/cgroup/freezer").join(path.trim_start_matches('/')),
        }
    }

    #[test]
    fn a_cgroup_has_one_stable_tag_in_either_hierarchy() {
        let a = Fences::tag(&cgroup("/stasis/abc"));
        let mut v2 = cgroup("/stasis/abc");
        v2.hierarchy.version = freezer::Version::V2;
        v2.dir = "/sys/fs/cgroup/unified/stasis/abc".into();
        assert_eq!(a, Fences::tag(&v2));
        assert_ne!(a, Fences::tag(&cgroup("/stasis/abd")));
        assert_eq!(a.as_str().len(), "cg-".len() + 16);
        // FNV-1a of the empty path is its offset basis: the tag is stable.
        assert_eq!(Fences::tag(&cgroup("")).as_str(), "cg-cbf29ce484222325");
    }

    #[test]
    fn the_outcome_says_what_was_reset_and_fenced() {
        let none = Outcome::default();
        assert_eq!(none.describe("web"), "reset 0 connections of web");
        let some = Outcome {
            reset: 1,
            already_gone: 0,
            fenced_ports: vec![80, 443],
        };
        assert_eq!(
            some.describe("web"),
            "reset 1 connection of web; new connections to ports 80, 443 are refused until it is unpaused"
        );
    }
}
