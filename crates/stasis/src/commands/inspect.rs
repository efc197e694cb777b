//! `stasis inspect`: containers as JSON.

use std::io::Write;

use anyhow::Result;

use crate::commands::ps::{ContainerView, LeaseIndex};
use crate::commands::{open, Global};
use crate::flags;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print each container through a template, as docker's -f does ('{{.State.Status}}', '{{json .State}}')
    #[arg(short, long, value_name = "TEMPLATE", value_parser = crate::template::Template::parse)]
    pub format: Option<crate::template::Template>,
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
    if let Some(t) = &args.format {
        for v in &views {
            let value = serde_json::to_value(v)?;
            let line = t
                .render(&value, None)
                .map_err(crate::exit::Refusal::usage)?;
            writeln!(out, "{line}")?;
        }
        return Ok(());
    }
    serde_json::to_writer_pretty(&mut out, &views)?;
    writeln!(out)?;
    Ok(())
}
