//! One module per verb, and what several verbs share: the sandbox handle,
//! name lookups, labels, filters and tables.

pub mod exec;
pub mod inspect;
pub mod internal;
pub mod kill;
pub mod logs;
pub mod pause;
pub mod pod;
pub mod ps;
pub mod rm;
pub mod run;
pub mod state;
pub mod stop;
pub mod unpause;
pub mod wait;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use sandbox::Sandbox;

use crate::cli::{Cli, Command};

/// Options every verb that touches pods and containers shares.
#[derive(Debug, Clone)]
pub struct Global {
    pub root: PathBuf,
}

pub fn run(cli: Cli) -> Result<std::process::ExitCode> {
    let global = Global { root: cli.root };
    let ok = std::process::ExitCode::SUCCESS;
    match cli.command {
        Command::Pause(args) => pause::run(&global, &args).map(|()| ok),
        Command::Unpause(args) => unpause::run(&global, &args).map(|()| ok),
        Command::State(args) => state::run(&global, &args).map(|()| ok),
        Command::Pod(args) => pod::run(&global, args).map(|()| ok),
        Command::Run(args) => run::run(&global, args),
        Command::Ps(args) => ps::run(&global, &args).map(|()| ok),
        Command::Inspect(args) => inspect::run(&global, &args).map(|()| ok),
        Command::Logs(args) => logs::run(&global, &args).map(|()| ok),
        Command::Exec(args) => exec::run(&global, args),
        Command::Stop(args) => stop::run(&global, &args).map(|()| ok),
        Command::Kill(args) => kill::run(&global, &args).map(|()| ok),
        Command::Wait(args) => wait::run(&global, &args).map(|()| ok),
        Command::Rm(args) => rm::run(&global, &args).map(|()| ok),
        Command::InternalMonitor(args) => internal::run(&global, &args).map(|()| ok),
    }
}

/// Opens the pods and containers under the state root.
pub(crate) fn open(global: &Global) -> Result<Sandbox> {
    let mut sandbox = Sandbox::open(&global.root)
        .with_context(|| format!("opening the state root {}", global.root.display()))?;
    if let Some(p) = std::env::var_os("STASIS_PAUSE") {
        sandbox = sandbox.with_pause_binary(p.into());
    }
    Ok(sandbox)
}

/// A hint for the most common cause of EPERM/EACCES.
pub(crate) fn permission_hint(err: anyhow::Error) -> anyhow::Error {
    let denied = err.chain().any(|e| {
        e.downcast_ref::<freezer::Error>()
            .is_some_and(freezer::Error::is_permission_denied)
            || e.downcast_ref::<sandbox::Error>()
                .is_some_and(sandbox::Error::is_permission_denied)
    });
    if denied && !rustix::process::geteuid().is_root() {
        err.context("permission denied: run stasis as root (or with write access to the cgroup)")
    } else {
        err
    }
}

/// Parses `KEY=VALUE` labels.
pub(crate) fn parse_labels(labels: &[String]) -> Result<BTreeMap<String, String>> {
    labels
        .iter()
        .map(|l| match l.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
            _ => bail!("invalid label {l:?}: use KEY=VALUE"),
        })
        .collect()
}

/// A `--filter` of `ps` and `pause`: `label=K[=V]`, `status=S`, `pod=P`,
/// `name=N`, `id=PREFIX`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Filter {
    Label(String, Option<String>),
    Status(String),
    Pod(String),
    Name(String),
    Id(String),
}

impl std::str::FromStr for Filter {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (key, value) = s
            .split_once('=')
            .ok_or_else(|| format!("{s:?} is not KEY=VALUE"))?;
        match key {
            "label" => Ok(match value.split_once('=') {
                Some((k, v)) => Filter::Label(k.to_owned(), Some(v.to_owned())),
                None => Filter::Label(value.to_owned(), None),
            }),
            "status" if matches!(value, "created" | "running" | "paused" | "exited") => {
                Ok(Filter::Status(value.to_owned()))
            }
            "status" => Err(format!(
                "status {value:?}: use created, running, paused or exited"
            )),
            "pod" => Ok(Filter::Pod(value.to_owned())),
            "name" => Ok(Filter::Name(value.to_owned())),
            "id" => Ok(Filter::Id(value.to_owned())),
            _ => Err(format!(
                "unknown filter {key:?}: use label, status, pod, name or id"
            )),
        }
    }
}

/// Whether a container passes every filter.
pub(crate) fn matches(
    sandbox: &Sandbox,
    c: &sandbox::ContainerRecord,
    pod: Option<&sandbox::PodRecord>,
    filters: &[Filter],
) -> bool {
    filters.iter().all(|f| match f {
        Filter::Label(k, v) => c
            .labels
            .get(k)
            .is_some_and(|have| v.as_ref().is_none_or(|v| v == have)),
        Filter::Status(s) => sandbox.container_status(c).word() == s,
        Filter::Pod(p) => {
            pod.is_some_and(|pod| pod.name == *p || pod.id.as_str().starts_with(p.as_str()))
        }
        Filter::Name(n) => c.name == *n,
        Filter::Id(i) => c.id.as_str().starts_with(i.as_str()),
    })
}

/// How long ago, as `ps` says it.
pub(crate) fn ago(then: u64) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let s = now.saturating_sub(then);
    match s {
        0..=59 => format!("{s} seconds ago"),
        60..=3599 => format!("{} minutes ago", s / 60),
        3600..=86399 => format!("{} hours ago", s / 3600),
        _ => format!("{} days ago", s / 86400),
    }
}

/// Prints rows as left-aligned columns.
pub(crate) fn table(out: &mut impl Write, rows: &[Vec<String>]) -> std::io::Result<()> {
    let cols = rows.first().map_or(0, Vec::len);
    let widths: Vec<usize> = (0..cols)
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    for row in rows {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i + 1 == cols {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<w$}   ", w = widths[i]));
            }
        }
        writeln!(out, "{}", line.trim_end())?;
    }
    Ok(())
}

/// Runs `action` on each named item, printing the name on success (as
/// docker does) and the first error after trying them all.
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
    named: &crate::target::NamedArgs,
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

/// Parses a signal name (`TERM`, `SIGTERM`) or number.
pub(crate) fn parse_signal(s: &str) -> Result<rustix::process::Signal, String> {
    let name = s.strip_prefix("SIG").unwrap_or(s).to_ascii_uppercase();
    let raw = match name.as_str() {
        "HUP" => libc::SIGHUP,
        "INT" => libc::SIGINT,
        "QUIT" => libc::SIGQUIT,
        "KILL" => libc::SIGKILL,
        "USR1" => libc::SIGUSR1,
        "USR2" => libc::SIGUSR2,
        "TERM" => libc::SIGTERM,
        "CONT" => libc::SIGCONT,
        "STOP" => libc::SIGSTOP,
        "ALRM" => libc::SIGALRM,
        "PIPE" => libc::SIGPIPE,
        "WINCH" => libc::SIGWINCH,
        n => n.parse().map_err(|_| format!("unknown signal {s:?}"))?,
    };
    rustix::process::Signal::from_named_raw(raw).ok_or_else(|| format!("unknown signal {s:?}"))
}
