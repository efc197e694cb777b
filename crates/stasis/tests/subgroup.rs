//! The subgroup strategy, above all from inside a container next to the
//! target (root only, real kernel, v1 and v2).

mod common;

use std::fs;

use common::*;

const SUB: &str = "stasis-frozen";

fn from_inside_a_cgroup_namespace(v: V) {
    let scratch = Scratch::new();
    let mut target = TestCgroup::new(v);
    let home = TestCgroup::new(v);
    let counter = busy_forking_target(&mut target, &scratch);
    let sidecar = Sidecar::new(&target, &home);
    let h = v.flag();

    sidecar
        .stasis(&[
            "pause",
            "--cgroup",
            "/",
            "--hierarchy",
            h,
            "--strategy",
            "subgroup",
        ])
        .ok();
    let sub = assert_paused_in_subgroup(&target, &counter);
    let inside = target.all_procs();
    assert!(inside.len() >= 23, "{inside:?}");

    // The host sees it as paused by the subgroup.
    let dir = target.dir_str();
    let state = state_json(&["--cgroup", &dir]);
    assert_eq!(state["phase"], "frozen");
    assert_eq!(state["frozen_by"], "subgroup");
    assert_eq!(state["subgroup"], format!("{}/{SUB}", target.path()));

    // Inside, the namespace root is "/".
    let run = sidecar.stasis(&[
        "state",
        "--cgroup",
        "/",
        "--hierarchy",
        h,
        "--format",
        "json",
    ]);
    let state: serde_json::Value = serde_json::from_str(&run.ok().stdout).expect("json");
    assert_eq!(state["cgroup"], "/");
    assert_eq!(state["frozen_by"], "subgroup");

    sidecar
        .stasis(&["pause", "--cgroup", "/", "--hierarchy", h])
        .fails_with(4, "is already paused");
    sidecar
        .stasis(&["unpause", "--cgroup", "/", "--hierarchy", h])
        .ok();
    assert!(!sub.exists(), "the subgroup is removed");
    assert!(kernel_thawed(v, &target.dir));
    assert!(target.procs().len() >= 23, "everyone is back in the source");
    wait_counter_moves(&counter);
    assert_eq!(state_json(&["--cgroup", &dir])["phase"], "thawed");
}

on_v1_and_v2!(
    subgroup_from_inside_a_cgroup_namespace,
    from_inside_a_cgroup_namespace
);

fn inside_auto_and_self_refusal(v: V) {
    let scratch = Scratch::new();
    let mut target = TestCgroup::new(v);
    let home = TestCgroup::new(v);
    let counter = busy_forking_target(&mut target, &scratch);
    let sidecar = Sidecar::new(&target, &home);
    let h = v.flag();
    // Still inside the namespace root: freezing it would freeze stasis.
    sidecar
        .stasis_from(&target, &["pause", "--cgroup", "/", "--hierarchy", h])
        .fails_with(5, "it holds this process");
    assert!(kernel_thawed(v, &target.dir));
    // Without nsdelegate the root's own freeze file is writable: auto uses it.
    sidecar
        .stasis(&["pause", "--cgroup", "/", "--hierarchy", h])
        .ok();
    assert!(target.kernel_frozen(&target.dir));
    assert!(!target.dir.join(SUB).exists());
    assert_counter_stopped(&counter);
    sidecar
        .stasis(&["unpause", "--cgroup", "/", "--hierarchy", h])
        .ok();
    wait_counter_moves(&counter);
}

on_v1_and_v2!(
    inside_auto_direct_and_self_refusal,
    inside_auto_and_self_refusal
);

fn freeze_file(v: V) -> &'static str {
    match v {
        V::V1 => "freezer.state",
        V::V2 => "cgroup.freeze",
    }
}

/// What a pause or unpause killed halfway leaves behind is finished by the
/// next call.
fn crashed_calls_are_completed(v: V) {
    let mut target = TestCgroup::new(v);
    for _ in 0..10 {
        target.spawn("sleep", &["1000"]);
    }
    target.wait_for_procs(10);
    let dir = target.dir_str();
    let sub = target.dir.join(SUB);
    let pids = target.procs();

    // A pause that died after moving half the processes.
    fs::create_dir(&sub).expect("mkdir subgroup");
    fs::write(
        sub.join(freeze_file(v)),
        if v == V::V1 { "FROZEN" } else { "1" },
    )
    .expect("freeze");
    for pid in &pids[..5] {
        fs::write(sub.join("cgroup.procs"), pid.to_string()).expect("move");
    }
    let state = state_json(&["--cgroup", &dir]);
    assert_eq!(state["phase"], "freezing", "{state}");
    assert_eq!(state["frozen_by"], "subgroup");
    stasis(&["pause", "--cgroup", &dir]).ok();
    assert!(target.procs().is_empty());
    assert_eq!(read_pids(&sub).len(), 10);
    assert!(kernel_frozen(v, &sub));
    assert_eq!(state_json(&["--cgroup", &dir])["phase"], "frozen");

    // An unpause that died after thawing and moving half back.
    fs::write(
        sub.join(freeze_file(v)),
        if v == V::V1 { "THAWED" } else { "0" },
    )
    .expect("thaw");
    for pid in &pids[..5] {
        fs::write(target.dir.join("cgroup.procs"), pid.to_string()).expect("move back");
    }
    let state = state_json(&["--cgroup", &dir]);
    assert_eq!(state["phase"], "thawed", "{state}");
    assert_eq!(state["subgroup"], format!("{}/{SUB}", target.path()));
    stasis(&["unpause", "--cgroup", &dir]).ok();
    assert!(!sub.exists());
    assert_eq!(target.procs().len(), 10);
    stasis(&["unpause", "--cgroup", &dir]).fails_with(4, "is not paused");
}

on_v1_and_v2!(crashed_calls_are_completed, crashed_calls_are_completed);

/// A sidecar sharing the target's PID namespace pauses it by `--pid 1`:
/// `/proc/1` is the target's init, not the host's (PID 2 is no kernel
/// thread there), the cgroup is the namespace root, and the target keeps
/// forking throughout.
fn pid_1_from_a_sidecar_in_the_targets_pid_namespace(v: V) {
    let scratch = Scratch::new();
    let mut target = TestCgroup::new(v);
    let mut home = TestCgroup::new(v);
    let (counter, init) = pid_ns_forking_target(&mut target, Some(&mut home), &scratch);
    let sidecar = PidSidecar::new(&target, &home, init);
    let h = v.flag();

    let run = sidecar.stasis(&["state", "--pid", "1", "--hierarchy", h, "--format", "json"]);
    let state: serde_json::Value = serde_json::from_str(&run.ok().stdout).expect("json");
    assert_eq!(state["cgroup"], "/", "PID 1 is in the namespace root");
    assert_eq!(state["phase"], "thawed");

    // The subgroup strategy, as under nsdelegate.
    sidecar
        .stasis(&[
            "pause",
            "--pid",
            "1",
            "--hierarchy",
            h,
            "--strategy",
            "subgroup",
        ])
        .ok();
    let sub = assert_paused_in_subgroup(&target, &counter);
    // PID 1 now sits in the subgroup, yet names the paused cgroup.
    let run = sidecar.stasis(&["state", "--pid", "1", "--hierarchy", h, "--format", "json"]);
    let state: serde_json::Value = serde_json::from_str(&run.ok().stdout).expect("json");
    assert_eq!(state["cgroup"], "/");
    assert_eq!(state["frozen_by"], "subgroup");
    sidecar
        .stasis(&["pause", "--pid", "1", "--hierarchy", h])
        .fails_with(4, "is already paused");
    sidecar
        .stasis(&["unpause", "--pid", "1", "--hierarchy", h])
        .ok();
    assert!(!sub.exists(), "the subgroup is removed");
    wait_counter_moves(&counter);

    // auto: the namespace root's own freeze file (no nsdelegate here).
    sidecar
        .stasis(&["pause", "--pid", "1", "--hierarchy", h])
        .ok();
    assert!(target.kernel_frozen(&target.dir));
    assert_counter_stopped(&counter);
    sidecar
        .stasis(&["unpause", "--pid", "1", "--hierarchy", h])
        .ok();
    wait_counter_moves(&counter);
    assert!(kernel_thawed(v, &target.dir));
}

on_v1_and_v2!(
    pid_1_from_a_sidecar_sharing_the_pid_namespace,
    pid_1_from_a_sidecar_in_the_targets_pid_namespace
);

/// A process of the target outside its PID namespace (here the `unshare`
/// that made it) is invisible from the sidecar: cgroup2 lists it as PID 0,
/// which must never be written back (it would move stasis itself into the
/// frozen subgroup). The subgroup pause fails and is undone instead.
fn invisible_process_fails_the_subgroup_pause_on_v2() {
    let scratch = Scratch::new();
    let mut target = TestCgroup::new(V::V2);
    let home = TestCgroup::new(V::V2);
    // The launcher stays in the target.
    let (counter, init) = pid_ns_forking_target(&mut target, None, &scratch);
    let sidecar = PidSidecar::new(&target, &home, init);
    sidecar
        .stasis(&[
            "pause",
            "--pid",
            "1",
            "--hierarchy",
            "v2",
            "--strategy",
            "subgroup",
        ])
        .fails_with(1, "outside this PID namespace");
    assert!(kernel_thawed(V::V2, &target.dir));
    assert!(!target.dir.join(SUB).exists(), "the subgroup is removed");
    wait_counter_moves(&counter);
}

#[test]
fn invisible_process_fails_the_subgroup_pause() {
    if root_or_skip("invisible_process_fails_the_subgroup_pause") {
        invisible_process_fails_the_subgroup_pause_on_v2();
    }
}
