//! `stasis exec`: run a command in a running container's namespaces and
//! cgroup; exits with its status.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;

use crate::commands::{open, permission_hint, Global};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// An environment variable, KEY=VALUE (repeatable)
    #[arg(short, long = "env", value_name = "KEY=VALUE")]
    pub env: Vec<String>,
    /// The working directory inside the container
    #[arg(short, long, value_name = "DIR")]
    pub workdir: Option<PathBuf>,
    /// Container name or ID
    #[arg(value_name = "CONTAINER")]
    pub container: String,
    /// The command and its arguments
    #[arg(last = true, required = true, value_name = "CMD")]
    pub command: Vec<String>,
}

pub fn run(global: &Global, args: Args) -> Result<ExitCode> {
    let sandbox = open(global)?;
    let c = sandbox.find_container(&args.container)?;
    let code = sandbox
        .exec(&c, args.command, args.env, args.workdir)
        .map_err(|e| permission_hint(e.into()))?;
    Ok(ExitCode::from((code & 0xff) as u8))
}
