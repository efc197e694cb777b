//! `stasis logs`: a container's stdout and stderr.

use anyhow::Result;

use crate::commands::{open, Global};
use crate::flags;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Keep printing until the container exits
    #[arg(short, long)]
    pub follow: bool,
    #[command(flatten)]
    pub container: flags::ContainerName,
}

pub fn run(global: &Global, args: &Args) -> Result<()> {
    let sandbox = open(global)?;
    let c = sandbox.find_container(&args.container.container)?;
    let mut out = std::io::stdout().lock();
    sandbox.copy_logs(&c, &mut out, args.follow)?;
    Ok(())
}
