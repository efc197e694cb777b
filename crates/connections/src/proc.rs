//! Which sockets a set of processes hold: the `socket:[INODE]` links in
//! `/proc/PID/fd`.
//!
//! Every open socket is a file in sockfs, and `readlink(/proc/PID/fd/N)`
//! names it `socket:[INODE]`; the same inode is `idiag_inode` in a sock_diag
//! dump, which is how a dumped TCP socket is matched to the processes that
//! hold it. A frozen process's descriptor table can be read as usual.
//!
//! A process that is gone (its `/proc/PID` missing, or a zombie whose
//! `fd` directory can no longer be read) holds no socket and is skipped; a
//! descriptor closed between the directory read and the `readlink` is
//! skipped too. Threads share their process's descriptor table unless they
//! were made with `clone` without `CLONE_FILES`, which this does not follow.

use std::collections::BTreeSet;
use std::io;
use std::path::Path;

use crate::{Error, Result};

/// The inodes of every socket that the processes `pids` hold, read from
/// `<proc_root>/<pid>/fd`.
pub fn socket_inodes(proc_root: &Path, pids: &[u32]) -> Result<BTreeSet<u64>> {
    let mut inodes = BTreeSet::new();
    for &pid in pids {
        let dir = proc_root.join(pid.to_string()).join("fd");
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if gone(&e) => {
                tracing::debug!(pid, path = %dir.display(), "process gone, no sockets to match");
                continue;
            }
            Err(source) => return Err(Error::ReadDescriptors { path: dir, source }),
        };
        for entry in entries {
            let entry = entry.map_err(|source| Error::ReadDescriptors {
                path: dir.clone(),
                source,
            })?;
            let target = match std::fs::read_link(entry.path()) {
                Ok(target) => target,
                Err(e) if gone(&e) => continue,
                Err(source) => {
                    return Err(Error::ReadDescriptors {
                        path: entry.path(),
                        source,
                    })
                }
            };
            if let Some(inode) = target.to_str().and_then(parse_socket_link) {
                inodes.insert(inode);
            }
        }
    }
    Ok(inodes)
}

/// ENOENT for an exited process or a closed descriptor; ESRCH for a process
/// that exited while its directory was read.
fn gone(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::NotFound
        || e.raw_os_error() == Some(rustix::io::Errno::SRCH.raw_os_error())
}

/// The inode of a `socket:[INODE]` link target.
fn parse_socket_link(target: &str) -> Option<u64> {
    target
        .strip_prefix("socket:[")?
        .strip_suffix(']')?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn parses_socket_links_only() {
        assert_eq!(parse_socket_link("socket:[123456]"), Some(123456));
        assert_eq!(parse_socket_link("socket:[]"), None);
        assert_eq!(parse_socket_link("socket:[12x]"), None);
        assert_eq!(parse_socket_link("pipe:[123]"), None);
        assert_eq!(parse_socket_link("/dev/null"), None);
        assert_eq!(parse_socket_link("anon_inode:[eventpoll]"), None);
    }

    #[test]
    fn collects_sockets_of_the_given_processes_and_skips_the_gone() {
        let root = std::env::temp_dir().join(format!("stasis-conn-proc-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        for (pid, links) in [
            (10, &["socket:[100]", "pipe:[7]", "socket:[101]"][..]),
            (11, &["socket:[200]", "/dev/null"][..]),
            (12, &["socket:[300]"][..]),
        ] {
            let fd = root.join(pid.to_string()).join("fd");
            std::fs::create_dir_all(&fd).expect("create fake fd dir");
            for (n, link) in links.iter().enumerate() {
                symlink(link, fd.join(n.to_string())).expect("create fake fd link");
            }
        }
        let got = socket_inodes(&root, &[10, 11, 99]);
        std::fs::remove_dir_all(&root).expect("remove fake proc");
        assert_eq!(
            got.expect("read fake proc"),
            BTreeSet::from([100, 101, 200])
        );
    }

    #[test]
    fn reads_this_process_own_sockets() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        let inode = rustix::fs::fstat(&listener).expect("fstat socket").st_ino;
        let got = socket_inodes(Path::new("/proc"), &[std::process::id()]).expect("read /proc");
        assert!(got.contains(&inode), "{inode} not in {got:?}");
    }
}
