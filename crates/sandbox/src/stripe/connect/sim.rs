//! The Rust side of Connect's controls, on [`StripeSim`].

use crate::stripe::error::SimError;
use crate::stripe::model::{SimAccount, SimLedgerEntry, SimRefund};
use crate::stripe::ops::RefundRequest;
use crate::stripe::sim::StripeSim;
use crate::stripe::state::{Origin, SimState};

impl StripeSim {
    /// Every connected account, oldest first.
    pub fn accounts(&self) -> Vec<SimAccount> {
        self.shared.lock().account_views()
    }

    /// A connected account as it stands now.
    pub fn account(&self, account: &str) -> Option<SimAccount> {
        self.shared.lock().account_view(account)
    }

    /// The seller completes onboarding, as submitting the hosted form does: details submitted,
    /// charges and payouts enabled, capabilities `active`, requirements cleared, and
    /// `account.updated` sent (nothing changes, nothing is sent, if it was done already).
    pub fn complete_onboarding(&self, account: &str) -> Result<SimAccount, SimError> {
        self.account_control(account, |state| {
            state.complete_onboarding(account, &Origin::default())
        })
    }

    /// Stripe disables an account (`enabled: false`: charges and payouts disabled, capabilities
    /// `inactive`, `requirements.disabled_reason` `rejected.other`) or lifts that (`true`: back
    /// to what its onboarding allows). Each change sends `account.updated`.
    pub fn set_account_enabled(
        &self,
        account: &str,
        enabled: bool,
    ) -> Result<SimAccount, SimError> {
        self.account_control(account, |state| state.set_account_enabled(account, enabled))
    }

    fn account_control(
        &self,
        account: &str,
        action: impl FnOnce(&mut SimState) -> Result<(), SimError>,
    ) -> Result<SimAccount, SimError> {
        let mut state = self.shared.lock();
        action(&mut state)?;
        state
            .account_view(account)
            .ok_or_else(|| SimError::UnknownAccount(account.to_owned()))
    }

    /// Makes every Account Link expire now, as if its five minutes had passed: visiting or
    /// submitting it leads to its `refresh_url`.
    pub fn expire_account_links(&self) {
        self.shared.lock().expire_account_links();
    }

    /// One entry per charge, oldest first: its refunds, and for a destination charge its
    /// transfer and application fee as they stand.
    pub fn ledger(&self) -> Vec<SimLedgerEntry> {
        self.shared.lock().ledger()
    }

    /// [`StripeSim::refund`] with Stripe's Connect flags: on a destination charge,
    /// `reverse_transfer` reverses the transfer and `refund_application_fee` refunds the fee, in
    /// proportion to the refund (`transfer.reversed`, `application_fee.refunded` after
    /// `charge.refunded`). Without them, as with [`StripeSim::refund`], nothing is reversed.
    pub fn refund_reversing(
        &self,
        payment_intent: &str,
        amount: Option<i64>,
        reverse_transfer: bool,
        refund_application_fee: bool,
    ) -> Result<SimRefund, SimError> {
        let mut state = self.shared.lock();
        let request = RefundRequest {
            payment_intent: payment_intent.to_owned(),
            amount,
            reverse_transfer,
            refund_application_fee,
            ..RefundRequest::default()
        };
        let id = state.refund(request, &Origin::default())?;
        state
            .refund_view(&id)
            .ok_or_else(|| SimError::UnknownPaymentIntent(payment_intent.to_owned()))
    }
}
