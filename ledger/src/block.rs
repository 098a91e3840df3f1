//! Blocks: a signed header over a contiguous range of the log.

use crate::{Error, Result};
use borsh::{BorshDeserialize, BorshSerialize};
use liutong_core::{sha256, Canonical, Digest, PublicKey, Signature, SigningKey, Timestamp};
use serde::{Deserialize, Serialize};

pub const HEADER_SIGNING_DOMAIN: &[u8] = b"liutong/header/v1\0";

/// `{height, prev_header_hash, first_tx_index, tx_count, log_size, log_root, timestamp, orderer}`.
/// Height 1 is the first block; its `prev_header_hash` is the genesis digest.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct BlockHeader {
    pub height: u64,
    pub prev_header_hash: Digest,
    pub first_tx_index: u64,
    pub tx_count: u64,
    /// Number of leaves in the log after this block (= first_tx_index + tx_count).
    pub log_size: u64,
    /// RFC 6962 MTH over the first `log_size` transactions.
    pub log_root: Digest,
    pub timestamp: Timestamp,
    pub orderer: PublicKey,
}

impl Canonical for BlockHeader {
    const WHAT: &'static str = "block header";
}

impl BlockHeader {
    /// The hash the next header links to: SHA-256 of this header's canonical bytes.
    pub fn hash(&self) -> Digest {
        sha256(&self.canonical_bytes())
    }
    pub fn signing_bytes(&self) -> Vec<u8> {
        let mut b = HEADER_SIGNING_DOMAIN.to_vec();
        b.extend(self.canonical_bytes());
        b
    }
    pub fn sign(self, key: &SigningKey) -> SignedHeader {
        let signature = key.sign(&self.signing_bytes());
        SignedHeader {
            header: self,
            signature,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct SignedHeader {
    pub header: BlockHeader,
    pub signature: Signature,
}

impl Canonical for SignedHeader {
    const WHAT: &'static str = "signed block header";
}

impl SignedHeader {
    /// Checks the orderer's signature and that the header names the expected orderer.
    pub fn verify(&self, orderer: &PublicKey) -> Result<()> {
        if &self.header.orderer != orderer {
            return Err(Error::BadBlock(format!(
                "block {} names orderer {}, the genesis orderer is {}",
                self.header.height, self.header.orderer, orderer
            )));
        }
        orderer
            .verify(&self.header.signing_bytes(), &self.signature)
            .map_err(|_| {
                Error::BadBlock(format!(
                    "block {}: orderer signature does not verify",
                    self.header.height
                ))
            })
    }
}

/// A whole block as followers receive it: the signed header and the exact
/// canonical bytes of its transactions, in log order.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Block {
    pub header: SignedHeader,
    pub txs: Vec<Vec<u8>>,
}

impl Canonical for Block {
    const WHAT: &'static str = "block";
}

/// Ledger-level consortium parameters, fixed in the genesis.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LedgerParams {
    pub max_tx_bytes: u32,
    pub max_clock_skew_ms: u64,
    pub block_max_txs: u32,
    pub block_interval_ms: u32,
}

impl Default for LedgerParams {
    fn default() -> Self {
        LedgerParams {
            max_tx_bytes: 64 * 1024,
            max_clock_skew_ms: 5 * 60 * 1000,
            block_max_txs: 8192,
            block_interval_ms: 5,
        }
    }
}

/// What the ledger needs from the genesis: chain id, orderer key, parameters,
/// and the digest of the whole genesis document (which the application owns).
#[derive(Clone, Debug)]
pub struct LedgerGenesis {
    pub chain_id: String,
    pub orderer: PublicKey,
    pub params: LedgerParams,
    pub genesis_digest: Digest,
}
