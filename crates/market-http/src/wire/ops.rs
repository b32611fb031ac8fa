//! Operations on the wire: pools, jobs, what Xano refuses (credentials, snippets), reconciliation
//! reports and Xano instances (admin API and `market status`), readiness, and the webhook
//! acknowledgement.

use chrono::{DateTime, Utc};
use market_core::health::{CredentialHealth, ForbiddenListing, Readiness as CredentialReadiness};
use market_core::jobs::overview::{JobCount, JobRow, Overview};
use market_core::pool::PoolLevel;
use market_core::reconcile::Report;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

/// How full one tier version's pool is.
#[derive(Debug, Serialize, ToSchema)]
pub struct PoolLevelBody {
    pub tier_id: Uuid,
    pub listing_id: Uuid,
    pub slug: String,
    pub version: i32,
    pub active: bool,
    /// Unsold tokens.
    pub available: i64,
    /// Tokens held by purchases.
    pub assigned: i64,
    pub pool_low_water: i32,
    pub pool_target: i32,
}

impl From<PoolLevel> for PoolLevelBody {
    fn from(p: PoolLevel) -> Self {
        Self {
            tier_id: p.tier_id.0,
            listing_id: p.listing_id.0,
            slug: p.slug,
            version: p.version,
            active: p.active,
            available: p.available,
            assigned: p.assigned,
            pool_low_water: p.pool_low_water,
            pool_target: p.pool_target,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct JobsBody {
    /// Every kind and state present, with its count.
    pub counts: Vec<JobCountBody>,
    /// Jobs that need an operator's eye: dead, parked, or retried more than 5 times.
    pub attention: Vec<JobRowBody>,
    /// The credential in use in the worst state: `healthy` unless an instance's is refused.
    pub xano_credential: CredentialSummaryBody,
    /// Every credential instances recorded, in use first.
    pub xano_credentials: Vec<CredentialBody>,
    /// Listings whose snippet Xano forbids; their jobs are parked.
    pub forbidden_listings: Vec<ForbiddenListingBody>,
}

impl From<Overview> for JobsBody {
    fn from(o: Overview) -> Self {
        Self {
            xano_credential: CredentialSummaryBody::from(o.worst_credential()),
            counts: o.counts.into_iter().map(Into::into).collect(),
            attention: o.attention.into_iter().map(Into::into).collect(),
            xano_credentials: o.credentials.into_iter().map(Into::into).collect(),
            forbidden_listings: o.forbidden_listings.into_iter().map(Into::into).collect(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct JobCountBody {
    /// `replenish_pool`, `mint_for_purchase`, `delete_token` or `reconcile_listing`.
    pub kind: String,
    /// `queued`, `running`, `done`, `dead` or `parked`.
    pub state: String,
    pub count: i64,
}

impl From<JobCount> for JobCountBody {
    fn from(c: JobCount) -> Self {
        Self {
            kind: c.kind,
            state: c.state,
            count: c.count,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct JobRowBody {
    pub job_id: i64,
    pub kind: String,
    /// What the job is about: a tier, purchase, token or listing id.
    pub subject: String,
    pub state: String,
    pub attempt: i32,
    pub due_at: DateTime<Utc>,
    pub last_error: Option<String>,
    pub updated_at: DateTime<Utc>,
}

impl From<JobRow> for JobRowBody {
    fn from(j: JobRow) -> Self {
        Self {
            job_id: j.job_id,
            kind: j.kind,
            subject: j.subject,
            state: j.state,
            attempt: j.attempt,
            due_at: j.due_at,
            last_error: j.last_error,
            updated_at: j.updated_at,
        }
    }
}

/// `GET /v1/seller/jobs`: which of the seller's jobs.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct SellerJobsQuery {
    /// queued, running, parked, done or dead; all when absent.
    #[param(pattern = "^(queued|running|parked|done|dead)$")]
    pub state: Option<String>,
    /// 1-1000, default 100.
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
}

/// One Xano access token's health, named by its fingerprint (never the token).
#[derive(Debug, Serialize, ToSchema)]
pub struct CredentialBody {
    /// The first 8 hex digits of the token's keyed fingerprint.
    pub credential: String,
    /// `healthy`, `unauthorized` (401: unknown, expired or revoked token) or `forbidden` (403 on
    /// `GET /auth/me`: no rights).
    pub state: String,
    pub since: DateTime<Utc>,
    pub last_checked_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    /// When an instance using it last touched it (runners do every few seconds).
    pub last_seen_at: DateTime<Utc>,
    /// An instance used it within the last minute.
    pub in_use: bool,
}

impl From<CredentialHealth> for CredentialBody {
    fn from(c: CredentialHealth) -> Self {
        Self {
            credential: c.display_id,
            state: c.state,
            since: c.since,
            last_checked_at: c.last_checked_at,
            last_error: c.last_error,
            last_seen_at: c.last_seen_at,
            in_use: c.in_use,
        }
    }
}

/// The fleet's credentials in one word, for `GET /v1/admin/jobs` and `market status`.
#[derive(Debug, Serialize, ToSchema)]
pub struct CredentialSummaryBody {
    /// `healthy` unless a credential in use is refused; then that one's state.
    pub state: String,
    /// The credential this describes (none when no instance used one in the last minute).
    pub credential: Option<String>,
    pub since: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
}

impl From<Option<&CredentialHealth>> for CredentialSummaryBody {
    fn from(worst: Option<&CredentialHealth>) -> Self {
        match worst {
            Some(c) => Self {
                state: c.state.clone(),
                credential: Some(c.display_id.clone()),
                since: Some(c.since),
                last_error: c.last_error.clone(),
            },
            None => Self {
                state: "healthy".into(),
                credential: None,
                since: None,
                last_error: None,
            },
        }
    }
}

/// A listing whose snippet Xano refuses (403) while the credential works.
#[derive(Debug, Serialize, ToSchema)]
pub struct ForbiddenListingBody {
    pub listing_id: Uuid,
    pub canonical: String,
    pub since: DateTime<Utc>,
    /// The last probe of the snippet; the next is due a probe interval later.
    pub last_checked_at: DateTime<Utc>,
    pub last_error: String,
    /// The credential that last met the 403.
    pub seen_by: String,
    /// Jobs parked until Xano allows the snippet again.
    pub parked_jobs: i64,
}

impl From<ForbiddenListing> for ForbiddenListingBody {
    fn from(f: ForbiddenListing) -> Self {
        Self {
            listing_id: f.listing_id.0,
            canonical: f.canonical,
            since: f.since,
            last_checked_at: f.last_checked_at,
            last_error: f.last_error,
            seen_by: f.seen_by,
            parked_jobs: f.parked_jobs,
        }
    }
}

/// What Xano refuses: this instance's credential (at the top, as before), every credential, and
/// the listings whose snippet it forbids.
#[derive(Debug, Serialize, ToSchema)]
pub struct HealthBody {
    /// This instance's credential: the first 8 hex digits of its fingerprint.
    pub credential: String,
    /// This instance's credential's state: `healthy`, `unauthorized` or `forbidden`.
    pub state: String,
    pub since: DateTime<Utc>,
    pub last_checked_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    /// `/readyz` says not ready: this instance's credential is refused while another one works.
    pub drain: bool,
    pub credentials: Vec<CredentialBody>,
    pub forbidden_listings: Vec<ForbiddenListingBody>,
}

impl HealthBody {
    pub fn new(
        own: CredentialReadiness,
        credentials: Vec<CredentialHealth>,
        forbidden: Vec<ForbiddenListing>,
    ) -> Self {
        let drain = own.should_drain();
        let c = own.credential;
        Self {
            credential: c.display_id,
            state: c.state,
            since: c.since,
            last_checked_at: c.last_checked_at,
            last_error: c.last_error,
            drain,
            credentials: credentials.into_iter().map(Into::into).collect(),
            forbidden_listings: forbidden.into_iter().map(Into::into).collect(),
        }
    }
}

/// What one reconciliation of one listing did.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReportBody {
    pub listing_id: Option<Uuid>,
    pub canonical: String,
    /// Tokens Xano listed.
    pub at_xano: u64,
    /// Unknown unused tokens taken into a pool.
    pub adopted: u64,
    /// Unknown unused tokens matching no tier, deleted.
    pub removed: u64,
    /// Unknown used tokens, recorded and left alone.
    pub foreign: u64,
    /// Tokens we hold that Xano no longer lists.
    pub missing: u64,
    /// Purchases whose token went missing, queued for a new one.
    pub reissued: u64,
    /// Deletions we had asked for and Xano has done.
    pub confirmed_deleted: u64,
    /// Tokens we had recorded as deleted that Xano still lists: deleted again.
    pub redeleted: u64,
    /// Tokens whose `current_installs` changed.
    pub refreshed: u64,
    /// Assigned tokens whose limit at Xano was not ours: their limit written again (by the
    /// purchase's `apply_upgrade` job, queued).
    pub limits_drifted: u64,
    /// Assigned tokens whose installs count at Xano fell below the one read there before (an
    /// update applied late): the count kept, and written back by the `apply_upgrade` job.
    pub counts_set_back: u64,
    /// Tokens marked missing that Xano lists again: given back to their buyer, or deleted when the
    /// buyer has a replacement.
    pub reappeared: u64,
    /// Tokens not marked missing because too many vanished at once to trust one answer from Xano;
    /// the next pass decides.
    pub held_back: u64,
}

impl From<Report> for ReportBody {
    fn from(r: Report) -> Self {
        Self {
            listing_id: r.listing_id.map(|id| id.0),
            canonical: r.canonical,
            at_xano: r.at_xano,
            adopted: r.adopted,
            removed: r.removed,
            foreign: r.foreign,
            missing: r.missing,
            reissued: r.reissued,
            confirmed_deleted: r.confirmed_deleted,
            redeleted: r.redeleted,
            refreshed: r.refreshed,
            limits_drifted: r.limits_drifted,
            counts_set_back: r.counts_set_back,
            reappeared: r.reappeared,
            held_back: r.held_back,
        }
    }
}

/// An instance of the Xano account, as an instance switcher or agency dashboard needs it.
#[derive(Debug, Serialize, ToSchema)]
pub struct InstanceBody {
    /// The instance's key (`name`, or the `id` some older responses carry).
    pub name: Option<String>,
    pub display: Option<String>,
    /// Host of the instance (`x1234-….xano.io`).
    pub host: Option<String>,
    pub custom_domain: Option<String>,
    /// The instance's own Metadata API.
    pub meta_api: Option<String>,
    pub meta_swagger: Option<String>,
    /// Whether the free-plan rate limit applies.
    pub rate_limit: Option<bool>,
}

impl From<master_api::Instance> for InstanceBody {
    fn from(i: master_api::Instance) -> Self {
        Self {
            host: i.host().map(str::to_owned),
            display: i.label().map(str::to_owned),
            meta_api: i.meta_api_url().map(String::from),
            meta_swagger: i.swagger_url().map(str::to_owned),
            custom_domain: i.custom_domain,
            rate_limit: i.rate_limit,
            name: i.name.or(i.id),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Readiness {
    /// `ready` or `not_ready`.
    pub status: &'static str,
    /// `sandbox` or `live`.
    pub mode: &'static str,
    pub database: &'static str,
    /// The read replica (`DATABASE_READ_URL`): `ok` or `unreachable`; absent without one. An
    /// unreachable replica does not make the instance unready (the reads there tolerate it: the
    /// reports and the catalog answer 503 until it is back or unset).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub read_replica: Option<&'static str>,
    pub migrations: &'static str,
    /// This instance's Xano credential: `healthy`, `unauthorized` or `forbidden`. Refused, it makes
    /// the instance not ready only while another instance's credential works: when every one is
    /// refused, sales go on from the pools and draining would only take them down too.
    pub xano_credential: String,
    /// This instance's credential: the first 8 hex digits of its fingerprint.
    pub xano_credential_id: String,
    /// Why the instance is not ready, in words (absent when ready).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookAck {
    pub received: bool,
    /// What the event did: `fulfilled`, `duplicate`, `ignored`, `ignored_mode_mismatch`,
    /// `stored_unreadable` (verified but lacking what its fact needs: kept for a replay), …
    pub outcome: String,
}

/// `market status`: what `GET /v1/admin/pools` and `GET /v1/admin/jobs` show, together.
#[derive(Debug, Serialize)]
pub struct StatusBody {
    pub pools: Vec<PoolLevelBody>,
    pub jobs: JobsBody,
}

/// A dead job put back in the queue.
#[derive(Debug, Serialize, ToSchema)]
pub struct JobRequeued {
    pub job_id: i64,
    /// `queued`.
    pub state: String,
}
