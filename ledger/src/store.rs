//! RocksDB storage: the ledger's column families plus the application's.

use crate::merkle::SubtreeSource;
use crate::{Error, Result};
use liutong_core::Digest;
use rocksdb::{ColumnFamilyDescriptor, IteratorMode, Options, WriteBatch, WriteOptions, DB};
use std::path::Path;

/// Ledger metadata: genesis digest, head height.
pub(crate) const CF_META: &str = "meta";
/// height (u64 BE) → canonical SignedHeader.
pub(crate) const CF_BLOCKS: &str = "blocks";
/// log index (u64 BE) → canonical SignedTx bytes.
pub(crate) const CF_TXS: &str = "txs";
/// tx id → log index (u64 BE).
pub(crate) const CF_TX_IDS: &str = "tx_ids";
/// first tx index of a block (u64 BE) → height (u64 BE).
pub(crate) const CF_BLOCK_INDEX: &str = "block_index";
/// level (u8) ‖ index (u64 BE) → hash of a complete subtree of the Merkle log.
pub(crate) const CF_LOG: &str = "log";
/// signer public key ‖ nonce (u64 BE) → empty.
pub(crate) const CF_NONCES: &str = "nonces";

pub(crate) const LEDGER_CFS: [&str; 7] = [CF_META, CF_BLOCKS, CF_TXS, CF_TX_IDS, CF_BLOCK_INDEX, CF_LOG, CF_NONCES];

pub(crate) const META_GENESIS: &[u8] = b"genesis_digest";
pub(crate) const META_HEAD: &[u8] = b"head_height";

/// The node's RocksDB database.
pub struct Store {
    db: DB,
    app_cfs: Vec<&'static str>,
}

impl Store {
    pub fn open(path: &Path, app_cfs: &[&'static str]) -> Result<Store> {
        Store::open_with(path, app_cfs, &[])
    }

    /// [`Store::open`], with the application's column families whose reads
    /// are mostly misses (see `StateMachine::miss_heavy_column_families`).
    pub fn open_with(path: &Path, app_cfs: &[&'static str], miss_heavy: &[&'static str]) -> Result<Store> {
        let mut opts = Options::default();
        opts.create_if_missing(true);
        opts.create_missing_column_families(true);
        opts.set_paranoid_checks(true);
        // Most point reads on the commit path are misses (is this tx id, this
        // nonce, this digest new?): a bloom filter answers them without I/O.
        // The same for keys still in the memtable, where fresh misses are
        // looked up. A memtable bloom is allocated (and zeroed) whole with
        // each memtable, `write_buffer_size` × ratio bytes per column family:
        // the commit path's hot misses (transaction ids, nonces) get a
        // generous one, and so do the application's miss-heavy column families
        // (a notarization's digest: 10 bits a key, where the small default
        // let about a third of the misses through to the skip list);
        // other application column families get a small one, the rest (read
        // by keys that exist) none; a node's idle memory stays small.
        let cf_options = |name: &str| {
            let mut table = rocksdb::BlockBasedOptions::default();
            table.set_bloom_filter(10.0, false);
            let mut o = Options::default();
            o.set_block_based_table_factory(&table);
            let random_keys = name == CF_TX_IDS || name == CF_NONCES || miss_heavy.contains(&name);
            if random_keys {
                // Random keys land all over the memtable's skip list, and an
                // insert's cost is its cache misses: four 16 MiB memtables
                // merged into one level-0 file on flush keep the level-0
                // files (and so compaction) as they were with one 64 MiB
                // memtable, while each insert searches a list a quarter the
                // size.
                o.set_write_buffer_size(RANDOM_KEY_MEMTABLE);
                o.set_min_write_buffer_number_to_merge(4);
                o.set_max_write_buffer_number(6);
            }
            let ratio = if random_keys {
                0.02
            } else if LEDGER_CFS.contains(&name) {
                0.0
            } else {
                0.002
            };
            if ratio > 0.0 {
                o.set_memtable_whole_key_filtering(true);
                o.set_memtable_prefix_bloom_ratio(ratio);
            }
            o
        };
        let cfs = LEDGER_CFS
            .iter()
            .chain(app_cfs)
            .map(|name| ColumnFamilyDescriptor::new(*name, cf_options(name)));
        let db = DB::open_cf_descriptors(&opts, path, cfs)?;
        Ok(Store {
            db,
            app_cfs: app_cfs.to_vec(),
        })
    }

    pub fn app_column_families(&self) -> &[&'static str] {
        &self.app_cfs
    }

    fn cf(&self, name: &str) -> Result<&rocksdb::ColumnFamily> {
        self.db
            .cf_handle(name)
            .ok_or_else(|| Error::Store(format!("unknown column family {name}")))
    }

    pub fn get(&self, cf: &str, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self.db.get_cf(self.cf(cf)?, key)?)
    }

    /// Every (key, value) of a column family in key order.
    pub fn scan(&self, cf: &str) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        self.scan_from(cf, &[], usize::MAX)
    }

    /// Up to `limit` entries with key ≥ `start`.
    pub fn scan_from(&self, cf: &str, start: &[u8], limit: usize) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let mut out = Vec::new();
        for item in self
            .db
            .iterator_cf(self.cf(cf)?, IteratorMode::From(start, rocksdb::Direction::Forward))
            .take(limit)
        {
            let (k, v) = item?;
            out.push((k.into_vec(), v.into_vec()));
        }
        Ok(out)
    }

    /// Calls `visit` with each entry whose key is ≥ `start`, in key order,
    /// until it answers false or the column family ends.
    pub fn visit_from(
        &self,
        cf: &str,
        start: &[u8],
        mut visit: impl FnMut(&[u8], &[u8]) -> std::result::Result<bool, Error>,
    ) -> Result<()> {
        for item in self
            .db
            .iterator_cf(self.cf(cf)?, IteratorMode::From(start, rocksdb::Direction::Forward))
        {
            let (k, v) = item?;
            if !visit(&k, &v)? {
                break;
            }
        }
        Ok(())
    }

    /// Point reads of many keys at once (RocksDB's batched `MultiGet`).
    pub fn multi_get(&self, cf: &str, keys: &[Vec<u8>]) -> Result<Vec<Option<Vec<u8>>>> {
        let handle = self.cf(cf)?;
        let values = self.db.batched_multi_get_cf(handle, keys, false);
        values.into_iter().map(|v| Ok(v?.map(|p| p.to_vec()))).collect()
    }

    /// Writes entries in one unsynced batch, bypassing every check. Exists
    /// only so benchmarks can fill a store with synthetic state quickly.
    #[doc(hidden)]
    pub fn load_unchecked(&self, writes: &[(&'static str, Vec<u8>, Vec<u8>)]) -> Result<()> {
        let mut batch = WriteBatch::default();
        for (cf, key, value) in writes {
            batch.put_cf(self.cf(cf)?, key, value);
        }
        self.db.write(batch)?;
        Ok(())
    }

    /// The greatest entry with key ≤ `key`.
    pub(crate) fn floor(&self, cf: &str, key: &[u8]) -> Result<Option<(Vec<u8>, Vec<u8>)>> {
        let mut it = self
            .db
            .iterator_cf(self.cf(cf)?, IteratorMode::From(key, rocksdb::Direction::Reverse));
        match it.next() {
            Some(item) => {
                let (k, v) = item?;
                Ok(Some((k.into_vec(), v.into_vec())))
            }
            None => Ok(None),
        }
    }

    /// Applies writes atomically and durably (synced to disk before returning).
    pub(crate) fn write<'k>(
        &self,
        writes: impl IntoIterator<Item = (&'static str, &'k [u8], Option<&'k [u8]>)>,
    ) -> Result<()> {
        let writes = writes.into_iter();
        // Sized up front: a block's batch is a megabyte or more, and growing
        // it by doubling copied it about twice over.
        let mut batch = WriteBatch::with_capacity_bytes(WRITE_BATCH_START);
        for (cf, key, value) in writes {
            let handle = self.cf(cf)?;
            match value {
                Some(v) => batch.put_cf(handle, key, v),
                None => batch.delete_cf(handle, key),
            }
        }
        let mut wo = WriteOptions::default();
        wo.set_sync(true);
        // Writes arrive in key order per column family (log indices and log
        // nodes are sequential anyway): the memtable starts each insert's
        // search where the previous one ended instead of at the top.
        wo.set_memtable_insert_hint_per_batch(true);
        self.db.write_opt(batch, &wo)?;
        Ok(())
    }

    /// Overwrites one stored value, bypassing every check. Exists only so fault
    /// tests can tamper with a store the way an attacker with disk access would.
    #[doc(hidden)]
    pub fn tamper(&self, cf: &str, key: &[u8], value: &[u8]) -> Result<()> {
        self.db.put_cf(self.cf(cf)?, key, value)?;
        Ok(())
    }
}

/// The memtable size of the column families with random keys (see `open_with`).
const RANDOM_KEY_MEMTABLE: usize = 16 << 20;

/// The initial capacity of a block's write batch: about a 2,048-transaction
/// block of notarizations (key, value and framing of each entry).
const WRITE_BATCH_START: usize = 2 << 20;

pub(crate) fn log_key(level: u8, index: u64) -> [u8; 9] {
    let mut k = [0u8; 9];
    k[0] = level;
    k[1..].copy_from_slice(&index.to_be_bytes());
    k
}

pub(crate) fn u64_key(v: u64) -> Vec<u8> {
    v.to_be_bytes().to_vec()
}

pub(crate) fn read_u64(what: &str, bytes: &[u8]) -> Result<u64> {
    let arr: [u8; 8] = bytes
        .try_into()
        .map_err(|_| Error::Corrupt(format!("{what}: expected 8 bytes, found {}", bytes.len())))?;
    Ok(u64::from_be_bytes(arr))
}

impl SubtreeSource for Store {
    type Error = Error;
    fn complete(&self, level: u8, index: u64) -> Result<Digest> {
        let bytes = self
            .get(CF_LOG, &log_key(level, index))?
            .ok_or_else(|| Error::Corrupt(format!("Merkle log node (level {level}, index {index}) is missing")))?;
        let arr: [u8; 32] = bytes.as_slice().try_into().map_err(|_| {
            Error::Corrupt(format!(
                "Merkle log node (level {level}, index {index}) is not 32 bytes"
            ))
        })?;
        Ok(Digest(arr))
    }
}
