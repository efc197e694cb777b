//! Pods: a set of namespaces pinned under the pod's state directory,
//! anchored by `stasis-pause`, plus a cgroup node.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use freezer::Freezer;
use serde::{Deserialize, Serialize};

use crate::cgroups::{PodCgroups, PAUSE_LEAF};
use crate::error::{Error, Kind, Result};
use crate::id::{validate_name, Id};
use crate::ns::{self, Namespace};
use crate::process::ProcessRef;
use crate::spawn::{spawn_pause, PauseSpawn};
use crate::{now, Sandbox};

/// A pod's record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PodRecord {
    pub id: Id,
    pub name: String,
    /// Creation time, seconds since the epoch.
    pub created: u64,
    pub share: Vec<Namespace>,
    pub hostname: String,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// The pause process, once started.
    #[serde(default)]
    pub pause: Option<ProcessRef>,
    /// Made for one container (`run` without `--pod`): removed with it.
    #[serde(default)]
    pub implicit: bool,
}

/// What a pod is doing, read from the kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PodStatus {
    /// Its record exists but its pause process never started.
    Created,
    Running,
    Paused,
    /// Its pause process is gone.
    Exited,
}

impl std::fmt::Display for PodStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            PodStatus::Created => "created",
            PodStatus::Running => "running",
            PodStatus::Paused => "paused",
            PodStatus::Exited => "exited",
        })
    }
}

/// How to make a pod.
#[derive(Debug, Clone, Default)]
pub struct PodOptions {
    pub name: Option<String>,
    /// Empty means the default: net, ipc, uts.
    pub share: Vec<Namespace>,
    pub hostname: Option<String>,
    pub labels: BTreeMap<String, String>,
    pub implicit: bool,
}

impl Sandbox {
    /// Creates a pod and starts its pause process.
    pub fn create_pod(&self, opts: PodOptions) -> Result<PodRecord> {
        let id = Id::generate()?;
        let name = opts.name.unwrap_or_else(|| id.short().to_owned());
        validate_name(&name)?;
        let share = if opts.share.is_empty() {
            ns::DEFAULT_SHARE.to_vec()
        } else {
            opts.share
        };
        let hostname = opts.hostname.unwrap_or_else(|| name.clone());
        validate_hostname(&hostname)?;
        let binary = self.pause_binary()?;
        let mut record = PodRecord {
            id: id.clone(),
            name,
            created: now(),
            share,
            hostname,
            labels: opts.labels,
            pause: None,
            implicit: opts.implicit,
        };
        {
            let _lock = self.store.lock()?;
            self.store.claim_name(Kind::Pod, &record.name, &id)?;
            self.store.create_dir(Kind::Pod, &id)?;
            self.store.write(Kind::Pod, &id, &record)?;
        }
        // From here on the record exists: a failure is cleaned up by `rm`.
        let result = self.start_pause(&mut record, &binary);
        if let Err(e) = result {
            tracing::debug!(pod = %id, error = %e, "pod creation failed; removing it");
            let _ = self.remove_pod_resources(&record);
            let _ = self.store.remove(Kind::Pod, &id, &record.name);
            return Err(e);
        }
        Ok(record)
    }

    fn start_pause(&self, record: &mut PodRecord, binary: &std::path::Path) -> Result<()> {
        let cgroups = PodCgroups::of(&self.hierarchies, &record.id)?;
        cgroups.create(&[PAUSE_LEAF])?;
        let mut child = spawn_pause(&PauseSpawn {
            binary,
            share: &record.share,
            hostname: &record.hostname,
            node_procs: cgroups.node_procs(),
            leaf_procs: cgroups.leaf_procs(PAUSE_LEAF),
        })?;
        let pid = child.id();
        let pause = ProcessRef::of(pid).ok_or_else(|| Error::Spawn {
            what: "starting the pause process".into(),
            source: std::io::Error::other(format!(
                "process {pid} exited at once: {:?}",
                child.try_wait()
            )),
        })?;
        // Our child until we exit; the pause process is reparented then.
        drop(child);
        let dir = self.store.dir(Kind::Pod, &record.id);
        let pinned: Vec<Namespace> = record.share.clone();
        ns::pin(&dir, pid, &pinned)?;
        record.pause = Some(pause);
        let _lock = self.store.lock_record(Kind::Pod, &record.id)?;
        self.store.write(Kind::Pod, &record.id, record)
    }

    /// Every pod.
    pub fn pods(&self) -> Result<Vec<PodRecord>> {
        self.store.all(Kind::Pod)
    }

    /// The pod a name, ID or unique prefix names.
    pub fn find_pod(&self, query: &str) -> Result<PodRecord> {
        let id = self.store.find(Kind::Pod, query)?;
        self.pod(&id)
    }

    /// The pod's status, from its pause process and the kernel's freezer.
    pub fn pod_status(&self, pod: &PodRecord) -> PodStatus {
        match &pod.pause {
            None => PodStatus::Created,
            Some(p) if !p.is_alive() => PodStatus::Exited,
            Some(_) => match PodCgroups::of(&self.hierarchies, &pod.id) {
                Ok(cg) if cg.is_frozen(&self.hierarchies, None) => PodStatus::Paused,
                _ => PodStatus::Running,
            },
        }
    }

    /// The pod's cgroup directories.
    pub fn pod_cgroups(&self, pod: &PodRecord) -> Result<PodCgroups> {
        PodCgroups::of(&self.hierarchies, &pod.id)
    }

    /// Freezes every member of the pod with one write at its node.
    pub fn pause_pod(&self, pod: &PodRecord, timeout: Duration) -> Result<()> {
        match self.pod_status(pod) {
            PodStatus::Running => {}
            PodStatus::Paused => return Err(already(Kind::Pod, &pod.name)),
            _ => return Err(not_running(Kind::Pod, &pod.name)),
        }
        let cg = self
            .pod_cgroups(pod)?
            .freezer_cgroup(&self.hierarchies, None)?;
        Freezer::new()
            .timeout(timeout)
            .freeze(&self.hierarchies, &cg)
            .map_err(|e| docker_error(e, Kind::Pod, &pod.name))?;
        Ok(())
    }

    /// Thaws the pod's node.
    pub fn unpause_pod(&self, pod: &PodRecord, timeout: Duration) -> Result<()> {
        if matches!(self.pod_status(pod), PodStatus::Created | PodStatus::Exited) {
            return Err(not_running(Kind::Pod, &pod.name));
        }
        let cg = self
            .pod_cgroups(pod)?
            .freezer_cgroup(&self.hierarchies, None)?;
        Freezer::new()
            .timeout(timeout)
            .thaw(&cg)
            .map_err(|e| docker_error(e, Kind::Pod, &pod.name))?;
        Ok(())
    }

    /// Stops every container of the pod (SIGTERM, then SIGKILL after
    /// `grace`), then the pause process. A paused pod is thawed first, so
    /// its members can act on SIGTERM.
    pub fn stop_pod(&self, pod: &PodRecord, grace: Duration) -> Result<()> {
        self.thaw_if_frozen(pod)?;
        let members: Vec<_> = self
            .containers()?
            .into_iter()
            .filter(|c| c.pod == pod.id)
            .collect();
        self.stop_processes(&members, grace)?;
        if let Some(pause) = &pod.pause {
            pause.signal(rustix::process::Signal::TERM)?;
            wait_gone(pause, Duration::from_secs(5));
            if pause.is_alive() {
                pause.signal(rustix::process::Signal::KILL)?;
                wait_gone(pause, Duration::from_secs(5));
            }
        }
        Ok(())
    }

    /// Removes a pod: its containers, pins, cgroups and state. A running pod
    /// needs `force` (which kills it).
    pub fn remove_pod(&self, pod: &PodRecord, force: bool) -> Result<()> {
        let running = matches!(self.pod_status(pod), PodStatus::Running | PodStatus::Paused);
        let members: Vec<_> = self
            .containers()?
            .into_iter()
            .filter(|c| c.pod == pod.id)
            .collect();
        let busy = running
            || members
                .iter()
                .any(|c| self.container_status(c).is_running());
        if busy && !force {
            return Err(Error::StillRunning {
                kind: Kind::Pod,
                name: pod.name.clone(),
            });
        }
        if busy {
            self.stop_pod(pod, Duration::ZERO)?;
        }
        for c in &members {
            self.remove_container_state(c)?;
        }
        self.remove_pod_resources(pod)?;
        self.store.remove(Kind::Pod, &pod.id, &pod.name)
    }

    fn remove_pod_resources(&self, pod: &PodRecord) -> Result<()> {
        ns::unpin(&self.store.dir(Kind::Pod, &pod.id))?;
        let cgroups = self.pod_cgroups(pod)?;
        // A frozen v1 task takes SIGKILL only once thawed.
        self.thaw_if_frozen(pod)?;
        cgroups.kill_all(None, Duration::from_secs(10))?;
        cgroups.remove()
    }

    pub(crate) fn thaw_if_frozen(&self, pod: &PodRecord) -> Result<()> {
        let cgroups = self.pod_cgroups(pod)?;
        for leaf in
            std::iter::once(None).chain(self.leaf_names(pod).iter().map(|l| Some(l.as_str())))
        {
            if let Ok(cg) = cgroups.freezer_cgroup(&self.hierarchies, leaf) {
                let f = Freezer::new();
                if f.state(&cg)
                    .is_ok_and(|s| s.frozen_by == Some(freezer::FrozenBy::Itself))
                {
                    f.thaw(&cg)?;
                }
            }
        }
        Ok(())
    }

    fn leaf_names(&self, pod: &PodRecord) -> Vec<String> {
        self.pod_cgroups(pod)
            .ok()
            .and_then(|c| c.freezer_cgroup(&self.hierarchies, None).ok())
            .and_then(|cg| std::fs::read_dir(cg.dir).ok())
            .map(|entries| {
                entries
                    .flatten()
                    .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The pod's state directory.
    pub fn pod_dir(&self, pod: &PodRecord) -> PathBuf {
        self.store.dir(Kind::Pod, &pod.id)
    }
}

fn validate_hostname(h: &str) -> Result<()> {
    let ok = !h.is_empty()
        && h.len() <= 64
        && h.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        && !h.starts_with('-');
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidArgument {
            what: "hostname",
            value: h.to_owned(),
            reason: "use letters, digits, '-' and '.', at most 64",
        })
    }
}

pub(crate) fn already(kind: Kind, name: &str) -> Error {
    Error::AlreadyPaused {
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

/// The freezer's conflicts in docker's words for a pod or container.
pub(crate) fn docker_error(e: freezer::Error, kind: Kind, name: &str) -> Error {
    if e.is_already_paused() {
        already(kind, name)
    } else if matches!(e, freezer::Error::NotPaused { .. }) {
        Error::NotPaused {
            kind,
            name: name.to_owned(),
        }
    } else {
        Error::Freezer(e)
    }
}

/// Waits, bounded, for a process we cannot `wait` for (not our child) to go.
pub(crate) fn wait_gone(p: &ProcessRef, limit: Duration) {
    let end = Instant::now() + limit;
    while p.is_alive() && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(2));
    }
}
