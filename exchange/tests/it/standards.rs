//! DCAT-3 and ODRL 2.2: the exports expand as JSON-LD and say what the
//! ledger holds; imports become real offers; what liutong cannot enforce is
//! refused by name and nothing is stored; a party's grants.

use crate::common::*;
use crate::grants::{grant_terms, market, offer_terms, sign};
use liutong_exchange::grants::*;
use liutong_exchange::machine::*;
use liutong_exchange::party::Role;
use liutong_policies::odrl;
use serde_json::Value;

const DCAT: &str = "http://www.w3.org/ns/dcat#";
const DCT: &str = "http://purl.org/dc/terms/";
const ODRL: &str = "http://www.w3.org/ns/odrl/2/";
const SPDX: &str = "http://spdx.org/rdf/terms#";

/// The values of an expanded node's property.
fn prop<'a>(node: &'a Value, iri: &str) -> &'a [Value] {
    node.get(iri)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

fn has_type(node: &Value, iri: &str) -> bool {
    prop(node, "@type").iter().any(|t| t == iri)
}

async fn get_json_ld(net: &Net, path: &str) -> Value {
    let resp = reqwest::get(format!("{}{path}", net.node.url)).await.expect("answers");
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(
        resp.headers().get("content-type").and_then(|v| v.to_str().ok()),
        Some("application/ld+json")
    );
    resp.json().await.expect("JSON")
}

#[tokio::test]
async fn dcat_and_odrl_exports_expand_as_json_ld_and_round_trip() {
    let m = market().await;
    let g = m.request(1, grant_terms(&offer_terms(false))).await;

    // The catalog: a dcat:Catalog whose dataset has its distribution and open offers.
    let doc = get_json_ld(&m.net, "/v1/catalog/dcat").await;
    let expanded = odrl::expand(doc).expect("the DCAT export is JSON-LD");
    let catalog = expanded
        .iter()
        .find(|n| has_type(n, &format!("{DCAT}Catalog")))
        .expect("a dcat:Catalog");
    let datasets = prop(catalog, &format!("{DCAT}dataset"));
    assert_eq!(datasets.len(), 1);
    let d = &datasets[0];
    assert!(has_type(d, &format!("{DCAT}Dataset")));
    assert_eq!(d["@id"], format!("urn:liutong:dataset:{}", m.dataset));
    assert_eq!(prop(d, &format!("{DCT}title"))[0]["@value"], "Shipments");
    let record = m.net.client.dataset(&m.dataset).await.expect("dataset");
    let dist = &prop(d, &format!("{DCAT}distribution"))[0];
    let checksum = &prop(dist, &format!("{SPDX}checksum"))[0];
    assert_eq!(
        prop(checksum, &format!("{SPDX}checksumValue"))[0]["@value"],
        record.description.commitment.sha256.to_string()
    );
    assert_eq!(
        prop(dist, &format!("{DCAT}mediaType"))[0]["@id"],
        "https://www.iana.org/assignments/media-types/text/csv"
    );
    let policies = prop(d, &format!("{ODRL}hasPolicy"));
    assert_eq!(policies.len(), 2);
    assert!(policies.iter().all(|p| has_type(p, &format!("{ODRL}Offer"))));

    // An offer's ODRL export reads back, through the API, as the same terms.
    let offer_doc = get_json_ld(&m.net, &format!("/v1/datasets/{}/offers/1/odrl", m.dataset)).await;
    odrl::expand(offer_doc.clone()).expect("the ODRL export is JSON-LD");
    let (status, imported) = post_raw(
        &m.net,
        "/v1/policies/odrl",
        "application/ld+json",
        offer_doc.to_string().into_bytes(),
    )
    .await;
    assert_eq!(status, 200, "{imported}");
    assert_eq!(imported["kind"], "offer");
    assert_eq!(imported["approval"], "manual");
    assert_eq!(imported["assigner"], format!("urn:liutong:party:{}", m.provider_code));
    assert_eq!(
        imported["terms"],
        serde_json::to_value(offer_terms(false)).expect("json")
    );

    // A grant is an odrl:Request until issued, then an odrl:Agreement with its assignee.
    let doc = get_json_ld(&m.net, &format!("/v1/grants/{g}/odrl")).await;
    assert_eq!(doc["@type"], "odrl:Request");
    m.submit(KIND_GRANT_ISSUE, &IssueGrant { grant: g, terms: None }, &m.provider)
        .await;
    let doc = get_json_ld(&m.net, &format!("/v1/grants/{g}/odrl")).await;
    assert_eq!(doc["@type"], "odrl:Agreement");
    assert_eq!(doc["liutong:state"], "active");
    let back = odrl::import(&doc.to_string()).expect("imports");
    assert_eq!(back.assignee, Some(format!("urn:liutong:party:{}", m.consumer_code)));
    assert_eq!(back.terms, grant_terms(&offer_terms(false)));

    // A policy written with the W3C ODRL context becomes a real offer.
    let end = liutong_core::format_utc(liutong_core::now_ms() + 86_400_000);
    let written = format!(
        r#"{{
          "@context": ["http://www.w3.org/ns/odrl.jsonld", {{"liutong": "https://liutong.dev/ns/v1#"}}],
          "@type": "Offer", "uid": "http://example.com/offers/audit",
          "permission": [{{
            "action": "liutong:query",
            "constraint": [
              {{"leftOperand": "purpose", "operator": "eq", "rightOperand": "audit"}},
              {{"leftOperand": "dateTime", "operator": "lt", "rightOperand": {{"@value": "{end}", "@type": "xsd:dateTime"}}}},
              {{"leftOperand": "count", "operator": "lteq", "rightOperand": 5}},
              {{"leftOperand": "liutong:column", "operator": "isAnyOf", "rightOperand": ["teu", "port"]}},
              {{"leftOperand": "liutong:rowCap", "operator": "lteq", "rightOperand": 10}}
            ]
          }}]
        }}"#
    );
    let policy = odrl::import(&written).expect("imports");
    let body = AddOffer {
        dataset: m.dataset,
        terms: policy.terms.clone(),
        approval: Approval::Manual,
    };
    m.submit(KIND_OFFER_ADD, &body, &m.provider).await;
    let offers = m.net.client.offers(&m.dataset).await.expect("offers");
    assert_eq!(offers.len(), 3);
    assert_eq!(offers[2].terms, policy.terms);
    assert_eq!(
        offers[2].terms.columns,
        Some(vec!["port".to_string(), "teu".to_string()])
    );
}

#[tokio::test]
async fn odrl_refusals_name_the_term_and_store_nothing() {
    let m = market().await;
    let net = &m.net;
    let before = snapshot(net).await;
    let ctx = r#""@context": ["http://www.w3.org/ns/odrl.jsonld", {"liutong": "https://liutong.dev/ns/v1#"}]"#;
    let purpose = r#"{"leftOperand": "purpose", "operator": "eq", "rightOperand": "audit"}"#;
    let cases = [
        ("{not json".to_string(), "policy.odrl_invalid", "not JSON"),
        (
            format!(r#"{{ {ctx}, "@type": "Offer", "permissions": [] }}"#),
            "policy.odrl_invalid",
            "permissions",
        ),
        (
            format!(
                r#"{{ {ctx}, "@type": "Offer", "permission": [{{"action": "use", "constraint": [{purpose}, {{"leftOperand": "spatial", "operator": "eq", "rightOperand": "CN"}}]}}] }}"#
            ),
            "policy.odrl_unsupported",
            "odrl:spatial",
        ),
        (
            format!(
                r#"{{ {ctx}, "@type": "Offer", "permission": [{{"action": "use", "constraint": [{purpose}]}}], "prohibition": [{{"action": "sell"}}] }}"#
            ),
            "policy.odrl_unsupported",
            "odrl:prohibition",
        ),
        (
            format!(
                r#"{{ {ctx}, "@type": "Offer", "permission": [{{"action": "use", "constraint": [{purpose}, {{"leftOperand": "count", "operator": "neq", "rightOperand": 3}}]}}] }}"#
            ),
            "policy.odrl_unsupported",
            "odrl:count odrl:neq",
        ),
    ];
    for (doc, code, named) in cases {
        let (status, body) = post_raw(net, "/v1/policies/odrl", "application/ld+json", doc.into_bytes()).await;
        assert_eq!(status, 422, "{body}");
        assert_eq!(body["code"], code, "{body}");
        assert!(body["message"].as_str().unwrap_or_default().contains(named), "{body}");
    }

    // Terms that read fine as ODRL but do not fit the dataset are refused on the ledger.
    let doc = format!(
        r#"{{ {ctx}, "@type": "Offer", "permission": [{{"action": "liutong:query", "constraint": [{purpose}, {{"leftOperand": "liutong:column", "operator": "isAnyOf", "rightOperand": ["nope"]}}]}}] }}"#
    );
    let policy = odrl::import(&doc).expect("reads");
    let body = AddOffer {
        dataset: m.dataset,
        terms: policy.terms,
        approval: Approval::Manual,
    };
    assert_eq!(
        refusal(net, &sign(net, KIND_OFFER_ADD, &body, &m.provider)).await,
        "policy.unknown_column"
    );
    assert_eq!(snapshot(net).await, before);
    assert_eq!(net.client.offers(&m.dataset).await.expect("offers").len(), 2);
}

#[tokio::test]
async fn a_partys_grants_as_provider_requester_and_holder() {
    let m = market().await;
    let g1 = m.request(1, grant_terms(&offer_terms(false))).await;
    let g2 = m.request(2, grant_terms(&offer_terms(true))).await;
    let ids = |v: &Value| -> Vec<String> {
        let mut ids: Vec<String> = v
            .as_array()
            .map(|a| a.iter().filter_map(|g| g["id"].as_str().map(str::to_string)).collect())
            .unwrap_or_default();
        ids.sort();
        ids
    };
    let mut both = vec![g1.to_string(), g2.to_string()];
    both.sort();
    for party in [&m.provider_code, &m.consumer_code] {
        let (status, list) = get_raw(&m.net, &format!("/v1/grants?party={party}")).await;
        assert_eq!(status, 200, "{list}");
        assert_eq!(ids(&list), both);
    }
    let (_, other) = member_as(&m.net, 3, &[Role::Consumer]).await;
    let (_, list) = get_raw(&m.net, &format!("/v1/grants?party={other}")).await;
    assert_eq!(ids(&list), Vec::<String>::new());
    m.submit(
        KIND_GRANT_TRANSFER,
        &TransferGrant {
            grant: g2,
            to: other.clone(),
        },
        &m.consumer,
    )
    .await;
    let (_, list) = get_raw(&m.net, &format!("/v1/grants?party={other}")).await;
    assert_eq!(ids(&list), vec![g2.to_string()]);
    assert_eq!(list[0]["holder"], other.as_str());

    for bad in ["/v1/grants?party=nope", "/v1/grants"] {
        let (status, body) = get_raw(&m.net, bad).await;
        assert_eq!(status, 400, "{bad}: {body}");
    }
}
