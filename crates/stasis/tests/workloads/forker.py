"""Forks without pause: each child exits at once and is reaped, so the number
of live processes stays small while the cgroup keeps changing."""
import os

while True:
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
