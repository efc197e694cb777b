//! `pause --lease` and `--until-exit` against the real kernel (root only): a
//! pause always ends, whatever happens to the CLI that asked for it, to the
//! process it was tied to, or to its watchdog.

mod common;

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// The lease records in a state root.
fn records(s: &Stasis) -> Vec<PathBuf> {
    std::fs::read_dir(s.root.0.join("leases"))
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default()
}

/// The one lease record in a state root.
fn record(s: &Stasis) -> serde_json::Value {
    let all = records(s);
    assert_eq!(all.len(), 1, "one lease record: {all:?}");
    serde_json::from_str(&read(&all[0])).expect("a lease record is JSON")
}

/// The watchdogs running for a state root: processes of the stasis binary
/// in `internal-watchdog` mode whose `--root` is this one.
fn watchdogs(s: &Stasis) -> Vec<u32> {
    let root = s.root.0.to_string_lossy().into_owned();
    std::fs::read_dir("/proc")
        .expect("/proc")
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
            args.contains(&b"internal-watchdog".as_slice())
                && args.contains(&root.as_bytes())
                && proc_state(*pid).is_some_and(|s| s != 'Z')
        })
        .collect()
}

/// Waits (bounded) until no watchdog of this state root runs any more.
fn wait_no_watchdogs(s: &Stasis) {
    wait_until(Duration::from_secs(10), "the watchdogs to exit", || {
        watchdogs(s).is_empty()
    });
}

/// A random number below `n`.
fn random_below(n: u64) -> u64 {
    let mut h = RandomState::new().build_hasher();
    h.write_u128(Instant::now().elapsed().as_nanos());
    h.finish() % n
}

/// SIGKILLs the watchdog the record names, after checking that it is one:
/// the stasis binary, with the start time the record holds.
fn kill_recorded_watchdog(s: &Stasis) -> u32 {
    let rec = record(s);
    let pid = rec["watchdog"]["pid"].as_u64().expect("a watchdog PID") as u32;
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).expect("the watchdog runs");
    assert_eq!(
        exe,
        Path::new(STASIS).canonicalize().expect("stasis binary"),
        "PID {pid} is our watchdog"
    );
    let stat = freezer::proc::stat(Path::new("/proc"), pid).expect("stat");
    assert_eq!(
        Some(stat.start_time),
        rec["watchdog"]["start_time"].as_u64()
    );
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(pid as i32).expect("pid > 0"),
        rustix::process::Signal::KILL,
    )
    .expect("kill the watchdog");
    wait_until(Duration::from_secs(5), "the watchdog to die", || {
        proc_state(pid).is_none_or(|s| s == 'Z')
    });
    pid
}

#[test]
fn a_killed_cli_never_leaves_a_target_frozen() {
    if !root_or_skip("a_killed_cli_never_leaves_a_target_frozen") {
        return;
    }
    let s = Stasis::new();
    // Six targets at once, 17 rounds each: 102 killed CLIs.
    const ROUNDS: usize = 17;
    let frozen_rounds = std::thread::scope(|scope| {
        let workers: Vec<_> = [V::V1, V::V2, V::V1, V::V2, V::V1, V::V2]
            .into_iter()
            .map(|v| {
                let s = &s;
                scope.spawn(move || {
                    let mut target = TestCgroup::new(v);
                    target.spawn("sleep", &["1000"]);
                    target.wait_for_procs(1);
                    let dir = target.dir_str();
                    let pause = ["pause", "--lease", "1s", "--cgroup", dir.as_str()];
                    // How long a whole pause takes here: the kills fall
                    // anywhere from before it starts to after it is done.
                    let start = Instant::now();
                    s.run(&pause).ok();
                    let whole = start.elapsed();
                    wait_until(Duration::from_secs(2), "the first lease to end", || {
                        kernel_thawed(v, &target.dir)
                    });
                    let mut frozen = 0;
                    for round in 0..ROUNDS {
                        let mut cli = s.spawn(&pause);
                        let delay = if round == 0 {
                            // Once for certain after the freeze, the
                            // record and the watchdog are all in place.
                            wait_until(Duration::from_secs(5), "the freeze", || {
                                target.kernel_frozen(&target.dir)
                            });
                            Duration::ZERO
                        } else {
                            let nanos = whole.as_nanos() as u64;
                            let d = Duration::from_nanos(random_below(nanos.max(1)));
                            std::thread::sleep(d);
                            d
                        };
                        // Our own child, not yet reaped: the PID is its.
                        let _ = cli.kill();
                        let _ = cli.wait();
                        if target.kernel_frozen(&target.dir) {
                            frozen += 1;
                        }
                        wait_until(
                            Duration::from_secs(2),
                            &format!("{v:?} round {round} (killed after {delay:?}) to be thawed"),
                            || kernel_thawed(v, &target.dir),
                        );
                    }
                    frozen
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().expect("a worker"))
            .sum::<usize>()
    });
    eprintln!(
        "{frozen_rounds} of {} rounds were left frozen by the killed CLI",
        ROUNDS * 6
    );
    // Every watchdog ends with its lease (or sees a newer one and leaves).
    wait_no_watchdogs(&s);
    // A CLI killed after writing the record but before it started the
    // watchdog froze nothing; the next command clears such a record.
    s.run(&["ps"]).ok();
    assert_eq!(records(&s), Vec::<PathBuf>::new(), "no lease record left");
}

#[test]
fn until_exit_thaws_when_the_controller_dies() {
    if !root_or_skip("until_exit_thaws_when_the_controller_dies") {
        return;
    }
    let s = Stasis::new();
    for v in [V::V1, V::V2] {
        let mut target = TestCgroup::new(v);
        target.spawn("sleep", &["1000"]);
        target.wait_for_procs(1);
        let mut controller = Command::new("sleep")
            .arg("1000")
            .stdin(Stdio::null())
            .spawn()
            .expect("spawn the controller");
        let pid = controller.id().to_string();
        s.run(&[
            "pause",
            "--lease",
            "60s",
            "--until-exit",
            &pid,
            "--cgroup",
            &target.dir_str(),
        ])
        .ok();
        assert!(target.kernel_frozen(&target.dir));
        assert_eq!(
            record(&s)["until_exit"]["pid"].as_u64(),
            Some(u64::from(controller.id()))
        );
        controller.kill().expect("kill the controller");
        controller.wait().expect("reap the controller");
        // Well before the 60 s lease: the watchdog's pidfd woke it.
        wait_until(
            Duration::from_secs(2),
            "the thaw after the controller died",
            || kernel_thawed(v, &target.dir),
        );
        wait_until(Duration::from_secs(2), "the record to go", || {
            records(&s).is_empty()
        });
    }
    // A controller that does not exist is refused: nothing is paused.
    let mut target = TestCgroup::new(V::V1);
    target.spawn("sleep", &["1000"]);
    let mut gone = Command::new("true").spawn().expect("spawn");
    let gone_pid = gone.id().to_string();
    gone.wait().expect("reap");
    s.run(&[
        "pause",
        "--until-exit",
        &gone_pid,
        "--cgroup",
        &target.dir_str(),
    ])
    .fails_with(3, "no such process");
    assert!(kernel_thawed(V::V1, &target.dir));
    assert!(records(&s).is_empty());
    wait_no_watchdogs(&s);
}

#[test]
fn the_next_command_enforces_the_lease_of_a_killed_watchdog() {
    if !root_or_skip("the_next_command_enforces_the_lease_of_a_killed_watchdog") {
        return;
    }
    let s = Stasis::new();
    for (v, enforcer) in [(V::V1, "ps"), (V::V2, "state")] {
        let mut target = TestCgroup::new(v);
        target.spawn("sleep", &["1000"]);
        target.wait_for_procs(1);
        s.run(&["pause", "--lease", "1s", "--cgroup", &target.dir_str()])
            .ok();
        kill_recorded_watchdog(&s);
        let expires = record(&s)["expires"]["secs"].as_u64().expect("an expiry") + 1;
        wait_until(Duration::from_secs(4), "the lease to run out", || {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .expect("clock")
                .as_secs()
                > expires
        });
        assert!(target.kernel_frozen(&target.dir), "nobody enforced it yet");
        let dir = target.dir_str();
        let args: Vec<&str> = match enforcer {
            "state" => vec!["state", "--cgroup", &dir],
            _ => vec![enforcer],
        };
        let run = s.run(&args).ok();
        assert!(
            kernel_thawed(v, &target.dir),
            "{enforcer} thawed it: {run:?}"
        );
        assert!(records(&s).is_empty(), "{enforcer} removed the record");
        if enforcer == "state" {
            assert!(run.stdout.contains("state:     thawed"), "{run:?}");
            assert!(!run.stdout.contains("lease:"), "{run:?}");
        }
    }
}

#[test]
fn renew_moves_the_expiry() {
    if !root_or_skip("renew_moves_the_expiry") {
        return;
    }
    let s = Stasis::new();
    let mut target = TestCgroup::new(V::V2);
    target.spawn("sleep", &["1000"]);
    target.wait_for_procs(1);
    let dir = target.dir_str();
    // Nothing to renew yet: not paused with a lease.
    s.run(&["pause", "--renew", "--lease", "5s", "--cgroup", &dir])
        .fails_with(4, "has no lease to renew");
    s.run(&["pause", "--lease", "1s", "--cgroup", &dir]).ok();
    let first = record(&s)["expires"]["secs"].as_u64().expect("expiry");
    s.run(&["pause", "--lease", "1s", "--cgroup", &dir])
        .fails_with(4, "already paused with a lease");
    s.run(&["pause", "--renew", "--lease", "3s", "--cgroup", &dir])
        .ok();
    let second = record(&s)["expires"]["secs"].as_u64().expect("expiry");
    assert!(second > first, "the expiry moved: {first} -> {second}");
    // Past the first expiry it stays frozen (the watchdog woke, read the
    // renewed record, and slept again)...
    std::thread::sleep(Duration::from_millis(1500));
    assert!(
        target.kernel_frozen(&target.dir),
        "frozen past the first expiry"
    );
    assert_eq!(watchdogs(&s).len(), 1, "one watchdog still");
    // ... and thaws after the second.
    wait_until(
        Duration::from_secs(4),
        "the thaw after the renewed lease",
        || kernel_thawed(V::V2, &target.dir),
    );
    wait_until(Duration::from_secs(2), "the record to go", || {
        records(&s).is_empty()
    });
    // A thawed target has nothing to renew.
    s.run(&["pause", "--renew", "--lease", "5s", "--cgroup", &dir])
        .fails_with(4, "has no lease to renew");
    s.run(&["pause", "--renew", "--cgroup", &dir])
        .fails_with_usage();
    s.run(&["pause", "--lease", "1y", "--cgroup", &dir])
        .fails_with_usage();
    wait_no_watchdogs(&s);
}

#[test]
fn unpause_ends_the_lease() {
    if !root_or_skip("unpause_ends_the_lease") {
        return;
    }
    let s = Stasis::new();
    let mut target = TestCgroup::new(V::V1);
    target.spawn("sleep", &["1000"]);
    target.wait_for_procs(1);
    let dir = target.dir_str();
    s.run(&["pause", "--lease", "1s", "--cgroup", &dir]).ok();
    assert_eq!(watchdogs(&s).len(), 1);
    s.run(&["unpause", "--cgroup", &dir]).ok();
    assert!(
        records(&s).is_empty(),
        "the record is gone with the unpause"
    );
    // The watchdog saw its record go and left at once (not at expiry).
    wait_no_watchdogs(&s);
    // A new pause without a lease is not thawed by anything left over.
    s.run(&["pause", "--cgroup", &dir]).ok();
    std::thread::sleep(Duration::from_millis(1500));
    assert!(target.kernel_frozen(&target.dir), "no late thaw");
    s.run(&["unpause", "--cgroup", &dir]).ok();
}

#[test]
fn the_end_of_a_lease_removes_the_fence_too() {
    if !root_or_skip("the_end_of_a_lease_removes_the_fence_too") {
        return;
    }
    let s = Stasis::new();
    let tables_before = stasis_tables();
    let port = free_port();
    let mut target = TestCgroup::new(V::V1);
    target.spawn(
        "python3",
        &[&workload("tcp_echo.py"), "127.0.0.1", &port.to_string()],
    );
    let mut conn = None;
    wait_until(Duration::from_secs(10), "the echo server", || {
        conn = TcpStream::connect(("127.0.0.1", port)).ok();
        conn.is_some()
    });
    let mut conn = conn.expect("connected");
    conn.write_all(b"a\n").expect("write");
    let mut line = String::new();
    BufReader::new(&conn).read_line(&mut line).expect("echo");
    s.run(&[
        "pause",
        "--lease",
        "1s",
        "--reset-connections",
        "--cgroup",
        &target.dir_str(),
    ])
    .ok();
    assert_ne!(stasis_tables(), tables_before, "fenced while paused");
    wait_until(Duration::from_secs(2), "the thaw at expiry", || {
        kernel_thawed(V::V1, &target.dir)
    });
    wait_until(Duration::from_secs(2), "the fence and record to go", || {
        records(&s).is_empty() && stasis_tables() == tables_before
    });
    assert!(
        std::fs::read_dir(s.root.0.join("fences")).is_ok_and(|mut d| d.next().is_none()),
        "no fence record"
    );
    // The listener accepts again.
    TcpStream::connect(("127.0.0.1", port)).expect("accepts after the lease");
    wait_no_watchdogs(&s);
}

#[test]
fn a_container_shows_its_lease() {
    if !root_or_skip("a_container_shows_its_lease") {
        return;
    }
    let s = Stasis::new();
    s.run(&["run", "-d", "--name", "lw", "--", "sleep", "1000"])
        .ok();
    s.run(&["pause", "--lease", "60s", "lw"]).ok();
    let c = s.inspect("lw");
    assert_eq!(c["status"], "paused", "{c}");
    let expires = c["lease"]["expires"].as_str().expect("an expiry");
    assert!(
        expires.ends_with('Z') && expires.len() == 24,
        "RFC 3339: {expires}"
    );
    assert_eq!(c["lease"]["until_exit"], serde_json::Value::Null);
    let ps = s.run(&["ps", "--format", "json"]).ok();
    let list: serde_json::Value = serde_json::from_str(&ps.stdout).expect("ps json");
    assert_eq!(list[0]["lease"]["expires"], expires, "{list}");
    let table = s.run(&["ps"]).ok().stdout;
    assert!(table.contains("(Paused, lease "), "{table}");
    let state = s.run(&["state", "lw"]).ok().stdout;
    assert!(
        state.contains("lease:     ") && state.contains(expires),
        "{state}"
    );
    let state = state_json_in(&s, &["lw"]);
    assert_eq!(state["lease"]["expires"], expires, "{state}");
    s.run(&["pause", "--renew", "--lease", "1s", "lw"]).ok();
    // The renewed, short lease ends: the watchdog thaws it.
    wait_until(
        Duration::from_secs(3),
        "the container's lease to end",
        || records(&s).is_empty(),
    );
    let c = s.inspect("lw");
    assert_eq!(c["status"], "running", "{c}");
    assert_eq!(c["lease"], serde_json::Value::Null);

    // A pod, by `pod pause`: its node thaws when the lease runs out.
    s.run(&["pod", "create", "--name", "lp"]).ok();
    s.run(&["pod", "pause", "--lease", "1s", "lp"]).ok();
    assert_eq!(s.pod("lp")["status"], "paused");
    wait_until(Duration::from_secs(3), "the pod's lease to end", || {
        records(&s).is_empty()
    });
    assert_eq!(s.pod("lp")["status"], "running");
    wait_no_watchdogs(&s);
}

/// `stasis state --format json ARGS` in a state root.
fn state_json_in(s: &Stasis, args: &[&str]) -> serde_json::Value {
    let mut full = vec!["state", "--format", "json"];
    full.extend_from_slice(args);
    let run = s.run(&full).ok();
    serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("json {e}: {run:?}"))
}
