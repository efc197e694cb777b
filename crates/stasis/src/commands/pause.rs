//! `stasis pause`: freeze every process of a cgroup.

use anyhow::Result;
use clap::ValueEnum;
use freezer::{Freezer, Strategy};

use crate::commands::{for_each_named, permission_hint, Global, Named};
use crate::target::{self, HierarchyArgs, NamedArgs, TargetArgs, TimeoutArgs};

const STRATEGY_HELP: &str = "\
Strategies:
  auto      write the cgroup's own freeze file; if the kernel refuses it
            (EPERM, as for a cgroup namespace's root under nsdelegate), or a
            stasis subgroup is already there, use the subgroup strategy
  direct    write the cgroup's own freeze file only
  subgroup  create the child cgroup stasis-frozen, freeze it while empty, and
            move every process into it until none is left (a process frozen
            on arrival cannot fork behind the move); unpause moves them back
            and removes the child. A call finishes what a crashed one started.";

#[derive(Debug, clap::Args)]
#[command(after_long_help = STRATEGY_HELP)]
pub struct Args {
    #[command(flatten)]
    pub named: NamedArgs,
    #[command(flatten)]
    pub target: TargetArgs,
    #[command(flatten)]
    pub hierarchy: HierarchyArgs,
    /// How to freeze the cgroup
    #[arg(long, value_enum, default_value_t = StrategyArg::Auto)]
    pub strategy: StrategyArg,
    #[command(flatten)]
    pub timeout: TimeoutArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StrategyArg {
    Auto,
    Direct,
    Subgroup,
}

pub fn run(global: &Global, args: &Args) -> Result<()> {
    if args.named.is_given() {
        let timeout = args.timeout.timeout;
        return for_each_named(global, &args.named, |sandbox, item| match item {
            Named::Container(c) => sandbox.pause_container(&c, timeout),
            Named::Pod(p) => sandbox.pause_pod(&p, timeout),
        });
    }
    let resolved = target::resolve(&args.target, &args.hierarchy).map_err(permission_hint)?;
    let strategy = match args.strategy {
        StrategyArg::Auto => Strategy::Auto,
        StrategyArg::Direct => Strategy::Direct,
        StrategyArg::Subgroup => Strategy::Subgroup,
    };
    let result = Freezer::new()
        .timeout(args.timeout.timeout)
        .strategy(strategy)
        .freeze(&resolved.hierarchies, &resolved.cgroup);
    resolved
        .context("pausing", result)
        .map_err(permission_hint)?;
    Ok(())
}
