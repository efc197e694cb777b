//! `stasis logs`: a container's stdout (to stdout) and stderr (to stderr),
//! as its monitor kept them apart, with docker's `--tail`, `--since` and
//! `-t`.

use std::io::Write;

use anyhow::Result;
use sandbox::logs::{LogOptions, Stream};

use crate::commands::{open, Global};
use crate::flags;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Keep printing until the container exits
    #[arg(short, long)]
    pub follow: bool,
    /// Only the last N lines ("all": every line)
    #[arg(short = 'n', long, value_name = "N", value_parser = parse_tail)]
    pub tail: Option<Tail>,
    /// Only lines since TIME: RFC 3339, a unix timestamp, or a duration back from now (10m)
    #[arg(long, value_name = "TIME", value_parser = flags::parse_time)]
    pub since: Option<std::time::SystemTime>,
    /// Prefix each line with the time it was written (RFC 3339, nanoseconds)
    #[arg(short, long)]
    pub timestamps: bool,
    #[command(flatten)]
    pub container: flags::ContainerName,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tail {
    All,
    Last(usize),
}

fn parse_tail(s: &str) -> Result<Tail, String> {
    if s == "all" {
        return Ok(Tail::All);
    }
    s.parse()
        .map(Tail::Last)
        .map_err(|_| format!("{s:?} is not a number of lines (or \"all\")"))
}

pub fn run(global: &Global, args: &Args) -> Result<()> {
    let sandbox = open(global)?;
    let c = sandbox.find_container(&args.container.container)?;
    let mut out = std::io::stdout().lock();
    let mut err = std::io::stderr().lock();
    let opts = LogOptions {
        follow: args.follow,
        tail: match args.tail {
            Some(Tail::Last(n)) => Some(n),
            Some(Tail::All) | None => None,
        },
        since: args.since,
        timestamps: args.timestamps,
        from_offset: None,
    };
    sandbox.copy_log_streams(
        &c,
        &mut |stream, bytes| match stream {
            Stream::Stdout => out.write_all(bytes).and_then(|()| out.flush()),
            Stream::Stderr => err.write_all(bytes).and_then(|()| err.flush()),
        },
        opts,
    )?;
    Ok(())
}
