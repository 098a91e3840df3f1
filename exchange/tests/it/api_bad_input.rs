//! Every malformed or unauthorized request gets its own stable code and a
//! JSON error, and leaves the store exactly as it was.

use crate::common::*;
use liutong_core::{now_ms, Canonical, SigningKey};
use liutong_exchange::client::sign_tx;
use liutong_exchange::home::Identity;
use liutong_exchange::machine::*;
use liutong_exchange::party::*;
use liutong_exchange::wire::{ReceiptDetail, ReceiptStatus};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_transactions_have_codes_and_change_nothing() {
    let net = orderer().await;
    let (member_id, member_code) = member(&net, 1).await;
    let (suspended_id, suspended_code) = member(&net, 2).await;
    net.client
        .submit_bytes(&standing(&net, KIND_SUSPEND, &net.operator.signing, &suspended_code))
        .await
        .expect("suspends");
    let pending = Identity::generate();
    net.client
        .submit_bytes(&registration(&net, &pending, &code(3)))
        .await
        .expect("applies");
    let stranger = SigningKey::generate();
    let committed = notarize(&net, &member_id.signing, b"already there");
    net.client.submit_bytes(&committed).await.expect("commits");
    let reused_nonce = {
        let decoded = liutong_ledger::SignedTx::from_canonical_bytes(&committed).expect("decodes");
        let body = liutong_exchange::notary::Notarize::of_digest(liutong_core::sha256(b"another document"));
        raw_tx(
            &net.chain,
            KIND_NOTARIZE,
            liutong_core::encode_canonical(&body),
            &member_id.signing,
            decoded.tx.nonce,
            now_ms(),
        )
    };
    let mut bad_sig = notarize(&net, &member_id.signing, b"forged");
    let last = bad_sig.len() - 1;
    bad_sig[last] ^= 0x40;
    let good_body = liutong_core::encode_canonical(&liutong_exchange::notary::Notarize::of_digest(
        liutong_core::sha256(b"x"),
    ));
    let bad_code_body = RegisterParty {
        legal_name: "Fake Co".into(),
        credit_code: "91310000MA0000000X".into(),
        contact: "x@example.com".into(),
        roles: vec![Role::Consumer],
        encryption_key: member_id.encryption.public_key(),
        endpoint: "https://fake.example.com".into(),
    };
    let key = &member_id.signing;
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("bad signature", bad_sig, "tx.bad_signature"),
        ("replayed transaction", committed.clone(), "tx.duplicate"),
        ("replayed nonce", reused_nonce, "tx.replayed_nonce"),
        (
            "wrong chain id",
            raw_tx("other-chain", KIND_NOTARIZE, good_body.clone(), key, 1, now_ms()),
            "tx.wrong_chain",
        ),
        (
            "stale timestamp",
            raw_tx(
                &net.chain,
                KIND_NOTARIZE,
                good_body.clone(),
                key,
                2,
                now_ms() - 3_600_000,
            ),
            "tx.stale_timestamp",
        ),
        (
            "future timestamp",
            raw_tx(
                &net.chain,
                KIND_NOTARIZE,
                good_body.clone(),
                key,
                3,
                now_ms() + 3_600_000,
            ),
            "tx.future_timestamp",
        ),
        (
            "unknown kind",
            raw_tx(&net.chain, "dataset.steal", good_body.clone(), key, 4, now_ms()),
            "tx.unknown_kind",
        ),
        (
            "malformed body",
            raw_tx(&net.chain, KIND_NOTARIZE, vec![1, 2, 3], key, 5, now_ms()),
            "tx.malformed_body",
        ),
        (
            "body with trailing bytes",
            raw_tx(
                &net.chain,
                KIND_NOTARIZE,
                [good_body.clone(), vec![0]].concat(),
                key,
                6,
                now_ms(),
            ),
            "tx.malformed_body",
        ),
        ("malformed envelope", vec![7; 40], "tx.malformed"),
        (
            "oversize transaction",
            raw_tx(&net.chain, KIND_NOTARIZE, vec![0; 70_000], key, 7, now_ms()),
            "tx.oversize",
        ),
        (
            "unknown signer",
            notarize(&net, &stranger, b"who am i"),
            "party.unknown_signer",
        ),
        (
            "pending signer",
            notarize(&net, &pending.signing, b"too early"),
            "party.pending",
        ),
        (
            "suspended signer",
            notarize(&net, &suspended_id.signing, b"suspended"),
            "party.suspended",
        ),
        (
            "invalid credit code",
            sign_tx(&net.chain, KIND_REGISTER, &bad_code_body, &SigningKey::generate()).canonical_bytes(),
            "party.bad_credit_code",
        ),
        (
            "non-operator approval",
            standing(&net, KIND_APPROVE, &member_id.signing, &code(3)),
            "party.not_operator",
        ),
        (
            "approval of unknown party",
            standing(&net, KIND_APPROVE, &net.operator.signing, &code(99)),
            "party.not_found",
        ),
        (
            "approving an active party",
            standing(&net, KIND_APPROVE, &net.operator.signing, &member_code),
            "party.bad_transition",
        ),
        (
            "registering a taken key",
            registration(&net, &member_id, &code(4)),
            "party.key_in_use",
        ),
        (
            "registering a taken code",
            registration(&net, &Identity::generate(), &member_code),
            "party.exists",
        ),
    ];
    for (name, bytes, expected) in cases {
        let before = snapshot(&net).await;
        let code = refusal(&net, &bytes).await;
        assert_eq!(code, expected, "{name}");
        assert_eq!(snapshot(&net).await, before, "{name}: the store changed");
    }
    // The same refusals inside a batch: each answered on its own, the good one committed.
    let good = notarize(&net, &member_id.signing, b"good in batch");
    let results = net
        .client
        .submit_batch(&[committed, good, vec![1, 2, 3]])
        .await
        .expect("batch answers");
    assert_eq!(
        results[0].as_ref().err().map(|e| e.code().to_string()).as_deref(),
        Some("tx.duplicate")
    );
    assert!(results[1].is_ok());
    assert_eq!(
        results[2].as_ref().err().map(|e| e.code().to_string()).as_deref(),
        Some("tx.malformed")
    );
    // And in a raw (borsh) batch: the same answers, one per transaction.
    let good = notarize(&net, &member_id.signing, b"good in raw batch");
    let raw = net
        .client
        .submit_batch_raw(&[good.clone(), vec![7; 40], good], ReceiptDetail::Full)
        .await
        .expect("raw batch answers");
    let codes: Vec<Option<String>> = raw
        .iter()
        .map(|r| r.as_ref().err().map(|e| e.code().to_string()))
        .collect();
    assert_eq!(
        codes,
        vec![None, Some("tx.malformed".into()), Some("tx.duplicate".into())]
    );
    let full = raw[0].as_ref().expect("committed");
    let record: serde_json::Value = full.record().expect("a full receipt carries its record");
    assert_eq!(record["tx_index"].as_u64(), full.index);
    // Compact receipts: the same answers, without the records.
    let fresh = notarize(&net, &member_id.signing, b"good in a compact batch");
    let compact = net
        .client
        .submit_batch_raw(&[fresh.clone(), vec![7; 40], fresh], ReceiptDetail::Compact)
        .await
        .expect("compact batch answers");
    let first = compact[0].as_ref().expect("committed");
    assert_eq!(first.status, ReceiptStatus::Committed);
    assert!(first.index.is_some() && first.height.is_some());
    assert!(first.result.is_none(), "a compact receipt carries no record");
    assert_eq!(
        first
            .record::<serde_json::Value>()
            .map_err(|e| e.code().to_string())
            .err()
            .as_deref(),
        Some("io.error")
    );
    assert_eq!(
        compact[2].as_ref().err().map(|e| e.code().to_string()).as_deref(),
        Some("tx.duplicate")
    );
    net.node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_http_requests_get_json_errors() {
    let net = orderer().await;
    let before = snapshot(&net).await;
    // (what, path, content type, body, expected status, expected code)
    type Case<'a> = (&'a str, &'a str, &'a str, Vec<u8>, u16, &'a str);
    let cases: Vec<Case> = vec![
        (
            "malformed JSON",
            "/v1/txs",
            "application/json",
            b"{\"tx\": ".to_vec(),
            400,
            "request.malformed_json",
        ),
        (
            "unknown field",
            "/v1/txs",
            "application/json",
            br#"{"tx": "AAAA", "fee": 1}"#.to_vec(),
            422,
            "request.malformed_json",
        ),
        (
            "missing field",
            "/v1/txs",
            "application/json",
            br#"{}"#.to_vec(),
            422,
            "request.malformed_json",
        ),
        (
            "wrong content type",
            "/v1/txs",
            "text/plain",
            br#"{"tx": "AAAA"}"#.to_vec(),
            415,
            "request.content_type",
        ),
        (
            "bad base64",
            "/v1/txs",
            "application/json",
            br#"{"tx": "%%%"}"#.to_vec(),
            400,
            "encoding.bad_base64",
        ),
        (
            "oversized body",
            "/v1/txs",
            "application/json",
            format!("{{\"tx\": \"{}\"}}", "A".repeat(2 << 20)).into_bytes(),
            413,
            "request.too_large",
        ),
        (
            "batch with bad JSON",
            "/v1/txs/batch",
            "application/json",
            b"[1,2]".to_vec(),
            422,
            "request.malformed_json",
        ),
        (
            "raw batch without a count",
            "/v1/txs/batch/raw",
            "application/octet-stream",
            vec![1, 0],
            400,
            "request.malformed_batch",
        ),
        (
            "raw batch cut after its first transaction",
            "/v1/txs/batch/raw",
            "application/octet-stream",
            [&2u32.to_le_bytes()[..], &3u32.to_le_bytes(), &[1, 2, 3]].concat(),
            400,
            "request.malformed_batch",
        ),
        (
            "raw batch whose length runs past the body",
            "/v1/txs/batch/raw",
            "application/octet-stream",
            [&1u32.to_le_bytes()[..], &1000u32.to_le_bytes(), &[1, 2, 3]].concat(),
            400,
            "request.malformed_batch",
        ),
        (
            "raw batch asking for an unknown receipt detail",
            "/v1/txs/batch/raw?receipts=verbose",
            "application/octet-stream",
            0u32.to_le_bytes().to_vec(),
            400,
            "request.bad_query",
        ),
        (
            "JSON batch with an unknown query parameter",
            "/v1/txs/batch?detail=compact",
            "application/json",
            b"{\"txs\": []}".to_vec(),
            400,
            "request.bad_query",
        ),
        (
            "raw batch with trailing bytes",
            "/v1/txs/batch/raw",
            "application/octet-stream",
            [&0u32.to_le_bytes()[..], &[9]].concat(),
            400,
            "request.malformed_batch",
        ),
        (
            "raw batch over the transaction limit",
            "/v1/txs/batch/raw",
            "application/octet-stream",
            16_385u32.to_le_bytes().to_vec(),
            413,
            "request.too_large",
        ),
    ];
    for (name, path, ct, body, status, code) in cases {
        let (s, json) = post_raw(&net, path, ct, body).await;
        assert_eq!(
            (s, json["code"].as_str().unwrap_or("")),
            (status, code),
            "{name}: {json}"
        );
        assert!(json["message"].as_str().is_some_and(|m| !m.is_empty()), "{name}");
    }
    let gets: Vec<(&str, u16, &str)> = vec![
        ("/v1/nothing", 404, "route.not_found"),
        ("/v1/txs/not-hex", 400, "encoding.bad_hex"),
        ("/v1/txs/00", 400, "encoding.bad_hex"),
        (
            "/v1/txs/0000000000000000000000000000000000000000000000000000000000000000",
            404,
            "not_found",
        ),
        ("/v1/blocks/abc", 400, "request.bad_path"),
        ("/v1/blocks/999", 404, "not_found"),
        ("/v1/blocks?from=0", 400, "request.invalid"),
        ("/v1/blocks?from=x", 400, "request.bad_query"),
        ("/v1/proofs/consistency?from=2&to=1", 400, "request.invalid"),
        ("/v1/proofs/consistency?from=1", 400, "request.bad_query"),
        ("/v1/parties/12345", 400, "party.bad_credit_code"),
        ("/v1/parties/91310115MA1K4PRW03", 404, "party.not_found"),
        ("/v1/notarizations/zz", 400, "encoding.bad_hex"),
        ("/v1/keys/00", 400, "encoding.bad_hex"),
    ];
    for (path, status, code) in gets {
        let (s, json) = get_raw(&net, path).await;
        assert_eq!(
            (s, json["code"].as_str().unwrap_or("")),
            (status, code),
            "{path}: {json}"
        );
    }
    let resp = reqwest::Client::new()
        .delete(format!("{}/v1/status", net.node.url))
        .send()
        .await
        .expect("answers");
    assert_eq!(resp.status().as_u16(), 405);
    let json: serde_json::Value = resp.json().await.expect("JSON");
    assert_eq!(json["code"], "request.method_not_allowed");
    assert_eq!(snapshot(&net).await, before);
    net.node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_documents_every_route_the_server_serves() {
    let net = orderer().await;
    let (s, doc) = get_raw(&net, "/v1/openapi.json").await;
    assert_eq!(s, 200);
    assert!(doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.")));
    let paths = doc["paths"].as_object().expect("paths");
    let documented: std::collections::BTreeSet<&str> = paths.keys().map(String::as_str).collect();
    let served = [
        "/v1/status",
        "/v1/genesis",
        "/v1/txs",
        "/v1/txs/batch",
        "/v1/txs/batch/raw",
        "/v1/txs/{id}",
        "/v1/blocks",
        "/v1/blocks/{height}",
        "/v1/proofs/inclusion/{tx_id}",
        "/v1/proofs/consistency",
        "/v1/notarizations/{digest}",
        "/v1/parties",
        "/v1/parties/{credit_code}",
        "/v1/keys/{public_key}",
        "/v1/datasets",
        "/v1/datasets/{id}",
        "/v1/datasets/{id}/versions/{version}",
        "/v1/datasets/{id}/offers",
        "/v1/datasets/{id}/grants",
        "/v1/datasets/{id}/offers/{number}/odrl",
        "/v1/grants",
        "/v1/grants/{id}",
        "/v1/grants/{id}/odrl",
        "/v1/catalog/dcat",
        "/v1/policies/odrl",
        "/v1/deliveries",
        "/v1/deliveries/receipts",
        "/v1/queries",
        "/v1/access-log",
        "/v1/access-log/{request}",
        "/v1/audit/trace",
        "/v1/audit/sql",
        "/v1/audit/bundle",
        "/v1/zk/paths/{leaf}",
        "/v1/zk/nullifiers/{nullifier}",
        "/v1/zk/proving-key",
        "/v1/openapi.json",
    ];
    assert_eq!(documented, served.into_iter().collect());
    // Parameters are where the server reads them: a path parameter is in the
    // route's template (and required), everything else is the query string.
    for (path, item) in paths {
        for (method, op) in item.as_object().expect("path item") {
            for p in op["parameters"].as_array().into_iter().flatten() {
                let name = p["name"].as_str().expect("parameter name");
                let templated = path.contains(&format!("{{{name}}}"));
                match p["in"].as_str() {
                    Some("path") => assert!(templated && p["required"] == true, "{method} {path}: {name}"),
                    Some("query") => assert!(!templated, "{method} {path}: {name} is in the path"),
                    other => panic!("{method} {path}: {name} is in {other:?}"),
                }
            }
        }
    }
    // An optional query parameter is documented as optional.
    let batch = &paths["/v1/txs/batch/raw"]["post"]["parameters"][0];
    assert_eq!(
        (batch["name"].as_str(), batch["required"].as_bool()),
        (Some("receipts"), Some(false))
    );
    // Every schema reference resolves.
    let text = doc.to_string();
    let schemas = doc["components"]["schemas"].as_object().expect("schemas");
    for piece in text.split("\"#/components/schemas/").skip(1) {
        let name = piece.split('"').next().expect("a name");
        assert!(schemas.contains_key(name), "dangling schema reference {name}");
    }
    // Every documented GET route exists (answers something other than route.not_found).
    for (path, item) in paths {
        if item.get("get").is_none() {
            continue;
        }
        let concrete = path
            .replace("{id}", &"0".repeat(64))
            .replace("{tx_id}", &"0".repeat(64))
            .replace("{height}", "1")
            .replace("{digest}", &"0".repeat(64))
            .replace("{request}", &"0".repeat(64))
            .replace("{credit_code}", OPERATOR)
            .replace("{public_key}", &net.operator.signing.public_key().to_string());
        let resp = reqwest::get(format!("{}{concrete}", net.node.url))
            .await
            .expect("answers");
        let text = resp.text().await.unwrap_or_default();
        assert!(!text.contains("route.not_found"), "{path} is documented but not served");
    }
    // The schema of a real answer has the documented properties.
    let status_schema = &doc["components"]["schemas"]["StatusView"]["properties"];
    let (_, status) = get_raw(&net, "/v1/status").await;
    for key in status.as_object().expect("object").keys() {
        assert!(status_schema.get(key).is_some(), "status field {key} is not documented");
    }
    net.node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_and_forged_audit_calls_get_codes() {
    use liutong_exchange::audit::{AuditCall, AuditOp, SignedAuditCall, TraceFilter};
    let net = orderer().await;
    let (member_id, _) = member(&net, 71).await;
    let before = snapshot(&net).await;
    let call = |key: &liutong_core::SigningKey, chain: &str, time: u64, op: AuditOp| {
        SignedAuditCall::sign(
            AuditCall {
                chain_id: chain.into(),
                signer: key.public_key(),
                time,
                op,
            },
            key,
        )
        .to_bytes()
    };
    let trace = || AuditOp::Trace {
        filter: TraceFilter::default(),
        cursor: None,
        limit: 10,
    };
    let now = liutong_core::now_ms();
    let good = call(&member_id.signing, &net.chain, now, trace());
    let (status, j) = post_raw(&net, "/v1/audit/trace", "application/octet-stream", good.clone()).await;
    assert_eq!(status, 200, "{j}");
    assert!(j["entries"].as_array().is_some_and(|e| e.is_empty()), "{j}");
    assert!(j["visibility"].as_str().is_some_and(|v| v.contains("party")), "{j}");
    let mut forged = good.clone();
    let last = forged.len() - 1;
    forged[last] ^= 1;
    let stranger = liutong_core::SigningKey::generate();
    let mut long = good.clone();
    long.push(0);
    for (route, body, status, code) in [
        ("/v1/audit/trace", b"not borsh".to_vec(), 400, "audit.malformed"),
        ("/v1/audit/trace", Vec::new(), 400, "audit.malformed"),
        ("/v1/audit/trace", long, 400, "audit.malformed"),
        ("/v1/audit/trace", forged, 401, "audit.bad_signature"),
        (
            "/v1/audit/trace",
            call(&member_id.signing, "other-chain", now, trace()),
            400,
            "audit.wrong_chain",
        ),
        (
            "/v1/audit/trace",
            call(&member_id.signing, &net.chain, now - 3_600_000, trace()),
            400,
            "audit.stale",
        ),
        (
            "/v1/audit/trace",
            call(&stranger, &net.chain, now, trace()),
            403,
            "party.unknown_signer",
        ),
        ("/v1/audit/sql", good.clone(), 400, "audit.wrong_operation"),
        ("/v1/audit/bundle", good.clone(), 400, "audit.wrong_operation"),
        (
            "/v1/audit/sql",
            call(
                &member_id.signing,
                &net.chain,
                now,
                AuditOp::Sql {
                    sql: "UPDATE grants SET uses = 0".into(),
                },
            ),
            422,
            "query.not_select",
        ),
        (
            "/v1/audit/sql",
            call(
                &member_id.signing,
                &net.chain,
                now,
                AuditOp::Sql {
                    sql: "x".repeat(66_000),
                },
            ),
            422,
            "query.too_long",
        ),
        ("/v1/audit/sql", vec![0u8; 200_000], 413, "request.too_large"),
        (
            "/v1/audit/bundle",
            call(
                &member_id.signing,
                &net.chain,
                now,
                AuditOp::Bundle {
                    subject: liutong_exchange::audit::bundle::Subject::Entry {
                        entry: liutong_core::Digest([7; 32]),
                    },
                },
            ),
            404,
            "not_found",
        ),
    ] {
        let (s, j) = post_raw(&net, route, "application/octet-stream", body).await;
        assert_eq!(
            (s, j["code"].as_str().unwrap_or_default()),
            (status, code),
            "{route}: {j}"
        );
    }
    assert_eq!(snapshot(&net).await, before, "no audit call changes the ledger");
}
