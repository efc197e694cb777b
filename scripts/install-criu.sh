#!/usr/bin/env bash
# Installs CRIU 4.1.1 as /usr/local/sbin/criu, built from the upstream tarball
# that Debian's archive serves for trixie, unless a CRIU of at least 4.1 is
# already on PATH. Debian 12's CRIU 3.17 fails `criu check` on current kernels
# (its vDSO handling predates them), and trixie's binary package needs a newer
# glibc, so it is built here from source.
#
# With one patch of the project's, scripts/criu-sockopts.patch: Linux 6.16
# answers EOPNOTSUPP to SO_PASSCRED and SO_PASSSEC on sockets other than
# AF_UNIX and AF_NETLINK, and CRIU 4.1.1 then fails to dump any TCP socket
# ("Can't get 1:16 opt"; upstream issues 2705 and 2718). A marker file
# next to the binary says the build has it; a 4.1 without the marker is
# rebuilt (a later CRIU is taken as it is).
#
# The trixie source entry lives in a private apt configuration under a
# temporary directory: the machine's sources and package lists are not touched.
# The tarball is checked against the sha256 that trixie's Sources index gives.
# Needs root (build dependencies are installed with apt-get). About three
# minutes on two cores.
set -euo pipefail

version=4.1.1
sha256=f80a66cb3726bb2116266d4759ce3bcbfab7abdb6b6d430bf20dd41911717afe
dest=/usr/local/sbin/criu
marker=/usr/local/share/stasis/criu-sockopts-patched
patch=$(cd "$(dirname "$0")" && pwd)/criu-sockopts.patch

have=$( (criu --version 2>/dev/null || true) | sed -n 's/^Version: *\([0-9][0-9.]*\).*/\1/p')
if [ -n "$have" ] && printf '4.1\n%s\n' "$have" | sort -V -C \
  && { [ -f "$marker" ] || ! printf '%s\n4.1.1\n' "$have" | sort -V -C; }; then
  echo "install-criu: CRIU $have is installed ($(command -v criu)); nothing to do"
  exit 0
fi
[ "$(id -u)" -eq 0 ] || { echo "install-criu: needs root" >&2; exit 1; }

export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends build-essential pkgconf libbsd-dev \
  libcap-dev libgnutls28-dev libnet1-dev libnl-3-dev libprotobuf-c-dev \
  libprotobuf-dev protobuf-c-compiler protobuf-compiler python3-protobuf \
  uuid-dev libnftables-dev xz-utils ca-certificates patch

work=$(mktemp -d /tmp/stasis-criu-XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/lists/partial" "$work/src"
echo "deb-src http://deb.debian.org/debian trixie main" > "$work/sources.list"
apt_private=(-o "Dir::Etc::SourceList=$work/sources.list" -o "Dir::Etc::SourceParts=-"
  -o "Dir::State::Lists=$work/lists" -o "APT::Sandbox::User=root")
apt-get "${apt_private[@]}" update -q
tarball=criu_${version}.orig.tar.xz
# The .dsc may be missing while the tarball is served: the download of the
# rest may fail, the tarball is what counts.
(cd "$work/src" && apt-get "${apt_private[@]}" source --download-only "criu=${version}-1") || true
[ -f "$work/src/$tarball" ] || { echo "install-criu: $tarball was not downloaded" >&2; exit 1; }
echo "$sha256  $work/src/$tarball" | sha256sum -c --quiet - \
  || { echo "install-criu: $tarball does not match its sha256" >&2; exit 1; }

tar -xJf "$work/src/$tarball" -C "$work/src"
dir=$(find "$work/src" -mindepth 1 -maxdepth 1 -type d -name 'criu*' | head -1)
patch -d "$dir" -p1 < "$patch"
make -C "$dir" -j"$(nproc)" criu >"$work/build.log" 2>&1 \
  || { tail -30 "$work/build.log" >&2; echo "install-criu: build failed" >&2; exit 1; }
install -D -m 0755 "$dir/criu/criu" "$dest"
install -D -m 0644 /dev/null "$marker"
echo "install-criu: installed $("$dest" --version | head -1) as $dest"
"$dest" check || { echo "install-criu: criu check failed on this kernel" >&2; exit 1; }
