//! Pods and containers on one Linux host: namespaces, cgroups, the monitor
//! and the state store.
//!
//! A pod is a set of namespaces (net, ipc, uts by default; pid and cgroup on
//! request) anchored by `stasis-pause` and pinned by bind mounts under its
//! state directory, plus a cgroup node `stasis/<pod-id>` in each hierarchy.
//! A container is a process started in its pod's namespaces and its own leaf
//! of that node, optionally in its own root filesystem, whose parent is a
//! monitor that logs its output and records its exit. Pausing a pod is one
//! write at its node ([`freezer`]); whether anything is paused is read from
//! the kernel (in any hierarchy), never stored. A pod that `run` made for
//! one container ends with it: its pause process when the container exits,
//! its record with `rm`.
//!
//! - [`Sandbox`] — the entry point: a state root and the [`Host`] (`/proc`
//!   and the cgroup hierarchies, parameters so rules run on fake trees).
//!   Pods: [`Sandbox::create_pod`], [`Sandbox::pause_pod`],
//!   [`Sandbox::stop_pod`], [`Sandbox::remove_pod`]. Containers:
//!   [`Sandbox::create_container`], [`Sandbox::start_container`],
//!   [`Sandbox::start_again`] (an exited one, in a new process),
//!   [`Sandbox::run_monitor`], [`Sandbox::exec`], [`Sandbox::kill_container`],
//!   [`Sandbox::copy_logs`]; through CRIU, [`Sandbox::checkpoint_container`],
//!   [`Sandbox::restore_container`] and [`Sandbox::restore_as`]
//!   ([`checkpoint`]).
//! - [`ProcessRef`] — a recorded process (PID + start time), opened as a
//!   pidfd ([`Process`]) to signal or wait for it without a PID-reuse race.
//! - [`store`] — atomic JSON records under per-record locks, and names.
//! - [`journal`] — the event journal every operation appends to (docker's
//!   create, start, pause, ..., die, destroy; pods' too), read by
//!   `stasis events` and the API's event stream: [`Sandbox::journal`].
//! - [`ns`] — the namespaces and their pins.
//! - [`Error`] — one variant per operation, with predicates
//!   ([`Error::is_not_found`], [`Error::is_conflict`],
//!   [`Error::command_exit_code`]) for the CLI's exit codes.
//!
//! Modules, each with one job: `pod` (pods, their pause process and
//! freeze), `container` (records, status, the verbs on one container),
//! `exec`, `monitor`, `logs`, `teardown` (stopping and removing, implicit
//! pods), `overlay` (a root filesystem of an image's layers: the caller
//! gives the layer directories, the sandbox knows nothing of images),
//! `cgroups` (the pod's nodes, the devices leaf of a confined container),
//! [`isolation`] (a container's capabilities, seccomp program, device rules
//! and volumes, decided before the fork: docker's defaults and opt-outs),
//! `watch` (inotify), `spawn` (the only unsafe code: it applies them). Containers depend on pods, logs on containers, teardown on
//! both; never the reverse.
//!
//! ```no_run
//! use sandbox::{ContainerOptions, Host, PodOptions, Sandbox};
//! let sandbox = Sandbox::open_with("/run/stasis".as_ref(), Host::detect()?)?;
//! let pod = sandbox.create_pod(PodOptions { name: Some("web".into()), ..Default::default() })?;
//! let c = sandbox.create_container(ContainerOptions {
//!     pod: Some(pod.name.clone()),
//!     command: vec!["sleep".into(), "1000".into()],
//!     ..Default::default()
//! })?;
//! # Ok::<(), sandbox::Error>(())
//! ```
//!
//! Creating pods and starting members switches the calling thread's PID
//! namespace for children around a fork, and the monitor must be a process
//! of its own: call these from a single-threaded process (the CLI), or a
//! dedicated thread. It does not do networking beyond loopback, image
//! storage (see the `images` crate), or user namespaces, and it does not run a daemon: every call works on the
//! store and the kernel directly.

#![deny(unsafe_code)]

mod again;
pub mod attach;
pub mod audit;
mod cgroups;
pub mod checkpoint;
mod container;
// bpf(2) for the cgroup2 device program.
#[allow(unsafe_code)]
pub mod devices;
mod error;
mod exec;
#[cfg(test)]
mod fake;
pub mod health;
mod host;
mod id;
pub mod isolation;
pub mod journal;
pub mod limits;
pub mod logs;
mod monitor;
pub mod ns;
mod overlay;
mod pod;
mod process;
pub mod restart;
#[allow(unsafe_code)]
mod spawn;
pub mod stats;
pub mod store;
mod teardown;
pub mod time;
mod watch;

use std::path::{Path, PathBuf};

pub use cgroups::PodCgroups;
pub use checkpoint::{Checkpoint, CheckpointInfo, CheckpointOptions, Restore, RestoreSource};
pub use container::{
    exit_code, ContainerOptions, ContainerRecord, ContainerStatus, ExitRecord, StdioMode, User,
};
pub use error::{Error, Kind, Result};
pub use freezer;
pub use health::{HealthConfig, HealthLog, HealthState, HealthStatus, Probe};
pub use host::{DeviceControl, Host};
pub use id::{validate_name, Id};
pub use isolation::{Isolation, Mount, Seccomp};
pub use journal::{Event, EventType, Journal};
pub use limits::{Controllers, Limits};
pub use overlay::ImageRoot;
pub use pod::{PodOptions, PodRecord, PodStatus};
pub use process::{Process, ProcessRef};
pub use restart::RestartPolicy;
pub use spawn::leave_real_time;
pub use store::{Store, DEFAULT_ROOT};

/// The pods and containers under one state root.
#[derive(Debug, Clone)]
pub struct Sandbox {
    store: Store,
    host: Host,
    pause_binary: Option<PathBuf>,
    criu_binary: Option<PathBuf>,
}

impl Sandbox {
    /// Opens the store at `root` on the real host (`/proc`, and the cgroup
    /// hierarchies it shows).
    pub fn open(root: &Path) -> Result<Self> {
        Self::open_with(root, Host::detect()?)
    }

    /// Opens the store at `root` with the given host paths.
    pub fn open_with(root: &Path, host: Host) -> Result<Self> {
        Ok(Sandbox {
            store: Store::open(root)?,
            host,
            pause_binary: None,
            criu_binary: None,
        })
    }

    /// Uses this `stasis-pause` binary instead of looking for one.
    pub fn with_pause_binary(mut self, path: PathBuf) -> Self {
        self.pause_binary = Some(path);
        self
    }

    /// Uses this CRIU binary instead of looking for `criu` (a path that
    /// does not exist makes checkpoint and restore refuse).
    pub fn with_criu(mut self, path: PathBuf) -> Self {
        self.criu_binary = Some(path);
        self
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The cgroup hierarchies in use.
    pub fn hierarchies(&self) -> &freezer::Hierarchies {
        &self.host.hierarchies
    }

    /// The host paths in use.
    pub fn host(&self) -> &Host {
        &self.host
    }

    /// The pause binary: the one given, else [`find_pause_binary`].
    pub(crate) fn pause_binary(&self) -> Result<PathBuf> {
        match &self.pause_binary {
            Some(p) => Ok(p.clone()),
            None => find_pause_binary(),
        }
    }
}

/// `stasis-pause` next to the running executable, else on `PATH`.
pub fn find_pause_binary() -> Result<PathBuf> {
    let beside = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(|d| d.join("stasis-pause")));
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join("stasis-pause"));
    beside
        .into_iter()
        .chain(on_path)
        .find(|p| p.is_file())
        .ok_or(Error::NoPauseBinary)
}

/// Seconds since the epoch.
pub(crate) fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
