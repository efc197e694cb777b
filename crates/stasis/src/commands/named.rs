//! Acting on several containers or pods named on the command line, as
//! docker does: each name is printed when its action succeeds, every name is
//! tried, and the first error is the command's.

use std::io::Write;

use anyhow::Result;
use sandbox::Sandbox;

use crate::commands::{open, permission_hint, Global};
use crate::filter::matches;
use crate::target::NamedArgs;

/// Runs `action` on each name, printing the name on success and the first
/// error after trying them all (later errors go to stderr).
pub(crate) fn each(names: &[String], action: impl FnMut(&str) -> Result<()>) -> Result<()> {
    each_with(names, true, action)
}

/// [`each`], printing the names only when `print_names` (an action that
/// prints its own result, as JSON, does not want them).
pub(crate) fn each_with(
    names: &[String],
    print_names: bool,
    mut action: impl FnMut(&str) -> Result<()>,
) -> Result<()> {
    let mut first_err = None;
    for name in names {
        match action(name) {
            Ok(()) if print_names => {
                let _ = writeln!(std::io::stdout().lock(), "{name}");
            }
            Ok(()) => {}
            Err(e) if first_err.is_none() => first_err = Some(e),
            Err(e) => eprintln!("stasis: {e:#}"),
        }
    }
    first_err.map_or(Ok(()), Err)
}

/// A stasis container or pod named on the command line.
pub(crate) enum Named {
    Container(Box<sandbox::ContainerRecord>),
    Pod(Box<sandbox::PodRecord>),
}

/// The containers the filters select; a filter that selects nothing is an
/// error, so a typo does not pass for success.
pub(crate) fn filtered(
    sandbox: &Sandbox,
    filters: &[crate::filter::Filter],
) -> Result<Vec<sandbox::ContainerRecord>> {
    let pods = sandbox.pods()?;
    let selected: Vec<_> = sandbox
        .containers()?
        .into_iter()
        .filter(|c| matches(sandbox, c, pods.iter().find(|p| p.id == c.pod), filters))
        .collect();
    if selected.is_empty() {
        return Err(anyhow::Error::new(sandbox::Error::NoMatch {
            kind: sandbox::Kind::Container,
        }));
    }
    Ok(selected)
}

/// The container, else the pod, that a name or ID prefix names.
pub(crate) fn lookup(sandbox: &Sandbox, q: &str) -> Result<Named> {
    match sandbox.find_container(q) {
        Ok(c) => Ok(Named::Container(Box::new(c))),
        Err(e) if e.is_not_found() => match sandbox.find_pod(q) {
            Ok(p) => Ok(Named::Pod(Box::new(p))),
            Err(pe) if pe.is_not_found() => Err(anyhow::Error::new(sandbox::Error::NotFound {
                kind: sandbox::Kind::ContainerOrPod,
                name: q.to_owned(),
            })),
            Err(pe) => Err(pe.into()),
        },
        Err(e) => Err(e.into()),
    }
}

/// Runs `action` on every container or pod the names or filters select,
/// printing each name (as docker does) when `print_names`. The action gets
/// the name as the user gave it.
pub(crate) fn for_each_named(
    global: &Global,
    named: &NamedArgs,
    print_names: bool,
    action: impl Fn(&Sandbox, &str, Named) -> Result<()>,
) -> Result<()> {
    let sandbox = open(global)?;
    if !named.filters.filters.is_empty() {
        let selected: Vec<String> = filtered(&sandbox, &named.filters.filters)?
            .into_iter()
            .map(|c| c.name)
            .collect();
        return each_with(&selected, print_names, |name| {
            let c = sandbox.find_container(name)?;
            action(&sandbox, name, Named::Container(Box::new(c))).map_err(permission_hint)
        });
    }
    each_with(&named.names, print_names, |q| {
        let item = lookup(&sandbox, q)?;
        action(&sandbox, q, item).map_err(permission_hint)
    })
}

/// Where a stasis container's or pod's fences can be (its leaf or node in
/// every hierarchy, and its pod's pinned network namespace), for
/// [`crate::reset::lift`]. Work it out before a verb that removes records.
pub(crate) struct FenceSite {
    cgroups: Vec<freezer::Cgroup>,
    pinned: std::path::PathBuf,
}

impl FenceSite {
    pub(crate) fn of(sandbox: &Sandbox, item: &Named) -> Result<Self> {
        let (pod_id, leaf) = match item {
            Named::Container(c) => (&c.pod, Some(c.id.as_str())),
            Named::Pod(p) => (&p.id, None),
        };
        // The pod's directory by its ID alone: its record need not be read
        // (nor exist) to lift what a pause left. Fences and leases are
        // tagged by the cgroup's path, which is the same in both trees:
        // one look for each path.
        let mut cgroups = sandbox::PodCgroups::of(sandbox.hierarchies(), pod_id)?.cgroups(leaf);
        let mut seen = std::collections::HashSet::new();
        cgroups.retain(|cg| seen.insert(cg.path.clone()));
        Ok(FenceSite {
            cgroups,
            pinned: sandbox
                .store()
                .dir(sandbox::Kind::Pod, pod_id)
                .join("ns/net"),
        })
    }

    /// Lifts them, after the verb (whatever its result), and returns the
    /// verb's result first.
    /// Leases on them end as well: the target was thawed or is gone.
    pub(crate) fn lift_after<T>(&self, global: &Global, result: Result<T>) -> Result<T> {
        let result =
            crate::reset::after_unpause(&global.root, &self.cgroups, Some(&self.pinned), result);
        self.cgroups.iter().fold(result, |r, cg| {
            crate::lease::after_unpause(&global.root, cg, r)
        })
    }
}

/// The cgroup a stasis container or pod is frozen at (its leaf, or the
/// pod's node), in the hierarchy stasis freezes by default.
pub(crate) fn cgroup_of(sandbox: &Sandbox, item: &Named) -> Result<freezer::Cgroup> {
    Ok(match item {
        Named::Container(c) => sandbox::PodCgroups::of(sandbox.hierarchies(), &c.pod)?
            .freezer_cgroup(Some(c.id.as_str()))?,
        Named::Pod(p) => sandbox.pod_cgroups(p)?.freezer_cgroup(None)?,
    })
}
