//! Table files (CSV with a header row, Parquet, NDJSON, Arrow IPC file or
//! stream) as DataFusion listing tables over exactly one file, read with
//! the schema the ledger records, never re-inferred.

use crate::{Connector, Error, Result};
use arrow::datatypes::SchemaRef;
use datafusion::catalog::TableProvider;
use datafusion::datasource::file_format::arrow::ArrowFormat;
use datafusion::datasource::file_format::csv::CsvFormat;
use datafusion::datasource::file_format::json::JsonFormat;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::file_format::FileFormat;
use datafusion::datasource::listing::{ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl};
use liutong_catalog::{infer, TableFormat, TableShape};
use std::path::PathBuf;
use std::sync::Arc;

/// A registered table file.
#[derive(Clone, Debug)]
pub struct FileSource {
    pub path: PathBuf,
    pub format: TableFormat,
}

impl FileSource {
    pub fn new(path: impl Into<PathBuf>, format: TableFormat) -> FileSource {
        FileSource {
            path: path.into(),
            format,
        }
    }

    fn format(&self) -> Arc<dyn FileFormat> {
        match self.format {
            TableFormat::Csv => Arc::new(CsvFormat::default().with_has_header(true)),
            TableFormat::Parquet => Arc::new(ParquetFormat::default()),
            TableFormat::NdJson => Arc::new(JsonFormat::default()),
            TableFormat::ArrowIpc => Arc::new(ArrowFormat),
        }
    }
}

#[async_trait::async_trait]
impl Connector for FileSource {
    async fn shape(&self) -> Result<TableShape> {
        let (path, format) = (self.path.clone(), self.format);
        tokio::task::spawn_blocking(move || infer(&path, format))
            .await
            .map_err(|e| Error::Read(e.to_string()))?
            .map_err(|e| Error::Read(e.to_string()))
    }

    async fn table(&self, schema: SchemaRef) -> Result<Arc<dyn TableProvider>> {
        let meta =
            std::fs::metadata(&self.path).map_err(|e| Error::Unavailable(format!("{}: {e}", self.path.display())))?;
        if !meta.is_file() {
            return Err(Error::Unavailable(format!("{} is not a file", self.path.display())));
        }
        // A file URL, not a path string: names with glob characters or
        // percent signs mean themselves.
        let url = url::Url::from_file_path(&self.path)
            .map_err(|()| Error::BadSource(format!("{} is not an absolute path", self.path.display())))?;
        let url = ListingTableUrl::try_new(url, None).map_err(|e| Error::BadSource(e.to_string()))?;
        // The file is named exactly, so no extension filter applies.
        let options = ListingOptions::new(self.format()).with_file_extension("");
        let config = ListingTableConfig::new(url)
            .with_listing_options(options)
            .with_schema(schema);
        let table = ListingTable::try_new(config).map_err(|e| Error::Read(e.to_string()))?;
        Ok(Arc::new(table))
    }
}
