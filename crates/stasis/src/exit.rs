//! Exit codes, documented in `--help` and the README.

use std::process::ExitCode;

/// The table `--help` shows (and the README repeats).
pub const HELP: &str = "\
Exit status:
  0  success
  1  failure (a kernel error; a freeze that timed out, after which the target
     was thawed again, or, if even that failed, left frozen: the message says;
     unpause --wait-healthy that ran out of time, the target left running)
  2  bad usage, a malformed value or target, or an ambiguous ID prefix
  3  no such process, cgroup, container, pod, image or root filesystem (or it
     vanished meanwhile)
  4  conflict: already paused (in any hierarchy), not paused, paused by an
     ancestor, by the other strategy or by its pod, not running, still running,
     a name in use, no lease to renew, or an image in use or with several names
  5  refused: the root cgroup, the host's PID 1, the caller's own cgroup, or a
     container ID that names a QoS, slice, pod or stasis node or a cgroup that
     holds other containers
  6  permission denied (pausing needs root, or write access to the cgroup)
run and exec exit with the command's own status (125: stasis could not start
it, 126: it cannot be run, 127: not found).";

pub const FAILURE: u8 = 1;
pub const USAGE: u8 = 2;
pub const NOT_FOUND: u8 = 3;
pub const CONFLICT: u8 = 4;
pub const REFUSED: u8 = 5;
pub const PERMISSION: u8 = 6;

/// An error of the CLI's own, in the user's words, with the exit status
/// it gives: a request no clap rule could refuse (usage), a lease with
/// nothing to renew (conflict), a target that did not become healthy in
/// time (failure).
#[derive(Debug)]
pub struct Refusal {
    code: u8,
    message: String,
}

impl Refusal {
    fn with(code: u8, message: String) -> Self {
        Refusal { code, message }
    }

    pub fn usage(message: String) -> Self {
        Self::with(USAGE, message)
    }

    pub fn not_found(message: String) -> Self {
        Self::with(NOT_FOUND, message)
    }

    pub fn conflict(message: String) -> Self {
        Self::with(CONFLICT, message)
    }

    pub fn failure(message: String) -> Self {
        Self::with(FAILURE, message)
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Refusal {}

/// The exit code for an error, from the sandbox or freezer error in its chain.
pub fn code_for(err: &anyhow::Error) -> ExitCode {
    ExitCode::from(code_number(err))
}

/// [`code_for`] as a number (for the audit trail and the API's statuses).
pub fn code_number(err: &anyhow::Error) -> u8 {
    err.chain()
        .find_map(|e| {
            e.downcast_ref::<sandbox::Error>()
                .map(sandbox_code)
                .or_else(|| e.downcast_ref::<freezer::Error>().map(freezer_code))
                .or_else(|| e.downcast_ref::<connections::Error>().map(connections_code))
                .or_else(|| e.downcast_ref::<images::Error>().map(images_code))
                .or_else(|| e.downcast_ref::<Refusal>().map(|r| r.code))
        })
        .unwrap_or(FAILURE)
}

fn sandbox_code(e: &sandbox::Error) -> u8 {
    if let sandbox::Error::Freezer(f) = e {
        freezer_code(f)
    } else if let Some(code) = e.command_exit_code(true) {
        // A command that could not start: docker's 126/127 (only `exec`
        // and `run` produce these).
        code
    } else {
        by_kind(
            e.is_not_found(),
            e.is_conflict(),
            e.is_invalid(),
            e.is_permission_denied(),
        )
    }
}

fn images_code(e: &images::Error) -> u8 {
    by_kind(
        e.is_not_found(),
        e.is_conflict(),
        e.is_invalid(),
        e.is_permission_denied(),
    )
}

/// The code of a library error by what its predicates say, in this order.
fn by_kind(not_found: bool, conflict: bool, invalid: bool, denied: bool) -> u8 {
    if not_found {
        NOT_FOUND
    } else if conflict {
        CONFLICT
    } else if invalid {
        USAGE
    } else if denied {
        PERMISSION
    } else {
        FAILURE
    }
}

fn connections_code(e: &connections::Error) -> u8 {
    if e.is_permission_denied() {
        PERMISSION
    } else if e.is_not_found() {
        NOT_FOUND
    } else {
        FAILURE
    }
}

fn freezer_code(e: &freezer::Error) -> u8 {
    if e.is_not_found() {
        NOT_FOUND
    } else if e.is_already_paused() || e.is_not_paused() || e.is_not_running() {
        CONFLICT
    } else if e.is_refused() {
        REFUSED
    } else if e.is_invalid() || e.is_ambiguous() {
        USAGE
    } else if e.is_permission_denied() {
        PERMISSION
    } else {
        FAILURE
    }
}
