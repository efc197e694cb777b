//! The image store's one error type: one variant per operation, each naming
//! its path (on disk, or inside an archive) once, with the cause in
//! `source`.

use std::io;
use std::path::PathBuf;

/// Everything that can go wrong with images.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    // The store on disk.
    #[error("creating the image store directory {}", path.display())]
    CreateStore {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("locking the image store {}", path.display())]
    Lock {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("reading {}", path.display())]
    ReadStore {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("parsing {}", path.display())]
    ParseStore {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("writing {}", path.display())]
    WriteStore {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("removing {}", path.display())]
    RemoveStore {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    // Archives and layers: `entry` is a path inside the archive, or what
    // the archive is ("the image archive", "the root filesystem tar").
    #[error("reading {}", entry.display())]
    ReadArchive {
        entry: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("parsing the archive entry {}", entry.display())]
    ParseArchive {
        entry: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("the archive is not an image: {reason}")]
    NotAnImage { reason: String },
    #[error("the archive entry {} is {what}, which stasis cannot read", entry.display())]
    Unsupported { entry: PathBuf, what: &'static str },
    #[error("the archive entry {} has digest {actual}, not {expected}", entry.display())]
    DigestMismatch {
        entry: PathBuf,
        expected: String,
        actual: String,
    },
    #[error("unpacking {} into {}", entry.display(), layer.display())]
    Unpack {
        layer: PathBuf,
        entry: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("refusing the archive entry {}: {reason}", entry.display())]
    UnsafeEntry {
        entry: PathBuf,
        reason: &'static str,
    },

    // What a user gives.
    #[error("invalid image reference {value:?}: {reason}")]
    InvalidReference { value: String, reason: &'static str },
    #[error("invalid change {value:?}: {reason}")]
    InvalidChange { value: String, reason: &'static str },
    #[error("no such image: {name}")]
    NotFound { name: String },
    #[error("image ID prefix {prefix:?} is ambiguous")]
    Ambiguous { prefix: String },
    #[error("image {image} is in use by container {containers} (use --force to remove it anyway)")]
    InUse { image: String, containers: String },
    #[error("image {image} has several names ({names}): remove them one by one, or use --force")]
    SeveralNames { image: String, names: String },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// No image by that name or ID.
    pub fn is_not_found(&self) -> bool {
        matches!(self, Error::NotFound { .. })
    }

    /// The image is used by a container, or named more than once.
    pub fn is_conflict(&self) -> bool {
        matches!(self, Error::InUse { .. } | Error::SeveralNames { .. })
    }

    /// A malformed reference, change, ID prefix or archive.
    pub fn is_invalid(&self) -> bool {
        matches!(
            self,
            Error::InvalidReference { .. }
                | Error::InvalidChange { .. }
                | Error::Ambiguous { .. }
                | Error::NotAnImage { .. }
                | Error::Unsupported { .. }
                | Error::DigestMismatch { .. }
                | Error::UnsafeEntry { .. }
                | Error::ParseArchive { .. }
        )
    }

    /// The kernel said EPERM or EACCES.
    pub fn is_permission_denied(&self) -> bool {
        use std::error::Error as _;
        self.source()
            .and_then(|s| s.downcast_ref::<io::Error>())
            .is_some_and(|e| e.kind() == io::ErrorKind::PermissionDenied)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_each_fact_once_and_predicates_classify() {
        let e = Error::NotFound {
            name: "busybox".into(),
        };
        assert_eq!(e.to_string(), "no such image: busybox");
        assert!(e.is_not_found() && !e.is_conflict() && !e.is_invalid());
        let e = Error::Unpack {
            layer: "/s/l".into(),
            entry: "etc/passwd".into(),
            source: io::Error::from(io::ErrorKind::PermissionDenied),
        };
        assert_eq!(e.to_string(), "unpacking etc/passwd into /s/l");
        assert!(e.is_permission_denied());
        let e = Error::InUse {
            image: "bb".into(),
            containers: "web".into(),
        };
        assert!(e.is_conflict());
    }
}
