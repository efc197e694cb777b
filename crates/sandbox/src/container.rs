//! Containers: a process started in its pod's namespaces and its own cgroup
//! leaf, optionally in its own root filesystem, watched by a monitor. The
//! records, their status, and the verbs on one running container (start,
//! pause, unpause, kill, stop, wait). Containers depend on pods, never the
//! reverse.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use freezer::Freezer;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Kind, Result};
use crate::health::{HealthConfig, HealthState};
use crate::id::{validate_name, Id};
use crate::isolation::Isolation;
use crate::limits::Limits;
use crate::monitor::Ready;
use crate::overlay::ImageRoot;
use crate::pod::{PodOptions, PodRecord, PodStatus};
use crate::process::ProcessRef;
use crate::restart::RestartPolicy;
use crate::watch::Watch;
use crate::{now, Sandbox};

/// A container's record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerRecord {
    pub id: Id,
    pub name: String,
    pub pod: Id,
    /// Creation time, seconds since the epoch.
    pub created: u64,
    /// The same in nanoseconds, to order containers made within a second
    /// (`ps -l`); 0 in records from before it was kept.
    #[serde(default)]
    pub created_ns: u64,
    pub command: Vec<String>,
    #[serde(default)]
    pub env: Vec<String>,
    #[serde(default)]
    pub workdir: Option<PathBuf>,
    #[serde(default)]
    pub rootfs: Option<PathBuf>,
    /// The image its root filesystem (an overlay at `rootfs`) is made of.
    #[serde(default)]
    pub image: Option<ImageRoot>,
    /// Who its process runs as; root when `None`.
    #[serde(default)]
    pub user: Option<User>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// The container's main process, once started.
    #[serde(default)]
    pub process: Option<ProcessRef>,
    /// Its monitor.
    #[serde(default)]
    pub monitor: Option<ProcessRef>,
    #[serde(default)]
    pub started: Option<u64>,
    #[serde(default)]
    pub exit: Option<ExitRecord>,
    /// Removed (with its implicit pod) once it exits: `run -d --rm`.
    #[serde(default)]
    pub auto_remove: bool,
    /// Its health check (`run --health-cmd`).
    #[serde(default)]
    pub healthcheck: Option<HealthConfig>,
    /// Its health, while it has a check and has been started.
    #[serde(default)]
    pub health: Option<HealthState>,
    /// Its resource limits, set on its cgroup leaf.
    #[serde(default)]
    pub limits: Limits,
    /// When its monitor starts the command again.
    #[serde(default)]
    pub restart: RestartPolicy,
    /// How many times it did.
    #[serde(default)]
    pub restart_count: u32,
    /// Between an exit and the restart its policy wants (the back-off).
    #[serde(default)]
    pub restarting: bool,
    /// `stop`, `kill` or `rm` ended its restart policy (docker's
    /// `HasBeenManuallyStopped`).
    #[serde(default)]
    pub stopped: bool,
    /// How it is confined (capabilities, seccomp, devices, volumes).
    #[serde(default)]
    pub isolation: Isolation,
    /// Its stdin kept open (`-i`) and a pseudo-terminal (`-t`).
    #[serde(default)]
    pub stdio: StdioMode,
    /// Its latest checkpoint (see `checkpoint`).
    #[serde(default)]
    pub checkpoint: Option<crate::checkpoint::CheckpointInfo>,
    /// A checkpoint that ends it is under way: its monitor records the
    /// exit as the checkpoint's, and its restart policy does not apply.
    #[serde(default)]
    pub checkpointing: bool,
}

/// docker's `OpenStdin` and `Tty`: what a container's standard streams are.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StdioMode {
    /// Its stdin is a pipe from the monitor, fed by whoever attaches
    /// (otherwise `/dev/null`).
    pub open_stdin: bool,
    /// Its stdin, stdout and stderr are a pseudo-terminal the monitor
    /// holds the master of (its controlling terminal), and its log has
    /// one stream.
    pub tty: bool,
    /// docker's `StdinOnce`: the end of an attached client's stdin closes
    /// the container's. The API's attach honours it; the CLI's `run -i` and
    /// `attach` close it at the end of their stdin either way (`run -i`
    /// records it set, as docker does for an attached `run -i`).
    #[serde(default)]
    pub stdin_once: bool,
}

/// A numeric user and group (no supplementary groups), as the process
/// sees them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub uid: u32,
    pub gid: u32,
}

/// How a container ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExitRecord {
    /// The exit status; 128 + N for death by signal N (as docker reports).
    pub code: i32,
    /// When, seconds since the epoch.
    pub finished: u64,
    /// Why it never ran, if it did not.
    #[serde(default)]
    pub error: Option<String>,
    /// The kernel's OOM killer ended a process of it (its memory limit, or
    /// its pod's, was reached).
    #[serde(default)]
    pub oom_killed: bool,
    /// A checkpoint ended it (CRIU killed it once its images were written).
    #[serde(default)]
    pub checkpointed: bool,
}

/// What a container is doing, read from its process and the kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase", tag = "status", content = "exit_code")]
pub enum ContainerStatus {
    Created,
    Running,
    Paused,
    /// Ended with this code, and its restart policy starts it again after
    /// the back-off.
    Restarting(i32),
    /// Ended; `None` if its monitor died before it could record how.
    Exited(Option<i32>),
}

impl ContainerStatus {
    /// Running or paused: its process exists.
    pub fn is_running(self) -> bool {
        matches!(self, ContainerStatus::Running | ContainerStatus::Paused)
    }

    /// The word `ps` filters on.
    pub fn word(self) -> &'static str {
        match self {
            ContainerStatus::Created => "created",
            ContainerStatus::Running => "running",
            ContainerStatus::Paused => "paused",
            ContainerStatus::Restarting(_) => "restarting",
            ContainerStatus::Exited(_) => "exited",
        }
    }
}

impl std::fmt::Display for ContainerStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ContainerStatus::Exited(Some(code)) => write!(f, "exited ({code})"),
            ContainerStatus::Exited(None) => f.write_str("exited (unknown)"),
            other => f.write_str(other.word()),
        }
    }
}

/// How to make a container.
#[derive(Debug, Clone, Default)]
pub struct ContainerOptions {
    pub name: Option<String>,
    /// A pod, or a container whose pod to join; `None` makes a pod for it.
    pub pod: Option<String>,
    pub labels: BTreeMap<String, String>,
    /// `KEY=VALUE` pairs.
    pub env: Vec<String>,
    pub workdir: Option<PathBuf>,
    pub rootfs: Option<PathBuf>,
    /// A root filesystem of an image's layers (an overlay with an upper
    /// directory of the container's own) instead of `rootfs`.
    pub image: Option<ImageRoot>,
    /// Who its process (and each exec) runs as: root when `None`.
    pub user: Option<User>,
    pub command: Vec<String>,
    /// Remove the container (and its implicit pod) once it exits, from its
    /// monitor (`run -d --rm`; an attached `run --rm` removes it itself).
    pub auto_remove: bool,
    /// A health check its monitor runs (`--health-cmd`).
    pub healthcheck: Option<HealthConfig>,
    /// Resource limits of its cgroup leaf.
    pub limits: Limits,
    /// When its monitor starts it again.
    pub restart: RestartPolicy,
    /// How it is confined; the default is docker's default.
    pub isolation: Isolation,
    /// The hostname of the pod made for it (a member of a given pod has
    /// that pod's: it shares its UTS namespace).
    pub hostname: Option<String>,
    /// docker's `--init`: `stasis-pause` as PID 1 of the container's PID
    /// namespace, reaping what the command orphans (the pod made for it
    /// shares `pid`; a given pod must share it already).
    pub init: bool,
    /// `-i` and `-t`.
    pub stdio: StdioMode,
}

/// What a container's process and record say of it, before the freezer is
/// asked.
enum Liveness {
    /// Its process runs: running or paused, as the kernel says.
    Alive,
    /// Anything else, or running with its exit on the way.
    Known(ContainerStatus),
}

impl Sandbox {
    /// Records a container and its cgroup leaf (and its own pod, without
    /// `--pod`); [`Sandbox::start_container`] starts it.
    pub fn create_container(&self, opts: ContainerOptions) -> Result<ContainerRecord> {
        let id = Id::generate()?;
        let name = opts.name.unwrap_or_else(|| id.short().to_owned());
        validate_name(&name)?;
        if opts.command.is_empty() || opts.command[0].is_empty() {
            return Err(Error::InvalidArgument {
                what: "command",
                value: String::new(),
                reason: "give the command after --",
            });
        }
        for kv in &opts.env {
            match kv.split_once('=') {
                Some((k, _)) if !k.is_empty() && !k.contains('\0') => {}
                _ => {
                    return Err(Error::InvalidArgument {
                        what: "environment variable",
                        value: kv.clone(),
                        reason: "use KEY=VALUE",
                    })
                }
            }
        }
        if let Some(w) = &opts.workdir {
            if !w.is_absolute() {
                return Err(Error::InvalidArgument {
                    what: "working directory",
                    value: w.display().to_string(),
                    reason: "it must be absolute",
                });
            }
        }
        if opts.auto_remove && !opts.restart.is_none() {
            return Err(Error::InvalidArgument {
                what: "restart policy",
                value: opts.restart.name().to_owned(),
                reason: "conflicting options: --restart and --rm",
            });
        }
        opts.limits.validate(crate::limits::cpus_online())?;
        if let Some(image) = &opts.image {
            if opts.rootfs.is_some() {
                return Err(Error::InvalidArgument {
                    what: "root filesystem",
                    value: image.name.clone(),
                    reason: "give a root filesystem directory or an image, not both",
                });
            }
            image.validate()?;
        }
        opts.isolation
            .validate(opts.rootfs.is_some() || opts.image.is_some())?;
        let device_rules = opts.isolation.device_rules()?;
        if device_rules.is_some() && self.host.devices == crate::host::DeviceControl::None {
            return Err(Error::NoDevicesController);
        }
        let rootfs = match &opts.rootfs {
            Some(r) => {
                let canon = std::fs::canonicalize(r).map_err(|source| Error::Rootfs {
                    path: r.clone(),
                    source,
                })?;
                if !canon.is_dir() || canon == std::path::Path::new("/") {
                    return Err(Error::InvalidArgument {
                        what: "root filesystem",
                        value: r.display().to_string(),
                        reason: "it must be a directory other than /",
                    });
                }
                Some(canon)
            }
            None => opts
                .image
                .as_ref()
                .map(|_| self.store.dir(Kind::Container, &id).join("rootfs")),
        };
        // The name must be free before anything (a pod) is made for it.
        if let Some(owner) = self.store.name_owner(Kind::Container, &name) {
            return Err(Error::NameInUse {
                kind: Kind::Container,
                name,
                id: owner.short().to_owned(),
            });
        }
        let pod = match &opts.pod {
            Some(_) if opts.hostname.is_some() => {
                return Err(Error::InvalidArgument {
                    what: "hostname",
                    value: opts.hostname.clone().unwrap_or_default(),
                    reason: "a pod's members share its hostname: set it when the pod is created",
                })
            }
            Some(q) => {
                let pod = self.find_pod_or_containers_pod(q)?;
                match self.pod_status(&pod) {
                    PodStatus::Running => {}
                    // A process moved into a frozen cgroup freezes before it
                    // can exec, and its monitor (and `run`) would wait for it.
                    PodStatus::Paused => return Err(Error::paused(Kind::Pod, &pod.name)),
                    _ => return Err(Error::not_running(Kind::Pod, &pod.name)),
                }
                if opts.init && !pod.share.contains(&crate::ns::Namespace::Pid) {
                    return Err(Error::InvalidArgument {
                        what: "--init",
                        value: pod.name.clone(),
                        reason: "a member's PID namespace is its pod's: create the pod with --share net,ipc,uts,pid",
                    });
                }
                pod
            }
            None => {
                let pod_name = if self.store.name_owner(Kind::Pod, &name).is_some() {
                    None
                } else {
                    Some(name.clone())
                };
                let share = if opts.init {
                    let mut share = crate::ns::DEFAULT_SHARE.to_vec();
                    share.push(crate::ns::Namespace::Pid);
                    share
                } else {
                    Vec::new()
                };
                self.create_pod(PodOptions {
                    name: pod_name,
                    share,
                    hostname: opts.hostname.clone(),
                    implicit: true,
                    ..PodOptions::default()
                })?
            }
        };
        let record = ContainerRecord {
            id: id.clone(),
            name,
            pod: pod.id.clone(),
            created: now(),
            created_ns: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)),
            command: opts.command,
            env: opts.env,
            workdir: opts.workdir,
            rootfs,
            image: opts.image,
            user: opts.user,
            labels: opts.labels,
            process: None,
            monitor: None,
            started: None,
            exit: None,
            auto_remove: opts.auto_remove,
            healthcheck: opts.healthcheck,
            health: None,
            limits: opts.limits,
            restart: opts.restart,
            restart_count: 0,
            restarting: false,
            stopped: false,
            isolation: opts.isolation,
            stdio: opts.stdio,
            checkpoint: None,
            checkpointing: false,
        };
        let created = (|| {
            let _lock = self.store.lock()?;
            self.store.claim_name(Kind::Container, &record.name, &id)?;
            let dir = self.store.create_dir(Kind::Container, &id)?;
            if let Some(image) = &record.image {
                crate::overlay::mount(&dir, image)?;
                crate::overlay::write_etc(&dir, &pod.hostname)?;
                if let Some(w) = &record.workdir {
                    crate::overlay::make_dir(&dir, w)?;
                }
            }
            self.store.write(Kind::Container, &id, &record)?;
            let cgroups = self.pod_cgroups(&pod)?;
            cgroups.create(&[id.as_str()])?;
            if let Some(rules) = &device_rules {
                cgroups.confine_devices(id.as_str(), rules)?;
            }
            cgroups.set_limits(Some(id.as_str()), &record.limits)
        })();
        if let Err(e) = created {
            if pod.implicit && opts.pod.is_none() {
                let _ = self.remove_pod_as(&pod, true, false);
            }
            // Never remove a directory with the overlay still on it.
            if crate::overlay::unmount(&self.store.dir(Kind::Container, &id)).is_ok() {
                let _ = self.store.remove(Kind::Container, &id, &record.name);
            }
            return Err(e);
        }
        self.container_event(&record, "create", &[]);
        Ok(record)
    }

    /// Starts a created container through its monitor: `monitor` is the
    /// command that runs [`Sandbox::run_monitor`] for it (the `stasis`
    /// binary in its internal mode). Returns once the process runs.
    pub fn start_container(
        &self,
        container: &ContainerRecord,
        mut monitor: Command,
    ) -> Result<ContainerRecord> {
        let mut child = monitor
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|source| Error::SpawnMonitor {
                container: container.name.clone(),
                source,
            })?;
        let mut answer = String::new();
        if let Some(mut out) = child.stdout.take() {
            // The monitor closes it once the container runs or failed to.
            let _ = out.read_to_string(&mut answer);
        }
        let ready = Ready::parse(&answer);
        let record = match self.container(&container.id) {
            Ok(r) => r,
            // `run -d --rm` of a command that ended at once: its monitor
            // has recorded the exit and removed the container already.
            Err(e)
                if e.is_not_found()
                    && container.auto_remove
                    && matches!(ready, Some(Ready::Started { .. })) =>
            {
                return Ok(container.clone())
            }
            Err(e) => return Err(e),
        };
        match ready {
            Some(Ready::Failed { code, message }) => Err(Error::StartFailed {
                container: container.name.clone(),
                code,
                message,
            }),
            Some(Ready::Started { .. }) if record.process.is_some() => Ok(record),
            _ => Err(Error::MonitorVanished {
                container: container.name.clone(),
                status: format!("{:?}", child.try_wait()),
            }),
        }
    }

    /// Every container.
    pub fn containers(&self) -> Result<Vec<ContainerRecord>> {
        self.store.all(Kind::Container)
    }

    /// The containers of a pod.
    pub fn members(&self, pod: &PodRecord) -> Result<Vec<ContainerRecord>> {
        Ok(self
            .containers()?
            .into_iter()
            .filter(|c| c.pod == pod.id)
            .collect())
    }

    /// The container a name, ID or unique prefix names.
    pub fn find_container(&self, query: &str) -> Result<ContainerRecord> {
        self.store
            .lookup(Kind::Container, query)
            .map(|(_, record)| record)
    }

    /// A container by ID, read afresh.
    pub fn container(&self, id: &Id) -> Result<ContainerRecord> {
        self.store
            .read(Kind::Container, id)?
            .ok_or_else(|| Error::NotFound {
                kind: Kind::Container,
                name: id.short().to_owned(),
            })
    }

    fn find_pod_or_containers_pod(&self, query: &str) -> Result<PodRecord> {
        match self.find_pod(query) {
            Ok(p) => Ok(p),
            Err(e) if e.is_not_found() => match self.find_container(query) {
                Ok(c) => self.pod(&c.pod),
                Err(ce) if ce.is_not_found() => Err(e),
                Err(ce) => Err(ce),
            },
            Err(e) => Err(e),
        }
    }

    /// The container's status, from its process, its record and the kernel
    /// (frozen in any hierarchy is paused).
    pub fn container_status(&self, c: &ContainerRecord) -> ContainerStatus {
        match self.liveness(c) {
            Liveness::Alive => {
                match crate::cgroups::PodCgroups::of(&self.host.hierarchies, &c.pod) {
                    Ok(cg) if cg.is_frozen(Some(c.id.as_str())) => ContainerStatus::Paused,
                    _ => ContainerStatus::Running,
                }
            }
            Liveness::Known(status) => status,
        }
    }

    /// The container's status as far as its process and record tell it,
    /// without the kernel's freeze state: pause and unpause ask the freezer
    /// that, once, as part of their work.
    fn liveness(&self, c: &ContainerRecord) -> Liveness {
        if let Some(exit) = &c.exit {
            // A monitor that died in its back-off restarts nothing.
            if c.restarting && c.monitor.is_some_and(|m| m.is_alive(&self.host.proc)) {
                return Liveness::Known(ContainerStatus::Restarting(exit.code));
            }
            return Liveness::Known(ContainerStatus::Exited(Some(exit.code)));
        }
        match &c.process {
            None => Liveness::Known(ContainerStatus::Created),
            Some(p) if p.is_alive(&self.host.proc) => Liveness::Alive,
            // The monitor records the exit right after the process ends:
            // until it has, a live monitor means the exit is on its way, and
            // the container is still running, as docker reports it until
            // its exit is processed.
            Some(_) => match self.container(&c.id) {
                Ok(fresh) if fresh.exit.is_some() => self.liveness(&fresh),
                Ok(fresh) if fresh.monitor.is_some_and(|m| m.is_alive(&self.host.proc)) => {
                    Liveness::Known(ContainerStatus::Running)
                }
                _ => Liveness::Known(ContainerStatus::Exited(None)),
            },
        }
    }

    /// The name of a container's pod, for messages.
    fn pod_name(&self, c: &ContainerRecord) -> String {
        self.pod(&c.pod)
            .map(|p| p.name)
            .unwrap_or_else(|_| c.pod.short().to_owned())
    }

    /// The container's leaf in the hierarchy stasis freezes by default, and
    /// in every other one it has.
    pub(crate) fn leaf_placement(&self, c: &ContainerRecord) -> Result<freezer::Placement> {
        let cg = crate::cgroups::PodCgroups::of(&self.host.hierarchies, &c.pod)?
            .freezer_cgroup(Some(c.id.as_str()))?;
        Ok(self.host.hierarchies.place_cgroup(cg)?)
    }

    /// Freezes the container's leaf.
    pub fn pause_container(&self, c: &ContainerRecord, timeout: Duration) -> Result<()> {
        match self.liveness(c) {
            // Already frozen, in either hierarchy: the freezer says so.
            Liveness::Alive | Liveness::Known(ContainerStatus::Running) => {}
            Liveness::Known(_) => return Err(Error::not_running(Kind::Container, &c.name)),
        }
        let placement = self.leaf_placement(c)?;
        Freezer::new()
            .timeout(timeout)
            .pause(&self.host.hierarchies, &placement)
            .map_err(|e| Error::from_freezer(e, Kind::Container, &c.name))?;
        self.container_event(c, "pause", &[]);
        Ok(())
    }

    /// Thaws the container's leaf in whichever hierarchy holds it frozen; a
    /// container held by its paused pod says so.
    pub fn unpause_container(&self, c: &ContainerRecord, timeout: Duration) -> Result<()> {
        match self.liveness(c) {
            // Not frozen at all, or only by its pod: the freezer says so.
            Liveness::Alive => {}
            // Its process is gone, its exit not recorded yet: nothing of it
            // is frozen (as `container_status` reports it).
            Liveness::Known(ContainerStatus::Running) => {
                return Err(Error::not_paused(Kind::Container, &c.name))
            }
            Liveness::Known(_) => return Err(Error::not_running(Kind::Container, &c.name)),
        }
        let placement = self.leaf_placement(c)?;
        match Freezer::new().timeout(timeout).unpause(&placement) {
            Ok(_) => {
                self.container_event(c, "unpause", &[]);
                Ok(())
            }
            Err(freezer::Error::PausedByAncestor { .. }) => {
                Err(Error::paused_by_pod(&c.name, &self.pod_name(c)))
            }
            Err(e) => Err(Error::from_freezer(e, Kind::Container, &c.name)),
        }
    }

    /// Thaws a container paused by itself, in every hierarchy; one held by
    /// its paused pod is refused (thawing it would thaw its siblings).
    fn thaw_own_freeze(&self, c: &ContainerRecord) -> Result<()> {
        if self.container_status(c) != ContainerStatus::Paused {
            return Ok(());
        }
        let cgroups = crate::cgroups::PodCgroups::of(&self.host.hierarchies, &c.pod)?;
        if cgroups.is_frozen(None) {
            return Err(Error::paused_by_pod(&c.name, &self.pod_name(c)));
        }
        cgroups.thaw_frozen(Some(c.id.as_str()))?;
        Ok(())
    }

    /// Stops a container: SIGTERM, then SIGKILL after `grace`. A container
    /// paused by itself is thawed first; one held by its paused pod is not
    /// stopped (that would mean thawing its siblings).
    pub fn stop_container(&self, c: &ContainerRecord, grace: Duration) -> Result<()> {
        self.thaw_own_freeze(c)?;
        self.stop_processes(std::slice::from_ref(c), grace)
    }

    /// Ends a container's restart policy (docker's "manually stopped"):
    /// its monitor restarts it no more, and one in its back-off ends it.
    /// Returns the record once no restart is under way (bounded).
    pub(crate) fn end_restart_policy(&self, c: &ContainerRecord) -> Result<ContainerRecord> {
        if c.restart.is_none() {
            return Ok(c.clone());
        }
        self.record(&c.id, |r| r.stopped = true)?;
        let mut watch = Watch::new(&self.store.dir(Kind::Container, &c.id))?;
        let end = Instant::now() + Duration::from_secs(10);
        loop {
            let fresh = self.container(&c.id)?;
            let monitor_alive = fresh.monitor.is_some_and(|m| m.is_alive(&self.host.proc));
            if !fresh.restarting || !monitor_alive || Instant::now() > end {
                return Ok(fresh);
            }
            watch.wait(Duration::from_millis(100))?;
        }
    }

    /// SIGTERM to each running container, SIGKILL to those left after
    /// `grace`, then a bounded wait for each exit to be recorded. Signals and
    /// waits go through pidfds.
    pub(crate) fn stop_processes(&self, cs: &[ContainerRecord], grace: Duration) -> Result<()> {
        let cs = cs
            .iter()
            .map(|c| self.end_restart_policy(c))
            .collect::<Result<Vec<_>>>()?;
        let live: Vec<&ContainerRecord> = cs
            .iter()
            .filter(|c| self.container_status(c).is_running())
            .collect();
        let mut running = Vec::new();
        for c in &live {
            if let Some(p) = c
                .process
                .as_ref()
                .map(|p| p.open(&self.host.proc))
                .transpose()?
            {
                running.extend(p.map(|p| (*c, p)));
            }
        }
        // docker's events for a stop: kill (15), kill (9) if it had to,
        // die (from the monitor), stop. Each kill is recorded before its
        // signal is sent, so that it comes before the die it causes.
        for (c, p) in &running {
            self.container_event(c, "kill", &[("signal", libc::SIGTERM.to_string())]);
            p.signal(rustix::process::Signal::TERM)?;
        }
        let end = Instant::now() + grace;
        let mut ended = Vec::new();
        for (_, p) in &running {
            ended.push(p.wait(end.saturating_duration_since(Instant::now()))?);
        }
        for ((c, p), ended) in running.iter().zip(ended) {
            if !ended {
                self.container_event(c, "kill", &[("signal", libc::SIGKILL.to_string())]);
            }
            p.signal(rustix::process::Signal::KILL)?;
        }
        for c in live {
            self.wait_exit(c, Some(Duration::from_secs(10)))?;
            self.container_event(c, "stop", &[]);
        }
        Ok(())
    }

    /// Sends a signal to a running container's main process. A container
    /// paused by itself is then resumed, as docker does (moby's
    /// `killWithSignal` without a configured stop signal): a fatal signal
    /// ends it at once, another one is handled. One held by its paused pod
    /// is refused, as `stop` is.
    pub fn kill_container(
        &self,
        c: &ContainerRecord,
        signal: rustix::process::Signal,
    ) -> Result<()> {
        let status = self.container_status(c);
        if let ContainerStatus::Restarting(_) = status {
            // Between two runs: ending the policy is all a kill has to do.
            self.end_restart_policy(c)?;
            return Ok(());
        }
        if !status.is_running() {
            return Err(Error::not_running(Kind::Container, &c.name));
        }
        let cgroups = crate::cgroups::PodCgroups::of(&self.host.hierarchies, &c.pod)?;
        if status == ContainerStatus::Paused && cgroups.is_frozen(None) {
            return Err(Error::paused_by_pod(&c.name, &self.pod_name(c)));
        }
        // As docker: a killed container is not restarted, whatever the
        // signal.
        let c = &self.end_restart_policy(c)?;
        let process = c
            .process
            .ok_or_else(|| Error::not_running(Kind::Container, &c.name))?;
        match process.open(&self.host.proc)? {
            Some(p) => {
                // Recorded first: a process that dies of the signal has its
                // monitor record `die` at once, and `kill` must come before.
                self.container_event(c, "kill", &[("signal", signal.as_raw().to_string())]);
                p.signal(signal)?
            }
            None => return Err(Error::not_running(Kind::Container, &c.name)),
        }
        if status == ContainerStatus::Paused {
            // The signal is pending; it takes effect once the leaf thaws.
            cgroups.thaw_frozen(Some(c.id.as_str()))?;
        }
        Ok(())
    }

    /// The environment every member starts with, then the container's own.
    pub(crate) fn base_env(&self, pod: &PodRecord, c: &ContainerRecord) -> Vec<(String, String)> {
        let mut env = vec![
            (
                "PATH".to_owned(),
                "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".to_owned(),
            ),
            ("HOSTNAME".to_owned(), pod.hostname.clone()),
            ("HOME".to_owned(), "/root".to_owned()),
        ];
        env.extend(parse_env(&c.env).unwrap_or_default());
        env
    }

    /// Waits for a container's exit to be recorded; its code, or `None` on
    /// timeout or if its monitor died first.
    pub fn wait_exit(&self, c: &ContainerRecord, limit: Option<Duration>) -> Result<Option<i32>> {
        let end = limit.map(|l| Instant::now() + l);
        let mut watch = Watch::new(&self.store.dir(Kind::Container, &c.id))?;
        let proc = &self.host.proc;
        loop {
            let fresh = match self.container(&c.id) {
                Ok(f) => f,
                // Removed meanwhile (`--rm`): it has exited.
                Err(e) if e.is_not_found() => return Ok(None),
                Err(e) => return Err(e),
            };
            if let Some(exit) = &fresh.exit {
                return Ok(Some(exit.code));
            }
            let monitor_gone = fresh.monitor.as_ref().is_some_and(|m| !m.is_alive(proc));
            let process_gone = fresh.process.as_ref().is_some_and(|p| !p.is_alive(proc));
            if monitor_gone && (process_gone || fresh.process.is_none()) {
                // It may have recorded the exit between the read above and
                // its end: read once more before calling it lost.
                return Ok(self
                    .container(&c.id)
                    .ok()
                    .and_then(|again| again.exit)
                    .map(|exit| exit.code));
            }
            if end.is_some_and(|e| Instant::now() > e) {
                return Ok(None);
            }
            watch.wait(Duration::from_millis(100))?;
        }
    }
}

pub(crate) fn parse_env(env: &[String]) -> Result<Vec<(String, String)>> {
    env.iter()
        .map(|kv| {
            kv.split_once('=')
                .filter(|(k, _)| !k.is_empty())
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .ok_or_else(|| Error::InvalidArgument {
                    what: "environment variable",
                    value: kv.clone(),
                    reason: "use KEY=VALUE",
                })
        })
        .collect()
}

/// An exit status as docker reports it: the code, or 128 + the signal.
pub fn exit_code(status: std::process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use freezer::Version;

    use super::*;
    use crate::fake::{FakeHost, FIRST_PID};

    #[test]
    fn a_containers_status_comes_from_its_record_process_and_leaf() {
        let host = FakeHost::new("container-status");
        let sb = &host.sandbox;
        let pause = host.process(FIRST_PID, 'S', 1);
        let pod = host.pod("p", false, Some(pause));
        let created = host.container("created", &pod, None, None);
        assert_eq!(sb.container_status(&created), ContainerStatus::Created);
        let done = host.container(
            "done",
            &pod,
            Some(ProcessRef {
                pid: 1,
                start_time: 0,
            }),
            Some(3),
        );
        assert_eq!(sb.container_status(&done), ContainerStatus::Exited(Some(3)));
        // Its process is gone and no exit was recorded: its monitor died.
        let lost = host.container(
            "lost",
            &pod,
            Some(ProcessRef {
                pid: FIRST_PID + 9,
                start_time: 1,
            }),
            None,
        );
        assert_eq!(sb.container_status(&lost), ContainerStatus::Exited(None));
        // Its process has ended (a zombie) and its live monitor has not yet
        // recorded how: still running, until the exit is recorded.
        let ending = host.process(FIRST_PID + 2, 'Z', 5);
        let mut exiting = host.container("exiting", &pod, Some(ending), None);
        exiting.monitor = Some(host.process(FIRST_PID + 3, 'S', 6));
        sb.store()
            .write(Kind::Container, &exiting.id, &exiting)
            .expect("write");
        assert_eq!(sb.container_status(&exiting), ContainerStatus::Running);
        exiting.monitor = Some(ProcessRef {
            pid: FIRST_PID + 10,
            start_time: 1,
        });
        sb.store()
            .write(Kind::Container, &exiting.id, &exiting)
            .expect("write");
        assert_eq!(sb.container_status(&exiting), ContainerStatus::Exited(None));

        let proc = host.process(FIRST_PID + 1, 'S', 7);
        let c = host.container("c", &pod, Some(proc), None);
        assert_eq!(sb.container_status(&c), ContainerStatus::Running);
        host.freeze(
            Version::V1,
            &host.cgroup(Version::V1, &pod, Some(c.id.as_str())),
        );
        assert_eq!(sb.container_status(&c), ContainerStatus::Paused);
        let err = sb
            .exec(&c, vec!["true".into()], vec![], None)
            .expect_err("paused");
        assert!(err.to_string().contains("container c is paused"), "{err}");
        let err = sb
            .pause_container(&c, Duration::from_secs(1))
            .expect_err("already");
        assert!(err.is_conflict(), "{err}");
    }

    #[test]
    fn a_member_of_a_paused_pod_is_not_thawed_behind_its_pods_back() {
        let host = FakeHost::new("container-pod-paused");
        let sb = &host.sandbox;
        let pause = host.process(FIRST_PID, 'S', 1);
        let pod = host.pod("pp", false, Some(pause));
        let proc = host.process(FIRST_PID + 1, 'S', 7);
        let c = host.container("m", &pod, Some(proc), None);
        host.freeze(Version::V1, &host.cgroup(Version::V1, &pod, None));
        host.frozen_by_parent_v1(&host.cgroup(Version::V1, &pod, Some(c.id.as_str())));
        assert_eq!(sb.container_status(&c), ContainerStatus::Paused);
        for err in [
            sb.kill_container(&c, rustix::process::Signal::KILL)
                .expect_err("kill"),
            sb.stop_container(&c, Duration::ZERO).expect_err("stop"),
            sb.remove_container(&c, false).expect_err("rm"),
        ] {
            assert!(matches!(err, Error::PausedByPod { .. }), "{err}");
            assert!(err.to_string().contains("its pod pp is paused"), "{err}");
        }
        let leaf = host.cgroup(Version::V1, &pod, Some(c.id.as_str()));
        assert_eq!(
            std::fs::read_to_string(leaf.join("freezer.state")).expect("state"),
            "FROZEN\n",
            "nothing was thawed"
        );
    }

    #[test]
    fn without_a_devices_controller_only_a_privileged_container_is_made() {
        let host = FakeHost::new("container-no-devices");
        let sb = &host.sandbox;
        let opts = ContainerOptions {
            command: vec!["true".into()],
            ..ContainerOptions::default()
        };
        let err = sb.create_container(opts.clone()).expect_err("refused");
        assert!(matches!(err, Error::NoDevicesController), "{err}");
        assert!(err.to_string().contains("--privileged"), "{err}");
        let privileged = ContainerOptions {
            isolation: Isolation {
                privileged: true,
                ..Isolation::default()
            },
            ..opts
        };
        // Past the devices check: it fails later, making its pod (the fake
        // host has no pause binary).
        let err = sb
            .create_container(privileged)
            .expect_err("no pause binary");
        assert!(!matches!(err, Error::NoDevicesController), "{err}");
    }

    #[test]
    fn a_container_is_found_by_name_id_and_unique_prefix_and_an_ambiguous_one_is_refused() {
        let host = FakeHost::new("container-find");
        let sb = &host.sandbox;
        let pod = host.pod("p", false, None);
        let id = |tail: &str| Id::try_from(format!("abc{}", tail.repeat(61))).expect("id");
        let one = host.container_with_id(id("1"), "one", &pod, None, None);
        let two = host.container_with_id(id("2"), "two", &pod, None, None);
        assert_eq!(sb.find_container("one").expect("name").id, one.id);
        assert_eq!(sb.find_container(two.id.as_str()).expect("id").id, two.id);
        assert_eq!(sb.find_container("abc2").expect("prefix").id, two.id);
        let err = sb.find_container("abc").expect_err("ambiguous");
        assert!(err.is_invalid(), "{err}");
        assert!(sb.find_container("abd").expect_err("none").is_not_found());
        assert_eq!(sb.members(&pod).expect("members").len(), 2);
    }
}
