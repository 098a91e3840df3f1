//! The signed transaction envelope. The ledger checks the envelope (size,
//! encoding, chain id, clock, signature, nonce); what the body means is the
//! state machine's business.

use crate::{Error, Result};
use borsh::{BorshDeserialize, BorshSerialize};
use liutong_core::{sha256, Canonical, Digest, PublicKey, Signature, SigningKey, Timestamp};

/// Domain separator prefixed to the canonical bytes a transaction signature covers.
pub const TX_SIGNING_DOMAIN: &[u8] = b"liutong/tx/v1\0";

/// The signed part of a transaction.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Transaction {
    pub chain_id: String,
    /// What the body is, e.g. `notary.notarize`; interpreted by the state machine only.
    pub kind: String,
    /// The kind's canonical (borsh) body.
    pub body: Vec<u8>,
    pub signer: PublicKey,
    /// Unique per signer; a (signer, nonce) pair is accepted once.
    pub nonce: u64,
    pub timestamp: Timestamp,
}

impl Canonical for Transaction {
    const WHAT: &'static str = "transaction";
}

impl Transaction {
    pub fn signing_bytes(&self) -> Vec<u8> {
        let mut bytes = TX_SIGNING_DOMAIN.to_vec();
        bytes.extend(self.canonical_bytes());
        bytes
    }

    pub fn sign(self, key: &SigningKey) -> SignedTx {
        debug_assert_eq!(key.public_key(), self.signer, "signer field must name the signing key");
        let signature = key.sign(&self.signing_bytes());
        SignedTx { tx: self, signature }
    }
}

/// `{chain_id, kind, body, signer, nonce, timestamp, signature}`: its canonical
/// bytes are exactly what the Merkle log hashes as a leaf.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct SignedTx {
    pub tx: Transaction,
    pub signature: Signature,
}

impl Canonical for SignedTx {
    const WHAT: &'static str = "signed transaction";
}

/// A transaction id: SHA-256 of the signed transaction's canonical bytes.
pub type TxId = Digest;

impl SignedTx {
    pub fn id(&self) -> TxId {
        sha256(&self.canonical_bytes())
    }

    pub fn verify_signature(&self) -> Result<()> {
        self.tx
            .signer
            .verify(&self.tx.signing_bytes(), &self.signature)
            .map_err(|_| Error::BadSignature)
    }
}

/// A transaction that passed the stateless checks, with its exact bytes.
#[derive(Clone, Debug)]
pub struct CheckedTx {
    pub tx: SignedTx,
    pub bytes: Vec<u8>,
    pub id: TxId,
}

/// The envelope rules fixed by the genesis.
#[derive(Clone, Debug)]
pub struct EnvelopeRules {
    pub chain_id: String,
    pub max_tx_bytes: usize,
    pub max_clock_skew_ms: u64,
}

impl EnvelopeRules {
    /// Decodes and checks everything that needs no state: size, encoding, chain
    /// id, clock skew against `now`. Signatures are checked by [`check_batch`].
    pub fn decode(&self, bytes: Vec<u8>, now: Timestamp) -> Result<CheckedTx> {
        if bytes.len() > self.max_tx_bytes {
            return Err(Error::Oversize {
                size: bytes.len(),
                max: self.max_tx_bytes,
            });
        }
        let tx = SignedTx::from_canonical_bytes(&bytes).map_err(|e| Error::Malformed(e.to_string()))?;
        if tx.tx.chain_id != self.chain_id {
            return Err(Error::WrongChain {
                got: tx.tx.chain_id.clone(),
                expected: self.chain_id.clone(),
            });
        }
        let skew = tx.tx.timestamp.abs_diff(now);
        if skew > self.max_clock_skew_ms {
            return Err(if tx.tx.timestamp < now {
                Error::Stale {
                    skew_ms: skew,
                    max_ms: self.max_clock_skew_ms,
                }
            } else {
                Error::Future {
                    skew_ms: skew,
                    max_ms: self.max_clock_skew_ms,
                }
            });
        }
        let id = sha256(&bytes);
        Ok(CheckedTx { tx, bytes, id })
    }

    /// Decodes and checks a batch, verifying all signatures in parallel batches.
    pub fn check_batch(&self, raw: Vec<Vec<u8>>, now: Timestamp) -> Vec<Result<CheckedTx>> {
        self.check_each(raw.into_iter().map(|b| (b, now)).collect())
    }

    /// [`EnvelopeRules::check_batch`] for transactions received at different
    /// times: each is held to the clock it came with.
    pub fn check_each(&self, raw: Vec<(Vec<u8>, Timestamp)>) -> Vec<Result<CheckedTx>> {
        use rayon::prelude::*;
        let decoded: Vec<Result<CheckedTx>> = raw.into_par_iter().map(|(b, now)| self.decode(b, now)).collect();
        verify_signatures(decoded)
    }
}

/// Verifies the signatures of the decoded transactions in one parallel batch;
/// bad ones become `tx.bad_signature`, the rest pass through.
pub fn verify_signatures(decoded: Vec<Result<CheckedTx>>) -> Vec<Result<CheckedTx>> {
    let messages: Vec<Option<Vec<u8>>> = decoded
        .iter()
        .map(|d| d.as_ref().ok().map(|c| c.tx.tx.signing_bytes()))
        .collect();
    let items: Vec<liutong_core::VerifyItem> = decoded
        .iter()
        .zip(&messages)
        .filter_map(|(d, m)| match (d, m) {
            (Ok(c), Some(m)) => Some(liutong_core::VerifyItem {
                key: c.tx.tx.signer,
                signature: c.tx.signature,
                message: m,
            }),
            _ => None,
        })
        .collect();
    let mut verdicts = liutong_core::verify_batch(&items).into_iter();
    decoded
        .into_iter()
        .map(|d| {
            let c = d?;
            if verdicts.next().expect("one verdict per decoded transaction") {
                Ok(c)
            } else {
                Err(Error::BadSignature)
            }
        })
        .collect()
}
