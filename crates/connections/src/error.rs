//! The crate's one error type.

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;

/// Everything that can go wrong while finding, destroying or fencing a
/// target's sockets.
///
/// A message names the operation and what it worked on (the network
/// namespace file, the `/proc` directory, the socket), once; the kernel's or
/// `nft`'s answer is the `source`, so a chain printed with `{:#}` says each
/// fact once.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("opening network namespace {}", netns.display())]
    OpenNetns {
        netns: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("reading network namespace {}", netns.display())]
    ReadNetns {
        netns: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("entering network namespace {}", netns.display())]
    EnterNetns {
        netns: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("starting a thread for network namespace {}", netns.display())]
    SpawnThread {
        netns: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("the thread working in network namespace {} panicked", netns.display())]
    ThreadPanicked { netns: PathBuf },
    #[error("reading the socket descriptors in {}", path.display())]
    ReadDescriptors {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("opening a NETLINK_SOCK_DIAG socket in network namespace {}", netns.display())]
    OpenSockDiag {
        netns: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("dumping the {family} TCP sockets of network namespace {}", netns.display())]
    Dump {
        netns: PathBuf,
        family: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("destroying TCP socket {local} -> {remote} (inode {inode}) in network namespace {}", netns.display())]
    Destroy {
        netns: PathBuf,
        local: SocketAddr,
        remote: SocketAddr,
        inode: u64,
        #[source]
        source: io::Error,
    },
    #[error("invalid tag {tag:?}: use 1 to {} characters of [a-zA-Z0-9_.-], starting with a letter or digit", crate::reject::TAG_MAX)]
    InvalidTag { tag: String },
    #[error("{operation} nf_tables table {table} in network namespace {}", netns.display())]
    Nft {
        operation: &'static str,
        table: String,
        netns: PathBuf,
        #[source]
        source: NftError,
    },
    #[error("listing the nf_tables tables of network namespace {}", netns.display())]
    NftList {
        netns: PathBuf,
        #[source]
        source: NftError,
    },
    #[error("listing the processes of cgroup {cgroup}")]
    ListProcesses {
        cgroup: String,
        #[source]
        source: freezer::Error,
    },
    #[error("reading the fence {}", path.display())]
    ReadFence {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("reading the fence {}", path.display())]
    ParseFence {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("writing the fence {}", path.display())]
    WriteFence {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("removing the fence {}", path.display())]
    RemoveFence {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// What `nft` answered, with its stderr (which the `nftables` crate's own
/// message leaves out).
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct NftError {
    message: String,
    #[source]
    source: Box<nftables::helper::NftablesError>,
}

impl From<nftables::helper::NftablesError> for NftError {
    fn from(source: nftables::helper::NftablesError) -> Self {
        use nftables::helper::NftablesError as E;
        let message = match &source {
            E::NftFailed {
                program, stderr, ..
            } => {
                format!("{} failed: {}", program.to_string_lossy(), stderr.trim())
            }
            E::NftExecution { program, inner } => {
                format!("running {}: {inner}", program.to_string_lossy())
            }
            other => other.to_string(),
        };
        NftError {
            message,
            source: Box::new(source),
        }
    }
}

impl NftError {
    fn io(&self) -> Option<&io::Error> {
        match self.source.as_ref() {
            nftables::helper::NftablesError::NftExecution { inner, .. } => Some(inner),
            _ => None,
        }
    }
}

impl Error {
    fn io(&self) -> Option<&io::Error> {
        match self {
            Error::OpenNetns { source, .. }
            | Error::ReadNetns { source, .. }
            | Error::EnterNetns { source, .. }
            | Error::SpawnThread { source, .. }
            | Error::ReadDescriptors { source, .. }
            | Error::OpenSockDiag { source, .. }
            | Error::Dump { source, .. }
            | Error::Destroy { source, .. }
            | Error::ReadFence { source, .. }
            | Error::WriteFence { source, .. }
            | Error::RemoveFence { source, .. } => Some(source),
            Error::ListProcesses { source, .. } => source.io_error(),
            Error::Nft { source, .. } | Error::NftList { source, .. } => source.io(),
            Error::ThreadPanicked { .. } | Error::InvalidTag { .. } | Error::ParseFence { .. } => {
                None
            }
        }
    }

    /// The network namespace file, a `/proc` entry or the `nft` program does
    /// not exist.
    pub fn is_not_found(&self) -> bool {
        self.io()
            .is_some_and(|e| e.kind() == io::ErrorKind::NotFound)
    }

    /// The caller lacks the privilege (`CAP_SYS_ADMIN` to enter the
    /// namespace, `CAP_NET_ADMIN` in it to destroy sockets or change
    /// nf_tables, `CAP_SYS_PTRACE` to read another user's `/proc/PID/fd`).
    pub fn is_permission_denied(&self) -> bool {
        self.io()
            .is_some_and(|e| e.kind() == io::ErrorKind::PermissionDenied)
    }

    /// The kernel cannot destroy sockets: it was built without
    /// `CONFIG_INET_DIAG_DESTROY` (`EOPNOTSUPP`).
    pub fn is_unsupported(&self) -> bool {
        matches!(self, Error::Destroy { source, .. }
            if source.raw_os_error() == Some(rustix::io::Errno::OPNOTSUPP.raw_os_error()))
    }
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
