//! Resource limits through the `stasis` binary (root only, real kernel):
//! `--memory` ends a process that allocates more and `inspect` says it was
//! OOM-killed, `--pids-limit` stops a fork bomb, `--cpus` caps a busy loop
//! (a functional check, asserted loosely: timings belong in bench/), the
//! limits land in the kernel's files of the container's leaf and of the
//! pod's node, and docker's rules refuse bad values.

mod common;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::*;

/// A container's or pod's directory in a v1 controller's hierarchy.
fn leaf_dir(controller: &str, pod: &str, leaf: Option<&str>) -> PathBuf {
    let mut d = PathBuf::from("/sys/fs/cgroup")
        .join(controller)
        .join("stasis")
        .join(pod);
    if let Some(l) = leaf {
        d = d.join(l);
    }
    d
}

fn ids(s: &Stasis, name: &str) -> (String, String) {
    let c = s.inspect(name);
    (
        c["id"].as_str().expect("id").to_owned(),
        c["pod"].as_str().expect("pod").to_owned(),
    )
}

/// The CPU time a cgroup's tasks have used, in nanoseconds (cpuacct).
fn cpu_ns(dir: &std::path::Path) -> u64 {
    read(&dir.join("cpuacct.usage"))
        .trim()
        .parse()
        .expect("cpuacct.usage")
}

#[test]
fn memory_limit_oom_kills_and_inspect_says_so() {
    if !root_or_skip("memory_limit_oom_kills_and_inspect_says_so") {
        return;
    }
    let s = Stasis::new();
    let run = s.run(&[
        "run",
        "--name",
        "hog",
        "--memory",
        "32m",
        "--memory-swap",
        "32m",
        "--",
        "python3",
        "-c",
        "b = b'x' * (64 << 20); print('survived')",
    ]);
    assert_eq!(run.code(), 137, "killed by SIGKILL: {run:?}");
    assert!(!run.stdout.contains("survived"), "{run:?}");
    let c = s.inspect("hog");
    assert_eq!(c["State"]["OOMKilled"], true, "{c}");
    assert_eq!(c["State"]["ExitCode"], 137);
    assert_eq!(c["HostConfig"]["Memory"], 32 << 20);
    assert_eq!(c["HostConfig"]["MemorySwap"], 32 << 20);
    let events = s.run(&["events", "--since", "1m", "--until", "0s"]).ok();
    let oom = events.stdout.find("container oom").expect("an oom event");
    let die = events.stdout.find("container die").expect("a die event");
    assert!(
        oom < die,
        "docker's order: oom, then die; {}",
        events.stdout
    );

    // The same allocation fits without a limit: the limit did it.
    let fits = s.run(&[
        "run",
        "--name",
        "fits",
        "--memory",
        "256m",
        "--",
        "python3",
        "-c",
        "b = b'x' * (64 << 20); print('survived')",
    ]);
    assert_eq!(fits.code(), 0, "{fits:?}");
    assert!(fits.stdout.contains("survived"));
    assert_eq!(s.inspect("fits")["State"]["OOMKilled"], false);
}

#[test]
fn pids_limit_stops_a_fork_bomb_at_the_limit() {
    if !root_or_skip("pids_limit_stops_a_fork_bomb_at_the_limit") {
        return;
    }
    let s = Stasis::new();
    let dir = Scratch::new();
    let count = dir.0.join("count");
    // Each fork is counted after it succeeded; the shell gives up at the
    // first that fails.
    let script = format!(
        "i=0; while [ $i -lt 100 ]; do sleep 60 & i=$((i+1)); echo $i > {}; done; sleep 60",
        count.display()
    );
    s.run(&[
        "run",
        "-d",
        "--name",
        "bomb",
        "--pids-limit",
        "16",
        "--",
        "sh",
        "-c",
        &script,
    ])
    .ok();
    let (id, pod) = ids(&s, "bomb");
    let pids = leaf_dir("pids", &pod, Some(&id));
    assert_eq!(read(&pids.join("pids.max")).trim(), "16");
    wait_until(Duration::from_secs(20), "the shell to give up", || {
        s.run(&["logs", "bomb"]).stderr.contains("fork")
    });
    // The shell and 15 children: 16 tasks.
    assert_eq!(read(&count).trim(), "15", "forks that succeeded");
    let current: u64 = read(&pids.join("pids.current"))
        .trim()
        .parse()
        .expect("pids.current");
    assert!(current <= 16, "{current} tasks");
    assert_eq!(s.inspect("bomb")["HostConfig"]["PidsLimit"], 16);
    s.run(&["rm", "-f", "bomb"]).ok();
}

#[test]
fn cpus_cap_a_busy_loop_near_half_a_core() {
    if !root_or_skip("cpus_cap_a_busy_loop_near_half_a_core") {
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
        "--cpu-shares",
        "512",
        "--",
        "sh",
        "-c",
        "while :; do :; done",
    ])
    .ok();
    let (id, pod) = ids(&s, "spin");
    let cpu = leaf_dir("cpu", &pod, Some(&id));
    assert_eq!(read(&cpu.join("cpu.cfs_quota_us")).trim(), "50000");
    assert_eq!(read(&cpu.join("cpu.cfs_period_us")).trim(), "100000");
    assert_eq!(read(&cpu.join("cpu.shares")).trim(), "512");
    let acct = leaf_dir("cpuacct", &pod, Some(&id));
    let before = (cpu_ns(&acct), Instant::now());
    std::thread::sleep(Duration::from_secs(1));
    let used = (cpu_ns(&acct) - before.0) as f64 / 1e9;
    let share = used / before.1.elapsed().as_secs_f64();
    // Loosely: the kernel's quota holds it to half a core, not a whole one.
    assert!(
        (0.25..0.75).contains(&share),
        "a busy loop under --cpus 0.5 used {share:.2} of a core"
    );
    let c = s.inspect("spin");
    assert_eq!(c["HostConfig"]["NanoCpus"], 500_000_000);
    assert_eq!(c["HostConfig"]["CpuShares"], 512);
    s.run(&["rm", "-f", "spin"]).ok();
}

#[test]
fn a_pods_limits_are_on_its_node_and_shared_by_its_members() {
    if !root_or_skip("a_pods_limits_are_on_its_node_and_shared_by_its_members") {
        return;
    }
    let s = Stasis::new();
    let pod = s
        .run(&[
            "pod",
            "create",
            "--name",
            "lim",
            "--memory",
            "48m",
            "--pids-limit",
            "32",
        ])
        .ok()
        .stdout
        .trim()
        .to_owned();
    assert_eq!(
        read(&leaf_dir("memory", &pod, None).join("memory.limit_in_bytes")).trim(),
        (48u64 << 20).to_string()
    );
    assert_eq!(
        read(&leaf_dir("memory", &pod, None).join("memory.memsw.limit_in_bytes")).trim(),
        (96u64 << 20).to_string(),
        "docker's default: as much swap as memory"
    );
    assert_eq!(
        read(&leaf_dir("pids", &pod, None).join("pids.max")).trim(),
        "32"
    );
    // A member without limits of its own is held by the pod's.
    let run = s.run(&[
        "run",
        "--pod",
        "lim",
        "--name",
        "member",
        "--",
        "python3",
        "-c",
        "b = b'x' * (128 << 20); print('survived')",
    ]);
    assert_eq!(run.code(), 137, "{run:?}");
    assert_eq!(s.inspect("member")["State"]["OOMKilled"], true);
    s.run(&["pod", "rm", "-f", "lim"]).ok();
    for c in ["memory", "pids", "cpu", "cpuacct", "blkio"] {
        assert!(
            !leaf_dir(c, &pod, None).exists(),
            "the pod's {c} node is removed with it"
        );
    }
}

#[test]
fn docker_rules_refuse_bad_limits_with_one_line() {
    if !root_or_skip("docker_rules_refuse_bad_limits_with_one_line") {
        return;
    }
    let s = Stasis::new();
    let refuse = |args: &[&str], words: &str| {
        let mut all = vec!["run", "--name", "bad"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["--", "true"]);
        s.run(&all).fails_with(2, words);
    };
    refuse(&["--memory", "4m"], "6MB");
    refuse(&["--memory", "lots"], "invalid --memory");
    refuse(&["--memory-swap", "64m"], "set a memory limit");
    refuse(
        &["--memory", "64m", "--memory-swap", "32m"],
        "at least the memory limit",
    );
    refuse(&["--cpus", "1000"], "range of CPUs");
    refuse(&["--cpu-shares", "1"], "2 to 262144");
    refuse(&["--pids-limit", "-5"], "-1 for unlimited");
    s.run(&["pod", "create", "--memory", "1m"])
        .fails_with(2, "6MB");
    assert!(
        s.run(&["ps", "-aq"]).ok().stdout.trim().is_empty(),
        "nothing was made"
    );
    assert!(s.run(&["pod", "ls", "-q"]).ok().stdout.trim().is_empty());
    // -1 is unlimited, as docker takes it.
    s.run(&[
        "run",
        "--name",
        "free",
        "--memory",
        "64m",
        "--memory-swap",
        "-1",
        "--pids-limit",
        "-1",
        "--",
        "true",
    ])
    .ok();
    let c = s.inspect("free");
    assert_eq!(c["HostConfig"]["MemorySwap"], -1);
    assert_eq!(c["HostConfig"]["PidsLimit"], -1);
}

/// The path of a process's cgroup in the v1 hierarchy of `controller`
/// (`/proc/PID/cgroup`).
fn v1_cgroup_of(pid: u64, controller: &str) -> String {
    let cgroup = read(std::path::Path::new(&format!("/proc/{pid}/cgroup")));
    cgroup
        .lines()
        .find_map(|l| {
            let mut parts = l.splitn(3, ':');
            let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
            controllers
                .split(',')
                .any(|c| c == controller)
                .then(|| path.to_owned())
        })
        .unwrap_or_else(|| panic!("no {controller} line in /proc/{pid}/cgroup: {cgroup}"))
}

#[test]
fn a_pause_process_joins_the_resource_controllers_only_for_its_pods_limits() {
    if !root_or_skip("a_pause_process_joins_the_resource_controllers_only_for_its_pods_limits") {
        return;
    }
    let s = Stasis::new();
    let plain = s.run(&["pod", "create", "--name", "plain"]).ok().stdout;
    let limited = s
        .run(&["pod", "create", "--name", "limited", "--memory", "64m"])
        .ok()
        .stdout;
    s.run(&[
        "run", "-d", "--pod", "plain", "--name", "m", "--", "sleep", "1000",
    ])
    .ok();
    let pause = |pod: &str| s.pod(pod)["pause"]["pid"].as_u64().expect("pause pid");
    let (plain, limited) = (plain.trim(), limited.trim());
    for c in ["memory", "pids", "cpuacct", "blkio"] {
        // Not moved: still where its creator was, outside stasis's nodes.
        assert!(
            !v1_cgroup_of(pause("plain"), c).contains(plain),
            "{c}: the pause process of a pod without limits stays out"
        );
        assert_eq!(
            v1_cgroup_of(pause("limited"), c),
            format!("/stasis/{limited}/pause"),
            "{c}: a pod with limits holds its pause process too"
        );
    }
    let (id, _) = ids(&s, "m");
    let member = s.inspect("m")["process"]["pid"].as_u64().expect("pid");
    for c in ["memory", "pids", "cpuacct", "blkio"] {
        assert_eq!(
            v1_cgroup_of(member, c),
            format!("/stasis/{plain}/{id}"),
            "{c}: every container joins it, for stats"
        );
    }
    // The freezer still holds the whole pod.
    assert_eq!(
        v1_cgroup_of(pause("plain"), "freezer"),
        format!("/stasis/{plain}/pause")
    );
    s.run(&["pod", "rm", "-f", "plain", "limited"]).ok();
    for c in ["memory", "pids", "cpu", "cpuacct", "blkio", "freezer"] {
        for pod in [plain, limited] {
            assert!(!leaf_dir(c, pod, None).exists(), "{c} node of {pod} left");
        }
    }
}
