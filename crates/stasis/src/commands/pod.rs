//! `stasis pod create|ls|inspect|pause|unpause|stop|rm`.

use std::io::Write;

use std::time::Duration;

use anyhow::{Context, Result};
use sandbox::{PodOptions, PodRecord};
use serde::Serialize;

use crate::commands::{ago, each, open, parse_labels, permission_hint, table, Global};
use crate::target::TimeoutArgs;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub command: PodCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum PodCommand {
    /// Create a pod and start its pause process; prints its ID
    Create(CreateArgs),
    /// List pods
    #[command(alias = "ps", alias = "list")]
    Ls(LsArgs),
    /// Show pods as JSON
    Inspect(NamesArgs),
    /// Freeze every process of pods, with one write at each pod's cgroup
    Pause(PauseArgs),
    /// Thaw paused pods
    Unpause(PauseArgs),
    /// Stop pods: their containers (SIGTERM, then SIGKILL), then the pause process
    Stop(StopArgs),
    /// Remove pods with their containers, namespaces, cgroups and state
    Rm(RmArgs),
}

#[derive(Debug, clap::Args)]
pub struct CreateArgs {
    /// A name for the pod ([a-zA-Z0-9][a-zA-Z0-9_.-]*)
    #[arg(long)]
    pub name: Option<String>,
    /// Namespaces the members share: net, ipc, uts, pid, cgroup
    #[arg(long, value_name = "LIST", default_value = "net,ipc,uts")]
    pub share: String,
    /// The pod's hostname (default: its name)
    #[arg(long)]
    pub hostname: Option<String>,
    /// A label, KEY=VALUE (repeatable)
    #[arg(long = "label", value_name = "KEY=VALUE")]
    pub labels: Vec<String>,
}

#[derive(Debug, clap::Args)]
pub struct LsArgs {
    /// Only IDs
    #[arg(short, long)]
    pub quiet: bool,
    /// Output format
    #[arg(long, value_enum, default_value_t = crate::commands::ps::Format::Table)]
    pub format: crate::commands::ps::Format,
}

#[derive(Debug, clap::Args)]
pub struct NamesArgs {
    /// Pod names or IDs (any unique prefix)
    #[arg(required = true, value_name = "POD")]
    pub pods: Vec<String>,
}

#[derive(Debug, clap::Args)]
pub struct PauseArgs {
    #[command(flatten)]
    pub names: NamesArgs,
    #[command(flatten)]
    pub timeout: TimeoutArgs,
}

#[derive(Debug, clap::Args)]
pub struct StopArgs {
    #[command(flatten)]
    pub names: NamesArgs,
    /// Seconds to wait after SIGTERM before SIGKILL
    #[arg(short = 't', long = "time", default_value_t = 10)]
    pub time: u64,
}

#[derive(Debug, clap::Args)]
pub struct RmArgs {
    #[command(flatten)]
    pub names: NamesArgs,
    /// Stop running pods first (SIGKILL)
    #[arg(short, long)]
    pub force: bool,
}

#[derive(Serialize)]
struct PodView<'a> {
    #[serde(flatten)]
    record: &'a PodRecord,
    status: sandbox::PodStatus,
    containers: Vec<String>,
}

impl<'a> PodView<'a> {
    fn new(
        sandbox: &sandbox::Sandbox,
        record: &'a PodRecord,
        containers: &[sandbox::ContainerRecord],
    ) -> Self {
        PodView {
            record,
            status: sandbox.pod_status(record),
            containers: containers
                .iter()
                .filter(|c| c.pod == record.id)
                .map(|c| c.name.clone())
                .collect(),
        }
    }
}

pub fn run(global: &Global, args: Args) -> Result<()> {
    let sandbox = open(global)?;
    match args.command {
        PodCommand::Create(a) => {
            let share = sandbox::ns::parse_share(&a.share)?;
            let pod = sandbox
                .create_pod(PodOptions {
                    name: a.name,
                    share,
                    hostname: a.hostname,
                    labels: parse_labels(&a.labels)?,
                    implicit: false,
                })
                .context("creating the pod")
                .map_err(permission_hint)?;
            println!("{}", pod.id);
            Ok(())
        }
        PodCommand::Ls(a) => {
            let pods = sandbox.pods()?;
            let containers = sandbox.containers()?;
            let mut out = std::io::stdout().lock();
            if a.quiet {
                for p in &pods {
                    writeln!(out, "{}", p.id.short())?;
                }
                return Ok(());
            }
            let views: Vec<PodView<'_>> = pods
                .iter()
                .map(|p| PodView::new(&sandbox, p, &containers))
                .collect();
            match a.format {
                crate::commands::ps::Format::Json => {
                    serde_json::to_writer_pretty(&mut out, &views)?;
                    writeln!(out)?;
                }
                crate::commands::ps::Format::Table => {
                    let mut rows = vec![["POD ID", "NAME", "STATUS", "CONTAINERS", "CREATED"]
                        .map(String::from)
                        .to_vec()];
                    for v in &views {
                        rows.push(vec![
                            v.record.id.short().to_owned(),
                            v.record.name.clone(),
                            v.status.to_string(),
                            v.containers.len().to_string(),
                            ago(v.record.created),
                        ]);
                    }
                    table(&mut out, &rows)?;
                }
            }
            Ok(())
        }
        PodCommand::Inspect(a) => {
            let containers = sandbox.containers()?;
            let pods: Vec<PodRecord> = a
                .pods
                .iter()
                .map(|q| sandbox.find_pod(q))
                .collect::<Result<_, _>>()?;
            let views: Vec<PodView<'_>> = pods
                .iter()
                .map(|p| PodView::new(&sandbox, p, &containers))
                .collect();
            let mut out = std::io::stdout().lock();
            serde_json::to_writer_pretty(&mut out, &views)?;
            writeln!(out)?;
            Ok(())
        }
        PodCommand::Pause(a) => each(&a.names.pods, |q| {
            let pod = sandbox.find_pod(q)?;
            sandbox
                .pause_pod(&pod, a.timeout.timeout)
                .map_err(|e| permission_hint(e.into()))
        }),
        PodCommand::Unpause(a) => each(&a.names.pods, |q| {
            let pod = sandbox.find_pod(q)?;
            sandbox
                .unpause_pod(&pod, a.timeout.timeout)
                .map_err(|e| permission_hint(e.into()))
        }),
        PodCommand::Stop(a) => each(&a.names.pods, |q| {
            let pod = sandbox.find_pod(q)?;
            Ok(sandbox.stop_pod(&pod, Duration::from_secs(a.time))?)
        }),
        PodCommand::Rm(a) => each(&a.names.pods, |q| {
            let pod = sandbox.find_pod(q)?;
            Ok(sandbox.remove_pod(&pod, a.force)?)
        }),
    }
}
