//! Ed25519 (RFC 8032) with one verification rule everywhere: ZIP-215, as
//! `ed25519-zebra` implements it. Single and batch verification accept
//! exactly the same signatures under ZIP-215, which is why it was chosen over
//! ed25519-dalek's batch check (whose cofactorless single check can disagree
//! with its batch check on crafted small-order inputs). Keys are generated and
//! signatures produced with `ed25519-dalek`.

use crate::{Error, Result};
use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use curve25519_dalek::scalar::Scalar;
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

/// The most signatures in one batch equation. A bad signature costs about
/// twice its batch (bisection), so the bound keeps that price finite. Larger
/// batches would spread the multiscalar multiplication's fixed cost thinner
/// (7% faster raw verification at 4,096, BENCHMARKS.md), but a node's rounds
/// rarely fill them, and the benchmark's raw baseline uses this same bound.
const MAX_BATCH: usize = 1024;

/// Verifies many signatures in batches, in parallel across cores, and returns
/// one verdict per item. A failed batch is bisected so that only the bad
/// signatures are rejected; verdicts equal single verification's (ZIP-215).
///
/// Items are grouped by key before they are split into batches: the batch
/// equation has one point per distinct key, so a key that signs several
/// items of a batch costs one full-width point instead of one per signature.
pub fn verify_batch(items: &[VerifyItem<'_>]) -> Vec<bool> {
    if items.is_empty() {
        return Vec::new();
    }
    let mut order: Vec<usize> = (0..items.len()).collect();
    order.sort_unstable_by_key(|&i| items[i].key.0);
    let sorted: Vec<&VerifyItem<'_>> = order.iter().map(|&i| &items[i]).collect();
    let threads = rayon::current_num_threads().max(1);
    let chunk = items.len().div_ceil(threads).clamp(32, MAX_BATCH);
    let verdicts: Vec<bool> = sorted.par_chunks(chunk).flat_map_iter(check_bisecting).collect();
    let mut out = vec![false; items.len()];
    for (&i, ok) in order.iter().zip(verdicts) {
        out[i] = ok;
    }
    out
}

fn check_bisecting(items: &[&VerifyItem<'_>]) -> Vec<bool> {
    if items.len() <= SINGLE_THRESHOLD {
        return items
            .iter()
            .map(|i| i.key.verify(i.message, &i.signature).is_ok())
            .collect();
    }
    if batch_holds(items, &mut rand::thread_rng()) {
        return vec![true; items.len()];
    }
    let (left, right) = items.split_at(items.len() / 2);
    let mut out = check_bisecting(left);
    out.extend(check_bisecting(right));
    out
}

/// Decompressed public keys, by encoding. Decompressing a point costs about as
/// much as a quarter of a signature check, and signers (registered parties)
/// sign again and again; bounded, so unknown keys cannot grow it without end.
static KEY_CACHE: std::sync::LazyLock<std::sync::RwLock<std::collections::HashMap<[u8; 32], EdwardsPoint>>> =
    std::sync::LazyLock::new(Default::default);
const KEY_CACHE_MAX: usize = 1 << 16;

fn decompress_key(bytes: &[u8; 32]) -> Option<EdwardsPoint> {
    if let Some(p) = KEY_CACHE.read().unwrap_or_else(|p| p.into_inner()).get(bytes) {
        return Some(*p);
    }
    let point = CompressedEdwardsY(*bytes).decompress()?;
    let mut cache = KEY_CACHE.write().unwrap_or_else(|p| p.into_inner());
    if cache.len() >= KEY_CACHE_MAX {
        cache.clear();
    }
    cache.insert(*bytes, point);
    Some(point)
}

/// The ZIP-215 batch equation, exactly as `ed25519_zebra::batch::Verifier`
/// computes it (signatures grouped by key; random 128-bit z per signature;
/// [8](-(Σ z·s)B + Σ (Σ z·k)A + Σ z·R) = 0, with R and A decoded leniently
/// and s canonical), except that keys come from [`KEY_CACHE`]. True only
/// if every signature in the batch is valid (up to the 2^-128 chance of a
/// random combination cancelling).
#[allow(non_snake_case)]
fn batch_holds(items: &[&VerifyItem<'_>], rng: &mut impl rand::RngCore) -> bool {
    use curve25519_dalek::traits::{IsIdentity, VartimeMultiscalarMul};
    use sha2::Digest as _;
    // One point per run of equal keys: [`verify_batch`] sorts by key, so a
    // run holds all of a key's signatures (unsorted input only shares less).
    let mut keys: Vec<[u8; 32]> = Vec::with_capacity(items.len());
    let mut A_coeffs: Vec<Scalar> = Vec::with_capacity(items.len());
    let mut R_coeffs = Vec::with_capacity(items.len());
    let mut Rs = Vec::with_capacity(items.len());
    let mut B_coeff = Scalar::ZERO;
    for item in items {
        let (r_bytes, s_bytes) = item.signature.0.split_at(32);
        let r_bytes: [u8; 32] = r_bytes.try_into().expect("64 = 32 + 32");
        let s_bytes: [u8; 32] = s_bytes.try_into().expect("64 = 32 + 32");
        let Some(R) = CompressedEdwardsY(r_bytes).decompress() else {
            return false;
        };
        let Some(s) = Option::<Scalar>::from(Scalar::from_canonical_bytes(s_bytes)) else {
            return false;
        };
        let k = Scalar::from_hash(
            sha2::Sha512::new()
                .chain_update(r_bytes)
                .chain_update(item.key.0)
                .chain_update(item.message),
        );
        let mut z = [0u8; 16];
        rng.fill_bytes(&mut z);
        let z = Scalar::from(u128::from_le_bytes(z));
        B_coeff -= z * s;
        Rs.push(R);
        R_coeffs.push(z);
        match (keys.last(), A_coeffs.last_mut()) {
            (Some(last), Some(coeff)) if *last == item.key.0 => *coeff += z * k,
            _ => {
                keys.push(item.key.0);
                A_coeffs.push(z * k);
            }
        }
    }
    let mut As = Vec::with_capacity(keys.len());
    for key in &keys {
        let Some(A) = decompress_key(key) else {
            return false;
        };
        As.push(A);
    }
    let B = curve25519_dalek::constants::ED25519_BASEPOINT_POINT;
    let check = EdwardsPoint::vartime_multiscalar_mul(
        std::iter::once(&B_coeff).chain(A_coeffs.iter()).chain(R_coeffs.iter()),
        std::iter::once(&B).chain(As.iter()).chain(Rs.iter()),
    );
    check.mul_by_cofactor().is_identity()
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

    /// The ZIP-215 small-order cases (as in ed25519-zebra's conformance
    /// tests): every A and R among the 8 torsion points and the low-order
    /// non-canonical encodings, with s = 0, is valid under ZIP-215, singly and
    /// in a batch, alone and mixed with ordinary signatures; s ≥ ℓ never is.
    #[test]
    fn zip215_small_order_cases_agree_single_and_batch() {
        let mut encodings: Vec<[u8; 32]> = curve25519_dalek::constants::EIGHT_TORSION
            .iter()
            .map(|p| p.compress().to_bytes())
            .collect();
        let mut noncanonical = |low: u8, sign: bool| {
            // low ‖ 0xff… ‖ 0x7f (+ sign bit): y = p + k for small k, or y = ±1 with x = 0 and the sign bit set.
            let mut e = [0xffu8; 32];
            e[0] = low;
            e[31] = if sign { 0xff } else { 0x7f };
            encodings.push(e);
        };
        noncanonical(0xed, false); // y = p     (= 0)
        noncanonical(0xed, true);
        noncanonical(0xee, false); // y = p + 1 (= 1)
        noncanonical(0xee, true);
        noncanonical(0xec, true); // y = p - 1 (= -1), sign bit set with x = 0
        let mut y1_sign = [0u8; 32];
        y1_sign[0] = 1;
        y1_sign[31] = 0x80; // y = 1, sign bit set with x = 0
        encodings.push(y1_sign);
        let message = b"Zcash".to_vec();
        let mut cases = Vec::new();
        for a in &encodings {
            for r in &encodings {
                let mut sig = [0u8; 64];
                sig[..32].copy_from_slice(r);
                cases.push((PublicKey(*a), Signature(sig)));
            }
        }
        let items: Vec<VerifyItem> = cases
            .iter()
            .map(|(key, signature)| VerifyItem {
                key: *key,
                signature: *signature,
                message: &message,
            })
            .collect();
        assert!(
            items.iter().all(|i| i.key.verify(i.message, &i.signature).is_ok()),
            "single: all valid"
        );
        assert!(verify_batch(&items).iter().all(|ok| *ok), "batch: all valid");
        // Mixed with ordinary signatures, and with one whose s is not reduced.
        let k = SigningKey::generate();
        let good = k.sign(&message);
        let mut unreduced = good;
        unreduced.0[63] |= 0xf0; // s ≥ 2^252 + … > ℓ
        let mut mixed: Vec<VerifyItem> = items
            .iter()
            .take(20)
            .map(|i| VerifyItem {
                key: i.key,
                signature: i.signature,
                message: i.message,
            })
            .collect();
        mixed.push(VerifyItem {
            key: k.public_key(),
            signature: good,
            message: &message,
        });
        mixed.push(VerifyItem {
            key: k.public_key(),
            signature: unreduced,
            message: &message,
        });
        let single: Vec<bool> = mixed
            .iter()
            .map(|i| i.key.verify(i.message, &i.signature).is_ok())
            .collect();
        assert_eq!(
            single.iter().filter(|ok| !**ok).count(),
            1,
            "only the unreduced s fails"
        );
        assert_eq!(verify_batch(&mixed), single);
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
