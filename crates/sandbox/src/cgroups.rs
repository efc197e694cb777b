//! The pod's cgroup nodes: `<hierarchy>/stasis/<pod-id>/` with the pause
//! process in the leaf `pause` and each container in a leaf named by its ID,
//! in every hierarchy stasis uses (the v1 freezer and the cgroup2 tree on
//! hybrid hosts), and in the hierarchies of the resource controllers
//! (`limits`: memory, cpu, cpuacct, pids, blkio, v1 ones on hybrid hosts).
//! Pausing a pod is one write at its node.
//!
//! Kernel files: `cgroup.procs` (members; writing `0` moves the writer),
//! `cgroup.kill` (v2: SIGKILL to the subtree), `cgroup.events` (v2:
//! `populated 0` once the subtree is empty, with a modify event), and the
//! freeze files through [`freezer`], which also owns the subtree plumbing
//! (PIDs below a node, kill all, remove a tree: [`freezer::tree`]).

use std::path::PathBuf;
use std::time::Duration;

use freezer::{Cgroup, Choice, Freezer, Hierarchies, Hierarchy, Placement, State, Version};

use crate::error::{Error, Result};
use crate::host::DeviceControl;
use crate::id::Id;
use crate::limits::{ControllerMount, Controllers, Limits};

/// The directory holding every pod node.
pub const TOP: &str = "stasis";
/// The leaf of the pause process.
pub const PAUSE_LEAF: &str = "pause";

/// How long a cgroup whose last tasks are still exiting may stay busy.
const REMOVE_WAIT: Duration = Duration::from_secs(5);

/// A pod's cgroup directories in each hierarchy.
#[derive(Debug, Clone)]
pub struct PodCgroups {
    /// The pod's node in each hierarchy in use, as a cgroup (which need not
    /// exist yet).
    nodes: Vec<Cgroup>,
    /// The version stasis freezes by default (the v1 freezer on hybrid hosts).
    default: Version,
    /// The node in each resource controller's mount (the cgroup2 node of
    /// `nodes` again where cgroup2 carries controllers).
    resources: Vec<(ControllerMount, PathBuf)>,
    /// The pod's node in the v1 `devices` hierarchy, when the host has one
    /// (only confined containers get a leaf there).
    devices: Option<PathBuf>,
    /// Device rules go to a program on the cgroup2 leaf instead.
    device_program: bool,
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
        Ok(PodCgroups {
            nodes,
            default,
            resources: Vec::new(),
            devices: None,
            device_program: false,
        })
    }

    /// The same, with the containers' device rules where `control` says:
    /// the pod's node in the v1 `devices` hierarchy, or programs on the
    /// cgroup2 leaves.
    pub fn with_devices(mut self, control: &DeviceControl, pod: &Id) -> Self {
        match control {
            DeviceControl::V1(mount) => self.devices = Some(mount.join(TOP).join(pod.as_str())),
            DeviceControl::Cgroup2 => self.device_program = true,
            DeviceControl::None => {}
        }
        self
    }

    /// Confines a leaf's device access to `rules` (`c 1:3 rwm`), before
    /// any process is moved in: in the v1 devices hierarchy everything
    /// denied, then each rule allowed; on cgroup2 a device program of the
    /// same rules on the leaf ([`crate::devices`]). `None` with neither.
    pub fn confine_devices(&self, leaf: &str, rules: &[String]) -> Result<Option<()>> {
        if self.device_program {
            let dir = self
                .cgroups(Some(leaf))
                .into_iter()
                .find(|c| c.version() == Version::V2)
                .map(|c| c.dir)
                .ok_or(Error::NoDevicesController)?;
            let rules = rules
                .iter()
                .map(|r| crate::devices::Rule::parse(r))
                .collect::<Result<Vec<_>>>()?;
            crate::devices::confine(&dir, &rules)?;
            return Ok(Some(()));
        }
        let Some(node) = &self.devices else {
            return Ok(None);
        };
        let dir = node.join(leaf);
        std::fs::create_dir_all(&dir).map_err(|source| Error::CreateCgroup {
            path: dir.clone(),
            source,
        })?;
        let write = |file: &str, value: &str| {
            let path = dir.join(file);
            std::fs::write(&path, value).map_err(|source| Error::DeviceRule {
                path,
                value: value.to_owned(),
                source,
            })
        };
        write("devices.deny", "a")?;
        for rule in rules {
            write("devices.allow", rule)?;
        }
        Ok(Some(()))
    }

    /// The same, with the pod's nodes in the resource controllers' mounts.
    pub fn with_controllers(mut self, controllers: &Controllers, pod: &Id) -> Self {
        self.resources = controllers
            .mounts
            .iter()
            .map(|m| (m.clone(), Controllers::dir(m, &[TOP, pod.as_str()])))
            .collect();
        self
    }

    /// The same without the resource controllers' hierarchies: what the
    /// pause process of a pod without limits of its own joins. None of
    /// them needs it there (each container joins them in its own leaf, for
    /// its limits and `stats`), and each v1 hierarchy skipped is one
    /// cgroup move fewer at pod creation and one cgroup less in the kernel.
    pub fn without_resources(mut self) -> Self {
        self.resources.clear();
        self
    }

    /// The resource nodes that are not also freezer or cgroup2 nodes.
    fn extra_dirs(&self) -> impl Iterator<Item = &PathBuf> {
        self.resources
            .iter()
            .map(|(_, d)| d)
            .filter(|d| !self.nodes.iter().any(|n| &n.dir == *d))
    }

    /// All the node's directories: freezer, cgroup2, resources.
    fn all_dirs(&self) -> Vec<PathBuf> {
        self.nodes
            .iter()
            .map(|n| n.dir.clone())
            .chain(self.extra_dirs().cloned())
            .collect()
    }

    /// The cgroup2 controllers to enable below `stasis/` and the node.
    fn v2_controllers(&self) -> Option<(&PathBuf, &[String])> {
        self.resources
            .iter()
            .find(|(m, _)| m.unified)
            .map(|(m, d)| (d, m.controllers.as_slice()))
    }

    /// Writes limits to the node (`None`) or a leaf, in every resource
    /// controller's mount.
    pub fn set_limits(&self, leaf: Option<&str>, limits: &Limits) -> Result<()> {
        if limits.is_empty() {
            return Ok(());
        }
        let targets: Vec<_> = self
            .resources
            .iter()
            .map(|(m, d)| (m, leaf.map_or_else(|| d.clone(), |l| d.join(l))))
            .collect();
        if targets.is_empty() {
            return Err(Error::NoControllers);
        }
        crate::limits::apply(limits, &targets)
    }

    /// The node's or a leaf's directory in the mount of `controller`.
    pub fn resource_dir(&self, controller: &str, leaf: Option<&str>) -> Option<PathBuf> {
        self.resources
            .iter()
            .find(|(m, _)| m.controllers.iter().any(|c| c == controller))
            .map(|(_, d)| leaf.map_or_else(|| d.clone(), |l| d.join(l)))
    }

    /// The OOM kills counted in a leaf's memory cgroup (none without a
    /// memory controller).
    pub fn oom_kills(&self, leaf: &str) -> u64 {
        self.resource_dir("memory", Some(leaf))
            .and_then(|d| crate::limits::oom_kills(&d))
            .unwrap_or(0)
    }

    /// Creates the node and the given leaves in every hierarchy.
    /// On cgroup2 with controllers, they are enabled below `stasis/` (for
    /// the pod's own limits) and, once a container's leaf is made, below the
    /// node: not before the pause process has passed through the node (a
    /// pod with its own cgroup namespace), as a cgroup2 node with enabled
    /// controllers takes no process.
    pub fn create(&self, leaves: &[&str]) -> Result<()> {
        for node in self.all_dirs() {
            for leaf in leaves {
                let dir = node.join(leaf);
                std::fs::create_dir_all(&dir).map_err(|source| Error::CreateCgroup {
                    path: dir.clone(),
                    source,
                })?;
            }
        }
        if let Some((node, controllers)) = self.v2_controllers() {
            if let Some(top) = node.parent() {
                crate::limits::enable_v2(top, controllers)?;
            }
            if leaves.iter().any(|l| *l != PAUSE_LEAF) {
                crate::limits::enable_v2(node, controllers)?;
            }
        }
        Ok(())
    }

    /// The `cgroup.procs` files of the pod node.
    pub fn node_procs(&self) -> Vec<PathBuf> {
        self.all_dirs()
            .iter()
            .map(|d| d.join("cgroup.procs"))
            .collect()
    }

    /// The `cgroup.procs` files of a leaf (its devices leaf too, if it
    /// has one).
    pub fn leaf_procs(&self, leaf: &str) -> Vec<PathBuf> {
        let devices = self
            .devices
            .as_ref()
            .map(|d| d.join(leaf))
            .filter(|d| d.is_dir());
        self.all_dirs()
            .iter()
            .map(|d| d.join(leaf))
            .chain(devices)
            .map(|d| d.join("cgroup.procs"))
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
        // A leaf a killed `run` never made (or one already removed) holds
        // nothing to thaw.
        let mut cgroups: Vec<_> = self
            .cgroups(leaf)
            .into_iter()
            .filter(|c| c.dir.is_dir())
            .collect();
        let Some(at) = cgroups
            .iter()
            .position(|c| c.version() == self.default)
            .or((!cgroups.is_empty()).then_some(0))
        else {
            return Ok(Vec::new());
        };
        let placement = Placement {
            chosen: cgroups.remove(at),
            others: cgroups,
        };
        // The freezer's own rule of what is ours to thaw, a half-done
        // subgroup pause included.
        match Freezer::new().unpause(&placement) {
            Ok(thawed) => Ok(thawed.iter().map(|(cg, _)| cg.version()).collect()),
            Err(
                e @ (freezer::Error::NotPaused { .. }
                | freezer::Error::PausedByAncestor { .. }
                | freezer::Error::Gone { .. }),
            ) => {
                tracing::debug!(error = %e, "nothing to thaw");
                Ok(Vec::new())
            }
            Err(e) if e.is_not_paused() => Ok(Vec::new()),
            Err(e) => Err(e.into()),
        }
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
            freezer::tree::kill_all(cg, wait)?;
        }
        Ok(())
    }

    /// Removes a leaf in every hierarchy.
    pub fn remove_leaf(&self, leaf: &str) -> Result<()> {
        for cg in self.cgroups(Some(leaf)) {
            freezer::tree::remove(&cg.dir, REMOVE_WAIT)?;
        }
        for dir in self.extra_dirs() {
            freezer::tree::remove(&dir.join(leaf), REMOVE_WAIT)?;
        }
        if let Some(d) = self.devices.as_ref().map(|d| d.join(leaf)) {
            if d.is_dir() {
                freezer::tree::remove(&d, REMOVE_WAIT)?;
            }
        }
        Ok(())
    }

    /// Removes the pod's nodes (and `stasis/` when no pod is left).
    pub fn remove(&self) -> Result<()> {
        let devices = self.devices.iter().filter(|d| d.is_dir()).cloned();
        for dir in self.all_dirs().into_iter().chain(devices) {
            freezer::tree::remove(&dir, REMOVE_WAIT)?;
            if let Some(top) = dir.parent() {
                // Busy while other pods exist: that is fine.
                let _ = std::fs::remove_dir(top);
            }
        }
        Ok(())
    }

    /// Whether any of the pod's directories exists.
    pub fn exists(&self) -> bool {
        self.all_dirs().iter().any(|d| d.exists())
    }
}

/// The cgroup at `parts` below a hierarchy's top, addressed by path (no
/// lookup: it need not exist).
impl crate::Sandbox {
    /// Holds the freezer's [`anchor`](freezer::anchor) under the v1
    /// freezer's `stasis` node, for a process that pauses and unpauses
    /// many times (the API service): `None` on a host without a v1
    /// freezer (cgroup2's freezer needs none), or where the anchor cannot
    /// be made (a read-only hierarchy: pauses work as before, each paying
    /// the kernel's switch of the freezer on and off).
    pub fn freezer_anchor(&self) -> Option<freezer::anchor::Anchor> {
        let v1 = self.host.hierarchies.get(Version::V1)?;
        let node = at(v1, &[TOP]);
        match freezer::anchor::Anchor::hold(&node.dir, &self.host.proc) {
            Ok(anchor) => Some(anchor),
            Err(e) => {
                tracing::info!(error = %e, "no freezer anchor: each pause switches the kernel's freezer on");
                None
            }
        }
    }
}

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
    fn cgroup2_controllers_are_enabled_above_the_leaves_and_limits_land_there() {
        let root = scratch("v2-controllers");
        let h = fake::hybrid(&root, Path::new("/proc"));
        let id = Id::generate().expect("id");
        let unified = crate::limits::ControllerMount {
            controllers: vec!["memory".into(), "pids".into()],
            mount_point: root.join("unified"),
            root: "/".into(),
            unified: true,
        };
        let controllers = Controllers {
            mounts: vec![unified],
        };
        let cg = PodCgroups::of(&h, &id)
            .expect("cgroups")
            .with_controllers(&controllers, &id);
        let node = root.join("unified/stasis").join(id.as_str());
        cg.create(&[PAUSE_LEAF]).expect("pause leaf");
        let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
        assert_eq!(
            read(&root.join("unified/stasis/cgroup.subtree_control")),
            "+memory +pids"
        );
        assert!(
            !node.join("cgroup.subtree_control").exists(),
            "not before the pause process has passed through the node"
        );
        cg.create(&["c"]).expect("a container's leaf");
        assert_eq!(read(&node.join("cgroup.subtree_control")), "+memory +pids");
        let limits = Limits {
            memory: Some(64 << 20),
            pids_limit: Some(8),
            ..Limits::default()
        };
        cg.set_limits(Some("c"), &limits).expect("limits");
        assert_eq!(read(&node.join("c/memory.max")), "67108864");
        assert_eq!(read(&node.join("c/pids.max")), "8");
        assert_eq!(
            cg.leaf_procs("c").len(),
            2,
            "the freezer and cgroup2 leaves: cgroup2 carries the controllers"
        );
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
        assert_eq!(frozen[0].1.frozen_by, Some(freezer::FrozenBy::Itself));
        assert!(cg.is_frozen(None));
        let _ = std::fs::remove_dir_all(&root);
    }
}
