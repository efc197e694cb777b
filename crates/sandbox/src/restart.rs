//! Restart policies, as docker has them (`--restart no|on-failure[:N]|
//! always|unless-stopped`), and the back-off between restarts (moby's
//! restart manager: 100 ms, doubling up to a minute, back to 100 ms after a
//! run of 10 s or more). The monitor applies them; `stop`, `kill` and `rm`
//! end them by marking the record stopped first.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The first delay before a restart.
const FIRST_DELAY: Duration = Duration::from_millis(100);
/// The longest delay.
const MAX_DELAY: Duration = Duration::from_secs(60);
/// A run this long resets the delay.
const RESET_AFTER: Duration = Duration::from_secs(10);

/// When a container's monitor starts its command again.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "name", rename_all = "kebab-case")]
pub enum RestartPolicy {
    /// Never (docker's default).
    #[default]
    No,
    /// After a non-zero exit, at most `max` times (0: no maximum).
    OnFailure {
        #[serde(default)]
        max: u32,
    },
    /// After any exit, until stopped.
    Always,
    /// As `always`. docker tells the two apart only when its daemon starts
    /// again (it restarts `always` containers a user had stopped); stasis has
    /// no daemon, and its state does not outlive a reboot.
    UnlessStopped,
}

impl RestartPolicy {
    /// Parses docker's syntax.
    pub fn parse(text: &str) -> Result<Self> {
        let bad = |reason: &'static str| Error::InvalidArgument {
            what: "restart policy",
            value: text.to_owned(),
            reason,
        };
        let (name, count) = match text.split_once(':') {
            Some((n, c)) => (n, Some(c)),
            None => (text, None),
        };
        let policy = match name {
            "no" | "" => RestartPolicy::No,
            "always" => RestartPolicy::Always,
            "unless-stopped" => RestartPolicy::UnlessStopped,
            "on-failure" => RestartPolicy::OnFailure {
                max: match count {
                    Some(c) => c
                        .parse()
                        .map_err(|_| bad("the maximum retry count must be a number"))?,
                    None => 0,
                },
            },
            _ => {
                return Err(bad(
                    "use no, always, unless-stopped or on-failure[:max-retries]",
                ))
            }
        };
        if count.is_some() && !matches!(policy, RestartPolicy::OnFailure { .. }) {
            return Err(bad("only on-failure takes a maximum retry count"));
        }
        Ok(policy)
    }

    /// docker's `RestartPolicy.Name`.
    pub fn name(self) -> &'static str {
        match self {
            RestartPolicy::No => "no",
            RestartPolicy::OnFailure { .. } => "on-failure",
            RestartPolicy::Always => "always",
            RestartPolicy::UnlessStopped => "unless-stopped",
        }
    }

    /// docker's `RestartPolicy.MaximumRetryCount`.
    pub fn max_retries(self) -> u32 {
        match self {
            RestartPolicy::OnFailure { max } => max,
            _ => 0,
        }
    }

    /// Whether a command that exited with `code`, restarted `restarts`
    /// times so far, runs again (a stopped container never does).
    pub fn should_restart(self, code: i32, restarts: u32) -> bool {
        match self {
            RestartPolicy::No => false,
            RestartPolicy::Always | RestartPolicy::UnlessStopped => true,
            RestartPolicy::OnFailure { max } => code != 0 && (max == 0 || restarts < max),
        }
    }

    /// Whether it restarts at all.
    pub fn is_none(self) -> bool {
        self == RestartPolicy::No
    }
}

/// The delay before each restart.
#[derive(Debug, Default)]
pub(crate) struct Backoff {
    last: Option<Duration>,
}

impl Backoff {
    /// The delay before the next start, after a run of `ran`.
    pub(crate) fn next(&mut self, ran: Duration) -> Duration {
        let delay = match self.last {
            Some(d) if ran < RESET_AFTER => (d * 2).min(MAX_DELAY),
            _ => FIRST_DELAY,
        };
        self.last = Some(delay);
        delay
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies_parse_as_docker_writes_them() {
        assert_eq!(RestartPolicy::parse("no").expect("no"), RestartPolicy::No);
        assert_eq!(
            RestartPolicy::parse("on-failure").expect("on-failure"),
            RestartPolicy::OnFailure { max: 0 }
        );
        assert_eq!(
            RestartPolicy::parse("on-failure:2").expect("on-failure:2"),
            RestartPolicy::OnFailure { max: 2 }
        );
        assert_eq!(
            RestartPolicy::parse("always").expect("always"),
            RestartPolicy::Always
        );
        assert_eq!(
            RestartPolicy::parse("unless-stopped").expect("unless-stopped"),
            RestartPolicy::UnlessStopped
        );
        for bad in ["sometimes", "always:3", "on-failure:x", "on-failure:-1"] {
            assert!(
                RestartPolicy::parse(bad).expect_err(bad).is_invalid(),
                "{bad}"
            );
        }
    }

    #[test]
    fn on_failure_counts_and_always_does_not() {
        let p = RestartPolicy::OnFailure { max: 2 };
        assert!(p.should_restart(1, 0));
        assert!(p.should_restart(1, 1));
        assert!(!p.should_restart(1, 2), "twice, then it stops");
        assert!(!p.should_restart(0, 0), "a success is not a failure");
        assert!(RestartPolicy::OnFailure { max: 0 }.should_restart(3, 1000));
        assert!(RestartPolicy::Always.should_restart(0, 1000));
        assert!(!RestartPolicy::No.should_restart(1, 0));
    }

    #[test]
    fn the_delay_doubles_and_a_long_run_resets_it() {
        let mut b = Backoff::default();
        let short = Duration::from_millis(5);
        let ms = |n| Duration::from_millis(n);
        assert_eq!(b.next(short), ms(100));
        assert_eq!(b.next(short), ms(200));
        assert_eq!(b.next(short), ms(400));
        assert_eq!(b.next(Duration::from_secs(10)), ms(100));
        for _ in 0..20 {
            b.next(short);
        }
        assert_eq!(b.next(short), MAX_DELAY);
    }
}
