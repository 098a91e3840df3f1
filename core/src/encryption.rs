//! X25519 (RFC 7748) encryption keys. Parties register the public half; the
//! delivery layer wraps content keys to it with HPKE (RFC 9180).

use crate::Result;

#[derive(Clone, Copy, PartialEq, Eq, Hash, borsh::BorshSerialize, borsh::BorshDeserialize)]
pub struct EncryptionPublicKey([u8; 32]);

impl EncryptionPublicKey {
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
    pub fn try_from_bytes(bytes: &[u8; 32]) -> Result<Self> {
        Ok(EncryptionPublicKey(*bytes))
    }
}
crate::hex_serde!(EncryptionPublicKey, 32, "encryption public key");

/// An X25519 static key pair.
#[derive(Clone)]
pub struct EncryptionKeyPair {
    secret: x25519_dalek::StaticSecret,
}

impl EncryptionKeyPair {
    pub fn generate() -> Self {
        EncryptionKeyPair {
            secret: x25519_dalek::StaticSecret::random_from_rng(rand::rngs::OsRng),
        }
    }
    pub fn from_secret_hex(text: &str) -> Result<Self> {
        let bytes = crate::from_hex_array::<32>("encryption secret", text)?;
        Ok(EncryptionKeyPair {
            secret: x25519_dalek::StaticSecret::from(bytes),
        })
    }
    /// The secret scalar's bytes, for HPKE (stays in this crate).
    pub(crate) fn secret_bytes(&self) -> [u8; 32] {
        self.secret.to_bytes()
    }
    pub fn secret_hex(&self) -> String {
        hex::encode(self.secret.to_bytes())
    }
    pub fn public_key(&self) -> EncryptionPublicKey {
        EncryptionPublicKey(x25519_dalek::PublicKey::from(&self.secret).to_bytes())
    }
    /// Raw X25519 shared secret with a peer's public key (RFC 7748 §6.1).
    pub fn diffie_hellman(&self, peer: &EncryptionPublicKey) -> [u8; 32] {
        self.secret
            .diffie_hellman(&x25519_dalek::PublicKey::from(peer.0))
            .to_bytes()
    }
}

impl std::fmt::Debug for EncryptionKeyPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "EncryptionKeyPair(public {})", self.public_key())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc7748_section_6_1_vector() {
        let alice =
            EncryptionKeyPair::from_secret_hex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a")
                .expect("hex");
        assert_eq!(
            alice.public_key().to_string(),
            "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a"
        );
        let bob: EncryptionPublicKey = "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f"
            .parse()
            .expect("hex");
        assert_eq!(
            hex::encode(alice.diffie_hellman(&bob)),
            "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742"
        );
    }
}
