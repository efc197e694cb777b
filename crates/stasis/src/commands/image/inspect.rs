//! `stasis image inspect`: images as JSON, in docker's
//! `GET /images/{name}/json` shape.

use std::io::Write;

use anyhow::Result;

use crate::commands::Global;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Image names (NAME[:TAG]) or IDs (any unique prefix)
    #[arg(required = true, value_name = "IMAGE")]
    pub images: Vec<String>,
}

pub fn run(global: &Global, args: &Args) -> Result<()> {
    let store = super::open(global)?;
    let mut values = Vec::new();
    let mut first_err = None;
    for q in &args.images {
        match store.resolve(q) {
            Ok(image) => values.push(image.inspect()),
            Err(e) if first_err.is_none() => first_err = Some(e),
            Err(e) => eprintln!("stasis: {e}"),
        }
    }
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, &values)?;
    writeln!(out)?;
    first_err.map_or(Ok(()), |e| Err(e.into()))
}
