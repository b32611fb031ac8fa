//! The courier against real sockets: a listener on 127.0.0.1 that answers as told and counts the
//! connections it accepted, so "refused" is proven by a count of zero, not by an error message.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use market_core::courier::{
    Courier, CourierConfig, Guard, RESPONSE_LIMIT, Signed, WebhookSecret, message_id, sign,
};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use url::Url;

/// What the listener does with a request.
#[derive(Clone)]
enum Answer {
    /// Writes these bytes and closes.
    Now(Vec<u8>),
    /// Reads the request, then says nothing for a minute.
    Never,
}

/// One request as the listener read it.
struct Received {
    head: String,
    body: Vec<u8>,
}

impl Received {
    fn headers(&self) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for line in self.head.lines().skip(1) {
            if let Some((name, value)) = line.split_once(':') {
                headers.insert(
                    HeaderName::from_bytes(name.trim().as_bytes()).unwrap(),
                    HeaderValue::from_str(value.trim()).unwrap(),
                );
            }
        }
        headers
    }
}

struct Listener {
    addr: SocketAddr,
    accepted: Arc<AtomicUsize>,
    received: Arc<Mutex<Vec<Received>>>,
}

impl Listener {
    async fn start(answer: Answer) -> Self {
        let socket = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = socket.local_addr().unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let received = Arc::new(Mutex::new(Vec::new()));
        let (count, log) = (Arc::clone(&accepted), Arc::clone(&received));
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = socket.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                let (answer, log) = (answer.clone(), Arc::clone(&log));
                tokio::spawn(async move {
                    let request = read_request(&mut stream).await;
                    log.lock().unwrap().push(request);
                    match answer {
                        Answer::Now(bytes) => {
                            let _ = stream.write_all(&bytes).await;
                            let _ = stream.shutdown().await;
                        }
                        Answer::Never => tokio::time::sleep(Duration::from_secs(60)).await,
                    }
                });
            }
        });
        Self {
            addr,
            accepted,
            received,
        }
    }

    /// `http://localhost:PORT/hook`: a name, so the courier's resolver is asked.
    fn by_name(&self) -> Url {
        Url::parse(&format!("http://localhost:{}/hook", self.addr.port())).unwrap()
    }

    fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

/// The request's head and its `content-length` body.
async fn read_request(stream: &mut tokio::net::TcpStream) -> Received {
    let mut bytes = Vec::new();
    let mut buf = [0_u8; 4096];
    loop {
        if let Some(end) = bytes.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&bytes[..end]).into_owned();
            let length: usize = head
                .lines()
                .find_map(|line| {
                    let (name, value) = line.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse().unwrap())
                })
                .unwrap_or(0);
            if bytes.len() >= end + 4 + length {
                let body = bytes[end + 4..end + 4 + length].to_vec();
                return Received { head, body };
            }
        }
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => {
                let head = String::from_utf8_lossy(&bytes).into_owned();
                return Received {
                    head,
                    body: Vec::new(),
                };
            }
            Ok(n) => bytes.extend_from_slice(&buf[..n]),
        }
    }
}

fn http(status_line: &str, extra: &str, body: &str) -> Answer {
    Answer::Now(
        format!(
            "HTTP/1.1 {status_line}\r\n{extra}content-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        )
        .into_bytes(),
    )
}

fn loopback() -> Vec<ipnet::IpNet> {
    vec!["127.0.0.0/8".parse().unwrap(), "::1/128".parse().unwrap()]
}

fn courier(guard: Guard, timeout: Duration) -> Courier {
    Courier::new(CourierConfig {
        timeout,
        guard,
        user_agent: "market-tests".to_owned(),
    })
    .unwrap()
}

const BODY: &[u8] = br#"{"type":"purchase.paid","data":{"amount":1900}}"#;

fn signed(secrets: &[WebhookSecret]) -> Signed {
    let id = message_id(uuid::Uuid::new_v4());
    sign(secrets, &id, chrono::Utc::now().timestamp(), BODY).unwrap()
}

#[tokio::test]
async fn a_webhook_to_an_allowed_name_arrives_signed_and_its_answer_is_recorded() {
    // Arrange
    let listener = Listener::start(http("200 OK", "", "thanks")).await;
    let courier = courier(Guard::allowing(true, loopback()), Duration::from_secs(10));
    let (new, old) = (WebhookSecret::generate(), WebhookSecret::generate());
    let message = signed(&[new.clone(), old.clone()]);

    // Act
    let attempt = courier.post(&listener.by_name(), &message, BODY).await;

    // Assert
    assert_eq!(attempt.status, Some(200), "{attempt:?}");
    assert!(attempt.succeeded() && !attempt.refused_by_guard());
    assert_eq!(attempt.response.as_deref(), Some("thanks"));
    assert_eq!(attempt.error, None);
    assert!(attempt.latency > Duration::ZERO && attempt.latency < Duration::from_secs(5));
    let received = listener.received.lock().unwrap();
    let [request] = &received[..] else {
        panic!("{} requests", received.len())
    };
    assert!(
        request.head.starts_with("POST /hook HTTP/1.1"),
        "{}",
        request.head
    );
    assert_eq!(request.body, BODY);
    let headers = request.headers();
    assert_eq!(headers["content-type"], "application/json");
    assert_eq!(headers["user-agent"], "market-tests");
    assert_eq!(headers["webhook-id"], message.id.as_str());
    assert_eq!(
        headers["webhook-timestamp"],
        message.timestamp.to_string().as_str()
    );
    // Whichever secret the receiver holds during a roll, the delivery verifies.
    for secret in [&new, &old] {
        standardwebhooks::Webhook::new(secret.expose())
            .unwrap()
            .verify(&request.body, &headers)
            .unwrap();
    }
    let stranger = WebhookSecret::generate();
    assert!(
        standardwebhooks::Webhook::new(stranger.expose())
            .unwrap()
            .verify(&request.body, &headers)
            .is_err()
    );
}

#[tokio::test]
async fn a_name_that_resolves_to_loopback_is_refused_at_send_time_and_never_connected_to() {
    // Arrange: the guard would accept the URL (http allowed, a name), but not where it resolves.
    let listener = Listener::start(http("200 OK", "", "thanks")).await;
    let courier = courier(Guard::allowing(true, vec![]), Duration::from_secs(10));
    let url = listener.by_name();
    assert_eq!(courier.guard().check_url(&url), Ok(()));

    // Act
    let attempt = courier
        .post(&url, &signed(&[WebhookSecret::generate()]), BODY)
        .await;
    let literal = Url::parse(&format!("http://{}/hook", listener.addr)).unwrap();
    let by_address = courier
        .post(&literal, &signed(&[WebhookSecret::generate()]), BODY)
        .await;

    // Assert
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(listener.accepted(), 0, "the listener was reached");
    assert!(attempt.refused_by_guard(), "{attempt:?}");
    assert_eq!((attempt.status, attempt.response.as_deref()), (None, None));
    let error = attempt.error.unwrap();
    assert!(
        error == "refused by the SSRF guard: localhost resolves to 127.0.0.1, a loopback address"
            || error == "refused by the SSRF guard: localhost resolves to ::1, a loopback address",
        "{error}"
    );
    assert!(by_address.refused_by_guard());
    assert_eq!(
        by_address.error.as_deref(),
        Some("refused by the SSRF guard: 127.0.0.1 is a loopback address")
    );
    // The strict guard refuses the same URL for its scheme, and check_now for its address.
    let strict = Guard::strict();
    assert!(strict.check_url(&url).is_err());
    let https = Url::parse(&format!("https://localhost:{}/", listener.addr.port())).unwrap();
    let refusal = strict.check_now(&https).await.unwrap_err();
    assert!(
        refusal.to_string().starts_with("localhost resolves to "),
        "{refusal}"
    );
}

#[tokio::test]
async fn a_redirect_is_recorded_as_the_answer_and_not_followed() {
    // Arrange: the redirect points at a second listener, which must never be reached.
    let elsewhere = Listener::start(http("200 OK", "", "followed")).await;
    let location = format!("location: http://{}/elsewhere\r\n", elsewhere.addr);
    let listener = Listener::start(http("302 Found", &location, "")).await;
    let courier = courier(Guard::allowing(true, loopback()), Duration::from_secs(10));

    // Act
    let attempt = courier
        .post(
            &listener.by_name(),
            &signed(&[WebhookSecret::generate()]),
            BODY,
        )
        .await;

    // Assert
    assert_eq!(attempt.status, Some(302), "{attempt:?}");
    assert!(!attempt.succeeded() && !attempt.refused_by_guard());
    assert_eq!(listener.accepted(), 1);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(elsewhere.accepted(), 0, "the redirect was followed");
}

#[tokio::test]
async fn an_endpoint_slower_than_the_timeout_is_a_timeout() {
    let listener = Listener::start(Answer::Never).await;
    let timeout = Duration::from_millis(400);
    let courier = courier(Guard::allowing(true, loopback()), timeout);

    let attempt = courier
        .post(
            &listener.by_name(),
            &signed(&[WebhookSecret::generate()]),
            BODY,
        )
        .await;

    assert_eq!(listener.accepted(), 1);
    assert_eq!(attempt.status, None, "{attempt:?}");
    assert!(!attempt.succeeded() && !attempt.refused_by_guard());
    assert!(
        attempt
            .error
            .as_deref()
            .unwrap()
            .contains("timed out after 400 ms"),
        "{attempt:?}"
    );
    assert!(
        attempt.latency >= timeout && attempt.latency < Duration::from_secs(3),
        "{attempt:?}"
    );
}

#[tokio::test]
async fn only_the_first_kib_of_a_long_answer_is_kept() {
    let long = format!("{}{}", "a".repeat(RESPONSE_LIMIT), "b".repeat(4 * 1024));
    let listener = Listener::start(http("500 Internal Server Error", "", &long)).await;
    let courier = courier(Guard::allowing(true, loopback()), Duration::from_secs(10));

    let attempt = courier
        .post(
            &listener.by_name(),
            &signed(&[WebhookSecret::generate()]),
            BODY,
        )
        .await;

    assert_eq!(attempt.status, Some(500), "{attempt:?}");
    assert!(!attempt.succeeded());
    assert_eq!(attempt.response, Some("a".repeat(RESPONSE_LIMIT)));
    assert_eq!(attempt.error, None);
}

#[tokio::test]
async fn a_refused_connection_is_a_connection_error_that_hides_the_url() {
    // A port nobody listens on: bind one, then let it go.
    let port = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let courier = courier(Guard::allowing(true, loopback()), Duration::from_secs(10));
    let url = Url::parse(&format!("http://127.0.0.1:{port}/hook?token=seller-secret")).unwrap();

    let attempt = courier
        .post(&url, &signed(&[WebhookSecret::generate()]), BODY)
        .await;

    assert_eq!(attempt.status, None);
    assert!(!attempt.refused_by_guard(), "{attempt:?}");
    let error = attempt.error.unwrap();
    assert!(error.starts_with("could not connect"), "{error}");
    assert!(!error.contains("seller-secret"), "the URL leaked: {error}");
}
