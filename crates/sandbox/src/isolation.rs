//! What confines a container, decided before its process is forked: its
//! capability set, its seccomp program, its device rules, its volumes. The
//! forked child only applies them (`spawn`).
//!
//! Defaults follow docker's, each with docker's opt-out:
//! - capabilities: docker's default list ([`DEFAULT_CAPS`]) as the bounding,
//!   permitted and effective sets, inheritable and ambient cleared;
//!   `cap_add` / `cap_drop` (`ALL` too), `privileged` keeps every one;
//! - seccomp: a program built with libseccomp (never hand-written BPF) that
//!   answers EPERM to what docker's default profile denies — for
//!   syscalls docker allows only with a capability (`mount` with
//!   CAP_SYS_ADMIN, `reboot` with CAP_SYS_BOOT...), only when the container
//!   lacks it; `unconfined`, or a profile in docker's JSON format;
//! - devices: docker's default device rules in the container's leaf of the
//!   v1 `devices` hierarchy (`devices.deny`, `devices.allow`), plus each
//!   `--device`.
//!
//! A seccomp program is exported with `seccomp_export_bpf` into a memfd and
//! read back, so the child installs it with one `prctl` and allocates
//! nothing.

use std::io::{Read, Seek};
use std::path::{Path, PathBuf};

use libseccomp::{ScmpAction, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext, ScmpSyscall};
use rustix::thread::CapabilitySet;
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

    /// The seccomp program (BPF instructions) to install, if any.
    pub fn seccomp_program(&self) -> Result<Option<Vec<libc::sock_filter>>> {
        if self.privileged {
            return Ok(None);
        }
        let ctx = match &self.seccomp {
            Seccomp::Unconfined => return Ok(None),
            Seccomp::Default => default_filter(self.capabilities()?)?,
            Seccomp::Profile(text) => {
                let caps = self.capabilities()?;
                Profile::parse(text, caps)?.filter(caps)?
            }
        };
        export(&ctx).map(Some)
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

fn seccomp_err(source: libseccomp::error::SeccompError) -> Error {
    Error::Seccomp { source }
}

/// docker's intent as a deny list: EPERM for each syscall above the
/// container may not make, everything else allowed.
fn default_filter(caps: CapabilitySet) -> Result<ScmpFilterContext> {
    let mut ctx = ScmpFilterContext::new(ScmpAction::Allow).map_err(seccomp_err)?;
    let eperm = ScmpAction::Errno(libc::EPERM);
    let deny = |ctx: &mut ScmpFilterContext, name: &str| -> Result<()> {
        // A name this architecture has no number for has nothing to deny.
        match ScmpSyscall::from_name(name) {
            Ok(sc) => ctx.add_rule(eperm, sc).map(drop).or_else(|e| {
                if sc.as_raw_syscall() < 0 {
                    Ok(())
                } else {
                    Err(seccomp_err(e))
                }
            }),
            Err(_) => Ok(()),
        }
    };
    for name in ALWAYS_DENIED {
        deny(&mut ctx, name)?;
    }
    for (cap, names) in DENIED_WITHOUT {
        if !caps.contains(*cap) {
            for name in *names {
                deny(&mut ctx, name)?;
            }
        }
    }
    if !caps.contains(CapabilitySet::SYS_ADMIN) {
        let clone = ScmpSyscall::from_name("clone").map_err(seccomp_err)?;
        // clone's flags are its first argument on x86_64 (the second on s390x,
        // which stasis does not build for).
        for flag in CLONE_NAMESPACE_FLAGS {
            ctx.add_rule_conditional(
                eperm,
                clone,
                &[ScmpArgCompare::new(
                    0,
                    ScmpCompareOp::MaskedEqual(flag),
                    flag,
                )],
            )
            .map_err(seccomp_err)?;
        }
        // clone3 takes its flags in memory, out of a filter's reach: ENOSYS
        // makes libc fall back to clone, as docker's profile does.
        if let Ok(clone3) = ScmpSyscall::from_name("clone3") {
            ctx.add_rule(ScmpAction::Errno(libc::ENOSYS), clone3)
                .map_err(seccomp_err)?;
        }
    }
    Ok(ctx)
}

/// The BPF instructions of a filter, through a memfd.
fn export(ctx: &ScmpFilterContext) -> Result<Vec<libc::sock_filter>> {
    let io = |e: std::io::Error| Error::ExportSeccomp { source: e };
    let fd = rustix::fs::memfd_create("stasis-seccomp", rustix::fs::MemfdFlags::CLOEXEC)
        .map_err(|e| io(e.into()))?;
    ctx.export_bpf(&fd).map_err(seccomp_err)?;
    let mut file = std::fs::File::from(fd);
    file.rewind().map_err(io)?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes).map_err(io)?;
    const SIZE: usize = std::mem::size_of::<libc::sock_filter>();
    if bytes.is_empty() || bytes.len() % SIZE != 0 {
        return Err(io(std::io::Error::other(format!(
            "{} bytes is not a whole number of BPF instructions",
            bytes.len()
        ))));
    }
    Ok(bytes
        .chunks_exact(SIZE)
        .map(|i| libc::sock_filter {
            code: u16::from_ne_bytes([i[0], i[1]]),
            jt: i[2],
            jf: i[3],
            k: u32::from_ne_bytes([i[4], i[5], i[6], i[7]]),
        })
        .collect())
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

/// This architecture as docker's profiles name it (Go's GOARCH) or as
/// libseccomp does.
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

fn action(name: &str, errno: Option<i32>) -> Result<ScmpAction> {
    let errno = match name {
        "SCMP_ACT_ERRNO" => Some(errno.unwrap_or(libc::EPERM)),
        "SCMP_ACT_TRACE" => Some(errno.unwrap_or(libc::EPERM)),
        _ => None,
    };
    ScmpAction::from_str(name, errno).map_err(|_| {
        invalid(
            "seccomp action",
            name,
            "use SCMP_ACT_ALLOW, SCMP_ACT_ERRNO, SCMP_ACT_KILL, SCMP_ACT_KILL_PROCESS, SCMP_ACT_TRAP, SCMP_ACT_LOG",
        )
    })
}

impl Profile {
    /// Reads a profile and builds it once for `caps`, so that every
    /// action, comparison and capability name is checked now.
    fn parse(text: &str, caps: CapabilitySet) -> Result<Profile> {
        let p: Profile = serde_json::from_str(text)
            .map_err(|e| invalid("seccomp profile", "", e.to_string()))?;
        p.filter(caps)?;
        Ok(p)
    }

    /// The filter for a container with capabilities `caps`.
    fn filter(&self, caps: CapabilitySet) -> Result<ScmpFilterContext> {
        let default = action(
            &self.default_action,
            self.default_errno_ret.or(Some(libc::EPERM)),
        )?;
        let mut ctx = ScmpFilterContext::new(default).map_err(seccomp_err)?;
        let mut known = 0usize;
        for rule in &self.syscalls {
            if !rule.includes.includes(caps)? || rule.excludes.excludes(caps)? {
                continue;
            }
            let act = action(&rule.action, rule.errno_ret)?;
            let mut compares = Vec::new();
            for a in &rule.args {
                let op = match a.op.as_str() {
                    "SCMP_CMP_MASKED_EQ" => ScmpCompareOp::MaskedEqual(a.value),
                    other => other.parse::<ScmpCompareOp>().map_err(|_| {
                        invalid(
                            "seccomp comparison",
                            other,
                            "use SCMP_CMP_NE, _LT, _LE, _EQ, _GE, _GT or _MASKED_EQ",
                        )
                    })?,
                };
                let datum = if matches!(op, ScmpCompareOp::MaskedEqual(_)) {
                    a.value_two
                } else {
                    a.value
                };
                compares.push((a.index, ScmpArgCompare::new(a.index, op, datum)));
            }
            // As runc: comparisons of different arguments must all hold (one
            // rule); several on the same argument are alternatives (a rule
            // each), since one argument cannot equal two values at once.
            let same_index = compares
                .iter()
                .enumerate()
                .any(|(i, (x, _))| compares[..i].iter().any(|(y, _)| x == y));
            let rules: Vec<Vec<ScmpArgCompare>> = if same_index {
                compares.into_iter().map(|(_, c)| vec![c]).collect()
            } else {
                vec![compares.into_iter().map(|(_, c)| c).collect()]
            };
            if act == default {
                // libseccomp refuses a rule that repeats the default action.
                continue;
            }
            for name in rule.names.iter().chain(rule.name.iter()) {
                let Ok(sc) = ScmpSyscall::from_name(name) else {
                    continue;
                };
                known += 1;
                for conds in &rules {
                    let added = if conds.is_empty() {
                        ctx.add_rule(act, sc)
                    } else {
                        ctx.add_rule_conditional(act, sc, conds)
                    };
                    // A syscall this architecture lacks (a negative pseudo
                    // number) has nothing to filter.
                    if let Err(e) = added {
                        if sc.as_raw_syscall() >= 0 {
                            return Err(seccomp_err(e));
                        }
                    }
                }
            }
        }
        let named = self
            .syscalls
            .iter()
            .any(|r| !r.names.is_empty() || r.name.is_some());
        if named && known == 0 {
            return Err(invalid(
                "seccomp profile",
                "",
                "none of its system call names is one of this architecture's",
            ));
        }
        Ok(ctx)
    }
}

impl Isolation {
    /// What the forked child applies: the capabilities and seccomp program
    /// (built now, before the fork) and `no_new_privs`.
    pub(crate) fn confine(&self) -> Result<crate::spawn::Confine> {
        Ok(crate::spawn::Confine {
            keep: self.capabilities()?,
            seccomp: self.seccomp_program()?,
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
        let p = Isolation::default().seccomp_program().expect("build");
        assert!(p.is_some_and(|p| p.len() > 10));
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
            assert!(iso.seccomp_program().expect("none").is_none());
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
        assert!(iso.seccomp_program().expect("build").is_some());
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
