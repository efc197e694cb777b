//! Image archives built in the tests (no registry, no docker daemon): a
//! busybox root filesystem tar, a layer on top, and the two archive
//! formats `load` takes, `docker save`'s and OCI's.

use std::io::Write;
use std::path::Path;

use sha2::Digest as _;

pub const APPLETS: [&str; 9] = [
    "sh", "cat", "echo", "test", "ls", "id", "pwd", "sleep", "true",
];

/// A busybox root filesystem tar: /bin/busybox and its applets as
/// symlinks, /etc/passwd with root and app (1000:1000), /srv, /hidden.
pub fn busybox_tar(dir: &Path) -> Vec<u8> {
    let root = dir.join("rootfs");
    std::fs::create_dir_all(root.join("bin")).expect("mkdir");
    std::fs::create_dir_all(root.join("etc")).expect("mkdir");
    std::fs::create_dir_all(root.join("srv")).expect("mkdir");
    std::fs::copy("/bin/busybox", root.join("bin/busybox")).expect("busybox-static is installed");
    for applet in APPLETS {
        std::os::unix::fs::symlink("busybox", root.join("bin").join(applet)).expect("link");
    }
    std::fs::write(
        root.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/srv:/bin/sh\n",
    )
    .expect("passwd");
    std::fs::write(root.join("hidden"), "from the base layer\n").expect("hidden");
    let mut b = tar::Builder::new(Vec::new());
    b.follow_symlinks(false);
    b.append_dir_all(".", &root).expect("tar");
    b.into_inner().expect("tar")
}

/// A layer on top: /etc/motd, and a whiteout of /hidden.
pub fn top_layer() -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    add(&mut b, "etc/motd", b"from the top layer\n");
    add(&mut b, ".wh.hidden", b"");
    b.into_inner().expect("tar")
}

pub fn add(b: &mut tar::Builder<Vec<u8>>, path: &str, body: &[u8]) {
    let mut h = tar::Header::new_gnu();
    h.set_size(body.len() as u64);
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    b.append_data(&mut h, path, body).expect("append");
}

pub fn sha256(bytes: &[u8]) -> String {
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(bytes).expect("gzip");
    gz.finish().expect("gzip")
}

pub fn config(layers: &[&[u8]]) -> Vec<u8> {
    let diff_ids: Vec<String> = layers
        .iter()
        .map(|l| format!("sha256:{}", sha256(l)))
        .collect();
    serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64", "os": "linux", "created": "2026-11-30T10:00:00Z",
        "config": {"Entrypoint": ["/bin/sh", "-c"], "Cmd": ["cat /etc/motd; test -e /hidden || echo hidden is gone"],
                   "Env": ["PATH=/bin"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }))
    .expect("json")
}

pub fn docker_save(base: &[u8], top: &[u8]) -> Vec<u8> {
    let config = config(&[base, top]);
    let name = format!("{}.json", sha256(&config));
    let mut b = tar::Builder::new(Vec::new());
    add(&mut b, "a/layer.tar", base);
    add(&mut b, "b/layer.tar", top);
    add(&mut b, &name, &config);
    let manifest = serde_json::json!([{"Config": name, "RepoTags": ["saved:1"],
                                        "Layers": ["a/layer.tar", "b/layer.tar"]}]);
    add(
        &mut b,
        "manifest.json",
        &serde_json::to_vec(&manifest).expect("json"),
    );
    b.into_inner().expect("tar")
}

pub fn oci(base: &[u8], top: &[u8]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    add(&mut b, "oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#);
    let blob = |b: &mut tar::Builder<Vec<u8>>, bytes: &[u8]| {
        let d = sha256(bytes);
        add(b, &format!("blobs/sha256/{d}"), bytes);
        (format!("sha256:{d}"), bytes.len())
    };
    let layers: Vec<_> = [gzip(base), gzip(top)]
        .iter()
        .map(|l| {
            let (digest, size) = blob(&mut b, l);
            serde_json::json!({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                               "digest": digest, "size": size})
        })
        .collect();
    let (config_digest, config_size) = blob(&mut b, &config(&[base, top]));
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": config_digest, "size": config_size},
        "layers": layers,
    }))
    .expect("json");
    let (manifest_digest, manifest_size) = blob(&mut b, &manifest);
    let index = serde_json::json!({"schemaVersion": 2, "manifests": [{
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": manifest_digest, "size": manifest_size,
        "annotations": {"org.opencontainers.image.ref.name": "oci-img:1"}}]});
    add(
        &mut b,
        "index.json",
        &serde_json::to_vec(&index).expect("json"),
    );
    b.into_inner().expect("tar")
}
