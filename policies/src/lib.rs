//! liutong-policies: the usage terms of offers and grants, their validation
//! against a dataset's schema, the "never wider than the offer" rule, and the
//! evaluation of a use against a grant's terms.
//!
//! Terms are ODRL-shaped (permissions with constraints) but typed: a term
//! liutong cannot enforce has no representation here, so it cannot be
//! granted by accident. Row filters are SQL boolean expressions planned with
//! DataFusion against the dataset's Arrow schema when the terms are checked,
//! the same planner that will later run them, so what is accepted here is
//! what a query can enforce.

mod filter;
pub mod functions;
pub mod odrl;
pub mod query;
mod terms;

pub use filter::{check_row_filter, Author, RowFilters, ALLOWED_FUNCTIONS, MAX_FILTER};
pub use terms::{evaluate, Action, ColumnMask, DateUnit, Denial, Mask, QueryTerms, Terms, Use, DEFAULT_PURPOSES};

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why terms are refused; each has a stable code ([`Error::code`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("invalid terms: {0}")]
    BadTerms(String),
    #[error("purpose {0:?} is not in the consortium's vocabulary")]
    UnknownPurpose(String),
    #[error("column {0:?} is not in the dataset's schema")]
    UnknownColumn(String),
    #[error("row filter refused: {0}")]
    BadFilter(String),
    #[error("row filter refused: {0}")]
    HiddenColumn(String),
    #[error("masking refused: {0}")]
    BadMask(String),
    #[error("wider than the offer: {0}")]
    WiderThanOffer(String),
    #[error("not a usable ODRL policy: {0}")]
    BadOdrl(String),
    #[error("ODRL term liutong cannot enforce: {0}")]
    OdrlUnsupported(String),
}

impl Error {
    pub fn code(&self) -> &'static str {
        match self {
            Error::BadTerms(_) => "policy.bad_terms",
            Error::UnknownPurpose(_) => "policy.unknown_purpose",
            Error::UnknownColumn(_) => "policy.unknown_column",
            Error::BadFilter(_) => "policy.bad_filter",
            Error::HiddenColumn(_) => "policy.hidden_column",
            Error::BadMask(_) => "policy.bad_mask",
            Error::WiderThanOffer(_) => "policy.wider_than_offer",
            Error::BadOdrl(_) => "policy.odrl_invalid",
            Error::OdrlUnsupported(_) => "policy.odrl_unsupported",
        }
    }
}
