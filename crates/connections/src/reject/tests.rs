use super::*;
use crate::TcpState;

fn listener(local: &str, v6only: bool) -> Socket {
    Socket {
        local: local.parse().expect("address"),
        remote: if local.starts_with('[') {
            "[::]:0"
        } else {
            "0.0.0.0:0"
        }
        .parse()
        .expect("address"),
        state: TcpState::Listen,
        inode: 1,
        uid: 0,
        interface: 0,
        cookie: 1,
        v6only,
    }
}

#[test]
fn tags_are_checked() {
    for good in ["a", "0123456789ab", "web.1", "pid-4242", "x_y"] {
        let tag = Tag::new(good).expect(good);
        assert_eq!(tag.table(), format!("stasis-{good}"));
    }
    let long = "a".repeat(TAG_MAX + 1);
    for bad in ["", "-a", ".a", "a b", "a/b", "a;b", "é", long.as_str()] {
        assert!(
            matches!(Tag::new(bad), Err(Error::InvalidTag { .. })),
            "{bad:?}"
        );
    }
    assert!(Tag::new("a".repeat(TAG_MAX)).is_ok());
}

#[test]
fn endpoints_follow_what_a_listener_accepts() {
    let cases = [
        (
            "0.0.0.0:80",
            false,
            Endpoint::V4 {
                addr: None,
                port: 80,
            },
        ),
        (
            "127.0.0.1:81",
            false,
            Endpoint::V4 {
                addr: Some(Ipv4Addr::LOCALHOST),
                port: 81,
            },
        ),
        ("[::]:82", false, Endpoint::Any { port: 82 }),
        (
            "[::]:83",
            true,
            Endpoint::V6 {
                addr: None,
                port: 83,
            },
        ),
        (
            "[::1]:84",
            true,
            Endpoint::V6 {
                addr: Some(Ipv6Addr::LOCALHOST),
                port: 84,
            },
        ),
        (
            "[::ffff:127.0.0.1]:85",
            false,
            Endpoint::V4 {
                addr: Some(Ipv4Addr::LOCALHOST),
                port: 85,
            },
        ),
        (
            "[::ffff:0.0.0.0]:86",
            false,
            Endpoint::V4 {
                addr: None,
                port: 86,
            },
        ),
    ];
    for (local, v6only, expected) in cases {
        assert_eq!(Endpoint::of(&listener(local, v6only)), expected, "{local}");
    }
    let mut connection = listener("127.0.0.1:90", false);
    connection.state = TcpState::Established;
    let sockets = [
        listener("0.0.0.0:80", false),
        listener("0.0.0.0:80", false),
        connection,
    ];
    assert_eq!(
        Endpoint::of_listeners(&sockets),
        vec![Endpoint::V4 {
            addr: None,
            port: 80
        }]
    );
}

/// The JSON `nft -j` itself prints for these rules (`nft -j list table`
/// on 1.0.6), in the commands that (re)make the table.
#[test]
fn add_makes_the_table_chain_and_one_rule_per_endpoint() {
    let tag = Tag::new("abc").expect("tag");
    let endpoints = [
        Endpoint::V4 {
            addr: Some(Ipv4Addr::LOCALHOST),
            port: 8080,
        },
        Endpoint::Any { port: 80 },
        Endpoint::V4 {
            addr: Some(Ipv4Addr::LOCALHOST),
            port: 8080,
        },
    ];
    let got = serde_json::to_value(add_ruleset(&tag, &endpoints)).expect("serialize");
    let chain = r#"{"family": "inet", "table": "stasis-abc", "name": "input",
        "type": "filter", "hook": "input", "prio": 0, "policy": "accept"}"#;
    let syn = r#"{"match": {"op": "==", "left": {"&": [{"payload": {"protocol": "tcp", "field": "flags"}},
        ["fin", "syn", "rst", "ack"]]}, "right": "syn"}}, {"reject": {"type": "tcp reset"}}"#;
    let expected = format!(
        r#"{{"nftables": [
        {{"add": {{"table": {{"family": "inet", "name": "stasis-abc"}}}}}},
        {{"add": {{"chain": {chain}}}}},
        {{"flush": {{"chain": {chain}}}}},
        {{"add": {{"rule": {{"family": "inet", "table": "stasis-abc", "chain": "input", "expr": [
            {{"match": {{"op": "==", "left": {{"payload": {{"protocol": "ip", "field": "daddr"}}}}, "right": "127.0.0.1"}}}},
            {{"match": {{"op": "==", "left": {{"payload": {{"protocol": "tcp", "field": "dport"}}}}, "right": 8080}}}},
            {syn}]}}}}}},
        {{"add": {{"rule": {{"family": "inet", "table": "stasis-abc", "chain": "input", "expr": [
            {{"match": {{"op": "==", "left": {{"payload": {{"protocol": "tcp", "field": "dport"}}}}, "right": 80}}}},
            {syn}]}}}}}}
        ]}}"#
    );
    let expected: serde_json::Value = serde_json::from_str(&expected).expect("expected JSON");
    assert_eq!(got, expected);
}

#[test]
fn family_wide_endpoints_match_nfproto() {
    let v6 = serde_json::to_value(rule(Endpoint::V6 {
        addr: None,
        port: 83,
    }))
    .expect("serialize");
    assert_eq!(
        v6[0],
        serde_json::json!({"match": {"op": "==", "left": {"meta": {"key": "nfproto"}}, "right": "ipv6"}})
    );
    let v4 = serde_json::to_value(rule(Endpoint::V4 {
        addr: None,
        port: 80,
    }))
    .expect("serialize");
    assert_eq!(v4[0]["match"]["right"], "ipv4");
    let one = serde_json::to_value(rule(Endpoint::V6 {
        addr: Some(Ipv6Addr::LOCALHOST),
        port: 1,
    }))
    .expect("serialize");
    assert_eq!(
        one[0],
        serde_json::json!({"match": {"op": "==", "left": {"payload": {"protocol": "ip6", "field": "daddr"}}, "right": "::1"}})
    );
}

#[test]
fn remove_adds_then_deletes_so_an_absent_table_is_fine() {
    let got =
        serde_json::to_value(remove_ruleset(&Tag::new("abc").expect("tag"))).expect("serialize");
    assert_eq!(
        got,
        serde_json::json!({"nftables": [
            {"add": {"table": {"family": "inet", "name": "stasis-abc"}}},
            {"delete": {"table": {"family": "inet", "name": "stasis-abc"}}}
        ]})
    );
}

/// `nft -j list tables` (1.0.6) with two stasis tables and another one.
#[test]
fn lists_the_stasis_tables_only() {
    let listing = r#"{"nftables": [{"metainfo": {"version": "1.0.6", "release_name": "Lester Gooch #5", "json_schema_version": 1}}, {"table": {"family": "inet", "name": "stasis-abc", "handle": 1}}, {"table": {"family": "ip", "name": "other", "handle": 2}}, {"table": {"family": "inet", "name": "stasis-x.y_z-1", "handle": 3}}, {"table": {"family": "ip", "name": "stasis-ip", "handle": 4}}]}"#;
    let ruleset: Nftables<'_> = serde_json::from_str(listing).expect("parse listing");
    let tags: Vec<String> = tags_of(&ruleset).iter().map(|t| t.to_string()).collect();
    assert_eq!(tags, ["abc", "x.y_z-1"]);
}
