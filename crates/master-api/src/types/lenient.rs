//! Lenient deserializers for the fields whose shape the spec leaves uncertain: the one place that
//! decides what "absent" means for a Master API answer.

use serde::{Deserialize, Deserializer};

/// `null`, absent and `""` all mean "none" (Xano sends `custom_domain: ""` when there is none).
pub(super) fn empty_as_none<'de, D>(deserializer: D) -> Result<Option<String>, D::Error>
where
    D: Deserializer<'de>,
{
    let value = Option::<String>::deserialize(deserializer)?;
    Ok(value.filter(|text| !text.trim().is_empty()))
}

/// Identifiers the spec types as strings but that public clients have also seen as numbers
/// (the Xano CLI reads a numeric instance `id` when present).
pub(super) fn string_or_number<'de, D>(deserializer: D) -> Result<Option<String>, D::Error>
where
    D: Deserializer<'de>,
{
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Text(String),
        Integer(i64),
        Unsigned(u64),
        Float(f64),
    }

    Ok(
        Option::<Raw>::deserialize(deserializer)?.and_then(|raw| match raw {
            Raw::Text(text) if text.is_empty() => None,
            Raw::Text(text) => Some(text),
            Raw::Integer(number) => Some(number.to_string()),
            Raw::Unsigned(number) => Some(number.to_string()),
            Raw::Float(number) => Some(number.to_string()),
        }),
    )
}

/// `null` and absent both become `T::default()` (e.g. an `items: null` page is an empty page).
pub(super) fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}
