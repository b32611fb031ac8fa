//! Recording what a client does on the wire: a loopback TCP proxy in front of PostgreSQL that
//! counts the server's `ReadyForQuery` messages (one ends every round trip: each simple query, each
//! extended-protocol `Sync`, each pool ping) and records every statement executed — its SQL, its
//! parameters' types and raw values, and the rows it returned — so that `replay.rs` can turn one
//! fulfilment into a pgbench script without anyone writing its SQL twice. Connect with
//! `sslmode=disable` so the protocol stays readable.
//!
//! Each side's messages are parsed before they are forwarded: the client cannot see an answer (and
//! send its next message, or return to the caller who reads the record) before the proxy has
//! recorded what led to it.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::wire_msg::{Reader, cstr_text};

/// A value as it crossed the wire: `None` is SQL NULL.
pub type Value = Option<Vec<u8>>;

/// A result column.
#[derive(Debug, Clone)]
pub struct Column {
    pub name: String,
    pub type_oid: u32,
    pub binary: bool,
}

/// One statement executed: an extended-protocol `Execute` or a simple `Query`.
#[derive(Debug, Clone, Default)]
pub struct Execution {
    pub sql: String,
    /// A simple-protocol query (text, no parameters): `BEGIN`, `COMMIT`.
    pub simple: bool,
    pub param_types: Vec<u32>,
    pub param_binary: Vec<bool>,
    pub params: Vec<Value>,
    pub columns: Vec<Column>,
    pub rows: Vec<Vec<Value>>,
    /// The round trip it belongs to (`ReadyForQuery` messages seen before it).
    pub round_trip: u64,
}

/// What one operation did on the wire.
#[derive(Debug, Clone, Default)]
pub struct Trips {
    /// Round trips (`ReadyForQuery` messages), pings included.
    pub total: u64,
    /// Bare `Sync`s (no extended-protocol message since the last one): a pool's liveness check on
    /// acquire (sqlx's `ping`), a round trip that carries no SQL.
    pub pings: u64,
    /// SQL text sent (simple queries and statements parsed).
    pub sql: Vec<String>,
    /// Every statement executed, in order.
    pub executions: Vec<Execution>,
}

/// A prepared statement, as `Parse` and the server's description of it made it.
#[derive(Debug, Clone, Default)]
struct Statement {
    sql: String,
    param_types: Vec<u32>,
    described_params: Vec<u32>,
    columns: Vec<Column>,
}

/// What the backend's next messages answer.
#[derive(Debug)]
enum Expect {
    DescribeStatement(String),
    DescribePortal,
    Execute(usize),
    Query(usize),
}

#[derive(Debug, Default)]
struct Connection {
    statements: HashMap<String, Statement>,
    bound: Option<Execution>,
    expect: VecDeque<Expect>,
    extended: bool,
}

#[derive(Debug, Default)]
struct Recorder {
    trips: Trips,
    connections: HashMap<u64, Connection>,
}

/// A running proxy; [`Wire::reset`] and [`Wire::take`] frame what one operation did.
#[derive(Debug, Clone)]
pub struct Wire {
    pub addr: SocketAddr,
    recorder: Arc<Mutex<Recorder>>,
}

impl Wire {
    pub async fn start(upstream: SocketAddr) -> anyhow::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let recorder = Arc::new(Mutex::new(Recorder::default()));
        let shared = Arc::clone(&recorder);
        let ids = AtomicU64::new(0);
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let recorder = Arc::clone(&shared);
                let id = ids.fetch_add(1, Ordering::Relaxed);
                tokio::spawn(async move {
                    if let Ok(server) = TcpStream::connect(upstream).await {
                        let _ = client.set_nodelay(true);
                        let _ = server.set_nodelay(true);
                        let (cr, cw) = client.into_split();
                        let (sr, sw) = server.into_split();
                        let up = tokio::spawn(pipe(cr, sw, Arc::clone(&recorder), id, true));
                        let down = tokio::spawn(pipe(sr, cw, recorder, id, false));
                        let _ = tokio::join!(up, down);
                    }
                });
            }
        });
        Ok(Self { addr, recorder })
    }

    /// Forgets what was recorded (the connections' prepared statements are kept).
    pub fn reset(&self) {
        if let Ok(mut r) = self.recorder.lock() {
            r.trips = Trips::default();
        }
    }

    /// Round trips, statements and executions since the last reset.
    pub fn take(&self) -> Trips {
        self.recorder
            .lock()
            .map(|mut r| std::mem::take(&mut r.trips))
            .unwrap_or_default()
    }
}

async fn pipe(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    recorder: Arc<Mutex<Recorder>>,
    connection: u64,
    frontend: bool,
) {
    let mut pending: Vec<u8> = Vec::new();
    // The frontend's first message (StartupMessage) has no type byte.
    let mut untyped_first = frontend;
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        let n = match from.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        pending.extend_from_slice(&chunk[..n]);
        loop {
            if untyped_first {
                let Some(len) = pending.get(0..4).map(be32) else {
                    break;
                };
                if pending.len() < len {
                    break;
                }
                pending.drain(..len);
                untyped_first = false;
                continue;
            }
            let (Some(&tag), Some(len)) = (pending.first(), pending.get(1..5).map(be32)) else {
                break;
            };
            if pending.len() < 1 + len {
                break;
            }
            if let Ok(mut r) = recorder.lock() {
                let body = pending.get(5..=len).unwrap_or_default();
                if frontend {
                    r.frontend(connection, tag, body);
                } else {
                    r.backend(connection, tag, body);
                }
            }
            pending.drain(..=len);
        }
        if to.write_all(&chunk[..n]).await.is_err() {
            break;
        }
    }
}

impl Recorder {
    fn frontend(&mut self, id: u64, tag: u8, body: &[u8]) {
        let Self { trips, connections } = self;
        let conn = connections.entry(id).or_default();
        let mut m = Reader::new(body);
        match tag {
            b'Q' => {
                let sql = m.cstr();
                trips.sql.push(cstr_text(&sql));
                trips.executions.push(Execution {
                    sql,
                    simple: true,
                    round_trip: trips.total,
                    ..Execution::default()
                });
                conn.expect
                    .push_back(Expect::Query(trips.executions.len() - 1));
            }
            b'P' => {
                let name = m.cstr();
                let sql = m.cstr();
                let count = m.u16();
                let param_types = (0..count).map(|_| m.u32()).collect();
                trips.sql.push(cstr_text(&sql));
                conn.statements.insert(
                    name,
                    Statement {
                        sql,
                        param_types,
                        ..Statement::default()
                    },
                );
                conn.extended = true;
            }
            b'B' => {
                conn.bound = Some(bind(conn, &mut m));
                conn.extended = true;
            }
            b'D' => {
                let kind = m.u8();
                let name = m.cstr();
                conn.expect.push_back(if kind == b'S' {
                    Expect::DescribeStatement(name)
                } else {
                    Expect::DescribePortal
                });
                conn.extended = true;
            }
            b'E' => {
                let mut execution = conn.bound.clone().unwrap_or_default();
                execution.round_trip = trips.total;
                trips.executions.push(execution);
                conn.expect
                    .push_back(Expect::Execute(trips.executions.len() - 1));
                conn.extended = true;
            }
            b'C' => conn.extended = true,
            b'S' => {
                if !conn.extended {
                    trips.pings += 1;
                }
                conn.extended = false;
            }
            _ => {}
        }
    }

    fn backend(&mut self, id: u64, tag: u8, body: &[u8]) {
        let Self { trips, connections } = self;
        let conn = connections.entry(id).or_default();
        let mut m = Reader::new(body);
        match (tag, conn.expect.front()) {
            (b'Z', _) => {
                trips.total += 1;
                conn.expect.clear();
            }
            (b't', Some(Expect::DescribeStatement(name))) => {
                let count = m.u16();
                let types = (0..count).map(|_| m.u32()).collect();
                if let Some(s) = conn.statements.get_mut(name) {
                    s.described_params = types;
                }
            }
            (b'T', Some(Expect::DescribeStatement(name))) => {
                let columns = row_description(&mut m);
                if let Some(s) = conn.statements.get_mut(name) {
                    s.columns = columns;
                }
                conn.expect.pop_front();
            }
            (b'T', Some(Expect::Query(i))) => {
                let columns = row_description(&mut m);
                if let Some(e) = trips.executions.get_mut(*i) {
                    e.columns = columns;
                }
            }
            (b'D', Some(Expect::Execute(i) | Expect::Query(i))) => {
                let count = m.u16();
                let row = (0..count).map(|_| m.value()).collect();
                if let Some(e) = trips.executions.get_mut(*i) {
                    e.rows.push(row);
                }
            }
            // The answer to a Describe, or the end of an Execute's rows.
            (b'T' | b'n', Some(Expect::DescribePortal))
            | (b'n', Some(Expect::DescribeStatement(_)))
            | (b'C' | b'I' | b's', Some(Expect::Execute(_))) => {
                conn.expect.pop_front();
            }
            _ => {}
        }
    }
}

/// A `Bind` of a prepared statement to the unnamed portal: what its `Execute` will run.
fn bind(conn: &Connection, m: &mut Reader<'_>) -> Execution {
    let _portal = m.cstr();
    let name = m.cstr();
    let formats: Vec<u16> = (0..m.u16()).map(|_| m.u16()).collect();
    let params: Vec<Value> = (0..m.u16()).map(|_| m.value()).collect();
    let result_formats: Vec<u16> = (0..m.u16()).map(|_| m.u16()).collect();
    let statement = conn.statements.get(&name).cloned().unwrap_or_default();
    let format_of = |list: &[u16], i: usize| match list {
        [] => false,
        [one] => *one == 1,
        many => many.get(i) == Some(&1),
    };
    let param_types = (0..params.len())
        .map(|i| {
            let parsed = statement.param_types.get(i).copied().unwrap_or(0);
            if parsed == 0 {
                statement.described_params.get(i).copied().unwrap_or(0)
            } else {
                parsed
            }
        })
        .collect();
    Execution {
        sql: statement.sql,
        simple: false,
        param_types,
        param_binary: (0..params.len()).map(|i| format_of(&formats, i)).collect(),
        params,
        columns: statement
            .columns
            .iter()
            .enumerate()
            .map(|(i, c)| Column {
                binary: format_of(&result_formats, i),
                ..c.clone()
            })
            .collect(),
        rows: Vec::new(),
        round_trip: 0,
    }
}

fn row_description(m: &mut Reader<'_>) -> Vec<Column> {
    (0..m.u16())
        .map(|_| {
            let name = m.cstr();
            let _table = m.u32();
            let _attribute = m.u16();
            let type_oid = m.u32();
            let _size = m.u16();
            let _modifier = m.u32();
            let format = m.u16();
            Column {
                name,
                type_oid,
                binary: format == 1,
            }
        })
        .collect()
}

fn be32(b: &[u8]) -> usize {
    b.get(0..4)
        .and_then(|b| <[u8; 4]>::try_from(b).ok())
        .map_or(0, |b| u32::from_be_bytes(b) as usize)
}
