//! Containers: a process started in its pod's namespaces and its own cgroup
//! leaf, optionally in its own root filesystem, watched by a monitor.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use freezer::Freezer;
use serde::{Deserialize, Serialize};

use crate::cgroups::PodCgroups;
use crate::error::{io_err, Error, Kind, Result};
use crate::id::{validate_name, Id};
use crate::ns::{self, Namespace};
use crate::pod::{already, docker_error, not_running, PodOptions, PodRecord, PodStatus};
use crate::process::ProcessRef;
use crate::spawn::{spawn_member, MemberSpawn};
use crate::{now, Sandbox};

/// A container's record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerRecord {
    pub id: Id,
    pub name: String,
    pub pod: Id,
    /// Creation time, seconds since the epoch.
    pub created: u64,
    pub command: Vec<String>,
    #[serde(default)]
    pub env: Vec<String>,
    #[serde(default)]
    pub workdir: Option<PathBuf>,
    #[serde(default)]
    pub rootfs: Option<PathBuf>,
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
}

/// What a container is doing, read from its process and the kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase", tag = "status", content = "exit_code")]
pub enum ContainerStatus {
    Created,
    Running,
    Paused,
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
    pub command: Vec<String>,
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
        let rootfs = match &opts.rootfs {
            Some(r) => {
                let canon =
                    std::fs::canonicalize(r).map_err(io_err("opening the root filesystem", r))?;
                if !canon.is_dir() || canon == std::path::Path::new("/") {
                    return Err(Error::InvalidArgument {
                        what: "root filesystem",
                        value: r.display().to_string(),
                        reason: "it must be a directory other than /",
                    });
                }
                Some(canon)
            }
            None => None,
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
            Some(q) => {
                let pod = self.find_pod_or_containers_pod(q)?;
                match self.pod_status(&pod) {
                    PodStatus::Running => {}
                    // A process moved into a frozen cgroup freezes before it
                    // can exec, and its monitor (and `run`) would wait for it.
                    PodStatus::Paused => {
                        return Err(Error::Paused {
                            kind: Kind::Pod,
                            name: pod.name,
                        })
                    }
                    _ => return Err(not_running(Kind::Pod, &pod.name)),
                }
                pod
            }
            None => {
                let pod_name = if self.store.name_owner(Kind::Pod, &name).is_some() {
                    None
                } else {
                    Some(name.clone())
                };
                self.create_pod(PodOptions {
                    name: pod_name,
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
            command: opts.command,
            env: opts.env,
            workdir: opts.workdir,
            rootfs,
            labels: opts.labels,
            process: None,
            monitor: None,
            started: None,
            exit: None,
        };
        let created = (|| {
            let _lock = self.store.lock()?;
            self.store.claim_name(Kind::Container, &record.name, &id)?;
            self.store.create_dir(Kind::Container, &id)?;
            self.store.write(Kind::Container, &id, &record)?;
            PodCgroups::of(&self.hierarchies, &pod.id)?.create(&[id.as_str()])
        })();
        if let Err(e) = created {
            if pod.implicit && opts.pod.is_none() {
                let _ = self.remove_pod(&pod, true);
            }
            let _ = self.store.remove(Kind::Container, &id, &record.name);
            return Err(e);
        }
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
            .map_err(|source| Error::Spawn {
                what: "starting the container's monitor".into(),
                source,
            })?;
        let mut answer = String::new();
        if let Some(mut out) = child.stdout.take() {
            // The monitor closes it once the container runs or failed to.
            let _ = out.read_to_string(&mut answer);
        }
        let record = self.container(&container.id)?;
        match answer.trim().strip_prefix("error: ") {
            Some(msg) => Err(Error::Spawn {
                what: format!("starting container {}", container.name),
                source: std::io::Error::other(msg.to_owned()),
            }),
            None if record.process.is_some() => Ok(record),
            None => Err(Error::Spawn {
                what: format!("starting container {}", container.name),
                source: std::io::Error::other(format!(
                    "the monitor ended without starting it ({:?})",
                    child.try_wait()
                )),
            }),
        }
    }

    /// Every container.
    pub fn containers(&self) -> Result<Vec<ContainerRecord>> {
        self.store.all(Kind::Container)
    }

    /// The container a name, ID or unique prefix names.
    pub fn find_container(&self, query: &str) -> Result<ContainerRecord> {
        let id = self.store.find(Kind::Container, query)?;
        self.container(&id)
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

    /// A pod by ID, read afresh.
    pub fn pod(&self, id: &Id) -> Result<PodRecord> {
        self.store
            .read(Kind::Pod, id)?
            .ok_or_else(|| Error::NotFound {
                kind: Kind::Pod,
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

    /// The container's status, from its process, its record and the kernel.
    pub fn container_status(&self, c: &ContainerRecord) -> ContainerStatus {
        if let Some(exit) = &c.exit {
            return ContainerStatus::Exited(Some(exit.code));
        }
        match &c.process {
            None => ContainerStatus::Created,
            Some(p) if p.is_alive() => match PodCgroups::of(&self.hierarchies, &c.pod) {
                Ok(cg) if cg.is_frozen(&self.hierarchies, Some(c.id.as_str())) => {
                    ContainerStatus::Paused
                }
                _ => ContainerStatus::Running,
            },
            // The monitor records the exit right after the process ends.
            Some(_) => match self.container(&c.id) {
                Ok(fresh) if fresh.exit.is_some() => self.container_status(&fresh),
                _ => ContainerStatus::Exited(None),
            },
        }
    }

    /// Freezes the container's leaf.
    pub fn pause_container(&self, c: &ContainerRecord, timeout: Duration) -> Result<()> {
        match self.container_status(c) {
            ContainerStatus::Running => {}
            ContainerStatus::Paused => return Err(already(Kind::Container, &c.name)),
            _ => return Err(not_running(Kind::Container, &c.name)),
        }
        let cg = PodCgroups::of(&self.hierarchies, &c.pod)?
            .freezer_cgroup(&self.hierarchies, Some(c.id.as_str()))?;
        Freezer::new()
            .timeout(timeout)
            .freeze(&self.hierarchies, &cg)
            .map_err(|e| docker_error(e, Kind::Container, &c.name))?;
        Ok(())
    }

    /// Thaws the container's leaf; a container held by its paused pod says so.
    pub fn unpause_container(&self, c: &ContainerRecord, timeout: Duration) -> Result<()> {
        match self.container_status(c) {
            ContainerStatus::Paused => {}
            ContainerStatus::Running => {
                return Err(Error::NotPaused {
                    kind: Kind::Container,
                    name: c.name.clone(),
                })
            }
            _ => return Err(not_running(Kind::Container, &c.name)),
        }
        let cg = PodCgroups::of(&self.hierarchies, &c.pod)?
            .freezer_cgroup(&self.hierarchies, Some(c.id.as_str()))?;
        match Freezer::new().timeout(timeout).thaw(&cg) {
            Ok(_) => Ok(()),
            Err(freezer::Error::PausedByAncestor { .. }) => Err(Error::PausedByPod {
                container: c.name.clone(),
                pod: self
                    .pod(&c.pod)
                    .map(|p| p.name)
                    .unwrap_or_else(|_| c.pod.short().to_owned()),
            }),
            Err(e) => Err(docker_error(e, Kind::Container, &c.name)),
        }
    }

    /// Stops a container: SIGTERM, then SIGKILL after `grace`. A container
    /// paused by itself is thawed first; one held by its paused pod is not
    /// stopped (that would mean thawing its siblings).
    pub fn stop_container(&self, c: &ContainerRecord, grace: Duration) -> Result<()> {
        if self.container_status(c) == ContainerStatus::Paused {
            let cg = PodCgroups::of(&self.hierarchies, &c.pod)?
                .freezer_cgroup(&self.hierarchies, Some(c.id.as_str()))?;
            match Freezer::new().thaw(&cg) {
                Ok(_) => {}
                Err(freezer::Error::PausedByAncestor { .. }) => {
                    return Err(Error::PausedByPod {
                        container: c.name.clone(),
                        pod: self.pod(&c.pod).map(|p| p.name).unwrap_or_default(),
                    })
                }
                Err(e) => return Err(e.into()),
            }
        }
        self.stop_processes(std::slice::from_ref(c), grace)
    }

    pub(crate) fn stop_processes(&self, cs: &[ContainerRecord], grace: Duration) -> Result<()> {
        let running: Vec<&ContainerRecord> = cs
            .iter()
            .filter(|c| self.container_status(c).is_running())
            .collect();
        for c in &running {
            if let Some(p) = &c.process {
                p.signal(rustix::process::Signal::TERM)?;
            }
        }
        let end = Instant::now() + grace;
        while Instant::now() < end
            && running
                .iter()
                .any(|c| self.container_status(c).is_running())
        {
            std::thread::sleep(Duration::from_millis(5));
        }
        for c in &running {
            if let Some(p) = &c.process {
                p.signal(rustix::process::Signal::KILL)?;
            }
        }
        for c in &running {
            self.wait_exit(c, Some(Duration::from_secs(10)))?;
        }
        Ok(())
    }

    /// Sends a signal to a running container's main process.
    pub fn kill_container(
        &self,
        c: &ContainerRecord,
        signal: rustix::process::Signal,
    ) -> Result<()> {
        if !self.container_status(c).is_running() {
            return Err(not_running(Kind::Container, &c.name));
        }
        match &c.process {
            Some(p) => p.signal(signal),
            None => Err(not_running(Kind::Container, &c.name)),
        }
    }

    /// Removes a container (and the pod made for it alone). A running one
    /// needs `force`, which kills it.
    pub fn remove_container(&self, c: &ContainerRecord, force: bool) -> Result<()> {
        if self.container_status(c).is_running() {
            if !force {
                return Err(Error::StillRunning {
                    kind: Kind::Container,
                    name: c.name.clone(),
                });
            }
            let pod = self.pod(&c.pod)?;
            self.thaw_if_frozen(&pod)?;
            if let Some(p) = &c.process {
                p.signal(rustix::process::Signal::KILL)?;
            }
            self.wait_exit(c, Some(Duration::from_secs(10)))?;
        }
        self.remove_container_state(c)?;
        if let Ok(pod) = self.pod(&c.pod) {
            let others = self.containers()?.iter().any(|o| o.pod == pod.id);
            if pod.implicit && !others {
                self.remove_pod(&pod, true)?;
            }
        }
        Ok(())
    }

    pub(crate) fn remove_container_state(&self, c: &ContainerRecord) -> Result<()> {
        let cgroups = PodCgroups::of(&self.hierarchies, &c.pod)?;
        cgroups.kill_all(Some(c.id.as_str()), Duration::from_secs(10))?;
        cgroups.remove_leaf(c.id.as_str())?;
        self.store.remove(Kind::Container, &c.id, &c.name)
    }

    /// Runs a command in a running container's namespaces and cgroup, with
    /// this process's stdio; returns its exit status. Refused while paused.
    pub fn exec(
        &self,
        c: &ContainerRecord,
        argv: Vec<String>,
        env: Vec<String>,
        workdir: Option<PathBuf>,
    ) -> Result<i32> {
        match self.container_status(c) {
            ContainerStatus::Running => {}
            ContainerStatus::Paused => {
                return Err(Error::Paused {
                    kind: Kind::Container,
                    name: c.name.clone(),
                })
            }
            _ => return Err(not_running(Kind::Container, &c.name)),
        }
        let pod = self.pod(&c.pod)?;
        let process = c
            .process
            .ok_or_else(|| not_running(Kind::Container, &c.name))?;
        let own_mount = c.rootfs.is_some() || pod.share.contains(&Namespace::Pid);
        let mount_ns = if own_mount {
            let path = format!("/proc/{}/ns/mnt", process.pid);
            let fd = rustix::fs::open(
                path.as_str(),
                rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::CLOEXEC,
                rustix::fs::Mode::empty(),
            )
            .map_err(|e| io_err("opening the mount namespace", &path)(e.into()))?;
            // Opened after the check: make sure the PID was not reused meanwhile.
            if !process.is_alive() {
                return Err(not_running(Kind::Container, &c.name));
            }
            Some(fd)
        } else {
            None
        };
        let mut all_env = self.base_env(&pod, c);
        all_env.extend(parse_env(&env)?);
        let spec = MemberSpawn {
            argv,
            env: all_env,
            workdir: workdir.or_else(|| c.workdir.clone()),
            joins: ns::open(&self.pod_dir(&pod), &pod.share)?,
            leaf_procs: PodCgroups::of(&self.hierarchies, &pod.id)?.leaf_procs(c.id.as_str()),
            rootfs: None,
            mount_ns,
            mount_proc: false,
            new_session: false,
        };
        let mut child = spawn_member(spec, |_| {})?;
        let status = child.wait().map_err(|source| Error::Spawn {
            what: "waiting for the exec'd command".into(),
            source,
        })?;
        Ok(exit_code(status))
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
        let mut watch = crate::logs::Watch::new(&self.store.dir(Kind::Container, &c.id))?;
        loop {
            let fresh = self.container(&c.id)?;
            if let Some(exit) = &fresh.exit {
                return Ok(Some(exit.code));
            }
            let monitor_gone = fresh.monitor.as_ref().is_some_and(|m| !m.is_alive());
            let process_gone = fresh.process.as_ref().is_some_and(|p| !p.is_alive());
            if monitor_gone && (process_gone || fresh.process.is_none()) {
                return Ok(None);
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
pub(crate) fn exit_code(status: std::process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0))
}
