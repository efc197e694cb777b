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

/// RFC 3339 in UTC with exactly nine fractional digits, the form `docker
/// events` prints (its `RFC3339NanoFixed`): `2026-12-01T21:40:00.120000000Z`.
pub fn rfc3339_nanos_fixed(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    format!("{}.{:09}Z", date_time(d.as_secs()), d.subsec_nanos())
}

/// Parses a duration up to `max`, as the CLI's flags and the Kubernetes
/// annotations take one: a number of seconds (`5`, `2.5`), or one with a
/// unit (`300ms`, `2.5s`, `5m`, `1h`), docker-style.
pub fn parse_duration_upto(s: &str, max: Duration) -> Result<Duration, String> {
    let (number, scale) = if let Some(n) = s.strip_suffix("ms") {
        (n, 1e-3)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = s.strip_suffix('m') {
        (n, 60.0)
    } else if let Some(n) = s.strip_suffix('h') {
        (n, 3600.0)
    } else {
        (s, 1.0)
    };
    let value: f64 = number
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a duration (try 5, 2.5s, 300ms, 5m or 1h)"))?;
    let max_secs = max.as_secs_f64();
    if !value.is_finite() || value < 0.0 || value * scale > max_secs {
        return Err(format!("{s:?} is out of range (0 to {max_secs} seconds)"));
    }
    Ok(Duration::from_secs_f64(value * scale))
}

/// The longest lease a pause takes (`stasis pause --lease`, the
/// `stasis.dev/lease` annotation).
pub const MAX_LEASE: Duration = Duration::from_secs(24 * 3600);

/// A lease's length: a duration more than 0, at most [`MAX_LEASE`].
pub fn parse_lease(s: &str) -> Result<Duration, String> {
    let d = parse_duration_upto(s, MAX_LEASE)?;
    if d.is_zero() {
        return Err(format!("{s:?}: a lease must be longer than 0"));
    }
    Ok(d)
}

/// A point in time as `docker events --since/--until` (and the API's
/// `since`/`until`) take one: RFC 3339 (`2026-12-01`, `2026-12-01T21:40`,
/// `2026-12-01T21:40:00.5Z`, `...+01:00`; a time without an offset is UTC),
/// a unix timestamp (`1796161200`, `1796161200.5`), or a Go duration back
/// from `now` (`10m`, `1h30m`, `1.5s`, `300ms`).
pub fn parse_time(s: &str, now: SystemTime) -> Result<SystemTime, String> {
    let bad = || {
        format!(
            "{s:?} is not a time: use RFC 3339 (2026-12-01T21:40:00Z), a unix timestamp, \
             or a duration back from now (10m)"
        )
    };
    if s != "0" {
        if let Some(d) = go_duration(s) {
            return now.checked_sub(d).ok_or_else(bad);
        }
    }
    if let Some(t) = unix_timestamp(s) {
        return Ok(t);
    }
    rfc3339(s).ok_or_else(bad)
}

/// `SECONDS[.FRACTION]`.
fn unix_timestamp(s: &str) -> Option<SystemTime> {
    let (secs, frac) = s.split_once('.').unwrap_or((s, ""));
    if secs.is_empty() || !secs.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let nanos = fraction_nanos(frac)?;
    Some(UNIX_EPOCH + Duration::new(secs.parse().ok()?, nanos))
}

/// Up to nine digits after a decimal point, as nanoseconds.
fn fraction_nanos(frac: &str) -> Option<u32> {
    if frac.len() > 9 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if frac.is_empty() {
        return Some(0);
    }
    format!("{frac:0<9}").parse().ok()
}

/// A Go duration (`time.ParseDuration`) of positive units: `1h30m`,
/// `1.5s`, `300ms`, `10us`.
fn go_duration(s: &str) -> Option<Duration> {
    let mut rest = s;
    let mut total = 0f64;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let n = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (number, tail) = rest.split_at(n);
        let value: f64 = number.parse().ok()?;
        let (scale, after) = [
            ("ns", 1e-9),
            ("us", 1e-6),
            ("µs", 1e-6),
            ("ms", 1e-3),
            ("s", 1.0),
            ("m", 60.0),
            ("h", 3600.0),
        ]
        .iter()
        .find_map(|(unit, scale)| tail.strip_prefix(unit).map(|a| (*scale, a)))?;
        total += value * scale;
        rest = after;
    }
    (total.is_finite() && total < 1e12).then(|| Duration::from_secs_f64(total))
}

/// An RFC 3339 time, `YYYY-MM-DD[(T| )HH:MM[:SS[.F]]][Z|±HH:MM]` (what
/// [`rfc3339_millis`] writes reads back); without an offset, UTC.
pub fn rfc3339(s: &str) -> Option<SystemTime> {
    let num = |t: &str, len: usize| -> Option<i64> {
        (t.len() == len && t.bytes().all(|b| b.is_ascii_digit()))
            .then(|| t.parse().ok())
            .flatten()
    };
    let date = s.get(..10)?;
    let (y, m, d) = (
        num(date.get(..4)?, 4)?,
        num(date.get(5..7)?, 2)?,
        num(date.get(8..10)?, 2)?,
    );
    if &date[4..5] != "-" || &date[7..8] != "-" || !(1..=12).contains(&m) || !(1..=31).contains(&d)
    {
        return None;
    }
    let mut rest = &s[10..];
    let (mut secs, mut nanos) = (0i64, 0u32);
    if let Some(t) = rest.strip_prefix(['T', 't', ' ']) {
        let end = t.find(['Z', 'z', '+', '-']).unwrap_or(t.len());
        let (clock, tail) = t.split_at(end);
        let (hms, frac) = clock.split_once('.').unwrap_or((clock, ""));
        let parts: Vec<&str> = hms.split(':').collect();
        let (h, min, sec) = match parts[..] {
            [h, min] => (num(h, 2)?, num(min, 2)?, 0),
            [h, min, sec] => (num(h, 2)?, num(min, 2)?, num(sec, 2)?),
            _ => return None,
        };
        if h > 23 || min > 59 || sec > 60 || (!frac.is_empty() && parts.len() != 3) {
            return None;
        }
        secs = h * 3600 + min * 60 + sec;
        nanos = fraction_nanos(frac)?;
        rest = tail;
    }
    let offset = match rest {
        "" | "Z" | "z" => 0,
        _ => {
            let sign = match &rest[..1] {
                "+" => 1,
                "-" => -1,
                _ => return None,
            };
            let (h, min) = rest[1..].split_once(':')?;
            let (h, min) = (num(h, 2)?, num(min, 2)?);
            if h > 23 || min > 59 {
                return None;
            }
            sign * (h * 3600 + min * 60)
        }
    };
    let total = days_from_civil(y, m as u32, d as u32) * 86_400 + secs - offset;
    Some(UNIX_EPOCH + Duration::new(u64::try_from(total).ok()?, nanos))
}

/// The day count from 1970-01-01 of a proleptic Gregorian date (Howard
/// Hinnant's `days_from_civil`, the inverse of [`civil_from_days`]).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
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

    #[test]
    fn durations_up_to_a_bound_and_leases() {
        let hour = Duration::from_secs(3600);
        assert_eq!(parse_duration_upto("5", hour), Ok(Duration::from_secs(5)));
        assert_eq!(
            parse_duration_upto("2.5s", hour),
            Ok(Duration::from_millis(2500))
        );
        assert_eq!(
            parse_duration_upto("300ms", hour),
            Ok(Duration::from_millis(300))
        );
        assert_eq!(
            parse_duration_upto("5m", hour),
            Ok(Duration::from_secs(300))
        );
        assert_eq!(parse_duration_upto("1h", hour), Ok(hour));
        for bad in ["", "s", "-1", "soon", "NaN", "1e9", "61m", "2h", "m"] {
            assert!(parse_duration_upto(bad, hour).is_err(), "{bad}");
        }
        assert_eq!(parse_lease("24h"), Ok(MAX_LEASE));
        assert!(parse_lease("0").is_err());
        assert!(parse_lease("25h").is_err());
    }

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
        assert_eq!(
            rfc3339_nanos_fixed(at(1_796_161_200, 120_000_000)),
            "2026-12-01T21:40:00.120000000Z"
        );
    }

    #[test]
    fn times_parse_in_every_form_docker_events_takes() {
        let now = at(1_796_161_200, 0);
        let ok = |s: &str| parse_time(s, now).unwrap_or_else(|e| panic!("{s}: {e}"));
        assert_eq!(ok("2026-12-01T21:40:00Z"), now);
        assert_eq!(ok("2026-12-01T21:40:00.5Z"), at(1_796_161_200, 500_000_000));
        assert_eq!(ok("2026-12-01T22:40:00+01:00"), now);
        assert_eq!(ok("2026-12-01T20:40:00-01:00"), now);
        assert_eq!(ok("2026-12-01T21:40"), now, "no offset: UTC");
        assert_eq!(ok("2026-12-01 21:40:00"), now);
        assert_eq!(ok("2026-12-01"), at(1_796_083_200, 0));
        assert_eq!(ok("2000-02-29T00:00:00Z"), at(951_782_400, 0));
        assert_eq!(ok("1796161200"), now);
        assert_eq!(ok("1796161200.25"), at(1_796_161_200, 250_000_000));
        assert_eq!(ok("0"), UNIX_EPOCH, "0 is the epoch, not a duration");
        assert_eq!(ok("10m"), at(1_796_161_200 - 600, 0));
        assert_eq!(ok("1h30m"), at(1_796_161_200 - 5400, 0));
        assert_eq!(ok("1.5s"), at(1_796_161_198, 500_000_000));
        assert_eq!(ok("300ms"), at(1_796_161_199, 700_000_000));
        for bad in [
            "",
            "soon",
            "10x",
            "2026-13-01",
            "2026-12-01T25:00",
            "2026-12-01T21:40:00+1",
            "1.2.3",
            "-5m",
            "2026-12-01T21:40Q",
            "1.1234567891",
        ] {
            assert!(parse_time(bad, now).is_err(), "{bad}");
        }
        for days in [-1_000_000, -1, 0, 1, 20_000, 1_000_000] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }
}
