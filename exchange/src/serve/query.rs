//! The provider's query service: a consumer's SQL runs on the provider's
//! node, on its own data, under the grant's terms; only the permitted
//! result goes back, sealed to the consumer like a delivery, and its digest
//! goes into the access log with what was enforced.
//!
//! Order of work: the request's checks (as for a delivery), then planning
//! and the rewrite under the terms, then the run with its time and memory
//! limits, and only then the use is counted: a refused or failed query
//! costs the consumer nothing.

use super::{Active, Checked, Pending, Provider};
use crate::access::QueryServed;
use crate::api::AppState;
use crate::delivery::{frame, DeliveryHeader, Refusal, SignedHeader};
use crate::query::{query_digest, QueryCall, ResultHeader, QUERY_CHUNK};
use crate::{Error, Result};
use axum::body::Bytes;
use datafusion::catalog::TableProvider;
use futures::StreamExt;
use liutong_catalog::{DatasetKind, TableFormat};
use liutong_connectors::{Connector, FileSource, PgSource};
use liutong_core::{encode_canonical, now_ms, sha256, sha256_parts};
use liutong_policies::query::{PolicySession, QueryLimits, QueryRefusal};
use liutong_policies::Action;
use std::sync::Arc;
use std::time::Duration;

/// A provider node's limits on the queries it runs (audit SQL included)
/// and on the sealed streams it sends.
#[derive(Clone, Copy, Debug)]
pub struct QueryConfig {
    /// Longest a query may plan, and then run (reading and computing).
    pub timeout: Duration,
    /// Memory DataFusion may reserve for one query.
    pub memory_bytes: usize,
    /// Largest result (as an Arrow IPC stream) sent back.
    pub max_result_bytes: u64,
    /// Queries (and audit SQL) running at once on this node.
    pub concurrent: usize,
    /// Of those, queries one caller may run at once (a party's key; all
    /// private requests, whose keys are one-time, count as one caller).
    pub per_caller: usize,
    /// Longest a sealed stream (a delivery or a query's result) waits for
    /// the consumer to take its next frame before it is cut, so a reader
    /// that stalls cannot hold the node's threads.
    pub write_timeout: Duration,
}

impl Default for QueryConfig {
    fn default() -> QueryConfig {
        QueryConfig {
            timeout: Duration::from_secs(60),
            memory_bytes: 1 << 30,
            max_result_bytes: 256 << 20,
            concurrent: 4,
            per_caller: 2,
            write_timeout: Duration::from_secs(60),
        }
    }
}

impl QueryConfig {
    /// How long the API lets a query request take: planning and running
    /// each within [`QueryConfig::timeout`], then counting the use (a
    /// block) and sealing, so a counted result is never cut off.
    pub fn request_timeout(&self) -> Duration {
        crate::api::REQUEST_TIMEOUT.max(self.timeout * 2 + Duration::from_secs(30))
    }
}

/// Who a running query is counted against.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum QueryCaller {
    /// A party's signing key (a public request's, an audit call's).
    Key(liutong_core::PublicKey),
    /// Every private request: their keys are one-time.
    Private,
}

/// Counts the queries running on a node, in total and per caller, and
/// refuses one past either limit (it does not queue: a caller that is
/// refused asks again later).
pub struct QueryLimiter {
    total: usize,
    per_caller: usize,
    running: std::sync::Mutex<std::collections::HashMap<QueryCaller, usize>>,
}

/// A running query's place; it is freed when dropped.
pub struct QueryTurn {
    limiter: Arc<QueryLimiter>,
    caller: QueryCaller,
}

impl Drop for QueryTurn {
    fn drop(&mut self) {
        let mut running = self.limiter.lock();
        if let Some(n) = running.get_mut(&self.caller) {
            *n -= 1;
            if *n == 0 {
                running.remove(&self.caller);
            }
        }
    }
}

impl QueryLimiter {
    pub fn new(config: &QueryConfig) -> Arc<QueryLimiter> {
        Arc::new(QueryLimiter {
            total: config.concurrent.max(1),
            per_caller: config.per_caller.max(1),
            running: std::sync::Mutex::new(std::collections::HashMap::new()),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<QueryCaller, usize>> {
        self.running.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A place for one more query of `caller`, or the refusal.
    pub fn enter(self: &Arc<Self>, caller: QueryCaller) -> std::result::Result<QueryTurn, Refusal> {
        let mut running = self.lock();
        let mine = running.get(&caller).copied().unwrap_or(0);
        if mine >= self.per_caller {
            return Err(Refusal::new(
                "query.too_many",
                format!(
                    "this caller already has {mine} queries running on this node, the most it allows one caller; ask again when one has finished"
                ),
            ));
        }
        let all: usize = running.values().sum();
        if all >= self.total {
            return Err(Refusal::new(
                "query.busy",
                format!("this node is running {all} queries, the most it runs at once; ask again shortly"),
            ));
        }
        *running.entry(caller.clone()).or_insert(0) += 1;
        Ok(QueryTurn {
            limiter: self.clone(),
            caller,
        })
    }
}

impl From<QueryRefusal> for Refusal {
    fn from(r: QueryRefusal) -> Refusal {
        Refusal::new(r.code, r.message)
    }
}

/// A query's result, sealed and ready to send.
pub struct QueryResult {
    active: Active,
    sealer: liutong_core::stream::Sealer,
    header: SignedHeader,
    info: ResultHeader,
    ipc: Vec<u8>,
}

impl Provider {
    /// Checks, plans, runs and counts a query; answers the result to send.
    pub async fn query(self: &Arc<Self>, app: &Arc<AppState>, call: QueryCall) -> Result<QueryResult> {
        let now = now_ms();
        let QueryCall { request: signed, sql } = call;
        let r = signed.request.clone();
        if r.action != Action::Query || r.from_chunk != 0 || r.resumes.is_some() {
            return Err(Refusal::new(
                "query.bad_request",
                "a query request has action query, starts at chunk 0 and resumes nothing",
            )
            .into());
        }
        if r.query != Some(query_digest(&sql)) {
            return Err(Refusal::new(
                "query.digest_mismatch",
                "the SQL sent is not the SQL the request was signed for",
            )
            .into());
        }
        let Checked {
            use_of,
            recipient,
            terms,
            mask_salt,
            version,
        } = self.check(app, &signed, now)?;
        let caller = match r.private {
            Some(_) => QueryCaller::Private,
            None => QueryCaller::Key(signed.signer),
        };
        // Held while the source is checked and the query plans and runs;
        // the stream that follows is not a query.
        let _turn = app.limiter.enter(caller)?;
        let description = &version.description;
        let shape = match (&description.kind, &description.table) {
            (DatasetKind::Table, Some(shape)) => shape,
            _ => {
                return Err(Refusal::new(
                    "query.not_a_table",
                    format!(
                        "dataset {} is a {}; only tables can be queried",
                        r.dataset,
                        description.kind.as_str()
                    ),
                )
                .into())
            }
        };
        let schema = Arc::new(shape.to_arrow()?);
        let table = self
            .table(
                &r.dataset,
                r.version,
                &description.media_type,
                &description.commitment,
                schema,
            )
            .await?;
        let name = crate::datasets::dataset(app.ledger.store(), &r.dataset)?.name;
        // The hash mask's salt: secret to the provider, one per grant.
        let salt = sha256_parts(&[
            b"liutong/mask-salt/v1\0",
            self.identity.signing.secret_hex().as_bytes(),
            &mask_salt,
        ]);
        let limits = QueryLimits {
            memory_bytes: self.queries.memory_bytes,
            ..QueryLimits::default()
        };
        let session = PolicySession::new(&name, table, &terms, salt.0, limits).map_err(Refusal::from)?;
        let config = self.queries;
        let timeout = |what: &str| {
            Refusal::new(
                "query.timeout",
                format!(
                    "the query {what} longer than this node allows ({} s)",
                    config.timeout.as_secs_f64()
                ),
            )
        };
        // Planning decides refusals (columns, functions, terms): free.
        let planned = tokio::time::timeout(config.timeout, session.plan(&sql))
            .await
            .map_err(|_| timeout("took to plan"))?
            .map_err(Refusal::from)?;
        let enforced = planned.enforced;
        let request = signed.digest();
        // From here the query runs on the provider's data: whatever its
        // outcome, it is a use, counted and logged.
        let ran = match tokio::time::timeout(
            config.timeout,
            run_to_ipc(session.context(), planned.plan, config.max_result_bytes),
        )
        .await
        {
            Ok(ran) => ran,
            Err(_) => Err(RunFailure {
                refusal: timeout("ran"),
                detail: "the run was cancelled at the node's query timeout".into(),
            }),
        };
        let (ipc, rows) = match ran {
            Ok(done) => done,
            Err(failure) => return Err(self.failed(app, signed, now, use_of, enforced, failure).await),
        };
        // Keys before the use is counted: a key HPKE refuses costs no use.
        let (sealer, encapped) = liutong_core::stream::Sealer::new(&recipient, &request)?;
        let info = ResultHeader {
            result: sha256(&ipc),
            rows,
            enforced: enforced.clone(),
        };
        let mut p = Pending::new(
            signed,
            now,
            Some(QueryServed {
                result: info.result,
                rows,
                enforced,
                failure: None,
            }),
        );
        p.bytes = ipc.len() as u64;
        let active = self.count_use(app, p, use_of).await?;
        let header = SignedHeader::sign(
            DeliveryHeader {
                request,
                encapped_key: encapped,
                size: ipc.len() as u64,
                chunk_size: QUERY_CHUNK,
                from_chunk: 0,
            },
            &self.identity.signing,
        );
        Ok(QueryResult {
            active,
            sealer,
            header,
            info,
            ipc,
        })
    }

    /// A query that ran and failed: the detail goes to this node's log,
    /// the use is counted and the access log gets a `failed` entry at once
    /// (no receipt will come), and the consumer is answered the failure's
    /// code with a message that carries no data.
    async fn failed(
        self: &Arc<Self>,
        app: &Arc<AppState>,
        signed: crate::delivery::SignedRequest,
        now: liutong_core::Timestamp,
        use_of: super::UseOf,
        enforced: Vec<String>,
        failure: RunFailure,
    ) -> Error {
        let request = signed.digest();
        tracing::warn!(%request, code = failure.refusal.code, detail = %failure.detail, "a query failed while it ran");
        let served = QueryServed {
            result: sha256(b""),
            rows: 0,
            enforced,
            failure: Some(failure.refusal.code.to_string()),
        };
        let active = match self
            .count_use(app, Pending::new(signed, now, Some(served)), use_of)
            .await
        {
            Ok(active) => active,
            // Not counted (the grant ran out meanwhile, say): that refusal
            // is the answer, and it says nothing of the data either.
            Err(e) => return e,
        };
        drop(active);
        if let Err(e) = self.log_now(app, &request).await {
            tracing::warn!(%request, code = e.code(), "the failed query's entry is not written yet; it will be retried");
        }
        let Refusal { code, message } = failure.refusal;
        Refusal::new(
            code,
            format!("{message}; it ran, so it counted as a use of the grant (access-log entry {request})"),
        )
        .into()
    }

    /// The registered source of a table version, as a DataFusion table.
    async fn table(
        &self,
        dataset: &liutong_catalog::DatasetId,
        version: u32,
        media_type: &str,
        commitment: &liutong_catalog::Commitment,
        schema: arrow::datatypes::SchemaRef,
    ) -> Result<Arc<dyn TableProvider>> {
        let source = self.source(dataset, version)?;
        let unavailable = |e: liutong_connectors::Error| -> Error {
            Refusal::new(
                "query.source_unavailable",
                format!("dataset {dataset} version {version}: {e}"),
            )
            .into()
        };
        match &source.postgres {
            Some(pg) => {
                let pg = PgSource::new(&pg.url, &pg.table).map_err(unavailable)?;
                Connector::table(&pg, schema).await.map_err(unavailable)
            }
            None => {
                // The file is still the one registered (the cached hash list's
                // stamp, or one pass over it after a change).
                let (home, s, c, d) = (self.home.clone(), source.clone(), commitment.clone(), *dataset);
                tokio::task::spawn_blocking(move || super::hash_list(&home, &d, version, &s, &c))
                    .await
                    .map_err(|e| Error::Io(format!("checking the source: {e}")))??;
                let format = TableFormat::of_path(&source.path)
                    .or_else(|| TableFormat::of_media_type(media_type))
                    .ok_or_else(|| {
                        Error::from(Refusal::new(
                            "query.not_a_table",
                            format!("{} is not a table file liutong reads", source.path.display()),
                        ))
                    })?;
                FileSource::new(&source.path, format)
                    .table(schema)
                    .await
                    .map_err(unavailable)
            }
        }
    }
}

/// Why a planned query's run failed: what the consumer is told (a code
/// and a message with no data in it) and the detail, for the provider's
/// log only.
pub(crate) struct RunFailure {
    pub refusal: Refusal,
    pub detail: String,
}

impl RunFailure {
    fn of(e: &datafusion::error::DataFusionError) -> RunFailure {
        RunFailure {
            refusal: liutong_policies::query::run_failure(e).into(),
            detail: e.to_string(),
        }
    }

    fn writing(e: impl std::fmt::Display) -> RunFailure {
        RunFailure {
            refusal: Refusal::new(
                "query.failed",
                "the query failed while it ran: its result could not be written (the provider's node logged the detail)",
            ),
            detail: format!("writing the result: {e}"),
        }
    }
}

/// Runs a planned query and writes its result as one Arrow IPC stream,
/// refusing results larger than `max_bytes`. Answers the bytes and rows.
pub(crate) async fn run_to_ipc(
    session: &datafusion::prelude::SessionContext,
    plan: datafusion::logical_expr::LogicalPlan,
    max_bytes: u64,
) -> std::result::Result<(Vec<u8>, u64), RunFailure> {
    let df = session
        .execute_logical_plan(plan)
        .await
        .map_err(|e| RunFailure::of(&e))?;
    let mut stream = df.execute_stream().await.map_err(|e| RunFailure::of(&e))?;
    let schema = stream.schema();
    let mut writer = arrow::ipc::writer::StreamWriter::try_new(Vec::new(), &schema).map_err(RunFailure::writing)?;
    // The result is held until it is sealed: it counts against the query's
    // memory pool like the operators' own memory.
    let held = datafusion::execution::memory_pool::MemoryConsumer::new("liutong query result")
        .register(&session.runtime_env().memory_pool);
    let mut rows = 0u64;
    while let Some(batch) = stream.next().await {
        let batch = batch.map_err(|e| RunFailure::of(&e))?;
        rows += batch.num_rows() as u64;
        writer.write(&batch).map_err(RunFailure::writing)?;
        held.try_resize(writer.get_ref().capacity())
            .map_err(|e| RunFailure::of(&e))?;
        if writer.get_ref().len() as u64 > max_bytes {
            return Err(RunFailure {
                refusal: Refusal::new(
                    "query.result_too_large",
                    format!("the result is larger than this node sends ({max_bytes} bytes); aggregate or add a LIMIT"),
                ),
                detail: format!("result over {max_bytes} bytes after {rows} rows"),
            });
        }
    }
    writer.finish().map_err(RunFailure::writing)?;
    let ipc = writer.into_inner().map_err(RunFailure::writing)?;
    Ok((ipc, rows))
}

impl QueryResult {
    /// The stream: the magic and the signed header, frame 0 (the result's
    /// digest, rows and what was enforced), then the result in sealed
    /// chunks, the last sealed as last.
    pub fn into_stream(mut self) -> super::Frames {
        let timeout = self.active.provider.queries.write_timeout;
        super::spawn_stream("query result", timeout, move |tx| self.send_frames(tx))
    }

    fn send_frames(&mut self, tx: &super::FrameSender) -> Result<()> {
        super::send_head(tx, &self.header)?;
        let chunks: Vec<&[u8]> = self.ipc.chunks(QUERY_CHUNK as usize).collect();
        let info = encode_canonical(&self.info);
        tx.send(Ok(Bytes::from(frame(&self.sealer.seal(
            0,
            chunks.is_empty(),
            &info,
        )?))))?;
        let mut served = 0u64;
        for (i, chunk) in chunks.iter().enumerate() {
            let index = u32::try_from(i + 1).map_err(|_| Error::Io("more than 2^32 chunks".into()))?;
            let sealed = self.sealer.seal(index, i + 1 == chunks.len(), chunk)?;
            tx.send(Ok(Bytes::from(frame(&sealed))))?;
            served += chunk.len() as u64;
            self.active
                .provider
                .progress(&self.active.delivery, served, chunk.len() as u64);
            self.active.served_to = served;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A caller past its share is refused with `query.too_many`, anyone
    /// past the node's total with `query.busy`; places come back on drop.
    #[test]
    fn the_limiter_counts_per_caller_and_in_total() {
        let config = QueryConfig {
            concurrent: 3,
            per_caller: 2,
            ..QueryConfig::default()
        };
        let limiter = QueryLimiter::new(&config);
        let (a, b) = (
            QueryCaller::Key(liutong_core::SigningKey::generate().public_key()),
            QueryCaller::Key(liutong_core::SigningKey::generate().public_key()),
        );
        let a1 = limiter.enter(a.clone()).expect("a1");
        let _a2 = limiter.enter(a.clone()).expect("a2");
        assert_eq!(limiter.enter(a.clone()).err().map(|r| r.code), Some("query.too_many"));
        let _b1 = limiter.enter(b.clone()).expect("b1");
        assert_eq!(limiter.enter(b.clone()).err().map(|r| r.code), Some("query.busy"));
        assert_eq!(
            limiter.enter(QueryCaller::Private).err().map(|r| r.code),
            Some("query.busy")
        );
        drop(a1);
        let _p = limiter.enter(QueryCaller::Private).expect("a place came back");
        assert_eq!(
            limiter.enter(QueryCaller::Private).err().map(|r| r.code),
            Some("query.busy")
        );
    }

    #[test]
    fn a_query_request_outlives_its_plan_and_run() {
        let config = QueryConfig {
            timeout: Duration::from_secs(60),
            ..QueryConfig::default()
        };
        assert!(config.request_timeout() > config.timeout * 2);
        assert!(QueryConfig::default().request_timeout() >= crate::api::REQUEST_TIMEOUT);
    }
}
