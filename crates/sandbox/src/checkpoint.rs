//! Checkpoint and restore through CRIU: a container's process tree written
//! to disk (`criu dump`) and brought back (`criu restore`) in its pod, with
//! its root filesystem, mounts, cgroup leaf, monitor and log.
//!
//! What a checkpoint holds, under the container's directory in
//! `checkpoint/`: `images/` (CRIU's image files and `dump.log`) and
//! `checkpoint.json` (a [`Checkpoint`]: the container's record and pod as
//! they were, and how CRIU must be told to reconnect what lies outside the
//! tree). A new checkpoint is made in `checkpoint.new/` and replaces the
//! old one only once CRIU succeeded; a failed one is kept as
//! `checkpoint.failed/`, so that its log can be read.
//!
//! Kernel files read before the dump, from the container's main process:
//! `/proc/PID/mountinfo` (which mounts come from outside its mount
//! namespace: those are given to CRIU as external, with the host path
//! they are bound from, found in `/proc/self/mountinfo`), `/proc/PID/fd/N`
//! and `/proc/PID/fdinfo/N` for its standard streams (the monitor's pipes
//! and the host's `/dev/null`, which CRIU reconnects with `--inherit-fd`),
//! and `/proc/PID/ns/net` (the pod's network namespace, external: the pod's
//! pause process holds it). The pod's IPC and UTS namespaces are joined at
//! restore (`--join-ns`, the pod's pins).
//!
//! CRIU freezes the container through its own freezer leaf
//! (`--freeze-cgroup`), so a paused container is dumped as it is, never
//! thawed; at restore CRIU runs inside the container's cgroup leaves
//! (`--manage-cgroups=ignore`: the tasks it forks are born there), and the
//! restored tree's root is a child of the monitor (`--restore-sibling`).
//!
//! Refused up front, each with one line: a container whose pod shares its
//! PID namespace (stasis-pause is its PID 1, not the container's process),
//! one without a root filesystem of its own, one with a terminal, one whose
//! pod shares its cgroup namespace, a mount CRIU cannot recreate, and a
//! missing CRIU. It does not checkpoint pods, or processes started by
//! `exec` (CRIU refuses a PID namespace with tasks outside the tree).

use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::container::ContainerRecord;
use crate::error::{Kind, Result};
use crate::ns::Namespace;
use crate::pod::PodRecord;
use crate::Sandbox;

/// Why a container with a terminal is not checkpointed.
pub(crate) const TTY_REFUSAL: &str = "it has a terminal (-t), which CRIU cannot take over";

/// The key the pod's network namespace has in CRIU's images.
const NET_KEY: &str = "stasis-net";

/// How long CRIU may take for one dump or restore.
const CRIU_LIMIT: Duration = Duration::from_secs(300);

/// What goes wrong checkpointing and restoring.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CheckpointError {
    #[error("no criu on PATH: install CRIU 4.1 or later (scripts/install-criu.sh)")]
    NoCriu,
    #[error("no CRIU at {}", path.display())]
    CriuMissing { path: PathBuf },
    #[error("cannot checkpoint container {container}: {reason}")]
    Refused { container: String, reason: String },
    #[error("container {container} is {status}: restore brings back an exited container (restore --name makes a copy beside it)")]
    NotExited {
        container: String,
        status: &'static str,
    },
    #[error("container {container} has no checkpoint")]
    NoCheckpoint { container: String },
    /// The monitor could not bring it back; `message` is its error.
    #[error("{message}")]
    RestoreFailed { container: String, message: String },
    #[error("reading {}", path.display())]
    ReadProc {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("starting {}", path.display())]
    SpawnCriu {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("waiting for criu")]
    WaitCriu(#[source] std::io::Error),
    #[error("criu {verb} of container {container} failed ({status}): {first_error}; its log is {}", log.display())]
    Criu {
        verb: &'static str,
        container: String,
        status: String,
        first_error: String,
        log: PathBuf,
    },
    #[error("writing the checkpoint {}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("reading the checkpoint {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the checkpoint {} is not one stasis wrote", path.display())]
    Decode {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("exporting the checkpoint to {}", path.display())]
    Export {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("importing the checkpoint archive {}", path.display())]
    Import {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("reading the restored process's PID from {}", path.display())]
    PidFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl CheckpointError {
    /// The source, when it is the kernel's.
    pub(crate) fn io_error(&self) -> Option<&std::io::Error> {
        match self {
            CheckpointError::ReadProc { source, .. }
            | CheckpointError::SpawnCriu { source, .. }
            | CheckpointError::WaitCriu(source)
            | CheckpointError::Write { source, .. }
            | CheckpointError::Read { source, .. }
            | CheckpointError::Export { source, .. }
            | CheckpointError::Import { source, .. }
            | CheckpointError::PidFile { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// What `checkpoint.json` says: enough to restore the container, here or
/// from an exported archive after it was removed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Checkpoint {
    /// The container's record when it was checkpointed.
    pub container: ContainerRecord,
    /// Its pod's, so that a new pod can be made the same way.
    pub pod: PodRecord,
    /// When, seconds since the epoch.
    pub created: u64,
    /// It was paused.
    pub paused: bool,
    /// It continued (`--leave-running`).
    pub leave_running: bool,
    /// Established TCP connections were dumped (`--tcp-established`).
    pub tcp_established: bool,
    /// The standard streams that lead out of the tree.
    pub files: Vec<OuterFile>,
    /// The mounts bound from the host.
    pub mounts: Vec<OuterMount>,
}

/// A standard stream of the container's process that leads outside it:
/// the monitor's pipe, or a host file (its `/dev/null`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OuterFile {
    /// 0, 1 or 2.
    pub fd: u32,
    /// CRIU's name for it (`pipe:[INODE]`, `file[MNT:INODE]`).
    pub key: String,
    /// A host file: its path, opened again at restore.
    pub path: Option<PathBuf>,
    /// A host file: opened for writing.
    pub write: bool,
}

/// A mount inside the container bound from the host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OuterMount {
    /// Where, inside.
    pub target: PathBuf,
    /// From where, on the host.
    pub source: PathBuf,
}

/// What `checkpoint` does besides the dump.
#[derive(Debug, Clone, Default)]
pub struct CheckpointOptions {
    /// The container continues (or stays paused).
    pub leave_running: bool,
    /// Dump established TCP connections (CRIU's TCP repair).
    pub tcp_established: bool,
    /// Also write the checkpoint to this archive.
    pub export: Option<PathBuf>,
}

/// The latest checkpoint, as a container's record shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckpointInfo {
    /// When, seconds since the epoch.
    pub created: u64,
    /// Its directory.
    pub dir: PathBuf,
    /// The size of its images, in bytes.
    pub size: u64,
    /// The container continued.
    pub leave_running: bool,
}

/// One line of a mountinfo file.
#[derive(Debug, Clone, PartialEq, Eq)]
struct MountLine {
    id: u32,
    dev: String,
    root: PathBuf,
    target: PathBuf,
    fstype: String,
}

/// Filesystems CRIU makes anew at restore (their content, for tmpfs, is in
/// the images).
const VIRTUAL: [&str; 7] = [
    "proc", "sysfs", "tmpfs", "devpts", "mqueue", "cgroup", "cgroup2",
];

fn parse_mountinfo(text: &str) -> Vec<MountLine> {
    text.lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let f: Vec<&str> = left.split(' ').collect();
            let fstype = right.split(' ').next()?;
            Some(MountLine {
                id: f.first()?.parse().ok()?,
                dev: (*f.get(2)?).to_owned(),
                root: PathBuf::from(unescape(f.get(3)?)),
                target: PathBuf::from(unescape(f.get(4)?)),
                fstype: fstype.to_owned(),
            })
        })
        .collect()
}

/// mountinfo's octal escapes (`\040` for a space).
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() && b[i + 1..i + 4].iter().all(u8::is_ascii_digit) {
            let n = (b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0');
            out.push(n);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The mounts of a container (its mountinfo) that come from outside its
/// mount namespace, each with the host path it is bound from (found in the
/// host's mountinfo). A filesystem CRIU makes anew is not one; nor is a
/// bind of part of a mount that is inside. `Err` names a mount that comes
/// from outside and is nowhere on the host.
fn outer_mounts(container: &str, host: &str) -> std::result::Result<Vec<OuterMount>, PathBuf> {
    let inside = parse_mountinfo(container);
    let host = parse_mountinfo(host);
    let mut out = Vec::new();
    for m in &inside {
        if m.target == Path::new("/") {
            continue;
        }
        // Bound from a mount inside: CRIU binds it again from there.
        let from_inside = inside.iter().any(|o| {
            o.id != m.id
                && o.target != Path::new("/")
                && o.dev == m.dev
                && m.root.starts_with(&o.root)
                && o.root != m.root
        });
        let whole_virtual = VIRTUAL.contains(&m.fstype.as_str()) && m.root == Path::new("/");
        if whole_virtual || from_inside {
            continue;
        }
        let source = host
            .iter()
            .filter(|h| h.dev == m.dev && m.root.starts_with(&h.root))
            // The host mount that shows the most of it.
            .min_by_key(|h| h.root.components().count())
            .map(|h| {
                let rest = m.root.strip_prefix(&h.root).unwrap_or(Path::new(""));
                if rest.as_os_str().is_empty() {
                    h.target.clone()
                } else {
                    h.target.join(rest)
                }
            });
        match source {
            Some(source) => out.push(OuterMount {
                target: m.target.clone(),
                source,
            }),
            None => return Err(m.target.clone()),
        }
    }
    Ok(out)
}

/// Errors CRIU logs on every run here while it probes the kernel and
/// itself, whatever the outcome: its own RLIMIT_NOFILE (no CAP_SYS_RESOURCE
/// in the bounding set), a TUN device, its cgroup helper's end.
const NOISE: [&str; 3] = [
    "RLIMIT_NOFILE",
    "Unable to create tun",
    "cgroupd: recv req error",
];

/// The first line of CRIU's log that reports an error, but the noise.
fn first_error(log: &Path) -> String {
    std::fs::read_to_string(log)
        .ok()
        .and_then(|text| {
            text.lines()
                .find(|l| l.contains("Error (") && !NOISE.iter().any(|n| l.contains(n)))
                .map(|l| {
                    // "(00.123) Error (criu/x.c:1): what" → "what"
                    l.split_once("): ")
                        .map_or(l, |(_, what)| what)
                        .trim()
                        .to_owned()
                })
        })
        .unwrap_or_else(|| "no error in its log".to_owned())
}

/// Finds CRIU: `given`, else `criu` on PATH or in the usual sbin
/// directories.
pub(crate) fn find_criu(given: Option<&Path>) -> Result<PathBuf> {
    if let Some(p) = given {
        return if p.is_file() {
            Ok(p.to_owned())
        } else {
            Err(CheckpointError::CriuMissing { path: p.to_owned() }.into())
        };
    }
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>());
    on_path
        .chain(["/usr/local/sbin", "/usr/sbin", "/sbin"].map(PathBuf::from))
        .map(|d| d.join("criu"))
        .find(|p| p.is_file())
        .ok_or_else(|| CheckpointError::NoCriu.into())
}

/// Waits for CRIU (bounded), and turns a failure into an error naming its
/// log.
fn wait_criu(
    mut child: std::process::Child,
    verb: &'static str,
    container: &str,
    log: &Path,
) -> Result<()> {
    let pidfd = rustix::process::Pid::from_raw(child.id() as i32)
        .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::InvalidInput))
        .and_then(|p| {
            rustix::process::pidfd_open(p, rustix::process::PidfdFlags::empty()).map_err(Into::into)
        })
        .map_err(CheckpointError::WaitCriu)?;
    let ended =
        crate::process::poll_readable(&pidfd, CRIU_LIMIT).map_err(CheckpointError::WaitCriu)?;
    if !ended {
        // Not reaped yet, so the PID is still its own.
        let _ = child.kill();
    }
    let status = child.wait().map_err(CheckpointError::WaitCriu)?;
    if ended && status.success() {
        return Ok(());
    }
    Err(CheckpointError::Criu {
        verb,
        container: container.to_owned(),
        status: if ended {
            status.to_string()
        } else {
            format!("no answer in {} s", CRIU_LIMIT.as_secs())
        },
        first_error: first_error(log),
        log: log.to_owned(),
    }
    .into())
}

fn read_link(path: PathBuf) -> Result<PathBuf> {
    std::fs::read_link(&path).map_err(|source| CheckpointError::ReadProc { path, source }.into())
}

fn read_text(path: PathBuf) -> Result<String> {
    std::fs::read_to_string(&path)
        .map_err(|source| CheckpointError::ReadProc { path, source }.into())
}

/// The total size of the files in `dir`.
fn dir_size(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.metadata().ok())
        .filter(|m| m.is_file())
        .map(|m| m.len())
        .sum()
}

fn write_err(path: &Path) -> impl FnOnce(std::io::Error) -> crate::Error + '_ {
    move |source| {
        CheckpointError::Write {
            path: path.to_owned(),
            source,
        }
        .into()
    }
}

impl Sandbox {
    /// The container's checkpoint directory.
    pub fn checkpoint_dir(&self, c: &ContainerRecord) -> PathBuf {
        self.store.dir(Kind::Container, &c.id).join("checkpoint")
    }

    /// CRIU: the one given, else found.
    pub(crate) fn criu(&self) -> Result<PathBuf> {
        find_criu(self.criu_binary.as_deref())
    }

    /// Reads the checkpoint in `dir`.
    pub fn read_checkpoint(&self, dir: &Path) -> Result<Checkpoint> {
        let path = dir.join("checkpoint.json");
        let text = std::fs::read(&path).map_err(|source| CheckpointError::Read {
            path: path.clone(),
            source,
        })?;
        Ok(serde_json::from_slice(&text)
            .map_err(|source| CheckpointError::Decode { path, source })?)
    }

    /// Why this container cannot be checkpointed, if it cannot: checked
    /// before CRIU is asked, so that the user reads one line.
    fn refusal(&self, c: &ContainerRecord, pod: &PodRecord) -> Option<String> {
        if pod.share.contains(&Namespace::Pid) {
            return Some(format!(
                "it shares the PID namespace of its pod {} (stasis-pause is its PID 1): \
                 checkpoint needs a container with a PID namespace of its own",
                pod.name
            ));
        }
        if pod.share.contains(&Namespace::Cgroup) {
            return Some(format!(
                "its pod {} shares a cgroup namespace, which CRIU cannot rejoin",
                pod.name
            ));
        }
        if c.rootfs.is_none() {
            return Some(
                "its root filesystem is the host's: checkpoint needs a container with a root \
                 filesystem of its own (--rootfs or an image)"
                    .to_owned(),
            );
        }
        if c.stdio.tty {
            return Some(TTY_REFUSAL.to_owned());
        }
        None
    }

    /// Checkpoints a running or paused container (CRIU dumps the frozen
    /// tree as it is). Without `leave_running` it ends, recorded as exited
    /// by a checkpoint; with it, it goes on as it was (running, or
    /// paused). Returns the checkpoint's record.
    pub fn checkpoint_container(
        &self,
        c: &ContainerRecord,
        opts: &CheckpointOptions,
    ) -> Result<CheckpointInfo> {
        let refuse = |reason: String| -> crate::Error {
            CheckpointError::Refused {
                container: c.name.clone(),
                reason,
            }
            .into()
        };
        let status = self.container_status(c);
        if !status.is_running() {
            return Err(crate::Error::not_running(Kind::Container, &c.name));
        }
        let pod = self.pod(&c.pod)?;
        if let Some(reason) = self.refusal(c, &pod) {
            return Err(refuse(reason));
        }
        let cgroups = self.pod_cgroups(&pod)?;
        if cgroups.is_frozen(None) {
            return Err(crate::Error::paused_by_pod(&c.name, &pod.name));
        }
        let criu = self.criu()?;
        let process = c
            .process
            .ok_or_else(|| crate::Error::not_running(Kind::Container, &c.name))?;
        let pid = process.pid;
        let proc_dir = self.host.proc.join(pid.to_string());
        let inside = read_text(proc_dir.join("mountinfo"))?;
        let host = read_text(self.host.proc.join("self/mountinfo"))?;
        let mounts = outer_mounts(&inside, &host).map_err(|target| {
            refuse(format!(
                "its mount {} comes from outside and is nowhere on the host",
                target.display()
            ))
        })?;
        let inside_ids: Vec<u32> = parse_mountinfo(&inside).iter().map(|m| m.id).collect();
        let mut files = Vec::new();
        for fd in 0..3u32 {
            let link = read_link(proc_dir.join("fd").join(fd.to_string()))?;
            let text = link.to_string_lossy().into_owned();
            if text.starts_with("pipe:[") {
                files.push(OuterFile {
                    fd,
                    key: text,
                    path: None,
                    write: fd != 0,
                });
                continue;
            }
            if !text.starts_with('/') {
                return Err(refuse(format!(
                    "its standard stream {fd} is {text}, which CRIU cannot reconnect"
                )));
            }
            let info = read_text(proc_dir.join("fdinfo").join(fd.to_string()))?;
            let field = |name: &str| {
                info.lines()
                    .find_map(|l| l.strip_prefix(name))
                    .map(str::trim)
                    .map(str::to_owned)
            };
            let mnt_id: u32 = field("mnt_id:").and_then(|v| v.parse().ok()).unwrap_or(0);
            if inside_ids.contains(&mnt_id) {
                continue;
            }
            let flags = field("flags:")
                .and_then(|v| u32::from_str_radix(&v, 8).ok())
                .unwrap_or(0);
            let ino = match field("ino:").and_then(|v| v.parse::<u64>().ok()) {
                Some(i) => i,
                None => std::fs::metadata(proc_dir.join("fd").join(fd.to_string()))
                    .map(|m| std::os::unix::fs::MetadataExt::ino(&m))
                    .unwrap_or(0),
            };
            files.push(OuterFile {
                fd,
                key: format!("file[{mnt_id:x}:{ino:x}]"),
                path: Some(link),
                write: flags & (libc::O_ACCMODE as u32) != libc::O_RDONLY as u32,
            });
        }
        let dir = self.checkpoint_dir(c);
        let new = dir.with_extension("new");
        let images = new.join("images");
        let _ = std::fs::remove_dir_all(&new);
        std::fs::create_dir_all(&images).map_err(write_err(&images))?;
        let log = images.join("dump.log");
        let freezer_leaf = cgroups.freezer_cgroup(Some(c.id.as_str()))?;
        let mut cmd = Command::new(&criu);
        cmd.arg("dump")
            .arg("--tree")
            .arg(pid.to_string())
            .arg("--images-dir")
            .arg(&images)
            .arg("--log-file")
            .arg(&log)
            .arg("-v4")
            .arg("--manage-cgroups=ignore")
            .arg("--freeze-cgroup")
            .arg(&freezer_leaf.dir)
            .arg("--network-lock")
            .arg(if opts.tcp_established {
                "nftables"
            } else {
                "skip"
            });
        if pod.share.contains(&Namespace::Net) {
            let ns = read_link(proc_dir.join("ns/net"))?;
            let ino: String = ns
                .to_string_lossy()
                .chars()
                .filter(char::is_ascii_digit)
                .collect();
            cmd.arg("--external").arg(format!("net[{ino}]:{NET_KEY}"));
        }
        for m in &mounts {
            cmd.arg("--external").arg(format!(
                "mnt[{}]:{}",
                m.target.display(),
                m.target.display()
            ));
        }
        for f in files.iter().filter(|f| f.path.is_some()) {
            cmd.arg("--external").arg(&f.key);
        }
        if opts.leave_running {
            cmd.arg("--leave-running");
        }
        if opts.tcp_established {
            cmd.arg("--tcp-established");
        }
        let paused = status == crate::ContainerStatus::Paused;
        // The monitor records the exit CRIU's kill causes as a checkpoint's;
        // the restart policy must not start it again.
        self.record(&c.id, |r| {
            r.checkpointing = !opts.leave_running;
        })?;
        let dumped = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .current_dir("/")
            .spawn()
            .map_err(|source| {
                CheckpointError::SpawnCriu {
                    path: criu.clone(),
                    source,
                }
                .into()
            })
            .and_then(|child| wait_criu(child, "dump", &c.name, &log));
        if let Err(e) = dumped {
            let _ = self.record(&c.id, |r| r.checkpointing = false);
            let failed = dir.with_extension("failed");
            let _ = std::fs::remove_dir_all(&failed);
            return Err(match std::fs::rename(&new, &failed) {
                Ok(()) => match e {
                    crate::Error::Checkpoint(CheckpointError::Criu {
                        verb,
                        container,
                        status,
                        first_error,
                        ..
                    }) => CheckpointError::Criu {
                        verb,
                        container,
                        status,
                        first_error,
                        log: failed.join("images/dump.log"),
                    }
                    .into(),
                    other => other,
                },
                Err(_) => e,
            });
        }
        if !opts.leave_running {
            // Its exit, recorded by the monitor once CRIU has killed it.
            self.wait_exit(c, Some(Duration::from_secs(10)))?;
            self.record(&c.id, |r| r.checkpointing = false)?;
            if paused {
                // An empty leaf left frozen would freeze CRIU itself when
                // it moves in to restore.
                cgroups.thaw_frozen(Some(c.id.as_str()))?;
            }
        }
        let meta = Checkpoint {
            container: self.container(&c.id)?,
            pod: pod.clone(),
            created: crate::now(),
            paused,
            leave_running: opts.leave_running,
            tcp_established: opts.tcp_established,
            files,
            mounts,
        };
        let meta_path = new.join("checkpoint.json");
        let json = serde_json::to_vec_pretty(&meta).map_err(|e| CheckpointError::Write {
            path: meta_path.clone(),
            source: e.into(),
        })?;
        std::fs::write(&meta_path, json).map_err(write_err(&meta_path))?;
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::rename(&new, &dir).map_err(write_err(&dir))?;
        let info = CheckpointInfo {
            created: meta.created,
            dir: dir.clone(),
            size: dir_size(&dir.join("images")),
            leave_running: opts.leave_running,
        };
        self.record(&c.id, |r| r.checkpoint = Some(info.clone()))?;
        if let Some(archive) = &opts.export {
            export(&dir, archive)?;
        }
        self.container_event(c, "checkpoint", &[]);
        Ok(info)
    }

    /// Restores an exited container from its checkpoint, in its pod (a
    /// pod `run` made for it gets a new pause process, as for `start`),
    /// through a new monitor: `monitor` runs [`Sandbox::run_monitor`] with
    /// a [`Restore`]. Returns once the restored process runs.
    pub fn restore_container(
        &self,
        c: &ContainerRecord,
        monitor: Command,
    ) -> Result<ContainerRecord> {
        match self.container_status(c) {
            crate::ContainerStatus::Exited(_) => {}
            other => {
                return Err(CheckpointError::NotExited {
                    container: c.name.clone(),
                    status: other.word(),
                }
                .into())
            }
        }
        let dir = self.checkpoint_dir(c);
        if !dir.join("checkpoint.json").is_file() {
            return Err(CheckpointError::NoCheckpoint {
                container: c.name.clone(),
            }
            .into());
        }
        self.criu()?;
        self.prepare_pod_for_start(c)?;
        let pod = self.pod(&c.pod)?;
        let cgroups = self.pod_cgroups(&pod)?;
        cgroups.create(&[c.id.as_str()])?;
        cgroups.thaw_frozen(Some(c.id.as_str()))?;
        let fresh = self.container(&c.id)?;
        self.start_container(&fresh, monitor)
            .map_err(restore_failed)
    }

    /// Restores a checkpoint (a container's, or an imported archive's) as a
    /// new container named `name` (the checkpointed one's name if `None`),
    /// in the checkpointed container's pod if it still runs, else in a new
    /// pod made the same way. `monitor` gives the command of the new
    /// container's monitor. A failure removes what was made for it.
    pub fn restore_as(
        &self,
        source: &RestoreSource,
        name: Option<String>,
        monitor: impl FnOnce(&crate::Id) -> std::io::Result<Command>,
    ) -> Result<ContainerRecord> {
        let staged;
        let dir = match source {
            RestoreSource::Container(c) => {
                let dir = self.checkpoint_dir(c);
                if !dir.join("checkpoint.json").is_file() {
                    return Err(CheckpointError::NoCheckpoint {
                        container: c.name.clone(),
                    }
                    .into());
                }
                dir
            }
            RestoreSource::Archive(path) => {
                staged = Staged::new(self.store.root(), path)?;
                staged.0.clone()
            }
        };
        let meta = self.read_checkpoint(&dir)?;
        self.criu()?;
        let old = &meta.container;
        if old.image.is_some() {
            return Err(CheckpointError::Refused {
                container: old.name.clone(),
                reason: "restoring a container made from an image under a new name, or from \
                         an archive, needs its root filesystem's changes, which checkpoints \
                         do not carry yet"
                    .to_owned(),
            }
            .into());
        }
        let same_pod = self
            .pod(&old.pod)
            .ok()
            .filter(|p| !p.implicit && self.pod_status(p) == crate::PodStatus::Running);
        let name = name.unwrap_or_else(|| old.name.clone());
        let opts = crate::ContainerOptions {
            name: Some(name),
            pod: same_pod.as_ref().map(|p| p.id.as_str().to_owned()),
            labels: old.labels.clone(),
            env: old.env.clone(),
            workdir: old.workdir.clone(),
            rootfs: old.rootfs.clone(),
            image: None,
            user: old.user,
            command: old.command.clone(),
            auto_remove: old.auto_remove,
            healthcheck: old.healthcheck.clone(),
            limits: old.limits,
            restart: old.restart,
            isolation: old.isolation.clone(),
            hostname: same_pod.is_none().then(|| meta.pod.hostname.clone()),
            init: false,
            stdio: old.stdio,
        };
        let c = self.create_container(opts)?;
        let restored = (|| {
            let target = self.checkpoint_dir(&c);
            copy_tree(&dir, &target)?;
            let cmd = monitor(&c.id).map_err(|source| crate::Error::SpawnMonitor {
                container: c.name.clone(),
                source,
            })?;
            self.start_container(&c, cmd).map_err(restore_failed)
        })();
        if restored.is_err() {
            let _ = self.remove_container(&self.container(&c.id).unwrap_or(c), true);
        }
        restored
    }

    /// Restores the container's process from its checkpoint in the
    /// monitor (which must be single-threaded): CRIU, started in the
    /// container's cgroup leaves, forks the tree as the monitor's children
    /// and exits. Returns the restored root's PID, and the read ends of its
    /// new stdout and stderr pipes.
    pub(crate) fn restore_process(
        &self,
        c: &ContainerRecord,
        restore: &Restore,
        stdin: Option<OwnedFd>,
        stdout: OwnedFd,
        stderr: OwnedFd,
    ) -> Result<u32> {
        let dir = self.checkpoint_dir(c);
        let meta = self.read_checkpoint(&dir)?;
        let criu = self.criu()?;
        let pod = self.pod(&c.pod)?;
        let images = dir.join("images");
        let log = dir.join("restore.log");
        let pidfile = dir.join("restore.pid");
        let _ = std::fs::remove_file(&pidfile);
        let rootfs = c.rootfs.clone().ok_or_else(|| CheckpointError::Refused {
            container: c.name.clone(),
            reason: "it has no root filesystem of its own".to_owned(),
        })?;
        let mut keep: Vec<OwnedFd> = Vec::new();
        let mut cmd = Command::new(&criu);
        cmd.arg("restore")
            .arg("--images-dir")
            .arg(&images)
            .arg("--log-file")
            .arg(&log)
            .arg("-v4")
            .arg("--root")
            .arg(&rootfs)
            .arg("--restore-detached")
            .arg("--restore-sibling")
            .arg("--pidfile")
            .arg(&pidfile)
            // The network lock's method is the dump's (in its inventory).
            .arg("--manage-cgroups=ignore");
        if meta.tcp_established {
            cmd.arg("--tcp-established");
        }
        if restore.paused {
            cmd.arg("--leave-stopped");
        }
        let mut stdin = stdin;
        let mut stdout = Some(stdout);
        let mut stderr = Some(stderr);
        for f in &meta.files {
            let fd = match &f.path {
                Some(path) => std::fs::OpenOptions::new()
                    .read(!f.write)
                    .write(f.write)
                    .open(path)
                    .map(OwnedFd::from)
                    .map_err(|source| CheckpointError::Read {
                        path: path.clone(),
                        source,
                    })?,
                None => match f.fd {
                    0 => stdin.take(),
                    1 => stdout.take(),
                    _ => stderr.take(),
                }
                .ok_or_else(|| CheckpointError::Refused {
                    container: c.name.clone(),
                    reason: format!("its standard stream {} was a pipe and has none now", f.fd),
                })?,
            };
            cmd.arg("--inherit-fd")
                .arg(format!("fd[{}]:{}", fd.as_raw_fd(), f.key));
            keep.push(fd);
        }
        let pins = crate::ns::pin_dir(&self.pod_dir(&pod));
        for ns in &pod.share {
            match ns {
                Namespace::Net => {
                    let (_, fd) = crate::ns::open(&self.pod_dir(&pod), &[Namespace::Net])?
                        .pop()
                        .expect("ns::open returns one descriptor per namespace asked for");
                    cmd.arg("--inherit-fd")
                        .arg(format!("fd[{}]:{NET_KEY}", fd.as_raw_fd()));
                    keep.push(fd);
                }
                Namespace::Ipc | Namespace::Uts => {
                    cmd.arg("--join-ns").arg(format!(
                        "{}:{}",
                        ns.name(),
                        pins.join(ns.name()).display()
                    ));
                }
                Namespace::Pid | Namespace::Cgroup => {}
            }
        }
        for m in &meta.mounts {
            cmd.arg("--external").arg(format!(
                "mnt[{}]:{}",
                m.target.display(),
                m.source.display()
            ));
        }
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .current_dir("/");
        let leaf_procs = self.pod_cgroups(&pod)?.leaf_procs(c.id.as_str());
        let child = crate::spawn::spawn_in_leaves(cmd, &leaf_procs, &keep).map_err(|source| {
            CheckpointError::SpawnCriu {
                path: criu.clone(),
                source,
            }
        })?;
        wait_criu(child, "restore", &c.name, &log)?;
        // The restored tasks have their copies.
        drop(keep);
        let mut text = String::new();
        std::fs::File::open(&pidfile)
            .and_then(|mut f| f.read_to_string(&mut text))
            .map_err(|source| CheckpointError::PidFile {
                path: pidfile.clone(),
                source,
            })?;
        let pid = text
            .trim()
            .parse::<u32>()
            .map_err(|_| CheckpointError::PidFile {
                path: pidfile.clone(),
                source: std::io::ErrorKind::InvalidData.into(),
            })?;
        if restore.paused {
            // Stopped by CRIU: frozen first, then continued, so no
            // instruction of it runs before the freeze.
            let placement = self.leaf_placement(c)?;
            freezer::Freezer::new()
                .pause(&self.host.hierarchies, &placement)
                .map_err(|e| crate::Error::from_freezer(e, Kind::Container, &c.name))?;
            for p in crate::cgroups::PodCgroups::of(&self.host.hierarchies, &c.pod)?
                .freezer_cgroup(Some(c.id.as_str()))
                .map(|cg| freezer::proc::read_pids(&cg.dir.join("cgroup.procs")))??
            {
                if let Some(p) = rustix::process::Pid::from_raw(p as i32) {
                    let _ = rustix::process::kill_process(p, rustix::process::Signal::CONT);
                }
            }
        }
        Ok(pid)
    }
}

/// The monitor's report of a restore that failed, as the restore's error
/// (not a command's that could not run: no 126 or 127).
fn restore_failed(e: crate::Error) -> crate::Error {
    match e {
        crate::Error::StartFailed {
            container, message, ..
        } => CheckpointError::RestoreFailed { container, message }.into(),
        other => other,
    }
}

/// How the monitor brings a container back.
#[derive(Debug, Clone, Copy, Default)]
pub struct Restore {
    /// Frozen, as it was paused.
    pub paused: bool,
}

/// Where a restore under a new name comes from.
#[derive(Debug)]
pub enum RestoreSource {
    /// A container's own checkpoint.
    Container(Box<ContainerRecord>),
    /// An exported archive.
    Archive(PathBuf),
}

/// An archive unpacked under the state root, removed when dropped.
#[derive(Debug)]
struct Staged(PathBuf);

impl Staged {
    fn new(root: &Path, archive: &Path) -> Result<Self> {
        let dir = root.join(format!(
            "checkpoint-import-{}",
            crate::Id::generate()?.short()
        ));
        let staged = Staged(dir);
        let import = |source| CheckpointError::Import {
            path: archive.to_owned(),
            source,
        };
        std::fs::create_dir_all(&staged.0).map_err(import)?;
        let file = std::fs::File::open(archive).map_err(import)?;
        // `unpack` refuses entries that lead out of the directory.
        tar::Archive::new(file).unpack(&staged.0).map_err(import)?;
        if !staged.0.join("checkpoint.json").is_file() || !staged.0.join("images").is_dir() {
            return Err(import(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "no checkpoint.json and images/ in it",
            ))
            .into());
        }
        Ok(staged)
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Writes a checkpoint directory to a tar archive (its files only: the
/// images and checkpoint.json; not the logs of later restores).
fn export(dir: &Path, archive: &Path) -> Result<()> {
    let err = |source| CheckpointError::Export {
        path: archive.to_owned(),
        source,
    };
    let tmp = archive.with_extension("partial");
    let file = std::fs::File::create(&tmp).map_err(err)?;
    let mut builder = tar::Builder::new(file);
    builder
        .append_path_with_name(dir.join("checkpoint.json"), "checkpoint.json")
        .and_then(|()| builder.append_dir_all("images", dir.join("images")))
        .and_then(|()| builder.into_inner())
        .and_then(|f| f.sync_all())
        .and_then(|()| std::fs::rename(&tmp, archive))
        .map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            err(e)
        })?;
    Ok(())
}

/// Copies a checkpoint directory (hard links where it can: the images
/// are never written after the dump).
fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    let write = |path: &Path, source| CheckpointError::Write {
        path: path.to_owned(),
        source,
    };
    std::fs::create_dir_all(to).map_err(|e| write(to, e))?;
    let entries = std::fs::read_dir(from).map_err(|source| CheckpointError::Read {
        path: from.to_owned(),
        source,
    })?;
    for entry in entries {
        let entry = entry.map_err(|source| CheckpointError::Read {
            path: from.to_owned(),
            source,
        })?;
        let src = entry.path();
        let dst = to.join(entry.file_name());
        if src.is_dir() {
            copy_tree(&src, &dst)?;
        } else if src.extension().is_some_and(|e| e == "log" || e == "pid") {
            // The restores' own files stay with their container.
        } else if std::fs::hard_link(&src, &dst).is_err() {
            std::fs::copy(&src, &dst).map_err(|e| write(&dst, e))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const INSIDE: &str = "\
73 49 254:0 /tmp/x/rootfs / rw,relatime - ext4 /dev/vda rw
74 73 0:41 / /proc rw,nosuid - proc proc rw
75 73 0:42 / /sys ro,nosuid - sysfs sysfs ro
76 73 0:43 / /dev rw,nosuid - tmpfs tmpfs rw,size=65536k
77 76 0:6 /null /dev/null rw,relatime - devtmpfs devtmpfs rw
83 76 0:44 / /dev/shm rw,nosuid - tmpfs shm rw
84 74 0:45 / /proc/acpi ro,nosuid - tmpfs tmpfs ro
85 74 0:6 /null /proc/keys rw,relatime - devtmpfs devtmpfs rw
88 74 0:41 /bus /proc/bus ro,nosuid - proc proc rw
92 73 254:0 /srv/data\\040dir /data rw - ext4 /dev/vda rw
";
    const HOST: &str = "\
22 1 254:0 / / rw,relatime - ext4 /dev/vda rw
24 22 0:6 / /dev rw - devtmpfs udev rw
";

    #[test]
    fn binds_from_the_host_are_external_and_the_rest_is_criu_s() {
        let mounts = outer_mounts(INSIDE, HOST).expect("mapped");
        assert_eq!(
            mounts,
            vec![
                OuterMount {
                    target: "/dev/null".into(),
                    source: "/dev/null".into()
                },
                OuterMount {
                    target: "/proc/keys".into(),
                    source: "/dev/null".into()
                },
                OuterMount {
                    target: "/data".into(),
                    source: "/srv/data dir".into()
                },
            ]
        );
    }

    #[test]
    fn a_bind_from_nowhere_on_the_host_is_named() {
        let inside = "73 49 254:0 / / rw - ext4 /dev/vda rw\n90 73 0:99 /x /mnt rw - fuse f rw\n";
        assert_eq!(outer_mounts(inside, HOST), Err(PathBuf::from("/mnt")));
    }

    #[test]
    fn the_first_real_error_of_a_log_is_quoted() {
        let dir = std::env::temp_dir().join(format!("stasis-test-log-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let log = dir.join("restore.log");
        std::fs::write(
            &log,
            "(00.1) Error (criu/util.c:1533): rlimit: Can't setup RLIMIT_NOFILE for self\n\
             (00.2) Error (criu/image.c:12): Unexpected EOF on pages-1.img\n\
             (00.3) Error (criu/cr-restore.c:9): Restoring FAILED.\n",
        )
        .expect("write");
        assert_eq!(first_error(&log), "Unexpected EOF on pages-1.img");
        std::fs::remove_dir_all(&dir).expect("clean");
        assert_eq!(first_error(&dir.join("none")), "no error in its log");
    }
}
