//! Snippets, the paged snippet listing, and a snippet's install-access level.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::lenient::null_as_default;
use crate::timestamp::{self, Timestamp};

/// A snippet owned by the account (`GET /snippet`, `GET`/`POST /snippet/{canonical}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Snippet {
    /// The snippet's id, the tail of `https://www.xano.com/snippet/<canonical>/`. Required:
    /// without it the snippet cannot be addressed, so its absence is a decode error.
    pub canonical: String,
    /// Title.
    #[serde(default)]
    pub name: Option<String>,
    /// Review status; the only documented value is `pending`.
    #[serde(default)]
    pub review: Option<String>,
    /// Free-text review note.
    #[serde(default)]
    pub review_exception: Option<String>,
    /// Who may install it. Xano documents `public` as the default.
    #[serde(default)]
    pub install_access: Option<InstallAccess>,
    /// Text shown with the access method.
    #[serde(default)]
    pub install_access_description: Option<String>,
    /// Featured in Xano's directory.
    #[serde(default)]
    pub featured: Option<bool>,
    /// Verified by Xano.
    #[serde(default)]
    pub verified: Option<bool>,
    /// Creation time.
    #[serde(default, deserialize_with = "timestamp::deserialize_option")]
    pub created_at: Option<Timestamp>,
    /// Last update time.
    #[serde(default, deserialize_with = "timestamp::deserialize_option")]
    pub updated_at: Option<Timestamp>,
}

/// One page of `GET /snippet?page=N`. Follow `next_page` until it is `None`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SnippetPage {
    /// The page this is.
    #[serde(rename = "curPage", default)]
    pub cur_page: Option<i64>,
    /// The page to request next; `None` on the last page.
    #[serde(rename = "nextPage", default)]
    pub next_page: Option<i64>,
    /// The previous page; `None` on the first page.
    #[serde(rename = "prevPage", default)]
    pub prev_page: Option<i64>,
    /// The snippets on this page (`null` reads as empty).
    #[serde(default, deserialize_with = "null_as_default")]
    pub items: Vec<Snippet>,
}

/// A snippet's install-access level (`install_access`).
///
/// A value this client does not know is kept in [`InstallAccess::Other`] rather than rejected,
/// and serialises back unchanged.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum InstallAccess {
    /// `public`: listed in Xano's directory, installable by anyone.
    Public,
    /// `link`: unlisted, installable by anyone with the link.
    Link,
    /// `token`: installable only with an install token. The marketplace's level.
    Token,
    /// Any other value, verbatim.
    Other(String),
}

impl InstallAccess {
    /// The wire value (`public`, `link`, `token`, or the unknown value as received).
    pub fn as_str(&self) -> &str {
        match self {
            Self::Public => "public",
            Self::Link => "link",
            Self::Token => "token",
            Self::Other(value) => value,
        }
    }
}

impl From<&str> for InstallAccess {
    fn from(value: &str) -> Self {
        match value {
            "public" => Self::Public,
            "link" => Self::Link,
            "token" => Self::Token,
            other => Self::Other(other.to_owned()),
        }
    }
}

impl fmt::Display for InstallAccess {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for InstallAccess {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for InstallAccess {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = String::deserialize(deserializer)?;
        Ok(Self::from(value.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_in_xano_form_decodes_with_all_three_timestamp_forms_and_extra_keys() {
        let page: SnippetPage =
            serde_json::from_str(include_str!("../../tests/fixtures/snippet_page_xano.json"))
                .unwrap();

        assert_eq!(
            (page.cur_page, page.next_page, page.prev_page),
            (Some(1), Some(2), None)
        );
        let [first, second] = page.items.as_slice() else {
            panic!("expected two snippets, got {}", page.items.len());
        };
        assert_eq!(first.canonical, "kRG3t_-i");
        assert_eq!(first.install_access, Some(InstallAccess::Token));
        assert_eq!(
            first.updated_at.map(|t| t.to_rfc3339()),
            Some("2023-05-09T21:31:20+00:00".to_owned())
        );
        assert_eq!(
            second.created_at.map(|t| t.to_rfc3339()),
            Some("2023-03-23T23:32:56+00:00".to_owned()),
            "epoch milliseconds"
        );
        assert_eq!(second.updated_at, None);
        assert_eq!(second.featured, None);
    }

    #[test]
    fn a_page_in_the_origin_guide_form_decodes_with_rfc3339_timestamps() {
        let page: SnippetPage =
            serde_json::from_str(include_str!("../../tests/fixtures/snippet_page_guide.json"))
                .unwrap();

        assert_eq!(page.next_page, None);
        assert_eq!(page.items.len(), 1);
        assert_eq!(page.items[0].review.as_deref(), Some("approved"));
        assert_eq!(page.items[0].verified, Some(true));
        assert_eq!(
            page.items[0].created_at.map(|t| t.to_rfc3339()),
            Some("2024-01-20T09:15:00+00:00".to_owned())
        );
    }

    #[test]
    fn an_unknown_install_access_is_preserved_and_round_trips() {
        let access: InstallAccess = serde_json::from_str(r#""invite_only""#).unwrap();

        assert_eq!(access, InstallAccess::Other("invite_only".to_owned()));
        assert_eq!(serde_json::to_string(&access).unwrap(), r#""invite_only""#);
    }

    #[test]
    fn known_install_access_values_round_trip() {
        for (wire, access) in [
            ("public", InstallAccess::Public),
            ("link", InstallAccess::Link),
            ("token", InstallAccess::Token),
        ] {
            let json = format!("\"{wire}\"");
            assert_eq!(
                serde_json::from_str::<InstallAccess>(&json).unwrap(),
                access
            );
            assert_eq!(serde_json::to_string(&access).unwrap(), json);
        }
    }

    #[test]
    fn a_page_with_null_items_is_an_empty_page() {
        let page: SnippetPage =
            serde_json::from_str(r#"{"curPage": 3, "nextPage": null, "items": null}"#).unwrap();

        assert!(page.items.is_empty());
    }
}
