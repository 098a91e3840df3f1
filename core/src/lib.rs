//! liutong-core: the vocabulary every other liutong crate speaks.
//!
//! It owns SHA-256 digests, Ed25519 signing and verification (one rule,
//! ZIP-215, for single and batch checks), X25519 encryption keys, the
//! canonical (borsh) encoding of everything that is signed or hashed, the
//! unified social credit code used as party id, time, and the one `Error`
//! type with stable codes. It depends on no other workspace crate.

mod canonical;
mod credit_code;
mod digest;
mod encryption;
mod error;
pub mod merkle;
mod signature;
pub mod stream;
mod time;

pub use canonical::{decode_canonical, encode_canonical, Canonical};
pub use credit_code::CreditCode;
pub use digest::{sha256, sha256_parts, Digest, Sha256Stream};
pub use encryption::{EncryptionKeyPair, EncryptionPublicKey};
pub use error::{Error, Result};
pub use signature::{verify_batch, PublicKey, Signature, SigningKey, VerifyItem};
pub use time::{format_utc, now_ms, parse_utc, Timestamp};

/// Hex text form used for every binary value in JSON and on the command line.
pub fn to_hex(bytes: &[u8]) -> String {
    hex::encode(bytes)
}

/// Parses hex of any length, naming `what` in the error.
pub fn from_hex(what: &'static str, text: &str) -> Result<Vec<u8>> {
    hex::decode(text.trim()).map_err(|e| Error::BadHex {
        what,
        reason: e.to_string(),
    })
}

/// Parses a fixed-size hex value, naming `what` in the error.
pub fn from_hex_array<const N: usize>(what: &'static str, text: &str) -> Result<[u8; N]> {
    let bytes = from_hex(what, text)?;
    bytes.try_into().map_err(|b: Vec<u8>| Error::BadHex {
        what,
        reason: format!("expected {N} bytes, got {}", b.len()),
    })
}

/// Standard base64 (RFC 4648 §4, padded), used for raw transaction bytes in JSON.
pub fn to_base64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Parses standard base64.
pub fn from_base64(what: &'static str, text: &str) -> Result<Vec<u8>> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .map_err(|e| Error::BadBase64 {
            what,
            reason: e.to_string(),
        })
}

/// Serde helpers: fixed-size byte arrays as hex strings.
macro_rules! hex_serde {
    ($ty:ty, $n:expr, $what:expr) => {
        impl serde::Serialize for $ty {
            fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
                // On the stack: results render a few digests per transaction.
                let mut text = [0u8; 2 * $n];
                hex::encode_to_slice(self.as_bytes(), &mut text).expect("the buffer is twice the bytes");
                s.serialize_str(std::str::from_utf8(&text).expect("hex digits are ASCII"))
            }
        }
        impl<'de> serde::Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
                let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                text.parse().map_err(serde::de::Error::custom)
            }
        }
        impl std::str::FromStr for $ty {
            type Err = $crate::Error;
            fn from_str(text: &str) -> $crate::Result<Self> {
                <$ty>::try_from_bytes(&$crate::from_hex_array::<$n>($what, text)?)
            }
        }
        impl std::fmt::Display for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&hex::encode(self.as_bytes()))
            }
        }
        impl std::fmt::Debug for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "{}({})", stringify!($ty), hex::encode(self.as_bytes()))
            }
        }
    };
}
pub(crate) use hex_serde;
