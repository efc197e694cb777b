//! The service: its socket, its threads, its limits and its shutdown.
//!
//! - The socket is bound before any thread starts, under a umask that
//!   leaves it `0600`, then given to root and the service's group and made
//!   `0660` (`0600` without a group): nobody else can connect at any moment.
//! - Threads: a tokio runtime with two workers for the connections, one of
//!   which at a time runs a pause or unpause itself (the others that come
//!   meanwhile go to the blocking pool); its blocking pool for store reads
//!   and the verbs that do not fork; and one
//!   dedicated thread, the spawner, fed by a channel, for every sandbox call
//!   that forks into a pod's namespaces (starting a container), which the
//!   sandbox requires to run on a thread of its own, never on a worker.
//! - Limits ([`Limits`]): the connections at once (more wait in the
//!   listen backlog), the request body, the time to send the headers and
//!   the body, the long-lived streams and the pauses at once; each
//!   connection's buffers
//!   are capped, so memory stays bounded with every connection idle.
//! - SIGTERM and SIGINT stop the accepting, end the streams, let requests
//!   in flight finish (up to [`Limits::drain`]), remove the socket and
//!   return; nothing else is kept, so a restart loses nothing.

use std::convert::Infallible;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::sync::{oneshot, Semaphore};

use crate::backend::Backend;
use crate::error::Error;
use crate::peer::Peer;
use crate::policy::Policy;
use crate::routes::{handle, Service};

/// The service's bounds.
#[derive(Debug, Clone)]
pub struct Limits {
    /// The largest request body, in bytes (413 beyond).
    pub max_body: usize,
    /// The largest image archive `POST /images/create` and `/images/load`
    /// take, streamed (413 beyond).
    pub max_image_body: u64,
    /// The time a client has to send a request's headers.
    pub header_timeout: Duration,
    /// The time it has to send the body.
    pub body_timeout: Duration,
    /// Connections served at once; more wait to be accepted.
    pub max_connections: usize,
    /// Long-lived responses (followed logs, waits) at once (503 beyond).
    pub max_streams: usize,
    /// Pauses and unpauses at once on the blocking pool, besides the one
    /// a worker runs itself; more wait their turn, in order. Each holds a
    /// thread while the kernel freezes, so this bounds the threads (and
    /// their memory) under load; on a small machine more at once only
    /// compete for the same cores.
    pub max_pauses: usize,
    /// How long a stop waits for requests in flight.
    pub drain: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body: 1 << 20,
            max_image_body: 8 << 30,
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            max_connections: 2048,
            max_streams: 256,
            max_pauses: 4,
            drain: Duration::from_secs(10),
        }
    }
}

/// How to serve.
#[derive(Debug, Clone)]
pub struct Config {
    pub socket: PathBuf,
    /// The socket's group; `None`: root alone can connect.
    pub group: Option<u32>,
    pub policy: Policy,
    pub audit_log: PathBuf,
    pub limits: Limits,
    /// `/proc`, for peers' groups and executables.
    pub proc_root: PathBuf,
    /// Hold the freezer's anchor (the `freezer` crate's `anchor`) while
    /// serving: see `sandbox::Sandbox::freezer_anchor`.
    pub freezer_anchor: bool,
}

type Job = Box<dyn FnOnce() + Send>;

/// The one thread that runs the sandbox calls that fork.
#[derive(Debug, Clone)]
pub(crate) struct Spawner {
    tx: std::sync::mpsc::Sender<Job>,
}

impl Spawner {
    fn start() -> Result<(Self, std::thread::JoinHandle<()>), Error> {
        let (tx, rx) = std::sync::mpsc::channel::<Job>();
        let thread = std::thread::Builder::new()
            .name("stasis-spawner".into())
            .spawn(move || {
                // Ends when every sender (the service) is gone.
                for job in rx {
                    job();
                }
            })
            .map_err(Error::SpawnerThread)?;
        Ok((Spawner { tx }, thread))
    }

    /// Runs `f` on the spawner thread; `None` if the thread is gone.
    pub(crate) async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Option<T> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(Box::new(move || {
                let _ = tx.send(f());
            }))
            .ok()?;
        rx.await.ok()
    }
}

/// Binds `path` for root and `group`: 0660, or 0600 without a group. A
/// stale socket (nobody answers) is replaced; a live one or another kind of
/// file is refused. Call before any thread starts: it sets the umask.
pub fn bind(path: &Path, group: Option<u32>) -> Result<std::os::unix::net::UnixListener, Error> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if !m.file_type().is_socket() => {
            return Err(Error::NotASocket {
                path: path.to_owned(),
            })
        }
        Ok(_) => {
            if std::os::unix::net::UnixStream::connect(path).is_ok() {
                return Err(Error::InUse {
                    path: path.to_owned(),
                });
            }
            std::fs::remove_file(path).map_err(|source| Error::Bind {
                path: path.to_owned(),
                source,
            })?;
        }
        Err(_) => {}
    }
    let old = rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o177));
    let bound = std::os::unix::net::UnixListener::bind(path);
    rustix::process::umask(old);
    let listener = bound.map_err(|source| Error::Bind {
        path: path.to_owned(),
        source,
    })?;
    let perm_err = |source: std::io::Error| Error::Permissions {
        path: path.to_owned(),
        source,
    };
    let owner = rustix::process::geteuid()
        .is_root()
        .then_some(rustix::process::Uid::ROOT);
    let gid = group.map(rustix::process::Gid::from_raw);
    if owner.is_some() || gid.is_some() {
        rustix::fs::chown(path, owner, gid).map_err(|e| perm_err(e.into()))?;
    }
    let mode = if group.is_some() { 0o660 } else { 0o600 };
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(perm_err)?;
    Ok(listener)
}

/// Serves until SIGTERM or SIGINT: binds the socket, starts the spawner
/// and the runtime, and returns once drained (the socket removed).
pub fn serve(
    config: Config,
    sandbox: sandbox::Sandbox,
    backend: Arc<dyn Backend>,
    ready: impl FnOnce(&Path),
) -> Result<(), Error> {
    // Kept for the life of the service: each pause is then the freeze
    // alone, not the kernel's switch of its freezer on and off as well.
    // Held before the socket listens, so a client that can connect finds
    // it held (and a dead service's anchor already removed).
    let anchor = config
        .freezer_anchor
        .then(|| sandbox.freezer_anchor())
        .flatten();
    let listener = bind(&config.socket, config.group)?;
    listener
        .set_nonblocking(true)
        .map_err(|source| Error::Bind {
            path: config.socket.clone(),
            source,
        })?;
    // Not joined at the end: a blocking call still running past the drain
    // keeps its sender, and the process is about to exit anyway.
    let (spawner, _spawner_thread) = Spawner::start()?;
    let limits = config.limits.clone();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        // The streams, and room beside them for short store work.
        .max_blocking_threads(limits.max_streams + 64)
        .thread_name("stasis-serve")
        .enable_all()
        .build()
        .map_err(Error::Runtime)?;
    let hostname = rustix::system::uname()
        .nodename()
        .to_string_lossy()
        .into_owned();
    let service = Arc::new(Service {
        sandbox,
        backend,
        policy: config.policy.clone(),
        audit_log: config.audit_log.clone(),
        audit_sync: AuditSyncer::start(config.audit_log.clone()),
        proc_root: config.proc_root.clone(),
        limits: limits.clone(),
        spawner,
        streams: Arc::new(Semaphore::new(limits.max_streams)),
        inline_pause: Semaphore::new(1),
        pauses: Semaphore::new(limits.max_pauses.max(1)),
        stopping: Arc::new(AtomicBool::new(false)),
        hostname,
        execs: Default::default(),
    });
    let result = runtime.block_on(accept_loop(listener, service, &config, ready));
    runtime.shutdown_timeout(Duration::from_secs(1));
    let _ = std::fs::remove_file(&config.socket);
    // The records of the last requests, which the syncer may not have
    // reached.
    if !sandbox::audit::on_ram_fs(&config.audit_log) {
        sync_audit_log(&config.audit_log);
    }
    if let Some(anchor) = anchor {
        if let Err(e) = anchor.release() {
            tracing::warn!(error = %crate::error::format_chain(&e), "removing the freezer's anchor");
        }
    }
    result
}

async fn accept_loop(
    listener: std::os::unix::net::UnixListener,
    service: Arc<Service>,
    config: &Config,
    ready: impl FnOnce(&Path),
) -> Result<(), Error> {
    use tokio::signal::unix::{signal, SignalKind};
    let listener = tokio::net::UnixListener::from_std(listener).map_err(|source| Error::Bind {
        path: config.socket.clone(),
        source,
    })?;
    let mut term = signal(SignalKind::terminate()).map_err(Error::Signals)?;
    let mut int = signal(SignalKind::interrupt()).map_err(Error::Signals)?;
    let limits = &config.limits;
    let connections = Arc::new(Semaphore::new(limits.max_connections));
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    tracing::info!(socket = %config.socket.display(), "serving");
    ready(&config.socket);
    loop {
        let permit = tokio::select! {
            p = connections.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
            _ = term.recv() => break,
            _ = int.recv() => break,
        };
        let stream = tokio::select! {
            r = listener.accept() => match r {
                Ok((s, _)) => s,
                Err(e) => {
                    // EMFILE and the like: back off rather than spin.
                    tracing::warn!(error = %e, "accepting a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = term.recv() => break,
            _ = int.recv() => break,
        };
        let peer = match Peer::of(&stream, &config.proc_root) {
            Ok(p) => Arc::new(p),
            Err(e) => {
                tracing::warn!(error = %e, "reading a peer's credentials");
                continue;
            }
        };
        let service = service.clone();
        let mut stop = stop_rx.clone();
        let header_timeout = limits.header_timeout;
        tokio::spawn(async move {
            let _permit = permit;
            let svc = service_fn(move |req| {
                let service = service.clone();
                let peer = peer.clone();
                async move { Ok::<_, Infallible>(handle(service, peer, req).await) }
            });
            let conn = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(header_timeout)
                .max_buf_size(16 * 1024)
                .serve_connection(TokioIo::new(stream), svc)
                .with_upgrades();
            tokio::pin!(conn);
            tokio::select! {
                r = conn.as_mut() => {
                    if let Err(e) = r {
                        tracing::debug!(error = %e, "connection ended");
                    }
                }
                _ = stop.changed() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                }
            }
        });
    }
    tracing::info!("stopping: draining requests in flight");
    drop(listener);
    service.stopping.store(true, Ordering::Relaxed);
    let _ = stop_tx.send(true);
    let all = u32::try_from(limits.max_connections).unwrap_or(u32::MAX);
    if tokio::time::timeout(limits.drain, connections.acquire_many(all))
        .await
        .is_err()
    {
        tracing::warn!(drain = ?limits.drain, "requests still in flight at the end of the drain");
    }
    Ok(())
}

/// The shortest time from one audit sync's start to the next's.
pub(crate) const SYNC_INTERVAL: Duration = Duration::from_millis(5);

/// `fdatasync`s the audit log, logging what fails (a failed sync fails no
/// request: the record is written already).
fn sync_audit_log(path: &Path) {
    if let Err(e) = sandbox::audit::sync(path) {
        tracing::error!(error = %crate::error::format_chain(&e), "syncing the audit log");
    }
}

/// The audit log's group commit: a thread that `fdatasync`s the log
/// whenever records were written since its last sync, at most once per
/// [`SYNC_INTERVAL`]. A request's record is written (one `write(2)`, seen
/// by every reader) before its response; it is on disk once the syncer's
/// next `fdatasync` returns, within that interval and one sync's time after
/// the response, and one sync covers every record written before it. A
/// crash of the host in between can lose those records, never leave a line
/// that breaks a reader. The service syncs once more as it exits. On a RAM
/// filesystem nothing is synced.
pub(crate) struct AuditSyncer {
    wake: std::sync::mpsc::SyncSender<()>,
}

impl AuditSyncer {
    pub(crate) fn start(path: PathBuf) -> Self {
        // One pending wake is enough: a sync that has not begun yet covers
        // every record written before it.
        let (wake, pending) = std::sync::mpsc::sync_channel::<()>(1);
        let ram = sandbox::audit::on_ram_fs(&path);
        let spawned = std::thread::Builder::new()
            .name("audit-sync".into())
            .spawn(move || {
                // Ends when the service (the sender) is dropped.
                while pending.recv().is_ok() {
                    if ram {
                        continue;
                    }
                    let began = std::time::Instant::now();
                    sync_audit_log(&path);
                    // What is written meanwhile waits for the next sync:
                    // under load, one sync per interval instead of one
                    // after another (each a journal commit on ext4).
                    if let Some(rest) = SYNC_INTERVAL.checked_sub(began.elapsed()) {
                        std::thread::sleep(rest);
                    }
                }
            });
        if let Err(e) = spawned {
            tracing::error!(error = %e, "no audit syncer thread: records are written, not synced");
        }
        AuditSyncer { wake }
    }

    /// Asks for a sync of what was written so far.
    pub(crate) fn wake(&self) {
        // Full: a sync is pending already, and will cover this record.
        let _ = self.wake.try_send(());
    }
}
