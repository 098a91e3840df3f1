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

/// A provider node's limits on the queries it runs.
#[derive(Clone, Copy, Debug)]
pub struct QueryConfig {
    /// Longest a query may run (planning, reading and computing).
    pub timeout: Duration,
    /// Memory DataFusion may reserve for one query.
    pub memory_bytes: usize,
    /// Largest result (as an Arrow IPC stream) sent back.
    pub max_result_bytes: u64,
}

impl Default for QueryConfig {
    fn default() -> QueryConfig {
        QueryConfig {
            timeout: Duration::from_secs(60),
            memory_bytes: 1 << 30,
            max_result_bytes: 256 << 20,
        }
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
        let run = async {
            let planned = session.plan(&sql).await.map_err(Refusal::from)?;
            let ipc = run_to_ipc(session.context(), planned.plan, config.max_result_bytes).await?;
            Ok::<_, Error>((planned.enforced, ipc))
        };
        let (enforced, (ipc, rows)) = tokio::time::timeout(config.timeout, run).await.map_err(|_| {
            Error::from(Refusal::new(
                "query.timeout",
                format!(
                    "the query ran longer than this node allows ({} s)",
                    config.timeout.as_secs_f64()
                ),
            ))
        })??;
        // Keys before the use is counted: a key HPKE refuses costs no use.
        let request = signed.digest();
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

/// Runs a planned query and writes its result as one Arrow IPC stream,
/// refusing results larger than `max_bytes`. Answers the bytes and rows.
pub(crate) async fn run_to_ipc(
    session: &datafusion::prelude::SessionContext,
    plan: datafusion::logical_expr::LogicalPlan,
    max_bytes: u64,
) -> Result<(Vec<u8>, u64)> {
    let failed = |e: datafusion::error::DataFusionError| -> Error {
        let message = e.to_string();
        let first = message.lines().next().unwrap_or_default().to_string();
        if message.contains("Resources exhausted") {
            Refusal::new(
                "query.memory_limit",
                format!("the query needs more memory than this node allows: {first}"),
            )
            .into()
        } else {
            Refusal::new("query.failed", first).into()
        }
    };
    let df = session.execute_logical_plan(plan).await.map_err(failed)?;
    let mut stream = df.execute_stream().await.map_err(failed)?;
    let schema = stream.schema();
    let mut writer = arrow::ipc::writer::StreamWriter::try_new(Vec::new(), &schema)
        .map_err(|e| Error::Io(format!("writing the result: {e}")))?;
    let mut rows = 0u64;
    while let Some(batch) = stream.next().await {
        let batch = batch.map_err(failed)?;
        rows += batch.num_rows() as u64;
        writer
            .write(&batch)
            .map_err(|e| Error::Io(format!("writing the result: {e}")))?;
        if writer.get_ref().len() as u64 > max_bytes {
            return Err(Refusal::new(
                "query.result_too_large",
                format!("the result is larger than this node sends ({max_bytes} bytes); aggregate or add a LIMIT"),
            )
            .into());
        }
    }
    writer
        .finish()
        .map_err(|e| Error::Io(format!("writing the result: {e}")))?;
    let ipc = writer
        .into_inner()
        .map_err(|e| Error::Io(format!("writing the result: {e}")))?;
    Ok((ipc, rows))
}

impl QueryResult {
    /// The stream: the magic and the signed header, frame 0 (the result's
    /// digest, rows and what was enforced), then the result in sealed
    /// chunks, the last sealed as last.
    pub fn into_stream(mut self) -> super::Frames {
        super::spawn_stream("query result", move |tx| self.send_frames(tx))
    }

    fn send_frames(&mut self, tx: &super::FrameSender) -> Result<()> {
        let gone = || Error::Io("the consumer went away".into());
        super::send_head(tx, &self.header)?;
        let chunks: Vec<&[u8]> = self.ipc.chunks(QUERY_CHUNK as usize).collect();
        let info = encode_canonical(&self.info);
        tx.blocking_send(Ok(Bytes::from(frame(&self.sealer.seal(
            0,
            chunks.is_empty(),
            &info,
        )?))))
        .map_err(|_| gone())?;
        let mut served = 0u64;
        for (i, chunk) in chunks.iter().enumerate() {
            let index = u32::try_from(i + 1).map_err(|_| Error::Io("more than 2^32 chunks".into()))?;
            let sealed = self.sealer.seal(index, i + 1 == chunks.len(), chunk)?;
            tx.blocking_send(Ok(Bytes::from(frame(&sealed)))).map_err(|_| gone())?;
            served += chunk.len() as u64;
            self.active
                .provider
                .progress(&self.active.delivery, served, chunk.len() as u64);
            self.active.served_to = served;
        }
        Ok(())
    }
}
