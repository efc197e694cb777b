//! A cgroup removed between resolving it and acting on it is reported as
//! gone (root only, real kernel, v1 and v2).

use std::path::Path;

use freezer::{Choice, Freezer, Hierarchies, Target};
use testkit::root_or_skip;

/// Removes the directory on drop if the test did not.
struct Dir(std::path::PathBuf);

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(&self.0);
    }
}

#[test]
fn a_removed_cgroup_is_gone_not_an_io_error() {
    if !root_or_skip("a_removed_cgroup_is_gone_not_an_io_error") {
        return;
    }
    let hierarchies = Hierarchies::detect(Path::new("/proc")).expect("detect");
    for choice in [Choice::V1, Choice::V2] {
        let name = format!("stasis-test-gone-{}-{:?}", std::process::id(), choice);
        let version = hierarchies
            .pick(choice)
            .expect("both hierarchies on the test hosts");
        let mount = &hierarchies.get(version).expect("mounted").mount_point;
        let dir = Dir(mount.join(&name));
        std::fs::create_dir(&dir.0).expect("mkdir");
        let cgroup = hierarchies
            .resolve(&Target::Cgroup(name.clone()), choice)
            .expect("resolve");
        let freezer = Freezer::new();
        assert!(!freezer.state(&cgroup).expect("state").is_frozen());
        std::fs::remove_dir(&dir.0).expect("rmdir");
        for (op, err) in [
            (
                "state",
                freezer
                    .state(&cgroup)
                    .expect_err("state of a removed cgroup"),
            ),
            (
                "freeze",
                freezer.freeze(&hierarchies, &cgroup).expect_err("freeze"),
            ),
            ("thaw", freezer.thaw(&cgroup).expect_err("thaw")),
        ] {
            assert!(err.is_not_found(), "{choice:?} {op}: {err:?}");
            assert!(
                matches!(err, freezer::Error::Gone { .. }),
                "{choice:?} {op}: {err:?}"
            );
        }
    }
}
