//! Image archives: what `docker save` writes (`manifest.json`, each image's
//! config and layer tars, named by the manifest) and OCI image layouts in a
//! tar (`index.json` → a manifest → a config and layer blobs under
//! `blobs/sha256/`). Either may be gzip-compressed, and so may each layer.
//! Docker 25 and later writes both files; `manifest.json` is read first.
//!
//! Entries come in any order, so the archive is first spooled into a
//! temporary directory: its regular files, and its symlinks (older `docker
//! save` links repeated layers) resolved by name inside the archive, never
//! on the disk. Every blob named by a digest is checked against it.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::config::ImageConfig;
use crate::digest::{Digest, Hashing};
use crate::error::{Error, Result};
use crate::layer::{clean, decompress};
use crate::reference::Reference;
use crate::store::{Images, Loaded, TmpDir};

/// The most a JSON document in an archive may be.
const MAX_JSON: u64 = 16 << 20;

/// An archive's files on disk, by their path inside it.
#[derive(Debug)]
struct Spool {
    _dir: TmpDir,
    files: BTreeMap<PathBuf, PathBuf>,
    links: BTreeMap<PathBuf, PathBuf>,
}

impl Spool {
    fn read(images: &Images, reader: impl Read) -> Result<Spool> {
        let archive_name = Path::new("the image archive");
        let dir = images.tmp_dir()?;
        let read_err = |source| Error::ReadArchive {
            entry: archive_name.to_owned(),
            source,
        };
        let mut archive = tar::Archive::new(decompress(reader, archive_name)?);
        let mut files = BTreeMap::new();
        let mut links = BTreeMap::new();
        for (n, item) in archive.entries().map_err(read_err)?.enumerate() {
            let mut item = item.map_err(read_err)?;
            let raw = item.path().map_err(read_err)?.into_owned();
            let rel = clean(&raw)?;
            match item.header().entry_type() {
                tar::EntryType::Regular | tar::EntryType::Continuous => {
                    let path = dir.0.join(n.to_string());
                    let write_err = |source| Error::WriteStore {
                        path: path.clone(),
                        source,
                    };
                    let mut f = File::create(&path).map_err(write_err)?;
                    io::copy(&mut item, &mut f).map_err(|source| Error::ReadArchive {
                        entry: rel.clone(),
                        source,
                    })?;
                    files.insert(rel, path);
                }
                kind @ (tar::EntryType::Symlink | tar::EntryType::Link) => {
                    let target = item
                        .link_name()
                        .map_err(read_err)?
                        .ok_or(Error::UnsafeEntry {
                            entry: raw.clone(),
                            reason: "a link without a target",
                        })?;
                    // A symlink is relative to its directory; a hard link's
                    // target is a path in the archive.
                    let base = if kind == tar::EntryType::Symlink {
                        rel.parent().unwrap_or(Path::new("")).join(&target)
                    } else {
                        target.into_owned()
                    };
                    links.insert(rel, lexical(&base, &raw)?);
                }
                _ => {}
            }
        }
        Ok(Spool {
            _dir: dir,
            files,
            links,
        })
    }

    /// The spooled file of an archive path, following links inside it.
    fn path(&self, name: &Path) -> Result<&Path> {
        let mut at = clean(name)?;
        for _ in 0..16 {
            if let Some(p) = self.files.get(&at) {
                return Ok(p);
            }
            match self.links.get(&at) {
                Some(next) => at = next.clone(),
                None => break,
            }
        }
        Err(Error::NotAnImage {
            reason: format!("it has no file {}", name.display()),
        })
    }

    fn has(&self, name: &str) -> bool {
        self.path(Path::new(name)).is_ok()
    }

    fn open(&self, name: &Path) -> Result<File> {
        let path = self.path(name)?;
        File::open(path).map_err(|source| Error::ReadStore {
            path: path.to_owned(),
            source,
        })
    }

    fn bytes(&self, name: &Path) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        self.open(name)?
            .take(MAX_JSON + 1)
            .read_to_end(&mut out)
            .map_err(|source| Error::ReadArchive {
                entry: name.to_owned(),
                source,
            })?;
        if out.len() as u64 > MAX_JSON {
            return Err(Error::NotAnImage {
                reason: format!("{} is larger than 16 MiB", name.display()),
            });
        }
        Ok(out)
    }

    fn json<T: serde::de::DeserializeOwned>(&self, name: &Path) -> Result<T> {
        serde_json::from_slice(&self.bytes(name)?).map_err(|source| Error::ParseArchive {
            entry: name.to_owned(),
            source,
        })
    }

    /// A blob by digest, checked against it.
    fn blob(&self, digest: &str) -> Result<(PathBuf, Vec<u8>)> {
        let path = blob_path(digest)?;
        let bytes = self.bytes(&path)?;
        check(&path, digest, &Digest::of(&bytes))?;
        Ok((path, bytes))
    }
}

/// `a/b/../c` as `a/c`, never above the archive's root.
fn lexical(path: &Path, entry: &Path) -> Result<PathBuf> {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            std::path::Component::Normal(p) => out.push(p),
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir if out.pop() => {}
            _ => {
                return Err(Error::UnsafeEntry {
                    entry: entry.to_owned(),
                    reason: "its link points outside the archive",
                })
            }
        }
    }
    Ok(out)
}

fn blob_path(digest: &str) -> Result<PathBuf> {
    let d = Digest::parse(digest)
        .filter(|_| digest.starts_with("sha256:"))
        .ok_or_else(|| Error::NotAnImage {
            reason: format!("{digest:?} is not a sha256 digest"),
        })?;
    Ok(PathBuf::from("blobs/sha256").join(d.hex()))
}

fn check(entry: &Path, expected: &str, actual: &Digest) -> Result<()> {
    if actual.to_string() != expected {
        return Err(Error::DigestMismatch {
            entry: entry.to_owned(),
            expected: expected.to_owned(),
            actual: actual.to_string(),
        });
    }
    Ok(())
}

/// One image of `docker save`'s `manifest.json`.
#[derive(Debug, Deserialize)]
struct SaveManifest {
    #[serde(rename = "Config")]
    config: PathBuf,
    #[serde(rename = "RepoTags", default)]
    repo_tags: Option<Vec<String>>,
    #[serde(rename = "Layers")]
    layers: Vec<PathBuf>,
}

/// An OCI descriptor (of a manifest, an index, a config or a layer).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Descriptor {
    #[serde(default)]
    media_type: String,
    digest: String,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
    #[serde(default)]
    platform: Option<Platform>,
}

#[derive(Debug, Deserialize)]
struct Platform {
    #[serde(default)]
    architecture: String,
    #[serde(default)]
    os: String,
}

#[derive(Debug, Deserialize)]
struct OciIndex {
    manifests: Vec<Descriptor>,
}

#[derive(Debug, Deserialize)]
struct OciManifest {
    config: Descriptor,
    layers: Vec<Descriptor>,
}

const INDEX_TYPES: [&str; 2] = [
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
];

pub(crate) fn load(images: &Images, reader: impl Read) -> Result<Vec<Loaded>> {
    let spool = Spool::read(images, reader)?;
    if spool.has("manifest.json") {
        load_docker(images, &spool)
    } else if spool.has("index.json") {
        load_oci(images, &spool)
    } else {
        Err(Error::NotAnImage {
            reason: "it has neither manifest.json (docker save) nor index.json (OCI)".into(),
        })
    }
}

fn load_docker(images: &Images, spool: &Spool) -> Result<Vec<Loaded>> {
    let manifests: Vec<SaveManifest> = spool.json(Path::new("manifest.json"))?;
    let mut out = Vec::new();
    for m in manifests {
        let bytes = spool.bytes(&m.config)?;
        let tags = parse_tags(m.repo_tags.unwrap_or_default())?;
        let layers = m
            .layers
            .iter()
            .map(|l| Ok((l.clone(), spool.open(l)?, None)))
            .collect::<Result<Vec<_>>>()?;
        out.push(commit(images, &m.config, &bytes, layers, tags)?);
    }
    Ok(out)
}

fn load_oci(images: &Images, spool: &Spool) -> Result<Vec<Loaded>> {
    let index: OciIndex = spool.json(Path::new("index.json"))?;
    let mut out = Vec::new();
    for d in index.manifests {
        let tags = oci_tags(&d.annotations)?;
        let (mut path, mut bytes) = spool.blob(&d.digest)?;
        if INDEX_TYPES.contains(&d.media_type.as_str()) {
            let nested: OciIndex = parse(&path, &bytes)?;
            let pick = nested
                .manifests
                .iter()
                .find(|m| {
                    m.platform.as_ref().is_some_and(|p| {
                        p.os == "linux" && p.architecture == crate::store::host_arch()
                    })
                })
                .or(nested.manifests.first())
                .ok_or_else(|| Error::NotAnImage {
                    reason: format!("the index {} lists no manifest", path.display()),
                })?;
            (path, bytes) = spool.blob(&pick.digest)?;
        }
        let manifest: OciManifest = parse(&path, &bytes)?;
        let (config_path, config_bytes) = spool.blob(&manifest.config.digest)?;
        let layers = manifest
            .layers
            .iter()
            .map(|l| {
                let p = blob_path(&l.digest)?;
                let f = spool.open(&p)?;
                Ok((p, f, Some(l.digest.clone())))
            })
            .collect::<Result<Vec<_>>>()?;
        out.push(commit(images, &config_path, &config_bytes, layers, tags)?);
    }
    Ok(out)
}

/// An OCI manifest's names: containerd's full-name annotation, or the
/// standard `ref.name` when it is a whole reference (it may be a tag alone,
/// which names nothing without a repository).
fn oci_tags(annotations: &BTreeMap<String, String>) -> Result<Vec<String>> {
    let name = annotations
        .get("io.containerd.image.name")
        .or_else(|| {
            annotations
                .get("org.opencontainers.image.ref.name")
                .filter(|n| n.contains(':'))
        })
        .cloned();
    parse_tags(name.into_iter().collect())
}

fn parse_tags(tags: Vec<String>) -> Result<Vec<String>> {
    tags.iter()
        .map(|t| Reference::parse(t).map(|r| r.to_string()))
        .collect()
}

fn parse<T: serde::de::DeserializeOwned>(path: &Path, bytes: &[u8]) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|source| Error::ParseArchive {
        entry: path.to_owned(),
        source,
    })
}

/// Unpacks an image's layers (checking each against its config's diff_id,
/// and its blob digest when it has one) and records the image.
fn commit(
    images: &Images,
    config_path: &Path,
    config_bytes: &[u8],
    layers: Vec<(PathBuf, File, Option<String>)>,
    tags: Vec<String>,
) -> Result<Loaded> {
    let config: ImageConfig = parse(config_path, config_bytes)?;
    if config.rootfs.diff_ids.len() != layers.len() {
        return Err(Error::NotAnImage {
            reason: format!(
                "{} names {} layers and the manifest {}",
                config_path.display(),
                config.rootfs.diff_ids.len(),
                layers.len()
            ),
        });
    }
    let mut size = 0;
    for ((path, file, blob_digest), diff_id) in layers.into_iter().zip(&config.rootfs.diff_ids) {
        let mut hashing = Hashing::new(file);
        let layer = images.ensure_layer(&mut hashing, &path, Some(diff_id))?;
        size += layer.size;
        if let Some(expected) = blob_digest {
            // What unpacking left unread (all of it, for a layer already
            // in the store) is read here: the whole blob is checked.
            let actual = hashing.finish().map_err(|source| Error::ReadArchive {
                entry: path.clone(),
                source,
            })?;
            check(&path, &expected, &actual)?;
        }
    }
    let id = images.commit(config_bytes, config, size, &tags)?;
    Ok(Loaded { id, tags })
}
