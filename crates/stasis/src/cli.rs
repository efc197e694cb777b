//! The command line: global options and the verbs.

use clap::{Parser, Subcommand, ValueEnum};

use std::path::PathBuf;

use crate::commands::{
    attach, checkpoint, events, exec, image, inspect, internal, kill, logs, pause, pod, ps,
    restore, rm, run, sandbox_image, serve, start, state, stats, stop, top, unpause, wait,
    watchdog,
};

/// Pause and unpause processes and cgroups through the kernel's cgroup freezer.
///
/// A paused target keeps its memory, open files and connections; it resumes
/// where it stopped. Works on cgroup v1, v2 and hybrid hosts.
#[derive(Debug, Parser)]
#[command(name = "stasis", version, after_help = crate::exit::HELP, propagate_version = true)]
pub struct Cli {
    /// How much to log on stderr
    #[arg(long, global = true, env = "STASIS_LOG", value_enum, default_value_t = LogLevel::Warn)]
    pub log_level: LogLevel,

    /// Where pods and containers are recorded
    #[arg(long, global = true, env = "STASIS_ROOT", default_value = sandbox::DEFAULT_ROOT)]
    pub root: PathBuf,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Freeze every process of a cgroup (docker pause)
    Pause(pause::Args),
    /// Thaw a paused cgroup (docker unpause)
    Unpause(unpause::Args),
    /// Show whether a cgroup is thawed, freezing or frozen, and by whom
    State(state::Args),
    /// Manage pods: namespace-sharing sandboxes anchored by stasis-pause
    #[command(after_help = crate::exit::HELP)]
    Pod(pod::Args),
    /// Manage local images: import, load, ls, inspect, rm (no registry pulls)
    #[command(after_help = crate::exit::HELP)]
    Image(image::Args),
    /// Run a new container from an image (run IMAGE [CMD]...), or a command (run -- CMD...)
    #[command(after_help = crate::exit::HELP, override_usage = "\
stasis run [OPTIONS] IMAGE [CMD]...   (the image's root filesystem and config)
       stasis run [OPTIONS] [--rootfs DIR] -- CMD...   (the host's filesystem, or DIR)")]
    Run(Box<run::Args>),
    /// List containers
    #[command(after_help = crate::exit::HELP)]
    Ps(ps::Args),
    /// Show containers as JSON
    #[command(after_help = crate::exit::HELP)]
    Inspect(inspect::Args),
    /// Print a container's output
    #[command(after_help = crate::exit::HELP)]
    Logs(logs::Args),
    /// Show containers' resource usage (docker stats)
    #[command(after_help = crate::exit::HELP)]
    Stats(stats::Args),
    /// Show a container's processes (docker top)
    #[command(after_help = crate::exit::HELP)]
    Top(top::Args),
    /// Run a command in a running container
    #[command(after_help = crate::exit::HELP)]
    Exec(exec::Args),
    /// Attach to a running container: its output, and its stdin and terminal if it has them (ctrl-p ctrl-q detaches)
    #[command(after_help = crate::exit::HELP)]
    Attach(attach::Args),
    /// Show what happens to pods and containers, as it happens (docker events)
    #[command(after_help = crate::exit::HELP)]
    Events(events::Args),
    /// Start created or exited containers again, as the same containers (docker start)
    #[command(after_help = crate::exit::HELP)]
    Start(start::Args),
    /// Stop containers (SIGTERM, then SIGKILL after a grace period)
    #[command(after_help = crate::exit::HELP)]
    Stop(stop::Args),
    /// Send a signal to containers
    #[command(after_help = crate::exit::HELP)]
    Kill(kill::Args),
    /// Wait for containers to exit and print their exit codes
    #[command(after_help = crate::exit::HELP)]
    Wait(wait::Args),
    /// Remove containers
    #[command(after_help = crate::exit::HELP)]
    Rm(rm::Args),
    /// Write a running or paused container to disk with CRIU (it ends, unless --leave-running)
    #[command(after_help = crate::exit::HELP)]
    Checkpoint(checkpoint::Args),
    /// Bring a checkpointed container back with CRIU, in its pod, its log continuing
    #[command(after_help = crate::exit::HELP)]
    Restore(restore::Args),
    /// Write stasis-pause as a CRI sandbox (pause) image: an OCI image archive
    #[command(after_help = crate::exit::HELP)]
    SandboxImage(sandbox_image::Args),
    /// Serve the Docker Engine API on a Unix socket (docker -H unix://PATH)
    #[command(after_help = crate::exit::HELP)]
    Serve(serve::Args),
    /// The monitor of a container (started by run; not for people)
    #[command(hide = true)]
    InternalMonitor(internal::MonitorArgs),
    /// The health checker of a container (started by its monitor; not for people)
    #[command(hide = true)]
    InternalHealth(internal::Args),
    /// The watchdog of a lease (started by pause --lease; not for people)
    #[command(hide = true)]
    InternalWatchdog(watchdog::Args),
}

/// Ends the process for a command-line error: `--help` and `--version` print
/// as clap prints them (exit 0); a usage error prints one line, `stasis: `
/// and clap's message without its usage and tip lines, and exits 2.
pub fn exit_usage(err: clap::Error) -> ! {
    use clap::error::ErrorKind;
    if matches!(
        err.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        err.exit()
    }
    eprintln!("stasis: {}", one_line(&err.render().to_string()));
    std::process::exit(i32::from(crate::exit::USAGE))
}

/// clap's message up to its first blank line, as one line.
fn one_line(rendered: &str) -> String {
    let text = rendered.strip_prefix("error: ").unwrap_or(rendered);
    text.lines()
        .take_while(|l| !l.trim().is_empty())
        .map(str::trim)
        .collect::<Vec<_>>()
        .join(" ")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogLevel {
    Off,
    Error,
    Warn,
    Info,
    Debug,
    Trace,
}

impl LogLevel {
    pub fn as_tracing(self) -> Option<tracing::Level> {
        match self {
            LogLevel::Off => None,
            LogLevel::Error => Some(tracing::Level::ERROR),
            LogLevel::Warn => Some(tracing::Level::WARN),
            LogLevel::Info => Some(tracing::Level::INFO),
            LogLevel::Debug => Some(tracing::Level::DEBUG),
            LogLevel::Trace => Some(tracing::Level::TRACE),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn usage_errors_fit_on_one_line() {
        for args in [
            &["stasis", "pod", "create", "--share", "net,mnt"][..],
            &["stasis", "run"],
            &["stasis", "kill", "-s", "NOPE", "x"],
            &["stasis", "nosuchverb"],
        ] {
            let err = Cli::try_parse_from(args).expect_err("usage error");
            let line = one_line(&err.render().to_string());
            assert!(
                !line.is_empty() && !line.contains('\n'),
                "{args:?}: {line:?}"
            );
            assert!(!line.contains("For more information"), "{line}");
        }
    }

    #[test]
    fn runs_own_flags_end_at_the_image() {
        let source = |args: &[&str]| match Cli::try_parse_from(args).expect("parses").command {
            Command::Run(run) => run.command.source(),
            other => panic!("{other:?}"),
        };
        let cmd = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let image = |i: &str, c: &[&str]| {
            Ok(crate::flags::RunSource::Image {
                image: i.into(),
                command: cmd(c),
            })
        };
        assert_eq!(
            source(&[
                "stasis", "run", "-d", "-e", "A=1", "--name", "x", "busybox", "ls", "-d", "/"
            ]),
            image("busybox", &["ls", "-d", "/"])
        );
        assert_eq!(
            source(&["stasis", "run", "-d", "--", "ls", "-d"]),
            Ok(crate::flags::RunSource::Command(cmd(&["ls", "-d"])))
        );
    }

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn a_target_is_single() {
        // With no target at all, the verb itself answers with a usage error.
        assert!(Cli::try_parse_from(["stasis", "pause"]).is_ok());
        assert!(Cli::try_parse_from(["stasis", "pause", "--pid", "1", "--cgroup", "x"]).is_err());
        assert!(Cli::try_parse_from(["stasis", "pause", "web", "--pid", "1"]).is_err());
        assert!(Cli::try_parse_from(["stasis", "pause", "--filter", "label=a", "web"]).is_err());
        assert!(Cli::try_parse_from(["stasis", "pause", "--filter", "bogus=1"]).is_err());
        assert!(Cli::try_parse_from(["stasis", "pause", "--pid", "0"]).is_err());
        assert!(
            Cli::try_parse_from(["stasis", "pause", "--cgroup", "x", "--timeout", "soon"]).is_err()
        );
        assert!(Cli::try_parse_from(["stasis", "pause", "web", "db"]).is_ok());
        assert!(Cli::try_parse_from(["stasis", "state", "--pid", "7", "--format", "json"]).is_ok());
        assert!(Cli::try_parse_from(["stasis", "pause", "--container-id", "abc"]).is_ok());
        assert!(Cli::try_parse_from(["stasis", "pause", "--k8s-pod", "u", "--pid", "3"]).is_err());
        assert!(
            Cli::try_parse_from(["stasis", "pause", "--container-id", "a", "--k8s-pod", "u"])
                .is_err()
        );
        let with_root = [
            "stasis",
            "unpause",
            "--container-id",
            "abc",
            "--runtime-root",
            "/run/runc",
        ];
        assert!(Cli::try_parse_from(with_root).is_ok());
        assert!(Cli::try_parse_from(["stasis", "pause", "--runtime-root", "/run/runc"]).is_err());
        assert!(
            Cli::try_parse_from(["stasis", "pause", "--pid", "3", "--runtime-root", "/r"]).is_err()
        );
        assert!(Cli::try_parse_from(["stasis", "run", "--", "true"]).is_ok());
        assert!(Cli::try_parse_from(["stasis", "run", "busybox", "sh", "-c", "x"]).is_ok());
        assert!(Cli::try_parse_from(["stasis", "image", "import", "-", "bad name"]).is_err());
        assert!(
            Cli::try_parse_from(["stasis", "image", "import", "-", "b", "-c", "EXPOSE 1"]).is_err()
        );
        assert!(Cli::try_parse_from(["stasis", "image", "rm"]).is_err());
        assert!(Cli::try_parse_from(["stasis", "run"]).is_err());
    }
}
