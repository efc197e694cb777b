//! Who is on the other end of a connection: `SO_PEERCRED` (uid, gid and
//! PID, as the kernel recorded them when the peer connected), its
//! supplementary groups from `/proc/PID/status` (`Groups:`), and its
//! executable from `/proc/PID/exe` for the audit trail (read once per
//! connection, at its first audited request).
//!
//! The PID is the connecting process's at `connect(2)` time: the groups are
//! read right after `accept`, while it is still connected (a process that
//! has exited closes its end, and its connection is then of no interest).

use std::path::Path;
use std::sync::{Arc, OnceLock};

/// A connection's peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    pub uid: u32,
    pub gid: u32,
    pub pid: u32,
    /// Supplementary groups (empty when `/proc` could not tell).
    pub groups: Vec<u32>,
    /// The executable, once asked for: shared by the clones each request
    /// of the connection gets.
    exe: Arc<OnceLock<Option<String>>>,
}

impl Peer {
    /// The peer of a connected Unix stream.
    pub fn of(stream: &tokio::net::UnixStream, proc_root: &Path) -> std::io::Result<Self> {
        let cred = stream.peer_cred()?;
        let pid = cred.pid().and_then(|p| u32::try_from(p).ok()).unwrap_or(0);
        Ok(Peer {
            uid: cred.uid(),
            gid: cred.gid(),
            pid,
            groups: if pid == 0 {
                Vec::new()
            } else {
                groups_of(proc_root, pid)
            },
            exe: Arc::default(),
        })
    }

    /// A peer with these credentials (one that did not come through a
    /// socket: for tests and checks).
    pub fn new(uid: u32, gid: u32, pid: u32, groups: Vec<u32>) -> Self {
        Peer {
            uid,
            gid,
            pid,
            groups,
            exe: Arc::default(),
        }
    }

    /// The peer's executable (`<proc>/PID/exe`), read at the first call on
    /// this connection.
    pub fn exe(&self, proc_root: &Path) -> Option<String> {
        self.exe
            .get_or_init(|| sandbox::audit::exe_of(proc_root, self.pid))
            .clone()
    }

    /// Whether the peer is root.
    pub fn is_root(&self) -> bool {
        self.uid == 0
    }

    /// Whether the peer is in group `gid` (primary or supplementary).
    pub fn in_group(&self, gid: u32) -> bool {
        self.gid == gid || self.groups.contains(&gid)
    }
}

impl std::fmt::Display for Peer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "uid {} (gid {}, pid {})", self.uid, self.gid, self.pid)
    }
}

/// The supplementary groups on the `Groups:` line of `<proc>/PID/status`.
pub fn groups_of(proc_root: &Path, pid: u32) -> Vec<u32> {
    let status =
        std::fs::read_to_string(proc_root.join(pid.to_string()).join("status")).unwrap_or_default();
    parse_groups(&status)
}

fn parse_groups(status: &str) -> Vec<u32> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("Groups:"))
        .map(|g| {
            g.split_whitespace()
                .filter_map(|n| n.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_come_from_the_status_file() {
        let status = "Name:\tdocker\nUid:\t1000\t1000\t1000\t1000\nGroups:\t4 27 998 \nNgid:\t0\n";
        assert_eq!(parse_groups(status), [4, 27, 998]);
        assert!(parse_groups("Groups:\t\n").is_empty());
        assert!(parse_groups("").is_empty());
        let me = groups_of(Path::new("/proc"), std::process::id());
        let p = Peer::new(1, 7, std::process::id(), me);
        assert!(p.in_group(7));
        let exe = std::env::current_exe().expect("exe").display().to_string();
        assert_eq!(p.exe(Path::new("/proc")), Some(exe.clone()));
        let clone = p.clone();
        assert_eq!(
            clone.exe(Path::new("/no/such/proc")),
            Some(exe),
            "read once, shared"
        );
        let fresh = Peer::new(1, 7, std::process::id(), Vec::new());
        assert_eq!(fresh.exe(Path::new("/no/such/proc")), None);
    }
}
