//! What the instances themselves said about a failed run, short enough to survive a CI log that
//! keeps only the head of the failure: every `request failed` line of every instance's log,
//! grouped by instance, error code and cause, with how often and when first and last. A 503's
//! cause tells a pool that timed out (`PoolTimedOut`) from a session PostgreSQL ended (25P03) or a
//! socket that broke, which the answer's body cannot.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;

/// One group of failed requests: how many, and the first and last log timestamps (UTC).
struct Seen {
    count: u64,
    first: String,
    last: String,
}

/// The `request failed` lines of every `instance-*.log` in `dir`, grouped, at most `limit` groups.
pub fn server_errors(dir: &Path, limit: usize) -> String {
    let mut groups: BTreeMap<(String, String, String), Seen> = BTreeMap::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return String::new();
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        let is_log = path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("log"));
        if !(name.starts_with("instance-") && is_log) {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        for line in text.lines() {
            let Ok(json) = serde_json::from_str::<Value>(line) else {
                continue;
            };
            if json["message"] != "request failed" {
                continue;
            }
            let field = |k: &str| json[k].as_str().unwrap_or("?").to_owned();
            let at = field("timestamp");
            let seen = groups
                .entry((name.clone(), field("error.code"), field("error.cause")))
                .or_insert_with(|| Seen {
                    count: 0,
                    first: at.clone(),
                    last: at.clone(),
                });
            seen.count += 1;
            seen.last = at;
        }
    }
    let mut out = String::new();
    for ((log, code, cause), seen) in groups.iter().take(limit) {
        out.push_str(&format!(
            "  {log}: {} x {code} ({} .. {}): {cause}\n",
            seen.count, seen.first, seen.last
        ));
    }
    if groups.len() > limit {
        out.push_str(&format!("  ... {} more groups\n", groups.len() - limit));
    }
    out
}
