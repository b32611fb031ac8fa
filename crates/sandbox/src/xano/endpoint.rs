//! The ten Master API endpoints and the router that maps a request line onto one of them.
//!
//! Routing is done by hand rather than with actix's router so that every request under `/api:meta`
//! (unknown ones included) goes through one pipeline that records it, and so that segments are
//! split *before* percent-decoding: a `%2F` inside a canonical stays inside that canonical.

use actix_web::http::Method;
use percent_encoding::percent_decode_str;
use serde::{Deserialize, Serialize};

/// One of the Master API's endpoints; faults can be narrowed to one of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Endpoint {
    /// `GET /auth/me`
    Me,
    /// `GET /instance`
    Instances,
    /// `GET /instance/{name}`
    Instance,
    /// `GET /snippet`
    Snippets,
    /// `GET /snippet/{canonical}`
    Snippet,
    /// `POST /snippet/{canonical}`
    UpdateSnippet,
    /// `GET /snippet/{canonical}/token`
    Tokens,
    /// `POST /snippet/{canonical}/token`
    CreateToken,
    /// `POST /snippet/{canonical}/token/{token}`
    UpdateToken,
    /// `DELETE /snippet/{canonical}/token/{token}`
    DeleteToken,
}

impl Endpoint {
    /// The path template, safe to log: it never contains a canonical or a token value.
    pub fn template(self) -> &'static str {
        match self {
            Self::Me => "/auth/me",
            Self::Instances => "/instance",
            Self::Instance => "/instance/{name}",
            Self::Snippets => "/snippet",
            Self::Snippet | Self::UpdateSnippet => "/snippet/{canonical}",
            Self::Tokens | Self::CreateToken => "/snippet/{canonical}/token",
            Self::UpdateToken | Self::DeleteToken => "/snippet/{canonical}/token/{token}",
        }
    }
}

/// A matched request: the endpoint plus its decoded path values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Route {
    Me,
    Instances,
    Instance { name: String },
    Snippets,
    Snippet { canonical: String },
    UpdateSnippet { canonical: String },
    Tokens { canonical: String },
    CreateToken { canonical: String },
    UpdateToken { canonical: String, token: String },
    DeleteToken { canonical: String, token: String },
}

#[derive(Clone, Copy)]
enum Verb {
    Get,
    Post,
    Delete,
}

impl Route {
    /// Matches `path` (the part after the `/api:meta` base, still percent-encoded). `None` means
    /// "no such endpoint", which Xano answers with a 404.
    pub(crate) fn parse(method: &Method, path: &str) -> Option<Self> {
        let raw: Vec<&str> = path.strip_prefix('/')?.split('/').collect();
        let mut segments = Vec::with_capacity(raw.len());
        for segment in raw {
            // An empty segment (`//`, trailing `/`) names nothing in the API.
            if segment.is_empty() {
                return None;
            }
            segments.push(percent_decode_str(segment).decode_utf8().ok()?.into_owned());
        }
        let verb = match *method {
            Method::GET => Verb::Get,
            Method::POST => Verb::Post,
            Method::DELETE => Verb::Delete,
            _ => return None,
        };
        let route = match (verb, segments.as_slice()) {
            (Verb::Get, [auth, me]) if auth == "auth" && me == "me" => Self::Me,
            (Verb::Get, [instance]) if instance == "instance" => Self::Instances,
            (Verb::Get, [instance, name]) if instance == "instance" => {
                Self::Instance { name: name.clone() }
            }
            (Verb::Get, [snippet]) if snippet == "snippet" => Self::Snippets,
            (Verb::Get, [snippet, canonical]) if snippet == "snippet" => Self::Snippet {
                canonical: canonical.clone(),
            },
            (Verb::Post, [snippet, canonical]) if snippet == "snippet" => Self::UpdateSnippet {
                canonical: canonical.clone(),
            },
            (Verb::Get, [snippet, canonical, token])
                if snippet == "snippet" && token == "token" =>
            {
                Self::Tokens {
                    canonical: canonical.clone(),
                }
            }
            (Verb::Post, [snippet, canonical, token])
                if snippet == "snippet" && token == "token" =>
            {
                Self::CreateToken {
                    canonical: canonical.clone(),
                }
            }
            (Verb::Post, [snippet, canonical, literal, token])
                if snippet == "snippet" && literal == "token" =>
            {
                Self::UpdateToken {
                    canonical: canonical.clone(),
                    token: token.clone(),
                }
            }
            (Verb::Delete, [snippet, canonical, literal, token])
                if snippet == "snippet" && literal == "token" =>
            {
                Self::DeleteToken {
                    canonical: canonical.clone(),
                    token: token.clone(),
                }
            }
            _ => return None,
        };
        Some(route)
    }

    /// The snippet the request names, if it names one.
    pub(crate) fn canonical(&self) -> Option<&str> {
        match self {
            Self::Me | Self::Instances | Self::Instance { .. } | Self::Snippets => None,
            Self::Snippet { canonical }
            | Self::UpdateSnippet { canonical }
            | Self::Tokens { canonical }
            | Self::CreateToken { canonical }
            | Self::UpdateToken { canonical, .. }
            | Self::DeleteToken { canonical, .. } => Some(canonical),
        }
    }

    pub(crate) fn endpoint(&self) -> Endpoint {
        match self {
            Self::Me => Endpoint::Me,
            Self::Instances => Endpoint::Instances,
            Self::Instance { .. } => Endpoint::Instance,
            Self::Snippets => Endpoint::Snippets,
            Self::Snippet { .. } => Endpoint::Snippet,
            Self::UpdateSnippet { .. } => Endpoint::UpdateSnippet,
            Self::Tokens { .. } => Endpoint::Tokens,
            Self::CreateToken { .. } => Endpoint::CreateToken,
            Self::UpdateToken { .. } => Endpoint::UpdateToken,
            Self::DeleteToken { .. } => Endpoint::DeleteToken,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_values_are_percent_decoded_after_splitting_so_they_cannot_add_segments() {
        let route = Route::parse(&Method::DELETE, "/snippet/kRG3t_-i/token/A%2FB").unwrap();
        assert_eq!(
            route,
            Route::DeleteToken {
                canonical: "kRG3t_-i".into(),
                token: "A/B".into()
            }
        );
    }

    #[test]
    fn unknown_paths_and_methods_match_nothing() {
        assert_eq!(Route::parse(&Method::GET, "/snippet/"), None);
        assert_eq!(Route::parse(&Method::PUT, "/snippet/abc"), None);
        assert_eq!(Route::parse(&Method::POST, "/auth/me"), None);
        assert_eq!(Route::parse(&Method::GET, "/nope"), None);
    }
}
