//! `stasis kill`: send a signal to containers' main processes.

use anyhow::Result;

use crate::commands::named::{FenceSite, Named};
use crate::commands::{each, open, Global};
use crate::{flags, signal};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The signal, by name (TERM, SIGTERM) or number
    #[arg(short, long, default_value = "KILL", value_parser = signal::parse)]
    pub signal: rustix::process::Signal,
    #[command(flatten)]
    pub containers: flags::Containers,
}

pub fn run(global: &Global, args: &Args) -> Result<()> {
    let sandbox = open(global)?;
    each(&args.containers.containers, |q| {
        let c = sandbox.find_container(q)?;
        // It may thaw or end the container: lift its fences too.
        let site = FenceSite::of(&sandbox, &Named::Container(Box::new(c.clone())))?;
        site.lift_after(global, Ok(sandbox.kill_container(&c, args.signal)?))
    })
}
