//! Ordering: who decides the order of transactions and seals blocks.
//! `Solo` (one orderer, the embedded default) is the first implementation;
//! Raft among consortium nodes comes later behind the same trait, so the
//! state machine and the API do not change.

use crate::ledger::{Ledger, Receipt, Sealed, Tip};
use crate::tx::CheckedTx;
use crate::{Error, Result};
use liutong_core::{now_ms, SigningKey};
use std::sync::mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// One transaction on its way to a block, with where its answer goes.
pub struct Submission {
    pub tx: CheckedTx,
    pub reply: oneshot::Sender<Result<Receipt>>,
}

/// Orders checked transactions into blocks. Each transaction's answer arrives
/// on its receiver once its block is durable (or it was refused).
pub trait Ordering: Send + Sync {
    fn submit(&self, txs: Vec<CheckedTx>) -> Vec<oneshot::Receiver<Result<Receipt>>>;
}

/// One orderer, in two threads so that applying one block overlaps with
/// making the previous one durable. The sealer takes submissions, waits at
/// most the block interval (or until the block is full), applies them and
/// seals a block; the committer writes it with one synced write and only then
/// answers its submitters. The sealer builds each block on the one before
/// while that is still being written (reading its writes first), and never
/// gets more than one block ahead of the disk.
pub struct Solo {
    queue: mpsc::Sender<Submission>,
    thread: Option<JoinHandle<()>>,
}

type Replies = Vec<oneshot::Sender<Result<Receipt>>>;

/// The most transactions the solo orderer puts in one block (the genesis's
/// `block_max_txs` is the most any block may hold). Under load a block of
/// this size is applied while the one before is written: bigger blocks
/// leave one core idle while a long write runs, smaller ones pay the synced
/// write's fixed cost too often (BENCHMARKS.md, block size).
pub const BLOCK_TARGET_TXS: usize = 2048;

impl Solo {
    pub fn start(ledger: Arc<Ledger>, key: SigningKey) -> Solo {
        let (queue, rx) = mpsc::channel::<Submission>();
        let params = ledger.genesis().params.clone();
        let thread = std::thread::Builder::new()
            .name("solo-sealer".into())
            .spawn(move || {
                let max = (params.block_max_txs.max(1) as usize).min(BLOCK_TARGET_TXS);
                let interval = Duration::from_millis(params.block_interval_ms as u64);
                let (to_commit, sealed_rx) = mpsc::sync_channel::<(Sealed, Replies)>(1);
                let (done_tx, done) = mpsc::channel::<()>();
                let committer = {
                    let ledger = ledger.clone();
                    std::thread::Builder::new()
                        .name("solo-committer".into())
                        .spawn(move || {
                            for (sealed, replies) in sealed_rx {
                                let answers = ledger.commit_sealed(sealed);
                                for (reply, answer) in replies.into_iter().zip(answers) {
                                    let _ = reply.send(answer);
                                }
                                if done_tx.send(()).is_err() {
                                    break;
                                }
                            }
                        })
                        .expect("spawning the committer thread")
                };
                // Sealed items handed to the committer and not yet done, and
                // the block the next one builds on while it is in flight.
                let mut in_flight = 0usize;
                let mut last: Option<Tip> = None;
                while let Some(batch) = next_batch(&rx, max, interval) {
                    while done.try_recv().is_ok() {
                        in_flight -= 1;
                    }
                    // At most one item ahead of the disk: everything older is durable.
                    while in_flight > 1 {
                        if done.recv().is_err() {
                            break;
                        }
                        in_flight -= 1;
                    }
                    let on = if in_flight == 0 { None } else { last.as_ref() };
                    let (txs, replies): (Vec<CheckedTx>, Replies) = batch.into_iter().map(|s| (s.tx, s.reply)).unzip();
                    let sealed = ledger.seal_block(txs, &key, now_ms(), on);
                    last = sealed.tip();
                    if let Err(mpsc::SendError((_, replies))) = to_commit.send((sealed, replies)) {
                        for reply in replies {
                            let _ = reply.send(Err(Error::Shutdown));
                        }
                        break;
                    }
                    in_flight += 1;
                }
                drop(to_commit);
                let _ = committer.join();
            })
            .expect("spawning the orderer thread");
        Solo {
            queue,
            thread: Some(thread),
        }
    }
}

/// The next block's submissions: the first to arrive, then whatever else
/// arrives within `interval`, up to `max`. `None` once the queue is closed.
fn next_batch(rx: &mpsc::Receiver<Submission>, max: usize, interval: Duration) -> Option<Vec<Submission>> {
    let first = rx.recv().ok()?;
    let deadline = Instant::now() + interval;
    let mut batch = vec![first];
    while batch.len() < max {
        match rx.try_recv() {
            Ok(s) => batch.push(s),
            Err(mpsc::TryRecvError::Empty) => {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    break;
                }
                match rx.recv_timeout(left) {
                    Ok(s) => batch.push(s),
                    Err(_) => break,
                }
            }
            Err(mpsc::TryRecvError::Disconnected) => break,
        }
    }
    Some(batch)
}

impl Ordering for Solo {
    fn submit(&self, txs: Vec<CheckedTx>) -> Vec<oneshot::Receiver<Result<Receipt>>> {
        txs.into_iter()
            .map(|tx| {
                let (reply, rx) = oneshot::channel();
                if let Err(mpsc::SendError(s)) = self.queue.send(Submission { tx, reply }) {
                    let _ = s.reply.send(Err(Error::Shutdown));
                }
                rx
            })
            .collect()
    }
}

impl Drop for Solo {
    fn drop(&mut self) {
        // Closing the queue ends the thread after its current block.
        let (dead, _) = mpsc::channel();
        self.queue = dead;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
