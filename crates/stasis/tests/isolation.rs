//! Containers isolated by default, through the `stasis` binary (root only,
//! real kernel): their own PID namespace, docker's capabilities, a seccomp
//! filter, the devices controller, masked /proc; what `--privileged` gives
//! back; volumes, `--read-only` and `-u`; and the flags' usage errors.

mod common;

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use common::*;

/// The v1 devices hierarchy on the test machines (hybrid cgroups).
const DEVICES_MOUNT: &str = "/sys/fs/cgroup/devices";

/// docker's default capability set as /proc/PID/status prints it.
const DOCKER_CAPS: &str = "00000000a80425fb";

/// The value of a field of /proc/self/status in `text`.
fn status_field<'a>(text: &'a str, field: &str) -> &'a str {
    text.lines()
        .find_map(|l| l.strip_prefix(field).and_then(|r| r.strip_prefix(':')))
        .map(str::trim)
        .unwrap_or_else(|| panic!("no {field} in {text}"))
}

/// A host block device this test process can open, `MAJOR MINOR`: a disk
/// from /proc/partitions, or a loop device (a host that runs these tests in
/// a container of its own may keep its disks from it).
fn host_disk() -> (String, String) {
    let text = std::fs::read_to_string("/proc/partitions").expect("partitions");
    let disks = text.lines().skip(2).filter_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        (f.len() == 4).then(|| (format!("/dev/{}", f[3]), f[0].to_owned(), f[1].to_owned()))
    });
    let loops = (0..8).filter_map(|n| {
        let dev = std::fs::read_to_string(format!("/sys/block/loop{n}/dev")).ok()?;
        let (major, minor) = dev.trim().split_once(':')?;
        Some((format!("/dev/loop{n}"), major.to_owned(), minor.to_owned()))
    });
    disks
        .chain(loops)
        .find(|(path, _, _)| std::fs::File::open(path).is_ok())
        .map(|(_, major, minor)| (major, minor))
        .expect("a block device the host can open")
}

/// The host's /dev node of the block device MAJOR:MINOR.
fn disk_node(major: &str, minor: &str) -> std::path::PathBuf {
    use std::os::unix::fs::FileTypeExt;
    let rdev = libc::makedev(major.parse().expect("major"), minor.parse().expect("minor"));
    std::fs::read_dir("/dev")
        .expect("/dev")
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            std::fs::metadata(p).is_ok_and(|m| m.file_type().is_block_device() && m.rdev() == rdev)
        })
        .expect("the device's node in /dev")
}

/// The errno of `kexec_load` with an architecture that is not this one
/// (it never loads anything: EPERM without CAP_SYS_BOOT or under seccomp,
/// EINVAL or ENOSYS past those checks), run with python3 ctypes.
const KEXEC: &str = "import ctypes; libc = ctypes.CDLL(None, use_errno=True); \
    r = libc.syscall(246, 0, 0, 0, 0x00FF0000); print('kexec', r, ctypes.get_errno())";

#[test]
fn a_container_has_its_own_pid_namespace_dockers_capabilities_seccomp_and_devices() {
    if !root_or_skip(
        "a_container_has_its_own_pid_namespace_dockers_capabilities_seccomp_and_devices",
    ) {
        return;
    }
    let s = Stasis::new();
    let scratch = Scratch::new();
    let root = busybox_root(&scratch);
    let root = root.to_str().expect("utf8");
    let (major, minor) = host_disk();
    let me = std::process::id();
    let script = format!(
        "sleep 100 & ps -o pid,args; grep -E '^(CapBnd|CapEff|CapPrm|CapInh|CapAmb|Seccomp):' /proc/self/status; \
         kill -0 {me} 2>/dev/null; echo kill=$?; \
         unshare -U true 2>/dev/null; echo unshare=$?; \
         mount -t tmpfs none /mnt 2>/dev/null; echo mount=$?; \
         mknod /tmp/disk b {major} {minor}; echo mknod=$?; \
         (: < /tmp/disk) 2>/dev/null; echo open=$?; \
         echo keys=$(wc -c < /proc/keys) timer_list=$(wc -c < /proc/timer_list); \
         ls /sys/firmware | wc -l; \
         echo 1 > /proc/sys/kernel/domainname 2>/dev/null; echo procsys=$?; \
         kill %1"
    );
    let out = s
        .run(&[
            "run", "--rm", "--rootfs", root, "--", "/bin/sh", "-c", &script,
        ])
        .ok()
        .stdout;
    // Its own PID namespace: the shell is PID 1, and ps sees three
    // processes (sh, sleep, ps) and nothing of the host.
    let ps: Vec<&str> = out
        .lines()
        .skip_while(|l| !l.trim_start().starts_with("PID"))
        .skip(1)
        .take_while(|l| l.trim_start().starts_with(|c: char| c.is_ascii_digit()))
        .collect();
    assert_eq!(ps.len(), 3, "only the container's processes: {out}");
    assert!(ps[0].trim_start().starts_with("1 "), "{out}");
    assert!(out.contains("kill=1"), "a host PID is out of reach: {out}");
    assert_eq!(status_field(&out, "CapBnd"), DOCKER_CAPS, "{out}");
    assert_eq!(status_field(&out, "CapEff"), DOCKER_CAPS, "{out}");
    assert_eq!(status_field(&out, "CapPrm"), DOCKER_CAPS, "{out}");
    assert_eq!(status_field(&out, "CapInh"), "0000000000000000", "{out}");
    assert_eq!(status_field(&out, "CapAmb"), "0000000000000000", "{out}");
    assert_eq!(status_field(&out, "Seccomp"), "2", "{out}");
    assert!(out.contains("unshare=1"), "no new user namespace: {out}");
    assert!(
        out.contains("mount=255") || out.contains("mount=1"),
        "no mount: {out}"
    );
    assert!(out.contains("mknod=0"), "CAP_MKNOD makes the node: {out}");
    assert!(
        out.contains("open=1"),
        "the devices controller refuses it: {out}"
    );
    // The masked paths this kernel has (kcore is not built here).
    assert!(out.contains("keys=0 timer_list=0\n0\n"), "masked: {out}");
    assert!(out.contains("procsys=1"), "/proc/sys is read-only: {out}");

    // --device adds the device: its node in /dev, and its rule.
    let disk = disk_node(&major, &minor);
    let device = format!("{}:/dev/given", disk.display());
    let out = s
        .run(&["run", "--rm", "--device", &device, "--rootfs", root, "--", "/bin/sh", "-c",
               "ls -l /dev/given; : < /dev/given; echo open=$?; mknod /tmp/kmsg c 1 11; (: < /tmp/kmsg) 2>/dev/null; echo other=$?"])
        .ok()
        .stdout;
    assert!(out.contains("open=0"), "the given device opens: {out}");
    assert!(out.contains("other=1"), "and only it: {out}");

    // On the host's filesystem too, PID 1 is the container's own command,
    // so the host's /proc/1/root is out of reach.
    let out = s
        .run(&[
            "run",
            "--rm",
            "--",
            "sh",
            "-c",
            "tr '\\0' ' ' < /proc/1/cmdline; echo; ls /proc | grep -c '^[0-9]'",
        ])
        .ok()
        .stdout;
    assert!(out.starts_with("sh -c tr "), "{out}");
    assert_eq!(
        out.lines().nth(1),
        Some("3"),
        "sh, tr... then sh, ls, grep: {out}"
    );

    // kexec_load: refused by seccomp (python3 is on the host's filesystem).
    let out = s
        .run(&["run", "--rm", "--", "python3", "-c", KEXEC])
        .ok()
        .stdout;
    assert_eq!(out.trim(), format!("kexec -1 {}", libc::EPERM), "{out}");
}

#[test]
fn privileged_gives_back_every_capability_no_seccomp_and_every_device() {
    if !root_or_skip("privileged_gives_back_every_capability_no_seccomp_and_every_device") {
        return;
    }
    let s = Stasis::new();
    let scratch = Scratch::new();
    let root = busybox_root(&scratch);
    let root = root.to_str().expect("utf8");
    let (major, minor) = host_disk();
    let script = format!(
        "grep -E '^(CapBnd|Seccomp):' /proc/self/status; \
         unshare -U true; echo unshare=$?; \
         mount -t tmpfs none /mnt; echo mount=$?; umount /mnt; \
         mknod /tmp/disk b {major} {minor}; : < /tmp/disk; echo open=$?; \
         wc -c < /proc/keys"
    );
    let out = s
        .run(&[
            "run",
            "--rm",
            "--privileged",
            "--rootfs",
            root,
            "--",
            "/bin/sh",
            "-c",
            &script,
        ])
        .ok()
        .stdout;
    let own = std::fs::read_to_string("/proc/self/status").expect("status");
    assert_eq!(
        status_field(&out, "CapBnd"),
        status_field(&own, "CapBnd"),
        "{out}"
    );
    assert_eq!(status_field(&out, "Seccomp"), "0", "{out}");
    for ok in ["unshare=0", "mount=0", "open=0"] {
        assert!(out.contains(ok), "{ok}: {out}");
    }
    assert!(!out.ends_with("\n0\n"), "/proc/keys is not masked: {out}");
    let out = s
        .run(&["run", "--rm", "--privileged", "--", "python3", "-c", KEXEC])
        .ok()
        .stdout;
    assert!(
        !out.trim().ends_with(&format!(" {}", libc::EPERM)),
        "not refused by stasis: {out}"
    );
}

#[test]
fn cap_add_cap_drop_security_opts_and_a_docker_seccomp_profile() {
    if !root_or_skip("cap_add_cap_drop_security_opts_and_a_docker_seccomp_profile") {
        return;
    }
    let s = Stasis::new();
    let scratch = Scratch::new();
    let status = "grep -E '^(CapBnd|Seccomp|NoNewPrivs):' /proc/self/status";
    let out = s
        .run(&[
            "run",
            "--rm",
            "--cap-drop",
            "ALL",
            "--cap-add",
            "net_admin",
            "--cap-add",
            "CAP_KILL",
            "--",
            "sh",
            "-c",
            status,
        ])
        .ok()
        .stdout;
    // CAP_KILL is bit 5, CAP_NET_ADMIN bit 12.
    assert_eq!(status_field(&out, "CapBnd"), "0000000000001020", "{out}");
    let out = s
        .run(&[
            "run",
            "--rm",
            "--cap-drop",
            "MKNOD",
            "--security-opt",
            "no-new-privileges",
            "--security-opt",
            "seccomp=unconfined",
            "--",
            "sh",
            "-c",
            status,
        ])
        .ok()
        .stdout;
    assert_eq!(status_field(&out, "CapBnd"), "00000000a00425fb", "{out}");
    assert_eq!(status_field(&out, "Seccomp"), "0", "{out}");
    assert_eq!(status_field(&out, "NoNewPrivs"), "1", "{out}");
    // --cap-add SYS_ADMIN lets the default profile allow mount, as docker's does.
    let out = s
        .run(&[
            "run",
            "--rm",
            "--cap-add",
            "SYS_ADMIN",
            "--",
            "sh",
            "-c",
            "mount -t tmpfs none /mnt && echo mounted",
        ])
        .ok()
        .stdout;
    assert!(out.contains("mounted"), "{out}");

    // podman's copy of docker's default profile (an allow list with
    // includes/excludes conditions; unlike docker's it allows unshare), as
    // it is: the shell works under it, mount is refused, and with
    // CAP_SYS_ADMIN its conditional rule allows mount.
    let podman = "seccomp=/usr/share/containers/seccomp.json";
    let probe = "grep Seccomp: /proc/self/status; \
                 mount -t tmpfs none /mnt 2>/dev/null; echo mount=$?; ls / >/dev/null; echo ls=$?";
    let out = s
        .run(&[
            "run",
            "--rm",
            "--security-opt",
            podman,
            "--",
            "sh",
            "-c",
            probe,
        ])
        .ok()
        .stdout;
    for want in ["Seccomp:\t2", "mount=32", "ls=0"] {
        assert!(out.contains(want), "{want}: {out}");
    }
    let out = s
        .run(&[
            "run",
            "--rm",
            "--security-opt",
            podman,
            "--cap-add",
            "SYS_ADMIN",
            "--",
            "sh",
            "-c",
            probe,
        ])
        .ok()
        .stdout;
    assert!(out.contains("mount=0"), "{out}");

    let profile = scratch.0.join("profile.json");
    std::fs::write(
        &profile,
        r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}]}"#,
    )
    .expect("profile");
    let dir = scratch.0.join("made");
    let opt = format!("seccomp={}", profile.display());
    let run = s.run(&[
        "run",
        "--rm",
        "--security-opt",
        &opt,
        "--",
        "mkdir",
        dir.to_str().expect("utf8"),
    ]);
    assert_eq!(run.code(), 1, "{run:?}");
    // mkdir's complaint is on the container's stderr, which an attached
    // run gives to its own.
    assert!(
        run.stderr.contains("Permission denied"),
        "EACCES from the profile: {run:?}"
    );
    assert!(!dir.exists());
}

#[test]
fn exec_joins_the_containers_pid_namespace_and_a_pid_pod_has_stasis_pause_as_pid_1() {
    if !root_or_skip(
        "exec_joins_the_containers_pid_namespace_and_a_pid_pod_has_stasis_pause_as_pid_1",
    ) {
        return;
    }
    let s = Stasis::new();
    let scratch = Scratch::new();
    let root = busybox_root(&scratch);
    let root = root.to_str().expect("utf8");
    s.run(&[
        "run", "-d", "--name", "iso-exec", "--rootfs", root, "--", "sleep", "1000",
    ])
    .ok();
    let out = s
        .run(&["exec", "iso-exec", "--", "ps", "-o", "pid,args"])
        .ok()
        .stdout;
    let lines: Vec<&str> = out.lines().skip(1).collect();
    assert_eq!(lines.len(), 2, "sleep and ps: {out}");
    assert!(
        lines[0].trim_start().starts_with("1 ") && lines[0].contains("sleep"),
        "{out}"
    );
    let out = s
        .run(&[
            "exec",
            "iso-exec",
            "--",
            "grep",
            "CapBnd",
            "/proc/self/status",
        ])
        .ok()
        .stdout;
    assert!(
        out.contains(DOCKER_CAPS),
        "exec is confined as the container: {out}"
    );

    s.run(&[
        "pod",
        "create",
        "--name",
        "iso-pidpod",
        "--share",
        "net,ipc,uts,pid",
    ])
    .ok();
    let out = s
        .run(&[
            "run",
            "--rm",
            "--pod",
            "iso-pidpod",
            "--",
            "sh",
            "-c",
            "cat /proc/1/cmdline; echo; echo me=$$",
        ])
        .ok()
        .stdout;
    assert!(out.contains("stasis-pause"), "the pod's PID 1: {out}");
    assert!(!out.contains("me=1\n"), "{out}");
    // The removed member's devices leaf went with it; the pod's node stays.
    let pod_id = s.pod("iso-pidpod")["id"].as_str().expect("id").to_owned();
    let node = Path::new(DEVICES_MOUNT).join("stasis").join(&pod_id);
    let leaves: Vec<_> = std::fs::read_dir(&node)
        .map(|d| d.flatten().filter(|e| e.path().is_dir()).collect())
        .unwrap_or_default();
    assert!(
        leaves.is_empty(),
        "devices leaves left in {}: {leaves:?}",
        node.display()
    );

    // --hostname names the pod run makes; a member of a given pod has its.
    let out = s
        .run(&["run", "--rm", "--hostname", "box", "--", "hostname"])
        .ok()
        .stdout;
    assert_eq!(out.trim(), "box");
    s.run(&[
        "run",
        "--rm",
        "--pod",
        "iso-pidpod",
        "--hostname",
        "box",
        "--",
        "true",
    ])
    .fails_with(2, "share its hostname");
}

#[test]
fn volumes_read_write_and_read_only_a_read_only_root_and_user_nobody() {
    if !root_or_skip("volumes_read_write_and_read_only_a_read_only_root_and_user_nobody") {
        return;
    }
    let s = Stasis::new();
    let scratch = Scratch::new();
    let root = busybox_root(&scratch);
    let root = root.to_str().expect("utf8");
    let data = scratch.0.join("data");
    std::fs::create_dir(&data).expect("mkdir");
    std::fs::write(data.join("in"), "from the host\n").expect("write");
    let rw = format!("{}:/data", data.display());
    let ro = format!("{}:/ro:ro", data.display());
    let mount = format!("type=bind,source={},target=/m,readonly", data.display());
    let out = s
        .run(&[
            "run",
            "--rm",
            "--rootfs",
            root,
            "-v",
            &rw,
            "-v",
            &ro,
            "--mount",
            &mount,
            "--tmpfs",
            "/scratch:size=1m",
            "--mount",
            "type=tmpfs,target=/t,tmpfs-size=65536",
            "--read-only",
            "--",
            "/bin/sh",
            "-c",
            "cat /data/in; echo out > /data/out; echo rw=$?; \
             echo x > /ro/x 2>/dev/null; echo ro=$?; echo x > /m/x 2>/dev/null; echo m=$?; \
             echo x > /scratch/x; echo tmpfs=$?; echo x > /t/x; echo t=$?; \
             touch /rootfile 2>/dev/null; echo root=$?",
        ])
        .ok()
        .stdout;
    assert!(out.contains("from the host"), "{out}");
    for want in ["rw=0", "ro=1", "m=1", "tmpfs=0", "t=0", "root=1"] {
        assert!(out.contains(want), "{want}: {out}");
    }
    assert_eq!(
        std::fs::read_to_string(data.join("out")).expect("written"),
        "out\n"
    );
    assert!(!data.join("x").exists());
    assert!(!Path::new(root).join("rootfile").exists());

    let out = s
        .run(&["run", "--rm", "--rootfs", root, "-u", "65534", "--", "id"])
        .ok()
        .stdout;
    assert!(
        out.starts_with("uid=65534(nobody) gid=65534(nobody)"),
        "{out}"
    );
    let out = s
        .run(&[
            "run",
            "--rm",
            "--rootfs",
            root,
            "-u",
            "nobody",
            "--",
            "/bin/sh",
            "-c",
            "grep CapEff /proc/self/status",
        ])
        .ok()
        .stdout;
    assert!(
        out.contains("0000000000000000"),
        "nobody has no capabilities: {out}"
    );
}

#[test]
fn bad_isolation_and_volume_flags_are_one_line_usage_errors() {
    if !root_or_skip("bad_isolation_and_volume_flags_are_one_line_usage_errors") {
        return;
    }
    let s = Stasis::new();
    let scratch = Scratch::new();
    let root = busybox_root(&scratch);
    let root = root.to_str().expect("utf8");
    let missing = scratch.0.join("nosuch");
    let missing = format!("{}:/data", missing.display());
    let here = format!("{}:/data", scratch.0.display());
    for (args, says) in [
        (vec!["-v", "relative:/data"], "not an absolute path"),
        (vec!["-v", "/tmp:data"], "not an absolute path"),
        (vec!["-v", missing.as_str()], "no such file or directory"),
        (vec!["-v", "/tmp:/data:rx"], "unknown volume option"),
        (vec!["--mount", "type=volume,target=/x"], "not supported"),
        (
            vec!["--mount", "type=bind,source=/tmp,target=/x,bogus=1"],
            "unknown --mount field",
        ),
        (vec!["--tmpfs", "/x:size=1m,bogus"], "tmpfs takes"),
        (vec!["--cap-add", "NOSUCH"], "no such capability"),
        (
            vec!["--security-opt", "apparmor=x"],
            "use seccomp=unconfined",
        ),
        (
            vec!["--security-opt", "seccomp=/nosuch.json"],
            "reading the seccomp profile",
        ),
        (vec!["--device", "/tmp"], "not a character or block device"),
    ] {
        let mut full = vec!["run", "--rm", "--rootfs", root];
        full.extend(args.iter().copied());
        full.extend(["--", "true"]);
        s.run(&full).fails_with(2, says);
    }
    // A container on the host's filesystem sees the host's files anyway.
    s.run(&["run", "--rm", "-v", &here, "--", "true"])
        .fails_with(2, "root filesystem of its own");
    s.run(&["run", "--rm", "--read-only", "--", "true"])
        .fails_with(2, "host's filesystem");
    assert_eq!(
        s.run(&["ps", "-a", "-q"]).ok().stdout.trim(),
        "",
        "nothing was made"
    );
}

#[test]
fn init_makes_stasis_pause_pid_1_reaping_orphans_and_stop_a_plain_sigterm() {
    if !root_or_skip("init_makes_stasis_pause_pid_1_reaping_orphans_and_stop_a_plain_sigterm") {
        return;
    }
    let s = Stasis::new();
    // An orphan (the inner sleep, its shell gone) ends as a zombie unless
    // PID 1 reaps it.
    let out = s
        .run(&[
            "run", "--rm", "--init", "--", "sh", "-c",
            "echo me=$$; tr '\\0' ' ' < /proc/1/cmdline; echo; (sleep 0.2 &); sleep 1; ps -eo stat,args",
        ])
        .ok()
        .stdout;
    assert!(!out.contains("me=1\n"), "the command is not PID 1: {out}");
    assert!(out.contains("stasis-pause"), "PID 1: {out}");
    assert!(
        !out.lines().any(|l| l.trim_start().starts_with('Z')),
        "no zombie: {out}"
    );
    // Not PID 1, a plain `sleep` dies of stop's SIGTERM, without the SIGKILL.
    s.run(&[
        "run", "-d", "--init", "--name", "iso-init", "--", "sleep", "1000",
    ])
    .ok();
    s.run(&["stop", "-t", "30", "iso-init"]).ok();
    assert_eq!(s.inspect("iso-init")["exit_code"], 143, "SIGTERM");
    s.run(&["pod", "create", "--name", "iso-nopid"]).ok();
    s.run(&["run", "--rm", "--init", "--pod", "iso-nopid", "--", "true"])
        .fails_with(2, "--share net,ipc,uts,pid");
}

#[test]
fn on_cgroup2_a_device_program_confines_the_devices_as_the_v1_controller_does() {
    if !root_or_skip("on_cgroup2_a_device_program_confines_the_devices_as_the_v1_controller_does") {
        return;
    }
    // STASIS_DEVICE_CONTROL=cgroup2: the rules go to a device program on
    // the container's cgroup2 leaf, as on a v2-only host, and not to the
    // v1 devices hierarchy (which then leaves the container unconfined:
    // only the program can refuse).
    let s = Stasis::new();
    let scratch = Scratch::new();
    let root = busybox_root(&scratch);
    let root = root.to_str().expect("utf8");
    let (major, minor) = host_disk();
    let run = |args: &[&str]| run_bounded(s.command(args).env("STASIS_DEVICE_CONTROL", "cgroup2"));
    let script = format!(
        "mknod /tmp/disk b {major} {minor}; echo mknod=$?; \
         (: < /tmp/disk) 2>/dev/null; echo open=$?; \
         : < /dev/null; echo null=$?; : > /dev/null; echo null_w=$?; \
         mknod /tmp/mem c 1 1; (: < /tmp/mem) 2>/dev/null; echo mem=$?; \
         grep devices /proc/self/cgroup"
    );
    let out = run(&[
        "run", "--rm", "--rootfs", root, "--", "/bin/sh", "-c", &script,
    ])
    .ok()
    .stdout;
    assert!(out.contains("mknod=0"), "mknod is allowed: {out}");
    assert!(
        out.contains("open=1"),
        "opening the host's disk is refused: {out}"
    );
    assert!(
        out.contains("null=0") && out.contains("null_w=0"),
        "/dev/null works: {out}"
    );
    assert!(out.contains("mem=1"), "/dev/mem is refused: {out}");
    assert!(
        !out.contains("/stasis/"),
        "not in a v1 devices leaf: the program alone confines it: {out}"
    );
    // --device adds its rule to the program.
    let out = run(&[
        "run",
        "--rm",
        "--device",
        &format!("{}:/dev/given", disk_node(&major, &minor).display()),
        "--rootfs",
        root,
        "--",
        "/bin/sh",
        "-c",
        ": < /dev/given; echo open=$?",
    ])
    .ok()
    .stdout;
    assert!(out.contains("open=0"), "the given device opens: {out}");
    // --privileged: no program, the disk opens.
    let out = run(&[
        "run",
        "--rm",
        "--privileged",
        "--rootfs",
        root,
        "--",
        "/bin/sh",
        "-c",
        &script,
    ])
    .ok()
    .stdout;
    assert!(out.contains("open=0"), "privileged: {out}");
}
