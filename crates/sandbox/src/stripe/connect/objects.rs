//! The JSON of Connect's objects, with exactly the fields of Stripe's own examples (null when
//! unset, nested objects whole), so async-stripe's types read them and a test can compare their
//! key sets with Stripe's.

use serde_json::{Map, Value, json};
use url::Url;

use super::store::{
    Account, AccountLink, ApplicationFee, ConnectStore, FeeRefund, Transfer, TransferReversal,
};
use crate::stripe::objects::merge;

/// What an Express account must provide before it is enabled, as Stripe lists it for a new
/// account in the US.
const ONBOARDING_REQUIREMENTS: [&str; 6] = [
    "business_profile.product_description",
    "business_profile.support_phone",
    "business_profile.url",
    "external_account",
    "tos_acceptance.date",
    "tos_acceptance.ip",
];

/// `<base>/connect/onboarding/<token>`: the hosted onboarding form of an account link.
pub(crate) fn onboarding_url(public_base: &Url, token: &str) -> String {
    let base = public_base.as_str().trim_end_matches('/');
    format!("{base}/connect/onboarding/{token}")
}

/// `<base>/connect/express/<account>`: the Express dashboard a login link opens.
pub(crate) fn express_url(public_base: &Url, account: &str) -> String {
    let base = public_base.as_str().trim_end_matches('/');
    format!("{base}/connect/express/{account}")
}

/// An `account` (type `express`) as it stands.
pub(crate) fn account(account: &Account) -> Value {
    let enabled = account.enabled();
    let capabilities: Map<String, Value> = account
        .capabilities
        .iter()
        .map(|name| (name.clone(), json!(account.capability_status())))
        .collect();
    // A rejected account owes nothing more; an unfinished one owes the whole form, overdue.
    let due: &[&str] = if account.details_submitted || account.rejected.is_some() {
        &[]
    } else {
        &ONBOARDING_REQUIREMENTS
    };
    let tos = account.tos_accepted_at;
    let mut object = json!({
        "id": account.id,
        "object": "account",
        "business_profile": business_profile(),
        "business_type": account.business_type,
        "capabilities": capabilities,
        "charges_enabled": enabled,
        "controller": { "type": "application" },
        "country": account.country,
        "created": account.created,
        "default_currency": account.default_currency,
        "details_submitted": account.details_submitted,
        "email": account.email,
        "external_accounts": {
            "object": "list",
            "data": [],
            "has_more": false,
            "url": format!("/v1/accounts/{}/external_accounts", account.id),
        },
    });
    let rest = json!({
        "future_requirements": requirements(&[], None),
        "metadata": account.metadata,
        "payouts_enabled": enabled,
        "requirements": requirements(due, account.disabled_reason()),
        "settings": settings(),
        "tos_acceptance": {
            "date": tos,
            "ip": tos.map(|_| "127.0.0.1"),
            "user_agent": tos.map(|_| "Stripe simulator"),
        },
        "type": "express",
    });
    merge(&mut object, rest);
    object
}

fn business_profile() -> Value {
    json!({
        "annual_revenue": { "amount": null, "currency": null, "fiscal_year_end": null },
        "estimated_worker_count": null,
        "mcc": null,
        "minority_owned_business_designation": null,
        "name": null,
        "product_description": null,
        "support_address": {
            "city": null,
            "country": null,
            "line1": null,
            "line2": null,
            "postal_code": null,
            "state": null,
        },
        "support_email": null,
        "support_phone": null,
        "support_url": null,
        "url": null,
    })
}

fn requirements(due: &[&str], disabled_reason: Option<&str>) -> Value {
    json!({
        "alternatives": [],
        "current_deadline": null,
        "currently_due": due,
        "disabled_reason": disabled_reason,
        "errors": [],
        "eventually_due": due,
        "past_due": due,
        "pending_verification": [],
    })
}

fn settings() -> Value {
    json!({
        "bacs_debit_payments": { "display_name": null, "service_user_number": null },
        "branding": { "icon": null, "logo": null, "primary_color": null, "secondary_color": null },
        "card_issuing": { "tos_acceptance": { "date": null, "ip": null } },
        "card_payments": {
            "decline_on": { "avs_failure": false, "cvc_failure": false },
            "statement_descriptor_prefix": null,
            "statement_descriptor_prefix_kana": null,
            "statement_descriptor_prefix_kanji": null,
        },
        "dashboard": { "display_name": null, "timezone": "Etc/UTC" },
        "invoices": { "default_account_tax_ids": null, "hosted_payment_method_save": null },
        "payments": {
            "statement_descriptor": null,
            "statement_descriptor_kana": null,
            "statement_descriptor_kanji": null,
            "statement_descriptor_prefix_kana": null,
            "statement_descriptor_prefix_kanji": null,
        },
        "payouts": {
            "debit_negative_balances": true,
            "schedule": { "delay_days": 2, "interval": "daily" },
            "statement_descriptor": null,
        },
        "sepa_debit_payments": {},
    })
}

pub(crate) fn account_link(link: &AccountLink, public_base: &Url) -> Value {
    json!({
        "object": "account_link",
        "created": link.created,
        "expires_at": link.expires_at,
        "url": onboarding_url(public_base, &link.token),
    })
}

pub(crate) fn login_link(account: &str, created: i64, public_base: &Url) -> Value {
    json!({
        "object": "login_link",
        "created": created,
        "url": express_url(public_base, account),
    })
}

/// A `transfer`, with its reversals newest first.
pub(crate) fn transfer(store: &ConnectStore, transfer: &Transfer, livemode: bool) -> Value {
    let reversals: Vec<Value> = transfer
        .reversals
        .iter()
        .rev()
        .filter_map(|id| store.reversals.get(id))
        .map(transfer_reversal)
        .collect();
    json!({
        "id": transfer.id,
        "object": "transfer",
        "amount": transfer.amount,
        "amount_reversed": transfer.amount_reversed,
        "balance_transaction": transfer.balance_transaction,
        "created": transfer.created,
        "currency": transfer.currency,
        "description": null,
        "destination": transfer.destination,
        "destination_payment": transfer.destination_payment,
        "livemode": livemode,
        "metadata": {},
        "reversals": {
            "object": "list",
            "data": reversals,
            "has_more": false,
            "url": format!("/v1/transfers/{}/reversals", transfer.id),
        },
        "reversed": transfer.remaining() <= 0,
        "source_transaction": transfer.source_transaction,
        "source_type": "card",
        "transfer_group": transfer.group,
    })
}

pub(crate) fn transfer_reversal(reversal: &TransferReversal) -> Value {
    json!({
        "id": reversal.id,
        "object": "transfer_reversal",
        "amount": reversal.amount,
        "balance_transaction": reversal.balance_transaction,
        "created": reversal.created,
        "currency": reversal.currency,
        "destination_payment_refund": reversal.destination_payment_refund,
        "metadata": reversal.metadata,
        "source_refund": reversal.source_refund,
        "transfer": reversal.transfer,
    })
}

/// An `application_fee`, with its refunds newest first.
pub(crate) fn application_fee(store: &ConnectStore, fee: &ApplicationFee, livemode: bool) -> Value {
    let refunds: Vec<Value> = fee
        .refunds
        .iter()
        .rev()
        .filter_map(|id| store.fee_refunds.get(id))
        .map(fee_refund)
        .collect();
    json!({
        "id": fee.id,
        "object": "application_fee",
        "account": fee.account,
        "amount": fee.amount,
        "amount_refunded": fee.amount_refunded,
        "application": store.application,
        "balance_transaction": fee.balance_transaction,
        "charge": fee.charge,
        "created": fee.created,
        "currency": fee.currency,
        "fee_source": { "charge": fee.charge, "type": "charge" },
        "livemode": livemode,
        "originating_transaction": fee.originating_transaction,
        "refunded": fee.remaining() <= 0,
        "refunds": {
            "object": "list",
            "data": refunds,
            "has_more": false,
            "url": format!("/v1/application_fees/{}/refunds", fee.id),
        },
    })
}

pub(crate) fn fee_refund(refund: &FeeRefund) -> Value {
    json!({
        "id": refund.id,
        "object": "fee_refund",
        "amount": refund.amount,
        "balance_transaction": refund.balance_transaction,
        "created": refund.created,
        "currency": refund.currency,
        "fee": refund.fee,
        "metadata": refund.metadata,
    })
}
