//! The whole unsafe surface: the process entry point and raw x86_64 Linux
//! syscalls, with safe wrappers for the rest of the crate.
//!
//! Every syscall goes through [`syscall4`], which returns the kernel's raw result
//! (`-4095..=-1` is `-errno`). The wrappers only ever pass pointers derived from
//! Rust references that outlive the call, or null where the kernel documents null
//! as "not wanted", so no wrapper can make the kernel write outside our memory.

use core::arch::asm;
use core::ffi::CStr;

const SYS_WRITEV: usize = 20;
const SYS_CLOSE: usize = 3;
const SYS_RT_SIGPROCMASK: usize = 14;
const SYS_GETPID: usize = 39;
const SYS_WAIT4: usize = 61;
const SYS_CHDIR: usize = 80;
const SYS_RT_SIGTIMEDWAIT: usize = 128;
const SYS_PRCTL: usize = 157;
const SYS_EXIT_GROUP: usize = 231;
const SYS_PRLIMIT64: usize = 302;
const SYS_CLOSE_RANGE: usize = 436;

pub const SIGINT: u32 = 2;
pub const SIGTERM: u32 = 15;
pub const SIGCHLD: u32 = 17;

pub const EINTR: isize = 4;
pub const EAGAIN: isize = 11;
const ENOSYS: isize = 38;

pub const STDOUT: i32 = 1;
pub const STDERR: i32 = 2;

const SIG_BLOCK: usize = 0;
const PR_SET_CHILD_SUBREAPER: usize = 36;
const WNOHANG: usize = 1;
/// Also reap children created with a non-SIGCHLD exit signal (clone users that
/// were our children before we exec'd); orphans are reset to SIGCHLD anyway.
const WALL: usize = 0x4000_0000;
const RLIMIT_NOFILE: usize = 7;
/// The kernel's `sigset_t` is one 64-bit word on x86_64.
const SIGSET_SIZE: usize = 8;

/// A raw syscall with up to four arguments.
///
/// # Safety
/// The caller must pass arguments that are valid for syscall `nr`: every pointer
/// argument must be null where the syscall allows it, or point to memory that is
/// valid for the reads and writes the kernel documents for that syscall.
#[inline(always)]
unsafe fn syscall4(nr: usize, a: usize, b: usize, c: usize, d: usize) -> isize {
    let ret: isize;
    // SAFETY: the x86_64 syscall ABI: number in rax, arguments in rdi, rsi, rdx,
    // r10; the kernel clobbers rcx and r11 and nothing else, and does not touch
    // our stack. Memory safety of the arguments is the caller's contract.
    unsafe {
        asm!(
            "syscall",
            inlateout("rax") nr as isize => ret,
            in("rdi") a,
            in("rsi") b,
            in("rdx") c,
            in("r10") d,
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack),
        );
    }
    ret
}

/// `exit_group(2)`: ends every thread of the process.
pub fn exit(code: i32) -> ! {
    // SAFETY: exit_group takes no pointers; any int is a valid status.
    unsafe { syscall4(SYS_EXIT_GROUP, code as usize, 0, 0, 0) };
    // exit_group does not return; spin rather than invoke UB if it ever did.
    #[allow(clippy::empty_loop)]
    loop {}
}

/// Writes `parts` as one line with a single `writev(2)`, so concurrent writers
/// to the same pipe cannot split it. Output is best effort: there is nobody to
/// report a failed diagnostic to.
pub fn write_parts(fd: i32, parts: &[&[u8]]) {
    #[repr(C)]
    #[derive(Clone, Copy)]
    struct Iovec {
        base: *const u8,
        len: usize,
    }
    const MAX: usize = 6;
    let mut iov = [Iovec {
        base: core::ptr::null(),
        len: 0,
    }; MAX];
    let n = parts.len().min(MAX);
    for (slot, part) in iov.iter_mut().zip(parts) {
        *slot = Iovec {
            base: part.as_ptr(),
            len: part.len(),
        };
    }
    // SAFETY: the first `n` iovecs point into slices borrowed for the whole call
    // with their exact lengths; writev only reads them.
    unsafe { syscall4(SYS_WRITEV, fd as usize, iov.as_ptr() as usize, n, 0) };
}

/// `chdir(2)`.
pub fn chdir(path: &CStr) -> Result<(), isize> {
    // SAFETY: `path` is NUL-terminated and borrowed for the call; chdir only reads it.
    check(unsafe { syscall4(SYS_CHDIR, path.as_ptr() as usize, 0, 0, 0) })
}

/// Closes every descriptor from `first` up, with `close_range(2)` (Linux 5.9),
/// or one `close(2)` per possible descriptor below `RLIMIT_NOFILE` before that.
pub fn close_from(first: u32) {
    // SAFETY: close_range takes no pointers; closing descriptors we do not use
    // cannot affect memory safety (no Rust object owns one in this program).
    let ret = unsafe { syscall4(SYS_CLOSE_RANGE, first as usize, u32::MAX as usize, 0, 0) };
    if ret != -ENOSYS {
        return;
    }
    let mut limit = [0u64; 2];
    // SAFETY: prlimit64(pid 0 = self, RLIMIT_NOFILE, new = NULL, old = &limit):
    // the kernel writes one `struct rlimit64` (two u64) into `limit`, which is
    // exactly that size and lives for the call.
    let ret = unsafe {
        syscall4(
            SYS_PRLIMIT64,
            0,
            RLIMIT_NOFILE,
            0,
            limit.as_mut_ptr() as usize,
        )
    };
    // A descriptor above the soft limit can still be inherited, but only if the
    // limit was lowered after it was opened; bound the loop either way.
    let end = if ret < 0 { 1024 } else { limit[0].min(1 << 20) };
    for fd in u64::from(first)..end {
        // SAFETY: close takes no pointers (see close_range above).
        unsafe { syscall4(SYS_CLOSE, fd as usize, 0, 0, 0) };
    }
}

/// `getpid(2)`.
pub fn getpid() -> isize {
    // SAFETY: getpid takes no arguments and cannot fail.
    unsafe { syscall4(SYS_GETPID, 0, 0, 0, 0) }
}

/// Makes orphaned descendants re-parent to us instead of to PID 1.
pub fn set_child_subreaper() -> Result<(), isize> {
    // SAFETY: PR_SET_CHILD_SUBREAPER takes an integer flag, no pointers.
    check(unsafe { syscall4(SYS_PRCTL, PR_SET_CHILD_SUBREAPER, 1, 0, 0) })
}

/// A set of signals, in the kernel's layout (bit `n - 1` is signal `n`).
#[derive(Clone, Copy, Debug)]
pub struct SigSet(u64);

impl SigSet {
    pub const fn of(signals: &[u32]) -> Self {
        let mut bits = 0u64;
        let mut i = 0;
        while i < signals.len() {
            bits |= 1 << (signals[i] - 1);
            i += 1;
        }
        Self(bits)
    }

    /// Adds `set` to the signal mask, so its signals stay pending until
    /// [`SigSet::wait`] takes them. Blocked signals are queued even for PID 1 of
    /// a namespace, which the kernel otherwise shields from default-action signals.
    pub fn block(&self) -> Result<(), isize> {
        // SAFETY: rt_sigprocmask reads one sigset_t (SIGSET_SIZE bytes) from
        // `&self.0`, borrowed for the call; old-set pointer is NULL (not wanted).
        check(unsafe {
            syscall4(
                SYS_RT_SIGPROCMASK,
                SIG_BLOCK,
                &self.0 as *const u64 as usize,
                0,
                SIGSET_SIZE,
            )
        })
    }

    /// Waits, with no timeout, for one signal of the set and returns its number.
    pub fn wait(&self) -> Result<u32, isize> {
        // SAFETY: rt_sigtimedwait reads one sigset_t from `&self.0`, borrowed for
        // the call; siginfo and timeout are NULL, which the kernel documents as
        // "don't report" and "wait forever".
        let ret = unsafe {
            syscall4(
                SYS_RT_SIGTIMEDWAIT,
                &self.0 as *const u64 as usize,
                0,
                0,
                SIGSET_SIZE,
            )
        };
        check(ret).map(|()| ret as u32)
    }
}

/// Reaps one exited child of any kind without blocking: `Ok(true)` if one was
/// reaped, `Ok(false)` if children remain but none has exited, `Err(-errno)`
/// otherwise (ECHILD: none left).
pub fn reap_one() -> Result<bool, isize> {
    // SAFETY: wait4(-1, status = NULL, options, rusage = NULL): both pointers
    // are NULL, which wait4 documents as "not wanted".
    let ret = unsafe { syscall4(SYS_WAIT4, usize::MAX, 0, WNOHANG | WALL, 0) };
    check(ret).map(|()| ret > 0)
}

fn check(ret: isize) -> Result<(), isize> {
    if (-4095..0).contains(&ret) {
        Err(-ret)
    } else {
        Ok(())
    }
}

/// The process arguments, as the kernel (or the C runtime) handed them over.
#[derive(Clone, Copy, Debug)]
pub struct Args {
    argc: usize,
    argv: *const *const u8,
}

impl Args {
    /// Every argument, including `argv[0]`, without its NUL terminator.
    pub fn iter(self) -> impl Iterator<Item = &'static [u8]> {
        (0..self.argc).map(move |i| {
            // SAFETY: `Args` is only built by the entry points below from the
            // argc/argv the kernel (or libc's crt1) passes: `argv` holds `argc`
            // valid pointers to NUL-terminated strings in memory that is never
            // freed or written while the process runs, hence `'static`. `len`
            // stops at the terminator, so every byte read is inside the string.
            unsafe {
                let arg = *self.argv.add(i);
                let mut len = 0;
                // Volatile, so LLVM cannot turn the loop into a call to libc's
                // strlen (CStr::from_ptr calls it too): there is no libc here.
                while core::ptr::read_volatile(arg.add(len)) != 0 {
                    len += 1;
                }
                core::slice::from_raw_parts(arg, len)
            }
        })
    }
}

// The artifact's entry point. The kernel starts us with `rsp` pointing at argc,
// followed by argv; the SysV ABI wants `rsp + 8` 16-byte aligned inside the
// called function, which `and` followed by `call` provides. `rbp = 0` ends
// frame-pointer chains for debuggers.
#[cfg(all(stasis_nolibc, not(test)))]
core::arch::global_asm!(
    ".globl _start",
    ".type _start,@function",
    "_start:",
    "xor ebp, ebp",
    "mov rdi, rsp",
    "and rsp, -16",
    "call {entry}",
    "ud2",
    entry = sym start,
);

#[cfg(all(stasis_nolibc, not(test)))]
extern "C" fn start(sp: *const usize) -> ! {
    // SAFETY: `_start` passes the initial stack pointer, where the kernel's ELF
    // loader put argc (one word) followed by argc argv pointers and a NULL.
    let args = unsafe {
        Args {
            argc: *sp,
            argv: sp.add(1).cast(),
        }
    };
    crate::run(args)
}

/// The hosted variant's entry point (the dev and test profiles; see build.rs):
/// called by libc's crt1 with the same argc/argv.
#[cfg(not(any(stasis_nolibc, test)))]
#[unsafe(no_mangle)]
extern "C" fn main(argc: core::ffi::c_int, argv: *const *const u8) -> core::ffi::c_int {
    crate::run(Args {
        argc: argc as usize,
        argv,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sigset_matches_the_kernel_layout() {
        assert_eq!(SigSet::of(&[SIGINT, SIGTERM, SIGCHLD]).0, 0x1_4002);
    }

    #[test]
    fn check_maps_errno_range_only() {
        assert_eq!(check(-EINTR), Err(EINTR));
        assert_eq!(check(0), Ok(()));
        assert_eq!(check(42), Ok(()));
        assert_eq!(check(-4096), Ok(()));
    }
}
