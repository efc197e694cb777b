//! `stasis checkpoint`: writes a running or paused container to disk with
//! CRIU (docker's `checkpoint create`, podman's `container checkpoint`).
//! A paused one is dumped frozen, as it is. Without `--leave-running` the
//! container ends, exited by the checkpoint; `stasis restore` brings it
//! back. What CRIU needs is checked first (see `sandbox::checkpoint`).

use std::path::PathBuf;

use anyhow::Result;
use sandbox::CheckpointOptions;

use crate::commands::{open, Global};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Leave the container running (or paused) after the checkpoint
    #[arg(long)]
    pub leave_running: bool,
    /// Also write the checkpoint to this archive (a tar file), for a restore elsewhere or after rm
    #[arg(long, value_name = "FILE")]
    pub export: Option<PathBuf>,
    /// Checkpoint established TCP connections (CRIU's TCP repair), so they survive the restore
    #[arg(long)]
    pub tcp_established: bool,
    /// The container (name, ID or unique ID prefix)
    pub container: String,
}

pub fn run(global: &Global, args: &Args) -> Result<()> {
    let sandbox = open(global)?;
    let c = sandbox.find_container(&args.container)?;
    let opts = CheckpointOptions {
        leave_running: args.leave_running,
        tcp_established: args.tcp_established,
        export: args.export.clone(),
    };
    // Its errors name the container already.
    let info = sandbox.checkpoint_container(&c, &opts)?;
    tracing::info!(container = %c.name, dir = %info.dir.display(), size = info.size, "checkpointed");
    println!("{}", c.name);
    Ok(())
}
