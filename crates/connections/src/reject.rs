//! Refusing new connections to a paused target's listening ports: an
//! nf_tables table in the target's network namespace that answers a SYN to
//! them with a TCP reset.
//!
//! A frozen process cannot accept, but its listening socket still
//! completes handshakes into the accept queue, where a client hangs until
//! its own timeout. With the table in place, a SYN to one of those ports is
//! rejected at the `input` hook (`reject with tcp reset`), so the client's
//! `connect` fails at once with `ECONNREFUSED` and it can try another
//! backend. The table, for a target tagged `TAG`:
//!
//! ```text
//! table inet stasis-TAG {
//!     chain input {
//!         type filter hook input priority filter; policy accept;
//!         ip daddr 127.0.0.1 tcp dport 8080 tcp flags & (fin|syn|rst|ack) == syn reject with tcp reset
//!         meta nfproto ipv4 tcp dport 8081 tcp flags & (fin|syn|rst|ack) == syn reject with tcp reset
//!         tcp dport 8082 tcp flags & (fin|syn|rst|ack) == syn reject with tcp reset
//!     }
//! }
//! ```
//!
//! (`nft list ruleset` prints these rules as `tcp dport 8081 tcp flags syn /
//! fin,syn,rst,ack reject with tcp reset` and leaves the `meta nfproto`
//! match out of the text; `nft --debug=netlink list ruleset` shows that the
//! kernel has it.)
//!
//! One table per paused target, named after its tag: the kernel keeps it
//! whatever happens to the process that added it, so a later unpause (or a
//! clean-up that [`Netfilter::list`]s the `stasis-` tables) removes it by
//! the tag alone. Adding replaces the table's rules in one transaction, and
//! removing is a no-op when the table is absent, so both can be repeated.
//!
//! # Why `nft` and the `nftables` crate
//!
//! The rules are handed to `nft -j -f -` as libnftables JSON built with the
//! [`nftables`] crate (MIT/Apache-2.0, typed schema, maintained), run on a
//! thread inside the namespace ([`NetNs::run`]; `nft` inherits it). `nft`
//! (Debian package `nftables`) is therefore a runtime dependency of this
//! module, and only of it. The alternatives were worse: `rustables` speaks
//! nf_tables netlink itself but is GPL-3.0, which this Apache-2.0 workspace
//! cannot take; `nftnl`/`mnl` bind the C libraries libnftnl and libmnl
//! (unsafe FFI plus two C libraries instead of one binary); and writing the
//! nf_tables netlink messages (batches of NEWTABLE/NEWCHAIN/NEWRULE with
//! `meta`, `payload`, `bitwise`, `cmp` and `reject` expressions) ourselves is
//! far more encoding than the sock_diag side, with the kernel's answers for
//! a hand-made mistake being opaque `EINVAL`s. `nft` also validates the
//! rules against the running kernel, and what it installs is what `nft list
//! ruleset` shows an operator. The price is a process per call: about
//! 10 ms to add a table and 20 ms to remove one on these machines.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;

use nftables::batch::Batch;
use nftables::expr::{
    BinaryOperation, Expression, Meta, MetaKey, NamedExpression, Payload, PayloadField,
};
use nftables::schema::{Chain, FlushObject, NfCmd, NfListObject, NfObject, Nftables, Rule, Table};
use nftables::stmt::{Match, Operator, Reject, RejectType, Statement};
use nftables::types::{NfChainPolicy, NfChainType, NfFamily, NfHook};

use crate::socket::mapped_v4;
use crate::{Error, NetNs, NftError, Result, Socket};

/// The prefix of every table this module makes.
pub const TABLE_PREFIX: &str = "stasis-";

/// The longest tag (the kernel allows table names of 255 bytes).
pub const TAG_MAX: usize = 128;

/// The chain, at the `input` hook.
const CHAIN: &str = "input";

/// What identifies a paused target's table: `[a-zA-Z0-9][a-zA-Z0-9_.-]*`,
/// at most [`TAG_MAX`] characters (a stasis ID, a name, `pid-4242`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Tag(String);

impl Tag {
    /// A checked tag.
    pub fn new(tag: impl Into<String>) -> Result<Tag> {
        let tag = tag.into();
        let mut chars = tag.chars();
        let valid = tag.len() <= TAG_MAX
            && chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
            && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
        if valid {
            Ok(Tag(tag))
        } else {
            Err(Error::InvalidTag { tag })
        }
    }

    /// The tag as given.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The name of its table: `stasis-TAG`.
    pub fn table(&self) -> String {
        format!("{TABLE_PREFIX}{}", self.0)
    }
}

impl std::fmt::Display for Tag {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Where new connections are refused: a TCP port, on one address or on
/// every address of a family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Endpoint {
    /// IPv4 connections to `port`, on `addr` or on any address (`None`).
    V4 { addr: Option<Ipv4Addr>, port: u16 },
    /// IPv6 connections to `port`, on `addr` or on any address (`None`).
    V6 { addr: Option<Ipv6Addr>, port: u16 },
    /// Connections of both families to `port`: an IPv6 listener on `::`
    /// without `IPV6_V6ONLY` takes IPv4 connections too.
    Any { port: u16 },
}

impl Endpoint {
    /// What a listening socket accepts: its address and port (an
    /// IPv4-mapped IPv6 address is the IPv4 one).
    pub fn of(listener: &Socket) -> Endpoint {
        let port = listener.local.port();
        match listener.local.ip() {
            IpAddr::V4(a) if a.is_unspecified() => Endpoint::V4 { addr: None, port },
            IpAddr::V4(a) => Endpoint::V4 {
                addr: Some(a),
                port,
            },
            IpAddr::V6(a) if a.is_unspecified() && listener.v6only => {
                Endpoint::V6 { addr: None, port }
            }
            IpAddr::V6(a) if a.is_unspecified() => Endpoint::Any { port },
            IpAddr::V6(a) => match mapped_v4(&a) {
                Some(v4) if v4.is_unspecified() => Endpoint::V4 { addr: None, port },
                Some(v4) => Endpoint::V4 {
                    addr: Some(v4),
                    port,
                },
                None => Endpoint::V6 {
                    addr: Some(a),
                    port,
                },
            },
        }
    }

    /// The endpoints of the listening sockets among `sockets`, each once.
    pub fn of_listeners<'a>(sockets: impl IntoIterator<Item = &'a Socket>) -> Vec<Endpoint> {
        let set: BTreeSet<Endpoint> = sockets
            .into_iter()
            .filter(|s| s.is_listening())
            .map(Endpoint::of)
            .collect();
        set.into_iter().collect()
    }
}

/// Adds, removes and lists the reject tables, through the `nft` program.
#[derive(Debug, Clone)]
pub struct Netfilter {
    program: PathBuf,
}

impl Default for Netfilter {
    /// `nft`, found on `PATH`.
    fn default() -> Self {
        Netfilter::with_program("nft")
    }
}

impl Netfilter {
    /// `nft`, found on `PATH`.
    pub fn new() -> Self {
        Netfilter::default()
    }

    /// A given `nft` binary.
    pub fn with_program(program: impl Into<PathBuf>) -> Self {
        Netfilter {
            program: program.into(),
        }
    }

    /// Makes table `stasis-TAG` in `netns` refuse new connections to
    /// `endpoints`, replacing whatever rules it had, in one transaction.
    /// Repeating it is harmless.
    pub fn add(&self, netns: &NetNs, tag: &Tag, endpoints: &[Endpoint]) -> Result<()> {
        netns.run(|| self.add_here(netns, tag, endpoints))?
    }

    /// [`Netfilter::add`] from a thread that is in `netns` already.
    pub(crate) fn add_here(&self, netns: &NetNs, tag: &Tag, endpoints: &[Endpoint]) -> Result<()> {
        self.apply_here(netns, tag, "adding", &add_ruleset(tag, endpoints))?;
        tracing::debug!(netns = %netns.path().display(), table = %tag.table(), endpoints = endpoints.len(), "reject rules added");
        Ok(())
    }

    /// Removes table `stasis-TAG` from `netns`; nothing happens when it is
    /// not there. (The table is added empty and deleted in one transaction,
    /// as `nft` before 1.0.8 has no `destroy`.)
    pub fn remove(&self, netns: &NetNs, tag: &Tag) -> Result<()> {
        netns.run(|| self.apply_here(netns, tag, "removing", &remove_ruleset(tag)))??;
        tracing::debug!(netns = %netns.path().display(), table = %tag.table(), "reject rules removed");
        Ok(())
    }

    /// The tags of the `stasis-` tables present in `netns`.
    pub fn list(&self, netns: &NetNs) -> Result<Vec<Tag>> {
        let listed = netns.run(|| {
            nftables::helper::get_current_ruleset_with_args(Some(&self.program), ["list", "tables"])
        })?;
        let ruleset = listed.map_err(|source| Error::NftList {
            netns: netns.path().to_owned(),
            source: NftError::from(source),
        })?;
        Ok(tags_of(&ruleset))
    }

    /// Runs `nft -j -f -` with `ruleset` on the calling thread, which must
    /// be in `netns` (named for the errors).
    fn apply_here(
        &self,
        netns: &NetNs,
        tag: &Tag,
        operation: &'static str,
        ruleset: &Nftables<'_>,
    ) -> Result<()> {
        nftables::helper::apply_ruleset_with_args(
            ruleset,
            Some(&self.program),
            std::iter::empty::<&str>(),
        )
        .map_err(|source| Error::Nft {
            operation,
            table: tag.table(),
            netns: netns.path().to_owned(),
            source: NftError::from(source),
        })
    }
}

fn table(tag: &Tag) -> Table<'static> {
    Table {
        family: NfFamily::INet,
        name: tag.table().into(),
        handle: None,
    }
}

fn chain(tag: &Tag) -> Chain<'static> {
    Chain {
        family: NfFamily::INet,
        table: tag.table().into(),
        name: CHAIN.into(),
        _type: Some(NfChainType::Filter),
        hook: Some(NfHook::Input),
        prio: Some(0),
        policy: Some(NfChainPolicy::Accept),
        ..Chain::default()
    }
}

/// The transaction that (re)makes the table with one rule per endpoint.
pub(crate) fn add_ruleset(tag: &Tag, endpoints: &[Endpoint]) -> Nftables<'static> {
    let mut batch = Batch::new();
    batch.add(NfListObject::Table(table(tag)));
    batch.add(NfListObject::Chain(chain(tag)));
    batch.add_cmd(NfCmd::Flush(FlushObject::Chain(chain(tag))));
    let unique: BTreeSet<Endpoint> = endpoints.iter().copied().collect();
    for endpoint in unique {
        batch.add(NfListObject::Rule(Rule {
            family: NfFamily::INet,
            table: tag.table().into(),
            chain: CHAIN.into(),
            expr: rule(endpoint).into(),
            ..Rule::default()
        }));
    }
    batch.to_nftables()
}

/// The transaction that removes the table, present or not.
pub(crate) fn remove_ruleset(tag: &Tag) -> Nftables<'static> {
    let mut batch = Batch::new();
    batch.add(NfListObject::Table(table(tag)));
    batch.delete(NfListObject::Table(table(tag)));
    batch.to_nftables()
}

fn equals(left: Expression<'static>, right: Expression<'static>) -> Statement<'static> {
    Statement::Match(Match {
        left,
        right,
        op: Operator::EQ,
    })
}

fn payload(protocol: &'static str, field: &'static str) -> Expression<'static> {
    Expression::Named(NamedExpression::Payload(Payload::PayloadField(
        PayloadField {
            protocol: protocol.into(),
            field: field.into(),
        },
    )))
}

fn nfproto(name: &'static str) -> Statement<'static> {
    equals(
        Expression::Named(NamedExpression::Meta(Meta {
            key: MetaKey::Nfproto,
        })),
        Expression::String(name.into()),
    )
}

/// `[address match] tcp dport P tcp flags & (fin|syn|rst|ack) == syn
/// reject with tcp reset`: a first SYN only, so a SYN-ACK or a segment of a
/// connection that already exists is never hit.
fn rule(endpoint: Endpoint) -> Vec<Statement<'static>> {
    let (address, port) = match endpoint {
        Endpoint::V4 {
            addr: Some(a),
            port,
        } => (
            Some(equals(
                payload("ip", "daddr"),
                Expression::String(a.to_string().into()),
            )),
            port,
        ),
        Endpoint::V4 { addr: None, port } => (Some(nfproto("ipv4")), port),
        Endpoint::V6 {
            addr: Some(a),
            port,
        } => (
            Some(equals(
                payload("ip6", "daddr"),
                Expression::String(a.to_string().into()),
            )),
            port,
        ),
        Endpoint::V6 { addr: None, port } => (Some(nfproto("ipv6")), port),
        Endpoint::Any { port } => (None, port),
    };
    let flags = Expression::BinaryOperation(Box::new(BinaryOperation::AND(
        payload("tcp", "flags"),
        Expression::List(
            ["fin", "syn", "rst", "ack"]
                .into_iter()
                .map(|f| Expression::String(f.into()))
                .collect(),
        ),
    )));
    address
        .into_iter()
        .chain([
            equals(payload("tcp", "dport"), Expression::Number(u32::from(port))),
            equals(flags, Expression::String("syn".into())),
            Statement::Reject(Some(Reject::new(Some(RejectType::TCPReset), None))),
        ])
        .collect()
}

/// The tags of the `inet` tables named `stasis-TAG` in a listing.
pub(crate) fn tags_of(ruleset: &Nftables<'_>) -> Vec<Tag> {
    let mut tags: Vec<Tag> = ruleset
        .objects
        .iter()
        .filter_map(|object| match object {
            NfObject::ListObject(NfListObject::Table(t)) if t.family == NfFamily::INet => t
                .name
                .strip_prefix(TABLE_PREFIX)
                .and_then(|tag| Tag::new(tag).ok()),
            _ => None,
        })
        .collect();
    tags.sort();
    tags.dedup();
    tags
}

#[cfg(test)]
mod tests;
