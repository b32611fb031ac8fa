//! Connect's records: Express accounts and their onboarding links, and the money a destination
//! charge moves (the transfer to the seller, the application fee the platform collects back, and
//! the reversals and fee refunds that undo them). Plain records, like `store`'s; the rules are in
//! `accounts`, `links`, `transfers` and `reversals`, the JSON in `connect::objects`.

use std::collections::{BTreeMap, HashMap};

/// What a Checkout Session asks of the payment it creates:
/// `payment_intent_data[transfer_data][destination]` and `[application_fee_amount]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DestinationCharge {
    pub(crate) account: String,
    pub(crate) application_fee_amount: Option<i64>,
}

/// An Express account, as the platform created it and the seller (or a control) changed it.
/// Its flags (`charges_enabled`, capabilities, requirements) are derived from the two facts
/// that change, `details_submitted` and `disabled_reason`, so they can never disagree.
#[derive(Debug, Clone)]
pub(crate) struct Account {
    pub(crate) id: String,
    pub(crate) created: i64,
    pub(crate) email: Option<String>,
    pub(crate) country: String,
    pub(crate) default_currency: String,
    pub(crate) business_type: Option<String>,
    /// The capabilities requested (`card_payments`, `transfers`), in name order.
    pub(crate) capabilities: Vec<String>,
    pub(crate) metadata: BTreeMap<String, String>,
    /// Whether the seller finished the onboarding form.
    pub(crate) details_submitted: bool,
    /// When the seller accepted the terms of service on that form.
    pub(crate) tos_accepted_at: Option<i64>,
    /// Set while Stripe has disabled the account (`rejected.other`), whatever its onboarding.
    pub(crate) rejected: Option<String>,
}

impl Account {
    /// Onboarded and not disabled: charges and payouts enabled, capabilities active.
    pub(crate) fn enabled(&self) -> bool {
        self.details_submitted && self.rejected.is_none()
    }

    pub(crate) fn capability_status(&self) -> &'static str {
        if self.enabled() { "active" } else { "inactive" }
    }

    /// Whether a destination charge may send money here.
    pub(crate) fn transfers_active(&self) -> bool {
        self.enabled() && self.capabilities.iter().any(|name| name == "transfers")
    }

    /// `requirements.disabled_reason`: the rejection, or the unfinished onboarding.
    pub(crate) fn disabled_reason(&self) -> Option<&str> {
        match &self.rejected {
            Some(reason) => Some(reason),
            None if !self.details_submitted => Some("requirements.past_due"),
            None => None,
        }
    }
}

/// Where a hosted onboarding link stands. Stripe's links are single-use: the first visit
/// consumes it (a revisit is sent to `refresh_url`), and submitting the form uses it up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LinkState {
    Fresh,
    Visited,
    Used,
}

#[derive(Debug, Clone)]
pub(crate) struct AccountLink {
    /// The random last segment of its URL.
    pub(crate) token: String,
    pub(crate) account: String,
    pub(crate) refresh_url: String,
    pub(crate) return_url: String,
    pub(crate) created: i64,
    pub(crate) expires_at: i64,
    pub(crate) state: LinkState,
}

#[derive(Debug, Clone)]
pub(crate) struct Transfer {
    pub(crate) id: String,
    pub(crate) amount: i64,
    pub(crate) amount_reversed: i64,
    pub(crate) currency: String,
    pub(crate) created: i64,
    pub(crate) destination: String,
    /// The payment it created on the connected account (`py_…`).
    pub(crate) destination_payment: String,
    /// The platform charge it came from.
    pub(crate) source_transaction: String,
    pub(crate) group: String,
    pub(crate) balance_transaction: String,
    /// Reversal ids, oldest first.
    pub(crate) reversals: Vec<String>,
}

impl Transfer {
    pub(crate) fn remaining(&self) -> i64 {
        self.amount - self.amount_reversed
    }
}

#[derive(Debug, Clone)]
pub(crate) struct TransferReversal {
    pub(crate) id: String,
    pub(crate) transfer: String,
    pub(crate) amount: i64,
    pub(crate) currency: String,
    pub(crate) created: i64,
    /// The platform refund that caused it (`reverse_transfer`), if one did.
    pub(crate) source_refund: Option<String>,
    /// The refund of the payment on the connected account (`pyr_…`).
    pub(crate) destination_payment_refund: String,
    pub(crate) balance_transaction: String,
    pub(crate) metadata: BTreeMap<String, String>,
}

#[derive(Debug, Clone)]
pub(crate) struct ApplicationFee {
    pub(crate) id: String,
    /// The connected account it was collected from.
    pub(crate) account: String,
    pub(crate) amount: i64,
    pub(crate) amount_refunded: i64,
    pub(crate) currency: String,
    pub(crate) created: i64,
    /// The payment on the connected account it was taken from (`py_…`), Stripe's `charge`.
    pub(crate) charge: String,
    /// The platform charge (`ch_…`), Stripe's `originating_transaction`.
    pub(crate) originating_transaction: String,
    pub(crate) balance_transaction: String,
    /// Fee refund ids, oldest first.
    pub(crate) refunds: Vec<String>,
}

impl ApplicationFee {
    pub(crate) fn remaining(&self) -> i64 {
        self.amount - self.amount_refunded
    }
}

#[derive(Debug, Clone)]
pub(crate) struct FeeRefund {
    pub(crate) id: String,
    pub(crate) fee: String,
    pub(crate) amount: i64,
    pub(crate) currency: String,
    pub(crate) created: i64,
    pub(crate) balance_transaction: String,
    pub(crate) metadata: BTreeMap<String, String>,
}

#[derive(Debug, Default)]
pub(crate) struct ConnectStore {
    /// The platform's Connect application (`ca_…`), named by every application fee.
    pub(crate) application: String,
    pub(crate) accounts: HashMap<String, Account>,
    /// Account ids in creation order.
    pub(crate) account_order: Vec<String>,
    /// Onboarding links by token.
    pub(crate) links: HashMap<String, AccountLink>,
    pub(crate) transfers: HashMap<String, Transfer>,
    pub(crate) reversals: HashMap<String, TransferReversal>,
    pub(crate) fees: HashMap<String, ApplicationFee>,
    pub(crate) fee_refunds: HashMap<String, FeeRefund>,
}

impl ConnectStore {
    pub(crate) fn add_account(&mut self, account: Account) {
        self.account_order.push(account.id.clone());
        self.accounts.insert(account.id.clone(), account);
    }
}
