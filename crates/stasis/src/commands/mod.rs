//! One module per verb, the dispatch from the parsed command line to them,
//! and the sandbox handle they open. What several verbs share lives in a
//! module of its own: [`named`] (acting on names), [`crate::flags`],
//! [`crate::filter`], [`crate::table`], [`crate::human`], [`crate::signal`].

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
pub mod rm;
pub mod run;
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
    let ok = std::process::ExitCode::SUCCESS;
    match cli.command {
        Command::Pause(args) => pause::run(&global, &args).map(|()| ok),
        Command::Unpause(args) => unpause::run(&global, &args).map(|()| ok),
        Command::State(args) => state::run(&global, &args).map(|()| ok),
        Command::Pod(args) => pod::run(&global, args).map(|()| ok),
        Command::Image(args) => image::run(&global, args).map(|()| ok),
        Command::Run(args) => run::run(&global, args),
        Command::Ps(args) => ps::run(&global, &args).map(|()| ok),
        Command::Inspect(args) => inspect::run(&global, &args).map(|()| ok),
        Command::Logs(args) => logs::run(&global, &args).map(|()| ok),
        Command::Stats(args) => stats::run(&global, &args).map(|()| ok),
        Command::Top(args) => top::run(&global, &args).map(|()| ok),
        Command::Exec(args) => exec::run(&global, args),
        Command::Events(args) => events::run(&global, &args).map(|()| ok),
        Command::Stop(args) => stop::run(&global, &args).map(|()| ok),
        Command::Kill(args) => kill::run(&global, &args).map(|()| ok),
        Command::Wait(args) => wait::run(&global, &args).map(|()| ok),
        Command::Rm(args) => rm::run(&global, &args).map(|()| ok),
        Command::InternalMonitor(args) => internal::run(&global, &args).map(|()| ok),
        Command::InternalHealth(args) => internal::health(&global, &args).map(|()| ok),
        Command::InternalWatchdog(args) => watchdog::run(&global, &args).map(|()| ok),
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
