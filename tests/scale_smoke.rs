//! The scale benchmark's smoke mode (`market-scale --smoke`), so the tool cannot rot: a tiny seed
//! (1 000 purchases, 30 listings) made the way the full one is, every hot query's plan checked
//! (with sequential scans disabled, so a `Seq Scan` left means no index applies), and every
//! scenario run for a fraction of a second against the `market` binary of this very build. It fails
//! on a request error, a catalog walk that misses or repeats a listing, or such a plan; it prints
//! figures and asserts no timing.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests fail by panicking"
)]

#[test]
fn the_scale_benchmark_smoke_seeds_checks_every_plan_and_runs_every_read_without_an_error() {
    // Arrange: the PostgreSQL server the other tests use (the tool creates and drops its own
    // database).
    let pg = tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(testkit::server_url());

    // Act
    let run = market_bench::scale::run([
        "market-scale",
        "--smoke",
        "--server",
        env!("CARGO_BIN_EXE_market"),
        "--pg",
        &pg,
    ]);

    // Assert: the run passed its own checks (plans, errors, the catalog walk).
    run.unwrap_or_else(|e| panic!("market-scale --smoke failed: {e:#}"));
}
