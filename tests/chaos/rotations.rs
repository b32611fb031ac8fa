//! The `Rotated` scenario's second half: a buyer who replaces their token, as one who fears it
//! leaked would. Once the purchase shows its token, the buyer sometimes uses a few installs (at the
//! Xano simulator, as a site installing the snippet would), then asks for a rotation — now and then
//! from two instances at once, and again after a lost answer — and waits to be shown the new token;
//! a third of them rotate again. One in five is refunded at Stripe right after asking, the refund
//! delivered while the rotation runs: whichever wins, the purchase ends with no live token and the
//! rotation done or cancelled.
//!
//! What the buyer did is logged here ([`RotationLog`]) for the checker (`rotation_check.rs`): the
//! installs Xano accepted must all be carried onto the token the purchase ends with, and the
//! rotations the service answered must all be done.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;
use uuid::Uuid;

use crate::driver::{Driver, PurchaseRecord};
use crate::history::Call;

/// The crash point only a rotation's job reaches.
const CRASH_POINT: &str = "crash:rotation_before_old_deleted";

/// How long a buyer waits to be shown a token (the first, or a rotated one): longer than any fault
/// window, as the settle phase's bound is.
pub(crate) const TOKEN_WAIT: Duration = Duration::from_secs(120);

/// What one buyer of the `Rotated` scenario did.
#[derive(Clone, Debug, Default)]
pub struct Rotated {
    /// Installs Xano accepted, on whichever token was the purchase's then.
    pub installs: i64,
    /// The rotations the service answered 202 with.
    pub rotations: BTreeSet<Uuid>,
    /// The buyer saw every rotation asked for finish (a new token shown after each).
    pub finished: bool,
}

#[derive(Default)]
pub struct RotationLog {
    purchases: Mutex<HashMap<Uuid, Rotated>>,
}

impl RotationLog {
    fn update(&self, purchase: Uuid, f: impl FnOnce(&mut Rotated)) {
        f(self.purchases.lock().unwrap().entry(purchase).or_default());
    }

    pub fn all(&self) -> HashMap<Uuid, Rotated> {
        self.purchases.lock().unwrap().clone()
    }
}

impl Driver {
    pub fn rotation_crash_missing(&self) -> bool {
        self.history
            .counters()
            .get(CRASH_POINT)
            .copied()
            .unwrap_or(0)
            == 0
    }

    /// Rotates the purchase's token once, or a few times, each after the last one finished; or
    /// once, refunded (its payment `intent`) as it runs.
    pub async fn rotate_tokens(
        self: &Arc<Self>,
        rng: &mut StdRng,
        record: &PurchaseRecord,
        intent: Option<&str>,
    ) {
        let p = record.purchase;
        self.rotations.update(p, |_| {});
        let Some((mut shown, canonical)) = self.token_shown(rng, record, None).await else {
            self.history.count("rotation:token_never_shown");
            return;
        };
        let refund = intent.filter(|_| rng.random_bool(0.2));
        let mut rounds = 1;
        while refund.is_none() && rounds < 3 && rng.random_bool(0.35) {
            rounds += 1;
        }
        // Two rotations from one round (the first done before the second was asked) leave the
        // second running after the new token shows: an install then may land in the window the
        // service documents (read, then delete), so this buyer installs no more.
        let mut may_install = true;
        for _ in 0..rounds {
            if may_install && rng.random_bool(0.5) {
                for _ in 0..rng.random_range(1..=2) {
                    self.install(p, &canonical, &shown).await;
                }
            }
            let copies = if rng.random_bool(0.3) { 2 } else { 1 };
            let seeds: Vec<u64> = (0..copies).map(|_| rng.random()).collect();
            let asked =
                futures::future::join_all(seeds.into_iter().map(|seed| self.ask(seed, record)))
                    .await;
            let distinct: BTreeSet<Uuid> = asked.iter().flatten().copied().collect();
            if distinct.is_empty() {
                return;
            }
            if copies == 2 {
                self.history.count("rotation:asked_twice_at_once");
                may_install &= distinct.len() == 1;
            }
            if let Some(intent) = refund {
                self.refund_while_rotating(rng, record, intent).await;
                return;
            }
            let Some((next, _)) = self.token_shown(rng, record, Some(&shown)).await else {
                self.history.count("rotation:new_token_never_shown");
                return;
            };
            self.history.count("rotation:done");
            shown = next;
        }
        self.rotations.update(p, |r| r.finished = true);
    }

    /// A full refund at Stripe, its event delivered at once (racing the rotation's job).
    async fn refund_while_rotating(
        self: &Arc<Self>,
        rng: &mut StdRng,
        record: &PurchaseRecord,
        intent: &str,
    ) {
        let p = record.purchase;
        let body = json!({ "payment_intent": intent });
        if self.stripe_control(p, "/refund", body).await.is_none() {
            return;
        }
        self.history.count("rotation:refunded_meanwhile");
        if let Some(refunded) = self.wait_event(p, "charge.refunded").await {
            self.deliver_racing(rng, record, &[refunded], 0).await;
        }
    }

    /// Reads the purchase with its receipt key (through random instances) until it shows a token
    /// other than `old`, or [`TOKEN_WAIT`] passes. Returns the value and the token's canonical.
    pub(crate) async fn token_shown(
        &self,
        rng: &mut StdRng,
        record: &PurchaseRecord,
        old: Option<&str>,
    ) -> Option<(String, String)> {
        let until = tokio::time::Instant::now() + TOKEN_WAIT;
        while tokio::time::Instant::now() < until && !self.cluster.stopping() {
            let instance = self.instance(rng);
            let request = self
                .http
                .get(self.url(instance, &format!("/v1/purchases/{}", record.purchase)))
                .bearer_auth(&record.receipt_key);
            if let Some(answer) = self
                .send(
                    instance,
                    Call::Purchase,
                    Some(record.purchase),
                    request,
                    String::new(),
                )
                .await
                && let Some(value) = answer.body["token"]["value"].as_str()
                && Some(value) != old
            {
                let canonical = answer.body["tier"]["canonical"].as_str()?;
                return Some((value.to_owned(), canonical.to_owned()));
            }
            tokio::time::sleep(Duration::from_millis(rng.random_range(300..900))).await;
        }
        None
    }

    /// One install with `token`, as a buyer's site would make it, logged for the rotation check.
    async fn install(&self, purchase: Uuid, canonical: &str, token: &str) {
        match self.xano_install(purchase, canonical, token).await {
            Some(true) => {
                self.rotations.update(purchase, |r| r.installs += 1);
                self.history.count("rotation:installs");
            }
            Some(false) => self.history.count("rotation:install_limit_reached"),
            None => {}
        }
    }

    /// One install with `token` at the Xano simulator: `Some(true)` when Xano accepted it,
    /// `Some(false)` when it refused one past the limit (409). A token the buyer is shown must never
    /// be unknown or revoked there (a driver error, `None`).
    pub(crate) async fn xano_install(
        &self,
        purchase: Uuid,
        canonical: &str,
        token: &str,
    ) -> Option<bool> {
        let url = format!("{}/install", self.cluster.xano_control);
        let body = json!({ "canonical": canonical, "token": token });
        match self.http.post(&url).json(&body).send().await {
            Ok(r) if r.status().is_success() => {
                self.history
                    .record(Some(purchase), None, "an install with the token shown");
                Some(true)
            }
            Ok(r) if r.status() == 409 => Some(false),
            Ok(r) => {
                let status = r.status();
                let text = r.text().await.unwrap_or_default();
                self.driver_error(
                    Some(purchase),
                    format!("an install with the token the buyer was shown: {status} {text}"),
                );
                None
            }
            Err(e) => {
                self.driver_error(Some(purchase), format!("xano sim install: {e}"));
                None
            }
        }
    }

    /// Asks for a rotation until an instance answers 202 (the rotation's id): transport errors
    /// and answers of a frozen instance are retried elsewhere; `409 not_rotatable` is retried a
    /// few times, and is a driver error when it lasts (the purchase showed its token, and nothing
    /// in this scenario takes it away).
    pub(crate) async fn ask(&self, seed: u64, record: &PurchaseRecord) -> Option<Uuid> {
        let mut rng = StdRng::seed_from_u64(seed);
        let p = record.purchase;
        let mut refused = 0;
        for _ in 0..60 {
            if self.cluster.stopping() {
                return None;
            }
            let instance = self.instance(&mut rng);
            let request = self
                .http
                .post(self.url(instance, &format!("/v1/purchases/{p}/rotate")))
                .bearer_auth(&record.receipt_key);
            let answer = self
                .send(instance, Call::Rotate, Some(p), request, String::new())
                .await;
            match answer {
                Some(a) if a.status == 202 => {
                    let id: Uuid = a.body["rotation_id"].as_str()?.parse().ok()?;
                    self.rotations.update(p, |r| {
                        r.rotations.insert(id);
                    });
                    self.history.record(
                        Some(p),
                        Some(instance),
                        format!("rotation {id} ({})", a.body["state"]),
                    );
                    return Some(id);
                }
                Some(a) if a.status == 409 => {
                    refused += 1;
                    if a.body["error"]["code"] != "not_rotatable" || refused >= 5 {
                        self.driver_error(
                            Some(p),
                            format!(
                                "rotation refused {refused} times (409 {}) although the purchase showed its token",
                                a.body
                            ),
                        );
                        return None;
                    }
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                Some(a) if a.status == 404 => {
                    self.driver_error(Some(p), "rotation with the receipt key: 404".to_owned());
                    return None;
                }
                _ => tokio::time::sleep(Duration::from_millis(rng.random_range(200..1000))).await,
            }
        }
        self.driver_error(Some(p), "a rotation was never accepted".to_owned());
        None
    }
}
