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
        self.stop_pause(pod)?;
        self.pod_event(pod, "stop");
        Ok(())
    }

    /// Removes a pod: its containers, pins, cgroups and state. A running pod
    /// needs `force` (which kills it).
    pub fn remove_pod(&self, pod: &PodRecord, force: bool) -> Result<()> {
        self.remove_pod_as(pod, force, true)
    }

    /// [`Sandbox::remove_pod`]; `announce` says whether to record the pod's
    /// `remove` (not for an implicit pod removed with its container).
    pub(crate) fn remove_pod_as(&self, pod: &PodRecord, force: bool, announce: bool) -> Result<()> {
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
        self.store.remove(Kind::Pod, &pod.id, &pod.name)?;
        if announce {
            self.pod_event(pod, "remove");
        }
        Ok(())
    }

    /// Removes a container, and the pod made for it alone. A running one
    /// needs `force`, which kills it; one whose pod is paused says so.
    pub fn remove_container(&self, c: &ContainerRecord, force: bool) -> Result<()> {
        let restarting = matches!(self.container_status(c), ContainerStatus::Restarting(_));
        if restarting && !force {
            return Err(Error::still_running(Kind::Container, &c.name));
        }
        let c = &if force {
            self.end_restart_policy(c)?
        } else {
            c.clone()
        };
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
            // its siblings' own freezes) for as long as the kill takes, then
            // freezes it again, so that the pod stays paused.
            let thawed_pod = if pod_paused {
                cgroups.thaw_frozen(None)?
            } else {
                Vec::new()
            };
            cgroups.thaw_frozen(Some(c.id.as_str()))?;
            let killed = match &c.process {
                Some(p) => {
                    // Before the signal, so that it comes before the die.
                    self.container_event(c, "kill", &[("signal", libc::SIGKILL.to_string())]);
                    p.signal(&self.host.proc, rustix::process::Signal::KILL)
                }
                None => Ok(()),
            }
            .and_then(|()| self.wait_exit(c, Some(Duration::from_secs(10))).map(drop));
            let refrozen = self.refreeze(&cgroups, &thawed_pod);
            killed?;
            refrozen?;
        }
        self.remove_container_state(c)?;
        if let Ok(pod) = self.pod(&c.pod) {
            let others = self.members(&pod)?;
            if pod.implicit && others.is_empty() {
                self.remove_pod_as(&pod, true, false)?;
            }
        }
        Ok(())
    }

    /// Freezes the pod's node again in the hierarchies `versions` (those a
    /// forced removal thawed).
    fn refreeze(
        &self,
        cgroups: &crate::cgroups::PodCgroups,
        versions: &[freezer::Version],
    ) -> Result<()> {
        for cg in cgroups.cgroups(None) {
            if versions.contains(&cg.version()) {
                freezer::Freezer::new().freeze(&self.host.hierarchies, &cg)?;
            }
        }
        Ok(())
    }

    /// Removes a container's cgroup leaf (killing what is left in it), its
    /// overlay root filesystem (unmounted, then its upper directory with
    /// the rest), and its record, log and name.
    pub(crate) fn remove_container_state(&self, c: &ContainerRecord) -> Result<()> {
        // The pod's record may be gone already: its cgroups are found by ID.
        let cgroups = self.cgroups_of(&c.pod)?;
        cgroups.kill_all(Some(c.id.as_str()), Duration::from_secs(10))?;
        cgroups.remove_leaf(c.id.as_str())?;
        if c.image.is_some() {
            crate::overlay::unmount(&self.store.dir(Kind::Container, &c.id))?;
        }
        self.store.remove(Kind::Container, &c.id, &c.name)?;
        self.container_event(c, "destroy", &[]);
        Ok(())
    }

    /// After a container exited (its monitor calls this): removes it if it
    /// was run with `--rm`, and ends its pod's pause process, unpinning the
    /// namespaces, if `run` made the pod for it and no member is left
    /// running or starting. The pod's record stays until `rm`.
    pub(crate) fn after_exit(&self, c: &ContainerRecord) -> Result<()> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake::{FakeHost, FIRST_PID};
    use crate::process::ProcessRef;

    #[test]
    fn an_implicit_pod_is_done_once_every_member_exited() {
        let host = FakeHost::new("implicit");
        let implicit = host.pod("i", true, None);
        let explicit = host.pod("e", false, None);
        use ContainerStatus::*;
        assert!(implicit_pod_is_done(&implicit, &[Exited(Some(0))]));
        assert!(implicit_pod_is_done(
            &implicit,
            &[Exited(None), Exited(Some(1))]
        ));
        assert!(!implicit_pod_is_done(
            &implicit,
            &[Exited(Some(0)), Running]
        ));
        assert!(!implicit_pod_is_done(&implicit, &[Paused]));
        assert!(
            !implicit_pod_is_done(&implicit, &[Exited(Some(0)), Created]),
            "a member still starting needs the pod"
        );
        assert!(!implicit_pod_is_done(&explicit, &[Exited(Some(0))]));
    }

    #[test]
    fn removing_an_exited_container_removes_its_implicit_pod_and_both_names() {
        let host = FakeHost::new("rm-implicit");
        let sb = &host.sandbox;
        // Its pause process already ended (a PID no process can have).
        let gone = ProcessRef {
            pid: FIRST_PID + 5,
            start_time: 1,
        };
        let pod = host.pod("web", true, Some(gone));
        let c = host.container("web", &pod, Some(gone), Some(0));
        let keep = host.pod("keep", false, None);
        let other = host.container("other", &keep, None, Some(0));
        let cgroups = sb.pod_cgroups(&pod).expect("cgroups");
        cgroups.create(&[c.id.as_str()]).expect("leaf");

        sb.remove_container(&c, false).expect("rm");
        assert!(sb.find_container("web").expect_err("gone").is_not_found());
        assert!(sb
            .find_pod("web")
            .expect_err("its pod went too")
            .is_not_found());
        assert_eq!(sb.store().name_claim(Kind::Container, "web"), None);
        assert_eq!(sb.store().name_claim(Kind::Pod, "web"), None);
        assert!(!cgroups.exists(), "the pod's cgroups were removed");

        // A member of an explicit pod goes alone.
        sb.remove_container(&other, false).expect("rm");
        assert_eq!(sb.find_pod("keep").expect("kept").id, keep.id);

        // Each removal is one destroy; the implicit pod went unannounced.
        let (events, _) = sb.journal().read_from(0).expect("journal");
        let seen: Vec<(&str, &str, &str)> = events
            .iter()
            .map(|e| {
                (
                    e.kind.as_str(),
                    e.action.as_str(),
                    e.attributes["name"].as_str(),
                )
            })
            .collect();
        assert_eq!(
            seen,
            [
                ("container", "destroy", "web"),
                ("container", "destroy", "other")
            ]
        );
        assert_eq!(events[0].id, c.id.as_str());
    }

    #[test]
    fn a_running_container_needs_force() {
        let host = FakeHost::new("rm-running");
        let sb = &host.sandbox;
        let pod = host.pod("p", false, None);
        let proc = host.process(FIRST_PID + 1, 'S', 7);
        let c = host.container("c", &pod, Some(proc), None);
        let err = sb.remove_container(&c, false).expect_err("running");
        assert!(err.to_string().contains("container c is running"), "{err}");
        assert!(sb.find_container("c").is_ok());
    }
}
