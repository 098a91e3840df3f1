//! The application's hook into the ledger, and the overlay through which it
//! reads and writes state within a block.

use crate::ledger::BlockContext;
use crate::store::Store;
use crate::{Result, SignedTx, TxId};
use std::cell::RefCell;
use std::sync::Arc;

/// A record as JSON, as it travels to the submitter.
pub type RecordJson = Box<serde_json::value::RawValue>;

/// The record a transaction created or found (a party, a notarization),
/// kept as the state machine's value and rendered to JSON only when an
/// answer shows it: a bulk submitter that asks for compact receipts does
/// not pay for rendering records it never reads.
#[derive(Clone)]
pub struct Record(Arc<dyn Render>);

/// A value a [`Record`] can hold.
pub trait Render: Send + Sync + 'static {
    fn render(&self) -> RecordJson;
}

impl<T: serde::Serialize + Send + Sync + 'static> Render for T {
    fn render(&self) -> RecordJson {
        // Records are plain data (strings, numbers, maps with string keys),
        // which always serialize; a value that does not is a programming error.
        serde_json::value::to_raw_value(self).expect("records serialize to JSON")
    }
}

impl Record {
    pub fn new(value: impl Render) -> Record {
        Record(Arc::new(value))
    }

    /// The record as JSON.
    pub fn json(&self) -> RecordJson {
        self.0.render()
    }
}

impl From<RecordJson> for Record {
    fn from(json: RecordJson) -> Record {
        Record::new(json)
    }
}

impl serde::Serialize for Record {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        self.json().serialize(s)
    }
}

impl std::fmt::Debug for Record {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.json().get())
    }
}

/// What applying one transaction produced.
#[derive(Debug, Clone)]
pub enum Applied {
    /// The transaction changes state and is committed; the value is its result.
    Committed(Record),
    /// The transaction would only repeat an existing record (idempotent
    /// requests such as notarizing a known digest): it is not committed and the
    /// submitter gets the existing record.
    Existing(Record),
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
    /// Those of [`StateMachine::column_families`] whose reads while applying
    /// are mostly for keys that do not exist (is this digest new?): they get
    /// a full-size memtable bloom filter, so such a read rarely reaches the
    /// memtable's skip list.
    fn miss_heavy_column_families(&self) -> Vec<&'static str> {
        Vec::new()
    }
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

/// One map per column family, in a short list (a block touches a handful of
/// families). Names are the state machine's constants, so the same name is
/// usually the same pointer: that is tried first, and the text only when no
/// pointer matches (look-ups run several times per transaction).
#[derive(Debug)]
struct PerCf<M> {
    list: Vec<(&'static str, M)>,
}

impl<M> Default for PerCf<M> {
    fn default() -> Self {
        PerCf { list: Vec::new() }
    }
}

impl<M> PerCf<M> {
    fn position(&self, cf: &str) -> Option<usize> {
        let list = &self.list;
        list.iter()
            .position(|(name, _)| std::ptr::eq(*name, cf))
            .or_else(|| list.iter().position(|(name, _)| *name == cf))
    }

    fn get(&self, cf: &str) -> Option<&M> {
        self.position(cf).map(|i| &self.list[i].1)
    }

    fn get_or_insert_with(&mut self, cf: &'static str, make: impl FnOnce() -> M) -> &mut M {
        let at = match self.position(cf) {
            Some(i) => i,
            None => {
                self.list.push((cf, make()));
                self.list.len() - 1
            }
        };
        &mut self.list[at].1
    }
}

/// A decoded value, shared (see [`Overlay::get_decoded`]).
type Shared = Arc<dyn std::any::Any + Send + Sync>;

/// Decoded values of one column family: key → value (`None`: absent).
type DecodedMap = FastMap<Vec<u8>, Option<Shared>>;

/// Store values decoded by [`Overlay::get_decoded`], kept across blocks: a
/// ledger's one cache serves every block it builds or imports, so a signer's
/// party record is decoded once, not once per block. It holds durable store
/// values only (what a block or the pending block wrote is read from those
/// first), and every commit drops the keys it wrote. A value read from the
/// store is kept only if no commit landed between the read and the keeping
/// (the epoch), so a read racing a commit cannot leave a stale entry.
#[derive(Default)]
pub struct DecodedCache {
    inner: std::sync::Mutex<DecodedInner>,
}

#[derive(Default)]
struct DecodedInner {
    /// Commits seen; bumped by each [`DecodedCache::invalidate`].
    epoch: u64,
    maps: PerCf<DecodedMap>,
    entries: usize,
}

/// Entries kept before the cache starts over (it is meant for the few
/// records every block reads, such as the signers' parties).
const DECODED_CACHE_MAX: usize = 1 << 16;

impl DecodedCache {
    fn lock(&self) -> std::sync::MutexGuard<'_, DecodedInner> {
        // Every update leaves the maps consistent, so a panicking holder
        // cannot leave them half-changed.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn get(&self, cf: &str, key: &[u8]) -> Option<Option<Shared>> {
        self.lock().maps.get(cf)?.get(key).cloned()
    }

    fn epoch(&self) -> u64 {
        self.lock().epoch
    }

    /// Keeps a value read from the store when the store read began at `epoch`.
    fn keep(&self, epoch: u64, cf: &'static str, key: &[u8], value: Option<Shared>) {
        let mut inner = self.lock();
        if inner.epoch != epoch {
            return;
        }
        if inner.entries >= DECODED_CACHE_MAX {
            inner.maps = PerCf::default();
            inner.entries = 0;
        }
        if inner
            .maps
            .get_or_insert_with(cf, DecodedMap::default)
            .insert(key.to_vec(), value)
            .is_none()
        {
            inner.entries += 1;
        }
    }

    /// Drops every key `writes` changes; called for each block written to
    /// the store (after the write, whether or not it succeeded).
    pub(crate) fn invalidate(&self, writes: &WriteSet) {
        let mut guard = self.lock();
        let DecodedInner { epoch, maps, entries } = &mut *guard;
        *epoch += 1;
        for (cf, map) in maps.list.iter_mut() {
            if let Some(written) = writes.cf(cf) {
                for key in written.keys() {
                    if map.remove(key).is_some() {
                        *entries -= 1;
                    }
                }
            }
        }
    }
}

/// The overlay's decoded values: its own, or a ledger's shared cache.
enum Decoded<'a> {
    Own(DecodedCache),
    Shared(&'a DecodedCache),
}

impl Decoded<'_> {
    fn cache(&self) -> &DecodedCache {
        match self {
            Decoded::Own(c) => c,
            Decoded::Shared(c) => c,
        }
    }
}

/// A set of writes, per column family: one block's state changes.
#[derive(Default, Debug)]
pub struct WriteSet {
    cfs: PerCf<CfMap>,
    /// Room each column family's map starts with (writes expected per family).
    hint: usize,
}

impl WriteSet {
    fn cf(&self, cf: &str) -> Option<&CfMap> {
        self.cfs.get(cf)
    }

    fn cf_mut(&mut self, cf: &'static str) -> &mut CfMap {
        let hint = self.hint;
        self.cfs
            .get_or_insert_with(cf, || CfMap::with_capacity_and_hasher(hint, Default::default()))
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
        self.cfs.list.iter().flat_map(|(cf, m)| {
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
    /// Store values decoded by [`Overlay::get_decoded`], by column family and key.
    decoded: Decoded<'a>,
}

impl<'a> Overlay<'a> {
    /// An overlay over the store (and a sealed block not yet durable) for a
    /// block of about `txs` transactions.
    pub(crate) fn over(store: &'a Store, pending: Option<Arc<WriteSet>>, txs: usize) -> Self {
        Overlay {
            base: Some(store),
            pending,
            block: WriteSet {
                cfs: PerCf::default(),
                hint: txs,
            },
            tx: Vec::new(),
            read_cache: RefCell::default(),
            decoded: Decoded::Own(DecodedCache::default()),
        }
    }

    /// Decodes through `cache`, shared with other overlays over the same
    /// store, instead of a cache of its own.
    pub(crate) fn sharing(mut self, cache: &'a DecodedCache) -> Self {
        self.decoded = Decoded::Shared(cache);
        self
    }

    pub(crate) fn empty() -> Overlay<'static> {
        Overlay {
            base: None,
            pending: None,
            block: WriteSet::default(),
            tx: Vec::new(),
            read_cache: RefCell::default(),
            decoded: Decoded::Own(DecodedCache::default()),
        }
    }

    pub fn get(&self, cf: &'static str, key: &[u8]) -> Result<Option<Vec<u8>>> {
        match self.written(cf, key) {
            Some(v) => Ok(v.clone()),
            None => self.stored(cf, key),
        }
    }

    /// The value of `key` decoded by `decode`, shared: a value the store
    /// holds (not one this block or the pending one wrote) is decoded once
    /// per block, or once until a commit changes it where the overlay uses a
    /// ledger's [`DecodedCache`], and handed out again, so a record many
    /// transactions read, such as a signer's party, costs one decoding.
    pub fn get_decoded<T: Send + Sync + 'static, E>(
        &self,
        cf: &'static str,
        key: &[u8],
        decode: impl FnOnce(&[u8]) -> std::result::Result<T, E>,
        store_error: impl FnOnce(crate::Error) -> E,
    ) -> std::result::Result<Option<Arc<T>>, E> {
        if let Some(v) = self.written(cf, key) {
            return v.as_deref().map(|b| decode(b).map(Arc::new)).transpose();
        }
        let cache = self.decoded.cache();
        match cache.get(cf, key) {
            Some(None) => return Ok(None),
            Some(Some(v)) => {
                if let Ok(t) = v.downcast::<T>() {
                    return Ok(Some(t));
                }
            }
            None => {}
        }
        let epoch = cache.epoch();
        let value = match self.stored(cf, key).map_err(store_error)? {
            Some(bytes) => Some(Arc::new(decode(&bytes)?)),
            None => None,
        };
        cache.keep(epoch, cf, key, value.clone().map(|v| v as Shared));
        Ok(value)
    }

    /// What the transaction, the block so far or the pending block wrote to
    /// `key`, newest first (`Some(None)`: deleted); `None` if none did.
    fn written(&self, cf: &'static str, key: &[u8]) -> Option<&Option<Vec<u8>>> {
        if let Some((_, _, v)) = self.tx.iter().rev().find(|(c, k, _)| k.as_slice() == key && *c == cf) {
            return Some(v);
        }
        self.block
            .get(cf, key)
            .or_else(|| self.pending.as_ref().and_then(|p| p.get(cf, key)))
    }

    /// The store's value, read once per block.
    fn stored(&self, cf: &'static str, key: &[u8]) -> Result<Option<Vec<u8>>> {
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

#[cfg(test)]
mod tests {
    use super::*;

    const CF: &str = "app";

    #[test]
    fn a_record_renders_as_its_value_would() {
        #[derive(serde::Serialize, Clone)]
        struct Note {
            digest: String,
            index: u64,
            name: Option<String>,
        }
        let note = Note {
            digest: "ab\"cd".into(),
            index: 7,
            name: None,
        };
        let eager = serde_json::to_string(&note).expect("serializes");
        let record = Record::new(note);
        assert_eq!(record.json().get(), eager);
        assert_eq!(format!("{record:?}"), eager);
        assert_eq!(serde_json::to_string(&record).expect("serializes"), eager);
        // A record that arrived as JSON (a receipt from another node) stays the same JSON.
        let again = Record::from(record.json());
        assert_eq!(again.json().get(), eager);
    }

    fn decode(bytes: &[u8]) -> std::result::Result<String, String> {
        String::from_utf8(bytes.to_vec()).map_err(|e| e.to_string())
    }

    fn read(o: &Overlay<'_>, key: &[u8]) -> Option<String> {
        o.get_decoded(CF, key, decode, |e| e.to_string())
            .expect("decodes")
            .map(|s| (*s).clone())
    }

    /// The shared decoding sees exactly what `get` sees: the store, then the
    /// pending block, the block so far and the transaction on top, deletes
    /// included; a store value is decoded once and then shared.
    #[test]
    fn decoded_values_follow_every_layer() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path(), &[CF]).expect("store");
        store
            .load_unchecked(&[
                (CF, b"a".to_vec(), b"stored".to_vec()),
                (CF, b"b".to_vec(), b"b0".to_vec()),
            ])
            .expect("load");
        let mut pending = WriteSet::default();
        pending.insert(CF, b"b".to_vec(), Some(b"pending".to_vec()));
        let mut o = Overlay::over(&store, Some(Arc::new(pending)), 4);

        let first = o
            .get_decoded(CF, b"a", decode, |e| e.to_string())
            .expect("ok")
            .expect("some");
        let again = o
            .get_decoded(CF, b"a", decode, |e| e.to_string())
            .expect("ok")
            .expect("some");
        assert!(Arc::ptr_eq(&first, &again), "a store value is decoded once");
        assert_eq!(read(&o, b"b").as_deref(), Some("pending"));
        assert_eq!(read(&o, b"missing"), None);

        o.put(CF, b"a".to_vec(), b"in tx".to_vec());
        assert_eq!(read(&o, b"a").as_deref(), Some("in tx"));
        o.rollback_tx();
        assert_eq!(
            read(&o, b"a").as_deref(),
            Some("stored"),
            "a refused transaction leaves no trace"
        );

        o.delete(CF, b"a".to_vec());
        o.commit_tx();
        assert_eq!(read(&o, b"a"), None, "deleted in the block");
        assert_eq!(o.get(CF, b"a").expect("get"), None);

        o.put(CF, b"missing".to_vec(), b"new".to_vec());
        o.commit_tx();
        assert_eq!(
            read(&o, b"missing").as_deref(),
            Some("new"),
            "a cached miss does not hide a write"
        );

        let bad = o.get_decoded(
            CF,
            b"bad",
            |_| Err::<String, _>("unreadable".to_string()),
            |e| e.to_string(),
        );
        assert_eq!(bad.expect("a missing key is not decoded"), None);
        o.put(CF, b"bad".to_vec(), vec![0xff]);
        assert!(
            o.get_decoded(CF, b"bad", decode, |e| e.to_string()).is_err(),
            "decode errors surface"
        );
    }

    /// A ledger's shared cache serves a later block the value an earlier one
    /// decoded, until a commit writes that key; a value read from the store
    /// before a commit landed is not kept after it.
    #[test]
    fn the_shared_cache_lasts_until_a_commit_writes_the_key() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path(), &[CF]).expect("store");
        store
            .load_unchecked(&[(CF, b"a".to_vec(), b"v1".to_vec()), (CF, b"b".to_vec(), b"b1".to_vec())])
            .expect("load");
        let cache = DecodedCache::default();
        let get = |key: &[u8]| {
            let o = Overlay::over(&store, None, 1).sharing(&cache);
            o.get_decoded(CF, key, decode, |e| e.to_string())
                .expect("decodes")
                .expect("present")
        };
        let first = get(b"a");
        assert!(Arc::ptr_eq(&first, &get(b"a")), "a later block reuses the decoding");
        let b = get(b"b");

        // A block writes a: the store changes, and the commit drops a only.
        let mut block = WriteSet::default();
        block.insert(CF, b"a".to_vec(), Some(b"v2".to_vec()));
        store
            .load_unchecked(&[(CF, b"a".to_vec(), b"v2".to_vec())])
            .expect("write");
        cache.invalidate(&block);
        assert_eq!(get(b"a").as_str(), "v2");
        assert!(Arc::ptr_eq(&b, &get(b"b")), "keys the block did not write stay");

        // A read that began before a commit is not kept after it.
        let epoch = cache.epoch();
        cache.invalidate(&WriteSet::default());
        cache.keep(epoch, CF, b"c", Some(Arc::new("stale".to_string())));
        assert!(cache.get(CF, b"c").is_none(), "a value read before a commit is dropped");
        let now = cache.epoch();
        cache.keep(now, CF, b"c", None);
        assert!(matches!(cache.get(CF, b"c"), Some(None)), "a fresh miss is kept");
    }
}
