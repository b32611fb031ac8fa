//! Listings: Xano snippets offered for sale, managed by operators.

use chrono::{DateTime, Utc};
use master_api::InstallAccess;
use serde::Serialize;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::audit::{Actor, Audit};
use crate::queue::{self, JobKind};
use crate::{Canonical, Conflict, Error, ListingId, Market, Result, accounts, db};

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct Listing {
    pub listing_id: ListingId,
    pub canonical: String,
    pub title: String,
    pub description: String,
    pub active: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Its seller (`sellers`); the house's unless made for another.
    pub seller_id: Uuid,
}

/// What an operator says about a listing.
#[derive(Clone, Debug)]
pub struct ListingSpec {
    pub canonical: Canonical,
    pub title: String,
    pub description: String,
    pub active: bool,
}

impl ListingSpec {
    pub fn validate(&self) -> Result<()> {
        if self.title.trim().is_empty() {
            return Err(Error::invalid("title", "must not be empty"));
        }
        if self.title.chars().count() > 200 || self.description.chars().count() > 4000 {
            return Err(Error::invalid(
                "title",
                "title ≤ 200 and description ≤ 4000 characters",
            ));
        }
        Ok(())
    }
}

/// How an apply changed a listing.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "change")]
pub enum ListingChange {
    Created,
    Updated { fields: Vec<&'static str> },
    Unchanged,
}

/// Makes the snippet sellable at Xano (it must exist in the account; its `install_access` becomes
/// `token`, so only buyers holding a token can install it), then creates or updates the listing.
///
/// The Xano call comes first and holds no transaction: if it fails nothing is written, and running
/// the whole thing again is harmless because both writes set absolute values.
pub async fn prepare_snippet(xano: &master_api::Client, spec: &ListingSpec) -> Result<()> {
    let snippet = match xano.snippet(spec.canonical.as_str()).await {
        // The snippet is the resource the request names: a 404, like any unknown id.
        Err(master_api::Error::NotFound) => return Err(Error::NotFound("snippet")),
        other => other?,
    };
    let wanted_description = sale_description(spec);
    if snippet.install_access != Some(InstallAccess::Token)
        || snippet.install_access_description.as_deref() != Some(wanted_description.as_str())
    {
        xano.update_snippet_access(
            spec.canonical.as_str(),
            InstallAccess::Token,
            &wanted_description,
        )
        .await?;
    }
    Ok(())
}

/// The text Xano shows beside a token-only snippet.
fn sale_description(spec: &ListingSpec) -> String {
    format!(
        "{} — install with the access token from your purchase.",
        spec.title.trim()
    )
}

/// What an operator's "put this listing" does: the spec checked, the snippet made sellable at Xano
/// ([`prepare_snippet`]), then the row created or updated in a transaction of its own (run again
/// if PostgreSQL aborts it as a deadlock victim).
///
/// The snippet is checked with its owner's Xano (`accounts`): the service's own for a new listing
/// or a house one, the seller's for a seller's.
pub async fn save(
    market: &Market,
    spec: &ListingSpec,
    actor: &Actor,
) -> Result<(Listing, ListingChange)> {
    save_for(market, spec, None, actor).await
}

/// [`save`] for `seller` when given: the snippet checked with that seller's Xano and the listing
/// made theirs; a listing of another seller is refused (`listing_of_another_seller`).
pub async fn save_for(
    market: &Market,
    spec: &ListingSpec,
    seller: Option<Uuid>,
    actor: &Actor,
) -> Result<(Listing, ListingChange)> {
    spec.validate()?;
    let owner = match seller {
        Some(seller) => Some(seller),
        None => by_canonical(&market.db, spec.canonical.as_str())
            .await?
            .map(|l| l.seller_id),
    };
    let xano = match owner {
        Some(owner) => accounts::for_seller(market, owner)
            .await
            .map_err(|e| match e {
                Error::NotFound("Xano credential") => Error::Conflict(Conflict::NoXanoCredential),
                other => other,
            })?,
        None => accounts::XanoOf {
            client: market.xano.clone(),
            seller: None,
        },
    };
    prepare_snippet(&xano.client, spec)
        .await
        .map_err(|e| match (e, &xano.seller) {
            // The seller's own token, not the service's: theirs to replace.
            (Error::Xano(master_api::Error::Unauthorized), Some(_)) => {
                Error::Conflict(Conflict::SellerXanoRefused)
            }
            (e, _) => e,
        })?;
    db::retry_transient(|| async {
        let mut tx = market.db.begin().await?;
        let saved = upsert_for(&mut tx, spec, seller, actor).await?;
        tx.commit().await?;
        Ok(saved)
    })
    .await
}

/// Creates or updates the listing row (the snippet must have been prepared at Xano first), in the
/// caller's transaction.
pub async fn upsert(
    conn: &mut PgConnection,
    spec: &ListingSpec,
    actor: &Actor,
) -> Result<(Listing, ListingChange)> {
    upsert_for(conn, spec, None, actor).await
}

/// [`upsert`], the listing made `seller`'s when given (the house's otherwise, when new); a listing
/// of another seller is refused.
pub async fn upsert_for(
    conn: &mut PgConnection,
    spec: &ListingSpec,
    seller: Option<Uuid>,
    actor: &Actor,
) -> Result<(Listing, ListingChange)> {
    spec.validate()?;
    let existing =
        sqlx::query_as::<_, Listing>("select * from listing where canonical = $1 for update")
            .bind(spec.canonical.as_str())
            .fetch_optional(&mut *conn)
            .await?;

    let (listing, change) = match existing {
        Some(old) if seller.is_some_and(|s| s != old.seller_id) => {
            return Err(Conflict::ListingOfAnotherSeller.into());
        }
        None => {
            let listing = sqlx::query_as::<_, Listing>(
                "insert into listing (canonical, title, description, active, seller_id)
                 values ($1, $2, $3, $4, $5) returning *",
            )
            .bind(spec.canonical.as_str())
            .bind(spec.title.trim())
            .bind(&spec.description)
            .bind(spec.active)
            .bind(seller)
            .fetch_one(&mut *conn)
            .await?;
            (listing, ListingChange::Created)
        }
        Some(old) => {
            let mut fields = Vec::new();
            if old.title != spec.title.trim() {
                fields.push("title");
            }
            if old.description != spec.description {
                fields.push("description");
            }
            if old.active != spec.active {
                fields.push("active");
            }
            if fields.is_empty() {
                return Ok((old, ListingChange::Unchanged));
            }
            let listing = sqlx::query_as::<_, Listing>(
                "update listing set title = $2, description = $3, active = $4 where listing_id = $1 returning *",
            )
            .bind(old.listing_id)
            .bind(spec.title.trim())
            .bind(&spec.description)
            .bind(spec.active)
            .fetch_one(&mut *conn)
            .await?;
            (listing, ListingChange::Updated { fields })
        }
    };

    Audit::new(actor, "listing.applied")
        .listing(listing.listing_id)
        .detail(&change)
        .write(&mut *conn)
        .await?;
    // A new listing gets its first reconciliation at once: it adopts tokens left by an earlier life
    // of the listing, and from then on reconciliation reschedules itself.
    queue::enqueue(
        &mut *conn,
        JobKind::ReconcileListing,
        &listing.listing_id.to_string(),
    )
    .await?;
    Ok((listing, change))
}

pub async fn by_canonical(pool: &PgPool, canonical: &str) -> Result<Option<Listing>> {
    Ok(
        sqlx::query_as::<_, Listing>("select * from listing where canonical = $1")
            .bind(canonical)
            .fetch_optional(pool)
            .await?,
    )
}

pub async fn by_id(conn: &mut PgConnection, id: ListingId) -> Result<Listing> {
    sqlx::query_as::<_, Listing>("select * from listing where listing_id = $1")
        .bind(id)
        .fetch_optional(conn)
        .await?
        .ok_or(Error::NotFound("listing"))
}

pub async fn all(pool: &PgPool) -> Result<Vec<Listing>> {
    Ok(
        sqlx::query_as::<_, Listing>("select * from listing order by canonical")
            .fetch_all(pool)
            .await?,
    )
}
