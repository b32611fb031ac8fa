//! The `market` binary: the service (`market serve`, the default) and the operators' commands.
//!
//! - `cli`: every command and flag (clap); `config`: the flags and environment variables shared
//!   by several commands, and their parsers;
//! - `settings`: `market serve`'s flags turned into typed settings, once, before anything starts;
//! - `telemetry`: logging, set up once before a command runs;
//! - `memory`: glibc's malloc arenas capped before the first thread starts;
//! - `commands`: one module per command; `serve` builds `market_http::startup::Application`;
//! - `sandbox_mode` (the default-on `sandbox` feature): the simulators of Xano and Stripe
//!   in-process, and the demo catalog compiled in. A build without the feature has neither.
//!
//! The domain is `market-core`; the HTTP service is `market-http`.

use std::process::ExitCode;

mod cli;
mod commands;
mod config;
mod memory;
#[cfg(feature = "sandbox")]
mod sandbox_mode;
mod settings;
mod telemetry;

fn main() -> ExitCode {
    memory::limit_arenas();
    let command = cli::Cli::parse_or_exit().into_command();
    telemetry::init(command.log_format());
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("market: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(commands::run(command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("market: {e:#}");
            ExitCode::FAILURE
        }
    }
}
