//! `liutong demo`: the whole product on one machine, narrated. An orderer and
//! two party nodes that follow it, on free loopback ports, in a temporary
//! directory; parties are admitted, a trade document is notarized and
//! verified online and offline, a tampered copy is caught, a suspended party
//! is refused, and every store is re-verified.

use crate::cli::{self, InitArgs, Output};
use crate::client::{sign_tx, Client};
use crate::home::Home;
use crate::machine::*;
use crate::node::{self, NodeConfig, RunningNode};
use crate::notary::Notarize;
use crate::party::*;
use crate::wire::digests_from_hex;
use crate::{Error, Result};
use liutong_core::Canonical;
use liutong_ledger::merkle::verify_consistency;
use serde_json::json;
use std::net::SocketAddr;

pub const OPERATOR_CODE: &str = "91110108MA01LTEX01";
pub const PROVIDER_CODE: &str = "91310115MA1K4PRW03";
pub const CONSUMER_CODE: &str = "91440300MA5GCNTM0Y";
pub const AUDITOR_CODE: &str = "91110105MA00AUDT04";

struct Narrator {
    json: bool,
    step: u32,
    steps: Vec<serde_json::Value>,
}

impl Narrator {
    fn step(&mut self, title: &str, detail: &str) {
        self.step += 1;
        if !self.json {
            println!("\n[{}] {title}", self.step);
            for line in detail.lines() {
                println!("    {line}");
            }
        }
        self.steps
            .push(json!({ "step": self.step, "title": title, "detail": detail }));
    }
}

/// A free loopback port, so the genesis can name the operator's endpoint before its node starts.
fn free_port() -> Result<SocketAddr> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| Error::Io(format!("no free port: {e}")))?;
    l.local_addr().map_err(|e| Error::Io(e.to_string()))
}

pub async fn run(keep: bool, json: bool) -> Result<Output> {
    let dir = tempfile::Builder::new()
        .prefix("liutong-demo-")
        .tempdir()
        .map_err(|e| Error::Io(format!("cannot create a temporary directory: {e}")))?;
    let mut n = Narrator {
        json,
        step: 0,
        steps: Vec::new(),
    };
    if !json {
        println!(
            "liutong demo: a consortium of three organizations on this machine, in {}",
            dir.path().display()
        );
    }

    // 1. The operator creates the chain.
    let op_home = Home::new(dir.path().join("operator"));
    let op_addr = free_port()?;
    let init = cli::init(
        &op_home,
        &InitArgs {
            chain_id: "liutong-demo".into(),
            name: "Beijing Demo Data Exchange Co., Ltd.".into(),
            credit_code: OPERATOR_CODE.into(),
            contact: "admission@exchange.example".into(),
            endpoint: format!("http://{op_addr}"),
        },
    )?;
    n.step(
        "The operator (a data exchange) creates the chain",
        &format!(
            "{}\nThe genesis fixes the chain id, the orderer's key and the operator; its digest names the chain.",
            init.text
        ),
    );
    let orderer = node::start(NodeConfig {
        home: op_home.clone(),
        listen: op_addr,
        follow: None,
        receipt_timeout: crate::serve::DEFAULT_RECEIPT_TIMEOUT,
        queries: Default::default(),
    })
    .await?;
    let op = Client::new(&orderer.url)?;

    // 2. Two organizations start their own nodes, following the orderer.
    let mut nodes: Vec<(String, Home, RunningNode)> = Vec::new();
    for name in ["provider", "consumer"] {
        let home = Home::new(dir.path().join(name));
        home.create_identity()?;
        let running = node::start(NodeConfig {
            home: home.clone(),
            listen: free_port()?,
            follow: Some(orderer.url.clone()),
            receipt_timeout: crate::serve::DEFAULT_RECEIPT_TIMEOUT,
            queries: Default::default(),
        })
        .await?;
        nodes.push((name.to_string(), home, running));
    }
    n.step(
        "Two member organizations start their own nodes",
        &format!(
            "orderer  {}  (operator)\nprovider {}  (Shanghai Demo Logistics Group: keeps a full verified copy of the ledger)\nconsumer {}  (Shenzhen Demo Trade Bank: the same)\nEach follower pulls blocks, checks the orderer's signature, the header chain, every\ntransaction signature and the recomputed Merkle root before applying them.",
            orderer.url, nodes[0].2.url, nodes[1].2.url
        ),
    );
    let (prov_home, prov) = (nodes[0].1.clone(), Client::new(&nodes[0].2.url)?);
    let (cons_home, cons) = (nodes[1].1.clone(), Client::new(&nodes[1].2.url)?);

    // 3. Registration and approval.
    let apply = |home: &Home, legal_name: &str, code: &str, role: Role, endpoint: &str| -> Result<Vec<u8>> {
        let genesis = home.genesis()?;
        let identity = home.identity()?;
        let body = RegisterParty {
            legal_name: legal_name.into(),
            credit_code: code.into(),
            contact: "data-office@example.com".into(),
            roles: vec![role],
            encryption_key: identity.encryption.public_key(),
            endpoint: endpoint.into(),
        };
        Ok(sign_tx(&genesis.chain_id, KIND_REGISTER, &body, &identity.signing).canonical_bytes())
    };
    let r1 = prov
        .submit_bytes(&apply(
            &prov_home,
            "Shanghai Demo Logistics Group Co., Ltd.",
            PROVIDER_CODE,
            Role::Provider,
            prov.url(),
        )?)
        .await?;
    let r2 = cons
        .submit_bytes(&apply(
            &cons_home,
            "Shenzhen Demo Trade Bank Co., Ltd.",
            CONSUMER_CODE,
            Role::Consumer,
            cons.url(),
        )?)
        .await?;
    let early = notarize_bytes(&cons_home, b"too early")?;
    let refused = cons.submit_bytes(&early).await.err();
    n.step(
        "Both apply for membership with signed registrations (real-name: unified social credit codes)",
        &format!(
            "provider {PROVIDER_CODE}: pending, block {}\nconsumer {CONSUMER_CODE}: pending, block {}\nA pending party cannot transact yet: {}",
            r1.height.unwrap_or(0),
            r2.height.unwrap_or(0),
            refusal_text(refused)
        ),
    );
    for code in [PROVIDER_CODE, CONSUMER_CODE] {
        cli::run(cli::in_home(
            &op_home,
            &[
                "party",
                "approve",
                code,
                "--node",
                &orderer.url,
                "--reason",
                "KYC documents checked",
            ],
        )?)
        .await?;
    }
    let list = cli::run(cli::in_home(&op_home, &["party", "list", "--node", prov.url()])?).await?;
    n.step(
        "The operator approves both after KYC (party list, read from the provider's own node)",
        &list.text,
    );

    // 4. Notarization.
    let doc = dir.path().join("bill-of-lading-SHA2026-0042.txt");
    std::fs::write(
        &doc,
        "BILL OF LADING SHA2026-0042\nShipper: Shanghai Demo Logistics Group\nConsignee: Shenzhen Demo Trade Bank (as pledgee)\nGoods: 40 x 40ft containers, electronic components\nPort of loading: Yangshan  Port of discharge: Rotterdam\n",
    )
    .map_err(|e| Error::Io(e.to_string()))?;
    let nf = cli::notarize_file(
        &prov_home,
        &prov,
        &doc,
        Some("text/plain".into()),
        Some("original B/L".into()),
    )
    .await?;
    n.step(
        "The provider notarizes a trade document: only its SHA-256 goes on the ledger",
        &format!(
            "{}\nThe ledger acknowledged it only after the block was synced to disk.",
            nf.describe()
        ),
    );
    let again = cli::notarize_file(&prov_home, &prov, &doc, None, None).await?;
    n.step(
        "Notarizing the same document again returns the existing record, not a second one",
        &again.describe(),
    );

    // 4b. The catalog.
    let csv = dir.path().join("yangshan-shipments-2026q3.csv");
    std::fs::write(
        &csv,
        "container,port_of_loading,port_of_discharge,teu,departed\n\
         MSKU1234565,Yangshan,Rotterdam,2,2026-07-03\n\
         CSQU3054383,Yangshan,Hamburg,2,2026-07-09\n\
         TGHU8731456,Yangshan,Singapore,1,2026-08-14\n\
         OOLU1548372,Yangshan,Los Angeles,2,2026-09-21\n",
    )
    .map_err(|e| Error::Io(e.to_string()))?;
    let listed = cli::run(cli::in_home(
        &prov_home,
        &[
            "dataset",
            "register",
            path_str(&csv),
            "--name",
            "yangshan-shipments-2026q3",
            "--title",
            "Yangshan container shipments 2026 Q3",
            "--description",
            "One row per container: ports of loading and discharge, TEU, departure date.",
            "--tag",
            "logistics",
            "--tag",
            "shipping",
            "--node",
            prov.url(),
        ],
    )?)
    .await?;
    n.step(
        "The provider lists a table in the catalog: only its descriptor goes on the ledger",
        &format!(
            "{}\nThe CSV stays on the provider's node. Its schema and row count were read with Arrow's\nCSV reader; its content is committed by an RFC 6962 root over 1 MiB chunk hashes and its SHA-256.",
            listed.text
        ),
    );
    wait_for_height(&nodes, orderer.ledger.height()).await;
    let found = cli::run(cli::in_home(
        &cons_home,
        &["dataset", "search", "container", "shipments", "--node", cons.url()],
    )?)
    .await?;
    n.step(
        "The bank searches the catalog on its own node (words, provider, kind, tag; paged)",
        &format!("$ liutong dataset search container shipments\n{}", found.text),
    );

    // 4c. An offer and grants.
    let dataset_id = listed.json["dataset"]["id"].as_str().unwrap_or_default().to_string();
    let now = liutong_core::now_ms();
    let offer_terms = json!({
        "purposes": ["logistics-planning", "trade-finance"],
        "not_before": now - 60_000,
        "not_after": now + 365 * 86_400_000u64,
        "max_uses": 100,
        "actions": ["query"],
        "columns": ["container", "departed", "port_of_discharge", "teu"],
        "row_filter": "teu > 0",
        "masks": [{"column": "container", "mask": {"kind": "hash"}}],
        "min_group_size": null,
        "row_cap": 10000,
        "transferable": false
    });
    let offer_path = dir.path().join("offer-terms.json");
    std::fs::write(&offer_path, offer_terms.to_string()).map_err(|e| Error::Io(e.to_string()))?;
    let offered = cli::run(cli::in_home(
        &prov_home,
        &[
            "offer",
            "add",
            &dataset_id,
            "--terms",
            path_str(&offer_path),
            "--node",
            prov.url(),
        ],
    )?)
    .await?;
    n.step(
        "The provider offers the table for queries: the widest terms it will grant",
        &format!(
            "{}\nColumns, a row filter, a hashed container number and a row cap: a grant can only narrow these.",
            offered.text
        ),
    );
    wait_for_height(&nodes, orderer.ledger.height()).await;
    let request = |purpose: &str, uses: &str| {
        cli::in_home(
            &cons_home,
            &[
                "grant",
                "request",
                &dataset_id,
                "--offer",
                "1",
                "--purpose",
                purpose,
                "--max-uses",
                uses,
                "--days",
                "90",
                "--node",
                cons.url(),
            ],
        )
    };
    let first = cli::run(request("trade-finance", "12")?).await?;
    let first_id = first.json["grant"]["id"].as_str().unwrap_or_default().to_string();
    wait_for_height(&nodes, orderer.ledger.height()).await;
    let issued = cli::run(cli::in_home(
        &prov_home,
        &["grant", "issue", &first_id, "--node", prov.url()],
    )?)
    .await?;
    n.step(
        "The bank requests a grant for trade finance; the provider issues it (a usage-rights token on the ledger)",
        &issued.text,
    );
    let wider = cli::run(request("marketing", "12")?).await.err();
    let second = cli::run(request("logistics-planning", "3")?).await?;
    let second_id = second.json["grant"]["id"].as_str().unwrap_or_default().to_string();
    wait_for_height(&nodes, orderer.ledger.height()).await;
    cli::run(cli::in_home(
        &prov_home,
        &["grant", "issue", &second_id, "--node", prov.url()],
    )?)
    .await?;
    cli::run(cli::in_home(
        &prov_home,
        &[
            "grant",
            "revoke",
            &second_id,
            "--reason",
            "planning project cancelled",
            "--node",
            prov.url(),
        ],
    )?)
    .await?;
    wait_for_height(&nodes, orderer.ledger.height()).await;
    let grants = cli::run(cli::in_home(
        &cons_home,
        &["grant", "list", &dataset_id, "--node", cons.url()],
    )?)
    .await?;
    n.step(
        "A second grant is issued, then revoked; a request outside the offer's terms is refused",
        &format!(
            "$ liutong grant list {dataset_id}\n{}\nA request for purpose \"marketing\": {}",
            grants.text,
            refusal_text(wider)
        ),
    );

    // 4d. The same objects in the standards' words.
    let agreement = cli::run(cli::in_home(
        &cons_home,
        &["grant", "show", &first_id, "--odrl", "--node", cons.url()],
    )?)
    .await?;
    let catalog = cli::run(cli::in_home(
        &cons_home,
        &["dataset", "search", "container", "--dcat", "--node", cons.url()],
    )?)
    .await?;
    let partner_path = dir.path().join("partner-offer.jsonld");
    let partner_offer = json!({
        "@context": ["http://www.w3.org/ns/odrl.jsonld", {"liutong": liutong_policies::odrl::LIUTONG}],
        "@type": "Offer",
        "uid": "http://partner.example/policies/7",
        "permission": [{
            "action": "use",
            "constraint": [
                {"leftOperand": "purpose", "operator": "eq", "rightOperand": "trade-finance"},
                {"leftOperand": "spatial", "operator": "eq", "rightOperand": "CN"}
            ]
        }]
    });
    std::fs::write(&partner_path, partner_offer.to_string()).map_err(|e| Error::Io(e.to_string()))?;
    let partner = cli::run(cli::in_home(
        &prov_home,
        &[
            "offer",
            "add",
            &dataset_id,
            "--terms",
            path_str(&partner_path),
            "--node",
            prov.url(),
        ],
    )?)
    .await
    .err();
    n.step(
        "The same objects in the standards' words: the catalog as DCAT-3, the grant as an ODRL 2.2 agreement",
        &format!(
            "$ liutong dataset search container --dcat        (GET /v1/catalog/dcat, JSON-LD)\n{}\n\
             $ liutong grant show {first_id} --odrl   (GET /v1/grants/{{id}}/odrl)\n{}\n\
             A partner's ODRL offer limited to odrl:spatial = CN is refused, not silently widened:\n{}",
            dcat_summary(&catalog.json),
            odrl_summary(&agreement.json),
            refusal_text(partner)
        ),
    );

    // 4e. Peer-to-peer delivery under a download grant.
    let download_terms = json!({
        "purposes": ["trade-finance"],
        "not_before": now - 60_000,
        "not_after": now + 30 * 86_400_000u64,
        "max_uses": 5,
        "actions": ["download"],
        "columns": null, "row_filter": null, "masks": [], "min_group_size": null, "row_cap": null,
        "transferable": false
    });
    let download_path = dir.path().join("download-terms.json");
    std::fs::write(&download_path, download_terms.to_string()).map_err(|e| Error::Io(e.to_string()))?;
    cli::run(cli::in_home(
        &prov_home,
        &[
            "offer",
            "add",
            &dataset_id,
            "--terms",
            path_str(&download_path),
            "--automatic",
            "--node",
            prov.url(),
        ],
    )?)
    .await?;
    wait_for_height(&nodes, orderer.ledger.height()).await;
    let dl = cli::run(cli::in_home(
        &cons_home,
        &[
            "grant",
            "request",
            &dataset_id,
            "--offer",
            "2",
            "--purpose",
            "trade-finance",
            "--node",
            cons.url(),
        ],
    )?)
    .await?;
    let dl_id = dl.json["grant"]["id"].as_str().unwrap_or_default().to_string();
    wait_for_height(&nodes, orderer.ledger.height()).await;
    let received = dir.path().join("received-shipments.csv");
    let fetched = cli::run(cli::in_home(
        &cons_home,
        &[
            "fetch",
            &dataset_id,
            "--grant",
            &dl_id,
            "--out",
            path_str(&received),
            "--node",
            cons.url(),
        ],
    )?)
    .await?;
    let same = std::fs::read(&received).ok() == std::fs::read(&csv).ok();
    wait_for_height(&nodes, orderer.ledger.height()).await;
    let log = cli::run(cli::in_home(
        &cons_home,
        &["access", "list", "--grant", &dl_id, "--node", cons.url()],
    )?)
    .await?;
    let revoked_fetch = cli::run(cli::in_home(
        &cons_home,
        &[
            "fetch",
            &dataset_id,
            "--grant",
            &second_id,
            "--out",
            path_str(&dir.path().join("not-received.csv")),
            "--node",
            cons.url(),
        ],
    )?)
    .await
    .err();
    n.step(
        "The bank fetches the file from the provider's node under a download grant: end-to-end encrypted, verified, logged",
        &format!(
            "A second offer allows downloads, issued automatically; the bank's grant: {dl_id}\n\
             $ liutong fetch {dataset_id} --grant {dl_id} --out received-shipments.csv\n{}\n\
             identical to the provider's file: {}\n\
             The stream was sealed with HPKE to the bank's registered X25519 key and checked chunk by chunk\n\
             against the on-chain commitment; the provider counted the use on the ledger before sending,\n\
             and logged the delivery with the bank's signed receipt:\n\
             $ liutong access list --grant {dl_id}\n{}\n\
             A fetch under the revoked grant is refused by the provider's node: {}",
            fetched.text,
            if same { "yes" } else { "NO" },
            log.text,
            refusal_text(revoked_fetch)
        ),
    );

    // 4f. Compute-to-data under the query grant.
    let table = "\"yangshan-shipments-2026q3\"";
    let query = |sql: String| {
        let (home, dataset, grant, node) = (
            cons_home.clone(),
            dataset_id.clone(),
            first_id.clone(),
            cons.url().to_string(),
        );
        async move {
            cli::run(cli::in_home(
                &home,
                &["query", &dataset, &sql, "--grant", &grant, "--node", &node],
            )?)
            .await
        }
    };
    let aggregate_sql = format!(
        "SELECT port_of_discharge, count(*) AS containers, sum(teu) AS teu FROM {table} GROUP BY port_of_discharge ORDER BY teu DESC"
    );
    let aggregate = query(aggregate_sql.clone()).await?;
    let rows_sql =
        format!("SELECT container, port_of_discharge, teu FROM {table} ORDER BY teu DESC, port_of_discharge");
    let masked = query(rows_sql.clone()).await?;
    let forbidden_sql = format!("SELECT port_of_loading, count(*) FROM {table} GROUP BY port_of_loading");
    let forbidden = query(forbidden_sql.clone()).await.err();
    wait_for_height(&nodes, orderer.ledger.height()).await;
    let query_log = cli::run(cli::in_home(
        &cons_home,
        &["access", "list", "--grant", &first_id, "--node", cons.url()],
    )?)
    .await?;
    n.step(
        "The bank runs SQL on the provider's node under its query grant (compute-to-data): only permitted results leave",
        &format!(
            "$ liutong query {dataset_id} --grant {first_id} \\\n    \"{aggregate_sql}\"\n{}\n\n\
             Row-level output is allowed by this grant, with the container number hashed under a per-grant secret salt:\n\
             $ liutong query ... \"{rows_sql}\"\n{}\n\n\
             A column outside the grant is refused with the reason, and costs no use:\n\
             $ liutong query ... \"{forbidden_sql}\"\n{}\n\n\
             The provider's node planned each query with DataFusion, rewrote the plan under the grant's terms\n\
             (columns, row filter directly above the scan, masks at the scan, row cap) and sealed the Arrow result\n\
             to the bank; each answered query is in the access log with its query and result digests:\n\
             $ liutong access list --grant {first_id}\n{}",
            aggregate.text,
            masked.text,
            refusal_text(forbidden),
            query_log.text
        ),
    );

    // 4g. Private mode: a use proven in zero knowledge, opened by the auditor.
    let aud_home = Home::new(dir.path().join("auditor"));
    aud_home.create_identity()?;
    aud_home.write_genesis(&op_home.genesis()?)?;
    op.submit_bytes(&apply(
        &aud_home,
        "Beijing Demo Certified Public Accountants LLP",
        AUDITOR_CODE,
        Role::Auditor,
        &orderer.url,
    )?)
    .await?;
    cli::run(cli::in_home(
        &op_home,
        &[
            "party",
            "approve",
            AUDITOR_CODE,
            "--node",
            &orderer.url,
            "--reason",
            "licensed auditor",
        ],
    )?)
    .await?;
    wait_for_height(&nodes, orderer.ledger.height()).await;
    let private_grant = cli::run(cli::in_home(
        &cons_home,
        &[
            "grant",
            "request",
            &dataset_id,
            "--offer",
            "2",
            "--purpose",
            "trade-finance",
            "--max-uses",
            "1",
            "--private",
            "--node",
            cons.url(),
        ],
    )?)
    .await?;
    let pg_id = private_grant.json["grant"]["id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let leaf = private_grant.json["grant"]["private"]["leaf"]
        .as_u64()
        .unwrap_or_default();
    wait_for_height(&nodes, orderer.ledger.height()).await;
    let private_out = dir.path().join("received-privately.csv");
    let private_fetch = cli::run(cli::in_home(
        &cons_home,
        &[
            "fetch",
            &dataset_id,
            "--grant",
            &pg_id,
            "--private",
            "--out",
            path_str(&private_out),
            "--node",
            cons.url(),
        ],
    )?)
    .await?;
    let entry_id = private_fetch.json["access_log"]["request"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    wait_for_height(&nodes, orderer.ledger.height()).await;
    let entry: serde_json::Value = cons.get(&format!("/v1/access-log/{entry_id}")).await?;
    let again = cli::run(cli::in_home(
        &cons_home,
        &[
            "fetch",
            &dataset_id,
            "--grant",
            &pg_id,
            "--private",
            "--out",
            path_str(&dir.path().join("not-received-privately.csv")),
            "--node",
            cons.url(),
        ],
    )?)
    .await
    .err();
    let opened = cli::run(cli::in_home(
        &aud_home,
        &["audit", "open", &entry_id, "--node", &orderer.url],
    )?)
    .await?;
    let snark_dir = dir.path().join("snarkjs");
    let exported = cli::run(cli::in_home(
        &aud_home,
        &[
            "zk",
            "export",
            "--snarkjs",
            path_str(&snark_dir),
            "--entry",
            &entry_id,
            "--node",
            &orderer.url,
        ],
    )?)
    .await?;
    let private_ok = std::fs::read(&private_out).ok() == std::fs::read(&csv).ok()
        && entry["grant"].is_null()
        && entry["consumer"].is_null()
        && again.is_some();
    if !private_ok {
        return Err(Error::BadEvidence(
            "the private-mode step did not behave as it must".into(),
        ));
    }
    n.step(
        "Private mode: the bank proves an authorized use in zero knowledge; the ledger sees only a nullifier",
        &format!(
            "A licensed auditor joins ({AUDITOR_CODE}). The bank asks for a private grant (1 use):\n\
             $ liutong grant request {dataset_id} --offer 2 --max-uses 1 --private\n\
             grant {pg_id}: its commitment is leaf {leaf} of the on-chain Poseidon grant tree; the secret stays in the bank's home.\n\
             $ liutong fetch {dataset_id} --grant {pg_id} --private --out received-privately.csv\n{}\n\
             The request named no grant and was signed with a one-time key; a Groth16 proof showed that some grant in\n\
             the tree covers this dataset and action, has not expired and has uses left. The access-log entry:\n\
             grant: {}  consumer: {}\n\
             nullifier {}\n\
             proof {}... ({} bytes: the 128-byte Groth16 proof and its residue hint, which lets the provider's node\n\
             and the ledger each verify it without the pairing's final exponentiation)\n\
             A second private fetch is refused, since the grant's one use is spent: {}\n\
             The auditor opens the entry (the opening was sealed to its key with HPKE and matches the escrow tag):\n\
             $ liutong audit open {entry_id}\n{}\n\
             $ liutong zk export --snarkjs snarkjs/ --entry {entry_id}\n{}",
            private_fetch.text.lines().take(3).collect::<Vec<_>>().join("\n"),
            if entry["grant"].is_null() { "not named" } else { "NAMED" },
            if entry["consumer"].is_null() { "not named" } else { "NAMED" },
            entry["private"]["nullifier"].as_str().unwrap_or_default(),
            entry["private"]["proof"].as_str().unwrap_or_default().get(..32).unwrap_or_default(),
            entry["private"]["proof"].as_str().unwrap_or_default().len() / 2,
            refusal_text(again),
            opened.text,
            exported.text
        ),
    );

    // 5. Verification, online and offline.
    let bundle_path = dir.path().join("evidence.json");
    let online = cli::run(cli::in_home(
        &cons_home,
        &[
            "verify",
            path_str(&doc),
            "--node",
            cons.url(),
            "--bundle-out",
            path_str(&bundle_path),
        ],
    )?)
    .await?;
    n.step(
        "The bank verifies the document against its own node and saves an evidence bundle",
        &online.text,
    );
    let genesis_path = op_home.genesis_path();
    let offline = cli::run(cli::in_home(
        &cons_home,
        &[
            "verify",
            path_str(&doc),
            "--bundle",
            path_str(&bundle_path),
            "--genesis",
            path_str(&genesis_path),
        ],
    )?)
    .await?;
    n.step(
        "Anyone (a court) verifies the bundle offline: no node, no network, only the genesis",
        &format!(
            "{}\nThe bundle holds RFC 6962 inclusion proofs any independent verifier can check.",
            offline.text
        ),
    );

    let tampered = dir.path().join("bill-of-lading-SHA2026-0042-tampered.txt");
    let mut bytes = std::fs::read(&doc).map_err(|e| Error::Io(e.to_string()))?;
    if let Some(b) = bytes.iter_mut().find(|b| **b == b'4') {
        *b = b'5'; // 40 containers become 50
    }
    std::fs::write(&tampered, bytes).map_err(|e| Error::Io(e.to_string()))?;
    let t_online = cli::run(cli::in_home(
        &cons_home,
        &["verify", path_str(&tampered), "--node", cons.url()],
    )?)
    .await?;
    let t_offline = cli::run(cli::in_home(
        &cons_home,
        &[
            "verify",
            path_str(&tampered),
            "--bundle",
            path_str(&bundle_path),
            "--genesis",
            path_str(&genesis_path),
        ],
    )?)
    .await?;
    if t_online.ok || t_offline.ok || !online.ok || !offline.ok {
        return Err(Error::BadEvidence(
            "the demo's verification results are not what they must be".into(),
        ));
    }
    n.step(
        "A copy with one character changed (40 containers -> 50) fails both checks",
        &format!("online:  {}\noffline: {}", t_online.text, t_offline.text),
    );

    // 6. Standing: suspension refuses transactions.
    cli::run(cli::in_home(
        &op_home,
        &[
            "party",
            "suspend",
            CONSUMER_CODE,
            "--node",
            &orderer.url,
            "--reason",
            "overdue fees",
        ],
    )?)
    .await?;
    let refused = cons
        .submit_bytes(&notarize_bytes(&cons_home, b"while suspended")?)
        .await
        .err();
    cli::run(cli::in_home(
        &op_home,
        &[
            "party",
            "reinstate",
            CONSUMER_CODE,
            "--node",
            &orderer.url,
            "--reason",
            "fees paid",
        ],
    )?)
    .await?;
    let after = cons
        .submit_bytes(&notarize_bytes(&cons_home, b"after reinstatement")?)
        .await?;
    n.step(
        "The operator suspends the bank: its transactions are refused until it is reinstated",
        &format!(
            "while suspended: {}\nafter reinstatement: committed in block {}",
            refusal_text(refused),
            after.height.unwrap_or(0)
        ),
    );

    // 7. Consistency: the log only grows.
    let head = op.status().await?.height;
    // The provider's node answers from its own copy: let it catch up first.
    wait_for_height(&nodes, head).await;
    let c = prov.consistency_proof(1, head).await?;
    let from = liutong_ledger::SignedHeader::try_from(&c.from)?;
    let to = liutong_ledger::SignedHeader::try_from(&c.to)?;
    let genesis = op_home.genesis()?;
    from.verify(&genesis.orderer)?;
    to.verify(&genesis.orderer)?;
    verify_consistency(
        from.header.log_size,
        to.header.log_size,
        &digests_from_hex("consistency path", &c.path)?,
        &from.header.log_root,
        &to.header.log_root,
    )
    .map_err(|e| Error::BadEvidence(e.to_string()))?;
    n.step(
        "The log is append-only: a consistency proof from block 1 to the head checks out",
        &format!(
            "block 1 (log size {}) is a prefix of block {head} (log size {}): {} hashes, verified locally",
            from.header.log_size,
            to.header.log_size,
            c.path.len()
        ),
    );

    // 8. Audit: trace, SQL, an evidence bundle and a report.
    wait_for_height(&nodes, orderer.ledger.height()).await;
    let trace = cli::run(cli::in_home(
        &aud_home,
        &["audit", "trace", "--dataset", &dataset_id, "--node", &orderer.url],
    )?)
    .await?;
    n.step(
        "The auditor traces every use of the dataset: who, when, under which grant, what they got",
        &format!(
            "$ liutong audit trace --dataset {dataset_id}\n{}",
            shorten(&trace.text, 40)
        ),
    );
    let per_consumer = "SELECT coalesce(p.legal_name, '(private use)') AS consumer, a.action, count(*) AS uses, \
                        sum(a.bytes) AS bytes, sum(CASE WHEN a.outcome = 'acknowledged' THEN 1 ELSE 0 END) AS acknowledged \
                        FROM access_log a LEFT JOIN parties p ON a.consumer = p.credit_code \
                        GROUP BY 1, 2 ORDER BY uses DESC";
    let by_auditor = cli::run(cli::in_home(
        &aud_home,
        &["audit", "sql", per_consumer, "--node", &orderer.url],
    )?)
    .await?;
    let count = "SELECT count(*) AS entries FROM access_log";
    let seen_by_auditor = cli::run(cli::in_home(
        &aud_home,
        &["audit", "sql", count, "--node", &orderer.url],
    )?)
    .await?;
    let seen_by_bank = cli::run(cli::in_home(
        &cons_home,
        &["audit", "sql", count, "--node", cons.url()],
    )?)
    .await?;
    let write = cli::run(cli::in_home(
        &cons_home,
        &["audit", "sql", "DELETE FROM access_log", "--node", cons.url()],
    )?)
    .await
    .err();
    n.step(
        "SQL over the ledger (DataFusion over Arrow tables read from the node's store), read-only, per caller",
        &format!(
            "$ liutong audit sql \"{per_consumer}\"\n{}\n\
             The auditor sees every entry; the bank only the uses it is a party to:\n\
             auditor: {}\nbank:    {}\n\
             Writes are refused: {}",
            by_auditor.text,
            seen_by_auditor.json["result"][0]["entries"],
            seen_by_bank.json["result"][0]["entries"],
            refusal_text(write)
        ),
    );
    let audit_bundle = dir.path().join("audit-bundle.json");
    let exported = cli::run(cli::in_home(
        &aud_home,
        &[
            "audit",
            "bundle",
            "--dataset",
            &dataset_id,
            "--out",
            path_str(&audit_bundle),
            "--node",
            &orderer.url,
        ],
    )?)
    .await?;
    let report_path = dir.path().join("audit-report.html");
    let report = cli::run(cli::in_home(
        &aud_home,
        &[
            "audit",
            "report",
            "--dataset",
            &dataset_id,
            "--out",
            path_str(&report_path),
            "--node",
            &orderer.url,
        ],
    )?)
    .await?;
    n.step(
        "The auditor exports the trace as an evidence bundle (signed by the auditor) and an HTML report",
        &format!(
            "$ liutong audit bundle --dataset {dataset_id} --out audit-bundle.json\n{}\n\
             $ liutong audit report --dataset {dataset_id} --out audit-report.html\n{}\n\
             (a self-contained page: the trace table and a timeline of uses per day by consumer)",
            shorten(&exported.text, 14),
            report.text
        ),
    );

    // 9. Followers caught up; stop and re-verify every store.
    wait_for_height(&nodes, head).await;
    if keep {
        let mut text = format!(
            "nodes keep running (Ctrl-C stops them):\n  orderer  {}  home {}",
            orderer.url,
            op_home.dir().display()
        );
        for (name, home, node) in &nodes {
            text.push_str(&format!("\n  {name:<8} {}  home {}", node.url, home.dir().display()));
        }
        n.step("Kept running", &text);
        let _kept = dir.keep();
        let _ = tokio::signal::ctrl_c().await;
    }
    for (_, _, node) in nodes {
        node.stop().await;
    }
    orderer.stop().await;
    let mut reports = String::new();
    let mut all_ok = true;
    for (name, home) in [
        ("orderer", &op_home),
        ("provider", &prov_home),
        ("consumer", &cons_home),
    ] {
        let report = cli::chain_verify(home)?;
        all_ok &= report.ok();
        reports.push_str(&format!("{name:<9}{}\n", cli::describe_chain_report(&report)));
    }
    n.step(
        "Nodes stopped; `chain verify` re-checks each store: signatures, links, Merkle roots, replayed state",
        reports.trim_end(),
    );
    let court = cli::run(cli::in_home(
        &aud_home,
        &[
            "verify",
            "--bundle",
            path_str(&audit_bundle),
            "--genesis",
            path_str(&op_home.genesis_path()),
        ],
    )?)
    .await?;
    all_ok &= court.ok;
    n.step(
        "With every node stopped, a court verifies the auditor's bundle from the bundle and the genesis alone",
        &format!(
            "$ liutong verify --bundle audit-bundle.json --genesis genesis.json\n{}\n\
             the report: {}{}",
            shorten(&court.text, 30),
            report_path.display(),
            if keep { "" } else { " (kept with `liutong demo --keep`)" }
        ),
    );
    if !json {
        println!("\ndemo finished: every step behaved as it must.");
    }
    Ok(Output {
        ok: all_ok,
        text: String::new(),
        json: json!({ "demo": "ok", "steps": n.steps }),
    })
}

/// At most `lines` lines of `text`, saying how many were left out.
fn shorten(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    if all.len() <= lines {
        return text.to_string();
    }
    format!("{}\n    … ({} more lines)", all[..lines].join("\n"), all.len() - lines)
}

/// A few lines that say what a DCAT catalog export holds.
fn dcat_summary(doc: &serde_json::Value) -> String {
    let datasets = doc["dcat:dataset"].as_array().map(Vec::as_slice).unwrap_or(&[]);
    let mut lines = vec![format!(
        "  {} {}: {} dcat:Dataset",
        doc["@type"].as_str().unwrap_or_default(),
        doc["@id"].as_str().unwrap_or_default(),
        datasets.len()
    )];
    for d in datasets {
        let dist = &d["dcat:distribution"][0];
        let sha = dist["spdx:checksum"]["spdx:checksumValue"]["@value"]
            .as_str()
            .unwrap_or_default();
        lines.push(format!(
            "  {} \"{}\": {}, {} bytes, sha256 {}…; {} odrl:Offer",
            d["@id"].as_str().unwrap_or_default(),
            d["dct:title"].as_str().unwrap_or_default(),
            dist["dcat:mediaType"]["@id"].as_str().unwrap_or_default(),
            dist["dcat:byteSize"]["@value"].as_str().unwrap_or_default(),
            sha.get(..16).unwrap_or(sha),
            d["odrl:hasPolicy"].as_array().map_or(0, Vec::len)
        ));
    }
    lines.join("\n")
}

/// An ODRL policy export as one line per constraint.
fn odrl_summary(doc: &serde_json::Value) -> String {
    let text = |v: &serde_json::Value| -> String {
        match v {
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Array(a) => a
                .iter()
                .map(|x| x.as_str().unwrap_or_default())
                .collect::<Vec<_>>()
                .join(", "),
            serde_json::Value::Object(o) if o.contains_key("@value") => {
                o["@value"].to_string().trim_matches('"').to_string()
            }
            serde_json::Value::Object(o) => format!(
                "{}: {}",
                o.get("liutong:column").and_then(|c| c.as_str()).unwrap_or_default(),
                o.get("liutong:method").and_then(|c| c.as_str()).unwrap_or_default()
            ),
            other => other.to_string(),
        }
    };
    let mut lines = vec![format!(
        "  {} {}\n  assigner {}  assignee {}",
        doc["@type"].as_str().unwrap_or_default(),
        doc["@id"].as_str().unwrap_or_default(),
        doc["odrl:assigner"]["@id"].as_str().unwrap_or_default(),
        doc["odrl:assignee"]["@id"].as_str().unwrap_or_default()
    )];
    for p in doc["odrl:permission"].as_array().map(Vec::as_slice).unwrap_or(&[]) {
        lines.push(format!(
            "  permission {} when",
            p["odrl:action"]["@id"].as_str().unwrap_or_default()
        ));
        for c in p["odrl:constraint"].as_array().map(Vec::as_slice).unwrap_or(&[]) {
            lines.push(format!(
                "    {} {} {}",
                c["odrl:leftOperand"]["@id"].as_str().unwrap_or_default(),
                c["odrl:operator"]["@id"].as_str().unwrap_or_default(),
                text(&c["odrl:rightOperand"])
            ));
        }
    }
    lines.join("\n")
}

fn refusal_text(e: Option<Error>) -> String {
    match e {
        Some(e) => format!("refused [{}] {e}", e.code()),
        None => "NOT refused (this is a bug)".into(),
    }
}

fn notarize_bytes(home: &Home, content: &[u8]) -> Result<Vec<u8>> {
    let genesis = home.genesis()?;
    let identity = home.identity()?;
    let body = Notarize::of_digest(liutong_core::sha256(content));
    Ok(sign_tx(&genesis.chain_id, KIND_NOTARIZE, &body, &identity.signing).canonical_bytes())
}

fn path_str(p: &std::path::Path) -> &str {
    p.to_str().unwrap_or_default()
}

async fn wait_for_height(nodes: &[(String, Home, RunningNode)], height: u64) {
    for (_, _, node) in nodes {
        let mut rx = node.ledger.subscribe();
        let _ = tokio::time::timeout(std::time::Duration::from_secs(10), rx.wait_for(|h| *h >= height)).await;
    }
}
