//! `stasis image rm`: remove images, or one name of an image that has
//! several (docker's "untagged"). An image a container uses stays unless
//! forced, and a layer a container mounts stays even then.

use anyhow::Result;

use crate::commands::{open, Global};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Remove images containers use, or an image by ID with several names
    #[arg(short, long)]
    pub force: bool,
    /// Image names (NAME[:TAG]) or IDs (any unique prefix)
    #[arg(required = true, value_name = "IMAGE")]
    pub images: Vec<String>,
}

pub fn run(global: &Global, args: &Args) -> Result<()> {
    let store = super::open(global)?;
    let sandbox = open(global)?;
    let mut first_err = None;
    for q in &args.images {
        let removed = store
            .resolve(q)
            .map_err(anyhow::Error::from)
            .and_then(|image| {
                let (users, busy_layers) = super::usage(&sandbox, &image.id)?;
                let removal = images::Removal {
                    force: args.force,
                    users,
                    busy_layers,
                };
                Ok(store.remove(q, &removal)?)
            });
        match removed {
            Ok(r) => {
                for t in r.untagged {
                    println!("Untagged: {t}");
                }
                if let Some(id) = r.deleted {
                    println!("Deleted: {id}");
                }
            }
            Err(e) if first_err.is_none() => first_err = Some(e),
            Err(e) => eprintln!("stasis: {e:#}"),
        }
    }
    first_err.map_or(Ok(()), Err)
}
