//! What the Xano simulator's call log proves about the isolation run, from what reached "Xano"
//! rather than from the service's own account of its calls:
//!
//! - **No call carried another seller's token.** Every call naming a snippet was made with a token
//!   of the account owning it (`account == snippet_account`), and every call's token is one the
//!   service was given for that account (its fingerprint is among the seller's tokens').
//! - **C's faults did not reach A.** Between the marks of C's fault window, A's calls were made
//!   (its pools kept being refilled), none was answered 429 and none took [`A_SLOW`] or more; in the
//!   whole second run none of A's calls met a 429.
//! - **The faults were met**, or the run proved nothing: C's calls met 429s and calls outlasting the
//!   service's client timeout; B's revoked token met 401s and its new one was then accepted.

use std::collections::{BTreeMap, HashMap, HashSet};

use sandbox::xano::{CallRecordJson, Endpoint};

use crate::checker::Checker;
use crate::seller_faults::{C_FAULTS_END, C_FAULTS_START, marked_at};
use crate::sellers::Seller;

/// An A call this long would be one that something held up: the simulator answers in
/// milliseconds, and C's latency is 20 s.
pub const A_SLOW_MS: f64 = 2000.0;

fn took_ms(call: &CallRecordJson) -> f64 {
    call.ended_ms - call.started_ms
}

fn names_a_snippet(endpoint: Endpoint) -> bool {
    !matches!(
        endpoint,
        Endpoint::Me | Endpoint::Instances | Endpoint::Instance | Endpoint::Snippets
    )
}

/// Per account: calls, 429s, 401s, calls at or past the client timeout, the longest call (ms).
#[derive(Default, Debug)]
pub struct Tally {
    pub calls: u64,
    pub rate_limited: u64,
    pub refused: u64,
    pub timed_out: u64,
    pub longest_ms: f64,
}

/// The ownership checks, over every call of both runs.
pub fn check_ownership(c: &mut Checker, sellers: &[Seller], calls: &[CallRecordJson]) -> u64 {
    let fingerprints: HashMap<&str, HashSet<String>> = sellers
        .iter()
        .map(|s| (s.xano_account.as_str(), s.fingerprints()))
        .collect();
    let mut on_snippets = 0;
    for call in calls {
        let Some(endpoint) = call.endpoint else {
            continue; // a mark, or a path outside the API
        };
        let account = call.account.as_deref();
        let whose = account.and_then(|a| fingerprints.get(a));
        c.check(
            whose.is_some_and(|own| {
                call.token_fingerprint
                    .as_ref()
                    .is_some_and(|fp| own.contains(fp))
            }),
            None,
            || {
                format!(
                    "{} {} carried token {:?} of account {account:?}: not a token the service was given for that account",
                    call.method, call.path, call.token_fingerprint
                )
            },
        );
        if names_a_snippet(endpoint) {
            on_snippets += 1;
            c.check(
                call.snippet_account.is_some() && call.snippet_account.as_deref() == account,
                None,
                || {
                    format!(
                        "{} {} (a snippet of account {:?}) was made with a token of account {account:?}",
                        call.method, call.path, call.snippet_account
                    )
                },
            );
        }
    }
    on_snippets
}

/// The second run's checks: C's faults kept from A, and every fault met. Returns the tallies by
/// account: over C's fault window, and over the whole run.
pub fn check_faults(
    c: &mut Checker,
    sellers: &[Seller],
    calls: &[CallRecordJson],
    client_timeout_ms: f64,
) -> (BTreeMap<String, Tally>, BTreeMap<String, Tally>) {
    let window = marked_at(calls, C_FAULTS_START).zip(marked_at(calls, C_FAULTS_END));
    c.check(window.is_some(), None, || {
        "the call log lacks the marks of C's fault window".to_owned()
    });
    let (from, to) = window.unwrap_or((0.0, f64::INFINITY));
    let tally = |in_window: bool| {
        let mut by_account: BTreeMap<String, Tally> = BTreeMap::new();
        for call in calls.iter().filter(|c| c.endpoint.is_some()) {
            if in_window && !(from..=to).contains(&call.started_ms) {
                continue;
            }
            let t = by_account
                .entry(call.account.clone().unwrap_or_else(|| "none".into()))
                .or_default();
            t.calls += 1;
            t.rate_limited += u64::from(call.status == 429);
            t.refused += u64::from(call.status == 401);
            t.timed_out += u64::from(took_ms(call) >= client_timeout_ms);
            t.longest_ms = t.longest_ms.max(took_ms(call));
        }
        by_account
    };
    let (during, whole) = (tally(true), tally(false));
    let [a, b, c_seller] = [&sellers[1], &sellers[2], &sellers[3]];
    let none = Tally::default();
    let a_during = during.get(&a.xano_account).unwrap_or(&none);
    let a_whole = whole.get(&a.xano_account).unwrap_or(&none);
    let c_during = during.get(&c_seller.xano_account).unwrap_or(&none);

    c.check(a_during.calls > 0, None, || {
        "A made no call during C's fault window: nothing shows C's faults did not reach it".into()
    });
    c.check(
        a_whole.rate_limited == 0 && a_during.longest_ms < A_SLOW_MS,
        None,
        || format!("C's faults reached A: {a_during:?} in C's window, {a_whole:?} in the run"),
    );
    c.check(
        c_during.rate_limited > 0 && c_during.timed_out > 0,
        None,
        || format!("C's calls did not meet both its 429 storm and its latency: {c_during:?}"),
    );

    // B: its first token refused, its new one then accepted.
    let tokens = b.xano_tokens.lock().unwrap().clone();
    let fp = |token: &str| Some(sandbox::xano::token_fingerprint(token));
    let old = tokens.first().and_then(|t| fp(t));
    let new = tokens.last().and_then(|t| fp(t));
    let refused = calls
        .iter()
        .filter(|c| c.token_fingerprint == old && c.status == 401)
        .count();
    let accepted = calls
        .iter()
        .filter(|c| c.token_fingerprint == new && (200..300).contains(&c.status))
        .count();
    c.check(tokens.len() > 1 && refused > 0 && accepted > 0, None, || {
        format!(
            "B's revoked token met {refused} refusals and its new one {accepted} answers (of {} tokens)",
            tokens.len()
        )
    });
    (during, whole)
}
