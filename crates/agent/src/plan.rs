//! What to do about one pod, decided from its annotations and the kernel's
//! answer alone (no memory of earlier calls), so a restarted agent decides
//! as the one before it would have.

use std::time::{Duration, SystemTime};

use crate::annotations::{Request, State, View};

/// The pod's cgroup, as the kernel reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kernel {
    /// Frozen in some hierarchy.
    Frozen,
    /// Running.
    Thawed,
    /// No cgroup for the pod on this node (not started yet, or gone).
    Missing,
}

/// Why a pod is thawed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Thaw {
    /// The pause annotation went.
    Unpaused,
    /// The lease ran out.
    LeaseEnded,
    /// The pod is being deleted: a frozen pod would hang its stop.
    Deleting,
}

/// One step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// Nothing to do.
    Nothing,
    /// Freeze it (and reset its connections if asked).
    Freeze { reset_connections: bool },
    /// Thaw it.
    Thaw(Thaw),
    /// The kernel already agrees; record the answer only.
    Record(State),
    /// Cannot do what is asked; record why.
    Fail(String),
}

/// Whether the kernel must be asked at all: a pod with no stasis annotation
/// that is not being deleted needs no walk of the cgroup tree.
pub fn needs_kernel(view: &View, deleting: bool) -> bool {
    deleting || view.any
}

/// The step for a pod.
pub fn plan(view: &View, deleting: bool, kernel: Kernel, now: SystemTime) -> Plan {
    let ours = view.paused_at.is_some();
    if deleting {
        // Whoever froze it: nothing of a pod being deleted is worth a stop
        // that hangs.
        return if kernel == Kernel::Frozen {
            Plan::Thaw(Thaw::Deleting)
        } else {
            Plan::Nothing
        };
    }
    match &view.request {
        Request::Invalid(why) => {
            if view.state == Some(State::Failed) {
                Plan::Nothing
            } else {
                Plan::Fail(why.clone())
            }
        }
        Request::Pause {
            reset_connections, ..
        } => {
            if view.expiry().is_some_and(|t| t <= now) {
                return if kernel == Kernel::Frozen {
                    Plan::Thaw(Thaw::LeaseEnded)
                } else {
                    // Thawed by someone else meanwhile; the request ends all the same.
                    Plan::Record(State::Running)
                };
            }
            match kernel {
                Kernel::Missing => Plan::Fail("the pod has no cgroup on this node".into()),
                Kernel::Thawed => Plan::Freeze {
                    reset_connections: *reset_connections,
                },
                Kernel::Frozen if ours && view.state == Some(State::Paused) => Plan::Nothing,
                Kernel::Frozen => Plan::Record(State::Paused),
            }
        }
        Request::Run => match kernel {
            Kernel::Frozen if ours => Plan::Thaw(Thaw::Unpaused),
            // Frozen by someone else (`stasis pause --k8s-pod` on the node):
            // not the agent's to thaw.
            Kernel::Frozen => Plan::Nothing,
            Kernel::Thawed | Kernel::Missing => {
                if ours || matches!(view.state, Some(State::Paused | State::Failed)) {
                    Plan::Record(State::Running)
                } else {
                    Plan::Nothing
                }
            }
        },
    }
}

/// When to look at the pod again without a change to it: at its lease's
/// end, or after `resync` (a thaw from outside, a cgroup that appeared).
pub fn requeue(view: &View, now: SystemTime, resync: Duration) -> Duration {
    view.expiry()
        .map(|t| t.duration_since(now).unwrap_or_default())
        .map_or(resync, |left| left.min(resync))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::annotations::{timestamp, view, LEASE, PAUSE, PAUSED_AT, STATE};

    #[test]
    fn decisions() {
        let now = SystemTime::now();
        let ago = timestamp(now - Duration::from_secs(60));
        let pause = view(&[(PAUSE, "true")]);
        let held = view(&[(PAUSE, "true"), (STATE, "paused"), (PAUSED_AT, &ago)]);
        let crashed_before_answer = view(&[(PAUSE, "true")]);
        let released = view(&[(STATE, "paused"), (PAUSED_AT, &ago)]);
        let expired = view(&[
            (PAUSE, "true"),
            (LEASE, "30s"),
            (STATE, "paused"),
            (PAUSED_AT, &ago),
        ]);
        let running = view(&[(LEASE, "30s"), (STATE, "running")]);
        use Kernel::*;
        let cases: &[(&View, bool, Kernel, Plan)] = &[
            (
                &pause,
                false,
                Thawed,
                Plan::Freeze {
                    reset_connections: false,
                },
            ),
            (
                &pause,
                false,
                Missing,
                Plan::Fail("the pod has no cgroup on this node".into()),
            ),
            (&held, false, Frozen, Plan::Nothing),
            (
                &crashed_before_answer,
                false,
                Frozen,
                Plan::Record(State::Paused),
            ),
            (
                &held,
                false,
                Thawed,
                Plan::Freeze {
                    reset_connections: false,
                },
            ),
            (&released, false, Frozen, Plan::Thaw(Thaw::Unpaused)),
            (&released, false, Thawed, Plan::Record(State::Running)),
            (&expired, false, Frozen, Plan::Thaw(Thaw::LeaseEnded)),
            (&expired, false, Thawed, Plan::Record(State::Running)),
            (&running, false, Thawed, Plan::Nothing),
            // Frozen by someone else: left alone, unless the pod is going.
            (&running, false, Frozen, Plan::Nothing),
            (&running, true, Frozen, Plan::Thaw(Thaw::Deleting)),
            (&held, true, Frozen, Plan::Thaw(Thaw::Deleting)),
            (&held, true, Missing, Plan::Nothing),
        ];
        for (i, (v, deleting, kernel, want)) in cases.iter().enumerate() {
            assert_eq!(
                &plan(v, *deleting, *kernel, now),
                want,
                "case {i}: {v:?} {kernel:?}"
            );
        }
        let bad = view(&[(PAUSE, "maybe")]);
        assert!(matches!(plan(&bad, false, Thawed, now), Plan::Fail(_)));
        let answered = view(&[(PAUSE, "maybe"), (STATE, "failed")]);
        assert_eq!(plan(&answered, false, Thawed, now), Plan::Nothing);
    }

    #[test]
    fn the_kernel_is_asked_only_about_pods_that_concern_stasis() {
        assert!(!needs_kernel(&View::of(None), false));
        assert!(needs_kernel(&View::of(None), true));
        assert!(needs_kernel(&view(&[(STATE, "running")]), false));
    }

    #[test]
    fn requeue_at_the_lease_end() {
        let now = SystemTime::now();
        let resync = Duration::from_secs(300);
        let at = timestamp(now);
        let leased = view(&[(PAUSE, "true"), (LEASE, "90s"), (PAUSED_AT, &at)]);
        let left = requeue(&leased, now, resync);
        assert!(
            left <= Duration::from_secs(90) && left > Duration::from_secs(88),
            "{left:?}"
        );
        assert_eq!(requeue(&view(&[(PAUSE, "true")]), now, resync), resync);
    }
}
