//! Durations and statuses in docker's words ("Less than a second ago",
//! "About a minute ago", "Up 2 minutes (Paused)", "Exited (0) 3 seconds
//! ago"), so that people and scripts that read `docker ps` read `stasis ps`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sandbox::ContainerStatus;

/// A duration as docker's `HumanDuration` says it.
pub fn duration(d: Duration) -> String {
    let seconds = d.as_secs();
    let minutes = seconds / 60;
    // Hours are rounded, as docker rounds them; smaller units truncate.
    let hours = (seconds + 1800) / 3600;
    match () {
        _ if seconds < 1 => "Less than a second".to_owned(),
        _ if seconds == 1 => "1 second".to_owned(),
        _ if seconds < 60 => format!("{seconds} seconds"),
        _ if minutes == 1 => "About a minute".to_owned(),
        _ if minutes < 60 => format!("{minutes} minutes"),
        _ if hours == 1 => "About an hour".to_owned(),
        _ if hours < 48 => format!("{hours} hours"),
        _ if hours < 24 * 7 * 2 => format!("{} days", hours / 24),
        _ if hours < 24 * 30 * 2 => format!("{} weeks", hours / 24 / 7),
        _ if hours < 24 * 365 * 2 => format!("{} months", hours / 24 / 30),
        _ => format!("{} years", seconds / 3600 / 24 / 365),
    }
}

/// The time since `then` (seconds since the epoch).
fn since(then: u64, now: u64) -> Duration {
    Duration::from_secs(now.saturating_sub(then))
}

/// Seconds since the epoch, now.
pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// `CREATED` as `docker ps` says it: "2 minutes ago".
pub fn ago(then: u64) -> String {
    ago_at(then, now())
}

fn ago_at(then: u64, now: u64) -> String {
    format!("{} ago", duration(since(then, now)))
}

/// `STATUS` as `docker ps` says it.
pub fn status(
    status: ContainerStatus,
    started: Option<u64>,
    finished: Option<u64>,
    now: u64,
) -> String {
    let up = || duration(since(started.unwrap_or(now), now));
    match status {
        ContainerStatus::Created => "Created".to_owned(),
        ContainerStatus::Running => format!("Up {}", up()),
        ContainerStatus::Paused => format!("Up {} (Paused)", up()),
        ContainerStatus::Restarting(code) => match finished {
            Some(t) => format!("Restarting ({code}) {}", ago_at(t, now)),
            None => format!("Restarting ({code})"),
        },
        ContainerStatus::Exited(code) => {
            let code = code.map_or_else(|| "unknown".to_owned(), |c| c.to_string());
            match finished {
                Some(t) => format!("Exited ({code}) {}", ago_at(t, now)),
                None => format!("Exited ({code})"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_words() {
        let s = |secs| duration(Duration::from_secs(secs));
        assert_eq!(s(0), "Less than a second");
        assert_eq!(s(1), "1 second");
        assert_eq!(s(59), "59 seconds");
        assert_eq!(s(60), "About a minute");
        assert_eq!(s(119), "About a minute");
        assert_eq!(s(120), "2 minutes");
        assert_eq!(s(3599), "59 minutes");
        assert_eq!(s(3600), "About an hour");
        assert_eq!(s(5399), "About an hour");
        assert_eq!(s(5400), "2 hours");
        assert_eq!(s(47 * 3600), "47 hours");
        assert_eq!(s(48 * 3600), "2 days");
        assert_eq!(s(14 * 86400), "2 weeks");
        assert_eq!(s(60 * 86400), "2 months");
        assert_eq!(s(730 * 86400), "2 years");
    }

    #[test]
    fn statuses() {
        assert_eq!(ago_at(100, 100), "Less than a second ago");
        assert_eq!(ago_at(100, 160), "About a minute ago");
        assert_eq!(ago_at(200, 100), "Less than a second ago", "clock skew");
        let st = |s, started, finished| status(s, started, finished, 1000);
        assert_eq!(st(ContainerStatus::Created, None, None), "Created");
        assert_eq!(
            st(ContainerStatus::Running, Some(880), None),
            "Up 2 minutes"
        );
        assert_eq!(
            st(ContainerStatus::Paused, Some(999), None),
            "Up 1 second (Paused)"
        );
        assert_eq!(
            st(ContainerStatus::Exited(Some(0)), Some(1), Some(997)),
            "Exited (0) 3 seconds ago"
        );
        assert_eq!(
            st(ContainerStatus::Exited(None), Some(1), None),
            "Exited (unknown)"
        );
        assert_eq!(
            st(ContainerStatus::Restarting(1), Some(1), Some(998)),
            "Restarting (1) 2 seconds ago"
        );
    }
}
