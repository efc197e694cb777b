//! `/proc/PID/cgroup`: which cgroup a process is in, and `/proc/PID/stat`:
//! its state, parent, flags and start time.
//!
//! `/proc/PID/cgroup` has one line per hierarchy, `id:controllers:path`: v1
//! lines name their controllers (`6:freezer:/a`), the v2 line is `0::/a`.
//! Paths are relative to the reader's cgroup namespace root; a cgroup outside
//! it shows as `/..`-prefixed, and a removed one ends in ` (deleted)`.
//!
//! `/proc/PID/stat` is one line of space-separated fields; the second, the
//! command name in parentheses, may itself hold spaces and parentheses, so
//! the fields are counted after the *last* `)`. This is the one parser of it
//! in the workspace ([`stat`], [`Stat`]).

use std::io;
use std::path::Path;

use crate::cgroup::Version;
use crate::error::{Error, Result};

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

/// What `/proc/PID/stat` says about a process, as far as stasis needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    /// Field 3, the state letter: `R`, `S`, `D`, `T`, `Z` (zombie), `X`...
    pub state: char,
    /// Field 4, the parent's PID (0 for PID 1 and kernel threads' parent).
    pub ppid: u32,
    /// Field 9, the kernel's `PF_*` flags.
    pub flags: u64,
    /// Field 22, the start time in clock ticks after boot: with the PID, it
    /// names one process for good (a reused PID has a later start time).
    pub start_time: u64,
}

impl Stat {
    /// `PF_KTHREAD`: a kernel thread.
    const KTHREAD: u64 = 0x0020_0000;

    /// Parses the text of a `/proc/PID/stat` file.
    pub fn parse(text: &str) -> Option<Stat> {
        let rest = text.rsplit_once(')')?.1;
        let fields: Vec<&str> = rest.split_whitespace().take(20).collect();
        let mut state = fields.first()?.chars();
        let letter = state.next()?;
        if state.next().is_some() {
            return None;
        }
        Some(Stat {
            state: letter,
            ppid: fields.get(1)?.parse().ok()?,
            flags: fields.get(6)?.parse().ok()?,
            start_time: fields.get(19)?.parse().ok()?,
        })
    }

    /// A zombie, or a task being reaped: it runs no more.
    pub fn is_dead(&self) -> bool {
        matches!(self.state, 'Z' | 'X' | 'x')
    }

    /// A kernel thread.
    pub fn is_kernel_thread(&self) -> bool {
        self.flags & Self::KTHREAD != 0
    }
}

/// Reads `<proc_root>/PID/stat`: [`Error::NoSuchProcess`] if there is no
/// such process, [`Error::Parse`] if the line is not what the kernel writes.
pub fn stat(proc_root: &Path, pid: u32) -> Result<Stat> {
    let path = proc_root.join(pid.to_string()).join("stat");
    let text = read_proc(&path, pid)?;
    Stat::parse(&text).ok_or_else(|| Error::Parse {
        path,
        line: text.trim_end().to_owned(),
    })
}

/// Whether `/proc` shows the initial PID namespace, so that `/proc/1` is the
/// host's init. Kernel threads exist only there, and PID 2 is always
/// `kthreadd`: `/proc` is the host's exactly when PID 2 is a kernel thread.
pub fn shows_initial_pid_namespace(proc_root: &Path) -> Result<bool> {
    match stat(proc_root, 2) {
        Ok(s) => Ok(s.is_kernel_thread()),
        Err(Error::NoSuchProcess { .. }) => Ok(false),
        Err(e) => Err(e),
    }
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
    fn parses_stat_lines_whose_command_holds_parentheses() {
        let line = "42 (a b) c) S 7 42 42 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 1234 0 0\n";
        assert_eq!(
            Stat::parse(line),
            Some(Stat {
                state: 'S',
                ppid: 7,
                flags: 4_194_560,
                start_time: 1234
            })
        );
        let kthreadd = "2 (kthreadd) S 0 0 0 0 -1 2129984 0 0 0 0 0 0 0 0 20 0 1 0 3 0 0";
        let k = Stat::parse(kthreadd).expect("kthreadd");
        assert!(k.is_kernel_thread() && !k.is_dead());
        assert!(
            Stat::parse("9 (z) Z 1 9 9 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 5")
                .expect("zombie")
                .is_dead()
        );
        for bad in [
            "",
            "42 (x",
            "42 (x) S 1",
            "42 (x) SS 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9",
        ] {
            assert_eq!(Stat::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn reads_this_process() {
        let me = stat(Path::new("/proc"), std::process::id()).expect("self");
        assert!(me.start_time > 0);
        assert_eq!(
            me.ppid,
            rustix::process::getppid().map_or(0, |p| p.as_raw_nonzero().get() as u32)
        );
        assert!(stat(Path::new("/proc"), u32::MAX)
            .expect_err("none")
            .is_not_found());
    }

    #[test]
    fn picks_the_hierarchy_line() {
        assert_eq!(find_line(CGROUP, Version::V1), Some("/stasis/abc"));
        assert_eq!(find_line(CGROUP, Version::V2), Some("/user.slice/a"));
        assert_eq!(find_line("4:memory:/x\n", Version::V1), None);
        assert_eq!(find_line("4:cpu,freezer:/y\n", Version::V1), Some("/y"));
    }
}
