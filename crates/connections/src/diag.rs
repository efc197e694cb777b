//! NETLINK_SOCK_DIAG: dump a network namespace's TCP sockets and destroy
//! them one by one.
//!
//! - Dump: `SOCK_DIAG_BY_FAMILY` (20) with `NLM_F_DUMP` and an
//!   `inet_diag_req_v2` naming the family (`AF_INET`, `AF_INET6`),
//!   `IPPROTO_TCP` and a state mask; the kernel answers with one
//!   `inet_diag_msg` (plus attributes) per socket, then `NLMSG_DONE`. A
//!   netlink socket only ever sees the namespace it was created in.
//! - Destroy: `SOCK_DESTROY` (21) with `NLM_F_ACK` and an
//!   `inet_diag_req_v2` carrying the socket's exact `inet_diag_sockid`
//!   (addresses, ports, interface, cookie). The kernel (`tcp_diag_destroy`
//!   → `tcp_abort`, built with `CONFIG_INET_DIAG_DESTROY`) sends the peer a
//!   reset and fails the owner's next call with `ECONNABORTED`; it answers
//!   with an `NLMSG_ERROR` ack: 0, `-ENOENT` when the socket is already gone
//!   (or the cookie names an older one), `-EOPNOTSUPP` without the config,
//!   `-EPERM` without `CAP_NET_ADMIN` over the namespace.
//!
//! The messages are the `netlink-packet-sock-diag` crate's, which has both
//! request types; this module adds the framing of a dump and the mapping to
//! [`Socket`].

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::OwnedFd;
use std::time::Duration;

use netlink_packet_core::{
    NetlinkBuffer, NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_DUMP,
    NLM_F_REQUEST,
};
use netlink_packet_sock_diag::inet::{
    nlas::Nla, ExtensionFlags, InetRequest, InetResponse, SocketId, StateFlags,
};
use netlink_packet_sock_diag::{SockDiagDestroy, SockDiagMessage, AF_INET, AF_INET6, IPPROTO_TCP};
use rustix::net::netlink::{SocketAddrNetlink, SOCK_DIAG};
use rustix::net::{AddressFamily, RecvFlags, SendFlags, SocketFlags, SocketType};

use crate::socket::{Socket, TcpState};

/// The states a dump asks for: every state a connection can be in, and
/// `LISTEN`. Not `TIME_WAIT` and `CLOSE`: such a socket has no connection
/// left to reset (and `TIME_WAIT` ones are not full sockets).
/// `SYN_RECV` also brings the request sockets (`TCP_NEW_SYN_RECV`).
const DUMP_STATES: u32 = (1 << TcpStateNumber::Established as u32)
    | (1 << TcpStateNumber::SynSent as u32)
    | (1 << TcpStateNumber::SynRecv as u32)
    | (1 << TcpStateNumber::FinWait1 as u32)
    | (1 << TcpStateNumber::FinWait2 as u32)
    | (1 << TcpStateNumber::CloseWait as u32)
    | (1 << TcpStateNumber::LastAck as u32)
    | (1 << TcpStateNumber::Listen as u32)
    | (1 << TcpStateNumber::Closing as u32)
    | (1 << TcpStateNumber::NewSynRecv as u32);

/// Listeners only: the kernel then walks its listening hash alone and
/// skips the established hash, whose every bucket (the host's
/// `tcp_ehash_entries`, shared by namespaces unless
/// `tcp_child_ehash_entries` is set) a full dump visits, however few
/// sockets the namespace has: about 3 ms per family on a 262,144-bucket
/// table here.
const LISTEN_STATES: u32 = 1 << TcpStateNumber::Listen as u32;

/// What a dump asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Which {
    /// Connections in every state of [`DUMP_STATES`], and listeners.
    All,
    /// Listeners alone (cheap).
    Listeners,
}

impl Which {
    fn states(self) -> u32 {
        match self {
            Which::All => DUMP_STATES,
            Which::Listeners => LISTEN_STATES,
        }
    }
}

#[repr(u32)]
enum TcpStateNumber {
    Established = 1,
    SynSent = 2,
    SynRecv = 3,
    FinWait1 = 4,
    FinWait2 = 5,
    CloseWait = 8,
    LastAck = 9,
    Listen = 10,
    Closing = 11,
    NewSynRecv = 12,
}

/// How long a reply may take before the kernel is deemed not to answer.
/// The kernel answers sock_diag synchronously; this only bounds the wait.
const REPLY_TIMEOUT: Duration = Duration::from_secs(5);

/// A datagram of a dump holds up to about 32 KiB of messages.
const RECV_BUFFER: usize = 64 * 1024;

/// The family of a dump.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Family {
    V4,
    V6,
}

impl Family {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Family::V4 => "IPv4",
            Family::V6 => "IPv6",
        }
    }

    fn af(self) -> u8 {
        match self {
            Family::V4 => AF_INET,
            Family::V6 => AF_INET6,
        }
    }
}

/// A NETLINK_SOCK_DIAG socket of the namespace its thread was in when it
/// was opened.
#[derive(Debug)]
pub(crate) struct SockDiag {
    fd: OwnedFd,
    sequence: u32,
    buffer: Vec<u8>,
}

impl SockDiag {
    pub(crate) fn open() -> io::Result<Self> {
        let fd = rustix::net::socket_with(
            AddressFamily::NETLINK,
            SocketType::RAW,
            SocketFlags::CLOEXEC,
            Some(SOCK_DIAG),
        )?;
        rustix::net::sockopt::set_socket_timeout(
            &fd,
            rustix::net::sockopt::Timeout::Recv,
            Some(REPLY_TIMEOUT),
        )?;
        Ok(SockDiag {
            fd,
            sequence: 0,
            buffer: vec![0; RECV_BUFFER],
        })
    }

    fn send(&mut self, message: &[u8]) -> io::Result<()> {
        let kernel = SocketAddrNetlink::new(0, 0);
        let sent = retry_on_interrupt(|| {
            rustix::net::sendto(&self.fd, message, SendFlags::empty(), &kernel)
        })?;
        if sent != message.len() {
            return Err(io::Error::new(
                io::ErrorKind::WriteZero,
                format!("sent {sent} of {} bytes", message.len()),
            ));
        }
        Ok(())
    }

    fn receive(&mut self) -> io::Result<usize> {
        let (fd, buffer) = (&self.fd, &mut self.buffer);
        let (_, len) =
            retry_on_interrupt(|| rustix::net::recv(fd, &mut buffer[..], RecvFlags::empty()))?;
        if len > self.buffer.len() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("a {len}-byte datagram does not fit the receive buffer"),
            ));
        }
        Ok(len)
    }

    /// The TCP sockets of `family` in the namespace that `which` asks for.
    pub(crate) fn dump(&mut self, family: Family, which: Which) -> io::Result<Vec<Socket>> {
        self.sequence = self.sequence.wrapping_add(1);
        let sequence = self.sequence;
        self.send(&dump_request(family, which, sequence))?;
        let mut sockets = Vec::new();
        loop {
            let len = self.receive()?;
            if parse_dump(&self.buffer[..len], sequence, &mut sockets)? {
                return Ok(sockets);
            }
        }
    }

    /// Destroys `socket`; `Ok(false)` when it was already gone.
    pub(crate) fn destroy(&mut self, socket: &Socket) -> io::Result<bool> {
        self.sequence = self.sequence.wrapping_add(1);
        let sequence = self.sequence;
        self.send(&destroy_request(socket, sequence))?;
        loop {
            let len = self.receive()?;
            if let Some(code) = parse_ack(&self.buffer[..len], sequence)? {
                return match code {
                    0 => Ok(true),
                    c if c == -rustix::io::Errno::NOENT.raw_os_error() => Ok(false),
                    c => Err(io::Error::from_raw_os_error(-c)),
                };
            }
        }
    }
}

/// A signal handled by this thread interrupts a socket call that has a
/// timeout even under `SA_RESTART` (signal(7)); the call is simply redone.
fn retry_on_interrupt<T>(mut call: impl FnMut() -> rustix::io::Result<T>) -> io::Result<T> {
    loop {
        match call() {
            Err(rustix::io::Errno::INTR) => continue,
            other => return other.map_err(io::Error::from),
        }
    }
}

fn request_header(flags: u16, sequence: u32) -> NetlinkHeader {
    let mut header = NetlinkHeader::default();
    header.flags = flags;
    header.sequence_number = sequence;
    header
}

fn serialize<I: netlink_packet_core::NetlinkSerializable>(
    mut message: NetlinkMessage<I>,
) -> Vec<u8> {
    message.finalize();
    let mut bytes = vec![0; message.buffer_len()];
    message.serialize(&mut bytes);
    bytes
}

/// `SOCK_DIAG_BY_FAMILY` dump of the TCP sockets of `family`.
pub(crate) fn dump_request(family: Family, which: Which, sequence: u32) -> Vec<u8> {
    let request = InetRequest {
        family: family.af(),
        protocol: IPPROTO_TCP,
        extensions: ExtensionFlags::empty(),
        states: StateFlags::from_bits_retain(which.states()),
        socket_id: match family {
            Family::V4 => SocketId::new_v4(),
            Family::V6 => SocketId::new_v6(),
        },
    };
    serialize(NetlinkMessage::new(
        request_header(NLM_F_REQUEST | NLM_F_DUMP, sequence),
        NetlinkPayload::InnerMessage(SockDiagMessage::InetRequest(request)),
    ))
}

/// `SOCK_DESTROY` of exactly `socket`, acknowledged.
pub(crate) fn destroy_request(socket: &Socket, sequence: u32) -> Vec<u8> {
    let v4 = socket.local.is_ipv4();
    let cookie_low = (socket.cookie as u32).to_ne_bytes();
    let cookie_high = ((socket.cookie >> 32) as u32).to_ne_bytes();
    let mut cookie = [0; 8];
    cookie[..4].copy_from_slice(&cookie_low);
    cookie[4..].copy_from_slice(&cookie_high);
    let request = InetRequest {
        family: if v4 { AF_INET } else { AF_INET6 },
        protocol: IPPROTO_TCP,
        extensions: ExtensionFlags::empty(),
        states: StateFlags::from_bits_retain(DUMP_STATES),
        socket_id: SocketId {
            source_port: socket.local.port(),
            destination_port: socket.remote.port(),
            source_address: socket.local.ip(),
            destination_address: socket.remote.ip(),
            interface_id: socket.interface,
            cookie,
        },
    };
    serialize(NetlinkMessage::new(
        request_header(NLM_F_REQUEST | NLM_F_ACK, sequence),
        NetlinkPayload::InnerMessage(SockDiagDestroy::new(SockDiagMessage::InetRequest(request))),
    ))
}

fn invalid(what: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_string())
}

/// The messages of one datagram, each with its own length.
fn messages(
    datagram: &[u8],
) -> impl Iterator<Item = io::Result<NetlinkMessage<SockDiagMessage>>> + '_ {
    let mut offset = 0;
    std::iter::from_fn(move || {
        if offset >= datagram.len() {
            return None;
        }
        let rest = &datagram[offset..];
        let len = match NetlinkBuffer::new_checked(rest) {
            Ok(buffer) => buffer.length() as usize,
            Err(e) => {
                offset = datagram.len();
                return Some(Err(invalid(format!("a netlink message header: {e}"))));
            }
        };
        offset += (len + 3) & !3;
        Some(
            NetlinkMessage::<SockDiagMessage>::deserialize(&rest[..len])
                .map_err(|e| invalid(format!("a sock_diag message: {e}"))),
        )
    })
}

/// Adds the sockets of one datagram of a dump to `sockets`; `true` once the
/// dump is done.
pub(crate) fn parse_dump(
    datagram: &[u8],
    sequence: u32,
    sockets: &mut Vec<Socket>,
) -> io::Result<bool> {
    for message in messages(datagram) {
        let message = message?;
        if message.header.sequence_number != sequence {
            continue;
        }
        match message.payload {
            NetlinkPayload::InnerMessage(SockDiagMessage::InetResponse(response)) => {
                sockets.push(socket_of(&response)?);
            }
            NetlinkPayload::Done(_) => return Ok(true),
            NetlinkPayload::Error(error) => {
                return Err(match error.code {
                    Some(code) => io::Error::from_raw_os_error(-code.get()),
                    None => invalid("an ack in the middle of a dump"),
                })
            }
            NetlinkPayload::Noop => {}
            other => return Err(invalid(format!("unexpected message in a dump: {other:?}"))),
        }
    }
    Ok(false)
}

/// The code of the ack for `sequence` in one datagram (0 or `-errno`), if
/// it is there.
pub(crate) fn parse_ack(datagram: &[u8], sequence: u32) -> io::Result<Option<i32>> {
    for message in messages(datagram) {
        let message = message?;
        if message.header.sequence_number != sequence {
            continue;
        }
        if let NetlinkPayload::Error(error) = message.payload {
            return Ok(Some(error.raw_code()));
        }
    }
    Ok(None)
}

fn socket_of(response: &InetResponse) -> io::Result<Socket> {
    let header = &response.header;
    let id = &header.socket_id;
    let v4 = match header.family {
        AF_INET => true,
        AF_INET6 => false,
        af => return Err(invalid(format!("address family {af} in a TCP dump"))),
    };
    let check = |addr: IpAddr| {
        if addr.is_ipv4() == v4 {
            Ok(addr)
        } else {
            Err(invalid("an address of the other family"))
        }
    };
    let low = u32::from_ne_bytes([id.cookie[0], id.cookie[1], id.cookie[2], id.cookie[3]]);
    let high = u32::from_ne_bytes([id.cookie[4], id.cookie[5], id.cookie[6], id.cookie[7]]);
    Ok(Socket {
        local: SocketAddr::new(check(id.source_address)?, id.source_port),
        remote: SocketAddr::new(check(id.destination_address)?, id.destination_port),
        state: TcpState::from_kernel(header.state),
        inode: u64::from(header.inode),
        uid: header.uid,
        interface: id.interface_id,
        cookie: u64::from(low) | (u64::from(high) << 32),
        v6only: response
            .nlas
            .iter()
            .any(|nla| matches!(nla, Nla::SkV6Only(true))),
    })
}

#[cfg(test)]
mod tests;
