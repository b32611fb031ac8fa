//! Listings: Xano snippets offered for sale, managed by operators.

use chrono::{DateTime, Utc};
use master_api::InstallAccess;
use serde::Serialize;
use sqlx::{PgConnection, PgPool};

use crate::audit::{Actor, Audit};
use crate::queue::{self, JobKind};
use crate::{Canonical, Error, ListingId, Result, db};

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
    pub seller_id: uuid::Uuid,
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
pub async fn save(
    db: &PgPool,
    xano: &master_api::Client,
    spec: &ListingSpec,
    actor: &Actor,
) -> Result<(Listing, ListingChange)> {
    spec.validate()?;
    prepare_snippet(xano, spec).await?;
    db::retry_transient(|| async {
        let mut tx = db.begin().await?;
        let saved = upsert(&mut tx, spec, actor).await?;
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
    spec.validate()?;
    let existing =
        sqlx::query_as::<_, Listing>("select * from listing where canonical = $1 for update")
            .bind(spec.canonical.as_str())
            .fetch_optional(&mut *conn)
            .await?;

    let (listing, change) = match existing {
        None => {
            let listing = sqlx::query_as::<_, Listing>(
                "insert into listing (canonical, title, description, active) values ($1, $2, $3, $4) returning *",
            )
            .bind(spec.canonical.as_str())
            .bind(spec.title.trim())
            .bind(&spec.description)
            .bind(spec.active)
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
