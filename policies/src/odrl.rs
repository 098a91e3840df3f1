//! ODRL 2.2 in JSON-LD: liutong terms as `odrl:Offer` and `odrl:Agreement`
//! policies, and back.
//!
//! Export writes one permission per action (ODRL rules have one action
//! each), all with the same constraints, under an inline context of
//! prefixes, so the document expands without fetching anything.
//!
//! Import is a real JSON-LD expansion (the `json-ld` crate) with a strict key
//! policy: a key that does not expand to an IRI is an error, not a silent
//! drop. Remote contexts are never fetched; the ODRL context
//! (`http://www.w3.org/ns/odrl.jsonld`) is served from a copy of its term
//! definitions built in here. The expanded policy is then read term by term,
//! and anything liutong cannot enforce (a prohibition, a duty, a logical
//! constraint, a left operand or operator without a liutong meaning, another
//! profile) is refused with its name. The liutong terms that ODRL has no
//! word for live under [`LIUTONG`]; the README lists them.

use crate::terms::{Action, ColumnMask, DateUnit, Mask, Terms};
use crate::{Error, Result};
use json_ld::syntax::IntoJsonWithContext;
use json_ld::{IriBuf, JsonLdProcessor, RemoteDocument};
use liutong_core::format_utc;
use serde_json::{json, Map, Value};
use std::collections::HashMap;

pub const ODRL: &str = "http://www.w3.org/ns/odrl/2/";
/// liutong's own vocabulary: actions, left operands and record facts.
pub const LIUTONG: &str = "https://liutong.dev/ns/v1#";
/// The ODRL profile every exported policy declares.
pub const PROFILE: &str = "https://liutong.dev/ns/v1";
pub const XSD: &str = "http://www.w3.org/2001/XMLSchema#";
pub const DCT: &str = "http://purl.org/dc/terms/";
const RDFS: &str = "http://www.w3.org/2000/01/rdf-schema#";
/// The W3C's ODRL context, resolved locally (both schemes).
pub const ODRL_CONTEXT_URLS: [&str; 2] = ["http://www.w3.org/ns/odrl.jsonld", "https://www.w3.org/ns/odrl.jsonld"];
/// The largest policy document [`import`] reads.
pub const MAX_DOCUMENT: usize = 256 * 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PolicyKind {
    /// What a provider will grant: liutong's offer.
    Offer,
    /// What was granted to one assignee: liutong's grant.
    Agreement,
    /// What a consumer asks for: a grant request.
    Request,
    /// Terms with no parties (accepted on import, e.g. for a grant request).
    Set,
}

impl PolicyKind {
    fn iri(self) -> &'static str {
        match self {
            PolicyKind::Offer => "odrl:Offer",
            PolicyKind::Agreement => "odrl:Agreement",
            PolicyKind::Request => "odrl:Request",
            PolicyKind::Set => "odrl:Set",
        }
    }
}

/// A policy document's content, as liutong reads and writes it.
#[derive(Clone, Debug, PartialEq)]
pub struct Policy {
    pub kind: PolicyKind,
    /// `@id` (`urn:liutong:offer:…`, `urn:liutong:grant:…` on export).
    pub uid: Option<String>,
    pub target: Option<String>,
    pub assigner: Option<String>,
    pub assignee: Option<String>,
    /// Offers: whether requests within the terms are issued automatically.
    pub automatic: Option<bool>,
    pub terms: Terms,
    /// Facts about the record exported beside the terms (state, offer
    /// number…): compact IRI and JSON-LD value. Not terms; import skips
    /// the ones in [`INFORMATIONAL`] and returns none.
    pub facts: Vec<(String, Value)>,
}

/// Properties a policy may carry that describe it rather than constrain
/// its use; import accepts and skips them.
pub const INFORMATIONAL: [&str; 10] = [
    "liutong:offerNumber",
    "liutong:withdrawn",
    "liutong:state",
    "liutong:usesCounted",
    "liutong:offer",
    "dct:title",
    "dct:description",
    "dct:issued",
    "dct:modified",
    "rdfs:comment",
];

/// The inline context of every document liutong writes: prefixes only.
pub fn context() -> Map<String, Value> {
    let mut c = Map::new();
    for (prefix, iri) in [("odrl", ODRL), ("liutong", LIUTONG), ("xsd", XSD), ("dct", DCT)] {
        c.insert(prefix.into(), Value::String(iri.into()));
    }
    c
}

fn action_iri(a: Action) -> &'static str {
    match a {
        Action::Download => "liutong:download",
        Action::Query => "liutong:query",
    }
}

fn date_time(ms: u64) -> Value {
    json!({"@value": format_utc(ms), "@type": "xsd:dateTime"})
}

fn constraint(left: &str, operator: &str, right: Value) -> Value {
    json!({
        "@type": "odrl:Constraint",
        "odrl:leftOperand": {"@id": left},
        "odrl:operator": {"@id": operator},
        "odrl:rightOperand": right,
    })
}

fn mask_node(m: &ColumnMask) -> Value {
    let mut node = json!({"liutong:column": m.column});
    let (method, extra) = match &m.mask {
        Mask::Redact => ("redact", None),
        Mask::Hash => ("hash", None),
        Mask::Truncate { keep } => ("truncate", Some(("liutong:keep", json!(keep)))),
        Mask::TruncateDate { unit } => (
            "truncate_date",
            Some((
                "liutong:unit",
                json!(match unit {
                    DateUnit::Day => "day",
                    DateUnit::Month => "month",
                    DateUnit::Year => "year",
                }),
            )),
        ),
        Mask::Generalize { width } => ("generalize", Some(("liutong:width", json!(width)))),
    };
    node["liutong:method"] = json!(method);
    if let Some((k, v)) = extra {
        node[k] = v;
    }
    node
}

/// The constraints of `t`, in a fixed order.
fn constraints(t: &Terms) -> Vec<Value> {
    let mut out = Vec::new();
    if let [one] = t.purposes.as_slice() {
        out.push(constraint("odrl:purpose", "odrl:eq", json!(one)));
    } else {
        out.push(constraint("odrl:purpose", "odrl:isAnyOf", json!(t.purposes)));
    }
    out.push(constraint("odrl:dateTime", "odrl:gteq", date_time(t.not_before)));
    if let Some(end) = t.not_after {
        out.push(constraint("odrl:dateTime", "odrl:lt", date_time(end)));
    }
    if let Some(n) = t.max_uses {
        out.push(constraint("odrl:count", "odrl:lteq", json!(n)));
    }
    if let Some(cols) = &t.columns {
        out.push(constraint("liutong:column", "odrl:isAnyOf", json!(cols)));
    }
    if let Some(f) = &t.row_filter {
        out.push(constraint("liutong:rowFilter", "odrl:eq", json!(f)));
    }
    for m in &t.masks {
        out.push(constraint("liutong:mask", "odrl:eq", mask_node(m)));
    }
    if let Some(k) = t.min_group_size {
        out.push(constraint("liutong:minGroupSize", "odrl:gteq", json!(k)));
    }
    if let Some(n) = t.row_cap {
        out.push(constraint("liutong:rowCap", "odrl:lteq", json!(n)));
    }
    out
}

/// The JSON-LD document of `p` (compact form, inline context).
pub fn export(p: &Policy) -> Value {
    let mut doc = Map::new();
    doc.insert("@context".into(), Value::Object(context()));
    if let Some(uid) = &p.uid {
        doc.insert("@id".into(), json!(uid));
    }
    doc.insert("@type".into(), json!(p.kind.iri()));
    doc.insert("odrl:profile".into(), json!({"@id": PROFILE}));
    for (key, party) in [
        ("odrl:target", &p.target),
        ("odrl:assigner", &p.assigner),
        ("odrl:assignee", &p.assignee),
    ] {
        if let Some(id) = party {
            doc.insert(key.into(), json!({"@id": id}));
        }
    }
    if let Some(auto) = p.automatic {
        doc.insert(
            "liutong:approval".into(),
            json!(if auto { "automatic" } else { "manual" }),
        );
    }
    doc.insert("liutong:transferable".into(), json!(p.terms.transferable));
    for (k, v) in &p.facts {
        doc.insert(k.clone(), v.clone());
    }
    let constraints = constraints(&p.terms);
    let permissions: Vec<Value> = p
        .terms
        .actions
        .iter()
        .map(|a| {
            json!({
                "@type": "odrl:Permission",
                "odrl:action": {"@id": action_iri(*a)},
                "odrl:constraint": constraints,
            })
        })
        .collect();
    doc.insert("odrl:permission".into(), Value::Array(permissions));
    Value::Object(doc)
}

// ---------------------------------------------------------------- import

fn bad(msg: impl Into<String>) -> Error {
    Error::BadOdrl(msg.into())
}

fn unsupported(msg: impl Into<String>) -> Error {
    Error::OdrlUnsupported(msg.into())
}

/// The prefixes of messages and of the compact names in this module.
const PREFIXES: [(&str, &str); 5] = [
    ("odrl:", ODRL),
    ("liutong:", LIUTONG),
    ("xsd:", XSD),
    ("dct:", DCT),
    ("rdfs:", RDFS),
];

/// An IRI in the short form of the documents, for messages.
fn short(iri: &str) -> String {
    PREFIXES
        .iter()
        .find_map(|(prefix, ns)| iri.strip_prefix(ns).map(|rest| format!("{prefix}{rest}")))
        .unwrap_or_else(|| iri.to_string())
}

/// The full IRI of a compact one in [`PREFIXES`].
fn full(compact: &str) -> String {
    PREFIXES
        .iter()
        .find_map(|(prefix, ns)| compact.strip_prefix(prefix).map(|rest| format!("{ns}{rest}")))
        .unwrap_or_else(|| compact.to_string())
}

/// Reads an ODRL policy document: JSON-LD 1.1, one policy (an `odrl:Offer`,
/// `odrl:Agreement`, `odrl:Request`, `odrl:Set` or `odrl:Policy`).
pub fn import(text: &str) -> Result<Policy> {
    if text.len() > MAX_DOCUMENT {
        return Err(bad(format!(
            "the document is {} bytes; at most {MAX_DOCUMENT} are read",
            text.len()
        )));
    }
    let value: Value = serde_json::from_str(text).map_err(|e| bad(format!("not JSON: {e}")))?;
    let expanded = expand(value)?;
    Reader::new(&expanded).policy()
}

/// JSON-LD expansion with the strict key policy and the local loader.
pub fn expand(value: Value) -> Result<Vec<Value>> {
    let mut loader: HashMap<IriBuf, RemoteDocument> = HashMap::new();
    for url in ODRL_CONTEXT_URLS {
        let iri = IriBuf::new(url.to_string()).map_err(|e| bad(format!("{url}: {e:?}")))?;
        let doc = json_syntax::Value::from_serde_json(odrl_context());
        loader.insert(iri.clone(), RemoteDocument::new(Some(iri), None, doc));
    }
    let document = RemoteDocument::new(None, None, json_syntax::Value::from_serde_json(value));
    let options = json_ld::Options {
        expansion_policy: json_ld::expansion::Policy {
            invalid: json_ld::expansion::Action::Reject,
            vocab: json_ld::expansion::Action::Keep,
            allow_undefined: false,
        },
        ..Default::default()
    };
    let expanded = futures::executor::block_on(document.expand_using(&loader, options)).map_err(|e| {
        bad(format!(
            "not valid JSON-LD (remote contexts other than ODRL's are not fetched): {e}"
        ))
    })?;
    Ok(expanded
        .into_iter()
        .map(|o| o.into_json_with(&()).into_serde_json())
        .collect())
}

/// The values of property `iri` on an expanded node.
fn values<'a>(node: &'a Map<String, Value>, iri: &str) -> &'a [Value] {
    node.get(iri)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

fn id_of(v: &Value) -> Option<&str> {
    v.get("@id").and_then(Value::as_str)
}

fn types(node: &Map<String, Value>) -> Vec<&str> {
    values(node, "@type").iter().filter_map(Value::as_str).collect()
}

/// Refuses keys of `node` outside `allowed` (full IRIs and keywords), naming the first.
fn only(node: &Map<String, Value>, allowed: &[&str], what: &str) -> Result<()> {
    match node
        .keys()
        .find(|k| !allowed.contains(&k.as_str()) && !allowed.contains(&short(k).as_str()))
    {
        None => Ok(()),
        Some(k) => Err(unsupported(format!(
            "{} on {what} is not a term liutong enforces",
            short(k)
        ))),
    }
}

/// Terms read from one permission's constraints.
#[derive(Default, Clone, PartialEq, Debug)]
struct Bounds {
    purposes: Option<Vec<String>>,
    not_before: Option<u64>,
    not_after: Option<u64>,
    max_uses: Option<u64>,
    columns: Option<Vec<String>>,
    row_filter: Option<String>,
    masks: Vec<ColumnMask>,
    min_group_size: Option<u32>,
    row_cap: Option<u64>,
}

fn set_once<T>(slot: &mut Option<T>, value: T, what: &str) -> Result<()> {
    if slot.is_some() {
        return Err(bad(format!("{what} is constrained twice")));
    }
    *slot = Some(value);
    Ok(())
}

struct Reader<'a> {
    top: &'a [Value],
    by_id: HashMap<&'a str, &'a Map<String, Value>>,
}

impl<'a> Reader<'a> {
    fn new(top: &'a [Value]) -> Reader<'a> {
        let by_id = top
            .iter()
            .filter_map(Value::as_object)
            .filter_map(|n| Some((n.get("@id")?.as_str()?, n)))
            .collect();
        Reader { top, by_id }
    }

    /// A node value, following a bare `{"@id": …}` reference to a top-level node.
    fn node(&self, v: &'a Value, what: &str) -> Result<&'a Map<String, Value>> {
        let map = v
            .as_object()
            .filter(|m| !m.contains_key("@value"))
            .ok_or_else(|| bad(format!("{what} must be a node, not a literal")))?;
        if map.len() == 1 {
            if let Some(target) = map.get("@id").and_then(Value::as_str).and_then(|id| self.by_id.get(id)) {
                return Ok(target);
            }
        }
        Ok(map)
    }

    fn one_id(&self, node: &Map<String, Value>, iri: &str) -> Result<Option<String>> {
        match values(node, iri) {
            [] => Ok(None),
            [v] => id_of(v)
                .map(|s| Some(s.to_string()))
                .ok_or_else(|| bad(format!("{} must be an IRI", short(iri)))),
            _ => Err(unsupported(format!("more than one {}", short(iri)))),
        }
    }

    fn policy(&self) -> Result<Policy> {
        let kinds = [
            ("Offer", Some(PolicyKind::Offer)),
            ("Agreement", Some(PolicyKind::Agreement)),
            ("Set", Some(PolicyKind::Set)),
            ("Policy", Some(PolicyKind::Set)),
            ("Request", Some(PolicyKind::Request)),
            ("Ticket", None),
            ("Privacy", None),
            ("Assertion", None),
        ];
        let mut found = Vec::new();
        for node in self.top.iter().filter_map(Value::as_object) {
            for t in types(node) {
                if let Some((name, kind)) = kinds.iter().find(|(n, _)| t == format!("{ODRL}{n}")) {
                    found.push((node, *name, *kind));
                }
            }
        }
        let (node, name, kind) = match found.as_slice() {
            [] => {
                return Err(bad(
                    "the document holds no odrl:Offer, odrl:Agreement, odrl:Request, odrl:Set or odrl:Policy",
                ))
            }
            [one] => *one,
            more => {
                return Err(unsupported(format!(
                    "one policy per document; this one has {}",
                    more.len()
                )))
            }
        };
        let kind = kind.ok_or_else(|| unsupported(format!("odrl:{name} policies")))?;
        let mut allowed = vec![
            "@id",
            "@type",
            "odrl:profile",
            "odrl:uid",
            "odrl:target",
            "odrl:assigner",
            "odrl:assignee",
            "odrl:permission",
            "liutong:approval",
            "liutong:transferable",
        ];
        allowed.extend(INFORMATIONAL);
        only(node, &allowed, "the policy")?;
        for p in values(node, &full("odrl:profile")) {
            match id_of(p) {
                Some(PROFILE) => {}
                other => {
                    return Err(unsupported(format!(
                        "profile {} (liutong reads its own profile, {PROFILE}, or none)",
                        other.unwrap_or("(not an IRI)")
                    )))
                }
            }
        }
        let mut target = self.one_id(node, &full("odrl:target"))?;
        let mut assigner = self.one_id(node, &full("odrl:assigner"))?;
        let mut assignee = self.one_id(node, &full("odrl:assignee"))?;
        let uid = match node.get("@id").and_then(Value::as_str) {
            Some(id) => Some(id.to_string()),
            None => self.one_id(node, &full("odrl:uid"))?,
        };
        let automatic = match values(node, &full("liutong:approval")) {
            [] => None,
            [v] => match v.get("@value").and_then(Value::as_str) {
                Some("automatic") => Some(true),
                Some("manual") => Some(false),
                _ => return Err(bad("liutong:approval is \"automatic\" or \"manual\"")),
            },
            _ => return Err(bad("liutong:approval is given twice")),
        };
        let transferable = match values(node, &full("liutong:transferable")) {
            [] => false,
            [v] => v
                .get("@value")
                .and_then(Value::as_bool)
                .ok_or_else(|| bad("liutong:transferable is true or false"))?,
            _ => return Err(bad("liutong:transferable is given twice")),
        };

        let permissions = values(node, &full("odrl:permission"));
        if permissions.is_empty() {
            return Err(bad("the policy has no odrl:permission"));
        }
        let mut actions = Vec::new();
        let mut bounds: Option<Bounds> = None;
        for p in permissions {
            let p = self.node(p, "a permission")?;
            only(
                p,
                &[
                    "@id",
                    "@type",
                    "odrl:action",
                    "odrl:constraint",
                    "odrl:target",
                    "odrl:assigner",
                    "odrl:assignee",
                ],
                "a permission",
            )?;
            for (key, slot) in [
                ("odrl:target", &mut target),
                ("odrl:assigner", &mut assigner),
                ("odrl:assignee", &mut assignee),
            ] {
                if let Some(id) = self.one_id(p, &full(key))? {
                    match slot {
                        Some(existing) if *existing != id => {
                            return Err(unsupported(format!(
                                "permissions with different {key}s ({existing}, {id})"
                            )))
                        }
                        _ => *slot = Some(id),
                    }
                }
            }
            let action = match values(p, &full("odrl:action")) {
                [a] => a,
                [] => return Err(bad("a permission has no odrl:action")),
                _ => return Err(bad("an ODRL rule has exactly one odrl:action")),
            };
            let action_node = self.node(action, "an action")?;
            only(action_node, &["@id"], "an action")?;
            let iri = id_of(action).unwrap_or_default();
            match short(iri).as_str() {
                "liutong:download" | "odrl:reproduce" => actions.push(Action::Download),
                "liutong:query" | "odrl:read" => actions.push(Action::Query),
                "odrl:use" => actions.extend([Action::Download, Action::Query]),
                other => {
                    return Err(unsupported(format!(
                        "action {other} (liutong grants liutong:download, liutong:query, or odrl:use for both)"
                    )))
                }
            }
            let mut b = Bounds::default();
            for c in values(p, &full("odrl:constraint")) {
                self.constraint(self.node(c, "a constraint")?, &mut b)?;
            }
            match &bounds {
                None => bounds = Some(b),
                Some(first) if *first == b => {}
                Some(_) => {
                    return Err(unsupported(
                        "permissions with different constraints per action (liutong applies one set of terms to every action)",
                    ))
                }
            }
        }
        actions.sort();
        actions.dedup();
        let b = bounds.unwrap_or_default();
        let mut purposes = b
            .purposes
            .ok_or_else(|| bad("no odrl:purpose constraint: a liutong policy names its purposes"))?;
        purposes.sort();
        purposes.dedup();
        let columns = b.columns.map(|mut c| {
            c.sort();
            c.dedup();
            c
        });
        let terms = Terms {
            purposes,
            not_before: b.not_before.unwrap_or(0),
            not_after: b.not_after,
            max_uses: b.max_uses,
            actions,
            columns,
            row_filter: b.row_filter,
            masks: b.masks,
            min_group_size: b.min_group_size,
            row_cap: b.row_cap,
            transferable,
        };
        Ok(Policy {
            kind,
            uid,
            target,
            assigner,
            assignee,
            automatic,
            terms,
            facts: Vec::new(),
        })
    }

    fn constraint(&self, c: &Map<String, Value>, b: &mut Bounds) -> Result<()> {
        for logical in ["odrl:and", "odrl:or", "odrl:xone", "odrl:andSequence"] {
            if c.contains_key(&full(logical)) {
                return Err(unsupported(format!("logical constraint {logical}")));
            }
        }
        only(
            c,
            &["@id", "@type", "odrl:leftOperand", "odrl:operator", "odrl:rightOperand"],
            "a constraint",
        )?;
        let one_iri = |key: &str| -> Result<String> {
            match values(c, &full(key)) {
                [v] => id_of(v).map(short).ok_or_else(|| bad(format!("{key} must be an IRI"))),
                _ => Err(bad(format!("a constraint has exactly one {key}"))),
            }
        };
        let left = one_iri("odrl:leftOperand")?;
        let op = one_iri("odrl:operator")?;
        let right = values(c, &full("odrl:rightOperand"));
        if right.is_empty() {
            return Err(bad(format!("constraint {left} {op} has no odrl:rightOperand")));
        }
        let single = || -> Result<&Value> {
            match right {
                [v] => Ok(v),
                _ => Err(bad(format!("constraint {left} {op} takes one right operand"))),
            }
        };
        let strings = || -> Result<Vec<String>> {
            right
                .iter()
                .map(|v| {
                    string(v)
                        .map(str::to_string)
                        .ok_or_else(|| bad(format!("{left} takes text values")))
                })
                .collect()
        };
        match (left.as_str(), op.as_str()) {
            ("odrl:purpose", "odrl:eq") => {
                let one = string(single()?).ok_or_else(|| bad("a purpose is text"))?;
                set_once(&mut b.purposes, vec![one.to_string()], "odrl:purpose")
            }
            ("odrl:purpose", "odrl:isAnyOf") => set_once(&mut b.purposes, strings()?, "odrl:purpose"),
            ("odrl:dateTime", "odrl:gteq" | "odrl:gt") => {
                let t = instant(single()?)? + u64::from(op == "odrl:gt");
                set_once(&mut b.not_before, t, "the start of validity (odrl:dateTime gteq)")
            }
            ("odrl:dateTime", "odrl:lt" | "odrl:lteq") => {
                let t = instant(single()?)? + u64::from(op == "odrl:lteq");
                set_once(&mut b.not_after, t, "the end of validity (odrl:dateTime lt)")
            }
            ("odrl:count", "odrl:lteq" | "odrl:lt") => {
                let n = integer(single()?, &left)?;
                let n = if op == "odrl:lt" { n.saturating_sub(1) } else { n };
                set_once(&mut b.max_uses, n, "odrl:count")
            }
            ("liutong:column", "odrl:isAnyOf" | "odrl:eq") => set_once(&mut b.columns, strings()?, "liutong:column"),
            ("liutong:rowFilter", "odrl:eq") => {
                let f = string(single()?).ok_or_else(|| bad("a row filter is SQL text"))?;
                set_once(&mut b.row_filter, f.to_string(), "liutong:rowFilter")
            }
            ("liutong:mask", "odrl:eq") => {
                let node = self.node(single()?, "a mask")?;
                b.masks.push(mask(node)?);
                Ok(())
            }
            ("liutong:minGroupSize", "odrl:gteq" | "odrl:gt") => {
                let k = integer(single()?, &left)? + u64::from(op == "odrl:gt");
                let k = u32::try_from(k).map_err(|_| bad("liutong:minGroupSize is too large"))?;
                set_once(&mut b.min_group_size, k, "liutong:minGroupSize")
            }
            ("liutong:rowCap", "odrl:lteq" | "odrl:lt") => {
                let n = integer(single()?, &left)?;
                let n = if op == "odrl:lt" { n.saturating_sub(1) } else { n };
                set_once(&mut b.row_cap, n, "liutong:rowCap")
            }
            _ => Err(unsupported(format!(
                "constraint {left} {op} (liutong enforces odrl:purpose, odrl:dateTime, odrl:count and the liutong: operands in the README)"
            ))),
        }
    }
}

/// A plain or `xsd:string` literal.
fn string(v: &Value) -> Option<&str> {
    let ty = v.get("@type").and_then(Value::as_str);
    if ty.is_some() && ty != Some(&format!("{XSD}string")) {
        return None;
    }
    v.get("@value")?.as_str()
}

fn integer(v: &Value, what: &str) -> Result<u64> {
    let err = || bad(format!("{what} takes a non-negative integer"));
    let value = v.get("@value").ok_or_else(err)?;
    if let Some(n) = value.as_u64() {
        return Ok(n);
    }
    let ty = v.get("@type").and_then(Value::as_str).unwrap_or_default();
    let integer_types = [
        "integer",
        "nonNegativeInteger",
        "positiveInteger",
        "long",
        "int",
        "unsignedLong",
    ];
    match value.as_str() {
        Some(text) if integer_types.iter().any(|t| ty == format!("{XSD}{t}")) => text.parse().map_err(|_| err()),
        _ => Err(err()),
    }
}

/// An `xsd:dateTime` (with a zone) or `xsd:date` (midnight UTC), in ms since the epoch.
fn instant(v: &Value) -> Result<u64> {
    let text = v
        .get("@value")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("odrl:dateTime takes an xsd:dateTime or xsd:date"))?;
    let ms = if let Ok(t) = chrono::DateTime::parse_from_rfc3339(text) {
        t.timestamp_millis()
    } else if let Ok(d) = chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        d.and_time(chrono::NaiveTime::MIN).and_utc().timestamp_millis()
    } else {
        return Err(bad(format!(
            "{text:?} is not an xsd:dateTime with a time zone (e.g. 2026-01-31T00:00:00Z) or an xsd:date"
        )));
    };
    u64::try_from(ms).map_err(|_| bad(format!("{text} is before 1970")))
}

fn mask(node: &Map<String, Value>) -> Result<ColumnMask> {
    only(
        node,
        &[
            "@id",
            "@type",
            "liutong:column",
            "liutong:method",
            "liutong:keep",
            "liutong:unit",
            "liutong:width",
        ],
        "a mask",
    )?;
    let text = |key: &str| -> Result<Option<&str>> {
        match values(node, &full(key)) {
            [] => Ok(None),
            [v] => string(v).map(Some).ok_or_else(|| bad(format!("{key} is text"))),
            _ => Err(bad(format!("{key} is given twice"))),
        }
    };
    let number = |key: &str| -> Result<u64> {
        match values(node, &full(key)) {
            [v] => integer(v, key),
            _ => Err(bad(format!("this mask needs one {key}"))),
        }
    };
    let column = text("liutong:column")?.ok_or_else(|| bad("a mask names its liutong:column"))?;
    let method = text("liutong:method")?.ok_or_else(|| bad("a mask names its liutong:method"))?;
    let mask = match method {
        "redact" => Mask::Redact,
        "hash" => Mask::Hash,
        "truncate" => Mask::Truncate {
            keep: u32::try_from(number("liutong:keep")?).map_err(|_| bad("liutong:keep is too large"))?,
        },
        "truncate_date" => Mask::TruncateDate {
            unit: match text("liutong:unit")? {
                Some("day") => DateUnit::Day,
                Some("month") => DateUnit::Month,
                Some("year") => DateUnit::Year,
                _ => return Err(bad("liutong:unit is day, month or year")),
            },
        },
        "generalize" => Mask::Generalize {
            width: number("liutong:width")?,
        },
        other => {
            return Err(unsupported(format!(
                "mask method {other:?} (redact, hash, truncate, truncate_date, generalize)"
            )))
        }
    };
    Ok(ColumnMask {
        column: column.to_string(),
        mask,
    })
}

// ------------------------------------------------- the ODRL context, offline

/// ODRL 2.2 classes.
const CLASSES: [&str; 25] = [
    "Policy",
    "Set",
    "Offer",
    "Agreement",
    "Assertion",
    "Privacy",
    "Request",
    "Ticket",
    "Asset",
    "AssetCollection",
    "Party",
    "PartyCollection",
    "Rule",
    "Permission",
    "Prohibition",
    "Duty",
    "Action",
    "Constraint",
    "LogicalConstraint",
    "Operator",
    "LeftOperand",
    "RightOperand",
    "ConflictTerm",
    "PartyScope",
    "AssetScope",
];

/// Properties whose values are IRIs or nodes.
const ID_PROPERTIES: [&str; 38] = [
    "profile",
    "inheritFrom",
    "target",
    "output",
    "partOf",
    "source",
    "hasPolicy",
    "relation",
    "assigner",
    "assignee",
    "assignerOf",
    "assigneeOf",
    "attributedParty",
    "attributingParty",
    "compensatedParty",
    "compensatingParty",
    "consentingParty",
    "consentedParty",
    "contractedParty",
    "contractingParty",
    "informedParty",
    "informingParty",
    "trackedParty",
    "trackingParty",
    "permission",
    "prohibition",
    "obligation",
    "duty",
    "consequence",
    "remedy",
    "failure",
    "refinement",
    "constraint",
    "and",
    "or",
    "xone",
    "includedIn",
    "implies",
];

/// Properties whose text values are ODRL terms (`"action": "use"`).
const VOCAB_PROPERTIES: [&str; 6] = ["action", "leftOperand", "operator", "conflict", "function", "scope"];

/// Properties with literal values.
const PLAIN_PROPERTIES: [&str; 5] = ["rightOperand", "rightOperandReference", "unit", "dataType", "status"];

/// Named individuals: actions, operators, left operands, conflict strategies.
const TERMS: [&str; 89] = [
    // actions
    "use",
    "grantUse",
    "acceptTracking",
    "aggregate",
    "annotate",
    "anonymize",
    "archive",
    "attribute",
    "compensate",
    "concurrentUse",
    "delete",
    "derive",
    "digitize",
    "display",
    "distribute",
    "ensureExclusivity",
    "execute",
    "extract",
    "give",
    "include",
    "index",
    "inform",
    "install",
    "modify",
    "move",
    "nextPolicy",
    "obtainConsent",
    "play",
    "present",
    "print",
    "read",
    "reproduce",
    "reviewPolicy",
    "sell",
    "stream",
    "synchronize",
    "textToSpeech",
    "transfer",
    "transform",
    "translate",
    "uninstall",
    "watermark",
    // operators
    "eq",
    "gt",
    "gteq",
    "lt",
    "lteq",
    "neq",
    "isA",
    "hasPart",
    "isPartOf",
    "isAllOf",
    "isAnyOf",
    "isNoneOf",
    // left operands
    "absolutePosition",
    "absoluteSpatialPosition",
    "absoluteTemporalPosition",
    "absoluteSize",
    "count",
    "dateTime",
    "delayPeriod",
    "deliveryChannel",
    "elapsedTime",
    "event",
    "fileFormat",
    "industry",
    "language",
    "media",
    "meteredTime",
    "payAmount",
    "percentage",
    "product",
    "purpose",
    "recipient",
    "relativePosition",
    "relativeSpatialPosition",
    "relativeTemporalPosition",
    "relativeSize",
    "resolution",
    "spatial",
    "spatialCoordinates",
    "systemDevice",
    "timeInterval",
    "unitOfCount",
    "version",
    "virtualLocation",
    // conflict strategies
    "perm",
    "prohibit",
    "invalid",
];

/// The ODRL context's term definitions, written from the ODRL 2.2
/// vocabulary: what `"@context": "http://www.w3.org/ns/odrl.jsonld"`
/// resolves to here. A term it lacks is refused (strict keys) or read as
/// an unknown IRI (values), never dropped.
pub fn odrl_context() -> Value {
    let mut c = Map::new();
    for (prefix, iri) in [
        ("odrl", ODRL),
        ("rdf", "http://www.w3.org/1999/02/22-rdf-syntax-ns#"),
        ("rdfs", RDFS),
        ("owl", "http://www.w3.org/2002/07/owl#"),
        ("skos", "http://www.w3.org/2004/02/skos/core#"),
        ("dct", DCT),
        ("xsd", XSD),
        ("vcard", "http://www.w3.org/2006/vcard/ns#"),
        ("foaf", "http://xmlns.com/foaf/0.1/"),
        ("schema", "http://schema.org/"),
        ("cc", "http://creativecommons.org/ns#"),
    ] {
        c.insert(prefix.into(), json!(iri));
    }
    c.insert("uid".into(), json!("@id"));
    c.insert("type".into(), json!("@type"));
    for name in CLASSES.iter().chain(TERMS.iter()).chain(PLAIN_PROPERTIES.iter()) {
        c.insert((*name).into(), json!(format!("odrl:{name}")));
    }
    for name in ID_PROPERTIES {
        c.insert(name.into(), json!({"@type": "@id", "@id": format!("odrl:{name}")}));
    }
    for name in VOCAB_PROPERTIES {
        c.insert(name.into(), json!({"@type": "@vocab", "@id": format!("odrl:{name}")}));
    }
    c.insert(
        "andSequence".into(),
        json!({"@id": "odrl:andSequence", "@container": "@list"}),
    );
    json!({ "@context": c })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn terms() -> Terms {
        Terms {
            purposes: vec!["logistics-planning".into(), "trade-finance".into()],
            not_before: 1_764_000_000_000,
            not_after: Some(1_795_536_000_000),
            max_uses: Some(100),
            actions: vec![Action::Query],
            columns: Some(vec!["departed".into(), "port".into(), "shipper".into(), "teu".into()]),
            row_filter: Some("teu > 0".into()),
            masks: vec![
                ColumnMask {
                    column: "shipper".into(),
                    mask: Mask::Hash,
                },
                ColumnMask {
                    column: "departed".into(),
                    mask: Mask::TruncateDate { unit: DateUnit::Month },
                },
                ColumnMask {
                    column: "teu".into(),
                    mask: Mask::Generalize { width: 100 },
                },
                ColumnMask {
                    column: "port".into(),
                    mask: Mask::Truncate { keep: 3 },
                },
            ],
            min_group_size: Some(5),
            row_cap: Some(10_000),
            transferable: true,
        }
    }

    fn offer() -> Policy {
        Policy {
            kind: PolicyKind::Offer,
            uid: Some("urn:liutong:offer:00ff:1".into()),
            target: Some("urn:liutong:dataset:00ff".into()),
            assigner: Some("urn:liutong:party:91310000MA1FL8XQ30".into()),
            assignee: None,
            automatic: Some(true),
            terms: terms(),
            facts: vec![("liutong:offerNumber".into(), json!(1))],
        }
    }

    #[test]
    fn export_then_import_gives_the_same_policy() {
        let text = export(&offer()).to_string();
        let back = import(&text).expect("import");
        assert_eq!(
            back,
            Policy {
                facts: vec![],
                ..offer()
            }
        );

        let mut both = offer();
        both.kind = PolicyKind::Agreement;
        both.terms.purposes.truncate(1);
        both.terms.actions = vec![Action::Download, Action::Query];
        both.assignee = Some("urn:liutong:party:91110000100000000X".into());
        both.automatic = None;
        let back = import(&export(&both).to_string()).expect("import");
        assert_eq!(back, Policy { facts: vec![], ..both });
    }

    #[test]
    fn reads_documents_written_with_the_w3c_context() {
        let doc = r#"{
          "@context": ["http://www.w3.org/ns/odrl.jsonld", {"liutong": "https://liutong.dev/ns/v1#"}],
          "@type": "Offer",
          "uid": "http://example.com/policy/1",
          "target": "urn:liutong:dataset:00ff",
          "assigner": "http://example.com/party/provider",
          "permission": [{
            "action": "use",
            "constraint": [
              {"leftOperand": "purpose", "operator": "isAnyOf", "rightOperand": ["research", "audit"]},
              {"leftOperand": "dateTime", "operator": "lt", "rightOperand": {"@value": "2027-01-01", "@type": "xsd:date"}},
              {"leftOperand": "count", "operator": "lteq", "rightOperand": 12},
              {"leftOperand": "liutong:rowCap", "operator": "lteq", "rightOperand": 50}
            ]
          }]
        }"#;
        let p = import(doc).expect("import");
        assert_eq!(p.kind, PolicyKind::Offer);
        assert_eq!(p.uid.as_deref(), Some("http://example.com/policy/1"));
        assert_eq!(p.target.as_deref(), Some("urn:liutong:dataset:00ff"));
        assert_eq!(p.terms.purposes, vec!["audit", "research"]);
        assert_eq!(p.terms.actions, vec![Action::Download, Action::Query]);
        assert_eq!(p.terms.not_before, 0);
        assert_eq!(p.terms.not_after, Some(1_798_761_600_000));
        assert_eq!(p.terms.max_uses, Some(12));
        assert_eq!(p.terms.row_cap, Some(50));
        assert!(!p.terms.transferable);
    }

    fn refused(doc: &str) -> Error {
        import(doc).expect_err("should be refused")
    }

    const CTX: &str = r#""@context": ["http://www.w3.org/ns/odrl.jsonld", {"liutong": "https://liutong.dev/ns/v1#"}]"#;

    fn with(permission: &str) -> String {
        format!(r#"{{ {CTX}, "@type": "Offer", "uid": "urn:x:1", "permission": [{permission}] }}"#)
    }

    const PURPOSE: &str = r#"{"leftOperand": "purpose", "operator": "eq", "rightOperand": "audit"}"#;

    #[test]
    fn refuses_what_it_cannot_enforce_naming_it() {
        let cases = [
            (
                with(&format!(
                    r#"{{"action": "use", "constraint": [{PURPOSE}, {{"leftOperand": "spatial", "operator": "eq", "rightOperand": "CN"}}]}}"#
                )),
                "odrl:spatial",
            ),
            (
                with(&format!(
                    r#"{{"action": "use", "constraint": [{PURPOSE}, {{"leftOperand": "count", "operator": "gteq", "rightOperand": 3}}]}}"#
                )),
                "odrl:count odrl:gteq",
            ),
            (
                with(&format!(r#"{{"action": "print", "constraint": [{PURPOSE}]}}"#)),
                "odrl:print",
            ),
            (
                with(&format!(
                    r#"{{"action": "use", "constraint": [{PURPOSE}], "duty": [{{"action": "compensate"}}]}}"#
                )),
                "odrl:duty",
            ),
            (
                with(&format!(
                    r#"{{"action": "use", "constraint": [{PURPOSE}, {{"or": [{PURPOSE}]}}]}}"#
                )),
                "odrl:or",
            ),
            (
                format!(
                    r#"{{ {CTX}, "@type": "Offer", "uid": "urn:x:1", "permission": [{{"action": "use", "constraint": [{PURPOSE}]}}], "prohibition": [{{"action": "sell"}}] }}"#
                ),
                "odrl:prohibition",
            ),
            (
                format!(
                    r#"{{ {CTX}, "@type": "Offer", "profile": "http://example.com/other", "uid": "urn:x:1", "permission": [{{"action": "use", "constraint": [{PURPOSE}]}}] }}"#
                ),
                "http://example.com/other",
            ),
            (
                format!(r#"{{ {CTX}, "@type": "Ticket", "uid": "urn:x:1", "permission": [] }}"#),
                "odrl:Ticket",
            ),
            (
                with(&format!(
                    r#"{{"action": "use", "constraint": [{PURPOSE}, {{"leftOperand": "liutong:mask", "operator": "eq", "rightOperand": {{"liutong:column": "a", "liutong:method": "shuffle"}}}}]}}"#
                )),
                "shuffle",
            ),
        ];
        for (doc, named) in cases {
            let e = refused(&doc);
            assert_eq!(e.code(), "policy.odrl_unsupported", "{doc}: {e}");
            assert!(e.to_string().contains(named), "{e} should name {named}");
        }
    }

    #[test]
    fn refuses_what_is_not_json_ld_or_not_a_policy() {
        let cases = [
            ("not json".to_string(), "not JSON"),
            // An undefined key would be dropped by a lenient processor.
            (
                format!(r#"{{ {CTX}, "@type": "Offer", "permision": [] }}"#),
                "permision",
            ),
            // A remote context that is not ODRL's is not fetched.
            (
                r#"{"@context": "https://example.com/ctx.jsonld", "@type": "Offer"}"#.to_string(),
                "https://example.com/ctx.jsonld",
            ),
            (
                r#"{"@context": {"odrl": "http://www.w3.org/ns/odrl/2/"}, "@id": 5, "@type": "odrl:Offer"}"#
                    .to_string(),
                "Invalid `@id`",
            ),
            (
                format!(r#"{{ {CTX}, "@type": "Asset", "uid": "urn:x:1" }}"#),
                "holds no odrl:Offer",
            ),
            (with(r#"{"action": "use"}"#), "no odrl:purpose"),
            (
                with(&format!(
                    r#"{{"action": "use", "constraint": [{PURPOSE}, {{"leftOperand": "dateTime", "operator": "lt", "rightOperand": "next tuesday"}}]}}"#
                )),
                "next tuesday",
            ),
            (
                with(&format!(r#"{{"action": "use", "constraint": [{PURPOSE}, {PURPOSE}]}}"#)),
                "constrained twice",
            ),
        ];
        for (doc, named) in cases {
            let e = refused(&doc);
            assert_eq!(e.code(), "policy.odrl_invalid", "{doc}: {e}");
            assert!(e.to_string().contains(named), "{e} should say {named}");
        }
        let big = format!("[{}]", "0,".repeat(MAX_DOCUMENT));
        assert_eq!(refused(&big).code(), "policy.odrl_invalid");
    }

    #[test]
    fn permissions_must_share_their_constraints() {
        let doc = with(&format!(
            r#"{{"action": "read", "constraint": [{PURPOSE}]}}, {{"action": "reproduce", "constraint": [{PURPOSE}, {{"leftOperand": "count", "operator": "lteq", "rightOperand": 2}}]}}"#
        ));
        assert_eq!(refused(&doc).code(), "policy.odrl_unsupported");
    }
}
