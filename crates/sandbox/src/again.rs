//! Starting an exited container again (`docker start` of an exited
//! container, `docker restart`): a new process for the same record, in the
//! same pod, through a new monitor. Its ID, name, labels, log (appended to),
//! health check, limits, restart policy, isolation and root filesystem stay
//! as they were; `StartedAt` changes and, as docker counts it, the restart
//! count goes back to 0 (it counts only the restarts of the policy).
//!
//! A pod the user made must be running: its members share namespaces its
//! pause process holds. A pod `run` made for the container alone ended with
//! it (its pause process stopped, its namespace pins removed: see
//! `teardown`); it gets a new pause process first, so its namespaces (net,
//! ipc, uts, and pid if shared) are new ones: an address or a hostname
//! change seen inside is not carried over, only what the pod's record says.

use std::process::Command;

use crate::container::{ContainerRecord, ContainerStatus};
use crate::error::{Error, Kind, Result};
use crate::pod::PodStatus;
use crate::Sandbox;

impl Sandbox {
    /// Starts an exited container again through its monitor (`monitor`, as
    /// for [`Sandbox::start_container`]); a created one is started as it
    /// is. Returns once the process runs. One running, paused or in its
    /// restart policy's back-off is refused as a conflict.
    pub fn start_again(&self, c: &ContainerRecord, monitor: Command) -> Result<ContainerRecord> {
        match self.container_status(c) {
            ContainerStatus::Created => return self.start_container(c, monitor),
            ContainerStatus::Exited(_) => {}
            ContainerStatus::Running | ContainerStatus::Restarting(_) => {
                return Err(Error::still_running(Kind::Container, &c.name))
            }
            ContainerStatus::Paused => return Err(Error::paused(Kind::Container, &c.name)),
        }
        self.prepare_pod_for_start(c)?;
        let fresh = self.container(&c.id)?;
        self.start_container(&fresh, monitor)
    }

    /// Readies an exited container's pod for a new process of it (a start,
    /// or a restore from its checkpoint), and clears what the last run left
    /// in its record: a pod the user made must be running; the pod `run`
    /// made for it gets a new pause process if it ended with it.
    pub(crate) fn prepare_pod_for_start(&self, c: &ContainerRecord) -> Result<()> {
        let mut pod = self.pod(&c.pod)?;
        // Under the pod's lock, where the old monitor decides to end an
        // implicit pod: either it ended the pod before (and it is seen
        // exited here) or it sees the container starting and keeps it.
        let needs_pause = {
            let _lock = self.store.lock_record(Kind::Pod, &pod.id)?;
            pod = self.pod(&pod.id)?;
            match self.pod_status(&pod) {
                PodStatus::Running => {
                    self.reset_for_start(c)?;
                    false
                }
                // A process moved into a frozen cgroup freezes before its
                // exec, and the monitor would wait for it.
                PodStatus::Paused => return Err(Error::paused(Kind::Pod, &pod.name)),
                PodStatus::Created | PodStatus::Exited if pod.implicit => true,
                PodStatus::Created | PodStatus::Exited => {
                    return Err(Error::not_running(Kind::Pod, &pod.name))
                }
            }
        };
        if needs_pause {
            tracing::info!(
                container = %c.name,
                pod = %pod.name,
                "the container's own pod ended with it: a new pause process, with new namespaces"
            );
            let binary = self.pause_binary()?;
            // Pins of the old namespaces would be joined instead.
            crate::ns::unpin(&self.pod_dir(&pod))?;
            self.start_pause(&mut pod, &binary)?;
            let _lock = self.store.lock_record(Kind::Pod, &pod.id)?;
            self.reset_for_start(c)?;
        }
        Ok(())
    }

    /// Clears what the last run left in the record, as docker's start
    /// does: its exit, process and health, the manual stop that ended its
    /// restart policy, and the count of the policy's restarts.
    fn reset_for_start(&self, c: &ContainerRecord) -> Result<()> {
        self.record(&c.id, |r| {
            r.exit = None;
            r.process = None;
            r.health = None;
            r.restarting = false;
            r.stopped = false;
            r.restart_count = 0;
        })
    }
}
