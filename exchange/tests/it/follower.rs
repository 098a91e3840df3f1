//! Followers: keep a full verified copy, forward submissions, serve proofs,
//! and refuse blocks that do not check out while keeping their state.

use crate::common::*;
use liutong_core::Digest;
use liutong_exchange::client::Client;
use liutong_exchange::home::Home;
use liutong_exchange::node::{open_ledger, start, NodeConfig};
use liutong_ledger::Block;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follower_copies_forwards_and_proves() {
    let net = orderer().await;
    let (id, _) = member(&net, 40).await;
    let home = Home::new(net.dir.path().join("follower"));
    let follower = start(NodeConfig {
        home: home.clone(),
        listen: "127.0.0.1:0".parse().expect("addr"),
        follow: Some(net.node.url.clone()),
        receipt_timeout: liutong_exchange::serve::DEFAULT_RECEIPT_TIMEOUT,
        queries: Default::default(),
    })
    .await
    .expect("follower starts");
    let fc = Client::new(&follower.url).expect("client");
    // Submitted to the follower, ordered by the orderer, readable at once on the follower.
    let r = fc
        .submit_bytes(&notarize(&net, &id.signing, b"via follower"))
        .await
        .expect("forwarded and committed");
    let tx: Digest = r.tx_id.parse().expect("id");
    let on_follower = fc.tx(&tx).await.expect("the follower has it");
    assert_eq!(on_follower.height, r.height.expect("height"));
    let proof = fc.inclusion_proof(&tx, None).await.expect("proof from the follower");
    let from_orderer = net
        .client
        .inclusion_proof(&tx, Some(proof.header.height))
        .await
        .expect("proof");
    assert_eq!(proof.root, from_orderer.root);
    assert_eq!(proof.header, from_orderer.header);
    let s = fc.status().await.expect("status");
    assert_eq!(s.role, "follower");
    // Refusals come back through the follower with their codes.
    let code = match fc
        .submit_bytes(&notarize(&net, &liutong_core::SigningKey::generate(), b"x"))
        .await
    {
        Err(e) => e.code().to_string(),
        Ok(r) => panic!("accepted {r:?}"),
    };
    assert_eq!(code, "party.unknown_signer");
    follower.stop().await;
    // A restarted follower resumes from its own store.
    net.client
        .submit_bytes(&notarize(&net, &id.signing, b"while away"))
        .await
        .expect("commits");
    let follower = start(NodeConfig {
        home: home.clone(),
        listen: "127.0.0.1:0".parse().expect("addr"),
        follow: Some(net.node.url.clone()),
        receipt_timeout: liutong_exchange::serve::DEFAULT_RECEIPT_TIMEOUT,
        queries: Default::default(),
    })
    .await
    .expect("restarts");
    let head = net.node.ledger.height();
    let mut rx = follower.ledger.subscribe();
    tokio::time::timeout(std::time::Duration::from_secs(10), rx.wait_for(|h| *h >= head))
        .await
        .expect("catches up")
        .expect("watch");
    follower.stop().await;
    let report = liutong_exchange::cli::chain_verify(&home).expect("verifies");
    assert!(report.ok(), "{:?}", report.problems);
    net.node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follower_refuses_forged_blocks_and_keeps_its_state() {
    let net = orderer().await;
    let (id, _) = member(&net, 41).await;
    net.client
        .submit_bytes(&notarize(&net, &id.signing, b"a"))
        .await
        .expect("commits");
    let blocks: Vec<Block> = net.client.blocks(1, 0).await.expect("blocks");
    assert_eq!(blocks.len() as u64, net.node.ledger.height());
    let last = blocks.last().expect("a block").clone();
    let genesis = net.home.genesis().expect("genesis");
    let fhome = Home::new(net.dir.path().join("forged-follower"));
    let ledger = open_ledger(&fhome, &genesis).expect("opens");
    for b in &blocks[..blocks.len() - 1] {
        ledger.import_block(b).expect("genuine block imports");
    }
    let height = ledger.height();
    let root = ledger.head().expect("head").header.log_root;
    let orderer_key = net.home.orderer_key().expect("key");

    let mut forged = Vec::new();
    let mut b = last.clone();
    b.header.signature.0[5] ^= 1;
    forged.push(("bad orderer signature", b));
    let mut b = last.clone();
    b.header = {
        let mut h = b.header.header.clone();
        h.log_root.0[0] ^= 1;
        h.sign(&orderer_key)
    };
    forged.push(("wrong log root (validly signed)", b));
    let mut b = last.clone();
    let n = b.txs[0].len();
    b.txs[0][n - 1] ^= 1;
    forged.push(("altered transaction", b));
    let mut b = last.clone();
    b.header = {
        let mut h = b.header.header.clone();
        h.prev_header_hash.0[0] ^= 1;
        h.sign(&orderer_key)
    };
    forged.push(("broken header chain", b));
    let mut b = last.clone();
    b.header = {
        let h = b.header.header.clone();
        h.sign(&liutong_core::SigningKey::generate())
    };
    forged.push(("signed by another key", b));
    for (what, b) in forged {
        let e = ledger.import_block(&b).expect_err(what);
        assert_eq!(e.code(), "block.invalid", "{what}: {e}");
        assert_eq!(ledger.height(), height, "{what}");
        assert_eq!(ledger.head().expect("head").header.log_root, root, "{what}");
    }
    ledger.import_block(&last).expect("the genuine block still imports");
    assert!(ledger.verify_chain().expect("verify").ok());
    net.node.stop().await;
}
