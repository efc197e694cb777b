//! `POST /containers/create`: the body (moby's `ContainerCreateConfig`)
//! read into what stasis honours, and refused where it asks for what
//! stasis cannot give rather than silently ignored.
//!
//! Honoured: `Image`, `Cmd`, `Entrypoint`, `Env`, `WorkingDir`, `User`,
//! `Labels`, `HostConfig.AutoRemove`, the limits `HostConfig.Memory`,
//! `MemorySwap`, `NanoCpus`, `CpuShares`, `PidsLimit` (0 or null: unset, as
//! docker sends them), `HostConfig.RestartPolicy`, and `HostConfig.NetworkMode`,
//! `PidMode`, `IpcMode` of `container:X` (joining X's pod; all that name
//! one must name the same), `Hostname` (of the pod made for it), and the
//! confinement `run` has flags for, passed on as [`Confinement`] for the
//! host program to read exactly as it reads the flags: `Privileged`,
//! `CapAdd`, `CapDrop`, `SecurityOpt`, `ReadonlyRootfs`, `Devices`, `Binds`,
//! `Mounts` (bind and tmpfs), `Tmpfs` and `Init`, and the standard streams:
//! `Tty` (a pseudo-terminal from its monitor), `OpenStdin` (a stdin pipe
//! fed by attaches) and `StdinOnce`. Refused: host namespaces, volume
//! mounts. Accepted as what stasis does anyway: the default, `bridge` and
//! `none` networks (a pod has its own loopback only), private IPC and PID
//! namespaces, and the `Attach*` flags (what is attached is what `POST
//! /containers/{id}/attach` asks for).

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::error::ApiError;

/// A container to create.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CreateOptions {
    /// `?name=`.
    pub name: Option<String>,
    pub image: String,
    /// `Cmd`: replaces the image's.
    pub cmd: Vec<String>,
    /// `Entrypoint`: replaces the image's (and then its `Cmd` too, as in
    /// docker).
    pub entrypoint: Option<Vec<String>>,
    pub env: Vec<String>,
    pub working_dir: Option<String>,
    pub user: Option<String>,
    pub labels: BTreeMap<String, String>,
    /// The pod to join, from `container:X` modes.
    pub pod: Option<String>,
    pub auto_remove: bool,
    /// `HostConfig`'s limits (checked by the sandbox, with docker's rules).
    pub limits: sandbox::Limits,
    pub restart: sandbox::RestartPolicy,
    /// `Hostname`: the hostname of the pod made for it.
    pub hostname: Option<String>,
    /// `HostConfig.Init`: `stasis-pause` as its PID 1.
    pub init: bool,
    /// How it is confined, in the words of `run`'s flags.
    pub confinement: Confinement,
    /// `OpenStdin`, `Tty`, `StdinOnce`.
    pub stdio: sandbox::StdioMode,
}

/// `HostConfig`'s confinement, each field as the `run` flag of the same
/// meaning takes it, so that the host program reads both the same way.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Confinement {
    pub privileged: bool,
    /// `--cap-add`.
    pub cap_add: Vec<String>,
    /// `--cap-drop`.
    pub cap_drop: Vec<String>,
    /// `--security-opt`, except that a seccomp profile comes inline (the
    /// docker CLI reads the file and sends its JSON).
    pub security_opt: Vec<String>,
    /// `--read-only`.
    pub read_only: bool,
    /// `--device HOST[:CONTAINER]`.
    pub devices: Vec<String>,
    /// `-v HOST:CONTAINER[:ro|rw]`: `Binds`.
    pub volumes: Vec<String>,
    /// `--mount type=...`: `Mounts`.
    pub mounts: Vec<String>,
    /// `--tmpfs CONTAINER[:OPTIONS]`: `Tmpfs`.
    pub tmpfs: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct Body {
    hostname: Option<String>,
    image: Option<String>,
    cmd: Option<StrOrList>,
    entrypoint: Option<StrOrList>,
    env: Option<Vec<String>>,
    working_dir: Option<String>,
    user: Option<String>,
    labels: Option<BTreeMap<String, String>>,
    tty: Option<bool>,
    open_stdin: Option<bool>,
    stdin_once: Option<bool>,
    host_config: Option<HostConfig>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct HostConfig {
    network_mode: Option<String>,
    pid_mode: Option<String>,
    ipc_mode: Option<String>,
    auto_remove: Option<bool>,
    privileged: Option<bool>,
    memory: Option<i64>,
    memory_swap: Option<i64>,
    nano_cpus: Option<i64>,
    cpu_shares: Option<i64>,
    pids_limit: Option<i64>,
    restart_policy: Option<RestartPolicy>,
    cap_add: Option<Vec<String>>,
    cap_drop: Option<Vec<String>>,
    security_opt: Option<Vec<String>>,
    readonly_rootfs: Option<bool>,
    devices: Option<Vec<DeviceMapping>>,
    binds: Option<Vec<String>>,
    mounts: Option<Vec<MountSpec>>,
    tmpfs: Option<BTreeMap<String, String>>,
    init: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct DeviceMapping {
    path_on_host: String,
    path_in_container: String,
    cgroup_permissions: String,
}

/// moby's `mount.Mount`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct MountSpec {
    #[serde(rename = "Type")]
    kind: String,
    source: String,
    target: String,
    read_only: bool,
    tmpfs_options: Option<TmpfsOptions>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct TmpfsOptions {
    size_bytes: Option<i64>,
    mode: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct RestartPolicy {
    name: Option<String>,
    maximum_retry_count: Option<u32>,
}

/// docker's strslice: a string or a list of strings.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum StrOrList {
    One(String),
    Many(Vec<String>),
}

impl StrOrList {
    fn into_vec(self) -> Vec<String> {
        match self {
            StrOrList::One(s) => vec![s],
            StrOrList::Many(v) => v,
        }
    }
}

impl CreateOptions {
    /// Reads a create request's body and `name`.
    pub fn parse(body: &[u8], name: Option<&str>) -> Result<Self, ApiError> {
        if body.iter().all(u8::is_ascii_whitespace) {
            return Err(ApiError::bad_request(
                "config cannot be empty in order to create a container",
            ));
        }
        let b: Body = serde_json::from_slice(body)
            .map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))?;
        let image = b.image.filter(|i| !i.is_empty()).ok_or_else(|| {
            ApiError::bad_request("no image: stasis creates containers from an image in its store")
        })?;
        let hc = b.host_config.unwrap_or_default();
        let confinement = confinement(&hc)?;
        let mut pod: Option<String> = None;
        for (what, mode, fine) in [
            (
                "NetworkMode",
                &hc.network_mode,
                &["", "default", "bridge", "none"][..],
            ),
            ("PidMode", &hc.pid_mode, &["", "private"][..]),
            (
                "IpcMode",
                &hc.ipc_mode,
                &["", "private", "shareable", "none"][..],
            ),
        ] {
            let Some(mode) = mode.as_deref() else {
                continue;
            };
            if let Some(x) = mode.strip_prefix("container:") {
                if x.is_empty() {
                    return Err(ApiError::bad_request(format!(
                        "{what} container: names no container"
                    )));
                }
                match &pod {
                    Some(p) if p != x => {
                        return Err(ApiError::bad_request(format!(
                            "{what} {mode} names another container than {p}: a stasis container joins one pod, sharing its namespaces"
                        )))
                    }
                    _ => pod = Some(x.to_owned()),
                }
            } else if !fine.contains(&mode) {
                return Err(ApiError::bad_request(format!(
                    "{what} {mode:?} is not supported: a stasis container has its pod's namespaces (container:X joins X's)"
                )));
            }
        }
        let restart = match hc.restart_policy {
            None => sandbox::RestartPolicy::No,
            Some(p) => {
                let name = p.name.unwrap_or_default();
                let text = match (name.as_str(), p.maximum_retry_count) {
                    ("on-failure", Some(n)) if n > 0 => format!("on-failure:{n}"),
                    _ => name,
                };
                sandbox::RestartPolicy::parse(&text)
                    .map_err(|e| ApiError::bad_request(crate::capitalized(&e.to_string())))?
            }
        };
        if hc.auto_remove == Some(true) && !restart.is_none() {
            return Err(ApiError::bad_request(
                "can't create 'AutoRemove' container with restart policy",
            ));
        }
        // docker sends 0 for "not set".
        let set = |v: Option<i64>| v.filter(|n| *n != 0);
        let limits = sandbox::Limits {
            memory: set(hc.memory),
            memory_swap: set(hc.memory_swap),
            nano_cpus: set(hc.nano_cpus),
            cpu_shares: set(hc.cpu_shares),
            pids_limit: set(hc.pids_limit),
        };
        Ok(CreateOptions {
            hostname: b.hostname.filter(|h| !h.is_empty()),
            init: hc.init.unwrap_or(false),
            confinement,
            name: name
                .filter(|n| !n.is_empty())
                .map(|n| n.trim_start_matches('/').to_owned()),
            image,
            cmd: b.cmd.map(StrOrList::into_vec).unwrap_or_default(),
            entrypoint: b.entrypoint.map(StrOrList::into_vec),
            env: b.env.unwrap_or_default(),
            working_dir: b.working_dir.filter(|w| !w.is_empty()),
            user: b.user.filter(|u| !u.is_empty()),
            labels: b.labels.unwrap_or_default(),
            pod,
            auto_remove: hc.auto_remove.unwrap_or(false),
            limits,
            restart,
            stdio: sandbox::StdioMode {
                open_stdin: b.open_stdin.unwrap_or(false),
                tty: b.tty.unwrap_or(false),
                // Only meaningful with a stdin to close.
                stdin_once: b.open_stdin.unwrap_or(false) && b.stdin_once.unwrap_or(false),
            },
        })
    }
}

/// `HostConfig`'s confinement as `run`'s flags say it.
fn confinement(hc: &HostConfig) -> Result<Confinement, ApiError> {
    let mut devices = Vec::new();
    for d in hc.devices.iter().flatten() {
        let container = if d.path_in_container.is_empty() {
            &d.path_on_host
        } else {
            &d.path_in_container
        };
        // docker's default permissions are the only ones stasis gives.
        if !matches!(d.cgroup_permissions.as_str(), "" | "rwm") {
            return Err(ApiError::bad_request(format!(
                "device {}: permissions other than rwm are not supported",
                d.path_on_host
            )));
        }
        devices.push(format!("{}:{container}", d.path_on_host));
    }
    let mut mounts = Vec::new();
    for m in hc.mounts.iter().flatten() {
        let spec = match m.kind.as_str() {
            "bind" => format!(
                "type=bind,source={},target={}{}",
                m.source,
                m.target,
                if m.read_only { ",readonly" } else { "" }
            ),
            "tmpfs" => {
                let mut spec = format!("type=tmpfs,target={}", m.target);
                if let Some(o) = &m.tmpfs_options {
                    if let Some(size) = o.size_bytes.filter(|s| *s > 0) {
                        spec.push_str(&format!(",tmpfs-size={size}"));
                    }
                    if let Some(mode) = o.mode.filter(|m| *m != 0) {
                        spec.push_str(&format!(",tmpfs-mode={mode:o}"));
                    }
                }
                spec
            }
            other => {
                return Err(ApiError::bad_request(format!(
                    "mount type {other:?} is not supported: use bind or tmpfs (named volumes are not supported)"
                )))
            }
        };
        // A comma would be read as the start of another field.
        if m.source.contains(',') || m.target.contains(',') {
            return Err(ApiError::bad_request(format!(
                "mount {}: a path with a comma is not supported",
                m.target
            )));
        }
        mounts.push(spec);
    }
    let tmpfs = hc
        .tmpfs
        .iter()
        .flatten()
        .map(|(target, options)| {
            if options.is_empty() {
                target.clone()
            } else {
                format!("{target}:{options}")
            }
        })
        .collect();
    Ok(Confinement {
        privileged: hc.privileged.unwrap_or(false),
        cap_add: hc.cap_add.clone().unwrap_or_default(),
        cap_drop: hc.cap_drop.clone().unwrap_or_default(),
        security_opt: hc.security_opt.clone().unwrap_or_default(),
        read_only: hc.readonly_rootfs.unwrap_or(false),
        devices,
        volumes: hc.binds.clone().unwrap_or_default(),
        mounts,
        tmpfs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_the_docker_cli_sends_is_read() {
        let body = br#"{"Hostname":"","Env":["A=1"],"Cmd":["sh","-c","echo hi"],"Image":"busybox","Labels":{"tier":"db"},
            "Tty":false,"AttachStdout":true,"HostConfig":{"NetworkMode":"container:web","PidMode":"container:web","AutoRemove":true}}"#;
        let o = CreateOptions::parse(body, Some("job")).expect("parse");
        assert_eq!(o.image, "busybox");
        assert_eq!(o.cmd, ["sh", "-c", "echo hi"]);
        assert_eq!(o.entrypoint, None);
        assert_eq!(o.env, ["A=1"]);
        assert_eq!(o.pod.as_deref(), Some("web"));
        assert!(o.auto_remove);
        assert_eq!(o.name.as_deref(), Some("job"));
        assert_eq!(o.labels["tier"], "db");
        assert!(o.limits.is_empty(), "nothing asked");
        assert_eq!(o.stdio, sandbox::StdioMode::default());
        let it = CreateOptions::parse(
            br#"{"Image":"x","Tty":true,"OpenStdin":true,"StdinOnce":true,"AttachStdin":true}"#,
            None,
        )
        .expect("run -it");
        assert_eq!(
            it.stdio,
            sandbox::StdioMode {
                open_stdin: true,
                tty: true,
                stdin_once: true
            }
        );
        let limited = CreateOptions::parse(
            br#"{"Image":"x","HostConfig":{"Memory":33554432,"MemorySwap":0,"NanoCpus":500000000,"PidsLimit":16,"CpuShares":0,
                "RestartPolicy":{"Name":"on-failure","MaximumRetryCount":2}}}"#,
            None,
        )
        .expect("limits");
        assert_eq!(limited.limits.memory, Some(32 << 20));
        assert_eq!(limited.limits.memory_swap, None, "0 is unset");
        assert_eq!(limited.limits.nano_cpus, Some(500_000_000));
        assert_eq!(limited.limits.pids_limit, Some(16));
        assert_eq!(
            limited.restart,
            sandbox::RestartPolicy::OnFailure { max: 2 }
        );
        let one = CreateOptions::parse(br#"{"Image":"x","Entrypoint":"/bin/sh","Cmd":null}"#, None)
            .expect("strslice");
        assert_eq!(one.entrypoint, Some(vec!["/bin/sh".to_owned()]));
        assert!(one.cmd.is_empty());
        let confined = CreateOptions::parse(
            br#"{"Image":"x","Hostname":"h","HostConfig":{"Privileged":true,"CapAdd":["NET_ADMIN"],"CapDrop":["ALL"],
                "SecurityOpt":["seccomp={\"defaultAction\":\"SCMP_ACT_ALLOW\"}","no-new-privileges"],"ReadonlyRootfs":true,
                "Devices":[{"PathOnHost":"/dev/null","PathInContainer":"/dev/n","CgroupPermissions":"rwm"},{"PathOnHost":"/dev/zero","PathInContainer":""}],
                "Binds":["/h:/c:ro"],"Tmpfs":{"/t":"size=1m","/u":""},"Init":true,
                "Mounts":[{"Type":"bind","Source":"/a","Target":"/b","ReadOnly":true},{"Type":"tmpfs","Target":"/m","TmpfsOptions":{"SizeBytes":4096,"Mode":1023}}]}}"#,
            None,
        )
        .expect("confinement");
        assert_eq!(confined.hostname.as_deref(), Some("h"));
        assert!(confined.init);
        let c = &confined.confinement;
        assert!(c.privileged && c.read_only);
        assert_eq!(c.cap_add, ["NET_ADMIN"]);
        assert_eq!(c.cap_drop, ["ALL"]);
        assert_eq!(
            c.security_opt,
            [
                r#"seccomp={"defaultAction":"SCMP_ACT_ALLOW"}"#,
                "no-new-privileges"
            ]
        );
        assert_eq!(c.devices, ["/dev/null:/dev/n", "/dev/zero:/dev/zero"]);
        assert_eq!(c.volumes, ["/h:/c:ro"]);
        assert_eq!(c.tmpfs, ["/t:size=1m", "/u"]);
        assert_eq!(
            c.mounts,
            [
                "type=bind,source=/a,target=/b,readonly",
                "type=tmpfs,target=/m,tmpfs-size=4096,tmpfs-mode=1777"
            ]
        );
        for bad in [
            &br#"{"Image":"x","HostConfig":{"Mounts":[{"Type":"volume","Target":"/v"}]}}"#[..],
            br#"{"Image":"x","HostConfig":{"Mounts":[{"Type":"bind","Source":"/a,b","Target":"/v"}]}}"#,
            br#"{"Image":"x","HostConfig":{"Devices":[{"PathOnHost":"/dev/null","CgroupPermissions":"r"}]}}"#,
            &br#"{"Image":"#[..],
            br#"{"Cmd":["true"]}"#,
            br#"{"Image":"x","HostConfig":{"NetworkMode":"host"}}"#,
            br#"{"Image":"x","HostConfig":{"NetworkMode":"container:a","IpcMode":"container:b"}}"#,
            br#"{"Image":"x","HostConfig":{"RestartPolicy":{"Name":"sometimes"}}}"#,
            br#"{"Image":"x","HostConfig":{"AutoRemove":true,"RestartPolicy":{"Name":"always"}}}"#,
            b"",
        ] {
            let e = CreateOptions::parse(bad, None).expect_err("refused");
            assert_eq!(
                e.status,
                hyper::StatusCode::BAD_REQUEST,
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
