//! `/proc/self/mountinfo`: which cgroup filesystems are mounted where.
//!
//! Each line is `id parent major:minor root mount-point options
//! [optional...] - fstype source super-options`. For cgroup mounts, `root` is
//! the cgroup the mount shows at its top: not `/` for a bind mount of a
//! subtree, or for a mount made inside a cgroup namespace seen from outside
//! it. The v1 controllers are in the super options.

use std::path::PathBuf;

/// One cgroup or cgroup2 mount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CgroupMount {
    /// Where it is mounted.
    pub mount_point: PathBuf,
    /// The cgroup shown at the mount point, as a path in the hierarchy.
    pub root: String,
    /// `true` for cgroup2, `false` for a v1 hierarchy.
    pub unified: bool,
    /// The v1 controllers (and `name=` entries) it carries; empty for cgroup2.
    pub controllers: Vec<String>,
}

/// Parses mountinfo text and returns its cgroup mounts in order.
pub fn parse(text: &str) -> Vec<CgroupMount> {
    text.lines().filter_map(parse_line).collect()
}

/// Reads cgroup mounts line by line from `reader` until `enough` says the
/// mounts so far settle the question. mountinfo is generated afresh on
/// every read and grows with every mount (a host with many pods has
/// thousands of namespace pins), while the cgroup mounts are made at boot
/// and come first: stopping early keeps detection independent of the rest.
pub fn read_until(
    reader: impl std::io::Read,
    enough: impl Fn(&[CgroupMount]) -> bool,
) -> std::io::Result<Vec<CgroupMount>> {
    use std::io::BufRead;
    let mut mounts = Vec::new();
    let mut lines = std::io::BufReader::with_capacity(16 * 1024, reader);
    let mut line = String::new();
    while lines.read_line(&mut line)? > 0 {
        if let Some(m) = parse_line(line.trim_end_matches('\n')) {
            mounts.push(m);
            if enough(&mounts) {
                break;
            }
        }
        line.clear();
    }
    Ok(mounts)
}

fn parse_line(line: &str) -> Option<CgroupMount> {
    let (left, right) = line.split_once(" - ")?;
    let mut right = right.split(' ');
    let fstype = right.next()?;
    let unified = match fstype {
        "cgroup2" => true,
        "cgroup" => false,
        _ => return None,
    };
    let _source = right.next()?;
    let super_opts = right.next().unwrap_or("");
    let mut left = left.split(' ');
    let root = unescape(left.nth(3)?);
    let mount_point = PathBuf::from(unescape(left.next()?));
    let controllers = if unified {
        Vec::new()
    } else {
        super_opts
            .split(',')
            .filter(|o| !matches!(*o, "rw" | "ro") && !o.starts_with("release_agent="))
            .map(str::to_owned)
            .collect()
    };
    Some(CgroupMount {
        mount_point,
        root,
        unified,
        controllers,
    })
}

/// The kernel escapes space, tab, newline and backslash as `\ooo` octal.
fn unescape(s: &str) -> String {
    if !s.contains('\\') {
        return s.to_owned();
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = s
            .get(i + 1..i + 4)
            .and_then(|d| u8::from_str_radix(d, 8).ok());
        match (bytes[i], octal) {
            (b'\\', Some(v)) => {
                out.push(v);
                i += 4;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,release_agent=/x,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw,nsdelegate
";

    #[test]
    fn finds_v1_and_v2_mounts() {
        let mounts = parse(HYBRID);
        assert_eq!(mounts.len(), 4);
        let freezer = mounts
            .iter()
            .find(|m| m.controllers.iter().any(|c| c == "freezer"))
            .expect("freezer mount");
        assert_eq!(freezer.mount_point, PathBuf::from("/sys/fs/cgroup/freezer"));
        assert_eq!(freezer.root, "/");
        let systemd = &mounts[2];
        assert_eq!(systemd.controllers, vec!["xattr", "name=systemd"]);
        let unified = mounts.iter().find(|m| m.unified).expect("cgroup2 mount");
        assert_eq!(unified.mount_point, PathBuf::from("/sys/fs/cgroup/unified"));
        assert!(unified.controllers.is_empty());
    }

    #[test]
    fn reads_subtree_roots_and_escapes() {
        let text = "50 40 0:34 /docker/abc /sys/fs/cgroup/freezer rw - cgroup cgroup rw,freezer\n\
                    51 40 0:38 /a\\040b /mnt/my\\040cg rw - cgroup2 none rw\n";
        let mounts = parse(text);
        assert_eq!(mounts[0].root, "/docker/abc");
        assert_eq!(mounts[1].root, "/a b");
        assert_eq!(mounts[1].mount_point, PathBuf::from("/mnt/my cg"));
    }

    #[test]
    fn stops_reading_once_enough_is_known() {
        let text = format!(
            "{HYBRID}{}",
            "99 1 0:1 / /x rw - cgroup2 cgroup2 rw\n".repeat(3)
        );
        let all = read_until(text.as_bytes(), |_| false).expect("read");
        assert_eq!(all.len(), 7);
        let first_two_unified = read_until(text.as_bytes(), |m| {
            m.iter().filter(|m| m.unified).count() == 2
        })
        .expect("read");
        assert_eq!(first_two_unified.len(), 5);
        assert_eq!(first_two_unified, all[..5].to_vec());
    }

    #[test]
    fn ignores_other_filesystems_and_garbage() {
        assert!(parse("1 2 3:4 / / rw - ext4 /dev/vda rw\nnot a line\n").is_empty());
    }
}
