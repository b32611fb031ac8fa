//! Destination charges, as Stripe makes them when a Checkout Session says
//! `payment_intent_data[transfer_data][destination]` (and maybe `[application_fee_amount]`):
//!
//! 1. at session creation the destination is checked: it must exist and its `transfers`
//!    capability be active; the fee must lie between 0 and the session's total;
//! 2. at payment it is checked again (an account disabled since is refused, the session stays
//!    open), and the charge records its `transfer_data`, `transfer_group` and fee amount;
//! 3. once the charge has succeeded (at once by card, at settlement by bank debit) the *whole*
//!    amount is transferred to the connected account (a `transfer` with a `destination_payment`
//!    there), and the application fee is then collected back from it (an `application_fee`).
//!    The seller nets the transfer less the fee; the platform keeps the fee.
//!
//! Events, after the session's own: `charge.succeeded` (sent for every successful charge,
//! Connect or not), then `transfer.created` and `application_fee.created`.

use serde_json::Value;

use super::objects;
use super::store::{ApplicationFee, DestinationCharge, Transfer};
use crate::stripe::error::{ApiError, SimError};
use crate::stripe::form::{self, Hash};
use crate::stripe::state::{Origin, SimState};

const DESTINATION: &str = "payment_intent_data[transfer_data][destination]";
const FEE: &str = "payment_intent_data[application_fee_amount]";

/// Reads and checks a session's destination charge from its `payment_intent_data` hash; `amount`
/// is the session's total.
pub(crate) fn destination_charge(
    state: &SimState,
    intent_data: Option<&Hash>,
    amount: i64,
) -> Result<Option<DestinationCharge>, ApiError> {
    let Some(data) = intent_data else {
        return Ok(None);
    };
    let fee = form::integer(data, "application_fee_amount", FEE)?;
    let transfer_data = form::hash(data, "transfer_data", "payment_intent_data[transfer_data]")?;
    let destination = match transfer_data {
        Some(transfer_data) => {
            if transfer_data.contains_key("amount") {
                return Err(ApiError::invalid(
                    "payment_intent_data[transfer_data][amount]",
                    "The Stripe simulator transfers the whole amount of a destination charge; \
                     use `application_fee_amount` instead of `transfer_data[amount]`.",
                ));
            }
            Some(form::required_text(
                transfer_data,
                "destination",
                DESTINATION,
            )?)
        }
        None => None,
    };
    if let Some(fee) = fee {
        if fee < 0 {
            return Err(ApiError::invalid(
                FEE,
                "This value must be greater than or equal to 0.",
            ));
        }
        if destination.is_none() {
            return Err(ApiError::invalid(
                FEE,
                "Can only apply an application_fee_amount when the PaymentIntent is attempting \
                 a direct payment (using an OAuth key or Stripe-Account header) or destination \
                 payment (using `transfer_data[destination]`).",
            ));
        }
        if fee > amount {
            return Err(ApiError::invalid(
                FEE,
                format!(
                    "The application fee ({fee}) cannot be greater than the amount of the \
                     payment ({amount})."
                ),
            ));
        }
    }
    let Some(account) = destination else {
        return Ok(None);
    };
    let Some(found) = state.store.connect.accounts.get(account) else {
        return Err(ApiError::no_such_param(DESTINATION, "destination", account));
    };
    if !found.transfers_active() {
        return Err(inactive_destination());
    }
    Ok(Some(DestinationCharge {
        account: account.to_owned(),
        application_fee_amount: fee,
    }))
}

/// Stripe's refusal of a destination whose `transfers` capability is not active.
fn inactive_destination() -> ApiError {
    ApiError::invalid(
        DESTINATION,
        "Your destination account needs to have at least one of the following capabilities \
         enabled: transfers, crypto_transfers, legacy_payments",
    )
    .with_code("insufficient_capabilities_for_transfer")
}

impl SimState {
    /// Whether a payment to `destination` may go ahead now.
    pub(crate) fn check_destination(
        &self,
        destination: Option<&DestinationCharge>,
    ) -> Result<(), SimError> {
        let Some(destination) = destination else {
            return Ok(());
        };
        let active = self
            .store
            .connect
            .accounts
            .get(&destination.account)
            .is_some_and(super::store::Account::transfers_active);
        if active {
            Ok(())
        } else {
            Err(SimError::DestinationInactive(destination.account.clone()))
        }
    }

    /// Moves a succeeded destination charge's money: the whole amount to the connected account,
    /// then the application fee back from it. Nothing for other charges, or twice.
    pub(crate) fn pay_destination(&mut self, charge_id: &str) {
        let Some(charge) = self.store.charges.get(charge_id) else {
            return;
        };
        let Some(destination) = charge.destination.clone() else {
            return;
        };
        if charge.transfer.is_some() {
            return;
        }
        let (amount, currency, intent) = (
            charge.amount,
            charge.currency.clone(),
            charge.payment_intent.clone(),
        );
        let now = Self::now();
        let transfer_id = self.new_id("tr_1", 24);
        let destination_payment = self.new_id("py_1", 24);
        let transfer = Transfer {
            id: transfer_id.clone(),
            amount,
            amount_reversed: 0,
            currency: currency.clone(),
            created: now,
            destination: destination.account.clone(),
            destination_payment: destination_payment.clone(),
            source_transaction: charge_id.to_owned(),
            group: format!("group_{intent}"),
            balance_transaction: self.new_id("txn_1", 24),
            reversals: Vec::new(),
        };
        let fee = destination
            .application_fee_amount
            .map(|fee| ApplicationFee {
                id: self.new_id("fee_1", 24),
                account: destination.account.clone(),
                amount: fee,
                amount_refunded: 0,
                currency,
                created: now,
                charge: destination_payment,
                originating_transaction: charge_id.to_owned(),
                balance_transaction: self.new_id("txn_1", 24),
                refunds: Vec::new(),
            });
        let fee_id = fee.as_ref().map(|fee| fee.id.clone());
        let connect = &mut self.store.connect;
        connect.transfers.insert(transfer_id.clone(), transfer);
        if let Some(fee) = fee {
            connect.fees.insert(fee.id.clone(), fee);
        }
        if let Some(charge) = self.store.charges.get_mut(charge_id) {
            charge.transfer = Some(transfer_id);
            charge.application_fee = fee_id;
        }
    }

    /// `charge.succeeded`, then the destination charge's `transfer.created` and
    /// `application_fee.created`.
    pub(crate) fn emit_charge_succeeded(&mut self, charge_id: &str, origin: &Origin) {
        self.emit_charge_event("charge.succeeded", charge_id, origin);
        let Some(charge) = self.store.charges.get(charge_id) else {
            return;
        };
        let (transfer, fee) = (charge.transfer.clone(), charge.application_fee.clone());
        if let Some(transfer) = transfer {
            self.emit_transfer_event("transfer.created", &transfer, origin);
        }
        if let Some(fee) = fee {
            self.emit_fee_event("application_fee.created", &fee, origin);
        }
    }

    pub(crate) fn transfer_object(&self, id: &str) -> Option<Value> {
        let connect = &self.store.connect;
        let transfer = connect.transfers.get(id)?;
        Some(objects::transfer(connect, transfer, self.livemode))
    }

    pub(crate) fn fee_object(&self, id: &str) -> Option<Value> {
        let connect = &self.store.connect;
        let fee = connect.fees.get(id)?;
        Some(objects::application_fee(connect, fee, self.livemode))
    }

    pub(crate) fn emit_transfer_event(&mut self, type_: &str, id: &str, origin: &Origin) {
        if let Some(object) = self.transfer_object(id) {
            self.emit(type_, &object, origin);
        }
    }

    pub(crate) fn emit_fee_event(&mut self, type_: &str, id: &str, origin: &Origin) {
        if let Some(object) = self.fee_object(id) {
            self.emit(type_, &object, origin);
        }
    }
}
