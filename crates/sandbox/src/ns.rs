//! The pod's namespaces, pinned by bind mounts of `/proc/PID/ns/<kind>` onto
//! files in its state directory, so members join through the pins and never
//! through a PID that may have been reused after the pause process died.

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use rustix::fs::{Mode, OFlags};
use rustix::mount::UnmountFlags;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// A namespace a pod can share.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Namespace {
    Net,
    Ipc,
    Uts,
    Pid,
    Cgroup,
}

/// Kubernetes' and podman's default: net, ipc, uts.
pub const DEFAULT_SHARE: [Namespace; 3] = [Namespace::Net, Namespace::Ipc, Namespace::Uts];

impl Namespace {
    /// Its name under `/proc/PID/ns`.
    pub fn name(self) -> &'static str {
        match self {
            Namespace::Net => "net",
            Namespace::Ipc => "ipc",
            Namespace::Uts => "uts",
            Namespace::Pid => "pid",
            Namespace::Cgroup => "cgroup",
        }
    }

    /// Its `CLONE_NEW*` flag for setns.
    pub fn link_type(self) -> rustix::thread::LinkNameSpaceType {
        use rustix::thread::LinkNameSpaceType as L;
        match self {
            Namespace::Net => L::Network,
            Namespace::Ipc => L::InterProcessCommunication,
            Namespace::Uts => L::HostNameAndNISDomainName,
            Namespace::Pid => L::ProcessID,
            Namespace::Cgroup => L::ControlGroup,
        }
    }
}

/// Parses `--share net,ipc,uts[,pid][,cgroup]`.
pub fn parse_share(s: &str) -> Result<Vec<Namespace>> {
    let mut out = Vec::new();
    for part in s.split(',') {
        let ns = match part.trim() {
            "net" => Namespace::Net,
            "ipc" => Namespace::Ipc,
            "uts" => Namespace::Uts,
            "pid" => Namespace::Pid,
            "cgroup" => Namespace::Cgroup,
            _ => {
                return Err(Error::InvalidArgument {
                    what: "namespace",
                    value: part.to_owned(),
                    reason: "choose from net, ipc, uts, pid, cgroup",
                })
            }
        };
        if !out.contains(&ns) {
            out.push(ns);
        }
    }
    out.sort();
    Ok(out)
}

pub(crate) fn pin_dir(pod_dir: &Path) -> PathBuf {
    pod_dir.join("ns")
}

/// Pins the namespaces of process `pid` (as `proc`, normally `/proc`,
/// shows it) under the pod's directory.
pub fn pin(proc: &Path, pod_dir: &Path, pid: u32, kinds: &[Namespace]) -> Result<()> {
    let dir = pin_dir(pod_dir);
    std::fs::create_dir_all(&dir).map_err(|source| Error::Pin {
        path: dir.clone(),
        source,
    })?;
    for kind in kinds {
        let target = dir.join(kind.name());
        let source = proc.join(pid.to_string()).join("ns").join(kind.name());
        std::fs::File::create(&target)
            .and_then(|_| rustix::mount::mount_bind(&source, &target).map_err(Into::into))
            .map_err(|source| Error::Pin {
                path: target.clone(),
                source,
            })?;
    }
    Ok(())
}

/// Opens the namespace of `kind` of process `pid` (`proc` is `/proc`).
pub fn open_of(proc: &Path, pid: u32, kind: &str) -> Result<OwnedFd> {
    let path = proc.join(pid.to_string()).join("ns").join(kind);
    rustix::fs::open(&path, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty()).map_err(|e| {
        Error::OpenNamespace {
            path,
            source: e.into(),
        }
    })
}

/// Opens the pins, to join them.
pub fn open(pod_dir: &Path, kinds: &[Namespace]) -> Result<Vec<(Namespace, OwnedFd)>> {
    kinds
        .iter()
        .map(|kind| {
            let path = pin_dir(pod_dir).join(kind.name());
            rustix::fs::open(&path, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty())
                .map(|fd| (*kind, fd))
                .map_err(|e| Error::OpenNamespace {
                    path: path.clone(),
                    source: e.into(),
                })
        })
        .collect()
}

/// Unmounts and removes every pin; missing ones are fine.
pub fn unpin(pod_dir: &Path) -> Result<()> {
    let dir = pin_dir(pod_dir);
    let entries = match std::fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(source) => return Err(Error::Unpin { path: dir, source }),
    };
    for entry in entries.flatten() {
        let path = entry.path();
        match rustix::mount::unmount(&path, UnmountFlags::DETACH) {
            Ok(()) | Err(rustix::io::Errno::INVAL) | Err(rustix::io::Errno::NOENT) => {}
            Err(e) => {
                return Err(Error::Unpin {
                    path,
                    source: e.into(),
                })
            }
        }
        // A monitor ending the container's implicit pod and an `rm -f` of
        // it tear down at the same time: a pin already gone is unpinned.
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => return Err(Error::Unpin { path, source }),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn share_lists() {
        assert_eq!(
            parse_share("net,ipc,uts").expect("ok"),
            DEFAULT_SHARE.to_vec()
        );
        assert_eq!(
            parse_share("pid,net,net").expect("ok"),
            vec![Namespace::Net, Namespace::Pid]
        );
        assert!(parse_share("net,mnt").is_err());
        assert!(parse_share("").is_err());
    }
}
