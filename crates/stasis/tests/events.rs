//! The event journal end to end through the `stasis` binary (root only,
//! real kernel): every verb's events in order with their attributes, a
//! follower that sees another CLI process's pause, and a container's exit
//! code in its die event.

mod common;

use std::io::{BufRead, BufReader};
use std::process::Child;
use std::sync::mpsc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::*;
use serde_json::Value;

/// Now, as a unix timestamp with nanoseconds (what docker's CLI sends).
fn now() -> String {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970");
    format!("{}.{:09}", d.as_secs(), d.subsec_nanos())
}

/// The events from `since` until now, as JSON, with `extra` flags.
fn events(s: &Stasis, since: &str, extra: &[&str]) -> Vec<Value> {
    let until = now();
    let mut args = vec![
        "events", "--since", since, "--until", &until, "--format", "json",
    ];
    args.extend_from_slice(extra);
    let run = s.run(&args).ok();
    run.stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l:?}")))
        .collect()
}

fn actions(events: &[Value], id: &str) -> Vec<String> {
    events
        .iter()
        .filter(|e| e["Actor"]["ID"] == id)
        .map(|e| e["Action"].as_str().expect("Action").to_owned())
        .collect()
}

fn attr<'a>(e: &'a Value, key: &str) -> &'a str {
    e["Actor"]["Attributes"][key].as_str().unwrap_or("")
}

/// A spawned `stasis events` that is killed (by its PID) if a test fails
/// before it ends it, and whose stdout lines arrive on a channel.
struct Follower {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Follower {
    fn new(s: &Stasis, args: &[&str]) -> Follower {
        let mut child = s.spawn(args);
        let out = child.stdout.take().expect("piped");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Follower { child, lines }
    }

    /// Ends it with `signal`; its exit status.
    fn end(mut self, signal: rustix::process::Signal) -> std::process::ExitStatus {
        let pid = rustix::process::Pid::from_raw(self.child.id() as i32).expect("pid > 0");
        rustix::process::kill_process(pid, signal).expect("signal the follower");
        wait_bounded(&mut self.child, Duration::from_secs(10))
    }
}

impl Drop for Follower {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn each_verb_records_its_events_in_order_with_attributes() {
    if !root_or_skip("each_verb_records_its_events_in_order_with_attributes") {
        return;
    }
    let s = Stasis::new();
    let t0 = now();
    let id = s
        .run(&[
            "run",
            "-d",
            "--name",
            "web",
            "--label",
            "tier=front",
            "--",
            "sh",
            "-c",
            // sh is PID 1 of the container's own PID namespace, which the
            // kernel shields from signals it has no handler for (as in
            // docker): it handles SIGTERM by ending as a death by it would.
            "trap 'echo usr1' USR1; trap 'exit 143' TERM; echo ready; while true; do sleep 0.1; done",
        ])
        .ok()
        .stdout
        .trim()
        .to_owned();
    s.wait_log("web", "ready");
    s.run(&["pause", "web"]).ok();
    s.run(&["unpause", "web"]).ok();
    s.run(&["kill", "-s", "USR1", "web"]).ok();
    s.wait_log("web", "usr1");
    // sh ends on SIGTERM at once: kill 15, die 143, stop (no kill 9).
    s.run(&["stop", "-t", "5", "web"]).ok();
    s.run(&["rm", "web"]).ok();

    let all = events(&s, &t0, &[]);
    assert_eq!(
        actions(&all, &id),
        ["create", "start", "pause", "unpause", "kill", "kill", "die", "stop", "destroy"],
        "{all:#?}"
    );
    let mine: Vec<&Value> = all
        .iter()
        .filter(|e| e["Actor"]["ID"] == id.as_str())
        .collect();
    for e in &mine {
        assert_eq!(e["Type"], "container");
        assert_eq!(e["status"], e["Action"], "docker's legacy status");
        assert_eq!(e["id"], id.as_str());
        assert_eq!(e["scope"], "local");
        assert_eq!(attr(e, "name"), "web");
        assert_eq!(attr(e, "tier"), "front", "each label is an attribute");
        let nanos = e["timeNano"].as_u64().expect("timeNano");
        assert_eq!(e["time"].as_u64(), Some(nanos / 1_000_000_000));
    }
    assert_eq!(attr(mine[4], "signal"), "10", "kill -s USR1");
    assert_eq!(attr(mine[5], "signal"), "15", "stop's SIGTERM");
    assert_eq!(attr(mine[6], "exitCode"), "143");
    let times: Vec<u64> = mine
        .iter()
        .map(|e| e["timeNano"].as_u64().expect("t"))
        .collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");

    // Pods, with type=pod selecting them alone.
    s.run(&["pod", "create", "--name", "pp", "--label", "team=a"])
        .ok();
    s.run(&["pod", "pause", "pp"]).ok();
    s.run(&["pod", "unpause", "pp"]).ok();
    s.run(&["pod", "stop", "pp"]).ok();
    s.run(&["pod", "rm", "pp"]).ok();
    let pods = events(&s, &t0, &["--filter", "type=pod"]);
    let seen: Vec<(&str, &str, &str, &str)> = pods
        .iter()
        .map(|e| {
            (
                e["Type"].as_str().expect("Type"),
                e["Action"].as_str().expect("Action"),
                attr(e, "name"),
                attr(e, "team"),
            )
        })
        .collect();
    assert_eq!(
        seen,
        ["create", "pause", "unpause", "stop", "remove"].map(|a| ("pod", a, "pp", "a")),
        "the implicit pod of web had none of its own"
    );

    // Filters on the binary: a key's values are alternatives; keys all match.
    let some = events(
        &s,
        &t0,
        &[
            "-f",
            "event=pause",
            "-f",
            "event=unpause",
            "-f",
            "label=tier=front",
        ],
    );
    assert_eq!(actions(&some, &id), ["pause", "unpause"]);
    let by_name = events(
        &s,
        &t0,
        &["--filter", "container=web", "--filter", "event=die"],
    );
    assert_eq!(by_name.len(), 1, "{by_name:#?}");

    // docker's table line.
    let until = now();
    let table = s
        .run(&[
            "events",
            "--since",
            &t0,
            "--until",
            &until,
            "-f",
            "event=pause",
        ])
        .ok()
        .stdout;
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 2, "{table}");
    let want = format!(" container pause {id} (name=web, tier=front)");
    assert!(lines[0].ends_with(&want), "{table}");
    let stamp = &lines[0][..lines[0].len() - want.len()];
    assert_eq!(
        stamp.len(),
        "2026-12-01T23:40:00.123456789Z".len(),
        "{stamp}"
    );
    assert!(
        stamp.ends_with('Z') && stamp.as_bytes()[10] == b'T',
        "{stamp}"
    );
    assert!(lines[1].contains(" pod pause ") && lines[1].ends_with("(name=pp, team=a)"));
}

#[test]
fn a_follower_sees_another_processs_pause_and_ends_on_a_signal() {
    if !root_or_skip("a_follower_sees_another_processs_pause_and_ends_on_a_signal") {
        return;
    }
    let s = Stasis::new();
    let id = s
        .run(&["run", "-d", "--name", "f", "--", "sleep", "1000"])
        .ok()
        .stdout
        .trim()
        .to_owned();
    // Without --since it shows only what happens after it opened the
    // journal, a moment this test cannot see: pause and unpause until it
    // reports a pause (each round bounded).
    let follower = Follower::new(&s, &["events", "--format", "json", "-f", "container=f"]);
    let mut seen = None;
    for _ in 0..20 {
        s.run(&["pause", "f"]).ok();
        // It may have started between a pause and its unpause: an unpause
        // may come first.
        let end = std::time::Instant::now() + Duration::from_secs(3);
        while let Ok(line) = follower
            .lines
            .recv_timeout(end.saturating_duration_since(std::time::Instant::now()))
        {
            let e: Value = serde_json::from_str(&line).expect("json");
            if e["Action"] == "pause" {
                seen = Some(e);
                break;
            }
        }
        s.run(&["unpause", "f"]).ok();
        if seen.is_some() {
            break;
        }
    }
    let e = seen.expect("the follower reported a pause");
    assert_eq!(e["Actor"]["ID"], id.as_str());
    // Everything after it, in order: the unpause follows.
    let next: Value = serde_json::from_str(
        &follower
            .lines
            .recv_timeout(Duration::from_secs(30))
            .expect("the unpause"),
    )
    .expect("json");
    assert_eq!(next["Action"], "unpause");
    let status = follower.end(rustix::process::Signal::TERM);
    assert!(status.success(), "SIGTERM ends it with 0: {status}");

    // --since replays, then follows; SIGINT ends it with 0 as well.
    let follower = Follower::new(
        &s,
        &[
            "events",
            "--since",
            "1h",
            "--format",
            "json",
            "-f",
            "event=create",
        ],
    );
    let replayed: Value = serde_json::from_str(
        &follower
            .lines
            .recv_timeout(Duration::from_secs(30))
            .expect("the replayed create"),
    )
    .expect("json");
    assert_eq!(replayed["Actor"]["ID"], id.as_str());
    s.run(&["run", "-d", "--name", "g", "--", "sleep", "1000"])
        .ok();
    let live: Value = serde_json::from_str(
        &follower
            .lines
            .recv_timeout(Duration::from_secs(30))
            .expect("the live create"),
    )
    .expect("json");
    assert_eq!(live["Actor"]["Attributes"]["name"], "g");
    let status = follower.end(rustix::process::Signal::INT);
    assert!(status.success(), "SIGINT ends it with 0: {status}");
}

#[test]
fn a_containers_die_event_has_its_exit_code() {
    if !root_or_skip("a_containers_die_event_has_its_exit_code") {
        return;
    }
    let s = Stasis::new();
    let t0 = now();
    let id = s
        .run(&["run", "-d", "--name", "d", "--", "sh", "-c", "exit 7"])
        .ok()
        .stdout
        .trim()
        .to_owned();
    assert_eq!(s.run(&["wait", "d"]).ok().stdout.trim(), "7");
    let died = events(&s, &t0, &["-f", "event=die"]);
    assert_eq!(died.len(), 1, "{died:#?}");
    assert_eq!(died[0]["Actor"]["ID"], id.as_str());
    assert_eq!(attr(&died[0], "exitCode"), "7");

    // A command that cannot start never starts, but it ends: die, 127.
    let run = s.run(&["run", "-d", "--name", "nf", "--", "/nonexistent/command"]);
    assert_eq!(run.code(), 127, "{run:?}");
    let nf = events(&s, &t0, &["-f", "container=nf"]);
    let acts: Vec<&str> = nf
        .iter()
        .map(|e| e["Action"].as_str().expect("A"))
        .collect();
    assert_eq!(acts, ["create", "die"], "{nf:#?}");
    assert_eq!(attr(&nf[1], "exitCode"), "127");
}
