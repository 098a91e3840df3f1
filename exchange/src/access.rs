//! The on-chain access log: one entry per delivery, written by the
//! provider's node, with the consumer's signed request inside and, when it
//! came back in time, the consumer's signed receipt.
//!
//! An entry is `acknowledged` (the consumer verified the content and signed
//! for it), `disputed` (the consumer signed that the content did not match
//! the commitment) or `unacknowledged` (no receipt came within the
//! provider's receipt timeout: the provider's word alone). The state machine
//! checks every signature inside and that the delivery's use was counted
//! (`grant.use` with the same request digest), and writes at most one entry
//! per delivery.

use crate::datasets::{version_key, DatasetVersion};
use crate::delivery::{SignedReceipt, SignedRequest, Verdict, MAX_RECEIPT_REASON};
use crate::grants::GrantId;
use crate::machine::{read, CF_ACCESS_INDEX, CF_ACCESS_LOG, CF_DATASET_VERSIONS, CF_PARTY_KEYS, CF_USES};
use crate::party::KeyBinding;
use borsh::{BorshDeserialize, BorshSerialize};
use liutong_catalog::DatasetId;
use liutong_core::{CreditCode, Digest, PublicKey, Timestamp};
use liutong_ledger::{Applied, BlockContext, Overlay, Record, Rejection, Store, TxId};
use liutong_policies::Action;
use serde::{Deserialize, Serialize};

/// `access.log`: what the provider's node submits when a delivery ends.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct LogAccess {
    /// The consumer's first signed request of the delivery.
    pub request: SignedRequest,
    /// Plaintext bytes served (over every resumption).
    pub bytes: u64,
    /// When serving started, at the provider's clock.
    pub served_at: Timestamp,
    /// The consumer's receipt, if one came back in time.
    pub receipt: Option<SignedReceipt>,
    /// For a query: what it returned and what was enforced.
    pub query: Option<QueryServed>,
}

/// What a query served, as the provider reports it.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct QueryServed {
    /// SHA-256 of the result as sent: an Arrow IPC stream (of the empty
    /// string for a query that failed).
    pub result: Digest,
    pub rows: u64,
    /// What the rewrite enforced, one line per term.
    pub enforced: Vec<String>,
    /// For a query that ran and failed: the code it failed with (one of
    /// [`RUN_FAILURES`]). It counted as a use all the same.
    #[serde(default)]
    pub failure: Option<String>,
}

/// The codes a query that ran can fail with: each is a use, logged with it.
pub const RUN_FAILURES: [&str; 4] = [
    "query.failed",
    "query.timeout",
    "query.memory_limit",
    "query.result_too_large",
];

/// Most lines of enforcement an entry records, and their longest.
pub const MAX_ENFORCED: usize = 32;
pub const MAX_ENFORCED_LINE: usize = 4096;

/// A query's part of an access-log entry.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize, utoipa::ToSchema)]
pub struct QueryEntry {
    /// SHA-256 of the SQL text the consumer signed for.
    #[schema(value_type = String)]
    pub query: Digest,
    pub rows: u64,
    /// What the provider's node enforced: columns, row filter, masks,
    /// aggregation, row cap.
    pub enforced: Vec<String>,
    /// For a query that ran and failed: the code it failed with.
    pub failure: Option<String>,
}

/// A signed request as JSON, for transaction views.
pub fn describe_request(signed: &SignedRequest) -> serde_json::Value {
    let r = &signed.request;
    serde_json::json!({
        "request": signed.digest(),
        "grant": (r.private.is_none()).then_some(r.grant),
        "dataset": r.dataset,
        "version": r.version,
        "action": r.action.as_str(),
        "consumer_key": signed.signer,
        "query": r.query,
        "private": r.private.as_ref().map(|c| serde_json::json!({
            "root": c.root,
            "nullifier": c.nullifier,
            "escrow_tag": c.escrow_tag,
            "time": c.time,
            "proof": signed.proof.as_deref().map(hex::encode),
        })),
    })
}

impl LogAccess {
    /// The body as JSON, for transaction views.
    pub fn describe(&self) -> serde_json::Value {
        let r = &self.request.request;
        serde_json::json!({
            "request": self.request.digest(),
            "grant": (r.private.is_none()).then_some(r.grant),
            "dataset": r.dataset,
            "version": r.version,
            "action": r.action.as_str(),
            "consumer_key": self.request.signer,
            "private": r.private.is_some(),
            "bytes": self.bytes,
            "served_at": self.served_at,
            "query": self.query.as_ref().map(|q| serde_json::json!({
                "query": r.query,
                "result": q.result,
                "rows": q.rows,
                "enforced": q.enforced,
                "failure": q.failure,
            })),
            "receipt": self.receipt.as_ref().map(|s| serde_json::json!({
                "verdict": s.receipt.verdict,
                "content": s.receipt.content,
                "bytes": s.receipt.bytes,
                "time": s.receipt.time,
                "reason": s.receipt.reason,
                "signer": s.signer,
            })),
        })
    }
}

/// What a counted use served, keyed by the request's digest.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct UseRecord {
    pub grant: GrantId,
    pub height: u64,
    pub timestamp: Timestamp,
}

#[derive(
    Clone, Copy, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
#[borsh(use_discriminant = true)]
pub enum AccessOutcome {
    Acknowledged = 0,
    Disputed = 1,
    Unacknowledged = 2,
    /// A query that ran and failed (it counted as a use; nothing was sent).
    Failed = 3,
}

impl AccessOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            AccessOutcome::Acknowledged => "acknowledged",
            AccessOutcome::Disputed => "disputed",
            AccessOutcome::Unacknowledged => "unacknowledged",
            AccessOutcome::Failed => "failed",
        }
    }
}

/// The consumer's receipt as an entry shows it.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ReceiptEntry {
    /// verified or refused.
    pub verdict: String,
    #[schema(value_type = String)]
    pub content: Digest,
    pub bytes: u64,
    pub time: Timestamp,
    pub reason: String,
    #[schema(value_type = String)]
    pub signer: PublicKey,
}

/// A private use's part of an access-log entry: everything anyone needs to
/// re-verify its proof (with the genesis's verifying key), and the escrow
/// opening sealed to the auditors. No grant, no consumer.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PrivateEntry {
    /// The public inputs in circuit order: root, dataset, action, time,
    /// request (the claim digest, reduced), nullifier, escrow tag, terms digest.
    #[schema(value_type = Vec<String>)]
    pub public_inputs: Vec<crate::private::FieldHex>,
    #[schema(value_type = String)]
    pub nullifier: crate::private::FieldHex,
    #[schema(value_type = String)]
    pub escrow_tag: crate::private::FieldHex,
    /// The Groth16 proof (compressed, 128 bytes) and its residue hint (385
    /// bytes, absent from proofs made without one), hex.
    pub proof: String,
    /// The one-time key that signed the request (and the receipt).
    #[schema(value_type = String)]
    pub request_key: PublicKey,
    pub openings: Vec<crate::private::SealedOpening>,
}

/// One access-log entry as stored and served.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AccessRecord {
    /// The delivery's identity: the digest of the consumer's first signed request.
    #[schema(value_type = String)]
    pub request: Digest,
    /// The grant; absent for a private use.
    #[schema(value_type = Option<String>)]
    pub grant: Option<GrantId>,
    #[schema(value_type = String)]
    pub dataset: DatasetId,
    pub version: u32,
    pub action: String,
    #[schema(value_type = String)]
    pub provider: CreditCode,
    /// The consumer; absent for a private use.
    #[schema(value_type = Option<String>)]
    pub consumer: Option<CreditCode>,
    /// What was served: the version's committed content (its chunk root)
    /// for a download, SHA-256 of the result (an Arrow IPC stream) for a query.
    #[schema(value_type = String)]
    pub result: Digest,
    pub bytes: u64,
    /// When serving started (provider's clock).
    pub served_at: Timestamp,
    pub outcome: AccessOutcome,
    pub receipt: Option<ReceiptEntry>,
    /// For a query: its digest, rows and what was enforced.
    pub query: Option<QueryEntry>,
    /// For a private use: its nullifier, public inputs and proof.
    pub private: Option<PrivateEntry>,
    /// The entry's transaction, block and block time.
    #[schema(value_type = String)]
    pub tx_id: TxId,
    pub height: u64,
    pub logged_at: Timestamp,
}

fn bad(code: &str, message: impl Into<String>) -> Rejection {
    Rejection::new(code, message.into())
}

/// Index keys: a tag (`g` grant, `d` dataset, `p` party, `a` all), what
/// the entry is listed under, the block's time and height (u64 BE each),
/// then the request digest. Block times never go backwards, so each listing
/// is in ledger order and a time range is one seek.
pub(crate) fn index_key(tag: u8, under: &[u8], time: Timestamp, height: u64, request: &Digest) -> Vec<u8> {
    let mut k = vec![tag];
    k.extend_from_slice(under);
    k.extend_from_slice(&time.to_be_bytes());
    k.extend_from_slice(&height.to_be_bytes());
    k.extend_from_slice(request.as_bytes());
    k
}

/// What follows a listing's prefix in an index key: time, height, digest.
pub(crate) const INDEX_TAIL: usize = 8 + 8 + 32;

/// The request digest at the end of an index key's tail.
pub(crate) fn tail_digest(tail: &[u8]) -> Option<Digest> {
    tail.get(16..INDEX_TAIL)
        .and_then(|b| <[u8; 32]>::try_from(b).ok())
        .map(Digest)
}

/// The prefix of a listing (see [`index_key`]).
pub fn listing_prefix(by: &AccessQuery) -> Vec<u8> {
    let (tag, under): (u8, Vec<u8>) = match by {
        AccessQuery::Grant(g) => (b'g', g.0.to_vec()),
        AccessQuery::Dataset(d) => (b'd', d.0.to_vec()),
        AccessQuery::Party(p) => (b'p', p.as_str().as_bytes().to_vec()),
        AccessQuery::All => (b'a', Vec::new()),
    };
    let mut k = vec![tag];
    k.extend(under);
    k
}

/// What an access-log listing is for.
#[derive(Clone, Debug)]
pub enum AccessQuery {
    Grant(GrantId),
    Dataset(DatasetId),
    /// As provider or consumer.
    Party(CreditCode),
    /// Every entry.
    All,
}

/// An entry and its index keys, as `access.log` writes them (and the
/// audit benchmark, which fills a store with synthetic entries).
pub(crate) fn entry_writes(record: &AccessRecord) -> Vec<(&'static str, Vec<u8>, Vec<u8>)> {
    let (t, h, d) = (record.logged_at, record.height, &record.request);
    let mut out = vec![(
        CF_ACCESS_LOG,
        d.as_bytes().to_vec(),
        borsh::to_vec(record).expect("borsh into a Vec cannot fail"),
    )];
    let mut keys = vec![
        index_key(b'a', &[], t, h, d),
        index_key(b'd', &record.dataset.0, t, h, d),
        index_key(b'p', record.provider.as_str().as_bytes(), t, h, d),
    ];
    if let Some(g) = &record.grant {
        keys.push(index_key(b'g', &g.0, t, h, d));
    }
    if let Some(c) = record.consumer.as_ref().filter(|c| **c != record.provider) {
        keys.push(index_key(b'p', c.as_str().as_bytes(), t, h, d));
    }
    out.extend(keys.into_iter().map(|k| (CF_ACCESS_INDEX, k, Vec::new())));
    out
}

/// `grant.use` bookkeeping: remembers which grant a request's use was
/// counted on, so the access log can require it and no request counts twice.
pub(crate) fn record_use(
    state: &mut Overlay<'_>,
    request: &Digest,
    grant: &GrantId,
    ctx: &BlockContext,
) -> Result<(), Rejection> {
    if state
        .get(CF_USES, request.as_bytes())
        .map_err(crate::machine::store_error)?
        .is_some()
    {
        return Err(bad(
            "use.duplicate",
            format!("a use was already counted for request {request}"),
        ));
    }
    let record = UseRecord {
        grant: *grant,
        height: ctx.height,
        timestamp: ctx.timestamp,
    };
    state.put(
        CF_USES,
        request.as_bytes().to_vec(),
        borsh::to_vec(&record).expect("borsh into a Vec cannot fail"),
    );
    Ok(())
}

/// `access.log`: only the grant's provider, only for a counted use, once.
pub(crate) fn log(
    body: LogAccess,
    signer: &PublicKey,
    chain_id: &str,
    id: &TxId,
    ctx: &BlockContext,
    state: &mut Overlay<'_>,
) -> Result<Applied, Rejection> {
    let r = &body.request.request;
    // Public: the grant's provider; private: the dataset's (the proof was
    // checked when the use was counted).
    let (grant, provider) = match &r.private {
        None => {
            let g = crate::grants::provider_grant(state, signer, &r.grant)?;
            let p = g.provider.clone();
            (Some(g), p)
        }
        Some(_) => {
            let party = crate::datasets::provider(state, signer)?;
            crate::datasets::own_listed(state, &r.dataset, &party)?;
            (None, party.profile.credit_code.clone())
        }
    };
    body.request
        .verify()
        .map_err(|e| bad("access.bad_request", format!("the consumer's request: {e}")))?;
    if r.chain_id != chain_id {
        return Err(bad(
            "access.bad_request",
            format!("the request is for chain {:?}", r.chain_id),
        ));
    }
    if r.resumes.is_some() {
        return Err(bad(
            "access.bad_request",
            "an entry names the delivery's first request, not a resumption",
        ));
    }
    let digest = body.request.digest();
    let used: UseRecord = read(state, CF_USES, digest.as_bytes())?.ok_or_else(|| {
        bad(
            "access.no_use",
            format!("no use was counted for request {digest}; a delivery starts with grant.use"),
        )
    })?;
    if used.grant != r.grant || grant.as_ref().is_some_and(|g| r.dataset != g.dataset) {
        return Err(bad(
            "access.bad_request",
            format!("request {digest} was counted on grant {}, not {}", used.grant, r.grant),
        ));
    }
    if state
        .get(CF_ACCESS_LOG, digest.as_bytes())
        .map_err(crate::machine::store_error)?
        .is_some()
    {
        return Err(bad(
            "access.duplicate",
            format!("delivery {digest} is already in the access log"),
        ));
    }
    let version: DatasetVersion =
        read(state, CF_DATASET_VERSIONS, &version_key(&r.dataset, r.version))?.ok_or_else(|| {
            bad(
                "access.bad_request",
                format!("dataset {} has no version {}", r.dataset, r.version),
            )
        })?;
    let commitment = &version.description.commitment;
    // What was served, and what a verified receipt must name.
    let (result, query) = match (r.action, &body.query, r.query) {
        (Action::Download, None, None) => {
            if body.bytes > commitment.size {
                return Err(bad(
                    "access.bad_entry",
                    format!("{} bytes served of a {}-byte version", body.bytes, commitment.size),
                ));
            }
            ((commitment.chunk_root, commitment.size), None)
        }
        (Action::Query, Some(q), Some(digest)) => {
            if q.enforced.len() > MAX_ENFORCED
                || q.enforced
                    .iter()
                    .any(|l| l.len() > MAX_ENFORCED_LINE || l.chars().any(char::is_control))
            {
                return Err(bad(
                    "access.bad_entry",
                    format!("at most {MAX_ENFORCED} enforcement lines of {MAX_ENFORCED_LINE} bytes without control characters"),
                ));
            }
            if let Some(code) = &q.failure {
                if !RUN_FAILURES.contains(&code.as_str()) {
                    return Err(bad(
                        "access.bad_entry",
                        format!("a failed query's code is one of {}", RUN_FAILURES.join(", ")),
                    ));
                }
                if body.receipt.is_some() || body.bytes != 0 || q.rows != 0 {
                    return Err(bad(
                        "access.bad_entry",
                        "a failed query sent nothing: no bytes, no rows, no receipt",
                    ));
                }
            }
            let entry = QueryEntry {
                query: digest,
                rows: q.rows,
                enforced: q.enforced.clone(),
                failure: q.failure.clone(),
            };
            ((q.result, body.bytes), Some(entry))
        }
        _ => {
            return Err(bad(
                "access.bad_entry",
                "a query's entry carries its query digest and result; a download's carries neither",
            ))
        }
    };
    let consumer = match &r.private {
        None => {
            let binding: KeyBinding = read(state, CF_PARTY_KEYS, body.request.signer.as_bytes())?
                .ok_or_else(|| bad("access.bad_request", "the request's signer belongs to no party"))?;
            Some(binding.party)
        }
        Some(_) => None,
    };
    let private = match &r.private {
        None => None,
        Some(claim) => {
            let statement = crate::private::statement(&body.request, claim)?;
            Some(PrivateEntry {
                public_inputs: statement.inputs().iter().map(crate::private::FieldHex::of).collect(),
                nullifier: claim.nullifier,
                escrow_tag: claim.escrow_tag,
                proof: hex::encode(body.request.proof.as_deref().unwrap_or_default()),
                request_key: body.request.signer,
                openings: claim.openings.clone(),
            })
        }
    };
    let failed = body.query.as_ref().is_some_and(|q| q.failure.is_some());
    let (outcome, receipt) = match &body.receipt {
        None if failed => (AccessOutcome::Failed, None),
        None => (AccessOutcome::Unacknowledged, None),
        Some(sr) => {
            let rc = &sr.receipt;
            sr.verify()
                .map_err(|e| bad("access.bad_receipt", format!("the consumer's receipt: {e}")))?;
            if sr.signer != body.request.signer {
                return Err(bad(
                    "access.bad_receipt",
                    "the receipt is not signed by the key that asked",
                ));
            }
            if rc.request != digest {
                return Err(bad(
                    "access.bad_receipt",
                    format!("the receipt is for delivery {}", rc.request),
                ));
            }
            if rc.reason.len() > MAX_RECEIPT_REASON || rc.reason.chars().any(char::is_control) {
                return Err(bad(
                    "access.bad_receipt",
                    format!("a receipt's reason is at most {MAX_RECEIPT_REASON} bytes without control characters"),
                ));
            }
            let outcome = match rc.verdict {
                Verdict::Verified => {
                    if (rc.content, rc.bytes) != result {
                        return Err(bad(
                            "access.bad_receipt",
                            "a verified receipt must name what was served (the committed content or the query's result) and its full size",
                        ));
                    }
                    AccessOutcome::Acknowledged
                }
                Verdict::Refused => AccessOutcome::Disputed,
            };
            let entry = ReceiptEntry {
                verdict: match rc.verdict {
                    Verdict::Verified => "verified",
                    Verdict::Refused => "refused",
                }
                .into(),
                content: rc.content,
                bytes: rc.bytes,
                time: rc.time,
                reason: rc.reason.clone(),
                signer: sr.signer,
            };
            (outcome, Some(entry))
        }
    };
    let record = AccessRecord {
        request: digest,
        grant: grant.as_ref().map(|g| g.id),
        dataset: r.dataset,
        version: r.version,
        action: r.action.as_str().into(),
        provider: provider.clone(),
        consumer: consumer.clone(),
        result: result.0,
        bytes: body.bytes,
        served_at: body.served_at,
        outcome,
        receipt,
        query,
        private,
        tx_id: *id,
        height: ctx.height,
        logged_at: ctx.timestamp,
    };
    for (cf, k, v) in entry_writes(&record) {
        state.put(cf, k, v);
    }
    Ok(Applied::Committed(Record::new(record)))
}

/// One entry by delivery (first request digest), from committed state.
pub fn entry(store: &Store, request: &Digest) -> crate::Result<Option<AccessRecord>> {
    match store.get(CF_ACCESS_LOG, request.as_bytes())? {
        None => Ok(None),
        Some(b) => Ok(Some(decode(&b)?)),
    }
}

/// Whether a use was counted for this request digest, from committed state.
pub fn use_of(store: &Store, request: &Digest) -> crate::Result<Option<UseRecord>> {
    match store.get(CF_USES, request.as_bytes())? {
        None => Ok(None),
        Some(b) => Ok(Some(decode(&b)?)),
    }
}

/// Most entries in one listing page.
pub const MAX_PAGE: usize = 1000;

/// A page of a listing, oldest first, after `cursor` (a previous page's `next`).
pub fn list(store: &Store, by: &AccessQuery, cursor: Option<&[u8]>, limit: usize) -> crate::Result<AccessPage> {
    let filter = match by {
        AccessQuery::Grant(g) => crate::audit::TraceFilter {
            grant: Some(*g),
            ..Default::default()
        },
        AccessQuery::Dataset(d) => crate::audit::TraceFilter {
            dataset: Some(*d),
            ..Default::default()
        },
        AccessQuery::Party(p) => crate::audit::TraceFilter {
            party: Some(p.clone()),
            ..Default::default()
        },
        AccessQuery::All => crate::audit::TraceFilter::default(),
    };
    crate::audit::trace(store, &filter, &crate::audit::Scope::All, cursor, limit)
}

#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AccessPage {
    pub entries: Vec<AccessRecord>,
    /// Pass as `cursor` for the next page; absent on the last.
    pub next: Option<String>,
}

pub(crate) fn corrupt() -> crate::Error {
    crate::Error::Ledger(liutong_ledger::Error::Corrupt("access log: unreadable entry".into()))
}

fn decode<T: BorshDeserialize>(bytes: &[u8]) -> crate::Result<T> {
    borsh::from_slice(bytes).map_err(|_| corrupt())
}
