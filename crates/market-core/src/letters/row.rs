//! An outbox row: what a message reports, and where it is.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::PurchaseId;

/// What a message reports. Stored as text in `mail_message.kind`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, sqlx::Type)]
#[sqlx(type_name = "text", rename_all = "snake_case")]
pub enum MailKind {
    /// The purchase is fulfilled: its token and how to install it.
    Receipt,
    /// Refunded, disputed or revoked: the token no longer works.
    AccessEnded,
    /// A dispute was decided for the buyer: access is back.
    AccessRestored,
    /// A single-use sign-in link to the buyer portal.
    PortalLink,
    /// The token was replaced: the new one, and that the old one no longer works.
    TokenRotated,
    /// An upgrade was applied: the token allows more installs (an upgrade's message).
    Upgraded,
    /// An upgrade was refunded, disputed or revoked: the limit comes down, never below what is used.
    UpgradeReversed,
    /// To a seller: one of its webhook endpoints was disabled after failing without a break.
    WebhookDisabled,
}

impl MailKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Receipt => "receipt",
            Self::AccessEnded => "access_ended",
            Self::AccessRestored => "access_restored",
            Self::PortalLink => "portal_link",
            Self::TokenRotated => "token_rotated",
            Self::Upgraded => "upgraded",
            Self::UpgradeReversed => "upgrade_reversed",
            Self::WebhookDisabled => "webhook_disabled",
        }
    }
}

/// Where a message is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, sqlx::Type)]
#[sqlx(type_name = "text", rename_all = "snake_case")]
pub enum MailState {
    Queued,
    Sent,
    Failed,
    NotSent,
}

impl MailState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Sent => "sent",
            Self::Failed => "failed",
            Self::NotSent => "not_sent",
        }
    }
}

/// An outbox row.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct Mail {
    pub mail_id: Uuid,
    pub kind: MailKind,
    pub fact: String,
    pub purchase_id: Option<PurchaseId>,
    /// The sign-in link a `portal_link` message carries.
    pub portal_link_id: Option<Uuid>,
    /// The endpoint a `webhook_disabled` message is about (gone if it was deleted since).
    pub webhook_endpoint_id: Option<Uuid>,
    pub recipient: String,
    pub state: MailState,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub sent_at: Option<DateTime<Utc>>,
}
