//! Signing to the Standard Webhooks specification: an HMAC-SHA256 of `id.timestamp.body` under
//! the endpoint's secret, sent as `webhook-signature: v1,<base64>`.
//!
//! Why several signatures: a seller rolls a secret without downtime. For a while both the new and
//! the old secret sign every delivery (`v1,<new> v1,<old>`), so a receiver still holding the old
//! one verifies, and so does one that already switched. The signature covers the id and the
//! timestamp, so a captured delivery cannot be replayed later (receivers refuse timestamps more
//! than five minutes off) nor passed off as another message.
//!
//! The secret is the seller's to keep and ours to hide: [`WebhookSecret`] is zeroized when
//! dropped and redacted in `Debug`, and has no `Display`.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use secrecy::zeroize::Zeroizing;
use secrecy::{ExposeSecret, SecretString};

/// Why a webhook could not be prepared. Sending never fails this way (see `Attempt`); these are
/// mistakes that trying again does not fix.
#[derive(Debug, thiserror::Error)]
pub enum CourierError {
    #[error("the webhook HTTP client could not be built: {0}")]
    Client(String),
    #[error("a webhook is signed with at least one secret")]
    NoSecret,
    #[error("a webhook signing secret is not in the whsec_ format")]
    Secret,
    #[error("a webhook body must be UTF-8 (JSON)")]
    Payload,
}

/// The prefix of every secret in the Standard Webhooks format.
const PREFIX: &str = "whsec_";

/// A webhook signing secret: `whsec_` + base64 of 32 random bytes (Standard Webhooks' format).
#[derive(Clone)]
pub struct WebhookSecret(SecretString);

impl WebhookSecret {
    /// A fresh secret from the operating system's random generator.
    pub fn generate() -> Self {
        let mut bytes = Zeroizing::new([0_u8; 32]);
        rand::fill(&mut *bytes);
        // Sized exactly, so neither the encoding nor the boxing leaves a copy behind in a freed
        // buffer.
        let mut text = String::with_capacity(PREFIX.len() + 44);
        text.push_str(PREFIX);
        STANDARD.encode_string(&bytes[..], &mut text);
        Self(SecretString::from(text))
    }

    /// A secret as stored or given: `whsec_` and the base64 of 24 to 64 bytes (the
    /// specification's bounds).
    pub fn parse(text: &str) -> Option<Self> {
        let encoded = text.strip_prefix(PREFIX)?;
        let key = Zeroizing::new(STANDARD.decode(encoded).ok()?);
        (24..=64)
            .contains(&key.len())
            .then(|| Self(SecretString::from(text)))
    }

    /// The secret's text, to seal it or to show it to its seller once.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

impl fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WebhookSecret([redacted])")
    }
}

/// The headers of one attempt: `webhook-id`, `webhook-timestamp` and `webhook-signature`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signed {
    /// The same on every attempt of one event ([`message_id`]): receivers deduplicate on it.
    pub id: String,
    /// Unix seconds, the attempt's own time.
    pub timestamp: i64,
    /// One `v1,<base64>` per secret, space separated.
    pub signature: String,
}

/// The `webhook-id` of the event `event_id`: `msg_` and the id without dashes.
pub fn message_id(event_id: uuid::Uuid) -> String {
    format!("msg_{}", event_id.simple())
}

/// Signs `body` (UTF-8 JSON) sent as message `id` at `timestamp` with each of `secrets`.
pub fn sign(
    secrets: &[WebhookSecret],
    id: &str,
    timestamp: i64,
    body: &[u8],
) -> Result<Signed, CourierError> {
    if secrets.is_empty() {
        return Err(CourierError::NoSecret);
    }
    if std::str::from_utf8(body).is_err() {
        return Err(CourierError::Payload);
    }
    let mut signatures = Vec::with_capacity(secrets.len());
    for secret in secrets {
        let webhook =
            standardwebhooks::Webhook::new(secret.expose()).map_err(|_| CourierError::Secret)?;
        let signature = webhook
            .sign(id, timestamp, body)
            .map_err(|_| CourierError::Payload)?;
        signatures.push(signature);
    }
    Ok(Signed {
        id: id.to_owned(),
        timestamp,
        signature: signatures.join(" "),
    })
}

#[cfg(test)]
mod tests {
    use reqwest::header::{HeaderMap, HeaderValue};
    use standardwebhooks::Webhook;

    use super::*;

    fn headers(signed: &Signed) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert("webhook-id", HeaderValue::from_str(&signed.id).unwrap());
        headers.insert("webhook-timestamp", HeaderValue::from(signed.timestamp));
        headers.insert(
            "webhook-signature",
            HeaderValue::from_str(&signed.signature).unwrap(),
        );
        headers
    }

    fn now() -> i64 {
        chrono::Utc::now().timestamp()
    }

    #[test]
    fn two_secrets_sign_so_either_alone_verifies_and_a_third_does_not() {
        let (new, old, stranger) = (
            WebhookSecret::generate(),
            WebhookSecret::generate(),
            WebhookSecret::generate(),
        );
        let body = br#"{"type":"purchase.paid","data":{"amount":1900}}"#;
        let id = message_id(uuid::Uuid::new_v4());
        let signed = sign(&[new.clone(), old.clone()], &id, now(), body).unwrap();

        assert_eq!(signed.signature.split(' ').count(), 2);
        assert!(signed.signature.split(' ').all(|s| s.starts_with("v1,")));
        let headers = headers(&signed);
        for secret in [&new, &old] {
            Webhook::new(secret.expose())
                .unwrap()
                .verify(body, &headers)
                .unwrap();
        }
        assert!(
            Webhook::new(stranger.expose())
                .unwrap()
                .verify(body, &headers)
                .is_err()
        );
        // Another body, or the same body under another id, does not verify.
        let webhook = Webhook::new(new.expose()).unwrap();
        assert!(
            webhook
                .verify(br#"{"type":"purchase.refunded"}"#, &headers)
                .is_err()
        );
        let mut moved = headers.clone();
        moved.insert("webhook-id", HeaderValue::from_static("msg_other"));
        assert!(webhook.verify(body, &moved).is_err());
    }

    #[test]
    fn the_specifications_example_signs_as_it_says() {
        let secret = WebhookSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let signed = sign(
            &[secret],
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1_614_265_330,
            br#"{"test": 2432232314}"#,
        )
        .unwrap();
        assert_eq!(
            signed.signature,
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn secrets_are_generated_in_the_standard_format_and_parsed_back() {
        let secret = WebhookSecret::generate();
        assert!(secret.expose().starts_with("whsec_"));
        assert_eq!(secret.expose().len(), "whsec_".len() + 44);
        assert_ne!(secret.expose(), WebhookSecret::generate().expose());
        let parsed = WebhookSecret::parse(secret.expose()).unwrap();
        assert_eq!(parsed.expose(), secret.expose());

        assert!(WebhookSecret::parse("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").is_none());
        assert!(WebhookSecret::parse("whsec_not base64!").is_none());
        assert!(WebhookSecret::parse("whsec_c2hvcnQ=").is_none(), "5 bytes");
        assert!(WebhookSecret::parse(&format!("whsec_{}", STANDARD.encode([1; 65]))).is_none());
    }

    #[test]
    fn a_secret_never_shows_in_debug() {
        let secret = WebhookSecret::generate();
        let key = secret.expose().trim_start_matches("whsec_").to_owned();
        let shown = format!("{secret:?} {:?} {:#?}", [&secret], Some(secret.clone()));
        assert!(!shown.contains(&key), "{shown}");
        assert!(shown.contains("WebhookSecret([redacted])"));
        // The signature is not secret, and it does not reveal the key either.
        let signed = sign(&[secret], "msg_1", now(), b"{}").unwrap();
        assert!(!format!("{signed:?}").contains(&key));
    }

    #[test]
    fn signing_needs_a_secret_and_a_utf8_body() {
        let secret = WebhookSecret::generate();
        assert!(matches!(
            sign(&[], "msg_1", now(), b"{}"),
            Err(CourierError::NoSecret)
        ));
        assert!(matches!(
            sign(&[secret], "msg_1", now(), &[0xff, 0xfe]),
            Err(CourierError::Payload)
        ));
        assert_eq!(
            message_id(uuid::Uuid::nil()),
            "msg_00000000000000000000000000000000"
        );
    }
}
