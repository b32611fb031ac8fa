//! The one error type of `market-core`. `market-http` maps each variant to an HTTP status and a
//! stable error code in one place (`market-http/src/error.rs`).

/// What went wrong, by meaning. Messages are safe to show: they never carry secrets (tokens, keys,
/// e-mail addresses).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The thing asked for does not exist (or the caller may not know that it does).
    #[error("{0} not found")]
    NotFound(&'static str),

    /// An input broke a rule; `field` names it.
    #[error("invalid {field}: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },

    /// The request is well-formed but conflicts with the current state.
    #[error("{0}")]
    Conflict(Conflict),

    /// Xano refused or failed an operator's request (listing a snippet, …).
    #[error("Xano: {0}")]
    Xano(#[from] master_api::Error),

    /// The payment provider (Stripe) refused or failed a request; nothing was changed here.
    #[error("payment provider: {0}")]
    Payments(#[source] Box<dyn std::error::Error + Send + Sync>),

    /// A stored secret did not open (its data key is not configured, or the row was altered).
    #[error(transparent)]
    Sealed(#[from] crate::envelope::EnvelopeError),

    #[error("database error")]
    Database(#[from] sqlx::Error),
}

/// Every way a well-formed request can conflict with the state it meets. Each has a stable code,
/// which clients branch on (`market-http` puts it in the error envelope).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Conflict {
    /// The tier version is off sale (a newer version replaced it, or an operator took it off).
    #[error("this tier is no longer on sale")]
    TierNotOnSale,
    /// The same `Idempotency-Key` came with a different checkout request.
    #[error("this Idempotency-Key was used for a different checkout request")]
    IdempotencyKeyReused,
    /// A purchase has one Checkout Session for life; another one was offered.
    #[error("the purchase already has another Checkout Session")]
    CheckoutSessionMismatch,
    /// Only a purchase whose payment went through (and is not refunded) can be refunded.
    #[error("only paid purchases can be refunded")]
    NotRefundable,
    /// Only a purchase holding a live token can have it replaced.
    #[error("only a purchase holding a working token can rotate it")]
    NotRotatable,
    /// Only a purchase bought outright and holding a working token can be upgraded.
    #[error("only a purchase holding a working token can be upgraded")]
    NotUpgradable,
    /// The target is not a higher tier of the purchase's listing: more installs than the purchase
    /// allows now, in the same currency, for more than has been paid so far.
    #[error("the target tier is not an upgrade of this purchase")]
    NotAnUpgrade,
    /// Another upgrade of the purchase is unpaid or being applied.
    #[error("another upgrade of this purchase is under way")]
    UpgradeInProgress,
    /// The house seller's Xano credential is the service's own (`XANO_ACCESS_TOKEN`).
    #[error("the house seller uses the service's own Xano credential")]
    HouseCredential,
    /// A seller with listings offered a token of another Xano account than its listings'.
    #[error("this token is for another Xano account than the seller's listings")]
    XanoAccountChanged,
    /// A seller's listing needs the seller's Xano credential first (`PUT /v1/seller/xano`).
    #[error("set the seller's Xano credential first")]
    NoXanoCredential,
    /// Xano refuses the seller's stored credential: the seller replaces it.
    #[error("Xano refuses the seller's Xano credential; replace it (PUT /v1/seller/xano)")]
    SellerXanoRefused,
    /// The snippet is listed by another seller.
    #[error("this snippet is listed by another seller")]
    ListingOfAnotherSeller,
    /// The house is paid directly: it has no connected account to onboard or log in to.
    #[error("the house is paid directly and has no Stripe connected account")]
    HouseNotConnected,
    /// The seller has not finished Stripe onboarding (no account, or details not submitted).
    #[error("finish Stripe onboarding first (POST /v1/seller/stripe/onboarding)")]
    StripeNotOnboarded,
    /// A token minted for a purchase was sold from the pool meanwhile (a worker's retry case).
    #[error("minted token was sold from the pool")]
    TokenTaken,
    /// Only a dead job can be requeued.
    #[error("only a dead job can be requeued")]
    JobNotDead,
    /// The work of a dead job is already queued again (by the sweep, or another operator).
    #[error("a live job for the same work exists")]
    JobAlreadyLive,
    /// A seller revoking its own last unrevoked API key would lock itself out.
    #[error(
        "this is the seller's last unrevoked API key; issue a new one (POST /v1/seller/keys) first"
    )]
    LastSellerKey,
    /// A seller holds as many unrevoked API keys as it may.
    #[error("the seller holds as many unrevoked API keys as it may; revoke one first")]
    SellerKeyLimit,
    /// The house signs in with no API key: the operator acts for it with an admin token.
    #[error("the house has no API key: operators act for it with an admin token")]
    HouseHasNoKey,
    /// The house is the operator's own seller and cannot be suspended.
    #[error("the house cannot be suspended")]
    HouseNotSuspendable,
    /// The owner has as many webhook endpoints as it may (`webhooks::MAX_ENDPOINTS`).
    #[error("at most 10 webhook endpoints: delete one first")]
    WebhookEndpointLimit,
}

impl Conflict {
    /// The stable code.
    pub fn code(self) -> &'static str {
        match self {
            Self::TierNotOnSale => "tier_not_on_sale",
            Self::IdempotencyKeyReused => "idempotency_key_reused",
            Self::CheckoutSessionMismatch => "checkout_session_mismatch",
            Self::NotRefundable => "not_refundable",
            Self::NotRotatable => "not_rotatable",
            Self::NotUpgradable => "not_upgradable",
            Self::NotAnUpgrade => "not_an_upgrade",
            Self::UpgradeInProgress => "upgrade_in_progress",
            Self::HouseCredential => "house_credential",
            Self::XanoAccountChanged => "xano_account_changed",
            Self::NoXanoCredential => "no_xano_credential",
            Self::SellerXanoRefused => "seller_xano_refused",
            Self::ListingOfAnotherSeller => "listing_of_another_seller",
            Self::HouseNotConnected => "house_not_connected",
            Self::StripeNotOnboarded => "stripe_not_onboarded",
            Self::TokenTaken => "token_taken",
            Self::JobNotDead => "job_not_dead",
            Self::JobAlreadyLive => "job_already_live",
            Self::LastSellerKey => "last_seller_key",
            Self::SellerKeyLimit => "seller_key_limit",
            Self::HouseHasNoKey => "house_has_no_key",
            Self::HouseNotSuspendable => "house_not_suspendable",
            Self::WebhookEndpointLimit => "webhook_endpoint_limit",
        }
    }
}

impl From<Conflict> for Error {
    fn from(conflict: Conflict) -> Self {
        Self::Conflict(conflict)
    }
}

impl Error {
    pub fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        Self::Invalid {
            field,
            message: message.into(),
        }
    }

    /// A serialization failure or deadlock, or a transaction PostgreSQL ended because it sat idle
    /// (`idle_in_transaction_session_timeout`: this process was starved or paused mid-transaction,
    /// `db::DbConfig`): each rolled the whole transaction back, so it may simply be run again, on
    /// another connection.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Database(sqlx::Error::Database(e)) => {
                matches!(e.code().as_deref(), Some("40001" | "40P01" | "25P03"))
            }
            _ => false,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
