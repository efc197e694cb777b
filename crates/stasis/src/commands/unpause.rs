//! `stasis unpause`: thaw a paused target, in whichever hierarchy and by
//! whichever strategy it was paused. It takes the same flags as `pause`.

use anyhow::Result;
use freezer::{Choice, Freezer, FrozenBy, Placement};

use crate::commands::named::FenceSite;
use crate::commands::{for_each_named, permission_hint, Global, Named};
use crate::target::{
    self, HierarchyArgs, NamedArgs, StrategyArgs, TargetArgs, TimeoutArgs, STRATEGY_HELP,
    TARGET_HELP, UNPAUSE_STRATEGY_HELP, UNPAUSE_TIMEOUT_HELP,
};
use crate::{lease, reset};

#[derive(Debug, clap::Args)]
#[command(
    help_template = target::help_template(&[TARGET_HELP, STRATEGY_HELP, crate::exit::HELP]),
    mut_arg("timeout", |a| a.help(UNPAUSE_TIMEOUT_HELP)),
    mut_arg("strategy", |a| a.help(UNPAUSE_STRATEGY_HELP))
)]
pub struct Args {
    #[command(flatten)]
    pub named: NamedArgs,
    #[command(flatten)]
    pub target: TargetArgs,
    #[command(flatten)]
    pub hierarchy: HierarchyArgs,
    #[command(flatten)]
    pub strategy: StrategyArgs,
    #[command(flatten)]
    pub timeout: TimeoutArgs,
}

pub fn run(global: &Global, args: &Args) -> Result<()> {
    if args.named.is_given() {
        let timeout = args.timeout.timeout;
        return for_each_named(global, &args.named, true, |sandbox, _, item| {
            let site = FenceSite::of(sandbox, &item)?;
            let unpaused = match &item {
                Named::Container(c) => sandbox.unpause_container(c, timeout),
                Named::Pod(p) => sandbox.unpause_pod(p, timeout),
            };
            site.lift_after(global, unpaused.map_err(Into::into))
        });
    }
    let resolved = target::resolve(&args.target, &args.hierarchy).map_err(permission_hint)?;
    // auto thaws whichever hierarchy holds the target; a named one only that.
    let placement = match resolved.choice {
        Choice::Auto => resolved.placement.clone(),
        _ => Placement::single(resolved.placement.chosen.clone()),
    };
    let result = Freezer::new()
        .timeout(args.timeout.timeout)
        .strategy(args.strategy.strategy())
        .unpause(&placement);
    // A pause in either tree is fenced, and leased, under its own path.
    let cgroups: Vec<_> = resolved.placement.all().cloned().collect();
    let thawed = reset::after_unpause(
        &global.root,
        &cgroups,
        None,
        resolved.context("unpausing", result),
    );
    let thawed = cgroups
        .iter()
        .fold(thawed, |r, cg| lease::after_unpause(&global.root, cg, r))
        .map_err(permission_hint)?;
    for (cgroup, outcome) in thawed {
        if outcome.state.frozen_by == Some(FrozenBy::Ancestor) {
            eprintln!(
                "stasis: warning: {} is still frozen by its ancestor {} ({})",
                cgroup.path,
                outcome
                    .state
                    .ancestor
                    .as_deref()
                    .unwrap_or("(outside the visible hierarchy)"),
                cgroup.version()
            );
        }
    }
    Ok(())
}
