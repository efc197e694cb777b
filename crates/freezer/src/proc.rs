//! `/proc/PID/cgroup` and `/proc/PID/status`: which cgroup a process is in.
//!
//! `/proc/PID/cgroup` has one line per hierarchy, `id:controllers:path`: v1
//! lines name their controllers (`6:freezer:/a`), the v2 line is `0::/a`.
//! Paths are relative to the reader's cgroup namespace root; a cgroup outside
//! it shows as `/..`-prefixed, and a removed one ends in ` (deleted)`.

use std::io;
use std::path::Path;

use crate::error::{Error, Result};
use crate::cgroup::Version;

/// Reads a process's cgroup path in the hierarchy of `version`, as written in
/// `/proc/PID/cgroup`. `None` if the process is in no cgroup of that kind.
pub fn cgroup_of(proc_root: &Path, pid: u32, version: Version) -> Result<Option<String>> {
    let path = proc_root.join(pid.to_string()).join("cgroup");
    let text = read_proc(&path, pid)?;
    Ok(find_line(&text, version).map(str::to_owned))
}

/// Reads the cgroup path of `version` from `/proc/self/cgroup`.
pub fn own_cgroup(proc_root: &Path, version: Version) -> Result<Option<String>> {
    let path = proc_root.join("self/cgroup");
    let text = crate::kernfs::read_text(&path).map_err(|source| Error::Read { path, source })?;
    Ok(find_line(&text, version).map(str::to_owned))
}

/// Whether `/proc` shows the initial PID namespace, so that `/proc/1` is the
/// host's init. Kernel threads exist only there, and PID 2 is always
/// `kthreadd`: `/proc` is the host's exactly when PID 2 is a kernel thread.
pub fn shows_initial_pid_namespace(proc_root: &Path) -> Result<bool> {
    const PF_KTHREAD: u64 = 0x0020_0000;
    let path = proc_root.join("2/stat");
    let text = match crate::kernfs::read_text(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(source) => return Err(Error::Read { path, source }),
    };
    // The command name in parentheses may hold spaces: count fields after it.
    let flags = text
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().nth(6))
        .and_then(|f| f.parse::<u64>().ok())
        .ok_or_else(|| Error::Parse {
            path: path.clone(),
            line: text.clone(),
        })?;
    Ok(flags & PF_KTHREAD != 0)
}

/// Lists the PIDs in a `cgroup.procs` file.
pub fn read_pids(procs: &Path) -> Result<Vec<u32>> {
    let text = crate::kernfs::read(procs)?;
    text.lines()
        .map(|l| {
            l.trim().parse().map_err(|_| Error::Parse {
                path: procs.to_owned(),
                line: l.to_owned(),
            })
        })
        .collect()
}

fn read_proc(path: &Path, pid: u32) -> Result<String> {
    crate::kernfs::read_text(path).map_err(|source| {
        if source.kind() == io::ErrorKind::NotFound
            || source.raw_os_error() == Some(rustix::io::Errno::SRCH.raw_os_error())
        {
            Error::NoSuchProcess { pid }
        } else {
            Error::Read {
                path: path.to_owned(),
                source,
            }
        }
    })
}

fn find_line(text: &str, version: Version) -> Option<&str> {
    text.lines().find_map(|line| {
        let mut parts = line.splitn(3, ':');
        let id = parts.next()?;
        let controllers = parts.next()?;
        let path = parts.next()?;
        let matches = match version {
            Version::V2 => id == "0" && controllers.is_empty(),
            Version::V1 => controllers.split(',').any(|c| c == "freezer"),
        };
        matches.then_some(path)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const CGROUP: &str = "9:name=systemd:/\n6:freezer:/stasis/abc\n4:memory:/x\n0::/user.slice/a\n";

    #[test]
    fn picks_the_hierarchy_line() {
        assert_eq!(find_line(CGROUP, Version::V1), Some("/stasis/abc"));
        assert_eq!(find_line(CGROUP, Version::V2), Some("/user.slice/a"));
        assert_eq!(find_line("4:memory:/x\n", Version::V1), None);
        assert_eq!(find_line("4:cpu,freezer:/y\n", Version::V1), Some("/y"));
    }
}
