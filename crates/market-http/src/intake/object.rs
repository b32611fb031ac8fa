//! Pieces every object reader uses.

use serde::Deserialize;
use serde::de::DeserializeOwned;

/// An id, or the expanded object carrying it.
#[derive(Deserialize)]
#[serde(untagged)]
pub(super) enum Expandable {
    Id(String),
    Object { id: String },
}

impl Expandable {
    pub(super) fn id(self) -> String {
        match self {
            Self::Id(id) | Self::Object { id } => id,
        }
    }
}

/// The event's object read as `T`; the reason in words when it cannot be.
pub(super) fn object_of<T: DeserializeOwned>(
    object: serde_json::Value,
    what: &str,
) -> Result<T, String> {
    serde_json::from_value(object).map_err(|e| format!("the {what} object: {e}"))
}
