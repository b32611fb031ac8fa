//! Capture of all `tracing` output of a test process, for "no secret is ever logged" tests.
//!
//! The subscriber is process-global (spawned tasks and server worker threads log too), so a test
//! binary that uses it should contain only the tests that want their logs searched. One capture
//! serves every such binary, so that each does not hand-write its own writer and subscriber.
//!
//! [`LogCapture::install_with_span_events`] also writes a line when a span opens and closes (with
//! its fields), for code whose secrets could sit in span fields rather than in events.

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::fmt::format::FmtSpan;

/// Everything logged at TRACE (in both the human and the JSON format, since secrets can hide in
/// either) since the capture was installed.
#[derive(Clone, Debug)]
pub struct LogCapture {
    buffer: Arc<Mutex<Vec<u8>>>,
    span_events: bool,
}

impl LogCapture {
    /// Installs the capture as the global subscriber, once per process; later calls return the same
    /// capture.
    pub fn install() -> Self {
        Self::install_once(false)
    }

    /// Like [`LogCapture::install`], and also captures a line when each span opens and closes,
    /// with the span's fields.
    pub fn install_with_span_events() -> Self {
        Self::install_once(true)
    }

    fn install_once(span_events: bool) -> Self {
        static CAPTURE: OnceLock<LogCapture> = OnceLock::new();
        let capture = CAPTURE
            .get_or_init(|| {
                use tracing_subscriber::layer::SubscriberExt;
                use tracing_subscriber::util::SubscriberInitExt;
                let capture = LogCapture {
                    buffer: Arc::new(Mutex::new(Vec::new())),
                    span_events,
                };
                let spans = if span_events {
                    FmtSpan::NEW | FmtSpan::CLOSE
                } else {
                    FmtSpan::NONE
                };
                let subscriber = tracing_subscriber::registry()
                    .with(tracing_subscriber::filter::LevelFilter::TRACE)
                    .with(
                        tracing_subscriber::fmt::layer()
                            .with_ansi(false)
                            .with_span_events(spans.clone())
                            .with_writer(capture.clone()),
                    )
                    .with(
                        tracing_subscriber::fmt::layer()
                            .json()
                            .with_span_events(spans)
                            .with_writer(capture.clone()),
                    );
                // `try_init` also routes the `log` crate's records (sqlx, hyper, …) into the capture.
                subscriber
                    .try_init()
                    .expect("no other global subscriber in a log-capturing test binary");
                capture
            })
            .clone();
        assert_eq!(
            capture.span_events, span_events,
            "one test binary installs the capture one way: with span events or without"
        );
        capture
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
