//! The pod's cgroup nodes: `<hierarchy>/stasis/<pod-id>/` with the pause
//! process in the leaf `pause` and each container in a leaf named by its ID,
//! in every hierarchy stasis uses (the v1 freezer and the cgroup2 tree on
//! hybrid hosts). Pausing a pod is one write at its node.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use freezer::{Cgroup, Choice, Hierarchies, Target, Version};

use crate::error::{io_err, Error, Result};
use crate::id::Id;

/// The directory holding every pod node.
pub const TOP: &str = "stasis";
/// The leaf of the pause process.
pub const PAUSE_LEAF: &str = "pause";

/// A pod's cgroup directories in each hierarchy.
#[derive(Debug, Clone)]
pub struct PodCgroups {
    /// `(version, node directory)` for each hierarchy in use.
    nodes: Vec<(Version, PathBuf)>,
}

impl PodCgroups {
    /// The pod's nodes (which need not exist yet).
    pub fn of(hierarchies: &Hierarchies, pod: &Id) -> Result<Self> {
        let nodes: Vec<_> = [Version::V1, Version::V2]
            .into_iter()
            .filter_map(|v| {
                hierarchies
                    .get(v)
                    .map(|h| (v, h.mount_point.join(TOP).join(pod.as_str())))
            })
            .collect();
        if nodes.is_empty() {
            return Err(Error::NoCgroups);
        }
        Ok(PodCgroups { nodes })
    }

    /// Creates the node and the given leaves in every hierarchy.
    pub fn create(&self, leaves: &[&str]) -> Result<()> {
        for (_, node) in &self.nodes {
            for leaf in leaves {
                let dir = node.join(leaf);
                match std::fs::create_dir_all(&dir) {
                    Ok(()) => {}
                    Err(e) => return Err(io_err("creating cgroup", &dir)(e)),
                }
            }
        }
        Ok(())
    }

    /// The `cgroup.procs` files of the pod node.
    pub fn node_procs(&self) -> Vec<PathBuf> {
        self.nodes
            .iter()
            .map(|(_, n)| n.join("cgroup.procs"))
            .collect()
    }

    /// The `cgroup.procs` files of a leaf.
    pub fn leaf_procs(&self, leaf: &str) -> Vec<PathBuf> {
        self.nodes
            .iter()
            .map(|(_, n)| n.join(leaf).join("cgroup.procs"))
            .collect()
    }

    /// The node or a leaf as a freezer target, in the hierarchy stasis
    /// freezes by default (the v1 freezer on hybrid hosts).
    pub fn freezer_cgroup(&self, hierarchies: &Hierarchies, leaf: Option<&str>) -> Result<Cgroup> {
        let version = hierarchies.pick(Choice::Auto)?;
        let node = self
            .nodes
            .iter()
            .find(|(v, _)| *v == version)
            .map(|(_, n)| n)
            .ok_or(Error::NoCgroups)?;
        let dir = leaf.map_or_else(|| node.clone(), |l| node.join(l));
        Ok(hierarchies.resolve(&Target::Cgroup(dir.display().to_string()), Choice::Auto)?)
    }

    /// Whether the kernel says the node or leaf is frozen in any hierarchy —
    /// a freeze done by another tool, in either tree, shows.
    pub fn is_frozen(&self, hierarchies: &Hierarchies, leaf: Option<&str>) -> bool {
        let freezer = freezer::Freezer::new();
        self.nodes.iter().any(|(_, node)| {
            let dir = leaf.map_or_else(|| node.clone(), |l| node.join(l));
            hierarchies
                .resolve(&Target::Cgroup(dir.display().to_string()), Choice::Auto)
                .and_then(|cg| freezer.state(&cg))
                .is_ok_and(|s| s.is_frozen())
        })
    }

    /// Kills every process in a leaf (or the whole pod) and waits, bounded,
    /// until the kernel lists none. v2 has `cgroup.kill`; on v1 the listed
    /// PIDs are signalled (they are the pod's own).
    pub fn kill_all(&self, leaf: Option<&str>, wait: Duration) -> Result<()> {
        let dirs: Vec<(Version, PathBuf)> = self
            .nodes
            .iter()
            .map(|(v, n)| (*v, leaf.map_or_else(|| n.clone(), |l| n.join(l))))
            .filter(|(_, d)| d.is_dir())
            .collect();
        let end = Instant::now() + wait;
        loop {
            let mut left = 0;
            for (version, dir) in &dirs {
                let pids = procs_below(dir);
                left += pids.len();
                if pids.is_empty() {
                    continue;
                }
                if *version == Version::V2 && std::fs::write(dir.join("cgroup.kill"), "1").is_ok() {
                    continue;
                }
                for pid in pids {
                    if let Some(p) = rustix::process::Pid::from_raw(pid as i32) {
                        let _ = rustix::process::kill_process(p, rustix::process::Signal::KILL);
                    }
                }
            }
            if left == 0 {
                return Ok(());
            }
            if Instant::now() > end {
                return Err(Error::Spawn {
                    what: format!("killing the processes of {}", dirs[0].1.display()),
                    source: std::io::Error::from(std::io::ErrorKind::TimedOut),
                });
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Removes a leaf in every hierarchy.
    pub fn remove_leaf(&self, leaf: &str) -> Result<()> {
        for (_, node) in &self.nodes {
            remove_tree(&node.join(leaf))?;
        }
        Ok(())
    }

    /// Removes the pod's nodes (and `stasis/` when no pod is left).
    pub fn remove(&self) -> Result<()> {
        for (_, node) in &self.nodes {
            remove_tree(node)?;
            if let Some(top) = node.parent() {
                // Busy while other pods exist: that is fine.
                let _ = std::fs::remove_dir(top);
            }
        }
        Ok(())
    }
}

/// PIDs in a cgroup and every cgroup below it.
fn procs_below(dir: &std::path::Path) -> Vec<u32> {
    let mut out: Vec<u32> = std::fs::read_to_string(dir.join("cgroup.procs"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                out.extend(procs_below(&e.path()));
            }
        }
    }
    out
}

/// Removes a cgroup directory and its children, deepest first; a cgroup that
/// still holds exiting tasks answers EBUSY for a moment, so retry briefly.
fn remove_tree(dir: &std::path::Path) -> Result<()> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io_err("listing cgroup", dir)(e)),
    };
    for e in entries.flatten() {
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            remove_tree(&e.path())?;
        }
    }
    let end = Instant::now() + Duration::from_secs(5);
    loop {
        match std::fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && Instant::now() < end => {
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(e) => return Err(io_err("removing cgroup", dir)(e)),
        }
    }
}
