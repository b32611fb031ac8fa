//! Stripe Connect's events: a charge's transfer and fee (`charge.succeeded`), and what Stripe says
//! of a seller's connected account (`account.updated`).

use chrono::{DateTime, Utc};
use market_core::payments::{AccountFacts, ChargeFacts};
use serde::Deserialize;

use super::object::{Expandable, object_of};

#[derive(Deserialize)]
struct ChargeObject {
    id: String,
    payment_intent: Option<Expandable>,
    transfer: Option<Expandable>,
    application_fee: Option<Expandable>,
}

#[derive(Deserialize)]
struct AccountObject {
    id: String,
    #[serde(default)]
    charges_enabled: bool,
    #[serde(default)]
    payouts_enabled: bool,
    #[serde(default)]
    details_submitted: bool,
}

/// A succeeded charge's money movements; `None` for a charge of no PaymentIntent (not made by
/// Checkout, so not ours).
pub(super) fn charge(object: serde_json::Value) -> Result<Option<ChargeFacts>, String> {
    let charge: ChargeObject = object_of(object, "charge")?;
    Ok(charge.payment_intent.map(|pi| ChargeFacts {
        payment_intent: pi.id(),
        charge: charge.id,
        transfer: charge.transfer.map(Expandable::id),
        application_fee: charge.application_fee.map(Expandable::id),
    }))
}

/// An account's state as of the event's `created`: without a readable time the fact could not be
/// ordered against others, so it is unreadable (kept, replayable) rather than guessed.
pub(super) fn account(
    created: &serde_json::Value,
    object: serde_json::Value,
) -> Result<AccountFacts, String> {
    let as_of = created
        .as_i64()
        .and_then(|seconds| DateTime::<Utc>::from_timestamp(seconds, 0))
        .ok_or_else(|| format!("the event's created {created} is not a Unix time"))?;
    let account: AccountObject = object_of(object, "account")?;
    Ok(AccountFacts {
        account: account.id,
        charges_enabled: account.charges_enabled,
        payouts_enabled: account.payouts_enabled,
        details_submitted: account.details_submitted,
        as_of,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests fail by panicking")]

    use super::*;

    #[test]
    fn a_destination_charge_names_its_transfer_and_fee_and_a_direct_one_neither() {
        let destination = charge(serde_json::json!({
            "id": "ch_1", "payment_intent": "pi_1", "transfer": "tr_1",
            "application_fee": {"id": "fee_1", "amount": 190}, "unknown": true,
        }))
        .unwrap()
        .unwrap();
        assert_eq!(destination.payment_intent, "pi_1");
        assert_eq!(destination.transfer.as_deref(), Some("tr_1"));
        assert_eq!(destination.application_fee.as_deref(), Some("fee_1"));
        let direct = charge(serde_json::json!({"id": "ch_2", "payment_intent": "pi_2"}))
            .unwrap()
            .unwrap();
        assert_eq!((direct.transfer, direct.application_fee), (None, None));
        assert!(charge(serde_json::json!({"id": "ch_3"})).unwrap().is_none());
    }

    #[test]
    fn an_account_is_read_as_of_its_event_and_an_event_without_a_time_is_unreadable() {
        let object = serde_json::json!({
            "id": "acct_1", "charges_enabled": true, "payouts_enabled": false,
            "details_submitted": true, "requirements": {"currently_due": []},
        });
        let facts = account(&serde_json::json!(1_700_000_000), object.clone()).unwrap();
        assert!(facts.charges_enabled && facts.details_submitted && !facts.payouts_enabled);
        assert_eq!(facts.as_of.timestamp(), 1_700_000_000);
        assert!(account(&serde_json::json!("yesterday"), object.clone()).is_err());
        assert!(account(&serde_json::Value::Null, object).is_err());
    }
}
