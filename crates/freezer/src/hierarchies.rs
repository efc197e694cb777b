//! Which cgroup hierarchies this host has, and resolving targets to cgroups.
//!
//! Detection reads `/proc/self/mountinfo` ([`crate::mountinfo`]): a host is
//! v2-only (one cgroup2 mount), v1-only (a v1 `freezer` hierarchy), or hybrid
//! (both: v1 controllers plus a cgroup2 tree with few or no controllers).
//! On hybrid hosts `auto` uses the v1 freezer, as runc and docker do there.
//! Resolution reads `/proc/PID/cgroup` ([`crate::proc`]) for a process, and
//! walks a hierarchy ([`crate::runtime`]) for another runtime's container.

use std::path::{Component, Path, PathBuf};

use crate::cgroup::{Cgroup, Choice, Hierarchy, Layout, Placement, Target, Version};
use crate::error::{Error, Result};
use crate::mountinfo::{self, CgroupMount};
use crate::proc;
use crate::runtime;
use crate::subgroup;

/// The cgroup hierarchies visible to this process.
#[derive(Debug, Clone)]
pub struct Hierarchies {
    proc_root: PathBuf,
    v1: Option<Hierarchy>,
    v2: Option<Hierarchy>,
    /// Whether `proc_root` shows the initial PID namespace, once read: a
    /// fact of the `/proc` mount this process sees, which no later event
    /// changes (a process that enters another mount namespace does so in a
    /// forked child; this view is not carried there).
    initial_pid_namespace: std::sync::OnceLock<bool>,
}

impl Hierarchies {
    /// Detects the hierarchies from `<proc_root>/self/mountinfo`
    /// (`proc_root` is `/proc` outside tests).
    pub fn detect(proc_root: &Path) -> Result<Self> {
        let path = proc_root.join("self/mountinfo");
        // The first mount of a kind whose top is the hierarchy's root wins
        // (see `from_mounts`), so once both kinds have one, nothing later in
        // the file can change the answer.
        let settled = |mounts: &[CgroupMount]| {
            let top = |v1: bool| {
                mounts.iter().any(|m| {
                    m.root == "/"
                        && if v1 {
                            !m.unified && m.controllers.iter().any(|c| c == "freezer")
                        } else {
                            m.unified
                        }
                })
            };
            top(true) && top(false)
        };
        let mounts = std::fs::File::open(&path)
            .and_then(|f| mountinfo::read_until(f, settled))
            .map_err(|source| Error::Read { path, source })?;
        Ok(Self::from_mounts(proc_root, &mounts))
    }

    /// Builds the view from parsed mounts; the first mount of each kind whose
    /// top is highest in the hierarchy wins.
    pub fn from_mounts(proc_root: &Path, mounts: &[CgroupMount]) -> Self {
        let pick = |want: fn(&CgroupMount) -> bool, version| {
            mounts
                .iter()
                .filter(|m| want(m))
                .min_by_key(|m| m.root.matches('/').count() - usize::from(m.root == "/"))
                .map(|m| Hierarchy {
                    version,
                    mount_point: m.mount_point.clone(),
                    root: m.root.clone(),
                })
        };
        Hierarchies {
            proc_root: proc_root.to_owned(),
            v1: pick(
                |m| !m.unified && m.controllers.iter().any(|c| c == "freezer"),
                Version::V1,
            ),
            v2: pick(|m| m.unified, Version::V2),
            initial_pid_namespace: std::sync::OnceLock::new(),
        }
    }

    /// A view of exactly one hierarchy (a private mount made for us).
    pub fn single(proc_root: &Path, hierarchy: Hierarchy) -> Self {
        let (v1, v2) = match hierarchy.version {
            Version::V1 => (Some(hierarchy), None),
            Version::V2 => (None, Some(hierarchy)),
        };
        Hierarchies {
            proc_root: proc_root.to_owned(),
            v1,
            v2,
            initial_pid_namespace: std::sync::OnceLock::new(),
        }
    }

    /// The `/proc` this view reads.
    pub fn proc_root(&self) -> &Path {
        &self.proc_root
    }

    /// Whether that `/proc` shows the initial PID namespace
    /// ([`proc::shows_initial_pid_namespace`]), read the first time it is
    /// asked (a failed read is not kept).
    pub fn shows_initial_pid_namespace(&self) -> Result<bool> {
        if let Some(known) = self.initial_pid_namespace.get() {
            return Ok(*known);
        }
        let found = proc::shows_initial_pid_namespace(&self.proc_root)?;
        Ok(*self.initial_pid_namespace.get_or_init(|| found))
    }

    /// The layout these mounts make.
    pub fn layout(&self) -> Layout {
        match (&self.v1, &self.v2) {
            (Some(_), Some(_)) => Layout::Hybrid,
            (Some(_), None) => Layout::V1Only,
            (None, Some(_)) => Layout::V2Only,
            (None, None) => Layout::None,
        }
    }

    /// The mounted hierarchy of a version, if any.
    pub fn get(&self, version: Version) -> Option<&Hierarchy> {
        match version {
            Version::V1 => self.v1.as_ref(),
            Version::V2 => self.v2.as_ref(),
        }
    }

    /// The version `choice` means on this host when no path decides it.
    pub fn pick(&self, choice: Choice) -> Result<Version> {
        let version = match choice {
            Choice::V1 => Version::V1,
            Choice::V2 => Version::V2,
            Choice::Auto if self.v1.is_some() => Version::V1,
            Choice::Auto if self.v2.is_some() => Version::V2,
            Choice::Auto => return Err(Error::NoHierarchy { wanted: "freezer" }),
        };
        self.get(version)
            .map(|_| version)
            .ok_or(Error::NoHierarchy {
                wanted: match version {
                    Version::V1 => "v1 freezer",
                    Version::V2 => "v2",
                },
            })
    }

    /// Resolves a target to an existing cgroup directory.
    pub fn resolve(&self, target: &Target, choice: Choice) -> Result<Cgroup> {
        match target {
            Target::Pid(pid) => {
                let version = self.pick(choice)?;
                let cgroup = proc::cgroup_of(&self.proc_root, *pid, version)?.ok_or(
                    Error::NotInHierarchy {
                        pid: *pid,
                        version: version.as_str(),
                    },
                )?;
                let hierarchy = self.get(version).ok_or(Error::NoHierarchy {
                    wanted: version.as_str(),
                })?;
                let resolved = self
                    .at_hierarchy_path(hierarchy, &cgroup)
                    .map_err(|e| match e {
                        Error::InvalidPath { .. } => Error::NotVisible {
                            pid: *pid,
                            cgroup: cgroup.clone(),
                            version: version.as_str(),
                        },
                        other => other,
                    })?;
                // A process the subgroup strategy parked belongs to the
                // cgroup it was moved out of: that is what was paused, and
                // what must be unpaused.
                match resolved.parent() {
                    Some(parent) if resolved.dir.file_name() == Some(subgroup::NAME.as_ref()) => {
                        Ok(parent)
                    }
                    _ => Ok(resolved),
                }
            }
            Target::Cgroup(path) => self.resolve_path(path, choice),
            Target::ContainerId(id) => {
                let hierarchy = self
                    .get(self.pick(choice)?)
                    .ok_or(Error::NoHierarchy { wanted: "freezer" })?;
                let found = runtime::find_container(&hierarchy.mount_point, id)?;
                self.found_cgroup(hierarchy, &found)
            }
            Target::K8sPod(uid) => {
                let hierarchy = self
                    .get(self.pick(choice)?)
                    .ok_or(Error::NoHierarchy { wanted: "freezer" })?;
                let found = runtime::find_pod(&hierarchy.mount_point, uid)?;
                self.found_cgroup(hierarchy, &found)
            }
            Target::RuntimeState { root, id } => {
                let (full_id, init) = runtime::read_state_dir(root, id)?;
                runtime::check_init(&self.proc_root, &full_id, init)?;
                self.resolve(&Target::Pid(init.pid), choice)
                    .map_err(|e| match e {
                        // It exited between the check and the read.
                        Error::NoSuchProcess { pid } => Error::NotRunning { id: full_id, pid },
                        other => other,
                    })
            }
        }
    }

    /// Resolves `target` in the hierarchy `choice` picks, and the same target
    /// in every other mounted hierarchy it is in: a process's cgroup there,
    /// the same cgroup path, the container or pod found there. A hierarchy
    /// where it is not (or not visibly) is left out.
    pub fn place(&self, target: &Target, choice: Choice) -> Result<Placement> {
        let chosen = self.resolve(target, choice)?;
        let mut others = Vec::new();
        for version in [Version::V1, Version::V2] {
            if version == chosen.version() || self.get(version).is_none() {
                continue;
            }
            let found = match target {
                Target::Cgroup(_) => self.counterpart(&chosen, version),
                _ => self.resolve(target, Choice::of(version)),
            };
            match found {
                Ok(cg) => others.push(cg),
                Err(e)
                    if e.is_not_found() || e.is_invalid() || e.is_ambiguous() || e.is_refused() =>
                {
                    tracing::debug!(%target, %version, error = %e, "not in this hierarchy");
                }
                Err(e) => return Err(e),
            }
        }
        Ok(Placement { chosen, others })
    }

    /// [`Hierarchies::place`] for a cgroup already resolved: the same cgroup
    /// path in every other mounted hierarchy where it exists.
    pub fn place_cgroup(&self, chosen: Cgroup) -> Result<Placement> {
        let mut others = Vec::new();
        for version in [Version::V1, Version::V2] {
            if version == chosen.version() || self.get(version).is_none() {
                continue;
            }
            match self.counterpart(&chosen, version) {
                Ok(cg) => others.push(cg),
                Err(e) if e.is_not_found() || e.is_invalid() => {}
                Err(e) => return Err(e),
            }
        }
        Ok(Placement { chosen, others })
    }

    /// The cgroup with `cg`'s path in the hierarchy of `version`.
    pub fn counterpart(&self, cg: &Cgroup, version: Version) -> Result<Cgroup> {
        let hierarchy = self.get(version).ok_or(Error::NoHierarchy {
            wanted: version.as_str(),
        })?;
        self.at_hierarchy_path(hierarchy, &cg.path)
    }

    /// The cgroup at `dir`, an existing directory inside one of the mounted
    /// hierarchies (as a caller that made the cgroup knows it), without
    /// naming it as a [`Target`]. `..` is refused, a missing directory is
    /// [`Error::NoSuchCgroup`].
    pub fn cgroup_at_dir(&self, dir: &Path) -> Result<Cgroup> {
        for hierarchy in [&self.v1, &self.v2].into_iter().flatten() {
            if let Ok(rest) = dir.strip_prefix(&hierarchy.mount_point) {
                let rel = normal_components(rest).ok_or_else(|| Error::InvalidPath {
                    path: dir.display().to_string(),
                    reason: "it contains '..'",
                })?;
                return self.cgroup_at(hierarchy, &join_path(&hierarchy.root, &rel), &rel);
            }
        }
        Err(Error::InvalidPath {
            path: dir.display().to_string(),
            reason: "it is in no mounted freezer hierarchy",
        })
    }

    /// The cgroup a walk below a mount point found.
    fn found_cgroup(&self, hierarchy: &Hierarchy, found: &runtime::Found) -> Result<Cgroup> {
        let rel: Vec<&str> = found.rel.iter().map(String::as_str).collect();
        self.cgroup_at(hierarchy, &join_path(&hierarchy.root, &rel), &rel)
    }

    /// The cgroup this process itself is in, in `version`'s hierarchy, if
    /// that cgroup is visible under the mount.
    pub fn own_cgroup(&self, version: Version) -> Result<Option<Cgroup>> {
        self.cgroup_from_proc(None, version, Check::Stat)
    }

    /// The cgroup a process is in, if visible; `None` for a process that
    /// does not exist or whose cgroup is outside the mount.
    pub fn cgroup_of_pid(&self, pid: u32, version: Version) -> Result<Option<Cgroup>> {
        self.cgroup_from_proc(Some(pid), version, Check::Stat)
    }

    /// [`Hierarchies::own_cgroup`] (`pid` `None`) or
    /// [`Hierarchies::cgroup_of_pid`], its directory by its path alone, not
    /// `stat`ed: for a test of containment, which needs no more (and which
    /// a cgroup that cannot be `stat`ed must not escape).
    pub(crate) fn cgroup_path_from_proc(
        &self,
        pid: Option<u32>,
        version: Version,
    ) -> Result<Option<Cgroup>> {
        self.cgroup_from_proc(pid, version, Check::PathOnly)
    }

    fn cgroup_from_proc(
        &self,
        pid: Option<u32>,
        version: Version,
        check: Check,
    ) -> Result<Option<Cgroup>> {
        let Some(hierarchy) = self.get(version) else {
            return Ok(None);
        };
        let path = match pid {
            None => proc::own_cgroup(&self.proc_root, version)?,
            Some(pid) => match proc::cgroup_of(&self.proc_root, pid, version) {
                Ok(path) => path,
                Err(Error::NoSuchProcess { .. }) => None,
                Err(e) => return Err(e),
            },
        };
        let Some(path) = path else {
            return Ok(None);
        };
        let found = match check {
            Check::Stat => self.at_hierarchy_path(hierarchy, &path),
            Check::PathOnly => {
                mapped(hierarchy, &path).map(|(path, rel)| unstatted(hierarchy, &path, &rel))
            }
        };
        Ok(found.ok())
    }

    fn resolve_path(&self, raw: &str, choice: Choice) -> Result<Cgroup> {
        let invalid = |reason| Error::InvalidPath {
            path: raw.to_owned(),
            reason,
        };
        if raw.is_empty() {
            return Err(invalid("it is empty"));
        }
        if raw.contains('\0') {
            return Err(invalid("it contains a NUL byte"));
        }
        let as_path = Path::new(raw);
        // An absolute path inside a mounted hierarchy names a directory there.
        if as_path.is_absolute() {
            for hierarchy in [&self.v1, &self.v2].into_iter().flatten() {
                if let Ok(rest) = as_path.strip_prefix(&hierarchy.mount_point) {
                    let wanted = match choice {
                        Choice::Auto => hierarchy.version,
                        Choice::V1 => Version::V1,
                        Choice::V2 => Version::V2,
                    };
                    if wanted != hierarchy.version {
                        return Err(Error::WrongHierarchy {
                            path: as_path.to_owned(),
                            actual: hierarchy.version.as_str(),
                            wanted: wanted.as_str(),
                        });
                    }
                    let rel = normal_components(rest).ok_or_else(|| invalid("it contains '..'"))?;
                    return self.cgroup_at(hierarchy, &join_path(&hierarchy.root, &rel), &rel);
                }
            }
        }
        let version = self.pick(choice)?;
        let hierarchy = self.get(version).ok_or(Error::NoHierarchy {
            wanted: version.as_str(),
        })?;
        let rel = normal_components(as_path).ok_or_else(|| invalid("it contains '..'"))?;
        self.at_hierarchy_path(hierarchy, &join_path("/", &rel))
    }

    /// Maps a path as `/proc/PID/cgroup` shows it to the mount's directory.
    fn at_hierarchy_path(&self, hierarchy: &Hierarchy, cgroup: &str) -> Result<Cgroup> {
        let (path, rel) = mapped(hierarchy, cgroup)?;
        self.cgroup_at(hierarchy, &path, &rel)
    }

    fn cgroup_at(&self, hierarchy: &Hierarchy, path: &str, rel: &[&str]) -> Result<Cgroup> {
        let cg = unstatted(hierarchy, path, rel);
        match std::fs::symlink_metadata(&cg.dir) {
            Ok(m) if m.is_dir() => Ok(cg),
            Ok(_) => Err(Error::InvalidPath {
                path: path.to_owned(),
                reason: "it is not a cgroup directory",
            }),
            Err(_) => Err(Error::NoSuchCgroup { path: cg.dir }),
        }
    }
}

/// How much to ask of a cgroup found in `/proc`.
#[derive(Clone, Copy)]
enum Check {
    /// That its directory is one (`stat`).
    Stat,
    /// Nothing: its path is enough.
    PathOnly,
}

/// The cgroup at `path` (`rel` below the mount's top), its directory not
/// looked at.
fn unstatted(hierarchy: &Hierarchy, path: &str, rel: &[&str]) -> Cgroup {
    let mut dir = hierarchy.mount_point.clone();
    dir.extend(rel);
    Cgroup {
        hierarchy: hierarchy.clone(),
        path: path.to_owned(),
        dir,
    }
}

/// A path as `/proc/PID/cgroup` shows it, as a cgroup path and its
/// components below the mount's top.
fn mapped<'c>(hierarchy: &Hierarchy, cgroup: &'c str) -> Result<(String, Vec<&'c str>)> {
    let invalid = |reason| Error::InvalidPath {
        path: cgroup.to_owned(),
        reason,
    };
    if cgroup.ends_with(" (deleted)") {
        return Err(Error::NoSuchCgroup {
            path: PathBuf::from(cgroup),
        });
    }
    let below_root = Path::new(cgroup)
        .strip_prefix(&hierarchy.root)
        .map_err(|_| invalid("it is outside the mounted part of the hierarchy"))?;
    let rel = normal_components(below_root).ok_or_else(|| invalid("it contains '..'"))?;
    Ok((join_path(&hierarchy.root, &rel), rel))
}

/// The normal components of a relative path; `None` if it climbs with `..`.
fn normal_components(path: &Path) -> Option<Vec<&str>> {
    let mut out = Vec::new();
    for c in path.components() {
        match c {
            Component::Normal(name) => out.push(name.to_str()?),
            Component::RootDir | Component::CurDir => {}
            Component::ParentDir | Component::Prefix(_) => return None,
        }
    }
    Some(out)
}

fn join_path(root: &str, rel: &[&str]) -> String {
    let mut out = root.trim_end_matches('/').to_owned();
    for name in rel {
        out.push('/');
        out.push_str(name);
    }
    if out.is_empty() {
        out.push('/');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    struct Tree(PathBuf);
    impl Drop for Tree {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn fake_host() -> (Tree, Hierarchies) {
        let base = std::env::temp_dir().join(format!(
            "stasis-unit-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = fs::remove_dir_all(&base);
        let v1 = base.join("freezer");
        let v2 = base.join("unified");
        fs::create_dir_all(v1.join("a/b")).expect("mkdir");
        fs::create_dir_all(v2.join("x")).expect("mkdir");
        fs::create_dir_all(base.join("proc/42")).expect("mkdir");
        fs::write(base.join("proc/42/cgroup"), "6:freezer:/a/b\n0::/x\n").expect("write");
        let mounts = vec![
            CgroupMount {
                mount_point: v1,
                root: "/".into(),
                unified: false,
                controllers: vec!["freezer".into()],
            },
            CgroupMount {
                mount_point: v2,
                root: "/".into(),
                unified: true,
                controllers: vec![],
            },
        ];
        let h = Hierarchies::from_mounts(&base.join("proc"), &mounts);
        (Tree(base), h)
    }

    #[test]
    fn auto_prefers_the_v1_freezer_on_hybrid_hosts() {
        let (_t, h) = fake_host();
        assert_eq!(h.layout(), Layout::Hybrid);
        assert_eq!(h.pick(Choice::Auto).expect("pick"), Version::V1);
        assert_eq!(h.pick(Choice::V2).expect("pick"), Version::V2);
    }

    #[test]
    fn resolves_pids_in_both_hierarchies() {
        let (t, h) = fake_host();
        let cg = h.resolve(&Target::Pid(42), Choice::Auto).expect("v1");
        assert_eq!(cg.path, "/a/b");
        assert_eq!(cg.dir, t.0.join("freezer/a/b"));
        let cg = h.resolve(&Target::Pid(42), Choice::V2).expect("v2");
        assert_eq!(cg.dir, t.0.join("unified/x"));
        assert!(h
            .resolve(&Target::Pid(7), Choice::Auto)
            .expect_err("gone")
            .is_not_found());
    }

    #[test]
    fn a_pid_parked_in_the_subgroup_resolves_to_its_source() {
        let (t, h) = fake_host();
        fs::create_dir_all(t.0.join("freezer/a/b/stasis-frozen")).expect("mkdir");
        fs::write(
            t.0.join("proc/42/cgroup"),
            "6:freezer:/a/b/stasis-frozen\n0::/x\n",
        )
        .expect("write");
        let cg = h.resolve(&Target::Pid(42), Choice::Auto).expect("v1");
        assert_eq!(cg.path, "/a/b");
    }

    #[test]
    fn resolves_relative_and_filesystem_paths() {
        let (t, h) = fake_host();
        for raw in ["a/b", "/a/b", "a/./b/"] {
            let cg = h
                .resolve(&Target::Cgroup(raw.into()), Choice::Auto)
                .expect(raw);
            assert_eq!(cg.path, "/a/b", "{raw}");
        }
        let fs_path = t.0.join("unified/x");
        let cg = h
            .resolve(&Target::Cgroup(fs_path.display().to_string()), Choice::Auto)
            .expect("fs path picks its hierarchy");
        assert_eq!(cg.version(), Version::V2);
        assert_eq!(cg.path, "/x");
        let err = h
            .resolve(&Target::Cgroup(fs_path.display().to_string()), Choice::V1)
            .expect_err("wrong hierarchy");
        assert!(matches!(err, Error::WrongHierarchy { .. }), "{err}");
        let root = h
            .resolve(&Target::Cgroup("/".into()), Choice::Auto)
            .expect("root");
        assert!(root.is_mount_top());
        assert_eq!(root.path, "/");
    }

    #[test]
    fn rejects_bad_paths() {
        let (_t, h) = fake_host();
        for raw in ["", "a/../../etc", "..", "a\0b"] {
            let err = h
                .resolve(&Target::Cgroup(raw.into()), Choice::Auto)
                .expect_err(raw);
            assert!(err.is_invalid(), "{raw}: {err}");
        }
        let err = h
            .resolve(&Target::Cgroup("nope".into()), Choice::Auto)
            .expect_err("missing");
        assert!(err.is_not_found(), "{err}");
    }

    #[test]
    fn subtree_mounts_map_paths_below_their_root() {
        let (t, _) = fake_host();
        let mounts = vec![CgroupMount {
            mount_point: t.0.join("freezer/a"),
            root: "/a".into(),
            unified: false,
            controllers: vec!["freezer".into()],
        }];
        let h = Hierarchies::from_mounts(&t.0.join("proc"), &mounts);
        let cg = h
            .resolve(&Target::Pid(42), Choice::Auto)
            .expect("pid below the root");
        assert_eq!(cg.dir, t.0.join("freezer/a/b"));
        assert_eq!(cg.path, "/a/b");
        assert_eq!(cg.parent().expect("parent").path, "/a");
        assert!(cg.parent().expect("parent").is_mount_top());
    }
}
