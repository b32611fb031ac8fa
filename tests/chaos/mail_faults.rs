//! The run's mail server and its outages. Every instance hands buyers' email to one real SMTP
//! server ([`SmtpSink`]: aiosmtpd in a process of its own), so what the checker reads is what a
//! mail server acknowledged, not what the service believes it sent.
//!
//! The nemesis takes that server down for a few seconds at a time (`smtp_down`): connections are
//! refused, messages due meanwhile must wait in the outbox and leave once it is back, each under
//! the Message-ID of its first try. The outage affects no instance, so it opens no disturbance
//! window: an instance answering badly because mail is down is a violation like any other.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use testkit::smtp::{ReceivedMail, SmtpSink};

use crate::nemesis::Nemesis;

pub const MAIL_KINDS: [&str; 1] = ["smtp_down"];

/// Who buyers' email is from (`MARKET_MAIL_FROM`); its domain names every Message-ID.
pub const FROM: &str = "Market <receipts@market.example>";
pub const DOMAIN: &str = "market.example";

/// The SMTP server every instance sends through, and whether the nemesis has it down.
pub struct Mailbox {
    /// `SMTP_URL` of every instance.
    pub url: String,
    sink: tokio::sync::Mutex<SmtpSink>,
    down: AtomicBool,
}

impl Mailbox {
    pub async fn start() -> Self {
        let sink = SmtpSink::start().await;
        Self {
            url: sink.url(),
            sink: tokio::sync::Mutex::new(sink),
            down: AtomicBool::new(false),
        }
    }

    pub fn is_down(&self) -> bool {
        self.down.load(Ordering::SeqCst)
    }

    /// Every message the server accepted so far, across its outages.
    pub async fn messages(&self) -> Vec<ReceivedMail> {
        self.sink.lock().await.messages()
    }

    async fn stop(&self) {
        let mut sink = self.sink.lock().await;
        self.down.store(true, Ordering::SeqCst);
        sink.stop().await;
    }

    /// Brings the server back on its port (a no-op when it is up).
    pub async fn restart(&self) {
        let mut sink = self.sink.lock().await;
        if self.down.load(Ordering::SeqCst) {
            sink.restart().await;
            self.down.store(false, Ordering::SeqCst);
        }
    }
}

impl Nemesis {
    /// SMTP outages of 2–10 s, every 15–35 s, until stopped; the server is always back at the end.
    pub async fn run_mail(self: Arc<Self>) {
        let mut rng = StdRng::seed_from_u64(self.seed ^ 0x5EED_0005);
        self.sleep_unless_stopped(Duration::from_millis(rng.random_range(5000..15_000)))
            .await;
        while !self.stopped() {
            let window = Duration::from_millis(rng.random_range(2000..10_000));
            let mail = &self.cluster.mail;
            mail.stop().await;
            self.note(
                None,
                "smtp_down",
                &format!("the SMTP server refuses connections for {window:?}"),
            );
            self.sleep_unless_stopped(window).await;
            mail.restart().await;
            self.history
                .record(None, None, "NEMESIS smtp_down: the SMTP server is back");
            self.sleep_unless_stopped(Duration::from_millis(rng.random_range(15_000..35_000)))
                .await;
        }
    }

    /// Brings the SMTP server back if an outage is still open.
    pub async fn heal_mail(&self) {
        self.cluster.mail.restart().await;
    }
}
