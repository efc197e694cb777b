//! The state store: one JSON record per pod and per container.
//!
//! ```text
//! <root>/lock                         store lock: creation and names
//! <root>/pods/<id>/pod.json           the pod's record
//! <root>/pods/<id>/ns/<kind>          namespace pins (bind mounts)
//! <root>/containers/<id>/container.json
//! <root>/containers/<id>/log          the container's stdout and stderr
//! <root>/<kind>/<id>/lock             the record's lock
//! <root>/names/<kind>/<name>          the ID that holds a name
//! ```
//!
//! A record is written whole or not at all (temp file, fsync, rename) under
//! its lock, so a CLI killed at any point leaves a store every later command
//! can read. A directory without a readable record (a create killed before
//! its first write) is ignored by listings.
//!
//! Names are claimed by creating `names/<kind>/<name>` exclusively under the
//! store lock, so checking one costs one file, however many records exist;
//! a claim whose ID has no record (a create that died) is stale and may be
//! taken over.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::fd::OwnedFd;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use rustix::fs::FlockOperation;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::{at, Error, Kind, Result};
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
    /// Opens (creating if needed) the store at `root`. A store that exists
    /// but cannot be read (another user's) is [`Error::ReadStore`], not a
    /// failure to create it.
    pub fn open(root: &Path) -> Result<Self> {
        for dir in [root.to_owned(), root.join("pods"), root.join("containers")] {
            match std::fs::metadata(&dir) {
                Ok(m) if m.is_dir() => {
                    rustix::fs::access(
                        &dir,
                        rustix::fs::Access::READ_OK | rustix::fs::Access::EXEC_OK,
                    )
                    .map_err(|e| Error::ReadStore {
                        path: dir.clone(),
                        source: e.into(),
                    })?;
                    continue;
                }
                Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
                    return Err(Error::ReadStore {
                        path: root.to_owned(),
                        source: e,
                    })
                }
                _ => {}
            }
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&dir)
                .map_err(|source| Error::CreateStore {
                    path: dir.clone(),
                    source,
                })?;
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
            .map_err(|source| Error::CreateRecord {
                path: dir.clone(),
                source,
            })?;
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
            .map_err(|source| Error::WriteRecord {
                path: tmp.clone(),
                source,
            })?;
        file.write_all(&data)
            .and_then(|()| file.sync_all())
            .and_then(|()| std::fs::rename(&tmp, &path))
            .map_err(|source| Error::WriteRecord { path, source })
    }

    /// Reads a record; `None` if it does not exist.
    pub fn read<T: DeserializeOwned>(&self, kind: Kind, id: &Id) -> Result<Option<T>> {
        let path = self.record_path(kind, id);
        let data = match std::fs::read(&path) {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(Error::ReadRecord { path, source }),
        };
        serde_json::from_slice(&data)
            .map(Some)
            .map_err(|source| Error::Record { path, source })
    }

    /// The IDs of every record of a kind, sorted.
    pub fn ids(&self, kind: Kind) -> Result<Vec<Id>> {
        let dir = self.root.join(kind_dir(kind));
        let mut ids = Vec::new();
        let list_err = |source| Error::ReadStore {
            path: dir.clone(),
            source,
        };
        for entry in std::fs::read_dir(&dir).map_err(list_err)? {
            let entry = entry.map_err(list_err)?;
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

    /// Releases a record's name and removes its directory and everything
    /// in it. The claim goes first: it names this ID whether or not the
    /// record still exists, and once the record is gone nothing else would
    /// ever remove it.
    pub fn remove(&self, kind: Kind, id: &Id, name: &str) -> Result<()> {
        if self.claimed_by(kind, name).as_ref() == Some(id) {
            let path = self.name_path(kind, name);
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(source) => return Err(Error::ReleaseName { path, source }),
            }
        }
        let dir = self.dir(kind, id);
        // A writer that was already under way (a container's monitor
        // recording its end, the lock file it takes) can add an entry while
        // the directory is emptied: try again, a bounded number of times.
        let mut tries = 0;
        loop {
            match std::fs::remove_dir_all(&dir) {
                Ok(()) => return Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::DirectoryNotEmpty && tries < 20 => {
                    tries += 1;
                    std::thread::sleep(std::time::Duration::from_millis(5));
                }
                Err(source) => return Err(Error::RemoveRecord { path: dir, source }),
            }
        }
    }

    /// The ID written in a name's claim, whether or not its record exists.
    fn claimed_by(&self, kind: Kind, name: &str) -> Option<Id> {
        let text = std::fs::read_to_string(self.name_path(kind, name)).ok()?;
        Id::try_from(text.trim().to_owned()).ok()
    }

    /// The path of a name's claim, if there is one (for tests and checks).
    pub fn name_claim(&self, kind: Kind, name: &str) -> Option<PathBuf> {
        let path = self.name_path(kind, name);
        path.exists().then_some(path)
    }

    fn name_path(&self, kind: Kind, name: &str) -> PathBuf {
        // Names are validated before they get here: no separator, no `..`.
        self.root.join("names").join(kind_dir(kind)).join(name)
    }

    /// The ID whose record holds `name`, if that record exists.
    pub fn name_owner(&self, kind: Kind, name: &str) -> Option<Id> {
        let id = self.claimed_by(kind, name)?;
        self.record_path(kind, &id).exists().then_some(id)
    }

    /// Claims `name` for `id`; call with the store lock held.
    pub fn claim_name(&self, kind: Kind, name: &str, id: &Id) -> Result<()> {
        if let Some(owner) = self.name_owner(kind, name) {
            return Err(Error::NameInUse {
                kind,
                name: name.to_owned(),
                id: owner.short().to_owned(),
            });
        }
        let path = self.name_path(kind, name);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(at(|path, source| Error::ClaimName { path, source }, dir))?;
        }
        // Free, or stale: write the claim whole, then put it in place.
        let tmp = path.with_extension(format!("{}.tmp", id.short()));
        std::fs::write(&tmp, id.as_str())
            .and_then(|()| std::fs::rename(&tmp, &path))
            .map_err(|source| Error::ClaimName { path, source })
    }

    /// The one record `query` names: a full ID, else a name, else a unique
    /// ID prefix (docker's order).
    pub fn find(&self, kind: Kind, query: &str) -> Result<Id> {
        self.resolve(kind, query, |id| {
            Ok(self.record_path(kind, id).exists().then_some(()))
        })
        .map(|(id, ())| id)
    }

    /// [`Store::find`] and [`Store::read`] in one: the record `query` names,
    /// read once (no `stat` of it before).
    pub fn lookup<T: DeserializeOwned>(&self, kind: Kind, query: &str) -> Result<(Id, T)> {
        self.resolve(kind, query, |id| self.read(kind, id))
    }

    /// Docker's order of [`Store::find`], with `take` deciding whether a
    /// candidate's record is there (and what it yields).
    fn resolve<R>(
        &self,
        kind: Kind,
        query: &str,
        mut take: impl FnMut(&Id) -> Result<Option<R>>,
    ) -> Result<(Id, R)> {
        if let Ok(id) = Id::try_from(query.to_owned()) {
            if let Some(r) = take(&id)? {
                return Ok((id, r));
            }
        }
        if crate::id::validate_name(query).is_ok() {
            if let Some(id) = self.claimed_by(kind, query) {
                if let Some(r) = take(&id)? {
                    return Ok((id, r));
                }
            }
        }
        if Id::is_prefix_like(query) {
            let mut matches = Vec::new();
            for id in self.ids(kind)? {
                if id.as_str().starts_with(query) {
                    if let Some(r) = take(&id)? {
                        matches.push((id, r));
                    }
                }
            }
            if matches.len() > 1 {
                return Err(Error::Ambiguous {
                    kind,
                    prefix: query.to_owned(),
                    matches: matches
                        .iter()
                        .map(|(id, _)| id.short().to_owned())
                        .collect(),
                });
            }
            if let Some(one) = matches.pop() {
                return Ok(one);
            }
        }
        Err(Error::NotFound {
            kind,
            name: query.to_owned(),
        })
    }
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
        .map_err(|source| Error::Lock {
            path: path.to_owned(),
            source,
        })?;
    let fd = OwnedFd::from(file);
    rustix::fs::flock(&fd, FlockOperation::LockExclusive).map_err(|e| Error::Lock {
        path: path.to_owned(),
        source: e.into(),
    })?;
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
            let _lock = store.lock().expect("store lock");
            store.claim_name(Kind::Container, name, &id).expect("claim");
            store.create_dir(Kind::Container, &id).expect("dir");
            let rec = Rec {
                id: id.clone(),
                name: name.into(),
            };
            store.write(Kind::Container, &id, &rec).expect("write");
            recs.push(rec);
        }
        // A name is held while its record exists.
        let other = Id::generate().expect("id");
        let err = store
            .claim_name(Kind::Container, "web", &other)
            .expect_err("taken");
        assert!(err.is_conflict(), "{err}");
        // A create that died before its first write: the directory is
        // skipped and its claim is stale.
        let dead = Id::generate().expect("id");
        store
            .claim_name(Kind::Container, "ghost", &dead)
            .expect("claim");
        store.create_dir(Kind::Container, &dead).expect("dir");
        store
            .claim_name(Kind::Container, "ghost", &other)
            .expect("a stale claim is taken over");
        let all: Vec<Rec> = store.all(Kind::Container).expect("all");
        assert_eq!(all.len(), 2);
        let find = |q: &str| store.find(Kind::Container, q);
        assert_eq!(find("web").expect("by name"), recs[0].id);
        assert_eq!(find(recs[1].id.as_str()).expect("by id"), recs[1].id);
        assert_eq!(find(recs[0].id.short()).expect("by prefix"), recs[0].id);
        assert!(find("nope").expect_err("missing").is_not_found());
        assert!(find("../x").expect_err("not a name").is_not_found());
        // A prefix two IDs share is ambiguous (IDs made to share one).
        for tail in ["1", "2"] {
            let id = Id::try_from(format!("ffff{}", tail.repeat(60))).expect("id");
            store.create_dir(Kind::Container, &id).expect("dir");
            let rec = Rec {
                id: id.clone(),
                name: format!("twin{tail}"),
            };
            store.write(Kind::Container, &id, &rec).expect("write");
        }
        let err = find("ffff").expect_err("ambiguous");
        assert!(err.is_invalid(), "{err}");
        assert!(err.to_string().contains("ffff11111111"), "{err}");
        assert!(find("ffff2").is_ok(), "a longer prefix is unique");
        // lookup answers as find does, with the record.
        let lookup = |q: &str| store.lookup::<Rec>(Kind::Container, q);
        for (q, rec) in [
            ("web", &recs[0]),
            (recs[1].id.as_str(), &recs[1]),
            (recs[0].id.short(), &recs[0]),
        ] {
            let (id, got) = lookup(q).expect("lookup");
            assert_eq!((&id, &got), (&rec.id, rec), "{q}");
        }
        assert!(lookup("ghost")
            .expect_err("a claim without a record")
            .is_not_found());
        assert!(lookup("nope").expect_err("missing").is_not_found());
        assert!(lookup("ffff").expect_err("ambiguous").is_invalid());
        assert_eq!(lookup("ffff2").expect("unique").1.name, "twin2");
        // Removing a record releases its name: no claim is left behind.
        store
            .remove(Kind::Container, &recs[0].id, "web")
            .expect("remove");
        assert!(find("web").expect_err("gone").is_not_found());
        assert_eq!(store.name_claim(Kind::Container, "web"), None);
        store
            .claim_name(Kind::Container, "web", &other)
            .expect("free again");
        let _ = std::fs::remove_dir_all(&root);
    }
}
