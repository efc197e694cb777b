//! IDs and names.
//!
//! An ID is 64 lowercase hex digits from the kernel's random source, shown
//! as its first 12; any unique prefix finds it. A name matches
//! `[a-zA-Z0-9][a-zA-Z0-9_.-]*` (at most 128 characters), so it can never
//! climb out of a directory or hide a separator.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// A pod or container ID.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Id(String);

impl Id {
    /// A fresh random ID.
    pub fn generate() -> Result<Self> {
        let mut bytes = [0u8; 32];
        rustix::rand::getrandom(&mut bytes, rustix::rand::GetRandomFlags::empty())
            .map_err(|e| Error::Random(e.into()))?;
        let mut s = String::with_capacity(64);
        for b in bytes {
            s.push_str(&format!("{b:02x}"));
        }
        Ok(Id(s))
    }

    /// The full 64 digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The 12-digit form shown to people.
    pub fn short(&self) -> &str {
        &self.0[..12]
    }

    /// Whether `s` could be (a prefix of) an ID.
    pub fn is_prefix_like(s: &str) -> bool {
        !s.is_empty()
            && s.len() <= 64
            && s.bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    }
}

impl TryFrom<String> for Id {
    type Error = Error;

    fn try_from(s: String) -> Result<Self> {
        if s.len() == 64 && Id::is_prefix_like(&s) {
            Ok(Id(s))
        } else {
            Err(Error::InvalidArgument {
                what: "ID",
                value: s,
                reason: "an ID is 64 lowercase hex digits",
            })
        }
    }
}

impl From<Id> for String {
    fn from(id: Id) -> String {
        id.0
    }
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Checks a pod or container name.
pub fn validate_name(name: &str) -> Result<()> {
    let invalid = |reason| {
        Err(Error::InvalidName {
            name: name.to_owned(),
            reason,
        })
    };
    let mut bytes = name.bytes();
    match bytes.next() {
        None => return invalid("it is empty"),
        Some(b) if !b.is_ascii_alphanumeric() => {
            return invalid("it must start with a letter or digit")
        }
        Some(_) => {}
    }
    if name.len() > 128 {
        return invalid("it is longer than 128 characters");
    }
    if !bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-')) {
        return invalid("only letters, digits, '_', '.' and '-' are allowed");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_64_hex_digits() {
        let id = Id::generate().expect("id");
        assert_eq!(id.as_str().len(), 64);
        assert_eq!(id.short().len(), 12);
        assert_ne!(id, Id::generate().expect("id"));
        assert!(Id::try_from("ABC".to_owned()).is_err());
        assert!(Id::try_from(id.to_string()).is_ok());
    }

    #[test]
    fn names() {
        for ok in ["web", "a", "db-1", "x_y.z", "9lives"] {
            validate_name(ok).expect(ok);
        }
        for bad in [
            "",
            "-x",
            ".hidden",
            "a/b",
            "..",
            "a b",
            "ü",
            &"x".repeat(129),
        ] {
            assert!(validate_name(bad).is_err(), "{bad}");
        }
    }
}
