//! A container's root filesystem made of an image's layers: overlayfs at
//! `<container dir>/rootfs`, the layers as its lower directories (read
//! only, shared by every container of the image), and an upper and work
//! directory of the container's own next to it, so its writes stay its own
//! and go with it.
//!
//! The overlay is mounted in the caller's (the host's) mount namespace when
//! the container is created, and the container's process then enters it as
//! it enters a `--rootfs` directory (its own mount namespace, /proc, /dev,
//! /sys, pivot_root). It is unmounted (lazily, so a process of the host
//! with its working directory inside cannot keep it) when the container is
//! removed, before its directory is.

use std::path::{Path, PathBuf};

use rustix::mount::{MountFlags, UnmountFlags};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// An image a container's root filesystem is made from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageRoot {
    /// The name it was asked for by (`busybox:latest`), or its ID.
    pub name: String,
    /// Its ID, `sha256:...`.
    pub id: String,
    /// Its layers' directories, top first (overlayfs's `lowerdir` order).
    pub lower_dirs: Vec<PathBuf>,
}

impl ImageRoot {
    /// Checks the lower directories: there is one at least, each an
    /// absolute directory whose path overlayfs's option string can carry.
    pub(crate) fn validate(&self) -> Result<()> {
        let bad = |value: String, reason| Error::InvalidArgument {
            what: "image layer directory",
            value,
            reason,
        };
        if self.lower_dirs.is_empty() {
            return Err(bad(self.name.clone(), "the image has no layers"));
        }
        for d in &self.lower_dirs {
            let text = d
                .to_str()
                .ok_or_else(|| bad(d.display().to_string(), "it is not UTF-8"))?;
            if !d.is_absolute() {
                return Err(bad(text.to_owned(), "it must be absolute"));
            }
            if text.contains([',', ':', '\\', '\0']) {
                return Err(bad(
                    text.to_owned(),
                    "overlayfs paths cannot hold , : or \\",
                ));
            }
            if !d.is_dir() {
                return Err(bad(text.to_owned(), "it is not a directory"));
            }
        }
        Ok(())
    }
}

/// The paths under a container's directory.
fn paths(container_dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    (
        container_dir.join("rootfs"),
        container_dir.join("upper"),
        container_dir.join("work"),
    )
}

/// Mounts the overlay at `container_dir/rootfs`.
pub(crate) fn mount(container_dir: &Path, image: &ImageRoot) -> Result<()> {
    let (root, upper, work) = paths(container_dir);
    let text = |p: &Path| p.to_str().unwrap_or_default().to_owned();
    if [&root, &upper, &work]
        .iter()
        .any(|p| p.to_str().is_none_or(|t| t.contains([',', ':', '\\'])))
    {
        return Err(Error::InvalidArgument {
            what: "state root",
            value: container_dir.display().to_string(),
            reason: "overlayfs paths cannot hold , : or \\",
        });
    }
    for d in [&root, &upper, &work] {
        std::fs::create_dir(d).map_err(|source| Error::MountOverlay {
            path: d.clone(),
            source,
        })?;
    }
    let lower: Vec<String> = image.lower_dirs.iter().map(|d| text(d)).collect();
    let data = format!(
        "lowerdir={},upperdir={},workdir={}",
        lower.join(":"),
        text(&upper),
        text(&work)
    );
    let data = std::ffi::CString::new(data).map_err(|_| Error::InvalidArgument {
        what: "image layer directory",
        value: image.name.clone(),
        reason: "a path holds a NUL byte",
    })?;
    rustix::mount::mount(
        "overlay",
        &root,
        "overlay",
        MountFlags::NOSUID | MountFlags::NODEV,
        Some(data.as_c_str()),
    )
    .map_err(|e| Error::MountOverlay {
        path: root.clone(),
        source: e.into(),
    })?;
    tracing::debug!(root = %root.display(), image = %image.id, "mounted the overlay");
    Ok(())
}

/// Writes the container's `/etc/hostname` and `/etc/hosts` into its
/// overlay (its upper directory), as docker provides them, so that the pod's
/// hostname resolves inside. An image whose `/etc` is not a plain directory
/// (a symlink would lead this write to the host's) gets neither.
pub(crate) fn write_etc(container_dir: &Path, hostname: &str) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let etc = container_dir.join("rootfs/etc");
    match std::fs::symlink_metadata(&etc) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => {
            tracing::debug!(path = %etc.display(), "not a directory: no /etc/hostname");
            return Ok(());
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir(&etc).map_err(|source| Error::PrepareRootfs {
                path: etc.clone(),
                source,
            })?;
        }
        Err(source) => return Err(Error::PrepareRootfs { path: etc, source }),
    }
    let hosts = format!(
        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\t{hostname}\n"
    );
    for (name, body) in [("hostname", format!("{hostname}\n")), ("hosts", hosts)] {
        let path = etc.join(name);
        let _ = std::fs::remove_file(&path);
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o644)
            .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
            .open(&path)
            .and_then(|mut f| f.write_all(body.as_bytes()))
            .map_err(|source| Error::PrepareRootfs { path, source })?;
    }
    Ok(())
}

/// Makes the working directory `dir` (absolute, as seen inside) in the
/// container's overlay if it is missing, as docker does. Each step is
/// resolved with `RESOLVE_IN_ROOT`: the image's symlinks (and `..`) are
/// followed as they would be inside the container, never out to the host.
pub(crate) fn make_dir(container_dir: &Path, dir: &Path) -> Result<()> {
    use rustix::fs::{Mode, OFlags, ResolveFlags};
    let root = container_dir.join("rootfs");
    let at = root.join(dir.strip_prefix("/").unwrap_or(dir));
    let err = |e: rustix::io::Errno| Error::PrepareRootfs {
        path: at.clone(),
        source: e.into(),
    };
    let flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC;
    let root_fd = rustix::fs::open(&root, flags, Mode::empty()).map_err(err)?;
    let open =
        |p: &Path| rustix::fs::openat2(&root_fd, p, flags, Mode::empty(), ResolveFlags::IN_ROOT);
    let mut prefix = PathBuf::from("/");
    let mut parent = open(&prefix).map_err(err)?;
    for c in dir.components() {
        let std::path::Component::Normal(name) = c else {
            if c == std::path::Component::ParentDir {
                prefix.push("..");
                parent = open(&prefix).map_err(err)?;
            }
            continue;
        };
        prefix.push(name);
        parent = match open(&prefix) {
            Ok(fd) => fd,
            Err(rustix::io::Errno::NOENT) => {
                rustix::fs::mkdirat(&parent, name, Mode::from_raw_mode(0o755)).map_err(err)?;
                open(&prefix).map_err(err)?
            }
            Err(e) => return Err(err(e)),
        };
    }
    Ok(())
}

/// Unmounts the overlay under `container_dir`, if it is mounted.
pub(crate) fn unmount(container_dir: &Path) -> Result<()> {
    let (root, _, _) = paths(container_dir);
    match rustix::mount::unmount(&root, UnmountFlags::DETACH | UnmountFlags::NOFOLLOW) {
        Ok(()) => Ok(()),
        // Not a mount point (never mounted, or unmounted already), or gone.
        Err(rustix::io::Errno::INVAL | rustix::io::Errno::NOENT) => Ok(()),
        Err(e) => Err(Error::UnmountOverlay {
            path: root,
            source: e.into(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lower_dirs_must_be_absolute_directories_overlayfs_can_name() {
        let image = |dirs: &[&str]| ImageRoot {
            name: "i".into(),
            id: "sha256:00".into(),
            lower_dirs: dirs.iter().map(PathBuf::from).collect(),
        };
        assert!(image(&["/"]).validate().is_ok());
        for bad in [
            &[][..],
            &["rel"],
            &["/a:b"],
            &["/a,b"],
            &["/surely/not/here"],
        ] {
            let err = image(bad).validate().expect_err(&format!("{bad:?}"));
            assert!(err.is_invalid(), "{bad:?}: {err}");
        }
    }

    #[test]
    fn a_working_directory_is_made_inside_the_root_even_through_symlinks() {
        let dir = std::env::temp_dir().join(format!("stasis-test-workdir-{}", std::process::id()));
        let outside = dir.join("outside");
        std::fs::create_dir_all(dir.join("rootfs/srv")).expect("mkdir");
        std::fs::create_dir_all(&outside).expect("mkdir");
        // An absolute symlink, resolved inside the root: /srv/data.
        std::os::unix::fs::symlink("/srv", dir.join("rootfs/link")).expect("link");
        std::os::unix::fs::symlink(&outside, dir.join("rootfs/out")).expect("link");
        make_dir(&dir, Path::new("/link/data/x")).expect("mkdir -p");
        assert!(dir.join("rootfs/srv/data/x").is_dir());
        make_dir(&dir, Path::new("/srv")).expect("there already");
        make_dir(&dir, Path::new("/../../../up")).expect("mkdir");
        assert!(dir.join("rootfs/up").is_dir(), ".. stops at the root");
        // A symlink to a host path names that path inside the root.
        let _ = make_dir(&dir, Path::new("/out/new"));
        assert!(!outside.join("new").exists(), "nothing made on the host");
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }

    #[test]
    fn unmounting_what_is_not_mounted_is_not_an_error() {
        let dir = std::env::temp_dir().join(format!("stasis-test-overlay-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("rootfs")).expect("mkdir");
        unmount(&dir).expect("not mounted");
        unmount(&dir.join("gone")).expect("no directory");
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }
}
