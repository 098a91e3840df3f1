//! The catalog as DCAT-3 and offers and grants as ODRL 2.2, in JSON-LD.
//!
//! Every document carries an inline context of prefixes (no remote
//! context), so any JSON-LD processor expands it offline. Identifiers are
//! URNs: `urn:liutong:dataset:{id}`, `urn:liutong:offer:{dataset}:{n}`,
//! `urn:liutong:grant:{id}`, `urn:liutong:party:{credit code}`.

use crate::datasets::{DatasetRecord, DatasetStatus, SearchPage};
use crate::grants::{Approval, GrantId, GrantView, OfferRecord};
use liutong_catalog::DatasetId;
use liutong_core::{format_utc, CreditCode};
use liutong_policies::odrl::{self, Policy, PolicyKind};
use liutong_policies::Terms;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

pub const DCAT: &str = "http://www.w3.org/ns/dcat#";
pub const SPDX: &str = "http://spdx.org/rdf/terms#";
pub const FOAF: &str = "http://xmlns.com/foaf/0.1/";
/// Media types are named by their IANA registry IRIs, as DCAT-3 recommends.
const IANA_MEDIA_TYPES: &str = "https://www.iana.org/assignments/media-types/";

pub fn party_iri(c: &CreditCode) -> String {
    format!("urn:liutong:party:{c}")
}

pub fn dataset_iri(d: &DatasetId) -> String {
    format!("urn:liutong:dataset:{d}")
}

pub fn offer_iri(d: &DatasetId, number: u32) -> String {
    format!("urn:liutong:offer:{d}:{number}")
}

pub fn grant_iri(g: &GrantId) -> String {
    format!("urn:liutong:grant:{g}")
}

/// An offer as an `odrl:Offer` policy.
pub fn offer_policy(offer: &OfferRecord, provider: &CreditCode) -> Policy {
    Policy {
        kind: PolicyKind::Offer,
        uid: Some(offer_iri(&offer.dataset, offer.number)),
        target: Some(dataset_iri(&offer.dataset)),
        assigner: Some(party_iri(provider)),
        assignee: None,
        automatic: Some(offer.approval == Approval::Automatic),
        terms: offer.terms.clone(),
        facts: vec![
            ("liutong:offerNumber".into(), json!(offer.number)),
            ("liutong:withdrawn".into(), json!(offer.withdrawn)),
        ],
    }
}

/// A grant as an `odrl:Agreement`, or an `odrl:Request` while it is one.
pub fn grant_policy(view: &GrantView) -> Policy {
    let g = &view.grant;
    Policy {
        kind: if view.state == "requested" || view.state == "rejected" {
            PolicyKind::Request
        } else {
            PolicyKind::Agreement
        },
        uid: Some(grant_iri(&g.id)),
        target: Some(dataset_iri(&g.dataset)),
        assigner: Some(party_iri(&g.provider)),
        assignee: Some(party_iri(&g.holder)),
        automatic: None,
        terms: g.terms.clone(),
        facts: vec![
            ("liutong:state".into(), json!(view.state)),
            ("liutong:usesCounted".into(), json!(g.uses)),
            ("liutong:offer".into(), json!({"@id": offer_iri(&g.dataset, g.offer)})),
        ],
    }
}

/// The context of catalog documents: the policy prefixes plus DCAT's.
fn catalog_context() -> Map<String, Value> {
    let mut c = odrl::context();
    for (prefix, iri) in [("dcat", DCAT), ("spdx", SPDX), ("foaf", FOAF)] {
        c.insert(prefix.into(), json!(iri));
    }
    c
}

fn date_time(ms: u64) -> Value {
    json!({"@value": format_utc(ms), "@type": "xsd:dateTime"})
}

/// One dataset as a `dcat:Dataset` with its current version's distribution
/// and its open offers.
fn dataset_node(d: &DatasetRecord, offers: &[OfferRecord]) -> Value {
    let desc = &d.description;
    let c = &desc.commitment;
    let mut distribution = json!({
        "@id": format!("{}:v{}", dataset_iri(&d.id), d.version),
        "@type": "dcat:Distribution",
        "dct:title": format!("{} (version {})", desc.title, d.version),
        "dcat:mediaType": {"@id": format!("{IANA_MEDIA_TYPES}{}", desc.media_type)},
        "dcat:byteSize": {"@value": c.size.to_string(), "@type": "xsd:nonNegativeInteger"},
        "spdx:checksum": {
            "@type": "spdx:Checksum",
            "spdx:algorithm": {"@id": "spdx:checksumAlgorithm_sha256"},
            "spdx:checksumValue": {"@value": c.sha256.to_string(), "@type": "xsd:hexBinary"},
        },
        "liutong:chunkSize": c.chunk_size,
        "liutong:chunkRoot": {"@value": c.chunk_root.to_string(), "@type": "xsd:hexBinary"},
    });
    if let Some(t) = &desc.table {
        distribution["liutong:rows"] = json!(t.rows);
        distribution["liutong:columns"] = json!({"@value": t.columns, "@type": "@json"});
    }
    let policies: Vec<Value> = offers
        .iter()
        .filter(|o| !o.withdrawn)
        .map(|o| {
            let mut p = odrl::export(&offer_policy(o, &d.provider));
            if let Some(m) = p.as_object_mut() {
                m.remove("@context");
            }
            p
        })
        .collect();
    json!({
        "@id": dataset_iri(&d.id),
        "@type": "dcat:Dataset",
        "dct:identifier": d.id.to_string(),
        "dct:title": desc.title,
        "dct:description": desc.description,
        "dcat:keyword": desc.tags,
        "dct:publisher": {"@id": party_iri(&d.provider), "@type": "foaf:Agent", "foaf:name": d.provider_name},
        "dct:issued": date_time(d.registered_at),
        "dct:modified": date_time(d.updated_at),
        "dcat:version": d.version.to_string(),
        "liutong:kind": desc.kind.as_str(),
        "liutong:status": match d.status {
            DatasetStatus::Listed => "listed",
            DatasetStatus::Delisted => "delisted",
        },
        "dcat:distribution": [distribution],
        "odrl:hasPolicy": policies,
    })
}

/// A search page as a `dcat:Catalog`; `offers` gives each dataset's offers.
/// `liutong:next` carries the cursor of the next page, if any.
pub fn dcat_catalog(
    chain_id: &str,
    page: &SearchPage,
    mut offers: impl FnMut(&DatasetId) -> crate::Result<Vec<OfferRecord>>,
) -> crate::Result<Value> {
    let mut datasets = Vec::with_capacity(page.datasets.len());
    for d in &page.datasets {
        datasets.push(dataset_node(d, &offers(&d.id)?));
    }
    let mut doc = json!({
        "@context": catalog_context(),
        "@id": format!("urn:liutong:catalog:{chain_id}"),
        "@type": "dcat:Catalog",
        "dct:title": format!("liutong catalog of chain {chain_id}"),
        "dcat:dataset": datasets,
    });
    if let Some(next) = &page.next {
        doc["liutong:next"] = json!(next);
    }
    Ok(doc)
}

/// An imported ODRL policy: its parties as written and its liutong terms.
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ImportedPolicy {
    /// offer, agreement, request or set.
    pub kind: String,
    pub uid: Option<String>,
    pub target: Option<String>,
    pub assigner: Option<String>,
    pub assignee: Option<String>,
    /// Offers that say so (`liutong:approval`).
    pub approval: Option<Approval>,
    #[schema(value_type = Object)]
    pub terms: Terms,
}

impl From<Policy> for ImportedPolicy {
    fn from(p: Policy) -> ImportedPolicy {
        ImportedPolicy {
            kind: match p.kind {
                PolicyKind::Offer => "offer",
                PolicyKind::Agreement => "agreement",
                PolicyKind::Request => "request",
                PolicyKind::Set => "set",
            }
            .into(),
            uid: p.uid,
            target: p.target,
            assigner: p.assigner,
            assignee: p.assignee,
            approval: p
                .automatic
                .map(|a| if a { Approval::Automatic } else { Approval::Manual }),
            terms: p.terms,
        }
    }
}
