//! Resource limits of a pod or a container, written to the cgroup nodes the
//! pod already has, with docker's value syntax and rules.
//!
//! Where each controller is comes from `/proc/self/mountinfo`: on hybrid
//! and v1 hosts `memory`, `cpu`, `cpuacct`, `pids` and `blkio` are v1
//! hierarchies of their own (mounted apart from the freezer), and the pod
//! gets a node `stasis/<pod-id>/` with its leaves in each of them. On a
//! v2-only host the cgroup2 node the pod already has carries them, once
//! `memory cpu pids io` are enabled in the `cgroup.subtree_control` of
//! `stasis/` (for the pod's own limits) and of the pod's node (for its
//! containers').
//!
//! Kernel files written:
//! - v1: `memory.limit_in_bytes`, `memory.memsw.limit_in_bytes` (memory +
//!   swap, present with swap accounting), `cpu.cfs_period_us` and
//!   `cpu.cfs_quota_us`, `cpu.shares`, `pids.max`;
//! - v2: `memory.max`, `memory.swap.max` (swap alone), `cpu.max`
//!   (`QUOTA PERIOD`), `cpu.weight` (1..10000, from shares as runc converts
//!   them), `pids.max`.
//!
//! Read: `oom_kill N` in v1 `memory.oom_control` or v2 `memory.events`, the
//! number of processes the kernel's OOM killer ended in that cgroup.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The controllers stasis puts a pod's nodes in (besides the freezer), by
/// their v1 names.
const V1_CONTROLLERS: [&str; 5] = ["memory", "cpu", "cpuacct", "pids", "blkio"];
/// The same on cgroup2.
const V2_CONTROLLERS: [&str; 4] = ["memory", "cpu", "pids", "io"];

/// docker's floor for `--memory` (moby's `linuxMinMemory`).
const MIN_MEMORY: i64 = 6 * 1024 * 1024;
/// The CFS period docker uses with `--cpus`, in microseconds.
const CPU_PERIOD_US: u64 = 100_000;

/// A pod's or a container's limits, as `inspect` shows them (docker's
/// `HostConfig` fields); `None` is unset (docker's 0), `-1` unlimited.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    /// Bytes of memory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<i64>,
    /// Bytes of memory plus swap; `-1` unlimited swap.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_swap: Option<i64>,
    /// CPUs in units of 10⁻⁹ (`--cpus 0.5` is 500000000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nano_cpus: Option<i64>,
    /// The relative CPU weight (docker's default is 1024).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_shares: Option<i64>,
    /// The most tasks at once; `-1` (or 0) unlimited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pids_limit: Option<i64>,
}

impl Limits {
    /// Whether nothing is set.
    pub fn is_empty(&self) -> bool {
        *self == Limits::default()
    }

    /// Checks docker's rules (moby's `verifyPlatformContainerResources`):
    /// at least 6 MB of memory, a memory+swap limit only with a memory limit
    /// and not below it, CPUs between 0.01 and the host's count.
    pub fn validate(&self, cpus_online: usize) -> Result<()> {
        let invalid = |what, value: i64, reason: String| Error::InvalidLimit {
            what,
            value: value.to_string(),
            reason,
        };
        if let Some(m) = self.memory {
            if m != -1 && m < MIN_MEMORY {
                return Err(invalid(
                    "--memory",
                    m,
                    "the minimum memory limit allowed is 6MB".into(),
                ));
            }
        }
        if let Some(s) = self.memory_swap {
            match self.memory {
                None | Some(-1) if s != -1 => {
                    return Err(invalid(
                        "--memory-swap",
                        s,
                        "set a memory limit (--memory) with a memory+swap limit".into(),
                    ))
                }
                Some(m) if m != -1 && s != -1 && s < m => {
                    return Err(invalid(
                        "--memory-swap",
                        s,
                        "the memory+swap limit must be at least the memory limit".into(),
                    ))
                }
                _ if s < -1 || s == 0 => {
                    return Err(invalid(
                        "--memory-swap",
                        s,
                        "give a size, or -1 for unlimited swap".into(),
                    ))
                }
                _ => {}
            }
        }
        if let Some(n) = self.nano_cpus {
            let max = i64::try_from(cpus_online).unwrap_or(i64::MAX) * 1_000_000_000;
            if !(10_000_000..=max).contains(&n) {
                return Err(invalid(
                    "--cpus",
                    n,
                    format!("the range of CPUs is from 0.01 to {cpus_online}.00, as there are only {cpus_online} CPUs available"),
                ));
            }
        }
        if let Some(s) = self.cpu_shares {
            if !(2..=262_144).contains(&s) {
                return Err(invalid(
                    "--cpu-shares",
                    s,
                    "CPU shares range from 2 to 262144".into(),
                ));
            }
        }
        if let Some(p) = self.pids_limit {
            if p < -1 {
                return Err(invalid(
                    "--pids-limit",
                    p,
                    "give a number of tasks, or -1 for unlimited".into(),
                ));
            }
        }
        Ok(())
    }

    /// The files and values that set these limits in a v1 hierarchy
    /// carrying `controller` (written in this order: the memory limit
    /// before memory+swap, as the kernel wants memsw ≥ memory at all times;
    /// the period before the quota).
    fn v1_writes(&self, controller: &str) -> Vec<(&'static str, String)> {
        let mut w = Vec::new();
        match controller {
            "memory" => {
                if let Some(m) = self.memory {
                    w.push(("memory.limit_in_bytes", m.to_string()));
                    // docker's default: as much swap as memory.
                    let swap = match self.memory_swap {
                        Some(s) => s,
                        None if m > 0 => m.saturating_mul(2),
                        None => -1,
                    };
                    w.push(("memory.memsw.limit_in_bytes", swap.to_string()));
                }
            }
            "cpu" => {
                if let Some(n) = self.nano_cpus {
                    w.push(("cpu.cfs_period_us", CPU_PERIOD_US.to_string()));
                    w.push(("cpu.cfs_quota_us", quota_us(n).to_string()));
                }
                if let Some(s) = self.cpu_shares {
                    w.push(("cpu.shares", s.to_string()));
                }
            }
            "pids" => {
                if let Some(p) = self.pids_limit {
                    w.push(("pids.max", pids_value(p)));
                }
            }
            _ => {}
        }
        w
    }

    /// The same for a cgroup2 node.
    fn v2_writes(&self) -> Vec<(&'static str, String)> {
        let mut w = Vec::new();
        if let Some(m) = self.memory {
            w.push(("memory.max", max_or(m)));
            let swap = match (m, self.memory_swap) {
                (_, Some(-1)) | (-1, _) => "max".to_owned(),
                (m, Some(s)) => (s - m).max(0).to_string(),
                (m, None) => m.to_string(),
            };
            w.push(("memory.swap.max", swap));
        }
        if let Some(n) = self.nano_cpus {
            w.push(("cpu.max", format!("{} {CPU_PERIOD_US}", quota_us(n))));
        }
        if let Some(s) = self.cpu_shares {
            w.push(("cpu.weight", shares_to_weight(s).to_string()));
        }
        if let Some(p) = self.pids_limit {
            w.push(("pids.max", pids_value(p)));
        }
        w
    }
}

fn quota_us(nano_cpus: i64) -> i64 {
    // docker: NanoCPUs * period / 1e9, never below the kernel's 1 ms.
    (nano_cpus.saturating_mul(CPU_PERIOD_US as i64) / 1_000_000_000).max(1000)
}

fn pids_value(p: i64) -> String {
    if p <= 0 {
        "max".to_owned()
    } else {
        p.to_string()
    }
}

fn max_or(v: i64) -> String {
    if v < 0 {
        "max".to_owned()
    } else {
        v.to_string()
    }
}

/// runc's conversion of v1 shares (2..262144) to a v2 weight (1..10000).
fn shares_to_weight(shares: i64) -> i64 {
    1 + ((shares - 2) * 9999) / 262_142
}

/// The CPUs this process may run on (docker's `NumCPU`), at least 1.
pub fn cpus_online() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

/// Parses docker's size syntax (`32m`, `1g`, `512k`, `1.5g`, `100`,
/// `64MiB`): binary units, as `docker run --memory` reads them; `-1` is
/// unlimited where `allow_unlimited`.
pub fn parse_bytes(what: &'static str, text: &str, allow_unlimited: bool) -> Result<i64> {
    let bad = |reason: &str| Error::InvalidLimit {
        what,
        value: text.to_owned(),
        reason: reason.to_owned(),
    };
    let t = text.trim();
    if t == "-1" {
        return if allow_unlimited {
            Ok(-1)
        } else {
            Err(bad("a size cannot be unlimited here"))
        };
    }
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let unit = unit.trim_start().to_ascii_lowercase();
    let unit = unit.strip_suffix('b').unwrap_or(&unit);
    let unit = unit.strip_suffix('i').unwrap_or(unit);
    let shift = match unit {
        "" => 0,
        "k" => 10,
        "m" => 20,
        "g" => 30,
        "t" => 40,
        "p" => 50,
        _ => return Err(bad("use a number with an optional unit b, k, m, g, t or p")),
    };
    let value: f64 = number
        .parse()
        .map_err(|_| bad("use a number with an optional unit b, k, m, g, t or p"))?;
    let bytes = value * (1u64 << shift) as f64;
    if !bytes.is_finite() || bytes >= i64::MAX as f64 {
        return Err(bad("it is too large"));
    }
    Ok(bytes as i64)
}

/// Parses `--cpus` (`0.5`, `2`) into nano CPUs.
pub fn parse_cpus(text: &str) -> Result<i64> {
    let bad = || Error::InvalidLimit {
        what: "--cpus",
        value: text.to_owned(),
        reason: "use a number of CPUs such as 0.5 or 2".to_owned(),
    };
    let v: f64 = text.trim().parse().map_err(|_| bad())?;
    if !v.is_finite() || !(0.0..=1e9).contains(&v) {
        return Err(bad());
    }
    Ok((v * 1e9).round() as i64)
}

/// Where a controller is mounted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControllerMount {
    /// The controllers it carries (v1 names for v1 mounts).
    pub controllers: Vec<String>,
    pub mount_point: PathBuf,
    /// The cgroup shown at the mount point.
    pub root: String,
    pub unified: bool,
}

/// The resource controllers of this host and where they are.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Controllers {
    /// v1 hierarchies carrying one of [`V1_CONTROLLERS`], and the cgroup2
    /// mount if it carries any of [`V2_CONTROLLERS`].
    pub mounts: Vec<ControllerMount>,
}

impl Controllers {
    /// Reads `<proc>/self/mountinfo`, and the cgroup2 mount's
    /// `cgroup.controllers`.
    pub fn detect(proc: &Path) -> Result<Self> {
        let path = proc.join("self/mountinfo");
        let text = std::fs::read_to_string(&path).map_err(|source| Error::ReadCgroupFile {
            path: path.clone(),
            source,
        })?;
        Ok(Self::from_mounts(&freezer::mountinfo::parse(&text)))
    }

    /// Picks, for each controller, the first mount whose top is highest.
    pub fn from_mounts(mounts: &[freezer::mountinfo::CgroupMount]) -> Self {
        let depth = |m: &freezer::mountinfo::CgroupMount| {
            m.root.matches('/').count() - usize::from(m.root == "/")
        };
        let mut out: Vec<ControllerMount> = Vec::new();
        for name in V1_CONTROLLERS {
            let best = mounts
                .iter()
                .filter(|m| !m.unified && m.controllers.iter().any(|c| c == name))
                .min_by_key(|m| depth(m));
            if let Some(m) = best {
                if !out.iter().any(|o| o.mount_point == m.mount_point) {
                    out.push(ControllerMount {
                        controllers: m.controllers.clone(),
                        mount_point: m.mount_point.clone(),
                        root: m.root.clone(),
                        unified: false,
                    });
                }
            }
        }
        if let Some(m) = mounts.iter().filter(|m| m.unified).min_by_key(|m| depth(m)) {
            let listed = std::fs::read_to_string(m.mount_point.join("cgroup.controllers"))
                .unwrap_or_default();
            let controllers: Vec<String> = listed
                .split_whitespace()
                .filter(|c| V2_CONTROLLERS.contains(c))
                // A controller bound to a v1 hierarchy is not usable in v2.
                .filter(|c| !out.iter().any(|o| o.controllers.iter().any(|x| x == c)))
                .map(str::to_owned)
                .collect();
            if !controllers.is_empty() {
                out.push(ControllerMount {
                    controllers,
                    mount_point: m.mount_point.clone(),
                    root: m.root.clone(),
                    unified: true,
                });
            }
        }
        Controllers { mounts: out }
    }

    /// The mount carrying a controller (v1 name; `io` for v2's).
    pub fn get(&self, controller: &str) -> Option<&ControllerMount> {
        self.mounts
            .iter()
            .find(|m| m.controllers.iter().any(|c| c == controller))
    }

    /// The directory of `parts` below the top of a mount.
    pub fn dir(mount: &ControllerMount, parts: &[&str]) -> PathBuf {
        mount.mount_point.join(parts.join("/"))
    }
}

/// The host's controllers, detected once, when first needed: most
/// commands (ps, pause) never need them.
#[derive(Debug, Clone, Default)]
pub(crate) struct LazyControllers {
    cell: std::sync::Arc<OnceLock<Controllers>>,
}

impl LazyControllers {
    pub(crate) fn given(c: Controllers) -> Self {
        let cell = OnceLock::new();
        let _ = cell.set(c);
        LazyControllers {
            cell: std::sync::Arc::new(cell),
        }
    }

    pub(crate) fn get(&self, proc: &Path) -> &Controllers {
        self.cell.get_or_init(|| {
            Controllers::detect(proc).unwrap_or_else(|e| {
                tracing::warn!(error = %e, "no resource controllers");
                Controllers::default()
            })
        })
    }
}

/// Enables `controllers` for the children of a cgroup2 directory.
pub(crate) fn enable_v2(dir: &Path, controllers: &[String]) -> Result<()> {
    if controllers.is_empty() {
        return Ok(());
    }
    let path = dir.join("cgroup.subtree_control");
    let value = controllers
        .iter()
        .map(|c| format!("+{c}"))
        .collect::<Vec<_>>()
        .join(" ");
    write_file(&path, &value)
}

/// Writes the limits to a pod node or leaf: `dirs` are its directories in
/// each of `controllers`' mounts, in the same order.
pub(crate) fn apply(limits: &Limits, targets: &[(&ControllerMount, PathBuf)]) -> Result<()> {
    for (mount, dir) in targets {
        let writes = if mount.unified {
            limits
                .v2_writes()
                .into_iter()
                .filter(|(file, _)| {
                    let controller = file.split('.').next().unwrap_or_default();
                    mount.controllers.iter().any(|c| c == controller)
                })
                .collect()
        } else {
            mount
                .controllers
                .iter()
                .flat_map(|c| limits.v1_writes(c))
                .collect::<Vec<_>>()
        };
        for (file, value) in writes {
            let path = dir.join(file);
            // Without swap accounting the file is absent: memory alone is
            // limited, as docker does with a warning.
            if file.starts_with("memory.memsw") && !path.exists() {
                tracing::warn!(path = %path.display(), "no swap accounting: the swap limit is not set");
                continue;
            }
            write_file(&path, &value)?;
        }
    }
    Ok(())
}

fn write_file(path: &Path, value: &str) -> Result<()> {
    std::fs::write(path, value).map_err(|source| Error::WriteCgroupFile {
        path: path.to_owned(),
        value: value.to_owned(),
        source,
    })
}

/// The OOM kills the kernel counted in a memory cgroup directory, if it
/// has a memory controller (v1 `memory.oom_control`, v2 `memory.events`).
pub fn oom_kills(dir: &Path) -> Option<u64> {
    ["memory.oom_control", "memory.events"]
        .iter()
        .find_map(|f| std::fs::read_to_string(dir.join(f)).ok())
        .and_then(|text| {
            text.lines().find_map(|l| {
                l.strip_prefix("oom_kill ")
                    .and_then(|n| n.trim().parse().ok())
            })
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_as_docker_reads_them() {
        let b = |t| parse_bytes("--memory", t, true);
        assert_eq!(b("32m").expect("32m"), 32 << 20);
        assert_eq!(b("1g").expect("1g"), 1 << 30);
        assert_eq!(b("1G").expect("1G"), 1 << 30);
        assert_eq!(b("512k").expect("k"), 512 << 10);
        assert_eq!(b("64MiB").expect("MiB"), 64 << 20);
        assert_eq!(b("64mb").expect("mb"), 64 << 20);
        assert_eq!(b("1.5g").expect("1.5g"), 3 << 29);
        assert_eq!(b("100").expect("bytes"), 100);
        assert_eq!(b("100b").expect("b"), 100);
        assert_eq!(b("-1").expect("unlimited"), -1);
        for bad in ["", "m", "12x", "1..2m", "-5m", "ten"] {
            let e = b(bad).expect_err(bad);
            assert!(e.is_invalid(), "{bad}: {e}");
        }
        assert!(parse_bytes("--memory", "-1", false).is_err());
    }

    #[test]
    fn cpus_parse_into_nano_cpus() {
        assert_eq!(parse_cpus("0.5").expect("half"), 500_000_000);
        assert_eq!(parse_cpus("2").expect("two"), 2_000_000_000);
        assert_eq!(parse_cpus("0.01").expect("min"), 10_000_000);
        assert!(parse_cpus("half").is_err());
        assert!(parse_cpus("-1").is_err());
    }

    #[test]
    fn docker_rules_refuse_what_docker_refuses() {
        let ok = |l: Limits| l.validate(2).expect("valid");
        let bad = |l: Limits, words: &str| {
            let e = l.validate(2).expect_err("invalid");
            assert!(e.is_invalid());
            assert!(e.to_string().contains(words), "{e}");
        };
        ok(Limits::default());
        ok(Limits {
            memory: Some(32 << 20),
            memory_swap: Some(64 << 20),
            ..Limits::default()
        });
        ok(Limits {
            memory: Some(32 << 20),
            memory_swap: Some(-1),
            ..Limits::default()
        });
        bad(
            Limits {
                memory: Some(1 << 20),
                ..Limits::default()
            },
            "6MB",
        );
        bad(
            Limits {
                memory_swap: Some(64 << 20),
                ..Limits::default()
            },
            "set a memory limit",
        );
        bad(
            Limits {
                memory: Some(64 << 20),
                memory_swap: Some(32 << 20),
                ..Limits::default()
            },
            "at least the memory limit",
        );
        bad(
            Limits {
                nano_cpus: Some(3_000_000_000),
                ..Limits::default()
            },
            "from 0.01 to 2.00",
        );
        bad(
            Limits {
                nano_cpus: Some(1_000_000),
                ..Limits::default()
            },
            "0.01",
        );
        bad(
            Limits {
                cpu_shares: Some(1),
                ..Limits::default()
            },
            "2 to 262144",
        );
        ok(Limits {
            pids_limit: Some(-1),
            ..Limits::default()
        });
        bad(
            Limits {
                pids_limit: Some(-2),
                ..Limits::default()
            },
            "-1 for unlimited",
        );
    }

    #[test]
    fn v1_and_v2_files_get_dockers_values() {
        let l = Limits {
            memory: Some(32 << 20),
            memory_swap: None,
            nano_cpus: Some(500_000_000),
            cpu_shares: Some(512),
            pids_limit: Some(16),
        };
        assert_eq!(
            l.v1_writes("memory"),
            vec![
                ("memory.limit_in_bytes", (32i64 << 20).to_string()),
                ("memory.memsw.limit_in_bytes", (64i64 << 20).to_string()),
            ]
        );
        assert_eq!(
            l.v1_writes("cpu"),
            vec![
                ("cpu.cfs_period_us", "100000".to_owned()),
                ("cpu.cfs_quota_us", "50000".to_owned()),
                ("cpu.shares", "512".to_owned()),
            ]
        );
        assert_eq!(l.v1_writes("pids"), vec![("pids.max", "16".to_owned())]);
        assert_eq!(
            l.v2_writes(),
            vec![
                ("memory.max", (32i64 << 20).to_string()),
                ("memory.swap.max", (32i64 << 20).to_string()),
                ("cpu.max", "50000 100000".to_owned()),
                ("cpu.weight", "20".to_owned()),
                ("pids.max", "16".to_owned()),
            ]
        );
        let unlimited = Limits {
            memory: Some(32 << 20),
            memory_swap: Some(-1),
            pids_limit: Some(-1),
            ..Limits::default()
        };
        assert_eq!(
            unlimited.v2_writes(),
            vec![
                ("memory.max", (32i64 << 20).to_string()),
                ("memory.swap.max", "max".to_owned()),
                ("pids.max", "max".to_owned()),
            ]
        );
        assert_eq!(
            shares_to_weight(1024),
            39,
            "runc's value for docker's default"
        );
    }

    #[test]
    fn controllers_are_found_in_v1_mounts_and_in_cgroup2_when_it_has_them() {
        let dir = std::env::temp_dir().join(format!("stasis-unit-limits-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("unified")).expect("dir");
        std::fs::write(
            dir.join("unified/cgroup.controllers"),
            "cpuset cpu io memory hugetlb pids\n",
        )
        .expect("controllers");
        let m = |point: &str, unified: bool, cs: &[&str]| freezer::mountinfo::CgroupMount {
            mount_point: dir.join(point),
            root: "/".into(),
            unified,
            controllers: cs.iter().map(|c| c.to_string()).collect(),
        };
        let hybrid = Controllers::from_mounts(&[
            m("cpu,cpuacct", false, &["cpu", "cpuacct"]),
            m("memory", false, &["memory"]),
            m("freezer", false, &["freezer"]),
            m("unified", true, &[]),
        ]);
        assert_eq!(hybrid.get("cpu"), hybrid.get("cpuacct"), "co-mounted once");
        assert_eq!(
            hybrid.get("memory").map(|m| m.unified),
            Some(false),
            "v1 memory"
        );
        let v2 = hybrid.get("pids").expect("pids in cgroup2");
        assert!(v2.unified);
        assert_eq!(v2.controllers, vec!["io".to_owned(), "pids".to_owned()]);
        let only = Controllers::from_mounts(&[m("unified", true, &[])]);
        assert_eq!(only.mounts.len(), 1);
        assert_eq!(
            only.mounts[0].controllers,
            vec!["cpu", "io", "memory", "pids"]
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn limits_land_in_the_files_of_a_fake_tree() {
        let dir =
            std::env::temp_dir().join(format!("stasis-unit-limits-apply-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        for d in ["memory/n", "unified/n"] {
            std::fs::create_dir_all(dir.join(d)).expect("dir");
        }
        // The kernel makes this file when swap accounting is on.
        std::fs::write(dir.join("memory/n/memory.memsw.limit_in_bytes"), "").expect("memsw");
        let v1 = ControllerMount {
            controllers: vec!["memory".into()],
            mount_point: dir.join("memory"),
            root: "/".into(),
            unified: false,
        };
        let v2 = ControllerMount {
            controllers: vec!["pids".into()],
            mount_point: dir.join("unified"),
            root: "/".into(),
            unified: true,
        };
        let l = Limits {
            memory: Some(64 << 20),
            memory_swap: Some(-1),
            pids_limit: Some(16),
            ..Limits::default()
        };
        apply(
            &l,
            &[(&v1, dir.join("memory/n")), (&v2, dir.join("unified/n"))],
        )
        .expect("apply");
        let read = |f: &str| std::fs::read_to_string(dir.join(f)).expect(f);
        assert_eq!(read("memory/n/memory.limit_in_bytes"), "67108864");
        assert_eq!(read("memory/n/memory.memsw.limit_in_bytes"), "-1");
        assert_eq!(read("unified/n/pids.max"), "16");
        assert!(
            !dir.join("unified/n/memory.max").exists(),
            "memory is v1's here"
        );
        std::fs::write(
            dir.join("memory/n/memory.oom_control"),
            "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n",
        )
        .expect("oom");
        assert_eq!(oom_kills(&dir.join("memory/n")), Some(2));
        assert_eq!(oom_kills(&dir.join("unified/n")), None);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
