//! How every Stripe call is made: under our idempotency key where it writes, retried while it fails
//! in a way that may pass, counted by operation and outcome, and its failure put in words that
//! carry no request parameter.

use std::time::Duration;

use stripe::{IdempotencyKey, RequestStrategy};

#[derive(Debug, thiserror::Error)]
pub enum StripeFailure {
    /// Stripe answered 404 (for sessions: no such session).
    #[error("not found at Stripe")]
    NotFound,
    /// Stripe refused the request or could not be reached; the message is Stripe's error type only.
    #[error("Stripe request failed: {0}")]
    Failed(String),
}

/// Counts a Stripe call by operation and outcome (`stripe_calls_total`).
fn counted<T>(
    operation: &'static str,
    result: Result<T, StripeFailure>,
) -> Result<T, StripeFailure> {
    let outcome = match &result {
        Ok(_) => "ok",
        Err(StripeFailure::NotFound) => "not_found",
        Err(StripeFailure::Failed(_)) => "failed",
    };
    metrics::counter!("stripe_calls_total", "operation" => operation, "outcome" => outcome)
        .increment(1);
    result
}

/// Sends a request under our idempotency `key` (retried by [`idempotent_retries`]) and counts it
/// as `operation`. `send` builds the request with the strategy that carries the key.
pub(super) async fn keyed<T, F, Fut>(
    operation: &'static str,
    key: String,
    send: F,
) -> Result<T, StripeFailure>
where
    F: Fn(RequestStrategy) -> Fut,
    Fut: std::future::Future<Output = Result<T, stripe::StripeError>>,
{
    let key = IdempotencyKey::new(key).map_err(|e| StripeFailure::Failed(e.to_string()))?;
    let result = idempotent_retries(|| send(RequestStrategy::Idempotent(key.clone())))
        .await
        .map_err(|e| failure(&e));
    counted(operation, result)
}

/// Attempts of a request that carries our own idempotency key (async-stripe sends those once).
const IDEMPOTENT_ATTEMPTS: u32 = 3;

/// Sends a request that carries our idempotency key (or reads, which need none) up to
/// [`IDEMPOTENT_ATTEMPTS`] times while it fails in a way that may pass: no answer, a timeout, an answer that is not Stripe's (a proxy's or
/// a server's own 408 or 502 page), or a 408/409/429/5xx from Stripe. The key makes every attempt
/// the same request to Stripe: a retry can neither create a second session nor refund twice.
///
/// Found by the chaos suite: an instance paused (`SIGSTOP`) after opening a connection to Stripe
/// but before sending its request got a 408 from the server once it was continued, and the buyer's
/// checkout failed with a 502 although Stripe was fine; one more attempt succeeds.
pub(super) async fn idempotent_retries<T, F, Fut>(mut send: F) -> Result<T, stripe::StripeError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, stripe::StripeError>>,
{
    let mut attempt = 1;
    loop {
        match send().await {
            Err(e) if attempt < IDEMPOTENT_ATTEMPTS && transient(&e) => {
                tracing::warn!(attempt, error = %failure(&e), "Stripe request failed; retrying");
                tokio::time::sleep(Duration::from_millis(200 * u64::from(attempt))).await;
                attempt += 1;
            }
            result => return result,
        }
    }
}

fn transient(e: &stripe::StripeError) -> bool {
    match e {
        stripe::StripeError::Stripe(_, status) => {
            matches!(status, 408 | 409 | 429) || *status >= 500
        }
        stripe::StripeError::Timeout
        | stripe::StripeError::ClientError(_)
        | stripe::StripeError::JSONDeserialize(_) => true,
        stripe::StripeError::ConfigError(_) => false,
    }
}

pub(crate) fn failure(e: &stripe::StripeError) -> StripeFailure {
    match e {
        stripe::StripeError::Stripe(_, 404) => StripeFailure::NotFound,
        // Stripe's message can echo request parameters; the variant and status are enough for logs.
        stripe::StripeError::Stripe(_, status) => {
            StripeFailure::Failed(format!("Stripe answered {status}"))
        }
        stripe::StripeError::Timeout => StripeFailure::Failed("timeout".into()),
        stripe::StripeError::ClientError(_) => {
            StripeFailure::Failed("could not reach Stripe".into())
        }
        stripe::StripeError::JSONDeserialize(_) => {
            StripeFailure::Failed("unreadable answer".into())
        }
        stripe::StripeError::ConfigError(_) => StripeFailure::Failed("configuration".into()),
    }
}

/// Sends a request that makes something new each time and so carries no key of ours (a fresh
/// single-use link): sent once, as a retry would only make a second one; counted as `operation`.
pub(super) async fn unkeyed<T, F, Fut>(operation: &'static str, send: F) -> Result<T, StripeFailure>
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = Result<T, stripe::StripeError>>,
{
    counted(operation, send().await.map_err(|e| failure(&e)))
}
