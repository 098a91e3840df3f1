//! `liutong bench delivery`: an end-to-end encrypted, verified delivery
//! between two processes on loopback (the provider's `liutong node` and the
//! consumer's `liutong fetch`), against what a user would do instead, in the
//! same run: an HTTPS download of the same file (TLS 1.3 with
//! AES-256-GCM, rustls on both ends, hyper, written to a file) and a raw
//! TCP copy. Every transfer ends with the file synced to disk.

use crate::cli::{self, Output};
use crate::client::{sign_tx, Client};
use crate::home::{Home, Identity};
use crate::machine::*;
use crate::party::*;
use crate::{Error, Result};
use axum::body::Bytes;
use clap::Args;
use liutong_core::{now_ms, Canonical};
use serde_json::json;
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Instant;

#[derive(Args, Debug, Clone)]
pub struct DeliveryBench {
    /// File sizes to measure (B, KiB, MiB, GiB).
    #[arg(long, value_delimiter = ',', default_value = "10MiB,100MiB,1GiB")]
    pub sizes: Vec<String>,
    /// Measure this one size only (the issue's `--size 1GiB`).
    #[arg(long)]
    pub size: Option<String>,
    /// A small, fast run: 10 MiB only, once.
    #[arg(long)]
    pub quick: bool,
    /// Transfers of each kind per size, interleaved; the median is reported
    /// (loopback on a small VM varies a lot from one transfer to the next).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=20))]
    pub repeat: u32,
    /// Where the files, stores and downloads go [default: /dev/shm when it
    /// exists, so the protocols are measured rather than the disk; else the
    /// temporary directory].
    #[arg(long)]
    pub dir: Option<PathBuf>,
}

fn err(msg: impl Into<String>) -> Error {
    Error::Io(msg.into())
}

/// `10MiB` → 10485760.
pub fn parse_size(text: &str) -> Result<u64> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (n, unit) = t.split_at(split);
    let n: u64 = n
        .parse()
        .map_err(|_| Error::BadRequest(format!("size {text:?}: expected a number and a unit, e.g. 100MiB")))?;
    let mult = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kib" | "k" => 1 << 10,
        "mib" | "m" => 1 << 20,
        "gib" | "g" => 1 << 30,
        other => return Err(Error::BadRequest(format!("size {text:?}: unknown unit {other:?}"))),
    };
    n.checked_mul(mult)
        .filter(|&s| s > 0)
        .ok_or_else(|| Error::BadRequest(format!("size {text:?} is out of range")))
}

struct Child(std::process::Child);
impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn exe() -> Result<PathBuf> {
    std::env::current_exe().map_err(|e| err(format!("cannot find the liutong binary: {e}")))
}

/// Peak resident memory of a running process (Linux), in MiB.
fn peak_rss_of(pid: u32) -> Option<f64> {
    crate::fetch::peak_rss_mib_in(&format!("/proc/{pid}/status"))
}

fn mib_s(bytes: u64, secs: f64) -> f64 {
    round2(bytes as f64 / (1 << 20) as f64 / secs.max(1e-9))
}

/// The median of a few timings (the upper middle one of an even count).
use crate::bench::{median, round2};

/// Writes `size` bytes of pseudo-random content (distinct in every chunk).
fn make_file(path: &Path, size: u64) -> Result<()> {
    use rand::RngCore;
    use std::io::Write;
    let mut block = vec![0u8; 1 << 20];
    rand::thread_rng().fill_bytes(&mut block);
    let f = std::fs::File::create(path).map_err(|e| err(e.to_string()))?;
    let mut w = std::io::BufWriter::with_capacity(1 << 20, f);
    let mut left = size;
    let mut i: u64 = 0;
    while left > 0 {
        block[..8].copy_from_slice(&i.to_le_bytes());
        let n = left.min(block.len() as u64) as usize;
        w.write_all(&block[..n]).map_err(|e| err(e.to_string()))?;
        left -= n as u64;
        i += 1;
    }
    w.flush().map_err(|e| err(e.to_string()))
}

/// A temporary directory for a benchmark's files, removed when dropped:
/// under `dir`, else /dev/shm when there is one (memory, not a disk), else
/// the temp dir.
pub(crate) fn scratch_dir(dir: Option<&Path>, prefix: &str) -> Result<tempfile::TempDir> {
    let base = dir.map(Path::to_path_buf).unwrap_or_else(|| {
        let shm = PathBuf::from("/dev/shm");
        if shm.is_dir() {
            shm
        } else {
            std::env::temp_dir()
        }
    });
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir_in(&base)
        .map_err(|e| err(format!("{}: {e}", base.display())))
}

pub async fn run(b: DeliveryBench) -> Result<Output> {
    let texts = match (&b.size, b.quick) {
        (Some(s), _) => vec![s.clone()],
        (None, true) => vec!["10MiB".to_string()],
        (None, false) => b.sizes.clone(),
    };
    let repeat = if b.quick { 1 } else { b.repeat };
    let sizes = texts.iter().map(|t| parse_size(t)).collect::<Result<Vec<_>>>()?;
    let dir = scratch_dir(b.dir.as_deref(), "liutong-bench-delivery-")?;
    eprintln!("bench delivery: setting up an orderer, the provider's node process and a consumer …");
    let (_op_home, orderer, client) = crate::bench::bench_node(dir.path(), "bench-delivery").await?;
    let chain = orderer.genesis.chain_id.clone();
    let operator = crate::home::Home::new(dir.path().join("bench-delivery")).identity()?;

    let prov_home = Home::new(dir.path().join("provider"));
    let prov_id = prov_home.create_identity()?;
    let mut node = Command::new(exe()?)
        .arg("--home")
        .arg(prov_home.dir())
        .args([
            "node",
            "--listen",
            "127.0.0.1:0",
            "--receipt-timeout",
            "60",
            "--follow",
            &orderer.url,
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| err(format!("cannot start the provider's node: {e}")))?;
    let mut line = String::new();
    std::io::BufReader::new(node.stdout.take().ok_or_else(|| err("no stdout"))?)
        .read_line(&mut line)
        .map_err(|e| err(e.to_string()))?;
    let node = Child(node);
    let prov_url = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .ok_or_else(|| err(format!("the provider's node said {line:?}")))?
        .to_string();
    let cons_home = Home::new(dir.path().join("consumer"));
    let cons_id = cons_home.create_identity()?;
    let (prov_code, cons_code) = (crate::demo::PROVIDER_CODE, crate::demo::CONSUMER_CODE);
    admit(
        &client,
        &chain,
        &operator,
        &prov_id,
        prov_code,
        Role::Provider,
        &prov_url,
    )
    .await?;
    admit(
        &client,
        &chain,
        &operator,
        &cons_id,
        cons_code,
        Role::Consumer,
        &prov_url,
    )
    .await?;

    let (https, raw) = (Https::start().await?, Raw::start().await?);
    let mut runs = Vec::new();
    for (n, &size) in sizes.iter().enumerate() {
        eprintln!("bench delivery: {size} bytes: preparing the file, its listing and a grant …");
        let file = dir.path().join(format!("data-{n}.bin"));
        make_file(&file, size)?;
        let (dataset, grant) = list_and_grant(&prov_home, &cons_home, &orderer.url, &file, n).await?;
        wait_sync(&prov_url, orderer.ledger.height()).await?;
        let out = dir.path().join("received.out");
        let (mut https_s, mut raw_s, mut ours_s, mut walls) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let (mut consumer_rss, mut last) = (0.0f64, json!(null));
        for round in 1..=repeat {
            eprintln!("bench delivery: {size} bytes, round {round} of {repeat}: HTTPS, raw TCP, liutong …");
            https_s.push(https.download(&file, &out).await?);
            let _ = std::fs::remove_file(&out);
            raw_s.push(raw.copy(&file, &out).await?);
            let _ = std::fs::remove_file(&out);
            let started = Instant::now();
            let fetched = Command::new(exe()?)
                .arg("--json")
                .arg("--home")
                .arg(cons_home.dir())
                .args(["fetch", &dataset, "--grant", &grant, "--out"])
                .arg(&out)
                .args(["--node", &orderer.url])
                .stderr(Stdio::null())
                .output()
                .map_err(|e| err(format!("cannot run fetch: {e}")))?;
            let wall = started.elapsed().as_secs_f64();
            let text = String::from_utf8_lossy(&fetched.stdout);
            let j: serde_json::Value = text
                .lines()
                .last()
                .and_then(|l| serde_json::from_str(l).ok())
                .ok_or_else(|| err(format!("fetch printed no JSON: {text}")))?;
            if !fetched.status.success() {
                return Err(err(format!("fetch failed: {j}")));
            }
            let _ = std::fs::remove_file(&out);
            ours_s.push(j["seconds"].as_f64().unwrap_or(wall));
            walls.push(wall);
            consumer_rss = consumer_rss.max(j["peak_rss_mib"].as_f64().unwrap_or(0.0));
            last = j;
        }
        let (https_s, raw_s, secs, wall) = (median(&https_s), median(&raw_s), median(&ours_s), median(&walls));
        let ours = mib_s(size, secs);
        let run = json!({
            "size_bytes": size,
            "mib_per_s": ours,
            "https_mib_per_s": mib_s(size, https_s),
            "raw_mib_per_s": mib_s(size, raw_s),
            "ratio": round2(ours / mib_s(size, https_s).max(1e-9)),
            "ratio_raw": round2(ours / mib_s(size, raw_s).max(1e-9)),
            "fetch_process_s": round2(wall),
            "consumer_peak_rss_mib": round2(consumer_rss),
            "provider_peak_rss_mib": peak_rss_of(node.0.id()).map(round2),
            "access_log": last["access_log"]["outcome"],
            "repeat": repeat,
        });
        eprintln!("{run}");
        runs.push(run);
        let _ = std::fs::remove_file(&file);
    }
    https.stop();
    raw.stop();
    orderer.stop().await;
    let last = runs.last().cloned().unwrap_or_else(|| json!({}));
    let mut summary = last.clone();
    if let Some(m) = summary.as_object_mut() {
        m.insert("bench".into(), json!("delivery"));
        m.insert(
            "cores".into(),
            json!(std::thread::available_parallelism().map_or(1, |n| n.get())),
        );
        m.insert("goal".into(), json!({ "ratio": 0.7, "peak_rss_mib": 64 }));
        m.insert("dir".into(), json!(dir.path().parent()));
        m.insert("runs".into(), json!(runs));
    }
    let text = runs
        .iter()
        .map(|r| {
            format!(
                "{:>12} bytes: liutong {:>8} MiB/s  https {:>8} MiB/s  raw tcp {:>8} MiB/s  ratio {:>5}  rss provider {} MiB, consumer {} MiB",
                r["size_bytes"], r["mib_per_s"], r["https_mib_per_s"], r["raw_mib_per_s"], r["ratio"],
                r["provider_peak_rss_mib"], r["consumer_peak_rss_mib"]
            )
        })
        .collect::<Vec<_>>()
        .join("\n");
    Ok(Output::ok(text, summary))
}

/// Registers `who` as party `code` with `role` and has the operator approve it.
pub(crate) async fn admit(
    client: &Client,
    chain: &str,
    operator: &Identity,
    who: &Identity,
    code: &str,
    role: Role,
    endpoint: &str,
) -> Result<()> {
    let body = RegisterParty {
        legal_name: format!("Bench {code}"),
        credit_code: code.into(),
        contact: "bench@example.com".into(),
        roles: vec![role],
        encryption_key: who.encryption.public_key(),
        endpoint: endpoint.into(),
    };
    client
        .submit_bytes(&sign_tx(chain, KIND_REGISTER, &body, &who.signing).canonical_bytes())
        .await?;
    let approve = ChangeStanding {
        credit_code: code.into(),
        reason: String::new(),
    };
    client
        .submit_bytes(&sign_tx(chain, KIND_APPROVE, &approve, &operator.signing).canonical_bytes())
        .await?;
    Ok(())
}

/// `liutong --home HOME ARGS…`, parsed as the binary parses it.
pub(crate) use crate::cli::in_home as cli_in;

/// Registers `file`, offers it for download and has the consumer's grant issued.
async fn list_and_grant(prov: &Home, cons: &Home, url: &str, file: &Path, n: usize) -> Result<(String, String)> {
    let path = file.display().to_string();
    let name = format!("bench-file-{n}");
    let listed = cli::run(cli_in(
        prov,
        &[
            "dataset",
            "register",
            &path,
            "--name",
            &name,
            "--title",
            "Bench file",
            "--kind",
            "file",
            "--node",
            url,
        ],
    )?)
    .await?;
    let dataset = listed.json["dataset"]["id"].as_str().unwrap_or_default().to_string();
    let now = now_ms();
    let terms = file.with_extension("terms.json");
    std::fs::write(
        &terms,
        json!({
            "purposes": ["trade-finance"], "not_before": now - 60_000, "not_after": now + 86_400_000u64,
            "max_uses": 100, "actions": ["download"], "columns": null, "row_filter": null, "masks": [],
            "min_group_size": null, "row_cap": null, "transferable": false
        })
        .to_string(),
    )
    .map_err(|e| err(e.to_string()))?;
    let terms_path = terms.display().to_string();
    cli::run(cli_in(
        prov,
        &[
            "offer",
            "add",
            &dataset,
            "--terms",
            &terms_path,
            "--automatic",
            "--node",
            url,
        ],
    )?)
    .await?;
    let g = cli::run(cli_in(
        cons,
        &[
            "grant",
            "request",
            &dataset,
            "--offer",
            "1",
            "--purpose",
            "trade-finance",
            "--node",
            url,
        ],
    )?)
    .await?;
    let grant = g.json["grant"]["id"].as_str().unwrap_or_default().to_string();
    Ok((dataset, grant))
}

/// Waits until the node at `url` has the orderer's blocks up to `height`.
pub(crate) async fn wait_sync(url: &str, height: u64) -> Result<()> {
    let c = Client::new(url)?;
    for _ in 0..400 {
        if c.status().await.map(|s| s.height >= height).unwrap_or(false) {
            return Ok(());
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    Err(err("the provider's node did not catch up"))
}

/// The HTTPS server's body: the file read on a blocking thread in 256 KiB
/// pieces, a few ahead of the connection (as the provider's node does).
fn file_stream(path: PathBuf) -> impl futures::Stream<Item = std::io::Result<Bytes>> {
    let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<Bytes>>(8);
    tokio::task::spawn_blocking(move || {
        use std::io::Read;
        let mut f = match std::fs::File::open(&path) {
            Ok(f) => f,
            Err(e) => {
                let _ = tx.blocking_send(Err(e));
                return;
            }
        };
        loop {
            let mut buf = vec![0u8; 256 * 1024];
            match f.read(&mut buf) {
                Ok(0) => return,
                Ok(n) => {
                    buf.truncate(n);
                    if tx.blocking_send(Ok(Bytes::from(buf))).is_err() {
                        return;
                    }
                }
                Err(e) => {
                    let _ = tx.blocking_send(Err(e));
                    return;
                }
            }
        }
    });
    futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|item| (item, rx)) })
}

/// The HTTPS baseline: a hyper server behind rustls, serving any file asked
/// for by path, and a hyper client behind rustls that writes to a file.
struct Https {
    addr: std::net::SocketAddr,
    client: Arc<rustls::ClientConfig>,
    server: tokio::task::JoinHandle<()>,
}

impl Https {
    async fn start() -> Result<Https> {
        use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
        let tls = |e: rustls::Error| err(format!("TLS setup: {e}"));
        let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_string()])
            .map_err(|e| err(format!("certificate: {e}")))?;
        let cert = certified.cert.der().clone();
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(certified.key_pair.serialize_der()));
        // TLS 1.3 with AES-256-GCM only, as the comparison names.
        let provider = Arc::new(rustls::crypto::CryptoProvider {
            cipher_suites: vec![rustls::crypto::ring::cipher_suite::TLS13_AES_256_GCM_SHA384],
            ..rustls::crypto::ring::default_provider()
        });
        let server = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(tls)?
            .with_no_client_auth()
            .with_single_cert(vec![cert.clone()], key)
            .map_err(tls)?;
        let mut roots = rustls::RootCertStore::empty();
        roots.add(cert).map_err(tls)?;
        let client = rustls::ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(tls)?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| err(e.to_string()))?;
        let addr = listener.local_addr().map_err(|e| err(e.to_string()))?;
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server));
        let server = tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else { return };
                    let service = hyper::service::service_fn(|req: hyper::Request<hyper::body::Incoming>| async move {
                        let path = PathBuf::from(req.uri().path());
                        Ok::<_, std::convert::Infallible>(hyper::Response::new(axum::body::Body::from_stream(
                            file_stream(path),
                        )))
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                        .await;
                });
            }
        });
        Ok(Https {
            addr,
            client: Arc::new(client),
            server,
        })
    }

    /// Downloads `file` to `out`; answers the seconds from connecting to synced.
    async fn download(&self, file: &Path, out: &Path) -> Result<f64> {
        use http_body_util::BodyExt;
        let started = Instant::now();
        let tcp = tokio::net::TcpStream::connect(self.addr)
            .await
            .map_err(|e| err(e.to_string()))?;
        let name = rustls::pki_types::ServerName::try_from("localhost").map_err(|e| err(e.to_string()))?;
        let tls = tokio_rustls::TlsConnector::from(self.client.clone())
            .connect(name, tcp)
            .await
            .map_err(|e| err(format!("TLS: {e}")))?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls))
            .await
            .map_err(|e| err(e.to_string()))?;
        let driver = tokio::spawn(conn);
        let req = hyper::Request::get(file.display().to_string())
            .header(hyper::header::HOST, "localhost")
            .body(http_body_util::Empty::<Bytes>::new())
            .map_err(|e| err(e.to_string()))?;
        let resp = sender.send_request(req).await.map_err(|e| err(e.to_string()))?;
        let mut body = resp.into_body();
        // Written as `liutong fetch` writes: plain writes from the receiving task.
        let mut f = std::fs::File::create(out).map_err(|e| err(e.to_string()))?;
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| err(e.to_string()))?;
            if let Some(data) = frame.data_ref() {
                std::io::Write::write_all(&mut f, data).map_err(|e| err(e.to_string()))?;
            }
        }
        f.sync_all().map_err(|e| err(e.to_string()))?;
        driver.abort();
        Ok(started.elapsed().as_secs_f64())
    }

    fn stop(self) {
        self.server.abort();
    }
}

/// The raw TCP baseline: the file's bytes copied over a socket into a file
/// with blocking `std::io::copy` on both ends (which uses `sendfile` and
/// `splice` where Linux offers them): the fastest a plain copy goes.
struct Raw {
    addr: std::net::SocketAddr,
    path: Arc<std::sync::Mutex<PathBuf>>,
}

impl Raw {
    async fn start() -> Result<Raw> {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| err(e.to_string()))?;
        let addr = listener.local_addr().map_err(|e| err(e.to_string()))?;
        let path = Arc::new(std::sync::Mutex::new(PathBuf::new()));
        let p = path.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut tcp) = conn else { return };
                let file = p.lock().map(|g| g.clone()).unwrap_or_default();
                if file.as_os_str().is_empty() {
                    return;
                }
                if let Ok(mut f) = std::fs::File::open(&file) {
                    let _ = std::io::copy(&mut f, &mut tcp);
                }
            }
        });
        Ok(Raw { addr, path })
    }

    async fn copy(&self, file: &Path, out: &Path) -> Result<f64> {
        if let Ok(mut g) = self.path.lock() {
            *g = file.to_path_buf();
        }
        let (addr, out) = (self.addr, out.to_path_buf());
        tokio::task::spawn_blocking(move || -> Result<f64> {
            let started = Instant::now();
            let mut tcp = std::net::TcpStream::connect(addr).map_err(|e| err(e.to_string()))?;
            let mut f = std::fs::File::create(&out).map_err(|e| err(e.to_string()))?;
            std::io::copy(&mut tcp, &mut f).map_err(|e| err(e.to_string()))?;
            f.sync_all().map_err(|e| err(e.to_string()))?;
            Ok(started.elapsed().as_secs_f64())
        })
        .await
        .map_err(|e| err(e.to_string()))?
    }

    /// Ends the server thread: it stops at the next connection with no file set.
    fn stop(self) {
        if let Ok(mut g) = self.path.lock() {
            *g = PathBuf::new();
        }
        let _ = std::net::TcpStream::connect(self.addr);
    }
}

#[cfg(test)]
mod tests {
    use super::parse_size;

    #[test]
    fn sizes_parse_with_binary_units() {
        assert_eq!(parse_size("10MiB").expect("ok"), 10 << 20);
        assert_eq!(parse_size("1GiB").expect("ok"), 1 << 30);
        assert_eq!(parse_size("4096").expect("ok"), 4096);
        assert_eq!(parse_size("2k").expect("ok"), 2048);
        for bad in ["", "MiB", "0", "10 parsecs", "99999999999999GiB", "-1"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
    }
}
