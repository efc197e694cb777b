//! The real docker CLI and the Python docker SDK against `stasis serve`
//! (root only): the clients people script pause with, pointed at stasis.
//! `docker import` of a busybox root filesystem, `run` detached and
//! attached, the container:X namespace modes, `ps --filter`, pause, inspect,
//! unpause, logs, stop, rm; and a pause done by the stasis CLI seen at once.

mod common;

use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::*;

/// `stasis serve` on a socket in a scratch directory, stopped on drop.
struct Serve {
    child: Child,
    socket: PathBuf,
}

impl Serve {
    fn start(s: &Stasis, dir: &Scratch) -> Serve {
        let socket = dir.0.join("stasis.sock");
        let child = Command::new(STASIS)
            .arg("--root")
            .arg(&s.root.0)
            .args(["serve", "--socket"])
            .arg(&socket)
            .env("STASIS_PAUSE", pause_binary())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn stasis serve");
        wait_until(Duration::from_secs(30), "the API socket", || {
            UnixStream::connect(&socket).is_ok()
        });
        Serve { child, socket }
    }

    fn host(&self) -> String {
        format!("unix://{}", self.socket.display())
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        // Our own child, unreaped: its PID is its own.
        let _ = rustix::process::kill_process(
            rustix::process::Pid::from_child(&self.child),
            rustix::process::Signal::TERM,
        );
        let _ = wait_bounded(&mut self.child, Duration::from_secs(20));
    }
}

/// A busybox root filesystem as a tar archive, for `docker import`.
fn busybox_tar(dir: &Scratch) -> PathBuf {
    let root = dir.0.join("rootfs");
    for d in ["bin", "etc", "tmp", "proc", "sys", "dev"] {
        std::fs::create_dir_all(root.join(d)).expect("mkdir");
    }
    std::fs::copy("/bin/busybox", root.join("bin/busybox")).expect("busybox");
    for tool in [
        "sh", "sleep", "echo", "cat", "hostname", "ls", "ps", "true", "wc",
    ] {
        std::os::unix::fs::symlink("busybox", root.join("bin").join(tool)).expect("link");
    }
    std::fs::write(root.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n").expect("passwd");
    let tar = dir.0.join("rootfs.tar");
    run_bounded(
        Command::new("tar")
            .arg("-C")
            .arg(&root)
            .arg("-cf")
            .arg(&tar)
            .arg("."),
    )
    .ok();
    tar
}

fn docker(serve: &Serve, args: &[&str]) -> Run {
    run_bounded(
        Command::new("docker")
            .arg("-H")
            .arg(serve.host())
            .args(args)
            .env_remove("DOCKER_HOST")
            .env(
                "DOCKER_CONFIG",
                serve.socket.parent().unwrap_or(Path::new("/tmp")),
            ),
    )
}

#[test]
fn the_docker_cli_drives_stasis() {
    if !root_or_skip("the_docker_cli_drives_stasis") {
        return;
    }
    let s = Stasis::new();
    let dir = Scratch::new();
    let serve = Serve::start(&s, &dir);
    let tar = busybox_tar(&dir);
    let tar = tar.display().to_string();
    docker(&serve, &["import", &tar, "bbox"]).ok();
    assert!(docker(&serve, &["images"]).ok().stdout.contains("bbox"));

    let id = docker(
        &serve,
        &[
            "run",
            "-d",
            "--name",
            "web",
            "--label",
            "tier=web",
            "-e",
            "GREETING=hi",
            "bbox",
            "sh",
            "-c",
            "echo $GREETING; hostname; exec sleep 1000",
        ],
    )
    .ok()
    .stdout;
    assert_eq!(id.trim().len(), 64, "the full ID: {id}");
    // Joined to web's pod: the same network, PID and IPC namespaces.
    docker(
        &serve,
        &[
            "run",
            "-d",
            "--name",
            "side",
            "--net",
            "container:web",
            "--pid",
            "container:web",
            "--ipc",
            "container:web",
            "bbox",
            "sleep",
            "1000",
        ],
    )
    .ok();
    assert_eq!(
        s.inspect("side")["pod"],
        s.inspect("web")["pod"],
        "container:web joins web's pod"
    );

    // Attached: the output, and the command's status.
    let run = docker(
        &serve,
        &["run", "--rm", "bbox", "sh", "-c", "echo attached; exit 3"],
    );
    assert_eq!(run.code(), 3, "{run:?}");
    assert_eq!(run.stdout, "attached\n", "{run:?}");

    let listed = docker(
        &serve,
        &["ps", "--filter", "label=tier=web", "--format", "{{.Names}}"],
    )
    .ok()
    .stdout;
    assert_eq!(listed.trim(), "web");

    docker(&serve, &["pause", "web"]).ok();
    let status = |name: &str| {
        docker(&serve, &["inspect", "-f", "{{.State.Status}}", name])
            .ok()
            .stdout
            .trim()
            .to_owned()
    };
    assert_eq!(status("web"), "paused");
    assert_eq!(
        s.inspect("web")["State"]["Status"],
        "paused",
        "the CLI sees it"
    );
    docker(&serve, &["unpause", "web"]).ok();
    assert_eq!(status("web"), "running");
    docker(&serve, &["unpause", "web"]).fails_with(1, "is not paused");

    // A pause by the stasis CLI is seen by docker at once.
    s.run(&["pause", "web"]).ok();
    let ps = docker(&serve, &["ps", "--format", "{{.Names}} {{.Status}}"])
        .ok()
        .stdout;
    assert!(ps.contains("web Up") && ps.contains("(Paused)"), "{ps}");
    s.run(&["unpause", "web"]).ok();

    let logs = docker(&serve, &["logs", "web"]).ok();
    assert!(logs.stdout.starts_with("hi\n"), "{logs:?}");
    docker(&serve, &["stop", "-t", "1", "side"]).ok();
    assert_eq!(status("side"), "exited");
    // An exited container starts again, the same one in the same pod.
    docker(&serve, &["start", "side"]).ok();
    assert_eq!(status("side"), "running");
    assert_eq!(s.inspect("side")["pod"], s.inspect("web")["pod"]);
    // A restart: stopped (its sleep, PID 1 of its namespace, ignores the
    // SIGTERM: killed after 1 s), started again, its log going on.
    let pid = s.inspect("web")["State"]["Pid"].clone();
    docker(&serve, &["restart", "-t", "1", "web"]).ok();
    assert_eq!(status("web"), "running");
    assert_ne!(s.inspect("web")["State"]["Pid"], pid, "a new process");
    assert_eq!(s.inspect("web")["Id"], id.trim(), "the same container");
    wait_until(
        Duration::from_secs(15),
        "the restarted run's output",
        || {
            docker(&serve, &["logs", "web"])
                .ok()
                .stdout
                .matches("hi\n")
                .count()
                == 2
        },
    );
    docker(&serve, &["rm", "-f", "web", "side"]).ok();
    assert_eq!(docker(&serve, &["ps", "-aq"]).ok().stdout, "");
    docker(&serve, &["inspect", "nosuch"]).fails_with(1, "No such object");
}

#[test]
fn the_python_docker_sdk_drives_stasis() {
    if !root_or_skip("the_python_docker_sdk_drives_stasis") {
        return;
    }
    let s = Stasis::new();
    let dir = Scratch::new();
    let serve = Serve::start(&s, &dir);
    let tar = busybox_tar(&dir);
    docker(&serve, &["import", &tar.display().to_string(), "bbox"]).ok();
    let run = run_bounded(
        Command::new("/usr/bin/python3")
            .arg(workload("docker_sdk.py"))
            .arg(serve.host()),
    );
    assert!(run.status.success(), "{run:?}");
    assert!(run.stdout.contains("sdk ok"), "{run:?}");
}
