//! A container's device rules as a cgroup2 device program: the eBPF
//! program (`BPF_PROG_TYPE_CGROUP_DEVICE`) that confines device access on
//! hosts without the v1 `devices` hierarchy, attached to the container's
//! cgroup2 leaf (`BPF_PROG_ATTACH` with `BPF_CGROUP_DEVICE`,
//! `BPF_F_ALLOW_MULTI` so that programs of the leaf's ancestors, systemd's
//! among them, still run: access needs every one to allow it).
//!
//! The rules are the v1 ones, as text (`c 1:3 rwm`, `b *:* m`), so one
//! list serves both hierarchies. The kernel runs the program on every
//! `open` and `mknod` of a device node by a process in the leaf, with a
//! `struct bpf_cgroup_dev_ctx` (include/uapi/linux/bpf.h): `access_type`
//! (the access bits `BPF_DEVCG_ACC_MKNOD|READ|WRITE` above bit 16, the
//! device type `BPF_DEVCG_DEV_BLOCK|CHAR` below), `major`, `minor`; a
//! return of 1 allows, 0 refuses with `EPERM`. The program is one block
//! per rule (each check jumps to the next block; a block that passes
//! returns 1), then a return of 0. The instructions come from `rbpf`'s
//! builder, not from hand-made bytes.
//!
//! The program stays attached after its descriptors are closed, until the
//! leaf is removed. Kernel interface: bpf(2), `BPF_PROG_LOAD` and
//! `BPF_PROG_ATTACH`, of which stasis fills the first fields itself (the
//! kernel takes a shorter `union bpf_attr` and reads the rest as zero).

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

use rbpf::insn_builder::{Arch, BpfCode, Cond, Instruction, IntoBytes, MemSize, Source};

use crate::error::{Error, Result};

/// `BPF_DEVCG_ACC_*` and `BPF_DEVCG_DEV_*`.
const ACC_MKNOD: i32 = 1;
const ACC_READ: i32 = 2;
const ACC_WRITE: i32 = 4;
const DEV_BLOCK: i32 = 1;
const DEV_CHAR: i32 = 2;

/// One rule: a device type (`None`: any), major and minor (`None`: any),
/// and the access bits it allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    pub kind: Option<i32>,
    pub major: Option<u32>,
    pub minor: Option<u32>,
    pub access: i32,
}

impl Rule {
    /// Parses a v1 rule: `TYPE MAJOR:MINOR ACCESS` (`c 1:3 rwm`,
    /// `b *:* m`), or `a` for every device and access.
    pub fn parse(text: &str) -> Result<Rule> {
        let bad = |reason: &'static str| Error::InvalidArgument {
            what: "device rule",
            value: text.to_owned(),
            reason,
        };
        let mut words = text.split_whitespace();
        let kind = match words.next() {
            Some("a") => None,
            Some("c") => Some(DEV_CHAR),
            Some("b") => Some(DEV_BLOCK),
            _ => return Err(bad("it starts with a, b or c")),
        };
        let Some(numbers) = words.next() else {
            return match kind {
                None => Ok(Rule {
                    kind,
                    major: None,
                    minor: None,
                    access: ACC_MKNOD | ACC_READ | ACC_WRITE,
                }),
                Some(_) => Err(bad("MAJOR:MINOR is missing")),
            };
        };
        let (major, minor) = numbers
            .split_once(':')
            .ok_or_else(|| bad("the numbers are MAJOR:MINOR"))?;
        let number = |s: &str| match s {
            "*" => Ok(None),
            n => n
                .parse()
                .map(Some)
                .map_err(|_| bad("a number is * or digits")),
        };
        let mut access = 0;
        for c in words.next().unwrap_or("rwm").chars() {
            access |= match c {
                'r' => ACC_READ,
                'w' => ACC_WRITE,
                'm' => ACC_MKNOD,
                _ => return Err(bad("the access is of r, w and m")),
            };
        }
        if words.next().is_some() {
            return Err(bad("it has three words"));
        }
        Ok(Rule {
            kind,
            major: number(major)?,
            minor: number(minor)?,
            access,
        })
    }
}

/// The program allowing exactly what `rules` allow, as eBPF instructions
/// (8 bytes each).
pub fn program(rules: &[Rule]) -> Vec<u8> {
    let mut code = BpfCode::new();
    // r2 = access_type; r3 = its device type; r2 = its access bits;
    // r4 = major; r5 = minor.
    code.load_x(MemSize::Word)
        .set_dst(2)
        .set_src(1)
        .set_off(0)
        .push();
    code.mov(Source::Reg, Arch::X64)
        .set_dst(3)
        .set_src(2)
        .push();
    code.bit_and(Source::Imm, Arch::X64)
        .set_dst(3)
        .set_imm(0xffff)
        .push();
    code.right_shift(Source::Imm, Arch::X64)
        .set_dst(2)
        .set_imm(16)
        .push();
    code.load_x(MemSize::Word)
        .set_dst(4)
        .set_src(1)
        .set_off(4)
        .push();
    code.load_x(MemSize::Word)
        .set_dst(5)
        .set_src(1)
        .set_off(8)
        .push();
    for rule in rules {
        // Each check: (register, condition, value); jumping means "not
        // this rule".
        let all = ACC_MKNOD | ACC_READ | ACC_WRITE;
        let mut checks: Vec<(u8, Cond, i32)> = Vec::new();
        if let Some(kind) = rule.kind {
            checks.push((3, Cond::NotEquals, kind));
        }
        if rule.access & all != all {
            // Any asked bit outside the allowed ones.
            checks.push((2, Cond::BitAnd, !rule.access & all));
        }
        if let Some(major) = rule.major {
            checks.push((4, Cond::NotEquals, major as i32));
        }
        if let Some(minor) = rule.minor {
            checks.push((5, Cond::NotEquals, minor as i32));
        }
        let n = checks.len();
        for (i, (reg, cond, value)) in checks.into_iter().enumerate() {
            // Past the remaining checks and the block's two instructions.
            let skip = (n - i - 1 + 2) as i16;
            code.jump_conditional(cond, Source::Imm)
                .set_dst(reg)
                .set_imm(value)
                .set_off(skip)
                .push();
        }
        code.mov(Source::Imm, Arch::X64)
            .set_dst(0)
            .set_imm(1)
            .push();
        code.exit().push();
    }
    code.mov(Source::Imm, Arch::X64)
        .set_dst(0)
        .set_imm(0)
        .push();
    code.exit().push();
    (&code).into_bytes().to_vec()
}

/// Loads the program of `rules` and attaches it to the cgroup2 directory
/// `dir` (before any process is moved in).
pub fn confine(dir: &Path, rules: &[Rule]) -> Result<()> {
    let insns = program(rules);
    let prog = load(&insns).map_err(|source| Error::DeviceProgram {
        path: dir.to_owned(),
        step: "loading",
        source,
    })?;
    let cgroup = std::fs::File::open(dir).map_err(|source| Error::DeviceProgram {
        path: dir.to_owned(),
        step: "opening the cgroup of",
        source,
    })?;
    attach(&cgroup, &prog).map_err(|source| Error::DeviceProgram {
        path: dir.to_owned(),
        step: "attaching",
        source,
    })
}

const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_PROG_ATTACH: libc::c_long = 8;
const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const BPF_CGROUP_DEVICE: u32 = 6;
const BPF_F_ALLOW_MULTI: u32 = 2;

/// The `BPF_PROG_LOAD` fields of `union bpf_attr` up to `prog_flags`.
#[repr(C)]
struct ProgLoad {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
}

/// The `BPF_PROG_ATTACH` fields of `union bpf_attr`.
#[repr(C)]
struct ProgAttach {
    target_fd: u32,
    attach_bpf_fd: u32,
    attach_type: u32,
    attach_flags: u32,
}

fn bpf<T>(cmd: libc::c_long, attr: &mut T) -> std::io::Result<libc::c_long> {
    // SAFETY: `attr` is a `repr(C)` prefix of `union bpf_attr` for `cmd`,
    // valid for the call; the kernel reads (and zero-extends) exactly
    // `size_of::<T>()` bytes of it.
    let r = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr as *mut T,
            std::mem::size_of::<T>() as libc::c_uint,
        )
    };
    if r < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(r)
}

fn load(insns: &[u8]) -> std::io::Result<OwnedFd> {
    let license = c"Apache-2.0";
    let mut log = vec![0u8; 4096];
    let mut attr = ProgLoad {
        prog_type: BPF_PROG_TYPE_CGROUP_DEVICE,
        insn_cnt: (insns.len() / 8) as u32,
        insns: insns.as_ptr() as u64,
        license: license.as_ptr() as u64,
        log_level: 0,
        log_size: 0,
        log_buf: 0,
        kern_version: 0,
        prog_flags: 0,
    };
    match bpf(BPF_PROG_LOAD, &mut attr) {
        // SAFETY: BPF_PROG_LOAD returns a new descriptor that we own.
        Ok(fd) => Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) }),
        Err(e)
            if e.raw_os_error() == Some(libc::EACCES) || e.raw_os_error() == Some(libc::EINVAL) =>
        {
            // The verifier refused it: load again for its reason.
            attr.log_level = 1;
            attr.log_size = log.len() as u32;
            attr.log_buf = log.as_mut_ptr() as u64;
            let _ = bpf(BPF_PROG_LOAD, &mut attr);
            let end = log.iter().position(|b| *b == 0).unwrap_or(log.len());
            let reason = String::from_utf8_lossy(&log[..end]);
            let last = reason
                .lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("");
            Err(std::io::Error::new(
                e.kind(),
                format!("{e}: the verifier says {last:?}"),
            ))
        }
        Err(e) => Err(e),
    }
}

fn attach(cgroup: &std::fs::File, prog: &OwnedFd) -> std::io::Result<()> {
    let mut attr = ProgAttach {
        target_fd: cgroup.as_raw_fd() as u32,
        attach_bpf_fd: prog.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        attach_flags: BPF_F_ALLOW_MULTI,
    };
    bpf(BPF_PROG_ATTACH, &mut attr).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs the program in rbpf's interpreter on one access.
    fn allows(rules: &[&str], kind: i32, access: i32, major: u32, minor: u32) -> bool {
        let rules: Vec<_> = rules
            .iter()
            .map(|r| Rule::parse(r).expect("rule"))
            .collect();
        let prog = program(&rules);
        let vm = rbpf::EbpfVmRaw::new(Some(&prog)).expect("a program rbpf accepts");
        let mut ctx = Vec::new();
        ctx.extend_from_slice(&(((access as u32) << 16) | kind as u32).to_ne_bytes());
        ctx.extend_from_slice(&major.to_ne_bytes());
        ctx.extend_from_slice(&minor.to_ne_bytes());
        match vm.execute_program(&mut ctx).expect("runs") {
            0 => false,
            1 => true,
            other => panic!("returned {other}"),
        }
    }

    const DOCKER: &[&str] = &[
        "c *:* m",
        "b *:* m",
        "c 1:3 rwm",
        "c 5:2 rwm",
        "c 136:* rwm",
    ];

    #[test]
    fn dockers_rules_allow_mknod_and_the_default_devices_only() {
        let (c, b) = (DEV_CHAR, DEV_BLOCK);
        // mknod of anything, the host's disk (8:0) included.
        assert!(allows(DOCKER, b, ACC_MKNOD, 8, 0));
        assert!(allows(DOCKER, c, ACC_MKNOD, 10, 200));
        // ... but not opening it.
        assert!(!allows(DOCKER, b, ACC_READ, 8, 0));
        assert!(!allows(DOCKER, b, ACC_READ | ACC_WRITE, 8, 0));
        assert!(!allows(DOCKER, c, ACC_READ, 1, 1), "/dev/mem");
        // null, ptmx and every pts.
        assert!(allows(DOCKER, c, ACC_READ | ACC_WRITE, 1, 3));
        assert!(allows(DOCKER, c, ACC_READ | ACC_WRITE, 5, 2));
        assert!(allows(DOCKER, c, ACC_READ | ACC_WRITE, 136, 7));
        // The type counts: a block device 1:3 is not null.
        assert!(!allows(DOCKER, b, ACC_READ, 1, 3));
        // Access beyond the rule's: mknod alone does not give read.
        assert!(!allows(&["c *:* m"], c, ACC_MKNOD | ACC_READ, 4, 1));
    }

    #[test]
    fn no_rules_refuse_everything_and_a_allows_everything() {
        assert!(!allows(&[], DEV_CHAR, ACC_READ, 1, 3));
        assert!(allows(
            &["a"],
            DEV_BLOCK,
            ACC_READ | ACC_WRITE | ACC_MKNOD,
            8,
            0
        ));
        assert!(allows(&["b 8:* r"], DEV_BLOCK, ACC_READ, 8, 3));
        assert!(!allows(&["b 8:* r"], DEV_BLOCK, ACC_WRITE, 8, 3));
    }

    #[test]
    fn bad_rules_are_refused() {
        for bad in [
            "",
            "x 1:3 rwm",
            "c 1-3 rwm",
            "c 1:x rwm",
            "c 1:3 rwx",
            "c",
            "c 1:3 r w",
        ] {
            assert!(Rule::parse(bad).is_err(), "{bad:?}");
        }
    }
}
