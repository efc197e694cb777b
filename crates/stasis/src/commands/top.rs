//! `stasis top`: a container's processes, as docker's `top` shows them:
//! the host's `ps` (default `-ef`, or the options given) filtered to the
//! PIDs in the container's cgroup leaf.

use std::collections::BTreeSet;
use std::process::Command;

use anyhow::{bail, Context, Result};

use crate::commands::{open, Global};
use crate::exit::Refusal;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The container
    #[arg(value_name = "CONTAINER")]
    pub container: String,
    /// Options for ps (default -ef)
    #[arg(
        value_name = "PS OPTIONS",
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    pub ps_options: Vec<String>,
}

pub fn run(global: &Global, args: &Args) -> Result<()> {
    let sandbox = open(global)?;
    let c = sandbox.find_container(&args.container)?;
    if !sandbox.container_status(&c).is_running() {
        return Err(Refusal::conflict(format!("container {} is not running", c.name)).into());
    }
    let pids: BTreeSet<u32> = sandbox.container_pids(&c)?.into_iter().collect();
    let options = if args.ps_options.is_empty() {
        vec!["-ef".to_owned()]
    } else {
        args.ps_options.clone()
    };
    let out = Command::new("ps")
        .args(&options)
        .output()
        .context("running ps")?;
    if !out.status.success() {
        bail!(
            "ps {}: {}",
            options.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let text = String::from_utf8_lossy(&out.stdout);
    print!("{}", filter(&text, &pids).map_err(Refusal::usage)?);
    Ok(())
}

/// The header and the lines of `ps` output whose PID is in `pids`.
pub(crate) fn filter(text: &str, pids: &BTreeSet<u32>) -> Result<String, String> {
    let mut lines = text.lines();
    let header = lines.next().unwrap_or_default();
    let column = header
        .split_whitespace()
        .position(|h| h == "PID")
        .ok_or_else(|| "couldn't find the PID field in the ps output".to_owned())?;
    let mut out = format!("{header}\n");
    for line in lines {
        let pid = line
            .split_whitespace()
            .nth(column)
            .and_then(|p| p.parse::<u32>().ok());
        if pid.is_some_and(|p| pids.contains(&p)) {
            out.push_str(line);
            out.push('\n');
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_containers_pids_are_kept() {
        let text = "UID PID PPID C STIME TTY TIME CMD\nroot 1 0 0 00:00 ? 00:00:01 init\nroot 42 1 0 00:00 ? 00:00:00 sleep 100\n";
        let kept = filter(text, &BTreeSet::from([42])).expect("filtered");
        assert_eq!(
            kept,
            "UID PID PPID C STIME TTY TIME CMD\nroot 42 1 0 00:00 ? 00:00:00 sleep 100\n"
        );
        assert!(filter("USER COMMAND\n", &BTreeSet::new()).is_err());
    }
}
