//! Datasets on the ledger: a provider registers a descriptor (never the
//! data), registers new versions under the same id, and delists it. Every node
//! keeps a search index over its own copy of the state, in the same write
//! batch as the descriptors, so search needs no other service.

use crate::machine::{active_signer, read, CF_CATALOG_INDEX, CF_DATASETS, CF_DATASET_VERSIONS};
use crate::party::{Party, Role};
use borsh::{BorshDeserialize, BorshSerialize};
use liutong_catalog::{check_name, search::tokens, DatasetId, DatasetKind, Description};
use liutong_core::{CreditCode, PublicKey, Timestamp};
use liutong_ledger::{Applied, BlockContext, Overlay, Record, Rejection, Store, TxId};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// `dataset.register`: a new dataset, version 1.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct RegisterDataset {
    /// The provider's name for it (`[a-z0-9._-]`, unique per provider); the id derives from it.
    pub name: String,
    pub description: Description,
}

/// `dataset.update`: a new version (new content) under the same id.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct UpdateDataset {
    pub dataset: DatasetId,
    pub description: Description,
}

/// `dataset.delist`: no new grants; existing ones keep their terms.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct DelistDataset {
    pub dataset: DatasetId,
    pub reason: String,
    /// Also revoke every active grant (and reject every open request) of the dataset.
    pub revoke_existing: bool,
}

pub const MAX_REASON: usize = 500;

#[derive(
    Clone, Copy, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
#[borsh(use_discriminant = true)]
pub enum DatasetStatus {
    Listed = 0,
    Delisted = 1,
}

#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Delisting {
    pub height: u64,
    pub timestamp: Timestamp,
    pub reason: String,
}

/// A dataset as the ledger state holds it: its current version's description
/// and its standing.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DatasetRecord {
    #[schema(value_type = String, example = "3f0c9a1e5b7d2c4486a0e1f2d3c4b5a6")]
    pub id: DatasetId,
    pub name: String,
    #[schema(value_type = String)]
    pub provider: CreditCode,
    pub provider_name: String,
    pub status: DatasetStatus,
    /// The current version (1 at registration).
    pub version: u32,
    /// The current version's description: title, description, tags, kind,
    /// media type, table shape, content commitment.
    #[schema(value_type = Object)]
    pub description: Description,
    pub registered_height: u64,
    pub registered_at: Timestamp,
    pub updated_height: u64,
    pub updated_at: Timestamp,
    pub delisted: Option<Delisting>,
}

/// One version of a dataset, kept for good: grants and deliveries name versions.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DatasetVersion {
    #[schema(value_type = String)]
    pub dataset: DatasetId,
    pub version: u32,
    #[schema(value_type = Object)]
    pub description: Description,
    #[schema(value_type = String)]
    pub tx_id: TxId,
    pub height: u64,
    pub timestamp: Timestamp,
}

type Outcome = Result<Applied, Rejection>;

fn rejected(e: liutong_catalog::Error) -> Rejection {
    Rejection::new(e.code(), e.to_string())
}

/// The signer, refused unless it is an active party with the provider role.
pub(crate) fn provider(state: &Overlay<'_>, key: &PublicKey) -> Result<std::sync::Arc<Party>, Rejection> {
    let party = active_signer(state, key)?;
    if !party.profile.roles.contains(&Role::Provider) {
        return Err(Rejection::new(
            "dataset.not_provider",
            format!("party {} does not have the provider role", party.profile.credit_code),
        ));
    }
    Ok(party)
}

pub(crate) fn read_dataset(state: &Overlay<'_>, id: &DatasetId) -> Result<Option<DatasetRecord>, Rejection> {
    read(state, CF_DATASETS, &id.0)
}

/// The dataset `id`, refused unless it exists, `party` provides it, and it is listed.
pub(crate) fn own_listed(state: &Overlay<'_>, id: &DatasetId, party: &Party) -> Result<DatasetRecord, Rejection> {
    let record =
        read_dataset(state, id)?.ok_or_else(|| Rejection::new("dataset.unknown", format!("no dataset {id}")))?;
    if record.provider != party.profile.credit_code {
        return Err(Rejection::new(
            "dataset.not_owner",
            format!(
                "dataset {id} is provided by {}, not {}",
                record.provider, party.profile.credit_code
            ),
        ));
    }
    if record.status == DatasetStatus::Delisted {
        return Err(Rejection::new("dataset.delisted", format!("dataset {id} is delisted")));
    }
    Ok(record)
}

pub(crate) fn register(
    body: RegisterDataset,
    signer: &PublicKey,
    id: &TxId,
    ctx: &BlockContext,
    chunk_size: u32,
    state: &mut Overlay<'_>,
) -> Outcome {
    let party = provider(state, signer)?;
    check_name(&body.name).map_err(rejected)?;
    body.description.validate(chunk_size).map_err(rejected)?;
    let dataset = DatasetId::of(&party.profile.credit_code, &body.name);
    if read_dataset(state, &dataset)?.is_some() {
        return Err(Rejection::new(
            "dataset.exists",
            format!(
                "{} already has a dataset named {:?} ({dataset}); register a new version with dataset update",
                party.profile.credit_code, body.name
            ),
        ));
    }
    let record = DatasetRecord {
        id: dataset,
        name: body.name,
        provider: party.profile.credit_code.clone(),
        provider_name: party.profile.legal_name.clone(),
        status: DatasetStatus::Listed,
        version: 1,
        description: body.description,
        registered_height: ctx.height,
        registered_at: ctx.timestamp,
        updated_height: ctx.height,
        updated_at: ctx.timestamp,
        delisted: None,
    };
    publish_version(state, &record, id, ctx)
}

pub(crate) fn update(
    body: UpdateDataset,
    signer: &PublicKey,
    id: &TxId,
    ctx: &BlockContext,
    chunk_size: u32,
    state: &mut Overlay<'_>,
) -> Outcome {
    let party = provider(state, signer)?;
    let mut record = own_listed(state, &body.dataset, &party)?;
    body.description.validate(chunk_size).map_err(rejected)?;
    if body.description.commitment == record.description.commitment {
        return Err(Rejection::new(
            "dataset.same_content",
            format!(
                "version {} of dataset {} already has this content; a new version needs new content",
                record.version, record.id
            ),
        ));
    }
    if body.description.kind != record.description.kind {
        return Err(Rejection::new(
            "dataset.kind_changed",
            format!(
                "dataset {} is a {}; a new version cannot make it a {}",
                record.id,
                record.description.kind.as_str(),
                body.description.kind.as_str()
            ),
        ));
    }
    index(state, &record, -1)?;
    record.version += 1;
    record.description = body.description;
    record.updated_height = ctx.height;
    record.updated_at = ctx.timestamp;
    publish_version(state, &record, id, ctx)
}

pub(crate) fn delist(
    body: DelistDataset,
    signer: &PublicKey,
    id: &TxId,
    ctx: &BlockContext,
    state: &mut Overlay<'_>,
) -> Outcome {
    let party = provider(state, signer)?;
    let mut record = own_listed(state, &body.dataset, &party)?;
    if body.reason.len() > MAX_REASON || body.reason.chars().any(char::is_control) {
        return Err(Rejection::new(
            "dataset.bad_reason",
            format!("a reason is at most {MAX_REASON} bytes without control characters"),
        ));
    }
    if body.revoke_existing {
        crate::grants::revoke_all(&record.id, id, ctx, state)?;
    }
    record.status = DatasetStatus::Delisted;
    record.updated_height = ctx.height;
    record.updated_at = ctx.timestamp;
    record.delisted = Some(Delisting {
        height: ctx.height,
        timestamp: ctx.timestamp,
        reason: body.reason,
    });
    put_dataset(state, &record);
    Ok(Applied::Committed(Record::new(record)))
}

/// Stores `record` as its current version: the version, the record, its postings.
fn publish_version(state: &mut Overlay<'_>, record: &DatasetRecord, id: &TxId, ctx: &BlockContext) -> Outcome {
    index(state, record, 1)?;
    put_version(state, record, id, ctx);
    put_dataset(state, record);
    Ok(Applied::Committed(Record::new(record.clone())))
}

fn put_dataset(state: &mut Overlay<'_>, record: &DatasetRecord) {
    state.put(
        CF_DATASETS,
        record.id.0.to_vec(),
        borsh::to_vec(record).expect("borsh into a Vec cannot fail"),
    );
}

pub(crate) fn version_key(id: &DatasetId, version: u32) -> Vec<u8> {
    let mut k = id.0.to_vec();
    k.extend(version.to_be_bytes());
    k
}

fn put_version(state: &mut Overlay<'_>, record: &DatasetRecord, id: &TxId, ctx: &BlockContext) {
    let v = DatasetVersion {
        dataset: record.id,
        version: record.version,
        description: record.description.clone(),
        tx_id: *id,
        height: ctx.height,
        timestamp: ctx.timestamp,
    };
    state.put(
        CF_DATASET_VERSIONS,
        version_key(&record.id, record.version),
        borsh::to_vec(&v).expect("borsh into a Vec cannot fail"),
    );
}

// The search index, column family `catalog_index`:
//   term ‖ 0x00 ‖ dataset id  → (empty)     a posting
//   '#'  ‖ term               → u64 BE      how many postings the term has
// Terms: `w:<word>` (title, description and tags, tokenized), `t:<tag>`,
// `p:<provider code>`, `k:<kind>`. Delisted datasets stay indexed (a search
// may ask for them); their record says they are delisted.

fn terms(record: &DatasetRecord) -> BTreeSet<String> {
    let d = &record.description;
    let mut out: BTreeSet<String> = tokens(&d.title)
        .into_iter()
        .chain(tokens(&d.description))
        .chain(d.tags.iter().flat_map(|t| tokens(t)))
        .map(|w| format!("w:{w}"))
        .collect();
    out.extend(d.tags.iter().map(|t| format!("t:{t}")));
    out.insert(format!("p:{}", record.provider));
    out.insert(format!("k:{}", d.kind.as_str()));
    out
}

fn posting_key(term: &str, id: &DatasetId) -> Vec<u8> {
    let mut k = Vec::with_capacity(term.len() + 17);
    k.extend(term.as_bytes());
    k.push(0);
    k.extend(id.0);
    k
}

fn count_key(term: &str) -> Vec<u8> {
    let mut k = vec![b'#'];
    k.extend(term.as_bytes());
    k
}

fn read_count(bytes: Option<Vec<u8>>) -> u64 {
    bytes
        .and_then(|b| <[u8; 8]>::try_from(b.as_slice()).ok())
        .map_or(0, u64::from_be_bytes)
}

/// Adds (`delta` = 1) or removes (-1) `record`'s postings.
fn index(state: &mut Overlay<'_>, record: &DatasetRecord, delta: i64) -> Result<(), Rejection> {
    for term in terms(record) {
        let ck = count_key(&term);
        let count = read_count(state.get(CF_CATALOG_INDEX, &ck).map_err(crate::machine::store_error)?);
        let count = count.saturating_add_signed(delta);
        if count == 0 {
            state.delete(CF_CATALOG_INDEX, ck);
        } else {
            state.put(CF_CATALOG_INDEX, ck, count.to_be_bytes().to_vec());
        }
        if delta > 0 {
            state.put(CF_CATALOG_INDEX, posting_key(&term, &record.id), Vec::new());
        } else {
            state.delete(CF_CATALOG_INDEX, posting_key(&term, &record.id));
        }
    }
    Ok(())
}

/// A catalog search. Every condition must hold. The server reads it from the
/// query string; the client writes it there.
#[derive(Clone, Debug, Default, Serialize, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct SearchQuery {
    /// Words to find in titles, descriptions and tags (all of them).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub q: Option<String>,
    /// Only this provider's datasets (credit code).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    /// `table`, `file` or `document`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Only datasets with this tag.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    /// Include delisted datasets.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub include_delisted: bool,
    /// Page size, 1 to 500 (default 50).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<usize>,
    /// Continue after this dataset id (the previous page's `next`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub after: Option<String>,
}

pub const MAX_PAGE: usize = 500;

/// Most candidates one request examines. A query whose terms are each common
/// but rarely together would otherwise walk a long posting list; instead the
/// page ends early (fewer results than `limit`) with `next` set, and the
/// client continues from there. This bounds every request's latency.
pub const SCAN_BUDGET: usize = 4096;

/// One page of results, in dataset id order; `next` continues it. A page may
/// hold fewer than `limit` results and still have a `next`: the scan budget
/// ran out first (see [`SCAN_BUDGET`]).
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SearchPage {
    pub datasets: Vec<DatasetRecord>,
    pub next: Option<String>,
}

/// Runs `query` on a node's committed state.
pub fn search(store: &Store, query: &SearchQuery) -> crate::Result<SearchPage> {
    let limit = query.limit.unwrap_or(50);
    if limit == 0 || limit > MAX_PAGE {
        return Err(crate::Error::BadRequest(format!("limit must be 1 to {MAX_PAGE}")));
    }
    let after: Option<DatasetId> = match &query.after {
        Some(a) => Some(
            a.parse()
                .map_err(|e: liutong_catalog::Error| crate::Error::BadRequest(e.to_string()))?,
        ),
        None => None,
    };
    let mut wanted: BTreeSet<String> = query
        .q
        .as_deref()
        .map(|q| tokens(q).into_iter().map(|w| format!("w:{w}")).collect())
        .unwrap_or_default();
    if let Some(p) = &query.provider {
        let code = CreditCode::parse(p)?;
        wanted.insert(format!("p:{code}"));
    }
    if let Some(k) = &query.kind {
        let kind: DatasetKind = k
            .parse()
            .map_err(|e: liutong_catalog::Error| crate::Error::BadRequest(e.to_string()))?;
        wanted.insert(format!("k:{}", kind.as_str()));
    }
    if let Some(t) = &query.tag {
        wanted.insert(format!("t:{}", t.trim().to_lowercase()));
    }
    let keep = |r: &DatasetRecord| query.include_delisted || r.status == DatasetStatus::Listed;
    let mut found = Vec::new();
    let mut scanned = 0usize;
    // Where a page cut short by the budget resumes.
    let mut resume: Option<DatasetId> = None;
    // Candidates come in id order: every dataset, or the postings of the
    // rarest wanted term (the other terms are checked by point look-ups).
    let (cf, prefix, others) = if wanted.is_empty() {
        (CF_DATASETS, Vec::new(), Vec::new())
    } else {
        let mut counts = Vec::with_capacity(wanted.len());
        for term in &wanted {
            counts.push((read_count(store.get(CF_CATALOG_INDEX, &count_key(term))?), term));
        }
        counts.sort();
        if counts[0].0 == 0 {
            return Ok(SearchPage {
                datasets: Vec::new(),
                next: None,
            });
        }
        let mut prefix = counts[0].1.as_bytes().to_vec();
        prefix.push(0);
        let others: Vec<&String> = counts[1..].iter().map(|(_, t)| *t).collect();
        (CF_CATALOG_INDEX, prefix, others)
    };
    walk(store, cf, &prefix, after.as_ref(), |id, value| {
        scanned += 1;
        if scanned > SCAN_BUDGET {
            return Ok(false);
        }
        resume = Some(id);
        for t in &others {
            if store.get(CF_CATALOG_INDEX, &posting_key(t, &id))?.is_none() {
                return Ok(true);
            }
        }
        let r: DatasetRecord = if cf == CF_DATASETS {
            decode(value)?
        } else {
            let bytes = store
                .get(CF_DATASETS, &id.0)?
                .ok_or_else(|| corrupt("a posting names a missing dataset"))?;
            decode(&bytes)?
        };
        if keep(&r) {
            found.push(r);
        }
        Ok(found.len() < limit)
    })?;
    let next = if found.len() == limit {
        Some(found[limit - 1].id.to_string())
    } else if scanned > SCAN_BUDGET {
        resume.map(|id| id.to_string())
    } else {
        None
    };
    Ok(SearchPage { datasets: found, next })
}

/// Calls `visit(id, value)` for the entries of `cf` whose key is `prefix ‖ id`,
/// in key order, starting after `after`, until it returns false.
fn walk(
    store: &Store,
    cf: &str,
    prefix: &[u8],
    after: Option<&DatasetId>,
    mut visit: impl FnMut(DatasetId, &[u8]) -> crate::Result<bool>,
) -> crate::Result<()> {
    const PAGE: usize = 256;
    let mut from = match after {
        Some(a) => next_key(&[prefix, &a.0[..]].concat()),
        None => prefix.to_vec(),
    };
    loop {
        let rows = store.scan_from(cf, &from, PAGE)?;
        for (k, v) in &rows {
            let Some(id) = k.strip_prefix(prefix) else {
                return Ok(());
            };
            let id = DatasetId(id.try_into().map_err(|_| corrupt("a key is not prefix ‖ dataset id"))?);
            if !visit(id, v)? {
                return Ok(());
            }
        }
        match rows.last() {
            Some((last, _)) if rows.len() == PAGE => from = next_key(last),
            _ => return Ok(()),
        }
    }
}

/// The smallest key after `k`: `k ‖ 0x00`.
fn next_key(k: &[u8]) -> Vec<u8> {
    let mut n = k.to_vec();
    n.push(0);
    n
}

fn corrupt(what: &str) -> crate::Error {
    crate::Error::Ledger(liutong_ledger::Error::Corrupt(format!("catalog index: {what}")))
}

fn decode<T: BorshDeserialize>(bytes: &[u8]) -> crate::Result<T> {
    borsh::from_slice(bytes).map_err(|e| corrupt(&format!("unreadable record: {e}")))
}

/// A dataset and one of its versions, from a node's committed state.
pub fn dataset(store: &Store, id: &DatasetId) -> crate::Result<DatasetRecord> {
    let bytes = store
        .get(CF_DATASETS, &id.0)?
        .ok_or_else(|| crate::Error::Ledger(liutong_ledger::Error::NotFound(format!("dataset {id}"))))?;
    decode(&bytes)
}

pub fn version(store: &Store, id: &DatasetId, version: u32) -> crate::Result<DatasetVersion> {
    let bytes = store
        .get(CF_DATASET_VERSIONS, &version_key(id, version))?
        .ok_or_else(|| {
            crate::Error::Ledger(liutong_ledger::Error::NotFound(format!(
                "version {version} of dataset {id}"
            )))
        })?;
    decode(&bytes)
}
