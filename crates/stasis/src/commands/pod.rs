//! `stasis pod create|ls|inspect|pause|unpause|stop|rm`.

use std::io::Write;

use anyhow::{Context, Result};
use sandbox::{PodOptions, PodRecord};
use serde::Serialize;

use crate::commands::named::{each_with, FenceSite, Named};
use crate::commands::{each, open, permission_hint, Global};
use crate::flags::{self, Format};
use crate::target::TimeoutArgs;
use crate::{human, table};
use crate::{lease, reset};

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
    Inspect(flags::Pods),
    /// Freeze every process of pods, with one write at each pod's cgroup
    Pause(PauseArgs),
    /// Thaw paused pods
    Unpause(UnpauseArgs),
    /// Stop pods: their containers (SIGTERM, then SIGKILL), then the pause process
    Stop(StopArgs),
    /// Remove pods with their containers, namespaces, cgroups and state
    Rm(RmArgs),
}

#[derive(Debug, clap::Args)]
pub struct CreateArgs {
    /// A name for the pod: letters, digits, _ . -, starting with a letter or digit
    #[arg(long)]
    pub name: Option<String>,
    /// Namespaces the members share: net, ipc, uts, pid, cgroup
    #[arg(long, value_name = "LIST", default_value = "net,ipc,uts", value_parser = parse_share)]
    pub share: Share,
    /// The pod's hostname (default: its name)
    #[arg(long)]
    pub hostname: Option<String>,
    #[command(flatten)]
    pub labels: flags::Labels,
    #[command(flatten)]
    pub limits: flags::Limits,
}

#[derive(Debug, clap::Args)]
pub struct LsArgs {
    #[command(flatten)]
    pub quiet: flags::Quiet,
    #[command(flatten)]
    pub output: flags::Output,
}

#[derive(Debug, clap::Args)]
pub struct PauseArgs {
    #[command(flatten)]
    pub names: flags::Pods,
    #[command(flatten)]
    pub pause: flags::PauseOptions,
}

#[derive(Debug, clap::Args)]
#[command(mut_arg("timeout", |a| a.help(crate::target::UNPAUSE_TIMEOUT_HELP)))]
pub struct UnpauseArgs {
    #[command(flatten)]
    pub names: flags::Pods,
    #[command(flatten)]
    pub timeout: TimeoutArgs,
    #[command(flatten)]
    pub wait: flags::WaitHealthy,
}

#[derive(Debug, clap::Args)]
pub struct StopArgs {
    #[command(flatten)]
    pub names: flags::Pods,
    #[command(flatten)]
    pub grace: flags::Grace,
}

#[derive(Debug, clap::Args)]
pub struct RmArgs {
    #[command(flatten)]
    pub names: flags::Pods,
    /// Stop running pods first (SIGKILL)
    #[arg(short, long)]
    pub force: bool,
}

/// The namespaces `--share` names, parsed once by clap.
#[derive(Debug, Clone)]
pub struct Share(pub Vec<sandbox::ns::Namespace>);

fn parse_share(s: &str) -> Result<Share, String> {
    sandbox::ns::parse_share(s)
        .map(Share)
        .map_err(|e| e.to_string())
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
            let pod = sandbox
                .create_pod(PodOptions {
                    name: a.name,
                    share: a.share.0,
                    hostname: a.hostname,
                    labels: a.labels.to_map(),
                    implicit: false,
                    limits: a.limits.to_limits(),
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
            if a.quiet.quiet {
                for p in &pods {
                    writeln!(out, "{}", p.id.short())?;
                }
                return Ok(());
            }
            let views: Vec<PodView<'_>> = pods
                .iter()
                .map(|p| PodView::new(&sandbox, p, &containers))
                .collect();
            match a.output.format {
                Format::Json => {
                    serde_json::to_writer_pretty(&mut out, &views)?;
                    writeln!(out)?;
                }
                Format::Table => {
                    let mut rows = vec![["POD ID", "NAME", "STATUS", "CONTAINERS", "CREATED"]
                        .map(String::from)
                        .to_vec()];
                    for v in &views {
                        rows.push(vec![
                            v.record.id.short().to_owned(),
                            v.record.name.clone(),
                            v.status.to_string(),
                            v.containers.len().to_string(),
                            human::ago(v.record.created),
                        ]);
                    }
                    table::print(&mut out, &rows)?;
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
        PodCommand::Pause(a) => {
            let format = a.pause.output.format;
            each_with(&a.names.pods, format == Format::Table, |q| {
                let pod = sandbox.find_pod(q)?;
                let timeout = a.pause.timeout.timeout;
                let cgroup = sandbox.pod_cgroups(&pod)?.freezer_cgroup(None)?;
                let hierarchies = sandbox.hierarchies();
                if a.pause.lease.renew {
                    let d = a
                        .pause
                        .lease
                        .lease
                        .expect("clap requires --lease with --renew");
                    return lease::renew(&global.root, hierarchies, &cgroup, q, d);
                }
                let freeze = || {
                    sandbox
                        .pause_pod(&pod, timeout)
                        .map_err(|e| permission_hint(e.into()))
                };
                let after = || {
                    let reset = a.pause.reset.reset_connections;
                    reset::after_pause(&global.root, &cgroup, q, reset, format, || {
                        Ok(sandbox.unpause_pod(&pod, timeout)?)
                    })
                };
                let terms = a.pause.lease.terms();
                lease::around_pause(&global.root, hierarchies, &cgroup, q, terms, freeze, after)
            })
        }
        // Every verb that thaws or ends a pod lifts its fences too.
        PodCommand::Unpause(a) => each(&a.names.pods, |q| {
            let pod = sandbox.find_pod(q)?;
            let item = Named::Pod(Box::new(pod.clone()));
            crate::health::gated(&sandbox, &item, a.wait.request().as_ref(), q, || {
                let site = FenceSite::of(&sandbox, &item)?;
                let unpaused = sandbox
                    .unpause_pod(&pod, a.timeout.timeout)
                    .map_err(|e| permission_hint(e.into()));
                site.lift_after(global, unpaused)
            })
        }),
        PodCommand::Stop(a) => each(&a.names.pods, |q| {
            let pod = sandbox.find_pod(q)?;
            let site = FenceSite::of(&sandbox, &Named::Pod(Box::new(pod.clone())))?;
            site.lift_after(global, Ok(sandbox.stop_pod(&pod, a.grace.duration())?))
        }),
        PodCommand::Rm(a) => each(&a.names.pods, |q| {
            let pod = sandbox.find_pod(q)?;
            let site = FenceSite::of(&sandbox, &Named::Pod(Box::new(pod.clone())))?;
            site.lift_after(global, Ok(sandbox.remove_pod(&pod, a.force)?))
        }),
    }
}
