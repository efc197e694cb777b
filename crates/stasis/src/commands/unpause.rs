//! `stasis unpause`: thaw a paused target, in whichever hierarchy and by
//! whichever strategy it was paused. It takes the same flags as `pause`,
//! and `--wait-healthy` to return only once the target is healthy again
//! (see [`crate::health`]).

use anyhow::{Context, Result};
use freezer::{Choice, Freezer, FrozenBy, Placement};

use crate::commands::named::FenceSite;
use crate::commands::{for_each_named, permission_hint, Global, Named};
use crate::health::{self, Gate};
use crate::target::{
    self, HierarchyArgs, NamedArgs, StrategyArgs, TargetArgs, TimeoutArgs, STRATEGY_HELP,
    TARGET_HELP, UNPAUSE_STRATEGY_HELP, UNPAUSE_TIMEOUT_HELP,
};
use crate::{flags, lease, reset};

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
    #[command(flatten)]
    pub wait: flags::WaitHealthy,
}

pub fn run(global: &Global, args: &Args) -> Result<()> {
    let wait = args.wait.request();
    if args.named.is_given() {
        let timeout = args.timeout.timeout;
        return for_each_named(global, &args.named, true, |sandbox, name, item| {
            health::gated(sandbox, &item, wait.as_ref(), name, || {
                unpause_named(global, sandbox, &item, timeout)
            })
        });
    }
    if wait.as_ref().is_some_and(|w| w.port.is_none()) {
        target::usage_error(
            "--wait-healthy of a --pid, --cgroup, --container-id or --k8s-pod target needs --wait-port \
             (a health command runs inside a stasis container)",
        );
    }
    let resolved = target::resolve(&args.target, &args.hierarchy).map_err(permission_hint)?;
    let gate = match wait.as_ref().and_then(|w| w.port.map(|p| (p, w.limit))) {
        Some((port, limit)) => {
            let pids = freezer::tree::procs_below(&resolved.placement.chosen)
                .context("listing the target's processes")?;
            Some((
                Gate::for_target(std::path::Path::new("/proc"), &pids, port)?,
                limit,
            ))
        }
        None => None,
    };
    unpause_target(global, &resolved, &args.strategy, args.timeout.timeout)?;
    match gate {
        Some((gate, limit)) => gate.wait(None, &resolved.target.to_string(), limit),
        None => Ok(()),
    }
}

/// Thaws one stasis container or pod, then lifts its fences and ends its
/// lease, whatever the thaw's result.
pub(crate) fn unpause_named(
    global: &Global,
    sandbox: &sandbox::Sandbox,
    item: &Named,
    timeout: std::time::Duration,
) -> Result<()> {
    let site = FenceSite::of(sandbox, item)?;
    let unpaused = match item {
        Named::Container(c) => sandbox.unpause_container(c, timeout),
        Named::Pod(p) => sandbox.unpause_pod(p, timeout),
    };
    site.lift_after(global, unpaused.map_err(Into::into))
}

/// Thaws a resolved `--pid`, `--cgroup`, `--container-id` or `--k8s-pod`
/// target, lifts its fences and ends its leases; warns when an ancestor
/// still holds it frozen.
pub(crate) fn unpause_target(
    global: &Global,
    resolved: &target::Resolved,
    strategy: &StrategyArgs,
    timeout: std::time::Duration,
) -> Result<()> {
    // auto thaws whichever hierarchy holds the target; a named one only that.
    let placement = match resolved.choice {
        Choice::Auto => resolved.placement.clone(),
        _ => Placement::single(resolved.placement.chosen.clone()),
    };
    let result = Freezer::new()
        .timeout(timeout)
        .strategy(strategy.strategy())
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
