#!/usr/bin/env bash
# The one command that runs stasis's tests: installs what they need, then runs
# every test of the workspace with the root-only suites required.
#
#   sudo bash scripts/test.sh [CARGO TEST ARGS...]
#
# As root it installs the Debian packages below (apt-get update and install,
# only when one is missing) and CRIU 4.1 (scripts/install-criu.sh, a no-op
# when it is there), and sets STASIS_REQUIRE_ROOT_TESTS=1, so a kernel
# test that cannot run fails instead of skipping. Without root it installs
# nothing and runs the tests as they are: the kernel tests skip, each saying
# why. The tests start and stop the daemons they use themselves (containerd,
# dockerd, podman) on private sockets.
set -euo pipefail
cd "$(dirname "$0")/.."

# python3: test workloads; util-linux: unshare, nsenter, setpriv; binutils:
# readelf (the stasis-pause artifact check); gcc: cargo's linker driver;
# runc, crun, podman, containerd, docker.io, busybox-static, tar: the
# interoperability tests (crates/stasis/tests/runtimes.rs); nftables: the
# reject rules of --reset-connections (stasis runs nft); rabbitmq-server and
# python3-pika: the broker and clients of crates/stasis/tests/rabbitmq.rs;
# python3-grpcio: the gRPC servers and client of crates/stasis/tests/reset.rs;
# python3-docker: the Python docker SDK of crates/stasis/tests/docker_clients.rs
# (docker.io gives that test its docker CLI); protobuf-compiler: protoc for the
# k8s-cri crate, the CRI client of crates/stasis/tests/sandbox_image.rs.
packages=(python3 util-linux binutils gcc runc crun podman containerd docker.io
  busybox-static tar nftables rabbitmq-server python3-pika python3-grpcio python3-docker
  protobuf-compiler)

if [ "$(id -u)" -eq 0 ]; then
  missing=()
  for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    # The engines' packages ship init scripts (docker.io's /etc/init.d/docker);
    # a daemon started on install would touch the host's network and /run.
    # Deny every service start while installing, unless the machine already
    # has a policy (its own policy-rc.d stays as it is).
    policy=/usr/sbin/policy-rc.d
    if [ ! -e "$policy" ]; then
      printf '#!/bin/sh\nexit 101\n' > "$policy"
      chmod 755 "$policy"
      trap 'rm -f "$policy"' EXIT
    fi
    apt-get update -q
    apt-get install -y -q --no-install-recommends "${missing[@]}"
  fi
  # CRIU 4.1 for checkpoint/restore, built from source (see the script).
  bash scripts/install-criu.sh
  export STASIS_REQUIRE_ROOT_TESTS=1
else
  echo "scripts/test.sh: not root: installing nothing; the kernel tests will skip" >&2
fi

cargo test --workspace "$@"
