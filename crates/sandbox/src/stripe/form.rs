//! Stripe's request parameters: `application/x-www-form-urlencoded` with bracketed keys for
//! nesting (`line_items[0][price_data][currency]=usd`, `metadata[order]=42`, `expand[]=x`), as
//! async-stripe writes them (serde_qs, brackets percent-encoded or not). The same syntax is used
//! for GET query strings.

use std::collections::BTreeMap;

use super::error::ApiError;

/// One parameter: a text value or a nested hash (lists are hashes with numeric keys).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Param {
    Text(String),
    Map(Hash),
}

pub(crate) type Hash = BTreeMap<String, Param>;

/// A request's parameters, nested, plus the flat decoded pairs (for idempotency fingerprints).
#[derive(Debug, Clone, Default)]
pub(crate) struct Params {
    pub(crate) root: Hash,
    pub(crate) pairs: Vec<(String, String)>,
}

impl Params {
    pub(crate) fn parse(input: &[u8]) -> Result<Self, ApiError> {
        let mut params = Self::default();
        params.extend(input)?;
        Ok(params)
    }

    pub(crate) fn extend(&mut self, input: &[u8]) -> Result<(), ApiError> {
        for (key, value) in url::form_urlencoded::parse(input) {
            let (key, value) = (key.into_owned(), value.into_owned());
            insert(&mut self.root, &segments(&key), value.clone(), &key)?;
            self.pairs.push((key, value));
        }
        Ok(())
    }
}

/// `a[b][0][]` → `["a", "b", "0", ""]`; a key with unbalanced brackets is taken literally.
fn segments(key: &str) -> Vec<&str> {
    let Some(open) = key.find('[') else {
        return vec![key];
    };
    let mut parts = vec![&key[..open]];
    let mut rest = &key[open..];
    while !rest.is_empty() {
        let Some(inner) = rest.strip_prefix('[') else {
            return vec![key];
        };
        let Some(close) = inner.find(']') else {
            return vec![key];
        };
        parts.push(&inner[..close]);
        rest = &inner[close + 1..];
    }
    parts
}

fn insert(hash: &mut Hash, path: &[&str], value: String, key: &str) -> Result<(), ApiError> {
    let Some((first, rest)) = path.split_first() else {
        return Ok(());
    };
    // `[]` appends: the next free index.
    let name = if first.is_empty() {
        hash.len().to_string()
    } else {
        (*first).to_owned()
    };
    if rest.is_empty() {
        hash.insert(name, Param::Text(value));
        return Ok(());
    }
    let entry = hash.entry(name).or_insert_with(|| Param::Map(Hash::new()));
    match entry {
        Param::Map(inner) => insert(inner, rest, value, key),
        // `metadata=x&metadata[a]=b`: Stripe's "Invalid hash".
        Param::Text(_) => Err(ApiError::invalid(key, "Invalid hash")),
    }
}

/// A text parameter; a hash where text is expected is Stripe's "Invalid string".
pub(crate) fn text<'a>(hash: &'a Hash, key: &str, path: &str) -> Result<Option<&'a str>, ApiError> {
    match hash.get(key) {
        None => Ok(None),
        Some(Param::Text(text)) => Ok(Some(text)),
        Some(Param::Map(_)) => Err(ApiError::invalid(path, "Invalid string: {...}")),
    }
}

/// A text parameter that must be present and non-empty.
pub(crate) fn required_text<'a>(
    hash: &'a Hash,
    key: &str,
    path: &str,
) -> Result<&'a str, ApiError> {
    match text(hash, key, path)? {
        Some(text) if !text.is_empty() => Ok(text),
        _ => Err(ApiError::missing(path)),
    }
}

pub(crate) fn integer(hash: &Hash, key: &str, path: &str) -> Result<Option<i64>, ApiError> {
    match text(hash, key, path)? {
        None => Ok(None),
        Some(text) => text
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| ApiError::invalid_integer(path, text)),
    }
}

/// A boolean parameter, written `true` or `false` as Stripe's clients send it.
pub(crate) fn boolean(hash: &Hash, key: &str, path: &str) -> Result<Option<bool>, ApiError> {
    match text(hash, key, path)? {
        None => Ok(None),
        Some("true") => Ok(Some(true)),
        Some("false") => Ok(Some(false)),
        Some(other) => Err(ApiError::invalid(path, format!("Invalid boolean: {other}"))),
    }
}

pub(crate) fn hash<'a>(
    hash: &'a Hash,
    key: &str,
    path: &str,
) -> Result<Option<&'a Hash>, ApiError> {
    match hash.get(key) {
        None => Ok(None),
        Some(Param::Map(inner)) => Ok(Some(inner)),
        // An empty string unsets a hash in Stripe's API; here there is nothing to unset.
        Some(Param::Text(text)) if text.is_empty() => Ok(None),
        Some(Param::Text(_)) => Err(ApiError::invalid(path, "Invalid hash")),
    }
}

/// A list parameter (`x[0]…`, `x[1]…` or `x[]…`), in index order.
pub(crate) fn list<'a>(hash_: &'a Hash, key: &str, path: &str) -> Result<Vec<&'a Param>, ApiError> {
    let Some(items) = hash(hash_, key, path)? else {
        return Ok(Vec::new());
    };
    let mut indexed = Vec::with_capacity(items.len());
    for (index, item) in items {
        let index: usize = index
            .parse()
            .map_err(|_| ApiError::invalid(path, "Invalid array"))?;
        indexed.push((index, item));
    }
    indexed.sort_by_key(|(index, _)| *index);
    Ok(indexed.into_iter().map(|(_, item)| item).collect())
}

/// A list of strings, such as `expand[]`.
pub(crate) fn strings(hash: &Hash, key: &str) -> Result<Vec<String>, ApiError> {
    list(hash, key, key)?
        .into_iter()
        .map(|item| match item {
            Param::Text(text) => Ok(text.clone()),
            Param::Map(_) => Err(ApiError::invalid(key, "Invalid array")),
        })
        .collect()
}

/// A `metadata`-style hash: at most 50 keys of at most 40 characters, values of at most 500.
/// An empty value removes the key in Stripe; on creation it simply is not stored.
pub(crate) fn metadata(
    parent: &Hash,
    key: &str,
    path: &str,
) -> Result<BTreeMap<String, String>, ApiError> {
    let Some(entries) = hash(parent, key, path)? else {
        return Ok(BTreeMap::new());
    };
    if entries.len() > 50 {
        return Err(ApiError::invalid(
            path,
            "Invalid metadata: metadata can have up to 50 keys.",
        ));
    }
    let mut out = BTreeMap::new();
    for (name, value) in entries {
        let Param::Text(value) = value else {
            return Err(ApiError::invalid(
                &format!("{path}[{name}]"),
                "Invalid string: {...}",
            ));
        };
        if name.chars().count() > 40 {
            return Err(ApiError::invalid(
                &format!("{path}[{name}]"),
                "Metadata keys can be at most 40 characters long.",
            ));
        }
        if value.chars().count() > 500 {
            return Err(ApiError::invalid(
                &format!("{path}[{name}]"),
                "Metadata values can be at most 500 characters long.",
            ));
        }
        if !value.is_empty() {
            out.insert(name.clone(), value.clone());
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bracketed_keys_nest_whether_or_not_the_brackets_are_encoded() {
        let body = b"line_items%5B0%5D%5Bprice_data%5D%5Bcurrency%5D=usd&line_items[0][quantity]=2\
&metadata[purchase]=p_1&expand[]=line_items&expand[]=payment_intent&mode=payment";
        let params = Params::parse(body).unwrap();
        let items = list(&params.root, "line_items", "line_items").unwrap();
        let Param::Map(item) = items[0] else {
            panic!("not a hash")
        };
        assert_eq!(integer(item, "quantity", "q").unwrap(), Some(2));
        let price = hash(item, "price_data", "p").unwrap().unwrap();
        assert_eq!(text(price, "currency", "c").unwrap(), Some("usd"));
        assert_eq!(
            strings(&params.root, "expand").unwrap(),
            ["line_items", "payment_intent"]
        );
        let meta = metadata(&params.root, "metadata", "metadata").unwrap();
        assert_eq!(meta.get("purchase").map(String::as_str), Some("p_1"));
        assert_eq!(params.pairs.len(), 6);
    }

    #[test]
    fn a_text_where_a_hash_is_expected_is_an_invalid_hash() {
        assert!(Params::parse(b"metadata=x&metadata[a]=b").is_err());
        let params = Params::parse(b"quantity=two").unwrap();
        assert!(integer(&params.root, "quantity", "quantity").is_err());
    }
}
