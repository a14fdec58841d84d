//! `EmailAddress`: a recipient or sender mailbox, checked once at the edge.

use std::fmt;

/// A syntactically valid `local@domain` address (RFC 5321 limits; UTF-8 allowed for SMTPUTF8),
/// stored with its domain lower-cased.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct EmailAddress(String);

/// Why an address was refused; the text names the problem for the person who typed it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{address:?} is not a valid email address: {reason}")]
pub struct AddressError {
    pub address: String,
    pub reason: &'static str,
}

impl EmailAddress {
    pub fn parse(text: &str) -> Result<Self, AddressError> {
        let fail = |reason| AddressError {
            address: text.chars().take(100).collect(),
            reason,
        };
        let text = text.trim();
        if text.len() > 254 {
            return Err(fail("longer than 254 characters"));
        }
        let (local, domain) = text.rsplit_once('@').ok_or_else(|| fail("no @"))?;
        if local.is_empty() || local.len() > 64 {
            return Err(fail("the part before @ must be 1 to 64 characters"));
        }
        if local.starts_with('.') || local.ends_with('.') || local.contains("..") {
            return Err(fail("misplaced dot before @"));
        }
        let bad_char =
            |c: char| c.is_control() || c.is_whitespace() || "<>()[]\\,;:\"@".contains(c);
        if local.chars().any(bad_char) {
            return Err(fail("a character not allowed before @"));
        }
        if domain.is_empty() || domain.len() > 253 {
            return Err(fail("missing domain"));
        }
        if !is_host_name(domain) {
            return Err(fail("the domain is not a valid host name"));
        }
        if !domain.contains('.') && !domain.eq_ignore_ascii_case("localhost") {
            return Err(fail("the domain has no dot"));
        }
        Ok(Self(format!("{local}@{}", domain.to_lowercase())))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `j***@example.org`: enough for a recipient to recognise, not enough to harvest.
    pub fn masked(&self) -> String {
        let (local, domain) = self.0.rsplit_once('@').unwrap_or((&self.0, ""));
        let first: String = local.chars().take(1).collect();
        format!("{first}***@{domain}")
    }
}

/// Whether `name` is a host name: dot-separated labels of 1 to 63 letters, digits (Unicode
/// allowed, for internationalised domains) and inner hyphens, 253 characters at most. A
/// trailing dot is not accepted here; callers strip it where they allow it.
pub fn is_host_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_alphanumeric() || c == '-')
        })
}

impl fmt::Display for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_addresses() {
        for ok in [
            "a@b.org",
            "first.last+tag@Example.COM",
            "ünïcode@bücher.example",
            "root@localhost",
        ] {
            assert!(EmailAddress::parse(ok).is_ok(), "{ok}");
        }
        assert_eq!(
            EmailAddress::parse("Ann@Example.ORG").map(|a| a.0),
            Ok("Ann@example.org".into())
        );
        assert_eq!(
            EmailAddress::parse("ann@example.org").map(|a| a.masked()),
            Ok("a***@example.org".into())
        );
    }

    #[test]
    fn refuses_bad_addresses() {
        for bad in [
            "",
            "plain",
            "@example.org",
            "a@",
            "a@b",
            "a b@c.org",
            "a@-b.org",
            "a..b@c.org",
            "a@b..org",
            "<a@b.org>",
            "a@b.org\r\nBcc: x@y.org",
        ] {
            assert!(EmailAddress::parse(bad).is_err(), "{bad:?}");
        }
        assert!(EmailAddress::parse(&format!("{}@b.org", "x".repeat(65))).is_err());
    }

    #[test]
    fn host_names() {
        assert!(is_host_name("mail.example.org"));
        assert!(is_host_name("bücher.example"));
        for bad in ["", "a..b", "-a.org", "a-.org", "exa mple.org", "a.org."] {
            assert!(!is_host_name(bad), "{bad:?}");
        }
        assert!(!is_host_name(&"a".repeat(64)));
    }
}
