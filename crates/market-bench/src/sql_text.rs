//! The text of a recorded statement, as the replay (`replay.rs`) rewrites it: its `$n`
//! placeholders found outside quoted strings, quoted identifiers, dollar-quoted bodies and
//! comments, and any `:name` that pgbench would take for one of its variables.

use anyhow::bail;

/// `sql` with each `$n` outside quotes and comments replaced by `params[n - 1]`.
pub fn substitute(sql: &str, params: &[String]) -> anyhow::Result<String> {
    let mut out = String::with_capacity(sql.len() + 64);
    for piece in scan(sql) {
        match piece {
            Piece::Code(code) => {
                let mut chars = code.char_indices().peekable();
                while let Some((_, c)) = chars.next() {
                    let digit_follows = chars.peek().is_some_and(|(_, d)| d.is_ascii_digit());
                    if c != '$' || !digit_follows {
                        out.push(c);
                        continue;
                    }
                    let mut n = 0usize;
                    while let Some((_, d)) =
                        chars.peek().copied().filter(|(_, d)| d.is_ascii_digit())
                    {
                        n = n * 10 + d.to_digit(10).map_or(0, |d| d as usize);
                        chars.next();
                    }
                    let Some(param) = n.checked_sub(1).and_then(|i| params.get(i)) else {
                        bail!("${n} has no recorded value");
                    };
                    out.push_str(param);
                }
            }
            Piece::Quoted(text) => out.push_str(text),
        }
    }
    Ok(out)
}

/// A `:name` outside a `::` cast anywhere in `sql` (quotes included: pgbench looks there too).
pub fn pgbench_variable_in(sql: &str) -> Option<String> {
    let bytes = sql.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b':' {
            if bytes.get(i + 1) == Some(&b':') {
                i += 2;
                continue;
            }
            let name: String = sql[i + 1..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                return Some(format!(":{name}"));
            }
        }
        i += 1;
    }
    None
}

enum Piece<'a> {
    Code(&'a str),
    Quoted(&'a str),
}

/// `sql` cut into code and the parts where `$1` means nothing: quoted strings and identifiers,
/// dollar-quoted bodies and comments.
fn scan(sql: &str) -> Vec<Piece<'_>> {
    let mut pieces = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i < sql.len() {
        let rest = &sql[i..];
        let end = if rest.starts_with('\'') || rest.starts_with('"') {
            let quote = &rest[..1];
            rest[1..].find(quote).map(|e| i + 1 + e + 1)
        } else if rest.starts_with("--") {
            Some(rest.find('\n').map_or(sql.len(), |e| i + e))
        } else if rest.starts_with("/*") {
            rest.find("*/").map(|e| i + e + 2)
        } else if rest.starts_with('$') && !rest[1..].starts_with(|c: char| c.is_ascii_digit()) {
            rest[1..].find('$').and_then(|t| {
                let tag = &rest[..t + 2];
                rest[tag.len()..]
                    .find(tag)
                    .map(|e| i + tag.len() + e + tag.len())
            })
        } else {
            None
        };
        match end {
            Some(end) => {
                pieces.push(Piece::Code(&sql[start..i]));
                pieces.push(Piece::Quoted(&sql[i..end.min(sql.len())]));
                i = end.min(sql.len());
                start = i;
            }
            None => i += rest.chars().next().map_or(1, char::len_utf8),
        }
    }
    pieces.push(Piece::Code(&sql[start..]));
    pieces
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_are_replaced_outside_quotes_and_comments_only() {
        let sql = "select $1, '$1', $$ $2 $$, $2 -- $1\n, $10";
        let params: Vec<String> = (1..=10).map(|n| format!("<{n}>")).collect();

        let out = substitute(sql, &params).unwrap();

        assert_eq!(out, "select <1>, '$1', $$ $2 $$, <2> -- $1\n, <10>");
    }

    #[test]
    fn a_colon_that_pgbench_would_read_as_a_variable_is_found_and_casts_are_not() {
        assert_eq!(pgbench_variable_in("select $1::text, x::int"), None);
        assert_eq!(
            pgbench_variable_in("select '{\"a\":b}'"),
            Some(":b".to_owned())
        );
    }
}
