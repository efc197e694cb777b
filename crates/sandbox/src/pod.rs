//! Pods: a set of namespaces pinned under the pod's state directory,
//! anchored by `stasis-pause`, plus a cgroup node. This module knows nothing
//! of containers: stopping and removing a pod with its members is
//! `teardown`'s job.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use freezer::Freezer;
use serde::{Deserialize, Serialize};

use crate::cgroups::{PodCgroups, PAUSE_LEAF};
use crate::error::{Error, Kind, Result};
use crate::id::{validate_name, Id};
use crate::limits::Limits;
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
    /// Resource limits of its node, shared by all its members.
    #[serde(default)]
    pub limits: Limits,
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
    /// Resource limits of the pod's node (`pod create --memory ...`).
    pub limits: Limits,
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
        opts.limits.validate(crate::limits::cpus_online())?;
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
            limits: opts.limits,
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
        // A pod `run` makes for one container is its container's business:
        // its events are the container's.
        if !record.implicit {
            self.pod_event(&record, "create");
        }
        Ok(record)
    }

    pub(crate) fn start_pause(
        &self,
        record: &mut PodRecord,
        binary: &std::path::Path,
    ) -> Result<()> {
        let mut cgroups = self.pod_cgroups(record)?;
        // Its own cgroup namespace is rooted where the pause process is in
        // every hierarchy: then it joins them all.
        if record.limits.is_empty() && !record.share.contains(&Namespace::Cgroup) {
            cgroups = cgroups.without_resources();
        }
        cgroups.create(&[PAUSE_LEAF])?;
        cgroups.set_limits(None, &record.limits)?;
        let mut child = spawn_pause(&PauseSpawn {
            proc: &self.host.proc,
            binary,
            share: &record.share,
            hostname: &record.hostname,
            node_procs: cgroups.node_procs(),
            leaf_procs: cgroups.leaf_procs(PAUSE_LEAF),
        })?;
        let pid = child.id();
        let pause = ProcessRef::of(&self.host.proc, pid).ok_or_else(|| Error::PauseExited {
            pid,
            status: format!("{:?}", child.try_wait()),
        })?;
        // Our child until we exit; the pause process is reparented then.
        drop(child);
        let dir = self.store.dir(Kind::Pod, &record.id);
        ns::pin(&self.host.proc, &dir, pid, &record.share)?;
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
        self.store
            .lookup(Kind::Pod, query)
            .map(|(_, record)| record)
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

    /// The pod's status, from its pause process and the kernel's freezer
    /// (frozen in any hierarchy is paused).
    pub fn pod_status(&self, pod: &PodRecord) -> PodStatus {
        match &pod.pause {
            None => PodStatus::Created,
            Some(p) if !p.is_alive(&self.host.proc) => PodStatus::Exited,
            // The freezer's nodes alone: no need to find the controllers.
            Some(_) => match PodCgroups::of(&self.host.hierarchies, &pod.id) {
                Ok(cg) if cg.is_frozen(None) => PodStatus::Paused,
                _ => PodStatus::Running,
            },
        }
    }

    /// The pod's cgroup directories.
    pub fn pod_cgroups(&self, pod: &PodRecord) -> Result<PodCgroups> {
        self.cgroups_of(&pod.id)
    }

    /// The pod's cgroup directories, by its ID: freezer, cgroup2, the
    /// resource controllers and devices.
    pub(crate) fn cgroups_of(&self, pod: &Id) -> Result<PodCgroups> {
        Ok(PodCgroups::of(&self.host.hierarchies, pod)?
            .with_controllers(self.host.controllers(), pod)
            .with_devices(&self.host.devices, pod))
    }

    /// Freezes every member of the pod with one write at its node.
    pub fn pause_pod(&self, pod: &PodRecord, timeout: Duration) -> Result<()> {
        match self.pod_status(pod) {
            PodStatus::Running => {}
            PodStatus::Paused => return Err(Error::already_paused(Kind::Pod, &pod.name)),
            _ => return Err(Error::not_running(Kind::Pod, &pod.name)),
        }
        let placement = self.pod_placement(pod)?;
        Freezer::new()
            .timeout(timeout)
            .pause(&self.host.hierarchies, &placement)
            .map_err(|e| Error::from_freezer(e, Kind::Pod, &pod.name))?;
        self.pod_event(pod, "pause");
        Ok(())
    }

    /// Thaws the pod's node in whichever hierarchy holds it frozen (on a
    /// hybrid host a freeze in either tree stops it).
    pub fn unpause_pod(&self, pod: &PodRecord, timeout: Duration) -> Result<()> {
        if matches!(self.pod_status(pod), PodStatus::Created | PodStatus::Exited) {
            return Err(Error::not_running(Kind::Pod, &pod.name));
        }
        let placement = self.pod_placement(pod)?;
        Freezer::new()
            .timeout(timeout)
            .unpause(&placement)
            .map_err(|e| Error::from_freezer(e, Kind::Pod, &pod.name))?;
        self.pod_event(pod, "unpause");
        Ok(())
    }

    /// The pod's node in the hierarchy stasis freezes by default, and in
    /// every other one it has.
    fn pod_placement(&self, pod: &PodRecord) -> Result<freezer::Placement> {
        let cg = self.pod_cgroups(pod)?.freezer_cgroup(None)?;
        Ok(self.host.hierarchies.place_cgroup(cg)?)
    }

    /// Ends the pod's pause process (SIGTERM, then SIGKILL), through a
    /// pidfd, bounded. Its namespaces stay pinned until the pod is removed.
    pub(crate) fn stop_pause(&self, pod: &PodRecord) -> Result<()> {
        let Some(pause) = &pod.pause else {
            return Ok(());
        };
        let Some(p) = pause.open(&self.host.proc)? else {
            return Ok(());
        };
        p.signal(rustix::process::Signal::TERM)?;
        if !p.wait(Duration::from_secs(5))? {
            p.signal(rustix::process::Signal::KILL)?;
            if !p.wait(Duration::from_secs(5))? {
                return Err(Error::ProcessTimeout {
                    pid: p.pid(),
                    timeout: Duration::from_secs(10),
                });
            }
        }
        Ok(())
    }

    /// Removes what a pod holds on the host: its namespace pins and cgroups
    /// (killing whatever is left in them).
    pub(crate) fn remove_pod_resources(&self, pod: &PodRecord) -> Result<()> {
        ns::unpin(&self.store.dir(Kind::Pod, &pod.id))?;
        let cgroups = self.pod_cgroups(pod)?;
        // A frozen v1 task takes SIGKILL only once thawed.
        self.thaw_pod_tree(pod)?;
        cgroups.kill_all(None, Duration::from_secs(10))?;
        cgroups.remove()
    }

    /// Thaws the pod's node and every leaf wherever their own freeze holds
    /// them, in every hierarchy.
    pub(crate) fn thaw_pod_tree(&self, pod: &PodRecord) -> Result<()> {
        let cgroups = self.pod_cgroups(pod)?;
        cgroups.thaw_frozen(None)?;
        for leaf in cgroups.leaves() {
            cgroups.thaw_frozen(Some(&leaf))?;
        }
        Ok(())
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

#[cfg(test)]
mod tests {
    use freezer::Version;

    use super::*;
    use crate::fake::{FakeHost, FIRST_PID};

    #[test]
    fn a_pods_status_comes_from_its_pause_process_and_the_kernels_freezer() {
        let host = FakeHost::new("pod-status");
        let sb = &host.sandbox;
        let created = host.pod("created", false, None);
        assert_eq!(sb.pod_status(&created), PodStatus::Created);

        let pause = host.process(FIRST_PID, 'S', 100);
        let pod = host.pod("web", false, Some(pause));
        assert_eq!(sb.pod_status(&pod), PodStatus::Running);
        // Frozen in the hierarchy stasis does not freeze by default shows too.
        host.freeze(Version::V2, &host.cgroup(Version::V2, &pod, None));
        assert_eq!(sb.pod_status(&pod), PodStatus::Paused);
        assert!(sb
            .pause_pod(&pod, Duration::from_secs(1))
            .expect_err("paused")
            .is_conflict());

        // A reused PID (another start time) or a zombie is an exited pod.
        let reused = host.pod(
            "reused",
            false,
            Some(ProcessRef {
                pid: FIRST_PID,
                start_time: 99,
            }),
        );
        assert_eq!(sb.pod_status(&reused), PodStatus::Exited);
        let zombie = host.process(FIRST_PID + 1, 'Z', 100);
        let dead = host.pod("dead", false, Some(zombie));
        assert_eq!(sb.pod_status(&dead), PodStatus::Exited);
        let err = sb
            .pause_pod(&dead, Duration::from_secs(1))
            .expect_err("exited");
        assert!(err.to_string().contains("pod dead is not running"), "{err}");
    }

    #[test]
    fn pods_are_found_by_name_id_and_unique_prefix() {
        let host = FakeHost::new("pod-find");
        let sb = &host.sandbox;
        let a = host.pod("a", false, None);
        let b = host.pod("b", false, None);
        assert_eq!(sb.find_pod("a").expect("name").id, a.id);
        assert_eq!(sb.find_pod(b.id.as_str()).expect("id").id, b.id);
        assert_eq!(sb.find_pod(&a.id.as_str()[..12]).expect("prefix").id, a.id);
        assert!(sb.find_pod("nope").expect_err("missing").is_not_found());
        // The claim is checked before anything is started.
        let err = sb
            .clone()
            .with_pause_binary("/nonexistent/stasis-pause".into())
            .create_pod(PodOptions {
                name: Some("a".into()),
                ..Default::default()
            })
            .expect_err("name in use");
        assert!(err.is_conflict(), "{err}");
        assert_eq!(sb.pods().expect("pods").len(), 2);
    }
}
