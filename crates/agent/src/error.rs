//! The crate's one error type.

use std::path::PathBuf;

/// What can go wrong in the agent's passes and the plugin's look-ups. A
/// message names the operation and the object once; the cause is the
/// `source` (kube's errors boxed: they are large).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("pod {pod} has no UID")]
    NoUid { pod: String },
    #[error("finding the cgroup of pod {uid}")]
    Locate {
        uid: String,
        #[source]
        source: freezer::Error,
    },
    #[error("reading the freeze state of {path}")]
    State {
        path: String,
        #[source]
        source: freezer::Error,
    },
    #[error("patching the annotations of pod {namespace}/{pod}")]
    Patch {
        namespace: String,
        pod: String,
        #[source]
        source: Box<kube::Error>,
    },
    #[error("a blocking task failed: {0}")]
    Task(String),
    #[error("{what:?} is not a target: give KIND/NAME (pod, deployment, statefulset, daemonset, replicaset, job)")]
    BadTarget { what: String },
    #[error("getting {kind} {namespace}/{name}")]
    Get {
        kind: &'static str,
        namespace: String,
        name: String,
        #[source]
        source: Box<kube::Error>,
    },
    #[error("listing the {kind} of namespace {namespace}")]
    List {
        kind: &'static str,
        namespace: String,
        #[source]
        source: Box<kube::Error>,
    },
    #[error("{kind} {namespace}/{name} has no UID")]
    NoOwnerUid {
        kind: &'static str,
        namespace: String,
        name: String,
    },
    #[error("entering the host's cgroup namespace through {}", path.display())]
    EnterCgroupNamespace {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    /// The API server answered 404 for what was looked up.
    pub fn is_not_found(&self) -> bool {
        matches!(self, Error::Get { source, .. } if matches!(source.as_ref(), kube::Error::Api(e) if e.code == 404))
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
