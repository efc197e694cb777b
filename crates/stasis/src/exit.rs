//! Exit codes, documented in `--help` and the README.

use std::process::ExitCode;

pub const FAILURE: u8 = 1;
pub const USAGE: u8 = 2;
pub const NOT_FOUND: u8 = 3;
pub const CONFLICT: u8 = 4;
pub const REFUSED: u8 = 5;
pub const PERMISSION: u8 = 6;

/// The exit code for an error, from the sandbox or freezer error in its chain.
pub fn code_for(err: &anyhow::Error) -> ExitCode {
    let code = err
        .chain()
        .find_map(|e| {
            e.downcast_ref::<sandbox::Error>()
                .map(sandbox_code)
                .or_else(|| e.downcast_ref::<freezer::Error>().map(freezer_code))
        })
        .unwrap_or(FAILURE);
    ExitCode::from(code)
}

fn sandbox_code(e: &sandbox::Error) -> u8 {
    if let sandbox::Error::Freezer(f) = e {
        freezer_code(f)
    } else if let Some(code) = e.command_exit_code(true) {
        // A command that could not start: docker's 126/127 (only `exec`
        // and `run` produce these).
        code
    } else if e.is_not_found() {
        NOT_FOUND
    } else if e.is_conflict() {
        CONFLICT
    } else if e.is_invalid() {
        USAGE
    } else if e.is_permission_denied() {
        PERMISSION
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
