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
//! the kernel, never stored.
//!
//! - [`Sandbox`] — the entry point: a state root and the host's cgroup
//!   hierarchies. Pods: [`Sandbox::create_pod`], [`Sandbox::pause_pod`],
//!   [`Sandbox::stop_pod`], [`Sandbox::remove_pod`]. Containers:
//!   [`Sandbox::create_container`], [`Sandbox::start_container`],
//!   [`Sandbox::run_monitor`], [`Sandbox::exec`], [`Sandbox::copy_logs`].
//! - [`store`] — atomic JSON records under per-record locks.
//! - [`ns`] — the namespaces and their pins.
//!
//! ```no_run
//! use sandbox::{ContainerOptions, PodOptions, Sandbox};
//! let sandbox = Sandbox::open("/run/stasis".as_ref())?;
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
//! dedicated thread. It does not do networking beyond loopback, images, or
//! user namespaces.

#![deny(unsafe_code)]

mod cgroups;
mod container;
mod error;
mod id;
mod logs;
mod monitor;
pub mod ns;
mod pod;
mod process;
#[allow(unsafe_code)]
mod spawn;
pub mod store;

use std::path::{Path, PathBuf};

pub use cgroups::PodCgroups;
pub use container::{ContainerOptions, ContainerRecord, ContainerStatus, ExitRecord};
pub use error::{Error, Kind, Result};
pub use freezer;
pub use id::{validate_name, Id};
pub use pod::{PodOptions, PodRecord, PodStatus};
pub use process::ProcessRef;
pub use store::{Store, DEFAULT_ROOT};

/// The pods and containers under one state root.
#[derive(Debug, Clone)]
pub struct Sandbox {
    store: Store,
    hierarchies: freezer::Hierarchies,
    pause_binary: Option<PathBuf>,
}

impl Sandbox {
    /// Opens the store at `root` and detects the host's cgroup hierarchies.
    pub fn open(root: &Path) -> Result<Self> {
        Ok(Sandbox {
            store: Store::open(root)?,
            hierarchies: freezer::Hierarchies::detect(Path::new("/proc"))?,
            pause_binary: None,
        })
    }

    /// Uses this `stasis-pause` binary instead of looking for one.
    pub fn with_pause_binary(mut self, path: PathBuf) -> Self {
        self.pause_binary = Some(path);
        self
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The cgroup hierarchies in use.
    pub fn hierarchies(&self) -> &freezer::Hierarchies {
        &self.hierarchies
    }

    /// The pause binary: the one given, else `stasis-pause` next to the
    /// running executable, else on `PATH`.
    fn pause_binary(&self) -> Result<PathBuf> {
        if let Some(p) = &self.pause_binary {
            return Ok(p.clone());
        }
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
}

/// Seconds since the epoch.
pub(crate) fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
