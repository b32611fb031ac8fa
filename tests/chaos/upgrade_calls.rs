//! The buyer's calls of the `Upgraded` scenario (`upgrades.rs`): asking for the upgrade, reading a
//! purchase until it shows what the buyer waits for, and installing on the base's token.

use std::collections::BTreeSet;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::driver::{Driver, PurchaseRecord};
use crate::history::Call;
use crate::rotations::TOKEN_WAIT;

/// An upgrade as the service answered it.
pub struct Asked {
    pub upgrade: Uuid,
    pub session: String,
    pub receipt_key: String,
    pub max_installs: i64,
}

impl Driver {
    /// Waits for the upgrade to show `fulfilled` (false when it closes or never does), and then
    /// for its base to allow the target's installs: one transaction applies both.
    pub(crate) async fn applied(
        &self,
        rng: &mut StdRng,
        upgrade: &PurchaseRecord,
        base: &PurchaseRecord,
        target_installs: i64,
    ) -> bool {
        let shown = self
            .view_until(rng, upgrade, |b| {
                !matches!(b["status"].as_str(), Some("pending" | "paid"))
            })
            .await;
        if shown.as_ref().is_none_or(|b| b["status"] != "fulfilled") {
            self.history.count("upgrade:never_shown_applied");
            return false;
        }
        self.history.count("upgrade:applied");
        if let Some(b) = self.view_until(rng, base, |_| true).await {
            let allowed = b["max_installs"].as_i64();
            if allowed != Some(target_installs) {
                self.driver_error(
                    Some(base.purchase),
                    format!(
                        "upgrade {} shows fulfilled, but its base allows {allowed:?} installs, not {target_installs}",
                        upgrade.purchase
                    ),
                );
            }
        }
        true
    }

    /// One install on the base's token. `within`: the limit the buyer was shown applied, under
    /// which Xano must not refuse one.
    pub(crate) async fn upgrade_install(
        &self,
        base: Uuid,
        canonical: &str,
        token: &str,
        within: Option<i64>,
    ) {
        match self.xano_install(base, canonical, token).await {
            Some(true) => {
                self.upgrades.update(base, |u| u.installs += 1);
                self.history.count("upgrade:installs");
            }
            Some(false) => {
                self.history.count("upgrade:install_refused");
                let made = self.upgrades.all().get(&base).map_or(0, |u| u.installs);
                if let Some(limit) = within
                    && made < limit
                {
                    self.driver_error(
                        Some(base),
                        format!(
                            "Xano refused install {} although the upgrade to {limit} installs shows applied",
                            made + 1
                        ),
                    );
                }
            }
            None => {}
        }
    }

    /// Asks for the upgrade, from one instance or two at once, and sometimes once more after the
    /// answer: every answer must name the same upgrade (`201` for the one that made it).
    pub(crate) async fn ask_upgrade(
        &self,
        rng: &mut StdRng,
        base: &PurchaseRecord,
        target: Uuid,
    ) -> Option<Asked> {
        let copies = if rng.random_bool(0.3) { 2 } else { 1 };
        let seeds: Vec<u64> = (0..copies).map(|_| rng.random()).collect();
        let mut asked: Vec<Asked> = futures::future::join_all(
            seeds
                .into_iter()
                .map(|seed| self.ask_upgrade_once(seed, base, target)),
        )
        .await
        .into_iter()
        .flatten()
        .collect();
        if copies == 2 {
            self.history.count("upgrade:asked_twice_at_once");
        }
        if !asked.is_empty() && rng.random_bool(0.2) {
            self.history.count("upgrade:asked_again");
            asked.extend(self.ask_upgrade_once(rng.random(), base, target).await);
        }
        let ids: BTreeSet<Uuid> = asked.iter().map(|a| a.upgrade).collect();
        if ids.len() > 1 {
            self.driver_error(
                Some(base.purchase),
                format!("one upgrade asked for, {} made: {ids:?}", ids.len()),
            );
        }
        asked.into_iter().next()
    }

    /// `POST /v1/purchases/{id}/upgrade` until an instance answers 200 or 201. Transport errors and
    /// answers of a frozen instance are retried elsewhere; a 404 or 409 is a driver error (the base
    /// showed its token, nothing has taken it away, and no other upgrade of it was asked for).
    async fn ask_upgrade_once(
        &self,
        seed: u64,
        base: &PurchaseRecord,
        target: Uuid,
    ) -> Option<Asked> {
        let mut rng = StdRng::seed_from_u64(seed);
        let p = base.purchase;
        for _ in 0..60 {
            if self.cluster.stopping() {
                return None;
            }
            let instance = self.instance(&mut rng);
            let request = self
                .http
                .post(self.url(instance, &format!("/v1/purchases/{p}/upgrade")))
                .bearer_auth(&base.receipt_key)
                .json(&json!({ "tier_id": target }));
            let answer = self
                .send(instance, Call::Upgrade, Some(p), request, String::new())
                .await;
            match answer {
                Some(a) if a.status == 200 || a.status == 201 => {
                    let parsed = parse_asked(&a.body);
                    if parsed.is_none() {
                        self.driver_error(Some(p), format!("upgrade answered {}", a.body));
                    }
                    return parsed;
                }
                Some(a) if a.status == 404 || a.status == 409 => {
                    self.driver_error(
                        Some(p),
                        format!(
                            "upgrade of a purchase showing its token: {} {}",
                            a.status, a.body
                        ),
                    );
                    return None;
                }
                _ => tokio::time::sleep(Duration::from_millis(rng.random_range(200..1000))).await,
            }
        }
        self.driver_error(Some(p), "an upgrade was never accepted".to_owned());
        None
    }

    /// Reads the purchase with its receipt key (through random instances) until `done` says so of
    /// what it shows, or [`TOKEN_WAIT`] passes.
    pub(crate) async fn view_until(
        &self,
        rng: &mut StdRng,
        record: &PurchaseRecord,
        done: impl Fn(&Value) -> bool,
    ) -> Option<Value> {
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
                && answer.status == 200
                && done(&answer.body)
            {
                return Some(answer.body);
            }
            tokio::time::sleep(Duration::from_millis(rng.random_range(300..900))).await;
        }
        None
    }
}

fn parse_asked(body: &Value) -> Option<Asked> {
    let url = body["checkout_url"].as_str()?;
    Some(Asked {
        upgrade: body["upgrade_id"].as_str()?.parse().ok()?,
        session: url.rsplit("/pay/").next()?.to_owned(),
        receipt_key: body["receipt_key"].as_str()?.to_owned(),
        max_installs: body["max_installs"].as_i64()?,
    })
}
