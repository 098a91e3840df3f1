//! Parties: the consortium's member organizations, their keys, roles and
//! standing. The operator is in the genesis; everyone else registers with a
//! signed application the operator approves or rejects.

use borsh::{BorshDeserialize, BorshSerialize};
use liutong_core::{CreditCode, EncryptionPublicKey, PublicKey, Signature, Timestamp};
use serde::{Deserialize, Serialize};

#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    BorshSerialize,
    BorshDeserialize,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
#[borsh(use_discriminant = true)]
pub enum Role {
    Operator = 0,
    Provider = 1,
    Consumer = 2,
    Auditor = 3,
}

impl std::str::FromStr for Role {
    type Err = crate::Error;
    fn from_str(s: &str) -> crate::Result<Role> {
        match s.trim().to_ascii_lowercase().as_str() {
            "provider" => Ok(Role::Provider),
            "consumer" => Ok(Role::Consumer),
            "auditor" => Ok(Role::Auditor),
            other => Err(crate::Error::BadRequest(format!(
                "unknown role {other:?}: choose provider, consumer or auditor"
            ))),
        }
    }
}

#[derive(
    Clone, Copy, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
#[borsh(use_discriminant = true)]
pub enum PartyStatus {
    Pending = 0,
    Active = 1,
    Rejected = 2,
    Suspended = 3,
    Expelled = 4,
}

impl PartyStatus {
    /// The refusal code for a transaction signed by a party in this status, if any.
    pub fn refusal(self) -> Option<(&'static str, &'static str)> {
        match self {
            PartyStatus::Active => None,
            PartyStatus::Pending => Some(("party.pending", "is awaiting the operator's approval")),
            PartyStatus::Rejected => Some(("party.rejected", "was rejected by the operator")),
            PartyStatus::Suspended => Some(("party.suspended", "is suspended")),
            PartyStatus::Expelled => Some(("party.expelled", "was expelled")),
        }
    }
}

/// What a party declares about itself.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PartyProfile {
    pub legal_name: String,
    #[schema(value_type = String, example = "91350100M000100Y43")]
    pub credit_code: CreditCode,
    pub contact: String,
    pub roles: Vec<Role>,
    #[schema(value_type = String)]
    pub signing_key: PublicKey,
    #[schema(value_type = String)]
    pub encryption_key: EncryptionPublicKey,
    /// Base URL of the party's own node, where peers reach it.
    pub endpoint: String,
}

/// One standing change, as the record keeps its history.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize, utoipa::ToSchema)]
pub struct StatusChange {
    pub status: PartyStatus,
    pub reason: String,
    pub height: u64,
    pub timestamp: Timestamp,
}

/// A party as the ledger state holds it.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Party {
    #[serde(flatten)]
    pub profile: PartyProfile,
    pub status: PartyStatus,
    pub registered_height: u64,
    pub history: Vec<StatusChange>,
    /// Signing keys this party used before rotating, newest last.
    #[schema(value_type = Vec<String>)]
    pub retired_keys: Vec<PublicKey>,
}

/// Which party a signing key belongs to, and whether it is still current.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct KeyBinding {
    pub party: CreditCode,
    pub current: bool,
    /// The transaction that bound the key (registration or rotation); `None`
    /// for the operator's key, which the genesis binds.
    pub bound_by: Option<liutong_core::Digest>,
}

/// `party.register`: signed by the applicant's own (new) signing key.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct RegisterParty {
    pub legal_name: String,
    /// Validated by the state machine (GB 32100-2015), so a bad one gets `party.bad_credit_code`.
    pub credit_code: String,
    pub contact: String,
    pub roles: Vec<Role>,
    pub encryption_key: EncryptionPublicKey,
    pub endpoint: String,
}

/// `party.approve`, `party.reject`, `party.suspend`, `party.reinstate`,
/// `party.expel`: signed by the operator.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct ChangeStanding {
    pub credit_code: String,
    pub reason: String,
}

/// `party.rotate_keys`: signed by the party's current key; `possession` is the
/// new signing key's signature over [`rotation_message`], so nobody can bind a
/// key they do not hold.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct RotateKeys {
    pub new_signing_key: PublicKey,
    pub new_encryption_key: EncryptionPublicKey,
    pub possession: Signature,
}

impl RotateKeys {
    /// Rotates from `old` to `new_signing`, which signs the possession proof.
    pub fn new(old: &PublicKey, new_signing: &liutong_core::SigningKey, new_encryption: EncryptionPublicKey) -> Self {
        let new = new_signing.public_key();
        RotateKeys {
            new_signing_key: new,
            new_encryption_key: new_encryption,
            possession: new_signing.sign(&rotation_message(old, &new)),
        }
    }
}

pub const ROTATION_DOMAIN: &[u8] = b"liutong/rotate-keys/v1\0";

/// What the new key signs to prove possession: domain ‖ old key ‖ new key.
pub fn rotation_message(old: &PublicKey, new: &PublicKey) -> Vec<u8> {
    let mut m = ROTATION_DOMAIN.to_vec();
    m.extend(old.as_bytes());
    m.extend(new.as_bytes());
    m
}

/// Limits on free-text fields, so no one fills the ledger with one registration.
pub const MAX_NAME: usize = 200;
pub const MAX_CONTACT: usize = 200;
pub const MAX_ENDPOINT: usize = 512;
pub const MAX_REASON: usize = 1000;
