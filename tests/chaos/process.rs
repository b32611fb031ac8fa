//! One child process of the run (`market serve` or `market sim …`), and the small file and HTTP
//! helpers around it. Every child is killed when its [`Proc`] is dropped, a paused one after a
//! `SIGCONT`, so a failing or panicking test leaves nothing behind.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// One child process, killed (after a `SIGCONT`, in case it is stopped) when dropped.
pub struct Proc {
    child: Child,
    paused: bool,
}

impl Proc {
    /// Starts `market <args>` with `env`, stdout and stderr appended to `log`. Core dumps are off
    /// (`ulimit -c 0`): crash points abort the process on purpose, often.
    pub fn spawn(args: &[String], env: &[(String, String)], log: &Path) -> Self {
        let mut out = OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .expect("open a log file");
        let _ = writeln!(out, "==== start: market {}", args.join(" "));
        let err = out.try_clone().expect("clone the log handle");
        let mut command = Command::new("sh");
        command
            .arg("-c")
            .arg("ulimit -c 0; exec \"$0\" \"$@\"")
            .arg(env!("CARGO_BIN_EXE_market"))
            .args(args)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .env("MARKET_LOG_FORMAT", "json")
            // `MARKET_CHAOS_LOG` raises the instances' log level to look into a failed run.
            .env(
                "RUST_LOG",
                std::env::var("MARKET_CHAOS_LOG").unwrap_or_else(|_| "warn".to_owned()),
            )
            .env_remove("MARKET_CRASHPOINTS")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        for (key, value) in env {
            command.env(key, value);
        }
        let child = command.spawn().expect("start the market binary");
        Self {
            child,
            paused: false,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `Some(description)` once the process has exited.
    pub fn exited(&mut self) -> Option<String> {
        match self.child.try_wait() {
            Ok(Some(status)) => Some(status.to_string()),
            Ok(None) => None,
            Err(e) => Some(format!("unknown ({e})")),
        }
    }

    fn signal(&self, signal: &str) {
        let _ = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.pid().to_string())
            .status();
    }

    pub fn pause(&mut self) {
        self.signal("STOP");
        self.paused = true;
    }

    pub fn resume(&mut self) {
        self.signal("CONT");
        self.paused = false;
    }

    /// `kill -9`, then reap.
    pub fn kill9(&mut self) {
        if self.paused {
            self.resume();
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Waits until `url` answers 2xx, or `deadline` passes, or `alive` says the process died.
pub async fn wait_ready(
    http: &reqwest::Client,
    url: &str,
    deadline: Duration,
    mut alive: impl FnMut() -> bool,
) -> bool {
    let until = tokio::time::Instant::now() + deadline;
    while tokio::time::Instant::now() < until {
        if !alive() {
            return false;
        }
        if let Ok(response) = http.get(url).timeout(Duration::from_secs(2)).send().await
            && response.status().is_success()
        {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

pub fn read_from(path: &Path, offset: u64) -> String {
    let mut text = String::new();
    if let Ok(mut file) = File::open(path) {
        let _ = file.seek(SeekFrom::Start(offset));
        let _ = file.read_to_string(&mut text);
    }
    text
}

/// The last `lines` lines of a file.
pub fn tail(path: &Path, lines: usize) -> String {
    let text = read_from(path, 0);
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
