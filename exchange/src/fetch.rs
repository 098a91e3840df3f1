//! `liutong fetch`: the consumer's side of a delivery. It signs a request
//! under a grant, sends it to the provider's node (the endpoint in the
//! provider's party record), opens each sealed frame with the home's
//! encryption key, checks each chunk against the on-chain commitment as it
//! arrives, and writes verified chunks to `OUT.part`. Only when the whole
//! content matches is the file renamed to `OUT`; then the consumer signs a
//! receipt and hands it to the provider, which logs the delivery on the
//! ledger. A dropped connection is taken up again from the last verified
//! chunk (automatically, and across runs with `--resume`) without counting
//! a second use.

use crate::access::AccessRecord;
use crate::cli::{chain_genesis, NodeArg, Output};
use crate::client::Client;
use crate::delivery::{DeliveryReceipt, DeliveryRequest, FrameReader, Refusal, SignedReceipt, SignedRequest, Verdict};
use crate::home::{write_atomically, Home, Identity};
use crate::{Error, Result};
use clap::Args;
use liutong_catalog::{chunk_root, ChunkVerifier, Commitment, DatasetId};
use liutong_core::stream::{Opener, TAG_LEN};
use liutong_core::{now_ms, Digest};
use liutong_policies::Action;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Longest wait for the next bytes of a stream before it counts as dropped.
const IDLE: Duration = Duration::from_secs(30);
const PARTIAL_FORMAT: &str = "liutong-partial/1";

#[derive(Args, Debug)]
pub struct FetchArgs {
    /// The dataset id.
    pub dataset: String,
    /// The grant to fetch under (yours, active, allowing download).
    #[arg(long)]
    pub grant: String,
    /// Where to write the file; it appears only once the whole content verified.
    #[arg(long)]
    pub out: PathBuf,
    /// Take up an interrupted fetch from OUT.part (no second use is counted).
    #[arg(long)]
    pub resume: bool,
    /// The version to fetch [default: the current one].
    #[arg(long)]
    pub version: Option<u32>,
    /// Times to take up a dropped connection automatically.
    #[arg(long, default_value_t = 3)]
    pub retries: u32,
    /// Private mode (a grant requested with --private): prove the use with a
    /// zero-knowledge proof and a one-time key instead of naming the grant.
    #[arg(long)]
    pub private: bool,
    #[command(flatten)]
    pub node: NodeArg,
}

/// What `OUT.part.json` keeps between attempts and runs.
#[derive(Serialize, Deserialize, Clone, Debug)]
#[serde(deny_unknown_fields)]
struct Partial {
    format: String,
    grant: String,
    dataset: String,
    version: u32,
    chunk_root: Digest,
    /// The delivery (first request digest) whose use was counted.
    delivery: Option<Digest>,
    /// The chunk hash list received (hex), once it arrived.
    hashes: Option<String>,
}

/// How an attempt ended without a verified file.
enum Failure {
    /// The connection dropped or the stream was cut: take it up again.
    Dropped(Error),
    /// Anything else: stop.
    Fatal(Error),
}

impl From<Refusal> for Failure {
    fn from(r: Refusal) -> Self {
        Failure::Fatal(r.into())
    }
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        Failure::Fatal(e)
    }
}

struct Plan {
    peer: Counterpart,
    grant: crate::grants::GrantId,
    dataset: DatasetId,
    version: u32,
    commitment: Commitment,
    out: PathBuf,
    part: PathBuf,
    state: PathBuf,
}

/// What a consumer learns from its own node before asking a provider for
/// a dataset or a query under a grant.
pub struct Counterpart {
    pub identity: Identity,
    pub chain_id: String,
    /// The provider's node (its registered endpoint).
    pub endpoint: String,
    /// The provider's current signing key: it signs each stream's header.
    pub provider_key: liutong_core::PublicKey,
    /// The version asked for and its description.
    pub version: u32,
    pub description: liutong_catalog::Description,
    pub http: reqwest::Client,
    /// Private mode: requests are proven, and signed with one-time keys
    /// (`identity` is then that one-time identity).
    pub private: Option<crate::private::PrivateUse>,
}

impl Counterpart {
    /// The look-ups on the consumer's node, side by side; refuses a home
    /// whose encryption key is not the one its party registered (streams
    /// are sealed to the registered key).
    pub async fn find(
        home: &Home,
        client: &Client,
        dataset: DatasetId,
        grant: crate::grants::GrantId,
        version: Option<u32>,
        private: bool,
    ) -> Result<Counterpart> {
        let identity = match private {
            false => home.identity()?,
            // A one-time identity: the provider learns no registered key.
            true => Identity::generate(),
        };
        let me_key = identity.signing.public_key();
        let (genesis, grant, record, me) = tokio::join!(
            chain_genesis(home, client, true),
            client.grant(&grant),
            client.dataset(&dataset),
            client.key_binding(&me_key),
        );
        let (genesis, grant, record) = (genesis?, grant?, record?);
        let version = version.unwrap_or(record.version);
        let (v, provider, mine) = tokio::join!(
            client.dataset_version(&dataset, version),
            client.party(grant.grant.provider.as_str()),
            async {
                match &me {
                    Ok(b) => Some(client.party(&b.party).await),
                    Err(_) => None,
                }
            },
        );
        let (v, provider) = (v?, provider?);
        let private = match private {
            true => Some(crate::private::PrivateUse::prepare(home, client, &grant.grant).await?),
            false => None,
        };
        if let (Ok(me), Some(mine), None) = (&me, mine, &private) {
            let mine = mine?;
            if mine.profile.encryption_key != identity.encryption.public_key() {
                return Err(Refusal::new(
                    "fetch.key_mismatch",
                    format!(
                        "this home's encryption key {} is not the one party {} registered ({}); results are sealed to the registered key",
                        identity.encryption.public_key(),
                        me.party,
                        mine.profile.encryption_key
                    ),
                )
                .into());
            }
        }
        Ok(Counterpart {
            identity,
            chain_id: genesis.chain_id.clone(),
            endpoint: provider.profile.endpoint.trim_end_matches('/').to_string(),
            provider_key: provider.profile.signing_key,
            version,
            description: v.description,
            http: reqwest::Client::builder()
                .connect_timeout(Duration::from_secs(10))
                .build()
                .map_err(|e| Error::Io(format!("HTTP client: {e}")))?,
            private,
        })
    }

    /// Signs a request: with the home's key under the grant, or in private
    /// mode with the one-time key and a proof in place of the grant.
    pub fn sign_request(&self, request: DeliveryRequest) -> Result<SignedRequest> {
        match &self.private {
            None => Ok(SignedRequest::sign(request, &self.identity.signing)),
            Some(p) => {
                if request.resumes.is_some() {
                    return Err(Refusal::new(
                        "zk.no_resume",
                        "a private fetch is not resumed (a resumption would link to the first request); fetch again as a new use",
                    )
                    .into());
                }
                p.sign(request, &self.identity.signing, self.identity.encryption.public_key())
            }
        }
    }

    /// Hands a signed receipt to the provider's node; answers the access-log
    /// entry it wrote.
    pub async fn hand_in(&self, receipt: &SignedReceipt) -> Result<AccessRecord> {
        let url = format!("{}/v1/deliveries/receipts", self.endpoint);
        let resp = self
            .http
            .post(&url)
            .timeout(Duration::from_secs(60))
            .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
            .body(receipt.to_bytes())
            .send()
            .await
            .map_err(|e| Error::Unreachable {
                url: self.endpoint.clone(),
                reason: e.to_string(),
            })?;
        let status = resp.status().as_u16();
        let bytes = resp.bytes().await.map_err(|e| Error::Io(e.to_string()))?;
        if !(200..300).contains(&status) {
            return Err(crate::client::remote_error(status, &bytes));
        }
        serde_json::from_slice(&bytes).map_err(|e| Error::Io(format!("the provider's answer: {e}")))
    }
}

fn sidecar(out: &Path, ext: &str) -> PathBuf {
    let mut s = out.as_os_str().to_owned();
    s.push(ext);
    PathBuf::from(s)
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> Error + '_ {
    move |e| Error::Io(format!("{}: {e}", path.display()))
}

pub async fn fetch(home: &Home, a: FetchArgs) -> Result<Output> {
    let started = Instant::now();
    let client = Client::new(&a.node.node)?;
    let dataset: DatasetId = a.dataset.parse()?;
    let grant_id: crate::grants::GrantId = a.grant.parse()?;
    let peer = Counterpart::find(home, &client, dataset, grant_id, a.version, a.private).await?;
    let version = peer.version;
    if a.out.exists() {
        return Err(Refusal::new(
            "fetch.exists",
            format!("{} exists; choose another --out or remove it", a.out.display()),
        )
        .into());
    }
    let plan = Plan {
        commitment: peer.description.commitment.clone(),
        peer,
        grant: grant_id,
        dataset,
        version,
        part: sidecar(&a.out, ".part"),
        state: sidecar(&a.out, ".part.json"),
        out: a.out.clone(),
    };
    let mut partial = plan.start_or_resume(a.resume)?;
    let bar = progress_bar(plan.commitment.size);
    let mut tries = 0;
    let (root, resumed) = loop {
        match plan.attempt(&mut partial, &bar).await {
            Ok(root) => break (root, tries),
            Err(Failure::Dropped(e)) if tries < a.retries => {
                tries += 1;
                bar.println(format!(
                    "connection lost ({e}); resuming (try {tries} of {})",
                    a.retries
                ));
                tokio::time::sleep(Duration::from_millis(500 << tries.min(4))).await;
            }
            Err(Failure::Dropped(e)) => {
                bar.abandon();
                return Err(Refusal::new(
                    "fetch.interrupted",
                    format!(
                        "{e}; {} verified bytes are kept in {}: run again with --resume",
                        std::fs::metadata(&plan.part).map(|m| m.len()).unwrap_or(0),
                        plan.part.display()
                    ),
                )
                .into());
            }
            Err(Failure::Fatal(e)) => {
                bar.abandon();
                if plan.part.exists() {
                    eprintln!(
                        "the verified part is kept in {}: `liutong fetch ... --resume` takes it up",
                        plan.part.display()
                    );
                }
                return Err(e);
            }
        }
    };
    bar.finish_and_clear();
    let delivery = partial
        .delivery
        .ok_or_else(|| Error::Io("no delivery was started".into()))?;
    let elapsed = started.elapsed().as_secs_f64();
    let receipt = SignedReceipt::sign(
        DeliveryReceipt {
            request: delivery,
            verdict: Verdict::Verified,
            content: root,
            bytes: plan.commitment.size,
            time: now_ms(),
            reason: String::new(),
        },
        &plan.peer.identity.signing,
    );
    let logged = plan.peer.hand_in(&receipt).await;
    let mib_s = plan.commitment.size as f64 / (1 << 20) as f64 / elapsed.max(1e-9);
    let (log_text, log_json) = match &logged {
        Ok(entry) => (
            format!(
                "receipt signed and handed in: access log entry {} in block {} (tx {})",
                entry.outcome.as_str(),
                entry.height,
                entry.tx_id
            ),
            json!(entry),
        ),
        Err(e) => (
            format!(
                "the provider did not take the receipt ({}: {e}); it will log the delivery as unacknowledged",
                e.code()
            ),
            json!({ "error": { "code": e.code(), "message": e.to_string() } }),
        ),
    };
    Ok(Output::ok(
        format!(
            "fetched dataset {} version {version} under grant {} to {}\n  {} bytes in {elapsed:.2} s{}{}\n  every chunk verified against the on-chain chunk root {root}\n  delivery {delivery}\n  {log_text}",
            plan.dataset,
            plan.grant,
            plan.out.display(),
            plan.commitment.size,
            if plan.commitment.size >= 1 << 20 { format!(" ({mib_s:.1} MiB/s)") } else { String::new() },
            if resumed > 0 { format!(", resumed {resumed} time(s)") } else { String::new() },
        ),
        json!({
            "dataset": plan.dataset,
            "version": version,
            "grant": plan.grant,
            "out": plan.out,
            "bytes": plan.commitment.size,
            "seconds": elapsed,
            "mib_per_s": mib_s,
            "chunk_root": root,
            "delivery": delivery,
            "resumed": resumed,
            "access_log": log_json,
            "peak_rss_mib": peak_rss_mib(),
        }),
    ))
}

/// This process's peak resident memory (Linux), in MiB.
pub fn peak_rss_mib() -> Option<f64> {
    peak_rss_mib_in("/proc/self/status")
}

/// The peak resident memory (`VmHWM`) a `/proc/PID/status` file states, in MiB.
pub fn peak_rss_mib_in(status_file: &str) -> Option<f64> {
    let status = std::fs::read_to_string(status_file).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

fn progress_bar(size: u64) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::with_draw_target(Some(size), indicatif::ProgressDrawTarget::stderr());
    if let Ok(style) =
        indicatif::ProgressStyle::with_template("{bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}")
    {
        bar.set_style(style);
    }
    bar
}

impl Plan {
    /// The partial state to start from: none (a new delivery), or with
    /// `--resume` the one left by an earlier run for the same grant and content.
    fn start_or_resume(&self, resume: bool) -> Result<Partial> {
        let fresh = Partial {
            format: PARTIAL_FORMAT.into(),
            grant: self.grant.to_string(),
            dataset: self.dataset.to_string(),
            version: self.version,
            chunk_root: self.commitment.chunk_root,
            delivery: None,
            hashes: None,
        };
        let exists = self.part.exists() || self.state.exists();
        if !resume {
            if exists {
                return Err(Refusal::new(
                    "fetch.partial_exists",
                    format!(
                        "{} holds an interrupted fetch; pass --resume to take it up, or remove it",
                        self.part.display()
                    ),
                )
                .into());
            }
            return Ok(fresh);
        }
        if !exists {
            return Ok(fresh);
        }
        let text = std::fs::read_to_string(&self.state).map_err(io(&self.state))?;
        let p: Partial = serde_json::from_str(&text)
            .map_err(|e| Error::BadRequest(format!("{} is malformed: {e}", self.state.display())))?;
        if p.format != PARTIAL_FORMAT
            || p.grant != fresh.grant
            || p.dataset != fresh.dataset
            || p.version != fresh.version
            || p.chunk_root != fresh.chunk_root
        {
            return Err(Refusal::new(
                "fetch.resume_mismatch",
                format!(
                    "{} is from a fetch of another grant, dataset or version; remove it to start again",
                    self.part.display()
                ),
            )
            .into());
        }
        Ok(p)
    }

    fn save(&self, p: &Partial) -> Result<()> {
        let text = serde_json::to_string_pretty(p).map_err(|e| Error::Io(e.to_string()))?;
        write_atomically(&self.state, text.as_bytes(), false)
    }

    /// Drops the partial files of a delivery that can no longer be taken up.
    fn discard(&self) {
        let _ = std::fs::remove_file(&self.part);
        let _ = std::fs::remove_file(&self.state);
    }

    /// One request and its stream; answers the verified chunk root.
    async fn attempt(
        &self,
        partial: &mut Partial,
        bar: &indicatif::ProgressBar,
    ) -> std::result::Result<Digest, Failure> {
        let saved_hashes = match &partial.hashes {
            Some(h) => Some(parse_hashes(&hex::decode(h).map_err(|e| Error::Io(e.to_string()))?)?),
            None => None,
        };
        // The verified prefix on disk, checked again.
        let mut verifier = match (&saved_hashes, partial.delivery) {
            (Some(h), Some(_)) if self.part.exists() => {
                let f = std::fs::File::open(&self.part).map_err(io(&self.part))?;
                Some(
                    ChunkVerifier::resume(&self.commitment, h.clone(), std::io::BufReader::new(f))
                        .map_err(Error::from)?,
                )
            }
            _ => None,
        };
        let from_chunk = verifier.as_ref().map_or(0, |v| v.next_chunk());

        let signed = self
            .peer
            .sign_request(DeliveryRequest {
                chain_id: self.peer.chain_id.clone(),
                grant: self.grant,
                dataset: self.dataset,
                version: self.version,
                action: Action::Download,
                nonce: rand::random(),
                timestamp: now_ms(),
                from_chunk,
                resumes: partial.delivery,
                query: None,
                private: None,
            })
            .map_err(Failure::Fatal)?;
        let digest = signed.digest();
        let url = format!("{}/v1/deliveries", self.peer.endpoint);
        let resp = self
            .peer
            .http
            .post(&url)
            .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
            .body(signed.to_bytes())
            .send()
            .await
            .map_err(|e| {
                Failure::Dropped(Error::Unreachable {
                    url: self.peer.endpoint.clone(),
                    reason: e.to_string(),
                })
            })?;
        if !resp.status().is_success() {
            let status = resp.status().as_u16();
            let bytes = resp.bytes().await.unwrap_or_default();
            let e = crate::client::remote_error(status, &bytes);
            // A restarting provider, or one still ending the stream that
            // just dropped: try again.
            return Err(if e.code() == "node.shutting_down" || e.code() == "delivery.busy" {
                Failure::Dropped(e)
            } else {
                Failure::Fatal(e)
            });
        }
        if partial.delivery.is_none() {
            partial.delivery = Some(digest);
            self.save(partial)?;
        }
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(false)
            .open(&self.part)
            .map_err(io(&self.part))?;
        let keep = verifier.as_ref().map_or(0, |v| v.verified_bytes());
        file.set_len(keep).map_err(io(&self.part))?;
        file.seek(SeekFrom::Start(keep)).map_err(io(&self.part))?;
        bar.set_position(keep);
        let chunks = self.commitment.chunks();
        let max_frame = (self.commitment.chunk_size as usize)
            .max(usize::try_from(chunks).unwrap_or(usize::MAX).saturating_mul(32))
            .saturating_add(TAG_LEN)
            .min(u32::MAX as usize);
        let mut frames = FrameReader::new(max_frame);
        let mut resp = resp;
        let mut opener: Option<Opener> = None;
        let mut file = Some(file);
        let mut writer: Option<Writer> = None;
        let mut spare: Option<Vec<u8>> = None;
        let mut next: u64 = 0; // frames opened so far
        let mut done = false;
        let mut dropped: Option<Error> = None;
        'stream: loop {
            let piece = match tokio::time::timeout(IDLE, resp.chunk()).await {
                Ok(Ok(Some(b))) => b,
                Ok(Ok(None)) => break,
                Ok(Err(e)) => {
                    dropped = Some(Error::Io(format!("the stream broke: {e}")));
                    break;
                }
                Err(_) => {
                    dropped = Some(Error::Io(format!("no bytes for {} s", IDLE.as_secs())));
                    break;
                }
            };
            frames.push(&piece);
            if opener.is_none() {
                let Some(signed_header) = frames.header()? else {
                    continue;
                };
                signed_header.verify(&self.peer.provider_key)?;
                let h = &signed_header.header;
                if h.request != digest
                    || h.size != self.commitment.size
                    || h.chunk_size != self.commitment.chunk_size
                    || h.from_chunk != from_chunk
                {
                    return Err(
                        Refusal::new("delivery.malformed", "the stream's header does not answer this request").into(),
                    );
                }
                opener =
                    Some(Opener::new(&self.peer.identity.encryption, &h.encapped_key, &digest).map_err(Error::from)?);
            }
            let Some(o) = &opener else { continue };
            loop {
                // A buffer the writer handed back when there is one: no
                // allocation per chunk.
                let mut sealed = match (spare.take(), &writer) {
                    (Some(b), _) => b,
                    (None, Some(w)) => w.back.try_recv().unwrap_or_default(),
                    (None, None) => Vec::new(),
                };
                if !frames.next_frame_into(&mut sealed)? {
                    spare = Some(sealed);
                    break;
                }
                if done {
                    return Err(Refusal::new("delivery.malformed", "frames after the last one").into());
                }
                if next == 0 {
                    let last = from_chunk == chunks;
                    let n = o.open_in_place(0, last, &mut sealed).map_err(Error::from)?;
                    let hashes = parse_hashes(&sealed[..n])?;
                    let v = match verifier.take() {
                        Some(_) if saved_hashes.as_ref() != Some(&hashes) => {
                            let why = "the chunk hash list changed between attempts".to_string();
                            return Err(self.refuse(partial, chunk_root(&hashes), 0, why).await);
                        }
                        Some(v) => v,
                        None => match ChunkVerifier::new(&self.commitment, hashes.clone()) {
                            Ok(v) => {
                                partial.hashes = Some(hex::encode(&sealed[..n]));
                                self.save(partial)?;
                                v
                            }
                            Err(e) => return Err(self.refuse(partial, chunk_root(&hashes), 0, e.to_string()).await),
                        },
                    };
                    let f = file.take().ok_or_else(|| Error::Io("the part file is gone".into()))?;
                    writer = Some(Writer::start(v, f, self.part.clone()));
                    done = last;
                } else {
                    let i = from_chunk + next - 1;
                    let last = i + 1 == chunks;
                    let index = u32::try_from(next + from_chunk).map_err(|_| Error::Io("too many chunks".into()))?;
                    let n = o.open_in_place(index, last, &mut sealed).map_err(Error::from)?;
                    sealed.truncate(n);
                    bar.inc(n as u64);
                    let w = writer.as_ref().ok_or_else(|| Error::Io("no hash list".into()))?;
                    if w.tx.send((i, sealed)).is_err() {
                        // The writer stopped on a mismatch or a write error.
                        break 'stream;
                    }
                    done = last;
                }
                next += 1;
            }
        }
        let Some(w) = writer else {
            return Err(Failure::Dropped(dropped.unwrap_or_else(|| {
                Error::Io("the stream ended before the chunk hash list".into())
            })));
        };
        // The writer finishes what it was given (a mismatch it found counts
        // even when the connection also dropped) before any retry.
        let (v, file) = match w.finish() {
            Ok(ok) => ok,
            Err(WriteFailure::Mismatch(verified, why)) => {
                let root = self.commitment.chunk_root;
                return Err(self.refuse(partial, root, verified, why).await);
            }
            Err(WriteFailure::Io(e)) => return Err(Failure::Fatal(e)),
        };
        if let Some(e) = dropped {
            return Err(Failure::Dropped(e));
        }
        if !done || v.next_chunk() < chunks {
            return Err(Failure::Dropped(Error::Io(format!(
                "the stream ended after {} of {} chunks{}",
                v.next_chunk(),
                chunks,
                if frames.pending() > 0 {
                    ", in the middle of a frame"
                } else {
                    ""
                }
            ))));
        }
        let root = v.finish().map_err(Error::from)?;
        file.sync_all().map_err(io(&self.part))?;
        drop(file);
        std::fs::rename(&self.part, &self.out).map_err(io(&self.out))?;
        let _ = std::fs::remove_file(&self.state);
        Ok(root)
    }

    /// The provider's content does not match the commitment: sign a refusal
    /// receipt, hand it in (the access log records the delivery as
    /// disputed), and keep nothing.
    /// `content` is the chunk root the provider's hash list claims.
    async fn refuse(&self, partial: &Partial, content: Digest, verified: u64, why: String) -> Failure {
        self.discard();
        let Some(delivery) = partial.delivery else {
            return Failure::Fatal(Error::Catalog(liutong_catalog::Error::ContentMismatch(why)));
        };
        let receipt = SignedReceipt::sign(
            DeliveryReceipt {
                request: delivery,
                verdict: Verdict::Refused,
                content,
                bytes: verified,
                time: now_ms(),
                reason: truncate_utf8(&why, crate::delivery::MAX_RECEIPT_REASON),
            },
            &self.peer.identity.signing,
        );
        let logged = match self.peer.hand_in(&receipt).await {
            Ok(e) => format!("access log entry {} in block {}", e.outcome.as_str(), e.height),
            Err(e) => format!("the provider did not take the refusal receipt ({}: {e})", e.code()),
        };
        Failure::Fatal(
            Refusal::new(
                "fetch.content_mismatch",
                format!("the provider's content does not match the on-chain commitment: {why}; nothing was kept; refusal receipt signed: {logged}"),
            )
            .into(),
        )
    }
}

/// Checks and writes opened chunks on its own thread, so opening the next
/// chunk and hashing this one use both cores; hands each buffer back for
/// the next chunk.
struct Writer {
    tx: std::sync::mpsc::SyncSender<(u64, Vec<u8>)>,
    back: std::sync::mpsc::Receiver<Vec<u8>>,
    handle: std::thread::JoinHandle<std::result::Result<(ChunkVerifier, std::fs::File), WriteFailure>>,
}

enum WriteFailure {
    /// A chunk did not match: bytes verified before it, and why.
    Mismatch(u64, String),
    Io(Error),
}

impl Writer {
    fn start(mut v: ChunkVerifier, mut file: std::fs::File, path: PathBuf) -> Writer {
        let (tx, rx) = std::sync::mpsc::sync_channel::<(u64, Vec<u8>)>(2);
        let (give, back) = std::sync::mpsc::channel::<Vec<u8>>();
        let handle = std::thread::spawn(move || {
            for (i, plain) in rx {
                if let Err(e) = v.check(i, &plain) {
                    return Err(WriteFailure::Mismatch(v.verified_bytes(), e.to_string()));
                }
                file.write_all(&plain)
                    .map_err(|e| WriteFailure::Io(Error::Io(format!("{}: {e}", path.display()))))?;
                let _ = give.send(plain);
            }
            Ok((v, file))
        });
        Writer { tx, back, handle }
    }

    fn finish(self) -> std::result::Result<(ChunkVerifier, std::fs::File), WriteFailure> {
        drop(self.tx);
        self.handle
            .join()
            .unwrap_or_else(|_| Err(WriteFailure::Io(Error::Io("the writer thread panicked".into()))))
    }
}

/// At most `max` bytes of `text`, cut at a character boundary, without
/// control characters.
fn truncate_utf8(text: &str, max: usize) -> String {
    let mut out = String::new();
    for c in text.chars().map(|c| if c.is_control() { ' ' } else { c }) {
        if out.len() + c.len_utf8() > max {
            break;
        }
        out.push(c);
    }
    out
}

fn parse_hashes(bytes: &[u8]) -> Result<Vec<Digest>> {
    if !bytes.len().is_multiple_of(32) {
        return Err(Refusal::new("delivery.malformed", "the chunk hash list is not whole hashes").into());
    }
    Ok(bytes
        .chunks_exact(32)
        .map(|c| Digest(c.try_into().expect("32-byte chunks")))
        .collect())
}

#[derive(clap::Subcommand, Debug)]
pub enum AccessCommand {
    /// List access-log entries of a grant, a dataset or a party, oldest first.
    List {
        #[arg(long, conflicts_with_all = ["dataset", "party"], required_unless_present_any = ["dataset", "party"])]
        grant: Option<String>,
        #[arg(long, conflicts_with = "party")]
        dataset: Option<String>,
        /// A credit code: entries where the party provided or received.
        #[arg(long)]
        party: Option<String>,
        /// Most entries to show.
        #[arg(long, default_value_t = 100)]
        limit: usize,
        #[command(flatten)]
        node: NodeArg,
    },
}

pub async fn access(cmd: AccessCommand) -> Result<Output> {
    let AccessCommand::List {
        grant,
        dataset,
        party,
        limit,
        node,
    } = cmd;
    let client = Client::new(&node.node)?;
    let (key, value) = match (grant, dataset, party) {
        (Some(g), _, _) => ("grant", g),
        (_, Some(d), _) => ("dataset", d),
        (_, _, Some(p)) => ("party", p),
        _ => return Err(Error::BadRequest("name --grant, --dataset or --party".into())),
    };
    let page: crate::access::AccessPage = client
        .get(&format!(
            "/v1/access-log?{key}={}&limit={}",
            value.trim(),
            limit.clamp(1, crate::access::MAX_PAGE)
        ))
        .await?;
    let mut text = format!(
        "{} access-log entr{} for {key} {value}",
        page.entries.len(),
        if page.entries.len() == 1 { "y" } else { "ies" }
    );
    for e in &page.entries {
        text.push_str(&format!(
            "\n  block {:>5}  {:<8}  {:<14}  {} -> {}  dataset {} v{}  {} bytes  grant {}\n    request {}",
            e.height,
            e.action,
            e.outcome.as_str(),
            e.provider,
            e.consumer.as_ref().map_or("(private)".to_string(), |c| c.to_string()),
            e.dataset,
            e.version,
            e.bytes,
            e.grant
                .map_or("(private: proven, not named)".to_string(), |g| g.to_string()),
            e.request
        ));
        if let Some(p) = &e.private {
            text.push_str(&format!(
                "
    nullifier {}  escrow tag {}
    proof verified by the ledger; opening sealed to {}",
                p.nullifier,
                p.escrow_tag,
                p.openings
                    .iter()
                    .map(|o| o.auditor.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        match &e.query {
            Some(q) => text.push_str(&format!(
                "\n    query {}  result {}  {} row(s)\n    enforced: {}",
                q.query,
                e.result,
                q.rows,
                if q.enforced.is_empty() {
                    "-".to_string()
                } else {
                    q.enforced.join("; ")
                }
            )),
            None => text.push_str(&format!("\n    content {}", e.result)),
        }
    }
    Ok(Output::ok(text, json!(page)))
}
