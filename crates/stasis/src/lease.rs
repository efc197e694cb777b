//! Leases: a pause that always ends (`pause --lease D`, `--until-exit PID`).
//!
//! A lease is a record in the state store, `<state root>/leases/<tag>.json`
//! (the tag is the fence's, [`Fences::tag`]: the cgroup's path hashed, so a
//! target named any way has one lease), holding the cgroup (its directory,
//! hierarchy and path), the expiry as wall-clock seconds and nanoseconds,
//! the `--until-exit` process (PID and start time, so a reused PID is not
//! taken for it) and the watchdog's PID and start time.
//!
//! The order, and why: (1) the record is written, atomically; (2) the
//! watchdog is started (this binary, `internal-watchdog TAG`, detached in a
//! session of its own with its stdio on `/dev/null`, in the caller's cgroup,
//! which the freezer never lets be the target); (3) the target is frozen. A
//! CLI killed at any point therefore leaves either nothing frozen, or a
//! frozen target with a record that the watchdog, or failing it any later
//! stasis command ([`enforce_expired`], at the start of every command),
//! thaws once due. The watchdog sleeps in `poll` on the `--until-exit`
//! pidfd and an inotify watch of the leases directory (a renew renames a
//! new record in, an unpause deletes it: it wakes at once) with the time
//! left as its timeout; when due it thaws whichever hierarchy holds the
//! target, removes the fence (`--reset-connections`), then the record.
//!
//! Everyone who acts on a lease takes its lock, an `flock` of
//! `<state root>/lease-locks/<tag>.lock` (which also holds the temporary
//! files of atomic writes, so the leases directory holds records only). The
//! pausing CLI holds it from before the record is written until the freeze
//! (and reset) is done, so an enforcer never thaws before a freeze that is
//! still coming; an enforcer waits at most [`LOCK_WAIT`] for it (a CLI that
//! never returns does not block the thaw), and the CLI, once it has frozen,
//! thaws again itself if the lease ended meanwhile.

use std::fs::{self, File};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use connections::Tag;
use freezer::{Cgroup, Choice, Freezer, Hierarchies, Hierarchy, Version};
use rustix::fs::FlockOperation;
use serde::{Deserialize, Serialize};

use crate::exit::Refusal;
use crate::reset::Fences;

/// How long an enforcer waits for a lease's lock before acting without it.
pub const LOCK_WAIT: Duration = Duration::from_secs(10);
/// How long a watchdog waits before trying again when a thaw failed.
const RETRY: Duration = Duration::from_secs(1);
const PROC: &str = "/proc";

/// A wall-clock time, as the record stores it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct WallTime {
    pub secs: u64,
    pub nanos: u32,
}

impl WallTime {
    pub fn now() -> Self {
        Self::at(SystemTime::now())
    }

    /// `d` from now.
    pub fn after(d: Duration) -> Self {
        Self::at(SystemTime::now() + d)
    }

    fn at(t: SystemTime) -> Self {
        let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
        WallTime {
            secs: d.as_secs(),
            nanos: d.subsec_nanos(),
        }
    }

    fn since_epoch(self) -> Duration {
        Duration::new(self.secs, self.nanos)
    }

    /// The time left until then (zero once it has passed).
    pub fn remaining(self) -> Duration {
        self.since_epoch().saturating_sub(Self::now().since_epoch())
    }

    /// RFC 3339 in UTC, to the millisecond: `2026-12-01T21:40:00.123Z`.
    pub fn rfc3339(self) -> String {
        sandbox::time::rfc3339_millis(UNIX_EPOCH + self.since_epoch())
    }
}

/// One process for good: its PID and start time (a reused PID has a later one).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Process {
    pub pid: u32,
    pub start_time: u64,
}

impl Process {
    /// The process `pid` is now.
    pub fn of(pid: u32) -> freezer::Result<Self> {
        let stat = freezer::proc::stat(Path::new(PROC), pid)?;
        Ok(Process {
            pid,
            start_time: stat.start_time,
        })
    }

    /// Whether it still runs (not gone, not a zombie, not replaced).
    pub fn is_alive(&self) -> bool {
        matches!(freezer::proc::stat(Path::new(PROC), self.pid),
            Ok(s) if s.start_time == self.start_time && !s.is_dead())
    }
}

/// The cgroup hierarchy version, as the record spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Tree {
    V1,
    V2,
}

impl From<Version> for Tree {
    fn from(v: Version) -> Self {
        match v {
            Version::V1 => Tree::V1,
            Version::V2 => Tree::V2,
        }
    }
}

impl From<Tree> for Version {
    fn from(t: Tree) -> Self {
        match t {
            Tree::V1 => Version::V1,
            Tree::V2 => Version::V2,
        }
    }
}

/// A lease, as `<root>/leases/<tag>.json` holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// The target as the user named it.
    pub name: String,
    /// The frozen cgroup: its path in the hierarchy, directory, hierarchy.
    pub cgroup: String,
    pub dir: PathBuf,
    pub hierarchy: Tree,
    pub mount_point: PathBuf,
    pub hierarchy_root: String,
    /// When it runs out (`--lease`), if it does.
    pub expires: Option<WallTime>,
    /// The process whose exit ends it (`--until-exit`).
    pub until_exit: Option<Process>,
    /// The watchdog that enforces it, once started.
    pub watchdog: Option<Process>,
}

impl Record {
    fn new(name: &str, cgroup: &Cgroup) -> Self {
        Record {
            name: name.to_owned(),
            cgroup: cgroup.path.clone(),
            dir: cgroup.dir.clone(),
            hierarchy: cgroup.version().into(),
            mount_point: cgroup.hierarchy.mount_point.clone(),
            hierarchy_root: cgroup.hierarchy.root.clone(),
            expires: None,
            until_exit: None,
            watchdog: None,
        }
    }

    /// Whether it has run out: expired, or its process has exited.
    pub fn is_due(&self) -> bool {
        self.expires.is_some_and(|e| e <= WallTime::now())
            || self.until_exit.is_some_and(|p| !p.is_alive())
    }

    /// The cgroup as recorded (for its tag and its fence).
    fn recorded_cgroup(&self) -> Cgroup {
        Cgroup {
            hierarchy: Hierarchy {
                version: self.hierarchy.into(),
                mount_point: self.mount_point.clone(),
                root: self.hierarchy_root.clone(),
            },
            path: self.cgroup.clone(),
            dir: self.dir.clone(),
        }
    }

    /// What `state`, `inspect` and `ps --format json` show.
    pub fn view(&self) -> View {
        View {
            expires: self.expires.map(WallTime::rfc3339),
            until_exit: self.until_exit.map(|p| p.pid),
        }
    }

    /// For people: `28s left (2026-12-01T21:40:00.123Z)`, `until process 7 exits`.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(e) = self.expires {
            parts.push(format!("{} left ({})", short(e.remaining()), e.rfc3339()));
        }
        if let Some(p) = self.until_exit {
            parts.push(format!("until process {} exits", p.pid));
        }
        parts.join(", ")
    }

    /// For `ps`'s STATUS: `lease 28s`, `until 7 exits`.
    pub fn brief(&self) -> String {
        match (self.expires, self.until_exit) {
            (Some(e), _) => format!("lease {}", short(e.remaining())),
            (None, Some(p)) => format!("until {} exits", p.pid),
            (None, None) => "lease".to_owned(),
        }
    }
}

/// `28s`, `4m`, `3h`: the time left, rounded up.
pub(crate) fn short(d: Duration) -> String {
    let s = d.as_secs() + u64::from(d.subsec_nanos() > 0);
    match s {
        0..=119 => format!("{s}s"),
        120..=7199 => format!("{}m", s.div_ceil(60)),
        _ => format!("{}h", s.div_ceil(3600)),
    }
}

/// The lease as `--format json` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct View {
    /// RFC 3339, UTC.
    pub expires: Option<String>,
    pub until_exit: Option<u32>,
}

/// What `--lease`, `--renew` and `--until-exit` asked for.
#[derive(Debug, Clone, Copy, Default)]
pub struct Terms {
    pub lease: Option<Duration>,
    pub until_exit: Option<u32>,
}

impl Terms {
    fn is_given(&self) -> bool {
        self.lease.is_some() || self.until_exit.is_some()
    }
}

/// The lease records and their locks under a state root.
#[derive(Debug, Clone)]
pub struct Leases {
    root: PathBuf,
    dir: PathBuf,
    locks: PathBuf,
}

/// A lease's lock, held until dropped (empty when it was passed by).
pub struct Lock(Option<(File, PathBuf)>);

impl Lock {
    /// Removes the lock file of a lease that ended, while holding it: a
    /// locker that opened it meanwhile sees it was unlinked and retries.
    fn unlink(&self) {
        if let Some((_, path)) = &self.0 {
            let _ = fs::remove_file(path);
        }
    }
}

impl Leases {
    pub fn new(state_root: &Path) -> Self {
        Leases {
            root: state_root.to_owned(),
            dir: state_root.join("leases"),
            locks: state_root.join("lease-locks"),
        }
    }

    fn path(&self, tag: &Tag) -> PathBuf {
        self.dir.join(format!("{tag}.json"))
    }

    /// The lease of `cgroup`, if it has one.
    pub fn of(&self, cgroup: &Cgroup) -> Result<Option<Record>> {
        self.read(&Fences::tag(cgroup))
    }

    /// For display (`state`, `ps`, `inspect`): the lease of `cgroup`, or
    /// none when the store cannot be read (a user who may not read it).
    pub fn shown(&self, cgroup: &Cgroup) -> Option<Record> {
        self.of(cgroup).unwrap_or_else(|e| {
            log_unreadable(&e);
            None
        })
    }

    /// For display: every lease, or none when the store cannot be read.
    pub fn all_shown(&self) -> Vec<(Tag, Record)> {
        self.all().unwrap_or_else(|e| {
            log_unreadable(&e);
            Vec::new()
        })
    }

    /// The record with this tag, if there is one.
    pub fn read(&self, tag: &Tag) -> Result<Option<Record>> {
        let path = self.path(tag);
        match fs::read(&path) {
            Ok(text) => serde_json::from_slice(&text)
                .map(Some)
                .with_context(|| format!("reading the lease {}", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("reading the lease {}", path.display())),
        }
    }

    /// Writes a record atomically: a temporary file (synced), then rename.
    fn write(&self, tag: &Tag, record: &Record) -> Result<()> {
        for dir in [&self.dir, &self.locks] {
            fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let path = self.path(tag);
        let tmp = self.locks.join(format!("{tag}.{}.tmp", std::process::id()));
        let text = serde_json::to_vec(record).expect("a record serializes");
        fs::write(&tmp, text)
            .and_then(|()| File::open(&tmp)?.sync_all())
            .and_then(|()| fs::rename(&tmp, &path))
            .with_context(|| format!("writing the lease {}", path.display()))
    }

    /// Removes a record; whether there was one.
    fn remove(&self, tag: &Tag) -> Result<bool> {
        let path = self.path(tag);
        match fs::remove_file(&path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e).with_context(|| format!("removing the lease {}", path.display())),
        }
    }

    /// Takes the lock of `tag`, waiting at most `wait`; after that the lock
    /// is passed by (an empty [`Lock`]), so no holder blocks a thaw for good.
    fn lock(&self, tag: &Tag, wait: Duration) -> Result<Lock> {
        fs::create_dir_all(&self.locks)
            .with_context(|| format!("creating {}", self.locks.display()))?;
        let path = self.locks.join(format!("{tag}.lock"));
        let file = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .with_context(|| format!("opening the lock {}", path.display()))?;
        let end = std::time::Instant::now() + wait;
        let mut file = file;
        loop {
            match rustix::fs::flock(&file, FlockOperation::NonBlockingLockExclusive) {
                Ok(()) if same_file(&file, &path) => return Ok(Lock(Some((file, path)))),
                Ok(()) => {
                    // Its holder ended the lease and unlinked it: lock the new one.
                    file = fs::OpenOptions::new()
                        .create(true)
                        .truncate(false)
                        .write(true)
                        .open(&path)
                        .with_context(|| format!("opening the lock {}", path.display()))?;
                }
                Err(rustix::io::Errno::WOULDBLOCK) if std::time::Instant::now() < end => {
                    std::thread::sleep(Duration::from_millis(2));
                }
                Err(rustix::io::Errno::WOULDBLOCK) => {
                    tracing::warn!(lock = %path.display(), "lease lock still held; acting without it");
                    return Ok(Lock(None));
                }
                Err(e) => {
                    return Err(e).with_context(|| format!("locking {}", path.display()));
                }
            }
        }
    }

    /// Every record (one `readdir` when there is none).
    pub fn all(&self) -> Result<Vec<(Tag, Record)>> {
        let entries = match fs::read_dir(&self.dir) {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => {
                return Err(e).with_context(|| format!("listing {}", self.dir.display()));
            }
        };
        let mut out = Vec::new();
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(tag) = name
                .to_str()
                .and_then(|n| n.strip_suffix(".json"))
                .and_then(|t| Tag::new(t.to_owned()).ok())
            else {
                continue;
            };
            if let Some(record) = self.read(&tag)? {
                out.push((tag, record));
            }
        }
        Ok(out)
    }

    /// Ends the lease `tag` if it is due: thaws, unfences, removes the
    /// record, all under its lock. Whether it did.
    pub fn expire(&self, tag: &Tag) -> Result<bool> {
        let lock = self.lock(tag, LOCK_WAIT)?;
        let Some(record) = self.read(tag)? else {
            return Ok(false);
        };
        if !record.is_due() {
            return Ok(false);
        }
        thaw(&record)
            .with_context(|| format!("thawing {} at the end of its lease", record.name))?;
        Fences::new(&self.root).remove(&record.recorded_cgroup(), None)?;
        self.remove(tag)?;
        lock.unlink();
        tracing::info!(target = %record.name, cgroup = %record.cgroup, "lease ended: thawed");
        Ok(true)
    }

    /// Starts a watchdog for `tag` and records it.
    fn start_watchdog(&self, tag: &Tag, record: &mut Record) -> Result<Child> {
        let exe = std::env::current_exe().context("finding the stasis binary")?;
        let child = Command::new(exe)
            .arg("--root")
            .arg(&self.root)
            .arg("internal-watchdog")
            .arg(tag.as_str())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting the lease's watchdog")?;
        // Our child: its PID cannot be reused before we reap it.
        record.watchdog = Process::of(child.id()).ok();
        self.write(tag, record)?;
        Ok(child)
    }
}

/// Whether the open `file` is still the one at `path`.
fn same_file(file: &File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (file.metadata(), fs::metadata(path)) {
        (Ok(a), Ok(b)) => a.ino() == b.ino() && a.dev() == b.dev(),
        _ => false,
    }
}

/// Thaws the recorded cgroup in whichever hierarchy holds it; a cgroup that
/// is gone or not paused is fine.
fn thaw(record: &Record) -> Result<()> {
    let version: Version = record.hierarchy.into();
    let (hierarchies, _mount) =
        freezer::open(Path::new(PROC), Choice::of(version), &std::env::temp_dir())
            .context("finding the cgroup hierarchies")?;
    let cgroup = match locate(&hierarchies, record) {
        Ok(cg) => cg,
        Err(e) if e.is_not_found() => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    let placement = hierarchies.place_cgroup(cgroup)?;
    match Freezer::new().unpause(&placement) {
        Ok(_) => Ok(()),
        Err(e) if e.is_not_paused() || e.is_not_found() => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// The recorded cgroup in the hierarchies visible now: at its directory, or
/// (a private mount elsewhere) at its path.
fn locate(hierarchies: &Hierarchies, record: &Record) -> freezer::Result<Cgroup> {
    match hierarchies.cgroup_at_dir(&record.dir) {
        Err(e) if e.is_invalid() => {
            hierarchies.counterpart(&record.recorded_cgroup(), record.hierarchy.into())
        }
        other => other,
    }
}

/// Whether any hierarchy holds `cgroup` frozen.
fn is_paused(hierarchies: &Hierarchies, cgroup: &Cgroup) -> Result<bool> {
    let placement = hierarchies.place_cgroup(cgroup.clone())?;
    Ok(Freezer::new()
        .states(&placement)?
        .iter()
        .any(|(_, s)| s.is_frozen()))
}

/// A lease set up around a freeze: recorded, its watchdog started, its lock
/// held until [`Pending::confirm`] or [`Pending::abort`].
pub struct Pending {
    leases: Leases,
    tag: Tag,
    record: Record,
    watchdog: Child,
    lock: Lock,
}

impl Pending {
    /// The freeze failed: the lease ends before it began.
    fn abort(mut self) {
        match self.leases.remove(&self.tag) {
            Ok(_) => self.lock.unlink(),
            Err(e) => {
                tracing::warn!(error = %format!("{e:#}"), "removing the lease of a failed pause")
            }
        }
        // Our own child, not yet reaped: the PID is still its.
        let _ = self.watchdog.kill();
        let _ = self.watchdog.wait();
    }

    /// The freeze held. If the lease ended meanwhile (an enforcer that did
    /// not wait for the lock), thaw again: the lease's end stands.
    fn confirm(self) -> Result<()> {
        if self.leases.read(&self.tag)?.is_none() {
            thaw(&self.record)?;
        }
        Ok(())
    }
}

/// Pauses `cgroup` (by `freeze`, then `after`: the reset) under the lease
/// `terms` ask for: record, then watchdog, then freeze. Without terms, just
/// `freeze` and `after`.
pub fn around_pause(
    state_root: &Path,
    hierarchies: &Hierarchies,
    cgroup: &Cgroup,
    name: &str,
    terms: Terms,
    freeze: impl FnOnce() -> Result<()>,
    after: impl FnOnce() -> Result<()>,
) -> Result<()> {
    if !terms.is_given() {
        freeze()?;
        return after();
    }
    let pending = begin(state_root, hierarchies, cgroup, name, terms)?;
    match freeze().and_then(|()| after()) {
        Ok(()) => pending.confirm(),
        Err(e) => {
            pending.abort();
            Err(e)
        }
    }
}

fn begin(
    state_root: &Path,
    hierarchies: &Hierarchies,
    cgroup: &Cgroup,
    name: &str,
    terms: Terms,
) -> Result<Pending> {
    let mut record = Record::new(name, cgroup);
    if let Some(pid) = terms.until_exit {
        record.until_exit =
            Some(Process::of(pid).with_context(|| format!("the process of --until-exit {pid}"))?);
    }
    let leases = Leases::new(state_root);
    let tag = Fences::tag(cgroup);
    let lock = leases.lock(&tag, LOCK_WAIT)?;
    if leases.read(&tag)?.is_some() && is_paused(hierarchies, cgroup)? {
        return Err(Refusal::conflict(format!(
            "{name} is already paused with a lease (extend it with --renew --lease DURATION)"
        ))
        .into());
    }
    record.expires = terms.lease.map(WallTime::after);
    leases.write(&tag, &record)?;
    let watchdog = match leases.start_watchdog(&tag, &mut record) {
        Ok(w) => w,
        Err(e) => {
            let _ = leases.remove(&tag);
            return Err(e);
        }
    };
    Ok(Pending {
        leases,
        tag,
        record,
        watchdog,
        lock,
    })
}

/// `pause --renew --lease D`: the lease of paused `cgroup` now ends `d`
/// from now (a watchdog that died is replaced).
pub fn renew(
    state_root: &Path,
    hierarchies: &Hierarchies,
    cgroup: &Cgroup,
    name: &str,
    d: Duration,
) -> Result<()> {
    let leases = Leases::new(state_root);
    let tag = Fences::tag(cgroup);
    let _lock = leases.lock(&tag, LOCK_WAIT)?;
    let Some(mut record) = leases.read(&tag)? else {
        return Err(Refusal::conflict(format!(
            "{name} has no lease to renew (pause it with --lease DURATION)"
        ))
        .into());
    };
    if !is_paused(hierarchies, cgroup)? {
        return Err(Refusal::conflict(format!(
            "{name} is not paused: its lease has nothing to renew"
        ))
        .into());
    }
    record.expires = Some(WallTime::after(d));
    if record.watchdog.is_some_and(|w| w.is_alive()) {
        return leases.write(&tag, &record);
    }
    // A dead watchdog's record would tell a new one it is not the watchdog.
    record.watchdog = None;
    leases.write(&tag, &record)?;
    leases.start_watchdog(&tag, &mut record).map(drop)
}

/// After an unpause of `cgroup`: the lease ends with it (its record is
/// removed; the watchdog sees that at once and exits). A failed thaw keeps
/// the lease, so that it is still enforced; "not paused" ends it.
pub fn after_unpause<T>(state_root: &Path, cgroup: &Cgroup, unpaused: Result<T>) -> Result<T> {
    let ends = match &unpaused {
        Ok(_) => true,
        Err(e) => e.chain().any(|c| {
            c.downcast_ref::<freezer::Error>()
                .is_some_and(freezer::Error::is_not_paused)
                || c.downcast_ref::<sandbox::Error>()
                    .is_some_and(sandbox::Error::is_conflict)
        }),
    };
    let leases = Leases::new(state_root);
    let tag = Fences::tag(cgroup);
    // Most unpauses have no lease: one failed open, and no lock file made.
    if ends && leases.path(&tag).exists() {
        let ended = leases.lock(&tag, LOCK_WAIT).and_then(|lock| {
            leases.remove(&tag)?;
            lock.unlink();
            Ok(())
        });
        let value = unpaused?;
        ended?;
        return Ok(value);
    }
    unpaused
}

/// Enforces every due lease under `state_root`: one `readdir` of a missing
/// or empty directory when there is none. Run before every command, so even
/// a killed watchdog's lease ends; failures are warnings, not the command's.
pub fn enforce_expired(state_root: &Path) {
    let leases = Leases::new(state_root);
    let all = match leases.all() {
        Ok(all) => all,
        Err(e) => {
            log_unreadable(&e);
            return;
        }
    };
    for (tag, record) in all {
        if !record.is_due() {
            continue;
        }
        if let Err(e) = leases.expire(&tag) {
            eprintln!(
                "stasis: warning: the lease of {} ran out: {e:#}",
                record.name
            );
        }
    }
}

/// Logs a store that could not be read: quietly when permission was denied
/// (a user who may not read the store may not thaw what it holds either).
fn log_unreadable(e: &anyhow::Error) {
    let denied = e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::PermissionDenied)
    });
    if denied {
        tracing::debug!(error = %format!("{e:#}"), "the leases are not readable");
    } else {
        tracing::warn!(error = %format!("{e:#}"), "reading the leases");
    }
}

/// The watchdog of lease `tag` (`stasis internal-watchdog TAG`): sleeps
/// until the lease is due, then ends it. Exits when the record is gone (an
/// unpause or an enforcer ended it) or names another watchdog.
pub fn watch(state_root: &Path, tag: &Tag) -> Result<()> {
    // A session of its own: the terminal's hang-up and signals are not ours.
    let _ = rustix::process::setsid();
    let leases = Leases::new(state_root);
    let me = std::process::id();
    let inotify = rustix::fs::inotify::init(
        rustix::fs::inotify::CreateFlags::CLOEXEC | rustix::fs::inotify::CreateFlags::NONBLOCK,
    )
    .context("inotify_init")?;
    {
        use rustix::fs::inotify::WatchFlags;
        rustix::fs::inotify::add_watch(
            &inotify,
            &leases.dir,
            WatchFlags::DELETE | WatchFlags::MOVED_TO | WatchFlags::DELETE_SELF,
        )
        .with_context(|| format!("watching {}", leases.dir.display()))?;
    }
    let mut controller: Option<(Process, OwnedFd)> = None;
    loop {
        let Some(record) = leases.read(tag)? else {
            return Ok(());
        };
        if record.watchdog.is_some_and(|w| w.pid != me) {
            return Ok(());
        }
        if record.is_due() {
            match leases.expire(tag) {
                Ok(_) => continue,
                Err(e) => {
                    tracing::warn!(error = %format!("{e:#}"), "ending the lease; retrying");
                    std::thread::sleep(RETRY);
                    continue;
                }
            }
        }
        if let Some(p) = record.until_exit {
            if controller.as_ref().map(|c| c.0) != Some(p) {
                let pid = rustix::process::Pid::from_raw(p.pid as i32);
                controller = pid
                    .and_then(|pid| {
                        rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty()).ok()
                    })
                    .map(|fd| (p, fd));
                // The pidfd may name a newer process with that PID: the
                // start time, read after opening it, says.
                if !p.is_alive() {
                    continue;
                }
            }
        }
        let timeout = record.expires.map(|e| {
            let left = e.remaining();
            rustix::event::Timespec {
                tv_sec: left.as_secs() as _,
                tv_nsec: left.subsec_nanos() as _,
            }
        });
        let mut fds = vec![rustix::event::PollFd::new(
            &inotify,
            rustix::event::PollFlags::IN,
        )];
        if let Some((_, fd)) = &controller {
            fds.push(rustix::event::PollFd::new(fd, rustix::event::PollFlags::IN));
        }
        match rustix::event::poll(&mut fds, timeout.as_ref()) {
            Ok(_) | Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e).context("poll"),
        }
        drain(inotify.as_fd());
    }
}

/// Reads every pending inotify event (only the wake-up matters).
fn drain(fd: std::os::fd::BorrowedFd<'_>) {
    let mut buf = [0u8; 4096];
    while matches!(rustix::io::read(fd, &mut buf), Ok(n) if n > 0) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_is_utc_to_the_millisecond() {
        let t = |secs, nanos| WallTime { secs, nanos }.rfc3339();
        assert_eq!(t(0, 0), "1970-01-01T00:00:00.000Z");
        assert_eq!(t(951_782_400, 5_000_000), "2000-02-29T00:00:00.005Z");
        assert_eq!(t(1_796_247_045, 999_999_999), "2026-12-02T21:30:45.999Z");
        assert_eq!(t(4_107_542_399, 0), "2100-02-28T23:59:59.000Z");
    }

    #[test]
    fn time_left_is_short_and_rounded_up() {
        assert_eq!(short(Duration::from_millis(27_100)), "28s");
        assert_eq!(short(Duration::ZERO), "0s");
        assert_eq!(short(Duration::from_secs(300)), "5m");
        assert_eq!(short(Duration::from_secs(3 * 3600)), "3h");
    }

    fn scratch() -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "stasis-lease-unit-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("scratch");
        dir
    }

    fn record(expires: Option<WallTime>) -> Record {
        Record {
            name: "web".into(),
            cgroup: "/a/b".into(),
            dir: "/sys/fs/cgroup/freezer/a/b".into(),
            hierarchy: Tree::V1,
            mount_point: "/sys/fs/cgroup/freezer".into(),
            hierarchy_root: "/".into(),
            expires,
            until_exit: None,
            watchdog: None,
        }
    }

    #[test]
    fn records_round_trip_and_only_records_are_listed() {
        let root = scratch();
        let leases = Leases::new(&root);
        assert!(leases.all().expect("no directory").is_empty());
        let tag = Fences::tag(&record(None).recorded_cgroup());
        let r = record(Some(WallTime::after(Duration::from_secs(60))));
        leases.write(&tag, &r).expect("write");
        assert_eq!(leases.read(&tag).expect("read"), Some(r.clone()));
        let _lock = leases.lock(&tag, Duration::ZERO).expect("lock");
        fs::write(root.join("leases/stray.tmp"), "x").expect("stray");
        assert_eq!(leases.all().expect("all"), vec![(tag.clone(), r)]);
        assert!(leases.remove(&tag).expect("remove"));
        assert!(!leases.remove(&tag).expect("again"));
        fs::remove_dir_all(&root).expect("cleanup");
    }

    #[test]
    fn a_lease_is_due_when_it_expires_or_its_process_is_gone() {
        assert!(!record(Some(WallTime::after(Duration::from_secs(60)))).is_due());
        assert!(record(Some(WallTime::now())).is_due());
        assert!(!record(None).is_due());
        let mut r = record(None);
        r.until_exit = Some(Process::of(std::process::id()).expect("self"));
        assert!(!r.is_due());
        r.until_exit = Some(Process {
            pid: std::process::id(),
            start_time: r.until_exit.expect("set").start_time + 1,
        });
        assert!(r.is_due(), "a reused PID is not the process");
    }

    #[test]
    fn a_held_lock_is_waited_for_then_passed_by() {
        let root = scratch();
        let leases = Leases::new(&root);
        let tag = Fences::tag(&record(None).recorded_cgroup());
        let held = leases.lock(&tag, Duration::ZERO).expect("lock");
        assert!(held.0.is_some());
        let passed = leases.lock(&tag, Duration::from_millis(20)).expect("lock");
        assert!(passed.0.is_none(), "a second locker passes it by");
        drop(held);
        let again = leases.lock(&tag, Duration::ZERO).expect("lock");
        assert!(again.0.is_some());
        // Unlinked by its holder: the next locker makes and locks a new one.
        let opened = fs::File::open(root.join(format!("lease-locks/{tag}.lock"))).expect("open");
        again.unlink();
        rustix::fs::flock(&opened, FlockOperation::NonBlockingLockShared)
            .expect_err("still held through the unlinked file");
        let fresh = leases.lock(&tag, Duration::ZERO).expect("a new lock file");
        assert!(fresh.0.is_some(), "not blocked by the unlinked one");
        drop(again);
        fs::remove_dir_all(&root).expect("cleanup");
    }
}
