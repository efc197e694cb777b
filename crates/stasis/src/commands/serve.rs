//! `stasis serve`: the Docker Engine API on a Unix socket ([`api`]), with
//! the CLI's own verbs behind it: the service's pause is `stasis pause`'s
//! code (leases, connection fences, other runtimes' containers), its stop,
//! kill and rm lift fences as the CLI's do. Nothing of tokio or hyper runs
//! unless this verb does.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use api::{ApiError, PauseOptions, StatusCode};

use crate::commands::named::{FenceSite, Named};
use crate::commands::{open, pause, unpause, Global};
use crate::target::{HierarchyArgs, StrategyArgs, TargetArgs};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The Unix socket to serve on (there is no TCP)
    #[arg(long, value_name = "PATH")]
    pub socket: PathBuf,
    /// The group that may connect to the socket [default: stasis if that group exists, else root alone]
    #[arg(long, value_name = "GROUP")]
    pub group: Option<String>,
    /// Let a group (by name) or a uid (a number) do these verbs: ps, inspect, logs, events, create, start, stop, kill, restart, wait, pause, unpause, rm, images, import, load, or all (repeatable; root may do everything)
    #[arg(long, value_name = "GROUP_OR_UID=VERBS")]
    pub allow: Vec<String>,
    /// Where the audit trail goes [default: ROOT/audit.jsonl]
    #[arg(long, value_name = "PATH")]
    pub audit_log: Option<PathBuf>,
}

const GROUP_FILE: &str = "/etc/group";

pub fn run(global: &Global, args: &Args) -> Result<()> {
    let group_file = Path::new(GROUP_FILE);
    let group = match &args.group {
        Some(name) => Some(group_by_name_or_number(group_file, name)?),
        // The default group is optional: without it, root alone connects.
        None => api::gid_of(group_file, "stasis").ok(),
    };
    let rules = args
        .allow
        .iter()
        .map(|a| api::Rule::parse(a, group_file))
        .collect::<Result<Vec<_>, _>>()
        .map_err(usage)?;
    let sandbox = open(global)?;
    let audit_log = args
        .audit_log
        .clone()
        .unwrap_or_else(|| sandbox::audit::default_path(&global.root));
    let config = api::Config {
        socket: args.socket.clone(),
        group,
        policy: api::Policy { rules },
        audit_log,
        limits: api::Limits::default(),
        proc_root: PathBuf::from("/proc"),
    };
    let backend = Arc::new(CliBackend {
        global: global.clone(),
        sandbox: sandbox.clone(),
        monitors: Arc::new(Mutex::new(Vec::new())),
    });
    let reaper = backend.monitors.clone();
    std::thread::Builder::new()
        .name("stasis-reaper".into())
        .spawn(move || reap(&reaper))
        .context("starting the thread that reaps monitors")?;
    api::serve(config, sandbox, backend, |socket| {
        eprintln!(
            "stasis: serving the Docker Engine API on {}",
            socket.display()
        );
    })
    .map_err(|e| {
        if e.is_invalid() {
            usage(e)
        } else if e.is_conflict() {
            anyhow::Error::new(crate::exit::Refusal::conflict(format!("{e}")))
        } else {
            anyhow::Error::new(e)
        }
    })
    .with_context(|| format!("serving on {}", args.socket.display()))
}

fn usage(e: api::Error) -> anyhow::Error {
    anyhow::Error::new(crate::exit::Refusal::usage(api::format_chain(&e)))
}

/// `--group`: a group name, or a gid.
fn group_by_name_or_number(group_file: &Path, name: &str) -> Result<u32> {
    match name.parse::<u32>() {
        Ok(gid) => Ok(gid),
        Err(_) => api::gid_of(group_file, name).map_err(|e| usage(e).context("--group")),
    }
}

/// The service's verbs, by the CLI's code.
struct CliBackend {
    global: Global,
    sandbox: sandbox::Sandbox,
    /// The monitors this process started (each its child for the life of
    /// its container), for [`reap`].
    monitors: Arc<Mutex<Vec<rustix::process::Pid>>>,
}

/// Reaps the monitors the service started, once they exit: the CLI exits
/// before its monitor does and leaves it to init, the service lives on
/// and must wait for it or keep a zombie per container. Only those PIDs
/// are waited for, never `-1`, so that no other wait in the process (a
/// lease's watchdog, `nft`) loses its child's status.
fn reap(monitors: &Mutex<Vec<rustix::process::Pid>>) {
    loop {
        std::thread::sleep(Duration::from_secs(1));
        let Ok(mut pids) = monitors.lock() else {
            return;
        };
        pids.retain(|pid| {
            matches!(
                rustix::process::waitpid(Some(*pid), rustix::process::WaitOptions::NOHANG),
                Ok(None)
            )
        });
    }
}

/// The freezer's time limit for the service's pauses and unpauses (the
/// CLI's default `--timeout`).
const FREEZE_TIMEOUT: Duration = Duration::from_secs(5);

impl CliBackend {
    fn container(&self, query: &str) -> Result<sandbox::ContainerRecord, ApiError> {
        self.sandbox
            .find_container(query)
            .map_err(|e| ApiError::from_sandbox(&e, query, "looking up the container"))
    }

    /// Runs a verb on a stasis container and its fences' site, as the
    /// CLI's stop, kill and rm do.
    fn with_fences(
        &self,
        query: &str,
        what: &str,
        verb: impl FnOnce(&sandbox::ContainerRecord) -> sandbox::Result<()>,
    ) -> Result<(), ApiError> {
        let c = self.container(query)?;
        let site = FenceSite::of(&self.sandbox, &Named::Container(Box::new(c.clone())))
            .map_err(|e| to_api(&e, query, what))?;
        site.lift_after(&self.global, verb(&c).map_err(Into::into))
            .map_err(|e| to_api(&e, query, what))
    }
}

impl api::Backend for CliBackend {
    fn refresh(&self) {
        crate::lease::enforce_expired(&self.global.root);
    }

    fn start(&self, query: &str) -> Result<(), ApiError> {
        let c = self.container(query)?;
        let monitor = crate::commands::internal::monitor_command(&self.global, &c.id)
            .map_err(|e| to_api(&e, query, "starting the container"))?;
        let started = self.sandbox.start_container(&c, monitor);
        // Started or not, the monitor ran as this process's child.
        let monitor = match &started {
            Ok(record) => record.monitor,
            Err(_) => self.sandbox.container(&c.id).ok().and_then(|r| r.monitor),
        };
        if let Some(pid) = monitor.and_then(|m| rustix::process::Pid::from_raw(m.pid as i32)) {
            if let Ok(mut pids) = self.monitors.lock() {
                pids.push(pid);
            }
        }
        started
            .map(drop)
            .map_err(|e| match e.command_exit_code(false) {
                // The command cannot run: the client's mistake, in docker's
                // words for it.
                Some(_) => ApiError::bad_request(api::capitalized(&format!(
                    "{:#}",
                    anyhow::Error::from(e)
                ))),
                None => ApiError::from_sandbox(&e, query, "starting the container"),
            })
    }

    fn stop(&self, query: &str, grace: Duration) -> Result<(), ApiError> {
        self.with_fences(query, "stopping the container", |c| {
            self.sandbox.stop_container(c, grace)
        })
    }

    fn kill(&self, query: &str, signal: &str) -> Result<(), ApiError> {
        let signal = crate::signal::parse(signal)
            .map_err(|e| ApiError::bad_request(format!("invalid signal: {e}")))?;
        self.with_fences(query, "killing the container", |c| {
            self.sandbox.kill_container(c, signal)
        })
    }

    fn pause(&self, query: &str, options: &PauseOptions) -> Result<(), ApiError> {
        let options = pause::Options {
            timeout: FREEZE_TIMEOUT,
            reset: options.reset_connections,
            terms: crate::lease::Terms {
                lease: options.lease,
                until_exit: None,
            },
            renew: None,
            format: crate::flags::Format::Table,
        };
        let paused = match self.stasis_or_other(query)? {
            Some(item) => pause::pause_named(&self.global, &self.sandbox, query, &item, &options),
            None => pause::pause_target(
                &self.global,
                &other_runtime(query),
                &HierarchyArgs { hierarchy: None },
                &StrategyArgs { strategy: None },
                &options,
            ),
        };
        paused.map_err(|e| to_api(&e, query, "pausing the container"))
    }

    fn unpause(&self, query: &str) -> Result<(), ApiError> {
        let unpaused = match self.stasis_or_other(query)? {
            Some(item) => {
                unpause::unpause_named(&self.global, &self.sandbox, &item, FREEZE_TIMEOUT)
            }
            None => {
                crate::target::resolve(&other_runtime(query), &HierarchyArgs { hierarchy: None })
                    .and_then(|resolved| {
                        unpause::unpause_target(
                            &self.global,
                            &resolved,
                            &StrategyArgs { strategy: None },
                            FREEZE_TIMEOUT,
                        )
                    })
            }
        };
        unpaused.map_err(|e| to_api(&e, query, "unpausing the container"))
    }

    fn remove(&self, query: &str, force: bool) -> Result<(), ApiError> {
        self.with_fences(query, "removing the container", |c| {
            self.sandbox.remove_container(c, force)
        })
    }
}

impl CliBackend {
    /// A stasis container (only containers: the API has no pods), or
    /// `None` for a name that is no stasis container, which may be another
    /// runtime's container ID.
    fn stasis_or_other(&self, query: &str) -> Result<Option<Named>, ApiError> {
        match self.sandbox.find_container(query) {
            Ok(c) => Ok(Some(Named::Container(Box::new(c)))),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(ApiError::from_sandbox(
                &e,
                query,
                "looking up the container",
            )),
        }
    }
}

/// `--container-id ID`: the target `stasis pause --container-id` resolves.
fn other_runtime(id: &str) -> TargetArgs {
    TargetArgs {
        pid: None,
        cgroup: None,
        container_id: Some(id.to_owned()),
        k8s_pod: None,
        runtime_root: None,
    }
}

/// A CLI verb's error as the API answers it: the CLI's exit code decides
/// the status; a failure's cause goes to the log.
fn to_api(err: &anyhow::Error, query: &str, what: &str) -> ApiError {
    match crate::exit::code_number(err) {
        crate::exit::NOT_FOUND => ApiError::no_such_container(query),
        crate::exit::CONFLICT | crate::exit::REFUSED => {
            ApiError::conflict(api::capitalized(&format!("{err:#}")))
        }
        crate::exit::USAGE => ApiError::new(
            StatusCode::BAD_REQUEST,
            api::capitalized(&format!("{err:#}")),
        ),
        _ => ApiError::internal(what, &format!("{query}: {err:#}")),
    }
}
