#!/usr/bin/env bash
# CI check of the stasis-pause artifact, as the `pause` profile builds it and as
# `cargo build --release` builds it next to `stasis` (the binary users run):
# fails unless each is a static executable (no PT_INTERP, no dynamic section),
# stripped, and at most 8 KiB on disk. Prints the sizes.
#
# Usage (from anywhere): crates/pause/check-artifact.sh
# Needs: cargo, gcc (cargo's linker driver), binutils (readelf).
set -euo pipefail

limit=8192
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
target=${CARGO_TARGET_DIR:-target}
[[ $target == /* ]] || target=$root/$target

for profile in pause release; do
  cargo build --quiet -p stasis-pause --profile "$profile"
  bin=$target/x86_64-unknown-linux-gnu/$profile/stasis-pause

  fail() { echo "check-artifact: $bin: $*" >&2; exit 1; }

  headers=$(readelf -lW "$bin")
  grep -q 'Elf file type is EXEC' <<<"$headers" || fail "not a non-PIE executable (ET_EXEC)"
  grep -qw INTERP <<<"$headers" && fail "has a program interpreter (needs a loader)"
  grep -qw DYNAMIC <<<"$headers" && fail "has a dynamic section"
  readelf -SW "$bin" | grep -qw '\.symtab' && fail "is not stripped"
  size=$(stat -L -c %s "$bin")
  (( size <= limit )) || fail "is $size bytes, over the $limit-byte limit"
  version=$("$bin" --version) || fail "--version failed"
  echo "check-artifact: $bin: static, stripped, $size bytes (limit $limit): $version"
done
