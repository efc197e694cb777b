//! The subgroup strategy under `nsdelegate` (root only, real kernel).
//!
//! `nsdelegate` is a flag of the whole cgroup2 mount, so this is its own test
//! binary: cargo runs test binaries one at a time, and nothing else runs
//! while the flag is on. The guard always switches it back off.

mod common;

use std::path::Path;

use common::*;
use rustix::mount::MountFlags;

/// Whether the cgroup2 mount has `nsdelegate` in its super options.
fn nsdelegate_is_on() -> bool {
    let mountinfo = read(Path::new("/proc/self/mountinfo"));
    let line = mountinfo
        .lines()
        .find(|l| l.split(' ').nth(4) == Some(V2_MOUNT.as_str()) && l.contains(" - cgroup2 "))
        .expect("the cgroup2 mount");
    let super_opts = line.rsplit(' ').next().unwrap_or("");
    super_opts.split(',').any(|o| o == "nsdelegate")
}

/// Turns `nsdelegate` on for the life of the guard, if it was off.
struct NsDelegate {
    was_on: bool,
}

impl NsDelegate {
    fn on() -> Self {
        let was_on = nsdelegate_is_on();
        if !was_on {
            rustix::mount::mount_remount(V2_MOUNT.as_str(), MountFlags::empty(), "nsdelegate")
                .expect("remount cgroup2 with nsdelegate");
        }
        assert!(nsdelegate_is_on(), "nsdelegate did not take");
        NsDelegate { was_on }
    }
}

impl Drop for NsDelegate {
    fn drop(&mut self) {
        if self.was_on {
            return;
        }
        // util-linux's remount re-adds the options it reads from mountinfo;
        // mount(2) with empty data clears the flag.
        let result = rustix::mount::mount_remount(V2_MOUNT.as_str(), MountFlags::empty(), "");
        let off = !nsdelegate_is_on();
        if !std::thread::panicking() {
            result.expect("remount cgroup2 without nsdelegate");
            assert!(off, "nsdelegate is still on");
        } else if !off {
            eprintln!("FAILED to switch nsdelegate off on {V2_MOUNT}: {result:?}");
        }
    }
}

#[test]
fn auto_falls_back_to_the_subgroup_under_nsdelegate() {
    if !root_or_skip("auto_falls_back_to_the_subgroup_under_nsdelegate") {
        return;
    }
    let scratch = Scratch::new();
    let mut target = TestCgroup::new(V::V2);
    let home = TestCgroup::new(V::V2);
    let counter = busy_forking_target(&mut target, &scratch);
    let _nsdelegate = NsDelegate::on();
    let sidecar = Sidecar::new(&target, &home);

    // The namespace root's own cgroup.freeze is refused...
    sidecar
        .stasis(&[
            "pause",
            "--cgroup",
            "/",
            "--hierarchy",
            "v2",
            "--strategy",
            "direct",
        ])
        .fails_with(6, "Operation not permitted");
    assert!(
        kernel_thawed(V::V2, &target.dir),
        "a refused pause leaves it thawed"
    );

    // ...so auto moves everything into a frozen child instead.
    sidecar
        .stasis(&["pause", "--cgroup", "/", "--hierarchy", "v2"])
        .ok();
    let sub = assert_paused_in_subgroup(&target, &counter);
    let run = sidecar.stasis(&[
        "state",
        "--cgroup",
        "/",
        "--hierarchy",
        "v2",
        "--format",
        "json",
    ]);
    let state: serde_json::Value = serde_json::from_str(&run.ok().stdout).expect("json");
    assert_eq!(state["frozen_by"], "subgroup");
    sidecar
        .stasis(&["pause", "--cgroup", "/", "--hierarchy", "v2"])
        .fails_with(4, "is already paused");

    sidecar
        .stasis(&["unpause", "--cgroup", "/", "--hierarchy", "v2"])
        .ok();
    assert!(!sub.exists(), "the child is removed");
    assert!(target.procs().len() >= 23);
    wait_counter_moves(&counter);
}
