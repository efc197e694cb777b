//! Doing work inside a network namespace: `setns(2)` with `CLONE_NEWNET` on
//! a thread of its own.
//!
//! A socket belongs to the network namespace of the thread that created it,
//! for good: the NETLINK_SOCK_DIAG socket that dumps and destroys a target's
//! TCP sockets, and the netlink socket `nft` opens, must be created inside
//! the target's namespace. `setns(fd, CLONE_NEWNET)` changes the namespace
//! of the calling thread only and is allowed in a multi-threaded process
//! (unlike the mount or user namespace), so [`NetNs::run`] starts a fresh
//! thread, moves it into the namespace and runs the work there. The thread
//! ends with the work and is never reused: no later work of the process can
//! run in the wrong namespace by accident, and the caller's own threads
//! never change namespace. Child processes spawned from that thread (`nft`)
//! start in the same namespace, as `clone(2)` copies the caller's.
//!
//! The namespace is named by a file: `/proc/PID/ns/net` or a bind mount that
//! pins it (`ip netns add` makes them under `/run/netns`, stasis pods keep
//! theirs in their state directory). A pinned file is the safer name: a PID
//! can be reused once its process is gone.

use std::fs::File;
use std::path::{Path, PathBuf};

use rustix::thread::{move_into_link_name_space, LinkNameSpaceType};

use crate::{Error, Result};

/// A network namespace, named by a file that refers to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetNs {
    path: PathBuf,
}

impl NetNs {
    /// The namespace that `path` (a `/proc/PID/ns/net` link or a bind mount
    /// of one) refers to. Nothing is opened until it is used.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        NetNs { path: path.into() }
    }

    /// The namespace of process `pid`, through `<proc_root>/<pid>/ns/net`.
    pub fn of_process(proc_root: &Path, pid: u32) -> Self {
        NetNs::new(proc_root.join(pid.to_string()).join("ns/net"))
    }

    /// The file that names the namespace.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The namespace's identity: the inode of its nsfs file. Two files
    /// name the same namespace when their inodes are equal (one nsfs
    /// instance serves every namespace), so a caller can group a target's
    /// processes by namespace, or tell whether a process shares a pod's:
    /// `NetNs::of_process(proc, pid).inode()? == pod.inode()?`.
    pub fn inode(&self) -> Result<u64> {
        rustix::fs::stat(&self.path)
            .map(|stat| stat.st_ino)
            .map_err(|errno| Error::ReadNetns {
                netns: self.path.clone(),
                source: errno.into(),
            })
    }

    /// Runs `work` on a new thread inside this namespace and returns its
    /// result. The caller's thread does not change namespace; the thread
    /// ends when `work` returns. The namespace file is opened before the
    /// thread starts, and `setns` checks that it is a network namespace.
    pub fn run<T, F>(&self, work: F) -> Result<T>
    where
        T: Send,
        F: FnOnce() -> T + Send,
    {
        let file = File::open(&self.path).map_err(|source| Error::OpenNetns {
            netns: self.path.clone(),
            source,
        })?;
        std::thread::scope(|scope| {
            let thread = std::thread::Builder::new()
                .name("stasis-netns".into())
                .spawn_scoped(scope, move || {
                    move_into_link_name_space(
                        std::os::fd::AsFd::as_fd(&file),
                        Some(LinkNameSpaceType::Network),
                    )?;
                    drop(file);
                    Ok::<T, rustix::io::Errno>(work())
                })
                .map_err(|source| Error::SpawnThread {
                    netns: self.path.clone(),
                    source,
                })?;
            match thread.join() {
                Ok(Ok(value)) => Ok(value),
                Ok(Err(errno)) => Err(Error::EnterNetns {
                    netns: self.path.clone(),
                    source: std::io::Error::from(errno),
                }),
                Err(_) => Err(Error::ThreadPanicked {
                    netns: self.path.clone(),
                }),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn of_process_names_the_proc_link() {
        let ns = NetNs::of_process(Path::new("/fake/proc"), 42);
        assert_eq!(ns.path(), Path::new("/fake/proc/42/ns/net"));
    }

    #[test]
    fn a_process_and_its_thread_share_a_namespace_inode() {
        let proc_root = Path::new("/proc");
        let own = NetNs::of_process(proc_root, std::process::id());
        let thread = NetNs::new("/proc/thread-self/ns/net");
        assert_eq!(own.inode().expect("stat"), thread.inode().expect("stat"));
        let err = NetNs::new("/nonexistent/stasis-netns")
            .inode()
            .expect_err("missing");
        assert!(
            err.is_not_found() && matches!(err, Error::ReadNetns { .. }),
            "{err:?}"
        );
    }

    #[test]
    fn a_missing_file_is_not_found() {
        let err = NetNs::new("/nonexistent/stasis-netns")
            .run(|| ())
            .expect_err("no such file");
        assert!(err.is_not_found(), "{err:?}");
        assert!(matches!(err, Error::OpenNetns { .. }));
    }

    #[test]
    fn a_file_that_is_no_namespace_is_refused_by_setns() {
        let err = NetNs::new("/proc/self/status")
            .run(|| ())
            .expect_err("not a namespace");
        assert!(matches!(err, Error::EnterNetns { .. }), "{err:?}");
    }
}
