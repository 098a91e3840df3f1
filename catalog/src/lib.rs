//! liutong-catalog: dataset and document descriptors, content commitments,
//! table schemas (inferred with arrow's readers) and search tokens.
//!
//! It knows nothing of the ledger: the exchange's state machine stores
//! descriptors and keeps the search index; this crate says what a valid
//! descriptor is and computes what goes into one.

mod commitment;
mod descriptor;
mod schema;
pub mod search;

pub use commitment::{
    check_chunk_size, chunk_hashes, chunk_root, commit_file, commit_reader, file_chunk_hashes, ChunkHasher,
    ChunkVerifier, Commitment, MAX_CHUNK_SIZE, MIN_CHUNK_SIZE,
};
pub use descriptor::{
    check_media_type, check_name, normalize_tags, DatasetId, DatasetKind, Description, MAX_DESCRIPTION, MAX_NAME,
    MAX_TAG, MAX_TAGS, MAX_TITLE,
};
pub use schema::{infer, Column, TableFormat, TableShape, ARROW_STREAM_MEDIA_TYPE, MAX_COLUMNS};

/// Default chunk size of content commitments: 1 MiB.
pub const DEFAULT_CHUNK_SIZE: u32 = 1024 * 1024;

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Catalog errors, each with a stable code ([`Error::code`]).
#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    #[error("invalid dataset descriptor: {0}")]
    BadDescriptor(String),
    #[error("invalid table schema: {0}")]
    BadSchema(String),
    #[error("{0}")]
    BadTable(String),
    #[error("invalid content commitment: {0}")]
    BadCommitment(String),
    /// Received content that does not match the commitment.
    #[error("content does not match the commitment: {0}")]
    ContentMismatch(String),
    #[error("{0}")]
    Io(String),
}

impl Error {
    pub fn code(&self) -> &'static str {
        match self {
            Error::BadDescriptor(_) => "catalog.bad_descriptor",
            Error::BadSchema(_) => "catalog.bad_schema",
            Error::BadTable(_) => "catalog.bad_table",
            Error::BadCommitment(_) => "catalog.bad_commitment",
            Error::ContentMismatch(_) => "catalog.content_mismatch",
            Error::Io(_) => "io.error",
        }
    }
}
