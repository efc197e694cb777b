//! `stasis ps`: list containers, with their status read from the kernel.

use std::io::Write;

use anyhow::Result;
use serde::Serialize;

use crate::commands::{open, Global};
use crate::filter::matches;
use crate::flags::{self, TemplateFormat};
use crate::{human, table};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Show every container (by default only running and paused ones)
    #[arg(short, long)]
    pub all: bool,
    #[command(flatten)]
    pub quiet: flags::Quiet,
    #[command(flatten)]
    pub filters: flags::Filters,
    /// Show the N most recently created containers (in every state)
    #[arg(short = 'n', long = "last", value_name = "N")]
    pub last: Option<usize>,
    /// Show the most recently created container (in any state)
    #[arg(short = 'l', long)]
    pub latest: bool,
    /// Do not truncate IDs and commands
    #[arg(long)]
    pub no_trunc: bool,
    #[command(flatten)]
    pub output: flags::TemplateOutput,
}

#[derive(Serialize)]
pub(crate) struct ContainerView<'a> {
    #[serde(flatten)]
    pub record: &'a sandbox::ContainerRecord,
    #[serde(flatten)]
    pub status: sandbox::ContainerStatus,
    pub pod_name: Option<String>,
    /// The lease that ends its pause, if one does.
    pub lease: Option<crate::lease::View>,
    /// Docker's `State`, for tools that read `docker inspect`.
    #[serde(rename = "State")]
    pub state: api::shape::State<'a>,
    /// docker's `HostConfig`: the limits and restart policy.
    #[serde(rename = "HostConfig")]
    pub host_config: HostConfig,
    #[serde(rename = "RestartCount")]
    pub restart_count: u32,
    /// docker's top-level fields, for `inspect -f` templates.
    #[serde(rename = "Id")]
    pub docker_id: &'a str,
    /// docker's name, with its leading slash.
    #[serde(rename = "Name")]
    pub docker_name: String,
    #[serde(rename = "Created")]
    pub docker_created: String,
    #[serde(rename = "Config")]
    pub config: Config<'a>,
    #[serde(skip)]
    pub lease_record: Option<crate::lease::Record>,
}

/// The leases under the state root by tag: empty (one readdir) when none.
pub(crate) struct LeaseIndex(std::collections::BTreeMap<connections::Tag, crate::lease::Record>);

impl LeaseIndex {
    pub fn load(global: &Global) -> Self {
        let all = crate::lease::Leases::new(&global.root).all_shown();
        LeaseIndex(all.into_iter().collect())
    }

    /// The lease of a container (its own leaf's).
    pub fn of(
        &self,
        sandbox: &sandbox::Sandbox,
        c: &sandbox::ContainerRecord,
    ) -> Option<crate::lease::Record> {
        if self.0.is_empty() {
            return None;
        }
        let item = crate::commands::Named::Container(Box::new(c.clone()));
        let cgroup = crate::commands::named::cgroup_of(sandbox, &item).ok()?;
        self.0.get(&crate::reset::Fences::tag(&cgroup)).cloned()
    }
}

impl<'a> ContainerView<'a> {
    pub fn new(
        sandbox: &sandbox::Sandbox,
        leases: &LeaseIndex,
        record: &'a sandbox::ContainerRecord,
        pod_name: Option<String>,
    ) -> Self {
        let status = sandbox.container_status(record);
        let lease_record = if status == sandbox::ContainerStatus::Paused {
            leases.of(sandbox, record)
        } else {
            None
        };
        ContainerView {
            record,
            status,
            state: api::shape::State::new(record, status),
            host_config: HostConfig::new(record),
            restart_count: record.restart_count,
            docker_id: record.id.as_str(),
            docker_name: format!("/{}", record.name),
            docker_created: sandbox::time::rfc3339_secs(record.created),
            config: Config {
                cmd: &record.command,
                env: &record.env,
                labels: &record.labels,
                image: record.image.as_ref().map_or("", |i| i.name.as_str()),
                working_dir: record
                    .workdir
                    .as_ref()
                    .map_or_else(String::new, |w| w.display().to_string()),
            },
            pod_name,
            lease: lease_record.as_ref().map(crate::lease::Record::view),
            lease_record,
        }
    }
}

/// The part of docker's `Config` stasis has.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct Config<'a> {
    cmd: &'a [String],
    env: &'a [String],
    labels: &'a std::collections::BTreeMap<String, String>,
    image: &'a str,
    working_dir: String,
}

/// The part of docker's `HostConfig` stasis has: limits (0 unset, as
/// docker shows them) and the restart policy.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct HostConfig {
    memory: i64,
    memory_swap: i64,
    nano_cpus: i64,
    cpu_shares: i64,
    pids_limit: Option<i64>,
    restart_policy: RestartPolicy,
    auto_remove: bool,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct RestartPolicy {
    name: &'static str,
    maximum_retry_count: u32,
}

impl HostConfig {
    fn new(c: &sandbox::ContainerRecord) -> Self {
        let l = &c.limits;
        HostConfig {
            memory: l.memory.unwrap_or(0),
            memory_swap: l.memory_swap.unwrap_or(0),
            nano_cpus: l.nano_cpus.unwrap_or(0),
            cpu_shares: l.cpu_shares.unwrap_or(0),
            pids_limit: l.pids_limit,
            restart_policy: RestartPolicy {
                name: c.restart.name(),
                maximum_retry_count: c.restart.max_retries(),
            },
            auto_remove: c.auto_remove,
        }
    }
}

pub fn run(global: &Global, args: &Args) -> Result<()> {
    let sandbox = open(global)?;
    let pods = sandbox.pods()?;
    let mut containers = sandbox.containers()?;
    let leases = LeaseIndex::load(global);
    // -n and -l pick the newest, in every state, as docker's do.
    let last = if args.latest { Some(1) } else { args.last };
    if last.is_some() {
        containers.sort_by_key(|c| std::cmp::Reverse((c.created, c.created_ns)));
    }
    let mut views = Vec::new();
    for c in &containers {
        let pod = pods.iter().find(|p| p.id == c.pod);
        let view = ContainerView::new(&sandbox, &leases, c, pod.map(|p| p.name.clone()));
        let filtered_status = args.filters.filters.iter().any(|f| f.is_status());
        let listed = view.status.is_running()
            || matches!(view.status, sandbox::ContainerStatus::Restarting(_));
        if !args.all && last.is_none() && !filtered_status && !listed {
            continue;
        }
        if !matches(&sandbox, c, pod, &args.filters.filters) {
            continue;
        }
        views.push(view);
        if last.is_some_and(|n| views.len() >= n) {
            break;
        }
    }
    let mut out = std::io::stdout().lock();
    let id = |v: &ContainerView<'_>| {
        if args.no_trunc {
            v.record.id.as_str().to_owned()
        } else {
            v.record.id.short().to_owned()
        }
    };
    if args.quiet.quiet {
        for v in &views {
            writeln!(out, "{}", id(v))?;
        }
        return Ok(());
    }
    let now = human::now();
    match args.output.format.clone().unwrap_or(TemplateFormat::Table) {
        TemplateFormat::Json => {
            serde_json::to_writer_pretty(&mut out, &views)?;
            writeln!(out)?;
        }
        TemplateFormat::Template(t) => {
            let mut lines = Vec::new();
            for v in &views {
                let row = Row::new(v, now, args.no_trunc);
                let value = serde_json::to_value(&row)?;
                lines.push(
                    t.render(&value, Some(&v.record.labels))
                        .map_err(crate::exit::Refusal::usage)?,
                );
            }
            if t.table {
                let mut rows = vec![t
                    .header(&Row::column)
                    .split('\t')
                    .map(str::to_owned)
                    .collect::<Vec<_>>()];
                rows.extend(
                    lines
                        .iter()
                        .map(|l| l.split('\t').map(str::to_owned).collect()),
                );
                // Rows of different widths pad to the widest.
                let width = rows.iter().map(Vec::len).max().unwrap_or(0);
                for r in &mut rows {
                    r.resize(width, String::new());
                }
                table::print(&mut out, &rows)?;
            } else {
                for l in lines {
                    writeln!(out, "{l}")?;
                }
            }
        }
        TemplateFormat::Table => {
            let mut rows = vec![[
                "CONTAINER ID",
                "NAME",
                "IMAGE",
                "POD",
                "STATUS",
                "CREATED",
                "COMMAND",
            ]
            .map(String::from)
            .to_vec()];
            for v in &views {
                let command = v.record.command.join(" ");
                rows.push(vec![
                    id(v),
                    v.record.name.clone(),
                    v.record
                        .image
                        .as_ref()
                        .map_or_else(|| "-".to_owned(), |i| i.name.clone()),
                    v.pod_name.clone().unwrap_or_default(),
                    status_text(v, now),
                    human::ago(v.record.created),
                    if args.no_trunc {
                        command
                    } else {
                        shorten(&command)
                    },
                ]);
            }
            table::print(&mut out, &rows)?;
        }
    }
    Ok(())
}

/// The STATUS column: docker's words, with health and lease, and
/// `(checkpointed)` for a container that has a checkpoint.
fn status_text(v: &ContainerView<'_>, now: u64) -> String {
    let text = status_words(v, now);
    if v.record.checkpoint.is_some() {
        format!("{text} (checkpointed)")
    } else {
        text
    }
}

fn status_words(v: &ContainerView<'_>, now: u64) -> String {
    human::status_with_lease(
        human::status_with_health(
            human::status(
                v.status,
                v.record.started,
                v.record.exit.as_ref().map(|e| e.finished),
                now,
            ),
            v.status,
            v.record.health.as_ref().map(|h| h.status),
        ),
        v.lease_record.as_ref().map(crate::lease::Record::brief),
    )
}

/// A `ps` row as docker's `--format` templates see it (and `{{json .}}`
/// prints it): strings throughout, docker's field names, and the pod.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Row {
    command: String,
    created_at: String,
    #[serde(rename = "ID")]
    id: String,
    image: String,
    labels: String,
    local_volumes: String,
    mounts: String,
    names: String,
    networks: String,
    pod: String,
    ports: String,
    running_for: String,
    size: String,
    state: String,
    status: String,
}

impl Row {
    fn new(v: &ContainerView<'_>, now: u64, no_trunc: bool) -> Self {
        let command = v.record.command.join(" ");
        let command = if no_trunc { command } else { shorten(&command) };
        Row {
            command: format!("{command:?}"),
            created_at: created_at(v.record.created),
            id: if no_trunc {
                v.record.id.as_str().to_owned()
            } else {
                v.record.id.short().to_owned()
            },
            image: v
                .record
                .image
                .as_ref()
                .map_or_else(String::new, |i| i.name.clone()),
            labels: v
                .record
                .labels
                .iter()
                .map(|(k, val)| format!("{k}={val}"))
                .collect::<Vec<_>>()
                .join(","),
            local_volumes: "0".into(),
            mounts: String::new(),
            names: v.record.name.clone(),
            networks: String::new(),
            pod: v.pod_name.clone().unwrap_or_default(),
            ports: String::new(),
            running_for: human::ago(v.record.created),
            size: "0B".into(),
            state: v.status.word().to_owned(),
            status: status_text(v, now),
        }
    }

    /// docker's column names for `table` templates.
    fn column(field: &str) -> Option<&'static str> {
        Some(match field {
            "ID" => "CONTAINER ID",
            "Image" => "IMAGE",
            "Command" => "COMMAND",
            "CreatedAt" => "CREATED AT",
            "RunningFor" => "CREATED",
            "Ports" => "PORTS",
            "State" => "STATE",
            "Status" => "STATUS",
            "Size" => "SIZE",
            "Names" => "NAMES",
            "Labels" => "LABELS",
            "Mounts" => "MOUNTS",
            "Networks" => "NETWORKS",
            "LocalVolumes" => "LOCAL VOLUMES",
            "Pod" => "POD",
            _ => return None,
        })
    }
}

/// docker's `CreatedAt`: `2026-12-02 00:40:00 +0000 UTC`.
fn created_at(secs: u64) -> String {
    let t = sandbox::time::rfc3339_secs(secs);
    // 2026-12-02T00:40:00Z
    let t = t.trim_end_matches('Z').replacen('T', " ", 1);
    format!("{t} +0000 UTC")
}

fn shorten(s: &str) -> String {
    if s.chars().count() > 40 {
        format!("{}…", s.chars().take(39).collect::<String>())
    } else {
        s.to_owned()
    }
}
