//! End-to-end encrypted delivery streams.
//!
//! A delivery is encrypted to the consumer's registered X25519 key with HPKE
//! (RFC 9180, mode base: DHKEM(X25519, HKDF-SHA256), HKDF-SHA256,
//! AES-256-GCM), with the request digest in the HPKE `info`. From the HPKE
//! context the two sides export a stream key and a 7-byte nonce prefix; the
//! payload then goes as fixed-size chunks, each sealed with AES-256-GCM
//! under the nonce `prefix ‖ chunk index (u32, big-endian) ‖ last-chunk flag`
//! with the request digest as associated data: the STREAM construction
//! (Hoang, Reyhanitabar, Rogaway and Vizár, "Online Authenticated-Encryption
//! and its Nonce-Reuse Misuse-Resistance", 2015). A chunk opened at another
//! index (reordering, duplication), a stream that ends without a chunk
//! sealed as last (truncation), a chunk from another delivery (splicing: a
//! fresh HPKE context per request) or a delivery replayed for another
//! request (the digest is bound twice) all fail to open.

use crate::encryption::{EncryptionKeyPair, EncryptionPublicKey};
use crate::{Digest, Error, Result};
use hpke::{aead::AesGcm256, kdf::HkdfSha256, kem::X25519HkdfSha256, Deserializable, OpModeR, OpModeS, Serializable};
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};

type Kem = X25519HkdfSha256;

/// The version label bound into every stream's HPKE info and exports.
pub const STREAM_SUITE: &[u8] = b"liutong/stream/v1";
/// Bytes AES-256-GCM adds to each chunk.
pub const TAG_LEN: usize = 16;
/// The HPKE encapsulated key the sender transmits first.
pub type EncappedKey = [u8; 32];

const NONCE_PREFIX_LEN: usize = 7;

fn decrypt_error(msg: impl Into<String>) -> Error {
    Error::Decrypt(msg.into())
}

fn info(request: &Digest) -> Vec<u8> {
    [STREAM_SUITE, b"\0", request.as_bytes()].concat()
}

/// The stream key and nonce prefix exported from an HPKE context.
fn stream_keys(export: impl Fn(&[u8], &mut [u8]) -> std::result::Result<(), hpke::HpkeError>) -> Result<Chunks> {
    let mut key = [0u8; 32];
    let mut prefix = [0u8; NONCE_PREFIX_LEN];
    export(&[STREAM_SUITE, b" key"].concat(), &mut key).map_err(|e| decrypt_error(format!("HPKE export: {e:?}")))?;
    export(&[STREAM_SUITE, b" nonce"].concat(), &mut prefix)
        .map_err(|e| decrypt_error(format!("HPKE export: {e:?}")))?;
    let key = UnboundKey::new(&AES_256_GCM, &key).map_err(|_| decrypt_error("AES-256-GCM key"))?;
    Ok(Chunks {
        cipher: LessSafeKey::new(key),
        prefix,
    })
}

/// The chunk cipher of one stream: AES-256-GCM (ring's, which uses the
/// CPU's AES and carry-less multiply instructions, wide ones where present).
struct Chunks {
    cipher: LessSafeKey,
    prefix: [u8; NONCE_PREFIX_LEN],
}

impl Chunks {
    /// Each (index, last) pair is used once per stream: the STREAM nonce.
    fn nonce(&self, index: u32, last: bool) -> Nonce {
        let mut n = [0u8; 12];
        n[..NONCE_PREFIX_LEN].copy_from_slice(&self.prefix);
        n[NONCE_PREFIX_LEN..11].copy_from_slice(&index.to_be_bytes());
        n[11] = u8::from(last);
        Nonce::assume_unique_for_key(n)
    }
}

/// The provider's side of a stream.
pub struct Sealer {
    chunks: Chunks,
    aad: Digest,
}

impl Sealer {
    /// A new stream to `recipient` for the request with digest `request`;
    /// send the returned encapsulated key before the chunks.
    pub fn new(recipient: &EncryptionPublicKey, request: &Digest) -> Result<(Sealer, EncappedKey)> {
        let pk = <Kem as hpke::Kem>::PublicKey::from_bytes(recipient.as_bytes())
            .map_err(|e| decrypt_error(format!("recipient key: {e:?}")))?;
        let mut rng = rand_core::UnwrapErr(rand_core::OsRng);
        let (enc, ctx) =
            hpke::setup_sender::<AesGcm256, HkdfSha256, Kem, _>(&OpModeS::Base, &pk, &info(request), &mut rng)
                .map_err(|e| decrypt_error(format!("HPKE setup: {e:?}")))?;
        let chunks = stream_keys(|label, out| ctx.export(label, out))?;
        let mut encapped = [0u8; 32];
        encapped.copy_from_slice(&enc.to_bytes());
        Ok((Sealer { chunks, aad: *request }, encapped))
    }

    /// Seals chunk `index`; `last` for the stream's final chunk (which may be
    /// shorter, or empty for an empty payload).
    pub fn seal(&self, index: u32, last: bool, chunk: &[u8]) -> Result<Vec<u8>> {
        let mut out = Vec::with_capacity(chunk.len() + TAG_LEN);
        out.extend_from_slice(chunk);
        let tag = self.seal_in_place(index, last, &mut out)?;
        out.extend_from_slice(&tag);
        Ok(out)
    }

    /// Seals `chunk` where it lies; answers the tag that follows it on the wire.
    pub fn seal_in_place(&self, index: u32, last: bool, chunk: &mut [u8]) -> Result<[u8; TAG_LEN]> {
        let tag = self
            .chunks
            .cipher
            .seal_in_place_separate_tag(self.chunks.nonce(index, last), Aad::from(self.aad.as_bytes()), chunk)
            .map_err(|_| decrypt_error("AES-GCM refused to seal"))?;
        let mut out = [0u8; TAG_LEN];
        out.copy_from_slice(tag.as_ref());
        Ok(out)
    }
}

/// The consumer's side of a stream.
pub struct Opener {
    chunks: Chunks,
    aad: Digest,
}

impl Opener {
    /// Opens the stream whose encapsulated key is `encapped`, for the request
    /// with digest `request`, with the consumer's own keys.
    pub fn new(keys: &EncryptionKeyPair, encapped: &EncappedKey, request: &Digest) -> Result<Opener> {
        let sk = <Kem as hpke::Kem>::PrivateKey::from_bytes(&keys.secret_bytes())
            .map_err(|e| decrypt_error(format!("own key: {e:?}")))?;
        let enc = <Kem as hpke::Kem>::EncappedKey::from_bytes(encapped)
            .map_err(|e| decrypt_error(format!("encapsulated key: {e:?}")))?;
        let ctx = hpke::setup_receiver::<AesGcm256, HkdfSha256, Kem>(&OpModeR::Base, &sk, &enc, &info(request))
            .map_err(|e| decrypt_error(format!("HPKE setup: {e:?}")))?;
        let chunks = stream_keys(|label, out| ctx.export(label, out))?;
        Ok(Opener { chunks, aad: *request })
    }

    /// Opens chunk `index`, expected to be the last one or not: any other
    /// position, stream, request or altered byte fails.
    pub fn open(&self, index: u32, last: bool, sealed: &[u8]) -> Result<Vec<u8>> {
        let mut out = sealed.to_vec();
        let n = self.open_in_place(index, last, &mut out)?;
        out.truncate(n);
        Ok(out)
    }

    /// Opens `sealed` (ciphertext then tag) where it lies; answers the
    /// plaintext's length (the plaintext is `sealed[..len]`).
    pub fn open_in_place(&self, index: u32, last: bool, sealed: &mut [u8]) -> Result<usize> {
        self.chunks
            .cipher
            .open_in_place(self.chunks.nonce(index, last), Aad::from(self.aad.as_bytes()), sealed)
            .map(|plain| plain.len())
            .map_err(|_| {
                decrypt_error(format!(
                    "chunk {index}{} does not open: altered, out of place, or from another delivery",
                    if last { " (as the last)" } else { "" }
                ))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sha256;
    use hpke::rand_core::{CryptoRng, RngCore};
    use hpke::Kem as _;

    /// Hands out fixed bytes: the test vector's ephemeral key material.
    struct FixedRng(Vec<u8>);

    impl RngCore for FixedRng {
        fn next_u32(&mut self) -> u32 {
            let mut b = [0u8; 4];
            self.fill_bytes(&mut b);
            u32::from_le_bytes(b)
        }
        fn next_u64(&mut self) -> u64 {
            let mut b = [0u8; 8];
            self.fill_bytes(&mut b);
            u64::from_le_bytes(b)
        }
        fn fill_bytes(&mut self, dst: &mut [u8]) {
            assert!(dst.len() <= self.0.len(), "the fixed bytes are spent");
            let rest = self.0.split_off(dst.len());
            dst.copy_from_slice(&self.0);
            self.0 = rest;
        }
    }

    impl CryptoRng for FixedRng {}

    fn h(s: &str) -> Vec<u8> {
        hex::decode(s).expect("hex")
    }

    /// The CFRG test vector for mode 0, DHKEM(X25519, HKDF-SHA256),
    /// HKDF-SHA256, AES-256-GCM (RFC 9180's test-vectors.json).
    #[test]
    fn rfc9180_vector_for_our_suite() {
        let info = h("4f6465206f6e2061204772656369616e2055726e");
        let (sk_r, pk_r) = Kem::derive_keypair(&h("dac33b0e9db1b59dbbea58d59a14e7b5896e9bdf98fad6891e99d1686492b9ee"));
        assert_eq!(
            pk_r.to_bytes().as_slice(),
            h("430f4b9859665145a6b1ba274024487bd66f03a2dd577d7753c68d7d7d00c00c")
        );
        assert_eq!(
            sk_r.to_bytes().as_slice(),
            h("497b4502664cfea5d5af0b39934dac72242a74f8480451e1aee7d6a53320333d")
        );
        let mut rng = FixedRng(h("2cd7c601cefb3d42a62b04b7a9041494c06c7843818e0ce28a8f704ae7ab20f9"));
        let (enc, mut sender) =
            hpke::setup_sender::<AesGcm256, HkdfSha256, Kem, _>(&OpModeS::Base, &pk_r, &info, &mut rng).expect("setup");
        assert_eq!(
            enc.to_bytes().as_slice(),
            h("6c93e09869df3402d7bf231bf540fadd35cd56be14f97178f0954db94b7fc256")
        );
        let pt = h("4265617574792069732074727574682c20747275746820626561757479");
        let ct0 = h("e5d84cd531cfb583096e7cfa9641bd3079cf3a91cda813c52deb5f512be9931980a41de125a925cdad859d5b7a");
        let ct1 = h("2c43aff25343fdbff864506f0818b9d87df84ea01b1a2144d23b4d40c26bf655fdf197fe40297a8aebeed5cc2d");
        assert_eq!(sender.seal(&pt, &h("436f756e742d30")).expect("seal"), ct0);
        assert_eq!(sender.seal(&pt, &h("436f756e742d31")).expect("seal"), ct1);
        // The receiver from the serialized private key, as liutong stores it.
        let sk = <Kem as hpke::Kem>::PrivateKey::from_bytes(&h(
            "497b4502664cfea5d5af0b39934dac72242a74f8480451e1aee7d6a53320333d",
        ))
        .expect("key");
        let enc = <Kem as hpke::Kem>::EncappedKey::from_bytes(&enc.to_bytes()).expect("enc");
        let mut receiver =
            hpke::setup_receiver::<AesGcm256, HkdfSha256, Kem>(&OpModeR::Base, &sk, &enc, &info).expect("setup");
        assert_eq!(receiver.open(&ct0, &h("436f756e742d30")).expect("opens"), pt);
        for (context, value) in [
            ("", "ded6cffafaea6b812cbf3e241e88332adbc077aca81512914213810ee291770a"),
            ("00", "04d3cb6cc116b28ffd22ad5bc276c60d31fec71ceb87ae24db811c64b7507339"),
            (
                "54657374436f6e74657874",
                "7c5ded445732c14fe09727d29b4251c0fd38455fe8440571e687f0886aac94d2",
            ),
        ] {
            let mut out = [0u8; 32];
            receiver.export(&h(context), &mut out).expect("export");
            assert_eq!(out.as_slice(), h(value));
        }
    }

    fn stream(payload: &[&[u8]], request: &Digest, to: &EncryptionKeyPair) -> (EncappedKey, Vec<Vec<u8>>) {
        let (sealer, enc) = Sealer::new(&to.public_key(), request).expect("sealer");
        let n = payload.len();
        let sealed = payload
            .iter()
            .enumerate()
            .map(|(i, c)| sealer.seal(i as u32, i + 1 == n, c).expect("seals"))
            .collect();
        (enc, sealed)
    }

    #[test]
    fn chunks_open_only_in_place_for_their_request_and_key() {
        let consumer = EncryptionKeyPair::generate();
        let request = sha256(b"request 1");
        let payload: [&[u8]; 3] = [b"first chunk.", b"second chunk", b"end"];
        let (enc, sealed) = stream(&payload, &request, &consumer);
        assert_eq!(sealed[0].len(), payload[0].len() + TAG_LEN);
        let opener = Opener::new(&consumer, &enc, &request).expect("opener");
        for (i, s) in sealed.iter().enumerate() {
            assert_eq!(opener.open(i as u32, i == 2, s).expect("opens"), payload[i]);
        }
        let refused = |r: Result<Vec<u8>>| {
            let e = r.expect_err("must not open");
            assert_eq!(e.code(), "crypto.decrypt");
        };
        // Reordering and duplication: a chunk at another index.
        refused(opener.open(2, false, &sealed[1]));
        refused(opener.open(0, false, &sealed[1]));
        // Truncation: the stream cut after chunk 1, which was not sealed as last.
        refused(opener.open(1, true, &sealed[1]));
        // Extension: the last chunk read as if more followed.
        refused(opener.open(2, false, &sealed[2]));
        // An altered byte.
        let mut bad = sealed[0].clone();
        bad[3] ^= 1;
        refused(opener.open(0, false, &bad));
        // Splicing: a chunk from another delivery of the same request.
        let (_, other) = stream(&payload, &request, &consumer);
        refused(opener.open(1, false, &other[1]));
        // Replay under another request, and the wrong recipient.
        let elsewhere = Opener::new(&consumer, &enc, &sha256(b"request 2")).expect("opener");
        refused(elsewhere.open(0, false, &sealed[0]));
        let stranger = Opener::new(&EncryptionKeyPair::generate(), &enc, &request).expect("opener");
        refused(stranger.open(0, false, &sealed[0]));
    }

    #[test]
    fn an_empty_payload_is_one_empty_last_chunk() {
        let consumer = EncryptionKeyPair::generate();
        let request = sha256(b"empty");
        let (enc, sealed) = stream(&[b""], &request, &consumer);
        let opener = Opener::new(&consumer, &enc, &request).expect("opener");
        assert_eq!(opener.open(0, true, &sealed[0]).expect("opens"), b"");
    }

    /// The chunks are plain AES-256-GCM: RustCrypto's implementation opens
    /// what ring sealed, with the STREAM nonce and the request as AAD.
    #[test]
    fn chunks_are_standard_aes_256_gcm() {
        use aes_gcm::aead::{Aead, KeyInit, Payload};
        let consumer = EncryptionKeyPair::generate();
        let request = sha256(b"interop");
        let (sealer, enc) = Sealer::new(&consumer.public_key(), &request).expect("sealer");
        let sealed = sealer.seal(7, true, b"interoperable chunk").expect("seals");
        // The same key and prefix, exported from the receiver's HPKE context.
        let sk = <Kem as hpke::Kem>::PrivateKey::from_bytes(&consumer.secret_bytes()).expect("key");
        let encapped = <Kem as hpke::Kem>::EncappedKey::from_bytes(&enc).expect("enc");
        let ctx = hpke::setup_receiver::<AesGcm256, HkdfSha256, Kem>(&OpModeR::Base, &sk, &encapped, &info(&request))
            .expect("setup");
        let (mut key, mut prefix) = ([0u8; 32], [0u8; NONCE_PREFIX_LEN]);
        ctx.export(&[STREAM_SUITE, b" key"].concat(), &mut key).expect("key");
        ctx.export(&[STREAM_SUITE, b" nonce"].concat(), &mut prefix)
            .expect("nonce");
        let mut nonce = [0u8; 12];
        nonce[..7].copy_from_slice(&prefix);
        nonce[7..11].copy_from_slice(&7u32.to_be_bytes());
        nonce[11] = 1;
        let plain = aes_gcm::Aes256Gcm::new(&key.into())
            .decrypt(
                aes_gcm::Nonce::from_slice(&nonce),
                Payload {
                    msg: &sealed,
                    aad: request.as_bytes(),
                },
            )
            .expect("RustCrypto opens it");
        assert_eq!(plain, b"interoperable chunk");
    }
}
