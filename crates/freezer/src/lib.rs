//! Freeze and thaw cgroups through the kernel's cgroup freezer, v1 and v2.
//!
//! This crate finds the host's cgroup hierarchies, resolves what a user names
//! (a PID, a cgroup path, a container started by another runtime, a
//! Kubernetes pod) to a cgroup directory, and pauses, unpauses and
//! reports it, with the kernel's own answer as the truth:
//!
//! - [`Hierarchies`] — the v1 freezer and cgroup2 mounts seen in
//!   `/proc/self/mountinfo` (v2-only, v1-only or hybrid hosts),
//!   [`Hierarchies::resolve`] from a [`Target`] to a checked [`Cgroup`],
//!   [`Hierarchies::place`] to the target's [`Placement`] in every mounted
//!   hierarchy (on a hybrid host a freeze in either stops it), and
//!   [`Hierarchies::cgroup_at_dir`] for a caller that knows the directory.
//! - [`Freezer`] — [`Freezer::freeze`], [`Freezer::thaw`], [`Freezer::state`]
//!   with docker's semantics (already paused, not paused), a timeout after
//!   which a freeze is undone, and the [`Strategy`]: direct, or the
//!   [`subgroup`] strategy for a cgroup whose own freeze file cannot be
//!   written (a cgroup namespace root under `nsdelegate`); over a
//!   [`Placement`], [`Freezer::pause`] (already paused if frozen in any
//!   hierarchy), [`Freezer::unpause`] (thaws whichever holds it) and
//!   [`Freezer::states`]; [`Freezer::thaw_k8s_pod`], the idempotent thaw of
//!   a Kubernetes pod before its deletion.
//! - [`anchor`] — an empty v1 cgroup held frozen, which keeps the
//!   kernel's freezer switched on between the pauses of a long-lived
//!   caller (the static key every first freeze and last thaw toggles).
//! - [`tree`] — a cgroup subtree: its processes, killing them all, removing
//!   it bottom-up; [`proc`] — `/proc/PID/cgroup`, and [`proc::stat`], the
//!   one parser of `/proc/PID/stat`.
//! - [`runtime`] — the cgroup naming conventions of runc, crun, docker,
//!   podman, containerd, CRI-O and the kubelet, and runc/crun state
//!   directories, behind [`Target::ContainerId`], [`Target::RuntimeState`]
//!   and [`Target::K8sPod`].
//! - [`open`] — the hierarchies to use, mounting one privately when none is
//!   visible (inside a container), and [`safety`], the rules that refuse the
//!   root cgroup, the host's init and the caller's own cgroup.
//!
//! ```no_run
//! use std::path::Path;
//! use freezer::{Choice, Freezer, Target};
//!
//! let (hierarchies, _mount) = freezer::open(Path::new("/proc"), Choice::Auto, Path::new("/run"))?;
//! let cgroup = hierarchies.resolve(&Target::Pid(4242), Choice::Auto)?;
//! let freezer = Freezer::new();
//! freezer.freeze(&hierarchies, &cgroup)?;
//! assert!(freezer.state(&cgroup)?.is_frozen());
//! freezer.thaw(&cgroup)?;
//!
//! // The same process in every hierarchy it is in: paused if frozen in any.
//! let placement = hierarchies.place(&Target::Pid(4242), Choice::Auto)?;
//! freezer.pause(&hierarchies, &placement)?;
//! for (cgroup, outcome) in freezer.unpause(&placement)? {
//!     println!("thawed {} ({}): {}", cgroup.path, cgroup.version(), outcome.state.phase);
//! }
//! # Ok::<(), freezer::Error>(())
//! ```
//!
//! Kernel paths (`/proc`, mount points) are parameters, so tests can point
//! the crate at a fake tree. Operations are synchronous and short; an async
//! service runs them on a blocking thread.
//!
//! It deliberately does not know about stasis's own pods and containers
//! (the `sandbox` crate does), speaks no runtime's API (other runtimes'
//! containers are found by their cgroup names alone), keeps no state of its own (a subgroup in progress is
//! recorded by the child cgroup itself), and does not lock against a
//! concurrent caller: two callers racing on one cgroup get the kernel's
//! last-writer-wins.

#![deny(unsafe_code)]

pub mod anchor;
mod cgroup;
mod deadline;
mod direct;
mod error;
mod freezer;
mod hierarchies;
mod kernfs;
#[allow(unsafe_code)]
mod mount;
pub mod mountinfo;
pub mod proc;
pub mod runtime;
pub mod safety;
mod state;
pub mod subgroup;
pub mod tree;
mod v1;
mod v2;

pub use cgroup::{Cgroup, Choice, Hierarchy, Layout, Placement, Target, Version};
pub use error::{Error, Refusal, Result};
pub use freezer::{Freezer, Outcome, Strategy, DEFAULT_TIMEOUT};
pub use hierarchies::Hierarchies;
pub use mount::{open, PrivateMount};
pub use state::{FrozenBy, Phase, State};
