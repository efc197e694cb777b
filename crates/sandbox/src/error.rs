//! The sandbox's one error type.

use std::io;
use std::path::PathBuf;

/// Pod or container: what an error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Pod,
    Container,
    /// A name that may be either.
    ContainerOrPod,
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Kind::Pod => "pod",
            Kind::Container => "container",
            Kind::ContainerOrPod => "container or pod",
        })
    }
}

/// Everything that can go wrong with pods and containers.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("{action} {}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("reading record {}", path.display())]
    Record {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("invalid name {name:?}: {reason}")]
    InvalidName { name: String, reason: &'static str },
    #[error("invalid {what} {value:?}: {reason}")]
    InvalidArgument {
        what: &'static str,
        value: String,
        reason: &'static str,
    },
    #[error("no such {kind}: {name}")]
    NotFound { kind: Kind, name: String },
    #[error("no {kind} matches the filters")]
    NoMatch { kind: Kind },
    #[error("{kind} ID prefix {prefix:?} is ambiguous: {}", matches.join(", "))]
    Ambiguous {
        kind: Kind,
        prefix: String,
        matches: Vec<String>,
    },
    #[error("the {kind} name {name:?} is already in use by {id}")]
    NameInUse {
        kind: Kind,
        name: String,
        id: String,
    },
    #[error("{kind} {name} is already paused")]
    AlreadyPaused { kind: Kind, name: String },
    #[error("{kind} {name} is not paused")]
    NotPaused { kind: Kind, name: String },
    #[error("{kind} {name} is not running")]
    NotRunning { kind: Kind, name: String },
    #[error("{kind} {name} is paused; unpause it first")]
    Paused { kind: Kind, name: String },
    #[error("container {container} is paused because its pod {pod} is paused")]
    PausedByPod { container: String, pod: String },
    #[error("{kind} {name} is running; stop it first or use --force")]
    StillRunning { kind: Kind, name: String },
    #[error("{what} failed")]
    Spawn {
        what: String,
        #[source]
        source: io::Error,
    },
    #[error("no stasis-pause binary: set STASIS_PAUSE, or install it next to stasis or on PATH")]
    NoPauseBinary,
    #[error("this host has no cgroup hierarchy stasis can use for pods")]
    NoCgroups,
    #[error(transparent)]
    Freezer(#[from] freezer::Error),
}

/// The sandbox's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// No pod or container by that name or ID (or the process vanished).
    pub fn is_not_found(&self) -> bool {
        match self {
            Error::NotFound { .. } | Error::NoMatch { .. } => true,
            Error::Freezer(e) => e.is_not_found(),
            _ => false,
        }
    }

    /// Docker's conflicts: already paused, not paused, not running, paused,
    /// still running, name in use.
    pub fn is_conflict(&self) -> bool {
        match self {
            Error::AlreadyPaused { .. }
            | Error::NotPaused { .. }
            | Error::NotRunning { .. }
            | Error::Paused { .. }
            | Error::PausedByPod { .. }
            | Error::StillRunning { .. }
            | Error::NameInUse { .. } => true,
            Error::Freezer(e) => e.is_already_paused() || e.is_not_paused(),
            _ => false,
        }
    }

    /// The user's input was malformed or ambiguous.
    pub fn is_invalid(&self) -> bool {
        match self {
            Error::InvalidName { .. } | Error::InvalidArgument { .. } | Error::Ambiguous { .. } => {
                true
            }
            Error::Freezer(e) => e.is_invalid(),
            _ => false,
        }
    }

    /// The kernel said EPERM or EACCES.
    pub fn is_permission_denied(&self) -> bool {
        let io = match self {
            Error::Io { source, .. } | Error::Spawn { source, .. } => source,
            Error::Freezer(e) => return e.is_permission_denied(),
            _ => return false,
        };
        matches!(io.raw_os_error(), Some(c) if c == libc::EPERM || c == libc::EACCES)
    }
}

/// Wraps an I/O error with the operation and path.
pub(crate) fn io_err(
    action: &'static str,
    path: impl Into<PathBuf>,
) -> impl FnOnce(io::Error) -> Error {
    let path = path.into();
    move |source| Error::Io {
        action,
        path,
        source,
    }
}
