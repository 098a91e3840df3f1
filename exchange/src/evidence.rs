//! Evidence bundles (`liutong-evidence/1`): everything needed to prove,
//! offline and with only the genesis document, that a transaction (a
//! notarization) is in the ledger, signed by whom, and which party that key
//! belongs to. The inclusion proofs are plain RFC 6962 / RFC 9162 proofs: any
//! independent verifier checks them with the header's `log_root`.

use crate::client::Client;
use crate::genesis::Genesis;
use crate::machine::{KIND_NOTARIZE, KIND_REGISTER, KIND_ROTATE_KEYS};
use crate::notary::Notarize;
use crate::party::{RegisterParty, RotateKeys};
use crate::wire::{digests_from_hex, HeaderJson, InclusionProofView};
use crate::{Error, Result};
use liutong_core::{from_hex_array, sha256, Canonical, Digest, PublicKey, Timestamp};
use liutong_ledger::merkle::{leaf_hash, verify_inclusion};
use liutong_ledger::{SignedHeader, SignedTx};
use serde::{Deserialize, Serialize};

pub const EVIDENCE_FORMAT: &str = "liutong-evidence/1";

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TxEvidence {
    /// SHA-256 of `bytes`.
    pub id: String,
    /// Hex of the exact canonical bytes hashed into the log.
    pub bytes: String,
}

/// RFC 9162 §2.1.3 inclusion proof.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProofEvidence {
    pub tree_size: u64,
    pub leaf_index: u64,
    pub audit_path: Vec<String>,
    pub root: String,
}

/// A transaction that bound a signing key to a party, with its own proof
/// against the same header.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyBindingEvidence {
    pub tx: TxEvidence,
    pub inclusion_proof: ProofEvidence,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvidenceBundle {
    pub format: String,
    pub genesis_digest: String,
    pub orderer_key: String,
    pub header: HeaderJson,
    pub tx: TxEvidence,
    pub inclusion_proof: ProofEvidence,
    /// From the signer's key back to the registration that named its party
    /// (registration, then any key rotations, newest last); empty when the
    /// signer is the genesis operator.
    #[serde(default)]
    pub key_bindings: Vec<KeyBindingEvidence>,
}

/// What a bundle proves.
#[derive(Clone, Debug, Serialize)]
pub struct VerifiedEvidence {
    pub chain_id: String,
    pub tx_id: Digest,
    pub kind: String,
    pub height: u64,
    /// The header's timestamp: the ledger held the transaction at least since then.
    pub header_timestamp: Timestamp,
    pub signer: PublicKey,
    /// The party the signer's key was registered to, and its declared name.
    pub party: String,
    pub party_name: String,
    /// For notarizations: the digest and metadata.
    pub digest: Option<Digest>,
    pub file_name: Option<String>,
    pub media_type: Option<String>,
    pub note: Option<String>,
}

fn proof_evidence(p: &InclusionProofView) -> ProofEvidence {
    ProofEvidence {
        tree_size: p.tree_size,
        leaf_index: p.leaf_index,
        audit_path: p.audit_path.clone(),
        root: p.root.clone(),
    }
}

/// Builds the bundle of transaction `tx_id` from a node, proven against its head.
pub async fn build_bundle(client: &Client, genesis: &Genesis, tx_id: &Digest) -> Result<EvidenceBundle> {
    let proof = client.inclusion_proof(tx_id, None).await?;
    let height = proof.header.height;
    let tx = SignedTx::from_canonical_bytes(&liutong_core::from_hex("tx bytes", &proof.tx_bytes)?)?;
    let mut key = tx.tx.signer;
    let mut key_bindings = Vec::new();
    while key != genesis.operator.signing_key {
        let binding = client.key_binding(&key).await?;
        let by: Digest = binding
            .bound_by
            .as_deref()
            .ok_or_else(|| Error::BadEvidence(format!("key {key} has no binding transaction")))?
            .parse()?;
        let p = client.inclusion_proof(&by, Some(height)).await?;
        let bound = SignedTx::from_canonical_bytes(&liutong_core::from_hex("tx bytes", &p.tx_bytes)?)?;
        key_bindings.push(KeyBindingEvidence {
            tx: TxEvidence {
                id: by.to_string(),
                bytes: p.tx_bytes.clone(),
            },
            inclusion_proof: proof_evidence(&p),
        });
        if bound.tx.kind == KIND_REGISTER {
            break;
        }
        if key_bindings.len() > 64 {
            return Err(Error::BadEvidence("key rotation chain is longer than 64".into()));
        }
        key = bound.tx.signer;
    }
    key_bindings.reverse();
    Ok(EvidenceBundle {
        format: EVIDENCE_FORMAT.into(),
        genesis_digest: genesis.digest().to_string(),
        orderer_key: genesis.orderer.to_string(),
        inclusion_proof: proof_evidence(&proof),
        header: proof.header,
        tx: TxEvidence {
            id: tx_id.to_string(),
            bytes: proof.tx_bytes,
        },
        key_bindings,
    })
}

fn bad(msg: impl Into<String>) -> Error {
    Error::BadEvidence(msg.into())
}

/// Checks one transaction's bytes, id, chain, signature and inclusion under `header`.
fn check_tx(
    what: &str,
    tx: &TxEvidence,
    proof: &ProofEvidence,
    header: &SignedHeader,
    genesis: &Genesis,
) -> Result<SignedTx> {
    let bytes = liutong_core::from_hex("tx bytes", &tx.bytes)?;
    let id = sha256(&bytes);
    if id != Digest(from_hex_array::<32>("tx id", &tx.id)?) {
        return Err(bad(format!(
            "{what}: id {} is not the SHA-256 of its bytes ({id})",
            tx.id
        )));
    }
    let signed = SignedTx::from_canonical_bytes(&bytes).map_err(|e| bad(format!("{what}: {e}")))?;
    if signed.tx.chain_id != genesis.chain_id {
        return Err(bad(format!(
            "{what}: is for chain {:?}, not {:?}",
            signed.tx.chain_id, genesis.chain_id
        )));
    }
    signed
        .verify_signature()
        .map_err(|_| bad(format!("{what}: the signer's signature does not verify")))?;
    let root = Digest(from_hex_array::<32>("root", &proof.root)?);
    if root != header.header.log_root || proof.tree_size != header.header.log_size {
        return Err(bad(format!(
            "{what}: the proof is not for the signed header's log (size and root must match)"
        )));
    }
    let path = digests_from_hex("audit path", &proof.audit_path)?;
    verify_inclusion(&leaf_hash(&bytes), proof.leaf_index, proof.tree_size, &path, &root)
        .map_err(|e| bad(format!("{what}: inclusion proof fails: {e}")))?;
    Ok(signed)
}

/// Verifies a bundle with nothing but the genesis document: no node, no network.
pub fn verify_bundle(bundle: &EvidenceBundle, genesis: &Genesis) -> Result<VerifiedEvidence> {
    if bundle.format != EVIDENCE_FORMAT {
        return Err(bad(format!(
            "format is {:?}, expected {EVIDENCE_FORMAT:?}",
            bundle.format
        )));
    }
    if Digest(from_hex_array::<32>("genesis digest", &bundle.genesis_digest)?) != genesis.digest() {
        return Err(bad(format!(
            "bundle is for genesis {}, the given genesis is {}",
            bundle.genesis_digest,
            genesis.digest()
        )));
    }
    if bundle.orderer_key.parse::<PublicKey>()? != genesis.orderer {
        return Err(bad("bundle names another orderer key than the genesis"));
    }
    let header = SignedHeader::try_from(&bundle.header)?;
    header
        .verify(&genesis.orderer)
        .map_err(|e| bad(format!("header: {e}")))?;
    let tx = check_tx("transaction", &bundle.tx, &bundle.inclusion_proof, &header, genesis)?;

    // Follow the key bindings from the registration to the signer's key.
    let (mut party, mut party_name, mut key) = if bundle.key_bindings.is_empty() {
        let o = &genesis.operator;
        (o.credit_code.to_string(), o.legal_name.clone(), Some(o.signing_key))
    } else {
        (String::new(), String::new(), None)
    };
    for (i, b) in bundle.key_bindings.iter().enumerate() {
        let what = format!("key binding {}", i + 1);
        let bound = check_tx(&what, &b.tx, &b.inclusion_proof, &header, genesis)?;
        match (i, bound.tx.kind.as_str()) {
            (0, KIND_REGISTER) => {
                let body: RegisterParty = liutong_core::decode_canonical("registration", &bound.tx.body)?;
                party = body.credit_code;
                party_name = body.legal_name;
                key = Some(bound.tx.signer);
            }
            (n, KIND_ROTATE_KEYS) if n > 0 => {
                if Some(bound.tx.signer) != key {
                    return Err(bad(format!("{what}: rotation is not signed by the previous key")));
                }
                let body: RotateKeys = liutong_core::decode_canonical("rotation", &bound.tx.body)?;
                key = Some(body.new_signing_key);
            }
            (_, kind) => return Err(bad(format!("{what}: a {kind} transaction cannot bind a key here"))),
        }
    }
    if Some(tx.tx.signer) != key {
        return Err(bad(format!(
            "the transaction is signed by {}, but the key bindings do not lead to that key",
            tx.tx.signer
        )));
    }
    let mut out = VerifiedEvidence {
        chain_id: genesis.chain_id.clone(),
        tx_id: tx.id(),
        kind: tx.tx.kind.clone(),
        height: header.header.height,
        header_timestamp: header.header.timestamp,
        signer: tx.tx.signer,
        party,
        party_name,
        digest: None,
        file_name: None,
        media_type: None,
        note: None,
    };
    if tx.tx.kind == KIND_NOTARIZE {
        let n: Notarize = liutong_core::decode_canonical("notarization", &tx.tx.body)?;
        out.digest = Some(n.digest);
        out.file_name = n.file_name;
        out.media_type = n.media_type;
        out.note = n.note;
    }
    Ok(out)
}
