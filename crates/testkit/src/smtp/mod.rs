//! A real SMTP server for the mail tests: [`SmtpSink`].
//!
//! Why not a mock transport: a mock stands in for exactly the part that fails in production — the
//! TCP connection, the SMTP dialogue (EHLO, envelope, DATA and its dot-stuffing, the server's
//! replies), and the server being down. aiosmtpd (PyPI, pinned and installed by `scripts/test`) is a
//! complete SMTP server. Run in a process of its own (`crates/testkit/smtp_sink.py`) it shares no
//! runtime, thread or lock with the test, and killing it is a genuine outage: connections are
//! refused until [`SmtpSink::restart`] brings it back on the same port. It appends each message it
//! accepts to a JSON-lines file, fsynced before it answers `250`, so what a test reads is exactly
//! what the server acknowledged.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tokio::process::Child;

const HOST: &str = "127.0.0.1";
const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/smtp_sink.py");
const RESTART_RETRY_FOR: Duration = Duration::from_secs(5);
const HOW_TO_PROVIDE: &str = "The SMTP sink needs python3 with aiosmtpd 1.4.6: run `scripts/test`, \
     which installs it (or `python3 -m pip install aiosmtpd==1.4.6`).";

/// An SMTP server on 127.0.0.1 that accepts every message and records it. The process is killed
/// when the sink is dropped, and its file removed.
#[derive(Debug)]
pub struct SmtpSink {
    port: u16,
    out: PathBuf,
    stderr: PathBuf,
    child: Option<Child>,
}

impl SmtpSink {
    /// Starts the server on a free port and waits until it listens.
    pub async fn start() -> Self {
        let id = format!("market-smtp-sink-{}", uuid::Uuid::new_v4().simple());
        let out = std::env::temp_dir().join(format!("{id}.jsonl"));
        let stderr = std::env::temp_dir().join(format!("{id}.stderr"));
        for _ in 0..5 {
            let port = crate::process::free_port(HOST);
            let child = launch(port, &out, &stderr).await;
            if child.is_some() {
                return Self {
                    port,
                    out,
                    stderr,
                    child,
                };
            }
        }
        panic!("the SMTP sink found no free port on {HOST} in 5 attempts");
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `smtp://127.0.0.1:PORT`: plain SMTP, no TLS, no authentication.
    pub fn url(&self) -> String {
        format!("smtp://{HOST}:{}", self.port)
    }

    /// Kills the server and waits for it to exit: an SMTP outage. Recorded messages stay.
    pub async fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill().await;
        }
    }

    /// Starts the server again (stopping it first if it runs) on the same port, appending to the
    /// same file; retries for a few seconds while the port is busy.
    pub async fn restart(&mut self) {
        self.stop().await;
        let deadline = Instant::now() + RESTART_RETRY_FOR;
        loop {
            if let Some(child) = launch(self.port, &self.out, &self.stderr).await {
                self.child = Some(child);
                return;
            }
            let port = self.port;
            assert!(
                Instant::now() < deadline,
                "the SMTP sink could not listen on {HOST}:{port} again within {RESTART_RETRY_FOR:?}: the port stays taken"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Every message accepted so far, oldest first (across restarts).
    pub fn messages(&self) -> Vec<ReceivedMail> {
        let text = match std::fs::read_to_string(&self.out) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Vec::new(),
            Err(e) => panic!("read the SMTP sink's {}: {e}", self.out.display()),
        };
        text.split_inclusive('\n')
            .filter(|line| line.ends_with('\n') && !line.trim().is_empty())
            .map(|line| {
                let record: Record = serde_json::from_str(line)
                    .unwrap_or_else(|e| panic!("the SMTP sink wrote a bad line ({e}): {line}"));
                ReceivedMail::from_record(record)
            })
            .collect()
    }

    /// Waits until at least `count` messages were accepted, and returns all of them; panics with
    /// those there are after `timeout`.
    pub async fn wait_for(&self, count: usize, timeout: Duration) -> Vec<ReceivedMail> {
        let deadline = Instant::now() + timeout;
        loop {
            let messages = self.messages();
            if messages.len() >= count {
                return messages;
            }
            if Instant::now() >= deadline {
                let got: Vec<String> = messages
                    .iter()
                    .map(|m| format!("{} -> {:?}: {:?}", m.mail_from, m.rcpt_tos, m.subject()))
                    .collect();
                panic!(
                    "expected at least {count} messages at the SMTP sink within {timeout:?}, it has {}: {got:#?}",
                    messages.len()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.start_kill();
        }
        let _ = std::fs::remove_file(&self.out);
        let _ = std::fs::remove_file(&self.stderr);
    }
}

/// Runs the script on `port`; `None` if the port is taken.
async fn launch(port: u16, out: &Path, stderr_path: &Path) -> Option<Child> {
    let args = [
        "--host".into(),
        HOST.into(),
        "--port".into(),
        port.to_string().into(),
        "--out".into(),
        out.as_os_str().to_owned(),
    ];
    crate::process::launch_python("the SMTP sink", SCRIPT, &args, stderr_path, HOW_TO_PROVIDE).await
}

mod mail;

pub use mail::ReceivedMail;
use mail::Record;

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    use tokio::net::TcpStream;
    use tokio::net::tcp::OwnedReadHalf;

    const RECEIPT: &str = "From: Shop <shop@market.test>\r\nTo: buyer@example.test\r\n\
        Subject: =?utf-8?q?Your_receipt_=E2=80=94_?=\r\n =?utf-8?b?4oKsMTI=?=\r\n\
        Message-ID: <order-42@market.test>\r\nMIME-Version: 1.0\r\n\
        Content-Type: multipart/alternative;\r\n boundary=\"b1\"\r\n\r\n\
        --b1\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n\
        Thank you for your order of =E2=82=AC12, wrapped by a soft=\r\n line break.\r\n.\r\n\
        --b1\r\nContent-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n\
        PHA+VGhhbmsgeW91PC9wPg==\r\n--b1--\r\n";

    /// One message over a raw SMTP conversation, each reply checked.
    async fn send(port: u16, message: &str) {
        let (read, mut write) = TcpStream::connect((HOST, port)).await.unwrap().into_split();
        let mut read = BufReader::new(read);
        expect_reply(&mut read, "220").await;
        for (command, code) in [
            ("EHLO client.test", "250"),
            ("MAIL FROM:<shop@market.test>", "250"),
            ("RCPT TO:<buyer@example.test>", "250"),
            ("DATA", "354"),
        ] {
            write
                .write_all(format!("{command}\r\n").as_bytes())
                .await
                .unwrap();
            expect_reply(&mut read, code).await;
        }
        let stuffed = message.replace("\r\n.", "\r\n..");
        write
            .write_all(format!("{stuffed}.\r\n").as_bytes())
            .await
            .unwrap();
        expect_reply(&mut read, "250").await;
        write.write_all(b"QUIT\r\n").await.unwrap();
        expect_reply(&mut read, "221").await;
    }

    async fn expect_reply(read: &mut BufReader<OwnedReadHalf>, code: &str) {
        loop {
            let mut line = String::new();
            read.read_line(&mut line).await.unwrap();
            assert!(
                line.starts_with(code),
                "expected {code}, the sink answered {line:?}"
            );
            if line.as_bytes().get(3) != Some(&b'-') {
                return;
            }
        }
    }

    #[tokio::test]
    async fn a_message_sent_over_smtp_arrives_once_with_its_headers_and_decoded_text() {
        let sink = SmtpSink::start().await;
        assert_eq!(sink.url(), format!("smtp://127.0.0.1:{}", sink.port()));
        send(sink.port(), RECEIPT).await;

        let messages = sink.wait_for(1, Duration::from_secs(10)).await;
        assert_eq!(messages.len(), 1, "{messages:#?}");
        let mail = &messages[0];
        assert_eq!(mail.mail_from, "shop@market.test");
        assert_eq!(mail.rcpt_tos, ["buyer@example.test"]);
        assert_eq!(
            mail.raw, RECEIPT,
            "the sink keeps the message as sent, dot-stuffing undone"
        );
        assert_eq!(mail.message_id(), Some("<order-42@market.test>"));
        assert_eq!(mail.subject().as_deref(), Some("Your receipt — €12"));
        assert_eq!(
            mail.header("CONTENT-type"),
            Some("multipart/alternative; boundary=\"b1\"")
        );
        assert_eq!(
            mail.text_parts(),
            "Thank you for your order of €12, wrapped by a soft line break.\n.\n<p>Thank you</p>"
        );
    }

    #[tokio::test]
    async fn after_an_outage_the_sink_comes_back_on_its_port_and_keeps_what_it_had() {
        let mut sink = SmtpSink::start().await;
        let port = sink.port();
        send(port, "Subject: first\r\n\r\nbefore the outage\r\n").await;

        sink.stop().await;
        assert!(
            TcpStream::connect((HOST, port)).await.is_err(),
            "a stopped sink refuses connections"
        );
        sink.restart().await;
        assert_eq!(sink.port(), port);
        send(port, "Subject: second\r\n\r\nafter the outage\r\n").await;

        let messages = sink.wait_for(2, Duration::from_secs(10)).await;
        let subjects: Vec<_> = messages.iter().map(ReceivedMail::subject).collect();
        assert_eq!(
            subjects,
            [Some("first".to_owned()), Some("second".to_owned())]
        );
        assert_eq!(messages[1].text_parts(), "after the outage\n");

        let file = sink.out.clone();
        drop(sink);
        assert!(!file.exists(), "the sink's file goes with it");
    }
}
