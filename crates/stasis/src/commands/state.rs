//! `stasis state`: what the kernel says about a cgroup's freeze.

use std::io::Write;

use anyhow::Result;
use clap::ValueEnum;
use freezer::{Freezer, FrozenBy, State, Version};
use serde::Serialize;

use crate::target::{self, HierarchyArgs, TargetArgs};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub target: TargetArgs,
    #[command(flatten)]
    pub hierarchy: HierarchyArgs,
    /// Output format
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Text,
    Json,
}

#[derive(Serialize)]
struct Report<'a> {
    cgroup: &'a str,
    path: &'a std::path::Path,
    hierarchy: Version,
    #[serde(flatten)]
    state: &'a State,
}

pub fn run(args: &Args) -> Result<()> {
    let resolved = target::resolve(&args.target, &args.hierarchy)?;
    let state = resolved.context(
        "reading the state of",
        Freezer::new().state(&resolved.cgroup),
    )?;
    let report = Report {
        cgroup: &resolved.cgroup.path,
        path: &resolved.cgroup.dir,
        hierarchy: resolved.cgroup.version(),
        state: &state,
    };
    let mut out = std::io::stdout().lock();
    match args.format {
        Format::Json => {
            serde_json::to_writer(&mut out, &report)?;
            writeln!(out)?;
        }
        Format::Text => {
            writeln!(out, "cgroup:    {}", report.cgroup)?;
            writeln!(out, "path:      {}", report.path.display())?;
            writeln!(out, "hierarchy: {}", report.hierarchy)?;
            writeln!(out, "state:     {}", state.phase)?;
            if let Some(by) = state.frozen_by {
                let by = match by {
                    FrozenBy::Itself => "self".to_owned(),
                    FrozenBy::Subgroup => "subgroup".to_owned(),
                    FrozenBy::Ancestor => format!(
                        "ancestor {}",
                        state
                            .ancestor
                            .as_deref()
                            .unwrap_or("(outside the visible hierarchy)")
                    ),
                };
                writeln!(out, "frozen by: {by}")?;
            }
            if let Some(sub) = &state.subgroup {
                writeln!(out, "subgroup:  {sub}")?;
            }
        }
    }
    Ok(())
}
