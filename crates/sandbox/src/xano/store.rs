//! The simulated account data: accounts with their access tokens and instances, snippets, and
//! snippet install tokens. Plain synchronous code, always called under the state lock.
//!
//! An account may hold several access tokens, each valid, expired or forbidden on its own, as in
//! Xano's *Manage Access Tokens*: a rotation has an old and a new token working on the same snippets
//! until the old one is revoked. A snippet can also be forbidden on its own (every call naming it
//! is a 403 while the token works elsewhere), as when its rights are taken from the token.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use rand::Rng;

use super::error::XanoError;
use super::model::{
    InstallAccess, InstallError, SimAccount, SimInstance, SimSnippet, SimToken, TokenState,
};

pub(crate) struct Account {
    pub(crate) profile: SimAccount,
    pub(crate) instances: Vec<SimInstance>,
}

/// An access token: whose it is, and whether Xano accepts it.
struct AccessToken {
    account: usize,
    state: TokenState,
}

pub(crate) struct SnippetRecord {
    pub(crate) owner: usize,
    pub(crate) canonical: String,
    pub(crate) name: String,
    pub(crate) install_access: InstallAccess,
    pub(crate) install_access_description: String,
    pub(crate) created_at: DateTime<Utc>,
    pub(crate) updated_at: DateTime<Utc>,
    /// Live tokens in creation order (the order `GET …/token` lists them in).
    pub(crate) tokens: Vec<TokenRecord>,
}

pub(crate) struct TokenRecord {
    pub(crate) token: String,
    pub(crate) max_installs: i64,
    pub(crate) current_installs: i64,
    pub(crate) created_at: DateTime<Utc>,
    pub(crate) updated_at: DateTime<Utc>,
}

impl TokenRecord {
    fn view(&self) -> SimToken {
        SimToken {
            token: self.token.clone(),
            max_installs: self.max_installs,
            current_installs: self.current_installs,
        }
    }
}

#[derive(Default)]
pub(crate) struct Store {
    pub(crate) accounts: Vec<Account>,
    by_access_token: HashMap<String, AccessToken>,
    snippets: Vec<SnippetRecord>,
    by_canonical: HashMap<String, usize>,
    /// Every install token ever handed out, deleted ones included, so a value is never reused:
    /// a buyer holding a revoked token must not find it opening someone else's snippet later.
    issued: HashSet<String>,
    /// Deleted tokens and the snippet they belonged to, so an install can say "revoked".
    revoked: HashMap<String, String>,
    /// Canonicals every call naming them is refused (403) for, whatever the access token.
    forbidden_snippets: HashSet<String>,
    /// Canonicals every call naming them answers 404 for (deletions of their tokens aside), as if
    /// the snippet were gone for a while; their tokens are kept and come back with it.
    hidden_snippets: HashSet<String>,
    /// Per canonical: how many of the next token lists are cut short, and to how many tokens.
    truncated_lists: HashMap<String, (u32, usize)>,
}

const TOKEN_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
const ACCESS_TOKEN_ALPHABET: &[u8] =
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

fn random_string(rng: &mut impl Rng, alphabet: &[u8], len: usize) -> String {
    (0..len)
        .map(|_| char::from(alphabet[rng.random_range(0..alphabet.len())]))
        .collect()
}

impl Store {
    /// Adds an account holding `access_token` and returns its index. A token that is already in
    /// use is taken away from its previous holder, which keeps one token ↔ one account.
    pub(crate) fn add_account(&mut self, profile: SimAccount, access_token: String) -> usize {
        let index = self.accounts.len();
        self.accounts.push(Account {
            profile,
            instances: Vec::new(),
        });
        self.add_access_token(index, access_token);
        index
    }

    /// Gives `account` one more access token, valid. A token that is already in use is taken away
    /// from its previous holder, which keeps one token ↔ one account.
    pub(crate) fn add_access_token(&mut self, account: usize, access_token: String) {
        self.by_access_token.insert(
            access_token,
            AccessToken {
                account,
                state: TokenState::Valid,
            },
        );
    }

    /// A fresh opaque access token (48 characters, mixed case) no account holds yet.
    pub(crate) fn new_access_token(&self, rng: &mut impl Rng) -> String {
        loop {
            let candidate = random_string(rng, ACCESS_TOKEN_ALPHABET, 48);
            if !self.by_access_token.contains_key(&candidate) {
                return candidate;
            }
        }
    }

    pub(crate) fn account_of(&self, access_token: &str) -> Option<usize> {
        self.by_access_token.get(access_token).map(|t| t.account)
    }

    /// Resolves a bearer token to its account: 401 for none, unknown or expired, 403 for a token
    /// that lacks rights. Both messages are fixed texts, never the token itself.
    pub(crate) fn authenticate(&self, bearer: Option<&str>) -> Result<usize, XanoError> {
        let Some(bearer) = bearer else {
            return Err(XanoError::unauthorized(
                "Missing or malformed Authorization header.",
            ));
        };
        let token = self
            .by_access_token
            .get(bearer)
            .ok_or_else(|| XanoError::unauthorized("Invalid token."))?;
        match token.state {
            TokenState::Valid => Ok(token.account),
            TokenState::Forbidden => Err(XanoError::access_denied()),
            TokenState::Expired => Err(XanoError::unauthorized("This token has expired.")),
        }
    }

    /// Makes one access token valid, expired or forbidden; false if no account holds it.
    pub(crate) fn set_token_state(&mut self, access_token: &str, state: TokenState) -> bool {
        match self.by_access_token.get_mut(access_token) {
            Some(token) => {
                token.state = state;
                true
            }
            None => false,
        }
    }

    /// Makes every call naming `canonical` a 403 (`forbidden`), or lifts that.
    pub(crate) fn set_snippet_forbidden(&mut self, canonical: &str, forbidden: bool) {
        if forbidden {
            self.forbidden_snippets.insert(canonical.to_owned());
        } else {
            self.forbidden_snippets.remove(canonical);
        }
    }

    /// Makes every call naming `canonical` a 404 (`hidden`), or lifts that.
    pub(crate) fn set_snippet_hidden(&mut self, canonical: &str, hidden: bool) {
        if hidden {
            self.hidden_snippets.insert(canonical.to_owned());
        } else {
            self.hidden_snippets.remove(canonical);
        }
    }

    /// Cuts the next `count` token lists of `canonical` to their first `keep` tokens (a Xano
    /// incident answering with a partial list); `count` 0 lifts it.
    pub(crate) fn truncate_token_lists(&mut self, canonical: &str, count: u32, keep: usize) {
        if count == 0 {
            self.truncated_lists.remove(canonical);
        } else {
            self.truncated_lists
                .insert(canonical.to_owned(), (count, keep));
        }
    }

    /// How many of `canonical`'s next token lists are still to be cut short.
    pub(crate) fn truncations_left(&self, canonical: &str) -> u32 {
        self.truncated_lists.get(canonical).map_or(0, |(n, _)| *n)
    }

    /// How many tokens this list of `canonical` shows, if it is cut short; uses up one cut.
    pub(crate) fn take_truncation(&mut self, canonical: &str) -> Option<usize> {
        let (left, keep) = self.truncated_lists.get_mut(canonical)?;
        let keep = *keep;
        *left -= 1;
        if *left == 0 {
            self.truncated_lists.remove(canonical);
        }
        Some(keep)
    }

    /// A 403 when Xano refuses calls naming `canonical` to every token; a 404 while it is hidden,
    /// except to a `deletion` of one of its tokens (which goes through: a 404 there would tell the
    /// caller the token is gone while it is kept, a lie no real incident tells).
    pub(crate) fn check_snippet_allowed(
        &self,
        canonical: &str,
        deletion: bool,
    ) -> Result<(), XanoError> {
        if self.forbidden_snippets.contains(canonical) {
            Err(XanoError::access_denied())
        } else if self.hidden_snippets.contains(canonical) && !deletion {
            Err(XanoError::not_found())
        } else {
            Ok(())
        }
    }

    pub(crate) fn add_instance(&mut self, account: usize, instance: SimInstance) {
        if let Some(account) = self.accounts.get_mut(account) {
            account
                .instances
                .retain(|existing| existing.name != instance.name);
            account.instances.push(instance);
        }
    }

    /// Adds a snippet with Xano's defaults (`public`, review `pending`). Adding a canonical that
    /// already exists changes nothing, so seeding code can run twice without losing tokens.
    pub(crate) fn add_snippet(
        &mut self,
        owner: usize,
        canonical: &str,
        name: &str,
        now: DateTime<Utc>,
    ) {
        if self.by_canonical.contains_key(canonical) || owner >= self.accounts.len() {
            return;
        }
        self.by_canonical
            .insert(canonical.to_owned(), self.snippets.len());
        self.snippets.push(SnippetRecord {
            owner,
            canonical: canonical.to_owned(),
            name: name.to_owned(),
            install_access: InstallAccess::Public,
            install_access_description: String::new(),
            created_at: now,
            updated_at: now,
            tokens: Vec::new(),
        });
    }

    /// Deletes a snippet, as its creator would in Xano's UI: every later call naming it is a 404,
    /// and it leaves its account's list. Its tokens' values stay issued, never to be reused.
    pub(crate) fn remove_snippet(&mut self, canonical: &str) -> bool {
        let Some(index) = self.by_canonical.remove(canonical) else {
            return false;
        };
        if let Some(snippet) = self.snippets.get_mut(index) {
            snippet.owner = usize::MAX; // no account: out of every listing
            snippet.tokens.clear();
        }
        true
    }

    pub(crate) fn snippets_of(&self, owner: usize) -> impl Iterator<Item = &SnippetRecord> {
        self.snippets
            .iter()
            .filter(move |snippet| snippet.owner == owner)
    }

    /// The index of the account owning `canonical`; `None` for a snippet that does not exist.
    pub(crate) fn owner_of(&self, canonical: &str) -> Option<usize> {
        self.snippet(canonical).map(|snippet| snippet.owner)
    }

    fn snippet(&self, canonical: &str) -> Option<&SnippetRecord> {
        self.by_canonical
            .get(canonical)
            .and_then(|&index| self.snippets.get(index))
    }

    fn snippet_mut(&mut self, canonical: &str) -> Option<&mut SnippetRecord> {
        let index = *self.by_canonical.get(canonical)?;
        self.snippets.get_mut(index)
    }

    /// The caller's snippet. Another account's snippet is a 404, exactly like a missing one: the
    /// spec leaves 403-or-404 open, and 404 does not reveal that the canonical exists.
    pub(crate) fn owned(&self, owner: usize, canonical: &str) -> Result<&SnippetRecord, XanoError> {
        self.snippet(canonical)
            .filter(|snippet| snippet.owner == owner)
            .ok_or_else(XanoError::not_found)
    }

    pub(crate) fn owned_mut(
        &mut self,
        owner: usize,
        canonical: &str,
    ) -> Result<&mut SnippetRecord, XanoError> {
        self.snippet_mut(canonical)
            .filter(|snippet| snippet.owner == owner)
            .ok_or_else(XanoError::not_found)
    }

    /// A fresh install token value: 8 characters of `[A-Z0-9]`, never issued before anywhere in
    /// this simulator.
    pub(crate) fn issue_token_value(&mut self, rng: &mut impl Rng) -> String {
        loop {
            let candidate = random_string(rng, TOKEN_ALPHABET, 8);
            if self.issued.insert(candidate.clone()) {
                return candidate;
            }
        }
    }

    /// Removes a live token of the caller's snippet; remembers it as revoked for installs.
    pub(crate) fn delete_token(
        &mut self,
        owner: usize,
        canonical: &str,
        token: &str,
    ) -> Result<(), XanoError> {
        let snippet = self.owned_mut(owner, canonical)?;
        let position = snippet
            .tokens
            .iter()
            .position(|record| record.token == token)
            .ok_or_else(XanoError::not_found)?;
        snippet.tokens.remove(position);
        self.revoked.insert(token.to_owned(), canonical.to_owned());
        Ok(())
    }

    pub(crate) fn snippet_view(&self, canonical: &str) -> Option<SimSnippet> {
        self.snippet(canonical).map(|snippet| SimSnippet {
            canonical: snippet.canonical.clone(),
            name: snippet.name.clone(),
            install_access: snippet.install_access,
            install_access_description: snippet.install_access_description.clone(),
        })
    }

    pub(crate) fn live_tokens(&self, canonical: &str) -> Vec<SimToken> {
        self.snippet(canonical)
            .map(|snippet| snippet.tokens.iter().map(TokenRecord::view).collect())
            .unwrap_or_default()
    }

    /// A buyer installs `canonical` with `token`: one more install, unless the token is used up.
    ///
    /// The snippet's `install_access` is deliberately not checked: whether a token still works
    /// after the seller switches to `public` or `link` is unknown (spec, Uncertain 5), and a
    /// lenient simulator does not make the product's tests depend on a guess.
    pub(crate) fn install(
        &mut self,
        canonical: &str,
        token: &str,
        now: DateTime<Utc>,
    ) -> Result<i64, InstallError> {
        let revoked = self
            .revoked
            .get(token)
            .is_some_and(|owner| owner == canonical);
        let snippet = self
            .snippet_mut(canonical)
            .ok_or(InstallError::UnknownSnippet)?;
        let Some(record) = snippet
            .tokens
            .iter_mut()
            .find(|record| record.token == token)
        else {
            return Err(if revoked {
                InstallError::Revoked
            } else {
                InstallError::UnknownToken
            });
        };
        if record.current_installs >= record.max_installs {
            return Err(InstallError::LimitReached {
                max_installs: record.max_installs,
            });
        }
        record.current_installs += 1;
        record.updated_at = now;
        Ok(record.current_installs)
    }
}
