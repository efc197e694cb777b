//! The target flags every verb shares, defined once, and their resolution.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use clap::ValueEnum;
use freezer::{Cgroup, Choice, Hierarchies, PrivateMount, Target};

const TARGET_HELP: &str = "\
Targets:
  --pid N        the cgroup process N is in (read from /proc/N/cgroup)
  --cgroup PATH  a cgroup: an absolute path in a mounted cgroup filesystem
                 (/sys/fs/cgroup/freezer/a/b), or a path from the hierarchy's
                 root (/a/b or a/b), as /proc/PID/cgroup shows it
  --container-id ID
                 a container started by runc, crun, docker, podman,
                 containerd, CRI-O or the kubelet, found by the cgroup names
                 those runtimes use (/docker/ID, docker-ID.scope,
                 libpod-ID[.scope], cri-containerd-ID.scope, crio-ID.scope,
                 /NAMESPACE/ID, kubepods/.../pod<uid>/ID, /ID); a 64-hex ID
                 may be given as a unique prefix, a chosen name only whole.
                 Ambiguous prefixes are refused with the matches listed
  --container-id ID --runtime-root DIR
                 a container in a runc or crun state directory (e.g.
                 /run/runc, /run/crun): the cgroup of its init process, whose
                 start time must match the recorded one
  --k8s-pod UID  a Kubernetes pod's cgroup node (its sandbox and all its
                 containers, frozen in one write), in the kubelet's cgroupfs
                 form (kubepods[/QOS]/pod<uid>) or systemd form
                 (kubepods[-QOS]-pod<uid_with_underscores>.slice)

Hierarchies:
  auto  the v1 freezer if the host has one (as runc and docker use on hybrid
        hosts), else cgroup2; a filesystem path picks the hierarchy it is in
  v1    the v1 freezer controller (freezer.state)
  v2    the cgroup2 tree (cgroup.freeze, cgroup.events)
When no cgroup filesystem is visible (inside a container), the needed one is
mounted privately for the duration of the command (needs CAP_SYS_ADMIN).";

/// What to act on.
#[derive(Debug, Clone, clap::Args)]
#[command(after_long_help = TARGET_HELP)]
// Exactly one target; `--runtime-root` qualifies `--container-id`, so it
// stays outside the group.
#[group(skip)]
#[command(group(clap::ArgGroup::new("target").multiple(false)))]
pub struct TargetArgs {
    /// The cgroup of process N
    #[arg(long, group = "target", value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub pid: Option<u32>,

    /// A cgroup, by filesystem path or path in the hierarchy
    #[arg(long, group = "target", value_name = "PATH")]
    pub cgroup: Option<String>,

    /// A container another runtime started, by ID or unique prefix
    #[arg(long, group = "target", value_name = "ID")]
    pub container_id: Option<String>,

    /// A Kubernetes pod, by UID
    #[arg(long, group = "target", value_name = "UID")]
    pub k8s_pod: Option<String>,

    /// Read the container from this runc/crun state directory (with --container-id)
    #[arg(long, value_name = "DIR", requires = "container_id", conflicts_with_all = ["pid", "cgroup", "k8s_pod"])]
    pub runtime_root: Option<PathBuf>,
}

/// Which cgroup hierarchy to use.
/// stasis's own containers and pods, by name or by filter.
#[derive(Debug, Clone, clap::Args)]
pub struct NamedArgs {
    /// stasis containers or pods, by name or ID (any unique prefix); a container is looked up first
    #[arg(value_name = "NAME|ID", conflicts_with = "target")]
    pub names: Vec<String>,

    /// Every stasis container that matches: label=K[=V], status=S, pod=P, name=N, id=PREFIX (repeatable; all must match)
    #[arg(long = "filter", value_name = "FILTER", conflicts_with_all = ["target", "names"])]
    pub filters: Vec<crate::filter::Filter>,
}

impl NamedArgs {
    /// Whether names or filters were given.
    pub fn is_given(&self) -> bool {
        !self.names.is_empty() || !self.filters.is_empty()
    }
}

#[derive(Debug, Clone, clap::Args)]
pub struct HierarchyArgs {
    /// Which cgroup hierarchy to use
    #[arg(long, value_enum, default_value_t = HierarchyArg::Auto)]
    pub hierarchy: HierarchyArg,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum HierarchyArg {
    Auto,
    V1,
    V2,
}

/// How long a pause or unpause may take.
#[derive(Debug, Clone, clap::Args)]
pub struct TimeoutArgs {
    /// Give up after this long (e.g. 5, 2.5s, 300ms); a pause that times out is thawed again
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = parse_duration)]
    pub timeout: Duration,
}

impl TargetArgs {
    /// The target the flags name, if any.
    fn target(&self) -> Option<Target> {
        if let Some(pid) = self.pid {
            Some(Target::Pid(pid))
        } else if let Some(path) = &self.cgroup {
            Some(Target::Cgroup(path.clone()))
        } else if let Some(uid) = &self.k8s_pod {
            Some(Target::K8sPod(uid.clone()))
        } else {
            self.container_id
                .as_ref()
                .map(|id| match &self.runtime_root {
                    Some(root) => Target::RuntimeState {
                        root: root.clone(),
                        id: id.clone(),
                    },
                    None => Target::ContainerId(id.clone()),
                })
        }
    }
}

/// Exits with clap's usage error (status 2).
pub fn usage_error(message: &str) -> ! {
    use clap::CommandFactory;
    crate::cli::Cli::command()
        .error(clap::error::ErrorKind::MissingRequiredArgument, message)
        .exit()
}

impl HierarchyArg {
    fn choice(self) -> Choice {
        match self {
            HierarchyArg::Auto => Choice::Auto,
            HierarchyArg::V1 => Choice::V1,
            HierarchyArg::V2 => Choice::V2,
        }
    }
}

/// A resolved target, with the private mount it may need kept alive.
pub struct Resolved {
    pub hierarchies: Hierarchies,
    pub cgroup: Cgroup,
    pub target: Target,
    _mount: Option<PrivateMount>,
}

/// Finds the hierarchies (mounting one if none is visible) and the cgroup.
pub fn resolve(target: &TargetArgs, hierarchy: &HierarchyArgs) -> Result<Resolved> {
    let choice = hierarchy.hierarchy.choice();
    let Some(target) = target.target() else {
        usage_error("give a target: --pid, --cgroup, --container-id or --k8s-pod");
    };
    let (hierarchies, mount) = freezer::open(Path::new("/proc"), choice, &std::env::temp_dir())
        .context("finding the cgroup hierarchies")?;
    let cgroup = hierarchies.resolve(&target, choice)?;
    tracing::debug!(%target, cgroup = %cgroup.path, dir = %cgroup.dir.display(), "resolved");
    Ok(Resolved {
        hierarchies,
        cgroup,
        target,
        _mount: mount,
    })
}

impl Resolved {
    /// Adds what the user named to an error, where the error's own path
    /// would not say it (a PID).
    pub fn context<T>(&self, verb: &str, result: freezer::Result<T>) -> Result<T> {
        match &self.target {
            Target::Cgroup(_) => Ok(result?),
            other => result.with_context(|| format!("{verb} {other}")),
        }
    }
}

/// Parses `5`, `2.5s`, `300ms`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let (number, scale) = if let Some(n) = s.strip_suffix("ms") {
        (n, 1e-3)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1.0)
    } else {
        (s, 1.0)
    };
    let value: f64 = number
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a duration (try 5, 2.5s or 300ms)"))?;
    if !value.is_finite() || value < 0.0 || value * scale > 3600.0 {
        return Err(format!("{s:?} is out of range (0 to 3600 seconds)"));
    }
    Ok(Duration::from_secs_f64(value * scale))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("5"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("2.5s"), Ok(Duration::from_millis(2500)));
        assert_eq!(parse_duration("300ms"), Ok(Duration::from_millis(300)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        for bad in ["", "s", "-1", "soon", "NaN", "1e9", "5m"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }
}
