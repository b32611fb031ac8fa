//! The tiers file: listings and their tiers as code, applied with `market tiers apply FILE`.
//!
//! ```toml
//! [[listing]]
//! canonical = "kRG3t_-i"          # the Xano snippet
//! title = "Auth flow"
//! description = "Sign-up, login and password reset"
//!
//! [[listing.tier]]
//! slug = "solo"
//! name = "Solo"
//! price = 1900                    # minor units: $19.00
//! currency = "usd"
//! max_installs = 5
//! pool_low_water = 3              # optional (default 5)
//! pool_target = 10                # optional (default 10)
//! active = true                   # optional; false takes the tier off sale
//! ```
//!
//! Applying is idempotent: a second run changes nothing. Tiers missing from the file are left alone
//! (a partial file never takes anything off sale by omission); `active = false` does that. Changing a
//! tier's price, currency or `max_installs` makes a new version of it (see [`crate::tiers`]).
//! `--dry-run` computes the same changes inside a transaction that is rolled back. The whole file is
//! applied in one transaction: a file that fails half-way changes nothing.

use serde::Deserialize;
use sqlx::{PgConnection, PgPool};

use crate::audit::Actor;
use crate::listings::{self, ListingChange, ListingSpec};
use crate::tiers::{self, TierChange, TierSpec};
use crate::{Canonical, Currency, Error, Money, Result, Slug, db};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    listing: Vec<ListingEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListingEntry {
    canonical: String,
    title: String,
    #[serde(default)]
    description: String,
    #[serde(default = "yes")]
    active: bool,
    #[serde(default)]
    tier: Vec<TierEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TierEntry {
    slug: String,
    name: String,
    price: i64,
    currency: String,
    max_installs: i64,
    #[serde(default = "default_low_water")]
    pool_low_water: i32,
    #[serde(default = "default_target")]
    pool_target: i32,
    #[serde(default = "yes")]
    active: bool,
}

fn yes() -> bool {
    true
}
fn default_low_water() -> i32 {
    5
}
fn default_target() -> i32 {
    10
}

/// A parsed, validated tiers file.
#[derive(Debug, Clone)]
pub struct TiersFile {
    pub listings: Vec<(ListingSpec, Vec<TierSpec>)>,
}

impl TiersFile {
    /// Parses and validates; errors name the entry and the field.
    pub fn parse(text: &str) -> Result<Self, String> {
        let file: File = toml::from_str(text).map_err(|e| e.to_string())?;
        let mut listings = Vec::new();
        for entry in file.listing {
            let at = |field: &str| format!("listing `{}`: {field}", entry.canonical);
            let canonical = Canonical::parse(&entry.canonical).map_err(|e| at(&e.to_string()))?;
            let spec = ListingSpec {
                canonical,
                title: entry.title,
                description: entry.description,
                active: entry.active,
            };
            spec.validate().map_err(|e| at(&e.to_string()))?;
            let mut tiers = Vec::new();
            for tier in entry.tier {
                let at = |field: &str| {
                    format!(
                        "listing `{}`, tier `{}`: {field}",
                        entry.canonical, tier.slug
                    )
                };
                let currency = Currency::parse(&tier.currency).map_err(|e| at(&e.to_string()))?;
                let spec = TierSpec {
                    slug: Slug::parse(&tier.slug).map_err(|e| at(&e.to_string()))?,
                    name: tier.name,
                    price: Money::new(tier.price, currency).map_err(|e| at(&e.to_string()))?,
                    max_installs: tier.max_installs,
                    pool_low_water: tier.pool_low_water,
                    pool_target: tier.pool_target,
                    active: tier.active,
                };
                spec.validate().map_err(|e| at(&e.to_string()))?;
                if tiers.iter().any(|t: &TierSpec| t.slug == spec.slug) {
                    return Err(at("the slug appears twice"));
                }
                tiers.push(spec);
            }
            listings.push((spec, tiers));
        }
        Ok(Self { listings })
    }
}

/// What applying a file changed (or, in a dry run, would change).
#[derive(Debug, Clone)]
pub struct Diff {
    pub listings: Vec<ListingDiff>,
}

#[derive(Debug, Clone)]
pub struct ListingDiff {
    pub canonical: String,
    pub change: ListingChange,
    pub tiers: Vec<(String, TierChange)>,
}

impl Diff {
    pub fn is_empty(&self) -> bool {
        self.listings.iter().all(|l| {
            l.change == ListingChange::Unchanged
                && l.tiers.iter().all(|(_, change)| !change.is_change())
        })
    }
}

impl std::fmt::Display for Diff {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for listing in &self.listings {
            let mark = match &listing.change {
                ListingChange::Created => "+".to_owned(),
                ListingChange::Updated { fields } => format!("~ ({})", fields.join(", ")),
                ListingChange::Unchanged => "=".to_owned(),
            };
            writeln!(f, "{mark} listing {}", listing.canonical)?;
            for (slug, change) in &listing.tiers {
                let line = match change {
                    TierChange::Created { .. } => "+ created".to_owned(),
                    TierChange::NewVersion {
                        version,
                        moved_tokens,
                        retired_tokens,
                        ..
                    } => format!(
                        "~ new version {version} (terms changed; {moved_tokens} unsold tokens moved, {retired_tokens} retired)"
                    ),
                    TierChange::Updated { fields, .. } => {
                        format!("~ updated ({})", fields.join(", "))
                    }
                    TierChange::Reactivated { .. } => "+ back on sale".to_owned(),
                    TierChange::Deactivated { retired_tokens, .. } => {
                        format!("- off sale ({retired_tokens} unsold tokens retired)")
                    }
                    TierChange::Unchanged { .. } => "= unchanged".to_owned(),
                };
                writeln!(f, "    tier {slug}: {line}")?;
            }
        }
        Ok(())
    }
}

/// Applies `file` (or, with `dry_run`, computes what applying would change and rolls it back).
///
/// Before writing, each snippet is checked at Xano; when applying for real it is also switched to
/// token-only installs. A dry run only reads from Xano.
pub async fn apply(
    db: &PgPool,
    xano: &master_api::Client,
    file: &TiersFile,
    dry_run: bool,
    actor: &Actor,
) -> Result<Diff> {
    for (listing, _) in &file.listings {
        if dry_run {
            match xano.snippet(listing.canonical.as_str()).await {
                Err(master_api::Error::NotFound) => {
                    return Err(Error::invalid(
                        "canonical",
                        format!("{}: no such snippet at Xano", listing.canonical),
                    ));
                }
                other => {
                    other?;
                }
            }
        } else {
            listings::prepare_snippet(xano, listing).await?;
        }
    }

    db::retry_transient(|| async {
        let mut tx = db.begin().await?;
        let diff = write(&mut tx, file, actor).await?;
        if dry_run {
            tx.rollback().await?;
        } else {
            tx.commit().await?;
        }
        Ok(diff)
    })
    .await
}

/// Every listing and tier of the file, in the caller's transaction.
async fn write(conn: &mut PgConnection, file: &TiersFile, actor: &Actor) -> Result<Diff> {
    let mut diff = Diff {
        listings: Vec::new(),
    };
    for (spec, tier_specs) in &file.listings {
        let (listing, change) = listings::upsert(&mut *conn, spec, actor).await?;
        let mut tiers = Vec::new();
        for tier in tier_specs {
            let change = tiers::apply(&mut *conn, listing.listing_id, tier, actor).await?;
            tiers.push((tier.slug.to_string(), change));
        }
        diff.listings.push(ListingDiff {
            canonical: spec.canonical.to_string(),
            change,
            tiers,
        });
    }
    Ok(diff)
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = r#"
        [[listing]]
        canonical = "kRG3t_-i"
        title = "Auth flow"

        [[listing.tier]]
        slug = "solo"
        name = "Solo"
        price = 1900
        currency = "usd"
        max_installs = 5
    "#;

    #[test]
    fn a_file_parses_with_defaults() {
        let file = TiersFile::parse(EXAMPLE).unwrap();
        let (listing, tiers) = &file.listings[0];
        assert_eq!(listing.canonical.as_str(), "kRG3t_-i");
        assert_eq!(tiers[0].price.amount, 1900);
        assert_eq!((tiers[0].pool_low_water, tiers[0].pool_target), (5, 10));
        assert!(tiers[0].active);
    }

    #[test]
    fn errors_name_the_entry_and_the_field() {
        let bad = EXAMPLE.replace("price = 1900", "price = -1");
        let error = TiersFile::parse(&bad).unwrap_err();
        assert!(
            error.contains("tier `solo`") && error.contains("price"),
            "{error}"
        );

        let unknown = EXAMPLE.replace("max_installs = 5", "max_installs = 5\nmax_install = 6");
        assert!(
            TiersFile::parse(&unknown)
                .unwrap_err()
                .contains("max_install")
        );

        let twice = format!(
            "{EXAMPLE}\n[[listing.tier]]\nslug = \"solo\"\nname = \"x\"\nprice = 1\ncurrency = \"usd\"\nmax_installs = 1\n"
        );
        assert!(TiersFile::parse(&twice).unwrap_err().contains("twice"));
    }
}
