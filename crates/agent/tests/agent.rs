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
        Self::running(Command::new("sleep").arg("300"))
    }

    /// A pod whose process runs `command`.
    fn running(command: &mut Command) -> Self {
        let uid = testkit::pod_uid();
        let top_name = testkit::unique_name();
        let tops = vec![Path::new(V1).join(&top_name), v2_mount().join(&top_name)];
        let nodes: Vec<PathBuf> = tops
            .iter()
            .map(|t| t.join("kubepods/besteffort").join(format!("pod{uid}")))
            .collect();
        let child = command.spawn().expect("spawn the pod's process");
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
    // Tried again, the same failure is neither patched nor told again.
    let patches = |f: &Fake| {
        f.lock()
            .requests
            .iter()
            .filter(|r| r.starts_with("PATCH"))
            .count()
    };
    let before = patches(&fake);
    let action = pass(&fake, &ctx, "elsewhere").await;
    assert_eq!(patches(&fake), before);
    assert_eq!(fake.event_reasons().len(), 2);
    assert!(
        format!("{action:?}").contains("30s"),
        "retried soon: {action:?}"
    );
}

/// The TCP echo server the CLI's reset tests use.
const TCP_ECHO: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../stasis/tests/workloads/tcp_echo.py"
);

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

/// A connection to the pod's server, once it listens (bounded).
fn connect(port: u16) -> std::net::TcpStream {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match std::net::TcpStream::connect(("127.0.0.1", port)) {
            Ok(s) => {
                s.set_read_timeout(Some(Duration::from_secs(10)))
                    .expect("timeout");
                return s;
            }
            Err(e) if Instant::now() > deadline => panic!("connect to {port}: {e}"),
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}

fn echo(stream: &mut std::net::TcpStream, line: &str) -> std::io::Result<String> {
    use std::io::{BufRead, Write};
    stream.write_all(format!("{line}\n").as_bytes())?;
    let mut reply = String::new();
    std::io::BufReader::new(stream.try_clone()?).read_line(&mut reply)?;
    Ok(reply.trim_end().to_owned())
}

#[tokio::test]
async fn reset_connections_resets_and_fences_until_the_unpause() {
    if !testkit::root_or_skip("reset_connections_resets_and_fences_until_the_unpause") {
        return;
    }
    let port = free_port();
    let target =
        TestPod::running(Command::new("python3").args([TCP_ECHO, "127.0.0.1", &port.to_string()]));
    let mut client = connect(port);
    assert_eq!(echo(&mut client, "a").expect("echo"), "a");
    let fake = Fake::new();
    fake.add(pod("default", "web", &target.uid, json!({}), None));
    annotate(
        &fake,
        "web",
        json!({"stasis.dev/pause": "true", "stasis.dev/reset-connections": "true"}),
    );
    let root = Scratch::new();
    let ctx = context(&fake, &root.0);
    pass(&fake, &ctx, "web").await;
    assert!(target.v1_frozen());
    let message = fake
        .annotation("default", "web", "stasis.dev/message")
        .expect("message");
    assert!(
        message.contains("refused until it is unpaused") && message.contains(&port.to_string()),
        "{message}"
    );
    // The frozen server's end was destroyed, and a new connection is
    // refused at once instead of hanging in the frozen listener's queue.
    let mut buf = [0u8; 8];
    let read = std::io::Read::read(&mut client, &mut buf);
    assert_eq!(
        read.map_err(|e| e.kind()),
        Err(std::io::ErrorKind::ConnectionReset)
    );
    let refused = std::net::TcpStream::connect(("127.0.0.1", port)).expect_err("fenced");
    assert_eq!(refused.kind(), std::io::ErrorKind::ConnectionRefused);
    assert_eq!(
        std::fs::read_dir(root.0.join("fences"))
            .expect("fences")
            .count(),
        1
    );

    // A restarted agent lifts the fence from the record when it thaws.
    annotate(&fake, "web", json!({"stasis.dev/pause": null}));
    let restarted = context(&fake, &root.0);
    pass(&fake, &restarted, "web").await;
    assert!(!target.v1_frozen());
    let mut again = connect(port);
    assert_eq!(echo(&mut again, "b").expect("echo"), "b");
    assert_eq!(
        std::fs::read_dir(root.0.join("fences"))
            .expect("fences")
            .count(),
        0
    );
}
