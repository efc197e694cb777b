//! `stasis exec`: run a command in a running container's namespaces and
//! cgroup; exits with its status.

use std::process::ExitCode;

use anyhow::Result;

use crate::commands::{open, permission_hint, Global};
use crate::flags;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub process: flags::Process,
    #[command(flatten)]
    pub container: flags::ContainerName,
    #[command(flatten)]
    pub command: flags::Command,
}

pub fn run(global: &Global, args: Args) -> Result<ExitCode> {
    let sandbox = open(global)?;
    let c = sandbox.find_container(&args.container.container)?;
    let env = args.process.env();
    let code = sandbox
        .exec(&c, args.command.command, env, args.process.workdir)
        .map_err(|e| permission_hint(e.into()))?;
    Ok(ExitCode::from((code & 0xff) as u8))
}
