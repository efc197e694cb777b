//! The two binaries' own checks, before any API server is reached: usage
//! errors exit 2, and no reachable API server is one line and exit 1.

use std::process::Command;

fn run(bin: &str, args: &[&str]) -> testkit::Run {
    testkit::run_bounded(
        Command::new(bin)
            .args(args)
            // No cluster: no kubeconfig, not in a pod.
            .env("KUBECONFIG", "/nonexistent/stasis-test-kubeconfig")
            .env("HOME", "/nonexistent")
            .env_remove("KUBERNETES_SERVICE_HOST")
            .env_remove("KUBERNETES_SERVICE_PORT"),
    )
}

const PLUGIN: &str = env!("CARGO_BIN_EXE_kubectl-stasis");
const AGENT: &str = env!("CARGO_BIN_EXE_stasis-agent");

#[test]
fn the_plugin_refuses_bad_targets_and_flags_with_usage_errors() {
    for args in [
        &["pause"][..],
        &["pause", "service/web"],
        &["pause", "web"],
        &["pause", "deployment/web", "-l", "app=web"],
        &["pause", "pod/a", "--lease", "0"],
        &["pause", "pod/a", "--lease", "25h"],
        &["unpause", "pod/a", "--timeout", "soon"],
        &["status"],
        &["resume", "pod/a"],
    ] {
        let r = run(PLUGIN, args);
        assert_eq!(r.code(), 2, "{args:?}: {}", r.stderr);
    }
    let r = run(PLUGIN, &["pause", "service/web"]);
    assert!(
        r.stderr.contains("\"service/web\" is not a target"),
        "{}",
        r.stderr
    );
}

#[test]
fn without_an_api_server_both_say_so_in_one_line_and_exit_1() {
    let r = run(PLUGIN, &["status", "deployment/web"]);
    assert_eq!(r.code(), 1, "{}", r.stderr);
    assert!(
        r.stderr
            .starts_with("kubectl stasis: connecting to the API server"),
        "{}",
        r.stderr
    );
    assert_eq!(r.stderr.trim_end().lines().count(), 1, "{}", r.stderr);
    if !testkit::root_or_skip("without_an_api_server_both_say_so_in_one_line_and_exit_1 (agent)") {
        return;
    }
    // Its own cgroup namespace: this machine's PID 1 is in another one that
    // it may not join.
    let r = run(
        AGENT,
        &[
            "--node",
            "node-1",
            "--cgroupns",
            "own",
            "--log-level",
            "error",
        ],
    );
    assert_eq!(r.code(), 1, "{}", r.stderr);
    assert!(
        r.stderr
            .starts_with("stasis-agent: connecting to the API server"),
        "{}",
        r.stderr
    );
    let r = run(AGENT, &["--node", "node-1", "--resync", "0"]);
    assert_eq!(r.code(), 2, "{}", r.stderr);
    let r = run(AGENT, &["--node", "node-1", "--cgroupns", "theirs"]);
    assert_eq!(r.code(), 2, "{}", r.stderr);
}
