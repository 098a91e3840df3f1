//! `liutong bench audit`: trace and SQL latency as the access log grows,
//! and evidence bundles of real traces, built and verified offline.
//!
//! Trace and SQL run over stores filled with synthetic access-log entries
//! written exactly as `access.log` writes them (the record and its index
//! keys, `access::entry_writes`), since committing a million deliveries
//! through a node would measure the ledger, not the audit. Each size is
//! compared in the same run with the unindexed way (a scan of the whole
//! log) and with plain DataFusion over the same Arrow batches. Bundles are
//! made from real transactions committed by a real node: signed requests,
//! receipts and `access.log` transactions, with their inclusion and
//! consistency proofs, and their offline check is compared with verifying
//! the same number of Ed25519 signatures on their own.

use crate::access::{entry_writes, AccessOutcome, AccessRecord, LogAccess, QueryEntry};
use crate::audit::bundle::{self, Subject};
use crate::audit::sql::{Caller, LedgerTables};
use crate::audit::{trace_all, Scope, TraceFilter};
use crate::cli::{self, InitArgs, Output};
use crate::client::{sign_tx, Client};
use crate::delivery::{DeliveryReceipt, DeliveryRequest, SignedReceipt, SignedRequest, Verdict};
use crate::grants::{GrantId, UseGrant};
use crate::home::Home;
use crate::machine::{KIND_ACCESS_LOG, KIND_APPROVE, KIND_GRANT_USE, KIND_REGISTER};
use crate::party::{ChangeStanding, RegisterParty, Role};
use crate::{Error, Result};
use clap::Args;
use liutong_catalog::DatasetId;
use liutong_core::{now_ms, sha256, Canonical, CreditCode, Digest, SigningKey};
use liutong_policies::query::QueryLimits;
use liutong_policies::Action;
use rand::{Rng, SeedableRng};
use serde_json::json;
use std::time::Instant;

#[derive(Args, Debug, Clone)]
pub struct AuditBench {
    /// Access-log sizes at which trace and SQL are measured.
    #[arg(long, value_delimiter = ',', default_value = "100000,1000000")]
    pub sizes: Vec<usize>,
    /// Datasets the entries spread over (a dataset's trace holds size/datasets entries).
    #[arg(long, default_value_t = 1000)]
    pub datasets: usize,
    /// Consumers the entries spread over.
    #[arg(long, default_value_t = 2000)]
    pub consumers: usize,
    /// Entries of the real traces bundled (real transactions through a node).
    #[arg(long, value_delimiter = ',', default_value = "100,1000")]
    pub bundles: Vec<usize>,
    /// A small run: 10k and 100k entries, bundles of 100.
    #[arg(long)]
    pub quick: bool,
}

use crate::bench::{median, ms, round2 as round};

fn party_code(n: usize) -> Result<CreditCode> {
    Ok(CreditCode::with_check_character(&format!("91310000MA{n:07}"))?)
}

const PROVIDERS: usize = 100;
const DAY: u64 = 86_400_000;

/// Synthetic entry `i` of `n`, spread over 90 days, ~8 per block.
fn synthetic(
    i: usize,
    n: usize,
    t0: u64,
    datasets: &[DatasetId],
    consumers: &[CreditCode],
    providers: &[CreditCode],
    rng: &mut rand::rngs::StdRng,
) -> AccessRecord {
    let d = rng.gen_range(0..datasets.len());
    let private = rng.gen_ratio(1, 50);
    let consumer = rng.gen_range(0..consumers.len());
    let query = rng.gen_ratio(1, 10);
    let logged_at = t0 + (i as u64) * (90 * DAY) / (n as u64).max(1);
    let mut grant = [0u8; 16];
    grant[..8].copy_from_slice(&(d as u64).to_be_bytes());
    grant[8..].copy_from_slice(&(consumer as u64).to_be_bytes());
    AccessRecord {
        request: sha256(&(i as u64).to_be_bytes()),
        grant: (!private).then_some(GrantId(grant)),
        dataset: datasets[d],
        version: 1,
        action: if query { "query" } else { "download" }.into(),
        provider: providers[d % providers.len()].clone(),
        consumer: (!private).then(|| consumers[consumer].clone()),
        result: sha256(&datasets[d].0),
        bytes: rng.gen_range(1_000..10_000_000),
        served_at: logged_at.saturating_sub(40),
        outcome: match rng.gen_range(0..100) {
            0..=94 => AccessOutcome::Acknowledged,
            95..=97 => AccessOutcome::Unacknowledged,
            _ => AccessOutcome::Disputed,
        },
        receipt: None,
        query: query.then(|| QueryEntry {
            query: sha256(b"SELECT port, count(*) FROM moves GROUP BY port"),
            rows: rng.gen_range(1..10_000),
            enforced: vec!["columns: port, moves".into()],
            failure: None,
        }),
        private: None,
        tx_id: sha256(&[b"tx".as_slice(), &(i as u64).to_be_bytes()].concat()),
        height: 1 + (i as u64) / 8,
        logged_at,
    }
}

/// The aggregate the goal names, and a second with a time bucket.
const SQL_BY_DATASET: &str =
    "SELECT dataset, count(*) AS uses, sum(bytes) AS bytes FROM access_log GROUP BY dataset ORDER BY uses DESC LIMIT 10";
const SQL_BY_DAY: &str = "SELECT consumer, date_trunc('day', logged_at) AS day, count(*) AS uses \
                          FROM access_log WHERE action = 'query' GROUP BY 1, 2";

async fn plain_datafusion(table: std::sync::Arc<dyn datafusion::catalog::TableProvider>, sql: &str) -> Result<f64> {
    let ctx = datafusion::prelude::SessionContext::new();
    ctx.register_table("access_log", table)
        .map_err(|e| Error::Io(e.to_string()))?;
    let t = Instant::now();
    let df = ctx.sql(sql).await.map_err(|e| Error::Io(e.to_string()))?;
    df.collect().await.map_err(|e| Error::Io(e.to_string()))?;
    Ok(ms(t))
}

pub async fn run(mut b: AuditBench) -> Result<Output> {
    if b.quick {
        b.sizes = vec![10_000, 100_000];
        b.bundles = vec![100];
    }
    b.sizes.sort_unstable();
    b.bundles.sort_unstable();
    let dir = tempfile::tempdir().map_err(|e| Error::Io(e.to_string()))?;
    let mut text = String::from("audit benchmark (trace and SQL over synthetic entries; bundles of real transactions)");

    // Trace and SQL as the log grows.
    let home = Home::new(dir.path().join("synthetic"));
    cli::init(
        &home,
        &InitArgs {
            chain_id: "bench-audit".into(),
            name: "Bench Exchange".into(),
            credit_code: crate::demo::OPERATOR_CODE.into(),
            contact: "ops@example.com".into(),
            endpoint: "http://127.0.0.1:1".into(),
        },
    )?;
    let genesis = home.genesis()?;
    let ledger = crate::node::open_ledger(&home, &genesis)?;
    let store = ledger.store();
    let mut rng = rand::rngs::StdRng::seed_from_u64(2026);
    let datasets: Vec<DatasetId> = (0..b.datasets.max(1))
        .map(|i| {
            let mut id = [0u8; 16];
            id[..8].copy_from_slice(&(i as u64 + 1).to_be_bytes());
            DatasetId(id)
        })
        .collect();
    let consumers = (0..b.consumers.max(1))
        .map(|i| party_code(100_000 + i))
        .collect::<Result<Vec<_>>>()?;
    let providers = (0..PROVIDERS).map(party_code).collect::<Result<Vec<_>>>()?;
    let largest = b.sizes.last().copied().unwrap_or(0);
    let t0 = now_ms() - 91 * DAY;
    let tables = std::sync::Arc::new(LedgerTables::new());
    let mut written = 0;
    let mut at = Vec::new();
    for &size in &b.sizes {
        let t = Instant::now();
        let mut writes = Vec::new();
        while written < size {
            let r = synthetic(written, largest, t0, &datasets, &consumers, &providers, &mut rng);
            writes.extend(entry_writes(&r));
            written += 1;
            if writes.len() >= 50_000 {
                store.load_unchecked(&writes)?;
                writes.clear();
            }
        }
        store.load_unchecked(&writes)?;
        let load_s = t.elapsed().as_secs_f64();

        // Trace: one dataset (all versions), one dataset in a week, one consumer's uses.
        let mut by_dataset = Vec::new();
        let mut by_week = Vec::new();
        let mut by_party = Vec::new();
        let mut found = 0;
        for i in 0..21 {
            let d = datasets[(i * 7919) % datasets.len()];
            let f = TraceFilter {
                dataset: Some(d),
                ..Default::default()
            };
            let t = Instant::now();
            found += trace_all(store, &f, &Scope::All, usize::MAX)?.len();
            by_dataset.push(ms(t));
            let week = TraceFilter {
                from: Some(t0 + 30 * DAY),
                to: Some(t0 + 37 * DAY),
                ..f
            };
            let t = Instant::now();
            trace_all(store, &week, &Scope::All, usize::MAX)?;
            by_week.push(ms(t));
            let me = Scope::Party(consumers[(i * 104_729) % consumers.len()].clone());
            let t = Instant::now();
            trace_all(store, &TraceFilter::default(), &me, usize::MAX)?;
            by_party.push(ms(t));
        }
        // The unindexed way: read the whole log and keep one dataset's entries.
        let d = datasets[0];
        let t = Instant::now();
        let mut scanned = 0usize;
        store.visit_from(crate::machine::CF_ACCESS_LOG, &[], |_, v| {
            let r: AccessRecord =
                borsh::from_slice(v).map_err(|_| liutong_ledger::Error::Corrupt("access log".into()))?;
            scanned += usize::from(r.dataset == d);
            Ok(true)
        })?;
        let scan_ms = ms(t);

        // SQL: the first query builds (or extends) the node's Arrow tables.
        let limits = QueryLimits::default();
        let now = now_ms();
        let t = Instant::now();
        tables
            .run(&ledger, &Caller::everything(), SQL_BY_DATASET, limits, u64::MAX, now)
            .await?;
        let sql_first_ms = ms(t);
        let mut agg = Vec::new();
        let mut by_day = Vec::new();
        let mut restricted = Vec::new();
        for i in 0..5 {
            let t = Instant::now();
            let (_, rows) = tables
                .run(&ledger, &Caller::everything(), SQL_BY_DATASET, limits, u64::MAX, now)
                .await?;
            agg.push(ms(t));
            if rows == 0 {
                return Err(Error::Io("the aggregate answered no rows".into()));
            }
            let t = Instant::now();
            tables
                .run(&ledger, &Caller::everything(), SQL_BY_DAY, limits, u64::MAX, now)
                .await?;
            by_day.push(ms(t));
            let me = Caller {
                scope: Scope::Party(consumers[i * 31 % consumers.len()].clone()),
                roles: vec![Role::Consumer],
            };
            let t = Instant::now();
            tables.run(&ledger, &me, SQL_BY_DATASET, limits, u64::MAX, now).await?;
            restricted.push(ms(t));
        }
        let access = tables
            .tables(&ledger, &Scope::All, now)?
            .into_iter()
            .find(|(n, _)| n == "access_log")
            .map(|(_, t)| t)
            .ok_or_else(|| Error::Io("no access_log table".into()))?;
        // A node that restarts builds its tables once, in the background.
        let t = Instant::now();
        let fresh = LedgerTables::new();
        fresh.warm(&ledger)?;
        let cold_ms = ms(t);
        if fresh.access_rows() != size {
            return Err(Error::Io(format!(
                "the tables hold {} of {size} entries",
                fresh.access_rows()
            )));
        }
        drop(fresh);
        let mut plain = Vec::new();
        for _ in 0..5 {
            plain.push(plain_datafusion(access.clone(), SQL_BY_DATASET).await?);
        }
        let row = json!({
            "entries": size,
            "load_s": round(load_s),
            "trace_dataset_ms": round(median(&by_dataset)),
            "trace_dataset_entries": found / 21,
            "trace_dataset_week_ms": round(median(&by_week)),
            "trace_consumer_ms": round(median(&by_party)),
            "scan_trace_ms": round(scan_ms),
            "scan_trace_entries": scanned,
            "sql_first_ms": round(sql_first_ms),
            "tables_build_ms": round(cold_ms),
            "sql_aggregate_ms": round(median(&agg)),
            "sql_by_day_ms": round(median(&by_day)),
            "sql_as_consumer_ms": round(median(&restricted)),
            "plain_datafusion_ms": round(median(&plain)),
        });
        text.push_str(&format!(
            "\n{size} entries (loaded in {load_s:.1} s):\n  trace of one dataset ({} entries): {:.2} ms (a scan of the whole log: {scan_ms:.0} ms); one dataset, one week: {:.2} ms; one consumer's uses: {:.2} ms\n  SQL aggregate by dataset: {:.1} ms (plain DataFusion on the same batches: {:.1} ms; first query after the growth: {sql_first_ms:.0} ms; the tables built from nothing, as a node does when it starts: {cold_ms:.0} ms); by consumer and day: {:.1} ms; as a consumer (its rows only): {:.1} ms",
            found / 21,
            row["trace_dataset_ms"], row["trace_dataset_week_ms"], row["trace_consumer_ms"],
            row["sql_aggregate_ms"], row["plain_datafusion_ms"], row["sql_by_day_ms"], row["sql_as_consumer_ms"],
        ));
        at.push(row);
    }
    drop(ledger);

    // Bundles of real traces.
    let bundles = real_bundles(dir.path(), &b.bundles, &mut text).await?;
    let head = at.last().cloned().unwrap_or_default();
    let biggest = bundles.last().cloned().unwrap_or_default();
    let summary = json!({
        "bench": "audit",
        "sizes": at,
        "bundles": bundles,
        "entries": head["entries"],
        "trace_ms": head["trace_dataset_ms"],
        "sql_ms": head["sql_aggregate_ms"],
        "bundle_entries": biggest["entries"],
        "bundle_build_ms": biggest["build_ms"],
        "bundle_verify_ms": biggest["verify_ms"],
        "goals": {"trace_ms": 100, "sql_ms": 1000, "bundle_verify_ms": 1000},
    });
    text.push_str(&format!("\n{summary}"));
    Ok(Output::ok(text, summary))
}

/// A node with a provider, a consumer and an auditor, and `max` real
/// deliveries logged; bundles of the first `n` of them for each `n`.
async fn real_bundles(dir: &std::path::Path, sizes: &[usize], text: &mut String) -> Result<Vec<serde_json::Value>> {
    let total = sizes.iter().copied().max().unwrap_or(0);
    if total == 0 {
        return Ok(Vec::new());
    }
    let op_home = Home::new(dir.join("operator"));
    cli::init(
        &op_home,
        &InitArgs {
            chain_id: "bench-audit-bundles".into(),
            name: "Bench Exchange".into(),
            credit_code: crate::demo::OPERATOR_CODE.into(),
            contact: "ops@example.com".into(),
            endpoint: "http://127.0.0.1:1".into(),
        },
    )?;
    let node = crate::node::start(crate::node::NodeConfig {
        home: op_home.clone(),
        listen: "127.0.0.1:0".parse().map_err(|e| Error::Io(format!("{e}")))?,
        follow: None,
        receipt_timeout: crate::serve::DEFAULT_RECEIPT_TIMEOUT,
        queries: Default::default(),
    })
    .await?;
    let client = Client::new(&node.url)?;
    let genesis = op_home.genesis()?;
    let chain = genesis.chain_id.clone();
    let operator = op_home.identity()?;
    let mut homes = Vec::new();
    for (name, code, role) in [
        ("provider", crate::demo::PROVIDER_CODE, Role::Provider),
        ("consumer", crate::demo::CONSUMER_CODE, Role::Consumer),
        ("auditor", crate::demo::AUDITOR_CODE, Role::Auditor),
    ] {
        let home = Home::new(dir.join(name));
        let id = home.create_identity()?;
        home.write_genesis(&genesis)?;
        let body = RegisterParty {
            legal_name: format!("Bench {name}"),
            credit_code: code.into(),
            contact: "bench@example.com".into(),
            roles: vec![role],
            encryption_key: id.encryption.public_key(),
            endpoint: node.url.clone(),
        };
        client
            .submit(&sign_tx(&chain, KIND_REGISTER, &body, &id.signing))
            .await?;
        let approve = ChangeStanding {
            credit_code: code.into(),
            reason: "bench".into(),
        };
        client
            .submit(&sign_tx(&chain, KIND_APPROVE, &approve, &operator.signing))
            .await?;
        homes.push(home);
    }
    let run = |home: &Home, args: &[&str]| {
        let parsed = cli::in_home(home, args);
        async move { cli::run(parsed?).await }
    };
    let file = dir.join("moves.csv");
    std::fs::write(&file, "port,moves\nShanghai,40\nNingbo,31\n").map_err(|e| Error::Io(e.to_string()))?;
    let registered = run(
        &homes[0],
        &[
            "dataset",
            "register",
            &file.to_string_lossy(),
            "--name",
            "moves",
            "--title",
            "Container moves",
            "--description",
            "bench",
            "--node",
            &node.url,
        ],
    )
    .await?;
    let dataset = registered.json["dataset"]["id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let terms = dir.join("terms.json");
    let now = now_ms();
    std::fs::write(
        &terms,
        json!({
            "purposes": ["trade-finance"], "not_before": now - 60_000, "not_after": now + 7 * DAY,
            "max_uses": 100_000, "actions": ["download"], "columns": null, "row_filter": null, "masks": [],
            "min_group_size": null, "row_cap": null, "transferable": false
        })
        .to_string(),
    )
    .map_err(|e| Error::Io(e.to_string()))?;
    run(
        &homes[0],
        &[
            "offer",
            "add",
            &dataset,
            "--terms",
            &terms.to_string_lossy(),
            "--automatic",
            "--node",
            &node.url,
        ],
    )
    .await?;
    let provider = homes[0].identity()?.signing;
    let consumer = homes[1].identity()?.signing;
    let auditor = homes[2].identity()?.signing;
    let version = crate::datasets::version(node.ledger.store(), &dataset.parse()?, 1)?;
    let commitment = version.description.commitment.clone();
    // One grant per bundle size: grant k covers the entries of bundle k.
    let mut grants = Vec::new();
    let mut start = 0;
    for &n in sizes {
        let g = run(
            &homes[1],
            &[
                "grant",
                "request",
                &dataset,
                "--offer",
                "1",
                "--purpose",
                "trade-finance",
                "--max-uses",
                &(n - start).max(1).to_string(),
                "--days",
                "1",
                "--node",
                &node.url,
            ],
        )
        .await?;
        let id: GrantId = g.json["grant"]["id"].as_str().unwrap_or_default().parse()?;
        grants.push((id, n - start));
        start = n;
    }
    let mut uses = Vec::new();
    let mut logs = Vec::new();
    let mut nonce = 0u64;
    for (grant, count) in &grants {
        for _ in 0..*count {
            nonce += 1;
            let t = now_ms();
            let signed = SignedRequest::sign(
                DeliveryRequest {
                    chain_id: chain.clone(),
                    grant: *grant,
                    dataset: version.dataset,
                    version: 1,
                    action: Action::Download,
                    nonce,
                    timestamp: t,
                    from_chunk: 0,
                    resumes: None,
                    query: None,
                    private: None,
                },
                &consumer,
            );
            let digest = signed.digest();
            uses.push(
                sign_tx(
                    &chain,
                    KIND_GRANT_USE,
                    &UseGrant {
                        grant: *grant,
                        action: Action::Download,
                        request: digest,
                    },
                    &provider,
                )
                .canonical_bytes(),
            );
            let receipt = SignedReceipt::sign(
                DeliveryReceipt {
                    request: digest,
                    verdict: Verdict::Verified,
                    content: commitment.chunk_root,
                    bytes: commitment.size,
                    time: t,
                    reason: String::new(),
                },
                &consumer,
            );
            let body = LogAccess {
                request: signed,
                bytes: commitment.size,
                served_at: t,
                receipt: Some(receipt),
                query: None,
            };
            logs.push(sign_tx(&chain, KIND_ACCESS_LOG, &body, &provider).canonical_bytes());
        }
    }
    for batch in [uses, logs] {
        for chunk in batch.chunks(500) {
            for r in client.submit_batch(chunk).await? {
                r?;
            }
        }
    }
    let mut out = Vec::new();
    for (i, (grant, _)) in grants.iter().enumerate() {
        let subject = if i == grants.len() - 1 {
            Subject::Trace {
                filter: TraceFilter {
                    dataset: Some(version.dataset),
                    ..Default::default()
                },
            }
        } else {
            Subject::Grant { grant: *grant }
        };
        let t = Instant::now();
        let mut built = bundle::build(&node.ledger, &genesis, &subject, &Scope::All, &auditor.public_key())?;
        built.attest(&auditor, now_ms());
        let file = built.to_canonical_json();
        let build_ms = ms(t);
        let mut verify = Vec::new();
        let mut entries = 0;
        for _ in 0..3 {
            let t = Instant::now();
            entries = bundle::verify(&file, &genesis)?.entries.len();
            verify.push(ms(t));
        }
        // The same number of Ed25519 signatures, verified on their own.
        let signatures = built.blocks.len() + 1 + built.transactions.len() + 2 * entries + 1;
        let key = SigningKey::generate();
        let message = Digest([7; 32]);
        let sig = key.sign(message.as_bytes());
        let pk = key.public_key();
        let t = Instant::now();
        for _ in 0..signatures {
            pk.verify(message.as_bytes(), &sig)
                .map_err(|_| Error::Io("signature".into()))?;
        }
        let raw_ms = ms(t);
        let row = json!({
            "entries": entries,
            "transactions": built.transactions.len(),
            "blocks": built.blocks.len(),
            "bytes": file.len(),
            "build_ms": round(build_ms),
            "verify_ms": round(median(&verify)),
            "signatures": signatures,
            "raw_signature_verify_ms": round(raw_ms),
        });
        text.push_str(&format!(
            "\nbundle of {entries} real entries ({} transactions, {} blocks, {} KiB): built in {:.0} ms, verified offline in {:.0} ms ({signatures} signatures verified one by one on one core: {raw_ms:.0} ms)",
            built.transactions.len(),
            built.blocks.len(),
            file.len() / 1024,
            build_ms,
            row["verify_ms"].as_f64().unwrap_or(0.0)
        ));
        out.push(row);
    }
    node.stop().await;
    Ok(out)
}
