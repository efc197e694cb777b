//! Exit codes, documented in `--help` and the README.

use std::process::ExitCode;

pub const FAILURE: u8 = 1;
pub const USAGE: u8 = 2;
pub const NOT_FOUND: u8 = 3;
pub const CONFLICT: u8 = 4;
pub const REFUSED: u8 = 5;
pub const PERMISSION: u8 = 6;

/// The exit code for an error, from the freezer error in its chain.
pub fn code_for(err: &anyhow::Error) -> ExitCode {
    let code = err
        .chain()
        .find_map(|e| e.downcast_ref::<freezer::Error>())
        .map_or(FAILURE, |e| {
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
        });
    ExitCode::from(code)
}
