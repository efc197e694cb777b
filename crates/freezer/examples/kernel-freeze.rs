//! `kernel-freeze`: how long the kernel itself takes to freeze a cgroup.
//!
//! The floor that `stasis pause` is measured against. It deliberately does not
//! use the `freezer` library: it speaks to the kernel files directly, with
//! the fewest system calls the kernel's protocol allows, so the figure is the
//! kernel's cost plus a handful of syscalls and nothing else.
//!
//! It creates its own cgroup (`stasis-bench-<random>` unless `--name` is
//! given) in the v1 freezer or the cgroup2 tree, starts exactly N `sleep`
//! processes in it, then repeats R times (after a few untimed warm-ups):
//!
//! - v1: `pwrite` `FROZEN` to an open `freezer.state`, then re-read it (the
//!   read is what lets the kernel record `FROZEN`), yielding the CPU between
//!   reads, until it says `FROZEN`. Thaw: write `THAWED` (immediate).
//! - v2: with `cgroup.events` open and read once, `pwrite` `1` to
//!   `cgroup.freeze`, then re-read `cgroup.events`, waiting in `poll(POLLPRI)`
//!   between reads, until it says `frozen 1`. Thaw: write `0`, wait for
//!   `frozen 0`.
//!
//! Each freeze is timed from just before the write to the confirming read
//! (`Instant`), and each thaw likewise. Between transitions it waits
//! `--gap-ms` (default 50) untimed: the kernel sends at most one
//! `cgroup.events` notification per `DIV_ROUND_UP(HZ, 100)` jiffies (up to
//! ~16 ms at HZ=250) and defers the rest to a timer, so a v2 freeze confirmed
//! by poll right after a thaw measures that rate limit, not the freeze.
//! `--gap-ms 0` shows it.
//!
//! It prints one line of `key=value` pairs, times in microseconds:
//!
//! ```text
//! kernel-freeze hierarchy=v1 procs=1000 runs=50 gap_ms=50 freeze_median_us=312.4
//!     freeze_min_us=... freeze_max_us=... thaw_median_us=... thaw_min_us=... thaw_max_us=...
//! ```
//! (on one line). The sleeping processes are `/bin/sleep`; the program's own
//! process is not in the cgroup.
//!
//! Usage (as root):
//!
//! ```text
//! cargo run --release -p freezer --example kernel-freeze -- --hierarchy v1 --procs 1000 --runs 50
//!     [--warmup 5] [--gap-ms 50] [--name stasis-bench-xyz] [--root /sys/fs/cgroup/freezer]
//! ```
//!
//! Everything it creates is removed by a `Drop` guard, on success, error or
//! panic: thaw, kill every process in the cgroup (`cgroup.kill` on v2, a
//! SIGKILL per PID from `cgroup.procs` on v1), wait (bounded) until it is
//! empty, reap them (it is their subreaper), rmdir. A signal that kills this
//! program skips that; a caller that passes `--name` can then remove the
//! cgroup by name (bench/freeze.sh does).

use std::collections::hash_map::RandomState;
use std::fs::{File, OpenOptions};
use std::hash::{BuildHasher, Hasher};
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use rustix::event::{PollFd, PollFlags, Timespec};
use rustix::process::{kill_process, Pid, Signal, WaitOptions};

/// How long one freeze, thaw, or emptying of the cgroup may take before the
/// program gives up: far above any real figure, low enough to never hang.
const STEP_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Hierarchy {
    V1,
    V2,
}

impl Hierarchy {
    fn name(self) -> &'static str {
        match self {
            Hierarchy::V1 => "v1",
            Hierarchy::V2 => "v2",
        }
    }

    fn default_root(self) -> &'static str {
        match self {
            Hierarchy::V1 => "/sys/fs/cgroup/freezer",
            Hierarchy::V2 => "/sys/fs/cgroup/unified",
        }
    }
}

#[derive(Debug)]
struct Options {
    hierarchy: Hierarchy,
    procs: u32,
    runs: u32,
    warmup: u32,
    gap: Duration,
    name: String,
    root: PathBuf,
}

const USAGE: &str = "usage: kernel-freeze --hierarchy v1|v2 [--procs N] [--runs R] [--warmup W] \
                     [--gap-ms MS] [--name stasis-bench-NAME] [--root CGROUP-MOUNT]";

fn parse_args() -> Result<Options, String> {
    let mut hierarchy = None;
    let mut procs = 1;
    let mut runs = 50;
    let mut warmup = 5;
    let mut gap_ms = 50;
    let mut name = None;
    let mut root = None;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        if flag == "-h" || flag == "--help" {
            return Err(USAGE.to_owned());
        }
        let value = args
            .next()
            .ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))?;
        let number = |v: &str| {
            v.parse::<u32>()
                .map_err(|_| format!("{flag}: {v:?} is not a number"))
        };
        match flag.as_str() {
            "--hierarchy" => {
                hierarchy = Some(match value.as_str() {
                    "v1" => Hierarchy::V1,
                    "v2" => Hierarchy::V2,
                    other => return Err(format!("--hierarchy: {other:?} is not v1 or v2")),
                })
            }
            "--procs" => procs = number(&value)?,
            "--runs" => runs = number(&value)?,
            "--warmup" => warmup = number(&value)?,
            "--gap-ms" => gap_ms = number(&value)?,
            "--name" => name = Some(value),
            "--root" => root = Some(PathBuf::from(value)),
            other => return Err(format!("unknown flag {other}\n{USAGE}")),
        }
    }
    let hierarchy = hierarchy.ok_or_else(|| format!("--hierarchy is required\n{USAGE}"))?;
    if procs == 0 || runs == 0 {
        return Err("--procs and --runs must be at least 1".to_owned());
    }
    let name = name.unwrap_or_else(|| format!("stasis-bench-{:08x}", random_u32()));
    if name.is_empty() || name.contains('/') || name.starts_with('.') {
        return Err(format!("--name {name:?} is not a single directory name"));
    }
    Ok(Options {
        hierarchy,
        procs,
        runs,
        warmup,
        gap: Duration::from_millis(gap_ms.into()),
        name,
        root: root.unwrap_or_else(|| PathBuf::from(hierarchy.default_root())),
    })
}

/// A random number from std's per-process random hash keys; enough for a
/// name that does not collide with a concurrent run.
fn random_u32() -> u32 {
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u32(std::process::id());
    hasher.finish() as u32
}

/// The benchmark's cgroup and the processes in it; removes both when dropped.
#[derive(Debug)]
struct BenchCgroup {
    dir: PathBuf,
    hierarchy: Hierarchy,
    /// The shell that started the sleeps and then became the last of them.
    leader: Option<Child>,
    removed: bool,
}

impl BenchCgroup {
    fn create(root: &Path, name: &str, hierarchy: Hierarchy) -> io::Result<Self> {
        let dir = root.join(name);
        std::fs::create_dir(&dir)
            .map_err(|e| io::Error::new(e.kind(), format!("mkdir {}: {e}", dir.display())))?;
        Ok(BenchCgroup {
            dir,
            hierarchy,
            leader: None,
            removed: false,
        })
    }

    /// Starts exactly `n` sleeping processes in the cgroup: a shell moves
    /// itself in (so everything it forks afterwards is born inside), starts
    /// n-1 sleeps and execs into the last one.
    fn populate(&mut self, n: u32) -> io::Result<()> {
        let script = format!(
            "echo $$ > '{procs}' || exit 1; i=1; while [ $i -lt {n} ]; do sleep 1000 & i=$((i+1)); done; exec sleep 1000",
            procs = self.dir.join("cgroup.procs").display(),
        );
        // The sleeps outlive the shell's exec; as their subreaper this
        // program reaps them itself at cleanup instead of leaving zombies
        // for whatever init the host has.
        let me = Pid::from_raw(std::process::id() as i32).expect("a PID is positive");
        rustix::process::set_child_subreaper(Some(me))?;
        let child = Command::new("/bin/sh")
            .arg("-c")
            .arg(script)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()?;
        self.leader = Some(child);
        // Forking and exec'ing a thousand sleeps takes a while on 2 cores.
        let deadline = Instant::now() + STEP_TIMEOUT + Duration::from_millis(20) * n;
        loop {
            let count = self.pids()?.len();
            if count == n as usize {
                return Ok(());
            }
            if let Some(leader) = self.leader.as_mut() {
                if let Some(status) = leader.try_wait()? {
                    return Err(io::Error::other(format!(
                        "the shell starting the sleeps exited early ({status})"
                    )));
                }
            }
            if Instant::now() > deadline {
                return Err(io::Error::other(format!(
                    "only {count} of {n} processes in {} after {:?}",
                    self.dir.display(),
                    STEP_TIMEOUT
                )));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    fn pids(&self) -> io::Result<Vec<i32>> {
        let text = std::fs::read_to_string(self.dir.join("cgroup.procs"))?;
        Ok(text.lines().filter_map(|l| l.trim().parse().ok()).collect())
    }

    fn file(&self, name: &str, write: bool) -> io::Result<File> {
        let path = self.dir.join(name);
        OpenOptions::new()
            .read(true)
            .write(write)
            .open(&path)
            .map_err(|e| io::Error::new(e.kind(), format!("open {}: {e}", path.display())))
    }

    /// Thaw, kill, wait until empty, rmdir; each step bounded and attempted
    /// even when an earlier one failed.
    fn remove(&mut self) -> io::Result<()> {
        if self.removed {
            return Ok(());
        }
        self.removed = true;
        let (freeze_file, thawed) = match self.hierarchy {
            Hierarchy::V1 => ("freezer.state", "THAWED"),
            Hierarchy::V2 => ("cgroup.freeze", "0"),
        };
        // A frozen task does not act on SIGKILL until thawed (v1).
        let _ = std::fs::write(self.dir.join(freeze_file), thawed);
        let killed_by_kernel = self.hierarchy == Hierarchy::V2
            && std::fs::write(self.dir.join("cgroup.kill"), "1").is_ok();
        let deadline = Instant::now() + STEP_TIMEOUT;
        loop {
            let pids = self.pids().unwrap_or_default();
            if pids.is_empty() {
                break;
            }
            if !killed_by_kernel {
                for pid in pids.iter().filter_map(|&p| Pid::from_raw(p)) {
                    let _ = kill_process(pid, Signal::KILL);
                }
            }
            if Instant::now() > deadline {
                break;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        if let Some(mut leader) = self.leader.take() {
            let _ = leader.kill();
            let _ = leader.wait();
        }
        // The other sleeps were re-parented to us when the leader died.
        while Instant::now() < deadline {
            match rustix::process::wait(WaitOptions::NOHANG) {
                Ok(Some(_)) => {}
                Ok(None) => std::thread::sleep(Duration::from_millis(2)),
                Err(_) => break, // ECHILD: none left
            }
        }
        // The cgroup counts as busy until the last exiting task is released.
        loop {
            match std::fs::remove_dir(&self.dir) {
                Ok(()) => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
                Err(e) if Instant::now() > deadline => {
                    return Err(io::Error::new(
                        e.kind(),
                        format!("rmdir {}: {e}", self.dir.display()),
                    ))
                }
                Err(_) => std::thread::sleep(Duration::from_millis(5)),
            }
        }
    }
}

impl Drop for BenchCgroup {
    fn drop(&mut self) {
        if let Err(e) = self.remove() {
            eprintln!("kernel-freeze: cleanup: {e}");
        }
    }
}

/// Reads an interface file from offset 0 into `buf`.
fn pread_str<'b>(file: &File, buf: &'b mut [u8]) -> io::Result<&'b str> {
    let n = rustix::io::pread(file, &mut *buf, 0)?;
    std::str::from_utf8(&buf[..n]).map_err(|_| io::Error::other("not UTF-8"))
}

fn timed_out(start: Instant, what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::TimedOut,
        format!("{what} not confirmed after {:?}", start.elapsed()),
    )
}

/// v1: one freeze (write, then read until `FROZEN`) and one thaw.
fn cycle_v1(state: &File, gap: Duration) -> io::Result<(Duration, Duration)> {
    let mut buf = [0u8; 32];
    let start = Instant::now();
    rustix::io::pwrite(state, b"FROZEN", 0)?;
    loop {
        if pread_str(state, &mut buf)?.trim() == "FROZEN" {
            break;
        }
        if start.elapsed() > STEP_TIMEOUT {
            return Err(timed_out(start, "FROZEN"));
        }
        // v1 has no notification; leave the CPU to the tasks being frozen.
        std::thread::yield_now();
    }
    let frozen = start.elapsed();
    std::thread::sleep(gap);

    let start = Instant::now();
    rustix::io::pwrite(state, b"THAWED", 0)?;
    let thawed = start.elapsed();
    Ok((frozen, thawed))
}

/// v2: write `cgroup.freeze`, then wait for `cgroup.events` to agree.
fn set_v2(freeze: &File, events: &File, on: bool) -> io::Result<Duration> {
    let mut buf = [0u8; 256];
    let want = if on { "frozen 1" } else { "frozen 0" };
    // Read first, so that poll reports only changes made after the write.
    pread_str(events, &mut buf)?;
    let start = Instant::now();
    rustix::io::pwrite(freeze, if on { b"1" } else { b"0" }, 0)?;
    loop {
        if pread_str(events, &mut buf)?.lines().any(|l| l == want) {
            return Ok(start.elapsed());
        }
        let left = STEP_TIMEOUT.saturating_sub(start.elapsed());
        if left.is_zero() {
            return Err(timed_out(start, want));
        }
        let timeout = Timespec {
            tv_sec: left.as_secs() as i64,
            tv_nsec: left.subsec_nanos().into(),
        };
        let mut fds = [PollFd::new(events, PollFlags::PRI)];
        match rustix::event::poll(&mut fds, Some(&timeout)) {
            Ok(_) | Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
}

#[derive(Debug)]
struct Summary {
    median: f64,
    min: f64,
    max: f64,
}

fn summarize(mut samples: Vec<Duration>) -> Summary {
    samples.sort();
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    let n = samples.len();
    let median = if n % 2 == 1 {
        us(samples[n / 2])
    } else {
        (us(samples[n / 2 - 1]) + us(samples[n / 2])) / 2.0
    };
    Summary {
        median,
        min: samples.first().map_or(0.0, |&d| us(d)),
        max: samples.last().map_or(0.0, |&d| us(d)),
    }
}

fn run(opts: &Options) -> io::Result<()> {
    let mut cgroup = BenchCgroup::create(&opts.root, &opts.name, opts.hierarchy)?;
    cgroup.populate(opts.procs)?;

    let mut freezes = Vec::with_capacity(opts.runs as usize);
    let mut thaws = Vec::with_capacity(opts.runs as usize);
    match opts.hierarchy {
        Hierarchy::V1 => {
            let state = cgroup.file("freezer.state", true)?;
            for i in 0..opts.warmup + opts.runs {
                let (f, t) = cycle_v1(&state, opts.gap)?;
                std::thread::sleep(opts.gap);
                if i >= opts.warmup {
                    freezes.push(f);
                    thaws.push(t);
                }
            }
        }
        Hierarchy::V2 => {
            let freeze = cgroup.file("cgroup.freeze", true)?;
            let events = cgroup.file("cgroup.events", false)?;
            for i in 0..opts.warmup + opts.runs {
                let f = set_v2(&freeze, &events, true)?;
                std::thread::sleep(opts.gap);
                let t = set_v2(&freeze, &events, false)?;
                std::thread::sleep(opts.gap);
                if i >= opts.warmup {
                    freezes.push(f);
                    thaws.push(t);
                }
            }
        }
    }
    // Every process must still be there: a freeze of an emptied cgroup would
    // measure nothing.
    let left = cgroup.pids()?.len();
    if left != opts.procs as usize {
        return Err(io::Error::other(format!(
            "{left} of {} processes left at the end",
            opts.procs
        )));
    }

    let f = summarize(freezes);
    let t = summarize(thaws);
    println!(
        "kernel-freeze hierarchy={} procs={} runs={} gap_ms={} \
         freeze_median_us={:.1} freeze_min_us={:.1} freeze_max_us={:.1} \
         thaw_median_us={:.1} thaw_min_us={:.1} thaw_max_us={:.1}",
        opts.hierarchy.name(),
        opts.procs,
        opts.runs,
        opts.gap.as_millis(),
        f.median,
        f.min,
        f.max,
        t.median,
        t.min,
        t.max,
    );
    cgroup.remove()
}

fn main() -> ExitCode {
    let opts = match parse_args() {
        Ok(o) => o,
        Err(msg) => {
            eprintln!("kernel-freeze: {msg}");
            return ExitCode::from(2);
        }
    };
    match run(&opts) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("kernel-freeze: {e}");
            ExitCode::FAILURE
        }
    }
}
