//! Offers and grants on the ledger: the grant state machine end to end, and
//! every refusal with its code and the state unchanged.

use crate::common::*;
use liutong_catalog::*;
use liutong_core::{now_ms, Canonical, SigningKey};
use liutong_exchange::client::sign_tx;
use liutong_exchange::datasets::*;
use liutong_exchange::grants::*;
use liutong_exchange::machine::*;
use liutong_exchange::party::Role;
use liutong_policies::{Action, ColumnMask, Mask, Terms};

pub(crate) fn sign(net: &Net, kind: &str, body: &impl borsh::BorshSerialize, key: &SigningKey) -> Vec<u8> {
    sign_tx(&net.chain, kind, body, key).canonical_bytes()
}

fn shipments() -> Description {
    Description {
        title: "Shipments".into(),
        description: String::new(),
        tags: vec![],
        kind: DatasetKind::Table,
        media_type: "text/csv".into(),
        table: Some(TableShape {
            columns: vec![
                Column {
                    name: "port".into(),
                    data_type: "Utf8".into(),
                    nullable: false,
                },
                Column {
                    name: "teu".into(),
                    data_type: "Int64".into(),
                    nullable: true,
                },
                Column {
                    name: "shipper".into(),
                    data_type: "Utf8".into(),
                    nullable: true,
                },
            ],
            rows: 3,
        }),
        commitment: commit_reader(&b"port,teu,shipper\n"[..], DEFAULT_CHUNK_SIZE).expect("commits"),
    }
}

/// One clock reading for every term in a test run, so that an offer and a
/// grant built from it later have the same window.
static NOW: std::sync::LazyLock<u64> = std::sync::LazyLock::new(now_ms);

pub(crate) fn offer_terms(transferable: bool) -> Terms {
    let now = *NOW;
    Terms {
        purposes: vec!["logistics-planning".into(), "trade-finance".into()],
        not_before: now - 60_000,
        not_after: Some(now + 86_400_000),
        max_uses: Some(100),
        actions: vec![Action::Query],
        columns: Some(vec!["port".into(), "shipper".into(), "teu".into()]),
        row_filter: Some("teu > 0".into()),
        masks: vec![ColumnMask {
            column: "shipper".into(),
            mask: Mask::Hash,
        }],
        min_group_size: None,
        row_cap: Some(10_000),
        transferable,
    }
}

pub(crate) fn grant_terms(offer: &Terms) -> Terms {
    Terms {
        purposes: vec!["trade-finance".into()],
        max_uses: Some(10),
        ..offer.clone()
    }
}

/// A provider with a listed table and two offers (manual, then automatic and
/// transferable), and a consumer.
pub(crate) struct Market {
    pub net: Net,
    pub provider: SigningKey,
    pub provider_code: String,
    pub consumer: SigningKey,
    pub consumer_code: String,
    pub dataset: DatasetId,
}

pub(crate) async fn market() -> Market {
    let net = orderer().await;
    let (p, pc) = member(&net, 1).await;
    let (c, cc) = member_as(&net, 2, &[Role::Consumer]).await;
    let body = RegisterDataset {
        name: "shipments".into(),
        description: shipments(),
    };
    net.client
        .submit_bytes(&sign(&net, KIND_DATASET_REGISTER, &body, &p.signing))
        .await
        .expect("registers");
    let dataset = DatasetId::of(&pc.parse().expect("code"), "shipments");
    for (terms, approval) in [
        (offer_terms(false), Approval::Manual),
        (offer_terms(true), Approval::Automatic),
    ] {
        let body = AddOffer {
            dataset,
            terms,
            approval,
        };
        net.client
            .submit_bytes(&sign(&net, KIND_OFFER_ADD, &body, &p.signing))
            .await
            .expect("offers");
    }
    Market {
        net,
        provider: p.signing,
        provider_code: pc,
        consumer: c.signing,
        consumer_code: cc,
        dataset,
    }
}

impl Market {
    pub(crate) async fn request(&self, offer: u32, terms: Terms) -> GrantId {
        let body = RequestGrant {
            dataset: self.dataset,
            offer,
            terms,
            private: None,
        };
        let r = self
            .net
            .client
            .submit_bytes(&sign(&self.net, KIND_GRANT_REQUEST, &body, &self.consumer))
            .await
            .expect("requests");
        r.tx_id
            .parse::<liutong_core::Digest>()
            .map(|d| GrantId::of_request(&d))
            .expect("tx id")
    }

    pub(crate) async fn state(&self, id: &GrantId) -> String {
        let (status, body) = get_raw(&self.net, &format!("/v1/grants/{id}")).await;
        assert_eq!(status, 200, "{body}");
        body["state"].as_str().expect("state").to_string()
    }

    pub(crate) async fn submit(&self, kind: &str, body: &impl borsh::BorshSerialize, key: &SigningKey) {
        self.net
            .client
            .submit_bytes(&sign(&self.net, kind, body, key))
            .await
            .expect("accepted");
    }
}

#[tokio::test]
async fn the_grant_state_machine() {
    let m = market().await;
    let (status, offers) = get_raw(&m.net, &format!("/v1/datasets/{}/offers", m.dataset)).await;
    assert_eq!((status, offers.as_array().map(Vec::len)), (200, Some(2)));

    // Manual offer: requested, then issued with narrower terms.
    let g1 = m.request(1, grant_terms(&offer_terms(false))).await;
    assert_eq!(m.state(&g1).await, "requested");
    let narrower = Terms {
        max_uses: Some(3),
        ..grant_terms(&offer_terms(false))
    };
    m.submit(
        KIND_GRANT_ISSUE,
        &IssueGrant {
            grant: g1,
            terms: Some(narrower),
        },
        &m.provider,
    )
    .await;
    assert_eq!(m.state(&g1).await, "active");
    let (_, g1_json) = get_raw(&m.net, &format!("/v1/grants/{g1}")).await;
    assert_eq!(g1_json["terms"]["max_uses"], 3);

    // Rejected, and revoked.
    let g2 = m.request(1, grant_terms(&offer_terms(false))).await;
    m.submit(
        KIND_GRANT_REJECT,
        &EndGrant {
            grant: g2,
            reason: "not now".into(),
        },
        &m.provider,
    )
    .await;
    assert_eq!(m.state(&g2).await, "rejected");
    m.submit(
        KIND_GRANT_REVOKE,
        &EndGrant {
            grant: g1,
            reason: "contract ended".into(),
        },
        &m.provider,
    )
    .await;
    assert_eq!(m.state(&g1).await, "revoked");

    // Automatic offer: active at once; transferable to another consumer.
    let g3 = m.request(2, grant_terms(&offer_terms(true))).await;
    assert_eq!(m.state(&g3).await, "active");
    let (_, other) = member_as(&m.net, 3, &[Role::Consumer]).await;
    m.submit(
        KIND_GRANT_TRANSFER,
        &TransferGrant {
            grant: g3,
            to: other.clone(),
        },
        &m.consumer,
    )
    .await;
    let (_, g3_json) = get_raw(&m.net, &format!("/v1/grants/{g3}")).await;
    assert_eq!(g3_json["holder"], other.as_str());

    // Delisting with revoke_existing ends what is still open or active.
    let g4 = m.request(1, grant_terms(&offer_terms(false))).await;
    let body = DelistDataset {
        dataset: m.dataset,
        reason: "withdrawn".into(),
        revoke_existing: true,
    };
    m.submit(KIND_DATASET_DELIST, &body, &m.provider).await;
    assert_eq!(m.state(&g3).await, "revoked");
    assert_eq!(m.state(&g4).await, "rejected");
    let (_, all) = get_raw(&m.net, &format!("/v1/datasets/{}/grants", m.dataset)).await;
    assert_eq!(all.as_array().map(Vec::len), Some(4));
    let report = m.net.node.ledger.verify_chain().expect("runs");
    assert!(report.ok(), "{:?}", report.problems);
}

#[tokio::test]
async fn grant_refusals_leave_the_state_unchanged() {
    let m = market().await;
    let net = &m.net;
    let (stranger, _) = member(net, 5).await; // a provider, not of this dataset, not a consumer
    let pending = m.request(1, grant_terms(&offer_terms(false))).await;
    let held = m.request(2, grant_terms(&offer_terms(true))).await;
    let fixed = m.request(1, grant_terms(&offer_terms(false))).await;
    m.submit(
        KIND_GRANT_ISSUE,
        &IssueGrant {
            grant: fixed,
            terms: None,
        },
        &m.provider,
    )
    .await;
    let base = grant_terms(&offer_terms(false));
    let with = |f: &dyn Fn(&mut Terms)| {
        let mut t = base.clone();
        f(&mut t);
        RequestGrant {
            dataset: m.dataset,
            offer: 1,
            terms: t,
            private: None,
        }
    };
    let req = |body: RequestGrant, key: &SigningKey| sign(net, KIND_GRANT_REQUEST, &body, key);
    let c = &m.consumer;
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("policy.wider_than_offer", req(with(&|t| t.max_uses = Some(1000)), c)),
        ("policy.wider_than_offer", req(with(&|t| t.masks.clear()), c)),
        ("policy.wider_than_offer", req(with(&|t| t.transferable = true), c)),
        (
            "policy.bad_filter",
            req(with(&|t| t.row_filter = Some("(teu > 0) AND nope = 1".into())), c),
        ),
        (
            "policy.bad_filter",
            req(with(&|t| t.row_filter = Some("(teu > 0) AND (teu AND port)".into())), c),
        ),
        (
            "policy.bad_filter",
            req(
                with(&|t| t.row_filter = Some("(teu > 0) AND teu IN (SELECT 1)".into())),
                c,
            ),
        ),
        (
            "policy.bad_filter",
            req(with(&|t| t.row_filter = Some("(teu > 0) AND random() > 0.5".into())), c),
        ),
        (
            "policy.unknown_column",
            req(with(&|t| t.masks[0].column = "nope".into()), c),
        ),
        (
            "policy.bad_terms",
            req(with(&|t| t.not_after = Some(t.not_before - 1)), c),
        ),
        ("policy.bad_terms", req(with(&|t| t.max_uses = Some(0)), c)),
        (
            "policy.unknown_purpose",
            req(with(&|t| t.purposes = vec!["marketing".into()]), c),
        ),
        (
            "offer.unknown",
            req(
                RequestGrant {
                    offer: 9,
                    ..with(&|_| {})
                },
                c,
            ),
        ),
        ("grant.not_consumer", req(with(&|_| {}), &stranger.signing)),
        (
            "dataset.not_owner",
            sign(
                net,
                KIND_OFFER_ADD,
                &AddOffer {
                    dataset: m.dataset,
                    terms: offer_terms(false),
                    approval: Approval::Manual,
                },
                &stranger.signing,
            ),
        ),
        (
            "grant.not_provider",
            sign(
                net,
                KIND_GRANT_ISSUE,
                &IssueGrant {
                    grant: pending,
                    terms: None,
                },
                &stranger.signing,
            ),
        ),
        (
            "grant.not_provider",
            sign(
                net,
                KIND_GRANT_REVOKE,
                &EndGrant {
                    grant: held,
                    reason: String::new(),
                },
                c,
            ),
        ),
        (
            "grant.bad_transition",
            sign(
                net,
                KIND_GRANT_REVOKE,
                &EndGrant {
                    grant: pending,
                    reason: String::new(),
                },
                &m.provider,
            ),
        ),
        (
            "grant.bad_transition",
            sign(
                net,
                KIND_GRANT_ISSUE,
                &IssueGrant {
                    grant: held,
                    terms: None,
                },
                &m.provider,
            ),
        ),
        (
            "policy.wider_than_offer",
            sign(
                net,
                KIND_GRANT_ISSUE,
                &IssueGrant {
                    grant: pending,
                    terms: Some(Terms {
                        max_uses: Some(500),
                        ..base.clone()
                    }),
                },
                &m.provider,
            ),
        ),
        (
            "grant.unknown",
            sign(
                net,
                KIND_GRANT_ISSUE,
                &IssueGrant {
                    grant: GrantId([9; 16]),
                    terms: None,
                },
                &m.provider,
            ),
        ),
        (
            "grant.not_transferable",
            sign(
                net,
                KIND_GRANT_TRANSFER,
                &TransferGrant {
                    grant: fixed,
                    to: code(5),
                },
                c,
            ),
        ),
        (
            "grant.bad_recipient",
            sign(
                net,
                KIND_GRANT_TRANSFER,
                &TransferGrant {
                    grant: held,
                    to: code(5),
                },
                c,
            ),
        ),
        (
            "grant.not_holder",
            sign(
                net,
                KIND_GRANT_TRANSFER,
                &TransferGrant {
                    grant: held,
                    to: code(5),
                },
                &stranger.signing,
            ),
        ),
    ];
    let before = snapshot(net).await;
    let (_, grants_before) = get_raw(net, &format!("/v1/datasets/{}/grants", m.dataset)).await;
    for (expected, tx) in cases {
        assert_eq!(refusal(net, &tx).await, expected);
    }
    assert_eq!(snapshot(net).await, before, "nothing was committed");
    // Delisted: no new requests.
    let body = DelistDataset {
        dataset: m.dataset,
        reason: String::new(),
        revoke_existing: false,
    };
    m.submit(KIND_DATASET_DELIST, &body, &m.provider).await;
    assert_eq!(refusal(net, &req(with(&|_| {}), c)).await, "dataset.delisted");
    let (_, grants_after) = get_raw(net, &format!("/v1/datasets/{}/grants", m.dataset)).await;
    assert_eq!(grants_after, grants_before, "refusals changed no grant");
}

#[tokio::test]
async fn uses_are_counted_by_the_provider_until_the_grant_is_exhausted() {
    let m = market().await;
    let net = &m.net;
    let terms = Terms {
        max_uses: Some(2),
        ..grant_terms(&offer_terms(true))
    };
    let g = m.request(2, terms).await; // automatic: active at once
    let use_of = |action: Action, key: &SigningKey, n: u8| {
        let body = UseGrant {
            grant: g,
            action,
            request: liutong_core::sha256(&[n]),
        };
        sign(net, KIND_GRANT_USE, &body, key)
    };
    // Only the provider counts, only allowed actions.
    let before = snapshot(net).await;
    assert_eq!(
        refusal(net, &use_of(Action::Query, &m.consumer, 0)).await,
        "grant.not_provider"
    );
    assert_eq!(
        refusal(net, &use_of(Action::Download, &m.provider, 0)).await,
        "use.action_not_allowed"
    );
    assert_eq!(snapshot(net).await, before);
    for n in 1..=2 {
        net.client
            .submit_bytes(&use_of(Action::Query, &m.provider, n))
            .await
            .expect("counted");
    }
    let (_, view) = get_raw(net, &format!("/v1/grants/{g}")).await;
    assert_eq!(
        (view["uses"].as_u64(), view["state"].as_str()),
        (Some(2), Some("exhausted"))
    );
    let before = snapshot(net).await;
    assert_eq!(
        refusal(net, &use_of(Action::Query, &m.provider, 3)).await,
        "use.exhausted"
    );
    assert_eq!(snapshot(net).await, before);

    // A revoked grant counts no more uses.
    let g2 = m.request(2, grant_terms(&offer_terms(true))).await;
    let body = EndGrant {
        grant: g2,
        reason: String::new(),
    };
    m.submit(KIND_GRANT_REVOKE, &body, &m.provider).await;
    let body = UseGrant {
        grant: g2,
        action: Action::Query,
        request: liutong_core::sha256(b"late"),
    };
    assert_eq!(
        refusal(net, &sign(net, KIND_GRANT_USE, &body, &m.provider)).await,
        "use.not_active"
    );
}
