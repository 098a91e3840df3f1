//! Tampering: flipping any byte of a stored block header or transaction, or
//! of state and log entries, is found and named by chain verify.

use crate::common::*;
use liutong_exchange::node::open_ledger;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chain_verify_finds_every_flipped_byte() {
    let net = orderer().await;
    let (id, _) = member(&net, 50).await;
    for i in 0..5u32 {
        net.client
            .submit_bytes(&notarize(&net, &id.signing, format!("doc {i}").as_bytes()))
            .await
            .expect("commits");
    }
    let home = net.home.clone();
    let genesis = home.genesis().expect("genesis");
    let dir = net.dir;
    net.node.stop().await;
    let ledger = open_ledger(&home, &genesis).expect("opens");
    assert!(ledger.verify_chain().expect("runs").ok());
    let store = ledger.store();
    let mut targets: Vec<(&str, Vec<u8>, Vec<u8>, bool)> = Vec::new();
    // Every byte of block 2's header and of transaction 3.
    for (cf, key) in [
        ("blocks", 2u64.to_be_bytes().to_vec()),
        ("txs", 3u64.to_be_bytes().to_vec()),
    ] {
        let v = store.get(cf, &key).expect("read").expect("present");
        targets.push((cf, key, v, true));
    }
    // One byte of every entry of the other column families.
    for cf in [
        "tx_ids",
        "block_index",
        "log",
        "nonces",
        "parties",
        "party_keys",
        "notarizations",
    ] {
        for (k, v) in store.scan(cf).expect("scan") {
            targets.push((cf, k, v, false));
        }
    }
    let mut checked = 0;
    for (cf, key, original, every_byte) in targets {
        let positions: Vec<usize> = if every_byte {
            (0..original.len()).collect()
        } else if original.is_empty() {
            vec![]
        } else {
            vec![rand::random::<usize>() % original.len()]
        };
        for pos in positions {
            let mut altered = original.clone();
            altered[pos] ^= 1 << (rand::random::<u8>() % 8);
            store.tamper(cf, &key, &altered).expect("tamper");
            let report = ledger.verify_chain().expect("verify runs");
            assert!(
                !report.ok(),
                "{cf} entry {} byte {pos} flipped, not found",
                hex::encode(&key)
            );
            store.tamper(cf, &key, &original).expect("restore");
            checked += 1;
        }
        if original.is_empty() {
            // Empty values (nonces) can only be added or removed: add a stray byte.
            store.tamper(cf, &key, &[1]).expect("tamper");
            assert!(
                !ledger.verify_chain().expect("runs").ok(),
                "{cf} entry altered, not found"
            );
            store.tamper(cf, &key, &original).expect("restore");
            checked += 1;
        }
    }
    assert!(checked > 300, "only {checked} alterations tried");
    let report = ledger.verify_chain().expect("runs");
    assert!(report.ok(), "restored store must verify again: {:?}", report.problems);
    // A problem is named: block and what is wrong.
    let key = 2u64.to_be_bytes();
    let original = store.get("txs", &key).expect("read").expect("present");
    let mut altered = original.clone();
    let n = altered.len();
    altered[n - 1] ^= 1;
    store.tamper("txs", &key, &altered).expect("tamper");
    let report = ledger.verify_chain().expect("runs");
    assert!(
        report.problems.iter().any(|p| p.contains("transaction 2")),
        "{:?}",
        report.problems
    );
    drop(dir);
}
