//! A container's resource usage, read from its cgroup leaf and its pod's
//! network namespace, for `stats` (docker's columns). Raw counters only:
//! rates and percentages need two samples and are the caller's.
//!
//! Kernel files read (v1 on hybrid hosts, cgroup2 where it carries the
//! controller):
//! - CPU: `cpuacct.usage` (ns) / `cpu.stat` `usage_usec`; the host's total
//!   from the `cpu` line of `/proc/stat` (clock ticks of 10 ms: USER_HZ is
//!   100 on every Linux ABI);
//! - memory: `memory.usage_in_bytes` less `total_inactive_file` of
//!   `memory.stat`, and `memory.limit_in_bytes` / `memory.current` less
//!   `inactive_file`, and `memory.max` (as docker's CLI counts it); an
//!   unlimited one shows the host's `MemTotal` (`/proc/meminfo`);
//! - block I/O: `blkio.throttle.io_service_bytes_recursive` (`Read`,
//!   `Write`) / `io.stat` (`rbytes`, `wbytes`);
//! - tasks: `pids.current`;
//! - network: `/proc/PID/net/dev` of a process in the pod's namespace,
//!   every interface but `lo` (docker counts the container's interfaces).

use std::path::Path;

use crate::container::ContainerRecord;
use crate::error::Result;
use crate::Sandbox;

/// One sample of a container's counters; `None` where this host has no
/// controller (or the file) to read it from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sample {
    /// CPU time its tasks used, in nanoseconds.
    pub cpu_ns: Option<u64>,
    /// CPU time the whole host used, in nanoseconds.
    pub system_ns: Option<u64>,
    /// The CPUs online.
    pub cpus: u32,
    pub memory_usage: Option<u64>,
    pub memory_limit: Option<u64>,
    pub block_read: Option<u64>,
    pub block_write: Option<u64>,
    pub pids: Option<u64>,
    pub net_rx: Option<u64>,
    pub net_tx: Option<u64>,
}

/// Larger than this is "no limit" in v1 (the kernel's page-rounded
/// `LONG_MAX`).
const V1_UNLIMITED: u64 = 1 << 62;

impl Sandbox {
    /// Reads a container's counters (of its leaf, and of its pod's network
    /// namespace while a member runs).
    pub fn container_sample(&self, c: &ContainerRecord) -> Result<Sample> {
        let cgroups = self.cgroups_of(&c.pod)?;
        let leaf = Some(c.id.as_str());
        let dir = |ctl: &str| cgroups.resource_dir(ctl, leaf);
        let mut s = Sample {
            cpus: u32::try_from(crate::limits::cpus_online()).unwrap_or(1),
            system_ns: system_ns(&self.host.proc),
            ..Sample::default()
        };
        if let Some(d) = dir("cpuacct") {
            s.cpu_ns = read_u64(&d.join("cpuacct.usage"));
        } else if let Some(d) = dir("cpu") {
            s.cpu_ns = keyed(&d.join("cpu.stat"), "usage_usec").map(|us| us * 1000);
        }
        if let Some(d) = dir("memory") {
            let v1 = d.join("memory.usage_in_bytes").exists();
            let (usage, inactive, limit) = if v1 {
                (
                    read_u64(&d.join("memory.usage_in_bytes")),
                    keyed(&d.join("memory.stat"), "total_inactive_file"),
                    read_u64(&d.join("memory.limit_in_bytes")).filter(|l| *l < V1_UNLIMITED),
                )
            } else {
                (
                    read_u64(&d.join("memory.current")),
                    keyed(&d.join("memory.stat"), "inactive_file"),
                    read_u64(&d.join("memory.max")),
                )
            };
            s.memory_usage = usage.map(|u| u.saturating_sub(inactive.unwrap_or(0)));
            s.memory_limit = limit.or_else(|| mem_total(&self.host.proc));
        }
        if let Some(d) = dir("blkio") {
            let (r, w) = blkio(&d.join("blkio.throttle.io_service_bytes_recursive"));
            s.block_read = r;
            s.block_write = w;
        } else if let Some(d) = dir("io") {
            let (r, w) = io_stat(&d.join("io.stat"));
            s.block_read = r;
            s.block_write = w;
        }
        if let Some(d) = dir("pids") {
            s.pids = read_u64(&d.join("pids.current"));
        }
        // Any live process in the pod's network namespace will do: the
        // container's own, else the pod's pause process.
        let pod = self.pod(&c.pod).ok();
        let pid = c
            .process
            .filter(|p| p.is_alive(&self.host.proc))
            .or_else(|| {
                pod.and_then(|p| p.pause)
                    .filter(|p| p.is_alive(&self.host.proc))
            })
            .map(|p| p.pid);
        if let Some(pid) = pid {
            if let Some((rx, tx)) = net_dev(&self.host.proc.join(format!("{pid}/net/dev"))) {
                s.net_rx = Some(rx);
                s.net_tx = Some(tx);
            }
        }
        Ok(s)
    }
}

impl Sandbox {
    /// The processes in a container's leaf (`cgroup.procs` of the freezer's
    /// hierarchy), as host PIDs.
    pub fn container_pids(&self, c: &ContainerRecord) -> Result<Vec<u32>> {
        let cg = crate::cgroups::PodCgroups::of(&self.host.hierarchies, &c.pod)?
            .freezer_cgroup(Some(c.id.as_str()))?;
        let path = cg.dir.join("cgroup.procs");
        let text = std::fs::read_to_string(&path)
            .map_err(|source| crate::error::Error::ReadCgroupFile { path, source })?;
        Ok(text.lines().filter_map(|l| l.trim().parse().ok()).collect())
    }
}

fn read_u64(path: &Path) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// The value of `key` in a `key value` file (`memory.stat`, `cpu.stat`).
fn keyed(path: &Path, key: &str) -> Option<u64> {
    let text = std::fs::read_to_string(path).ok()?;
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok()).flatten()
    })
}

/// The host's CPU time: the sum of the `cpu` line of `/proc/stat`.
fn system_ns(proc: &Path) -> Option<u64> {
    let text = std::fs::read_to_string(proc.join("stat")).ok()?;
    let line = text.lines().find(|l| l.starts_with("cpu "))?;
    // USER_HZ: 100 ticks a second.
    let ticks: u64 = line
        .split_whitespace()
        .skip(1)
        .take(7)
        .filter_map(|v| v.parse::<u64>().ok())
        .sum();
    Some(ticks * 10_000_000)
}

fn mem_total(proc: &Path) -> Option<u64> {
    let text = std::fs::read_to_string(proc.join("meminfo")).ok()?;
    let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// v1 `blkio.throttle.io_service_bytes_recursive`: `MAJ:MIN Read N`.
fn blkio(path: &Path) -> (Option<u64>, Option<u64>) {
    let Ok(text) = std::fs::read_to_string(path) else {
        return (None, None);
    };
    let (mut r, mut w) = (0, 0);
    for l in text.lines() {
        let f: Vec<&str> = l.split_whitespace().collect();
        if let [_, op, n] = f[..] {
            let n: u64 = n.parse().unwrap_or(0);
            match op {
                "Read" => r += n,
                "Write" => w += n,
                _ => {}
            }
        }
    }
    (Some(r), Some(w))
}

/// v2 `io.stat`: `MAJ:MIN rbytes=N wbytes=N ...`.
fn io_stat(path: &Path) -> (Option<u64>, Option<u64>) {
    let Ok(text) = std::fs::read_to_string(path) else {
        return (None, None);
    };
    let (mut r, mut w) = (0, 0);
    for kv in text.split_whitespace() {
        if let Some((k, v)) = kv.split_once('=') {
            let v: u64 = v.parse().unwrap_or(0);
            match k {
                "rbytes" => r += v,
                "wbytes" => w += v,
                _ => {}
            }
        }
    }
    (Some(r), Some(w))
}

/// Bytes received and sent on every interface but `lo`.
fn net_dev(path: &Path) -> Option<(u64, u64)> {
    let text = std::fs::read_to_string(path).ok()?;
    let (mut rx, mut tx) = (0, 0);
    for l in text.lines().skip(2) {
        let Some((name, rest)) = l.split_once(':') else {
            continue;
        };
        if name.trim() == "lo" {
            continue;
        }
        let f: Vec<u64> = rest
            .split_whitespace()
            .filter_map(|v| v.parse().ok())
            .collect();
        if f.len() >= 9 {
            rx += f[0];
            tx += f[8];
        }
    }
    Some((rx, tx))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(tag: &str) -> std::path::PathBuf {
        let d =
            std::env::temp_dir().join(format!("stasis-unit-stats-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).expect("scratch");
        d
    }

    #[test]
    fn the_kernels_files_parse() {
        let d = scratch("files");
        std::fs::write(
            d.join("blk"),
            "8:0 Read 4096\n8:0 Write 8192\n8:0 Sync 1\n8:16 Read 1\nTotal 12289\n",
        )
        .expect("blk");
        assert_eq!(blkio(&d.join("blk")), (Some(4097), Some(8192)));
        std::fs::write(
            d.join("io"),
            "8:0 rbytes=10 wbytes=20 rios=1 wios=2\n8:16 rbytes=1 wbytes=2\n",
        )
        .expect("io");
        assert_eq!(io_stat(&d.join("io")), (Some(11), Some(22)));
        std::fs::write(
            d.join("dev"),
            "Inter-|   Receive |  Transmit\n face |bytes ...\n    lo: 100 1 0 0 0 0 0 0 100 1 0 0 0 0 0 0\n  eth0: 7 1 0 0 0 0 0 0 9 1 0 0 0 0 0 0\n",
        )
        .expect("dev");
        assert_eq!(net_dev(&d.join("dev")), Some((7, 9)), "lo is not counted");
        std::fs::write(d.join("stat"), "cache 5\ntotal_inactive_file 300\n").expect("stat");
        assert_eq!(keyed(&d.join("stat"), "total_inactive_file"), Some(300));
        assert_eq!(keyed(&d.join("stat"), "inactive_file"), None);
        std::fs::write(d.join("stat"), "cpu  1 2 3 4 5 6 7 8 9 10\ncpu0 1\n").expect("stat");
        assert_eq!(
            system_ns(&d),
            Some(28 * 10_000_000),
            "seven fields, not guest"
        );
        let _ = std::fs::remove_dir_all(&d);
    }
}
