//! Evidence bundles, format `liutong-evidence/2`: an access-log entry, a
//! grant's whole history or a trace, in one JSON file that verifies offline
//! with nothing but the consortium's genesis document.
//!
//! A bundle holds the newest signed header the node had (`head`), the signed
//! header of every block that holds a bundled transaction with an RFC 9162
//! consistency proof from its log to the head's, and each transaction's
//! exact bytes with its RFC 6962 inclusion proof against its own block's
//! log. Transactions play one of three roles: `entry` (an `access.log`, with
//! the consumer's signed request and receipt inside), `grant` (the grant's
//! request, issue, transfers, revocation) and `key` (the registrations and
//! rotations that bind every signing key the bundle relies on to a party).
//! Private entries are checked against `verifying_key`, which must be the
//! genesis's. The member who exported the bundle signs it (`attestation`)
//! over SHA-256 of the bundle's canonical JSON without the attestation, and
//! the file must be exactly that canonical JSON: any byte altered is either
//! malformed, not canonical, a failed proof or a failed signature.
//!
//! What a bundle proves: each transaction in it is in the ledger the genesis
//! names, in the block and at the time shown, signed by the parties shown.
//! It cannot prove that a trace is complete (that no other entry exists):
//! the attestation names who claimed it was; a second member's node, or
//! `liutong chain verify`, settles that.

use super::{trace_all, Scope, TraceFilter};
use crate::access::{AccessRecord, LogAccess};
use crate::delivery::{Refusal, Verdict};
use crate::genesis::Genesis;
use crate::grants::{EndGrant, GrantId, IssueGrant, RequestGrant, TransferGrant};
use crate::machine::{
    CF_PARTY_KEYS, KIND_ACCESS_LOG, KIND_GRANT_ISSUE, KIND_GRANT_REJECT, KIND_GRANT_REQUEST, KIND_GRANT_REVOKE,
    KIND_GRANT_TRANSFER, KIND_REGISTER, KIND_ROTATE_KEYS,
};
use crate::party::{KeyBinding, RegisterParty, RotateKeys};
use crate::wire::HeaderJson;
use crate::{Error, Result};
use borsh::{BorshDeserialize, BorshSerialize};
use liutong_core::merkle::{leaf_hash, verify_consistency, verify_inclusion};
use liutong_core::{
    decode_canonical, sha256, Canonical, CreditCode, Digest, PublicKey, Signature, SigningKey, Timestamp,
};
use liutong_ledger::{Ledger, SignedHeader, SignedTx, TxId};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap};

pub const BUNDLE_FORMAT: &str = "liutong-evidence/2";

/// Most entries one bundle holds.
pub const MAX_BUNDLE_ENTRIES: usize = 10_000;

/// What a bundle is evidence of.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Subject {
    /// One access-log entry, by its delivery (first request digest).
    Entry { entry: Digest },
    /// A grant's history and every use of it.
    Grant { grant: GrantId },
    /// Every entry a trace selects (as the exporter could see them).
    Trace { filter: TraceFilter },
}

impl Subject {
    pub fn describe(&self) -> String {
        match self {
            Subject::Entry { entry } => format!("access-log entry {entry}"),
            Subject::Grant { grant } => format!("grant {grant}: its history and every use"),
            Subject::Trace { filter } => format!("trace of {}", filter.describe()),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Entry,
    Grant,
    Key,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlockEvidence {
    pub header: HeaderJson,
    /// RFC 9162 §2.1.4 consistency proof from this block's log to the head's.
    pub consistency: Vec<Digest>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TxEvidence {
    pub role: Role,
    /// The block that holds it.
    pub height: u64,
    pub leaf_index: u64,
    /// Hex of the exact canonical bytes hashed into the log.
    pub bytes: String,
    /// RFC 9162 §2.1.3 inclusion proof against the block's log.
    pub audit_path: Vec<Digest>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Attestation {
    /// The exporter's signing key (bound to its party by a `key` transaction).
    pub key: PublicKey,
    pub time: Timestamp,
    /// Over `ATTEST_DOMAIN ‖ time (u64 BE) ‖ SHA-256(canonical JSON without the attestation)`.
    pub signature: Signature,
}

pub const ATTEST_DOMAIN: &[u8] = b"liutong/evidence-bundle/v2\0";

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bundle {
    pub format: String,
    pub chain_id: String,
    pub genesis_digest: Digest,
    pub orderer_key: PublicKey,
    pub subject: Subject,
    /// The newest signed header when the bundle was made.
    pub head: HeaderJson,
    /// Ascending by height.
    pub blocks: Vec<BlockEvidence>,
    /// Ascending by leaf index.
    pub transactions: Vec<TxEvidence>,
    /// The use circuit's verifying key (hex), when a private entry is inside.
    pub verifying_key: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attestation: Option<Attestation>,
}

impl Bundle {
    /// The bundle's file form: pretty JSON and a final newline. A verifier
    /// accepts only this form.
    pub fn to_canonical_json(&self) -> Vec<u8> {
        let mut out = serde_json::to_vec_pretty(self).expect("a bundle serializes");
        out.push(b'\n');
        out
    }

    /// What the exporter signs: the canonical JSON without the attestation.
    fn body_digest(&self) -> Digest {
        let mut body = self.clone();
        body.attestation = None;
        sha256(&body.to_canonical_json())
    }

    fn attest_message(&self, time: Timestamp) -> Vec<u8> {
        [ATTEST_DOMAIN, &time.to_be_bytes(), self.body_digest().as_bytes()].concat()
    }

    /// Signs the bundle as its exporter.
    pub fn attest(&mut self, key: &SigningKey, time: Timestamp) {
        self.attestation = None;
        let signature = key.sign(&self.attest_message(time));
        self.attestation = Some(Attestation {
            key: key.public_key(),
            time,
            signature,
        });
    }
}

fn refuse(code: &'static str, message: impl Into<String>) -> Error {
    Refusal::new(code, message).into()
}

/// The entries a subject names, as `scope` may see them.
fn entries_of(ledger: &Ledger, subject: &Subject, scope: &Scope) -> Result<Vec<AccessRecord>> {
    let store = ledger.store();
    match subject {
        Subject::Entry { entry } => {
            let record = crate::access::entry(store, entry)?
                .filter(|r| scope.admits(r))
                .ok_or_else(|| refuse("not_found", format!("no access-log entry {entry} you may see")))?;
            Ok(vec![record])
        }
        Subject::Grant { grant } => {
            let g = crate::grants::grant(store, grant)?;
            if let Scope::Party(me) = scope {
                if g.provider != *me && g.holder != *me {
                    return Err(refuse(
                        "audit.not_visible",
                        format!("grant {grant} is not yours to see (you are neither its provider nor its holder)"),
                    ));
                }
            }
            let filter = TraceFilter {
                grant: Some(*grant),
                ..Default::default()
            };
            // A holder by transfer sees its own uses, not the earlier holder's.
            trace_all(store, &filter, scope, MAX_BUNDLE_ENTRIES)
        }
        Subject::Trace { filter } => trace_all(store, filter, scope, MAX_BUNDLE_ENTRIES),
    }
}

/// The transactions that bind `key` to its party, from the registration.
fn key_chain(ledger: &Ledger, genesis: &Genesis, key: &PublicKey) -> Result<Vec<TxId>> {
    let mut chain = Vec::new();
    let mut key = *key;
    while key != genesis.operator.signing_key {
        let binding: KeyBinding = match ledger.store().get(CF_PARTY_KEYS, key.as_bytes())? {
            Some(b) => borsh::from_slice(&b).map_err(|_| crate::access::corrupt())?,
            None => return Err(refuse("audit.unbound_key", format!("key {key} belongs to no party"))),
        };
        let Some(by) = binding.bound_by else {
            break;
        };
        chain.push(by);
        let tx = ledger.tx(&by)?;
        if tx.tx.tx.kind == KIND_REGISTER || chain.len() > 64 {
            break;
        }
        key = tx.tx.tx.signer;
    }
    Ok(chain)
}

/// Builds the bundle of `subject` from a node's committed state, as `scope`
/// may see it, with the key bindings of `exporter` (who will attest it).
pub fn build(
    ledger: &Ledger,
    genesis: &Genesis,
    subject: &Subject,
    scope: &Scope,
    exporter: &PublicKey,
) -> Result<Bundle> {
    let head_height = ledger.height();
    let head = ledger.header(head_height)?;
    let entries = entries_of(ledger, subject, scope)?;
    let store = ledger.store();
    let mut roles: BTreeMap<TxId, Role> = BTreeMap::new();
    let mut keys: BTreeSet<PublicKey> = BTreeSet::new();
    keys.insert(*exporter);
    let mut grants: BTreeSet<GrantId> = BTreeSet::new();
    if let Subject::Grant { grant } = subject {
        grants.insert(*grant);
    }
    let mut private = false;
    for e in &entries {
        roles.insert(e.tx_id, Role::Entry);
        if let Some(g) = e.grant {
            grants.insert(g);
        }
        private |= e.private.is_some();
    }
    for g in &grants {
        let record = crate::grants::grant(store, g)?;
        for event in &record.history {
            roles.entry(event.tx_id).or_insert(Role::Grant);
        }
    }
    // Every signer: the transactions', and the consumers' inside entries
    // (a private request's key is one-time and bound to no one).
    let mut records = Vec::with_capacity(roles.len());
    for id in roles.keys() {
        let rec = ledger.tx(id)?;
        keys.insert(rec.tx.tx.signer);
        if rec.tx.tx.kind == KIND_ACCESS_LOG {
            let body: LogAccess = decode_canonical("access.log", &rec.tx.tx.body)?;
            if body.request.request.private.is_none() {
                keys.insert(body.request.signer);
            }
        }
        records.push(rec);
    }
    for key in &keys {
        for id in key_chain(ledger, genesis, key)? {
            roles.entry(id).or_insert(Role::Key);
        }
    }
    let mut txs = Vec::with_capacity(roles.len());
    let mut heights = BTreeSet::new();
    // Each transaction against its own block: entries know theirs.
    let known: BTreeMap<TxId, u64> = entries.iter().map(|e| (e.tx_id, e.height)).collect();
    for (id, role) in &roles {
        let height = match known.get(id) {
            Some(h) => *h,
            None => ledger.height_of_index(ledger.tx_index(id)?)?,
        };
        let proof = ledger.inclusion_proof(id, Some(height))?;
        heights.insert(height);
        txs.push(TxEvidence {
            role: *role,
            height,
            leaf_index: proof.leaf_index,
            bytes: hex::encode(&proof.tx_bytes),
            audit_path: proof.audit_path,
        });
    }
    txs.sort_by_key(|t| t.leaf_index);
    let blocks = heights
        .into_iter()
        .map(|h| {
            let c = ledger.consistency_proof(h, head_height)?;
            Ok(BlockEvidence {
                header: HeaderJson::from(&c.from),
                consistency: c.path,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Bundle {
        format: BUNDLE_FORMAT.into(),
        chain_id: genesis.chain_id.clone(),
        genesis_digest: genesis.digest(),
        orderer_key: genesis.orderer,
        subject: subject.clone(),
        head: HeaderJson::from(&head),
        blocks,
        transactions: txs,
        verifying_key: private.then(|| genesis.zk.verifying_key.clone()),
        attestation: None,
    })
}

/// A party as a bundle names it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Named {
    pub credit_code: String,
    pub legal_name: String,
}

impl std::fmt::Display for Named {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.legal_name, self.credit_code)
    }
}

/// One entry as verified.
#[derive(Clone, Debug, Serialize)]
pub struct VerifiedEntry {
    pub request: Digest,
    pub tx_id: TxId,
    pub height: u64,
    /// The block's time: when the ledger recorded the use.
    pub logged_at: Timestamp,
    pub dataset: String,
    pub version: u32,
    pub action: String,
    pub provider: Named,
    /// The consumer; absent for a private use (its proof stands for it).
    pub consumer: Option<Named>,
    pub grant: Option<GrantId>,
    pub bytes: u64,
    /// acknowledged, disputed or unacknowledged.
    pub outcome: String,
    /// What the consumer's receipt confirmed: the content (or query result) digest.
    pub receipt_content: Option<Digest>,
    pub private: bool,
}

/// One grant event as verified.
#[derive(Clone, Debug, Serialize)]
pub struct VerifiedGrantEvent {
    pub grant: GrantId,
    pub kind: String,
    pub tx_id: TxId,
    pub height: u64,
    pub time: Timestamp,
    pub signer: Named,
}

/// One kind of check and how many times it passed.
#[derive(Clone, Debug, Serialize)]
pub struct Check {
    pub check: String,
    pub passed: u64,
}

/// What a bundle proves, and every check that proved it.
#[derive(Clone, Debug, Serialize)]
pub struct VerifiedBundle {
    pub chain_id: String,
    pub subject: String,
    pub head_height: u64,
    pub head_time: Timestamp,
    pub exported_by: Named,
    pub exported_at: Timestamp,
    pub entries: Vec<VerifiedEntry>,
    pub grant_events: Vec<VerifiedGrantEvent>,
    pub checks: Vec<Check>,
}

/// Tallies checks in the order they are first made.
#[derive(Default)]
struct Checks(Vec<Check>);

impl Checks {
    fn pass(&mut self, check: &str, n: u64) {
        if n == 0 {
            return;
        }
        match self.0.iter_mut().find(|c| c.check == check) {
            Some(c) => c.passed += n,
            None => self.0.push(Check {
                check: check.to_string(),
                passed: n,
            }),
        }
    }
}

fn bad(message: impl Into<String>) -> Error {
    Error::BadEvidence(message.into())
}

/// A header from its JSON, which must be exactly the canonical rendering
/// of the header it decodes to.
fn header_of(what: &str, j: &HeaderJson) -> Result<SignedHeader> {
    let h = SignedHeader::try_from(j).map_err(|e| bad(format!("{what}: {e}")))?;
    if HeaderJson::from(&h) != *j {
        return Err(bad(format!("{what}: not in canonical form (hex must be lower case)")));
    }
    Ok(h)
}

/// Verifies a bundle file with nothing but the genesis: no node, no network.
pub fn verify(file: &[u8], genesis: &Genesis) -> Result<VerifiedBundle> {
    let bundle: Bundle = serde_json::from_slice(file).map_err(|e| bad(format!("not a {BUNDLE_FORMAT} bundle: {e}")))?;
    let mut checks = Checks::default();
    if bundle.format != BUNDLE_FORMAT {
        return Err(bad(format!(
            "format is {:?}, expected {BUNDLE_FORMAT:?}",
            bundle.format
        )));
    }
    if bundle.to_canonical_json() != file {
        return Err(bad(
            "the file is not the bundle's canonical JSON (pretty-printed as exported, lower-case hex): it was edited",
        ));
    }
    checks.pass(
        "the file is the bundle's canonical JSON (no byte edited outside its values)",
        1,
    );
    if bundle.chain_id != genesis.chain_id || bundle.genesis_digest != genesis.digest() {
        return Err(bad(format!(
            "the bundle is for chain {:?} (genesis {}), the given genesis is {:?} ({})",
            bundle.chain_id,
            bundle.genesis_digest,
            genesis.chain_id,
            genesis.digest()
        )));
    }
    if bundle.orderer_key != genesis.orderer {
        return Err(bad("the bundle names another orderer key than the genesis"));
    }
    checks.pass("chain id, genesis digest and orderer key are the given genesis's", 1);

    // Headers: the head, then each block, signed by the genesis's orderer,
    // each block's log a prefix of the head's.
    let head = header_of("head", &bundle.head)?;
    let mut headers = vec![("head".to_string(), head.clone())];
    let mut blocks: HashMap<u64, SignedHeader> = HashMap::new();
    let mut previous = 0;
    for (i, b) in bundle.blocks.iter().enumerate() {
        let what = format!("block {} (entry {} of blocks)", b.header.height, i + 1);
        let h = header_of(&what, &b.header)?;
        if h.header.height <= previous {
            return Err(bad(format!(
                "{what}: blocks must be in ascending height order, once each"
            )));
        }
        previous = h.header.height;
        if h.header.height > head.header.height {
            return Err(bad(format!("{what}: is after the head (block {})", head.header.height)));
        }
        headers.push((what, h.clone()));
        blocks.insert(h.header.height, h);
    }
    let verdicts: Vec<bool> = headers
        .par_iter()
        .map(|(_, h)| h.verify(&genesis.orderer).is_ok())
        .collect();
    if let Some(i) = verdicts.iter().position(|ok| !ok) {
        return Err(bad(format!(
            "{}: its header is not signed by the genesis's orderer",
            headers[i].0
        )));
    }
    checks.pass("block header signed by the genesis's orderer key", headers.len() as u64);
    for b in &bundle.blocks {
        let h = &blocks[&b.header.height].header;
        verify_consistency(
            h.log_size,
            head.header.log_size,
            &b.consistency,
            &h.log_root,
            &head.header.log_root,
        )
        .map_err(|e| bad(format!("block {}: consistency proof to the head fails: {e}", h.height)))?;
        if h.height == head.header.height && h != &head.header {
            return Err(bad(format!("block {}: differs from the head header", h.height)));
        }
    }
    checks.pass(
        "block's log is a prefix of the head's (RFC 9162 consistency proof)",
        bundle.blocks.len() as u64,
    );

    // Transactions: exact bytes, chain, signature, inclusion in their block.
    let mut last_leaf = None;
    let mut decoded = Vec::with_capacity(bundle.transactions.len());
    for t in &bundle.transactions {
        let what = format!("transaction at leaf {}", t.leaf_index);
        if last_leaf.is_some_and(|l| t.leaf_index <= l) {
            return Err(bad(format!(
                "{what}: transactions must be in ascending leaf order, once each"
            )));
        }
        last_leaf = Some(t.leaf_index);
        let bytes = hex::decode(&t.bytes).map_err(|_| bad(format!("{what}: bytes are not hex")))?;
        if hex::encode(&bytes) != t.bytes {
            return Err(bad(format!("{what}: bytes are not in canonical form (lower-case hex)")));
        }
        let block = blocks.get(&t.height).ok_or_else(|| {
            bad(format!(
                "{what}: names block {}, which the bundle does not hold",
                t.height
            ))
        })?;
        let h = &block.header;
        if t.leaf_index < h.first_tx_index || t.leaf_index >= h.log_size {
            return Err(bad(format!(
                "{what}: block {} holds leaves {} to {}",
                h.height,
                h.first_tx_index,
                h.log_size.saturating_sub(1)
            )));
        }
        verify_inclusion(&leaf_hash(&bytes), t.leaf_index, h.log_size, &t.audit_path, &h.log_root)
            .map_err(|e| bad(format!("{what}: inclusion proof against block {} fails: {e}", h.height)))?;
        let tx = SignedTx::from_canonical_bytes(&bytes).map_err(|e| bad(format!("{what}: {e}")))?;
        if tx.tx.chain_id != genesis.chain_id {
            return Err(bad(format!("{what}: is for chain {:?}", tx.tx.chain_id)));
        }
        decoded.push((t, tx, sha256(&bytes), h.timestamp));
    }
    checks.pass(
        "transaction in its block's log (RFC 6962 inclusion proof)",
        decoded.len() as u64,
    );
    let verdicts: Vec<bool> = decoded
        .par_iter()
        .map(|(_, tx, _, _)| tx.verify_signature().is_ok())
        .collect();
    if let Some(i) = verdicts.iter().position(|ok| !ok) {
        return Err(bad(format!(
            "transaction at leaf {}: its signature does not verify",
            decoded[i].0.leaf_index
        )));
    }
    checks.pass(
        "transaction signed by its signer's key, for this chain",
        decoded.len() as u64,
    );

    // Keys: registrations bind a key to a party, rotations move it on (and
    // retire the old key from that leaf on).
    let mut parties: HashMap<PublicKey, Named> = HashMap::new();
    let mut retired: HashMap<PublicKey, u64> = HashMap::new();
    let operator = Named {
        credit_code: genesis.operator.credit_code.to_string(),
        legal_name: genesis.operator.legal_name.clone(),
    };
    parties.insert(genesis.operator.signing_key, operator);
    for (t, tx, _, _) in decoded.iter().filter(|(t, ..)| t.role == Role::Key) {
        let what = format!("key transaction at leaf {}", t.leaf_index);
        match tx.tx.kind.as_str() {
            KIND_REGISTER => {
                let body: RegisterParty = decode_canonical("registration", &tx.tx.body)?;
                let code = CreditCode::parse(&body.credit_code).map_err(|e| bad(format!("{what}: {e}")))?;
                parties.insert(
                    tx.tx.signer,
                    Named {
                        credit_code: code.to_string(),
                        legal_name: body.legal_name,
                    },
                );
            }
            KIND_ROTATE_KEYS => {
                let party = parties
                    .get(&tx.tx.signer)
                    .cloned()
                    .ok_or_else(|| bad(format!("{what}: a rotation by a key no earlier transaction binds")))?;
                let body: RotateKeys = decode_canonical("rotation", &tx.tx.body)?;
                parties.insert(body.new_signing_key, party);
                retired.insert(tx.tx.signer, t.leaf_index);
            }
            kind => return Err(bad(format!("{what}: a {kind} transaction binds no key"))),
        }
    }
    checks.pass(
        "signing key bound to its party (registration, then rotations)",
        decoded.iter().filter(|(t, ..)| t.role == Role::Key).count() as u64,
    );
    if let Some((t, tx, ..)) = decoded
        .iter()
        .find(|(t, tx, ..)| retired.get(&tx.tx.signer).is_some_and(|at| t.leaf_index > *at))
    {
        return Err(bad(format!(
            "transaction at leaf {}: signed by key {} after it was rotated out",
            t.leaf_index, tx.tx.signer
        )));
    }
    checks.pass("transaction signed by a key not yet rotated out", decoded.len() as u64);
    let party_of = |key: &PublicKey, what: &str| -> Result<Named> {
        parties.get(key).cloned().ok_or_else(|| {
            bad(format!(
                "{what}: key {key} is bound to no party by the bundle's key transactions"
            ))
        })
    };

    // Grants: what each grant transaction did.
    let mut grant_events = Vec::new();
    let mut requested: BTreeSet<GrantId> = BTreeSet::new();
    for (t, tx, id, time) in decoded.iter().filter(|(t, ..)| t.role == Role::Grant) {
        let what = format!("grant transaction at leaf {}", t.leaf_index);
        let grant = match tx.tx.kind.as_str() {
            KIND_GRANT_REQUEST => {
                let _: RequestGrant = decode_canonical("grant request", &tx.tx.body)?;
                let g = GrantId::of_request(id);
                requested.insert(g);
                g
            }
            KIND_GRANT_ISSUE => decode_canonical::<IssueGrant>("grant issue", &tx.tx.body)?.grant,
            KIND_GRANT_REJECT | KIND_GRANT_REVOKE => decode_canonical::<EndGrant>("grant end", &tx.tx.body)?.grant,
            KIND_GRANT_TRANSFER => decode_canonical::<TransferGrant>("grant transfer", &tx.tx.body)?.grant,
            kind => {
                return Err(bad(format!(
                    "{what}: a {kind} transaction is not part of a grant's history"
                )))
            }
        };
        grant_events.push(VerifiedGrantEvent {
            grant,
            kind: tx.tx.kind.clone(),
            tx_id: *id,
            height: t.height,
            time: *time,
            signer: party_of(&tx.tx.signer, &what)?,
        });
    }
    checks.pass(
        "grant transaction decoded and its signer named",
        grant_events.len() as u64,
    );

    // Entries: the provider's access.log with the consumer's signatures inside.
    let vk = match &bundle.verifying_key {
        Some(hex_key) => {
            if *hex_key != genesis.zk.verifying_key {
                return Err(bad("the bundle's verifying key is not the genesis's"));
            }
            let vk = genesis.zk.verifying_key()?;
            Some(liutong_zk::Verifier::new(&vk))
        }
        None => None,
    };
    let entry_txs: Vec<_> = decoded.iter().filter(|(t, ..)| t.role == Role::Entry).collect();
    let bodies: Vec<(String, LogAccess)> = entry_txs
        .iter()
        .map(|(t, tx, ..)| {
            let what = format!("entry at leaf {}", t.leaf_index);
            if tx.tx.kind != KIND_ACCESS_LOG {
                return Err(bad(format!(
                    "{what}: a {} transaction is not an access-log entry",
                    tx.tx.kind
                )));
            }
            let body: LogAccess =
                decode_canonical("access.log", &tx.tx.body).map_err(|e| bad(format!("{what}: {e}")))?;
            Ok((what, body))
        })
        .collect::<Result<_>>()?;
    let inner: Vec<std::result::Result<(), String>> = bodies
        .par_iter()
        .map(|(what, b)| {
            b.request
                .verify()
                .map_err(|e| format!("{what}: the consumer's request: {}", e.message))?;
            if let Some(r) = &b.receipt {
                r.verify()
                    .map_err(|e| format!("{what}: the consumer's receipt: {}", e.message))?;
                if r.signer != b.request.signer {
                    return Err(format!("{what}: the receipt is not signed by the key that asked"));
                }
                if r.receipt.request != b.request.digest() {
                    return Err(format!("{what}: the receipt is for another delivery"));
                }
            }
            Ok(())
        })
        .collect();
    if let Some(Err(e)) = inner.into_iter().find(|r| r.is_err()) {
        return Err(bad(e));
    }
    let receipts = bodies.iter().filter(|(_, b)| b.receipt.is_some()).count() as u64;
    checks.pass("consumer's signed request verifies", bodies.len() as u64);
    checks.pass("consumer's signed receipt verifies, by the key that asked", receipts);
    let mut entries = Vec::with_capacity(bodies.len());
    let mut proofs = Vec::new();
    for ((t, tx, id, time), (what, b)) in entry_txs.iter().zip(&bodies) {
        let r = &b.request.request;
        if r.chain_id != genesis.chain_id {
            return Err(bad(format!("{what}: the request is for chain {:?}", r.chain_id)));
        }
        let (consumer, grant) = match &r.private {
            None => {
                if !requested.contains(&r.grant) {
                    return Err(bad(format!(
                        "{what}: grant {}'s request transaction is not in the bundle",
                        r.grant
                    )));
                }
                (Some(party_of(&b.request.signer, what)?), Some(r.grant))
            }
            Some(claim) => {
                let verifier = vk.as_ref().ok_or_else(|| {
                    bad(format!(
                        "{what}: a private entry, and the bundle holds no verifying key"
                    ))
                })?;
                let statement =
                    crate::private::statement(&b.request, claim).map_err(|e| bad(format!("{what}: {}", e.message)))?;
                let proof = liutong_zk::groth16::UseProof::from_bytes(b.request.proof.as_deref().unwrap_or_default())
                    .map_err(|e| bad(format!("{what}: {e}")))?;
                proofs.push((what.clone(), verifier, statement, proof));
                (None, None)
            }
        };
        let outcome = match &b.receipt {
            None if b.query.as_ref().is_some_and(|q| q.failure.is_some()) => "failed",
            None => "unacknowledged",
            Some(rc) if rc.receipt.verdict == Verdict::Verified => "acknowledged",
            Some(_) => "disputed",
        };
        entries.push(VerifiedEntry {
            request: b.request.digest(),
            tx_id: *id,
            height: t.height,
            logged_at: *time,
            dataset: r.dataset.to_string(),
            version: r.version,
            action: r.action.as_str().into(),
            provider: party_of(&tx.tx.signer, what)?,
            consumer,
            grant,
            bytes: b.bytes,
            outcome: outcome.into(),
            receipt_content: b.receipt.as_ref().map(|rc| rc.receipt.content),
            private: r.private.is_some(),
        });
    }
    checks.pass(
        "public entry's grant request is in the bundle, and its consumer's key named",
        entries.iter().filter(|e| !e.private).count() as u64,
    );
    let failed: Vec<String> = proofs
        .par_iter()
        .filter(|(_, v, s, p)| v.verify(s, p).is_err())
        .map(|(what, ..)| what.clone())
        .collect();
    if let Some(what) = failed.first() {
        return Err(bad(format!(
            "{what}: the Groth16 proof does not verify against the genesis's verifying key"
        )));
    }
    checks.pass(
        "private entry's Groth16 proof verifies (genesis's verifying key, the entry's public inputs)",
        proofs.len() as u64,
    );

    // The subject: the entries are what it names.
    match &bundle.subject {
        Subject::Entry { entry } => {
            if entries.len() != 1 || entries[0].request != *entry {
                return Err(bad(format!(
                    "the bundle is for entry {entry} and must hold exactly that entry"
                )));
            }
        }
        Subject::Grant { grant } => {
            if !requested.contains(grant) {
                return Err(bad(format!("grant {grant}'s request transaction is not in the bundle")));
            }
            if let Some(e) = entries.iter().find(|e| e.grant != Some(*grant)) {
                return Err(bad(format!("entry {} is not a use of grant {grant}", e.request)));
            }
        }
        Subject::Trace { filter } => {
            for e in &entries {
                let ok = filter.admits_fields(&super::TracedFields {
                    dataset: e.dataset.parse().ok(),
                    provider: &e.provider.credit_code,
                    consumer: e.consumer.as_ref().map(|c| c.credit_code.as_str()),
                    grant: e.grant,
                    action: &e.action,
                    logged_at: e.logged_at,
                });
                if !ok {
                    return Err(bad(format!("entry {} is outside the trace's filter", e.request)));
                }
            }
        }
    }
    checks.pass("entry is within the bundle's subject", entries.len() as u64);

    // The exporter's attestation over the whole bundle.
    let a = bundle
        .attestation
        .as_ref()
        .ok_or_else(|| bad("the bundle carries no exporter's signature (attestation)"))?;
    let exported_by = party_of(&a.key, "the attestation")?;
    if retired.contains_key(&a.key) {
        return Err(bad(format!(
            "the exporter's key {} was rotated out (the bundle holds the rotation)",
            a.key
        )));
    }
    a.key
        .verify(&bundle.attest_message(a.time), &a.signature)
        .map_err(|_| {
            bad(format!(
                "the exporter's signature ({exported_by}) over the bundle does not verify"
            ))
        })?;
    checks.pass("exporter's signature over the whole bundle verifies", 1);
    let exported_at = a.time;
    Ok(VerifiedBundle {
        chain_id: bundle.chain_id,
        subject: bundle.subject.describe(),
        head_height: head.header.height,
        head_time: head.header.timestamp,
        exported_by,
        exported_at,
        entries,
        grant_events,
        checks: checks.0,
    })
}

/// The parties an entry names, for display (`CreditCode` → legal name).
pub fn named(code: &CreditCode, names: &BTreeMap<String, String>) -> String {
    match names.get(code.as_str()) {
        Some(n) => format!("{n} ({code})"),
        None => code.to_string(),
    }
}
