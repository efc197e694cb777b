//! What the real-kernel test suites of the stasis crates share; a
//! dev-dependency only, never part of a shipped binary.
//!
//! - [`root_or_skip`]: the gate of every root-only test. It skips with the
//!   reason when not root, and fails instead when `STASIS_REQUIRE_ROOT_TESTS=1`
//!   (as CI sets it), so a green run never hides a skipped suite.
//! - [`rabbitmq`]: a private RabbitMQ broker on 127.0.0.1 for the
//!   pause-without-harm tests, torn down by PID.
//! - [`containerd`] (feature `containerd`): a private containerd with its
//!   CRI plugin, and a CRI client making the kubelet's calls to it; the
//!   feature keeps tonic and the CRI protocol out of the suites that do not
//!   need them.
//! - [`wait_until`], [`run_bounded`], [`wait_bounded`], [`terminate`]: every wait of a test
//!   is bounded; [`unique_name`]: `stasis-test-<random>`; [`pod_uid`].
//! - [`pause_artifact`]: the `stasis-pause` binary the `pause` profile
//!   builds (static, no libc), and [`stasis_binary`], the CLI for another
//!   crate's suite, each built on first use into the same target directory.

mod bounded;
#[cfg(feature = "containerd")]
pub mod containerd;
pub mod rabbitmq;

pub use bounded::{
    pod_uid, read_trimmed, run_bounded, run_fed, terminate, unique_name, wait_bounded, wait_until,
    Run,
};

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Whether a root-only test may run: `true` as root; otherwise prints why it
/// skips and returns `false`, or panics when `STASIS_REQUIRE_ROOT_TESTS=1`.
pub fn root_or_skip(test: &str) -> bool {
    if rustix::process::geteuid().is_root() {
        return true;
    }
    assert!(
        std::env::var_os("STASIS_REQUIRE_ROOT_TESTS").is_none_or(|v| v != "1"),
        "{test} needs root, and STASIS_REQUIRE_ROOT_TESTS=1 requires root tests to run"
    );
    eprintln!("skipping {test}: needs root (STASIS_REQUIRE_ROOT_TESTS=1 makes this a failure)");
    false
}

/// The `stasis-pause` artifact, built once per test process with
/// `cargo build -p stasis-pause --profile pause` into the target directory
/// that holds `built_binary` (any binary cargo built for the tests, as
/// `<base>/<profile>/<name>`); `STASIS_PAUSE_BIN` overrides it.
pub fn pause_artifact(built_binary: &Path) -> &'static Path {
    static ARTIFACT: OnceLock<PathBuf> = OnceLock::new();
    ARTIFACT.get_or_init(|| {
        if let Some(path) = std::env::var_os("STASIS_PAUSE_BIN") {
            return std::fs::canonicalize(&path).expect("STASIS_PAUSE_BIN names a file");
        }
        workspace_binary(built_binary, "stasis-pause", "pause", "stasis-pause")
    })
}

/// The `stasis` CLI, for a suite of another crate (whose tests have no
/// `CARGO_BIN_EXE_stasis`): built once per test process with `cargo build
/// -p stasis` into the target directory that holds `built_binary`.
pub fn stasis_binary(built_binary: &Path) -> &'static Path {
    static STASIS: OnceLock<PathBuf> = OnceLock::new();
    STASIS.get_or_init(|| workspace_binary(built_binary, "stasis", "dev", "stasis"))
}

/// Builds binary `name` of workspace package `package` with cargo's
/// `profile` into the target directory that holds `built_binary` (cargo
/// does nothing when it is fresh), within 10 minutes, and returns its
/// canonical path (so that it compares equal to `/proc/PID/exe`).
fn workspace_binary(built_binary: &Path, package: &str, profile: &str, name: &str) -> PathBuf {
    // `<base>` is the target directory, or its `<triple>/` subdirectory
    // when a build target is configured (as .cargo/config.toml does), in
    // which case cargo adds the triple itself.
    let base = built_binary
        .parent()
        .and_then(Path::parent)
        .expect("a built binary lives in <base>/<profile>/");
    let target_dir = if base
        .file_name()
        .is_some_and(|n| n.to_string_lossy().contains("-linux-"))
    {
        base.parent().expect("<target>/<triple>")
    } else {
        base
    };
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut build = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
        .args(["build", "--quiet", "-p", package, "--profile", profile])
        .current_dir(&workspace)
        .env("CARGO_TARGET_DIR", target_dir)
        .spawn()
        .expect("run cargo to build a workspace binary");
    let deadline = Instant::now() + Duration::from_secs(600);
    let status = loop {
        if let Some(status) = build.try_wait().expect("wait for cargo") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = build.kill();
            let _ = build.wait();
            panic!("building {package} took over 10 minutes");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "building {package} failed: {status}");
    // The dev profile's directory is `debug`.
    let dir = if profile == "dev" { "debug" } else { profile };
    std::fs::canonicalize(base.join(dir).join(name))
        .unwrap_or_else(|e| panic!("{package}'s {name} is not there: {e}"))
}
