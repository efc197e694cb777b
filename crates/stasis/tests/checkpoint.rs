//! Checkpoint and restore with CRIU, through the `stasis` binary (root
//! only, real kernel, the CRIU that scripts/install-criu.sh installs, or
//! the one `STASIS_CRIU` names): a counting container brought back where it
//! stopped, a paused one checkpointed and left paused with its copy beside
//! it, an exported archive restored after the original was removed, an
//! established loopback connection kept, and the refusals.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::*;

/// Counts in memory (a shell variable), writes the count to /count and to
/// its log, and every fifth count prints the digest of a random blob it
/// holds in memory and its PID inside.
const COUNTER: &str = "blob=$(head -c 60000 /dev/urandom | od -An -tx1 | tr -d ' \\n'); \
    i=0; while :; do i=$((i+1)); echo $i > /count; echo \"count $i\"; \
    if [ $((i % 5)) = 0 ]; then echo \"digest $(echo \"$blob\" | md5sum | cut -c1-32) pid $$\"; fi; \
    sleep 0.05; done";

/// The counts and digests a counter's log holds, in order.
fn counts(log: &str) -> Vec<u64> {
    log.lines()
        .filter_map(|l| l.strip_prefix("count "))
        .filter_map(|n| n.trim().parse().ok())
        .collect()
}

fn digests(log: &str) -> Vec<String> {
    log.lines()
        .filter_map(|l| l.strip_prefix("digest "))
        .map(str::to_owned)
        .collect()
}

/// Every count follows the one before it: nothing started again from 1,
/// nothing is missing from the log.
fn assert_consecutive(counts: &[u64]) {
    assert_eq!(counts.first(), Some(&1), "{counts:?}");
    for w in counts.windows(2) {
        assert_eq!(w[1], w[0] + 1, "consecutive counts: {counts:?}");
    }
}

fn pid_of(stasis: &Stasis, name: &str) -> u32 {
    stasis.inspect(name)["State"]["Pid"]
        .as_u64()
        .expect("a pid") as u32
}

/// A process's PIDs from the host's namespace inward (`NSpid`).
fn ns_pids(pid: u32) -> Vec<u32> {
    read(Path::new(&format!("/proc/{pid}/status")))
        .lines()
        .find_map(|l| l.strip_prefix("NSpid:"))
        .map(|v| {
            v.split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// Waits (bounded) until the counter's log holds a count past `n`.
fn wait_count_past(stasis: &Stasis, name: &str, n: u64) -> String {
    let mut last = String::new();
    wait_until(
        Duration::from_secs(30),
        &format!("{name} to count past {n}"),
        || {
            last = stasis.run(&["logs", name]).stdout;
            counts(&last).last().is_some_and(|c| *c > n)
        },
    );
    last
}

fn read_count(rootfs: &Path) -> u64 {
    read(&rootfs.join("count")).trim().parse().expect("a count")
}

/// The container's leaf in the v1 freezer.
fn freezer_leaf(stasis: &Stasis, name: &str) -> PathBuf {
    let c = stasis.inspect(name);
    Path::new(V1_MOUNT.as_str())
        .join("stasis")
        .join(c["pod"].as_str().expect("pod"))
        .join(c["id"].as_str().expect("id"))
}

fn start_counter(stasis: &Stasis, name: &str, rootfs: &Path) {
    stasis
        .run(&[
            "run",
            "-d",
            "--name",
            name,
            "--rootfs",
            rootfs.to_str().expect("utf-8"),
            "--",
            "/bin/sh",
            "-c",
            COUNTER,
        ])
        .ok();
    wait_count_past(stasis, name, 10);
}

#[test]
fn a_checkpointed_container_stops_and_its_restore_counts_on_from_where_it_stopped() {
    if !root_or_skip(
        "a_checkpointed_container_stops_and_its_restore_counts_on_from_where_it_stopped",
    ) {
        return;
    }
    let scratch = Scratch::new();
    let rootfs = busybox_root(&scratch);
    let stasis = Stasis::new();
    let name = &unique_name();
    start_counter(&stasis, name, &rootfs);
    let before = pid_of(&stasis, name);
    let inside = ns_pids(before);
    assert_eq!(inside.len(), 2, "its own PID namespace: {inside:?}");

    let run = stasis.run(&["checkpoint", name]).ok();
    assert_eq!(run.stdout.trim(), name);
    let c = stasis.inspect(name);
    assert_eq!(c["status"], "exited", "{c}");
    assert_eq!(c["exit"]["checkpointed"], true, "{c}");
    assert!(c["checkpoint"]["size"].as_u64().expect("size") > 0, "{c}");
    assert!(!Path::new(&format!("/proc/{before}")).exists(), "it ended");
    let stopped_at = read_count(&rootfs);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        read_count(&rootfs),
        stopped_at,
        "nothing counts while checkpointed"
    );
    let ps = stasis.run(&["ps", "-a"]).ok().stdout;
    assert!(ps.contains("(checkpointed)"), "{ps}");

    stasis.run(&["restore", name]).ok();
    let log = wait_count_past(&stasis, name, stopped_at + 10);
    let after = pid_of(&stasis, name);
    assert_eq!(
        ns_pids(after).last(),
        inside.last(),
        "the same PID inside its namespace"
    );
    let counted = counts(&log);
    assert_consecutive(&counted);
    assert!(counted.contains(&(stopped_at + 1)), "on from {stopped_at}");
    let digests = digests(&log);
    assert!(digests.len() >= 4, "{log}");
    assert!(
        digests.iter().all(|d| d == &digests[0]),
        "the blob in memory is unchanged: {digests:?}"
    );
    assert!(digests[0].ends_with("pid 1"), "{digests:?}");
    let c = stasis.inspect(name);
    assert_eq!(c["status"], "running", "{c}");
    assert_eq!(
        c["monitor"]["pid"].as_u64().map(|p| p as u32),
        read(Path::new(&format!("/proc/{after}/stat")))
            .rsplit(')')
            .next()
            .and_then(|rest| rest.split_whitespace().nth(1))
            .and_then(|p| p.parse().ok()),
        "its monitor is its parent"
    );
    let procs = read(&freezer_leaf(&stasis, name).join("cgroup.procs"));
    assert!(
        procs.lines().any(|p| p == after.to_string()),
        "in its leaf: {procs}"
    );
}

#[test]
fn leave_running_keeps_a_paused_container_paused_and_its_copy_runs_beside_it() {
    if !root_or_skip("leave_running_keeps_a_paused_container_paused_and_its_copy_runs_beside_it") {
        return;
    }
    let scratch = Scratch::new();
    let rootfs = busybox_root(&scratch);
    let stasis = Stasis::new();
    let name = &unique_name();
    let copy = &format!("{name}-copy");
    start_counter(&stasis, name, &rootfs);
    stasis.run(&["pause", name]).ok();
    let leaf = freezer_leaf(&stasis, name);
    stasis.run(&["checkpoint", "--leave-running", name]).ok();
    assert_eq!(stasis.inspect(name)["status"], "paused");
    assert_eq!(read(&leaf.join("freezer.state")).trim(), "FROZEN");
    let paused_at = read_count(&rootfs);
    let original_log = stasis.run(&["logs", name]).ok().stdout;

    stasis.run(&["restore", "--name", copy, name]).ok();
    let log = wait_count_past(&stasis, copy, paused_at + 10);
    assert_eq!(stasis.inspect(name)["status"], "paused", "still paused");
    assert_eq!(stasis.inspect(copy)["status"], "running");
    assert_eq!(
        stasis.run(&["logs", name]).ok().stdout,
        original_log,
        "the original did not move"
    );
    let counted = counts(&log);
    assert!(
        counted.first().is_some_and(|c| *c > 10),
        "the copy counts on from the checkpoint: {counted:?}"
    );
    stasis.run(&["rm", "-f", copy]).ok();
    stasis.run(&["unpause", name]).ok();
    let mut last = original_log.clone();
    wait_until(
        Duration::from_secs(30),
        "the original to count again",
        || {
            last = stasis.run(&["logs", name]).stdout;
            counts(&last).len() > counts(&original_log).len()
        },
    );
    assert_consecutive(&counts(&last));

    // Paused and not left running: it ends frozen, its empty leaf thawed;
    // `restore --paused` brings it back frozen.
    stasis.run(&["pause", name]).ok();
    stasis.run(&["checkpoint", name]).ok();
    assert_eq!(stasis.inspect(name)["status"], "exited");
    assert_eq!(read(&leaf.join("freezer.state")).trim(), "THAWED");
    let at = read_count(&rootfs);
    stasis.run(&["restore", "--paused", name]).ok();
    assert_eq!(stasis.inspect(name)["status"], "paused");
    assert_eq!(read(&leaf.join("freezer.state")).trim(), "FROZEN");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(read_count(&rootfs), at, "restored frozen");
    stasis.run(&["unpause", name]).ok();
    let log = wait_count_past(&stasis, name, at + 5);
    assert_consecutive(&counts(&log));
}

#[test]
fn an_exported_archive_is_restored_after_the_original_was_removed_twice() {
    if !root_or_skip("an_exported_archive_is_restored_after_the_original_was_removed_twice") {
        return;
    }
    let scratch = Scratch::new();
    let rootfs = busybox_root(&scratch);
    let stasis = Stasis::new();
    let name = &unique_name();
    let second = &format!("{name}-2");
    start_counter(&stasis, name, &rootfs);
    let archive = scratch.0.join("checkpoint.tar");
    let archive_str = archive.to_str().expect("utf-8");
    stasis
        .run(&["checkpoint", "--export", archive_str, name])
        .ok();
    let stopped_at = read_count(&rootfs);
    stasis.run(&["rm", name]).ok();
    assert!(stasis.run(&["inspect", name]).code() != 0, "removed");

    let run = stasis.run(&["restore", "--import", archive_str]).ok();
    assert_eq!(run.stdout.trim(), name, "its own name again");
    let log = wait_count_past(&stasis, name, stopped_at + 5);
    assert!(
        counts(&log).first().is_some_and(|c| *c > 10),
        "on from the checkpoint: {log}"
    );
    stasis
        .run(&["restore", "--import", archive_str, "--name", second])
        .ok();
    wait_count_past(&stasis, second, stopped_at + 5);
    assert_eq!(stasis.inspect(name)["status"], "running");
    assert_eq!(stasis.inspect(second)["status"], "running");
    assert_ne!(
        stasis.inspect(name)["pod"],
        stasis.inspect(second)["pod"],
        "each in a pod of its own, made the same way"
    );
}

#[test]
fn an_established_loopback_connection_survives_checkpoint_and_restore() {
    if !root_or_skip("an_established_loopback_connection_survives_checkpoint_and_restore") {
        return;
    }
    let scratch = Scratch::new();
    let rootfs = busybox_root(&scratch);
    let stasis = Stasis::new();
    let name = &unique_name();
    // A server and a client in the pod: the server prints what the client
    // sends over one connection, a line every 50 ms.
    let script = "(sleep 100000 | nc -l -p 5000) & sleep 0.5; \
        i=0; while :; do i=$((i+1)); echo \"count $i\"; sleep 0.05; done | nc 127.0.0.1 5000; \
        echo \"client ended $?\"";
    let root = rootfs.to_str().expect("utf-8");
    stasis
        .run(&[
            "run", "-d", "--name", name, "--rootfs", root, "--", "/bin/sh", "-c", script,
        ])
        .ok();
    wait_count_past(&stasis, name, 5);
    stasis
        .run(&["checkpoint", name])
        .fails_with(1, "--tcp-established");
    assert_eq!(
        stasis.inspect(name)["status"],
        "running",
        "a failed dump resumes it"
    );
    let run = stasis.run(&["checkpoint", "--tcp-established", name]);
    assert!(
        !run.stderr.contains("Can't get 1:16 opt"),
        "this CRIU cannot dump a TCP socket on Linux 6.16 or later (SO_PASSCRED): \
         install it with scripts/install-criu.sh, which applies scripts/criu-sockopts.patch; \
         {run:?}"
    );
    run.ok();
    let log = stasis.run(&["logs", name]).ok().stdout;
    let stopped_at = *counts(&log).last().expect("counted");
    stasis.run(&["restore", name]).ok();
    let log = wait_count_past(&stasis, name, stopped_at + 10);
    assert!(!log.contains("client ended"), "{log}");
    assert_consecutive(&counts(&log));
}

#[test]
fn what_cannot_be_checkpointed_or_restored_is_refused_in_one_line() {
    if !root_or_skip("what_cannot_be_checkpointed_or_restored_is_refused_in_one_line") {
        return;
    }
    let scratch = Scratch::new();
    let rootfs = busybox_root(&scratch);
    let root = rootfs.to_str().expect("utf-8");
    let stasis = Stasis::new();
    let base = unique_name();

    // stasis-pause is PID 1 of a container run with --init.
    let init = &format!("{base}-init");
    stasis
        .run(&[
            "run", "-d", "--init", "--name", init, "--rootfs", root, "--", "sleep", "1000",
        ])
        .ok();
    stasis
        .run(&["checkpoint", init])
        .fails_with(4, "a PID namespace of its own");
    assert_eq!(stasis.inspect(init)["status"], "running");

    let host_root = &format!("{base}-host");
    stasis
        .run(&["run", "-d", "--name", host_root, "--", "sleep", "1000"])
        .ok();
    stasis
        .run(&["checkpoint", host_root])
        .fails_with(4, "a root filesystem of its own");

    let counter = &format!("{base}-count");
    start_counter(&stasis, counter, &rootfs);
    let run = run_bounded(
        stasis
            .command(&["checkpoint", counter])
            .env("STASIS_CRIU", "/nonexistent/criu"),
    );
    run.fails_with(3, "no CRIU at /nonexistent/criu");
    let c = stasis.inspect(counter);
    assert_eq!(c["status"], "running", "{c}");
    assert!(c["checkpoint"].is_null(), "{c}");
    stasis
        .run(&["restore", counter])
        .fails_with(4, "is running: restore brings back an exited container");

    // A corrupted image: CRIU's error and its log, nothing half-restored.
    let archive = scratch.0.join("good.tar");
    stasis
        .run(&[
            "checkpoint",
            "--export",
            archive.to_str().expect("utf-8"),
            counter,
        ])
        .ok();
    let dir = PathBuf::from(
        stasis.inspect(counter)["checkpoint"]["dir"]
            .as_str()
            .expect("dir"),
    );
    let core = dir.join("images/core-1.img");
    let good = std::fs::read(&core).expect("core image");
    std::fs::write(&core, b"not a CRIU image at all").expect("corrupt");
    let run = stasis
        .run(&["restore", counter])
        .fails_with(1, "criu restore of container");
    assert!(
        run.stderr.contains("Head magic"),
        "CRIU's own words: {run:?}"
    );
    let log = run
        .stderr
        .rsplit("its log is ")
        .next()
        .map(|p| PathBuf::from(p.trim()))
        .expect("a log");
    assert!(log.is_file(), "{run:?}");
    let c = stasis.inspect(counter);
    assert_eq!(c["status"], "exited", "{c}");
    assert_eq!(
        read(&freezer_leaf(&stasis, counter).join("cgroup.procs")).trim(),
        "",
        "no process left in its leaf"
    );
    let pod = stasis.pod(c["pod_name"].as_str().expect("pod"));
    assert_eq!(pod["status"], "exited", "its own pod ended again: {pod}");

    // The same corruption in an archive: the new container goes again.
    let unpacked = scratch.0.join("unpacked");
    std::fs::create_dir_all(&unpacked).expect("mkdir");
    run_bounded(
        std::process::Command::new("tar")
            .arg("-xf")
            .arg(&archive)
            .arg("-C")
            .arg(&unpacked),
    )
    .ok();
    std::fs::write(unpacked.join("images/core-1.img"), b"garbage").expect("corrupt");
    let bad = scratch.0.join("bad.tar");
    run_bounded(
        std::process::Command::new("tar")
            .arg("-cf")
            .arg(&bad)
            .arg("-C")
            .arg(&unpacked)
            .arg("checkpoint.json")
            .arg("images"),
    )
    .ok();
    let copy = &format!("{base}-copy");
    stasis
        .run(&[
            "restore",
            "--import",
            bad.to_str().expect("utf-8"),
            "--name",
            copy,
        ])
        .fails_with(1, "criu restore of container");
    assert!(stasis.run(&["inspect", copy]).code() != 0, "removed again");
    let pods = stasis.run(&["pod", "ls"]).ok().stdout;
    assert!(!pods.contains(copy.as_str()), "its pod too: {pods}");

    // The good image brings it back.
    std::fs::write(&core, good).expect("restore the image");
    stasis.run(&["restore", counter]).ok();
    assert_eq!(stasis.inspect(counter)["status"], "running");
}
