//! The benchmark's smoke mode (`market-bench --smoke`, docs/PERFORMANCE.md), so the tool cannot rot:
//! every scenario for about a second at a tiny load, against the `market` binary of this very
//! build. It fails on any request error and on a delivered purchase not ending `fulfilled` with
//! exactly one token (the tool's own checks, which include pgbench's replay of the service's SQL
//! leaving its purchases as the service would); it prints figures and asserts no timing.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests fail by panicking"
)]

use serde_json::Value;

#[test]
fn the_benchmark_smoke_runs_every_scenario_against_this_build_without_an_error() {
    // Arrange: the PostgreSQL server the other tests use (the tool creates and drops its own database).
    let pg = tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(testkit::server_url());
    let out = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("bench-smoke.json");
    let _ = std::fs::remove_file(&out);

    // Act
    let run = market_bench::run([
        "market-bench",
        "--smoke",
        "--server",
        env!("CARGO_BIN_EXE_market"),
        "--pg",
        &pg,
        "--out",
        out.to_str().unwrap(),
    ]);

    // Assert: the run passed its own checks, and its report shows every scenario did work.
    run.unwrap_or_else(|e| panic!("market-bench --smoke failed: {e:#}"));
    let report: Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    assert_eq!(report["mode"], "smoke");
    let rows = report["rows"].as_array().unwrap();
    let scenarios: Vec<&str> = rows
        .iter()
        .map(|r| r["scenario"].as_str().unwrap())
        .collect();
    for row in rows {
        assert!(row["requests"].as_u64().unwrap() > 0, "{row}");
        assert_eq!(row["errors"], 0, "{row}");
    }
    for needle in [
        "healthz",
        "catalog",
        "fulfilment: webhook",
        "success page: already fulfilled",
        "success page: paid",
        "limit a: pgbench tpcb-like",
        "fulfilment: 3 instances",
        "sslmode=disable",
        "checkout: POST",
        "Xano 2 s",
        "limit a2: pgbench, the service's SQL",
        "refill: free plan",
        "refill: paid limit",
    ] {
        assert!(
            scenarios.iter().any(|s| s.contains(needle)),
            "no {needle} scenario in {scenarios:?}"
        );
    }
    assert!(report["startup_median_ms"].as_f64().unwrap() > 0.0);
    assert!(
        report["round_trips"]["measured_on_the_wire"]
            .as_u64()
            .unwrap()
            > 0
    );
    assert!(report["round_trips"]["replay_commands"].as_u64().unwrap() > 0);
    let checks = report["verification"].as_array().unwrap();
    assert!(!checks.is_empty(), "the tool checked nothing");
    assert!(checks.iter().all(|c| c["ok"] == true), "{checks:?}");
}
