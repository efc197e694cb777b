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

/// What a pause asks for beyond its target: the CLI's flags, or the API's
/// query parameters.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Options {
    pub timeout: std::time::Duration,
    pub reset: bool,
    pub terms: lease::Terms,
    /// `--renew --lease D`: extend the lease instead of pausing.
    pub renew: Option<std::time::Duration>,
    pub format: Format,
}

impl Options {
    fn of(args: &Args) -> Self {
        Options {
            timeout: args.pause.timeout.timeout,
            reset: args.pause.reset.reset_connections,
            terms: args.pause.lease.terms(),
            renew: args
                .pause
                .lease
                .renew
                .then_some(args.pause.lease.lease)
                .flatten(),
            format: args.pause.output.format,
        }
    }
}

pub fn run(global: &Global, args: &Args) -> Result<()> {
    let options = Options::of(args);
    if args.named.is_given() {
        // clap refuses --hierarchy, --strategy and --runtime-root here: the
        // sandbox freezes its pods and containers at their own node.
        let print_names = options.format == Format::Table;
        return for_each_named(global, &args.named, print_names, |sandbox, name, item| {
            pause_named(global, sandbox, name, &item, &options)
        });
    }
    pause_target(
        global,
        &args.target,
        &args.hierarchy,
        &args.strategy,
        &options,
    )
}

/// Pauses one stasis container or pod (`name` as the caller gave it).
pub(crate) fn pause_named(
    global: &Global,
    sandbox: &sandbox::Sandbox,
    name: &str,
    item: &Named,
    options: &Options,
) -> Result<()> {
    let timeout = options.timeout;
    let cgroup = cgroup_of(sandbox, item)?;
    let hierarchies = sandbox.hierarchies();
    if let Some(d) = options.renew {
        return lease::renew(&global.root, hierarchies, &cgroup, name, d);
    }
    let freeze = || {
        match item {
            Named::Container(c) => sandbox.pause_container(c, timeout)?,
            Named::Pod(p) => sandbox.pause_pod(p, timeout)?,
        }
        Ok(())
    };
    let after = || {
        reset::after_pause(
            &global.root,
            &cgroup,
            name,
            options.reset,
            options.format,
            || {
                match item {
                    Named::Container(c) => sandbox.unpause_container(c, timeout)?,
                    Named::Pod(p) => sandbox.unpause_pod(p, timeout)?,
                }
                Ok(())
            },
        )
    };
    lease::around_pause(
        &global.root,
        hierarchies,
        &cgroup,
        name,
        options.terms,
        freeze,
        after,
    )
}

/// Pauses a `--pid`, `--cgroup`, `--container-id` or `--k8s-pod` target.
pub(crate) fn pause_target(
    global: &Global,
    target: &TargetArgs,
    hierarchy: &HierarchyArgs,
    strategy: &StrategyArgs,
    options: &Options,
) -> Result<()> {
    let resolved = target::resolve(target, hierarchy).map_err(permission_hint)?;
    // The freezer freezes the chosen cgroup.
    let frozen = &resolved.placement.chosen;
    let what = resolved.target.to_string();
    if let Some(d) = options.renew {
        return lease::renew(&global.root, &resolved.hierarchies, frozen, &what, d);
    }
    let freezer = Freezer::new()
        .timeout(options.timeout)
        .strategy(strategy.strategy());
    let freeze = || {
        let result = freezer.pause(&resolved.hierarchies, &resolved.placement);
        let result = resolved
            .context("pausing", result)
            .map_err(|e| root_cgroup_hint(&resolved, e));
        result.map(drop).map_err(permission_hint)
    };
    let after = || {
        reset::after_pause(
            &global.root,
            frozen,
            &what,
            options.reset,
            options.format,
            || {
                freezer
                    .unpause(&Placement::single(frozen.clone()))
                    .map(drop)
                    .map_err(Into::into)
            },
        )
    };
    lease::around_pause(
        &global.root,
        &resolved.hierarchies,
        frozen,
        &what,
        options.terms,
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
