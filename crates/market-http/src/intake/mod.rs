//! Reading a verified Stripe event, leniently: only the fields each fact needs, into small types of
//! our own.
//!
//! async-stripe's event types are generated for one API version and read every field they know
//! strictly. A webhook endpoint pinned to another version, or a field Stripe adds, reshapes or
//! leaves out, would make every event of a type unreadable, refused forever: one drift would stop
//! all fulfilment. So the signature is checked with async-stripe (`StripeGateway::verify`), and the
//! body is read here: an event is its `id`, `type`, `livemode` and `data.object`; each handled type
//! reads from the object only what its fact needs. Unknown fields, missing optional ones and other
//! API versions change nothing.
//!
//! A verified event of a handled type that still cannot be read (a field the fact needs is missing
//! or reshaped) is [`Read::Unreadable`]: it is kept raw (`payments::unreadable`) to be replayed by a
//! release that reads it. Applying what was read is [`crate::inbox`]'s.

use std::collections::HashMap;

use market_core::payments::{DisputeStage, Fact, SessionFacts, SessionPayment};
use market_core::{Currency, Email, Money, PurchaseId};
use serde::Deserialize;

mod connect;
mod object;

use object::{Expandable, object_of};

/// The Stripe API version async-stripe's types were generated for, and so the one to pin the
/// webhook endpoint to (the service reads others too; see the module doc).
pub fn expected_api_version() -> String {
    stripe_shared::version::VERSION.to_string()
}

/// What a verified body says.
#[derive(Debug)]
pub enum Read {
    /// An event: its fact, or `None` for types the service does not handle.
    Event {
        id: String,
        type_: String,
        livemode: bool,
        fact: Option<Fact>,
    },
    /// An event of a handled type whose object lacks what its fact needs.
    Unreadable {
        id: String,
        type_: String,
        livemode: bool,
        reason: String,
    },
    /// Not an event at all (not JSON, no id or type or object).
    NotAnEvent,
}

#[derive(Deserialize)]
struct Envelope {
    id: String,
    #[serde(rename = "type")]
    type_: String,
    #[serde(default)]
    livemode: bool,
    /// When Stripe made the event (Unix seconds); read only by the facts that need it, so an
    /// event whose `created` is missing or reshaped still applies where it does not matter.
    #[serde(default)]
    created: serde_json::Value,
    data: Data,
}

#[derive(Deserialize)]
struct Data {
    object: serde_json::Value,
}

#[derive(Deserialize)]
struct SessionObject {
    id: String,
    client_reference_id: Option<String>,
    #[serde(default)]
    metadata: Option<HashMap<String, serde_json::Value>>,
    payment_status: Option<String>,
    payment_intent: Option<Expandable>,
    mode: Option<String>,
    currency: Option<String>,
    amount_total: Option<i64>,
    /// The payer's email as Stripe Checkout collected it.
    #[serde(default)]
    customer_details: Option<CustomerDetails>,
}

#[derive(Deserialize)]
struct CustomerDetails {
    email: Option<String>,
}

#[derive(Deserialize)]
struct ChargeObject {
    payment_intent: Option<Expandable>,
    #[serde(default)]
    amount_refunded: i64,
    #[serde(default)]
    refunded: bool,
}

#[derive(Deserialize)]
struct DisputeObject {
    payment_intent: Option<Expandable>,
    status: Option<String>,
}

/// Reads a verified body.
pub fn read(payload: &str) -> Read {
    let Ok(envelope) = serde_json::from_str::<Envelope>(payload) else {
        return Read::NotAnEvent;
    };
    let Envelope {
        id,
        type_,
        livemode,
        created,
        data,
    } = envelope;
    match fact_of(&type_, &created, data.object) {
        Ok(fact) => Read::Event {
            id,
            type_,
            livemode,
            fact,
        },
        Err(reason) => Read::Unreadable {
            id,
            type_,
            livemode,
            reason,
        },
    }
}

/// The fact an event of `type_` carries; `Ok(None)` for types the service does not handle (and
/// for sessions it did not create, which name no purchase of ours).
fn fact_of(
    type_: &str,
    created: &serde_json::Value,
    object: serde_json::Value,
) -> Result<Option<Fact>, String> {
    Ok(match type_ {
        "checkout.session.completed" => session(object)?.map(Fact::CheckoutCompleted),
        "checkout.session.async_payment_succeeded" => {
            session(object)?.map(Fact::AsyncPaymentSucceeded)
        }
        "checkout.session.async_payment_failed" => session(object)?.map(Fact::AsyncPaymentFailed),
        "checkout.session.expired" => session(object)?.map(Fact::CheckoutExpired),
        "charge.refunded" => {
            let charge: ChargeObject = object_of(object, "charge")?;
            charge.payment_intent.map(|pi| Fact::ChargeRefunded {
                payment_intent: pi.id(),
                amount_refunded: charge.amount_refunded,
                fully_refunded: charge.refunded,
            })
        }
        "charge.dispute.created" | "charge.dispute.updated" | "charge.dispute.closed" => {
            dispute(type_, object)?
        }
        "charge.succeeded" => connect::charge(object)?.map(Fact::ChargeSucceeded),
        "account.updated" => Some(Fact::AccountUpdated(connect::account(created, object)?)),
        _ => None,
    })
}

/// A dispute's event: its stage is its object's status. A `created` whose status this release
/// does not know is taken as an open chargeback (access is suspended, never wrongly kept); a
/// `closed` or `updated` one is unreadable, kept to be replayed by a release that knows it.
fn dispute(type_: &str, object: serde_json::Value) -> Result<Option<Fact>, String> {
    let dispute: DisputeObject = object_of(object, "dispute")?;
    let stage = dispute
        .status
        .as_deref()
        .and_then(DisputeStage::from_status);
    let stage = match (stage, type_) {
        (Some(stage), _) => stage,
        (None, "charge.dispute.created") => DisputeStage::Opened,
        (None, _) => {
            return Err(format!(
                "the dispute object's status {:?} is not one this release knows",
                dispute.status
            ));
        }
    };
    Ok(dispute.payment_intent.map(|pi| Fact::Dispute {
        payment_intent: pi.id(),
        stage,
    }))
}

/// Our facts about a session: `None` for sessions this service did not create.
fn session(object: serde_json::Value) -> Result<Option<SessionFacts>, String> {
    let session: SessionObject = object_of(object, "checkout session")?;
    let named = session.client_reference_id.clone().or_else(|| {
        session
            .metadata
            .as_ref()?
            .get("purchase_id")?
            .as_str()
            .map(str::to_owned)
    });
    let Some(purchase) = named.and_then(|id| id.parse::<PurchaseId>().ok()) else {
        return Ok(None);
    };
    let payment = match session.payment_status.as_deref() {
        Some("paid") => SessionPayment::Paid,
        Some("no_payment_required") => SessionPayment::NoPaymentRequired,
        _ => SessionPayment::Unpaid,
    };
    let charge = match (
        session.mode.as_deref(),
        &session.currency,
        session.amount_total,
    ) {
        (Some("payment"), Some(currency), Some(amount)) => Currency::parse(currency)
            .ok()
            .map(|currency| Money { amount, currency }),
        _ => None,
    };
    let payer_email = session
        .customer_details
        .and_then(|d| d.email)
        .and_then(|e| Email::parse(&e).ok());
    Ok(Some(SessionFacts {
        purchase,
        session_id: session.id,
        payment_intent: session.payment_intent.map(Expandable::id),
        payment,
        charge,
        payer_email,
    }))
}

/// The Stripe event types the service acts on: the ones the backfill lists.
pub const HANDLED_TYPES: [&str; 10] = [
    "checkout.session.completed",
    "checkout.session.async_payment_succeeded",
    "checkout.session.async_payment_failed",
    "checkout.session.expired",
    "charge.refunded",
    "charge.dispute.created",
    "charge.dispute.updated",
    "charge.dispute.closed",
    "charge.succeeded",
    "account.updated",
];

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests fail by panicking")]

    use super::*;

    fn completed(object: &serde_json::Value) -> String {
        serde_json::json!({
            "id": "evt_1", "type": "checkout.session.completed", "livemode": false,
            "api_version": "2019-01-01", "a_field_from_the_future": {"x": 1},
            "data": { "object": object },
        })
        .to_string()
    }

    #[test]
    fn a_session_event_is_read_whatever_else_it_carries_or_lacks() {
        let purchase = uuid::Uuid::new_v4();
        let payload = completed(&serde_json::json!({
            "id": "cs_1", "client_reference_id": purchase.to_string(),
            "payment_status": "paid", "payment_intent": {"id": "pi_1", "new": true},
            "mode": "payment", "currency": "usd", "amount_total": 1900, "unknown": [1, 2],
        }));
        let Read::Event {
            fact: Some(Fact::CheckoutCompleted(facts)),
            ..
        } = read(&payload)
        else {
            panic!("{:?}", read(&payload));
        };
        assert_eq!(facts.purchase, PurchaseId(purchase));
        assert_eq!(facts.payment_intent.as_deref(), Some("pi_1"));
        assert_eq!(facts.payment, SessionPayment::Paid);
        assert_eq!(facts.charge.unwrap().amount, 1900);
    }

    #[test]
    fn a_handled_event_whose_object_is_reshaped_is_unreadable_and_a_non_event_is_not_an_event() {
        let reshaped = completed(&serde_json::json!({ "id": 5 }));
        assert!(matches!(read(&reshaped), Read::Unreadable { ref id, .. } if id == "evt_1"));
        for body in ["", "{not json", "{}", r#"{"id":"evt_1","type":"x"}"#] {
            assert!(matches!(read(body), Read::NotAnEvent), "{body}");
        }
    }

    #[test]
    fn a_dispute_event_is_read_at_the_stage_its_status_says() {
        let event = |type_: &str, status: Option<&str>| {
            let mut object = serde_json::json!({ "id": "dp_1", "payment_intent": "pi_1" });
            if let Some(status) = status {
                object["status"] = status.into();
            }
            serde_json::json!({ "id": "evt_1", "type": type_, "data": { "object": object } })
                .to_string()
        };
        let stage = |payload: String| match read(&payload) {
            Read::Event {
                fact: Some(Fact::Dispute { stage, .. }),
                ..
            } => Some(stage),
            _ => None,
        };
        let created = "charge.dispute.created";
        let closed = "charge.dispute.closed";
        let updated = "charge.dispute.updated";
        assert_eq!(
            stage(event(created, Some("warning_needs_response"))),
            Some(DisputeStage::Inquiry)
        );
        assert_eq!(
            stage(event(created, Some("needs_response"))),
            Some(DisputeStage::Opened)
        );
        assert_eq!(
            stage(event(updated, Some("under_review"))),
            Some(DisputeStage::Opened)
        );
        assert_eq!(stage(event(closed, Some("won"))), Some(DisputeStage::Won));
        assert_eq!(stage(event(closed, Some("lost"))), Some(DisputeStage::Lost));
        assert_eq!(
            stage(event(closed, Some("warning_closed"))),
            Some(DisputeStage::InquiryClosed)
        );
        // An unknown status: a creation suspends access; a close is kept to be replayed.
        assert_eq!(
            stage(event(created, Some("from_the_future"))),
            Some(DisputeStage::Opened)
        );
        assert_eq!(stage(event(created, None)), Some(DisputeStage::Opened));
        assert!(matches!(
            read(&event(closed, Some("from_the_future"))),
            Read::Unreadable { .. }
        ));
    }
}
