//! liutong-connectors' integration tests, one binary: table files through
//! `FileSource`, and PostgreSQL through `PgSource` against a real server
//! (`testing::PgServer`).

mod files;
mod postgres;

use arrow::record_batch::RecordBatch;
use datafusion::prelude::SessionContext;

/// Runs `sql` and renders the result as a table, for comparison with the
/// expected text.
pub async fn query(ctx: &SessionContext, sql: &str) -> String {
    let batches: Vec<RecordBatch> = ctx
        .sql(sql)
        .await
        .unwrap_or_else(|e| panic!("planning {sql}: {e}"))
        .collect()
        .await
        .unwrap_or_else(|e| panic!("running {sql}: {e}"));
    arrow::util::pretty::pretty_format_batches(&batches)
        .expect("batches format as a table")
        .to_string()
}
