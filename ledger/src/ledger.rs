//! The ledger: applies transactions through the state machine, builds and
//! imports blocks, commits them atomically, and serves proofs.

use crate::block::{Block, BlockHeader, LedgerGenesis, SignedHeader};
use crate::merkle::{self, Frontier};
use crate::state::{Applied, DecodedCache, Overlay, Record, StateMachine, WriteSet};
use crate::store::*;
use crate::tx::{verify_signatures, CheckedTx, EnvelopeRules, SignedTx, TxId};
use crate::{Error, Result};
use liutong_core::{Canonical, Digest, SigningKey, Timestamp};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// What a transaction sees of the block it is applied in.
#[derive(Clone, Copy, Debug)]
pub struct BlockContext {
    pub height: u64,
    pub timestamp: Timestamp,
    /// The log index this transaction gets if committed.
    pub tx_index: u64,
}

/// The answer to a submitter, sent only after the block is durable.
#[derive(Clone, Debug, Serialize)]
pub struct Receipt {
    pub tx_id: TxId,
    #[serde(flatten)]
    pub outcome: TxOutcome,
}

#[derive(Clone, Debug, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum TxOutcome {
    Committed {
        index: u64,
        height: u64,
        result: Record,
    },
    /// Not committed: it would only repeat the existing record in `result`.
    Existing {
        result: Record,
    },
}

/// A committed transaction as stored.
#[derive(Clone, Debug)]
pub struct TxRecord {
    pub id: TxId,
    pub index: u64,
    pub height: u64,
    pub bytes: Vec<u8>,
    pub tx: SignedTx,
}

/// Everything needed to check one transaction against one signed header.
#[derive(Clone, Debug)]
pub struct InclusionProof {
    pub header: SignedHeader,
    pub leaf_index: u64,
    pub tree_size: u64,
    pub audit_path: Vec<Digest>,
    pub tx_bytes: Vec<u8>,
}

#[derive(Clone, Debug)]
pub struct ConsistencyProof {
    pub from: SignedHeader,
    pub to: SignedHeader,
    pub path: Vec<Digest>,
}

/// The result of whole-chain verification.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ChainReport {
    pub blocks: u64,
    pub transactions: u64,
    pub state_entries: u64,
    /// Each problem found, naming where it is.
    pub problems: Vec<String>,
}

impl ChainReport {
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Where the next block is built: a sealed block that may still be on its
/// way to disk. The next block reads its writes before the store's.
#[derive(Clone)]
pub struct Tip {
    header: SignedHeader,
    frontier: Frontier,
    state: Arc<WriteSet>,
}

/// A block the orderer has sealed, not yet durable, with the answers its
/// submitters get once it is. When no transaction was accepted there is no
/// block, but the answers still wait their turn: an `existing` answer may
/// rest on the block sealed before.
pub struct Sealed {
    /// Hash of the header this was built on (the genesis digest for block 1).
    parent: Digest,
    height: u64,
    block: Option<SealedBlock>,
    answers: Vec<Result<(TxId, Applied, u64)>>,
    started: Instant,
}

struct SealedBlock {
    tip: Tip,
    log: Vec<(u8, u64, Digest)>,
}

impl Sealed {
    /// The tip the next block builds on, when this sealed a block.
    pub fn tip(&self) -> Option<Tip> {
        self.block.as_ref().map(|b| b.tip.clone())
    }
}

struct Writer {
    frontier: Frontier,
    head: Option<SignedHeader>,
}

pub struct Ledger {
    store: Store,
    genesis: LedgerGenesis,
    rules: EnvelopeRules,
    machine: Arc<dyn StateMachine>,
    writer: Mutex<Writer>,
    heights: tokio::sync::watch::Sender<u64>,
    /// Store values the state machine decoded, kept across blocks.
    decoded: DecodedCache,
}

impl Ledger {
    /// Opens (or creates) the store at `path` for `genesis`. A store made for
    /// another genesis is refused; on restart the head header and the log
    /// root are re-checked before the node serves anything.
    pub fn open(path: &Path, genesis: LedgerGenesis, machine: Arc<dyn StateMachine>) -> Result<Ledger> {
        let store = Store::open_with(path, &machine.column_families(), &machine.miss_heavy_column_families())?;
        match store.get(CF_META, META_GENESIS)? {
            Some(d) if d.as_slice() == genesis.genesis_digest.as_bytes() => {}
            Some(d) => {
                return Err(Error::BadRequest(format!(
                    "the store at {} belongs to genesis {}, not {}",
                    path.display(),
                    hex_of(&d),
                    genesis.genesis_digest
                )))
            }
            None => {
                let mut overlay = Overlay::over(&store, None, 0);
                machine
                    .genesis_state(&mut overlay)
                    .map_err(|r| Error::rejected(r.code, r.message))?;
                let writes = overlay.into_writes();
                let head = u64_key(0);
                let meta = [
                    (
                        CF_META,
                        META_GENESIS,
                        Some(genesis.genesis_digest.as_bytes().as_slice()),
                    ),
                    (CF_META, META_HEAD, Some(head.as_slice())),
                ];
                store.write(writes.iter().chain(meta))?;
            }
        }
        let height = match store.get(CF_META, META_HEAD)? {
            Some(b) => read_u64("head height", &b)?,
            None => 0,
        };
        let head = if height == 0 {
            None
        } else {
            Some(read_header(&store, height)?)
        };
        let log_size = head.as_ref().map_or(0, |h| h.header.log_size);
        let frontier = Frontier::load(&store, log_size)?;
        if let Some(h) = &head {
            h.verify(&genesis.orderer)?;
            if frontier.root() != h.header.log_root {
                return Err(Error::Corrupt(format!(
                    "log root recomputed from the store ({}) differs from head block {}'s ({})",
                    frontier.root(),
                    height,
                    h.header.log_root
                )));
            }
        }
        let rules = EnvelopeRules {
            chain_id: genesis.chain_id.clone(),
            max_tx_bytes: genesis.params.max_tx_bytes as usize,
            max_clock_skew_ms: genesis.params.max_clock_skew_ms,
        };
        let (heights, _) = tokio::sync::watch::channel(height);
        Ok(Ledger {
            store,
            genesis,
            rules,
            machine,
            writer: Mutex::new(Writer { frontier, head }),
            heights,
            decoded: DecodedCache::default(),
        })
    }

    pub fn genesis(&self) -> &LedgerGenesis {
        &self.genesis
    }
    pub fn rules(&self) -> &EnvelopeRules {
        &self.rules
    }
    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn head(&self) -> Option<SignedHeader> {
        self.lock_writer().head.clone()
    }

    pub fn height(&self) -> u64 {
        *self.heights.borrow()
    }

    /// Notified with the new height after every durable block.
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.heights.subscribe()
    }

    fn lock_writer(&self) -> std::sync::MutexGuard<'_, Writer> {
        // A panic while holding the lock cannot leave a half-written block: the
        // store write is one atomic batch, so the state behind the lock is usable.
        self.writer.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Applies one transaction inside a block: duplicate id, nonce, then the state machine.
    fn apply_one(&self, c: &CheckedTx, ctx: &BlockContext, overlay: &mut Overlay<'_>) -> Result<Applied> {
        // A committed transaction's nonce is recorded with its id, so a new
        // nonce means a new transaction; only a used one needs the id look-up
        // that tells a resubmission from a replay.
        let nonce_key = nonce_key(&c.tx);
        if overlay.get(CF_NONCES, &nonce_key)?.is_some() {
            if overlay.get(CF_TX_IDS, c.id.as_bytes())?.is_some() {
                return Err(Error::Duplicate(c.id.to_string()));
            }
            return Err(Error::ReplayedNonce { nonce: c.tx.tx.nonce });
        }
        let applied = self
            .machine
            .apply(&c.tx, &c.id, ctx, overlay)
            .map_err(|r| Error::rejected(r.code, r.message))?;
        if let Applied::Committed(_) = applied {
            overlay.put(CF_NONCES, nonce_key, Vec::new());
            overlay.put(CF_TX_IDS, c.id.as_bytes().to_vec(), u64_key(ctx.tx_index));
            overlay.put(CF_TXS, u64_key(ctx.tx_index), c.bytes.clone());
        }
        Ok(applied)
    }

    /// Orderer path, in one step: seals a block on the durable head and commits
    /// it; one answer per transaction, each sent only after the block is durable.
    pub fn propose_block(&self, txs: Vec<CheckedTx>, key: &SigningKey, now: Timestamp) -> Result<Vec<Result<Receipt>>> {
        Ok(self.commit_sealed(self.seal_block(txs, key, now, None)))
    }

    /// Orderer path, first half: applies the checked transactions in order on
    /// top of `on` (a sealed block still on its way to disk) or of the durable
    /// head, and seals what was accepted into one block signed with `key`.
    /// Nothing is stored and nobody is answered until [`Ledger::commit_sealed`].
    pub fn seal_block(&self, txs: Vec<CheckedTx>, key: &SigningKey, now: Timestamp, on: Option<&Tip>) -> Sealed {
        let started = Instant::now();
        let (prev, frontier, pending) = match on {
            Some(t) => (Some(t.header.clone()), t.frontier.clone(), Some(t.state.clone())),
            None => {
                let w = self.lock_writer();
                (w.head.clone(), w.frontier.clone(), None)
            }
        };
        let prev = prev.as_ref().map(|h| &h.header);
        let height = prev.map_or(1, |h| h.height + 1);
        let timestamp = now.max(prev.map_or(0, |h| h.timestamp));
        let parent = prev.map_or(self.genesis.genesis_digest, BlockHeader::hash);
        let first = frontier.size();
        let mut overlay = Overlay::over(&self.store, pending, txs.len()).sharing(&self.decoded);
        let mut answers: Vec<Result<(TxId, Applied, u64)>> = Vec::with_capacity(txs.len());
        let mut accepted: Vec<&CheckedTx> = Vec::new();
        for c in &txs {
            let ctx = BlockContext {
                height,
                timestamp,
                tx_index: first + accepted.len() as u64,
            };
            match self.apply_one(c, &ctx, &mut overlay) {
                Ok(applied) => {
                    overlay.commit_tx();
                    if matches!(applied, Applied::Committed(_)) {
                        accepted.push(c);
                    }
                    answers.push(Ok((c.id, applied, ctx.tx_index)));
                }
                Err(e) => {
                    overlay.rollback_tx();
                    answers.push(Err(e));
                }
            }
        }
        let block = if accepted.is_empty() {
            None
        } else {
            let mut frontier = frontier;
            let mut log = Vec::with_capacity(accepted.len() * 2);
            for c in &accepted {
                log.extend(frontier.push(merkle::leaf_hash(&c.bytes)));
            }
            let header = BlockHeader {
                height,
                prev_header_hash: parent,
                first_tx_index: first,
                tx_count: accepted.len() as u64,
                log_size: frontier.size(),
                log_root: frontier.root(),
                timestamp,
                orderer: key.public_key(),
            }
            .sign(key);
            Some(SealedBlock {
                tip: Tip {
                    header,
                    frontier,
                    state: Arc::new(overlay.into_writes()),
                },
                log,
            })
        };
        Sealed {
            parent,
            height,
            block,
            answers,
            started,
        }
    }

    /// Orderer path, second half: makes a sealed block durable (one synced
    /// write), then answers its transactions. A block that does not build on
    /// the durable head (the block it was sealed on failed to commit) is
    /// refused, and so is every transaction in it.
    pub fn commit_sealed(&self, sealed: Sealed) -> Vec<Result<Receipt>> {
        let Sealed {
            parent,
            height,
            block,
            answers,
            started,
        } = sealed;
        let mut w = self.lock_writer();
        let head = w.head.as_ref().map_or(self.genesis.genesis_digest, |h| h.header.hash());
        let outcome = if head != parent {
            Err(Error::Store(format!(
                "block {height} was built on a block that failed to commit; submit again"
            )))
        } else if let Some(b) = block {
            let txs = b.tip.header.header.tx_count;
            let sealed_ms = started.elapsed().as_secs_f64() * 1e3;
            let r = self.commit(&mut w, b.tip, &b.log);
            tracing::debug!(
                height,
                txs,
                sealed_ms,
                total_ms = started.elapsed().as_secs_f64() * 1e3,
                "block committed"
            );
            r
        } else {
            Ok(())
        };
        drop(w);
        if let Err(e) = &outcome {
            tracing::error!(height, error = %e, "block commit failed; its transactions are refused");
        }
        answers
            .into_iter()
            .map(|a| {
                let (tx_id, applied, index) = a?;
                if let Err(e) = &outcome {
                    return Err(e.clone());
                }
                Ok(Receipt {
                    tx_id,
                    outcome: match applied {
                        Applied::Committed(result) => TxOutcome::Committed { index, height, result },
                        Applied::Existing(result) => TxOutcome::Existing { result },
                    },
                })
            })
            .collect()
    }

    /// Follower path: checks a block from the orderer completely (orderer
    /// signature, header chain, every transaction's envelope and signature,
    /// each transaction valid against our own state, the recomputed log root)
    /// and commits it; anything wrong refuses the whole block and leaves the
    /// store as it was.
    pub fn import_block(&self, block: &Block) -> Result<SignedHeader> {
        let mut w = self.lock_writer();
        let h = &block.header.header;
        let expected_height = w.head.as_ref().map_or(1, |p| p.header.height + 1);
        if h.height != expected_height {
            return Err(Error::BadBlock(format!(
                "expected block {expected_height}, got {}",
                h.height
            )));
        }
        block.header.verify(&self.genesis.orderer)?;
        let prev_hash = w.head.as_ref().map_or(self.genesis.genesis_digest, |p| p.header.hash());
        if h.prev_header_hash != prev_hash {
            return Err(Error::BadBlock(format!(
                "block {} does not link to our block {}",
                h.height,
                h.height - 1
            )));
        }
        if h.first_tx_index != w.frontier.size()
            || h.tx_count != block.txs.len() as u64
            || h.log_size != h.first_tx_index + h.tx_count
        {
            return Err(Error::BadBlock(format!(
                "block {}: transaction range does not match the log",
                h.height
            )));
        }
        if h.tx_count > u64::from(self.genesis.params.block_max_txs) {
            return Err(Error::BadBlock(format!(
                "block {} holds more than {} transactions",
                h.height, self.genesis.params.block_max_txs
            )));
        }
        if h.tx_count == 0 {
            return Err(Error::BadBlock(format!("block {} is empty", h.height)));
        }
        // Clock skew is a submission-time rule; a follower catching up applies old blocks.
        let decoded: Vec<Result<CheckedTx>> = block
            .txs
            .iter()
            .map(|b| {
                let tx = SignedTx::from_canonical_bytes(b).map_err(|e| Error::Malformed(e.to_string()))?;
                if tx.tx.chain_id != self.genesis.chain_id {
                    return Err(Error::WrongChain {
                        got: tx.tx.chain_id.clone(),
                        expected: self.genesis.chain_id.clone(),
                    });
                }
                Ok(CheckedTx {
                    id: liutong_core::sha256(b),
                    bytes: b.clone(),
                    tx,
                })
            })
            .collect();
        let checked: Vec<CheckedTx> = verify_signatures(decoded)
            .into_iter()
            .enumerate()
            .map(|(i, r)| r.map_err(|e| Error::BadBlock(format!("block {} transaction {i}: {e}", h.height))))
            .collect::<Result<_>>()?;
        let mut overlay = Overlay::over(&self.store, None, checked.len()).sharing(&self.decoded);
        let mut frontier = w.frontier.clone();
        let mut log = Vec::with_capacity(checked.len() * 2);
        for (i, c) in checked.iter().enumerate() {
            let ctx = BlockContext {
                height: h.height,
                timestamp: h.timestamp,
                tx_index: h.first_tx_index + i as u64,
            };
            match self.apply_one(c, &ctx, &mut overlay) {
                Ok(Applied::Committed(_)) => overlay.commit_tx(),
                Ok(Applied::Existing(_)) => {
                    return Err(Error::BadBlock(format!(
                        "block {} transaction {i} changes nothing",
                        h.height
                    )))
                }
                Err(e) => {
                    return Err(Error::BadBlock(format!(
                        "block {} transaction {i} is invalid: {e}",
                        h.height
                    )))
                }
            }
            log.extend(frontier.push(merkle::leaf_hash(&c.bytes)));
        }
        if frontier.root() != h.log_root {
            return Err(Error::BadBlock(format!(
                "block {}: log root {} does not match the recomputed {}",
                h.height,
                h.log_root,
                frontier.root()
            )));
        }
        let header = block.header.clone();
        let tip = Tip {
            header: header.clone(),
            frontier,
            state: Arc::new(overlay.into_writes()),
        };
        self.commit(&mut w, tip, &log)?;
        Ok(header)
    }

    /// One synced write of a block: its header, its log nodes, its state.
    fn commit(&self, w: &mut Writer, tip: Tip, log: &[(u8, u64, Digest)]) -> Result<()> {
        let h = &tip.header.header;
        let header_bytes = tip.header.canonical_bytes();
        let (height, first) = (u64_key(h.height), u64_key(h.first_tx_index));
        let log_keys: Vec<[u8; 9]> = log.iter().map(|(level, index, _)| log_key(*level, *index)).collect();
        let ledger_writes = [
            (CF_BLOCKS, height.as_slice(), Some(header_bytes.as_slice())),
            (CF_BLOCK_INDEX, first.as_slice(), Some(height.as_slice())),
            (CF_META, META_HEAD, Some(height.as_slice())),
        ];
        let log_writes = log_keys
            .iter()
            .zip(log)
            .map(|(k, (_, _, hash))| (CF_LOG, k.as_slice(), Some(hash.as_bytes().as_slice())));
        let written = self
            .store
            .write(tip.state.iter().chain(log_writes).chain(ledger_writes));
        self.decoded.invalidate(&tip.state);
        written?;
        let height = h.height;
        w.frontier = tip.frontier;
        w.head = Some(tip.header);
        self.heights.send_replace(height);
        Ok(())
    }

    pub fn header(&self, height: u64) -> Result<SignedHeader> {
        if height == 0 || height > self.height() {
            return Err(Error::NotFound(format!("block {height}")));
        }
        read_header(&self.store, height)
    }

    pub fn block(&self, height: u64) -> Result<Block> {
        let header = self.header(height)?;
        let h = &header.header;
        let txs = (h.first_tx_index..h.log_size)
            .map(|i| self.tx_bytes_at(i))
            .collect::<Result<_>>()?;
        Ok(Block { header, txs })
    }

    fn tx_bytes_at(&self, index: u64) -> Result<Vec<u8>> {
        self.store
            .get(CF_TXS, &u64_key(index))?
            .ok_or_else(|| Error::Corrupt(format!("transaction at log index {index} is missing")))
    }

    /// Height of the block holding log index `index`.
    pub fn height_of_index(&self, index: u64) -> Result<u64> {
        let (_, v) = self
            .store
            .floor(CF_BLOCK_INDEX, &u64_key(index))?
            .ok_or_else(|| Error::Corrupt(format!("no block holds log index {index}")))?;
        read_u64("block index", &v)
    }

    pub fn tx_index(&self, id: &TxId) -> Result<u64> {
        let v = self
            .store
            .get(CF_TX_IDS, id.as_bytes())?
            .ok_or_else(|| Error::NotFound(format!("transaction {id}")))?;
        read_u64("tx id index", &v)
    }

    pub fn tx(&self, id: &TxId) -> Result<TxRecord> {
        let index = self.tx_index(id)?;
        self.tx_at(index)
    }

    pub fn tx_at(&self, index: u64) -> Result<TxRecord> {
        let bytes = self.tx_bytes_at(index)?;
        let tx =
            SignedTx::from_canonical_bytes(&bytes).map_err(|e| Error::Corrupt(format!("transaction {index}: {e}")))?;
        Ok(TxRecord {
            id: liutong_core::sha256(&bytes),
            index,
            height: self.height_of_index(index)?,
            bytes,
            tx,
        })
    }

    /// Inclusion proof of transaction `id` against the header at `at_height`
    /// (default: the head). O(log n) reads.
    pub fn inclusion_proof(&self, id: &TxId, at_height: Option<u64>) -> Result<InclusionProof> {
        let rec = self.tx(id)?;
        let at = at_height.unwrap_or_else(|| self.height());
        if at < rec.height {
            return Err(Error::BadRequest(format!(
                "transaction {id} is in block {}, after the requested block {at}",
                rec.height
            )));
        }
        let header = self.header(at)?;
        let audit_path = merkle::inclusion_path(&self.store, rec.index, header.header.log_size)?;
        Ok(InclusionProof {
            leaf_index: rec.index,
            tree_size: header.header.log_size,
            audit_path,
            tx_bytes: rec.bytes,
            header,
        })
    }

    /// Consistency proof between the logs of two block heights. O(log n) reads.
    pub fn consistency_proof(&self, from: u64, to: u64) -> Result<ConsistencyProof> {
        if from > to {
            return Err(Error::BadRequest(format!("from height {from} is after to height {to}")));
        }
        let from_h = self.header(from)?;
        let to_h = self.header(to)?;
        let path = merkle::consistency_path(&self.store, from_h.header.log_size, to_h.header.log_size)?;
        Ok(ConsistencyProof {
            from: from_h,
            to: to_h,
            path,
        })
    }

    /// Re-verifies everything stored: every header's signature and link, every
    /// transaction's bytes, id and signature, every log root and stored log
    /// node recomputed, and the application state replayed from the genesis
    /// and compared entry by entry. Finds and names any altered byte.
    pub fn verify_chain(&self) -> Result<ChainReport> {
        let mut report = ChainReport::default();
        let problems = &mut report.problems;
        let height = match self.store.get(CF_META, META_HEAD)? {
            Some(b) => read_u64("head height", &b)?,
            None => 0,
        };
        let mut frontier = Frontier::default();
        let mut replay = Overlay::empty();
        if let Err(r) = self.machine.genesis_state(&mut replay) {
            problems.push(format!("genesis state: {}", r.message));
        }
        replay.commit_tx();
        let mut prev_hash = self.genesis.genesis_digest;
        let mut prev_time = 0;
        let mut expected_ids: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
        let mut expected_index: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
        let mut expected_log: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
        for hgt in 1..=height {
            let header = match read_header(&self.store, hgt) {
                Ok(h) => h,
                Err(e) => {
                    problems.push(format!("block {hgt}: {e}"));
                    return Ok(report);
                }
            };
            report.blocks += 1;
            let h = &header.header;
            if h.height != hgt {
                problems.push(format!("block {hgt}: header says height {}", h.height));
            }
            if let Err(e) = header.verify(&self.genesis.orderer) {
                problems.push(format!("block {hgt}: {e}"));
            }
            if h.prev_header_hash != prev_hash {
                problems.push(format!(
                    "block {hgt}: previous-header hash does not match block {}",
                    hgt - 1
                ));
            }
            if h.timestamp < prev_time {
                problems.push(format!("block {hgt}: timestamp goes backwards"));
            }
            if h.first_tx_index != frontier.size()
                || h.log_size != h.first_tx_index.saturating_add(h.tx_count)
                || h.tx_count > u64::from(self.genesis.params.block_max_txs)
            {
                // The rest of the chain cannot be read against a broken range.
                problems.push(format!(
                    "block {hgt}: transaction range [{}, +{}) does not continue the log at {}",
                    h.first_tx_index,
                    h.tx_count,
                    frontier.size()
                ));
                return Ok(report);
            }
            expected_index.insert(u64_key(h.first_tx_index), u64_key(hgt));
            let mut decoded = Vec::new();
            for index in h.first_tx_index..h.first_tx_index + h.tx_count {
                let bytes = match self.store.get(CF_TXS, &u64_key(index))? {
                    Some(b) => b,
                    None => {
                        problems.push(format!("transaction {index} (block {hgt}): missing"));
                        continue;
                    }
                };
                for (level, i, hash) in frontier.push(merkle::leaf_hash(&bytes)) {
                    expected_log.insert(log_key(level, i).to_vec(), hash.as_bytes().to_vec());
                }
                let id = liutong_core::sha256(&bytes);
                expected_ids.insert(id.as_bytes().to_vec(), u64_key(index));
                match SignedTx::from_canonical_bytes(&bytes) {
                    Ok(tx) => decoded.push(Ok(CheckedTx { tx, bytes, id })),
                    Err(e) => problems.push(format!("transaction {index} (block {hgt}): {e}")),
                }
            }
            if frontier.root() != h.log_root {
                problems.push(format!(
                    "block {hgt}: log root {} differs from the root recomputed from the stored transactions {}",
                    h.log_root,
                    frontier.root()
                ));
            }
            for (n, r) in verify_signatures(decoded).into_iter().enumerate() {
                let index = h.first_tx_index + n as u64;
                match r {
                    Ok(c) => {
                        report.transactions += 1;
                        let ctx = BlockContext {
                            height: hgt,
                            timestamp: h.timestamp,
                            tx_index: index,
                        };
                        replay.put(CF_NONCES, nonce_key(&c.tx), Vec::new());
                        match self.machine.apply(&c.tx, &c.id, &ctx, &mut replay) {
                            Ok(Applied::Committed(_)) => replay.commit_tx(),
                            Ok(Applied::Existing(_)) => {
                                replay.commit_tx();
                                problems.push(format!("transaction {index} (block {hgt}): changes nothing on replay"))
                            }
                            Err(r) => {
                                replay.rollback_tx();
                                problems.push(format!(
                                    "transaction {index} (block {hgt}): invalid on replay: {}",
                                    r.message
                                ))
                            }
                        }
                    }
                    Err(e) => problems.push(format!("transaction {index} (block {hgt}): {e}")),
                }
            }
            prev_hash = h.hash();
            prev_time = h.timestamp;
        }
        compare_cf(&self.store, CF_TX_IDS, &expected_ids, problems)?;
        compare_cf(&self.store, CF_BLOCK_INDEX, &expected_index, problems)?;
        compare_cf(&self.store, CF_LOG, &expected_log, problems)?;
        let extra_tx = self.store.scan_from(CF_TXS, &u64_key(frontier.size()), 1)?;
        if let Some((k, _)) = extra_tx.first() {
            problems.push(format!(
                "txs: transaction {} is stored beyond the head block",
                hex_of(k)
            ));
        }
        let extra_block = self.store.scan_from(CF_BLOCKS, &u64_key(height + 1), 1)?;
        if !extra_block.is_empty() {
            problems.push("blocks: a block is stored beyond the head".to_string());
        }
        let writes = replay.into_writes();
        let mut by_cf: BTreeMap<&str, BTreeMap<Vec<u8>, Vec<u8>>> = BTreeMap::new();
        for cf in self.store.app_column_families().iter().copied().chain([CF_NONCES]) {
            by_cf.insert(cf, BTreeMap::new());
        }
        for (cf, k, v) in writes.iter() {
            if let Some(v) = v {
                by_cf.entry(cf).or_default().insert(k.to_vec(), v.to_vec());
            }
        }
        for (cf, expected) in &by_cf {
            report.state_entries += expected.len() as u64;
            compare_cf(&self.store, cf, expected, problems)?;
        }
        Ok(report)
    }
}

fn compare_cf(
    store: &Store,
    cf: &str,
    expected: &BTreeMap<Vec<u8>, Vec<u8>>,
    problems: &mut Vec<String>,
) -> Result<()> {
    let stored = store.scan(cf)?;
    let mut reported = 0;
    let mut note = |p: String, problems: &mut Vec<String>| {
        reported += 1;
        if reported <= 20 {
            problems.push(p);
        }
    };
    let mut si = stored.iter().peekable();
    let mut ei = expected.iter().peekable();
    loop {
        match (si.peek(), ei.peek()) {
            (None, None) => break,
            (Some((sk, _)), None) => {
                note(format!("{cf}: unexpected entry {}", hex_of(sk)), problems);
                si.next();
            }
            (None, Some((ek, _))) => {
                note(format!("{cf}: entry {} is missing", hex_of(ek)), problems);
                ei.next();
            }
            (Some((sk, sv)), Some((ek, ev))) => match sk.as_slice().cmp(ek.as_slice()) {
                std::cmp::Ordering::Less => {
                    note(format!("{cf}: unexpected entry {}", hex_of(sk)), problems);
                    si.next();
                }
                std::cmp::Ordering::Greater => {
                    note(format!("{cf}: entry {} is missing", hex_of(ek)), problems);
                    ei.next();
                }
                std::cmp::Ordering::Equal => {
                    if sv != *ev {
                        note(format!("{cf}: entry {} was altered", hex_of(sk)), problems);
                    }
                    si.next();
                    ei.next();
                }
            },
        }
    }
    if reported > 20 {
        problems.push(format!("{cf}: {} more differences", reported - 20));
    }
    Ok(())
}

fn nonce_key(tx: &SignedTx) -> Vec<u8> {
    let mut k = tx.tx.signer.as_bytes().to_vec();
    k.extend(tx.tx.nonce.to_be_bytes());
    k
}

fn hex_of(bytes: &[u8]) -> String {
    liutong_core::to_hex(bytes)
}

fn read_header(store: &Store, height: u64) -> Result<SignedHeader> {
    let bytes = store
        .get(CF_BLOCKS, &u64_key(height))?
        .ok_or_else(|| Error::Corrupt(format!("block {height} is missing")))?;
    SignedHeader::from_canonical_bytes(&bytes).map_err(|e| Error::Corrupt(format!("block {height}: {e}")))
}
