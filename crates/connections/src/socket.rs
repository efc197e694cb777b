//! A TCP socket as a sock_diag dump reports it.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};

/// One TCP socket of a network namespace, as `inet_diag_msg` reports it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Socket {
    /// The local address and port (`idiag_src`, `idiag_sport`).
    pub local: SocketAddr,
    /// The remote address and port (`idiag_dst`, `idiag_dport`); the
    /// unspecified address and port 0 for a listener.
    pub remote: SocketAddr,
    /// The TCP state.
    pub state: TcpState,
    /// The sockfs inode (`idiag_inode`), as `/proc/PID/fd` names it in
    /// `socket:[INODE]`. 0 for a socket no file refers to: a connection
    /// still in a listener's accept queue, a request socket (`SYN_RECV`),
    /// one its process closed but the kernel still finishes (`FIN_WAIT*`,
    /// `LAST_ACK`).
    pub inode: u64,
    /// The owner's UID (`idiag_uid`).
    pub uid: u32,
    /// The interface it is bound to (`idiag_if`), 0 for none.
    pub interface: u32,
    /// The kernel's cookie for the socket (`idiag_cookie`): a destroy request
    /// must carry it, so that a socket that replaced this one on the same
    /// addresses is never hit.
    pub cookie: u64,
    /// For an IPv6 socket, whether it is `IPV6_V6ONLY` (the
    /// `INET_DIAG_SKV6ONLY` attribute); an IPv6 listener on `::` that is not
    /// also accepts IPv4 connections.
    pub v6only: bool,
}

impl Socket {
    /// A listening socket: never destroyed, its port is what the reject
    /// rule fences.
    pub fn is_listening(&self) -> bool {
        self.state == TcpState::Listen
    }

    /// Whether a socket with no file (`inode` 0) belongs to this listener:
    /// the same family, the listener's port, and its address (or any, for
    /// a wildcard listener). Such a socket is a connection in the
    /// listener's accept queue or a handshake in progress, which no
    /// `/proc/PID/fd` shows.
    pub fn is_queued_on(&self, listener: &Socket) -> bool {
        listener.is_listening()
            && !self.is_listening()
            && self.inode == 0
            && self.local.port() == listener.local.port()
            && self.local.is_ipv4() == listener.local.is_ipv4()
            && (listener.local.ip().is_unspecified() || listener.local.ip() == self.local.ip())
    }
}

impl fmt::Display for Socket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} -> {}", self.state, self.local, self.remote)
    }
}

/// A TCP state, with the kernel's numbers (`include/net/tcp_states.h`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TcpState {
    Established,
    SynSent,
    SynRecv,
    FinWait1,
    FinWait2,
    TimeWait,
    Close,
    CloseWait,
    LastAck,
    Listen,
    Closing,
    /// A request socket (a handshake the listener has not completed).
    NewSynRecv,
    /// A number this crate does not know.
    Other(u8),
}

impl TcpState {
    /// The state of kernel number `n`.
    pub fn from_kernel(n: u8) -> Self {
        match n {
            1 => TcpState::Established,
            2 => TcpState::SynSent,
            3 => TcpState::SynRecv,
            4 => TcpState::FinWait1,
            5 => TcpState::FinWait2,
            6 => TcpState::TimeWait,
            7 => TcpState::Close,
            8 => TcpState::CloseWait,
            9 => TcpState::LastAck,
            10 => TcpState::Listen,
            11 => TcpState::Closing,
            12 => TcpState::NewSynRecv,
            n => TcpState::Other(n),
        }
    }

    /// The name `ss` shows.
    pub fn name(self) -> &'static str {
        match self {
            TcpState::Established => "ESTAB",
            TcpState::SynSent => "SYN-SENT",
            TcpState::SynRecv | TcpState::NewSynRecv => "SYN-RECV",
            TcpState::FinWait1 => "FIN-WAIT-1",
            TcpState::FinWait2 => "FIN-WAIT-2",
            TcpState::TimeWait => "TIME-WAIT",
            TcpState::Close => "UNCONN",
            TcpState::CloseWait => "CLOSE-WAIT",
            TcpState::LastAck => "LAST-ACK",
            TcpState::Listen => "LISTEN",
            TcpState::Closing => "CLOSING",
            TcpState::Other(_) => "UNKNOWN",
        }
    }
}

impl fmt::Display for TcpState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The IPv4 address an IPv4-mapped IPv6 address (`::ffff:a.b.c.d`) stands
/// for.
pub(crate) fn mapped_v4(addr: &Ipv6Addr) -> Option<Ipv4Addr> {
    let s = addr.segments();
    (s[..5] == [0; 5] && s[5] == 0xffff).then(|| {
        let o = addr.octets();
        Ipv4Addr::new(o[12], o[13], o[14], o[15])
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sock(local: &str, state: TcpState, inode: u64) -> Socket {
        Socket {
            local: local.parse().expect("address"),
            remote: "0.0.0.0:0".parse().expect("address"),
            state,
            inode,
            uid: 0,
            interface: 0,
            cookie: 1,
            v6only: false,
        }
    }

    #[test]
    fn queued_sockets_match_their_listener_only() {
        let wildcard = sock("0.0.0.0:80", TcpState::Listen, 5);
        let specific = sock("127.0.0.2:81", TcpState::Listen, 6);
        assert!(sock("127.0.0.1:80", TcpState::Established, 0).is_queued_on(&wildcard));
        assert!(sock("127.0.0.2:81", TcpState::SynRecv, 0).is_queued_on(&specific));
        // held by a process: matched by inode, not by port
        assert!(!sock("127.0.0.1:80", TcpState::Established, 9).is_queued_on(&wildcard));
        assert!(!sock("127.0.0.1:81", TcpState::Established, 0).is_queued_on(&specific));
        assert!(!sock("127.0.0.1:82", TcpState::Established, 0).is_queued_on(&wildcard));
        assert!(!sock("[::1]:80", TcpState::Established, 0).is_queued_on(&wildcard));
        // a listener is never queued on another
        assert!(!sock("0.0.0.0:80", TcpState::Listen, 0).is_queued_on(&wildcard));
    }

    #[test]
    fn states_follow_the_kernel_numbers() {
        assert_eq!(TcpState::from_kernel(1), TcpState::Established);
        assert_eq!(TcpState::from_kernel(10), TcpState::Listen);
        assert_eq!(TcpState::from_kernel(12), TcpState::NewSynRecv);
        assert_eq!(TcpState::from_kernel(99), TcpState::Other(99));
        assert_eq!(TcpState::Listen.to_string(), "LISTEN");
    }

    #[test]
    fn mapped_addresses() {
        assert_eq!(
            mapped_v4(&"::ffff:127.0.0.1".parse().expect("v6")),
            Some(Ipv4Addr::LOCALHOST)
        );
        assert_eq!(mapped_v4(&Ipv6Addr::LOCALHOST), None);
    }
}
