//! `TestSim`: a simulator plus a reqwest client that speaks to it, one method per verb.

use std::time::Duration;

use reqwest::{Client, Response};
use sandbox::xano::{XanoSim, XanoSimConfig};
use serde_json::Value;

pub struct TestSim {
    pub sim: XanoSim,
    pub http: Client,
    pub token: String,
}

impl TestSim {
    pub async fn start() -> Self {
        Self::with(XanoSimConfig::default()).await
    }

    pub async fn with(config: XanoSimConfig) -> Self {
        let sim = XanoSim::start(config).await.expect("simulator starts");
        let http = Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .expect("client builds");
        let token = sim.access_token();
        Self { sim, http, token }
    }

    /// `path` is relative to the API base, e.g. `/snippet/abc/token`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.sim.base_url())
    }

    pub fn control(&self, path: &str) -> String {
        format!("{}{path}", self.sim.control_url())
    }

    pub async fn get(&self, path: &str) -> Response {
        self.get_as(&self.token, path).await
    }

    pub async fn get_as(&self, token: &str, path: &str) -> Response {
        self.http
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .expect("request is answered")
    }

    pub async fn post(&self, path: &str, body: &Value) -> Response {
        self.post_as(&self.token, path, body).await
    }

    pub async fn post_as(&self, token: &str, path: &str, body: &Value) -> Response {
        self.http
            .post(self.url(path))
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .expect("request is answered")
    }

    /// `POST /__sim{path}` on the control API.
    pub async fn control_post(&self, path: &str, body: &Value) -> Response {
        self.http
            .post(self.control(path))
            .json(body)
            .send()
            .await
            .expect("request is answered")
    }

    pub async fn delete(&self, path: &str) -> Response {
        self.http
            .delete(self.url(path))
            .bearer_auth(&self.token)
            .send()
            .await
            .expect("request is answered")
    }

    /// Creates a token with `max_installs` on `canonical` through the API; returns its value.
    pub async fn create_token(&self, canonical: &str, max_installs: i64) -> String {
        let body = serde_json::json!({ "max_installs": max_installs });
        let (status, token) = status_and_json(
            self.post(&format!("/snippet/{canonical}/token"), &body)
                .await,
        )
        .await;
        assert_eq!(status, 200, "{token}");
        token["token"].as_str().expect("token value").to_owned()
    }
}

pub async fn status_and_json(response: Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let body = response.json().await.expect("a JSON body");
    (status, body)
}

/// Asserts a Xano error body with the given status and code.
pub async fn assert_xano_error(response: Response, status: u16, code: &str) -> Value {
    let (actual, body) = status_and_json(response).await;
    assert_eq!(actual, status, "{body}");
    assert_eq!(body["code"], code, "{body}");
    assert!(body["message"].is_string(), "{body}");
    body
}

/// True for `2023-05-09 21:31:20+0000`.
pub fn is_xano_timestamp(value: &Value) -> bool {
    value.as_str().is_some_and(|text| {
        chrono::DateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%z").is_ok()
            && text.ends_with("+0000")
    })
}
