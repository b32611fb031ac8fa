//! What happens to money: paying a session (at once by card, or later by bank debit), settling a
//! delayed payment, expiring and refunding (disputes are in `disputes`; a destination charge's
//! transfer, fee and reversals in `connect`). Each rule changes the store and emits the events
//! Stripe would send. The `/v1` API, the hosted page, the control API and the Rust handle all
//! come through here, so they agree.
//!
//! A charge that succeeds sends `charge.succeeded` after the session's own event (and, for a
//! destination charge, `transfer.created` and `application_fee.created` after that); a refund
//! sends `charge.refunded`, then `transfer.reversed` and `application_fee.refunded` when it
//! reversed the transfer or refunded the fee.

use std::collections::BTreeMap;

use super::error::SimError;
use super::model::{PaymentStatus, SessionStatus, SimRefund};
use super::objects;
use super::state::{Origin, SimState};
use super::store::{Charge, ChargeStatus, IntentStatus, PaymentIntent, Refund, Session};

/// The email a buyer "types" when the session did not prefill one.
const DEFAULT_BUYER_EMAIL: &str = "buyer@example.com";

/// A refund request, as `POST /v1/refunds` or a control states it.
#[derive(Debug, Clone, Default)]
pub(crate) struct RefundRequest {
    pub(crate) payment_intent: String,
    /// `None` refunds what is left.
    pub(crate) amount: Option<i64>,
    pub(crate) reason: Option<String>,
    pub(crate) metadata: BTreeMap<String, String>,
    /// On a destination charge: reverse the transfer in proportion (Stripe's default: no).
    pub(crate) reverse_transfer: bool,
    /// On a destination charge: refund the application fee in proportion (default: no).
    pub(crate) refund_application_fee: bool,
}

impl SimState {
    fn emit_session_event(&mut self, type_: &str, id: &str, origin: &Origin) {
        let object = self
            .store
            .sessions
            .get(id)
            .map(|session| objects::session(session, self.livemode, &self.public_base, false));
        if let Some(object) = object {
            self.emit(type_, &object, origin);
        }
    }

    /// The session, if it can still be paid. A session past its `expires_at` that the sweeper
    /// has not reached yet is expired here first, so nobody pays an expired session.
    fn open_session(&mut self, id: &str) -> Result<&mut Session, SimError> {
        let overdue = {
            let session = self
                .store
                .sessions
                .get(id)
                .ok_or_else(|| SimError::UnknownSession(id.to_owned()))?;
            session.status == SessionStatus::Open && session.expires_at <= Self::now()
        };
        if overdue {
            self.expire(id, &Origin::default())?;
        }
        let session = self
            .store
            .sessions
            .get_mut(id)
            .ok_or_else(|| SimError::UnknownSession(id.to_owned()))?;
        match session.status {
            SessionStatus::Open => Ok(session),
            status => Err(SimError::SessionNotOpen {
                id: id.to_owned(),
                status,
            }),
        }
    }

    /// Completes an open session with a card payment (`delayed: false`: paid at once) or a bank
    /// debit (`delayed: true`: complete but unpaid until [`SimState::settle`]).
    pub(crate) fn pay(
        &mut self,
        id: &str,
        email: Option<String>,
        delayed: bool,
        origin: &Origin,
    ) -> Result<(), SimError> {
        let suffix = self.new_id("", 24);
        let now = Self::now();
        // Stripe refuses to confirm a payment whose destination cannot receive transfers; the
        // session stays open.
        let destination = self.open_session(id)?.destination.clone();
        self.check_destination(destination.as_ref())?;
        let session = self.open_session(id)?;
        let intent_id = format!("pi_3{suffix}");
        let charge_id = format!("ch_3{suffix}");
        let email = email
            .filter(|email| !email.trim().is_empty())
            .or_else(|| session.customer_email.clone())
            .unwrap_or_else(|| DEFAULT_BUYER_EMAIL.to_owned());
        session.status = SessionStatus::Complete;
        session.payment_status = if delayed {
            PaymentStatus::Unpaid
        } else {
            PaymentStatus::Paid
        };
        session.payment_intent = Some(intent_id.clone());
        session.paid_by = Some(email.clone());
        let charge = Charge {
            id: charge_id.clone(),
            payment_intent: intent_id.clone(),
            amount: session.amount_total(),
            amount_refunded: 0,
            currency: session.currency.clone(),
            status: if delayed {
                ChargeStatus::Pending
            } else {
                ChargeStatus::Succeeded
            },
            created: now,
            // Stripe copies the PaymentIntent's metadata onto the charge it creates.
            metadata: session.payment_intent_metadata.clone(),
            email: Some(email),
            refunds: Vec::new(),
            dispute: None,
            destination,
            transfer: None,
            application_fee: None,
        };
        let intent = PaymentIntent {
            status: if delayed {
                IntentStatus::Processing
            } else {
                IntentStatus::Succeeded
            },
            charge: charge_id.clone(),
        };
        self.store.add_charge(charge);
        self.store.payment_intents.insert(intent_id, intent);
        if !delayed {
            self.pay_destination(&charge_id);
        }
        self.emit_session_event("checkout.session.completed", id, origin);
        if !delayed {
            self.emit_charge_succeeded(&charge_id, origin);
        }
        Ok(())
    }

    /// Settles a delayed payment: `checkout.session.async_payment_succeeded` or `_failed`.
    pub(crate) fn settle(&mut self, id: &str, succeeded: bool) -> Result<(), SimError> {
        let not_waiting = || SimError::NotAwaitingSettlement(id.to_owned());
        let session = self
            .store
            .sessions
            .get_mut(id)
            .ok_or_else(|| SimError::UnknownSession(id.to_owned()))?;
        let intent_id = session.payment_intent.clone().ok_or_else(not_waiting)?;
        let intent = self
            .store
            .payment_intents
            .get_mut(&intent_id)
            .filter(|intent| intent.status == IntentStatus::Processing)
            .ok_or_else(not_waiting)?;
        let charge = self
            .store
            .charges
            .get_mut(&intent.charge)
            .ok_or_else(not_waiting)?;
        let charge_id = charge.id.clone();
        if succeeded {
            intent.status = IntentStatus::Succeeded;
            charge.status = ChargeStatus::Succeeded;
            session.payment_status = PaymentStatus::Paid;
            // A bank debit's money reaches the seller once it has arrived.
            self.pay_destination(&charge_id);
        } else {
            // The session stays complete and unpaid; the PaymentIntent wants another method.
            intent.status = IntentStatus::RequiresPaymentMethod;
            charge.status = ChargeStatus::Failed;
        }
        let type_ = if succeeded {
            "checkout.session.async_payment_succeeded"
        } else {
            "checkout.session.async_payment_failed"
        };
        self.emit_session_event(type_, id, &Origin::default());
        if succeeded {
            self.emit_charge_succeeded(&charge_id, &Origin::default());
        }
        Ok(())
    }

    pub(crate) fn expire(&mut self, id: &str, origin: &Origin) -> Result<(), SimError> {
        let session = self
            .store
            .sessions
            .get_mut(id)
            .ok_or_else(|| SimError::UnknownSession(id.to_owned()))?;
        if session.status != SessionStatus::Open {
            return Err(SimError::SessionNotOpen {
                id: id.to_owned(),
                status: session.status,
            });
        }
        session.status = SessionStatus::Expired;
        self.emit_session_event("checkout.session.expired", id, origin);
        Ok(())
    }

    /// Expires every open session whose `expires_at` has passed.
    pub(crate) fn expire_overdue(&mut self) {
        let now = Self::now();
        let overdue: Vec<String> = self
            .store
            .session_order
            .iter()
            .filter(|id| {
                self.store.sessions.get(*id).is_some_and(|session| {
                    session.status == SessionStatus::Open && session.expires_at <= now
                })
            })
            .cloned()
            .collect();
        for id in overdue {
            // Cannot fail: each is open and known.
            let _ = self.expire(&id, &Origin::default());
        }
    }

    /// Refunds part or all of a PaymentIntent's charge and emits `charge.refunded` (then, on a
    /// destination charge and when asked, reverses the transfer and refunds the fee in
    /// proportion); returns the refund's id.
    pub(crate) fn refund(
        &mut self,
        request: RefundRequest,
        origin: &Origin,
    ) -> Result<String, SimError> {
        let refund_id = self.new_id("re_3", 24);
        let now = Self::now();
        let pi = &request.payment_intent;
        let intent = self
            .store
            .payment_intents
            .get(pi)
            .ok_or_else(|| SimError::UnknownPaymentIntent(pi.clone()))?;
        let charge = self
            .store
            .charges
            .get_mut(&intent.charge)
            .ok_or_else(|| SimError::NotPaid(pi.clone()))?;
        if charge.status != ChargeStatus::Succeeded {
            return Err(SimError::NotPaid(pi.clone()));
        }
        // An inquiry, or a chargeback that was won, leaves the charge refundable (the dispute's
        // `is_charge_refundable`); an open or lost chargeback does not.
        let refundable = charge.dispute.as_ref().is_none_or(|id| {
            self.store
                .disputes
                .get(id)
                .is_some_and(|dispute| dispute.status.is_charge_refundable())
        });
        if !refundable {
            return Err(SimError::Disputed(charge.id.clone()));
        }
        let available = charge.amount - charge.amount_refunded;
        if available <= 0 {
            return Err(SimError::AlreadyRefunded(charge.id.clone()));
        }
        let amount = request.amount.unwrap_or(available);
        if amount <= 0 {
            return Err(SimError::InvalidAmount(amount));
        }
        if amount > available {
            return Err(SimError::RefundTooLarge {
                requested: amount,
                available,
            });
        }
        charge.amount_refunded += amount;
        charge.refunds.push(refund_id.clone());
        let refund = Refund {
            id: refund_id.clone(),
            charge: charge.id.clone(),
            payment_intent: pi.clone(),
            amount,
            currency: charge.currency.clone(),
            created: now,
            reason: request.reason,
            metadata: request.metadata,
            transfer_reversal: None,
            fee_refund: None,
        };
        let charge_id = charge.id.clone();
        self.store.refunds.insert(refund_id.clone(), refund);
        let undone = self.undo_destination(
            &refund_id,
            request.reverse_transfer,
            request.refund_application_fee,
        );
        self.emit_charge_event("charge.refunded", &charge_id, origin);
        self.emit_undone(&undone, origin);
        Ok(refund_id)
    }

    pub(crate) fn emit_charge_event(&mut self, type_: &str, charge_id: &str, origin: &Origin) {
        let object = self
            .store
            .charges
            .get(charge_id)
            .map(|charge| objects::charge(&self.store, charge, self.livemode));
        if let Some(object) = object {
            self.emit(type_, &object, origin);
        }
    }

    pub(crate) fn refund_view(&self, id: &str) -> Option<SimRefund> {
        let refund = self.store.refunds.get(id)?;
        let charge = self.store.charges.get(&refund.charge)?;
        Some(SimRefund {
            id: refund.id.clone(),
            payment_intent: refund.payment_intent.clone(),
            charge: refund.charge.clone(),
            amount: refund.amount,
            currency: refund.currency.clone(),
            reason: refund.reason.clone(),
            charge_amount_refunded: charge.amount_refunded,
            charge_refunded: charge.refunded(),
            transfer_reversal: refund.transfer_reversal.clone(),
            fee_refund: refund.fee_refund.clone(),
        })
    }
}
