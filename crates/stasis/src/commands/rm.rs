//! `stasis rm`: remove containers (and a pod made for one alone).

use anyhow::Result;

use crate::commands::{each, open, Global};
use crate::flags;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Kill running containers first
    #[arg(short, long)]
    pub force: bool,
    #[command(flatten)]
    pub containers: flags::Containers,
}

pub fn run(global: &Global, args: &Args) -> Result<()> {
    let sandbox = open(global)?;
    each(&args.containers.containers, |q| {
        let c = sandbox.find_container(q)?;
        Ok(sandbox.remove_container(&c, args.force)?)
    })
}
