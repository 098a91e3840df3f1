//! liutong-connectors: what a provider registered, as a DataFusion table.
//!
//! A [`Connector`] turns one registered source into a `TableProvider` with
//! the Arrow schema the ledger records for the dataset: CSV, Parquet, NDJSON
//! and Arrow IPC files through DataFusion's own readers ([`FileSource`]), and
//! PostgreSQL tables and views through a provider that pushes projections,
//! filters and limits down to the server ([`postgres::PgSource`]). The query
//! service puts the table into a fresh session under the grant's terms; the
//! connectors know nothing of grants. [`testing`] runs a throwaway PostgreSQL
//! server for tests, here and in the crates above.

pub mod files;
pub mod postgres;
pub mod testing;

pub use files::FileSource;
pub use postgres::{PgSource, PgTable};

use arrow::datatypes::SchemaRef;
use datafusion::catalog::TableProvider;
use liutong_catalog::TableShape;
use std::sync::Arc;

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why a source cannot be read; each has a stable code ([`Error::code`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The source is not what it was registered as (missing file, other columns).
    #[error("source unavailable: {0}")]
    Unavailable(String),
    /// A connection string or table name that cannot be used.
    #[error("bad source: {0}")]
    BadSource(String),
    /// The PostgreSQL server refused or failed.
    #[error("PostgreSQL: {0}")]
    Postgres(String),
    /// Reading or converting the data failed.
    #[error("reading the source: {0}")]
    Read(String),
}

impl Error {
    pub fn code(&self) -> &'static str {
        match self {
            Error::Unavailable(_) => "source.unavailable",
            Error::BadSource(_) => "source.bad_source",
            Error::Postgres(_) => "source.postgres",
            Error::Read(_) => "source.read",
        }
    }
}

/// One registered source, readable as a table.
#[async_trait::async_trait]
pub trait Connector: Send + Sync {
    /// The source's shape as it is now (columns and rows), for registration.
    async fn shape(&self) -> Result<TableShape>;

    /// A DataFusion table over the source with `schema` (the registered one;
    /// a source whose columns no longer fit it is refused).
    async fn table(&self, schema: SchemaRef) -> Result<Arc<dyn TableProvider>>;
}
