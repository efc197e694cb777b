//! `stasis pause / unpause / state` on real cgroups, v1 and v2 (root only).

mod common;

use std::io::{BufRead, BufReader, ErrorKind, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;

fn accept_bounded(listener: &TcpListener) -> TcpStream {
    listener.set_nonblocking(true).expect("nonblocking");
    let end = Instant::now() + Duration::from_secs(30);
    loop {
        match listener.accept() {
            Ok((stream, _)) => {
                stream.set_nonblocking(false).expect("blocking");
                return stream;
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock && Instant::now() < end => {
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(e) => panic!("the workload never connected: {e}"),
        }
    }
}

fn busy_process_stops_and_resumes_intact(v: V) {
    let scratch = Scratch::new();
    let counter = scratch.0.join("counter");
    let log = scratch.0.join("log");
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port().to_string();
    let mut cg = TestCgroup::new(v);
    let pid = cg.spawn(
        "python3",
        &[
            &workload("busy.py"),
            &port,
            counter.to_str().expect("utf8"),
            log.to_str().expect("utf8"),
        ],
    );
    let stream = accept_bounded(&listener);
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let mut reader = BufReader::new(stream.try_clone().expect("clone"));
    let mut hello = String::new();
    reader.read_line(&mut hello).expect("hello");
    let digest = hello
        .trim()
        .strip_prefix("hello ")
        .expect("hello line")
        .to_owned();
    let start = read_counter(&counter);
    wait_until(Duration::from_secs(30), "the counter to advance", || {
        read_counter(&counter) > start
    });

    let pid_s = pid.to_string();
    stasis(&["pause", "--pid", &pid_s, "--hierarchy", v.flag()]).ok();
    assert!(cg.kernel_frozen(&cg.dir), "the kernel says frozen");
    let state = state_json(&["--pid", &pid_s, "--hierarchy", v.flag()]);
    assert_eq!(state["phase"], "frozen");
    assert_eq!(state["frozen_by"], "self");
    assert_eq!(state["cgroup"], cg.path());
    // v1 parks frozen tasks in TASK_FROZEN, shown as D; v2 traps them in a
    // signal stop, shown as S: either way, not running.
    let letter = proc_state(pid).expect("alive");
    assert_eq!(
        letter,
        if v == V::V1 { 'D' } else { 'S' },
        "state of a frozen task"
    );
    let frozen_at = read_counter(&counter);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        read_counter(&counter),
        frozen_at,
        "the counter must not advance while paused"
    );

    // A request sent while paused gets no answer until unpause.
    (&stream).write_all(b"ping\n").expect("ping");
    stream
        .set_read_timeout(Some(Duration::from_millis(300)))
        .expect("timeout");
    let mut early = String::new();
    let err = reader
        .read_line(&mut early)
        .expect_err("no reply while frozen");
    assert!(
        matches!(err.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut),
        "{err}"
    );

    stasis(&["unpause", "--pid", &pid_s, "--hierarchy", v.flag()]).ok();
    assert!(kernel_thawed(v, &cg.dir), "the kernel says thawed");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let mut pong = String::new();
    reader
        .read_line(&mut pong)
        .expect("the reply comes after unpause");
    let mut fields = pong.split_whitespace();
    assert_eq!(fields.next(), Some("pong"));
    assert_eq!(fields.next(), Some(digest.as_str()), "memory intact");
    wait_until(Duration::from_secs(30), "the counter to resume", || {
        read_counter(&counter) > frozen_at
    });
    let logged = std::fs::read_to_string(&log).expect("log");
    assert!(
        logged.contains(&digest),
        "the file opened before the pause still works"
    );
    assert_eq!(
        state_json(&["--pid", &pid_s, "--hierarchy", v.flag()])["phase"],
        "thawed"
    );
}

on_v1_and_v2!(
    busy_process_stops_and_resumes_intact,
    busy_process_stops_and_resumes_intact
);

fn thousand_processes(v: V) {
    let mut cg = TestCgroup::new(v);
    cg.spawn(
        "sh",
        &["-c", "for i in $(seq 1000); do sleep 1000 & done; wait"],
    );
    cg.wait_for_procs(1001);
    let dir = cg.dir_str();
    stasis(&["pause", "--cgroup", &dir]).ok();
    assert!(cg.kernel_frozen(&cg.dir));
    let pids = cg.procs();
    assert_eq!(pids.len(), 1001);
    if v == V::V1 {
        let not_frozen: Vec<_> = pids
            .iter()
            .filter(|p| proc_state(**p) != Some('D'))
            .collect();
        assert!(not_frozen.is_empty(), "tasks not frozen: {not_frozen:?}");
    }
    stasis(&["pause", "--cgroup", &dir]).fails_with(4, "is already paused");
    stasis(&["unpause", "--cgroup", &dir]).ok();
    assert!(kernel_thawed(v, &cg.dir));
    assert_eq!(cg.procs().len(), 1001, "nobody died");
    let stuck: Vec<_> = pids
        .iter()
        .filter(|p| proc_state(**p) == Some('D'))
        .collect();
    assert!(stuck.is_empty(), "tasks still frozen: {stuck:?}");
}

on_v1_and_v2!(thousand_processes_freeze_and_thaw, thousand_processes);

fn forking_target_is_frozen_or_left_thawed(v: V) {
    let mut cg = TestCgroup::new(v);
    for _ in 0..3 {
        cg.spawn("python3", &[&workload("forker.py")]);
    }
    cg.wait_for_procs(3);
    let dir = cg.dir_str();
    for round in 0..5 {
        let run = stasis(&["pause", "--cgroup", &dir, "--timeout", "3s"]);
        if run.status.success() {
            assert!(
                cg.kernel_frozen(&cg.dir),
                "round {round}: paused means frozen"
            );
            let before = cg.procs();
            std::thread::sleep(Duration::from_millis(100));
            assert_eq!(
                cg.procs(),
                before,
                "round {round}: nothing forks while frozen"
            );
            stasis(&["unpause", "--cgroup", &dir]).ok();
        } else {
            assert_eq!(run.code(), 1, "round {round}: {run:?}");
            assert!(run.stderr.contains("did not freeze"), "{run:?}");
        }
        assert!(
            kernel_thawed(v, &cg.dir),
            "round {round}: never left frozen"
        );
    }
}

on_v1_and_v2!(
    forking_target_is_frozen_or_left_thawed,
    forking_target_is_frozen_or_left_thawed
);

fn timeout_thaws_again(v: V) {
    let mut cg = TestCgroup::new(v);
    // Runnable tasks must each get a CPU to reach the freezer: forty of them
    // on this machine's cores cannot all do so in no time at all.
    for _ in 0..40 {
        cg.spawn("sh", &["-c", "while :; do :; done"]);
    }
    cg.wait_for_procs(40);
    let dir = cg.dir_str();
    stasis(&["pause", "--cgroup", &dir, "--timeout", "0"])
        .fails_with(1, "did not freeze within 0ns; it was thawed again");
    assert!(
        kernel_thawed(v, &cg.dir),
        "a timed-out pause leaves the target thawed"
    );
    stasis(&["unpause", "--cgroup", &dir]).fails_with(4, "is not paused");
}

on_v1_and_v2!(timeout_thaws_again, timeout_thaws_again);

#[test]
fn ancestors_freeze_is_reported_and_respected() {
    if !root_or_skip("ancestors_freeze_is_reported_and_respected") {
        return;
    }
    for v in [V::V1, V::V2] {
        let mut parent = TestCgroup::new(v);
        let child = parent.dir.join("inner");
        std::fs::create_dir(&child).expect("mkdir child");
        let child_s = child.display().to_string();
        let pid = parent.spawn_in(&child, "sleep", &["1000"]);
        parent.wait_for_procs(1);
        let parent_s = parent.dir_str();
        stasis(&["pause", "--cgroup", &parent_s]).ok();
        let state = state_json(&["--cgroup", &child_s]);
        assert_eq!(state["phase"], "frozen", "{v:?}");
        assert_eq!(state["frozen_by"], "ancestor", "{v:?}");
        assert_eq!(state["ancestor"], parent.path(), "{v:?}");
        stasis(&["pause", "--cgroup", &child_s]).fails_with(4, "is already paused");
        stasis(&[
            "unpause",
            "--pid",
            &pid.to_string(),
            "--hierarchy",
            v.flag(),
        ])
        .fails_with(4, "is paused by its ancestor");
        stasis(&["unpause", "--cgroup", &parent_s]).ok();
        assert_eq!(state_json(&["--cgroup", &child_s])["phase"], "thawed");
    }
}

#[test]
fn errors_are_one_line_with_documented_codes() {
    if !root_or_skip("errors_are_one_line_with_documented_codes") {
        return;
    }
    stasis(&["pause", "--pid", "2147483647"]).fails_with(3, "no such process: 2147483647");
    stasis(&["pause", "--cgroup", "/stasis-test-does-not-exist"]).fails_with(3, "no such cgroup");
    stasis(&["state", "--cgroup", "stasis-test-does-not-exist"]).fails_with(3, "no such cgroup");
    stasis(&["pause", "--cgroup", "a/../../etc"]).fails_with(2, "contains '..'");
    stasis(&["pause", "--cgroup", "/", "--hierarchy", "v1"]).fails_with(5, "root cgroup");
    stasis(&["pause", "--cgroup", "/", "--hierarchy", "v2"]).fails_with(5, "root cgroup");
    stasis(&["pause", "--pid", "1"]).fails_with(5, "refusing to freeze");
    stasis(&["pause", "--cgroup", V2_MOUNT.as_str(), "--hierarchy", "v1"])
        .fails_with(2, "is in the v2 hierarchy, not the v1 one");
    stasis(&["pause"]).fails_with_usage();

    for v in [V::V1, V::V2] {
        let mut cg = TestCgroup::new(v);
        cg.spawn("sleep", &["1000"]);
        cg.wait_for_procs(1);
        let dir = cg.dir_str();
        stasis(&["unpause", "--cgroup", &dir]).fails_with(4, "is not paused");
        // The caller inside the target: stasis would freeze itself.
        let run = run_bounded(
            Command::new("sh")
                .arg("-c")
                .arg(r#"echo $$ > "$0/cgroup.procs" && exec "$1" pause --cgroup "$0""#)
                .arg(&cg.dir)
                .arg(STASIS),
        );
        let run = run.fails_with(5, "it holds this process, which would freeze itself");
        drop(run);
        assert!(kernel_thawed(v, &cg.dir));
        // Without root, the kernel refuses the write.
        let run = run_bounded(
            Command::new("setpriv")
                .args(["--reuid=65534", "--regid=65534", "--clear-groups", STASIS])
                .args(["pause", "--cgroup", &dir]),
        );
        run.fails_with(6, "permission denied");
        assert!(
            kernel_thawed(v, &cg.dir),
            "{v:?}: a refused pause leaves it thawed"
        );
        // Reading works for anyone.
        let run = run_bounded(
            Command::new("setpriv")
                .args(["--reuid=65534", "--regid=65534", "--clear-groups", STASIS])
                .args(["state", "--cgroup", &dir]),
        );
        assert!(run.status.success(), "{run:?}");
    }
}

/// A process of ours, killed and reaped on drop.
struct Sleeper(std::process::Child);

impl Drop for Sleeper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_freeze_in_the_other_hierarchy_counts_for_pid_and_cgroup_targets() {
    if !root_or_skip("a_freeze_in_the_other_hierarchy_counts_for_pid_and_cgroup_targets") {
        return;
    }
    // One process in a test cgroup of the same name in both trees, as a
    // stasis pod member is on a hybrid host. Dropped last: v1 reaps it.
    let mut in_v1 = TestCgroup::new(V::V1);
    let in_v2 = TestCgroup::named(V::V2, in_v1.name.clone());
    let pid = in_v1.spawn("sleep", &["1000"]);
    std::fs::write(in_v2.dir.join("cgroup.procs"), pid.to_string()).expect("move into v2");
    let pid_s = pid.to_string();
    let by_pid = ["--pid", pid_s.as_str()];
    let path = in_v1.path();
    let by_cgroup = ["--cgroup", path.as_str()];

    for (how, target) in [("pid", &by_pid), ("cgroup", &by_cgroup)] {
        stasis(&[&["pause"][..], &target[..], &["--hierarchy", "v2"]].concat()).ok();
        assert!(kernel_frozen(V::V2, &in_v2.dir), "{how}");
        // Auto picks v1, where it is thawed; the v2 freeze is what counts.
        let state = state_json(target);
        assert_eq!(state["phase"], "frozen", "{how}: {state}");
        assert_eq!(state["hierarchy"], "v2", "{how}: {state}");
        assert_eq!(state["frozen_by"], "self", "{how}: {state}");
        assert_eq!(state["paused"], true, "{how}: {state}");
        let each = state["hierarchies"].as_array().expect("hierarchies");
        assert_eq!(each.len(), 2, "{how}: {state}");
        assert_eq!(
            (&each[0]["hierarchy"], &each[0]["phase"]),
            (&"v1".into(), &"thawed".into())
        );
        let text = stasis(&[&["state"][..], &target[..]].concat()).ok().stdout;
        assert!(text.contains("state:     frozen"), "{text}");
        assert!(
            text.contains(&format!("v2  {}  frozen by self", in_v2.dir.display())),
            "{text}"
        );
        // Not a second freeze in v1: already paused.
        stasis(&[&["pause"][..], &target[..]].concat()).fails_with(4, "already paused");
        stasis(&[&["pause"][..], &target[..], &["--hierarchy", "v1"]].concat())
            .fails_with(4, "already paused");
        assert!(
            kernel_thawed(V::V1, &in_v1.dir),
            "{how}: not frozen in v1 too"
        );
        // A named hierarchy thaws that one only; auto thaws whichever.
        stasis(&[&["unpause"][..], &target[..], &["--hierarchy", "v1"]].concat())
            .fails_with(4, "not paused");
        stasis(&[&["unpause"][..], &target[..]].concat()).ok();
        assert!(kernel_thawed(V::V2, &in_v2.dir), "{how}");
        assert_eq!(state_json(target)["paused"], false);
        stasis(&[&["unpause"][..], &target[..]].concat()).fails_with(4, "not paused");
    }
}

#[test]
fn a_process_in_the_root_cgroup_is_refused_with_what_to_do() {
    if !root_or_skip("a_process_in_the_root_cgroup_is_refused_with_what_to_do") {
        return;
    }
    let sleeper = Sleeper(
        Command::new("sleep")
            .arg("1000")
            .stdin(std::process::Stdio::null())
            .spawn()
            .expect("spawn"),
    );
    let pid = sleeper.0.id().to_string();
    // Our own process, moved to the v1 freezer's root cgroup.
    std::fs::write(Path::new(V1_MOUNT).join("cgroup.procs"), &pid).expect("move to root");
    let run = stasis(&["pause", "--pid", &pid]).fails_with(5, "root cgroup");
    let mount = V1_MOUNT.as_str();
    assert!(
        run.stderr.contains(&format!(
            "mkdir {mount}/NAME && echo {pid} > {mount}/NAME/cgroup.procs"
        )),
        "{run:?}"
    );
    assert!(run.stderr.contains("--cgroup"), "{run:?}");
}

#[test]
fn state_of_a_stasis_container_or_pod_by_name_sees_both_hierarchies() {
    if !root_or_skip("state_of_a_stasis_container_or_pod_by_name_sees_both_hierarchies") {
        return;
    }
    let s = Stasis::new();
    s.run(&["pod", "create", "--name", "st"]).ok();
    s.run(&[
        "run", "-d", "--pod", "st", "--name", "sl", "--", "sleep", "1000",
    ])
    .ok();
    let pod_id = s.pod("st")["id"].as_str().expect("id").to_owned();
    let c_id = s.inspect("sl")["id"].as_str().expect("id").to_owned();
    let state = |name: &str| -> serde_json::Value {
        let run = s.run(&["state", "--format", "json", name]).ok();
        serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}: {run:?}"))
    };
    let before = state("sl");
    assert_eq!(before["name"], "sl");
    assert_eq!(
        before["cgroup"],
        format!("/stasis/{pod_id}/{c_id}"),
        "{before}"
    );
    assert_eq!(before["paused"], false, "{before}");
    assert_eq!(
        before["hierarchies"].as_array().map(Vec::len),
        Some(2),
        "{before}"
    );

    // pause NAME, then state NAME and state of the pod by ID prefix.
    s.run(&["pause", "sl"]).ok();
    let paused = state("sl");
    assert_eq!(
        (&paused["phase"], &paused["frozen_by"]),
        (&"frozen".into(), &"self".into())
    );
    assert_eq!(
        state(&pod_id[..12])["paused"],
        false,
        "the pod itself is not frozen"
    );
    s.run(&["unpause", "sl"]).ok();
    assert_eq!(state("sl")["paused"], false);

    // A freeze of the pod's node in the other tree shows by name too.
    let node = format!("/stasis/{pod_id}");
    s.run(&["pause", "--cgroup", &node, "--hierarchy", "v2"])
        .ok();
    let pod = state("st");
    assert_eq!(
        (&pod["hierarchy"], &pod["phase"]),
        (&"v2".into(), &"frozen".into()),
        "{pod}"
    );
    let member = state("sl");
    assert_eq!(member["paused"], true, "{member}");
    assert_eq!(member["frozen_by"], "ancestor", "{member}");
    let text = s.run(&["state", "sl"]).ok().stdout;
    assert!(
        text.contains("name:      sl") && text.contains("hierarchies:"),
        "{text}"
    );
    s.run(&["unpause", "--cgroup", &node]).ok();
    assert_eq!(state("st")["paused"], false);

    // The hierarchy flags are for kernel targets, not names.
    let run = s.run(&["state", "--hierarchy", "v2", "sl"]);
    assert_eq!(run.code(), 2, "{run:?}");
    s.run(&["state", "nosuch"]).fails_with(3, "nosuch");
}
