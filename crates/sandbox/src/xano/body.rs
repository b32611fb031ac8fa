//! POST bodies: JSON (what clients send), `application/x-www-form-urlencoded` and
//! `multipart/form-data` (both listed in Xano's spec), read into one field map.
//!
//! JSON values keep their types, so `"max_installs": "5"` is not an integer. Form bodies carry only
//! text, so there an integer field is parsed from its text, as a form-based client expects.

use serde_json::{Map, Value};

use super::error::XanoError;

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Fields {
    typed: bool,
    values: Map<String, Value>,
}

impl Fields {
    /// Reads `body` according to `content_type`; an absent or unknown type is tried as JSON.
    pub(crate) fn parse(content_type: Option<&str>, body: &[u8]) -> Result<Self, XanoError> {
        let content_type = content_type.unwrap_or("");
        let media_type = content_type.to_ascii_lowercase();
        if media_type.starts_with("application/x-www-form-urlencoded") {
            let values = url::form_urlencoded::parse(body)
                .map(|(key, value)| (key.into_owned(), Value::String(value.into_owned())))
                .collect();
            return Ok(Self {
                typed: false,
                values,
            });
        }
        if media_type.starts_with("multipart/form-data") {
            // The boundary is case-sensitive, so it is read from the original header.
            let boundary = boundary(content_type).ok_or_else(XanoError::unreadable_body)?;
            let values =
                multipart_fields(body, &boundary).ok_or_else(XanoError::unreadable_body)?;
            return Ok(Self {
                typed: false,
                values,
            });
        }
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(Self {
                typed: true,
                values: Map::new(),
            });
        }
        match serde_json::from_slice(body) {
            Ok(Value::Object(values)) => Ok(Self {
                typed: true,
                values,
            }),
            _ => Err(XanoError::unreadable_body()),
        }
    }

    /// A present, non-null field (Xano treats `null` for a required input as missing).
    fn get(&self, name: &str) -> Result<&Value, XanoError> {
        match self.values.get(name) {
            None | Some(Value::Null) => Err(XanoError::missing(name)),
            Some(value) => Ok(value),
        }
    }

    pub(crate) fn text(&self, name: &str) -> Result<&str, XanoError> {
        self.get(name)?
            .as_str()
            .ok_or_else(|| XanoError::input(name, format!("Value is not text: {name}")))
    }

    /// An integer field that must be zero or more.
    pub(crate) fn count(&self, name: &str) -> Result<i64, XanoError> {
        let not_an_integer = || XanoError::input(name, format!("Value is not an integer: {name}"));
        let value = match self.get(name)? {
            Value::Number(number) => number.as_i64().ok_or_else(not_an_integer)?,
            Value::String(text) if !self.typed => {
                text.trim().parse().map_err(|_| not_an_integer())?
            }
            _ => return Err(not_an_integer()),
        };
        if value < 0 {
            return Err(XanoError::input(
                name,
                format!("Value must be 0 or more: {name}"),
            ));
        }
        Ok(value)
    }
}

fn boundary(content_type: &str) -> Option<String> {
    content_type.split(';').find_map(|param| {
        let (key, value) = param.trim().split_once('=')?;
        key.trim()
            .eq_ignore_ascii_case("boundary")
            .then(|| value.trim().trim_matches('"').to_owned())
    })
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

/// The text fields of a multipart body. Just enough of RFC 7578 for clients that send form
/// fields: parts are split on the boundary, each named by its `Content-Disposition`.
fn multipart_fields(body: &[u8], boundary: &str) -> Option<Map<String, Value>> {
    let delimiter = format!("--{boundary}");
    let mut values = Map::new();
    let mut rest = &body[find(body, delimiter.as_bytes())? + delimiter.len()..];
    loop {
        if rest.starts_with(b"--") {
            return Some(values);
        }
        rest = rest.strip_prefix(b"\r\n")?;
        let end = find(rest, delimiter.as_bytes())?;
        let part = &rest[..end];
        let part = part.strip_suffix(b"\r\n").unwrap_or(part);
        let split = find(part, b"\r\n\r\n")?;
        let headers = String::from_utf8_lossy(&part[..split]).to_ascii_lowercase();
        let name = headers.lines().find_map(|line| {
            let line = line.strip_prefix("content-disposition:")?;
            let start = line.find("name=\"")? + "name=\"".len();
            let len = line[start..].find('"')?;
            Some(line[start..start + len].to_owned())
        })?;
        let value = String::from_utf8_lossy(&part[split + 4..]).into_owned();
        values.insert(name, Value::String(value));
        rest = &rest[end + delimiter.len()..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_integers_must_be_json_numbers_but_form_integers_are_parsed_from_text() {
        let json = Fields::parse(Some("application/json"), br#"{"max_installs":"5"}"#).unwrap();
        assert!(json.count("max_installs").is_err());
        let form =
            Fields::parse(Some("application/x-www-form-urlencoded"), b"max_installs=5").unwrap();
        assert_eq!(form.count("max_installs"), Ok(5));
    }

    #[test]
    fn multipart_text_fields_are_read_by_name() {
        let body = b"--XyZ\r\nContent-Disposition: form-data; name=\"install_access\"\r\n\r\ntoken\r\n\
--XyZ\r\nContent-Disposition: form-data; name=\"install_access_description\"\r\n\r\nBuy it\r\n--XyZ--\r\n";
        let fields = Fields::parse(Some("Multipart/Form-Data; boundary=XyZ"), body).unwrap();
        assert_eq!(fields.text("install_access"), Ok("token"));
        assert_eq!(fields.text("install_access_description"), Ok("Buy it"));
    }

    #[test]
    fn a_body_that_is_not_a_json_object_is_an_input_error() {
        assert!(Fields::parse(Some("application/json"), b"[1]").is_err());
        assert!(Fields::parse(None, b"{oops").is_err());
        assert!(
            Fields::parse(None, b"")
                .unwrap()
                .count("max_installs")
                .is_err()
        );
    }
}
