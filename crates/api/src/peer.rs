//! Who is on the other end of a connection: `SO_PEERCRED` (uid, gid and
//! PID) and `SO_PEERGROUPS` (the supplementary groups), both as the kernel
//! recorded them when the peer called `connect(2)`, and its executable from
//! `/proc/PID/exe` for the audit trail (read once per connection, at its
//! first audited request).
//!
//! The groups come with the socket, not from `/proc/PID/status`, so that a
//! peer that has exited (and a process that took its PID since) cannot be
//! mistaken for it. A kernel before 4.13 lacks `SO_PEERGROUPS`
//! (`ENOPROTOOPT`); there they are read from the `Groups:` line of
//! `/proc/PID/status` right after `accept`, while the peer is connected.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::path::Path;
use std::sync::OnceLock;

/// A connection's peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    pub uid: u32,
    pub gid: u32,
    pub pid: u32,
    /// Supplementary groups (empty when `/proc` could not tell).
    pub groups: Vec<u32>,
    /// The executable, once asked for (the connection's requests share
    /// one `Peer`).
    exe: OnceLock<Option<String>>,
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
            groups: match peer_groups(stream.as_fd()) {
                Ok(groups) => groups,
                Err(e) if e.raw_os_error() == Some(libc::ENOPROTOOPT) && pid != 0 => {
                    groups_of(proc_root, pid)
                }
                Err(e) => return Err(e),
            },
            exe: OnceLock::new(),
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
            exe: OnceLock::new(),
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

/// `SO_PEERGROUPS` of a connected Unix socket: the peer's supplementary
/// groups at `connect(2)`, in this process's user namespace.
fn peer_groups(socket: BorrowedFd<'_>) -> std::io::Result<Vec<u32>> {
    const GID: usize = std::mem::size_of::<libc::gid_t>();
    // NGROUPS_MAX is 65536; most callers have a handful.
    let mut groups: Vec<libc::gid_t> = vec![0; 32];
    loop {
        let mut len = libc::socklen_t::try_from(groups.len() * GID)
            .map_err(|_| std::io::Error::from_raw_os_error(libc::ERANGE))?;
        // SAFETY: `groups` is a live, writable, aligned buffer of `len`
        // bytes for the whole call, and `len` a live socklen_t: the kernel
        // writes at most `len` bytes of gids into the one and the length
        // written (or, with ERANGE, the length it needs) into the other.
        let r = unsafe {
            libc::getsockopt(
                socket.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_PEERGROUPS,
                groups.as_mut_ptr().cast(),
                &mut len,
            )
        };
        let needed = len as usize / GID;
        if r == 0 {
            groups.truncate(needed);
            return Ok(groups);
        }
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::ERANGE) || needed <= groups.len() {
            return Err(e);
        }
        groups.resize(needed, 0);
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
    fn groups_come_with_the_socket() {
        let (a, _b) = std::os::unix::net::UnixStream::pair().expect("socketpair");
        let status = std::fs::read_to_string("/proc/self/status").expect("status");
        let mut mine = parse_groups(&status);
        let mut got = peer_groups(a.as_fd()).expect("SO_PEERGROUPS");
        mine.sort_unstable();
        got.sort_unstable();
        assert_eq!(got, mine);
        let file = std::fs::File::open("/proc/self/status").expect("open");
        let err = peer_groups(file.as_fd()).expect_err("not a socket");
        assert_eq!(err.raw_os_error(), Some(libc::ENOTSOCK), "{err}");
    }

    /// More groups than the first buffer holds: the kernel's ERANGE, and
    /// the retry with the length it asked for. Root: setgroups.
    #[test]
    fn many_groups_come_whole() {
        if !rustix::process::geteuid().is_root() {
            assert!(
                std::env::var_os("STASIS_REQUIRE_ROOT_TESTS").is_none(),
                "many_groups_come_whole needs root"
            );
            eprintln!("skipping many_groups_come_whole: not root");
            return;
        }
        let dir = std::env::temp_dir().join(format!("stasis-test-peer-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("s.sock");
        let listener = std::os::unix::net::UnixListener::bind(&path).expect("bind");
        let wanted: Vec<u32> = (1000..1040).collect();
        let list: Vec<String> = wanted.iter().map(u32::to_string).collect();
        let mut curl = std::process::Command::new("setpriv")
            .arg(format!("--groups={}", list.join(",")))
            .args(["curl", "-s", "-m", "10", "--unix-socket"])
            .arg(&path)
            .arg("http://peer/")
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("setpriv curl");
        listener.set_nonblocking(true).expect("nonblocking");
        let until = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let stream = loop {
            match listener.accept() {
                Ok((stream, _)) => break stream,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    assert!(std::time::Instant::now() < until, "curl never connected");
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
                Err(e) => panic!("accept: {e}"),
            }
        };
        let mut got = peer_groups(stream.as_fd()).expect("SO_PEERGROUPS");
        drop(stream);
        let _ = curl.wait();
        let _ = std::fs::remove_dir_all(&dir);
        got.sort_unstable();
        assert_eq!(got, wanted);
    }

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
