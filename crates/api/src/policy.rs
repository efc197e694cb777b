//! Per-verb permissions: which caller may do what, from `--allow
//! GROUP_OR_UID=VERBS` rules and the peer's credentials ([`crate::Peer`]).
//!
//! Root may do everything; anyone who can connect may ping and read the
//! version and info. Everything else needs a rule that names the caller's
//! uid (a number) or one of its groups (a name, resolved once at start-up
//! from `/etc/group`) and the verb (or `all`). With no rule, only root acts:
//! the socket's group lets a user connect, the rules decide what it may do.

use std::collections::BTreeSet;
use std::path::Path;

use crate::error::Error;
use crate::peer::Peer;

/// The operations a rule grants, in docker's verbs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Verb {
    Ps,
    Inspect,
    Logs,
    Events,
    Create,
    Start,
    Stop,
    Kill,
    Restart,
    Wait,
    Pause,
    Unpause,
    Rm,
    Images,
    Import,
    Load,
    /// Exec instances (create, start, resize), a container's resize, and
    /// an attach that carries stdin: what runs or types in a container.
    Exec,
    /// `_ping`, `version`, `info`: always allowed.
    Ping,
}

impl Verb {
    /// Every verb a rule can name.
    pub const ALL: [Verb; 17] = [
        Verb::Ps,
        Verb::Inspect,
        Verb::Logs,
        Verb::Events,
        Verb::Create,
        Verb::Start,
        Verb::Stop,
        Verb::Kill,
        Verb::Restart,
        Verb::Wait,
        Verb::Pause,
        Verb::Unpause,
        Verb::Rm,
        Verb::Images,
        Verb::Import,
        Verb::Load,
        Verb::Exec,
    ];

    pub fn word(self) -> &'static str {
        match self {
            Verb::Ps => "ps",
            Verb::Inspect => "inspect",
            Verb::Logs => "logs",
            Verb::Events => "events",
            Verb::Create => "create",
            Verb::Start => "start",
            Verb::Stop => "stop",
            Verb::Kill => "kill",
            Verb::Restart => "restart",
            Verb::Wait => "wait",
            Verb::Pause => "pause",
            Verb::Unpause => "unpause",
            Verb::Rm => "rm",
            Verb::Images => "images",
            Verb::Import => "import",
            Verb::Load => "load",
            Verb::Exec => "exec",
            Verb::Ping => "ping",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        Verb::ALL.into_iter().find(|v| v.word() == s)
    }

    /// Whether the verb changes state (and so is audited when it succeeds
    /// or fails, not only when refused).
    pub fn changes_state(self) -> bool {
        matches!(
            self,
            Verb::Create
                | Verb::Start
                | Verb::Stop
                | Verb::Kill
                | Verb::Restart
                | Verb::Pause
                | Verb::Unpause
                | Verb::Rm
                | Verb::Import
                | Verb::Load
                | Verb::Exec
        )
    }
}

impl std::fmt::Display for Verb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.word())
    }
}

/// Whom a rule is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Who {
    Uid(u32),
    /// A group, by gid (and the name it was given by, for messages).
    Group {
        gid: u32,
        name: String,
    },
}

/// One `--allow` rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub who: Who,
    pub verbs: BTreeSet<Verb>,
}

impl Rule {
    /// Parses `GROUP_OR_UID=VERB[,VERB...]`: a number is a uid, anything
    /// else a group name looked up in `group_file` (`/etc/group`).
    pub fn parse(s: &str, group_file: &Path) -> Result<Self, Error> {
        let bad = |reason: &str| Error::Allow {
            value: s.to_owned(),
            reason: reason.to_owned(),
        };
        let (who, verbs) = s
            .split_once('=')
            .ok_or_else(|| bad("use GROUP_OR_UID=VERB[,VERB...]"))?;
        if who.is_empty() {
            return Err(bad("name a group or a uid before ="));
        }
        let who = match who.parse::<u32>() {
            Ok(uid) => Who::Uid(uid),
            Err(_) => Who::Group {
                gid: gid_of(group_file, who).map_err(|e| bad(&e.to_string()))?,
                name: who.to_owned(),
            },
        };
        let mut set = BTreeSet::new();
        for v in verbs.split(',') {
            match v {
                "all" => set.extend(Verb::ALL),
                _ => {
                    let verb = Verb::parse(v).ok_or_else(|| {
                        bad(&format!(
                            "unknown verb {v:?} (verbs: all, {})",
                            Verb::ALL.map(Verb::word).join(", ")
                        ))
                    })?;
                    set.insert(verb);
                }
            }
        }
        Ok(Rule { who, verbs: set })
    }

    fn applies_to(&self, peer: &Peer) -> bool {
        match &self.who {
            Who::Uid(uid) => peer.uid == *uid,
            Who::Group { gid, .. } => peer.in_group(*gid),
        }
    }
}

/// The rules of one service.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policy {
    pub rules: Vec<Rule>,
}

impl Policy {
    /// Whether `peer` may do `verb`.
    pub fn allows(&self, peer: &Peer, verb: Verb) -> bool {
        peer.is_root()
            || verb == Verb::Ping
            || self
                .rules
                .iter()
                .any(|r| r.applies_to(peer) && r.verbs.contains(&verb))
    }
}

/// The gid of group `name` in a `group(5)` file.
pub fn gid_of(group_file: &Path, name: &str) -> Result<u32, Error> {
    let text = std::fs::read_to_string(group_file).map_err(|source| Error::ReadGroups {
        path: group_file.to_owned(),
        source,
    })?;
    text.lines()
        .filter_map(|l| {
            let mut f = l.split(':');
            let n = f.next()?;
            let gid = f.nth(1)?.parse::<u32>().ok()?;
            (n == name).then_some(gid)
        })
        .next()
        .ok_or_else(|| Error::NoSuchGroup {
            name: name.to_owned(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group_file() -> std::path::PathBuf {
        let p = std::env::temp_dir().join(format!("stasis-unit-group-{}", std::process::id()));
        std::fs::write(&p, "root:x:0:\nops:x:1500:alice,bob\ndev:x:1600:\n").expect("write");
        p
    }

    fn peer(uid: u32, gid: u32, groups: &[u32]) -> Peer {
        Peer::new(uid, gid, 1, groups.to_vec())
    }

    #[test]
    fn rules_grant_verbs_to_uids_and_groups() {
        let g = group_file();
        let ops = Rule::parse("ops=ps,pause,unpause", &g).expect("ops");
        assert_eq!(
            ops.who,
            Who::Group {
                gid: 1500,
                name: "ops".into()
            }
        );
        let me = Rule::parse("1234=all", &g).expect("uid");
        let policy = Policy {
            rules: vec![ops, me],
        };
        let alice = peer(1001, 1001, &[1500]);
        assert!(policy.allows(&alice, Verb::Pause));
        assert!(policy.allows(&alice, Verb::Ps));
        assert!(!policy.allows(&alice, Verb::Rm));
        assert!(policy.allows(&alice, Verb::Ping), "always");
        assert!(policy.allows(&peer(1234, 50, &[]), Verb::Rm));
        assert!(policy.allows(&peer(0, 0, &[]), Verb::Rm), "root");
        assert!(!policy.allows(&peer(1600, 1600, &[1600]), Verb::Ps));
        assert!(Policy::default().allows(&peer(0, 0, &[]), Verb::Load));
        assert!(!Policy::default().allows(&alice, Verb::Ps));
        for bad in ["ops", "=ps", "ops=ps,fly", "nosuchgroup=ps", "ops="] {
            let e = Rule::parse(bad, &g).expect_err(bad);
            assert!(e.is_invalid(), "{bad}: {e}");
        }
        let _ = std::fs::remove_file(g);
    }
}
