//! The messages against bytes the kernel (6.18) sent and accepted: a netns
//! with a listener on 127.0.0.1:8080, one connection to it, and an
//! `IPV6_V6ONLY` listener on [::1]:8443, dumped with sequence number 7 and
//! port id 0x4efa.

use super::*;

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

/// The IPv4 dump: three `inet_diag_msg` (the listener, the client, the
/// accepted end), each with attributes, then `NLMSG_DONE`.
const DUMP_V4: &str = concat!(
    "7c0000001400020007000000fa4e0000020a00001f9000007f00000100000000000000000000000000000000",
    "000000000000000000000000000000000100000000000000000000000000000080000000000000007f740000",
    "050008000000000008000f00000000000c001500010000000000000006001600520000007c00000014000200",
    "07000000fa4e000002010000ada61f907f0000010000000000000000000000007f0000010000000000000000",
    "0000000000000000020000000000000000000000000000000000000000000000807400000500080000000000",
    "08000f00000000000c001500010000000000000006001600520000007c0000001400020007000000fa4e0000",
    "020100001f90ada67f0000010000000000000000000000007f00000100000000000000000000000000000000",
    "03000000000000000000000000000000000000000000000081740000050008000000000008000f0000000000",
    "0c00150001000000000000000600160052000000140000000300020007000000fa4e000000000000",
);

/// The IPv6 dump: the v6-only listener on [::1]:8443 (with
/// `INET_DIAG_SKV6ONLY` = 1), then `NLMSG_DONE`.
const DUMP_V6: &str = concat!(
    "840000001400020007000000fa4e00000a0a000020fb00000000000000000000000000000000000100000000",
    "0000000000000000000000000000000004000000000000000000000000000000800000000000000082740000",
    "050008000000000005000b000100000008000f00000000000c00150001000000000000000600160012000000",
    "140000000300020007000000fa4e000000000000",
);

#[test]
fn dump_request_is_nlmsghdr_and_inet_diag_req_v2() {
    let bytes = dump_request(Family::V4, Which::All, 7);
    let mut expected = Vec::new();
    expected.extend(72u32.to_ne_bytes()); // nlmsg_len: 16 + 56
    expected.extend(20u16.to_ne_bytes()); // SOCK_DIAG_BY_FAMILY
    expected.extend(0x0301u16.to_ne_bytes()); // NLM_F_REQUEST | NLM_F_DUMP
    expected.extend(7u32.to_ne_bytes()); // nlmsg_seq
    expected.extend(0u32.to_ne_bytes()); // nlmsg_pid: the kernel fills it
    expected.extend([2, 6, 0, 0]); // AF_INET, IPPROTO_TCP, no extensions, pad
    expected.extend(0x1f3eu32.to_ne_bytes()); // states 1-5, 8-12
    expected.extend([0; 48]); // inet_diag_sockid: all wildcards
    assert_eq!(bytes, expected);

    let v6 = dump_request(Family::V6, Which::Listeners, 8);
    assert_eq!(v6.len(), 72);
    assert_eq!(v6[16], 10, "AF_INET6");
    assert_eq!(&v6[8..12], &8u32.to_ne_bytes());
    assert_eq!(
        &v6[20..24],
        &(1u32 << 10).to_ne_bytes(),
        "TCPF_LISTEN alone"
    );
}

#[test]
fn parses_a_real_ipv4_dump() {
    let mut sockets = Vec::new();
    assert!(parse_dump(&unhex(DUMP_V4), 7, &mut sockets).expect("parse"));
    let got: Vec<(String, String, TcpState, u64, u64)> = sockets
        .iter()
        .map(|s| {
            (
                s.local.to_string(),
                s.remote.to_string(),
                s.state,
                s.inode,
                s.cookie,
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (
                "127.0.0.1:8080".into(),
                "0.0.0.0:0".into(),
                TcpState::Listen,
                29823,
                1
            ),
            (
                "127.0.0.1:44454".into(),
                "127.0.0.1:8080".into(),
                TcpState::Established,
                29824,
                2
            ),
            (
                "127.0.0.1:8080".into(),
                "127.0.0.1:44454".into(),
                TcpState::Established,
                29825,
                3
            ),
        ]
    );
    assert!(sockets
        .iter()
        .all(|s| s.uid == 0 && s.interface == 0 && !s.v6only));
}

#[test]
fn parses_a_real_ipv6_dump_with_v6only() {
    let mut sockets = Vec::new();
    assert!(parse_dump(&unhex(DUMP_V6), 7, &mut sockets).expect("parse"));
    assert_eq!(sockets.len(), 1);
    let s = &sockets[0];
    assert_eq!(s.local, "[::1]:8443".parse().expect("address"));
    assert_eq!(s.remote, "[::]:0".parse().expect("address"));
    assert_eq!(
        (s.state, s.inode, s.cookie, s.v6only),
        (TcpState::Listen, 29826, 4, true)
    );
}

#[test]
fn a_dump_split_over_datagrams_is_not_done_until_nlmsg_done() {
    let bytes = unhex(DUMP_V4);
    let (first, rest) = bytes.split_at(0x7c); // the first message alone
    let mut sockets = Vec::new();
    assert!(!parse_dump(first, 7, &mut sockets).expect("parse"));
    assert!(parse_dump(rest, 7, &mut sockets).expect("parse"));
    assert_eq!(sockets.len(), 3);
}

#[test]
fn replies_to_another_request_are_ignored() {
    let mut sockets = Vec::new();
    assert!(!parse_dump(&unhex(DUMP_V4), 8, &mut sockets).expect("parse"));
    assert!(sockets.is_empty());
}

#[test]
fn a_truncated_message_is_an_error() {
    let bytes = unhex(DUMP_V4);
    let mut sockets = Vec::new();
    let err = parse_dump(&bytes[..40], 7, &mut sockets).expect_err("truncated");
    assert_eq!(err.kind(), io::ErrorKind::InvalidData);
}

/// The destroy request carries the dumped `inet_diag_sockid` byte for byte
/// (ports in network order, addresses, interface, cookie).
#[test]
fn destroy_request_carries_the_dumped_socket_id_exactly() {
    let dump = unhex(DUMP_V4);
    let mut sockets = Vec::new();
    parse_dump(&dump, 7, &mut sockets).expect("parse");
    for (i, socket) in sockets.iter().enumerate() {
        let bytes = destroy_request(socket, 40 + i as u32);
        assert_eq!(bytes.len(), 72);
        assert_eq!(&bytes[0..4], &72u32.to_ne_bytes());
        assert_eq!(&bytes[4..6], &21u16.to_ne_bytes(), "SOCK_DESTROY");
        assert_eq!(
            &bytes[6..8],
            &5u16.to_ne_bytes(),
            "NLM_F_REQUEST | NLM_F_ACK"
        );
        assert_eq!(&bytes[8..12], &(40 + i as u32).to_ne_bytes());
        assert_eq!(&bytes[16..18], &[2, 6], "AF_INET, IPPROTO_TCP");
        // inet_diag_msg: family, state, timer, retrans, then the sockid.
        let message = &dump[i * 0x7c + 16..];
        assert_eq!(&bytes[24..72], &message[4..52], "socket {i}");
    }

    let mut v6 = Vec::new();
    parse_dump(&unhex(DUMP_V6), 7, &mut v6).expect("parse");
    let bytes = destroy_request(&v6[0], 1);
    assert_eq!(bytes[16], 10, "AF_INET6");
    assert_eq!(&bytes[24..72], &unhex(DUMP_V6)[20..68]);
}

fn ack(sequence: u32, code: i32) -> Vec<u8> {
    let mut bytes = Vec::new();
    bytes.extend(36u32.to_ne_bytes());
    bytes.extend(2u16.to_ne_bytes()); // NLMSG_ERROR
    bytes.extend(0x100u16.to_ne_bytes()); // NLM_F_CAPPED: the request is cut to its header
    bytes.extend(sequence.to_ne_bytes());
    bytes.extend(0x4efau32.to_ne_bytes());
    bytes.extend(code.to_ne_bytes());
    bytes.extend(72u32.to_ne_bytes());
    bytes.extend(21u16.to_ne_bytes());
    bytes.extend(5u16.to_ne_bytes());
    bytes.extend(sequence.to_ne_bytes());
    bytes.extend(0u32.to_ne_bytes());
    bytes
}

#[test]
fn acks_give_the_code_of_their_own_request() {
    assert_eq!(parse_ack(&ack(3, 0), 3).expect("parse"), Some(0));
    assert_eq!(parse_ack(&ack(3, -2), 3).expect("parse"), Some(-2));
    assert_eq!(parse_ack(&ack(2, -2), 3).expect("parse"), None);
    let mut two = ack(2, 0);
    two.extend(ack(3, -95));
    assert_eq!(parse_ack(&two, 3).expect("parse"), Some(-95));
}

#[test]
fn an_error_in_a_dump_is_its_errno() {
    let mut sockets = Vec::new();
    let err = parse_dump(&ack(9, -1), 9, &mut sockets).expect_err("EPERM");
    assert_eq!(err.raw_os_error(), Some(1));
}
