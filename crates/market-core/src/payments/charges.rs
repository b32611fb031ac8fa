//! A charge's money movements (`charge.succeeded`): for a seller's purchase, a destination charge,
//! the transfer that moved the payment to the seller's connected account and the application fee
//! that brought the platform's share back.
//!
//! The event names the PaymentIntent and may come before or after the Checkout Session's, so, like a
//! refund, it is kept on `stripe_payment` whether or not the payment is linked to a purchase yet: the
//! purchase reads it through its `payment_intent_id`. Recording it again (a redelivery, the
//! backfill) writes the same values.

use sqlx::PgConnection;

use super::locked::{Effect, Outcome};
use crate::{PurchaseId, Result};

/// What `charge.succeeded` says, as far as the platform keeps it.
#[derive(Clone, Debug)]
pub struct ChargeFacts {
    pub payment_intent: String,
    pub charge: String,
    /// The transfer to the seller (`tr_…`); `None` for the house's payments.
    pub transfer: Option<String>,
    /// The platform's application fee (`fee_…`); `None` without one.
    pub application_fee: Option<String>,
}

pub(super) async fn record_charge(conn: &mut PgConnection, facts: &ChargeFacts) -> Result<Outcome> {
    let purchase = sqlx::query_scalar::<_, Option<PurchaseId>>(
        "insert into stripe_payment (payment_intent_id, charge_id, transfer_id, application_fee_id)
         values ($1, $2, $3, $4)
         on conflict (payment_intent_id) do update
             set charge_id = excluded.charge_id,
                 transfer_id = coalesce(excluded.transfer_id, stripe_payment.transfer_id),
                 application_fee_id = coalesce(excluded.application_fee_id, stripe_payment.application_fee_id)
         returning purchase_id",
    )
    .bind(&facts.payment_intent)
    .bind(&facts.charge)
    .bind(&facts.transfer)
    .bind(&facts.application_fee)
    .fetch_one(conn)
    .await?;
    Ok(Outcome {
        purchase,
        status: None,
        effect: Effect::ChargeRecorded,
    })
}
