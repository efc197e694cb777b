//! Stopping and removing: a pod with its members, a container (with the
//! pod `run` made for it alone), and the end of an implicit pod once its
//! container has exited. It sits above pods and containers, which know
//! nothing of it.

use std::time::Duration;

use crate::container::{ContainerRecord, ContainerStatus};
use crate::error::{Error, Kind, Result};
use crate::pod::{PodRecord, PodStatus};
use crate::Sandbox;

impl Sandbox {
    /// Stops every container of the pod (SIGTERM, then SIGKILL after
    /// `grace`), then the pause process. A paused pod is thawed first, so
    /// its members can act on SIGTERM.
    pub fn stop_pod(&self, pod: &PodRecord, grace: Duration) -> Result<()> {
        self.thaw_pod_tree(pod)?;
        let members = self.members(pod)?;
        self.stop_processes(&members, grace)?;
        self.stop_pause(pod)
    }

    /// Removes a pod: its containers, pins, cgroups and state. A running pod
    /// needs `force` (which kills it).
    pub fn remove_pod(&self, pod: &PodRecord, force: bool) -> Result<()> {
        let running = matches!(self.pod_status(pod), PodStatus::Running | PodStatus::Paused);
        let members = self.members(pod)?;
        let busy = running
            || members
                .iter()
                .any(|c| self.container_status(c).is_running());
        if busy && !force {
            return Err(Error::still_running(Kind::Pod, &pod.name));
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

    /// Removes a container, and the pod made for it alone. A running one
    /// needs `force`, which kills it; one whose pod is paused says so.
    pub fn remove_container(&self, c: &ContainerRecord, force: bool) -> Result<()> {
        let status = self.container_status(c);
        if status.is_running() {
            let pod = self.pod(&c.pod)?;
            let cgroups = self.pod_cgroups(&pod)?;
            let pod_paused = status == ContainerStatus::Paused && cgroups.is_frozen(None);
            if !force {
                return Err(if pod_paused {
                    Error::paused_by_pod(&c.name, &pod.name)
                } else {
                    Error::still_running(Kind::Container, &c.name)
                });
            }
            // A frozen v1 task takes SIGKILL only once thawed: the forced
            // removal of a member of a paused pod thaws the pod's node (not
            // its siblings' own freezes).
            if pod_paused {
                cgroups.thaw_frozen(None)?;
            }
            cgroups.thaw_frozen(Some(c.id.as_str()))?;
            if let Some(p) = &c.process {
                p.signal(&self.host.proc, rustix::process::Signal::KILL)?;
            }
            self.wait_exit(c, Some(Duration::from_secs(10)))?;
        }
        self.remove_container_state(c)?;
        if let Ok(pod) = self.pod(&c.pod) {
            let others = self.members(&pod)?;
            if pod.implicit && others.is_empty() {
                self.remove_pod(&pod, true)?;
            }
        }
        Ok(())
    }

    /// Removes a container's cgroup leaf (killing what is left in it) and
    /// its record, log and name.
    pub(crate) fn remove_container_state(&self, c: &ContainerRecord) -> Result<()> {
        let cgroups = crate::cgroups::PodCgroups::of(&self.host.hierarchies, &c.pod)?;
        cgroups.kill_all(Some(c.id.as_str()), Duration::from_secs(10))?;
        cgroups.remove_leaf(c.id.as_str())?;
        self.store.remove(Kind::Container, &c.id, &c.name)
    }

    /// After a container exited (its monitor calls this): removes it if it
    /// was run with `--rm`, and ends its pod's pause process, unpinning the
    /// namespaces, if `run` made the pod for it and no member is left
    /// running or starting. The pod's record stays until `rm`.
    pub fn after_exit(&self, c: &ContainerRecord) -> Result<()> {
        if c.auto_remove {
            return self.remove_container(c, true);
        }
        let Ok(pod) = self.pod(&c.pod) else {
            return Ok(());
        };
        let _lock = self.store.lock_record(Kind::Pod, &pod.id)?;
        let statuses: Vec<ContainerStatus> = self
            .members(&pod)?
            .iter()
            .map(|m| self.container_status(m))
            .collect();
        if implicit_pod_is_done(&pod, &statuses) {
            tracing::debug!(pod = %pod.id, "its only container exited; ending the implicit pod");
            self.stop_pause(&pod)?;
            crate::ns::unpin(&self.pod_dir(&pod))?;
        }
        Ok(())
    }
}

/// Whether an implicit pod has outlived its use: `run` made it, and every
/// member has exited (a member created but not yet started still needs it).
pub(crate) fn implicit_pod_is_done(pod: &PodRecord, members: &[ContainerStatus]) -> bool {
    pod.implicit
        && members
            .iter()
            .all(|s| matches!(s, ContainerStatus::Exited(_)))
}
