//! The strings with rules that name things: a Xano snippet's canonical, a tier's slug, and a
//! buyer's e-mail address. Each is parsed once, where it enters the service.

use std::fmt;

use crate::Error;
use crate::text::checked_string;

/// A Xano snippet's id, the tail of `https://www.xano.com/snippet/<canonical>/`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Canonical(String);

impl Canonical {
    /// URL-safe characters only (Xano's canonicals are like `kRG3t_-i`): a canonical ends up in
    /// Xano paths and in the buyer's install link.
    pub fn parse(s: &str) -> Result<Self, Error> {
        let ok = !s.is_empty()
            && s.len() <= 64
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(Error::invalid(
                "canonical",
                "must be 1-64 letters, digits, '-' or '_'",
            ))
        }
    }

    /// The snippet's public page, where a buyer installs it with their token.
    pub fn snippet_url(&self) -> String {
        format!("https://www.xano.com/snippet/{}/", self.0)
    }
}

checked_string!(Canonical);

/// A tier's slug, unique per listing: `solo`, `agency`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Slug(String);

impl Slug {
    pub fn parse(s: &str) -> Result<Self, Error> {
        let bytes = s.as_bytes();
        let ok = !bytes.is_empty()
            && bytes.len() <= 63
            && bytes[0].is_ascii_alphanumeric()
            && bytes
                .iter()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-');
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(Error::invalid(
                "slug",
                "must be 1-63 lowercase letters, digits or '-', starting with a letter or digit",
            ))
        }
    }
}

checked_string!(Slug);

/// A buyer's e-mail address, checked only for shape: Stripe collects and verifies the real one.
#[derive(Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    pub fn parse(s: &str) -> Result<Self, Error> {
        let s = s.trim();
        let ok = s.chars().count() <= 254
            && s.split_once('@').is_some_and(|(local, domain)| {
                !local.is_empty()
                    && domain.contains('.')
                    && !domain.starts_with('.')
                    && !domain.ends_with('.')
            })
            && !s.chars().any(|c| c.is_whitespace() || c.is_control())
            && s.matches('@').count() == 1;
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(Error::invalid("email", "must be an e-mail address"))
        }
    }
}

// No `Display`: an address is shown only where code asks for it by name (`as_str`).
checked_string!(Email, no_display);

/// E-mail addresses are personal data: kept out of `Debug` output and so out of logs.
impl fmt::Debug for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Email([redacted])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonicals_are_url_safe_words() {
        assert!(Canonical::parse("kRG3t_-i").is_ok());
        for bad in ["", "a/b", "a b", "..", "x?y", &"a".repeat(65)] {
            assert!(Canonical::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn slugs_are_lowercase_words() {
        assert!(Slug::parse("agency-50").is_ok());
        for bad in ["", "-x", "Solo", "a_b", "a b"] {
            assert!(Slug::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn emails_are_checked_for_shape_and_hidden_from_debug() {
        let email = Email::parse(" buyer@example.com ").unwrap();
        assert_eq!(email.as_str(), "buyer@example.com");
        assert!(!format!("{email:?}").contains("buyer"));
        for bad in [
            "",
            "a",
            "a@b",
            "a@@b.c",
            "a b@c.d",
            "@b.c",
            "a@.c",
            "a\u{0}@b.c",
            "a\u{1b}[31m@b.c",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?}");
        }
    }
}
