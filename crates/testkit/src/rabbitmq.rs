//! A private RabbitMQ broker for the pause-without-harm tests: its own node
//! name, directories, ports and `epmd`, all on 127.0.0.1, torn down by PID
//! when the guard drops (even after a panic).
//!
//! `rabbitmq-server` (Debian) started as root drops to the `rabbitmq` user,
//! so every directory it is given belongs to that user. Its `epmd` is started
//! here, in the foreground on a port of its own, so that its PID is known:
//! the broker registers with it instead of daemonizing one.

use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running broker. Dropping it stops the broker, then its `epmd`, and
/// removes its directory.
#[derive(Debug)]
pub struct RabbitMq {
    dir: PathBuf,
    port: u16,
    epmd: Child,
    server: Child,
}

/// A port that was free a moment ago on 127.0.0.1.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port on 127.0.0.1")
}

fn chown_to_rabbitmq(path: &Path) {
    let status = Command::new("chown")
        .args(["-R", "rabbitmq:rabbitmq"])
        .arg(path)
        .status()
        .expect("run chown");
    assert!(status.success(), "chown rabbitmq {}", path.display());
}

impl RabbitMq {
    /// Starts a broker and waits (at most 60 s) until it accepts AMQP
    /// connections. `name` makes the node name and directory unique.
    pub fn start(name: &str) -> RabbitMq {
        let dir = std::env::temp_dir().join(format!("{name}-rabbitmq"));
        let _ = std::fs::remove_dir_all(&dir);
        for sub in ["mnesia", "log", "home"] {
            std::fs::create_dir_all(dir.join(sub)).expect("mkdir for the broker");
        }
        std::fs::write(dir.join("plugins"), "[].\n").expect("write the plugins file");
        std::fs::write(
            dir.join("rabbitmq.conf"),
            "loopback_users = none\nheartbeat = 10\n",
        )
        .expect("write the broker config");
        chown_to_rabbitmq(&dir);
        let (port, dist_port, epmd_port) = (free_port(), free_port(), free_port());
        let epmd = Command::new("epmd")
            .args(["-address", "127.0.0.1", "-port", &epmd_port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start epmd (Debian package erlang-base, pulled in by rabbitmq-server)");
        let log = std::fs::File::create(dir.join("server.out")).expect("create the server log");
        let server = Command::new("rabbitmq-server")
            .current_dir(&dir)
            .env("RABBITMQ_MNESIA_BASE", dir.join("mnesia"))
            .env("RABBITMQ_LOG_BASE", dir.join("log"))
            .env("RABBITMQ_NODENAME", format!("{name}@localhost"))
            .env("RABBITMQ_NODE_IP_ADDRESS", "127.0.0.1")
            .env("RABBITMQ_NODE_PORT", port.to_string())
            .env("RABBITMQ_DIST_PORT", dist_port.to_string())
            .env("ERL_EPMD_ADDRESS", "127.0.0.1")
            .env("ERL_EPMD_PORT", epmd_port.to_string())
            .env("RABBITMQ_PID_FILE", dir.join("pid"))
            .env("RABBITMQ_ENABLED_PLUGINS_FILE", dir.join("plugins"))
            .env("RABBITMQ_CONFIG_FILE", dir.join("rabbitmq"))
            .env("HOME", dir.join("home"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("dup the log"))
            .stderr(log)
            .process_group(0)
            .spawn()
            .expect("start rabbitmq-server (Debian package rabbitmq-server)");
        let broker = RabbitMq {
            dir,
            port,
            epmd,
            server,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "RabbitMQ did not listen on 127.0.0.1:{port} within 60 s; see {}",
                broker.dir.join("server.out").display()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        broker
    }

    /// The AMQP port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `amqp://guest:guest@127.0.0.1:PORT/`.
    pub fn url(&self) -> String {
        format!("amqp://guest:guest@127.0.0.1:{}/%2F", self.port)
    }

    /// The PID of the broker's Erlang VM, from its pid file.
    fn beam_pid(&self) -> Option<i32> {
        std::fs::read_to_string(self.dir.join("pid"))
            .ok()?
            .trim()
            .parse()
            .ok()
    }
}

/// Signals `pid` and waits at most `limit` for it to go.
fn stop(pid: i32, signal: rustix::process::Signal, limit: Duration) -> bool {
    let Some(p) = rustix::process::Pid::from_raw(pid) else {
        return true;
    };
    if rustix::process::kill_process(p, signal).is_err() {
        return true;
    }
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if rustix::process::test_kill_process(p).is_err() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

impl Drop for RabbitMq {
    fn drop(&mut self) {
        use rustix::process::Signal;
        if let Some(beam) = self.beam_pid() {
            if !stop(beam, Signal::TERM, Duration::from_secs(20)) {
                stop(beam, Signal::KILL, Duration::from_secs(5));
            }
        }
        let _ = self.server.kill();
        let _ = self.server.wait();
        let _ = self.epmd.kill();
        let _ = self.epmd.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
