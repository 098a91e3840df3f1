//! The provider's delivery service, run by a node whose home holds a party
//! identity: it authorizes signed delivery requests on its own copy of the
//! ledger, counts the use on the ledger before serving, streams the file
//! sealed to the consumer's registered key in constant memory, and writes
//! one access-log entry per delivery: with the consumer's receipt, or
//! unacknowledged once the receipt timeout passes.
//!
//! Open deliveries (use counted, not yet logged) are kept in
//! `HOME/deliveries/`, one small file each, so a restarted node still takes
//! up resumptions and receipts and still logs what it served.

use crate::access::{self, LogAccess, QueryServed};
use crate::api::{submit_own, AppState};
use crate::delivery::{
    authorize, frame, DeliveryHeader, NonceWindow, Refusal, SignedHeader, SignedReceipt, SignedRequest, Verdict,
    MAX_RECEIPT_REASON, STREAM_MAGIC,
};
use crate::grants::{self, GrantId, UseGrant};
use crate::home::{write_atomically, Home, Identity, SourceFile};
use crate::machine::{CF_PARTIES, CF_PARTY_KEYS, KIND_ACCESS_LOG, KIND_GRANT_USE, KIND_GRANT_USE_PRIVATE};
use crate::party::{KeyBinding, Party, PartyStatus};
use crate::{Error, Result};
use axum::body::Bytes;
use liutong_catalog::{file_chunk_hashes, Commitment, DatasetId};
use liutong_core::stream::TAG_LEN;
use liutong_core::{encode_canonical, now_ms, Canonical, Digest, Timestamp};
use liutong_ledger::Ledger;
use liutong_zk::FieldBytes;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub(crate) mod query;
pub use query::{QueryCaller, QueryConfig, QueryLimiter, QueryResult, QueryTurn};

/// Default time a provider waits for a receipt after a delivery's last stream ended.
pub const DEFAULT_RECEIPT_TIMEOUT: Duration = Duration::from_secs(300);
/// Sealed frames in flight between the file reader and the connection.
const IN_FLIGHT: usize = 4;
const PENDING_FORMAT: &str = "liutong-delivery/1";
/// Most resumptions of one delivery.
pub const MAX_RESUMES: u32 = 64;

/// A delivery whose use was counted and whose access-log entry is not written yet.
#[derive(Clone, Debug)]
struct Pending {
    first: SignedRequest,
    served_at: Timestamp,
    /// Highest plaintext offset served, over every resumption.
    bytes: u64,
    /// Bytes sent in all (hash lists and chunks), over every resumption.
    sent: u64,
    /// Resumptions taken so far.
    resumes: u32,
    /// Streams of this delivery being served now (at most one).
    active: u32,
    /// When the last stream ended (or the delivery started).
    idle_since: Timestamp,
    /// An access-log entry is being submitted.
    logging: bool,
    /// For a query: its result and what was enforced.
    query: Option<QueryServed>,
    /// The resumption requests taken up so far (at most [`MAX_RESUMES`]):
    /// each is good for one stream, also across a restart.
    resumed_by: Vec<Digest>,
}

impl Pending {
    /// A new delivery, being served now.
    fn new(first: SignedRequest, now: Timestamp, query: Option<QueryServed>) -> Pending {
        Pending {
            first,
            served_at: now,
            bytes: 0,
            sent: 0,
            resumes: 0,
            active: 1,
            idle_since: now,
            logging: false,
            query,
            resumed_by: Vec::new(),
        }
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct PendingFile {
    format: String,
    /// The first signed request, borsh, hex.
    request: String,
    served_at: Timestamp,
    bytes: u64,
    sent: u64,
    resumes: u32,
    idle_since: Timestamp,
    #[serde(default)]
    query: Option<QueryServed>,
    #[serde(default)]
    resumed_by: Vec<Digest>,
}

/// What the node needs to serve deliveries.
pub struct Provider {
    home: Home,
    identity: Identity,
    receipt_timeout: Duration,
    queries: QueryConfig,
    nonces: Mutex<NonceWindow>,
    pending: Mutex<HashMap<Digest, Pending>>,
    /// Verifies private requests' proofs (the genesis's verifying key).
    verifier: liutong_zk::Verifier,
    /// Frame buffers the connections are done with, for the next frames.
    frames: Arc<Mutex<Vec<Vec<u8>>>>,
}

/// Most spare frame buffers a node keeps.
const SPARE_FRAMES: usize = 16;

/// A frame buffer lent to the connection; it comes back to the pool when
/// the connection has sent it, so frames cost no allocation (and no page
/// faults) after the first few.
struct Lent {
    buf: Vec<u8>,
    pool: Arc<Mutex<Vec<Vec<u8>>>>,
}

impl AsRef<[u8]> for Lent {
    fn as_ref(&self) -> &[u8] {
        &self.buf
    }
}

impl Drop for Lent {
    fn drop(&mut self) {
        let mut spare = lock(&self.pool);
        if spare.len() < SPARE_FRAMES {
            spare.push(std::mem::take(&mut self.buf));
        }
    }
}

impl Provider {
    /// The service of a home with an identity; open deliveries left by an
    /// earlier run are loaded.
    pub fn open(home: Home, receipt_timeout: Duration, skew_ms: u64, queries: QueryConfig) -> Result<Provider> {
        let identity = home.identity()?;
        let verifier = liutong_zk::Verifier::new(&home.genesis()?.zk.verifying_key()?);
        let provider = Provider {
            home,
            identity,
            verifier,
            receipt_timeout,
            queries,
            nonces: Mutex::new(NonceWindow::new(skew_ms)),
            pending: Mutex::new(HashMap::new()),
            frames: Arc::new(Mutex::new(Vec::new())),
        };
        provider.load_pending()?;
        Ok(provider)
    }

    fn dir(&self) -> PathBuf {
        self.home.dir().join("deliveries")
    }

    fn pending_path(&self, delivery: &Digest) -> PathBuf {
        self.dir().join(format!("{delivery}.json"))
    }

    fn load_pending(&self) -> Result<()> {
        let dir = self.dir();
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(Error::Home(format!("cannot read {}: {e}", dir.display()))),
        };
        let mut pending = lock(&self.pending);
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().and_then(|e| e.to_str()) != Some("json") {
                continue;
            }
            match read_pending(&path) {
                Ok(p) => {
                    pending.insert(p.first.digest(), p);
                }
                Err(e) => tracing::warn!(file = %path.display(), error = %e, "skipping an unreadable open delivery"),
            }
        }
        Ok(())
    }

    /// Writes an open delivery's file. Callers hold the `pending` lock, so
    /// saves of one delivery never interleave and none follows its `forget`.
    fn save(&self, p: &Pending) -> Result<()> {
        let file = PendingFile {
            format: PENDING_FORMAT.into(),
            request: hex::encode(p.first.to_bytes()),
            served_at: p.served_at,
            bytes: p.bytes,
            sent: p.sent,
            resumes: p.resumes,
            idle_since: p.idle_since,
            query: p.query.clone(),
            resumed_by: p.resumed_by.clone(),
        };
        std::fs::create_dir_all(self.dir()).map_err(|e| Error::Io(format!("{}: {e}", self.dir().display())))?;
        let text = serde_json::to_string_pretty(&file).map_err(|e| Error::Io(e.to_string()))?;
        write_atomically(&self.pending_path(&p.first.digest()), text.as_bytes(), false)
    }

    fn forget(&self, delivery: &Digest) {
        let mut pending = lock(&self.pending);
        pending.remove(delivery);
        let _ = std::fs::remove_file(self.pending_path(delivery));
    }

    /// Takes up open delivery `first` for a resumption: one stream at a
    /// time, within the resumption allowance; marks the stream active.
    fn take_up(
        &self,
        store: &liutong_ledger::Store,
        first: Digest,
        signed: &SignedRequest,
        c: &Commitment,
    ) -> Result<()> {
        let mut pending = lock(&self.pending);
        let Some(p) = pending.get_mut(&first).filter(|p| !p.logging) else {
            drop(pending);
            return Err(match access::entry(store, &first)? {
                Some(e) => Refusal::new(
                    "delivery.closed",
                    format!(
                        "delivery {first} is already in the access log ({}); start a new one",
                        e.outcome.as_str()
                    ),
                ),
                None => Refusal::new(
                    "delivery.unknown",
                    format!("this node has no open delivery {first} (or it is being logged)"),
                ),
            }
            .into());
        };
        let (f, r) = (&p.first.request, &signed.request);
        if f.grant != r.grant
            || f.dataset != r.dataset
            || f.version != r.version
            || f.action != r.action
            || p.first.signer != signed.signer
        {
            return Err(Refusal::new(
                "delivery.resume_mismatch",
                format!("delivery {first} was for another grant, dataset, version, action or key"),
            )
            .into());
        }
        let resumption = signed.digest();
        if p.resumed_by.contains(&resumption) {
            return Err(Refusal::new(
                "delivery.replayed",
                format!("resumption {resumption} of delivery {first} was already taken up; sign a new one"),
            )
            .into());
        }
        if p.active > 0 {
            return Err(Refusal::new(
                "delivery.busy",
                format!("delivery {first} is being streamed; resume once that stream has ended"),
            )
            .into());
        }
        // Resumptions take up what did not arrive; they are not a way to
        // receive the content again and again on one use.
        let limit = resume_allowance(c);
        if p.sent >= limit || p.resumes >= MAX_RESUMES {
            return Err(Refusal::new(
                "delivery.resume_limit",
                format!(
                    "delivery {first} has been resumed {} times and sent {} bytes; one use allows {MAX_RESUMES} and {limit}; start a new delivery",
                    p.resumes, p.sent
                ),
            )
            .into());
        }
        p.active += 1;
        p.resumes += 1;
        p.resumed_by.push(resumption);
        let snapshot = p.clone();
        self.save(&snapshot)
    }

    /// Checks a request and, for a new delivery, counts its use on the
    /// ledger; answers the stream to send.
    pub async fn start(self: &Arc<Self>, app: &Arc<AppState>, signed: SignedRequest) -> Result<Delivery> {
        let now = now_ms();
        let r = signed.request.clone();
        if r.action != liutong_policies::Action::Download || r.query.is_some() {
            return Err(Refusal::new(
                "delivery.wrong_action",
                "a delivery request asks to download; queries go to /v1/queries",
            )
            .into());
        }
        let Checked {
            use_of,
            recipient,
            version,
            ..
        } = self.check(app, &signed, now)?;
        let store = app.ledger.store();
        let commitment = version.description.commitment.clone();
        if r.from_chunk > commitment.chunks() {
            return Err(Refusal::new(
                "delivery.bad_range",
                format!("from chunk {} of {}", r.from_chunk, commitment.chunks()),
            )
            .into());
        }
        // The hash list travels as one frame and chunk indexes are u32.
        if commitment.chunks() >= u64::from(u32::MAX / 64) {
            return Err(Refusal::new(
                "delivery.too_large",
                format!("{} chunks are more than one delivery carries", commitment.chunks()),
            )
            .into());
        }
        // A resumption takes up its open delivery first (cheap checks, and
        // no hashing for a delivery that is not there).
        let resumed = match r.resumes {
            Some(first) => {
                self.take_up(store, first, &signed, &commitment)?;
                Some(Active {
                    provider: self.clone(),
                    delivery: first,
                    served_to: 0,
                })
            }
            None => None,
        };
        let source = self.source(&r.dataset, r.version)?;
        let hashes = {
            let (home, source, commitment, dataset, v) = (
                self.home.clone(),
                source.clone(),
                commitment.clone(),
                r.dataset,
                r.version,
            );
            tokio::task::spawn_blocking(move || hash_list(&home, &dataset, v, &source, &commitment))
                .await
                .map_err(|e| Error::Io(format!("hashing the source: {e}")))??
        };
        // The stream's keys before the use is counted: a key HPKE refuses
        // must not cost the consumer a use.
        let request = signed.digest();
        let (sealer, encapped) = liutong_core::stream::Sealer::new(&recipient, &request)?;
        let active = match resumed {
            Some(a) => a,
            None => {
                let p = Pending::new(signed.clone(), now, None);
                self.count_use(app, p, use_of).await?
            }
        };
        let header = SignedHeader::sign(
            DeliveryHeader {
                request,
                encapped_key: encapped,
                size: commitment.size,
                chunk_size: commitment.chunk_size,
                from_chunk: r.from_chunk,
            },
            &self.identity.signing,
        );
        Ok(Delivery {
            active,
            sealer,
            header,
            source,
            commitment,
            hashes,
            from_chunk: r.from_chunk,
        })
    }

    /// The checks every request passes on this node's copy of the ledger:
    /// this node serves the grant, the holder signed with its current key,
    /// the grant allows the use now, the nonce is fresh, the version exists.
    fn check(&self, app: &Arc<AppState>, signed: &SignedRequest, now: Timestamp) -> Result<Checked> {
        if signed.request.private.is_some() {
            return self.check_private(app, signed, now);
        }
        let (ledger, chain_id) = (&app.ledger, app.genesis.chain_id.as_str());
        let r = &signed.request;
        let store = ledger.store();
        let grant = match grants::grant(store, &r.grant) {
            Ok(g) => g,
            Err(Error::Ledger(liutong_ledger::Error::NotFound(_))) => {
                return Err(Refusal::new("delivery.unknown_grant", format!("no grant {}", r.grant)).into())
            }
            Err(e) => return Err(e),
        };
        let me = self.identity.signing.public_key();
        let mine = read_binding(ledger, me.as_bytes())?;
        if mine.as_ref().map(|b| (&b.party, b.current)) != Some((&grant.provider, true)) {
            return Err(Refusal::new(
                "delivery.not_here",
                format!(
                    "grant {} is served by its provider {}'s node; this node signs for {}",
                    grant.id,
                    grant.provider,
                    mine.map_or_else(|| "no registered party".to_string(), |b| b.party.to_string())
                ),
            )
            .into());
        }
        let holder = read_party(ledger, &grant.holder)?;
        let holder_key = read_binding(ledger, signed.signer.as_bytes())?
            .is_some_and(|b| b.current && b.party == grant.holder)
            && holder.status == PartyStatus::Active;
        let dataset = crate::datasets::dataset(store, &r.dataset);
        let versions = match (&dataset, r.dataset == grant.dataset) {
            (Ok(d), _) => d.version,
            (Err(_), false) => 0,
            (Err(e), true) => return Err(Error::Io(format!("the grant's dataset is unreadable: {e}"))),
        };
        authorize(signed, chain_id, &grant, holder_key, versions, now)?;
        lock(&self.nonces).admit(signed.signer, r.nonce, r.timestamp, now)?;
        self.unused(store, signed)?;
        let version = crate::datasets::version(store, &r.dataset, r.version)?;
        Ok(Checked {
            use_of: UseOf::Grant(grant.id),
            recipient: holder.profile.encryption_key,
            terms: liutong_policies::QueryTerms::of(&grant.terms, grant.filters),
            // A grant id is one dataset's, so this is per dataset and grant.
            mask_salt: grant.id.0.to_vec(),
            version,
        })
    }

    /// Refuses a new delivery whose request was seen before by something
    /// that outlives this process: a use counted on the ledger for it, or
    /// an open delivery in the home. The nonce window is only in memory,
    /// so after a restart these are what stop a captured request's replay.
    fn unused(&self, store: &liutong_ledger::Store, signed: &SignedRequest) -> Result<()> {
        if signed.request.resumes.is_some() {
            return Ok(());
        }
        let digest = signed.digest();
        if lock(&self.pending).contains_key(&digest) || access::use_of(store, &digest)?.is_some() {
            return Err(Refusal::new(
                "delivery.replayed",
                format!("request {digest} was already served; sign a new one (a fresh nonce)"),
            )
            .into());
        }
        Ok(())
    }

    /// The checks of a private request: this node serves the dataset, the
    /// request is for this chain and a version that exists, signed by its
    /// one-time key with a fresh nonce, and its claim holds on this node's
    /// copy of the ledger (time, root window, unspent nullifier, proof).
    fn check_private(&self, app: &Arc<AppState>, signed: &SignedRequest, now: Timestamp) -> Result<Checked> {
        let (ledger, genesis) = (&app.ledger, &app.genesis);
        let r = &signed.request;
        let store = ledger.store();
        let claim = r.private.as_ref().expect("private requests only");
        let dataset = match crate::datasets::dataset(store, &r.dataset) {
            Ok(d) => d,
            Err(Error::Ledger(liutong_ledger::Error::NotFound(_))) => {
                return Err(Refusal::new("delivery.unknown_dataset", format!("no dataset {}", r.dataset)).into())
            }
            Err(e) => return Err(e),
        };
        let me = self.identity.signing.public_key();
        let mine = read_binding(ledger, me.as_bytes())?;
        if mine.as_ref().map(|b| (&b.party, b.current)) != Some((&dataset.provider, true)) {
            return Err(Refusal::new(
                "delivery.not_here",
                format!(
                    "dataset {} is served by its provider {}'s node",
                    r.dataset, dataset.provider
                ),
            )
            .into());
        }
        signed.verify()?;
        if r.chain_id != genesis.chain_id {
            return Err(Refusal::new(
                "delivery.wrong_chain",
                format!(
                    "the request is for chain {:?}, this is {:?}",
                    r.chain_id, genesis.chain_id
                ),
            )
            .into());
        }
        if r.version == 0 || r.version > dataset.version {
            return Err(Refusal::new(
                "delivery.unknown_version",
                format!("dataset {} has versions 1 to {}", r.dataset, dataset.version),
            )
            .into());
        }
        let height = ledger.height() + 1;
        let get = |cf: &'static str, k: &[u8]| {
            store
                .get(cf, k)
                .map_err(|e| liutong_ledger::Rejection::new(e.code(), e.to_string()))
        };
        crate::private::check_private(
            signed,
            &self.verifier,
            now,
            height,
            genesis.zk.root_window,
            genesis.params.max_clock_skew_ms,
            &get,
        )
        .map_err(|r| Error::from(Refusal::new(crate::private::static_code(&r.code), r.message)))?;
        lock(&self.nonces).admit(signed.signer, r.nonce, r.timestamp, now)?;
        self.unused(store, signed)?;
        let version = crate::datasets::version(store, &r.dataset, r.version)?;
        // Per dataset and terms: the provider must not learn which grant
        // a private use is of, so it cannot salt per grant; the dataset
        // keeps hashed identifiers from joining across datasets.
        let mut mask_salt = r.dataset.0.to_vec();
        mask_salt.extend(FieldBytes::of(&crate::private::terms_digest(&claim.terms)).0);
        Ok(Checked {
            use_of: UseOf::Private,
            recipient: claim.encryption_key,
            terms: claim.terms.clone(),
            mask_salt,
            version,
        })
    }

    /// Opens delivery `p` and counts its use on the ledger. The open
    /// delivery is on disk before the use is submitted, so a counted use is
    /// always logged, even if this node stops or the request is cancelled
    /// while the block is made.
    async fn count_use(self: &Arc<Self>, app: &Arc<AppState>, p: Pending, use_of: UseOf) -> Result<Active> {
        let request = p.first.digest();
        let action = p.first.request.action;
        let first = p.first.clone();
        {
            let mut pending = lock(&self.pending);
            self.save(&p)?;
            pending.insert(request, p);
        }
        let active = Active {
            provider: self.clone(),
            delivery: request,
            served_to: 0,
        };
        let (chain, key) = (&app.genesis.chain_id, &self.identity.signing);
        let tx = match use_of {
            UseOf::Grant(grant) => {
                crate::client::sign_tx(chain, KIND_GRANT_USE, &UseGrant { grant, action, request }, key)
            }
            UseOf::Private => crate::client::sign_tx(
                chain,
                KIND_GRANT_USE_PRIVATE,
                &crate::private::UsePrivate { request: first },
                key,
            ),
        };
        let app2 = app.clone();
        match tokio::spawn(async move { submit_own(&app2, tx.canonical_bytes()).await }).await {
            Ok(Ok(_)) => Ok(active),
            Ok(Err(e)) => {
                drop(active);
                self.forget(&request);
                Err(e)
            }
            Err(e) => {
                drop(active);
                Err(Error::Io(format!("counting the use: {e}")))
            }
        }
    }

    fn source(&self, dataset: &DatasetId, version: u32) -> Result<SourceFile> {
        self.home
            .sources()?
            .datasets
            .get(&dataset.to_string())
            .and_then(|v| v.get(&version))
            .cloned()
            .ok_or_else(|| {
                Refusal::new(
                    "delivery.source_missing",
                    format!("this node has no file for dataset {dataset} version {version}"),
                )
                .into()
            })
    }

    /// Called as a stream ends, however it ends (see [`Active`]).
    fn stream_ended(&self, delivery: &Digest, served_to: u64) {
        let mut pending = lock(&self.pending);
        let Some(p) = pending.get_mut(delivery) else { return };
        p.active = p.active.saturating_sub(1);
        p.bytes = p.bytes.max(served_to);
        p.idle_since = now_ms();
        let snapshot = p.clone();
        if let Err(e) = self.save(&snapshot) {
            tracing::warn!(error = %e, "cannot save an open delivery");
        }
    }

    fn progress(&self, delivery: &Digest, served_to: u64, chunk: u64) {
        if let Some(p) = lock(&self.pending).get_mut(delivery) {
            p.sent += chunk;
            p.bytes = p.bytes.max(served_to);
        }
    }

    /// Takes a consumer's receipt: checks it against the open delivery and
    /// the commitment, then logs the delivery with it. Answers the committed
    /// access-log entry. A receipt the ledger would refuse is refused here,
    /// and the delivery stays open (to be logged unacknowledged in time).
    pub async fn receipt(self: &Arc<Self>, app: &Arc<AppState>, receipt: SignedReceipt) -> Result<serde_json::Value> {
        let delivery = receipt.receipt.request;
        let first = lock(&self.pending)
            .get(&delivery)
            .map(|p| ((p.first.clone(), p.query.clone(), p.bytes), p.logging));
        let (first, query, served) = match first {
            Some((f, false)) => f,
            Some((_, true)) => {
                return Err(Refusal::new("receipt.late", format!("delivery {delivery} is being logged")).into())
            }
            None => {
                return Err(Refusal::new(
                    "receipt.unknown_delivery",
                    format!("this node has no open delivery {delivery} (logged already, or never started)"),
                )
                .into())
            }
        };
        if first.signer != receipt.signer {
            return Err(Refusal::new(
                "receipt.wrong_signer",
                "the receipt is not signed by the key that asked for the delivery",
            )
            .into());
        }
        receipt.verify()?;
        let rc = &receipt.receipt;
        if rc.reason.len() > MAX_RECEIPT_REASON || rc.reason.chars().any(char::is_control) {
            return Err(Refusal::new(
                "receipt.malformed",
                format!("a reason is at most {MAX_RECEIPT_REASON} bytes without control characters"),
            )
            .into());
        }
        let expected = match &query {
            Some(q) => (q.result, served),
            None => {
                let c = crate::datasets::version(app.ledger.store(), &first.request.dataset, first.request.version)?
                    .description
                    .commitment;
                (c.chunk_root, c.size)
            }
        };
        if rc.verdict == Verdict::Verified && (rc.content, rc.bytes) != expected {
            return Err(Refusal::new(
                "receipt.wrong_content",
                "a verified receipt names what was served (the committed chunk root or the query's result) and its full size",
            )
            .into());
        }
        self.log_with(app, &delivery, Some(receipt)).await
    }

    /// Logs open delivery `delivery` now, without a receipt (a query that
    /// failed: none will come). Answers the committed entry.
    async fn log_now(self: &Arc<Self>, app: &Arc<AppState>, delivery: &Digest) -> Result<serde_json::Value> {
        self.log_with(app, delivery, None).await
    }

    /// Marks open delivery `delivery` as being logged and submits its
    /// access-log entry with `receipt`; the submission and its bookkeeping
    /// finish even if the calling request is cancelled while the block is
    /// made.
    async fn log_with(
        self: &Arc<Self>,
        app: &Arc<AppState>,
        delivery: &Digest,
        receipt: Option<SignedReceipt>,
    ) -> Result<serde_json::Value> {
        let p = {
            let mut pending = lock(&self.pending);
            match pending.get_mut(delivery) {
                Some(p) if !p.logging => {
                    p.logging = true;
                    p.clone()
                }
                _ => return Err(Refusal::new("receipt.late", format!("delivery {delivery} is being logged")).into()),
            }
        };
        let (me, app, delivery) = (self.clone(), app.clone(), *delivery);
        tokio::spawn(async move {
            let result = me.log(&app, &p, receipt).await;
            me.logged(&delivery, &result);
            result
        })
        .await
        .map_err(|e| Error::Io(format!("logging the delivery: {e}")))?
    }

    async fn log(&self, app: &Arc<AppState>, p: &Pending, receipt: Option<SignedReceipt>) -> Result<serde_json::Value> {
        let body = LogAccess {
            request: p.first.clone(),
            bytes: p.bytes,
            served_at: p.served_at,
            receipt,
            query: p.query.clone(),
        };
        let tx = crate::client::sign_tx(&app.genesis.chain_id, KIND_ACCESS_LOG, &body, &self.identity.signing);
        submit_own(app, tx.canonical_bytes()).await
    }

    /// After an access-log submission: forget the delivery once it is in
    /// the log (or can never be), otherwise try again later.
    fn logged(&self, delivery: &Digest, result: &Result<serde_json::Value>) {
        match result {
            Ok(_) => self.forget(delivery),
            Err(e)
                if matches!(
                    e.code(),
                    "access.duplicate" | "access.no_use" | "access.bad_entry" | "access.bad_request"
                ) =>
            {
                tracing::warn!(%delivery, code = e.code(), "dropping an open delivery the ledger will not log");
                self.forget(delivery);
            }
            Err(e) => {
                tracing::warn!(%delivery, code = e.code(), error = %e, "access-log entry not written; will retry");
                if let Some(p) = lock(&self.pending).get_mut(delivery) {
                    p.logging = false;
                }
            }
        }
    }

    /// Logs, as unacknowledged, every open delivery idle for longer than the
    /// receipt timeout. Runs until the node stops.
    pub async fn reap(self: Arc<Self>, app: Arc<AppState>) {
        let mut stop = app.stopping.clone();
        let tick = (self.receipt_timeout / 4).clamp(Duration::from_millis(100), Duration::from_secs(5));
        loop {
            tokio::select! {
                _ = tokio::time::sleep(tick) => {}
                _ = stop.wait_for(|s| *s) => return,
            }
            let now = now_ms();
            let due: Vec<Pending> = {
                let mut pending = lock(&self.pending);
                pending
                    .values_mut()
                    .filter(|p| {
                        !p.logging
                            && p.active == 0
                            && now.saturating_sub(p.idle_since) >= self.receipt_timeout.as_millis() as u64
                    })
                    .map(|p| {
                        p.logging = true;
                        p.clone()
                    })
                    .collect()
            };
            for p in due {
                let result = self.log(&app, &p, None).await;
                self.logged(&p.first.digest(), &result);
            }
        }
    }
}

/// What a use is counted on.
#[derive(Clone, Copy, Debug)]
pub(crate) enum UseOf {
    Grant(GrantId),
    /// A private use: its proof and nullifier.
    Private,
}

/// What [`Provider::check`] found.
struct Checked {
    use_of: UseOf,
    /// Whom the stream is sealed to: the holder's registered key, or a
    /// private request's one-time key.
    recipient: liutong_core::EncryptionPublicKey,
    /// The terms a query runs under.
    terms: liutong_policies::QueryTerms,
    /// What the hash masks' salt is derived from (one per grant, or per
    /// dataset and terms for private uses).
    mask_salt: Vec<u8>,
    version: crate::datasets::DatasetVersion,
}

/// The most one delivery sends over all its resumptions: the content twice
/// and eight chunks (what a dropped connection can lose in flight, many times).
pub fn resume_allowance(c: &Commitment) -> u64 {
    c.size.saturating_mul(2).saturating_add(8 * u64::from(c.chunk_size))
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn read_pending(path: &Path) -> Result<Pending> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::Io(format!("{}: {e}", path.display())))?;
    let f: PendingFile =
        serde_json::from_str(&text).map_err(|e| Error::Home(format!("{} is malformed: {e}", path.display())))?;
    if f.format != PENDING_FORMAT {
        return Err(Error::Home(format!("{} has format {:?}", path.display(), f.format)));
    }
    let bytes = hex::decode(&f.request).map_err(|e| Error::Home(format!("{}: {e}", path.display())))?;
    Ok(Pending {
        first: SignedRequest::from_bytes(&bytes)?,
        served_at: f.served_at,
        bytes: f.bytes,
        sent: f.sent,
        resumes: f.resumes,
        active: 0,
        idle_since: f.idle_since,
        logging: false,
        query: f.query,
        resumed_by: f.resumed_by,
    })
}

fn read_binding(ledger: &Ledger, key: &[u8]) -> Result<Option<KeyBinding>> {
    match ledger.store().get(CF_PARTY_KEYS, key)? {
        None => Ok(None),
        Some(b) => Ok(Some(borsh::from_slice(&b).map_err(|_| corrupt("party_keys"))?)),
    }
}

fn read_party(ledger: &Ledger, code: &liutong_core::CreditCode) -> Result<Party> {
    let b = ledger
        .store()
        .get(CF_PARTIES, code.as_str().as_bytes())?
        .ok_or_else(|| corrupt("parties"))?;
    borsh::from_slice(&b).map_err(|_| corrupt("parties"))
}

fn corrupt(cf: &str) -> Error {
    Error::Ledger(liutong_ledger::Error::Corrupt(format!("{cf}: unreadable entry")))
}

/// Keeps a registered file's chunk hash list (made in the same pass as its
/// commitment) in the home, stamped with the file's size and modification
/// time, so the first delivery does not read the file twice.
pub fn keep_hash_list(home: &Home, dataset: &DatasetId, version: u32, file: &Path, hashes: &[Digest]) -> Result<()> {
    let meta = std::fs::metadata(file).map_err(|e| Error::Io(format!("{}: {e}", file.display())))?;
    write_cache(home, dataset, version, &meta, hashes)
}

fn cache_path(home: &Home, dataset: &DatasetId, version: u32) -> PathBuf {
    home.dir().join("chunks").join(format!("{dataset}-{version}.hashes"))
}

fn write_cache(
    home: &Home,
    dataset: &DatasetId,
    version: u32,
    meta: &std::fs::Metadata,
    hashes: &[Digest],
) -> Result<()> {
    let mut out = Vec::with_capacity(16 + hashes.len() * 32);
    out.extend(modified_ns(meta).to_be_bytes());
    out.extend(meta.len().to_be_bytes());
    for h in hashes {
        out.extend_from_slice(h.as_bytes());
    }
    let cache = cache_path(home, dataset, version);
    std::fs::create_dir_all(cache.parent().unwrap_or(home.dir())).map_err(|e| Error::Io(e.to_string()))?;
    write_atomically(&cache, &out, false)
}

/// The chunk hash list of a source file: from the cache in the home when
/// the file's size and modification time are the ones it was made for,
/// otherwise by reading the file again. Either way its root must be the
/// committed one, or the provider refuses to serve (`delivery.source_changed`).
fn hash_list(
    home: &Home,
    dataset: &DatasetId,
    version: u32,
    source: &SourceFile,
    commitment: &Commitment,
) -> Result<Vec<Digest>> {
    let changed = |why: String| -> Error {
        Refusal::new(
            "delivery.source_changed",
            format!(
                "{} no longer matches dataset {dataset} version {version} as registered ({why}); register it as a new version",
                source.path.display()
            ),
        )
        .into()
    };
    let meta = std::fs::metadata(&source.path).map_err(|e| changed(e.to_string()))?;
    if meta.len() != commitment.size {
        return Err(changed(format!("{} bytes, not {}", meta.len(), commitment.size)));
    }
    let cache = cache_path(home, dataset, version);
    if let Ok(bytes) = std::fs::read(&cache) {
        if let Some(hashes) = parse_cache(&bytes, modified_ns(&meta), meta.len()) {
            if liutong_catalog::chunk_root(&hashes) == commitment.chunk_root {
                return Ok(hashes);
            }
        }
    }
    let (hashes, c) = file_chunk_hashes(&source.path, commitment.chunk_size).map_err(|e| changed(e.to_string()))?;
    if c.chunk_root != commitment.chunk_root {
        return Err(changed("its content differs".into()));
    }
    write_cache(home, dataset, version, &meta, &hashes)?;
    Ok(hashes)
}

fn modified_ns(meta: &std::fs::Metadata) -> u64 {
    meta.modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos() as u64)
}

fn parse_cache(bytes: &[u8], stamp: u64, size: u64) -> Option<Vec<Digest>> {
    let (head, rest) = bytes.split_at_checked(16)?;
    if head[..8] != stamp.to_be_bytes() || head[8..] != size.to_be_bytes() || !rest.len().is_multiple_of(32) {
        return None;
    }
    Some(
        rest.chunks_exact(32)
            .map(|c| Digest(c.try_into().expect("32-byte chunks")))
            .collect(),
    )
}

/// The sending end of a sealed stream, on a blocking thread: each frame
/// waits at most `timeout` for the connection to take it.
pub struct FrameSender {
    tx: tokio::sync::mpsc::Sender<std::io::Result<Bytes>>,
    runtime: tokio::runtime::Handle,
    timeout: Duration,
}

/// The receiving end, which the connection reads.
pub type Frames = tokio::sync::mpsc::Receiver<std::io::Result<Bytes>>;

impl FrameSender {
    /// Sends one item, blocking this (blocking-pool) thread at most the
    /// write timeout: a consumer that stops reading is cut off rather than
    /// holding the thread and the stream's buffers.
    fn send(&self, item: std::io::Result<Bytes>) -> Result<()> {
        match self
            .runtime
            .block_on(tokio::time::timeout(self.timeout, self.tx.send(item)))
        {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(Error::Io("the consumer went away".into())),
            Err(_) => Err(Error::Io(format!(
                "the consumer took no frame for {} s; the stream is cut",
                self.timeout.as_secs()
            ))),
        }
    }
}

/// Runs `send` on a blocking thread, at most [`IN_FLIGHT`] frames ahead of
/// the connection; an error ends the stream with it (the consumer sees a
/// cut stream, the node logs why).
fn spawn_stream(
    what: &'static str,
    timeout: Duration,
    send: impl FnOnce(&FrameSender) -> Result<()> + Send + 'static,
) -> Frames {
    let (tx, rx) = tokio::sync::mpsc::channel(IN_FLIGHT);
    let sender = FrameSender {
        tx,
        runtime: tokio::runtime::Handle::current(),
        timeout,
    };
    tokio::task::spawn_blocking(move || {
        if let Err(e) = send(&sender) {
            tracing::warn!(error = %e, "{what} stream ended early");
            let _ = sender.tx.try_send(Err(std::io::Error::other(e.to_string())));
        }
    });
    rx
}

/// The stream's first bytes: the magic and the signed header.
fn send_head(tx: &FrameSender, header: &SignedHeader) -> Result<()> {
    let mut head = STREAM_MAGIC.to_vec();
    head.extend(encode_canonical(header));
    tx.send(Ok(Bytes::from(head)))
}

/// A stream being served; when it goes (sent, failed or never started),
/// the delivery is marked idle with what was served.
struct Active {
    provider: Arc<Provider>,
    delivery: Digest,
    served_to: u64,
}

impl Drop for Active {
    fn drop(&mut self) {
        self.provider.stream_ended(&self.delivery, self.served_to);
    }
}

/// One authorized stream, ready to send.
pub struct Delivery {
    active: Active,
    sealer: liutong_core::stream::Sealer,
    header: SignedHeader,
    source: SourceFile,
    commitment: Commitment,
    hashes: Vec<Digest>,
    from_chunk: u64,
}

impl Delivery {
    /// The stream: the magic and the signed header, then sealed frames,
    /// produced on a blocking thread a few frames ahead of the connection.
    /// A consumer that goes away stops the reader.
    pub fn into_stream(mut self) -> Frames {
        let timeout = self.active.provider.queries.write_timeout;
        spawn_stream("delivery", timeout, move |tx| self.send_frames(tx))
    }

    /// Sends every frame, recording progress as it goes.
    fn send_frames(&mut self, tx: &FrameSender) -> Result<()> {
        send_head(tx, &self.header)?;
        let chunks = self.commitment.chunks();
        let cs = u64::from(self.commitment.chunk_size);
        let size = self.commitment.size;
        let list: Vec<u8> = self.hashes.iter().flat_map(|h| h.as_bytes().to_vec()).collect();
        let only = self.from_chunk == chunks;
        let list_len = list.len() as u64;
        tx.send(Ok(Bytes::from(frame(&self.sealer.seal(0, only, &list)?))))?;
        let mut served = (self.from_chunk * cs).min(size);
        let (provider, delivery) = (self.active.provider.clone(), self.active.delivery);
        provider.progress(&delivery, served, list_len);
        self.active.served_to = served;
        let mut file = std::fs::File::open(&self.source.path).map_err(|e| Error::Io(e.to_string()))?;
        file.seek(SeekFrom::Start(served))
            .map_err(|e| Error::Io(e.to_string()))?;
        for i in self.from_chunk..chunks {
            let want = (size - i * cs).min(cs) as usize;
            // One buffer per frame, handed to the connection as is: the
            // length, the chunk sealed where it was read, its tag. Buffers
            // come back from the connection (see `Lent`); every byte of the
            // frame is written below, so a reused one needs no clearing.
            let mut buf = lock(&provider.frames).pop().unwrap_or_default();
            buf.resize(4 + want + TAG_LEN, 0);
            file.read_exact(&mut buf[4..4 + want])
                .map_err(|e| Error::Io(format!("reading {}: {e}", self.source.path.display())))?;
            let index = u32::try_from(i + 1).map_err(|_| Error::Io("more than 2^32 chunks".into()))?;
            let tag = self
                .sealer
                .seal_in_place(index, i + 1 == chunks, &mut buf[4..4 + want])?;
            buf[4 + want..].copy_from_slice(&tag);
            buf[..4].copy_from_slice(&((want + TAG_LEN) as u32).to_be_bytes());
            let lent = Lent {
                buf,
                pool: provider.frames.clone(),
            };
            tx.send(Ok(Bytes::from_owner(lent)))?;
            served += want as u64;
            provider.progress(&delivery, served, want as u64);
            self.active.served_to = served;
        }
        Ok(())
    }
}
