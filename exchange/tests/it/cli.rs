//! The `liutong` binary as a user drives it: init, node, party, notarize,
//! verify online and offline, chain verify; bad input gives a code and exit 1.

use crate::common::{liutong, start_node_with, NodeProcess};

/// The last stdout line of a run that must have succeeded, as JSON.
fn last_json_of_success(out: &std::process::Output) -> serde_json::Value {
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(stdout.lines().last().unwrap_or_default()).expect("JSON last line")
}
use std::path::Path;
use std::process::Command;

fn start_node(home: &Path, follow: Option<&str>) -> (NodeProcess, String) {
    match follow {
        Some(f) => start_node_with(home, &["--follow", f]),
        None => start_node_with(home, &[]),
    }
}

#[test]
fn a_user_session_from_init_to_offline_verification() {
    let dir = tempfile::tempdir().expect("temp dir");
    let op = dir.path().join("op");
    let (ok, j) = liutong(&op, &["init", "--chain-id", "cli-test"]);
    assert!(ok, "{j}");
    assert_eq!(j["chain_id"], "cli-test");
    let (ok, j) = liutong(&op, &["init"]);
    assert!(!ok);
    assert_eq!(j["error"]["code"], "home.invalid", "init refuses to overwrite");
    let (node, url) = start_node(&op, None);

    let prov = dir.path().join("prov");
    assert!(liutong(&prov, &["party", "keygen"]).0);
    let (ok, j) = liutong(
        &prov,
        &[
            "party",
            "register",
            "--node",
            &url,
            "--name",
            "X Logistics",
            "--credit-code",
            "91310115MA1K4PRW04",
            "--contact",
            "a@b.c",
            "--roles",
            "provider",
            "--endpoint",
            "http://127.0.0.1:9",
        ],
    );
    assert!(!ok);
    assert_eq!(j["error"]["code"], "party.bad_credit_code");
    let (ok, j) = liutong(
        &prov,
        &[
            "party",
            "register",
            "--node",
            &url,
            "--name",
            "X Logistics",
            "--credit-code",
            "91310115MA1K4PRW03",
            "--contact",
            "a@b.c",
            "--roles",
            "provider,consumer",
            "--endpoint",
            "http://127.0.0.1:9",
        ],
    );
    assert!(ok, "{j}");
    assert_eq!(j["result"]["status"], "pending");
    let (ok, j) = liutong(&prov, &["party", "approve", "91310115MA1K4PRW03", "--node", &url]);
    assert!(!ok);
    assert_eq!(
        j["error"]["code"], "party.pending",
        "a pending applicant cannot approve itself"
    );
    let (ok, j) = liutong(
        &op,
        &[
            "party",
            "approve",
            "91310115MA1K4PRW03",
            "--node",
            &url,
            "--reason",
            "kyc ok",
        ],
    );
    assert!(ok, "{j}");
    let (ok, j) = liutong(&prov, &["party", "suspend", "91110108MA01LTEX01", "--node", &url]);
    assert!(!ok);
    assert_eq!(j["error"]["code"], "party.not_operator");
    let (ok, j) = liutong(&op, &["party", "list", "--node", &url]);
    assert!(ok);
    assert_eq!(j["parties"].as_array().map(Vec::len), Some(2));

    // A party node follows the orderer.
    let (_follower, furl) = start_node(&prov, Some(&url));
    let file = dir.path().join("contract.pdf");
    std::fs::write(&file, b"%PDF-1.7 loan contract no. 2026-118").expect("write");
    let f = file.to_str().expect("utf-8");
    let (ok, j) = liutong(&prov, &["notarize", f, "--node", &furl, "--note", "signed copy"]);
    assert!(ok, "{j}");
    assert_eq!(j["notarized"][0]["new"], true);
    let bundle = dir.path().join("bundle.json");
    let (ok, j) = liutong(
        &prov,
        &[
            "verify",
            f,
            "--node",
            &furl,
            "--bundle-out",
            bundle.to_str().expect("utf-8"),
        ],
    );
    assert!(ok, "{j}");
    assert_eq!(j["evidence"]["party"], "91310115MA1K4PRW03");
    // Key rotation from the CLI: the home's keys change and keep working.
    let old_key = std::fs::read_to_string(prov.join("identity.json")).expect("identity");
    let (ok, j) = liutong(&prov, &["party", "rotate-keys", "--node", &furl]);
    assert!(ok, "{j}");
    assert_ne!(
        std::fs::read_to_string(prov.join("identity.json")).expect("identity"),
        old_key
    );
    assert_eq!(
        std::fs::read_dir(prov.join("retired"))
            .expect("retired keys kept")
            .count(),
        1
    );
    let second = dir.path().join("annex.pdf");
    std::fs::write(&second, b"%PDF-1.7 annex").expect("write");
    let (ok, j) = liutong(&prov, &["notarize", second.to_str().expect("utf-8"), "--node", &furl]);
    assert!(ok, "{j}");
    drop(node);

    // Offline: no node is running any more.
    let genesis = op.join("genesis.json");
    let args = [
        "verify",
        f,
        "--bundle",
        bundle.to_str().expect("utf-8"),
        "--genesis",
        genesis.to_str().expect("utf-8"),
    ];
    let (ok, j) = liutong(&prov, &args);
    assert!(ok, "{j}");
    assert_eq!(j["verified"], true);
    std::fs::write(&file, b"%PDF-1.7 loan contract no. 2026-119").expect("write");
    let (ok, j) = liutong(&prov, &args);
    assert!(!ok);
    assert_eq!(j["reason"], "digest_mismatch");
    std::fs::write(&bundle, b"{\"format\": 1}").expect("write");
    let (ok, j) = liutong(&prov, &args);
    assert!(!ok);
    assert_eq!(j["error"]["code"], "evidence.invalid");
    let (ok, j) = liutong(&prov, &["verify", f]);
    assert!(!ok);
    assert_eq!(j["error"]["code"], "request.invalid");

    drop(_follower);
    let (ok, j) = liutong(&op, &["chain", "verify"]);
    assert!(ok, "{j}");
    assert_eq!(j["blocks"], 5, "{j}"); // registration, approval, notarization, rotation, notarization
    let (ok, j) = liutong(&prov, &["chain", "verify"]);
    assert!(ok, "{j}");
    assert_eq!(j["transactions"], 5, "{j}"); // the follower holds the same
                                             // Malformed home files are refused clearly.
    std::fs::write(prov.join("identity.json"), b"{not json").expect("write");
    let (ok, j) = liutong(&prov, &["notarize", f, "--node", "http://127.0.0.1:9"]);
    assert!(!ok);
    assert_eq!(j["error"]["code"], "home.invalid", "{j}");
}

#[test]
fn bench_ledger_prints_one_json_object_last() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = Command::new(env!("CARGO_BIN_EXE_liutong"))
        .arg("--home")
        .arg(dir.path())
        .args([
            "bench",
            "ledger",
            "--txs",
            "400",
            "--single-txs",
            "40",
            "--keys",
            "10",
            "--clients",
            "2",
        ])
        .args([
            "--batch",
            "100",
            "--single-concurrency",
            "8",
            "--proof-sizes",
            "100,200,400",
        ])
        .output()
        .expect("runs");
    let last = last_json_of_success(&out);
    for key in ["tx_per_s", "raw_verify_per_s", "ratio", "p50_ms", "p99_ms"] {
        assert!(last[key].as_f64().is_some_and(|v| v > 0.0), "{key} in {last}");
    }
    assert_eq!(last["txs"], 400);
    assert_eq!(last["inclusion_proof"].as_array().map(Vec::len), Some(3));
    assert_eq!(last["inclusion_proof"][2]["log_size"], 400);
}

/// Registers and approves a party from its own home; returns its credit code.
fn admitted(op: &Path, home: &Path, url: &str, n: u32, roles: &str) -> String {
    let code = crate::common::code(n);
    assert!(liutong(home, &["party", "keygen"]).0);
    let args = [
        "party",
        "register",
        "--node",
        url,
        "--name",
        "Party",
        "--credit-code",
        &code,
        "--contact",
        "a@b.c",
        "--roles",
        roles,
        "--endpoint",
        "http://127.0.0.1:9",
    ];
    let (ok, j) = liutong(home, &args);
    assert!(ok, "{j}");
    let (ok, j) = liutong(op, &["party", "approve", &code, "--node", url]);
    assert!(ok, "{j}");
    code
}

#[test]
fn a_market_through_the_cli_with_odrl_and_dcat() {
    let dir = tempfile::tempdir().expect("temp dir");
    let op = dir.path().join("op");
    assert!(liutong(&op, &["init", "--chain-id", "market-test"]).0);
    let (_node, url) = start_node(&op, None);
    let prov = dir.path().join("prov");
    let cons = dir.path().join("cons");
    admitted(&op, &prov, &url, 11, "provider");
    let consumer = admitted(&op, &cons, &url, 12, "consumer");

    let csv = dir.path().join("shipments.csv");
    std::fs::write(&csv, "port,teu\nYangshan,120\nNingbo,80\n").expect("write");
    let (ok, j) = liutong(
        &prov,
        &[
            "dataset",
            "register",
            csv.to_str().expect("utf-8"),
            "--name",
            "shipments",
            "--title",
            "Port shipments",
            "--tag",
            "logistics",
            "--node",
            &url,
        ],
    );
    assert!(ok, "{j}");
    let dataset = j["dataset"]["id"].as_str().expect("id").to_string();
    // The file stays with the provider, listed in its home for delivery.
    let sources: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(prov.join("sources.json")).expect("sources.json")).expect("JSON");
    let kept = &sources["datasets"][&dataset]["1"];
    assert_eq!(
        kept["path"].as_str().map(std::path::PathBuf::from),
        Some(std::fs::canonicalize(&csv).expect("path"))
    );
    assert_eq!(kept["sha256"], j["dataset"]["description"]["commitment"]["sha256"]);

    // An offer written as ODRL with the W3C context, approval stated in it.
    let end = liutong_core::format_utc(liutong_core::now_ms() + 30 * 86_400_000);
    let offer = dir.path().join("offer.jsonld");
    let policy = |extra: &str| {
        format!(
            r#"{{
              "@context": ["http://www.w3.org/ns/odrl.jsonld", {{"liutong": "https://liutong.dev/ns/v1#"}}],
              "@type": "Offer", "uid": "http://example.com/o/1", "liutong:approval": "automatic",
              "permission": [{{"action": "liutong:query", "constraint": [
                {{"leftOperand": "purpose", "operator": "eq", "rightOperand": "logistics-planning"}},
                {{"leftOperand": "dateTime", "operator": "lt", "rightOperand": {{"@value": "{end}", "@type": "xsd:dateTime"}}}},
                {{"leftOperand": "count", "operator": "lteq", "rightOperand": 10}}{extra}
              ]}}]
            }}"#
        )
    };
    std::fs::write(&offer, policy("")).expect("write");
    let terms = offer.to_str().expect("utf-8");
    let (ok, j) = liutong(&prov, &["offer", "add", &dataset, "--terms", terms, "--node", &url]);
    assert!(ok, "{j}");
    assert_eq!(j["offer"]["approval"], "automatic");
    assert_eq!(j["offer"]["terms"]["max_uses"], 10);
    let (ok, j) = liutong(&cons, &["offer", "list", &dataset, "--odrl", "--node", &url]);
    assert!(ok, "{j}");
    assert_eq!(j[0]["@type"], "odrl:Offer");

    // Unenforceable ODRL is refused before anything is signed.
    std::fs::write(
        &offer,
        policy(r#", {"leftOperand": "spatial", "operator": "eq", "rightOperand": "CN"}"#),
    )
    .expect("write");
    let (ok, j) = liutong(&prov, &["offer", "add", &dataset, "--terms", terms, "--node", &url]);
    assert!(!ok);
    assert_eq!(j["error"]["code"], "policy.odrl_unsupported", "{j}");

    let (ok, j) = liutong(
        &cons,
        &[
            "grant",
            "request",
            &dataset,
            "--offer",
            "1",
            "--max-uses",
            "3",
            "--node",
            &url,
        ],
    );
    assert!(ok, "{j}");
    assert_eq!(j["grant"]["state"], "active", "{j}");
    let grant = j["grant"]["id"].as_str().expect("id").to_string();
    let (ok, j) = liutong(&cons, &["grant", "list", "--party", &consumer, "--node", &url]);
    assert!(ok, "{j}");
    assert_eq!(j.as_array().map(Vec::len), Some(1));
    let (ok, j) = liutong(&cons, &["grant", "show", &grant, "--odrl", "--node", &url]);
    assert!(ok, "{j}");
    assert_eq!(j["@type"], "odrl:Agreement");
    let (ok, j) = liutong(&cons, &["grant", "transfer", &grant, "--to", &consumer, "--node", &url]);
    assert!(!ok);
    assert_eq!(j["error"]["code"], "grant.not_transferable", "{j}");
    let (ok, j) = liutong(
        &prov,
        &["grant", "revoke", &grant, "--reason", "audit over", "--node", &url],
    );
    assert!(ok, "{j}");
    assert_eq!(j["grant"]["state"], "revoked");

    let (ok, j) = liutong(&cons, &["dataset", "search", "shipments", "--dcat", "--node", &url]);
    assert!(ok, "{j}");
    assert_eq!(j["@type"], "dcat:Catalog");
    assert_eq!(j["dcat:dataset"][0]["dct:title"], "Port shipments");
}

#[test]
fn bench_delivery_prints_one_json_object_last() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = Command::new(env!("CARGO_BIN_EXE_liutong"))
        .args([
            "--json", "bench", "delivery", "--size", "3MiB", "--repeat", "2", "--dir",
        ])
        .arg(dir.path())
        .output()
        .expect("runs");
    let last = last_json_of_success(&out);
    assert_eq!(last["size_bytes"], 3 << 20);
    for key in [
        "mib_per_s",
        "https_mib_per_s",
        "raw_mib_per_s",
        "ratio",
        "provider_peak_rss_mib",
        "consumer_peak_rss_mib",
    ] {
        assert!(last[key].as_f64().is_some_and(|v| v > 0.0), "{key}: {last}");
    }
    assert_eq!(last["access_log"], "acknowledged");
    let bad = Command::new(env!("CARGO_BIN_EXE_liutong"))
        .args(["--json", "bench", "delivery", "--size", "3 parsecs"])
        .output()
        .expect("runs");
    assert!(!bad.status.success());
}
