//! Kubernetes pods by UID and their containers by ID, in real cgroups laid
//! out as the kubelet lays them out with either cgroup driver, holding real
//! processes (root only, v1 and v2). No kubelet runs: the layout is what
//! stasis relies on, and it is made here under a test cgroup of its own, as
//! a kubelet with `--cgroup-root` would place it.

mod common;

use std::collections::hash_map::RandomState;
use std::fs;
use std::hash::{BuildHasher, Hasher};
use std::path::{Path, PathBuf};

use common::*;

/// 64 random hex digits, as a CRI runtime makes container IDs.
fn container_id(prefix: &str) -> String {
    let mut out = prefix.to_owned();
    while out.len() < 64 {
        let mut h = RandomState::new().build_hasher();
        h.write_usize(out.len());
        out.push_str(&format!("{:016x}", h.finish()));
    }
    out.truncate(64);
    out
}

/// A container's cgroup name with the cgroupfs driver: its ID.
fn id_leaf(id: &str) -> String {
    id.to_owned()
}

/// A container's cgroup name with the systemd driver (containerd's CRI).
fn scope_leaf(id: &str) -> String {
    format!("cri-containerd-{id}.scope")
}

#[derive(Clone, Copy)]
enum Driver {
    Cgroupfs,
    Systemd,
}

/// One pod: its node, and its sandbox and app container cgroups.
struct Pod {
    uid: String,
    node: PathBuf,
    sandbox: (String, PathBuf),
    app: (String, PathBuf),
}

/// Makes a pod's cgroups below `top` with `driver`'s names; `qos` is
/// `None` for a guaranteed pod (directly under kubepods).
fn make_pod(top: &Path, driver: Driver, qos: Option<&str>, id_prefix: &str) -> Pod {
    let uid = pod_uid();
    let sandbox = container_id(&format!("{id_prefix}5a"));
    let app = container_id(&format!("{id_prefix}ab"));
    let (node, leaf) = match driver {
        Driver::Cgroupfs => {
            let mut node = top.join("kubepods");
            if let Some(q) = qos {
                node.push(q);
            }
            (
                node.join(format!("pod{uid}")),
                id_leaf as fn(&str) -> String,
            )
        }
        Driver::Systemd => {
            let underscored = uid.replace('-', "_");
            let mut node = top.join("kubepods.slice");
            let pod = match qos {
                Some(q) => {
                    node.push(format!("kubepods-{q}.slice"));
                    format!("kubepods-{q}-pod{underscored}.slice")
                }
                None => format!("kubepods-pod{underscored}.slice"),
            };
            (node.join(pod), scope_leaf as fn(&str) -> String)
        }
    };
    let sandbox_dir = node.join(leaf(&sandbox));
    let app_dir = node.join(leaf(&app));
    fs::create_dir_all(&sandbox_dir).expect("mkdir sandbox");
    fs::create_dir_all(&app_dir).expect("mkdir app");
    Pod {
        uid,
        node,
        sandbox: (sandbox, sandbox_dir),
        app: (app, app_dir),
    }
}

fn kubelet_layout(v: V, driver: Driver) {
    let scratch = Scratch::new();
    let mut root = TestCgroup::new(v);
    let h = v.flag();
    let top = root.dir.clone();
    let burstable = make_pod(&top, driver, Some("burstable"), "");
    let guaranteed = make_pod(&top, driver, None, "");
    let mut counters = Vec::new();
    for (i, pod) in [&burstable, &guaranteed].into_iter().enumerate() {
        root.spawn_in(&pod.sandbox.1, "sleep", &["1000"]);
        let counter = scratch.0.join(format!("counter-{i}"));
        root.spawn_in(
            &pod.app.1,
            "python3",
            &[&workload("counter.py"), counter.to_str().expect("utf8")],
        );
        counters.push(counter);
    }
    root.wait_for_procs(4);
    for c in &counters {
        wait_until(
            std::time::Duration::from_secs(30),
            "the counters to start",
            || fs::read_to_string(c).is_ok_and(|s| s.trim().parse::<u64>().is_ok()),
        );
    }
    let rel = |dir: &Path| {
        format!(
            "/{}",
            dir.strip_prefix(v.mount())
                .expect("below the mount")
                .display()
        )
    };

    // The whole pod in one write: the node frozen by itself, every
    // container with it; the other pod runs on.
    for (pod, counter, other) in [
        (&burstable, &counters[0], &counters[1]),
        (&guaranteed, &counters[1], &counters[0]),
    ] {
        let by_pod = ["--k8s-pod", pod.uid.as_str(), "--hierarchy", h];
        stasis(&[&["pause"][..], &by_pod].concat()).ok();
        let state = state_json(&by_pod);
        assert_eq!(state["cgroup"], rel(&pod.node), "{state}");
        assert_eq!(state["frozen_by"], "self", "{state}");
        assert!(kernel_frozen(v, &pod.node));
        assert!(kernel_frozen(v, &pod.sandbox.1) && kernel_frozen(v, &pod.app.1));
        assert_counter_stopped(counter);
        wait_counter_moves(other);
        // A container of it is frozen by the pod, and only the pod thaws it.
        let app = ["--container-id", &pod.app.0[..16], "--hierarchy", h];
        let state = state_json(&app);
        assert_eq!(state["cgroup"], rel(&pod.app.1), "{state}");
        assert_eq!(state["frozen_by"], "ancestor", "{state}");
        stasis(&[&["unpause"][..], &app].concat()).fails_with(4, "unpause that instead");
        // The systemd form's underscores work too.
        let underscored = pod.uid.replace('-', "_");
        stasis(&["unpause", "--k8s-pod", &underscored, "--hierarchy", h]).ok();
        wait_counter_moves(counter);
        assert!(kernel_thawed(v, &pod.node));
    }

    // One container by ID prefix: the sandbox next to it runs on.
    let app = ["--container-id", &burstable.app.0[..12], "--hierarchy", h];
    stasis(&[&["pause"][..], &app].concat()).ok();
    assert!(kernel_frozen(v, &burstable.app.1));
    assert!(kernel_thawed(v, &burstable.sandbox.1));
    assert_counter_stopped(&counters[0]);
    assert_eq!(state_json(&app)["cgroup"], rel(&burstable.app.1));
    stasis(&[&["unpause"][..], &app].concat()).ok();
    wait_counter_moves(&counters[0]);

    // Both pods' app containers start with "ab": the prefix is ambiguous.
    let run =
        stasis(&["pause", "--container-id", "ab", "--hierarchy", h]).fails_with(2, "is ambiguous");
    assert!(
        run.stderr.contains(&burstable.app.0) && run.stderr.contains(&guaranteed.app.0),
        "lists both: {run:?}"
    );
    stasis(&["pause", "--k8s-pod", &pod_uid(), "--hierarchy", h])
        .fails_with(3, "no such Kubernetes pod");
    stasis(&["pause", "--container-id", "../etc", "--hierarchy", h])
        .fails_with(2, "invalid container ID");

    // A container ID never names a QoS, pod or other node that holds
    // containers (state only: nothing is frozen even if it did).
    let infrastructure: Vec<String> = match driver {
        Driver::Cgroupfs => vec![
            "kubepods".into(),
            "burstable".into(),
            format!("pod{}", burstable.uid),
            format!("pod{}", guaranteed.uid),
        ],
        Driver::Systemd => vec![],
    };
    for q in &infrastructure {
        stasis(&["state", "--container-id", q, "--hierarchy", h])
            .fails_with(5, "not a container's cgroup");
    }
    // The systemd driver's nodes are slices: never container names.
    if let Driver::Systemd = driver {
        for pod in [&burstable, &guaranteed] {
            let slice = pod.node.file_name().expect("name").to_str().expect("utf8");
            stasis(&["state", "--container-id", slice, "--hierarchy", h])
                .fails_with(3, "no such container");
        }
        stasis(&[
            "state",
            "--container-id",
            "kubepods.slice",
            "--hierarchy",
            h,
        ])
        .fails_with(3, "no such container");
    }
    // The test's own top, named as if it were a container: it holds them all.
    stasis(&["state", "--container-id", &root.name, "--hierarchy", h])
        .fails_with(5, "holds the cgroups of other containers");
    stasis(&["pause", "--container-id", &root.name, "--hierarchy", h])
        .fails_with(5, "holds the cgroups of other containers");
    assert!(kernel_thawed(v, &root.dir));
}

fn cgroupfs_driver(v: V) {
    kubelet_layout(v, Driver::Cgroupfs);
}

fn systemd_driver(v: V) {
    kubelet_layout(v, Driver::Systemd);
}

on_v1_and_v2!(kubelet_cgroupfs_driver, cgroupfs_driver);
on_v1_and_v2!(kubelet_systemd_driver, systemd_driver);
