//! `stasis pause`: freeze every process of a cgroup.

use anyhow::Result;
use freezer::{Freezer, Refusal, Target};

use crate::commands::{for_each_named, permission_hint, Global, Named};
use crate::target::{
    self, HierarchyArgs, NamedArgs, StrategyArgs, TargetArgs, TimeoutArgs, STRATEGY_HELP,
    TARGET_HELP,
};

#[derive(Debug, clap::Args)]
#[command(help_template = target::help_template(&[TARGET_HELP, STRATEGY_HELP, crate::exit::HELP]))]
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
        // clap refuses --hierarchy, --strategy and --runtime-root here: the
        // sandbox freezes its pods and containers at their own node.
        let timeout = args.timeout.timeout;
        return for_each_named(global, &args.named, |sandbox, item| match item {
            Named::Container(c) => sandbox.pause_container(&c, timeout),
            Named::Pod(p) => sandbox.pause_pod(&p, timeout),
        });
    }
    let resolved = target::resolve(&args.target, &args.hierarchy).map_err(permission_hint)?;
    let result = Freezer::new()
        .timeout(args.timeout.timeout)
        .strategy(args.strategy.strategy())
        .pause(&resolved.hierarchies, &resolved.placement);
    let result = resolved
        .context("pausing", result)
        .map_err(|e| root_cgroup_hint(&resolved, e));
    result.map_err(permission_hint)?;
    Ok(())
}

/// What to do about a process in the root cgroup, which cannot be paused.
fn root_cgroup_hint(resolved: &target::Resolved, err: anyhow::Error) -> anyhow::Error {
    let in_root = err.chain().any(|e| {
        matches!(
            e.downcast_ref::<freezer::Error>(),
            Some(freezer::Error::Refused {
                reason: Refusal::Root,
                ..
            })
        )
    });
    match resolved.target {
        Target::Pid(pid) if in_root => {
            let mount = resolved
                .cgroup()
                .hierarchy
                .mount_point
                .display()
                .to_string();
            err.context(format!(
                "process {pid} is in the root cgroup, which cannot be paused: put it in a cgroup \
                 of its own (mkdir {mount}/NAME && echo {pid} > {mount}/NAME/cgroup.procs) and \
                 pause that, or name one with --cgroup"
            ))
        }
        _ => err,
    }
}
