//! What is checked after every step (I1, I3, I5, statuses) and after healing (I2, I4, a quiet
//! second reconciliation, no job given up).

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

use market_core::audit::Actor;
use market_core::{PurchaseId, health, reconcile};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use sandbox::xano::TokenState;

use crate::case::{Case, OrFail, fail};
use crate::spec::Status;

impl Case<'_> {
    /// The model's statuses, I1, I3 and I5: they hold after every step, whatever is broken.
    pub(crate) async fn check_always(&mut self) -> Result<(), TestCaseError> {
        if let Some(ended) = self.instance.try_join_next() {
            return Err(fail(format!("the background instance stopped: {ended:?}")));
        }
        let statuses = self.statuses().await?;
        for p in &self.purchases {
            let db = &statuses[&p.id];
            prop_assert!(
                p.status.matches(db),
                "purchase {} is {db}, the model says {:?}",
                p.id,
                p.status
            );
        }
        let tokens = self.tokens().await?;
        let mut live = HashMap::<Option<PurchaseId>, usize>::new();
        for t in tokens
            .iter()
            .filter(|t| t.state == "assigned" || t.state == "revoking")
        {
            *live.entry(t.purchase_id).or_default() += 1;
        }
        prop_assert!(
            live.values().all(|&n| n <= 1),
            "I1: two live tokens for a purchase: {live:?}"
        );
        let at_xano = self.env.world.sim.tokens(&self.canonical);
        for t in tokens.iter().filter(|t| t.state == "assigned") {
            let model = self
                .purchases
                .iter()
                .find(|p| Some(p.id) == t.purchase_id)
                .map(|p| p.status);
            let (db, holding) = (
                &t.status,
                matches!(t.status.as_deref(), Some("fulfilled" | "reinstated")),
            );
            prop_assert!(
                model.is_some_and(Status::is_owed) && holding,
                "I3: token assigned to a {db:?} purchase (model: {model:?})"
            );
            // Xano and the database cannot be read at one instant while another instance works.
            let at_xano = !self.instance.is_empty() || at_xano.iter().any(|x| x.token == t.token);
            prop_assert!(at_xano, "an assigned token is not live at Xano");
        }
        let max = self.shape.max_installs;
        prop_assert!(
            tokens.iter().all(|t| t.max_installs == max),
            "I5: a token's max_installs is not its tier's"
        );
        prop_assert!(
            at_xano.iter().all(|t| t.max_installs == max),
            "I5: at Xano, a token's max_installs is not its tier's"
        );
        Ok(())
    }

    /// Runs jobs until none is due, running or parked (dead instances' leases run out meanwhile;
    /// the probe lifts a snippet refusal Xano no longer makes, every time round).
    pub(crate) async fn settle(&self) -> Result<(), TestCaseError> {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            health::probe_forbidden_listings(&self.env.market)
                .await
                .or_fail("probe the snippet")?;
            self.env.runner.drain().await.or_fail("drain")?;
            let busy = sqlx::query_as::<_, (String, String, String, Option<String>)>(
                "select kind, subject, state::text, last_error from job
                 where state in ('running', 'parked') or (state = 'queued' and due_at < now() + interval '1 hour')",
            );
            let busy = busy.fetch_all(self.pool()).await.or_fail("jobs")?;
            if busy.is_empty() {
                return Ok(());
            }
            prop_assert!(
                Instant::now() < deadline,
                "jobs never settled once Xano healed: {busy:?}"
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    /// Heals Xano, settles, reconciles, settles, then checks I2, I4 and that nothing is left to do.
    pub(crate) async fn check_healed(&mut self) -> Result<(), TestCaseError> {
        self.kill_instance().await?;
        self.env.world.sim.clear_faults();
        self.env.world.sim.set_access_token_state(TokenState::Valid);
        self.env
            .world
            .sim
            .set_snippet_forbidden(&self.canonical, false);
        self.settle().await?;
        let market = &self.env.market;
        let first = reconcile::listing(market, self.listing, &Actor::System)
            .await
            .or_fail("reconcile")?;
        // Nobody deletes or hands out tokens at Xano behind the service's back here, so the first
        // reconciliation after healing may only adopt orphans (a token created whose answer was
        // lost: a commit-then-fail, a dropped connection, an instance aborted mid-mint). Anything
        // else it repaired was damage the engine did and reconciliation hid.
        prop_assert_eq!(
            (
                first.missing,
                first.reissued,
                first.removed,
                first.foreign,
                first.redeleted,
                first.reappeared,
                first.held_back
            ),
            (0, 0, 0, 0, 0, 0, 0),
            "reconciliation repaired damage: {:?}",
            first
        );
        self.settle().await?;
        let again = reconcile::listing(market, self.listing, &Actor::System)
            .await
            .or_fail("reconcile")?;
        prop_assert!(
            !again.changed(),
            "a second reconciliation found work: {again:?}"
        );
        self.check_always().await?;

        let tokens = self.tokens().await?;
        for p in &self.purchases {
            let held: Vec<&str> = tokens
                .iter()
                .filter(|t| t.purchase_id == Some(p.id))
                .map(|t| t.state.as_str())
                .collect();
            let live = held
                .iter()
                .filter(|s| ["assigned", "revoking"].contains(s))
                .count();
            let owed = usize::from(p.status.is_owed());
            prop_assert_eq!(
                live,
                owed,
                "I2: purchase {} ({:?}) holds {:?}",
                p.id,
                p.status,
                held
            );
        }
        let live_states = ["available", "assigned", "revoking", "retiring", "foreign"];
        let db: BTreeSet<&str> = tokens
            .iter()
            .filter(|t| live_states.contains(&t.state.as_str()))
            .map(|t| t.token.as_str())
            .collect();
        let at_xano = self.env.world.sim.tokens(&self.canonical);
        let xano: BTreeSet<&str> = at_xano.iter().map(|t| t.token.as_str()).collect();
        prop_assert_eq!(db, xano, "I4: Xano's live tokens are not the database's");

        let mut subjects: Vec<String> = self.purchases.iter().map(|p| p.id.to_string()).collect();
        subjects.extend([self.tier.to_string(), self.listing.to_string()]);
        let failed = sqlx::query_as::<_, (String, String, Option<String>)>(
            "select kind, subject, last_error from job where state = 'dead' and (subject = any($1)
             or subject in (select install_token_id::text from install_token where listing_id = $2))",
        );
        let failed = failed
            .bind(&subjects)
            .bind(self.listing)
            .fetch_all(self.pool())
            .await
            .or_fail("jobs")?;
        prop_assert!(failed.is_empty(), "jobs gave up: {failed:?}");
        Ok(())
    }
}
