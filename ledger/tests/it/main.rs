//! The ledger through its public API, with a tiny state machine of its own:
//! envelope checks, atomic blocks, proofs at every size, reopen checks.

use liutong_core::{now_ms, sha256, Canonical, SigningKey};
use liutong_ledger::merkle::{leaf_hash, verify_consistency, verify_inclusion};
use liutong_ledger::*;
use std::sync::Arc;

/// `kv.put`: body = key bytes; refuses an empty key and keys already present.
struct KeyValue;

impl StateMachine for KeyValue {
    fn column_families(&self) -> Vec<&'static str> {
        vec!["kv"]
    }
    fn genesis_state(&self, _: &mut Overlay<'_>) -> Result<(), Rejection> {
        Ok(())
    }
    fn apply(&self, tx: &SignedTx, _: &TxId, ctx: &BlockContext, s: &mut Overlay<'_>) -> Result<Applied, Rejection> {
        if tx.tx.kind != "kv.put" {
            return Err(Rejection::new("tx.unknown_kind", "only kv.put"));
        }
        if tx.tx.body.is_empty() {
            return Err(Rejection::new("kv.empty", "empty key"));
        }
        if s.get("kv", &tx.tx.body)
            .map_err(|e| Rejection::new(e.code(), e.to_string()))?
            .is_some()
        {
            return Ok(Applied::Existing(raw(serde_json::json!("exists"))));
        }
        s.put("kv", tx.tx.body.clone(), ctx.height.to_be_bytes().to_vec());
        Ok(Applied::Committed(raw(serde_json::json!(ctx.tx_index))))
    }
}

fn raw(v: serde_json::Value) -> Record {
    Record::new(v)
}

fn genesis(orderer: &SigningKey, name: &str) -> LedgerGenesis {
    LedgerGenesis {
        chain_id: "kv-chain".into(),
        orderer: orderer.public_key(),
        params: LedgerParams::default(),
        genesis_digest: sha256(name.as_bytes()),
    }
}

fn tx(key: &SigningKey, body: &[u8], nonce: u64, chain: &str, ts: u64) -> Vec<u8> {
    Transaction {
        chain_id: chain.into(),
        kind: "kv.put".into(),
        body: body.to_vec(),
        signer: key.public_key(),
        nonce,
        timestamp: ts,
    }
    .sign(key)
    .canonical_bytes()
}

fn checked(l: &Ledger, raw: Vec<Vec<u8>>) -> Vec<CheckedTx> {
    l.rules()
        .check_batch(raw, now_ms())
        .into_iter()
        .collect::<Result<_>>()
        .expect("valid envelopes")
}

/// A ledger in a new temp dir (kept alive by the returned guard) and its orderer key.
fn fresh() -> (tempfile::TempDir, SigningKey, Ledger) {
    let dir = tempfile::tempdir().expect("dir");
    let orderer = SigningKey::generate();
    let l = Ledger::open(dir.path(), genesis(&orderer, "g"), Arc::new(KeyValue)).expect("opens");
    (dir, orderer, l)
}

#[test]
fn envelope_checks_refuse_before_anything_is_stored() {
    let (_dir, _orderer, l) = fresh();
    let k = SigningKey::generate();
    let now = now_ms();
    let mut bad_sig = tx(&k, b"a", 1, "kv-chain", now);
    let last = bad_sig.len() - 1;
    bad_sig[last] ^= 1; // inside the signature
    let raw = vec![
        tx(&k, b"ok", 1, "kv-chain", now),
        bad_sig,
        tx(&k, b"b", 2, "other", now),
        tx(&k, b"c", 3, "kv-chain", now - 10 * 60_000),
        tx(&k, b"d", 4, "kv-chain", now + 10 * 60_000),
        tx(&k, &vec![0; 70_000], 5, "kv-chain", now),
        vec![1, 2, 3],
    ];
    let codes: Vec<String> = l
        .rules()
        .check_batch(raw, now)
        .into_iter()
        .map(|r| r.map(|_| "ok".to_string()).unwrap_or_else(|e| e.code().to_string()))
        .collect();
    assert_eq!(
        codes,
        [
            "ok",
            "tx.bad_signature",
            "tx.wrong_chain",
            "tx.stale_timestamp",
            "tx.future_timestamp",
            "tx.oversize",
            "tx.malformed"
        ]
    );
    assert_eq!(l.height(), 0);
}

#[test]
fn a_refused_transaction_leaves_no_trace_and_the_rest_commit() {
    let (_dir, orderer, l) = fresh();
    let k = SigningKey::generate();
    let now = now_ms();
    let txs = checked(
        &l,
        vec![
            tx(&k, b"a", 1, "kv-chain", now),
            tx(&k, b"", 2, "kv-chain", now),
            tx(&k, b"a", 3, "kv-chain", now),
            tx(&k, b"b", 1, "kv-chain", now),
            tx(&k, b"c", 4, "kv-chain", now),
        ],
    );
    let dup = txs[0].clone();
    let answers = l.propose_block(txs, &orderer, now).expect("commits");
    assert_eq!(
        outcome_codes(&answers),
        ["committed", "kv.empty", "existing", "tx.replayed_nonce", "committed"]
    );
    assert_eq!(l.head().expect("head").header.tx_count, 2);
    let again = l.propose_block(vec![dup], &orderer, now).expect("runs");
    assert_eq!(again[0].as_ref().expect_err("duplicate").code(), "tx.duplicate");
    assert_eq!(l.height(), 1, "a block of only refusals is not sealed");
    assert!(l.verify_chain().expect("runs").ok());
}

fn outcome_codes(answers: &[Result<Receipt>]) -> Vec<String> {
    answers
        .iter()
        .map(|a| match a {
            Ok(r) => match r.outcome {
                TxOutcome::Committed { .. } => "committed".into(),
                TxOutcome::Existing { .. } => "existing".into(),
            },
            Err(e) => e.code().to_string(),
        })
        .collect()
}

/// The orderer seals block 2 while block 1 is still on its way to disk:
/// block 2 must see block 1's writes (keys, tx ids, nonces) without the store.
#[test]
fn a_block_sealed_on_an_undurable_one_sees_its_writes() {
    let (_dir, orderer, l) = fresh();
    let k = SigningKey::generate();
    let now = now_ms();
    let replay = tx(&k, b"a", 1, "kv-chain", now);
    let first = checked(&l, vec![replay.clone(), tx(&k, b"b", 2, "kv-chain", now)]);
    let one = l.seal_block(first, &orderer, now, None);
    let tip = one.tip().expect("block 1 was sealed");
    let second = checked(
        &l,
        vec![
            replay,                           // same bytes: a duplicate of block 1's
            tx(&k, b"c", 2, "kv-chain", now), // block 1's nonce
            tx(&k, b"b", 3, "kv-chain", now), // block 1's key
            tx(&k, b"d", 4, "kv-chain", now),
        ],
    );
    let two = l.seal_block(second, &orderer, now, Some(&tip));
    assert_eq!(l.height(), 0, "sealing stores nothing");
    assert_eq!(outcome_codes(&l.commit_sealed(one)), ["committed", "committed"]);
    assert_eq!(
        outcome_codes(&l.commit_sealed(two)),
        ["tx.duplicate", "tx.replayed_nonce", "existing", "committed"]
    );
    assert_eq!(l.height(), 2);
    assert_eq!(l.head().expect("head").header.log_size, 3);
    let report = l.verify_chain().expect("runs");
    assert!(report.ok(), "{:?}", report.problems);
}

/// If the block a sealed block was built on never becomes durable, the later
/// block is refused whole and the store stays as it was.
#[test]
fn a_block_built_on_a_lost_block_is_refused_whole() {
    let (_dir, orderer, l) = fresh();
    let k = SigningKey::generate();
    let now = now_ms();
    let lost = l.seal_block(checked(&l, vec![tx(&k, b"a", 1, "kv-chain", now)]), &orderer, now, None);
    let tip = lost.tip().expect("sealed");
    let later = checked(
        &l,
        vec![tx(&k, b"b", 2, "kv-chain", now), tx(&k, b"a", 3, "kv-chain", now)],
    );
    let on_lost = l.seal_block(later.clone(), &orderer, now, Some(&tip));
    drop(lost);
    let answers = l.commit_sealed(on_lost);
    assert_eq!(outcome_codes(&answers), ["store.error", "store.error"]);
    assert_eq!(l.height(), 0);
    // Submitted again on the durable head, both commit (key `a` is new there).
    let again = l.propose_block(later, &orderer, now).expect("runs");
    assert_eq!(outcome_codes(&again), ["committed", "committed"]);
    assert!(l.verify_chain().expect("runs").ok());
}

#[test]
fn proofs_verify_between_every_pair_of_heights() {
    let (_dir, orderer, l) = fresh();
    let k = SigningKey::generate();
    let mut ids = Vec::new();
    let mut nonce = 0u64;
    for block in 0..12u64 {
        let raw: Vec<Vec<u8>> = (0..=block % 5)
            .map(|_| {
                nonce += 1;
                tx(&k, &nonce.to_be_bytes(), nonce, "kv-chain", now_ms())
            })
            .collect();
        let txs = checked(&l, raw);
        ids.extend(txs.iter().map(|c| c.id));
        l.propose_block(txs, &orderer, now_ms()).expect("commits");
    }
    let head = l.height();
    for from in 1..=head {
        for to in from..=head {
            let p = l.consistency_proof(from, to).expect("proof");
            verify_consistency(
                p.from.header.log_size,
                p.to.header.log_size,
                &p.path,
                &p.from.header.log_root,
                &p.to.header.log_root,
            )
            .unwrap_or_else(|e| panic!("{from}->{to}: {e}"));
        }
    }
    for id in &ids {
        let rec = l.tx(id).expect("stored");
        for at in rec.height..=head {
            let p = l.inclusion_proof(id, Some(at)).expect("proof");
            p.header.verify(&orderer.public_key()).expect("signed header");
            verify_inclusion(
                &leaf_hash(&p.tx_bytes),
                p.leaf_index,
                p.tree_size,
                &p.audit_path,
                &p.header.header.log_root,
            )
            .expect("verifies");
        }
        if rec.height > 1 {
            assert_eq!(
                l.inclusion_proof(id, Some(rec.height - 1)).expect_err("before").code(),
                "request.invalid"
            );
        }
    }
}

#[test]
fn a_store_opens_only_for_its_own_genesis_and_resumes() {
    let dir = tempfile::tempdir().expect("dir");
    let orderer = SigningKey::generate();
    {
        let l = Ledger::open(dir.path(), genesis(&orderer, "g"), Arc::new(KeyValue)).expect("opens");
        let txs = checked(&l, vec![tx(&SigningKey::generate(), b"x", 1, "kv-chain", now_ms())]);
        l.propose_block(txs, &orderer, now_ms()).expect("commits");
    }
    let e = Ledger::open(dir.path(), genesis(&orderer, "another"), Arc::new(KeyValue))
        .err()
        .expect("refused");
    assert_eq!(e.code(), "request.invalid");
    let l = Ledger::open(dir.path(), genesis(&orderer, "g"), Arc::new(KeyValue)).expect("reopens");
    assert_eq!(l.height(), 1);
    let txs = checked(&l, vec![tx(&SigningKey::generate(), b"y", 1, "kv-chain", now_ms())]);
    l.propose_block(txs, &orderer, now_ms()).expect("continues");
    assert!(l.verify_chain().expect("runs").ok());
}
