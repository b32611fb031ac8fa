//! Giving a destination charge's money back, the two ways Stripe offers:
//!
//! - with the refund: `POST /v1/refunds` with `reverse_transfer=true` reverses the transfer, and
//!   with `refund_application_fee=true` refunds the fee, each in proportion to the refund, as
//!   Stripe documents it: a refund of the whole charge takes all of it, a partial one its share
//!   (rounded half up, never more than is left). The transfer is the whole charge, so its share
//!   is exactly the refund. Without the flags nothing is reversed: the platform bears the refund,
//!   Stripe's default for destination charges. On a charge without a destination the flags
//!   change nothing;
//! - after the fact, for a refund made elsewhere (the Dashboard): `POST
//!   /v1/transfers/{id}/reversals` and `POST /v1/application_fees/{id}/refunds`, each for an
//!   `amount` or, by default, what is left; asking for more than is left is refused. A reversal
//!   with `refund_application_fee=true` refunds the fee in proportion to the transfer, likewise.
//!
//! Events: `transfer.reversed` (the transfer as it now stands) and `application_fee.refunded`
//! (the fee), after the refund's `charge.refunded` when a refund caused them.

use std::collections::BTreeMap;

use serde_json::Value;

use super::objects;
use super::store::{FeeRefund, TransferReversal};
use crate::stripe::error::{ApiError, SimError};
use crate::stripe::form::{self, Params};
use crate::stripe::state::{Origin, SimState};

/// What a refund or a reversal undid, for the events that follow.
#[derive(Debug, Default)]
pub(crate) struct Undone {
    /// The transfer that was reversed.
    transfer: Option<String>,
    /// The application fee that was refunded.
    fee: Option<String>,
}

/// `part / whole` of `total`, rounded half up.
fn share(total: i64, part: i64, whole: i64) -> i64 {
    if whole <= 0 {
        return 0;
    }
    let (total, part, whole) = (i128::from(total), i128::from(part), i128::from(whole));
    i64::try_from((2 * total * part + whole) / (2 * whole)).unwrap_or(i64::MAX)
}

impl SimState {
    /// Reverses the transfer and refunds the fee of the refund's charge, as its flags ask, and
    /// names them on the refund.
    pub(crate) fn undo_destination(
        &mut self,
        refund_id: &str,
        reverse_transfer: bool,
        refund_application_fee: bool,
    ) -> Undone {
        let mut undone = Undone::default();
        let Some(refund) = self.store.refunds.get(refund_id) else {
            return undone;
        };
        let Some(charge) = self.store.charges.get(&refund.charge) else {
            return undone;
        };
        let (refunded, charge_amount) = (refund.amount, charge.amount);
        let (transfer, fee) = (charge.transfer.clone(), charge.application_fee.clone());
        let connect = &self.store.connect;
        let reversal = transfer
            .filter(|_| reverse_transfer)
            .and_then(|id| connect.transfers.get(&id))
            .map(|t| {
                (
                    t.id.clone(),
                    portion(t.amount, t.remaining(), refunded, charge_amount),
                )
            });
        let fee_refund = fee
            .filter(|_| refund_application_fee)
            .and_then(|id| connect.fees.get(&id))
            .map(|f| {
                (
                    f.id.clone(),
                    portion(f.amount, f.remaining(), refunded, charge_amount),
                )
            });
        if let Some((transfer, amount)) = reversal.filter(|(_, amount)| *amount > 0)
            && let Ok(id) =
                self.record_reversal(&transfer, Some(amount), Some(refund_id), BTreeMap::new())
        {
            if let Some(refund) = self.store.refunds.get_mut(refund_id) {
                refund.transfer_reversal = Some(id);
            }
            undone.transfer = Some(transfer);
        }
        if let Some((fee, amount)) = fee_refund.filter(|(_, amount)| *amount > 0)
            && let Ok(id) = self.record_fee_refund(&fee, Some(amount), BTreeMap::new())
        {
            if let Some(refund) = self.store.refunds.get_mut(refund_id) {
                refund.fee_refund = Some(id);
            }
            undone.fee = Some(fee);
        }
        undone
    }

    /// `transfer.reversed` and `application_fee.refunded` for what was undone.
    pub(crate) fn emit_undone(&mut self, undone: &Undone, origin: &Origin) {
        if let Some(transfer) = &undone.transfer {
            self.emit_transfer_event("transfer.reversed", transfer, origin);
        }
        if let Some(fee) = &undone.fee {
            self.emit_fee_event("application_fee.refunded", fee, origin);
        }
    }

    /// Reverses `amount` (by default what is left) of a transfer, then, with
    /// `refund_application_fee`, refunds its charge's fee in proportion; emits the events.
    /// Returns the reversal's id.
    pub(crate) fn reverse_transfer(
        &mut self,
        transfer_id: &str,
        amount: Option<i64>,
        refund_application_fee: bool,
        metadata: BTreeMap<String, String>,
        origin: &Origin,
    ) -> Result<String, SimError> {
        let id = self.record_reversal(transfer_id, amount, None, metadata)?;
        let mut undone = Undone {
            transfer: Some(transfer_id.to_owned()),
            fee: None,
        };
        let fee = self
            .store
            .connect
            .transfers
            .get(transfer_id)
            .and_then(|transfer| self.store.charges.get(&transfer.source_transaction))
            .and_then(|charge| charge.application_fee.clone())
            .filter(|_| refund_application_fee);
        if let Some(fee) = fee {
            let connect = &self.store.connect;
            let (Some(transfer), Some(found), Some(reversal)) = (
                connect.transfers.get(transfer_id),
                connect.fees.get(&fee),
                connect.reversals.get(&id),
            ) else {
                return Ok(id);
            };
            let amount = portion(
                found.amount,
                found.remaining(),
                reversal.amount,
                transfer.amount,
            );
            if amount > 0
                && self
                    .record_fee_refund(&fee, Some(amount), BTreeMap::new())
                    .is_ok()
            {
                undone.fee = Some(fee);
            }
        }
        self.emit_undone(&undone, origin);
        Ok(id)
    }

    /// Refunds `amount` (by default what is left) of an application fee and emits
    /// `application_fee.refunded`. Returns the fee refund's id.
    pub(crate) fn refund_fee(
        &mut self,
        fee_id: &str,
        amount: Option<i64>,
        metadata: BTreeMap<String, String>,
        origin: &Origin,
    ) -> Result<String, SimError> {
        let id = self.record_fee_refund(fee_id, amount, metadata)?;
        let undone = Undone {
            transfer: None,
            fee: Some(fee_id.to_owned()),
        };
        self.emit_undone(&undone, origin);
        Ok(id)
    }

    fn record_reversal(
        &mut self,
        transfer_id: &str,
        amount: Option<i64>,
        source_refund: Option<&str>,
        metadata: BTreeMap<String, String>,
    ) -> Result<String, SimError> {
        let id = self.new_id("trr_1", 24);
        let destination_payment_refund = self.new_id("pyr_1", 24);
        let balance_transaction = self.new_id("txn_1", 24);
        let connect = &mut self.store.connect;
        let transfer = connect
            .transfers
            .get_mut(transfer_id)
            .ok_or_else(|| SimError::UnknownTransfer(transfer_id.to_owned()))?;
        let amount = take(amount, transfer.remaining(), |requested, available| {
            SimError::ReversalTooLarge {
                requested,
                available,
            }
        })
        .map_err(|error| {
            error.unwrap_or_else(|| SimError::AlreadyReversed(transfer_id.to_owned()))
        })?;
        transfer.amount_reversed += amount;
        transfer.reversals.push(id.clone());
        let reversal = TransferReversal {
            id: id.clone(),
            transfer: transfer_id.to_owned(),
            amount,
            currency: transfer.currency.clone(),
            created: Self::now(),
            source_refund: source_refund.map(str::to_owned),
            destination_payment_refund,
            balance_transaction,
            metadata,
        };
        connect.reversals.insert(id.clone(), reversal);
        Ok(id)
    }

    fn record_fee_refund(
        &mut self,
        fee_id: &str,
        amount: Option<i64>,
        metadata: BTreeMap<String, String>,
    ) -> Result<String, SimError> {
        let id = self.new_id("fr_1", 24);
        let balance_transaction = self.new_id("txn_1", 24);
        let connect = &mut self.store.connect;
        let fee = connect
            .fees
            .get_mut(fee_id)
            .ok_or_else(|| SimError::UnknownApplicationFee(fee_id.to_owned()))?;
        let amount = take(amount, fee.remaining(), |requested, available| {
            SimError::FeeRefundTooLarge {
                requested,
                available,
            }
        })
        .map_err(|error| {
            error.unwrap_or_else(|| SimError::FeeAlreadyRefunded(fee_id.to_owned()))
        })?;
        fee.amount_refunded += amount;
        fee.refunds.push(id.clone());
        let refund = FeeRefund {
            id: id.clone(),
            fee: fee_id.to_owned(),
            amount,
            currency: fee.currency.clone(),
            created: Self::now(),
            balance_transaction,
            metadata,
        };
        connect.fee_refunds.insert(id.clone(), refund);
        Ok(id)
    }
}

/// What goes back of `total` (of which `remaining` is left) when `part` of `whole` is given
/// back: all that is left for the whole, otherwise its share, never more than is left.
fn portion(total: i64, remaining: i64, part: i64, whole: i64) -> i64 {
    if part >= whole {
        remaining
    } else {
        share(total, part, whole).min(remaining)
    }
}

/// `requested` (by default all of `available`), checked against `available`. `Err(None)` when
/// nothing is left at all.
fn take(
    requested: Option<i64>,
    available: i64,
    too_large: impl FnOnce(i64, i64) -> SimError,
) -> Result<i64, Option<SimError>> {
    if available <= 0 {
        return Err(None);
    }
    match requested.unwrap_or(available) {
        amount if amount <= 0 => Err(Some(SimError::InvalidAmount(amount))),
        amount if amount > available => Err(Some(too_large(amount, available))),
        amount => Ok(amount),
    }
}

/// `POST /v1/transfers/{id}/reversals`: `amount`?, `refund_application_fee`?, `metadata`.
pub(crate) fn create_reversal(
    state: &mut SimState,
    transfer: &str,
    params: &Params,
    origin: &Origin,
) -> Result<Value, ApiError> {
    let root = &params.root;
    let amount = form::integer(root, "amount", "amount")?;
    let refund_fee = form::boolean(root, "refund_application_fee", "refund_application_fee")?;
    let metadata = form::metadata(root, "metadata", "metadata")?;
    let id = state.reverse_transfer(
        transfer,
        amount,
        refund_fee.unwrap_or(false),
        metadata,
        origin,
    )?;
    state
        .store
        .connect
        .reversals
        .get(&id)
        .map(objects::transfer_reversal)
        .ok_or_else(|| ApiError::no_such("transfer_reversal", &id))
}

/// `POST /v1/application_fees/{id}/refunds`: `amount`?, `metadata`.
pub(crate) fn create_fee_refund(
    state: &mut SimState,
    fee: &str,
    params: &Params,
    origin: &Origin,
) -> Result<Value, ApiError> {
    let root = &params.root;
    let amount = form::integer(root, "amount", "amount")?;
    let metadata = form::metadata(root, "metadata", "metadata")?;
    let id = state.refund_fee(fee, amount, metadata, origin)?;
    state
        .store
        .connect
        .fee_refunds
        .get(&id)
        .map(objects::fee_refund)
        .ok_or_else(|| ApiError::no_such("fee_refund", &id))
}

/// `GET /v1/transfers/{id}`.
pub(crate) fn retrieve_transfer(state: &SimState, id: &str) -> Result<Value, ApiError> {
    state
        .transfer_object(id)
        .ok_or_else(|| ApiError::no_such("transfer", id))
}

/// `GET /v1/application_fees/{id}`.
pub(crate) fn retrieve_fee(state: &SimState, id: &str) -> Result<Value, ApiError> {
    state
        .fee_object(id)
        .ok_or_else(|| ApiError::no_such("application_fee", id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_share_is_rounded_half_up() {
        assert_eq!(share(1200, 600, 1200), 600);
        assert_eq!(share(100, 1, 3), 33);
        assert_eq!(share(100, 1, 200), 1, "0.5 rounds up");
        assert_eq!(share(100, 1, 201), 0);
        assert_eq!(share(100, 5, 0), 0);
    }

    #[test]
    fn giving_back_the_whole_takes_all_that_is_left_and_a_part_its_share() {
        assert_eq!(portion(180, 180, 1200, 1200), 180);
        assert_eq!(portion(180, 120, 1200, 1200), 120);
        assert_eq!(portion(180, 180, 400, 1200), 60);
        assert_eq!(portion(100, 20, 2, 3), 20, "never more than is left");
    }
}
