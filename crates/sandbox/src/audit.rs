//! The audit trail: one JSON line per state-changing request and per
//! refusal, from the API service and the CLI alike, in one file
//! (`<root>/audit.jsonl` by default; `stasis serve --audit-log` and the
//! CLI's `STASIS_AUDIT_LOG` move it).
//!
//! Each record is one `write(2)` of a whole line to a file opened with
//! `O_APPEND`, so records of concurrent writers (the service's threads, any
//! number of CLI processes) never interleave: the kernel appends each write
//! whole at the end under the inode's lock. The file is `fdatasync`ed after
//! every record, so a record that was written survives a crash of the host
//! once the verb it describes has returned — on a disk. On a RAM filesystem
//! (tmpfs, ramfs: the default state root `/run/stasis` is one) there is
//! nothing to sync and nothing survives a reboot anyway, so no `fdatasync`
//! is made there ([`on_ram_fs`]); the write itself, which every reader sees
//! at once, still comes before the verb returns. A writer killed in the middle of
//! a write can still leave a partial line (a write to a regular file is not
//! atomic against a crash of the host): the next writer sees that the file
//! does not end in a newline and starts its record on a line of its own,
//! and [`read`] skips every line that is not a whole record.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The audit log's file name under the state root.
pub const FILE_NAME: &str = "audit.jsonl";

/// The default audit log of a state root.
pub fn default_path(root: &Path) -> PathBuf {
    root.join(FILE_NAME)
}

/// Who asked, what for, and how it went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// RFC 3339, UTC.
    pub time: String,
    pub uid: u32,
    pub gid: u32,
    pub pid: u32,
    /// The caller's executable (`/proc/PID/exe`), if it could be read.
    pub exe: Option<String>,
    /// `"api"` or `"cli"`.
    pub via: String,
    /// The HTTP method (API only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// The request path with its query (API only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// The operation, in the words of `--allow` (`pause`, `rm`, ...).
    pub verb: String,
    /// What it acted on, as the caller named it.
    pub target: String,
    /// `"ok"`, `"error"` or `"refused"`.
    pub outcome: String,
    /// The HTTP status (API) or exit code (CLI).
    pub status: u32,
    /// The error or refusal, if there was one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// What can go wrong with the audit log.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("opening the audit log {}", path.display())]
    Open {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("appending to the audit log {}", path.display())]
    Append {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("encoding an audit record")]
    Encode(#[source] serde_json::Error),
}

/// The executable of process `pid`, from `<proc>/PID/exe`.
pub fn exe_of(proc_root: &Path, pid: u32) -> Option<String> {
    std::fs::read_link(proc_root.join(pid.to_string()).join("exe"))
        .ok()
        .map(|p| p.display().to_string())
}

/// The current time, as records carry it.
pub fn now() -> String {
    crate::time::rfc3339_nanos(std::time::SystemTime::now())
}

/// Whether the file at `path` (or, if it does not exist yet, its
/// directory) is on a RAM filesystem, where `fdatasync` has nothing to do.
/// Unknown (neither can be read) counts as a disk.
pub fn on_ram_fs(path: &Path) -> bool {
    let stat = rustix::fs::statfs(path).or_else(|_| {
        path.parent()
            .map_or(Err(rustix::io::Errno::NOENT), rustix::fs::statfs)
    });
    stat.is_ok_and(|s| is_ram_fs(s.f_type))
}

/// tmpfs and ramfs, by `statfs`'s magic numbers.
fn is_ram_fs(f_type: i64) -> bool {
    const TMPFS_MAGIC: i64 = 0x0102_1994;
    const RAMFS_MAGIC: i64 = 0x8584_58f6;
    matches!(f_type, TMPFS_MAGIC | RAMFS_MAGIC)
}

/// Appends `record` to the log at `path` (created 0600 if missing) with
/// one write, then `fdatasync` unless the file is on a RAM filesystem.
pub fn append(path: &Path, record: &Record) -> Result<(), Error> {
    append_with(path, record, true)
}

/// `fdatasync`s the log at `path` (a missing one has nothing to sync): what
/// a writer that appends with `sync: false` does later, for many records
/// at once.
pub fn sync(path: &Path) -> Result<(), Error> {
    match File::open(path) {
        Ok(f) => f.sync_data().map_err(|source| Error::Append {
            path: path.to_owned(),
            source,
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(Error::Open {
            path: path.to_owned(),
            source,
        }),
    }
}

/// [`append`], with the `fdatasync` only if `sync` (and the file is not on
/// a RAM filesystem).
pub fn append_with(path: &Path, record: &Record, sync: bool) -> Result<(), Error> {
    let mut line = serde_json::to_vec(record).map_err(Error::Encode)?;
    line.push(b'\n');
    // Readable too: the last byte tells whether a writer died mid-line.
    let file = OpenOptions::new()
        .read(true)
        .append(true)
        .create(true)
        .mode(0o600)
        .custom_flags(libc::O_CLOEXEC)
        .open(path)
        .map_err(|source| Error::Open {
            path: path.to_owned(),
            source,
        })?;
    if !ends_with_newline(&file) {
        // A writer died mid-line: keep this record off that line.
        line.insert(0, b'\n');
    }
    let appended = rustix::io::write(&file, &line)
        .map_err(std::io::Error::from)
        .and_then(|n| {
            if n == line.len() {
                Ok(())
            } else {
                Err(std::io::Error::new(
                    std::io::ErrorKind::WriteZero,
                    format!("short write: {n} of {} bytes", line.len()),
                ))
            }
        })
        .and_then(|()| {
            if !sync {
                return Ok(());
            }
            let ram = rustix::fs::fstatfs(&file).is_ok_and(|s| is_ram_fs(s.f_type));
            if ram {
                Ok(())
            } else {
                file.sync_data()
            }
        });
    appended.map_err(|source| Error::Append {
        path: path.to_owned(),
        source,
    })
}

/// Whether the file is empty or ends in a newline.
fn ends_with_newline(file: &File) -> bool {
    let len = file.metadata().map_or(0, |m| m.len());
    if len == 0 {
        return true;
    }
    let mut last = [0u8; 1];
    matches!(file.read_at(&mut last, len - 1), Ok(1) if last[0] == b'\n')
}

/// Every whole record in the log at `path`, oldest first; a torn or
/// foreign line is skipped. A missing log has none.
pub fn read(path: &Path) -> Result<Vec<Record>, Error> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(Error::Open {
                path: path.to_owned(),
                source,
            })
        }
    };
    let mut out = Vec::new();
    for line in BufReader::new(file).split(b'\n') {
        let line = line.map_err(|source| Error::Open {
            path: path.to_owned(),
            source,
        })?;
        if let Ok(r) = serde_json::from_slice::<Record>(&line) {
            out.push(r);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(verb: &str) -> Record {
        Record {
            time: now(),
            uid: 1000,
            gid: 1000,
            pid: 42,
            exe: Some("/usr/bin/docker".into()),
            via: "api".into(),
            method: Some("POST".into()),
            path: Some("/v1.44/containers/web/pause".into()),
            verb: verb.into(),
            target: "web".into(),
            outcome: "ok".into(),
            status: 204,
            message: None,
        }
    }

    #[test]
    fn ram_filesystems_are_told_from_disks() {
        assert!(is_ram_fs(0x0102_1994) && is_ram_fs(0x8584_58f6));
        assert!(!is_ram_fs(0xEF53), "ext4");
        // /dev/shm is a tmpfs on Linux; /proc is neither.
        assert!(on_ram_fs(Path::new("/dev/shm/stasis-no-such-file")));
        assert!(!on_ram_fs(Path::new("/proc/self/status")));
    }

    #[test]
    fn records_append_as_lines_and_a_torn_line_is_skipped() {
        let dir = std::env::temp_dir().join(format!("stasis-unit-audit-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join(FILE_NAME);
        assert!(read(&path).expect("missing").is_empty());
        append(&path, &record("pause")).expect("append");
        // A writer that died mid-record.
        let mut torn = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .expect("open");
        std::io::Write::write_all(&mut torn, b"{\"time\":\"2026-").expect("torn");
        append(&path, &record("unpause")).expect("append after a torn line");
        let got = read(&path).expect("read");
        assert_eq!(
            got.iter().map(|r| r.verb.as_str()).collect::<Vec<_>>(),
            ["pause", "unpause"]
        );
        assert_eq!(got[0], record("pause").clone_with_time(&got[0].time));
        let text = std::fs::read_to_string(&path).expect("text");
        assert_eq!(text.lines().count(), 3, "{text}");
        assert!(!text.contains("\n\n"), "no blank lines: {text}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    impl Record {
        fn clone_with_time(mut self, t: &str) -> Self {
            self.time = t.to_owned();
            self
        }
    }
}
