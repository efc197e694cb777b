//! `stasis unpause`: thaw a paused cgroup, whichever strategy paused it.

use anyhow::Result;
use freezer::{Freezer, FrozenBy};

use crate::commands::{for_each_named, permission_hint, Global, Named};
use crate::target::{self, HierarchyArgs, NamedArgs, TargetArgs, TimeoutArgs};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub named: NamedArgs,
    #[command(flatten)]
    pub target: TargetArgs,
    #[command(flatten)]
    pub hierarchy: HierarchyArgs,
    #[command(flatten)]
    pub timeout: TimeoutArgs,
}

pub fn run(global: &Global, args: &Args) -> Result<()> {
    if args.named.is_given() {
        let timeout = args.timeout.timeout;
        return for_each_named(global, &args.named, |sandbox, item| match item {
            Named::Container(c) => sandbox.unpause_container(&c, timeout),
            Named::Pod(p) => sandbox.unpause_pod(&p, timeout),
        });
    }
    let resolved = target::resolve(&args.target, &args.hierarchy).map_err(permission_hint)?;
    let result = Freezer::new()
        .timeout(args.timeout.timeout)
        .thaw(&resolved.cgroup);
    let outcome = resolved
        .context("unpausing", result)
        .map_err(permission_hint)?;
    if outcome.state.frozen_by == Some(FrozenBy::Ancestor) {
        eprintln!(
            "stasis: warning: {} is still frozen by its ancestor {}",
            resolved.cgroup.path,
            outcome
                .state
                .ancestor
                .as_deref()
                .unwrap_or("(outside the visible hierarchy)")
        );
    }
    Ok(())
}
