//! Thaw before delete, on a real CRI pod (root only): a real containerd 1.6
//! with its CRI plugin (`testkit::containerd`), stasis-pause as its sandbox
//! image, a host-network pod sandbox in the kubelet's cgroupfs layout made
//! by the kubelet's calls. The agent's reconcile pass, against the fake API
//! server holding the pod's object, freezes it (the v1 freezer on this
//! hybrid host), and keeps running as passes over the pod; the pod object
//! gets a deletion timestamp, as the API server gives it before the kubelet
//! stops the pod, and the kubelet's StopPodSandbox then returns: the agent
//! thawed the pod. (Without the thaw, StopPodSandbox of a v1-frozen pod
//! cannot end it: crates/stasis/tests/cri.rs.) The call's time is printed,
//! not asserted.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{annotate, context, pass, pod, Fake, Scratch};
use k8s_cri::v1 as cri;
use serde_json::json;
use testkit::containerd::{self, Containerd};

const LIMIT: Duration = Duration::from_secs(60);

fn v1_frozen(dir: &Path) -> bool {
    std::fs::read_to_string(dir.join("freezer.state")).is_ok_and(|s| s.trim() == "FROZEN")
}

#[test]
fn stop_pod_sandbox_returns_once_the_agent_thaws_a_pod_being_deleted() {
    if !testkit::root_or_skip("stop_pod_sandbox_returns_once_the_agent_thaws_a_pod_being_deleted") {
        return;
    }
    let _one = containerd::one_at_a_time();
    let built = Path::new(env!("CARGO_BIN_EXE_stasis-agent"));
    let pause = testkit::pause_artifact(built);
    let stasis = testkit::stasis_binary(built);
    let scratch = Scratch::new();
    let state_root = Scratch::new();
    let image = format!("localhost/{}:1", testkit::unique_name());
    let archive = scratch.0.join("pause.tar");
    let made = testkit::run_bounded(
        Command::new(stasis)
            .args(["sandbox-image", "--output"])
            .arg(&archive)
            .arg("--pause")
            .arg(pause)
            .args(["--name", &image]),
    );
    assert_eq!(made.code(), 0, "stasis sandbox-image: {}", made.stderr);
    let mut ctd = Containerd::start(
        &scratch.0,
        Some(&containerd::cri_section(&scratch.0, &image)),
    );
    ctd.import(&archive, &image);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        let mut client = ctd.runtime_client().await;
        let uid = testkit::pod_uid();
        let config = containerd::host_network_pod("agent-test", &uid, ctd.cgroup_parent(), &scratch.0.join("logs"));
        let sandbox = tokio::time::timeout(
            LIMIT,
            client.run_pod_sandbox(cri::RunPodSandboxRequest {
                config: Some(config),
                runtime_handler: String::new(),
            }),
        )
        .await
        .expect("RunPodSandbox in time")
        .expect("RunPodSandbox")
        .into_inner()
        .pod_sandbox_id;
        let status = client
            .pod_sandbox_status(cri::PodSandboxStatusRequest {
                pod_sandbox_id: sandbox.clone(),
                verbose: true,
            })
            .await
            .expect("PodSandboxStatus")
            .into_inner();
        let pid = containerd::sandbox_pid(&status);
        let artifact = std::fs::read(pause).expect("the artifact");
        testkit::wait_until(Duration::from_secs(10), "the sandbox runs stasis-pause", || {
            std::fs::read(format!("/proc/{pid}/exe")).is_ok_and(|exe| exe == artifact)
        });
        let node = Path::new("/sys/fs/cgroup/freezer")
            .join(ctd.cgroup_parent().trim_start_matches('/'))
            .join(format!("kubepods/besteffort/pod{uid}"));

        let fake = Fake::new();
        fake.add(pod("default", "web", &uid, json!({}), None));
        annotate(&fake, "web", json!({"stasis.dev/pause": "true"}));
        let ctx = context(&fake, &state_root.0);
        pass(&fake, &ctx, "web").await;
        assert!(v1_frozen(&node), "the agent froze the CRI pod at {}", node.display());
        assert_eq!(fake.annotation("default", "web", "stasis.dev/state").as_deref(), Some("paused"));

        // The agent keeps running: a pass over the pod every 100 ms, as the
        // controller makes one on each change of it.
        let agent = {
            let (fake, ctx) = (fake.clone(), ctx.clone());
            tokio::spawn(async move {
                loop {
                    pass(&fake, &ctx, "web").await;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            })
        };
        // `kubectl delete pod`: the API server sets the deletion timestamp,
        // then the kubelet stops the pod's sandbox.
        fake.edit("pods", "default", "web", |p| {
            p["metadata"]["deletionTimestamp"] = json!("2026-12-02T03:00:00Z");
        });
        let start = Instant::now();
        let stopped = tokio::time::timeout(
            Duration::from_secs(40),
            client.stop_pod_sandbox(cri::StopPodSandboxRequest {
                pod_sandbox_id: sandbox.clone(),
            }),
        )
        .await;
        let took = start.elapsed();
        let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
        eprintln!(
            "StopPodSandbox of a v1-frozen pod being deleted, with the agent running: {took:.2?} (load {})",
            load.split_whitespace().next().unwrap_or("?")
        );
        agent.abort();
        let _ = agent.await;
        assert!(matches!(stopped, Ok(Ok(_))), "StopPodSandbox: {stopped:?}");
        testkit::wait_until(Duration::from_secs(10), "stasis-pause has ended", || {
            !Path::new(&format!("/proc/{pid}")).exists()
        });
        assert!(!v1_frozen(&node), "thawed");
        assert!(fake.event_reasons().contains(&"ThawedForDeletion".to_owned()), "{:?}", fake.event_reasons());
        tokio::time::timeout(
            LIMIT,
            client.remove_pod_sandbox(cri::RemovePodSandboxRequest {
                pod_sandbox_id: sandbox,
            }),
        )
        .await
        .expect("RemovePodSandbox in time")
        .expect("RemovePodSandbox");
    });
}
