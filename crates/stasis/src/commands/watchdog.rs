//! `stasis internal-watchdog TAG`: a lease's watchdog (hidden; `pause
//! --lease` and `--until-exit` start it). See [`crate::lease`].

use anyhow::{Context, Result};

use crate::commands::Global;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The lease's tag (its record is `<root>/leases/TAG.json`)
    pub tag: String,
}

pub fn run(global: &Global, args: &Args) -> Result<()> {
    let tag = connections::Tag::new(args.tag.clone()).context("the lease's tag")?;
    crate::lease::watch(&global.root, &tag)
}
