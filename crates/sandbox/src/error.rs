//! The sandbox's one error type: one variant per operation, each naming its
//! path or PID once with the cause in `source`, and the docker-style
//! conflicts (already paused, not running, ...) built by the constructors at
//! the end.

use std::io;
use std::path::PathBuf;
use std::time::Duration;

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
    // The state store.
    #[error("creating the state directory {}", path.display())]
    CreateStore {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot read the state store {}", path.display())]
    ReadStore {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("creating the record directory {}", path.display())]
    CreateRecord {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("writing the record {}", path.display())]
    WriteRecord {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("reading the record {}", path.display())]
    ReadRecord {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("parsing the record {}", path.display())]
    Record {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("removing the record directory {}", path.display())]
    RemoveRecord {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("locking {}", path.display())]
    Lock {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("claiming the name {}", path.display())]
    ClaimName {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("releasing the name {}", path.display())]
    ReleaseName {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    // User input.
    #[error("invalid name {name:?}: {reason}")]
    InvalidName { name: String, reason: &'static str },
    #[error("invalid {what} {value:?}: {reason}")]
    InvalidArgument {
        what: &'static str,
        value: String,
        reason: &'static str,
    },
    #[error("invalid {what} {value:?}: {reason}")]
    InvalidLimit {
        what: &'static str,
        value: String,
        reason: String,
    },
    #[error("invalid {what} {value:?}: {reason}")]
    InvalidIsolation {
        what: &'static str,
        value: String,
        reason: String,
    },
    #[error("root filesystem {}", path.display())]
    Rootfs {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    // Lookups and docker's conflicts.
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

    // Processes.
    #[error("reading random bytes for an ID")]
    Random(#[source] io::Error),
    #[error("becoming a child subreaper")]
    Subreaper(#[source] io::Error),
    #[error("changing directory to {}", path.display())]
    Chdir {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("opening a pidfd for process {pid}")]
    OpenProcess {
        pid: u32,
        #[source]
        source: io::Error,
    },
    #[error("sending signal {signal} to process {pid}")]
    Signal {
        pid: u32,
        signal: i32,
        #[source]
        source: io::Error,
    },
    #[error("waiting for process {pid}")]
    WaitProcess {
        pid: u32,
        #[source]
        source: io::Error,
    },
    #[error("process {pid} did not exit within {timeout:?}")]
    ProcessTimeout { pid: u32, timeout: Duration },

    // Starting things.
    #[error("starting the pause process {}", binary.display())]
    SpawnPause {
        binary: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("the pause process {pid} exited at once ({status})")]
    PauseExited { pid: u32, status: String },
    #[error("no stasis-pause binary: set STASIS_PAUSE, or install it next to stasis or on PATH")]
    NoPauseBinary,
    #[error("starting the monitor of container {container}")]
    SpawnMonitor {
        container: String,
        #[source]
        source: io::Error,
    },
    #[error("starting container {container}: {message}")]
    StartFailed {
        container: String,
        /// The exit status the monitor recorded for it.
        code: i32,
        message: String,
    },
    #[error("the monitor of container {container} ended without starting it ({status})")]
    MonitorVanished { container: String, status: String },
    #[error("{program}: executable file not found")]
    CommandNotFound {
        program: String,
        #[source]
        source: io::Error,
    },
    #[error("{program}: cannot execute")]
    CommandNotExecutable {
        program: String,
        #[source]
        source: io::Error,
    },
    #[error("working directory {}", dir.display())]
    Workdir {
        dir: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("confining {program} (capabilities, seccomp)")]
    Confine {
        program: String,
        #[source]
        source: io::Error,
    },
    #[error("starting {program}")]
    SpawnCommand {
        program: String,
        #[source]
        source: io::Error,
    },
    #[error("this host has neither a v1 devices controller nor a cgroup2 tree to confine a container's devices in: run it with --privileged")]
    NoDevicesController,
    #[error("{step} the device program of {}", path.display())]
    DeviceProgram {
        path: PathBuf,
        step: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("building the seccomp filter: {reason}")]
    Seccomp { reason: String },
    #[error("device {}", path.display())]
    Device {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("writing {value:?} to {}", path.display())]
    DeviceRule {
        path: PathBuf,
        value: String,
        #[source]
        source: io::Error,
    },
    #[error("preparing the root filesystem at {}", path.display())]
    PrepareRootfs {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("mounting the overlay root filesystem at {}", path.display())]
    MountOverlay {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("unmounting the overlay root filesystem at {}", path.display())]
    UnmountOverlay {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("waiting for the container's process")]
    WaitChild(#[source] io::Error),
    #[error("allocating the container's pseudo-terminal")]
    Pty(#[source] io::Error),
    #[error("setting up the attach socket {}", path.display())]
    AttachSocket {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("attaching to the container through {}", path.display())]
    Attach {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("starting the health checker of container {container}")]
    SpawnChecker {
        container: String,
        #[source]
        source: io::Error,
    },
    #[error("running the health check of container {container}")]
    Probe {
        container: String,
        #[source]
        source: io::Error,
    },

    // Namespaces.
    #[error("pinning the namespace at {}", path.display())]
    Pin {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("opening the namespace {}", path.display())]
    OpenNamespace {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("unpinning the namespace at {}", path.display())]
    Unpin {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    // cgroups.
    #[error("this host has no cgroup hierarchy stasis can use for pods")]
    NoCgroups,
    #[error("this host has no memory, cpu or pids cgroup controller to set limits with")]
    NoControllers,
    #[error("creating the cgroup {}", path.display())]
    CreateCgroup {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("writing {value:?} to {}", path.display())]
    WriteCgroupFile {
        path: PathBuf,
        value: String,
        #[source]
        source: io::Error,
    },
    #[error("reading {}", path.display())]
    ReadCgroupFile {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    // Logs.
    #[error("opening the log {}", path.display())]
    OpenLog {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("reading the log {}", path.display())]
    ReadLog {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("copying the log {}", path.display())]
    CopyLog {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("watching {}", path.display())]
    Watch {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    // The event journal.
    #[error("appending to the event journal {}", path.display())]
    AppendEvent {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("reading the event journal {}", path.display())]
    ReadEvents {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("starting a new file of the event journal at {}", path.display())]
    RotateEvents {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("encoding an event")]
    EncodeEvent(#[source] serde_json::Error),

    #[error(transparent)]
    Freezer(#[from] freezer::Error),
    #[error(transparent)]
    Checkpoint(#[from] crate::checkpoint::CheckpointError),
    #[error(transparent)]
    Audit(#[from] crate::audit::Error),
}

/// The sandbox's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// No pod or container by that name or ID, or a path the user named
    /// (a root filesystem) does not exist.
    pub fn is_not_found(&self) -> bool {
        match self {
            Error::NotFound { .. } | Error::NoMatch { .. } => true,
            Error::Checkpoint(
                crate::checkpoint::CheckpointError::NoCheckpoint { .. }
                | crate::checkpoint::CheckpointError::NoCriu
                | crate::checkpoint::CheckpointError::CriuMissing { .. },
            ) => true,
            Error::Rootfs { source, .. } => source.kind() == io::ErrorKind::NotFound,
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
            Error::Checkpoint(
                crate::checkpoint::CheckpointError::Refused { .. }
                | crate::checkpoint::CheckpointError::NotExited { .. },
            ) => true,
            Error::Freezer(e) => e.is_already_paused() || e.is_not_paused(),
            _ => false,
        }
    }

    /// The pod or container is not running (it has exited, or never ran).
    pub fn is_not_running(&self) -> bool {
        matches!(self, Error::NotRunning { .. })
    }

    /// The user's input was malformed or ambiguous.
    pub fn is_invalid(&self) -> bool {
        match self {
            Error::InvalidName { .. }
            | Error::InvalidArgument { .. }
            | Error::InvalidLimit { .. }
            | Error::InvalidIsolation { .. }
            | Error::Ambiguous { .. } => true,
            Error::Freezer(e) => e.is_invalid(),
            _ => false,
        }
    }

    /// The kernel said EPERM or EACCES.
    pub fn is_permission_denied(&self) -> bool {
        if let Error::Freezer(e) = self {
            return e.is_permission_denied();
        }
        // A command that cannot be executed is the command's fault (126).
        if matches!(self, Error::CommandNotExecutable { .. }) {
            return false;
        }
        self.io_error().is_some_and(
            |io| matches!(io.raw_os_error(), Some(c) if c == libc::EPERM || c == libc::EACCES),
        )
    }

    /// The exit status docker gives a command that could not be started:
    /// 127 when it (or, for `run`, its working directory) does not exist,
    /// 126 when it cannot be executed (or, for `exec`, its working directory
    /// is missing: docker's code for an exec the runtime refused).
    pub fn command_exit_code(&self, exec: bool) -> Option<u8> {
        match self {
            Error::CommandNotFound { .. } => Some(127),
            Error::CommandNotExecutable { .. } => Some(126),
            Error::Workdir { .. } => Some(if exec { 126 } else { 127 }),
            Error::StartFailed { code, .. } => u8::try_from(*code).ok(),
            _ => None,
        }
    }

    /// The I/O error underneath, if there is one.
    pub fn io_error(&self) -> Option<&io::Error> {
        match self {
            Error::CreateStore { source, .. }
            | Error::ReadStore { source, .. }
            | Error::CreateRecord { source, .. }
            | Error::WriteRecord { source, .. }
            | Error::ReadRecord { source, .. }
            | Error::RemoveRecord { source, .. }
            | Error::Lock { source, .. }
            | Error::ClaimName { source, .. }
            | Error::ReleaseName { source, .. }
            | Error::Rootfs { source, .. }
            | Error::Chdir { source, .. }
            | Error::OpenProcess { source, .. }
            | Error::Signal { source, .. }
            | Error::WaitProcess { source, .. }
            | Error::SpawnPause { source, .. }
            | Error::SpawnMonitor { source, .. }
            | Error::CommandNotFound { source, .. }
            | Error::CommandNotExecutable { source, .. }
            | Error::Workdir { source, .. }
            | Error::SpawnCommand { source, .. }
            | Error::Confine { source, .. }
            | Error::PrepareRootfs { source, .. }
            | Error::Device { source, .. }
            | Error::DeviceRule { source, .. }
            | Error::MountOverlay { source, .. }
            | Error::UnmountOverlay { source, .. }
            | Error::Pin { source, .. }
            | Error::OpenNamespace { source, .. }
            | Error::Unpin { source, .. }
            | Error::CreateCgroup { source, .. }
            | Error::WriteCgroupFile { source, .. }
            | Error::ReadCgroupFile { source, .. }
            | Error::OpenLog { source, .. }
            | Error::ReadLog { source, .. }
            | Error::CopyLog { source, .. }
            | Error::Watch { source, .. }
            | Error::Probe { source, .. }
            | Error::SpawnChecker { source, .. }
            | Error::AppendEvent { source, .. }
            | Error::ReadEvents { source, .. }
            | Error::RotateEvents { source, .. } => Some(source),
            Error::Random(source)
            | Error::Subreaper(source)
            | Error::WaitChild(source)
            | Error::Pty(source) => Some(source),
            Error::AttachSocket { source, .. } | Error::Attach { source, .. } => Some(source),
            Error::Checkpoint(e) => e.io_error(),
            _ => None,
        }
    }

    // Docker's words for a pod or container.

    pub(crate) fn already_paused(kind: Kind, name: &str) -> Error {
        Error::AlreadyPaused {
            kind,
            name: name.to_owned(),
        }
    }

    pub(crate) fn not_paused(kind: Kind, name: &str) -> Error {
        Error::NotPaused {
            kind,
            name: name.to_owned(),
        }
    }

    pub(crate) fn not_running(kind: Kind, name: &str) -> Error {
        Error::NotRunning {
            kind,
            name: name.to_owned(),
        }
    }

    pub(crate) fn paused(kind: Kind, name: &str) -> Error {
        Error::Paused {
            kind,
            name: name.to_owned(),
        }
    }

    pub(crate) fn still_running(kind: Kind, name: &str) -> Error {
        Error::StillRunning {
            kind,
            name: name.to_owned(),
        }
    }

    pub(crate) fn paused_by_pod(container: &str, pod: &str) -> Error {
        Error::PausedByPod {
            container: container.to_owned(),
            pod: pod.to_owned(),
        }
    }

    /// The freezer's conflicts in docker's words for a pod or container.
    pub(crate) fn from_freezer(e: freezer::Error, kind: Kind, name: &str) -> Error {
        if e.is_already_paused() {
            Error::already_paused(kind, name)
        } else if matches!(e, freezer::Error::NotPaused { .. }) {
            Error::not_paused(kind, name)
        } else {
            Error::Freezer(e)
        }
    }
}

/// Wraps an I/O error into the variant `make` builds for `path`.
pub(crate) fn at(
    make: fn(PathBuf, io::Error) -> Error,
    path: impl Into<PathBuf>,
) -> impl FnOnce(io::Error) -> Error {
    let path = path.into();
    move |source| make(path, source)
}

/// An error and its causes, each once: `a: b: c`.
pub(crate) fn chain_text(e: &Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn predicates_map_the_codes_the_cli_documents() {
        let enoent = || io::Error::from_raw_os_error(libc::ENOENT);
        let eacces = || io::Error::from_raw_os_error(libc::EACCES);
        let rootfs = Error::Rootfs {
            path: "/nonexistent".into(),
            source: enoent(),
        };
        assert!(rootfs.is_not_found() && !rootfs.is_invalid());
        let store = Error::ReadStore {
            path: "/run/stasis".into(),
            source: eacces(),
        };
        assert!(store.is_permission_denied());
        assert!(store.to_string().contains("cannot read the state store"));
        let noexec = Error::CommandNotExecutable {
            program: "/etc/passwd".into(),
            source: eacces(),
        };
        assert!(!noexec.is_permission_denied());
        assert_eq!(noexec.command_exit_code(true), Some(126));
        let missing = Error::CommandNotFound {
            program: "nosuchcmd".into(),
            source: enoent(),
        };
        assert_eq!(missing.command_exit_code(true), Some(127));
        let workdir = Error::Workdir {
            dir: "/no/such".into(),
            source: enoent(),
        };
        assert_eq!(workdir.command_exit_code(false), Some(127));
        assert_eq!(workdir.command_exit_code(true), Some(126));
        assert!(workdir.to_string().contains("/no/such"));
        assert!(Error::paused_by_pod("c", "p").is_conflict());
    }
}
