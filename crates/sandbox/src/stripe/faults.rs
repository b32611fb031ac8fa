//! Trouble on request, beyond what Stripe does on a good day, for testing how a consumer copes:
//!
//! - Dropped deliveries: an event is created, listed by `GET /v1/events` with `pending_webhooks`
//!   1 and counted as undelivered, but never POSTed nor retried, as when Stripe's deliveries are
//!   lost in an outage. Everything can be dropped (rate 1.0, an outage window) or a share of the
//!   events, picked by an RNG of its own, seeded, so a seed drops the same events (by position)
//!   on every run, whatever the ids. A redelivery (`/__sim/events/{id}/redeliver`) is never
//!   dropped: it is how a test proves a dropped event can still be recovered.
//! - Event drift: events rendered as a Stripe on another API version would render them, with
//!   another `api_version` and fields nobody has heard of, for a consumer that must stay lenient.
//!
//! Both are decided once, when an event is born: an event is dropped or drifted for good, and its
//! stored payload (what deliveries and `GET /v1/events` send) says so on every read.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

use super::error::SimError;
use super::model::EventDrift;

/// The seed [`DeliveryDrops`] uses when neither the control nor the configuration gives one.
const DEFAULT_DROP_SEED: u64 = 0;

/// The unknown field drifted events carry, at the event level and in `data.object`.
pub(crate) const UNKNOWN_FIELD: &str = "x_future_field";

/// Which deliveries to drop, and which were dropped.
#[derive(Debug)]
pub(crate) struct DeliveryDrops {
    rate: f64,
    seed: u64,
    /// The configuration's seed (or [`DEFAULT_DROP_SEED`]), for a control that gives none.
    default_seed: u64,
    rng: StdRng,
    /// The events whose delivery was dropped, oldest first.
    pub(crate) dropped: Vec<String>,
}

impl DeliveryDrops {
    pub(crate) fn new(config_seed: Option<u64>) -> Self {
        let seed = config_seed.unwrap_or(DEFAULT_DROP_SEED);
        Self {
            rate: 0.0,
            seed,
            default_seed: seed,
            rng: StdRng::seed_from_u64(seed),
            dropped: Vec::new(),
        }
    }

    /// Drops `rate` (0.0 none, 1.0 all) of the events created from now on, picked by a fresh RNG
    /// seeded with `seed` (or the default seed): the same rate and seed drop the same positions.
    pub(crate) fn set(&mut self, rate: f64, seed: Option<u64>) -> Result<(), SimError> {
        // `contains` is false for NaN too.
        if !(0.0..=1.0).contains(&rate) {
            return Err(SimError::InvalidDropRate(rate.to_string()));
        }
        self.rate = rate;
        self.seed = seed.unwrap_or(self.default_seed);
        self.rng = StdRng::seed_from_u64(self.seed);
        Ok(())
    }

    /// Whether the delivery of the event being born is dropped (recorded when it is). One draw
    /// per event while a rate is set, so the pattern depends on positions only.
    pub(crate) fn drop_next(&mut self, event_id: &str) -> bool {
        let dropped = self.rate > 0.0 && self.rng.random::<f64>() < self.rate;
        if dropped {
            self.dropped.push(event_id.to_owned());
        }
        dropped
    }

    /// What `GET /__sim/drop-deliveries` answers.
    pub(crate) fn view(&self) -> Value {
        json!({ "rate": self.rate, "seed": self.seed, "dropped": self.dropped })
    }
}

/// Renders an event envelope (already holding `data.object`) as `drift` says.
pub(crate) fn drift(envelope: &mut Value, drift: &EventDrift) {
    let Value::Object(event) = envelope else {
        return;
    };
    event.insert("api_version".to_owned(), json!(drift.api_version));
    if !drift.unknown_fields {
        return;
    }
    let unknown = json!({ "nested": true });
    if let Some(Value::Object(object)) = event
        .get_mut("data")
        .and_then(|data| data.get_mut("object"))
    {
        object.insert(UNKNOWN_FIELD.to_owned(), unknown.clone());
    }
    event.insert(UNKNOWN_FIELD.to_owned(), unknown);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_drops_the_same_positions_and_the_rate_is_checked() {
        let mut drops = DeliveryDrops::new(None);
        drops.set(0.5, Some(7)).unwrap();
        let first: Vec<bool> = (0..64).map(|i| drops.drop_next(&format!("a{i}"))).collect();
        drops.set(0.5, Some(7)).unwrap();
        let second: Vec<bool> = (0..64).map(|i| drops.drop_next(&format!("b{i}"))).collect();
        assert_eq!(first, second);
        assert!(first.iter().any(|d| *d) && first.iter().any(|d| !*d));
        assert!(drops.set(1.5, None).is_err());
        assert!(drops.set(f64::NAN, None).is_err());
        drops.set(0.0, None).unwrap();
        assert!(!drops.drop_next("c"));
        drops.set(1.0, None).unwrap();
        assert!(drops.drop_next("d"));
    }

    #[test]
    fn drift_changes_the_version_and_adds_unknown_fields_at_both_levels() {
        let mut envelope = json!({ "api_version": "old", "data": { "object": { "id": "x" } } });
        let future = EventDrift {
            api_version: "2099-01-01.future".to_owned(),
            unknown_fields: true,
        };
        drift(&mut envelope, &future);
        assert_eq!(envelope["api_version"], "2099-01-01.future");
        assert_eq!(envelope[UNKNOWN_FIELD]["nested"], true);
        assert_eq!(envelope["data"]["object"][UNKNOWN_FIELD]["nested"], true);
    }
}
