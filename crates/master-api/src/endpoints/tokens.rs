//! Install tokens: list, create, update, delete under `/snippet/{canonical}/token`.

use reqwest::Method;
use serde_json::json;

use super::snippets::snippet_path;
use crate::transport::{Request, Segment};
use crate::{Client, Error, InstallToken, TokenValue};

impl Client {
    /// `GET /snippet/{canonical}/token`: every live install token of the snippet (a plain
    /// array, no paging). This is the call to reconcile with after an outcome-unknown
    /// [`Client::create_token`].
    pub async fn tokens(&self, canonical: &str) -> Result<Vec<InstallToken>, Error> {
        self.call(Request {
            method: Method::GET,
            template: "/snippet/{canonical}/token",
            segments: tokens_path(canonical),
            page: None,
            body: None,
            idempotent: true,
            canonical: Some(canonical),
        })
        .await
    }

    /// `POST /snippet/{canonical}/token`: mints a new install token allowing `max_installs`
    /// installs. Xano generates the value.
    ///
    /// **Not idempotent, so never blindly retried.** It is retried only when Xano cannot have
    /// created anything: on a 429 (the request was refused) and when the connection could not be
    /// opened (nothing was sent). A timeout, a 5xx or a connection lost after sending returns an
    /// error whose [`Error::is_outcome_unknown`] is true: the token may exist, so list tokens
    /// ([`Client::tokens`]) before minting again. An [`Error::Decode`] here means Xano answered
    /// 2xx, so the token *was* created; reconcile likewise.
    pub async fn create_token(
        &self,
        canonical: &str,
        max_installs: i64,
    ) -> Result<InstallToken, Error> {
        non_negative("max_installs", max_installs)?;
        self.call(Request {
            method: Method::POST,
            template: "/snippet/{canonical}/token",
            segments: tokens_path(canonical),
            page: None,
            body: Some(json!({ "max_installs": max_installs })),
            idempotent: false,
            canonical: Some(canonical),
        })
        .await
    }

    /// `POST /snippet/{canonical}/token/{token}`: sets both counters. Send the current
    /// `current_installs` back when only `max_installs` should change. Idempotent (absolute
    /// values), so retried like a GET.
    pub async fn update_token(
        &self,
        canonical: &str,
        token: &TokenValue,
        max_installs: i64,
        current_installs: i64,
    ) -> Result<InstallToken, Error> {
        non_negative("max_installs", max_installs)?;
        non_negative("current_installs", current_installs)?;
        self.call(Request {
            method: Method::POST,
            template: "/snippet/{canonical}/token/{token}",
            segments: token_path(canonical, token),
            page: None,
            body: Some(json!({
                "max_installs": max_installs,
                "current_installs": current_installs,
            })),
            idempotent: true,
            canonical: Some(canonical),
        })
        .await
    }

    /// `DELETE /snippet/{canonical}/token/{token}`: revokes the token. A 404 counts as success:
    /// the token is gone either way (e.g. an earlier attempt deleted it but its response was
    /// lost). Note that Xano answers 404 for an unknown snippet too.
    pub async fn delete_token(&self, canonical: &str, token: &TokenValue) -> Result<(), Error> {
        let result = self
            .send(Request {
                method: Method::DELETE,
                template: "/snippet/{canonical}/token/{token}",
                segments: token_path(canonical, token),
                page: None,
                body: None,
                idempotent: true,
                canonical: Some(canonical),
            })
            .await;
        match result {
            Ok(_) | Err(Error::NotFound) => Ok(()),
            Err(err) => Err(err),
        }
    }
}

fn tokens_path(canonical: &str) -> Vec<Segment<'_>> {
    let mut segments = snippet_path(canonical);
    segments.push(Segment::Fixed("token"));
    segments
}

fn token_path<'a>(canonical: &'a str, token: &'a TokenValue) -> Vec<Segment<'a>> {
    let mut segments = tokens_path(canonical);
    segments.push(Segment::Value {
        name: "token",
        value: token.expose(),
    });
    segments
}

fn non_negative(name: &'static str, value: i64) -> Result<(), Error> {
    if value < 0 {
        return Err(Error::InvalidArgument {
            name,
            reason: "must not be negative",
        });
    }
    Ok(())
}
