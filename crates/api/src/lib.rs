//! The Docker Engine API subset that `stasis serve` speaks on a Unix
//! socket, so that the docker CLI, docker-py and bollard can pause, list,
//! inspect, stop and remove stasis containers on the same store and locks
//! as the CLI: what one does, the other sees at once.
//!
//! - [`serve`] — binds the socket (0660, root and a group), starts the
//!   runtime and the spawner thread, serves until SIGTERM or SIGINT, then
//!   drains. [`Config`] and [`Limits`] say how.
//! - [`Backend`] — the verbs that change state, which the `stasis` binary
//!   implements with the very code its CLI verbs run.
//! - [`Policy`] and [`Peer`] — per-verb permissions from the caller's
//!   `SO_PEERCRED` credentials; every refusal and every change is a line of
//!   [`sandbox::audit`].
//! - [`shape`] and [`human`] — containers in docker's JSON shapes and
//!   words, shared with `stasis ps` and `stasis inspect`.
//! - [`version`] — `/vX.Y` prefixes and the versions accepted.
//! - [`ApiError`] — a request's failure: docker's status and
//!   `{"message": ...}`; internals go to the log, never to the client.
//!
//! ```no_run
//! # fn demo(backend: std::sync::Arc<dyn api::Backend>) -> Result<(), Box<dyn std::error::Error>> {
//! let sandbox = sandbox::Sandbox::open("/run/stasis".as_ref())?;
//! let config = api::Config {
//!     socket: "/run/stasis.sock".into(),
//!     group: None,
//!     policy: api::Policy::default(),
//!     audit_log: sandbox::audit::default_path("/run/stasis".as_ref()),
//!     limits: api::Limits::default(),
//!     proc_root: "/proc".into(),
//!     freezer_anchor: true,
//! };
//! api::serve(config, sandbox, backend, |_| {})?;
//! # Ok(()) }
//! ```
//!
//! Exec instances (`POST /containers/{id}/exec`, `/exec/{id}/...`) are
//! the only state of its own, in memory, their processes dying with the
//! service; attach and exec carry stdin and TTYs over the upgraded
//! connection. It does not listen on TCP or pull images from registries:
//! every request reads the store afresh.

#![deny(unsafe_code)]

mod backend;
mod body;
mod create;
mod error;
mod exec;
mod hijack;
pub mod human;
// SO_PEERGROUPS, which rustix does not wrap: one getsockopt.
#[allow(unsafe_code)]
mod peer;
mod policy;
mod query;
mod routes;
mod server;
pub mod shape;
pub mod version;

pub use backend::{Backend, PauseOptions};
pub use create::{Confinement, CreateOptions};
pub use error::{capitalized, format_chain, ApiError, Error};
pub use hyper::StatusCode;
pub use peer::Peer;
pub use policy::{gid_of, Policy, Rule, Verb, Who};
pub use routes::MULTIPLEXED;
pub use server::{bind, serve, Config, Limits};
