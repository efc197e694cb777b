//! The crate's two error types: [`ApiError`], what a request gets back (an
//! HTTP status and docker's `{"message": ...}`), and [`Error`], what can
//! stop the service itself (binding its socket, starting its runtime).

use std::path::PathBuf;

use hyper::StatusCode;

/// A request's failure as the client sees it: docker's status and message.
/// Internal causes are logged where they happen and never sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
        }
    }

    /// 400: a malformed parameter or body.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    /// 404 `No such container: X`, as docker words it.
    pub fn no_such_container(query: &str) -> Self {
        Self::new(StatusCode::NOT_FOUND, format!("No such container: {query}"))
    }

    /// 409: the object is not in a state the operation needs.
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, message)
    }

    /// 501: what stasis does not do (yet).
    pub fn not_implemented(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_IMPLEMENTED, message)
    }

    /// 500, with a message that says where to look; `cause` goes to the log.
    pub fn internal(what: &str, cause: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "{what}");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("{what} failed; the stasis serve log has the cause"),
        )
    }

    /// A sandbox error about container `query`: docker's statuses for its
    /// kinds (not found, conflict, bad input), 500 for the rest.
    pub fn from_sandbox(err: &sandbox::Error, query: &str, what: &str) -> Self {
        if let sandbox::Error::NotFound {
            kind: sandbox::Kind::Container | sandbox::Kind::ContainerOrPod,
            ..
        } = err
        {
            Self::no_such_container(query)
        } else if err.is_not_found() {
            Self::new(StatusCode::NOT_FOUND, capitalized(&err.to_string()))
        } else if err.is_conflict() {
            Self::conflict(capitalized(&err.to_string()))
        } else if err.is_invalid() {
            Self::bad_request(capitalized(&err.to_string()))
        } else {
            Self::internal(what, &format_chain(err))
        }
    }
}

/// An error and its causes on one line.
pub fn format_chain(err: &dyn std::error::Error) -> String {
    let mut out = err.to_string();
    let mut cause = err.source();
    while let Some(c) = cause {
        out.push_str(": ");
        out.push_str(&c.to_string());
        cause = c.source();
    }
    out
}

/// Docker's messages start with a capital; the sandbox's, as Rust
/// errors do, with a small letter.
pub fn capitalized(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// What can stop the service.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("binding the socket {}", path.display())]
    Bind {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} exists and is not a socket", path.display())]
    NotASocket { path: PathBuf },
    #[error("another service answers on {}", path.display())]
    InUse { path: PathBuf },
    #[error("setting the owner and mode of {}", path.display())]
    Permissions {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("starting the async runtime")]
    Runtime(#[source] std::io::Error),
    #[error("starting the thread that starts containers")]
    SpawnerThread(#[source] std::io::Error),
    #[error("waiting for signals")]
    Signals(#[source] std::io::Error),
    #[error("invalid --allow {value:?}: {reason}")]
    Allow { value: String, reason: String },
    #[error("reading {}", path.display())]
    ReadGroups {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("no such group: {name}")]
    NoSuchGroup { name: String },
}

impl Error {
    /// A mistake in the service's own options (not a system failure).
    pub fn is_invalid(&self) -> bool {
        matches!(
            self,
            Error::Allow { .. } | Error::NoSuchGroup { .. } | Error::NotASocket { .. }
        )
    }

    /// The socket is served by someone else.
    pub fn is_conflict(&self) -> bool {
        matches!(self, Error::InUse { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sandbox_errors_get_docker_statuses() {
        let nf = sandbox::Error::NotFound {
            kind: sandbox::Kind::Container,
            name: "web".into(),
        };
        let e = ApiError::from_sandbox(&nf, "web", "pausing");
        assert_eq!(e.status, StatusCode::NOT_FOUND);
        assert_eq!(e.message, "No such container: web");
        let paused = sandbox::Error::AlreadyPaused {
            kind: sandbox::Kind::Container,
            name: "web".into(),
        };
        let e = ApiError::from_sandbox(&paused, "web", "pausing");
        assert_eq!(e.status, StatusCode::CONFLICT);
        assert_eq!(e.message, "Container web is already paused");
        let io = sandbox::Error::Lock {
            path: "/run/stasis/lock".into(),
            source: std::io::Error::other("disk on fire"),
        };
        let e = ApiError::from_sandbox(&io, "web", "pausing web");
        assert_eq!(e.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(!e.message.contains("disk on fire"), "{}", e.message);
        assert!(!e.message.contains("/run/stasis"), "{}", e.message);
    }
}
