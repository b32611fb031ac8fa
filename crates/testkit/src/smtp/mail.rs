//! A message as the sink received it, and the little MIME decoding the tests need (multipart
//! bodies, quoted-printable and base64 parts, RFC 2047 subjects).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

use serde::Deserialize;

/// A message as the server accepted it: its envelope and the raw text, split into headers (unfolded,
/// in order) and body (still transfer-encoded; see [`ReceivedMail::text_parts`]).
#[derive(Debug, Clone, PartialEq)]
pub struct ReceivedMail {
    pub mail_from: String,
    pub rcpt_tos: Vec<String>,
    pub raw: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
    /// Unix time, in seconds, at which the server accepted it.
    pub received_at: f64,
}

impl ReceivedMail {
    pub(super) fn from_record(record: Record) -> Self {
        let (headers, body) = split_entity(&record.data);
        Self {
            mail_from: record.mail_from,
            rcpt_tos: record.rcpt_tos,
            raw: record.data,
            headers,
            body,
            received_at: record.received_at,
        }
    }

    /// The first header called `name` (in any case), unfolded.
    pub fn header(&self, name: &str) -> Option<&str> {
        find_header(&self.headers, name)
    }

    /// The `Message-ID` header as sent, angle brackets included.
    pub fn message_id(&self) -> Option<&str> {
        self.header("message-id")
    }

    /// The `Subject` header with its RFC 2047 encoded words decoded.
    pub fn subject(&self) -> Option<String> {
        self.header("subject").map(decode_encoded_words)
    }

    /// The decoded text of every `text/*` part (all alternatives, in order, joined by a newline),
    /// quoted-printable or base64 undone, with `\n` line ends.
    pub fn text_parts(&self) -> String {
        entity_text(&self.headers, &self.body)
    }
}

/// Splits a message or body part into unfolded headers and its body.
fn split_entity(text: &str) -> (Vec<(String, String)>, String) {
    let mut headers: Vec<(String, String)> = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        let (line, after) = rest.split_once('\n').unwrap_or((rest, ""));
        let line = line.strip_suffix('\r').unwrap_or(line);
        rest = after;
        if line.is_empty() {
            break;
        }
        if line.starts_with([' ', '\t']) {
            if let Some((_, value)) = headers.last_mut() {
                value.push_str(line.trim_end());
            }
        } else if let Some((name, value)) = line.split_once(':') {
            headers.push((name.trim().to_owned(), value.trim().to_owned()));
        }
    }
    (headers, rest.to_owned())
}

fn find_header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, value)| value.as_str())
}

fn entity_text(headers: &[(String, String)], body: &str) -> String {
    let content_type = find_header(headers, "content-type").unwrap_or("text/plain");
    let mime = content_type.trim_start().to_ascii_lowercase();
    if mime.starts_with("multipart/") {
        let Some(boundary) = parameter(content_type, "boundary") else {
            return String::new();
        };
        let texts: Vec<String> = multipart_parts(body, &boundary)
            .iter()
            .map(|part| {
                let (headers, body) = split_entity(part);
                entity_text(&headers, &body)
            })
            .filter(|text| !text.is_empty())
            .collect();
        return texts.join("\n");
    }
    if !mime.starts_with("text/") {
        return String::new();
    }
    let encoding = find_header(headers, "content-transfer-encoding").unwrap_or("7bit");
    let bytes = match encoding.trim().to_ascii_lowercase().as_str() {
        "quoted-printable" => decode_quoted_printable(body),
        "base64" => {
            let compact: String = body.chars().filter(|c| !c.is_ascii_whitespace()).collect();
            BASE64.decode(compact).unwrap_or_else(|e| {
                panic!("a base64 part of the message is not base64 ({e}):\n{body}")
            })
        }
        _ => body.as_bytes().to_vec(),
    };
    String::from_utf8_lossy(&bytes).replace("\r\n", "\n")
}

/// A parameter of a header value such as `multipart/alternative; boundary="x"`, unquoted.
fn parameter(value: &str, name: &str) -> Option<String> {
    value.split(';').skip(1).find_map(|pair| {
        let (key, value) = pair.split_once('=')?;
        key.trim()
            .eq_ignore_ascii_case(name)
            .then(|| value.trim().trim_matches('"').to_owned())
    })
}

/// The body parts between `--boundary` lines, up to `--boundary--`.
fn multipart_parts(body: &str, boundary: &str) -> Vec<String> {
    let delimiter = format!("--{boundary}");
    let mut parts = Vec::new();
    let mut current: Option<Vec<&str>> = None;
    for line in body.split('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line);
        match line.strip_prefix(&delimiter) {
            Some(rest) if rest.trim().is_empty() || rest.starts_with("--") => {
                parts.extend(current.take().map(|lines| lines.join("\r\n")));
                if rest.starts_with("--") {
                    break;
                }
                current = Some(Vec::new());
            }
            _ => current.iter_mut().for_each(|lines| lines.push(line)),
        }
    }
    parts
}

/// Quoted-printable: `=` at a line end is a soft line break, `=XX` a byte.
fn decode_quoted_printable(text: &str) -> Vec<u8> {
    let text = text.replace("\r\n", "\n").replace("=\n", "");
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = text
            .get(i + 1..i + 3)
            .filter(|h| h.bytes().all(|c| c.is_ascii_hexdigit()));
        match hex
            .filter(|_| bytes[i] == b'=')
            .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            Some(byte) => (out.push(byte), i += 3),
            None => (out.push(bytes[i]), i += 1),
        };
    }
    out
}

/// Decodes the RFC 2047 words (`=?utf-8?b?...?=`, `=?utf-8?q?...?=`) of a header value; the
/// whitespace between two adjacent encoded words is dropped.
fn decode_encoded_words(value: &str) -> String {
    let mut out = String::new();
    let mut rest = value;
    let mut after_word = false;
    while let Some(start) = rest.find("=?") {
        let (before, candidate) = rest.split_at(start);
        if let Some((text, len)) = decode_encoded_word(candidate) {
            if !(after_word && before.trim().is_empty()) {
                out.push_str(before);
            }
            out.push_str(&text);
            rest = &candidate[len..];
            after_word = true;
        } else {
            out.push_str(before);
            out.push_str("=?");
            rest = &candidate[2..];
            after_word = false;
        }
    }
    out.push_str(rest);
    out
}

/// One encoded word at the start of `s`: its text and its length in `s`.
fn decode_encoded_word(s: &str) -> Option<(String, usize)> {
    let (charset, rest) = s.strip_prefix("=?")?.split_once('?')?;
    let (encoding, rest) = rest.split_once('?')?;
    let encoded = &rest[..rest.find("?=")?];
    if [charset, encoding, encoded]
        .iter()
        .any(|part| part.contains(char::is_whitespace))
    {
        return None;
    }
    let bytes = match encoding {
        "b" | "B" => BASE64.decode(encoded).ok()?,
        "q" | "Q" => decode_quoted_printable(&encoded.replace('_', "=20")),
        _ => return None,
    };
    let text = if charset.eq_ignore_ascii_case("iso-8859-1") {
        bytes.iter().map(|&b| char::from(b)).collect()
    } else {
        String::from_utf8_lossy(&bytes).into_owned()
    };
    let len = "=?".len() + charset.len() + 1 + encoding.len() + 1 + encoded.len() + "?=".len();
    Some((text, len))
}

/// One line of the sink's file.
#[derive(Debug, Deserialize)]
pub(super) struct Record {
    mail_from: String,
    rcpt_tos: Vec<String>,
    data: String,
    received_at: f64,
}
