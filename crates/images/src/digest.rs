//! `sha256:` digests, the names of everything content-addressed: an image's
//! ID is the digest of its config's bytes (as docker's `ImageID`), a layer's
//! name is the digest of its uncompressed tar (its `diff_id`).

use std::io::{self, Read};

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

/// A `sha256:` digest: 64 lower-case hex digits.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Digest(String);

impl Digest {
    /// The digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        Digest(hex(&Sha256::digest(bytes)))
    }

    /// The 64 hex digits, without `sha256:`.
    pub fn hex(&self) -> &str {
        &self.0
    }

    /// The first 12 hex digits, as docker shows IDs.
    pub fn short(&self) -> &str {
        &self.0[..12]
    }

    /// `sha256:HEX` or 64 hex digits alone.
    pub fn parse(s: &str) -> Option<Self> {
        let hex = s.strip_prefix("sha256:").unwrap_or(s);
        (hex.len() == 64 && is_hex(hex)).then(|| Digest(hex.to_owned()))
    }
}

impl std::fmt::Display for Digest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "sha256:{}", self.0)
    }
}

impl TryFrom<String> for Digest {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        Digest::parse(&s).ok_or_else(|| format!("{s:?} is not a sha256 digest"))
    }
}

impl From<Digest> for String {
    fn from(d: Digest) -> String {
        d.to_string()
    }
}

/// Lower-case hex digits only (and at least one).
pub(crate) fn is_hex(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A reader that hashes (and counts) what passes through it.
pub(crate) struct Hashing<R> {
    inner: R,
    hasher: Sha256,
    len: u64,
}

impl<R: Read> Hashing<R> {
    pub(crate) fn new(inner: R) -> Self {
        Hashing {
            inner,
            hasher: Sha256::new(),
            len: 0,
        }
    }

    /// Reads what is left to the end (a tar's trailing padding counts in
    /// its digest), then gives the digest.
    pub(crate) fn finish(mut self) -> io::Result<Digest> {
        io::copy(&mut self, &mut io::sink())?;
        Ok(Digest(hex(&self.hasher.finalize())))
    }
}

impl<R> std::fmt::Debug for Hashing<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hashing").field("len", &self.len).finish()
    }
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_parse_with_or_without_their_prefix_and_hash_what_is_read() {
        let empty = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        assert_eq!(Digest::of(b"").hex(), empty);
        assert_eq!(
            Digest::parse(&format!("sha256:{empty}")),
            Some(Digest::of(b""))
        );
        assert_eq!(Digest::parse(empty), Some(Digest::of(b"")));
        assert_eq!(Digest::parse("sha256:abc"), None);
        assert_eq!(Digest::parse(&empty.to_uppercase()), None);
        let mut h = Hashing::new(&b"abc"[..]);
        let mut first = [0u8; 1];
        h.read_exact(&mut first).expect("read");
        assert_eq!(h.finish().expect("finish"), Digest::of(b"abc"));
        assert_eq!(Digest::of(b"").short(), &empty[..12]);
    }
}
