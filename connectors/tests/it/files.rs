//! The four table file formats through `FileSource`: shape, then a table a
//! DataFusion session queries.

use crate::query;
use arrow::array::{Float64Array, Int64Array, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use arrow::record_batch::RecordBatch;
use datafusion::prelude::SessionContext;
use liutong_catalog::TableFormat;
use liutong_connectors::{Connector, FileSource};
use std::fs::File;
use std::path::Path;
use std::sync::Arc;

fn sample() -> RecordBatch {
    let schema = Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("name", DataType::Utf8, true),
        Field::new("score", DataType::Float64, true),
    ]);
    RecordBatch::try_new(
        Arc::new(schema),
        vec![
            Arc::new(Int64Array::from(vec![1, 2, 3, 4])),
            Arc::new(StringArray::from(vec![Some("ann"), Some("bo"), None, Some("di")])),
            Arc::new(Float64Array::from(vec![Some(1.5), None, Some(3.0), Some(4.5)])),
        ],
    )
    .expect("a valid batch")
}

fn write(path: &Path, format: TableFormat) {
    let batch = sample();
    let file = File::create(path).expect("create the table file");
    match format {
        TableFormat::Csv => {
            let mut w = arrow::csv::Writer::new(file);
            w.write(&batch).expect("write CSV");
        }
        TableFormat::Parquet => {
            let mut w =
                datafusion::parquet::arrow::ArrowWriter::try_new(file, batch.schema(), None).expect("a Parquet writer");
            w.write(&batch).expect("write Parquet");
            w.close().expect("close Parquet");
        }
        TableFormat::NdJson => {
            let mut w = arrow::json::LineDelimitedWriter::new(file);
            w.write(&batch).expect("write NDJSON");
            w.finish().expect("finish NDJSON");
        }
        TableFormat::ArrowIpc => {
            let mut w = arrow::ipc::writer::FileWriter::try_new(file, &batch.schema()).expect("an IPC writer");
            w.write(&batch).expect("write IPC");
            w.finish().expect("finish IPC");
        }
    }
}

#[tokio::test]
async fn every_file_format_answers_sql() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    for (format, name) in [
        (TableFormat::Csv, "t.csv"),
        (TableFormat::Parquet, "t.parquet"),
        (TableFormat::NdJson, "t.ndjson"),
        (TableFormat::ArrowIpc, "t.arrow"),
    ] {
        let path = dir.path().join(name);
        write(&path, format);
        let source = FileSource::new(&path, format);
        let shape = source.shape().await.unwrap_or_else(|e| panic!("{name}: shape: {e}"));
        assert_eq!(shape.rows, 4, "{name}");
        let names: Vec<&str> = shape.columns.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["id", "name", "score"], "{name}");
        let schema = Arc::new(shape.to_arrow().expect("the shape's schema"));
        let table = source
            .table(schema)
            .await
            .unwrap_or_else(|e| panic!("{name}: table: {e}"));
        let ctx = SessionContext::new();
        ctx.register_table("t", table).expect("register the table");
        let result = query(
            &ctx,
            "SELECT count(*) AS n, sum(id) AS ids, sum(score) AS score, count(name) AS named \
             FROM t WHERE id > 1",
        )
        .await;
        assert_eq!(
            result,
            "+---+-----+-------+-------+\n\
             | n | ids | score | named |\n\
             +---+-----+-------+-------+\n\
             | 3 | 9   | 7.5   | 2     |\n\
             +---+-----+-------+-------+",
            "{name}"
        );
    }
}

#[tokio::test]
async fn a_missing_file_is_unavailable() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let source = FileSource::new(dir.path().join("gone.csv"), TableFormat::Csv);
    let schema = Arc::new(Schema::new(vec![Field::new("id", DataType::Int64, false)]));
    let e = source.table(schema).await.expect_err("no file, no table");
    assert_eq!(e.code(), "source.unavailable", "{e}");
}
