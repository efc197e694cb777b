//! `unpause --wait-healthy`: after the thaw, check the target every
//! [`GAP`] until a check passes, and only then succeed. A resumed service
//! is not back when its processes run again: its clients' connections may
//! have dropped, its leases lapsed, its caches gone stale.
//!
//! The check is worked out *before* the thaw ([`Gate::for_named`],
//! [`Gate::for_target`]), so a request that cannot be met is refused with
//! the target still paused. It is one of:
//! - a container's own health check (`run --health-cmd`), or `--health-cmd`
//!   run inside it as `exec` runs a command; a pod waits for each of its
//!   members that has a check;
//! - `--wait-port PORT`: a TCP connection to 127.0.0.1 or ::1 on PORT from
//!   inside the target's network namespace (its pod's, or that of its
//!   processes), for services without a shell.
//!
//! A container's own check that passes here is recorded in its health, as
//! a check of its monitor would be (so `ps` says healthy at once); failures
//! are not, since they are expected while it recovers.

use std::io::IsTerminal;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use connections::NetNs;
use sandbox::{ContainerRecord, Sandbox};

use crate::commands::Named;
use crate::exit::Refusal;

/// Time between checks while waiting.
pub const GAP: Duration = Duration::from_millis(100);
/// The longest a single connect may take.
const CONNECT_LIMIT: Duration = Duration::from_millis(500);

/// What `--wait-healthy` asked for.
#[derive(Debug, Clone, Default)]
pub struct Request {
    pub health_cmd: Option<String>,
    pub port: Option<u16>,
    pub limit: Duration,
}

/// What decides that a thawed target is healthy.
#[derive(Debug)]
pub enum Gate {
    /// Each container's check must pass (`own`: its `run --health-cmd`).
    Checks(Vec<Check>),
    /// The port must accept a connection in one of these namespaces
    /// (`None`: this process's own).
    Port {
        port: u16,
        netns: Vec<Option<NetNs>>,
    },
}

#[derive(Debug)]
pub struct Check {
    container: ContainerRecord,
    argv: Vec<String>,
    own: bool,
    timeout: Duration,
}

/// The result of the last check, for the progress line and the error.
#[derive(Debug, Default)]
struct Last {
    checks: u32,
    what: String,
    output: String,
}

/// Works out the gate of `item` (while it is still paused: a request that
/// cannot be met leaves it as it was), runs `thaw`, then waits for the gate.
pub fn gated(
    sandbox: &Sandbox,
    item: &Named,
    req: Option<&Request>,
    name: &str,
    thaw: impl FnOnce() -> Result<()>,
) -> Result<()> {
    let gate = req.map(|r| Gate::for_named(sandbox, item, r)).transpose()?;
    thaw()?;
    match (gate, req) {
        (Some(gate), Some(r)) => gate.wait(Some(sandbox), name, r.limit),
        _ => Ok(()),
    }
}

impl Gate {
    /// The gate of a stasis container or pod.
    pub fn for_named(sandbox: &Sandbox, item: &Named, req: &Request) -> Result<Gate> {
        if let Some(port) = req.port {
            let pod = match item {
                Named::Container(c) => sandbox.pod(&c.pod)?,
                Named::Pod(p) => (**p).clone(),
            };
            let netns = pod
                .share
                .contains(&sandbox::ns::Namespace::Net)
                .then(|| NetNs::new(sandbox.pod_dir(&pod).join("ns/net")));
            return Ok(Gate::Port {
                port,
                netns: vec![netns],
            });
        }
        let checks = match item {
            Named::Container(c) => match &req.health_cmd {
                Some(cmd) => vec![Check::shell(c, cmd)],
                None => vec![Check::own(c).ok_or_else(|| {
                    Refusal::usage(format!(
                        "container {} has no health check: give --health-cmd or --wait-port",
                        c.name
                    ))
                })??],
            },
            Named::Pod(p) => {
                if req.health_cmd.is_some() {
                    return Err(Refusal::usage(format!(
                        "--health-cmd runs in a container, and {} is a pod: name its container, or give --wait-port",
                        p.name
                    ))
                    .into());
                }
                let checks = sandbox
                    .members(p)?
                    .iter()
                    .filter_map(Check::own)
                    .collect::<Result<Vec<_>>>()?;
                if checks.is_empty() {
                    return Err(Refusal::usage(format!(
                        "no container of pod {} has a health check: give --wait-port",
                        p.name
                    ))
                    .into());
                }
                checks
            }
        };
        Ok(Gate::Checks(checks))
    }

    /// The gate of a target given by PID, cgroup or runtime ID: only a
    /// port, in the network namespaces of its processes.
    pub fn for_target(proc: &Path, pids: &[u32], port: u16) -> Result<Gate> {
        let places = connections::namespaces::places(proc, pids, false)
            .context("finding the target's network namespaces")?;
        if places.is_empty() {
            anyhow::bail!("the target has no process whose network namespace could be read");
        }
        let netns = places
            .into_iter()
            .map(|p| (!p.is_callers).then_some(p.netns))
            .collect();
        Ok(Gate::Port { port, netns })
    }

    /// Checks every [`GAP`] until the gate passes or `limit` runs out (an
    /// error that says what the last check did). `name` is the target as
    /// the user gave it. A progress line goes to stderr on a terminal.
    pub fn wait(&self, sandbox: Option<&Sandbox>, name: &str, limit: Duration) -> Result<()> {
        let start = Instant::now();
        let end = start + limit;
        let progress = std::io::stderr().is_terminal();
        let mut last = Last::default();
        let result = (|| match self {
            Gate::Checks(checks) => {
                let sandbox = sandbox.context("health checks need the state store")?;
                for check in checks {
                    if !check.wait(sandbox, end, &mut last, &|l| show(progress, name, start, l))? {
                        return Ok(false);
                    }
                }
                Ok(true)
            }
            Gate::Port { port, netns } => loop {
                last.checks += 1;
                let open = port_open(netns, *port, end)?;
                last.what = if open {
                    format!("port {port} accepted")
                } else {
                    format!("port {port} refused or did not answer")
                };
                show(progress, name, start, &last);
                if open {
                    break Ok(true);
                }
                if !pause_until(end) {
                    break Ok(false);
                }
            },
        })();
        if progress {
            eprint!("\r\x1b[K");
        }
        match result {
            Ok(true) => Ok(()),
            Ok(false) => {
                let output = last.output.trim_end();
                if !output.is_empty() {
                    eprintln!("{output}");
                }
                Err(anyhow::Error::new(Refusal::failure(format!(
                    "{name} did not become healthy within {}: {}, the last: {}",
                    crate::lease::short(limit),
                    checks(last.checks),
                    last.what
                ))))
            }
            Err(e) => Err(e),
        }
    }
}

impl Check {
    fn shell(c: &ContainerRecord, cmd: &str) -> Check {
        Check {
            container: c.clone(),
            argv: vec!["/bin/sh".into(), "-c".into(), cmd.to_owned()],
            own: false,
            timeout: sandbox::health::DEFAULT_TIMEOUT,
        }
    }

    /// The container's own check, if it has one.
    fn own(c: &ContainerRecord) -> Option<Result<Check>> {
        let config = c.healthcheck.as_ref()?;
        Some(
            config
                .argv()
                .map(|argv| Check {
                    container: c.clone(),
                    argv,
                    own: true,
                    timeout: config.timeout,
                })
                .map_err(Into::into),
        )
    }

    /// Runs the check until it passes; `false` when `end` came first.
    fn wait(
        &self,
        sandbox: &Sandbox,
        end: Instant,
        last: &mut Last,
        show: &dyn Fn(&Last),
    ) -> Result<bool> {
        let c = &self.container;
        loop {
            let left = end.saturating_duration_since(Instant::now());
            let probe = sandbox
                .probe(c, &self.argv, self.timeout.min(left), false)
                .with_context(|| format!("checking the health of container {}", c.name))?;
            last.checks += 1;
            last.what = match probe.exit_code {
                -1 => format!("the check in {} did not finish in time", c.name),
                code => format!("the check in {} exited {code}", c.name),
            };
            last.output = probe.output.clone();
            show(last);
            if probe.passed() {
                if self.own {
                    sandbox.record_health(&c.id, &probe, false)?;
                }
                return Ok(true);
            }
            if !pause_until(end) {
                return Ok(false);
            }
        }
    }
}

/// Sleeps [`GAP`], or less if `end` is nearer; `false` once `end` has passed.
fn pause_until(end: Instant) -> bool {
    let left = end.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return false;
    }
    std::thread::sleep(GAP.min(left));
    Instant::now() < end
}

/// Whether `port` accepts a TCP connection on loopback (IPv4 or IPv6) in
/// any of the namespaces.
fn port_open(netns: &[Option<NetNs>], port: u16, end: Instant) -> Result<bool> {
    let attempt = move || {
        [
            SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
            SocketAddr::from((Ipv6Addr::LOCALHOST, port)),
        ]
        .iter()
        .any(|addr| {
            let left = end.saturating_duration_since(Instant::now());
            let limit = CONNECT_LIMIT.min(left).max(Duration::from_millis(1));
            TcpStream::connect_timeout(addr, limit).is_ok()
        })
    };
    for ns in netns {
        let open = match ns {
            Some(ns) => ns
                .run(attempt)
                .with_context(|| format!("connecting in {}", ns.path().display()))?,
            None => attempt(),
        };
        if open {
            return Ok(true);
        }
    }
    Ok(false)
}

/// The progress line: `waiting for web to be healthy: 1.2s, 7 checks, the last: ...`.
fn show(enabled: bool, name: &str, start: Instant, last: &Last) {
    if enabled {
        eprint!(
            "\r\x1b[Kwaiting for {name} to be healthy: {:.1}s, {}, the last: {}",
            start.elapsed().as_secs_f64(),
            checks(last.checks),
            last.what
        );
    }
}

fn checks(n: u32) -> String {
    if n == 1 {
        "1 check".to_owned()
    } else {
        format!("{n} checks")
    }
}
