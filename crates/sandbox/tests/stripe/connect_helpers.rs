//! What the Connect tests share: creating sellers and destination sessions through async-stripe,
//! raw form requests for what async-stripe will not send, and the comparison of an object's key
//! set with Stripe's own example of it: `fixtures3.json` from Stripe's public `stripe/openapi`
//! repository, read where CI keeps it, beside the checkout (`../shared/ref/stripe/`), never copied
//! into the project.

use reqwest::StatusCode;
use serde_json::Value;
use stripe::StripeError;
use stripe_checkout::checkout_session::{
    CreateCheckoutSessionPaymentIntentData, CreateCheckoutSessionPaymentIntentDataTransferData,
};
use stripe_connect::account::{
    CreateAccount, CreateAccountCapabilities, CreateAccountCapabilitiesCardPayments,
    CreateAccountCapabilitiesTransfers, CreateAccountType,
};
use stripe_connect::account_link::{CreateAccountLink, CreateAccountLinkType};
use stripe_connect::{Account, AccountLink};
use stripe_shared::CheckoutSession;
use stripe_webhook::Event;

use crate::helpers::{Harness, NEW_SECRET, OLD_SECRET, checkout_request, verify};

pub const RETURN_URL: &str = "https://shop.example/seller/stripe/return";
pub const REFRESH_URL: &str = "https://shop.example/seller/stripe/refresh";
/// The application fee of [`Harness::destination_session`]'s $12.00 sale.
pub const FEE: i64 = 180;

/// Where Stripe's examples are: `MARKET_STRIPE_FIXTURES`, else `shared/ref/stripe/fixtures3.json`
/// beside the checkout.
fn fixtures_path() -> std::path::PathBuf {
    std::env::var_os("MARKET_STRIPE_FIXTURES").map_or_else(
        || {
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../../shared/ref/stripe/fixtures3.json")
        },
        Into::into,
    )
}

/// Stripe's example of `resource` (`account`, `transfer`, …).
pub fn example(resource: &str) -> Value {
    let path = fixtures_path();
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "Stripe's example objects at {} ({e}): set MARKET_STRIPE_FIXTURES to fixtures3.json \
             from github.com/stripe/openapi",
            path.display()
        )
    });
    let all: Value = serde_json::from_str(&text).unwrap();
    let example = all["resources"][resource].clone();
    assert!(example.is_object(), "no example of {resource}");
    example
}

/// Where the key sets of `ours` and Stripe's `example` differ, recursively: `"<path> missing"`
/// or `"<path> extra"`. Nested objects are compared where both sides have one: an id where the
/// example expanded the object, or null where it filled one in, is Stripe's own variation.
/// Lists are compared by their first items; `metadata` is free-form and not compared.
pub fn key_differences(example: &Value, ours: &Value) -> Vec<String> {
    let mut differences = Vec::new();
    compare("", example, ours, &mut differences);
    differences
}

fn compare(path: &str, example: &Value, ours: &Value, out: &mut Vec<String>) {
    match (example, ours) {
        (Value::Object(example), Value::Object(ours)) => {
            for key in example.keys().filter(|key| !ours.contains_key(*key)) {
                out.push(format!("{path}.{key} missing"));
            }
            for key in ours.keys().filter(|key| !example.contains_key(*key)) {
                out.push(format!("{path}.{key} extra"));
            }
            for (key, value) in example.iter().filter(|(key, _)| *key != "metadata") {
                if let Some(mine) = ours.get(key) {
                    compare(&format!("{path}.{key}"), value, mine, out);
                }
            }
        }
        (Value::Array(example), Value::Array(ours)) => {
            if let (Some(example), Some(ours)) = (example.first(), ours.first()) {
                compare(&format!("{path}[0]"), example, ours, out);
            }
        }
        _ => {}
    }
}

/// Asserts that `ours` has the key set of Stripe's example of `resource`, but for `extra`.
pub fn assert_shaped_like(resource: &str, ours: &Value, extra: &[&str]) {
    let expected: Vec<String> = extra.iter().map(|key| format!(".{key} extra")).collect();
    assert_eq!(
        key_differences(&example(resource), ours),
        expected,
        "{resource}: {ours:#}"
    );
}

/// Verifies a delivery under both secrets and checks its type.
pub fn verified(received: &crate::helpers::Received, type_: &str) -> Event {
    let event = verify(received, OLD_SECRET);
    assert_eq!(verify(received, NEW_SECRET).id, event.id);
    assert_eq!(event.type_.as_str(), type_);
    event
}

/// An Express account request (card payments and transfers requested).
pub fn account_request(email: &str) -> CreateAccount {
    let mut card_payments = CreateAccountCapabilitiesCardPayments::new();
    card_payments.requested = Some(true);
    let mut transfers = CreateAccountCapabilitiesTransfers::new();
    transfers.requested = Some(true);
    let mut capabilities = CreateAccountCapabilities::new();
    capabilities.card_payments = Some(card_payments);
    capabilities.transfers = Some(transfers);
    CreateAccount::new()
        .type_(CreateAccountType::Express)
        .country("US")
        .email(email)
        .capabilities(capabilities)
        .metadata([("seller_id".to_owned(), "sel_7".to_owned())])
}

impl Harness {
    /// Creates an Express account (card payments and transfers requested) through async-stripe.
    pub async fn create_account(&self, email: &str) -> Account {
        account_request(email)
            .send(&self.client)
            .await
            .expect("account is created")
    }

    /// An Express account that has finished onboarding; returns its id.
    pub async fn onboarded_account(&self) -> String {
        let account = self.create_account("seller@shop.example").await;
        self.sim
            .complete_onboarding(account.id.as_str())
            .expect("the account exists");
        account.id.to_string()
    }

    pub async fn onboarding_link(&self, account: &str) -> AccountLink {
        CreateAccountLink::new(account, CreateAccountLinkType::AccountOnboarding)
            .refresh_url(REFRESH_URL)
            .return_url(RETURN_URL)
            .send(&self.client)
            .await
            .expect("account link is created")
    }

    /// The $12.00 session of [`checkout_request`], paying `account` and keeping `fee`.
    pub async fn destination_session(
        &self,
        account: &str,
        fee: Option<i64>,
    ) -> Result<CheckoutSession, StripeError> {
        let mut intent = CreateCheckoutSessionPaymentIntentData::new();
        intent.metadata = Some([("purchase_id".to_owned(), "pur_42".to_owned())].into());
        intent.application_fee_amount = fee;
        intent.transfer_data = Some(CreateCheckoutSessionPaymentIntentDataTransferData {
            amount: None,
            destination: account.to_owned(),
        });
        checkout_request()
            .payment_intent_data(intent)
            .send(&self.client)
            .await
    }

    /// A paid destination session with [`FEE`]; returns its PaymentIntent.
    pub async fn paid_destination(&self, account: &str) -> String {
        let session = self
            .destination_session(account, Some(FEE))
            .await
            .expect("the destination is onboarded");
        self.sim
            .pay(session.id.as_str())
            .expect("an open session can be paid")
            .payment_intent
            .expect("paying creates a PaymentIntent")
    }

    /// A form POST to the API, as a client async-stripe does not cover would send it.
    pub async fn form_post(
        &self,
        path: &str,
        key: Option<&str>,
        form: &[(&str, &str)],
    ) -> (StatusCode, Value) {
        let mut request = self
            .http
            .post(self.url(path))
            .bearer_auth(self.sim.api_key())
            .form(form);
        if let Some(key) = key {
            request = request.header("Idempotency-Key", key);
        }
        let response = request.send().await.unwrap();
        (response.status(), response.json().await.unwrap())
    }

    pub async fn api_get(&self, path: &str) -> (StatusCode, Value) {
        let response = self
            .http
            .get(self.url(path))
            .bearer_auth(self.sim.api_key())
            .send()
            .await
            .unwrap();
        (response.status(), response.json().await.unwrap())
    }

    /// The types of every event so far, oldest first.
    pub fn event_types(&self) -> Vec<String> {
        self.sim.events().into_iter().map(|e| e.type_).collect()
    }

    /// The last event of `type_`, as JSON.
    pub fn last_event(&self, type_: &str) -> Value {
        let event = self
            .sim
            .events()
            .into_iter()
            .rev()
            .find(|event| event.type_ == type_)
            .unwrap_or_else(|| panic!("no {type_} event"));
        serde_json::from_str(&event.payload).unwrap()
    }
}
