//! Evidence bundles verify offline, with an independent RFC 6962 verifier
//! too, and any altered field is caught.

use crate::common::*;
use liutong_core::{sha256_parts, Canonical, Digest};
use liutong_exchange::client::sign_tx;
use liutong_exchange::evidence::{build_bundle, verify_bundle, EvidenceBundle};
use liutong_exchange::home::Identity;
use liutong_exchange::machine::*;
use liutong_exchange::party::*;
use liutong_exchange::wire::ReceiptStatus;

/// RFC 9162 §2.1.3.2, written out independently of the ledger crate.
fn independent_rfc6962_verify(leaf: &[u8], index: u64, size: u64, path: &[[u8; 32]], root: &[u8; 32]) -> bool {
    if index >= size {
        return false;
    }
    let (mut fnn, mut snn) = (index, size - 1);
    let mut r = sha256_parts(&[&[0u8], leaf]).0;
    for p in path {
        if snn == 0 {
            return false;
        }
        if fnn & 1 == 1 || fnn == snn {
            r = sha256_parts(&[&[1u8], p, &r]).0;
            if fnn & 1 == 0 {
                while fnn & 1 == 0 && fnn != 0 {
                    fnn >>= 1;
                    snn >>= 1;
                }
            }
        } else {
            r = sha256_parts(&[&[1u8], &r, p]).0;
        }
        fnn >>= 1;
        snn >>= 1;
    }
    snn == 0 && &r == root
}

fn hex32(s: &str) -> [u8; 32] {
    hex::decode(s).expect("hex").try_into().expect("32 bytes")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bundles_verify_offline_and_catch_every_alteration() {
    let net = orderer().await;
    let (id, c) = member(&net, 30).await;
    // Some traffic before and after, so the proof has a real path.
    for i in 0..20u32 {
        net.client
            .submit_bytes(&notarize(&net, &id.signing, format!("filler {i}").as_bytes()))
            .await
            .expect("commits");
    }
    let r = net
        .client
        .submit_bytes(&notarize(&net, &id.signing, b"the contract"))
        .await
        .expect("commits");
    assert_eq!(r.status, ReceiptStatus::Committed);
    let again = net
        .client
        .submit_bytes(&notarize(&net, &id.signing, b"the contract"))
        .await
        .expect("answers");
    assert_eq!(
        again.status,
        ReceiptStatus::Existing,
        "a known digest returns the existing record"
    );
    let record: serde_json::Value = again.record().expect("the record is JSON");
    assert_eq!(record["tx_id"], r.tx_id.as_str());
    for i in 0..7u32 {
        net.client
            .submit_bytes(&notarize(&net, &id.signing, format!("after {i}").as_bytes()))
            .await
            .expect("commits");
    }
    let genesis = net.home.genesis().expect("genesis");
    let tx_id: Digest = r.tx_id.parse().expect("id");
    let bundle = build_bundle(&net.client, &genesis, &tx_id).await.expect("bundle");
    let text = serde_json::to_string_pretty(&bundle).expect("json");
    let bundle: EvidenceBundle = serde_json::from_str(&text).expect("round trip");
    let v = verify_bundle(&bundle, &genesis).expect("verifies");
    assert_eq!(v.party, c);
    assert_eq!(v.digest, Some(liutong_core::sha256(b"the contract")));
    assert_eq!(bundle.key_bindings.len(), 1, "the registration binds the key");

    // An independent verifier accepts the proof with nothing but the bundle's JSON.
    let json: serde_json::Value = serde_json::from_str(&text).expect("json");
    let proof = &json["inclusion_proof"];
    let path: Vec<[u8; 32]> = proof["audit_path"]
        .as_array()
        .expect("path")
        .iter()
        .map(|h| hex32(h.as_str().expect("hex")))
        .collect();
    let leaf = hex::decode(json["tx"]["bytes"].as_str().expect("bytes")).expect("hex");
    assert_eq!(json["format"], "liutong-evidence/1");
    assert_eq!(proof["root"], json["header"]["log_root"]);
    assert!(independent_rfc6962_verify(
        &leaf,
        proof["leaf_index"].as_u64().expect("index"),
        proof["tree_size"].as_u64().expect("size"),
        &path,
        &hex32(proof["root"].as_str().expect("root")),
    ));

    // Every alteration is refused.
    let flip = |s: &str| -> String {
        let mut b = hex::decode(s).expect("hex");
        let mid = b.len() / 2;
        b[mid] ^= 1;
        hex::encode(b)
    };
    let mut alterations: Vec<(&str, EvidenceBundle)> = Vec::new();
    let mut b = bundle.clone();
    b.tx.bytes = flip(&b.tx.bytes);
    alterations.push(("tx bytes", b));
    let mut b = bundle.clone();
    b.inclusion_proof.audit_path[0] = flip(&b.inclusion_proof.audit_path[0]);
    alterations.push(("audit path", b));
    let mut b = bundle.clone();
    b.inclusion_proof.leaf_index += 1;
    alterations.push(("leaf index", b));
    let mut b = bundle.clone();
    b.inclusion_proof.root = flip(&b.inclusion_proof.root);
    b.header.log_root = b.inclusion_proof.root.clone();
    alterations.push(("root and header root", b));
    let mut b = bundle.clone();
    b.header.timestamp += 1;
    alterations.push(("header timestamp", b));
    let mut b = bundle.clone();
    b.header.signature = flip(&b.header.signature);
    alterations.push(("header signature", b));
    let mut b = bundle.clone();
    b.genesis_digest = flip(&b.genesis_digest);
    alterations.push(("genesis digest", b));
    let mut b = bundle.clone();
    b.key_bindings.clear();
    alterations.push(("key binding removed", b));
    let mut b = bundle.clone();
    b.format = "liutong-evidence/0".into();
    alterations.push(("format", b));
    for (what, b) in alterations {
        assert!(
            verify_bundle(&b, &genesis).is_err(),
            "{what} altered but the bundle still verifies"
        );
        if what == "tx bytes" || what == "audit path" || what == "leaf index" {
            let p: Vec<[u8; 32]> = b.inclusion_proof.audit_path.iter().map(|h| hex32(h)).collect();
            assert!(!independent_rfc6962_verify(
                &hex::decode(&b.tx.bytes).expect("hex"),
                b.inclusion_proof.leaf_index,
                b.inclusion_proof.tree_size,
                &p,
                &hex32(&b.inclusion_proof.root)
            ));
        }
    }
    // Another chain's genesis does not accept it.
    let other = orderer().await;
    let other_genesis = other.home.genesis().expect("genesis");
    assert_eq!(
        verify_bundle(&bundle, &other_genesis)
            .expect_err("must be refused")
            .code(),
        "evidence.invalid"
    );
    other.node.stop().await;
    net.node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bundles_follow_key_rotations_back_to_the_registration() {
    let net = orderer().await;
    let (old, c) = member(&net, 31).await;
    let new = Identity::generate();
    let body = RotateKeys::new(&old.signing.public_key(), &new.signing, new.encryption.public_key());
    net.client
        .submit_bytes(&sign_tx(&net.chain, KIND_ROTATE_KEYS, &body, &old.signing).canonical_bytes())
        .await
        .expect("rotates");
    let r = net
        .client
        .submit_bytes(&notarize(&net, &new.signing, b"signed after rotation"))
        .await
        .expect("commits");
    let genesis = net.home.genesis().expect("genesis");
    let bundle = build_bundle(&net.client, &genesis, &r.tx_id.parse().expect("id"))
        .await
        .expect("bundle");
    assert_eq!(bundle.key_bindings.len(), 2);
    let v = verify_bundle(&bundle, &genesis).expect("verifies");
    assert_eq!(v.party, c);
    assert_eq!(v.signer, new.signing.public_key());
    // The operator's own notarization needs no binding: the genesis names its key.
    let r = net
        .client
        .submit_bytes(&notarize(&net, &net.operator.signing, b"operator's notice"))
        .await
        .expect("commits");
    let bundle = build_bundle(&net.client, &genesis, &r.tx_id.parse().expect("id"))
        .await
        .expect("bundle");
    assert!(bundle.key_bindings.is_empty());
    assert_eq!(verify_bundle(&bundle, &genesis).expect("verifies").party, OPERATOR);
    net.node.stop().await;
}
