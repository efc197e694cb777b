//! Health checks and health-gated resume, through the `stasis` binary (root
//! only, real kernel): `run --health-cmd` kept as docker keeps it and never
//! run while paused, and `unpause --wait-healthy` returning only once a
//! server that needs a second after the thaw is ready, by its own check,
//! `--health-cmd` or `--wait-port`, and failing with the target running when
//! it never is.

mod common;

use std::time::Duration;

use common::*;

/// A `recovering.py` server in container `name` on port 8080 of its pod,
/// with files in `dir`, and the shell check that passes only while it is
/// ready and has run within the last 500 ms.
struct Recovering {
    check: String,
    command: Vec<String>,
}

impl Recovering {
    fn new(dir: &Scratch) -> Self {
        let ready = dir.0.join("ready").display().to_string();
        let beat = dir.0.join("beat").display().to_string();
        Recovering {
            check: format!("test -f {ready} && test $(( $(date +%s%3N) - $(cat {beat}) )) -lt 500"),
            command: vec![
                "/usr/bin/python3".into(),
                workload("recovering.py"),
                "8080".into(),
                ready,
                beat,
            ],
        }
    }
}

/// The container's health as `inspect` shows it (docker's `State.Health`).
fn health(s: &Stasis, name: &str) -> serde_json::Value {
    s.inspect(name)["State"]["Health"].clone()
}

fn ps_status(s: &Stasis, name: &str) -> String {
    let out = s
        .run(&["ps", "-a", "-f", &format!("name={name}")])
        .ok()
        .stdout;
    out.lines().nth(1).unwrap_or_default().to_owned()
}

#[test]
fn a_health_check_is_kept_as_docker_keeps_it_and_skips_paused_time() {
    if !root_or_skip("a_health_check_is_kept_as_docker_keeps_it_and_skips_paused_time") {
        return;
    }
    let s = Stasis::new();
    let dir = Scratch::new();
    let flag = dir.0.join("ok");
    let check = format!("echo probing; test -f {}", flag.display());
    s.run(&[
        "run",
        "-d",
        "--name",
        "hc",
        "--health-cmd",
        &check,
        "--health-interval",
        "100ms",
        "--health-retries",
        "2",
        "--",
        "sleep",
        "1000",
    ])
    .ok();
    let config = &s.inspect("hc")["healthcheck"];
    assert_eq!(config["Test"], serde_json::json!(["CMD-SHELL", check]));
    assert_eq!(config["Interval"], 100_000_000u64);
    assert_eq!(config["Timeout"], 30_000_000_000u64, "docker's default");
    assert_eq!(config["Retries"], 2);

    // Two failures in a row: unhealthy, with the check's output kept.
    wait_until(Duration::from_secs(20), "hc to be unhealthy", || {
        health(&s, "hc")["Status"] == "unhealthy"
    });
    let h = health(&s, "hc");
    assert!(h["FailingStreak"].as_u64() >= Some(2), "{h}");
    let last = h["Log"]
        .as_array()
        .expect("log")
        .last()
        .expect("a result")
        .clone();
    assert_eq!(last["ExitCode"], 1, "{h}");
    assert_eq!(last["Output"], "probing\n", "{h}");
    assert!(
        last["Start"].as_str().is_some_and(|t| t.ends_with('Z')),
        "{h}"
    );
    assert!(
        ps_status(&s, "hc").contains("(unhealthy)"),
        "{}",
        ps_status(&s, "hc")
    );

    // A pass heals it at once.
    std::fs::write(&flag, "").expect("flag");
    wait_until(Duration::from_secs(20), "hc to be healthy", || {
        health(&s, "hc")["Status"] == "healthy"
    });
    assert_eq!(health(&s, "hc")["FailingStreak"], 0);
    wait_until(Duration::from_secs(20), "five results kept", || {
        health(&s, "hc")["Log"].as_array().map(Vec::len) == Some(5)
    });
    assert!(
        ps_status(&s, "hc").contains("(healthy)"),
        "{}",
        ps_status(&s, "hc")
    );

    // No check runs while paused: ten intervals go by without a result.
    s.run(&["pause", "hc"]).ok();
    let frozen_log = health(&s, "hc")["Log"].clone();
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(
        health(&s, "hc")["Log"],
        frozen_log,
        "a check ran while paused"
    );
    let status = ps_status(&s, "hc");
    assert!(
        status.contains("(Paused)") && !status.contains("healthy"),
        "{status}"
    );
    s.run(&["unpause", "hc"]).ok();
    wait_until(Duration::from_secs(20), "checks to resume", || {
        health(&s, "hc")["Log"] != frozen_log
    });

    // The checker ends with the container.
    let id = s.inspect("hc")["id"].as_str().expect("id").to_owned();
    let checkers = || {
        std::fs::read_dir("/proc")
            .expect("/proc")
            .filter_map(|e| std::fs::read(e.ok()?.path().join("cmdline")).ok())
            .filter(|c| {
                let c = String::from_utf8_lossy(c);
                c.contains("internal-health") && c.contains(&id)
            })
            .count()
    };
    assert_eq!(checkers(), 1, "one checker while it runs");
    s.run(&["stop", "-t", "1", "hc"]).ok();
    wait_until(Duration::from_secs(10), "the checker to end", || {
        checkers() == 0
    });
    assert_eq!(s.inspect("hc")["State"]["Status"], "exited");
}

#[test]
fn wait_healthy_returns_only_once_a_recovering_server_is_ready() {
    if !root_or_skip("wait_healthy_returns_only_once_a_recovering_server_is_ready") {
        return;
    }
    let s = Stasis::new();
    let dir = Scratch::new();
    let server = Recovering::new(&dir);
    let mut args = vec![
        "run",
        "-d",
        "--name",
        "web",
        "--health-cmd",
        &server.check,
        "--health-interval",
        "200ms",
        "--",
    ];
    args.extend(server.command.iter().map(String::as_str));
    s.run(&args).ok();
    wait_until(Duration::from_secs(30), "web to be healthy", || {
        health(&s, "web")["Status"] == "healthy"
    });
    let passes = |s: &Stasis| {
        s.run(&["exec", "web", "--", "sh", "-c", &server.check])
            .code()
            == 0
    };

    // Without --wait-healthy, unpause returns while the server recovers.
    s.run(&["pause", "web"]).ok();
    std::thread::sleep(Duration::from_secs(1));
    s.run(&["unpause", "web"]).ok();
    assert!(!passes(&s), "the server was ready at once after the thaw");
    s.wait_log("web", "recovering");
    wait_until(Duration::from_secs(30), "web to recover", || passes(&s));

    // With it, unpause returns once its own check passes, and ps says so.
    s.run(&["pause", "web"]).ok();
    std::thread::sleep(Duration::from_secs(1));
    let run = s.run(&["unpause", "--wait-healthy", "web"]).ok();
    assert_eq!(run.stdout.trim(), "web");
    assert!(passes(&s), "unpause returned before the server was ready");
    assert_eq!(health(&s, "web")["Status"], "healthy");
    assert_eq!(
        health(&s, "web")["Log"]
            .as_array()
            .and_then(|l| l.last())
            .map(|l| l["ExitCode"].clone()),
        Some(0.into())
    );
    let log = s.run(&["logs", "web"]).ok().stdout;
    // Both freezes were noticed (a stall of a loaded machine can add one).
    assert!(log.matches("recovering").count() >= 2, "{log}");

    // --health-cmd gives the check instead (here: the same, from outside).
    s.run(&["pause", "web"]).ok();
    std::thread::sleep(Duration::from_secs(1));
    s.run(&[
        "unpause",
        "--wait-healthy",
        "--health-cmd",
        &server.check,
        "--health-timeout",
        "20s",
        "web",
    ])
    .ok();
    assert!(passes(&s), "unpause returned before the server was ready");
}

#[test]
fn wait_port_waits_for_the_listener_in_the_targets_namespace() {
    if !root_or_skip("wait_port_waits_for_the_listener_in_the_targets_namespace") {
        return;
    }
    // A container in its pod's network namespace, paused while it warms up
    // (no listener yet): the port opens only after a second of running.
    let s = Stasis::new();
    let dir = Scratch::new();
    let server = Recovering::new(&dir);
    let mut args = vec!["run", "-d", "--name", "svc", "--"];
    args.extend(server.command.iter().map(String::as_str));
    s.run(&args).ok();
    s.run(&["pause", "svc"]).ok();
    std::thread::sleep(Duration::from_millis(300));
    s.run(&["unpause", "--wait-healthy", "--wait-port", "8080", "svc"])
        .ok();
    let connect = "import socket; socket.create_connection(('127.0.0.1', 8080), 1)";
    assert_eq!(
        s.run(&["exec", "svc", "--", "/usr/bin/python3", "-c", connect])
            .code(),
        0,
        "the port did not accept after unpause returned"
    );
    assert!(s.run(&["logs", "svc"]).ok().stdout.contains("ready"));

    // A cgroup target on the host's loopback: the port of its processes.
    let port = free_port();
    let mut cg = TestCgroup::new(V::V2);
    cg.spawn(
        "/usr/bin/python3",
        &[
            &workload("recovering.py"),
            &port.to_string(),
            &dir.0.join("ready2").display().to_string(),
            &dir.0.join("beat2").display().to_string(),
        ],
    );
    cg.wait_for_procs(1);
    let path = cg.path();
    stasis(&["pause", "--cgroup", &path, "--hierarchy", "v2"]).ok();
    std::thread::sleep(Duration::from_millis(300));
    stasis(&[
        "unpause",
        "--cgroup",
        &path,
        "--hierarchy",
        "v2",
        "--wait-healthy",
        "--wait-port",
        &port.to_string(),
    ])
    .ok();
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok(),
        "the port did not accept after unpause returned"
    );

    // A port that never opens: exit 1 after the timeout, the target thawed.
    stasis(&["pause", "--cgroup", &path, "--hierarchy", "v2"]).ok();
    let closed = free_port().to_string();
    let run = stasis(&[
        "unpause",
        "--cgroup",
        &path,
        "--hierarchy",
        "v2",
        "--wait-healthy",
        "--wait-port",
        &closed,
        "--health-timeout",
        "1s",
    ]);
    let run = run.fails_with(1, "did not become healthy within 1s");
    assert!(
        run.stderr.contains(&format!("port {closed} refused")),
        "{run:?}"
    );
    assert!(kernel_thawed(V::V2, &cg.dir), "the target was left frozen");
}

#[test]
fn a_check_that_never_passes_times_out_with_the_target_running() {
    if !root_or_skip("a_check_that_never_passes_times_out_with_the_target_running") {
        return;
    }
    let s = Stasis::new();
    s.run(&[
        "run",
        "-d",
        "--name",
        "never",
        "--health-cmd",
        "echo not yet; exit 1",
        "--",
        "sleep",
        "1000",
    ])
    .ok();
    s.run(&["pause", "never"]).ok();
    let run = s.run(&[
        "unpause",
        "--wait-healthy",
        "--health-timeout",
        "1s",
        "never",
    ]);
    assert_eq!(run.code(), 1, "{run:?}");
    assert!(
        run.stderr
            .contains("never did not become healthy within 1s"),
        "{run:?}"
    );
    assert!(
        run.stderr.contains("the last: the check in never exited 1"),
        "{run:?}"
    );
    assert!(
        run.stderr.starts_with("not yet\n"),
        "the last output: {run:?}"
    );
    assert_eq!(s.inspect("never")["State"]["Status"], "running");
    // Failures while waiting are not the container's health.
    assert_eq!(health(&s, "never")["Status"], "starting");

    // A check that hangs is cut off by the wait's time, not its own 30s.
    s.run(&["pause", "never"]).ok();
    let run = s.run(&[
        "unpause",
        "--wait-healthy",
        "--health-cmd",
        "sleep 100",
        "--health-timeout",
        "1s",
        "never",
    ]);
    assert_eq!(run.code(), 1, "{run:?}");
    assert!(run.stderr.contains("did not finish in time"), "{run:?}");
    assert_eq!(s.inspect("never")["State"]["Status"], "running");
}

#[test]
fn wait_healthy_that_cannot_be_met_is_refused_before_the_thaw() {
    if !root_or_skip("wait_healthy_that_cannot_be_met_is_refused_before_the_thaw") {
        return;
    }
    let s = Stasis::new();
    s.run(&["run", "-d", "--name", "plain", "--", "sleep", "1000"])
        .ok();
    s.run(&["pause", "plain"]).ok();
    s.run(&["unpause", "--wait-healthy", "plain"]).fails_with(
        2,
        "container plain has no health check: give --health-cmd or --wait-port",
    );
    assert_eq!(s.inspect("plain")["State"]["Status"], "paused");
    s.run(&["unpause", "plain"]).ok();
    s.run(&["pod", "pause", "plain"]).ok();
    s.run(&[
        "pod",
        "unpause",
        "--wait-healthy",
        "--health-cmd",
        "true",
        "plain",
    ])
    .fails_with(2, "is a pod");
    s.run(&["pod", "unpause", "plain"]).ok();

    for bad in [
        &["unpause", "--wait-port", "80", "plain"][..],
        &["unpause", "--health-cmd", "true", "plain"],
        &["unpause", "--wait-healthy", "--wait-port", "0", "plain"],
        &[
            "unpause",
            "--wait-healthy",
            "--wait-port",
            "80",
            "--health-cmd",
            "true",
            "plain",
        ],
        &[
            "unpause",
            "--wait-healthy",
            "--health-timeout",
            "0",
            "plain",
        ],
        &["run", "--health-interval", "1s", "--", "true"],
        &[
            "run",
            "--health-cmd",
            "true",
            "--health-interval",
            "0.0001s",
            "--",
            "true",
        ],
    ] {
        s.run(bad).fails_with_usage();
    }

    let mut cg = TestCgroup::new(V::V1);
    cg.spawn("sleep", &["1000"]);
    cg.wait_for_procs(1);
    let path = cg.path();
    stasis(&["pause", "--cgroup", &path, "--hierarchy", "v1"]).ok();
    stasis(&[
        "unpause",
        "--cgroup",
        &path,
        "--hierarchy",
        "v1",
        "--wait-healthy",
    ])
    .fails_with(2, "needs --wait-port");
    assert!(kernel_frozen(V::V1, &cg.dir), "refused, so still frozen");
    stasis(&["unpause", "--cgroup", &path, "--hierarchy", "v1"]).ok();
}
