//! The value types: a hierarchy version and the user's choice of one, the
//! host's layout, one mounted hierarchy, a cgroup directory in it, and what
//! a user names as a target. No kernel file is read here except the
//! existence checks of [`Cgroup::is_root`]; finding and resolving is
//! [`crate::Hierarchies`]' job.

use std::fmt;
use std::path::PathBuf;

use serde::Serialize;

use crate::error::{Error, Result};

/// A cgroup hierarchy version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Version {
    /// The v1 `freezer` controller's hierarchy (`freezer.state`).
    V1,
    /// The unified hierarchy (`cgroup.freeze`, `cgroup.events`).
    V2,
}

impl Version {
    /// `"v1"` or `"v2"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Version::V1 => "v1",
            Version::V2 => "v2",
        }
    }

    /// The file that freezes a cgroup of this version. The root cgroup has
    /// none: the kernel marks it not-on-root.
    pub fn freeze_file(self) -> &'static str {
        match self {
            Version::V1 => "freezer.state",
            Version::V2 => "cgroup.freeze",
        }
    }

    /// The filesystem type to mount for this version.
    pub fn fstype(self) -> &'static str {
        match self {
            Version::V1 => "cgroup",
            Version::V2 => "cgroup2",
        }
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which hierarchy to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Choice {
    /// The v1 freezer if the host has one, else cgroup2; for a filesystem
    /// path, the hierarchy it lies in.
    #[default]
    Auto,
    /// The v1 freezer hierarchy.
    V1,
    /// The cgroup2 hierarchy.
    V2,
}

/// The host's cgroup layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Layout {
    /// Only cgroup2.
    V2Only,
    /// Only v1 hierarchies.
    V1Only,
    /// v1 controllers and a cgroup2 tree side by side.
    Hybrid,
    /// No cgroup filesystem is mounted in this mount namespace.
    None,
}

/// One mounted hierarchy: where it is, and which cgroup its top shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hierarchy {
    /// v1 freezer or cgroup2.
    pub version: Version,
    /// Where it is mounted.
    pub mount_point: PathBuf,
    /// The cgroup at the mount point, as a path in the hierarchy (`/` unless
    /// a subtree was bind-mounted).
    pub root: String,
}

/// A cgroup directory, checked to exist inside a hierarchy's mount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cgroup {
    /// The hierarchy it belongs to.
    pub hierarchy: Hierarchy,
    /// Its path in the hierarchy, `/`-rooted, as `/proc/PID/cgroup` shows it.
    pub path: String,
    /// Its directory.
    pub dir: PathBuf,
}

impl Cgroup {
    /// The cgroup's version.
    pub fn version(&self) -> Version {
        self.hierarchy.version
    }

    /// Whether this is the top of its mount (nothing above it is visible).
    pub fn is_mount_top(&self) -> bool {
        self.dir == self.hierarchy.mount_point
    }

    /// The parent cgroup, unless this is the top of the mount.
    pub fn parent(&self) -> Option<Cgroup> {
        if self.is_mount_top() {
            return None;
        }
        let dir = self.dir.parent()?.to_owned();
        let path = match self.path.rsplit_once('/') {
            Some(("", _)) | None => "/".to_owned(),
            Some((head, _)) => head.to_owned(),
        };
        Some(Cgroup {
            hierarchy: self.hierarchy.clone(),
            path,
            dir,
        })
    }

    /// A child cgroup (which need not exist).
    pub(crate) fn child(&self, name: &str) -> Cgroup {
        let path = if self.path == "/" {
            format!("/{name}")
        } else {
            format!("{}/{name}", self.path)
        };
        Cgroup {
            hierarchy: self.hierarchy.clone(),
            path,
            dir: self.dir.join(name),
        }
    }

    /// Whether this is the real root of its hierarchy. The kernel gives the
    /// root no freeze file, while a cgroup namespace's root (which its
    /// members see as `/`) has one; a cgroup below its mount's top is no
    /// root, whatever its files (nothing is read for it). A mount's top
    /// that vanished is gone.
    pub fn is_root(&self) -> Result<bool> {
        if !self.is_mount_top() {
            return Ok(false);
        }
        if self.dir.join(self.version().freeze_file()).exists() {
            return Ok(false);
        }
        if self.dir.is_dir() {
            Ok(true)
        } else {
            Err(Error::Gone {
                path: self.dir.clone(),
            })
        }
    }

    /// Whether `other` is this cgroup or lies below it.
    pub fn contains(&self, other: &Cgroup) -> bool {
        self.hierarchy.mount_point == other.hierarchy.mount_point
            && other.dir.starts_with(&self.dir)
    }
}

/// What to freeze, as a user names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// The cgroup a process is in.
    Pid(u32),
    /// An absolute path in a mounted cgroup filesystem, or a cgroup path
    /// relative to the hierarchy's root (`/a/b` or `a/b`).
    Cgroup(String),
    /// A container started by another runtime, by full ID or unique prefix,
    /// found by the runtimes' cgroup naming conventions ([`crate::runtime`]).
    ContainerId(String),
    /// A container in a runc or crun state directory (`--root` of the
    /// runtime), by full ID or unique prefix: the cgroup of its init
    /// process, checked against the recorded start time.
    RuntimeState {
        /// The runtime's state directory (runc: `/run/runc`, crun: `/run/crun`).
        root: PathBuf,
        /// The container ID or a unique prefix.
        id: String,
    },
    /// A Kubernetes pod by UID: the pod's cgroup node, holding its sandbox
    /// and all its containers, in either kubelet driver's naming.
    K8sPod(String),
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Pid(pid) => write!(f, "process {pid}"),
            Target::Cgroup(path) => write!(f, "cgroup {path}"),
            Target::ContainerId(id) => write!(f, "container {id}"),
            Target::RuntimeState { root, id } => {
                write!(f, "container {id} of {}", root.display())
            }
            Target::K8sPod(uid) => write!(f, "Kubernetes pod {uid}"),
        }
    }
}

impl Choice {
    /// The choice that means exactly `version`.
    pub fn of(version: Version) -> Choice {
        match version {
            Version::V1 => Choice::V1,
            Version::V2 => Choice::V2,
        }
    }
}

/// One target in every mounted freezer hierarchy it belongs to.
///
/// On a hybrid host a process, a cgroup path or a container has a cgroup in
/// the v1 freezer tree and one in the cgroup2 tree, and a freeze of either
/// stops it: a target is paused when it is frozen in any of them.
/// [`crate::Freezer::states`], [`crate::Freezer::pause`] and
/// [`crate::Freezer::unpause`] take a placement for that reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    /// The cgroup the hierarchy choice picked: the one a pause freezes.
    pub chosen: Cgroup,
    /// The same target's cgroups in the other mounted hierarchies.
    pub others: Vec<Cgroup>,
}

impl Placement {
    /// A placement of one cgroup alone (a hierarchy named explicitly).
    pub fn single(chosen: Cgroup) -> Self {
        Placement {
            chosen,
            others: Vec::new(),
        }
    }

    /// Every cgroup, the chosen one first.
    pub fn all(&self) -> impl Iterator<Item = &Cgroup> {
        std::iter::once(&self.chosen).chain(&self.others)
    }
}
