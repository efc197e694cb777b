//! The target flags every verb shares, defined once, and their resolution.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use clap::ValueEnum;
use freezer::{Cgroup, Choice, Hierarchies, Placement, PrivateMount, Strategy, Target};

/// The targets, hierarchies and exit codes that `pause`, `unpause` and
/// `state` explain in their help (`-h` and `--help` alike).
pub const TARGET_HELP: &str = "\
Targets:
  NAME|ID        a stasis container or pod, by name or ID (any unique prefix);
                 a container is looked up first
  -f, --filter FILTER
                 every stasis container that matches (label=K[=V], status=S,
                 pod=P, name=N, id=PREFIX; repeatable, all must match)
  --pid N        the cgroup process N is in (read from /proc/N/cgroup); a
                 process in the root cgroup must first be given a cgroup of
                 its own (mkdir /sys/fs/cgroup/freezer/NAME, then
                 echo N > /sys/fs/cgroup/freezer/NAME/cgroup.procs)
  --cgroup PATH  a cgroup: an absolute path in a mounted cgroup filesystem
                 (/sys/fs/cgroup/freezer/a/b), or a path from the hierarchy's
                 root (/a/b or a/b), as /proc/PID/cgroup shows it
  --container-id ID
                 a container started by runc, crun, docker, podman,
                 containerd, CRI-O or the kubelet, found by the cgroup names
                 those runtimes give a container (/docker/ID, docker-ID.scope,
                 libpod-ID[.scope], cri-containerd-ID.scope, crio-ID.scope,
                 /NAMESPACE/ID, kubepods/.../pod<uid>/ID, /ID); a 64-hex ID
                 may be given as a unique prefix, a chosen name only whole.
                 Never a QoS, slice, pod or stasis node (kubepods, besteffort,
                 pod<uid>, /stasis...), a runtime's or hypervisor's parent
                 (/docker, /machine, /lxc...), a cgroup that holds other
                 containers, nor a chosen name with processes in cgroups
                 below it: refused, exit 5. Ambiguous prefixes are refused
                 with the matches listed
  --container-id ID --runtime-root DIR
                 a container in a runc or crun state directory (e.g.
                 /run/runc, /run/crun): the cgroup of its init process, whose
                 start time must match the recorded one
  --k8s-pod UID  a Kubernetes pod's cgroup node (its sandbox and all its
                 containers, frozen in one write), in the kubelet's cgroupfs
                 form (kubepods[/QOS]/pod<uid>) or systemd form
                 (kubepods[-QOS]-pod<uid_with_underscores>.slice); the only
                 way to name a pod node

Hierarchies (--hierarchy, for --pid, --cgroup, --container-id, --k8s-pod):
  auto  the v1 freezer if the host has one (as runc and docker use on hybrid
        hosts), else cgroup2; a filesystem path picks the hierarchy it is in
  v1    the v1 freezer controller (freezer.state)
  v2    the cgroup2 tree (cgroup.freeze, cgroup.events)
On a hybrid host a target has a cgroup in both trees, and a freeze in either
stops it: it is paused when it is frozen in any. pause says \"already paused\"
then, state lists each hierarchy, and unpause (with auto) thaws whichever
holds it; with v1 or v2 it thaws that hierarchy only.
When no cgroup filesystem is visible (inside a container), the needed one is
mounted privately for the duration of the command (needs CAP_SYS_ADMIN).
stasis containers and pods are frozen at their own cgroup node, in the
hierarchy auto picks: --hierarchy, --strategy and --runtime-root are refused
with NAME|ID or --filter (exit 2).";

/// The help layout of `pause`, `unpause` and `state`: clap's own, then the
/// verb's sections, shown by `-h` as well as `--help` (the `after_help` of
/// the verb list is replaced: the exit codes are among the sections).
pub fn help_template(sections: &[&str]) -> String {
    let mut out =
        String::from("{before-help}{about-with-newline}\n{usage-heading} {usage}\n\n{all-args}\n");
    for section in sections {
        out.push('\n');
        out.push_str(section);
        out.push('\n');
    }
    out
}

/// What to act on.
#[derive(Debug, Clone, clap::Args)]
// Exactly one target; `--runtime-root` qualifies `--container-id`, so it
// stays outside the group.
#[group(skip)]
#[command(group(clap::ArgGroup::new("target").multiple(false).conflicts_with("filters")))]
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
    #[arg(long, value_name = "DIR", requires = "container_id", conflicts_with_all = ["pid", "cgroup", "k8s_pod", "names", "filters"])]
    pub runtime_root: Option<PathBuf>,
}

/// stasis's own containers and pods, by name or by filter.
#[derive(Debug, Clone, clap::Args)]
pub struct NamedArgs {
    /// stasis containers or pods, by name or ID (any unique prefix); a container is looked up first
    #[arg(value_name = "NAME|ID", conflicts_with_all = ["target", "filters"])]
    pub names: Vec<String>,

    #[command(flatten)]
    pub filters: crate::flags::Filters,
}

impl NamedArgs {
    /// Whether names or filters were given.
    pub fn is_given(&self) -> bool {
        !self.names.is_empty() || !self.filters.filters.is_empty()
    }
}

/// Which cgroup hierarchy to use.
#[derive(Debug, Clone, clap::Args)]
pub struct HierarchyArgs {
    /// Which cgroup hierarchy to use [default: auto] (not with NAME|ID or --filter)
    #[arg(long, value_enum, conflicts_with_all = ["names", "filters"])]
    pub hierarchy: Option<HierarchyArg>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum HierarchyArg {
    Auto,
    V1,
    V2,
}

/// How to pause, and so what to undo.
#[derive(Debug, Clone, clap::Args)]
pub struct StrategyArgs {
    /// How to freeze the cgroup [default: auto] (not with NAME|ID or --filter)
    #[arg(long, value_enum, conflicts_with_all = ["names", "filters"])]
    pub strategy: Option<StrategyArg>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StrategyArg {
    Auto,
    Direct,
    Subgroup,
}

impl StrategyArgs {
    /// The freezer's strategy.
    pub fn strategy(&self) -> Strategy {
        match self.strategy.unwrap_or(StrategyArg::Auto) {
            StrategyArg::Auto => Strategy::Auto,
            StrategyArg::Direct => Strategy::Direct,
            StrategyArg::Subgroup => Strategy::Subgroup,
        }
    }
}

/// The strategies, for the help of `pause` and `unpause`.
pub const STRATEGY_HELP: &str = "\
Strategies (--strategy):
  auto      write the cgroup's own freeze file; if the kernel refuses it
            (EPERM, as for a cgroup namespace's root under nsdelegate), or a
            stasis subgroup is already there, use the subgroup strategy.
            unpause: undo whichever strategy paused the target
  direct    write the cgroup's own freeze file only
  subgroup  create the child cgroup stasis-frozen, freeze it while empty, and
            move every process into it until none is left (a process frozen
            on arrival cannot fork behind the move); unpause moves them back
            and removes the child. A call finishes what a crashed one started.
unpause with direct or subgroup thaws only what that strategy paused (exit 4
for a target the other one paused).";

/// `unpause`'s help for the shared `--strategy`.
pub const UNPAUSE_STRATEGY_HELP: &str =
    "Which strategy's pause to undo [default: auto, whichever] (not with NAME|ID or --filter)";

/// How long a pause or unpause may take.
#[derive(Debug, Clone, clap::Args)]
pub struct TimeoutArgs {
    /// Give up after this long (e.g. 5, 2.5s, 300ms); a pause that times out is thawed again
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = parse_duration)]
    pub timeout: Duration,
}

/// `unpause`'s help for the shared `--timeout`.
pub const UNPAUSE_TIMEOUT_HELP: &str =
    "Give up after this long (e.g. 5, 2.5s, 300ms) if the kernel has not confirmed the thaw";

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
    crate::cli::exit_usage(
        crate::cli::Cli::command().error(clap::error::ErrorKind::MissingRequiredArgument, message),
    )
}

impl HierarchyArgs {
    /// The freezer's choice; `auto` unless a hierarchy was named.
    pub fn choice(&self) -> Choice {
        match self.hierarchy {
            None | Some(HierarchyArg::Auto) => Choice::Auto,
            Some(HierarchyArg::V1) => Choice::V1,
            Some(HierarchyArg::V2) => Choice::V2,
        }
    }
}

/// A resolved target in every hierarchy it is in, with the private mount it
/// may need kept alive.
pub struct Resolved {
    pub hierarchies: Hierarchies,
    pub placement: Placement,
    pub target: Target,
    pub choice: Choice,
    _mount: Option<PrivateMount>,
}

/// Finds the hierarchies (mounting one if none is visible) and the target's
/// cgroup in each.
pub fn resolve(target: &TargetArgs, hierarchy: &HierarchyArgs) -> Result<Resolved> {
    let choice = hierarchy.choice();
    let Some(target) = target.target() else {
        usage_error(
            "give a target: NAME|ID, --filter, --pid, --cgroup, --container-id or --k8s-pod",
        );
    };
    let (hierarchies, mount) = freezer::open(Path::new("/proc"), choice, &std::env::temp_dir())
        .context("finding the cgroup hierarchies")?;
    let placement = hierarchies.place(&target, choice)?;
    tracing::debug!(%target, cgroup = %placement.chosen.path, dir = %placement.chosen.dir.display(), others = placement.others.len(), "resolved");
    Ok(Resolved {
        hierarchies,
        placement,
        target,
        choice,
        _mount: mount,
    })
}

impl Resolved {
    /// The cgroup the hierarchy choice picked.
    pub fn cgroup(&self) -> &Cgroup {
        &self.placement.chosen
    }

    /// Adds what the user named to an error, where the error's own path
    /// would not say it (a PID).
    pub fn context<T>(&self, verb: &str, result: freezer::Result<T>) -> Result<T> {
        match &self.target {
            Target::Cgroup(_) => Ok(result?),
            other => result.with_context(|| format!("{verb} {other}")),
        }
    }
}

/// Parses `5`, `2.5s`, `300ms`, `5m`, `1h`, up to an hour (`--timeout`).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    sandbox::time::parse_duration_upto(s, Duration::from_secs(3600))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::{CommandFactory, Parser};

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("stasis").chain(args.iter().copied()))
    }

    fn usage_error(args: &[&str]) -> clap::error::ErrorKind {
        let err = parse(args).expect_err(&args.join(" "));
        assert_eq!(err.exit_code(), 2, "{}: {err}", args.join(" "));
        err.kind()
    }

    #[test]
    fn unpause_and_state_take_the_flags_pause_takes() {
        let flag_sets: &[&[&str]] = &[
            &[
                "--cgroup",
                "x",
                "--hierarchy",
                "v2",
                "--strategy",
                "subgroup",
                "--timeout",
                "1s",
            ],
            &["--pid", "7", "--hierarchy", "v1", "--strategy", "direct"],
            &["--container-id", "abc", "--runtime-root", "/run/runc"],
            &["--k8s-pod", "6f1c2a9e-0b5d", "--hierarchy", "auto"],
            &["-f", "label=a=b", "--timeout", "2"],
            &["web", "db"],
        ];
        for flags in flag_sets {
            for verb in ["pause", "unpause"] {
                let mut args = vec![verb];
                args.extend_from_slice(flags);
                parse(&args).unwrap_or_else(|e| panic!("{}: {e}", args.join(" ")));
            }
        }
        let Command::Unpause(u) = parse(&[
            "unpause",
            "--cgroup",
            "x",
            "--strategy",
            "subgroup",
            "--hierarchy",
            "v2",
        ])
        .expect("parse")
        .command
        else {
            panic!("not unpause")
        };
        assert_eq!(u.strategy.strategy(), Strategy::Subgroup);
        assert_eq!(u.hierarchy.choice(), Choice::V2);
        for args in [
            &["state", "web"][..],
            &["state", "-f", "status=paused", "--format", "json"],
            &["state", "--pid", "3", "--hierarchy", "v2"],
        ] {
            parse(args).unwrap_or_else(|e| panic!("{}: {e}", args.join(" ")));
        }
    }

    #[test]
    fn short_f_is_filter_as_in_ps() {
        let Command::Pause(p) = parse(&["pause", "-f", "name=web"]).expect("parse").command else {
            panic!("not pause")
        };
        assert_eq!(
            p.named.filters.filters,
            [crate::filter::Filter::Name("web".into())]
        );
    }

    #[test]
    fn flags_that_cannot_apply_to_stasis_names_are_usage_errors() {
        use clap::error::ErrorKind;
        for verb in ["pause", "unpause", "state"] {
            for args in [
                &[verb, "--hierarchy", "v2", "web"][..],
                &[verb, "--hierarchy", "auto", "-f", "name=web"],
                &[verb, "--runtime-root", "/run/runc", "web"],
                &[verb, "--runtime-root", "/run/runc", "--filter", "name=web"],
            ] {
                assert_eq!(
                    usage_error(args),
                    ErrorKind::ArgumentConflict,
                    "{}",
                    args.join(" ")
                );
            }
        }
        for verb in ["pause", "unpause"] {
            let args = [verb, "--hierarchy", "v2", "--strategy", "subgroup", "web"];
            assert_eq!(usage_error(&args), ErrorKind::ArgumentConflict);
            let args = [verb, "--strategy", "direct", "-f", "name=web"];
            assert_eq!(usage_error(&args), ErrorKind::ArgumentConflict);
        }
        // Without a name, the defaults stay unset: nothing was asked for.
        let Command::Pause(p) = parse(&["pause", "web"]).expect("parse").command else {
            panic!("not pause")
        };
        assert_eq!((p.hierarchy.hierarchy, p.strategy.strategy), (None, None));
    }

    #[test]
    fn short_and_long_help_explain_targets_hierarchies_and_exit_codes() {
        let mut cli = Cli::command();
        for verb in ["pause", "unpause", "state"] {
            let sub = cli.find_subcommand_mut(verb).expect("verb");
            for help in [
                sub.render_help().to_string(),
                sub.render_long_help().to_string(),
            ] {
                for section in [
                    "Targets:",
                    "--container-id ID --runtime-root DIR",
                    "Hierarchies",
                    "Exit status:",
                    "5  refused",
                ] {
                    assert!(
                        help.contains(section),
                        "{verb}: {section} missing in\n{help}"
                    );
                }
                assert_eq!(help.matches("Exit status:").count(), 1, "{verb}");
                if verb != "state" {
                    assert!(help.contains("Strategies"), "{verb}");
                }
                if verb == "unpause" {
                    assert!(!help.contains("a pause that times out"), "{help}");
                    assert!(help.contains("confirmed the thaw"), "{help}");
                }
            }
        }
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("5"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("2.5s"), Ok(Duration::from_millis(2500)));
        assert_eq!(parse_duration("300ms"), Ok(Duration::from_millis(300)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        for bad in ["", "s", "-1", "soon", "NaN", "1e9", "61m", "2h", "m"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }
}
