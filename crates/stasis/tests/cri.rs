//! CRI pods on the stasis-pause sandbox image, driven as the kubelet drives
//! them (root only): a real containerd 1.6 with its CRI plugin on a private
//! socket (`testkit::containerd`), the image as its `sandbox_image`, and the
//! kubelet's calls made by a Rust CRI client. Pods use the kubelet's
//! cgroupfs parents (`.../kubepods/besteffort/pod<uid>`), host networking
//! (no CNI) and a PID namespace shared by the pod (`shareProcessNamespace`),
//! and run a busybox container from an image imported into `k8s.io`.
//!
//! - the sandbox's process is stasis-pause, PID 1 of the pod, and reaps the
//!   orphan a container leaves; nothing is left after removal;
//! - `stasis pause --k8s-pod UID` freezes the sandbox and the container in
//!   one write at the pod's node, in the v1 freezer and in the v2 tree, and
//!   `unpause` thaws them;
//! - StopPodSandbox of a pod frozen with the v1 freezer cannot end it until
//!   it is thawed (a v2 freeze lets the kill through): why the node agent
//!   thaws a pod before its deletion. How long the call takes is printed,
//!   not asserted.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::*;
use k8s_cri::v1 as cri;
use testkit::containerd::{self, Containerd, RuntimeClient};

/// A containerd with the CRI plugin whose sandbox image is stasis-pause,
/// and a busybox image; dropped (stopped, cleaned) before the scratch
/// directory that holds it.
struct Cri {
    ctd: Containerd,
    pause_image: String,
    busybox: String,
    scratch: Scratch,
}

impl Cri {
    fn start() -> Self {
        let s = Stasis::new();
        let scratch = Scratch::new();
        let pause_image = format!("localhost/{}:1", unique_name());
        let archive = scratch.0.join("pause.tar");
        sandbox_image(&s, &archive, Some(&pause_image)).ok();
        let busybox_archive = scratch.0.join("busybox.tar");
        let base = archives::busybox_tar(&scratch.0);
        std::fs::write(
            &busybox_archive,
            archives::docker_save(&base, &archives::top_layer()),
        )
        .expect("write the busybox archive");
        let mut ctd = Containerd::start(
            &scratch.0,
            Some(&containerd::cri_section(&scratch.0, &pause_image)),
        );
        ctd.import(&archive, &pause_image);
        // `docker save`'s tag `saved:1`, as containerd normalizes it.
        let busybox = "docker.io/library/saved:1".to_owned();
        ctd.import(&busybox_archive, &busybox);
        Cri {
            ctd,
            pause_image,
            busybox,
            scratch,
        }
    }

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime")
    }
}

/// A running pod: its sandbox, one busybox container, and where the
/// kubelet's cgroupfs driver put them.
struct Pod {
    uid: String,
    sandbox: String,
    pid: u32,
    container: String,
    /// `/<containerd's parent>/kubepods/besteffort/pod<uid>`.
    node: String,
}

impl Pod {
    fn dir(&self, v: V) -> std::path::PathBuf {
        Path::new(v.mount()).join(&self.node[1..])
    }
}

/// RunPodSandbox, then CreateContainer + StartContainer of busybox running
/// `sh -c SCRIPT`, sharing the pod's PID namespace.
async fn start_pod(cri: &Cri, client: &mut RuntimeClient, script: &str) -> Pod {
    let uid = pod_uid();
    let config = containerd::host_network_pod(
        "cri-test",
        &uid,
        cri.ctd.cgroup_parent(),
        &cri.scratch.0.join(format!("logs-{uid}")),
    );
    let (sandbox, status) = containerd::run_pod_sandbox(client, config.clone()).await;
    let pid = containerd::sandbox_pid(&status);
    wait_until_pause_runs(pid);

    let container = testkit::cri_call!(
        client,
        create_container,
        cri::CreateContainerRequest {
            pod_sandbox_id: sandbox.clone(),
            config: Some(cri::ContainerConfig {
                metadata: Some(cri::ContainerMetadata {
                    name: "busybox".into(),
                    attempt: 0,
                }),
                image: Some(cri::ImageSpec {
                    image: cri.busybox.clone(),
                    ..Default::default()
                }),
                command: vec!["/bin/sh".into(), "-c".into(), script.into()],
                log_path: "busybox.log".into(),
                linux: Some(cri::LinuxContainerConfig {
                    security_context: Some(cri::LinuxContainerSecurityContext {
                        namespace_options: Some(containerd::pod_namespaces()),
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            sandbox_config: Some(config),
        }
    )
    .container_id;
    testkit::cri_call!(
        client,
        start_container,
        cri::StartContainerRequest {
            container_id: container.clone(),
        }
    );
    let node = format!("{}/kubepods/besteffort/pod{uid}", cri.ctd.cgroup_parent());
    let pod = Pod {
        uid,
        sandbox,
        pid,
        container,
        node,
    };
    // Both in the pod's node, in either hierarchy (runc's cgroupfs driver
    // on a hybrid host makes the path in each).
    for v in [V::V1, V::V2] {
        for leaf in [&pod.sandbox, &pod.container] {
            assert!(
                pod.dir(v).join(leaf).is_dir(),
                "{} has no {v:?} cgroup at {}",
                leaf,
                pod.node
            );
        }
    }
    let procs = read_pids(&pod.dir(V::V1).join(&pod.sandbox));
    assert_eq!(
        procs,
        [pid],
        "the sandbox's cgroup holds stasis-pause alone"
    );
    pod
}

/// StopPodSandbox (which stops its containers), then RemovePodSandbox;
/// asserts that no sandbox, container or process is left.
async fn stop_and_remove(client: &mut RuntimeClient, pod: &Pod) {
    testkit::cri_call!(
        client,
        stop_pod_sandbox,
        cri::StopPodSandboxRequest {
            pod_sandbox_id: pod.sandbox.clone(),
        }
    );
    // Its shim reaps it (the zombie's /proc entry goes a moment later).
    wait_until(Duration::from_secs(10), "stasis-pause has ended", || {
        !Path::new(&format!("/proc/{}", pod.pid)).exists()
    });
    testkit::cri_call!(
        client,
        remove_pod_sandbox,
        cri::RemovePodSandboxRequest {
            pod_sandbox_id: pod.sandbox.clone(),
        }
    );
    let pods = testkit::cri_call!(
        client,
        list_pod_sandbox,
        cri::ListPodSandboxRequest::default()
    );
    assert!(pods.items.iter().all(|p| p.id != pod.sandbox), "{pods:?}");
    let containers = testkit::cri_call!(
        client,
        list_containers,
        cri::ListContainersRequest::default()
    );
    assert!(
        containers
            .containers
            .iter()
            .all(|c| c.pod_sandbox_id != pod.sandbox),
        "{containers:?}"
    );
    for v in [V::V1, V::V2] {
        for leaf in [&pod.sandbox, &pod.container] {
            assert!(
                !pod.dir(v).join(leaf).exists(),
                "{leaf}'s {v:?} cgroup is left"
            );
        }
    }
}

/// A field of `/proc/PID/status`, or `None` once the process is gone.
fn status_field(pid: u32, key: &str) -> Option<String> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .map(|v| v.trim().to_owned())
}

fn assert_nothing_left(cri: &Cri) {
    let tasks = cri.ctd.ctr(&["task", "ls", "-q"]).stdout;
    assert!(tasks.trim().is_empty(), "tasks left: {tasks}");
    let containers = cri.ctd.ctr(&["container", "ls", "-q"]).stdout;
    assert!(
        containers.trim().is_empty(),
        "containers left: {containers}"
    );
    for dir in cri.ctd.parent_dirs() {
        let mut procs = Vec::new();
        let mut stack = vec![dir];
        while let Some(d) = stack.pop() {
            procs.extend(read_pids(&d));
            if let Ok(entries) = std::fs::read_dir(&d) {
                stack.extend(
                    entries
                        .flatten()
                        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                        .map(|e| e.path()),
                );
            }
        }
        assert!(
            procs.is_empty(),
            "processes left below containerd's parent: {procs:?}"
        );
    }
}

/// Runs `body` (root only) with a fresh [`Cri`] and a client of it, one
/// containerd test at a time, then asserts that nothing is left.
fn with_cri(test: &str, body: impl AsyncFnOnce(&Cri, &mut RuntimeClient)) {
    if !root_or_skip(test) {
        return;
    }
    let _one = containerd::one_at_a_time();
    let cri = Cri::start();
    Cri::runtime().block_on(async {
        let mut client = cri.ctd.runtime_client().await;
        body(&cri, &mut client).await;
    });
    assert_nothing_left(&cri);
}

/// The kubelet's calls in order: Version, RunPodSandbox with host
/// networking, its status, StopPodSandbox, RemovePodSandbox. The sandbox's
/// process is stasis-pause, PID 1 of the pod's PID namespace, and nothing
/// is left.
#[test]
fn the_cri_plugin_runs_a_host_network_pod_sandbox_on_stasis_pause() {
    with_cri(
        "the_cri_plugin_runs_a_host_network_pod_sandbox_on_stasis_pause",
        async |cri, client| {
            let version = testkit::cri_call!(client, version, cri::VersionRequest::default());
            assert_eq!(version.runtime_name, "containerd");
            assert!(version.runtime_api_version.starts_with("v1"), "{version:?}");

            let uid = pod_uid();
            let config = containerd::host_network_pod(
                "pause-test",
                &uid,
                cri.ctd.cgroup_parent(),
                &cri.scratch.0.join("pod-logs"),
            );
            let (id, status) = containerd::run_pod_sandbox(client, config).await;
            let info: serde_json::Value =
                serde_json::from_str(status.info.get("info").expect("verbose info")).expect("json");
            assert_eq!(info["image"], cri.pause_image.as_str(), "{info}");
            let pid = containerd::sandbox_pid(&status);
            wait_until_pause_runs(pid);
            let nspid = status_field(pid, "NSpid:").expect("NSpid");
            assert_eq!(nspid.split_whitespace().last(), Some("1"), "{nspid}");

            testkit::cri_call!(
                client,
                stop_pod_sandbox,
                cri::StopPodSandboxRequest {
                    pod_sandbox_id: id.clone(),
                }
            );
            wait_until(Duration::from_secs(10), "stasis-pause has ended", || {
                !Path::new(&format!("/proc/{pid}")).exists()
            });
            testkit::cri_call!(
                client,
                remove_pod_sandbox,
                cri::RemovePodSandboxRequest {
                    pod_sandbox_id: id.clone(),
                }
            );
            let left = testkit::cri_call!(
                client,
                list_pod_sandbox,
                cri::ListPodSandboxRequest::default()
            );
            assert!(left.items.is_empty(), "{left:?}");
        },
    );
}

/// A busybox container (CreateContainer + StartContainer) in a pod that
/// shares its PID namespace leaves an orphan (a subshell forks `sleep` and
/// exits): the kernel re-parents it to the namespace's PID 1, which is
/// stasis-pause (containerd's shim is a subreaper, but outside the pod's
/// namespace, so it is never chosen). Killed, the orphan is reaped at once
/// (a zombie would keep its /proc entry). Then StopPodSandbox and
/// RemovePodSandbox leave nothing.
#[test]
fn stasis_pause_reaps_the_orphan_a_cri_container_leaves() {
    with_cri(
        "stasis_pause_reaps_the_orphan_a_cri_container_leaves",
        async |cri, client| {
            let pod = start_pod(cri, client, "(sleep 1000 &); exec sleep 999").await;
            let status = testkit::cri_call!(
                client,
                container_status,
                cri::ContainerStatusRequest {
                    container_id: pod.container.clone(),
                    verbose: false,
                }
            );
            assert_eq!(
                status.status.as_ref().map(|s| s.state),
                Some(cri::ContainerState::ContainerRunning as i32),
                "{status:?}"
            );

            let container_dir = pod.dir(V::V1).join(&pod.container);
            let mut orphan = 0;
            wait_until(
                Duration::from_secs(10),
                "the orphan re-parented to stasis-pause",
                || {
                    orphan = read_pids(&container_dir)
                        .into_iter()
                        .find(|&p| {
                            status_field(p, "PPid:") == Some(pod.pid.to_string())
                                && status_field(p, "Name:").as_deref() == Some("sleep")
                        })
                        .unwrap_or(0);
                    orphan != 0
                },
            );
            // The container's own process is there too, a child of the shim.
            let main = read_pids(&container_dir)
                .into_iter()
                .find(|&p| p != orphan)
                .expect("the container's main process");
            assert_ne!(status_field(main, "PPid:"), Some(pod.pid.to_string()));
            let nspid = status_field(orphan, "NSpid:").expect("the orphan's NSpid");
            assert_ne!(nspid.split_whitespace().last(), Some("1"), "{nspid}");
            assert_ne!(proc_state(orphan), Some('Z'));

            rustix::process::kill_process(
                rustix::process::Pid::from_raw(orphan.try_into().expect("a pid")).expect("a pid"),
                rustix::process::Signal::KILL,
            )
            .expect("kill the orphan");
            wait_until(
                Duration::from_secs(10),
                "stasis-pause reaps the orphan",
                || !Path::new(&format!("/proc/{orphan}")).exists(),
            );
            assert!(Path::new(&format!("/proc/{}", pod.pid)).exists());

            stop_and_remove(client, &pod).await;
        },
    );
}

/// `stasis pause --k8s-pod UID --hierarchy V` on a CRI pod: one write at
/// the pod's node (`pod<uid>`, frozen by itself) freezes the sandbox and
/// the container (frozen by their ancestor), in the v1 freezer and in the
/// v2 tree; the other hierarchy is not touched; `unpause` thaws them and
/// the container goes on (its counter moves).
#[test]
fn stasis_pauses_a_cri_pod_by_uid_in_v1_and_v2() {
    with_cri(
        "stasis_pauses_a_cri_pod_by_uid_in_v1_and_v2",
        async |cri, client| {
            // The container counts in a file of its own root filesystem,
            // read from the host through /proc/PID/root.
            let pod = start_pod(
                cri,
                client,
                "i=0; while true; do i=$((i+1)); echo $i > /srv/n; sleep 0.05; done",
            )
            .await;
            let counter_pid = read_pids(&pod.dir(V::V1).join(&pod.container))
                .into_iter()
                .find(|&p| status_field(p, "Name:").as_deref() == Some("sh"))
                .expect("the container's shell");
            let counter = Path::new(&format!("/proc/{counter_pid}/root/srv/n")).to_owned();
            let count = || {
                std::fs::read_to_string(&counter)
                    .ok()
                    .and_then(|s| s.trim().parse::<u64>().ok())
            };
            wait_until(Duration::from_secs(10), "the counter counts", || {
                count().is_some()
            });

            for v in [V::V1, V::V2] {
                let other = if v == V::V1 { V::V2 } else { V::V1 };
                let by_pod = ["--k8s-pod", pod.uid.as_str(), "--hierarchy", v.flag()];
                stasis(&[&["pause"][..], &by_pod].concat()).ok();
                let state = state_json(&by_pod);
                assert_eq!(state["cgroup"], pod.node.as_str(), "{state}");
                assert_eq!(state["frozen_by"], "self", "{state}");
                assert!(kernel_frozen(v, &pod.dir(v)), "{v:?}");
                for leaf in [&pod.sandbox, &pod.container] {
                    assert!(kernel_frozen(v, &pod.dir(v).join(leaf)), "{leaf} in {v:?}");
                    assert!(kernel_thawed(other, &pod.dir(other).join(leaf)), "{leaf}");
                }
                let by_id = [
                    "--container-id",
                    pod.container.as_str(),
                    "--hierarchy",
                    v.flag(),
                ];
                assert_eq!(state_json(&by_id)["frozen_by"], "ancestor");
                // Stopped: a count read now is still the count a moment later.
                let frozen_at = count();
                std::thread::sleep(Duration::from_millis(300));
                assert_eq!(
                    count(),
                    frozen_at,
                    "the counter moved while frozen in {v:?}"
                );

                stasis(&[&["unpause"][..], &by_pod].concat()).ok();
                assert!(kernel_thawed(v, &pod.dir(v)), "{v:?}");
                for leaf in [&pod.sandbox, &pod.container] {
                    assert!(kernel_thawed(v, &pod.dir(v).join(leaf)), "{leaf} in {v:?}");
                }
                wait_until(Duration::from_secs(10), "the counter moves again", || {
                    count() != frozen_at
                });
            }
            stop_and_remove(client, &pod).await;
        },
    );
}

/// StopPodSandbox of a frozen pod. With the v1 freezer the kill cannot be
/// delivered until the thaw: the call comes back (or the bound ends) with
/// the pod's processes still there, and only a thaw
/// (`Freezer::thaw_k8s_pod`, as the node agent calls it) lets a second call
/// end them. With the v2 freezer fatal signals get through and the call ends
/// the pod. The time each call took is printed (a measurement, not an
/// assertion).
#[test]
fn stop_pod_sandbox_cannot_end_a_v1_frozen_pod_until_it_is_thawed() {
    with_cri(
        "stop_pod_sandbox_cannot_end_a_v1_frozen_pod_until_it_is_thawed",
        async |cri, client| {
            for v in [V::V1, V::V2] {
                let pod = start_pod(cri, client, "exec sleep 1000").await;
                let by_pod = ["--k8s-pod", pod.uid.as_str(), "--hierarchy", v.flag()];
                stasis(&[&["pause"][..], &by_pod].concat()).ok();
                let bound = Duration::from_secs(40);
                let start = Instant::now();
                let stopped = tokio::time::timeout(
                    bound,
                    client.stop_pod_sandbox(cri::StopPodSandboxRequest {
                        pod_sandbox_id: pod.sandbox.clone(),
                    }),
                )
                .await;
                let took = start.elapsed();
                let outcome = match &stopped {
                    Err(_) => format!("no answer within {bound:?}"),
                    Ok(Ok(_)) => "success".to_owned(),
                    Ok(Err(status)) => format!("error: {}", status.message()),
                };
                let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
                eprintln!(
                    "StopPodSandbox of a {v:?}-frozen pod: {outcome} after {took:.1?} (load {})",
                    load.split_whitespace().next().unwrap_or("?")
                );
                let alive = Path::new(&format!("/proc/{}", pod.pid)).exists();
                match v {
                    V::V1 => {
                        assert!(alive, "a v1-frozen stasis-pause ended without a thaw");
                        assert!(kernel_frozen(v, &pod.dir(v)), "the pod was thawed");
                        // The thaw a node agent does before a deletion: the
                        // library's, idempotent, and nothing for a pod that
                        // is not there.
                        let h =
                            freezer::Hierarchies::detect(Path::new("/proc")).expect("mountinfo");
                        let thawer = freezer::Freezer::new();
                        let thawed = thawer.thaw_k8s_pod(&h, &pod.uid).expect("thaw the pod");
                        let paths: Vec<&str> =
                            thawed.iter().map(|(cg, _)| cg.path.as_str()).collect();
                        assert_eq!(paths, [pod.node.as_str()], "{thawed:?}");
                        assert!(kernel_thawed(v, &pod.dir(v)));
                        let again = thawer.thaw_k8s_pod(&h, &pod.uid).expect("thaw again");
                        assert!(again.is_empty(), "{again:?}");
                        let absent = thawer.thaw_k8s_pod(&h, &pod_uid()).expect("no such pod");
                        assert!(absent.is_empty(), "{absent:?}");
                        let start = Instant::now();
                        stop_and_remove(client, &pod).await;
                        eprintln!(
                            "after the thaw, StopPodSandbox + RemovePodSandbox: {:.1?}",
                            start.elapsed()
                        );
                    }
                    V::V2 => {
                        assert!(
                            matches!(stopped, Ok(Ok(_))),
                            "StopPodSandbox of a v2-frozen pod: {outcome}"
                        );
                        wait_until(Duration::from_secs(10), "stasis-pause has ended", || {
                            !Path::new(&format!("/proc/{}", pod.pid)).exists()
                        });
                        // The pod's node stays frozen (nothing thawed it): the
                        // sandbox goes all the same.
                        stop_and_remove(client, &pod).await;
                        stasis(&[&["unpause"][..], &by_pod].concat()).ok();
                    }
                }
            }
        },
    );
}
