//! PostgreSQL tables and views as sources.
//!
//! A [`PgSource`] names a server (a `tokio_postgres` connection string) and a
//! table or view on it. It gives the table's shape, a [`PgTable`] that
//! DataFusion queries live (projections, filters and limits pushed down to
//! the server), and a canonical Arrow IPC stream snapshot of the whole table.
//!
//! # Type mapping
//!
//! One function, `map_type`, decides for every column how it travels and what
//! Arrow type it becomes; snapshots, shapes and scans all go through it, so a
//! snapshot and a live scan of the same table have the same schema:
//!
//! | PostgreSQL                         | selected as    | Arrow                              |
//! |------------------------------------|----------------|------------------------------------|
//! | `bool`                             | itself         | `Boolean`                          |
//! | `int2` / `int4` / `int8`           | itself         | `Int16` / `Int32` / `Int64`        |
//! | `float4` / `float8`                | itself         | `Float32` / `Float64`              |
//! | `text`, `varchar`, `bpchar`, `name`| itself         | `Utf8`                             |
//! | `date`                             | itself         | `Date32`                           |
//! | `timestamp`                        | itself         | `Timestamp(Microsecond, None)`     |
//! | `timestamptz`                      | itself         | `Timestamp(Microsecond, "UTC")`    |
//! | `numeric(p, s)`, 1 ≤ p ≤ 38, 0 ≤ s ≤ p | `::text`   | `Decimal128(p, s)`, parsed exactly |
//! | `numeric` (no typmod)              | `::float8`     | `Float64`                          |
//! | anything else (uuid, json, arrays, enums, domains, `numeric(p, s)` beyond Decimal128) | `::text` | `Utf8` |
//!
//! Values travel in PostgreSQL's binary format and are decoded straight into
//! Arrow builders; dates and timestamps are read as the raw day and
//! microsecond counts PostgreSQL sends, so no calendar library sits in
//! between. `infinity` dates and timestamps and `NaN` in a `numeric(p, s)`
//! have no Arrow value and fail the read rather than turn into something
//! else. Nullability is `pg_attribute.attnotnull` (views: always nullable).
//!
//! # Canonical snapshots
//!
//! [`PgSource::snapshot`] writes the same bytes for the same data, whatever
//! the physical order of the rows: it reads inside one `REPEATABLE READ READ
//! ONLY` transaction, orders the rows by every column in column order (text
//! compared bytewise with `COLLATE "C"`, NULLs first, with tie-breaks where
//! PostgreSQL's equality is coarser than the bytes it sends: `-0`/`0` for
//! floats, trailing blanks for `bpchar`), cuts record batches of exactly
//! [`BATCH_ROWS`] rows, and writes them with arrow's `StreamWriter` with
//! default options. Rows that still tie are identical, so their order cannot
//! show in the output.
//!
//! # Filter pushdown
//!
//! [`PgTable`] answers `Inexact` for the filters it can translate, so
//! DataFusion applies every filter again to what the server returns: a
//! pushed filter only saves transfer, it never decides the answer. Because a
//! translated filter may sit under `NOT` or `OR`, each translated leaf must
//! still mean *exactly* what DataFusion means (three-valued logic included);
//! a leaf whose PostgreSQL semantics differ is not pushed at all. That rules
//! out, among others: range comparisons on floats (PostgreSQL treats `-0`
//! as `0` and every NaN as the largest value; Arrow uses IEEE total order),
//! comparisons on `bpchar` (PostgreSQL ignores trailing blanks), range
//! comparisons on text when the server encoding is not UTF-8, and every
//! column read through a cast (`::text`, `::float8`). Text is compared with
//! `COLLATE "C"`, which is Arrow's bytewise order.

use crate::{Connector, Error, Result};
use arrow::array::{
    ArrayBuilder, ArrayRef, BooleanBuilder, Date32Builder, Decimal128Builder, Float32Builder, Float64Builder,
    Int16Builder, Int32Builder, Int64Builder, StringBuilder, TimestampMicrosecondBuilder,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use arrow::ipc::writer::StreamWriter;
use arrow::record_batch::{RecordBatch, RecordBatchOptions};
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::{DataFusionError, ScalarValue};
use datafusion::execution::TaskContext;
use datafusion::logical_expr::expr::{Between, Cast, InList};
use datafusion::logical_expr::{BinaryExpr, Expr, Operator, TableProviderFilterPushDown, TableType};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::streaming::{PartitionStream, StreamingTableExec};
use datafusion::physical_plan::{ExecutionPlan, SendableRecordBatchStream};
use futures::stream::Fuse;
use futures::{Stream, StreamExt, TryStreamExt};
use liutong_catalog::TableShape;
use std::io::BufWriter;
use std::path::Path;
use std::pin::Pin;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;
use tokio_postgres::config::Host;
use tokio_postgres::types::{FromSql, Type};
use tokio_postgres::{Client, Config, IsolationLevel, NoTls, Row, RowStream, Transaction};

/// Rows per record batch, in snapshots and scans alike (the last batch of a
/// snapshot may be shorter).
pub const BATCH_ROWS: usize = 8192;

/// PostgreSQL's identifier limit (NAMEDATALEN - 1).
const MAX_IDENTIFIER: usize = 63;

/// Used when the connection string sets no `connect_timeout`, so an
/// unreachable server fails a request instead of hanging it.
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// 2000-01-01 (PostgreSQL's epoch) in days and microseconds since 1970-01-01.
const PG_EPOCH_DAYS: i32 = 10_957;
const PG_EPOCH_MICROS: i64 = 946_684_800_000_000;

/// A registered PostgreSQL table or view.
#[derive(Clone, Debug)]
pub struct PgSource {
    /// `Config`'s `Debug` redacts the password.
    config: Config,
    /// The name as given: `name` or `schema.name`.
    table: String,
    /// The same, each part double-quoted for SQL.
    relation: String,
}

impl PgSource {
    /// `url` is a `tokio_postgres` connection string (`postgres://user@host:port/db`
    /// or `host=… port=…`); `table` is `name` or `schema.name`, each part
    /// `[A-Za-z_][A-Za-z0-9_$]*` of at most 63 bytes. Names are quoted, so they
    /// are case-sensitive as given (`Sales` is not `sales`); an unqualified
    /// name resolves through the server's `search_path`.
    pub fn new(url: &str, table: &str) -> Result<PgSource> {
        // The parser's messages name options, never their values, so the
        // password cannot leak through them.
        let mut config = Config::from_str(url)
            .map_err(|e| Error::BadSource(format!("not a PostgreSQL connection string: {}", error_chain(&e))))?;
        if config.get_hosts().is_empty() {
            return Err(Error::BadSource(
                "the PostgreSQL connection string names no host".into(),
            ));
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(DEFAULT_CONNECT_TIMEOUT);
        }
        if config.get_application_name().is_none() {
            config.application_name("liutong");
        }
        let relation = quote_relation(table)?;
        Ok(PgSource {
            config,
            table: table.to_string(),
            relation,
        })
    }

    /// The table's name as given.
    pub fn table(&self) -> &str {
        &self.table
    }

    /// Writes the whole table to `out` as a canonical Arrow IPC stream (see
    /// the module documentation) and returns its shape. The stream goes to a
    /// temporary file next to `out` that is synced and renamed over `out`
    /// only once complete, so a failure leaves `out` as it was. The file is
    /// readable by its owner only.
    pub async fn snapshot(&self, out: &Path) -> Result<TableShape> {
        let mut client = connect(&self.config).await?;
        let tx = read_only_transaction(&mut client).await?;
        let relation = describe(&tx, &self.relation, &self.table).await?;
        let schema = relation.schema();
        let sql = snapshot_sql(&self.relation, &relation.columns);

        let dir = match out.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => Path::new("."),
        };
        let tmp = tempfile::Builder::new()
            .prefix(".liutong-snapshot-")
            .tempfile_in(dir)
            .map_err(|e| Error::Read(format!("creating a temporary file in {}: {e}", dir.display())))?;
        // Arrow's writer does blocking file I/O, so it runs on a blocking
        // thread and receives batches through a short channel.
        let (batches, received) = tokio::sync::mpsc::channel::<RecordBatch>(2);
        let writer = tokio::task::spawn_blocking({
            let schema = schema.clone();
            move || write_ipc_stream(tmp, &schema, received)
        });
        let read = async {
            let rows = tx
                .query_raw(sql.as_str(), no_params())
                .await
                .map_err(|e| query_error(&self.table, &e))?;
            let mut rows = Box::pin(rows.fuse());
            let mut batch = BatchBuilder::new(schema.clone(), &relation.columns)?;
            let mut count = 0u64;
            while let Some(b) = next_batch(&self.table, &mut rows, &mut batch).await? {
                count += b.num_rows() as u64;
                if batches.send(b).await.is_err() {
                    break; // the writer failed; its error is reported below
                }
            }
            Ok::<u64, Error>(count)
        }
        .await;
        drop(batches);
        let written = writer
            .await
            .map_err(|e| Error::Read(format!("the snapshot writer stopped: {e}")))?;
        let tmp = written?;
        let rows = read?;
        tx.commit().await.map_err(|e| query_error(&self.table, &e))?;
        tmp.persist(out)
            .map_err(|e| Error::Read(format!("renaming the snapshot to {}: {}", out.display(), e.error)))?;
        Ok(TableShape::from_arrow(&schema, rows))
    }
}

#[async_trait::async_trait]
impl Connector for PgSource {
    /// The columns as the server describes them now and `count(*)`, read in
    /// one snapshot of the database.
    async fn shape(&self) -> Result<TableShape> {
        let mut client = connect(&self.config).await?;
        let tx = read_only_transaction(&mut client).await?;
        let relation = describe(&tx, &self.relation, &self.table).await?;
        let row = tx
            .query_one(format!("SELECT count(*) FROM {}", self.relation).as_str(), &[])
            .await
            .map_err(|e| query_error(&self.table, &e))?;
        let rows: i64 = row.try_get(0).map_err(|e| query_error(&self.table, &e))?;
        tx.commit().await.map_err(|e| query_error(&self.table, &e))?;
        Ok(TableShape::from_arrow(&relation.schema(), rows.max(0) as u64))
    }

    /// A live table over the source with the registered `schema`. Every
    /// registered column must still be on the server, mapping to the same
    /// Arrow type, and may not have become nullable if registered NOT NULL;
    /// columns the server has beyond the registered ones are never read.
    async fn table(&self, schema: SchemaRef) -> Result<Arc<dyn TableProvider>> {
        let mut client = connect(&self.config).await?;
        let tx = read_only_transaction(&mut client).await?;
        let relation = describe(&tx, &self.relation, &self.table).await?;
        drop(tx);
        let mut columns = Vec::with_capacity(schema.fields().len());
        for field in schema.fields() {
            let Some(column) = relation.columns.iter().find(|c| c.name == *field.name()) else {
                return Err(Error::Unavailable(format!(
                    "{}: the registered column {:?} is not on the server",
                    self.table,
                    field.name()
                )));
            };
            let data_type = column.kind.data_type();
            if data_type != *field.data_type() {
                return Err(Error::Unavailable(format!(
                    "{}: column {:?} is {} in the registered schema, but the server's {} reads as {data_type}",
                    self.table,
                    field.name(),
                    field.data_type(),
                    column.pg_type
                )));
            }
            if column.nullable && !field.is_nullable() {
                return Err(Error::Unavailable(format!(
                    "{}: column {:?} is NOT NULL in the registered schema but nullable on the server",
                    self.table,
                    field.name()
                )));
            }
            columns.push(column.clone());
        }
        Ok(Arc::new(PgTable {
            config: Arc::new(self.config.clone()),
            table: self.table.clone(),
            relation: self.relation.clone(),
            columns,
            schema,
            utf8: relation.utf8,
            table_type: relation.table_type,
        }))
    }
}

/// A PostgreSQL table or view as a DataFusion table with the registered
/// schema. Each scan opens its own connection and runs one `SELECT` with the
/// projection, the translatable filters and the limit pushed down.
#[derive(Debug)]
pub struct PgTable {
    config: Arc<Config>,
    table: String,
    relation: String,
    /// The server's columns, in the registered schema's order.
    columns: Vec<PgColumn>,
    schema: SchemaRef,
    /// Whether the server encoding is UTF-8, so that `COLLATE "C"` order is
    /// Arrow's bytewise order of the UTF-8 strings.
    utf8: bool,
    table_type: TableType,
}

impl PgTable {
    /// The `SELECT` a scan runs: the projected columns (a constant when none
    /// is needed, e.g. for `count(*)`), the translatable `filters` ANDed into
    /// a `WHERE` (the others are left to DataFusion), and `LIMIT`.
    pub fn scan_sql(&self, projection: Option<&[usize]>, filters: &[Expr], limit: Option<usize>) -> String {
        let columns: Vec<&PgColumn> = match projection {
            Some(p) => p.iter().filter_map(|&i| self.columns.get(i)).collect(),
            None => self.columns.iter().collect(),
        };
        let select = if columns.is_empty() {
            "1".to_string()
        } else {
            columns.iter().map(|c| c.select_expr()).collect::<Vec<_>>().join(", ")
        };
        let mut sql = format!("SELECT {select} FROM {}", self.relation);
        let conditions: Vec<String> = filters.iter().filter_map(|f| self.filter_sql(f)).collect();
        if !conditions.is_empty() {
            sql.push_str(" WHERE ");
            sql.push_str(&conditions.join(" AND "));
        }
        if let Some(n) = limit {
            sql.push_str(&format!(" LIMIT {n}"));
        }
        sql
    }

    /// `filter` in PostgreSQL's SQL with exactly DataFusion's meaning, or
    /// `None` when there is no such translation (see the module docs).
    fn filter_sql(&self, filter: &Expr) -> Option<String> {
        match filter {
            Expr::BinaryExpr(BinaryExpr { left, op, right }) => match op {
                Operator::And | Operator::Or => {
                    let word = if *op == Operator::And { "AND" } else { "OR" };
                    Some(format!(
                        "({} {word} {})",
                        self.filter_sql(left)?,
                        self.filter_sql(right)?
                    ))
                }
                Operator::Eq | Operator::NotEq | Operator::Lt | Operator::LtEq | Operator::Gt | Operator::GtEq => {
                    if let (Some(column), Some(value)) = (self.operand(left), literal(right)) {
                        self.comparison(column, *op, value)
                    } else if let (Some(value), Some(column)) = (literal(left), self.operand(right)) {
                        self.comparison(column, op.swap()?, value)
                    } else {
                        None
                    }
                }
                _ => None,
            },
            Expr::Not(inner) => Some(format!("(NOT {})", self.filter_sql(inner)?)),
            Expr::IsNull(inner) => Some(format!("({} IS NULL)", self.null_operand(inner)?)),
            Expr::IsNotNull(inner) => Some(format!("({} IS NOT NULL)", self.null_operand(inner)?)),
            Expr::InList(InList { expr, list, negated }) => {
                let column = self.operand(expr)?;
                if list.is_empty() {
                    return None;
                }
                let lhs = self.comparable(column, false)?;
                let values = list
                    .iter()
                    .map(|v| literal_sql(column.kind, literal(v)?))
                    .collect::<Option<Vec<_>>>()?;
                let not = if *negated { "NOT " } else { "" };
                Some(format!("({lhs} {not}IN ({}))", values.join(", ")))
            }
            Expr::Between(Between {
                expr,
                negated,
                low,
                high,
            }) => {
                let column = self.operand(expr)?;
                let low = self.comparison(column, Operator::GtEq, literal(low)?)?;
                let high = self.comparison(column, Operator::LtEq, literal(high)?)?;
                let both = format!("({low} AND {high})");
                Some(if *negated { format!("(NOT {both})") } else { both })
            }
            _ => None,
        }
    }

    /// A column, possibly under a cast that keeps every value (a wider
    /// integer or decimal type), so comparing it is comparing the column.
    fn operand(&self, e: &Expr) -> Option<&PgColumn> {
        match e {
            Expr::Column(c) => self.columns.iter().find(|col| col.name == c.name),
            Expr::Cast(Cast { expr, field }) => {
                let column = self.operand(expr)?;
                let to = field.data_type();
                let keeps_values = match (column.kind, to) {
                    (Kind::Int2, DataType::Int16 | DataType::Int32 | DataType::Int64) => true,
                    (Kind::Int4, DataType::Int32 | DataType::Int64) => true,
                    (Kind::Int8, DataType::Int64) => true,
                    (Kind::Decimal { precision, scale }, DataType::Decimal128(p, s)) => {
                        *s >= scale && i16::from(*p) - i16::from(*s) >= i16::from(precision) - i16::from(scale)
                    }
                    _ => false,
                };
                keeps_values.then_some(column)
            }
            _ => None,
        }
    }

    /// What `IS [NOT] NULL` tests: the column itself, or for a column read
    /// through `::text` that text (a composite value of NULLs `IS NULL`
    /// while its text is not).
    fn null_operand(&self, e: &Expr) -> Option<String> {
        let Expr::Column(c) = e else { return None };
        let column = self.columns.iter().find(|col| col.name == c.name)?;
        Some(if column.kind == Kind::Fallback {
            format!("({})", column.select_expr())
        } else {
            quote_ident(&column.name)
        })
    }

    /// The column's side of a comparison, when its kind compares in
    /// PostgreSQL exactly as in Arrow (`ordered`: with `<`, `<=`, `>`, `>=`
    /// rather than only `=`, `<>`).
    fn comparable(&self, column: &PgColumn, ordered: bool) -> Option<String> {
        let name = quote_ident(&column.name);
        match column.kind {
            Kind::Bool | Kind::Int2 | Kind::Int4 | Kind::Int8 | Kind::Date | Kind::Decimal { .. } => Some(name),
            Kind::Float4 | Kind::Float8 if !ordered => Some(name),
            Kind::Text if !ordered || self.utf8 => Some(format!("{name} COLLATE \"C\"")),
            Kind::Name if !ordered || self.utf8 => Some(format!("{name}::text COLLATE \"C\"")),
            _ => None,
        }
    }

    fn comparison(&self, column: &PgColumn, op: Operator, value: &ScalarValue) -> Option<String> {
        let ordered = !matches!(op, Operator::Eq | Operator::NotEq);
        let lhs = self.comparable(column, ordered)?;
        let rhs = literal_sql(column.kind, value)?;
        let op = match op {
            Operator::Eq => "=",
            Operator::NotEq => "<>",
            Operator::Lt => "<",
            Operator::LtEq => "<=",
            Operator::Gt => ">",
            Operator::GtEq => ">=",
            _ => return None,
        };
        Some(format!("({lhs} {op} {rhs})"))
    }
}

fn literal(e: &Expr) -> Option<&ScalarValue> {
    match e {
        Expr::Literal(v, _) if !v.is_null() => Some(v),
        _ => None,
    }
}

/// A non-null literal as PostgreSQL SQL of a type that compares with a
/// column of `kind` exactly as Arrow compares the values.
fn literal_sql(kind: Kind, value: &ScalarValue) -> Option<String> {
    use ScalarValue as V;
    let integer = |v: &ScalarValue| -> Option<i128> {
        Some(match v {
            V::Int8(Some(x)) => i128::from(*x),
            V::Int16(Some(x)) => i128::from(*x),
            V::Int32(Some(x)) => i128::from(*x),
            V::Int64(Some(x)) => i128::from(*x),
            V::UInt8(Some(x)) => i128::from(*x),
            V::UInt16(Some(x)) => i128::from(*x),
            V::UInt32(Some(x)) => i128::from(*x),
            V::UInt64(Some(x)) => i128::from(*x),
            _ => return None,
        })
    };
    match (kind, value) {
        (Kind::Bool, V::Boolean(Some(b))) => Some(if *b { "TRUE" } else { "FALSE" }.to_string()),
        (Kind::Int2 | Kind::Int4 | Kind::Int8, v) => integer(v).map(|x| format!("({x})")),
        // Only finite non-zero values: there PostgreSQL's equality and
        // Arrow's total order agree (see the module docs).
        (Kind::Float4, V::Float32(Some(x))) if x.is_finite() && *x != 0.0 => Some(format!("'{x:?}'::float4")),
        (Kind::Float8, V::Float64(Some(x))) if x.is_finite() && *x != 0.0 => Some(format!("'{x:?}'::float8")),
        (Kind::Text | Kind::Name, V::Utf8(Some(s)) | V::LargeUtf8(Some(s)) | V::Utf8View(Some(s))) => string_literal(s),
        // Within PostgreSQL's date range, so the arithmetic cannot fail.
        (Kind::Date, V::Date32(Some(days))) if days.unsigned_abs() <= 2_400_000 => {
            Some(format!("(DATE '1970-01-01' + ({days}))"))
        }
        (Kind::Decimal { .. }, V::Decimal128(Some(x), _, scale)) => Some(format!("({})", decimal_text(*x, *scale))),
        (Kind::Decimal { .. }, v) => integer(v).map(|x| format!("({x})")),
        _ => None,
    }
}

/// A standard SQL string literal. Strings with a backslash (which would
/// escape under `standard_conforming_strings = off`) or NUL (which
/// PostgreSQL text cannot hold) are not translated.
fn string_literal(s: &str) -> Option<String> {
    if s.contains(['\\', '\0']) {
        return None;
    }
    Some(format!("'{}'", s.replace('\'', "''")))
}

/// `value × 10^-scale` in plain decimal notation.
fn decimal_text(value: i128, scale: i8) -> String {
    let sign = if value < 0 { "-" } else { "" };
    let digits = value.unsigned_abs().to_string();
    if scale <= 0 {
        if value == 0 {
            return "0".into();
        }
        return format!("{sign}{digits}{}", "0".repeat(usize::from(scale.unsigned_abs())));
    }
    let scale = usize::from(scale.unsigned_abs());
    let digits = format!("{digits:0>width$}", width = scale + 1);
    let (int, frac) = digits.split_at(digits.len() - scale);
    format!("{sign}{int}.{frac}")
}

#[async_trait::async_trait]
impl TableProvider for PgTable {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        self.table_type
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> datafusion::error::Result<Vec<TableProviderFilterPushDown>> {
        // Inexact, not Exact: DataFusion filters again, so a pushed filter
        // can cost transfer but never an answer.
        Ok(filters
            .iter()
            .map(|f| match self.filter_sql(f) {
                Some(_) => TableProviderFilterPushDown::Inexact,
                None => TableProviderFilterPushDown::Unsupported,
            })
            .collect())
    }

    async fn scan(
        &self,
        _state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> datafusion::error::Result<Arc<dyn ExecutionPlan>> {
        let indices: Vec<usize> = match projection {
            Some(p) => p.clone(),
            None => (0..self.columns.len()).collect(),
        };
        if let Some(bad) = indices.iter().find(|&&i| i >= self.columns.len()) {
            return Err(DataFusionError::Plan(format!(
                "{}: projection index {bad} is beyond its {} columns",
                self.table,
                self.columns.len()
            )));
        }
        let schema = Arc::new(self.schema.project(&indices)?);
        let partition = PgScan {
            config: self.config.clone(),
            table: self.table.clone(),
            sql: self.scan_sql(Some(&indices), filters, limit),
            columns: indices.iter().map(|&i| self.columns[i].clone()).collect(),
            schema: schema.clone(),
        };
        let exec = StreamingTableExec::try_new(schema, vec![Arc::new(partition)], None, [], false, limit)?;
        Ok(Arc::new(exec))
    }
}

/// One scan: a connection and a query, streamed as record batches. Its
/// `Debug` shows the pushed SQL.
#[derive(Clone)]
struct PgScan {
    config: Arc<Config>,
    table: String,
    sql: String,
    /// The projected columns, in output order.
    columns: Vec<PgColumn>,
    schema: SchemaRef,
}

impl std::fmt::Debug for PgScan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgScan")
            .field("table", &self.table)
            .field("sql", &self.sql)
            .finish_non_exhaustive()
    }
}

impl PgScan {
    async fn open(self) -> Result<impl Stream<Item = Result<RecordBatch>> + Send> {
        let client = connect(&self.config).await?;
        let rows = client
            .query_raw(self.sql.as_str(), no_params())
            .await
            .map_err(|e| query_error(&self.table, &e))?;
        let batch = BatchBuilder::new(self.schema.clone(), &self.columns)?;
        // The client rides along: dropping it would end the connection.
        let state = (client, Box::pin(rows.fuse()), batch, self.table);
        Ok(futures::stream::try_unfold(
            state,
            |(client, mut rows, mut batch, table)| async move {
                let next = next_batch(&table, &mut rows, &mut batch).await?;
                Ok(next.map(|b| (b, (client, rows, batch, table))))
            },
        ))
    }
}

impl PartitionStream for PgScan {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    fn execute(&self, _ctx: Arc<TaskContext>) -> SendableRecordBatchStream {
        let scan = self.clone();
        let batches = futures::stream::once(scan.open())
            .try_flatten()
            .map_err(|e| DataFusionError::External(Box::new(e)));
        Box::pin(RecordBatchStreamAdapter::new(self.schema.clone(), batches))
    }
}

/// How a PostgreSQL column is read and what Arrow type it becomes; see the
/// table in the module docs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Bool,
    Int2,
    Int4,
    Int8,
    Float4,
    Float8,
    /// `text` and `varchar`.
    Text,
    Name,
    Bpchar,
    Date,
    Timestamp,
    TimestampTz,
    /// `numeric(precision, scale)`, read as text and parsed exactly.
    Decimal {
        precision: u8,
        scale: i8,
    },
    /// `numeric` without a typmod, read as `float8`.
    NumericFloat,
    /// Every other type, read as `::text`.
    Fallback,
}

/// The one type mapping, by the column's type OID and typmod.
fn map_type(oid: u32, typmod: i32) -> Kind {
    if oid == Type::NUMERIC.oid() {
        return numeric_kind(typmod);
    }
    let native = [
        (Type::BOOL, Kind::Bool),
        (Type::INT2, Kind::Int2),
        (Type::INT4, Kind::Int4),
        (Type::INT8, Kind::Int8),
        (Type::FLOAT4, Kind::Float4),
        (Type::FLOAT8, Kind::Float8),
        (Type::TEXT, Kind::Text),
        (Type::VARCHAR, Kind::Text),
        (Type::BPCHAR, Kind::Bpchar),
        (Type::NAME, Kind::Name),
        (Type::DATE, Kind::Date),
        (Type::TIMESTAMP, Kind::Timestamp),
        (Type::TIMESTAMPTZ, Kind::TimestampTz),
    ];
    native
        .into_iter()
        .find(|(t, _)| t.oid() == oid)
        .map_or(Kind::Fallback, |(_, kind)| kind)
}

/// `numeric(p, s)` as Decimal128 where it fits (1 ≤ p ≤ 38, 0 ≤ s ≤ p),
/// text where it does not (still exact), Float64 without a typmod.
fn numeric_kind(typmod: i32) -> Kind {
    // VARHDRSZ + (precision << 16 | scale & 0x7ff), scale sign-extended from
    // 11 bits (PostgreSQL 15 allows negative scales); see numeric.c.
    if typmod < 4 {
        return Kind::NumericFloat;
    }
    let t = typmod - 4;
    let precision = (t >> 16) & 0xffff;
    let scale = ((t & 0x7ff) ^ 1024) - 1024;
    match (u8::try_from(precision), i8::try_from(scale)) {
        (Ok(precision @ 1..=38), Ok(scale)) if scale >= 0 && i32::from(scale) <= i32::from(precision) => {
            Kind::Decimal { precision, scale }
        }
        _ => Kind::Fallback,
    }
}

impl Kind {
    fn data_type(self) -> DataType {
        match self {
            Kind::Bool => DataType::Boolean,
            Kind::Int2 => DataType::Int16,
            Kind::Int4 => DataType::Int32,
            Kind::Int8 => DataType::Int64,
            Kind::Float4 => DataType::Float32,
            Kind::Float8 | Kind::NumericFloat => DataType::Float64,
            Kind::Text | Kind::Name | Kind::Bpchar | Kind::Fallback => DataType::Utf8,
            Kind::Date => DataType::Date32,
            Kind::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, None),
            Kind::TimestampTz => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            Kind::Decimal { precision, scale } => DataType::Decimal128(precision, scale),
        }
    }
}

/// A column as the server describes it.
#[derive(Clone, Debug)]
struct PgColumn {
    name: String,
    /// The server's type as `format_type` writes it, for messages.
    pg_type: String,
    kind: Kind,
    nullable: bool,
}

impl PgColumn {
    fn field(&self) -> Field {
        Field::new(&self.name, self.kind.data_type(), self.nullable)
    }

    /// The expression in the `SELECT` list.
    fn select_expr(&self) -> String {
        let name = quote_ident(&self.name);
        match self.kind {
            Kind::Decimal { .. } | Kind::Fallback => format!("{name}::text"),
            Kind::NumericFloat => format!("{name}::float8"),
            _ => name,
        }
    }

    /// The snapshot's sort keys for this column: after them, rows that tie
    /// send the same bytes for it.
    fn order_keys(&self) -> Vec<String> {
        let name = quote_ident(&self.name);
        match self.kind {
            Kind::Text => vec![format!("{name} COLLATE \"C\"")],
            Kind::Name | Kind::Fallback => vec![format!("{name}::text COLLATE \"C\"")],
            // bpchar equality ignores trailing blanks; their count does not.
            Kind::Bpchar => vec![format!("{name} COLLATE \"C\""), format!("octet_length({name})")],
            // float equality has -0 = 0; their text differs.
            Kind::Float4 | Kind::Float8 => vec![name.clone(), format!("{name}::text COLLATE \"C\"")],
            _ => vec![name],
        }
    }
}

/// `SELECT` of every column in canonical order.
fn snapshot_sql(relation: &str, columns: &[PgColumn]) -> String {
    let select: Vec<String> = columns.iter().map(PgColumn::select_expr).collect();
    let order: Vec<String> = columns
        .iter()
        .flat_map(PgColumn::order_keys)
        .map(|k| format!("{k} NULLS FIRST"))
        .collect();
    format!(
        "SELECT {} FROM {relation} ORDER BY {}",
        select.join(", "),
        order.join(", ")
    )
}

/// What the catalog says about the table.
struct Relation {
    columns: Vec<PgColumn>,
    table_type: TableType,
    utf8: bool,
}

impl Relation {
    fn schema(&self) -> SchemaRef {
        Arc::new(Schema::new(
            self.columns.iter().map(PgColumn::field).collect::<Vec<_>>(),
        ))
    }
}

/// The table's columns from `pg_attribute`, the name resolved as the
/// server's `search_path` resolves it (`to_regclass`).
async fn describe(tx: &Transaction<'_>, relation: &str, table: &str) -> Result<Relation> {
    const SQL: &str = "SELECT c.relkind::text, a.attname::text, a.atttypid, a.atttypmod, a.attnotnull, \
            pg_catalog.format_type(a.atttypid, a.atttypmod), \
            pg_catalog.current_setting('server_encoding') \
        FROM pg_catalog.pg_class c \
        LEFT JOIN pg_catalog.pg_attribute a \
            ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped \
        WHERE c.oid = pg_catalog.to_regclass($1) \
        ORDER BY a.attnum";
    let missing = || Error::Unavailable(format!("no table or view {table} on the server"));
    let rows = match tx.query(SQL, &[&relation]).await {
        Ok(rows) => rows,
        // Older servers raise for a schema that does not exist.
        Err(e) if e.code() == Some(&tokio_postgres::error::SqlState::INVALID_SCHEMA_NAME) => return Err(missing()),
        Err(e) => return Err(query_error(table, &e)),
    };
    let first = rows.first().ok_or_else(missing)?;
    let get_err = |e: tokio_postgres::Error| query_error(table, &e);
    let relkind: String = first.try_get(0).map_err(get_err)?;
    let table_type = match relkind.as_str() {
        "r" | "p" | "f" => TableType::Base,
        "v" | "m" => TableType::View,
        other => {
            return Err(Error::Unavailable(format!(
                "{table} is not a table or view (relkind {other:?})"
            )))
        }
    };
    let encoding: String = first.try_get(6).map_err(get_err)?;
    let mut columns = Vec::with_capacity(rows.len());
    for row in &rows {
        let Some(name): Option<String> = row.try_get(1).map_err(get_err)? else {
            continue; // a table without columns
        };
        let oid: u32 = row.try_get(2).map_err(get_err)?;
        let typmod: i32 = row.try_get(3).map_err(get_err)?;
        let not_null: bool = row.try_get(4).map_err(get_err)?;
        let pg_type: String = row.try_get(5).map_err(get_err)?;
        columns.push(PgColumn {
            name,
            pg_type,
            kind: map_type(oid, typmod),
            nullable: !not_null,
        });
    }
    if columns.is_empty() {
        return Err(Error::Unavailable(format!("{table} has no columns")));
    }
    Ok(Relation {
        columns,
        table_type,
        utf8: encoding == "UTF8",
    })
}

/// Connects and drives the connection on its own task.
async fn connect(config: &Config) -> Result<Client> {
    let (client, connection) = config
        .connect(NoTls)
        .await
        .map_err(|e| Error::Postgres(format!("connecting to {}: {}", server_name(config), error_chain(&e))))?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!("PostgreSQL connection ended: {}", error_chain(&e));
        }
    });
    Ok(client)
}

async fn read_only_transaction(client: &mut Client) -> Result<Transaction<'_>> {
    client
        .build_transaction()
        .isolation_level(IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await
        .map_err(|e| Error::Postgres(format!("starting a read-only transaction: {}", error_chain(&e))))
}

fn no_params() -> std::iter::Empty<&'static (dyn tokio_postgres::types::ToSql + Sync)> {
    std::iter::empty()
}

/// Host and port of the first host, for messages (never the password).
fn server_name(config: &Config) -> String {
    let host = match config.get_hosts().first() {
        Some(Host::Tcp(h)) => h.clone(),
        Some(Host::Unix(p)) => p.display().to_string(),
        None => "?".into(),
    };
    match config.get_ports().first() {
        Some(port) => format!("{host}:{port}"),
        None => format!("{host}:5432"),
    }
}

fn query_error(table: &str, e: &tokio_postgres::Error) -> Error {
    Error::Postgres(format!("reading {table}: {}", error_chain(e)))
}

/// An error and its causes, one after another (`tokio_postgres::Error`'s own
/// `Display` shows only its kind, e.g. "db error").
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}

/// `name` or `schema.name`, each part checked and double-quoted.
fn quote_relation(table: &str) -> Result<String> {
    let parts: Vec<&str> = table.split('.').collect();
    if parts.len() > 2 || !parts.iter().all(|p| is_identifier(p)) {
        let shown: String = table.chars().take(80).collect();
        return Err(Error::BadSource(format!(
            "table {shown:?} must be name or schema.name, each part a letter or _ followed by letters, \
             digits, _ or $, at most {MAX_IDENTIFIER} bytes"
        )));
    }
    Ok(parts.iter().map(|p| quote_ident(p)).collect::<Vec<_>>().join("."))
}

fn is_identifier(s: &str) -> bool {
    let mut bytes = s.bytes();
    s.len() <= MAX_IDENTIFIER
        && bytes.next().is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'$')
}

/// A double-quoted SQL identifier (inner quotes doubled).
fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Pulls rows into `batch` until it holds [`BATCH_ROWS`] or the rows end;
/// `None` once there are no more rows. The row stream is fused: a
/// `RowStream` polled again after its end reports a closed connection.
async fn next_batch(
    table: &str,
    rows: &mut Pin<Box<Fuse<RowStream>>>,
    batch: &mut BatchBuilder,
) -> Result<Option<RecordBatch>> {
    while let Some(row) = rows.try_next().await.map_err(|e| query_error(table, &e))? {
        batch.push(&row)?;
        if batch.rows == BATCH_ROWS {
            return batch.finish().map(Some);
        }
    }
    if batch.rows == 0 {
        Ok(None)
    } else {
        batch.finish().map(Some)
    }
}

/// Rows into one record batch at a time.
struct BatchBuilder {
    schema: SchemaRef,
    columns: Vec<(String, ColumnBuilder)>,
    rows: usize,
}

impl BatchBuilder {
    fn new(schema: SchemaRef, columns: &[PgColumn]) -> Result<BatchBuilder> {
        let columns = columns
            .iter()
            .map(|c| Ok((c.name.clone(), ColumnBuilder::new(c.kind)?)))
            .collect::<Result<Vec<_>>>()?;
        Ok(BatchBuilder {
            schema,
            columns,
            rows: 0,
        })
    }

    fn push(&mut self, row: &Row) -> Result<()> {
        for (i, (name, column)) in self.columns.iter_mut().enumerate() {
            column
                .append(row, i)
                .map_err(|e| Error::Read(format!("column {name:?}: {e}")))?;
        }
        self.rows += 1;
        Ok(())
    }

    fn finish(&mut self) -> Result<RecordBatch> {
        let arrays: Vec<ArrayRef> = self.columns.iter_mut().map(|(_, c)| c.finish()).collect();
        let options = RecordBatchOptions::new().with_row_count(Some(self.rows));
        self.rows = 0;
        RecordBatch::try_new_with_options(self.schema.clone(), arrays, &options).map_err(|e| Error::Read(e.to_string()))
    }
}

enum ColumnBuilder {
    Boolean(BooleanBuilder),
    Int16(Int16Builder),
    Int32(Int32Builder),
    Int64(Int64Builder),
    Float32(Float32Builder),
    Float64(Float64Builder),
    Utf8(StringBuilder),
    Date32(Date32Builder),
    Timestamp(TimestampMicrosecondBuilder),
    Decimal(Decimal128Builder, i8),
}

type DecodeError = Box<dyn std::error::Error + Send + Sync>;

impl ColumnBuilder {
    fn new(kind: Kind) -> Result<ColumnBuilder> {
        Ok(match kind {
            Kind::Bool => ColumnBuilder::Boolean(BooleanBuilder::new()),
            Kind::Int2 => ColumnBuilder::Int16(Int16Builder::new()),
            Kind::Int4 => ColumnBuilder::Int32(Int32Builder::new()),
            Kind::Int8 => ColumnBuilder::Int64(Int64Builder::new()),
            Kind::Float4 => ColumnBuilder::Float32(Float32Builder::new()),
            Kind::Float8 | Kind::NumericFloat => ColumnBuilder::Float64(Float64Builder::new()),
            Kind::Text | Kind::Name | Kind::Bpchar | Kind::Fallback => ColumnBuilder::Utf8(StringBuilder::new()),
            Kind::Date => ColumnBuilder::Date32(Date32Builder::new()),
            Kind::Timestamp => ColumnBuilder::Timestamp(TimestampMicrosecondBuilder::new()),
            Kind::TimestampTz => ColumnBuilder::Timestamp(TimestampMicrosecondBuilder::new().with_timezone("UTC")),
            Kind::Decimal { precision, scale } => ColumnBuilder::Decimal(
                Decimal128Builder::new()
                    .with_precision_and_scale(precision, scale)
                    .map_err(|e| Error::Read(e.to_string()))?,
                scale,
            ),
        })
    }

    fn append(&mut self, row: &Row, i: usize) -> Result<(), String> {
        let get_err = |e: tokio_postgres::Error| error_chain(&e);
        match self {
            ColumnBuilder::Boolean(b) => b.append_option(row.try_get::<_, Option<bool>>(i).map_err(get_err)?),
            ColumnBuilder::Int16(b) => b.append_option(row.try_get::<_, Option<i16>>(i).map_err(get_err)?),
            ColumnBuilder::Int32(b) => b.append_option(row.try_get::<_, Option<i32>>(i).map_err(get_err)?),
            ColumnBuilder::Int64(b) => b.append_option(row.try_get::<_, Option<i64>>(i).map_err(get_err)?),
            ColumnBuilder::Float32(b) => b.append_option(row.try_get::<_, Option<f32>>(i).map_err(get_err)?),
            ColumnBuilder::Float64(b) => b.append_option(row.try_get::<_, Option<f64>>(i).map_err(get_err)?),
            ColumnBuilder::Utf8(b) => b.append_option(row.try_get::<_, Option<&str>>(i).map_err(get_err)?),
            ColumnBuilder::Date32(b) => {
                let days = row.try_get::<_, Option<PgDate>>(i).map_err(get_err)?;
                b.append_option(days.map(|d| d.to_arrow()).transpose()?);
            }
            ColumnBuilder::Timestamp(b) => {
                let micros = row.try_get::<_, Option<PgTimestamp>>(i).map_err(get_err)?;
                b.append_option(micros.map(|t| t.to_arrow()).transpose()?);
            }
            ColumnBuilder::Decimal(b, scale) => {
                let text = row.try_get::<_, Option<&str>>(i).map_err(get_err)?;
                let value = text
                    .map(|t| parse_decimal(t, *scale).ok_or_else(|| format!("{t:?} is not a decimal of scale {scale}")))
                    .transpose()?;
                b.append_option(value);
            }
        }
        Ok(())
    }

    fn finish(&mut self) -> ArrayRef {
        match self {
            ColumnBuilder::Boolean(b) => ArrayBuilder::finish(b),
            ColumnBuilder::Int16(b) => ArrayBuilder::finish(b),
            ColumnBuilder::Int32(b) => ArrayBuilder::finish(b),
            ColumnBuilder::Int64(b) => ArrayBuilder::finish(b),
            ColumnBuilder::Float32(b) => ArrayBuilder::finish(b),
            ColumnBuilder::Float64(b) => ArrayBuilder::finish(b),
            ColumnBuilder::Utf8(b) => ArrayBuilder::finish(b),
            ColumnBuilder::Date32(b) => ArrayBuilder::finish(b),
            ColumnBuilder::Timestamp(b) => ArrayBuilder::finish(b),
            ColumnBuilder::Decimal(b, _) => ArrayBuilder::finish(b),
        }
    }
}

/// A `date` as sent: days since 2000-01-01 (`i32::MAX`/`MIN`: ±infinity).
struct PgDate(i32);

impl<'a> FromSql<'a> for PgDate {
    fn from_sql(_: &Type, raw: &'a [u8]) -> std::result::Result<PgDate, DecodeError> {
        let bytes: [u8; 4] = raw.try_into()?;
        Ok(PgDate(i32::from_be_bytes(bytes)))
    }

    fn accepts(ty: &Type) -> bool {
        *ty == Type::DATE
    }
}

impl PgDate {
    fn to_arrow(&self) -> Result<i32, String> {
        if self.0 == i32::MAX || self.0 == i32::MIN {
            return Err("an infinite date has no Date32 value".into());
        }
        self.0
            .checked_add(PG_EPOCH_DAYS)
            .ok_or_else(|| "a date beyond Date32's range".to_string())
    }
}

/// A `timestamp` or `timestamptz` as sent: microseconds since 2000-01-01
/// (UTC for `timestamptz`; `i64::MAX`/`MIN`: ±infinity).
struct PgTimestamp(i64);

impl<'a> FromSql<'a> for PgTimestamp {
    fn from_sql(_: &Type, raw: &'a [u8]) -> std::result::Result<PgTimestamp, DecodeError> {
        let bytes: [u8; 8] = raw.try_into()?;
        Ok(PgTimestamp(i64::from_be_bytes(bytes)))
    }

    fn accepts(ty: &Type) -> bool {
        *ty == Type::TIMESTAMP || *ty == Type::TIMESTAMPTZ
    }
}

impl PgTimestamp {
    fn to_arrow(&self) -> Result<i64, String> {
        if self.0 == i64::MAX || self.0 == i64::MIN {
            return Err("an infinite timestamp has no Arrow value".into());
        }
        self.0
            .checked_add(PG_EPOCH_MICROS)
            .ok_or_else(|| "a timestamp beyond Arrow's range".to_string())
    }
}

/// PostgreSQL's text of a numeric (`-12.30`) as an integer count of
/// `10^-scale`, exactly; `None` for NaN, infinities, digits beyond `scale`
/// that are not zero, and overflow.
fn parse_decimal(text: &str, scale: i8) -> Option<i128> {
    let scale = usize::try_from(scale).ok()?;
    let (negative, unsigned) = match text.as_bytes().first()? {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    let (int, frac) = unsigned.split_once('.').unwrap_or((unsigned, ""));
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    if !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit()) {
        return None;
    }
    let (kept, dropped) = frac.split_at(frac.len().min(scale));
    if dropped.bytes().any(|b| b != b'0') {
        return None;
    }
    let mut value: i128 = 0;
    let padding = std::iter::repeat_n(b'0', scale - kept.len());
    for digit in int.bytes().chain(kept.bytes()).chain(padding) {
        value = value.checked_mul(10)?.checked_add(i128::from(digit - b'0'))?;
    }
    Some(if negative { -value } else { value })
}

/// Writes `batches` to `tmp` as an Arrow IPC stream and syncs it.
fn write_ipc_stream(
    tmp: tempfile::NamedTempFile,
    schema: &Schema,
    mut batches: tokio::sync::mpsc::Receiver<RecordBatch>,
) -> Result<tempfile::NamedTempFile> {
    let io = |e: &dyn std::fmt::Display| Error::Read(format!("writing the snapshot: {e}"));
    let mut writer = StreamWriter::try_new(BufWriter::new(tmp.as_file()), schema).map_err(|e| io(&e))?;
    while let Some(batch) = batches.blocking_recv() {
        writer.write(&batch).map_err(|e| io(&e))?;
    }
    writer.finish().map_err(|e| io(&e))?;
    let buffered = writer.into_inner().map_err(|e| io(&e))?;
    buffered.into_inner().map_err(|e| io(e.error()))?;
    tmp.as_file().sync_all().map_err(|e| io(&e))?;
    Ok(tmp)
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::prelude::{col, ident, lit};

    fn column(name: &str, kind: Kind) -> PgColumn {
        PgColumn {
            name: name.into(),
            pg_type: String::new(),
            kind,
            nullable: true,
        }
    }

    fn table() -> PgTable {
        let columns = vec![
            column("id", Kind::Int4),
            column("Name", Kind::Text),
            column(
                "amount",
                Kind::Decimal {
                    precision: 12,
                    scale: 2,
                },
            ),
            column("f", Kind::Float8),
            column("c", Kind::Bpchar),
            column("doc", Kind::Fallback),
            column("d", Kind::Date),
            column("free", Kind::NumericFloat),
        ];
        let schema = Arc::new(Schema::new(columns.iter().map(PgColumn::field).collect::<Vec<_>>()));
        PgTable {
            config: Arc::new(Config::new()),
            table: "public.t".into(),
            relation: "\"public\".\"t\"".into(),
            columns,
            schema,
            utf8: true,
            table_type: TableType::Base,
        }
    }

    #[test]
    fn scan_sql_projects_filters_and_limits() {
        let t = table();
        let filters = [
            col("id").gt(lit(5i32)),
            ident("Name").eq(lit("O'Brien")).or(ident("Name").is_null()),
            col("f").lt(lit(1.5f64)), // a float range: not pushed
        ];
        assert_eq!(
            t.scan_sql(Some(&[1, 2]), &filters, Some(10)),
            "SELECT \"Name\", \"amount\"::text FROM \"public\".\"t\" WHERE (\"id\" > (5)) AND \
             ((\"Name\" COLLATE \"C\" = 'O''Brien') OR (\"Name\" IS NULL)) LIMIT 10"
        );
        assert_eq!(t.scan_sql(Some(&[]), &[], None), "SELECT 1 FROM \"public\".\"t\"");
        assert_eq!(
            t.scan_sql(None, &[], None),
            "SELECT \"id\", \"Name\", \"amount\"::text, \"f\", \"c\", \"doc\"::text, \"d\", \"free\"::float8 \
             FROM \"public\".\"t\""
        );
    }

    #[test]
    fn filters_translate_exactly_or_not_at_all() {
        let t = table();
        let sql = |e: Expr| t.filter_sql(&e);
        assert_eq!(sql(lit(3i64).lt_eq(col("id"))).as_deref(), Some("(\"id\" >= (3))"));
        assert_eq!(sql(col("id").not_eq(lit(-2i32))).as_deref(), Some("(\"id\" <> (-2))"));
        assert_eq!(
            sql(col("id").in_list(vec![lit(1i32), lit(2i32)], true)).as_deref(),
            Some("(\"id\" NOT IN ((1), (2)))")
        );
        assert_eq!(
            sql(!col("id").between(lit(1i32), lit(9i32))).as_deref(),
            Some("(NOT ((\"id\" >= (1)) AND (\"id\" <= (9))))")
        );
        assert_eq!(
            sql(col("amount").eq(Expr::Literal(ScalarValue::Decimal128(Some(-1205), 12, 2), None))).as_deref(),
            Some("(\"amount\" = (-12.05))")
        );
        assert_eq!(
            sql(col("d").gt(Expr::Literal(ScalarValue::Date32(Some(19000)), None))).as_deref(),
            Some("(\"d\" > (DATE '1970-01-01' + (19000)))")
        );
        assert_eq!(
            sql(col("f").eq(lit(2.5f64))).as_deref(),
            Some("(\"f\" = '2.5'::float8)")
        );
        assert_eq!(
            sql(col("doc").is_not_null()).as_deref(),
            Some("((\"doc\"::text) IS NOT NULL)")
        );
        assert_eq!(
            sql(Expr::Cast(Cast::new(Box::new(col("id")), DataType::Int64)).eq(lit(7i64))).as_deref(),
            Some("(\"id\" = (7))")
        );
        // Not translatable: their PostgreSQL meaning differs, or they are not column-vs-literal.
        for e in [
            col("f").gt(lit(1.0f64)),
            col("f").eq(lit(0.0f64)),
            col("f").eq(lit(f64::NAN)),
            col("c").eq(lit("x")),
            col("doc").eq(lit("{}")),
            col("free").eq(lit(1.0f64)),
            ident("Name").eq(lit("a\\b")),
            ident("Name").eq(lit(ScalarValue::Utf8(None))),
            col("id").eq(col("id")),
            col("id").eq(lit("1")),
            Expr::Cast(Cast::new(Box::new(col("id")), DataType::Int16)).eq(lit(7i16)),
            col("id").gt(lit(1i32)).and(col("f").gt(lit(1.0f64))),
        ] {
            assert_eq!(sql(e.clone()), None, "{e}");
        }
        let t = PgTable { utf8: false, ..table() };
        assert!(t.filter_sql(&ident("Name").eq(lit("a"))).is_some());
        assert!(t.filter_sql(&ident("Name").lt(lit("a"))).is_none());
    }

    #[test]
    fn canonical_order_covers_every_column() {
        let t = table();
        assert_eq!(
            snapshot_sql(&t.relation, &t.columns[..5]),
            "SELECT \"id\", \"Name\", \"amount\"::text, \"f\", \"c\" FROM \"public\".\"t\" ORDER BY \
             \"id\" NULLS FIRST, \"Name\" COLLATE \"C\" NULLS FIRST, \"amount\" NULLS FIRST, \"f\" NULLS FIRST, \
             \"f\"::text COLLATE \"C\" NULLS FIRST, \"c\" COLLATE \"C\" NULLS FIRST, octet_length(\"c\") NULLS FIRST"
        );
    }

    #[test]
    fn table_names() {
        assert_eq!(quote_relation("orders").as_deref(), Ok("\"orders\""));
        assert_eq!(quote_relation("Sales.Q$1").as_deref(), Ok("\"Sales\".\"Q$1\""));
        let long = "a".repeat(64);
        for bad in [
            "",
            "a.b.c",
            ".a",
            "a.",
            "1a",
            "a b",
            "x; drop table y",
            "a\"b",
            "é",
            long.as_str(),
        ] {
            assert_eq!(
                quote_relation(bad).map_err(|e| e.code()),
                Err("source.bad_source"),
                "{bad:?}"
            );
        }
        assert!(quote_relation(&"a".repeat(63)).is_ok());
    }

    #[test]
    fn numeric_typmods() {
        let typmod = |p: i32, s: i32| ((p << 16) | (s & 0x7ff)) + 4;
        assert_eq!(numeric_kind(-1), Kind::NumericFloat);
        assert_eq!(
            numeric_kind(typmod(12, 2)),
            Kind::Decimal {
                precision: 12,
                scale: 2
            }
        );
        assert_eq!(
            numeric_kind(typmod(38, 0)),
            Kind::Decimal {
                precision: 38,
                scale: 0
            }
        );
        assert_eq!(numeric_kind(typmod(39, 2)), Kind::Fallback);
        assert_eq!(numeric_kind(typmod(5, -2)), Kind::Fallback);
        assert_eq!(numeric_kind(typmod(2, 5)), Kind::Fallback);
        assert_eq!(map_type(Type::JSON.oid(), -1), Kind::Fallback);
        assert_eq!(map_type(Type::VARCHAR.oid(), 24), Kind::Text);
    }

    #[test]
    fn decimals_parse_exactly() {
        assert_eq!(parse_decimal("1234567890.12", 2), Some(123_456_789_012));
        assert_eq!(parse_decimal("-0.05", 2), Some(-5));
        assert_eq!(parse_decimal("7", 3), Some(7000));
        assert_eq!(parse_decimal("7.100", 1), Some(71));
        assert_eq!(parse_decimal(".5", 1), Some(5));
        assert_eq!(
            parse_decimal("99999999999999999999999999999999999999", 0),
            Some(10i128.pow(38) - 1)
        );
        for bad in ["NaN", "Infinity", "", "-", "1.25", "1e5", "1.2.3", "--1"] {
            assert_eq!(parse_decimal(bad, 1), None, "{bad:?}");
        }
        assert_eq!(decimal_text(-1205, 2), "-12.05");
        assert_eq!(decimal_text(5, 3), "0.005");
        assert_eq!(decimal_text(12, -2), "1200");
        assert_eq!(decimal_text(0, 2), "0.00");
    }

    #[test]
    fn dates_and_timestamps_shift_epochs() {
        assert_eq!(PgDate(0).to_arrow(), Ok(10_957));
        assert_eq!(PgDate(-10_957).to_arrow(), Ok(0));
        assert!(PgDate(i32::MAX).to_arrow().is_err());
        assert_eq!(PgTimestamp(0).to_arrow(), Ok(946_684_800_000_000));
        assert!(PgTimestamp(i64::MIN).to_arrow().is_err());
    }

    #[test]
    fn bad_urls_do_not_echo_passwords() {
        let e = PgSource::new("postgres://u:hunter2@localhost:notaport/db", "t").expect_err("a bad port");
        assert_eq!(e.code(), "source.bad_source");
        assert!(!e.to_string().contains("hunter2"), "{e}");
        let source = PgSource::new("postgres://u:hunter2@localhost/db", "t").expect("a good URL");
        assert!(!format!("{source:?}").contains("hunter2"));
    }
}
