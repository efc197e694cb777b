//! `stasis stats`: containers' resource usage in docker's columns (CONTAINER
//! ID, NAME, CPU %, MEM USAGE / LIMIT, MEM %, NET I/O, BLOCK I/O, PIDS),
//! from two samples of their cgroup counters a second apart (as docker's
//! daemon samples), refreshed every second unless `--no-stream`.

use std::io::Write;
use std::time::Duration;

use anyhow::Result;
use sandbox::stats::Sample;
use serde::Serialize;

use crate::commands::{open, Global};
use crate::flags::{self, TemplateFormat};
use crate::table;

/// The time between the two samples a CPU % is computed from.
const INTERVAL: Duration = Duration::from_secs(1);

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print one sample and exit
    #[arg(long)]
    pub no_stream: bool,
    /// Every container, not only running ones
    #[arg(short, long)]
    pub all: bool,
    #[command(flatten)]
    pub output: flags::TemplateOutput,
    /// Containers (default: every running one)
    #[arg(value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

/// One row, as docker's `--format json` prints it (strings throughout).
#[derive(Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct Row {
    #[serde(rename = "BlockIO")]
    block_io: String,
    #[serde(rename = "CPUPerc")]
    cpu_perc: String,
    container: String,
    #[serde(rename = "ID")]
    id: String,
    mem_perc: String,
    mem_usage: String,
    name: String,
    #[serde(rename = "NetIO")]
    net_io: String,
    #[serde(rename = "PIDs")]
    pids: String,
}

pub fn run(global: &Global, args: &Args) -> Result<()> {
    let sandbox = open(global)?;
    let named: Vec<_> = args
        .containers
        .iter()
        .map(|q| sandbox.find_container(q))
        .collect::<Result<_, _>>()?;
    let mut out = std::io::stdout().lock();
    let mut before: Vec<(sandbox::Id, Sample)> = Vec::new();
    let mut first_round = true;
    loop {
        let containers = if named.is_empty() {
            sandbox
                .containers()?
                .into_iter()
                .filter(|c| args.all || sandbox.container_status(c).is_running())
                .collect()
        } else {
            named
                .iter()
                .map(|c| sandbox.container(&c.id))
                .collect::<Result<Vec<_>, _>>()?
        };
        if first_round {
            before = sample_all(&sandbox, &containers);
            std::thread::sleep(INTERVAL);
            first_round = false;
        }
        let now = sample_all(&sandbox, &containers);
        let rows: Vec<Row> = containers
            .iter()
            .zip(&now)
            .map(|(c, (_, s))| {
                let prev = before.iter().find(|(id, _)| *id == c.id).map(|(_, p)| p);
                row(c, prev, s)
            })
            .collect();
        if !args.no_stream {
            // docker clears the screen between refreshes.
            write!(out, "\x1b[2J\x1b[H")?;
        }
        match args.output.format.clone().unwrap_or(TemplateFormat::Table) {
            TemplateFormat::Json => {
                for r in &rows {
                    serde_json::to_writer(&mut out, r)?;
                    writeln!(out)?;
                }
            }
            TemplateFormat::Template(t) => {
                let mut lines = Vec::new();
                for r in &rows {
                    let value = serde_json::to_value(r)?;
                    lines.push(
                        t.render(&value, None)
                            .map_err(crate::exit::Refusal::usage)?
                            .split('\t')
                            .map(str::to_owned)
                            .collect::<Vec<_>>(),
                    );
                }
                if t.table {
                    let header: Vec<String> = t
                        .header(&Row::column)
                        .split('\t')
                        .map(str::to_owned)
                        .collect();
                    lines.insert(0, header);
                    let width = lines.iter().map(Vec::len).max().unwrap_or(0);
                    for l in &mut lines {
                        l.resize(width, String::new());
                    }
                    table::print(&mut out, &lines)?;
                } else {
                    for l in lines {
                        writeln!(out, "{}", l.join("\t"))?;
                    }
                }
            }
            TemplateFormat::Table => {
                let mut lines = vec![[
                    "CONTAINER ID",
                    "NAME",
                    "CPU %",
                    "MEM USAGE / LIMIT",
                    "MEM %",
                    "NET I/O",
                    "BLOCK I/O",
                    "PIDS",
                ]
                .map(String::from)
                .to_vec()];
                for r in rows {
                    lines.push(vec![
                        r.id,
                        r.name,
                        r.cpu_perc,
                        r.mem_usage,
                        r.mem_perc,
                        r.net_io,
                        r.block_io,
                        r.pids,
                    ]);
                }
                table::print(&mut out, &lines)?;
            }
        }
        out.flush()?;
        if args.no_stream {
            return Ok(());
        }
        before = now;
        std::thread::sleep(INTERVAL);
    }
}

fn sample_all(
    sandbox: &sandbox::Sandbox,
    containers: &[sandbox::ContainerRecord],
) -> Vec<(sandbox::Id, Sample)> {
    containers
        .iter()
        .map(|c| {
            let s = sandbox.container_sample(c).unwrap_or_else(|e| {
                tracing::debug!(container = %c.name, error = %e, "no sample");
                Sample::default()
            });
            (c.id.clone(), s)
        })
        .collect()
}

impl Row {
    /// docker's column names for `table` templates.
    fn column(field: &str) -> Option<&'static str> {
        Some(match field {
            "ID" | "Container" => "CONTAINER ID",
            "Name" => "NAME",
            "CPUPerc" => "CPU %",
            "MemUsage" => "MEM USAGE / LIMIT",
            "MemPerc" => "MEM %",
            "NetIO" => "NET I/O",
            "BlockIO" => "BLOCK I/O",
            "PIDs" => "PIDS",
            _ => return None,
        })
    }
}

/// docker's CPU %: the container's share of the host's CPU time between
/// two samples, times the CPUs online (a full core is 100 %).
pub(crate) fn cpu_percent(prev: Option<&Sample>, now: &Sample) -> f64 {
    let (Some(p), Some(cpu), Some(sys)) = (prev, now.cpu_ns, now.system_ns) else {
        return 0.0;
    };
    let (Some(pcpu), Some(psys)) = (p.cpu_ns, p.system_ns) else {
        return 0.0;
    };
    let dc = cpu.saturating_sub(pcpu) as f64;
    let ds = sys.saturating_sub(psys) as f64;
    if ds <= 0.0 {
        return 0.0;
    }
    dc / ds * f64::from(now.cpus.max(1)) * 100.0
}

pub(crate) fn row(c: &sandbox::ContainerRecord, prev: Option<&Sample>, s: &Sample) -> Row {
    let pair = |a: Option<u64>, b: Option<u64>, f: fn(u64) -> String| match (a, b) {
        (Some(a), Some(b)) => format!("{} / {}", f(a), f(b)),
        _ => "-- / --".to_owned(),
    };
    let mem_perc = match (s.memory_usage, s.memory_limit) {
        (Some(u), Some(l)) if l > 0 => format!("{:.2}%", u as f64 / l as f64 * 100.0),
        _ => "--".to_owned(),
    };
    Row {
        block_io: pair(s.block_read, s.block_write, decimal_size),
        cpu_perc: format!("{:.2}%", cpu_percent(prev, s)),
        container: c.id.short().to_owned(),
        id: c.id.short().to_owned(),
        mem_perc,
        mem_usage: pair(s.memory_usage, s.memory_limit, binary_size),
        name: c.name.clone(),
        net_io: pair(s.net_rx, s.net_tx, decimal_size),
        pids: s.pids.map_or_else(|| "--".to_owned(), |p| p.to_string()),
    }
}

/// `v` with `digits` significant digits, trailing zeros dropped (Go's
/// `%.Ng` for the magnitudes sizes have here).
fn significant(v: f64, digits: i32) -> String {
    if v == 0.0 {
        return "0".to_owned();
    }
    let before = v.abs().log10().floor() as i32 + 1;
    let decimals = (digits - before).max(0) as usize;
    let s = format!("{v:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        s
    }
}

/// docker's `units.HumanSizeWithPrecision(n, 3)`: powers of 1000.
pub(crate) fn decimal_size(n: u64) -> String {
    scaled(n, 1000.0, &["B", "kB", "MB", "GB", "TB", "PB"], 3)
}

/// docker's `units.BytesSize`: powers of 1024, four significant digits.
pub(crate) fn binary_size(n: u64) -> String {
    scaled(n, 1024.0, &["B", "KiB", "MiB", "GiB", "TiB", "PiB"], 4)
}

fn scaled(n: u64, base: f64, units: &[&str], digits: i32) -> String {
    let mut v = n as f64;
    let mut i = 0;
    while v >= base && i + 1 < units.len() {
        v /= base;
        i += 1;
    }
    format!("{}{}", significant(v, digits), units[i])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_as_dockers() {
        assert_eq!(binary_size(0), "0B");
        assert_eq!(binary_size(64 << 20), "64MiB");
        assert_eq!(binary_size(1536 * 1024), "1.5MiB");
        assert_eq!(binary_size(8_338_000_000), "7.765GiB");
        assert_eq!(decimal_size(0), "0B");
        assert_eq!(decimal_size(1234), "1.23kB");
        assert_eq!(decimal_size(245_000_000), "245MB");
        assert_eq!(decimal_size(999), "999B");
    }

    #[test]
    fn cpu_percent_is_a_share_of_the_host_times_its_cpus() {
        let s = |cpu, sys| Sample {
            cpu_ns: Some(cpu),
            system_ns: Some(sys),
            cpus: 2,
            ..Sample::default()
        };
        // Half a core of two: 0.5 s of 2 s of host time.
        let p = cpu_percent(Some(&s(0, 0)), &s(500_000_000, 2_000_000_000));
        assert!((p - 50.0).abs() < 1e-9, "{p}");
        assert_eq!(cpu_percent(None, &s(1, 1)), 0.0, "one sample says nothing");
    }
}
