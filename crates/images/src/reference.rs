//! Image references: `NAME[:TAG]`, as docker spells them. A name is one or
//! more `/`-separated components of lower-case letters, digits and single
//! `.`, `_` or `-` between them (`__` too), optionally after a registry host
//! with a port (`localhost:5000/app`); a tag is up to 128 of letters, digits,
//! `_`, `.` and `-`, not starting with `.` or `-`. Without a tag: `latest`.
//! Digests (`NAME@sha256:...`) name registry content and are refused here.

use crate::error::{Error, Result};

/// A `NAME:TAG`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Reference {
    pub name: String,
    pub tag: String,
}

impl Reference {
    /// Parses `NAME[:TAG]`.
    pub fn parse(s: &str) -> Result<Self> {
        let bad = |reason| Error::InvalidReference {
            value: s.to_owned(),
            reason,
        };
        if s.contains('@') {
            return Err(bad(
                "digests name registry content; use NAME:TAG or an image ID",
            ));
        }
        if s.len() > 255 {
            return Err(bad("it is longer than 255 characters"));
        }
        // A `:` after the last `/` starts the tag; one before it is a port.
        let last_slash = s.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match s[last_slash..].rfind(':') {
            Some(i) => (&s[..last_slash + i], &s[last_slash + i + 1..]),
            None => (s, "latest"),
        };
        if !valid_tag(tag) {
            return Err(bad(
                "a tag is 1 to 128 letters, digits, _ . -, not starting with . or -",
            ));
        }
        if !valid_name(name) {
            return Err(bad(
                "a name is lower-case letters, digits and . _ - between them, in /-separated parts",
            ));
        }
        Ok(Reference {
            name: name.to_owned(),
            tag: tag.to_owned(),
        })
    }
}

impl std::fmt::Display for Reference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.name, self.tag)
    }
}

fn valid_tag(tag: &str) -> bool {
    let mut bytes = tag.bytes();
    tag.len() <= 128
        && bytes
            .next()
            .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

fn valid_name(name: &str) -> bool {
    let mut parts: Vec<&str> = name.split('/').collect();
    // A first part with a port, or a dot, or `localhost`, is a registry host.
    if parts.len() > 1 && (parts[0].contains([':', '.']) || parts[0] == "localhost") {
        let host = parts.remove(0);
        let (h, port) = host.split_once(':').unwrap_or((host, "1"));
        let host_ok = !h.is_empty()
            && h.split('.').all(|l| {
                !l.is_empty()
                    && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                    && !l.starts_with('-')
                    && !l.ends_with('-')
            });
        if !host_ok || port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
            return false;
        }
    }
    !parts.is_empty() && parts.iter().all(|p| valid_component(p))
}

/// `[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*`
fn valid_component(part: &str) -> bool {
    let b = part.as_bytes();
    let alnum = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    if b.is_empty() || !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && !alnum(b[i]) {
            i += 1;
        }
        let sep = &part[start..i];
        if !(sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|c| c == b'-')) {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(s: &str) -> String {
        Reference::parse(s).expect(s).to_string()
    }

    #[test]
    fn references_take_latest_by_default_and_a_port_is_not_a_tag() {
        assert_eq!(r("busybox"), "busybox:latest");
        assert_eq!(r("busybox:1.36"), "busybox:1.36");
        assert_eq!(r("library/busy_box-x:v1"), "library/busy_box-x:v1");
        assert_eq!(r("localhost:5000/app"), "localhost:5000/app:latest");
        assert_eq!(r("reg.example.com/a/b:t"), "reg.example.com/a/b:t");
        for bad in [
            "",
            "Busybox",
            "a::b",
            "a:",
            ":t",
            "a/",
            "/a",
            "a//b",
            "a..b",
            "-a",
            "a-",
            "a:.t",
            "a@sha256:00",
            "a b",
            "a:t/b",
        ] {
            let err = Reference::parse(bad).expect_err(bad);
            assert!(err.is_invalid(), "{bad}: {err}");
        }
    }
}
