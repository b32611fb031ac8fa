//! The two ways things go wrong: [`SimError`] for the simulator's controls (Rust and `/__sim`),
//! and `ApiError`, Stripe's error body `{"error": {"type", "code"?, "message", "param"?}}` with
//! its HTTP status, for the `/v1` API.

use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use serde_json::{Map, Value, json};

use super::model::{DisputeStatus, SessionStatus};

/// Why a simulator control (pay, settle, refund, …) could not be carried out.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SimError {
    #[error("no such checkout session: {0}")]
    UnknownSession(String),
    #[error("no such payment intent: {0}")]
    UnknownPaymentIntent(String),
    #[error("no such event: {0}")]
    UnknownEvent(String),
    #[error("checkout session {id} is {}, not open", status.as_str())]
    SessionNotOpen { id: String, status: SessionStatus },
    #[error("checkout session {0} has no delayed payment waiting to settle")]
    NotAwaitingSettlement(String),
    #[error("payment intent {0} has no successful charge")]
    NotPaid(String),
    #[error("charge {0} has already been refunded")]
    AlreadyRefunded(String),
    #[error("refund amount {requested} is greater than the unrefunded amount {available}")]
    RefundTooLarge { requested: i64, available: i64 },
    #[error("a refund amount must be a positive integer, not {0}")]
    InvalidAmount(i64),
    #[error("charge {0} has been charged back; cannot issue a refund")]
    Disputed(String),
    #[error("charge {0} is already disputed")]
    AlreadyDisputed(String),
    #[error("no such dispute: {0}")]
    UnknownDispute(String),
    #[error("dispute {id} is already closed ({})", status.as_str())]
    DisputeClosed { id: String, status: DisputeStatus },
    #[error("dispute {id} is not an open inquiry ({})", status.as_str())]
    DisputeNotInquiry { id: String, status: DisputeStatus },
    #[error("a drop rate must be between 0.0 and 1.0, not {0}")]
    InvalidDropRate(String),
    #[error("no such account: {0}")]
    UnknownAccount(String),
    #[error("no such transfer: {0}")]
    UnknownTransfer(String),
    #[error("no such application fee: {0}")]
    UnknownApplicationFee(String),
    #[error(
        "destination account {0} cannot receive transfers: its transfers capability is not active"
    )]
    DestinationInactive(String),
    #[error("transfer {0} has already been fully reversed")]
    AlreadyReversed(String),
    #[error(
        "transfer reversal amount {requested} is greater than the unreversed amount {available}"
    )]
    ReversalTooLarge { requested: i64, available: i64 },
    #[error("application fee {0} has already been fully refunded")]
    FeeAlreadyRefunded(String),
    #[error("fee refund amount {requested} is greater than the unrefunded fee {available}")]
    FeeRefundTooLarge { requested: i64, available: i64 },
}

impl SimError {
    /// A stable snake_case code for the control API's error bodies.
    pub fn code(&self) -> &'static str {
        match self {
            Self::UnknownSession(_) => "unknown_session",
            Self::UnknownPaymentIntent(_) => "unknown_payment_intent",
            Self::UnknownEvent(_) => "unknown_event",
            Self::SessionNotOpen { .. } => "session_not_open",
            Self::NotAwaitingSettlement(_) => "not_awaiting_settlement",
            Self::NotPaid(_) => "not_paid",
            Self::AlreadyRefunded(_) => "charge_already_refunded",
            Self::RefundTooLarge { .. }
            | Self::ReversalTooLarge { .. }
            | Self::FeeRefundTooLarge { .. } => "amount_too_large",
            Self::InvalidAmount(_) => "invalid_amount",
            Self::Disputed(_) => "charge_disputed",
            Self::AlreadyDisputed(_) => "charge_already_disputed",
            Self::UnknownDispute(_) => "unknown_dispute",
            Self::DisputeClosed { .. } => "dispute_closed",
            Self::DisputeNotInquiry { .. } => "dispute_not_inquiry",
            Self::InvalidDropRate(_) => "invalid_drop_rate",
            Self::UnknownAccount(_) => "unknown_account",
            Self::UnknownTransfer(_) => "unknown_transfer",
            Self::UnknownApplicationFee(_) => "unknown_application_fee",
            Self::DestinationInactive(_) => "destination_inactive",
            Self::AlreadyReversed(_) => "transfer_already_reversed",
            Self::FeeAlreadyRefunded(_) => "application_fee_already_refunded",
        }
    }

    pub(crate) fn status(&self) -> StatusCode {
        match self {
            Self::UnknownSession(_)
            | Self::UnknownPaymentIntent(_)
            | Self::UnknownEvent(_)
            | Self::UnknownDispute(_)
            | Self::UnknownAccount(_)
            | Self::UnknownTransfer(_)
            | Self::UnknownApplicationFee(_) => StatusCode::NOT_FOUND,
            Self::InvalidAmount(_)
            | Self::RefundTooLarge { .. }
            | Self::InvalidDropRate(_)
            | Self::ReversalTooLarge { .. }
            | Self::FeeRefundTooLarge { .. } => StatusCode::BAD_REQUEST,
            _ => StatusCode::CONFLICT,
        }
    }
}

/// A Stripe API error response.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ApiError {
    pub(crate) status: StatusCode,
    type_: &'static str,
    code: Option<&'static str>,
    message: String,
    param: Option<String>,
}

impl ApiError {
    fn new(status: StatusCode, type_: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            type_,
            code: None,
            message: message.into(),
            param: None,
        }
    }

    pub(crate) fn with_code(mut self, code: &'static str) -> Self {
        self.code = Some(code);
        self
    }

    pub(crate) fn with_param(mut self, param: &str) -> Self {
        self.param = Some(param.to_owned());
        self
    }

    /// 400 `invalid_request_error` blaming one parameter.
    pub(crate) fn invalid(param: &str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request_error", message).with_param(param)
    }

    pub(crate) fn missing(param: &str) -> Self {
        Self::invalid(param, format!("Missing required param: {param}."))
            .with_code("parameter_missing")
    }

    /// 400 for a parameter the endpoint does not take.
    pub(crate) fn unknown_param(param: &str) -> Self {
        Self::invalid(param, format!("Received unknown parameter: {param}"))
            .with_code("parameter_unknown")
    }

    pub(crate) fn invalid_integer(param: &str, text: &str) -> Self {
        Self::invalid(param, format!("Invalid integer: {text}"))
            .with_code("parameter_invalid_integer")
    }

    /// 400 for an id given as a parameter that names nothing (`No such price: 'price_1'`).
    pub(crate) fn no_such_param(param: &str, kind: &str, id: &str) -> Self {
        Self::invalid(param, format!("No such {kind}: '{id}'")).with_code("resource_missing")
    }

    /// 404 for an id in the path that names nothing.
    pub(crate) fn no_such(kind: &str, id: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "invalid_request_error",
            format!("No such {kind}: '{id}'"),
        )
        .with_code("resource_missing")
        .with_param("id")
    }

    /// 400 with no parameter or code to blame.
    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request_error", message)
    }

    /// 400 for a request that is well-formed but not allowed in the object's state.
    pub(crate) fn state(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request_error", message).with_code(code)
    }

    pub(crate) fn unrecognized_url(method: &str, path: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "invalid_request_error",
            format!(
                "Unrecognized request URL ({method}: {path}). Please see https://stripe.com/docs \
                 or we can help at https://support.stripe.com/."
            ),
        )
    }

    pub(crate) fn no_api_key() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "invalid_request_error",
            "You did not provide an API key. You need to provide your API key in the \
             Authorization header, using Bearer auth (e.g. 'Authorization: Bearer \
             YOUR_SECRET_KEY').",
        )
    }

    /// 401 naming only the last four characters of the rejected key, as Stripe does.
    pub(crate) fn invalid_api_key(given: &str) -> Self {
        let chars: Vec<char> = given.chars().collect();
        let tail: String = chars[chars.len().saturating_sub(4)..].iter().collect();
        Self::new(
            StatusCode::UNAUTHORIZED,
            "invalid_request_error",
            format!("Invalid API Key provided: {}{tail}", "*".repeat(8)),
        )
    }

    pub(crate) fn idempotency_mismatch(key: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "idempotency_error",
            format!(
                "Keys for idempotent requests can only be used with the same parameters they \
                 were first used with. Try using a key other than '{key}' if you meant to \
                 execute a different request."
            ),
        )
    }

    pub(crate) fn idempotency_key_too_long() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "Idempotency keys can be at most 255 characters long.",
        )
    }

    pub(crate) fn body(&self) -> Value {
        let mut error = Map::new();
        if let Some(code) = self.code {
            error.insert("code".to_owned(), json!(code));
            error.insert(
                "doc_url".to_owned(),
                json!(format!(
                    "https://stripe.com/docs/error-codes/{}",
                    code.replace('_', "-")
                )),
            );
        }
        error.insert("message".to_owned(), json!(self.message));
        if let Some(param) = &self.param {
            error.insert("param".to_owned(), json!(param));
        }
        error.insert("type".to_owned(), json!(self.type_));
        json!({ "error": error })
    }

    pub(crate) fn into_response(self) -> HttpResponse {
        HttpResponse::build(self.status).json(self.body())
    }
}

/// How a control failure reads to an API client (a refund through `POST /v1/refunds`).
impl From<SimError> for ApiError {
    fn from(error: SimError) -> Self {
        let message = error.to_string();
        match &error {
            SimError::UnknownPaymentIntent(id) => {
                Self::no_such_param("payment_intent", "payment_intent", id)
            }
            SimError::UnknownSession(id) => Self::no_such("checkout.session", id),
            SimError::InvalidAmount(_) => Self::invalid("amount", "Invalid positive integer")
                .with_code("parameter_invalid_integer"),
            SimError::RefundTooLarge { .. }
            | SimError::ReversalTooLarge { .. }
            | SimError::FeeRefundTooLarge { .. } => {
                Self::invalid("amount", capitalised(&message)).with_code("amount_too_large")
            }
            SimError::UnknownAccount(id) => Self::no_such("account", id),
            SimError::UnknownTransfer(id) => Self::no_such("transfer", id),
            SimError::UnknownApplicationFee(id) => Self::no_such("application_fee", id),
            SimError::NotPaid(_) => Self::state("charge_not_refundable", capitalised(&message)),
            // Stripe's own codes for these.
            SimError::AlreadyRefunded(_) | SimError::Disputed(_) => {
                Self::state(error.code(), capitalised(&message))
            }
            _ => Self::bad_request(capitalised(&message)),
        }
    }
}

fn capitalised(text: &str) -> String {
    let mut chars = text.chars();
    chars.next().map_or_else(String::new, |first| {
        first.to_uppercase().chain(chars).collect::<String>() + "."
    })
}
