//! `liutong offer …` and `liutong grant …`.

use crate::cli::{receipt_text, submit, NodeArg, Output};
use crate::client::Client;
use crate::grants::*;
use crate::home::Home;
use crate::machine::*;
use crate::standards::ImportedPolicy;
use crate::{Error, Result};
use clap::Subcommand;
use liutong_catalog::DatasetId;
use liutong_policies::{odrl, Terms};
use serde_json::json;
use std::path::{Path, PathBuf};

#[derive(Subcommand, Debug)]
pub enum OfferCommand {
    /// (provider) Attach an offer to one of your datasets.
    Add {
        dataset: String,
        /// The offer's terms: liutong terms JSON, or an ODRL 2.2 policy in
        /// JSON-LD (see the README's terms and ODRL sections).
        #[arg(long)]
        terms: PathBuf,
        /// Issue requests within the offer at once instead of deciding each
        /// (an ODRL offer may say so with `liutong:approval`).
        #[arg(long)]
        automatic: bool,
        #[command(flatten)]
        node: NodeArg,
    },
    /// A dataset's offers.
    List {
        dataset: String,
        /// As ODRL 2.2 `odrl:Offer` policies (JSON-LD).
        #[arg(long)]
        odrl: bool,
        #[command(flatten)]
        node: NodeArg,
    },
    /// (provider) Withdraw an offer: no new requests; grants keep their terms.
    Withdraw {
        dataset: String,
        offer: u32,
        #[command(flatten)]
        node: NodeArg,
    },
}

#[derive(Subcommand, Debug)]
pub enum GrantCommand {
    /// (consumer) Request a grant against an offer: by default the offer's
    /// terms, for one purpose.
    Request {
        dataset: String,
        #[arg(long)]
        offer: u32,
        /// One of the offer's purposes.
        #[arg(long)]
        purpose: Option<String>,
        /// Fewer uses than the offer allows.
        #[arg(long)]
        max_uses: Option<u64>,
        /// Ask for this many days from now (within the offer's window).
        #[arg(long)]
        days: Option<u64>,
        /// The requested terms instead (overrides the options above): liutong
        /// terms JSON or an ODRL policy in JSON-LD.
        #[arg(long)]
        terms: Option<PathBuf>,
        /// Private mode: uses of the grant are proven with a zero-knowledge
        /// proof instead of naming it, so the ledger and the access log do not
        /// show which grant (or consumer) made them. Keeps a secret in
        /// HOME/zk/secrets.json.
        #[arg(long)]
        private: bool,
        #[command(flatten)]
        node: NodeArg,
    },
    /// (provider) Issue a requested grant, with its terms or narrower ones.
    Issue {
        grant: String,
        /// Narrower terms than requested: liutong terms JSON or ODRL JSON-LD.
        #[arg(long)]
        terms: Option<PathBuf>,
        #[command(flatten)]
        node: NodeArg,
    },
    /// (provider) Reject a request.
    Reject {
        grant: String,
        #[arg(long, default_value = "")]
        reason: String,
        #[command(flatten)]
        node: NodeArg,
    },
    /// (provider) Revoke an active grant.
    Revoke {
        grant: String,
        #[arg(long, default_value = "")]
        reason: String,
        #[command(flatten)]
        node: NodeArg,
    },
    /// (holder) Pass a transferable grant to another consumer.
    Transfer {
        grant: String,
        #[arg(long)]
        to: String,
        #[command(flatten)]
        node: NodeArg,
    },
    /// One grant, its terms and its history.
    Show {
        grant: String,
        /// As an ODRL 2.2 `odrl:Agreement` (`odrl:Request` until issued), JSON-LD.
        #[arg(long)]
        odrl: bool,
        #[command(flatten)]
        node: NodeArg,
    },
    /// A dataset's grants, or a party's (as provider, requester or holder).
    List {
        #[arg(required_unless_present = "party")]
        dataset: Option<String>,
        /// A party's credit code instead of a dataset.
        #[arg(long, conflicts_with = "dataset")]
        party: Option<String>,
        #[command(flatten)]
        node: NodeArg,
    },
}

/// Terms from a file: liutong's terms JSON, or an ODRL 2.2 policy in
/// JSON-LD (known by its `@context`), with the approval an ODRL offer states.
fn read_terms(path: &Path) -> Result<(Terms, Option<Approval>)> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::Io(format!("reading {}: {e}", path.display())))?;
    let value: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| Error::BadRequest(format!("{}: {e}", path.display())))?;
    if value.get("@context").is_some() {
        let policy = ImportedPolicy::from(odrl::import(&text)?);
        return Ok((policy.terms, policy.approval));
    }
    let terms = serde_json::from_value(value).map_err(|e| Error::BadRequest(format!("{}: {e}", path.display())))?;
    Ok((terms, None))
}

pub async fn offer(home: &Home, cmd: OfferCommand) -> Result<Output> {
    match cmd {
        OfferCommand::Add {
            dataset,
            terms,
            automatic,
            node,
        } => {
            let client = Client::new(&node.node)?;
            let (terms, stated) = read_terms(&terms)?;
            let body = AddOffer {
                dataset: dataset.parse()?,
                terms,
                approval: if automatic {
                    Approval::Automatic
                } else {
                    stated.unwrap_or(Approval::Manual)
                },
            };
            let r = submit(home, &client, KIND_OFFER_ADD, &body).await?;
            let offer: OfferRecord = r.record()?;
            Ok(Output::ok(
                format!("{}\n{}", receipt_text("offer added", &r), describe_offer(&offer)),
                json!({ "receipt": r, "offer": offer }),
            ))
        }
        OfferCommand::List { dataset, odrl, node } => {
            let client = Client::new(&node.node)?;
            let dataset: DatasetId = dataset.parse()?;
            let offers = client.offers(&dataset).await?;
            if odrl {
                let mut docs = Vec::with_capacity(offers.len());
                for o in &offers {
                    docs.push(client.offer_odrl(&dataset, o.number).await?);
                }
                return Ok(Output::json_text(json!(docs)));
            }
            let text = if offers.is_empty() {
                "no offers".to_string()
            } else {
                offers.iter().map(describe_offer).collect::<Vec<_>>().join("\n")
            };
            Ok(Output::ok(text, json!(offers)))
        }
        OfferCommand::Withdraw { dataset, offer, node } => {
            let client = Client::new(&node.node)?;
            let body = WithdrawOffer {
                dataset: dataset.parse()?,
                offer,
            };
            let r = submit(home, &client, KIND_OFFER_WITHDRAW, &body).await?;
            Ok(Output::ok(receipt_text("offer withdrawn", &r), json!({ "receipt": r })))
        }
    }
}

pub async fn grant(home: &Home, cmd: GrantCommand) -> Result<Output> {
    match cmd {
        GrantCommand::Request {
            dataset,
            offer,
            purpose,
            max_uses,
            days,
            terms,
            private,
            node,
        } => {
            let client = Client::new(&node.node)?;
            let dataset: DatasetId = dataset.parse()?;
            let terms: Terms = match terms {
                Some(path) => read_terms(&path)?.0,
                None => {
                    let offered = client
                        .offers(&dataset)
                        .await?
                        .into_iter()
                        .find(|o| o.number == offer)
                        .ok_or_else(|| Error::BadRequest(format!("dataset {dataset} has no offer {offer}")))?
                        .terms;
                    requested_terms(&offered, purpose, max_uses, days)?
                }
            };
            let private = match private {
                false => None,
                true => {
                    crate::private::check_private_terms(&terms, terms.not_before)
                        .map_err(|r| Error::BadRequest(r.message))?;
                    let secret = liutong_zk::field::random();
                    let hash = crate::private::FieldHex::of(&liutong_zk::circuit::secret_hash(&secret));
                    home.keep_private_secret(&hash.to_string(), &crate::private::FieldHex::of(&secret).to_string())?;
                    Some(hash)
                }
            };
            let body = RequestGrant {
                dataset,
                offer,
                terms,
                private,
            };
            send(home, &client, KIND_GRANT_REQUEST, &body, "grant requested").await
        }
        GrantCommand::Issue { grant, terms, node } => {
            let terms = terms.map(|p| read_terms(&p).map(|t| t.0)).transpose()?;
            let body = IssueGrant {
                grant: grant.parse()?,
                terms,
            };
            send(home, &Client::new(&node.node)?, KIND_GRANT_ISSUE, &body, "grant issued").await
        }
        GrantCommand::Reject { grant, reason, node } => {
            end(home, KIND_GRANT_REJECT, &grant, reason, &node, "request rejected").await
        }
        GrantCommand::Revoke { grant, reason, node } => {
            end(home, KIND_GRANT_REVOKE, &grant, reason, &node, "grant revoked").await
        }
        GrantCommand::Transfer { grant, to, node } => {
            let body = TransferGrant {
                grant: grant.parse()?,
                to,
            };
            send(
                home,
                &Client::new(&node.node)?,
                KIND_GRANT_TRANSFER,
                &body,
                "grant transferred",
            )
            .await
        }
        GrantCommand::Show { grant, odrl, node } => {
            let client = Client::new(&node.node)?;
            if odrl {
                return Ok(Output::json_text(client.grant_odrl(&grant.parse()?).await?));
            }
            let g = client.grant(&grant.parse()?).await?;
            Ok(Output::ok(describe_grant(&g), json!(g)))
        }
        GrantCommand::List { dataset, party, node } => {
            let client = Client::new(&node.node)?;
            let grants = match (dataset, party) {
                (Some(d), _) => client.grants_of_dataset(&d.parse()?).await?,
                (None, Some(p)) => client.grants_of_party(&p).await?,
                (None, None) => return Err(Error::BadRequest("name a dataset or --party".into())),
            };
            let text = if grants.is_empty() {
                "no grants".to_string()
            } else {
                grants.iter().map(grant_line).collect::<Vec<_>>().join("\n")
            };
            Ok(Output::ok(text, json!(grants)))
        }
    }
}

/// `grant reject` and `grant revoke`.
async fn end(home: &Home, kind: &str, grant: &str, reason: String, node: &NodeArg, action: &str) -> Result<Output> {
    let body = EndGrant {
        grant: grant.parse()?,
        reason,
    };
    send(home, &Client::new(&node.node)?, kind, &body, action).await
}

/// Submits a grant transaction and shows the grant as it now is.
async fn send(
    home: &Home,
    client: &Client,
    kind: &str,
    body: &impl borsh::BorshSerialize,
    action: &str,
) -> Result<Output> {
    let r = submit(home, client, kind, body).await?;
    let g: GrantRecord = r.record()?;
    let view = GrantView::at(g, liutong_core::now_ms());
    Ok(Output::ok(
        format!("{}\n{}", receipt_text(action, &r), describe_grant(&view)),
        json!({ "receipt": r, "grant": view }),
    ))
}

/// The offer's terms narrowed to one purpose, and optionally to fewer uses
/// and a shorter window.
fn requested_terms(offer: &Terms, purpose: Option<String>, max_uses: Option<u64>, days: Option<u64>) -> Result<Terms> {
    let purpose = match purpose {
        Some(p) => p,
        None if offer.purposes.len() == 1 => offer.purposes[0].clone(),
        None => {
            return Err(Error::BadRequest(format!(
                "--purpose is required: the offer accepts {}",
                offer.purposes.join(", ")
            )))
        }
    };
    let now = liutong_core::now_ms();
    let not_before = offer.not_before.max(now);
    let not_after = match (days, offer.not_after) {
        (Some(d), end) => {
            let asked = not_before.saturating_add(d.saturating_mul(86_400_000));
            Some(end.map_or(asked, |e| e.min(asked)))
        }
        (None, Some(end)) => Some(end),
        (None, None) => {
            return Err(Error::BadRequest(
                "the offer is open-ended: say how long with --days".into(),
            ))
        }
    };
    let max_uses = match (max_uses, offer.max_uses) {
        (Some(m), _) => Some(m),
        (None, Some(m)) => Some(m),
        (None, None) => {
            return Err(Error::BadRequest(
                "the offer has no use limit: say how many with --max-uses".into(),
            ))
        }
    };
    Ok(Terms {
        purposes: vec![purpose],
        not_before,
        not_after,
        max_uses,
        // The offer's filter applies to every grant under it; the grant's
        // own filter is what it adds (none by default).
        row_filter: None,
        ..offer.clone()
    })
}

fn describe_terms(t: &Terms) -> String {
    let mut lines = vec![
        format!("  purposes     {}", t.purposes.join(", ")),
        format!(
            "  valid        {} .. {}",
            liutong_core::format_utc(t.not_before),
            t.not_after.map_or("open-ended".to_string(), liutong_core::format_utc)
        ),
        format!(
            "  max uses     {}",
            t.max_uses.map_or("unlimited".to_string(), |m| m.to_string())
        ),
        format!(
            "  actions      {}",
            t.actions.iter().map(|a| a.as_str()).collect::<Vec<_>>().join(", ")
        ),
    ];
    if let Some(c) = &t.columns {
        lines.push(format!("  columns      {}", c.join(", ")));
    }
    if let Some(f) = &t.row_filter {
        lines.push(format!("  rows where   {f}"));
    }
    for m in &t.masks {
        lines.push(format!("  mask         {}: {:?}", m.column, m.mask));
    }
    if let Some(k) = t.min_group_size {
        lines.push(format!("  aggregates   only, groups of at least {k}"));
    }
    if let Some(c) = t.row_cap {
        lines.push(format!("  row cap      {c}"));
    }
    lines.push(format!("  transferable {}", if t.transferable { "yes" } else { "no" }));
    lines.join("\n")
}

fn describe_offer(o: &OfferRecord) -> String {
    format!(
        "offer {} on dataset {} ({}{})\n{}",
        o.number,
        o.dataset,
        match o.approval {
            Approval::Automatic => "automatic approval",
            Approval::Manual => "the provider decides each request",
        },
        if o.withdrawn { ", WITHDRAWN" } else { "" },
        describe_terms(&o.terms)
    )
}

fn grant_line(g: &GrantView) -> String {
    format!(
        "{}  {:<9}  offer {}  holder {}  uses {}",
        g.grant.id, g.state, g.grant.offer, g.grant.holder, g.grant.uses
    )
}

pub fn describe_grant(g: &GrantView) -> String {
    let mut t = format!(
        "grant {} on dataset {}: {}\n  provider     {}\n  holder       {}\n{}",
        g.grant.id,
        g.grant.dataset,
        g.state.to_uppercase(),
        g.grant.provider,
        g.grant.holder,
        describe_terms(&g.grant.terms)
    );
    for e in &g.grant.history {
        t.push_str(&format!(
            "\n  {:<12} block {} {}{}",
            e.event,
            e.height,
            liutong_core::format_utc(e.timestamp),
            if e.note.is_empty() {
                String::new()
            } else {
                format!(": {}", e.note)
            }
        ));
    }
    t
}
