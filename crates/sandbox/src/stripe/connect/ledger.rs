//! The public views of Connect: accounts as the platform sees them, and the ledger, one entry per
//! charge saying where its money went, so a test can check the books without reading Stripe's
//! objects.

use super::store::Account;
use crate::stripe::model::{SimAccount, SimApplicationFee, SimLedgerEntry, SimTransfer};
use crate::stripe::state::SimState;

fn view(account: &Account) -> SimAccount {
    SimAccount {
        id: account.id.clone(),
        email: account.email.clone(),
        charges_enabled: account.enabled(),
        payouts_enabled: account.enabled(),
        details_submitted: account.details_submitted,
    }
}

impl SimState {
    pub(crate) fn account_view(&self, id: &str) -> Option<SimAccount> {
        self.store.connect.accounts.get(id).map(view)
    }

    /// Every account, oldest first.
    pub(crate) fn account_views(&self) -> Vec<SimAccount> {
        let connect = &self.store.connect;
        connect
            .account_order
            .iter()
            .filter_map(|id| connect.accounts.get(id))
            .map(view)
            .collect()
    }

    /// One entry per charge, oldest first.
    pub(crate) fn ledger(&self) -> Vec<SimLedgerEntry> {
        let connect = &self.store.connect;
        self.store
            .charge_order
            .iter()
            .filter_map(|id| self.store.charges.get(id))
            .map(|charge| SimLedgerEntry {
                payment_intent: charge.payment_intent.clone(),
                charge: charge.id.clone(),
                amount: charge.amount,
                currency: charge.currency.clone(),
                amount_refunded: charge.amount_refunded,
                destination: charge.destination.as_ref().map(|d| d.account.clone()),
                transfer: charge
                    .transfer
                    .as_ref()
                    .and_then(|id| connect.transfers.get(id))
                    .map(|transfer| SimTransfer {
                        id: transfer.id.clone(),
                        amount: transfer.amount,
                        amount_reversed: transfer.amount_reversed,
                    }),
                application_fee: charge
                    .application_fee
                    .as_ref()
                    .and_then(|id| connect.fees.get(id))
                    .map(|fee| SimApplicationFee {
                        id: fee.id.clone(),
                        amount: fee.amount,
                        amount_refunded: fee.amount_refunded,
                    }),
            })
            .collect()
    }
}
