//! `liutong bench …`: measurements that print one JSON object on their last line.
//!
//! `bench ledger`: notarizations signed by many distinct keys, submitted over
//! HTTP by concurrent clients to a solo node with durable commits, in batch
//! requests and one per request; in the same run, this machine's raw Ed25519
//! batch-verification rate on all cores; and inclusion-proof latency as the
//! log grows to three sizes.

use crate::cli::{InitArgs, Output};
use crate::client::{sign_tx, Client};
use crate::home::{Home, Identity};
use crate::machine::*;
use crate::node::{self, NodeConfig};
use crate::notary::Notarize;
use crate::party::*;
use crate::wire::ReceiptDetail;
use crate::{Error, Result};
use clap::{Args, Subcommand};
use liutong_core::{now_ms, sha256, Canonical, CreditCode, SigningKey, VerifyItem};
use liutong_ledger::{CheckedTx, TxId};
use rayon::prelude::*;
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Subcommand, Debug)]
pub enum BenchCommand {
    /// Ledger throughput, commit latency and proof latency.
    Ledger(LedgerBench),
    /// Catalog search latency as the catalog grows.
    Catalog(CatalogBench),
    /// Encrypted, verified delivery between two processes against an HTTPS download and a raw TCP copy.
    Delivery(crate::bench_delivery::DeliveryBench),
    /// TPC-H Q1 and Q6 through the query service (permissive and restrictive grants) against plain DataFusion.
    Query(crate::bench_query::QueryBench),
    /// Private-use proofs: constraints, setup, prove, verify and batch verification against a naive circuit.
    Zk(crate::bench_zk::ZkBench),
    /// Audit: trace and SQL latency over 100k and 1M access-log entries, and
    /// bundles of real traces built and verified offline.
    Audit(crate::bench_audit::AuditBench),
}

#[derive(Args, Debug, Clone)]
pub struct CatalogBench {
    /// Catalog sizes (datasets) at which search latency is measured.
    #[arg(long, value_delimiter = ',', default_value = "10000,100000")]
    pub sizes: Vec<u64>,
    /// Providers the datasets are spread over.
    #[arg(long, default_value_t = 100)]
    pub providers: usize,
    /// Searches measured at each size.
    #[arg(long, default_value_t = 300)]
    pub searches: usize,
    /// Grants requested and then issued, at the largest catalog size.
    #[arg(long, default_value_t = 20_000)]
    pub grants: usize,
    /// Consumers requesting them.
    #[arg(long, default_value_t = 200)]
    pub consumers: usize,
    /// Offers (one per table dataset) the requests are spread over.
    #[arg(long, default_value_t = 300)]
    pub offers: usize,
    /// Concurrent HTTP clients submitting requests and issues.
    #[arg(long, default_value_t = 4)]
    pub clients: usize,
    /// A small, fast run: sizes 1k and 10k, 2,000 grants.
    #[arg(long)]
    pub quick: bool,
}

#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchEncoding {
    Raw,
    Json,
}

#[derive(Args, Debug, Clone)]
pub struct LedgerBench {
    /// Transactions submitted in batch requests.
    #[arg(long, default_value_t = 200_000)]
    pub txs: usize,
    /// Transactions submitted one per request.
    #[arg(long, default_value_t = 20_000)]
    pub single_txs: usize,
    /// Distinct signing keys (each a registered, approved party).
    #[arg(long, default_value_t = 1000)]
    pub keys: usize,
    /// Concurrent HTTP clients.
    #[arg(long, default_value_t = 8)]
    pub clients: usize,
    /// Transactions per batch request.
    #[arg(long, default_value_t = 1024)]
    pub batch: usize,
    /// Concurrent single-transaction requests.
    #[arg(long, default_value_t = 256)]
    pub single_concurrency: usize,
    /// How batch requests are encoded: `raw` (borsh, `/v1/txs/batch/raw`)
    /// or `json` (base64 in JSON, `/v1/txs/batch`).
    #[arg(long, value_enum, default_value_t = BatchEncoding::Raw)]
    pub batch_encoding: BatchEncoding,
    /// Log sizes at which inclusion-proof latency is measured.
    #[arg(long, value_delimiter = ',', default_value = "10000,100000,1000000")]
    pub proof_sizes: Vec<u64>,
    /// A small, fast run (for smoke tests): 10x fewer transactions, proof sizes 1k,10k,100k.
    #[arg(long)]
    pub quick: bool,
}

pub async fn run(cmd: BenchCommand) -> Result<Output> {
    match cmd {
        BenchCommand::Ledger(mut b) => {
            if b.quick {
                b.txs /= 10;
                b.single_txs /= 10;
                b.keys = b.keys.min(200);
                b.proof_sizes = vec![1_000, 10_000, 100_000];
            }
            ledger(b).await
        }
        BenchCommand::Catalog(mut b) => {
            if b.quick {
                b.sizes = vec![1_000, 10_000];
                b.grants = b.grants.min(2_000);
            }
            catalog(b).await
        }
        BenchCommand::Delivery(b) => Box::pin(crate::bench_delivery::run(b)).await,
        BenchCommand::Query(b) => Box::pin(crate::bench_query::run(b)).await,
        BenchCommand::Zk(b) => crate::bench_zk::run(b).await,
        BenchCommand::Audit(b) => Box::pin(crate::bench_audit::run(b)).await,
    }
}

/// Words the benchmark's titles and descriptions are drawn from: a few very
/// common (in most datasets), most rare.
const WORDS: [&str; 40] = [
    "data",
    "port",
    "shipping",
    "container",
    "customs",
    "invoice",
    "trade",
    "bank",
    "loan",
    "ledger",
    "cargo",
    "freight",
    "rail",
    "truck",
    "warehouse",
    "export",
    "import",
    "manifest",
    "bill",
    "lading",
    "insurance",
    "credit",
    "settlement",
    "quarterly",
    "monthly",
    "daily",
    "ningbo",
    "shanghai",
    "shenzhen",
    "tianjin",
    "qingdao",
    "xiamen",
    "rotterdam",
    "hamburg",
    "singapore",
    "物流",
    "港口",
    "报关",
    "发票",
    "仓储",
];
const TAGS: [&str; 12] = [
    "logistics",
    "finance",
    "customs",
    "shipping",
    "rail",
    "energy",
    "retail",
    "insurance",
    "trade",
    "port",
    "warehouse",
    "credit",
];

async fn catalog(b: CatalogBench) -> Result<Output> {
    use crate::datasets::{search, RegisterDataset, SearchQuery};
    use liutong_catalog::{commit_reader, Column, DatasetKind, Description, TableShape};
    let dir = tempfile::tempdir().map_err(|e| err(e.to_string()))?;
    let (home, node, client) = bench_node(dir.path(), "liutong-bench-catalog").await?;
    let operator = home.identity()?;
    let chain = node.genesis.chain_id.clone();
    let chunk = node.genesis.catalog.chunk_size;

    eprintln!("bench catalog: registering and approving {} providers …", b.providers);
    let (parties, codes) = admit_parties(&client, &chain, &operator, b.providers.max(1), &[Role::Provider]).await?;

    let ledger = node.ledger.clone();
    let orderer_key = home.orderer_key()?;
    let shape = TableShape {
        columns: vec![
            Column {
                name: "id".into(),
                data_type: "Int64".into(),
                nullable: false,
            },
            Column {
                name: "value".into(),
                data_type: "Utf8".into(),
                nullable: true,
            },
        ],
        rows: 1000,
    };
    let mut sizes_out = Vec::new();
    let mut have = 0u64;
    for &size in &b.sizes {
        eprintln!("bench catalog: growing the catalog to {size} datasets …");
        let t = Instant::now();
        while have < size {
            let n = (size - have).min(4096);
            let (parties, chain, shape) = (&parties, &chain, &shape);
            let txs: Vec<CheckedTx> = (have..have + n)
                .into_par_iter()
                .map(|i| {
                    let word = |k: u64| {
                        WORDS[((i.wrapping_mul(2654435761).wrapping_add(k * 97)) % WORDS.len() as u64) as usize]
                    };
                    let title = format!("{} {} {} {i}", WORDS[(i % 3) as usize], word(1), word(2));
                    let text = format!("{} {} {} records", word(3), word(4), word(5));
                    let tags = vec![TAGS[(i % TAGS.len() as u64) as usize].to_string()];
                    let kind = [DatasetKind::Table, DatasetKind::File, DatasetKind::Document][(i % 3) as usize];
                    let description = Description {
                        title,
                        description: text,
                        tags,
                        kind,
                        media_type: if kind == DatasetKind::Table {
                            "text/csv"
                        } else {
                            "application/pdf"
                        }
                        .into(),
                        table: (kind == DatasetKind::Table).then(|| shape.clone()),
                        commitment: commit_reader(&i.to_le_bytes()[..], chunk).expect("an in-memory read"),
                    };
                    let body = RegisterDataset {
                        name: format!("dataset-{i}"),
                        description,
                    };
                    let key = &parties[(i % parties.len() as u64) as usize].signing;
                    own_tx(sign_tx(chain, crate::machine::KIND_DATASET_REGISTER, &body, key).canonical_bytes())
                })
                .collect();
            let (l, k) = (ledger.clone(), orderer_key.clone());
            let answers = tokio::task::spawn_blocking(move || l.propose_block(txs, &k, now_ms()))
                .await
                .map_err(|e| err(e.to_string()))??;
            for a in answers {
                a?;
            }
            have += n;
        }
        let load_s = t.elapsed().as_secs_f64();
        // A mix of what people ask: common and rare words, filters, CJK, both.
        let queries: Vec<SearchQuery> = (0..b.searches)
            .map(|i| {
                let w = |k: usize| WORDS[(i * 7 + k * 13) % WORDS.len()].to_string();
                let mut q = SearchQuery {
                    limit: Some(20),
                    ..Default::default()
                };
                match i % 6 {
                    0 => q.q = Some(w(0)),
                    1 => q.q = Some(format!("{} {}", w(0), w(1))),
                    2 => {
                        q.q = Some(w(2));
                        q.tag = Some(TAGS[i % TAGS.len()].into());
                    }
                    3 => {
                        q.provider = Some(codes[i % codes.len()].to_string());
                        q.kind = Some("table".into());
                    }
                    4 => q.q = Some("data port".into()),
                    _ => {}
                }
                q
            })
            .collect();
        let mut direct = Vec::new();
        let mut http = Vec::new();
        let mut hits = 0usize;
        for q in &queries {
            let t0 = Instant::now();
            let page = search(ledger.store(), q)?;
            direct.push(t0.elapsed().as_secs_f64() * 1000.0);
            hits += page.datasets.len();
            let t0 = Instant::now();
            let over_http = client.search_datasets(q).await?;
            http.push(t0.elapsed().as_secs_f64() * 1000.0);
            if over_http.datasets.len() != page.datasets.len() {
                return Err(err("HTTP and direct searches differ"));
            }
        }
        direct.sort_by(f64::total_cmp);
        http.sort_by(f64::total_cmp);
        sizes_out.push(json!({
            "datasets": size,
            "load_s": round2(load_s),
            "searches": queries.len(),
            "mean_hits": round2(hits as f64 / queries.len().max(1) as f64),
            "direct_p50_ms": round2(percentile(&direct, 0.5)),
            "direct_p99_ms": round2(percentile(&direct, 0.99)),
            "http_p50_ms": round2(percentile(&http, 0.5)),
            "http_p99_ms": round2(percentile(&http, 0.99)),
        }));
    }
    drop(ledger);
    let largest_size = b.sizes.iter().copied().max().unwrap_or(0);
    let grants = grant_throughput(&b, &client, &node, &operator, &parties, &codes, largest_size).await?;
    node.stop().await;
    let largest = sizes_out.last().cloned().unwrap_or_default();
    let result = json!({
        "bench": "catalog",
        "cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        "providers": b.providers,
        "p99_search_ms": largest["http_p99_ms"],
        "p50_search_ms": largest["http_p50_ms"],
        "grants_per_s": grants["grants_per_s"],
        "sizes": sizes_out,
        "grants": grants,
    });
    Ok(Output {
        ok: true,
        text: result.to_string(),
        json: result,
    })
}

/// Grant request-to-issue throughput: offers on `b.offers` table datasets
/// (each with a row filter and a mask, so every request is planned with
/// DataFusion against the schema), `b.grants` requests from `b.consumers`
/// consumers, then the providers issue every one; all over HTTP in batches
/// from `b.clients` concurrent clients. A grant costs two signed
/// transactions, so the ceiling signature checking alone allows is half the
/// raw verification rate, measured in the same run.
async fn grant_throughput(
    b: &CatalogBench,
    client: &Client,
    node: &node::RunningNode,
    operator: &Identity,
    providers: &[Identity],
    provider_codes: &[CreditCode],
    catalog_size: u64,
) -> Result<serde_json::Value> {
    use crate::grants::{AddOffer, Approval, GrantId, IssueGrant, RequestGrant};
    use liutong_catalog::DatasetId;
    use liutong_policies::{Action, ColumnMask, Mask, Terms};
    let chain = node.genesis.chain_id.clone();
    let offers = b.offers.min((catalog_size as usize).div_ceil(3)).max(1);
    if b.grants == 0 || catalog_size == 0 {
        return Ok(json!({ "grants": 0 }));
    }
    eprintln!("bench catalog: {} consumers, {offers} offers …", b.consumers);
    // Consumers' credit codes must not collide with the providers'.
    let (consumers, _) = admit_parties_from(
        client,
        &chain,
        operator,
        b.consumers.max(1),
        &[Role::Consumer],
        5_000_000,
    )
    .await?;
    let now = now_ms();
    let offer_terms = Terms {
        purposes: vec!["research".into()],
        not_before: now - 60_000,
        not_after: Some(now + 86_400_000),
        max_uses: Some(1000),
        actions: vec![Action::Query],
        columns: Some(vec!["id".into(), "value".into()]),
        row_filter: Some("id > 0".into()),
        masks: vec![ColumnMask {
            column: "value".into(),
            mask: Mask::Hash,
        }],
        min_group_size: None,
        row_cap: Some(1000),
        transferable: false,
    };
    // Table datasets are those with i % 3 == 0; dataset i belongs to provider i % P.
    let targets: Vec<(DatasetId, usize)> = (0..offers as u64)
        .map(|k| {
            let i = k * 3;
            let p = (i % providers.len() as u64) as usize;
            (DatasetId::of(&provider_codes[p], &format!("dataset-{i}")), p)
        })
        .collect();
    let offer_txs: Vec<Vec<u8>> = targets
        .iter()
        .map(|(d, p)| {
            let body = AddOffer {
                dataset: *d,
                terms: offer_terms.clone(),
                approval: Approval::Manual,
            };
            sign_tx(&chain, KIND_OFFER_ADD, &body, &providers[*p].signing).canonical_bytes()
        })
        .collect();
    for batch in offer_txs.chunks(1024) {
        for r in client.submit_batch(batch).await? {
            r?;
        }
    }
    let request_terms = Terms {
        max_uses: Some(10),
        ..offer_terms.clone()
    };
    let requests: Vec<(Vec<u8>, GrantId, usize)> = (0..b.grants)
        .into_par_iter()
        .map(|j| {
            let (dataset, p) = targets[j % targets.len()];
            let body = RequestGrant {
                dataset,
                offer: 1,
                terms: request_terms.clone(),
                private: None,
            };
            let bytes = sign_tx(
                &chain,
                KIND_GRANT_REQUEST,
                &body,
                &consumers[j % consumers.len()].signing,
            )
            .canonical_bytes();
            let id = GrantId::of_request(&sha256(&bytes));
            (bytes, id, p)
        })
        .collect();
    eprintln!("bench catalog: {} grant requests, then as many issues …", b.grants);
    let request_bytes: Vec<Vec<u8>> = requests.iter().map(|(bytes, _, _)| bytes.clone()).collect();
    let t = Instant::now();
    submit_concurrently(&node.url, request_bytes, b.clients).await?;
    let requested_s = t.elapsed().as_secs_f64();
    let issues: Vec<Vec<u8>> = requests
        .par_iter()
        .map(|(_, id, p)| {
            let body = IssueGrant {
                grant: *id,
                terms: None,
            };
            sign_tx(&chain, KIND_GRANT_ISSUE, &body, &providers[*p].signing).canonical_bytes()
        })
        .collect();
    let t_issue = Instant::now();
    submit_concurrently(&node.url, issues, b.clients).await?;
    let issued_s = t_issue.elapsed().as_secs_f64();
    let total_s = t.elapsed().as_secs_f64();
    // Every grant is active now.
    let sample = &requests[requests.len() / 2].1;
    let g = crate::grants::grant(node.ledger.store(), sample)?;
    if g.status != crate::grants::GrantStatus::Active {
        return Err(err(format!("grant {sample} is {:?} after issue", g.status)));
    }
    let raw = raw_verify_rate(50_000);
    Ok(json!({
        "grants": b.grants,
        "consumers": consumers.len(),
        "offers": targets.len(),
        "catalog_datasets": catalog_size,
        "requests_per_s": round2(b.grants as f64 / requested_s),
        "issues_per_s": round2(b.grants as f64 / issued_s),
        "grants_per_s": round2(b.grants as f64 / total_s),
        "raw_verify_per_s": raw.round(),
        "signature_ceiling_grants_per_s": (raw / 2.0).round(),
    }))
}

/// Submits `txs` in batches of 1,024 from `clients` concurrent HTTP clients;
/// every one must commit.
async fn submit_concurrently(url: &str, txs: Vec<Vec<u8>>, clients: usize) -> Result<()> {
    let chunks: Vec<Vec<Vec<u8>>> = txs.chunks(1024).map(<[Vec<u8>]>::to_vec).collect();
    let queue = Arc::new(std::sync::Mutex::new(chunks.into_iter()));
    let mut tasks = Vec::new();
    for _ in 0..clients.max(1) {
        let (queue, client) = (queue.clone(), Client::new(url)?);
        tasks.push(tokio::spawn(async move {
            loop {
                let next = queue.lock().map_err(|_| err("queue poisoned"))?.next();
                let Some(batch) = next else { return Ok::<(), Error>(()) };
                for r in client.submit_batch(&batch).await? {
                    r?;
                }
            }
        }));
    }
    for t in tasks {
        t.await.map_err(|e| err(e.to_string()))??;
    }
    Ok(())
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

pub(crate) fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// Milliseconds since `t`.
pub(crate) fn ms(t: std::time::Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1e3
}

/// The median of `xs` (0 for none).
pub(crate) fn median(xs: &[f64]) -> f64 {
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

/// CPU time this process has used so far, summed over its live threads
/// (Linux: `/proc/self/task/*/schedstat`, nanoseconds on a CPU); `None`
/// where that is not available.
fn process_cpu_secs() -> Option<f64> {
    let mut ns: u64 = 0;
    for task in std::fs::read_dir("/proc/self/task").ok()? {
        let path = task.ok()?.path().join("schedstat");
        // A thread that ended since the listing has no file: it adds nothing.
        let Ok(text) = std::fs::read_to_string(path) else {
            continue;
        };
        ns += text.split_whitespace().next()?.parse::<u64>().ok()?;
    }
    Some(ns as f64 / 1e9)
}

/// Raw Ed25519 batch verification on all cores, over messages the size of a
/// notarization: the best of three runs, so a momentarily busy machine does
/// not flatter the ratio.
fn raw_verify_rate(n: usize) -> f64 {
    raw_verify_rates(n, false).0
}

/// [`raw_verify_rate`] (liutong's ZIP-215 batch check, which merges the
/// signatures of one key, over 64 keys), and in the same run over the same
/// signatures the issue's reference, ed25519-dalek's `verify_batch` in
/// batches of 1,024 on all cores (when `dalek`): each the best of three.
fn raw_verify_rates(n: usize, dalek: bool) -> (f64, f64) {
    let keys: Vec<SigningKey> = (0..64).map(|_| SigningKey::generate()).collect();
    let msgs: Vec<Vec<u8>> = (0..n).map(|i| format!("{i:0>180}").into_bytes()).collect();
    let sigs: Vec<_> = msgs.par_iter().enumerate().map(|(i, m)| keys[i % 64].sign(m)).collect();
    let items: Vec<VerifyItem> = msgs
        .iter()
        .enumerate()
        .map(|(i, m)| VerifyItem {
            key: keys[i % 64].public_key(),
            signature: sigs[i],
            message: m,
        })
        .collect();
    // ed25519-dalek's inputs, built only when its rate is asked for.
    let reference = dalek.then(|| {
        let dalek_64: Vec<ed25519_dalek::VerifyingKey> = keys
            .iter()
            .map(|k| ed25519_dalek::VerifyingKey::from_bytes(k.public_key().as_bytes()).expect("a key we just made"))
            .collect();
        let keys: Vec<ed25519_dalek::VerifyingKey> = (0..n).map(|i| dalek_64[i % 64]).collect();
        let sigs: Vec<ed25519_dalek::Signature> = sigs
            .iter()
            .map(|s| ed25519_dalek::Signature::from_bytes(s.as_bytes()))
            .collect();
        let messages: Vec<&[u8]> = msgs.iter().map(Vec::as_slice).collect();
        (keys, sigs, messages)
    });
    let _ = liutong_core::verify_batch(&items[..n.min(2000)]); // warm-up
    let (mut ours, mut theirs) = (0.0f64, 0.0f64);
    for _ in 0..3 {
        let t = Instant::now();
        let ok = liutong_core::verify_batch(&items);
        ours = ours.max(n as f64 / t.elapsed().as_secs_f64());
        assert!(ok.iter().all(|v| *v), "freshly made signatures verify");
        let Some((dalek_keys, dalek_sigs, messages)) = &reference else {
            continue;
        };
        let t = Instant::now();
        let ok = (0..n).into_par_iter().step_by(1024).all(|lo| {
            let hi = (lo + 1024).min(n);
            ed25519_dalek::verify_batch(&messages[lo..hi], &dalek_sigs[lo..hi], &dalek_keys[lo..hi]).is_ok()
        });
        theirs = theirs.max(n as f64 / t.elapsed().as_secs_f64());
        assert!(ok, "freshly made signatures verify under ed25519-dalek");
    }
    (ours, theirs)
}

/// The same check over the benchmark's own transactions (1,000 signers, so
/// hardly two signatures per key in a batch), in the chunks the node gets
/// them in: what signature checking alone would allow for this load.
fn workload_verify_rate(txs: &[Vec<u8>], chunk: usize) -> f64 {
    let decoded: Vec<liutong_ledger::SignedTx> = txs
        .iter()
        .map(|b| liutong_ledger::SignedTx::from_canonical_bytes(b).expect("we just encoded it"))
        .collect();
    let messages: Vec<Vec<u8>> = decoded.iter().map(|t| t.tx.signing_bytes()).collect();
    let items: Vec<VerifyItem> = decoded
        .iter()
        .zip(&messages)
        .map(|(t, m)| VerifyItem {
            key: t.tx.signer,
            signature: t.signature,
            message: m,
        })
        .collect();
    let t = Instant::now();
    let ok: usize = items
        .chunks(chunk.max(1))
        .map(|c| liutong_core::verify_batch(c).iter().filter(|v| **v).count())
        .sum();
    assert_eq!(ok, items.len(), "freshly made signatures verify");
    items.len() as f64 / t.elapsed().as_secs_f64()
}

fn notarization(chain: &str, key: &SigningKey, i: u64) -> Vec<u8> {
    let body = Notarize {
        digest: sha256(&[&i.to_le_bytes()[..], &rand::random::<[u8; 16]>()].concat()),
        file_name: Some(format!("invoice-{i}.pdf")),
        media_type: Some("application/pdf".into()),
        note: None,
    };
    sign_tx(chain, KIND_NOTARIZE, &body, key).canonical_bytes()
}

fn err(msg: impl Into<String>) -> Error {
    Error::Io(msg.into())
}

/// `n` new parties with `roles`, registered and approved over HTTP in batches.
async fn admit_parties(
    client: &Client,
    chain: &str,
    operator: &Identity,
    n: usize,
    roles: &[Role],
) -> Result<(Vec<Identity>, Vec<CreditCode>)> {
    admit_parties_from(client, chain, operator, n, roles, 0).await
}

/// [`admit_parties`] with credit codes numbered from `first`.
async fn admit_parties_from(
    client: &Client,
    chain: &str,
    operator: &Identity,
    n: usize,
    roles: &[Role],
    first: usize,
) -> Result<(Vec<Identity>, Vec<CreditCode>)> {
    let parties: Vec<Identity> = (0..n).map(|_| Identity::generate()).collect();
    let codes: Vec<CreditCode> = (first..first + n)
        .map(|i| CreditCode::with_check_character(&format!("91110000MA{i:07}")))
        .collect::<liutong_core::Result<_>>()?;
    let mut txs = Vec::with_capacity(2 * n);
    for (p, c) in parties.iter().zip(&codes) {
        let body = RegisterParty {
            legal_name: format!("Bench Member {c}"),
            credit_code: c.to_string(),
            contact: "bench@example.com".into(),
            roles: roles.to_vec(),
            encryption_key: p.encryption.public_key(),
            endpoint: "http://127.0.0.1:1".into(),
        };
        txs.push(sign_tx(chain, KIND_REGISTER, &body, &p.signing).canonical_bytes());
    }
    for c in &codes {
        let body = ChangeStanding {
            credit_code: c.to_string(),
            reason: String::new(),
        };
        txs.push(sign_tx(chain, KIND_APPROVE, &body, &operator.signing).canonical_bytes());
    }
    // Registrations come before approvals, and a batch is applied in order.
    for batch in txs.chunks(2048) {
        for r in client.submit_batch(batch).await? {
            r?;
        }
    }
    Ok((parties, codes))
}

/// A transaction the benchmark just signed, ready for the orderer path
/// (which trusts its callers to have checked envelopes and signatures).
fn own_tx(bytes: Vec<u8>) -> CheckedTx {
    let tx = liutong_ledger::SignedTx::from_canonical_bytes(&bytes).expect("we just encoded it");
    CheckedTx {
        id: sha256(&bytes),
        bytes,
        tx,
    }
}

/// A fresh operator home under `dir` and its solo node on a free loopback port.
pub(crate) async fn bench_node(dir: &std::path::Path, chain_id: &str) -> Result<(Home, node::RunningNode, Client)> {
    let home = Home::new(dir.join(chain_id));
    crate::cli::init(
        &home,
        &InitArgs {
            chain_id: chain_id.into(),
            name: "Bench Exchange".into(),
            credit_code: crate::demo::OPERATOR_CODE.into(),
            contact: "bench@example.com".into(),
            endpoint: "http://127.0.0.1:1".into(),
        },
    )?;
    let node = node::start(NodeConfig {
        home: home.clone(),
        listen: "127.0.0.1:0".parse().expect("literal address"),
        follow: None,
        receipt_timeout: crate::serve::DEFAULT_RECEIPT_TIMEOUT,
        queries: Default::default(),
    })
    .await?;
    let client = Client::new(&node.url)?;
    Ok((home, node, client))
}

async fn ledger(b: LedgerBench) -> Result<Output> {
    let dir = tempfile::tempdir().map_err(|e| err(e.to_string()))?;
    let (home, node, client) = bench_node(dir.path(), "liutong-bench").await?;
    let operator = home.identity()?;
    let chain = node.genesis.chain_id.clone();

    eprintln!("bench ledger: registering and approving {} parties …", b.keys);
    let (parties, _) = admit_parties(&client, &chain, &operator, b.keys, &[Role::Provider, Role::Consumer]).await?;

    eprintln!("bench ledger: signing {} + {} notarizations …", b.txs, b.single_txs);
    let keys: Arc<Vec<SigningKey>> = Arc::new(parties.iter().map(|p| p.signing.clone()).collect());
    let total = b.txs + b.single_txs;
    let signed: Vec<Vec<u8>> = {
        let (keys, chain) = (keys.clone(), chain.clone());
        tokio::task::spawn_blocking(move || {
            (0..total)
                .into_par_iter()
                .map(|i| notarization(&chain, &keys[i % keys.len()], i as u64))
                .collect()
        })
        .await
        .map_err(|e| err(e.to_string()))?
    };
    let (batch_txs, single_txs) = signed.split_at(b.txs);
    let sample: Vec<Vec<u8>> = batch_txs[..batch_txs.len().min(100_000)].to_vec();
    let chunk = b.batch;
    let workload_verify_per_s = tokio::task::spawn_blocking(move || workload_verify_rate(&sample, chunk))
        .await
        .map_err(|e| err(e.to_string()))?;

    // The raw rate is measured right before and right after the batched
    // phase, and the higher one counts: this VM's speed drifts between
    // minutes, and the ratio should not gain from a slow moment.
    eprintln!(
        "bench ledger: raw Ed25519 batch verification on {} threads …",
        rayon::current_num_threads()
    );
    let raw_n = b.txs.clamp(10_000, 100_000);
    let (raw_before, dalek_before) = tokio::task::spawn_blocking(move || raw_verify_rates(raw_n, true))
        .await
        .map_err(|e| err(e.to_string()))?;

    // Batch requests: `clients` concurrent clients, each posting batches.
    eprintln!(
        "bench ledger: {} txs in batches of {} from {} clients …",
        b.txs, b.batch, b.clients
    );
    let batches: Vec<Vec<Vec<u8>>> = batch_txs.chunks(b.batch.max(1)).map(|c| c.to_vec()).collect();
    let queue = Arc::new(std::sync::Mutex::new(batches));
    let start_height = node.ledger.height();
    let encoding = b.batch_encoding;
    let cpu_start = process_cpu_secs();
    let t = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..b.clients.max(1) {
        let (queue, client) = (queue.clone(), client.clone());
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut committed = 0usize;
            loop {
                let next = queue.lock().unwrap_or_else(|p| p.into_inner()).pop();
                let Some(batch) = next else { break };
                let t0 = Instant::now();
                let results = match encoding {
                    BatchEncoding::Raw => client.submit_batch_raw(&batch, ReceiptDetail::Compact).await?,
                    BatchEncoding::Json => client.submit_batch(&batch).await?,
                };
                let ms = t0.elapsed().as_secs_f64() * 1000.0;
                for r in results {
                    r?;
                    committed += 1;
                    lat.push(ms);
                }
            }
            Ok::<_, Error>((committed, lat))
        }));
    }
    let mut lat = Vec::new();
    let mut committed = 0;
    for t in tasks {
        let (c, l) = t.await.map_err(|e| err(e.to_string()))??;
        committed += c;
        lat.extend(l);
    }
    let batch_secs = t.elapsed().as_secs_f64();
    let batch_cpu = cpu_start.zip(process_cpu_secs()).map(|(a, b)| b - a);
    let (raw_after, dalek_after) = tokio::task::spawn_blocking(move || raw_verify_rates(raw_n, true))
        .await
        .map_err(|e| err(e.to_string()))?;
    let raw_verify_per_s = raw_before.max(raw_after);
    let dalek_verify_per_s = dalek_before.max(dalek_after);
    let blocks = node.ledger.height() - start_height;
    lat.sort_by(f64::total_cmp);
    let batch_tps = committed as f64 / batch_secs;
    let (p50, p99) = (percentile(&lat, 0.5), percentile(&lat, 0.99));

    // One transaction per request.
    eprintln!(
        "bench ledger: {} txs one per request, {} in flight …",
        b.single_txs, b.single_concurrency
    );
    let queue = Arc::new(std::sync::Mutex::new(single_txs.to_vec()));
    let t = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..b.single_concurrency.max(1) {
        let (queue, client) = (queue.clone(), client.clone());
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            loop {
                let next = queue.lock().unwrap_or_else(|p| p.into_inner()).pop();
                let Some(tx) = next else { break };
                let t0 = Instant::now();
                client.submit_bytes(&tx).await?;
                lat.push(t0.elapsed().as_secs_f64() * 1000.0);
            }
            Ok::<_, Error>(lat)
        }));
    }
    let mut single_lat = Vec::new();
    for t in tasks {
        single_lat.extend(t.await.map_err(|e| err(e.to_string()))??);
    }
    let single_secs = t.elapsed().as_secs_f64();
    single_lat.sort_by(f64::total_cmp);
    let single_tps = single_lat.len() as f64 / single_secs;

    node.stop().await;

    // Inclusion-proof latency as the log grows, on a fresh node whose log is
    // filled directly through the orderer path (sealed and committed blocks).
    let (home, node, client) = bench_node(dir.path(), "liutong-bench-proofs").await?;
    let operator = home.identity()?;
    let chain = node.genesis.chain_id.clone();
    let mut proofs = Vec::new();
    let ledger = node.ledger.clone();
    let orderer_key = home.orderer_key()?;
    for &size in &b.proof_sizes {
        let have = ledger.genesis().params.block_max_txs as u64;
        eprintln!("bench ledger: growing the log to {size} transactions …");
        let (ledger2, key, signer, chain2) = (
            ledger.clone(),
            orderer_key.clone(),
            operator.signing.clone(),
            chain.clone(),
        );
        tokio::task::spawn_blocking(move || -> Result<()> {
            let mut next = ledger2.head().map_or(0, |h| h.header.log_size);
            while next < size {
                let n = (size - next).min(have);
                let txs: Vec<CheckedTx> = (0..n)
                    .into_par_iter()
                    .map(|i| own_tx(notarization(&chain2, &signer, next + i)))
                    .collect();
                for a in ledger2.propose_block(txs, &key, now_ms())? {
                    a?;
                }
                next += n;
            }
            Ok(())
        })
        .await
        .map_err(|e| err(e.to_string()))??;
        let log_size = ledger.head().map_or(0, |h| h.header.log_size);
        let samples: Vec<TxId> = (0..300)
            .map(|_| ledger.tx_at(rand::random::<u64>() % log_size).map(|r| r.id))
            .collect::<liutong_ledger::Result<_>>()?;
        let mut http = Vec::new();
        let mut direct = Vec::new();
        for id in &samples {
            let t0 = Instant::now();
            let p = ledger.inclusion_proof(id, None)?;
            direct.push(t0.elapsed().as_secs_f64() * 1000.0);
            let t0 = Instant::now();
            let v = client.inclusion_proof(id, None).await?;
            http.push(t0.elapsed().as_secs_f64() * 1000.0);
            if v.audit_path.len() != p.audit_path.len() {
                return Err(err("HTTP and direct proofs differ"));
            }
        }
        http.sort_by(f64::total_cmp);
        direct.sort_by(f64::total_cmp);
        proofs.push(json!({
            "log_size": log_size,
            "audit_path_len": ledger.inclusion_proof(&samples[0], None)?.audit_path.len(),
            "http_p50_ms": round2(percentile(&http, 0.5)),
            "http_p99_ms": round2(percentile(&http, 0.99)),
            "direct_p50_us": round2(percentile(&direct, 0.5) * 1000.0),
            "direct_p99_us": round2(percentile(&direct, 0.99) * 1000.0),
        }));
    }
    drop(ledger);
    node.stop().await;
    tokio::time::sleep(Duration::from_millis(10)).await;

    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let result = json!({
        "bench": "ledger",
        "cores": cores,
        "keys": b.keys,
        "clients": b.clients,
        "batch_size": b.batch,
        "batch_encoding": match b.batch_encoding {
            BatchEncoding::Raw => "raw",
            BatchEncoding::Json => "json",
        },
        "txs": committed,
        "blocks": blocks,
        "tx_per_s": batch_tps.round(),
        "raw_verify_per_s": raw_verify_per_s.round(),
        "raw_verify_before_after": [raw_before.round(), raw_after.round()],
        "cpu_busy": batch_cpu.map(|c| round2(c / (batch_secs * cores as f64))),
        "cpu_us_per_tx": batch_cpu.map(|c| round2(c * 1e6 / committed.max(1) as f64)),
        "ratio": round2(batch_tps / raw_verify_per_s),
        "dalek_verify_per_s": dalek_verify_per_s.round(),
        "dalek_ratio": round2(batch_tps / dalek_verify_per_s),
        "workload_verify_per_s": workload_verify_per_s.round(),
        "workload_ratio": round2(batch_tps / workload_verify_per_s),
        "p50_ms": round2(p50),
        "p99_ms": round2(p99),
        "single": {
            "txs": single_lat.len(),
            "concurrency": b.single_concurrency,
            "tx_per_s": single_tps.round(),
            "ratio": round2(single_tps / raw_verify_per_s),
            "p50_ms": round2(percentile(&single_lat, 0.5)),
            "p99_ms": round2(percentile(&single_lat, 0.99)),
        },
        "inclusion_proof": proofs,
    });
    Ok(Output {
        ok: true,
        text: result.to_string(),
        json: result,
    })
}
