//! `stasis exec`: run a command in a running container's namespaces and
//! cgroup; exits with its status. With `-t`, on a pseudo-terminal of its
//! own that this command copies to and from (`-i`: this terminal's keys
//! in raw mode), sized as this terminal and resized on SIGWINCH.

use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};

use anyhow::{Context, Result};

use crate::commands::attach::RawMode;
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
    if args.tty {
        let (mut child, master) = sandbox
            .exec_tty(&c, args.command.command, env, args.process.workdir)
            .map_err(|e| permission_hint(e.into()))?;
        let _raw = if args.interactive {
            RawMode::enter()?
        } else {
            None
        };
        copy_size(&master);
        let resizer = master.try_clone().context("the command's terminal")?;
        let mut winch = signal_hook::iterator::Signals::new([libc::SIGWINCH])
            .context("setting up the handling of SIGWINCH")?;
        // Neither thread is joined: they end with this process.
        std::thread::spawn(move || {
            for _ in winch.forever() {
                copy_size(&resizer);
            }
        });
        if args.interactive {
            let keys = master.try_clone().context("the command's terminal")?;
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
        let mut out = std::io::stdout().lock();
        let mut buf = [0u8; 8192];
        loop {
            match rustix::io::read(&master, &mut buf) {
                // EIO: no process holds the terminal any more.
                Ok(0) | Err(rustix::io::Errno::IO) => break,
                Ok(n) => {
                    if out.write_all(&buf[..n]).and_then(|()| out.flush()).is_err() {
                        break;
                    }
                }
                Err(rustix::io::Errno::INTR) => {}
                Err(e) => {
                    return Err(std::io::Error::from(e)).context("reading the command's terminal")
                }
            }
        }
        let status = child.wait().context("waiting for the command")?;
        let code = status
            .code()
            .or_else(|| std::os::unix::process::ExitStatusExt::signal(&status).map(|s| 128 + s))
            .unwrap_or(1);
        return Ok((code & 0xff) as u8);
    }
    let code = sandbox
        .exec(&c, args.command.command, env, args.process.workdir)
        .map_err(|e| permission_hint(e.into()))?;
    Ok((code & 0xff) as u8)
}

/// Gives the command's terminal this one's size; nothing if stdin is not
/// a terminal.
fn copy_size(master: &OwnedFd) {
    if let Ok(size) = rustix::termios::tcgetwinsize(std::io::stdin().as_fd()) {
        let _ = rustix::termios::tcsetwinsize(master, size);
    }
}
