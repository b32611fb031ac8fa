//! Requests to Stripe that carry our idempotency key are retried when they fail in a way that may
//! pass, with the same key.
//!
//! Found by the chaos suite (`tests/chaos.rs`): an instance paused (`SIGSTOP`) after opening a
//! connection to Stripe but before sending its request got the server's 408 once it was continued,
//! and the buyer's checkout answered 502 although Stripe was fine. Here a proxy in front of the
//! Stripe simulator answers the first connection with that 408 and passes the others through.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests fail by panicking"
)]

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use market_core::{Currency, Money, PurchaseId};
use market_http::stripe::{NewSession, Session, StripeFailure, StripeGateway};
use sandbox::stripe::{StripeSim, StripeSimConfig};
use secrecy::SecretString;
use url::Url;

/// Reads what the client sends until it pauses, so that closing the socket sends a FIN after our
/// answer, not a reset that would swallow it.
fn drain(stream: &mut TcpStream) {
    stream
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut buffer = [0u8; 8192];
    while matches!(stream.read(&mut buffer), Ok(n) if n > 0) {}
}

/// Copies bytes one way until either side closes.
fn pipe(mut from: TcpStream, mut to: TcpStream) {
    let mut buffer = [0u8; 8192];
    while let Ok(n) = from.read(&mut buffer) {
        if n == 0 || to.write_all(&buffer[..n]).is_err() {
            break;
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}

/// A proxy to `upstream` whose first `refused` connections get `408 Request Timeout` (what an
/// HTTP server sends on a connection whose request does not arrive in time). Returns its address
/// and the number of connections it accepted.
fn flaky_proxy(upstream: SocketAddr, refused: usize) -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&accepted);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut client) = stream else { return };
            let n = counter.fetch_add(1, Ordering::SeqCst);
            if n < refused {
                drain(&mut client);
                let _ = client.write_all(
                    b"HTTP/1.1 408 Request Timeout\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                );
                let _ = client.shutdown(Shutdown::Write);
                continue;
            }
            let server = TcpStream::connect(upstream).unwrap();
            let (client_read, server_read) =
                (client.try_clone().unwrap(), server.try_clone().unwrap());
            std::thread::spawn(move || pipe(client_read, server));
            std::thread::spawn(move || pipe(server_read, client));
        }
    });
    (addr, accepted)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_checkout_session_is_created_once_when_the_first_attempt_meets_a_408() {
    // Arrange: the simulator behind a proxy that refuses the first connection with a 408.
    let sim = StripeSim::start(StripeSimConfig::default()).await.unwrap();
    let (proxy, accepted) = flaky_proxy(sim.addr(), 1);
    let gateway = gateway_through(&sim, proxy);
    let purchase = PurchaseId::random();

    // Act
    let session = create_session(&gateway, purchase).await;

    // Assert: the second attempt created the session, and only one exists.
    let session = session.unwrap_or_else(|e| panic!("checkout failed on a single 408: {e}"));
    assert!(
        accepted.load(Ordering::SeqCst) >= 2,
        "the 408 was met and retried"
    );
    let sessions = sim.sessions();
    assert_eq!(sessions.len(), 1, "{sessions:?}");
    assert_eq!(sessions[0].id, session.id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_checkout_session_fails_when_every_attempt_meets_a_408() {
    let sim = StripeSim::start(StripeSimConfig::default()).await.unwrap();
    let (proxy, accepted) = flaky_proxy(sim.addr(), usize::MAX);
    let gateway = gateway_through(&sim, proxy);

    let session = create_session(&gateway, PurchaseId::random()).await;

    assert!(session.is_err(), "no session can come out of 408s");
    assert_eq!(
        accepted.load(Ordering::SeqCst),
        3,
        "three attempts, then give up"
    );
    assert!(sim.sessions().is_empty());
}

/// The gateway, talking to the simulator through `proxy`.
fn gateway_through(sim: &StripeSim, proxy: SocketAddr) -> StripeGateway {
    StripeGateway::new(
        &SecretString::from(sim.api_key()),
        &Url::parse(&format!("http://{proxy}/")).unwrap(),
        Vec::new(),
    )
    .unwrap()
}

/// A $19 Checkout Session for `purchase`.
async fn create_session(
    gateway: &StripeGateway,
    purchase: PurchaseId,
) -> Result<Session, StripeFailure> {
    gateway
        .create_session(&NewSession {
            purchase,
            price: &Money::new(1900, Currency::parse("usd").unwrap()).unwrap(),
            product_name: "Transient",
            email: None,
            success_url: "http://market.test/success",
            cancel_url: "http://market.test/cancel",
            split: None,
        })
        .await
}
