//! `exec`: a command run in a running container's namespaces (its mount
//! and PID namespaces: `/proc/PID/ns/mnt` and `ns/pid` of its main process)
//! and its cgroup leaves, confined as the container is, with the caller's
//! stdio, pipes to the caller, or a pseudo-terminal of its own
//! ([`ExecStdio`]). A service's execs can die with it (`PR_SET_PDEATHSIG`).

use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::process::Stdio;

use crate::container::{exit_code, parse_env, ContainerRecord, ContainerStatus};
use crate::error::{Error, Kind, Result};
use crate::ns::{self, Namespace};
use crate::spawn::{spawn_member, MemberSpawn};
use crate::Sandbox;

/// The standard streams of an exec'd command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExecStdio {
    /// This process's own.
    Inherit,
    /// `/dev/null` for all three (a detached exec).
    Null,
    /// Pipes to the caller: stdout and stderr apart, and stdin if `stdin`
    /// (else `/dev/null`).
    Pipes { stdin: bool },
    /// A new pseudo-terminal, its controlling terminal in a session of its
    /// own; the caller holds the master.
    Tty,
}

/// A running exec'd command and the caller's ends of its streams.
#[derive(Debug)]
pub struct ExecChild {
    /// Always `Some` once returned (taken by whoever waits for it).
    pub child: Option<std::process::Child>,
    /// [`ExecStdio::Tty`]: the terminal's master, which reads end of file
    /// (EIO) once no process holds the terminal.
    pub master: Option<OwnedFd>,
    /// [`ExecStdio::Pipes`]: the write end of its stdin, if asked for.
    pub stdin: Option<OwnedFd>,
    /// [`ExecStdio::Pipes`]: the read ends of its stdout and stderr.
    pub stdout: Option<OwnedFd>,
    pub stderr: Option<OwnedFd>,
}

/// How to run an exec'd command.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExecOptions {
    pub argv: Vec<String>,
    /// `KEY=VALUE`, over the container's environment.
    pub env: Vec<String>,
    /// Default: the container's.
    pub workdir: Option<PathBuf>,
    /// SIGKILL it when the calling thread ends (a service's execs).
    pub die_with_parent: bool,
}

impl Sandbox {
    /// Runs a command in a running container's namespaces and cgroup, with
    /// this process's stdio; returns its exit status. Refused while paused.
    /// A command that cannot start is [`Error::CommandNotFound`],
    /// [`Error::CommandNotExecutable`] or [`Error::Workdir`]
    /// ([`Error::command_exit_code`] gives docker's status for each).
    pub fn exec(
        &self,
        c: &ContainerRecord,
        argv: Vec<String>,
        env: Vec<String>,
        workdir: Option<PathBuf>,
    ) -> Result<i32> {
        let mut child = self.exec_spawn(c, argv, env, workdir)?;
        let status = child.wait().map_err(Error::WaitChild)?;
        Ok(exit_code(status))
    }

    /// Starts the command as [`Sandbox::exec`] runs it and returns it
    /// running, for a caller that passes signals on to it before it waits.
    pub fn exec_spawn(
        &self,
        c: &ContainerRecord,
        argv: Vec<String>,
        env: Vec<String>,
        workdir: Option<PathBuf>,
    ) -> Result<std::process::Child> {
        let options = ExecOptions {
            argv,
            env,
            workdir,
            die_with_parent: false,
        };
        self.exec_with(c, options, ExecStdio::Inherit)?
            .child
            .ok_or(Error::WaitChild(std::io::ErrorKind::NotFound.into()))
    }

    /// `exec -t`: runs a command as [`Sandbox::exec`] does, but on a new
    /// pseudo-terminal (its controlling terminal, in a session of its
    /// own); returns it running, with the terminal's master, which the
    /// caller copies to and from until it reads end of file (EIO).
    pub fn exec_tty(
        &self,
        c: &ContainerRecord,
        argv: Vec<String>,
        env: Vec<String>,
        workdir: Option<PathBuf>,
    ) -> Result<(std::process::Child, OwnedFd)> {
        let options = ExecOptions {
            argv,
            env,
            workdir,
            die_with_parent: false,
        };
        let running = self.exec_with(c, options, ExecStdio::Tty)?;
        match (running.child, running.master) {
            (Some(child), Some(master)) => Ok((child, master)),
            _ => Err(Error::Pty(std::io::Error::other(
                "no terminal was made for the exec",
            ))),
        }
    }

    /// Starts a command in a running container's namespaces and cgroup, as
    /// [`Sandbox::exec`] does, with the streams `stdio` says. It forks into
    /// the container's namespaces: call it from a single-threaded process
    /// or a thread kept for it (as the service's spawner).
    pub fn exec_with(
        &self,
        c: &ContainerRecord,
        options: ExecOptions,
        stdio: ExecStdio,
    ) -> Result<ExecChild> {
        let mut spec = self.member_spec(c, options.argv, options.env, options.workdir)?;
        spec.die_with_parent = options.die_with_parent;
        let program = spec.argv.first().cloned().unwrap_or_default();
        let mut running = ExecChild {
            child: None,
            master: None,
            stdin: None,
            stdout: None,
            stderr: None,
        };
        let child = match stdio {
            ExecStdio::Inherit => spawn_member(spec, |_| {})?,
            ExecStdio::Null => spawn_member(spec, |cmd| {
                cmd.stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null());
            })?,
            ExecStdio::Tty => {
                spec.new_session = true;
                spec.controlling_tty = true;
                let (master, slave) = crate::monitor::open_pty().map_err(Error::Pty)?;
                let dup = || slave.try_clone().map(Stdio::from).map_err(Error::Pty);
                let (i, o, e) = (dup()?, dup()?, dup()?);
                let child = spawn_member(spec, move |cmd| {
                    cmd.stdin(i).stdout(o).stderr(e);
                })?;
                // The child's copies only: the master reads end of file
                // once the command and what it started have closed the
                // terminal.
                drop(slave);
                running.master = Some(master);
                child
            }
            ExecStdio::Pipes { stdin } => {
                let pipe = || {
                    rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).map_err(|e| {
                        Error::SpawnCommand {
                            program: program.clone(),
                            source: e.into(),
                        }
                    })
                };
                let (out_read, out_write) = pipe()?;
                let (err_read, err_write) = pipe()?;
                let in_read = if stdin {
                    let (r, w) = pipe()?;
                    running.stdin = Some(w);
                    Some(r)
                } else {
                    None
                };
                running.stdout = Some(out_read);
                running.stderr = Some(err_read);
                spawn_member(spec, move |cmd| {
                    cmd.stdin(in_read.map_or_else(Stdio::null, Stdio::from))
                        .stdout(Stdio::from(out_write))
                        .stderr(Stdio::from(err_write));
                })?
            }
        };
        running.child = Some(child);
        Ok(running)
    }

    /// What a command run in a running container (an exec, a health check)
    /// needs: its pod's namespaces, its mount namespace when it has one,
    /// its leaf, its environment with `env` added. Refused while paused.
    pub(crate) fn member_spec(
        &self,
        c: &ContainerRecord,
        argv: Vec<String>,
        env: Vec<String>,
        workdir: Option<PathBuf>,
    ) -> Result<MemberSpawn> {
        match self.container_status(c) {
            ContainerStatus::Running => {}
            ContainerStatus::Paused => return Err(Error::paused(Kind::Container, &c.name)),
            _ => return Err(Error::not_running(Kind::Container, &c.name)),
        }
        let pod = self.pod(&c.pod)?;
        let process = c
            .process
            .ok_or_else(|| Error::not_running(Kind::Container, &c.name))?;
        // Its main process's mount and PID namespaces: its own, or (for
        // the PID namespace) its pod's. A container from before stasis
        // gave each its own has the host's, and joining those is harmless.
        let mount_ns = ns::open_of(&self.host.proc, process.pid, "mnt")?;
        let pid_ns = ns::open_of(&self.host.proc, process.pid, "pid")?;
        // Opened after the check: make sure the PID was not reused meanwhile.
        if !process.is_alive(&self.host.proc) {
            return Err(Error::not_running(Kind::Container, &c.name));
        }
        let mut joins: Vec<_> = ns::open(&self.pod_dir(&pod), &pod.share)?
            .into_iter()
            .filter(|(ns, _)| *ns != Namespace::Pid)
            .collect();
        joins.push((Namespace::Pid, pid_ns));
        let mut all_env = self.base_env(&pod, c);
        all_env.extend(parse_env(&env)?);
        Ok(MemberSpawn {
            proc: self.host.proc.clone(),
            argv,
            env: all_env,
            workdir: workdir.or_else(|| c.workdir.clone()),
            joins,
            leaf_procs: self.pod_cgroups(&pod)?.leaf_procs(c.id.as_str()),
            rootfs: None,
            rootfs_options: Default::default(),
            mount_ns: Some(mount_ns),
            mount_proc: false,
            new_session: false,
            controlling_tty: false,
            user: c.user,
            new_pid_ns: false,
            // The container's own confinement, as docker's exec has it.
            confine: Some(c.isolation.confine()?),
            die_with_parent: false,
        })
    }
}
