# Sourced by the benchmarks that run podman beside stasis (pods.sh,
# isolation.sh): a podman of the benchmark's own, so that nothing of the
# machine's podman (its storage, containers, networks) is touched or used.
#
#   PM                  its config, storage, run and tmp directory (made here)
#   podman_cleanup      removes every pod and container of that podman
#   podman_unmount      unmounts what its overlay storage left mounted
#
# cgroupfs (no systemd here), file events, runc, private storage and network
# config; the caller removes "$PM" in its EXIT trap after the two functions.

PM=$(mktemp -d /tmp/stasis-bench-podman-XXXXXX)
mkdir -p "$PM/tmp" "$PM/net"
cat >"$PM/containers.conf" <<CONF
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=8192:8192"]
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
runtime = "runc"
tmp_dir = "$PM/tmp"
[network]
network_config_dir = "$PM/net"
CONF
cat >"$PM/storage.conf" <<CONF
[storage]
driver = "overlay"
graphroot = "$PM/graph"
runroot = "$PM/run"
CONF
export CONTAINERS_CONF=$PM/containers.conf CONTAINERS_STORAGE_CONF=$PM/storage.conf

podman_cleanup() {
    podman pod rm -af -t 0 >/dev/null 2>&1 || true
    podman rm -af -t 0 >/dev/null 2>&1 || true
}

# overlay mounts of our own podman storage, innermost first
podman_unmount() {
    local m
    for m in $(awk -v p="$PM/" 'index($5, p) == 1 { print $5 }' /proc/self/mountinfo | sort -r); do
        umount "$m" 2>/dev/null || umount -l "$m"
    done
}
