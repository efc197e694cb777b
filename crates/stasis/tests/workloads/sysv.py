"""SysV shared memory through libc: `sysv.py write KEY TEXT` creates the
segment and writes TEXT; `sysv.py read KEY` prints what is there."""
import ctypes
import sys

libc = ctypes.CDLL(None, use_errno=True)
libc.shmat.restype = ctypes.c_void_p
IPC_CREAT = 0o1000
mode, key = sys.argv[1], int(sys.argv[2])
shmid = libc.shmget(key, 4096, (IPC_CREAT | 0o600) if mode == "write" else 0)
if shmid < 0:
    sys.exit(f"shmget: errno {ctypes.get_errno()}")
addr = libc.shmat(shmid, None, 0)
if mode == "write":
    data = sys.argv[3].encode() + b"\0"
    ctypes.memmove(addr, data, len(data))
else:
    print(ctypes.string_at(addr).decode())
