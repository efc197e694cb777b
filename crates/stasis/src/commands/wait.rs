//! `stasis wait`: block until containers exit; print their exit codes.

use anyhow::{bail, Result};

use crate::commands::{open, Global};
use crate::flags;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub containers: flags::Containers,
}

pub fn run(global: &Global, args: &Args) -> Result<()> {
    let sandbox = open(global)?;
    for q in &args.containers.containers {
        let c = sandbox.find_container(q)?;
        match sandbox.wait_exit(&c, None)? {
            Some(code) => println!("{code}"),
            None => bail!(
                "container {} ended without a recorded exit status (its monitor died)",
                c.name
            ),
        }
    }
    Ok(())
}
