//! Closed-loop load: `concurrency` connections, each sending its next request as soon as the last
//! one answered, for a warm-up and then a measured window (or until the work runs out).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use crate::http::{Conn, Response};

/// What one scenario sends and what counts as success.
pub struct Work {
    /// The `i`-th request, or `None` when the work is used up.
    pub request: Box<dyn Fn(u64) -> Option<Arc<[u8]>> + Send + Sync>,
    /// Whether a response is the expected one.
    pub check: Box<dyn Fn(&Response) -> bool + Send + Sync>,
}

/// Latency histogram in microseconds, 1 µs .. 60 s (longer values are clamped), 3 significant
/// figures.
#[expect(
    clippy::expect_used,
    reason = "constant bounds that hdrhistogram accepts"
)]
pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid histogram bounds")
}

/// What a run measured (warm-up excluded).
#[derive(Debug)]
pub struct Measured {
    pub ok: u64,
    pub errors: u64,
    /// The measured window: from the end of the warm-up to the deadline or the last answer.
    pub elapsed: Duration,
    pub latency: Histogram<u64>,
    /// Requests issued in total, warm-up included (for fixed work: how much was used).
    pub issued: u64,
    /// Whether the work ran out before the deadline.
    pub exhausted: bool,
    /// First few error descriptions, for the log.
    pub samples: Vec<String>,
}

struct Worker {
    ok: u64,
    errors: u64,
    latency: Histogram<u64>,
    last: Option<Instant>,
    samples: Vec<String>,
}

pub async fn run(
    addr: SocketAddr,
    concurrency: usize,
    warmup: Duration,
    duration: Duration,
    work: Work,
) -> Measured {
    let work = Arc::new(work);
    let next = Arc::new(AtomicU64::new(0));
    let sent = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let measure_from = start + warmup;
    let deadline = measure_from + duration;
    let mut tasks = Vec::with_capacity(concurrency);
    for _ in 0..concurrency {
        let work = Arc::clone(&work);
        let next = Arc::clone(&next);
        let sent = Arc::clone(&sent);
        tasks.push(tokio::spawn(async move {
            let mut conn = Conn::new(addr);
            let mut me = Worker {
                ok: 0,
                errors: 0,
                latency: histogram(),
                last: None,
                samples: Vec::new(),
            };
            loop {
                if Instant::now() >= deadline {
                    break;
                }
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(request) = (work.request)(i) else {
                    break;
                };
                sent.fetch_add(1, Ordering::Relaxed);
                let started = Instant::now();
                let result = conn.send(&request).await;
                let done = Instant::now();
                let good = match &result {
                    Ok(response) => (work.check)(response),
                    Err(_) => false,
                };
                if started < measure_from {
                    continue;
                }
                me.last = Some(done);
                let micros = u64::try_from((done - started).as_micros()).unwrap_or(u64::MAX);
                me.latency.saturating_record(micros.max(1));
                if good {
                    me.ok += 1;
                } else {
                    me.errors += 1;
                    if me.samples.len() < 3 {
                        me.samples.push(match result {
                            Ok(r) => format!(
                                "status {}: {}",
                                r.status,
                                String::from_utf8_lossy(&r.body[..r.body.len().min(300)])
                            ),
                            Err(e) => format!("{e:#}"),
                        });
                    }
                }
            }
            me
        }));
    }
    let mut total = Measured {
        ok: 0,
        errors: 0,
        elapsed: Duration::ZERO,
        latency: histogram(),
        issued: 0,
        exhausted: false,
        samples: Vec::new(),
    };
    let mut last = None::<Instant>;
    for task in tasks {
        if let Ok(worker) = task.await {
            total.ok += worker.ok;
            total.errors += worker.errors;
            let _ = total.latency.add(&worker.latency);
            last = last.max(worker.last);
            for s in worker.samples {
                if total.samples.len() < 5 {
                    total.samples.push(s);
                }
            }
        }
    }
    total.issued = sent.load(Ordering::Relaxed);
    // Every worker stopped before the deadline: the work ran out.
    total.exhausted = Instant::now() < deadline;
    let end = if total.exhausted {
        last.unwrap_or(measure_from).max(measure_from)
    } else {
        deadline
    };
    total.elapsed = end.saturating_duration_since(measure_from);
    total
}
