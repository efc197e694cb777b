//! `stasis start`: starts created or exited containers (docker start). An
//! exited one runs again as the same container — its ID, name, log
//! (appended to), limits, restart policy and confinement — in a new
//! process; if the pod `run` made for it ended with it, in a new pause
//! process's new namespaces (see `sandbox::Sandbox::start_again`). One
//! already running is left alone, as docker leaves it.

use anyhow::{Context, Result};
use sandbox::{ContainerRecord, ContainerStatus, Sandbox};

use crate::commands::{each, open, Global};
use crate::flags;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub containers: flags::Containers,
}

pub fn run(global: &Global, args: &Args) -> Result<()> {
    let sandbox = open(global)?;
    each(&args.containers.containers, |q| {
        let c = sandbox.find_container(q)?;
        match sandbox.container_status(&c) {
            ContainerStatus::Running | ContainerStatus::Restarting(_) => Ok(()),
            _ => start(global, &sandbox, &c).map(drop),
        }
    })
}

/// Starts a created or exited container through a new monitor (the CLI's
/// and the API's start and restart); its record once the process runs.
pub(crate) fn start(
    global: &Global,
    sandbox: &Sandbox,
    c: &ContainerRecord,
) -> Result<ContainerRecord> {
    let monitor = crate::commands::internal::monitor_command(global, &c.id)?;
    sandbox
        .start_again(c, monitor)
        .with_context(|| format!("starting container {}", c.name))
}
