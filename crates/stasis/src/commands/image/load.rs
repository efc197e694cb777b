//! `stasis image load`: images from a `docker save` archive or an OCI
//! image archive (gzip or not), from a file or stdin.

use std::path::PathBuf;

use anyhow::{Context, Result};

use crate::commands::Global;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The archive (default: stdin)
    #[arg(short, long, value_name = "FILE")]
    pub input: Option<PathBuf>,
}

pub fn run(global: &Global, args: &Args) -> Result<()> {
    let images = super::open(global)?;
    let (input, what): (Box<dyn std::io::Read>, String) = match &args.input {
        Some(path) => (
            Box::new(
                std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?,
            ),
            path.display().to_string(),
        ),
        None => (Box::new(std::io::stdin().lock()), "stdin".into()),
    };
    let loaded = images
        .load(input)
        .with_context(|| format!("loading images from {what}"))?;
    for image in loaded {
        if image.tags.is_empty() {
            println!("Loaded image ID: {}", image.id);
        }
        for tag in image.tags {
            println!("Loaded image: {tag}");
        }
    }
    Ok(())
}
