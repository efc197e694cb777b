//! `stasis sandbox-image` through the binary: its refusals, a reproducible
//! archive that `stasis image load` takes, and (root only) the real
//! containerd 1.6 importing it and running it as a task whose PID 1 is
//! stasis-pause, ended by SIGTERM with status 0. The CRI plugin's pods on
//! it are `tests/cri.rs`.

mod common;

use std::path::Path;
use std::time::Duration;

use common::*;
use testkit::containerd::{self, Containerd};

#[test]
fn the_archive_is_reproducible_small_and_loads_with_entrypoint_pause() {
    let s = Stasis::new();
    let scratch = Scratch::new();
    let (a, b) = (scratch.0.join("a.tar"), scratch.0.join("b.tar"));
    sandbox_image(&s, &a, None).ok();
    sandbox_image(&s, &b, None).ok();
    let (a_bytes, b_bytes) = (std::fs::read(&a).expect("a"), std::fs::read(&b).expect("b"));
    assert_eq!(a_bytes, b_bytes, "two builds of one binary differ");
    // The pause artifact is a few KB; the archive adds JSON and tar blocks.
    assert!(a_bytes.len() < 24 * 1024, "{} bytes", a_bytes.len());

    if !root_or_skip("the_archive_is_reproducible_small_and_loads_with_entrypoint_pause") {
        return;
    }
    let name = format!("localhost/{}:1", unique_name());
    let named = scratch.0.join("named.tar");
    sandbox_image(&s, &named, Some(&name)).ok();
    let loaded = s
        .run(&["image", "load", "-i", named.to_str().expect("utf-8")])
        .ok();
    assert!(
        loaded.stdout.contains(&format!("Loaded image: {name}")),
        "{loaded:?}"
    );
    let inspect: serde_json::Value =
        serde_json::from_str(&s.run(&["image", "inspect", &name]).ok().stdout).expect("json");
    assert_eq!(
        inspect[0]["Config"]["Entrypoint"],
        serde_json::json!(["/pause"])
    );
    assert_eq!(inspect[0]["Config"]["User"], "65535:65535");
    assert_eq!(inspect[0]["Architecture"], "amd64");
    s.run(&["image", "rm", &name]).ok();
}

#[test]
fn a_missing_or_dynamic_binary_and_a_bad_name_are_refused() {
    let s = Stasis::new();
    let scratch = Scratch::new();
    let out = scratch.0.join("x.tar");
    let out = out.to_str().expect("utf-8");
    s.run(&["sandbox-image", "-o", out, "--pause", "/nonexistent/pause"])
        .fails_with(3, "no such file: /nonexistent/pause");
    s.run(&["sandbox-image", "-o", out, "--pause", "/bin/sh"])
        .fails_with(2, "is not a static x86-64 ELF executable");
    let pause = pause_binary().to_str().expect("utf-8");
    s.run(&[
        "sandbox-image",
        "-o",
        out,
        "--pause",
        pause,
        "--name",
        "No Such",
    ])
    .fails_with(2, "invalid image reference");
    assert!(!Path::new(out).exists(), "a refused build wrote {out}");
}

#[test]
fn containerd_imports_the_image_and_runs_stasis_pause_as_its_pid_1() {
    if !root_or_skip("containerd_imports_the_image_and_runs_stasis_pause_as_its_pid_1") {
        return;
    }
    let _one = containerd::one_at_a_time();
    let s = Stasis::new();
    let scratch = Scratch::new();
    let name = format!("localhost/{}:1", unique_name());
    let archive = scratch.0.join("pause.tar");
    sandbox_image(&s, &archive, Some(&name)).ok();

    // Declared after the scratch directory: dropped (stopped) before it.
    let mut ctd = Containerd::start(&scratch.0, None);
    ctd.import(&archive, &name);

    let id = unique_name();
    let cgroup = format!("{}/{id}", ctd.cgroup_parent());
    let started = ctd.ctr(&["run", "-d", "--cgroup", &cgroup, &name, &id]);
    assert!(started.status.success(), "{started:?}");
    let mut pid = 0u32;
    wait_until(Duration::from_secs(20), "the task runs", || {
        let ls = ctd.ctr(&["task", "ls"]).stdout;
        let found = ls.lines().find_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.first() == Some(&id.as_str()) && f.get(2) == Some(&"RUNNING"))
                .then(|| f[1].parse().ok())
                .flatten()
        });
        pid = found.unwrap_or(0);
        pid != 0
    });

    // The task's process is stasis-pause itself, PID 1 of its namespace,
    // as the image's user.
    wait_until_pause_runs(pid);
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    let field = |k: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(k))
            .map(|v| v.split_whitespace().collect::<Vec<_>>())
            .unwrap_or_default()
    };
    assert_eq!(field("NSpid:").last(), Some(&"1"), "{status}");
    assert_eq!(field("Uid:").first(), Some(&"65535"), "{status}");

    let killed = ctd.ctr(&["task", "kill", "-s", "SIGTERM", &id]);
    assert!(killed.status.success(), "{killed:?}");
    wait_until(Duration::from_secs(20), "the task stops", || {
        ctd.ctr(&["task", "ls"]).stdout.lines().any(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.first() == Some(&id.as_str()) && f.last() == Some(&"STOPPED")
        })
    });
    // `ctr task delete` exits with the task's status.
    let deleted = ctd.ctr(&["task", "delete", &id]);
    assert!(
        deleted.status.success(),
        "SIGTERM did not end it with 0: {deleted:?}"
    );
    ctd.ctr(&["container", "rm", &id]).ok();
    ctd.ctr(&["images", "rm", &name]).ok();
}
