//! The hijacked connection of `POST /containers/{id}/attach` and
//! `POST /exec/{id}/start`: after the `101` upgrade the client's bytes are
//! the process's stdin, and what the service writes is its output — docker's
//! multiplexed frames (`[stream, 0, 0, 0, len u32 BE]`, then the bytes)
//! without a TTY, the raw bytes with one.
//!
//! Output and input each run on threads of their own (the descriptors are
//! ordinary blocking pipes and terminals), talking to the connection's two
//! async halves through channels. The client's half-close ends the stdin
//! (closing an exec's pipe, or telling a container's monitor, which closes
//! its pipe for `StdinOnce`); the detach keys end the connection and leave
//! the process running.

use std::os::fd::OwnedFd;
use std::sync::mpsc as std_mpsc;
use std::time::Duration;

use bytes::Bytes;
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use sandbox::attach::{DetachKeys, Detacher};
use sandbox::{Id, Sandbox};
use tokio::io::{AsyncReadExt, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::sync::{mpsc, oneshot};

/// What the input thread gets from the connection.
pub(crate) enum In {
    Data(Vec<u8>),
    /// The client half-closed its side: its stdin has ended.
    Eof,
}

/// Where the client's stdin goes.
pub(crate) enum Sink {
    /// An exec's stdin pipe or its terminal's master.
    Fd(OwnedFd),
    /// A container's monitor, through its attach socket, reached once the
    /// container runs (`docker run -i` attaches before it starts it);
    /// `stdin_once`: the end of the client's stdin closes the container's.
    Monitor {
        sandbox: Box<Sandbox>,
        id: Id,
        stdin_once: bool,
    },
}

/// The connection's two halves once the `101` has gone out; `None` (and
/// a debug line) if the upgrade did not happen.
pub(crate) async fn upgraded(
    on: hyper::upgrade::OnUpgrade,
    what: &str,
) -> Option<(ReadHalf<TokioIo<Upgraded>>, WriteHalf<TokioIo<Upgraded>>)> {
    match on.await {
        Ok(u) => Some(tokio::io::split(TokioIo::new(u))),
        Err(e) => {
            tracing::debug!(error = %e, "the {what} upgrade did not happen");
            None
        }
    }
}

/// One frame of docker's multiplexed stream, or the bytes as they are
/// (`raw`: a TTY's one stream).
pub(crate) fn frame(stream: u8, data: &[u8], raw: bool) -> Bytes {
    if raw {
        return Bytes::copy_from_slice(data);
    }
    let mut out = Vec::with_capacity(8 + data.len());
    out.extend_from_slice(&[stream, 0, 0, 0]);
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    out.extend_from_slice(data);
    Bytes::from(out)
}

/// Copies the connection to the process's output until every sender of
/// `rx` is gone or the detach keys are typed (`detached`), then shuts the
/// connection down. Writing fails once the client has gone; the senders
/// then drain their sources on their own.
pub(crate) async fn write_out(
    mut wr: WriteHalf<TokioIo<Upgraded>>,
    mut rx: mpsc::Receiver<Bytes>,
    mut detached: oneshot::Receiver<()>,
) {
    // The input's end drops the sender without a detach: from then on
    // only the output decides.
    let mut watching = true;
    loop {
        tokio::select! {
            chunk = rx.recv() => match chunk {
                Some(chunk) => {
                    if wr.write_all(&chunk).await.is_err() || wr.flush().await.is_err() {
                        return;
                    }
                }
                None => break,
            },
            keys = &mut detached, if watching => {
                if keys.is_ok() {
                    break;
                }
                watching = false;
            }
        }
    }
    let _ = wr.shutdown().await;
}

/// Reads the client's stdin until it half-closes or types the detach
/// keys, and passes it to `sink` on a thread of its own. Fires `detached`
/// on the detach keys (the connection then ends).
pub(crate) fn read_in(
    mut rd: ReadHalf<TokioIo<Upgraded>>,
    keys: DetachKeys,
    sink: Sink,
    detached: oneshot::Sender<()>,
) {
    let (tx, rx) = std_mpsc::channel::<In>();
    std::thread::spawn(move || feed(sink, &rx));
    tokio::spawn(async move {
        let mut detacher = Detacher::new(keys);
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            match rd.read(&mut buf).await {
                Ok(0) | Err(_) => {
                    let _ = tx.send(In::Eof);
                    return;
                }
                Ok(n) => {
                    let mut out = Vec::with_capacity(n);
                    let done = detacher.feed(&buf[..n], &mut out);
                    if !out.is_empty() && tx.send(In::Data(out)).is_err() {
                        return;
                    }
                    if done {
                        // Dropping the sender without an Eof: the stdin
                        // stays as it is, the connection ends.
                        let _ = detached.send(());
                        return;
                    }
                }
            }
        }
    });
}

/// How often the input thread looks whether a container attached before
/// its start runs yet.
const START_POLL: Duration = Duration::from_millis(50);

/// The input thread: what the client types, to the sink.
fn feed(sink: Sink, rx: &std_mpsc::Receiver<In>) {
    match sink {
        Sink::Fd(fd) => {
            while let Ok(msg) = rx.recv() {
                match msg {
                    In::Data(bytes) => {
                        if write_all(&fd, &bytes).is_err() {
                            return;
                        }
                    }
                    // Dropping the descriptor closes the pipe.
                    In::Eof => return,
                }
            }
        }
        Sink::Monitor {
            sandbox,
            id,
            stdin_once,
        } => {
            let mut held: Vec<In> = Vec::new();
            let mut ended = false;
            // Until the container runs, what the client sends is held.
            let mut attach = loop {
                match sandbox.container(&id) {
                    Ok(c) if sandbox.container_status(&c).is_running() => {
                        match sandbox.attach(&c) {
                            Ok(a) => break a,
                            Err(e) => {
                                tracing::debug!(error = %crate::format_chain(&e), "attaching stdin");
                                return;
                            }
                        }
                    }
                    // Created, not started yet (or between restarts).
                    Ok(c) if c.exit.is_none() || c.restarting => {}
                    // Exited or removed: nobody to feed.
                    _ => return,
                }
                if ended {
                    std::thread::sleep(START_POLL);
                    continue;
                }
                match rx.recv_timeout(START_POLL) {
                    Ok(msg) => held.push(msg),
                    Err(std_mpsc::RecvTimeoutError::Timeout) => {}
                    Err(std_mpsc::RecvTimeoutError::Disconnected) => {
                        // Gone without an end of its stdin: detached.
                        if !held.iter().any(|m| matches!(m, In::Eof)) {
                            return;
                        }
                        ended = true;
                    }
                }
            };
            for msg in held.into_iter().chain(rx.iter()) {
                match msg {
                    In::Data(bytes) => {
                        if attach.send_stdin(&bytes).is_err() {
                            return;
                        }
                    }
                    In::Eof => {
                        if stdin_once {
                            let _ = attach.send_eof();
                        }
                        return;
                    }
                }
            }
        }
    }
}

fn write_all(fd: &OwnedFd, mut bytes: &[u8]) -> std::io::Result<()> {
    while !bytes.is_empty() {
        match rustix::io::write(fd, bytes) {
            Ok(n) => bytes = &bytes[n..],
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Copies a process's output descriptor (a pipe, or a terminal's master)
/// to the connection, as `stream`'s frames or raw, until its end of file
/// (EIO for a master no process holds any more). Once the client has gone
/// it goes on reading, so that the process never blocks on a full pipe.
pub(crate) fn read_out(fd: OwnedFd, stream: u8, raw: bool, keep: bool, tx: mpsc::Sender<Bytes>) {
    let mut buf = vec![0u8; 32 * 1024];
    let mut connected = true;
    loop {
        match rustix::io::read(&fd, &mut buf) {
            Ok(0) | Err(rustix::io::Errno::IO) => return,
            Ok(n) => {
                if connected && keep && tx.blocking_send(frame(stream, &buf[..n], raw)).is_err() {
                    connected = false;
                }
            }
            Err(rustix::io::Errno::INTR) => {}
            Err(_) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_docker_s_or_raw() {
        assert_eq!(&frame(2, b"hi", false)[..], b"\x02\0\0\0\0\0\0\x02hi");
        assert_eq!(&frame(1, b"hi", true)[..], b"hi");
    }
}
