//! Running the real `market` binary from tests: start it, read its banner, stop it.
#![allow(dead_code, reason = "each test binary uses a different part")]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// A `market` process, killed when dropped.
pub struct Market {
    pub child: Child,
    /// The banner's `storefront` URL, without the trailing slash.
    pub url: String,
    /// The banner's `label  value` lines (`storefront`, `admin token`, `xano sim`, …).
    pub banner: Vec<(String, String)>,
    /// Every line printed up to the end of the banner.
    pub lines: Vec<String>,
    stdout: mpsc::Receiver<String>,
}

impl Market {
    /// Starts `market <args>` with `env`, from the workspace root, and waits for its banner.
    pub fn start(args: &[&str], env: &[(&str, &str)]) -> Self {
        Self::start_in(std::path::Path::new(env!("CARGO_MANIFEST_DIR")), args, env)
    }

    /// [`Market::start`] with `dir` as the working directory.
    pub fn start_in(dir: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> Self {
        let mut command = Command::new(env!("CARGO_BIN_EXE_market"));
        command
            .args(args)
            .current_dir(dir)
            .env("MARKET_LOG_FORMAT", "json")
            // Any free port: tests may run beside another `market` using the default one.
            .env("MARKET_METRICS_BIND", "127.0.0.1:0")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        for (key, value) in env {
            command.env(key, value);
        }
        let mut child = command.spawn().expect("start the market binary");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });

        let mut banner = Vec::new();
        let mut lines = Vec::new();
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        loop {
            let remaining = deadline.saturating_duration_since(std::time::Instant::now());
            let Ok(line) = rx.recv_timeout(remaining) else {
                let _ = child.kill();
                panic!(
                    "market printed no banner within 60 s (exit: {:?})",
                    child.try_wait()
                );
            };
            lines.push(line.clone());
            let trimmed = line.trim();
            if let Some((label, value)) = trimmed.split_once("  ") {
                banner.push((label.trim().to_owned(), value.trim().to_owned()));
            }
            if trimmed.starts_with("metrics") {
                // The banner's last fixed line, then optional ones; give them a moment.
                while let Ok(line) = rx.recv_timeout(Duration::from_millis(200)) {
                    if let Some((label, value)) = line.trim().split_once("  ") {
                        banner.push((label.trim().to_owned(), value.trim().to_owned()));
                    }
                }
                break;
            }
        }
        let url = banner
            .iter()
            .find(|(label, _)| label == "storefront")
            .map(|(_, value)| value.trim_end_matches('/').to_owned())
            .expect("a storefront line in the banner");
        Self {
            child,
            url,
            banner,
            lines,
            stdout: rx,
        }
    }

    /// A banner value by label, first word only (`admin token  adm_…   (generated …)`).
    pub fn banner_value(&self, label: &str) -> Option<String> {
        self.banner
            .iter()
            .find(|(l, _)| l == label)
            .and_then(|(_, v)| v.split_whitespace().next().map(str::to_owned))
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Market {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A free loopback port (bound, then released: good enough for tests on one machine).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// A `MARKET_DATA_KEY` for instances whose tokens a test reads back (32 bytes of `B`).
pub const DATA_KEY: &str = "test:QkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkI=";

/// The token strings of the `install_token` rows `condition` picks, opened with [`DATA_KEY`] (the
/// table holds no plain token).
pub async fn tokens_where(db: &sqlx::PgPool, condition: &str) -> Vec<String> {
    let keys = market_core::envelope::DataKeys::parse(DATA_KEY).expect("the test key parses");
    let envelope = market_core::keys::open(db, keys)
        .await
        .expect("open the envelope");
    let rows: Vec<(market_core::ListingId, String, Vec<u8>)> = sqlx::query_as(&format!(
        "select listing_id, token_key_id, token_sealed from install_token
         where {condition} order by install_token_id"
    ))
    .fetch_all(db)
    .await
    .expect("read tokens");
    rows.into_iter()
        .map(|(listing, key_id, sealed)| {
            let token = market_core::keys::open_token(&envelope, listing, key_id, sealed)
                .expect("a token DATA_KEY opens");
            token.expose().to_owned()
        })
        .collect()
}
