//! `stasis internal-monitor`: the container's monitor (hidden; `run` starts
//! it), and `stasis internal-health`: its health checker (hidden; the
//! monitor starts it when the container has a health check).

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

#[derive(Debug, clap::Args)]
pub struct MonitorArgs {
    /// Bring the container back from its checkpoint instead of starting its command
    #[arg(long)]
    pub restore: bool,
    /// With --restore: frozen
    #[arg(long, requires = "restore")]
    pub paused: bool,
    /// The container's full ID
    pub id: String,
}

pub fn run(global: &Global, args: &MonitorArgs) -> Result<()> {
    // A monitor outlives the command that started it: it does not keep a
    // real-time caller's policy (nor pass it to the container's restarts).
    sandbox::leave_real_time().context("leaving the caller's real-time policy")?;
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
    let checker =
        internal_command(global, "internal-health", &id).context("finding the stasis binary")?;
    let restore = args.restore.then_some(sandbox::Restore {
        paused: args.paused,
    });
    sandbox.run_monitor(&id, std::fs::File::from(ready), checker, restore)?;
    Ok(())
}

/// The health checker: runs the container's check every interval until
/// the container ends. It dies with its monitor (a parent-death signal,
/// and a check that the monitor is still its parent).
pub fn health(global: &Global, args: &Args) -> Result<()> {
    rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL))
        .context("asking to die with the monitor")?;
    let sandbox = open(global)?;
    let id = Id::try_from(args.id.clone())?;
    let c = sandbox.container(&id)?;
    let parent = rustix::process::getppid().map(|p| p.as_raw_nonzero().get() as u32);
    if c.monitor.map(|m| m.pid) != parent {
        anyhow::bail!("container {} has another monitor", c.name);
    }
    sandbox.run_health_checks(&id)?;
    Ok(())
}

/// The command that runs a container's monitor: this binary, detached.
pub fn monitor_command(global: &Global, id: &Id) -> Result<Command> {
    let mut cmd =
        internal_command(global, "internal-monitor", id).context("finding the stasis binary")?;
    // Its own process group: the terminal's signals are for the CLI.
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    Ok(cmd)
}

/// The command that runs a container's monitor to restore it from its
/// checkpoint.
pub fn restore_command(
    global: &Global,
    id: &Id,
    restore: &sandbox::Restore,
) -> std::io::Result<Command> {
    let mut cmd = internal_command(global, "internal-monitor", id)?;
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    cmd.arg("--restore");
    if restore.paused {
        cmd.arg("--paused");
    }
    Ok(cmd)
}

/// This binary in one of its internal modes, for container `id`.
fn internal_command(global: &Global, mode: &str, id: &Id) -> std::io::Result<Command> {
    let exe = std::env::current_exe()?;
    let mut cmd = Command::new(exe);
    cmd.arg("--root")
        .arg(&global.root)
        .arg(mode)
        .arg(id.as_str());
    Ok(cmd)
}
