//! The `liutong` command line. Every command takes `--json` for
//! machine-readable output; keys and config live in `--home DIR` (default
//! `$LIUTONG_HOME` or `~/.liutong`). Client commands sign with the home's keys
//! and talk to a node's HTTP API.

use crate::client::{sign_tx, Client};
use crate::evidence::{build_bundle, verify_bundle, EvidenceBundle, VerifiedEvidence};
use crate::genesis::{validate_chain_id, Genesis, GenesisOperator, GENESIS_FORMAT};
use crate::home::{write_atomically, Home, Identity};
use crate::machine::*;
use crate::notary::Notarize;
use crate::party::*;
use crate::wire::ReceiptView;
use crate::{Error, Result};
use clap::{Args, Parser, Subcommand};
use liutong_core::{now_ms, CreditCode, Digest};
use liutong_ledger::{ChainReport, LedgerParams};
use serde_json::json;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

#[derive(Parser, Debug)]
#[command(
    name = "liutong",
    version,
    about = "liutong: a data-element exchange for a consortium"
)]
pub struct Cli {
    /// Print machine-readable JSON instead of text.
    #[arg(long, global = true)]
    pub json: bool,
    /// Home directory with keys, genesis and store [default: $LIUTONG_HOME or ~/.liutong].
    #[arg(long, global = true)]
    pub home: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the end-to-end demo: an orderer and two party nodes on loopback.
    Demo {
        /// Leave the nodes running and print their URLs and homes.
        #[arg(long)]
        keep: bool,
    },
    /// Create an operator home: its party keys, the orderer key and a genesis.
    Init(InitArgs),
    /// Run a node: the orderer (operator home) or a follower (--follow).
    Node {
        #[arg(long, default_value = "127.0.0.1:7700")]
        listen: SocketAddr,
        /// Follow the orderer at this URL and keep a full, verified copy.
        #[arg(long)]
        follow: Option<String>,
        /// Seconds to wait for a consumer's receipt after a delivery before
        /// logging it as unacknowledged.
        #[arg(long, default_value_t = 300, value_parser = clap::value_parser!(u64).range(1..=86_400))]
        receipt_timeout: u64,
        /// Seconds one query may run on this node.
        #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=86_400))]
        query_timeout: u64,
        /// MiB of memory one query may use on this node.
        #[arg(long, default_value_t = 1024, value_parser = clap::value_parser!(u64).range(16..=1_048_576))]
        query_memory: u64,
        /// MiB of result one query may send back.
        #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u64).range(1..=65_536))]
        query_max_result: u64,
        /// Queries (audit SQL included) this node runs at once.
        #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u64).range(1..=1024))]
        query_concurrency: u64,
        /// Queries one caller may run at once on this node (all private
        /// requests count as one caller).
        #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u64).range(1..=64))]
        query_per_caller: u64,
        /// Seconds a delivery or query result stream waits for the consumer
        /// to read its next frame before the node cuts it.
        #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=3_600))]
        stream_write_timeout: u64,
    },
    /// Manage parties: keys, registration and standing.
    #[command(subcommand)]
    Party(PartyCommand),
    /// Datasets in the catalog: register, new versions, delist, show, search.
    #[command(subcommand)]
    Dataset(crate::dataset_cli::DatasetCommand),
    /// Offers on your datasets: the widest terms you will grant.
    #[command(subcommand)]
    Offer(crate::grant_cli::OfferCommand),
    /// Grants (usage rights): request, issue, reject, revoke, transfer, show, list.
    #[command(subcommand)]
    Grant(crate::grant_cli::GrantCommand),
    /// Fetch a dataset under a grant from the provider's node, end-to-end
    /// encrypted and verified against the on-chain commitment.
    Fetch(crate::fetch::FetchArgs),
    /// Run SQL on a provider's table under a grant: it runs on the
    /// provider's node and only the permitted result comes back, encrypted.
    Query(crate::query::QueryArgs),
    /// The on-chain access log: who received which data, when, under which grant.
    #[command(subcommand)]
    Access(crate::fetch::AccessCommand),
    /// Auditing: trace uses, SQL over the ledger, evidence bundles, reports,
    /// opening private uses.
    #[command(subcommand)]
    Audit(crate::audit_cli::AuditCommand),
    /// Zero-knowledge keys and proofs: export for snarkjs.
    #[command(subcommand)]
    Zk(crate::zk_cli::ZkCommand),
    /// Notarize files: put their SHA-256 digests on the ledger.
    Notarize {
        #[arg(required = true)]
        files: Vec<PathBuf>,
        #[command(flatten)]
        node: NodeArg,
        #[arg(long)]
        media_type: Option<String>,
        #[arg(long)]
        note: Option<String>,
    },
    /// Check whether and when a file was notarized, online (--node) or offline (--bundle).
    Verify(VerifyArgs),
    /// Whole-chain checks.
    #[command(subcommand)]
    Chain(ChainCommand),
    /// Benchmarks; each prints one JSON object on its last line.
    #[command(subcommand)]
    Bench(crate::bench::BenchCommand),
    #[command(subcommand, hide = true)]
    Debug(DebugCommand),
}

#[derive(Args, Debug)]
pub struct NodeArg {
    /// Base URL of a node's HTTP API.
    #[arg(long, env = "LIUTONG_NODE", default_value = "http://127.0.0.1:7700")]
    pub node: String,
}

#[derive(Args, Debug)]
pub struct InitArgs {
    #[arg(long, default_value = "liutong-local")]
    pub chain_id: String,
    /// The operator's legal name.
    #[arg(long, default_value = "Beijing Demo Data Exchange Co., Ltd.")]
    pub name: String,
    /// The operator's unified social credit code (GB 32100-2015).
    #[arg(long, default_value = "91110108MA01LTEX01")]
    pub credit_code: String,
    #[arg(long, default_value = "operator@exchange.example")]
    pub contact: String,
    /// The URL the operator's node will be reached at.
    #[arg(long, default_value = "http://127.0.0.1:7700")]
    pub endpoint: String,
}

#[derive(Subcommand, Debug)]
pub enum PartyCommand {
    /// Create this home's signing (Ed25519) and encryption (X25519) keys.
    Keygen,
    /// Apply for membership, signed with this home's keys.
    Register {
        #[command(flatten)]
        node: NodeArg,
        #[arg(long)]
        name: String,
        #[arg(long)]
        credit_code: String,
        #[arg(long)]
        contact: String,
        /// Comma-separated: provider, consumer, auditor.
        #[arg(long, value_delimiter = ',', required = true)]
        roles: Vec<String>,
        /// The URL of this party's own node.
        #[arg(long)]
        endpoint: String,
    },
    /// (operator) Approve a pending application.
    Approve(StandingArgs),
    /// (operator) Reject a pending application.
    Reject(StandingArgs),
    /// (operator) Suspend an active party.
    Suspend(StandingArgs),
    /// (operator) Reinstate a suspended party.
    Reinstate(StandingArgs),
    /// (operator) Expel a party.
    Expel(StandingArgs),
    /// Replace this home's keys; the old signing key stops working.
    RotateKeys {
        #[command(flatten)]
        node: NodeArg,
    },
    /// List every party and its standing.
    List {
        #[command(flatten)]
        node: NodeArg,
    },
}

#[derive(Args, Debug)]
pub struct StandingArgs {
    /// The party's unified social credit code.
    pub credit_code: String,
    #[command(flatten)]
    pub node: NodeArg,
    #[arg(long, default_value = "")]
    pub reason: String,
}

#[derive(Args, Debug)]
pub struct VerifyArgs {
    /// The file to check (optional with --bundle).
    pub file: Option<PathBuf>,
    /// Ask this node (online verification; the proof is still checked here).
    #[arg(long, env = "LIUTONG_NODE")]
    pub node: Option<String>,
    /// Also write an evidence bundle (liutong-evidence/1) here.
    #[arg(long)]
    pub bundle_out: Option<PathBuf>,
    /// Verify this evidence bundle offline instead of asking a node.
    #[arg(long, conflicts_with_all = ["node", "bundle_out"])]
    pub bundle: Option<PathBuf>,
    /// The chain's genesis document (required with --bundle).
    #[arg(long, requires = "bundle")]
    pub genesis: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
pub enum ChainCommand {
    /// Re-verify a stopped node's whole store.
    Verify,
}

#[derive(Subcommand, Debug)]
pub enum DebugCommand {
    /// Commit transactions in a loop, printing `ack <tx id>` after each is durable (for crash tests).
    CrashWriter,
}

/// What a command prints: human text, and the JSON object for `--json`.
pub struct Output {
    pub text: String,
    pub json: serde_json::Value,
    /// False when the command ran but its answer is negative (verification failed).
    pub ok: bool,
}

impl Output {
    pub(crate) fn ok(text: String, json: serde_json::Value) -> Output {
        Output { text, json, ok: true }
    }

    /// A document whose text form is its pretty JSON (JSON-LD exports).
    pub(crate) fn json_text(json: serde_json::Value) -> Output {
        let text = serde_json::to_string_pretty(&json).unwrap_or_default();
        Output { text, json, ok: true }
    }
}

pub async fn run(cli: Cli) -> Result<Output> {
    let home = Home::new(cli.home.clone().unwrap_or_else(Home::default_dir));
    match cli.command {
        Command::Demo { keep } => Box::pin(crate::demo::run(keep, cli.json)).await,
        Command::Init(a) => init(&home, &a),
        Command::Node {
            listen,
            follow,
            receipt_timeout,
            query_timeout,
            query_memory,
            query_max_result,
            query_concurrency,
            query_per_caller,
            stream_write_timeout,
        } => {
            let queries = crate::serve::QueryConfig {
                timeout: std::time::Duration::from_secs(query_timeout),
                memory_bytes: usize::try_from(query_memory << 20).unwrap_or(usize::MAX),
                max_result_bytes: query_max_result << 20,
                concurrent: usize::try_from(query_concurrency).unwrap_or(usize::MAX),
                per_caller: usize::try_from(query_per_caller).unwrap_or(usize::MAX),
                write_timeout: std::time::Duration::from_secs(stream_write_timeout),
            };
            run_node(
                home,
                listen,
                follow,
                std::time::Duration::from_secs(receipt_timeout),
                queries,
            )
            .await
        }
        Command::Party(p) => party(&home, p).await,
        Command::Dataset(d) => crate::dataset_cli::run(&home, d).await,
        Command::Offer(o) => crate::grant_cli::offer(&home, o).await,
        Command::Grant(g) => crate::grant_cli::grant(&home, g).await,
        Command::Fetch(f) => crate::fetch::fetch(&home, f).await,
        Command::Query(q) => crate::query::query(&home, q).await,
        Command::Access(a) => crate::fetch::access(a).await,
        Command::Audit(a) => crate::audit_cli::run(&home, a).await,
        Command::Zk(a) => crate::zk_cli::zk(&home, a).await,
        Command::Notarize {
            files,
            node,
            media_type,
            note,
        } => {
            let client = Client::new(&node.node)?;
            let mut out = Vec::new();
            let mut text = String::new();
            for f in files {
                let r = notarize_file(&home, &client, &f, media_type.clone(), note.clone()).await?;
                text.push_str(&r.describe());
                text.push('\n');
                out.push(r);
            }
            Ok(Output::ok(text.trim_end().to_string(), json!({ "notarized": out })))
        }
        Command::Verify(a) => verify(&home, a).await,
        Command::Chain(ChainCommand::Verify) => {
            let report = chain_verify(&home)?;
            let text = describe_chain_report(&report);
            Ok(Output {
                ok: report.ok(),
                text,
                json: serde_json::to_value(&report).expect("report serializes"),
            })
        }
        Command::Bench(b) => crate::bench::run(b).await,
        Command::Debug(DebugCommand::CrashWriter) => crash_writer(&home).await,
    }
}

/// Creates an operator home and its genesis.
pub fn init(home: &Home, a: &InitArgs) -> Result<Output> {
    validate_chain_id(&a.chain_id)?;
    let credit_code = CreditCode::parse(&a.credit_code)?;
    if home.has_genesis() || home.has_identity() {
        return Err(Error::Home(format!("{} is already initialized", home.dir().display())));
    }
    // The use circuit's Groth16 keys, from the OS's randomness; the
    // trapdoor never leaves `setup`.
    let pk = liutong_zk::setup(&mut rand::rngs::OsRng).map_err(|e| Error::Io(format!("zk setup: {e}")))?;
    let identity = home.create_identity()?;
    let orderer = home.create_orderer_key()?;
    let genesis = Genesis {
        format: GENESIS_FORMAT.into(),
        chain_id: a.chain_id.clone(),
        created_ms: now_ms(),
        orderer: orderer.public_key(),
        params: LedgerParams::default(),
        catalog: Default::default(),
        operator: GenesisOperator {
            legal_name: a.name.clone(),
            credit_code,
            contact: a.contact.clone(),
            signing_key: identity.signing.public_key(),
            encryption_key: identity.encryption.public_key(),
            endpoint: a.endpoint.clone(),
        },
        zk: crate::genesis::ZkParams::of(&pk.vk),
    };
    genesis.validate()?;
    home.write_genesis(&genesis)?;
    home.write_proving_key(&liutong_zk::groth16::pk_bytes(&pk))?;
    let digest = genesis.digest();
    Ok(Output::ok(
        format!(
            "initialized operator home {}\n  chain id        {}\n  genesis digest  {digest}\n  orderer key     {}\n  operator key    {}\nstart the orderer with: liutong node --home {}",
            home.dir().display(),
            genesis.chain_id,
            genesis.orderer,
            identity.signing.public_key(),
            home.dir().display()
        ),
        json!({
            "home": home.dir(),
            "chain_id": genesis.chain_id,
            "genesis_digest": digest,
            "orderer_key": genesis.orderer,
            "operator_key": identity.signing.public_key(),
        }),
    ))
}

async fn run_node(
    home: Home,
    listen: SocketAddr,
    follow: Option<String>,
    receipt_timeout: std::time::Duration,
    queries: crate::serve::QueryConfig,
) -> Result<Output> {
    let node = crate::node::start(crate::node::NodeConfig {
        home,
        listen,
        follow,
        receipt_timeout,
        queries,
    })
    .await?;
    // One line a script can wait for.
    println!(
        "liutong node listening on {} ({}, chain {}, height {})",
        node.url,
        match &node.role {
            crate::node::NodeRole::Orderer => "orderer".to_string(),
            crate::node::NodeRole::Follower(u) => format!("following {u}"),
        },
        node.genesis.chain_id,
        node.ledger.height()
    );
    shutdown_signal().await;
    let height = node.ledger.height();
    node.stop().await;
    Ok(Output::ok(
        format!("node stopped at height {height}"),
        json!({ "stopped_at_height": height }),
    ))
}

/// Ctrl-C, or SIGTERM (how service managers stop a node).
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

/// The genesis a client signs or verifies for: the home's, checked against
/// the node's; or, for a home that has none yet, the node's (kept in the home
/// when `keep`, as a party's first contact with its chain).
/// `liutong --home HOME ARGS…` as parsed arguments (for in-process runs:
/// the demo and the benchmarks).
pub(crate) fn in_home(home: &Home, args: &[&str]) -> Result<Cli> {
    let mut all = vec!["liutong".to_string(), "--home".into(), home.dir().display().to_string()];
    all.extend(args.iter().map(|s| s.to_string()));
    <Cli as clap::Parser>::try_parse_from(all).map_err(|e| Error::BadRequest(e.to_string()))
}

pub async fn chain_genesis(home: &Home, client: &Client, keep: bool) -> Result<Genesis> {
    if home.has_genesis() {
        let g = home.genesis()?;
        let status = client.status().await?;
        if status.genesis_digest != g.digest().to_string() {
            return Err(Error::BadGenesis(format!(
                "{} belongs to genesis {}, but {} serves genesis {}",
                home.dir().display(),
                g.digest(),
                client.url(),
                status.genesis_digest
            )));
        }
        Ok(g)
    } else {
        let g = client.genesis().await?;
        if keep {
            home.write_genesis(&g)?;
        }
        Ok(g)
    }
}

pub(crate) async fn submit(
    home: &Home,
    client: &Client,
    kind: &str,
    body: &impl borsh::BorshSerialize,
) -> Result<ReceiptView> {
    let identity = home.identity()?;
    let genesis = chain_genesis(home, client, true).await?;
    client
        .submit(&sign_tx(&genesis.chain_id, kind, body, &identity.signing))
        .await
}

pub(crate) fn receipt_text(action: &str, r: &ReceiptView) -> String {
    match r.height {
        Some(h) => format!("{action}: committed in block {h} (tx {})", r.tx_id),
        None => format!("{action}: already recorded (tx {})", r.tx_id),
    }
}

async fn party(home: &Home, cmd: PartyCommand) -> Result<Output> {
    let standing = |kind: &'static str, a: StandingArgs| (kind, a);
    let (kind, a) = match cmd {
        PartyCommand::Keygen => {
            let id = home.create_identity()?;
            return Ok(Output::ok(
                format!(
                    "created keys in {}\n  signing key     {}\n  encryption key  {}",
                    home.dir().display(),
                    id.signing.public_key(),
                    id.encryption.public_key()
                ),
                json!({ "home": home.dir(), "signing_key": id.signing.public_key(), "encryption_key": id.encryption.public_key() }),
            ));
        }
        PartyCommand::Register {
            node,
            name,
            credit_code,
            contact,
            roles,
            endpoint,
        } => {
            let client = Client::new(&node.node)?;
            // Refuse locally what the ledger would refuse, with the same codes.
            CreditCode::parse(&credit_code)?;
            let roles = roles.iter().map(|r| r.parse()).collect::<Result<Vec<Role>>>()?;
            let identity = home.identity()?;
            let body = RegisterParty {
                legal_name: name,
                credit_code,
                contact,
                roles,
                encryption_key: identity.encryption.public_key(),
                endpoint,
            };
            let r = submit(home, &client, KIND_REGISTER, &body).await?;
            return Ok(Output::ok(
                format!("{}\nthe operator must now approve it", receipt_text("registration", &r)),
                serde_json::to_value(&r).expect("receipt serializes"),
            ));
        }
        PartyCommand::Approve(a) => standing(KIND_APPROVE, a),
        PartyCommand::Reject(a) => standing(KIND_REJECT, a),
        PartyCommand::Suspend(a) => standing(KIND_SUSPEND, a),
        PartyCommand::Reinstate(a) => standing(KIND_REINSTATE, a),
        PartyCommand::Expel(a) => standing(KIND_EXPEL, a),
        PartyCommand::RotateKeys { node } => {
            let client = Client::new(&node.node)?;
            let r = rotate_keys(home, &client).await?;
            return Ok(Output::ok(
                receipt_text("key rotation", &r),
                serde_json::to_value(&r).expect("receipt serializes"),
            ));
        }
        PartyCommand::List { node } => {
            let parties = Client::new(&node.node)?.parties().await?;
            let mut text = format!("{:<20} {:<10} {:<28} legal name\n", "credit code", "status", "roles");
            for p in &parties {
                let roles: Vec<String> = p
                    .profile
                    .roles
                    .iter()
                    .map(|r| format!("{r:?}").to_lowercase())
                    .collect();
                text.push_str(&format!(
                    "{:<20} {:<10} {:<28} {}\n",
                    p.profile.credit_code,
                    format!("{:?}", p.status).to_lowercase(),
                    roles.join(","),
                    p.profile.legal_name
                ));
            }
            return Ok(Output::ok(text.trim_end().into(), json!({ "parties": parties })));
        }
    };
    CreditCode::parse(&a.credit_code)?;
    let client = Client::new(&a.node.node)?;
    let body = ChangeStanding {
        credit_code: a.credit_code.clone(),
        reason: a.reason,
    };
    let r = submit(home, &client, kind, &body).await?;
    Ok(Output::ok(
        receipt_text(&format!("{} {}", &kind[6..], a.credit_code), &r),
        serde_json::to_value(&r).expect("receipt serializes"),
    ))
}

/// Rotates the home's keys: the new key proves possession, the old key signs
/// the rotation; the home keeps the old identity under `retired/`.
pub async fn rotate_keys(home: &Home, client: &Client) -> Result<ReceiptView> {
    let old = home.identity()?;
    let new = Identity::generate();
    let body = RotateKeys::new(&old.signing.public_key(), &new.signing, new.encryption.public_key());
    let r = submit(home, client, KIND_ROTATE_KEYS, &body).await?;
    home.replace_identity(&new)?;
    Ok(r)
}

/// The answer to notarizing one file.
#[derive(serde::Serialize)]
pub struct NotarizedFile {
    pub file: PathBuf,
    pub digest: Digest,
    pub size: u64,
    pub tx_id: String,
    pub height: u64,
    /// False when the digest was already notarized (the existing record is shown).
    pub new: bool,
    pub record: serde_json::Value,
}

impl NotarizedFile {
    pub fn describe(&self) -> String {
        if self.new {
            format!(
                "{}  sha256 {}  notarized in block {} (tx {})",
                self.file.display(),
                self.digest,
                self.height,
                self.tx_id
            )
        } else {
            format!(
                "{}  sha256 {}  was already notarized in block {} (tx {})",
                self.file.display(),
                self.digest,
                self.height,
                self.tx_id
            )
        }
    }
}

pub fn file_digest(path: &Path) -> Result<(Digest, u64)> {
    let f = std::fs::File::open(path).map_err(|e| Error::Io(format!("cannot open {}: {e}", path.display())))?;
    Digest::of_reader(std::io::BufReader::new(f)).map_err(|e| Error::Io(format!("reading {}: {e}", path.display())))
}

pub async fn notarize_file(
    home: &Home,
    client: &Client,
    path: &Path,
    media_type: Option<String>,
    note: Option<String>,
) -> Result<NotarizedFile> {
    let (digest, size) = file_digest(path)?;
    let body = Notarize {
        digest,
        file_name: path.file_name().map(|n| n.to_string_lossy().into_owned()),
        media_type,
        note,
    };
    let r = submit(home, client, KIND_NOTARIZE, &body).await?;
    let record: serde_json::Value = r.record()?;
    let height = r
        .height
        .or_else(|| record.get("height").and_then(|h| h.as_u64()))
        .unwrap_or(0);
    let tx_id = match r.status {
        crate::wire::ReceiptStatus::Committed => r.tx_id.clone(),
        crate::wire::ReceiptStatus::Existing => record
            .get("tx_id")
            .and_then(|t| t.as_str())
            .unwrap_or_default()
            .to_string(),
    };
    Ok(NotarizedFile {
        file: path.to_path_buf(),
        digest,
        size,
        tx_id,
        height,
        new: r.status == crate::wire::ReceiptStatus::Committed,
        record,
    })
}

fn describe_evidence(v: &VerifiedEvidence) -> String {
    let mut t = format!(
        "NOTARIZED: {}\n  by party        {} ({})\n  signing key     {}\n  transaction     {}\n  proven in block {} (header signed by the orderer at {})",
        v.digest.map(|d| d.to_string()).unwrap_or_default(),
        v.party_name,
        v.party,
        v.signer,
        v.tx_id,
        v.height,
        liutong_core::format_utc(v.header_timestamp)
    );
    if let Some(n) = &v.file_name {
        t.push_str(&format!("\n  file name       {n}"));
    }
    if let Some(n) = &v.note {
        t.push_str(&format!("\n  note            {n}"));
    }
    t
}

/// `verify`: online (the node gives the proof, we check it here) or offline from a bundle.
pub async fn verify(home: &Home, a: VerifyArgs) -> Result<Output> {
    let digest = match &a.file {
        Some(f) => Some(file_digest(f)?.0),
        None => None,
    };
    if let Some(bundle_path) = &a.bundle {
        let genesis_path = a
            .genesis
            .as_ref()
            .ok_or_else(|| Error::BadRequest("--bundle needs --genesis PATH".into()))?;
        let genesis = Genesis::load(genesis_path)?;
        let text = std::fs::read_to_string(bundle_path)
            .map_err(|e| Error::Io(format!("cannot read {}: {e}", bundle_path.display())))?;
        let format = serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| v.get("format").and_then(|f| f.as_str()).map(str::to_string));
        if format.as_deref() == Some(crate::audit::bundle::BUNDLE_FORMAT) {
            if a.file.is_some() {
                return Err(Error::BadRequest(
                    "a FILE goes with a notarization bundle (liutong-evidence/1), not an audit bundle".into(),
                ));
            }
            return crate::audit_cli::verify_bundle_file(text.as_bytes(), &genesis);
        }
        let bundle: EvidenceBundle =
            serde_json::from_str(&text).map_err(|e| Error::BadEvidence(format!("{}: {e}", bundle_path.display())))?;
        let v = verify_bundle(&bundle, &genesis)?;
        return Ok(evidence_output(
            v,
            digest,
            "offline, from the bundle and the genesis only",
        ));
    }
    let digest = digest.ok_or_else(|| Error::BadRequest("give a FILE to verify, or --bundle".into()))?;
    let node = a
        .node
        .ok_or_else(|| Error::BadRequest("give --node URL (online) or --bundle and --genesis (offline)".into()))?;
    let client = Client::new(&node)?;
    let record = match client.notarization(&digest).await {
        Ok(r) => r,
        Err(Error::Remote { code, .. }) if code == "not_found" => {
            return Ok(Output {
                ok: false,
                text: format!("NOT NOTARIZED: no notarization of sha256 {digest} is on the ledger"),
                json: json!({ "verified": false, "digest": digest, "reason": "not_found" }),
            });
        }
        Err(e) => return Err(e),
    };
    let genesis = chain_genesis(home, &client, false).await?;
    let bundle = build_bundle(&client, &genesis, &record.tx_id).await?;
    let v = verify_bundle(&bundle, &genesis)?;
    if let Some(out) = &a.bundle_out {
        let text = serde_json::to_string_pretty(&bundle).expect("bundle serializes");
        write_atomically(out, text.as_bytes(), false)?;
    }
    let mut o = evidence_output(v, Some(digest), "online; the inclusion proof was checked locally");
    if let Some(out) = &a.bundle_out {
        o.text
            .push_str(&format!("\n  evidence bundle written to {}", out.display()));
        o.json["bundle"] = json!(out);
    }
    Ok(o)
}

fn evidence_output(v: VerifiedEvidence, file_digest: Option<Digest>, how: &str) -> Output {
    if v.kind != KIND_NOTARIZE {
        return Output {
            ok: false,
            text: format!(
                "the evidence proves transaction {} of kind {}, not a notarization",
                v.tx_id, v.kind
            ),
            json: json!({ "verified": false, "reason": "not_a_notarization", "evidence": v }),
        };
    }
    if let Some(d) = file_digest {
        if Some(d) != v.digest {
            return Output {
                ok: false,
                text: format!(
                    "MISMATCH: the file's sha256 is {d}, but the evidence is for {}: the file was altered or is another file",
                    v.digest.map(|d| d.to_string()).unwrap_or_default()
                ),
                json: json!({ "verified": false, "reason": "digest_mismatch", "file_digest": d, "evidence": v }),
            };
        }
    }
    Output::ok(
        format!("{}\n  checked         {how}", describe_evidence(&v)),
        json!({ "verified": true, "evidence": v }),
    )
}

/// Re-verifies a stopped node's whole store.
pub fn chain_verify(home: &Home) -> Result<ChainReport> {
    let genesis = home.genesis()?;
    let ledger = crate::node::open_ledger(home, &genesis)?;
    Ok(ledger.verify_chain()?)
}

pub fn describe_chain_report(r: &ChainReport) -> String {
    let mut t = format!(
        "{} blocks, {} transactions, {} state entries re-verified: {}",
        r.blocks,
        r.transactions,
        r.state_entries,
        if r.ok() { "OK" } else { "PROBLEMS FOUND" }
    );
    for p in &r.problems {
        t.push_str(&format!("\n  - {p}"));
    }
    t
}

/// Commits notarizations forever on an operator home (created if missing),
/// printing `ack <tx id>` once each is durable. Used by the crash test.
async fn crash_writer(home: &Home) -> Result<Output> {
    use std::io::Write;
    if !home.has_genesis() {
        init(
            home,
            &InitArgs {
                chain_id: "crash-test".into(),
                name: "Crash Test Exchange".into(),
                credit_code: "91110108MA01LTEX01".into(),
                contact: "ops@example.com".into(),
                endpoint: "http://127.0.0.1:1".into(),
            },
        )?;
    }
    let genesis = home.genesis()?;
    let identity = home.identity()?;
    let ledger = crate::node::open_ledger(home, &genesis)?;
    let solo = liutong_ledger::Solo::start(ledger.clone(), home.orderer_key()?);
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "ready {}", ledger.height());
    let mut round: u64 = 0;
    loop {
        round += 1;
        let n = 1 + (round % 40) as usize;
        let raw: Vec<Vec<u8>> = (0..n)
            .map(|_| {
                let body = Notarize::of_digest(liutong_core::sha256(&rand::random::<[u8; 32]>()));
                liutong_core::Canonical::canonical_bytes(&sign_tx(
                    &genesis.chain_id,
                    KIND_NOTARIZE,
                    &body,
                    &identity.signing,
                ))
            })
            .collect();
        let checked: Vec<_> = ledger
            .rules()
            .check_batch(raw, now_ms())
            .into_iter()
            .collect::<liutong_ledger::Result<_>>()?;
        for rx in liutong_ledger::Ordering::submit(&solo, checked) {
            match rx.await {
                Ok(Ok(r)) => {
                    writeln!(stdout, "ack {}", r.tx_id).map_err(|e| Error::Io(e.to_string()))?;
                }
                Ok(Err(e)) => return Err(e.into()),
                Err(_) => return Err(liutong_ledger::Error::Shutdown.into()),
            }
        }
        stdout.flush().map_err(|e| Error::Io(e.to_string()))?;
    }
}
