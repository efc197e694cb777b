//! The store end to end, on archives built here with the `tar` crate.

use std::path::Path;

use crate::layer::tests::{gzip, Dir, TarBuilder};
use crate::*;

fn rootfs() -> Vec<u8> {
    TarBuilder::new()
        .dir("./")
        .dir("./bin/")
        .file("./bin/busybox", b"not really busybox")
        .link(tar::EntryType::Symlink, "./bin/sh", "busybox")
        .file("./etc/hostname", b"box\n")
        .finish()
}

fn import(images: &Images, name: &str, created: &str, changes: &[&str]) -> ImageRecord {
    let r = Reference::parse(name).expect("name");
    let changes: Vec<Change> = changes
        .iter()
        .map(|c| Change::parse(c).expect("change"))
        .collect();
    images
        .import(
            &rootfs()[..],
            &Import {
                reference: Some(&r),
                changes: &changes,
                created,
            },
        )
        .expect("import")
}

/// Appends a file to an archive being built.
fn add(b: &mut tar::Builder<Vec<u8>>, path: &str, body: &[u8]) {
    let mut h = tar::Header::new_gnu();
    h.set_size(body.len() as u64);
    h.set_mode(0o644);
    b.append_data(&mut h, path, body).expect("append");
}

fn config_json(diff_ids: &[Digest], cmd: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "created": "2026-11-30T10:00:00Z",
        "config": {"Cmd": [cmd], "Env": ["PATH=/bin"], "WorkingDir": "/srv"},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }))
    .expect("json")
}

#[test]
fn an_imported_rootfs_is_one_layer_with_a_fresh_config_and_resolves_every_way() {
    let dir = Dir::new("import");
    let images = Images::open(&dir.0).expect("open");
    let img = import(
        &images,
        "busybox",
        "2026-12-01T00:00:00Z",
        &[r#"CMD ["sh"]"#, "ENV A=1", "WORKDIR /srv"],
    );
    assert_eq!(img.repo_tags, ["busybox:latest"]);
    assert_eq!(img.created(), "2026-12-01T00:00:00Z");
    assert_eq!(
        img.config.config.cmd.as_deref(),
        Some(&["sh".to_owned()][..])
    );
    assert_eq!(img.config.rootfs.diff_ids, [Digest::of(&rootfs())]);
    assert_eq!(img.size, 22);
    // The ID is the digest of the config as stored.
    let blob = std::fs::read(images.root().join("blobs/sha256").join(img.id.hex())).expect("blob");
    assert_eq!(Digest::of(&blob), img.id);
    let lower = images.lower_dirs(&img);
    assert_eq!(lower.len(), 1);
    assert_eq!(
        std::fs::read(lower[0].join("etc/hostname")).expect("unpacked"),
        b"box\n"
    );

    for q in [
        "busybox".to_owned(),
        "busybox:latest".to_owned(),
        img.id.to_string(),
        img.id.hex().to_owned(),
        img.id.short().to_owned(),
        format!("sha256:{}", &img.id.hex()[..5]),
    ] {
        assert_eq!(images.resolve(&q).expect(&q).id, img.id, "{q}");
    }
    for q in ["busybox:1.0", "nothing", "abcdefg", "sha256:zz"] {
        let err = images.resolve(q).expect_err(q);
        assert!(err.is_not_found(), "{q}: {err}");
        assert_eq!(err.to_string(), format!("no such image: {q}"));
    }
    let v = img.inspect();
    assert_eq!(v["Id"], img.id.to_string());
    assert_eq!(v["RepoTags"][0], "busybox:latest");
    assert_eq!(v["Config"]["Env"][0], "A=1");
    assert_eq!(v["Config"]["WorkingDir"], "/srv");
    assert_eq!(v["RootFS"]["Type"], "layers");
    assert_eq!(v["RootFS"]["Layers"][0], Digest::of(&rootfs()).to_string());
    assert_eq!(v["Size"], 22);
}

#[test]
fn a_short_id_shared_by_two_images_is_ambiguous() {
    let dir = Dir::new("ambiguous");
    let images = Images::open(&dir.0).expect("open");
    // Seventeen IDs: two of them share a first hex digit.
    let ids: Vec<Digest> = (0..17)
        .map(|i| {
            import(
                &images,
                &format!("img{i}"),
                &format!("2026-12-01T00:00:{i:02}Z"),
                &[],
            )
            .id
        })
        .collect();
    let shared = ids
        .iter()
        .find(|a| ids.iter().filter(|b| b.hex()[..1] == a.hex()[..1]).count() > 1)
        .expect("pigeonhole");
    let err = images.resolve(&shared.hex()[..1]).expect_err("ambiguous");
    assert!(
        matches!(err, Error::Ambiguous { .. }) && err.is_invalid(),
        "{err}"
    );
    assert_eq!(images.list().expect("list").len(), 17);
    // One layer for all: it was unpacked once.
    let layers = std::fs::read_dir(images.root().join("layers")).expect("layers");
    assert_eq!(layers.count(), 1);
}

#[test]
fn a_docker_save_archive_loads_with_its_names_and_a_linked_layer() {
    let dir = Dir::new("docker-save");
    let images = Images::open(&dir.0).expect("open");
    let base = rootfs();
    let top = TarBuilder::new().file("srv/app", b"app").finish();
    let diff_ids = [Digest::of(&base), Digest::of(&top)];
    let config = config_json(&diff_ids, "serve");
    let config_name = format!("{}.json", Digest::of(&config).hex());
    let mut b = tar::Builder::new(Vec::new());
    add(&mut b, "aaa/layer.tar", &base);
    add(&mut b, "bbb/layer.tar", &top);
    // Older docker links a layer it has already written.
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Symlink);
    h.set_size(0);
    b.append_link(&mut h, "ccc/layer.tar", "../aaa/layer.tar")
        .expect("link");
    add(&mut b, &config_name, &config);
    let manifest = serde_json::json!([
        {"Config": config_name, "RepoTags": ["app:1", "app:latest"],
         "Layers": ["aaa/layer.tar", "bbb/layer.tar"]},
    ]);
    add(
        &mut b,
        "manifest.json",
        &serde_json::to_vec(&manifest).expect("json"),
    );
    let archive = b.into_inner().expect("archive");

    let loaded = images.load(&archive[..]).expect("load");
    assert_eq!(loaded.len(), 1);
    assert_eq!(loaded[0].id, Digest::of(&config));
    assert_eq!(loaded[0].tags, ["app:1", "app:latest"]);
    let img = images.resolve("app:1").expect("resolve");
    assert_eq!(
        img.config.config.cmd.as_deref(),
        Some(&["serve".to_owned()][..])
    );
    let lower = images.lower_dirs(&img);
    assert!(lower[0].join("srv/app").is_file(), "the top layer first");
    assert!(lower[1].join("etc/hostname").is_file());
    // Gzip of the whole archive loads too, and the layers are reused.
    assert_eq!(images.load(&gzip(&archive)[..]).expect("gz").len(), 1);

    // The linked layer resolves inside the archive.
    let mut b = tar::Builder::new(Vec::new());
    add(&mut b, "aaa/layer.tar", &base);
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Symlink);
    h.set_size(0);
    b.append_link(&mut h, "ccc/layer.tar", "../aaa/layer.tar")
        .expect("link");
    let one = config_json(&[Digest::of(&base)], "sh");
    add(&mut b, "one.json", &one);
    let manifest =
        serde_json::json!([{"Config": "one.json", "RepoTags": null, "Layers": ["ccc/layer.tar"]}]);
    add(
        &mut b,
        "manifest.json",
        &serde_json::to_vec(&manifest).expect("json"),
    );
    let loaded = images
        .load(&b.into_inner().expect("archive")[..])
        .expect("linked");
    assert!(loaded[0].tags.is_empty());
    assert!(images
        .resolve(loaded[0].id.short())
        .expect("by id")
        .repo_tags
        .is_empty());
}

/// An OCI image layout in a tar, its layers gzip-compressed.
fn oci_archive(layers: &[Vec<u8>], name: Option<&str>, corrupt: bool) -> (Vec<u8>, Digest) {
    let mut b = tar::Builder::new(Vec::new());
    add(&mut b, "oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#);
    let diff_ids: Vec<Digest> = layers.iter().map(|l| Digest::of(l)).collect();
    let mut descriptors = Vec::new();
    for l in layers {
        let gz = gzip(l);
        let d = Digest::of(&gz);
        let body = if corrupt {
            gzip(&TarBuilder::new().file("other", b"x").finish())
        } else {
            gz.clone()
        };
        add(&mut b, &format!("blobs/sha256/{}", d.hex()), &body);
        descriptors.push(serde_json::json!({
            "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
            "digest": d.to_string(), "size": gz.len(),
        }));
    }
    let config = config_json(&diff_ids, "run");
    let config_d = Digest::of(&config);
    add(&mut b, &format!("blobs/sha256/{}", config_d.hex()), &config);
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": config_d.to_string(), "size": config.len()},
        "layers": descriptors,
    }))
    .expect("json");
    let manifest_d = Digest::of(&manifest);
    add(
        &mut b,
        &format!("blobs/sha256/{}", manifest_d.hex()),
        &manifest,
    );
    let mut annotations = serde_json::Map::new();
    if let Some(n) = name {
        annotations.insert("org.opencontainers.image.ref.name".into(), n.into());
    }
    let index = serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
                       "digest": manifest_d.to_string(), "size": manifest.len(),
                       "annotations": annotations}],
    });
    add(
        &mut b,
        "index.json",
        &serde_json::to_vec(&index).expect("json"),
    );
    (b.into_inner().expect("archive"), config_d)
}

#[test]
fn an_oci_archive_with_gzip_layers_loads_and_a_bad_blob_is_refused() {
    let dir = Dir::new("oci");
    let images = Images::open(&dir.0).expect("open");
    let layers = [
        rootfs(),
        TarBuilder::new().file("etc/motd", b"hello").finish(),
    ];
    let (archive, id) = oci_archive(&layers, Some("oci-test:1.0"), false);
    let loaded = images.load(&archive[..]).expect("load");
    assert_eq!(
        loaded,
        [Loaded {
            id: id.clone(),
            tags: vec!["oci-test:1.0".into()]
        }]
    );
    let img = images.resolve("oci-test:1.0").expect("resolve");
    assert_eq!(img.id, id);
    assert_eq!(img.size, 22 + 5);
    assert!(images.lower_dirs(&img)[0].join("etc/motd").is_file());

    // A tag alone in ref.name names no repository: the image is untagged.
    let (archive, _) = oci_archive(&layers[..1], Some("1.0"), false);
    assert!(images.load(&archive[..]).expect("load")[0].tags.is_empty());

    let other = Dir::new("oci-bad");
    let fresh = Images::open(&other.0).expect("open");
    let (archive, _) = oci_archive(&layers, None, true);
    let err = fresh.load(&archive[..]).expect_err("corrupt layer");
    assert!(err.is_invalid(), "{err}");
    assert!(
        fresh.list().expect("list").is_empty(),
        "nothing was recorded"
    );
    let leftovers = std::fs::read_dir(fresh.root().join("tmp")).expect("tmp");
    assert_eq!(leftovers.count(), 0, "the spool and unpacked layers went");

    let err = fresh
        .load(&TarBuilder::new().file("hello", b"x").finish()[..])
        .expect_err("not an image");
    assert!(matches!(err, Error::NotAnImage { .. }), "{err}");
}

#[test]
fn an_archive_entry_that_escapes_is_refused() {
    let dir = Dir::new("escape-archive");
    let images = Images::open(&dir.0).expect("open");
    let evil = TarBuilder::new().file("../../evil", b"x").finish();
    let r = Reference::parse("evil").expect("ref");
    let err = images
        .import(
            &evil[..],
            &Import {
                reference: Some(&r),
                changes: &[],
                created: "2026-12-01T00:00:00Z",
            },
        )
        .expect_err("escape");
    assert!(matches!(err, Error::UnsafeEntry { .. }), "{err}");
    assert!(images.resolve("evil").is_err());
    assert!(!dir.0.join("evil").exists() && !Path::new("/evil").exists());
}

#[test]
fn removing_untags_a_second_name_refuses_while_in_use_and_collects_layers() {
    let dir = Dir::new("remove");
    let images = Images::open(&dir.0).expect("open");
    let img = import(&images, "a", "2026-12-01T00:00:00Z", &[]);
    let same = import(&images, "b", "2026-12-01T00:00:00Z", &[]);
    assert_eq!(img.id, same.id, "the same tar and config: the same image");
    assert_eq!(
        images.resolve("a").expect("a").repo_tags,
        ["a:latest", "b:latest"]
    );

    let err = images
        .remove(img.id.short(), &Removal::default())
        .expect_err("two names");
    assert!(err.is_conflict(), "{err}");
    let removed = images.remove("b", &Removal::default()).expect("untag");
    assert_eq!(
        removed,
        Removed {
            untagged: vec!["b:latest".into()],
            deleted: None
        }
    );

    let users = Removal {
        users: vec!["web".into()],
        ..Removal::default()
    };
    let err = images.remove("a", &users).expect_err("in use");
    assert!(err.is_conflict(), "{err}");
    assert!(err.to_string().contains("web"), "{err}");

    let lower = images.lower_dirs(&img);
    let forced = Removal {
        force: true,
        users: vec!["web".into()],
        busy_layers: lower.clone(),
    };
    let removed = images.remove("a", &forced).expect("forced");
    assert_eq!(removed.deleted, Some(img.id.clone()));
    assert!(images.resolve("a").expect_err("gone").is_not_found());
    assert!(lower[0].is_dir(), "a layer a container mounts stays");

    let again = import(&images, "c", "2026-12-02T00:00:00Z", &[]);
    images.remove("c", &Removal::default()).expect("rm");
    assert!(
        !images.lower_dirs(&again)[0].exists(),
        "an unused layer goes"
    );
    assert!(images.list().expect("list").is_empty());
}
