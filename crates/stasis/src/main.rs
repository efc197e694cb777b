//! `stasis`: pause things on Linux.

#![deny(unsafe_code)]

mod cli;
mod commands;
mod exit;
mod filter;
mod flags;
mod health;
mod human;
mod lease;
mod reset;
mod signal;
mod table;
mod target;
mod template;

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cli::Cli::try_parse().unwrap_or_else(|e| cli::exit_usage(e));
    init_logging(cli.log_level);
    match commands::run(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("stasis: {err:#}");
            exit::code_for(&err)
        }
    }
}

fn init_logging(level: cli::LogLevel) {
    let Some(level) = level.as_tracing() else {
        return;
    };
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_max_level(level)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .without_time()
        .init();
}
