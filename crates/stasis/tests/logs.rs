//! `logs` through the `stasis` binary (root only, real kernel): stdout and
//! stderr kept apart (by `logs` and by an attached `run`), `--tail`,
//! `--since` and `-t`.

mod common;

use std::time::Duration;

use common::*;

#[test]
fn logs_keep_the_streams_apart_with_tail_since_and_timestamps() {
    if !root_or_skip("logs_keep_the_streams_apart_with_tail_since_and_timestamps") {
        return;
    }
    let s = Stasis::new();
    let run = s
        .run(&[
            "run",
            "--name",
            "two",
            "--",
            "sh",
            "-c",
            "echo out1; echo err1 >&2; echo out2; sleep 1.5; echo out3; echo err2 >&2",
        ])
        .ok();
    assert_eq!(run.stdout, "out1\nout2\nout3\n", "attached run: stdout");
    assert_eq!(run.stderr, "err1\nerr2\n", "attached run: stderr");
    let logs = s.run(&["logs", "two"]).ok();
    assert_eq!(logs.stdout, "out1\nout2\nout3\n");
    assert_eq!(logs.stderr, "err1\nerr2\n");

    // The last two lines of both streams together.
    let tail = s.run(&["logs", "--tail", "2", "two"]).ok();
    assert_eq!(tail.stdout, "out3\n");
    assert_eq!(tail.stderr, "err2\n");
    assert_eq!(
        s.run(&["logs", "--tail", "all", "two"])
            .ok()
            .stdout
            .lines()
            .count(),
        3
    );
    s.run(&["logs", "--tail", "some", "two"]).fails_with_usage();

    // Each line has the time it was written; --since picks by it.
    let stamped = s.run(&["logs", "-t", "two"]).ok().stdout;
    let times: Vec<&str> = stamped
        .lines()
        .map(|l| l.split_once(' ').expect("time and text").0)
        .collect();
    assert_eq!(times.len(), 3);
    for t in &times {
        assert_eq!(t.len(), 30, "RFC 3339 with nanoseconds: {t}");
        assert!(t.ends_with('Z'));
    }
    assert!(stamped.lines().nth(2).expect("third").ends_with(" out3"));
    let since = s.run(&["logs", "--since", times[2], "two"]).ok();
    assert_eq!(since.stdout, "out3\n", "only what came after the sleep");
    assert_eq!(since.stderr, "err2\n");

    // -f follows a running container until it exits.
    s.run(&[
        "run",
        "-d",
        "--name",
        "slow",
        "--",
        "sh",
        "-c",
        "echo a; sleep 0.5; echo b >&2; sleep 0.5; echo c",
    ])
    .ok();
    let followed = s.run(&["logs", "-f", "slow"]).ok();
    assert_eq!(followed.stdout, "a\nc\n");
    assert_eq!(followed.stderr, "b\n");
    wait_until(Duration::from_secs(10), "slow to exit", || {
        s.inspect("slow")["State"]["Status"] == "exited"
    });
}
