//! `stasis run`: create and start a container, in a pod of its own or in
//! an existing pod.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use sandbox::ContainerOptions;

use crate::commands::{open, permission_hint, Global};
use crate::flags;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Run in the background and print the container's ID
    #[arg(short, long)]
    pub detach: bool,
    /// Join this pod, or the pod of this container (like --net=container:X)
    #[arg(long, value_name = "POD|CONTAINER")]
    pub pod: Option<String>,
    /// A name for the container: letters, digits, _ . -, starting with a letter or digit
    #[arg(long)]
    pub name: Option<String>,
    #[command(flatten)]
    pub labels: flags::Labels,
    #[command(flatten)]
    pub process: flags::Process,
    /// Run in its own mount namespace with DIR as its root (with /proc, /dev, /sys)
    #[arg(long, value_name = "DIR")]
    pub rootfs: Option<PathBuf>,
    #[command(flatten)]
    pub command: flags::Command,
}

pub fn run(global: &Global, args: Args) -> Result<ExitCode> {
    let sandbox = open(global)?;
    let container = sandbox
        .create_container(ContainerOptions {
            name: args.name,
            pod: args.pod,
            labels: args.labels.to_map(),
            env: args.process.env(),
            workdir: args.process.workdir,
            rootfs: args.rootfs,
            command: args.command.command,
        })
        .context("creating the container")
        .map_err(permission_hint)?;
    let monitor = crate::commands::internal::monitor_command(global, &container.id)?;
    let started = sandbox.start_container(&container, monitor);
    let container = match started {
        Ok(c) => c,
        Err(e) => {
            // Docker's codes for a command that cannot run: 127 not found, 126 not executable.
            let code = sandbox
                .container(&container.id)
                .ok()
                .and_then(|c| c.exit)
                .map_or(125, |e| e.code);
            eprintln!("stasis: {:#}", anyhow::Error::from(e));
            return Ok(ExitCode::from(u8::try_from(code).unwrap_or(125)));
        }
    };
    if args.detach {
        println!("{}", container.id);
        return Ok(ExitCode::SUCCESS);
    }
    let mut out = std::io::stdout().lock();
    let code = sandbox.copy_logs(&container, &mut out, true)?;
    Ok(ExitCode::from(code.map_or(1, |c| (c & 0xff) as u8)))
}
