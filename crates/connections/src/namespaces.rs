//! Where a target's connections live: the network namespaces its processes
//! are in, and for each whether the target owns it (every process in it is
//! the target's) or shares it.
//!
//! Files: `/proc/PID/ns/net`, whose inode (on nsfs) names the namespace;
//! two processes are in the same namespace exactly when those inodes are
//! equal. `/proc/self/ns/net` is the caller's own namespace, which is never
//! treated as owned by a target (on the host it is everybody's). Reading
//! another process's `ns/net` needs ptrace access to it (root has it). A
//! process that exits during the walk is skipped.

use std::collections::BTreeMap;
use std::path::Path;

use crate::{NetNs, Result, Scope};

/// One network namespace the target's processes are in, how much of it is
/// theirs, and its identity (the nsfs inode).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Place {
    /// A file naming the namespace (one member's `/proc/PID/ns/net`).
    pub netns: NetNs,
    /// The namespace's nsfs inode.
    pub inode: u64,
    /// [`Scope::Namespace`] when every process in it is the target's and it
    /// is not the caller's own; else the target's processes in it.
    pub scope: Scope,
    /// Whether this is the caller's own namespace (the host's, for the CLI).
    pub is_callers: bool,
}

/// The namespaces of `pids` (a target's processes), each with its scope.
///
/// A namespace can be known to be the target's alone only when `proc_root`
/// shows every process of the host: pass `all_visible` false when it shows
/// a PID namespace of its own (stasis inside a container), and every
/// namespace is treated as shared. A process whose namespace cannot be read
/// counts as someone else's, in every namespace.
pub fn places(proc_root: &Path, pids: &[u32], all_visible: bool) -> Result<Vec<Place>> {
    let own = NetNs::new(proc_root.join("self/ns/net")).inode()?;
    let mut groups: BTreeMap<u64, Vec<u32>> = BTreeMap::new();
    for &pid in pids {
        if let Some(inode) = inode_of(proc_root, pid) {
            groups.entry(inode).or_default().push(pid);
        }
    }
    let mut everyone: Option<Vec<(u32, Option<u64>)>> = None;
    let mut out = Vec::new();
    for (inode, members) in groups {
        let is_callers = inode == own;
        let owned = all_visible && !is_callers && {
            let all = everyone.get_or_insert_with(|| all_processes(proc_root));
            all.iter()
                .filter(|(_, i)| i.is_none_or(|i| i == inode))
                .all(|(pid, _)| members.contains(pid))
        };
        out.push(Place {
            netns: NetNs::of_process(proc_root, members[0]),
            inode,
            scope: if owned {
                Scope::Namespace
            } else {
                Scope::Processes(members)
            },
            is_callers,
        });
    }
    Ok(out)
}

/// A file naming the network namespace whose inode is `inode`: the caller's
/// own, or that of any process in it; `None` when no process is in it any
/// more (a namespace no process holds is gone, unless a bind mount pins it,
/// which the caller knows of).
pub fn find(proc_root: &Path, inode: u64) -> Result<Option<NetNs>> {
    let own = NetNs::new(proc_root.join("self/ns/net"));
    if own.inode()? == inode {
        return Ok(Some(own));
    }
    Ok(all_processes(proc_root)
        .into_iter()
        .find(|(_, i)| *i == Some(inode))
        .map(|(pid, _)| NetNs::of_process(proc_root, pid)))
}

/// The nsfs inode of a process's network namespace; `None` once it is gone.
fn inode_of(proc_root: &Path, pid: u32) -> Option<u64> {
    NetNs::of_process(proc_root, pid).inode().ok()
}

/// Every process `/proc` lists, with its network namespace's inode, `None`
/// when it cannot be read (it is not ours to see, or it is exiting: either
/// way it may be in any namespace).
fn all_processes(proc_root: &Path) -> Vec<(u32, Option<u64>)> {
    let Ok(entries) = std::fs::read_dir(proc_root) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .map(|pid| (pid, inode_of(proc_root, pid)))
        // Gone meanwhile: not in any namespace.
        .filter(|(pid, inode)| inode.is_some() || proc_root.join(pid.to_string()).exists())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::path::PathBuf;

    /// A fake `/proc` whose `ns/net` files are hard links of one file per
    /// namespace, so that equal inodes mean the same namespace, as on nsfs.
    struct FakeProc(PathBuf);

    impl FakeProc {
        fn new(tag: &str) -> Self {
            let base = std::env::temp_dir()
                .join(format!("stasis-unit-netns-{tag}-{}", std::process::id()));
            let _ = fs::remove_dir_all(&base);
            fs::create_dir_all(base.join("ns")).expect("mkdir");
            FakeProc(base)
        }

        fn proc(&self) -> PathBuf {
            self.0.join("proc")
        }

        /// Puts `who` (a PID or `self`) in namespace `ns`.
        fn put(&self, who: &str, ns: &str) {
            let file = self.0.join("ns").join(ns);
            if !file.exists() {
                fs::write(&file, ns).expect("namespace file");
            }
            let dir = self.proc().join(who).join("ns");
            fs::create_dir_all(&dir).expect("mkdir");
            fs::hard_link(&file, dir.join("net")).expect("link");
        }

        fn inode(&self, ns: &str) -> u64 {
            NetNs::new(self.0.join("ns").join(ns))
                .inode()
                .expect("inode")
        }
    }

    impl Drop for FakeProc {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn a_namespace_is_the_targets_only_when_all_its_processes_are() {
        let f = FakeProc::new("places");
        f.put("self", "host");
        f.put("1", "host");
        // The target: 10 and 11 alone in "pod"; 12 in "shared" with 20;
        // 13 in the caller's own namespace.
        f.put("10", "pod");
        f.put("11", "pod");
        f.put("12", "shared");
        f.put("20", "shared");
        f.put("13", "host");
        // Without a view of every process, no namespace is known to be theirs.
        let blind = places(&f.proc(), &[10, 11], false).expect("places");
        assert_eq!(blind[0].scope, Scope::Processes(vec![10, 11]));
        let mut found = places(&f.proc(), &[10, 11, 12, 13, 99], true).expect("places");
        found.sort_by_key(|p| match &p.scope {
            Scope::Namespace => 0,
            Scope::Processes(pids) => pids[0],
        });
        let scopes: Vec<_> = found.iter().map(|p| (&p.scope, p.is_callers)).collect();
        assert_eq!(
            scopes,
            [
                (&Scope::Namespace, false),
                (&Scope::Processes(vec![12]), false),
                (&Scope::Processes(vec![13]), true),
            ]
        );
        assert_eq!(found[0].inode, f.inode("pod"));
        assert_eq!(found[1].inode, f.inode("shared"));
        // A process whose namespace cannot be read may be in "pod" too.
        fs::create_dir_all(f.proc().join("40")).expect("a process without ns/net");
        let unsure = places(&f.proc(), &[10, 11], true).expect("places");
        assert_eq!(unsure[0].scope, Scope::Processes(vec![10, 11]));
    }

    #[test]
    fn a_namespace_is_found_by_its_inode_while_a_process_holds_it() {
        let f = FakeProc::new("find");
        f.put("self", "host");
        f.put("30", "pod");
        let pod = f.inode("pod");
        let found = find(&f.proc(), pod).expect("find").expect("held");
        assert_eq!(found.inode().expect("inode"), pod);
        assert_eq!(
            find(&f.proc(), f.inode("host")).expect("find"),
            Some(NetNs::new(f.proc().join("self/ns/net")))
        );
        fs::remove_dir_all(f.proc().join("30")).expect("exit");
        assert_eq!(find(&f.proc(), pod).expect("find"), None);
    }
}
