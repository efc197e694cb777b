//! `stasis-pause`: the process that anchors a stasis pod, and a drop-in for the
//! Kubernetes pause binary.
//!
//! It holds the pod's namespaces by existing, reaps every child that exits (as
//! PID 1 of a PID namespace that is every orphan of the pod; elsewhere it makes
//! itself a child subreaper), and exits 0 on SIGINT or SIGTERM. `-v` prints the
//! version. Signals are taken synchronously with `rt_sigtimedwait(2)` on a
//! blocked mask, so there are no handlers and nothing runs in signal context.
//!
//! The `release` profile (`cargo build --release`) and the `pause` profile
//! (`cargo build -p stasis-pause --profile pause`, the same artifact alone)
//! build it without std and without libc: a static executable with its own
//! `_start` that needs no loader, a few KiB on disk and three pages resident.
//! The dev and test profiles build a hosted variant of the same code (see
//! `build.rs` for why).
//!
//! What it deliberately does not do: start, supervise or signal any other
//! process (it is not an init system like tini or catatonit: nothing to forward
//! signals to), allocate, read configuration or the environment, or log beyond
//! one line on stderr. All unsafe code is in [`sys`].
#![cfg_attr(all(stasis_nolibc, not(test)), no_std)]
#![cfg_attr(not(test), no_main)]
// Under the test harness the harness owns `main`, so the program is unreachable.
#![cfg_attr(test, allow(dead_code))]

#[cfg(all(stasis_nolibc, not(test), not(panic = "abort")))]
compile_error!(
    "the `pause` profile must set panic = \"abort\": a binary without std cannot unwind"
);

mod args;
#[allow(unsafe_code)]
mod sys;

use args::Action;
use sys::{SigSet, SIGCHLD, SIGINT, SIGTERM, STDERR, STDOUT};

const NAME: &[u8] = env!("CARGO_PKG_NAME").as_bytes();
const VERSION: &[u8] =
    concat!(env!("CARGO_PKG_NAME"), " ", env!("CARGO_PKG_VERSION"), "\n").as_bytes();

/// Called by the entry point in [`sys`] with the process arguments.
fn run(args: sys::Args) -> ! {
    match args::parse(args.iter().skip(1)) {
        Action::Version => {
            sys::write_parts(STDOUT, &[VERSION]);
            sys::exit(0)
        }
        Action::Usage(arg) => {
            sys::write_parts(
                STDERR,
                &[
                    NAME,
                    b": unexpected argument '",
                    arg,
                    b"' (usage: stasis-pause [-v|--version])\n",
                ],
            );
            sys::exit(2)
        }
        Action::Pause => pause(),
    }
}

fn pause() -> ! {
    // Whatever directory or descriptors our starter had must not be pinned for
    // the pod's lifetime (an unmountable volume, a pipe that never sees EOF).
    // Neither can fail in a way worth refusing to start over.
    let _ = sys::chdir(c"/");
    sys::close_from(3);

    if sys::getpid() != 1 {
        // Orphans of our descendants would otherwise go to the host's init and
        // the pod would lose track of them.
        let how: &[u8] = match sys::set_child_subreaper() {
            Ok(()) => b"reaping orphans of its descendants as a child subreaper\n",
            Err(_) => b"and could not become a child subreaper: orphans go elsewhere\n",
        };
        sys::write_parts(STDERR, &[NAME, b": not running as PID 1; ", how]);
    }

    const WANTED: SigSet = SigSet::of(&[SIGINT, SIGTERM, SIGCHLD]);
    if let Err(errno) = WANTED.block() {
        fail(b"cannot block signals", errno);
    }
    // Children that exited before the mask was in place raised a SIGCHLD that
    // was discarded (default disposition); collect them now.
    reap_all();
    loop {
        match WANTED.wait() {
            Ok(SIGCHLD) => reap_all(),
            Ok(SIGINT | SIGTERM) => sys::exit(0),
            Ok(_) | Err(sys::EINTR | sys::EAGAIN) => {}
            Err(errno) => fail(b"cannot wait for signals", errno),
        }
    }
}

/// Reaps until nothing is left to reap: one SIGCHLD may stand for any number of
/// exits, since a pending signal is not queued twice.
fn reap_all() {
    while let Ok(true) = sys::reap_one() {}
}

fn fail(what: &[u8], errno: isize) -> ! {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    let mut n = errno.unsigned_abs();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    sys::write_parts(
        STDERR,
        &[NAME, b": ", what, b": errno ", &digits[at..], b"\n"],
    );
    sys::exit(1)
}

#[cfg(all(stasis_nolibc, not(test)))]
#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    // No code path here panics by design; should one, exit the way Rust
    // programs conventionally do rather than spin as PID 1.
    sys::exit(101)
}
