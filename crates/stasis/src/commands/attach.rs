//! `stasis attach`, and the attached half of `run`: the container's output
//! from its log, this terminal's input and window size to its monitor's
//! attach socket (`-i`, `-t`), the signals this command gets passed on to
//! the container (docker's sig-proxy), and the detach keys (ctrl-p ctrl-q)
//! that leave it running.

use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};
use sandbox::logs::{LogOptions, Stream};
use sandbox::{ContainerRecord, Sandbox};
use signal_hook::iterator::Signals;

use crate::commands::{open, Global};
use crate::exit::Refusal;
use crate::flags;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The key sequence that detaches, leaving the container running (docker's format: ctrl-p,ctrl-q)
    #[arg(long, value_name = "KEYS", default_value = DEFAULT_DETACH_KEYS, value_parser = parse_detach_keys)]
    pub detach_keys: DetachKeys,
    #[command(flatten)]
    pub container: flags::ContainerName,
}

pub use sandbox::attach::{parse_detach_keys, DetachKeys, Detacher, DEFAULT_DETACH_KEYS};

/// This terminal in raw mode (`-t`: every key goes to the container's
/// terminal, whose line discipline does the echo and ^C), restored on drop.
pub(crate) struct RawMode {
    saved: rustix::termios::Termios,
}

impl RawMode {
    /// `None` if stdin is not a terminal.
    pub(crate) fn enter() -> Result<Option<RawMode>> {
        let stdin = std::io::stdin();
        if !rustix::termios::isatty(stdin.as_fd()) {
            return Ok(None);
        }
        let saved =
            rustix::termios::tcgetattr(stdin.as_fd()).context("reading the terminal's mode")?;
        let mut raw = saved.clone();
        raw.make_raw();
        rustix::termios::tcsetattr(stdin.as_fd(), rustix::termios::OptionalActions::Now, &raw)
            .context("putting the terminal in raw mode")?;
        Ok(Some(RawMode { saved }))
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let _ = rustix::termios::tcsetattr(
            std::io::stdin().as_fd(),
            rustix::termios::OptionalActions::Now,
            &self.saved,
        );
    }
}

/// The signals an attached command passes on to the container's main
/// process, as docker's sig-proxy does; SIGWINCH is a window size change
/// for a TTY instead.
const FORWARDED: &[i32] = &[
    libc::SIGINT,
    libc::SIGTERM,
    libc::SIGHUP,
    libc::SIGQUIT,
    libc::SIGUSR1,
    libc::SIGUSR2,
    libc::SIGWINCH,
];

/// Catches the signals to pass on; set up before the container starts,
/// so that none ends this command and leaves the container running.
pub fn catch_signals() -> Result<Signals> {
    Signals::new(FORWARDED).context("setting up the forwarding of signals")
}

/// How an attached session is wired.
pub struct Session {
    pub signals: Signals,
    /// This command's stdin goes to the container's.
    pub stdin: bool,
    /// The container has a terminal.
    pub tty: bool,
    pub detach_keys: DetachKeys,
    /// Print the container's output from its start (`run`), or from now
    /// (`attach`).
    pub from_start: bool,
}

/// Runs an attached session until the container exits (its status) or the
/// user detaches (0).
pub fn session(sandbox: &Sandbox, c: &ContainerRecord, mut s: Session) -> Result<u8> {
    let attach = if s.stdin || s.tty {
        Some(Arc::new(Mutex::new(
            sandbox.attach(c).context("attaching to the container")?,
        )))
    } else {
        None
    };
    // Raw mode only when the input goes to a terminal of the container's.
    let raw = Arc::new(Mutex::new(if s.tty && s.stdin {
        RawMode::enter()?
    } else {
        None
    }));
    // Restores the terminal on every way out of here, a panic included
    // (the stdin thread holds the mode too, until it detaches).
    let _restore = Restore(&raw);
    if let (true, Some(a)) = (s.tty, &attach) {
        send_winsize(a);
    }
    // "From now" is fixed before the first key can reach the container,
    // so that nothing it answers is missed.
    let from_offset = (!s.from_start).then(|| sandbox.log_end(c));
    let handle = s.signals.handle();
    let code = std::thread::scope(|scope| {
        {
            let attach = attach.clone();
            let signals = &mut s.signals;
            let tty = s.tty;
            scope.spawn(move || forward_signals(sandbox, c, signals, tty, attach.as_ref()));
        }
        if let (true, Some(a)) = (s.stdin, attach.clone()) {
            let raw = Arc::clone(&raw);
            let keys = s.detach_keys.0.clone();
            // Not scoped: a read of stdin cannot be interrupted, so this
            // thread ends with the process.
            std::thread::spawn(move || feed_stdin(&a, keys, &raw));
        }
        let mut out = std::io::stdout().lock();
        let mut err = std::io::stderr().lock();
        // Each stream to its own, as docker's attached run does.
        let code = sandbox.copy_log_streams(
            c,
            &mut |stream, bytes| match stream {
                Stream::Stdout => out.write_all(bytes).and_then(|()| out.flush()),
                Stream::Stderr => err.write_all(bytes).and_then(|()| err.flush()),
            },
            LogOptions {
                follow: true,
                from_offset,
                ..Default::default()
            },
        );
        // Ends the forwarding thread, which the scope then joins.
        handle.close();
        code
    });
    Ok(code?.map_or(1, |c| (c & 0xff) as u8))
}

/// Takes this terminal out of raw mode when dropped.
struct Restore<'a>(&'a Mutex<Option<RawMode>>);

impl Drop for Restore<'_> {
    fn drop(&mut self) {
        drop(self.0.lock().map(|mut r| r.take()));
    }
}

/// Sends this terminal's size to the container's; nothing if stdin is not
/// a terminal.
fn send_winsize(attach: &Mutex<sandbox::attach::Attach>) {
    if let Ok(size) = rustix::termios::tcgetwinsize(std::io::stdin().as_fd()) {
        if let Ok(mut a) = attach.lock() {
            // A monitor gone: the container has ended, which the log shows.
            let _ = a.send_winsize(size.ws_row, size.ws_col);
        }
    }
}

/// Copies stdin to the container until it ends (then says so) or the
/// detach keys are typed (then restores the terminal and exits 0, the
/// container running on).
fn feed_stdin(
    attach: &Mutex<sandbox::attach::Attach>,
    keys: Vec<u8>,
    raw: &Mutex<Option<RawMode>>,
) {
    let mut detacher = Detacher::new(DetachKeys(keys));
    let mut stdin = std::io::stdin().lock();
    let mut buf = [0u8; 8192];
    let mut send = Vec::new();
    loop {
        let n = match stdin.read(&mut buf) {
            Ok(0) | Err(_) => {
                if let Ok(mut a) = attach.lock() {
                    let _ = a.send_eof();
                }
                return;
            }
            Ok(n) => n,
        };
        send.clear();
        let detached = detacher.feed(&buf[..n], &mut send);
        if !send.is_empty() {
            if let Ok(mut a) = attach.lock() {
                if a.send_stdin(&send).is_err() {
                    // The monitor is gone with the container.
                    return;
                }
            }
        }
        if detached {
            drop(raw.lock().map(|mut r| r.take()));
            // Straight to the descriptor: the log's copier holds the lock
            // of std's stderr.
            let _ = rustix::io::write(
                std::io::stderr().as_fd(),
                b"\nstasis: detached; the container runs on\n",
            );
            std::process::exit(0);
        }
    }
}

/// Passes each signal this command gets to the container, until the
/// iterator is closed. The container's command decides what a signal does:
/// as PID 1 of its own PID namespace, one it does not handle is ignored by
/// the kernel (as in docker; `--init` puts stasis-pause there instead).
fn forward_signals(
    sandbox: &Sandbox,
    c: &ContainerRecord,
    signals: &mut Signals,
    tty: bool,
    attach: Option<&Arc<Mutex<sandbox::attach::Attach>>>,
) {
    for raw in signals.forever() {
        if raw == libc::SIGWINCH {
            if let (true, Some(a)) = (tty, attach) {
                send_winsize(a);
            }
            continue;
        }
        let Some(signal) = rustix::process::Signal::from_named_raw(raw) else {
            continue;
        };
        if let Err(e) = sandbox.kill_container(c, signal) {
            // Exited meanwhile: following the log ends this command soon.
            if !e.is_not_running() {
                eprintln!(
                    "stasis: forwarding signal {raw} to the container: {:#}",
                    anyhow::Error::from(e)
                );
            }
        }
    }
}

/// `stasis attach`: to a running container, from now on.
pub fn run(global: &Global, args: &Args) -> Result<u8> {
    let sandbox = open(global)?;
    let c = sandbox.find_container(&args.container.container)?;
    if !sandbox.container_status(&c).is_running() {
        return Err(Refusal::conflict(format!(
            "container {} is not running: it cannot be attached to",
            c.name
        ))
        .into());
    }
    let signals = catch_signals()?;
    session(
        &sandbox,
        &c,
        Session {
            signals,
            stdin: c.stdio.open_stdin,
            tty: c.stdio.tty,
            detach_keys: args.detach_keys.clone(),
            from_start: false,
        },
    )
}
