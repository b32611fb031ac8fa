//! Domain newtypes, parsed once at the boundary: ids, money, and the few strings with rules.

use std::fmt;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::Error;

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, sqlx::Type)]
        #[serde(transparent)]
        #[sqlx(transparent)]
        pub struct $name(pub Uuid);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl std::str::FromStr for $name {
            type Err = uuid::Error;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self)
            }
        }
    };
}

uuid_id!(
    /// A listing: one Xano snippet offered for sale.
    ListingId
);
uuid_id!(
    /// One version of a priced tier of a listing.
    TierId
);
uuid_id!(
    /// A purchase. Random (v4): knowing one id says nothing about another.
    PurchaseId
);

impl PurchaseId {
    pub fn random() -> Self {
        Self(Uuid::new_v4())
    }
}

/// An install token's row in our database (never the token string itself).
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, sqlx::Type,
)]
#[serde(transparent)]
#[sqlx(transparent)]
pub struct TokenId(pub i64);

impl fmt::Display for TokenId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// An amount of money in the currency's minor unit (cents for usd). Never a float.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Money {
    pub amount: i64,
    pub currency: Currency,
}

impl Money {
    pub fn new(amount: i64, currency: Currency) -> Result<Self, Error> {
        if amount <= 0 {
            return Err(Error::invalid(
                "price.amount",
                "must be a positive number of minor units",
            ));
        }
        Ok(Self { amount, currency })
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.amount, self.currency)
    }
}

/// An ISO 4217 currency code, lowercase as Stripe writes it (`usd`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Currency(String);

impl Currency {
    pub fn parse(s: &str) -> Result<Self, Error> {
        let lower = s.trim().to_ascii_lowercase();
        if lower.len() == 3 && lower.bytes().all(|b| b.is_ascii_lowercase()) {
            Ok(Self(lower))
        } else {
            Err(Error::invalid(
                "currency",
                "must be a three-letter ISO 4217 code such as usd",
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Currency {
    type Error = Error;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<Currency> for String {
    fn from(c: Currency) -> Self {
        c.0
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A Xano snippet's id, the tail of `https://www.xano.com/snippet/<canonical>/`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
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

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The snippet's public page, where a buyer installs it with their token.
    pub fn snippet_url(&self) -> String {
        format!("https://www.xano.com/snippet/{}/", self.0)
    }
}

impl TryFrom<String> for Canonical {
    type Error = Error;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<Canonical> for String {
    fn from(c: Canonical) -> Self {
        c.0
    }
}

impl fmt::Display for Canonical {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A tier's slug, unique per listing: `solo`, `agency`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
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

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Slug {
    type Error = Error;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<Slug> for String {
    fn from(s: Slug) -> Self {
        s.0
    }
}

impl fmt::Display for Slug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A buyer's e-mail address, checked only for shape: Stripe collects and verifies the real one.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Email(String);

impl Email {
    pub fn parse(s: &str) -> Result<Self, Error> {
        let s = s.trim();
        let ok = s.len() <= 254
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

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// E-mail addresses are personal data: kept out of `Debug` output and so out of logs.
impl fmt::Debug for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Email([redacted])")
    }
}

impl TryFrom<String> for Email {
    type Error = Error;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<Email> for String {
    fn from(e: Email) -> Self {
        e.0
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
    fn currencies_are_three_letters_and_lowercased() {
        assert_eq!(Currency::parse("USD").unwrap().as_str(), "usd");
        for bad in ["", "us", "usdd", "u$d", "12a"] {
            assert!(Currency::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn money_must_be_positive() {
        let usd = Currency::parse("usd").unwrap();
        assert!(Money::new(1900, usd.clone()).is_ok());
        assert!(Money::new(0, usd.clone()).is_err());
        assert!(Money::new(-5, usd).is_err());
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
