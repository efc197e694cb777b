//! One module per verb, the dispatch from the parsed command line to them,
//! and the sandbox handle they open. What several verbs share lives in a
//! module of its own: [`named`] (acting on names), [`crate::flags`],
//! [`crate::filter`], [`crate::table`], [`crate::human`], [`crate::signal`].

pub mod attach;
pub mod checkpoint;
pub mod events;
pub mod exec;
pub mod image;
pub mod inspect;
pub mod internal;
pub mod kill;
pub mod logs;
pub(crate) mod named;
pub mod pause;
pub mod pod;
pub mod ps;
pub mod restore;
pub mod rm;
pub mod run;
pub mod sandbox_image;
pub mod serve;
pub mod start;
pub mod state;
pub mod stats;
pub mod stop;
pub mod top;
pub mod unpause;
pub mod wait;
pub mod watchdog;

use std::path::PathBuf;

use anyhow::{Context, Result};
use sandbox::Sandbox;

use crate::cli::{Cli, Command};

pub(crate) use named::{each, for_each_named, Named};

/// Options every verb that touches pods and containers shares.
#[derive(Debug, Clone)]
pub struct Global {
    pub root: PathBuf,
}

pub fn run(cli: Cli) -> Result<std::process::ExitCode> {
    let global = Global { root: cli.root };
    // Every command makes good any lease that ran out (a watchdog killed, a
    // host that slept): one readdir when there is none.
    if !matches!(
        cli.command,
        Command::InternalMonitor(_) | Command::InternalHealth(_) | Command::InternalWatchdog(_)
    ) {
        crate::lease::enforce_expired(&global.root);
    }
    let audited = audited(&cli.command);
    let result = dispatch(&global, cli.command);
    if let Some((verb, target)) = audited {
        audit(&global, verb, &target, &result);
    }
    result.map(std::process::ExitCode::from)
}

/// Runs the verb; its exit status on success (run and exec: the
/// command's).
fn dispatch(global: &Global, command: Command) -> Result<u8> {
    let ok = 0;
    match command {
        Command::Pause(args) => pause::run(global, &args).map(|()| ok),
        Command::Unpause(args) => unpause::run(global, &args).map(|()| ok),
        Command::State(args) => state::run(global, &args).map(|()| ok),
        Command::Pod(args) => pod::run(global, args).map(|()| ok),
        Command::Image(args) => image::run(global, args).map(|()| ok),
        Command::Run(args) => run::run(global, *args),
        Command::Ps(args) => ps::run(global, &args).map(|()| ok),
        Command::Inspect(args) => inspect::run(global, &args).map(|()| ok),
        Command::Logs(args) => logs::run(global, &args).map(|()| ok),
        Command::Stats(args) => stats::run(global, &args).map(|()| ok),
        Command::Top(args) => top::run(global, &args).map(|()| ok),
        Command::Exec(args) => exec::run(global, args),
        Command::Attach(args) => attach::run(global, &args),
        Command::Events(args) => events::run(global, &args).map(|()| ok),
        Command::Start(args) => start::run(global, &args).map(|()| ok),
        Command::Stop(args) => stop::run(global, &args).map(|()| ok),
        Command::Kill(args) => kill::run(global, &args).map(|()| ok),
        Command::Wait(args) => wait::run(global, &args).map(|()| ok),
        Command::Rm(args) => rm::run(global, &args).map(|()| ok),
        Command::Checkpoint(args) => checkpoint::run(global, &args).map(|()| ok),
        Command::Restore(args) => restore::run(global, &args).map(|()| ok),
        Command::SandboxImage(args) => sandbox_image::run(global, &args).map(|()| ok),
        Command::Serve(args) => serve::run(global, &args).map(|()| ok),
        Command::InternalMonitor(args) => internal::run(global, &args).map(|()| ok),
        Command::InternalHealth(args) => internal::health(global, &args).map(|()| ok),
        Command::InternalWatchdog(args) => watchdog::run(global, &args).map(|()| ok),
    }
}

/// The verbs that change state, for the audit trail: the verb's name and
/// its target as the caller wrote it. Others are not audited.
fn audited(command: &Command) -> Option<(&'static str, String)> {
    use crate::commands::pod::PodCommand;
    let named = |n: &crate::target::NamedArgs, t: &crate::target::TargetArgs| {
        let mut parts: Vec<String> = n.names.clone();
        parts.extend(n.filters.filters.iter().map(|f| format!("--filter {f:?}")));
        parts.extend(t.pid.map(|p| format!("--pid {p}")));
        parts.extend(t.cgroup.as_ref().map(|c| format!("--cgroup {c}")));
        parts.extend(
            t.container_id
                .as_ref()
                .map(|c| format!("--container-id {c}")),
        );
        parts.extend(t.k8s_pod.as_ref().map(|c| format!("--k8s-pod {c}")));
        parts.join(" ")
    };
    Some(match command {
        Command::Run(a) => ("run", a.name.clone().unwrap_or_default()),
        Command::Pause(a) => ("pause", named(&a.named, &a.target)),
        Command::Unpause(a) => ("unpause", named(&a.named, &a.target)),
        Command::Start(a) => ("start", a.containers.containers.join(" ")),
        Command::Stop(a) => ("stop", a.containers.containers.join(" ")),
        Command::Kill(a) => ("kill", a.containers.containers.join(" ")),
        Command::Rm(a) => ("rm", a.containers.containers.join(" ")),
        Command::Checkpoint(a) => ("checkpoint", a.container.clone()),
        Command::Restore(a) => (
            "restore",
            a.container
                .clone()
                .or_else(|| {
                    a.import
                        .as_ref()
                        .map(|p| format!("--import {}", p.display()))
                })
                .unwrap_or_default(),
        ),
        Command::Exec(a) => ("exec", a.container.container.clone()),
        Command::Pod(a) => match &a.command {
            PodCommand::Create(c) => ("pod create", c.name.clone().unwrap_or_default()),
            PodCommand::Pause(p) => ("pod pause", p.names.pods.join(" ")),
            PodCommand::Unpause(p) => ("pod unpause", p.names.pods.join(" ")),
            PodCommand::Stop(p) => ("pod stop", p.names.pods.join(" ")),
            PodCommand::Rm(p) => ("pod rm", p.names.pods.join(" ")),
            PodCommand::Ls(_) | PodCommand::Inspect(_) => return None,
        },
        _ => return None,
    })
}

/// Appends the CLI's record to the audit trail (`STASIS_AUDIT_LOG`, else
/// `ROOT/audit.jsonl`). A trail that cannot be written does not fail the
/// verb, which has already happened: it is logged.
fn audit(global: &Global, verb: &str, target: &str, result: &Result<u8>) {
    let path = std::env::var_os("STASIS_AUDIT_LOG")
        .map(PathBuf::from)
        .unwrap_or_else(|| sandbox::audit::default_path(&global.root));
    let (outcome, status, message) = match result {
        Ok(code) => ("ok", u32::from(*code), None),
        Err(e) => (
            "error",
            u32::from(crate::exit::code_number(e)),
            Some(format!("{e:#}")),
        ),
    };
    let pid = std::process::id();
    let record = sandbox::audit::Record {
        time: sandbox::audit::now(),
        uid: rustix::process::getuid().as_raw(),
        gid: rustix::process::getgid().as_raw(),
        pid,
        exe: sandbox::audit::exe_of(std::path::Path::new("/proc"), pid),
        via: "cli".into(),
        method: None,
        path: None,
        verb: verb.into(),
        target: target.into(),
        outcome: outcome.into(),
        status,
        message,
    };
    if let Err(e) = sandbox::audit::append(&path, &record) {
        let denied = matches!(&e, sandbox::audit::Error::Open { source, .. }
            if matches!(source.kind(), std::io::ErrorKind::PermissionDenied | std::io::ErrorKind::NotFound));
        if denied {
            // Not root, or no state root: this caller's verbs are its own.
            tracing::debug!(error = %api::format_chain(&e), "no audit record");
        } else {
            tracing::warn!(error = %api::format_chain(&e), "writing the audit record");
        }
    }
}

/// Opens the pods and containers under the state root.
pub(crate) fn open(global: &Global) -> Result<Sandbox> {
    let mut sandbox = Sandbox::open(&global.root)
        .with_context(|| format!("opening the state root {}", global.root.display()))
        .map_err(permission_hint)?;
    if let Some(p) = std::env::var_os("STASIS_PAUSE") {
        sandbox = sandbox.with_pause_binary(p.into());
    }
    if let Some(p) = std::env::var_os("STASIS_CRIU") {
        sandbox = sandbox.with_criu(p.into());
    }
    Ok(sandbox)
}

/// A hint for the most common cause of EPERM/EACCES.
pub(crate) fn permission_hint(err: anyhow::Error) -> anyhow::Error {
    let denied = err.chain().any(|e| {
        e.downcast_ref::<freezer::Error>()
            .is_some_and(freezer::Error::is_permission_denied)
            || e.downcast_ref::<sandbox::Error>()
                .is_some_and(sandbox::Error::is_permission_denied)
            || e.downcast_ref::<connections::Error>()
                .is_some_and(connections::Error::is_permission_denied)
            || e.downcast_ref::<images::Error>()
                .is_some_and(images::Error::is_permission_denied)
    });
    if denied && !rustix::process::geteuid().is_root() {
        err.context("permission denied: run stasis as root (or with write access to the cgroup)")
    } else {
        err
    }
}
