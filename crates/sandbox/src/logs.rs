//! A container's log: its stdout and stderr, as the monitor writes them to
//! `<root>/containers/<id>/log`, and copying it out, following it until the
//! container exits. Logs depend on containers, never the reverse.
//!
//! The monitor reads the container's stdout and stderr from two pipes and
//! writes each chunk as one line in the CRI log format that kubelet and
//! CRI-O use: `TIMESTAMP STREAM TAG TEXT`, the time in RFC 3339 with
//! nanoseconds, the stream `stdout` or `stderr`, the tag `F` for a full line
//! (TEXT without its newline) or `P` for a part of one (a chunk that ended
//! before a newline). So the two streams stay apart, and every line has the
//! time it was read. A line that is not a frame (a log an older monitor
//! wrote) is copied as stdout, as it is.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::time::{Duration, SystemTime};

use crate::container::ContainerRecord;
use crate::error::{Error, Kind, Result};
use crate::watch::Watch;
use crate::Sandbox;

/// Which stream a piece of output came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    fn word(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

/// What `logs` asks for.
#[derive(Debug, Clone, Copy, Default)]
pub struct LogOptions {
    /// Keep copying until the container has exited.
    pub follow: bool,
    /// Only the last N lines (of both streams together), as docker's
    /// `--tail`.
    pub tail: Option<usize>,
    /// Only lines read at or after this time.
    pub since: Option<SystemTime>,
    /// Prefix each line with its time (RFC 3339, nanoseconds), as `-t`.
    pub timestamps: bool,
    /// Start at this byte of the log ([`Sandbox::log_end`] taken earlier:
    /// "from now" fixed before the caller does anything that makes
    /// output, as `attach` must before it sends the first key). A frame
    /// cut by it is skipped.
    pub from_offset: Option<u64>,
}

/// The frames of one chunk read from `stream` at `at` (the monitor's
/// writer).
pub(crate) fn frames(stream: Stream, at: SystemTime, chunk: &[u8]) -> Vec<u8> {
    let time = crate::time::rfc3339_nanos_fixed(at);
    let mut out = Vec::with_capacity(chunk.len() + 64);
    let mut rest = chunk;
    while !rest.is_empty() {
        let (line, tag, next) = match rest.iter().position(|b| *b == b'\n') {
            Some(i) => (&rest[..i], 'F', &rest[i + 1..]),
            None => (rest, 'P', &rest[rest.len()..]),
        };
        out.extend_from_slice(format!("{time} {} {tag} ", stream.word()).as_bytes());
        out.extend_from_slice(line);
        out.push(b'\n');
        rest = next;
    }
    out
}

/// One parsed frame.
#[derive(Debug, PartialEq, Eq)]
struct Frame<'a> {
    time: Option<&'a str>,
    stream: Stream,
    /// The text with its newline back if the frame was a full line.
    text: Vec<u8>,
}

fn parse_frame(line: &[u8]) -> Frame<'_> {
    let raw = || Frame {
        time: None,
        stream: Stream::Stdout,
        text: [line, b"\n"].concat(),
    };
    let mut parts = line.splitn(4, |b| *b == b' ');
    let (Some(time), Some(stream), Some(tag)) = (parts.next(), parts.next(), parts.next()) else {
        return raw();
    };
    let text = parts.next().unwrap_or_default();
    let stream = match stream {
        b"stdout" => Stream::Stdout,
        b"stderr" => Stream::Stderr,
        _ => return raw(),
    };
    let Ok(time) = std::str::from_utf8(time) else {
        return raw();
    };
    // The fixed-width form the framer writes: 2026-12-02T00:49:14.123456789Z.
    let b = time.as_bytes();
    if b.len() != 30 || b[4] != b'-' || b[10] != b'T' || b[29] != b'Z' {
        return raw();
    }
    let text = match tag {
        b"F" => [text, b"\n"].concat(),
        b"P" => text.to_vec(),
        _ => return raw(),
    };
    Frame {
        time: Some(time),
        stream,
        text,
    }
}

impl Sandbox {
    /// The path of a container's log.
    /// The log's length now: where "from now" starts
    /// ([`LogOptions::from_offset`]); 0 before the container wrote anything.
    pub fn log_end(&self, c: &ContainerRecord) -> u64 {
        std::fs::metadata(self.log_path(c)).map_or(0, |m| m.len())
    }

    pub fn log_path(&self, c: &ContainerRecord) -> std::path::PathBuf {
        self.store.dir(Kind::Container, &c.id).join("log")
    }

    /// Copies the container's log to `out`, both streams together; with
    /// `follow`, keeps copying until the container has exited and the log
    /// is drained, and returns its exit code.
    pub fn copy_logs(
        &self,
        c: &ContainerRecord,
        out: &mut dyn Write,
        follow: bool,
    ) -> Result<Option<i32>> {
        self.copy_log_streams(
            c,
            &mut |_, bytes| out.write_all(bytes).and_then(|()| out.flush()),
            LogOptions {
                follow,
                ..LogOptions::default()
            },
        )
    }

    /// Copies the container's log as `opts` say, each piece to `sink`
    /// with its stream. The one place that reads the log.
    pub fn copy_log_streams(
        &self,
        c: &ContainerRecord,
        sink: &mut dyn FnMut(Stream, &[u8]) -> std::io::Result<()>,
        opts: LogOptions,
    ) -> Result<Option<i32>> {
        let path = self.log_path(c);
        let mut watch = if opts.follow {
            Some(Watch::new(&self.store.dir(Kind::Container, &c.id))?)
        } else {
            None
        };
        let mut log = match File::open(&path) {
            Ok(f) => Some(f),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(source) => return Err(Error::OpenLog { path, source }),
        };
        let since = opts.since.map(crate::time::rfc3339_nanos_fixed);
        let mut pending: Vec<u8> = Vec::new();
        let mut positioned = opts.from_offset.is_none();
        // Set when the offset fell inside a frame: drop up to its end.
        let mut cut_frame = false;
        let mut first = true;
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            // Read the record first: once it says exited, one more drain of
            // the log gets everything the process wrote.
            // A container removed once it exited (`--rm`, the API's
            // AutoRemove) is done: the open log still holds what it wrote.
            let fresh = match self.container(&c.id) {
                Ok(f) => Some(f),
                Err(e) if e.is_not_found() && log.is_some() => None,
                Err(e) => return Err(e),
            };
            let done = fresh.as_ref().is_none_or(|f| {
                f.exit.is_some() && !f.restarting
                    || f.monitor
                        .as_ref()
                        .is_some_and(|m| !m.is_alive(&self.host.proc))
            });
            let code = fresh.and_then(|f| f.exit.map(|e| e.code));
            if log.is_none() {
                log = File::open(&path).ok();
            }
            if let (false, Some(f), Some(offset)) = (positioned, log.as_mut(), opts.from_offset) {
                let seek_err = |source| Error::ReadLog {
                    path: path.clone(),
                    source,
                };
                if offset > 0 {
                    let mut before = [0u8; 1];
                    f.seek(SeekFrom::Start(offset - 1)).map_err(seek_err)?;
                    cut_frame = f.read(&mut before).map_err(seek_err)? == 1 && before[0] != b'\n';
                }
                f.seek(SeekFrom::Start(offset)).map_err(seek_err)?;
                positioned = true;
            }
            if let Some(f) = log.as_mut() {
                loop {
                    let n = f.read(&mut buf).map_err(|source| Error::ReadLog {
                        path: path.clone(),
                        source,
                    })?;
                    if n == 0 {
                        break;
                    }
                    pending.extend_from_slice(&buf[..n]);
                }
            }
            if cut_frame {
                match pending.iter().position(|b| *b == b'\n') {
                    Some(i) => {
                        pending.drain(..=i);
                        cut_frame = false;
                    }
                    None => pending.clear(),
                }
            }
            // Whole frames only; a frame still being written waits.
            let cut = pending
                .iter()
                .rposition(|b| *b == b'\n')
                .map_or(0, |i| i + 1);
            let ready: Vec<u8> = pending.drain(..cut).collect();
            let mut frames: Vec<Frame<'_>> = ready
                .split(|b| *b == b'\n')
                .filter(|l| !l.is_empty())
                .map(parse_frame)
                .filter(|f| match (&since, f.time) {
                    // Fixed-width RFC 3339 in UTC compares as text.
                    (Some(s), Some(t)) => t >= s.as_str(),
                    _ => true,
                })
                .collect();
            if first {
                if let Some(n) = opts.tail {
                    let lines = frames.iter().filter(|f| f.text.ends_with(b"\n")).count();
                    let mut skip = lines.saturating_sub(n);
                    // Drop whole lines (a P frame belongs to the F after it).
                    let mut keep_from = 0;
                    for (i, f) in frames.iter().enumerate() {
                        if skip == 0 {
                            keep_from = i;
                            break;
                        }
                        keep_from = i + 1;
                        if f.text.ends_with(b"\n") {
                            skip -= 1;
                        }
                    }
                    frames.drain(..keep_from.min(frames.len()));
                }
                first = false;
            }
            for f in &frames {
                let copied = if opts.timestamps {
                    let mut line = format!("{} ", f.time.unwrap_or("-")).into_bytes();
                    line.extend_from_slice(&f.text);
                    sink(f.stream, &line)
                } else {
                    sink(f.stream, &f.text)
                };
                copied.map_err(|source| Error::CopyLog {
                    path: path.clone(),
                    source,
                })?;
            }
            let Some(w) = watch.as_mut() else {
                return Ok(code);
            };
            if done {
                // A monitor that ended may have recorded the exit after the
                // read above.
                let code = code.or_else(|| {
                    self.container(&c.id)
                        .ok()
                        .and_then(|f| f.exit.map(|e| e.code))
                });
                return Ok(code);
            }
            w.wait(Duration::from_millis(250))?;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_become_cri_frames_and_back() {
        let at = std::time::UNIX_EPOCH + Duration::from_secs(1_796_161_200);
        let framed = frames(Stream::Stderr, at, b"one\ntwo\npart");
        let text = String::from_utf8(framed.clone()).expect("utf8");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(lines[0].ends_with(" stderr F one"), "{}", lines[0]);
        assert!(lines[2].ends_with(" stderr P part"), "{}", lines[2]);
        let back: Vec<Frame<'_>> = framed
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .map(parse_frame)
            .collect();
        assert_eq!(back[0].stream, Stream::Stderr);
        assert_eq!(back[0].text, b"one\n");
        assert_eq!(back[2].text, b"part", "a part has no newline of its own");
        assert!(back[0].time.is_some());
        let old = parse_frame(b"plain output from an older monitor");
        assert_eq!(old.stream, Stream::Stdout);
        assert_eq!(old.text, b"plain output from an older monitor\n");
    }

    #[test]
    fn from_an_offset_the_log_starts_there_and_a_cut_frame_is_skipped() {
        let host = crate::fake::FakeHost::new("log-offset");
        let sb = &host.sandbox;
        let pod = host.pod("p", false, None);
        let c = host.container("c", &pod, None, Some(0));
        let at = std::time::UNIX_EPOCH + Duration::from_secs(1_796_161_200);
        let first = frames(Stream::Stdout, at, b"before\n");
        let mut log = first.clone();
        log.extend(frames(Stream::Stderr, at, b"after\n"));
        log.extend(frames(Stream::Stdout, at, b"last\n"));
        std::fs::write(sb.log_path(&c), &log).expect("log");
        let copy = |offset| {
            let mut got = Vec::new();
            sb.copy_log_streams(
                &c,
                &mut |stream, bytes| {
                    got.push((stream, String::from_utf8_lossy(bytes).into_owned()));
                    Ok(())
                },
                LogOptions {
                    from_offset: Some(offset),
                    ..Default::default()
                },
            )
            .expect("copy");
            got
        };
        assert_eq!(
            copy(first.len() as u64),
            [
                (Stream::Stderr, "after\n".to_owned()),
                (Stream::Stdout, "last\n".to_owned())
            ],
            "at a frame's start: from that frame"
        );
        assert_eq!(
            copy(first.len() as u64 + 3),
            [(Stream::Stdout, "last\n".to_owned())],
            "inside a frame: from the next one"
        );
        assert_eq!(copy(0).len(), 3, "from the start");
        assert_eq!(sb.log_end(&c), log.len() as u64);
    }
}
