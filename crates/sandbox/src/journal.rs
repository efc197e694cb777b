//! The event journal: what happened to pods and containers, one JSON line
//! per event, appended by whoever did it (the CLI, a container's monitor,
//! the API service) and read by `stasis events` and `GET /events`.
//!
//! ```text
//! <root>/events.jsonl      the current file: a header line, then events
//! <root>/events.jsonl.1    the previous file, once the current one filled up
//! <root>/events.lock       appends share it; a rotation holds it alone
//! ```
//!
//! - **One write per event.** An event is encoded first and written with one
//!   `write(2)` on a descriptor opened `O_APPEND`, so concurrent writers'
//!   lines never interleave. A file whose last byte is not a newline (torn by
//!   a crash) gets one in front of the next event, in the same write, so the
//!   torn line stays alone. (A writer can also see another's line half
//!   written, as the kernel grows the file page by page, and add a newline
//!   that was not needed: a blank line, which readers skip.)
//! - **Readers never stop writers**: they take no lock. They return complete
//!   lines only and never move past an incomplete one (a reader can see a
//!   write in progress); a complete line that does not parse is skipped with a
//!   warning. [`Journal::wait`] watches the state root with inotify.
//! - **Offsets survive rotation.** Each file starts with a header,
//!   `{"journal":1,"base":N}`: `N` is the offset of the file's first byte in
//!   the journal as a whole, the previous file's base plus its length. An
//!   offset is therefore a position in the whole journal, and a reader still
//!   in the previous file finishes it and goes on in the current one.
//! - **Bounded.** An append that would take the current file past
//!   [`DEFAULT_LIMIT`] renames it to `events.jsonl.1` (replacing the one
//!   before) and starts a new file; the journal keeps at most about twice the
//!   limit. A reader more than one rotation behind skips to the oldest event
//!   left, with a warning.
//! - **Nothing is fsynced.** The state root is a tmpfs by default, where
//!   fsync does nothing; on a root on disk, the last events before a power
//!   loss may be lost (or torn, which readers survive). The journal tells what
//!   happened; the records, which are fsynced, tell what is.
//!
//! Writing an event never fails the operation it reports: the sandbox logs a
//! failed append with `tracing::warn!` and carries on.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rustix::fs::FlockOperation;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::watch::Watch;

/// The current file's name under the state root.
pub const FILE: &str = "events.jsonl";
/// The previous file's name.
pub const PREVIOUS: &str = "events.jsonl.1";
const LOCK: &str = "events.lock";
const TEMP: &str = "events.jsonl.tmp";
/// The size past which the current file is rotated: 4 MiB, some 15,000
/// events.
pub const DEFAULT_LIMIT: u64 = 4 << 20;

/// What an event is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventType {
    Container,
    Pod,
}

impl EventType {
    /// The word docker (and podman) use: `container`, `pod`.
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Container => "container",
            EventType::Pod => "pod",
        }
    }
}

impl std::fmt::Display for EventType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One thing that happened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// When, nanoseconds since the epoch.
    #[serde(rename = "timeNano")]
    pub time_nano: u64,
    #[serde(rename = "type")]
    pub kind: EventType,
    /// docker's word: create, start, pause, unpause, kill, stop, die,
    /// destroy; for pods (podman's): create, pause, unpause, stop, remove.
    pub action: String,
    /// The full ID of the pod or container.
    pub id: String,
    /// `name`, the labels (each its own attribute, as docker does), and
    /// per action `exitCode` (die) or `signal` (kill).
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
}

impl Event {
    /// An event that happens now.
    pub fn now(
        kind: EventType,
        action: &str,
        id: &str,
        attributes: BTreeMap<String, String>,
    ) -> Event {
        let time_nano = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
        Event {
            time_nano,
            kind,
            action: action.to_owned(),
            id: id.to_owned(),
            attributes,
        }
    }

    /// When it happened.
    pub fn time(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_nanos(self.time_nano)
    }

    /// The event as the Docker Engine API's `GET /events` sends it (moby's
    /// `events.Message`): `Type`, `Action`, `Actor{ID, Attributes}`, `scope`
    /// "local", `time` in seconds and `timeNano`, and for containers the
    /// legacy `status`, `id` and (with an image) `from` that old clients
    /// still read.
    pub fn docker_json(&self) -> serde_json::Value {
        let mut v = serde_json::json!({
            "Type": self.kind.as_str(),
            "Action": self.action,
            "Actor": { "ID": self.id, "Attributes": self.attributes },
            "scope": "local",
            "time": self.time_nano / 1_000_000_000,
            "timeNano": self.time_nano,
        });
        if self.kind == EventType::Container {
            v["status"] = self.action.clone().into();
            v["id"] = self.id.clone().into();
            if let Some(image) = self.attributes.get("image") {
                v["from"] = image.clone().into();
            }
        }
        v
    }
}

/// The first line of each file.
#[derive(Debug, Serialize, Deserialize)]
struct Header {
    journal: u32,
    base: u64,
}

/// The journal of one state root.
#[derive(Debug, Clone)]
pub struct Journal {
    root: PathBuf,
    limit: u64,
}

impl Journal {
    /// The journal under state root `root` (`<root>/events.jsonl`).
    pub fn at(root: &Path) -> Journal {
        Journal {
            root: root.to_owned(),
            limit: DEFAULT_LIMIT,
        }
    }

    /// Rotates once the current file would pass `bytes` (tests use a small
    /// limit).
    pub fn with_limit(mut self, bytes: u64) -> Journal {
        self.limit = bytes;
        self
    }

    /// The current file.
    pub fn path(&self) -> PathBuf {
        self.root.join(FILE)
    }

    /// Appends one event: one `write(2)` of one whole line, `O_APPEND`,
    /// under the shared lock that keeps a rotation from happening meanwhile.
    pub fn append(&self, e: &Event) -> Result<()> {
        let path = self.path();
        let mut line = serde_json::to_vec(e).map_err(Error::EncodeEvent)?;
        line.push(b'\n');
        let lock = self.lock_file()?;
        let mut tries = 0;
        loop {
            tries += 1;
            self.flock(&lock, FlockOperation::LockShared)?;
            // Readable too, to see whether the last line was torn.
            let file = match OpenOptions::new()
                .read(true)
                .append(true)
                .custom_flags(libc::O_CLOEXEC)
                .open(&path)
            {
                Ok(f) => f,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound && tries < 4 => {
                    // The first event, or the current file was removed by
                    // hand: go on where the previous file, if any, ended.
                    self.exclusively(&lock, |j| {
                        let previous = j.open_segment(&j.root.join(PREVIOUS))?;
                        j.start_file(previous.map_or(0, |p| p.end()))
                    })?;
                    continue;
                }
                Err(source) => return Err(Error::AppendEvent { path, source }),
            };
            let meta = file.metadata().map_err(|source| Error::AppendEvent {
                path: path.clone(),
                source,
            })?;
            let size = meta.len();
            if size + line.len() as u64 > self.limit && tries < 4 {
                let ino = meta.ino();
                drop(file);
                self.exclusively(&lock, |j| j.rotate(ino))?;
                continue;
            }
            let mut last = [0u8; 1];
            let torn = size > 0
                && file.read_at(&mut last, size - 1).is_ok_and(|n| n == 1)
                && last[0] != b'\n';
            if torn {
                line.insert(0, b'\n');
            }
            let written = rustix::io::write(&file, &line).map_err(|e| Error::AppendEvent {
                path: path.clone(),
                source: e.into(),
            })?;
            if written != line.len() {
                return Err(Error::AppendEvent {
                    path,
                    source: std::io::Error::new(
                        std::io::ErrorKind::WriteZero,
                        format!("wrote {written} of {} bytes", line.len()),
                    ),
                });
            }
            return Ok(());
        }
    }

    /// The events from `offset` (0: the oldest kept) to the last complete
    /// line, and the offset to read from next.
    pub fn read_from(&self, offset: u64) -> Result<(Vec<Event>, u64)> {
        let (chunks, next) = self.complete_lines(offset)?;
        let mut events = Vec::new();
        for chunk in &chunks {
            for line in chunk.split(|&b| b == b'\n') {
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                match serde_json::from_slice::<Event>(line) {
                    Ok(e) => events.push(e),
                    Err(error) => tracing::warn!(
                        path = %self.path().display(),
                        %error,
                        "skipping a line of the event journal that does not parse"
                    ),
                }
            }
        }
        Ok((events, next))
    }

    /// The offset just past the last complete line: where a reader that has
    /// read everything stands (`stasis events` without `--since`).
    pub fn end(&self) -> Result<u64> {
        Ok(self.complete_lines(0)?.1)
    }

    /// Waits until the journal has a complete line past `offset` or `limit`
    /// has passed, whichever is first (an inotify watch on the state root).
    pub fn wait(&self, offset: u64, limit: Duration) -> Result<()> {
        let end = Instant::now() + limit;
        let mut watch = Watch::new(&self.root)?;
        loop {
            // Checked after the watch exists, so no append slips between.
            if self.complete_lines(offset)?.1 != offset {
                return Ok(());
            }
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(());
            }
            watch.wait(left)?;
        }
    }

    /// The complete lines from `offset` on (of the previous file, then of the
    /// current one), and the offset past them.
    fn complete_lines(&self, offset: u64) -> Result<(Vec<Vec<u8>>, u64)> {
        // A rotation between opening the current file and the previous one
        // shows as files that do not join up: read again.
        for _ in 0..3 {
            let Some(current) = self.open_segment(&self.path())? else {
                return Ok((Vec::new(), offset));
            };
            if offset >= current.base {
                if offset > current.end() {
                    // The journal was removed and started again.
                    tracing::warn!(
                        offset,
                        "the event journal is shorter than the offset: reading it anew"
                    );
                    return self
                        .read_segment(current, 0, false)
                        .map(|(b, n)| (vec![b], n));
                }
                return self
                    .read_segment(current, offset, false)
                    .map(|(b, n)| (vec![b], n));
            }
            let previous = match self.open_segment(&self.root.join(PREVIOUS))? {
                Some(p) if p.end() == current.base => p,
                Some(p) if p.end() > current.base => continue,
                _ => {
                    if offset > 0 {
                        tracing::warn!(
                            offset,
                            "events before the oldest file of the journal were lost"
                        );
                    }
                    return self
                        .read_segment(current, 0, false)
                        .map(|(b, n)| (vec![b], n));
                }
            };
            if offset > 0 && offset < previous.base {
                tracing::warn!(
                    offset,
                    "events before the oldest file of the journal were lost"
                );
            }
            // The previous file is final: a torn tail in it is skipped.
            let (old, _) = self.read_segment(previous, offset, true)?;
            let (new, next) = self.read_segment(current, 0, false)?;
            return Ok((vec![old, new], next));
        }
        Ok((Vec::new(), offset))
    }

    /// A file of the journal, open, with its header read; `None` if it does
    /// not exist (or has no complete header yet).
    fn open_segment(&self, path: &Path) -> Result<Option<Segment>> {
        let read_err = |source| Error::ReadEvents {
            path: path.to_owned(),
            source,
        };
        let mut file = match File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(read_err(source)),
        };
        let len = file.metadata().map_err(read_err)?.len();
        let mut head = [0u8; 64];
        let n = file.read(&mut head).map_err(read_err)?;
        let Some(nl) = head[..n].iter().position(|&b| b == b'\n') else {
            return Ok(None);
        };
        let header: Header = serde_json::from_slice(&head[..nl]).map_err(|e| read_err(e.into()))?;
        Ok(Some(Segment {
            file,
            path: path.to_owned(),
            base: header.base,
            header_len: nl as u64 + 1,
            len,
        }))
    }

    /// A segment's bytes from journal offset `offset` up to its last newline
    /// (`whole`: to its end), and the journal offset past them.
    fn read_segment(&self, mut s: Segment, offset: u64, whole: bool) -> Result<(Vec<u8>, u64)> {
        let start = offset.saturating_sub(s.base).max(s.header_len);
        let read_err = |source| Error::ReadEvents {
            path: s.path.clone(),
            source,
        };
        s.file.seek(SeekFrom::Start(start)).map_err(read_err)?;
        let mut bytes = Vec::new();
        s.file.read_to_end(&mut bytes).map_err(read_err)?;
        let keep = if whole {
            bytes.len()
        } else {
            bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1)
        };
        bytes.truncate(keep);
        let next = s.base + start + keep as u64;
        Ok((bytes, next))
    }

    fn lock_file(&self) -> Result<File> {
        let path = self.root.join(LOCK);
        OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .mode(0o600)
            .custom_flags(libc::O_CLOEXEC)
            .open(&path)
            .map_err(|source| Error::Lock { path, source })
    }

    fn flock(&self, lock: &File, op: FlockOperation) -> Result<()> {
        rustix::fs::flock(lock, op).map_err(|e| Error::Lock {
            path: self.root.join(LOCK),
            source: e.into(),
        })
    }

    /// Runs `f` with the lock held alone, then lets it go (the caller takes
    /// the shared lock again).
    fn exclusively(&self, lock: &File, f: impl FnOnce(&Journal) -> Result<()>) -> Result<()> {
        self.flock(lock, FlockOperation::Unlock)?;
        self.flock(lock, FlockOperation::LockExclusive)?;
        let result = f(self);
        self.flock(lock, FlockOperation::Unlock)?;
        result
    }

    /// Makes the current file, with its header, if there is none (call with
    /// the lock held alone). It appears whole: written aside, then renamed.
    fn start_file(&self, base: u64) -> Result<()> {
        let path = self.path();
        if path.exists() {
            return Ok(());
        }
        let tmp = self.root.join(TEMP);
        let err = |source| Error::RotateEvents {
            path: tmp.clone(),
            source,
        };
        let header =
            serde_json::to_vec(&Header { journal: 1, base }).map_err(Error::EncodeEvent)?;
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(err)?;
        file.write_all(&header)
            .and_then(|()| file.write_all(b"\n"))
            .map_err(err)?;
        std::fs::rename(&tmp, &path).map_err(err)
    }

    /// Moves the current file aside and starts the next one where it ended,
    /// unless someone else already did (it is no longer inode `ino`).
    fn rotate(&self, ino: u64) -> Result<()> {
        let path = self.path();
        let Some(current) = self.open_segment(&path)? else {
            return self.start_file(0);
        };
        let same = current.file.metadata().is_ok_and(|m| m.ino() == ino);
        if !same || current.len <= current.header_len {
            return Ok(());
        }
        let next_base = current.end();
        tracing::debug!(path = %path.display(), next_base, "rotating the event journal");
        std::fs::rename(&path, self.root.join(PREVIOUS)).map_err(|source| Error::RotateEvents {
            path: path.clone(),
            source,
        })?;
        self.start_file(next_base)
    }
}

/// One file of the journal, open.
#[derive(Debug)]
struct Segment {
    file: File,
    path: PathBuf,
    base: u64,
    header_len: u64,
    len: u64,
}

impl Segment {
    /// The journal offset of its end.
    fn end(&self) -> u64 {
        self.base + self.len
    }
}

impl crate::Sandbox {
    /// The event journal of this state root.
    pub fn journal(&self) -> Journal {
        Journal::at(self.store.root())
    }

    /// Records that `action` happened to a container: its labels, then its
    /// name (which wins over a label of that name, as in docker) and image,
    /// then `extra`. A failure is logged, never returned: the operation it
    /// reports has happened.
    pub(crate) fn container_event(
        &self,
        c: &crate::ContainerRecord,
        action: &str,
        extra: &[(&str, String)],
    ) {
        let mut attributes = c.labels.clone();
        attributes.insert("name".into(), c.name.clone());
        if let Some(image) = &c.image {
            // docker's `image` attribute (and, from it, the legacy `from`).
            attributes.insert("image".into(), image.name.clone());
        }
        for (k, v) in extra {
            attributes.insert((*k).to_owned(), v.clone());
        }
        self.emit(Event::now(
            EventType::Container,
            action,
            c.id.as_str(),
            attributes,
        ));
    }

    /// Records that `action` happened to a pod (its labels and name).
    pub(crate) fn pod_event(&self, pod: &crate::PodRecord, action: &str) {
        let mut attributes = pod.labels.clone();
        attributes.insert("name".into(), pod.name.clone());
        self.emit(Event::now(
            EventType::Pod,
            action,
            pod.id.as_str(),
            attributes,
        ));
    }

    fn emit(&self, e: Event) {
        if let Err(error) = self.journal().append(&e) {
            tracing::warn!(
                action = %e.action,
                id = %e.id,
                error = %crate::error::chain_text(&error),
                "the event was not recorded"
            );
        }
    }
}

/// docker's `--filter` of events (moby's `daemon/events/filter.go`): values
/// of one key are alternatives, different keys must all match.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filters {
    types: Vec<EventType>,
    events: Vec<String>,
    containers: Vec<String>,
    pods: Vec<String>,
    labels: Vec<(String, Option<String>)>,
}

impl Filters {
    /// Adds `key=value`: `type` (container, pod), `event` (an action),
    /// `container` and `pod` (a name or ID, or a prefix of either, as
    /// docker matches them), `label` (`K` or `K=V`).
    pub fn add(&mut self, key: &str, value: &str) -> Result<()> {
        let bad = |reason| Error::InvalidArgument {
            what: "event filter",
            value: format!("{key}={value}"),
            reason,
        };
        match key {
            "type" => self.types.push(match value {
                "container" => EventType::Container,
                "pod" => EventType::Pod,
                _ => return Err(bad("the types are container and pod")),
            }),
            "event" if !value.is_empty() => self.events.push(value.to_owned()),
            "container" if !value.is_empty() => self.containers.push(value.to_owned()),
            "pod" if !value.is_empty() => self.pods.push(value.to_owned()),
            "label" if !value.is_empty() => self.labels.push(match value.split_once('=') {
                Some((k, v)) => (k.to_owned(), Some(v.to_owned())),
                None => (value.to_owned(), None),
            }),
            "event" | "container" | "pod" | "label" => return Err(bad("give a value")),
            _ => return Err(bad("use type, event, container, pod or label")),
        }
        Ok(())
    }

    /// Parses one `KEY=VALUE` filter and adds it.
    pub fn add_pair(&mut self, pair: &str) -> Result<()> {
        match pair.split_once('=') {
            Some((k, v)) => self.add(k, v),
            None => Err(Error::InvalidArgument {
                what: "event filter",
                value: pair.to_owned(),
                reason: "use KEY=VALUE",
            }),
        }
    }

    /// Whether the event passes.
    pub fn matches(&self, e: &Event) -> bool {
        let any = |list: &[String], f: &dyn Fn(&str) -> bool| {
            list.is_empty() || list.iter().any(|v| f(v))
        };
        let names = |kind: EventType, list: &[String]| {
            list.is_empty()
                || (e.kind == kind
                    && list.iter().any(|v| {
                        e.id.starts_with(v.as_str())
                            || e.attributes
                                .get("name")
                                .is_some_and(|n| n.starts_with(v.as_str()))
                    }))
        };
        (self.types.is_empty() || self.types.contains(&e.kind))
            && any(&self.events, &|v| v == e.action)
            && names(EventType::Container, &self.containers)
            && names(EventType::Pod, &self.pods)
            && self.labels.iter().all(|(k, v)| {
                e.attributes
                    .get(k)
                    .is_some_and(|have| v.as_ref().is_none_or(|v| v == have))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Dir(PathBuf);

    impl Dir {
        fn new(tag: &str) -> Dir {
            let dir = std::env::temp_dir().join(format!(
                "stasis-unit-journal-{tag}-{}-{}",
                std::process::id(),
                crate::Id::generate().expect("id").short()
            ));
            std::fs::create_dir_all(&dir).expect("mkdir");
            Dir(dir)
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn event(action: &str, n: u64) -> Event {
        Event {
            time_nano: 1_796_161_200_000_000_000 + n,
            kind: EventType::Container,
            action: action.into(),
            id: format!("{n:064x}"),
            attributes: BTreeMap::from([("name".into(), format!("c{n}"))]),
        }
    }

    #[test]
    fn appended_events_read_back_in_order_and_offsets_resume() {
        let dir = Dir::new("order");
        let j = Journal::at(&dir.0);
        assert_eq!(j.read_from(0).expect("empty"), (Vec::new(), 0));
        j.append(&event("create", 1)).expect("append");
        j.append(&event("start", 2)).expect("append");
        let (events, next) = j.read_from(0).expect("read");
        assert_eq!(events, [event("create", 1), event("start", 2)]);
        assert_eq!(next, std::fs::metadata(j.path()).expect("len").len());
        assert_eq!(j.end().expect("end"), next);
        assert_eq!(j.read_from(next).expect("nothing new"), (Vec::new(), next));
        j.append(&event("pause", 3)).expect("append");
        let (events, again) = j.read_from(next).expect("read on");
        assert_eq!(events, [event("pause", 3)]);
        assert!(again > next);
        let text = std::fs::read_to_string(j.path()).expect("file");
        assert!(text.starts_with("{\"journal\":1,\"base\":0}\n"), "{text}");
        assert_eq!(text.lines().count(), 4, "a header and one line per event");
    }

    #[test]
    fn a_torn_last_line_is_never_passed_and_the_next_event_stands_alone() {
        let dir = Dir::new("torn");
        let j = Journal::at(&dir.0);
        j.append(&event("create", 1)).expect("append");
        let good = j.end().expect("end");
        // A crash that kept half a line.
        let mut f = OpenOptions::new()
            .append(true)
            .open(j.path())
            .expect("open");
        f.write_all(br#"{"timeNano":17961612000000000"#)
            .expect("tear");
        drop(f);
        let (events, next) = j.read_from(0).expect("read");
        assert_eq!(events, [event("create", 1)]);
        assert_eq!(next, good, "not past the incomplete line");
        // wait() does not take the torn tail for news.
        j.wait(good, Duration::from_millis(20)).expect("wait");
        assert_eq!(j.read_from(good).expect("still nothing").0, []);
        j.append(&event("start", 2)).expect("append after the tear");
        let (events, _) = j.read_from(next).expect("read on");
        assert_eq!(
            events,
            [event("start", 2)],
            "the torn line is skipped alone"
        );
        // Garbage in the middle is skipped too.
        std::fs::OpenOptions::new()
            .append(true)
            .open(j.path())
            .and_then(|mut f| f.write_all(b"not json\n"))
            .expect("garbage");
        j.append(&event("stop", 3)).expect("append");
        let (all, _) = j.read_from(0).expect("read all");
        assert_eq!(
            all,
            [event("create", 1), event("start", 2), event("stop", 3)]
        );
    }

    #[test]
    fn rotation_bounds_the_files_and_a_reader_carries_on_across_it() {
        let dir = Dir::new("rotate");
        let j = Journal::at(&dir.0).with_limit(600);
        j.append(&event("create", 0)).expect("append");
        let (_, mut offset) = j.read_from(0).expect("read");
        let mut seen = vec![event("create", 0)];
        for n in 1..40 {
            j.append(&event("start", n)).expect("append");
            if n % 3 == 0 {
                let (events, next) = j.read_from(offset).expect("read on");
                seen.extend(events);
                offset = next;
            }
        }
        let (events, _) = j.read_from(offset).expect("read the rest");
        seen.extend(events);
        let want: Vec<Event> = std::iter::once(event("create", 0))
            .chain((1..40).map(|n| event("start", n)))
            .collect();
        assert_eq!(seen, want, "a follower misses nothing across rotations");
        for f in [FILE, PREVIOUS] {
            let len = std::fs::metadata(dir.0.join(f)).expect(f).len();
            assert!(len <= 600, "{f} is {len} bytes");
        }
        // From 0, what is left: the previous file and the current one.
        let (kept, end) = j.read_from(0).expect("read kept");
        assert!(!kept.is_empty() && kept.len() < 40, "{}", kept.len());
        assert_eq!(kept.last(), Some(&event("start", 39)));
        assert_eq!(end, j.end().expect("end"));
        let header = std::fs::read_to_string(j.path()).expect("current");
        let header: Header =
            serde_json::from_str(header.lines().next().expect("header")).expect("parses");
        let previous = std::fs::read_to_string(dir.0.join(PREVIOUS)).expect("previous");
        let prev: Header =
            serde_json::from_str(previous.lines().next().expect("header")).expect("parses");
        assert_eq!(
            header.base,
            prev.base + previous.len() as u64,
            "the files join up"
        );
    }

    #[test]
    fn a_reader_left_behind_by_two_rotations_goes_on_from_the_oldest_kept() {
        let dir = Dir::new("behind");
        let j = Journal::at(&dir.0).with_limit(600);
        j.append(&event("create", 0)).expect("append");
        let (_, stale) = j.read_from(0).expect("read");
        for n in 1..30 {
            j.append(&event("start", n)).expect("append");
        }
        let (events, next) = j.read_from(stale).expect("read on");
        let (kept, end) = j.read_from(0).expect("kept");
        assert_eq!(events, kept, "what is left, from the oldest file on");
        assert_eq!(next, end);
        assert!(!events.iter().any(|e| e.action == "create"), "rotated away");
        assert_eq!(events.last(), Some(&event("start", 29)));
    }

    #[test]
    fn concurrent_writers_never_interleave_lines() {
        let dir = Dir::new("concurrent");
        let j = Journal::at(&dir.0);
        std::thread::scope(|s| {
            for t in 0..4u64 {
                let j = j.clone();
                s.spawn(move || {
                    for n in 0..50 {
                        j.append(&event("kill", t * 1000 + n)).expect("append");
                    }
                });
            }
        });
        let (events, _) = j.read_from(0).expect("read");
        let text = std::fs::read_to_string(j.path()).expect("current");
        // A writer that saw another's line half-way (the kernel grows the
        // size page by page) takes it for torn and adds a newline: a blank
        // line at worst, which readers skip; never a broken one.
        for line in text.lines().skip(1).filter(|l| !l.is_empty()) {
            serde_json::from_str::<Event>(line).expect("every line is one event");
        }
        let ids: std::collections::BTreeSet<&str> = events.iter().map(|e| e.id.as_str()).collect();
        assert_eq!((events.len(), ids.len()), (200, 200), "each once");
    }

    #[test]
    fn wait_returns_once_the_journal_grows_and_is_bounded() {
        let dir = Dir::new("wait");
        let j = Journal::at(&dir.0);
        let start = Instant::now();
        j.wait(0, Duration::from_millis(50)).expect("times out");
        assert!(start.elapsed() >= Duration::from_millis(50));
        std::thread::scope(|s| {
            let writer = j.clone();
            s.spawn(move || {
                std::thread::sleep(Duration::from_millis(30));
                writer.append(&event("pause", 1)).expect("append");
            });
            j.wait(0, Duration::from_secs(30)).expect("wakes");
        });
        assert_eq!(j.read_from(0).expect("read").0, [event("pause", 1)]);
    }

    #[test]
    fn docker_json_has_docker_s_shape() {
        let mut e = event("die", 7);
        e.attributes.insert("exitCode".into(), "137".into());
        let v = e.docker_json();
        assert_eq!(v["Type"], "container");
        assert_eq!(v["Action"], "die");
        assert_eq!(v["Actor"]["ID"], e.id.as_str());
        assert_eq!(v["Actor"]["Attributes"]["exitCode"], "137");
        assert_eq!(v["Actor"]["Attributes"]["name"], "c7");
        assert_eq!(v["scope"], "local");
        assert_eq!(v["time"], 1_796_161_200u64);
        assert_eq!(v["timeNano"], 1_796_161_200_000_000_007u64);
        assert_eq!(v["status"], "die");
        assert_eq!(v["id"], e.id.as_str());
        assert!(v.get("from").is_none(), "no image, no from");
        e.attributes.insert("image".into(), "busybox".into());
        assert_eq!(e.docker_json()["from"], "busybox");
        let pod = Event {
            kind: EventType::Pod,
            ..event("pause", 8)
        };
        let v = pod.docker_json();
        assert_eq!(v["Type"], "pod");
        assert!(v.get("status").is_none() && v.get("id").is_none(), "{v}");
        let line = serde_json::to_string(&pod).expect("encode");
        assert!(line.contains(r#""type":"pod""#), "{line}");
    }

    #[test]
    fn filters_match_as_docker_s_do() {
        let mut web = event("pause", 1);
        web.attributes.insert("name".into(), "web".into());
        web.attributes.insert("tier".into(), "front".into());
        let pod = Event {
            kind: EventType::Pod,
            attributes: BTreeMap::from([("name".into(), "web".into())]),
            ..event("pause", 2)
        };
        let f = |pairs: &[&str]| {
            let mut f = Filters::default();
            for p in pairs {
                f.add_pair(p).expect(p);
            }
            f
        };
        assert!(f(&[]).matches(&web) && f(&[]).matches(&pod));
        assert!(f(&["type=container"]).matches(&web));
        assert!(!f(&["type=container"]).matches(&pod));
        assert!(
            f(&["type=container", "type=pod"]).matches(&pod),
            "one key: any"
        );
        assert!(f(&["event=pause", "event=stop"]).matches(&web));
        assert!(!f(&["event=unpause"]).matches(&web));
        assert!(f(&["container=web"]).matches(&web));
        assert!(f(&["container=we"]).matches(&web), "a prefix, as docker");
        assert!(f(&[&format!("container={}", &web.id[..12])]).matches(&web));
        assert!(
            !f(&["container=web"]).matches(&pod),
            "a pod is not a container"
        );
        assert!(f(&["pod=web"]).matches(&pod) && !f(&["pod=web"]).matches(&web));
        assert!(f(&["label=tier"]).matches(&web));
        assert!(f(&["label=tier=front"]).matches(&web));
        assert!(!f(&["label=tier=back"]).matches(&web));
        assert!(!f(&["label=tier", "event=stop"]).matches(&web), "keys: all");
        for bad in ["type=volume", "bogus=1", "event=", "label", "container="] {
            assert!(
                Filters::default()
                    .add_pair(bad)
                    .expect_err(bad)
                    .is_invalid(),
                "{bad}"
            );
        }
    }
}
