//! What every handler can reach: one `AppState`, shared through `web::Data`.

use market_core::receipt::ReceiptSecret;
use market_core::{FeeRate, Market};
use secrecy::SecretString;
use url::Url;

use crate::catalog_cache::CatalogCache;
use crate::limits::Limiters;
use crate::stripe::StripeGateway;

/// Whether the service talks to the real Xano and Stripe or to the in-process simulators.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Sandbox,
    Live,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sandbox => "sandbox",
            Self::Live => "live",
        }
    }
}

/// An admin: a name for the audit log, and the token that proves it.
#[derive(Clone, Debug)]
pub struct AdminToken {
    pub name: String,
    pub token: SecretString,
}

#[derive(Debug)]
pub struct AppState {
    pub market: Market,
    pub stripe: StripeGateway,
    pub receipts: ReceiptSecret,
    pub admins: Vec<AdminToken>,
    /// Where buyers reach this service (default success and cancel pages).
    pub public_url: Url,
    /// Origins (`scheme://host[:port]`) that storefront success and cancel URLs may point at: the
    /// public URL's and the CORS allow-list's. Anything else would make checkout an open redirect.
    pub return_origins: Vec<String>,
    pub mode: Mode,
    /// The public catalog, in memory; admin handlers invalidate it after their commits.
    pub catalog: CatalogCache,
    /// Per-client rate limits of the public endpoints.
    pub limits: Limiters,
    /// The platform's share of a seller's sale unless the seller has their own rate
    /// (`MARKET_PLATFORM_FEE_BPS`).
    pub platform_fee: FeeRate,
}

impl AppState {
    /// The primary: every write, and every read that decides a sale, a payment or access.
    pub fn db(&self) -> &sqlx::PgPool {
        &self.market.db
    }

    /// The pool for reads that tolerate lag (the catalog, the sales reports): a streaming
    /// replica's when `DATABASE_READ_URL` is set, else the primary's (`Market::read_db`).
    pub fn read_db(&self) -> &sqlx::PgPool {
        self.market.read_db()
    }
}

/// `scheme://host[:port]` of a URL, as browsers compare origins.
pub fn origin_of(url: &Url) -> String {
    url.origin().ascii_serialization()
}
