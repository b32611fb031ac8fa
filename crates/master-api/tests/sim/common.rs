//! Shared set-up: a simulator, a client pointed at it, and a guard against hangs.

use std::future::Future;
use std::time::Duration;

use master_api::{Client, ClientBuilder, RetryPolicy, SecretString, TokenValue};
use sandbox::xano::{XanoSim, XanoSimConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use url::Url;

pub const CANONICAL: &str = "kRG3t_-i";

/// Fast retries so tests exercise the policy without waiting on production delays.
pub fn fast_retry() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 8,
        base_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(100),
        max_elapsed: Duration::from_secs(10),
    }
}

/// A simulator with one snippet, [`CANONICAL`].
pub async fn start_sim() -> XanoSim {
    let sim = XanoSim::start(XanoSimConfig::default()).await.unwrap();
    sim.add_snippet(CANONICAL, "Token Share Test");
    sim
}

/// A client for the simulator's default account, with fast retries and a 5 s timeout.
pub fn client_for(sim: &XanoSim) -> ClientBuilder {
    Client::builder(SecretString::from(sim.access_token()))
        .base_url(sim.base_url())
        .retry(fast_retry())
        .timeout(Duration::from_secs(5))
}

/// Fails the test instead of hanging when `future` takes longer than 30 s.
pub async fn within<F: Future>(future: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(30), future)
        .await
        .expect("the call hung for 30 s")
}

/// Creates a one-install token on [`CANONICAL`] through `client`, for tests about what happens to
/// an existing token; returns its value.
pub async fn existing_token(client: &Client) -> TokenValue {
    within(client.create_token(CANONICAL, 1))
        .await
        .unwrap()
        .token
}

/// A one-shot HTTP server that answers every request with `status` and `body`, for responses the
/// simulator (being faithful) never sends: malformed bodies, undocumented statuses.
pub async fn canned_server(status: u16, body: &'static str) -> Url {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut request = vec![0_u8; 8192];
                let _ = socket.read(&mut request).await;
                let response = format!(
                    "HTTP/1.1 {status} Canned\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = socket.write_all(response.as_bytes()).await;
                let _ = socket.shutdown().await;
            });
        }
    });
    Url::parse(&format!("http://{addr}/api:meta")).unwrap()
}
