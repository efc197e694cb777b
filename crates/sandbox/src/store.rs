//! The state store: one JSON record per pod and per container.
//!
//! ```text
//! <root>/lock                         store lock: creation and names
//! <root>/pods/<id>/pod.json           the pod's record
//! <root>/pods/<id>/ns/<kind>          namespace pins (bind mounts)
//! <root>/containers/<id>/container.json
//! <root>/containers/<id>/log          the container's stdout and stderr
//! <root>/<kind>/<id>/lock             the record's lock
//! ```
//!
//! A record is written whole or not at all (temp file, fsync, rename) under
//! its lock, so a CLI killed at any point leaves a store every later command
//! can read. A directory without a readable record (a create killed before
//! its first write) is ignored by listings.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::fd::OwnedFd;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use rustix::fs::FlockOperation;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::{io_err, Error, Kind, Result};
use crate::id::Id;

/// The default state root: tmpfs, so state does not outlive a reboot.
pub const DEFAULT_ROOT: &str = "/run/stasis";

/// The state store under one root directory.
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
}

/// An exclusive lock, released when dropped.
#[derive(Debug)]
pub struct Lock {
    _fd: OwnedFd,
}

impl Store {
    /// Opens (creating if needed) the store at `root`.
    pub fn open(root: &Path) -> Result<Self> {
        for dir in [root.to_owned(), root.join("pods"), root.join("containers")] {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&dir)
                .map_err(io_err("creating the state directory", &dir))?;
        }
        Ok(Store {
            root: root.to_owned(),
        })
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The directory of a record.
    pub fn dir(&self, kind: Kind, id: &Id) -> PathBuf {
        self.root.join(kind_dir(kind)).join(id.as_str())
    }

    /// The record file of a pod or container.
    pub fn record_path(&self, kind: Kind, id: &Id) -> PathBuf {
        self.dir(kind, id).join(match kind {
            Kind::Pod => "pod.json",
            Kind::Container | Kind::ContainerOrPod => "container.json",
        })
    }

    /// Locks the whole store (creation, names).
    pub fn lock(&self) -> Result<Lock> {
        lock_file(&self.root.join("lock"))
    }

    /// Locks one record.
    pub fn lock_record(&self, kind: Kind, id: &Id) -> Result<Lock> {
        lock_file(&self.dir(kind, id).join("lock"))
    }

    /// Creates the directory of a new record.
    pub fn create_dir(&self, kind: Kind, id: &Id) -> Result<PathBuf> {
        let dir = self.dir(kind, id);
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&dir)
            .map_err(io_err("creating", &dir))?;
        Ok(dir)
    }

    /// Writes a record atomically: temp file, fsync, rename.
    pub fn write<T: Serialize>(&self, kind: Kind, id: &Id, record: &T) -> Result<()> {
        let path = self.record_path(kind, id);
        let tmp = path.with_extension("json.tmp");
        let data = serde_json::to_vec_pretty(record).map_err(|source| Error::Record {
            path: path.clone(),
            source,
        })?;
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(io_err("writing", &tmp))?;
        file.write_all(&data)
            .and_then(|()| file.sync_all())
            .map_err(io_err("writing", &tmp))?;
        std::fs::rename(&tmp, &path).map_err(io_err("renaming into place", &path))
    }

    /// Reads a record; `None` if it does not exist.
    pub fn read<T: DeserializeOwned>(&self, kind: Kind, id: &Id) -> Result<Option<T>> {
        let path = self.record_path(kind, id);
        let data = match std::fs::read(&path) {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_err("reading", &path)(e)),
        };
        serde_json::from_slice(&data)
            .map(Some)
            .map_err(|source| Error::Record { path, source })
    }

    /// The IDs of every record of a kind, sorted.
    pub fn ids(&self, kind: Kind) -> Result<Vec<Id>> {
        let dir = self.root.join(kind_dir(kind));
        let mut ids = Vec::new();
        for entry in std::fs::read_dir(&dir).map_err(io_err("listing", &dir))? {
            let entry = entry.map_err(io_err("listing", &dir))?;
            if let Ok(id) = Id::try_from(entry.file_name().to_string_lossy().into_owned()) {
                ids.push(id);
            }
        }
        ids.sort();
        Ok(ids)
    }

    /// Every readable record of a kind; unreadable ones are skipped with a
    /// warning (a create killed mid-way leaves a directory without one).
    pub fn all<T: DeserializeOwned>(&self, kind: Kind) -> Result<Vec<T>> {
        let mut out = Vec::new();
        for id in self.ids(kind)? {
            match self.read(kind, &id) {
                Ok(Some(r)) => out.push(r),
                Ok(None) => {}
                Err(e) => tracing::warn!(%id, error = %e, "skipping an unreadable record"),
            }
        }
        Ok(out)
    }

    /// Removes a record's directory and everything in it.
    pub fn remove(&self, kind: Kind, id: &Id) -> Result<()> {
        let dir = self.dir(kind, id);
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_err("removing", &dir)(e)),
        }
    }
}

/// Finds the one record `query` names: a full ID, else an exact name, else
/// a unique ID prefix (docker's order).
pub fn lookup<'a, T>(
    kind: Kind,
    query: &str,
    records: &'a [T],
    id_of: impl Fn(&T) -> &Id,
    name_of: impl Fn(&T) -> &str,
) -> Result<&'a T> {
    if let Some(r) = records.iter().find(|r| id_of(r).as_str() == query) {
        return Ok(r);
    }
    if let Some(r) = records.iter().find(|r| name_of(r) == query) {
        return Ok(r);
    }
    if Id::is_prefix_like(query) {
        let matches: Vec<&T> = records
            .iter()
            .filter(|r| id_of(r).as_str().starts_with(query))
            .collect();
        match matches.as_slice() {
            [one] => return Ok(one),
            [] => {}
            many => {
                return Err(Error::Ambiguous {
                    kind,
                    prefix: query.to_owned(),
                    matches: many.iter().map(|r| id_of(r).short().to_owned()).collect(),
                })
            }
        }
    }
    Err(Error::NotFound {
        kind,
        name: query.to_owned(),
    })
}

fn kind_dir(kind: Kind) -> &'static str {
    match kind {
        Kind::Pod => "pods",
        Kind::Container | Kind::ContainerOrPod => "containers",
    }
}

fn lock_file(path: &Path) -> Result<Lock> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(libc::O_CLOEXEC)
        .open(path)
        .map_err(io_err("opening the lock", path))?;
    let fd = OwnedFd::from(file);
    rustix::fs::flock(&fd, FlockOperation::LockExclusive)
        .map_err(|e| io_err("locking", path)(e.into()))?;
    Ok(Lock { _fd: fd })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Serialize, Deserialize, PartialEq)]
    struct Rec {
        id: Id,
        name: String,
    }

    #[test]
    fn records_round_trip_and_lookup() {
        let root = std::env::temp_dir().join(format!("stasis-unit-store-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let store = Store::open(&root).expect("open");
        let mut recs = Vec::new();
        for name in ["web", "db"] {
            let id = Id::generate().expect("id");
            store.create_dir(Kind::Container, &id).expect("dir");
            let _lock = store.lock_record(Kind::Container, &id).expect("lock");
            let rec = Rec {
                id: id.clone(),
                name: name.into(),
            };
            store.write(Kind::Container, &id, &rec).expect("write");
            recs.push(rec);
        }
        // A directory whose create died before the first write is skipped.
        store
            .create_dir(Kind::Container, &Id::generate().expect("id"))
            .expect("dir");
        let all: Vec<Rec> = store.all(Kind::Container).expect("all");
        assert_eq!(all.len(), 2);
        let find = |q: &str| {
            lookup(Kind::Container, q, &all, |r| &r.id, |r| &r.name).map(|r| r.name.clone())
        };
        assert_eq!(find("web").expect("by name"), "web");
        assert_eq!(find(recs[1].id.as_str()).expect("by id"), "db");
        assert_eq!(find(recs[0].id.short()).expect("by prefix"), "web");
        assert!(find("nope").expect_err("missing").is_not_found());
        // The empty prefix-like "" is no query; a one-digit prefix may be ambiguous.
        let shared = (0..=15u8)
            .map(|d| format!("{d:x}"))
            .find(|p| all.iter().all(|r| r.id.as_str().starts_with(p.as_str())));
        if let Some(p) = shared {
            assert!(find(&p).expect_err("ambiguous").is_invalid());
        }
        let _ = std::fs::remove_dir_all(&root);
    }
}
