//! `stasis state`: what the kernel says about a target's freeze, in every
//! hierarchy it belongs to.

use std::io::Write;

use anyhow::Result;
use freezer::{Cgroup, Freezer, FrozenBy, Phase, State, Version};
use serde::Serialize;

use crate::commands::named::{cgroup_of, filtered, lookup, Named};
use crate::commands::{open, Global};
use crate::flags::{self, Format};
use crate::target::{self, HierarchyArgs, NamedArgs, TargetArgs, TARGET_HELP};

#[derive(Debug, clap::Args)]
#[command(help_template = target::help_template(&[TARGET_HELP, crate::exit::HELP]))]
pub struct Args {
    #[command(flatten)]
    pub named: NamedArgs,
    #[command(flatten)]
    pub target: TargetArgs,
    #[command(flatten)]
    pub hierarchy: HierarchyArgs,
    #[command(flatten)]
    pub output: flags::Output,
}

/// One hierarchy's view of the target.
#[derive(Serialize)]
struct InHierarchy<'a> {
    cgroup: &'a str,
    path: &'a std::path::Path,
    hierarchy: Version,
    #[serde(flatten)]
    state: &'a State,
}

/// The report: the hierarchy that decides (the chosen one, or the one where
/// the target is frozen when the chosen one is not), flattened, for
/// scripts that read one state; then every hierarchy it is in.
#[derive(Serialize)]
struct Report<'a> {
    /// The stasis container or pod, when one was named.
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    #[serde(flatten)]
    primary: &'a InHierarchy<'a>,
    /// Frozen in any hierarchy: what pause and unpause go by.
    paused: bool,
    hierarchies: &'a [InHierarchy<'a>],
    /// The lease that ends the pause, if one does.
    lease: Option<crate::lease::View>,
}

pub fn run(global: &Global, args: &Args) -> Result<()> {
    let leases = crate::lease::Leases::new(&global.root);
    if args.named.is_given() {
        let sandbox = open(global)?;
        let hierarchies = sandbox.hierarchies().clone();
        for (name, cgroup) in named_cgroups(&sandbox, &args.named)? {
            let placement = hierarchies.place_cgroup(cgroup.clone())?;
            let states = Freezer::new().states(&placement).map_err(|e| {
                anyhow::Error::new(e).context(format!("reading the state of {name}"))
            })?;
            let lease = leases.shown(&cgroup);
            report(Some(&name), &states, lease.as_ref(), args.output.format)?;
        }
        return Ok(());
    }
    let resolved = target::resolve(&args.target, &args.hierarchy)?;
    let states = resolved.context(
        "reading the state of",
        Freezer::new().states(&resolved.placement),
    )?;
    let lease = leases.shown(&resolved.placement.chosen);
    report(None, &states, lease.as_ref(), args.output.format)
}

/// The cgroup of each stasis container or pod the names or filters select,
/// in the hierarchy stasis pauses it in, looked up as `pause` does.
fn named_cgroups(sandbox: &sandbox::Sandbox, named: &NamedArgs) -> Result<Vec<(String, Cgroup)>> {
    if !named.filters.filters.is_empty() {
        return filtered(sandbox, &named.filters.filters)?
            .into_iter()
            .map(|c| {
                let name = c.name.clone();
                Ok((name, cgroup_of(sandbox, &Named::Container(Box::new(c)))?))
            })
            .collect();
    }
    named
        .names
        .iter()
        .map(|q| Ok((q.clone(), cgroup_of(sandbox, &lookup(sandbox, q)?)?)))
        .collect()
}

fn report(
    name: Option<&str>,
    states: &[(&Cgroup, State)],
    lease: Option<&crate::lease::Record>,
    format: Format,
) -> Result<()> {
    let each: Vec<InHierarchy<'_>> = states
        .iter()
        .map(|(cg, state)| InHierarchy {
            cgroup: &cg.path,
            path: &cg.dir,
            hierarchy: cg.version(),
            state,
        })
        .collect();
    let paused = each.iter().any(|h| h.state.is_frozen());
    // The chosen hierarchy, unless it is thawed and another is not.
    let primary = each
        .iter()
        .find(|h| h.state.phase != Phase::Thawed)
        .filter(|_| each[0].state.phase == Phase::Thawed)
        .unwrap_or(&each[0]);
    let mut out = std::io::stdout().lock();
    match format {
        Format::Json => {
            let report = Report {
                name,
                primary,
                paused,
                hierarchies: &each,
                lease: lease.map(crate::lease::Record::view),
            };
            serde_json::to_writer(&mut out, &report)?;
            writeln!(out)?;
        }
        Format::Table => {
            if let Some(name) = name {
                writeln!(out, "name:      {name}")?;
            }
            writeln!(out, "cgroup:    {}", primary.cgroup)?;
            writeln!(out, "path:      {}", primary.path.display())?;
            writeln!(out, "hierarchy: {}", primary.hierarchy)?;
            writeln!(out, "state:     {}", primary.state.phase)?;
            if let Some(by) = frozen_by(primary.state) {
                writeln!(out, "frozen by: {by}")?;
            }
            if let Some(sub) = &primary.state.subgroup {
                writeln!(out, "subgroup:  {sub}")?;
            }
            if let Some(lease) = lease {
                writeln!(out, "lease:     {}", lease.describe())?;
            }
            if each.len() > 1 {
                writeln!(out, "hierarchies:")?;
                for h in &each {
                    let by = frozen_by(h.state).map_or_else(String::new, |b| format!(" by {b}"));
                    writeln!(
                        out,
                        "  {}  {}  {}{by}",
                        h.hierarchy,
                        h.path.display(),
                        h.state.phase
                    )?;
                }
            }
        }
    }
    Ok(())
}

fn frozen_by(state: &State) -> Option<String> {
    Some(match state.frozen_by? {
        FrozenBy::Itself => "self".to_owned(),
        FrozenBy::Subgroup => "subgroup".to_owned(),
        FrozenBy::Ancestor => format!(
            "ancestor {}",
            state
                .ancestor
                .as_deref()
                .unwrap_or("(outside the visible hierarchy)")
        ),
    })
}
