//! Disputes, as Stripe runs them, so a consumer can be tested on every path a dispute takes:
//!
//! | step | status | events, in order |
//! |---|---|---|
//! | open a chargeback | `needs_response` | `charge.dispute.created`, `charge.dispute.funds_withdrawn` |
//! | open an inquiry | `warning_needs_response` | `charge.dispute.created` |
//! | escalate an inquiry | `needs_response` | `charge.dispute.updated`, `charge.dispute.funds_withdrawn` |
//! | close a chargeback, won | `won` | `charge.dispute.closed`, `charge.dispute.funds_reinstated` |
//! | close a chargeback, lost | `lost` | `charge.dispute.closed` |
//! | close an inquiry (either outcome) | `warning_closed` | `charge.dispute.closed` |
//!
//! An inquiry (a Visa inquiry, a retrieval request) is the issuer asking before it charges back:
//! no money moves and the payment stays refundable (`is_charge_refundable`). Stripe has no
//! winner for an inquiry: it either closes (`warning_closed`, whatever the issuer concluded) or
//! escalates into a chargeback on the same dispute object, so closing one as won or as lost
//! gives `warning_closed` alike.
//!
//! A chargeback withdraws the disputed amount plus the dispute fee (a balance transaction on the
//! dispute); winning reinstates the amount (a second one). A payment fully refunded while it was
//! an inquiry has nothing left to withdraw: escalating it moves no money and sends no
//! `funds_withdrawn`, as Stripe's `is_charge_refundable` promises.
//!
//! Every event carries the whole dispute as it stands after the step (so a step's two events
//! show the same object); `charge.dispute.updated` adds `data.previous_attributes`, the old
//! values of every top-level attribute the step changed, as Stripe does.

use serde_json::Value;

use super::error::SimError;
use super::model::{DisputeOutcome, DisputeStatus, SimDispute};
use super::objects;
use super::state::{Origin, SimState, previous_attributes};
use super::store::{BalanceTransaction, Charge, ChargeStatus, Dispute};

/// Stripe's dispute fee, charged with the withdrawal (here in the dispute's currency).
const DISPUTE_FEE: i64 = 1500;

impl SimState {
    /// Opens a dispute (reason `fraudulent`) on a PaymentIntent's charge: a chargeback, or an
    /// inquiry when `inquiry` is set. Returns the dispute's id.
    pub(crate) fn open_dispute(&mut self, pi: &str, inquiry: bool) -> Result<String, SimError> {
        let dispute_id = self.new_id("dp_1", 24);
        let now = Self::now();
        let intent = self
            .store
            .payment_intents
            .get(pi)
            .ok_or_else(|| SimError::UnknownPaymentIntent(pi.to_owned()))?;
        let charge = self
            .store
            .charges
            .get_mut(&intent.charge)
            .ok_or_else(|| SimError::NotPaid(pi.to_owned()))?;
        if charge.status != ChargeStatus::Succeeded {
            return Err(SimError::NotPaid(pi.to_owned()));
        }
        if charge.dispute.is_some() {
            return Err(SimError::AlreadyDisputed(charge.id.clone()));
        }
        if charge.refunded() {
            return Err(SimError::AlreadyRefunded(charge.id.clone()));
        }
        charge.dispute = Some(dispute_id.clone());
        let dispute = Dispute {
            id: dispute_id.clone(),
            charge: charge.id.clone(),
            payment_intent: pi.to_owned(),
            amount: charge.amount - charge.amount_refunded,
            currency: charge.currency.clone(),
            created: now,
            reason: "fraudulent".to_owned(),
            status: if inquiry {
                DisputeStatus::WarningNeedsResponse
            } else {
                DisputeStatus::NeedsResponse
            },
            balance_transactions: Vec::new(),
        };
        self.store.disputes.insert(dispute_id.clone(), dispute);
        let withdrawn = !inquiry && self.move_funds(&dispute_id, false);
        self.emit_dispute_event("charge.dispute.created", &dispute_id, None);
        if withdrawn {
            self.emit_dispute_event("charge.dispute.funds_withdrawn", &dispute_id, None);
        }
        Ok(dispute_id)
    }

    /// The issuer turns an open inquiry into a chargeback: `needs_response`, the funds are
    /// withdrawn.
    pub(crate) fn escalate_dispute(&mut self, id: &str) -> Result<(), SimError> {
        let before = self.dispute_object(id)?;
        let dispute = self.dispute_mut(id)?;
        match dispute.status {
            DisputeStatus::WarningNeedsResponse => {}
            status if !status.is_open() => return Err(closed(id, status)),
            status => {
                return Err(SimError::DisputeNotInquiry {
                    id: id.to_owned(),
                    status,
                });
            }
        }
        dispute.status = DisputeStatus::NeedsResponse;
        let withdrawn = self.move_funds(id, false);
        self.emit_dispute_event("charge.dispute.updated", id, Some(&before));
        if withdrawn {
            self.emit_dispute_event("charge.dispute.funds_withdrawn", id, None);
        }
        Ok(())
    }

    /// The bank decides: a chargeback is `won` (its funds reinstated) or `lost`; an inquiry
    /// becomes `warning_closed` whatever `outcome` says.
    pub(crate) fn close_dispute(
        &mut self,
        id: &str,
        outcome: DisputeOutcome,
    ) -> Result<(), SimError> {
        let dispute = self.dispute_mut(id)?;
        let status = match (dispute.status, outcome) {
            (DisputeStatus::WarningNeedsResponse, _) => DisputeStatus::WarningClosed,
            (DisputeStatus::NeedsResponse, DisputeOutcome::Won) => DisputeStatus::Won,
            (DisputeStatus::NeedsResponse, DisputeOutcome::Lost) => DisputeStatus::Lost,
            (status, _) => return Err(closed(id, status)),
        };
        dispute.status = status;
        let reinstated = status == DisputeStatus::Won && self.move_funds(id, true);
        self.emit_dispute_event("charge.dispute.closed", id, None);
        if reinstated {
            self.emit_dispute_event("charge.dispute.funds_reinstated", id, None);
        }
        Ok(())
    }

    /// Records a withdrawal (the amount and the fee) or the reinstatement of a withdrawal; false
    /// when there is nothing to move: a fully refunded charge, or nothing withdrawn to give back.
    fn move_funds(&mut self, id: &str, reinstatement: bool) -> bool {
        let txn_id = self.new_id("txn_1", 24);
        let now = Self::now();
        let Some(dispute) = self.store.disputes.get(id) else {
            return false;
        };
        let withdrawn = dispute
            .balance_transactions
            .iter()
            .find(|txn| !txn.reinstatement)
            .map(|txn| txn.amount);
        let amount = if reinstatement {
            match withdrawn {
                Some(withdrawn) => -withdrawn,
                None => return false,
            }
        } else {
            let refunded = self
                .store
                .charges
                .get(&dispute.charge)
                .is_none_or(Charge::refunded);
            if refunded || withdrawn.is_some() {
                return false;
            }
            -dispute.amount
        };
        let Some(dispute) = self.store.disputes.get_mut(id) else {
            return false;
        };
        dispute.balance_transactions.push(BalanceTransaction {
            id: txn_id,
            amount,
            fee: if reinstatement { 0 } else { DISPUTE_FEE },
            created: now,
            reinstatement,
        });
        true
    }

    fn dispute_mut(&mut self, id: &str) -> Result<&mut Dispute, SimError> {
        self.store
            .disputes
            .get_mut(id)
            .ok_or_else(|| SimError::UnknownDispute(id.to_owned()))
    }

    fn dispute_object(&self, id: &str) -> Result<Value, SimError> {
        self.store
            .disputes
            .get(id)
            .map(|dispute| objects::dispute(dispute, self.livemode))
            .ok_or_else(|| SimError::UnknownDispute(id.to_owned()))
    }

    /// Emits `type_` about the dispute as it is now; with `before`, the object before the step,
    /// the event carries `previous_attributes`.
    fn emit_dispute_event(&mut self, type_: &str, id: &str, before: Option<&Value>) {
        let Ok(object) = self.dispute_object(id) else {
            return;
        };
        let previous = before.map(|before| Value::Object(previous_attributes(before, &object)));
        self.emit_event(type_, &object, previous, &Origin::default());
    }

    pub(crate) fn dispute_view(&self, id: &str) -> Option<SimDispute> {
        let dispute = self.store.disputes.get(id)?;
        Some(SimDispute {
            id: dispute.id.clone(),
            payment_intent: dispute.payment_intent.clone(),
            charge: dispute.charge.clone(),
            amount: dispute.amount,
            currency: dispute.currency.clone(),
            reason: dispute.reason.clone(),
            status: dispute.status,
        })
    }
}

fn closed(id: &str, status: DisputeStatus) -> SimError {
    SimError::DisputeClosed {
        id: id.to_owned(),
        status,
    }
}
