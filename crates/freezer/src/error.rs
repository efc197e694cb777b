//! The freezer's one error type.

use std::io;
use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

/// Why a cgroup must not be frozen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Refusal {
    /// The root of a hierarchy: freezing it would stop the whole host.
    Root,
    /// The cgroup (or one below it) holds the host's PID 1.
    HostInit,
    /// The cgroup (or one below it) holds the calling process, which would
    /// freeze itself and never return.
    Caller,
    /// A container ID named a node of a runtime's or the kubelet's own tree
    /// (a QoS class, slice, pod or stasis node), not a container's cgroup.
    Infrastructure,
    /// A container ID named a cgroup whose subtree holds other containers.
    HoldsContainers,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Refusal::Root => "it is the root cgroup of the hierarchy",
            Refusal::HostInit => "it holds the host's PID 1",
            Refusal::Caller => "it holds this process, which would freeze itself",
            Refusal::Infrastructure => {
                "it is a node of the kubelet's, a runtime's or stasis's own cgroup tree, not a container's cgroup (name a Kubernetes pod by its UID)"
            }
            Refusal::HoldsContainers => {
                "a container ID names it, but it holds the cgroups of other containers"
            }
        })
    }
}

/// Everything that can go wrong while finding, freezing or thawing a cgroup.
///
/// Messages name the operation and the path; the kernel's answer is the
/// `source`, so a chain printed with `{:#}` says each fact once.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("reading {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("writing {value:?} to {}", path.display())]
    Write {
        path: PathBuf,
        value: String,
        #[source]
        source: io::Error,
    },
    #[error("creating cgroup {}", path.display())]
    CreateCgroup {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("removing cgroup {}", path.display())]
    RemoveCgroup {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("waiting for {} to change", path.display())]
    Wait {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("unexpected line in {}: {line:?}", path.display())]
    Parse { path: PathBuf, line: String },
    #[error("cgroup {} is gone", path.display())]
    Gone { path: PathBuf },
    #[error("no such process: {pid}")]
    NoSuchProcess { pid: u32 },
    #[error("no such cgroup: {}", path.display())]
    NoSuchCgroup { path: PathBuf },
    #[error("invalid cgroup path {path:?}: {reason}")]
    InvalidPath { path: String, reason: &'static str },
    #[error("no cgroup {wanted} hierarchy is available")]
    NoHierarchy { wanted: &'static str },
    #[error("{} is in the {actual} hierarchy, not the {wanted} one", path.display())]
    WrongHierarchy {
        path: PathBuf,
        actual: &'static str,
        wanted: &'static str,
    },
    #[error("process {pid} is in no cgroup of the {version} hierarchy")]
    NotInHierarchy { pid: u32, version: &'static str },
    #[error("process {pid} is in {cgroup:?}, outside the visible {version} hierarchy")]
    NotVisible {
        pid: u32,
        cgroup: String,
        version: &'static str,
    },
    #[error("{} is already paused", path.display())]
    AlreadyPaused { path: PathBuf },
    #[error("{} is not paused", path.display())]
    NotPaused { path: PathBuf },
    #[error("{} is paused by its ancestor {}; unpause that instead", path.display(), ancestor.display())]
    PausedByAncestor { path: PathBuf, ancestor: PathBuf },
    #[error("{} was paused by the {strategy} strategy; unpause it with that strategy or auto", path.display())]
    PausedOtherwise {
        path: PathBuf,
        strategy: &'static str,
    },
    #[error("{} did not freeze within {timeout:?}; it was thawed again", path.display())]
    FreezeTimeout { path: PathBuf, timeout: Duration },
    #[error("{} did not thaw within {timeout:?}", path.display())]
    ThawTimeout { path: PathBuf, timeout: Duration },
    #[error("could not thaw {} after a failed freeze; it may be left frozen", path.display())]
    LeftFrozen {
        path: PathBuf,
        #[source]
        source: Box<Error>,
    },
    #[error("refusing to freeze {}: {reason}", path.display())]
    Refused { path: PathBuf, reason: Refusal },
    #[error("{left} processes of {} still there {timeout:?} after SIGKILL", path.display())]
    KillTimeout {
        path: PathBuf,
        timeout: Duration,
        left: usize,
    },
    #[error("sending SIGKILL to process {pid}")]
    Kill {
        pid: u32,
        #[source]
        source: io::Error,
    },
    #[error("{} holds processes outside this PID namespace, which cannot be moved", path.display())]
    Unmovable { path: PathBuf },
    #[error("invalid {kind} {id:?}: {reason}")]
    InvalidId {
        kind: &'static str,
        id: String,
        reason: &'static str,
    },
    #[error("no such container: {id}")]
    NoSuchContainer { id: String },
    #[error("no such Kubernetes pod: {uid}")]
    NoSuchPod { uid: String },
    #[error("{kind} {id:?} is ambiguous: {matches}")]
    Ambiguous {
        kind: &'static str,
        id: String,
        matches: String,
    },
    #[error("container {id} is not running (its init process {pid} is gone)")]
    NotRunning { id: String, pid: u32 },
    #[error("parsing runtime state {}", path.display())]
    ParseState {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("mounting a private {fstype} filesystem at {}", path.display())]
    Mount {
        fstype: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// The freezer's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// The target (process or cgroup) does not exist, or vanished meanwhile.
    pub fn is_not_found(&self) -> bool {
        matches!(
            self,
            Error::NoSuchProcess { .. }
                | Error::NoSuchCgroup { .. }
                | Error::Gone { .. }
                | Error::NoSuchContainer { .. }
                | Error::NoSuchPod { .. }
        )
    }

    /// The target is frozen already (docker: "is already paused").
    pub fn is_already_paused(&self) -> bool {
        matches!(self, Error::AlreadyPaused { .. })
    }

    /// The target is not frozen, or not by itself (docker: "is not paused").
    pub fn is_not_paused(&self) -> bool {
        matches!(
            self,
            Error::NotPaused { .. }
                | Error::PausedByAncestor { .. }
                | Error::PausedOtherwise { .. }
        )
    }

    /// The safety rules refused the target.
    pub fn is_refused(&self) -> bool {
        matches!(self, Error::Refused { .. })
    }

    /// The target or path was named wrongly (bad syntax, wrong hierarchy).
    pub fn is_invalid(&self) -> bool {
        matches!(
            self,
            Error::InvalidPath { .. }
                | Error::InvalidId { .. }
                | Error::WrongHierarchy { .. }
                | Error::NotVisible { .. }
                | Error::NotInHierarchy { .. }
        )
    }

    /// A container ID prefix or pod UID matched more than one cgroup.
    pub fn is_ambiguous(&self) -> bool {
        matches!(self, Error::Ambiguous { .. })
    }

    /// The container's init process is gone (docker: "is not running").
    pub fn is_not_running(&self) -> bool {
        matches!(self, Error::NotRunning { .. })
    }

    /// The kernel said EPERM or EACCES somewhere in the chain.
    pub fn is_permission_denied(&self) -> bool {
        self.io_error().is_some_and(|e| {
            matches!(
                e.raw_os_error(),
                Some(code) if code == rustix::io::Errno::PERM.raw_os_error()
                    || code == rustix::io::Errno::ACCESS.raw_os_error()
            )
        })
    }

    /// The kernel refused the operation itself (EPERM), as it refuses a
    /// cgroup namespace root's own interface files under `nsdelegate` —
    /// unlike EACCES, which only says the file's mode forbids the caller.
    pub fn is_refused_by_kernel(&self) -> bool {
        self.io_error()
            .is_some_and(|e| e.raw_os_error() == Some(rustix::io::Errno::PERM.raw_os_error()))
    }

    /// The kernel error behind this one, if any.
    pub fn io_error(&self) -> Option<&io::Error> {
        match self {
            Error::Read { source, .. }
            | Error::Write { source, .. }
            | Error::CreateCgroup { source, .. }
            | Error::RemoveCgroup { source, .. }
            | Error::Wait { source, .. }
            | Error::Kill { source, .. }
            | Error::Mount { source, .. } => Some(source),
            Error::LeftFrozen { source, .. } => source.io_error(),
            _ => None,
        }
    }
}

/// ENOENT and ENODEV both mean the cgroup directory went away under us: a
/// removed kernfs node answers ENODEV on descriptors opened before removal.
pub(crate) fn is_gone_errno(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(c) if c == rustix::io::Errno::NOENT.raw_os_error()
        || c == rustix::io::Errno::NODEV.raw_os_error())
}
