//! `stasis sandbox-image`: `stasis-pause` as a CRI sandbox ("pause")
//! image, written as an OCI image archive that `ctr -n k8s.io images
//! import` and `stasis image load` take, with no engine and no registry.
//!
//! The archive is an OCI image layout in a tar: `oci-layout`,
//! `index.json` (one manifest, annotated with the image's name for
//! containerd and the OCI tag), and under `blobs/sha256/` the manifest, the
//! config (`Entrypoint ["/pause"]`, `User 65535:65535`, amd64/linux) and
//! one uncompressed layer holding `/pause` (0755, 0:0). Everything that
//! could vary between two builds is fixed: every mtime (0, or
//! `SOURCE_DATE_EPOCH`), owners, entry order, JSON key order, and the
//! config's `created` (that same time), so that one binary gives one
//! digest.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde_json::json;
use sha2::{Digest as _, Sha256};

use crate::commands::Global;
use crate::exit::Refusal;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Where to write the archive (- for stdout)
    #[arg(short, long, value_name = "FILE")]
    pub output: PathBuf,

    /// The stasis-pause binary (default: $STASIS_PAUSE, else the one next
    /// to stasis, else on PATH)
    #[arg(long, value_name = "BINARY")]
    pub pause: Option<PathBuf>,

    /// The image's name
    #[arg(long, value_name = "NAME:TAG", default_value_t = default_name())]
    pub name: String,
}

/// `localhost/stasis-pause:<version>`: `localhost/` so that no runtime
/// takes it for a Docker Hub image it could pull.
pub fn default_name() -> String {
    format!("localhost/stasis-pause:{}", env!("CARGO_PKG_VERSION"))
}

const MANIFEST_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
const CONFIG_TYPE: &str = "application/vnd.oci.image.config.v1+json";
const LAYER_TYPE: &str = "application/vnd.oci.image.layer.v1.tar";
const INDEX_TYPE: &str = "application/vnd.oci.image.index.v1+json";

pub fn run(_global: &Global, args: &Args) -> Result<()> {
    let reference = images::Reference::parse(&args.name)?;
    let binary = match &args.pause {
        Some(p) => p.clone(),
        None => match std::env::var_os("STASIS_PAUSE") {
            Some(p) => PathBuf::from(p),
            None => sandbox::find_pause_binary().map_err(|_| {
                Refusal::not_found(
                    "no stasis-pause binary next to stasis or on PATH: name one with --pause"
                        .into(),
                )
            })?,
        },
    };
    let pause = read_pause(&binary)?;
    let mtime = source_date_epoch()?;
    let archive = build(&pause, &reference, mtime)?;
    if args.output.as_os_str() == "-" {
        let mut out = std::io::stdout().lock();
        out.write_all(&archive)
            .and_then(|()| out.flush())
            .context("writing the archive to stdout")?;
    } else {
        write_file(&args.output, &archive)?;
    }
    Ok(())
}

/// Writes through a temporary file beside `path` and renames it, so that
/// an interrupted build leaves no half archive under the name.
fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".tmp{}", std::process::id()));
    let tmp = PathBuf::from(tmp);
    std::fs::write(&tmp, bytes)
        .and_then(|()| std::fs::rename(&tmp, path))
        .inspect_err(|_| {
            let _ = std::fs::remove_file(&tmp);
        })
        .with_context(|| format!("writing {}", path.display()))
}

/// The binary, if it is a static x86-64 ELF executable: a sandbox image
/// has nothing else in it, so a dynamic one could not start.
fn read_pause(path: &Path) -> Result<Vec<u8>> {
    let bytes = std::fs::read(path).map_err(|e| -> anyhow::Error {
        if e.kind() == std::io::ErrorKind::NotFound {
            Refusal::not_found(format!("no such file: {}", path.display())).into()
        } else {
            anyhow::Error::new(e).context(format!("reading {}", path.display()))
        }
    })?;
    check_static_elf(&bytes).map_err(|why| {
        Refusal::usage(format!(
            "{} is not a static x86-64 ELF executable: {why}",
            path.display()
        ))
    })?;
    Ok(bytes)
}

/// Why `bytes` is not a static x86-64 ELF executable, if it is not: the
/// ELF header (64-bit, little-endian, x86-64, an executable or a PIE) and
/// no `PT_INTERP` program header (which names a dynamic loader).
fn check_static_elf(bytes: &[u8]) -> Result<(), &'static str> {
    const ET_EXEC: u16 = 2;
    const ET_DYN: u16 = 3;
    const EM_X86_64: u16 = 62;
    const PT_INTERP: u32 = 3;
    const PT_DYNAMIC: u32 = 2;
    let u16_at = |o: usize| {
        bytes
            .get(o..o + 2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]))
    };
    let u32_at = |o: usize| {
        bytes
            .get(o..o + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    };
    let u64_at = |o: usize| {
        bytes.get(o..o + 8).map(|b| {
            let mut a = [0; 8];
            a.copy_from_slice(b);
            u64::from_le_bytes(a)
        })
    };
    if bytes.get(..4) != Some(b"\x7fELF") {
        return Err("no ELF header");
    }
    if bytes.get(4) != Some(&2) || bytes.get(5) != Some(&1) {
        return Err("not 64-bit little-endian");
    }
    if u16_at(18) != Some(EM_X86_64) {
        return Err("not for x86-64");
    }
    let kind = u16_at(16).ok_or("truncated")?;
    if kind != ET_EXEC && kind != ET_DYN {
        return Err("not an executable");
    }
    let phoff = u64_at(32).ok_or("truncated")?;
    let phentsize = u16_at(54).ok_or("truncated")?;
    let phnum = u16_at(56).ok_or("truncated")?;
    let table_end = usize::try_from(phoff)
        .ok()
        .and_then(|o| o.checked_add(usize::from(phnum) * usize::from(phentsize)));
    if table_end.is_none_or(|end| end > bytes.len()) {
        return Err("truncated");
    }
    let mut dynamic = false;
    for i in 0..usize::from(phnum) {
        let at = usize::try_from(phoff)
            .ok()
            .and_then(|o| o.checked_add(i * usize::from(phentsize)))
            .ok_or("truncated")?;
        match u32_at(at).ok_or("truncated")? {
            PT_INTERP => return Err("it names a dynamic loader (PT_INTERP)"),
            PT_DYNAMIC => dynamic = true,
            _ => {}
        }
    }
    // A shared library is ET_DYN without an interpreter too; a static PIE
    // has one and a dynamic section, but so does a library: tell them
    // apart by an entry point, which a library usually lacks.
    if kind == ET_DYN && dynamic && u64_at(24) == Some(0) {
        return Err("a shared library, not an executable");
    }
    Ok(())
}

/// `SOURCE_DATE_EPOCH` (the reproducible-builds convention), else 0.
fn source_date_epoch() -> Result<u64> {
    match std::env::var("SOURCE_DATE_EPOCH") {
        Err(_) => Ok(0),
        Ok(v) => v.trim().parse().map_err(|_| {
            Refusal::usage(format!(
                "SOURCE_DATE_EPOCH={v:?} is not a number of seconds since 1970"
            ))
            .into()
        }),
    }
}

/// `sha256:<hex>` of `bytes`.
fn digest(bytes: &[u8]) -> String {
    let hash = Sha256::digest(bytes);
    let mut out = String::with_capacity(71);
    out.push_str("sha256:");
    for b in hash {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// A tar header with every field fixed but the path, mode, size and type.
fn header(kind: tar::EntryType, mode: u32, size: u64, mtime: u64) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_size(size);
    h.set_mtime(mtime);
    h.set_uid(0);
    h.set_gid(0);
    h
}

fn add_file(
    tar: &mut tar::Builder<Vec<u8>>,
    path: &str,
    mode: u32,
    bytes: &[u8],
    mtime: u64,
) -> Result<()> {
    let mut h = header(tar::EntryType::Regular, mode, bytes.len() as u64, mtime);
    tar.append_data(&mut h, path, bytes)
        .with_context(|| format!("adding {path} to the archive"))
}

/// The layer: `pause` alone, mode 0755, owned by 0:0.
fn layer(pause: &[u8], mtime: u64) -> Result<Vec<u8>> {
    let mut tar = tar::Builder::new(Vec::new());
    add_file(&mut tar, "pause", 0o755, pause, mtime)?;
    tar.into_inner().context("finishing the layer")
}

/// The OCI image archive of `pause` named `reference`.
fn build(pause: &[u8], reference: &images::Reference, mtime: u64) -> Result<Vec<u8>> {
    let layer = layer(pause, mtime)?;
    let layer_digest = digest(&layer);
    let created = sandbox::time::rfc3339_secs(mtime);
    // serde_json's maps are sorted by key: the bytes depend on the values
    // alone.
    let config = serde_json::to_vec(&json!({
        "created": created,
        "architecture": "amd64",
        "os": "linux",
        "config": {
            "User": "65535:65535",
            "Entrypoint": ["/pause"],
            "WorkingDir": "/",
        },
        "rootfs": {"type": "layers", "diff_ids": [layer_digest]},
        "history": [{"created": created, "created_by": "stasis sandbox-image"}],
    }))?;
    let config_digest = digest(&config);
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": MANIFEST_TYPE,
        "config": {"mediaType": CONFIG_TYPE, "digest": config_digest, "size": config.len()},
        "layers": [{"mediaType": LAYER_TYPE, "digest": layer_digest, "size": layer.len()}],
    }))?;
    let manifest_digest = digest(&manifest);
    let index = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": INDEX_TYPE,
        "manifests": [{
            "mediaType": MANIFEST_TYPE,
            "digest": manifest_digest,
            "size": manifest.len(),
            "annotations": {
                // containerd's import names the image by this one...
                "io.containerd.image.name": reference.to_string(),
                // ...the OCI layout's own is the tag.
                "org.opencontainers.image.ref.name": reference.tag,
            },
        }],
    }))?;

    let mut tar = tar::Builder::new(Vec::new());
    add_file(
        &mut tar,
        "oci-layout",
        0o644,
        br#"{"imageLayoutVersion":"1.0.0"}"#,
        mtime,
    )?;
    add_file(&mut tar, "index.json", 0o644, &index, mtime)?;
    for dir in ["blobs/", "blobs/sha256/"] {
        let mut h = header(tar::EntryType::Directory, 0o755, 0, mtime);
        tar.append_data(&mut h, dir, std::io::empty())
            .with_context(|| format!("adding {dir} to the archive"))?;
    }
    for (d, bytes) in [
        (&manifest_digest, &manifest),
        (&config_digest, &config),
        (&layer_digest, &layer),
    ] {
        let hex = d.trim_start_matches("sha256:");
        add_file(
            &mut tar,
            &format!("blobs/sha256/{hex}"),
            0o644,
            bytes,
            mtime,
        )?;
    }
    tar.into_inner().context("finishing the archive")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use std::io::Read;

    /// A tiny static "executable": an ELF header and no program headers.
    fn fake_static_elf() -> Vec<u8> {
        let mut b = vec![0u8; 64];
        b[..4].copy_from_slice(b"\x7fELF");
        b[4] = 2;
        b[5] = 1;
        b[16..18].copy_from_slice(&2u16.to_le_bytes());
        b[18..20].copy_from_slice(&62u16.to_le_bytes());
        b[24..32].copy_from_slice(&0x40_1000u64.to_le_bytes());
        b[32..40].copy_from_slice(&64u64.to_le_bytes());
        b[54..56].copy_from_slice(&56u16.to_le_bytes());
        b
    }

    /// With one program header of type `kind`.
    fn with_phdr(kind: u32) -> Vec<u8> {
        let mut b = fake_static_elf();
        b[56..58].copy_from_slice(&1u16.to_le_bytes());
        let mut ph = vec![0u8; 56];
        ph[..4].copy_from_slice(&kind.to_le_bytes());
        b.extend(ph);
        b
    }

    fn reference() -> images::Reference {
        images::Reference::parse("localhost/stasis-pause:9.9").expect("a reference")
    }

    /// The archive's entries: path → (header, contents), in order.
    fn entries(archive: &[u8]) -> Vec<(String, tar::Header, Vec<u8>)> {
        let mut a = tar::Archive::new(archive);
        a.entries()
            .expect("entries")
            .map(|e| {
                let mut e = e.expect("an entry");
                let path = e.path().expect("a path").to_string_lossy().into_owned();
                let header = e.header().clone();
                let mut body = Vec::new();
                e.read_to_end(&mut body).expect("read");
                (path, header, body)
            })
            .collect()
    }

    #[test]
    fn the_archive_is_an_oci_layout_whose_blobs_match_their_digests() {
        let pause = fake_static_elf();
        let archive = build(&pause, &reference(), 0).expect("build");
        let entries = entries(&archive);
        let names: Vec<&str> = entries.iter().map(|(p, _, _)| p.as_str()).collect();
        assert_eq!(
            &names[..4],
            ["oci-layout", "index.json", "blobs/", "blobs/sha256/"]
        );
        assert_eq!(names.len(), 7, "{names:?}");
        let blobs: BTreeMap<String, Vec<u8>> = entries
            .iter()
            .filter_map(|(p, _, b)| {
                p.strip_prefix("blobs/sha256/")
                    .filter(|h| !h.is_empty())
                    .map(|h| (format!("sha256:{h}"), b.clone()))
            })
            .collect();
        for (d, b) in &blobs {
            assert_eq!(&digest(b), d, "a blob's name is its digest");
        }
        for (p, h, _) in &entries {
            assert_eq!(h.mtime().expect("mtime"), 0, "{p}");
            assert_eq!(
                (h.uid().expect("uid"), h.gid().expect("gid")),
                (0, 0),
                "{p}"
            );
        }
        let json = |b: &[u8]| serde_json::from_slice::<serde_json::Value>(b).expect("json");
        assert_eq!(json(&entries[0].2)["imageLayoutVersion"], "1.0.0");
        let index = json(&entries[1].2);
        assert_eq!(index["schemaVersion"], 2);
        let m = &index["manifests"][0];
        assert_eq!(index["manifests"].as_array().map(Vec::len), Some(1));
        assert_eq!(m["mediaType"], MANIFEST_TYPE);
        assert_eq!(
            m["annotations"]["io.containerd.image.name"],
            "localhost/stasis-pause:9.9"
        );
        assert_eq!(m["annotations"]["org.opencontainers.image.ref.name"], "9.9");
        let manifest_bytes = &blobs[m["digest"].as_str().expect("digest")];
        assert_eq!(m["size"], manifest_bytes.len());
        let manifest = json(manifest_bytes);
        let config_bytes = &blobs[manifest["config"]["digest"].as_str().expect("digest")];
        assert_eq!(manifest["config"]["size"], config_bytes.len());
        assert_eq!(manifest["config"]["mediaType"], CONFIG_TYPE);
        let layers = manifest["layers"].as_array().expect("layers");
        assert_eq!(layers.len(), 1);
        assert_eq!(layers[0]["mediaType"], LAYER_TYPE);
        let layer_bytes = &blobs[layers[0]["digest"].as_str().expect("digest")];
        assert_eq!(layers[0]["size"], layer_bytes.len());

        let config = json(config_bytes);
        assert_eq!(config["architecture"], "amd64");
        assert_eq!(config["os"], "linux");
        assert_eq!(config["config"]["Entrypoint"], json!(["/pause"]));
        assert_eq!(config["config"]["User"], "65535:65535");
        assert_eq!(config["created"], "1970-01-01T00:00:00Z");
        assert_eq!(config["rootfs"]["type"], "layers");
        // Uncompressed: the diff ID is the layer's own digest.
        assert_eq!(config["rootfs"]["diff_ids"], json!([layers[0]["digest"]]));

        let layer = self::entries(layer_bytes);
        assert_eq!(layer.len(), 1);
        let (path, h, body) = &layer[0];
        assert_eq!(path, "pause");
        assert_eq!(h.mode().expect("mode"), 0o755);
        assert_eq!(h.entry_type(), tar::EntryType::Regular);
        assert_eq!((h.uid().expect("uid"), h.gid().expect("gid")), (0, 0));
        assert_eq!(body, &pause);
    }

    #[test]
    fn the_same_binary_gives_the_same_bytes_and_another_time_other_ones() {
        let pause = fake_static_elf();
        let one = build(&pause, &reference(), 0).expect("build");
        let two = build(&pause, &reference(), 0).expect("build");
        assert_eq!(one, two);
        let later = build(&pause, &reference(), 1_700_000_000).expect("build");
        assert_ne!(one, later);
        assert!(entries(&later)
            .iter()
            .all(|(_, h, _)| h.mtime().expect("mtime") == 1_700_000_000));
        let mut other = pause.clone();
        other.push(0);
        assert_ne!(one, build(&other, &reference(), 0).expect("build"));
    }

    #[test]
    fn only_a_static_x86_64_executable_is_taken() {
        assert_eq!(check_static_elf(&fake_static_elf()), Ok(()));
        assert_eq!(check_static_elf(&with_phdr(1)), Ok(()));
        assert!(check_static_elf(&with_phdr(3))
            .expect_err("dynamic")
            .contains("PT_INTERP"));
        assert_eq!(check_static_elf(b"#!/bin/sh\n"), Err("no ELF header"));
        assert_eq!(check_static_elf(b""), Err("no ELF header"));
        let mut arm = fake_static_elf();
        arm[18..20].copy_from_slice(&183u16.to_le_bytes());
        assert_eq!(check_static_elf(&arm), Err("not for x86-64"));
        let mut object = fake_static_elf();
        object[16..18].copy_from_slice(&1u16.to_le_bytes());
        assert_eq!(check_static_elf(&object), Err("not an executable"));
        let mut truncated = with_phdr(1);
        truncated.truncate(70);
        assert_eq!(check_static_elf(&truncated), Err("truncated"));
    }

    #[test]
    fn the_running_test_binary_is_static_as_the_build_links_it() {
        // .cargo/config.toml links everything with crt-static; this test
        // binary too, so the check must accept it (a static PIE or not).
        let exe = std::fs::read("/proc/self/exe").expect("own exe");
        assert_eq!(check_static_elf(&exe), Ok(()));
        // Debian's shell is dynamic.
        let sh = std::fs::read("/bin/sh").expect("/bin/sh");
        assert!(check_static_elf(&sh).is_err());
    }
}
