//! The application's hook into the ledger, and the overlay through which it
//! reads and writes state within a block.

use crate::ledger::BlockContext;
use crate::store::Store;
use crate::{Result, SignedTx, TxId};
use std::cell::RefCell;
use std::sync::Arc;

/// A record as JSON, rendered once by the state machine and passed through
/// to the submitter verbatim.
pub type RecordJson = Box<serde_json::value::RawValue>;

/// What applying one transaction produced.
#[derive(Debug, Clone)]
pub enum Applied {
    /// The transaction changes state and is committed; the value is its result.
    Committed(RecordJson),
    /// The transaction would only repeat an existing record (idempotent
    /// requests such as notarizing a known digest): it is not committed and the
    /// submitter gets the existing record.
    Existing(RecordJson),
}

/// A refusal by the state machine, with a stable code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub code: String,
    pub message: String,
}

impl Rejection {
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        Rejection {
            code: code.into(),
            message: message.into(),
        }
    }
}

/// The application: gives transaction bodies meaning. `apply` must be
/// deterministic in (state, transaction, block context): followers replay it
/// and must reach the same state, and chain verification replays it from the
/// genesis.
pub trait StateMachine: Send + Sync + 'static {
    /// Column families the application keeps its state in.
    fn column_families(&self) -> Vec<&'static str>;
    /// Writes the state the genesis implies (before block 1).
    fn genesis_state(&self, state: &mut Overlay<'_>) -> Result<(), Rejection>;
    /// Checks and applies one transaction whose envelope, signature and nonce are valid.
    fn apply(
        &self,
        tx: &SignedTx,
        id: &TxId,
        ctx: &BlockContext,
        state: &mut Overlay<'_>,
    ) -> Result<Applied, Rejection>;
}

/// Fast hashing for the overlay's maps. Keys are digests, public keys and
/// log indices; foldhash is seeded per process, so chosen keys cannot aim at
/// collisions.
type FastMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;

/// One write of the transaction being applied: column family, key, value.
type TxWrite = (&'static str, Vec<u8>, Option<Vec<u8>>);

/// Values of one column family: key → value (`None`: deleted).
type CfMap = FastMap<Vec<u8>, Option<Vec<u8>>>;

/// A set of writes, per column family: one block's state changes.
#[derive(Default, Debug)]
pub struct WriteSet {
    cfs: Vec<(&'static str, CfMap)>,
}

impl WriteSet {
    fn cf(&self, cf: &str) -> Option<&CfMap> {
        self.cfs.iter().find(|(name, _)| *name == cf).map(|(_, m)| m)
    }

    fn cf_mut(&mut self, cf: &'static str) -> &mut CfMap {
        let at = match self.cfs.iter().position(|(name, _)| *name == cf) {
            Some(i) => i,
            None => {
                self.cfs.push((cf, CfMap::default()));
                self.cfs.len() - 1
            }
        };
        &mut self.cfs[at].1
    }

    /// `Some(value)` when the set writes this key (`Some(None)`: deletes it).
    pub fn get(&self, cf: &str, key: &[u8]) -> Option<&Option<Vec<u8>>> {
        self.cf(cf)?.get(key)
    }

    fn insert(&mut self, cf: &'static str, key: Vec<u8>, value: Option<Vec<u8>>) {
        self.cf_mut(cf).insert(key, value);
    }

    /// Every write, column family by column family, each in key order (the
    /// order in which a memtable takes a batch's inserts cheapest).
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, &[u8], Option<&[u8]>)> + '_ {
        self.cfs.iter().flat_map(|(cf, m)| {
            let mut entries: Vec<(&[u8], Option<&[u8]>)> =
                m.iter().map(|(k, v)| (k.as_slice(), v.as_deref())).collect();
            entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
            entries.into_iter().map(move |(k, v)| (*cf, k, v))
        })
    }
}

/// Pending writes of a block over the store (or over nothing, for replay).
/// Reads see, newest first: the transaction being applied, the block so far,
/// the block sealed just before (which may still be on its way to disk), the
/// store. Writes of the transaction being applied are held apart so a refused
/// transaction leaves no trace.
pub struct Overlay<'a> {
    base: Option<&'a Store>,
    pending: Option<Arc<WriteSet>>,
    block: WriteSet,
    /// The current transaction's writes, in order; a handful, so a list.
    tx: Vec<TxWrite>,
    /// Values read from the store during this block. The store cannot change
    /// under a block in a way the block could see (what lands meanwhile is the
    /// pending block, which is read first), so a signer's party record read
    /// for its first transaction serves all its others.
    read_cache: RefCell<WriteSet>,
}

impl<'a> Overlay<'a> {
    pub(crate) fn over(store: &'a Store, pending: Option<Arc<WriteSet>>) -> Self {
        Overlay {
            base: Some(store),
            pending,
            block: WriteSet::default(),
            tx: Vec::new(),
            read_cache: RefCell::default(),
        }
    }

    pub(crate) fn empty() -> Overlay<'static> {
        Overlay {
            base: None,
            pending: None,
            block: WriteSet::default(),
            tx: Vec::new(),
            read_cache: RefCell::default(),
        }
    }

    pub fn get(&self, cf: &'static str, key: &[u8]) -> Result<Option<Vec<u8>>> {
        if let Some((_, _, v)) = self.tx.iter().rev().find(|(c, k, _)| *c == cf && k.as_slice() == key) {
            return Ok(v.clone());
        }
        if let Some(v) = self.block.get(cf, key) {
            return Ok(v.clone());
        }
        if let Some(v) = self.pending.as_ref().and_then(|p| p.get(cf, key)) {
            return Ok(v.clone());
        }
        if let Some(v) = self.read_cache.borrow().get(cf, key) {
            return Ok(v.clone());
        }
        let value = match self.base {
            Some(store) => store.get(cf, key)?,
            None => None,
        };
        self.read_cache.borrow_mut().insert(cf, key.to_vec(), value.clone());
        Ok(value)
    }

    /// Every key of `cf` starting with `prefix` as this overlay sees it
    /// (the store's, then the pending block's, the block's and the
    /// transaction's writes and deletes on top), in key order.
    pub fn keys_with_prefix(&self, cf: &'static str, prefix: &[u8]) -> Result<Vec<Vec<u8>>> {
        let mut keys = std::collections::BTreeSet::new();
        if let Some(store) = self.base {
            let mut from = prefix.to_vec();
            loop {
                let rows = store.scan_from(cf, &from, 256)?;
                let full = rows.len() == 256;
                let mut last = None;
                for (k, _) in rows {
                    if !k.starts_with(prefix) {
                        return self.overlay_keys(cf, prefix, keys);
                    }
                    last = Some(k.clone());
                    keys.insert(k);
                }
                match last {
                    Some(mut k) if full => {
                        k.push(0);
                        from = k;
                    }
                    _ => break,
                }
            }
        }
        self.overlay_keys(cf, prefix, keys)
    }

    fn overlay_keys(
        &self,
        cf: &'static str,
        prefix: &[u8],
        mut keys: std::collections::BTreeSet<Vec<u8>>,
    ) -> Result<Vec<Vec<u8>>> {
        let layers = self.pending.as_deref().into_iter().chain(std::iter::once(&self.block));
        for layer in layers {
            if let Some(m) = layer.cf(cf) {
                for (k, v) in m.iter().filter(|(k, _)| k.starts_with(prefix)) {
                    match v {
                        Some(_) => keys.insert(k.clone()),
                        None => keys.remove(k),
                    };
                }
            }
        }
        for (_, k, v) in self.tx.iter().filter(|(c, k, _)| *c == cf && k.starts_with(prefix)) {
            match v {
                Some(_) => keys.insert(k.clone()),
                None => keys.remove(k),
            };
        }
        Ok(keys.into_iter().collect())
    }

    pub fn put(&mut self, cf: &'static str, key: Vec<u8>, value: Vec<u8>) {
        self.tx.push((cf, key, Some(value)));
    }

    pub fn delete(&mut self, cf: &'static str, key: Vec<u8>) {
        self.tx.push((cf, key, None));
    }

    pub(crate) fn commit_tx(&mut self) {
        for (cf, k, v) in self.tx.drain(..) {
            self.block.insert(cf, k, v);
        }
    }

    pub(crate) fn rollback_tx(&mut self) {
        self.tx.clear();
    }

    /// The block's writes.
    pub(crate) fn into_writes(mut self) -> WriteSet {
        self.commit_tx();
        self.block
    }
}
