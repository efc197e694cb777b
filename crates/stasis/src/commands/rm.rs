//! `stasis rm`: remove containers (and a pod made for one alone).

use anyhow::Result;

use crate::commands::named::{FenceSite, Named};
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
        // It may thaw or end the container: lift its fences too.
        let site = FenceSite::of(&sandbox, &Named::Container(Box::new(c.clone())))?;
        site.lift_after(global, Ok(sandbox.remove_container(&c, args.force)?))
    })
}
