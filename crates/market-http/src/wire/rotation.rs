//! A token rotation on the wire.

use chrono::{DateTime, Utc};
use market_core::rotation::Rotation;
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

/// A rotation: `pending` while the new token is prepared and the old one deleted, then `done`
/// (the purchase's receipt shows the new token) or `cancelled` (the purchase was closed meanwhile).
#[derive(Debug, Serialize, ToSchema)]
pub struct RotationBody {
    pub rotation_id: Uuid,
    pub purchase_id: Uuid,
    #[schema(example = "pending")]
    pub state: String,
    /// The installs the new token carries over from the old one, once known.
    pub installs_carried: Option<i64>,
    pub created_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

impl From<Rotation> for RotationBody {
    fn from(r: Rotation) -> Self {
        Self {
            rotation_id: r.rotation_id,
            purchase_id: r.purchase_id.0,
            state: r.state,
            installs_carried: r.installs_carried,
            created_at: r.created_at,
            finished_at: r.finished_at,
        }
    }
}
