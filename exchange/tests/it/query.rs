//! Compute-to-data between processes: the provider's node as a `liutong
//! node` process serving its tables (CSV, Parquet, NDJSON, Arrow IPC files
//! and a table in a real PostgreSQL server the test starts), the consumer
//! as `liutong query` processes, the terms enforced on the provider's side,
//! and each answered query in the access log with both digests.

use crate::common::*;
use arrow::array::{ArrayRef, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use liutong_core::{now_ms, Canonical};
use liutong_exchange::client::sign_tx;
use liutong_exchange::home::Home;
use liutong_exchange::machine::*;
use liutong_exchange::party::*;
use std::path::{Path, PathBuf};
use std::sync::Arc;

const PROVIDER: u32 = 9_200;
const CONSUMER: u32 = 9_201;

/// The shipments every source holds: port, consignee, teu.
const ROWS: [(&str, &str, i64); 8] = [
    ("Ningbo", "Acme", 10),
    ("Ningbo", "Bolt", 20),
    ("Ningbo", "Cargo", 30),
    ("Shanghai", "Delta", 40),
    ("Shanghai", "Echo", 50),
    ("Shanghai", "Fox", 60),
    ("Shanghai", "Gale", 70),
    ("Qingdao", "Hull", 80),
];

fn batch() -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![
        Field::new("port", DataType::Utf8, false),
        Field::new("consignee", DataType::Utf8, false),
        Field::new("teu", DataType::Int64, false),
    ]));
    let columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from_iter_values(ROWS.iter().map(|r| r.0))),
        Arc::new(StringArray::from_iter_values(ROWS.iter().map(|r| r.1))),
        Arc::new(Int64Array::from_iter_values(ROWS.iter().map(|r| r.2))),
    ];
    RecordBatch::try_new(schema, columns).expect("batch")
}

/// The same rows as CSV, Parquet, NDJSON and Arrow IPC files.
fn write_files(dir: &Path) -> Vec<(&'static str, PathBuf)> {
    let b = batch();
    let csv = dir.join("shipments.csv");
    let mut text = String::from("port,consignee,teu\n");
    for (p, c, t) in ROWS {
        text.push_str(&format!("{p},{c},{t}\n"));
    }
    std::fs::write(&csv, text).expect("csv");
    let parquet = dir.join("shipments.parquet");
    let mut w =
        parquet::arrow::ArrowWriter::try_new(std::fs::File::create(&parquet).expect("create"), b.schema(), None)
            .expect("writer");
    w.write(&b).expect("write");
    w.close().expect("close");
    let ndjson = dir.join("shipments.ndjson");
    let mut text = String::new();
    for (p, c, t) in ROWS {
        text.push_str(&format!("{{\"port\":\"{p}\",\"consignee\":\"{c}\",\"teu\":{t}}}\n"));
    }
    std::fs::write(&ndjson, text).expect("ndjson");
    let arrow_file = dir.join("shipments.arrow");
    let mut w =
        arrow::ipc::writer::FileWriter::try_new(std::fs::File::create(&arrow_file).expect("create"), &b.schema())
            .expect("writer");
    w.write(&b).expect("write");
    w.finish().expect("finish");
    vec![
        ("csv", csv),
        ("parquet", parquet),
        ("ndjson", ndjson),
        ("arrow", arrow_file),
    ]
}

struct World {
    net: Net,
    dir: PathBuf,
    provider: Home,
    provider_url: String,
    _node: NodeProcess,
    consumer: Home,
}

impl World {
    async fn synced(&self) {
        let want = self.net.node.ledger.height();
        let client = liutong_exchange::client::Client::new(&self.provider_url).expect("client");
        for _ in 0..400 {
            if client.status().await.map(|s| s.height >= want).unwrap_or(false) {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
        panic!("the provider's node did not catch up");
    }

    fn run(&self, home: &Home, args: &[&str]) -> (bool, serde_json::Value) {
        let mut all: Vec<&str> = args.to_vec();
        all.extend(["--node", &self.net.node.url]);
        liutong(home.dir(), &all)
    }

    /// Registers a source (a file, or PostgreSQL `--source URL --table T`) as `name`.
    fn register(&self, name: &str, source: &[&str]) -> String {
        let mut args = vec!["dataset", "register"];
        args.extend(source);
        args.extend(["--name", name, "--title", "Shipments"]);
        let (ok, j) = self.run(&self.provider, &args);
        assert!(ok, "{j}");
        j["dataset"]["id"].as_str().expect("id").to_string()
    }

    /// An automatic offer with `terms` (query terms over the defaults) and
    /// the consumer's grant on it.
    async fn grant(&self, dataset: &str, offer: u32, terms: serde_json::Value) -> String {
        let now = now_ms();
        let mut t = serde_json::json!({
            "purposes": ["trade-finance"], "not_before": now - 60_000, "not_after": now + 7 * 86_400_000u64,
            "max_uses": 100, "actions": ["query"], "columns": null, "row_filter": null, "masks": [],
            "min_group_size": null, "row_cap": null, "transferable": false
        });
        for (k, v) in terms.as_object().expect("object") {
            t[k] = v.clone();
        }
        let path = self.dir.join(format!("terms-{dataset}-{offer}.json"));
        std::fs::write(&path, t.to_string()).expect("terms");
        let (ok, j) = self.run(
            &self.provider,
            &[
                "offer",
                "add",
                dataset,
                "--terms",
                path.to_str().expect("utf-8"),
                "--automatic",
            ],
        );
        assert!(ok, "{j}");
        let (ok, j) = self.run(
            &self.consumer,
            &[
                "grant",
                "request",
                dataset,
                "--offer",
                &offer.to_string(),
                "--purpose",
                "trade-finance",
                "--max-uses",
                "10",
                "--days",
                "1",
            ],
        );
        assert!(ok, "{j}");
        self.synced().await;
        j["grant"]["id"].as_str().expect("id").to_string()
    }

    fn query(&self, dataset: &str, grant: &str, sql: &str, extra: &[&str]) -> (bool, serde_json::Value) {
        let mut args = vec!["query", dataset, sql, "--grant", grant];
        if !extra.contains(&"--format") {
            args.extend(["--format", "json"]);
        }
        args.extend(extra);
        self.run(&self.consumer, &args)
    }

    /// Asserts that each query is refused under `grant` with its code.
    fn refused(&self, dataset: &str, grant: &str, cases: &[(&str, &str)]) {
        for (sql, code) in cases {
            let (ok, j) = self.query(dataset, grant, sql, &[]);
            assert!(!ok, "{sql}: {j}");
            assert_eq!(j["error"]["code"], *code, "{sql}: {j}");
        }
    }

    /// The access-log entries of a grant, oldest first.
    async fn entries(&self, grant: &str) -> Vec<serde_json::Value> {
        let page: serde_json::Value = self
            .net
            .client
            .get(&format!("/v1/access-log?grant={grant}"))
            .await
            .expect("access log");
        page["entries"].as_array().cloned().unwrap_or_default()
    }

    async fn uses(&self, grant: &str) -> u64 {
        self.net
            .client
            .grant(&grant.parse().expect("id"))
            .await
            .expect("grant")
            .grant
            .uses
    }
}

async fn world() -> World {
    world_with(&["--query-timeout", "20"]).await
}

async fn world_with(node_args: &[&str]) -> World {
    let net = orderer().await;
    let dir = net.dir.path().to_path_buf();
    let provider = Home::new(dir.join("provider"));
    let pid = provider.create_identity().expect("keys");
    let mut args = vec!["--follow", net.node.url.as_str()];
    args.extend(node_args);
    let (node, provider_url) = start_node_with(provider.dir(), &args);
    let consumer = Home::new(dir.join("consumer"));
    let cid = consumer.create_identity().expect("keys");
    for (n, role, id) in [(PROVIDER, Role::Provider, &pid), (CONSUMER, Role::Consumer, &cid)] {
        let body = RegisterParty {
            legal_name: format!("Member {n}"),
            credit_code: code(n),
            contact: "office@example.com".into(),
            roles: vec![role],
            encryption_key: id.encryption.public_key(),
            endpoint: provider_url.clone(),
        };
        net.client
            .submit_bytes(&sign_tx(&net.chain, KIND_REGISTER, &body, &id.signing).canonical_bytes())
            .await
            .expect("registers");
        net.client
            .submit_bytes(&standing(&net, KIND_APPROVE, &net.operator.signing, &code(n)))
            .await
            .expect("approves");
    }
    World {
        net,
        dir,
        provider,
        provider_url,
        _node: node,
        consumer,
    }
}

fn rows(j: &serde_json::Value) -> Vec<serde_json::Value> {
    j["data"].as_array().cloned().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_source_kind_answers_queries_under_the_grant() {
    let w = world().await;
    // Four table files and a PostgreSQL table, one dataset each.
    let mut datasets = Vec::new();
    for (kind, path) in write_files(&w.dir) {
        let id = w.register(&format!("shipments-{kind}"), &[path.to_str().expect("utf-8")]);
        datasets.push((kind.to_string(), format!("\"shipments-{kind}\""), id));
    }
    let pg = liutong_connectors::testing::PgServer::start().unwrap_or_else(|e| panic!("{e}"));
    pg.execute("CREATE TABLE shipments (port text NOT NULL, consignee text NOT NULL, teu bigint NOT NULL)")
        .await
        .expect("create");
    let values: Vec<String> = ROWS.iter().map(|(p, c, t)| format!("('{p}', '{c}', {t})")).collect();
    pg.execute(&format!("INSERT INTO shipments VALUES {}", values.join(", ")))
        .await
        .expect("insert");
    let url = pg.url();
    let id = w.register("shipments-pg", &["--source", &url, "--table", "shipments"]);
    datasets.push(("postgres".into(), "\"shipments-pg\"".into(), id.clone()));
    // The descriptor says what a PostgreSQL table's commitment covers; the
    // connection string never reaches the ledger.
    let (ok, j) = w.run(&w.consumer, &["dataset", "show", &id]);
    assert!(ok, "{j}");
    assert_eq!(
        j["description"]["media_type"], "application/vnd.apache.arrow.stream",
        "{j}"
    );
    assert!(j.to_string().contains("canonical Arrow IPC"), "{j}");
    assert!(!j.to_string().contains(&url), "{j}");

    for (kind, table, dataset) in &datasets {
        let grant = w.grant(dataset, 1, serde_json::json!({})).await;
        let sql = format!("SELECT port, count(*) AS n, sum(teu) AS teu FROM {table} GROUP BY port ORDER BY port");
        let (ok, j) = w.query(dataset, &grant, &sql, &[]);
        assert!(ok, "{kind}: {j}");
        assert_eq!(
            rows(&j),
            vec![
                serde_json::json!({"port": "Ningbo", "n": 3, "teu": 60}),
                serde_json::json!({"port": "Qingdao", "n": 1, "teu": 80}),
                serde_json::json!({"port": "Shanghai", "n": 4, "teu": 220}),
            ],
            "{kind}: {j}"
        );
        let entry = &j["access_log"];
        assert_eq!(entry["outcome"], "acknowledged", "{kind}: {j}");
        assert_eq!(entry["action"], "query", "{kind}: {j}");
        assert_eq!(entry["result"], j["result"], "{kind}: {j}");
        assert_eq!(entry["query"]["rows"], 3, "{kind}: {j}");
        let sql_digest = liutong_core::sha256(sql.as_bytes()).to_string();
        assert_eq!(entry["query"]["query"], sql_digest, "{kind}: {j}");
        assert_eq!(w.uses(&grant).await, 1, "{kind}");
    }

    // Live PostgreSQL: a pushed-down filter reads the server's rows.
    let (_, _, pg_dataset) = datasets.last().expect("pg");
    let grant = w
        .grant(pg_dataset, 2, serde_json::json!({"row_filter": "teu >= 40"}))
        .await;
    let (ok, j) = w.query(
        pg_dataset,
        &grant,
        "SELECT consignee FROM \"shipments-pg\" WHERE port = 'Shanghai' AND teu < 60 ORDER BY consignee",
        &[],
    );
    assert!(ok, "{j}");
    assert_eq!(
        rows(&j),
        vec![
            serde_json::json!({"consignee": "Delta"}),
            serde_json::json!({"consignee": "Echo"})
        ],
        "{j}"
    );
    drop(pg);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terms_are_enforced_and_refusals_cost_no_use() {
    let w = world().await;
    let files = write_files(&w.dir);
    let csv = files[0].1.to_str().expect("utf-8").to_string();
    let dataset = w.register("shipments", &[&csv]);
    let grant = w
        .grant(
            &dataset,
            1,
            serde_json::json!({
                "columns": ["port", "teu"], "row_filter": "teu > 10",
                "min_group_size": 2, "row_cap": 100
            }),
        )
        .await;
    // An aggregate inside the terms: filtered rows and small groups are gone.
    let (ok, j) = w.query(
        &dataset,
        &grant,
        "SELECT port, count(*) AS n, sum(teu) AS teu FROM shipments GROUP BY port ORDER BY port",
        &[],
    );
    assert!(ok, "{j}");
    assert_eq!(
        rows(&j),
        vec![
            serde_json::json!({"port": "Ningbo", "n": 2, "teu": 50}),
            serde_json::json!({"port": "Shanghai", "n": 4, "teu": 220}),
        ],
        "{j}"
    );
    let enforced = j["enforced"].to_string();
    for term in [
        "row filter: teu > 10",
        "columns: port, teu",
        "at least 2 rows",
        "at most 100 rows",
    ] {
        assert!(enforced.contains(term), "{term} not in {enforced}");
    }
    assert_eq!(j["access_log"]["query"]["enforced"], j["enforced"], "{j}");
    assert_eq!(w.uses(&grant).await, 1);

    // Refusals, each with its code and reason, none counting a use.
    w.refused(
        &dataset,
        &grant,
        &[
            (
                "SELECT consignee, count(*) FROM shipments GROUP BY consignee",
                "query.forbidden_column",
            ),
            ("SELECT port, teu FROM shipments", "query.not_aggregated"),
            ("DROP TABLE shipments", "query.not_select"),
            ("SELECT 1; SELECT 2", "query.multiple_statements"),
            ("SELECT count(*) FROM other_table", "query.unknown_table"),
        ],
    );
    let (ok, j) = w.query(
        &dataset,
        &grant,
        "SELECT consignee, count(*) FROM shipments GROUP BY consignee",
        &[],
    );
    assert!(!ok);
    assert!(
        j["error"]["message"].as_str().unwrap_or_default().contains("consignee"),
        "the refusal names the column: {j}"
    );
    assert_eq!(w.uses(&grant).await, 1, "refused queries count no use");

    // The CLI's other formats, and a result written to a file.
    let out = w.dir.join("result.csv");
    let (ok, j) = w.query(
        &dataset,
        &grant,
        "SELECT port, count(*) AS n FROM shipments GROUP BY port ORDER BY port",
        &["--format", "csv", "--out", out.to_str().expect("utf-8")],
    );
    assert!(ok, "{j}");
    assert_eq!(
        std::fs::read_to_string(&out).expect("csv"),
        "port,n\nNingbo,2\nShanghai,4\n"
    );

    // A download request under a query grant is refused; a query under a
    // download-only grant too.
    let (ok, j) = w.run(
        &w.consumer,
        &[
            "fetch",
            &dataset,
            "--grant",
            &grant,
            "--out",
            w.dir.join("whole.csv").to_str().expect("utf-8"),
        ],
    );
    assert!(!ok, "{j}");
    assert_eq!(j["error"]["code"], "use.action_not_allowed", "{j}");
    let download = w.grant(&dataset, 2, serde_json::json!({"actions": ["download"]})).await;
    let (ok, j) = w.query(&dataset, &download, "SELECT count(*) FROM shipments", &[]);
    assert!(!ok, "{j}");
    assert_eq!(j["error"]["code"], "use.action_not_allowed", "{j}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runaway_queries_hit_the_nodes_time_and_memory_limits() {
    let w = world_with(&["--query-timeout", "2", "--query-memory", "16"]).await;
    let files = write_files(&w.dir);
    let dataset = w.register("shipments", &[files[0].1.to_str().expect("utf-8")]);
    let grant = w.grant(&dataset, 1, serde_json::json!({})).await;
    // 8^10 rows of cross join: far more than 2 seconds.
    let many = (0..10)
        .map(|i| format!("shipments s{i}"))
        .collect::<Vec<_>>()
        .join(", ");
    let (ok, j) = w.query(&dataset, &grant, &format!("SELECT count(*) FROM {many}"), &[]);
    assert!(!ok, "{j}");
    assert_eq!(j["error"]["code"], "query.timeout", "{j}");
    // Millions of groups in 16 MiB.
    let seven = (0..7).map(|i| format!("shipments s{i}")).collect::<Vec<_>>().join(", ");
    let keys = (0..7).map(|i| format!("s{i}.consignee")).collect::<Vec<_>>().join(", ");
    let (ok, j) = w.query(
        &dataset,
        &grant,
        &format!("SELECT {keys}, count(*) FROM {seven} GROUP BY {keys} ORDER BY 1 LIMIT 1"),
        &[],
    );
    assert!(!ok, "{j}");
    assert!(j["error"]["code"] == "query.memory_limit", "{j}");
    // Both ran on the provider's data: each is a use, in the access log
    // with its outcome, and neither message carries a value.
    assert_eq!(
        w.uses(&grant).await,
        2,
        "a query that ran is a use, whatever its outcome"
    );
    let page: serde_json::Value = w
        .net
        .client
        .get(&format!("/v1/access-log?grant={grant}"))
        .await
        .expect("access log");
    let entries = page["entries"].as_array().expect("entries");
    let failures: Vec<&str> = entries.iter().filter_map(|e| e["query"]["failure"].as_str()).collect();
    assert_eq!(failures, vec!["query.timeout", "query.memory_limit"], "{page}");
    assert!(
        entries.iter().all(|e| e["outcome"] == "failed" && e["bytes"] == 0),
        "{page}"
    );
    // The node still answers.
    let (ok, j) = w.query(&dataset, &grant, "SELECT count(*) AS n FROM shipments", &[]);
    assert!(ok, "{j}");
    assert_eq!(rows(&j), vec![serde_json::json!({"n": 8})], "{j}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_query_calls_get_codes() {
    use liutong_exchange::delivery::{DeliveryRequest, SignedRequest};
    use liutong_exchange::query::{query_digest, QueryCall};
    let w = world().await;
    let files = write_files(&w.dir);
    let dataset = w.register("shipments", &[files[0].1.to_str().expect("utf-8")]);
    let grant = w.grant(&dataset, 1, serde_json::json!({})).await;
    let post = |path: &'static str, body: Vec<u8>| {
        let url = format!("{}{path}", w.provider_url);
        async move {
            let r = reqwest::Client::new()
                .post(url)
                .body(body)
                .send()
                .await
                .expect("answers");
            (r.status().as_u16(), r.json::<serde_json::Value>().await.expect("JSON"))
        }
    };
    let (s, j) = post("/v1/queries", b"junk".to_vec()).await;
    assert_eq!((s, j["code"].as_str()), (400, Some("query.malformed")), "{j}");
    let (s, j) = post("/v1/queries", vec![b'x'; 1 << 20]).await;
    assert_eq!((s, j["code"].as_str()), (413, Some("request.too_large")), "{j}");
    let consumer = w.consumer.identity().expect("id");
    let sql = "SELECT count(*) FROM shipments";
    let request = |nonce: u64, action, query| DeliveryRequest {
        chain_id: w.net.chain.clone(),
        grant: grant.parse().expect("id"),
        dataset: dataset.parse().expect("id"),
        version: 1,
        action,
        nonce,
        timestamp: now_ms(),
        from_chunk: 0,
        resumes: None,
        query,
        private: None,
    };
    let call = |r: DeliveryRequest, sql: &str| {
        QueryCall {
            request: SignedRequest::sign(r, &consumer.signing),
            sql: sql.to_string(),
        }
        .to_bytes()
    };
    // The SQL sent is not the one signed for.
    let r = request(1, liutong_policies::Action::Query, Some(query_digest(sql)));
    let (s, j) = post("/v1/queries", call(r, "SELECT 1")).await;
    assert_eq!((s, j["code"].as_str()), (400, Some("query.digest_mismatch")), "{j}");
    // A download request on the query route, and a query request on the delivery route.
    let r = request(2, liutong_policies::Action::Download, None);
    let (s, j) = post("/v1/queries", call(r, sql)).await;
    assert_eq!((s, j["code"].as_str()), (400, Some("query.bad_request")), "{j}");
    let r = request(3, liutong_policies::Action::Query, Some(query_digest(sql)));
    let (s, j) = post("/v1/deliveries", SignedRequest::sign(r, &consumer.signing).to_bytes()).await;
    assert_eq!((s, j["code"].as_str()), (400, Some("delivery.wrong_action")), "{j}");
    // A forged signature.
    let mut forged = SignedRequest::sign(
        request(4, liutong_policies::Action::Query, Some(query_digest(sql))),
        &consumer.signing,
    );
    forged.request.nonce = 5;
    let body = QueryCall {
        request: forged,
        sql: sql.to_string(),
    }
    .to_bytes();
    let (s, j) = post("/v1/queries", body).await;
    assert_eq!((s, j["code"].as_str()), (401, Some("delivery.bad_signature")), "{j}");
    assert_eq!(w.uses(&grant).await, 0, "nothing here counted a use");
}

/// A private query: proven instead of naming the grant, run under the
/// grant's query terms (bound into its commitment), logged without grant or
/// consumer; a refused query spends no nullifier.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_queries_run_under_the_grants_terms() {
    let w = world().await;
    let auditor = auditor(&w.net, &w.dir, 9).await;
    let files = write_files(&w.dir);
    let csv = files[0].1.to_str().expect("utf-8").to_string();
    let dataset = w.register("shipments", &[&csv]);
    let now = now_ms();
    let terms = w.dir.join("private-terms.json");
    std::fs::write(
        &terms,
        serde_json::json!({
            "purposes": ["trade-finance"], "not_before": now - 60_000, "not_after": now + 7 * 86_400_000u64,
            "max_uses": 100, "actions": ["query"], "columns": ["port", "teu"], "row_filter": "teu > 10",
            "masks": [], "min_group_size": 2, "row_cap": 100, "transferable": false
        })
        .to_string(),
    )
    .expect("terms");
    let (ok, j) = w.run(
        &w.provider,
        &[
            "offer",
            "add",
            &dataset,
            "--terms",
            terms.to_str().expect("utf-8"),
            "--automatic",
        ],
    );
    assert!(ok, "{j}");
    let (ok, j) = w.run(
        &w.consumer,
        &[
            "grant",
            "request",
            &dataset,
            "--offer",
            "1",
            "--purpose",
            "trade-finance",
            "--max-uses",
            "3",
            "--days",
            "1",
            "--private",
        ],
    );
    assert!(ok, "{j}");
    let grant = j["grant"]["id"].as_str().expect("id").to_string();
    w.synced().await;
    let sql = "SELECT port, count(*) AS n, sum(teu) AS teu FROM shipments GROUP BY port ORDER BY port";
    let (ok, j) = w.query(&dataset, &grant, sql, &["--private"]);
    assert!(ok, "{j}");
    assert_eq!(
        rows(&j),
        vec![
            serde_json::json!({"port": "Ningbo", "n": 2, "teu": 50}),
            serde_json::json!({"port": "Shanghai", "n": 4, "teu": 220}),
        ],
        "the grant's filter and minimum group size hold for a private query"
    );
    let entry = &j["access_log"];
    assert!(entry["grant"].is_null() && entry["consumer"].is_null(), "{entry}");
    assert!(
        entry["query"]["query"].is_string() && entry["private"]["nullifier"].is_string(),
        "{entry}"
    );
    // A column outside the terms is refused and spends nothing: the next
    // query proves the same use index again.
    let (ok, j) = w.query(&dataset, &grant, "SELECT consignee FROM shipments", &["--private"]);
    assert!(!ok);
    assert_eq!(j["error"]["code"], "query.forbidden_column", "{j}");
    let (ok, j) = w.query(&dataset, &grant, sql, &["--private"]);
    assert!(ok, "{j}");
    assert_ne!(j["access_log"]["private"]["nullifier"], entry["private"]["nullifier"]);
    assert_eq!(w.uses(&grant).await, 0);
    // The auditor opens the second entry: use index 1 (the refusal spent none).
    let request = j["access_log"]["request"].as_str().expect("request").to_string();
    let (ok, j) = liutong(auditor.dir(), &["audit", "open", &request, "--node", &w.net.node.url]);
    assert!(ok, "{j}");
    assert_eq!(j["use_index"], 1, "{j}");
    assert_eq!(j["grant"], grant.as_str());
}

/// Invariants 1-4 of the policy holes, end to end over HTTP: an error
/// carries no data value (hidden, masked, or of the view); a query that
/// ran is a use, in the access log with its outcome; refusals decided
/// before the run are free; a consumer's row filter may not name a
/// column the grant hides, nor reach past the offer's filter.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_queries_leak_nothing_and_count_as_uses() {
    let w = world().await;
    let files = write_files(&w.dir);
    let dataset = w.register("shipments", &[files[0].1.to_str().expect("utf-8")]);
    let grant = w
        .grant(
            &dataset,
            1,
            serde_json::json!({
                "columns": ["consignee", "port"], "row_filter": "teu > 10",
                "masks": [{"column": "consignee", "mask": {"kind": "truncate", "keep": 2}}]
            }),
        )
        .await;
    let values: Vec<String> = ROWS
        .iter()
        .flat_map(|(p, c, t)| [p.to_string(), c.to_string(), c[..2].to_string(), t.to_string()])
        .collect();
    for sql in [
        "SELECT CAST(consignee AS INT) FROM shipments",
        "SELECT CAST(port AS INT) FROM shipments",
        "SELECT CAST(string_agg(port, ',') AS INT) FROM shipments",
    ] {
        let (ok, j) = w.query(&dataset, &grant, sql, &[]);
        assert!(!ok, "{sql}: {j}");
        assert_eq!(j["error"]["code"], "query.failed", "{sql}: {j}");
        let message = j["error"]["message"].as_str().expect("message");
        for v in values.iter().filter(|v| v.len() >= 2 && v.parse::<i64>().is_err()) {
            assert!(
                !message.contains(v.as_str()),
                "{sql}: the error carries {v:?}: {message}"
            );
        }
    }
    assert_eq!(w.uses(&grant).await, 3, "each query ran: each is a use");
    // Refused before running: free.
    w.refused(
        &dataset,
        &grant,
        &[
            ("SELECT teu FROM shipments", "query.forbidden_column"),
            ("SELECT input_file_name() FROM shipments", "query.unknown_function"),
            ("DELETE FROM shipments", "query.not_select"),
        ],
    );
    assert_eq!(w.uses(&grant).await, 3, "refusals before the run cost nothing");
    let outcomes: Vec<String> = w
        .entries(&grant)
        .await
        .iter()
        .map(|e| e["outcome"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(outcomes, vec!["failed"; 3]);
    // A consumer's own row filter on the hidden teu: refused by the ledger,
    // the `OR true` trick included; on a visible column it only narrows.
    let now = now_ms();
    let request = |filter: &str| {
        let terms = serde_json::json!({
            "purposes": ["trade-finance"], "not_before": now - 1_000, "not_after": now + 86_400_000u64,
            "max_uses": 1, "actions": ["query"], "columns": ["consignee", "port"], "row_filter": filter,
            "masks": [{"column": "consignee", "mask": {"kind": "truncate", "keep": 2}}],
            "min_group_size": null, "row_cap": null, "transferable": false
        });
        let path = w.dir.join("consumer-filter.json");
        std::fs::write(&path, terms.to_string()).expect("terms");
        w.run(
            &w.consumer,
            &[
                "grant",
                "request",
                &dataset,
                "--offer",
                "1",
                "--terms",
                path.to_str().expect("utf-8"),
            ],
        )
    };
    for filter in ["teu >= 50", "(teu > 10) AND false OR true"] {
        let (ok, j) = request(filter);
        assert!(!ok, "{filter}: {j}");
        assert_eq!(j["error"]["code"], "policy.hidden_column", "{filter}: {j}");
    }
    let (ok, j) = request("port = 'Ningbo' OR true");
    assert!(ok, "{j}");
    assert_eq!(
        j["grant"]["filters"]["provider"],
        serde_json::json!(["teu > 10"]),
        "{j}"
    );
    let narrow = j["grant"]["id"].as_str().expect("id").to_string();
    w.synced().await;
    let (ok, j) = w.query(&dataset, &narrow, "SELECT count(*) AS n FROM shipments", &[]);
    assert!(ok, "{j}");
    assert_eq!(
        rows(&j),
        vec![serde_json::json!({"n": 7})],
        "the offer's filter still holds: {j}"
    );
}
