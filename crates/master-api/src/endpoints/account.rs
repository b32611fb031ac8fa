//! `GET /auth/me`, `GET /instance`, `GET /instance/{name}`.

use reqwest::Method;

use crate::transport::{Request, Segment};
use crate::{Client, Error, Instance, Me};

impl Client {
    /// `GET /auth/me`: the account behind the access token. The cheapest way to validate a
    /// token ([`Error::Unauthorized`] when it is invalid or expired).
    pub async fn me(&self) -> Result<Me, Error> {
        self.call(Request {
            method: Method::GET,
            template: "/auth/me",
            segments: vec![Segment::Fixed("auth"), Segment::Fixed("me")],
            page: None,
            body: None,
            idempotent: true,
            canonical: None,
        })
        .await
    }

    /// `GET /instance`: every instance of the account (a plain array, no paging).
    pub async fn instances(&self) -> Result<Vec<Instance>, Error> {
        self.call(Request {
            method: Method::GET,
            template: "/instance",
            segments: vec![Segment::Fixed("instance")],
            page: None,
            body: None,
            idempotent: true,
            canonical: None,
        })
        .await
    }

    /// `GET /instance/{name}`: one instance by its `name` (e.g. `x1234-4567-8901`).
    pub async fn instance(&self, name: &str) -> Result<Instance, Error> {
        self.call(Request {
            method: Method::GET,
            template: "/instance/{name}",
            segments: vec![
                Segment::Fixed("instance"),
                Segment::Value {
                    name: "name",
                    value: name,
                },
            ],
            page: None,
            body: None,
            idempotent: true,
            canonical: None,
        })
        .await
    }
}
