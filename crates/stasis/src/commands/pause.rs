//! `stasis pause`: freeze every process of a cgroup.

use anyhow::Result;
use freezer::{Freezer, Placement, Refusal, Target};

use crate::commands::named::cgroup_of;
use crate::commands::{for_each_named, permission_hint, Global, Named};
use crate::flags::{self, Format};
use crate::target::{
    self, HierarchyArgs, NamedArgs, StrategyArgs, TargetArgs, STRATEGY_HELP, TARGET_HELP,
};
use crate::{lease, reset};

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
    pub pause: flags::PauseOptions,
}

pub fn run(global: &Global, args: &Args) -> Result<()> {
    let format = args.pause.output.format;
    let reset = args.pause.reset.reset_connections;
    let terms = args.pause.lease.terms();
    if args.named.is_given() {
        // clap refuses --hierarchy, --strategy and --runtime-root here: the
        // sandbox freezes its pods and containers at their own node.
        let timeout = args.pause.timeout.timeout;
        let print_names = format == Format::Table;
        return for_each_named(global, &args.named, print_names, |sandbox, name, item| {
            let cgroup = cgroup_of(sandbox, &item)?;
            let hierarchies = sandbox.hierarchies();
            if args.pause.lease.renew {
                let d = args
                    .pause
                    .lease
                    .lease
                    .expect("clap requires --lease with --renew");
                return lease::renew(&global.root, hierarchies, &cgroup, name, d);
            }
            let freeze = || {
                match &item {
                    Named::Container(c) => sandbox.pause_container(c, timeout)?,
                    Named::Pod(p) => sandbox.pause_pod(p, timeout)?,
                }
                Ok(())
            };
            let after = || {
                reset::after_pause(&global.root, &cgroup, name, reset, format, || {
                    match &item {
                        Named::Container(c) => sandbox.unpause_container(c, timeout)?,
                        Named::Pod(p) => sandbox.unpause_pod(p, timeout)?,
                    }
                    Ok(())
                })
            };
            lease::around_pause(
                &global.root,
                hierarchies,
                &cgroup,
                name,
                terms,
                freeze,
                after,
            )
        });
    }
    let resolved = target::resolve(&args.target, &args.hierarchy).map_err(permission_hint)?;
    // The freezer freezes the chosen cgroup.
    let frozen = &resolved.placement.chosen;
    let what = resolved.target.to_string();
    if args.pause.lease.renew {
        let d = args
            .pause
            .lease
            .lease
            .expect("clap requires --lease with --renew");
        return lease::renew(&global.root, &resolved.hierarchies, frozen, &what, d);
    }
    let freezer = Freezer::new()
        .timeout(args.pause.timeout.timeout)
        .strategy(args.strategy.strategy());
    let freeze = || {
        let result = freezer.pause(&resolved.hierarchies, &resolved.placement);
        let result = resolved
            .context("pausing", result)
            .map_err(|e| root_cgroup_hint(&resolved, e));
        result.map(drop).map_err(permission_hint)
    };
    let after = || {
        reset::after_pause(&global.root, frozen, &what, reset, format, || {
            freezer
                .unpause(&Placement::single(frozen.clone()))
                .map(drop)
                .map_err(Into::into)
        })
    };
    lease::around_pause(
        &global.root,
        &resolved.hierarchies,
        frozen,
        &what,
        terms,
        freeze,
        after,
    )
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
