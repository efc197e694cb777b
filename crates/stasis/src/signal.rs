//! Signal names as `kill -s` and `docker kill --signal` take them: `TERM`,
//! `SIGTERM`, `sigterm` or a number.

use rustix::process::Signal;

/// Every signal by its name without `SIG`, in signal(7)'s order.
const NAMES: &[(&str, i32)] = &[
    ("HUP", libc::SIGHUP),
    ("INT", libc::SIGINT),
    ("QUIT", libc::SIGQUIT),
    ("ILL", libc::SIGILL),
    ("TRAP", libc::SIGTRAP),
    ("ABRT", libc::SIGABRT),
    ("IOT", libc::SIGIOT),
    ("BUS", libc::SIGBUS),
    ("FPE", libc::SIGFPE),
    ("KILL", libc::SIGKILL),
    ("USR1", libc::SIGUSR1),
    ("SEGV", libc::SIGSEGV),
    ("USR2", libc::SIGUSR2),
    ("PIPE", libc::SIGPIPE),
    ("ALRM", libc::SIGALRM),
    ("TERM", libc::SIGTERM),
    ("STKFLT", libc::SIGSTKFLT),
    ("CHLD", libc::SIGCHLD),
    ("CONT", libc::SIGCONT),
    ("STOP", libc::SIGSTOP),
    ("TSTP", libc::SIGTSTP),
    ("TTIN", libc::SIGTTIN),
    ("TTOU", libc::SIGTTOU),
    ("URG", libc::SIGURG),
    ("XCPU", libc::SIGXCPU),
    ("XFSZ", libc::SIGXFSZ),
    ("VTALRM", libc::SIGVTALRM),
    ("PROF", libc::SIGPROF),
    ("WINCH", libc::SIGWINCH),
    ("IO", libc::SIGIO),
    ("POLL", libc::SIGPOLL),
    ("PWR", libc::SIGPWR),
    ("SYS", libc::SIGSYS),
];

/// Parses a signal name or number.
pub fn parse(s: &str) -> Result<Signal, String> {
    let upper = s.to_ascii_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    let raw = match NAMES.iter().find(|(n, _)| *n == name) {
        Some((_, raw)) => *raw,
        None => name
            .parse()
            .map_err(|_| format!("unknown signal {s:?} (use a name such as TERM, or a number)"))?,
    };
    Signal::from_named_raw(raw).ok_or_else(|| format!("unknown signal {s:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_numbers_and_case() {
        for s in ["TERM", "SIGTERM", "sigterm", "term", "15"] {
            assert_eq!(parse(s), Ok(Signal::TERM), "{s}");
        }
        assert_eq!(parse("KILL"), Ok(Signal::KILL));
        assert_eq!(parse("winch"), Ok(Signal::WINCH));
        for bad in ["", "SIG", "NOPE", "0", "-1", "999"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
