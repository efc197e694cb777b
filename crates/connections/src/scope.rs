//! Whose sockets: a whole network namespace, or the sockets some processes
//! hold in a shared one; and resetting them.

use std::collections::BTreeSet;
use std::path::Path;

use crate::diag::{Family, SockDiag, Which};
use crate::{proc, Endpoint, Error, NetNs, Netfilter, Result, Socket, Tag};

/// Which TCP sockets of a network namespace are the target's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Every TCP socket of the namespace: the target owns it (a stasis pod,
    /// a container of another runtime with a network namespace of its own).
    Namespace,
    /// Only the sockets these processes hold (matched by inode through
    /// `/proc/PID/fd`), and the connections still queued on their
    /// listeners: the namespace is shared (the host's, for a `--pid` or
    /// `--cgroup` target; one member of a pod), and every other process's
    /// connections in it must survive.
    Processes(Vec<u32>),
}

/// What [`reset`] did. The counts are of sockets: a connection whose two
/// ends are both in the scope (over loopback) counts twice, and its second
/// end is usually already gone, reset by the first end's destruction.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reset {
    /// Sockets destroyed (each peer got a TCP reset).
    pub destroyed: usize,
    /// Sockets that were gone by the time they were destroyed (closed or
    /// reset between the dump and the destroy: `ENOENT`).
    pub already_gone: usize,
    /// The listening sockets of the scope, left alone: what a reject rule
    /// fences while the target is paused (see [`Endpoint::of_listeners`]).
    pub listeners: Vec<Socket>,
}

/// The TCP sockets (IPv4 and IPv6) of `scope` in `netns`, listeners
/// included, in every state but `TIME_WAIT` and `CLOSE`. `proc_root` is
/// where `/proc` is mounted (for [`Scope::Processes`]).
pub fn list(netns: &NetNs, scope: &Scope, proc_root: &Path) -> Result<Vec<Socket>> {
    let held = held_by(scope, proc_root)?;
    netns.run(|| {
        let mut diag = open(netns)?;
        Ok(select(dump(netns, &mut diag, Which::All)?, held.as_ref()))
    })?
}

/// The listening TCP sockets of `scope` in `netns`: a cheaper dump than
/// [`list`], as the kernel then skips its established hash.
pub fn listeners(netns: &NetNs, scope: &Scope, proc_root: &Path) -> Result<Vec<Socket>> {
    let held = held_by(scope, proc_root)?;
    netns.run(|| {
        let mut diag = open(netns)?;
        Ok(select(
            dump(netns, &mut diag, Which::Listeners)?,
            held.as_ref(),
        ))
    })?
}

/// Destroys every TCP socket of `scope` in `netns` that is not listening
/// (SOCK_DESTROY: the peer gets a reset, the owner's next call fails with
/// `ECONNABORTED`), and returns the counts and the listeners it kept.
///
/// A listening socket is never destroyed: the kernel's abort of a listener
/// closes it for good, and the service could not accept after it resumes.
/// Run it once the target is frozen, so that nothing it holds can open
/// new connections behind the dump. A connection that completes its
/// handshake on a listener after the dump is not reset: fence the
/// listeners first ([`fence_and_reset`] does both).
pub fn reset(netns: &NetNs, scope: &Scope, proc_root: &Path) -> Result<Reset> {
    let held = held_by(scope, proc_root)?;
    netns.run(|| {
        let mut diag = open(netns)?;
        destroy_all(netns, &mut diag, held.as_ref())
    })?
}

/// The pause's whole job, on one thread in `netns`: dump the scope's
/// listeners, make table `stasis-TAG` refuse new connections to them
/// ([`Netfilter::add`]), then [`reset`] every connection, including any
/// that completed a handshake before the table was in place. The returned
/// [`Reset::listeners`] are those fenced (as found by the second dump).
pub fn fence_and_reset(
    netns: &NetNs,
    scope: &Scope,
    proc_root: &Path,
    netfilter: &Netfilter,
    tag: &Tag,
) -> Result<Reset> {
    let held = held_by(scope, proc_root)?;
    netns.run(|| {
        let mut diag = open(netns)?;
        let listeners = select(dump(netns, &mut diag, Which::Listeners)?, held.as_ref());
        netfilter.add_here(netns, tag, &Endpoint::of_listeners(&listeners))?;
        destroy_all(netns, &mut diag, held.as_ref())
    })?
}

fn held_by(scope: &Scope, proc_root: &Path) -> Result<Option<BTreeSet<u64>>> {
    match scope {
        Scope::Namespace => Ok(None),
        Scope::Processes(pids) => proc::socket_inodes(proc_root, pids).map(Some),
    }
}

fn open(netns: &NetNs) -> Result<SockDiag> {
    SockDiag::open().map_err(|source| Error::OpenSockDiag {
        netns: netns.path().to_owned(),
        source,
    })
}

fn dump(netns: &NetNs, diag: &mut SockDiag, which: Which) -> Result<Vec<Socket>> {
    let mut all = Vec::new();
    for family in [Family::V4, Family::V6] {
        all.extend(diag.dump(family, which).map_err(|source| Error::Dump {
            netns: netns.path().to_owned(),
            family: family.name(),
            source,
        })?);
    }
    Ok(all)
}

fn destroy_all(netns: &NetNs, diag: &mut SockDiag, held: Option<&BTreeSet<u64>>) -> Result<Reset> {
    let mut outcome = Reset::default();
    for socket in select(dump(netns, diag, Which::All)?, held) {
        if socket.is_listening() {
            outcome.listeners.push(socket);
            continue;
        }
        let destroyed = diag.destroy(&socket).map_err(|source| Error::Destroy {
            netns: netns.path().to_owned(),
            local: socket.local,
            remote: socket.remote,
            inode: socket.inode,
            source,
        })?;
        tracing::debug!(%socket, inode = socket.inode, destroyed, "reset connection");
        if destroyed {
            outcome.destroyed += 1;
        } else {
            outcome.already_gone += 1;
        }
    }
    Ok(outcome)
}

/// The sockets of the scope: all of them, or those whose inode the
/// processes hold plus the file-less ones queued on those processes'
/// listeners (accepted by the kernel, not yet by the process).
pub(crate) fn select(all: Vec<Socket>, held: Option<&BTreeSet<u64>>) -> Vec<Socket> {
    let Some(held) = held else { return all };
    let listeners: Vec<Socket> = all
        .iter()
        .filter(|s| s.is_listening() && held.contains(&s.inode))
        .cloned()
        .collect();
    all.into_iter()
        .filter(|s| {
            (s.inode != 0 && held.contains(&s.inode)) || listeners.iter().any(|l| s.is_queued_on(l))
        })
        .collect()
}
#[cfg(test)]
mod tests {
    use super::*;
    use crate::TcpState;

    fn sock(local: &str, remote: &str, state: TcpState, inode: u64) -> Socket {
        Socket {
            local: local.parse().expect("address"),
            remote: remote.parse().expect("address"),
            state,
            inode,
            uid: 0,
            interface: 0,
            cookie: inode + 1000,
            v6only: false,
        }
    }

    #[test]
    fn process_scope_keeps_only_held_and_queued_sockets() {
        let ours_listener = sock("0.0.0.0:8080", "0.0.0.0:0", TcpState::Listen, 10);
        let ours_conn = sock(
            "127.0.0.1:8080",
            "127.0.0.1:5000",
            TcpState::Established,
            11,
        );
        let ours_queued = sock("127.0.0.1:8080", "127.0.0.1:5001", TcpState::Established, 0);
        let ours_outgoing = sock(
            "127.0.0.1:5002",
            "127.0.0.1:9090",
            TcpState::Established,
            12,
        );
        let theirs_listener = sock("0.0.0.0:9090", "0.0.0.0:0", TcpState::Listen, 20);
        let theirs_conn = sock(
            "127.0.0.1:9090",
            "127.0.0.1:5002",
            TcpState::Established,
            21,
        );
        let theirs_queued = sock("127.0.0.1:9090", "127.0.0.1:5003", TcpState::SynRecv, 0);
        let theirs_client = sock(
            "127.0.0.1:5000",
            "127.0.0.1:8080",
            TcpState::Established,
            22,
        );
        let all = vec![
            ours_listener.clone(),
            ours_conn.clone(),
            ours_queued.clone(),
            ours_outgoing.clone(),
            theirs_listener,
            theirs_conn,
            theirs_queued,
            theirs_client,
        ];
        let held = BTreeSet::from([10, 11, 12]);
        assert_eq!(
            select(all.clone(), Some(&held)),
            vec![ours_listener, ours_conn, ours_queued, ours_outgoing]
        );
        assert_eq!(select(all.clone(), None), all);
        assert!(select(all, Some(&BTreeSet::new())).is_empty());
    }
}
