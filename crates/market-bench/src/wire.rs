//! Counting round trips on the wire: a loopback TCP proxy in front of PostgreSQL that counts the
//! server's `ReadyForQuery` messages (one ends every round trip: each simple query, each extended-
//! protocol `Sync`, each pool ping) and records the SQL text the client sends (`Query` and `Parse`
//! messages). Connect with `sslmode=disable` so the protocol stays readable.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[derive(Debug, Default)]
struct Counts {
    ready: u64,
    /// Bare `Sync`s (no extended-protocol message since the last one): the pool's liveness check
    /// on acquire (sqlx's `ping`), a round trip that carries no SQL.
    pings: u64,
    /// Whether the frontend sent Parse/Bind/Describe/Execute since its last `Sync`.
    extended: bool,
    sql: Vec<String>,
}

/// What one operation cost on the wire.
#[derive(Debug, Default)]
pub struct Trips {
    /// Round trips (`ReadyForQuery` messages), pings included.
    pub total: u64,
    pub pings: u64,
    /// SQL text sent (simple queries and prepared statements).
    pub sql: Vec<String>,
}

/// A running proxy; [`Wire::reset`] and [`Wire::take`] frame what one operation did.
#[derive(Debug, Clone)]
pub struct Wire {
    pub addr: SocketAddr,
    counts: Arc<Mutex<Counts>>,
}

impl Wire {
    pub async fn start(upstream: SocketAddr) -> anyhow::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let counts = Arc::new(Mutex::new(Counts::default()));
        let shared = Arc::clone(&counts);
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let counts = Arc::clone(&shared);
                tokio::spawn(async move {
                    if let Ok(server) = TcpStream::connect(upstream).await {
                        let _ = client.set_nodelay(true);
                        let _ = server.set_nodelay(true);
                        let (cr, cw) = client.into_split();
                        let (sr, sw) = server.into_split();
                        let up = tokio::spawn(pipe(cr, sw, Arc::clone(&counts), Side::Frontend));
                        let down = tokio::spawn(pipe(sr, cw, counts, Side::Backend));
                        let _ = tokio::join!(up, down);
                    }
                });
            }
        });
        Ok(Self { addr, counts })
    }

    pub fn reset(&self) {
        if let Ok(mut c) = self.counts.lock() {
            *c = Counts::default();
        }
    }

    /// Round trips and statements since the last reset.
    pub fn take(&self) -> Trips {
        self.counts
            .lock()
            .map(|mut c| Trips {
                total: c.ready,
                pings: c.pings,
                sql: std::mem::take(&mut c.sql),
            })
            .unwrap_or_default()
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Side {
    Frontend,
    Backend,
}

async fn pipe(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    counts: Arc<Mutex<Counts>>,
    side: Side,
) {
    let mut pending: Vec<u8> = Vec::new();
    // The frontend's first message (StartupMessage) has no type byte.
    let mut untyped_first = side == Side::Frontend;
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        let n = match from.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if to.write_all(&chunk[..n]).await.is_err() {
            break;
        }
        pending.extend_from_slice(&chunk[..n]);
        loop {
            if untyped_first {
                if pending.len() < 4 {
                    break;
                }
                let len = be32(&pending[0..4]);
                if pending.len() < len {
                    break;
                }
                pending.drain(..len);
                untyped_first = false;
                continue;
            }
            if pending.len() < 5 {
                break;
            }
            let tag = pending[0];
            let len = be32(&pending[1..5]);
            if pending.len() < 1 + len {
                break;
            }
            let body = &pending[5..=len];
            if let Ok(mut c) = counts.lock() {
                match (side, tag) {
                    (Side::Backend, b'Z') => c.ready += 1,
                    (Side::Frontend, b'Q') => c.sql.push(cstr(body)),
                    (Side::Frontend, b'P') => {
                        // Parse: statement name, then the query text.
                        let name_end = body.iter().position(|&b| b == 0).unwrap_or(0);
                        c.sql.push(cstr(&body[name_end + 1..]));
                        c.extended = true;
                    }
                    (Side::Frontend, b'B' | b'D' | b'E') => c.extended = true,
                    (Side::Frontend, b'S') => {
                        if !c.extended {
                            c.pings += 1;
                        }
                        c.extended = false;
                    }
                    _ => {}
                }
            }
            pending.drain(..=len);
        }
    }
}

fn be32(b: &[u8]) -> usize {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize
}

fn cstr(b: &[u8]) -> String {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    String::from_utf8_lossy(&b[..end])
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}
