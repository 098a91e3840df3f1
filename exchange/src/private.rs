//! Private mode: grants whose uses the ledger sees as authorized without
//! seeing which grant (and so which consumer) made them.
//!
//! - A consumer asks for a private grant with the Poseidon hash of a secret
//!   only it knows. When the grant becomes active the state machine puts its
//!   commitment (dataset, actions, validity end, max uses, the digest of
//!   the query terms, the secret's hash, a salt) into the grant tree and
//!   records the tree's root for the block; revoking the grant, or its
//!   expiry (swept at the next change of the tree), sets the leaf to zero.
//! - A private use is a delivery request signed with a one-time key and
//!   carrying a Groth16 proof (see `liutong_zk::circuit`) in place of a
//!   grant id: the grant is in the tree at a root among the last
//!   `root_window` blocks' roots, covers this dataset, action and query
//!   terms, has not expired at the claimed time, and this is use `k` below
//!   its max uses; the nullifier `Poseidon(secret, salt, k)` is spent on
//!   the ledger, so each use index works once.
//! - The escrow tag commits to (grant commitment, k, r); the opening is
//!   sealed with HPKE to each active auditor and kept in the entry.

use crate::delivery::SignedRequest;
use crate::grants::{GrantId, GrantRecord};
use crate::machine::read;
use borsh::{BorshDeserialize, BorshSerialize};
use liutong_core::{sha256_parts, Digest, EncryptionKeyPair, EncryptionPublicKey, PublicKey};
use liutong_ledger::{Applied, BlockContext, Overlay, Record, Rejection, TxId};
use liutong_policies::Terms;
use liutong_zk::circuit::{GrantFields, Statement};
use liutong_zk::field::{self, FieldBytes};
use liutong_zk::tree::{self, NodeStore};
use liutong_zk::{Fr, UseProof, Verifier};
use serde::{Deserialize, Serialize};

/// Column family: the grant tree's nodes, `[level] ‖ index (u64 BE)` → 32 bytes;
/// and `next` → the next free leaf (u64 BE).
pub const CF_ZK_TREE: &str = "zk_tree";
/// Column family: grant-tree root → borsh [`RootSpan`].
pub const CF_ZK_ROOTS: &str = "zk_roots";
/// Column family: height (u64 BE) → the tree's root after that block, for
/// the blocks that changed it.
pub const CF_ZK_BLOCK_ROOTS: &str = "zk_block_roots";
/// Column family: nullifier → borsh [`NullifierRecord`].
pub const CF_NULLIFIERS: &str = "nullifiers";
/// Column family: validity end (seconds, u64 BE) ‖ grant id → (empty), for
/// the private grants still in the tree.
pub const CF_ZK_EXPIRY: &str = "zk_expiry";

const NEXT_LEAF: &[u8] = b"next";

/// Most auditors an opening is sealed to.
pub const MAX_AUDITORS: usize = 8;

/// A private grant's part of its record.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PrivateGrant {
    /// Poseidon(secret), from the request.
    #[schema(value_type = String)]
    pub secret_hash: FieldHex,
    /// Set when the grant became active (then the fields below are too).
    pub leaf: Option<u64>,
    #[schema(value_type = Option<String>)]
    pub salt: Option<FieldHex>,
    #[schema(value_type = Option<String>)]
    pub commitment: Option<FieldHex>,
}

/// A field element as stored (32 bytes, big-endian) and shown (hex).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, BorshSerialize, BorshDeserialize)]
pub struct FieldHex(pub [u8; 32]);

impl FieldHex {
    pub fn of(f: &Fr) -> FieldHex {
        FieldHex(FieldBytes::of(f).0)
    }
    pub fn fr(&self) -> Result<Fr, Rejection> {
        FieldBytes(self.0)
            .to_fr()
            .map_err(|e| Rejection::new("zk.bad_field", e.to_string()))
    }
}

impl std::fmt::Display for FieldHex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(&hex::encode(self.0))
    }
}

impl std::str::FromStr for FieldHex {
    type Err = crate::Error;
    fn from_str(s: &str) -> crate::Result<FieldHex> {
        let fb = FieldBytes::from_hex("field element", s).map_err(|e| crate::Error::BadRequest(e.to_string()))?;
        Ok(FieldHex(fb.0))
    }
}

impl Serialize for FieldHex {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for FieldHex {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        <String as Deserialize>::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// The query-time terms a private use tells the provider (its commitment
/// binds their digest): what the provider must enforce on a query, the
/// grant's row filters by author included (the provider cannot look the
/// grant or its offer up).
pub use liutong_policies::QueryTerms;

/// SHA-256 of a private grant's query terms (borsh) under a domain,
/// reduced into the field: the commitment's `terms` field.
pub fn terms_digest(terms: &QueryTerms) -> Fr {
    let bytes = borsh::to_vec(terms).expect("borsh into a Vec cannot fail");
    field::reduce(&sha256_parts(&[b"liutong/query-terms/v2\0", &bytes]).0)
}

/// What a private request claims, inside the signed request (so the proof,
/// bound to the request, covers it too).
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct PrivateClaim {
    pub root: FieldHex,
    pub nullifier: FieldHex,
    pub escrow_tag: FieldHex,
    /// The time the grant's validity is proven against, seconds since the epoch.
    pub time: u64,
    pub terms: QueryTerms,
    /// The one-time key the result is sealed to.
    pub encryption_key: EncryptionPublicKey,
    /// The escrow opening, sealed to each active auditor.
    pub openings: Vec<SealedOpening>,
}

/// An [`Opening`] sealed with HPKE (the delivery stream's construction, one
/// frame) to an auditor's registered X25519 key.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SealedOpening {
    pub auditor: String,
    #[serde(with = "hex_bytes")]
    #[schema(value_type = String)]
    pub encapped: Vec<u8>,
    #[serde(with = "hex_bytes")]
    #[schema(value_type = String)]
    pub sealed: Vec<u8>,
}

mod hex_bytes {
    pub fn serialize<S: serde::Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(v))
    }
    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let t = <String as serde::Deserialize>::deserialize(d)?;
        hex::decode(t).map_err(serde::de::Error::custom)
    }
}

/// What the escrow tag commits to: the auditor learns the grant and the use index.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Opening {
    pub grant: GrantId,
    pub commitment: FieldHex,
    pub k: u64,
    pub randomness: FieldHex,
}

fn opening_info(tag: &FieldHex) -> Digest {
    sha256_parts(&[b"liutong/escrow-opening/v1\0", &tag.0])
}

impl Opening {
    pub fn seal(&self, auditor: &str, key: &EncryptionPublicKey, tag: &FieldHex) -> crate::Result<SealedOpening> {
        let (sealer, encapped) = liutong_core::stream::Sealer::new(key, &opening_info(tag))?;
        let sealed = sealer.seal(0, true, &borsh::to_vec(self).expect("borsh into a Vec cannot fail"))?;
        Ok(SealedOpening {
            auditor: auditor.to_string(),
            encapped: encapped.to_vec(),
            sealed,
        })
    }

    pub fn open(s: &SealedOpening, keys: &EncryptionKeyPair, tag: &FieldHex) -> crate::Result<Opening> {
        let encapped: [u8; 32] = s
            .encapped
            .as_slice()
            .try_into()
            .map_err(|_| crate::Error::BadRequest("an encapsulated key is 32 bytes".into()))?;
        let opener = liutong_core::stream::Opener::new(keys, &encapped, &opening_info(tag))?;
        let plain = opener
            .open(0, true, &s.sealed)
            .map_err(|_| crate::Error::BadRequest("the opening does not decrypt with this auditor's key".into()))?;
        borsh::from_slice(&plain).map_err(|e| crate::Error::BadRequest(format!("the opening is malformed: {e}")))
    }

    /// Checks the opening against the entry's escrow tag.
    pub fn matches(&self, tag: &FieldHex) -> bool {
        match (self.commitment.fr(), self.randomness.fr()) {
            (Ok(c), Ok(r)) => FieldHex::of(&liutong_zk::circuit::escrow_tag(&c, self.k, &r)) == *tag,
            _ => false,
        }
    }
}

/// A rejection's code as the `'static` code of a refusal (every code this
/// module's checks give; anything else is `zk.refused`).
pub fn static_code(code: &str) -> &'static str {
    const CODES: [&str; 19] = [
        "zk.not_private",
        "zk.grant_named",
        "zk.no_opening",
        "zk.bad_time",
        "zk.unknown_root",
        "zk.stale_root",
        "zk.nullifier_spent",
        "zk.no_proof",
        "zk.malformed_proof",
        "zk.invalid_proof",
        "zk.bad_field",
        "zk.synthesis",
        "zk.unprovable",
        "zk.malformed_key",
        "grant.private_terms",
        "store.corrupt",
        "store.error",
        "delivery.unknown_version",
        "access.bad_request",
    ];
    CODES.iter().find(|c| **c == code).copied().unwrap_or("zk.refused")
}

/// When a root was the tree's root: from block `since` until block `until`
/// replaced it (`None`: it is the root now).
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct RootSpan {
    pub since: u64,
    pub until: Option<u64>,
}

/// A spent nullifier.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize, utoipa::ToSchema)]
pub struct NullifierRecord {
    /// The use's request (its digest).
    #[schema(value_type = String)]
    pub request: Digest,
    pub height: u64,
    pub timestamp: u64,
}

/// The grant tree over a block's overlay.
struct OverlayTree<'o, 'a>(&'o mut Overlay<'a>);

fn node_key(level: usize, index: u64) -> Vec<u8> {
    let mut k = vec![level as u8];
    k.extend(index.to_be_bytes());
    k
}

impl NodeStore for OverlayTree<'_, '_> {
    type Error = Rejection;
    fn node(&self, level: usize, index: u64) -> Result<Option<Fr>, Rejection> {
        match read_raw(self.0, CF_ZK_TREE, &node_key(level, index))? {
            None => Ok(None),
            Some(b) => {
                let arr: [u8; 32] = b
                    .try_into()
                    .map_err(|_| Rejection::new("store.corrupt", "a grant-tree node is not 32 bytes"))?;
                FieldHex(arr).fr().map(Some)
            }
        }
    }
    fn set_node(&mut self, level: usize, index: u64, value: Fr) {
        self.0
            .put(CF_ZK_TREE, node_key(level, index), FieldHex::of(&value).0.to_vec());
    }
}

fn read_raw(state: &Overlay<'_>, cf: &'static str, key: &[u8]) -> Result<Option<Vec<u8>>, Rejection> {
    state.get(cf, key).map_err(crate::machine::store_error)
}

fn put<T: BorshSerialize>(state: &mut Overlay<'_>, cf: &'static str, key: Vec<u8>, value: &T) {
    state.put(cf, key, borsh::to_vec(value).expect("borsh into a Vec cannot fail"));
}

/// The empty tree's root is current from the genesis on.
pub(crate) fn genesis_state(state: &mut Overlay<'_>) {
    let root = FieldHex::of(&tree::empty(tree::DEPTH));
    put(state, CF_ZK_ROOTS, root.0.to_vec(), &RootSpan { since: 0, until: None });
}

/// Sets a leaf and keeps the root history: the old root ends at this block
/// (or is forgotten, if this block made it: it was never a block's root).
fn set_leaf(state: &mut Overlay<'_>, ctx: &BlockContext, index: u64, leaf: Fr) -> Result<(), Rejection> {
    let old = FieldHex::of(&tree::root(&OverlayTree(state))?);
    let new = FieldHex::of(&tree::set_leaf(&mut OverlayTree(state), index, leaf)?);
    if old == new {
        return Ok(());
    }
    match read::<RootSpan>(state, CF_ZK_ROOTS, &old.0)? {
        Some(span) if span.since == ctx.height && span.since > 0 => state.delete(CF_ZK_ROOTS, old.0.to_vec()),
        Some(span) => put(
            state,
            CF_ZK_ROOTS,
            old.0.to_vec(),
            &RootSpan {
                since: span.since,
                until: Some(ctx.height),
            },
        ),
        None => return Err(Rejection::new("store.corrupt", "the grant tree's root has no history")),
    }
    put(
        state,
        CF_ZK_ROOTS,
        new.0.to_vec(),
        &RootSpan {
            since: ctx.height,
            until: None,
        },
    );
    state.put(CF_ZK_BLOCK_ROOTS, ctx.height.to_be_bytes().to_vec(), new.0.to_vec());
    Ok(())
}

/// Whether `root` was the tree's root after one of the last `window`
/// blocks before `height`, or is the root now.
pub fn root_acceptable(span: Option<RootSpan>, height: u64, window: u32) -> Result<(), Rejection> {
    match span {
        None => Err(Rejection::new(
            "zk.unknown_root",
            "the proof's root was never the grant tree's root at the end of a block",
        )),
        Some(RootSpan { until: None, .. }) => Ok(()),
        Some(RootSpan { until: Some(u), .. }) if height.saturating_sub(u) < u64::from(window) => Ok(()),
        Some(RootSpan { until: Some(u), .. }) => Err(Rejection::new(
            "zk.stale_root",
            format!(
                "the proof's root was replaced at block {u}; roots are accepted for {window} blocks after that (this is block {height}); prove against a newer root"
            ),
        )),
    }
}

/// The circuit's fields of a private grant.
pub fn grant_fields(grant: &GrantRecord, secret_hash: &FieldHex, salt: &FieldHex) -> Result<GrantFields, Rejection> {
    let t = &grant.terms;
    let mut actions = 0u8;
    for a in &t.actions {
        actions |= 1 << (*a as u8);
    }
    let fields = GrantFields {
        dataset: field::from_short(&grant.dataset.0),
        actions,
        not_after: t.not_after.map_or(0, |ms| ms / 1000),
        max_uses: t.max_uses.unwrap_or(0),
        terms: terms_digest(&QueryTerms::of(t, grant.filters.clone())),
        secret_hash: secret_hash.fr()?,
        salt: salt.fr()?,
    };
    fields
        .validate()
        .map_err(|e| Rejection::new("grant.private_terms", e.to_string()))?;
    Ok(fields)
}

/// What a private grant's terms must satisfy (checked at request and issue).
pub fn check_private_terms(t: &Terms, now: u64) -> Result<(), Rejection> {
    let bad = |m: String| Err(Rejection::new("grant.private_terms", m));
    match (t.not_after, t.max_uses) {
        (Some(end), Some(max)) => {
            if max > liutong_zk::circuit::MAX_USES {
                return bad(format!(
                    "a private grant allows at most {} uses (its proof counts uses in 16 bits)",
                    liutong_zk::circuit::MAX_USES
                ));
            }
            if end / 1000 >= 1 << (liutong_zk::circuit::TIME_BITS - 1) {
                return bad("a private grant's validity end is too far in the future".into());
            }
        }
        _ => return bad("a private grant has a validity end and a max uses".into()),
    }
    if t.not_before > now {
        return bad("a private grant must be valid from when it is issued (the proof checks only its end)".into());
    }
    if t.transferable {
        return bad("a private grant is not transferable (its secret belongs to the requester)".into());
    }
    Ok(())
}

/// Expiry index key: the day (u32 BE), the end (seconds, u64 BE), the
/// grant: a sweep reads only the days since the last one.
fn expiry_key(not_after_s: u64, grant: &GrantId) -> Vec<u8> {
    let mut k = ((not_after_s / 86_400) as u32).to_be_bytes().to_vec();
    k.extend(not_after_s.to_be_bytes());
    k.extend(grant.0);
    k
}

const SWEPT_DAY: &[u8] = b"swept_day";

/// A private grant became active: its commitment goes into the next leaf.
pub(crate) fn activate(
    state: &mut Overlay<'_>,
    ctx: &BlockContext,
    grant: &mut GrantRecord,
    issuing: &TxId,
) -> Result<(), Rejection> {
    let Some(p) = grant.private.clone() else { return Ok(()) };
    check_private_terms(&grant.terms, ctx.timestamp)?;
    sweep_expired(state, ctx)?;
    let salt = FieldHex::of(&field::reduce(
        &sha256_parts(&[b"liutong/grant-salt/v1\0", issuing.as_bytes()]).0,
    ));
    let fields = grant_fields(grant, &p.secret_hash, &salt)?;
    let commitment = fields.commitment();
    let leaf = match read_raw(state, CF_ZK_TREE, NEXT_LEAF)? {
        None => 0,
        Some(b) => u64::from_be_bytes(
            b.try_into()
                .map_err(|_| Rejection::new("store.corrupt", "the grant tree's next leaf is unreadable"))?,
        ),
    };
    if leaf >= tree::CAPACITY {
        return Err(Rejection::new(
            "zk.tree_full",
            format!("the grant tree holds {} grants", tree::CAPACITY),
        ));
    }
    state.put(CF_ZK_TREE, NEXT_LEAF.to_vec(), (leaf + 1).to_be_bytes().to_vec());
    set_leaf(state, ctx, leaf, commitment)?;
    state.put(CF_ZK_EXPIRY, expiry_key(fields.not_after, &grant.id), Vec::new());
    grant.private = Some(PrivateGrant {
        secret_hash: p.secret_hash,
        leaf: Some(leaf),
        salt: Some(salt),
        commitment: Some(FieldHex::of(&commitment)),
    });
    Ok(())
}

/// A private grant ended (revoked): its leaf goes back to zero.
pub(crate) fn deactivate(state: &mut Overlay<'_>, ctx: &BlockContext, grant: &GrantRecord) -> Result<(), Rejection> {
    let Some(PrivateGrant { leaf: Some(leaf), .. }) = &grant.private else {
        return Ok(());
    };
    sweep_expired(state, ctx)?;
    let end = grant.terms.not_after.map_or(0, |ms| ms / 1000);
    state.delete(CF_ZK_EXPIRY, expiry_key(end, &grant.id));
    set_leaf(state, ctx, *leaf, Fr::from(0u64))
}

/// Zeroes the leaves of private grants whose validity has ended by this
/// block's time. Runs whenever the tree changes (issue, revoke, use), so
/// expired leaves leave the tree at its next change; a proof for an expired
/// grant fails in the circuit at any time regardless.
fn sweep_expired(state: &mut Overlay<'_>, ctx: &BlockContext) -> Result<(), Rejection> {
    let now_s = ctx.timestamp / 1000;
    let today = (now_s / 86_400) as u32;
    let corrupt = || Rejection::new("store.corrupt", "a zk_expiry key or the swept day is unreadable");
    let from = match read_raw(state, CF_ZK_TREE, SWEPT_DAY)? {
        None => today,
        Some(b) => u32::from_be_bytes(b.try_into().map_err(|_| corrupt())?).min(today),
    };
    for day in from..=today {
        for key in state
            .keys_with_prefix(CF_ZK_EXPIRY, &day.to_be_bytes())
            .map_err(crate::machine::store_error)?
        {
            let end = key
                .get(4..12)
                .and_then(|b| <[u8; 8]>::try_from(b).ok())
                .ok_or_else(corrupt)?;
            if u64::from_be_bytes(end) > now_s {
                break;
            }
            let id = GrantId(key.get(12..28).and_then(|b| b.try_into().ok()).ok_or_else(corrupt)?);
            let grant: GrantRecord = read(state, crate::machine::CF_GRANTS, &id.0)?
                .ok_or_else(|| Rejection::new("store.corrupt", format!("zk_expiry names missing grant {id}")))?;
            state.delete(CF_ZK_EXPIRY, key.clone());
            if let Some(PrivateGrant { leaf: Some(leaf), .. }) = grant.private {
                set_leaf(state, ctx, leaf, Fr::from(0u64))?;
            }
        }
    }
    state.put(CF_ZK_TREE, SWEPT_DAY.to_vec(), today.to_be_bytes().to_vec());
    Ok(())
}

/// `grant.use_private`: the provider counts one private use before serving it.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct UsePrivate {
    /// The consumer's signed request with its claim and proof.
    pub request: SignedRequest,
}

/// The statement a private request proves.
pub fn statement(signed: &SignedRequest, claim: &PrivateClaim) -> Result<Statement, Rejection> {
    let r = &signed.request;
    Ok(Statement {
        root: claim.root.fr()?,
        dataset: field::from_short(&r.dataset.0),
        action: r.action as u8,
        time: claim.time,
        request: field::reduce(&signed.digest().0),
        nullifier: claim.nullifier.fr()?,
        escrow_tag: claim.escrow_tag.fr()?,
        terms: terms_digest(&claim.terms),
    })
}

/// Reads a column family's value by key (the store, or a block's overlay).
pub type StateReader<'a> = dyn Fn(&'static str, &[u8]) -> Result<Option<Vec<u8>>, Rejection> + 'a;

/// What both the provider's node (before serving) and the ledger (when the
/// use is counted) check of a private request, reading state through `get`:
/// its shape, the claimed time against `now`, the root's window, the
/// nullifier, and the proof.
pub fn check_private(
    signed: &SignedRequest,
    verifier: &Verifier,
    now_ms: u64,
    height: u64,
    window: u32,
    skew_ms: u64,
    get: &StateReader<'_>,
) -> Result<(), Rejection> {
    let r = &signed.request;
    let claim = r
        .private
        .as_ref()
        .ok_or_else(|| Rejection::new("zk.not_private", "the request carries no private claim"))?;
    if r.grant != GrantId::PRIVATE {
        return Err(Rejection::new(
            "zk.grant_named",
            "a private request names no grant (its proof stands for it)",
        ));
    }
    if claim.openings.is_empty() || claim.openings.len() > MAX_AUDITORS {
        return Err(Rejection::new(
            "zk.no_opening",
            format!("a private request carries its escrow opening for 1 to {MAX_AUDITORS} auditors"),
        ));
    }
    let t = claim.time.saturating_mul(1000);
    if t.abs_diff(now_ms) > skew_ms + 1000 {
        return Err(Rejection::new(
            "zk.bad_time",
            format!(
                "the proof's time {} s is more than {skew_ms} ms from {now_ms} ms",
                claim.time
            ),
        ));
    }
    let decode =
        |b: Vec<u8>| borsh::from_slice::<RootSpan>(&b).map_err(|_| Rejection::new("store.corrupt", "zk_roots entry"));
    let span = get(CF_ZK_ROOTS, &claim.root.0)?.map(decode).transpose()?;
    root_acceptable(span, height, window)?;
    if get(CF_NULLIFIERS, &claim.nullifier.0)?.is_some() {
        return Err(Rejection::new(
            "zk.nullifier_spent",
            format!(
                "nullifier {} is spent: this use of the grant was made already",
                claim.nullifier
            ),
        ));
    }
    let proof = signed
        .proof
        .as_deref()
        .ok_or_else(|| Rejection::new("zk.no_proof", "a private request carries a proof"))?;
    let proof = UseProof::from_bytes(proof).map_err(|e| Rejection::new(e.code(), e.to_string()))?;
    verifier.verify(&statement(signed, claim)?, &proof).map_err(|e| {
        Rejection::new(
            e.code(),
            format!("{e} (another request, dataset, action, time, root or terms than proven?)"),
        )
    })
}

/// `grant.use_private` in the state machine: only the dataset's provider,
/// every check of [`check_private`] at the block's time and height, then the
/// nullifier is spent and the use recorded.
pub(crate) fn use_private(
    body: UsePrivate,
    signer: &PublicKey,
    chain_id: &str,
    params: (&Verifier, u32, u64),
    ctx: &BlockContext,
    state: &mut Overlay<'_>,
) -> Result<Applied, Rejection> {
    let (verifier, window, skew) = params;
    let signed = &body.request;
    let r = &signed.request;
    let party = crate::datasets::provider(state, signer)?;
    let dataset = crate::datasets::own_listed(state, &r.dataset, &party)?;
    if r.chain_id != chain_id {
        return Err(Rejection::new(
            "access.bad_request",
            format!("the request is for chain {:?}", r.chain_id),
        ));
    }
    if r.version == 0 || r.version > dataset.version {
        return Err(Rejection::new(
            "delivery.unknown_version",
            format!("dataset {} has versions 1 to {}", r.dataset, dataset.version),
        ));
    }
    signed
        .verify()
        .map_err(|e| Rejection::new("access.bad_request", format!("the consumer's request: {e}")))?;
    sweep_expired(state, ctx)?;
    {
        let st: &Overlay<'_> = state;
        let get = |cf: &'static str, k: &[u8]| read_raw(st, cf, k);
        check_private(signed, verifier, ctx.timestamp, ctx.height, window, skew, &get)?;
    }
    let digest = signed.digest();
    let claim = r.private.as_ref().expect("checked above");
    put(
        state,
        CF_NULLIFIERS,
        claim.nullifier.0.to_vec(),
        &NullifierRecord {
            request: digest,
            height: ctx.height,
            timestamp: ctx.timestamp,
        },
    );
    crate::access::record_use(state, &digest, &GrantId::PRIVATE, ctx)?;
    Ok(Applied::Committed(Record::new(serde_json::json!({
        "request": digest,
        "nullifier": claim.nullifier,
        "dataset": r.dataset,
        "action": r.action.as_str(),
        "height": ctx.height,
    }))))
}

/// The grant tree as committed in a node's store.
struct StoreTree<'a>(&'a liutong_ledger::Store);

impl NodeStore for StoreTree<'_> {
    type Error = crate::Error;
    fn node(&self, level: usize, index: u64) -> crate::Result<Option<Fr>> {
        match self.0.get(CF_ZK_TREE, &node_key(level, index))? {
            None => Ok(None),
            Some(b) => {
                let arr: [u8; 32] = b
                    .try_into()
                    .map_err(|_| crate::Error::Ledger(liutong_ledger::Error::Corrupt("zk_tree node".into())))?;
                Ok(Some(
                    FieldBytes(arr).to_fr().map_err(|e| crate::Error::Io(e.to_string()))?,
                ))
            }
        }
    }
    fn set_node(&mut self, _: usize, _: u64, _: Fr) {
        unreachable!("the committed tree is read-only")
    }
}

/// Leaf `leaf`'s path at the committed root.
pub fn path_view(ledger: &liutong_ledger::Ledger, leaf: u64) -> crate::Result<crate::api::ZkPathView> {
    // Read at one height: the tree could change between reads otherwise.
    loop {
        let height = ledger.height();
        let t = StoreTree(ledger.store());
        let p = tree::path(&t, leaf)?;
        let value = t.node(0, leaf)?.unwrap_or_default();
        let root = tree::root(&t)?;
        if ledger.height() == height && p.root(value) == root {
            return Ok(crate::api::ZkPathView {
                leaf,
                value: FieldBytes::of(&value).to_hex(),
                root: FieldBytes::of(&root).to_hex(),
                siblings: p.to_hex(),
                height,
            });
        }
    }
}

/// A spent nullifier's record, from committed state.
pub fn nullifier(store: &liutong_ledger::Store, n: &FieldHex) -> crate::Result<Option<NullifierRecord>> {
    match store.get(CF_NULLIFIERS, &n.0)? {
        None => Ok(None),
        Some(b) => borsh::from_slice(&b)
            .map(Some)
            .map_err(|_| crate::Error::Ledger(liutong_ledger::Error::Corrupt("nullifiers entry".into()))),
    }
}

/// Fetches the use circuit's proving key from `client` into `home`, unless
/// the home has one; it is kept only if its verifying key is the genesis's.
pub async fn fetch_proving_key(
    home: &crate::home::Home,
    client: &crate::client::Client,
    genesis: &crate::genesis::Genesis,
) -> crate::Result<()> {
    if home.has_proving_key() {
        return Ok(());
    }
    let bytes = client.bytes("/v1/zk/proving-key").await?;
    let bad = |why: String| crate::Error::BadGenesis(format!("{} serves {why}", client.url()));
    let pk = liutong_zk::groth16::pk_from_bytes(&bytes).map_err(|e| bad(format!("a bad proving key: {e}")))?;
    if liutong_zk::groth16::vk_digest(&pk.vk) != genesis.zk.verifying_key_digest.0 {
        return Err(bad("a proving key for another verifying key than the genesis's".into()));
    }
    home.write_proving_key(&bytes)
}

/// What a consumer needs to make private requests for one grant: the
/// proving key, the grant's opening, its path at a recent root, the next
/// unspent use index, and the auditors the escrow opening is sealed to.
pub struct PrivateUse {
    pub grant: GrantId,
    pub prover: std::sync::Arc<liutong_zk::Prover>,
    pub witness: liutong_zk::UseWitness,
    pub auditors: Vec<(String, EncryptionPublicKey)>,
    /// The grant's query terms (their digest is in the commitment).
    pub terms: QueryTerms,
    /// The prover's sums from this grant's earlier uses, and where they are kept.
    pub cache: std::sync::Mutex<liutong_zk::groth16::ProverCache>,
    pub cache_path: std::path::PathBuf,
}

impl PrivateUse {
    /// Gathers it all from the consumer's own node (which thereby learns
    /// nothing it does not hold already) and the home.
    pub async fn prepare(
        home: &crate::home::Home,
        client: &crate::client::Client,
        grant: &GrantRecord,
    ) -> crate::Result<PrivateUse> {
        use crate::delivery::Refusal;
        let refuse = |code: &'static str, m: String| -> crate::Error { Refusal::new(code, m).into() };
        let p = grant.private.as_ref().ok_or_else(|| {
            refuse(
                "zk.not_private",
                format!("grant {} was not requested with --private", grant.id),
            )
        })?;
        let (Some(leaf), Some(salt), Some(commitment)) = (p.leaf, p.salt, p.commitment) else {
            return Err(refuse("zk.not_active", format!("grant {} is not issued yet", grant.id)));
        };
        let secret = home
            .private_secrets()?
            .get(&p.secret_hash.to_string())
            .cloned()
            .ok_or_else(|| {
                refuse(
                    "zk.no_secret",
                    format!(
                        "this home does not hold grant {}'s secret (it was requested from another home)",
                        grant.id
                    ),
                )
            })?;
        let secret: FieldHex = secret.parse()?;
        let secret = secret.fr().map_err(|r| crate::Error::Home(r.message))?;
        let fields = grant_fields(grant, &p.secret_hash, &salt).map_err(|r| refuse(static_code(&r.code), r.message))?;
        if FieldHex::of(&fields.commitment()) != commitment {
            return Err(refuse(
                "zk.bad_commitment",
                "the grant's commitment is not its fields'".into(),
            ));
        }
        let genesis = crate::cli::chain_genesis(home, client, false).await?;
        // A home without a node of its own takes the key from the node it asks.
        fetch_proving_key(home, client, &genesis).await?;
        let view: crate::api::ZkPathView = client.get(&format!("/v1/zk/paths/{leaf}")).await?;
        if view.value != commitment.to_string() {
            return Err(refuse(
                "zk.not_in_tree",
                format!(
                    "grant {}'s leaf is no longer in the grant tree (revoked or expired)",
                    grant.id
                ),
            ));
        }
        let path =
            liutong_zk::MerklePath::from_hex(leaf, &view.siblings).map_err(|e| crate::Error::Io(e.to_string()))?;
        let mut k = None;
        for i in 0..fields.max_uses {
            let n = FieldHex::of(&liutong_zk::circuit::nullifier(&secret, &fields.salt, i));
            match client.get::<NullifierRecord>(&format!("/v1/zk/nullifiers/{n}")).await {
                Ok(_) => continue,
                Err(e) if e.code() == "not_found" => {
                    k = Some(i);
                    break;
                }
                Err(e) => return Err(e),
            }
        }
        let k = k.ok_or_else(|| {
            refuse(
                "use.exhausted",
                format!(
                    "all {} uses of grant {} are spent (their nullifiers are on the ledger)",
                    fields.max_uses, grant.id
                ),
            )
        })?;
        let auditors: Vec<(String, EncryptionPublicKey)> = client
            .parties()
            .await?
            .into_iter()
            .filter(|p| {
                p.status == crate::party::PartyStatus::Active && p.profile.roles.contains(&crate::party::Role::Auditor)
            })
            .take(MAX_AUDITORS)
            .map(|p| (p.profile.credit_code.to_string(), p.profile.encryption_key))
            .collect();
        if auditors.is_empty() {
            return Err(refuse(
                "zk.no_auditor",
                "private mode seals each use's opening to the consortium's auditors, and none is registered".into(),
            ));
        }
        let prover = {
            let home = home.clone();
            tokio::task::spawn_blocking(move || home.prover(&genesis))
                .await
                .map_err(|e| crate::Error::Io(format!("loading the proving key: {e}")))??
        };
        Ok(PrivateUse {
            grant: grant.id,
            prover: std::sync::Arc::new(prover),
            witness: liutong_zk::UseWitness {
                grant: fields,
                secret,
                path,
                k,
                escrow_randomness: field::random(),
            },
            auditors,
            terms: QueryTerms::of(&grant.terms, grant.filters.clone()),
            cache: std::sync::Mutex::new(
                std::fs::read(home.prover_cache_path(&grant.id))
                    .map(|b| liutong_zk::groth16::ProverCache::from_bytes(&b))
                    .unwrap_or_default(),
            ),
            cache_path: home.prover_cache_path(&grant.id),
        })
    }

    /// Turns `request` into a private one (no grant; the claim, the escrow
    /// opening sealed to each auditor), signs it with the one-time `key`,
    /// and proves it.
    pub fn sign(
        &self,
        mut request: crate::delivery::DeliveryRequest,
        key: &liutong_core::SigningKey,
        encryption: EncryptionPublicKey,
    ) -> crate::Result<SignedRequest> {
        let w = &self.witness;
        let time = liutong_core::now_ms() / 1000;
        let draft = w.statement(request.action as u8, time, Fr::from(0u64));
        let tag = FieldHex::of(&draft.escrow_tag);
        let opening = Opening {
            grant: self.grant,
            commitment: FieldHex::of(&w.grant.commitment()),
            k: w.k,
            randomness: FieldHex::of(&w.escrow_randomness),
        };
        let openings = self
            .auditors
            .iter()
            .map(|(code, k)| opening.seal(code, k, &tag))
            .collect::<crate::Result<Vec<_>>>()?;
        request.grant = GrantId::PRIVATE;
        request.private = Some(PrivateClaim {
            root: FieldHex::of(&draft.root),
            nullifier: FieldHex::of(&draft.nullifier),
            escrow_tag: tag,
            time,
            terms: self.terms.clone(),
            encryption_key: encryption,
            openings,
        });
        self.prove(SignedRequest::sign(request, key))
    }

    fn prove(&self, mut signed: SignedRequest) -> crate::Result<SignedRequest> {
        let claim = signed.request.private.clone().expect("set by sign");
        let statement = statement(&signed, &claim).map_err(|r| crate::Error::Io(r.message))?;
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        let proof = self
            .prover
            .prove_with(&statement, &self.witness, &mut cache, &mut rand::rngs::OsRng)
            .map_err(|e| crate::delivery::Refusal::new(e.code(), e.to_string()))?;
        // Only saves time next use: a cache that cannot be written is left.
        if let Some(dir) = self.cache_path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let _ = crate::home::write_atomically(&self.cache_path, &cache.to_bytes(), true);
        signed.proof = Some(proof.to_bytes());
        Ok(signed)
    }
}
