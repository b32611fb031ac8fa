//! Webhook deliveries, as Stripe makes them: a POST of the event's exact JSON with
//! `Content-Type: application/json` and `Stripe-Signature: t=<unix>,v1=<hex>[,v1=<hex>…]`, one
//! `v1` per signing secret, HMAC-SHA256 over `"{t}.{body}"`, signed afresh for every attempt.
//! A non-2xx answer or a transport error is retried after each of the configured delays.
//!
//! The dispatcher runs in the background: the API call, page or control that caused an event
//! never waits for its delivery. First attempts go out one at a time, in order (so a test sees a
//! stable order unless it asked for shuffling); retries run beside them. With duplicate
//! deliveries on, the dispatcher gathers neighbouring events for a short window, sends them in
//! a shuffled order (never the original one when there are two or more), then sends them all a
//! second time, shuffled again. An event whose delivery `faults` dropped never reaches the
//! dispatcher, unless it is redelivered.

use std::time::Duration;

use chrono::Utc;
use hmac::{Hmac, Mac};
use rand::seq::SliceRandom;
use sha2::Sha256;
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::task::JoinSet;

use super::model::DeliveryRecord;
use super::state::{DeliveryJob, Shared};

/// The `Stripe-Signature` header for `payload` at `timestamp`: `t=…` then one `v1=…` per secret.
pub fn signature_header(payload: &str, timestamp: i64, secrets: &[String]) -> String {
    let mut header = format!("t={timestamp}");
    for secret in secrets {
        // HMAC accepts keys of any length, so this cannot fail.
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else {
            continue;
        };
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(payload.as_bytes());
        header.push_str(",v1=");
        header.push_str(&hex::encode(mac.finalize().into_bytes()));
    }
    header
}

/// Receives delivery jobs until the simulator stops. Retries live in a `JoinSet` owned here,
/// so aborting the dispatcher aborts them too.
pub(crate) async fn dispatch(
    shared: Shared,
    mut jobs: UnboundedReceiver<DeliveryJob>,
    http: reqwest::Client,
) {
    let mut retries = JoinSet::new();
    while let Some(first) = jobs.recv().await {
        let (duplicate, window) = {
            let state = shared.lock();
            (state.duplicate_deliveries, state.shuffle_window)
        };
        let mut batch = vec![first];
        if duplicate {
            let deadline = tokio::time::sleep(window);
            tokio::pin!(deadline);
            loop {
                tokio::select! {
                    job = jobs.recv() => match job {
                        Some(job) => batch.push(job),
                        None => break,
                    },
                    () = &mut deadline => break,
                }
            }
            batch = shuffled_twice(&shared, &batch);
        }
        for job in batch {
            // Reap finished retries so the set does not grow without bound.
            while retries.try_join_next().is_some() {}
            let delivery = shared.lock().next_delivery();
            if !attempt_delivery(&shared, &http, &job.event_id, delivery, 1).await {
                let delays = shared.lock().retry_delays.clone();
                let (shared, http) = (shared.clone(), http.clone());
                retries.spawn(async move {
                    retry(&shared, &http, &job.event_id, delivery, &delays).await;
                });
            }
        }
    }
}

/// The batch in a shuffled order that differs from the original when it can, followed by a
/// second copy of every job, shuffled again.
fn shuffled_twice(shared: &Shared, batch: &[DeliveryJob]) -> Vec<DeliveryJob> {
    let mut state = shared.lock();
    let mut first: Vec<usize> = (0..batch.len()).collect();
    first.shuffle(&mut state.rng);
    if first.len() > 1 && first.windows(2).all(|pair| pair[0] < pair[1]) {
        first.swap(0, 1);
    }
    let mut second: Vec<usize> = (0..batch.len()).collect();
    second.shuffle(&mut state.rng);
    first
        .into_iter()
        .chain(second)
        .filter_map(|index| batch.get(index).cloned())
        .collect()
}

async fn retry(
    shared: &Shared,
    http: &reqwest::Client,
    event_id: &str,
    delivery: u64,
    delays: &[Duration],
) {
    for (attempt, delay) in (2..).zip(delays) {
        tokio::time::sleep(*delay).await;
        if attempt_delivery(shared, http, event_id, delivery, attempt).await {
            return;
        }
    }
    tracing::debug!(
        stripe.event.id = event_id,
        delivery,
        "stripe sim gave up a webhook delivery"
    );
}

/// One POST to the endpoint configured now (a secret roll applies to retries too). True when
/// the delivery is over: delivered, or nothing left to deliver to.
async fn attempt_delivery(
    shared: &Shared,
    http: &reqwest::Client,
    event_id: &str,
    delivery: u64,
    attempt: u32,
) -> bool {
    let (target, payload, timeout) = {
        let state = shared.lock();
        let payload = state.event(event_id).map(|event| event.payload.clone());
        (state.webhook_target(), payload, state.delivery_timeout)
    };
    let (Some(target), Some(payload)) = (target, payload) else {
        return true;
    };
    let signature = signature_header(&payload, Utc::now().timestamp(), &target.secrets);
    let outcome = http
        .post(target.url.clone())
        .header(
            reqwest::header::CONTENT_TYPE,
            "application/json; charset=utf-8",
        )
        .header(
            reqwest::header::USER_AGENT,
            "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
        )
        .header("Stripe-Signature", signature)
        .timeout(timeout)
        .body(payload)
        .send()
        .await;
    let (status, error) = match outcome {
        Ok(response) => (Some(response.status().as_u16()), None),
        // The error names the endpoint URL at most; the signature is not part of it.
        Err(error) => (None, Some(error.to_string())),
    };
    let record = DeliveryRecord {
        delivery,
        event_id: event_id.to_owned(),
        attempt,
        status,
        error,
        at: Utc::now(),
    };
    let succeeded = record.succeeded();
    tracing::debug!(
        stripe.event.id = event_id,
        delivery,
        attempt,
        http.status = status,
        succeeded,
        "stripe sim webhook attempt"
    );
    shared.lock().deliveries.push(record);
    succeeded
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_header_carries_one_v1_per_secret_over_timestamp_dot_body() {
        let secrets = vec!["whsec_a".to_owned(), "whsec_b".to_owned()];
        let header = signature_header("{}", 1_700_000_000, &secrets);
        let parts: Vec<&str> = header.split(',').collect();
        assert_eq!(parts.len(), 3);
        assert_eq!(parts[0], "t=1700000000");
        let mut mac = Hmac::<Sha256>::new_from_slice(b"whsec_b").unwrap();
        mac.update(b"1700000000.{}");
        let expected = hex::encode(mac.finalize().into_bytes());
        assert_eq!(parts[2], format!("v1={expected}"));
        assert_ne!(parts[1], parts[2]);
    }
}
