//! The table, the ratios, the targets, and the JSON report.

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::cpu::Usage;
use crate::memory::Breakdown;

/// One measured line of the table.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub scenario: String,
    pub concurrency: usize,
    /// Length of the measured window.
    pub seconds: f64,
    pub requests: u64,
    pub errors: u64,
    /// Requests (or transactions) per second.
    pub throughput: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    /// The server's peak RSS during the scenario (`VmHWM`), when the server was involved.
    pub server_peak_rss_mib: Option<f64>,
    pub note: String,
    /// Where the machine's time went in the measured window (scenarios against a server).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu: Option<Usage>,
    /// What the (first) server's memory held at the end of the scenario.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory: Option<Breakdown>,
    /// The measured window's latencies, so that several windows can be pooled (not in the JSON).
    #[serde(skip)]
    pub latency: Histogram<u64>,
}

impl Row {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        scenario: &str,
        concurrency: usize,
        seconds: f64,
        requests: u64,
        errors: u64,
        latency: &Histogram<u64>,
        rss: Option<u64>,
        note: String,
    ) -> Self {
        let ms = |q: f64| latency.value_at_quantile(q) as f64 / 1000.0;
        Self {
            scenario: scenario.to_owned(),
            concurrency,
            seconds,
            requests,
            errors,
            throughput: if seconds > 0.0 {
                requests as f64 / seconds
            } else {
                0.0
            },
            p50_ms: ms(0.50),
            p90_ms: ms(0.90),
            p99_ms: ms(0.99),
            max_ms: latency.max() as f64 / 1000.0,
            server_peak_rss_mib: rss.map(|b| b as f64 / (1024.0 * 1024.0)),
            note,
            cpu: None,
            memory: None,
            latency: latency.clone(),
        }
    }
}

/// `a / b`, or 0 when there is nothing to divide by (a scenario that did no work).
pub fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 { a / b } else { 0.0 }
}

/// Requests per second over several rows' measured windows together.
pub fn pooled_throughput<'a>(rows: impl Iterator<Item = &'a Row>) -> f64 {
    let (requests, seconds) = rows.fold((0.0, 0.0), |(r, s), row| {
        (r + row.requests as f64, s + row.seconds)
    });
    ratio(requests, seconds)
}

/// A target of the issue, evaluated (reported, never asserted).
#[derive(Debug, Clone, Serialize)]
pub struct Target {
    pub name: String,
    pub wanted: String,
    pub measured: String,
    pub met: bool,
}

/// A correctness check of a scenario's effects (e.g. every delivered purchase holds one token).
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub ok: bool,
    pub text: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Ratio {
    pub name: String,
    pub value: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub mode: String,
    pub machine: serde_json::Value,
    pub rows: Vec<Row>,
    pub ratios: Vec<Ratio>,
    pub targets: Vec<Target>,
    pub startup_ms: Vec<f64>,
    pub startup_median_ms: f64,
    pub round_trips: serde_json::Value,
    pub verification: Vec<Check>,
    pub notes: Vec<String>,
}

/// What makes the run a failure: a scenario with errors, or a failed check. Targets missed are
/// reported, not failures.
pub fn failures(report: &Report) -> Vec<String> {
    let errors = report
        .rows
        .iter()
        .filter(|r| r.errors > 0)
        .map(|r| format!("{}: {} errors", r.scenario, r.errors));
    let checks = report
        .verification
        .iter()
        .filter(|c| !c.ok)
        .map(|c| c.text.clone());
    errors.chain(checks).collect()
}

/// The whole report, as the tool prints it.
pub fn print(report: &Report) {
    println!();
    println!("machine");
    if let Some(facts) = report.machine.as_object() {
        for (k, v) in facts {
            println!(
                "  {k:<20} {}",
                v.as_str().map_or_else(|| v.to_string(), str::to_owned)
            );
        }
    }
    println!();
    let w = report
        .rows
        .iter()
        .map(|r| r.scenario.chars().count())
        .max()
        .unwrap_or(0)
        .max(28);
    println!(
        "{:<w$} {:>4} {:>6} {:>8} {:>6} {:>9} {:>8} {:>8} {:>8} {:>8} {:>8}",
        "scenario",
        "conc",
        "secs",
        "requests",
        "errors",
        "per sec",
        "p50 ms",
        "p90 ms",
        "p99 ms",
        "max ms",
        "RSS MiB"
    );
    println!("{}", "-".repeat(w + 83));
    for r in &report.rows {
        println!(
            "{:<w$} {:>4} {:>6.1} {:>8} {:>6} {:>9.0} {:>8.2} {:>8.2} {:>8.2} {:>8.1} {:>8}",
            r.scenario,
            r.concurrency,
            r.seconds,
            r.requests,
            r.errors,
            r.throughput,
            r.p50_ms,
            r.p90_ms,
            r.p99_ms,
            r.max_ms,
            r.server_peak_rss_mib
                .map_or_else(|| "-".to_owned(), |m| format!("{m:.1}"))
        );
    }
    print_details(report);
    print_verdict(report);
}

/// Start-up, round trips, the rows' notes, where the time went and what the memory held.
fn print_details(report: &Report) {
    println!(
        "start-up to /readyz (migrations applied): median {:.0} ms over {:?}",
        report.startup_median_ms,
        report
            .startup_ms
            .iter()
            .map(|m| format!("{m:.0}"))
            .collect::<Vec<_>>()
    );
    let trips = &report.round_trips;
    println!(
        "round trips per fulfilment: {} on the wire ({} of them a pool ping on acquire); {} commands in limit a2's replay",
        trips["measured_on_the_wire"], trips["pool_pings"], trips["replay_commands"]
    );
    if let Some(statements) = trips["statements"].as_array() {
        for s in statements {
            let s = s.as_str().unwrap_or_default();
            println!("  > {}", s.chars().take(160).collect::<String>());
        }
    }
    for r in report.rows.iter().filter(|r| !r.note.trim().is_empty()) {
        println!("  {}: {}", r.scenario, r.note.trim());
    }
    println!();
    println!("where the time went (measured window)");
    for r in &report.rows {
        if let Some(cpu) = &r.cpu {
            println!("  {}: {}", r.scenario, cpu.describe());
        }
    }
    println!();
    println!("server memory at the end of each scenario");
    for r in &report.rows {
        if let Some(m) = &r.memory {
            println!("  {}: {}", r.scenario, m.describe());
        }
    }
}

/// Ratios, targets, checks and notes.
fn print_verdict(report: &Report) {
    println!();
    println!("ratios");
    for r in &report.ratios {
        println!("  {:<56} {:>6.2}", r.name, r.value);
    }
    println!();
    println!("targets (reported, not asserted)");
    for t in &report.targets {
        println!(
            "  [{}] {:<34} wanted {:<24} measured {}",
            if t.met { "met " } else { "MISS" },
            t.name,
            t.wanted,
            t.measured
        );
    }
    println!();
    println!("checks");
    for v in &report.verification {
        println!("  [{}] {}", if v.ok { "ok  " } else { "FAIL" }, v.text);
    }
    for n in &report.notes {
        println!("  note: {n}");
    }
}
