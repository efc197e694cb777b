//! `stats` and `top` through the `stasis` binary (root only, real kernel):
//! docker's columns, checked against the cgroup files they are read from,
//! `--format json`, and `top` showing only the container's processes.

mod common;

use std::path::PathBuf;

use common::*;

fn leaf_dir(controller: &str, s: &Stasis, name: &str) -> PathBuf {
    let c = s.inspect(name);
    PathBuf::from("/sys/fs/cgroup")
        .join(controller)
        .join("stasis")
        .join(c["pod"].as_str().expect("pod"))
        .join(c["id"].as_str().expect("id"))
}

#[test]
fn stats_no_stream_shows_what_the_cgroup_files_say() {
    if !root_or_skip("stats_no_stream_shows_what_the_cgroup_files_say") {
        return;
    }
    let s = Stasis::new();
    s.run(&[
        "run",
        "-d",
        "--name",
        "spin",
        "--cpus",
        "0.5",
        "--memory",
        "64m",
        "--",
        "sh",
        "-c",
        "while :; do :; done",
    ])
    .ok();
    s.run(&[
        "run",
        "-d",
        "--name",
        "three",
        "--",
        "sh",
        "-c",
        "sleep 100 & sleep 100 & wait",
    ])
    .ok();
    let pids = leaf_dir("pids", &s, "three").join("pids.current");
    wait_until(std::time::Duration::from_secs(10), "three tasks", || {
        read(&pids).trim() == "3"
    });
    let table = s.run(&["stats", "--no-stream"]).ok().stdout;
    let mut lines = table.lines();
    let header: Vec<&str> = lines
        .next()
        .expect("header")
        .split("   ")
        .map(str::trim)
        .filter(|h| !h.is_empty())
        .collect();
    assert_eq!(
        header,
        [
            "CONTAINER ID",
            "NAME",
            "CPU %",
            "MEM USAGE / LIMIT",
            "MEM %",
            "NET I/O",
            "BLOCK I/O",
            "PIDS"
        ]
    );
    assert_eq!(lines.count(), 2, "both running containers: {table}");

    let json = |name: &str| -> serde_json::Value {
        let out = s
            .run(&["stats", "--no-stream", "--format", "json", name])
            .ok()
            .stdout;
        serde_json::from_str(out.trim()).expect("one JSON line")
    };
    let three = json("three");
    assert_eq!(three["Name"], "three");
    assert_eq!(three["PIDs"], read(&pids).trim(), "pids.current");
    assert_eq!(three["NetIO"], "0B / 0B", "a pod has loopback only");
    let templated = s
        .run(&[
            "stats",
            "--no-stream",
            "--format",
            "table {{.Name}}\\t{{.PIDs}}",
            "three",
        ])
        .ok()
        .stdout;
    assert_eq!(templated, "NAME    PIDS\nthree   3\n");
    let plain = s
        .run(&[
            "stats",
            "--no-stream",
            "--format",
            "{{.Name}}={{.PIDs}}",
            "three",
        ])
        .ok()
        .stdout;
    assert_eq!(plain, "three=3\n");

    let spin = json("spin");
    let mem = leaf_dir("memory", &s, "spin");
    assert_eq!(read(&mem.join("memory.limit_in_bytes")).trim(), "67108864");
    let usage = spin["MemUsage"].as_str().expect("usage");
    assert!(usage.ends_with(" / 64MiB"), "the leaf's limit: {usage}");
    assert_eq!(spin["PIDs"], "1");
    // Loosely: the quota holds a busy loop near half a core.
    let cpu: f64 = spin["CPUPerc"]
        .as_str()
        .expect("cpu")
        .trim_end_matches('%')
        .parse()
        .expect("a percentage");
    assert!(
        (25.0..75.0).contains(&cpu),
        "CPU % of a busy loop under --cpus 0.5: {cpu}"
    );
    let blkio =
        read(&leaf_dir("blkio", &s, "spin").join("blkio.throttle.io_service_bytes_recursive"));
    if blkio.trim() == "Total 0" {
        assert_eq!(spin["BlockIO"], "0B / 0B");
    }

    s.run(&["stats", "--no-stream", "nosuch"])
        .fails_with(3, "no such container: nosuch");
}

#[test]
fn top_lists_only_the_containers_processes() {
    if !root_or_skip("top_lists_only_the_containers_processes") {
        return;
    }
    let s = Stasis::new();
    s.run(&[
        "run",
        "-d",
        "--name",
        "t",
        "--",
        "sh",
        "-c",
        "sleep 101 & sleep 102 & wait",
    ])
    .ok();
    let procs = leaf_dir("freezer", &s, "t").join("cgroup.procs");
    wait_until(
        std::time::Duration::from_secs(10),
        "three processes",
        || read(&procs).lines().count() == 3,
    );
    let out = s.run(&["top", "t"]).ok().stdout;
    let mut lines = out.lines();
    assert!(lines.next().expect("header").contains("PID"));
    let rows: Vec<&str> = lines.collect();
    assert_eq!(rows.len(), 3, "{out}");
    assert!(rows.iter().any(|r| r.contains("sleep 101")));
    assert!(rows.iter().any(|r| r.contains("sleep 102")));
    let custom = s.run(&["top", "t", "-o", "pid,comm"]).ok().stdout;
    assert!(
        custom.starts_with("    PID COMMAND") || custom.contains("PID COMMAND"),
        "{custom}"
    );
    assert_eq!(custom.lines().count(), 4);
    s.run(&["top", "t", "-o", "comm"])
        .fails_with(2, "couldn't find the PID field");
    s.run(&["stop", "-t", "0", "t"]).ok();
    s.run(&["top", "t"]).fails_with(4, "is not running");
}

#[test]
fn ps_and_inspect_take_dockers_formats() {
    if !root_or_skip("ps_and_inspect_take_dockers_formats") {
        return;
    }
    let s = Stasis::new();
    s.run(&[
        "run", "-d", "--name", "one", "--label", "tier=db", "--", "sleep", "100",
    ])
    .ok();
    s.run(&["run", "--name", "two", "--", "true"]).ok();
    let out = s
        .run(&[
            "ps",
            "--format",
            "{{.Names}} {{.State}} {{.Labels}} {{.Label \"tier\"}}",
        ])
        .ok()
        .stdout;
    assert_eq!(
        out, "one running tier=db db\n",
        "running ones only, as docker"
    );
    let table = s
        .run(&["ps", "-a", "--format", "table {{.Names}}\\t{{.Status}}"])
        .ok()
        .stdout;
    let mut lines = table.lines();
    assert!(lines.next().expect("header").starts_with("NAMES   "));
    assert_eq!(lines.count(), 2);
    // -l: the newest, whatever its state; {{json .}} is docker's row.
    let latest = s.run(&["ps", "-l", "--format", "{{json .}}"]).ok().stdout;
    let row: serde_json::Value = serde_json::from_str(latest.trim()).expect("json row");
    assert_eq!(row["Names"], "two");
    assert_eq!(row["State"], "exited");
    assert!(row["Status"]
        .as_str()
        .expect("status")
        .starts_with("Exited (0) "));
    let ids = s.run(&["ps", "-n", "2", "-q", "--no-trunc"]).ok().stdout;
    assert_eq!(ids.lines().count(), 2);
    assert!(ids.lines().all(|l| l.len() == 64), "{ids}");
    assert_eq!(
        s.run(&[
            "inspect",
            "-f",
            "{{.State.Status}} {{.State.Paused}} {{.Name}}",
            "one"
        ])
        .ok()
        .stdout,
        "running false /one\n"
    );
    s.run(&["pause", "one"]).ok();
    let state = s
        .run(&["inspect", "-f", "{{json .State}}", "one"])
        .ok()
        .stdout;
    let state: serde_json::Value = serde_json::from_str(state.trim()).expect("json");
    assert_eq!(state["Status"], "paused");
    assert_eq!(state["Paused"], true);
    s.run(&["inspect", "-f", "{{.State.Nope}}", "one"])
        .fails_with(2, "no field Nope in .State");
    s.run(&["ps", "--format", "{{range .}}{{end}}"])
        .fails_with(2, "is not supported");
    s.run(&["unpause", "one"]).ok();
}
