//! Request bodies read from a JSON object only. serde reads a struct from an array too (`[]`,
//! `["https://…"]`, by position), which the document's `type: object` refuses; a body whose fields
//! are all optional would take `[]` as "change nothing". `web::Json<Object<T>>` refuses both.

use serde::de::{DeserializeOwned, Error as _};
use serde::{Deserialize, Deserializer};

/// `T`, read from a JSON object.
#[derive(Debug)]
pub struct Object<T>(pub T);

impl<'de, T: DeserializeOwned> Deserialize<'de> for Object<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let object = serde_json::Map::<String, serde_json::Value>::deserialize(deserializer)?;
        T::deserialize(serde_json::Value::Object(object))
            .map(Object)
            .map_err(D::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Patch {
        name: Option<String>,
    }

    #[test]
    fn an_object_is_read_and_an_array_is_refused() {
        let read: Object<Patch> = serde_json::from_str(r#"{"name": "a"}"#).unwrap();
        assert_eq!(read.0.name.as_deref(), Some("a"));
        assert!(serde_json::from_str::<Object<Patch>>("[]").is_err());
        assert!(serde_json::from_str::<Object<Patch>>(r#"["a"]"#).is_err());
        assert!(serde_json::from_str::<Object<Patch>>(r#"{"other": 1}"#).is_err());
    }
}
