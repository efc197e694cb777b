//! The flags that more than one verb takes, each defined once (as ripgrep's
//! `flags/defs.rs` does): a verb flattens the struct it needs, so a flag has
//! one spelling, one help line and one parser everywhere. A malformed value
//! is a clap value-parser error: one line and exit status 2.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use clap::ValueEnum;

use crate::filter::Filter;

/// `--label KEY=VALUE`, repeatable.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct Labels {
    /// A label, KEY=VALUE (repeatable)
    #[arg(long = "label", value_name = "KEY=VALUE", value_parser = parse_label)]
    pub labels: Vec<(String, String)>,
}

impl Labels {
    /// The labels as a map; a key given twice keeps its last value, as in docker.
    pub fn to_map(&self) -> BTreeMap<String, String> {
        self.labels.iter().cloned().collect()
    }
}

/// What `run` and `exec` share about the process they start.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct Process {
    /// An environment variable, KEY=VALUE, or KEY to pass this one's value (repeatable)
    #[arg(short, long = "env", value_name = "KEY=VALUE", value_parser = parse_env)]
    pub env: Vec<String>,
    /// The working directory inside the container (an absolute path)
    #[arg(short, long, value_name = "DIR", value_parser = parse_workdir)]
    pub workdir: Option<PathBuf>,
}

impl Process {
    /// The `KEY=VALUE` pairs: a bare `KEY` takes this process's value and is
    /// dropped when it has none, as docker does.
    pub fn env(&self) -> Vec<String> {
        self.env
            .iter()
            .filter_map(|e| {
                if e.contains('=') {
                    Some(e.clone())
                } else {
                    std::env::var(e).ok().map(|v| format!("{e}={v}"))
                }
            })
            .collect()
    }
}

/// docker's resource limits, for `run` (the container's leaf) and
/// `pod create` (the pod's node); values as docker reads them.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct Limits {
    /// Memory limit (e.g. 32m, 1g; at least 6m)
    #[arg(short = 'm', long, value_name = "BYTES", value_parser = parse_memory)]
    pub memory: Option<i64>,
    /// Memory plus swap limit (at least --memory; -1: unlimited swap; default twice --memory)
    #[arg(long, value_name = "BYTES", value_parser = parse_memory_swap, allow_hyphen_values = true)]
    pub memory_swap: Option<i64>,
    /// Number of CPUs (e.g. 0.5)
    #[arg(long, value_name = "N", value_parser = parse_cpus)]
    pub cpus: Option<i64>,
    /// Relative CPU weight (2..262144; docker's default is 1024)
    #[arg(short = 'c', long, value_name = "SHARES")]
    pub cpu_shares: Option<i64>,
    /// Most tasks at once (-1: unlimited)
    #[arg(long, value_name = "N", allow_hyphen_values = true)]
    pub pids_limit: Option<i64>,
}

impl Limits {
    /// The limits to record; docker's rules are checked by the sandbox.
    pub fn to_limits(&self) -> sandbox::Limits {
        sandbox::Limits {
            memory: self.memory,
            memory_swap: self.memory_swap,
            nano_cpus: self.cpus,
            cpu_shares: self.cpu_shares,
            pids_limit: self.pids_limit,
        }
    }
}

fn parse_memory(s: &str) -> Result<i64, String> {
    sandbox::limits::parse_bytes("--memory", s, false).map_err(|e| e.to_string())
}

fn parse_memory_swap(s: &str) -> Result<i64, String> {
    sandbox::limits::parse_bytes("--memory-swap", s, true).map_err(|e| e.to_string())
}

fn parse_cpus(s: &str) -> Result<i64, String> {
    sandbox::limits::parse_cpus(s).map_err(|e| e.to_string())
}

fn parse_restart(s: &str) -> Result<sandbox::RestartPolicy, String> {
    sandbox::RestartPolicy::parse(s).map_err(|e| e.to_string())
}

/// `--restart`: when the monitor starts the command again.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct Restart {
    /// Restart policy: no, on-failure[:max-retries], always, unless-stopped
    #[arg(long, value_name = "POLICY", value_parser = parse_restart)]
    pub restart: Option<sandbox::RestartPolicy>,
}

/// `-t/--time SECONDS`: the grace period between SIGTERM and SIGKILL.
#[derive(Debug, Clone, clap::Args)]
pub struct Grace {
    /// Seconds to wait after SIGTERM before SIGKILL
    #[arg(
        short = 't',
        long = "time",
        value_name = "SECONDS",
        default_value_t = 10
    )]
    pub time: u64,
}

impl Grace {
    pub fn duration(&self) -> Duration {
        Duration::from_secs(self.time)
    }
}

/// `-q/--quiet`: only IDs.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct Quiet {
    /// Only IDs
    #[arg(short, long)]
    pub quiet: bool,
}

/// `-f/--filter`: which stasis containers a verb selects.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct Filters {
    /// Select containers: label=K[=V], status=created|running|paused|exited, pod=P, name=N, id=PREFIX (repeatable; all must match)
    #[arg(short = 'f', long = "filter", value_name = "FILTER")]
    pub filters: Vec<Filter>,
}

/// `-f/--filter` of `events`: docker's event filters (checked by
/// [`sandbox::journal::Filters`], which the API's `filters` use too).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct EventFilters {
    /// Select events: type=container|pod, event=ACTION, container=NAME|ID, pod=NAME|ID, label=K[=V] (repeatable; values of one key are alternatives, different keys must all match)
    #[arg(short = 'f', long = "filter", value_name = "FILTER", value_parser = parse_event_filter)]
    pub filters: Vec<String>,
}

impl EventFilters {
    pub fn to_filters(&self) -> sandbox::journal::Filters {
        let mut f = sandbox::journal::Filters::default();
        for pair in &self.filters {
            f.add_pair(pair)
                .expect("clap checked each filter with the same parser");
        }
        f
    }
}

fn parse_event_filter(s: &str) -> Result<String, String> {
    sandbox::journal::Filters::default()
        .add_pair(s)
        .map(|()| s.to_owned())
        .map_err(|e| e.to_string())
}

/// `--since` and `--until` of `events`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct TimeRange {
    /// Show events from TIME on: RFC 3339 (2026-12-01T23:40:00Z; without an offset, UTC), a unix timestamp, or a duration back from now (10m)
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub since: Option<SystemTime>,
    /// Stop at TIME (the same forms as --since); without it, follow until interrupted
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub until: Option<SystemTime>,
}

pub(crate) fn parse_time(s: &str) -> Result<SystemTime, String> {
    sandbox::time::parse_time(s, SystemTime::now())
}

/// `--format`: a table (or text) for people, JSON for scripts.
#[derive(Debug, Clone, clap::Args)]
pub struct Output {
    /// Output format
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Columns or `key: value` lines, for people
    #[value(alias = "text")]
    Table,
    /// JSON, for scripts
    Json,
}

/// `--format` of `ps`: docker's `table`, `json`, or a Go-style template
/// (`{{.Names}} {{.Status}}`, `table {{.ID}}\t{{.Image}}`, `{{json .}}`).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct TemplateOutput {
    /// Output format: table, json, or a template such as '{{.Names}}\t{{.Status}}' (a 'table ' prefix adds a header)
    #[arg(long = "format", value_name = "FORMAT", value_parser = parse_template_format)]
    pub format: Option<TemplateFormat>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TemplateFormat {
    Table,
    Json,
    Template(crate::template::Template),
}

fn parse_template_format(s: &str) -> Result<TemplateFormat, String> {
    match s {
        "table" | "text" => Ok(TemplateFormat::Table),
        "json" => Ok(TemplateFormat::Json),
        t => crate::template::Template::parse(t).map(TemplateFormat::Template),
    }
}

/// `--reset-connections` of `pause` and `pod pause`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ResetConnections {
    /// Once frozen, reset the target's TCP connections (never its listeners) and refuse new ones to its listening ports until unpause
    #[arg(long)]
    pub reset_connections: bool,
}

/// What `pause` and `pod pause` share: how long the freeze may take, what
/// else to do once it is confirmed, and how to report it.
#[derive(Debug, Clone, clap::Args)]
pub struct PauseOptions {
    #[command(flatten)]
    pub timeout: crate::target::TimeoutArgs,
    #[command(flatten)]
    pub reset: ResetConnections,
    #[command(flatten)]
    pub lease: Lease,
    /// table: the names paused, and what a reset did on stderr; json: one
    /// object per target on stdout
    #[command(flatten)]
    pub output: Output,
}

/// `--lease`, `--renew` and `--until-exit` of `pause` and `pod pause`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct Lease {
    /// Thaw the target when this runs out (e.g. 30s, 5m, 1h; at most 24h), even if this command is killed
    #[arg(long, value_name = "DURATION", value_parser = sandbox::time::parse_lease)]
    pub lease: Option<Duration>,
    /// Extend the lease of a target already paused with one: it ends --lease from now
    #[arg(long, requires = "lease", conflicts_with_all = ["until_exit", "reset_connections"])]
    pub renew: bool,
    /// Thaw the target as soon as process PID exits (with --lease: whichever comes first)
    #[arg(long, value_name = "PID", value_parser = clap::value_parser!(u32).range(1..))]
    pub until_exit: Option<u32>,
}

impl Lease {
    /// What the lease is to be, for [`crate::lease`].
    pub fn terms(&self) -> crate::lease::Terms {
        crate::lease::Terms {
            lease: self.lease,
            until_exit: self.until_exit,
        }
    }
}

/// `--health-cmd`: the check of `run`, and of `unpause --wait-healthy`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct HealthCmd {
    /// A health check: a shell command run inside the container (/bin/sh -c), healthy when it exits 0
    #[arg(long, value_name = "COMMAND")]
    pub health_cmd: Option<String>,
}

/// `run`'s health check: docker's flags, with docker's defaults (0 or
/// absent: the default).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct HealthCheck {
    #[command(flatten)]
    pub cmd: HealthCmd,
    /// Time between checks (default 30s)
    #[arg(long, value_name = "DURATION", value_parser = parse_health_duration, requires = "health_cmd")]
    pub health_interval: Option<Duration>,
    /// How long one check may run before it counts as failed (default 30s)
    #[arg(long, value_name = "DURATION", value_parser = parse_health_duration, requires = "health_cmd")]
    pub health_timeout: Option<Duration>,
    /// Failures in a row that make the container unhealthy (default 3)
    #[arg(long, value_name = "N", requires = "health_cmd")]
    pub health_retries: Option<u32>,
    /// Time after the start in which failures do not count until a check passes (default 0s)
    #[arg(long, value_name = "DURATION", value_parser = parse_health_duration, requires = "health_cmd")]
    pub health_start_period: Option<Duration>,
}

impl HealthCheck {
    /// The check to record, if one was given.
    pub fn config(&self) -> Option<sandbox::Result<sandbox::HealthConfig>> {
        let cmd = self.cmd.health_cmd.as_deref()?;
        Some(sandbox::HealthConfig::shell(
            cmd,
            self.health_interval,
            self.health_timeout,
            self.health_start_period,
            self.health_retries,
        ))
    }
}

/// A health-check duration: up to a day.
fn parse_health_duration(s: &str) -> Result<Duration, String> {
    sandbox::time::parse_duration_upto(s, Duration::from_secs(86_400))
}

/// `--wait-healthy` of `unpause` and `pod unpause`, and how to tell.
#[derive(Debug, Clone, clap::Args)]
#[command(mut_arg("health_cmd", |a| a.requires("wait_healthy").help(
    "With --wait-healthy: this shell command, run inside the container, instead of its own check"
)))]
pub struct WaitHealthy {
    /// After the thaw, check every 100ms until the target is healthy (its container's own health check by default); exit 1 if --health-timeout runs out first, the target left running
    #[arg(long)]
    pub wait_healthy: bool,
    #[command(flatten)]
    pub cmd: HealthCmd,
    /// With --wait-healthy: healthy once TCP port PORT on loopback accepts a connection in the target's network namespace
    #[arg(long, value_name = "PORT", requires = "wait_healthy", conflicts_with = "health_cmd",
          value_parser = clap::value_parser!(u16).range(1..))]
    pub wait_port: Option<u16>,
    /// With --wait-healthy: how long to wait for it (this is not run's per-check --health-timeout)
    #[arg(long = "health-timeout", value_name = "DURATION", requires = "wait_healthy",
          default_value = "30s", value_parser = parse_wait)]
    pub wait_timeout: Duration,
}

impl WaitHealthy {
    pub fn request(&self) -> Option<crate::health::Request> {
        self.wait_healthy.then(|| crate::health::Request {
            health_cmd: self.cmd.health_cmd.clone(),
            port: self.wait_port,
            limit: self.wait_timeout,
        })
    }
}

fn parse_wait(s: &str) -> Result<Duration, String> {
    let d = sandbox::time::parse_duration_upto(s, Duration::from_secs(86_400))?;
    if d.is_zero() {
        return Err(format!("{s:?}: give a time longer than 0"));
    }
    Ok(d)
}

/// Containers named on the command line.
#[derive(Debug, Clone, clap::Args)]
pub struct Containers {
    /// Container names or IDs (any unique prefix)
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

/// One container named on the command line.
#[derive(Debug, Clone, clap::Args)]
pub struct ContainerName {
    /// Container name or ID (any unique prefix)
    #[arg(value_name = "CONTAINER")]
    pub container: String,
}

/// Pods named on the command line.
#[derive(Debug, Clone, clap::Args)]
pub struct Pods {
    /// Pod names or IDs (any unique prefix)
    #[arg(required = true, value_name = "POD")]
    pub pods: Vec<String>,
}

/// The command a container or exec runs, after `--`.
#[derive(Debug, Clone, clap::Args)]
pub struct Command {
    /// The command and its arguments
    #[arg(last = true, required = true, value_name = "CMD")]
    pub command: Vec<String>,
}

/// What `run` starts: `IMAGE [CMD]...` (everything after the image is the
/// command, as in docker), `IMAGE -- CMD...`, or, without an image,
/// `-- CMD...` on the host's filesystem (or `--rootfs`'s).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct RunCommand {
    /// The image to run, then the command to run instead of its Cmd
    // Hyphen values, not trailing_var_arg: a `--` after the image must
    // still end this list (clap lets only the last positional trail).
    #[arg(value_name = "IMAGE", num_args = 1.., allow_hyphen_values = true,
          required_unless_present = "command")]
    pub image: Vec<String>,
    /// Without an image: the command and its arguments, after --
    #[arg(last = true, value_name = "CMD")]
    pub command: Vec<String>,
}

/// Where `run`'s command comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunSource {
    /// `-- CMD...`: no image.
    Command(Vec<String>),
    /// An image, and the command that replaces its Cmd (empty: its own).
    Image { image: String, command: Vec<String> },
}

impl RunCommand {
    /// The source, or why the words are ambiguous. A `--` right after the
    /// image only separates it from its command; one later is part of the
    /// command (`sh -c '...' -- a b`), as docker passes it on.
    pub fn source(&self) -> Result<RunSource, String> {
        match (self.image.as_slice(), self.command.is_empty()) {
            ([], false) => Ok(RunSource::Command(self.command.clone())),
            ([], true) => Err("give an IMAGE, or -- and a command".into()),
            ([image, dashes, rest @ ..], true) if dashes == "--" => Ok(RunSource::Image {
                image: image.clone(),
                command: rest.to_vec(),
            }),
            ([image, rest @ ..], true) => Ok(RunSource::Image {
                image: image.clone(),
                command: rest.to_vec(),
            }),
            ([image, ..], false) => Err(format!(
                "give {image}'s command either right after it or after --, not both"
            )),
        }
    }
}

/// `run`'s isolation and volumes, each with docker's spelling. The
/// defaults are docker's (see docs/isolation.md); these relax or add to them.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct Isolation {
    /// Every capability, no seccomp filter, every device, /proc and /sys unmasked
    #[arg(long)]
    pub privileged: bool,
    /// Add a capability to docker's default set: NET_ADMIN, CAP_SYS_TIME, ALL (repeatable)
    #[arg(long = "cap-add", value_name = "CAP")]
    pub cap_add: Vec<String>,
    /// Drop a capability from it, or ALL (repeatable; applied before --cap-add)
    #[arg(long = "cap-drop", value_name = "CAP")]
    pub cap_drop: Vec<String>,
    /// seccomp=unconfined, seccomp=PROFILE.json (docker's format), no-new-privileges[=true|false] (repeatable)
    #[arg(long = "security-opt", value_name = "OPT", value_parser = parse_security_opt)]
    pub security_opt: Vec<SecurityOpt>,
    /// Mount the container's root filesystem read-only (with --rootfs or an image)
    #[arg(long = "read-only")]
    pub read_only: bool,
    /// Give the container a host device, at the same path or CONTAINER (repeatable)
    #[arg(long, value_name = "HOST[:CONTAINER]", value_parser = parse_device)]
    pub device: Vec<sandbox::isolation::Device>,
    /// Bind a host path: HOST:CONTAINER[:ro|rw] (repeatable; with --rootfs or an image)
    #[arg(short = 'v', long = "volume", value_name = "HOST:CONTAINER[:ro|rw]", value_parser = parse_volume)]
    pub volume: Vec<sandbox::Mount>,
    /// type=bind,source=HOST,target=CONTAINER[,readonly] or type=tmpfs,target=CONTAINER[,tmpfs-size=BYTES][,tmpfs-mode=OCTAL] (repeatable)
    #[arg(long, value_name = "SPEC", value_parser = parse_mount)]
    pub mount: Vec<sandbox::Mount>,
    /// A tmpfs at CONTAINER, with tmpfs options (size=64m,mode=1777,ro,noexec...) (repeatable)
    #[arg(long, value_name = "CONTAINER[:OPTIONS]", value_parser = parse_tmpfs)]
    pub tmpfs: Vec<sandbox::Mount>,
}

/// One `--security-opt`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecurityOpt {
    Seccomp(sandbox::Seccomp),
    NoNewPrivileges(bool),
}

impl Isolation {
    /// The sandbox's isolation. Volumes go in the order -v, --mount,
    /// --tmpfs, then by the depth of their target (a stable sort, as docker
    /// sorts them), so that `/data` is mounted before `/data/cache`.
    pub fn to_isolation(&self) -> sandbox::Isolation {
        let mut iso = sandbox::Isolation {
            privileged: self.privileged,
            cap_add: self.cap_add.clone(),
            cap_drop: self.cap_drop.clone(),
            read_only: self.read_only,
            devices: self.device.clone(),
            mounts: self
                .volume
                .iter()
                .chain(&self.mount)
                .chain(&self.tmpfs)
                .cloned()
                .collect(),
            ..sandbox::Isolation::default()
        };
        iso.mounts.sort_by_key(|m| m.target().components().count());
        for opt in &self.security_opt {
            match opt {
                SecurityOpt::Seccomp(s) => iso.seccomp = s.clone(),
                SecurityOpt::NoNewPrivileges(b) => iso.no_new_privileges = *b,
            }
        }
        iso
    }
}

impl Isolation {
    /// The API's `HostConfig` confinement, read by the same parsers as
    /// the flags; the first value they refuse, with their message.
    pub fn from_api(c: &api::Confinement) -> Result<Self, String> {
        fn each<T>(v: &[String], parse: fn(&str) -> Result<T, String>) -> Result<Vec<T>, String> {
            v.iter().map(|s| parse(s)).collect()
        }
        Ok(Isolation {
            privileged: c.privileged,
            cap_add: c.cap_add.clone(),
            cap_drop: c.cap_drop.clone(),
            security_opt: each(&c.security_opt, parse_inline_security_opt)?,
            read_only: c.read_only,
            device: each(&c.devices, parse_device)?,
            volume: each(&c.volumes, parse_volume)?,
            mount: each(&c.mounts, parse_mount)?,
            tmpfs: each(&c.tmpfs, parse_tmpfs)?,
        })
    }
}

/// `--security-opt`, whose seccomp profile is a file.
fn parse_security_opt(s: &str) -> Result<SecurityOpt, String> {
    security_opt(s, |path| {
        std::fs::read_to_string(path)
            .map_err(|e| format!("reading the seccomp profile {path}: {e}"))
    })
}

/// The API's `SecurityOpt`, whose seccomp profile is the JSON itself.
fn parse_inline_security_opt(s: &str) -> Result<SecurityOpt, String> {
    security_opt(s, |json| Ok(json.to_owned()))
}

fn security_opt(
    s: &str,
    profile: impl FnOnce(&str) -> Result<String, String>,
) -> Result<SecurityOpt, String> {
    // docker takes both `key=value` and the older `key:value`.
    let (key, value) = s
        .split_once('=')
        .or_else(|| s.split_once(':'))
        .map_or((s, None), |(k, v)| (k, Some(v)));
    match (key, value) {
        ("seccomp", Some("unconfined")) => Ok(SecurityOpt::Seccomp(sandbox::Seccomp::Unconfined)),
        ("seccomp", Some(source)) if !source.is_empty() => Ok(SecurityOpt::Seccomp(
            sandbox::Seccomp::Profile(profile(source)?),
        )),
        ("no-new-privileges", None | Some("true")) => Ok(SecurityOpt::NoNewPrivileges(true)),
        ("no-new-privileges", Some("false")) => Ok(SecurityOpt::NoNewPrivileges(false)),
        _ => Err(format!(
            "{s:?}: use seccomp=unconfined, seccomp=PROFILE.json or no-new-privileges"
        )),
    }
}

/// An absolute path with no NUL.
fn absolute(what: &str, s: &str) -> Result<PathBuf, String> {
    if s.contains('\0') {
        return Err(format!("the {what} {s:?} contains a NUL byte"));
    }
    let p = PathBuf::from(s);
    if !p.is_absolute() {
        return Err(format!("the {what} {s:?} is not an absolute path"));
    }
    Ok(p)
}

fn parse_device(s: &str) -> Result<sandbox::isolation::Device, String> {
    let mut parts = s.splitn(3, ':');
    let host = absolute("device", parts.next().unwrap_or_default())?;
    let container = match parts.next() {
        Some(c) => absolute("device path in the container", c)?,
        None => host.clone(),
    };
    if parts.next().is_some() {
        return Err(format!(
            "{s:?}: use HOST[:CONTAINER] (permissions other than rwm are not supported)"
        ));
    }
    Ok(sandbox::isolation::Device { host, container })
}

fn parse_volume(s: &str) -> Result<sandbox::Mount, String> {
    let parts: Vec<&str> = s.split(':').collect();
    let (source, target, readonly) = match parts.as_slice() {
        [src, dst] => (*src, *dst, false),
        [src, dst, "ro"] => (*src, *dst, true),
        [src, dst, "rw"] => (*src, *dst, false),
        [_, _, opt] => {
            return Err(format!(
                "{s:?}: unknown volume option {opt:?} (use ro or rw)"
            ))
        }
        _ => {
            return Err(format!(
            "{s:?}: use HOST:CONTAINER[:ro|rw] (named volumes are not supported: give a host path)"
        ))
        }
    };
    Ok(sandbox::Mount::Bind {
        source: absolute("volume source", source)?,
        target: absolute("volume target", target)?,
        readonly,
    })
}

fn parse_mount(s: &str) -> Result<sandbox::Mount, String> {
    let (mut kind, mut source, mut target, mut readonly) = (None, None, None, false);
    let (mut size, mut mode) = (None, None);
    for field in s.split(',') {
        let (k, v) = field
            .split_once('=')
            .map_or((field, None), |(k, v)| (k, Some(v)));
        match (k, v) {
            ("type", Some(t)) => kind = Some(t),
            ("source" | "src", Some(v)) => source = Some(v),
            ("target" | "destination" | "dst", Some(v)) => target = Some(v),
            ("readonly" | "ro", None | Some("true" | "1")) => readonly = true,
            ("readonly" | "ro", Some("false" | "0")) => readonly = false,
            ("tmpfs-size", Some(v)) => size = Some(v),
            ("tmpfs-mode", Some(v)) => mode = Some(v),
            _ => return Err(format!("{s:?}: unknown --mount field {field:?}")),
        }
    }
    let target = absolute(
        "mount target",
        target.ok_or_else(|| format!("{s:?}: give target=PATH"))?,
    )?;
    match kind {
        Some("bind") => {
            if size.is_some() || mode.is_some() {
                return Err(format!(
                    "{s:?}: tmpfs-size and tmpfs-mode are for type=tmpfs"
                ));
            }
            let source = absolute(
                "mount source",
                source.ok_or_else(|| format!("{s:?}: give source=HOST-PATH"))?,
            )?;
            Ok(sandbox::Mount::Bind {
                source,
                target,
                readonly,
            })
        }
        Some("tmpfs") => {
            if source.is_some() {
                return Err(format!("{s:?}: a tmpfs has no source"));
            }
            let mut options = Vec::new();
            if let Some(size) = size {
                options.push(format!("size={size}"));
            }
            if let Some(mode) = mode {
                options.push(format!("mode={mode}"));
            }
            if readonly {
                options.push("ro".into());
            }
            Ok(sandbox::Mount::Tmpfs {
                target,
                options: options.join(","),
            })
        }
        Some(other) => Err(format!(
            "{s:?}: type={other} is not supported (use bind or tmpfs)"
        )),
        None => Err(format!("{s:?}: give type=bind or type=tmpfs")),
    }
}

fn parse_tmpfs(s: &str) -> Result<sandbox::Mount, String> {
    let (target, options) = s.split_once(':').unwrap_or((s, ""));
    let mount = sandbox::Mount::Tmpfs {
        target: absolute("tmpfs target", target)?,
        options: options.to_owned(),
    };
    sandbox::isolation::tmpfs_options(options).map_err(|e| e.to_string())?;
    Ok(mount)
}

/// `KEY=VALUE` with a non-empty key.
fn parse_label(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
        _ => Err(format!("{s:?} is not KEY=VALUE")),
    }
}

/// `KEY=VALUE` or `KEY`; a key is non-empty and holds no NUL.
fn parse_env(s: &str) -> Result<String, String> {
    let key = s.split_once('=').map_or(s, |(k, _)| k);
    if key.is_empty() {
        return Err(format!("{s:?} has no variable name (use KEY=VALUE)"));
    }
    if s.contains('\0') {
        return Err(format!("{s:?} contains a NUL byte"));
    }
    Ok(s.to_owned())
}

/// An absolute path, as docker requires of `--workdir`.
fn parse_workdir(s: &str) -> Result<PathBuf, String> {
    let path = PathBuf::from(s);
    if !path.is_absolute() {
        return Err(format!("{s:?} is not an absolute path"));
    }
    if s.contains('\0') {
        return Err(format!("{s:?} contains a NUL byte"));
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Probe {
        #[command(flatten)]
        labels: Labels,
        #[command(flatten)]
        process: Process,
        #[command(flatten)]
        grace: Grace,
        #[command(flatten)]
        quiet: Quiet,
        #[command(flatten)]
        filters: Filters,
        #[command(flatten)]
        output: Output,
        #[command(flatten)]
        lease: Lease,
        #[command(flatten)]
        reset: ResetConnections,
        #[command(flatten)]
        health: HealthCheck,
        #[command(flatten)]
        range: TimeRange,
    }

    #[derive(Debug, Parser)]
    struct EventsProbe {
        #[command(flatten)]
        filters: EventFilters,
    }

    fn parse(args: &[&str]) -> Result<Probe, clap::Error> {
        Probe::try_parse_from(std::iter::once("probe").chain(args.iter().copied()))
    }

    #[test]
    fn each_flag_parses_to_its_value() {
        let p = parse(&[
            "--label",
            "a=1",
            "--label",
            "b=",
            "--label",
            "a=2",
            "-e",
            "X=1",
            "-w",
            "/srv",
            "-t",
            "3",
            "-q",
            "-f",
            "label=tier",
            "--format",
            "json",
        ])
        .expect("parses");
        assert_eq!(
            p.labels.to_map(),
            BTreeMap::from([("a".into(), "2".into()), ("b".into(), String::new())])
        );
        assert_eq!(p.process.env, ["X=1"]);
        assert_eq!(p.process.workdir, Some(PathBuf::from("/srv")));
        assert_eq!(p.grace.duration(), Duration::from_secs(3));
        assert!(p.quiet.quiet);
        assert_eq!(p.filters.filters, [Filter::Label("tier".into(), None)]);
        assert_eq!(p.output.format, Format::Json);
        assert_eq!(p.lease.lease, None);
        let l = parse(&["--lease", "5m", "--renew"]).expect("renew");
        assert_eq!(l.lease.lease, Some(Duration::from_secs(300)));
        assert!(l.lease.renew);
        let u = parse(&["--lease", "1.5s", "--until-exit", "7"]).expect("until-exit");
        assert_eq!(u.lease.lease, Some(Duration::from_millis(1500)));
        assert_eq!(u.lease.until_exit, Some(7));
        let d = parse(&[]).expect("defaults");
        assert_eq!(d.grace.time, 10);
        assert_eq!(d.output.format, Format::Table);
        assert_eq!(
            parse(&["--format", "text"]).expect("alias").output.format,
            Format::Table
        );
        assert!(d.health.config().is_none());
        let h = parse(&[
            "--health-cmd",
            "test -f /ready",
            "--health-interval",
            "250ms",
            "--health-timeout",
            "2s",
            "--health-retries",
            "5",
            "--health-start-period",
            "1m",
        ])
        .expect("health");
        let config = h.health.config().expect("given").expect("valid");
        assert_eq!(config.test, ["CMD-SHELL", "test -f /ready"]);
        assert_eq!(config.interval, Duration::from_millis(250));
        assert_eq!(config.timeout, Duration::from_secs(2));
        assert_eq!(config.retries, 5);
        assert_eq!(config.start_period, Duration::from_secs(60));
    }

    #[test]
    fn event_flags_parse_to_their_values() {
        let p =
            parse(&["--since", "1796161200", "--until", "2026-12-01T21:40:01Z"]).expect("range");
        let epoch = |s| std::time::UNIX_EPOCH + Duration::from_secs(s);
        assert_eq!(p.range.since, Some(epoch(1_796_161_200)));
        assert_eq!(p.range.until, Some(epoch(1_796_161_201)));
        let ago = parse(&["--since", "10m"])
            .expect("duration")
            .range
            .since
            .expect("given");
        let back = SystemTime::now().duration_since(ago).expect("in the past");
        assert!(
            back >= Duration::from_secs(600) && back < Duration::from_secs(660),
            "{back:?}"
        );
        let e = EventsProbe::try_parse_from(["probe", "-f", "type=pod", "--filter", "label=a=b"])
            .expect("filters");
        assert_eq!(e.filters.filters, ["type=pod", "label=a=b"]);
        let f = e.filters.to_filters();
        let mut want = sandbox::journal::Filters::default();
        want.add("type", "pod").expect("type");
        want.add("label", "a=b").expect("label");
        assert_eq!(f, want);
        for bad in [
            &["-f", "type=volume"][..],
            &["-f", "status=x"],
            &["-f", "event"],
        ] {
            let err =
                EventsProbe::try_parse_from(std::iter::once("probe").chain(bad.iter().copied()))
                    .expect_err(&format!("{bad:?}"));
            assert_eq!(err.exit_code(), 2, "{bad:?}: {err}");
        }
    }

    #[test]
    fn malformed_values_are_usage_errors() {
        for bad in [
            &["--label", "novalue"][..],
            &["--label", "=v"],
            &["-e", "=v"],
            &["-w", "relative/dir"],
            &["-t", "soon"],
            &["-f", "bogus=1"],
            &["--format", "yaml"],
            &["--lease", "soon"],
            &["--lease", "0"],
            &["--lease", "25h"],
            &["--renew"],
            &["--renew", "--lease", "1s", "--until-exit", "7"],
            &["--renew", "--lease", "1s", "--reset-connections"],
            &["--until-exit", "0"],
            &["--health-interval", "1s"],
            &["--health-cmd", "true", "--health-timeout", "soon"],
            &["--health-cmd", "true", "--health-retries", "-1"],
            &["--health-cmd", "true", "--health-interval", "2d"],
            &["--since", "yesterday"],
            &["--until", "2026-12-32"],
        ] {
            let err = parse(bad).expect_err(&format!("{bad:?}"));
            assert_eq!(err.exit_code(), 2, "{bad:?}: {err}");
        }
    }

    #[derive(Debug, Parser)]
    struct RunProbe {
        #[arg(long)]
        rootfs: Option<PathBuf>,
        #[command(flatten)]
        process: Process,
        #[command(flatten)]
        run: RunCommand,
    }

    fn run_source(args: &[&str]) -> Result<RunSource, String> {
        RunProbe::try_parse_from(std::iter::once("run").chain(args.iter().copied()))
            .map_err(|e| e.to_string())?
            .run
            .source()
    }

    #[test]
    fn run_takes_an_image_and_its_command_or_a_command_after_dashes() {
        let image = |i: &str, c: &[&str]| {
            Ok(RunSource::Image {
                image: i.into(),
                command: c.iter().map(|s| s.to_string()).collect(),
            })
        };
        assert_eq!(run_source(&["busybox"]), image("busybox", &[]));
        assert_eq!(
            run_source(&["-e", "A=1", "busybox", "sh", "-c", "echo -e hi"]),
            image("busybox", &["sh", "-c", "echo -e hi"]),
            "flags after the image belong to its command"
        );
        assert_eq!(
            run_source(&["busybox", "--", "ls", "-l"]),
            image("busybox", &["ls", "-l"])
        );
        assert_eq!(
            run_source(&["--", "sleep", "1"]),
            Ok(RunSource::Command(vec!["sleep".into(), "1".into()]))
        );
        assert_eq!(
            run_source(&["--rootfs", "/r", "--", "sh"]),
            Ok(RunSource::Command(vec!["sh".into()]))
        );
        assert_eq!(
            run_source(&["busybox", "sh", "-c", "echo $@", "--", "a"]),
            image("busybox", &["sh", "-c", "echo $@", "--", "a"]),
            "a later -- belongs to the command"
        );
        assert!(run_source(&[]).is_err());
    }

    #[test]
    fn a_bare_env_key_takes_this_process_value_or_is_dropped() {
        let p = Process {
            env: vec![
                "PATH".into(),
                "STASIS_TEST_SURELY_UNSET_VARIABLE".into(),
                "A=b".into(),
            ],
            workdir: None,
        };
        let env = p.env();
        assert!(env[0].starts_with("PATH="), "{env:?}");
        assert_eq!(env[1], "A=b");
        assert_eq!(env.len(), 2);
    }

    #[derive(Debug, Parser)]
    struct IsolationProbe {
        #[command(flatten)]
        isolation: Isolation,
    }

    #[test]
    fn isolation_flags_parse_to_the_sandboxs_isolation() {
        let p = IsolationProbe::try_parse_from([
            "probe",
            "--cap-drop",
            "ALL",
            "--cap-add",
            "NET_ADMIN",
            "--security-opt",
            "no-new-privileges",
            "--security-opt",
            "seccomp=unconfined",
            "--read-only",
            "-v",
            "/h:/c:ro",
            "--mount",
            "type=bind,src=/a,dst=/b",
            "--tmpfs",
            "/t:size=1m",
            "--mount",
            "type=tmpfs,target=/u,tmpfs-size=4096,tmpfs-mode=1777",
            "--device",
            "/dev/null:/dev/n",
            "--tmpfs",
            "/c/deeper",
        ])
        .expect("parse");
        let iso = p.isolation.to_isolation();
        assert_eq!(iso.cap_drop, ["ALL"]);
        assert_eq!(iso.cap_add, ["NET_ADMIN"]);
        assert!(iso.no_new_privileges && iso.read_only && !iso.privileged);
        assert_eq!(iso.seccomp, sandbox::Seccomp::Unconfined);
        assert_eq!(
            iso.mounts[..4],
            [
                sandbox::Mount::Bind {
                    source: "/h".into(),
                    target: "/c".into(),
                    readonly: true
                },
                sandbox::Mount::Bind {
                    source: "/a".into(),
                    target: "/b".into(),
                    readonly: false
                },
                sandbox::Mount::Tmpfs {
                    target: "/u".into(),
                    options: "size=4096,mode=1777".into()
                },
                sandbox::Mount::Tmpfs {
                    target: "/t".into(),
                    options: "size=1m".into()
                },
            ],
            "-v, then --mount, then --tmpfs"
        );
        assert_eq!(
            iso.mounts[4].target(),
            std::path::Path::new("/c/deeper"),
            "deeper targets last"
        );
        assert_eq!(iso.devices[0].container, PathBuf::from("/dev/n"));
        for bad in [
            vec!["-v", "rel:/c"],
            vec!["-v", "/h:/c:rx"],
            vec!["-v", "name"],
            vec!["--mount", "type=volume,target=/x"],
            vec!["--mount", "type=bind,target=/x"],
            vec!["--mount", "type=tmpfs,source=/a,target=/x"],
            vec!["--tmpfs", "/x:bogus"],
            vec!["--security-opt", "label=disable"],
            vec!["--device", "dev/null"],
        ] {
            let mut args = vec!["probe"];
            args.extend(bad.iter().copied());
            let e = IsolationProbe::try_parse_from(&args).expect_err("malformed");
            assert_eq!(
                e.kind(),
                clap::error::ErrorKind::ValueValidation,
                "{bad:?}: {e}"
            );
        }
    }
}
