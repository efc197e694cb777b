//! `exec`: a command run in a running container's namespaces (its mount
//! and PID namespaces: `/proc/PID/ns/mnt` and `ns/pid` of its main process)
//! and its cgroup leaves, confined as the container is, with the caller's
//! stdio.

use std::path::PathBuf;

use crate::container::{exit_code, parse_env, ContainerRecord, ContainerStatus};
use crate::error::{Error, Kind, Result};
use crate::ns::{self, Namespace};
use crate::spawn::{spawn_member, MemberSpawn};
use crate::Sandbox;

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
        let spec = self.member_spec(c, argv, env, workdir)?;
        spawn_member(spec, |_| {})
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
    ) -> Result<(std::process::Child, std::os::fd::OwnedFd)> {
        let mut spec = self.member_spec(c, argv, env, workdir)?;
        spec.new_session = true;
        spec.controlling_tty = true;
        let (master, slave) = crate::monitor::open_pty().map_err(Error::Pty)?;
        let dup = || {
            slave
                .try_clone()
                .map(std::process::Stdio::from)
                .map_err(Error::Pty)
        };
        let (i, o, e) = (dup()?, dup()?, dup()?);
        let child = spawn_member(spec, move |cmd| {
            cmd.stdin(i).stdout(o).stderr(e);
        })?;
        // The child's copies only: the master reads end of file once the
        // command and what it started have closed the terminal.
        drop(slave);
        Ok((child, master))
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
        })
    }
}
