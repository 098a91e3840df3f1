//! Ed25519 (RFC 8032) with one verification rule everywhere: ZIP-215, as
//! `ed25519-zebra` implements it. Single and batch verification accept
//! exactly the same signatures under ZIP-215, which is why it was chosen over
//! ed25519-dalek's batch check (whose cofactorless single check can disagree
//! with its batch check on crafted small-order inputs). Keys are generated and
//! signatures produced with `ed25519-dalek`.

use crate::{Error, Result};
use rayon::prelude::*;

/// An Ed25519 public key (32 bytes, a valid curve point encoding).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, borsh::BorshSerialize, borsh::BorshDeserialize)]
pub struct PublicKey([u8; 32]);

impl PublicKey {
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
    /// Accepts only encodings that decode to a curve point.
    pub fn try_from_bytes(bytes: &[u8; 32]) -> Result<Self> {
        ed25519_zebra::VerificationKey::try_from(*bytes).map_err(|_| Error::BadPublicKey(hex::encode(bytes)))?;
        Ok(PublicKey(*bytes))
    }

    /// Verifies `signature` over `message` (ZIP-215).
    pub fn verify(&self, message: &[u8], signature: &Signature) -> Result<()> {
        let vk = ed25519_zebra::VerificationKey::try_from(self.0).map_err(|_| Error::BadSignature)?;
        vk.verify(&ed25519_zebra::Signature::from_bytes(&signature.0), message)
            .map_err(|_| Error::BadSignature)
    }
}
crate::hex_serde!(PublicKey, 32, "public key");

/// An Ed25519 signature (64 bytes).
#[derive(Clone, Copy, PartialEq, Eq, borsh::BorshSerialize, borsh::BorshDeserialize)]
pub struct Signature(pub [u8; 64]);

impl Signature {
    pub fn as_bytes(&self) -> &[u8; 64] {
        &self.0
    }
    pub fn try_from_bytes(bytes: &[u8; 64]) -> Result<Self> {
        Ok(Signature(*bytes))
    }
}
crate::hex_serde!(Signature, 64, "signature");

/// An Ed25519 signing key. Its secret never leaves the process except into
/// the owner's key file.
#[derive(Clone)]
pub struct SigningKey(ed25519_dalek::SigningKey);

impl SigningKey {
    pub fn generate() -> Self {
        SigningKey(ed25519_dalek::SigningKey::generate(&mut rand::rngs::OsRng))
    }
    pub fn from_secret_bytes(secret: &[u8; 32]) -> Self {
        SigningKey(ed25519_dalek::SigningKey::from_bytes(secret))
    }
    pub fn from_secret_hex(text: &str) -> Result<Self> {
        Ok(Self::from_secret_bytes(&crate::from_hex_array::<32>(
            "signing secret",
            text,
        )?))
    }
    pub fn secret_hex(&self) -> String {
        hex::encode(self.0.to_bytes())
    }
    pub fn public_key(&self) -> PublicKey {
        PublicKey(self.0.verifying_key().to_bytes())
    }
    pub fn sign(&self, message: &[u8]) -> Signature {
        use ed25519_dalek::Signer;
        Signature(self.0.sign(message).to_bytes())
    }
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SigningKey(public {})", self.public_key())
    }
}

/// One signature to check in a batch.
pub struct VerifyItem<'a> {
    pub key: PublicKey,
    pub signature: Signature,
    pub message: &'a [u8],
}

/// Below this many signatures a batch is not worth its set-up; check singly.
const SINGLE_THRESHOLD: usize = 4;

/// Verifies many signatures in batches, in parallel across cores, and returns
/// one verdict per item. A failed batch is bisected so that only the bad
/// signatures are rejected; verdicts equal single verification's (ZIP-215).
pub fn verify_batch(items: &[VerifyItem<'_>]) -> Vec<bool> {
    if items.is_empty() {
        return Vec::new();
    }
    let threads = rayon::current_num_threads().max(1);
    let chunk = items.len().div_ceil(threads * 2).clamp(32, 1024);
    items.par_chunks(chunk).flat_map_iter(check_bisecting).collect()
}

fn check_bisecting(items: &[VerifyItem<'_>]) -> Vec<bool> {
    if items.len() <= SINGLE_THRESHOLD {
        return items
            .iter()
            .map(|i| i.key.verify(i.message, &i.signature).is_ok())
            .collect();
    }
    let mut verifier = ed25519_zebra::batch::Verifier::new();
    for item in items {
        let vk = ed25519_zebra::VerificationKeyBytes::from(item.key.0);
        let sig = ed25519_zebra::Signature::from_bytes(&item.signature.0);
        verifier.queue((vk, sig, item.message));
    }
    if verifier.verify(rand::thread_rng()).is_ok() {
        return vec![true; items.len()];
    }
    let (left, right) = items.split_at(items.len() / 2);
    let mut out = check_bisecting(left);
    out.extend(check_bisecting(right));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn sign_verify_and_reject() {
        let k = SigningKey::generate();
        let s = k.sign(b"hello");
        assert!(k.public_key().verify(b"hello", &s).is_ok());
        assert_eq!(
            k.public_key().verify(b"hellp", &s).expect_err("must be refused").code(),
            "tx.bad_signature"
        );
    }

    #[test]
    fn rfc8032_test_vector_1() {
        // RFC 8032 §7.1, TEST 1 (empty message).
        let secret =
            crate::from_hex_array::<32>("s", "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
                .expect("hex");
        let k = SigningKey::from_secret_bytes(&secret);
        assert_eq!(
            k.public_key().to_string(),
            "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
        );
        assert_eq!(
            k.sign(b"").to_string(),
            "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
        );
    }

    #[test]
    fn public_key_must_be_a_point() {
        // y = 2 is not on the curve; its encoding must be refused.
        let mut bytes = [0u8; 32];
        bytes[0] = 2;
        assert_eq!(
            PublicKey::try_from_bytes(&bytes).expect_err("must be refused").code(),
            "key.malformed"
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 16, rng_algorithm: proptest::test_runner::RngAlgorithm::ChaCha, rng_seed: proptest::test_runner::RngSeed::Fixed(0x5eed), ..ProptestConfig::default() })]
        /// Batch verdicts equal single verdicts, and a failed batch rejects only the bad items.
        #[test]
        fn batch_equals_single(n in 1usize..200, bad in proptest::collection::vec(any::<u16>(), 0..6)) {
            let keys: Vec<SigningKey> = (0..8).map(|_| SigningKey::generate()).collect();
            let messages: Vec<Vec<u8>> = (0..n).map(|i| format!("message {i}").into_bytes()).collect();
            let mut sigs: Vec<Signature> = messages.iter().enumerate().map(|(i, m)| keys[i % 8].sign(m)).collect();
            for b in &bad {
                let i = *b as usize % n;
                sigs[i].0[(*b as usize) % 64] ^= 1;
            }
            let items: Vec<VerifyItem> = messages.iter().enumerate().map(|(i, m)| VerifyItem {
                key: keys[i % 8].public_key(), signature: sigs[i], message: m,
            }).collect();
            let batch = verify_batch(&items);
            let single: Vec<bool> = items.iter().map(|i| i.key.verify(i.message, &i.signature).is_ok()).collect();
            prop_assert_eq!(batch, single);
        }
    }
}
