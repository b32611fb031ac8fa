//! The recorded history of a run: every request the driver made and how it was answered, every
//! webhook delivery, every nemesis action, every crash. The checker reads it; on failure the
//! entries of the purchases involved are printed.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Instant;

use uuid::Uuid;

/// What a request was for; decides which statuses are acceptable.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Call {
    Checkout,
    SuccessPage,
    Webhook,
    Purchase,
    AdminRefund,
    AdminReconcile,
    /// `POST /v1/purchases/{id}/rotate` with the receipt key.
    Rotate,
    /// `POST /v1/purchases/{id}/upgrade` with the receipt key.
    Upgrade,
}

impl Call {
    /// The statuses this call may be answered with when the service works: 2xx, or a documented
    /// 4xx that the request can legitimately meet.
    pub fn acceptable(self, status: u16) -> bool {
        match self {
            Self::Checkout => matches!(status, 200 | 201),
            Self::SuccessPage | Self::Webhook | Self::Purchase | Self::AdminReconcile => {
                status == 200
            }
            // 200 `already_refunded`: a retry after a lost answer, the refund landed meanwhile.
            // 409 `not_refundable`: the refund raced a dispute event.
            Self::AdminRefund => matches!(status, 200 | 202 | 409),
            // 409 `not_rotatable`: the purchase held no assigned token at that moment (the driver
            // asks only once its token is shown, and treats a lasting 409 as an error).
            Self::Rotate => matches!(status, 202 | 409),
            // 201 a new upgrade, 200 the same one asked again while unpaid; 409
            // `upgrade_in_progress`: asked again once it was paid (the driver treats any other 409
            // as an error).
            Self::Upgrade => matches!(status, 200 | 201 | 409),
        }
    }
}

/// How a request ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Status(u16),
    /// No HTTP answer: refused, reset, timed out (the instance was down, paused or crashed).
    Transport(String),
}

#[derive(Clone, Debug)]
pub struct Request {
    pub start_ms: u64,
    pub end_ms: u64,
    pub instance: usize,
    pub call: Call,
    pub purchase: Option<Uuid>,
    pub outcome: Outcome,
    pub detail: String,
}

#[derive(Clone, Debug)]
pub struct Entry {
    pub at_ms: u64,
    pub purchase: Option<Uuid>,
    pub instance: Option<usize>,
    pub what: String,
}

/// A window during which an instance was, on purpose, not answering normally.
#[derive(Clone, Debug)]
pub struct Disturbance {
    pub instance: usize,
    pub start_ms: u64,
    pub end_ms: Option<u64>,
    pub why: String,
}

pub struct History {
    start: Instant,
    entries: Mutex<Vec<Entry>>,
    requests: Mutex<Vec<Request>>,
    disturbances: Mutex<Vec<Disturbance>>,
    /// Windows (start, end in ms) in which one sample of the job monitor (two reads and a commit)
    /// took over a second.
    stalls: Mutex<Vec<(u64, u64)>>,
    counters: Mutex<BTreeMap<String, u64>>,
}

impl History {
    pub fn new() -> Self {
        Self {
            start: Instant::now(),
            entries: Mutex::new(Vec::new()),
            requests: Mutex::new(Vec::new()),
            disturbances: Mutex::new(Vec::new()),
            stalls: Mutex::new(Vec::new()),
            counters: Mutex::new(BTreeMap::new()),
        }
    }

    pub fn now_ms(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    pub fn record(&self, purchase: Option<Uuid>, instance: Option<usize>, what: impl Into<String>) {
        let entry = Entry {
            at_ms: self.now_ms(),
            purchase,
            instance,
            what: what.into(),
        };
        self.entries.lock().unwrap().push(entry);
    }

    pub fn count(&self, counter: &str) {
        self.add(counter, 1);
    }

    pub fn add(&self, counter: &str, n: u64) {
        *self
            .counters
            .lock()
            .unwrap()
            .entry(counter.to_owned())
            .or_default() += n;
    }

    pub fn counters(&self) -> BTreeMap<String, u64> {
        self.counters.lock().unwrap().clone()
    }

    pub fn request(&self, request: Request) {
        let what = format!(
            "{:?} -> {} {}",
            request.call,
            match &request.outcome {
                Outcome::Status(s) => s.to_string(),
                Outcome::Transport(e) => format!("transport error ({e})"),
            },
            request.detail
        );
        self.entries.lock().unwrap().push(Entry {
            at_ms: request.start_ms,
            purchase: request.purchase,
            instance: Some(request.instance),
            what,
        });
        self.requests.lock().unwrap().push(request);
    }

    pub fn requests(&self) -> Vec<Request> {
        self.requests.lock().unwrap().clone()
    }

    /// Opens a disturbance window on `instance`; returns its index for [`History::end_disturbance`].
    pub fn begin_disturbance(&self, instance: usize, why: &str) -> usize {
        let mut all = self.disturbances.lock().unwrap();
        all.push(Disturbance {
            instance,
            start_ms: self.now_ms(),
            end_ms: None,
            why: why.to_owned(),
        });
        all.len() - 1
    }

    pub fn end_disturbance(&self, index: usize) {
        let now = self.now_ms();
        if let Some(d) = self.disturbances.lock().unwrap().get_mut(index) {
            d.end_ms = Some(now);
        }
    }

    /// How many instances are down now: paused, killed or crashed and not yet back (an instance
    /// with crash points armed is up).
    pub fn instances_down(&self) -> usize {
        let all = self.disturbances.lock().unwrap();
        let mut down: Vec<usize> = all
            .iter()
            .filter(|d| d.end_ms.is_none() && d.why != "crash points armed")
            .map(|d| d.instance)
            .collect();
        down.sort_unstable();
        down.dedup();
        down.len()
    }

    pub fn disturbances(&self) -> Vec<Disturbance> {
        self.disturbances.lock().unwrap().clone()
    }

    /// Records that PostgreSQL took from `start_ms` to `end_ms` to answer one sample of the job
    /// monitor.
    pub fn database_stalled(&self, start_ms: u64, end_ms: u64) {
        self.stalls.lock().unwrap().push((start_ms, end_ms));
        self.record(
            None,
            None,
            format!(
                "DATABASE stalled: a sample of two reads and a commit took {} ms",
                end_ms - start_ms
            ),
        );
    }

    /// The database's write stalls, as (start, end) in ms.
    pub fn stalls(&self) -> Vec<(u64, u64)> {
        self.stalls.lock().unwrap().clone()
    }

    pub fn entries_of(&self, purchase: Uuid) -> Vec<Entry> {
        self.entries
            .lock()
            .unwrap()
            .iter()
            .filter(|e| e.purchase == Some(purchase))
            .cloned()
            .collect()
    }

    /// Nemesis and crash entries between two instants (context for a purchase's story).
    pub fn nemesis_between(&self, from_ms: u64, to_ms: u64) -> Vec<Entry> {
        self.entries
            .lock()
            .unwrap()
            .iter()
            .filter(|e| {
                e.purchase.is_none()
                    && !e.what.starts_with("Checkout")
                    && (from_ms..=to_ms).contains(&e.at_ms)
            })
            .cloned()
            .collect()
    }

    /// Every nemesis action and crash, in order.
    pub fn timeline(&self) -> Vec<Entry> {
        self.entries
            .lock()
            .unwrap()
            .iter()
            .filter(|e| e.purchase.is_none() && !e.what.starts_with("Checkout"))
            .cloned()
            .collect()
    }
}

pub fn format_entry(e: &Entry) -> String {
    let instance = e
        .instance
        .map_or_else(|| "-".to_owned(), |i| format!("i{i}"));
    format!(
        "  {:>8.3}s {instance:>3} {}",
        e.at_ms as f64 / 1000.0,
        e.what
    )
}
