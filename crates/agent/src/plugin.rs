//! What `kubectl stasis` sends and waits for.

use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;

use crate::annotations::{
    Patch, State, View, LEASE, MESSAGE, PAUSE, PAUSED_AT, RESET_CONNECTIONS, STATE,
};

/// The request a `pause` patches in. The old answer is removed with it, so
/// that only a fresh one counts.
pub fn pause_patch(lease: Option<Duration>, reset_connections: bool) -> Patch {
    let mut patch = Patch::new()
        .set(PAUSE, "true")
        .remove(STATE)
        .remove(MESSAGE);
    patch = match lease {
        Some(d) => patch.set(LEASE, format_duration(d)),
        None => patch.remove(LEASE),
    };
    if reset_connections {
        patch.set(RESET_CONNECTIONS, "true")
    } else {
        patch.remove(RESET_CONNECTIONS)
    }
}

/// The request an `unpause` patches in: no pause, no old answer.
pub fn unpause_patch() -> Patch {
    Patch::new()
        .remove(PAUSE)
        .remove(LEASE)
        .remove(RESET_CONNECTIONS)
        .remove(STATE)
        .remove(MESSAGE)
}

/// A duration as the lease annotation takes it: whole seconds, or
/// milliseconds.
fn format_duration(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

/// The agent's answer to a request, once there is one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// Done as asked.
    Done,
    /// The agent could not; its message.
    Failed(String),
}

/// The answer `pod` holds to a pause (`pausing`) or an unpause.
pub fn answer(pod: &Pod, pausing: bool) -> Option<Answer> {
    let view = View::of(pod.metadata.annotations.as_ref());
    let message = || {
        pod.annotations()
            .get(MESSAGE)
            .cloned()
            .unwrap_or_else(|| "no message".into())
    };
    match view.state {
        Some(State::Failed) => Some(Answer::Failed(message())),
        Some(State::Paused) if pausing => Some(Answer::Done),
        Some(State::Running) if !pausing => Some(Answer::Done),
        // Never paused by the agent: nothing to undo.
        None if !pausing && !pod.annotations().contains_key(PAUSED_AT) => Some(Answer::Done),
        _ => None,
    }
}

/// A warning for each container whose liveness probe a pause will fail: the
/// kubelet restarts the container once the probe has failed
/// `failureThreshold` times, `periodSeconds` apart (3 and 10 s by default).
pub fn liveness_warnings(pod: &Pod) -> Vec<String> {
    let Some(spec) = &pod.spec else {
        return Vec::new();
    };
    spec.containers
        .iter()
        .filter_map(|c| {
            let probe = c.liveness_probe.as_ref()?;
            let period = probe.period_seconds.unwrap_or(10);
            let failures = probe.failure_threshold.unwrap_or(3);
            Some(format!(
                "pod/{} container {} has a liveness probe: the kubelet restarts it after about {}s paused (periodSeconds {period} x failureThreshold {failures})",
                pod.name_any(),
                c.name,
                i64::from(period) * i64::from(failures)
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_pause_request_clears_the_old_answer() {
        let p = pause_patch(Some(Duration::from_secs(600)), true).to_json();
        assert_eq!(
            p,
            json!({"metadata": {"annotations": {
                PAUSE: "true", LEASE: "600s", RESET_CONNECTIONS: "true", STATE: null, MESSAGE: null
            }}})
        );
        let p = pause_patch(Some(Duration::from_millis(1500)), false);
        assert_eq!(p.get(LEASE), Some(Some("1500ms")));
        assert_eq!(p.get(RESET_CONNECTIONS), Some(None));
    }

    fn pod(value: serde_json::Value) -> Pod {
        serde_json::from_value(value).expect("a pod")
    }

    #[test]
    fn answers() {
        let with = |a: serde_json::Value| pod(json!({"metadata": {"name": "p", "annotations": a}}));
        assert_eq!(
            answer(&with(json!({STATE: "paused"})), true),
            Some(Answer::Done)
        );
        assert_eq!(answer(&with(json!({PAUSE: "true"})), true), None);
        assert_eq!(
            answer(&with(json!({STATE: "failed", MESSAGE: "no cgroup"})), true),
            Some(Answer::Failed("no cgroup".into()))
        );
        assert_eq!(answer(&with(json!({})), false), Some(Answer::Done));
        assert_eq!(
            answer(&with(json!({PAUSED_AT: "2026-12-02T03:00:00Z"})), false),
            None
        );
        assert_eq!(
            answer(&with(json!({STATE: "running"})), false),
            Some(Answer::Done)
        );
    }

    #[test]
    fn liveness_probes_are_warned_about() {
        let p = pod(json!({
            "metadata": {"name": "web-1"},
            "spec": {"containers": [
                {"name": "app", "livenessProbe": {"periodSeconds": 5, "httpGet": {"port": 80}}},
                {"name": "sidecar"}
            ]}
        }));
        let w = liveness_warnings(&p);
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(
            w[0].contains("container app") && w[0].contains("about 15s"),
            "{}",
            w[0]
        );
    }
}
