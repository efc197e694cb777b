//! `stasis exec`: run a command in a running container's namespaces and
//! cgroup; exits with its status.

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

/// Runs the command; the exit status `stasis exec` exits with.
pub fn run(global: &Global, args: Args) -> Result<u8> {
    let sandbox = open(global)?;
    let c = sandbox.find_container(&args.container.container)?;
    let env = args.process.env();
    let code = sandbox
        .exec(&c, args.command.command, env, args.process.workdir)
        .map_err(|e| permission_hint(e.into()))?;
    Ok((code & 0xff) as u8)
}
