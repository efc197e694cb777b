//! A fake host for unit tests: `/proc/PID/stat` files, a hybrid pair of
//! cgroup mounts and a state root in a temporary directory, and records
//! written straight into the store. PIDs start above the kernel's
//! `PID_MAX_LIMIT` (4194304), so that nothing a test does can reach a real
//! process even if a rule under test is wrong.

use std::path::{Path, PathBuf};

use freezer::Version;

use crate::container::{ContainerRecord, ExitRecord};
use crate::error::Kind;
use crate::host::Host;
use crate::id::Id;
use crate::pod::PodRecord;
use crate::process::ProcessRef;
use crate::Sandbox;

/// No real process can have this PID or any above it.
pub(crate) const FIRST_PID: u32 = 4_194_305;

pub(crate) struct FakeHost {
    pub dir: PathBuf,
    pub sandbox: Sandbox,
}

impl FakeHost {
    pub(crate) fn new(tag: &str) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "stasis-unit-{tag}-{}-{}",
            std::process::id(),
            Id::generate().expect("id").short()
        ));
        let proc = dir.join("proc");
        std::fs::create_dir_all(proc.join("self")).expect("fake proc");
        // The caller is outside every fake cgroup (the freezer's safety
        // check reads it before a freeze); no PID 2: not the host's /proc.
        std::fs::write(
            proc.join("self/cgroup"),
            "6:freezer:/elsewhere\n0::/elsewhere\n",
        )
        .expect("fake proc/self/cgroup");
        let hierarchies = crate::cgroups::fake::hybrid(&dir.join("cgroup"), &proc);
        let sandbox = Sandbox::open_with(
            &dir.join("store"),
            Host::new(proc, hierarchies).with_controllers(Default::default()),
        )
        .expect("open the fake store");
        FakeHost { dir, sandbox }
    }

    /// A process in the fake `/proc`, with its state letter.
    pub(crate) fn process(&self, pid: u32, state: char, start_time: u64) -> ProcessRef {
        assert!(pid >= FIRST_PID, "fake PIDs stay above PID_MAX_LIMIT");
        let dir = self.dir.join("proc").join(pid.to_string());
        std::fs::create_dir_all(&dir).expect("proc dir");
        std::fs::write(
            dir.join("stat"),
            crate::process::fake_stat(pid, state, start_time),
        )
        .expect("stat");
        ProcessRef { pid, start_time }
    }

    /// A pod record (with its name claimed), as `create_pod` leaves it.
    pub(crate) fn pod(&self, name: &str, implicit: bool, pause: Option<ProcessRef>) -> PodRecord {
        let id = Id::generate().expect("id");
        let record = PodRecord {
            id: id.clone(),
            name: name.into(),
            created: 0,
            share: crate::ns::DEFAULT_SHARE.to_vec(),
            hostname: name.into(),
            labels: Default::default(),
            pause,
            implicit,
            limits: Default::default(),
        };
        let store = self.sandbox.store();
        let _lock = store.lock().expect("lock");
        store.claim_name(Kind::Pod, name, &id).expect("claim");
        store.create_dir(Kind::Pod, &id).expect("dir");
        store.write(Kind::Pod, &id, &record).expect("write");
        record
    }

    /// A container record in `pod`.
    pub(crate) fn container(
        &self,
        name: &str,
        pod: &PodRecord,
        process: Option<ProcessRef>,
        exit: Option<i32>,
    ) -> ContainerRecord {
        self.container_with_id(Id::generate().expect("id"), name, pod, process, exit)
    }

    pub(crate) fn container_with_id(
        &self,
        id: Id,
        name: &str,
        pod: &PodRecord,
        process: Option<ProcessRef>,
        exit: Option<i32>,
    ) -> ContainerRecord {
        let record = ContainerRecord {
            id: id.clone(),
            name: name.into(),
            pod: pod.id.clone(),
            created: 0,
            created_ns: 0,
            command: vec!["true".into()],
            env: vec![],
            workdir: None,
            rootfs: None,
            image: None,
            user: None,
            labels: Default::default(),
            process,
            monitor: None,
            started: None,
            exit: exit.map(|code| ExitRecord {
                code,
                finished: 0,
                error: None,
                oom_killed: false,
                checkpointed: false,
            }),
            auto_remove: false,
            healthcheck: None,
            health: None,
            limits: Default::default(),
            restart: Default::default(),
            restart_count: 0,
            restarting: false,
            stopped: false,
            isolation: Default::default(),
            stdio: Default::default(),
            checkpoint: None,
            checkpointing: false,
        };
        let store = self.sandbox.store();
        let _lock = store.lock().expect("lock");
        store.claim_name(Kind::Container, name, &id).expect("claim");
        store.create_dir(Kind::Container, &id).expect("dir");
        store.write(Kind::Container, &id, &record).expect("write");
        record
    }

    /// The directory of a pod's node (or a leaf) in a fake hierarchy.
    pub(crate) fn cgroup(&self, version: Version, pod: &PodRecord, leaf: Option<&str>) -> PathBuf {
        let mount = match version {
            Version::V1 => "freezer",
            Version::V2 => "unified",
        };
        let node = self
            .dir
            .join("cgroup")
            .join(mount)
            .join(crate::cgroups::TOP)
            .join(pod.id.as_str());
        leaf.map_or(node.clone(), |l| node.join(l))
    }

    /// Freezes a fake cgroup by its own freeze file.
    pub(crate) fn freeze(&self, version: Version, dir: &Path) {
        crate::cgroups::fake::freeze(dir, version);
    }

    /// Marks a v1 leaf frozen because its parent is.
    pub(crate) fn frozen_by_parent_v1(&self, dir: &Path) {
        std::fs::create_dir_all(dir).expect("cgroup dir");
        std::fs::write(dir.join("freezer.state"), "FROZEN\n").expect("state");
        std::fs::write(dir.join("freezer.self_freezing"), "0\n").expect("self");
        std::fs::write(dir.join("freezer.parent_freezing"), "1\n").expect("parent");
    }
}

impl Drop for FakeHost {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
