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
pub(crate) fn each(names: &[String], mut action: impl FnMut(&str) -> Result<()>) -> Result<()> {
    let mut first_err = None;
    let mut out = std::io::stdout().lock();
    for name in names {
        match action(name) {
            Ok(()) => {
                let _ = writeln!(out, "{name}");
            }
            Err(e) if first_err.is_none() => first_err = Some(e),
            Err(e) => eprintln!("stasis: {e:#}"),
        }
    }
    first_err.map_or(Ok(()), Err)
}

/// A stasis container or pod named on the command line.
pub(crate) enum Named {
    Container(sandbox::ContainerRecord),
    Pod(sandbox::PodRecord),
}

/// Runs `action` on every container or pod the names or filters select,
/// printing each name (as docker does); a filter that selects nothing is an
/// error, so a typo does not pass for success.
pub(crate) fn for_each_named(
    global: &Global,
    named: &NamedArgs,
    action: impl Fn(&Sandbox, Named) -> sandbox::Result<()>,
) -> Result<()> {
    let sandbox = open(global)?;
    if !named.filters.is_empty() {
        let pods = sandbox.pods()?;
        let selected: Vec<String> = sandbox
            .containers()?
            .into_iter()
            .filter(|c| {
                matches(
                    &sandbox,
                    c,
                    pods.iter().find(|p| p.id == c.pod),
                    &named.filters,
                )
            })
            .map(|c| c.name)
            .collect();
        if selected.is_empty() {
            return Err(anyhow::Error::new(sandbox::Error::NoMatch {
                kind: sandbox::Kind::Container,
            }));
        }
        return each(&selected, |name| {
            let c = sandbox.find_container(name)?;
            action(&sandbox, Named::Container(c)).map_err(|e| permission_hint(e.into()))
        });
    }
    each(&named.names, |q| {
        let item = match sandbox.find_container(q) {
            Ok(c) => Named::Container(c),
            Err(e) if e.is_not_found() => match sandbox.find_pod(q) {
                Ok(p) => Named::Pod(p),
                Err(pe) if pe.is_not_found() => {
                    return Err(anyhow::Error::new(sandbox::Error::NotFound {
                        kind: sandbox::Kind::ContainerOrPod,
                        name: q.to_owned(),
                    }))
                }
                Err(pe) => return Err(pe.into()),
            },
            Err(e) => return Err(e.into()),
        };
        action(&sandbox, item).map_err(|e| permission_hint(e.into()))
    })
}
