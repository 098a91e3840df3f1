use thiserror::Error as ThisError;

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Errors of the core vocabulary. Every variant has a stable code (see [`Error::code`]).
#[derive(Debug, ThisError, Clone, PartialEq, Eq)]
pub enum Error {
    #[error("{what} is not valid hex: {reason}")]
    BadHex { what: &'static str, reason: String },
    #[error("{what} is not valid base64: {reason}")]
    BadBase64 { what: &'static str, reason: String },
    #[error("malformed canonical encoding of {what}: {reason}")]
    Malformed { what: &'static str, reason: String },
    #[error("{0} is not a valid Ed25519 public key")]
    BadPublicKey(String),
    #[error("signature does not verify")]
    BadSignature,
    #[error("invalid unified social credit code {code:?}: {reason}")]
    BadCreditCode { code: String, reason: String },
    #[error("decryption failed: {0}")]
    Decrypt(String),
}

impl Error {
    /// The stable, documented code the API and CLI show for this error.
    pub fn code(&self) -> &'static str {
        match self {
            Error::BadHex { .. } => "encoding.bad_hex",
            Error::BadBase64 { .. } => "encoding.bad_base64",
            Error::Malformed { .. } => "encoding.malformed",
            Error::BadPublicKey(_) => "key.malformed",
            Error::BadSignature => "tx.bad_signature",
            Error::BadCreditCode { .. } => "party.bad_credit_code",
            Error::Decrypt(_) => "crypto.decrypt",
        }
    }
}
