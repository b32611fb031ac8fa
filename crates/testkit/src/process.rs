//! The test servers that run as Python processes of their own (the SMTP sink, the webhook
//! receiver): started on a port, ready when they print `ready`, and told apart from a taken port
//! by their exit status.

use std::ffi::OsString;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

const READY_TIMEOUT: Duration = Duration::from_secs(20);
/// A script's exit status when its port is taken (EADDRINUSE).
const ADDRESS_IN_USE: i32 = 98;

/// A port nobody listens on now on `host`.
pub(crate) fn free_port(host: &str) -> u16 {
    let address = std::net::TcpListener::bind((host, 0))
        .and_then(|listener| listener.local_addr())
        .unwrap_or_else(|e| panic!("find a free port on {host}: {e}"));
    address.port()
}

/// Runs `python3 script args…` and waits for its `ready`; `None` if its port is taken. `what`
/// names it in panics, `how_to` says how to install what it needs.
pub(crate) async fn launch_python(
    what: &str,
    script: &str,
    args: &[OsString],
    stderr_path: &Path,
    how_to: &str,
) -> Option<Child> {
    let stderr = std::fs::File::create(stderr_path)
        .unwrap_or_else(|e| panic!("create {}: {e}", stderr_path.display()));
    let mut child = Command::new("python3")
        .arg(script)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(stderr)
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("could not run python3 for {what} ({e}).\n{how_to}"));
    let stdout = child.stdout.take().expect("the script's stdout is piped");
    let mut lines = BufReader::new(stdout).lines();
    let ready = tokio::time::timeout(READY_TIMEOUT, async {
        while let Ok(Some(line)) = lines.next_line().await {
            if line.trim() == "ready" {
                return true;
            }
        }
        false
    });
    // A server that failed to start is never built, so no Drop would remove the file.
    let errors = || {
        let text =
            String::from_utf8_lossy(&std::fs::read(stderr_path).unwrap_or_default()).into_owned();
        let _ = std::fs::remove_file(stderr_path);
        text
    };
    match ready.await {
        Ok(true) => Some(child),
        Ok(false) => {
            let status = child.wait().await.expect("wait for the script to exit");
            if status.code() == Some(ADDRESS_IN_USE) {
                return None;
            }
            panic!(
                "{what} ({script}) exited before listening ({status}):\n{}\n{how_to}",
                errors()
            )
        }
        Err(_) => {
            let _ = child.kill().await;
            panic!(
                "{what} ({script}) was not listening within {READY_TIMEOUT:?}:\n{}\n{how_to}",
                errors()
            )
        }
    }
}
