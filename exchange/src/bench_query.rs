//! `liutong bench query`: what the query service's policy path costs, on
//! TPC-H `lineitem` (generated in-process at scale factor `--sf` into one
//! Parquet file). In the same run, on the same file, TPC-H Q1 and Q6 run
//!
//! - in plain DataFusion (a `SessionContext` with the file registered),
//! - in a policy session in this process, as the provider's node plans and
//!   runs it under the permissive grant (no request, ledger or stream), and
//! - through `POST /v1/queries` of the provider's node, from the consumer's
//!   side ([`crate::query::run`]): the signed request, planning and the
//!   rewrite under the grant's terms, the run, sealing, the `grant.use`
//!   block, the stream, the receipt and the access-log entry; under a
//!   permissive grant (query, no other terms) and a restrictive one
//!   (columns, a row filter that keeps every row, a hash mask, aggregate-only).
//!
//! They are interleaved round by round (after one untimed warm-up
//! round) and the median of each is reported. The permissive results must
//! equal plain DataFusion's. A third grant, aggregate-only, is tried once
//! per query and its answer (a refusal, for Q1 and Q6) recorded. Also
//! reported: the latency of one transaction from the provider's node to a
//! committed block, which each query pays twice (its use, its access-log
//! entry).

use crate::bench::{median, round2};
use crate::bench_delivery::{admit, cli_in, wait_sync};
use crate::cli::{self, Output};
use crate::fetch::Counterpart;
use crate::grants::GrantId;
use crate::home::Home;
use crate::node::{self, NodeConfig};
use crate::party::Role;
use crate::{Error, Result};
use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use clap::Args;
use datafusion::prelude::{ParquetReadOptions, SessionContext};
use liutong_catalog::{DatasetId, TableFormat};
use liutong_core::{now_ms, Canonical};
use liutong_policies::{Action, ColumnMask, Mask, Terms};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

/// The policy path's goal: at most this much slower than plain DataFusion.
const GOAL: f64 = 1.10;

/// TPC-H Q1, with `date '1998-12-01' - interval '90' day` written out.
pub const Q1: &str = "select l_returnflag, l_linestatus, sum(l_quantity) as sum_qty, \
sum(l_extendedprice) as sum_base_price, sum(l_extendedprice * (1 - l_discount)) as sum_disc_price, \
sum(l_extendedprice * (1 - l_discount) * (1 + l_tax)) as sum_charge, avg(l_quantity) as avg_qty, \
avg(l_extendedprice) as avg_price, avg(l_discount) as avg_disc, count(*) as count_order \
from lineitem where l_shipdate <= date '1998-09-02' \
group by l_returnflag, l_linestatus order by l_returnflag, l_linestatus";

/// TPC-H Q6.
pub const Q6: &str = "select sum(l_extendedprice * l_discount) as revenue from lineitem \
where l_shipdate >= date '1994-01-01' and l_shipdate < date '1995-01-01' \
and l_discount between 0.06 - 0.01 and 0.06 + 0.01 and l_quantity < 24";

/// The columns Q1 and Q6 read: all the restrictive grant allows (terms
/// list columns sorted).
const QUERY_COLUMNS: [&str; 7] = [
    "l_discount",
    "l_extendedprice",
    "l_linestatus",
    "l_quantity",
    "l_returnflag",
    "l_shipdate",
    "l_tax",
];

#[derive(Args, Debug, Clone)]
pub struct QueryBench {
    /// TPC-H scale factor of the generated `lineitem` (1 = about 6 million rows) [default: 1; 0.1 with --quick].
    #[arg(long)]
    pub sf: Option<f64>,
    /// Timed runs of each query on each path, interleaved; the median is reported.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=50))]
    pub repeat: u32,
    /// Where the Parquet file and the nodes' stores go [default: /dev/shm
    /// when it exists, else the temporary directory].
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// A small, fast run: scale factor 0.1 (unless --sf is given), one round.
    #[arg(long)]
    pub quick: bool,
}

fn err(msg: impl Into<String>) -> Error {
    Error::Io(msg.into())
}

use crate::bench::ms as ms_since;

/// One query's timings on the three paths (milliseconds).
#[derive(Default)]
struct Timings {
    raw: Vec<f64>,
    session: Vec<f64>,
    policy: Vec<f64>,
    restrictive: Vec<f64>,
}

/// Writes `lineitem` at scale factor `sf` to `path` as one Parquet file
/// (default writer properties, the column types tpchgen-arrow gives).
/// Answers the rows written.
fn generate(sf: f64, path: &Path) -> Result<u64> {
    use tpchgen::generators::LineItemGenerator;
    use tpchgen_arrow::{LineItemArrow, RecordBatchIterator};
    let fail = |e: parquet::errors::ParquetError| err(format!("writing {}: {e}", path.display()));
    let batches = LineItemArrow::new(LineItemGenerator::new(sf, 1, 1));
    let file = std::fs::File::create(path).map_err(|e| err(format!("{}: {e}", path.display())))?;
    let mut writer = parquet::arrow::ArrowWriter::try_new(file, batches.schema().clone(), None).map_err(fail)?;
    let mut rows = 0u64;
    for batch in batches {
        rows += batch.num_rows() as u64;
        writer.write(&batch).map_err(fail)?;
    }
    writer.close().map_err(fail)?;
    Ok(rows)
}

/// Sorted rows of a result as arrow's pretty table, for comparing results
/// that may arrive in different batches.
fn canonical_text(batches: &[RecordBatch]) -> Result<String> {
    let text = arrow::util::pretty::pretty_format_batches(batches)
        .map_err(|e| err(format!("formatting a result: {e}")))?
        .to_string();
    let mut lines: Vec<&str> = text.lines().collect();
    // Three border/header lines on top, one border at the bottom.
    if lines.len() > 4 {
        let end = lines.len() - 1;
        lines[3..end].sort_unstable();
    }
    Ok(lines.join("\n"))
}

fn rows_of(batches: &[RecordBatch]) -> usize {
    batches.iter().map(RecordBatch::num_rows).sum()
}

async fn raw_query(ctx: &SessionContext, sql: &str) -> Result<Vec<RecordBatch>> {
    let failed = |e: datafusion::error::DataFusionError| err(format!("plain DataFusion: {e}"));
    ctx.sql(sql).await.map_err(failed)?.collect().await.map_err(failed)
}

/// The query as the provider's node plans and runs it under `terms`, in
/// this process: a fresh policy session over the registered file, with no
/// request, ledger or stream around it.
async fn session_query(path: &Path, schema: SchemaRef, terms: &Terms, sql: &str) -> Result<Vec<RecordBatch>> {
    use liutong_connectors::{Connector, FileSource};
    use liutong_policies::query::{PolicySession, QueryLimits};
    let failed = |e: datafusion::error::DataFusionError| err(format!("policy session: {e}"));
    let table = FileSource::new(path, TableFormat::Parquet)
        .table(schema)
        .await
        .map_err(|e| err(format!("policy session: {e}")))?;
    let limits = QueryLimits {
        memory_bytes: crate::serve::QueryConfig::default().memory_bytes,
        ..QueryLimits::default()
    };
    let refused = |e: liutong_policies::query::QueryRefusal| err(format!("policy session: {}: {e}", e.code));
    // The offer's terms as they are: its row filter is the provider's.
    let terms = liutong_policies::QueryTerms::of(terms, liutong_policies::RowFilters::of_offer(terms));
    let session = PolicySession::new("lineitem", table, &terms, [7; 32], limits).map_err(refused)?;
    let planned = session.plan(sql).await.map_err(refused)?;
    let df = session
        .context()
        .execute_logical_plan(planned.plan)
        .await
        .map_err(failed)?;
    df.collect().await.map_err(failed)
}

/// Median latency of a transaction from the provider's node to a committed
/// block (what the `grant.use` and access-log entries of each query wait for).
async fn block_latency_ms(url: &str, chain: &str, who: &crate::home::Identity, n: usize) -> Result<f64> {
    use crate::notary::Notarize;
    let client = crate::client::Client::new(url)?;
    let mut times = Vec::with_capacity(n);
    for i in 0..n {
        let body = Notarize {
            digest: liutong_core::sha256(&[&i.to_le_bytes()[..], &rand::random::<[u8; 16]>()].concat()),
            file_name: None,
            media_type: None,
            note: None,
        };
        let tx = crate::client::sign_tx(chain, crate::machine::KIND_NOTARIZE, &body, &who.signing);
        let t = Instant::now();
        client.submit_bytes(&tx.canonical_bytes()).await?;
        times.push(ms_since(t));
    }
    Ok(median(&times))
}

/// One query through the provider's node; the receipt must have been taken.
async fn policy_query(peer: &Counterpart, grant: GrantId, dataset: DatasetId, sql: &str) -> Result<Vec<RecordBatch>> {
    let got = crate::query::run(peer, grant, dataset, sql, 1 << 30).await?;
    got.access?;
    Ok(got.batches)
}

/// Query terms over the whole table, for one purpose, with `uses` uses.
fn permissive_terms(uses: u64) -> Terms {
    let now = now_ms();
    Terms {
        purposes: vec!["research".into()],
        not_before: now - 60_000,
        not_after: Some(now + 86_400_000),
        max_uses: Some(uses),
        actions: vec![Action::Query],
        columns: None,
        row_filter: None,
        masks: vec![],
        min_group_size: None,
        row_cap: None,
        transferable: false,
    }
}

/// Only Q1's and Q6's columns, a row filter that keeps every row and a
/// hashed `l_linestatus`.
fn restrictive_terms(uses: u64) -> Terms {
    Terms {
        columns: Some(QUERY_COLUMNS.iter().map(|c| c.to_string()).collect()),
        row_filter: Some("l_shipdate >= DATE '1992-01-01'".into()),
        masks: vec![ColumnMask {
            column: "l_linestatus".into(),
            mask: Mask::Hash,
        }],
        ..permissive_terms(uses)
    }
}

/// [`restrictive_terms`], aggregate-only with groups of at least 10 rows.
/// Such a grant lets aggregates read columns only as they are, so it
/// refuses Q1 and Q6 (`sum(l_extendedprice * (1 - l_discount))`); the
/// benchmark records the refusal instead of a timing.
fn aggregate_only_terms(uses: u64) -> Terms {
    Terms {
        min_group_size: Some(10),
        ..restrictive_terms(uses)
    }
}

/// An automatic offer of `terms` on `dataset` (its `offer`-th) and the
/// consumer's grant on it, issued at once.
async fn offer_and_grant(
    prov: &Home,
    cons: &Home,
    url: &str,
    dir: &Path,
    dataset: &str,
    offer: u32,
    terms: &Terms,
) -> Result<GrantId> {
    let path = dir.join(format!("terms-{offer}.json"));
    let text = serde_json::to_string(terms).map_err(|e| err(e.to_string()))?;
    std::fs::write(&path, text).map_err(|e| err(format!("{}: {e}", path.display())))?;
    let path = path.display().to_string();
    cli::run(cli_in(
        prov,
        &["offer", "add", dataset, "--terms", &path, "--automatic", "--node", url],
    )?)
    .await?;
    let g = cli::run(cli_in(
        cons,
        &[
            "grant",
            "request",
            dataset,
            "--offer",
            &offer.to_string(),
            "--purpose",
            "research",
            "--node",
            url,
        ],
    )?)
    .await?;
    g.json["grant"]["id"]
        .as_str()
        .ok_or_else(|| err(format!("the grant request answered no grant id: {}", g.json)))?
        .parse()
}

pub async fn run(b: QueryBench) -> Result<Output> {
    let sf = b.sf.unwrap_or(if b.quick { 0.1 } else { 1.0 });
    if !(sf.is_finite() && sf > 0.0 && sf <= 100.0) {
        return Err(Error::BadRequest(format!(
            "--sf {sf}: give a scale factor above 0 and at most 100"
        )));
    }
    let repeat = if b.quick { 1 } else { b.repeat };
    let dir = crate::bench_delivery::scratch_dir(b.dir.as_deref(), "liutong-bench-query-")?;
    let base = dir.path().parent().map(Path::to_path_buf).unwrap_or_default();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());

    eprintln!("bench query: generating TPC-H lineitem at scale factor {sf} …");
    let file = dir.path().join("lineitem.parquet");
    let started = Instant::now();
    let rows = {
        let file = file.clone();
        tokio::task::spawn_blocking(move || generate(sf, &file))
            .await
            .map_err(|e| err(e.to_string()))??
    };
    let generate_s = started.elapsed().as_secs_f64();
    let parquet_bytes = std::fs::metadata(&file).map_err(|e| err(e.to_string()))?.len();
    eprintln!("bench query: {rows} rows, {parquet_bytes} bytes of Parquet in {generate_s:.1} s");

    // Plain DataFusion, as a user would run it.
    let raw = SessionContext::new();
    let path = file
        .to_str()
        .ok_or_else(|| err("the Parquet file's path is not UTF-8"))?;
    raw.register_parquet("lineitem", path, ParquetReadOptions::default())
        .await
        .map_err(|e| err(format!("registering the Parquet file: {e}")))?;

    eprintln!("bench query: an orderer, the provider's node and a consumer; registering the file, three grants …");
    let (op_home, orderer, client) = crate::bench::bench_node(dir.path(), "bench-query").await?;
    let chain = orderer.genesis.chain_id.clone();
    let operator = op_home.identity()?;
    let prov_home = Home::new(dir.path().join("provider"));
    let prov_id = prov_home.create_identity()?;
    let provider = node::start(NodeConfig {
        home: prov_home.clone(),
        listen: "127.0.0.1:0".parse().expect("literal address"),
        follow: Some(orderer.url.clone()),
        receipt_timeout: crate::serve::DEFAULT_RECEIPT_TIMEOUT,
        queries: Default::default(),
    })
    .await?;
    let cons_home = Home::new(dir.path().join("consumer"));
    let cons_id = cons_home.create_identity()?;
    let (prov_code, cons_code) = (crate::demo::PROVIDER_CODE, crate::demo::CONSUMER_CODE);
    admit(
        &client,
        &chain,
        &operator,
        &prov_id,
        prov_code,
        Role::Provider,
        &provider.url,
    )
    .await?;
    admit(
        &client,
        &chain,
        &operator,
        &cons_id,
        cons_code,
        Role::Consumer,
        &provider.url,
    )
    .await?;

    let registered = cli::run(cli_in(
        &prov_home,
        &[
            "dataset",
            "register",
            path,
            "--name",
            "lineitem",
            "--title",
            "TPC-H lineitem",
            "--node",
            &orderer.url,
        ],
    )?)
    .await?;
    let dataset_text = registered.json["dataset"]["id"]
        .as_str()
        .ok_or_else(|| err(format!("dataset register answered no id: {}", registered.json)))?
        .to_string();
    let dataset: DatasetId = dataset_text.parse()?;
    // Q1 and Q6 in the warm-up round and in each timed round, and two spare.
    let uses = 2 * (u64::from(repeat) + 1) + 2;
    let (url, d) = (orderer.url.as_str(), dir.path());
    let permissive = offer_and_grant(
        &prov_home,
        &cons_home,
        url,
        d,
        &dataset_text,
        1,
        &permissive_terms(uses),
    )
    .await?;
    let restrictive = offer_and_grant(
        &prov_home,
        &cons_home,
        url,
        d,
        &dataset_text,
        2,
        &restrictive_terms(uses),
    )
    .await?;
    let aggregate_only = offer_and_grant(
        &prov_home,
        &cons_home,
        url,
        d,
        &dataset_text,
        3,
        &aggregate_only_terms(uses),
    )
    .await?;
    wait_sync(&provider.url, orderer.ledger.height()).await?;
    // Not timed: the consumer's look-ups before its first query.
    let peer_p = Counterpart::find(&cons_home, &client, dataset, permissive, None, false).await?;
    let peer_r = Counterpart::find(&cons_home, &client, dataset, restrictive, None, false).await?;
    let peer_a = Counterpart::find(&cons_home, &client, dataset, aggregate_only, None, false).await?;

    let schema: SchemaRef = Arc::new(liutong_catalog::infer(&file, TableFormat::Parquet)?.to_arrow()?);
    let open_terms = permissive_terms(uses);
    let queries = [("q1", Q1), ("q6", Q6)];
    let mut timings: Vec<Timings> = queries.iter().map(|_| Timings::default()).collect();
    let mut result_rows = vec![(0usize, 0usize); queries.len()];
    let mut aggregate_only_outcomes = vec![json!(null); queries.len()];
    for round in 0..=repeat {
        if round == 0 {
            eprintln!("bench query: warm-up round (not timed) …");
        } else {
            eprintln!("bench query: round {round} of {repeat} …");
        }
        for (n, (name, sql)) in queries.iter().enumerate() {
            let t = Instant::now();
            let plain = raw_query(&raw, sql).await?;
            let raw_ms = ms_since(t);
            let t = Instant::now();
            let in_session = session_query(&file, schema.clone(), &open_terms, sql).await?;
            let session_ms = ms_since(t);
            let t = Instant::now();
            let through = policy_query(&peer_p, permissive, dataset, sql).await?;
            let policy_ms = ms_since(t);
            let t = Instant::now();
            let restricted = policy_query(&peer_r, restrictive, dataset, sql).await?;
            let restrictive_ms = ms_since(t);
            if round == 0 {
                // The permissive grant changes nothing: its result is plain DataFusion's.
                let want = canonical_text(&plain)?;
                for (path, got) in [("the query service", &through), ("the policy session", &in_session)] {
                    let got = canonical_text(got)?;
                    if got != want {
                        return Err(err(format!(
                            "{name}: the result through {path} differs from plain DataFusion's\nplain:\n{want}\nthrough {path}:\n{got}"
                        )));
                    }
                }
                // The restrictive grant keeps every row and every group (the
                // mask renames Q1's l_linestatus groups, it merges none).
                if rows_of(&restricted) != rows_of(&plain) {
                    return Err(err(format!(
                        "{name}: {} rows under the restrictive grant, {} in plain DataFusion",
                        rows_of(&restricted),
                        rows_of(&plain)
                    )));
                }
                result_rows[n] = (rows_of(&plain), rows_of(&restricted));
                // Once, under the aggregate-only grant: what it answers.
                let t = Instant::now();
                aggregate_only_outcomes[n] = match policy_query(&peer_a, aggregate_only, dataset, sql).await {
                    Ok(b) => json!({ "answered": true, "ms": round2(ms_since(t)), "result_rows": rows_of(&b) }),
                    Err(e) => json!({ "answered": false, "code": e.code(), "message": e.to_string() }),
                };
                eprintln!(
                    "bench query: {name}: {} result rows, the same through the service",
                    rows_of(&plain)
                );
                continue;
            }
            eprintln!("bench query: {name}: raw {raw_ms:.1} ms, session {session_ms:.1} ms, policy {policy_ms:.1} ms, restrictive {restrictive_ms:.1} ms");
            let t = &mut timings[n];
            t.raw.push(raw_ms);
            t.session.push(session_ms);
            t.policy.push(policy_ms);
            t.restrictive.push(restrictive_ms);
        }
    }
    let block_ms = block_latency_ms(&provider.url, &chain, &prov_id, 9).await?;
    provider.stop().await;
    orderer.stop().await;

    let mut summary = serde_json::Map::new();
    let (mut worst, mut worst_restrictive) = (0.0f64, 0.0f64);
    let mut lines = Vec::new();
    for (n, ((name, _), (t, (rows, _)))) in queries.iter().zip(timings.iter().zip(&result_rows)).enumerate() {
        let (raw_ms, session_ms) = (median(&t.raw), median(&t.session));
        let (policy_ms, restrictive_ms) = (median(&t.policy), median(&t.restrictive));
        let ratio = policy_ms / raw_ms.max(1e-9);
        let restrictive_ratio = restrictive_ms / raw_ms.max(1e-9);
        worst = worst.max(ratio);
        worst_restrictive = worst_restrictive.max(restrictive_ratio);
        lines.push(format!(
            "{name}: plain DataFusion {raw_ms:>9.2} ms  policy session {session_ms:>9.2} ms  query service {policy_ms:>9.2} ms (x{ratio:.2})  restrictive grant {restrictive_ms:>9.2} ms (x{restrictive_ratio:.2})"
        ));
        summary.insert(
            name.to_string(),
            json!({
                "raw_ms": round2(raw_ms),
                "session_ms": round2(session_ms),
                "policy_ms": round2(policy_ms),
                "restrictive_ms": round2(restrictive_ms),
                "overhead_ms": round2(policy_ms - raw_ms),
                "ratio": round2(ratio),
                "restrictive_ratio": round2(restrictive_ratio),
                "result_rows": rows,
                "aggregate_only": aggregate_only_outcomes[n],
                "raw_runs_ms": t.raw.iter().map(|x| round2(*x)).collect::<Vec<_>>(),
                "session_runs_ms": t.session.iter().map(|x| round2(*x)).collect::<Vec<_>>(),
                "policy_runs_ms": t.policy.iter().map(|x| round2(*x)).collect::<Vec<_>>(),
                "restrictive_runs_ms": t.restrictive.iter().map(|x| round2(*x)).collect::<Vec<_>>(),
            }),
        );
    }
    let mut result = json!({
        "bench": "query",
        "sf": sf,
        "rows": rows,
        "parquet_bytes": parquet_bytes,
        "generate_s": round2(generate_s),
        "block_ms": round2(block_ms),
        "repeat": repeat,
        "ratio": round2(worst),
        "restrictive_ratio": round2(worst_restrictive),
        "goal": GOAL,
        "cores": cores,
        "dir": base,
    });
    if let Some(m) = result.as_object_mut() {
        m.extend(summary);
    }
    lines.push(format!(
        "worst ratio {worst:.2} (goal {GOAL:.2}) on {rows} rows of lineitem (sf {sf}), {cores} cores; a transaction from the provider's node to a committed block: {block_ms:.2} ms (twice per query)"
    ));
    lines.push(result.to_string());
    Ok(Output::ok(lines.join("\n"), result))
}
