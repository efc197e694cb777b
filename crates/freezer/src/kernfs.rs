//! Reading and writing cgroup interface files.
//!
//! cgroup files live on kernfs: a value must be written in one `write(2)`
//! (no `O_TRUNC`, no `O_CREAT`: the file exists or the cgroup is gone), and
//! a removed cgroup answers ENOENT on open or ENODEV on an open descriptor;
//! both become [`Error::Gone`].

use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;

use crate::error::{is_gone_errno, Error, Result};

/// Reads a whole interface file.
pub(crate) fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|source| {
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
