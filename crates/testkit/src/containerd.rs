//! A real containerd 1.6 of a test's own, with or without its CRI plugin,
//! and a CRI client that makes the kubelet's calls to it (no kubelet and no
//! crictl run here).
//!
//! Everything is private to the test: root, state, the gRPC, ttrpc and
//! debug sockets and the plugins' `opt` directory live in the directory the
//! test gives, and every cgroup its tasks get is below
//! [`Containerd::cgroup_parent`] (`/stasis-test-<random>`) in every
//! hierarchy. What containerd 1.6 and `ctr` keep elsewhere whatever the
//! config says — runc's state for the `k8s.io` namespace in
//! `/run/containerd/runc/k8s.io` and ctr's FIFOs in `/run/containerd/fifo`
//! ([`SHARED_DIRS`]) — is removed on drop when the test made it.
//!
//! Dropping a [`Containerd`] thaws every cgroup below its parent (a test
//! that panicked with a pod frozen must not leave it so), kills and deletes
//! every task, removes every container and the images it imported, stops
//! the daemon by its PID (SIGTERM, then SIGKILL after 10 s), unmounts any
//! snapshot a failed run left and removes the cgroups below its parent,
//! deepest first (the runtime removes a container's cgroup, not the parents
//! a kubelet would have made, such as `pod<uid>`).
//!
//! Found by trying on these machines (see `PEERS.md`): the CRI plugin needs
//! `restrict_oom_score_adj = true` (the capability bounding set lacks
//! `CAP_SYS_RESOURCE`), host-network sandboxes need no CNI, and with
//! `SystemdCgroup = false` a `cgroup_parent` gives `<parent>/<id>` in every
//! v1 controller and in the v2 tree.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use k8s_cri::v1 as cri;

use crate::{run_bounded, unique_name, wait_until, Run};

/// runc's state directory for the `k8s.io` namespace and ctr's FIFOs:
/// shared with any other containerd on the machine.
pub const SHARED_DIRS: [&str; 2] = ["/run/containerd/runc/k8s.io", "/run/containerd/fifo"];

/// The cgroup filesystems' common mount point; every hierarchy (v1
/// controllers and the v2 tree) is a directory of it on the hosts the
/// suites run on.
const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// The CRI runtime service's client (RunPodSandbox, CreateContainer, ...).
pub type RuntimeClient =
    cri::runtime_service_client::RuntimeServiceClient<tonic::transport::Channel>;
/// The CRI image service's client.
pub type ImageClient = cri::image_service_client::ImageServiceClient<tonic::transport::Channel>;

/// The bound of a CRI call made with [`cri_call!`](crate::cri_call).
pub const CALL_LIMIT: Duration = Duration::from_secs(60);

/// `cri_call!(client, method, request)`: the CRI call, bounded by
/// [`CALL_LIMIT`], its answer unwrapped (a timeout or an error status
/// panics, naming the method). Use it inside a tokio runtime.
#[macro_export]
macro_rules! cri_call {
    ($client:expr, $method:ident, $req:expr) => {
        $crate::containerd::__tokio::time::timeout(
            $crate::containerd::CALL_LIMIT,
            $client.$method($req),
        )
        .await
        .unwrap_or_else(|_| panic!("{} timed out", stringify!($method)))
        .unwrap_or_else(|e| panic!("{}: {e}", stringify!($method)))
        .into_inner()
    };
}

#[doc(hidden)]
pub use tokio as __tokio;

/// RunPodSandbox of `config`, then PodSandboxStatus (verbose) until the
/// sandbox is READY (the kubelet's wait), at most [`CALL_LIMIT`]: its ID
/// and the status that said so.
pub async fn run_pod_sandbox(
    client: &mut RuntimeClient,
    config: cri::PodSandboxConfig,
) -> (String, cri::PodSandboxStatusResponse) {
    let start = Instant::now();
    let id = crate::cri_call!(
        client,
        run_pod_sandbox,
        cri::RunPodSandboxRequest {
            config: Some(config),
            runtime_handler: String::new(),
        }
    )
    .pod_sandbox_id;
    loop {
        let status = crate::cri_call!(
            client,
            pod_sandbox_status,
            cri::PodSandboxStatusRequest {
                pod_sandbox_id: id.clone(),
                verbose: true,
            }
        );
        if status.status.as_ref().map(|s| s.state)
            == Some(cri::PodSandboxState::SandboxReady as i32)
        {
            return (id, status);
        }
        assert!(
            start.elapsed() < CALL_LIMIT,
            "sandbox {id} never got ready: {status:?}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

static ONE_CONTAINERD: Mutex<()> = Mutex::new(());

/// Takes the turn of one containerd test in this test process: one's
/// cleanup of [`SHARED_DIRS`] must not race another's use of them. (Test
/// processes take turns through `flock /tmp/stasis-tests.lock`.)
pub fn one_at_a_time() -> MutexGuard<'static, ()> {
    ONE_CONTAINERD
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
}

/// The CRI plugin's config section for a daemon in `dir` whose sandbox
/// image is `sandbox_image` (already imported, or imported before the
/// first RunPodSandbox): the runc v2 shim with cgroupfs (no systemd),
/// host-network pods only (CNI directories private and empty), and its
/// streaming server on 127.0.0.1.
pub fn cri_section(dir: &Path, sandbox_image: &str) -> String {
    let d = dir.display();
    format!(
        "[plugins.\"io.containerd.grpc.v1.cri\"]\n  sandbox_image = \"{sandbox_image}\"\n  \
         restrict_oom_score_adj = true\n  stream_server_address = \"127.0.0.1\"\n  \
         stream_server_port = \"0\"\n\
         [plugins.\"io.containerd.grpc.v1.cri\".cni]\n  bin_dir = \"{d}/cni-bin\"\n  \
         conf_dir = \"{d}/cni-conf\"\n\
         [plugins.\"io.containerd.grpc.v1.cri\".containerd]\n  default_runtime_name = \"runc\"\n\
         [plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.runc]\n  \
         runtime_type = \"io.containerd.runc.v2\"\n\
         [plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.runc.options]\n  \
         SystemdCgroup = false\n"
    )
}

/// A running containerd of the test's own; see the module docs for what
/// dropping it undoes.
#[derive(Debug)]
pub struct Containerd {
    dir: PathBuf,
    child: Child,
    cgroup_parent: String,
    images: Vec<String>,
    shared_existed: [bool; 2],
}

impl Containerd {
    /// Starts containerd with its config, state and sockets in `dir` and
    /// waits (at most 20 s) until it answers. `cri` is the CRI plugin's
    /// section (see [`cri_section`]); without it the plugin is disabled (it
    /// would look for CNI and a sandbox image of its own).
    pub fn start(dir: &Path, cri: Option<&str>) -> Self {
        let config = dir.join("config.toml");
        let d = dir.display();
        let plugins = match cri {
            None => "disabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n".to_owned(),
            Some(section) => format!("{section}\n"),
        };
        std::fs::write(
            &config,
            format!(
                "version = 2\nroot = \"{d}/root\"\nstate = \"{d}/state\"\n\
                 [grpc]\n  address = \"{d}/c.sock\"\n\
                 [ttrpc]\n  address = \"{d}/c.sock.ttrpc\"\n\
                 [debug]\n  address = \"{d}/debug.sock\"\n\
                 [plugins.\"io.containerd.internal.v1.opt\"]\n  path = \"{d}/opt\"\n\
                 {plugins}"
            ),
        )
        .expect("write containerd's config");
        let shared_existed = SHARED_DIRS.map(|d| Path::new(d).exists());
        let log = std::fs::File::create(dir.join("containerd.log")).expect("containerd's log");
        let child = Command::new("containerd")
            .arg("--config")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("containerd's log"))
            .stderr(log)
            .spawn()
            .expect("containerd (the Debian package; scripts/test.sh installs it)");
        let c = Containerd {
            dir: dir.to_owned(),
            child,
            cgroup_parent: format!("/{}", unique_name()),
            images: Vec::new(),
            shared_existed,
        };
        wait_until(Duration::from_secs(20), "containerd answers", || {
            c.ctr(&["version"]).status.success()
        });
        c
    }

    /// The daemon's gRPC socket (containerd's API and the CRI services).
    pub fn socket(&self) -> PathBuf {
        self.dir.join("c.sock")
    }

    /// The cgroup path (`/stasis-test-<random>`) below which the test puts
    /// every task's and pod's cgroup, in every hierarchy.
    pub fn cgroup_parent(&self) -> &str {
        &self.cgroup_parent
    }

    /// The daemon's log so far (for a failed assertion's message).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("containerd.log")).unwrap_or_default()
    }

    /// `ctr -a SOCKET -n k8s.io ARGS...` (the CRI plugin's namespace),
    /// bounded to a minute.
    pub fn ctr(&self, args: &[&str]) -> Run {
        run_bounded(
            Command::new("ctr")
                .arg("-a")
                .arg(self.socket())
                .args(["-n", "k8s.io"])
                .args(args),
        )
    }

    /// Imports the image archive `archive` (OCI or `docker save`'s), which
    /// names the image `name`, asserts that the store has it, and removes
    /// it on drop.
    pub fn import(&mut self, archive: &Path, name: &str) {
        self.images.push(name.to_owned());
        let archive = archive.to_str().expect("a UTF-8 archive path");
        let import = self.ctr(&["images", "import", archive]);
        assert!(import.status.success(), "ctr images import: {import:?}");
        let ls = self.ctr(&["images", "ls", "-q"]);
        assert!(
            ls.stdout.lines().any(|l| l == name),
            "{name} not imported: {ls:?}"
        );
    }

    /// A CRI runtime-service client over the daemon's socket, as the
    /// kubelet connects (call it inside a tokio runtime with I/O enabled).
    pub async fn runtime_client(&self) -> RuntimeClient {
        cri::runtime_service_client::RuntimeServiceClient::new(self.channel().await)
    }

    /// A CRI image-service client over the daemon's socket.
    pub async fn image_client(&self) -> ImageClient {
        cri::image_service_client::ImageServiceClient::new(self.channel().await)
    }

    async fn channel(&self) -> tonic::transport::Channel {
        let socket = self.socket();
        // The URI is not used: the connector dials the Unix socket.
        tonic::transport::Endpoint::try_from("http://[::]")
            .expect("a constant endpoint")
            .connect_with_connector(tower::service_fn(move |_: tonic::transport::Uri| {
                let socket = socket.clone();
                async move {
                    Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(
                        tokio::net::UnixStream::connect(socket).await?,
                    ))
                }
            }))
            .await
            .expect("connect to containerd's socket")
    }

    /// The directories of this daemon's cgroup parent, one per hierarchy
    /// (those that have it).
    pub fn parent_dirs(&self) -> Vec<PathBuf> {
        let Ok(entries) = std::fs::read_dir(CGROUP_ROOT) else {
            return Vec::new();
        };
        entries
            .flatten()
            .map(|e| e.path().join(&self.cgroup_parent[1..]))
            .filter(|p| p.is_dir())
            .collect()
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        // A frozen task cannot be killed (v1) or deleted: thaw first.
        for dir in self.parent_dirs() {
            thaw_cgroup_tree(&dir);
        }
        // Every task and container of this daemon is the test's.
        let tasks = self.ctr(&["task", "ls", "-q"]).stdout;
        for task in tasks.lines().filter(|t| !t.is_empty()) {
            let _ = self.ctr(&["task", "kill", "-s", "SIGKILL", task]);
            for _ in 0..100 {
                let _ = self.ctr(&["task", "delete", task]);
                if !self
                    .ctr(&["task", "ls", "-q"])
                    .stdout
                    .lines()
                    .any(|t| t == task)
                {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        let containers = self.ctr(&["container", "ls", "-q"]).stdout;
        for c in containers.lines().filter(|c| !c.is_empty()) {
            let _ = self.ctr(&["container", "rm", c]);
        }
        for image in std::mem::take(&mut self.images) {
            let _ = self.ctr(&["images", "rm", &image]);
        }
        let pid = rustix::process::Pid::from_child(&self.child);
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        let end = Instant::now() + Duration::from_secs(10);
        while self.child.try_wait().ok().flatten().is_none() {
            if Instant::now() > end {
                let _ = self.child.kill();
                let _ = self.child.wait();
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        // Any snapshot mount a failed run left under the directory.
        let dir = self.dir.to_string_lossy().into_owned();
        if let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") {
            let mut points: Vec<&str> = info
                .lines()
                .filter_map(|l| l.split(' ').nth(4))
                .filter(|m| m.starts_with(&dir))
                .collect();
            points.sort_by_key(|p| std::cmp::Reverse(p.len()));
            for p in points {
                let _ = Command::new("umount").arg("-l").arg(p).status();
            }
        }
        for dir in self.parent_dirs() {
            remove_cgroup_tree(&dir);
        }
        for (dir, existed) in SHARED_DIRS.iter().zip(self.shared_existed) {
            if !existed {
                let _ = std::fs::remove_dir(dir);
            }
        }
    }
}

/// A host-network pod's sandbox config, as the kubelet sends it for a
/// best-effort pod with the cgroupfs driver: its cgroup parent is
/// `<cgroup_parent>/kubepods/besteffort/pod<uid>`, and its containers share
/// its PID namespace (`pid = POD`, `shareProcessNamespace`), so the
/// sandbox's process is their PID 1 and the reaper of their orphans.
/// Host-network pods have no UTS namespace of their own: no hostname.
pub fn host_network_pod(
    name: &str,
    uid: &str,
    cgroup_parent: &str,
    log_directory: &Path,
) -> cri::PodSandboxConfig {
    cri::PodSandboxConfig {
        metadata: Some(cri::PodSandboxMetadata {
            name: name.to_owned(),
            uid: uid.to_owned(),
            namespace: "default".into(),
            attempt: 0,
        }),
        hostname: String::new(),
        log_directory: log_directory.display().to_string(),
        linux: Some(cri::LinuxPodSandboxConfig {
            cgroup_parent: format!("{cgroup_parent}/kubepods/besteffort/pod{uid}"),
            security_context: Some(cri::LinuxSandboxSecurityContext {
                namespace_options: Some(pod_namespaces()),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The namespaces of [`host_network_pod`]'s pods and their containers:
/// the node's network, the pod's PID and IPC namespaces.
pub fn pod_namespaces() -> cri::NamespaceOption {
    cri::NamespaceOption {
        network: cri::NamespaceMode::Node as i32,
        pid: cri::NamespaceMode::Pod as i32,
        ipc: cri::NamespaceMode::Pod as i32,
        ..Default::default()
    }
}

/// The host PID of a sandbox's process, from PodSandboxStatus's verbose
/// info (containerd's `info.pid`).
pub fn sandbox_pid(status: &cri::PodSandboxStatusResponse) -> u32 {
    let info = status
        .info
        .get("info")
        .expect("verbose PodSandboxStatus has info");
    let info: serde_json::Value = serde_json::from_str(info).expect("the info is JSON");
    let pid = info["pid"].as_u64().and_then(|p| u32::try_from(p).ok());
    pid.unwrap_or_else(|| panic!("no pid in the sandbox's info: {info}"))
}

/// Thaws the cgroup directory `dir` and every one below it, in whichever
/// hierarchy it is: `THAWED` to a v1 `freezer.state`, `0` to a v2
/// `cgroup.freeze` (a v2 freeze set on a descendant is its own, so each is
/// cleared). Errors are ignored: this is cleanup.
pub fn thaw_cgroup_tree(dir: &Path) {
    let _ = std::fs::write(dir.join("freezer.state"), "THAWED");
    if dir.join("cgroup.freeze").exists() {
        let _ = std::fs::write(dir.join("cgroup.freeze"), "0");
    }
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                thaw_cgroup_tree(&e.path());
            }
        }
    }
}

/// Removes the cgroup directory `dir` and the empty ones below it, deepest
/// first. Errors are ignored: this is cleanup (a cgroup that still holds a
/// process stays, and a test that checks for leftovers sees it).
pub fn remove_cgroup_tree(dir: &Path) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                remove_cgroup_tree(&e.path());
            }
        }
    }
    let _ = std::fs::remove_dir(dir);
}
