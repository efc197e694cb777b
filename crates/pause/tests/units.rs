//! The unit tests of stasis-pause's modules. They live in the modules, but
//! run from here: the binary's own test harness would be linked with the
//! artifact's libc-free link arguments (see build.rs and Cargo.toml).

// The modules are compiled as they are in the binary, where `main.rs` uses
// what these tests do not.
#![allow(dead_code)]

#[path = "../src/args.rs"]
mod args;
#[allow(unsafe_code)]
#[path = "../src/sys.rs"]
mod sys;
