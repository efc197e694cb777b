//! Restart policies through the `stasis` binary (root only, real kernel):
//! `on-failure:N` restarts a failing command N times then stops, `always`
//! survives the command exiting 0 until `stop`, a container whose pod is
//! paused is not restarted until the thaw, each restart is a die and a
//! start in the journal, and `ps` says "Restarting" as docker does.

mod common;

use std::time::Duration;

use common::*;

fn restart_count(s: &Stasis, name: &str) -> u64 {
    s.inspect(name)["RestartCount"]
        .as_u64()
        .expect("RestartCount")
}

fn status(s: &Stasis, name: &str) -> String {
    s.inspect(name)["State"]["Status"]
        .as_str()
        .expect("status")
        .to_owned()
}

#[test]
fn on_failure_restarts_a_failing_command_n_times_then_stops() {
    if !root_or_skip("on_failure_restarts_a_failing_command_n_times_then_stops") {
        return;
    }
    let s = Stasis::new();
    s.run(&[
        "run",
        "-d",
        "--name",
        "flaky",
        "--restart",
        "on-failure:2",
        "--",
        "sh",
        "-c",
        "echo run; exit 3",
    ])
    .ok();
    wait_until(Duration::from_secs(20), "the policy to give up", || {
        let c = s.inspect("flaky");
        c["State"]["Status"] == "exited" && c["RestartCount"] == 2
    });
    // Given up for good: no third restart comes (the next back-off would
    // have been 400 ms).
    std::thread::sleep(Duration::from_millis(800));
    let c = s.inspect("flaky");
    assert_eq!(c["RestartCount"], 2, "{c}");
    assert_eq!(c["State"]["ExitCode"], 3);
    assert_eq!(c["State"]["Restarting"], false);
    assert_eq!(c["HostConfig"]["RestartPolicy"]["Name"], "on-failure");
    assert_eq!(c["HostConfig"]["RestartPolicy"]["MaximumRetryCount"], 2);
    let log = s.run(&["logs", "flaky"]).ok().stdout;
    assert_eq!(
        log.matches("run").count(),
        3,
        "the first run and two more: {log}"
    );
    let events = s
        .run(&[
            "events",
            "--since",
            "1m",
            "--until",
            "0s",
            "-f",
            "container=flaky",
        ])
        .ok()
        .stdout;
    assert_eq!(events.matches("container start").count(), 3, "{events}");
    assert_eq!(events.matches("container die").count(), 3, "{events}");

    // A success is no failure: on-failure does not restart it.
    s.run(&[
        "run",
        "-d",
        "--name",
        "fine",
        "--restart",
        "on-failure",
        "--",
        "true",
    ])
    .ok();
    wait_until(Duration::from_secs(10), "it to exit", || {
        status(&s, "fine") == "exited"
    });
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(restart_count(&s, "fine"), 0);
}

#[test]
fn always_survives_exit_0_until_stopped() {
    if !root_or_skip("always_survives_exit_0_until_stopped") {
        return;
    }
    let s = Stasis::new();
    s.run(&[
        "run",
        "-d",
        "--name",
        "again",
        "--restart",
        "always",
        "--",
        "sh",
        "-c",
        "echo run; sleep 0.2",
    ])
    .ok();
    wait_until(Duration::from_secs(20), "two restarts", || {
        restart_count(&s, "again") >= 2
    });
    // Between runs (or running): never exited while the policy holds.
    let st = status(&s, "again");
    assert!(st == "running" || st == "restarting", "{st}");
    let ps = s.run(&["ps", "-f", "name=again"]).ok().stdout;
    assert!(
        ps.contains("Up ") || ps.contains("Restarting (0) "),
        "ps lists it by default: {ps}"
    );
    s.run(&["stop", "-t", "1", "again"]).ok();
    assert_eq!(status(&s, "again"), "exited");
    let n = restart_count(&s, "again");
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(status(&s, "again"), "exited", "stop ends the policy");
    assert_eq!(restart_count(&s, "again"), n);
    let c = s.inspect("again");
    assert!(c["monitor"].is_object());

    // unless-stopped, killed while it runs: not restarted either; and
    // `rm -f` of one between two runs ends it.
    s.run(&[
        "run",
        "-d",
        "--name",
        "kept",
        "--restart",
        "unless-stopped",
        "--",
        "sleep",
        "100",
    ])
    .ok();
    s.run(&["kill", "kept"]).ok();
    wait_until(Duration::from_secs(10), "the kill", || {
        status(&s, "kept") == "exited"
    });
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(status(&s, "kept"), "exited");
    assert_eq!(restart_count(&s, "kept"), 0);
    s.run(&[
        "run",
        "-d",
        "--name",
        "loop",
        "--restart",
        "always",
        "--",
        "false",
    ])
    .ok();
    // Its back-off grows (100, 200, 400, 800 ms...): between two runs, ps
    // says so in docker's words, and inspect as docker's State does.
    wait_until(Duration::from_secs(20), "ps to say Restarting", || {
        s.run(&["ps", "-f", "name=loop"])
            .ok()
            .stdout
            .contains("Restarting (1) ")
    });
    let c = s.inspect("loop");
    if c["State"]["Status"] == "restarting" {
        assert_eq!(c["State"]["Restarting"], true);
        assert_eq!(c["State"]["Running"], true, "as docker's");
    }
    s.run(&["rm", "-f", "loop"]).ok();
    s.run(&["inspect", "loop"])
        .fails_with(3, "no such container: loop");
}

#[test]
fn a_paused_container_is_not_restarted_until_it_is_thawed() {
    if !root_or_skip("a_paused_container_is_not_restarted_until_it_is_thawed") {
        return;
    }
    let s = Stasis::new();
    s.run(&["pod", "create", "--name", "held"]).ok();
    s.run(&[
        "run",
        "-d",
        "--pod",
        "held",
        "--name",
        "crash",
        "--restart",
        "always",
        "--",
        "sh",
        "-c",
        "sleep 0.1; exit 1",
    ])
    .ok();
    wait_until(Duration::from_secs(20), "a restart", || {
        restart_count(&s, "crash") >= 1
    });
    s.run(&["pod", "pause", "held"]).ok();
    let n = restart_count(&s, "crash");
    // Longer than any back-off so far (100, 200, 400 ms...).
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        restart_count(&s, "crash") <= n + 1,
        "at most the start that was under way when the pod froze"
    );
    let frozen = restart_count(&s, "crash");
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(
        restart_count(&s, "crash"),
        frozen,
        "nothing restarts while paused"
    );
    s.run(&["pod", "unpause", "held"]).ok();
    wait_until(Duration::from_secs(20), "restarts after the thaw", || {
        restart_count(&s, "crash") > frozen
    });
    s.run(&["stop", "-t", "1", "crash"]).ok();
    assert_eq!(status(&s, "crash"), "exited");
}

#[test]
fn restart_and_rm_conflict_and_a_bad_policy_is_refused() {
    if !root_or_skip("restart_and_rm_conflict_and_a_bad_policy_is_refused") {
        return;
    }
    let s = Stasis::new();
    s.run(&["run", "--rm", "--restart", "always", "--", "true"])
        .fails_with(2, "conflicting options: --restart and --rm");
    s.run(&["run", "--restart", "sometimes", "--", "true"])
        .fails_with(2, "invalid restart policy");
    s.run(&["run", "--restart", "always:3", "--", "true"])
        .fails_with(2, "only on-failure");
}

#[test]
fn start_runs_an_exited_container_again_in_its_own_pod_or_its_users() {
    if !root_or_skip("start_runs_an_exited_container_again_in_its_own_pod_or_its_users") {
        return;
    }
    let s = Stasis::new();
    // Its own pod, a label and a policy that restarts it once.
    s.run(&[
        "run",
        "-d",
        "--name",
        "again",
        "--label",
        "team=a",
        "--restart",
        "on-failure:1",
        "--",
        "sh",
        "-c",
        "echo run; sleep 1; exit 3",
    ])
    .ok();
    wait_until(Duration::from_secs(20), "the policy to give up", || {
        let c = s.inspect("again");
        c["State"]["Status"] == "exited" && c["RestartCount"] == 1
    });
    let first = s.inspect("again");
    let pod_id = first["pod"].as_str().expect("its pod").to_owned();
    let first_pause = s.pod(&pod_id)["pause"].clone();
    assert!(first_pause.is_object(), "{first_pause}");
    let out = s.run(&["start", "again"]).ok();
    assert_eq!(out.stdout.trim(), "again", "docker start prints the name");
    let second = s.inspect("again");
    assert_eq!(second["Id"], first["Id"], "the same container");
    assert_eq!(second["Config"]["Labels"]["team"], "a");
    assert_ne!(second["State"]["StartedAt"], first["State"]["StartedAt"]);
    assert_eq!(second["RestartCount"], 0, "a start resets docker's count");
    assert_eq!(status(&s, "again"), "running");
    // Its policy holds in the new run too, and the log goes on.
    wait_until(
        Duration::from_secs(20),
        "the second policy to give up",
        || {
            let c = s.inspect("again");
            c["State"]["Status"] == "exited" && c["RestartCount"] == 1
        },
    );
    let log = s.run(&["logs", "again"]).ok().stdout;
    assert_eq!(log.matches("run").count(), 4, "{log}");
    let pod = s.pod(&pod_id);
    assert!(pod["pause"].is_object(), "{pod}");
    assert_ne!(
        pod["pause"], first_pause,
        "its ended pod got a new pause process"
    );

    // A member of a pod the user made: the pod must run.
    s.run(&["pod", "create", "--name", "users"]).ok();
    s.run(&[
        "run", "-d", "--pod", "users", "--name", "member", "--", "echo", "member",
    ])
    .ok();
    wait_until(Duration::from_secs(20), "the member to exit", || {
        status(&s, "member") == "exited"
    });
    s.run(&["start", "member"]).ok();
    wait_until(Duration::from_secs(20), "the member's second run", || {
        s.run(&["logs", "member"])
            .ok()
            .stdout
            .matches("member")
            .count()
            == 2
    });
    wait_until(Duration::from_secs(20), "the member to exit again", || {
        status(&s, "member") == "exited"
    });
    s.run(&["pod", "stop", "users"]).ok();
    s.run(&["start", "member"])
        .fails_with(4, "pod users is not running");
    assert_eq!(
        status(&s, "member"),
        "exited",
        "a refused start changes nothing"
    );
    // Running already: left alone, as docker leaves it.
    s.run(&["run", "-d", "--name", "busy", "--", "sleep", "30"])
        .ok();
    let busy = s.inspect("busy");
    s.run(&["start", "busy"]).ok();
    assert_eq!(s.inspect("busy")["State"]["Pid"], busy["State"]["Pid"]);
}
