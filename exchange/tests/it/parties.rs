//! The party lifecycle through the HTTP API.

use crate::common::*;
use liutong_core::Canonical;
use liutong_exchange::client::sign_tx;
use liutong_exchange::home::Identity;
use liutong_exchange::machine::*;
use liutong_exchange::party::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn standing_changes_and_their_refusals() {
    let net = orderer().await;
    let op = &net.operator.signing;
    let (id, c) = member(&net, 10).await;
    let p = net.client.party(&c).await.expect("party");
    assert_eq!(p.status, PartyStatus::Active);
    assert_eq!(p.history.len(), 2);

    // The member signs before and after each change: the ledger keeps its
    // decoded party across blocks, so each change must reach the next block.
    net.client
        .submit_bytes(&notarize(&net, &id.signing, b"active"))
        .await
        .expect("an active member notarizes");
    for (kind, status, refused) in [
        (KIND_SUSPEND, PartyStatus::Suspended, Some("party.suspended")),
        (KIND_REINSTATE, PartyStatus::Active, None),
        (KIND_EXPEL, PartyStatus::Expelled, Some("party.expelled")),
    ] {
        net.client
            .submit_bytes(&standing(&net, kind, op, &c))
            .await
            .expect(kind);
        assert_eq!(net.client.party(&c).await.expect("party").status, status);
        let tx = notarize(&net, &id.signing, kind.as_bytes());
        match refused {
            Some(code) => assert_eq!(refusal(&net, &tx).await, code, "after {kind}"),
            None => {
                net.client
                    .submit_bytes(&tx)
                    .await
                    .expect("reinstated, it notarizes again");
            }
        }
    }
    assert_eq!(
        refusal(&net, &standing(&net, KIND_REINSTATE, op, &c)).await,
        "party.bad_transition"
    );
    assert_eq!(
        refusal(&net, &standing(&net, KIND_SUSPEND, op, OPERATOR)).await,
        "party.bad_transition"
    );

    // A rejected applicant cannot transact, but may apply again with the same key.
    let applicant = Identity::generate();
    let c2 = code(11);
    net.client
        .submit_bytes(&registration(&net, &applicant, &c2))
        .await
        .expect("applies");
    net.client
        .submit_bytes(&standing(&net, KIND_REJECT, op, &c2))
        .await
        .expect("rejects");
    assert_eq!(
        refusal(&net, &notarize(&net, &applicant.signing, b"x")).await,
        "party.rejected"
    );
    net.client
        .submit_bytes(&registration(&net, &applicant, &c2))
        .await
        .expect("re-applies");
    net.client
        .submit_bytes(&standing(&net, KIND_APPROVE, op, &c2))
        .await
        .expect("approves");
    let p = net.client.party(&c2).await.expect("party");
    assert_eq!(p.status, PartyStatus::Active);
    assert_eq!(p.history.len(), 4, "applied, rejected, applied, approved");

    // An impostor's rejected application does not make its key the party's
    // when the real organization applies with its own key and is approved.
    let impostor = Identity::generate();
    let real = Identity::generate();
    let c3 = code(13);
    net.client
        .submit_bytes(&registration(&net, &impostor, &c3))
        .await
        .expect("the impostor applies");
    net.client
        .submit_bytes(&standing(&net, KIND_REJECT, op, &c3))
        .await
        .expect("rejects");
    net.client
        .submit_bytes(&registration(&net, &real, &c3))
        .await
        .expect("the real one applies");
    net.client
        .submit_bytes(&standing(&net, KIND_APPROVE, op, &c3))
        .await
        .expect("approves");
    assert_eq!(
        refusal(&net, &notarize(&net, &impostor.signing, b"as the real one")).await,
        "party.key_retired"
    );
    let binding = net
        .client
        .key_binding(&impostor.signing.public_key())
        .await
        .expect("binding");
    assert!(!binding.current, "the rejected application's key is retired");
    net.client
        .submit_bytes(&notarize(&net, &real.signing, b"the real one"))
        .await
        .expect("the approved key works");

    // A bad profile is refused.
    let body = RegisterParty {
        legal_name: "No Endpoint Co".into(),
        credit_code: code(12),
        contact: "x@example.com".into(),
        roles: vec![Role::Operator],
        encryption_key: applicant.encryption.public_key(),
        endpoint: "ftp://nowhere".into(),
    };
    let bytes = sign_tx(&net.chain, KIND_REGISTER, &body, &Identity::generate().signing).canonical_bytes();
    assert_eq!(refusal(&net, &bytes).await, "party.bad_profile");
    net.node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_rotation_retires_the_old_key() {
    let net = orderer().await;
    let (old, c) = member(&net, 20).await;
    let new = Identity::generate();
    // A rotation whose possession proof is not made by the new key is refused.
    let mut forged = RotateKeys::new(&old.signing.public_key(), &new.signing, new.encryption.public_key());
    forged.possession = old
        .signing
        .sign(&rotation_message(&old.signing.public_key(), &new.signing.public_key()));
    let bytes = sign_tx(&net.chain, KIND_ROTATE_KEYS, &forged, &old.signing).canonical_bytes();
    assert_eq!(refusal(&net, &bytes).await, "party.bad_possession_proof");

    let body = RotateKeys::new(&old.signing.public_key(), &new.signing, new.encryption.public_key());
    let bytes = sign_tx(&net.chain, KIND_ROTATE_KEYS, &body, &old.signing).canonical_bytes();
    net.client.submit_bytes(&bytes).await.expect("rotates");
    let p = net.client.party(&c).await.expect("party");
    assert_eq!(p.profile.signing_key, new.signing.public_key());
    assert_eq!(p.retired_keys, vec![old.signing.public_key()]);
    assert_eq!(
        refusal(&net, &notarize(&net, &old.signing, b"old key")).await,
        "party.key_retired"
    );
    net.client
        .submit_bytes(&notarize(&net, &new.signing, b"new key"))
        .await
        .expect("the new key works");
    let binding = net
        .client
        .key_binding(&new.signing.public_key())
        .await
        .expect("binding");
    assert!(binding.current);
    assert_eq!(binding.party, c);
    net.node.stop().await;
}
