//! The checker's reading of the request history: every answer 2xx or a documented 4xx, no 5xx
//! (PostgreSQL is never made unreachable), transport errors only where the nemesis had that
//! instance down, paused or crash-armed, and reads that never go back in real time.

use std::collections::HashMap;

use uuid::Uuid;

use crate::checker::Checker;
use crate::driver::Driver;
use crate::history::{History, Outcome};

fn rank(status: &str) -> u8 {
    match status {
        "pending" => 0,
        "paid" => 1,
        "fulfilled" => 2,
        _ => 3,
    }
}

/// What the request checker counted apart from the violations.
#[derive(Default)]
pub struct Excused {
    pub transport_errors: u64,
    /// Error answers to requests in flight when their instance was frozen.
    pub answered_after_freeze: u64,
    /// 503 answers to requests in flight while the database stalled.
    pub answered_in_stall: u64,
}

/// Checks every request of the history.
pub fn check_requests(c: &mut Checker, history: &History, driver: &Driver) -> Excused {
    // Requests.
    let disturbances = history.disturbances();
    let stalls = history.stalls();
    let mut excused = Excused::default();
    for request in history.requests() {
        match &request.outcome {
            Outcome::Status(status) => {
                // A frozen process answers nothing; when it wakes up (6–12 s later) the requests
                // that reached it meanwhile, or were in flight, may find their own timers run
                // out: actix's request-head timeout (408, its clock is a cached instant that is
                // stale right after the freeze) or the pool's acquire timeout (503
                // `unavailable`). That is the freeze speaking, as a transport error is the kill
                // speaking: counted apart, not a violation. Anything else (500 above all) is.
                let frozen_in_flight = matches!(status, 408 | 503)
                    && disturbances.iter().any(|d| {
                        d.instance == request.instance
                            && d.why == "SIGSTOP"
                            && d.start_ms <= request.end_ms
                            && d.end_ms.is_none_or(|end| request.start_ms <= end + 500)
                    });
                if frozen_in_flight {
                    excused.answered_after_freeze += 1;
                    continue;
                }
                // The database stalled (a sample of the job monitor, two reads and a commit, took
                // over a second) while this request was in flight: it waited for a pooled connection
                // until the pool's acquire timeout (5 s) and answered 503 `unavailable`, as it
                // should when PostgreSQL does not answer. The machine speaking, not the service;
                // a 500 is still a violation.
                let in_stall = *status == 503
                    && stalls
                        .iter()
                        .any(|(start, end)| *start <= request.end_ms && request.start_ms <= *end);
                if in_stall {
                    excused.answered_in_stall += 1;
                    continue;
                }
                c.check(request.call.acceptable(*status), request.purchase, || {
                    format!(
                        "{:?} to instance {} answered {status}{} at {:.3}s: {}",
                        request.call,
                        request.instance,
                        if *status >= 500 { " (5xx)" } else { "" },
                        request.start_ms as f64 / 1000.0,
                        request.detail
                    )
                });
            }
            Outcome::Transport(kind) => {
                excused.transport_errors += 1;
                let explained = disturbances.iter().any(|d| {
                    d.instance == request.instance
                        && d.start_ms <= request.end_ms + 500
                        && d.end_ms.is_none_or(|end| end + 2000 >= request.start_ms)
                });
                c.check(explained, request.purchase, || {
                    format!(
                        "{:?} to instance {} failed in transport ({kind}) at {:.3}s–{:.3}s with the instance undisturbed",
                        request.call,
                        request.instance,
                        request.start_ms as f64 / 1000.0,
                        request.end_ms as f64 / 1000.0
                    )
                });
            }
        }
    }

    // Reads never go back in real time.
    let observations = driver.observations.lock().unwrap().clone();
    let mut by_p: HashMap<Uuid, Vec<_>> = HashMap::new();
    for o in observations {
        by_p.entry(o.purchase).or_default().push(o);
    }
    for (p, list) in &by_p {
        for a in list {
            for b in list.iter().filter(|b| b.start_ms > a.end_ms) {
                let ok = rank(&b.status) > rank(&a.status)
                    || (rank(&b.status) == rank(&a.status)
                        && (rank(&a.status) < 3 || a.status == b.status));
                c.check(ok, Some(*p), || {
                    format!(
                        "read went back: {} (ended {:.3}s) then {} (started {:.3}s)",
                        a.status,
                        a.end_ms as f64 / 1000.0,
                        b.status,
                        b.start_ms as f64 / 1000.0
                    )
                });
            }
        }
    }
    excused
}
