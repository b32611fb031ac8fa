//! `market-scale`: the reads of a marketplace grown large (1 000 000 purchases, 10 000 listings),
//! measured on a seeded database; see `market_bench::scale`.

fn main() -> anyhow::Result<()> {
    market_bench::scale::run(std::env::args_os())
}
