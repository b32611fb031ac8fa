//! Limit (a2): the service's own fulfilment as a pgbench script, built from what `trips.rs`
//! recorded on the wire — never written by hand, so it cannot drift from `market-core`: several
//! statements in a transaction, or a single `select market_…($1, …)`, replay alike.
//!
//! Each statement of the steady-state run becomes one pgbench command (one round trip, as sqlx
//! sends one statement per `Sync`), its `$n` replaced by the parameter's value as SQL:
//! - a value holding the purchase's key (`pgbench::key`: its id, session, PaymentIntent, event)
//!   is rebuilt around this transaction's own number `:n`;
//! - a value an earlier statement returned (the purchase's tier from `update … returning *`, the
//!   token a claim took) is taken from that statement's result with `\gset`, as the service takes
//!   it from the row — also as an element of an array (`array_replace`);
//! - a value that differs between the two recorded runs for no such reason is generated afresh
//!   (a uuid, a timestamp) or, for any other type, replayed as recorded, with a note;
//! - anything else is the constant it was.
//!
//! Transaction `k` of client `c` takes purchase `first + c + (k - 1) × clients`: no two share one,
//! and picking it costs no round trip (pgbench's variables live per client across transactions).

use std::collections::HashMap;
use std::fmt::Write as _;

use anyhow::bail;
use sqlx::PgPool;

use crate::decode::{self, Decoder, array_elements, literal};
use crate::pgbench::key;
use crate::sql_text::{pgbench_variable_in, substitute};
use crate::trips::Recording;
use crate::wire::Execution;

/// The script and what building it noticed.
#[derive(Debug, Clone)]
pub struct Replay {
    pub script: String,
    /// SQL commands per transaction: its round trips.
    pub commands: usize,
    pub notes: Vec<String>,
}

/// A value an earlier statement returned: its statement's index and column name.
type Source = (usize, String);

/// Builds the replay of `recording`'s steady run for `clients`, starting at purchase `first`.
pub async fn build(
    db: &PgPool,
    recording: &Recording,
    clients: usize,
    first: u64,
) -> anyhow::Result<Replay> {
    let steady = &recording.steady.executions;
    if steady.is_empty() {
        bail!("nothing was recorded on the wire");
    }
    let [k1, k2] = recording.numbers.map(key);
    let counterparts = align(&recording.first.executions, steady);
    let mut b = Builder {
        decoder: Decoder::new(db),
        results: returned_values(steady),
        keys: (k1, k2),
        gset: vec![false; steady.len()],
        notes: Vec::new(),
    };
    let mut commands = Vec::with_capacity(steady.len());
    for (i, exec) in steady.iter().enumerate() {
        if exec.sql.is_empty() {
            bail!("statement {i} was executed without its text being seen");
        }
        if let Some(bad) = pgbench_variable_in(&exec.sql) {
            bail!(
                "the SQL holds `{bad}`, which pgbench would take for a variable: {}",
                exec.sql
            );
        }
        if exec.simple {
            commands.push(exec.sql.trim().trim_end_matches(';').to_owned());
            continue;
        }
        let counterpart = counterparts[i].map(|c| &recording.first.executions[c]);
        let mut rendered = Vec::with_capacity(exec.params.len());
        for p in 0..exec.params.len() {
            rendered.push(b.param(i, exec, counterpart, p).await?);
        }
        commands.push(substitute(&exec.sql, &rendered)?);
    }
    let mut script = String::new();
    let _ = writeln!(script, "\\set k :k + 1");
    let _ = writeln!(
        script,
        "\\set n {first} + :client_id + (:k - 1) * {clients}"
    );
    for (i, command) in commands.iter().enumerate() {
        if b.gset[i] {
            let _ = writeln!(script, "{command} \\gset r{i}_");
        } else {
            let _ = writeln!(script, "{command};");
        }
    }
    let trips = recording.steady.total - recording.steady.pings;
    if u64::try_from(commands.len()).ok() != Some(trips) {
        b.notes.push(format!(
            "replay: {} statements in {trips} round trips on the wire; pgbench sends each in its own",
            commands.len()
        ));
    }
    Ok(Replay {
        script,
        commands: commands.len(),
        notes: b.notes,
    })
}

/// What rendering the parameters needs and finds out.
struct Builder<'a> {
    decoder: Decoder<'a>,
    results: HashMap<(u32, Vec<u8>), Vec<Source>>,
    /// The purchase keys of the first and the steady run.
    keys: (String, String),
    /// Which statements' results later ones use (`\gset r<i>_`).
    gset: Vec<bool>,
    notes: Vec<String>,
}

impl Builder<'_> {
    /// Parameter `p` of statement `i` as SQL, cast to its recorded type.
    async fn param(
        &mut self,
        i: usize,
        exec: &Execution,
        counterpart: Option<&Execution>,
        p: usize,
    ) -> anyhow::Result<String> {
        let (k1, k2) = self.keys.clone();
        let oid = exec.param_types.get(p).copied().unwrap_or(0);
        let binary = exec.param_binary.get(p).copied().unwrap_or(false);
        let cast = if oid == 0 {
            String::new()
        } else {
            format!("::{}", self.decoder.type_name(oid).await?.name)
        };
        let Some(Some(bytes)) = exec.params.get(p) else {
            return Ok(format!("(NULL{cast})"));
        };
        let text = self.decoder.text(oid, binary, bytes).await?;
        let earlier_text = match counterpart.and_then(|c| c.params.get(p).cloned().flatten()) {
            Some(b) => Some(self.decoder.text(oid, binary, &b).await?),
            None => None,
        };
        let expr = if text.contains(&k2) {
            format!(
                "replace({}, '{k2}', lpad((:n)::text, 12, '0'))",
                literal(&text)
            )
        } else if let Some((j, name)) = source(&self.results, oid, bytes, i) {
            self.gset[j] = true;
            format!(":r{j}_{name}")
        } else if let Some(expr) = array_from_results(
            &mut self.decoder,
            &self.results,
            (oid, bytes, &text),
            i,
            &mut self.gset,
        )
        .await?
        {
            expr
        } else if let Some(earlier) = earlier_text.filter(|e| e.replace(&k1, &k2) != text) {
            match oid {
                decode::UUID => "gen_random_uuid()".to_owned(),
                decode::TIMESTAMPTZ => "now()".to_owned(),
                decode::TIMESTAMP => "localtimestamp".to_owned(),
                _ => {
                    self.notes.push(format!(
                        "replay: parameter ${} of statement {i} differs between two fulfilments ({earlier} / {text}); replayed as recorded",
                        p + 1
                    ));
                    literal(&text)
                }
            }
        } else {
            literal(&text)
        };
        Ok(format!("({expr}){cast}"))
    }
}

/// For each steady execution, the same statement's execution in the first run (the `k`-th
/// execution of a text pairs with that text's `k`-th), when there is one.
fn align(first: &[Execution], steady: &[Execution]) -> Vec<Option<usize>> {
    let mut seen: HashMap<&str, usize> = HashMap::new();
    steady
        .iter()
        .map(|e| {
            let k = seen.entry(e.sql.as_str()).or_default();
            let found = first
                .iter()
                .enumerate()
                .filter(|(_, f)| f.sql == e.sql)
                .nth(*k)
                .map(|(i, _)| i);
            *k += 1;
            found
        })
        .collect()
}

/// Values returned by single-row results whose columns pgbench can `\gset` (every name a valid
/// variable name), keyed by type and bytes. Booleans and one-byte values are left out: they match
/// by accident.
fn returned_values(steady: &[Execution]) -> HashMap<(u32, Vec<u8>), Vec<Source>> {
    let mut out: HashMap<(u32, Vec<u8>), Vec<Source>> = HashMap::new();
    for (j, exec) in steady.iter().enumerate() {
        let [row] = exec.rows.as_slice() else {
            continue;
        };
        let nameable = exec.columns.iter().all(|c| {
            !c.name.is_empty()
                && c.name
                    .chars()
                    .all(|ch| ch.is_ascii_alphanumeric() || ch == '_')
        });
        if !nameable || exec.columns.len() != row.len() {
            continue;
        }
        for (column, value) in exec.columns.iter().zip(row) {
            let unique = exec
                .columns
                .iter()
                .filter(|c| c.name == column.name)
                .count()
                == 1;
            if let Some(bytes) = value
                && unique
                && column.binary
                && column.type_oid != decode::BOOL
                && bytes.len() > 1
            {
                out.entry((column.type_oid, bytes.clone()))
                    .or_default()
                    .push((j, column.name.clone()));
            }
        }
    }
    out
}

/// The latest statement before `before` that returned this very value.
fn source(
    results: &HashMap<(u32, Vec<u8>), Vec<Source>>,
    oid: u32,
    bytes: &[u8],
    before: usize,
) -> Option<Source> {
    results
        .get(&(oid, bytes.to_vec()))?
        .iter()
        .filter(|(j, _)| *j < before)
        .max_by_key(|(j, _)| *j)
        .cloned()
}

/// An array parameter some of whose elements an earlier statement returned: the recorded array
/// with those elements swapped for the results of this transaction.
async fn array_from_results(
    decoder: &mut Decoder<'_>,
    results: &HashMap<(u32, Vec<u8>), Vec<Source>>,
    (oid, bytes, text): (u32, &[u8], &str),
    before: usize,
    gset: &mut [bool],
) -> anyhow::Result<Option<String>> {
    let Some(element) = decoder.type_name(oid).await?.element else {
        return Ok(None);
    };
    let Some(elements) = array_elements(bytes) else {
        return Ok(None);
    };
    let element_type = decoder.type_name(element).await?.name;
    let mut expr = None::<String>;
    for value in elements.into_iter().flatten() {
        let Some((j, name)) = source(results, element, value, before) else {
            continue;
        };
        gset[j] = true;
        let old = decoder.text(element, true, value).await?;
        let inner = expr.unwrap_or_else(|| literal(text));
        expr = Some(format!(
            "array_replace({inner}::{}, {}::{element_type}, (:r{j}_{name})::{element_type})",
            decoder.type_name(oid).await?.name,
            literal(&old)
        ));
    }
    Ok(expr)
}

#[cfg(test)]
mod tests;
