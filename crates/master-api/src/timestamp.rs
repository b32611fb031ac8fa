//! One UTC timestamp type for every form the Master API (and the guides written about it) use.
//!
//! Xano documents `2023-05-09 21:31:20+0000` (space separator, `+0000`), the origin guide shows
//! RFC 3339 (`2024-01-15T10:30:00Z`), and Xano stores timestamps internally as epoch
//! milliseconds, which some endpoints return as numbers. All three decode to [`Timestamp`].

use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use serde::{Deserialize, Deserializer, de};

/// A point in time, always normalised to UTC.
pub type Timestamp = DateTime<Utc>;

/// Formats with an explicit offset, tried in order after RFC 3339. `%.f` also matches "no
/// fraction" and `%z` accepts both `+0000` and `+00:00`.
const OFFSET_FORMATS: [&str; 2] = ["%Y-%m-%d %H:%M:%S%.f%z", "%Y-%m-%dT%H:%M:%S%.f%z"];

/// Formats without an offset. Xano's database timestamps are UTC, so an offset-less value is
/// read as UTC rather than rejected.
const NAIVE_FORMATS: [&str; 2] = ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f"];

/// Parses any supported textual form: Xano's `2023-05-09 21:31:20+0000`, RFC 3339, an
/// offset-less `2023-05-09 21:31:20` (taken as UTC), or epoch milliseconds written as digits.
///
/// Returns `None` when the text matches none of them.
pub fn parse(text: &str) -> Option<Timestamp> {
    let text = text.trim();
    if let Ok(millis) = text.parse::<i64>() {
        return from_epoch_millis(millis);
    }
    if let Ok(parsed) = DateTime::parse_from_rfc3339(text) {
        return Some(parsed.with_timezone(&Utc));
    }
    for format in OFFSET_FORMATS {
        if let Ok(parsed) = DateTime::parse_from_str(text, format) {
            return Some(parsed.with_timezone(&Utc));
        }
    }
    NAIVE_FORMATS
        .iter()
        .find_map(|format| NaiveDateTime::parse_from_str(text, format).ok())
        .map(|naive| Utc.from_utc_datetime(&naive))
}

/// Converts epoch milliseconds; `None` when out of chrono's range.
pub fn from_epoch_millis(millis: i64) -> Option<Timestamp> {
    DateTime::from_timestamp_millis(millis)
}

/// Serde helper for `Option<Timestamp>` fields: absent, `null` and `""` become `None`; strings
/// go through [`parse`]; numbers are epoch milliseconds. Use with `#[serde(default)]`.
pub(crate) fn deserialize_option<'de, D>(deserializer: D) -> Result<Option<Timestamp>, D::Error>
where
    D: Deserializer<'de>,
{
    /// The JSON forms a timestamp arrives in; integers are tried before floats.
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Millis(i64),
        // Some serialisers write fractional milliseconds; the fraction is below our precision.
        Float(f64),
        Text(String),
    }

    let Some(raw) = Option::<Raw>::deserialize(deserializer)? else {
        return Ok(None);
    };
    match raw {
        Raw::Millis(millis) => from_epoch_millis(millis)
            .map(Some)
            .ok_or_else(|| de::Error::custom("epoch milliseconds out of range")),
        Raw::Float(millis) => float_millis(millis)
            .map(Some)
            .ok_or_else(|| de::Error::custom("epoch milliseconds out of range")),
        Raw::Text(text) if text.trim().is_empty() => Ok(None),
        Raw::Text(text) => parse(&text).map(Some).ok_or_else(|| {
            de::Error::custom(
                "unrecognised timestamp; expected `YYYY-MM-DD hh:mm:ss+0000`, RFC 3339 or epoch milliseconds",
            )
        }),
    }
}

#[expect(
    clippy::cast_possible_truncation,
    reason = "range-checked just above; sub-millisecond precision is deliberately dropped"
)]
fn float_millis(millis: f64) -> Option<Timestamp> {
    // i64::MAX as f64 rounds up, so compare strictly to stay inside i64.
    #[expect(clippy::cast_precision_loss, reason = "only a bound check")]
    let limit = i64::MAX as f64;
    if !millis.is_finite() || millis.abs() >= limit {
        return None;
    }
    from_epoch_millis(millis.trunc() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> Timestamp {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, s).single().unwrap()
    }

    #[derive(Deserialize)]
    struct Holder {
        #[serde(default, deserialize_with = "deserialize_option")]
        at: Option<Timestamp>,
    }

    fn decode(json: &str) -> Option<Timestamp> {
        serde_json::from_str::<Holder>(json).unwrap().at
    }

    #[test]
    fn xano_space_separated_form_with_plus_0000_parses_as_utc() {
        assert_eq!(
            parse("2023-05-09 21:31:20+0000"),
            Some(utc(2023, 5, 9, 21, 31, 20))
        );
    }

    #[test]
    fn rfc3339_with_z_and_with_an_offset_both_parse_to_the_same_utc_instant() {
        assert_eq!(
            parse("2024-01-15T10:30:00Z"),
            Some(utc(2024, 1, 15, 10, 30, 0))
        );
        assert_eq!(
            parse("2024-01-15T12:30:00+02:00"),
            Some(utc(2024, 1, 15, 10, 30, 0))
        );
        assert_eq!(
            parse("2024-01-15T10:30:00.250Z").map(|t| t.timestamp_millis()),
            Some(utc(2024, 1, 15, 10, 30, 0).timestamp_millis() + 250)
        );
    }

    #[test]
    fn non_utc_offsets_in_xano_form_are_normalised_to_utc() {
        assert_eq!(
            parse("2023-05-09 23:31:20+0200"),
            Some(utc(2023, 5, 9, 21, 31, 20))
        );
        assert_eq!(
            parse("2023-05-09 23:31:20+02:00"),
            Some(utc(2023, 5, 9, 21, 31, 20))
        );
    }

    #[test]
    fn epoch_milliseconds_parse_from_numbers_and_numeric_strings() {
        let expected = Some(utc(2023, 5, 9, 21, 31, 20));
        assert_eq!(decode(r#"{"at": 1683667880000}"#), expected);
        assert_eq!(decode(r#"{"at": 1683667880000.0}"#), expected);
        assert_eq!(decode(r#"{"at": "1683667880000"}"#), expected);
    }

    #[test]
    fn absent_null_and_empty_timestamps_decode_to_none() {
        assert_eq!(decode("{}"), None);
        assert_eq!(decode(r#"{"at": null}"#), None);
        assert_eq!(decode(r#"{"at": ""}"#), None);
    }

    #[test]
    fn an_unrecognised_timestamp_is_a_decode_error_not_a_silent_none() {
        let result = serde_json::from_str::<Holder>(r#"{"at": "last tuesday"}"#);

        assert!(result.is_err());
    }

    #[test]
    fn offset_less_timestamps_are_read_as_utc() {
        assert_eq!(
            parse("2023-05-09 21:31:20"),
            Some(utc(2023, 5, 9, 21, 31, 20))
        );
    }
}
