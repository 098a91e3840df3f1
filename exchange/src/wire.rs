//! The JSON shapes of the HTTP API, shared by the server and its client so
//! the two cannot drift apart. Binary values are lowercase hex; raw
//! transaction bytes are standard base64.

use crate::{Error, Result};
use liutong_core::{from_hex_array, to_hex, Digest, PublicKey, Signature, Timestamp};
use liutong_ledger::{BlockHeader, SignedHeader};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Every error the API returns.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    /// Stable machine-readable code, e.g. `tx.bad_signature`.
    pub code: String,
    /// What went wrong, for a human.
    pub message: String,
}

/// `POST /v1/txs`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SubmitTx {
    /// Base64 of the signed transaction's canonical (borsh) bytes.
    pub tx: String,
}

/// `POST /v1/txs/batch`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SubmitBatch {
    /// Base64 of each signed transaction's canonical bytes; answered in the same order.
    pub txs: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReceiptStatus {
    /// Durably committed in block `height` at log index `index`.
    Committed,
    /// Not committed: it would only repeat the existing record in `result`.
    Existing,
}

/// The answer to a submitted transaction, sent only once its block is durable.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct ReceiptView {
    pub tx_id: String,
    pub status: ReceiptStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub height: Option<u64>,
    /// The record the transaction created or found (a party, a notarization);
    /// left out of compact receipts (`?receipts=compact` on the batch endpoints).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub result: Option<liutong_ledger::RecordJson>,
}

/// How much a batch answer says about each transaction
/// (`?receipts=` on `/v1/txs/batch` and `/v1/txs/batch/raw`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReceiptDetail {
    /// Each receipt carries the record its transaction created or found.
    #[default]
    Full,
    /// Only the transaction id, status, log index and height: for gateways
    /// that submit in bulk and read records later, if at all. The node then
    /// never renders the records.
    Compact,
}

impl ReceiptView {
    /// The view of a receipt, with its record or (compact) without.
    pub fn of(r: liutong_ledger::Receipt, detail: ReceiptDetail) -> ReceiptView {
        let (status, index, height, result) = match r.outcome {
            liutong_ledger::TxOutcome::Committed { index, height, result } => {
                (ReceiptStatus::Committed, Some(index), Some(height), result)
            }
            liutong_ledger::TxOutcome::Existing { result } => (ReceiptStatus::Existing, None, None, result),
        };
        ReceiptView {
            tx_id: r.tx_id.to_string(),
            status,
            index,
            height,
            result: (detail == ReceiptDetail::Full).then(|| result.json()),
        }
    }

    /// The receipt's record, decoded; an error for a compact receipt or a
    /// record of another shape.
    pub fn record<T: serde::de::DeserializeOwned>(&self) -> Result<T> {
        let json = self
            .result
            .as_ref()
            .ok_or_else(|| Error::Io("the node's receipt holds no record".into()))?;
        serde_json::from_str(json.get()).map_err(|e| Error::Io(format!("the node's receipt holds no such record: {e}")))
    }

    pub fn into_receipt(self) -> Result<liutong_ledger::Receipt> {
        let tx_id: Digest = self.tx_id.parse()?;
        let Some(result) = self.result else {
            return Err(Error::BadRequest(
                "the receipt carries no record (a compact receipt)".into(),
            ));
        };
        let result = liutong_ledger::Record::from(result);
        let outcome = match (self.status, self.index, self.height) {
            (ReceiptStatus::Committed, Some(index), Some(height)) => {
                liutong_ledger::TxOutcome::Committed { index, height, result }
            }
            (ReceiptStatus::Existing, _, _) => liutong_ledger::TxOutcome::Existing { result },
            _ => {
                return Err(Error::BadRequest(
                    "a committed receipt must carry index and height".into(),
                ))
            }
        };
        Ok(liutong_ledger::Receipt { tx_id, outcome })
    }
}

/// One answer of a batch: a receipt or an error.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(untagged, try_from = "BatchItemFields")]
pub enum BatchItem {
    Receipt(ReceiptView),
    Error { error: ErrorBody },
}

/// The fields either kind of batch answer may have, read in one pass (an
/// untagged enum would buffer every item, and cannot hold a raw record).
#[derive(Deserialize)]
struct BatchItemFields {
    tx_id: Option<String>,
    status: Option<ReceiptStatus>,
    index: Option<u64>,
    height: Option<u64>,
    result: Option<liutong_ledger::RecordJson>,
    error: Option<ErrorBody>,
}

impl TryFrom<BatchItemFields> for BatchItem {
    type Error = String;
    fn try_from(f: BatchItemFields) -> std::result::Result<Self, String> {
        match (f.error, f.tx_id, f.status, f.result) {
            (Some(error), None, None, None) => Ok(BatchItem::Error { error }),
            (None, Some(tx_id), Some(status), result) => Ok(BatchItem::Receipt(ReceiptView {
                tx_id,
                status,
                index: f.index,
                height: f.height,
                result,
            })),
            _ => {
                Err("a batch answer is either a receipt (tx_id, status and, unless compact, result) or an error".into())
            }
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct BatchResults {
    pub results: Vec<BatchItem>,
}

/// A block header with the orderer's signature. Its canonical bytes (what is
/// signed, after the domain `liutong/header/v1\0`, and what the next header's
/// `prev_header_hash` hashes) are the borsh encoding of the fields in this
/// order: height u64, prev_header_hash [32], first_tx_index u64, tx_count u64,
/// log_size u64, log_root [32], timestamp u64, orderer [32].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HeaderJson {
    pub height: u64,
    pub prev_header_hash: String,
    pub first_tx_index: u64,
    pub tx_count: u64,
    pub log_size: u64,
    pub log_root: String,
    pub timestamp: Timestamp,
    pub orderer: String,
    pub signature: String,
}

impl From<&SignedHeader> for HeaderJson {
    fn from(s: &SignedHeader) -> Self {
        let h = &s.header;
        HeaderJson {
            height: h.height,
            prev_header_hash: h.prev_header_hash.to_string(),
            first_tx_index: h.first_tx_index,
            tx_count: h.tx_count,
            log_size: h.log_size,
            log_root: h.log_root.to_string(),
            timestamp: h.timestamp,
            orderer: h.orderer.to_string(),
            signature: s.signature.to_string(),
        }
    }
}

impl TryFrom<&HeaderJson> for SignedHeader {
    type Error = Error;
    fn try_from(j: &HeaderJson) -> Result<SignedHeader> {
        Ok(SignedHeader {
            header: BlockHeader {
                height: j.height,
                prev_header_hash: j.prev_header_hash.parse()?,
                first_tx_index: j.first_tx_index,
                tx_count: j.tx_count,
                log_size: j.log_size,
                log_root: j.log_root.parse()?,
                timestamp: j.timestamp,
                orderer: j.orderer.parse::<PublicKey>()?,
            },
            signature: j.signature.parse::<Signature>()?,
        })
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct StatusView {
    pub chain_id: String,
    pub genesis_digest: String,
    /// `orderer` or `follower`.
    pub role: String,
    pub height: u64,
    pub log_size: u64,
    pub log_root: String,
    /// The orderer's block-signing key.
    pub orderer_key: String,
    /// The orderer this node follows (followers only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub following: Option<String>,
    pub version: String,
}

/// A committed transaction.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct TxView {
    pub id: String,
    pub index: u64,
    pub height: u64,
    pub chain_id: String,
    pub kind: String,
    pub signer: String,
    pub nonce: u64,
    pub timestamp: Timestamp,
    pub signature: String,
    /// The body decoded, for known kinds.
    #[schema(value_type = Object)]
    pub body: Option<serde_json::Value>,
    /// Hex of the exact canonical bytes hashed into the log.
    pub bytes: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct BlockView {
    pub header: HeaderJson,
    pub tx_ids: Vec<String>,
}

/// RFC 6962 / RFC 9162 §2.1.3 inclusion proof of a transaction against a signed header.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct InclusionProofView {
    pub tx_id: String,
    pub header: HeaderJson,
    pub leaf_index: u64,
    pub tree_size: u64,
    pub audit_path: Vec<String>,
    pub root: String,
    /// Hex of the transaction's canonical bytes (the leaf is SHA-256(0x00 ‖ bytes)).
    pub tx_bytes: String,
}

/// RFC 9162 §2.1.4 consistency proof between the logs of two signed headers.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct ConsistencyProofView {
    pub from: HeaderJson,
    pub to: HeaderJson,
    pub path: Vec<String>,
}

pub fn digests_to_hex(ds: &[Digest]) -> Vec<String> {
    ds.iter().map(|d| to_hex(d.as_bytes())).collect()
}

pub fn digests_from_hex(what: &'static str, items: &[String]) -> Result<Vec<Digest>> {
    items
        .iter()
        .map(|s| Ok(Digest(from_hex_array::<32>(what, s)?)))
        .collect()
}

/// Which party a signing key belongs to, and the transaction that bound it.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct KeyBindingView {
    pub public_key: String,
    pub party: String,
    /// False once the party rotated to another key.
    pub current: bool,
    /// The registration or rotation transaction; absent for the genesis operator's key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bound_by: Option<String>,
}
