//! Capture of all `tracing` output of a test process, for "no secret is ever logged" tests.
//!
//! The subscriber is process-global (spawned tasks and server worker threads log too), so a test
//! binary that uses it should contain only the tests that want their logs searched.

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

use tracing_subscriber::fmt::MakeWriter;

/// Everything logged at TRACE (in both the human and the JSON format, since secrets can hide in
/// either) since the capture was installed.
#[derive(Clone, Debug)]
pub struct LogCapture {
    buffer: Arc<Mutex<Vec<u8>>>,
}

impl LogCapture {
    /// Installs the capture as the global subscriber, once per process; later calls return the same
    /// capture.
    pub fn install() -> Self {
        static CAPTURE: OnceLock<LogCapture> = OnceLock::new();
        CAPTURE
            .get_or_init(|| {
                use tracing_subscriber::layer::SubscriberExt;
                use tracing_subscriber::util::SubscriberInitExt;
                let capture = LogCapture {
                    buffer: Arc::new(Mutex::new(Vec::new())),
                };
                let subscriber = tracing_subscriber::registry()
                    .with(tracing_subscriber::filter::LevelFilter::TRACE)
                    .with(
                        tracing_subscriber::fmt::layer()
                            .with_ansi(false)
                            .with_writer(capture.clone()),
                    )
                    .with(
                        tracing_subscriber::fmt::layer()
                            .json()
                            .with_writer(capture.clone()),
                    );
                // `try_init` also routes the `log` crate's records (sqlx, hyper, …) into the capture.
                subscriber
                    .try_init()
                    .expect("no other global subscriber in a log-capturing test binary");
                capture
            })
            .clone()
    }

    /// The captured text so far.
    pub fn contents(&self) -> String {
        let buffer = self
            .buffer
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        String::from_utf8_lossy(&buffer).into_owned()
    }

    /// Panics naming the secret's label (never the secret) and the line it appeared in, redacted.
    pub fn assert_absent(&self, label: &str, secret: &str) {
        assert!(
            !secret.is_empty(),
            "{label}: an empty secret cannot be searched for"
        );
        let contents = self.contents();
        if let Some(line) = contents.lines().find(|line| line.contains(secret)) {
            panic!(
                "{label} appears in the logs, in: {}",
                line.replace(secret, "<SECRET>")
            );
        }
    }
}

impl Write for LogCapture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.buffer
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for LogCapture {
    type Writer = LogCapture;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}
