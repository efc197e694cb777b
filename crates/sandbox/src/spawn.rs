//! Starting processes inside a pod — with `devices`' bpf(2) calls, the
//! crate's only unsafe code.
//!
//! Each spawn runs a closure in the forked child before `exec` (std's
//! `pre_exec`), where only the calling thread exists: there it joins or
//! creates namespaces, moves itself into its cgroup leaves (writing `0` to
//! `cgroup.procs` means "this process"), and for a container with its own
//! root filesystem mounts /proc, /sys (docker's masked and read-only paths
//! over them), a minimal /dev and its volumes, and pivots into it. Last it
//! confines itself (see `isolation` for what): `no_new_privs`, the
//! capability bounding set (`prctl(PR_CAPBSET_DROP)`), the ambient set, the
//! user, `capset`, and the seccomp program (`prctl(PR_SET_SECCOMP)`).
//! Everything the closure needs (paths as C strings, descriptors, the
//! seccomp program's instructions) is made before the fork, so the child
//! allocates nothing but what std itself does.
//!
//! A setup step that fails in the child is reported through a pipe of our
//! own (one byte: which step), because std passes only the errno back: an
//! ENOENT from `chdir` must not read as "command not found".
//!
//! The PID namespace is the exception: `setns`/`unshare` with `CLONE_NEWPID`
//! only decide which namespace the caller's *next children* are born in, so
//! the parent switches its own "PID namespace for children" around the spawn
//! and restores it after. That affects the calling thread only.

use std::ffi::CString;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};

use rustix::fs::{Mode, OFlags};
use rustix::pipe::PipeFlags;

use rustix::mount::{MountFlags, MountPropagationFlags, UnmountFlags};
use rustix::thread::{CapabilitySet, CapabilitySets, LinkNameSpaceType, UnshareFlags};

use crate::error::{Error, Result};
use crate::ns::Namespace;

/// What the pause process needs.
#[derive(Debug)]
pub(crate) struct PauseSpawn<'a> {
    /// The host's `/proc` (for `self/ns/pid`).
    pub proc: &'a Path,
    pub binary: &'a Path,
    pub share: &'a [Namespace],
    pub hostname: &'a str,
    pub node_procs: Vec<PathBuf>,
    pub leaf_procs: Vec<PathBuf>,
}

/// Starts `stasis-pause` in new namespaces (PID 1 of a new PID namespace
/// when `pid` is shared), in its cgroup leaf, in a session of its own.
pub(crate) fn spawn_pause(spec: &PauseSpawn<'_>) -> Result<Child> {
    let node = c_paths(&spec.node_procs)?;
    let leaf = c_paths(&spec.leaf_procs)?;
    let hostname = spec.hostname.as_bytes().to_vec();
    let mut flags = UnshareFlags::empty();
    for ns in spec.share {
        flags |= match ns {
            Namespace::Net => UnshareFlags::NEWNET,
            Namespace::Ipc => UnshareFlags::NEWIPC,
            Namespace::Uts => UnshareFlags::NEWUTS,
            Namespace::Pid | Namespace::Cgroup => UnshareFlags::empty(),
        };
    }
    let cgroupns = spec.share.contains(&Namespace::Cgroup);
    let mut cmd = Command::new(spec.binary);
    cmd.stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    // SAFETY: the closure runs in the forked child before exec and only
    // makes syscalls on data prepared before the fork (C strings, bytes).
    unsafe {
        cmd.pre_exec(move || {
            rustix::process::setsid()?;
            leave_real_time()?;
            if cgroupns {
                // Rooted at the pod node, so members see the pod as `/`.
                for p in &node {
                    write_self(p)?;
                }
                unshare(UnshareFlags::NEWCGROUP)?;
            }
            for p in &leaf {
                write_self(p)?;
            }
            unshare(flags)?;
            if flags.contains(UnshareFlags::NEWUTS) {
                rustix::system::sethostname(&hostname)?;
            }
            if flags.contains(UnshareFlags::NEWNET) {
                loopback_up()?;
            }
            Ok(())
        });
    }
    let new_pid_ns = spec.share.contains(&Namespace::Pid);
    with_pid_namespace(spec.proc, new_pid_ns.then_some(PidNs::New), || cmd.spawn()).map_err(
        |source| Error::SpawnPause {
            binary: spec.binary.to_owned(),
            source,
        },
    )
}

/// What a pod member (a container's process, or an exec) needs.
#[derive(Debug)]
pub(crate) struct MemberSpawn {
    /// The host's `/proc` (for `self/ns/pid`).
    pub proc: PathBuf,
    pub argv: Vec<String>,
    pub env: Vec<(String, String)>,
    pub workdir: Option<PathBuf>,
    /// The pod's pinned namespaces to join (PID included, if shared).
    pub joins: Vec<(Namespace, OwnedFd)>,
    pub leaf_procs: Vec<PathBuf>,
    /// A root filesystem to pivot into (with /proc, /sys, /dev).
    pub rootfs: Option<PathBuf>,
    pub rootfs_options: RootfsOptions,
    /// A mount namespace to join instead (exec into a container that has one).
    pub mount_ns: Option<OwnedFd>,
    /// Mount a /proc of the pod's PID namespace over the host's.
    pub mount_proc: bool,
    /// Start a new session (a container); an exec stays in the caller's.
    pub new_session: bool,
    /// Make its stdin, a pseudo-terminal's slave, the controlling terminal
    /// of its new session (`-t`).
    pub controlling_tty: bool,
    /// Become this user and group (dropping supplementary groups) last,
    /// once every step that needs root is done.
    pub user: Option<crate::container::User>,
    /// Without a PID namespace to join: start in a new one, as its PID 1.
    pub new_pid_ns: bool,
    /// Capabilities, seccomp and `no_new_privs`; `None` leaves the process
    /// as privileged as its parent (pods' own helpers only).
    pub confine: Option<Confine>,
}

/// What limits a member's process, prepared before the fork.
#[derive(Debug, Clone)]
pub(crate) struct Confine {
    /// The bounding set, and the permitted and effective sets of a root
    /// process (a non-root one has none, as the kernel leaves it).
    pub keep: CapabilitySet,
    /// seccomp programs' instructions, installed in this order.
    pub seccomp: Vec<Vec<libc::sock_filter>>,
    pub no_new_privs: bool,
}

/// What a root filesystem gets besides /proc, /sys and /dev.
#[derive(Debug, Clone, Default)]
pub(crate) struct RootfsOptions {
    /// docker's masked and read-only paths in /proc and /sys (off when
    /// privileged, and /sys is then writable).
    pub mask: bool,
    /// The root mounted read-only (after the volumes are on it).
    pub read_only: bool,
    pub mounts: Vec<crate::isolation::Mount>,
    /// Host device nodes bound into /dev, at these names.
    pub devices: Vec<crate::isolation::Device>,
}

/// Starts a pod member; stdio as set on the returned command's caller.
pub(crate) fn spawn_member(spec: MemberSpawn, stdio: impl FnOnce(&mut Command)) -> Result<Child> {
    let program = spec.argv.first().cloned().ok_or(Error::InvalidArgument {
        what: "command",
        value: String::new(),
        reason: "it is empty",
    })?;
    let leaf = c_paths(&spec.leaf_procs)?;
    // Without a working directory, `/` (as docker): never the caller's.
    let workdir = c_path(spec.workdir.as_deref().unwrap_or(Path::new("/")))?;
    let rootfs = spec
        .rootfs
        .as_deref()
        .map(|r| RootfsPaths::new(r, &spec.rootfs_options))
        .transpose()?;
    let confine = spec.confine;
    let (pid_ns, joins): (Vec<_>, Vec<_>) = spec
        .joins
        .into_iter()
        .partition(|(ns, _)| *ns == Namespace::Pid);
    let mount_ns = spec.mount_ns;
    let mount_proc = spec.mount_proc;
    let new_session = spec.new_session;
    let controlling_tty = spec.new_session && spec.controlling_tty;
    let user = spec.user.map(|u| {
        (
            rustix::process::Uid::from_raw(u.uid),
            rustix::process::Gid::from_raw(u.gid),
        )
    });
    let (report_read, report_write) =
        rustix::pipe::pipe_with(PipeFlags::CLOEXEC | PipeFlags::NONBLOCK).map_err(|e| {
            Error::SpawnCommand {
                program: program.clone(),
                source: e.into(),
            }
        })?;

    let mut cmd = Command::new(&program);
    cmd.args(&spec.argv[1..]).env_clear().envs(spec.env);
    stdio(&mut cmd);
    // SAFETY: the closure runs in the forked child before exec and only
    // makes syscalls on data prepared before the fork (C strings and
    // descriptors that stay open until the child execs).
    unsafe {
        cmd.pre_exec(move || {
            let report = |step: &[u8], e: std::io::Error| {
                let _ = rustix::io::write(&report_write, step);
                e
            };
            // Only its standard streams go in: a descriptor whoever ran
            // stasis left open (a lock, say) must not reach the container.
            close_on_exec_above_stdio().map_err(|e| report(STEP_SETUP, e))?;
            setup_member(
                new_session,
                controlling_tty,
                &leaf,
                &joins,
                mount_ns.as_ref(),
                rootfs.as_ref(),
                mount_proc,
            )
            .map_err(|e| report(STEP_SETUP, e))?;
            rustix::process::chdir(workdir.as_c_str())
                .map_err(|e| report(STEP_WORKDIR, e.into()))?;
            if let Some(c) = &confine {
                confine_before_user(c).map_err(|e| report(STEP_CONFINE, e))?;
            }
            if let Some((uid, gid)) = user {
                // Only this thread exists in the child: the thread calls
                // change the whole process.
                rustix::thread::set_thread_groups(&[])
                    .and_then(|()| rustix::thread::set_thread_gid(gid))
                    .and_then(|()| rustix::thread::set_thread_uid(uid))
                    .map_err(|e| report(STEP_SETUP, e.into()))?;
            }
            if let Some(c) = &confine {
                confine_after_user(c, user.is_none_or(|(uid, _)| uid.is_root()))
                    .map_err(|e| report(STEP_CONFINE, e))?;
            }
            Ok(())
        });
    }
    let pid_ns = match pid_ns.into_iter().next() {
        Some((_, fd)) => Some(PidNs::Join(fd)),
        None if spec.new_pid_ns => Some(PidNs::New),
        None => None,
    };
    with_pid_namespace(&spec.proc, pid_ns, || cmd.spawn()).map_err(|source| {
        let mut step = [0u8; 1];
        let failed_step = match rustix::io::read(&report_read, &mut step) {
            Ok(1) => Some(step),
            _ => None,
        };
        match failed_step.as_ref().map(|s| &s[..]) {
            Some(STEP_CONFINE) => Error::Confine { program, source },
            Some(STEP_WORKDIR) => Error::Workdir {
                dir: spec.workdir.clone().unwrap_or_else(|| "/".into()),
                source,
            },
            Some(_) => Error::SpawnCommand { program, source },
            None if matches!(source.raw_os_error(), Some(libc::ENOENT | libc::ENOTDIR)) => {
                Error::CommandNotFound { program, source }
            }
            None if matches!(
                source.raw_os_error(),
                Some(libc::EACCES | libc::ENOEXEC | libc::EISDIR)
            ) =>
            {
                Error::CommandNotExecutable { program, source }
            }
            None => Error::SpawnCommand { program, source },
        }
    })
}

/// Marks every descriptor above 2 close-on-exec (`close_range(2)`).
fn close_on_exec_above_stdio() -> std::io::Result<()> {
    // SAFETY: close_range with CLOSE_RANGE_CLOEXEC only sets a flag on
    // descriptors; it takes no pointers and closes nothing before the exec.
    let r = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            3u32,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        )
    };
    if r < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// The byte a failed setup step writes to the report pipe.
const STEP_SETUP: &[u8] = b"s";
const STEP_WORKDIR: &[u8] = b"w";
const STEP_CONFINE: &[u8] = b"c";

/// Before the user switch, while the process still has every capability:
/// `no_new_privs`, the bounding set, the ambient set, and (without
/// `no_new_privs`) the seccomp program, which then needs CAP_SYS_ADMIN to
/// be installed — the program must allow the user switch and `capset`
/// after it, as docker's does (runc orders it the same way).
fn confine_before_user(c: &Confine) -> std::io::Result<()> {
    if c.no_new_privs {
        rustix::thread::set_no_new_privs(true)?;
    }
    for bit in 0..64u32 {
        let cap = CapabilitySet::from_bits_retain(1 << bit);
        if c.keep.contains(cap) {
            continue;
        }
        match rustix::thread::remove_capability_from_bounding_set(cap) {
            // Past the kernel's last capability.
            Err(rustix::io::Errno::INVAL) => break,
            other => other?,
        }
    }
    rustix::thread::clear_ambient_capability_set()?;
    if !c.no_new_privs {
        for program in &c.seccomp {
            install_seccomp(program)?;
        }
    }
    Ok(())
}

/// After the user switch: the permitted and effective sets (root keeps
/// `keep`; another user has none, as docker leaves it), inheritable
/// cleared, then the seccomp program under `no_new_privs` (last, so that
/// it need not allow the setup's own syscalls).
fn confine_after_user(c: &Confine, root: bool) -> std::io::Result<()> {
    // Never more than it has: a host that runs stasis with fewer
    // capabilities (itself in a container) gives --privileged its own set.
    let have = rustix::thread::capabilities(None)?.permitted;
    let keep = if root {
        c.keep & have
    } else {
        CapabilitySet::empty()
    };
    rustix::thread::set_capabilities(
        None,
        CapabilitySets {
            effective: keep,
            permitted: keep,
            inheritable: CapabilitySet::empty(),
        },
    )?;
    if c.no_new_privs {
        for program in &c.seccomp {
            install_seccomp(program)?;
        }
    }
    Ok(())
}

/// Installs a seccomp filter on the calling (only) thread.
fn install_seccomp(program: &[libc::sock_filter]) -> std::io::Result<()> {
    let len =
        u16::try_from(program.len()).map_err(|_| std::io::Error::from_raw_os_error(libc::E2BIG))?;
    let prog = libc::sock_fprog {
        len,
        filter: program.as_ptr().cast_mut(),
    };
    // SAFETY: `prog` points at `len` instructions that live in the caller's
    // slice for the whole call; the kernel copies them and keeps no pointer.
    let r = unsafe {
        libc::prctl(
            libc::PR_SET_SECCOMP,
            libc::SECCOMP_MODE_FILTER as libc::c_ulong,
            &prog as *const libc::sock_fprog,
        )
    };
    if r < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// In the forked child: session, cgroup leaves, namespaces, mounts.
fn setup_member(
    new_session: bool,
    controlling_tty: bool,
    leaf: &[CString],
    joins: &[(Namespace, OwnedFd)],
    mount_ns: Option<&OwnedFd>,
    rootfs: Option<&RootfsPaths>,
    mount_proc: bool,
) -> std::io::Result<()> {
    if new_session {
        rustix::process::setsid()?;
    }
    if controlling_tty {
        // A session leader without a terminal, so the pts on fd 0 becomes
        // its controlling terminal: job control and ^C work inside.
        rustix::process::ioctl_tiocsctty(rustix::stdio::stdin())?;
    }
    leave_real_time()?;
    for p in leaf {
        write_self(p)?;
    }
    for (ns, fd) in joins {
        rustix::thread::move_into_link_name_space(fd.as_fd(), Some(ns.link_type()))?;
    }
    if let Some(mnt) = mount_ns {
        rustix::thread::move_into_link_name_space(mnt.as_fd(), Some(LinkNameSpaceType::Mount))?;
    } else if rootfs.is_some() || mount_proc {
        unshare(UnshareFlags::NEWNS)?;
        rustix::mount::mount_change(
            "/",
            MountPropagationFlags::PRIVATE | MountPropagationFlags::REC,
        )?;
        match rootfs {
            Some(r) => r.enter()?,
            None => mount_fs(
                c"proc",
                c"/proc",
                c"proc",
                MountFlags::NOSUID | MountFlags::NOEXEC | MountFlags::NODEV,
                None,
            )?,
        }
    }
    Ok(())
}

/// The paths a root filesystem setup needs, as C strings.
#[derive(Debug)]
struct RootfsPaths {
    root: CString,
    proc: CString,
    sys: CString,
    dev: CString,
    shm: CString,
    /// Host device → its node inside.
    devices: Vec<(CString, CString)>,
    links: Vec<(CString, CString)>,
    /// `/dev/null` inside, bound over masked files.
    null: CString,
    /// docker's masked paths that exist, and whether each is a directory.
    masked: Vec<(CString, bool)>,
    /// docker's read-only paths that exist.
    read_only_paths: Vec<CString>,
    sys_read_only: bool,
    volumes: Vec<VolumePaths>,
    read_only: bool,
}

/// A volume's source and its target inside the root, made before the fork.
#[derive(Debug)]
enum VolumePaths {
    Bind {
        source: CString,
        target: CString,
        readonly: bool,
    },
    Tmpfs {
        target: CString,
        data: CString,
        readonly: bool,
    },
}

const DEVICES: [&str; 6] = ["null", "zero", "full", "random", "urandom", "tty"];

/// docker's masked paths (moby's `oci/defaults.go`): files get /dev/null
/// bound over them, directories an empty read-only tmpfs.
const MASKED_PATHS: [&str; 11] = [
    "proc/asound",
    "proc/acpi",
    "proc/kcore",
    "proc/keys",
    "proc/latency_stats",
    "proc/timer_list",
    "proc/timer_stats",
    "proc/sched_debug",
    "proc/scsi",
    "sys/firmware",
    "sys/devices/virtual/powercap",
];

/// docker's read-only paths: bound onto themselves read-only.
const READ_ONLY_PATHS: [&str; 5] = [
    "proc/bus",
    "proc/fs",
    "proc/irq",
    "proc/sys",
    "proc/sysrq-trigger",
];

/// Makes `target` (absolute, inside the container) below `root` as a
/// directory (or an empty file, for a file's bind), refusing one whose
/// existing part leads out of the root through a symlink.
fn make_target(root: &Path, target: &Path, file: bool) -> Result<PathBuf> {
    let rel = target.strip_prefix("/").unwrap_or(target);
    let full = root.join(rel);
    let prepare = |source: std::io::Error| Error::PrepareRootfs {
        path: full.clone(),
        source,
    };
    let parent = full.parent().unwrap_or(root);
    std::fs::create_dir_all(parent).map_err(prepare)?;
    if file {
        if !full.exists() {
            std::fs::File::create(&full).map_err(prepare)?;
        }
    } else {
        std::fs::create_dir_all(&full).map_err(prepare)?;
    }
    let canon = std::fs::canonicalize(&full).map_err(prepare)?;
    let canon_root = std::fs::canonicalize(root).map_err(prepare)?;
    if !canon.starts_with(&canon_root) {
        return Err(Error::InvalidArgument {
            what: "volume target",
            value: target.display().to_string(),
            reason: "it leads out of the root filesystem through a symlink",
        });
    }
    Ok(canon)
}

impl RootfsPaths {
    fn new(root: &Path, opts: &RootfsOptions) -> Result<Self> {
        for dir in ["proc", "sys", "dev"] {
            let d = root.join(dir);
            std::fs::create_dir_all(&d).map_err(|source| Error::PrepareRootfs {
                path: d.clone(),
                source,
            })?;
        }
        let mut devices = DEVICES
            .iter()
            .map(|d| {
                Ok((
                    c_path(&Path::new("/dev").join(d))?,
                    c_path(&root.join("dev").join(d))?,
                ))
            })
            .collect::<Result<Vec<_>>>()?;
        for d in &opts.devices {
            let inside = d
                .container
                .strip_prefix("/dev")
                .map_err(|_| Error::InvalidArgument {
                    what: "device",
                    value: d.container.display().to_string(),
                    reason: "a device goes in the container's /dev",
                })?;
            devices.push((c_path(&d.host)?, c_path(&root.join("dev").join(inside))?));
        }
        let links = [
            ("/proc/self/fd", "fd"),
            ("/proc/self/fd/0", "stdin"),
            ("/proc/self/fd/1", "stdout"),
            ("/proc/self/fd/2", "stderr"),
        ]
        .iter()
        .map(|(to, name)| {
            Ok((
                c_path(Path::new(to))?,
                c_path(&root.join("dev").join(name))?,
            ))
        })
        .collect::<Result<Vec<_>>>()?;
        // What exists in /proc and /sys is the host kernel's: the host's own
        // /proc and /sys say which of docker's paths this kernel has.
        let (masked, read_only_paths) = if opts.mask {
            let masked = MASKED_PATHS
                .iter()
                .filter_map(|p| {
                    let host = Path::new("/").join(p);
                    let meta = std::fs::metadata(&host).ok()?;
                    Some(c_path(&root.join(p)).map(|c| (c, meta.is_dir())))
                })
                .collect::<Result<Vec<_>>>()?;
            let ro = READ_ONLY_PATHS
                .iter()
                .filter(|p| Path::new("/").join(p).exists())
                .map(|p| c_path(&root.join(p)))
                .collect::<Result<Vec<_>>>()?;
            (masked, ro)
        } else {
            (Vec::new(), Vec::new())
        };
        let mut volumes = Vec::new();
        for m in &opts.mounts {
            volumes.push(match m {
                crate::isolation::Mount::Bind {
                    source,
                    target,
                    readonly,
                } => VolumePaths::Bind {
                    source: c_path(source)?,
                    target: c_path(&make_target(root, target, !source.is_dir())?)?,
                    readonly: *readonly,
                },
                crate::isolation::Mount::Tmpfs { target, options } => {
                    let readonly = options.split(',').any(|o| o == "ro");
                    let data: Vec<&str> = options
                        .split(',')
                        .filter(|o| {
                            !o.is_empty()
                                && !matches!(
                                    *o,
                                    "ro" | "rw"
                                        | "noexec"
                                        | "exec"
                                        | "nosuid"
                                        | "suid"
                                        | "nodev"
                                        | "dev"
                                )
                        })
                        .collect();
                    VolumePaths::Tmpfs {
                        target: c_path(&make_target(root, target, false)?)?,
                        data: CString::new(data.join(",")).map_err(|_| Error::InvalidArgument {
                            what: "tmpfs option",
                            value: options.clone(),
                            reason: "it contains a NUL byte",
                        })?,
                        readonly,
                    }
                }
            });
        }
        Ok(RootfsPaths {
            root: c_path(root)?,
            proc: c_path(&root.join("proc"))?,
            sys: c_path(&root.join("sys"))?,
            dev: c_path(&root.join("dev"))?,
            shm: c_path(&root.join("dev/shm"))?,
            devices,
            links,
            null: c_path(&root.join("dev/null"))?,
            masked,
            read_only_paths,
            sys_read_only: opts.mask,
            volumes,
            read_only: opts.read_only,
        })
    }

    /// Mounts /proc, /sys (read-only unless privileged), a tmpfs /dev with
    /// the usual devices bound from the host, docker's masks, the volumes,
    /// then makes the root read-only if asked, pivots into it and drops the
    /// old one.
    fn enter(&self) -> std::io::Result<()> {
        let hard = MountFlags::NOSUID | MountFlags::NOEXEC | MountFlags::NODEV;
        rustix::mount::mount_bind_recursive(self.root.as_c_str(), self.root.as_c_str())?;
        mount_fs(c"proc", &self.proc, c"proc", hard, None)?;
        let sys_flags = if self.sys_read_only {
            hard | MountFlags::RDONLY
        } else {
            hard
        };
        mount_fs(c"sysfs", &self.sys, c"sysfs", sys_flags, None)?;
        mount_fs(
            c"tmpfs",
            &self.dev,
            c"tmpfs",
            MountFlags::NOSUID | MountFlags::STRICTATIME,
            Some(c"mode=755,size=65536k"),
        )?;
        for (host, inside) in &self.devices {
            drop(rustix::fs::open(
                inside.as_c_str(),
                OFlags::CREATE | OFlags::WRONLY | OFlags::CLOEXEC,
                Mode::from_raw_mode(0o666),
            )?);
            rustix::mount::mount_bind(host.as_c_str(), inside.as_c_str())?;
        }
        for (target, link) in &self.links {
            rustix::fs::symlink(target.as_c_str(), link.as_c_str())?;
        }
        rustix::fs::mkdir(self.shm.as_c_str(), Mode::from_raw_mode(0o1777))?;
        mount_fs(
            c"shm",
            &self.shm,
            c"tmpfs",
            hard,
            Some(c"mode=1777,size=65536k"),
        )?;
        for (path, is_dir) in &self.masked {
            if *is_dir {
                mount_fs(c"tmpfs", path, c"tmpfs", hard | MountFlags::RDONLY, None)?;
            } else {
                rustix::mount::mount_bind(self.null.as_c_str(), path.as_c_str())?;
            }
        }
        for path in &self.read_only_paths {
            rustix::mount::mount_bind_recursive(path.as_c_str(), path.as_c_str())?;
            remount_read_only(path, hard)?;
        }
        for v in &self.volumes {
            match v {
                VolumePaths::Bind {
                    source,
                    target,
                    readonly,
                } => {
                    rustix::mount::mount_bind_recursive(source.as_c_str(), target.as_c_str())?;
                    if *readonly {
                        remount_read_only(target, MountFlags::empty())?;
                    }
                }
                VolumePaths::Tmpfs {
                    target,
                    data,
                    readonly,
                } => {
                    let mut flags = MountFlags::NOSUID | MountFlags::NODEV;
                    if *readonly {
                        flags |= MountFlags::RDONLY;
                    }
                    mount_fs(c"tmpfs", target, c"tmpfs", flags, Some(data))?;
                }
            }
        }
        if self.read_only {
            // Only the root's own mount: /proc, /dev and the volumes keep
            // their own flags, as with docker's --read-only.
            remount_read_only(&self.root, MountFlags::empty())?;
        }
        // pivot_root(".", ".") stacks the old root on top of the new one;
        // detaching "." then leaves only the new root.
        rustix::process::chdir(self.root.as_c_str())?;
        rustix::process::pivot_root(c".", c".")?;
        rustix::mount::unmount(c".", UnmountFlags::DETACH)?;
        rustix::process::chdir(c"/")?;
        Ok(())
    }
}

/// Makes a bind mount read-only, keeping `flags` (a bind remount replaces
/// the per-mount flags it does not name).
fn remount_read_only(path: &std::ffi::CStr, flags: MountFlags) -> std::io::Result<()> {
    rustix::mount::mount_remount(path, flags | MountFlags::BIND | MountFlags::RDONLY, c"")
        .map_err(Into::into)
}

fn mount_fs(
    source: &std::ffi::CStr,
    target: &std::ffi::CStr,
    fstype: &std::ffi::CStr,
    flags: MountFlags,
    data: Option<&std::ffi::CStr>,
) -> std::io::Result<()> {
    rustix::mount::mount(source, target, fstype, flags, data).map_err(Into::into)
}

/// Which PID namespace the next child is born in.
enum PidNs {
    /// A new one (the child is its PID 1).
    New,
    /// A pinned one.
    Join(OwnedFd),
}

/// Runs `spawn` with the calling thread's "PID namespace for children" set
/// as asked, restoring it afterwards.
fn with_pid_namespace<T>(
    proc: &Path,
    ns: Option<PidNs>,
    spawn: impl FnOnce() -> std::io::Result<T>,
) -> std::io::Result<T> {
    let Some(ns) = ns else {
        return spawn();
    };
    let own = rustix::fs::open(
        proc.join("self/ns/pid"),
        OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    match &ns {
        PidNs::New => unshare(UnshareFlags::NEWPID)?,
        PidNs::Join(fd) => rustix::thread::move_into_link_name_space(
            fd.as_fd(),
            Some(LinkNameSpaceType::ProcessID),
        )?,
    }
    let result = spawn();
    // Our own PID namespace is always one we may return to.
    rustix::thread::move_into_link_name_space(own.as_fd(), Some(LinkNameSpaceType::ProcessID))?;
    result
}

fn unshare(flags: UnshareFlags) -> std::io::Result<()> {
    if flags.is_empty() {
        return Ok(());
    }
    debug_assert!(!flags.contains(UnshareFlags::FILES));
    // SAFETY: the flags never include CLONE_FILES, so no thread is left with
    // descriptors that another thread's table no longer has.
    unsafe { rustix::thread::unshare_unsafe(flags) }.map_err(Into::into)
}

/// Takes the calling process out of a real-time scheduling policy
/// (`SCHED_FIFO`, `SCHED_RR`, inherited from a real-time caller such as
/// `chrt -f 50 stasis run`) back to `SCHED_OTHER`, before it joins its
/// cgroups. A pod's processes are not the caller's: docker's containers
/// never inherit the client's policy either. And the v1 `cpu` controller
/// refuses (`EINVAL`) a real-time task in a group without a
/// `cpu.rt_runtime_us` budget, which a pod's node does not have. Other
/// policies (batch, idle) and the nice value stay as inherited.
pub fn leave_real_time() -> std::io::Result<()> {
    // SAFETY: plain syscalls on the calling process (pid 0), with a
    // `sched_param` that lives for the call; safe between fork and exec.
    unsafe {
        let policy = libc::sched_getscheduler(0);
        if policy < 0 {
            return Err(std::io::Error::last_os_error());
        }
        if policy & !libc::SCHED_RESET_ON_FORK != libc::SCHED_FIFO
            && policy & !libc::SCHED_RESET_ON_FORK != libc::SCHED_RR
        {
            return Ok(());
        }
        let param = libc::sched_param { sched_priority: 0 };
        if libc::sched_setscheduler(0, libc::SCHED_OTHER, &param) < 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Moves the calling process into the cgroup whose `cgroup.procs` this is.
fn write_self(procs: &std::ffi::CStr) -> std::io::Result<()> {
    let fd = rustix::fs::open(procs, OFlags::WRONLY | OFlags::CLOEXEC, Mode::empty())?;
    rustix::io::write(&fd, b"0")?;
    Ok(())
}

/// Brings the new network namespace's loopback up, as a pod expects.
fn loopback_up() -> std::io::Result<()> {
    let sock = rustix::net::socket(
        rustix::net::AddressFamily::INET,
        rustix::net::SocketType::DGRAM,
        None,
    )?;
    // SAFETY: `ifreq` is plain old data for which all-zero is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(b"lo\0") {
        *dst = *src as libc::c_char;
    }
    use std::os::fd::AsRawFd;
    // SAFETY: SIOCGIFFLAGS reads the name and writes the flags of `req`,
    // which lives for the call; the socket is open.
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: the kernel filled the flags member of the union just above.
    unsafe {
        req.ifr_ifru.ifru_flags |= (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short;
    }
    // SAFETY: SIOCSIFFLAGS reads `req`, valid for the call.
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &req) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

fn c_path(p: &Path) -> Result<CString> {
    CString::new(p.as_os_str().as_bytes()).map_err(|_| Error::InvalidArgument {
        what: "path",
        value: p.display().to_string(),
        reason: "it contains a NUL byte",
    })
}

fn c_paths(paths: &[PathBuf]) -> Result<Vec<CString>> {
    paths.iter().map(|p| c_path(p)).collect()
}

/// Starts `cmd` (CRIU's restore) inside a container's cgroup leaves, so
/// that what it forks is born there, with `inherit` open in it at the same
/// numbers (they are CLOEXEC here; the child clears the flag).
pub(crate) fn spawn_in_leaves(
    mut cmd: Command,
    leaf_procs: &[PathBuf],
    inherit: &[OwnedFd],
) -> std::io::Result<Child> {
    let leaf =
        c_paths(leaf_procs).map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidInput))?;
    let fds: Vec<std::os::fd::RawFd> = inherit
        .iter()
        .map(std::os::fd::AsRawFd::as_raw_fd)
        .collect();
    // SAFETY: the closure runs in the forked child before exec and only
    // makes syscalls on data prepared before the fork (C strings, and
    // descriptor numbers that stay open in the caller until the spawn).
    unsafe {
        cmd.pre_exec(move || {
            for p in &leaf {
                write_self(p)?;
            }
            for fd in &fds {
                let fd = std::os::fd::BorrowedFd::borrow_raw(*fd);
                rustix::io::fcntl_setfd(fd, rustix::io::FdFlags::empty())?;
            }
            Ok(())
        });
    }
    cmd.spawn()
}
