//! The application's hook into the ledger, and the overlay through which it
//! reads and writes state within a block.

use crate::ledger::BlockContext;
use crate::store::Store;
use crate::{Result, SignedTx, TxId};
use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};

/// What applying one transaction produced.
#[derive(Debug, Clone)]
pub enum Applied {
    /// The transaction changes state and is committed; the value is its result.
    Committed(serde_json::Value),
    /// The transaction would only repeat an existing record (idempotent
    /// requests such as notarizing a known digest): it is not committed and the
    /// submitter gets the existing record.
    Existing(serde_json::Value),
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

type Key = (&'static str, Vec<u8>);

/// Pending writes of a block over the store (or over nothing, for replay).
/// Writes of the transaction being applied are held apart so a refused
/// transaction leaves no trace.
pub struct Overlay<'a> {
    base: Option<&'a Store>,
    block: HashMap<Key, Option<Vec<u8>>>,
    tx: HashMap<Key, Option<Vec<u8>>>,
    /// Values read from the store during this block. The store cannot change
    /// under a block (the ledger's writer lock is held), so a signer's party
    /// record read for its first transaction serves all its others.
    read_cache: RefCell<HashMap<Key, Option<Vec<u8>>>>,
}

impl<'a> Overlay<'a> {
    pub(crate) fn over(store: &'a Store) -> Self {
        Overlay {
            base: Some(store),
            block: HashMap::new(),
            tx: HashMap::new(),
            read_cache: RefCell::default(),
        }
    }

    pub(crate) fn empty() -> Overlay<'static> {
        Overlay {
            base: None,
            block: HashMap::new(),
            tx: HashMap::new(),
            read_cache: RefCell::default(),
        }
    }

    pub fn get(&self, cf: &'static str, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let k = (cf, key.to_vec());
        if let Some(v) = self.tx.get(&k).or_else(|| self.block.get(&k)) {
            return Ok(v.clone());
        }
        if let Some(v) = self.read_cache.borrow().get(&k) {
            return Ok(v.clone());
        }
        let value = match self.base {
            Some(store) => store.get(cf, key)?,
            None => None,
        };
        self.read_cache.borrow_mut().insert(k, value.clone());
        Ok(value)
    }

    pub fn put(&mut self, cf: &'static str, key: Vec<u8>, value: Vec<u8>) {
        self.tx.insert((cf, key), Some(value));
    }

    pub fn delete(&mut self, cf: &'static str, key: Vec<u8>) {
        self.tx.insert((cf, key), None);
    }

    pub(crate) fn commit_tx(&mut self) {
        let tx = std::mem::take(&mut self.tx);
        self.block.extend(tx);
    }

    pub(crate) fn rollback_tx(&mut self) {
        self.tx.clear();
    }

    /// The block's writes, sorted, for the write batch or for comparison.
    pub(crate) fn into_writes(mut self) -> BTreeMap<Key, Option<Vec<u8>>> {
        self.commit_tx();
        self.block.into_iter().collect()
    }
}
