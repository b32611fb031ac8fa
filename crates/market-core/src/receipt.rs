//! Receipt keys: the buyer's proof that a purchase is theirs.
//!
//! A receipt key is `HMAC-SHA256(secret, purchase id)`, so the same checkout request retried with the
//! same `Idempotency-Key` can answer with the same key without the key ever being stored. The database
//! keeps only its SHA-256 (`purchase.receipt_hash`), which is what reads are checked against: a
//! leaked database reveals no key, and rotating the secret leaves existing receipts valid.

use std::fmt;

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::PurchaseId;

const PREFIX: &str = "rk_";
/// Portal sign-in links' keys (`portal`): the same derivation under another purpose, so a link's
/// key can never be a receipt key.
const PORTAL_LINK_PREFIX: &str = "pl_";

/// How long a portal sign-in link works.
pub const PORTAL_LINK_MINUTES: i32 = 15;

/// The server-side secret receipt keys are derived from. Every instance of the service must share it.
#[derive(Clone)]
pub struct ReceiptSecret(Vec<u8>);

impl ReceiptSecret {
    /// At least 32 bytes: the key's strength is the secret's.
    pub fn new(bytes: Vec<u8>) -> Option<Self> {
        (bytes.len() >= 32).then_some(Self(bytes))
    }

    /// A fresh random secret (sandbox runs and tests).
    pub fn random() -> Self {
        Self(rand::random::<[u8; 32]>().to_vec())
    }

    /// The receipt key of `purchase`.
    pub fn key_for(&self, purchase: PurchaseId) -> ReceiptKey {
        // `new_from_slice` only fails for fixed-size keys; HMAC accepts keys of any length.
        let mac = Hmac::<Sha256>::new_from_slice(&self.0).map(|mut mac| {
            mac.update(purchase.0.as_bytes());
            mac.finalize().into_bytes()
        });
        let digest = mac.map(|bytes| hex(&bytes)).unwrap_or_default();
        ReceiptKey(format!("{PREFIX}{digest}"))
    }

    /// The key of the portal sign-in link `link`: `HMAC-SHA256(secret, "portal-link:" ‖ id)`.
    pub fn portal_link_key(&self, link: uuid::Uuid) -> ReceiptKey {
        let mac = Hmac::<Sha256>::new_from_slice(&self.0).map(|mut mac| {
            mac.update(b"portal-link:");
            mac.update(link.as_bytes());
            mac.finalize().into_bytes()
        });
        let digest = mac.map(|bytes| hex(&bytes)).unwrap_or_default();
        ReceiptKey(format!("{PORTAL_LINK_PREFIX}{digest}"))
    }
}

impl fmt::Debug for ReceiptSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ReceiptSecret([redacted])")
    }
}

/// A buyer's receipt key. Shown to the buyer once per checkout response; redacted everywhere else.
#[derive(Clone, PartialEq, Eq)]
pub struct ReceiptKey(String);

impl ReceiptKey {
    /// Wraps what a caller presented (the `Authorization: Bearer` value), for checking.
    pub fn presented(key: &str) -> Self {
        Self(key.to_owned())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    /// What the database stores.
    pub fn hash(&self) -> [u8; 32] {
        Sha256::digest(self.0.as_bytes()).into()
    }

    /// Compares against a stored hash in constant time.
    pub fn matches(&self, stored_hash: &[u8]) -> bool {
        self.hash().ct_eq(stored_hash).into()
    }
}

impl fmt::Debug for ReceiptKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ReceiptKey([redacted])")
    }
}

/// Lowercase hex, as keys and tokens are written.
pub(crate) fn hex(bytes: &[u8]) -> String {
    use fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut out, b| {
            let _ = write!(out, "{b:02x}");
            out
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_purchase_always_gets_the_same_key_and_another_purchase_another() {
        let secret = ReceiptSecret::random();
        let (a, b) = (PurchaseId::random(), PurchaseId::random());
        assert_eq!(secret.key_for(a), secret.key_for(a));
        assert_ne!(secret.key_for(a), secret.key_for(b));
        assert!(secret.key_for(a).expose().starts_with("rk_"));
        assert_eq!(secret.key_for(a).expose().len(), 3 + 64);
    }

    #[test]
    fn a_portal_link_key_is_never_the_receipt_key_of_the_same_id() {
        let secret = ReceiptSecret::random();
        let id = PurchaseId::random();
        let link = secret.portal_link_key(id.0);
        assert!(link.expose().starts_with("pl_"));
        assert_ne!(link.expose()[3..], secret.key_for(id).expose()[3..]);
    }

    #[test]
    fn keys_depend_on_the_secret() {
        let purchase = PurchaseId::random();
        assert_ne!(
            ReceiptSecret::random().key_for(purchase),
            ReceiptSecret::random().key_for(purchase)
        );
    }

    #[test]
    fn a_key_matches_its_own_hash_only() {
        let secret = ReceiptSecret::random();
        let key = secret.key_for(PurchaseId::random());
        assert!(key.matches(&key.hash()));
        assert!(!ReceiptKey::presented("rk_wrong").matches(&key.hash()));
        assert!(!key.matches(&[0u8; 31]));
    }

    #[test]
    fn secrets_and_keys_never_show_in_debug_output() {
        let secret = ReceiptSecret::random();
        let key = secret.key_for(PurchaseId::random());
        assert!(!format!("{key:?}").contains(key.expose()));
        assert_eq!(format!("{secret:?}"), "ReceiptSecret([redacted])");
    }

    #[test]
    fn short_secrets_are_refused() {
        assert!(ReceiptSecret::new(vec![7; 31]).is_none());
        assert!(ReceiptSecret::new(vec![7; 32]).is_some());
    }
}
