//! Who a request acts as: the account its bearer token belongs to, a fingerprint of that token,
//! and the account owning the snippet its path names.
//!
//! A marketplace calls Xano with many sellers' access tokens, and must never send one seller's
//! token about another's snippet. The call log records these three facts for every call, so a test
//! can prove it from what reached "Xano" (`account == snippet_account`) rather than from the
//! service's own account of its calls. The token itself is never recorded: a fingerprint tells the
//! tokens apart (an old one and its replacement, say) without being usable.

use sha2::{Digest, Sha256};

use super::store::Store;

/// The first 12 hex digits of the SHA-256 of `access_token`: what the call log shows of it.
///
/// 48 bits tell a test's handful of tokens apart with certainty and reveal nothing usable about
/// the token. A test computes it from the tokens it handed out to match them with the log.
pub fn token_fingerprint(access_token: &str) -> String {
    let digest = Sha256::digest(access_token.as_bytes());
    let mut hex = hex::encode(digest);
    hex.truncate(12);
    hex
}

/// What the call log records of a request's caller.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Caller {
    /// The `id` of the account holding the bearer token, whatever the token's state (an expired
    /// token still names its account); `None` without a token or with one no account holds.
    pub(crate) account: Option<String>,
    /// [`token_fingerprint`] of the bearer token, known to an account or not.
    pub(crate) token_fingerprint: Option<String>,
    /// The `id` of the account owning the snippet the path names; `None` when the path names
    /// none, or a snippet that does not exist.
    pub(crate) snippet_account: Option<String>,
}

impl Caller {
    pub(crate) fn of(store: &Store, bearer: Option<&str>, canonical: Option<&str>) -> Self {
        let account_id = |index: usize| store.accounts.get(index).map(|a| a.profile.id.clone());
        Self {
            account: bearer
                .and_then(|token| store.account_of(token))
                .and_then(account_id),
            token_fingerprint: bearer.map(token_fingerprint),
            snippet_account: canonical
                .and_then(|canonical| store.owner_of(canonical))
                .and_then(account_id),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fingerprint_is_twelve_hex_digits_of_the_sha256_and_differs_per_token() {
        // SHA-256("abc") = ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad
        assert_eq!(token_fingerprint("abc"), "ba7816bf8f01");
        assert_ne!(token_fingerprint("abd"), token_fingerprint("abc"));
    }
}
