//! The account behind the access token, and its instances.

use serde::{Deserialize, Serialize};
use url::Url;

use super::lenient::{empty_as_none, string_or_number};
use crate::timestamp::{self, Timestamp};

/// The account the access token belongs to (`GET /auth/me`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Me {
    /// Account id. The spec types it as a string; a number is accepted and kept as its digits.
    #[serde(default, deserialize_with = "string_or_number")]
    pub id: Option<String>,
    /// Account holder's name.
    #[serde(default)]
    pub name: Option<String>,
    /// Account e-mail.
    #[serde(default)]
    pub email: Option<String>,
    /// Typed `string` in the spec with undocumented contents, so kept as raw JSON.
    #[serde(default)]
    pub extras: Option<serde_json::Value>,
}

/// One Xano instance of the account (`GET /instance`, `GET /instance/{name}`).
///
/// Decodes from the official shape (`name`, `display`, `xano_domain`, `custom_domain`,
/// `rate_limit`, `meta_api`, `meta_swagger`) and from the origin guide's shape (`id`, `name`,
/// `domain`, `swagger_spec`, `plan`, `status`, `created_at`). Every field is optional; the
/// accessor methods pick whichever form is present.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Instance {
    /// Official: the instance's identifier (`x1234-4567-8901`), the `{name}` of
    /// `GET /instance/{name}`. The guide uses it as a human label instead.
    #[serde(default)]
    pub name: Option<String>,
    /// Guide (and Xano CLI): an `id`, string or number. Not in the spec.
    #[serde(default, deserialize_with = "string_or_number")]
    pub id: Option<String>,
    /// Official: human label.
    #[serde(default)]
    pub display: Option<String>,
    /// Official: host only, no scheme.
    #[serde(default)]
    pub xano_domain: Option<String>,
    /// Guide: host only, no scheme.
    #[serde(default)]
    pub domain: Option<String>,
    /// Custom domain when one is set; `null`, `""` and absent are all `None`.
    #[serde(default, deserialize_with = "empty_as_none")]
    pub custom_domain: Option<String>,
    /// Official: probably "free-plan rate limiting applies" (unconfirmed, see spec §6).
    #[serde(default)]
    pub rate_limit: Option<bool>,
    /// URL of the instance's own Metadata API. Kept as text so a malformed value does not fail
    /// the whole listing; see [`Instance::meta_api_url`].
    #[serde(default)]
    pub meta_api: Option<String>,
    /// Official: URL of the instance's OpenAPI document.
    #[serde(default)]
    pub meta_swagger: Option<String>,
    /// Guide: URL of the instance's OpenAPI document.
    #[serde(default)]
    pub swagger_spec: Option<String>,
    /// Guide: plan name (`pro`, `starter`, ...).
    #[serde(default)]
    pub plan: Option<String>,
    /// Guide: lifecycle status (`active`, ...).
    #[serde(default)]
    pub status: Option<String>,
    /// Guide: creation time.
    #[serde(default, deserialize_with = "timestamp::deserialize_option")]
    pub created_at: Option<Timestamp>,
}

impl Instance {
    /// The instance's host: `xano_domain` (official) or else `domain` (guide).
    pub fn host(&self) -> Option<&str> {
        self.xano_domain.as_deref().or(self.domain.as_deref())
    }

    /// A human label: `display` when present, else `name`.
    pub fn label(&self) -> Option<&str> {
        self.display.as_deref().or(self.name.as_deref())
    }

    /// The OpenAPI document URL: `meta_swagger` (official) or else `swagger_spec` (guide).
    pub fn swagger_url(&self) -> Option<&str> {
        self.meta_swagger
            .as_deref()
            .or(self.swagger_spec.as_deref())
    }

    /// `meta_api` parsed as a URL. Xano's own CLI derives the instance origin from this rather
    /// than building the host itself, and so should callers.
    pub fn meta_api_url(&self) -> Option<Url> {
        self.meta_api
            .as_deref()
            .and_then(|text| Url::parse(text).ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture<T: serde::de::DeserializeOwned>(json: &str) -> T {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn me_decodes_and_ignores_unknown_fields() {
        let me: Me = fixture(include_str!("../../tests/fixtures/me.json"));

        assert_eq!(me.id.as_deref(), Some("1234"));
        assert_eq!(me.email.as_deref(), Some("ada@example.com"));
    }

    #[test]
    fn me_accepts_a_numeric_id() {
        let me: Me = fixture(r#"{"id": 7}"#);

        assert_eq!(me.id.as_deref(), Some("7"));
        assert_eq!(me.name, None);
    }

    #[test]
    fn instances_decode_from_the_official_shape() {
        let instances: Vec<Instance> =
            fixture(include_str!("../../tests/fixtures/instances_official.json"));

        let [full, empty_custom, sparse] = instances.as_slice() else {
            panic!("expected three instances, got {}", instances.len());
        };
        assert_eq!(full.name.as_deref(), Some("x1234-4567-8901"));
        assert_eq!(full.label(), Some("My Instance"));
        assert_eq!(full.host(), Some("x1234-4567-8901.n7.xano.io"));
        assert_eq!(full.custom_domain.as_deref(), Some("api.example.com"));
        assert_eq!(full.rate_limit, Some(true));
        assert_eq!(
            full.meta_api_url()
                .map(|url| url.origin().ascii_serialization()),
            Some("https://x1234-4567-8901.n7.xano.io".to_owned())
        );
        assert_eq!(
            full.swagger_url(),
            Some("https://x1234-4567-8901.n7.xano.io/apispec:meta?type=json")
        );
        assert_eq!(
            empty_custom.custom_domain, None,
            "\"\" means no custom domain"
        );
        assert_eq!(sparse.custom_domain, None, "null means no custom domain");
        assert_eq!(
            sparse.label(),
            Some("x5555-6666-7777"),
            "falls back to name"
        );
        assert_eq!(sparse.meta_api, None);
    }

    #[test]
    fn instances_decode_from_the_origin_guide_shape() {
        let instances: Vec<Instance> =
            fixture(include_str!("../../tests/fixtures/instances_guide.json"));

        let [prod, dev, numeric] = instances.as_slice() else {
            panic!("expected three instances, got {}", instances.len());
        };
        assert_eq!(prod.id.as_deref(), Some("prod-instance-123"));
        assert_eq!(prod.host(), Some("x8d0-doy0-xx99.n0.xano.io"));
        assert_eq!(
            prod.swagger_url(),
            Some("https://x8d0-doy0-xx99.n0.xano.io/api:metadata/swagger.json")
        );
        assert_eq!(prod.plan.as_deref(), Some("pro"));
        assert_eq!(prod.status.as_deref(), Some("active"));
        assert_eq!(
            prod.created_at.map(|t| t.to_rfc3339()),
            Some("2024-01-15T10:30:00+00:00".to_owned())
        );
        assert_eq!(dev.custom_domain, None);
        assert_eq!(numeric.id.as_deref(), Some("42"));
        assert_eq!(
            numeric.created_at.map(|t| t.to_rfc3339()),
            Some("2024-01-15T10:30:00+00:00".to_owned()),
            "epoch milliseconds decode to the same instant"
        );
    }
}
