//! Peer-to-peer delivery between processes: the orderer in the test, the
//! provider's node as a `liutong node` process, the consumer as `liutong
//! fetch` processes, and a TCP proxy between them (registered as the
//! provider's endpoint) that can flip a byte or cut the connection.

use crate::common::*;
use liutong_core::{now_ms, Canonical};
use liutong_exchange::access::LogAccess;
use liutong_exchange::client::sign_tx;
use liutong_exchange::delivery::{DeliveryReceipt, DeliveryRequest, SignedReceipt, SignedRequest, Verdict};
use liutong_exchange::grants::UseGrant;
use liutong_exchange::home::Home;
use liutong_exchange::machine::*;
use liutong_exchange::party::*;
use liutong_policies::Action;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub(crate) const CONSUMER: u32 = 9_100;
pub(crate) const OTHER: u32 = 9_101;
pub(crate) const PROVIDER: u32 = 9_102;
/// 3 MiB and a bit: four chunks at the genesis's 1 MiB.
const SIZE: usize = 3 * 1024 * 1024 + 1234;

#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Mode {
    Pass,
    /// Flip the byte at this offset of the next answer stream.
    FlipAt(usize),
    /// Close the next connection after this many answer bytes.
    CutAt(usize),
}

/// A TCP proxy to the provider's node.
pub(crate) struct Proxy {
    url: String,
    target: Arc<Mutex<String>>,
    mode: Arc<Mutex<Mode>>,
}

async fn proxy(target: &str) -> Proxy {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let target = Arc::new(Mutex::new(target.trim_start_matches("http://").to_string()));
    let mode = Arc::new(Mutex::new(Mode::Pass));
    let (t, m) = (target.clone(), mode.clone());
    tokio::spawn(async move {
        loop {
            let Ok((inbound, _)) = listener.accept().await else {
                return;
            };
            let to = t.lock().expect("lock").clone();
            let mode = {
                let mut m = m.lock().expect("lock");
                std::mem::replace(&mut *m, Mode::Pass)
            };
            tokio::spawn(async move {
                let Ok(outbound) = tokio::net::TcpStream::connect(&to).await else {
                    return;
                };
                let (mut ri, mut wi) = inbound.into_split();
                let (mut ro, mut wo) = outbound.into_split();
                let up = tokio::spawn(async move {
                    let _ = tokio::io::copy(&mut ri, &mut wo).await;
                });
                let mut seen = 0usize;
                let mut buf = vec![0u8; 64 * 1024];
                loop {
                    let n = match ro.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => n,
                    };
                    let piece = &mut buf[..n];
                    match mode {
                        Mode::FlipAt(at) if (seen..seen + n).contains(&at) => piece[at - seen] ^= 0x40,
                        Mode::CutAt(at) if seen + n >= at => {
                            let _ = wi.write_all(&piece[..at - seen]).await;
                            up.abort();
                            return;
                        }
                        _ => {}
                    }
                    seen += n;
                    if wi.write_all(piece).await.is_err() {
                        break;
                    }
                }
                up.abort();
            });
        }
    });
    Proxy { url, target, mode }
}

fn start_provider(home: &Path, orderer: &str) -> (NodeProcess, String) {
    start_node_with(home, &["--receipt-timeout", "2", "--follow", orderer])
}

pub(crate) async fn liutong_async(home: PathBuf, args: Vec<String>) -> (bool, serde_json::Value) {
    tokio::task::spawn_blocking(move || {
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        liutong(&home, &a)
    })
    .await
    .expect("joins")
}

pub(crate) struct World {
    pub(crate) net: Net,
    pub(crate) dir: PathBuf,
    pub(crate) provider_home: Home,
    pub(crate) provider: Option<NodeProcess>,
    pub(crate) provider_url: String,
    pub(crate) proxy: Proxy,
    pub(crate) consumer: Home,
    pub(crate) other: Home,
    pub(crate) dataset: String,
    pub(crate) source: PathBuf,
}

impl World {
    pub(crate) fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Waits until the provider's node has every block the orderer has.
    pub(crate) async fn synced(&self) {
        let want = self.net.node.ledger.height();
        let client = liutong_exchange::client::Client::new(&self.provider_url).expect("client");
        for _ in 0..200 {
            if client.status().await.map(|s| s.height >= want).unwrap_or(false) {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
        panic!("the provider's node did not catch up");
    }

    /// A grant for `who` on the download offer with `max_uses`.
    pub(crate) async fn grant(&self, who: &Home, max_uses: u32) -> String {
        let j = self.request_grant(who, max_uses, &[]).await;
        j["grant"]["id"].as_str().expect("id").to_string()
    }

    /// `grant request` on the download offer for a day with `max_uses` and
    /// `extra` arguments (`--private`); answers the CLI's JSON once the
    /// provider's node has the grant.
    pub(crate) async fn request_grant(&self, who: &Home, max_uses: u32, extra: &[&str]) -> serde_json::Value {
        let mut args: Vec<String> = [
            "grant",
            "request",
            &self.dataset,
            "--offer",
            "1",
            "--purpose",
            "trade-finance",
            "--max-uses",
            &max_uses.to_string(),
            "--days",
            "1",
            "--node",
            &self.net.node.url,
        ]
        .map(String::from)
        .to_vec();
        args.extend(extra.iter().map(|s| s.to_string()));
        let (ok, j) = liutong_async(who.dir().to_path_buf(), args).await;
        assert!(ok, "{j}");
        self.synced().await;
        j
    }

    pub(crate) async fn fetch(&self, who: &Home, grant: &str, out: &str, extra: &[&str]) -> (bool, serde_json::Value) {
        let mut args: Vec<String> = [
            "fetch",
            &self.dataset,
            "--grant",
            grant,
            "--out",
            self.path(out).to_str().expect("utf-8"),
            "--node",
            &self.net.node.url,
        ]
        .map(String::from)
        .to_vec();
        args.extend(extra.iter().map(|s| s.to_string()));
        liutong_async(who.dir().to_path_buf(), args).await
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

    async fn log(&self, grant: &str) -> Vec<serde_json::Value> {
        let (status, j) = get_raw(&self.net, &format!("/v1/access-log?grant={grant}")).await;
        assert_eq!(status, 200, "{j}");
        j["entries"].as_array().expect("entries").clone()
    }

    fn set_mode(&self, m: Mode) {
        *self.proxy.mode.lock().expect("lock") = m;
    }
}

pub(crate) async fn world() -> World {
    let net = orderer().await;
    let dir = net.dir.path().to_path_buf();
    let provider_home = Home::new(dir.join("provider"));
    let pid = provider_home.create_identity().expect("keys");
    let (process, provider_url) = start_provider(provider_home.dir(), &net.node.url);
    let proxy = proxy(&provider_url).await;
    let register = |who: &liutong_exchange::home::Identity, n: u32, role: Role, endpoint: &str| {
        let body = RegisterParty {
            legal_name: format!("Member {n}"),
            credit_code: code(n),
            contact: "office@example.com".into(),
            roles: vec![role],
            encryption_key: who.encryption.public_key(),
            endpoint: endpoint.into(),
        };
        sign_tx(&net.chain, KIND_REGISTER, &body, &who.signing).canonical_bytes()
    };
    let mut homes = Vec::new();
    for (n, role, home, id) in [
        (PROVIDER, Role::Provider, provider_home.clone(), Some(pid)),
        (CONSUMER, Role::Consumer, Home::new(dir.join("consumer")), None),
        (OTHER, Role::Consumer, Home::new(dir.join("other")), None),
    ] {
        let id = match id {
            Some(i) => i,
            None => home.create_identity().expect("keys"),
        };
        net.client
            .submit_bytes(&register(&id, n, role, &proxy.url))
            .await
            .expect("registers");
        net.client
            .submit_bytes(&standing(&net, KIND_APPROVE, &net.operator.signing, &code(n)))
            .await
            .expect("approves");
        homes.push(home);
    }
    let source = dir.join("manifest.bin");
    let data: Vec<u8> = (0..SIZE).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    std::fs::write(&source, &data).expect("source");
    let (ok, j) = liutong(
        provider_home.dir(),
        &[
            "dataset",
            "register",
            source.to_str().expect("utf-8"),
            "--name",
            "manifests",
            "--title",
            "Manifests",
            "--description",
            "Container manifests",
            "--node",
            &net.node.url,
        ],
    );
    assert!(ok, "{j}");
    let dataset = j["dataset"]["id"].as_str().expect("id").to_string();
    let terms = dir.join("download.json");
    let now = now_ms();
    std::fs::write(
        &terms,
        serde_json::json!({
            "purposes": ["trade-finance"], "not_before": now - 60_000, "not_after": now + 7 * 86_400_000u64,
            "max_uses": 100, "actions": ["download"], "columns": null, "row_filter": null, "masks": [],
            "min_group_size": null, "row_cap": null, "transferable": false
        })
        .to_string(),
    )
    .expect("terms");
    let (ok, j) = liutong(
        provider_home.dir(),
        &[
            "offer",
            "add",
            &dataset,
            "--terms",
            terms.to_str().expect("utf-8"),
            "--automatic",
            "--node",
            &net.node.url,
        ],
    );
    assert!(ok, "{j}");
    let other = homes.pop().expect("other");
    let consumer = homes.pop().expect("consumer");
    let w = World {
        net,
        dir,
        provider_home,
        provider: Some(process),
        provider_url,
        proxy,
        consumer,
        other,
        dataset,
        source,
    };
    w.synced().await;
    w
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_between_processes_verify_log_and_survive_faults() {
    let mut w = world().await;
    let grant = w.grant(&w.consumer, 10).await;

    // A delivery: verified, identical, counted once, logged with the receipt.
    let (ok, j) = w.fetch(&w.consumer, &grant, "a.bin", &[]).await;
    assert!(ok, "{j}");
    assert_eq!(
        std::fs::read(w.path("a.bin")).expect("out"),
        std::fs::read(&w.source).expect("src")
    );
    assert!(!w.path("a.bin.part").exists() && !w.path("a.bin.part.json").exists());
    assert_eq!(j["access_log"]["outcome"], "acknowledged", "{j}");
    assert_eq!(w.uses(&grant).await, 1);
    let log = w.log(&grant).await;
    assert_eq!(log.len(), 1);
    assert_eq!(log[0]["bytes"], SIZE as u64);
    assert_eq!(log[0]["receipt"]["verdict"], "verified");
    assert_eq!(log[0]["request"], j["delivery"]);
    for q in [
        format!("dataset={}", w.dataset),
        format!("party={}", code(CONSUMER)),
        format!("party={}", code(PROVIDER)),
    ] {
        let (s, page) = get_raw(&w.net, &format!("/v1/access-log?{q}")).await;
        assert_eq!(
            (s, page["entries"].as_array().map(Vec::len)),
            (200, Some(1)),
            "{q}: {page}"
        );
    }
    let (ok, j) = w.fetch(&w.consumer, &grant, "a.bin", &[]).await;
    assert!(!ok && j["error"]["code"] == "fetch.exists", "{j}");

    // A byte flipped in transit: the chunk does not open; nothing is
    // renamed into place; --resume takes up the verified prefix without a
    // second use.
    w.set_mode(Mode::FlipAt(1_500_000));
    let (ok, j) = w.fetch(&w.consumer, &grant, "b.bin", &[]).await;
    assert!(!ok, "{j}");
    assert_eq!(j["error"]["code"], "crypto.decrypt", "{j}");
    assert!(!w.path("b.bin").exists());
    let kept = std::fs::metadata(w.path("b.bin.part")).expect("part kept").len();
    assert_eq!(kept, 1 << 20, "the chunk before the flipped one is kept");
    let (ok, j) = w.fetch(&w.consumer, &grant, "b.bin", &[]).await;
    assert!(!ok && j["error"]["code"] == "fetch.partial_exists", "{j}");
    let (ok, j) = w.fetch(&w.consumer, &grant, "b.bin", &["--resume"]).await;
    assert!(ok, "{j}");
    assert_eq!(
        std::fs::read(w.path("b.bin")).expect("out"),
        std::fs::read(&w.source).expect("src")
    );
    assert_eq!(w.uses(&grant).await, 2, "the resumed delivery counted one use");

    // A connection cut mid-stream is taken up automatically.
    w.set_mode(Mode::CutAt(2_500_000));
    let (ok, j) = w.fetch(&w.consumer, &grant, "c.bin", &[]).await;
    assert!(ok, "{j}");
    assert_eq!(j["resumed"], 1, "{j}");
    assert_eq!(
        std::fs::read(w.path("c.bin")).expect("out"),
        std::fs::read(&w.source).expect("src")
    );
    assert_eq!(w.uses(&grant).await, 3);

    // The provider's node restarted mid-transfer: the open delivery survives
    // in its home, and --resume finishes it.
    w.set_mode(Mode::CutAt(1_200_000));
    let (ok, j) = w.fetch(&w.consumer, &grant, "d.bin", &["--retries", "0"]).await;
    assert!(!ok && j["error"]["code"] == "fetch.interrupted", "{j}");
    drop(w.provider.take());
    let (process, url) = start_provider(w.provider_home.dir(), &w.net.node.url);
    *w.proxy.target.lock().expect("lock") = url.trim_start_matches("http://").to_string();
    w.provider = Some(process);
    w.provider_url = url;
    w.synced().await;
    let (ok, j) = w.fetch(&w.consumer, &grant, "d.bin", &["--resume"]).await;
    assert!(ok, "{j}");
    assert_eq!(j["access_log"]["outcome"], "acknowledged", "{j}");
    assert_eq!(w.uses(&grant).await, 4);
    let log = w.log(&grant).await;
    assert_eq!(log.len(), 4);
    assert!(log.iter().all(|e| e["outcome"] == "acknowledged"), "{log:?}");

    // The provider's file changed behind its back (same size and time): the
    // consumer refuses it, keeps nothing, and signs a refusal.
    let mut bytes = std::fs::read(&w.source).expect("src");
    let stamp = std::fs::metadata(&w.source).expect("meta").modified().expect("mtime");
    bytes[2_000_000] ^= 1;
    std::fs::write(&w.source, &bytes).expect("tamper");
    std::fs::File::options()
        .write(true)
        .open(&w.source)
        .expect("open")
        .set_modified(stamp)
        .expect("mtime");
    let (ok, j) = w.fetch(&w.consumer, &grant, "e.bin", &[]).await;
    assert!(!ok, "{j}");
    assert_eq!(j["error"]["code"], "fetch.content_mismatch", "{j}");
    assert!(!w.path("e.bin").exists() && !w.path("e.bin.part").exists());
    let log = w.log(&grant).await;
    let last = log.last().expect("entry");
    assert_eq!(last["outcome"], "disputed", "{last}");
    assert_eq!(last["receipt"]["bytes"], 1u64 << 20, "{last}");
    bytes[2_000_000] ^= 1;
    std::fs::write(&w.source, &bytes).expect("restore");

    // A delivery taken without a receipt is logged unacknowledged after the timeout.
    let consumer = w.consumer.identity().expect("id");
    let request = |nonce: u64, grant: &str, resumes| {
        SignedRequest::sign(
            DeliveryRequest {
                chain_id: w.net.chain.clone(),
                grant: grant.parse().expect("id"),
                dataset: w.dataset.parse().expect("id"),
                version: 1,
                action: Action::Download,
                nonce,
                timestamp: now_ms(),
                from_chunk: 0,
                resumes,
                query: None,
                private: None,
            },
            &consumer.signing,
        )
    };
    let silent = request(77, &grant, None);
    let post = |r: &SignedRequest| {
        reqwest::Client::new()
            .post(format!("{}/v1/deliveries", w.proxy.url))
            .body(r.to_bytes())
            .send()
    };
    let resp = post(&silent).await.expect("answers");
    assert_eq!(resp.status(), 200);
    let body = resp.bytes().await.expect("stream");
    assert!(body.len() > SIZE, "the whole sealed stream");
    // A resumption at the very end (only the hash list comes back) keeps
    // the delivery loggable: it served the whole file, no more.
    let mut tail = None;
    for nonce in 1000..1050 {
        let mut at_end = request(nonce, &grant, Some(silent.digest())).request;
        at_end.from_chunk = 4;
        let r = post(&SignedRequest::sign(at_end, &consumer.signing))
            .await
            .expect("answers");
        if r.status() == 200 {
            tail = Some(r.bytes().await.expect("stream"));
            break;
        }
        // The first stream may not have ended at the provider yet.
        let j: serde_json::Value = r.json().await.expect("json");
        assert_eq!(j["code"], "delivery.busy", "{j}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(tail.expect("resumed at the end").len() < 1024, "only the hash list");
    let replayed = post(&silent).await.expect("answers");
    assert_eq!(replayed.status(), 409);
    let j: serde_json::Value = replayed.json().await.expect("json");
    assert_eq!(j["code"], "delivery.replayed");
    let mut entry = None;
    for _ in 0..100 {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        let (s, e) = get_raw(&w.net, &format!("/v1/access-log/{}", silent.digest())).await;
        if s == 200 {
            entry = Some(e);
            break;
        }
    }
    let entry = entry.expect("logged after the receipt timeout");
    assert_eq!(entry["outcome"], "unacknowledged");
    assert_eq!(entry["bytes"], SIZE as u64);
    assert!(entry["receipt"].is_null());
    // A resumption of a logged delivery is refused.
    let (s, j) = {
        let r = post(&request(78, &grant, Some(silent.digest())))
            .await
            .expect("answers");
        (r.status().as_u16(), r.json::<serde_json::Value>().await.expect("json"))
    };
    assert_eq!((s, j["code"].as_str()), (409, Some("delivery.closed")), "{j}");

    // Resumptions cannot replay the content on one use without end.
    let once_more = request(79, &grant, None);
    let resp = post(&once_more).await.expect("answers");
    assert_eq!(resp.status(), 200);
    let _ = resp.bytes().await.expect("stream");
    let mut refused = None;
    for nonce in 80..120 {
        let r = post(&request(nonce, &grant, Some(once_more.digest())))
            .await
            .expect("answers");
        if r.status() != 200 {
            let status = r.status().as_u16();
            let j = r.json::<serde_json::Value>().await.expect("json");
            if j["code"] == "delivery.busy" {
                // The previous stream has not ended at the provider yet.
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
            refused = Some((status, j));
            break;
        }
        let _ = r.bytes().await.expect("stream");
    }
    let (s, j) = refused.expect("a resumption is refused at last");
    assert_eq!((s, j["code"].as_str()), (409, Some("delivery.resume_limit")), "{j}");

    // Requests the provider refuses, each with its code; no use is counted.
    let before = w.uses(&grant).await;
    let (ok, j) = w.fetch(&w.other, &grant, "f.bin", &[]).await;
    assert_eq!(
        (ok, j["error"]["code"].as_str()),
        (false, Some("delivery.not_holder")),
        "{j}"
    );
    let once = w.grant(&w.consumer, 1).await;
    assert!(w.fetch(&w.consumer, &once, "g.bin", &[]).await.0);
    w.synced().await;
    let (ok, j) = w.fetch(&w.consumer, &once, "h.bin", &[]).await;
    assert_eq!((ok, j["error"]["code"].as_str()), (false, Some("use.exhausted")), "{j}");
    let provider = w.provider_home.identity().expect("id");
    let revoke = liutong_exchange::grants::EndGrant {
        grant: grant.parse().expect("id"),
        reason: "contract ended".into(),
    };
    w.net
        .client
        .submit(&sign_tx(&w.net.chain, KIND_GRANT_REVOKE, &revoke, &provider.signing))
        .await
        .expect("revoked");
    w.synced().await;
    let (ok, j) = w.fetch(&w.consumer, &grant, "i.bin", &[]).await;
    assert_eq!(
        (ok, j["error"]["code"].as_str()),
        (false, Some("use.not_active")),
        "{j}"
    );
    assert_eq!(w.uses(&grant).await, before, "refusals count no use");
    assert!(!w.path("i.bin").exists() && !w.path("i.bin.part").exists());

    // A consumer whose home holds another encryption key than the registered one.
    let wrong = Home::new(w.dir.join("wrong-key"));
    let mut id = w.consumer.identity().expect("id");
    id.encryption = liutong_core::EncryptionKeyPair::generate();
    wrong.create_identity().expect("keys");
    wrong.replace_identity(&id).expect("written");
    let g2 = w.grant(&w.consumer, 5).await;
    let (ok, j) = w.fetch(&wrong, &g2, "j.bin", &[]).await;
    assert_eq!(
        (ok, j["error"]["code"].as_str()),
        (false, Some("fetch.key_mismatch")),
        "{j}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_requests_and_receipts_get_codes() {
    let w = world().await;
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
    let (s, j) = post("/v1/deliveries", b"junk".to_vec()).await;
    assert_eq!((s, j["code"].as_str()), (400, Some("delivery.malformed")), "{j}");
    let (s, j) = post("/v1/deliveries", vec![0u8; 20_000]).await;
    assert_eq!((s, j["code"].as_str()), (413, Some("request.too_large")), "{j}");
    let (s, j) = post("/v1/deliveries/receipts", b"junk".to_vec()).await;
    assert_eq!((s, j["code"].as_str()), (400, Some("receipt.malformed")), "{j}");
    // A forged signature, an unknown grant.
    let consumer = w.consumer.identity().expect("id");
    let grant = w.grant(&w.consumer, 3).await;
    let mut r = SignedRequest::sign(
        DeliveryRequest {
            chain_id: w.net.chain.clone(),
            grant: grant.parse().expect("id"),
            dataset: w.dataset.parse().expect("id"),
            version: 1,
            action: Action::Download,
            nonce: 1,
            timestamp: now_ms(),
            from_chunk: 0,
            resumes: None,
            query: None,
            private: None,
        },
        &consumer.signing,
    );
    r.request.nonce = 2;
    let post_signed =
        |req: DeliveryRequest| post("/v1/deliveries", SignedRequest::sign(req, &consumer.signing).to_bytes());
    let (s, j) = post("/v1/deliveries", r.to_bytes()).await;
    assert_eq!((s, j["code"].as_str()), (401, Some("delivery.bad_signature")), "{j}");
    let mut unknown = r.request.clone();
    unknown.grant = liutong_exchange::grants::GrantId([9; 16]);
    let (s, j) = post_signed(unknown).await;
    assert_eq!((s, j["code"].as_str()), (404, Some("delivery.unknown_grant")), "{j}");
    let mut stale = r.request.clone();
    stale.timestamp -= 3_600_000;
    let (s, j) = post_signed(stale).await;
    assert_eq!((s, j["code"].as_str()), (400, Some("delivery.stale")), "{j}");
    // A request naming another dataset than its grant's.
    let mut elsewhere = r.request.clone();
    elsewhere.dataset = liutong_catalog::DatasetId([7; 16]);
    elsewhere.nonce = 3;
    let (s, j) = post_signed(elsewhere).await;
    assert_eq!((s, j["code"].as_str()), (422, Some("delivery.wrong_dataset")), "{j}");
    // A grant whose window has closed.
    let now = now_ms();
    let terms = w.path("short.json");
    std::fs::write(
        &terms,
        serde_json::json!({
            "purposes": ["trade-finance"], "not_before": now - 1_000, "not_after": now + 1_500,
            "max_uses": 5, "actions": ["download"], "columns": null, "row_filter": null, "masks": [],
            "min_group_size": null, "row_cap": null, "transferable": false
        })
        .to_string(),
    )
    .expect("terms");
    let (ok, g) = liutong(
        w.consumer.dir(),
        &[
            "grant",
            "request",
            &w.dataset,
            "--offer",
            "1",
            "--terms",
            terms.to_str().expect("utf-8"),
            "--node",
            &w.net.node.url,
        ],
    );
    assert!(ok, "{g}");
    let short = g["grant"]["id"].as_str().expect("id").to_string();
    w.synced().await;
    tokio::time::sleep(std::time::Duration::from_millis(1_600)).await;
    let (ok, j) = w.fetch(&w.consumer, &short, "late.bin", &[]).await;
    assert_eq!((ok, j["error"]["code"].as_str()), (false, Some("use.expired")), "{j}");
    // The orderer's node signs for the operator, not the provider.
    let (s, j) = post_raw(
        &w.net,
        "/v1/deliveries",
        "application/octet-stream",
        SignedRequest::sign(r.request.clone(), &consumer.signing).to_bytes(),
    )
    .await;
    assert_eq!((s, j["code"].as_str()), (421, Some("delivery.not_here")), "{j}");
    // Bad access-log queries.
    for q in [
        "",
        "?grant=zz",
        &format!("?grant={grant}&party={}", code(CONSUMER)),
        "?party=1&limit=0",
    ] {
        let (s, j) = get_raw(&w.net, &format!("/v1/access-log{q}")).await;
        assert_eq!(s, 400, "{q}: {j}");
    }
    let (s, _) = get_raw(&w.net, &format!("/v1/access-log/{}", "ab".repeat(32))).await;
    assert_eq!(s, 404);

    // The access-log transaction's own rules, on the ledger.
    let provider = w.provider_home.identity().expect("id");
    let first = SignedRequest::sign(
        DeliveryRequest {
            nonce: 99,
            ..r.request.clone()
        },
        &consumer.signing,
    );
    let entry = |receipt: Option<SignedReceipt>| LogAccess {
        request: first.clone(),
        bytes: 10,
        served_at: now_ms(),
        receipt,
        query: None,
    };
    let submit = |kind: &str, body: &LogAccess, key: &liutong_core::SigningKey| {
        sign_tx(&w.net.chain, kind, body, key).canonical_bytes()
    };
    assert_eq!(
        refusal(&w.net, &submit(KIND_ACCESS_LOG, &entry(None), &provider.signing)).await,
        "access.no_use"
    );
    let counted = UseGrant {
        grant: grant.parse().expect("id"),
        action: Action::Download,
        request: first.digest(),
    };
    w.net
        .client
        .submit(&sign_tx(&w.net.chain, KIND_GRANT_USE, &counted, &provider.signing))
        .await
        .expect("use counted");
    assert_eq!(
        refusal(
            &w.net,
            &sign_tx(&w.net.chain, KIND_GRANT_USE, &counted, &provider.signing).canonical_bytes()
        )
        .await,
        "use.duplicate"
    );
    let receipt = |verdict, content, key: &liutong_core::SigningKey| {
        SignedReceipt::sign(
            DeliveryReceipt {
                request: first.digest(),
                verdict,
                content,
                bytes: SIZE as u64,
                time: now_ms(),
                reason: String::new(),
            },
            key,
        )
    };
    let other = w.other.identity().expect("id");
    let bad = [
        (entry(None), &consumer.signing, "grant.not_provider"),
        (
            entry(Some(receipt(
                Verdict::Verified,
                liutong_core::sha256(b"x"),
                &consumer.signing,
            ))),
            &provider.signing,
            "access.bad_receipt",
        ),
        (
            entry(Some(receipt(
                Verdict::Refused,
                liutong_core::sha256(b"x"),
                &other.signing,
            ))),
            &provider.signing,
            "access.bad_receipt",
        ),
        (
            LogAccess {
                bytes: SIZE as u64 + 1,
                ..entry(None)
            },
            &provider.signing,
            "access.bad_entry",
        ),
    ];
    for (body, key, code) in bad {
        assert_eq!(refusal(&w.net, &submit(KIND_ACCESS_LOG, &body, key)).await, code);
    }
    let disputed = entry(Some(receipt(
        Verdict::Refused,
        liutong_core::sha256(b"x"),
        &consumer.signing,
    )));
    w.net
        .client
        .submit_bytes(&submit(KIND_ACCESS_LOG, &disputed, &provider.signing))
        .await
        .expect("logged");
    assert_eq!(
        refusal(&w.net, &submit(KIND_ACCESS_LOG, &entry(None), &provider.signing)).await,
        "access.duplicate"
    );
    let (s, e) = get_raw(&w.net, &format!("/v1/access-log/{}", first.digest())).await;
    assert_eq!((s, e["outcome"].as_str()), (200, Some("disputed")), "{e}");
}

/// What the man in the middle does to a stream's frames.
#[derive(Clone, Copy, Debug)]
enum Meddle {
    /// Swap chunks 0 and 1.
    Reorder,
    /// Send chunk 0 twice.
    Duplicate,
    /// Put chunk 1 of another delivery of the same content in its place.
    Splice,
    /// Leave out the last frame.
    Truncate,
    /// Change the encapsulated key in the signed header.
    Header,
}

/// Splits a delivery stream into its clear prefix (magic and header) and frames.
fn split_stream(bytes: &[u8]) -> (Vec<u8>, Vec<Vec<u8>>) {
    const HEAD: usize = 4 + 32 + 32 + 8 + 4 + 8 + 64;
    let (head, mut rest) = bytes.split_at(HEAD);
    let mut frames = Vec::new();
    while rest.len() >= 4 {
        let len = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
        frames.push(rest[..4 + len].to_vec());
        rest = &rest[4 + len..];
    }
    (head.to_vec(), frames)
}

/// The real node's URL, the armed meddling, the consumer's keys, the chain.
type MeddlerState = (
    String,
    Arc<Mutex<Option<Meddle>>>,
    liutong_exchange::home::Identity,
    String,
);

/// A provider endpoint that passes requests to the real node and meddles
/// with the frames of the streams it relays, once per armed `Meddle`.
async fn meddler(
    real: String,
    consumer: liutong_exchange::home::Identity,
    chain: String,
) -> (String, Arc<Mutex<Option<Meddle>>>) {
    use axum::routing::post;
    let armed: Arc<Mutex<Option<Meddle>>> = Arc::new(Mutex::new(None));
    let state = (real, armed.clone(), consumer, chain);
    let app = axum::Router::new()
        .route(
            "/v1/deliveries",
            post(
                |axum::extract::State((real, armed, consumer, chain)): axum::extract::State<MeddlerState>,
                 body: axum::body::Bytes| async move {
                    let http = reqwest::Client::new();
                    let resp = http
                        .post(format!("{real}/v1/deliveries"))
                        .body(body.to_vec())
                        .send()
                        .await
                        .expect("real");
                    let status = resp.status().as_u16();
                    let bytes = resp.bytes().await.expect("stream").to_vec();
                    let meddle = armed.lock().expect("lock").take();
                    let out = match (status, meddle) {
                        (200, Some(m)) => {
                            let (head, mut frames) = split_stream(&bytes);
                            match m {
                                Meddle::Reorder => frames.swap(1, 2),
                                Meddle::Duplicate => {
                                    let f = frames[1].clone();
                                    frames.insert(2, f);
                                }
                                Meddle::Truncate => {
                                    frames.pop();
                                }
                                Meddle::Header => {}
                                Meddle::Splice => {
                                    let first = SignedRequest::from_bytes(&body).expect("request");
                                    let other = SignedRequest::sign(
                                        DeliveryRequest {
                                            chain_id: chain.clone(),
                                            nonce: first.request.nonce ^ 0x5555,
                                            timestamp: now_ms(),
                                            resumes: None,
                                            query: None,
                                            private: None,
                                            from_chunk: 0,
                                            ..first.request.clone()
                                        },
                                        &consumer.signing,
                                    );
                                    let again = http
                                        .post(format!("{real}/v1/deliveries"))
                                        .body(other.to_bytes())
                                        .send()
                                        .await
                                        .expect("real")
                                        .bytes()
                                        .await
                                        .expect("stream");
                                    let (_, theirs) = split_stream(&again);
                                    frames[2] = theirs[2].clone();
                                }
                            }
                            let mut out = head;
                            if matches!(m, Meddle::Header) {
                                // The encapsulated key follows the magic and the request digest.
                                out[4 + 32] ^= 1;
                            }
                            for f in frames {
                                out.extend(f);
                            }
                            out
                        }
                        _ => bytes,
                    };
                    axum::response::Response::builder()
                        .status(status)
                        .body(axum::body::Body::from(out))
                        .expect("response")
                },
            ),
        )
        .route(
            "/v1/deliveries/receipts",
            post(
                |axum::extract::State((real, ..)): axum::extract::State<MeddlerState>,
                 body: axum::body::Bytes| async move {
                    let resp = reqwest::Client::new()
                        .post(format!("{real}/v1/deliveries/receipts"))
                        .body(body.to_vec())
                        .send()
                        .await
                        .expect("real");
                    let status = resp.status().as_u16();
                    axum::response::Response::builder()
                        .status(status)
                        .body(axum::body::Body::from(resp.bytes().await.expect("body")))
                        .expect("response")
                },
            ),
        )
        .with_state(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (addr.to_string(), armed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reordered_duplicated_spliced_and_truncated_frames_never_pass() {
    let w = world().await;
    let grant = w.grant(&w.consumer, 20).await;
    let consumer = w.consumer.identity().expect("id");
    let (addr, armed) = meddler(w.provider_url.clone(), consumer, w.net.chain.clone()).await;
    *w.proxy.target.lock().expect("lock") = addr;
    let source = std::fs::read(&w.source).expect("src");
    for (n, m) in [Meddle::Reorder, Meddle::Duplicate, Meddle::Splice]
        .into_iter()
        .enumerate()
    {
        *armed.lock().expect("lock") = Some(m);
        let out = format!("m{n}.bin");
        let (ok, j) = w.fetch(&w.consumer, &grant, &out, &[]).await;
        assert_eq!(
            (ok, j["error"]["code"].as_str()),
            (false, Some("crypto.decrypt")),
            "{m:?}: {j}"
        );
        assert!(!w.path(&out).exists(), "{m:?}: nothing in place");
        // The verified part is taken up, unharmed, without a second use.
        let before = w.uses(&grant).await;
        let (ok, j) = w.fetch(&w.consumer, &grant, &out, &["--resume"]).await;
        assert!(ok, "{m:?}: {j}");
        assert_eq!(std::fs::read(w.path(&out)).expect("out"), source, "{m:?}");
        assert_eq!(w.uses(&grant).await, before, "{m:?}");
    }
    // A header not signed by the provider (here: another encapsulated key) is refused.
    *armed.lock().expect("lock") = Some(Meddle::Header);
    let (ok, j) = w.fetch(&w.consumer, &grant, "h.bin", &[]).await;
    assert_eq!(
        (ok, j["error"]["code"].as_str()),
        (false, Some("delivery.bad_stream_signature")),
        "{j}"
    );
    // A stream cut before its last frame is incomplete, never accepted: it is resumed.
    *armed.lock().expect("lock") = Some(Meddle::Truncate);
    let (ok, j) = w.fetch(&w.consumer, &grant, "t.bin", &[]).await;
    assert!(ok, "{j}");
    assert_eq!(j["resumed"], 1, "{j}");
    assert_eq!(std::fs::read(w.path("t.bin")).expect("out"), source);
    let log = w.log(&grant).await;
    assert!(log.iter().any(|e| e["outcome"] == "acknowledged"), "{log:?}");
}

/// Private mode end to end between processes: a private grant's uses are
/// proven, counted by nullifiers, logged without grant or consumer, refused
/// past max uses, on replay, with forged or mismatched proofs, and after
/// revocation; the auditor opens an entry.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_uses_are_proven_spent_once_and_opened_by_the_auditor() {
    use liutong_exchange::private::{FieldHex, PrivateUse};
    let w = world().await;
    // A licensed auditor.
    let auditor = auditor(&w.net, &w.dir, 9).await;

    // A private grant of 2 uses.
    let j = w.request_grant(&w.consumer, 2, &["--private"]).await;
    let grant = j["grant"]["id"].as_str().expect("id").to_string();
    assert!(j["grant"]["private"]["leaf"].is_u64(), "{j}");

    // Use 1: proven, served, logged with a nullifier and no grant or consumer.
    let (ok, j) = w.fetch(&w.consumer, &grant, "p1.bin", &["--private"]).await;
    assert!(ok, "{j}");
    assert_eq!(
        std::fs::read(w.path("p1.bin")).expect("out"),
        std::fs::read(&w.source).expect("src")
    );
    let entry = j["access_log"].clone();
    assert!(entry["grant"].is_null() && entry["consumer"].is_null(), "{entry}");
    assert_eq!(entry["outcome"], "acknowledged", "{entry}");
    let nullifier = entry["private"]["nullifier"].as_str().expect("nullifier").to_string();
    assert_eq!(entry["private"]["public_inputs"].as_array().map(Vec::len), Some(8));
    assert_eq!(w.uses(&grant).await, 0, "a private use is not counted on the grant");
    assert!(w.log(&grant).await.is_empty(), "nor listed under it");
    let (status, _) = get_raw(&w.net, &format!("/v1/zk/nullifiers/{nullifier}")).await;
    assert_eq!(status, 200);

    // Requests made by hand, to send what the CLI never would.
    let client = liutong_exchange::client::Client::new(&w.net.node.url).expect("client");
    let record = client.grant(&grant.parse().expect("id")).await.expect("grant").grant;
    let private = PrivateUse::prepare(&w.consumer, &client, &record)
        .await
        .expect("prepares");
    assert_eq!(private.witness.k, 1, "the next unspent use");
    let one_time = liutong_exchange::home::Identity::generate();
    let draft = |nonce: u64, action| DeliveryRequest {
        chain_id: w.net.chain.clone(),
        grant: liutong_exchange::grants::GrantId::PRIVATE,
        dataset: w.dataset.parse().expect("id"),
        version: 1,
        action,
        nonce,
        timestamp: now_ms(),
        from_chunk: 0,
        resumes: None,
        query: None,
        private: None,
    };
    let sign = |nonce: u64| {
        private
            .sign(
                draft(nonce, Action::Download),
                &one_time.signing,
                one_time.encryption.public_key(),
            )
            .expect("proves")
    };
    let code_of = |r: reqwest::Response| async move {
        let status = r.status().as_u16();
        let j: serde_json::Value = r.json().await.unwrap_or_default();
        (status, j["code"].as_str().unwrap_or_default().to_string())
    };
    let post = |bytes: Vec<u8>| {
        reqwest::Client::new()
            .post(format!("{}/v1/deliveries", w.proxy.url))
            .body(bytes)
            .send()
    };
    let good = sign(1);
    // Another request under this proof: the proof is bound to its request.
    let mut other = sign(2);
    other.proof = good.proof.clone();
    assert_eq!(
        code_of(post(other.to_bytes()).await.expect("answers")).await.1,
        "zk.invalid_proof"
    );
    // Another action than proven (re-signed, the proof kept).
    let mut req = good.request.clone();
    req.action = Action::Query;
    req.nonce = 3;
    let mut forged = SignedRequest::sign(req, &one_time.signing);
    forged.proof = good.proof.clone();
    let r = reqwest::Client::new()
        .post(format!("{}/v1/deliveries", w.proxy.url))
        .body(forged.to_bytes())
        .send()
        .await
        .expect("answers");
    assert_eq!(code_of(r).await.1, "delivery.wrong_action");
    // Tampered public inputs: another nullifier, another root, a stale time.
    let tamper = |nonce: u64, f: &dyn Fn(&mut liutong_exchange::private::PrivateClaim)| {
        let mut req = good.request.clone();
        req.nonce = nonce;
        f(req.private.as_mut().expect("claim"));
        let mut s = SignedRequest::sign(req, &one_time.signing);
        s.proof = good.proof.clone();
        s.to_bytes()
    };
    let random = || FieldHex::of(&liutong_zk::field::random());
    for (nonce, want, f) in [
        (
            4,
            "zk.invalid_proof",
            &(|c: &mut liutong_exchange::private::PrivateClaim| c.nullifier = random()) as &dyn Fn(&mut _),
        ),
        (
            5,
            "zk.unknown_root",
            &|c: &mut liutong_exchange::private::PrivateClaim| c.root = random(),
        ),
        (6, "zk.bad_time", &|c: &mut liutong_exchange::private::PrivateClaim| {
            c.time -= 86_400
        }),
        (
            7,
            "zk.invalid_proof",
            &|c: &mut liutong_exchange::private::PrivateClaim| c.terms.row_cap = Some(1),
        ),
    ] {
        assert_eq!(
            code_of(post(tamper(nonce, f)).await.expect("answers")).await.1,
            want,
            "nonce {nonce}"
        );
    }
    // Malformed and forged proof bytes.
    for (nonce, proof, want) in [
        (8, vec![1u8, 2, 3], "zk.malformed_proof"),
        (9, vec![0u8; 128], "zk.malformed_proof"),
        (10, Vec::new(), "zk.malformed_proof"),
    ] {
        let mut s = SignedRequest::sign(
            {
                let mut r = good.request.clone();
                r.nonce = nonce;
                r
            },
            &one_time.signing,
        );
        s.proof = Some(proof);
        assert_eq!(code_of(post(s.to_bytes()).await.expect("answers")).await.1, want);
    }
    // A replayed nullifier: use 1's proof made again by hand.
    let mut replay = PrivateUse::prepare(&w.consumer, &client, &record)
        .await
        .expect("prepares");
    replay.witness.k = 0;
    let again = replay
        .sign(
            draft(11, Action::Download),
            &one_time.signing,
            one_time.encryption.public_key(),
        )
        .expect("proves");
    assert_eq!(
        code_of(post(again.to_bytes()).await.expect("answers")).await.1,
        "zk.nullifier_spent"
    );

    // Use 2 (the CLI), then nothing: max uses.
    let (ok, j) = w.fetch(&w.consumer, &grant, "p2.bin", &["--private"]).await;
    assert!(ok, "{j}");
    let (ok, j) = w.fetch(&w.consumer, &grant, "p3.bin", &["--private"]).await;
    assert!(!ok);
    assert_eq!(j["error"]["code"], "use.exhausted", "{j}");

    // The auditor opens use 1; nobody else can.
    let request = entry["request"].as_str().expect("request").to_string();
    let (ok, j) = liutong(auditor.dir(), &["audit", "open", &request, "--node", &w.net.node.url]);
    assert!(ok, "{j}");
    assert_eq!(j["grant"], grant.as_str());
    assert_eq!(j["use_index"], 0);
    assert_eq!(j["holder"], code(CONSUMER));
    let (ok, _) = liutong(
        w.consumer.dir(),
        &["audit", "open", &request, "--node", &w.net.node.url],
    );
    assert!(!ok, "only auditors open entries");
    let snark = w.path("snarkjs");
    let (ok, j) = liutong(
        auditor.dir(),
        &[
            "zk",
            "export",
            "--snarkjs",
            snark.to_str().expect("utf-8"),
            "--entry",
            &request,
            "--node",
            &w.net.node.url,
        ],
    );
    assert!(ok, "{j}");
    for f in ["verification_key.json", "proof.json", "public.json"] {
        assert!(snark.join(f).exists(), "{f}");
    }
    let (ok, j) = liutong(w.other.dir(), &["zk", "verify", &request, "--node", &w.net.node.url]);
    assert!(ok && j["verified"] == true, "anyone re-verifies a logged proof: {j}");
    if let Ok(bin) = std::env::var("LIUTONG_SNARKJS") {
        let out = std::process::Command::new(bin)
            .args([
                "groth16",
                "verify",
                "verification_key.json",
                "public.json",
                "proof.json",
            ])
            .current_dir(&snark)
            .output()
            .expect("snarkjs runs");
        assert!(String::from_utf8_lossy(&out.stdout).contains("OK"), "{out:?}");
    }

    // Revocation zeroes the leaf: a new private grant, revoked, is no longer provable.
    let j = w.request_grant(&w.consumer, 2, &["--private"]).await;
    let revoked = j["grant"]["id"].as_str().expect("id").to_string();
    let record = client.grant(&revoked.parse().expect("id")).await.expect("grant").grant;
    let before = PrivateUse::prepare(&w.consumer, &client, &record)
        .await
        .expect("prepares");
    let (ok, j) = liutong(
        w.provider_home.dir(),
        &[
            "grant",
            "revoke",
            &revoked,
            "--reason",
            "contract ended",
            "--node",
            &w.net.node.url,
        ],
    );
    assert!(ok, "{j}");
    w.synced().await;
    let e = PrivateUse::prepare(&w.consumer, &client, &record)
        .await
        .err()
        .expect("refused");
    assert_eq!(e.code(), "zk.not_in_tree");
    // A proof at the root from before the revocation holds only within the
    // root window; past it the root is stale.
    let window = w.net.client.genesis().await.expect("genesis").zk.root_window;
    for i in 0..window {
        w.net
            .client
            .submit_bytes(&notarize(
                &w.net,
                &w.net.operator.signing,
                format!("tick {i}").as_bytes(),
            ))
            .await
            .expect("notarizes");
    }
    w.synced().await;
    let stale = before
        .sign(
            draft(12, Action::Download),
            &one_time.signing,
            one_time.encryption.public_key(),
        )
        .expect("proves at the old root");
    assert_eq!(
        code_of(post(stale.to_bytes()).await.expect("answers")).await.1,
        "zk.stale_root"
    );

    // Expiry zeroes a leaf at the tree's next change.
    let now = now_ms();
    let short = w.path("short.json");
    std::fs::write(
        &short,
        serde_json::json!({
            "purposes": ["trade-finance"], "not_before": now - 1_000, "not_after": now + 3_000,
            "max_uses": 1, "actions": ["download"], "columns": null, "row_filter": null, "masks": [],
            "min_group_size": null, "row_cap": null, "transferable": false
        })
        .to_string(),
    )
    .expect("terms");
    let request_private = |terms: Option<&str>| {
        let mut args = vec![
            "grant",
            "request",
            &w.dataset,
            "--offer",
            "1",
            "--private",
            "--node",
            &w.net.node.url,
        ];
        match terms {
            Some(t) => args.extend(["--terms", t]),
            None => args.extend(["--purpose", "trade-finance", "--max-uses", "1", "--days", "1"]),
        }
        liutong(w.consumer.dir(), &args)
    };
    let (ok, j) = request_private(Some(short.to_str().expect("utf-8")));
    assert!(ok, "{j}");
    let expiring: liutong_exchange::grants::GrantId = j["grant"]["id"].as_str().expect("id").parse().expect("id");
    tokio::time::sleep(std::time::Duration::from_millis(3_500)).await;
    let (ok, j) = request_private(None);
    assert!(ok, "{j}");
    w.synced().await;
    let record = client.grant(&expiring).await.expect("grant").grant;
    let e = PrivateUse::prepare(&w.consumer, &client, &record)
        .await
        .err()
        .expect("refused");
    assert_eq!(e.code(), "zk.not_in_tree");

    // A proving key from another setup is not this chain's.
    let other_pk = liutong_zk::groth16::setup(&mut rand::rngs::OsRng).expect("setup");
    w.consumer
        .write_proving_key(&liutong_zk::groth16::pk_bytes(&other_pk))
        .expect("write");
    let genesis = w.net.client.genesis().await.expect("genesis");
    let e = w.consumer.prover(&genesis).err().expect("refused");
    assert!(e.to_string().contains("not this chain's proving key"), "{e}");
}
