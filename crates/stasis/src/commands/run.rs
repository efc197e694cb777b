//! `stasis run`: create and start a container, in a pod of its own or in
//! an existing pod: from an image (`run IMAGE [CMD]...`: an overlay of its
//! layers, its config), or a command on the host's filesystem or a
//! `--rootfs` directory (`run -- CMD...`).

use std::path::PathBuf;

use anyhow::{Context, Result};
use sandbox::ContainerOptions;

use crate::commands::{open, permission_hint, Global};
use crate::exit::Refusal;
use crate::flags::{self, RunSource};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Run in the background and print the container's ID
    #[arg(short, long)]
    pub detach: bool,
    /// Keep the container's stdin open, fed from this command's (and from `attach`)
    #[arg(short, long)]
    pub interactive: bool,
    /// Give the container a pseudo-terminal (stdin, stdout and stderr on it; with -i, this terminal in raw mode)
    #[arg(short, long)]
    pub tty: bool,
    /// The key sequence that detaches from the container, leaving it running (docker's format)
    #[arg(long, value_name = "KEYS", default_value = crate::commands::attach::DEFAULT_DETACH_KEYS, value_parser = crate::commands::attach::parse_detach_keys)]
    pub detach_keys: crate::commands::attach::DetachKeys,
    /// Remove the container (and the pod made for it) once it exits
    #[arg(long = "rm")]
    pub remove: bool,
    /// Join this pod, or the pod of this container (like --net=container:X)
    #[arg(long, value_name = "POD|CONTAINER")]
    pub pod: Option<String>,
    /// A name for the container: letters, digits, _ . -, starting with a letter or digit
    #[arg(long)]
    pub name: Option<String>,
    #[command(flatten)]
    pub labels: flags::Labels,
    #[command(flatten)]
    pub process: flags::Process,
    /// Without an image: run in its own mount namespace with DIR as its root (with /proc, /dev, /sys)
    #[arg(long, value_name = "DIR")]
    pub rootfs: Option<PathBuf>,
    /// Run as UID[:GID] or NAME[:GROUP] (names from the container's /etc/passwd and /etc/group)
    #[arg(short, long, value_name = "USER[:GROUP]")]
    pub user: Option<String>,
    /// Run stasis-pause as PID 1 of the container's PID namespace, reaping orphans and leaving signals to the command (its pod shares pid)
    #[arg(long)]
    pub init: bool,
    /// The container's hostname (its pod's UTS namespace: with --pod, set it at pod create)
    #[arg(long, value_name = "NAME")]
    pub hostname: Option<String>,
    #[command(flatten)]
    pub isolation: flags::Isolation,
    #[command(flatten)]
    pub health: flags::HealthCheck,
    #[command(flatten)]
    pub limits: flags::Limits,
    #[command(flatten)]
    pub restart: flags::Restart,
    #[command(flatten)]
    pub command: flags::RunCommand,
}

/// Runs the container; the exit status `stasis run` exits with.
pub fn run(global: &Global, args: Args) -> Result<u8> {
    let source = args.command.source().map_err(Refusal::usage)?;
    if args.remove && args.restart.restart.is_some_and(|r| !r.is_none()) {
        return Err(Refusal::usage("conflicting options: --restart and --rm".into()).into());
    }
    let sandbox = open(global)?;
    let healthcheck = args
        .health
        .config()
        .transpose()
        .context("the health check")?;
    let env = args.process.env();
    let (command, env, workdir, image, image_user) = match source {
        RunSource::Command(command) => (command, env, args.process.workdir, None, None),
        RunSource::Image { image, .. } if args.rootfs.is_some() => {
            return Err(Refusal::usage(format!(
                "--rootfs and the image {image} are two root filesystems: give one \
                 (a command without an image goes after --)"
            ))
            .into())
        }
        RunSource::Image { image, command } => {
            let from = crate::commands::image::from_image(
                global,
                &image,
                &command,
                env,
                args.process.workdir,
            )?;
            (
                from.command,
                from.env,
                from.workdir,
                Some(from.root),
                from.user,
            )
        }
    };
    // -u wins over the image's user; names come from the container's own
    // /etc/passwd (the image's, the --rootfs directory's, or the host's).
    let user = match &args.user {
        Some(spec) => {
            let roots: Vec<PathBuf> = match (&image, &args.rootfs) {
                (Some(root), _) => root.lower_dirs.clone(),
                (None, Some(r)) => vec![r.clone()],
                (None, None) => vec![PathBuf::from("/")],
            };
            Some(
                crate::commands::image::user_of(&roots, spec)
                    .with_context(|| format!("the user {spec:?}"))?,
            )
        }
        None => image_user,
    };
    if args.hostname.is_some() && args.pod.is_some() {
        return Err(Refusal::usage(
            "--hostname with --pod: a pod's members share its hostname (its UTS namespace); \
             give it to `pod create --hostname`"
                .to_owned(),
        )
        .into());
    }
    let container = sandbox
        .create_container(ContainerOptions {
            name: args.name,
            pod: args.pod,
            labels: args.labels.to_map(),
            env,
            workdir,
            rootfs: args.rootfs,
            image,
            user,
            command,
            // Detached, its monitor removes it; attached, this command does
            // (after the last of the log).
            auto_remove: args.remove && args.detach,
            healthcheck,
            limits: args.limits.to_limits(),
            restart: args.restart.restart.unwrap_or_default(),
            isolation: args.isolation.to_isolation(),
            hostname: args.hostname,
            init: args.init,
            stdio: sandbox::StdioMode {
                open_stdin: args.interactive,
                tty: args.tty,
                stdin_once: args.interactive && !args.detach,
            },
        })
        .context("creating the container")
        .map_err(permission_hint)?;
    // Attached, the signals a user sends (Ctrl-C, `kill`) go to the
    // container, as docker's --sig-proxy does; caught from before the start,
    // so that none ends this command and leaves the container running.
    let signals = if args.detach {
        None
    } else {
        Some(crate::commands::attach::catch_signals()?)
    };
    let monitor = crate::commands::internal::monitor_command(global, &container.id)?;
    let started = sandbox.start_container(&container, monitor);
    let container = match started {
        Ok(c) => c,
        Err(e) => {
            // Docker's codes for a command that cannot run: 127 not found
            // (the command or its working directory), 126 not executable.
            let code = e
                .command_exit_code(false)
                .or_else(|| {
                    let exit = sandbox.container(&container.id).ok()?.exit?;
                    u8::try_from(exit.code).ok()
                })
                .unwrap_or(125);
            if args.remove && !args.detach {
                remove(&sandbox, &container.id);
            }
            eprintln!("stasis: {:#}", anyhow::Error::from(e));
            return Ok(code);
        }
    };
    if args.detach {
        println!("{}", container.id);
        return Ok(0);
    }
    let Some(signals) = signals else {
        return Ok(0);
    };
    let code = crate::commands::attach::session(
        &sandbox,
        &container,
        crate::commands::attach::Session {
            signals,
            stdin: args.interactive,
            tty: args.tty,
            detach_keys: args.detach_keys,
            from_start: true,
        },
    )?;
    if args.remove {
        remove(&sandbox, &container.id);
    }
    Ok(code)
}

/// `--rm`: removes the exited container and the pod made for it.
fn remove(sandbox: &sandbox::Sandbox, id: &sandbox::Id) {
    let removed = sandbox
        .container(id)
        .and_then(|c| sandbox.remove_container(&c, true));
    if let Err(e) = removed {
        if !e.is_not_found() {
            eprintln!(
                "stasis: removing the container: {:#}",
                anyhow::Error::from(e)
            );
        }
    }
}
