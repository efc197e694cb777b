//! `stasis-agent`: pauses the pods of its node that ask for it by
//! annotation (see the `agent` crate's docs and docs/kubernetes.md).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result};
use clap::Parser;
use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::{watcher, Controller};
use kube::Api;

use agent::reconcile::{self, Context};

/// Pause the pods of this node that ask for it (stasis.dev/pause: "true"),
/// by the cgroup freezer, and answer in their annotations and Events.
///
/// Exit status: 0 after SIGTERM or SIGINT, 1 on an error (printed on stderr),
/// 2 on a usage error.
#[derive(Debug, Parser)]
#[command(name = "stasis-agent", version)]
struct Args {
    /// The node whose pods to watch (the DaemonSet sets it from spec.nodeName)
    #[arg(long, env = "NODE_NAME", value_name = "NAME")]
    node: String,

    /// How long a freeze or thaw may take; a freeze that times out is undone
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = parse_timeout)]
    timeout: Duration,

    /// How often a paused pod is checked again unasked (a thaw from outside)
    #[arg(long, value_name = "DURATION", default_value = "300s", value_parser = parse_resync)]
    resync: Duration,

    /// Where fence records of stasis.dev/reset-connections are kept (shared with stasis on the node)
    #[arg(long, value_name = "DIR", default_value = sandbox::DEFAULT_ROOT)]
    state_root: PathBuf,

    /// Whose cgroup namespace to work in: host (join PID 1's, as a DaemonSet pod must) or own (an agent run on the host itself)
    #[arg(long, value_enum, value_name = "WHOSE", default_value = "host")]
    cgroupns: CgroupNs,

    /// The /proc to read (the host's, with hostPID)
    #[arg(long, value_name = "DIR", default_value = "/proc")]
    proc: PathBuf,

    /// Log level: error, warn, info, debug or trace
    #[arg(long, env = "STASIS_LOG", value_name = "LEVEL", default_value = "info")]
    log_level: tracing_subscriber::filter::LevelFilter,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum CgroupNs {
    Host,
    Own,
}

fn parse_timeout(s: &str) -> Result<Duration, String> {
    sandbox::time::parse_duration_upto(s, Duration::from_secs(60))
}

fn parse_resync(s: &str) -> Result<Duration, String> {
    let d = sandbox::time::parse_duration_upto(s, Duration::from_secs(86_400))?;
    if d < Duration::from_secs(1) {
        return Err(format!("{s:?}: at least 1s"));
    }
    Ok(d)
}

fn main() {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_max_level(args.log_level)
        .with_writer(std::io::stderr)
        .init();
    if let Err(e) = run(&args) {
        eprintln!("stasis-agent: {e:#}");
        std::process::exit(1);
    }
}

fn run(args: &Args) -> Result<()> {
    // Before any thread exists: setns and a private mount change only the
    // calling thread, and the runtime's threads inherit them.
    if args.cgroupns == CgroupNs::Host && agent::hostns::enter(&args.proc)? {
        tracing::info!("entered the host's cgroup namespace");
    }
    let (hierarchies, _mount) = freezer::open(&args.proc, freezer::Choice::Auto, Path::new("/tmp"))
        .context("finding the cgroup hierarchies")?;
    tracing::info!(layout = ?hierarchies.layout(), node = %args.node, "starting");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async {
        let client = kube::Client::try_default()
            .await
            .context("connecting to the API server")?;
        let reporter = Reporter {
            controller: "stasis-agent".into(),
            instance: Some(args.node.clone()),
        };
        let ctx = Arc::new(Context {
            recorder: Recorder::new(client.clone(), reporter),
            client: client.clone(),
            hierarchies,
            freezer: freezer::Freezer::new().timeout(args.timeout),
            resync: args.resync,
            state_root: args.state_root.clone(),
        });
        let pods: Api<Pod> = Api::all(client);
        let config = watcher::Config::default().fields(&format!("spec.nodeName={}", args.node));
        Controller::new(pods, config)
            .shutdown_on_signal()
            .run(reconcile::reconcile, reconcile::error_policy, ctx)
            .for_each(|result| async move {
                match result {
                    Ok((pod, _)) => tracing::debug!(pod = %pod.name, "reconciled"),
                    Err(e) => tracing::warn!(error = %format!("{e:#}"), "controller"),
                }
            })
            .await;
        Ok(())
    })
}
