//! Auditing: traces, SQL over the ledger with visibility, evidence bundles
//! that verify offline (and refuse every alteration), reports, and chain
//! verification over every kind of transaction.

use crate::common::*;
use crate::delivery::{liutong_async, world, CONSUMER, OTHER, PROVIDER};
use liutong_core::{now_ms, SigningKey};
use liutong_exchange::audit::bundle::{self, Bundle};
use liutong_exchange::cli::{init, InitArgs};
use liutong_exchange::home::Home;
use liutong_exchange::node::open_ledger;
use serde_json::Value;

fn s(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_string()
}

/// `liutong audit …` as `who`, against `node`.
async fn audit(who: &Home, node: &str, args: &[&str]) -> (bool, Value) {
    let mut a: Vec<String> = vec!["audit".into()];
    a.extend(args.iter().map(|s| s.to_string()));
    a.extend(["--node".to_string(), node.to_string()]);
    liutong_async(who.dir().to_path_buf(), a).await
}

fn entries(j: &Value) -> Vec<Value> {
    j["entries"].as_array().cloned().unwrap_or_default()
}

/// Rows of an `audit sql --json` answer.
fn rows(j: &Value) -> Vec<Value> {
    j["result"].as_array().cloned().unwrap_or_default()
}

fn refusal(j: &Value) -> String {
    s(&j["error"]["code"])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auditors_trace_query_bundle_and_report_every_use() {
    let w = world().await;
    let node = w.net.node.url.clone();
    let auditor = auditor(&w.net, &w.dir, 9).await;
    let t0 = now_ms();

    // Uses: the consumer fetches twice under one grant, the other member
    // once, and the consumer once more privately.
    let g1 = w.grant(&w.consumer, 5).await;
    for out in ["a1.bin", "a2.bin"] {
        let (ok, j) = w.fetch(&w.consumer, &g1, out, &[]).await;
        assert!(ok, "{j}");
    }
    let g2 = w.grant(&w.other, 5).await;
    let (ok, j) = w.fetch(&w.other, &g2, "b1.bin", &[]).await;
    assert!(ok, "{j}");
    let j = w.request_grant(&w.consumer, 1, &["--private"]).await;
    let private_grant = s(&j["grant"]["id"]);
    let (ok, j) = w.fetch(&w.consumer, &private_grant, "p1.bin", &["--private"]).await;
    assert!(ok, "{j}");
    w.synced().await;

    // Trace the dataset: the auditor and the provider see all four, in
    // ledger order; each consumer sees its own.
    let (ok, j) = audit(&auditor, &node, &["trace", "--dataset", &w.dataset, "--json"]).await;
    assert!(ok, "{j}");
    let all = entries(&j);
    assert_eq!(all.len(), 4, "{j}");
    let heights: Vec<u64> = all.iter().map(|e| e["height"].as_u64().unwrap_or(0)).collect();
    assert!(heights.windows(2).all(|p| p[0] <= p[1]), "oldest first: {heights:?}");
    assert_eq!(all.iter().filter(|e| e["consumer"] == code(CONSUMER)).count(), 2);
    assert_eq!(
        all.iter().filter(|e| e["consumer"].is_null()).count(),
        1,
        "the private use names no one"
    );
    for e in &all {
        assert_eq!(e["provider"], code(PROVIDER));
        assert_eq!(e["outcome"], "acknowledged", "{e}");
        assert!(e["request"].is_string() && e["result"].is_string() && e["tx_id"].is_string());
    }
    assert_eq!(j["parties"][code(PROVIDER)], format!("Member {PROVIDER}"), "{j}");
    let (ok, j) = audit(&w.provider_home, &node, &["trace", "--dataset", &w.dataset, "--json"]).await;
    assert!(ok, "{j}");
    assert_eq!(entries(&j).len(), 4, "a provider sees every use of its dataset");
    let (ok, j) = audit(&w.consumer, &node, &["trace", "--dataset", &w.dataset, "--json"]).await;
    assert!(ok, "{j}");
    assert_eq!(entries(&j).len(), 2, "a consumer sees its own uses: {j}");
    assert!(entries(&j).iter().all(|e| e["consumer"] == code(CONSUMER)));
    let (ok, j) = audit(&w.other, &node, &["trace", "--party", &code(CONSUMER), "--json"]).await;
    assert!(ok, "{j}");
    assert!(entries(&j).is_empty(), "another member's uses are not visible: {j}");

    // By party, grant, action and time.
    let (ok, j) = audit(&auditor, &node, &["trace", "--party", &code(OTHER), "--json"]).await;
    assert!(ok && entries(&j).len() == 1, "{j}");
    let (ok, j) = audit(&auditor, &node, &["trace", "--grant", &g1, "--json"]).await;
    assert!(ok && entries(&j).len() == 2, "{j}");
    let (ok, j) = audit(
        &auditor,
        &node,
        &["trace", "--dataset", &w.dataset, "--action", "query", "--json"],
    )
    .await;
    assert!(ok && entries(&j).is_empty(), "{j}");
    let third = all[2]["logged_at"].as_u64().expect("time");
    let (ok, j) = audit(
        &auditor,
        &node,
        &["trace", "--dataset", &w.dataset, "--from", &third.to_string(), "--json"],
    )
    .await;
    assert!(ok, "{j}");
    assert!(entries(&j).len() >= 2 && entries(&j).iter().all(|e| e["logged_at"].as_u64() >= Some(third)));
    let (ok, j) = audit(
        &auditor,
        &node,
        &["trace", "--dataset", &w.dataset, "--to", &t0.to_string(), "--json"],
    )
    .await;
    assert!(ok && entries(&j).is_empty(), "nothing before the first use: {j}");
    let (ok, j) = audit(
        &auditor,
        &node,
        &["trace", "--dataset", &w.dataset, "--limit", "1", "--json"],
    )
    .await;
    assert!(ok && entries(&j).len() == 1 && j["next"].is_string(), "pages: {j}");
    for (args, want) in [
        (vec!["trace", "--dataset", "nothex"], "request.invalid"),
        (vec!["trace", "--party", "91310000MA0000000X"], "request.invalid"),
        (vec!["trace", "--from", "yesterday"], "request.invalid"),
        (vec!["trace", "--action", "delete"], "request.invalid"),
        (
            vec!["trace", "--from", "2026-12-01", "--to", "2026-11-01"],
            "request.invalid",
        ),
    ] {
        let mut a = args.clone();
        a.push("--json");
        let (ok, j) = audit(&auditor, &node, &a).await;
        assert!(!ok, "{args:?}: {j}");
        assert_eq!(refusal(&j), want, "{args:?}: {j}");
    }

    // SQL: aggregates over the log, joins, and each caller's view.
    let (ok, j) = audit(
        &auditor,
        &node,
        &[
            "sql",
            "SELECT d.name, count(*) AS uses, sum(a.bytes) AS bytes, count(a.consumer) AS named \
             FROM access_log a JOIN datasets d ON a.dataset = d.id GROUP BY d.name",
            "--json",
        ],
    )
    .await;
    assert!(ok, "{j}");
    assert_eq!(rows(&j).len(), 1, "{j}");
    assert_eq!(rows(&j)[0]["uses"], 4, "{j}");
    assert_eq!(rows(&j)[0]["named"], 3, "{j}");
    let (ok, j) = audit(
        &auditor,
        &node,
        &["sql", "SELECT count(*) AS n FROM grants WHERE private", "--json"],
    )
    .await;
    assert!(ok && rows(&j)[0]["n"] == 1, "{j}");
    let (ok, j) = audit(
        &auditor,
        &node,
        &[
            "sql",
            "SELECT date_trunc('day', logged_at) AS day, count(*) AS n FROM access_log GROUP BY 1",
            "--json",
        ],
    )
    .await;
    assert!(ok && !rows(&j).is_empty(), "{j}");
    let (ok, j) = audit(
        &auditor,
        &node,
        &[
            "sql",
            "SELECT count(*) AS n FROM access_log WHERE logged_at >= '2020-01-01'",
            "--json",
        ],
    )
    .await;
    assert!(ok && rows(&j)[0]["n"] == 4, "a time compares with a date: {j}");
    for (who, n) in [(&w.consumer, 2), (&w.other, 1), (&w.provider_home, 4)] {
        let (ok, j) = audit(who, &node, &["sql", "SELECT count(*) AS n FROM access_log", "--json"]).await;
        assert!(ok, "{j}");
        assert_eq!(rows(&j)[0]["n"], n, "{j}");
    }
    // Any other way of asking for rows outside one's view finds none: they
    // are not in the caller's tables (row-level security).
    let (ok, j) = audit(
        &w.other,
        &node,
        &[
            "sql",
            &format!(
                "SELECT * FROM access_log WHERE consumer = '{}' OR consumer LIKE '%{}'",
                code(OTHER),
                &code(CONSUMER)[10..]
            ),
            "--json",
        ],
    )
    .await;
    assert!(ok, "{j}");
    assert!(rows(&j).iter().all(|r| r["consumer"] == code(OTHER)), "{j}");
    // Asking outright for rows one's roles never admit is refused, by the
    // query alone (a consumer asking for another consumer's uses, anyone
    // for another's notarizations).
    for sql in [
        format!("SELECT count(*) FROM access_log WHERE consumer = '{}'", code(CONSUMER)),
        format!(
            "SELECT * FROM access_log a JOIN datasets d ON a.dataset = d.id WHERE d.name = 'manifests' AND a.consumer = '{}'",
            code(CONSUMER)
        ),
        format!("SELECT * FROM grants g WHERE g.holder = '{}'", code(CONSUMER)),
        format!("SELECT * FROM notarizations WHERE notary = '{}'", code(PROVIDER)),
    ] {
        let (ok, j) = audit(&w.other, &node, &["sql", &sql, "--json"]).await;
        assert!(!ok, "{sql}: {j}");
        assert_eq!(refusal(&j), "audit.not_visible", "{sql}: {j}");
    }
    // A provider may name the consumers of its datasets.
    let (ok, j) = audit(
        &w.provider_home,
        &node,
        &[
            "sql",
            &format!(
                "SELECT count(*) AS n FROM access_log WHERE consumer = '{}'",
                code(CONSUMER)
            ),
            "--json",
        ],
    )
    .await;
    assert!(ok && rows(&j)[0]["n"] == 2, "{j}");
    let (ok, j) = audit(&w.other, &node, &["sql", "SELECT count(*) AS n FROM grants", "--json"]).await;
    assert!(ok && rows(&j)[0]["n"] == 1, "only its own grant: {j}");
    for (sql, want) in [
        ("INSERT INTO access_log (request) VALUES ('x')", "query.not_select"),
        ("DELETE FROM grants", "query.not_select"),
        ("DROP TABLE access_log", "query.not_select"),
        ("CREATE TABLE t AS SELECT * FROM access_log", "query.not_select"),
        ("COPY access_log TO '/tmp/liutong-audit-leak.csv'", "query.not_select"),
        ("SELECT * FROM '/etc/passwd'", "query.unknown_table"),
        ("SELECT * FROM read_csv('/etc/passwd')", "query.unknown_function"),
        ("SELECT * FROM information_schema.tables", "query.unknown_table"),
        ("SELECT * FROM access_log; SELECT 1", "query.multiple_statements"),
        ("SELEC * FROM access_log", "query.syntax"),
        ("SELECT nope FROM access_log", "query.unknown_column"),
        ("   ", "query.empty"),
        (
            "SELECT repeat(legal_name, 1000000000) FROM parties",
            "query.unknown_function",
        ),
        ("SELECT lpad(name, 2000000000) FROM datasets", "query.unknown_function"),
        (
            "SELECT replace(replace(legal_name, 'a', 'aaaaaaaa'), 'a', 'aaaaaaaa') FROM parties",
            "query.value_too_large",
        ),
    ] {
        let (ok, j) = audit(&w.consumer, &node, &["sql", sql, "--json"]).await;
        assert!(!ok, "{sql}: {j}");
        assert_eq!(refusal(&j), want, "{sql}: {j}");
    }
    assert!(!std::path::Path::new("/tmp/liutong-audit-leak.csv").exists());
    let (ok, j) = audit(&auditor, &node, &["sql", "--tables", "--json"]).await;
    assert!(ok && j["access_log"].is_array(), "{j}");

    // A non-member's signed call is refused.
    let stranger = Home::new(w.dir.join("stranger"));
    stranger.create_identity().expect("keys");
    stranger
        .write_genesis(&w.net.client.genesis().await.expect("genesis"))
        .expect("genesis");
    let (ok, j) = audit(&stranger, &node, &["trace", "--dataset", &w.dataset, "--json"]).await;
    assert!(!ok);
    assert_eq!(refusal(&j), "party.unknown_signer", "{j}");

    // Bundles: an entry, a grant, a trace (with the private use); each
    // verifies offline from the bundle and the genesis alone.
    let genesis_path = w.net.home.genesis_path();
    let genesis = w.net.home.genesis().expect("genesis");
    let first = s(&all[0]["request"]);
    let private_entry = all.iter().find(|e| e["consumer"].is_null()).expect("private");
    let mut files = Vec::new();
    for (name, args) in [
        ("entry.json", vec!["--entry", first.as_str()]),
        ("grant.json", vec!["--grant", g1.as_str()]),
        ("trace.json", vec!["--dataset", w.dataset.as_str()]),
    ] {
        let out = w.path(name);
        let mut a = vec!["bundle"];
        a.extend(args);
        a.extend(["--out", out.to_str().expect("utf-8"), "--json"]);
        let (ok, j) = audit(&auditor, &node, &a).await;
        assert!(ok, "{name}: {j}");
        let (ok, j) = liutong_async(
            w.dir.clone(),
            [
                "verify",
                "--bundle",
                out.to_str().expect("utf-8"),
                "--genesis",
                genesis_path.to_str().expect("utf-8"),
                "--json",
            ]
            .map(String::from)
            .to_vec(),
        )
        .await;
        assert!(ok, "{name}: {j}");
        assert_eq!(j["verified"], true, "{j}");
        assert!(
            j["checks"].as_array().is_some_and(|c| c.len() >= 6),
            "each check is listed: {j}"
        );
        assert_eq!(j["exported_by"]["credit_code"], code(9), "{j}");
        files.push((name, std::fs::read(&out).expect("bundle")));
    }
    let trace_file = &files[2].1;
    let v = bundle::verify(trace_file, &genesis).expect("verifies");
    assert_eq!(v.entries.len(), 4);
    assert!(v.entries.iter().any(|e| e.private && e.consumer.is_none()));
    assert!(v.checks.iter().any(|c| c.check.contains("Groth16") && c.passed == 1));
    assert!(v.entries.iter().filter(|e| !e.private).all(|e| e.consumer.is_some()));
    let grant_file = &files[1].1;
    let v = bundle::verify(grant_file, &genesis).expect("verifies");
    assert_eq!(v.entries.len(), 2);
    assert!(
        v.grant_events.iter().any(|e| e.kind == "grant.request"),
        "{:?}",
        v.grant_events
    );
    // A consumer may not bundle another's use; a provider its own dataset's.
    let (ok, j) = audit(
        &w.other,
        &node,
        &[
            "bundle",
            "--entry",
            &first,
            "--out",
            w.path("x.json").to_str().expect("utf-8"),
            "--json",
        ],
    )
    .await;
    assert!(!ok && refusal(&j) == "not_found", "{j}");
    let (ok, j) = audit(
        &w.other,
        &node,
        &[
            "bundle",
            "--grant",
            &g1,
            "--out",
            w.path("x.json").to_str().expect("utf-8"),
            "--json",
        ],
    )
    .await;
    assert!(!ok && refusal(&j) == "audit.not_visible", "{j}");
    let _ = private_entry;

    // Any byte altered is refused: every byte of the entry bundle, a
    // spread of the trace bundle's.
    let entry_file = &files[0].1;
    let mut positions: Vec<(usize, &Vec<u8>)> = (0..entry_file.len()).map(|i| (i, entry_file)).collect();
    let stride = (trace_file.len() / 1500).max(1);
    positions.extend((0..trace_file.len()).step_by(stride).map(|i| (i, trace_file)));
    for (i, file) in positions {
        let mut altered = file.clone();
        altered[i] ^= 0x01;
        assert!(
            bundle::verify(&altered, &genesis).is_err(),
            "byte {i} altered ({:?} -> {:?}) still verifies",
            file[i] as char,
            altered[i] as char
        );
    }
    // Structural alterations, re-signed by the exporter so only they fail.
    let key = auditor.identity().expect("keys").signing;
    let resign = |b: &mut Bundle| {
        b.attest(&key, now_ms());
        b.to_canonical_json()
    };
    let parsed: Bundle = serde_json::from_slice(grant_file).expect("parses");
    let refused = |b: &mut Bundle, why: &str| {
        let e = bundle::verify(&resign(b), &genesis).expect_err(why).to_string();
        assert!(e.contains(why), "{why}: {e}");
    };
    let mut b = parsed.clone();
    let path = &mut b
        .transactions
        .iter_mut()
        .find(|t| t.audit_path.len() >= 2)
        .expect("a path")
        .audit_path;
    path.pop();
    refused(&mut b, "inclusion proof");
    let mut b = parsed.clone();
    let path = &mut b
        .transactions
        .iter_mut()
        .find(|t| t.audit_path.len() >= 2)
        .expect("a path")
        .audit_path;
    path.swap(0, 1);
    refused(&mut b, "inclusion proof");
    let mut b = parsed.clone();
    b.transactions.swap(0, 1);
    refused(&mut b, "ascending leaf order");
    let mut b = parsed.clone();
    let c = &mut b
        .blocks
        .iter_mut()
        .find(|x| !x.consistency.is_empty())
        .expect("a proof")
        .consistency;
    c.pop();
    refused(&mut b, "consistency proof");
    let mut b = parsed.clone();
    b.transactions.retain(|t| t.role != bundle::Role::Key);
    refused(&mut b, "bound to no party");
    let mut b = parsed.clone();
    b.transactions.retain(|t| t.role != bundle::Role::Grant);
    refused(&mut b, "request transaction is not in the bundle");
    // A trace bundle whose entries its own filter does not admit: a later
    // start, another party, another action.
    let traced: Bundle = serde_json::from_slice(trace_file).expect("parses");
    let narrowed = |change: &dyn Fn(&mut liutong_exchange::audit::TraceFilter)| {
        let mut b = traced.clone();
        match &mut b.subject {
            bundle::Subject::Trace { filter } => change(filter),
            other => panic!("a trace bundle, not {other:?}"),
        }
        refused(&mut b, "outside the trace's filter");
    };
    narrowed(&|f| f.from = Some(u64::MAX - 1));
    narrowed(&|f| f.party = Some(OPERATOR.parse().expect("credit code")));
    narrowed(&|f| f.action = Some(liutong_policies::Action::Query));
    // A header signed by someone other than the genesis's orderer.
    let mut b = parsed.clone();
    let forger = SigningKey::generate();
    let mut h = liutong_ledger::SignedHeader::try_from(&b.blocks[0].header).expect("header");
    h.signature = forger.sign(&h.header.signing_bytes());
    b.blocks[0].header = (&h).into();
    refused(&mut b, "not signed by the genesis's orderer");
    // No attestation, or one by a key the bundle binds to no one.
    let mut b = parsed.clone();
    b.attestation = None;
    let e = bundle::verify(&b.to_canonical_json(), &genesis).expect_err("unsigned");
    assert!(e.to_string().contains("attestation"), "{e}");
    let mut b = parsed.clone();
    b.attest(&SigningKey::generate(), now_ms());
    let e = bundle::verify(&b.to_canonical_json(), &genesis).expect_err("stranger");
    assert!(e.to_string().contains("bound to no party"), "{e}");
    // Another chain's genesis.
    let elsewhere = Home::new(w.dir.join("elsewhere"));
    init(
        &elsewhere,
        &InitArgs {
            chain_id: "another-chain".into(),
            name: "Another Exchange".into(),
            credit_code: OPERATOR.into(),
            contact: "ops@example.com".into(),
            endpoint: "http://127.0.0.1:1".into(),
        },
    )
    .expect("init");
    let e = bundle::verify(grant_file, &elsewhere.genesis().expect("genesis")).expect_err("other chain");
    assert!(e.to_string().contains("another-chain"), "{e}");

    // Reports: HTML with the timeline, CSV with every row.
    let html = w.path("report.html");
    let (ok, j) = audit(
        &auditor,
        &node,
        &[
            "report",
            "--dataset",
            &w.dataset,
            "--out",
            html.to_str().expect("utf-8"),
            "--json",
        ],
    )
    .await;
    assert!(ok, "{j}");
    let page = std::fs::read_to_string(&html).expect("report");
    assert!(
        page.contains("<svg") && page.contains("manifests"),
        "timeline and dataset name"
    );
    assert!(!page.contains("<script") && !page.contains("src="), "self-contained");
    let csv = w.path("report.csv");
    let (ok, j) = audit(
        &auditor,
        &node,
        &[
            "report",
            "--dataset",
            &w.dataset,
            "--format",
            "csv",
            "--out",
            csv.to_str().expect("utf-8"),
            "--json",
        ],
    )
    .await;
    assert!(ok, "{j}");
    let text = std::fs::read_to_string(&csv).expect("csv");
    assert_eq!(text.lines().count(), 5, "{text}");
    assert!(text
        .lines()
        .next()
        .is_some_and(|h| h.starts_with("logged_at,block,tx,request,dataset")));

    // Chain verification replays every kind of transaction here (parties,
    // datasets, offers, grants public and private, uses, private uses,
    // access-log entries) and finds a flipped byte in any of their state.
    let home = w.net.home.clone();
    let dir = w.dir.clone();
    drop(w.provider);
    w.net.node.stop().await;
    let ledger = open_ledger(&home, &genesis).expect("opens");
    let report = ledger.verify_chain().expect("runs");
    assert!(report.ok(), "{:?}", report.problems);
    let store = ledger.store();
    for cf in [
        "grants",
        "grants_by_party",
        "offers",
        "datasets",
        "uses",
        "access_log",
        "access_index",
        "nullifiers",
        "zk_tree",
        "zk_roots",
    ] {
        let entries = store.scan(cf).expect("scan");
        assert!(!entries.is_empty(), "{cf} has state");
        let (k, v) = entries[entries.len() / 2].clone();
        let mut altered = v.clone();
        if altered.is_empty() {
            altered.push(1);
        } else {
            altered[0] ^= 0x01;
        }
        store.tamper(cf, &k, &altered).expect("tamper");
        let report = ledger.verify_chain().expect("runs");
        assert!(
            report.problems.iter().any(|p| p.starts_with(&format!("{cf}: entry"))),
            "{cf}: {:?}",
            report.problems
        );
        store.tamper(cf, &k, &v).expect("restore");
    }
    assert!(ledger.verify_chain().expect("runs").ok());
    drop(dir);
}
