//! The JSON of each Stripe object, as the API returns it and as events carry it in
//! `data.object`. Every field Stripe sends is present (null when unset), so async-stripe's
//! generated types, which require some of them, deserialize these bodies.

use serde_json::{Map, Value, json};
use url::Url;

use super::model::{DisputeStatus, SessionStatus};
use super::store::{
    BalanceTransaction, Charge, ChargeStatus, Dispute, LineItem, Refund, Session, Store,
    hosted_page_url,
};

/// A `checkout.session`. `line_items` is present only when expanded, as in Stripe.
pub(crate) fn session(
    session: &Session,
    livemode: bool,
    public_base: &Url,
    expand_line_items: bool,
) -> Value {
    let amount = session.amount_total();
    let open = session.status == SessionStatus::Open;
    let customer_details = session.paid_by.as_ref().map(|email| {
        json!({
            "address": null,
            "business_name": null,
            "email": email,
            "individual_name": null,
            "name": "Sandbox Buyer",
            "phone": null,
            "tax_exempt": "none",
            "tax_ids": [],
        })
    });
    let mut object = json!({
        "id": session.id,
        "object": "checkout.session",
        "adaptive_pricing": { "enabled": false },
        "after_expiration": null,
        "allow_promotion_codes": null,
        "amount_subtotal": amount,
        "amount_total": amount,
        "automatic_tax": { "enabled": false, "liability": null, "provider": null, "status": null },
        "billing_address_collection": null,
        "cancel_url": session.cancel_url,
        "client_reference_id": session.client_reference_id,
        "client_secret": null,
        "collected_information": null,
        "consent": null,
        "consent_collection": null,
        "created": session.created,
        "currency": session.currency,
        "currency_conversion": null,
        "custom_fields": [],
        "custom_text": {
            "after_submit": null,
            "shipping_address": null,
            "submit": null,
            "terms_of_service_acceptance": null,
        },
        "customer": null,
        "customer_creation": "if_required",
        "customer_details": customer_details,
        "customer_email": session.customer_email,
        "discounts": [],
        "expires_at": session.expires_at,
        "invoice": null,
        "invoice_creation": null,
    });
    let rest = json!({
        "livemode": livemode,
        "locale": session.locale,
        "metadata": session.metadata,
        "mode": "payment",
        "origin_context": null,
        "payment_intent": session.payment_intent,
        "payment_link": null,
        "payment_method_collection": "if_required",
        "payment_method_configuration_details": null,
        "payment_method_options": {},
        "payment_method_types": ["card", "us_bank_account"],
        "payment_status": session.payment_status.as_str(),
        "phone_number_collection": { "enabled": false },
        "recovered_from": null,
        "saved_payment_method_options": null,
        "setup_intent": null,
        "shipping_address_collection": null,
        "shipping_cost": null,
        "shipping_options": [],
        "status": session.status.as_str(),
        "submit_type": null,
        "subscription": null,
        "success_url": session.success_url,
        "total_details": { "amount_discount": 0, "amount_shipping": 0, "amount_tax": 0 },
        "ui_mode": "hosted_page",
        // Stripe clears the URL once the session can no longer be paid.
        "url": open.then(|| hosted_page_url(public_base, &session.id)),
        "wallet_options": null,
    });
    merge(&mut object, rest);
    if expand_line_items && let Value::Object(map) = &mut object {
        map.insert("line_items".to_owned(), line_items(session, livemode));
    }
    object
}

/// Adds `rest`'s fields to `object`. Large objects are written as two `json!` halves because one
/// `json!` of their size exceeds the macro recursion limit.
pub(crate) fn merge(object: &mut Value, rest: Value) {
    if let (Value::Object(map), Value::Object(rest)) = (object, rest) {
        map.extend(rest);
    }
}

/// The `list` of a session's line items (`GET /v1/checkout/sessions/{id}/line_items`, or
/// `expand[]=line_items`).
pub(crate) fn line_items(session: &Session, livemode: bool) -> Value {
    let data: Vec<Value> = session
        .line_items
        .iter()
        .map(|item| line_item(item, session.created, livemode))
        .collect();
    json!({
        "object": "list",
        "data": data,
        "has_more": false,
        "url": format!("/v1/checkout/sessions/{}/line_items", session.id),
    })
}

fn line_item(item: &LineItem, created: i64, livemode: bool) -> Value {
    json!({
        "id": item.id,
        "object": "item",
        "amount_discount": 0,
        "amount_subtotal": item.amount(),
        "amount_tax": 0,
        "amount_total": item.amount(),
        "currency": item.currency,
        "description": item.name,
        "price": {
            "id": item.price_id,
            "object": "price",
            // Prices made from `price_data` are archived at once, as in Stripe.
            "active": false,
            "billing_scheme": "per_unit",
            "created": created,
            "currency": item.currency,
            "custom_unit_amount": null,
            "livemode": livemode,
            "lookup_key": null,
            "metadata": {},
            "nickname": null,
            "product": item.product_id,
            "recurring": null,
            "tax_behavior": "unspecified",
            "tiers_mode": null,
            "transform_quantity": null,
            "type": "one_time",
            "unit_amount": item.unit_amount,
            "unit_amount_decimal": item.unit_amount.to_string(),
        },
        "quantity": item.quantity,
    })
}

/// A `charge`, with its refunds list. A destination charge names its destination
/// (`transfer_data`), its transfer and its application fee, and carries `transfer`, a field
/// Stripe sends only on destination charges.
pub(crate) fn charge(store: &Store, charge: &Charge, livemode: bool) -> Value {
    let refunds: Vec<Value> = charge
        .refunds
        .iter()
        .rev()
        .filter_map(|id| store.refunds.get(id))
        .map(refund)
        .collect();
    let failed = charge.status == ChargeStatus::Failed;
    let destination = charge.destination.as_ref();
    let mut object = json!({
        "id": charge.id,
        "object": "charge",
        "amount": charge.amount,
        "amount_captured": if charge.status == ChargeStatus::Succeeded { charge.amount } else { 0 },
        "amount_refunded": charge.amount_refunded,
        "application": null,
        "application_fee": charge.application_fee,
        "application_fee_amount": destination.and_then(|d| d.application_fee_amount),
        "balance_transaction": null,
        "billing_details": {
            "address": null,
            "email": charge.email,
            "name": "Sandbox Buyer",
            "phone": null,
            "tax_id": null,
        },
        "calculated_statement_descriptor": "SANDBOX",
        "captured": true,
        "created": charge.created,
        "currency": charge.currency,
        "customer": null,
        "description": null,
        "disputed": charge.dispute.is_some(),
        "failure_balance_transaction": null,
        "failure_code": failed.then_some("insufficient_funds"),
        "failure_message": failed
            .then_some("The customer's account has insufficient funds to cover this payment."),
        "fraud_details": {},
    });
    let rest = json!({
        "livemode": livemode,
        "metadata": charge.metadata,
        "on_behalf_of": null,
        "outcome": null,
        "paid": charge.status == ChargeStatus::Succeeded,
        "payment_intent": charge.payment_intent,
        "payment_method": null,
        "payment_method_details": null,
        "receipt_email": charge.email,
        "receipt_number": null,
        "receipt_url": null,
        "refunded": charge.refunded(),
        "refunds": {
            "object": "list",
            "data": refunds,
            "has_more": false,
            "url": format!("/v1/charges/{}/refunds", charge.id),
        },
        "review": null,
        "shipping": null,
        "source": null,
        "source_transfer": null,
        "statement_descriptor": null,
        "statement_descriptor_suffix": null,
        "status": charge.status.as_str(),
        "transfer_data": destination.map(|d| json!({ "amount": null, "destination": d.account })),
        // Stripe groups a destination charge with its transfer under the PaymentIntent's name.
        "transfer_group": destination.map(|_| format!("group_{}", charge.payment_intent)),
    });
    merge(&mut object, rest);
    if destination.is_some() {
        merge(&mut object, json!({ "transfer": charge.transfer }));
    }
    object
}

pub(crate) fn refund(refund: &Refund) -> Value {
    json!({
        "id": refund.id,
        "object": "refund",
        "amount": refund.amount,
        "balance_transaction": null,
        "charge": refund.charge,
        "created": refund.created,
        "currency": refund.currency,
        "customer": null,
        "customer_account": null,
        "destination_details": null,
        "metadata": refund.metadata,
        "payment_intent": refund.payment_intent,
        "payment_method": null,
        "reason": refund.reason,
        "receipt_number": null,
        "source_transfer_reversal": null,
        "status": "succeeded",
        "transfer_reversal": refund.transfer_reversal,
    })
}

/// The evidence fields of a fresh dispute: all empty.
const EVIDENCE_FIELDS: [&str; 27] = [
    "access_activity_log",
    "billing_address",
    "cancellation_policy",
    "cancellation_policy_disclosure",
    "cancellation_rebuttal",
    "customer_communication",
    "customer_email_address",
    "customer_name",
    "customer_purchase_ip",
    "customer_signature",
    "duplicate_charge_documentation",
    "duplicate_charge_explanation",
    "duplicate_charge_id",
    "product_description",
    "receipt",
    "refund_policy",
    "refund_policy_disclosure",
    "refund_refusal_explanation",
    "service_date",
    "service_documentation",
    "shipping_address",
    "shipping_carrier",
    "shipping_date",
    "shipping_documentation",
    "shipping_tracking_number",
    "uncategorized_file",
    "uncategorized_text",
];

/// A `dispute` as it stands. An inquiry (`warning_*`) says `case_type: inquiry`, a chargeback
/// `chargeback`; `balance_transactions` holds the withdrawal and the reinstatement once they
/// happened, expanded as Stripe always sends them.
pub(crate) fn dispute(dispute: &Dispute, livemode: bool) -> Value {
    let mut evidence: Map<String, Value> = EVIDENCE_FIELDS
        .iter()
        .map(|field| ((*field).to_owned(), Value::Null))
        .collect();
    evidence.insert("enhanced_evidence".to_owned(), json!({}));
    // Stripe gives the merchant about three weeks to answer.
    let due_by = dispute.created + 21 * 24 * 3600;
    let case_type = match dispute.status {
        DisputeStatus::WarningNeedsResponse | DisputeStatus::WarningClosed => "inquiry",
        DisputeStatus::NeedsResponse | DisputeStatus::Won | DisputeStatus::Lost => "chargeback",
    };
    let balance_transactions: Vec<Value> = dispute
        .balance_transactions
        .iter()
        .map(|txn| balance_transaction(dispute, txn))
        .collect();
    json!({
        "id": dispute.id,
        "object": "dispute",
        "amount": dispute.amount,
        "balance_transactions": balance_transactions,
        "charge": dispute.charge,
        "created": dispute.created,
        "currency": dispute.currency,
        "enhanced_eligibility_types": [],
        "evidence": evidence,
        "evidence_details": {
            "due_by": due_by,
            "enhanced_eligibility": {},
            "has_evidence": false,
            "past_due": false,
            "submission_count": 0,
        },
        "is_charge_refundable": dispute.status.is_charge_refundable(),
        "livemode": livemode,
        "metadata": {},
        "network_reason_code": NETWORK_REASON_CODE,
        "payment_intent": dispute.payment_intent,
        "payment_method_details": {
            "card": {
                "brand": "visa",
                "case_type": case_type,
                "network": "visa",
                "network_reason_code": NETWORK_REASON_CODE,
            },
            "type": "card",
        },
        "reason": dispute.reason,
        "status": dispute.status.as_str(),
    })
}

/// Visa's "Other Fraud – Card-Absent Environment", matching the `fraudulent` reason.
const NETWORK_REASON_CODE: &str = "10.4";

fn balance_transaction(dispute: &Dispute, txn: &BalanceTransaction) -> Value {
    let (description, category) = if txn.reinstatement {
        ("Chargeback reversal", "dispute_reversal")
    } else {
        ("Chargeback withdrawal", "dispute")
    };
    let fee_details: Vec<Value> = (txn.fee != 0)
        .then(|| {
            json!({
                "amount": txn.fee,
                "application": null,
                "currency": dispute.currency,
                "description": "Dispute fee",
                "type": "stripe_fee",
            })
        })
        .into_iter()
        .collect();
    json!({
        "id": txn.id,
        "object": "balance_transaction",
        "amount": txn.amount,
        "available_on": txn.created,
        "balance_type": "payments",
        "created": txn.created,
        "currency": dispute.currency,
        "description": format!("{description} for {}", dispute.charge),
        "exchange_rate": null,
        "fee": txn.fee,
        "fee_details": fee_details,
        "net": txn.amount - txn.fee,
        "reporting_category": category,
        "source": dispute.id,
        "status": "available",
        "type": "adjustment",
    })
}
