//! The pod's cgroup nodes: `<hierarchy>/stasis/<pod-id>/` with the pause
//! process in the leaf `pause` and each container in a leaf named by its ID,
//! in every hierarchy stasis uses (the v1 freezer and the cgroup2 tree on
//! hybrid hosts). Pausing a pod is one write at its node.
//!
//! Kernel files: `cgroup.procs` (members; writing `0` moves the writer),
//! `cgroup.kill` (v2: SIGKILL to the subtree), `cgroup.events` (v2:
//! `populated 0` once the subtree is empty, with a modify event), and the
//! freeze files through [`freezer`]. The subtree plumbing (PIDs below a
//! node, kill all, remove a tree) sits behind the private `tree` module.

use std::path::PathBuf;
use std::time::Duration;

use freezer::{Cgroup, Choice, Freezer, FrozenBy, Hierarchies, Hierarchy, State, Version};

use crate::error::{Error, Result};
use crate::id::Id;

/// The directory holding every pod node.
pub const TOP: &str = "stasis";
/// The leaf of the pause process.
pub const PAUSE_LEAF: &str = "pause";

/// A pod's cgroup directories in each hierarchy.
#[derive(Debug, Clone)]
pub struct PodCgroups {
    /// The pod's node in each hierarchy in use, as a cgroup (which need not
    /// exist yet).
    nodes: Vec<Cgroup>,
    /// The version stasis freezes by default (the v1 freezer on hybrid hosts).
    default: Version,
}

impl PodCgroups {
    /// The pod's nodes (which need not exist yet).
    pub fn of(hierarchies: &Hierarchies, pod: &Id) -> Result<Self> {
        let nodes: Vec<_> = [Version::V1, Version::V2]
            .into_iter()
            .filter_map(|v| hierarchies.get(v))
            .map(|h| at(h, &[TOP, pod.as_str()]))
            .collect();
        if nodes.is_empty() {
            return Err(Error::NoCgroups);
        }
        let default = hierarchies.pick(Choice::Auto)?;
        Ok(PodCgroups { nodes, default })
    }

    /// Creates the node and the given leaves in every hierarchy.
    pub fn create(&self, leaves: &[&str]) -> Result<()> {
        for node in &self.nodes {
            for leaf in leaves {
                let dir = node.dir.join(leaf);
                std::fs::create_dir_all(&dir).map_err(|source| Error::CreateCgroup {
                    path: dir.clone(),
                    source,
                })?;
            }
        }
        Ok(())
    }

    /// The `cgroup.procs` files of the pod node.
    pub fn node_procs(&self) -> Vec<PathBuf> {
        self.nodes
            .iter()
            .map(|n| n.dir.join("cgroup.procs"))
            .collect()
    }

    /// The `cgroup.procs` files of a leaf.
    pub fn leaf_procs(&self, leaf: &str) -> Vec<PathBuf> {
        self.nodes
            .iter()
            .map(|n| n.dir.join(leaf).join("cgroup.procs"))
            .collect()
    }

    /// The node, or a leaf of it, in every hierarchy.
    pub fn cgroups(&self, leaf: Option<&str>) -> Vec<Cgroup> {
        self.nodes
            .iter()
            .map(|n| match leaf {
                Some(l) => at(&n.hierarchy, &[n.path.trim_start_matches('/'), l]),
                None => n.clone(),
            })
            .collect()
    }

    /// The node or a leaf as a freezer target, in the hierarchy stasis
    /// freezes by default (the v1 freezer on hybrid hosts).
    pub fn freezer_cgroup(&self, leaf: Option<&str>) -> Result<Cgroup> {
        self.cgroups(leaf)
            .into_iter()
            .find(|c| c.version() == self.default)
            .ok_or(Error::NoCgroups)
    }

    /// Each hierarchy where the kernel says the node or leaf is frozen, with
    /// its state — a freeze done by another tool, in either tree, shows.
    pub fn frozen(&self, leaf: Option<&str>) -> Vec<(Cgroup, State)> {
        let freezer = Freezer::new();
        self.cgroups(leaf)
            .into_iter()
            .filter_map(|cg| {
                let state = freezer.state(&cg).ok()?;
                state.is_frozen().then_some((cg, state))
            })
            .collect()
    }

    /// Whether the node or leaf is frozen in any hierarchy.
    pub fn is_frozen(&self, leaf: Option<&str>) -> bool {
        !self.frozen(leaf).is_empty()
    }

    /// Thaws the node or leaf wherever its own freeze (or a subgroup pause)
    /// holds it, in every hierarchy; returns the versions thawed. A freeze
    /// held only by an ancestor is left alone.
    pub fn thaw_frozen(&self, leaf: Option<&str>) -> Result<Vec<Version>> {
        let freezer = Freezer::new();
        let mut thawed = Vec::new();
        for (cg, state) in self.frozen(leaf) {
            if matches!(state.frozen_by, Some(FrozenBy::Itself | FrozenBy::Subgroup)) {
                freezer.thaw(&cg)?;
                thawed.push(cg.version());
            }
        }
        Ok(thawed)
    }

    /// The names of the node's leaves (in the default hierarchy).
    pub fn leaves(&self) -> Vec<String> {
        self.freezer_cgroup(None)
            .ok()
            .and_then(|cg| std::fs::read_dir(cg.dir).ok())
            .map(|entries| {
                entries
                    .flatten()
                    .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Kills every process in a leaf (or the whole pod) and waits, bounded,
    /// until the kernel lists none. A frozen v1 task takes SIGKILL only once
    /// thawed: callers thaw first.
    pub fn kill_all(&self, leaf: Option<&str>, wait: Duration) -> Result<()> {
        // v2 first: `cgroup.kill` reaches every task at once, and on hybrid
        // hosts the same tasks are then gone from the v1 tree too.
        let mut cgroups = self.cgroups(leaf);
        cgroups.sort_by_key(|c| c.version() == Version::V1);
        for cg in cgroups.iter().filter(|c| c.dir.is_dir()) {
            tree::kill(&cg.dir, cg.version(), wait)?;
        }
        Ok(())
    }

    /// Removes a leaf in every hierarchy.
    pub fn remove_leaf(&self, leaf: &str) -> Result<()> {
        for cg in self.cgroups(Some(leaf)) {
            tree::remove(&cg.dir)?;
        }
        Ok(())
    }

    /// Removes the pod's nodes (and `stasis/` when no pod is left).
    pub fn remove(&self) -> Result<()> {
        for node in &self.nodes {
            tree::remove(&node.dir)?;
            if let Some(top) = node.dir.parent() {
                // Busy while other pods exist: that is fine.
                let _ = std::fs::remove_dir(top);
            }
        }
        Ok(())
    }

    /// Whether any of the pod's directories exists.
    pub fn exists(&self) -> bool {
        self.nodes.iter().any(|n| n.dir.exists())
    }
}

/// The cgroup at `parts` below a hierarchy's top, addressed by path (no
/// lookup: it need not exist).
fn at(h: &Hierarchy, parts: &[&str]) -> Cgroup {
    let rel = parts.join("/");
    let path = if h.root == "/" {
        format!("/{rel}")
    } else {
        format!("{}/{rel}", h.root.trim_end_matches('/'))
    };
    Cgroup {
        hierarchy: h.clone(),
        path,
        dir: h.mount_point.join(&rel),
    }
}

/// A cgroup subtree: the processes below a node, killing them all, removing
/// the tree. (Kernel-file plumbing that belongs in `freezer`; kept to these
/// three calls so switching is a few lines.)
mod tree {
    use std::os::fd::OwnedFd;
    use std::path::Path;
    use std::time::{Duration, Instant};

    use freezer::Version;
    use rustix::fs::inotify::{self, CreateFlags, WatchFlags};

    use crate::error::{Error, Result};

    /// PIDs in a cgroup and every cgroup below it.
    pub(super) fn pids(dir: &Path) -> Vec<u32> {
        let mut out: Vec<u32> = std::fs::read_to_string(dir.join("cgroup.procs"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect();
        if let Ok(entries) = std::fs::read_dir(dir) {
            for e in entries.flatten() {
                if e.file_type().is_ok_and(|t| t.is_dir()) {
                    out.extend(pids(&e.path()));
                }
            }
        }
        out
    }

    /// SIGKILLs every process below `dir` and waits until none is left:
    /// on v2 one write to `cgroup.kill` and a wait for `populated 0` in
    /// `cgroup.events`; on v1, which has neither, the listed PIDs (the pod's
    /// own) are signalled until the list is empty, with a backing-off poll.
    pub(super) fn kill(dir: &Path, version: Version, limit: Duration) -> Result<()> {
        let end = Instant::now() + limit;
        if pids(dir).is_empty() {
            return Ok(());
        }
        if version == Version::V2 && write_existing(&dir.join("cgroup.kill"), b"1").is_ok() {
            return wait_unpopulated(dir, end, limit);
        }
        let mut nap = Duration::from_millis(1);
        loop {
            let left = pids(dir);
            if left.is_empty() {
                return Ok(());
            }
            for pid in left {
                if let Some(p) = rustix::process::Pid::from_raw(pid as i32) {
                    let _ = rustix::process::kill_process(p, rustix::process::Signal::KILL);
                }
            }
            if Instant::now() > end {
                return Err(Error::CgroupNotEmpty {
                    path: dir.to_owned(),
                    timeout: limit,
                });
            }
            std::thread::sleep(nap);
            nap = (nap * 2).min(Duration::from_millis(50));
        }
    }

    /// Writes a kernel file that must exist (never creates one).
    fn write_existing(path: &Path, data: &[u8]) -> std::io::Result<()> {
        use std::io::Write;
        std::fs::OpenOptions::new()
            .write(true)
            .open(path)?
            .write_all(data)
    }

    /// Waits for `populated 0` in a v2 cgroup's `cgroup.events`, woken by
    /// inotify (the kernel signals a modify event on each change).
    fn wait_unpopulated(dir: &Path, end: Instant, limit: Duration) -> Result<()> {
        let events = dir.join("cgroup.events");
        let watch_err = |e: rustix::io::Errno| Error::WatchCgroup {
            path: events.clone(),
            source: e.into(),
        };
        let fd: OwnedFd =
            inotify::init(CreateFlags::CLOEXEC | CreateFlags::NONBLOCK).map_err(watch_err)?;
        inotify::add_watch(&fd, &events, WatchFlags::MODIFY).map_err(watch_err)?;
        loop {
            // Read after the watch is set, so no change is missed.
            match std::fs::read_to_string(&events) {
                Ok(text) if text.lines().any(|l| l == "populated 0") => return Ok(()),
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
                Err(source) => {
                    return Err(Error::WatchCgroup {
                        path: events,
                        source,
                    })
                }
            }
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(Error::CgroupNotEmpty {
                    path: dir.to_owned(),
                    timeout: limit,
                });
            }
            crate::process::poll_readable(&fd, left).map_err(|source| Error::WatchCgroup {
                path: events.clone(),
                source,
            })?;
            let mut buf = [0u8; 1024];
            while matches!(rustix::io::read(&fd, &mut buf), Ok(n) if n > 0) {}
        }
    }

    /// Removes a cgroup directory and its children, deepest first. A v1
    /// cgroup whose last tasks are still being reaped answers EBUSY for a
    /// moment and gives no event for it: retry, bounded, backing off.
    pub(super) fn remove(dir: &Path) -> Result<()> {
        let entries = match std::fs::read_dir(dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(source) => {
                return Err(Error::ListCgroup {
                    path: dir.to_owned(),
                    source,
                })
            }
        };
        for e in entries.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                remove(&e.path())?;
            }
        }
        let end = Instant::now() + Duration::from_secs(5);
        let mut nap = Duration::from_millis(1);
        loop {
            match std::fs::remove_dir(dir) {
                Ok(()) => return Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
                Err(e) if e.raw_os_error() == Some(libc::EBUSY) && Instant::now() < end => {
                    std::thread::sleep(nap);
                    nap = (nap * 2).min(Duration::from_millis(50));
                }
                Err(source) => {
                    return Err(Error::RemoveCgroup {
                        path: dir.to_owned(),
                        source,
                    })
                }
            }
        }
    }
}

/// A fake cgroup tree for tests: a hybrid host's two mounts in a temporary
/// directory, and its `Hierarchies`.
#[cfg(test)]
pub(crate) mod fake {
    use std::path::Path;

    use freezer::{Hierarchies, Version};

    /// A hybrid layout under `root`: `root/freezer` (v1) and `root/unified`.
    pub(crate) fn hybrid(root: &Path, proc: &Path) -> Hierarchies {
        let mount = |dir: &str, unified: bool, controllers: Vec<String>| {
            let mount_point = root.join(dir);
            std::fs::create_dir_all(&mount_point).expect("fake mount");
            freezer::mountinfo::CgroupMount {
                mount_point,
                root: "/".into(),
                unified,
                controllers,
            }
        };
        let mounts = [
            mount("freezer", false, vec!["freezer".into()]),
            mount("unified", true, vec![]),
        ];
        Hierarchies::from_mounts(proc, &mounts)
    }

    /// Marks a fake cgroup directory frozen by itself in its version.
    pub(crate) fn freeze(dir: &Path, version: Version) {
        std::fs::create_dir_all(dir).expect("cgroup dir");
        match version {
            Version::V1 => {
                std::fs::write(dir.join("freezer.state"), "FROZEN\n").expect("state");
                std::fs::write(dir.join("freezer.self_freezing"), "1\n").expect("self");
                std::fs::write(dir.join("freezer.parent_freezing"), "0\n").expect("parent");
            }
            Version::V2 => {
                std::fs::write(dir.join("cgroup.freeze"), "1\n").expect("freeze");
                std::fs::write(dir.join("cgroup.events"), "populated 1\nfrozen 1\n")
                    .expect("events");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn scratch(tag: &str) -> PathBuf {
        let d =
            std::env::temp_dir().join(format!("stasis-unit-cgroups-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).expect("scratch");
        d
    }

    #[test]
    fn a_pod_has_a_node_in_each_hierarchy_addressed_by_path() {
        let root = scratch("paths");
        let h = fake::hybrid(&root, Path::new("/proc"));
        let id = Id::generate().expect("id");
        let cg = PodCgroups::of(&h, &id).expect("cgroups");
        let leaf = cg.freezer_cgroup(Some("pause")).expect("v1");
        assert_eq!(leaf.version(), Version::V1, "v1 is the default on hybrid");
        assert_eq!(leaf.path, format!("/stasis/{id}/pause"));
        assert_eq!(
            leaf.dir,
            root.join("freezer/stasis").join(id.as_str()).join("pause")
        );
        cg.create(&["pause"]).expect("create");
        assert!(root
            .join("unified/stasis")
            .join(id.as_str())
            .join("pause")
            .is_dir());
        assert_eq!(cg.leaves(), vec!["pause".to_owned()]);
        let _ = std::fs::remove_dir_all(&root);
    }

    #[test]
    fn a_freeze_in_either_hierarchy_shows() {
        let root = scratch("frozen");
        let h = fake::hybrid(&root, Path::new("/proc"));
        let id = Id::generate().expect("id");
        let cg = PodCgroups::of(&h, &id).expect("cgroups");
        cg.create(&["c"]).expect("create");
        assert!(!cg.is_frozen(None));
        fake::freeze(&root.join("unified/stasis").join(id.as_str()), Version::V2);
        let frozen = cg.frozen(None);
        assert_eq!(frozen.len(), 1);
        assert_eq!(frozen[0].0.version(), Version::V2);
        assert_eq!(frozen[0].1.frozen_by, Some(FrozenBy::Itself));
        assert!(cg.is_frozen(None));
        let _ = std::fs::remove_dir_all(&root);
    }

    #[test]
    fn removing_a_tree_goes_deepest_first() {
        let root = scratch("remove");
        let deep = root.join("a/b/c");
        std::fs::create_dir_all(&deep).expect("tree");
        assert!(tree::pids(&root).is_empty());
        tree::remove(&root.join("a")).expect("remove");
        assert!(!root.join("a").exists());
        tree::remove(&root.join("a")).expect("a missing tree is fine");
        let _ = std::fs::remove_dir_all(&root);
    }
}
