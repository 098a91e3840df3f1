//! Checking submissions before they are ordered: envelopes, then signatures,
//! with submissions that arrive together verified as one batch.

use crate::tx::{CheckedTx, EnvelopeRules};
use crate::Result;
use liutong_core::Timestamp;
use std::sync::mpsc;
use std::thread::JoinHandle;
use tokio::sync::oneshot;

/// The most transactions verified in one round; what arrives meanwhile waits
/// for the next. Bounds one round's latency and memory.
const MAX_ROUND: usize = 16_384;

struct Job {
    raw: Vec<Vec<u8>>,
    now: Timestamp,
    reply: oneshot::Sender<Vec<Result<CheckedTx>>>,
}

/// Checks submitted transactions on one thread that drives the verification
/// across all cores. Submissions that arrive while a round is running are
/// taken together in the next round: with many concurrent clients a round
/// holds several requests, so a signer's signatures across them share one
/// key point in the batch equation (see `liutong_core::verify_batch`), and
/// single-transaction requests are batch-verified instead of one by one. A
/// lone request is checked at once; nothing waits for company.
pub struct Checker {
    queue: Option<mpsc::Sender<Job>>,
    thread: Option<JoinHandle<()>>,
}

impl Checker {
    pub fn start(rules: EnvelopeRules) -> Checker {
        let (queue, rx) = mpsc::channel::<Job>();
        let thread = std::thread::Builder::new()
            .name("tx-checker".into())
            .spawn(move || {
                while let Ok(first) = rx.recv() {
                    let mut total = first.raw.len();
                    let mut jobs = vec![first];
                    while total < MAX_ROUND {
                        match rx.try_recv() {
                            Ok(j) => {
                                total += j.raw.len();
                                jobs.push(j);
                            }
                            Err(_) => break,
                        }
                    }
                    // A panic fails this round's requests (their replies are
                    // dropped), not the checker.
                    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| round(&rules, jobs)));
                }
            })
            .expect("spawning the transaction checker thread");
        Checker {
            queue: Some(queue),
            thread: Some(thread),
        }
    }

    /// Decodes and checks `raw` (envelope rules against `now`, then
    /// signatures): one answer per transaction, in order. `None` when the
    /// checker failed on this round or has stopped.
    pub async fn check(&self, raw: Vec<Vec<u8>>, now: Timestamp) -> Option<Vec<Result<CheckedTx>>> {
        let (reply, rx) = oneshot::channel();
        self.queue.as_ref()?.send(Job { raw, now, reply }).ok()?;
        rx.await.ok()
    }
}

fn round(rules: &EnvelopeRules, jobs: Vec<Job>) {
    let mut items = Vec::with_capacity(jobs.iter().map(|j| j.raw.len()).sum());
    let mut replies = Vec::with_capacity(jobs.len());
    for job in jobs {
        replies.push((job.raw.len(), job.reply));
        items.extend(job.raw.into_iter().map(|b| (b, job.now)));
    }
    let mut answers = rules.check_each(items).into_iter();
    for (n, reply) in replies {
        let _ = reply.send(answers.by_ref().take(n).collect());
    }
}

impl Drop for Checker {
    fn drop(&mut self) {
        // Closing the queue ends the thread after its current round.
        self.queue = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tx::Transaction;
    use liutong_core::{Canonical, SigningKey};

    fn rules() -> EnvelopeRules {
        EnvelopeRules {
            chain_id: "c".into(),
            max_tx_bytes: 4096,
            max_clock_skew_ms: 1000,
        }
    }

    fn tx(key: &SigningKey, nonce: u64, now: Timestamp) -> Vec<u8> {
        Transaction {
            chain_id: "c".into(),
            kind: "k".into(),
            body: vec![1, 2, 3],
            signer: key.public_key(),
            nonce,
            timestamp: now,
        }
        .sign(key)
        .canonical_bytes()
    }

    /// Many concurrent requests, some with bad transactions: each request
    /// gets its own answers, in its own order, whatever round it landed in.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_requests_get_their_own_answers() {
        let checker = std::sync::Arc::new(Checker::start(rules()));
        let keys: Vec<SigningKey> = (0..5).map(|_| SigningKey::generate()).collect();
        let now = 1_000_000;
        let mut tasks = Vec::new();
        for r in 0..40u64 {
            let (checker, keys) = (checker.clone(), keys.clone());
            tasks.push(tokio::spawn(async move {
                let mut raw: Vec<Vec<u8>> = (0..(r % 7 + 1) * 9)
                    .map(|i| tx(&keys[(i % 5) as usize], r * 1000 + i, now))
                    .collect();
                // Request r: its transaction r % len gets a flipped signature
                // byte, and every fifth request also carries garbage.
                let bad = (r as usize) % raw.len();
                let last = raw[bad].len() - 1;
                raw[bad][last] ^= 1;
                if r % 5 == 0 {
                    raw.push(vec![0xff; 10]);
                }
                let ids: Vec<_> = raw.iter().map(|b| liutong_core::sha256(b)).collect();
                let answers = checker.check(raw, now).await.expect("checker running");
                (bad, ids, answers)
            }));
        }
        for t in tasks {
            let (bad, ids, answers) = t.await.expect("task");
            assert_eq!(answers.len(), ids.len());
            for (i, (a, id)) in answers.iter().zip(&ids).enumerate() {
                match a {
                    Ok(c) => {
                        assert_ne!(i, bad);
                        assert_eq!(&c.id, id, "answer {i} belongs to its own transaction");
                    }
                    Err(e) if i == bad => assert_eq!(e.code(), "tx.bad_signature"),
                    Err(e) => assert_eq!(e.code(), "tx.malformed", "only the garbage is malformed"),
                }
            }
        }
    }

    #[tokio::test]
    async fn envelope_rules_use_each_requests_clock() {
        let checker = Checker::start(rules());
        let key = SigningKey::generate();
        let stale = checker.check(vec![tx(&key, 1, 10_000)], 20_000).await.expect("running");
        assert_eq!(
            stale[0].as_ref().err().map(|e| e.code().to_string()).as_deref(),
            Some("tx.stale_timestamp")
        );
        let fresh = checker.check(vec![tx(&key, 1, 10_000)], 10_500).await.expect("running");
        assert!(fresh[0].is_ok());
    }
}
