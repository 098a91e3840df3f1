use thiserror::Error as ThisError;

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Errors of the exchange node, its client and its CLI. Every variant has a
/// stable code ([`Error::code`]) that the API and the CLI show.
#[derive(Debug, ThisError)]
pub enum Error {
    #[error(transparent)]
    Ledger(#[from] liutong_ledger::Error),
    #[error(transparent)]
    Core(#[from] liutong_core::Error),
    #[error(transparent)]
    Catalog(#[from] liutong_catalog::Error),
    #[error(transparent)]
    Policy(#[from] liutong_policies::Error),
    #[error("invalid genesis: {0}")]
    BadGenesis(String),
    #[error("invalid request: {0}")]
    BadRequest(String),
    #[error("{0}")]
    Io(String),
    #[error("home directory: {0}")]
    Home(String),
    /// An error a node answered with.
    #[error("{message}")]
    Remote { code: String, message: String, status: u16 },
    #[error("cannot reach node {url}: {reason}")]
    Unreachable { url: String, reason: String },
    #[error("evidence does not verify: {0}")]
    BadEvidence(String),
    /// A delivery, receipt or fetch refused, with its stable code.
    #[error(transparent)]
    Refused(#[from] crate::delivery::Refusal),
}

impl Error {
    pub fn code(&self) -> &str {
        match self {
            Error::Ledger(e) => e.code(),
            Error::Core(e) => e.code(),
            Error::Catalog(e) => e.code(),
            Error::Policy(e) => e.code(),
            Error::BadGenesis(_) => "genesis.invalid",
            Error::BadRequest(_) => "request.invalid",
            Error::Io(_) => "io.error",
            Error::Home(_) => "home.invalid",
            Error::Remote { code, .. } => code,
            Error::Unreachable { .. } => "node.unreachable",
            Error::BadEvidence(_) => "evidence.invalid",
            Error::Refused(r) => r.code,
        }
    }
}
