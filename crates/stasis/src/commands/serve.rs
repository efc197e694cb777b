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
    /// Let a group (by name) or a uid (a number) do these verbs: ps, inspect, logs, events, create, start, stop, kill, restart, wait, pause, unpause, rm, images, import, load, exec, or all (repeatable; root may do everything)
    #[arg(long, value_name = "GROUP_OR_UID=VERBS")]
    pub allow: Vec<String>,
    /// Where the audit trail goes [default: ROOT/audit.jsonl]
    #[arg(long, value_name = "PATH")]
    pub audit_log: Option<PathBuf>,
    /// Do not hold an empty frozen v1 cgroup while serving (it keeps the kernel's freezer switched on, so that each pause is the freeze alone; see docs/api.md)
    #[arg(long)]
    pub no_freezer_anchor: bool,
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
        freezer_anchor: !args.no_freezer_anchor,
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
    /// The monitors and pause processes this process started (each its
    /// child for the life of its container or pod), for [`reap`].
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
        let pause_before = self.pause_of(&c);
        let monitor = crate::commands::internal::monitor_command(&self.global, &c.id)
            .map_err(|e| to_api(&e, query, "starting the container"))?;
        // A created container, or an exited one again (its ended implicit
        // pod with a new pause process first).
        let started = self.sandbox.start_again(&c, monitor);
        // Started or not, the monitor ran as this process's child, and so
        // does a new pause process.
        let monitor = match &started {
            Ok(record) => record.monitor,
            Err(_) => self.sandbox.container(&c.id).ok().and_then(|r| r.monitor),
        };
        if let Some(m) = monitor.filter(|m| Some(*m) != c.monitor) {
            self.reap_later(m.pid);
        }
        if let Some(p) = self.pause_of(&c).filter(|p| Some(*p) != pause_before) {
            self.reap_later(p.pid);
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

    fn create(&self, o: &api::CreateOptions) -> Result<String, ApiError> {
        let from = crate::commands::image::from_image_with(
            &self.global,
            &o.image,
            crate::commands::image::Overrides {
                command: &o.cmd,
                entrypoint: o.entrypoint.as_deref(),
                env: o.env.clone(),
                workdir: o.working_dir.as_ref().map(PathBuf::from),
                user: o.user.as_deref(),
            },
        )
        .map_err(|e| image_error(&e, &o.image, "creating the container"))?;
        // Read as `run` reads its flags of the same meaning.
        let isolation = crate::flags::Isolation::from_api(&o.confinement)
            .map_err(|e| ApiError::bad_request(api::capitalized(&e)))?
            .to_isolation();
        let created = self
            .sandbox
            .create_container(sandbox::ContainerOptions {
                name: o.name.clone(),
                pod: o.pod.clone(),
                labels: o.labels.clone(),
                env: from.env,
                workdir: from.workdir,
                rootfs: None,
                image: Some(from.root),
                user: from.user,
                command: from.command,
                auto_remove: o.auto_remove,
                healthcheck: None,
                limits: o.limits,
                restart: o.restart,
                isolation,
                hostname: o.hostname.clone(),
                init: o.init,
                stdio: o.stdio,
            })
            .map_err(|e| match &e {
                sandbox::Error::NotFound { .. } => {
                    ApiError::new(StatusCode::NOT_FOUND, api::capitalized(&e.to_string()))
                }
                _ => ApiError::from_sandbox(
                    &e,
                    o.name.as_deref().unwrap_or(""),
                    "creating the container",
                ),
            })?;
        // A pod made for it has its pause process as this process's child.
        if let Some(pause) = self.sandbox.pod(&created.pod).ok().and_then(|p| p.pause) {
            self.reap_later(pause.pid);
        }
        Ok(created.id.as_str().to_owned())
    }

    fn images(&self) -> Result<serde_json::Value, ApiError> {
        let store = self.image_store()?;
        let list = store
            .list()
            .map_err(|e| ApiError::internal("listing images", &api::format_chain(&e)))?;
        let now = std::time::SystemTime::now();
        Ok(serde_json::Value::Array(
            list.iter()
                .map(|i| {
                    let created = sandbox::time::parse_time(i.created(), now)
                        .ok()
                        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                        .map_or(0, |d| d.as_secs());
                    serde_json::json!({
                        "Id": i.id.to_string(),
                        "ParentId": "",
                        "RepoTags": i.repo_tags,
                        "RepoDigests": [],
                        "Created": created,
                        "Size": i.size,
                        "SharedSize": -1,
                        "Labels": i.config.config.labels.clone().unwrap_or_default(),
                        "Containers": -1,
                    })
                })
                .collect(),
        ))
    }

    fn image(&self, query: &str) -> Result<serde_json::Value, ApiError> {
        let store = self.image_store()?;
        store
            .resolve(query)
            .map(|i| i.inspect())
            .map_err(|e| image_error(&e.into(), query, "inspecting the image"))
    }

    fn remove_image(&self, query: &str, force: bool) -> Result<serde_json::Value, ApiError> {
        let store = self.image_store()?;
        let removed = store
            .resolve(query)
            .map_err(anyhow::Error::from)
            .and_then(|image| {
                let (users, busy_layers) = crate::commands::image::usage(&self.sandbox, &image.id)?;
                let removal = images::Removal {
                    force,
                    users,
                    busy_layers,
                };
                Ok(store.remove(query, &removal)?)
            })
            .map_err(|e| image_error(&e, query, "removing the image"))?;
        let mut out: Vec<serde_json::Value> = removed
            .untagged
            .iter()
            .map(|t| serde_json::json!({"Untagged": t}))
            .collect();
        out.extend(
            removed
                .deleted
                .map(|d| serde_json::json!({"Deleted": d.to_string()})),
        );
        Ok(serde_json::Value::Array(out))
    }

    fn import_image(
        &self,
        tar: &mut dyn std::io::Read,
        reference: Option<&str>,
        changes: &[String],
    ) -> Result<String, ApiError> {
        let store = self.image_store()?;
        let reference = reference
            .map(images::Reference::parse)
            .transpose()
            .map_err(|e| ApiError::bad_request(api::capitalized(&e.to_string())))?;
        let changes = changes
            .iter()
            .map(|c| images::Change::parse(c))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| ApiError::bad_request(api::capitalized(&e.to_string())))?;
        let created = sandbox::time::rfc3339_nanos(std::time::SystemTime::now());
        store
            .import(
                tar,
                &images::Import {
                    reference: reference.as_ref(),
                    changes: &changes,
                    created: &created,
                },
            )
            .map(|i| i.id.to_string())
            .map_err(|e| image_error(&e.into(), "", "importing the image"))
    }

    fn load_images(&self, archive: &mut dyn std::io::Read) -> Result<Vec<String>, ApiError> {
        let store = self.image_store()?;
        let loaded = store
            .load(archive)
            .map_err(|e| image_error(&e.into(), "", "loading images"))?;
        let mut lines = Vec::new();
        for image in loaded {
            if image.tags.is_empty() {
                lines.push(format!("Loaded image ID: {}", image.id));
            }
            lines.extend(image.tags.into_iter().map(|t| format!("Loaded image: {t}")));
        }
        Ok(lines)
    }
}

impl CliBackend {
    fn image_store(&self) -> Result<images::Images, ApiError> {
        crate::commands::image::open(&self.global)
            .map_err(|e| ApiError::internal("opening the image store", &format!("{e:#}")))
    }

    /// The pause process of a container's pod, as recorded now.
    fn pause_of(&self, c: &sandbox::ContainerRecord) -> Option<sandbox::ProcessRef> {
        self.sandbox.pod(&c.pod).ok().and_then(|p| p.pause)
    }

    /// Waits for `pid`, this process's child, once it exits.
    fn reap_later(&self, pid: u32) {
        if let Some(pid) = rustix::process::Pid::from_raw(pid as i32) {
            if let Ok(mut pids) = self.monitors.lock() {
                pids.push(pid);
            }
        }
    }

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

/// An error about image `query` as the API answers it: docker's `No such
/// image: X` when it is missing.
fn image_error(err: &anyhow::Error, query: &str, what: &str) -> ApiError {
    let missing = err.chain().any(|e| {
        e.downcast_ref::<images::Error>()
            .is_some_and(images::Error::is_not_found)
    });
    if missing {
        return ApiError::new(StatusCode::NOT_FOUND, format!("No such image: {query}"));
    }
    match crate::exit::code_number(err) {
        crate::exit::NOT_FOUND => {
            ApiError::new(StatusCode::NOT_FOUND, api::capitalized(&format!("{err:#}")))
        }
        _ => to_api(err, query, what),
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
