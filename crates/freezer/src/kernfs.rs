//! Reading and writing cgroup interface files.
//!
//! cgroup files live on kernfs: a value must be written in one `write(2)`
//! (no `O_TRUNC`, no `O_CREAT`: the file exists or the cgroup is gone), and
//! a removed cgroup answers ENOENT on open or ENODEV on an open descriptor;
//! both become [`Error::Gone`].

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::Path;

use crate::error::{is_gone_errno, Error, Result};

/// Reads a kernel-generated text file: `open`, `read` into a page-sized
/// buffer until it returns 0, `close`. They report a size of 0, so
/// `read_to_string` would `fstat` and `lseek` first for a size hint that
/// says nothing (two system calls of every read, and a freeze's status
/// checks make a few dozen reads).
pub(crate) fn read_text(path: &Path) -> std::io::Result<String> {
    let mut file = File::open(path)?;
    let mut buf = Vec::with_capacity(4096);
    loop {
        if buf.len() == buf.capacity() {
            buf.reserve(4096);
        }
        let len = buf.len();
        let spare = buf.capacity() - len;
        buf.resize(len + spare, 0);
        match file.read(&mut buf[len..]) {
            Ok(0) => {
                buf.truncate(len);
                break;
            }
            Ok(n) => buf.truncate(len + n),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => buf.truncate(len),
            Err(e) => return Err(e),
        }
    }
    String::from_utf8(buf)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e.utf8_error()))
}

/// Reads a whole interface file.
pub(crate) fn read(path: &Path) -> Result<String> {
    read_text(path).map_err(|source| {
        gone_or(path, source, |source| Error::Read {
            path: path.to_owned(),
            source,
        })
    })
}

/// Writes `value` to an interface file in one `write(2)`.
pub(crate) fn write(path: &Path, value: &str) -> Result<()> {
    let result = OpenOptions::new()
        .write(true)
        .open(path)
        .and_then(|mut f| f.write_all(value.as_bytes()));
    result.map_err(|source| {
        gone_or(path, source, |source| Error::Write {
            path: path.to_owned(),
            value: value.to_owned(),
            source,
        })
    })
}

/// Maps a vanished file to [`Error::Gone`] for its cgroup directory.
pub(crate) fn gone_or(
    path: &Path,
    source: std::io::Error,
    other: impl FnOnce(std::io::Error) -> Error,
) -> Error {
    if is_gone_errno(&source) {
        Error::Gone {
            path: path.parent().unwrap_or(path).to_owned(),
        }
    } else {
        other(source)
    }
}
