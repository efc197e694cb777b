"""Counts as fast as it can, rewriting a fixed-width number in place: a
reader never sees the file empty, even when the writer is frozen mid-loop."""
import os
import sys

fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT, 0o644)
count = 0
while True:
    count += 1
    os.pwrite(fd, b"%020d" % count, 0)
