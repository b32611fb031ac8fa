//! Idempotent requests as Stripe documents them: the first POST with an `Idempotency-Key` that
//! runs has its status and body saved; a later request with the same key and the same
//! parameters gets that saved answer back (`Idempotent-Replayed: true`), and one with other
//! parameters (or another endpoint) is refused with an `idempotency_error`. A request that fails
//! validation saves nothing, so fixing it and retrying with the same key works.
//!
//! Keys are never pruned here (Stripe keeps them at least 24 hours; a simulator's life is
//! shorter).

use std::collections::HashMap;
use std::fmt::Write as _;

/// A saved answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Saved {
    pub(crate) fingerprint: String,
    pub(crate) status: u16,
    pub(crate) body: String,
    pub(crate) request_id: String,
}

/// What to do with a request carrying a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Lookup {
    /// First use: run it, then [`IdempotencyStore::save`] the answer if it succeeded.
    Run,
    Replay(Saved),
    Mismatch,
}

#[derive(Debug, Default)]
pub(crate) struct IdempotencyStore {
    saved: HashMap<String, Saved>,
}

impl IdempotencyStore {
    pub(crate) fn lookup(&self, key: &str, fingerprint: &str) -> Lookup {
        match self.saved.get(key) {
            None => Lookup::Run,
            Some(saved) if saved.fingerprint == fingerprint => Lookup::Replay(saved.clone()),
            Some(_) => Lookup::Mismatch,
        }
    }

    pub(crate) fn save(&mut self, key: &str, saved: Saved) {
        self.saved.insert(key.to_owned(), saved);
    }
}

/// What "the same request" means: method, path and the decoded parameters, in any order.
pub(crate) fn fingerprint(method: &str, path: &str, pairs: &[(String, String)]) -> String {
    let mut pairs: Vec<&(String, String)> = pairs.iter().collect();
    pairs.sort();
    let mut text = format!("{method} {path}");
    for (key, value) in pairs {
        // Length prefixes keep `a=b&c` and `a=b%26c` apart.
        // Writing to a String cannot fail.
        let _ = write!(text, "\n{}:{key}={value}", key.len());
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn parameter_order_does_not_matter_but_values_and_paths_do() {
        let a = fingerprint("POST", "/v1/refunds", &pairs(&[("a", "1"), ("b", "2")]));
        let b = fingerprint("POST", "/v1/refunds", &pairs(&[("b", "2"), ("a", "1")]));
        let c = fingerprint("POST", "/v1/refunds", &pairs(&[("a", "1"), ("b", "3")]));
        let d = fingerprint(
            "POST",
            "/v1/checkout/sessions",
            &pairs(&[("a", "1"), ("b", "2")]),
        );
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_ne!(a, d);
    }

    #[test]
    fn a_saved_answer_is_replayed_only_for_the_same_request() {
        let mut store = IdempotencyStore::default();
        assert_eq!(store.lookup("k", "f"), Lookup::Run);
        let saved = Saved {
            fingerprint: "f".to_owned(),
            status: 200,
            body: "{}".to_owned(),
            request_id: "req_1".to_owned(),
        };
        store.save("k", saved.clone());
        assert_eq!(store.lookup("k", "f"), Lookup::Replay(saved));
        assert_eq!(store.lookup("k", "g"), Lookup::Mismatch);
    }
}
