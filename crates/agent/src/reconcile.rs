//! One pass over one pod: read its annotations, ask the kernel, take the
//! [`plan`]'s step, answer in annotations and an Event.
//!
//! The pod's cgroup is found by its UID ([`freezer::Target::K8sPod`], the
//! kubelet's cgroupfs and systemd names) in every hierarchy it is in, and
//! frozen at that node with the [`freezer`] crate: the sandbox and all its
//! containers in one write, no process moved. Kernel work runs on a
//! blocking thread; it is bounded by the freezer's timeout.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use connections::fence::Fences;
use freezer::{Choice, Freezer, Hierarchies, Placement, Target};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType, Recorder};
use kube::{Resource, ResourceExt};

use crate::annotations::{
    self, Patch, Request, State, View, LEASE, PAUSE, PAUSED_AT, RESET_CONNECTIONS,
};
use crate::error::{Error, Result};
use crate::plan::{self, Kernel, Plan, Thaw};

/// What every pass shares.
pub struct Context {
    pub client: kube::Client,
    pub hierarchies: Hierarchies,
    pub freezer: Freezer,
    pub recorder: Recorder,
    /// How often a pod that concerns stasis is looked at again unasked.
    pub resync: Duration,
    /// Where the records of `stasis.dev/reset-connections` fences are kept
    /// (the host's `/run/stasis`, which `stasis` itself uses), so that a
    /// restarted agent, or `stasis unpause` on the node, removes the rules.
    pub state_root: PathBuf,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("hierarchies", &self.hierarchies)
            .field("freezer", &self.freezer)
            .field("resync", &self.resync)
            .field("state_root", &self.state_root)
            .finish_non_exhaustive()
    }
}

/// The controller's reconcile function.
pub async fn reconcile(pod: Arc<Pod>, ctx: Arc<Context>) -> Result<Action> {
    let view = View::of(pod.metadata.annotations.as_ref());
    let deleting = pod.metadata.deletion_timestamp.is_some();
    if !plan::needs_kernel(&view, deleting) {
        return Ok(Action::await_change());
    }
    let uid = pod.uid().ok_or_else(|| Error::NoUid {
        pod: pod.name_any(),
    })?;
    let placement = locate(&ctx, &uid).await?;
    let kernel = match &placement {
        None => Kernel::Missing,
        Some(p) => kernel_state(&ctx, p.clone()).await?,
    };
    let now = SystemTime::now();
    let step = plan::plan(&view, deleting, kernel, now);
    tracing::debug!(pod = %pod.name_any(), %uid, ?kernel, ?step, "reconcile");
    let next = match &step {
        Plan::Nothing => None,
        Plan::Freeze { reset_connections } => {
            let placement = placement.expect("a thawed pod has a cgroup");
            Some(freeze(&ctx, &pod, placement, *reset_connections, now).await)
        }
        Plan::Thaw(why) => {
            let placement = placement.expect("a frozen pod has a cgroup");
            Some(thaw(&ctx, &pod, placement, *why).await)
        }
        Plan::Record(State::Paused) => Some(Outcome::paused(
            "found frozen; the pause is the agent's now",
            view.paused_at.unwrap_or(now),
        )),
        Plan::Record(_) => {
            let lease_ended = view.expiry().is_some_and(|t| t <= now);
            let message = if lease_ended {
                "the lease ended; found thawed already"
            } else {
                "found running"
            };
            Some(Outcome::running(message, lease_ended))
        }
        Plan::Fail(why) => Some(Outcome::failed(why.clone())),
    };
    let Some(outcome) = next else {
        return Ok(Action::requeue(plan::requeue(&view, now, ctx.resync)));
    };
    let failed_again = outcome.state == State::Failed
        && view.state == Some(State::Failed)
        && pod.annotations().get(annotations::MESSAGE) == Some(&outcome.message);
    // The same failure again (a pod whose cgroup is not there yet) is
    // neither patched nor told again; it is retried.
    if !failed_again {
        answer(&ctx, &pod, &outcome, deleting).await?;
    }
    // The patch's watch event brings the pod back at once; what nothing
    // else would trigger is the lease's end, and a retry of a failure.
    Ok(Action::requeue(match (outcome.state, outcome.paused_at) {
        (State::Failed, _) => ctx.resync.min(Duration::from_secs(30)),
        (State::Paused, Some(at)) => match &view.request {
            Request::Pause {
                lease: Some(lease), ..
            } => (at + *lease)
                .duration_since(now)
                .unwrap_or_default()
                .min(ctx.resync),
            _ => ctx.resync,
        },
        _ => ctx.resync,
    }))
}

/// What the controller does after a failed pass: try again soon.
pub fn error_policy(pod: Arc<Pod>, err: &Error, _ctx: Arc<Context>) -> Action {
    tracing::warn!(pod = %pod.name_any(), error = %format!("{err:#}"), "reconcile failed");
    Action::requeue(Duration::from_secs(10))
}

/// The answer of one step, before it is written.
#[derive(Debug)]
struct Outcome {
    state: State,
    message: String,
    patch: Patch,
    event: Option<(EventType, &'static str)>,
    /// When the pause began, for a pause.
    paused_at: Option<SystemTime>,
}

impl Outcome {
    fn paused(message: &str, at: SystemTime) -> Self {
        Outcome {
            state: State::Paused,
            message: message.to_owned(),
            patch: Patch::new().set(PAUSED_AT, annotations::timestamp(at)),
            event: None,
            paused_at: Some(at),
        }
    }

    /// Running again; `lease_ended` also removes the request, so the pod
    /// is not frozen again.
    fn running(message: &str, lease_ended: bool) -> Self {
        let mut patch = Patch::new().remove(PAUSED_AT);
        if lease_ended {
            patch = patch.remove(PAUSE).remove(LEASE).remove(RESET_CONNECTIONS);
        }
        Outcome {
            state: State::Running,
            message: message.to_owned(),
            patch,
            event: None,
            paused_at: None,
        }
    }

    fn failed(message: String) -> Self {
        Outcome {
            state: State::Failed,
            message,
            patch: Patch::new(),
            event: Some((EventType::Warning, "PauseFailed")),
            paused_at: None,
        }
    }

    fn with_event(mut self, kind: EventType, reason: &'static str) -> Self {
        self.event = Some((kind, reason));
        self
    }
}

/// The pod's cgroups, `None` when it has none on this node.
async fn locate(ctx: &Context, uid: &str) -> Result<Option<Placement>> {
    let hierarchies = ctx.hierarchies.clone();
    let target = Target::K8sPod(uid.to_owned());
    let found = blocking(move || hierarchies.place(&target, Choice::Auto)).await?;
    match found {
        Ok(p) => Ok(Some(p)),
        Err(e) if e.is_not_found() => Ok(None),
        Err(source) => Err(Error::Locate {
            uid: uid.to_owned(),
            source,
        }),
    }
}

async fn kernel_state(ctx: &Context, placement: Placement) -> Result<Kernel> {
    let freezer = ctx.freezer.clone();
    let path = placement.chosen.path.clone();
    let states = blocking(move || {
        freezer
            .states(&placement)
            .map(|s| s.iter().any(|(_, st)| st.is_frozen()))
    })
    .await?;
    match states {
        Ok(true) => Ok(Kernel::Frozen),
        Ok(false) => Ok(Kernel::Thawed),
        Err(source) => Err(Error::State { path, source }),
    }
}

async fn freeze(
    ctx: &Context,
    pod: &Pod,
    placement: Placement,
    reset_connections: bool,
    now: SystemTime,
) -> Outcome {
    let freezer = ctx.freezer.clone();
    let hierarchies = ctx.hierarchies.clone();
    let cgroup = placement.chosen.clone();
    let root = ctx.state_root.clone();
    type Reset = Option<connections::fence::Outcome>;
    type Undone = (
        connections::Error,
        Option<freezer::Error>,
        Option<connections::Error>,
    );
    let result = blocking(
        move || -> freezer::Result<std::result::Result<Reset, Undone>> {
            freezer.pause(&hierarchies, &placement)?;
            if !reset_connections {
                return Ok(Ok(None));
            }
            // Frozen first, so that no process can open a connection behind the
            // reset; a reset that fails undoes the pause and the fence.
            let fences = Fences::new(&root);
            match fences.reset(&placement.chosen) {
                Ok(reset) => Ok(Ok(Some(reset))),
                Err(e) => {
                    let thawed = freezer.unpause(&placement).map(drop);
                    let unfenced = fences.remove(&placement.chosen, None).map(drop);
                    Ok(Err((e, thawed.err(), unfenced.err())))
                }
            }
        },
    )
    .await;
    match result {
        Ok(Ok(Ok(reset))) => {
            let mut message = format!("frozen ({} {})", cgroup.version(), cgroup.path);
            if let Some(reset) = reset {
                message = format!("{message}; {}", reset.describe("the pod"));
            }
            tracing::info!(pod = %pod.name_any(), cgroup = %cgroup.path, "paused");
            Outcome::paused(&message, now).with_event(EventType::Normal, "Paused")
        }
        Ok(Ok(Err((e, thaw_err, fence_err)))) => {
            let mut message = format!("resetting the connections: {}", chain(&e));
            match (thaw_err, fence_err) {
                (None, None) => message.push_str("; thawed again"),
                (Some(t), _) => {
                    message.push_str(&format!("; thawing it again failed: {}", chain(&t)))
                }
                (None, Some(f)) => message.push_str(&format!("; thawed again, but {}", chain(&f))),
            }
            Outcome::failed(message)
        }
        Ok(Err(freezer::Error::AlreadyPaused { .. })) => {
            let message = format!("frozen ({} {}) already", cgroup.version(), cgroup.path);
            Outcome::paused(&message, now).with_event(EventType::Normal, "Paused")
        }
        Ok(Err(e)) => Outcome::failed(format!("freezing {}: {}", cgroup.path, chain(&e))),
        Err(e) => Outcome::failed(chain(&e)),
    }
}

async fn thaw(ctx: &Context, pod: &Pod, placement: Placement, why: Thaw) -> Outcome {
    let freezer = ctx.freezer.clone();
    let path = placement.chosen.path.clone();
    let root = ctx.state_root.clone();
    let result = blocking(move || {
        let thawed = freezer.unpause(&placement).map(|v| v.len());
        // The fences of a pause in either tree, whatever the thaw did.
        let fences = Fences::new(&root);
        let unfenced: Vec<String> = placement
            .all()
            .filter_map(|cg| fences.remove(cg, None).err())
            .map(|e| chain(&e))
            .collect();
        (thawed, unfenced)
    })
    .await
    .map(|(thawed, unfenced)| {
        if !unfenced.is_empty() {
            tracing::warn!(cgroup = %path, errors = ?unfenced, "removing a fence failed");
        }
        thawed
    });
    match result {
        Ok(Ok(_)) | Ok(Err(freezer::Error::NotPaused { .. })) => {
            tracing::info!(pod = %pod.name_any(), cgroup = %path, ?why, "unpaused");
            let (message, reason) = match why {
                Thaw::Unpaused => ("thawed", "Unpaused"),
                Thaw::LeaseEnded => ("thawed: the lease ended", "LeaseEnded"),
                Thaw::Deleting => ("thawed: the pod is being deleted", "ThawedForDeletion"),
            };
            Outcome::running(message, why == Thaw::LeaseEnded).with_event(EventType::Normal, reason)
        }
        Ok(Err(e)) => Outcome::failed(format!("thawing {path}: {}", chain(&e))),
        Err(e) => Outcome::failed(chain(&e)),
    }
}

/// Writes the answer: the annotations, then an Event.
async fn answer(ctx: &Context, pod: &Pod, outcome: &Outcome, deleting: bool) -> Result<()> {
    let name = pod.name_any();
    let namespace = pod.namespace().unwrap_or_else(|| "default".into());
    let patch = outcome
        .patch
        .clone()
        .answer(outcome.state, &outcome.message);
    let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), &namespace);
    let sent = pods
        .patch(
            &name,
            &PatchParams::default(),
            &kube::api::Patch::Merge(patch.to_json()),
        )
        .await;
    match sent {
        Ok(_) => {}
        // A pod being deleted may be gone by now; the thaw is what mattered.
        Err(kube::Error::Api(e)) if deleting && e.code == 404 => return Ok(()),
        Err(source) => {
            return Err(Error::Patch {
                namespace,
                pod: name,
                source: Box::new(source),
            })
        }
    }
    if let Some((kind, reason)) = outcome.event {
        let event = Event {
            type_: kind,
            reason: reason.into(),
            note: Some(outcome.message.clone()),
            action: match outcome.state {
                State::Paused => "Pause".into(),
                _ => "Unpause".into(),
            },
            secondary: None,
        };
        // An Event is for people; a lost one changes nothing.
        if let Err(e) = ctx.recorder.publish(&event, &pod.object_ref(&())).await {
            tracing::warn!(pod = %name, error = %e, "recording an event failed");
        }
    }
    Ok(())
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::Task(e.to_string()))
}

/// An error and its causes on one line.
fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}
