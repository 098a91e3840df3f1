//! Offers and grants (usage-rights tokens) on the ledger.
//!
//! A provider attaches offers to a listed dataset: the widest terms it will
//! grant, approved automatically or by hand. A consumer requests a grant
//! against an offer with terms within it and one purpose; the provider
//! issues it (with the requested terms or narrower ones) or rejects it; the
//! provider may revoke it; a transferable grant may pass to another
//! consumer. Expiry and exhaustion follow from the terms and the use count
//! (uses are counted by deliveries and queries).

use crate::datasets::{own_listed, provider, read_dataset, DatasetStatus};
use crate::machine::{active_signer, read, read_party, CF_GRANTS, CF_GRANTS_BY_DATASET, CF_GRANTS_BY_PARTY, CF_OFFERS};
use crate::party::{Party, PartyStatus, Role};
use borsh::{BorshDeserialize, BorshSerialize};
use liutong_catalog::{DatasetId, DatasetKind};
use liutong_core::{CreditCode, PublicKey, Timestamp};
use liutong_ledger::{Applied, BlockContext, Overlay, Record, Rejection, Store, TxId};
use liutong_policies::{Author, RowFilters, Terms};
use serde::{Deserialize, Serialize};

pub const MAX_REASON: usize = 500;
/// Most offers one dataset may carry.
pub const MAX_OFFERS: u32 = 64;

#[derive(
    Clone, Copy, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
#[borsh(use_discriminant = true)]
pub enum Approval {
    /// A request within the offer is issued at once, by the ledger.
    Automatic = 0,
    /// The provider issues or rejects each request.
    Manual = 1,
}

/// `offer.add`.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct AddOffer {
    pub dataset: DatasetId,
    pub terms: Terms,
    pub approval: Approval,
}

/// `offer.withdraw`: no new requests; grants already made keep their terms.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct WithdrawOffer {
    pub dataset: DatasetId,
    pub offer: u32,
}

#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OfferRecord {
    #[schema(value_type = String)]
    pub dataset: DatasetId,
    /// 1 for a dataset's first offer.
    pub number: u32,
    #[schema(value_type = Object)]
    pub terms: Terms,
    pub approval: Approval,
    pub withdrawn: bool,
    pub height: u64,
}

/// A grant's id: the first 16 bytes of its request transaction's id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, BorshSerialize, BorshDeserialize)]
pub struct GrantId(pub [u8; 16]);

impl GrantId {
    /// What a private request names in place of a grant (its proof stands for it).
    pub const PRIVATE: GrantId = GrantId([0; 16]);

    pub fn of_request(tx: &TxId) -> GrantId {
        let mut id = [0u8; 16];
        id.copy_from_slice(&tx.as_bytes()[..16]);
        GrantId(id)
    }
}

impl std::fmt::Display for GrantId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(&hex::encode(self.0))
    }
}

impl std::str::FromStr for GrantId {
    type Err = crate::Error;
    fn from_str(s: &str) -> crate::Result<GrantId> {
        Ok(GrantId(liutong_core::from_hex_array::<16>("grant id", s.trim())?))
    }
}

impl Serialize for GrantId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for GrantId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        <String as Deserialize>::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// `grant.request`: terms within the offer, naming one purpose.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct RequestGrant {
    pub dataset: DatasetId,
    pub offer: u32,
    pub terms: Terms,
    /// Private mode: Poseidon(secret) of a secret only the requester knows
    /// (32 bytes, a BN254 scalar). The grant's uses are then proven, not named.
    pub private: Option<crate::private::FieldHex>,
}

/// `grant.issue`: the provider grants the request, with its terms or narrower ones.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct IssueGrant {
    pub grant: GrantId,
    /// `None`: the requested terms.
    pub terms: Option<Terms>,
}

/// `grant.reject` (a request) and `grant.revoke` (an active grant).
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct EndGrant {
    pub grant: GrantId,
    pub reason: String,
}

/// `grant.use`: the provider counts one use of a grant as its node starts
/// serving it (a delivery or a query), so a consumer cannot take the data and
/// leave the use uncounted. The terms are evaluated at the block's time.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct UseGrant {
    pub grant: GrantId,
    pub action: liutong_policies::Action,
    /// The digest of the consumer's signed request the use serves.
    pub request: liutong_core::Digest,
}

/// `grant.transfer`: the holder passes a transferable grant to another consumer.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct TransferGrant {
    pub grant: GrantId,
    pub to: String,
}

#[derive(
    Clone, Copy, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
#[borsh(use_discriminant = true)]
pub enum GrantStatus {
    Requested = 0,
    Active = 1,
    Rejected = 2,
    Revoked = 3,
}

/// One change of a grant, for its history.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize, utoipa::ToSchema)]
pub struct GrantEvent {
    /// requested, issued, rejected, revoked, transferred, dataset_delisted.
    pub event: String,
    pub height: u64,
    pub timestamp: Timestamp,
    #[schema(value_type = String)]
    pub tx_id: TxId,
    pub note: String,
}

#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize, utoipa::ToSchema)]
pub struct GrantRecord {
    #[schema(value_type = String)]
    pub id: GrantId,
    #[schema(value_type = String)]
    pub dataset: DatasetId,
    pub offer: u32,
    #[schema(value_type = String)]
    pub provider: CreditCode,
    /// The current holder (the requester, unless transferred).
    #[schema(value_type = String)]
    pub holder: CreditCode,
    pub status: GrantStatus,
    /// The requested terms until issued; then the granted ones. Their
    /// `row_filter` is the grant's own addition to the offer's filter.
    #[schema(value_type = Object)]
    pub terms: Terms,
    /// The row filters queries under the grant run under, by author: the
    /// offer's and any the provider issued the grant with (on the raw
    /// columns), and the consumer's own (on the columns it sees).
    #[schema(value_type = Object)]
    pub filters: RowFilters,
    /// Uses counted so far (by deliveries and queries; private uses are
    /// counted by their nullifiers instead, unlinked to the grant).
    pub uses: u64,
    pub history: Vec<GrantEvent>,
    /// Private mode: the secret's hash and, once active, the grant's leaf in
    /// the grant tree, its salt and commitment.
    pub private: Option<crate::private::PrivateGrant>,
}

impl GrantRecord {
    /// What the grant is at `now`: its status, or `expired` / `exhausted`
    /// for an active grant whose terms have run out.
    pub fn state_at(&self, now: Timestamp) -> &'static str {
        match self.status {
            GrantStatus::Requested => "requested",
            GrantStatus::Rejected => "rejected",
            GrantStatus::Revoked => "revoked",
            GrantStatus::Active if self.terms.not_after.is_some_and(|end| now >= end) => "expired",
            GrantStatus::Active if self.terms.max_uses.is_some_and(|m| self.uses >= m) => "exhausted",
            GrantStatus::Active => "active",
        }
    }
}

/// A grant as the API shows it: the record and what it is now.
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct GrantView {
    #[serde(flatten)]
    pub grant: GrantRecord,
    /// requested, active, expired, exhausted, rejected or revoked, at the node's clock.
    pub state: String,
}

impl GrantView {
    pub fn at(grant: GrantRecord, now: Timestamp) -> GrantView {
        let state = grant.state_at(now).to_string();
        GrantView { grant, state }
    }
}

type Outcome = Result<Applied, Rejection>;

fn policy(e: liutong_policies::Error) -> Rejection {
    Rejection::new(e.code(), e.to_string())
}

fn check_reason(reason: &str) -> Result<(), Rejection> {
    if reason.len() > MAX_REASON || reason.chars().any(char::is_control) {
        return Err(Rejection::new(
            "grant.bad_reason",
            format!("a reason is at most {MAX_REASON} bytes without control characters"),
        ));
    }
    Ok(())
}

fn offer_key(dataset: &DatasetId, number: u32) -> Vec<u8> {
    let mut k = dataset.0.to_vec();
    k.extend(number.to_be_bytes());
    k
}

fn put<T: BorshSerialize>(state: &mut Overlay<'_>, cf: &'static str, key: Vec<u8>, value: &T) {
    state.put(cf, key, borsh::to_vec(value).expect("borsh into a Vec cannot fail"));
}

/// Checks `terms` against the dataset they are for (its current schema) and
/// the consortium's purposes; answers the schema (a table's).
fn check_terms(
    terms: &Terms,
    dataset: &crate::datasets::DatasetRecord,
    purposes: &[String],
) -> Result<Option<arrow::datatypes::Schema>, Rejection> {
    let schema = match (&dataset.description.kind, &dataset.description.table) {
        (DatasetKind::Table, Some(shape)) => {
            Some(shape.to_arrow().map_err(|e| Rejection::new(e.code(), e.to_string()))?)
        }
        _ => None,
    };
    terms.validate(schema.as_ref(), purposes).map_err(policy)?;
    Ok(schema)
}

/// A grant's row filters under `offer`, its own written by `author`
/// (files have none: their terms allow no filter).
fn grant_filters(
    offer: &Terms,
    grant: &Terms,
    author: Author,
    schema: Option<&arrow::datatypes::Schema>,
) -> Result<RowFilters, Rejection> {
    match schema {
        Some(schema) => RowFilters::of_grant(offer, grant, author, schema).map_err(policy),
        None => Ok(RowFilters::of_offer(offer)),
    }
}

pub(crate) fn add_offer(
    body: AddOffer,
    signer: &PublicKey,
    ctx: &BlockContext,
    purposes: &[String],
    state: &mut Overlay<'_>,
) -> Outcome {
    let party = provider(state, signer)?;
    let dataset = own_listed(state, &body.dataset, &party)?;
    check_terms(&body.terms, &dataset, purposes)?;
    let mut number = 1;
    while let Some(other) = read::<OfferRecord>(state, CF_OFFERS, &offer_key(&body.dataset, number))? {
        // Withdrawn offers too: grants made under them keep their terms.
        body.terms.nests_with(&other.terms).map_err(policy)?;
        number += 1;
        if number > MAX_OFFERS {
            return Err(Rejection::new(
                "offer.too_many",
                format!("dataset {} already has {MAX_OFFERS} offers", body.dataset),
            ));
        }
    }
    let record = OfferRecord {
        dataset: body.dataset,
        number,
        terms: body.terms,
        approval: body.approval,
        withdrawn: false,
        height: ctx.height,
    };
    put(state, CF_OFFERS, offer_key(&body.dataset, number), &record);
    Ok(Applied::Committed(Record::new(record)))
}

fn read_offer(state: &Overlay<'_>, dataset: &DatasetId, number: u32) -> Result<OfferRecord, Rejection> {
    read(state, CF_OFFERS, &offer_key(dataset, number))?
        .ok_or_else(|| Rejection::new("offer.unknown", format!("dataset {dataset} has no offer {number}")))
}

pub(crate) fn withdraw_offer(body: WithdrawOffer, signer: &PublicKey, state: &mut Overlay<'_>) -> Outcome {
    let party = provider(state, signer)?;
    own_listed(state, &body.dataset, &party)?;
    let mut offer = read_offer(state, &body.dataset, body.offer)?;
    if offer.withdrawn {
        return Err(Rejection::new(
            "offer.withdrawn",
            format!("offer {} is already withdrawn", body.offer),
        ));
    }
    offer.withdrawn = true;
    put(state, CF_OFFERS, offer_key(&body.dataset, body.offer), &offer);
    Ok(Applied::Committed(Record::new(offer)))
}

fn event(name: &str, id: &TxId, ctx: &BlockContext, note: String) -> GrantEvent {
    GrantEvent {
        event: name.into(),
        height: ctx.height,
        timestamp: ctx.timestamp,
        tx_id: *id,
        note,
    }
}

fn put_grant(state: &mut Overlay<'_>, grant: &GrantRecord) {
    put(state, CF_GRANTS, grant.id.0.to_vec(), grant);
}

/// The signer as an active party with the consumer role.
fn consumer(state: &Overlay<'_>, key: &PublicKey) -> Result<std::sync::Arc<Party>, Rejection> {
    let party = active_signer(state, key)?;
    if !party.profile.roles.contains(&Role::Consumer) {
        return Err(Rejection::new(
            "grant.not_consumer",
            format!("party {} does not have the consumer role", party.profile.credit_code),
        ));
    }
    Ok(party)
}

pub(crate) fn request(
    body: RequestGrant,
    signer: &PublicKey,
    id: &TxId,
    ctx: &BlockContext,
    purposes: &[String],
    state: &mut Overlay<'_>,
) -> Outcome {
    let party = consumer(state, signer)?;
    let dataset = read_dataset(state, &body.dataset)?
        .ok_or_else(|| Rejection::new("dataset.unknown", format!("no dataset {}", body.dataset)))?;
    if dataset.status == DatasetStatus::Delisted {
        return Err(Rejection::new(
            "dataset.delisted",
            format!("dataset {} is delisted", dataset.id),
        ));
    }
    let offer = read_offer(state, &body.dataset, body.offer)?;
    if offer.withdrawn {
        return Err(Rejection::new(
            "offer.withdrawn",
            format!("offer {} is withdrawn", body.offer),
        ));
    }
    let schema = check_terms(&body.terms, &dataset, purposes)?;
    body.terms.within(&offer.terms).map_err(policy)?;
    let filters = grant_filters(&offer.terms, &body.terms, Author::Consumer, schema.as_ref())?;
    if let Some(h) = &body.private {
        h.fr()?;
        crate::private::check_private_terms(&body.terms, ctx.timestamp.max(body.terms.not_before))?;
    }
    let grant_id = GrantId::of_request(id);
    let mut grant = GrantRecord {
        id: grant_id,
        dataset: body.dataset,
        offer: body.offer,
        provider: dataset.provider.clone(),
        holder: party.profile.credit_code.clone(),
        status: GrantStatus::Requested,
        terms: body.terms,
        filters,
        uses: 0,
        history: vec![event("requested", id, ctx, String::new())],
        private: body.private.map(|secret_hash| crate::private::PrivateGrant {
            secret_hash,
            leaf: None,
            salt: None,
            commitment: None,
        }),
    };
    if offer.approval == Approval::Automatic {
        grant.status = GrantStatus::Active;
        grant
            .history
            .push(event("issued", id, ctx, "automatic approval by the offer".into()));
        crate::private::activate(state, ctx, &mut grant, id)?;
    }
    state.put(CF_GRANTS_BY_DATASET, index_key(&body.dataset.0, &grant_id), Vec::new());
    for party in [&grant.provider, &grant.holder] {
        state.put(
            CF_GRANTS_BY_PARTY,
            index_key(party.as_str().as_bytes(), &grant_id),
            Vec::new(),
        );
    }
    put_grant(state, &grant);
    Ok(Applied::Committed(Record::new(grant)))
}

/// A key of the grant indexes: what the grant is listed under, then its id.
fn index_key(under: &[u8], grant: &GrantId) -> Vec<u8> {
    let mut key = under.to_vec();
    key.extend(grant.0);
    key
}

fn read_grant(state: &Overlay<'_>, id: &GrantId) -> Result<GrantRecord, Rejection> {
    read(state, CF_GRANTS, &id.0)?.ok_or_else(|| Rejection::new("grant.unknown", format!("no grant {id}")))
}

/// The grant `id`, refused unless `key` signs for its provider.
pub(crate) fn provider_grant(state: &Overlay<'_>, key: &PublicKey, id: &GrantId) -> Result<GrantRecord, Rejection> {
    let party = active_signer(state, key)?;
    let grant = read_grant(state, id)?;
    if grant.provider != party.profile.credit_code {
        return Err(Rejection::new(
            "grant.not_provider",
            format!("only the provider {} may decide on grant {id}", grant.provider),
        ));
    }
    Ok(grant)
}

fn bad_transition(grant: &GrantRecord, what: &str) -> Rejection {
    Rejection::new(
        "grant.bad_transition",
        format!("grant {} is {}; it cannot be {what}", grant.id, grant.state_at(0)),
    )
}

pub(crate) fn issue(
    body: IssueGrant,
    signer: &PublicKey,
    id: &TxId,
    ctx: &BlockContext,
    purposes: &[String],
    state: &mut Overlay<'_>,
) -> Outcome {
    let mut grant = provider_grant(state, signer, &body.grant)?;
    if grant.status != GrantStatus::Requested {
        return Err(bad_transition(&grant, "issued"));
    }
    let dataset = read_dataset(state, &grant.dataset)?
        .ok_or_else(|| Rejection::new("store.corrupt", format!("grant {} names a missing dataset", grant.id)))?;
    if dataset.status == DatasetStatus::Delisted {
        return Err(Rejection::new(
            "dataset.delisted",
            format!("dataset {} is delisted", dataset.id),
        ));
    }
    if let Some(terms) = body.terms {
        let schema = check_terms(&terms, &dataset, purposes)?;
        let offer = read_offer(state, &grant.dataset, grant.offer)?;
        terms.within(&offer.terms).map_err(policy)?;
        if terms.purposes != grant.terms.purposes {
            return Err(Rejection::new(
                "policy.wider_than_offer",
                "a grant is issued for the purpose it was requested for".to_string(),
            ));
        }
        // The provider wrote these terms: its filter sees the raw columns.
        grant.filters = grant_filters(&offer.terms, &terms, Author::Provider, schema.as_ref())?;
        grant.terms = terms;
    }
    grant.status = GrantStatus::Active;
    crate::private::activate(state, ctx, &mut grant, id)?;
    record(state, grant, event("issued", id, ctx, String::new()))
}

/// `grant.reject` (a request) and `grant.revoke` (an active grant): only the
/// provider, only from `from`.
pub(crate) fn end(
    body: EndGrant,
    signer: &PublicKey,
    id: &TxId,
    ctx: &BlockContext,
    (from, to, name): (GrantStatus, GrantStatus, &str),
    state: &mut Overlay<'_>,
) -> Outcome {
    check_reason(&body.reason)?;
    let mut grant = provider_grant(state, signer, &body.grant)?;
    if grant.status != from {
        return Err(bad_transition(&grant, name));
    }
    grant.status = to;
    if to == GrantStatus::Revoked {
        crate::private::deactivate(state, ctx, &grant)?;
    }
    record(state, grant, event(name, id, ctx, body.reason))
}

/// `grant.use`: only the provider, only on an active grant whose terms permit
/// this use now; the count goes up by one. Uses are not history events (a
/// grant may have thousands): the access log records each one.
pub(crate) fn record_use(body: UseGrant, signer: &PublicKey, ctx: &BlockContext, state: &mut Overlay<'_>) -> Outcome {
    let mut grant = provider_grant(state, signer, &body.grant)?;
    if grant.status != GrantStatus::Active {
        return Err(Rejection::new(
            "use.not_active",
            format!("grant {} is {}", grant.id, grant.state_at(ctx.timestamp)),
        ));
    }
    let request = liutong_policies::Use { action: body.action };
    liutong_policies::evaluate(&grant.terms, &request, ctx.timestamp, grant.uses)
        .map_err(|d| Rejection::new(d.code, d.message))?;
    crate::access::record_use(state, &body.request, &grant.id, ctx)?;
    grant.uses += 1;
    put_grant(state, &grant);
    Ok(Applied::Committed(Record::new(grant)))
}

/// Appends `event` to the grant's history, stores it and answers with it.
fn record(state: &mut Overlay<'_>, mut grant: GrantRecord, event: GrantEvent) -> Outcome {
    grant.history.push(event);
    put_grant(state, &grant);
    Ok(Applied::Committed(Record::new(grant)))
}

pub(crate) fn transfer(
    body: TransferGrant,
    signer: &PublicKey,
    id: &TxId,
    ctx: &BlockContext,
    state: &mut Overlay<'_>,
) -> Outcome {
    let holder = active_signer(state, signer)?;
    let mut grant = read_grant(state, &body.grant)?;
    if grant.holder != holder.profile.credit_code {
        return Err(Rejection::new(
            "grant.not_holder",
            format!("grant {} is held by {}", grant.id, grant.holder),
        ));
    }
    if grant.state_at(ctx.timestamp) != "active" {
        return Err(bad_transition(&grant, "transferred"));
    }
    if !grant.terms.transferable || grant.private.is_some() {
        return Err(Rejection::new(
            "grant.not_transferable",
            format!(
                "grant {} is not transferable (its offer forbids secondary trading)",
                grant.id
            ),
        ));
    }
    let to = CreditCode::parse(&body.to).map_err(|e| Rejection::new(e.code(), e.to_string()))?;
    let recipient = read_party(state, &to)?
        .ok_or_else(|| Rejection::new("party.not_found", format!("no party {to} is registered")))?;
    if recipient.status != PartyStatus::Active || !recipient.profile.roles.contains(&Role::Consumer) {
        return Err(Rejection::new(
            "grant.bad_recipient",
            format!("party {to} is not an active consumer"),
        ));
    }
    if to == grant.holder {
        return Err(Rejection::new(
            "grant.bad_recipient",
            format!("party {to} already holds grant {}", grant.id),
        ));
    }
    state.put(
        CF_GRANTS_BY_PARTY,
        index_key(to.as_str().as_bytes(), &grant.id),
        Vec::new(),
    );
    let moved = event("transferred", id, ctx, format!("from {} to {to}", grant.holder));
    grant.holder = to;
    record(state, grant, moved)
}

/// On delisting with `revoke_existing`: revokes every grant of the dataset
/// that is requested or active.
pub(crate) fn revoke_all(
    dataset: &DatasetId,
    id: &TxId,
    ctx: &BlockContext,
    state: &mut Overlay<'_>,
) -> Result<u64, Rejection> {
    let mut ended = 0;
    for grant_id in grants_of_dataset_in(state, dataset)? {
        let mut grant = read_grant(state, &grant_id)?;
        let (status, name) = match grant.status {
            GrantStatus::Requested => (GrantStatus::Rejected, "rejected"),
            GrantStatus::Active => (GrantStatus::Revoked, "revoked"),
            _ => continue,
        };
        if status == GrantStatus::Revoked {
            crate::private::deactivate(state, ctx, &grant)?;
        }
        grant.status = status;
        grant
            .history
            .push(event(name, id, ctx, "dataset delisted with revoke_existing".into()));
        put_grant(state, &grant);
        ended += 1;
    }
    Ok(ended)
}

/// Grant ids of a dataset as the state machine sees them. The index is read
/// from the store, plus this block's own new requests.
fn grants_of_dataset_in(state: &Overlay<'_>, dataset: &DatasetId) -> Result<Vec<GrantId>, Rejection> {
    state
        .keys_with_prefix(CF_GRANTS_BY_DATASET, &dataset.0)
        .map_err(crate::machine::store_error)?
        .into_iter()
        .map(|k| {
            k.get(16..32)
                .and_then(|b| <[u8; 16]>::try_from(b).ok())
                .map(GrantId)
                .ok_or_else(|| Rejection::new("store.corrupt", "a grants_by_dataset key is not dataset ‖ grant"))
        })
        .collect()
}

/// A grant from a node's committed state.
pub fn grant(store: &Store, id: &GrantId) -> crate::Result<GrantRecord> {
    let bytes = store
        .get(CF_GRANTS, &id.0)?
        .ok_or_else(|| crate::Error::Ledger(liutong_ledger::Error::NotFound(format!("grant {id}"))))?;
    decode(&bytes)
}

/// The offers of a dataset, from a node's committed state.
pub fn offers(store: &Store, dataset: &DatasetId) -> crate::Result<Vec<OfferRecord>> {
    let mut out = Vec::new();
    for (k, v) in store.scan_from(CF_OFFERS, &dataset.0, MAX_OFFERS as usize)? {
        if !k.starts_with(&dataset.0) {
            break;
        }
        out.push(decode(&v)?);
    }
    Ok(out)
}

/// One offer of a dataset, from a node's committed state.
pub fn offer(store: &Store, dataset: &DatasetId, number: u32) -> crate::Result<OfferRecord> {
    let bytes = store.get(CF_OFFERS, &offer_key(dataset, number))?.ok_or_else(|| {
        crate::Error::Ledger(liutong_ledger::Error::NotFound(format!(
            "dataset {dataset} has no offer {number}"
        )))
    })?;
    decode(&bytes)
}

/// The grants of a dataset, from a node's committed state.
pub fn grants_of_dataset(store: &Store, dataset: &DatasetId) -> crate::Result<Vec<GrantRecord>> {
    grants_under(store, CF_GRANTS_BY_DATASET, &dataset.0)
}

/// The grants a party provides, requested, or holds or held (by transfer),
/// from a node's committed state.
pub fn grants_of_party(store: &Store, party: &CreditCode) -> crate::Result<Vec<GrantRecord>> {
    grants_under(store, CF_GRANTS_BY_PARTY, party.as_str().as_bytes())
}

/// The grants listed under `prefix` in the index `cf` (keys prefix ‖ grant id).
fn grants_under(store: &Store, cf: &str, prefix: &[u8]) -> crate::Result<Vec<GrantRecord>> {
    let mut out = Vec::new();
    let mut from = prefix.to_vec();
    loop {
        let rows = store.scan_from(cf, &from, 256)?;
        let full = rows.len() == 256;
        for (k, _) in &rows {
            let Some(g) = k.strip_prefix(prefix) else {
                return Ok(out);
            };
            let g = GrantId(g.try_into().map_err(|_| corrupt())?);
            out.push(grant(store, &g)?);
        }
        match rows.last() {
            Some((last, _)) if full => {
                from = last.clone();
                from.push(0);
            }
            _ => return Ok(out),
        }
    }
}

fn corrupt() -> crate::Error {
    crate::Error::Ledger(liutong_ledger::Error::Corrupt("grants: unreadable entry".into()))
}

fn decode<T: BorshDeserialize>(bytes: &[u8]) -> crate::Result<T> {
    borsh::from_slice(bytes).map_err(|_| corrupt())
}
