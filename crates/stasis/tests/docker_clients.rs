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

use common::terminal::Terminal;
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

    /// [`Serve::start`], with a busybox root filesystem imported as bbox.
    fn with_bbox(s: &Stasis, dir: &Scratch) -> Serve {
        let serve = Serve::start(s, dir);
        let tar = busybox_tar(dir);
        docker(&serve, &["import", &tar.display().to_string(), "bbox"]).ok();
        serve
    }

    fn host(&self) -> String {
        format!("unix://{}", self.socket.display())
    }

    /// The docker CLI's configuration directory: the scratch one.
    fn config_dir(&self) -> &Path {
        self.socket.parent().unwrap_or(Path::new("/tmp"))
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        terminate(&mut self.child, Duration::from_secs(20));
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
        "sh", "sleep", "echo", "cat", "hostname", "ls", "ps", "true", "wc", "stty",
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
    docker_fed(serve, args, None)
}

/// `docker -H SOCKET ARGS...` with `input` piped to its stdin.
fn docker_fed(serve: &Serve, args: &[&str], input: Option<&[u8]>) -> Run {
    run_fed(
        Command::new("docker")
            .arg("-H")
            .arg(serve.host())
            .args(args)
            .env_remove("DOCKER_HOST")
            .env("DOCKER_CONFIG", serve.config_dir()),
        input,
    )
}

/// `docker -H SOCKET ARGS...` on a terminal of `rows` × `cols`.
fn docker_on_terminal(serve: &Serve, args: &[&str], rows: u16, cols: u16) -> Terminal {
    let mut argv = vec![
        "env".to_owned(),
        "-u".into(),
        "DOCKER_HOST".into(),
        format!("DOCKER_CONFIG={}", serve.config_dir().display()),
        "docker".into(),
        "-H".into(),
        serve.host(),
    ];
    argv.extend(args.iter().map(|a| a.to_string()));
    Terminal::start(&argv, rows, cols)
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
fn the_docker_cli_runs_and_execs_interactively() {
    if !root_or_skip("the_docker_cli_runs_and_execs_interactively") {
        return;
    }
    let s = Stasis::new();
    let dir = Scratch::new();
    let serve = Serve::with_bbox(&s, &dir);

    // `run -i`: piped stdin, closed at its end (StdinOnce).
    let run = docker_fed(
        &serve,
        &["run", "-i", "--rm", "bbox", "sh", "-c", "cat; echo end"],
        Some(b"piped in\n"),
    )
    .ok();
    assert_eq!(run.stdout, "piped in\nend\n", "{run:?}");

    docker(
        &serve,
        &["run", "-d", "--name", "box", "bbox", "sleep", "1000"],
    )
    .ok();
    // exec: its streams apart and its status.
    let exec = docker(
        &serve,
        &[
            "exec",
            "-e",
            "WHO=exec",
            "box",
            "sh",
            "-c",
            "echo out $WHO; echo err >&2; exit 7",
        ],
    );
    assert_eq!(
        (exec.code(), exec.stdout.as_str(), exec.stderr.as_str()),
        (7, "out exec\n", "err\n"),
        "{exec:?}"
    );
    let exec = docker_fed(&serve, &["exec", "-i", "box", "cat"], Some(b"to exec\n")).ok();
    assert_eq!(exec.stdout, "to exec\n");
    // exec -d: it runs on after the CLI returns.
    docker(
        &serve,
        &[
            "exec",
            "-d",
            "box",
            "sh",
            "-c",
            "sleep 1; echo later > /tmp/mark",
        ],
    )
    .ok();
    wait_until(Duration::from_secs(15), "the detached exec's file", || {
        docker(&serve, &["exec", "box", "cat", "/tmp/mark"]).stdout == "later\n"
    });
    // What cannot run: told on the stream, docker's status for it.
    let missing = docker(&serve, &["exec", "box", "nosuch"]);
    assert_eq!(missing.code(), 127, "{missing:?}");
    assert!(
        missing.stdout.contains("nosuch: executable file not found"),
        "{missing:?}"
    );

    // run -it: a shell on a terminal of the outer one's size.
    let mut t = docker_on_terminal(
        &serve,
        &["run", "-it", "--name", "tty1", "bbox", "sh"],
        33,
        101,
    );
    t.wait_for("# ", 1);
    t.type_keys(b"stty size\n");
    t.wait_for("33 101", 1);
    t.type_keys(b"echo $((6*7))\n");
    t.wait_for("42", 1);
    t.type_keys(b"exit 3\n");
    assert_eq!(t.exit_code(), Some(3), "the shell's status; {:?}", t.seen());
    drop(t);
    // exec -it: another shell, on a terminal of its own.
    let mut t = docker_on_terminal(&serve, &["exec", "-it", "box", "sh"], 30, 90);
    t.wait_for("# ", 1);
    t.type_keys(b"stty size; echo $((5*5))\n");
    t.wait_for("30 90", 1);
    t.wait_for("25", 1);
    t.type_keys(b"exit 4\n");
    assert_eq!(t.exit_code(), Some(4), "the shell's status; {:?}", t.seen());
    drop(t);
    // attach to a detached -it container, and ctrl-p ctrl-q away from it.
    docker(&serve, &["run", "-dit", "--name", "bg", "bbox", "sh"]).ok();
    let mut t = docker_on_terminal(&serve, &["attach", "bg"], 24, 80);
    std::thread::sleep(Duration::from_millis(500));
    t.type_keys(b"echo $((7*7))\n");
    t.wait_for("49", 1);
    t.type_keys(b"\x10\x11");
    // The docker CLI's own words and status for a detach.
    t.wait_for("read escape sequence", 1);
    assert_eq!(t.exit_code(), Some(1), "detached; {:?}", t.seen());
    drop(t);
    let status = docker(&serve, &["inspect", "-f", "{{.State.Status}}", "bg"]).ok();
    assert_eq!(status.stdout.trim(), "running");
    docker(&serve, &["rm", "-f", "box", "tty1", "bg"]).ok();
}

#[test]
fn the_python_docker_sdk_drives_stasis() {
    if !root_or_skip("the_python_docker_sdk_drives_stasis") {
        return;
    }
    let s = Stasis::new();
    let dir = Scratch::new();
    let serve = Serve::with_bbox(&s, &dir);
    let run = run_bounded(
        Command::new("/usr/bin/python3")
            .arg(workload("docker_sdk.py"))
            .arg(serve.host()),
    );
    assert!(run.status.success(), "{run:?}");
    assert!(run.stdout.contains("sdk ok"), "{run:?}");
}
