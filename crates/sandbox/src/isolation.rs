//! What confines a container, decided before its process is forked: its
//! capability set, its seccomp program, its device rules, its volumes. The
//! forked child only applies them (`spawn`).
//!
//! Defaults follow docker's, each with docker's opt-out:
//! - capabilities: docker's default list ([`DEFAULT_CAPS`]) as the bounding,
//!   permitted and effective sets, inheritable and ambient cleared;
//!   `cap_add` / `cap_drop` (`ALL` too), `privileged` keeps every one;
//! - seccomp: programs built with rust-vmm's seccompiler (never hand-written
//!   BPF) that
//!   answers EPERM to what docker's default profile denies — for
//!   syscalls docker allows only with a capability (`mount` with
//!   CAP_SYS_ADMIN, `reboot` with CAP_SYS_BOOT...), only when the container
//!   lacks it; `unconfined`, or a profile in docker's JSON format;
//! - devices: docker's default device rules in the container's leaf of the
//!   v1 `devices` hierarchy (`devices.deny`, `devices.allow`), plus each
//!   `--device`.
//!
//! seccompiler's filters take one action for all their rules, so a policy
//! with several actions compiles to a stack of filters, one per action
//! (see `Rules::compile`), which the kernel weighs together. They are
//! compiled before the fork, so the child installs each with one `prctl`
//! and allocates nothing. seccompiler is pure Rust: no system library.

use std::path::{Path, PathBuf};

use rustix::thread::CapabilitySet;
use seccompiler::SeccompAction;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// docker's default capabilities (moby's `oci/caps/defaults.go`).
pub const DEFAULT_CAPS: [&str; 14] = [
    "CHOWN",
    "DAC_OVERRIDE",
    "FSETID",
    "FOWNER",
    "MKNOD",
    "NET_RAW",
    "SETGID",
    "SETUID",
    "SETFCAP",
    "SETPCAP",
    "NET_BIND_SERVICE",
    "SYS_CHROOT",
    "KILL",
    "AUDIT_WRITE",
];

/// How a container is confined. The default is docker's default.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Isolation {
    /// Every capability, no seccomp, every device, /proc and /sys unmasked.
    #[serde(default)]
    pub privileged: bool,
    /// Capabilities added to the default set (`ALL`, `CAP_X` or `X`).
    #[serde(default)]
    pub cap_add: Vec<String>,
    /// Capabilities dropped from it (`ALL` too); applied before `cap_add`.
    #[serde(default)]
    pub cap_drop: Vec<String>,
    #[serde(default)]
    pub seccomp: Seccomp,
    /// `no_new_privs`: setuid binaries and file capabilities give nothing.
    #[serde(default)]
    pub no_new_privileges: bool,
    /// The root filesystem mounted read-only.
    #[serde(default)]
    pub read_only: bool,
    /// Host devices made available (`--device`).
    #[serde(default)]
    pub devices: Vec<Device>,
    /// Volumes (`-v`, `--mount`, `--tmpfs`), in the order given.
    #[serde(default)]
    pub mounts: Vec<Mount>,
}

/// Which seccomp program the container gets.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Seccomp {
    /// docker's intent: deny what its default profile denies.
    #[default]
    Default,
    /// None (`--security-opt seccomp=unconfined`).
    Unconfined,
    /// A profile in docker's JSON format (its text, kept in the record).
    Profile(String),
}

/// A host device and where it appears in the container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Device {
    pub host: PathBuf,
    pub container: PathBuf,
}

/// A volume.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Mount {
    /// A host directory or file bound at `target`.
    Bind {
        source: PathBuf,
        target: PathBuf,
        readonly: bool,
    },
    /// A fresh tmpfs at `target`, with mount options (`size=64m,mode=1777`).
    Tmpfs { target: PathBuf, options: String },
}

impl Mount {
    pub fn target(&self) -> &Path {
        match self {
            Mount::Bind { target, .. } | Mount::Tmpfs { target, .. } => target,
        }
    }
}

fn invalid(what: &'static str, value: impl Into<String>, reason: impl Into<String>) -> Error {
    Error::InvalidIsolation {
        what,
        value: value.into(),
        reason: reason.into(),
    }
}

/// A capability name as docker takes it: `CAP_NET_ADMIN`, `net_admin`.
pub fn parse_capability(name: &str) -> Result<CapabilitySet> {
    let upper = name.to_ascii_uppercase();
    let bare = upper.strip_prefix("CAP_").unwrap_or(&upper);
    CapabilitySet::from_name(bare).ok_or_else(|| {
        invalid(
            "capability",
            name,
            "no such capability (see capabilities(7))",
        )
    })
}

impl Isolation {
    /// Checks everything that can be checked before the container exists:
    /// capability names, the seccomp profile, devices, volumes.
    pub fn validate(&self, has_rootfs: bool) -> Result<()> {
        self.capabilities()?;
        if let Seccomp::Profile(text) = &self.seccomp {
            Profile::parse(text, self.capabilities()?)?;
        }
        for d in &self.devices {
            if !d.container.is_absolute() || !d.host.is_absolute() {
                return Err(invalid(
                    "device",
                    d.host.display().to_string(),
                    "give absolute paths, HOST[:CONTAINER]",
                ));
            }
            device_rule(&d.host)?;
        }
        if self.read_only && !has_rootfs {
            return Err(invalid(
                "--read-only",
                "",
                "a container without --rootfs or an image runs on the host's filesystem, which stays as it is",
            ));
        }
        if !self.mounts.is_empty() && !has_rootfs {
            return Err(invalid(
                "volume",
                self.mounts[0].target().display().to_string(),
                "a container without --rootfs or an image sees the host's files already: \
                 volumes need a root filesystem of its own",
            ));
        }
        for m in &self.mounts {
            let target = m.target();
            if !target.is_absolute() || target == Path::new("/") {
                return Err(invalid(
                    "volume target",
                    target.display().to_string(),
                    "it must be an absolute path other than /",
                ));
            }
            if target
                .components()
                .any(|c| c == std::path::Component::ParentDir)
            {
                return Err(invalid(
                    "volume target",
                    target.display().to_string(),
                    "it must not contain ..",
                ));
            }
            if let Mount::Bind { source, .. } = m {
                if !source.is_absolute() {
                    return Err(invalid(
                        "volume source",
                        source.display().to_string(),
                        "it must be an absolute host path",
                    ));
                }
                if !source.exists() {
                    return Err(invalid(
                        "volume source",
                        source.display().to_string(),
                        "no such file or directory on the host",
                    ));
                }
            }
            if let Mount::Tmpfs { options, .. } = m {
                tmpfs_options(options)?;
            }
        }
        Ok(())
    }

    /// The capabilities the process keeps: docker's default set, minus
    /// `cap_drop`, plus `cap_add`; every one when privileged.
    pub fn capabilities(&self) -> Result<CapabilitySet> {
        let all = CapabilitySet::all();
        if self.privileged {
            return Ok(all);
        }
        let parse_list = |list: &[String]| -> Result<CapabilitySet> {
            list.iter().try_fold(CapabilitySet::empty(), |acc, c| {
                Ok(if c.eq_ignore_ascii_case("ALL") {
                    all
                } else {
                    acc | parse_capability(c)?
                })
            })
        };
        let mut set = DEFAULT_CAPS
            .iter()
            .try_fold(CapabilitySet::empty(), |acc, c| {
                Ok::<_, Error>(acc | parse_capability(c)?)
            })?;
        set &= !parse_list(&self.cap_drop)?;
        set |= parse_list(&self.cap_add)?;
        Ok(set)
    }

    /// The seccomp programs (BPF instructions) to install, in order; none
    /// when unconfined or privileged.
    pub fn seccomp_programs(&self) -> Result<Vec<Vec<libc::sock_filter>>> {
        if self.privileged {
            return Ok(Vec::new());
        }
        let rules = match &self.seccomp {
            Seccomp::Unconfined => return Ok(Vec::new()),
            Seccomp::Default => default_rules(self.capabilities()?),
            Seccomp::Profile(text) => {
                let caps = self.capabilities()?;
                Profile::parse(text, caps)?.rules(caps)?
            }
        };
        rules.compile()
    }

    /// The lines for the leaf's `devices.allow` after `devices.deny a`, or
    /// `None` when every device is allowed (privileged).
    pub fn device_rules(&self) -> Result<Option<Vec<String>>> {
        if self.privileged {
            return Ok(None);
        }
        let mut rules: Vec<String> = DEFAULT_DEVICE_RULES
            .iter()
            .map(|r| (*r).to_owned())
            .collect();
        for d in &self.devices {
            rules.push(device_rule(&d.host)?.0);
        }
        Ok(Some(rules))
    }
}

/// docker's default device rules (moby's `oci/devices_linux.go` and runc's
/// defaults): mknod of any block or character device (opening it is what
/// is refused), and the devices a container's /dev holds.
const DEFAULT_DEVICE_RULES: [&str; 11] = [
    "c *:* m",
    "b *:* m",
    "c 1:3 rwm",   // null
    "c 1:5 rwm",   // zero
    "c 1:7 rwm",   // full
    "c 1:8 rwm",   // random
    "c 1:9 rwm",   // urandom
    "c 5:0 rwm",   // tty
    "c 5:1 rwm",   // console
    "c 5:2 rwm",   // ptmx
    "c 136:* rwm", // pts/*
];

/// A host device's rule (`c 8:0 rwm`) and its stat.
pub(crate) fn device_rule(host: &Path) -> Result<(String, rustix::fs::Stat)> {
    let st = rustix::fs::stat(host).map_err(|e| Error::Device {
        path: host.to_owned(),
        source: e.into(),
    })?;
    let kind = match rustix::fs::FileType::from_raw_mode(st.st_mode) {
        rustix::fs::FileType::CharacterDevice => 'c',
        rustix::fs::FileType::BlockDevice => 'b',
        _ => {
            return Err(invalid(
                "device",
                host.display().to_string(),
                "it is not a character or block device",
            ))
        }
    };
    let rdev = st.st_rdev;
    Ok((
        format!(
            "{kind} {}:{} rwm",
            rustix::fs::major(rdev),
            rustix::fs::minor(rdev)
        ),
        st,
    ))
}

/// Checks `--tmpfs` / `tmpfs-size` options: only what tmpfs takes.
pub fn tmpfs_options(options: &str) -> Result<()> {
    for opt in options.split(',').filter(|o| !o.is_empty()) {
        let key = opt.split_once('=').map_or(opt, |(k, _)| k);
        if !matches!(
            key,
            "size"
                | "mode"
                | "nr_inodes"
                | "uid"
                | "gid"
                | "ro"
                | "rw"
                | "noexec"
                | "exec"
                | "nosuid"
                | "suid"
                | "nodev"
                | "dev"
        ) {
            return Err(invalid(
                "tmpfs option",
                opt,
                "tmpfs takes size, mode, nr_inodes, uid, gid, ro, noexec, nosuid, nodev",
            ));
        }
    }
    Ok(())
}

/// Syscalls docker's default profile never allows.
const ALWAYS_DENIED: &[&str] = &[
    "add_key",
    "keyctl",
    "request_key",
    "userfaultfd",
    "uselib",
    "ustat",
    "sysfs",
    "_sysctl",
    "nfsservctl",
    "create_module",
    "get_kernel_syms",
    "query_module",
    "vm86",
    "vm86old",
];

/// Syscalls docker's default profile allows only with a capability.
const DENIED_WITHOUT: &[(CapabilitySet, &[&str])] = &[
    (
        CapabilitySet::SYS_ADMIN,
        &[
            "mount",
            "umount",
            "umount2",
            "pivot_root",
            "unshare",
            "setns",
            "swapon",
            "swapoff",
            "quotactl",
            "quotactl_fd",
            "lookup_dcookie",
            "fanotify_init",
            "fsopen",
            "fsconfig",
            "fsmount",
            "fspick",
            "move_mount",
            "open_tree",
            "mount_setattr",
            "name_to_handle_at",
            "bpf",
            "perf_event_open",
            "sethostname",
            "setdomainname",
        ],
    ),
    (
        CapabilitySet::SYS_BOOT,
        &["reboot", "kexec_load", "kexec_file_load"],
    ),
    (
        CapabilitySet::SYS_MODULE,
        &["init_module", "finit_module", "delete_module"],
    ),
    (CapabilitySet::SYS_RAWIO, &["iopl", "ioperm"]),
    (
        CapabilitySet::SYS_TIME,
        &[
            "settimeofday",
            "stime",
            "clock_settime",
            "adjtimex",
            "clock_adjtime",
        ],
    ),
    (
        CapabilitySet::SYS_NICE,
        &["get_mempolicy", "set_mempolicy", "mbind", "move_pages"],
    ),
    (CapabilitySet::SYS_PACCT, &["acct"]),
    (CapabilitySet::SYS_TTY_CONFIG, &["vhangup"]),
    (CapabilitySet::DAC_READ_SEARCH, &["open_by_handle_at"]),
    (CapabilitySet::SYSLOG, &["syslog"]),
    (
        CapabilitySet::SYS_PTRACE,
        &["kcmp", "process_vm_readv", "process_vm_writev"],
    ),
];

/// `clone` flags that make namespaces, each denied without CAP_SYS_ADMIN.
const CLONE_NAMESPACE_FLAGS: [u64; 7] = [
    libc::CLONE_NEWNS as u64,
    libc::CLONE_NEWUTS as u64,
    libc::CLONE_NEWIPC as u64,
    libc::CLONE_NEWUSER as u64,
    libc::CLONE_NEWPID as u64,
    libc::CLONE_NEWNET as u64,
    libc::CLONE_NEWCGROUP as u64,
];

/// A seccomp policy before it is compiled: the action when no rule
/// matches, and rules naming system calls, each with its action and its
/// alternative sets of argument conditions (an empty set: always).
#[derive(Debug, Clone)]
struct Rules {
    default: SeccompAction,
    rules: Vec<Rule>,
}

#[derive(Debug, Clone)]
struct Rule {
    name: String,
    action: SeccompAction,
    /// Alternatives, each a conjunction; empty means unconditional.
    when: Vec<Vec<serde_json::Value>>,
}

impl Rules {
    /// Compiles with rust-vmm's seccompiler, one filter per action: the
    /// first has the default action and lets through what its rules allow,
    /// each other one takes its action on its rules' calls and lets the
    /// rest through. The kernel runs every filter and keeps the most
    /// restrictive answer (and, among errnos, the latest filter's), so the
    /// stack answers what one filter with per-rule actions would. A name
    /// this architecture has no system call for is skipped (as runc skips
    /// it); the names seccompiler knows are x86_64's, aarch64's, riscv64's.
    fn compile(mut self) -> Result<Vec<Vec<libc::sock_filter>>> {
        let mut actions: Vec<SeccompAction> = Vec::new();
        for r in &self.rules {
            if r.action != self.default && !actions.contains(&r.action) {
                actions.push(r.action.clone());
            }
        }
        // The base filter: the default action for what no rule allows.
        let base = (self.default != SeccompAction::Allow).then(|| self.default.clone());
        let mut programs = Vec::new();
        let groups: Vec<(SeccompAction, SeccompAction)> = base
            .map(|d| (d, SeccompAction::Allow))
            .into_iter()
            .chain(
                actions
                    .into_iter()
                    .filter(|a| *a != SeccompAction::Allow)
                    .map(|a| (SeccompAction::Allow, a)),
            )
            .collect();
        for (mismatch, matched) in groups {
            loop {
                let filter = group_json(&self.rules, &mismatch, &matched);
                match seccompiler::compile_from_json(filter.to_string().as_bytes(), arch()?) {
                    Ok(mut map) => {
                        let program = map.remove("f").unwrap_or_default();
                        programs.push(
                            program
                                .into_iter()
                                .map(|i| libc::sock_filter {
                                    code: i.code,
                                    jt: i.jt,
                                    jf: i.jf,
                                    k: i.k,
                                })
                                .collect(),
                        );
                        break;
                    }
                    // seccompiler keeps its frontend's error type private:
                    // the unknown name is read from its message.
                    Err(e) if unknown_name(&e).is_some() => {
                        let name = unknown_name(&e).unwrap_or_default();
                        let before = self.rules.len();
                        self.rules.retain(|r| r.name != name);
                        if self.rules.len() == before {
                            return Err(Error::Seccomp {
                                reason: e.to_string(),
                            });
                        }
                    }
                    Err(e) => {
                        return Err(Error::Seccomp {
                            reason: e.to_string(),
                        })
                    }
                }
            }
        }
        Ok(programs)
    }
}

/// The system call name seccompiler did not know, from its message
/// ("Invalid syscall name: NAME for given arch: ...").
fn unknown_name(e: &seccompiler::Error) -> Option<String> {
    let text = e.to_string();
    let rest = text.split_once("Invalid syscall name: ")?.1;
    Some(rest.split_once(" for given arch")?.0.to_owned())
}

/// seccompiler's JSON for one filter named `f`: the rules whose action is
/// `matched` (for the base filter, `Allow`). A call that some rule of the
/// group matches unconditionally takes no conditional rule.
fn group_json(
    rules: &[Rule],
    mismatch: &SeccompAction,
    matched: &SeccompAction,
) -> serde_json::Value {
    let mine: Vec<&Rule> = rules.iter().filter(|r| r.action == *matched).collect();
    let always: std::collections::BTreeSet<&str> = mine
        .iter()
        .filter(|r| r.when.is_empty())
        .map(|r| r.name.as_str())
        .collect();
    let mut entries = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for r in mine {
        if always.contains(r.name.as_str()) {
            if seen.insert(r.name.as_str()) {
                entries.push(serde_json::json!({ "syscall": r.name }));
            }
            continue;
        }
        for conds in &r.when {
            entries.push(serde_json::json!({ "syscall": r.name, "args": conds }));
        }
    }
    serde_json::json!({ "f": {
        "mismatch_action": action_json(mismatch),
        "match_action": action_json(matched),
        "filter": entries,
    }})
}

fn action_json(a: &SeccompAction) -> serde_json::Value {
    match a {
        SeccompAction::Allow => "allow".into(),
        SeccompAction::Errno(n) => serde_json::json!({ "errno": n }),
        SeccompAction::KillThread => "kill_thread".into(),
        SeccompAction::KillProcess => "kill_process".into(),
        SeccompAction::Log => "log".into(),
        SeccompAction::Trace(n) => serde_json::json!({ "trace": n }),
        SeccompAction::Trap => "trap".into(),
    }
}

/// One argument condition in seccompiler's JSON: `op` is `eq`, `ne`, `lt`,
/// `le`, `gt`, `ge` or `{"masked_eq": MASK}`.
fn condition(index: u32, op: serde_json::Value, value: u64) -> serde_json::Value {
    serde_json::json!({ "index": index, "type": "qword", "op": op, "val": value })
}

fn arch() -> Result<seccompiler::TargetArch> {
    seccompiler::TargetArch::try_from(std::env::consts::ARCH).map_err(|e| Error::Seccomp {
        reason: e.to_string(),
    })
}

/// docker's intent as a deny list: EPERM for each syscall above the
/// container may not make, everything else allowed.
fn default_rules(caps: CapabilitySet) -> Rules {
    let eperm = SeccompAction::Errno(libc::EPERM as u32);
    let deny = |name: &str| Rule {
        name: name.to_owned(),
        action: eperm.clone(),
        when: Vec::new(),
    };
    let mut rules: Vec<Rule> = ALWAYS_DENIED.iter().map(|n| deny(n)).collect();
    for (cap, names) in DENIED_WITHOUT {
        if !caps.contains(*cap) {
            rules.extend(names.iter().map(|n| deny(n)));
        }
    }
    if !caps.contains(CapabilitySet::SYS_ADMIN) {
        // clone's flags are its first argument on x86_64 and aarch64; each
        // namespace flag set is an alternative.
        rules.push(Rule {
            name: "clone".into(),
            action: eperm.clone(),
            when: CLONE_NAMESPACE_FLAGS
                .iter()
                .map(|f| vec![condition(0, serde_json::json!({ "masked_eq": f }), *f)])
                .collect(),
        });
        // clone3 takes its flags in memory, out of a filter's reach: ENOSYS
        // makes libc fall back to clone, as docker's profile does.
        rules.push(Rule {
            name: "clone3".into(),
            action: SeccompAction::Errno(libc::ENOSYS as u32),
            when: Vec::new(),
        });
    }
    Rules {
        default: SeccompAction::Allow,
        rules,
    }
}

/// A seccomp profile in docker's format: `defaultAction`,
/// `defaultErrnoRet`, and `syscalls` entries with `names` (or `name`),
/// `action`, `errnoRet`, `args` (`index`, `value`, `valueTwo`, `op`) and
/// docker's `includes`/`excludes` conditions (`caps`, `arches`,
/// `minKernel`), evaluated as moby does: against the container's
/// capabilities, this architecture and the running kernel. So docker's and
/// podman's own default profiles load as they are. `architectures` and
/// `archMap` are not needed (the native architecture is the one filtered).
/// A name this architecture has no system call for is skipped, as runc
/// skips it (docker's files list every architecture's calls).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Profile {
    default_action: String,
    #[serde(default, deserialize_with = "null_as_default")]
    default_errno_ret: Option<i32>,
    #[serde(default, deserialize_with = "null_as_default")]
    syscalls: Vec<ProfileRule>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ProfileRule {
    #[serde(default, deserialize_with = "null_as_default")]
    names: Vec<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    name: Option<String>,
    action: String,
    #[serde(default, deserialize_with = "null_as_default")]
    errno_ret: Option<i32>,
    #[serde(default, deserialize_with = "null_as_default")]
    args: Vec<ProfileArg>,
    #[serde(default, deserialize_with = "null_as_default")]
    includes: Condition,
    #[serde(default, deserialize_with = "null_as_default")]
    excludes: Condition,
}

/// docker's `includes` / `excludes` of a rule.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Condition {
    #[serde(default, deserialize_with = "null_as_default")]
    caps: Vec<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    arches: Vec<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    min_kernel: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ProfileArg {
    index: u32,
    value: u64,
    #[serde(default, deserialize_with = "null_as_default")]
    value_two: u64,
    op: String,
}

/// docker's files write `null` for an empty list or condition.
fn null_as_default<'de, D, T>(d: D) -> std::result::Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// This architecture as docker's profiles name it (Go's GOARCH), by its
/// own name, or by libseccomp's constant (which docker's files also use).
fn is_native_arch(name: &str) -> bool {
    matches!(
        (std::env::consts::ARCH, name),
        ("x86_64", "amd64" | "x86_64" | "SCMP_ARCH_X86_64")
            | ("aarch64", "arm64" | "aarch64" | "SCMP_ARCH_AARCH64")
    )
}

/// Whether the running kernel is at least `min` (`"4.8"`).
fn kernel_at_least(min: &str) -> Result<bool> {
    let parse = |v: &str| -> Option<(u32, u32)> {
        let mut it = v.split(|c: char| !c.is_ascii_digit());
        Some((it.next()?.parse().ok()?, it.next()?.parse().ok()?))
    };
    let want = parse(min).ok_or_else(|| invalid("seccomp minKernel", min, "use MAJOR.MINOR"))?;
    let uname = rustix::system::uname();
    let release = uname.release().to_string_lossy().into_owned();
    // A release this cannot read is taken as new enough.
    Ok(parse(&release).is_none_or(|have| have >= want))
}

impl Condition {
    /// Whether a rule with these `includes` applies.
    fn includes(&self, caps: CapabilitySet) -> Result<bool> {
        for c in &self.caps {
            if !caps.contains(parse_capability(c)?) {
                return Ok(false);
            }
        }
        if !self.arches.is_empty() && !self.arches.iter().any(|a| is_native_arch(a)) {
            return Ok(false);
        }
        match &self.min_kernel {
            Some(min) => kernel_at_least(min),
            None => Ok(true),
        }
    }

    /// Whether a rule with these `excludes` is left out.
    fn excludes(&self, caps: CapabilitySet) -> Result<bool> {
        for c in &self.caps {
            if caps.contains(parse_capability(c)?) {
                return Ok(true);
            }
        }
        if self.arches.iter().any(|a| is_native_arch(a)) {
            return Ok(true);
        }
        match &self.min_kernel {
            Some(min) => kernel_at_least(min),
            None => Ok(false),
        }
    }
}

fn action(name: &str, errno: Option<i32>) -> Result<SeccompAction> {
    let errno = || u32::try_from(errno.unwrap_or(libc::EPERM)).unwrap_or(libc::EPERM as u32);
    Ok(match name {
        "SCMP_ACT_ALLOW" => SeccompAction::Allow,
        "SCMP_ACT_ERRNO" => SeccompAction::Errno(errno()),
        "SCMP_ACT_KILL" | "SCMP_ACT_KILL_THREAD" => SeccompAction::KillThread,
        "SCMP_ACT_KILL_PROCESS" => SeccompAction::KillProcess,
        "SCMP_ACT_TRAP" => SeccompAction::Trap,
        "SCMP_ACT_LOG" => SeccompAction::Log,
        "SCMP_ACT_TRACE" => SeccompAction::Trace(errno()),
        _ => {
            return Err(invalid(
                "seccomp action",
                name,
                "use SCMP_ACT_ALLOW, SCMP_ACT_ERRNO, SCMP_ACT_KILL, SCMP_ACT_KILL_PROCESS, SCMP_ACT_TRAP, SCMP_ACT_LOG or SCMP_ACT_TRACE",
            ))
        }
    })
}

impl Profile {
    /// Reads a profile and compiles it once for `caps`, so that every
    /// action, comparison, name and capability is checked now.
    fn parse(text: &str, caps: CapabilitySet) -> Result<Profile> {
        let p: Profile = serde_json::from_str(text)
            .map_err(|e| invalid("seccomp profile", "", e.to_string()))?;
        let rules = p.rules(caps)?;
        let named = !rules.rules.is_empty();
        let compiled = rules.clone().compile()?;
        if named
            && compiled.iter().all(|prog| prog.len() <= MIN_PROGRAM)
            && rules.default == SeccompAction::Allow
        {
            return Err(invalid(
                "seccomp profile",
                "",
                "none of its system call names is one of this architecture's",
            ));
        }
        Ok(p)
    }

    /// Its rules for a container with capabilities `caps`.
    fn rules(&self, caps: CapabilitySet) -> Result<Rules> {
        let default = action(
            &self.default_action,
            self.default_errno_ret.or(Some(libc::EPERM)),
        )?;
        let mut rules = Vec::new();
        for rule in &self.syscalls {
            if !rule.includes.includes(caps)? || rule.excludes.excludes(caps)? {
                continue;
            }
            let act = action(&rule.action, rule.errno_ret)?;
            let mut conds = Vec::new();
            for a in &rule.args {
                let (op, value) = match a.op.as_str() {
                    "SCMP_CMP_MASKED_EQ" => {
                        (serde_json::json!({ "masked_eq": a.value }), a.value_two)
                    }
                    "SCMP_CMP_EQ" => ("eq".into(), a.value),
                    "SCMP_CMP_NE" => ("ne".into(), a.value),
                    "SCMP_CMP_LT" => ("lt".into(), a.value),
                    "SCMP_CMP_LE" => ("le".into(), a.value),
                    "SCMP_CMP_GT" => ("gt".into(), a.value),
                    "SCMP_CMP_GE" => ("ge".into(), a.value),
                    other => {
                        return Err(invalid(
                            "seccomp comparison",
                            other,
                            "use SCMP_CMP_NE, _LT, _LE, _EQ, _GE, _GT or _MASKED_EQ",
                        ))
                    }
                };
                if a.index > 5 {
                    return Err(invalid(
                        "seccomp argument index",
                        a.index.to_string(),
                        "a system call has arguments 0 to 5",
                    ));
                }
                conds.push((a.index, condition(a.index, op, value)));
            }
            // As runc: comparisons of different arguments must all hold (one
            // rule); several on the same argument are alternatives (a rule
            // each), since one argument cannot equal two values at once.
            let same_index = conds
                .iter()
                .enumerate()
                .any(|(i, (x, _))| conds[..i].iter().any(|(y, _)| x == y));
            let when: Vec<Vec<serde_json::Value>> = if conds.is_empty() {
                Vec::new()
            } else if same_index {
                conds.into_iter().map(|(_, c)| vec![c]).collect()
            } else {
                vec![conds.into_iter().map(|(_, c)| c).collect()]
            };
            for name in rule.names.iter().chain(rule.name.iter()) {
                rules.push(Rule {
                    name: name.clone(),
                    action: act.clone(),
                    when: when.clone(),
                });
            }
        }
        Ok(Rules { default, rules })
    }
}

/// The instructions of a filter with no rule (the architecture check and
/// the default): a profile that compiles to no more named nothing known.
const MIN_PROGRAM: usize = 4;

impl Isolation {
    /// What the forked child applies: the capabilities and seccomp program
    /// (built now, before the fork) and `no_new_privs`.
    pub(crate) fn confine(&self) -> Result<crate::spawn::Confine> {
        Ok(crate::spawn::Confine {
            keep: self.capabilities()?,
            seccomp: self.seccomp_programs()?,
            no_new_privs: self.no_new_privileges,
        })
    }

    /// What a root filesystem of its own gets besides /proc, /sys, /dev.
    pub(crate) fn rootfs_options(&self) -> crate::spawn::RootfsOptions {
        crate::spawn::RootfsOptions {
            mask: !self.privileged,
            read_only: self.read_only,
            mounts: self.mounts.clone(),
            devices: self.devices.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_capabilities_are_dockers_and_add_drop_and_all_apply() {
        let iso = Isolation::default();
        let caps = iso.capabilities().expect("caps");
        assert_eq!(caps.bits().count_ones(), 14);
        assert!(caps.contains(CapabilitySet::MKNOD | CapabilitySet::NET_RAW));
        assert!(!caps.contains(CapabilitySet::SYS_ADMIN));
        let iso = Isolation {
            cap_drop: vec!["ALL".into()],
            cap_add: vec!["cap_net_admin".into(), "CHOWN".into()],
            ..Isolation::default()
        };
        assert_eq!(
            iso.capabilities().expect("caps"),
            CapabilitySet::NET_ADMIN | CapabilitySet::CHOWN
        );
        let iso = Isolation {
            cap_drop: vec!["MKNOD".into()],
            ..Isolation::default()
        };
        assert!(!iso
            .capabilities()
            .expect("caps")
            .contains(CapabilitySet::MKNOD));
        let bad = Isolation {
            cap_add: vec!["NOSUCH".into()],
            ..Isolation::default()
        };
        let e = bad.capabilities().expect_err("unknown");
        assert!(e.is_invalid(), "{e}");
        assert!(Isolation {
            privileged: true,
            ..Isolation::default()
        }
        .capabilities()
        .expect("all")
        .contains(CapabilitySet::SYS_ADMIN));
    }

    #[test]
    fn the_default_program_builds_and_unconfined_and_privileged_have_none() {
        let p = Isolation::default().seccomp_programs().expect("build");
        assert_eq!(p.len(), 2, "EPERM's and clone3's ENOSYS");
        assert!(p[0].len() > 10);
        for iso in [
            Isolation {
                seccomp: Seccomp::Unconfined,
                ..Isolation::default()
            },
            Isolation {
                privileged: true,
                ..Isolation::default()
            },
        ] {
            assert!(iso.seccomp_programs().expect("none").is_empty());
        }
    }

    #[test]
    fn a_docker_profile_is_read_and_a_bad_one_refused() {
        let good = r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[
            {"names":["mkdir","mkdirat"],"action":"SCMP_ACT_ERRNO","errnoRet":13},
            {"names":["personality"],"action":"SCMP_ACT_ERRNO","args":[{"index":0,"value":8,"valueTwo":0,"op":"SCMP_CMP_EQ"}]}]}"#;
        let iso = Isolation {
            seccomp: Seccomp::Profile(good.into()),
            ..Isolation::default()
        };
        iso.validate(false).expect("valid");
        assert!(!iso.seccomp_programs().expect("build").is_empty());
        for bad in [
            "{",
            r#"{"defaultAction":"SCMP_ACT_NOPE"}"#,
            r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["nosuchcall"],"action":"SCMP_ACT_ERRNO"}]}"#,
            r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mount"],"action":"SCMP_ACT_ERRNO","includes":{"caps":["CAP_NOSUCH"]}}]}"#,
            r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mount"],"action":"SCMP_ACT_ERRNO","args":[{"index":0,"value":1,"op":"SCMP_CMP_ALMOST"}]}]}"#,
        ] {
            let e = Isolation {
                seccomp: Seccomp::Profile(bad.into()),
                ..Isolation::default()
            }
            .validate(false)
            .expect_err(bad);
            assert!(e.is_invalid(), "{e}");
        }
    }

    #[test]
    fn includes_and_excludes_are_weighed_as_moby_does() {
        let default = Isolation::default().capabilities().expect("caps");
        let admin = default | CapabilitySet::SYS_ADMIN;
        let cond = |caps: &[&str], arches: &[&str], min: Option<&str>| Condition {
            caps: caps.iter().map(|c| (*c).to_owned()).collect(),
            arches: arches.iter().map(|c| (*c).to_owned()).collect(),
            min_kernel: min.map(str::to_owned),
        };
        let sys_admin = cond(&["CAP_SYS_ADMIN"], &[], None);
        assert!(!sys_admin.includes(default).expect("includes"));
        assert!(sys_admin.includes(admin).expect("includes"));
        assert!(!sys_admin.excludes(default).expect("excludes"));
        assert!(sys_admin.excludes(admin).expect("excludes"));
        assert!(Condition::default().includes(default).expect("empty"));
        assert!(!Condition::default().excludes(default).expect("empty"));
        assert!(cond(&[], &["amd64", "x32"], None)
            .includes(default)
            .expect("arch"));
        assert!(!cond(&[], &["s390x"], None).includes(default).expect("arch"));
        assert!(cond(&[], &[], Some("3.0"))
            .includes(default)
            .expect("kernel"));
        assert!(!cond(&[], &[], Some("999.0"))
            .includes(default)
            .expect("kernel"));
        assert!(cond(&[], &[], Some("x")).includes(default).is_err());
    }

    #[test]
    fn volumes_need_a_root_filesystem_absolute_paths_and_an_existing_source() {
        let bind = |s: &str, t: &str| Isolation {
            mounts: vec![Mount::Bind {
                source: s.into(),
                target: t.into(),
                readonly: false,
            }],
            ..Isolation::default()
        };
        bind("/tmp", "/data").validate(true).expect("valid");
        for (iso, rootfs, says) in [
            (bind("/tmp", "/data"), false, "root filesystem of its own"),
            (bind("tmp", "/data"), true, "absolute host path"),
            (bind("/tmp", "data"), true, "absolute path"),
            (bind("/tmp", "/"), true, "other than /"),
            (bind("/nosuch-stasis-dir", "/data"), true, "no such file"),
            (
                Isolation {
                    mounts: vec![Mount::Tmpfs {
                        target: "/t".into(),
                        options: "size=1m,bogus".into(),
                    }],
                    ..Isolation::default()
                },
                true,
                "tmpfs takes",
            ),
        ] {
            let e = iso.validate(rootfs).expect_err(says);
            assert!(e.is_invalid() && e.to_string().contains(says), "{e}");
        }
    }

    #[test]
    fn device_rules_start_from_dockers_defaults_and_add_each_device() {
        let rules = Isolation {
            devices: vec![Device {
                host: "/dev/null".into(),
                container: "/dev/mynull".into(),
            }],
            ..Isolation::default()
        }
        .device_rules()
        .expect("rules")
        .expect("confined");
        assert_eq!(rules.len(), DEFAULT_DEVICE_RULES.len() + 1);
        assert_eq!(rules.last().map(String::as_str), Some("c 1:3 rwm"));
        let e = device_rule(Path::new("/tmp")).expect_err("not a device");
        assert!(e.is_invalid(), "{e}");
    }
}
