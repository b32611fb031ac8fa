//! The buyer portal on the wire: asking for a sign-in link, redeeming it, and the purchases a
//! session lists.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::purchases::PurchaseBody;

/// Ask for a sign-in link by email.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LinkRequest {
    /// The address the purchases were made with. Checked for shape only: one `@`, a dotted domain,
    /// no spaces or control characters, at most 254 characters.
    #[schema(
        max_length = 254,
        example = "ada@example.com",
        pattern = "^[^@\\s\\x00-\\x1f\\x7f-\\x9f]+@[^@\\s\\x00-\\x1f\\x7f-\\x9f.][^@\\s\\x00-\\x1f\\x7f-\\x9f]*\\.[^@\\s\\x00-\\x1f\\x7f-\\x9f]*[^@\\s\\x00-\\x1f\\x7f-\\x9f.]$"
    )]
    pub email: String,
}

/// The same answer for every address: whether it has bought is never said.
#[derive(Debug, Serialize, ToSchema)]
pub struct LinkRequested {
    #[schema(
        example = "If this address has bought here, a sign-in link is on its way. It works once, for 15 minutes."
    )]
    pub message: String,
}

/// Redeem a sign-in link: the part after `#portal=` in the link's URL.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SessionRequest {
    #[schema(max_length = 200)]
    pub link: String,
}

impl std::fmt::Debug for SessionRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionRequest { link: [redacted] }")
    }
}

/// A portal session: also set as an `HttpOnly`, `Secure`, `SameSite=Lax` cookie; API clients send
/// the token as `Authorization: Bearer`.
#[derive(Serialize, ToSchema)]
pub struct SessionBody {
    /// `ps_…`: shown once.
    pub token: String,
    pub expires_at: DateTime<Utc>,
}

impl std::fmt::Debug for SessionBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionBody")
            .field("token", &"[redacted]")
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// Every purchase of the session's email, newest first, with tokens and usage.
#[derive(Debug, Serialize, ToSchema)]
pub struct PortalPurchases {
    pub purchases: Vec<PurchaseBody>,
}
