//! stasis on Kubernetes: a node agent that pauses pods on request, and the
//! kubectl plugin that asks it to.
//!
//! - [`annotations`]: the request (`stasis.dev/pause`, `stasis.dev/lease`,
//!   `stasis.dev/reset-connections`) and the answer (`stasis.dev/state`,
//!   `stasis.dev/paused-at`, `stasis.dev/message`). The pod object holds the
//!   whole state of a pause: the agent keeps none of its own.
//! - [`plan`]: the step for one pod, from its annotations and the kernel's
//!   answer alone; [`reconcile`]: that step taken (the [`freezer`] crate on
//!   the pod's cgroup, found by UID), answered with a patch and an Event.
//!   `stasis-agent` runs it in a kube-rs `Controller` over the pods of its
//!   node (`spec.nodeName`), from the host's cgroup namespace ([`hostns`]).
//! - [`resolve`]: the pods a `kubectl stasis` target names, through
//!   ownerReferences; [`plugin`]: its patches, its wait for the agents'
//!   answers, and its liveness-probe warnings.
//!
//! ```no_run
//! # async fn demo(client: kube::Client) -> agent::Result<()> {
//! use agent::resolve::{self, Selection};
//! let pods = resolve::pods(&client, "default", &Selection::parse("deployment/web")?).await?;
//! for pod in &pods {
//!     for warning in agent::plugin::liveness_warnings(pod) {
//!         eprintln!("warning: {warning}");
//!     }
//! }
//! # Ok(()) }
//! ```
//!
//! What it does not do: pause a pod on a node without an agent (the request
//! then stays unanswered, and the plugin says so), or move any process: a
//! pod is frozen at its own cgroup node. The agent thaws only pods it froze
//! (`stasis.dev/paused-at` says so), except a pod being deleted, which it
//! thaws whoever froze it: a frozen pod would hang the kubelet's stop.

#![deny(unsafe_code)]

pub mod annotations;
mod error;
pub mod hostns;
pub mod plan;
pub mod plugin;
pub mod reconcile;
pub mod resolve;

pub use error::{Error, Result};
