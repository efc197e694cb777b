//! The annotations a pause is asked for and answered with: the whole state
//! of a pause lives on the pod object, so an agent that restarts has
//! nothing to lose.
//!
//! Asked for (by `kubectl stasis` or anyone who can patch the pod):
//! - [`PAUSE`] `"true"`: keep the pod frozen; absent (or `"false"`): not.
//! - [`LEASE`] a duration (`90s`, `10m`, up to 24 h): the pause ends that
//!   long after [`PAUSED_AT`], and the agent then removes the request.
//! - [`RESET_CONNECTIONS`] `"true"`: once frozen, reset the pod's TCP
//!   connections and refuse new ones until it is thawed.
//!
//! Answered (by the agent on the pod's node):
//! - [`STATE`] `paused`, `running` or `failed`.
//! - [`PAUSED_AT`] when the agent froze it (RFC 3339); present exactly while
//!   the agent holds the pod frozen, so it thaws only what it froze.
//! - [`MESSAGE`] one line: what was done, or why it failed.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use serde_json::{json, Map, Value};

/// Asks for a pause: `"true"`.
pub const PAUSE: &str = "stasis.dev/pause";
/// How long the pause may last.
pub const LEASE: &str = "stasis.dev/lease";
/// Reset the pod's connections once it is frozen: `"true"`.
pub const RESET_CONNECTIONS: &str = "stasis.dev/reset-connections";
/// The agent's answer: `paused`, `running` or `failed`.
pub const STATE: &str = "stasis.dev/state";
/// When the agent froze the pod.
pub const PAUSED_AT: &str = "stasis.dev/paused-at";
/// What the agent did, or why it could not.
pub const MESSAGE: &str = "stasis.dev/message";

/// Every annotation this module names.
pub const ALL: [&str; 6] = [PAUSE, LEASE, RESET_CONNECTIONS, STATE, PAUSED_AT, MESSAGE];

/// The agent's answer, as [`STATE`] holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Paused,
    Running,
    Failed,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Paused => "paused",
            State::Running => "running",
            State::Failed => "failed",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "paused" => Some(State::Paused),
            "running" => Some(State::Running),
            "failed" => Some(State::Failed),
            _ => None,
        }
    }
}

/// What the pod asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// No pause.
    Run,
    /// A pause, for at most `lease` after it began.
    Pause {
        lease: Option<Duration>,
        reset_connections: bool,
    },
    /// The annotations cannot be read; why, for [`MESSAGE`].
    Invalid(String),
}

/// A pod's stasis annotations, read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct View {
    pub request: Request,
    /// The recorded answer (an unknown value reads as none).
    pub state: Option<State>,
    /// When the agent froze it; `None` if it holds no pause.
    pub paused_at: Option<SystemTime>,
    /// Whether any stasis annotation is there at all.
    pub any: bool,
}

impl View {
    /// Reads the annotations of a pod (`None`: it has none).
    pub fn of(annotations: Option<&BTreeMap<String, String>>) -> Self {
        let empty = BTreeMap::new();
        let a = annotations.unwrap_or(&empty);
        let get = |k: &str| a.get(k).map(String::as_str);
        let flag = |k: &'static str| match get(k) {
            None | Some("false") => Ok(false),
            Some("true") => Ok(true),
            Some(other) => Err(format!("{k} is {other:?}: give \"true\" or \"false\"")),
        };
        let request = match (flag(PAUSE), flag(RESET_CONNECTIONS)) {
            (Err(e), _) | (Ok(true), Err(e)) => Request::Invalid(e),
            (Ok(false), _) => Request::Run,
            (Ok(true), Ok(reset_connections)) => match get(LEASE).map(sandbox::time::parse_lease) {
                None => Request::Pause {
                    lease: None,
                    reset_connections,
                },
                Some(Ok(d)) => Request::Pause {
                    lease: Some(d),
                    reset_connections,
                },
                Some(Err(e)) => Request::Invalid(format!("{LEASE}: {e}")),
            },
        };
        View {
            request,
            state: get(STATE).and_then(State::parse),
            // An unreadable time is a pause the agent holds all the same;
            // its lease then runs from now.
            paused_at: get(PAUSED_AT)
                .map(|s| sandbox::time::rfc3339(s).unwrap_or_else(SystemTime::now)),
            any: ALL.iter().any(|k| a.contains_key(*k)),
        }
    }

    /// When the lease ends, if the pod is paused under one.
    pub fn expiry(&self) -> Option<SystemTime> {
        match (&self.request, self.paused_at) {
            (
                Request::Pause {
                    lease: Some(lease), ..
                },
                Some(at),
            ) => Some(at + *lease),
            _ => None,
        }
    }
}

/// A merge patch of a pod's annotations; `None` removes one.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Patch(Map<String, Value>);

impl Patch {
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `key` to `value`.
    pub fn set(mut self, key: &str, value: impl Into<String>) -> Self {
        self.0.insert(key.to_owned(), Value::String(value.into()));
        self
    }

    /// Removes `key`.
    pub fn remove(mut self, key: &str) -> Self {
        self.0.insert(key.to_owned(), Value::Null);
        self
    }

    /// The answer: state and message.
    pub fn answer(self, state: State, message: &str) -> Self {
        self.set(STATE, state.as_str()).set(MESSAGE, message)
    }

    /// The JSON merge patch (RFC 7386) of the pod object.
    pub fn to_json(&self) -> Value {
        json!({ "metadata": { "annotations": Value::Object(self.0.clone()) } })
    }

    /// The value this patch gives `key`: `Some(None)` when it removes it.
    pub fn get(&self, key: &str) -> Option<Option<&str>> {
        self.0.get(key).map(Value::as_str)
    }
}

/// An RFC 3339 time, as [`PAUSED_AT`] holds it.
pub fn timestamp(t: SystemTime) -> String {
    sandbox::time::rfc3339_millis(t)
}

/// The view of a pod with these annotations, for the unit tests.
#[cfg(test)]
pub(crate) fn view(pairs: &[(&str, &str)]) -> View {
    let map: BTreeMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    View::of(Some(&map))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_read_from_the_annotations() {
        assert_eq!(View::of(None).request, Request::Run);
        assert!(!View::of(None).any);
        assert!(view(&[("other", "x")]).request == Request::Run);
        assert_eq!(
            view(&[(PAUSE, "true"), (LEASE, "90s"), (RESET_CONNECTIONS, "true")]).request,
            Request::Pause {
                lease: Some(Duration::from_secs(90)),
                reset_connections: true
            }
        );
        assert_eq!(view(&[(PAUSE, "false")]).request, Request::Run);
        for bad in [
            &[(PAUSE, "yes")][..],
            &[(PAUSE, "true"), (LEASE, "forever")],
            &[(PAUSE, "true"), (LEASE, "0")],
            &[(PAUSE, "true"), (LEASE, "25h")],
            &[(PAUSE, "true"), (RESET_CONNECTIONS, "1")],
        ] {
            assert!(matches!(view(bad).request, Request::Invalid(_)), "{bad:?}");
        }
    }

    #[test]
    fn the_lease_runs_from_the_recorded_pause() {
        let at = "2026-12-02T03:00:00.000Z";
        let v = view(&[
            (PAUSE, "true"),
            (LEASE, "10m"),
            (PAUSED_AT, at),
            (STATE, "paused"),
        ]);
        assert_eq!(v.state, Some(State::Paused));
        let expiry = v.expiry().expect("a lease");
        assert_eq!(timestamp(expiry), "2026-12-02T03:10:00.000Z");
        assert_eq!(view(&[(PAUSE, "true"), (PAUSED_AT, at)]).expiry(), None);
        assert_eq!(view(&[(PAUSE, "true"), (LEASE, "10m")]).expiry(), None);
    }

    #[test]
    fn a_patch_sets_and_removes_annotations() {
        let p = Patch::new()
            .answer(State::Running, "thawed")
            .remove(PAUSED_AT);
        assert_eq!(
            p.to_json(),
            json!({"metadata": {"annotations": {
                STATE: "running", MESSAGE: "thawed", PAUSED_AT: null
            }}})
        );
        assert_eq!(p.get(PAUSED_AT), Some(None));
        assert_eq!(p.get(STATE), Some(Some("running")));
        assert_eq!(p.get(PAUSE), None);
    }
}
