//! The agent's reconcile pass against the fake API server (kube's mock
//! client) with real pod objects, driving the real freezer on real cgroups
//! in the kubelet's cgroupfs layout (`.../kubepods/besteffort/pod<uid>`,
//! below a `stasis-test-*` parent, as a kubelet with `--cgroup-root` makes
//! it), in the v1 freezer and the cgroup2 tree of this hybrid host, with a
//! real process in each.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use common::{annotate, context, pass, pod, Fake, Scratch};
use serde_json::json;

const V1: &str = "/sys/fs/cgroup/freezer";

/// The v2 mount of this host (hybrid: `/sys/fs/cgroup/unified`).
fn v2_mount() -> PathBuf {
    let hierarchies = freezer::Hierarchies::detect(Path::new("/proc")).expect("hierarchies");
    hierarchies
        .get(freezer::Version::V2)
        .expect("a cgroup2 tree")
        .mount_point
        .clone()
}

/// A pod's cgroup in both trees with a process in it; thawed, killed and
/// removed on drop.
struct TestPod {
    uid: String,
    tops: Vec<PathBuf>,
    nodes: Vec<PathBuf>,
    child: Child,
}

impl TestPod {
    fn new() -> Self {
        let uid = testkit::pod_uid();
        let top_name = testkit::unique_name();
        let tops = vec![Path::new(V1).join(&top_name), v2_mount().join(&top_name)];
        let nodes: Vec<PathBuf> = tops
            .iter()
            .map(|t| t.join("kubepods/besteffort").join(format!("pod{uid}")))
            .collect();
        let child = Command::new("sleep")
            .arg("300")
            .spawn()
            .expect("spawn sleep");
        let pod = TestPod {
            uid,
            tops,
            nodes,
            child,
        };
        for node in &pod.nodes {
            std::fs::create_dir_all(node).expect("mkdir pod cgroup");
            std::fs::write(node.join("cgroup.procs"), pod.child.id().to_string())
                .expect("move into pod cgroup");
        }
        pod
    }

    fn v1_frozen(&self) -> bool {
        std::fs::read_to_string(self.nodes[0].join("freezer.state"))
            .expect("freezer.state")
            .trim()
            == "FROZEN"
    }

    /// Whether the pod's process still runs (a thaw must not kill it).
    fn alive(&mut self) -> bool {
        self.child.try_wait().expect("try_wait").is_none()
    }
}

impl Drop for TestPod {
    fn drop(&mut self) {
        let _ = std::fs::write(self.nodes[0].join("freezer.state"), "THAWED");
        let _ = std::fs::write(self.nodes[1].join("cgroup.freeze"), "0");
        let _ = self.child.kill();
        let _ = self.child.wait();
        for top in &self.tops {
            for rel in [
                "kubepods/besteffort/pod",
                "kubepods/besteffort",
                "kubepods",
                "",
            ] {
                let dir = if rel == "kubepods/besteffort/pod" {
                    top.join(format!("kubepods/besteffort/pod{}", self.uid))
                } else {
                    top.join(rel)
                };
                let deadline = Instant::now() + Duration::from_secs(5);
                while dir.exists()
                    && std::fs::remove_dir(&dir).is_err()
                    && Instant::now() < deadline
                {
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
        }
    }
}

#[tokio::test]
async fn pause_unpause_and_an_agent_restart_from_annotations_alone() {
    if !testkit::root_or_skip("pause_unpause_and_an_agent_restart_from_annotations_alone") {
        return;
    }
    let mut target = TestPod::new();
    let fake = Fake::new();
    fake.add(pod("default", "web", &target.uid, json!({}), None));
    let root = Scratch::new();
    let ctx = context(&fake, &root.0);

    // No stasis annotation: nothing is touched.
    pass(&fake, &ctx, "web").await;
    assert!(!target.v1_frozen());
    assert!(fake.get("pods", "default", "web").expect("pod")["metadata"]["annotations"].is_null());

    annotate(&fake, "web", json!({"stasis.dev/pause": "true"}));
    pass(&fake, &ctx, "web").await;
    assert!(target.v1_frozen(), "the pod's v1 cgroup is frozen");
    assert_eq!(
        fake.annotation("default", "web", "stasis.dev/state")
            .as_deref(),
        Some("paused")
    );
    let paused_at = fake
        .annotation("default", "web", "stasis.dev/paused-at")
        .expect("paused-at");
    let message = fake
        .annotation("default", "web", "stasis.dev/message")
        .expect("message");
    assert!(message.contains(&format!("pod{}", target.uid)), "{message}");
    assert_eq!(fake.event_reasons(), ["Paused"]);

    // A new agent (a restart) finds the pause in the annotations and keeps it.
    let restarted = context(&fake, &root.0);
    pass(&fake, &restarted, "web").await;
    assert!(target.v1_frozen());
    assert_eq!(
        fake.annotation("default", "web", "stasis.dev/paused-at"),
        Some(paused_at)
    );
    assert_eq!(fake.event_reasons(), ["Paused"], "nothing new to say");

    annotate(&fake, "web", json!({"stasis.dev/pause": null}));
    pass(&fake, &restarted, "web").await;
    assert!(!target.v1_frozen(), "thawed once the request went");
    assert!(target.alive());
    assert_eq!(
        fake.annotation("default", "web", "stasis.dev/state")
            .as_deref(),
        Some("running")
    );
    assert_eq!(
        fake.annotation("default", "web", "stasis.dev/paused-at"),
        None
    );
    assert_eq!(fake.event_reasons(), ["Paused", "Unpaused"]);
    let requests = fake.lock().requests.clone();
    assert!(
        requests
            .iter()
            .any(|r| r.starts_with("POST /apis/events.k8s.io/v1/namespaces/default/events")),
        "{requests:?}"
    );
}

#[tokio::test]
async fn a_lease_ends_the_pause_and_the_request() {
    if !testkit::root_or_skip("a_lease_ends_the_pause_and_the_request") {
        return;
    }
    let target = TestPod::new();
    let fake = Fake::new();
    fake.add(pod("default", "web", &target.uid, json!({}), None));
    annotate(
        &fake,
        "web",
        json!({"stasis.dev/pause": "true", "stasis.dev/lease": "1s"}),
    );
    let root = Scratch::new();
    let ctx = context(&fake, &root.0);
    pass(&fake, &ctx, "web").await;
    assert!(target.v1_frozen());
    // The next pass is due at the lease's end.
    let action = pass(&fake, &ctx, "web").await;
    assert!(
        format!("{action:?}").contains("requeue_after: Some("),
        "{action:?}"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while target.v1_frozen() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(300)).await;
        pass(&fake, &ctx, "web").await;
    }
    assert!(!target.v1_frozen(), "thawed at the lease's end");
    assert_eq!(
        fake.annotation("default", "web", "stasis.dev/pause"),
        None,
        "the request is removed"
    );
    assert_eq!(fake.annotation("default", "web", "stasis.dev/lease"), None);
    assert_eq!(
        fake.annotation("default", "web", "stasis.dev/state")
            .as_deref(),
        Some("running")
    );
    assert_eq!(fake.event_reasons(), ["Paused", "LeaseEnded"]);
    // And it stays thawed.
    pass(&fake, &ctx, "web").await;
    assert!(!target.v1_frozen());
}

#[tokio::test]
async fn a_pod_being_deleted_is_thawed_whoever_froze_it() {
    if !testkit::root_or_skip("a_pod_being_deleted_is_thawed_whoever_froze_it") {
        return;
    }
    let target = TestPod::new();
    let fake = Fake::new();
    fake.add(pod("default", "web", &target.uid, json!({}), None));
    let root = Scratch::new();
    let ctx = context(&fake, &root.0);
    // Frozen from outside the agent (as `stasis pause --k8s-pod` does): left alone...
    std::fs::write(target.nodes[0].join("freezer.state"), "FROZEN").expect("freeze");
    let deadline = Instant::now() + Duration::from_secs(5);
    while !target.v1_frozen() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    annotate(&fake, "web", json!({"stasis.dev/state": "running"}));
    pass(&fake, &ctx, "web").await;
    assert!(target.v1_frozen(), "not the agent's to thaw");
    // ...until the pod gets a deletion timestamp.
    fake.edit("pods", "default", "web", |p| {
        p["metadata"]["deletionTimestamp"] = json!("2026-12-02T03:00:00Z");
    });
    pass(&fake, &ctx, "web").await;
    assert!(!target.v1_frozen(), "thawed before the kubelet stops it");
    assert_eq!(fake.event_reasons(), ["ThawedForDeletion"]);
}

#[tokio::test]
async fn a_pod_without_a_cgroup_here_fails_with_a_message() {
    if !testkit::root_or_skip("a_pod_without_a_cgroup_here_fails_with_a_message") {
        return;
    }
    let fake = Fake::new();
    fake.add(pod(
        "default",
        "elsewhere",
        &testkit::pod_uid(),
        json!({}),
        None,
    ));
    fake.add(pod(
        "default",
        "bad-lease",
        &testkit::pod_uid(),
        json!({}),
        None,
    ));
    annotate(&fake, "elsewhere", json!({"stasis.dev/pause": "true"}));
    annotate(
        &fake,
        "bad-lease",
        json!({"stasis.dev/pause": "true", "stasis.dev/lease": "forever"}),
    );
    let root = Scratch::new();
    let ctx = context(&fake, &root.0);
    pass(&fake, &ctx, "elsewhere").await;
    pass(&fake, &ctx, "bad-lease").await;
    assert_eq!(
        fake.annotation("default", "elsewhere", "stasis.dev/state")
            .as_deref(),
        Some("failed")
    );
    assert_eq!(
        fake.annotation("default", "elsewhere", "stasis.dev/message")
            .as_deref(),
        Some("the pod has no cgroup on this node")
    );
    assert_eq!(
        fake.annotation("default", "bad-lease", "stasis.dev/state")
            .as_deref(),
        Some("failed")
    );
    let why = fake
        .annotation("default", "bad-lease", "stasis.dev/message")
        .expect("message");
    assert!(
        why.contains("stasis.dev/lease") && why.contains("forever"),
        "{why}"
    );
    assert_eq!(fake.event_reasons(), ["PauseFailed", "PauseFailed"]);
}
