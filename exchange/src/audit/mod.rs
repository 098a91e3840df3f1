//! The audit service: who used which data, when, under which right, and
//! what they got, answered from a node's own copy of the ledger.
//!
//! - [`trace`]: access-log entries by dataset (all versions), party (as
//!   provider or consumer), grant, action and time range, read through the
//!   access log's index (`access.rs`), never a scan of the log.
//! - [`sql`]: the ledger's tables as Arrow tables for DataFusion.
//! - [`bundle`]: evidence bundles (`liutong-evidence/2`) for an entry, a
//!   grant's history or a trace, verified offline with the genesis alone.
//! - [`report`]: a trace as a self-contained HTML page or CSV.
//!
//! Calls are signed ([`SignedAuditCall`]): the node answers what the
//! caller's party may see ([`Scope`]). The operator and auditors see
//! everything; any other member sees the entries, grants and notarizations
//! it is a party to. Every member node holds the whole ledger (blocks carry
//! every transaction), so this is a need-to-know view, not secrecy: who
//! used what is kept from other members by private mode, not by this.

pub mod bundle;
pub mod report;
pub mod sql;

use crate::access::{corrupt, listing_prefix, tail_digest, AccessQuery, AccessRecord, INDEX_TAIL};
use crate::delivery::Refusal;
use crate::genesis::Genesis;
use crate::grants::GrantId;
use crate::machine::{CF_ACCESS_INDEX, CF_ACCESS_LOG, CF_PARTIES, CF_PARTY_KEYS};
use crate::party::{KeyBinding, Party, Role};
use borsh::{BorshDeserialize, BorshSerialize};
use liutong_catalog::DatasetId;
use liutong_core::{encode_canonical, CreditCode, PublicKey, Signature, SigningKey, Timestamp};
use liutong_ledger::Store;
use liutong_policies::Action;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// What a trace selects. Every field narrows it; none selects every entry.
#[derive(
    Clone, Debug, Default, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize, utoipa::ToSchema,
)]
pub struct TraceFilter {
    /// The dataset, every version.
    #[schema(value_type = Option<String>)]
    pub dataset: Option<DatasetId>,
    /// A party, as provider or as consumer.
    #[schema(value_type = Option<String>)]
    pub party: Option<CreditCode>,
    #[schema(value_type = Option<String>)]
    pub grant: Option<GrantId>,
    #[schema(value_type = Option<String>)]
    pub action: Option<Action>,
    /// Entries the ledger recorded at or after this time (ms since the epoch).
    pub from: Option<Timestamp>,
    /// Entries the ledger recorded before this time.
    pub to: Option<Timestamp>,
}

impl TraceFilter {
    /// The filter in words, for reports and bundle listings.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(d) = &self.dataset {
            parts.push(format!("dataset {d} (all versions)"));
        }
        if let Some(p) = &self.party {
            parts.push(format!("party {p} (as provider or consumer)"));
        }
        if let Some(g) = &self.grant {
            parts.push(format!("grant {g}"));
        }
        if let Some(a) = &self.action {
            parts.push(format!("action {}", a.as_str()));
        }
        match (self.from, self.to) {
            (Some(f), Some(t)) => parts.push(format!(
                "from {} to {}",
                liutong_core::format_utc(f),
                liutong_core::format_utc(t)
            )),
            (Some(f), None) => parts.push(format!("from {}", liutong_core::format_utc(f))),
            (None, Some(t)) => parts.push(format!("before {}", liutong_core::format_utc(t))),
            (None, None) => {}
        }
        if parts.is_empty() {
            "every entry".into()
        } else {
            parts.join(", ")
        }
    }

    fn admits(&self, r: &AccessRecord) -> bool {
        self.admits_fields(&TracedFields {
            dataset: Some(r.dataset),
            provider: r.provider.as_str(),
            consumer: r.consumer.as_ref().map(CreditCode::as_str),
            grant: r.grant,
            action: &r.action,
            logged_at: r.logged_at,
        })
    }

    /// The filter's one rule, for a node's records and for the entries an
    /// offline verifier reads from a bundle alike.
    pub fn admits_fields(&self, e: &TracedFields<'_>) -> bool {
        self.dataset.is_none_or(|d| e.dataset == Some(d))
            && self
                .party
                .as_ref()
                .is_none_or(|p| e.provider == p.as_str() || e.consumer == Some(p.as_str()))
            && self.grant.is_none_or(|g| e.grant == Some(g))
            && self.action.is_none_or(|a| e.action == a.as_str())
            && self.from.is_none_or(|f| e.logged_at >= f)
            && self.to.is_none_or(|t| e.logged_at < t)
    }
}

/// What a trace filter looks at in an entry.
pub struct TracedFields<'a> {
    /// `None` where the entry's dataset id does not parse (no filter on a
    /// dataset admits it).
    pub dataset: Option<DatasetId>,
    pub provider: &'a str,
    pub consumer: Option<&'a str>,
    pub grant: Option<GrantId>,
    pub action: &'a str,
    pub logged_at: Timestamp,
}

/// What a caller may see.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Scope {
    /// The operator and auditors.
    All,
    /// Anyone else: the rows it is a party to (as provider, consumer,
    /// holder or notary).
    Party(CreditCode),
}

impl Scope {
    pub fn admits(&self, r: &AccessRecord) -> bool {
        match self {
            Scope::All => true,
            Scope::Party(me) => r.provider == *me || r.consumer.as_ref() == Some(me),
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Scope::All => "everything (operator or auditor)".into(),
            Scope::Party(p) => format!("the rows party {p} is a party to"),
        }
    }
}

/// Most entries in one trace page.
pub const MAX_PAGE: usize = 1000;

/// Most index keys read per round while a page fills.
const READ_AHEAD: usize = 512;

/// Index entries one page may read; past them the page ends early (with
/// `next`), so no call reads an unbounded listing.
const SCAN_BUDGET: usize = 20_000;

/// A page of a trace, oldest first, after `cursor` (a previous page's
/// `next`): the most selective listing the filter names (grant, dataset,
/// party, the caller's own party, else every entry), sought to `from` and
/// stopped at `to`; the rest of the filter and the scope are checked on
/// each entry read.
pub fn trace(
    store: &Store,
    filter: &TraceFilter,
    scope: &Scope,
    cursor: Option<&[u8]>,
    limit: usize,
) -> crate::Result<crate::access::AccessPage> {
    // A restricted caller reads its own listing (everything it may see is
    // there), unless a grant's is smaller.
    let by = match (&filter.grant, scope, &filter.dataset, &filter.party) {
        (Some(g), ..) => AccessQuery::Grant(*g),
        (None, Scope::Party(me), ..) => AccessQuery::Party(me.clone()),
        (None, Scope::All, Some(d), _) => AccessQuery::Dataset(*d),
        (None, Scope::All, None, Some(p)) => AccessQuery::Party(p.clone()),
        (None, Scope::All, None, None) => AccessQuery::All,
    };
    let limit = limit.clamp(1, MAX_PAGE);
    let prefix = listing_prefix(&by);
    let mut start = prefix.clone();
    match cursor {
        Some(c) if c.len() == INDEX_TAIL => {
            start.extend_from_slice(c);
            start.push(0);
        }
        Some(_) => {
            return Err(crate::Error::BadRequest(
                "cursor: not a page cursor of this trace".into(),
            ))
        }
        None => {
            if let Some(f) = filter.from {
                start.extend_from_slice(&f.to_be_bytes());
            }
        }
    }
    let mut entries = Vec::new();
    let mut last: Option<Vec<u8>> = None;
    let mut more = false;
    // Read what the page needs first, more while filters skip entries.
    let mut ahead = (limit + 1).min(READ_AHEAD);
    let mut scanned = 0;
    'pages: loop {
        let mut tails: Vec<Vec<u8>> = Vec::new();
        let mut ended = false;
        store.visit_from(CF_ACCESS_INDEX, &start, |k, _| {
            let Some(tail) = k.strip_prefix(prefix.as_slice()) else {
                ended = true;
                return Ok(false);
            };
            if tail.len() != INDEX_TAIL {
                return Err(liutong_ledger::Error::Corrupt("access index: malformed key".into()));
            }
            let time = u64::from_be_bytes(tail[..8].try_into().expect("8 bytes"));
            if filter.to.is_some_and(|t| time >= t) {
                ended = true;
                return Ok(false);
            }
            tails.push(tail.to_vec());
            Ok(tails.len() < ahead)
        })?;
        if tails.is_empty() {
            break;
        }
        let keys: Vec<Vec<u8>> = tails
            .iter()
            .map(|t| tail_digest(t).map(|d| d.as_bytes().to_vec()).ok_or_else(corrupt))
            .collect::<crate::Result<_>>()?;
        let values = store.multi_get(CF_ACCESS_LOG, &keys)?;
        for (tail, value) in tails.iter().zip(values) {
            let record: AccessRecord = borsh::from_slice(&value.ok_or_else(corrupt)?).map_err(|_| corrupt())?;
            if !filter.admits(&record) || !scope.admits(&record) {
                continue;
            }
            if entries.len() == limit {
                more = true;
                break 'pages;
            }
            entries.push(record);
            last = Some(tail.clone());
        }
        if ended || tails.len() < ahead {
            break;
        }
        scanned += tails.len();
        if scanned >= SCAN_BUDGET {
            // A page of few matches among many entries ends here; `next`
            // continues from the last entry read.
            last = tails.last().cloned();
            more = true;
            break;
        }
        ahead = (ahead * 2).min(READ_AHEAD);
        start = prefix.clone();
        start.extend_from_slice(tails.last().expect("not empty"));
        start.push(0);
    }
    Ok(crate::access::AccessPage {
        entries,
        next: if more { last.map(hex::encode) } else { None },
    })
}

/// Most entries a whole trace (for a bundle or a report) may hold.
pub const MAX_TRACE: usize = 100_000;

/// Every entry of a trace, oldest first; refused past `max`.
pub fn trace_all(store: &Store, filter: &TraceFilter, scope: &Scope, max: usize) -> crate::Result<Vec<AccessRecord>> {
    let mut out = Vec::new();
    let mut cursor: Option<Vec<u8>> = None;
    loop {
        let page = trace(store, filter, scope, cursor.as_deref(), MAX_PAGE)?;
        out.extend(page.entries);
        if out.len() > max {
            return Err(Refusal::new(
                "audit.too_large",
                format!("the trace holds more than {max} entries; narrow it (a time range, an action, a grant)"),
            )
            .into());
        }
        match page.next {
            Some(n) => cursor = Some(hex::decode(n).map_err(|_| corrupt())?),
            None => return Ok(out),
        }
    }
}

/// The legal names of the parties and the names of the datasets entries
/// name, for displays.
pub fn names_of(
    store: &Store,
    entries: &[AccessRecord],
) -> crate::Result<(BTreeMap<String, String>, BTreeMap<String, String>)> {
    let mut parties = BTreeMap::new();
    let mut datasets = BTreeMap::new();
    for r in entries {
        for code in std::iter::once(&r.provider).chain(r.consumer.as_ref()) {
            if !parties.contains_key(code.as_str()) {
                if let Some(b) = store.get(CF_PARTIES, code.as_str().as_bytes())? {
                    let p: Party = borsh::from_slice(&b).map_err(|_| corrupt())?;
                    parties.insert(code.to_string(), p.profile.legal_name);
                }
            }
        }
        if let std::collections::btree_map::Entry::Vacant(slot) = datasets.entry(r.dataset.to_string()) {
            if let Ok(d) = crate::datasets::dataset(store, &r.dataset) {
                slot.insert(d.name);
            }
        }
    }
    Ok((parties, datasets))
}

/// What an audit call asks.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub enum AuditOp {
    /// A page of a trace.
    Trace {
        filter: TraceFilter,
        cursor: Option<Vec<u8>>,
        limit: u32,
    },
    /// A read-only SQL query over the ledger's tables.
    Sql { sql: String },
    /// An evidence bundle.
    Bundle { subject: bundle::Subject },
}

/// A call to a node's audit service, signed by a member's current key.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct AuditCall {
    pub chain_id: String,
    pub signer: PublicKey,
    /// The caller's clock; refused outside the chain's clock skew.
    pub time: Timestamp,
    pub op: AuditOp,
}

pub const AUDIT_DOMAIN: &[u8] = b"liutong/audit-call/v1\0";

/// Most bytes of a signed audit call.
pub const MAX_CALL: usize = liutong_policies::query::MAX_SQL + 4096;

#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct SignedAuditCall {
    pub call: AuditCall,
    pub signature: Signature,
}

impl SignedAuditCall {
    pub fn sign(call: AuditCall, key: &SigningKey) -> SignedAuditCall {
        let signature = key.sign(&[AUDIT_DOMAIN, &encode_canonical(&call)].concat());
        SignedAuditCall { call, signature }
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<SignedAuditCall, Refusal> {
        liutong_core::decode_canonical("audit call", bytes)
            .map_err(|e| Refusal::new("audit.malformed", format!("the audit call: {e}")))
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        encode_canonical(self)
    }

    /// Checks the signature, chain and time, and answers the caller's party
    /// and what it may see.
    pub fn authorize(&self, store: &Store, genesis: &Genesis, now: Timestamp) -> Result<(Party, Scope), crate::Error> {
        let c = &self.call;
        c.signer
            .verify(&[AUDIT_DOMAIN, &encode_canonical(c)].concat(), &self.signature)
            .map_err(|_| Refusal::new("audit.bad_signature", "the audit call's signature does not verify"))?;
        if c.chain_id != genesis.chain_id {
            return Err(Refusal::new(
                "audit.wrong_chain",
                format!(
                    "the call is for chain {:?}, this node is on {:?}",
                    c.chain_id, genesis.chain_id
                ),
            )
            .into());
        }
        let skew = genesis.params.max_clock_skew_ms;
        if c.time.abs_diff(now) > skew {
            return Err(Refusal::new(
                "audit.stale",
                format!("the call's time is more than {} s from this node's clock", skew / 1000),
            )
            .into());
        }
        let binding: KeyBinding = match store.get(CF_PARTY_KEYS, c.signer.as_bytes())? {
            Some(b) => borsh::from_slice(&b).map_err(|_| corrupt())?,
            None => {
                return Err(Refusal::new("party.unknown_signer", "the call's key belongs to no party").into());
            }
        };
        if !binding.current {
            return Err(Refusal::new("party.key_retired", "the call's key was rotated out").into());
        }
        let party: Party = store
            .get(CF_PARTIES, binding.party.as_str().as_bytes())?
            .map(|b| borsh::from_slice(&b).map_err(|_| corrupt()))
            .transpose()?
            .ok_or_else(corrupt)?;
        if let Some((code, why)) = party.status.refusal() {
            return Err(Refusal::new(code, format!("party {} {why}", party.profile.credit_code)).into());
        }
        if party.profile.signing_key != c.signer {
            return Err(Refusal::new("party.key_retired", "the call's key is not its party's current key").into());
        }
        let scope = if party.profile.credit_code == genesis.operator.credit_code
            || party.profile.roles.contains(&Role::Auditor)
            || party.profile.roles.contains(&Role::Operator)
        {
            Scope::All
        } else {
            Scope::Party(party.profile.credit_code.clone())
        };
        Ok((party, scope))
    }
}

/// A trace page as the API answers it: the entries, the names they need,
/// and what the caller's view was.
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TracePage {
    pub entries: Vec<AccessRecord>,
    /// Pass as the next call's cursor; absent on the last page.
    pub next: Option<String>,
    /// Credit code → legal name of every party the entries name.
    pub parties: BTreeMap<String, String>,
    /// Dataset id → name.
    pub datasets: BTreeMap<String, String>,
    /// The node's newest block when it answered.
    pub head: u64,
    /// What the caller may see.
    pub visibility: String,
}
