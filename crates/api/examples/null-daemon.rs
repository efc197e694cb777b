//! `null-daemon`: the docker CLI's floor for bench/serve.sh, a daemon on a
//! Unix socket that does nothing. It answers `/_ping` (`GET` and `HEAD`,
//! with or without a version prefix) with `OK` and API 1.44, and
//! `POST .../containers/{id}/pause` and `.../unpause` with `204` at once,
//! touching nothing; anything else is a `404`. `docker -H unix://SOCKET
//! pause X` through it costs what the CLI costs when it talks to a daemon
//! at all (start, dial, `/_ping`, version negotiation, one request), which
//! two `docker --version` do not: what a real service adds is the
//! difference.
//!
//! ```text
//! null-daemon SOCKET
//! ```
//! Serves until SIGTERM or SIGINT, then removes the socket. One thread (a
//! current-thread tokio runtime), HTTP/1.1 by hyper, as `stasis serve`.

use std::convert::Infallible;
use std::path::PathBuf;
use std::process::ExitCode;

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Method, Request, Response, StatusCode};

fn answer(req: &Request<hyper::body::Incoming>) -> Response<Full<Bytes>> {
    let path = req.uri().path();
    // `/v1.44/_ping` and `/_ping` alike.
    let rest = match path.strip_prefix("/v") {
        Some(versioned) => versioned.find('/').map_or(path, |i| &versioned[i..]),
        None => path,
    };
    let reply = |status: StatusCode, body: &'static str| {
        let mut r = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
        *r.status_mut() = status;
        let h = r.headers_mut();
        h.insert("api-version", "1.44".parse().expect("header"));
        h.insert("ostype", "linux".parse().expect("header"));
        r
    };
    let verb = rest
        .strip_prefix("/containers/")
        .and_then(|r| r.rsplit_once('/'))
        .map(|(_, verb)| verb);
    match (req.method(), rest, verb) {
        (&Method::GET | &Method::HEAD, "/_ping", _) => reply(StatusCode::OK, "OK"),
        (&Method::POST, _, Some("pause" | "unpause")) => reply(StatusCode::NO_CONTENT, ""),
        _ => reply(
            StatusCode::NOT_FOUND,
            "{\"message\":\"null-daemon answers only _ping, pause and unpause\"}",
        ),
    }
}

async fn serve(socket: PathBuf) -> std::io::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let listener = tokio::net::UnixListener::bind(&socket)?;
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => accepted?.0,
            _ = term.recv() => return Ok(()),
            _ = int.recv() => return Ok(()),
        };
        tokio::spawn(async move {
            let service =
                hyper::service::service_fn(|req| async move { Ok::<_, Infallible>(answer(&req)) });
            let io = hyper_util::rt::TokioIo::new(stream);
            // A client that hangs up mid-request is no error of ours.
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(io, service)
                .await;
        });
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [socket] = args.as_slice() else {
        eprintln!("usage: null-daemon SOCKET");
        return ExitCode::from(2);
    };
    let socket = PathBuf::from(socket);
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("null-daemon: starting the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(serve(socket.clone()));
    let _ = std::fs::remove_file(&socket);
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("null-daemon: serving {}: {e}", socket.display());
            ExitCode::FAILURE
        }
    }
}
