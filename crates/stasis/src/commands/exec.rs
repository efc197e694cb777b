//! `stasis exec`: run a command in a running container's namespaces and
//! cgroup; exits with its status. With `-t`, on a pseudo-terminal of its
//! own that this command copies to and from (`-i`: this terminal's keys
//! in raw mode), sized as this terminal and resized on SIGWINCH.
//!
//! The signals this command gets are passed on to the command (the set
//! `run` forwards: INT, TERM, HUP, QUIT, USR1, USR2), so a supervisor's
//! SIGTERM reaches it, and this command ends only when it does. One
//! exception: without `-t`, in the foreground of a terminal, the
//! terminal's own keys (^C, ^\) already signal the command, which is in
//! this command's process group, so INT and QUIT are not sent twice.

use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::process::Child;

use anyhow::{Context, Result};
use rustix::process::{Pid, PidfdFlags, Signal};

use crate::commands::attach::{catch_signals, RawMode};
use crate::commands::{open, permission_hint, Global};
use crate::flags;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// With -t, pass this command's stdin to the command's terminal (without -t, the command has this command's stdio as it is)
    #[arg(short, long)]
    pub interactive: bool,
    /// Run the command on a pseudo-terminal of its own (its controlling terminal)
    #[arg(short, long)]
    pub tty: bool,
    #[command(flatten)]
    pub process: flags::Process,
    #[command(flatten)]
    pub container: flags::ContainerName,
    #[command(flatten)]
    pub command: flags::Command,
}

/// Runs the command; the exit status `stasis exec` exits with.
pub fn run(global: &Global, args: Args) -> Result<u8> {
    let sandbox = open(global)?;
    let c = sandbox.find_container(&args.container.container)?;
    let env = args.process.env();
    // Caught before the command starts, so that none ends this command
    // and leaves the command running unseen.
    let signals = catch_signals()?;
    if !args.tty {
        let child = sandbox
            .exec_spawn(&c, args.command.command, env, args.process.workdir)
            .map_err(|e| permission_hint(e.into()))?;
        let terminal_signals = in_terminal_foreground();
        return forward_and_wait(child, signals, None, terminal_signals);
    }
    let (child, master) = sandbox
        .exec_tty(&c, args.command.command, env, args.process.workdir)
        .map_err(|e| permission_hint(e.into()))?;
    let _raw = if args.interactive {
        RawMode::enter()?
    } else {
        None
    };
    copy_size(&master);
    let resizer = master.try_clone().context("the command's terminal")?;
    if args.interactive {
        let keys = master.try_clone().context("the command's terminal")?;
        // Not joined: it ends with this process.
        std::thread::spawn(move || {
            let mut stdin = std::io::stdin().lock();
            let mut buf = [0u8; 8192];
            while let Ok(n) = stdin.read(&mut buf) {
                if n == 0 || rustix::io::write(&keys, &buf[..n]).is_err() {
                    break;
                }
            }
        });
    }
    let copier = std::thread::spawn(move || -> Result<()> {
        let mut out = std::io::stdout().lock();
        let mut buf = [0u8; 8192];
        loop {
            match rustix::io::read(&master, &mut buf) {
                // EIO: no process holds the terminal any more.
                Ok(0) | Err(rustix::io::Errno::IO) => return Ok(()),
                Ok(n) => {
                    if out.write_all(&buf[..n]).and_then(|()| out.flush()).is_err() {
                        return Ok(());
                    }
                }
                Err(rustix::io::Errno::INTR) => {}
                Err(e) => {
                    return Err(std::io::Error::from(e)).context("reading the command's terminal")
                }
            }
        }
    });
    // The command is in a session of its own on its terminal: this
    // terminal's keys reach it as bytes, never as signals.
    let code = forward_and_wait(child, signals, Some(resizer), false)?;
    copier
        .join()
        .map_err(|_| anyhow::anyhow!("the terminal copier panicked"))??;
    Ok(code)
}

/// Passes the caught signals on to the command until it exits (SIGWINCH
/// resizes `tty` instead; INT and QUIT are skipped when the terminal sends
/// them to the command itself), then returns its status.
fn forward_and_wait(
    mut child: Child,
    mut signals: signal_hook::iterator::Signals,
    tty: Option<OwnedFd>,
    terminal_signals: bool,
) -> Result<u8> {
    // A pidfd taken before anything waits for the child: a signal can
    // never reach a process that reused its PID.
    let pid = Pid::from_raw(child.id() as i32).context("the command's PID")?;
    let pidfd = rustix::process::pidfd_open(pid, PidfdFlags::empty())
        .context("opening a pidfd for the command")?;
    let handle = signals.handle();
    let forwarder = std::thread::spawn(move || {
        for raw in signals.forever() {
            if raw == libc::SIGWINCH {
                if let Some(t) = &tty {
                    copy_size(t);
                }
                continue;
            }
            if terminal_signals && matches!(raw, libc::SIGINT | libc::SIGQUIT) {
                continue;
            }
            if let Some(sig) = Signal::from_named_raw(raw) {
                // ESRCH once it has exited: nothing to pass on any more.
                let _ = rustix::process::pidfd_send_signal(&pidfd, sig);
            }
        }
    });
    let status = child.wait().context("waiting for the command")?;
    handle.close();
    let _ = forwarder.join();
    Ok((sandbox::exit_code(status) & 0xff) as u8)
}

/// Whether this command runs in the foreground process group of its
/// controlling terminal, where the terminal's ^C and ^\ reach every
/// process of the group.
fn in_terminal_foreground() -> bool {
    let Ok(tty) = std::fs::File::open("/dev/tty") else {
        return false;
    };
    rustix::termios::tcgetpgrp(&tty).is_ok_and(|pg| pg == rustix::process::getpgrp())
}

/// Gives the command's terminal this one's size; nothing if stdin is not
/// a terminal.
fn copy_size(master: &OwnedFd) {
    if let Ok(size) = rustix::termios::tcgetwinsize(std::io::stdin().as_fd()) {
        let _ = rustix::termios::tcsetwinsize(master, size);
    }
}
