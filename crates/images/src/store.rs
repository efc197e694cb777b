//! The image store on disk, under `<state root>/images/`:
//!
//! ```text
//! lock                 flock(2)ed by every change of the records or names
//! blobs/sha256/HEX     image configs, byte for byte (the image ID is sha256:HEX)
//! records/HEX.json     one per image: its ID, config (parsed) and size
//! layers/HEX/root/     a layer unpacked once, HEX its diff_id; an overlay lower dir
//! layers/HEX/layer.json  its digest and size
//! repositories.json    the name index: {"NAME:TAG": "sha256:..."}
//! tmp/                 archives and layers being unpacked
//! ```
//!
//! A layer is unpacked into `tmp/` and renamed into `layers/` once whole,
//! so a layer directory that exists is complete; records and the index are
//! written to a temporary file, fsynced, and renamed. Unpacking happens
//! outside the lock, recording under it: two loads of the same layer each
//! unpack it, and the second rename finds it there and drops its own.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

use crate::config::{Change, ImageConfig, RootFs};
use crate::digest::{is_hex, Digest};
use crate::error::{Error, Result};
use crate::layer;
use crate::reference::Reference;

/// The time docker shows for an image whose config has none.
const NO_TIME: &str = "0001-01-01T00:00:00Z";

/// The image store under one state root.
#[derive(Debug, Clone)]
pub struct Images {
    root: PathBuf,
}

/// An image as the store knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRecord {
    /// `sha256:` and the digest of its config.
    pub id: Digest,
    /// Its names, `NAME:TAG`, sorted.
    pub repo_tags: Vec<String>,
    pub config: ImageConfig,
    /// The bytes of its layers' regular files.
    pub size: u64,
}

impl ImageRecord {
    /// When it was made (RFC 3339, UTC), from its config.
    pub fn created(&self) -> &str {
        self.config.created.as_deref().unwrap_or(NO_TIME)
    }

    /// The value docker's `GET /images/{name}/json` gives.
    pub fn inspect(&self) -> serde_json::Value {
        let c = &self.config;
        serde_json::json!({
            "Id": self.id.to_string(),
            "RepoTags": self.repo_tags,
            "RepoDigests": [],
            "Parent": "",
            "Comment": "",
            "Created": self.created(),
            "Author": c.author.clone().unwrap_or_default(),
            "Architecture": c.architecture,
            "Os": c.os,
            "Size": self.size,
            "Config": {
                "User": c.config.user.clone().unwrap_or_default(),
                "Env": c.config.env,
                "Entrypoint": c.config.entrypoint,
                "Cmd": c.config.cmd,
                "WorkingDir": c.config.working_dir.clone().unwrap_or_default(),
                "Labels": c.config.labels,
            },
            "RootFS": {
                "Type": "layers",
                "Layers": c.rootfs.diff_ids.iter().map(ToString::to_string).collect::<Vec<_>>(),
            },
        })
    }
}

/// The stored form of a record (its names live in the index).
#[derive(Debug, Serialize, Deserialize)]
struct Stored {
    id: Digest,
    config: ImageConfig,
    size: u64,
}

/// The stored description of an unpacked layer.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct LayerInfo {
    diff_id: Digest,
    size: u64,
}

/// What `import` makes: a one-layer image with a fresh config.
#[derive(Debug, Clone)]
pub struct Import<'a> {
    /// Its name, if it is to have one.
    pub reference: Option<&'a Reference>,
    /// `--change` instructions, applied in order.
    pub changes: &'a [Change],
    /// Its creation time, RFC 3339 in UTC (the caller's clock).
    pub created: &'a str,
}

/// What `remove` may do.
#[derive(Debug, Clone, Default)]
pub struct Removal {
    /// Remove it even if containers use it, or it has several names.
    pub force: bool,
    /// The containers (names) that use the image being removed.
    pub users: Vec<String>,
    /// Layer directories some container still mounts: never deleted.
    pub busy_layers: Vec<PathBuf>,
}

/// What `remove` did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Removed {
    pub untagged: Vec<String>,
    pub deleted: Option<Digest>,
}

/// An image `load` brought in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loaded {
    pub id: Digest,
    pub tags: Vec<String>,
}

/// A held `flock`; released when dropped.
#[derive(Debug)]
struct Lock(#[allow(dead_code)] OwnedFd);

/// A directory under `tmp/`, removed when dropped unless kept.
#[derive(Debug)]
pub(crate) struct TmpDir(pub(crate) PathBuf);

impl Drop for TmpDir {
    fn drop(&mut self) {
        if let Err(e) = fs::remove_dir_all(&self.0) {
            if e.kind() != io::ErrorKind::NotFound {
                tracing::warn!(path = %self.0.display(), error = %e, "removing a temporary directory");
            }
        }
    }
}

impl Images {
    /// Opens (creating if need be) the store under `state_root/images`.
    pub fn open(state_root: &Path) -> Result<Self> {
        let root = state_root.join("images");
        for dir in ["blobs/sha256", "records", "layers", "tmp"] {
            let d = root.join(dir);
            fs::create_dir_all(&d).map_err(|source| Error::CreateStore { path: d, source })?;
        }
        Ok(Images { root })
    }

    /// Where the store is.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Imports a root filesystem tar (gzip or not), as `docker import`:
    /// one layer and a fresh config.
    pub fn import(&self, reader: impl Read, opts: &Import<'_>) -> Result<ImageRecord> {
        let layer = self.ensure_layer(reader, Path::new("the root filesystem tar"), None)?;
        let mut config = ImageConfig {
            architecture: host_arch().to_owned(),
            os: "linux".into(),
            created: Some(opts.created.to_owned()),
            rootfs: RootFs {
                kind: "layers".into(),
                diff_ids: vec![layer.diff_id],
            },
            history: vec![serde_json::json!({
                "created": opts.created,
                "created_by": "stasis image import",
                "comment": "Imported from a root filesystem tar",
            })],
            ..ImageConfig::default()
        };
        for change in opts.changes {
            change.apply(&mut config.config);
        }
        let bytes = serde_json::to_vec(&config).map_err(|source| Error::ParseStore {
            path: self.root.join("blobs"),
            source,
        })?;
        let tags: Vec<String> = opts
            .reference
            .map(ToString::to_string)
            .into_iter()
            .collect();
        let id = self.commit(&bytes, config, layer.size, &tags)?;
        self.get(&id)
    }

    /// Loads a `docker save` archive or an OCI image archive (gzip or not).
    pub fn load(&self, reader: impl Read) -> Result<Vec<Loaded>> {
        crate::archive::load(self, reader)
    }

    /// Every image, newest first.
    pub fn list(&self) -> Result<Vec<ImageRecord>> {
        let index = self.index()?;
        let dir = self.root.join("records");
        let entries = fs::read_dir(&dir).map_err(|source| Error::ReadStore {
            path: dir.clone(),
            source,
        })?;
        let mut out = Vec::new();
        for e in entries {
            let e = e.map_err(|source| Error::ReadStore {
                path: dir.clone(),
                source,
            })?;
            let name = e.file_name();
            let Some(hex) = name.to_str().and_then(|n| n.strip_suffix(".json")) else {
                continue;
            };
            if let Some(id) = Digest::parse(hex) {
                out.push(self.read_record(&id, &index)?);
            }
        }
        out.sort_by(|a, b| b.created().cmp(a.created()).then(a.id.cmp(&b.id)));
        Ok(out)
    }

    /// The image a name (`NAME`, `NAME:TAG`), a full or short ID, or a
    /// `sha256:` ID names.
    pub fn resolve(&self, query: &str) -> Result<ImageRecord> {
        let not_found = || Error::NotFound {
            name: query.to_owned(),
        };
        let hex = query.strip_prefix("sha256:");
        if hex.is_none() {
            if let Ok(r) = Reference::parse(query) {
                if let Some(id) = self.index()?.get(&r.to_string()) {
                    return self.get(id);
                }
            }
        }
        let hex = hex.unwrap_or(query);
        if !is_hex(hex) || hex.len() > 64 {
            return Err(not_found());
        }
        let ids: Vec<Digest> = self
            .ids()?
            .into_iter()
            .filter(|id| id.hex().starts_with(hex))
            .collect();
        match ids.as_slice() {
            [one] => self.get(one),
            [] => Err(not_found()),
            _ => Err(Error::Ambiguous {
                prefix: query.to_owned(),
            }),
        }
    }

    /// Removes a name, or an image: `NAME[:TAG]` of an image with other
    /// names only removes that name (docker's "untagged"); otherwise the
    /// image goes with all its names, refused while a container uses it or
    /// (by ID) while it has several names, unless forced. Its layers go
    /// too, unless another image or a container uses them.
    pub fn remove(&self, query: &str, removal: &Removal) -> Result<Removed> {
        let image = self.resolve(query)?;
        let _lock = self.lock()?;
        let mut index = self.index()?;
        let by_name = Reference::parse(query)
            .ok()
            .map(|r| r.to_string())
            .filter(|t| index.get(t) == Some(&image.id));
        if let Some(tag) = &by_name {
            if image.repo_tags.len() > 1 {
                index.remove(tag);
                self.write_index(&index)?;
                return Ok(Removed {
                    untagged: vec![tag.clone()],
                    deleted: None,
                });
            }
        } else if image.repo_tags.len() > 1 && !removal.force {
            return Err(Error::SeveralNames {
                image: query.to_owned(),
                names: image.repo_tags.join(", "),
            });
        }
        if !removal.users.is_empty() && !removal.force {
            return Err(Error::InUse {
                image: query.to_owned(),
                containers: removal.users.join(", "),
            });
        }
        index.retain(|_, id| *id != image.id);
        self.write_index(&index)?;
        for path in [
            self.record_path(&image.id),
            self.root.join("blobs/sha256").join(image.id.hex()),
        ] {
            remove_file(&path)?;
        }
        self.collect_layers(&removal.busy_layers)?;
        Ok(Removed {
            untagged: image.repo_tags,
            deleted: Some(image.id),
        })
    }

    /// The overlay lower directories of an image, top layer first (the
    /// order overlayfs takes them in).
    pub fn lower_dirs(&self, image: &ImageRecord) -> Vec<PathBuf> {
        image
            .config
            .rootfs
            .diff_ids
            .iter()
            .rev()
            .map(|d| self.layer_dir(d).join("root"))
            .collect()
    }

    /// Removes the layers no image record names and no container mounts.
    fn collect_layers(&self, busy: &[PathBuf]) -> Result<()> {
        let mut used = BTreeSet::new();
        for id in self.ids()? {
            let stored: Stored = self.read_json(&self.record_path(&id))?;
            used.extend(stored.config.rootfs.diff_ids);
        }
        let dir = self.root.join("layers");
        let entries = fs::read_dir(&dir).map_err(|source| Error::ReadStore {
            path: dir.clone(),
            source,
        })?;
        for e in entries.flatten() {
            let Some(d) = e.file_name().to_str().and_then(Digest::parse) else {
                continue;
            };
            let path = e.path();
            if used.contains(&d) || busy.iter().any(|b| b.starts_with(&path)) {
                continue;
            }
            fs::remove_dir_all(&path).map_err(|source| Error::RemoveStore { path, source })?;
        }
        Ok(())
    }

    /// Unpacks a layer unless it is there already (when its digest is known
    /// beforehand); checks the digest when one is expected.
    pub(crate) fn ensure_layer(
        &self,
        reader: impl Read,
        entry: &Path,
        expected: Option<&Digest>,
    ) -> Result<LayerSummary> {
        if let Some(d) = expected {
            if let Ok(info) = self.read_json::<LayerInfo>(&self.layer_dir(d).join("layer.json")) {
                return Ok(LayerSummary {
                    diff_id: info.diff_id,
                    size: info.size,
                });
            }
        }
        let tmp = self.tmp_dir()?;
        let root = tmp.0.join("root");
        fs::create_dir(&root).map_err(|source| Error::WriteStore {
            path: root.clone(),
            source,
        })?;
        let unpacked = layer::unpack(reader, &root, entry)?;
        if let Some(d) = expected {
            if *d != unpacked.diff_id {
                return Err(Error::DigestMismatch {
                    entry: entry.to_owned(),
                    expected: d.to_string(),
                    actual: unpacked.diff_id.to_string(),
                });
            }
        }
        let info = LayerInfo {
            diff_id: unpacked.diff_id.clone(),
            size: unpacked.size,
        };
        write_json(&tmp.0.join("layer.json"), &info)?;
        let dest = self.layer_dir(&unpacked.diff_id);
        match fs::rename(&tmp.0, &dest) {
            Ok(()) => {}
            // Unpacked meanwhile (or before, by an import): keep that one.
            Err(e) if dest.join("layer.json").exists() => {
                tracing::debug!(layer = %dest.display(), error = %e, "the layer is there already");
            }
            Err(source) => return Err(Error::WriteStore { path: dest, source }),
        }
        Ok(LayerSummary {
            diff_id: unpacked.diff_id,
            size: unpacked.size,
        })
    }

    /// Records an image whose layers are in place: its config blob, its
    /// record, and its names (taken from any image that had them).
    pub(crate) fn commit(
        &self,
        config_bytes: &[u8],
        config: ImageConfig,
        size: u64,
        tags: &[String],
    ) -> Result<Digest> {
        let id = Digest::of(config_bytes);
        let _lock = self.lock()?;
        write_atomic(&self.root.join("blobs/sha256").join(id.hex()), config_bytes)?;
        write_json(
            &self.record_path(&id),
            &Stored {
                id: id.clone(),
                config,
                size,
            },
        )?;
        if !tags.is_empty() {
            let mut index = self.index()?;
            for t in tags {
                index.insert(t.clone(), id.clone());
            }
            self.write_index(&index)?;
        }
        Ok(id)
    }

    /// A temporary directory of its own under `tmp/`.
    pub(crate) fn tmp_dir(&self) -> Result<TmpDir> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let path = self.root.join("tmp").join(format!(
            "{}-{nanos}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        fs::create_dir(&path).map_err(|source| Error::WriteStore {
            path: path.clone(),
            source,
        })?;
        Ok(TmpDir(path))
    }

    fn get(&self, id: &Digest) -> Result<ImageRecord> {
        self.read_record(id, &self.index()?)
    }

    fn read_record(&self, id: &Digest, index: &BTreeMap<String, Digest>) -> Result<ImageRecord> {
        let path = self.record_path(id);
        if !path.exists() {
            return Err(Error::NotFound {
                name: id.to_string(),
            });
        }
        let stored: Stored = self.read_json(&path)?;
        Ok(ImageRecord {
            repo_tags: index
                .iter()
                .filter(|(_, v)| *v == id)
                .map(|(k, _)| k.clone())
                .collect(),
            id: stored.id,
            config: stored.config,
            size: stored.size,
        })
    }

    fn ids(&self) -> Result<Vec<Digest>> {
        let dir = self.root.join("records");
        let entries = fs::read_dir(&dir).map_err(|source| Error::ReadStore {
            path: dir.clone(),
            source,
        })?;
        Ok(entries
            .flatten()
            .filter_map(|e| {
                e.file_name()
                    .to_str()
                    .and_then(|n| n.strip_suffix(".json"))
                    .and_then(Digest::parse)
            })
            .collect())
    }

    fn index(&self) -> Result<BTreeMap<String, Digest>> {
        let path = self.root.join("repositories.json");
        match fs::read(&path) {
            Ok(bytes) => {
                serde_json::from_slice(&bytes).map_err(|source| Error::ParseStore { path, source })
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(BTreeMap::new()),
            Err(source) => Err(Error::ReadStore { path, source }),
        }
    }

    fn write_index(&self, index: &BTreeMap<String, Digest>) -> Result<()> {
        write_json(&self.root.join("repositories.json"), index)
    }

    fn record_path(&self, id: &Digest) -> PathBuf {
        self.root.join("records").join(format!("{}.json", id.hex()))
    }

    fn layer_dir(&self, diff_id: &Digest) -> PathBuf {
        self.root.join("layers").join(diff_id.hex())
    }

    fn read_json<T: serde::de::DeserializeOwned>(&self, path: &Path) -> Result<T> {
        let bytes = fs::read(path).map_err(|source| Error::ReadStore {
            path: path.to_owned(),
            source,
        })?;
        serde_json::from_slice(&bytes).map_err(|source| Error::ParseStore {
            path: path.to_owned(),
            source,
        })
    }

    fn lock(&self) -> Result<Lock> {
        let path = self.root.join("lock");
        let err = |source| Error::Lock {
            path: path.clone(),
            source,
        };
        let f = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(err)?;
        rustix::fs::flock(&f, rustix::fs::FlockOperation::LockExclusive)
            .map_err(|e| err(e.into()))?;
        Ok(Lock(f.into()))
    }
}

/// A layer in the store.
#[derive(Debug, Clone)]
pub(crate) struct LayerSummary {
    pub diff_id: Digest,
    pub size: u64,
}

/// The architecture as images name it (Go's GOARCH).
pub(crate) fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    }
}

fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    let bytes = serde_json::to_vec_pretty(value).map_err(|source| Error::ParseStore {
        path: path.to_owned(),
        source,
    })?;
    write_atomic(path, &bytes)
}

/// Writes a file whole or not at all: a temporary file, fsynced, renamed.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let err = |source| Error::WriteStore {
        path: path.to_owned(),
        source,
    };
    let mut tmp_name = path.as_os_str().to_owned();
    tmp_name.push(format!(".{}.tmp", std::process::id()));
    let tmp = PathBuf::from(tmp_name);
    let mut f = File::create(&tmp).map_err(err)?;
    f.write_all(bytes).map_err(err)?;
    f.sync_all().map_err(err)?;
    fs::rename(&tmp, path).map_err(err)
}

fn remove_file(path: &Path) -> Result<()> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(Error::RemoveStore {
            path: path.to_owned(),
            source,
        }),
    }
}
