//! `stasis inspect`: containers as JSON.

use std::io::Write;

use anyhow::Result;

use crate::commands::ps::{ContainerView, LeaseIndex};
use crate::commands::{open, Global};
use crate::flags;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub containers: flags::Containers,
}

pub fn run(global: &Global, args: &Args) -> Result<()> {
    let sandbox = open(global)?;
    let records: Vec<_> = args
        .containers
        .containers
        .iter()
        .map(|q| sandbox.find_container(q))
        .collect::<Result<_, _>>()?;
    let leases = LeaseIndex::load(global);
    let views: Vec<_> = records
        .iter()
        .map(|c| {
            ContainerView::new(
                &sandbox,
                &leases,
                c,
                sandbox.pod(&c.pod).ok().map(|p| p.name),
            )
        })
        .collect();
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, &views)?;
    writeln!(out)?;
    Ok(())
}
