//! SQL over the ledger: the node's own store as Arrow tables for
//! DataFusion, read-only, with the query service's refusals
//! (`liutong_policies::query::ReadOnlySession`).
//!
//! Tables: `parties`, `datasets`, `offers`, `grants`, `access_log`,
//! `notarizations`, `blocks` (columns in [`schemas`]; times are UTC
//! timestamps, digests and ids lower-case hex).
//!
//! The access log and the block headers only grow, so a node keeps them as
//! Arrow batches and, before each query, appends what was committed since
//! (the access log's time-ordered index `a ‖ time ‖ height ‖ digest`
//! gives the new entries; a first build scans the log in key order). The
//! other tables are small and read whole for each query. A caller who may
//! not see everything ([`Scope::Party`]) gets each table already filtered to
//! its rows before DataFusion sees it: a query cannot reach rows that are
//! not in its tables.

use super::Scope;
use crate::access::{corrupt, AccessRecord, INDEX_TAIL};
use crate::datasets::DatasetRecord;
use crate::delivery::Refusal;
use crate::grants::{GrantRecord, OfferRecord};
use crate::machine::{CF_ACCESS_INDEX, CF_ACCESS_LOG, CF_DATASETS, CF_GRANTS, CF_NOTARIZATIONS, CF_OFFERS, CF_PARTIES};
use crate::notary::Notarization;
use crate::party::{Party, Role};
use crate::{Error, Result};
use arrow::array::{
    Array, ArrayRef, BooleanArray, BooleanBuilder, StringArray, StringBuilder, TimestampMillisecondBuilder,
    UInt32Builder, UInt64Builder,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use arrow::record_batch::RecordBatch;
use datafusion::catalog::TableProvider;
use datafusion::datasource::MemTable;
use datafusion::logical_expr::LogicalPlan;
use liutong_core::{CreditCode, Timestamp};
use liutong_ledger::{Ledger, Store};
use liutong_policies::query::{QueryLimits, ReadOnlySession};
use std::sync::{Arc, Mutex};

/// The tables, in the order `liutong audit sql --tables` lists them.
pub const TABLES: [&str; 7] = [
    "parties",
    "datasets",
    "offers",
    "grants",
    "access_log",
    "notarizations",
    "blocks",
];

/// Rows per Arrow batch of the cached tables.
const BATCH_ROWS: usize = 64 * 1024;

fn time_type() -> DataType {
    DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()))
}

fn utf8(name: &str, nullable: bool) -> Field {
    Field::new(name, DataType::Utf8, nullable)
}

fn u64f(name: &str, nullable: bool) -> Field {
    Field::new(name, DataType::UInt64, nullable)
}

fn timef(name: &str, nullable: bool) -> Field {
    Field::new(name, time_type(), nullable)
}

fn boolf(name: &str) -> Field {
    Field::new(name, DataType::Boolean, false)
}

/// Each table's schema.
pub fn schema(table: &str) -> Option<SchemaRef> {
    let fields = match table {
        "parties" => vec![
            utf8("credit_code", false),
            utf8("legal_name", false),
            utf8("contact", false),
            utf8("roles", false),
            utf8("status", false),
            utf8("endpoint", false),
            utf8("signing_key", false),
            u64f("registered_height", false),
        ],
        "datasets" => vec![
            utf8("id", false),
            utf8("name", false),
            utf8("provider", false),
            utf8("provider_name", false),
            utf8("status", false),
            Field::new("version", DataType::UInt32, false),
            utf8("title", false),
            utf8("kind", false),
            utf8("media_type", false),
            u64f("size", false),
            u64f("rows", true),
            u64f("registered_height", false),
            timef("registered_at", false),
            timef("updated_at", false),
        ],
        "offers" => vec![
            utf8("dataset", false),
            Field::new("number", DataType::UInt32, false),
            utf8("actions", false),
            utf8("purposes", false),
            u64f("max_uses", true),
            timef("not_after", true),
            utf8("approval", false),
            boolf("withdrawn"),
            u64f("height", false),
        ],
        "grants" => vec![
            utf8("id", false),
            utf8("dataset", false),
            Field::new("offer", DataType::UInt32, false),
            utf8("provider", false),
            utf8("holder", false),
            utf8("status", false),
            utf8("actions", false),
            utf8("purposes", false),
            u64f("uses", false),
            u64f("max_uses", true),
            timef("not_after", true),
            boolf("private"),
            timef("requested_at", false),
            u64f("requested_height", false),
        ],
        "access_log" => vec![
            utf8("request", false),
            utf8("tx_id", false),
            u64f("height", false),
            timef("logged_at", false),
            timef("served_at", false),
            utf8("dataset", false),
            Field::new("version", DataType::UInt32, false),
            utf8("action", false),
            utf8("provider", false),
            utf8("consumer", true),
            utf8("grant", true),
            boolf("private"),
            utf8("nullifier", true),
            utf8("outcome", false),
            u64f("bytes", false),
            u64f("rows", true),
            utf8("result", false),
            utf8("query", true),
        ],
        "notarizations" => vec![
            utf8("digest", false),
            utf8("tx_id", false),
            u64f("height", false),
            timef("timestamp", false),
            utf8("notary", false),
            utf8("notary_name", false),
            utf8("file_name", true),
            utf8("media_type", true),
            utf8("note", true),
        ],
        "blocks" => vec![
            u64f("height", false),
            timef("timestamp", false),
            u64f("first_tx_index", false),
            u64f("tx_count", false),
            u64f("log_size", false),
            utf8("log_root", false),
            utf8("hash", false),
            utf8("orderer", false),
        ],
        _ => return None,
    };
    Some(Arc::new(Schema::new(fields)))
}

/// Every table's schema, for `liutong audit sql --tables`.
pub fn schemas() -> Vec<(&'static str, SchemaRef)> {
    TABLES.iter().filter_map(|t| schema(t).map(|s| (*t, s))).collect()
}

fn arrow_error(e: arrow::error::ArrowError) -> Error {
    Error::Io(format!("building a ledger table: {e}"))
}

/// A serde enum's name ("listed", "automatic").
fn label<T: serde::Serialize>(v: &T) -> String {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::String(s)) => s,
        _ => String::new(),
    }
}

fn time_builder(n: usize) -> TimestampMillisecondBuilder {
    TimestampMillisecondBuilder::with_capacity(n).with_timezone("UTC")
}

fn to_i64(t: Timestamp) -> i64 {
    i64::try_from(t).unwrap_or(i64::MAX)
}

/// Columns of `access_log`, filled one entry at a time.
struct AccessColumns {
    request: StringBuilder,
    tx_id: StringBuilder,
    height: UInt64Builder,
    logged_at: TimestampMillisecondBuilder,
    served_at: TimestampMillisecondBuilder,
    dataset: StringBuilder,
    version: UInt32Builder,
    action: StringBuilder,
    provider: StringBuilder,
    consumer: StringBuilder,
    grant: StringBuilder,
    private: BooleanBuilder,
    nullifier: StringBuilder,
    outcome: StringBuilder,
    bytes: UInt64Builder,
    rows: UInt64Builder,
    result: StringBuilder,
    query: StringBuilder,
}

impl AccessColumns {
    fn new(n: usize) -> AccessColumns {
        let s = || StringBuilder::with_capacity(n, n * 32);
        AccessColumns {
            request: StringBuilder::with_capacity(n, n * 64),
            tx_id: StringBuilder::with_capacity(n, n * 64),
            height: UInt64Builder::with_capacity(n),
            logged_at: time_builder(n),
            served_at: time_builder(n),
            dataset: s(),
            version: UInt32Builder::with_capacity(n),
            action: StringBuilder::with_capacity(n, n * 8),
            provider: StringBuilder::with_capacity(n, n * 18),
            consumer: StringBuilder::with_capacity(n, n * 18),
            grant: s(),
            private: BooleanBuilder::with_capacity(n),
            nullifier: StringBuilder::new(),
            outcome: StringBuilder::with_capacity(n, n * 14),
            bytes: UInt64Builder::with_capacity(n),
            rows: UInt64Builder::with_capacity(n),
            result: StringBuilder::with_capacity(n, n * 64),
            query: StringBuilder::new(),
        }
    }

    fn push(&mut self, r: &AccessRecord) {
        self.request.append_value(r.request.to_string());
        self.tx_id.append_value(r.tx_id.to_string());
        self.height.append_value(r.height);
        self.logged_at.append_value(to_i64(r.logged_at));
        self.served_at.append_value(to_i64(r.served_at));
        self.dataset.append_value(r.dataset.to_string());
        self.version.append_value(r.version);
        self.action.append_value(&r.action);
        self.provider.append_value(r.provider.as_str());
        self.consumer.append_option(r.consumer.as_ref().map(|c| c.as_str()));
        self.grant.append_option(r.grant.map(|g| g.to_string()));
        self.private.append_value(r.private.is_some());
        self.nullifier
            .append_option(r.private.as_ref().map(|p| p.nullifier.to_string()));
        self.outcome.append_value(r.outcome.as_str());
        self.bytes.append_value(r.bytes);
        self.rows.append_option(r.query.as_ref().map(|q| q.rows));
        self.result.append_value(r.result.to_string());
        self.query.append_option(r.query.as_ref().map(|q| q.query.to_string()));
    }

    fn finish(mut self) -> Result<RecordBatch> {
        let columns: Vec<ArrayRef> = vec![
            Arc::new(self.request.finish()),
            Arc::new(self.tx_id.finish()),
            Arc::new(self.height.finish()),
            Arc::new(self.logged_at.finish()),
            Arc::new(self.served_at.finish()),
            Arc::new(self.dataset.finish()),
            Arc::new(self.version.finish()),
            Arc::new(self.action.finish()),
            Arc::new(self.provider.finish()),
            Arc::new(self.consumer.finish()),
            Arc::new(self.grant.finish()),
            Arc::new(self.private.finish()),
            Arc::new(self.nullifier.finish()),
            Arc::new(self.outcome.finish()),
            Arc::new(self.bytes.finish()),
            Arc::new(self.rows.finish()),
            Arc::new(self.result.finish()),
            Arc::new(self.query.finish()),
        ];
        RecordBatch::try_new(schema("access_log").expect("a table"), columns).map_err(arrow_error)
    }
}

/// Record batches of `entries`, [`BATCH_ROWS`] rows each.
fn access_batches(entries: &[AccessRecord]) -> Result<Vec<RecordBatch>> {
    entries
        .chunks(BATCH_ROWS)
        .map(|chunk| {
            let mut c = AccessColumns::new(chunk.len());
            for r in chunk {
                c.push(r);
            }
            c.finish()
        })
        .collect()
}

/// The growing tables as a node keeps them between queries.
#[derive(Default)]
struct Cached {
    /// `access_log` up to and including the index key tail `access_upto`.
    access: Vec<RecordBatch>,
    access_upto: Option<Vec<u8>>,
    access_rows: usize,
    /// `blocks` up to `blocks_upto`.
    blocks: Vec<RecordBatch>,
    blocks_upto: u64,
}

/// Who runs a query: what it may see, and its roles (for the refusal of
/// rows it can never see).
#[derive(Clone, Debug)]
pub struct Caller {
    pub scope: Scope,
    pub roles: Vec<Role>,
}

impl Caller {
    /// The operator or an auditor.
    pub fn everything() -> Caller {
        Caller {
            scope: Scope::All,
            roles: Vec::new(),
        }
    }
}

/// A node's cache of the growing ledger tables; one per node.
pub struct LedgerTables {
    cached: Mutex<Cached>,
    /// Audit queries running at once on this node.
    running: tokio::sync::Semaphore,
}

/// Audit queries a node runs at once; more wait their turn.
const CONCURRENT_QUERIES: usize = 2;

impl Default for LedgerTables {
    fn default() -> LedgerTables {
        LedgerTables {
            cached: Mutex::new(Cached::default()),
            running: tokio::sync::Semaphore::new(CONCURRENT_QUERIES),
        }
    }
}

impl LedgerTables {
    pub fn new() -> LedgerTables {
        LedgerTables::default()
    }

    /// Brings the cached tables up to the store's committed state.
    fn refresh(&self, ledger: &Ledger) -> Result<(Vec<RecordBatch>, Vec<RecordBatch>)> {
        let store = ledger.store();
        let mut c = self
            .cached
            .lock()
            .map_err(|_| Error::Io("the ledger tables' cache was poisoned".into()))?;
        // What was committed since: the time-ordered index's new keys.
        let mut start = vec![b'a'];
        if let Some(upto) = &c.access_upto {
            start.extend_from_slice(upto);
            start.push(0);
        }
        let mut keys = Vec::new();
        let mut last = None;
        store.visit_from(CF_ACCESS_INDEX, &start, |k, _| {
            if k.first() != Some(&b'a') || k.len() != 1 + INDEX_TAIL {
                return Ok(false);
            }
            keys.push(k[1 + 16..].to_vec());
            last = Some(k[1..].to_vec());
            Ok(true)
        })?;
        if let Some(last) = last {
            if keys.len() > FULL_REBUILD.max(c.access_rows / 4) {
                // Many new entries (a first build, or a long pause): one pass
                // over the log in key order beats as many point reads.
                let (batches, rows) = rebuild_access(store, &last)?;
                c.access = batches;
                c.access_rows = rows;
            } else {
                let mut entries = Vec::with_capacity(keys.len());
                for v in store.multi_get(CF_ACCESS_LOG, &keys)? {
                    entries.push(borsh::from_slice::<AccessRecord>(&v.ok_or_else(corrupt)?).map_err(|_| corrupt())?);
                }
                // Every fallible step before the cache changes.
                c.access = appended(&c.access, access_batches(&entries)?, "access_log")?;
                c.access_rows += entries.len();
            }
            c.access_upto = Some(last);
        }
        let head = ledger.height();
        if head > c.blocks_upto {
            let mut added = Vec::new();
            let mut b = BlockColumns::new((head - c.blocks_upto) as usize);
            for h in c.blocks_upto + 1..=head {
                b.push(&ledger.header(h)?.header);
                if b.len() == BATCH_ROWS {
                    let full = std::mem::replace(&mut b, BlockColumns::new(BATCH_ROWS));
                    added.push(full.finish()?);
                }
            }
            if b.len() > 0 {
                added.push(b.finish()?);
            }
            c.blocks = appended(&c.blocks, added, "blocks")?;
            c.blocks_upto = head;
        }
        Ok((c.access.clone(), c.blocks.clone()))
    }

    /// Builds the tables ahead of the first query (a node does this when
    /// it starts, on a blocking thread).
    pub fn warm(&self, ledger: &Ledger) -> Result<()> {
        self.refresh(ledger).map(|_| ())
    }

    /// Entries in the cached `access_log` (for the benchmark's report).
    pub fn access_rows(&self) -> usize {
        self.cached.lock().map(|c| c.access_rows).unwrap_or(0)
    }

    /// The tables as `scope` may see them, at the store's committed state.
    pub fn tables(
        &self,
        ledger: &Ledger,
        scope: &Scope,
        now: Timestamp,
    ) -> Result<Vec<(String, Arc<dyn TableProvider>)>> {
        let (access, blocks) = self.refresh(ledger)?;
        let store = ledger.store();
        let mine = |batches: Vec<RecordBatch>, columns: &[&str]| -> Result<Vec<RecordBatch>> {
            match scope {
                Scope::All => Ok(batches),
                Scope::Party(me) => batches.iter().map(|b| only_rows_of(b, columns, me.as_str())).collect(),
            }
        };
        let mut out: Vec<(String, Arc<dyn TableProvider>)> = Vec::new();
        let mut add = |name: &str, batches: Vec<RecordBatch>| -> Result<()> {
            let schema = schema(name).expect("a table");
            // Two partitions so both cores scan.
            let mut parts = vec![Vec::new(), Vec::new()];
            for (i, b) in batches.into_iter().enumerate() {
                parts[i % 2].push(b);
            }
            let table = MemTable::try_new(schema, parts).map_err(|e| Error::Io(format!("ledger table {name}: {e}")))?;
            out.push((name.to_string(), Arc::new(table)));
            Ok(())
        };
        add("parties", vec![parties(store)?])?;
        add("datasets", vec![datasets(store)?])?;
        add("offers", vec![offers(store)?])?;
        add("grants", mine(vec![grants(store, now)?], &["provider", "holder"])?)?;
        add("access_log", mine(access, &["provider", "consumer"])?)?;
        add("notarizations", mine(vec![notarizations(store)?], &["notary"])?)?;
        add("blocks", blocks)?;
        Ok(out)
    }

    /// Plans and runs `sql` over the tables `scope` may see; answers the
    /// result as one Arrow IPC stream and its row count. Building the
    /// tables and planning run on a blocking thread; at most
    /// [`CONCURRENT_QUERIES`] run at once.
    pub async fn run(
        self: &Arc<Self>,
        ledger: &Arc<Ledger>,
        caller: &Caller,
        sql: &str,
        limits: QueryLimits,
        max_result_bytes: u64,
        now: Timestamp,
    ) -> Result<(Vec<u8>, u64)> {
        let _turn = self
            .running
            .acquire()
            .await
            .map_err(|_| Error::Io("the audit service is stopping".into()))?;
        let (me, ledger, sql) = (self.clone(), ledger.clone(), sql.to_string());
        let Caller { scope, roles } = caller.clone();
        let (session, plan) = tokio::task::spawn_blocking(move || -> Result<_> {
            let tables = me.tables(&ledger, &scope, now)?;
            let session = ReadOnlySession::new(tables, limits).map_err(|r| Refusal::new(r.code, r.message))?;
            let plan = futures::executor::block_on(session.plan(&sql)).map_err(|r| Refusal::new(r.code, r.message))?;
            if let Scope::Party(caller) = &scope {
                outright_request_for_others(&plan, caller, &roles)?;
            }
            Ok((session, plan))
        })
        .await
        .map_err(|e| Error::Io(format!("planning the query: {e}")))??;
        crate::serve::query::run_to_ipc(session.context(), plan, max_result_bytes)
            .await
            .map_err(|f| {
                tracing::warn!(code = f.refusal.code, detail = %f.detail, "an audit query failed while it ran");
                f.refusal.into()
            })
    }
}

/// Party columns of the restricted tables, and the role under which a
/// restricted caller may see rows naming another party in them: a
/// provider sees other consumers' uses of its datasets and the grants it
/// gave others; a consumer sees the uses and grants of other providers'
/// datasets it took. A notarization is only ever its notary's.
const PARTY_COLUMNS: [(&str, &str, Option<Role>); 5] = [
    ("access_log", "consumer", Some(Role::Provider)),
    ("access_log", "provider", Some(Role::Consumer)),
    ("grants", "holder", Some(Role::Provider)),
    ("grants", "provider", Some(Role::Consumer)),
    ("notarizations", "notary", None),
];

/// Refuses a restricted caller's query that asks outright for rows it can
/// never see: a filter `column = 'code'` on a party column of `access_log`,
/// `grants` or `notarizations` naming another party, where the caller's
/// roles admit no such row. The refusal depends on the query and the
/// caller alone, never on the data, so it tells nothing; any other way of
/// asking finds no such rows, since they are not in the caller's tables.
fn outright_request_for_others(plan: &LogicalPlan, me: &CreditCode, roles: &[Role]) -> Result<()> {
    use datafusion::common::tree_node::TreeNodeRecursion;
    use datafusion::logical_expr::{BinaryExpr, Expr, Operator};
    use datafusion::scalar::ScalarValue;
    // Which ledger table each name in the plan (a table or an alias) reads.
    let mut tables: std::collections::HashMap<String, String> = std::collections::HashMap::new();
    let _ = plan.apply_with_subqueries(|node| {
        match node {
            LogicalPlan::TableScan(t) => {
                tables.insert(t.table_name.table().to_string(), t.table_name.table().to_string());
            }
            LogicalPlan::SubqueryAlias(a) => {
                if let LogicalPlan::TableScan(t) = a.input.as_ref() {
                    tables.insert(a.alias.table().to_string(), t.table_name.table().to_string());
                }
            }
            _ => {}
        }
        Ok(TreeNodeRecursion::Continue)
    });
    let mut refusal = None;
    let _ = plan.apply_with_subqueries(|node| {
        let LogicalPlan::Filter(f) = node else {
            return Ok(TreeNodeRecursion::Continue);
        };
        for conjunct in datafusion::logical_expr::utils::split_conjunction(&f.predicate) {
            let Expr::BinaryExpr(BinaryExpr { left, op: Operator::Eq, right }) = conjunct else {
                continue;
            };
            let (column, value) = match (left.as_ref(), right.as_ref()) {
                (Expr::Column(c), Expr::Literal(v, _)) | (Expr::Literal(v, _), Expr::Column(c)) => (c, v),
                _ => continue,
            };
            let (ScalarValue::Utf8(Some(code)) | ScalarValue::LargeUtf8(Some(code)) | ScalarValue::Utf8View(Some(code))) =
                value
            else {
                continue;
            };
            let Some(table) = column.relation.as_ref().and_then(|r| tables.get(r.table())) else {
                continue;
            };
            let Some((_, _, unless)) = PARTY_COLUMNS
                .iter()
                .find(|(t, c, _)| t == table && *c == column.name)
            else {
                continue;
            };
            if code.trim() != me.as_str() && !unless.is_some_and(|role| roles.contains(&role)) {
                refusal = Some(Refusal::new(
                    "audit.not_visible",
                    format!(
                        "the query asks for rows of {table} whose {} is {code:?}; you see the rows your party {me} is a party to",
                        column.name
                    ),
                ));
                return Ok(TreeNodeRecursion::Stop);
            }
        }
        Ok(TreeNodeRecursion::Continue)
    });
    refusal.map_or(Ok(()), |r| Err(r.into()))
}

/// `batches` and then `added`; once more than 16 small batches trail, they
/// become one (so the many small appends of a busy node stay few batches;
/// full ones are never merged, which bounds a batch well below Arrow's
/// 2 GiB string offsets).
fn appended(batches: &[RecordBatch], added: Vec<RecordBatch>, table: &str) -> Result<Vec<RecordBatch>> {
    let mut out = batches.to_vec();
    out.extend(added);
    let small = out.iter().rev().take_while(|b| b.num_rows() < BATCH_ROWS).count();
    if small > 16 {
        let tail = out.split_off(out.len() - small);
        let merged = arrow::compute::concat_batches(&schema(table).expect("a table"), &tail).map_err(arrow_error)?;
        out.push(merged);
    }
    Ok(out)
}

/// New entries past which the cache is rebuilt from one scan of the log.
const FULL_REBUILD: usize = 20_000;

/// `access_log` from one pass over the log in key order: every entry at or
/// before the index tail `upto` (later ones are picked up next time), the
/// decoding and column building of each batch on rayon's threads while the
/// scan goes on.
fn rebuild_access(store: &Store, upto: &[u8]) -> Result<(Vec<RecordBatch>, usize)> {
    /// A batch's position in the scan, and the batch with its row count.
    type Built = (usize, Result<(RecordBatch, usize)>);
    let built: Mutex<Vec<Built>> = Mutex::new(Vec::new());
    let build = |n: usize, raw: Vec<Vec<u8>>| {
        let result = (|| {
            let mut c = AccessColumns::new(raw.len());
            let mut rows = 0;
            for v in &raw {
                let r: AccessRecord = borsh::from_slice(v).map_err(|_| corrupt())?;
                if index_tail(&r).as_slice() <= upto {
                    c.push(&r);
                    rows += 1;
                }
            }
            Ok((c.finish()?, rows))
        })();
        if let Ok(mut b) = built.lock() {
            b.push((n, result));
        }
    };
    let scanned = rayon::scope(|scope| {
        let mut chunk = Vec::with_capacity(BATCH_ROWS);
        let mut n = 0;
        let scanned = store.visit_from(CF_ACCESS_LOG, &[], |_, v| {
            chunk.push(v.to_vec());
            if chunk.len() == BATCH_ROWS {
                let full = std::mem::replace(&mut chunk, Vec::with_capacity(BATCH_ROWS));
                let build = &build;
                scope.spawn(move |_| build(n, full));
                n += 1;
            }
            Ok(true)
        });
        if !chunk.is_empty() {
            build(n, chunk);
        }
        scanned
    });
    scanned?;
    let mut parts = built
        .into_inner()
        .map_err(|_| Error::Io("building the access_log table failed".into()))?;
    parts.sort_by_key(|(n, _)| *n);
    let mut batches = Vec::with_capacity(parts.len());
    let mut rows = 0;
    for (_, part) in parts {
        let (batch, n) = part?;
        rows += n;
        batches.push(batch);
    }
    Ok((batches, rows))
}

/// The index tail an entry is listed under (time, height, digest).
fn index_tail(r: &AccessRecord) -> Vec<u8> {
    let mut t = Vec::with_capacity(INDEX_TAIL);
    t.extend_from_slice(&r.logged_at.to_be_bytes());
    t.extend_from_slice(&r.height.to_be_bytes());
    t.extend_from_slice(r.request.as_bytes());
    t
}

/// The rows of `batch` where any of `columns` is `me`.
fn only_rows_of(batch: &RecordBatch, columns: &[&str], me: &str) -> Result<RecordBatch> {
    let mut keep = BooleanArray::from(vec![false; batch.num_rows()]);
    for name in columns {
        let column = batch
            .column_by_name(name)
            .and_then(|c| c.as_any().downcast_ref::<StringArray>())
            .ok_or_else(|| Error::Io(format!("ledger table: no text column {name}")))?;
        let is_me = arrow::compute::kernels::cmp::eq(column, &StringArray::new_scalar(me)).map_err(arrow_error)?;
        // A null (a private entry's consumer) is not the caller.
        let is_me = match is_me.nulls() {
            Some(_) => arrow::compute::prep_null_mask_filter(&is_me),
            None => is_me,
        };
        keep = arrow::compute::or(&keep, &is_me).map_err(arrow_error)?;
    }
    arrow::compute::filter_record_batch(batch, &keep).map_err(arrow_error)
}

/// Every value of a column family, decoded.
fn all<T: borsh::BorshDeserialize>(store: &Store, cf: &str) -> Result<Vec<T>> {
    let mut out = Vec::new();
    store.visit_from(cf, &[], |_, v| {
        out.push(borsh::from_slice(v).map_err(|_| liutong_ledger::Error::Corrupt(format!("{cf}: unreadable entry")))?);
        Ok(true)
    })?;
    Ok(out)
}

fn batch(table: &str, columns: Vec<ArrayRef>) -> Result<RecordBatch> {
    RecordBatch::try_new(schema(table).expect("a table"), columns).map_err(arrow_error)
}

fn strings<'a>(values: impl Iterator<Item = &'a str>) -> ArrayRef {
    Arc::new(StringArray::from_iter_values(values))
}

fn opt_strings(values: impl Iterator<Item = Option<String>>) -> ArrayRef {
    Arc::new(values.collect::<StringArray>())
}

fn u64s(values: impl Iterator<Item = u64>) -> ArrayRef {
    Arc::new(values.collect::<arrow::array::UInt64Array>())
}

fn opt_u64s(values: impl Iterator<Item = Option<u64>>) -> ArrayRef {
    Arc::new(values.collect::<arrow::array::UInt64Array>())
}

fn u32s(values: impl Iterator<Item = u32>) -> ArrayRef {
    Arc::new(values.collect::<arrow::array::UInt32Array>())
}

fn times(values: impl Iterator<Item = Option<Timestamp>>) -> ArrayRef {
    let mut b = time_builder(0);
    for v in values {
        b.append_option(v.map(to_i64));
    }
    Arc::new(b.finish())
}

fn bools(values: impl Iterator<Item = bool>) -> ArrayRef {
    Arc::new(values.map(Some).collect::<BooleanArray>())
}

fn parties(store: &Store) -> Result<RecordBatch> {
    let p: Vec<Party> = all(store, CF_PARTIES)?;
    let roles: Vec<String> = p
        .iter()
        .map(|p| p.profile.roles.iter().map(label).collect::<Vec<_>>().join(","))
        .collect();
    batch(
        "parties",
        vec![
            strings(p.iter().map(|p| p.profile.credit_code.as_str())),
            strings(p.iter().map(|p| p.profile.legal_name.as_str())),
            strings(p.iter().map(|p| p.profile.contact.as_str())),
            strings(roles.iter().map(String::as_str)),
            opt_strings(p.iter().map(|p| Some(label(&p.status)))),
            strings(p.iter().map(|p| p.profile.endpoint.as_str())),
            opt_strings(p.iter().map(|p| Some(p.profile.signing_key.to_string()))),
            u64s(p.iter().map(|p| p.registered_height)),
        ],
    )
}

fn datasets(store: &Store) -> Result<RecordBatch> {
    let d: Vec<DatasetRecord> = all(store, CF_DATASETS)?;
    batch(
        "datasets",
        vec![
            opt_strings(d.iter().map(|d| Some(d.id.to_string()))),
            strings(d.iter().map(|d| d.name.as_str())),
            strings(d.iter().map(|d| d.provider.as_str())),
            strings(d.iter().map(|d| d.provider_name.as_str())),
            opt_strings(d.iter().map(|d| Some(label(&d.status)))),
            u32s(d.iter().map(|d| d.version)),
            strings(d.iter().map(|d| d.description.title.as_str())),
            opt_strings(d.iter().map(|d| Some(label(&d.description.kind)))),
            strings(d.iter().map(|d| d.description.media_type.as_str())),
            u64s(d.iter().map(|d| d.description.commitment.size)),
            opt_u64s(d.iter().map(|d| d.description.table.as_ref().map(|t| t.rows))),
            u64s(d.iter().map(|d| d.registered_height)),
            times(d.iter().map(|d| Some(d.registered_at))),
            times(d.iter().map(|d| Some(d.updated_at))),
        ],
    )
}

fn actions(a: &[liutong_policies::Action]) -> String {
    a.iter().map(|a| a.as_str()).collect::<Vec<_>>().join(",")
}

fn offers(store: &Store) -> Result<RecordBatch> {
    let o: Vec<OfferRecord> = all(store, CF_OFFERS)?;
    batch(
        "offers",
        vec![
            opt_strings(o.iter().map(|o| Some(o.dataset.to_string()))),
            u32s(o.iter().map(|o| o.number)),
            opt_strings(o.iter().map(|o| Some(actions(&o.terms.actions)))),
            opt_strings(o.iter().map(|o| Some(o.terms.purposes.join(",")))),
            opt_u64s(o.iter().map(|o| o.terms.max_uses)),
            times(o.iter().map(|o| o.terms.not_after)),
            opt_strings(o.iter().map(|o| Some(label(&o.approval)))),
            bools(o.iter().map(|o| o.withdrawn)),
            u64s(o.iter().map(|o| o.height)),
        ],
    )
}

fn grants(store: &Store, now: Timestamp) -> Result<RecordBatch> {
    let g: Vec<GrantRecord> = all(store, CF_GRANTS)?;
    let first = |g: &GrantRecord| g.history.first().map(|e| (e.timestamp, e.height)).unwrap_or_default();
    batch(
        "grants",
        vec![
            opt_strings(g.iter().map(|g| Some(g.id.to_string()))),
            opt_strings(g.iter().map(|g| Some(g.dataset.to_string()))),
            u32s(g.iter().map(|g| g.offer)),
            strings(g.iter().map(|g| g.provider.as_str())),
            strings(g.iter().map(|g| g.holder.as_str())),
            strings(g.iter().map(|g| g.state_at(now))),
            opt_strings(g.iter().map(|g| Some(actions(&g.terms.actions)))),
            opt_strings(g.iter().map(|g| Some(g.terms.purposes.join(",")))),
            u64s(g.iter().map(|g| g.uses)),
            opt_u64s(g.iter().map(|g| g.terms.max_uses)),
            times(g.iter().map(|g| g.terms.not_after)),
            bools(g.iter().map(|g| g.private.is_some())),
            times(g.iter().map(|g| Some(first(g).0))),
            u64s(g.iter().map(|g| first(g).1)),
        ],
    )
}

fn notarizations(store: &Store) -> Result<RecordBatch> {
    let n: Vec<Notarization> = all(store, CF_NOTARIZATIONS)?;
    batch(
        "notarizations",
        vec![
            opt_strings(n.iter().map(|n| Some(n.digest.to_string()))),
            opt_strings(n.iter().map(|n| Some(n.tx_id.to_string()))),
            u64s(n.iter().map(|n| n.height)),
            times(n.iter().map(|n| Some(n.timestamp))),
            strings(n.iter().map(|n| n.notary.as_str())),
            strings(n.iter().map(|n| n.notary_name.as_str())),
            opt_strings(n.iter().map(|n| n.file_name.clone())),
            opt_strings(n.iter().map(|n| n.media_type.clone())),
            opt_strings(n.iter().map(|n| n.note.clone())),
        ],
    )
}

/// Columns of `blocks`.
struct BlockColumns {
    height: UInt64Builder,
    timestamp: TimestampMillisecondBuilder,
    first: UInt64Builder,
    count: UInt64Builder,
    size: UInt64Builder,
    root: StringBuilder,
    hash: StringBuilder,
    orderer: StringBuilder,
    rows: usize,
}

impl BlockColumns {
    fn new(n: usize) -> BlockColumns {
        let n = n.min(BATCH_ROWS);
        BlockColumns {
            height: UInt64Builder::with_capacity(n),
            timestamp: time_builder(n),
            first: UInt64Builder::with_capacity(n),
            count: UInt64Builder::with_capacity(n),
            size: UInt64Builder::with_capacity(n),
            root: StringBuilder::with_capacity(n, n * 64),
            hash: StringBuilder::with_capacity(n, n * 64),
            orderer: StringBuilder::with_capacity(n, n * 64),
            rows: 0,
        }
    }

    fn len(&self) -> usize {
        self.rows
    }

    fn push(&mut self, h: &liutong_ledger::BlockHeader) {
        self.height.append_value(h.height);
        self.timestamp.append_value(to_i64(h.timestamp));
        self.first.append_value(h.first_tx_index);
        self.count.append_value(h.tx_count);
        self.size.append_value(h.log_size);
        self.root.append_value(h.log_root.to_string());
        self.hash.append_value(h.hash().to_string());
        self.orderer.append_value(h.orderer.to_string());
        self.rows += 1;
    }

    fn finish(mut self) -> Result<RecordBatch> {
        batch(
            "blocks",
            vec![
                Arc::new(self.height.finish()),
                Arc::new(self.timestamp.finish()),
                Arc::new(self.first.finish()),
                Arc::new(self.count.finish()),
                Arc::new(self.size.finish()),
                Arc::new(self.root.finish()),
                Arc::new(self.hash.finish()),
                Arc::new(self.orderer.finish()),
            ],
        )
    }
}
