//! `stasis serve` over its real socket (root only, real kernel): bollard
//! as the client where it can be, raw HTTP where the bytes matter (the
//! docker CLI's filter form, log framing, the `wait` headers, versions),
//! and `setpriv` + `curl` for callers other than root. Containers are made
//! with the CLI, so each test also shows that what one does, the other
//! sees at once.

mod common;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use bollard::container::{Config, CreateContainerOptions, StartContainerOptions};
use bollard::container::{
    InspectContainerOptions, ListContainersOptions, LogOutput, LogsOptions, RemoveContainerOptions,
    StopContainerOptions, WaitContainerOptions,
};
use bollard::image::{ListImagesOptions, RemoveImageOptions};
use bollard::models::HostConfig;
use bollard::system::EventsOptions;
use bollard::Docker;
use common::archives::{busybox_tar, docker_save, top_layer};
use common::*;
use futures_util::StreamExt;

/// A running `stasis serve` on a socket in a scratch directory of its
/// own; killed (by PID) and reaped on drop.
struct Serve {
    child: Option<Child>,
    dir: Scratch,
    socket: PathBuf,
}

impl Serve {
    fn start(s: &Stasis, extra: &[&str]) -> Self {
        let dir = Scratch::new();
        // Others may reach the socket; the socket's own mode decides.
        std::fs::set_permissions(&dir.0, std::fs::Permissions::from_mode(0o711)).expect("chmod");
        let socket = dir.0.join("api.sock");
        let sock = socket.to_str().expect("utf-8 path").to_owned();
        let mut args = vec!["serve", "--socket", sock.as_str()];
        args.extend_from_slice(extra);
        let child = s
            .command(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn stasis serve");
        let serve = Serve {
            child: Some(child),
            dir,
            socket,
        };
        // A socket that accepts is not yet a service that answers: the
        // kernel queues connections from `listen` on.
        wait_until(Duration::from_secs(10), "the socket to answer", || {
            pings(&serve.socket)
        });
        serve
    }

    fn docker(&self) -> Docker {
        Docker::connect_with_unix(
            self.socket.to_str().expect("utf-8"),
            30,
            bollard::API_DEFAULT_VERSION,
        )
        .expect("bollard client")
    }

    fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// `curl` as another user: its HTTP status and body, or `None` if it
    /// could not connect.
    fn curl_as(&self, uid: u32, gid: u32, method: &str, path: &str) -> Option<(u16, String)> {
        let run = run_bounded(
            Command::new("setpriv")
                .arg(format!("--reuid={uid}"))
                .arg(format!("--regid={gid}"))
                .arg("--clear-groups")
                .args([
                    "curl",
                    "-sS",
                    "-X",
                    method,
                    "-w",
                    "\n%{http_code}",
                    "--unix-socket",
                ])
                .arg(&self.socket)
                .arg(format!("http://stasis{path}")),
        );
        if !run.status.success() {
            assert!(
                run.stderr.contains("Permission denied") || run.stderr.contains("Couldn't connect"),
                "{run:?}"
            );
            return None;
        }
        let (body, code) = run.stdout.rsplit_once('\n').expect("status line");
        Some((code.trim().parse().expect("status"), body.to_owned()))
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        // SIGTERM, as an operator stops it: the service drains, thaws and
        // removes its freezer anchor, and exits. SIGKILL after 20 s.
        if let Some(mut child) = self.child.take() {
            terminate(&mut child, Duration::from_secs(20));
        }
        let _ = &self.dir;
    }
}

/// The freezer anchor of the service `pid`, under the v1 freezer's
/// `stasis` node (freezer::anchor).
fn anchor_of(pid: u32) -> PathBuf {
    Path::new(V1_MOUNT.as_str())
        .join("stasis")
        .join(format!("anchor-{pid}"))
}

/// One request on a fresh connection (HTTP/1.0, so the body ends with
/// the connection): status, headers (lowercased names) and body.
fn raw(socket: &Path, method: &str, path: &str, body: &[u8]) -> (u16, String, Vec<u8>) {
    let mut stream = UnixStream::connect(socket).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let head = format!(
        "{method} {path} HTTP/1.0\r\nHost: stasis\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).expect("write head");
    // A peer that refuses early may close before taking it all.
    let _ = stream.write_all(body);
    let mut out = Vec::new();
    let _ = stream.read_to_end(&mut out);
    split_response(&out)
}

/// Whether a `GET /_ping` on a fresh connection gets its `200 OK`.
fn pings(socket: &Path) -> bool {
    let Ok(mut stream) = UnixStream::connect(socket) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    if stream
        .write_all(b"GET /_ping HTTP/1.0\r\nHost: stasis\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut out = Vec::new();
    let _ = stream.read_to_end(&mut out);
    out.starts_with(b"HTTP/1.") && out.get(9..12) == Some(b"200".as_slice())
}

fn split_response(out: &[u8]) -> (u16, String, Vec<u8>) {
    let end = out
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no header end in {:?}", String::from_utf8_lossy(out)));
    let head = String::from_utf8_lossy(&out[..end]).to_lowercase();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status");
    (status, head, out[end + 4..].to_vec())
}

fn message(body: &[u8]) -> String {
    let v: serde_json::Value = serde_json::from_slice(body)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(body)));
    v["message"].as_str().expect("message").to_owned()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// The docker status of a bollard error.
fn status_of(e: &bollard::errors::Error) -> u16 {
    match e {
        bollard::errors::Error::DockerResponseServerError { status_code, .. } => *status_code,
        other => panic!("not a server error: {other:?}"),
    }
}

fn names(list: &[bollard::models::ContainerSummary]) -> Vec<String> {
    let mut n: Vec<String> = list
        .iter()
        .flat_map(|c| c.names.clone().unwrap_or_default())
        .collect();
    n.sort();
    n
}

#[test]
fn ping_version_and_version_prefixes() {
    if !root_or_skip("ping_version_and_version_prefixes") {
        return;
    }
    let s = Stasis::new();
    let serve = Serve::start(&s, &[]);
    let mode = std::fs::metadata(&serve.socket)
        .expect("socket")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "no group: root alone");
    runtime().block_on(async {
        let docker = serve.docker();
        assert_eq!(docker.ping().await.expect("ping"), "OK");
        let v = docker.version().await.expect("version");
        assert_eq!(v.api_version.as_deref(), Some("1.44"));
        assert_eq!(v.min_api_version.as_deref(), Some("1.24"));
        assert_eq!(v.os.as_deref(), Some("linux"));
        let docker = docker.negotiate_version().await.expect("negotiate");
        assert_eq!(docker.client_version().to_string(), "1.44");
        let info = docker.info().await.expect("info");
        assert_eq!(info.os_type.as_deref(), Some("linux"));
    });
    let (status, head, body) = raw(&serve.socket, "HEAD", "/_ping", b"");
    assert_eq!(status, 200);
    assert!(head.contains("api-version: 1.44"), "{head}");
    assert!(head.contains("ostype: linux"), "{head}");
    assert!(head.contains("cache-control: no-cache"), "{head}");
    assert!(body.is_empty());
    let (status, _, body) = raw(&serve.socket, "GET", "/v1.44/_ping", b"");
    assert_eq!((status, body.as_slice()), (200, &b"OK"[..]));
    let (status, _, body) = raw(&serve.socket, "GET", "/v1.53/containers/json", b"");
    assert_eq!(status, 400);
    assert_eq!(
        message(&body),
        "client version 1.53 is too new. Maximum supported API version is 1.44"
    );
    let (status, _, body) = raw(&serve.socket, "GET", "/v1.12/version", b"");
    assert_eq!(status, 400);
    assert!(message(&body).contains("too old"));
    let (status, _, _) = raw(&serve.socket, "GET", "/v1.24/containers/json", b"");
    assert_eq!(status, 200, "the minimum is served");
}

#[test]
fn list_with_label_filters_as_a_map_and_as_a_list() {
    if !root_or_skip("list_with_label_filters_as_a_map_and_as_a_list") {
        return;
    }
    let s = Stasis::new();
    s.run(&[
        "run", "-d", "--name", "db", "--label", "tier=db", "--", "sleep", "1000",
    ])
    .ok();
    s.run(&[
        "run", "-d", "--name", "web", "--label", "tier=web", "--", "sleep", "1000",
    ])
    .ok();
    s.run(&[
        "run", "-d", "--name", "done", "--label", "tier=db", "--", "true",
    ])
    .ok();
    wait_until(Duration::from_secs(10), "done to exit", || {
        s.inspect("done")["status"] == "exited"
    });
    let serve = Serve::start(&s, &[]);
    runtime().block_on(async {
        let docker = serve.docker();
        let list = |all: bool, filters: HashMap<String, Vec<String>>| {
            docker.list_containers(Some(ListContainersOptions::<String> {
                all,
                filters,
                ..Default::default()
            }))
        };
        let running = list(false, HashMap::new()).await.expect("list");
        assert_eq!(names(&running), ["/db", "/web"]);
        let every = list(true, HashMap::new()).await.expect("list all");
        assert_eq!(names(&every), ["/db", "/done", "/web"]);
        let done = every
            .iter()
            .find(|c| c.names.as_deref() == Some(&["/done".to_owned()][..]))
            .expect("done");
        assert_eq!(done.state.as_deref(), Some("exited"));
        let status = done.status.as_deref().expect("status");
        assert!(status.starts_with("Exited (0) "), "{status}");
        assert!(done
            .image_id
            .as_deref()
            .expect("ImageID")
            .starts_with("sha256:"));
        assert!(done.created.expect("Created") > 0);
        let db = HashMap::from([("label".to_owned(), vec!["tier=db".to_owned()])]);
        assert_eq!(
            names(&list(true, db.clone()).await.expect("db")),
            ["/db", "/done"]
        );
        let paused = HashMap::from([("status".to_owned(), vec!["paused".to_owned()])]);
        assert!(list(false, paused).await.expect("paused").is_empty());
    });
    // The docker CLI's map form, and docker-py's list form, byte for byte.
    for filters in [r#"{"label":{"tier=db":true}}"#, r#"{"label":["tier=db"]}"#] {
        let path = format!(
            "/v1.44/containers/json?all=1&filters={}",
            form_encode(filters)
        );
        let (status, _, body) = raw(&serve.socket, "GET", &path, b"");
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        let list: Vec<serde_json::Value> = serde_json::from_slice(&body).expect("json");
        let mut got: Vec<&str> = list
            .iter()
            .map(|c| c["Names"][0].as_str().expect("name"))
            .collect();
        got.sort();
        assert_eq!(got, ["/db", "/done"], "{filters}");
        for c in &list {
            assert_eq!(c["Ports"], serde_json::json!([]));
            assert_eq!(c["NetworkSettings"]["Networks"], serde_json::json!({}));
            assert!(c["HostConfig"]["NetworkMode"].is_string());
        }
    }
    let (status, _, body) = raw(
        &serve.socket,
        "GET",
        &format!("/containers/json?filters={}", form_encode("{not json")),
        b"",
    );
    assert_eq!(status, 400, "{}", String::from_utf8_lossy(&body));
    let (status, _, body) = raw(
        &serve.socket,
        "GET",
        &format!(
            "/containers/json?filters={}",
            form_encode(r#"{"colour":["red"]}"#)
        ),
        b"",
    );
    assert_eq!(
        (status, message(&body).as_str()),
        (400, "invalid filter 'colour'")
    );
}

/// Percent-encodes a query value.
fn form_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[test]
fn pause_inspect_unpause_logs_wait_stop_rm_over_the_api_and_the_cli() {
    if !root_or_skip("pause_inspect_unpause_logs_wait_stop_rm_over_the_api_and_the_cli") {
        return;
    }
    let s = Stasis::new();
    // --init: with stasis-pause as PID 1 of its PID namespace, the sleep
    // dies of the API's SIGTERM (143); as PID 1 itself it would ignore it.
    s.run(&[
        "run",
        "-d",
        "--init",
        "--name",
        "web",
        "--",
        "sh",
        "-c",
        "echo one; echo two >&2; echo three; exec sleep 1000",
    ])
    .ok();
    s.wait_log("web", "three");
    let serve = Serve::start(&s, &[]);
    runtime().block_on(async {
        let docker = serve.docker();
        docker.pause_container("web").await.expect("pause");
        assert_eq!(
            s.inspect("web")["status"],
            "paused",
            "the CLI sees the API's pause"
        );
        let i = docker
            .inspect_container("web", None::<InspectContainerOptions>)
            .await
            .expect("inspect");
        let state = i.state.expect("State");
        assert_eq!(state.paused, Some(true));
        assert_eq!(state.running, Some(true));
        assert_eq!(i.name.as_deref(), Some("/web"));
        assert_eq!(i.config.expect("Config").tty, Some(false));
        let hc = i.host_config.expect("HostConfig");
        assert!(hc.network_mode.is_some());
        assert_eq!(
            hc.log_config.and_then(|l| l.typ).as_deref(),
            Some("json-file")
        );
        let again = docker.pause_container("web").await.expect_err("already");
        assert_eq!(status_of(&again), 409);
        docker.unpause_container("web").await.expect("unpause");
        assert_eq!(s.inspect("web")["status"], "running");
        let not_paused = docker
            .unpause_container("web")
            .await
            .expect_err("not paused");
        assert_eq!(status_of(&not_paused), 409);

        // A pause done by the CLI is seen by the API at once.
        s.run(&["pause", "web"]).ok();
        let i = docker
            .inspect_container("web", None::<InspectContainerOptions>)
            .await
            .expect("inspect");
        assert_eq!(
            i.state
                .and_then(|s| s.status)
                .map(|s| s.to_string())
                .as_deref(),
            Some("paused")
        );
        let listed = docker
            .list_containers(None::<ListContainersOptions<String>>)
            .await
            .expect("list");
        let status = listed[0].status.clone().expect("status");
        assert!(status.ends_with("(Paused)"), "{status}");
        docker
            .unpause_container("web")
            .await
            .expect("unpause the CLI's pause");

        // Logs through bollard: the framing parses, both streams arrive.
        let mut logs = docker.logs(
            "web",
            Some(LogsOptions::<String> {
                stdout: true,
                stderr: true,
                ..Default::default()
            }),
        );
        // Each stream in its own frames; the order across the two is the
        // order the monitor read its pipes in, as with docker's.
        let (mut out, mut err) = (String::new(), String::new());
        while let Some(chunk) = logs.next().await {
            match chunk.expect("log chunk") {
                LogOutput::StdOut { message } => out.push_str(&String::from_utf8_lossy(&message)),
                LogOutput::StdErr { message } => err.push_str(&String::from_utf8_lossy(&message)),
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(out, "one\nthree\n");
        assert_eq!(err, "two\n");
    });

    // The frames themselves, and tail.
    let (status, head, body) = raw(
        &serve.socket,
        "GET",
        "/v1.44/containers/web/logs?stdout=1&stderr=0&tail=2&timestamps=1",
        b"",
    );
    assert_eq!(status, 200);
    assert!(
        head.contains("application/vnd.docker.multiplexed-stream"),
        "{head}"
    );
    // Frames of stream 1, each line with its time; the tail counts lines of
    // both streams, so the last two hold one or two of stdout's.
    let mut frames = Vec::new();
    let mut rest = &body[..];
    while rest.len() >= 8 {
        let len = u32::from_be_bytes([rest[4], rest[5], rest[6], rest[7]]) as usize;
        assert_eq!(rest[0], 1, "stdout only");
        frames.push(String::from_utf8_lossy(&rest[8..8 + len]).into_owned());
        rest = &rest[8 + len..];
    }
    assert!((1..=2).contains(&frames.len()), "{frames:?}");
    let last = frames.last().expect("a frame");
    // stdout's order holds, so its last line is among the log's last two.
    assert!(last.ends_with("Z three\n"), "{last}");
    assert_eq!(last.split_once(' ').expect("time").0.len(), 30, "{last}");
    let (status, _, body) = raw(&serve.socket, "GET", "/containers/web/logs", b"");
    assert_eq!(
        status,
        400,
        "no stream chosen: {}",
        String::from_utf8_lossy(&body)
    );

    // The docker run trap: the headers come at once, the body at the exit.
    let mut wait = UnixStream::connect(&serve.socket).expect("connect");
    wait.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    wait.write_all(b"POST /v1.44/containers/web/wait?condition=next-exit HTTP/1.1\r\nHost: stasis\r\nContent-Length: 0\r\n\r\n")
        .expect("wait request");
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !got.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = wait.read(&mut buf).expect("the headers before the exit");
        assert!(n > 0, "closed early");
        got.extend_from_slice(&buf[..n]);
    }
    assert!(
        got.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&got)
    );
    assert_eq!(
        s.inspect("web")["status"],
        "running",
        "headers before the exit"
    );

    runtime().block_on(async {
        let docker = serve.docker();
        let mut waiting = docker.wait_container(
            "web",
            Some(WaitContainerOptions {
                condition: "not-running",
            }),
        );
        docker
            .stop_container("web", Some(StopContainerOptions { t: 1 }))
            .await
            .expect("stop");
        assert_eq!(
            s.inspect("web")["status"],
            "exited",
            "the CLI sees the API's stop"
        );
        // bollard reports a non-zero exit as an error that carries the code.
        match waiting.next().await.expect("a wait answer") {
            Err(bollard::errors::Error::DockerContainerWaitError { code, .. }) => {
                assert_eq!(code, 143, "SIGTERM")
            }
            other => panic!("{other:?}"),
        }
        let stopped_again = docker
            .stop_container("web", None::<StopContainerOptions>)
            .await;
        assert!(stopped_again.is_ok(), "304 is no error: {stopped_again:?}");
    });
    while !String::from_utf8_lossy(&got).contains("StatusCode") {
        let n = wait.read(&mut buf).expect("the wait's body");
        assert!(
            n > 0,
            "closed before the body: {}",
            String::from_utf8_lossy(&got)
        );
        got.extend_from_slice(&buf[..n]);
    }
    assert!(String::from_utf8_lossy(&got).contains(r#"{"StatusCode":143}"#));

    runtime().block_on(async {
        let docker = serve.docker();
        docker
            .remove_container("web", None::<RemoveContainerOptions>)
            .await
            .expect("rm");
        let gone = docker
            .inspect_container("web", None::<InspectContainerOptions>)
            .await
            .expect_err("removed");
        assert_eq!(status_of(&gone), 404);
    });
    assert_eq!(
        s.run(&["inspect", "web"]).code(),
        3,
        "the CLI sees the API's rm"
    );
}

#[test]
fn errors_have_docker_s_statuses_and_messages() {
    if !root_or_skip("errors_have_docker_s_statuses_and_messages") {
        return;
    }
    let s = Stasis::new();
    s.run(&["run", "-d", "--name", "up", "--", "sleep", "1000"])
        .ok();
    let serve = Serve::start(&s, &[]);
    let sock = &serve.socket;
    let cases: [(&str, &str, u16, &str); 9] = [
        (
            "POST",
            "/containers/nosuch/pause",
            404,
            "No such container: nosuch",
        ),
        (
            "GET",
            "/v1.44/containers/nosuch/json",
            404,
            "No such container: nosuch",
        ),
        ("GET", "/images/busybox/json", 404, "No such image: busybox"),
        ("GET", "/networks/nosuch", 404, "network nosuch not found"),
        ("GET", "/volumes/nosuch", 404, "get nosuch: no such volume"),
        (
            "DELETE",
            "/containers/up",
            409,
            "Container up is running; stop it first or use --force",
        ),
        ("POST", "/containers/up/kill?signal=NOPE", 400, ""),
        ("GET", "/containers/json?all=maybe", 400, ""),
        (
            "GET",
            "/events?filters=%7B%22colour%22%3A%5B%22red%22%5D%7D",
            400,
            "",
        ),
    ];
    for (method, path, want, text) in cases {
        let (status, head, body) = raw(sock, method, path, b"");
        assert_eq!(
            status,
            want,
            "{method} {path}: {}",
            String::from_utf8_lossy(&body)
        );
        assert!(head.contains("content-type: application/json"), "{head}");
        let m = message(&body);
        assert!(m.contains(text), "{method} {path}: {m}");
    }
    let (status, _, _) = raw(sock, "POST", "/containers/up/start", b"");
    assert_eq!(status, 304, "started already");
    let (status, _, body) = raw(
        sock,
        "POST",
        "/containers/up/start",
        br#"{"Binds":["/:/x"]}"#,
    );
    assert_eq!(
        status,
        400,
        "a start body: {}",
        String::from_utf8_lossy(&body)
    );
    let (status, _, body) = raw(sock, "POST", "/containers/create?name=x", b"{\"Image\": ");
    assert_eq!(
        status,
        400,
        "malformed JSON: {}",
        String::from_utf8_lossy(&body)
    );
    let big = vec![b' '; (1 << 20) + 1];
    let (status, _, body) = raw(sock, "POST", "/containers/create?name=x", &big);
    assert_eq!(status, 413, "{}", String::from_utf8_lossy(&body));
    let (status, _, _) = raw(sock, "GET", "/no/such/route", b"");
    assert_eq!(status, 404);
    // A client that sends half its headers is cut off, and the service
    // goes on answering.
    let mut slow = UnixStream::connect(sock).expect("connect");
    slow.write_all(b"GET /_ping HTTP/1.1\r\nHost: x\r\n")
        .expect("half");
    let (status, _, _) = raw(sock, "GET", "/_ping", b"");
    assert_eq!(status, 200);
    drop(slow);
    runtime().block_on(async {
        let docker = serve.docker();
        docker
            .remove_container(
                "up",
                Some(RemoveContainerOptions {
                    force: true,
                    ..Default::default()
                }),
            )
            .await
            .expect("rm -f");
    });
}

#[test]
fn permissions_come_from_the_peer_and_every_change_and_refusal_is_audited() {
    if !root_or_skip("permissions_come_from_the_peer_and_every_change_and_refusal_is_audited") {
        return;
    }
    const NOBODY: u32 = 65534;
    let s = Stasis::new();
    s.run(&["run", "-d", "--name", "svc", "--", "sleep", "1000"])
        .ok();
    // Members of nogroup (65534) may connect, and list and pause; nobody
    // is one.
    let serve = Serve::start(
        &s,
        &["--group", "nogroup", "--allow", "nogroup=pause,unpause,ps"],
    );
    let meta = std::fs::metadata(&serve.socket).expect("socket");
    assert_eq!(meta.permissions().mode() & 0o777, 0o660);
    assert_eq!(std::os::unix::fs::MetadataExt::gid(&meta), 65534);
    assert_eq!(std::os::unix::fs::MetadataExt::uid(&meta), 0);

    // Outside the group: no connection at all.
    assert_eq!(serve.curl_as(4321, 4321, "GET", "/_ping"), None);

    let (status, body) = serve
        .curl_as(NOBODY, NOBODY, "GET", "/containers/json")
        .expect("nobody connects");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("/svc"), "{body}");
    let (status, body) = serve
        .curl_as(NOBODY, NOBODY, "POST", "/v1.44/containers/svc/pause")
        .expect("connect");
    assert_eq!(status, 204, "{body}");
    assert_eq!(s.inspect("svc")["status"], "paused");
    let (status, body) = serve
        .curl_as(NOBODY, NOBODY, "DELETE", "/v1.44/containers/svc?force=1")
        .expect("connect");
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("uid 65534") && body.contains(" rm"), "{body}");
    let (status, body) = serve
        .curl_as(NOBODY, NOBODY, "GET", "/containers/svc/logs?stdout=1")
        .expect("connect");
    assert_eq!(status, 403, "logs not granted: {body}");
    let (status, body) = serve
        .curl_as(NOBODY, NOBODY, "POST", "/containers/svc/unpause")
        .expect("connect");
    assert_eq!(status, 204, "{body}");
    assert_eq!(s.inspect("svc")["status"], "running");

    let records = sandbox::audit::read(&s.root.0.join("audit.jsonl")).expect("audit");
    let api: Vec<_> = records.iter().filter(|r| r.via == "api").collect();
    let seen: Vec<(&str, &str, u32, u32)> = api
        .iter()
        .map(|r| (r.verb.as_str(), r.outcome.as_str(), r.status, r.uid))
        .collect();
    assert_eq!(
        seen,
        [
            ("pause", "ok", 204, NOBODY),
            ("rm", "refused", 403, NOBODY),
            ("logs", "refused", 403, NOBODY),
            ("unpause", "ok", 204, NOBODY),
        ],
        "one line per change and per refusal, reads unaudited"
    );
    for r in &api {
        assert_eq!(r.gid, NOBODY);
        assert!(r.pid > 0);
        assert!(
            r.exe.as_deref().is_some_and(|e| e.ends_with("curl")),
            "{r:?}"
        );
        assert_eq!(r.target, "svc");
    }
    // The CLI's own change is in the same log, with its caller's uid.
    let cli: Vec<_> = records.iter().filter(|r| r.via == "cli").collect();
    assert_eq!(cli.len(), 1, "{cli:?}");
    assert_eq!(
        (cli[0].verb.as_str(), cli[0].target.as_str(), cli[0].uid),
        ("run", "svc", 0)
    );
    s.run(&["stop", "-t", "0", "svc"]).ok();
    let records = sandbox::audit::read(&s.root.0.join("audit.jsonl")).expect("audit");
    let last = records.last().expect("a record");
    assert_eq!(
        (last.via.as_str(), last.verb.as_str(), last.outcome.as_str()),
        ("cli", "stop", "ok")
    );
}

#[test]
fn sigterm_and_sigint_drain_and_exit_zero() {
    if !root_or_skip("sigterm_and_sigint_drain_and_exit_zero") {
        return;
    }
    let s = Stasis::new();
    for signal in [rustix::process::Signal::TERM, rustix::process::Signal::INT] {
        let mut serve = Serve::start(&s, &[]);
        // An idle keep-alive connection does not hold the exit up.
        let mut idle = UnixStream::connect(&serve.socket).expect("connect");
        idle.write_all(b"GET /_ping HTTP/1.1\r\nHost: x\r\n\r\n")
            .expect("ping");
        let mut buf = [0u8; 1024];
        let n = idle.read(&mut buf).expect("pong");
        assert!(String::from_utf8_lossy(&buf[..n]).contains("200 OK"));
        let pid = serve.pid();
        // The freezer's anchor: held frozen and empty while it serves.
        let anchor = anchor_of(pid);
        assert_eq!(read_trimmed(&anchor.join("freezer.state")), "FROZEN");
        assert_eq!(read_trimmed(&anchor.join("cgroup.procs")), "");
        rustix::process::kill_process(
            rustix::process::Pid::from_raw(pid as i32).expect("pid"),
            signal,
        )
        .expect("signal");
        let mut child = serve.child.take().expect("child");
        let status = wait_bounded(&mut child, Duration::from_secs(20));
        assert!(status.success(), "{signal:?}: {status:?}");
        assert!(!serve.socket.exists(), "the socket is removed");
        assert!(!anchor.exists(), "{signal:?}: the anchor is removed");
    }
}

#[test]
fn events_stream_what_the_cli_and_the_api_do() {
    if !root_or_skip("events_stream_what_the_cli_and_the_api_do") {
        return;
    }
    let s = Stasis::new();
    s.run(&["run", "-d", "--name", "ev", "--", "sleep", "1000"])
        .ok();
    s.run(&["run", "-d", "--name", "other", "--", "sleep", "1000"])
        .ok();
    let serve = Serve::start(&s, &[]);
    // Following: once the headers are in, every later event arrives.
    let mut follow = UnixStream::connect(&serve.socket).expect("connect");
    follow
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let filters = form_encode(r#"{"container":{"ev":true}}"#);
    follow
        .write_all(
            format!("GET /v1.44/events?filters={filters} HTTP/1.0\r\nHost: x\r\n\r\n").as_bytes(),
        )
        .expect("request");
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !got.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = follow.read(&mut buf).expect("headers");
        assert!(n > 0, "closed early");
        got.extend_from_slice(&buf[..n]);
    }
    assert!(
        got.starts_with(b"HTTP/1.0 200") || got.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&got)
    );
    s.run(&["pause", "other"]).ok();
    s.run(&["pause", "ev"]).ok();
    runtime().block_on(async {
        serve
            .docker()
            .unpause_container("ev")
            .await
            .expect("unpause");
    });
    let actions = |got: &[u8]| -> Vec<String> {
        let text = String::from_utf8_lossy(got);
        let body = text
            .split_once("\r\n\r\n")
            .map_or("", |(_, b)| b)
            .to_owned();
        body.lines()
            .filter(|l| !l.is_empty())
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).expect("an event per line");
                assert_eq!(v["Actor"]["Attributes"]["name"], "ev", "filtered: {l}");
                v["Action"].as_str().expect("Action").to_owned()
            })
            .collect()
    };
    while actions(&got).len() < 2 {
        let n = follow.read(&mut buf).expect("the events as they happen");
        assert!(n > 0, "closed: {}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&buf[..n]);
    }
    assert_eq!(actions(&got), ["pause", "unpause"]);

    // Replaying a range: the past, then the stream ends.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
        + 1;
    runtime().block_on(async {
        let docker = serve.docker();
        let past: Vec<_> = docker
            .events(Some(EventsOptions::<String> {
                since: Some("0".into()),
                until: Some(now.to_string()),
                filters: HashMap::from([("container".to_owned(), vec!["ev".to_owned()])]),
            }))
            .collect()
            .await;
        let actions: Vec<String> = past
            .into_iter()
            .map(|e| e.expect("event").action.expect("action"))
            .collect();
        assert_eq!(actions, ["create", "start", "pause", "unpause"]);
    });
}

#[test]
fn start_runs_on_the_spawner_and_the_monitor_is_reaped() {
    if !root_or_skip("start_runs_on_the_spawner_and_the_monitor_is_reaped") {
        return;
    }
    let s = Stasis::new();
    // A created container the service will start (the API's create is not
    // served yet: the library makes it, as `run` would before starting).
    let sandbox = sandbox::Sandbox::open(&s.root.0)
        .expect("open")
        .with_pause_binary(pause_binary().to_owned());
    let created = sandbox
        .create_container(sandbox::ContainerOptions {
            name: Some("later".into()),
            command: vec!["sh".into(), "-c".into(), "echo started; sleep 1".into()],
            ..Default::default()
        })
        .expect("create");
    let serve = Serve::start(&s, &[]);
    let (status, _, body) = raw(&serve.socket, "POST", "/v1.44/containers/later/start", b"");
    assert_eq!(status, 204, "{}", String::from_utf8_lossy(&body));
    let record = sandbox.container(&created.id).expect("record");
    let monitor = record.monitor.expect("a monitor").pid;
    assert_eq!(
        std::fs::read_to_string(format!("/proc/{monitor}/stat"))
            .ok()
            .and_then(|st| st
                .split(") ")
                .nth(1)
                .and_then(|r| r.split(' ').nth(1))
                .map(str::to_owned))
            .as_deref(),
        Some(serve.pid().to_string()).as_deref(),
        "the monitor is the service's child"
    );
    s.wait_log("later", "started");
    let (status, _, body) = raw(&serve.socket, "POST", "/containers/later/wait", b"");
    assert_eq!(status, 200);
    assert!(String::from_utf8_lossy(&body).contains(r#""StatusCode":0"#));
    // Once it exits, its monitor is reaped: no zombie stays behind.
    wait_until(Duration::from_secs(15), "the monitor to be reaped", || {
        proc_state(monitor).is_none_or(|st| st != 'Z')
            && !std::path::Path::new(&format!("/proc/{monitor}")).exists()
    });
    // Exited, it starts again: the same record in a new process, its own
    // pod (which ended with it) with a new pause process, its log appended.
    let before = sandbox.container(&created.id).expect("record");
    let old_pause = sandbox.pod(&before.pod).expect("pod").pause;
    let (status, _, body) = raw(&serve.socket, "POST", "/containers/later/start", b"");
    assert_eq!(status, 204, "{}", String::from_utf8_lossy(&body));
    let again = sandbox.container(&created.id).expect("the same ID");
    assert_eq!(again.name, "later");
    assert!(again.exit.is_none(), "{again:?}");
    assert!(again.started > before.started, "StartedAt changes");
    assert_ne!(again.process, before.process);
    let new_pause = sandbox.pod(&again.pod).expect("its pod").pause;
    assert!(
        new_pause.is_some() && new_pause != old_pause,
        "a new pause process"
    );
    wait_until(Duration::from_secs(15), "the second run's output", || {
        s.run(&["logs", "later"]).stdout.matches("started").count() == 2
    });
    // A restart of a running one: stopped, then started once more.
    let (status, _, body) = raw(&serve.socket, "POST", "/containers/later/restart?t=0", b"");
    assert_eq!(status, 204, "{}", String::from_utf8_lossy(&body));
    wait_until(Duration::from_secs(15), "the third run's output", || {
        s.run(&["logs", "later"]).stdout.matches("started").count() == 3
    });
    let (status, _, body) = raw(&serve.socket, "GET", "/containers/later/json", b"");
    assert_eq!(status, 200);
    let inspect: serde_json::Value = serde_json::from_slice(&body).expect("json");
    assert_eq!(inspect["Id"], created.id.as_str());
    assert_eq!(
        inspect["RestartCount"], 0,
        "docker counts the policy's restarts only"
    );
    let (status, _, _) = raw(&serve.socket, "POST", "/containers/later/wait", b"");
    assert_eq!(status, 200);
}

#[test]
fn images_import_load_create_attach_and_rm_over_the_api() {
    if !root_or_skip("images_import_load_create_attach_and_rm_over_the_api") {
        return;
    }
    let s = Stasis::new();
    let scratch = Scratch::new();
    let rootfs = busybox_tar(&scratch.0);
    let serve = Serve::start(&s, &[]);
    let sock = &serve.socket;
    // What `docker import -c 'ENV GREETING=hello' rootfs.tar bbox:1` sends.
    let (status, _, body) = raw(
        sock,
        "POST",
        "/v1.44/images/create?fromSrc=-&repo=bbox&tag=1&changes=ENV%20GREETING%3Dhello",
        &rootfs,
    );
    let text = String::from_utf8_lossy(&body).into_owned();
    assert_eq!(status, 200, "{text}");
    assert!(text.contains(r#"{"status":"sha256:"#), "{text}");
    assert!(
        s.run(&["image", "ls"]).ok().stdout.contains("bbox"),
        "the CLI sees the import"
    );
    // What `docker load` sends: a `docker save` archive.
    let (status, _, body) = raw(
        sock,
        "POST",
        "/v1.44/images/load?quiet=0",
        &docker_save(&rootfs, &top_layer()),
    );
    let text = String::from_utf8_lossy(&body).into_owned();
    assert_eq!(status, 200, "{text}");
    assert!(
        text.contains(r#"{"stream":"Loaded image: saved:1\n"}"#),
        "{text}"
    );
    let (status, _, body) = raw(
        sock,
        "POST",
        "/images/create?fromImage=busybox&tag=latest",
        b"",
    );
    assert_eq!(status, 404);
    assert!(
        message(&body).contains("does not pull images"),
        "{}",
        message(&body)
    );
    let (status, _, body) = raw(sock, "GET", "/images/nope/json", b"");
    assert_eq!(
        (status, message(&body).as_str()),
        (404, "No such image: nope")
    );

    let steps = async {
        let docker = serve.docker();
        let images = docker
            .list_images(None::<ListImagesOptions<String>>)
            .await
            .expect("images");
        let mut tags: Vec<String> = images.iter().flat_map(|i| i.repo_tags.clone()).collect();
        tags.sort();
        assert_eq!(tags, ["bbox:1", "saved:1"]);
        let inspected = docker.inspect_image("bbox:1").await.expect("inspect image");
        assert!(inspected.id.expect("Id").starts_with("sha256:"));

        // create, attach before start (as `docker run` does), start, wait.
        let create = |name: &'static str, config: Config<String>| {
            docker.create_container(
                Some(CreateContainerOptions {
                    name,
                    platform: None,
                }),
                config,
            )
        };
        let id = create(
            "once",
            Config {
                image: Some("bbox:1".into()),
                cmd: Some(vec![
                    "sh".into(),
                    "-c".into(),
                    "echo $GREETING from $0; exit 4".into(),
                ]),
                labels: Some(HashMap::from([("tier".into(), "job".into())])),
                ..Default::default()
            },
        )
        .await
        .expect("create")
        .id;
        assert_eq!(id.len(), 64);
        let i = docker
            .inspect_container("once", None::<InspectContainerOptions>)
            .await
            .expect("inspect");
        assert_eq!(
            i.state
                .and_then(|s| s.status)
                .map(|s| s.to_string())
                .as_deref(),
            Some("created")
        );
        assert!(i.image.expect("Image").starts_with("sha256:"));

        let mut attach = UnixStream::connect(sock).expect("connect");
        attach
            .set_read_timeout(Some(Duration::from_secs(20)))
            .expect("timeout");
        attach
            .write_all(b"POST /v1.44/containers/once/attach?stream=1&stdout=1&stderr=1 HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n")
            .expect("attach");
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        while !got.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = attach.read(&mut buf).expect("the upgrade");
            assert!(n > 0, "closed early");
            got.extend_from_slice(&buf[..n]);
        }
        let (status, head, mut stream) = split_response(&got);
        assert_eq!(status, 101, "{head}");
        assert!(head.contains("upgrade: tcp"), "{head}");
        // The wait is in before the start (its headers say so), as the
        // docker CLI's is.
        let mut wait = UnixStream::connect(sock).expect("connect");
        wait.set_read_timeout(Some(Duration::from_secs(20)))
            .expect("timeout");
        wait.write_all(
            b"POST /v1.44/containers/once/wait?condition=next-exit HTTP/1.0\r\nHost: x\r\n\r\n",
        )
        .expect("wait");
        let mut waited = Vec::new();
        while !waited.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = wait.read(&mut buf).expect("the wait's headers");
            assert!(n > 0, "closed early");
            waited.extend_from_slice(&buf[..n]);
        }
        docker
            .start_container("once", None::<StartContainerOptions<String>>)
            .await
            .expect("start");
        // The output, framed, until the container ends and the stream closes.
        loop {
            let n = attach.read(&mut buf).expect("the output");
            if n == 0 {
                break;
            }
            stream.extend_from_slice(&buf[..n]);
        }
        assert_eq!(&stream[..8], &[1, 0, 0, 0, 0, 0, 0, 14], "{stream:?}");
        assert_eq!(&stream[8..], b"hello from sh\n");
        wait.read_to_end(&mut waited).expect("the wait's body");
        assert!(
            String::from_utf8_lossy(&waited).contains(r#"{"StatusCode":4}"#),
            "{}",
            String::from_utf8_lossy(&waited)
        );

        // A member of another container's pod, as --net/--pid/--ipc=container:X.
        create(
            "anchor",
            Config {
                image: Some("saved:1".into()),
                entrypoint: Some(vec!["sleep".into()]),
                cmd: Some(vec!["1000".into()]),
                ..Default::default()
            },
        )
        .await
        .expect("create anchor");
        docker
            .start_container("anchor", None::<StartContainerOptions<String>>)
            .await
            .expect("start anchor");
        create(
            "member",
            Config {
                image: Some("bbox:1".into()),
                cmd: Some(vec!["sleep".into(), "1000".into()]),
                host_config: Some(HostConfig {
                    network_mode: Some("container:anchor".into()),
                    pid_mode: Some("container:anchor".into()),
                    ipc_mode: Some("container:anchor".into()),
                    ..Default::default()
                }),
                ..Default::default()
            },
        )
        .await
        .expect("create member");
        docker
            .start_container("member", None::<StartContainerOptions<String>>)
            .await
            .expect("start member");
        assert_eq!(
            s.inspect("member")["pod"],
            s.inspect("anchor")["pod"],
            "one pod"
        );
        assert_eq!(
            s.inspect("anchor")["command"],
            serde_json::json!(["sleep", "1000"])
        );

        let refused = create(
            "tty",
            Config {
                image: Some("bbox:1".into()),
                tty: Some(true),
                ..Default::default()
            },
        )
        .await
        .expect_err("no TTY");
        assert_eq!(status_of(&refused), 400);
        let missing = create(
            "missing",
            Config {
                image: Some("nope:1".into()),
                ..Default::default()
            },
        )
        .await
        .expect_err("no image");
        assert_eq!(status_of(&missing), 404);
        let taken = create(
            "anchor",
            Config {
                image: Some("bbox:1".into()),
                cmd: Some(vec!["true".into()]),
                ..Default::default()
            },
        )
        .await
        .expect_err("name in use");
        assert_eq!(status_of(&taken), 409);

        let in_use = docker
            .remove_image("bbox:1", None::<RemoveImageOptions>, None)
            .await
            .expect_err("in use");
        assert_eq!(status_of(&in_use), 409);
        for name in ["member", "anchor", "once"] {
            docker
                .remove_container(
                    name,
                    Some(RemoveContainerOptions {
                        force: true,
                        ..Default::default()
                    }),
                )
                .await
                .expect("rm -f");
        }
        let removed = docker
            .remove_image("bbox:1", None::<RemoveImageOptions>, None)
            .await
            .expect("rmi");
        assert!(
            removed
                .iter()
                .any(|r| r.untagged.as_deref() == Some("bbox:1")),
            "{removed:?}"
        );
        assert!(removed.iter().any(|r| r.deleted.is_some()), "{removed:?}");
    };
    // Every step is bounded: a wait that never answers fails the test.
    runtime().block_on(async {
        tokio::time::timeout(Duration::from_secs(120), steps)
            .await
            .expect("the steps took over two minutes")
    });
}

#[test]
fn a_pause_with_a_lease_ends_by_itself() {
    if !root_or_skip("a_pause_with_a_lease_ends_by_itself") {
        return;
    }
    let s = Stasis::new();
    s.run(&["run", "-d", "--name", "leased", "--", "sleep", "1000"])
        .ok();
    let serve = Serve::start(&s, &[]);
    let (status, _, body) = raw(
        &serve.socket,
        "POST",
        "/v1.44/containers/leased/pause?lease=1s",
        b"",
    );
    assert_eq!(status, 204, "{}", String::from_utf8_lossy(&body));
    assert_eq!(s.inspect("leased")["status"], "paused");
    assert!(
        s.inspect("leased")["lease"].is_object(),
        "the CLI sees the lease"
    );
    wait_until(Duration::from_secs(15), "the lease to thaw it", || {
        s.inspect("leased")["status"] == "running"
    });
    let (status, _, body) = raw(
        &serve.socket,
        "POST",
        "/containers/leased/pause?lease=soon",
        b"",
    );
    assert_eq!(status, 400, "{}", String::from_utf8_lossy(&body));
    assert_eq!(
        s.inspect("leased")["status"],
        "running",
        "a bad lease pauses nothing"
    );
}

#[test]
fn create_honours_host_config_confinement_mounts_hostname_and_init() {
    if !root_or_skip("create_honours_host_config_confinement_mounts_hostname_and_init") {
        return;
    }
    let s = Stasis::new();
    let scratch = Scratch::new();
    let rootfs = busybox_tar(&scratch.0);
    let shared = scratch.0.join("shared");
    std::fs::create_dir(&shared).expect("dir");
    std::fs::write(shared.join("marker"), "from the host\n").expect("marker");
    let serve = Serve::start(&s, &[]);
    let sock = &serve.socket;
    let (status, _, body) = raw(sock, "POST", "/images/create?fromSrc=-&repo=bbox", &rootfs);
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let script = "grep CapBnd /proc/self/status; cat /mnt/marker; \
                  touch /etc/x 2>/dev/null || echo read-only root; \
                  grep -c ' /scratch tmpfs' /proc/mounts; grep -c ' /m2 tmpfs' /proc/mounts; \
                  hostname; echo pid1 $(cat /proc/1/comm); \
                  grep NoNewPrivs /proc/self/status; grep Seccomp: /proc/self/status";
    // What `docker create --cap-drop ALL --cap-add NET_ADMIN -v DIR:/mnt:ro
    // --read-only --tmpfs /scratch:size=1m --mount type=tmpfs,dst=/m2
    // --security-opt no-new-privileges --security-opt seccomp=unconfined
    // --hostname hc --init` sends.
    let create = serde_json::json!({
        "Image": "bbox",
        "Hostname": "hc",
        "Cmd": ["sh", "-c", script],
        "HostConfig": {
            "CapDrop": ["ALL"],
            "CapAdd": ["NET_ADMIN"],
            "Binds": [format!("{}:/mnt:ro", shared.display())],
            "ReadonlyRootfs": true,
            "Tmpfs": {"/scratch": "size=1m"},
            "Mounts": [{"Type": "tmpfs", "Target": "/m2", "TmpfsOptions": {"SizeBytes": 1048576}}],
            "SecurityOpt": ["no-new-privileges", "seccomp=unconfined"],
            "Init": true
        }
    });
    let (status, _, body) = raw(
        sock,
        "POST",
        "/v1.44/containers/create?name=hc",
        create.to_string().as_bytes(),
    );
    assert_eq!(status, 201, "{}", String::from_utf8_lossy(&body));
    let (status, _, body) = raw(sock, "POST", "/containers/hc/start", b"");
    assert_eq!(status, 204, "{}", String::from_utf8_lossy(&body));
    let (status, _, _) = raw(sock, "POST", "/containers/hc/wait", b"");
    assert_eq!(status, 200);
    let log = s.run(&["logs", "hc"]).ok().stdout;
    // NET_ADMIN is bit 12: the bounding set holds it alone.
    assert!(log.contains("CapBnd:\t0000000000001000"), "{log}");
    assert!(log.contains("from the host"), "the bind mount: {log}");
    assert!(log.contains("read-only root"), "{log}");
    assert_eq!(
        log.matches("\n1\n").count() + usize::from(log.starts_with("1\n")),
        1,
        "{log}"
    );
    assert!(log.contains("\nhc\n"), "the hostname: {log}");
    assert!(log.contains("pid1 stasis-pause"), "--init: {log}");
    assert!(log.contains("NoNewPrivs:\t1"), "{log}");
    assert!(log.contains("Seccomp:\t0"), "seccomp=unconfined: {log}");

    // A seccomp profile inline, as the docker CLI sends it: mkdir refused.
    let profile = serde_json::json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}]
    });
    let create = serde_json::json!({
        "Image": "bbox",
        "Cmd": ["sh", "-c", "mkdir /tmp/d || echo mkdir refused"],
        "HostConfig": {"SecurityOpt": [format!("seccomp={profile}")], "Privileged": false}
    });
    let (status, _, body) = raw(
        sock,
        "POST",
        "/containers/create?name=prof",
        create.to_string().as_bytes(),
    );
    assert_eq!(status, 201, "{}", String::from_utf8_lossy(&body));
    raw(sock, "POST", "/containers/prof/start", b"");
    raw(sock, "POST", "/containers/prof/wait", b"");
    let log = s.wait_log("prof", "mkdir refused");
    assert!(
        log.contains("Permission denied"),
        "EACCES from the profile: {log}"
    );

    // Privileged: every capability.
    let create = serde_json::json!({
        "Image": "bbox",
        "Cmd": ["grep", "CapBnd", "/proc/self/status"],
        "HostConfig": {"Privileged": true}
    });
    let (status, _, body) = raw(
        sock,
        "POST",
        "/containers/create?name=priv",
        create.to_string().as_bytes(),
    );
    assert_eq!(status, 201, "{}", String::from_utf8_lossy(&body));
    raw(sock, "POST", "/containers/priv/start", b"");
    raw(sock, "POST", "/containers/priv/wait", b"");
    let log = s.run(&["logs", "priv"]).ok().stdout;
    assert!(
        !log.contains("00000000a80425fb"),
        "not docker's default set: {log}"
    );

    // What the flags refuse, the API refuses with their words.
    for (bad, says) in [
        (
            serde_json::json!({"Image": "bbox", "Cmd": ["true"], "HostConfig": {"Binds": ["relative:/mnt"]}}),
            "not an absolute path",
        ),
        (
            serde_json::json!({"Image": "bbox", "Cmd": ["true"], "HostConfig": {"SecurityOpt": ["apparmor=x"]}}),
            "seccomp=unconfined",
        ),
        (
            serde_json::json!({"Image": "bbox", "Cmd": ["true"], "HostConfig": {"Mounts": [{"Type": "volume", "Target": "/v"}]}}),
            "not supported",
        ),
    ] {
        let (status, _, body) = raw(
            sock,
            "POST",
            "/containers/create",
            bad.to_string().as_bytes(),
        );
        assert_eq!(status, 400, "{bad}: {}", String::from_utf8_lossy(&body));
        assert!(message(&body).contains(says), "{bad}: {}", message(&body));
    }
}

/// Creates a container from `bbox` running `cmd` (with `more` for the rest
/// of its config) and starts it.
async fn run_bbox(docker: &Docker, name: &str, cmd: &[&str], more: Config<String>) {
    docker
        .create_container(
            Some(CreateContainerOptions {
                name,
                platform: None,
            }),
            Config {
                image: Some("bbox".into()),
                cmd: Some(cmd.iter().map(|s| s.to_string()).collect()),
                ..more
            },
        )
        .await
        .expect("create");
    docker
        .start_container(name, None::<StartContainerOptions<String>>)
        .await
        .expect("start");
}

/// An exec start's options for `Detach: true`.
fn detached() -> Option<bollard::exec::StartExecOptions> {
    Some(bollard::exec::StartExecOptions {
        detach: true,
        ..Default::default()
    })
}

/// Reads an upgraded connection until `want` is in what came, or it ends;
/// what came.
fn read_until(conn: &mut UnixStream, got: &mut Vec<u8>, want: &[u8]) -> bool {
    let mut buf = [0u8; 4096];
    while !got.windows(want.len()).any(|w| w == want) {
        match conn.read(&mut buf) {
            Ok(0) | Err(_) => return false,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
    true
}

/// Sends a request that upgrades, and reads up to the end of the `101`'s
/// headers: the connection, and the bytes that followed them.
fn upgrade(sock: &Path, request: &str, body: &str) -> (UnixStream, Vec<u8>) {
    let mut conn = UnixStream::connect(sock).expect("connect");
    conn.set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    write!(
        conn,
        "{request} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n{body}",
        body.len()
    )
    .expect("request");
    let mut got = Vec::new();
    assert!(read_until(&mut conn, &mut got, b"\r\n\r\n"), "no answer");
    let (status, head, rest) = split_response(&got);
    assert_eq!(status, 101, "{head}{}", String::from_utf8_lossy(&rest));
    (conn, rest)
}

#[test]
fn exec_and_attach_with_stdin_and_a_tty_over_the_api() {
    if !root_or_skip("exec_and_attach_with_stdin_and_a_tty_over_the_api") {
        return;
    }
    use bollard::exec::{CreateExecOptions, ResizeExecOptions, StartExecResults};
    use tokio::io::AsyncWriteExt;
    let s = Stasis::new();
    let scratch = Scratch::new();
    let serve = Serve::start(&s, &[]);
    let sock = &serve.socket;
    let (status, _, _) = raw(
        sock,
        "POST",
        "/images/create?fromSrc=-&repo=bbox",
        &busybox_tar(&scratch.0),
    );
    assert_eq!(status, 200);
    let steps = async {
        let docker = serve.docker();
        let create = |name: &'static str, config: Config<String>| {
            docker.create_container(
                Some(CreateContainerOptions {
                    name,
                    platform: None,
                }),
                config,
            )
        };
        let cmd = |c: &[&str]| Some(c.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        run_bbox(&docker, "box", &["sleep", "1000"], Config::default()).await;
        let exec = |c: &[&str], stdin: bool, tty: bool| {
            docker.create_exec(
                "box",
                CreateExecOptions {
                    cmd: cmd(c),
                    attach_stdin: Some(stdin),
                    attach_stdout: Some(true),
                    attach_stderr: Some(true),
                    tty: Some(tty),
                    env: Some(vec!["WHO=exec".to_string()]),
                    ..Default::default()
                },
            )
        };
        let collect = |id: String, input: &'static [u8]| {
            let docker = docker.clone();
            async move {
                let StartExecResults::Attached {
                    mut output,
                    input: mut input_w,
                } = docker.start_exec(&id, None).await.expect("start exec")
                else {
                    panic!("detached");
                };
                if !input.is_empty() {
                    input_w.write_all(input).await.expect("stdin");
                }
                // The half-close: the command's stdin ends.
                input_w.shutdown().await.expect("half-close");
                let (mut out, mut err) = (String::new(), String::new());
                while let Some(item) = output.next().await {
                    match item.expect("output") {
                        LogOutput::StdOut { message } => {
                            out.push_str(&String::from_utf8_lossy(&message))
                        }
                        LogOutput::StdErr { message } => {
                            err.push_str(&String::from_utf8_lossy(&message))
                        }
                        other => out.push_str(&other.to_string()),
                    }
                }
                (out, err)
            }
        };
        // Streams apart, the environment, the exit status in inspect.
        let id = exec(
            &["sh", "-c", "echo out $WHO; echo err >&2; exit 3"],
            false,
            false,
        )
        .await
        .expect("create exec")
        .id;
        let (out, err) = collect(id.clone(), b"").await;
        assert_eq!((out.as_str(), err.as_str()), ("out exec\n", "err\n"));
        let i = docker.inspect_exec(&id).await.expect("inspect exec");
        assert_eq!(i.exit_code, Some(3), "{i:?}");
        assert_eq!(i.running, Some(false));
        assert!(i.pid.is_some_and(|p| p > 0), "{i:?}");
        assert_eq!(i.container_id.as_deref(), s.inspect("box")["Id"].as_str());
        // Starting it again is refused.
        let again = docker.start_exec(&id, detached()).await;
        assert_eq!(status_of(&again.expect_err("ran already")), 409);
        // Stdin, ended by the half-close.
        let id = exec(&["cat"], true, false).await.expect("create exec").id;
        let (out, _) = collect(id.clone(), b"piped\n").await;
        assert_eq!(out, "piped\n");
        assert_eq!(
            docker.inspect_exec(&id).await.expect("inspect").exit_code,
            Some(0)
        );
        // A TTY: one raw stream, resized.
        let id = exec(&["sh", "-c", "sleep 1; stty size"], false, true)
            .await
            .expect("create exec")
            .id;
        let docker2 = docker.clone();
        let id2 = id.clone();
        let resize = tokio::spawn(async move {
            // Until it runs (the start below).
            for _ in 0..50 {
                let r = docker2
                    .resize_exec(
                        &id2,
                        ResizeExecOptions {
                            height: 33,
                            width: 99,
                        },
                    )
                    .await;
                if r.is_ok() {
                    return true;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            false
        });
        let (out, err) = collect(id.clone(), b"").await;
        assert!(resize.await.expect("resize task"), "resized");
        assert_eq!((out.trim(), err.as_str()), ("33 99", ""), "{out:?}");
        // Detached: the status comes later.
        let id = exec(&["sh", "-c", "exit 9"], false, false)
            .await
            .expect("create")
            .id;
        assert!(matches!(
            docker
                .start_exec(&id, detached())
                .await
                .expect("detached start"),
            StartExecResults::Detached
        ));
        let mut code = None;
        for _ in 0..100 {
            code = docker.inspect_exec(&id).await.expect("inspect").exit_code;
            if code.is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(code, Some(9));
        // What cannot run: docker's status in the record, a 400 now.
        let id = exec(&["nosuch"], false, false).await.expect("create").id;
        let e = docker.start_exec(&id, detached()).await;
        assert_eq!(status_of(&e.expect_err("no such command")), 400);
        assert_eq!(
            docker.inspect_exec(&id).await.expect("inspect").exit_code,
            Some(127)
        );
        let e = docker
            .create_exec(
                "box",
                CreateExecOptions {
                    cmd: cmd(&["true"]),
                    privileged: Some(true),
                    ..Default::default()
                },
            )
            .await;
        assert_eq!(status_of(&e.expect_err("privileged")), 400);
        assert_eq!(
            status_of(&docker.inspect_exec("nosuch").await.expect_err("404")),
            404
        );
        s.run(&["pause", "box"]).ok();
        let e = exec(&["true"], false, false).await;
        assert_eq!(status_of(&e.expect_err("paused")), 409);
        s.run(&["unpause", "box"]).ok();

        // A container's stdin: attached before the start, as `docker run
        // -i` does; its half-close closes a StdinOnce container's stdin.
        create(
            "piped",
            Config {
                image: Some("bbox".into()),
                cmd: cmd(&["sh", "-c", "cat; echo done"]),
                open_stdin: Some(true),
                stdin_once: Some(true),
                attach_stdin: Some(true),
                ..Default::default()
            },
        )
        .await
        .expect("create");
        let bollard::container::AttachContainerResults {
            mut output,
            mut input,
        } = docker
            .attach_container(
                "piped",
                Some(bollard::container::AttachContainerOptions::<String> {
                    stdin: Some(true),
                    stdout: Some(true),
                    stderr: Some(true),
                    stream: Some(true),
                    ..Default::default()
                }),
            )
            .await
            .expect("attach");
        input.write_all(b"to cat\n").await.expect("stdin");
        input.shutdown().await.expect("half-close");
        docker
            .start_container("piped", None::<StartContainerOptions<String>>)
            .await
            .expect("start");
        let mut out = String::new();
        while let Some(item) = output.next().await {
            out.push_str(&item.expect("output").to_string());
        }
        assert_eq!(out, "to cat\ndone\n");
        let inspected = docker
            .inspect_container("piped", None::<InspectContainerOptions>)
            .await
            .expect("inspect");
        let config = inspected.config.expect("Config");
        assert_eq!(
            (config.open_stdin, config.stdin_once),
            (Some(true), Some(true))
        );
        assert_eq!(
            inspected.state.and_then(|s| s.exit_code),
            Some(0),
            "cat saw its end of file"
        );

        // A TTY container: raw output, resized, detached by the keys.
        run_bbox(
            &docker,
            "term",
            &["sh"],
            Config {
                tty: Some(true),
                open_stdin: Some(true),
                ..Default::default()
            },
        )
        .await;
        docker
            .resize_container_tty(
                "term",
                bollard::container::ResizeContainerTtyOptions {
                    height: 31,
                    width: 97,
                },
            )
            .await
            .expect("resize");
        let e = docker
            .resize_container_tty(
                "box",
                bollard::container::ResizeContainerTtyOptions {
                    height: 31,
                    width: 97,
                },
            )
            .await;
        assert_eq!(status_of(&e.expect_err("no TTY")), 409);
    };
    runtime().block_on(steps);
    let (mut conn, mut got) = upgrade(
        sock,
        "POST /containers/term/attach?stream=1&stdin=1&stdout=1&stderr=1&detachKeys=ctrl-x,x",
        "",
    );
    conn.write_all(b"echo $((6*7)); stty size\n").expect("keys");
    assert!(
        read_until(&mut conn, &mut got, b"31 97"),
        "{}",
        String::from_utf8_lossy(&got)
    );
    assert!(got.windows(2).any(|w| w == b"42"), "{got:?}");
    assert_ne!(got.first(), Some(&1), "raw, no frames: {got:?}");
    // The detach keys end the attach; the container runs on.
    conn.write_all(b"\x18x").expect("detach");
    let mut rest = Vec::new();
    assert!(!read_until(&mut conn, &mut rest, b"never"), "closed");
    assert_eq!(s.inspect("term")["State"]["Status"], "running");
    let (mut conn, _) = upgrade(
        sock,
        "POST /containers/term/attach?stream=1&stdin=1&stdout=1",
        "",
    );
    conn.write_all(b"exit 5\n").expect("exit");
    let mut end = Vec::new();
    assert!(
        !read_until(&mut conn, &mut end, b"never"),
        "closed at the exit"
    );
    wait_until(Duration::from_secs(10), "term's exit", || {
        s.inspect("term")["State"]["ExitCode"] == 5
    });
}

#[test]
fn a_killed_service_leaves_no_exec_running_and_a_new_one_knows_none() {
    if !root_or_skip("a_killed_service_leaves_no_exec_running_and_a_new_one_knows_none") {
        return;
    }
    use bollard::exec::CreateExecOptions;
    let s = Stasis::new();
    let scratch = Scratch::new();
    let mut serve = Serve::start(&s, &[]);
    let (status, _, _) = raw(
        &serve.socket,
        "POST",
        "/images/create?fromSrc=-&repo=bbox",
        &busybox_tar(&scratch.0),
    );
    assert_eq!(status, 200);
    let docker = serve.docker();
    let (exec_id, pid) = runtime().block_on(async {
        run_bbox(&docker, "box", &["sleep", "1000"], Config::default()).await;
        let id = docker
            .create_exec(
                "box",
                CreateExecOptions {
                    cmd: Some(vec!["sleep", "999"]),
                    ..Default::default()
                },
            )
            .await
            .expect("create exec")
            .id;
        docker
            .start_exec(&id, detached())
            .await
            .expect("start exec");
        let pid = docker
            .inspect_exec(&id)
            .await
            .expect("inspect")
            .pid
            .expect("Pid");
        (id, pid)
    });
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).expect("the exec runs");
    assert_eq!(cmdline, b"sleep\0999\0");
    // SIGKILL: no chance to clean up; the kernel's parent-death signal
    // ends the exec.
    let anchor = anchor_of(serve.pid());
    if let Some(mut child) = serve.child.take() {
        child.kill().expect("kill serve");
        child.wait().expect("reap serve");
    }
    assert!(anchor.exists(), "a killed service cannot remove its anchor");
    wait_until(
        Duration::from_secs(10),
        "the exec to die with the service",
        || std::fs::read(format!("/proc/{pid}/cmdline")).map_or(true, |c| c != cmdline),
    );
    assert_eq!(
        s.inspect("box")["State"]["Status"],
        "running",
        "the container outlives the service"
    );
    let again = Serve::start(&s, &[]);
    assert!(
        !anchor.exists(),
        "the next service removes a dead one's anchor"
    );
    let (status, _, body) = raw(&again.socket, "GET", &format!("/exec/{exec_id}/json"), b"");
    assert_eq!(status, 404, "{}", message(&body));
    s.run(&["rm", "-f", "box"]).ok();
}
