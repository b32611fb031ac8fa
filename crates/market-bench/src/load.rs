//! Closed-loop load: `concurrency` connections (spread over one or more servers round-robin, by
//! connection), each sending its next request as soon as the last one answered, for a warm-up and
//! then a measured window (or until the work runs out). A finite piece of work spends at most a
//! quarter of itself on the warm-up, so a fast server cannot use it all up before the measurement
//! starts.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use crate::http::{Conn, Response};

/// What one scenario sends and what counts as success.
pub struct Work {
    /// The `i`-th request, or `None` when the work is used up.
    pub request: Box<dyn Fn(u64) -> Option<Arc<[u8]>> + Send + Sync>,
    /// Whether a response is the expected one.
    pub check: Box<dyn Fn(&Response) -> bool + Send + Sync>,
    /// How many requests there are, when the work is finite.
    pub size: Option<u64>,
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

/// Runs `work` over `concurrency` connections, connection `c` to `addrs[c % addrs.len()]`.
pub async fn run(
    addrs: &[SocketAddr],
    concurrency: usize,
    warmup: Duration,
    duration: Duration,
    work: Work,
) -> Measured {
    let warm_requests = work.size.map_or(u64::MAX, |n| n / 4);
    let work = Arc::new(work);
    let next = Arc::new(AtomicU64::new(0));
    let sent = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    // The measured window opens at the end of the warm-up, or earlier, with the first request
    // past the warm-up's share of finite work; the first worker to get there sets it.
    let opened = Arc::new(OnceLock::<Instant>::new());
    let mut tasks = Vec::with_capacity(concurrency);
    for c in 0..concurrency {
        let Some(&addr) = addrs.get(c % addrs.len().max(1)) else {
            break;
        };
        let work = Arc::clone(&work);
        let next = Arc::clone(&next);
        let sent = Arc::clone(&sent);
        let opened = Arc::clone(&opened);
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
                let now = Instant::now();
                let measure_from = *opened.get().unwrap_or(&(start + warmup));
                if now >= measure_from + duration {
                    break;
                }
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(request) = (work.request)(i) else {
                    break;
                };
                let warming = now < start + warmup && i < warm_requests;
                if !warming {
                    let _ = opened.set(now.min(start + warmup));
                }
                sent.fetch_add(1, Ordering::Relaxed);
                let started = Instant::now();
                let result = conn.send(&request).await;
                let done = Instant::now();
                let good = match &result {
                    Ok(response) => (work.check)(response),
                    Err(_) => false,
                };
                if warming {
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
                        me.samples.push(describe(&result));
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
    let measure_from = *opened.get().unwrap_or(&(start + warmup));
    let deadline = measure_from + duration;
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

/// One failed request, for the log.
fn describe(result: &anyhow::Result<Response>) -> String {
    match result {
        Ok(r) => format!(
            "status {}: {}",
            r.status,
            String::from_utf8_lossy(&r.body[..r.body.len().min(300)])
        ),
        Err(e) => format!("{e:#}"),
    }
}
