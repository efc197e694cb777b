//! `serve-client`: the load generator and timer of bench/serve.sh, a
//! client of `stasis serve` that costs little, so that on a small machine
//! the figures are the service's and not the client's.
//!
//! It speaks just enough HTTP/1.1 over the Unix socket: `POST` with an
//! empty body on a kept-alive connection, a response read to the end of
//! its `Content-Length` (a chunked response is refused: the verbs it sends
//! never get one). One `write` per request, one or two `read`s per answer.
//!
//! ```text
//! serve-client own SOCKET CONTAINER FREEZER_STATE ROUNDS
//! ```
//! The service's own time for one pause: `POST /containers/C/pause` timed
//! at the client from the request's `write` to the response's last byte,
//! then `unpause`; against the bare kernel freeze of the same cgroup, done
//! as bench/../crates/freezer/examples/kernel-freeze.rs does it: `FROZEN`
//! written to the open v1 `freezer.state`, re-read (`pread`, yielding in
//! between) until the kernel says `FROZEN`, then `THAWED`. The two
//! alternate, round after round, so that the machine's load falls on both.
//!
//! ```text
//! serve-client load SOCKET SECONDS SERVE_PID CONTAINER...
//! ```
//! One thread per container, each on a connection of its own, pausing and
//! unpausing its container back to back for SECONDS: requests per second,
//! p50, p99 and the slowest of every request; the service's VmRSS (idle
//! before, the highest sampled every 50 ms during); and what each side
//! spent: the CPU time of this process and of the service (user + system,
//! from `/proc/PID/stat`), per request.
//!
//! Both print Markdown table rows. A request that fails (a status of 300
//! or more, a broken connection) ends the run with its message and exit
//! status 1; every read and write has a 30 s timeout.

use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::process::ExitCode;
use std::time::{Duration, Instant};

const IO_TIMEOUT: Duration = Duration::from_secs(30);

/// One kept-alive connection to the service.
struct Client {
    stream: UnixStream,
    buf: Vec<u8>,
}

impl Client {
    fn connect(socket: &str) -> io::Result<Self> {
        let stream = UnixStream::connect(socket)
            .map_err(|e| io::Error::new(e.kind(), format!("connecting to {socket}: {e}")))?;
        stream.set_read_timeout(Some(IO_TIMEOUT))?;
        stream.set_write_timeout(Some(IO_TIMEOUT))?;
        Ok(Client {
            stream,
            buf: Vec::with_capacity(4096),
        })
    }

    /// `POST path` with no body; an error unless the status is below 300.
    fn post(&mut self, path: &str) -> io::Result<()> {
        let request = format!("POST {path} HTTP/1.1\r\nHost: stasis\r\nContent-Length: 0\r\n\r\n");
        self.stream.write_all(request.as_bytes())?;
        self.buf.clear();
        let head_end = loop {
            if let Some(at) = find(&self.buf, b"\r\n\r\n") {
                break at + 4;
            }
            self.fill()?;
        };
        let head = std::str::from_utf8(&self.buf[..head_end])
            .map_err(|_| bad("a response head that is not UTF-8"))?;
        let status: u16 = head
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| bad("a response without a status"))?;
        let mut length = 0usize;
        for line in head.lines().skip(1) {
            let Some((name, value)) = line.split_once(':') else {
                continue;
            };
            if name.eq_ignore_ascii_case("content-length") {
                length = value
                    .trim()
                    .parse()
                    .map_err(|_| bad("a bad Content-Length"))?;
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                return Err(bad("a chunked response to a verb"));
            }
        }
        while self.buf.len() < head_end + length {
            self.fill()?;
        }
        if status >= 300 {
            let body = String::from_utf8_lossy(&self.buf[head_end..head_end + length]);
            return Err(io::Error::other(format!(
                "POST {path}: {status} {}",
                body.trim()
            )));
        }
        Ok(())
    }

    fn fill(&mut self) -> io::Result<()> {
        let mut chunk = [0u8; 4096];
        let n = self.stream.read(&mut chunk)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the service closed the connection",
            ));
        }
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(())
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn bad(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_owned())
}

/// The value at quantile `q` (0..=1) of sorted `v`, in milliseconds.
fn ms(v: &[Duration], q: f64) -> f64 {
    let i = ((v.len() - 1) as f64 * q).round() as usize;
    v[i].as_secs_f64() * 1e3
}

fn own(socket: &str, container: &str, state: &str, rounds: usize) -> io::Result<()> {
    use std::os::unix::fs::FileExt;
    let mut client = Client::connect(socket)?;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(state)
        .map_err(|e| io::Error::new(e.kind(), format!("opening {state}: {e}")))?;
    let pause = format!("/v1.44/containers/{container}/pause");
    let unpause = format!("/v1.44/containers/{container}/unpause");
    let (mut api, mut kernel) = (Vec::new(), Vec::new());
    let mut buf = [0u8; 32];
    let limit = Duration::from_secs(10);
    for round in 0..rounds + 10 {
        let t0 = Instant::now();
        client.post(&pause)?;
        let took = t0.elapsed();
        client.post(&unpause)?;
        let t0 = Instant::now();
        file.write_at(b"FROZEN", 0)?;
        loop {
            let n = file.read_at(&mut buf, 0)?;
            if buf[..n].starts_with(b"FROZEN") {
                break;
            }
            if t0.elapsed() > limit {
                file.write_at(b"THAWED", 0)?;
                return Err(io::Error::other(format!(
                    "{state}: not FROZEN in {limit:?}"
                )));
            }
            std::thread::yield_now();
        }
        let bare = t0.elapsed();
        file.write_at(b"THAWED", 0)?;
        // The first rounds warm the caches on both sides.
        if round >= 10 {
            api.push(took);
            kernel.push(bare);
        }
    }
    api.sort();
    kernel.sort();
    let (a, k) = (ms(&api, 0.5), ms(&kernel, 0.5));
    println!("| | median | p90 |");
    println!("|---|---:|---:|");
    println!(
        "| `POST /containers/C/pause`, request to response | {a:.3} ms | {:.3} ms |",
        ms(&api, 0.9)
    );
    println!(
        "| the bare v1 freeze of the same cgroup | {k:.3} ms | {:.3} ms |",
        ms(&kernel, 0.9)
    );
    println!("| ratio | {:.2}× | |", a / k);
    Ok(())
}

fn rss_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.split_whitespace().next()?.parse().ok())
        })
        .unwrap_or(0)
}

/// A process's user + system CPU time so far, from `/proc/PID/stat`.
fn cpu_of(pid: u32) -> io::Result<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // After the command's closing parenthesis: state is field 3, utime 14.
    let rest = stat
        .rsplit_once(')')
        .map(|(_, r)| r)
        .ok_or_else(|| bad("an unreadable stat"))?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| -> u64 { fields.get(i - 3).and_then(|f| f.parse().ok()).unwrap_or(0) };
    let hz = rustix::param::clock_ticks_per_second();
    Ok(Duration::from_secs_f64(
        (ticks(14) + ticks(15)) as f64 / hz as f64,
    ))
}

fn load(socket: &str, seconds: f64, pid: u32, containers: &[String]) -> io::Result<()> {
    let idle = rss_kb(pid);
    let mut clients = containers
        .iter()
        .map(|_| Client::connect(socket))
        .collect::<io::Result<Vec<_>>>()?;
    let run_for = Duration::from_secs_f64(seconds);
    let me = std::process::id();
    let (cpu_server, cpu_client) = (cpu_of(pid)?, cpu_of(me)?);
    let start = Instant::now();
    let end = start + run_for;
    let threads: Vec<_> = clients
        .drain(..)
        .zip(containers)
        .map(|(mut client, c)| {
            let paths = [
                format!("/v1.44/containers/{c}/pause"),
                format!("/v1.44/containers/{c}/unpause"),
            ];
            std::thread::spawn(move || -> io::Result<Vec<Duration>> {
                let mut lat = Vec::with_capacity(1 << 14);
                while Instant::now() < end {
                    for p in &paths {
                        let t0 = Instant::now();
                        client.post(p)?;
                        lat.push(t0.elapsed());
                    }
                }
                Ok(lat)
            })
        })
        .collect();
    let mut peak = idle;
    while threads.iter().any(|t| !t.is_finished()) {
        peak = peak.max(rss_kb(pid));
        std::thread::sleep(Duration::from_millis(50));
        if start.elapsed() > run_for + Duration::from_secs(60) {
            return Err(io::Error::other("the clients did not finish in time"));
        }
    }
    let took = start.elapsed().as_secs_f64();
    let (cpu_server, cpu_client) = (cpu_of(pid)? - cpu_server, cpu_of(me)? - cpu_client);
    let mut lat = Vec::new();
    for t in threads {
        lat.extend(
            t.join()
                .map_err(|_| io::Error::other("a client panicked"))??,
        );
    }
    lat.sort();
    let n = lat.len() as f64;
    println!(
        "| {} clients, {seconds} s | {:.0} requests/s | p50 {:.2} ms | p99 {:.2} ms | max {:.2} ms | \
         RSS idle {:.1} MB, under load {:.1} MB | CPU per request: service {:.0} µs, client {:.0} µs |",
        containers.len(),
        n / took,
        ms(&lat, 0.5),
        ms(&lat, 0.99),
        ms(&lat, 1.0),
        idle as f64 / 1024.0,
        peak as f64 / 1024.0,
        cpu_server.as_secs_f64() * 1e6 / n,
        cpu_client.as_secs_f64() * 1e6 / n,
    );
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: serve-client own SOCKET CONTAINER FREEZER_STATE ROUNDS\n       \
                 serve-client load SOCKET SECONDS SERVE_PID CONTAINER...";
    let result = match args.first().map(String::as_str) {
        Some("own") if args.len() == 5 => match args[4].parse() {
            Ok(rounds) if rounds > 0 => own(&args[1], &args[2], &args[3], rounds),
            _ => Err(bad("ROUNDS: a positive number")),
        },
        Some("load") if args.len() >= 5 => match (args[2].parse::<f64>(), args[3].parse::<u32>()) {
            (Ok(s), Ok(pid)) if s > 0.0 => load(&args[1], s, pid, &args[4..]),
            _ => Err(bad("SECONDS: a positive number; SERVE_PID: a PID")),
        },
        _ => {
            eprintln!("{usage}");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("serve-client: {e}");
            ExitCode::FAILURE
        }
    }
}
