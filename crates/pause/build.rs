//! Links the `release` and `pause` profile builds as a static, loader-free,
//! libc-free executable.
//!
//! Those two profiles (workspace `Cargo.toml`, `panic = "abort"`) build the
//! artifact, so a `stasis` built with `cargo build --release` finds the small
//! binary next to itself; the dev and test profiles build a hosted variant of
//! the same code that links like any Rust program, because a `no_std` binary
//! cannot be built with `panic = "unwind"`, which they use. Cargo tells a
//! build script neither the profile name nor its panic strategy, so the profile
//! is read from the output directory, which Cargo names after the profile
//! (`<target>/pause/build/...`). A mismatch (this cfg without `panic = "abort"`)
//! is a compile error in `src/main.rs`, not a broken binary.

use std::env;
use std::path::Path;

/// Linker flags for the artifact. `-nostartfiles -nostdlib` drop crt1.o and libc
/// (our `_start` is in `src/sys.rs`); `-static -no-pie` give an ET_EXEC without
/// PT_INTERP or relocations, so no loader and no self-relocation are needed; the
/// rest remove padding and sections a 4 KiB program does not use.
const NOLIBC_LINK_ARGS: &[&str] = &[
    "-nostartfiles",
    "-nostdlib",
    "-static",
    "-no-pie",
    "-Wl,--gc-sections",
    "-Wl,--build-id=none",
    "-Wl,-z,norelro",
    "-Wl,-z,noseparate-code",
    "-Wl,-n",
];

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rustc-check-cfg=cfg(stasis_nolibc)");
    let out_dir = env::var_os("OUT_DIR").expect("cargo sets OUT_DIR for build scripts");
    if matches!(profile_dir(Path::new(&out_dir)), Some("release" | "pause")) {
        println!("cargo::rustc-cfg=stasis_nolibc");
        for arg in NOLIBC_LINK_ARGS {
            println!("cargo::rustc-link-arg-bins={arg}");
        }
    }
}

/// The directory Cargo named after the profile: the parent of the nearest
/// `build` ancestor of `OUT_DIR` (`<profile>/build/<pkg>-<hash>/out`).
fn profile_dir(out_dir: &Path) -> Option<&str> {
    let build = out_dir
        .ancestors()
        .find(|p| p.file_name().is_some_and(|n| n == "build"))?;
    build.parent()?.file_name()?.to_str()
}
