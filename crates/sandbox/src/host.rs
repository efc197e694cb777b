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
    /// Where containers' device rules are enforced.
    pub devices: DeviceControl,
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
        let hierarchies = freezer::Hierarchies::detect(proc)?;
        let cgroup2 = hierarchies.get(freezer::Version::V2).is_some();
        let forced = std::env::var_os(DEVICE_CONTROL_ENV).is_some_and(|v| v == "cgroup2");
        let devices = match devices_mount(proc) {
            Some(mount) if !forced => DeviceControl::V1(mount),
            _ if cgroup2 => DeviceControl::Cgroup2,
            _ => DeviceControl::None,
        };
        Ok(Host {
            devices,
            ..Host::new(proc.to_owned(), hierarchies)
        })
    }

    /// These paths, without a devices hierarchy; the resource controllers
    /// are detected from `<proc>/self/mountinfo` when first needed.
    pub fn new(proc: PathBuf, hierarchies: freezer::Hierarchies) -> Self {
        Host {
            proc,
            hierarchies,
            devices: DeviceControl::None,
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

/// Set to `cgroup2`, containers' device rules go to a cgroup2 device
/// program even where the v1 `devices` hierarchy is mounted (as on hybrid
/// hosts, where both are enforced): how the program is tested there.
pub const DEVICE_CONTROL_ENV: &str = "STASIS_DEVICE_CONTROL";

/// Where a container's device rules are enforced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeviceControl {
    /// In the v1 `devices` hierarchy mounted here (its root cgroup at the
    /// top): `devices.deny` and `devices.allow` of the container's leaf.
    V1(PathBuf),
    /// By a device program on the container's cgroup2 leaf (v2-only hosts).
    Cgroup2,
    /// Nowhere: only privileged containers can be made.
    None,
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
