//! Docker's exec: `POST /containers/{id}/exec` makes an exec instance,
//! `POST /exec/{id}/start` runs it (the sandbox's exec, on the spawner
//! thread: it forks into the container's namespaces), `GET
//! /exec/{id}/json` and `POST /exec/{id}/resize`.
//!
//! The instances live in the service's memory only, as docker's do in
//! dockerd's: at most [`MAX_EXECS`], the oldest ended ones forgotten
//! first. Their processes are the spawner thread's children and die with
//! it (`PR_SET_PDEATHSIG`, SIGKILL): a service that stops or is killed
//! leaves none behind, and a new one knows none.
//!
//! What the CLI's `stasis exec` does is what is served: `Cmd`, `Env`,
//! `WorkingDir`, `Tty`, `AttachStdin/Stdout/Stderr`, `DetachKeys`,
//! `ConsoleSize`. `User` only as the container's own user and
//! `Privileged` only false (the command has the container's confinement):
//! others are `400`.

use std::collections::HashMap;
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Response, StatusCode};
use sandbox::attach::{parse_detach_keys, DetachKeys, DEFAULT_DETACH_KEYS};
use sandbox::{ExecOptions, ExecStdio};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::body::{self, Body};
use crate::error::ApiError;
use crate::hijack::{self, Sink};
use crate::routes::Service;

/// The most exec instances kept.
pub(crate) const MAX_EXECS: usize = 1024;

/// How long an ended (or never started) instance is surely kept.
const KEEP: Duration = Duration::from_secs(300);

/// moby's `ExecConfig`, as the clients send it (null for any field).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct CreateBody {
    attach_stdin: Option<bool>,
    attach_stdout: Option<bool>,
    attach_stderr: Option<bool>,
    detach_keys: Option<String>,
    tty: Option<bool>,
    env: Option<Vec<String>>,
    cmd: Option<Vec<String>>,
    working_dir: Option<String>,
    user: Option<String>,
    privileged: Option<bool>,
    console_size: Option<Vec<u16>>,
}

/// moby's `ExecStartCheck`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct StartBody {
    detach: Option<bool>,
    console_size: Option<Vec<u16>>,
}

/// What an exec instance runs, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ExecConfig {
    pub argv: Vec<String>,
    pub env: Vec<String>,
    pub workdir: Option<PathBuf>,
    pub tty: bool,
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    pub detach_keys: DetachKeys,
    /// As the client gave them (empty: docker's default).
    pub detach_keys_text: String,
    pub user: String,
    /// Rows and columns, from `ConsoleSize`.
    pub console_size: Option<(u16, u16)>,
}

/// `[rows, columns]`; `[0, 0]` (what the CLI sends without a terminal) is
/// none.
fn console_size(v: Option<Vec<u16>>) -> Result<Option<(u16, u16)>, ApiError> {
    match v.as_deref() {
        None | Some([]) | Some([0, 0]) => Ok(None),
        Some([h, w]) => Ok(Some((*h, *w))),
        Some(_) => Err(ApiError::bad_request(
            "ConsoleSize: expected [height, width]",
        )),
    }
}

impl ExecConfig {
    /// Reads a create request's body; `user` is the container's own user
    /// as docker writes it (the only one an exec may ask for).
    pub(crate) fn parse(body: &[u8], container_user: &str) -> Result<Self, ApiError> {
        let b: CreateBody = serde_json::from_slice(body)
            .map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))?;
        let argv = b.cmd.unwrap_or_default();
        if argv.is_empty() {
            return Err(ApiError::bad_request("No exec command specified"));
        }
        if b.privileged == Some(true) {
            return Err(ApiError::bad_request(
                "Privileged exec is not supported: the command runs with the container's confinement",
            ));
        }
        let user = b.user.unwrap_or_default();
        if !user.is_empty()
            && user != container_user
            && Some(user.as_str()) != container_user.split(':').next()
        {
            return Err(ApiError::bad_request(format!(
                "exec as user {user:?} is not supported: the command runs as the container's user ({})",
                if container_user.is_empty() { "root" } else { container_user }
            )));
        }
        let detach_keys_text = b.detach_keys.unwrap_or_default();
        let detach_keys = parse_detach_keys(if detach_keys_text.is_empty() {
            DEFAULT_DETACH_KEYS
        } else {
            &detach_keys_text
        })
        .map_err(|e| {
            ApiError::bad_request(format!("Invalid detach keys ({detach_keys_text}): {e}"))
        })?;
        for e in b.env.iter().flatten() {
            if e.split_once('=').is_none_or(|(k, _)| k.is_empty()) {
                return Err(ApiError::bad_request(format!(
                    "invalid environment variable {e:?}: expected KEY=VALUE"
                )));
            }
        }
        Ok(ExecConfig {
            argv,
            env: b.env.unwrap_or_default(),
            workdir: b.working_dir.filter(|w| !w.is_empty()).map(PathBuf::from),
            tty: b.tty.unwrap_or(false),
            stdin: b.attach_stdin.unwrap_or(false),
            stdout: b.attach_stdout.unwrap_or(false),
            stderr: b.attach_stderr.unwrap_or(false),
            detach_keys,
            detach_keys_text,
            user,
            console_size: console_size(b.console_size)?,
        })
    }
}

/// One exec instance.
pub(crate) struct Exec {
    id: String,
    container_id: String,
    container_name: String,
    config: ExecConfig,
    created: Instant,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    started: bool,
    running: bool,
    pid: u32,
    exit_code: Option<i32>,
    ended: Option<Instant>,
    /// The terminal's master, for resizes.
    master: Option<Arc<OwnedFd>>,
}

/// The service's exec instances.
#[derive(Default)]
pub(crate) struct Execs {
    map: Mutex<HashMap<String, Arc<Exec>>>,
}

impl Execs {
    fn insert(&self, exec: Exec) -> Result<String, ApiError> {
        let mut map = self.map.lock().map_err(|_| poisoned())?;
        if map.len() >= MAX_EXECS {
            // Forget the ended and never started ones, oldest first.
            let now = Instant::now();
            let mut idle: Vec<(Instant, String)> = map
                .values()
                .filter_map(|e| {
                    let s = e.state.lock().ok()?;
                    (!s.running).then(|| (s.ended.unwrap_or(e.created), e.id.clone()))
                })
                .collect();
            idle.sort();
            for (at, id) in &idle {
                if map.len() < MAX_EXECS && now.duration_since(*at) < KEEP {
                    break;
                }
                map.remove(id);
            }
            if map.len() >= MAX_EXECS {
                return Err(ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!("too many exec instances running; the limit is {MAX_EXECS}"),
                ));
            }
        }
        let id = exec.id.clone();
        map.insert(id.clone(), Arc::new(exec));
        Ok(id)
    }

    fn get(&self, id: &str) -> Result<Arc<Exec>, ApiError> {
        self.map
            .lock()
            .map_err(|_| poisoned())?
            .get(id)
            .cloned()
            .ok_or_else(|| {
                ApiError::new(
                    StatusCode::NOT_FOUND,
                    format!("No such exec instance: {id}"),
                )
            })
    }
}

fn poisoned() -> ApiError {
    ApiError::internal("the exec table", &"a thread panicked holding it")
}

impl Exec {
    fn lock(&self) -> Result<std::sync::MutexGuard<'_, State>, ApiError> {
        self.state.lock().map_err(|_| poisoned())
    }

    /// Records how it ended.
    fn ended(&self, code: i32) {
        if let Ok(mut s) = self.state.lock() {
            s.running = false;
            s.exit_code = Some(code);
            s.ended = Some(Instant::now());
            s.master = None;
        }
    }

    /// `GET /exec/{id}/json`: moby's `ExecInspect`.
    fn inspect(&self) -> Result<Value, ApiError> {
        let s = self.lock()?;
        let c = &self.config;
        Ok(json!({
            "ID": self.id,
            "Running": s.running,
            "ExitCode": s.exit_code,
            "ProcessConfig": {
                "tty": c.tty,
                "entrypoint": c.argv[0],
                "arguments": &c.argv[1..],
                "privileged": false,
                "user": c.user,
            },
            "OpenStdin": c.stdin,
            "OpenStderr": c.stderr,
            "OpenStdout": c.stdout,
            "CanRemove": false,
            "ContainerID": self.container_id,
            "DetachKeys": c.detach_keys_text,
            "Pid": s.pid,
        }))
    }
}

/// A fresh exec ID: 64 hex digits, as docker's.
fn new_id() -> Result<String, ApiError> {
    sandbox::Id::generate()
        .map(|id| id.as_str().to_owned())
        .map_err(|e| ApiError::internal("making an exec ID", &crate::format_chain(&e)))
}

/// `POST /containers/{id}/exec`.
pub(crate) async fn create(
    svc: &Arc<Service>,
    target: String,
    body: Bytes,
) -> Result<Response<Body>, ApiError> {
    let s = svc.clone();
    let c = crate::routes::blocking("creating the exec", move || {
        s.backend.refresh();
        crate::routes::find(&s.sandbox, &target)
    })
    .await?;
    let user = c
        .user
        .map_or_else(String::new, |u| format!("{}:{}", u.uid, u.gid));
    let config = ExecConfig::parse(&body, &user)?;
    refuse_unless_running(svc, &c).await?;
    let id = svc.execs.insert(Exec {
        id: new_id()?,
        container_id: c.id.as_str().to_owned(),
        container_name: c.name.clone(),
        config,
        created: Instant::now(),
        state: Mutex::new(State::default()),
    })?;
    Ok(crate::routes::json_response(
        StatusCode::CREATED,
        &json!({ "Id": id }),
    ))
}

/// docker's 409s: an exec needs a running container.
async fn refuse_unless_running(
    svc: &Arc<Service>,
    c: &sandbox::ContainerRecord,
) -> Result<(), ApiError> {
    let s = svc.clone();
    let rec = c.clone();
    let status = crate::routes::blocking("creating the exec", move || {
        Ok(s.sandbox.container_status(&rec))
    })
    .await?;
    match status {
        sandbox::ContainerStatus::Running => Ok(()),
        sandbox::ContainerStatus::Paused => Err(ApiError::conflict(format!(
            "Container {} is paused, unpause the container before exec",
            c.id.as_str()
        ))),
        _ => Err(ApiError::conflict(format!(
            "Container {} is not running",
            c.id.as_str()
        ))),
    }
}

/// `GET /exec/{id}/json`.
pub(crate) fn inspect(svc: &Service, id: &str) -> Result<Response<Body>, ApiError> {
    let v = svc.execs.get(id)?.inspect()?;
    Ok(crate::routes::json_response(StatusCode::OK, &v))
}

/// `POST /exec/{id}/resize?h=&w=`: the exec's terminal's size.
pub(crate) fn resize(
    svc: &Service,
    id: &str,
    query: &crate::query::Query,
) -> Result<Response<Body>, ApiError> {
    let (rows, cols) = size_of(query)?;
    let exec = svc.execs.get(id)?;
    if !exec.config.tty {
        return Err(ApiError::conflict(format!(
            "Exec {id} has no TTY to resize"
        )));
    }
    let s = exec.lock()?;
    let Some(master) = s.master.as_ref().filter(|_| s.running) else {
        return Err(ApiError::conflict(format!("Exec {id} is not running")));
    };
    set_size(master, rows, cols);
    Ok(no_content())
}

/// `h` and `w`, both needed.
pub(crate) fn size_of(query: &crate::query::Query) -> Result<(u16, u16), ApiError> {
    let h = query.number::<u16>("h")?;
    let w = query.number::<u16>("w")?;
    match (h, w) {
        (Some(h), Some(w)) => Ok((h, w)),
        _ => Err(ApiError::bad_request("resize needs h and w")),
    }
}

fn set_size(master: &OwnedFd, rows: u16, cols: u16) {
    let size = rustix::termios::Winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // A terminal that is gone: its exec has ended, which its exit says.
    let _ = rustix::termios::tcsetwinsize(master, size);
}

fn no_content() -> Response<Body> {
    let mut resp = Response::new(body::empty());
    *resp.status_mut() = StatusCode::OK;
    resp
}

/// `POST /exec/{id}/start`: runs the command; with `Detach`, answers `200`
/// at once; without, upgrades the connection (`101`) and carries the
/// command's streams on it until its output ends, after its exit status is
/// recorded (the docker CLI reads it from `GET /exec/{id}/json` next).
pub(crate) async fn start(
    svc: &Arc<Service>,
    id: String,
    body: Bytes,
    upgrade: Option<hyper::upgrade::OnUpgrade>,
) -> Result<Response<Body>, ApiError> {
    let start: StartBody = if body.iter().all(u8::is_ascii_whitespace) {
        StartBody::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))?
    };
    let detach = start.detach.unwrap_or(false);
    let size = console_size(start.console_size)?;
    let exec = svc.execs.get(&id)?;
    if !detach && upgrade.is_none() {
        return Err(ApiError::bad_request(
            "an attached exec start needs an HTTP upgrade (Connection: Upgrade, Upgrade: tcp); or send Detach: true",
        ));
    }
    let permit = if detach {
        None
    } else {
        Some(crate::routes::stream_permit(svc)?)
    };
    {
        let mut s = exec.lock()?;
        if s.started {
            return Err(ApiError::conflict(if s.running {
                format!("Exec command {id} is already running")
            } else {
                format!("Exec command {id} has already run")
            }));
        }
        s.started = true;
    }
    if detach {
        let (child, _) = launch(svc, &exec, ExecStdio::Null, size).await?;
        let waiter = exec.clone();
        std::thread::spawn(move || wait_for(&waiter, child));
        return Ok(no_content());
    }
    let Some(on_upgrade) = upgrade else {
        return Err(ApiError::internal("starting the exec", &"no upgrade"));
    };
    let raw = exec.config.tty;
    let svc = svc.clone();
    // Upgraded first, as docker does: a command that cannot start is told
    // on the stream, and its status (docker's 126 or 127) is in the record
    // the CLI reads next.
    tokio::spawn(async move {
        let Some((rd, mut wr)) = crate::hijack::upgraded(on_upgrade, "exec").await else {
            return;
        };
        let stdio = if exec.config.tty {
            ExecStdio::Tty
        } else {
            ExecStdio::Pipes {
                stdin: exec.config.stdin,
            }
        };
        match launch(&svc, &exec, stdio, size).await {
            Ok((child, running)) => attached(exec, child, running, permit, rd, wr).await,
            Err(e) => {
                use tokio::io::AsyncWriteExt;
                let line = format!("{}\r\n", e.message);
                let _ = wr.write_all(&hijack::frame(1, line.as_bytes(), raw)).await;
                let _ = wr.shutdown().await;
            }
        }
    });
    Ok(upgrade_response(raw))
}

/// Starts the command of `exec` on the spawner thread; records it running
/// (or ended, with docker's status, if it cannot start).
async fn launch(
    svc: &Arc<Service>,
    exec: &Arc<Exec>,
    stdio: ExecStdio,
    size: Option<(u16, u16)>,
) -> Result<(std::process::Child, sandbox::ExecChild), ApiError> {
    let c = match svc.execs_container(exec).await {
        Ok(c) => c,
        Err(e) => {
            exec.ended(126);
            return Err(e);
        }
    };
    let config = &exec.config;
    let options = ExecOptions {
        argv: config.argv.clone(),
        env: config.env.clone(),
        workdir: config.workdir.clone(),
        die_with_parent: true,
    };
    let s = svc.clone();
    let spawned = svc
        .spawner
        .run(move || s.sandbox.exec_with(&c, options, stdio))
        .await
        .unwrap_or_else(|| {
            Err(sandbox::Error::WaitChild(
                std::io::ErrorKind::BrokenPipe.into(),
            ))
        });
    let mut running = match spawned {
        Ok(r) => r,
        Err(e) => {
            // It has ended, with docker's status for a command that
            // cannot run.
            exec.ended(e.command_exit_code(false).map_or(126, i32::from));
            return Err(match e.command_exit_code(false) {
                // The command's name first, as docker's message has it.
                Some(_) => ApiError::bad_request(crate::format_chain(&e)),
                None => ApiError::from_sandbox(&e, &exec.container_name, "starting the exec"),
            });
        }
    };
    let Some(child) = running.child.take() else {
        return Err(ApiError::internal("starting the exec", &"no child"));
    };
    let master = running.master.take().map(Arc::new);
    {
        let mut s = exec.lock()?;
        s.running = true;
        s.pid = child.id();
        s.master = master.clone();
    }
    if let (Some(m), Some((rows, cols))) = (&master, size.or(config.console_size)) {
        set_size(m, rows, cols);
    }
    // The master goes back to the caller as a descriptor of its own.
    if let Some(m) = &master {
        running.master = Some(
            m.try_clone()
                .map_err(|e| ApiError::internal("starting the exec", &e))?,
        );
    }
    Ok((child, running))
}

/// Carries a started exec's streams on the upgraded connection until its
/// output ends, then records its exit status and closes the connection.
async fn attached(
    exec: Arc<Exec>,
    child: std::process::Child,
    mut running: sandbox::ExecChild,
    permit: Option<tokio::sync::OwnedSemaphorePermit>,
    rd: tokio::io::ReadHalf<hyper_util::rt::TokioIo<hyper::upgrade::Upgraded>>,
    wr: tokio::io::WriteHalf<hyper_util::rt::TokioIo<hyper::upgrade::Upgraded>>,
) {
    let config = &exec.config;
    let raw = config.tty;
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(16);
    let mut outputs: Vec<(OwnedFd, u8, bool)> = Vec::new();
    let mut input: Option<OwnedFd> = running.stdin.take();
    if let Some(m) = running.master.take() {
        if config.stdin {
            input = m.try_clone().ok();
        }
        outputs.push((m, 1, config.stdout || config.stderr));
    }
    if let Some(fd) = running.stdout.take() {
        outputs.push((fd, 1, config.stdout));
    }
    if let Some(fd) = running.stderr.take() {
        outputs.push((fd, 2, config.stderr));
    }
    // The output: each stream read on a thread of its own until its end.
    let readers: Vec<_> = outputs
        .into_iter()
        .map(|(fd, stream, keep)| {
            let tx = tx.clone();
            std::thread::spawn(move || hijack::read_out(fd, stream, raw, keep, tx))
        })
        .collect();
    // Once the output has ended: the exit status, then the connection's
    // end (the last sender gone).
    let waiter = exec.clone();
    std::thread::spawn(move || {
        let _permit = permit;
        for r in readers {
            let _ = r.join();
        }
        wait_for(&waiter, child);
        drop(tx);
    });
    let (detached_tx, detached_rx) = tokio::sync::oneshot::channel();
    // Without stdin nothing detaches (the sender dropped says so).
    if let Some(fd) = input {
        hijack::read_in(rd, config.detach_keys.clone(), Sink::Fd(fd), detached_tx);
    }
    hijack::write_out(wr, rx, detached_rx).await;
}

/// Waits for the command and records its exit status.
fn wait_for(exec: &Exec, mut child: std::process::Child) {
    let code = match child.wait() {
        Ok(status) => sandbox::exit_code(status),
        Err(e) => {
            tracing::warn!(error = %e, exec = %exec.id, "waiting for the exec");
            -1
        }
    };
    exec.ended(code);
}

/// `101 Switching Protocols` to docker's raw (TTY) or multiplexed stream.
pub(crate) fn upgrade_response(raw: bool) -> Response<Body> {
    let mut resp = Response::new(body::empty());
    *resp.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = resp.headers_mut();
    h.insert(
        hyper::header::CONNECTION,
        HeaderValue::from_static("Upgrade"),
    );
    h.insert(hyper::header::UPGRADE, HeaderValue::from_static("tcp"));
    h.insert(
        CONTENT_TYPE,
        HeaderValue::from_static(if raw {
            RAW_STREAM
        } else {
            crate::routes::MULTIPLEXED
        }),
    );
    resp
}

/// The content type of a TTY's stream.
pub(crate) const RAW_STREAM: &str = "application/vnd.docker.raw-stream";

impl Service {
    /// The container of an exec instance, as it is now.
    async fn execs_container(&self, exec: &Exec) -> Result<sandbox::ContainerRecord, ApiError> {
        let sandbox = self.sandbox.clone();
        let id = exec.container_id.clone();
        let name = exec.container_name.clone();
        crate::routes::blocking("starting the exec", move || {
            sandbox
                .find_container(&id)
                .map_err(|e| ApiError::from_sandbox(&e, &name, "starting the exec"))
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exec_bodies_as_the_clients_send_them() {
        // docker-py: nulls for what it does not set.
        let c = ExecConfig::parse(
            br#"{"AttachStdin":false,"AttachStdout":true,"AttachStderr":true,"Tty":false,"Cmd":["sh","-c","exit 3"],"Privileged":false,"User":"","Env":null,"WorkingDir":null}"#,
            "",
        )
        .expect("docker-py's body");
        assert_eq!(c.argv, ["sh", "-c", "exit 3"]);
        assert!(c.stdout && c.stderr && !c.stdin && !c.tty);
        assert_eq!(c.detach_keys, DetachKeys(vec![16, 17]));
        let c = ExecConfig::parse(
            br#"{"Cmd":["sh"],"Tty":true,"AttachStdin":true,"DetachKeys":"ctrl-x,x","ConsoleSize":[30,100],"Env":["A=1"],"WorkingDir":"/tmp","User":"1000"}"#,
            "1000:1000",
        )
        .expect("the CLI's exec -it");
        assert_eq!(c.detach_keys, DetachKeys(vec![24, b'x']));
        assert_eq!(c.console_size, Some((30, 100)));
        assert_eq!(c.workdir, Some(PathBuf::from("/tmp")));
        for (body, says) in [
            (&br#"{"Cmd":[]}"#[..], "No exec command"),
            (br#"{"Cmd":["sh"],"Privileged":true}"#, "Privileged"),
            (br#"{"Cmd":["sh"],"User":"nobody"}"#, "user \"nobody\""),
            (br#"{"Cmd":["sh"],"DetachKeys":"ctrl-1"}"#, "detach keys"),
            (br#"{"Cmd":["sh"],"Env":["=x"]}"#, "environment"),
            (br#"{"Cmd":["sh"],"ConsoleSize":[1]}"#, "ConsoleSize"),
            (b"{", "invalid JSON"),
        ] {
            let e = ExecConfig::parse(body, "").expect_err(says);
            assert_eq!(e.status, StatusCode::BAD_REQUEST);
            assert!(e.message.contains(says), "{}: {}", says, e.message);
        }
    }

    #[test]
    fn ended_instances_make_room_oldest_first() {
        let execs = Execs::default();
        let make = |running: bool, ended: Option<Instant>| Exec {
            id: new_id().expect("id"),
            container_id: "c".into(),
            container_name: "c".into(),
            config: ExecConfig::parse(br#"{"Cmd":["true"]}"#, "").expect("config"),
            created: Instant::now(),
            state: Mutex::new(State {
                running,
                ended,
                ..State::default()
            }),
        };
        let old = Instant::now().checked_sub(KEEP * 2);
        let first = execs.insert(make(false, old)).expect("room");
        for _ in 1..MAX_EXECS {
            execs.insert(make(true, None)).expect("room");
        }
        // Full: the one that ended long ago goes.
        execs.insert(make(true, None)).expect("room made");
        assert!(execs.get(&first).is_err());
        // Full of running ones: refused.
        let e = execs.insert(make(true, None)).expect_err("full");
        assert_eq!(e.status, StatusCode::SERVICE_UNAVAILABLE);
    }
}
