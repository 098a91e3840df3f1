//! `liutong audit …`: trace uses, SQL over the ledger, evidence bundles,
//! reports, and opening private uses. Every call is signed with the home's
//! key; the node answers what the caller's party may see.

use crate::audit::bundle::{Bundle, Subject, VerifiedBundle};
use crate::audit::{AuditCall, AuditOp, SignedAuditCall, TraceFilter, TracePage};
use crate::cli::{chain_genesis, NodeArg, Output};
use crate::client::Client;
use crate::genesis::Genesis;
use crate::home::{write_atomically, Home};
use crate::{Error, Result};
use clap::{Args, Subcommand};
use liutong_core::{format_utc, now_ms, parse_utc, CreditCode, Digest};
use serde_json::json;
use std::path::PathBuf;
use std::time::Instant;

#[derive(Subcommand, Debug)]
pub enum AuditCommand {
    /// Trace uses: access-log entries by dataset (all versions), party,
    /// grant, action and time, oldest first, with grant, parties, digests,
    /// bytes/rows, acknowledgement and block.
    Trace {
        #[command(flatten)]
        filter: FilterArgs,
        /// Most entries to show (every page is fetched up to this).
        #[arg(long, default_value_t = 1000)]
        limit: usize,
        #[command(flatten)]
        node: NodeArg,
    },
    /// Read-only SQL over the ledger's tables: parties, datasets, offers,
    /// grants, access_log, notarizations, blocks (see --tables).
    Sql {
        /// One SELECT statement.
        #[arg(required_unless_present = "tables")]
        sql: Option<String>,
        /// table, csv or json.
        #[arg(long, default_value = "table")]
        format: String,
        /// List the tables and their columns instead.
        #[arg(long)]
        tables: bool,
        #[command(flatten)]
        node: NodeArg,
    },
    /// Export an evidence bundle (liutong-evidence/2) for an entry, a grant
    /// or a trace: checked here, signed by you, verifiable offline with
    /// `liutong verify --bundle PATH --genesis PATH`.
    Bundle {
        /// One access-log entry (its request digest).
        #[arg(long, conflicts_with_all = ["grant", "dataset", "party", "action", "from", "to"])]
        entry: Option<String>,
        /// A grant's whole history and every use.
        #[arg(long, conflicts_with_all = ["dataset", "party", "action", "from", "to"])]
        grant: Option<String>,
        #[command(flatten)]
        filter: TraceOnlyArgs,
        /// Where to write the bundle.
        #[arg(long)]
        out: PathBuf,
        #[command(flatten)]
        node: NodeArg,
    },
    /// Write a trace as a self-contained HTML report (trace table and a
    /// timeline of uses per day by consumer) or as CSV.
    Report {
        #[command(flatten)]
        filter: FilterArgs,
        /// html or csv.
        #[arg(long, default_value = "html")]
        format: String,
        #[arg(long)]
        out: PathBuf,
        #[command(flatten)]
        node: NodeArg,
    },
    /// (auditor) Open a private access-log entry: decrypt the escrow opening
    /// sealed to you and check it against the entry's escrow tag, naming the
    /// grant, its holder and the use index.
    Open {
        /// The entry (its request digest, as `audit trace` shows it).
        entry: String,
        #[command(flatten)]
        node: NodeArg,
    },
}

/// What a trace selects.
#[derive(Args, Debug, Clone, Default)]
pub struct FilterArgs {
    /// A dataset id: every version.
    #[arg(long)]
    pub dataset: Option<String>,
    /// A credit code: entries where the party provided or received.
    #[arg(long)]
    pub party: Option<String>,
    /// A grant id.
    #[arg(long)]
    pub grant: Option<String>,
    #[command(flatten)]
    pub rest: TimeArgs,
}

/// A bundle's trace filter (its --grant is the grant subject).
#[derive(Args, Debug, Clone, Default)]
pub struct TraceOnlyArgs {
    #[arg(long)]
    pub dataset: Option<String>,
    #[arg(long)]
    pub party: Option<String>,
    #[command(flatten)]
    pub rest: TimeArgs,
}

#[derive(Args, Debug, Clone, Default)]
pub struct TimeArgs {
    /// download or query.
    #[arg(long)]
    pub action: Option<String>,
    /// Entries the ledger recorded at or after this time (2026-11-25,
    /// 2026-11-25T08:00:00Z or ms since the epoch).
    #[arg(long)]
    pub from: Option<String>,
    /// Entries recorded before this time.
    #[arg(long)]
    pub to: Option<String>,
}

impl FilterArgs {
    fn filter(&self) -> Result<TraceFilter> {
        let mut f = TraceOnlyArgs {
            dataset: self.dataset.clone(),
            party: self.party.clone(),
            rest: self.rest.clone(),
        }
        .filter()?;
        if let Some(g) = &self.grant {
            f.grant = Some(g.trim().parse::<crate::grants::GrantId>()?);
        }
        Ok(f)
    }
}

impl TraceOnlyArgs {
    fn filter(&self) -> Result<TraceFilter> {
        let time = |what: &str, t: &Option<String>| -> Result<Option<u64>> {
            t.as_deref()
                .map(|t| parse_utc(t).map_err(|e| Error::BadRequest(format!("--{what}: {e}"))))
                .transpose()
        };
        let f = TraceFilter {
            dataset: self
                .dataset
                .as_deref()
                .map(|d| {
                    d.trim()
                        .parse()
                        .map_err(|e| Error::BadRequest(format!("--dataset: {e}")))
                })
                .transpose()?,
            party: self
                .party
                .as_deref()
                .map(|p| CreditCode::parse(p.trim()).map_err(|e| Error::BadRequest(format!("--party: {e}"))))
                .transpose()?,
            grant: None,
            action: self
                .rest
                .action
                .as_deref()
                .map(|a| match a.trim() {
                    "download" => Ok(liutong_policies::Action::Download),
                    "query" => Ok(liutong_policies::Action::Query),
                    other => Err(Error::BadRequest(format!(
                        "--action: {other:?} is not an action (download or query)"
                    ))),
                })
                .transpose()?,
            from: time("from", &self.rest.from)?,
            to: time("to", &self.rest.to)?,
        };
        if let (Some(a), Some(b)) = (f.from, f.to) {
            if a >= b {
                return Err(Error::BadRequest("--from must be before --to".into()));
            }
        }
        Ok(f)
    }
}

/// Signs `op` with the home's key and posts it to `route`.
async fn call(home: &Home, client: &Client, route: &str, op: AuditOp) -> Result<Vec<u8>> {
    let identity = home.identity()?;
    let genesis = chain_genesis(home, client, false).await?;
    let call = SignedAuditCall::sign(
        AuditCall {
            chain_id: genesis.chain_id,
            signer: identity.signing.public_key(),
            time: now_ms(),
            op,
        },
        &identity.signing,
    );
    client.post_bytes(route, call.to_bytes()).await
}

fn json_of<T: serde::de::DeserializeOwned>(client: &Client, bytes: &[u8]) -> Result<T> {
    serde_json::from_slice(bytes)
        .map_err(|e| Error::Io(format!("node {} answered with unexpected JSON: {e}", client.url())))
}

/// Every page of a trace, up to `limit` entries.
pub async fn fetch_trace(home: &Home, client: &Client, filter: &TraceFilter, limit: usize) -> Result<TracePage> {
    let mut all: Option<TracePage> = None;
    let mut cursor = None;
    loop {
        let left = limit - all.as_ref().map_or(0, |p| p.entries.len());
        let op = AuditOp::Trace {
            filter: filter.clone(),
            cursor: cursor.take(),
            limit: left.min(crate::audit::MAX_PAGE) as u32,
        };
        let page: TracePage = json_of(client, &call(home, client, "/v1/audit/trace", op).await?)?;
        let next = page.next.clone();
        match &mut all {
            None => all = Some(page),
            Some(a) => {
                a.entries.extend(page.entries);
                a.parties.extend(page.parties);
                a.datasets.extend(page.datasets);
                a.next = page.next;
            }
        }
        let have = all.as_ref().map_or(0, |p| p.entries.len());
        match next {
            Some(n) if have < limit => {
                cursor = Some(hex::decode(n).map_err(|_| Error::Io("the node answered a malformed cursor".into()))?)
            }
            _ => break,
        }
    }
    all.ok_or_else(|| Error::Io("no trace page".into()))
}

pub async fn run(home: &Home, cmd: AuditCommand) -> Result<Output> {
    match cmd {
        AuditCommand::Trace { filter, limit, node } => {
            let client = Client::new(&node.node)?;
            let f = filter.filter()?;
            let page = fetch_trace(home, &client, &f, limit.max(1)).await?;
            Ok(trace_output(&f, &page))
        }
        AuditCommand::Sql {
            sql,
            format,
            tables,
            node,
        } => {
            if tables {
                return Ok(tables_output());
            }
            let sql = sql.ok_or_else(|| Error::BadRequest("give one SELECT statement".into()))?;
            let format: crate::query::Format = format.parse()?;
            if format == crate::query::Format::Arrow {
                return Err(Error::BadRequest("choose table, csv or json".into()));
            }
            let client = Client::new(&node.node)?;
            let started = Instant::now();
            let ipc = call(home, &client, "/v1/audit/sql", AuditOp::Sql { sql: sql.clone() }).await?;
            let batches = crate::query::read_ipc(&ipc)
                .map_err(|e| Error::Io(format!("the node's result is not Arrow IPC: {e}")))?;
            let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
            let text = crate::query::render(&batches, format)?;
            let json_rows = crate::query::render(&batches, crate::query::Format::Json)?;
            Ok(Output::ok(
                text,
                json!({
                    "sql": sql,
                    "rows": rows,
                    "result": serde_json::from_str::<serde_json::Value>(&json_rows).unwrap_or(serde_json::Value::Null),
                    "ms": started.elapsed().as_millis() as u64,
                }),
            ))
        }
        AuditCommand::Bundle {
            entry,
            grant,
            filter,
            out,
            node,
        } => {
            let subject = match (entry, grant) {
                (Some(e), _) => Subject::Entry {
                    entry: e.trim().parse::<Digest>()?,
                },
                (None, Some(g)) => Subject::Grant {
                    grant: g.trim().parse::<crate::grants::GrantId>()?,
                },
                (None, None) => {
                    let f = filter.filter()?;
                    if f == TraceFilter::default() {
                        return Err(Error::BadRequest(
                            "name --entry, --grant, or a trace (--dataset, --party, --action, --from, --to)".into(),
                        ));
                    }
                    Subject::Trace { filter: f }
                }
            };
            export_bundle(home, &node, subject, &out).await
        }
        AuditCommand::Report {
            filter,
            format,
            out,
            node,
        } => {
            let client = Client::new(&node.node)?;
            let f = filter.filter()?;
            let genesis = chain_genesis(home, &client, false).await?;
            let page = fetch_trace(home, &client, &f, crate::audit::MAX_TRACE).await?;
            let title = match &f.dataset {
                Some(d) => format!(
                    "Uses of dataset {}",
                    page.datasets
                        .get(&d.to_string())
                        .map_or(d.to_string(), |n| format!("{n} ({d})"))
                ),
                None => "Uses of data on the liutong ledger".to_string(),
            };
            let input = crate::audit::report::ReportInput {
                title,
                chain_id: genesis.chain_id.clone(),
                subject: format!("{}; visible to the caller: {}", f.describe(), page.visibility),
                generated_at: now_ms(),
                head_height: page.head,
                entries: &page.entries,
                names: &page.parties,
                datasets: &page.datasets,
            };
            let text = match format.as_str() {
                "html" => crate::audit::report::html(&input),
                "csv" => crate::audit::report::csv(&input),
                other => {
                    return Err(Error::BadRequest(format!(
                        "unknown format {other:?}: choose html or csv"
                    )))
                }
            };
            write_atomically(&out, text.as_bytes(), false)?;
            Ok(Output::ok(
                format!(
                    "wrote {} ({} entr{}, {} bytes, {format})",
                    out.display(),
                    page.entries.len(),
                    if page.entries.len() == 1 { "y" } else { "ies" },
                    text.len()
                ),
                json!({ "out": out, "entries": page.entries.len(), "format": format, "bytes": text.len() }),
            ))
        }
        AuditCommand::Open { entry, node } => crate::zk_cli::open_entry(home, entry, node).await,
    }
}

/// Fetches the bundle, verifies it here against the home's genesis, signs
/// it, verifies the signed file again, and writes it.
pub async fn export_bundle(home: &Home, node: &NodeArg, subject: Subject, out: &PathBuf) -> Result<Output> {
    let client = Client::new(&node.node)?;
    let genesis = chain_genesis(home, &client, false).await?;
    let identity = home.identity()?;
    let known = client.status().await?.height;
    let body = call(
        home,
        &client,
        "/v1/audit/bundle",
        AuditOp::Bundle {
            subject: subject.clone(),
        },
    )
    .await?;
    let mut bundle: Bundle = json_of(&client, &body)?;
    // Sign only what was asked for, proven against a head no older than the node had.
    if bundle.subject != subject {
        return Err(Error::BadEvidence(
            "the node answered a bundle for another subject".into(),
        ));
    }
    if bundle.head.height < known {
        return Err(Error::BadEvidence(format!(
            "the node answered a bundle proven at block {}, older than its head {known}",
            bundle.head.height
        )));
    }
    bundle.attest(&identity.signing, now_ms());
    let file = bundle.to_canonical_json();
    let started = Instant::now();
    let verified = crate::audit::bundle::verify(&file, &genesis)?;
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    write_atomically(out, &file, false)?;
    let mut o = bundle_output(&verified);
    o.text = format!(
        "wrote {} ({} bytes): {} entr{}, {} transactions, checked here in {ms:.1} ms\n{}",
        out.display(),
        file.len(),
        verified.entries.len(),
        if verified.entries.len() == 1 { "y" } else { "ies" },
        bundle.transactions.len(),
        o.text
    );
    o.json["out"] = json!(out);
    Ok(o)
}

/// `liutong verify --bundle` for a `liutong-evidence/2` file.
pub fn verify_bundle_file(file: &[u8], genesis: &Genesis) -> Result<Output> {
    let started = Instant::now();
    let v = crate::audit::bundle::verify(file, genesis)?;
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    let mut o = bundle_output(&v);
    o.text = format!("VERIFIED offline (bundle and genesis only, {ms:.1} ms)\n{}", o.text);
    o.json["verified"] = json!(true);
    o.json["ms"] = json!(ms);
    Ok(o)
}

fn bundle_output(v: &VerifiedBundle) -> Output {
    let mut text = format!(
        "  subject   {}\n  chain     {} (head block {} at {})\n  exported  by {} at {}\n  checks:",
        v.subject,
        v.chain_id,
        v.head_height,
        format_utc(v.head_time),
        v.exported_by,
        format_utc(v.exported_at)
    );
    for c in &v.checks {
        text.push_str(&format!("\n    ✔ {:>5} × {}", c.passed, c.check));
    }
    if !v.grant_events.is_empty() {
        text.push_str("\n  grant history:");
        for e in &v.grant_events {
            text.push_str(&format!(
                "\n    block {:>5}  {}  {:<14}  grant {}  by {}",
                e.height,
                format_utc(e.time),
                e.kind,
                e.grant,
                e.signer
            ));
        }
    }
    text.push_str(&format!("\n  entries ({}):", v.entries.len()));
    for e in v.entries.iter().take(20) {
        text.push_str(&format!(
            "\n    block {:>5}  {}  {:<8}  {:<14}  {} -> {}  dataset {} v{}  {} bytes",
            e.height,
            format_utc(e.logged_at),
            e.action,
            e.outcome,
            e.provider,
            e.consumer
                .as_ref()
                .map_or("(private: proven, not named)".to_string(), |c| c.to_string()),
            e.dataset,
            e.version,
            e.bytes
        ));
    }
    if v.entries.len() > 20 {
        text.push_str(&format!("\n    … and {} more (all in --json)", v.entries.len() - 20));
    }
    Output::ok(text, serde_json::to_value(v).unwrap_or_default())
}

fn trace_output(filter: &TraceFilter, page: &TracePage) -> Output {
    let name = |code: &str| {
        page.parties
            .get(code)
            .map_or(code.to_string(), |n| format!("{n} ({code})"))
    };
    let mut text = format!(
        "{} entr{} for {} (head block {}; you see {})",
        page.entries.len(),
        if page.entries.len() == 1 { "y" } else { "ies" },
        filter.describe(),
        page.head,
        page.visibility
    );
    for e in &page.entries {
        let dataset = page
            .datasets
            .get(&e.dataset.to_string())
            .map_or(e.dataset.to_string(), |n| format!("{n} ({})", e.dataset));
        text.push_str(&format!(
            "\n  {}  block {:>5}  {:<8} {:<14}  {} v{}\n    provider {}\n    consumer {}\n    grant    {}\n    request  {}\n    result   {}  {} bytes{}",
            format_utc(e.logged_at),
            e.height,
            e.action,
            e.outcome.as_str(),
            dataset,
            e.version,
            name(e.provider.as_str()),
            e.consumer.as_ref().map_or("(private: proven, not named; an auditor can open it)".to_string(), |c| name(c.as_str())),
            e.grant.map_or("(private)".to_string(), |g| g.to_string()),
            e.request,
            e.result,
            e.bytes,
            e.query.as_ref().map_or(String::new(), |q| format!(", {} row(s)", q.rows)),
        ));
    }
    if page.next.is_some() {
        text.push_str("\n  (more entries: raise --limit or narrow the trace)");
    }
    Output::ok(text, serde_json::to_value(page).unwrap_or_default())
}

fn tables_output() -> Output {
    let mut text = String::from("The ledger's tables (times are UTC timestamps; ids and digests lower-case hex):");
    let mut tables = serde_json::Map::new();
    for (name, schema) in crate::audit::sql::schemas() {
        let cols: Vec<String> = schema
            .fields()
            .iter()
            .map(|f| {
                format!(
                    "{} {}{}",
                    f.name(),
                    f.data_type(),
                    if f.is_nullable() { " (null)" } else { "" }
                )
            })
            .collect();
        text.push_str(&format!("\n  {name}\n    {}", cols.join(",\n    ")));
        tables.insert(name.to_string(), json!(cols));
    }
    Output::ok(text, serde_json::Value::Object(tables))
}
