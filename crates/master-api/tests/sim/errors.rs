//! Every error class, as the caller sees it, with no retries muddying the picture.

use std::time::Duration;

use master_api::StatusCode;
use master_api::{Client, Error, InstallAccess, RetryPolicy, SecretString, TokenValue};
use sandbox::xano::{Endpoint, Fault, TokenState};

use crate::common::{CANONICAL, canned_server, client_for, start_sim, within};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_access_token_is_unauthorized_and_a_token_without_rights_is_forbidden() {
    // Arrange
    let sim = start_sim().await;
    let client = client_for(&sim).build().unwrap();
    let stranger = Client::builder(SecretString::from("not-a-real-token"))
        .base_url(sim.base_url())
        .build()
        .unwrap();

    // Act
    let unknown = within(stranger.me()).await;
    sim.set_access_token_state(TokenState::Expired);
    let expired = within(client.me()).await;
    sim.set_access_token_state(TokenState::Forbidden);
    let forbidden = within(client.tokens(CANONICAL)).await;

    // Assert
    assert!(matches!(unknown, Err(Error::Unauthorized)), "{unknown:?}");
    assert!(matches!(expired, Err(Error::Unauthorized)), "{expired:?}");
    assert!(matches!(forbidden, Err(Error::Forbidden)), "{forbidden:?}");
    assert_eq!(sim.calls().len(), 3, "client errors are not retried");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_instances_snippets_and_tokens_are_not_found() {
    // Arrange
    let sim = start_sim().await;
    let client = client_for(&sim).build().unwrap();

    // Act
    let results = [
        within(client.instance("x0000-0000-0000")).await.map(|_| ()),
        within(client.snippet("missing")).await.map(|_| ()),
        within(client.tokens("missing")).await.map(|_| ()),
        within(client.create_token("missing", 1)).await.map(|_| ()),
        within(client.update_token(CANONICAL, &TokenValue::new("NOPE0000"), 1, 0))
            .await
            .map(|_| ()),
    ];

    // Assert
    for result in results {
        assert!(matches!(result, Err(Error::NotFound)), "{result:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_input_carries_xanos_error_body() {
    // Arrange
    let sim = start_sim().await;
    let client = client_for(&sim).build().unwrap();

    // Act
    let result = within(client.update_snippet_access(
        CANONICAL,
        InstallAccess::Other("invite_only".to_owned()),
        "x",
    ))
    .await;

    // Assert
    let Err(Error::InvalidInput {
        code,
        message,
        payload,
    }) = result
    else {
        panic!("expected InvalidInput, got {result:?}");
    };
    assert_eq!(code.as_deref(), Some("ERROR_CODE_INPUT_ERROR"));
    assert!(message.is_some());
    assert_eq!(payload.unwrap()["param"], "install_access");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_retries_a_429_is_rate_limited_and_a_5xx_is_a_server_error() {
    // Arrange
    let sim = start_sim().await;
    let client = client_for(&sim).retry(RetryPolicy::none()).build().unwrap();
    sim.inject(Fault::RateLimited {
        count: 1,
        retry_after: Some(7),
        only: None,
    });
    sim.inject(Fault::ServerError {
        count: 1,
        status: 503,
        only: Some(Endpoint::Snippet),
    });

    // Act
    let limited = within(client.me()).await;
    let failed = within(client.snippet(CANONICAL)).await;

    // Assert
    assert!(
        matches!(limited, Err(Error::RateLimited { retry_after: Some(d) }) if d == Duration::from_secs(7)),
        "{limited:?}"
    );
    let err = failed.unwrap_err();
    assert!(
        matches!(
            err,
            Error::Server {
                status: StatusCode::SERVICE_UNAVAILABLE,
                outcome_unknown: false
            }
        ),
        "{err:?}"
    );
    assert!(err.is_retryable());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_response_is_a_timeout() {
    // Arrange
    let sim = start_sim().await;
    let client = client_for(&sim)
        .retry(RetryPolicy::none())
        .timeout(Duration::from_millis(200))
        .build()
        .unwrap();
    sim.inject(Fault::Latency {
        min: Duration::from_secs(2),
        max: Duration::from_secs(2),
        only: Some(Endpoint::Tokens),
    });

    // Act
    let result = within(client.tokens(CANONICAL)).await;

    // Assert
    let err = result.unwrap_err();
    assert!(
        matches!(
            err,
            Error::Timeout {
                outcome_unknown: false
            }
        ),
        "{err:?}"
    );
    assert!(err.is_retryable(), "a GET may be sent again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_connection_or_a_refused_one_is_a_transport_error() {
    // Arrange
    let sim = start_sim().await;
    let client = client_for(&sim).retry(RetryPolicy::none()).build().unwrap();
    sim.inject(Fault::DropConnection {
        count: 1,
        only: None,
    });
    let refused = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        Client::builder(SecretString::from("t"))
            .base_url(url::Url::parse(&format!("http://{addr}/api:meta")).unwrap())
            .retry(RetryPolicy::none())
            .build()
            .unwrap()
    };

    // Act
    let dropped = within(client.me()).await;
    let not_listening = within(refused.me()).await;
    let create_not_listening = within(refused.create_token(CANONICAL, 1)).await;

    // Assert
    assert!(
        matches!(
            dropped,
            Err(Error::Transport {
                outcome_unknown: false,
                ..
            })
        ),
        "{dropped:?}"
    );
    assert!(
        matches!(
            not_listening,
            Err(Error::Transport {
                outcome_unknown: false,
                ..
            })
        ),
        "{not_listening:?}"
    );
    let err = create_not_listening.unwrap_err();
    assert!(
        matches!(
            err,
            Error::Transport {
                outcome_unknown: false,
                ..
            }
        ),
        "nothing was sent, so even a create has a known outcome: {err:?}"
    );
    assert!(err.is_retryable());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_body_is_a_decode_error_naming_the_field() {
    // Arrange
    let base = canned_server(200, r#"[{"token": "OL3T4JYM", "max_installs": "lots"}]"#).await;
    let client = Client::builder(SecretString::from("t"))
        .base_url(base)
        .build()
        .unwrap();

    // Act
    let result = within(client.tokens(CANONICAL)).await;

    // Assert
    let Err(error @ Error::Decode { .. }) = result else {
        panic!("expected Decode, got {result:?}");
    };
    let Error::Decode { path, .. } = &error else {
        unreachable!()
    };
    assert_eq!(path, "[0].max_installs");
    assert!(!format!("{error} {error:?}").contains("OL3T4JYM"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_undocumented_status_is_reported_as_such() {
    // Arrange
    let base = canned_server(409, "{}").await;
    let client = Client::builder(SecretString::from("t"))
        .base_url(base)
        .build()
        .unwrap();

    // Act
    let result = within(client.me()).await;

    // Assert
    assert!(
        matches!(
            result,
            Err(Error::UnexpectedStatus {
                status: StatusCode::CONFLICT
            })
        ),
        "{result:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn arguments_that_would_change_the_endpoint_are_refused_before_sending() {
    // Arrange
    let sim = start_sim().await;
    let client = client_for(&sim).build().unwrap();

    // Act
    let dot_dot = within(client.delete_token(CANONICAL, &TokenValue::new(".."))).await;
    let empty = within(client.snippet("")).await;
    let negative = within(client.create_token(CANONICAL, -1)).await;
    let page_zero = within(client.snippets_page(0)).await;

    // Assert
    assert!(
        matches!(dot_dot, Err(Error::InvalidArgument { name: "token", .. })),
        "{dot_dot:?}"
    );
    assert!(
        matches!(
            empty,
            Err(Error::InvalidArgument {
                name: "canonical",
                ..
            })
        ),
        "{empty:?}"
    );
    assert!(matches!(
        negative,
        Err(Error::InvalidArgument {
            name: "max_installs",
            ..
        })
    ));
    assert!(matches!(
        page_zero,
        Err(Error::InvalidArgument { name: "page", .. })
    ));
    assert!(sim.calls().is_empty(), "nothing was sent");
}
