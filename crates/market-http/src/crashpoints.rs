//! Crash points for the chaos tests (`tests/chaos.rs`): compiled only with the `failpoints` feature,
//! never in a production build.
//!
//! `MARKET_CRASHPOINTS="after_event_recorded=0.02,after_xano_mint_before_record=0.05"` makes each
//! named fail point abort the process (`std::process::abort()`: no destructors, no graceful
//! shutdown, no leases handed back — the closest thing to `kill -9` from inside) with the given
//! probability each time it is reached. Before aborting it writes one line to stderr,
//! `market: crash point <name> hit, aborting`, which the chaos test counts.

use std::io::Write;

/// Every fail point in the code, so that a typo in `MARKET_CRASHPOINTS` stops start-up instead of
/// silently testing nothing.
pub const CRASH_POINTS: [&str; 9] = [
    "after_event_recorded",
    "after_job_claimed",
    "before_xano_mint",
    "after_xano_mint_before_record",
    "after_webhook_commit_before_response",
    "after_checkout_commit_before_response",
    "after_success_page_commit_before_response",
    "rotation_before_old_deleted",
    "upgrade_before_recorded",
];

/// The environment variable read by [`activate_from_env`].
pub const ENV: &str = "MARKET_CRASHPOINTS";

/// Parses `name=probability,…` (a bare name means probability 1).
pub fn parse(spec: &str) -> Result<Vec<(&'static str, f64)>, String> {
    let mut points = Vec::new();
    for entry in spec.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let (name, probability) = match entry.split_once('=') {
            Some((name, p)) => (
                name.trim(),
                p.trim()
                    .parse::<f64>()
                    .map_err(|_| format!("{ENV}: `{p}` is not a probability"))?,
            ),
            None => (entry, 1.0),
        };
        if !(0.0..=1.0).contains(&probability) {
            return Err(format!("{ENV}: {name}: probability must be within 0..=1"));
        }
        let Some(known) = CRASH_POINTS.iter().find(|known| **known == name) else {
            return Err(format!(
                "{ENV}: unknown crash point `{name}` (known: {})",
                CRASH_POINTS.join(", ")
            ));
        };
        points.push((*known, probability));
    }
    Ok(points)
}

/// Registers the crash points named in `MARKET_CRASHPOINTS`, if set. Returns what was registered.
pub fn activate_from_env() -> anyhow::Result<Vec<(&'static str, f64)>> {
    let Ok(spec) = std::env::var(ENV) else {
        return Ok(Vec::new());
    };
    let points = parse(&spec).map_err(anyhow::Error::msg)?;
    for &(name, probability) in &points {
        fail::cfg_callback(name, move || {
            if rand::random::<f64>() < probability {
                let mut stderr = std::io::stderr().lock();
                let _ = writeln!(stderr, "market: crash point {name} hit, aborting");
                let _ = stderr.flush();
                std::process::abort();
            }
        })
        .map_err(anyhow::Error::msg)?;
    }
    if !points.is_empty() {
        tracing::warn!(
            ?points,
            "crash points armed: this process will abort at random"
        );
    }
    Ok(points)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_parse_names_and_probabilities_and_refuse_unknown_points() {
        assert_eq!(
            parse("after_event_recorded=0.25, after_job_claimed").unwrap(),
            vec![("after_event_recorded", 0.25), ("after_job_claimed", 1.0)]
        );
        assert_eq!(parse("").unwrap(), vec![]);
        assert!(parse("after_event_recoded=0.1").is_err());
        assert!(parse("after_job_claimed=2").is_err());
        assert!(parse("after_job_claimed=x").is_err());
    }
}
