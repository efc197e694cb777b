//! One module per verb.

pub mod pause;
pub mod state;
pub mod unpause;

use anyhow::Result;

use crate::cli::Command;

pub fn run(command: Command) -> Result<()> {
    match command {
        Command::Pause(args) => pause::run(&args),
        Command::Unpause(args) => unpause::run(&args),
        Command::State(args) => state::run(&args),
    }
}

/// A hint for the most common cause of EPERM/EACCES.
pub(crate) fn permission_hint(err: anyhow::Error) -> anyhow::Error {
    let denied = err
        .chain()
        .find_map(|e| e.downcast_ref::<freezer::Error>())
        .is_some_and(freezer::Error::is_permission_denied);
    if denied && !rustix::process::geteuid().is_root() {
        err.context("permission denied: run stasis as root (or with write access to the cgroup)")
    } else {
        err
    }
}
