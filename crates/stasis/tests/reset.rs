//! `pause --reset-connections` against the real kernel (root only): a
//! target's established connections are reset once it is frozen, new ones to
//! its listening ports are refused until unpause, its listeners survive, and
//! in a shared namespace nobody else's connections are touched.

mod common;

use std::io::{self, BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::*;

/// Connects (bounded retries while the server starts).
fn connect(port: u16) -> TcpStream {
    let mut last = None;
    for _ in 0..300 {
        match TcpStream::connect(("127.0.0.1", port)) {
            Ok(s) => {
                s.set_read_timeout(Some(Duration::from_secs(10)))
                    .expect("timeout");
                return s;
            }
            Err(e) => last = Some(e),
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("cannot connect to 127.0.0.1:{port}: {last:?}");
}

/// One line there and back.
fn echo(stream: &mut TcpStream, line: &str) -> io::Result<String> {
    stream.write_all(format!("{line}\n").as_bytes())?;
    let mut reply = String::new();
    BufReader::new(stream.try_clone()?).read_line(&mut reply)?;
    if reply.is_empty() {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    Ok(reply.trim_end().to_owned())
}

/// What the next read of a connection whose peer was reset gives.
fn read_error(stream: &mut TcpStream) -> io::ErrorKind {
    let mut buf = [0u8; 16];
    match io::Read::read(stream, &mut buf) {
        Ok(0) => io::ErrorKind::UnexpectedEof,
        Ok(n) => panic!("read {n} bytes from a connection that should be reset"),
        Err(e) => e.kind(),
    }
}

fn fences(s: &Stasis) -> Vec<String> {
    std::fs::read_dir(s.root.0.join("fences"))
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn a_cgroup_in_a_shared_namespace_loses_only_its_own_connections() {
    if !root_or_skip("a_cgroup_in_a_shared_namespace_loses_only_its_own_connections") {
        return;
    }
    let s = Stasis::new();
    let tables_before = stasis_tables();
    for v in [V::V1, V::V2] {
        let (port, other_port) = (free_port(), free_port());
        let mut target = TestCgroup::new(v);
        target.spawn(
            "python3",
            &[&workload("tcp_echo.py"), "127.0.0.1", &port.to_string()],
        );
        let mut bystander = TestCgroup::new(v);
        bystander.spawn(
            "python3",
            &[
                &workload("tcp_echo.py"),
                "127.0.0.1",
                &other_port.to_string(),
            ],
        );
        let mut ours = connect(port);
        let mut theirs = connect(other_port);
        assert_eq!(echo(&mut ours, "a").expect("echo"), "a");
        assert_eq!(echo(&mut theirs, "b").expect("echo"), "b");

        let run = s
            .run(&[
                "pause",
                "--cgroup",
                &target.dir_str(),
                "--reset-connections",
                "--format",
                "json",
            ])
            .ok();
        let report: serde_json::Value = serde_json::from_str(run.stdout.trim()).expect("json");
        assert_eq!(report["paused"], true, "{report}");
        assert!(
            report["connections"]["reset"].as_u64() >= Some(1),
            "{report}"
        );
        assert_eq!(
            report["connections"]["fenced_ports"],
            serde_json::json!([port]),
            "{report}"
        );
        assert!(target.kernel_frozen(&target.dir), "still frozen");
        // The frozen server's end was destroyed: the client is reset.
        assert_eq!(read_error(&mut ours), io::ErrorKind::ConnectionReset);
        // A new connection is refused at once instead of hanging.
        let refused = TcpStream::connect(("127.0.0.1", port)).expect_err("fenced");
        assert_eq!(refused.kind(), io::ErrorKind::ConnectionRefused);
        // Everyone else's connections in the namespace are untouched.
        assert_eq!(echo(&mut theirs, "c").expect("echo"), "c");
        assert_eq!(fences(&s).len(), 1, "one fence recorded");

        s.run(&["unpause", "--cgroup", &target.dir_str()]).ok();
        // The same listening socket accepts again; the fence is gone.
        let mut again = connect(port);
        assert_eq!(echo(&mut again, "d").expect("echo"), "d");
        assert_eq!(stasis_tables(), tables_before, "{v:?}: the rule is gone");
        assert!(fences(&s).is_empty(), "the fence record is gone");
    }
}

#[test]
fn without_the_flag_connections_are_kept() {
    if !root_or_skip("without_the_flag_connections_are_kept") {
        return;
    }
    let s = Stasis::new();
    let port = free_port();
    let mut target = TestCgroup::new(V::V1);
    target.spawn(
        "python3",
        &[&workload("tcp_echo.py"), "127.0.0.1", &port.to_string()],
    );
    let mut conn = connect(port);
    assert_eq!(echo(&mut conn, "a").expect("echo"), "a");
    let run = s.run(&["pause", "--cgroup", &target.dir_str()]).ok();
    assert!(run.stderr.is_empty(), "{run:?}");
    s.run(&["unpause", "--cgroup", &target.dir_str()]).ok();
    assert_eq!(echo(&mut conn, "b").expect("the connection survived"), "b");
    assert!(fences(&s).is_empty());
}

#[test]
fn a_pod_loses_every_connection_of_its_namespace_and_keeps_its_listener() {
    if !root_or_skip("a_pod_loses_every_connection_of_its_namespace_and_keeps_its_listener") {
        return;
    }
    let s = Stasis::new();
    s.run(&["pod", "create", "--name", "rp"]).ok();
    s.run(&[
        "run",
        "-d",
        "--pod",
        "rp",
        "--name",
        "srv",
        "--",
        "python3",
        &workload("tcp_echo.py"),
        "::",
        "7000",
    ])
    .ok();
    let pod_id = s.pod("rp")["id"].as_str().expect("id").to_owned();
    let netns = connections::NetNs::new(s.root.0.join("pods").join(&pod_id).join("ns/net"));
    // Clients made inside the pod's namespace (a socket stays in the
    // namespace it was made in), over IPv4 and IPv6.
    let dial = |addr: &'static str| {
        netns
            .run(move || {
                for _ in 0..300 {
                    if let Ok(s) = TcpStream::connect(addr) {
                        return Ok(s);
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
                TcpStream::connect(addr)
            })
            .expect("enter the pod's namespace")
    };
    let mut v4 = dial("127.0.0.1:7000").expect("connect");
    let mut v6 = dial("[::1]:7000").expect("connect");
    v4.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    v6.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    assert_eq!(echo(&mut v4, "a").expect("echo"), "a");
    assert_eq!(echo(&mut v6, "b").expect("echo"), "b");

    let run = s.run(&["pod", "pause", "--reset-connections", "rp"]).ok();
    assert_eq!(run.stdout.trim(), "rp");
    assert!(
        run.stderr.contains("connections of rp") && run.stderr.contains("7000"),
        "{run:?}"
    );
    // The pod owns its namespace: every connection in it is reset, even
    // those of processes outside the pod (these test clients).
    // A destroyed socket's owner reads ECONNABORTED; one whose peer went
    // first reads the reset.
    for conn in [&mut v4, &mut v6] {
        let kind = read_error(conn);
        assert!(
            matches!(
                kind,
                io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset
            ),
            "{kind:?}"
        );
    }
    let refused = dial("127.0.0.1:7000").expect_err("fenced");
    assert_eq!(refused.kind(), io::ErrorKind::ConnectionRefused);

    s.run(&["pod", "unpause", "rp"]).ok();
    let mut again = dial("[::1]:7000").expect("the listener accepts again");
    again
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    assert_eq!(echo(&mut again, "c").expect("echo"), "c");
    assert!(fences(&s).is_empty());
    s.run(&["pod", "rm", "-f", "rp"]).ok();
}

#[test]
fn an_unpause_lifts_a_fence_left_on_a_target_thawed_behind_its_back() {
    if !root_or_skip("an_unpause_lifts_a_fence_left_on_a_target_thawed_behind_its_back") {
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
    drop(connect(port));
    s.run(&[
        "pause",
        "--cgroup",
        &target.dir_str(),
        "--reset-connections",
    ])
    .ok();
    // Thawed behind stasis's back: the fence is still there.
    std::fs::write(target.dir.join("freezer.state"), "THAWED").expect("thaw");
    assert_eq!(
        TcpStream::connect(("127.0.0.1", port))
            .expect_err("fenced")
            .kind(),
        io::ErrorKind::ConnectionRefused
    );
    s.run(&["unpause", "--cgroup", &target.dir_str()])
        .fails_with(4, "not paused");
    drop(connect(port));
    assert_eq!(stasis_tables(), tables_before);
    assert!(fences(&s).is_empty());
}

/// The summary line of `grpc_client.py`, as numbers.
fn grpc_round(
    s: &Stasis,
    target: &TestCgroup,
    ports: (u16, u16),
    pause_flags: &[&str],
) -> std::collections::HashMap<String, u64> {
    let mut client = std::process::Command::new("/usr/bin/python3")
        .args([
            &workload("grpc_client.py"),
            &ports.0.to_string(),
            &ports.1.to_string(),
            "4",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("start the gRPC client");
    let mut out = BufReader::new(client.stdout.take().expect("stdout"));
    let mut line = String::new();
    out.read_line(&mut line).expect("read");
    assert_eq!(line.trim(), "ready", "the client reached both servers");
    let mut args = vec!["pause", "--cgroup", target.dir.to_str().expect("utf-8")];
    args.extend_from_slice(pause_flags);
    s.run(&args).ok();
    client
        .stdin
        .take()
        .expect("stdin")
        .write_all(b"go\n")
        .expect("go");
    line.clear();
    out.read_line(&mut line).expect("read the summary");
    let _ = client.wait();
    s.run(&["unpause", "--cgroup", &target.dir_str()]).ok();
    line.split_whitespace()
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.parse().expect("a count")))
        .collect()
}

#[test]
fn a_grpc_client_balancing_over_two_servers_never_waits_out_a_deadline_with_a_reset() {
    if !root_or_skip(
        "a_grpc_client_balancing_over_two_servers_never_waits_out_a_deadline_with_a_reset",
    ) {
        return;
    }
    let s = Stasis::new();
    let (p1, p2) = (free_port(), free_port());
    let mut paused = TestCgroup::new(V::V1);
    paused.spawn(
        "/usr/bin/python3",
        &[&workload("grpc_echo.py"), &p1.to_string()],
    );
    let mut other = TestCgroup::new(V::V1);
    other.spawn(
        "/usr/bin/python3",
        &[&workload("grpc_echo.py"), &p2.to_string()],
    );
    drop(connect(p1));
    drop(connect(p2));

    // Without the flag the frozen server's connection stays up, round robin
    // keeps picking it, and those calls wait out their 2 s deadline.
    let kept = grpc_round(&s, &paused, (p1, p2), &[]);
    assert!(kept["deadline_exceeded"] > 0, "{kept:?}");

    // With it the client sees the reset, new connections are refused, and
    // every call goes to the other server in time.
    let reset = grpc_round(&s, &paused, (p1, p2), &["--reset-connections"]);
    assert_eq!(reset["deadline_exceeded"], 0, "{reset:?}");
    assert!(reset["ok"] > 0, "{reset:?}");
}

#[test]
fn every_verb_that_thaws_or_ends_a_target_lifts_its_fence() {
    if !root_or_skip("every_verb_that_thaws_or_ends_a_target_lifts_its_fence") {
        return;
    }
    let s = Stasis::new();
    let tables_before = stasis_tables();
    // A pause in the other hierarchy is lifted by a plain unpause.
    let port = free_port();
    let mut target = TestCgroup::new(V::V2);
    let pid = target.spawn(
        "python3",
        &[&workload("tcp_echo.py"), "127.0.0.1", &port.to_string()],
    );
    drop(connect(port));
    let pid = pid.to_string();
    s.run(&[
        "pause",
        "--pid",
        &pid,
        "--hierarchy",
        "v2",
        "--reset-connections",
    ])
    .ok();
    assert_ne!(stasis_tables(), tables_before, "fenced");
    // auto: the v1 freezer is the chosen hierarchy; the v2 freeze is thawed.
    s.run(&["unpause", "--pid", &pid]).ok();
    assert_eq!(stasis_tables(), tables_before, "lifted");
    assert!(fences(&s).is_empty());

    // stop, kill and rm of a fenced stasis container lift it too.
    s.run(&["pod", "create", "--name", "fv"]).ok();
    let pod_id = s.pod("fv")["id"].as_str().expect("id").to_owned();
    let pin = s.root.0.join("pods").join(&pod_id).join("ns/net");
    let pod_tables = || {
        let run = run_bounded(
            std::process::Command::new("nsenter")
                .arg(format!("--net={}", pin.display()))
                .args(["nft", "list", "tables"]),
        );
        run.stdout.lines().filter(|l| l.contains("stasis-")).count()
    };
    for verb in [&["stop", "fs"][..], &["kill", "fs"], &["rm", "-f", "fs"]] {
        s.run(&[
            "run",
            "-d",
            "--pod",
            "fv",
            "--name",
            "fs",
            "--",
            "python3",
            &workload("tcp_echo.py"),
            "127.0.0.1",
            "7100",
        ])
        .ok();
        let netns = connections::NetNs::new(&pin);
        netns
            .run(|| {
                for _ in 0..300 {
                    if TcpStream::connect("127.0.0.1:7100").is_ok() {
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
                panic!("the server never listened");
            })
            .expect("enter the pod's namespace");
        s.run(&["pause", "--reset-connections", "fs"]).ok();
        assert_eq!(pod_tables(), 1, "{verb:?}: fenced");
        s.run(verb).ok();
        assert_eq!(pod_tables(), 0, "{verb:?}: lifted");
        assert!(fences(&s).is_empty(), "{verb:?}");
        if verb[0] != "rm" {
            s.run(&["rm", "-f", "fs"]).ok();
        }
    }
    s.run(&["pod", "rm", "-f", "fv"]).ok();
}
