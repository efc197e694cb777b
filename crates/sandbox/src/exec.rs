//! `exec`: a command run in a running container's namespaces (its mount
//! namespace too, when it has one: `/proc/PID/ns/mnt` of its main process)
//! and its cgroup leaf, with the caller's stdio.

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
        let spec = self.member_spec(c, argv, env, workdir)?;
        let mut child = spawn_member(spec, |_| {})?;
        let status = child.wait().map_err(Error::WaitChild)?;
        Ok(exit_code(status))
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
        let own_mount = c.rootfs.is_some() || pod.share.contains(&Namespace::Pid);
        let mount_ns = if own_mount {
            let fd = ns::open_of(&self.host.proc, process.pid, "mnt")?;
            // Opened after the check: make sure the PID was not reused meanwhile.
            if !process.is_alive(&self.host.proc) {
                return Err(Error::not_running(Kind::Container, &c.name));
            }
            Some(fd)
        } else {
            None
        };
        let mut all_env = self.base_env(&pod, c);
        all_env.extend(parse_env(&env)?);
        Ok(MemberSpawn {
            proc: self.host.proc.clone(),
            argv,
            env: all_env,
            workdir: workdir.or_else(|| c.workdir.clone()),
            joins: ns::open(&self.pod_dir(&pod), &pod.share)?,
            leaf_procs: self.pod_cgroups(&pod)?.leaf_procs(c.id.as_str()),
            rootfs: None,
            mount_ns,
            mount_proc: false,
            new_session: false,
            user: c.user,
        })
    }
}
