//! Captures *all* `tracing` output (TRACE level, span open/close with fields, `log` records
//! bridged in) of a run that exercises every endpoint, retries and every error class, then
//! checks that neither the access token nor any install-token value appears in it.
//!
//! Its own test binary: it installs a global subscriber (`testkit::LogCapture`, with span events),
//! which must not leak into other tests.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use futures::TryStreamExt;
use master_api::{Client, InstallAccess, RateLimit, RetryPolicy, SecretString, TokenValue};
use sandbox::xano::{Endpoint, Fault, SimInstance, TokenState, XanoSim, XanoSimConfig};
use testkit::LogCapture;

async fn seeded_sim() -> XanoSim {
    let sim = XanoSim::start(XanoSimConfig::default()).await.unwrap();
    for canonical in SNIPPETS {
        sim.add_snippet(canonical, "Snippet");
    }
    sim.set_page_size(2);
    sim.add_instance(SimInstance {
        name: "x1234-4567-8901".to_owned(),
        display: "Production".to_owned(),
        xano_domain: "x1234-4567-8901.n7.xano.io".to_owned(),
        custom_domain: None,
        rate_limit: false,
    });
    sim
}

const SNIPPETS: [&str; 5] = ["snip-0", "snip-1", "snip-2", "snip-3", "snip-4"];

/// All ten endpoints, with retried faults on the token paths; returns the tokens minted.
async fn exercise_every_endpoint(client: &Client, sim: &XanoSim) -> Vec<TokenValue> {
    tracing::info!(?client, "client built");
    client.me().await.unwrap();
    client.instances().await.unwrap();
    client.instance("x1234-4567-8901").await.unwrap();
    let snippets: Vec<_> = client.snippets().try_collect().await.unwrap();
    let canonical = snippets[0].canonical.clone();
    client.snippet(&canonical).await.unwrap();
    client
        .update_snippet_access(&canonical, InstallAccess::Token, "paid")
        .await
        .unwrap();

    let mut minted = Vec::new();
    for max in 1..=3 {
        let token = client.create_token(&canonical, max).await.unwrap();
        tracing::info!(?token, "created");
        minted.push(token.token);
    }
    sim.inject(Fault::ServerError {
        count: 2,
        status: 500,
        only: Some(Endpoint::UpdateToken),
    });
    sim.inject(Fault::DropConnection {
        count: 1,
        only: Some(Endpoint::DeleteToken),
    });
    sim.inject(Fault::RateLimited {
        count: 1,
        retry_after: Some(0),
        only: Some(Endpoint::Tokens),
    });
    let updated = client
        .update_token(&canonical, &minted[0], 9, 0)
        .await
        .unwrap();
    tracing::info!(?updated, "updated");
    client.delete_token(&canonical, &minted[1]).await.unwrap();
    client.delete_token(&canonical, &minted[1]).await.unwrap();
    let listed = client.tokens(&canonical).await.unwrap();
    tracing::info!(?listed, "listed");
    minted
}

/// Ambiguous creations and every failure on token paths, each logged (Display and Debug) the
/// way a caller would log it.
async fn provoke_errors(client: &Client, sim: &XanoSim, token: &TokenValue) {
    let canonical = SNIPPETS[0];
    sim.inject(Fault::CommitThenFail {
        count: 1,
        stall: None,
    });
    sim.inject(Fault::CommitThenFail {
        count: 1,
        stall: Some(Duration::from_secs(2)),
    });
    for _ in 0..2 {
        let err = client.create_token(canonical, 1).await.unwrap_err();
        tracing::error!(error = %err, debug = ?err, "create failed");
    }
    sim.inject(Fault::Latency {
        min: Duration::from_secs(1),
        max: Duration::from_secs(1),
        only: Some(Endpoint::UpdateToken),
    });
    let err = client
        .update_token(canonical, token, 1, 0)
        .await
        .unwrap_err();
    tracing::error!(error = %err, debug = ?err, "update failed");
    sim.inject(Fault::DropConnection {
        count: 10,
        only: Some(Endpoint::DeleteToken),
    });
    let err = client.delete_token(canonical, token).await.unwrap_err();
    tracing::error!(error = %err, debug = ?err, "delete failed");
    sim.clear_faults();
    sim.set_access_token_state(TokenState::Expired);
    let err = client.delete_token(canonical, token).await.unwrap_err();
    tracing::error!(error = %err, debug = ?err, "unauthorized");
    sim.set_access_token_state(TokenState::Forbidden);
    let err = client.tokens(canonical).await.unwrap_err();
    tracing::error!(error = %err, debug = ?err, "forbidden");
    sim.set_access_token_state(TokenState::Valid);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_run_at_trace_level_never_logs_the_access_token_or_an_install_token() {
    // Arrange
    let capture = LogCapture::install_with_span_events();
    let sim = seeded_sim().await;
    let access_token = sim.access_token();
    let client = Client::builder(SecretString::from(access_token.clone()))
        .base_url(sim.base_url())
        .retry(RetryPolicy {
            max_attempts: 4,
            base_delay: Duration::from_millis(10),
            max_delay: Duration::from_millis(50),
            max_elapsed: Duration::from_secs(5),
        })
        .rate_limit(RateLimit::new(100, Duration::from_secs(1)))
        .timeout(Duration::from_millis(500))
        .build()
        .unwrap();

    // Act
    let run = async {
        let minted = exercise_every_endpoint(&client, &sim).await;
        provoke_errors(&client, &sim, &minted[2]).await;
        minted
    };
    let minted = tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .unwrap();
    let mut secrets: Vec<String> = minted.iter().map(|t| t.expose().to_owned()).collect();
    for canonical in SNIPPETS {
        secrets.extend(sim.tokens(canonical).into_iter().map(|t| t.token));
    }
    sim.stop().await;

    // Assert
    let output = capture.contents();
    assert!(
        output.contains("/snippet/{canonical}/token/{token}"),
        "capture works:\n{output}"
    );
    assert!(output.contains("retrying Xano call"), "retries were logged");
    assert!(
        secrets.len() >= 5,
        "created 3 + 2 ambiguous tokens: {}",
        secrets.len()
    );
    capture.assert_absent("the access token", &access_token);
    for secret in &secrets {
        capture.assert_absent("an install token", secret);
    }
}
