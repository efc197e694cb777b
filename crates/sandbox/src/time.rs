//! Wall-clock times as RFC 3339 strings in UTC, as docker writes them
//! (`2026-12-01T21:40:00.123456789Z`), without a calendar crate: the civil
//! date of a day count is a few lines of integer arithmetic.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// RFC 3339 in UTC with as many fractional digits as needed, none when
/// whole (Go's `RFC3339Nano`, docker's format in `inspect`).
pub fn rfc3339_nanos(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let fraction = format!("{:09}", d.subsec_nanos());
    let fraction = fraction.trim_end_matches('0');
    let dot = if fraction.is_empty() { "" } else { "." };
    format!("{}{dot}{fraction}Z", date_time(d.as_secs()))
}

/// RFC 3339 in UTC, to the millisecond: `2026-12-01T21:40:00.123Z`.
pub fn rfc3339_millis(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    format!("{}.{:03}Z", date_time(d.as_secs()), d.subsec_millis())
}

/// RFC 3339 in UTC of a time in whole seconds since the epoch.
pub fn rfc3339_secs(secs: u64) -> String {
    rfc3339_nanos(UNIX_EPOCH + Duration::from_secs(secs))
}

/// `YYYY-MM-DDTHH:MM:SS` of seconds since the epoch.
fn date_time(secs: u64) -> String {
    let days = i64::try_from(secs / 86_400).unwrap_or(i64::MAX);
    let (y, m, d) = civil_from_days(days);
    let s = secs % 86_400;
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}",
        s / 3600,
        s / 60 % 60,
        s % 60
    )
}

/// The proleptic Gregorian date of a day count from 1970-01-01 (Howard
/// Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m as u32, d as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64, nanos: u32) -> SystemTime {
        UNIX_EPOCH + Duration::new(secs, nanos)
    }

    #[test]
    fn times_are_utc_in_docker_s_forms() {
        assert_eq!(rfc3339_nanos(at(0, 0)), "1970-01-01T00:00:00Z");
        assert_eq!(
            rfc3339_nanos(at(1_796_161_200, 123_456_789)),
            "2026-12-01T21:40:00.123456789Z"
        );
        assert_eq!(
            rfc3339_nanos(at(1_796_161_200, 120_000_000)),
            "2026-12-01T21:40:00.12Z"
        );
        assert_eq!(
            rfc3339_millis(at(1_796_161_200, 123_456_789)),
            "2026-12-01T21:40:00.123Z"
        );
        assert_eq!(
            rfc3339_millis(at(951_782_400, 0)),
            "2000-02-29T00:00:00.000Z"
        );
        assert_eq!(rfc3339_secs(4_107_542_400), "2100-03-01T00:00:00Z");
    }
}
