//! `stasis kill`: send a signal to containers' main processes.

use anyhow::Result;

use crate::commands::{each, open, parse_signal, Global};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The signal, by name (TERM, SIGTERM) or number
    #[arg(short, long, default_value = "KILL", value_parser = parse_signal)]
    pub signal: rustix::process::Signal,
    /// Container names or IDs
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

pub fn run(global: &Global, args: &Args) -> Result<()> {
    let sandbox = open(global)?;
    each(&args.containers, |q| {
        let c = sandbox.find_container(q)?;
        Ok(sandbox.kill_container(&c, args.signal)?)
    })
}
