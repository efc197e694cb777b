//! `stasis stop`: SIGTERM, then SIGKILL after the grace period.

use std::time::Duration;

use anyhow::Result;

use crate::commands::{each, open, Global};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Seconds to wait after SIGTERM before SIGKILL
    #[arg(short = 't', long = "time", default_value_t = 10)]
    pub time: u64,
    /// Container names or IDs
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

pub fn run(global: &Global, args: &Args) -> Result<()> {
    let sandbox = open(global)?;
    each(&args.containers, |q| {
        let c = sandbox.find_container(q)?;
        Ok(sandbox.stop_container(&c, Duration::from_secs(args.time))?)
    })
}
