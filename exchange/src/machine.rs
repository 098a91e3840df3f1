//! The exchange's state machine: gives transaction bodies meaning. It must be
//! deterministic in (state, transaction, block context): followers and
//! `chain verify` replay it and must reach the same bytes.

use crate::genesis::Genesis;
use crate::grants::{self, GrantStatus};
use crate::notary::{self, Notarization, Notarize};
use crate::party::*;
use crate::{access, datasets};
use borsh::BorshDeserialize;
use liutong_core::{Canonical, CreditCode, PublicKey};
use liutong_ledger::{Applied, BlockContext, Overlay, Record, Rejection, SignedTx, StateMachine, TxId};

/// Column family: credit code → borsh [`Party`].
pub const CF_PARTIES: &str = "parties";
/// Column family: signing public key → borsh [`KeyBinding`].
pub const CF_PARTY_KEYS: &str = "party_keys";
/// Column family: digest → borsh [`Notarization`].
pub const CF_NOTARIZATIONS: &str = "notarizations";
/// Column family: dataset id → borsh [`crate::datasets::DatasetRecord`].
pub const CF_DATASETS: &str = "datasets";
/// Column family: dataset id ‖ version (u32 BE) → borsh [`crate::datasets::DatasetVersion`].
pub const CF_DATASET_VERSIONS: &str = "dataset_versions";
/// Column family: the catalog's search index (see `datasets.rs`).
pub const CF_CATALOG_INDEX: &str = "catalog_index";
/// Column family: dataset id ‖ offer number (u32 BE) → borsh [`crate::grants::OfferRecord`].
pub const CF_OFFERS: &str = "offers";
/// Column family: grant id → borsh [`crate::grants::GrantRecord`].
pub const CF_GRANTS: &str = "grants";
/// Column family: dataset id ‖ grant id → (empty).
pub const CF_GRANTS_BY_DATASET: &str = "grants_by_dataset";
/// Column family: credit code ‖ grant id → (empty), for the provider, the
/// requester and every later holder of the grant.
pub const CF_GRANTS_BY_PARTY: &str = "grants_by_party";
/// Column family: request digest → borsh [`crate::access::UseRecord`], one per counted use.
pub const CF_USES: &str = "uses";
/// Column family: delivery (first request digest) → borsh [`crate::access::AccessRecord`].
pub const CF_ACCESS_LOG: &str = "access_log";
/// Column family: the access log's listings by grant, dataset and party (see `access.rs`).
pub const CF_ACCESS_INDEX: &str = "access_index";

pub const KIND_REGISTER: &str = "party.register";
pub const KIND_APPROVE: &str = "party.approve";
pub const KIND_REJECT: &str = "party.reject";
pub const KIND_SUSPEND: &str = "party.suspend";
pub const KIND_REINSTATE: &str = "party.reinstate";
pub const KIND_EXPEL: &str = "party.expel";
pub const KIND_ROTATE_KEYS: &str = "party.rotate_keys";
pub const KIND_NOTARIZE: &str = "notary.notarize";
pub const KIND_DATASET_REGISTER: &str = "dataset.register";
pub const KIND_DATASET_UPDATE: &str = "dataset.update";
pub const KIND_DATASET_DELIST: &str = "dataset.delist";
pub const KIND_OFFER_ADD: &str = "offer.add";
pub const KIND_OFFER_WITHDRAW: &str = "offer.withdraw";
pub const KIND_GRANT_REQUEST: &str = "grant.request";
pub const KIND_GRANT_ISSUE: &str = "grant.issue";
pub const KIND_GRANT_REJECT: &str = "grant.reject";
pub const KIND_GRANT_REVOKE: &str = "grant.revoke";
pub const KIND_GRANT_TRANSFER: &str = "grant.transfer";
pub const KIND_GRANT_USE: &str = "grant.use";
pub const KIND_ACCESS_LOG: &str = "access.log";
pub const KIND_GRANT_USE_PRIVATE: &str = "grant.use_private";

/// Every transaction kind this state machine knows.
pub const KINDS: [&str; 21] = [
    KIND_REGISTER,
    KIND_APPROVE,
    KIND_REJECT,
    KIND_SUSPEND,
    KIND_REINSTATE,
    KIND_EXPEL,
    KIND_ROTATE_KEYS,
    KIND_NOTARIZE,
    KIND_DATASET_REGISTER,
    KIND_DATASET_UPDATE,
    KIND_DATASET_DELIST,
    KIND_OFFER_ADD,
    KIND_OFFER_WITHDRAW,
    KIND_GRANT_REQUEST,
    KIND_GRANT_ISSUE,
    KIND_GRANT_REJECT,
    KIND_GRANT_REVOKE,
    KIND_GRANT_TRANSFER,
    KIND_GRANT_USE,
    KIND_ACCESS_LOG,
    KIND_GRANT_USE_PRIVATE,
];

type Outcome = std::result::Result<Applied, Rejection>;

pub struct ExchangeMachine {
    genesis: Genesis,
    /// The use circuit's verifier, from the genesis's verifying key (a
    /// validated genesis always has one; the error is kept, not panicked on).
    verifier: std::result::Result<liutong_zk::Verifier, String>,
}

impl ExchangeMachine {
    pub fn new(genesis: Genesis) -> Self {
        let verifier = genesis
            .zk
            .verifying_key()
            .map(|vk| liutong_zk::Verifier::new(&vk))
            .map_err(|e| e.to_string());
        ExchangeMachine { genesis, verifier }
    }

    /// The consortium's purpose vocabulary.
    fn purposes(&self) -> &[String] {
        &self.genesis.catalog.purposes
    }
}

impl StateMachine for ExchangeMachine {
    fn column_families(&self) -> Vec<&'static str> {
        vec![
            CF_PARTIES,
            CF_PARTY_KEYS,
            CF_NOTARIZATIONS,
            CF_DATASETS,
            CF_DATASET_VERSIONS,
            CF_CATALOG_INDEX,
            CF_OFFERS,
            CF_GRANTS,
            CF_GRANTS_BY_DATASET,
            CF_GRANTS_BY_PARTY,
            CF_USES,
            CF_ACCESS_LOG,
            CF_ACCESS_INDEX,
            crate::private::CF_ZK_TREE,
            crate::private::CF_ZK_ROOTS,
            crate::private::CF_ZK_BLOCK_ROOTS,
            crate::private::CF_NULLIFIERS,
            crate::private::CF_ZK_EXPIRY,
        ]
    }

    fn miss_heavy_column_families(&self) -> Vec<&'static str> {
        // Notarizing asks whether the digest is new; a private use whether
        // its nullifier is.
        vec![CF_NOTARIZATIONS, crate::private::CF_NULLIFIERS]
    }

    fn genesis_state(&self, state: &mut Overlay<'_>) -> Result<(), Rejection> {
        let profile = self.genesis.operator_profile();
        let party = Party {
            profile,
            status: PartyStatus::Active,
            registered_height: 0,
            history: Vec::new(),
            retired_keys: Vec::new(),
        };
        bind_key(
            state,
            &party.profile.signing_key,
            &party.profile.credit_code,
            true,
            None,
        );
        put_party(state, &party);
        crate::private::genesis_state(state);
        Ok(())
    }

    fn apply(&self, tx: &SignedTx, id: &TxId, ctx: &BlockContext, state: &mut Overlay<'_>) -> Outcome {
        let t = &tx.tx;
        match t.kind.as_str() {
            KIND_REGISTER => register(decode(t.kind.as_str(), &t.body)?, &t.signer, id, ctx, state),
            KIND_APPROVE | KIND_REJECT | KIND_SUSPEND | KIND_REINSTATE | KIND_EXPEL => {
                let signer = active_signer(state, &t.signer)?;
                change_standing(&t.kind, decode(&t.kind, &t.body)?, &signer, ctx, state)
            }
            KIND_ROTATE_KEYS => {
                let signer = active_signer(state, &t.signer)?;
                rotate_keys(
                    decode(&t.kind, &t.body)?,
                    std::sync::Arc::unwrap_or_clone(signer),
                    id,
                    state,
                )
            }
            KIND_NOTARIZE => {
                let signer = active_signer(state, &t.signer)?;
                notarize(decode(&t.kind, &t.body)?, &signer, id, ctx, state)
            }
            KIND_DATASET_REGISTER => {
                let chunk = self.genesis.catalog.chunk_size;
                datasets::register(decode(&t.kind, &t.body)?, &t.signer, id, ctx, chunk, state)
            }
            KIND_DATASET_UPDATE => {
                let chunk = self.genesis.catalog.chunk_size;
                datasets::update(decode(&t.kind, &t.body)?, &t.signer, id, ctx, chunk, state)
            }
            KIND_DATASET_DELIST => datasets::delist(decode(&t.kind, &t.body)?, &t.signer, id, ctx, state),
            KIND_OFFER_ADD => grants::add_offer(decode(&t.kind, &t.body)?, &t.signer, ctx, self.purposes(), state),
            KIND_OFFER_WITHDRAW => grants::withdraw_offer(decode(&t.kind, &t.body)?, &t.signer, state),
            KIND_GRANT_REQUEST => {
                grants::request(decode(&t.kind, &t.body)?, &t.signer, id, ctx, self.purposes(), state)
            }
            KIND_GRANT_ISSUE => grants::issue(decode(&t.kind, &t.body)?, &t.signer, id, ctx, self.purposes(), state),
            KIND_GRANT_REJECT => {
                let change = (GrantStatus::Requested, GrantStatus::Rejected, "rejected");
                grants::end(decode(&t.kind, &t.body)?, &t.signer, id, ctx, change, state)
            }
            KIND_GRANT_REVOKE => {
                let change = (GrantStatus::Active, GrantStatus::Revoked, "revoked");
                grants::end(decode(&t.kind, &t.body)?, &t.signer, id, ctx, change, state)
            }
            KIND_GRANT_TRANSFER => grants::transfer(decode(&t.kind, &t.body)?, &t.signer, id, ctx, state),
            KIND_GRANT_USE => grants::record_use(decode(&t.kind, &t.body)?, &t.signer, ctx, state),
            KIND_ACCESS_LOG => {
                let chain = &self.genesis.chain_id;
                access::log(decode(&t.kind, &t.body)?, &t.signer, chain, id, ctx, state)
            }
            KIND_GRANT_USE_PRIVATE => {
                let verifier = self
                    .verifier
                    .as_ref()
                    .map_err(|e| Rejection::new("zk.no_verifying_key", e.clone()))?;
                let params = (
                    verifier,
                    self.genesis.zk.root_window,
                    self.genesis.params.max_clock_skew_ms,
                );
                let chain = &self.genesis.chain_id;
                crate::private::use_private(decode(&t.kind, &t.body)?, &t.signer, chain, params, ctx, state)
            }
            other => Err(Rejection::new(
                "tx.unknown_kind",
                format!("unknown transaction kind {other:?}; known kinds: {}", KINDS.join(", ")),
            )),
        }
    }
}

fn decode<T: BorshDeserialize>(kind: &str, body: &[u8]) -> Result<T, Rejection> {
    borsh::from_slice(body)
        .map_err(|e| Rejection::new("tx.malformed_body", format!("the body is not a valid {kind} body: {e}")))
}

pub(crate) fn store_error(e: liutong_ledger::Error) -> Rejection {
    Rejection::new(e.code(), e.to_string())
}

pub(crate) fn read<T: BorshDeserialize>(
    state: &Overlay<'_>,
    cf: &'static str,
    key: &[u8],
) -> Result<Option<T>, Rejection> {
    match state.get(cf, key).map_err(store_error)? {
        None => Ok(None),
        Some(bytes) => borsh::from_slice(&bytes)
            .map(Some)
            .map_err(|e| Rejection::new("store.corrupt", format!("{cf} entry is unreadable: {e}"))),
    }
}

pub(crate) fn read_party(state: &Overlay<'_>, code: &CreditCode) -> Result<Option<Party>, Rejection> {
    read(state, CF_PARTIES, code.as_str().as_bytes())
}

fn put_party(state: &mut Overlay<'_>, party: &Party) {
    state.put(
        CF_PARTIES,
        party.profile.credit_code.as_str().as_bytes().to_vec(),
        borsh::to_vec(party).expect("borsh into a Vec cannot fail"),
    );
}

fn bind_key(state: &mut Overlay<'_>, key: &PublicKey, party: &CreditCode, current: bool, bound_by: Option<TxId>) {
    let binding = KeyBinding {
        party: party.clone(),
        current,
        bound_by,
    };
    state.put(
        CF_PARTY_KEYS,
        key.as_bytes().to_vec(),
        borsh::to_vec(&binding).expect("borsh into a Vec cannot fail"),
    );
}

/// The party behind a signing key, refused unless it is active and the key current.
/// Like [`read`], but decoded once and shared until a block writes it (the
/// ledger's decoded cache): for records that many transactions read
/// (signers' key bindings and parties).
fn read_shared<T: BorshDeserialize + Send + Sync + 'static>(
    state: &Overlay<'_>,
    cf: &'static str,
    key: &[u8],
) -> Result<Option<std::sync::Arc<T>>, Rejection> {
    let decode = |bytes: &[u8]| {
        borsh::from_slice(bytes).map_err(|e| Rejection::new("store.corrupt", format!("{cf} entry is unreadable: {e}")))
    };
    state.get_decoded(cf, key, decode, store_error)
}

/// The signer's party, if it may sign: its key is bound and current, and the
/// party is active. Shared, not copied: a block reads it once per signer.
pub(crate) fn active_signer(state: &Overlay<'_>, key: &PublicKey) -> Result<std::sync::Arc<Party>, Rejection> {
    let binding: std::sync::Arc<KeyBinding> = read_shared(state, CF_PARTY_KEYS, key.as_bytes())?.ok_or_else(|| {
        Rejection::new(
            "party.unknown_signer",
            format!("signing key {key} belongs to no registered party"),
        )
    })?;
    if !binding.current {
        return Err(Rejection::new(
            "party.key_retired",
            format!(
                "signing key {key} of party {} was replaced by a key rotation",
                binding.party
            ),
        ));
    }
    let party = read_shared::<Party>(state, CF_PARTIES, binding.party.as_str().as_bytes())?.ok_or_else(|| {
        Rejection::new(
            "store.corrupt",
            format!("key {key} is bound to missing party {}", binding.party),
        )
    })?;
    if let Some((code, what)) = party.status.refusal() {
        return Err(Rejection::new(
            code,
            format!("party {} {what}", party.profile.credit_code),
        ));
    }
    // A key is the party's only while it is the profile's key (a rejected
    // application's key, replaced by a new application, is not).
    if party.profile.signing_key != *key {
        return Err(Rejection::new(
            "party.key_retired",
            format!(
                "signing key {key} is not party {}'s current key",
                party.profile.credit_code
            ),
        ));
    }
    Ok(party)
}

fn parse_code(text: &str) -> Result<CreditCode, Rejection> {
    CreditCode::parse(text).map_err(|e| Rejection::new(e.code(), e.to_string()))
}

fn check_text(field: &str, value: &str, max: usize, required: bool, code: &str) -> Result<(), Rejection> {
    if required && value.trim().is_empty() {
        return Err(Rejection::new(code, format!("{field} must not be empty")));
    }
    if value.len() > max {
        return Err(Rejection::new(
            code,
            format!("{field} is {} bytes, the limit is {max}", value.len()),
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(Rejection::new(
            code,
            format!("{field} must not contain control characters"),
        ));
    }
    Ok(())
}

fn check_endpoint(endpoint: &str) -> Result<(), Rejection> {
    check_text("endpoint", endpoint, MAX_ENDPOINT, true, "party.bad_profile")?;
    let rest = endpoint
        .strip_prefix("https://")
        .or_else(|| endpoint.strip_prefix("http://"))
        .ok_or_else(|| {
            Rejection::new(
                "party.bad_profile",
                format!("endpoint {endpoint:?} must be an http:// or https:// URL"),
            )
        })?;
    if rest.is_empty() || rest.starts_with('/') || rest.contains(char::is_whitespace) {
        return Err(Rejection::new(
            "party.bad_profile",
            format!("endpoint {endpoint:?} has no host"),
        ));
    }
    Ok(())
}

fn register(
    body: RegisterParty,
    signer: &PublicKey,
    id: &TxId,
    ctx: &BlockContext,
    state: &mut Overlay<'_>,
) -> Outcome {
    let code = parse_code(&body.credit_code)?;
    check_text("legal_name", &body.legal_name, MAX_NAME, true, "party.bad_profile")?;
    check_text("contact", &body.contact, MAX_CONTACT, true, "party.bad_profile")?;
    check_endpoint(&body.endpoint)?;
    let mut roles = body.roles.clone();
    roles.sort();
    roles.dedup();
    if roles.is_empty() || roles.len() != body.roles.len() || roles.contains(&Role::Operator) {
        return Err(Rejection::new(
            "party.bad_profile",
            "roles must be one or more distinct of provider, consumer, auditor",
        ));
    }
    let existing = read_party(state, &code)?;
    if let Some(p) = &existing {
        if p.status != PartyStatus::Rejected {
            return Err(Rejection::new(
                "party.exists",
                format!("party {code} is already registered ({:?})", p.status).to_lowercase(),
            ));
        }
    }
    if let Some(binding) = read::<KeyBinding>(state, CF_PARTY_KEYS, signer.as_bytes())? {
        let reapplying = binding.party == code && existing.is_some();
        if !reapplying {
            return Err(Rejection::new(
                "party.key_in_use",
                format!("signing key {signer} is already bound to party {}", binding.party),
            ));
        }
    }
    // A new application after a rejection retires the rejected one's key.
    if let Some(old) = existing.as_ref().filter(|p| p.profile.signing_key != *signer) {
        let old_key = old.profile.signing_key;
        if let Some(b) = read::<KeyBinding>(state, CF_PARTY_KEYS, old_key.as_bytes())? {
            bind_key(state, &old_key, &code, false, b.bound_by);
        }
    }
    let mut history = existing.map(|p| p.history).unwrap_or_default();
    history.push(StatusChange {
        status: PartyStatus::Pending,
        reason: "applied".into(),
        height: ctx.height,
        timestamp: ctx.timestamp,
    });
    let party = Party {
        profile: PartyProfile {
            legal_name: body.legal_name,
            credit_code: code.clone(),
            contact: body.contact,
            roles: body.roles,
            signing_key: *signer,
            encryption_key: body.encryption_key,
            endpoint: body.endpoint,
        },
        status: PartyStatus::Pending,
        registered_height: ctx.height,
        history,
        retired_keys: Vec::new(),
    };
    bind_key(state, signer, &code, true, Some(*id));
    put_party(state, &party);
    Ok(Applied::Committed(Record::new(party)))
}

fn change_standing(
    kind: &str,
    body: ChangeStanding,
    signer: &Party,
    ctx: &BlockContext,
    state: &mut Overlay<'_>,
) -> Outcome {
    if !signer.profile.roles.contains(&Role::Operator) {
        return Err(Rejection::new(
            "party.not_operator",
            format!(
                "only the operator may {}; {} is not the operator",
                &kind[6..],
                signer.profile.credit_code
            ),
        ));
    }
    let code = parse_code(&body.credit_code)?;
    check_text("reason", &body.reason, MAX_REASON, false, "party.bad_profile")?;
    let mut party = read_party(state, &code)?
        .ok_or_else(|| Rejection::new("party.not_found", format!("no party {code} is registered")))?;
    use PartyStatus::*;
    let next = match (kind, party.status) {
        (KIND_APPROVE, Pending) => Active,
        (KIND_REJECT, Pending) => Rejected,
        (KIND_SUSPEND, Active) => Suspended,
        (KIND_REINSTATE, Suspended) => Active,
        (KIND_EXPEL, Pending | Active | Suspended) => Expelled,
        (_, from) => {
            return Err(Rejection::new(
                "party.bad_transition",
                format!("cannot {} party {code}: it is {from:?}", &kind[6..]).to_lowercase(),
            ))
        }
    };
    if party.profile.roles.contains(&Role::Operator) {
        return Err(Rejection::new(
            "party.bad_transition",
            "the operator's own standing cannot be changed",
        ));
    }
    party.status = next;
    party.history.push(StatusChange {
        status: next,
        reason: body.reason,
        height: ctx.height,
        timestamp: ctx.timestamp,
    });
    put_party(state, &party);
    Ok(Applied::Committed(Record::new(party)))
}

fn rotate_keys(body: RotateKeys, mut party: Party, id: &TxId, state: &mut Overlay<'_>) -> Outcome {
    let old = party.profile.signing_key;
    if let Some(binding) = read::<KeyBinding>(state, CF_PARTY_KEYS, body.new_signing_key.as_bytes())? {
        return Err(Rejection::new(
            "party.key_in_use",
            format!(
                "signing key {} is already bound to party {}",
                body.new_signing_key, binding.party
            ),
        ));
    }
    body.new_signing_key
        .verify(&rotation_message(&old, &body.new_signing_key), &body.possession)
        .map_err(|_| {
            Rejection::new(
                "party.bad_possession_proof",
                "the new signing key did not sign the rotation message; possession of the new key is not proven",
            )
        })?;
    let old_binding: Option<KeyBinding> = read(state, CF_PARTY_KEYS, old.as_bytes())?;
    bind_key(
        state,
        &old,
        &party.profile.credit_code,
        false,
        old_binding.and_then(|b| b.bound_by),
    );
    bind_key(
        state,
        &body.new_signing_key,
        &party.profile.credit_code,
        true,
        Some(*id),
    );
    party.retired_keys.push(old);
    party.profile.signing_key = body.new_signing_key;
    party.profile.encryption_key = body.new_encryption_key;
    put_party(state, &party);
    Ok(Applied::Committed(Record::new(party)))
}

fn notarize(body: Notarize, signer: &Party, id: &TxId, ctx: &BlockContext, state: &mut Overlay<'_>) -> Outcome {
    let fields = [
        ("file_name", &body.file_name, notary::MAX_FILE_NAME),
        ("media_type", &body.media_type, notary::MAX_MEDIA_TYPE),
        ("note", &body.note, notary::MAX_NOTE),
    ];
    for (field, value, max) in fields {
        if let Some(v) = value {
            check_text(field, v, max, false, "notary.bad_metadata")?;
        }
    }
    if let Some(existing) = read::<Notarization>(state, CF_NOTARIZATIONS, body.digest.as_bytes())? {
        return Ok(Applied::Existing(Record::new(existing)));
    }
    let record = Notarization {
        digest: body.digest,
        tx_id: *id,
        tx_index: ctx.tx_index,
        height: ctx.height,
        timestamp: ctx.timestamp,
        notary: signer.profile.credit_code.clone(),
        notary_name: signer.profile.legal_name.clone(),
        file_name: body.file_name,
        media_type: body.media_type,
        note: body.note,
    };
    state.put(
        CF_NOTARIZATIONS,
        body.digest.as_bytes().to_vec(),
        record.canonical_bytes(),
    );
    Ok(Applied::Committed(Record::new(record)))
}

impl Canonical for Notarization {
    const WHAT: &'static str = "notarization";
}

/// The decoded body of a known kind, as JSON for display; `None` for bytes
/// that do not decode.
pub fn describe_body(kind: &str, body: &[u8]) -> Option<serde_json::Value> {
    fn j<T: BorshDeserialize + serde::Serialize>(body: &[u8]) -> Option<serde_json::Value> {
        borsh::from_slice::<T>(body)
            .ok()
            .map(|v| serde_json::to_value(&v).expect("bodies serialize to JSON"))
    }
    match kind {
        KIND_REGISTER => j::<RegisterParty>(body),
        KIND_APPROVE | KIND_REJECT | KIND_SUSPEND | KIND_REINSTATE | KIND_EXPEL => j::<ChangeStanding>(body),
        KIND_ROTATE_KEYS => j::<RotateKeys>(body),
        KIND_NOTARIZE => j::<Notarize>(body),
        KIND_DATASET_REGISTER => j::<datasets::RegisterDataset>(body),
        KIND_DATASET_UPDATE => j::<datasets::UpdateDataset>(body),
        KIND_DATASET_DELIST => j::<datasets::DelistDataset>(body),
        KIND_OFFER_ADD => j::<grants::AddOffer>(body),
        KIND_OFFER_WITHDRAW => j::<grants::WithdrawOffer>(body),
        KIND_GRANT_REQUEST => j::<grants::RequestGrant>(body),
        KIND_GRANT_ISSUE => j::<grants::IssueGrant>(body),
        KIND_GRANT_REJECT | KIND_GRANT_REVOKE => j::<grants::EndGrant>(body),
        KIND_GRANT_TRANSFER => j::<grants::TransferGrant>(body),
        KIND_GRANT_USE => j::<grants::UseGrant>(body),
        KIND_ACCESS_LOG => borsh::from_slice::<access::LogAccess>(body).ok().map(|b| b.describe()),
        KIND_GRANT_USE_PRIVATE => borsh::from_slice::<crate::private::UsePrivate>(body)
            .ok()
            .map(|b| crate::access::describe_request(&b.request)),
        _ => None,
    }
}
