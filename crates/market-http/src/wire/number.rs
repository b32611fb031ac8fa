//! Numbers as JSON Schema counts them: an `integer` is `5` or `5.0`, never `5.5`, so a client that
//! writes every number as a float (as JavaScript's JSON may) still sends integers.

use serde::Deserialize;

/// An integer as JSON Schema counts them: `5` or `5.0`, never `5.5`. A client that writes every
/// number as a float (as JavaScript's JSON may) still sends integers.
#[expect(
    clippy::cast_possible_truncation,
    reason = "a whole float below 2^53 converts exactly; both are checked first"
)]
pub(crate) fn integer<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: TryFrom<i64>,
{
    let number = serde_json::Number::deserialize(deserializer)?;
    let whole = number.as_i64().or_else(|| {
        number
            .as_f64()
            .filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15)
            .map(|f| f as i64)
    });
    whole
        .and_then(|n| T::try_from(n).ok())
        .ok_or_else(|| serde::de::Error::custom(format!("{number} is not a whole number in range")))
}

/// [`integer`], or `null` / absent.
pub(crate) fn optional_integer<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: TryFrom<i64>,
{
    #[derive(Deserialize)]
    struct Whole<T: TryFrom<i64>>(#[serde(deserialize_with = "integer")] T);
    Ok(Option::<Whole<T>>::deserialize(deserializer)?.map(|w| w.0))
}
