//! The catalog on the ledger: register, new versions, delist, search; every
//! refusal with its code and the state unchanged.

use crate::common::*;
use liutong_catalog::*;
use liutong_core::{Canonical, SigningKey};
use liutong_exchange::client::sign_tx;
use liutong_exchange::datasets::*;
use liutong_exchange::machine::*;
use liutong_exchange::party::*;

const CHUNK: u32 = DEFAULT_CHUNK_SIZE;

fn table(title: &str, text: &str, tags: &[&str], content: &[u8]) -> Description {
    Description {
        title: title.into(),
        description: text.into(),
        tags: normalize_tags(tags.iter().map(|t| t.to_string()).collect()),
        kind: DatasetKind::Table,
        media_type: "text/csv".into(),
        table: Some(TableShape {
            columns: vec![
                Column {
                    name: "port".into(),
                    data_type: "Utf8".into(),
                    nullable: false,
                },
                Column {
                    name: "teu".into(),
                    data_type: "Int64".into(),
                    nullable: true,
                },
            ],
            rows: 2,
        }),
        commitment: commit_reader(content, CHUNK).expect("commits"),
    }
}

/// The second column of a table description (the tests' descriptions have two).
fn second_column(d: &mut Description) -> &mut Column {
    &mut d.table.as_mut().expect("a table").columns[1]
}

fn register(net: &Net, key: &SigningKey, name: &str, d: Description) -> Vec<u8> {
    let body = RegisterDataset {
        name: name.into(),
        description: d,
    };
    sign_tx(&net.chain, KIND_DATASET_REGISTER, &body, key).canonical_bytes()
}

fn update(net: &Net, key: &SigningKey, id: DatasetId, d: Description) -> Vec<u8> {
    sign_tx(
        &net.chain,
        KIND_DATASET_UPDATE,
        &UpdateDataset {
            dataset: id,
            description: d,
        },
        key,
    )
    .canonical_bytes()
}

fn delist(net: &Net, key: &SigningKey, id: DatasetId) -> Vec<u8> {
    let body = DelistDataset {
        dataset: id,
        reason: "superseded".into(),
        revoke_existing: false,
    };
    sign_tx(&net.chain, KIND_DATASET_DELIST, &body, key).canonical_bytes()
}

async fn search(net: &Net, q: SearchQuery) -> Vec<String> {
    let page = net.client.search_datasets(&q).await.expect("searches");
    page.datasets.iter().map(|d| d.name.clone()).collect()
}

fn words(q: &str) -> SearchQuery {
    SearchQuery {
        q: Some(q.into()),
        ..Default::default()
    }
}

#[tokio::test]
async fn register_search_update_and_delist() {
    let net = orderer().await;
    let (p, code) = member(&net, 1).await;
    let (q, other) = member(&net, 2).await;
    net.client
        .submit_bytes(&register(
            &net,
            &p.signing,
            "manifests",
            table(
                "Ningbo port manifests",
                "Container manifests, 2026",
                &["logistics", "port"],
                b"port,teu\nNingbo,10\n",
            ),
        ))
        .await
        .expect("registers");
    net.client
        .submit_bytes(&register(
            &net,
            &p.signing,
            "bills",
            table("提单 Bills of lading", "海运 bills", &["logistics"], b"b"),
        ))
        .await
        .expect("registers");
    net.client
        .submit_bytes(&register(
            &net,
            &q.signing,
            "invoices",
            table("Invoices", "Trade invoices for the port", &["finance"], b"i"),
        ))
        .await
        .expect("registers");
    let id = DatasetId::of(&code.parse().expect("code"), "manifests");

    let mut hits = search(&net, words("port")).await;
    hits.sort();
    assert_eq!(hits, ["invoices", "manifests"], "title and description words");
    assert_eq!(
        search(&net, words("PORT ningbo")).await,
        ["manifests"],
        "all words, any case"
    );
    assert_eq!(search(&net, words("提单")).await, ["bills"], "CJK by character");
    assert_eq!(
        search(
            &net,
            SearchQuery {
                tag: Some("logistics".into()),
                provider: Some(code.clone()),
                ..Default::default()
            }
        )
        .await
        .len(),
        2
    );
    assert_eq!(
        search(
            &net,
            SearchQuery {
                provider: Some(other.clone()),
                ..Default::default()
            }
        )
        .await,
        ["invoices"]
    );
    assert!(search(&net, words("port nothing-like-this")).await.is_empty());
    assert!(search(
        &net,
        SearchQuery {
            kind: Some("document".into()),
            ..Default::default()
        }
    )
    .await
    .is_empty());

    // Paging: one at a time through everything, in id order, no repeats.
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = net
            .client
            .search_datasets(&SearchQuery {
                limit: Some(1),
                after: after.clone(),
                ..Default::default()
            })
            .await
            .expect("page");
        seen.extend(page.datasets.iter().map(|d| d.id.to_string()));
        match page.next {
            Some(n) => after = Some(n),
            None => break,
        }
    }
    let mut sorted = seen.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!((seen.len(), &seen), (3, &sorted));

    // A new version replaces the searchable words; the first stays readable.
    let r = net
        .client
        .submit_bytes(&update(
            &net,
            &p.signing,
            id,
            table("Shanghai port manifests", "", &["port"], b"port,teu\nShanghai,7\n"),
        ))
        .await
        .expect("updates");
    assert_eq!(r.height.map(|_| ()), Some(()));
    let record = net.client.dataset(&id).await.expect("reads");
    assert_eq!(
        (record.version, record.description.title.as_str()),
        (2, "Shanghai port manifests")
    );
    assert!(search(&net, words("ningbo")).await.is_empty());
    assert_eq!(search(&net, words("shanghai")).await, ["manifests"]);
    let v1 = net.client.dataset_version(&id, 1).await.expect("version 1");
    assert_eq!(v1.description.title, "Ningbo port manifests");

    // Delisted: out of default search, still readable, still findable on request.
    net.client
        .submit_bytes(&delist(&net, &p.signing, id))
        .await
        .expect("delists");
    assert!(search(&net, words("shanghai")).await.is_empty());
    assert_eq!(
        search(
            &net,
            SearchQuery {
                include_delisted: true,
                ..words("shanghai")
            }
        )
        .await,
        ["manifests"]
    );
    assert_eq!(
        net.client.dataset(&id).await.expect("reads").status,
        DatasetStatus::Delisted
    );
    let report = net.node.ledger.verify_chain().expect("runs");
    assert!(report.ok(), "{:?}", report.problems);
}

#[tokio::test]
async fn dataset_refusals_leave_the_state_unchanged() {
    let net = orderer().await;
    let (p, _) = member(&net, 1).await;
    let (q, _) = member(&net, 2).await;
    let (consumer, _) = member_as(&net, 3, &[Role::Consumer]).await;
    let good = || table("Manifests", "", &["port"], b"content");
    net.client
        .submit_bytes(&register(&net, &p.signing, "m", good()))
        .await
        .expect("registers");
    let id = DatasetId::of(&code(1).parse().expect("code"), "m");
    net.client
        .submit_bytes(&register(&net, &p.signing, "gone", good()))
        .await
        .expect("registers");
    let gone = DatasetId::of(&code(1).parse().expect("code"), "gone");
    net.client
        .submit_bytes(&delist(&net, &p.signing, gone))
        .await
        .expect("delists");

    let with = |f: &dyn Fn(&mut Description)| {
        let mut d = good();
        f(&mut d);
        d
    };
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("dataset.not_provider", register(&net, &consumer.signing, "x", good())),
        (
            "party.unknown_signer",
            register(&net, &SigningKey::generate(), "x", good()),
        ),
        ("catalog.bad_descriptor", register(&net, &p.signing, "Bad Name", good())),
        (
            "catalog.bad_descriptor",
            register(&net, &p.signing, "x", with(&|d| d.title = " ".into())),
        ),
        (
            "catalog.bad_descriptor",
            register(&net, &p.signing, "x", with(&|d| d.media_type = "csv".into())),
        ),
        (
            "catalog.bad_descriptor",
            register(&net, &p.signing, "x", with(&|d| d.table = None)),
        ),
        (
            "catalog.bad_descriptor",
            register(&net, &p.signing, "x", with(&|d| d.tags = vec!["b".into(), "a".into()])),
        ),
        (
            "catalog.bad_descriptor",
            register(&net, &p.signing, "x", with(&|d| d.kind = DatasetKind::File)),
        ),
        (
            "catalog.bad_schema",
            register(
                &net,
                &p.signing,
                "x",
                with(&|d| second_column(d).data_type = "Integer".into()),
            ),
        ),
        (
            "catalog.bad_schema",
            register(&net, &p.signing, "x", with(&|d| second_column(d).name = "port".into())),
        ),
        (
            "catalog.bad_commitment",
            register(
                &net,
                &p.signing,
                "x",
                with(&|d| {
                    d.commitment = commit_reader(&b"content"[..], MIN_CHUNK_SIZE).expect("commits");
                }),
            ),
        ),
        (
            "dataset.exists",
            register(&net, &p.signing, "m", with(&|d| d.title = "Again".into())),
        ),
        ("dataset.unknown", update(&net, &p.signing, DatasetId([7; 16]), good())),
        (
            "dataset.not_owner",
            update(
                &net,
                &q.signing,
                id,
                with(&|d| d.commitment = commit_reader(&b"new"[..], CHUNK).expect("c")),
            ),
        ),
        (
            "dataset.same_content",
            update(&net, &p.signing, id, with(&|d| d.title = "Renamed".into())),
        ),
        (
            "dataset.kind_changed",
            update(
                &net,
                &p.signing,
                id,
                Description {
                    kind: DatasetKind::File,
                    table: None,
                    media_type: "application/pdf".into(),
                    ..with(&|d| d.commitment = commit_reader(&b"new"[..], CHUNK).expect("c"))
                },
            ),
        ),
        (
            "dataset.delisted",
            update(
                &net,
                &p.signing,
                gone,
                with(&|d| d.commitment = commit_reader(&b"new"[..], CHUNK).expect("c")),
            ),
        ),
        ("dataset.delisted", delist(&net, &p.signing, gone)),
        ("dataset.not_owner", delist(&net, &q.signing, id)),
        (
            "tx.malformed_body",
            sign_tx(&net.chain, KIND_DATASET_REGISTER, &vec![1u8, 2, 3], &p.signing).canonical_bytes(),
        ),
    ];
    let before = snapshot(&net).await;
    let record = net.client.dataset(&id).await.expect("reads");
    for (expected, tx) in cases {
        assert_eq!(refusal(&net, &tx).await, expected);
    }
    assert_eq!(snapshot(&net).await, before, "nothing was committed");
    assert_eq!(net.client.dataset(&id).await.expect("reads"), record);
}

#[tokio::test]
async fn catalog_reads_refuse_bad_requests_with_json_errors() {
    let net = orderer().await;
    for (path, status, code) in [
        ("/v1/datasets/xyz", 400, "request.invalid"),
        ("/v1/datasets/00000000000000000000000000000000", 404, "not_found"),
        (
            "/v1/datasets/00000000000000000000000000000000/versions/1",
            404,
            "not_found",
        ),
        (
            "/v1/datasets/00000000000000000000000000000000/versions/x",
            400,
            "request.bad_path",
        ),
        ("/v1/datasets?limit=0", 400, "request.invalid"),
        ("/v1/datasets?limit=100000", 400, "request.invalid"),
        ("/v1/datasets?bogus=1", 400, "request.bad_query"),
        ("/v1/datasets?kind=spreadsheet", 400, "request.invalid"),
        ("/v1/datasets?after=zz", 400, "request.invalid"),
    ] {
        let (s, body) = get_raw(&net, path).await;
        assert_eq!((s, body["code"].as_str()), (status, Some(code)), "{path}: {body}");
    }
    let (s, body) = get_raw(&net, "/v1/datasets").await;
    assert_eq!((s, body["datasets"].as_array().map(Vec::len)), (200, Some(0)));
}

/// Two common terms that rarely meet: a page stops at the scan budget with
/// `next` set, and following `next` still finds the one match.
#[tokio::test]
async fn a_search_past_the_scan_budget_ends_early_and_continues() {
    let net = orderer().await;
    let (p, _) = member(&net, 1).await;
    let n = SCAN_BUDGET + 200;
    let make = |i: usize, title: &str, tags: &[&str]| {
        let bytes = register(
            &net,
            &p.signing,
            &format!("d{i}"),
            table(title, "", tags, &i.to_le_bytes()),
        );
        let tx = liutong_ledger::SignedTx::from_canonical_bytes(&bytes).expect("decodes");
        liutong_ledger::CheckedTx {
            id: liutong_core::sha256(&bytes),
            bytes,
            tx,
        }
    };
    let mut txs: Vec<_> = (0..n).map(|i| make(i, "plain", &["alpha"])).collect();
    txs.extend((n..2 * n).map(|i| make(i, "zulu", &["beta"])));
    txs.push(make(2 * n, "zulu", &["alpha"]));
    let key = net.home.orderer_key().expect("orderer key");
    for chunk in txs.chunks(4000) {
        for a in net
            .node
            .ledger
            .propose_block(chunk.to_vec(), &key, liutong_core::now_ms())
            .expect("commits")
        {
            a.expect("registered");
        }
    }
    let q = SearchQuery {
        q: Some("zulu".into()),
        tag: Some("alpha".into()),
        limit: Some(5),
        ..Default::default()
    };
    let first = net.client.search_datasets(&q).await.expect("searches");
    let mut found = first.datasets.len();
    let mut next = first.next;
    let mut pages = 1;
    while let Some(after) = next {
        let page = net
            .client
            .search_datasets(&SearchQuery {
                after: Some(after),
                ..q.clone()
            })
            .await
            .expect("searches");
        found += page.datasets.len();
        next = page.next;
        pages += 1;
        assert!(pages < 10, "paging ends");
    }
    assert_eq!(found, 1, "the one dataset with both");
    assert!(pages >= 2, "the first page stopped at the budget");
}
