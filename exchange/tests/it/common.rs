use liutong_core::{Canonical, CreditCode, SigningKey};
use liutong_exchange::cli::{init, InitArgs};
use liutong_exchange::client::{sign_tx, Client};
use liutong_exchange::home::{Home, Identity};
use liutong_exchange::machine::*;
use liutong_exchange::node::{start, NodeConfig, RunningNode};
use liutong_exchange::notary::Notarize;
use liutong_exchange::party::*;
use liutong_ledger::Transaction;

pub const OPERATOR: &str = "91110108MA01LTEX01";

/// An orderer node on a free loopback port, in a temp dir.
pub struct Net {
    pub dir: tempfile::TempDir,
    pub home: Home,
    pub node: RunningNode,
    pub client: Client,
    pub chain: String,
    pub operator: Identity,
}

pub async fn orderer() -> Net {
    let dir = tempfile::tempdir().expect("temp dir");
    let home = Home::new(dir.path().join("operator"));
    init(
        &home,
        &InitArgs {
            chain_id: "test-chain".into(),
            name: "Test Exchange".into(),
            credit_code: OPERATOR.into(),
            contact: "ops@example.com".into(),
            endpoint: "http://127.0.0.1:1".into(),
        },
    )
    .expect("init");
    let node = start(NodeConfig {
        home: home.clone(),
        listen: "127.0.0.1:0".parse().expect("addr"),
        follow: None,
        receipt_timeout: liutong_exchange::serve::DEFAULT_RECEIPT_TIMEOUT,
        queries: Default::default(),
    })
    .await
    .expect("orderer starts");
    let client = Client::new(&node.url).expect("client");
    let chain = home.genesis().expect("genesis").chain_id;
    let operator = home.identity().expect("identity");
    Net {
        dir,
        home,
        node,
        client,
        chain,
        operator,
    }
}

/// A valid credit code numbered `n`.
pub fn code(n: u32) -> String {
    CreditCode::with_check_character(&format!("91310000MA{n:07}"))
        .expect("valid")
        .to_string()
}

pub fn registration(net: &Net, who: &Identity, code: &str) -> Vec<u8> {
    registration_as(net, who, code, &[Role::Provider])
}

pub fn registration_as(net: &Net, who: &Identity, code: &str, roles: &[Role]) -> Vec<u8> {
    let body = RegisterParty {
        legal_name: format!("Member {code}"),
        credit_code: code.into(),
        contact: "office@example.com".into(),
        roles: roles.to_vec(),
        encryption_key: who.encryption.public_key(),
        endpoint: "https://member.example.com".into(),
    };
    sign_tx(&net.chain, KIND_REGISTER, &body, &who.signing).canonical_bytes()
}

pub fn standing(net: &Net, kind: &str, signer: &SigningKey, code: &str) -> Vec<u8> {
    let body = ChangeStanding {
        credit_code: code.into(),
        reason: "test".into(),
    };
    sign_tx(&net.chain, kind, &body, signer).canonical_bytes()
}

pub fn notarize(net: &Net, signer: &SigningKey, content: &[u8]) -> Vec<u8> {
    let body = Notarize {
        digest: liutong_core::sha256(content),
        file_name: Some("doc.pdf".into()),
        media_type: None,
        note: None,
    };
    sign_tx(&net.chain, KIND_NOTARIZE, &body, signer).canonical_bytes()
}

/// A transaction with every envelope field chosen by the test.
pub fn raw_tx(chain: &str, kind: &str, body: Vec<u8>, key: &SigningKey, nonce: u64, timestamp: u64) -> Vec<u8> {
    Transaction {
        chain_id: chain.into(),
        kind: kind.into(),
        body,
        signer: key.public_key(),
        nonce,
        timestamp,
    }
    .sign(key)
    .canonical_bytes()
}

/// Registers and approves a new provider; returns its identity and code.
pub async fn member(net: &Net, n: u32) -> (Identity, String) {
    member_as(net, n, &[Role::Provider]).await
}

/// Registers and approves a new party with `roles`; returns its identity and code.
pub async fn member_as(net: &Net, n: u32, roles: &[Role]) -> (Identity, String) {
    let id = Identity::generate();
    let c = code(n);
    net.client
        .submit_bytes(&registration_as(net, &id, &c, roles))
        .await
        .expect("registers");
    net.client
        .submit_bytes(&standing(net, KIND_APPROVE, &net.operator.signing, &c))
        .await
        .expect("approves");
    (id, c)
}

/// What must not change when a request is refused.
pub async fn snapshot(net: &Net) -> String {
    let s = net.client.status().await.expect("status");
    let parties = net.client.parties().await.expect("parties");
    format!(
        "{} {} {} {}",
        s.height,
        s.log_size,
        s.log_root,
        serde_json::to_string(&parties).expect("json")
    )
}

/// Posts raw text to a path, returning (status, JSON body).
pub async fn post_raw(net: &Net, path: &str, content_type: &str, body: Vec<u8>) -> (u16, serde_json::Value) {
    let resp = reqwest::Client::new()
        .post(format!("{}{path}", net.node.url))
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .expect("node answers");
    json_answer(resp).await
}

/// (status, JSON body) of an answer; every answer of the API must be JSON.
async fn json_answer(resp: reqwest::Response) -> (u16, serde_json::Value) {
    let status = resp.status().as_u16();
    let text = resp.text().await.expect("body");
    let json = serde_json::from_str(&text).unwrap_or_else(|_| panic!("answer is not JSON: {text}"));
    (status, json)
}

pub async fn get_raw(net: &Net, path: &str) -> (u16, serde_json::Value) {
    let resp = reqwest::get(format!("{}{path}", net.node.url))
        .await
        .expect("node answers");
    json_answer(resp).await
}

/// Submits raw bytes and returns the refusal code (panics if accepted).
pub async fn refusal(net: &Net, bytes: &[u8]) -> String {
    match net.client.submit_bytes(bytes).await {
        Ok(r) => panic!("accepted: {r:?}"),
        Err(e) => e.code().to_string(),
    }
}

/// Runs the `liutong` binary with `--json`; answers (success, last JSON line).
pub fn liutong(home: &std::path::Path, args: &[&str]) -> (bool, serde_json::Value) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_liutong"))
        .arg("--json")
        .arg("--home")
        .arg(home)
        .args(args)
        .output()
        .expect("runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let last = stdout.lines().last().unwrap_or_default();
    let json = serde_json::from_str(last)
        .unwrap_or_else(|_| panic!("{args:?}: not JSON: {stdout} {}", String::from_utf8_lossy(&out.stderr)));
    (out.status.success(), json)
}

/// A `liutong node` process, killed when dropped.
pub struct NodeProcess(pub std::process::Child);

impl Drop for NodeProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `liutong node` on a free port with `extra` arguments; answers it and its URL.
pub fn start_node_with(home: &std::path::Path, extra: &[&str]) -> (NodeProcess, String) {
    use std::io::BufRead;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_liutong"))
        .arg("--home")
        .arg(home)
        .args(["node", "--listen", "127.0.0.1:0"])
        .args(extra)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("node starts");
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().expect("piped"))
        .read_line(&mut line)
        .expect("first line");
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap_or_else(|| panic!("no URL in {line:?}"))
        .to_string();
    (NodeProcess(child), url)
}

/// A home in `dir/auditor` whose party (code `n`) is an approved auditor.
pub async fn auditor(net: &Net, dir: &std::path::Path, n: u32) -> Home {
    let home = Home::new(dir.join("auditor"));
    let id = home.create_identity().expect("keys");
    home.write_genesis(&net.client.genesis().await.expect("genesis"))
        .expect("genesis");
    let body = RegisterParty {
        legal_name: format!("Member {n}"),
        credit_code: code(n),
        contact: "audit@example.com".into(),
        roles: vec![Role::Auditor],
        encryption_key: id.encryption.public_key(),
        endpoint: "http://127.0.0.1:9".into(),
    };
    net.client
        .submit_bytes(&sign_tx(&net.chain, KIND_REGISTER, &body, &id.signing).canonical_bytes())
        .await
        .expect("registers");
    net.client
        .submit_bytes(&standing(net, KIND_APPROVE, &net.operator.signing, &code(n)))
        .await
        .expect("approves");
    home
}
