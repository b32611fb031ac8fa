//! The envelope: secrets the service must read back later (buyers' Xano install tokens now,
//! sellers' credentials next) are kept sealed, so that a dump of the database alone reveals none.
//!
//! - **Sealing** is AES-256-GCM (RustCrypto's `aes-gcm`) under a *data key* from
//!   `MARKET_DATA_KEY`, with a fresh random 96-bit nonce per value (far below the 2³² values per key
//!   that random nonces allow). Every sealed value records the id of the key that sealed it, so
//!   keys roll: the ring lists the new key first (it seals) and the old ones after it (they still
//!   open); `market keys rotate` seals everything again under the first; then the old key can go.
//!   The associated data binds a value to where it belongs (`install_token/<listing id>`), so a
//!   sealed value copied into another row does not open there.
//! - **Finding** a sealed value by its plaintext (reconciliation asks "do we know this token Xano
//!   lists?", and PostgreSQL must refuse the same token twice) uses a *fingerprint*, HMAC-SHA256
//!   under a lookup key. That key must never change, or every fingerprint would, and during a key
//!   roll two instances would fingerprint one token two ways and let it in twice. So it is not a
//!   data key: it is 32 random bytes made once per database and kept there, sealed under the data
//!   keys like any other secret (`keys::open` makes or opens it; `keys::rotate` seals it again).
//!
//! [`DataKeys`] is what the environment gives; [`Envelope`] adds the opened lookup key. Neither
//! shows key material in `Debug` or in an error: only key ids, which are not secret.

use std::fmt;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

const NONCE_BYTES: usize = 12;
const KEY_BYTES: usize = 32;

/// A data key's name, stored beside every value it sealed: 1–32 of `A-Z a-z 0-9 _ -`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct KeyId(String);

impl KeyId {
    pub fn parse(text: &str) -> Option<Self> {
        let ok = (1..=32).contains(&text.len())
            && text
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        ok.then(|| Self(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A value sealed under the data key `key_id`: the nonce, then the ciphertext and its tag.
#[derive(Clone, PartialEq, Eq)]
pub struct Sealed {
    pub key_id: String,
    pub bytes: Vec<u8>,
}

impl fmt::Debug for Sealed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sealed({}, {} bytes)", self.key_id, self.bytes.len())
    }
}

/// Why a sealed value did not open. Names the key id only.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    #[error(
        "a stored secret is sealed under data key `{0}`, which MARKET_DATA_KEY does not list \
         (keep an old key in the list until `market keys rotate` has run)"
    )]
    UnknownKey(String),
    #[error(
        "a stored secret sealed under data key `{0}` failed authentication (altered, or moved from another row)"
    )]
    Corrupt(String),
    #[error("a secret too long to seal")]
    TooLong,
}

/// Why `MARKET_DATA_KEY` was refused. Names the entry's position, never its value.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum KeyringError {
    #[error("MARKET_DATA_KEY is empty; generate a key with `market keys generate`")]
    Empty,
    #[error("MARKET_DATA_KEY entry {0} is empty (a trailing or doubled comma?)")]
    EmptyEntry(usize),
    #[error(
        "MARKET_DATA_KEY entry {0} is not `id:base64-key` with an id of 1-32 letters, digits, `_` or `-`"
    )]
    Malformed(usize),
    #[error("MARKET_DATA_KEY entry {0} is not 32 bytes of standard base64")]
    BadKey(usize),
    #[error("MARKET_DATA_KEY entry {0} repeats the id of an earlier entry")]
    DuplicateId(usize),
}

#[derive(Clone)]
struct DataKey {
    id: KeyId,
    cipher: Aes256Gcm,
}

/// The data keys: the first seals, every one opens.
#[derive(Clone)]
pub struct DataKeys {
    keys: Vec<DataKey>,
}

impl fmt::Debug for DataKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ids: Vec<&str> = self.keys.iter().map(|k| k.id.as_str()).collect();
        write!(f, "DataKeys({ids:?})")
    }
}

impl DataKeys {
    /// Parses `id:base64,id:base64,…` (the first entry seals). Entries are trimmed; an empty one is
    /// refused, as a `${NEW},${OLD}` template with `OLD` unset would produce.
    pub fn parse(text: &str) -> Result<Self, KeyringError> {
        if text.trim().is_empty() {
            return Err(KeyringError::Empty);
        }
        let mut keys: Vec<DataKey> = Vec::new();
        for (i, entry) in text.split(',').enumerate() {
            let n = i + 1;
            let entry = entry.trim();
            if entry.is_empty() {
                return Err(KeyringError::EmptyEntry(n));
            }
            let (id, material) = entry.split_once(':').ok_or(KeyringError::Malformed(n))?;
            let id = KeyId::parse(id.trim()).ok_or(KeyringError::Malformed(n))?;
            let bytes = BASE64
                .decode(material.trim())
                .map_err(|_| KeyringError::BadKey(n))?;
            let cipher = Aes256Gcm::new_from_slice(&bytes).map_err(|_| KeyringError::BadKey(n))?;
            if keys.iter().any(|k| k.id == id) {
                return Err(KeyringError::DuplicateId(n));
            }
            keys.push(DataKey { id, cipher });
        }
        Ok(Self { keys })
    }

    /// One key made from `material` by SHA-256: the sandbox's key, derived from its database name
    /// so that its tokens open again on the next run. It protects nothing, and says so by its id.
    pub fn derived(id: KeyId, material: &[u8]) -> Self {
        let digest = Sha256::new()
            .chain_update(b"market data key\0")
            .chain_update(material)
            .finalize();
        Self::one(id, digest.into())
    }

    /// One fresh random key (tests).
    pub fn random(id: KeyId) -> Self {
        Self::one(id, rand::random())
    }

    fn one(id: KeyId, key: [u8; KEY_BYTES]) -> Self {
        Self {
            keys: vec![DataKey {
                id,
                cipher: Aes256Gcm::new(&key.into()),
            }],
        }
    }

    /// A new `MARKET_DATA_KEY` entry, `id:base64`, of 32 random bytes.
    pub fn generate_entry(id: &KeyId) -> String {
        format!("{id}:{}", BASE64.encode(rand::random::<[u8; KEY_BYTES]>()))
    }

    /// The id of the key that seals.
    pub fn sealing_id(&self) -> &KeyId {
        &self.keys[0].id
    }

    /// Every id, the sealing one first.
    pub fn ids(&self) -> impl Iterator<Item = &KeyId> {
        self.keys.iter().map(|k| &k.id)
    }

    /// Seals `plaintext` for the place `context` names (it must be given again to open it).
    pub fn seal(&self, context: &str, plaintext: &[u8]) -> Result<Sealed, EnvelopeError> {
        let key = &self.keys[0];
        let nonce: [u8; NONCE_BYTES] = rand::random();
        let payload = Payload {
            msg: plaintext,
            aad: context.as_bytes(),
        };
        // Encryption fails only for messages longer than GCM's 64 GiB limit.
        let ciphertext = key
            .cipher
            .encrypt(Nonce::from_slice(&nonce), payload)
            .map_err(|_| EnvelopeError::TooLong)?;
        let mut bytes = Vec::with_capacity(NONCE_BYTES + ciphertext.len());
        bytes.extend_from_slice(&nonce);
        bytes.extend_from_slice(&ciphertext);
        Ok(Sealed {
            key_id: key.id.0.clone(),
            bytes,
        })
    }

    /// Opens what [`seal`](Self::seal) sealed for the same `context`.
    pub fn open(&self, context: &str, sealed: &Sealed) -> Result<Vec<u8>, EnvelopeError> {
        let key = self
            .keys
            .iter()
            .find(|k| k.id.0 == sealed.key_id)
            .ok_or_else(|| EnvelopeError::UnknownKey(sealed.key_id.clone()))?;
        let corrupt = || EnvelopeError::Corrupt(sealed.key_id.clone());
        if sealed.bytes.len() < NONCE_BYTES {
            return Err(corrupt());
        }
        let (nonce, ciphertext) = sealed.bytes.split_at(NONCE_BYTES);
        key.cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: context.as_bytes(),
                },
            )
            .map_err(|_| corrupt())
    }
}

/// The data keys and the database's lookup key: everything needed to seal, open and find.
pub struct Envelope {
    keys: DataKeys,
    lookup: Hmac<Sha256>,
}

impl fmt::Debug for Envelope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Envelope({:?}, lookup key [redacted])", self.keys)
    }
}

/// The length of a lookup key and of a fingerprint.
pub const LOOKUP_KEY_BYTES: usize = 32;

impl Envelope {
    pub fn new(keys: DataKeys, lookup_key: &[u8; LOOKUP_KEY_BYTES]) -> Self {
        // HMAC pads a key shorter than the hash's 64-byte block with zeros (RFC 2104), so this
        // is HMAC under the 32-byte key, built without a fallible length check.
        let mut block = [0_u8; 64];
        block[..LOOKUP_KEY_BYTES].copy_from_slice(lookup_key);
        Self {
            keys,
            lookup: <Hmac<Sha256> as KeyInit>::new(&block.into()),
        }
    }

    pub fn keys(&self) -> &DataKeys {
        &self.keys
    }

    pub fn seal(&self, context: &str, plaintext: &[u8]) -> Result<Sealed, EnvelopeError> {
        self.keys.seal(context, plaintext)
    }

    pub fn open(&self, context: &str, sealed: &Sealed) -> Result<Vec<u8>, EnvelopeError> {
        self.keys.open(context, sealed)
    }

    /// The fingerprint of `value` among the values of one `kind`: equal values, equal prints.
    pub fn fingerprint(&self, kind: &str, value: &[u8]) -> [u8; LOOKUP_KEY_BYTES] {
        let mut mac = self.lookup.clone();
        mac.update(kind.as_bytes());
        mac.update(&[0]);
        mac.update(value);
        mac.finalize().into_bytes().into()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests fail by panicking")]

    use super::*;

    fn id(s: &str) -> KeyId {
        KeyId::parse(s).unwrap()
    }

    #[test]
    fn a_sealed_value_opens_only_in_its_own_context_and_only_unaltered() {
        let keys = DataKeys::random(id("k1"));
        let sealed = keys.seal("install_token/1", b"tok_abc").unwrap();
        assert_eq!(keys.open("install_token/1", &sealed).unwrap(), b"tok_abc");
        assert!(!sealed.bytes.windows(7).any(|w| w == b"tok_abc"));
        assert_eq!(
            keys.open("install_token/2", &sealed),
            Err(EnvelopeError::Corrupt("k1".into()))
        );
        let mut flipped = sealed.clone();
        let last = flipped.bytes.len() - 1;
        flipped.bytes[last] ^= 1;
        assert!(keys.open("install_token/1", &flipped).is_err());
        assert_ne!(
            keys.seal("c", b"x").unwrap().bytes,
            keys.seal("c", b"x").unwrap().bytes
        );
    }

    #[test]
    fn an_old_key_opens_what_it_sealed_and_the_first_key_seals() {
        let old = DataKeys::generate_entry(&id("old"));
        let new = DataKeys::generate_entry(&id("new"));
        let before = DataKeys::parse(&old).unwrap();
        let sealed = before.seal("c", b"secret").unwrap();
        let during = DataKeys::parse(&format!(" {new} , {old} ")).unwrap();
        assert_eq!(during.open("c", &sealed).unwrap(), b"secret");
        assert_eq!(during.seal("c", b"secret").unwrap().key_id, "new");
        let after = DataKeys::parse(&new).unwrap();
        assert_eq!(
            after.open("c", &sealed),
            Err(EnvelopeError::UnknownKey("old".into()))
        );
    }

    #[test]
    fn a_malformed_key_list_is_refused_by_position_without_showing_a_key() {
        let good = DataKeys::generate_entry(&id("a"));
        let material = good.split_once(':').unwrap().1.to_owned();
        let cases = [
            (String::new(), KeyringError::Empty),
            (format!("{good},"), KeyringError::EmptyEntry(2)),
            (material.clone(), KeyringError::Malformed(1)),
            (format!("{good},b c:{material}"), KeyringError::Malformed(2)),
            ("a:c2hvcnQ=".to_owned(), KeyringError::BadKey(1)),
            (format!("{good},{good}"), KeyringError::DuplicateId(2)),
        ];
        for (text, want) in cases {
            let err = DataKeys::parse(&text).unwrap_err();
            assert_eq!(err, want, "{text}");
            assert!(!err.to_string().contains(&material));
        }
    }

    #[test]
    fn a_fingerprint_is_hmac_sha256_under_the_lookup_key() {
        let envelope = Envelope::new(DataKeys::random(id("a")), &[7; 32]);
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&[7; 32]).unwrap();
        mac.update(b"t\0x");
        let want: [u8; 32] = mac.finalize().into_bytes().into();
        assert_eq!(envelope.fingerprint("t", b"x"), want);
    }

    #[test]
    fn fingerprints_depend_on_the_lookup_key_and_the_kind_not_on_the_data_key() {
        let a = Envelope::new(DataKeys::random(id("a")), &[7; 32]);
        let b = Envelope::new(DataKeys::random(id("b")), &[7; 32]);
        let c = Envelope::new(DataKeys::random(id("a")), &[8; 32]);
        assert_eq!(a.fingerprint("t", b"x"), b.fingerprint("t", b"x"));
        assert_ne!(a.fingerprint("t", b"x"), c.fingerprint("t", b"x"));
        assert_ne!(a.fingerprint("t", b"x"), a.fingerprint("u", b"x"));
        assert!(!format!("{a:?}").contains('7'));
    }
}
