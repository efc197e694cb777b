//! `stasis stop`: SIGTERM, then SIGKILL after the grace period.

use anyhow::Result;

use crate::commands::named::{FenceSite, Named};
use crate::commands::{each, open, Global};
use crate::flags;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub grace: flags::Grace,
    #[command(flatten)]
    pub containers: flags::Containers,
}

pub fn run(global: &Global, args: &Args) -> Result<()> {
    let sandbox = open(global)?;
    each(&args.containers.containers, |q| {
        let c = sandbox.find_container(q)?;
        // It may thaw or end the container: lift its fences too.
        let site = FenceSite::of(&sandbox, &Named::Container(Box::new(c.clone())))?;
        site.lift_after(
            global,
            Ok(sandbox.stop_container(&c, args.grace.duration())?),
        )
    })
}
