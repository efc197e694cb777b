//! A private cgroup mount for when no cgroup filesystem is visible (inside
//! a container's mount namespace).
//!
//! The calling thread moves to a new mount namespace whose mounts are all
//! made private, so nothing propagates back to the host or the container;
//! the cgroup filesystem is mounted `nosuid,noexec,nodev` on a temporary
//! directory there. Dropping the guard unmounts it and removes the
//! directory; if the process dies first, the namespace dies with it, and
//! only the empty directory can remain.
//!
//! `unshare(CLONE_NEWNS)` changes the calling thread only: call this from a
//! single-threaded process (the CLI) or a thread dedicated to the job.
//! Needs `CAP_SYS_ADMIN`.

use std::path::{Path, PathBuf};

use rustix::mount::{MountFlags, MountPropagationFlags, UnmountFlags};
use rustix::thread::UnshareFlags;

use crate::cgroup::{Choice, Hierarchy, Version};
use crate::error::{Error, Result};
use crate::hierarchies::Hierarchies;
use crate::mountinfo;
use crate::proc;

/// A cgroup filesystem mounted for this process alone; unmounted on drop.
#[derive(Debug)]
pub struct PrivateMount {
    dir: PathBuf,
}

impl PrivateMount {
    /// Mounts `version`'s hierarchy in a private mount namespace, on a new
    /// directory under `parent`.
    pub fn new(version: Version, parent: &Path) -> Result<Self> {
        let mount_err = |path: &Path, source: rustix::io::Errno| Error::Mount {
            fstype: version.fstype(),
            path: path.to_owned(),
            source: source.into(),
        };
        // SAFETY: CLONE_NEWNS gives this thread its own mount namespace and
        // fs_struct; it does not unshare the file table (CLONE_FILES), so no
        // other thread can be left holding descriptors it cannot use.
        unsafe { rustix::thread::unshare_unsafe(UnshareFlags::NEWNS) }
            .map_err(|e| mount_err(Path::new("/"), e))?;
        rustix::mount::mount_change(
            "/",
            MountPropagationFlags::PRIVATE | MountPropagationFlags::REC,
        )
        .map_err(|e| mount_err(Path::new("/"), e))?;
        let dir = parent.join(format!("stasis-cgroup-{}", std::process::id()));
        match std::fs::create_dir(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(source) => {
                return Err(Error::Mount {
                    fstype: version.fstype(),
                    path: dir,
                    source,
                })
            }
        }
        let guard = PrivateMount { dir };
        let data: Option<&std::ffi::CStr> = match version {
            Version::V1 => Some(c"freezer"),
            Version::V2 => None,
        };
        rustix::mount::mount(
            version.fstype(),
            &guard.dir,
            version.fstype(),
            MountFlags::NOSUID | MountFlags::NOEXEC | MountFlags::NODEV,
            data,
        )
        .map_err(|e| mount_err(&guard.dir, e))?;
        tracing::debug!(path = %guard.dir.display(), fstype = version.fstype(), "mounted a private cgroup filesystem");
        Ok(guard)
    }

    /// Where it is mounted.
    pub fn path(&self) -> &Path {
        &self.dir
    }
}

impl Drop for PrivateMount {
    fn drop(&mut self) {
        // Fails harmlessly if the mount never happened.
        let _ = rustix::mount::unmount(&self.dir, UnmountFlags::DETACH);
        if let Err(e) = std::fs::remove_dir(&self.dir) {
            tracing::warn!(path = %self.dir.display(), error = %e, "could not remove the private mount point");
        }
    }
}

/// The hierarchies to use: the mounted ones, or, when the one `choice` needs
/// is not mounted at all, a private mount of it (kept alive by the returned
/// guard). `/proc/self/cgroup` tells which hierarchies exist even when none
/// is mounted.
pub fn open(
    proc_root: &Path,
    choice: Choice,
    mount_parent: &Path,
) -> Result<(Hierarchies, Option<PrivateMount>)> {
    let hierarchies = Hierarchies::detect(proc_root)?;
    let wanted = match choice {
        Choice::V1 => Version::V1,
        Choice::V2 => Version::V2,
        Choice::Auto if hierarchies.pick(Choice::Auto).is_ok() => return Ok((hierarchies, None)),
        Choice::Auto if proc::own_cgroup(proc_root, Version::V1)?.is_some() => Version::V1,
        Choice::Auto => Version::V2,
    };
    if hierarchies.get(wanted).is_some() {
        return Ok((hierarchies, None));
    }
    if proc::own_cgroup(proc_root, wanted)?.is_none() {
        return Err(Error::NoHierarchy {
            wanted: match wanted {
                Version::V1 => "v1 freezer",
                Version::V2 => "v2",
            },
        });
    }
    let mount = PrivateMount::new(wanted, mount_parent)?;
    let path = proc_root.join("self/mountinfo");
    let text = crate::kernfs::read_text(&path).map_err(|source| Error::Read { path, source })?;
    let root = mountinfo::parse(&text)
        .into_iter()
        .find(|m| m.mount_point == mount.path())
        .map_or_else(|| "/".to_owned(), |m| m.root);
    let hierarchy = Hierarchy {
        version: wanted,
        mount_point: mount.path().to_owned(),
        root,
    };
    Ok((Hierarchies::single(proc_root, hierarchy), Some(mount)))
}
