//! `stasis internal-monitor`: the container's monitor (hidden; `run` starts it).

use std::os::fd::AsFd;
use std::process::Command;

use anyhow::{Context, Result};
use sandbox::Id;

use crate::commands::{open, Global};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The container's full ID
    pub id: String,
}

pub fn run(global: &Global, args: &Args) -> Result<()> {
    let sandbox = open(global)?;
    let id = Id::try_from(args.id.clone())?;
    // stdout is the pipe `run` reads the outcome from: keep it only as the
    // ready channel, which the monitor closes once it has reported, and
    // point fd 1 elsewhere so nothing else holds the pipe open.
    let ready = std::io::stdout()
        .as_fd()
        .try_clone_to_owned()
        .context("taking the ready pipe")?;
    let devnull = std::fs::File::open("/dev/null").context("opening /dev/null")?;
    rustix::stdio::dup2_stdout(&devnull).context("redirecting stdout")?;
    sandbox.run_monitor(&id, std::fs::File::from(ready))?;
    Ok(())
}

/// The command that runs a container's monitor: this binary, detached.
pub fn monitor_command(global: &Global, id: &Id) -> Result<Command> {
    let exe = std::env::current_exe().context("finding the stasis binary")?;
    let mut cmd = Command::new(exe);
    cmd.arg("--root")
        .arg(&global.root)
        .arg("internal-monitor")
        .arg(id.as_str());
    // Its own process group: the terminal's signals are for the CLI.
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    Ok(cmd)
}
