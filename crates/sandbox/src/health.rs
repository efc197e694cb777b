//! Health checks, kept as docker keeps them (moby's `daemon/health.go`): a
//! command run inside the container as `exec` runs one, every interval.
//! Exit 0 is a pass; anything else, a timeout included, is a failure;
//! `retries` failures in a row make the container unhealthy, and failures
//! within the start period do not count while it is still starting. The
//! last five results are kept, each with at most 4 KiB of output.
//!
//! The checks of a running container run in a process of their own
//! (`stasis internal-health`, which the monitor starts and ends): the
//! monitor reaps every child with `wait(-1)` (it is the container's
//! subreaper), which would steal a check's exit status if both lived in one
//! process. No check starts while the container is paused, and one that was
//! running when it froze waits for the thaw rather than timing out on time
//! the container never had.
//!
//! [`Sandbox::probe`] runs one check; `unpause --wait-healthy` uses it too.

use std::io::Read;
use std::process::Stdio;
use std::time::{Duration, Instant, SystemTime};

use rustix::event::{PollFd, PollFlags, Timespec};
use serde::{Deserialize, Serialize};

use crate::container::{exit_code, ContainerRecord, ContainerStatus};
use crate::error::{Error, Result};
use crate::id::Id;
use crate::spawn::spawn_member;
use crate::Sandbox;

/// Docker's defaults.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
pub const DEFAULT_RETRIES: u32 = 3;
/// Results kept (moby's `maxLogEntries`).
pub const MAX_LOG: usize = 5;
/// Bytes of output kept per result (moby's `maxOutputLen`).
pub const MAX_OUTPUT: usize = 4096;

/// A container's health check, in docker's `Config.Healthcheck` shape
/// (durations in nanoseconds), defaults applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HealthConfig {
    /// `["CMD-SHELL", command]` (run with `/bin/sh -c`) or `["CMD", argv...]`.
    pub test: Vec<String>,
    #[serde(with = "nanos")]
    pub interval: Duration,
    #[serde(with = "nanos")]
    pub timeout: Duration,
    #[serde(with = "nanos")]
    pub start_period: Duration,
    pub retries: u32,
}

impl HealthConfig {
    /// A shell command (`--health-cmd`), with docker's defaults for what is
    /// `None` or zero. A duration below 1 ms (other than zero) is refused,
    /// as docker refuses it.
    pub fn shell(
        command: &str,
        interval: Option<Duration>,
        timeout: Option<Duration>,
        start_period: Option<Duration>,
        retries: Option<u32>,
    ) -> Result<Self> {
        if command.trim().is_empty() {
            return Err(Error::InvalidArgument {
                what: "health command",
                value: command.to_owned(),
                reason: "it is empty",
            });
        }
        let pick = |what: &'static str, d: Option<Duration>, default: Duration| match d {
            None => Ok(default),
            Some(d) if d.is_zero() => Ok(default),
            Some(d) if d < Duration::from_millis(1) => Err(Error::InvalidArgument {
                what,
                value: format!("{d:?}"),
                reason: "it cannot be less than 1ms",
            }),
            Some(d) => Ok(d),
        };
        Ok(HealthConfig {
            test: vec!["CMD-SHELL".to_owned(), command.to_owned()],
            interval: pick("health interval", interval, DEFAULT_INTERVAL)?,
            timeout: pick("health timeout", timeout, DEFAULT_TIMEOUT)?,
            start_period: pick("health start period", start_period, Duration::ZERO)?,
            retries: retries.filter(|&r| r > 0).unwrap_or(DEFAULT_RETRIES),
        })
    }

    /// The command line the check runs.
    pub fn argv(&self) -> Result<Vec<String>> {
        shell_or_argv(&self.test)
    }
}

/// The argv of a docker `Test`: `CMD-SHELL` through `/bin/sh -c`, `CMD` as is.
fn shell_or_argv(test: &[String]) -> Result<Vec<String>> {
    match test.split_first() {
        Some((kind, [command])) if kind == "CMD-SHELL" => {
            Ok(vec!["/bin/sh".into(), "-c".into(), command.clone()])
        }
        Some((kind, argv)) if kind == "CMD" && !argv.is_empty() => Ok(argv.to_vec()),
        _ => Err(Error::InvalidArgument {
            what: "health check",
            value: test.join(" "),
            reason: "it must be CMD-SHELL COMMAND or CMD ARGV...",
        }),
    }
}

/// Where a container's health stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HealthStatus {
    /// No check has passed yet (and the failures have not run out).
    Starting,
    Healthy,
    Unhealthy,
}

impl HealthStatus {
    /// The word docker uses.
    pub fn word(self) -> &'static str {
        match self {
            HealthStatus::Starting => "starting",
            HealthStatus::Healthy => "healthy",
            HealthStatus::Unhealthy => "unhealthy",
        }
    }
}

/// A container's health, in docker's `State.Health` shape.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HealthState {
    pub status: HealthStatus,
    pub failing_streak: u32,
    /// The last [`MAX_LOG`] results, oldest first.
    pub log: Vec<HealthLog>,
}

/// One check's result, as docker logs it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HealthLog {
    /// RFC 3339, UTC.
    pub start: String,
    pub end: String,
    /// The check's exit status; -1 when it timed out or could not start.
    pub exit_code: i32,
    pub output: String,
}

impl HealthState {
    /// Before the first check.
    pub fn starting() -> Self {
        HealthState {
            status: HealthStatus::Starting,
            failing_streak: 0,
            log: Vec::new(),
        }
    }

    /// Takes a result in, as moby's `handleProbeResult` does: a pass makes
    /// it healthy; a failure counts, unless it came within the start period
    /// while still starting, and `retries` of them in a row make it
    /// unhealthy.
    pub fn record(&mut self, probe: &Probe, in_start_period: bool, retries: u32) {
        self.log.push(probe.log());
        if self.log.len() > MAX_LOG {
            self.log.drain(..self.log.len() - MAX_LOG);
        }
        if probe.passed() {
            self.failing_streak = 0;
            self.status = HealthStatus::Healthy;
        } else if !(self.status == HealthStatus::Starting && in_start_period) {
            self.failing_streak += 1;
            if self.failing_streak >= retries {
                self.status = HealthStatus::Unhealthy;
            }
        }
    }
}

/// What one check did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    pub start: SystemTime,
    pub end: SystemTime,
    /// Its exit status (128 + N for death by signal N); -1 when it timed
    /// out or could not start.
    pub exit_code: i32,
    /// Its stdout and stderr together, at most [`MAX_OUTPUT`] bytes.
    pub output: String,
}

impl Probe {
    pub fn passed(&self) -> bool {
        self.exit_code == 0
    }

    fn log(&self) -> HealthLog {
        HealthLog {
            start: crate::time::rfc3339_nanos(self.start),
            end: crate::time::rfc3339_nanos(self.end),
            exit_code: self.exit_code,
            output: self.output.clone(),
        }
    }
}

/// A duration as docker prints a Go `time.Duration` in the timeout message.
fn go_duration(d: Duration) -> String {
    if d.subsec_millis() == 0 && d.subsec_nanos() == 0 {
        format!("{}s", d.as_secs())
    } else if d.subsec_nanos() % 1_000_000 == 0 {
        if d.as_secs() == 0 {
            format!("{}ms", d.subsec_millis())
        } else {
            format!("{}s", d.as_secs_f64())
        }
    } else {
        format!("{d:?}")
    }
}

impl Sandbox {
    /// Runs one check in a running container (its namespaces and cgroup
    /// leaf, as `exec`), collecting up to [`MAX_OUTPUT`] bytes of its
    /// output, and kills it after `timeout`. When `wait_while_paused`, a
    /// check the container's freeze caught waits for the thaw and gets its
    /// time afresh. A check that cannot start is a failed result (exit -1),
    /// as docker logs it; a container that is not running is an error.
    pub fn probe(
        &self,
        c: &ContainerRecord,
        argv: &[String],
        timeout: Duration,
        wait_while_paused: bool,
    ) -> Result<Probe> {
        let spec = self.member_spec(c, argv.to_vec(), Vec::new(), None)?;
        let start = SystemTime::now();
        let failed = |message: String| Probe {
            start,
            end: SystemTime::now(),
            exit_code: -1,
            output: message,
        };
        let (read_end, write_end) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)
            .map_err(|e| Error::Probe {
                container: c.name.clone(),
                source: e.into(),
            })?;
        let write_err = write_end.try_clone().map_err(|source| Error::Probe {
            container: c.name.clone(),
            source,
        })?;
        let mut child = match spawn_member(spec, move |cmd| {
            cmd.stdin(Stdio::null())
                .stdout(Stdio::from(write_end))
                .stderr(Stdio::from(write_err));
        }) {
            Ok(child) => child,
            Err(e) => return Ok(failed(crate::error::chain_text(&e))),
        };
        // The spawn closure held the write ends; once it is dropped only the
        // check (and what it starts) holds them, so EOF means they are done.
        let io_err = |source: std::io::Error| Error::Probe {
            container: c.name.clone(),
            source,
        };
        rustix::io::ioctl_fionbio(&read_end, true).map_err(|e| io_err(e.into()))?;
        let pidfd = rustix::process::pidfd_open(
            rustix::process::Pid::from_child(&child),
            rustix::process::PidfdFlags::empty(),
        )
        .map_err(|e| io_err(e.into()))?;
        let mut pipe = std::fs::File::from(read_end);
        let mut output = Vec::new();
        let mut pipe_open = true;
        let mut deadline = Instant::now() + timeout;
        let mut timed_out = false;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let wait = Timespec {
                tv_sec: left.as_secs() as i64,
                tv_nsec: left.subsec_nanos().into(),
            };
            let mut fds = vec![PollFd::new(&pidfd, PollFlags::IN)];
            if pipe_open {
                fds.push(PollFd::new(&pipe, PollFlags::IN));
            }
            let ready = match rustix::event::poll(&mut fds, Some(&wait)) {
                Ok(n) => n,
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => return Err(io_err(e.into())),
            };
            let exited = !fds[0].revents().is_empty();
            let readable = fds.get(1).is_some_and(|f| !f.revents().is_empty());
            if readable || exited {
                pipe_open &= drain(&mut pipe, &mut output);
            }
            if exited {
                break;
            }
            if ready == 0 {
                if wait_while_paused && self.container_status(c) == ContainerStatus::Paused {
                    while self.container_status(c) == ContainerStatus::Paused {
                        std::thread::sleep(Duration::from_millis(100));
                    }
                    deadline = Instant::now() + timeout;
                    continue;
                }
                timed_out = true;
                // Unreaped, so its PID is still its own.
                let _ = child.kill();
                break;
            }
        }
        let status = if timed_out {
            // Bounded: a check killed in a frozen v1 cgroup ends only at the
            // thaw; it is left to its subreaper then.
            if crate::process::poll_readable(&pidfd, Duration::from_secs(1)).unwrap_or(false) {
                let _ = child.wait();
            }
            None
        } else {
            Some(child.wait().map_err(Error::WaitChild)?)
        };
        let end = SystemTime::now();
        output.truncate(MAX_OUTPUT);
        Ok(match status {
            Some(status) => Probe {
                start,
                end,
                exit_code: exit_code(status),
                output: String::from_utf8_lossy(&output).into_owned(),
            },
            None => Probe {
                start,
                end,
                exit_code: -1,
                output: format!("Health check exceeded timeout ({})", go_duration(timeout)),
            },
        })
    }

    /// Takes a check's result into the container's health (see
    /// [`HealthState::record`]); nothing for a container without a check.
    pub fn record_health(&self, id: &Id, probe: &Probe, in_start_period: bool) -> Result<()> {
        self.record(id, |c| {
            if let Some(config) = &c.healthcheck {
                let retries = config.retries;
                c.health.get_or_insert_with(HealthState::starting).record(
                    probe,
                    in_start_period,
                    retries,
                );
            }
        })
    }

    /// Runs container `id`'s health check every interval while it runs,
    /// until it exits or is removed (the body of `stasis internal-health`;
    /// its monitor starts it and ends it).
    pub fn run_health_checks(&self, id: &Id) -> Result<()> {
        let c = self.container(id)?;
        let Some(config) = c.healthcheck.clone() else {
            return Ok(());
        };
        let argv = config.argv()?;
        let began = Instant::now();
        loop {
            std::thread::sleep(config.interval);
            let c = match self.container(id) {
                Ok(c) => c,
                Err(e) if e.is_not_found() => return Ok(()),
                Err(e) => return Err(e),
            };
            match self.container_status(&c) {
                ContainerStatus::Running => {}
                ContainerStatus::Paused
                | ContainerStatus::Created
                | ContainerStatus::Restarting(_) => continue,
                ContainerStatus::Exited(_) => return Ok(()),
            }
            let in_start_period = began.elapsed() < config.start_period;
            let probe = match self.probe(&c, &argv, config.timeout, true) {
                Ok(p) => p,
                // Paused or ended between the status and the check.
                Err(e) if e.is_conflict() => continue,
                Err(e) => return Err(e),
            };
            tracing::debug!(container = %c.name, exit_code = probe.exit_code, "health check");
            self.record_health(id, &probe, in_start_period)?;
        }
    }
}

/// Reads what the pipe holds into `out` (keeping at most [`MAX_OUTPUT`]
/// bytes); whether it is still open.
fn drain(pipe: &mut std::fs::File, out: &mut Vec<u8>) -> bool {
    let mut buf = [0u8; 4096];
    loop {
        match pipe.read(&mut buf) {
            Ok(0) => return false,
            Ok(n) => {
                let room = MAX_OUTPUT.saturating_sub(out.len());
                out.extend_from_slice(&buf[..n.min(room)]);
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return true,
            Err(_) => return false,
        }
    }
}

/// Durations as integer nanoseconds, as docker's API carries them.
mod nanos {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_nanos)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn probe(code: i32) -> Probe {
        Probe {
            start: SystemTime::UNIX_EPOCH,
            end: SystemTime::UNIX_EPOCH + Duration::from_millis(5),
            exit_code: code,
            output: format!("exit {code}\n"),
        }
    }

    #[test]
    fn retries_failures_in_a_row_make_it_unhealthy_and_a_pass_heals_it() {
        let mut h = HealthState::starting();
        h.record(&probe(1), false, 3);
        h.record(&probe(1), false, 3);
        assert_eq!((h.status, h.failing_streak), (HealthStatus::Starting, 2));
        h.record(&probe(1), false, 3);
        assert_eq!((h.status, h.failing_streak), (HealthStatus::Unhealthy, 3));
        h.record(&probe(0), false, 3);
        assert_eq!((h.status, h.failing_streak), (HealthStatus::Healthy, 0));
        h.record(&probe(-1), false, 1);
        assert_eq!(h.status, HealthStatus::Unhealthy, "one retry: one failure");
    }

    #[test]
    fn failures_in_the_start_period_count_only_once_it_has_been_healthy() {
        let mut h = HealthState::starting();
        for _ in 0..10 {
            h.record(&probe(1), true, 3);
        }
        assert_eq!((h.status, h.failing_streak), (HealthStatus::Starting, 0));
        h.record(&probe(0), true, 3);
        h.record(&probe(1), true, 1);
        assert_eq!(h.status, HealthStatus::Unhealthy, "healthy once: it counts");
    }

    #[test]
    fn the_log_keeps_the_last_five_in_docker_s_shape() {
        let mut h = HealthState::starting();
        for code in 0..7 {
            h.record(&probe(code), false, 100);
        }
        let codes: Vec<i32> = h.log.iter().map(|l| l.exit_code).collect();
        assert_eq!(codes, [2, 3, 4, 5, 6]);
        let json = serde_json::to_value(&h).expect("json");
        assert_eq!(json["Status"], "healthy", "6 failures of 100 allowed");
        assert_eq!(json["FailingStreak"], 6);
        assert_eq!(json["Log"][4]["ExitCode"], 6);
        assert_eq!(json["Log"][4]["Start"], "1970-01-01T00:00:00Z");
        assert_eq!(json["Log"][4]["End"], "1970-01-01T00:00:00.005Z");
        assert_eq!(json["Log"][4]["Output"], "exit 6\n");
    }

    #[test]
    fn a_config_takes_docker_s_defaults_and_shape() {
        let c = HealthConfig::shell(
            "curl -f localhost",
            None,
            Some(Duration::ZERO),
            None,
            Some(0),
        )
        .expect("config");
        assert_eq!(c.interval, DEFAULT_INTERVAL);
        assert_eq!(c.timeout, DEFAULT_TIMEOUT);
        assert_eq!(c.start_period, Duration::ZERO);
        assert_eq!(c.retries, DEFAULT_RETRIES);
        assert_eq!(
            c.argv().expect("argv"),
            ["/bin/sh", "-c", "curl -f localhost"]
        );
        let json = serde_json::to_value(&c).expect("json");
        assert_eq!(
            json["Test"],
            serde_json::json!(["CMD-SHELL", "curl -f localhost"])
        );
        assert_eq!(json["Interval"], 30_000_000_000u64);
        assert_eq!(json["Retries"], 3);
        let back: HealthConfig = serde_json::from_value(json).expect("back");
        assert_eq!(back, c);
        let err = HealthConfig::shell("true", Some(Duration::from_micros(10)), None, None, None)
            .expect_err("too short");
        assert!(err.to_string().contains("less than 1ms"), "{err}");
        assert!(HealthConfig::shell(" ", None, None, None, None).is_err());
        assert_eq!(
            shell_or_argv(&["CMD".into(), "ready".into(), "-q".into()]).expect("cmd"),
            ["ready", "-q"]
        );
        assert!(shell_or_argv(&["NONE".into()]).is_err());
    }

    #[test]
    fn timeouts_read_as_go_durations() {
        assert_eq!(go_duration(Duration::from_secs(30)), "30s");
        assert_eq!(go_duration(Duration::from_millis(500)), "500ms");
        assert_eq!(go_duration(Duration::from_millis(1500)), "1.5s");
    }
}
