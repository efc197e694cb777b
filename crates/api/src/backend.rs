//! What the service asks of its host program: the verbs that change state.
//!
//! Reads (list, inspect, logs, wait) the service does itself on the
//! [`sandbox::Sandbox`] it is given. The verbs go through a [`Backend`] so
//! that they run exactly the code the CLI runs for them, with its leases,
//! connection fences and resolution of other runtimes' containers, which
//! live in the `stasis` binary. Every method blocks: the service calls
//! [`Backend::start`] on its one spawner thread (it forks into a pod's
//! namespaces), the others on tokio's blocking pool, except one
//! [`Backend::pause`] or [`Backend::unpause`] at a time, which runs on the
//! async worker holding the request (cgroupfs reads and writes, as a rule
//! done in well under a millisecond; the other worker serves meanwhile).

use std::io::Read;
use std::time::Duration;

use crate::create::CreateOptions;
use crate::error::ApiError;

/// `pause`'s query parameters: the options of pausing without harm.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PauseOptions {
    /// `lease=30s`: thaw when it runs out, even if nobody asks.
    pub lease: Option<Duration>,
    /// `reset_connections=1`: reset its TCP connections once frozen and
    /// refuse new ones until unpause.
    pub reset_connections: bool,
}

/// The verbs, each on one container named as the client named it (a name,
/// an ID or a unique prefix; for `pause` and `unpause`, also another
/// runtime's container ID).
pub trait Backend: Send + Sync + 'static {
    /// Runs before each request that reads or changes containers: the CLI's
    /// enforcement of leases that ran out.
    fn refresh(&self) {}
    /// Starts a created container, or an exited one again (a new process
    /// for the same record). Forks: called on the spawner thread.
    fn start(&self, query: &str) -> Result<(), ApiError>;
    /// SIGTERM, then SIGKILL after `grace`.
    fn stop(&self, query: &str, grace: Duration) -> Result<(), ApiError>;
    /// Sends `signal` (a name or a number).
    fn kill(&self, query: &str, signal: &str) -> Result<(), ApiError>;
    fn pause(&self, query: &str, options: &PauseOptions) -> Result<(), ApiError>;
    fn unpause(&self, query: &str) -> Result<(), ApiError>;
    /// Removes a container; `force` kills a running one first.
    fn remove(&self, query: &str, force: bool) -> Result<(), ApiError>;
    /// Creates a container from an image; its full ID. Makes its pod
    /// (which forks): called on the spawner thread.
    fn create(&self, options: &CreateOptions) -> Result<String, ApiError>;

    /// `GET /images/json`: docker's image summaries.
    fn images(&self) -> Result<serde_json::Value, ApiError>;
    /// `GET /images/{name}/json`.
    fn image(&self, query: &str) -> Result<serde_json::Value, ApiError>;
    /// `DELETE /images/{name}`: docker's list of `Untagged` and `Deleted`.
    fn remove_image(&self, query: &str, force: bool) -> Result<serde_json::Value, ApiError>;
    /// `POST /images/create?fromSrc=-`: imports a root filesystem tar as
    /// `reference` (`NAME[:TAG]`, if given) with docker's `changes`; the
    /// image's ID.
    fn import_image(
        &self,
        tar: &mut dyn Read,
        reference: Option<&str>,
        changes: &[String],
    ) -> Result<String, ApiError>;
    /// `POST /images/load`: a `docker save` or OCI archive; the lines
    /// docker prints (`Loaded image: NAME:TAG`).
    fn load_images(&self, archive: &mut dyn Read) -> Result<Vec<String>, ApiError>;
}
