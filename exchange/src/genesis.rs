//! The genesis document: fixes the chain id, the orderer's key, the
//! consortium parameters and the operator party. Every node of the chain is
//! started from the same document; its digest names the chain.

use crate::party::{PartyProfile, Role};
use crate::{Error, Result};
use borsh::{BorshDeserialize, BorshSerialize};
use liutong_core::{sha256, Canonical, CreditCode, Digest, EncryptionPublicKey, PublicKey, Timestamp};
use liutong_ledger::{LedgerGenesis, LedgerParams};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Format tag of the JSON file form.
pub const GENESIS_FORMAT: &str = "liutong-genesis/3";

/// The operator (the data exchange) as the genesis names it.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GenesisOperator {
    pub legal_name: String,
    #[schema(value_type = String)]
    pub credit_code: CreditCode,
    pub contact: String,
    #[schema(value_type = String)]
    pub signing_key: PublicKey,
    #[schema(value_type = String)]
    pub encryption_key: EncryptionPublicKey,
    pub endpoint: String,
}

/// The consortium's catalog rules.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CatalogParams {
    /// Bytes per chunk of every content commitment (a power of two, 4 KiB to 64 MiB).
    pub chunk_size: u32,
    /// The purposes grants may name (lower-case slugs).
    pub purposes: Vec<String>,
}

impl Default for CatalogParams {
    fn default() -> Self {
        CatalogParams {
            chunk_size: liutong_catalog::DEFAULT_CHUNK_SIZE,
            purposes: liutong_policies::DEFAULT_PURPOSES
                .iter()
                .map(|p| p.to_string())
                .collect(),
        }
    }
}

/// The private-use proof system: the Groth16 verifying key of the use
/// circuit (made at `liutong init`), its digest, and the windows a proof
/// is accepted within.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ZkParams {
    /// The verifying key, arkworks' compressed encoding, hex.
    pub verifying_key: String,
    /// SHA-256 of the verifying key's bytes.
    #[schema(value_type = String)]
    pub verifying_key_digest: Digest,
    /// A proof's root may be the grant tree's root after any of this many last blocks.
    pub root_window: u32,
}

impl ZkParams {
    pub const DEFAULT_ROOT_WINDOW: u32 = 64;

    pub fn of(vk: &liutong_zk::VerifyingKey) -> ZkParams {
        ZkParams {
            verifying_key: hex::encode(liutong_zk::groth16::vk_bytes(vk)),
            verifying_key_digest: Digest(liutong_zk::groth16::vk_digest(vk)),
            root_window: Self::DEFAULT_ROOT_WINDOW,
        }
    }

    /// The verifying key, checked against its digest.
    pub fn verifying_key(&self) -> Result<liutong_zk::VerifyingKey> {
        let bytes = hex::decode(&self.verifying_key)
            .map_err(|e| Error::BadGenesis(format!("zk.verifying_key is not hex: {e}")))?;
        if liutong_core::sha256(&bytes) != self.verifying_key_digest {
            return Err(Error::BadGenesis(
                "zk.verifying_key does not match zk.verifying_key_digest".into(),
            ));
        }
        liutong_zk::groth16::vk_from_bytes(&bytes).map_err(|e| Error::BadGenesis(format!("zk.verifying_key: {e}")))
    }
}

/// `genesis_digest` = SHA-256 of this document's canonical (borsh) bytes.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Genesis {
    pub format: String,
    pub chain_id: String,
    pub created_ms: Timestamp,
    /// The key that signs every block header.
    #[schema(value_type = String)]
    pub orderer: PublicKey,
    #[schema(value_type = Object)]
    pub params: LedgerParams,
    pub catalog: CatalogParams,
    pub operator: GenesisOperator,
    pub zk: ZkParams,
}

impl Canonical for Genesis {
    const WHAT: &'static str = "genesis";
}

impl Genesis {
    pub fn digest(&self) -> Digest {
        sha256(&self.canonical_bytes())
    }

    pub fn ledger_genesis(&self) -> LedgerGenesis {
        LedgerGenesis {
            chain_id: self.chain_id.clone(),
            orderer: self.orderer,
            params: self.params.clone(),
            genesis_digest: self.digest(),
        }
    }

    /// The operator's party record as it exists from the start.
    pub fn operator_profile(&self) -> PartyProfile {
        let o = &self.operator;
        PartyProfile {
            legal_name: o.legal_name.clone(),
            credit_code: o.credit_code.clone(),
            contact: o.contact.clone(),
            roles: vec![Role::Operator],
            signing_key: o.signing_key,
            encryption_key: o.encryption_key,
            endpoint: o.endpoint.clone(),
        }
    }

    /// Checks what JSON parsing cannot: the format tag, the chain id and sane parameters.
    pub fn validate(&self) -> Result<()> {
        if self.format != GENESIS_FORMAT {
            return Err(Error::BadGenesis(format!(
                "format is {:?}, expected {GENESIS_FORMAT:?}",
                self.format
            )));
        }
        validate_chain_id(&self.chain_id).map_err(|e| Error::BadGenesis(e.to_string()))?;
        let p = &self.params;
        if p.max_tx_bytes < 1024 || p.block_max_txs == 0 || p.max_clock_skew_ms == 0 {
            return Err(Error::BadGenesis(
                "params: max_tx_bytes must be at least 1024, block_max_txs and max_clock_skew_ms above 0".into(),
            ));
        }
        self.zk.verifying_key()?;
        if self.zk.root_window == 0 {
            return Err(Error::BadGenesis("zk.root_window must be at least 1".into()));
        }
        liutong_catalog::check_chunk_size(self.catalog.chunk_size)
            .map_err(|e| Error::BadGenesis(format!("catalog: {e}")))?;
        let slug = |p: &String| {
            !p.is_empty()
                && p.len() <= 64
                && p.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        };
        if self.catalog.purposes.is_empty() || !self.catalog.purposes.iter().all(slug) {
            return Err(Error::BadGenesis(
                "catalog: purposes must be a non-empty list of lower-case slugs (a-z 0-9 -)".into(),
            ));
        }
        Ok(())
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("genesis serializes to JSON")
    }

    pub fn from_json(text: &str) -> Result<Genesis> {
        let g: Genesis = serde_json::from_str(text).map_err(|e| Error::BadGenesis(e.to_string()))?;
        g.validate()?;
        Ok(g)
    }

    pub fn load(path: &Path) -> Result<Genesis> {
        let text =
            std::fs::read_to_string(path).map_err(|e| Error::Io(format!("reading genesis {}: {e}", path.display())))?;
        Genesis::from_json(&text).map_err(|e| match e {
            Error::BadGenesis(m) => Error::BadGenesis(format!("{}: {m}", path.display())),
            other => other,
        })
    }
}

/// Chain ids are short printable names: 1–64 of `[A-Za-z0-9._-]`.
pub fn validate_chain_id(id: &str) -> Result<()> {
    if id.is_empty() || id.len() > 64 || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b)) {
        return Err(Error::BadRequest(format!(
            "chain id {id:?} must be 1-64 characters of A-Z a-z 0-9 . _ -"
        )));
    }
    Ok(())
}
