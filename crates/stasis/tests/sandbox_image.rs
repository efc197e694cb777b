//! `stasis sandbox-image` through the binary: its refusals, a reproducible
//! archive that `stasis image load` takes, and (root only) the real
//! containerd 1.6 importing it and running it as a task whose PID 1 is
//! stasis-pause, ended by SIGTERM with status 0.

mod common;

use std::path::Path;
use std::time::Duration;

use common::*;
use testkit::containerd::{self, Containerd};

fn build(s: &Stasis, out: &Path, name: Option<&str>) -> Run {
    let out = out.to_str().expect("utf-8");
    let pause = pause_binary().to_str().expect("utf-8");
    let mut args = vec!["sandbox-image", "--output", out, "--pause", pause];
    if let Some(n) = name {
        args.extend(["--name", n]);
    }
    s.run(&args)
}

#[test]
fn the_archive_is_reproducible_small_and_loads_with_entrypoint_pause() {
    let s = Stasis::new();
    let scratch = Scratch::new();
    let (a, b) = (scratch.0.join("a.tar"), scratch.0.join("b.tar"));
    build(&s, &a, None).ok();
    build(&s, &b, None).ok();
    let (a_bytes, b_bytes) = (std::fs::read(&a).expect("a"), std::fs::read(&b).expect("b"));
    assert_eq!(a_bytes, b_bytes, "two builds of one binary differ");
    // The pause artifact is a few KB; the archive adds JSON and tar blocks.
    assert!(a_bytes.len() < 24 * 1024, "{} bytes", a_bytes.len());

    if !root_or_skip("the_archive_is_reproducible_small_and_loads_with_entrypoint_pause") {
        return;
    }
    let name = format!("localhost/{}:1", unique_name());
    let named = scratch.0.join("named.tar");
    build(&s, &named, Some(&name)).ok();
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

/// Waits until process `pid` runs the pause artifact: a runtime reports
/// the task started once runc's init was told to exec, and for a moment
/// the process is still runc.
fn wait_until_pause_runs(pid: u32) {
    let pause = std::fs::read(pause_binary()).expect("the pause artifact");
    wait_until(
        Duration::from_secs(10),
        &format!("process {pid} runs stasis-pause"),
        || std::fs::read(format!("/proc/{pid}/exe")).is_ok_and(|exe| exe == pause),
    );
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
    build(&s, &archive, Some(&name)).ok();

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

/// The kubelet's calls to containerd's CRI plugin with the image as its
/// `sandbox_image`: Version, RunPodSandbox with host networking, its
/// status, StopPodSandbox, RemovePodSandbox. The sandbox's process is
/// stasis-pause, PID 1 of the pod's PID namespace, and nothing is left.
#[test]
fn the_cri_plugin_runs_a_host_network_pod_sandbox_on_stasis_pause() {
    use k8s_cri::v1 as cri;
    if !root_or_skip("the_cri_plugin_runs_a_host_network_pod_sandbox_on_stasis_pause") {
        return;
    }
    let _one = containerd::one_at_a_time();
    let s = Stasis::new();
    let scratch = Scratch::new();
    let name = format!("localhost/{}:1", unique_name());
    let archive = scratch.0.join("pause.tar");
    build(&s, &archive, Some(&name)).ok();
    let mut ctd = Containerd::start(
        &scratch.0,
        Some(&containerd::cri_section(&scratch.0, &name)),
    );
    ctd.import(&archive, &name);

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let limit = Duration::from_secs(60);
    rt.block_on(async {
        let mut client = ctd.runtime_client().await;
        macro_rules! call {
            ($method:ident, $req:expr) => {
                tokio::time::timeout(limit, client.$method($req))
                    .await
                    .unwrap_or_else(|_| panic!("{} timed out", stringify!($method)))
                    .unwrap_or_else(|e| panic!("{}: {e}", stringify!($method)))
                    .into_inner()
            };
        }

        let version = call!(version, cri::VersionRequest::default());
        assert_eq!(version.runtime_name, "containerd");
        assert!(version.runtime_api_version.starts_with("v1"), "{version:?}");

        let uid = unique_name();
        let config = cri::PodSandboxConfig {
            metadata: Some(cri::PodSandboxMetadata {
                name: "pause-test".into(),
                uid: uid.clone(),
                namespace: "default".into(),
                attempt: 0,
            }),
            // Host-network pods have no UTS namespace of their own.
            hostname: String::new(),
            log_directory: scratch.0.join("pod-logs").display().to_string(),
            linux: Some(cri::LinuxPodSandboxConfig {
                cgroup_parent: format!("{}/pod{uid}", ctd.cgroup_parent()),
                security_context: Some(cri::LinuxSandboxSecurityContext {
                    namespace_options: Some(cri::NamespaceOption {
                        network: cri::NamespaceMode::Node as i32,
                        pid: cri::NamespaceMode::Pod as i32,
                        ipc: cri::NamespaceMode::Pod as i32,
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        let id = call!(
            run_pod_sandbox,
            cri::RunPodSandboxRequest {
                config: Some(config),
                runtime_handler: String::new(),
            }
        )
        .pod_sandbox_id;

        let status = call!(
            pod_sandbox_status,
            cri::PodSandboxStatusRequest {
                pod_sandbox_id: id.clone(),
                verbose: true,
            }
        );
        assert_eq!(
            status.status.as_ref().map(|s| s.state),
            Some(cri::PodSandboxState::SandboxReady as i32),
            "{status:?}"
        );
        let info: serde_json::Value =
            serde_json::from_str(status.info.get("info").expect("verbose info")).expect("json");
        assert_eq!(info["image"], name.as_str(), "{info}");
        let pid = info["pid"].as_u64().expect("the sandbox's pid");
        wait_until_pause_runs(u32::try_from(pid).expect("a pid"));
        let proc_status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
        let nspid = proc_status
            .lines()
            .find_map(|l| l.strip_prefix("NSpid:"))
            .expect("NSpid");
        assert_eq!(nspid.split_whitespace().last(), Some("1"), "{proc_status}");

        call!(
            stop_pod_sandbox,
            cri::StopPodSandboxRequest {
                pod_sandbox_id: id.clone(),
            }
        );
        // Its shim reaps it (the zombie's /proc entry goes a moment later).
        wait_until(Duration::from_secs(10), "stasis-pause has ended", || {
            !Path::new(&format!("/proc/{pid}")).exists()
        });
        call!(
            remove_pod_sandbox,
            cri::RemovePodSandboxRequest {
                pod_sandbox_id: id.clone(),
            }
        );
        let left = call!(list_pod_sandbox, cri::ListPodSandboxRequest::default());
        assert!(left.items.is_empty(), "{left:?}");
    });
    let tasks = ctd.ctr(&["task", "ls", "-q"]).stdout;
    assert!(tasks.trim().is_empty(), "tasks left: {tasks}");
    let containers = ctd.ctr(&["container", "ls", "-q"]).stdout;
    assert!(
        containers.trim().is_empty(),
        "containers left: {containers}"
    );
}
