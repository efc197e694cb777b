//! `kubectl stasis`: ask the stasis agents to pause or unpause pods, and
//! show what they answered (see docs/kubernetes.md).

use std::io::Write;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};
use clap::{Args as ClapArgs, Parser, Subcommand};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, PatchParams};
use kube::{Client, ResourceExt};

use agent::annotations::{self, View};
use agent::plugin::{self, Answer};
use agent::resolve::{self, Selection};

/// Pause and unpause Kubernetes pods with the stasis node agent.
///
/// Exit status: 0 when every pod answered as asked; 1 when a pod's agent
/// failed, did not answer in time, or the API server refused; 2 on a usage
/// error.
#[derive(Debug, Parser)]
#[command(name = "kubectl-stasis", bin_name = "kubectl stasis", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Freeze the pods of a workload (until unpause, or the lease's end)
    Pause(PauseArgs),
    /// Thaw them
    Unpause(WaitArgs),
    /// Show what the agents answered
    Status(Targets),
}

/// What to act on: KIND/NAME, or -l.
#[derive(Debug, ClapArgs)]
struct Targets {
    /// pod/NAME, deployment/NAME, statefulset/NAME, daemonset/NAME, replicaset/NAME or job/NAME
    #[arg(
        value_name = "KIND/NAME",
        required_unless_present = "selector",
        conflicts_with = "selector",
        value_parser = parse_target
    )]
    targets: Vec<Selection>,

    /// The pods whose labels match (e.g. app=web)
    #[arg(short = 'l', long, value_name = "SELECTOR")]
    selector: Option<String>,

    /// The namespace [default: the kubeconfig context's]
    #[arg(short, long, value_name = "NS")]
    namespace: Option<String>,
}

#[derive(Debug, ClapArgs)]
struct WaitArgs {
    #[command(flatten)]
    targets: Targets,

    /// How long to wait for the agents' answers
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_timeout)]
    timeout: Duration,

    /// Patch the request and return without waiting for the answers
    #[arg(long)]
    no_wait: bool,
}

#[derive(Debug, ClapArgs)]
struct PauseArgs {
    #[command(flatten)]
    wait: WaitArgs,

    /// End the pause this long after it began (e.g. 90s, 10m, 2h; at most 24h)
    #[arg(long, value_name = "DURATION", value_parser = sandbox::time::parse_lease)]
    lease: Option<Duration>,

    /// Reset the pods' TCP connections once frozen, and refuse new ones until thawed
    #[arg(long)]
    reset_connections: bool,
}

fn parse_target(s: &str) -> Result<Selection, String> {
    Selection::parse(s).map_err(|e| e.to_string())
}

fn parse_timeout(s: &str) -> Result<Duration, String> {
    sandbox::time::parse_duration_upto(s, Duration::from_secs(3600))
}

fn main() {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a current-thread runtime builds");
    if let Err(e) = runtime.block_on(run(cli)) {
        eprintln!("kubectl stasis: {e:#}");
        std::process::exit(1);
    }
}

async fn run(cli: Cli) -> Result<()> {
    let client = Client::try_default()
        .await
        .context("connecting to the API server (kubeconfig or in-cluster)")?;
    match cli.command {
        Command::Pause(args) => {
            let patch = plugin::pause_patch(args.lease, args.reset_connections);
            request(&client, &args.wait, &patch, true).await
        }
        Command::Unpause(args) => request(&client, &args, &plugin::unpause_patch(), false).await,
        Command::Status(targets) => status(&client, &targets).await,
    }
}

/// The pods the targets name, each once.
async fn pods_of(client: &Client, targets: &Targets) -> Result<(String, Vec<Pod>)> {
    let namespace = targets
        .namespace
        .clone()
        .unwrap_or_else(|| client.default_namespace().to_owned());
    let mut selections = Vec::new();
    if let Some(selector) = &targets.selector {
        selections.push(Selection::Labels(selector.clone()));
    }
    selections.extend(targets.targets.iter().cloned());
    let mut pods: Vec<Pod> = Vec::new();
    for selection in &selections {
        for pod in resolve::pods(client, &namespace, selection).await? {
            if !pods.iter().any(|p| p.uid() == pod.uid()) {
                pods.push(pod);
            }
        }
    }
    Ok((namespace, pods))
}

async fn request(
    client: &Client,
    args: &WaitArgs,
    patch: &annotations::Patch,
    pausing: bool,
) -> Result<()> {
    let (namespace, pods) = pods_of(client, &args.targets).await?;
    if pods.is_empty() {
        bail!("no pods match in namespace {namespace}");
    }
    let api: Api<Pod> = Api::namespaced(client.clone(), &namespace);
    for pod in &pods {
        if pausing {
            for warning in plugin::liveness_warnings(pod) {
                eprintln!("warning: {warning}");
            }
        }
        let name = pod.name_any();
        api.patch(
            &name,
            &PatchParams::default(),
            &kube::api::Patch::Merge(patch.to_json()),
        )
        .await
        .with_context(|| format!("patching pod {namespace}/{name}"))?;
    }
    let verb = if pausing { "pause" } else { "unpause" };
    if args.no_wait {
        eprintln!("asked for a {verb} of {} pod(s)", pods.len());
        return Ok(());
    }
    let names: Vec<String> = pods.iter().map(|p| p.name_any()).collect();
    let answers = wait(&api, &names, pausing, args.timeout).await?;
    let mut failed = 0;
    for (name, answer) in names.iter().zip(&answers) {
        match answer {
            Some(Answer::Done) => {
                println!("pod/{name} {}", if pausing { "paused" } else { "running" })
            }
            Some(Answer::Failed(why)) => {
                failed += 1;
                println!("pod/{name} failed: {why}");
            }
            None => {
                failed += 1;
                println!("pod/{name} no answer: is stasis-agent running on its node?");
            }
        }
    }
    if failed > 0 {
        bail!("{failed} of {} pod(s) did not {verb}", names.len());
    }
    Ok(())
}

/// Polls the pods until each has answered or `timeout` passed, with a
/// progress line on stderr.
async fn wait(
    api: &Api<Pod>,
    names: &[String],
    pausing: bool,
    timeout: Duration,
) -> Result<Vec<Option<Answer>>> {
    let start = Instant::now();
    let mut answers: Vec<Option<Answer>> = vec![None; names.len()];
    loop {
        for (name, slot) in names.iter().zip(answers.iter_mut()) {
            if slot.is_none() {
                match api.get(name).await {
                    Ok(pod) => *slot = plugin::answer(&pod, pausing),
                    // A pod deleted meanwhile needs no pause, nor an unpause.
                    Err(kube::Error::Api(e)) if e.code == 404 => {
                        *slot = Some(Answer::Failed("the pod is gone".into()));
                    }
                    Err(e) => return Err(e).with_context(|| format!("reading pod {name}")),
                }
            }
        }
        let done = answers.iter().filter(|a| a.is_some()).count();
        eprint!(
            "\r{done}/{} answered ({:.0}s)",
            names.len(),
            start.elapsed().as_secs_f64()
        );
        let _ = std::io::stderr().flush();
        if done == names.len() || start.elapsed() >= timeout {
            eprintln!();
            return Ok(answers);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

async fn status(client: &Client, targets: &Targets) -> Result<()> {
    let (_, pods) = pods_of(client, targets).await?;
    println!(
        "{:<40} {:<20} {:<8} {:<25} {:<8} MESSAGE",
        "POD", "NODE", "STATE", "PAUSED-AT", "LEASE"
    );
    for pod in &pods {
        let a = pod.annotations();
        let get = |k: &str| a.get(k).map(String::as_str).unwrap_or("-");
        let view = View::of(Some(a));
        let state = view.state.map_or("-", |s| s.as_str());
        let node = pod
            .spec
            .as_ref()
            .and_then(|s| s.node_name.as_deref())
            .unwrap_or("-");
        println!(
            "{:<40} {:<20} {:<8} {:<25} {:<8} {}",
            pod.name_any(),
            node,
            state,
            get(annotations::PAUSED_AT),
            get(annotations::LEASE),
            get(annotations::MESSAGE)
        );
    }
    Ok(())
}
