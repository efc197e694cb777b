//! A paused target's TCP sockets: list them, destroy its connections so
//! that its peers learn at once, and refuse new connections to its
//! listening ports while it is paused.
//!
//! A frozen process keeps its TCP connections: a broker keeps the messages
//! it delivered to it, clients keep calling it and hang. Destroying the
//! connections once the freeze is confirmed (what `ss -K` does) sends every
//! peer a reset, so a broker redelivers at once and a client fails over;
//! after the thaw, the target's next call on such a socket fails with
//! `ECONNABORTED` and its client reconnects.
//!
//! - [`NetNs`]: a network namespace named by a file (`/proc/PID/ns/net`, a
//!   pinned bind mount). [`NetNs::run`] does work on a thread of its own
//!   that entered it with `setns(CLONE_NEWNET)`; every netlink socket here
//!   is opened that way, as a socket belongs to the namespace it was
//!   created in.
//! - [`Scope`]: whose sockets. [`Scope::Namespace`] when the target owns the
//!   namespace (a pod); [`Scope::Processes`] when the namespace is shared
//!   (the host's, for a `--pid` or `--cgroup` target): only the sockets its
//!   processes hold (matched by inode through [`proc::socket_inodes`]) and
//!   the connections queued on their listeners.
//! - [`list`], [`listeners`] and [`reset`]: the scope's TCP sockets as
//!   [`Socket`]s; destroy every one that is not listening, counted in a
//!   [`Reset`]. **A listening socket is never destroyed**: the kernel's
//!   abort of a listener closes it for good, and the service could not
//!   accept after it resumes. [`fence_and_reset`] is a pause's whole job in
//!   one call (fence the listeners, then reset).
//! - [`Netfilter`] ([`reject`]): a table `inet stasis-TAG` in the namespace
//!   whose rules answer a SYN to the target's listening [`Endpoint`]s with a
//!   TCP reset, so a new `connect` fails at once with `ECONNREFUSED` instead
//!   of hanging in the frozen listener's accept queue. The [`Tag`] names the
//!   paused target, so an unpause removes the table even if the pause that
//!   added it was killed.
//! - [`fence::Fences`]: all of it for one frozen cgroup, recorded under a
//!   state root so that any later thaw removes the rules (the CLI's
//!   `--reset-connections`, the Kubernetes agent's
//!   `stasis.dev/reset-connections`).
//! - [`Error`]: one variant per operation, with predicates
//!   ([`Error::is_not_found`], [`Error::is_permission_denied`],
//!   [`Error::is_unsupported`]).
//!
//! What the kernel does (6.18, checked by this crate's tests): after
//! `SOCK_DESTROY`, the owner's next read on the destroyed socket fails with
//! `ECONNABORTED` and its peer's with `ECONNRESET`; a connection destroyed
//! while still in a listener's accept queue is later accepted dead (its
//! first read: `ECONNABORTED`); the listener accepts new connections as
//! before. With the reject table, a `connect` fails at once with
//! `ECONNREFUSED`; connections that existed before it keep working.
//!
//! A pause with `--reset-connections`, once the freeze is confirmed:
//!
//! ```no_run
//! use std::path::Path;
//! use connections::{Netfilter, NetNs, Scope, Tag};
//!
//! let proc_root = Path::new("/proc");
//! // A pod: its pinned namespace, every socket in it.
//! let netns = NetNs::new("/run/stasis/pods/0123456789ab/ns/net");
//! let scope = Scope::Namespace;
//! // (A --pid 4242 target in the host's namespace instead:
//! //  NetNs::of_process(proc_root, 4242) and Scope::Processes(pids).)
//! let tag = Tag::new("0123456789ab")?;
//! let netfilter = Netfilter::new();
//! // Fence the listeners, then reset every connection (listeners are kept).
//! let reset = connections::fence_and_reset(&netns, &scope, proc_root, &netfilter, &tag)?;
//! eprintln!("reset {} connections ({} already gone), refusing new ones on {} listeners",
//!     reset.destroyed, reset.already_gone, reset.listeners.len());
//!
//! // The unpause: thaw first, then
//! netfilter.remove(&netns, &tag)?;
//! # Ok::<(), connections::Error>(())
//! ```
//!
//! Kernel interfaces:
//! - `NETLINK_SOCK_DIAG`: `SOCK_DIAG_BY_FAMILY` dumps with an
//!   `inet_diag_req_v2` (IPv4 and IPv6, `IPPROTO_TCP`, every state but
//!   `TIME_WAIT` and `CLOSE`), and `SOCK_DESTROY` (21) with the socket's
//!   exact `inet_diag_sockid` (addresses, ports, interface, cookie), which
//!   needs `CONFIG_INET_DIAG_DESTROY` and `CAP_NET_ADMIN` over the
//!   namespace. The messages are those of the `netlink-packet-sock-diag`
//!   crate (it has `SOCK_DESTROY`), sent on a rustix socket.
//! - `/proc/PID/fd` (`socket:[INODE]` links) and `/proc/PID/ns/net`;
//!   `setns(2)` with `CLONE_NEWNET`. `/proc` is a parameter (`proc_root`).
//! - nf_tables (`CONFIG_NF_TABLES`, `NFT_REJECT`) through the `nft` program
//!   (Debian `nftables`), a runtime dependency of [`Netfilter`] only; see
//!   [`reject`] for why.
//!
//! What it does not do:
//! - UDP, Unix-domain and other sockets: only TCP has connections whose
//!   peers a reset informs.
//! - Sockets the target holds in another network namespace than the one
//!   given (a descriptor passed in from elsewhere); a caller whose target's
//!   processes are in several namespaces groups them by [`NetNs::inode`]
//!   and calls it once for each.
//! - Speed up brokers that rebalance by a session timeout rather than by
//!   the connection: Kafka's consumer group waits out
//!   `session.timeout.ms`, NATS JetStream redelivers after `AckWait`,
//!   whatever happens to the TCP connection.
//! - Lock: the kernel holds the reject table, named by the tag; two callers
//!   racing on one tag get nf_tables' last transaction. The only state kept
//!   is [`fence`]'s record of where a fence's rules are.

#![deny(unsafe_code)]

mod diag;
mod error;
pub mod fence;
pub mod namespaces;
mod netns;
pub mod proc;
pub mod reject;
mod scope;
mod socket;

pub use error::{Error, NftError, Result};
pub use netns::NetNs;
pub use reject::{Endpoint, Netfilter, Tag};
pub use scope::{fence_and_reset, list, listeners, reset, Reset, Scope};
pub use socket::{Socket, TcpState};
