//! Images through the `stasis` binary (root only, real kernel): a busybox
//! root filesystem built here, imported, run with an overlay per container;
//! a `docker save` archive and an OCI archive built here, loaded and run;
//! and no mount left behind.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};

use common::archives::*;
use common::*;

/// The mounts whose mount point is under `root`.
fn mounts_under(root: &Path) -> Vec<String> {
    let needle = root.to_str().expect("utf-8");
    std::fs::read_to_string("/proc/self/mountinfo")
        .expect("mountinfo")
        .lines()
        .filter(|l| l.split(' ').nth(4).is_some_and(|m| m.starts_with(needle)))
        .map(str::to_owned)
        .collect()
}

fn container_dir(s: &Stasis, name: &str) -> PathBuf {
    let id = s.inspect(name)["id"].as_str().expect("an id").to_owned();
    s.root.0.join("containers").join(id)
}

#[test]
fn an_imported_image_runs_with_an_upper_dir_per_container_and_rm_unmounts_it() {
    if !root_or_skip("an_imported_image_runs_with_an_upper_dir_per_container_and_rm_unmounts_it") {
        return;
    }
    let s = Stasis::new();
    let scratch = Scratch::new();
    let rootfs = busybox_tar(&scratch.0);

    // `image import -` reads the tar from stdin.
    let mut import = s.spawn(&[
        "image",
        "import",
        "-",
        "bb:1",
        "--change",
        r#"CMD ["echo", "the default command"]"#,
        "--change",
        "ENV GREETING=hello",
        "--change",
        "WORKDIR /srv",
    ]);
    import
        .stdin
        .take()
        .expect("stdin")
        .write_all(&rootfs)
        .expect("write the tar");
    let out = import.wait_with_output().expect("import");
    assert!(out.status.success(), "{out:?}");
    let id = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert!(id.starts_with("sha256:") && id.len() == 71, "{id}");

    let ls = s.run(&["image", "ls"]).ok().stdout;
    assert!(ls.contains("bb ") && ls.contains(&id[7..19]), "{ls}");
    assert_eq!(s.run(&["image", "ls", "-q"]).ok().stdout.trim(), &id[7..19]);
    let inspect: serde_json::Value =
        serde_json::from_str(&s.run(&["image", "inspect", "bb:1"]).ok().stdout).expect("json");
    assert_eq!(inspect[0]["Id"], id.as_str());
    assert_eq!(inspect[0]["RepoTags"][0], "bb:1");
    assert_eq!(inspect[0]["Config"]["WorkingDir"], "/srv");
    assert_eq!(inspect[0]["RootFS"]["Type"], "layers");
    s.run(&["image", "inspect", "bb"])
        .fails_with(3, "no such image: bb");

    let one = s
        .run(&[
            "run",
            "--name",
            "one",
            "bb:1",
            "sh",
            "-c",
            "echo hi > /x; cat /etc/hostname",
        ])
        .ok();
    assert_eq!(one.stdout, "one\n", "{one:?}");
    let two = s
        .run(&[
            "run",
            "--name",
            "two",
            "bb:1",
            "sh",
            "-c",
            "test -e /x && echo seen || echo unseen",
        ])
        .ok();
    assert_eq!(
        two.stdout, "unseen\n",
        "a second container has its own upper dir"
    );
    let one_dir = container_dir(&s, "one");
    assert_eq!(
        std::fs::read_to_string(one_dir.join("upper/x"))
            .expect("the write went to one's upper dir"),
        "hi\n"
    );
    // The image's Cmd, Env and WorkingDir, -e over the image's, -w over its dir.
    assert_eq!(
        s.run(&["run", "--name", "three", "bb:1"]).ok().stdout,
        "the default command\n"
    );
    let env = s
        .run(&[
            "run",
            "--name",
            "four",
            "-e",
            "EXTRA=1",
            "-e",
            "GREETING=hey",
            "bb:1",
            "sh",
            "-c",
            "echo $GREETING $EXTRA; pwd",
        ])
        .ok();
    assert_eq!(env.stdout, "hey 1\n/srv\n");
    assert_eq!(
        s.run(&["run", "--name", "five", "-w", "/etc", "bb:1", "pwd"])
            .ok()
            .stdout,
        "/etc\n"
    );
    assert_eq!(
        s.run(&["run", "--name", "six", "-w", "/new/dir", "bb:1", "pwd"])
            .ok()
            .stdout,
        "/new/dir\n",
        "a missing working directory is made, as docker does"
    );

    // The image shows in ps and inspect.
    let ps = s.run(&["ps", "-a"]).ok().stdout;
    assert!(
        ps.lines().any(|l| l.contains("one") && l.contains("bb:1")),
        "{ps}"
    );
    let c = s.inspect("one");
    assert_eq!(c["image"]["name"], "bb:1");
    assert_eq!(c["image"]["id"], id.as_str());

    // A mount per container while it exists; rm unmounts and removes it.
    assert!(
        mounts_under(&one_dir)
            .iter()
            .any(|m| m.contains(" - overlay ")),
        "{:?}",
        mounts_under(&s.root.0)
    );
    s.run(&["rm", "one"]).ok();
    assert!(
        mounts_under(&one_dir).is_empty(),
        "{:?}",
        mounts_under(&one_dir)
    );
    assert!(!one_dir.exists(), "its upper dir went with it");

    // In use: refused (exit 4) until forced or its containers are gone.
    s.run(&["image", "rm", "bb:1"])
        .fails_with(4, "in use by container");
    // run --rm unmounts as it removes.
    let gone = s
        .run(&["run", "--rm", "--name", "brief", "bb:1", "true"])
        .ok();
    assert!(gone.stderr.is_empty(), "{gone:?}");
    for name in ["two", "three", "four", "five", "six"] {
        s.run(&["rm", name]).ok();
    }
    assert!(
        mounts_under(&s.root.0).is_empty(),
        "{:?}",
        mounts_under(&s.root.0)
    );
    let rm = s.run(&["image", "rm", "bb:1"]).ok().stdout;
    assert!(
        rm.contains("Untagged: bb:1") && rm.contains(&format!("Deleted: {id}")),
        "{rm}"
    );
    let layers = std::fs::read_dir(s.root.0.join("images/layers")).expect("layers");
    assert_eq!(layers.count(), 0, "the layer went with its last image");
}

#[test]
fn a_named_user_and_a_detached_auto_removed_container_from_an_image() {
    if !root_or_skip("a_named_user_and_a_detached_auto_removed_container_from_an_image") {
        return;
    }
    let s = Stasis::new();
    let scratch = Scratch::new();
    let tar_path = scratch.0.join("rootfs.tar");
    std::fs::write(&tar_path, busybox_tar(&scratch.0)).expect("write");
    let tar = tar_path.to_str().expect("utf-8");
    s.run(&["image", "import", tar, "app", "--change", "USER app"])
        .ok();
    let ids = s
        .run(&["run", "--name", "who", "app", "sh", "-c", "id -u; id -g"])
        .ok();
    assert_eq!(ids.stdout, "1000\n1000\n");

    // The monitor's auto-remove (run -d --rm) unmounts too.
    s.run(&["run", "-d", "--rm", "--name", "bg", "app", "sleep", "0.2"])
        .ok();
    wait_until(
        std::time::Duration::from_secs(20),
        "bg to be removed",
        || {
            s.run(&["ps", "-aq", "-f", "name=bg"])
                .stdout
                .trim()
                .is_empty()
        },
    );
    s.run(&["rm", "who"]).ok();
    assert!(
        mounts_under(&s.root.0).is_empty(),
        "{:?}",
        mounts_under(&s.root.0)
    );

    // The two forms stay apart.
    s.run(&["run", "nosuch"])
        .fails_with(3, "no such image: nosuch");
    s.run(&["run", "--rootfs", "/", "app"]).fails_with_usage();
    s.run(&["run"]).fails_with_usage();
    let host = s.run(&["run", "--rm", "--", "echo", "from the host"]).ok();
    assert_eq!(host.stdout, "from the host\n");
}

#[test]
fn a_docker_save_and_an_oci_archive_load_and_stack_their_layers() {
    if !root_or_skip("a_docker_save_and_an_oci_archive_load_and_stack_their_layers") {
        return;
    }
    let s = Stasis::new();
    let scratch = Scratch::new();
    let base = busybox_tar(&scratch.0);
    let top = top_layer();
    for (file, archive, name) in [
        ("saved.tar", docker_save(&base, &top), "saved:1"),
        ("oci.tar", oci(&base, &top), "oci-img:1"),
    ] {
        let path = scratch.0.join(file);
        std::fs::write(&path, archive).expect("write");
        let loaded = s
            .run(&["image", "load", "-i", path.to_str().expect("utf-8")])
            .ok();
        assert_eq!(loaded.stdout, format!("Loaded image: {name}\n"));
        let run = s.run(&["run", "--rm", name]).ok();
        assert_eq!(
            run.stdout, "from the top layer\nhidden is gone\n",
            "{name}: the layers stack and the whiteout hides the base's file"
        );
    }
    // Both archives hold the same config: one image, two names; the layers
    // were unpacked once.
    let list: serde_json::Value =
        serde_json::from_str(&s.run(&["image", "ls", "--format", "json"]).ok().stdout)
            .expect("json");
    assert_eq!(list.as_array().expect("array").len(), 1, "{list}");
    assert_eq!(
        list[0]["RepoTags"],
        serde_json::json!(["oci-img:1", "saved:1"])
    );
    let layers = std::fs::read_dir(s.root.0.join("images/layers")).expect("layers");
    assert_eq!(layers.count(), 2);
    // Removing one name by name only untags.
    assert_eq!(
        s.run(&["image", "rm", "saved:1"]).ok().stdout,
        "Untagged: saved:1\n"
    );
    s.run(&["image", "load", "-i", "/dev/null"])
        .fails_with_usage();
    assert!(
        mounts_under(&s.root.0).is_empty(),
        "{:?}",
        mounts_under(&s.root.0)
    );
}
