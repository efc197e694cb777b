//! Unpacking one layer: a tar (gzip-compressed or not) into a fresh
//! directory that overlayfs can stack as a lower dir.
//!
//! Nothing in the tar may reach outside that directory: a path that is
//! absolute or has a `..` is refused, and so is an entry whose parent is a
//! symlink (unpacking through `etc -> /etc` would write the host's), and a
//! hard link whose target is not inside. A symlink's own target is stored
//! as given: it is resolved later inside the container's root, never here.
//! Device nodes are made only when running as root (skipped otherwise),
//! owners are kept only as root, and set-id bits only with them.
//!
//! OCI whiteouts become overlayfs whiteouts, so that a layer hides what the
//! ones below it have: `DIR/.wh.NAME` becomes a character device 0/0 named
//! `DIR/NAME`, and `DIR/.wh..wh..opq` sets the `trusted.overlay.opaque`
//! xattr of `DIR` to `y` (both need root, as overlayfs itself does).
//! Directory modification times are not restored (later entries change
//! them); extended attributes in the tar are not kept.

use std::fs::{self, OpenOptions};
use std::io::{self, BufRead, BufReader, Read};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use rustix::fs::{AtFlags, FileType, Mode, Timespec, Timestamps, XattrFlags, CWD};

use crate::digest::{Digest, Hashing};
use crate::error::{Error, Result};

/// What unpacking a layer found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Unpacked {
    /// The digest of the uncompressed tar.
    pub diff_id: Digest,
    /// The bytes of its regular files.
    pub size: u64,
}

/// How an archive is compressed, from its first bytes.
pub(crate) fn decompress<'a>(reader: impl Read + 'a, entry: &Path) -> Result<Box<dyn Read + 'a>> {
    let mut buf = BufReader::new(reader);
    let head = buf.fill_buf().map_err(|source| Error::ReadArchive {
        entry: entry.to_owned(),
        source,
    })?;
    if head.starts_with(&[0x1f, 0x8b]) {
        return Ok(Box::new(flate2::read::MultiGzDecoder::new(buf)));
    }
    let unsupported = |what| Error::Unsupported {
        entry: entry.to_owned(),
        what,
    };
    if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        return Err(unsupported("zstd-compressed"));
    }
    if head.starts_with(b"BZh") {
        return Err(unsupported("bzip2-compressed"));
    }
    if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
        return Err(unsupported("xz-compressed"));
    }
    Ok(Box::new(buf))
}

/// Unpacks the layer tar `reader` (named `entry` in messages) into `dest`,
/// an empty directory.
pub(crate) fn unpack(reader: impl Read, dest: &Path, entry: &Path) -> Result<Unpacked> {
    let read_err = |source| Error::ReadArchive {
        entry: entry.to_owned(),
        source,
    };
    let mut hashing = Hashing::new(decompress(reader, entry)?);
    let as_root = rustix::process::geteuid().is_root();
    let mut size = 0;
    {
        let mut archive = tar::Archive::new(&mut hashing);
        for item in archive.entries().map_err(read_err)? {
            let mut item = item.map_err(read_err)?;
            let raw = item.path().map_err(read_err)?.into_owned();
            let rel = clean(&raw)?;
            if rel.as_os_str().is_empty() {
                continue; // the layer's root itself
            }
            let at = |source| Error::Unpack {
                layer: dest.to_owned(),
                entry: rel.clone(),
                source,
            };
            size += unpack_entry(&mut item, dest, &rel, as_root).map_err(|e| match e {
                Step::Io(source) => at(source),
                Step::Unsafe(reason) => Error::UnsafeEntry {
                    entry: raw.clone(),
                    reason,
                },
            })?;
        }
    }
    let diff_id = hashing.finish().map_err(read_err)?;
    Ok(Unpacked { diff_id, size })
}

/// Why one entry failed: a filesystem error, or a refusal.
enum Step {
    Io(io::Error),
    Unsafe(&'static str),
}

impl From<io::Error> for Step {
    fn from(e: io::Error) -> Self {
        Step::Io(e)
    }
}

impl From<rustix::io::Errno> for Step {
    fn from(e: rustix::io::Errno) -> Self {
        Step::Io(e.into())
    }
}

/// An archive path made relative and checked: `./a/b` is `a/b`; an
/// absolute path or one with `..` is refused.
pub(crate) fn clean(path: &Path) -> Result<PathBuf> {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::Normal(p) => out.push(p),
            Component::CurDir => {}
            Component::RootDir | Component::Prefix(_) => {
                return Err(Error::UnsafeEntry {
                    entry: path.to_owned(),
                    reason: "its path is absolute",
                })
            }
            Component::ParentDir => {
                return Err(Error::UnsafeEntry {
                    entry: path.to_owned(),
                    reason: "its path has ..",
                })
            }
        }
    }
    Ok(out)
}

/// Makes (or checks) every parent directory of `rel` under `dest`, none a
/// symlink; returns the entry's full path.
fn parents(dest: &Path, rel: &Path, create: bool) -> Result<PathBuf, Step> {
    let mut at = dest.to_owned();
    if let Some(parent) = rel.parent() {
        for c in parent.components() {
            at.push(c);
            match fs::symlink_metadata(&at) {
                Ok(m) if m.is_dir() => {}
                Ok(m) if m.file_type().is_symlink() => {
                    return Err(Step::Unsafe("a directory on its path is a symlink"))
                }
                // A file where a directory is wanted: the later entry wins.
                Ok(_) if create => {
                    fs::remove_file(&at)?;
                    fs::create_dir(&at)?;
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound && create => fs::create_dir(&at)?,
                Ok(_) => return Err(Step::Io(io::Error::from(io::ErrorKind::NotADirectory))),
                Err(e) => return Err(Step::Io(e)),
            }
        }
    }
    Ok(dest.join(rel))
}

/// Removes what a path holds, if anything (a later entry replaces it).
fn clear(path: &Path) -> io::Result<()> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => fs::remove_dir_all(path),
        Ok(_) => fs::remove_file(path),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

const OPAQUE: &str = ".wh..wh..opq";
const WHITEOUT: &str = ".wh.";

/// Unpacks one entry; returns the bytes it wrote.
fn unpack_entry<R: Read>(
    item: &mut tar::Entry<'_, R>,
    dest: &Path,
    rel: &Path,
    as_root: bool,
) -> Result<u64, Step> {
    let name = rel
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default()
        .to_owned();
    if let Some(hidden) = name.strip_prefix(WHITEOUT) {
        let full = parents(dest, rel, true)?;
        let dir = full.parent().unwrap_or(dest);
        if name == OPAQUE {
            rustix::fs::lsetxattr(dir, "trusted.overlay.opaque", b"y", XattrFlags::empty())?;
        } else if !hidden.starts_with(WHITEOUT) {
            // `.wh..wh.*` other than the opaque marker is aufs bookkeeping.
            let target = dir.join(hidden);
            clear(&target)?;
            rustix::fs::mknodat(
                CWD,
                &target,
                FileType::CharacterDevice,
                Mode::empty(),
                rustix::fs::makedev(0, 0),
            )?;
        }
        return Ok(0);
    }

    let header = item.header().clone();
    let kind = header.entry_type();
    let full = parents(dest, rel, true)?;
    let mode = header.mode()? & if as_root { 0o7777 } else { 0o1777 };
    let existing_dir = fs::symlink_metadata(&full).is_ok_and(|m| m.is_dir());
    if !(kind.is_dir() && existing_dir) {
        clear(&full)?;
    }
    let mut written = 0;
    match kind {
        tar::EntryType::Regular | tar::EntryType::Continuous => {
            let mut f = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .custom_flags(libc_nofollow())
                .open(&full)?;
            written = io::copy(item, &mut f)?;
        }
        tar::EntryType::Directory => {
            if !existing_dir {
                fs::create_dir(&full)?;
            }
        }
        tar::EntryType::Symlink => {
            let target = item
                .link_name()?
                .ok_or(Step::Unsafe("a symlink without a target"))?;
            std::os::unix::fs::symlink(&*target, &full)?;
        }
        tar::EntryType::Link => {
            let target = item
                .link_name()?
                .ok_or(Step::Unsafe("a hard link without a target"))?;
            let target =
                clean(&target).map_err(|_| Step::Unsafe("its link target is outside the layer"))?;
            let source = parents(dest, &target, false)?;
            fs::hard_link(&source, &full)?;
            // A hard link shares its target's owner and mode.
            return Ok(0);
        }
        tar::EntryType::Char | tar::EntryType::Block if as_root => {
            let kind_of = if kind == tar::EntryType::Char {
                FileType::CharacterDevice
            } else {
                FileType::BlockDevice
            };
            let dev = rustix::fs::makedev(
                header.device_major()?.unwrap_or(0),
                header.device_minor()?.unwrap_or(0),
            );
            rustix::fs::mknodat(CWD, &full, kind_of, Mode::from_raw_mode(0o600), dev)?;
        }
        tar::EntryType::Char | tar::EntryType::Block => {
            tracing::warn!(entry = %rel.display(), "not root: skipping a device node");
            return Ok(0);
        }
        tar::EntryType::Fifo => {
            rustix::fs::mknodat(CWD, &full, FileType::Fifo, Mode::from_raw_mode(0o600), 0)?;
        }
        other => {
            tracing::debug!(entry = %rel.display(), kind = ?other, "skipping an entry of this kind");
            return Ok(0);
        }
    }
    if as_root {
        let uid = u32::try_from(header.uid()?).unwrap_or(0);
        let gid = u32::try_from(header.gid()?).unwrap_or(0);
        rustix::fs::chownat(
            CWD,
            &full,
            Some(rustix::fs::Uid::from_raw(uid)),
            Some(rustix::fs::Gid::from_raw(gid)),
            AtFlags::SYMLINK_NOFOLLOW,
        )?;
    }
    if kind != tar::EntryType::Symlink {
        // After chown, which clears set-id bits.
        fs::set_permissions(&full, fs::Permissions::from_mode(mode))?;
    }
    if !kind.is_dir() {
        let mtime = Timespec {
            tv_sec: i64::try_from(header.mtime()?).unwrap_or(0),
            tv_nsec: 0,
        };
        let times = Timestamps {
            last_access: mtime,
            last_modification: mtime,
        };
        rustix::fs::utimensat(CWD, &full, &times, AtFlags::SYMLINK_NOFOLLOW)?;
    }
    Ok(written)
}

/// `O_NOFOLLOW`: never open a file through a symlink left at its path.
fn libc_nofollow() -> i32 {
    rustix::fs::OFlags::NOFOLLOW.bits() as i32
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A tar built in memory.
    #[allow(missing_debug_implementations)]
    pub(crate) struct TarBuilder {
        builder: Option<tar::Builder<Vec<u8>>>,
    }

    impl TarBuilder {
        pub(crate) fn new() -> Self {
            TarBuilder {
                builder: Some(tar::Builder::new(Vec::new())),
            }
        }

        fn b(&mut self) -> &mut tar::Builder<Vec<u8>> {
            self.builder.as_mut().expect("not finished")
        }

        fn header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(kind);
            h.set_mode(mode);
            h.set_size(size);
            h.set_mtime(1_700_000_000);
            h.set_uid(0);
            h.set_gid(0);
            h
        }

        pub(crate) fn file(mut self, path: &str, body: &[u8]) -> Self {
            self.file_mode(path, body, 0o644);
            self
        }

        pub(crate) fn file_mode(&mut self, path: &str, body: &[u8], mode: u32) {
            let mut h = Self::header(tar::EntryType::Regular, mode, body.len() as u64);
            // Set the raw name, so tests can write what `append_data` refuses.
            set_raw_path(&mut h, path);
            h.set_cksum();
            self.b().append(&h, body).expect("append");
        }

        pub(crate) fn dir(mut self, path: &str) -> Self {
            let mut h = Self::header(tar::EntryType::Directory, 0o755, 0);
            set_raw_path(&mut h, path);
            h.set_cksum();
            self.b().append(&h, io::empty()).expect("append");
            self
        }

        pub(crate) fn link(mut self, kind: tar::EntryType, path: &str, target: &str) -> Self {
            let mut h = Self::header(kind, 0o777, 0);
            set_raw_path(&mut h, path);
            h.set_link_name(target).expect("link name");
            h.set_cksum();
            self.b().append(&h, io::empty()).expect("append");
            self
        }

        pub(crate) fn finish(mut self) -> Vec<u8> {
            self.builder
                .take()
                .expect("once")
                .into_inner()
                .expect("finish")
        }
    }

    fn set_raw_path(h: &mut tar::Header, path: &str) {
        let name = &mut h.as_old_mut().name;
        name.fill(0);
        name[..path.len()].copy_from_slice(path.as_bytes());
    }

    pub(crate) fn gzip(bytes: &[u8]) -> Vec<u8> {
        use std::io::Write;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(bytes).expect("gzip");
        gz.finish().expect("gzip")
    }

    /// A fresh directory under the target dir, removed on drop.
    #[derive(Debug)]
    pub(crate) struct Dir(pub PathBuf);

    impl Dir {
        pub(crate) fn new(name: &str) -> Self {
            let base = std::env::temp_dir().join(format!(
                "stasis-test-images-{name}-{}-{}",
                std::process::id(),
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_nanos())
            ));
            fs::create_dir_all(&base).expect("mkdir");
            Dir(base)
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn a_layer_unpacks_with_files_dirs_links_and_its_digest() {
        let tar = TarBuilder::new()
            .dir("./")
            .dir("./etc/")
            .file("./etc/hostname", b"box\n")
            .file("bin/busybox", b"#!")
            .link(tar::EntryType::Symlink, "bin/sh", "busybox")
            .link(tar::EntryType::Symlink, "abs", "/etc/hostname")
            .link(tar::EntryType::Link, "bin/ash", "bin/busybox")
            .finish();
        let dir = Dir::new("unpack");
        let u = unpack(&tar[..], &dir.0, Path::new("layer.tar")).expect("unpack");
        assert_eq!(u.diff_id, Digest::of(&tar));
        assert_eq!(u.size, 6);
        assert_eq!(
            fs::read(dir.0.join("etc/hostname")).expect("file"),
            b"box\n"
        );
        assert_eq!(
            fs::read_link(dir.0.join("bin/sh")).expect("link"),
            Path::new("busybox")
        );
        assert_eq!(
            fs::read_link(dir.0.join("abs")).expect("an absolute symlink is kept as given"),
            Path::new("/etc/hostname")
        );
        assert_eq!(fs::read(dir.0.join("bin/ash")).expect("hard link"), b"#!");
        // gzip gives the same tree and the digest of the uncompressed tar.
        let gz = Dir::new("unpack-gz");
        let u = unpack(&gzip(&tar)[..], &gz.0, Path::new("layer.tar.gz")).expect("gzip");
        assert_eq!(u.diff_id, Digest::of(&tar));
        assert!(gz.0.join("bin/busybox").is_file());
    }

    #[test]
    fn nothing_unpacks_outside_the_layer() {
        let outside = Dir::new("outside");
        let victim = outside.0.join("victim");
        for (what, tar) in [
            ("..", TarBuilder::new().file("../victim", b"x").finish()),
            (
                "a/../..",
                TarBuilder::new().file("a/../../victim", b"x").finish(),
            ),
            (
                "absolute",
                TarBuilder::new()
                    .file(victim.to_str().expect("utf-8"), b"x")
                    .finish(),
            ),
            (
                "through a symlink",
                TarBuilder::new()
                    .link(
                        tar::EntryType::Symlink,
                        "out",
                        outside.0.to_str().expect("utf-8"),
                    )
                    .file("out/victim", b"x")
                    .finish(),
            ),
            (
                "a relative symlink",
                TarBuilder::new()
                    .dir("d/")
                    .link(tar::EntryType::Symlink, "d/up", "../../../..")
                    .file("d/up/victim", b"x")
                    .finish(),
            ),
            (
                "a hard link out",
                TarBuilder::new()
                    .link(tar::EntryType::Link, "h", "../victim")
                    .finish(),
            ),
        ] {
            let dir = Dir::new("escape");
            let err = unpack(&tar[..], &dir.0, Path::new("l.tar")).expect_err(what);
            assert!(matches!(err, Error::UnsafeEntry { .. }), "{what}: {err}");
            assert!(err.is_invalid(), "{what}");
            assert!(!victim.exists(), "{what}: wrote outside");
        }
    }

    #[test]
    fn whiteouts_become_overlay_whiteouts() {
        if !testkit::root_or_skip("whiteouts_become_overlay_whiteouts") {
            return;
        }
        let tar = TarBuilder::new()
            .dir("etc/")
            .file("etc/.wh.motd", b"")
            .dir("var/cache/")
            .file("var/cache/.wh..wh..opq", b"")
            .file("var/cache/kept", b"k")
            .finish();
        let dir = Dir::new("whiteout");
        unpack(&tar[..], &dir.0, Path::new("l.tar")).expect("unpack");
        use std::os::unix::fs::{FileTypeExt, MetadataExt};
        let m = fs::symlink_metadata(dir.0.join("etc/motd")).expect("whiteout");
        assert!(m.file_type().is_char_device(), "{m:?}");
        assert_eq!(m.rdev(), 0);
        assert!(!dir.0.join("etc/.wh.motd").exists());
        let mut value = [0u8; 4];
        let n = rustix::fs::lgetxattr(
            dir.0.join("var/cache"),
            "trusted.overlay.opaque",
            &mut value,
        )
        .expect("opaque xattr");
        assert_eq!(&value[..n], b"y");
        assert!(dir.0.join("var/cache/kept").is_file());
        assert!(!dir.0.join("var/cache/.wh..wh..opq").exists());
    }

    #[test]
    fn compressions_stasis_cannot_read_are_named() {
        let dir = Dir::new("zstd");
        let err =
            unpack(&[0x28, 0xb5, 0x2f, 0xfd, 0, 0][..], &dir.0, Path::new("l")).expect_err("zstd");
        assert!(err.to_string().contains("zstd"), "{err}");
    }
}
