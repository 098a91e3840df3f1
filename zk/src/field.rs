//! BN254 scalar-field elements as bytes.

use crate::{Error, Fr, Result};
use ark_ff::{BigInteger, PrimeField};

/// A field element as 32 big-endian bytes, canonical (below the modulus).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct FieldBytes(pub [u8; 32]);

impl FieldBytes {
    pub fn of(f: &Fr) -> FieldBytes {
        let mut out = [0u8; 32];
        out.copy_from_slice(&f.into_bigint().to_bytes_be());
        FieldBytes(out)
    }

    /// The element, refused unless the bytes are its canonical encoding.
    pub fn to_fr(&self) -> Result<Fr> {
        let f = Fr::from_be_bytes_mod_order(&self.0);
        if FieldBytes::of(&f) != *self {
            return Err(Error::BadField(format!(
                "{} is not a BN254 scalar (it is not below the field modulus)",
                hex::encode(self.0)
            )));
        }
        Ok(f)
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    pub fn from_hex(what: &str, text: &str) -> Result<FieldBytes> {
        let bytes = hex::decode(text.trim()).map_err(|e| Error::BadField(format!("{what}: not hex: {e}")))?;
        let arr: [u8; 32] = bytes
            .try_into()
            .map_err(|_| Error::BadField(format!("{what}: a field element is 32 bytes")))?;
        let fb = FieldBytes(arr);
        fb.to_fr().map_err(|e| Error::BadField(format!("{what}: {e}")))?;
        Ok(fb)
    }

    /// Decimal, as circom and snarkjs write field elements.
    pub fn to_decimal(&self) -> String {
        Fr::from_be_bytes_mod_order(&self.0).into_bigint().to_string()
    }
}

impl std::fmt::Display for FieldBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(&self.to_hex())
    }
}

/// 32 bytes (a SHA-256 digest) as a field element: the big-endian number
/// reduced modulo the field (SHA-256 is 256 bits, the field 254).
pub fn reduce(bytes: &[u8; 32]) -> Fr {
    Fr::from_be_bytes_mod_order(bytes)
}

/// Up to 31 bytes as a field element (big-endian), exactly.
pub fn from_short(bytes: &[u8]) -> Fr {
    debug_assert!(bytes.len() < 32);
    Fr::from_be_bytes_mod_order(bytes)
}

/// A fresh uniformly random element from the OS.
pub fn random() -> Fr {
    use ark_ff::UniformRand;
    Fr::rand(&mut rand::rngs::OsRng)
}
