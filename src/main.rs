//! The `market` binary. Everything it does lives in `market-http` (see `market_http::cli`).

fn main() -> std::process::ExitCode {
    market_http::cli::main()
}
