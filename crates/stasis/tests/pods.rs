//! Pods and containers end to end through the `stasis` binary (root only,
//! real kernel: namespaces, cgroups, the monitor).

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use common::*;

fn py(script: &str) -> String {
    workload(script)
}

#[test]
fn classic_pod_shares_network_ipc_and_hostname() {
    if !root_or_skip("classic_pod_shares_network_ipc_and_hostname") {
        return;
    }
    let s = Stasis::new();
    s.run(&[
        "pod",
        "create",
        "--name",
        "classic",
        "--hostname",
        "classic-host",
    ])
    .ok();
    s.run(&[
        "run",
        "-d",
        "--pod",
        "classic",
        "--name",
        "server",
        "--",
        "python3",
        &py("http_server.py"),
        "8080",
    ])
    .ok();
    s.wait_log("server", "listening");
    // Another member reaches it on the pod's own loopback.
    let client = "import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:8080/').read().decode())";
    let run = s
        .run(&[
            "run", "--pod", "classic", "--name", "client", "--", "python3", "-c", client,
        ])
        .ok();
    assert!(run.stdout.contains("count=1"), "{run:?}");
    // Joining through a container's name joins its pod (docker's --net=container:X).
    let run = s
        .run(&["run", "--pod", "server", "--", "python3", "-c", client])
        .ok();
    assert!(run.stdout.contains("count=2"), "{run:?}");
    // The host's loopback is another network: nothing listens there for the pod.
    let host = std::net::TcpStream::connect_timeout(
        &"127.0.0.1:8080".parse().expect("addr"),
        Duration::from_secs(2),
    );
    if let Ok(stream) = host {
        // Something of the host's own may use 8080; it must not be our server.
        drop(stream);
    }
    // Shared hostname.
    assert_eq!(
        s.run(&["exec", "server", "--", "pwd"]).ok().stdout.trim(),
        "/",
        "docker's default working directory"
    );
    assert_eq!(
        s.run(&["exec", "server", "--", "hostname"])
            .ok()
            .stdout
            .trim(),
        "classic-host"
    );
    assert_eq!(
        s.run(&["run", "--pod", "classic", "--", "hostname"])
            .ok()
            .stdout
            .trim(),
        "classic-host"
    );
    // SysV shared memory written by one member, read by another.
    s.run(&[
        "run",
        "--pod",
        "classic",
        "--",
        "python3",
        &py("sysv.py"),
        "write",
        "4242",
        "hello-from-a",
    ])
    .ok();
    let run = s
        .run(&[
            "run",
            "--pod",
            "classic",
            "--",
            "python3",
            &py("sysv.py"),
            "read",
            "4242",
        ])
        .ok();
    assert_eq!(run.stdout.trim(), "hello-from-a");
    // ...and not visible from the host's IPC namespace.
    let host = run_bounded(Command::new("python3").args([py("sysv.py").as_str(), "read", "4242"]));
    assert!(
        !host.status.success() || host.stdout.trim() != "hello-from-a",
        "{host:?}"
    );
    let ps = s
        .run(&["ps", "-a", "--filter", "pod=classic", "--format", "json"])
        .ok();
    let list: serde_json::Value = serde_json::from_str(&ps.stdout).expect("json");
    assert_eq!(list.as_array().expect("array").len(), 6, "{list}");
}

#[test]
fn pid_shared_pod_has_stasis_pause_as_pid_1_and_no_zombies() {
    if !root_or_skip("pid_shared_pod_has_stasis_pause_as_pid_1_and_no_zombies") {
        return;
    }
    let s = Stasis::new();
    s.run(&[
        "pod",
        "create",
        "--name",
        "pids",
        "--share",
        "net,ipc,uts,pid",
    ])
    .ok();
    s.run(&[
        "run", "-d", "--pod", "pids", "--name", "a", "--", "sleep", "1000",
    ])
    .ok();
    // b orphans three grandchildren, which the pod's PID 1 must adopt and reap.
    s.run(&[
        "run",
        "-d",
        "--pod",
        "pids",
        "--name",
        "b",
        "--",
        "sh",
        "-c",
        "(sleep 2 &); (sleep 2 &); (sleep 2 &); echo orphaned; exec sleep 1000",
    ])
    .ok();
    s.wait_log("b", "orphaned");
    let cmdline = s
        .run(&["exec", "a", "--", "cat", "/proc/1/cmdline"])
        .ok()
        .stdout;
    assert!(
        cmdline.starts_with(pause_binary().to_str().expect("utf8"))
            || cmdline.contains("stasis-pause"),
        "{cmdline:?}"
    );
    let procs = s
        .run(&[
            "exec",
            "a",
            "--",
            "sh",
            "-c",
            "for p in /proc/[0-9]*; do tr '\\0' ' ' < $p/cmdline; echo; done",
        ])
        .ok()
        .stdout;
    assert!(
        procs.matches("sleep 1000").count() >= 2,
        "each member sees the other's processes: {procs}"
    );
    let pause_pid = s.pod("pids")["pause"]["pid"].as_u64().expect("pause pid") as u32;
    wait_until(
        Duration::from_secs(10),
        "the orphans to be adopted by stasis-pause",
        || children_of(pause_pid).len() >= 3,
    );
    wait_until(
        Duration::from_secs(20),
        "the orphans to exit and be reaped",
        || children_of(pause_pid).is_empty(),
    );
}

#[test]
fn pausing_the_pod_freezes_every_member_and_a_waiting_request_completes() {
    if !root_or_skip("pausing_the_pod_freezes_every_member_and_a_waiting_request_completes") {
        return;
    }
    let s = Stasis::new();
    let scratch = Scratch::new();
    let counter = scratch.0.join("counter");
    s.run(&["pod", "create", "--name", "frz"]).ok();
    s.run(&[
        "run",
        "-d",
        "--pod",
        "frz",
        "--name",
        "server",
        "--",
        "python3",
        &py("http_server.py"),
        "8081",
    ])
    .ok();
    s.run(&[
        "run",
        "-d",
        "--pod",
        "frz",
        "--name",
        "busy",
        "--",
        "python3",
        &py("counter.py"),
        counter.to_str().expect("utf8"),
    ])
    .ok();
    s.wait_log("server", "listening");
    let pod_id = s.pod("frz")["id"].as_str().expect("id").to_owned();
    // A client outside the pod's cgroup, in its network namespace (through
    // the pin), so that it is not frozen with the pod.
    let pin = s.root.0.join("pods").join(&pod_id).join("ns/net");
    let mut client = ChildGuard(
        Command::new("nsenter")
            .arg(format!("--net={}", pin.display()))
            .args(["/usr/bin/python3", &py("http_client.py"), "8081"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("client"),
    );
    let (tx, rx) = mpsc::channel();
    let out = client.0.stdout.take().expect("piped");
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let first = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("first answer");
    let peer = first.split_whitespace().nth(1).expect("peer").to_owned();
    assert!(first.starts_with("count=1"), "{first}");
    wait_counter_moves(&counter);

    s.run(&["pod", "pause", "frz"]).ok();
    let node = Path::new(V1_MOUNT).join("stasis").join(&pod_id);
    assert!(kernel_frozen(V::V1, &node), "one write at the pod's node");
    for name in ["server", "busy"] {
        assert_eq!(s.inspect(name)["status"], "paused", "{name}");
    }
    assert_eq!(s.pod("frz")["status"], "paused");
    assert_counter_stopped(&counter);
    let mut stdin = client.0.stdin.take().expect("piped");
    stdin.write_all(b"go\n").expect("ask");
    assert_eq!(
        rx.recv_timeout(Duration::from_secs(30)).expect("sent"),
        "sent"
    );
    assert!(
        rx.recv_timeout(Duration::from_millis(300)).is_err(),
        "no answer while the pod is paused"
    );

    s.run(&["pod", "unpause", "frz"]).ok();
    let second = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("the answer after unpause");
    assert_eq!(
        second,
        format!("count=2 {peer}"),
        "same connection, server state intact"
    );
    wait_counter_moves(&counter);
    assert_eq!(s.inspect("server")["status"], "running");
}

/// A child process killed and reaped when the test ends, even on panic.
struct ChildGuard(std::process::Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn stopping_a_paused_pod_and_removing_it_leaves_nothing() {
    if !root_or_skip("stopping_a_paused_pod_and_removing_it_leaves_nothing") {
        return;
    }
    let s = Stasis::new();
    s.run(&[
        "pod",
        "create",
        "--name",
        "gone",
        "--share",
        "net,ipc,uts,cgroup",
    ])
    .ok();
    let pod_id = s.pod("gone")["id"].as_str().expect("id").to_owned();
    // x ends on SIGTERM. Each is PID 1 of its own PID namespace, which the
    // kernel shields from signals it has no handler for (as in docker), so
    // x handles it (a bare `sleep` would need the SIGKILL too).
    s.run(&[
        "run",
        "-d",
        "--pod",
        "gone",
        "--name",
        "x",
        "--",
        "sh",
        "-c",
        "trap 'exit 143' TERM; sleep 1000 & wait",
    ])
    .ok();
    // y ignores SIGTERM and leaves a stray child in its cgroup.
    s.run(&[
        "run",
        "-d",
        "--pod",
        "gone",
        "--name",
        "y",
        "--",
        "sh",
        "-c",
        "trap '' TERM; sleep 1000 & wait",
    ])
    .ok();
    s.run(&["pod", "pause", "gone"]).ok();
    s.run(&["pod", "stop", "-t", "1", "gone"]).ok();
    assert_eq!(s.inspect("x")["status"], "exited");
    assert_eq!(s.inspect("x")["exit_code"], 143, "SIGTERM");
    assert_eq!(
        s.inspect("y")["exit_code"],
        137,
        "SIGKILL after the grace period"
    );
    assert_eq!(s.pod("gone")["status"], "exited");
    s.run(&["pod", "rm", "gone"]).ok();
    for mount in [V1_MOUNT, V2_MOUNT] {
        let node = Path::new(mount).join("stasis").join(&pod_id);
        assert!(!node.exists(), "{} left behind", node.display());
    }
    let mountinfo = read(Path::new("/proc/self/mountinfo"));
    let root = s.root.0.display().to_string();
    assert!(!mountinfo.contains(&root), "namespace pins left mounted");
    assert!(
        !s.root.0.join("pods").join(&pod_id).exists(),
        "pod state left behind"
    );
    assert_eq!(
        s.run(&["ps", "-aq"]).ok().stdout,
        "",
        "containers left behind"
    );
    assert_eq!(s.run(&["pod", "ls", "-q"]).ok().stdout, "");
}

/// A busybox root filesystem with a marker file.
fn busybox_rootfs(dir: &Path) {
    std::fs::create_dir_all(dir.join("bin")).expect("mkdir");
    std::fs::copy("/bin/busybox", dir.join("bin/busybox")).expect("busybox-static is installed");
    for applet in ["sh", "ls", "cat", "hostname", "sleep"] {
        std::os::unix::fs::symlink("busybox", dir.join("bin").join(applet)).expect("symlink");
    }
    std::fs::write(dir.join("only-in-rootfs"), "yes\n").expect("marker");
}

#[test]
fn a_container_with_rootfs_sees_only_its_own_filesystem() {
    if !root_or_skip("a_container_with_rootfs_sees_only_its_own_filesystem") {
        return;
    }
    let s = Stasis::new();
    let scratch = Scratch::new();
    let rootfs = scratch.0.join("rootfs");
    busybox_rootfs(&rootfs);
    let rootfs_s = rootfs.to_str().expect("utf8");
    let run = s
        .run(&[
            "run", "--rootfs", rootfs_s, "--name", "rfs", "--", "/bin/ls", "/",
        ])
        .ok();
    let entries: Vec<&str> = run.stdout.split_whitespace().collect();
    assert!(entries.contains(&"only-in-rootfs"), "{entries:?}");
    for host_only in ["usr", "etc", "work", "root"] {
        assert!(
            !entries.contains(&host_only),
            "the host's /{host_only} is visible: {entries:?}"
        );
    }
    let run = s
        .run(&[
            "run",
            "--rootfs",
            rootfs_s,
            "--",
            "/bin/sh",
            "-c",
            "echo ok > /dev/null && ls /dev && cat /proc/self/stat",
        ])
        .ok();
    assert!(
        run.stdout.contains("null") && run.stdout.contains("urandom"),
        "{run:?}"
    );
    // exec joins the container's mount namespace.
    s.run(&[
        "run",
        "-d",
        "--rootfs",
        rootfs_s,
        "--name",
        "long",
        "--",
        "/bin/sleep",
        "1000",
    ])
    .ok();
    let run = s.run(&["exec", "long", "--", "/bin/ls", "/"]).ok();
    assert!(run.stdout.contains("only-in-rootfs"), "{run:?}");
    s.run(&["rm", "-f", "long", "rfs"]).ok();
}

#[test]
fn bad_input_gets_one_line_and_a_documented_code() {
    if !root_or_skip("bad_input_gets_one_line_and_a_documented_code") {
        return;
    }
    let s = Stasis::new();
    s.run(&["pod", "create", "--name", "dup"]).ok();
    s.run(&["pod", "create", "--name", "dup"])
        .fails_with(4, "already in use");
    s.run(&["pod", "create", "--name", "a/b"])
        .fails_with(2, "invalid name");
    s.run(&["pod", "create", "--name", ".."])
        .fails_with(2, "invalid name");
    s.run(&["pod", "create", "--share", "net,mnt"])
        .fails_with(2, "invalid namespace");
    s.run(&["run", "--name", "../x", "--", "true"])
        .fails_with(2, "invalid name");
    s.run(&["run", "--pod", "nosuch", "--", "true"])
        .fails_with(3, "no such pod: nosuch");
    for args in [
        &["pause", "nosuch"][..],
        &["logs", "nosuch"],
        &["inspect", "nosuch"],
        &["stop", "nosuch"],
        &["rm", "nosuch"],
    ] {
        s.run(args).fails_with(3, "no such");
    }
    s.run(&["pod", "rm", "nosuch"]).fails_with(3, "no such pod");

    s.run(&["run", "-d", "--pod", "dup", "--name", "ex", "--", "true"])
        .ok();
    assert_eq!(s.run(&["wait", "ex"]).ok().stdout.trim(), "0");
    s.run(&["pause", "ex"])
        .fails_with(4, "container ex is not running");
    s.run(&["kill", "ex"]).fails_with(4, "is not running");

    s.run(&[
        "run", "-d", "--pod", "dup", "--name", "pz", "--", "sleep", "1000",
    ])
    .ok();
    s.run(&["run", "-d", "--name", "pz", "--", "true"])
        .fails_with(4, "already in use");
    s.run(&["pause", "pz"]).ok();
    s.run(&["pause", "pz"]).fails_with(4, "already paused");
    s.run(&["exec", "pz", "--", "true"])
        .fails_with(4, "container pz is paused");
    s.run(&["pod", "pause", "dup"]).ok();
    s.run(&["run", "--pod", "dup", "--", "true"])
        .fails_with(4, "pod dup is paused");
    s.run(&["pod", "unpause", "dup"]).ok();
    s.run(&["unpause", "pz"]).ok();
    s.run(&["unpause", "pz"]).fails_with(4, "is not paused");
    s.run(&["rm", "pz"]).fails_with(4, "is running");
    s.run(&["kill", "-s", "BOGUS", "pz"]).fails_with_usage();

    let run = s.run(&["run", "--pod", "dup", "--", "/no/such/command"]);
    assert_eq!(run.code(), 127, "{run:?}");

    let run = s.run_as_nobody(&["pod", "create"]);
    run.fails_with(6, "permission denied");
}

#[test]
fn a_cli_killed_at_any_point_leaves_a_store_every_command_reads() {
    if !root_or_skip("a_cli_killed_at_any_point_leaves_a_store_every_command_reads") {
        return;
    }
    let s = Stasis::new();
    s.run(&["pod", "create", "--name", "base"]).ok();
    // Kill pod creations and container starts after growing delays, so that
    // the kill lands at many different points of their work.
    for i in 0..24u64 {
        let args: Vec<String> = if i % 2 == 0 {
            vec![
                "pod".into(),
                "create".into(),
                "--name".into(),
                format!("k{i}"),
            ]
        } else {
            ["run", "-d", "--pod", "base", "--", "sleep", "1000"]
                .map(String::from)
                .to_vec()
        };
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let mut child = s.spawn(&args);
        std::thread::sleep(Duration::from_micros(250 * i));
        let _ = child.kill();
        let _ = child.wait();
        for list in [
            &["pod", "ls", "--format", "json"][..],
            &["ps", "-a", "--format", "json"],
        ] {
            let run = s.run(list).ok();
            serde_json::from_str::<serde_json::Value>(&run.stdout)
                .expect("the store stays readable");
        }
    }
    // Everything that was made, whole or half, can be removed.
    for pod in s.run(&["pod", "ls", "-q"]).ok().stdout.split_whitespace() {
        s.run(&["pod", "rm", "-f", pod]).ok();
    }
    assert_eq!(s.run(&["ps", "-aq"]).ok().stdout, "");
    for mount in [V1_MOUNT, V2_MOUNT] {
        let top = Path::new(mount).join("stasis");
        let left: Vec<_> = std::fs::read_dir(&top)
            .map(|d| d.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        let ours: Vec<_> = left
            .iter()
            .filter(|p| {
                s.root
                    .0
                    .join("pods")
                    .join(p.file_name().expect("name"))
                    .exists()
            })
            .collect();
        assert!(ours.is_empty(), "cgroups left: {ours:?}");
    }
}

#[test]
fn a_pod_whose_pause_process_died_is_exited_and_removable() {
    if !root_or_skip("a_pod_whose_pause_process_died_is_exited_and_removable") {
        return;
    }
    let s = Stasis::new();
    s.run(&["pod", "create", "--name", "orphan"]).ok();
    let pause = s.pod("orphan")["pause"]["pid"].as_u64().expect("pid") as u32;
    let pid = rustix::process::Pid::from_raw(pause as i32).expect("pid");
    rustix::process::kill_process(pid, rustix::process::Signal::KILL)
        .expect("kill the pause process");
    wait_until(Duration::from_secs(10), "the pod to show as exited", || {
        s.pod("orphan")["status"] == "exited"
    });
    s.run(&["pod", "pause", "orphan"])
        .fails_with(4, "is not running");
    s.run(&["pod", "rm", "orphan"]).ok();
    assert_eq!(s.run(&["pod", "ls", "-q"]).ok().stdout, "");
}

/// The scheduling policy of a process (`/proc/PID/sched`'s `policy` line:
/// 0 SCHED_OTHER, 1 SCHED_FIFO, 2 SCHED_RR).
fn sched_policy(pid: u32) -> u32 {
    let sched = read(Path::new(&format!("/proc/{pid}/sched")));
    sched
        .lines()
        .find_map(|l| l.strip_prefix("policy"))
        .and_then(|rest| rest.trim_start_matches([' ', ':']).trim().parse().ok())
        .unwrap_or_else(|| panic!("no policy line in /proc/{pid}/sched: {sched}"))
}

#[test]
fn a_real_time_caller_makes_pods_and_containers_of_normal_policy() {
    if !root_or_skip("a_real_time_caller_makes_pods_and_containers_of_normal_policy") {
        return;
    }
    // The v1 cpu controller refuses a SCHED_FIFO task in a group without a
    // real-time budget (EINVAL); the pod's processes leave the caller's
    // real-time policy before they join their cgroups.
    let s = Stasis::new();
    let rt = |args: &[&str]| {
        run_bounded(
            Command::new("chrt")
                .args(["-f", "50", STASIS, "--root"])
                .arg(&s.root.0)
                .args(args)
                .env("STASIS_PAUSE", pause_binary()),
        )
    };
    rt(&["pod", "create", "--name", "rt"]).ok();
    rt(&[
        "run", "-d", "--pod", "rt", "--name", "c", "--", "sleep", "1000",
    ])
    .ok();
    rt(&[
        "run", "-d", "--name", "alone", "--memory", "64m", "--", "sleep", "1000",
    ])
    .ok();
    let pause = s.pod("rt")["pause"]["pid"].as_u64().expect("pause pid") as u32;
    assert_eq!(sched_policy(pause), 0, "the pause process");
    for name in ["c", "alone"] {
        let c = s.inspect(name);
        let pid = c["process"]["pid"].as_u64().expect("pid") as u32;
        assert_eq!(sched_policy(pid), 0, "container {name}'s process");
        let monitor = c["monitor"]["pid"].as_u64().expect("monitor pid") as u32;
        assert_eq!(sched_policy(monitor), 0, "container {name}'s monitor");
    }
}
