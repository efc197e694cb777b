//! The freezer's anchor on the real v1 freezer (root only): held frozen and
//! empty, a dead holder's anchor removed by the next holder, a live one's
//! kept, a freeze of another cgroup unaffected, nothing left at release.

use std::path::{Path, PathBuf};

use freezer::anchor::Anchor;
use freezer::{Choice, Freezer, Hierarchies, Target};
use testkit::{read_trimmed, root_or_skip};

/// Thaws and removes the test's cgroups, children first, even on panic.
struct Cleanup(Vec<PathBuf>);

impl Drop for Cleanup {
    fn drop(&mut self) {
        for dir in self.0.iter().rev() {
            let _ = std::fs::write(dir.join("freezer.state"), "THAWED");
            let _ = std::fs::remove_dir(dir);
        }
    }
}

#[test]
fn an_anchor_is_an_empty_frozen_cgroup_that_replaces_a_dead_holders() {
    if !root_or_skip("an_anchor_is_an_empty_frozen_cgroup_that_replaces_a_dead_holders") {
        return;
    }
    let hierarchies = Hierarchies::detect(Path::new("/proc")).expect("detect");
    let mount = hierarchies
        .get(freezer::Version::V1)
        .expect("a v1 freezer on the test hosts")
        .mount_point
        .clone();
    let name = format!("stasis-test-anchor-{}", std::process::id());
    let parent = mount.join(&name);
    // A holder that is gone: a child that has exited and been reaped.
    let mut child = std::process::Command::new("true").spawn().expect("spawn");
    let dead = child.id();
    child.wait().expect("wait");
    let stale = parent.join(format!("anchor-{dead}"));
    let live = parent.join("anchor-1");
    let work = parent.join("work");
    let mut cleanup = Cleanup(vec![parent.clone()]);
    for dir in [&stale, &live, &work] {
        std::fs::create_dir_all(dir).expect("mkdir");
        cleanup.0.push(dir.clone());
    }
    std::fs::write(stale.join("freezer.state"), "FROZEN").expect("freeze the stale anchor");

    let anchor = Anchor::hold(&parent, Path::new("/proc")).expect("hold");
    cleanup.0.push(anchor.dir().to_owned());
    assert_eq!(
        anchor.dir(),
        parent.join(format!("anchor-{}", std::process::id()))
    );
    assert_eq!(read_trimmed(&anchor.dir().join("freezer.state")), "FROZEN");
    assert_eq!(read_trimmed(&anchor.dir().join("cgroup.procs")), "");
    assert!(!stale.exists(), "the dead holder's anchor is removed");
    assert!(
        live.exists(),
        "PID 1's anchor is not this holder's to remove"
    );

    // Another cgroup's process freezes and thaws as ever beside it.
    let sleeper = Child(
        std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .expect("spawn"),
    );
    std::fs::write(work.join("cgroup.procs"), sleeper.0.id().to_string()).expect("move");
    let cgroup = hierarchies
        .resolve(&Target::Cgroup(format!("{name}/work")), Choice::V1)
        .expect("resolve");
    let freezer = Freezer::new();
    freezer.freeze(&hierarchies, &cgroup).expect("freeze");
    assert_eq!(read_trimmed(&work.join("freezer.state")), "FROZEN");
    freezer.thaw(&cgroup).expect("thaw");
    assert_eq!(read_trimmed(&work.join("freezer.state")), "THAWED");

    let dir = anchor.dir().to_owned();
    anchor.release().expect("release");
    assert!(!dir.exists(), "released: removed");
    // Dropped rather than released: removed as well.
    let again = Anchor::hold(&parent, Path::new("/proc")).expect("hold again");
    let dir = again.dir().to_owned();
    drop(again);
    assert!(!dir.exists(), "dropped: removed");
    assert!(live.exists());
}

/// The test's own child, killed and reaped when the test ends (before
/// [`Cleanup`] removes its cgroup: declared after it, dropped first).
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
