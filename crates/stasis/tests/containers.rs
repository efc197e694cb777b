//! Containers' lifecycle through the `stasis` binary (root only, real
//! kernel): kill of a paused container, implicit pods that end with their
//! container, `--rm`, and the exit codes and words of failed starts.

mod common;

use std::path::Path;
use std::time::Duration;

use common::*;

/// Whether a `stasis-pause` runs as process `pid`.
fn pause_runs(pid: u32) -> bool {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .is_ok_and(|c| String::from_utf8_lossy(&c).contains("stasis-pause"))
        && proc_state(pid).is_some_and(|s| s != 'Z')
}

#[test]
fn kill_of_a_paused_container_delivers_the_signal() {
    if !root_or_skip("kill_of_a_paused_container_delivers_the_signal") {
        return;
    }
    let s = Stasis::new();
    // A fatal signal ends a paused container at once.
    s.run(&["run", "-d", "--name", "k", "--", "sleep", "1000"])
        .ok();
    s.run(&["pause", "k"]).ok();
    assert_eq!(s.inspect("k")["status"], "paused");
    assert_eq!(s.run(&["kill", "k"]).ok().stdout.trim(), "k");
    wait_until(
        Duration::from_secs(10),
        "the killed container to exit",
        || s.inspect("k")["status"] == "exited",
    );
    assert_eq!(s.inspect("k")["exit_code"], 137, "SIGKILL");

    // A signal it handles is handled, and it is resumed, as docker does.
    s.run(&[
        "run",
        "-d",
        "--name",
        "u",
        "--",
        "sh",
        "-c",
        "trap 'echo got-usr1' USR1; echo ready; while true; do sleep 0.1; done",
    ])
    .ok();
    s.wait_log("u", "ready");
    s.run(&["pause", "u"]).ok();
    s.run(&["kill", "-s", "USR1", "u"]).ok();
    s.wait_log("u", "got-usr1");
    assert_eq!(s.inspect("u")["status"], "running");

    // A member of a paused pod is not thawed behind its pod's back, and
    // `rm` says why it refuses.
    s.run(&["pod", "create", "--name", "pp"]).ok();
    s.run(&[
        "run", "-d", "--pod", "pp", "--name", "m", "--", "sleep", "1000",
    ])
    .ok();
    s.run(&["pod", "pause", "pp"]).ok();
    s.run(&["kill", "m"]).fails_with(4, "its pod pp is paused");
    s.run(&["rm", "m"]).fails_with(4, "its pod pp is paused");
    assert_eq!(s.inspect("m")["status"], "paused");
    s.run(&["pod", "unpause", "pp"]).ok();
    s.run(&["kill", "m"]).ok();
}

#[test]
fn implicit_pods_end_with_their_container_and_rm_removes_them() {
    if !root_or_skip("implicit_pods_end_with_their_container_and_rm_removes_them") {
        return;
    }
    let s = Stasis::new();
    let names = ["i0", "i1", "i2", "i3"];
    for (n, name) in names.iter().enumerate() {
        let mut args = vec!["run", "--name", name];
        if n % 2 == 1 {
            args.push("-d");
        }
        args.extend(["--", "true"]);
        s.run(&args).ok();
        assert_eq!(s.run(&["wait", name]).ok().stdout.trim(), "0");
    }
    let pods: Vec<serde_json::Value> = names.iter().map(|n| s.pod(n)).collect();
    for (name, pod) in names.iter().zip(&pods) {
        let pid = pod["pause"]["pid"].as_u64().expect("pause pid") as u32;
        wait_until(
            Duration::from_secs(10),
            &format!("the pause process of {name}'s pod to end"),
            || !pause_runs(pid),
        );
        assert_eq!(s.pod(name)["status"], "exited", "{name}");
    }
    let mountinfo = read(Path::new("/proc/self/mountinfo"));
    assert!(
        !mountinfo.contains(&s.root.0.display().to_string()),
        "the exited pods' namespaces are still pinned"
    );

    for (name, pod) in names.iter().zip(&pods) {
        s.run(&["rm", name]).ok();
        let id = pod["id"].as_str().expect("id");
        for mount in [V1_MOUNT, V2_MOUNT] {
            let node = Path::new(mount).join("stasis").join(id);
            assert!(!node.exists(), "{} left behind", node.display());
        }
        assert!(!s.root.0.join("pods").join(id).exists(), "pod record left");
        for kind in ["pods", "containers"] {
            let claim = s.root.0.join("names").join(kind).join(name);
            assert!(!claim.exists(), "{} left behind", claim.display());
        }
    }
    assert_eq!(s.run(&["pod", "ls", "-q"]).ok().stdout, "");
    assert_eq!(s.run(&["ps", "-aq"]).ok().stdout, "");
}

#[test]
fn run_rm_removes_the_container_and_its_pod() {
    if !root_or_skip("run_rm_removes_the_container_and_its_pod") {
        return;
    }
    let s = Stasis::new();
    let run = s
        .run(&[
            "run",
            "--rm",
            "--name",
            "once",
            "--",
            "sh",
            "-c",
            "echo hi; exit 3",
        ])
        .code();
    assert_eq!(run, 3, "the command's status");
    assert_eq!(s.run(&["ps", "-aq"]).ok().stdout, "");
    assert_eq!(s.run(&["pod", "ls", "-q"]).ok().stdout, "");
    s.run(&["run", "-d", "--rm", "--name", "bg", "--", "true"])
        .ok();
    wait_until(
        Duration::from_secs(10),
        "the detached --rm container and its pod to go",
        || {
            s.run(&["ps", "-aq"]).ok().stdout.is_empty()
                && s.run(&["pod", "ls", "-q"]).ok().stdout.is_empty()
        },
    );
    for kind in ["pods", "containers"] {
        for name in ["once", "bg"] {
            let claim = s.root.0.join("names").join(kind).join(name);
            assert!(!claim.exists(), "{} left behind", claim.display());
        }
    }
    // A member of an explicit pod is removed; the pod stays.
    s.run(&["pod", "create", "--name", "keep"]).ok();
    s.run(&["run", "--rm", "--pod", "keep", "--", "true"]).ok();
    assert_eq!(s.run(&["ps", "-aq"]).ok().stdout, "");
    assert_eq!(s.pod("keep")["status"], "running");
}

#[test]
fn failed_starts_exit_with_dockers_codes_and_name_what_is_missing() {
    if !root_or_skip("failed_starts_exit_with_dockers_codes_and_name_what_is_missing") {
        return;
    }
    let s = Stasis::new();
    s.run(&["run", "-d", "--name", "e", "--", "sleep", "1000"])
        .ok();
    s.run(&["exec", "e", "--", "nosuchcmd"])
        .fails_with(127, "nosuchcmd");
    s.run(&["exec", "e", "--", "/etc/passwd"])
        .fails_with(126, "/etc/passwd");
    s.run(&["exec", "-w", "/no/such", "e", "--", "/bin/true"])
        .fails_with(126, "working directory /no/such");
    s.run(&["exec", "-w", "/tmp", "e", "--", "/bin/true"]).ok();
    s.run(&["run", "-w", "/no/such", "--", "/bin/true"])
        .fails_with(127, "working directory /no/such");
    s.run(&["run", "--", "nosuchcmd"])
        .fails_with(127, "nosuchcmd");
    s.run(&["run", "--rootfs", "/nonexistent", "--", "true"])
        .fails_with(3, "/nonexistent");
}

#[test]
fn a_store_another_user_cannot_read_is_said_to_be_unreadable() {
    if !root_or_skip("a_store_another_user_cannot_read_is_said_to_be_unreadable") {
        return;
    }
    let s = Stasis::new();
    s.run(&["ps"]).ok();
    let run = s.run_as_nobody(&["ps"]);
    let run = run.fails_with(6, "cannot read the state store");
    assert!(!run.stderr.contains("creating"), "{run:?}");
}

#[test]
fn an_implicit_pod_lives_while_a_member_that_joined_it_runs() {
    if !root_or_skip("an_implicit_pod_lives_while_a_member_that_joined_it_runs") {
        return;
    }
    let s = Stasis::new();
    s.run(&["run", "-d", "--name", "first", "--", "sleep", "1000"])
        .ok();
    s.run(&[
        "run", "-d", "--pod", "first", "--name", "joined", "--", "sleep", "1000",
    ])
    .ok();
    s.run(&["kill", "first"]).ok();
    assert_eq!(s.run(&["wait", "first"]).ok().stdout.trim(), "137");
    let pid = s.pod("first")["pause"]["pid"].as_u64().expect("pause pid") as u32;
    assert_eq!(s.pod("first")["status"], "running", "joined still uses it");
    assert!(pause_runs(pid));
    assert_eq!(
        s.run(&["exec", "joined", "--", "true"]).code(),
        0,
        "its namespaces are still pinned"
    );
    s.run(&["kill", "joined"]).ok();
    s.run(&["wait", "joined"]).ok();
    wait_until(
        Duration::from_secs(10),
        "the pod to end with its last member",
        || !pause_runs(pid),
    );
    s.run(&["rm", "first"]).ok();
    assert_eq!(s.pod("first")["status"], "exited", "joined still holds it");
    s.run(&["rm", "joined"]).ok();
    assert_eq!(s.run(&["pod", "ls", "-q"]).ok().stdout, "");
}

#[test]
fn a_freeze_in_the_other_hierarchy_is_seen_and_undone_by_name() {
    if !root_or_skip("a_freeze_in_the_other_hierarchy_is_seen_and_undone_by_name") {
        return;
    }
    let s = Stasis::new();
    s.run(&["pod", "create", "--name", "hy"]).ok();
    s.run(&[
        "run", "-d", "--pod", "hy", "--name", "hm", "--", "sleep", "1000",
    ])
    .ok();
    let pod_id = s.pod("hy")["id"].as_str().expect("id").to_owned();
    let c_id = s.inspect("hm")["id"].as_str().expect("id").to_owned();
    let node = format!("/stasis/{pod_id}");
    let leaf = format!("{node}/{c_id}");
    // The default hierarchy here is the v1 freezer: freeze in the other one.
    for (target, unpause) in [
        (&node, &["pod", "unpause", "hy"][..]),
        (&node, &["unpause", "hy"][..]),
        (&leaf, &["unpause", "hm"][..]),
    ] {
        s.run(&["pause", "--cgroup", target, "--hierarchy", "v2"])
            .ok();
        assert_eq!(s.inspect("hm")["status"], "paused", "{target}");
        s.run(&["pause", "hm"]).fails_with(4, "already paused");
        if *target == node {
            s.run(&["pod", "pause", "hy"])
                .fails_with(4, "already paused");
        }
        s.run(unpause).ok();
        assert_eq!(s.inspect("hm")["status"], "running", "{unpause:?}");
        s.run(unpause).fails_with(4, "not paused");
    }
    s.run(&["pod", "rm", "-f", "hy"]).ok();
}

#[test]
fn a_forced_removal_of_a_member_of_a_paused_pod_leaves_the_pod_paused() {
    if !root_or_skip("a_forced_removal_of_a_member_of_a_paused_pod_leaves_the_pod_paused") {
        return;
    }
    let s = Stasis::new();
    s.run(&["pod", "create", "--name", "fp"]).ok();
    for name in ["f1", "f2"] {
        s.run(&[
            "run", "-d", "--pod", "fp", "--name", name, "--", "sleep", "1000",
        ])
        .ok();
    }
    s.run(&["pod", "pause", "fp"]).ok();
    s.run(&["rm", "-f", "f1"]).ok();
    assert!(s.run(&["inspect", "f1"]).code() == 3, "f1 is gone");
    assert_eq!(
        s.inspect("f2")["status"],
        "paused",
        "its sibling stays paused"
    );
    assert_eq!(s.pod("fp")["status"], "paused");
    s.run(&["pod", "unpause", "fp"]).ok();
    assert_eq!(s.inspect("f2")["status"], "running");
    s.run(&["pod", "rm", "-f", "fp"]).ok();
}
