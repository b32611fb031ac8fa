//! A test's HTTP call that must answer JSON: sent, read and decoded, or the test fails saying
//! which of the three went wrong.

use reqwest::RequestBuilder;
use serde::de::DeserializeOwned;

/// Sends `request` and decodes its answer as JSON into `T`.
pub async fn json<T: DeserializeOwned>(request: RequestBuilder) -> T {
    request
        .send()
        .await
        .expect("the request was sent and answered")
        .json()
        .await
        .expect("the answer is JSON of the expected shape")
}
