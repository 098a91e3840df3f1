//! Notarization: a party puts the SHA-256 digest of a document on the ledger,
//! with optional metadata, and anyone can later prove when and by whom.

use borsh::{BorshDeserialize, BorshSerialize};
use liutong_core::{CreditCode, Digest, Timestamp};
use serde::{Deserialize, Serialize};

/// `notary.notarize`.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct Notarize {
    pub digest: Digest,
    pub file_name: Option<String>,
    pub media_type: Option<String>,
    pub note: Option<String>,
}

impl Notarize {
    /// A notarization of a bare digest, with no metadata.
    pub fn of_digest(digest: Digest) -> Notarize {
        Notarize {
            digest,
            file_name: None,
            media_type: None,
            note: None,
        }
    }
}

pub const MAX_FILE_NAME: usize = 255;
pub const MAX_MEDIA_TYPE: usize = 127;
pub const MAX_NOTE: usize = 2000;

/// A notarization as the ledger state holds it (one per digest: the first).
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Notarization {
    #[schema(value_type = String)]
    pub digest: Digest,
    #[schema(value_type = String)]
    pub tx_id: Digest,
    pub tx_index: u64,
    pub height: u64,
    /// The block's timestamp (ms since the Unix epoch): when the ledger recorded it.
    pub timestamp: Timestamp,
    #[schema(value_type = String)]
    pub notary: CreditCode,
    pub notary_name: String,
    pub file_name: Option<String>,
    pub media_type: Option<String>,
    pub note: Option<String>,
}
