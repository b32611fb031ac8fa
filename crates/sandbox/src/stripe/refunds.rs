//! `/v1/refunds` (create, retrieve) and `GET /v1/charges/{id}`.

use serde_json::Value;

use super::error::ApiError;
use super::form::{self, Params};
use super::objects;
use super::ops::RefundRequest;
use super::state::{Origin, SimState};

const REASONS: [&str; 3] = ["duplicate", "fraudulent", "requested_by_customer"];

/// `POST /v1/refunds`: `payment_intent` (or `charge`), optional `amount` (default: what is left),
/// `reason`, `metadata`, and on a destination charge `reverse_transfer` and
/// `refund_application_fee` (see `connect::reversals`). Emits `charge.refunded`.
pub(crate) fn create(
    state: &mut SimState,
    params: &Params,
    origin: &Origin,
) -> Result<Value, ApiError> {
    let root = &params.root;
    let payment_intent = match (
        form::text(root, "payment_intent", "payment_intent")?.filter(|pi| !pi.is_empty()),
        form::text(root, "charge", "charge")?.filter(|charge| !charge.is_empty()),
    ) {
        (Some(pi), _) => pi.to_owned(),
        (None, Some(charge)) => state
            .store
            .charges
            .get(charge)
            .map(|charge| charge.payment_intent.clone())
            .ok_or_else(|| ApiError::no_such_param("charge", "charge", charge))?,
        (None, None) => {
            return Err(ApiError::bad_request(
                "One of the following params should be provided for this request: \
                 payment_intent or charge.",
            ));
        }
    };
    let amount = form::integer(root, "amount", "amount")?;
    let reason = form::text(root, "reason", "reason")?
        .filter(|reason| !reason.is_empty())
        .map(str::to_owned);
    if let Some(reason) = &reason
        && !REASONS.contains(&reason.as_str())
    {
        return Err(ApiError::invalid(
            "reason",
            "Invalid reason: must be one of duplicate, fraudulent, or requested_by_customer",
        ));
    }
    let metadata = form::metadata(root, "metadata", "metadata")?;
    let reverse_transfer = form::boolean(root, "reverse_transfer", "reverse_transfer")?;
    let refund_application_fee =
        form::boolean(root, "refund_application_fee", "refund_application_fee")?;
    let request = RefundRequest {
        payment_intent,
        amount,
        reason,
        metadata,
        reverse_transfer: reverse_transfer.unwrap_or(false),
        refund_application_fee: refund_application_fee.unwrap_or(false),
    };
    let id = state.refund(request, origin)?;
    retrieve(state, &id)
}

pub(crate) fn retrieve(state: &SimState, id: &str) -> Result<Value, ApiError> {
    state
        .store
        .refunds
        .get(id)
        .map(objects::refund)
        .ok_or_else(|| ApiError::no_such("refund", id))
}

pub(crate) fn retrieve_charge(state: &SimState, id: &str) -> Result<Value, ApiError> {
    state
        .store
        .charges
        .get(id)
        .map(|charge| objects::charge(&state.store, charge, state.livemode))
        .ok_or_else(|| ApiError::no_such("charge", id))
}
