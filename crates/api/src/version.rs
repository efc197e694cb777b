//! API versions: every path may start with `/vX.Y` (the docker CLI
//! negotiates one and sends it; bollard sends its own default without
//! negotiating). stasis speaks [`CURRENT`] and accepts down to [`MINIMUM`];
//! a version above the one it speaks is refused, as moby refuses it, and so
//! is one below the minimum.

use crate::error::ApiError;

/// A `major.minor` API version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Version(pub u32, pub u32);

/// The version stasis speaks and advertises.
pub const CURRENT: Version = Version(1, 44);
/// The oldest version it accepts.
pub const MINIMUM: Version = Version(1, 24);

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.0, self.1)
    }
}

impl Version {
    fn parse(s: &str) -> Option<Self> {
        let (major, minor) = s.split_once('.')?;
        let digits =
            |p: &str| !p.is_empty() && p.len() <= 4 && p.bytes().all(|b| b.is_ascii_digit());
        if !digits(major) || !digits(minor) {
            return None;
        }
        Some(Version(major.parse().ok()?, minor.parse().ok()?))
    }
}

/// Splits a request path into its version (if it has a `/vX.Y` prefix)
/// and the rest, refusing versions outside [`MINIMUM`]..=[`CURRENT`] with
/// moby's messages. A first segment that looks like no version is left in
/// the path (and so routes nowhere: 404).
pub fn split(path: &str) -> Result<(Option<Version>, &str), ApiError> {
    let Some(rest) = path.strip_prefix("/v") else {
        return Ok((None, path));
    };
    let (first, tail) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    let Some(v) = Version::parse(first) else {
        return Ok((None, path));
    };
    if v > CURRENT {
        return Err(ApiError::bad_request(format!(
            "client version {v} is too new. Maximum supported API version is {CURRENT}"
        )));
    }
    if v < MINIMUM {
        return Err(ApiError::bad_request(format!(
            "client version {v} is too old. Minimum supported API version is {MINIMUM}, \
             please upgrade your client to a newer version"
        )));
    }
    Ok((Some(v), tail))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_with_and_without_a_version() {
        assert_eq!(split("/_ping").expect("bare"), (None, "/_ping"));
        assert_eq!(
            split("/v1.44/containers/json").expect("current"),
            (Some(Version(1, 44)), "/containers/json")
        );
        assert_eq!(
            split("/v1.24/version").expect("minimum"),
            (Some(Version(1, 24)), "/version")
        );
        // Not a version: routes nowhere, rather than being refused.
        assert_eq!(split("/volumes/x").expect("no v"), (None, "/volumes/x"));
        assert_eq!(split("/vx.y/info").expect("junk"), (None, "/vx.y/info"));
        let e = split("/v1.53/containers/json").expect_err("too new");
        assert_eq!(e.status, hyper::StatusCode::BAD_REQUEST);
        assert_eq!(
            e.message,
            "client version 1.53 is too new. Maximum supported API version is 1.44"
        );
        let e = split("/v1.12/info").expect_err("too old");
        assert!(
            e.message.starts_with("client version 1.12 is too old"),
            "{}",
            e.message
        );
        assert!(Version(1, 9) < Version(1, 10), "numeric, not textual");
    }
}
