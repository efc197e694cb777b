//! `stasis pause`: freeze every process of a cgroup.

use anyhow::Result;
use freezer::{Freezer, Placement, Refusal, Target};

use crate::commands::named::cgroup_of;
use crate::commands::{for_each_named, permission_hint, Global, Named};
use crate::flags::{self, Format};
use crate::reset;
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
    #[command(flatten)]
    pub reset: flags::ResetConnections,
    /// table: the names paused, and what a reset did on stderr; json: one
    /// object per target on stdout
    #[command(flatten)]
    pub output: flags::Output,
}

pub fn run(global: &Global, args: &Args) -> Result<()> {
    let format = args.output.format;
    let reset = args.reset.reset_connections;
    if args.named.is_given() {
        // clap refuses --hierarchy, --strategy and --runtime-root here: the
        // sandbox freezes its pods and containers at their own node.
        let timeout = args.timeout.timeout;
        let print_names = format == Format::Table;
        return for_each_named(global, &args.named, print_names, |sandbox, name, item| {
            match &item {
                Named::Container(c) => sandbox.pause_container(c, timeout)?,
                Named::Pod(p) => sandbox.pause_pod(p, timeout)?,
            }
            let cgroup = cgroup_of(sandbox, &item)?;
            reset::after_pause(&global.root, &cgroup, name, reset, format, || {
                match &item {
                    Named::Container(c) => sandbox.unpause_container(c, timeout)?,
                    Named::Pod(p) => sandbox.unpause_pod(p, timeout)?,
                }
                Ok(())
            })
        });
    }
    let resolved = target::resolve(&args.target, &args.hierarchy).map_err(permission_hint)?;
    let freezer = Freezer::new()
        .timeout(args.timeout.timeout)
        .strategy(args.strategy.strategy());
    let result = freezer.pause(&resolved.hierarchies, &resolved.placement);
    let result = resolved
        .context("pausing", result)
        .map_err(|e| root_cgroup_hint(&resolved, e));
    result.map_err(permission_hint)?;
    // The freezer froze the chosen cgroup.
    let frozen = &resolved.placement.chosen;
    let what = resolved.target.to_string();
    reset::after_pause(&global.root, frozen, &what, reset, format, || {
        freezer
            .unpause(&Placement::single(frozen.clone()))
            .map(drop)
            .map_err(Into::into)
    })
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
