//! The `market-bench` command; everything is in the library (`src/lib.rs`, docs/PERFORMANCE.md).

fn main() -> anyhow::Result<()> {
    market_bench::run(std::env::args_os())
}
