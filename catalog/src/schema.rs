//! Table schemas as the ledger records them, and their inference from CSV,
//! Parquet, NDJSON and Arrow IPC files with arrow's own readers.

use crate::{Error, Result};
use arrow::datatypes::{DataType, Field, Schema};
use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::str::FromStr;

/// Most columns a table descriptor may list.
pub const MAX_COLUMNS: usize = 1024;
pub const MAX_COLUMN_NAME: usize = 128;

/// One column: its name, its Arrow data type in Arrow's own text form (what
/// `DataType`'s `Display` writes and `FromStr` reads, e.g. `Int64`, `Utf8`,
/// `Date32`), and whether it may be null.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Column {
    pub name: String,
    pub data_type: String,
    pub nullable: bool,
}

/// A table's shape: its columns and how many rows it has.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableShape {
    pub columns: Vec<Column>,
    pub rows: u64,
}

impl TableShape {
    pub fn from_arrow(schema: &Schema, rows: u64) -> TableShape {
        TableShape {
            columns: schema
                .fields()
                .iter()
                .map(|f| Column {
                    name: f.name().clone(),
                    data_type: f.data_type().to_string(),
                    nullable: f.is_nullable(),
                })
                .collect(),
            rows,
        }
    }

    /// The Arrow schema, refusing data types Arrow cannot read back and
    /// duplicate or empty column names.
    pub fn to_arrow(&self) -> Result<Schema> {
        if self.columns.is_empty() || self.columns.len() > MAX_COLUMNS {
            return Err(Error::BadSchema(format!(
                "a table has 1 to {MAX_COLUMNS} columns, not {}",
                self.columns.len()
            )));
        }
        let mut seen = std::collections::HashSet::new();
        let mut fields = Vec::with_capacity(self.columns.len());
        for c in &self.columns {
            if c.name.trim().is_empty() || c.name.len() > MAX_COLUMN_NAME || c.name.chars().any(char::is_control) {
                return Err(Error::BadSchema(format!(
                    "column name {:?} must be 1-{MAX_COLUMN_NAME} bytes without control characters",
                    c.name
                )));
            }
            if !seen.insert(c.name.as_str()) {
                return Err(Error::BadSchema(format!("column {:?} appears twice", c.name)));
            }
            let dt = DataType::from_str(&c.data_type).map_err(|e| {
                Error::BadSchema(format!(
                    "column {:?}: {:?} is not an Arrow data type: {e}",
                    c.name, c.data_type
                ))
            })?;
            fields.push(Field::new(&c.name, dt, c.nullable));
        }
        Ok(Schema::new(fields))
    }
}

/// Which table formats liutong reads a schema from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TableFormat {
    Csv,
    Parquet,
    /// Newline-delimited JSON: one object per line.
    NdJson,
    /// Arrow IPC, file or stream format.
    ArrowIpc,
}

/// The media type of a PostgreSQL table's snapshot: an Arrow IPC stream.
pub const ARROW_STREAM_MEDIA_TYPE: &str = "application/vnd.apache.arrow.stream";

impl TableFormat {
    /// By file extension (`.csv`, `.parquet`/`.parq`, `.ndjson`/`.jsonl`,
    /// `.arrow`/`.arrows`/`.ipc`/`.feather`), case-insensitive.
    pub fn of_path(path: &Path) -> Option<TableFormat> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        match ext.as_str() {
            "csv" => Some(TableFormat::Csv),
            "parquet" | "parq" => Some(TableFormat::Parquet),
            "ndjson" | "jsonl" => Some(TableFormat::NdJson),
            "arrow" | "arrows" | "ipc" | "feather" => Some(TableFormat::ArrowIpc),
            _ => None,
        }
    }

    /// By a descriptor's media type (what the ledger says a table is).
    pub fn of_media_type(media_type: &str) -> Option<TableFormat> {
        match media_type {
            "text/csv" => Some(TableFormat::Csv),
            "application/vnd.apache.parquet" => Some(TableFormat::Parquet),
            "application/x-ndjson" => Some(TableFormat::NdJson),
            "application/vnd.apache.arrow.file" | ARROW_STREAM_MEDIA_TYPE => Some(TableFormat::ArrowIpc),
            _ => None,
        }
    }

    pub fn media_type(self) -> &'static str {
        match self {
            TableFormat::Csv => "text/csv",
            TableFormat::Parquet => "application/vnd.apache.parquet",
            TableFormat::NdJson => "application/x-ndjson",
            TableFormat::ArrowIpc => "application/vnd.apache.arrow.file",
        }
    }
}

/// Infers a table's shape by reading the whole file once: for CSV, arrow's
/// type inference over every record (with a header row) and the record
/// count; for Parquet, the schema and row count from the footer; for
/// NDJSON, arrow's inference over every line; for Arrow IPC, the schema it
/// carries and a count of its rows.
pub fn infer(path: &Path, format: TableFormat) -> Result<TableShape> {
    let file = std::fs::File::open(path).map_err(|e| Error::Io(format!("opening {}: {e}", path.display())))?;
    let shape = match format {
        TableFormat::NdJson => {
            let bad = |e: &dyn std::fmt::Display| {
                Error::BadTable(format!("{} is not a readable NDJSON table: {e}", path.display()))
            };
            let mut reader = std::io::BufReader::new(file);
            let (schema, rows) = arrow::json::reader::infer_json_schema(&mut reader, None).map_err(|e| bad(&e))?;
            if schema.fields().is_empty() {
                return Err(bad(&"it has no fields"));
            }
            TableShape::from_arrow(&schema, rows as u64)
        }
        TableFormat::ArrowIpc => ipc_shape(path, file)?,
        TableFormat::Csv => {
            let (schema, rows) = arrow::csv::reader::Format::default()
                .with_header(true)
                .infer_schema(std::io::BufReader::new(file), None)
                .map_err(|e| Error::BadTable(format!("{} is not a readable CSV table: {e}", path.display())))?;
            TableShape::from_arrow(&schema, rows as u64)
        }
        TableFormat::Parquet => {
            let builder = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
                .map_err(|e| Error::BadTable(format!("{} is not a readable Parquet file: {e}", path.display())))?;
            let rows = builder.metadata().file_metadata().num_rows();
            TableShape::from_arrow(builder.schema(), u64::try_from(rows).unwrap_or(0))
        }
    };
    shape.to_arrow()?;
    Ok(shape)
}

/// An Arrow IPC file (with its footer) or stream: its schema and rows.
fn ipc_shape(path: &Path, file: std::fs::File) -> Result<TableShape> {
    use arrow::ipc::reader::{FileReader, StreamReader};
    let bad = |e: &dyn std::fmt::Display| {
        Error::BadTable(format!("{} is not a readable Arrow IPC table: {e}", path.display()))
    };
    fn count(
        batches: impl Iterator<Item = std::result::Result<arrow::record_batch::RecordBatch, arrow::error::ArrowError>>,
    ) -> std::result::Result<u64, arrow::error::ArrowError> {
        batches.map(|b| b.map(|b| b.num_rows() as u64)).sum()
    }
    match FileReader::try_new(std::io::BufReader::new(&file), None) {
        Ok(mut r) => {
            let schema = r.schema();
            let rows = count(r.by_ref()).map_err(|e| bad(&e))?;
            Ok(TableShape::from_arrow(&schema, rows))
        }
        Err(_) => {
            // Not a file with a footer: read it again from the start as a stream.
            let mut file = file;
            std::io::Seek::rewind(&mut file).map_err(|e| bad(&e))?;
            let mut r = StreamReader::try_new(std::io::BufReader::new(&file), None).map_err(|e| bad(&e))?;
            let schema = r.schema();
            let rows = count(r.by_ref()).map_err(|e| bad(&e))?;
            Ok(TableShape::from_arrow(&schema, rows))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn csv_schema_and_rows() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("t.csv");
        let mut f = std::fs::File::create(&path).expect("create");
        writeln!(f, "port,teu,arrived,ok").expect("write");
        for i in 0..25 {
            writeln!(f, "Ningbo,{},2026-0{}-01,true", i * 10, 1 + i % 9).expect("write");
        }
        drop(f);
        let shape = infer(&path, TableFormat::Csv).expect("infers");
        assert_eq!(shape.rows, 25);
        let types: Vec<&str> = shape.columns.iter().map(|c| c.data_type.as_str()).collect();
        assert_eq!(types, ["Utf8", "Int64", "Date32", "Boolean"]);
        let schema = shape.to_arrow().expect("round-trips");
        assert_eq!(schema.field(1).data_type(), &DataType::Int64);
    }

    #[test]
    fn parquet_schema_and_rows() {
        use arrow::array::{Float64Array, StringArray};
        use arrow::record_batch::RecordBatch;
        use std::sync::Arc;
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("t.parquet");
        let schema = Arc::new(Schema::new(vec![
            Field::new("name", DataType::Utf8, false),
            Field::new("amount", DataType::Float64, true),
        ]));
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(StringArray::from(vec!["a", "b", "c"])),
                Arc::new(Float64Array::from(vec![Some(1.5), None, Some(3.0)])),
            ],
        )
        .expect("batch");
        let file = std::fs::File::create(&path).expect("create");
        let mut w = parquet::arrow::ArrowWriter::try_new(file, schema, None).expect("writer");
        w.write(&batch).expect("write");
        w.close().expect("close");
        let shape = infer(&path, TableFormat::Parquet).expect("infers");
        assert_eq!(shape.rows, 3);
        assert_eq!(
            shape.columns,
            vec![
                Column {
                    name: "name".into(),
                    data_type: "Utf8".into(),
                    nullable: false
                },
                Column {
                    name: "amount".into(),
                    data_type: "Float64".into(),
                    nullable: true
                },
            ]
        );
    }

    #[test]
    fn unreadable_tables_and_bad_schemas_are_refused() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("bad.parquet");
        std::fs::write(&path, b"not parquet at all").expect("write");
        assert_eq!(
            infer(&path, TableFormat::Parquet).expect_err("refused").code(),
            "catalog.bad_table"
        );
        let ragged = dir.path().join("ragged.csv");
        std::fs::write(&ragged, "a,b\n1,2\n3\n").expect("write");
        assert_eq!(
            infer(&ragged, TableFormat::Csv).expect_err("refused").code(),
            "catalog.bad_table"
        );
        let col = |n: &str, t: &str| Column {
            name: n.into(),
            data_type: t.into(),
            nullable: true,
        };
        for columns in [
            vec![],
            vec![col("a", "Int64"), col("a", "Utf8")],
            vec![col("a", "Integer")],
            vec![col("", "Int64")],
        ] {
            let shape = TableShape { columns, rows: 0 };
            assert_eq!(shape.to_arrow().expect_err("refused").code(), "catalog.bad_schema");
        }
    }
}
