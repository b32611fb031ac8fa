//! Whose Xano a listing's calls go to: the house's listings use the service's own credential
//! (`XANO_ACCESS_TOKEN`, [`Market::xano`]); a seller's listings use the seller's own, opened from
//! its seal (`seller_xano`) into a client of its own (its rate limiter is the account's), built once
//! per credential and rebuilt when the seller replaces it. Every job and reconciliation asks here
//! first, so no call for one seller's snippet ever carries another's token.

use sqlx::PgPool;
use uuid::Uuid;

use crate::{Error, ListingId, Market, Result, keys};

/// A seller's Xano plan, as declared: Xano's limits are per account.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum XanoPlan {
    /// Xano's free plan: 10 requests per 20 seconds.
    Free,
    /// A paid plan (Xano documents no limit): the service's own `XANO_RATE_LIMIT`.
    Paid,
}

impl XanoPlan {
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "free" => Ok(Self::Free),
            "paid" => Ok(Self::Paid),
            _ => Err(Error::invalid("plan", "must be free or paid")),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Free => "free",
            Self::Paid => "paid",
        }
    }

    /// The pace of this plan's client, given the service's own limit.
    pub fn rate_limit(self, service: master_api::RateLimit) -> master_api::RateLimit {
        match self {
            Self::Free => master_api::RateLimit::XANO_FREE_PLAN,
            Self::Paid => service,
        }
    }
}

/// The client for one account, and whose it is.
#[derive(Clone, Debug)]
pub struct XanoOf {
    pub client: master_api::Client,
    /// `None`: the service's own credential (the house's listings).
    pub seller: Option<SellerCredential>,
}

/// A seller's credential a client was built with: the seller and the credential's fingerprint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SellerCredential {
    pub seller: Uuid,
    pub fingerprint: Vec<u8>,
}

/// The Xano the calls about `listing` go to.
pub async fn for_listing(market: &Market, listing: ListingId) -> Result<XanoOf> {
    let seller =
        sqlx::query_scalar::<_, Uuid>("select seller_id from listing where listing_id = $1")
            .bind(listing)
            .fetch_optional(&market.db)
            .await?
            .ok_or(Error::NotFound("listing"))?;
    for_seller(market, seller).await
}

/// The Xano of `seller`'s account (the service's own for the house). A seller with no credential
/// set is `NotFound("Xano credential")`.
pub async fn for_seller(market: &Market, seller: Uuid) -> Result<XanoOf> {
    let Some((key_id, sealed, fingerprint, plan)) = stored(&market.db, seller).await? else {
        return Ok(XanoOf {
            client: market.xano.clone(),
            seller: None,
        });
    };
    // A client is kept per credential and plan: a plan declared anew rebuilds it at its pace.
    let built_with = [fingerprint.as_slice(), plan.as_str().as_bytes()].concat();
    let client = if let Some(client) = market.account_clients().get(seller, &built_with) {
        client
    } else {
        let token = keys::open_seller_credential(&market.envelope, seller, key_id, sealed)?;
        let client = market
            .xano
            .for_account(token, plan.rate_limit(market.xano.rate_limit()))
            .map_err(Error::Xano)?;
        market
            .account_clients()
            .put(seller, built_with, client.clone());
        client
    };
    Ok(XanoOf {
        client,
        seller: Some(SellerCredential {
            seller,
            fingerprint,
        }),
    })
}

/// A seller's sealed credential: its key id, the seal, its fingerprint and the declared plan.
type Stored = (String, Vec<u8>, Vec<u8>, XanoPlan);

/// `seller`'s sealed credential, unless `seller` is the house (`None`). A seller other than the
/// house without one cannot have its calls made.
async fn stored(db: &PgPool, seller: Uuid) -> Result<Option<Stored>> {
    let row = sqlx::query_as::<
        _,
        (
            bool,
            Option<String>,
            Option<Vec<u8>>,
            Option<Vec<u8>>,
            Option<String>,
        ),
    >(
        "select s.house, c.key_id, c.sealed, c.fingerprint, c.plan
         from seller s left join seller_xano_credential c using (seller_id)
         where s.seller_id = $1",
    )
    .bind(seller)
    .fetch_optional(db)
    .await?
    .ok_or(Error::NotFound("seller"))?;
    match row {
        (true, ..) => Ok(None),
        (false, Some(key_id), Some(sealed), Some(fingerprint), Some(plan)) => {
            Ok(Some((key_id, sealed, fingerprint, XanoPlan::parse(&plan)?)))
        }
        _ => Err(Error::NotFound("Xano credential")),
    }
}
