//! `stasis restore`: brings a checkpointed container back with CRIU, in
//! its pod (a pod `run` made for it gets a new pause process, as for
//! `start`), with its log continuing (docker's `start --checkpoint`,
//! podman's `container restore`). `--name` restores a copy beside it as a
//! new container; `--import` restores an exported archive, after the
//! original was removed or on another host.

use std::path::PathBuf;

use anyhow::{Context, Result};
use sandbox::{Restore, RestoreSource};

use crate::commands::{internal, open, Global};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Restore from this exported archive (stasis checkpoint --export) instead of a container's own checkpoint
    #[arg(long, value_name = "FILE", conflicts_with = "container")]
    pub import: Option<PathBuf>,
    /// Restore as a new container of this name (with --import: the archive's name if not given)
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// Restore it frozen: paused, as after stasis pause
    #[arg(long)]
    pub paused: bool,
    /// The checkpointed container (name, ID or unique ID prefix)
    #[arg(required_unless_present = "import")]
    pub container: Option<String>,
}

pub fn run(global: &Global, args: &Args) -> Result<()> {
    let sandbox = open(global)?;
    let restore = Restore {
        paused: args.paused,
    };
    let monitor = |id: &sandbox::Id| internal::restore_command(global, id, &restore);
    let restored = if let Some(archive) = &args.import {
        sandbox
            .restore_as(
                &RestoreSource::Archive(archive.clone()),
                args.name.clone(),
                monitor,
            )
            .with_context(|| format!("restoring from {}", archive.display()))?
    } else {
        let q = args.container.as_deref().ok_or_else(|| {
            crate::exit::Refusal::usage("give the container to restore, or --import FILE".into())
        })?;
        let c = sandbox.find_container(q)?;
        match &args.name {
            // Their errors name the container already.
            Some(name) => sandbox.restore_as(
                &RestoreSource::Container(Box::new(c.clone())),
                Some(name.clone()),
                monitor,
            )?,
            None => {
                let cmd = monitor(&c.id).context("finding the stasis binary")?;
                sandbox.restore_container(&c, cmd)?
            }
        }
    };
    println!("{}", restored.name);
    Ok(())
}
