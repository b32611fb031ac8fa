//! The public data types a test uses to seed and inspect the simulator, and Xano's timestamp format.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Formats a time the way the Master API does: `2023-05-09 21:31:20+0000` (space, no `T`, `+0000`).
pub fn xano_timestamp(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M:%S%z").to_string()
}

/// An account (the owner of an access token). `id` is a string, as the account spec types it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimAccount {
    pub id: String,
    pub name: String,
    pub email: String,
}

impl Default for SimAccount {
    fn default() -> Self {
        Self {
            id: "1".to_owned(),
            name: "Sim Seller".to_owned(),
            email: "seller@example.test".to_owned(),
        }
    }
}

/// An instance as `GET /instance` lists it; `meta_api` and `meta_swagger` are derived from
/// `xano_domain` when rendered, as the real service does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimInstance {
    pub name: String,
    pub display: String,
    pub xano_domain: String,
    #[serde(default)]
    pub custom_domain: Option<String>,
    #[serde(default)]
    pub rate_limit: bool,
}

/// The state of one access token, switchable at run time to provoke 401 and 403.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenState {
    #[default]
    Valid,
    /// Every request with the token gets a 401, like an expired or revoked token.
    Expired,
    /// Every request with the token gets a 403 `ERROR_CODE_ACCESS_DENIED`, like a token whose
    /// scopes or RBAC role no longer cover the call.
    Forbidden,
}

/// A snippet's `install_access` value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InstallAccess {
    #[default]
    Public,
    Link,
    Token,
}

impl InstallAccess {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Public => "public",
            Self::Link => "link",
            Self::Token => "token",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "public" => Some(Self::Public),
            "link" => Some(Self::Link),
            "token" => Some(Self::Token),
            _ => None,
        }
    }
}

/// A snippet as the simulator holds it (what a test needs to check after an update).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimSnippet {
    pub canonical: String,
    pub name: String,
    pub install_access: InstallAccess,
    pub install_access_description: String,
}

/// A live install token of a snippet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimToken {
    pub token: String,
    pub max_installs: i64,
    pub current_installs: i64,
}

/// Why a simulated buyer install was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[serde(tag = "error", rename_all = "snake_case")]
pub enum InstallError {
    #[error("no such snippet")]
    UnknownSnippet,
    /// Never issued for this snippet (a token of another snippet does not open this one).
    #[error("no such install token for this snippet")]
    UnknownToken,
    /// Issued once, then deleted through `DELETE /snippet/{canonical}/token/{token}`.
    #[error("the install token was revoked")]
    Revoked,
    #[error("the install token has used all of its {max_installs} installs")]
    LimitReached { max_installs: i64 },
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn timestamps_use_xanos_space_separated_plus_0000_form() {
        let at = Utc.with_ymd_and_hms(2023, 5, 9, 21, 31, 20).unwrap();
        assert_eq!(xano_timestamp(at), "2023-05-09 21:31:20+0000");
    }
}
