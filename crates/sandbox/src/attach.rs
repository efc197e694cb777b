//! A container's attach socket, as conmon's: `attach` in its record
//! directory, a Unix stream socket its monitor listens on, through which
//! whoever attaches feeds the container's stdin (a pipe with `-i`, the
//! pseudo-terminal's master with `-t`) and sets its window size
//! (`TIOCSWINSZ` on the master). What the container writes is read from
//! its log (see `logs`), which a TTY container has too.
//!
//! Frames, client to monitor: a kind byte, a 4-byte big-endian length, the
//! payload. `d` stdin bytes; `w` a window size (rows, then columns, 2 bytes
//! each, big-endian); `e` the end of the client's stdin (the container's
//! pipe is closed, as docker's `StdinOnce`; a TTY keeps its terminal).
//!
//! The socket is bound and reached through `/proc/self/fd/N/attach` (N a
//! descriptor of the record directory), so that a long state root cannot
//! overflow a socket address (108 bytes).

use std::io::Write;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};

use rustix::fs::{Mode, OFlags};

use crate::container::ContainerRecord;
use crate::error::{Error, Kind, Result};
use crate::Sandbox;

/// The socket's name in the container's record directory.
const SOCKET: &str = "attach";

const DATA: u8 = b'd';
const WINSIZE: u8 = b'w';
const EOF: u8 = b'e';

/// The largest payload a frame may carry; a longer one is a broken client.
const MAX_FRAME: usize = 1 << 20;

/// One thing a client says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Frame {
    Data(Vec<u8>),
    Winsize { rows: u16, cols: u16 },
    Eof,
}

fn encode(kind: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(5 + payload.len());
    out.push(kind);
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// Takes the whole frames at the front of `buf`; `Err` on a frame no
/// client of ours sends (the connection is then dropped).
pub(crate) fn decode(buf: &mut Vec<u8>) -> std::result::Result<Vec<Frame>, ()> {
    let mut frames = Vec::new();
    let mut at = 0;
    while buf.len() - at >= 5 {
        let kind = buf[at];
        let len = u32::from_be_bytes([buf[at + 1], buf[at + 2], buf[at + 3], buf[at + 4]]) as usize;
        if len > MAX_FRAME {
            return Err(());
        }
        if buf.len() - at - 5 < len {
            break;
        }
        let payload = &buf[at + 5..at + 5 + len];
        frames.push(match (kind, payload) {
            (DATA, p) => Frame::Data(p.to_vec()),
            (WINSIZE, [r0, r1, c0, c1]) => Frame::Winsize {
                rows: u16::from_be_bytes([*r0, *r1]),
                cols: u16::from_be_bytes([*c0, *c1]),
            },
            (EOF, []) => Frame::Eof,
            _ => return Err(()),
        });
        at += 5 + len;
    }
    buf.drain(..at);
    Ok(frames)
}

/// The path through which the socket is reached, with the directory
/// descriptor that keeps it valid.
fn short_path(dir: &Path) -> std::io::Result<(OwnedFd, PathBuf)> {
    let fd = rustix::fs::open(
        dir,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let raw = std::os::fd::AsRawFd::as_raw_fd(&fd);
    Ok((fd, PathBuf::from(format!("/proc/self/fd/{raw}/{SOCKET}"))))
}

/// The monitor's listening socket (non-blocking).
pub(crate) fn listen(dir: &Path) -> Result<UnixListener> {
    let path = dir.join(SOCKET);
    let failed = |source| Error::AttachSocket {
        path: path.clone(),
        source,
    };
    // A socket left by an earlier run of the monitor (a restart of the
    // container from `start`).
    match std::fs::remove_file(&path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(failed(e)),
    }
    let (_dir, short) = short_path(dir).map_err(failed)?;
    let listener = UnixListener::bind(&short).map_err(failed)?;
    listener.set_nonblocking(true).map_err(failed)?;
    Ok(listener)
}

/// A connection to a running container's monitor.
#[derive(Debug)]
pub struct Attach {
    stream: UnixStream,
    path: PathBuf,
}

impl Attach {
    /// Passes `bytes` to the container's stdin.
    pub fn send_stdin(&mut self, bytes: &[u8]) -> Result<()> {
        self.send(DATA, bytes)
    }

    /// Sets the container's terminal to `rows` × `cols`.
    pub fn send_winsize(&mut self, rows: u16, cols: u16) -> Result<()> {
        let mut p = rows.to_be_bytes().to_vec();
        p.extend_from_slice(&cols.to_be_bytes());
        self.send(WINSIZE, &p)
    }

    /// Says that this client's stdin has ended.
    pub fn send_eof(&mut self) -> Result<()> {
        self.send(EOF, &[])
    }

    /// A second handle on the same connection (for another thread).
    pub fn try_clone(&self) -> Result<Attach> {
        Ok(Attach {
            stream: self.stream.try_clone().map_err(|source| Error::Attach {
                path: self.path.clone(),
                source,
            })?,
            path: self.path.clone(),
        })
    }

    fn send(&mut self, kind: u8, payload: &[u8]) -> Result<()> {
        self.stream
            .write_all(&encode(kind, payload))
            .map_err(|source| Error::Attach {
                path: self.path.clone(),
                source,
            })
    }
}

impl Sandbox {
    /// Connects to a container's attach socket. Its process must run;
    /// a container started before attach sockets existed has none.
    pub fn attach(&self, c: &ContainerRecord) -> Result<Attach> {
        let dir = self.store.dir(Kind::Container, &c.id);
        let path = dir.join(SOCKET);
        let failed = |source| Error::Attach {
            path: path.clone(),
            source,
        };
        let (_dir, short) = short_path(&dir).map_err(failed)?;
        let stream = UnixStream::connect(&short).map_err(failed)?;
        Ok(Attach { stream, path })
    }
}

/// What the monitor feeds: the container's stdin, and the master whose
/// window size it sets (`-t`).
pub(crate) struct Input {
    /// The pipe's write end or the master (non-blocking); `None` once
    /// closed.
    pub fd: Option<OwnedFd>,
    /// Bytes accepted from clients, not yet taken by the container.
    pub pending: Vec<u8>,
    pub tty: bool,
    /// A client's stdin ended: close the pipe once `pending` is written.
    pub close_after: bool,
}

impl Input {
    /// Writes what it can of `pending` without blocking.
    pub fn flush(&mut self) {
        let Some(fd) = self.fd.as_ref() else {
            self.pending.clear();
            return;
        };
        while !self.pending.is_empty() {
            match rustix::io::write(fd, &self.pending) {
                Ok(n) => {
                    self.pending.drain(..n);
                }
                Err(rustix::io::Errno::AGAIN) => return,
                Err(rustix::io::Errno::INTR) => {}
                Err(_) => {
                    // The container closed its stdin: what it did not
                    // read is dropped, as a pipe's reader would have.
                    self.fd = None;
                    self.pending.clear();
                    return;
                }
            }
        }
        if self.close_after {
            self.fd = None;
        }
    }

    /// Applies one frame from a client.
    pub fn apply(&mut self, frame: Frame) {
        match frame {
            Frame::Data(bytes) => {
                if self.fd.is_some() {
                    self.pending.extend_from_slice(&bytes);
                }
            }
            Frame::Winsize { rows, cols } => {
                if let (true, Some(fd)) = (self.tty, self.fd.as_ref()) {
                    let size = rustix::termios::Winsize {
                        ws_row: rows,
                        ws_col: cols,
                        ws_xpixel: 0,
                        ws_ypixel: 0,
                    };
                    // The container's terminal is gone if this fails;
                    // its end is seen through its exit.
                    let _ = rustix::termios::tcsetwinsize(fd.as_fd(), size);
                }
            }
            Frame::Eof => {
                if !self.tty {
                    // Closed once the rest is written.
                    self.close_after = true;
                    self.flush();
                }
            }
        }
    }
}

/// docker's default detach keys.
pub const DEFAULT_DETACH_KEYS: &str = "ctrl-p,ctrl-q";

/// A detach sequence, as bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DetachKeys(pub Vec<u8>);

/// docker's `--detach-keys`: comma-separated keys, each a single
/// character or `ctrl-X` (X a letter, or one of `@ [ \ ] ^ _`).
pub fn parse_detach_keys(s: &str) -> Result<DetachKeys, String> {
    let mut keys = Vec::new();
    for key in s.split(',') {
        let byte = match key.strip_prefix("ctrl-") {
            Some(k) if k.len() == 1 => {
                let c = k.as_bytes()[0].to_ascii_uppercase();
                match c {
                    b'@'..=b'_' => c - b'@',
                    _ => return Err(format!("{key:?} is not a control key (ctrl-a … ctrl-z, ctrl-@, ctrl-[, ctrl-\\, ctrl-], ctrl-^, ctrl-_)")),
                }
            }
            None if key.len() == 1 && key.is_ascii() => key.as_bytes()[0],
            _ => return Err(format!("{key:?} is not a key (a character, or ctrl-X)")),
        };
        keys.push(byte);
    }
    Ok(DetachKeys(keys))
}

/// Finds the detach sequence in what the user types; bytes that may begin
/// it are held back until it is complete or broken.
#[derive(Debug)]
pub struct Detacher {
    keys: Vec<u8>,
    matched: usize,
}

impl Detacher {
    /// Watches for `keys` (none: never detaches).
    pub fn new(keys: DetachKeys) -> Self {
        Detacher {
            keys: keys.0,
            matched: 0,
        }
    }

    /// Appends to `out` what is to go to the container; `true` once the
    /// whole sequence has been typed (what follows it is dropped).
    pub fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) -> bool {
        for &b in input {
            if self.keys.get(self.matched) == Some(&b) {
                self.matched += 1;
                if self.matched == self.keys.len() {
                    return true;
                }
                continue;
            }
            out.extend_from_slice(&self.keys[..self.matched]);
            self.matched = 0;
            if self.keys.first() == Some(&b) {
                self.matched = 1;
                if self.keys.len() == 1 {
                    return true;
                }
            } else {
                out.push(b);
            }
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_across_split_reads() {
        let mut wire = encode(DATA, b"hi\n");
        wire.extend(encode(WINSIZE, &[0, 24, 0, 80]));
        wire.extend(encode(EOF, &[]));
        let mut buf = wire[..4].to_vec();
        assert_eq!(decode(&mut buf), Ok(vec![]), "half a header");
        buf.extend_from_slice(&wire[4..10]);
        assert_eq!(decode(&mut buf), Ok(vec![Frame::Data(b"hi\n".to_vec())]));
        buf.extend_from_slice(&wire[10..]);
        assert_eq!(
            decode(&mut buf),
            Ok(vec![Frame::Winsize { rows: 24, cols: 80 }, Frame::Eof])
        );
        assert!(buf.is_empty());
    }

    #[test]
    fn a_frame_no_client_sends_is_refused() {
        assert_eq!(decode(&mut encode(b'x', b"")), Err(()));
        assert_eq!(decode(&mut encode(WINSIZE, &[1, 2, 3])), Err(()));
        let mut huge = vec![DATA];
        huge.extend_from_slice(&u32::MAX.to_be_bytes());
        assert_eq!(decode(&mut huge), Err(()));
    }

    #[test]
    fn detach_keys_parse_as_docker_writes_them() {
        assert_eq!(
            parse_detach_keys(DEFAULT_DETACH_KEYS),
            Ok(DetachKeys(vec![16, 17]))
        );
        assert_eq!(parse_detach_keys("ctrl-a,x"), Ok(DetachKeys(vec![1, b'x'])));
        assert_eq!(
            parse_detach_keys("ctrl-@,ctrl-_"),
            Ok(DetachKeys(vec![0, 31]))
        );
        assert!(parse_detach_keys("ctrl-1").is_err());
        assert!(parse_detach_keys("ab").is_err());
        assert!(parse_detach_keys("").is_err());
    }

    #[test]
    fn the_sequence_is_held_back_until_complete_or_broken() {
        let mut d = Detacher::new(DetachKeys(vec![16, 17]));
        let mut out = Vec::new();
        assert!(!d.feed(b"ab\x10", &mut out));
        assert_eq!(out, b"ab", "ctrl-p held back");
        out.clear();
        assert!(!d.feed(b"c", &mut out));
        assert_eq!(out, b"\x10c", "a broken sequence goes through");
        out.clear();
        assert!(!d.feed(b"\x10\x10", &mut out));
        assert_eq!(out, b"\x10", "the second ctrl-p may begin it again");
        out.clear();
        assert!(d.feed(b"\x11rest", &mut out));
        assert!(out.is_empty());
    }
}
