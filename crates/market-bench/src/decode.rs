//! Turning values recorded on the wire (`wire.rs`) back into SQL text, for the replay script
//! (`replay.rs`). sqlx sends parameters and asks for results in PostgreSQL's binary format, whose
//! layout differs per type (and custom types, such as the service's enums, have none this tool
//! knows); so PostgreSQL decodes them itself: each value is bound again, raw, under its recorded
//! type, and cast to `text`.

use std::collections::HashMap;

use sqlx::encode::IsNull;
use sqlx::error::BoxDynError;
use sqlx::postgres::types::Oid;
use sqlx::postgres::{PgArgumentBuffer, PgTypeInfo};
use sqlx::{PgPool, Postgres};

/// `uuid`, `timestamptz`, `timestamp`, `bool`: types the replay treats specially.
pub const UUID: u32 = 2950;
pub const TIMESTAMPTZ: u32 = 1184;
pub const TIMESTAMP: u32 = 1114;
pub const BOOL: u32 = 16;

/// A value in binary format under a type known only by its OID at run time.
struct Raw<'a> {
    oid: u32,
    bytes: &'a [u8],
}

impl sqlx::Type<Postgres> for Raw<'_> {
    fn type_info() -> PgTypeInfo {
        PgTypeInfo::with_oid(Oid(25))
    }
}

impl sqlx::Encode<'_, Postgres> for Raw<'_> {
    fn encode_by_ref(&self, buf: &mut PgArgumentBuffer) -> Result<IsNull, BoxDynError> {
        buf.extend_from_slice(self.bytes);
        Ok(IsNull::No)
    }

    fn produces(&self) -> Option<PgTypeInfo> {
        Some(PgTypeInfo::with_oid(Oid(self.oid)))
    }
}

/// A type's SQL name and, for an array type, its element type.
#[derive(Debug, Clone)]
pub struct TypeName {
    pub name: String,
    pub element: Option<u32>,
}

/// Decodes values through the database, remembering what it decoded.
pub struct Decoder<'a> {
    db: &'a PgPool,
    texts: HashMap<(u32, Vec<u8>), String>,
    types: HashMap<u32, TypeName>,
}

impl<'a> Decoder<'a> {
    pub fn new(db: &'a PgPool) -> Self {
        Self {
            db,
            texts: HashMap::new(),
            types: HashMap::new(),
        }
    }

    /// The text form of a value of type `oid` as it was sent (`binary`, or already text).
    pub async fn text(&mut self, oid: u32, binary: bool, bytes: &[u8]) -> anyhow::Result<String> {
        if !binary {
            return Ok(String::from_utf8_lossy(bytes).into_owned());
        }
        if let Some(text) = self.texts.get(&(oid, bytes.to_vec())) {
            return Ok(text.clone());
        }
        // Unnamed (not cached by sqlx): the same text is prepared under a different type each time.
        let text: String = sqlx::query_scalar("select $1::text")
            .bind(Raw { oid, bytes })
            .persistent(false)
            .fetch_one(self.db)
            .await?;
        self.texts.insert((oid, bytes.to_vec()), text.clone());
        Ok(text)
    }

    /// The SQL name of type `oid` (as `format_type` spells it) and its element type.
    pub async fn type_name(&mut self, oid: u32) -> anyhow::Result<TypeName> {
        if let Some(t) = self.types.get(&oid) {
            return Ok(t.clone());
        }
        let (name, element): (String, i64) = sqlx::query_as(
            "select format_type(oid, null), typelem::bigint from pg_type where oid::bigint = $1",
        )
        .bind(i64::from(oid))
        .fetch_one(self.db)
        .await?;
        let t = TypeName {
            name,
            element: u32::try_from(element).ok().filter(|&e| e != 0),
        };
        self.types.insert(oid, t.clone());
        Ok(t)
    }
}

/// The elements of a one-dimensional array in binary format (`None` for anything else).
pub fn array_elements(bytes: &[u8]) -> Option<Vec<Option<&[u8]>>> {
    let int = |at: usize| {
        bytes
            .get(at..at + 4)
            .and_then(|b| <[u8; 4]>::try_from(b).ok())
            .map(i32::from_be_bytes)
    };
    if int(0)? != 1 {
        return None;
    }
    let count = usize::try_from(int(12)?).ok()?;
    let mut at = 20;
    let mut out = Vec::with_capacity(count);
    for _ in 0..count {
        let len = int(at)?;
        at += 4;
        if len < 0 {
            out.push(None);
        } else {
            let len = usize::try_from(len).ok()?;
            out.push(Some(bytes.get(at..at + len)?));
            at += len;
        }
    }
    Some(out)
}

/// A string literal that pgbench passes through untouched: an escape string whose colons are
/// written `\x3a`, since pgbench takes any `:name` in a command for a variable, even in quotes.
pub fn literal(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    out.push_str("E'");
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("''"),
            ':' => out.push_str("\\x3a"),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_literal_hides_its_colons_and_quotes_from_pgbench() {
        assert_eq!(
            literal(r#"{"from":"it's"}\"#),
            r#"E'{"from"\x3a"it''s"}\\'"#
        );
    }

    #[test]
    fn a_binary_bigint_array_yields_its_elements_and_nulls() {
        // ndim 1, has nulls, int8, 3 elements from 1: NULL, NULL, 7.
        let mut bytes = Vec::new();
        for v in [1i32, 1, 20, 3, 1, -1, -1, 8] {
            bytes.extend_from_slice(&v.to_be_bytes());
        }
        bytes.extend_from_slice(&7i64.to_be_bytes());

        let elements = array_elements(&bytes).unwrap();

        assert_eq!(elements.len(), 3);
        assert_eq!(elements[0], None);
        assert_eq!(elements[2], Some(&7i64.to_be_bytes()[..]));
    }
}
