//! From a request to a response: the version prefix, the route and its
//! verb, the caller's permission, the body's limits, the handler, the audit
//! record, and docker's headers on every answer.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_LENGTH, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use sandbox::{ContainerRecord, ContainerStatus, Sandbox};
use serde_json::json;
use tokio::sync::Semaphore;

use crate::backend::{Backend, PauseOptions};
use crate::body::{self, Body};
use crate::error::{format_chain, ApiError};
use crate::peer::Peer;
use crate::policy::{Policy, Verb};
use crate::query::{Filters, Query};
use crate::server::{AuditSyncer, Limits, Spawner};
use crate::version;

/// The content type of docker's multiplexed log stream.
pub const MULTIPLEXED: &str = "application/vnd.docker.multiplexed-stream";

/// Everything a request may need; one per service.
pub(crate) struct Service {
    pub sandbox: Sandbox,
    pub backend: Arc<dyn Backend>,
    pub policy: Policy,
    pub audit_log: PathBuf,
    /// Wakes the audit log's syncer (see [`crate::server`]): each record
    /// is written on the worker before its response, and `fdatasync`ed by
    /// the syncer thread soon after, many records at a time.
    pub audit_sync: AuditSyncer,
    pub proc_root: PathBuf,
    pub limits: Limits,
    pub spawner: Spawner,
    /// Long-lived responses (log follows, waits) in flight.
    pub streams: Arc<Semaphore>,
    /// The one pause or unpause that may run on a worker itself.
    pub inline_pause: Semaphore,
    /// Pauses and unpauses in flight on the blocking pool
    /// ([`Limits::max_pauses`]).
    pub pauses: Semaphore,
    /// Set once SIGTERM or SIGINT arrives: streams end.
    pub stopping: Arc<AtomicBool>,
    pub hostname: String,
    /// Exec instances, in memory only (see [`crate::exec`]).
    pub execs: crate::exec::Execs,
}

/// What a route does.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Op {
    Ping,
    Version,
    Info,
    List,
    Inspect,
    Create,
    Start,
    Stop,
    Kill,
    Restart,
    Wait,
    Pause,
    Unpause,
    Remove,
    Logs,
    Events,
    Attach,
    /// A container's terminal size.
    Resize,
    ExecCreate,
    ExecStart,
    ExecInspect,
    ExecResize,
    ImageList,
    ImageInspect,
    ImageRemove,
    ImageCreate,
    ImageLoad,
    /// Answered 404, as docker answers for a missing object of a kind
    /// stasis has none of (`docker inspect NAME` probes every kind).
    Missing(String),
    /// An empty list of a kind stasis has none of.
    EmptyList(serde_json::Value),
}

/// A matched route.
#[derive(Debug)]
struct Route {
    op: Op,
    verb: Verb,
    /// The container (or image) as the path names it.
    target: String,
}

fn route(method: &Method, path: &str) -> Result<Route, ApiError> {
    let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let r = |op, verb, target: &str| {
        Ok(Route {
            op,
            verb,
            target: target.to_owned(),
        })
    };
    let get = method == Method::GET || method == Method::HEAD;
    let post = method == Method::POST;
    // Image names may hold slashes (`localhost/app:1`): docker's
    // `/images/{name:.*}/json` and `DELETE /images/{name:.*}`.
    if let Some(rest) = path.strip_prefix("/images/") {
        match rest {
            "json" if get => return r(Op::ImageList, Verb::Images, ""),
            "create" if post => return r(Op::ImageCreate, Verb::Import, ""),
            "load" if post => return r(Op::ImageLoad, Verb::Load, ""),
            _ => {}
        }
        if let Some(name) = rest.strip_suffix("/json").filter(|n| !n.is_empty()) {
            if get {
                return r(Op::ImageInspect, Verb::Images, name);
            }
        }
        if method == Method::DELETE && !rest.is_empty() {
            return r(Op::ImageRemove, Verb::Import, rest);
        }
        return Err(page_not_found());
    }
    match segs.as_slice() {
        ["_ping"] if get => r(Op::Ping, Verb::Ping, ""),
        ["version"] if get => r(Op::Version, Verb::Ping, ""),
        ["info"] if get => r(Op::Info, Verb::Ping, ""),
        ["containers", "json"] if get => r(Op::List, Verb::Ps, ""),
        ["containers", "create"] if post => r(Op::Create, Verb::Create, ""),
        ["containers", id, "json"] if get => r(Op::Inspect, Verb::Inspect, id),
        ["containers", id, "logs"] if get => r(Op::Logs, Verb::Logs, id),
        ["containers", id] if method == Method::DELETE => r(Op::Remove, Verb::Rm, id),
        ["containers", id, action] if post => match *action {
            "start" => r(Op::Start, Verb::Start, id),
            "stop" => r(Op::Stop, Verb::Stop, id),
            "kill" => r(Op::Kill, Verb::Kill, id),
            "restart" => r(Op::Restart, Verb::Restart, id),
            "wait" => r(Op::Wait, Verb::Wait, id),
            "pause" => r(Op::Pause, Verb::Pause, id),
            "unpause" => r(Op::Unpause, Verb::Unpause, id),
            "attach" => r(Op::Attach, Verb::Logs, id),
            "exec" => r(Op::ExecCreate, Verb::Exec, id),
            "resize" => r(Op::Resize, Verb::Exec, id),
            _ => Err(page_not_found()),
        },
        ["exec", id, "start"] if post => r(Op::ExecStart, Verb::Exec, id),
        ["exec", id, "resize"] if post => r(Op::ExecResize, Verb::Exec, id),
        ["exec", id, "json"] if get => r(Op::ExecInspect, Verb::Inspect, id),
        ["events"] if get => r(Op::Events, Verb::Events, ""),
        ["networks"] if get => r(Op::EmptyList(json!([])), Verb::Inspect, ""),
        ["networks", name] if get => r(
            Op::Missing(format!("network {name} not found")),
            Verb::Inspect,
            name,
        ),
        ["volumes"] if get => r(
            Op::EmptyList(json!({"Volumes": [], "Warnings": []})),
            Verb::Inspect,
            "",
        ),
        ["volumes", name] if get => r(
            Op::Missing(format!("get {name}: no such volume")),
            Verb::Inspect,
            name,
        ),
        _ => Err(page_not_found()),
    }
}

fn page_not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "page not found")
}

/// Answers one request; never fails (an error is a response).
pub(crate) async fn handle(
    svc: Arc<Service>,
    peer: Arc<Peer>,
    req: Request<Incoming>,
) -> Response<Body> {
    let method = req.method().clone();
    let path_and_query = req
        .uri()
        .path_and_query()
        .map_or_else(|| req.uri().path().to_owned(), |p| p.as_str().to_owned());
    let mut resp = match dispatch(&svc, &peer, req).await {
        Ok(r) => r,
        Err(e) => error_response(&e),
    };
    tracing::debug!(%method, path = %path_and_query, status = resp.status().as_u16(), %peer, "request");
    let h = resp.headers_mut();
    h.insert("Api-Version", HeaderValue::from_static(API_VERSION));
    h.insert("Ostype", HeaderValue::from_static("linux"));
    h.insert("Server", HeaderValue::from_static(SERVER));
    h.insert("Docker-Experimental", HeaderValue::from_static("false"));
    if method == Method::HEAD {
        *resp.body_mut() = body::empty();
    }
    resp
}

const API_VERSION: &str = "1.44";
const SERVER: &str = concat!("stasis/", env!("CARGO_PKG_VERSION"), " (linux)");

fn error_response(e: &ApiError) -> Response<Body> {
    json_response(e.status, &json!({"message": e.message}))
}

pub(crate) fn json_response(status: StatusCode, value: &serde_json::Value) -> Response<Body> {
    let mut data = serde_json::to_vec(value).unwrap_or_default();
    data.push(b'\n');
    let mut resp = Response::new(body::full(data));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}

fn no_content(status: StatusCode) -> Response<Body> {
    let mut resp = Response::new(body::empty());
    *resp.status_mut() = status;
    resp
}

async fn dispatch(
    svc: &Arc<Service>,
    peer: &Arc<Peer>,
    req: Request<Incoming>,
) -> Result<Response<Body>, ApiError> {
    let (version, path) = version::split(req.uri().path())?;
    let mut route = route(req.method(), path)?;
    let query = Query::parse(req.uri().query());
    if route.op == Op::Attach && query.flag("stdin", false).unwrap_or(true) {
        // Typing into a container is more than reading its output.
        route.verb = Verb::Exec;
    }
    let method = req.method().to_string();
    let full_path = req
        .uri()
        .path_and_query()
        .map_or_else(|| req.uri().path().to_owned(), |p| p.as_str().to_owned());
    let target = match route.op {
        Op::Create => query.get("name").unwrap_or("").to_owned(),
        Op::ImageCreate => {
            let repo = query
                .get("repo")
                .or_else(|| query.get("fromImage"))
                .unwrap_or("");
            match query.get("tag").filter(|t| !t.is_empty()) {
                Some(tag) => format!("{repo}:{tag}"),
                None => repo.to_owned(),
            }
        }
        _ => route.target.clone(),
    };
    let audit = |status: StatusCode, outcome: &str, message: Option<String>| {
        let record = sandbox::audit::Record {
            time: sandbox::audit::now(),
            uid: peer.uid,
            gid: peer.gid,
            pid: peer.pid,
            exe: peer.exe(&svc.proc_root),
            via: "api".into(),
            method: Some(method.clone()),
            path: Some(full_path.clone()),
            verb: route.verb.word().into(),
            target: target.clone(),
            outcome: outcome.into(),
            status: u32::from(status.as_u16()),
            message,
        };
        // One buffered write, on the worker: a hop to the blocking pool
        // and back cost a pause as much as the freeze, and the
        // fdatasync (as long again on a disk) is the syncer's.
        if let Err(e) = sandbox::audit::append_with(&svc.audit_log, &record, false) {
            tracing::error!(error = %format_chain(&e), "writing the audit record");
        }
        svc.audit_sync.wake();
    };
    if !svc.policy.allows(peer, route.verb) {
        let message = format!(
            "permission denied: {peer} may not {} (ask for --allow on the service)",
            route.verb
        );
        audit(StatusCode::FORBIDDEN, "refused", Some(message.clone()));
        return Err(ApiError::new(StatusCode::FORBIDDEN, message));
    }
    let _ = version;
    let input = match route.op {
        // Image archives stream through, under their own limit.
        Op::ImageCreate | Op::ImageLoad => Input::Stream(req.into_body()),
        Op::Attach | Op::ExecStart => {
            let mut req = req;
            let asked = req
                .headers()
                .get(hyper::header::UPGRADE)
                .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"tcp"));
            let on = asked.then(|| hyper::upgrade::on(&mut req));
            Input::Upgrade(read_body(svc, req).await?, on)
        }
        _ => Input::Bytes(read_body(svc, req).await?),
    };
    let result = run(svc, &route, &query, input).await;
    if route.verb.changes_state() {
        let (status, outcome, message) = match &result {
            Ok(r) => (r.status(), "ok", None),
            Err(e) => (e.status, "error", Some(e.message.clone())),
        };
        audit(status, outcome, message);
    }
    result
}

/// The whole body, within the size limit and the read timeout.
async fn read_body(svc: &Service, req: Request<Incoming>) -> Result<Bytes, ApiError> {
    let limit = svc.limits.max_body;
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("request body is larger than the limit of {limit} bytes"),
        )
    };
    let declared = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    let limited = http_body_util::Limited::new(req.into_body(), limit);
    match tokio::time::timeout(svc.limits.body_timeout, limited.collect()).await {
        Err(_) => Err(ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            "timed out reading the request body",
        )),
        Ok(Err(e))
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            Err(too_large())
        }
        Ok(Err(e)) => Err(ApiError::bad_request(format!(
            "reading the request body: {e}"
        ))),
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
    }
}

/// A request's body, as its route takes it.
enum Input {
    Bytes(Bytes),
    Stream(Incoming),
    /// The body, and the upgrade if the client asked for one.
    Upgrade(Bytes, Option<hyper::upgrade::OnUpgrade>),
}

impl Input {
    fn bytes(self) -> Bytes {
        match self {
            Input::Bytes(b) | Input::Upgrade(b, _) => b,
            Input::Stream(_) => Bytes::new(),
        }
    }
}

/// Runs blocking store work off the async workers.
pub(crate) async fn blocking<T: Send + 'static>(
    what: &'static str,
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r,
        Err(e) => Err(ApiError::internal(what, &e)),
    }
}

/// Runs pause or unpause, in practice a few cgroupfs reads and writes that
/// do not block. One at a time runs on the worker that holds the request:
/// the hop to the blocking pool and back costs two thread wake-ups, as
/// long as the freeze itself on an idle machine and far longer on a busy
/// one. The others, while that one runs, go to the blocking pool, at most
/// [`Limits::max_pauses`] at once (the rest wait their turn without holding
/// a thread). A freeze that takes its time (up to the freezer's timeout)
/// thus holds up at most one worker, and the other serves every other
/// connection meanwhile. A pause with a lease or `reset_connections`
/// (`plain` false) starts a watchdog or runs `nft`: always the pool.
async fn pause_verb(
    svc: &Arc<Service>,
    what: &'static str,
    plain: bool,
    f: impl FnOnce() -> Result<Response<Body>, ApiError> + Send + 'static,
) -> Result<Response<Body>, ApiError> {
    if let Some(_inline) = plain.then(|| svc.inline_pause.try_acquire().ok()).flatten() {
        return f();
    }
    let _turn = svc
        .pauses
        .acquire()
        .await
        .map_err(|e| ApiError::internal("waiting for a turn to pause", &e))?;
    blocking(what, f).await
}

pub(crate) fn find(sandbox: &Sandbox, query: &str) -> Result<ContainerRecord, ApiError> {
    sandbox
        .find_container(query)
        .map_err(|e| ApiError::from_sandbox(&e, query, "looking up the container"))
}

async fn run(
    svc: &Arc<Service>,
    route: &Route,
    query: &Query,
    input: Input,
) -> Result<Response<Body>, ApiError> {
    let target = route.target.clone();
    let input = match &route.op {
        Op::ImageCreate => return import_image(svc, query, input).await,
        Op::ImageLoad => return load_images(svc, input).await,
        Op::Attach => return attach(svc, target, query, input).await,
        Op::ExecStart => {
            let Input::Upgrade(body, upgrade) = input else {
                return Err(ApiError::internal("starting the exec", &"no body"));
            };
            return crate::exec::start(svc, target, body, upgrade).await;
        }
        _ => input,
    };
    let body = input.bytes();
    match &route.op {
        Op::Ping => {
            let mut resp = Response::new(body::full("OK"));
            let h = resp.headers_mut();
            h.insert(
                CONTENT_TYPE,
                HeaderValue::from_static("text/plain; charset=utf-8"),
            );
            h.insert(
                "Cache-Control",
                HeaderValue::from_static("no-cache, no-store, must-revalidate"),
            );
            h.insert("Pragma", HeaderValue::from_static("no-cache"));
            Ok(resp)
        }
        Op::Version => Ok(json_response(StatusCode::OK, &version_json())),
        Op::Info => {
            let svc = svc.clone();
            let info = blocking("reading the info", move || Ok(info_json(&svc))).await?;
            Ok(json_response(StatusCode::OK, &info))
        }
        Op::List => {
            let all = query.flag("all", false)?;
            let size = query.flag("size", false)?;
            let limit = query.number::<i64>("limit")?.filter(|&n| n > 0);
            let filters = query.filters()?;
            filters.only(&["label", "status", "name", "id"])?;
            for s in filters.get("status") {
                if !STATUS_WORDS.contains(&s.as_str()) {
                    return Err(ApiError::bad_request(format!(
                        "Unrecognised filter value for status: {s}"
                    )));
                }
            }
            let svc = svc.clone();
            let list = blocking("listing containers", move || {
                svc.backend.refresh();
                list(&svc, all, size, limit, &filters)
            })
            .await?;
            Ok(json_response(StatusCode::OK, &list))
        }
        Op::Inspect => {
            let svc = svc.clone();
            let v = blocking("inspecting the container", move || {
                svc.backend.refresh();
                let c = find(&svc.sandbox, &target)?;
                let view = container_view(&svc.sandbox, &c);
                Ok(crate::shape::inspect(&view, &svc.hostname))
            })
            .await?;
            Ok(json_response(StatusCode::OK, &v))
        }
        Op::Create => {
            let options = crate::create::CreateOptions::parse(&body, query.get("name"))?;
            let backend = svc.backend.clone();
            let id = svc
                .spawner
                .run(move || {
                    backend.refresh();
                    backend.create(&options)
                })
                .await
                .unwrap_or_else(|| {
                    Err(ApiError::internal(
                        "creating the container",
                        &"the spawner thread is gone",
                    ))
                })?;
            Ok(json_response(
                StatusCode::CREATED,
                &json!({"Id": id, "Warnings": []}),
            ))
        }
        Op::ImageList => {
            let svc = svc.clone();
            let v = blocking("listing images", move || svc.backend.images()).await?;
            Ok(json_response(StatusCode::OK, &v))
        }
        Op::ImageInspect => {
            let svc = svc.clone();
            let v = blocking("inspecting the image", move || svc.backend.image(&target)).await?;
            Ok(json_response(StatusCode::OK, &v))
        }
        Op::ImageRemove => {
            let force = query.flag("force", false)?;
            let svc = svc.clone();
            let v = blocking("removing the image", move || {
                svc.backend.remove_image(&target, force)
            })
            .await?;
            Ok(json_response(StatusCode::OK, &v))
        }
        Op::ExecCreate => crate::exec::create(svc, target, body).await,
        Op::ExecInspect => crate::exec::inspect(svc, &target),
        Op::ExecResize => crate::exec::resize(svc, &target, query),
        Op::Resize => {
            let (rows, cols) = crate::exec::size_of(query)?;
            let svc = svc.clone();
            blocking("resizing the container's terminal", move || {
                let c = find(&svc.sandbox, &target)?;
                if !c.stdio.tty {
                    return Err(ApiError::conflict(format!(
                        "Container {} has no TTY to resize",
                        c.id.as_str()
                    )));
                }
                if !svc.sandbox.container_status(&c).is_running() {
                    return Err(ApiError::conflict(format!(
                        "Container {} is not running",
                        c.id.as_str()
                    )));
                }
                svc.sandbox
                    .attach(&c)
                    .and_then(|mut a| a.send_winsize(rows, cols))
                    .map_err(|e| {
                        ApiError::from_sandbox(&e, &target, "resizing the container's terminal")
                    })?;
                Ok(no_content(StatusCode::OK))
            })
            .await
        }
        Op::ImageCreate | Op::ImageLoad | Op::Attach | Op::ExecStart => Err(ApiError::internal(
            "routing",
            &"streamed routes return above",
        )),
        Op::Start => {
            if !body_is_empty(&body) {
                return Err(ApiError::bad_request(
                    "starting container with non-empty request body was deprecated since API v1.22 and removed in v1.24",
                ));
            }
            let svc2 = svc.clone();
            let t = target.clone();
            let status = blocking("starting the container", move || {
                svc2.backend.refresh();
                let c = find(&svc2.sandbox, &t)?;
                Ok(svc2.sandbox.container_status(&c))
            })
            .await?;
            match status {
                ContainerStatus::Created => {}
                ContainerStatus::Running
                | ContainerStatus::Paused
                | ContainerStatus::Restarting(_) => {
                    return Ok(no_content(StatusCode::NOT_MODIFIED))
                }
                // Again, as the same container in a new process.
                ContainerStatus::Exited(_) => {}
            }
            start_on_spawner(svc, target).await?;
            Ok(no_content(StatusCode::NO_CONTENT))
        }
        Op::Stop => {
            let grace = Duration::from_secs(query.number::<u64>("t")?.unwrap_or(10));
            let svc = svc.clone();
            blocking("stopping the container", move || {
                svc.backend.refresh();
                let c = find(&svc.sandbox, &target)?;
                if !svc.sandbox.container_status(&c).is_running() {
                    return Ok(no_content(StatusCode::NOT_MODIFIED));
                }
                svc.backend.stop(&target, grace)?;
                Ok(no_content(StatusCode::NO_CONTENT))
            })
            .await
        }
        Op::Kill => {
            let signal = query
                .get("signal")
                .filter(|s| !s.is_empty())
                .unwrap_or("KILL")
                .to_owned();
            let svc = svc.clone();
            blocking("killing the container", move || {
                svc.backend.refresh();
                svc.backend.kill(&target, &signal)?;
                Ok(no_content(StatusCode::NO_CONTENT))
            })
            .await
        }
        Op::Restart => {
            // docker's restart: stop (SIGTERM, SIGKILL after `t`) if it
            // runs, then start, whatever state it was in.
            let grace = Duration::from_secs(query.number::<u64>("t")?.unwrap_or(10));
            let stopping = svc.clone();
            let t = target.clone();
            blocking("restarting the container", move || {
                stopping.backend.refresh();
                let c = find(&stopping.sandbox, &t)?;
                if stopping.sandbox.container_status(&c).is_running() {
                    stopping.backend.stop(&t, grace)?;
                }
                Ok(())
            })
            .await?;
            start_on_spawner(svc, target).await?;
            Ok(no_content(StatusCode::NO_CONTENT))
        }
        Op::Pause => {
            let options = PauseOptions {
                lease: match query.get("lease") {
                    None | Some("") => None,
                    Some(s) => Some(parse_lease(s)?),
                },
                reset_connections: query.flag("reset_connections", false)?,
            };
            let plain = options.lease.is_none() && !options.reset_connections;
            let s = svc.clone();
            pause_verb(svc, "pausing the container", plain, move || {
                s.backend.refresh();
                s.backend.pause(&target, &options)?;
                Ok(no_content(StatusCode::NO_CONTENT))
            })
            .await
        }
        Op::Unpause => {
            let s = svc.clone();
            pause_verb(svc, "unpausing the container", true, move || {
                s.backend.refresh();
                s.backend.unpause(&target)?;
                Ok(no_content(StatusCode::NO_CONTENT))
            })
            .await
        }
        Op::Remove => {
            let force = query.flag("force", false)?;
            let svc = svc.clone();
            blocking("removing the container", move || {
                svc.backend.refresh();
                svc.backend.remove(&target, force)?;
                Ok(no_content(StatusCode::NO_CONTENT))
            })
            .await
        }
        Op::Wait => wait(svc, target, query).await,
        Op::Logs => logs(svc, target, query).await,
        Op::Events => events(svc, query).await,
        Op::Missing(message) => Err(ApiError::new(StatusCode::NOT_FOUND, message.clone())),
        Op::EmptyList(v) => Ok(json_response(StatusCode::OK, v)),
    }
}

/// Starts a created or exited container on the spawner thread (it forks
/// into the pod's namespaces, and may start the pod's pause process again).
async fn start_on_spawner(svc: &Arc<Service>, target: String) -> Result<(), ApiError> {
    let backend = svc.backend.clone();
    svc.spawner
        .run(move || backend.start(&target))
        .await
        .unwrap_or_else(|| {
            Err(ApiError::internal(
                "starting the container",
                &"the spawner thread is gone",
            ))
        })
}

/// A start body docker's clients send when they send none.
fn body_is_empty(body: &[u8]) -> bool {
    let trimmed = String::from_utf8_lossy(body);
    matches!(trimmed.trim(), "" | "{}" | "null")
}

/// Docker's `State.Status` words, which the `status` filter takes.
const STATUS_WORDS: [&str; 7] = [
    "created",
    "restarting",
    "running",
    "removing",
    "paused",
    "exited",
    "dead",
];

/// `lease=30s`: a duration more than 0 and at most a day (the CLI's bound).
fn parse_lease(s: &str) -> Result<Duration, ApiError> {
    let bad = || {
        ApiError::bad_request(format!(
            "invalid value for lease: {s:?} (use a duration such as 30s, 5m or 1h, more than 0 and at most 24h)"
        ))
    };
    sandbox::time::parse_lease(s).map_err(|_| bad())
}

fn container_view<'a>(sandbox: &Sandbox, c: &'a ContainerRecord) -> crate::shape::Container<'a> {
    crate::shape::Container {
        record: c,
        status: sandbox.container_status(c),
        pod_name: sandbox.pod(&c.pod).ok().map(|p| p.name),
        log_path: sandbox.log_path(c).display().to_string(),
    }
}

fn list(
    svc: &Service,
    all: bool,
    size: bool,
    limit: Option<i64>,
    filters: &Filters,
) -> Result<serde_json::Value, ApiError> {
    let sandbox = &svc.sandbox;
    let mut containers = sandbox
        .containers()
        .map_err(|e| ApiError::internal("listing containers", &format_chain(&e)))?;
    let pods = sandbox.pods().unwrap_or_default();
    // Newest first, as docker lists them.
    containers.sort_by(|a, b| b.created.cmp(&a.created).then_with(|| a.id.cmp(&b.id)));
    let now = crate::human::now();
    let show_all = all || limit.is_some() || !filters.get("status").is_empty();
    let mut out = Vec::new();
    for c in &containers {
        let status = sandbox.container_status(c);
        if !show_all && !status.is_running() {
            continue;
        }
        if !matches(c, status, filters) {
            continue;
        }
        let view = crate::shape::Container {
            record: c,
            status,
            pod_name: pods.iter().find(|p| p.id == c.pod).map(|p| p.name.clone()),
            log_path: sandbox.log_path(c).display().to_string(),
        };
        out.push(crate::shape::summary(&view, now, size));
        if limit.is_some_and(|l| out.len() as i64 >= l) {
            break;
        }
    }
    Ok(serde_json::Value::Array(out))
}

/// Docker's list filters: every `label` must match (`k` or `k=v`); any
/// one `status`, `name` (a substring of the name) or `id` (a prefix) must.
fn matches(c: &ContainerRecord, status: ContainerStatus, filters: &Filters) -> bool {
    let labels = filters
        .get("label")
        .iter()
        .all(|l| match l.split_once('=') {
            Some((k, v)) => c.labels.get(k).is_some_and(|have| have == v),
            None => c.labels.contains_key(l.as_str()),
        });
    let any = |key: &str, f: &dyn Fn(&str) -> bool| {
        let vals = filters.get(key);
        vals.is_empty() || vals.iter().any(|v| f(v))
    };
    labels
        && any("status", &|s| s == status.word())
        && any("name", &|n| c.name.contains(n.trim_start_matches('/')))
        && any("id", &|id| c.id.as_str().starts_with(id))
}

fn version_json() -> serde_json::Value {
    let uname = rustix::system::uname();
    let kernel = uname.release().to_string_lossy().into_owned();
    json!({
        "Platform": {"Name": "stasis"},
        "Components": [{
            "Name": "Engine",
            "Version": env!("CARGO_PKG_VERSION"),
            "Details": {"ApiVersion": API_VERSION, "MinAPIVersion": version::MINIMUM.to_string(), "Os": "linux", "Arch": go_arch(), "KernelVersion": kernel},
        }],
        "Version": env!("CARGO_PKG_VERSION"),
        "ApiVersion": API_VERSION,
        "MinAPIVersion": version::MINIMUM.to_string(),
        "GitCommit": "",
        "GoVersion": "",
        "Os": "linux",
        "Arch": go_arch(),
        "KernelVersion": kernel,
        "Experimental": false,
        "BuildTime": "",
    })
}

/// The architecture in Go's words, as docker's clients expect it.
fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        other => other,
    }
}

fn info_json(svc: &Service) -> serde_json::Value {
    let sandbox = &svc.sandbox;
    svc.backend.refresh();
    let containers = sandbox.containers().unwrap_or_default();
    let statuses: Vec<ContainerStatus> = containers
        .iter()
        .map(|c| sandbox.container_status(c))
        .collect();
    let count = |f: fn(&ContainerStatus) -> bool| statuses.iter().filter(|s| f(s)).count();
    let uname = rustix::system::uname();
    let mem_total = std::fs::read_to_string(svc.proc_root.join("meminfo"))
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024);
    let cgroup_version = if sandbox
        .hierarchies()
        .get(sandbox::freezer::Version::V1)
        .is_some()
    {
        "1"
    } else {
        "2"
    };
    json!({
        "ID": "",
        "Containers": statuses.len(),
        "ContainersRunning": count(|s| *s == ContainerStatus::Running),
        "ContainersPaused": count(|s| *s == ContainerStatus::Paused),
        "ContainersStopped": count(|s| !s.is_running()),
        "Images": 0,
        "Driver": "",
        "DriverStatus": [],
        "Plugins": {"Volume": [], "Network": [], "Authorization": null, "Log": ["json-file"]},
        "MemoryLimit": true,
        "SwapLimit": false,
        "CpuCfsPeriod": false,
        "CpuCfsQuota": false,
        "CPUShares": false,
        "CPUSet": false,
        "PidsLimit": false,
        "IPv4Forwarding": false,
        "Debug": false,
        "NFd": 0,
        "NGoroutines": 0,
        "SystemTime": sandbox::time::rfc3339_nanos(std::time::SystemTime::now()),
        "LoggingDriver": "json-file",
        "CgroupDriver": "cgroupfs",
        "CgroupVersion": cgroup_version,
        "KernelVersion": uname.release().to_string_lossy(),
        "OperatingSystem": "linux",
        "OSType": "linux",
        "Architecture": std::env::consts::ARCH,
        "NCPU": std::thread::available_parallelism().map_or(1, |n| n.get()),
        "MemTotal": mem_total,
        "DockerRootDir": sandbox.store().root().display().to_string(),
        "Name": svc.hostname,
        "Labels": [],
        "ExperimentalBuild": false,
        "ServerVersion": env!("CARGO_PKG_VERSION"),
        "SecurityOptions": [],
        "Warnings": [],
    })
}

/// `wait?condition=`: docker's three conditions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Condition {
    NotRunning,
    NextExit,
    Removed,
}

/// The exit code a wait reports for a container whose monitor died
/// before recording how it ended.
const UNKNOWN_EXIT: i32 = 255;

/// `POST /containers/{id}/wait`: 200 and its headers at once (the docker
/// CLI calls this before `start` and waits for the headers), the body
/// when the condition is met; a client that hangs up ends the wait.
async fn wait(
    svc: &Arc<Service>,
    target: String,
    query: &Query,
) -> Result<Response<Body>, ApiError> {
    let condition = match query.get("condition") {
        None | Some("" | "not-running") => Condition::NotRunning,
        Some("next-exit") => Condition::NextExit,
        Some("removed") => Condition::Removed,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "invalid condition: {other:?} (not-running, next-exit or removed)"
            )))
        }
    };
    let permit = stream_permit(svc)?;
    let s = svc.clone();
    let first = blocking("waiting for the container", move || {
        s.backend.refresh();
        // Where the journal stands before the status is read: a container
        // removed between two looks (`run --rm`) told its exit code there.
        let since = s.sandbox.journal().end().unwrap_or(0);
        let c = find(&s.sandbox, &target)?;
        let status = s.sandbox.container_status(&c);
        Ok((c, status, since))
    })
    .await?;
    let (tx, body) = body::channel(1);
    let svc = svc.clone();
    tokio::task::spawn_blocking(move || {
        let _permit = permit;
        let (c, initial, since) = first;
        let code = wait_blocking(&svc, &c, initial, since, condition, &tx);
        if let Some(code) = code {
            let mut data = serde_json::to_vec(&json!({"StatusCode": code})).unwrap_or_default();
            data.push(b'\n');
            let _ = tx.blocking_send(Bytes::from(data));
        }
    });
    let mut resp = Response::new(body);
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Ok(resp)
}

/// Waits for the condition; the exit code, or `None` if the client went
/// away or the service is stopping.
fn wait_blocking(
    svc: &Service,
    c: &ContainerRecord,
    initial: ContainerStatus,
    since: u64,
    condition: Condition,
    tx: &tokio::sync::mpsc::Sender<Bytes>,
) -> Option<i32> {
    let code_of = |s: ContainerStatus| match s {
        ContainerStatus::Exited(code) => code.unwrap_or(UNKNOWN_EXIT),
        _ => 0,
    };
    let mut last = initial;
    loop {
        if tx.is_closed() || svc.stopping.load(Ordering::Relaxed) {
            return None;
        }
        let status = match svc.sandbox.container(&c.id) {
            Ok(fresh) => svc.sandbox.container_status(&fresh),
            // Removed: if before it was seen exited (`run --rm`), its
            // `die` event has the code.
            Err(e) if e.is_not_found() => {
                return Some(match last {
                    ContainerStatus::Exited(_) => code_of(last),
                    _ => died_with(svc, &c.id, since).unwrap_or_else(|| code_of(last)),
                })
            }
            Err(e) => {
                tracing::error!(error = %format_chain(&e), container = %c.name, "waiting for a container");
                return None;
            }
        };
        last = status;
        let done = match condition {
            Condition::NotRunning => !status.is_running(),
            Condition::NextExit => {
                matches!(status, ContainerStatus::Exited(_))
                    && !matches!(initial, ContainerStatus::Exited(_))
            }
            Condition::Removed => false,
        };
        if done {
            return Some(code_of(status));
        }
        if matches!(status, ContainerStatus::Exited(_)) {
            // Only its removal can come now: look again in a while.
            std::thread::sleep(Duration::from_millis(200));
        } else if let Err(e) = svc.sandbox.wait_exit(c, Some(Duration::from_millis(500))) {
            tracing::error!(error = %format_chain(&e), container = %c.name, "waiting for a container");
            return None;
        }
    }
}

/// The exit code of the last `die` event of container `id` in the journal
/// from `since`.
fn died_with(svc: &Service, id: &sandbox::Id, since: u64) -> Option<i32> {
    let (events, _) = svc.sandbox.journal().read_from(since).ok()?;
    events
        .iter()
        .rev()
        .find(|e| e.action == "die" && e.id == id.as_str())
        .and_then(|e| e.attributes.get("exitCode")?.parse().ok())
}

pub(crate) fn stream_permit(svc: &Service) -> Result<tokio::sync::OwnedSemaphorePermit, ApiError> {
    svc.streams.clone().try_acquire_owned().map_err(|_| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "too many streaming requests (logs --follow, wait) in flight; the limit is {}",
                svc.limits.max_streams
            ),
        )
    })
}

/// `GET /containers/{id}/logs`: the container's stdout and stderr, each in
/// docker's multiplexed frames of its own stream, with `tail`, `since` and
/// `timestamps` (the log keeps the streams apart and a time per line);
/// `until` is refused.
async fn logs(
    svc: &Arc<Service>,
    target: String,
    query: &Query,
) -> Result<Response<Body>, ApiError> {
    let stdout = query.flag("stdout", false)?;
    let stderr = query.flag("stderr", false)?;
    if !stdout && !stderr {
        return Err(ApiError::bad_request(
            "Bad parameters: you must choose at least one stream",
        ));
    }
    let follow = query.flag("follow", false)?;
    let timestamps = query.flag("timestamps", false)?;
    if !matches!(query.get("until"), None | Some("" | "0")) {
        return Err(ApiError::bad_request(
            "until: stasis does not end a log at a time",
        ));
    }
    let since = match query.get("since") {
        None | Some("" | "0") => None,
        Some(t) => Some(
            sandbox::time::parse_time(t, std::time::SystemTime::now())
                .map_err(|e| ApiError::bad_request(format!("since: {e}")))?,
        ),
    };
    let tail = match query.get("tail") {
        None | Some("" | "all") => None,
        Some(n) => Some(n.parse::<usize>().map_err(|_| {
            ApiError::bad_request(format!("invalid value for tail: {n:?} (a number or all)"))
        })?),
    };
    let opts = sandbox::logs::LogOptions {
        follow,
        tail,
        since,
        timestamps,
        from_offset: None,
    };
    let permit = if follow {
        Some(stream_permit(svc)?)
    } else {
        None
    };
    let s = svc.clone();
    let c = blocking("reading the log", move || {
        s.backend.refresh();
        find(&s.sandbox, &target)
    })
    .await?;
    let (tx, body) = body::channel(8);
    let svc = svc.clone();
    tokio::task::spawn_blocking(move || {
        let _permit = permit;
        let mut out = FrameWriter {
            tx,
            raw: c.stdio.tty,
            skip: 0,
            stopping: svc.stopping.clone(),
        };
        let copied = svc.sandbox.copy_log_streams(
            &c,
            &mut |stream, bytes| match stream {
                sandbox::logs::Stream::Stdout if stdout => out.send(1, bytes),
                sandbox::logs::Stream::Stderr if stderr => out.send(2, bytes),
                _ => out.check(),
            },
            opts,
        );
        if let Err(e) = copied {
            // Most often the client hung up.
            tracing::debug!(error = %format_chain(&e), container = %c.name, "log stream ended");
        }
    });
    let mut resp = Response::new(body);
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(MULTIPLEXED));
    Ok(resp)
}

/// How long one wait for the journal lasts: how soon a client that hung up,
/// an `until` that passed or a stopping service is noticed.
const EVENTS_SLICE: Duration = Duration::from_millis(250);

/// `GET /events`: the event journal ([`sandbox::journal`]) as docker's
/// event objects, one JSON object per line, each sent as it is read.
/// Without `since` and `until`, only new events, as docker does; with
/// them, from the oldest kept; without `until`, it follows until the
/// client hangs up.
async fn events(svc: &Arc<Service>, query: &Query) -> Result<Response<Body>, ApiError> {
    let now = std::time::SystemTime::now();
    let time = |key: &str| match query.get(key) {
        None | Some("") => Ok(None),
        Some(v) => sandbox::time::parse_time(v, now)
            .map(Some)
            .map_err(|e| ApiError::bad_request(format!("invalid value for {key}: {e}"))),
    };
    let (since, until) = (time("since")?, time("until")?);
    let mut filters = sandbox::journal::Filters::default();
    for (key, values) in &query.filters()?.0 {
        for v in values {
            filters
                .add(key, v)
                .map_err(|e| ApiError::bad_request(capitalized_msg(&e)))?;
        }
    }
    let permit = stream_permit(svc)?;
    let journal = svc.sandbox.journal();
    let replay = since.is_some() || until.is_some();
    let start = blocking("reading the event journal", move || {
        if replay {
            Ok(0)
        } else {
            journal
                .end()
                .map_err(|e| ApiError::internal("reading the event journal", &format_chain(&e)))
        }
    })
    .await?;
    let (tx, body) = body::channel(64);
    let svc = svc.clone();
    tokio::task::spawn_blocking(move || {
        let _permit = permit;
        let journal = svc.sandbox.journal();
        let mut offset = start;
        loop {
            let (events, next) = match journal.read_from(offset) {
                Ok(r) => r,
                Err(e) => {
                    tracing::error!(error = %format_chain(&e), "reading the event journal");
                    return;
                }
            };
            offset = next;
            for e in events {
                let t = e.time();
                if since.is_some_and(|s| t < s)
                    || until.is_some_and(|u| t > u)
                    || !filters.matches(&e)
                {
                    continue;
                }
                let mut line = serde_json::to_vec(&e.docker_json()).unwrap_or_default();
                line.push(b'\n');
                if tx.blocking_send(Bytes::from(line)).is_err() {
                    return;
                }
            }
            let now = std::time::SystemTime::now();
            if until.is_some_and(|u| now >= u)
                || tx.is_closed()
                || svc.stopping.load(Ordering::Relaxed)
            {
                return;
            }
            let slice = until
                .and_then(|u| u.duration_since(now).ok())
                .map_or(EVENTS_SLICE, |left| left.min(EVENTS_SLICE));
            if let Err(e) = journal.wait(offset, slice) {
                tracing::error!(error = %format_chain(&e), "waiting for the event journal");
                return;
            }
        }
    });
    let mut resp = Response::new(body);
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Ok(resp)
}

/// A sandbox error's own message, capitalized as docker's are.
fn capitalized_msg(e: &sandbox::Error) -> String {
    crate::error::capitalized(&e.to_string())
}

/// Why a streamed request body stopped early.
const BODY_OK: u8 = 0;
const BODY_TOO_LARGE: u8 = 1;
const BODY_TIMED_OUT: u8 = 2;

/// A request body read as a [`std::io::Read`] on a blocking thread, fed
/// by an async task that enforces the size limit and the time each chunk
/// may take; `state` says which stopped it.
struct StreamReader {
    rx: tokio::sync::mpsc::Receiver<std::io::Result<Bytes>>,
    current: Bytes,
}

impl std::io::Read for StreamReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.current.is_empty() {
            match self.rx.blocking_recv() {
                Some(Ok(chunk)) => self.current = chunk,
                Some(Err(e)) => return Err(e),
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current.split_to(n));
        Ok(n)
    }
}

fn stream_body(svc: &Service, body: Incoming) -> (StreamReader, Arc<std::sync::atomic::AtomicU8>) {
    let (tx, rx) = tokio::sync::mpsc::channel(8);
    let state = Arc::new(std::sync::atomic::AtomicU8::new(BODY_OK));
    let limit = svc.limits.max_image_body;
    let per_chunk = svc.limits.body_timeout;
    let flag = state.clone();
    tokio::spawn(async move {
        let mut body = body;
        let mut total: u64 = 0;
        loop {
            let stop = |why: u8, e: std::io::Error| {
                flag.store(why, Ordering::Relaxed);
                e
            };
            let frame = match tokio::time::timeout(per_chunk, body.frame()).await {
                Err(_) => Err(stop(
                    BODY_TIMED_OUT,
                    std::io::Error::new(std::io::ErrorKind::TimedOut, "the request body stalled"),
                )),
                Ok(None) => return,
                Ok(Some(Err(e))) => Err(std::io::Error::other(e)),
                Ok(Some(Ok(frame))) => match frame.into_data() {
                    Ok(data) => {
                        total += data.len() as u64;
                        if total > limit {
                            Err(stop(
                                BODY_TOO_LARGE,
                                std::io::Error::other("the request body is over the limit"),
                            ))
                        } else {
                            Ok(data)
                        }
                    }
                    // Trailers: nothing to read.
                    Err(_) => continue,
                },
            };
            let failed = frame.is_err();
            if tx.send(frame).await.is_err() || failed {
                return;
            }
        }
    });
    (
        StreamReader {
            rx,
            current: Bytes::new(),
        },
        state,
    )
}

/// A streamed body's failure as the client sees it, if the stream's own
/// limits stopped it.
fn stream_error(svc: &Service, state: &std::sync::atomic::AtomicU8) -> Option<ApiError> {
    match state.load(Ordering::Relaxed) {
        BODY_TOO_LARGE => Some(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "the image archive is larger than the limit of {} bytes",
                svc.limits.max_image_body
            ),
        )),
        BODY_TIMED_OUT => Some(ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            "timed out reading the request body",
        )),
        _ => None,
    }
}

/// docker's progress messages: one JSON object per line.
fn progress_response(lines: &[serde_json::Value]) -> Response<Body> {
    let mut data = Vec::new();
    for l in lines {
        data.extend(serde_json::to_vec(l).unwrap_or_default());
        data.push(b'\n');
    }
    let mut resp = Response::new(body::full(data));
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}

/// `POST /images/create`: `fromSrc=-` imports the body (what `docker
/// import` sends); `fromImage` (a pull) is refused, clearly.
async fn import_image(
    svc: &Arc<Service>,
    query: &Query,
    input: Input,
) -> Result<Response<Body>, ApiError> {
    if let Some(image) = query.get("fromImage").filter(|i| !i.is_empty()) {
        let tag = query.get("tag").filter(|t| !t.is_empty());
        let name = tag.map_or_else(|| image.to_owned(), |t| format!("{image}:{t}"));
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!(
                "stasis does not pull images from registries: {name} is not in its store \
                 (docker import, docker load, stasis image import or stasis image load put it there)"
            ),
        ));
    }
    match query.get("fromSrc") {
        Some("-") => {}
        Some(src) => {
            return Err(ApiError::bad_request(format!(
                "fromSrc {src:?}: stasis imports from the request body only (fromSrc=-)"
            )))
        }
        None => {
            return Err(ApiError::bad_request(
                "give fromSrc=- (an import) or fromImage",
            ))
        }
    }
    let reference = match (
        query.get("repo").filter(|r| !r.is_empty()),
        query.get("tag").filter(|t| !t.is_empty()),
    ) {
        (Some(repo), Some(tag)) => Some(format!("{repo}:{tag}")),
        (Some(repo), None) => Some(repo.to_owned()),
        (None, Some(_)) => return Err(ApiError::bad_request("a tag without a repo")),
        (None, None) => None,
    };
    let changes = query.all("changes");
    let Input::Stream(incoming) = input else {
        return Err(ApiError::internal("importing the image", &"no body stream"));
    };
    let (mut reader, state) = stream_body(svc, incoming);
    let s = svc.clone();
    let imported = blocking("importing the image", move || {
        let r = s
            .backend
            .import_image(&mut reader, reference.as_deref(), &changes);
        // Drain what is left, so the connection can be reused.
        let _ = std::io::copy(&mut reader, &mut std::io::sink());
        r
    })
    .await;
    if let Some(e) = stream_error(svc, &state) {
        return Err(e);
    }
    let id = imported?;
    Ok(progress_response(&[json!({"status": id})]))
}

/// `POST /images/load`: a `docker save` or OCI archive in the body.
async fn load_images(svc: &Arc<Service>, input: Input) -> Result<Response<Body>, ApiError> {
    let Input::Stream(incoming) = input else {
        return Err(ApiError::internal("loading images", &"no body stream"));
    };
    let (mut reader, state) = stream_body(svc, incoming);
    let s = svc.clone();
    let loaded = blocking("loading images", move || {
        let r = s.backend.load_images(&mut reader);
        let _ = std::io::copy(&mut reader, &mut std::io::sink());
        r
    })
    .await;
    if let Some(e) = stream_error(svc, &state) {
        return Err(e);
    }
    let lines: Vec<serde_json::Value> = loaded?
        .into_iter()
        .map(|l| json!({"stream": format!("{l}\n")}))
        .collect();
    Ok(progress_response(&lines))
}

/// `POST /containers/{id}/attach`: an HTTP upgrade (`101`), then the
/// container's output until it exits: docker's multiplexed frames, or the
/// raw bytes of a TTY container. With `logs=1` the output so far comes
/// first; without, only what comes next. `docker run` without `-d`
/// attaches before it starts the container, so it gets every byte. With
/// `stdin=1`, for a container created with `OpenStdin`, what the client
/// sends is its stdin (held until it runs), through its monitor's attach
/// socket; the client's half-close ends it for a `StdinOnce` container;
/// `detachKeys` (default ctrl-p,ctrl-q) end the attach.
async fn attach(
    svc: &Arc<Service>,
    target: String,
    query: &Query,
    input: Input,
) -> Result<Response<Body>, ApiError> {
    let stream = query.flag("stream", false)?;
    let logs = query.flag("logs", false)?;
    let stdin = query.flag("stdin", false)?;
    if !stream && !logs {
        return Err(ApiError::bad_request(
            "Bad parameters: give stream=1 or logs=1",
        ));
    }
    let keys = sandbox::attach::parse_detach_keys(
        query
            .get("detachKeys")
            .filter(|k| !k.is_empty())
            .unwrap_or(sandbox::attach::DEFAULT_DETACH_KEYS),
    )
    .map_err(|e| ApiError::bad_request(format!("Invalid detach keys: {e}")))?;
    let Input::Upgrade(_, Some(on_upgrade)) = input else {
        return Err(ApiError::bad_request(
            "attach needs an HTTP upgrade (Connection: Upgrade, Upgrade: tcp)",
        ));
    };
    let permit = stream_permit(svc)?;
    let s = svc.clone();
    // Without logs=1, only what the container writes from now on.
    let since = (!logs).then(std::time::SystemTime::now);
    let c = blocking("attaching to the container", move || {
        s.backend.refresh();
        find(&s.sandbox, &target)
    })
    .await?;
    let raw = c.stdio.tty;
    // As docker: stdin is attached only to a container that keeps it open.
    let sink = (stdin && c.stdio.open_stdin).then(|| crate::hijack::Sink::Monitor {
        sandbox: Box::new(svc.sandbox.clone()),
        id: c.id.clone(),
        stdin_once: c.stdio.stdin_once,
    });
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(8);
    let svc = svc.clone();
    tokio::spawn(async move {
        let Some((rd, wr)) = crate::hijack::upgraded(on_upgrade, "attach").await else {
            return;
        };
        let (detached_tx, detached_rx) = tokio::sync::oneshot::channel();
        // Without stdin nothing detaches (the sender dropped says so).
        if let Some(sink) = sink {
            crate::hijack::read_in(rd, keys, sink, detached_tx);
        }
        let follow = stream;
        let stopping = svc.stopping.clone();
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let mut out = FrameWriter {
                tx,
                raw,
                skip: 0,
                stopping,
            };
            let copied = svc.sandbox.copy_log_streams(
                &c,
                &mut |stream, bytes| match stream {
                    sandbox::logs::Stream::Stdout => out.send(1, bytes),
                    sandbox::logs::Stream::Stderr => out.send(2, bytes),
                },
                sandbox::logs::LogOptions {
                    follow,
                    since,
                    ..Default::default()
                },
            );
            if let Err(e) = copied {
                tracing::debug!(error = %format_chain(&e), container = %c.name, "attach ended");
            }
        });
        crate::hijack::write_out(wr, rx, detached_rx).await;
    });
    Ok(crate::exec::upgrade_response(raw))
}

/// Writes each chunk as one frame of docker's multiplexed stream: the
/// 8-byte header `[1, 0, 0, 0, len u32 BE]` (stream 1, stdout), then the
/// bytes. Fails once the client has gone, which ends the copy.
struct FrameWriter {
    tx: tokio::sync::mpsc::Sender<Bytes>,
    /// A TTY container's one stream: the bytes without frames, as docker
    /// sends them.
    raw: bool,
    /// Bytes still to drop (before the tail).
    skip: u64,
    stopping: Arc<AtomicBool>,
}

fn gone() -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the client has gone")
}

impl FrameWriter {
    /// Sends `data` in frames of `stream` (1 stdout, 2 stderr), then checks
    /// that the client is still there.
    fn send(&mut self, stream: u8, data: &[u8]) -> std::io::Result<()> {
        // A frame holds up to 4 GiB; a log line is far smaller.
        for part in data.chunks(1 << 20) {
            self.tx
                .blocking_send(crate::hijack::frame(stream, part, self.raw))
                .map_err(|_| gone())?;
        }
        self.check()
    }

    /// An error once the client has gone or the service is stopping.
    fn check(&self) -> std::io::Result<()> {
        if self.tx.is_closed() || self.stopping.load(Ordering::Relaxed) {
            return Err(gone());
        }
        Ok(())
    }
}

impl std::io::Write for FrameWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let dropped = usize::try_from(self.skip)
            .unwrap_or(usize::MAX)
            .min(buf.len());
        self.skip -= dropped as u64;
        self.send(1, &buf[dropped..])?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if self.tx.is_closed() || self.stopping.load(Ordering::Relaxed) {
            return Err(gone());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_and_their_verbs() {
        let r = |m: Method, p: &str| route(&m, p).map(|r| (r.op, r.verb, r.target));
        assert_eq!(
            r(Method::GET, "/_ping"),
            Ok((Op::Ping, Verb::Ping, String::new()))
        );
        assert_eq!(
            r(Method::HEAD, "/_ping"),
            Ok((Op::Ping, Verb::Ping, String::new()))
        );
        assert_eq!(
            r(Method::POST, "/containers/web/pause"),
            Ok((Op::Pause, Verb::Pause, "web".into()))
        );
        assert_eq!(
            r(Method::DELETE, "/containers/web"),
            Ok((Op::Remove, Verb::Rm, "web".into()))
        );
        assert_eq!(
            r(Method::GET, "/containers/web/json"),
            Ok((Op::Inspect, Verb::Inspect, "web".into()))
        );
        for (m, p, op, verb, target) in [
            (
                Method::POST,
                "/containers/web/exec",
                Op::ExecCreate,
                Verb::Exec,
                "web",
            ),
            (
                Method::POST,
                "/containers/web/resize",
                Op::Resize,
                Verb::Exec,
                "web",
            ),
            (
                Method::POST,
                "/exec/e1/start",
                Op::ExecStart,
                Verb::Exec,
                "e1",
            ),
            (
                Method::POST,
                "/exec/e1/resize",
                Op::ExecResize,
                Verb::Exec,
                "e1",
            ),
            (
                Method::GET,
                "/exec/e1/json",
                Op::ExecInspect,
                Verb::Inspect,
                "e1",
            ),
        ] {
            assert_eq!(r(m, p), Ok((op, verb, target.into())), "{p}");
        }
        assert!(r(Method::GET, "/exec/e1/start").is_err(), "start is a POST");
        assert_eq!(
            r(Method::GET, "/images/localhost/app:1/json"),
            Ok((Op::ImageInspect, Verb::Images, "localhost/app:1".into()))
        );
        assert_eq!(
            r(Method::DELETE, "/images/localhost/app:1"),
            Ok((Op::ImageRemove, Verb::Import, "localhost/app:1".into()))
        );
        assert_eq!(
            r(Method::GET, "/images/json"),
            Ok((Op::ImageList, Verb::Images, String::new()))
        );
        assert!(route(&Method::GET, "/images/").is_err());
        assert_eq!(
            r(Method::GET, "/events"),
            Ok((Op::Events, Verb::Events, String::new()))
        );
        let e = route(&Method::POST, "/containers/web/fly").expect_err("no such action");
        assert_eq!(e.status, StatusCode::NOT_FOUND);
        assert!(
            route(&Method::GET, "/containers/web/pause").is_err(),
            "POST only"
        );
    }

    #[test]
    fn leases_and_start_bodies() {
        assert_eq!(parse_lease("30s").expect("30s"), Duration::from_secs(30));
        assert_eq!(parse_lease("5m").expect("5m"), Duration::from_secs(300));
        assert_eq!(parse_lease("2").expect("2"), Duration::from_secs(2));
        for bad in ["0", "-1s", "25h", "soon", ""] {
            assert!(parse_lease(bad).is_err(), "{bad}");
        }
        assert!(body_is_empty(b""));
        assert!(body_is_empty(b" {} "));
        assert!(!body_is_empty(br#"{"Binds":[]}"#));
    }

    #[test]
    fn frames_carry_docker_s_header() {
        let (tx, mut rx) = tokio::sync::mpsc::channel(4);
        let mut w = FrameWriter {
            tx,
            raw: false,
            skip: 2,
            stopping: Arc::new(AtomicBool::new(false)),
        };
        std::io::Write::write_all(&mut w, b"a\nhello\n").expect("write");
        let frame = rx.try_recv().expect("frame");
        assert_eq!(&frame[..8], &[1, 0, 0, 0, 0, 0, 0, 6]);
        assert_eq!(&frame[8..], b"hello\n");
        drop(rx);
        assert!(
            std::io::Write::flush(&mut w).is_err(),
            "the client has gone"
        );
    }

    #[test]
    fn filters_select_as_docker_s_do() {
        let id = sandbox::Id::try_from("cd".repeat(32)).expect("id");
        let c = ContainerRecord {
            id: id.clone(),
            name: "web-1".into(),
            pod: id,
            created: 0,
            command: vec!["true".into()],
            env: vec![],
            workdir: None,
            rootfs: None,
            image: None,
            user: None,
            labels: [
                ("tier".to_owned(), "db".to_owned()),
                ("x".to_owned(), String::new()),
            ]
            .into(),
            process: None,
            monitor: None,
            started: None,
            exit: None,
            auto_remove: false,
            healthcheck: None,
            health: None,
            created_ns: 0,
            limits: Default::default(),
            restart: Default::default(),
            restart_count: 0,
            restarting: false,
            stopped: false,
            isolation: Default::default(),
            stdio: Default::default(),
            checkpoint: None,
            checkpointing: false,
        };
        let f = |s: &str| Filters::parse(s).expect("filters");
        let running = ContainerStatus::Running;
        assert!(matches(&c, running, &Filters::default()));
        assert!(matches(
            &c,
            running,
            &f(r#"{"label":{"tier=db":true,"x":true}}"#)
        ));
        assert!(
            !matches(&c, running, &f(r#"{"label":["tier=db","y"]}"#)),
            "labels all match"
        );
        assert!(
            matches(&c, running, &f(r#"{"status":["paused","running"]}"#)),
            "any status"
        );
        assert!(!matches(
            &c,
            ContainerStatus::Paused,
            &f(r#"{"status":["running"]}"#)
        ));
        assert!(matches(&c, running, &f(r#"{"name":["/web"]}"#)));
        assert!(matches(&c, running, &f(r#"{"id":["cdcd"]}"#)));
        assert!(!matches(&c, running, &f(r#"{"id":["ab"]}"#)));
    }
}
