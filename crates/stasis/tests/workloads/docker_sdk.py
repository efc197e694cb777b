"""The Python docker SDK (Debian's python3-docker) against `stasis serve`:
   docker_sdk.py unix:///path/to/stasis.sock
runs a container from the image bbox, lists it by label (the SDK sends label
filters as a list), pauses, inspects, unpauses, reads its logs, stops and
removes it, and runs commands in it with exec_run; prints `sdk ok` when
every step did what docker would."""
import sys

import docker

client = docker.DockerClient(base_url=sys.argv[1], version="auto")
assert client.ping()
c = client.containers.run("bbox", ["sh", "-c", "echo from-sdk; exec sleep 1000"],
                          detach=True, name="sdk", labels={"via": "sdk"},
                          environment={"A": "1"})
listed = client.containers.list(filters={"label": ["via=sdk"]})
assert [x.name for x in listed] == ["sdk"], listed
r = c.exec_run(["sh", "-c", "echo via-exec $B; exit 5"], environment={"B": "2"})
assert (r.exit_code, r.output) == (5, b"via-exec 2\n"), r
r = c.exec_run(["sh", "-c", "echo o; echo e >&2"], demux=True)
assert (r.exit_code, r.output) == (0, (b"o\n", b"e\n")), r
c.pause()
c.reload()
assert c.status == "paused", c.status
assert c.attrs["State"]["Paused"] is True
c.unpause()
c.reload()
assert c.status == "running", c.status
logs = b""
for _ in range(100):
    logs = c.logs()
    if logs:
        break
assert logs.startswith(b"from-sdk"), logs
c.stop(timeout=1)
assert c.wait(timeout=20)["StatusCode"] in (137, 143), c.wait()
c.remove()
assert client.containers.list(all=True) == []
print("sdk ok")
