use sha2::{Digest as _, Sha256};
use std::io::Read;

/// A SHA-256 digest (FIPS 180-4).
#[derive(
    Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, borsh::BorshSerialize, borsh::BorshDeserialize,
)]
pub struct Digest(pub [u8; 32]);

impl Digest {
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
    pub fn try_from_bytes(bytes: &[u8; 32]) -> crate::Result<Self> {
        Ok(Digest(*bytes))
    }
    /// SHA-256 of a reader's whole content, streamed in constant memory.
    pub fn of_reader(mut reader: impl Read) -> std::io::Result<(Digest, u64)> {
        let mut stream = Sha256Stream::default();
        let mut buf = vec![0u8; 1 << 16];
        loop {
            let n = reader.read(&mut buf)?;
            if n == 0 {
                break;
            }
            stream.update(&buf[..n]);
        }
        let len = stream.len;
        Ok((stream.finish(), len))
    }
}

crate::hex_serde!(Digest, 32, "digest");

pub fn sha256(bytes: &[u8]) -> Digest {
    Digest(Sha256::digest(bytes).into())
}

/// SHA-256 over the concatenation of `parts`, without building it.
pub fn sha256_parts(parts: &[&[u8]]) -> Digest {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p);
    }
    Digest(h.finalize().into())
}

/// Incremental SHA-256.
#[derive(Default, Clone)]
pub struct Sha256Stream {
    hasher: Sha256,
    len: u64,
}

impl Sha256Stream {
    pub fn update(&mut self, bytes: &[u8]) {
        self.hasher.update(bytes);
        self.len += bytes.len() as u64;
    }
    pub fn finish(self) -> Digest {
        Digest(self.hasher.finalize().into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fips_180_vector_abc() {
        assert_eq!(
            sha256(b"abc").to_string(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn hex_round_trip_and_errors() {
        let d = sha256(b"x");
        let back: Digest = d.to_string().parse().expect("round trip");
        assert_eq!(d, back);
        assert_eq!(
            "zz".parse::<Digest>().expect_err("must be refused").code(),
            "encoding.bad_hex"
        );
        assert_eq!(
            "abcd".parse::<Digest>().expect_err("must be refused").code(),
            "encoding.bad_hex"
        );
    }
}
