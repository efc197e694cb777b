//! The monitor: the parent of a container's process, like conmon. It starts
//! the process in the pod's namespaces and the container's cgroup leaf,
//! sends its stdout and stderr to the log, records when it started and how
//! it ended, and reaps whatever the container orphans meanwhile (it is a
//! child subreaper). It reports on `ready` — `started <pid>` or
//! `error: <why>` — and closes it, so the CLI can return at once.

use std::fs::OpenOptions;
use std::io::Write;
use std::process::Stdio;

use rustix::process::{WaitOptions, WaitStatus};

use crate::cgroups::PodCgroups;
use crate::container::{ContainerRecord, ExitRecord};
use crate::error::{io_err, Error, Kind, Result};
use crate::id::Id;
use crate::ns::{self, Namespace};
use crate::process::ProcessRef;
use crate::spawn::{spawn_member, MemberSpawn};
use crate::{now, Sandbox};

impl Sandbox {
    /// Runs the monitor of container `id` until its process ends. Call it
    /// in a process of its own (single-threaded: it switches its PID
    /// namespace for children).
    pub fn run_monitor(&self, id: &Id, mut ready: impl Write) -> Result<()> {
        rustix::process::set_child_subreaper(Some(rustix::process::getpid())).map_err(|e| {
            Error::Spawn {
                what: "becoming a subreaper".into(),
                source: e.into(),
            }
        })?;
        // It outlives the command that started it: hold no directory busy.
        std::env::set_current_dir("/").map_err(io_err("changing directory to", "/"))?;
        let container = self.container(id)?;
        let started = self.start_process(&container);
        let child = match started {
            Ok(child) => child,
            Err(e) => {
                let code = match &e {
                    Error::Spawn { source, .. }
                        if source.kind() == std::io::ErrorKind::NotFound =>
                    {
                        127
                    }
                    _ => 126,
                };
                self.record(id, |c| {
                    c.exit = Some(ExitRecord {
                        code,
                        finished: now(),
                        error: Some(format!("{e}: {}", source_text(&e))),
                    })
                })?;
                let _ = writeln!(ready, "error: {e}: {}", source_text(&e));
                return Ok(());
            }
        };
        let pid = child.id();
        let process = ProcessRef::of(pid);
        let monitor = ProcessRef::of(std::process::id());
        self.record(id, |c| {
            c.process = process;
            c.monitor = monitor;
            c.started = Some(now());
        })?;
        let _ = writeln!(ready, "started {pid}");
        let _ = ready.flush();
        drop(ready);
        // Reap everything; the main process's end is the container's.
        let code = loop {
            match rustix::process::wait(WaitOptions::empty()) {
                Ok(Some((p, status))) if p.as_raw_nonzero().get() as u32 == pid => {
                    break code_of(status)
                }
                Ok(_) => {}
                Err(rustix::io::Errno::INTR) => {}
                Err(e) => {
                    return Err(Error::Spawn {
                        what: "waiting for the container".into(),
                        source: e.into(),
                    })
                }
            }
        };
        drop(child);
        self.record(id, |c| {
            c.exit = Some(ExitRecord {
                code,
                finished: now(),
                error: None,
            })
        })
    }

    fn start_process(&self, c: &ContainerRecord) -> Result<std::process::Child> {
        let pod = self.pod(&c.pod)?;
        let log_path = self.log_path(c);
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(io_err("opening the log", &log_path))?;
        let log2 = log
            .try_clone()
            .map_err(io_err("opening the log", &log_path))?;
        let spec = MemberSpawn {
            argv: c.command.clone(),
            env: self.base_env(&pod, c),
            workdir: c.workdir.clone(),
            joins: ns::open(&self.pod_dir(&pod), &pod.share)?,
            leaf_procs: PodCgroups::of(&self.hierarchies, &pod.id)?.leaf_procs(c.id.as_str()),
            rootfs: c.rootfs.clone(),
            mount_ns: None,
            mount_proc: pod.share.contains(&Namespace::Pid),
            new_session: true,
        };
        spawn_member(spec, move |cmd| {
            cmd.stdin(Stdio::null()).stdout(log).stderr(log2);
        })
    }

    /// Updates a container's record under its lock.
    fn record(&self, id: &Id, change: impl FnOnce(&mut ContainerRecord)) -> Result<()> {
        let _lock = self.store.lock_record(Kind::Container, id)?;
        let mut c = self.container(id)?;
        change(&mut c);
        self.store.write(Kind::Container, id, &c)
    }
}

fn code_of(status: WaitStatus) -> i32 {
    if let Some(code) = status.exit_status() {
        code
    } else if let Some(sig) = status.terminating_signal() {
        128 + sig
    } else {
        -1
    }
}

fn source_text(e: &Error) -> String {
    std::error::Error::source(e)
        .map(|s| s.to_string())
        .unwrap_or_default()
}
