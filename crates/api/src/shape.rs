//! Containers in the shapes docker's clients read: the list entry of `GET
//! /containers/json` (moby's `ContainerSummary`), `GET
//! /containers/{id}/json` (`ContainerJSON`) and its `State`, which `stasis
//! inspect` shows too. The rules each client crashes or misbehaves
//! without: `Names` as `["/name"]` (the CLI strips the first character),
//! `Created` an integer in the list and RFC 3339 in inspect, `ImageID`
//! starting `sha256:`, `Ports` `[]` and `NetworkSettings.Networks` `{}`
//! (never null), `HostConfig.NetworkMode` present, `Config` present with
//! `Tty` (`docker logs` reads it), `HostConfig.LogConfig.Type` `json-file`
//! (docker-py streams logs only then), only docker's `State.Status` words,
//! docker's `Status` strings, and UTC times.

use serde::Serialize;
use serde_json::{json, Value};

use sandbox::{ContainerRecord, ContainerStatus, HealthState};

/// Docker's time for "never".
pub const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

/// The image ID of a container that has no image (it runs on the host's
/// root or a `--rootfs` directory): the zero digest, so that clients that
/// cut the `sha256:` prefix find one.
pub const NO_IMAGE_ID: &str =
    "sha256:0000000000000000000000000000000000000000000000000000000000000000";

/// A container's state in the shape of docker's `State` (moby's
/// `container.State` as the API gives it): docker's status words, times in
/// RFC 3339 (docker's zero time when there is none), and `Health` when the
/// container has a health check.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct State<'a> {
    status: &'static str,
    running: bool,
    paused: bool,
    restarting: bool,
    #[serde(rename = "OOMKilled")]
    oom_killed: bool,
    dead: bool,
    pid: u32,
    exit_code: i32,
    error: &'a str,
    started_at: String,
    finished_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    health: Option<&'a HealthState>,
}

impl<'a> State<'a> {
    pub fn new(c: &'a ContainerRecord, status: ContainerStatus) -> Self {
        let restarting = matches!(status, ContainerStatus::Restarting(_));
        let time =
            |t: Option<u64>| t.map_or_else(|| ZERO_TIME.to_owned(), sandbox::time::rfc3339_secs);
        State {
            status: status.word(),
            // docker's restarting container is Running and Restarting.
            running: status.is_running() || restarting,
            paused: status == ContainerStatus::Paused,
            restarting,
            oom_killed: c.exit.as_ref().is_some_and(|e| e.oom_killed),
            dead: false,
            pid: match (status.is_running(), c.process) {
                (true, Some(p)) => p.pid,
                _ => 0,
            },
            exit_code: c.exit.as_ref().map_or(0, |e| e.code),
            error: c
                .exit
                .as_ref()
                .and_then(|e| e.error.as_deref())
                .unwrap_or(""),
            started_at: time(c.started),
            finished_at: time(c.exit.as_ref().map(|e| e.finished)),
            health: c.health.as_ref(),
        }
    }
}

/// What one container is, for the shapes below.
#[derive(Debug)]
pub struct Container<'a> {
    pub record: &'a ContainerRecord,
    pub status: ContainerStatus,
    pub pod_name: Option<String>,
    /// The container's log file.
    pub log_path: String,
}

/// Docker's `HostConfig.NetworkMode` of a stasis container: its own pod is
/// docker's default; a pod shared with others is that pod's namespaces.
fn network_mode(c: &Container<'_>) -> String {
    match &c.pod_name {
        Some(p) if p != &c.record.name => format!("container:{p}"),
        _ => "default".to_owned(),
    }
}

/// The list entry of `GET /containers/json`.
pub fn summary(c: &Container<'_>, now: u64, with_size: bool) -> Value {
    let r = c.record;
    let mut v = json!({
        "Id": r.id.as_str(),
        "Names": [format!("/{}", r.name)],
        "Image": image_name(r),
        "ImageID": image_id(r),
        "Command": r.command.join(" "),
        "Created": r.created,
        "Ports": [],
        "Labels": r.labels,
        "State": c.status.word(),
        "Status": crate::human::status(
            c.status,
            r.started,
            r.exit.as_ref().map(|e| e.finished),
            now,
        ),
        "HostConfig": {"NetworkMode": network_mode(c)},
        "NetworkSettings": {"Networks": {}},
        "Mounts": [],
    });
    if with_size {
        // No copy-on-write layer: nothing is written beside the rootfs.
        v["SizeRw"] = json!(0);
    }
    v
}

/// `Config.Image` and the list's `Image`: the image as it was named, else
/// the root filesystem it runs on.
fn image_name(r: &ContainerRecord) -> String {
    match (&r.image, &r.rootfs) {
        (Some(i), _) => i.name.clone(),
        (None, Some(p)) => p.display().to_string(),
        (None, None) => String::new(),
    }
}

/// The image's ID, or the zero digest without one.
fn image_id(r: &ContainerRecord) -> String {
    r.image
        .as_ref()
        .map_or_else(|| NO_IMAGE_ID.to_owned(), |i| i.id.clone())
}

/// `GET /containers/{id}/json`.
pub fn inspect(c: &Container<'_>, hostname: &str) -> Value {
    let r = c.record;
    let mode = network_mode(c);
    json!({
        "Id": r.id.as_str(),
        "Created": sandbox::time::rfc3339_secs(r.created),
        "Path": r.command.first().cloned().unwrap_or_default(),
        "Args": r.command.get(1..).unwrap_or_default(),
        "State": State::new(r, c.status),
        "Image": image_id(r),
        "ResolvConfPath": "",
        "HostnamePath": "",
        "HostsPath": "",
        "LogPath": c.log_path,
        "Name": format!("/{}", r.name),
        "RestartCount": r.restart_count,
        "Driver": "",
        "Platform": "linux",
        "MountLabel": "",
        "ProcessLabel": "",
        "AppArmorProfile": "",
        "ExecIDs": null,
        "HostConfig": {
            "NetworkMode": mode,
            "PidMode": "",
            "IpcMode": "",
            "AutoRemove": r.auto_remove,
            "RestartPolicy": {"Name": r.restart.name(), "MaximumRetryCount": r.restart.max_retries()},
            "Memory": r.limits.memory.unwrap_or(0),
            "MemorySwap": r.limits.memory_swap.unwrap_or(0),
            "NanoCpus": r.limits.nano_cpus.unwrap_or(0),
            "CpuShares": r.limits.cpu_shares.unwrap_or(0),
            "PidsLimit": r.limits.pids_limit,
            "LogConfig": {"Type": "json-file", "Config": {}},
        },
        "Mounts": [],
        "GraphDriver": {
            "Name": if r.image.is_some() { "overlay2" } else { "" },
            "Data": {},
        },
        "Config": {
            "Hostname": hostname,
            "Domainname": "",
            "User": r.user.as_ref().map_or_else(String::new, |u| format!("{}:{}", u.uid, u.gid)),
            "AttachStdin": false,
            "AttachStdout": false,
            "AttachStderr": false,
            "Tty": false,
            "OpenStdin": false,
            "StdinOnce": false,
            "Env": r.env,
            "Cmd": r.command,
            "Image": image_name(r),
            "WorkingDir": r.workdir.as_ref().map_or_else(String::new, |w| w.display().to_string()),
            "Entrypoint": null,
            "Labels": r.labels,
        },
        "NetworkSettings": {
            "SandboxID": r.pod.as_str(),
            "Ports": {},
            "Networks": {},
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> ContainerRecord {
        let id = sandbox::Id::try_from("ab".repeat(32)).expect("id");
        ContainerRecord {
            id: id.clone(),
            name: "web".into(),
            pod: id,
            created: 1_796_161_200,
            command: vec!["sleep".into(), "1000".into()],
            env: vec!["A=1".into()],
            workdir: None,
            rootfs: None,
            image: None,
            user: None,
            labels: [("tier".to_owned(), "db".to_owned())].into(),
            process: Some(sandbox::ProcessRef {
                pid: 77,
                start_time: 1,
            }),
            monitor: None,
            started: Some(1_796_161_200),
            exit: None,
            auto_remove: false,
            healthcheck: None,
            health: None,
            created_ns: 0,
            limits: Default::default(),
            restart: Default::default(),
            restart_count: 0,
            restarting: false,
            stopped: false,
            isolation: Default::default(),
            stdio: Default::default(),
            checkpoint: None,
            checkpointing: false,
        }
    }

    #[test]
    fn shapes_carry_what_clients_need() {
        let r = record();
        let c = Container {
            record: &r,
            status: ContainerStatus::Paused,
            pod_name: Some("web".into()),
            log_path: "/run/stasis/containers/x/log".into(),
        };
        let s = summary(&c, 1_796_161_320, false);
        assert_eq!(s["Names"], json!(["/web"]));
        assert_eq!(s["Created"], json!(1_796_161_200u64));
        assert!(s["ImageID"].as_str().expect("id").starts_with("sha256:"));
        assert_eq!(s["Ports"], json!([]));
        assert_eq!(s["NetworkSettings"]["Networks"], json!({}));
        assert_eq!(s["HostConfig"]["NetworkMode"], "default");
        assert_eq!(s["State"], "paused");
        assert_eq!(s["Status"], "Up 2 minutes (Paused)");
        assert_eq!(s["Labels"]["tier"], "db");
        assert!(s.get("SizeRw").is_none());
        let i = inspect(&c, "web");
        assert_eq!(i["Created"], "2026-12-01T21:40:00Z");
        assert_eq!(i["Name"], "/web");
        assert_eq!(i["State"]["Status"], "paused");
        assert_eq!(i["State"]["Paused"], true);
        assert_eq!(i["State"]["Running"], true);
        assert_eq!(i["State"]["Pid"], 77);
        assert_eq!(i["State"]["FinishedAt"], ZERO_TIME);
        assert_eq!(i["Config"]["Tty"], false);
        assert_eq!(i["HostConfig"]["LogConfig"]["Type"], "json-file");
        assert_eq!(i["Path"], "sleep");
        assert_eq!(i["Args"], json!(["1000"]));
        let member = Container {
            pod_name: Some("shared".into()),
            ..c
        };
        assert_eq!(
            summary(&member, 0, true)["HostConfig"]["NetworkMode"],
            "container:shared"
        );
        assert_eq!(summary(&member, 0, true)["SizeRw"], 0);
    }
}
