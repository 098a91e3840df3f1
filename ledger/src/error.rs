use thiserror::Error as ThisError;

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Ledger errors; each has a stable code ([`Error::code`]).
#[derive(Debug, ThisError, Clone)]
pub enum Error {
    #[error("transaction is {size} bytes, the limit is {max}")]
    Oversize { size: usize, max: usize },
    #[error("malformed transaction: {0}")]
    Malformed(String),
    #[error("transaction is for chain {got:?}, this is chain {expected:?}")]
    WrongChain { got: String, expected: String },
    #[error("transaction timestamp is {skew_ms} ms in the past, more than the {max_ms} ms allowed")]
    Stale { skew_ms: u64, max_ms: u64 },
    #[error("transaction timestamp is {skew_ms} ms in the future, more than the {max_ms} ms allowed")]
    Future { skew_ms: u64, max_ms: u64 },
    #[error("transaction signature does not verify")]
    BadSignature,
    #[error("nonce {nonce} was already used by this signer")]
    ReplayedNonce { nonce: u64 },
    #[error("transaction {0} is already committed")]
    Duplicate(String),
    /// The state machine refused the transaction.
    #[error("{message}")]
    Rejected { code: String, message: String },
    #[error("block refused: {0}")]
    BadBlock(String),
    #[error("{0} not found")]
    NotFound(String),
    #[error("invalid request: {0}")]
    BadRequest(String),
    #[error("store error: {0}")]
    Store(String),
    #[error("store is corrupt: {0}")]
    Corrupt(String),
    #[error("the ordering service is shutting down")]
    Shutdown,
}

impl Error {
    pub fn code(&self) -> &str {
        match self {
            Error::Oversize { .. } => "tx.oversize",
            Error::Malformed(_) => "tx.malformed",
            Error::WrongChain { .. } => "tx.wrong_chain",
            Error::Stale { .. } => "tx.stale_timestamp",
            Error::Future { .. } => "tx.future_timestamp",
            Error::BadSignature => "tx.bad_signature",
            Error::ReplayedNonce { .. } => "tx.replayed_nonce",
            Error::Duplicate(_) => "tx.duplicate",
            Error::Rejected { code, .. } => code,
            Error::BadBlock(_) => "block.invalid",
            Error::NotFound(_) => "not_found",
            Error::BadRequest(_) => "request.invalid",
            Error::Store(_) => "store.error",
            Error::Corrupt(_) => "store.corrupt",
            Error::Shutdown => "node.shutting_down",
        }
    }

    pub fn rejected(code: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Rejected {
            code: code.into(),
            message: message.into(),
        }
    }
}

impl From<rocksdb::Error> for Error {
    fn from(e: rocksdb::Error) -> Self {
        if e.kind() == rocksdb::ErrorKind::Corruption {
            Error::Corrupt(e.to_string())
        } else {
            Error::Store(e.to_string())
        }
    }
}
