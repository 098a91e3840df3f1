//! Delivery requests: what a consumer signs to ask a provider's node for a
//! dataset (or for a query's result) under a grant, and the provider's
//! checks of it on its own copy of the ledger before anything is served.
//!
//! The request is borsh, signed with the consumer's Ed25519 key under its
//! own domain (`liutong/delivery-request/v1\0`), so it can never be taken
//! for a ledger transaction. Its digest (SHA-256 of the signed bytes) binds
//! the encrypted stream (HPKE `info` and the chunks' associated data), the
//! `grant.use` that counts it, the consumer's receipt and the access-log
//! entry.

use crate::grants::{GrantId, GrantRecord, GrantStatus};
use borsh::{BorshDeserialize, BorshSerialize};
use liutong_catalog::DatasetId;
use liutong_core::{decode_canonical, encode_canonical, sha256, Digest, PublicKey, Signature, SigningKey, Timestamp};
use liutong_policies::{evaluate, Action, Use};
use std::collections::{BTreeMap, HashSet};

pub const REQUEST_DOMAIN: &[u8] = b"liutong/delivery-request/v1\0";
/// Largest signed request a node reads.
pub const MAX_REQUEST: usize = 16 * 1024;

/// What a consumer asks for.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct DeliveryRequest {
    pub chain_id: String,
    pub grant: GrantId,
    pub dataset: DatasetId,
    pub version: u32,
    pub action: Action,
    /// Unique per consumer within the clock-skew window.
    pub nonce: u64,
    pub timestamp: Timestamp,
    /// Resume from this chunk (0 for a new transfer).
    pub from_chunk: u64,
    /// The digest of the first request of the delivery this one takes up
    /// after an interruption: that request's use was counted and its
    /// access-log entry is not written yet, so no second use is counted.
    /// `None` starts a new delivery (and counts a use).
    pub resumes: Option<Digest>,
    /// For a query: SHA-256 of the SQL text, which travels beside the
    /// signed request (so the ledger holds the query's digest, not its text).
    pub query: Option<Digest>,
    /// Private mode: what the proof claims (`grant` is then [`GrantId::PRIVATE`]
    /// and the signer a one-time key).
    pub private: Option<crate::private::PrivateClaim>,
}

impl SignedRequest {
    /// The delivery this request belongs to: its own digest, or the first
    /// request's when it resumes one.
    pub fn delivery(&self) -> Digest {
        self.request.resumes.unwrap_or_else(|| self.digest())
    }

    /// Checks the consumer's signature (the same ZIP-215 rule as the ledger).
    pub fn verify(&self) -> Result<(), Refusal> {
        self.signer
            .verify(&signing_bytes(&self.request), &self.signature)
            .map_err(|_| Refusal::new("delivery.bad_signature", "the request's signature does not verify"))
    }
}

pub const RECEIPT_DOMAIN: &[u8] = b"liutong/delivery-receipt/v1\0";

/// The consumer's verdict on a delivery.
#[derive(Clone, Copy, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[borsh(use_discriminant = true)]
pub enum Verdict {
    /// Every chunk opened and matched the commitment: `content` is its chunk root.
    Verified = 0,
    /// The provider's content did not match the commitment (`reason` says where).
    Refused = 1,
}

/// What the consumer signs after a delivery.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct DeliveryReceipt {
    /// The delivery: the digest of its first request.
    pub request: Digest,
    pub verdict: Verdict,
    /// The content's digest as the consumer verified it (its RFC 6962 chunk
    /// root); for a refusal, the chunk root the hash list it received claims.
    pub content: Digest,
    /// Plaintext bytes verified.
    pub bytes: u64,
    pub time: Timestamp,
    /// Why it was refused (empty when verified).
    pub reason: String,
}

#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct SignedReceipt {
    pub receipt: DeliveryReceipt,
    pub signer: PublicKey,
    pub signature: Signature,
}

/// Longest refusal reason in a receipt.
pub const MAX_RECEIPT_REASON: usize = 500;

impl SignedReceipt {
    pub fn sign(receipt: DeliveryReceipt, key: &SigningKey) -> SignedReceipt {
        let signature = key.sign(&[RECEIPT_DOMAIN, &encode_canonical(&receipt)].concat());
        SignedReceipt {
            receipt,
            signer: key.public_key(),
            signature,
        }
    }

    pub fn verify(&self) -> Result<(), Refusal> {
        self.signer
            .verify(
                &[RECEIPT_DOMAIN, &encode_canonical(&self.receipt)].concat(),
                &self.signature,
            )
            .map_err(|_| Refusal::new("receipt.bad_signature", "the receipt's signature does not verify"))
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        encode_canonical(self)
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<SignedReceipt, Refusal> {
        if bytes.len() > MAX_REQUEST {
            return Err(Refusal::new(
                "receipt.malformed",
                format!("a receipt is at most {MAX_REQUEST} bytes"),
            ));
        }
        decode_canonical("delivery receipt", bytes).map_err(|e| Refusal::new("receipt.malformed", e.to_string()))
    }
}

/// A request with the consumer's signing key and signature, and in private
/// mode the Groth16 proof (bound to [`SignedRequest::digest`]).
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct SignedRequest {
    pub request: DeliveryRequest,
    pub signer: PublicKey,
    pub signature: Signature,
    pub proof: Option<Vec<u8>>,
}

fn signing_bytes(request: &DeliveryRequest) -> Vec<u8> {
    [REQUEST_DOMAIN, &encode_canonical(request)].concat()
}

impl SignedRequest {
    pub fn sign(request: DeliveryRequest, key: &SigningKey) -> SignedRequest {
        let signature = key.sign(&signing_bytes(&request));
        SignedRequest {
            request,
            signer: key.public_key(),
            signature,
            proof: None,
        }
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        encode_canonical(self)
    }

    /// Decodes exactly (no trailing bytes) and checks the size.
    pub fn from_bytes(bytes: &[u8]) -> Result<SignedRequest, Refusal> {
        if bytes.len() > MAX_REQUEST {
            return Err(Refusal::new(
                "delivery.malformed",
                format!("a request is at most {MAX_REQUEST} bytes"),
            ));
        }
        decode_canonical("delivery request", bytes).map_err(|e| Refusal::new("delivery.malformed", e.to_string()))
    }

    /// SHA-256 of exactly what is signed (the domain and the request): the
    /// request's identity everywhere, and what a private request's proof is
    /// bound to. Nothing outside the signature enters it: neither the
    /// signature's own encoding nor the unsigned `proof` field, so a
    /// captured request cannot be replayed under another identity (a new
    /// proof bytes, a re-encoded signature) to count a second use.
    pub fn digest(&self) -> Digest {
        sha256(&signing_bytes(&self.request))
    }
}

/// The stream's first bytes after [`STREAM_MAGIC`]: borsh, in the clear
/// (it holds nothing secret), then sealed frames. Frame 0 is the chunk hash
/// list (32 bytes per chunk), so the receiver checks it against the
/// on-chain root before any content; frame `1 + i` is chunk `i`, from
/// `from_chunk` on; the last frame is sealed as last.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct DeliveryHeader {
    /// The digest of the request this stream answers.
    pub request: Digest,
    /// HPKE's encapsulated key for the consumer.
    pub encapped_key: [u8; 32],
    pub size: u64,
    pub chunk_size: u32,
    pub from_chunk: u64,
}

/// Marks a delivery stream and its format version.
pub const STREAM_MAGIC: &[u8; 4] = b"LTD1";
/// The provider signs each stream's header under this domain.
pub const STREAM_DOMAIN: &[u8] = b"liutong/delivery-stream/v1\0";

/// The header with the provider's signature (its current registered key)
/// over `STREAM_DOMAIN ‖ borsh(header)`. HPKE's base mode does not
/// authenticate the sender; the signature over the encapsulated key does,
/// so nobody but the provider can make a stream the consumer will open (and
/// perhaps refuse, with a signed receipt, against the provider).
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct SignedHeader {
    pub header: DeliveryHeader,
    pub signature: Signature,
}

impl SignedHeader {
    pub fn sign(header: DeliveryHeader, key: &SigningKey) -> SignedHeader {
        let signature = key.sign(&[STREAM_DOMAIN, &encode_canonical(&header)].concat());
        SignedHeader { header, signature }
    }

    pub fn verify(&self, provider: &PublicKey) -> Result<(), Refusal> {
        provider
            .verify(
                &[STREAM_DOMAIN, &encode_canonical(&self.header)].concat(),
                &self.signature,
            )
            .map_err(|_| {
                Refusal::new(
                    "delivery.bad_stream_signature",
                    "the stream is not signed by the provider's registered key",
                )
            })
    }
}

/// One frame on the wire: its length (u32, big-endian), then its bytes.
pub fn frame(sealed: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + sealed.len());
    out.extend_from_slice(&(sealed.len() as u32).to_be_bytes());
    out.extend_from_slice(sealed);
    out
}

/// Splits a received byte stream into the header and frames, as bytes
/// arrive, holding at most one frame; a frame longer than `max_frame` (a
/// chunk or the hash list, plus the tag) is refused before it is buffered.
pub struct FrameReader {
    buf: Vec<u8>,
    /// Where the unread bytes start in `buf`.
    start: usize,
    header: Option<SignedHeader>,
    max_frame: usize,
}

impl FrameReader {
    pub fn new(max_frame: usize) -> FrameReader {
        FrameReader {
            buf: Vec::new(),
            start: 0,
            header: None,
            max_frame,
        }
    }

    /// Adds received bytes. One buffer serves the whole stream: read bytes
    /// are dropped from its front only when the new ones would not fit, so
    /// it settles at about a frame and a network read.
    pub fn push(&mut self, bytes: &[u8]) {
        if self.start > 0 && self.buf.len() + bytes.len() > self.buf.capacity() {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    fn unread(&self) -> &[u8] {
        &self.buf[self.start..]
    }

    /// The signed header, once its bytes have arrived.
    pub fn header(&mut self) -> Result<Option<&SignedHeader>, Refusal> {
        const LEN: usize = 4 + 32 + 32 + 8 + 4 + 8 + 64;
        if self.header.is_none() {
            let unread = self.unread();
            if unread.len() < LEN {
                return Ok(None);
            }
            if &unread[..4] != STREAM_MAGIC {
                return Err(Refusal::new("delivery.malformed", "not a liutong delivery stream"));
            }
            let h: SignedHeader = decode_canonical("delivery header", &unread[4..LEN])
                .map_err(|e| Refusal::new("delivery.malformed", e.to_string()))?;
            self.start += LEN;
            self.header = Some(h);
        }
        Ok(self.header.as_ref())
    }

    /// Copies the next whole frame, if it has arrived, into `out` (cleared
    /// first, so a caller can hand in the same buffer again and again).
    pub fn next_frame_into(&mut self, out: &mut Vec<u8>) -> Result<bool, Refusal> {
        let unread = self.unread();
        if self.header.is_none() || unread.len() < 4 {
            return Ok(false);
        }
        let len = u32::from_be_bytes([unread[0], unread[1], unread[2], unread[3]]) as usize;
        if len > self.max_frame {
            return Err(Refusal::new(
                "delivery.malformed",
                format!("a frame of {len} bytes is larger than any chunk ({})", self.max_frame),
            ));
        }
        if unread.len() < 4 + len {
            return Ok(false);
        }
        out.clear();
        out.extend_from_slice(&unread[4..4 + len]);
        self.start += 4 + len;
        if self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        }
        Ok(true)
    }

    /// The next whole frame, if it has arrived.
    pub fn next_frame(&mut self) -> Result<Option<Vec<u8>>, Refusal> {
        let mut out = Vec::new();
        Ok(self.next_frame_into(&mut out)?.then_some(out))
    }

    /// Bytes received but not yet a whole frame (at the end of the stream:
    /// a cut frame).
    pub fn pending(&self) -> usize {
        self.buf.len() - self.start
    }
}

/// Why a provider will not serve a request, with a stable code.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Refusal {
    pub code: &'static str,
    pub message: String,
}

impl Refusal {
    pub fn new(code: &'static str, message: impl Into<String>) -> Refusal {
        Refusal {
            code,
            message: message.into(),
        }
    }
}

/// Nonces seen within the clock-skew window, per signer. A request older
/// than the window is refused as stale, so forgetting older nonces lets no
/// replay through.
#[derive(Default)]
pub struct NonceWindow {
    skew_ms: u64,
    /// Expiry time → the (signer, nonce) pairs that expire then.
    by_expiry: BTreeMap<Timestamp, Vec<(PublicKey, u64)>>,
    seen: HashSet<(PublicKey, u64)>,
}

impl NonceWindow {
    pub fn new(skew_ms: u64) -> NonceWindow {
        NonceWindow {
            skew_ms,
            ..Default::default()
        }
    }

    /// Accepts a fresh `(signer, nonce)` stamped `timestamp`, at `now`.
    pub fn admit(
        &mut self,
        signer: PublicKey,
        nonce: u64,
        timestamp: Timestamp,
        now: Timestamp,
    ) -> Result<(), Refusal> {
        if timestamp.abs_diff(now) > self.skew_ms {
            return Err(Refusal::new(
                "delivery.stale",
                format!(
                    "the request is stamped {timestamp}, more than {} ms from this node's clock ({now})",
                    self.skew_ms
                ),
            ));
        }
        // Forget what can no longer be replayed.
        let keep = self.by_expiry.split_off(&now);
        for (_, pairs) in std::mem::replace(&mut self.by_expiry, keep) {
            for p in pairs {
                self.seen.remove(&p);
            }
        }
        if !self.seen.insert((signer, nonce)) {
            return Err(Refusal::new(
                "delivery.replayed",
                format!("nonce {nonce} was already used by this consumer"),
            ));
        }
        self.by_expiry
            .entry(timestamp + self.skew_ms + 1)
            .or_default()
            .push((signer, nonce));
        Ok(())
    }
}

/// The provider's checks of a signed request against its own copy of the
/// ledger: `grant` as stored, `holder_key` whether the signer is the
/// current key of the grant's holder, `versions` how many versions the
/// dataset has. The nonce is checked separately ([`NonceWindow`]).
pub fn authorize(
    signed: &SignedRequest,
    chain_id: &str,
    grant: &GrantRecord,
    holder_key: bool,
    versions: u32,
    now: Timestamp,
) -> Result<(), Refusal> {
    let r = &signed.request;
    signed.verify()?;
    if r.chain_id != chain_id {
        return Err(Refusal::new(
            "delivery.wrong_chain",
            format!("the request is for chain {:?}, this is {chain_id:?}", r.chain_id),
        ));
    }
    if !holder_key {
        return Err(Refusal::new(
            "delivery.not_holder",
            format!(
                "the request is not signed by the current key of grant {}'s holder {}",
                grant.id, grant.holder
            ),
        ));
    }
    if r.dataset != grant.dataset {
        return Err(Refusal::new(
            "delivery.wrong_dataset",
            format!("grant {} is for dataset {}, not {}", grant.id, grant.dataset, r.dataset),
        ));
    }
    if r.version == 0 || r.version > versions {
        return Err(Refusal::new(
            "delivery.unknown_version",
            format!("dataset {} has versions 1 to {versions}", r.dataset),
        ));
    }
    if grant.status != GrantStatus::Active {
        return Err(Refusal::new(
            "use.not_active",
            format!("grant {} is {}", grant.id, grant.state_at(now)),
        ));
    }
    // A resumed delivery's use is already among the counted ones: the terms
    // are checked as when it was counted (window and action still apply now).
    let before = grant.uses.saturating_sub(u64::from(r.resumes.is_some()));
    evaluate(&grant.terms, &Use { action: r.action }, now, before).map_err(|d| Refusal::new(d.code, d.message))
}

#[cfg(test)]
mod tests {
    use super::*;
    use liutong_core::CreditCode;
    use liutong_policies::Terms;

    const NOW: Timestamp = 1_790_000_000_000;

    fn grant() -> GrantRecord {
        GrantRecord {
            id: GrantId([7; 16]),
            dataset: DatasetId([1; 16]),
            offer: 1,
            provider: CreditCode::with_check_character("91310000MA0000001").expect("code"),
            holder: CreditCode::with_check_character("91310000MA0000002").expect("code"),
            status: GrantStatus::Active,
            terms: Terms {
                purposes: vec!["audit".into()],
                not_before: NOW - 1_000,
                not_after: Some(NOW + 1_000_000),
                max_uses: Some(2),
                actions: vec![Action::Download],
                columns: None,
                row_filter: None,
                masks: vec![],
                min_group_size: None,
                row_cap: None,
                transferable: false,
            },
            filters: liutong_policies::RowFilters::default(),
            uses: 0,
            history: vec![],
            private: None,
        }
    }

    fn request(key: &SigningKey) -> SignedRequest {
        SignedRequest::sign(
            DeliveryRequest {
                chain_id: "c".into(),
                grant: GrantId([7; 16]),
                dataset: DatasetId([1; 16]),
                version: 1,
                action: Action::Download,
                nonce: 9,
                timestamp: NOW,
                from_chunk: 0,
                resumes: None,
                query: None,
                private: None,
            },
            key,
        )
    }

    #[test]
    fn a_good_request_passes_and_round_trips() {
        let key = SigningKey::generate();
        let r = request(&key);
        assert_eq!(SignedRequest::from_bytes(&r.to_bytes()).expect("decodes"), r);
        assert_eq!(
            r.digest(),
            sha256(&[REQUEST_DOMAIN, &encode_canonical(&r.request)].concat())
        );
        // The unsigned parts do not change a request's identity.
        let mut with_proof = r.clone();
        with_proof.proof = Some(vec![1, 2, 3]);
        assert_eq!(with_proof.digest(), r.digest());
        authorize(&r, "c", &grant(), true, 1, NOW).expect("authorized");
    }

    #[test]
    fn each_refusal_has_its_code() {
        let key = SigningKey::generate();
        let code = |r: &SignedRequest, g: &GrantRecord, holder: bool, versions: u32| {
            authorize(r, "c", g, holder, versions, NOW).expect_err("refused").code
        };
        let good = request(&key);
        let mut forged = good.clone();
        forged.request.from_chunk = 5;
        assert_eq!(code(&forged, &grant(), true, 1), "delivery.bad_signature");
        let mut other_chain = good.request.clone();
        other_chain.chain_id = "d".into();
        assert_eq!(
            code(&SignedRequest::sign(other_chain, &key), &grant(), true, 1),
            "delivery.wrong_chain"
        );
        assert_eq!(code(&good, &grant(), false, 1), "delivery.not_holder");
        let mut elsewhere = good.request.clone();
        elsewhere.dataset = DatasetId([2; 16]);
        assert_eq!(
            code(&SignedRequest::sign(elsewhere, &key), &grant(), true, 1),
            "delivery.wrong_dataset"
        );
        assert_eq!(code(&good, &grant(), true, 0), "delivery.unknown_version");
        let revoked = GrantRecord {
            status: GrantStatus::Revoked,
            ..grant()
        };
        assert_eq!(code(&good, &revoked, true, 1), "use.not_active");
        let spent = GrantRecord { uses: 2, ..grant() };
        assert_eq!(code(&good, &spent, true, 1), "use.exhausted");
        let mut late = grant();
        late.terms.not_after = Some(NOW);
        assert_eq!(code(&good, &late, true, 1), "use.expired");
        let mut query = good.request.clone();
        query.action = Action::Query;
        assert_eq!(
            code(&SignedRequest::sign(query, &key), &grant(), true, 1),
            "use.action_not_allowed"
        );
        let mut junk = good.to_bytes();
        junk.push(0);
        assert_eq!(
            SignedRequest::from_bytes(&junk).expect_err("trailing").code,
            "delivery.malformed"
        );
    }

    #[test]
    fn frames_arrive_in_any_pieces_and_oversize_ones_are_refused() {
        let header = DeliveryHeader {
            request: sha256(b"r"),
            encapped_key: [5; 32],
            size: 10,
            chunk_size: 4096,
            from_chunk: 0,
        };
        let header = SignedHeader::sign(header, &SigningKey::generate());
        let mut wire = STREAM_MAGIC.to_vec();
        wire.extend(encode_canonical(&header));
        wire.extend(frame(b"hash list"));
        wire.extend(frame(b"chunk zero"));
        wire.extend(frame(b""));
        for piece in [1, 3, 7, wire.len()] {
            let mut r = FrameReader::new(64);
            let mut frames = Vec::new();
            for bytes in wire.chunks(piece) {
                r.push(bytes);
                if r.header().expect("header").is_none() {
                    continue;
                }
                while let Some(f) = r.next_frame().expect("frame") {
                    frames.push(f);
                }
            }
            assert_eq!(r.header().expect("header"), Some(&header));
            assert_eq!(frames, vec![b"hash list".to_vec(), b"chunk zero".to_vec(), vec![]]);
            assert_eq!(r.pending(), 0);
        }
        let mut r = FrameReader::new(4);
        r.push(&wire);
        r.header().expect("header");
        assert_eq!(r.next_frame().expect_err("too big").code, "delivery.malformed");
        let mut r = FrameReader::new(64);
        r.push(&[b'X'; 200]);
        assert_eq!(r.header().expect_err("not ours").code, "delivery.malformed");
        // A cut frame stays pending.
        let mut r = FrameReader::new(64);
        r.push(&wire[..wire.len() - 12]);
        r.header().expect("header");
        while r.next_frame().expect("frame").is_some() {}
        assert!(r.pending() > 0);
    }

    #[test]
    fn nonces_are_single_use_within_the_window() {
        let key = SigningKey::generate().public_key();
        let mut w = NonceWindow::new(1_000);
        w.admit(key, 1, NOW, NOW).expect("fresh");
        assert_eq!(
            w.admit(key, 1, NOW, NOW + 10).expect_err("replay").code,
            "delivery.replayed"
        );
        w.admit(key, 2, NOW, NOW + 10).expect("another nonce");
        // Past the window the old request is stale, so its nonce may be forgotten.
        assert_eq!(
            w.admit(key, 1, NOW, NOW + 5_000).expect_err("stale").code,
            "delivery.stale"
        );
        w.admit(key, 3, NOW + 5_000, NOW + 5_000).expect("fresh");
        assert_eq!(w.seen.len(), 1, "expired nonces are forgotten");
    }
}
