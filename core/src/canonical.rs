use crate::{Error, Result};

/// Canonical bytes: the one encoding used for everything that is signed or
/// hashed. It is borsh (deterministic: fixed-width little-endian integers,
/// length-prefixed sequences, no maps with free ordering), never JSON.
pub trait Canonical: borsh::BorshSerialize + borsh::BorshDeserialize {
    /// What a decoding error names.
    const WHAT: &'static str;

    fn canonical_bytes(&self) -> Vec<u8> {
        encode_canonical(self)
    }

    /// Decodes exactly `bytes`: trailing bytes are an error, so one value has one encoding.
    fn from_canonical_bytes(bytes: &[u8]) -> Result<Self> {
        decode_canonical(Self::WHAT, bytes)
    }
}

pub fn encode_canonical<T: borsh::BorshSerialize + ?Sized>(value: &T) -> Vec<u8> {
    borsh::to_vec(value).expect("borsh encoding into a Vec cannot fail")
}

pub fn decode_canonical<T: borsh::BorshDeserialize>(what: &'static str, bytes: &[u8]) -> Result<T> {
    borsh::from_slice(bytes).map_err(|e| Error::Malformed {
        what,
        reason: e.to_string(),
    })
}
