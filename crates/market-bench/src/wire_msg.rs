//! Reading the fields of one PostgreSQL protocol message (`wire.rs`): big-endian integers,
//! NUL-terminated strings and length-prefixed values. A message cut short reads as zeros and empty
//! strings rather than panicking: the proxy forwards the bytes whatever it makes of them.

/// A cursor over one message's body.
pub struct Reader<'a> {
    body: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    pub fn new(body: &'a [u8]) -> Self {
        Self { body, at: 0 }
    }

    fn take(&mut self, n: usize) -> &'a [u8] {
        let start = self.at.min(self.body.len());
        let end = self.at.saturating_add(n).min(self.body.len());
        self.at = self.at.saturating_add(n);
        self.body.get(start..end).unwrap_or_default()
    }

    pub fn u8(&mut self) -> u8 {
        self.take(1).first().copied().unwrap_or(0)
    }

    pub fn u16(&mut self) -> u16 {
        <[u8; 2]>::try_from(self.take(2)).map_or(0, u16::from_be_bytes)
    }

    pub fn u32(&mut self) -> u32 {
        <[u8; 4]>::try_from(self.take(4)).map_or(0, u32::from_be_bytes)
    }

    /// A NUL-terminated string.
    pub fn cstr(&mut self) -> String {
        let rest = self.body.get(self.at..).unwrap_or_default();
        let end = rest.iter().position(|&b| b == 0).unwrap_or(rest.len());
        self.at += end + 1;
        String::from_utf8_lossy(rest.get(..end).unwrap_or_default()).into_owned()
    }

    /// A length-prefixed value; length -1 is NULL.
    pub fn value(&mut self) -> Option<Vec<u8>> {
        let len = self.u32();
        if len == u32::MAX {
            return None;
        }
        Some(self.take(len as usize).to_vec())
    }
}

/// SQL text on one line, for the report.
pub fn cstr_text(sql: &str) -> String {
    sql.split_whitespace().collect::<Vec<_>>().join(" ")
}
