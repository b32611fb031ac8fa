//! Sellers on the wire: the admin API's invitation and list, and the seller API's own view.

use chrono::{DateTime, Utc};
use market_core::sellers::Seller;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

/// An invitation: who the seller is and where the platform writes to them.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InviteRequest {
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = "\\S",
        example = "Ada's snippets"
    )]
    pub name: String,
    #[schema(
        max_length = 254,
        example = "ada@example.com",
        pattern = "^[^@\\s\\x00-\\x1f\\x7f-\\x9f]+@[^@\\s\\x00-\\x1f\\x7f-\\x9f.][^@\\s\\x00-\\x1f\\x7f-\\x9f]*\\.[^@\\s\\x00-\\x1f\\x7f-\\x9f]*[^@\\s\\x00-\\x1f\\x7f-\\x9f.]$"
    )]
    pub contact_email: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SellerBody {
    pub seller_id: Uuid,
    pub name: String,
    pub contact_email: Option<String>,
    /// `active`, or `suspended` (its keys open nothing).
    #[schema(example = "active")]
    pub status: String,
    /// The operator's own seller: owner of every listing made without naming one. Paid directly:
    /// it has no Stripe connected account and pays no platform fee.
    pub house: bool,
    pub created_at: DateTime<Utc>,
    /// Where the seller is paid, as Stripe last said; `null` for the house.
    pub stripe: Option<StripeAccountBody>,
    /// The seller's own platform fee in basis points (1000 = 10 %); `null`: the service's
    /// (`MARKET_PLATFORM_FEE_BPS`).
    pub platform_fee_bps: Option<i32>,
}

/// A seller's Stripe connected account, as Stripe last described it (`account.updated`).
#[derive(Debug, Serialize, ToSchema)]
pub struct StripeAccountBody {
    /// `acct_…`; `null` until the seller first asks to onboard.
    pub account_id: Option<String>,
    /// Stripe takes charges for the account: the seller's tiers are on sale only while true.
    pub charges_enabled: bool,
    /// Stripe pays the account's balance out.
    pub payouts_enabled: bool,
    /// The seller finished Stripe's onboarding (a dashboard login link needs it).
    pub details_submitted: bool,
}

impl From<Seller> for SellerBody {
    fn from(s: Seller) -> Self {
        Self {
            seller_id: s.seller_id,
            name: s.name,
            contact_email: s.contact_email,
            status: s.status,
            house: s.house,
            created_at: s.created_at,
            stripe: (!s.house).then_some(StripeAccountBody {
                account_id: s.stripe.account_id,
                charges_enabled: s.stripe.charges_enabled,
                payouts_enabled: s.stripe.payouts_enabled,
                details_submitted: s.stripe.details_submitted,
            }),
            platform_fee_bps: s.platform_fee_bps,
        }
    }
}

/// A seller in the operator's list (`GET /v1/admin/sellers`): the seller, and its Xano credential.
#[derive(Debug, Serialize, ToSchema)]
pub struct AdminSellerBody {
    #[serde(flatten)]
    pub seller: SellerBody,
    /// The seller's own Xano credential (`PUT /v1/seller/xano`), never the token; `null` for the
    /// house (its credential is the service's: `GET /v1/admin/health`) and a seller who set none.
    pub xano: Option<XanoAccountBody>,
}

impl From<(Seller, Option<market_core::seller_xano::XanoAccount>)> for AdminSellerBody {
    fn from((seller, xano): (Seller, Option<market_core::seller_xano::XanoAccount>)) -> Self {
        Self {
            seller: seller.into(),
            xano: xano.map(Into::into),
        }
    }
}

/// A new seller and its API key: the only time the key is shown.
#[derive(Serialize, ToSchema)]
pub struct InvitedBody {
    pub seller: SellerBody,
    /// `Authorization: Bearer <api_key>` on the seller API (`/v1/seller/…`). Give it to the seller;
    /// it is not stored and cannot be shown again.
    pub api_key: String,
}

/// The key stays out of `Debug` (and so out of any log line).
impl std::fmt::Debug for InvitedBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InvitedBody")
            .field("seller", &self.seller)
            .field("api_key", &"[redacted]")
            .finish()
    }
}

/// A seller's Xano Metadata API access token, to be checked and stored sealed. Never sent back.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct XanoCredentialRequest {
    /// The token of the seller's own Xano account (Account settings → Metadata API).
    #[schema(min_length = 1, max_length = 4096)]
    pub access_token: String,
    /// The seller's Xano plan: `free` (Xano allows 10 requests per 20 seconds, and the service
    /// paces the seller's calls so) or `paid`; absent: as declared before, else `paid`.
    #[schema(pattern = "^(free|paid)$", example = "paid")]
    pub plan: Option<String>,
}

/// The token stays out of `Debug` (and so out of any log line).
impl std::fmt::Debug for XanoCredentialRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("XanoCredentialRequest")
            .field("access_token", &"[redacted]")
            .field("plan", &self.plan)
            .finish()
    }
}

/// What is known of a seller's Xano credential: never the token.
#[derive(Debug, Serialize, ToSchema)]
pub struct XanoAccountBody {
    /// The Xano account the token answered for.
    pub account_id: String,
    /// The first 8 hex digits of the token's fingerprint: which token is in use.
    #[schema(example = "3fa85f64")]
    pub display_id: String,
    pub set_at: DateTime<Utc>,
    pub checked_at: DateTime<Utc>,
    /// `healthy`, or `unauthorized`: Xano refused it, and the seller's work waits until it is
    /// replaced (`PUT /v1/seller/xano`) or works again (probed every 30 s).
    #[schema(example = "healthy")]
    pub state: String,
    pub refused_at: Option<DateTime<Utc>>,
    /// What Xano answered when it refused the token.
    pub last_error: Option<String>,
    /// The seller's jobs waiting for a working credential.
    pub parked_jobs: i64,
    /// The Xano plan the seller declared (`free` or `paid`): how fast its calls are paced.
    #[schema(example = "paid")]
    pub plan: String,
}

impl From<market_core::seller_xano::XanoAccount> for XanoAccountBody {
    fn from(a: market_core::seller_xano::XanoAccount) -> Self {
        Self {
            account_id: a.account_id,
            display_id: a.display_id,
            set_at: a.set_at,
            checked_at: a.checked_at,
            state: a.state,
            refused_at: a.refused_at,
            last_error: a.last_error,
            parked_jobs: a.parked_jobs,
            plan: a.plan,
        }
    }
}

/// A link to one of Stripe's hosted pages for the seller (onboarding, or the Express dashboard).
/// Single use; ask again for a fresh one.
#[derive(Serialize, ToSchema)]
pub struct HostedLinkBody {
    #[schema(example = "https://connect.stripe.com/setup/e/acct_1Nv0FGQ9RKHgCVdK/QaIWjW7o1Q8x")]
    pub url: String,
    /// When the link stops working (onboarding links: a few minutes); `null` when Stripe gives none.
    pub expires_at: Option<DateTime<Utc>>,
}

/// A link carries a one-time credential into Stripe: kept out of `Debug` and the logs.
impl std::fmt::Debug for HostedLinkBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostedLinkBody")
            .field("url", &"[redacted]")
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

impl From<market_core::provider::HostedLink> for HostedLinkBody {
    fn from(link: market_core::provider::HostedLink) -> Self {
        Self {
            url: link.url,
            expires_at: link.expires_at,
        }
    }
}

/// The seller's own platform fee, or `null` (or nothing) to go back to the service's.
#[derive(Debug, ToSchema)]
// For the document (`additionalProperties: false`); the reading below refuses unknown fields too.
#[serde(deny_unknown_fields)]
pub struct PlatformFeeRequest {
    /// Basis points from 0 to 10000 (1000 = 10 %); `null`: the service's rate.
    #[schema(minimum = 0, maximum = 10000, example = 800)]
    pub platform_fee_bps: Option<i64>,
}

/// Read from a JSON object only: serde would otherwise take an array (`[]`, `[800]`) for a struct.
impl<'de> Deserialize<'de> for PlatformFeeRequest {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Fields {
            #[serde(default, deserialize_with = "super::number::optional_integer")]
            platform_fee_bps: Option<i64>,
        }
        let object = serde_json::Map::<String, serde_json::Value>::deserialize(deserializer)?;
        let fields = Fields::deserialize(serde_json::Value::Object(object))
            .map_err(serde::de::Error::custom)?;
        Ok(Self {
            platform_fee_bps: fields.platform_fee_bps,
        })
    }
}
