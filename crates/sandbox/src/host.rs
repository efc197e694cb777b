//! The host's kernel interfaces the sandbox reads: `/proc` and the cgroup
//! hierarchies. They are parameters so that pod and container rules can be
//! tested on a fake tree; [`Host::detect`] gives the real ones.

use std::path::{Path, PathBuf};

use crate::error::Result;
use crate::limits::{Controllers, LazyControllers};

/// Where `/proc` and the cgroup hierarchies are.
#[derive(Debug, Clone)]
pub struct Host {
    /// `/proc` outside tests: `PID/stat`, `PID/ns/*`, `self/mountinfo`.
    pub proc: PathBuf,
    /// The v1 freezer and cgroup2 mounts.
    pub hierarchies: freezer::Hierarchies,
    /// The v1 `devices` hierarchy's mount point (its root cgroup at the
    /// top), where containers' device rules go; `None` on a v2-only host.
    pub devices: Option<PathBuf>,
    /// The resource controllers (memory, cpu, pids, ...), read from
    /// mountinfo when first needed.
    controllers: LazyControllers,
}

impl Host {
    /// The real host: `/proc`, and the hierarchies its mountinfo shows.
    pub fn detect() -> Result<Self> {
        Self::detect_at(Path::new("/proc"))
    }

    /// The hierarchies `<proc>/self/mountinfo` shows.
    pub fn detect_at(proc: &Path) -> Result<Self> {
        Ok(Host {
            devices: devices_mount(proc),
            ..Host::new(proc.to_owned(), freezer::Hierarchies::detect(proc)?)
        })
    }

    /// These paths, without a devices hierarchy; the resource controllers
    /// are detected from `<proc>/self/mountinfo` when first needed.
    pub fn new(proc: PathBuf, hierarchies: freezer::Hierarchies) -> Self {
        Host {
            proc,
            hierarchies,
            devices: None,
            controllers: LazyControllers::default(),
        }
    }

    /// Uses these resource controllers instead of detecting them.
    pub fn with_controllers(mut self, controllers: Controllers) -> Self {
        self.controllers = LazyControllers::given(controllers);
        self
    }

    /// The resource controllers and where they are mounted.
    pub fn controllers(&self) -> &Controllers {
        self.controllers.get(&self.proc)
    }
}

/// The v1 `devices` hierarchy mounted with its root cgroup at the top.
fn devices_mount(proc: &Path) -> Option<PathBuf> {
    let file = std::fs::File::open(proc.join("self/mountinfo")).ok()?;
    let found = |mounts: &[freezer::mountinfo::CgroupMount]| {
        mounts
            .iter()
            .find(|m| !m.unified && m.root == "/" && m.controllers.iter().any(|c| c == "devices"))
            .map(|m| m.mount_point.clone())
    };
    let mounts = freezer::mountinfo::read_until(file, |m| found(m).is_some()).ok()?;
    found(&mounts)
}
