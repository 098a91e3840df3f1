//! Ordering: who decides the order of transactions and seals blocks.
//! `Solo` (one orderer, the embedded default) is the first implementation;
//! Raft among consortium nodes comes later behind the same trait, so the
//! state machine and the API do not change.

use crate::ledger::{Ledger, Receipt};
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

/// One orderer: a dedicated thread takes submissions, waits at most the
/// block interval (or until the block is full), applies and seals a block
/// and commits it with one synced write.
pub struct Solo {
    queue: mpsc::Sender<Submission>,
    thread: Option<JoinHandle<()>>,
}

impl Solo {
    pub fn start(ledger: Arc<Ledger>, key: SigningKey) -> Solo {
        let (queue, rx) = mpsc::channel::<Submission>();
        let params = ledger.genesis().params.clone();
        let thread = std::thread::Builder::new()
            .name("solo-orderer".into())
            .spawn(move || {
                let max = params.block_max_txs.max(1) as usize;
                let interval = Duration::from_millis(params.block_interval_ms as u64);
                while let Ok(first) = rx.recv() {
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
                    let (txs, replies): (Vec<CheckedTx>, Vec<_>) = batch.into_iter().map(|s| (s.tx, s.reply)).unzip();
                    match ledger.propose_block(txs, &key, now_ms()) {
                        Ok(answers) => {
                            for (reply, answer) in replies.into_iter().zip(answers) {
                                let _ = reply.send(answer);
                            }
                        }
                        Err(e) => {
                            tracing::error!(error = %e, "block commit failed; its transactions are refused");
                            for reply in replies {
                                let _ = reply.send(Err(e.clone()));
                            }
                        }
                    }
                }
            })
            .expect("spawning the orderer thread");
        Solo {
            queue,
            thread: Some(thread),
        }
    }
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
