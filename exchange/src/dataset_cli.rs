//! `liutong dataset …`: register a file or table (only its descriptor goes on
//! the ledger), register new versions, delist, show and search.

use crate::cli::{chain_genesis, receipt_text, submit, NodeArg, Output};
use crate::client::Client;
use crate::datasets::SearchQuery;
use crate::datasets::{DatasetRecord, DelistDataset, RegisterDataset, UpdateDataset};
use crate::home::Home;
use crate::machine::{KIND_DATASET_DELIST, KIND_DATASET_REGISTER, KIND_DATASET_UPDATE};
use crate::{Error, Result};
use clap::{Args, Subcommand};
use liutong_catalog::{file_chunk_hashes, infer, normalize_tags, DatasetId, DatasetKind, Description, TableFormat};
use serde_json::json;
use std::path::{Path, PathBuf};

#[derive(Subcommand, Debug)]
pub enum DatasetCommand {
    /// Describe a local file (or a PostgreSQL table: --source, --table) and
    /// register it; the data stays on this machine.
    Register {
        /// The file [omit with --source].
        file: Option<PathBuf>,
        #[command(flatten)]
        postgres: PostgresArgs,
        /// Your name for it (a-z 0-9 . _ -); the dataset id derives from it.
        #[arg(long)]
        name: String,
        #[command(flatten)]
        about: About,
        #[command(flatten)]
        node: NodeArg,
    },
    /// Register a new version (new content) of one of your datasets.
    Update {
        dataset: String,
        /// The file [omit with --source].
        file: Option<PathBuf>,
        #[command(flatten)]
        postgres: PostgresArgs,
        /// Fields not given keep the current version's values.
        #[command(flatten)]
        about: About,
        #[command(flatten)]
        node: NodeArg,
    },
    /// Stop new grants on one of your datasets (existing grants keep their terms).
    Delist {
        dataset: String,
        #[arg(long, default_value = "")]
        reason: String,
        /// Also revoke its active grants and reject its open requests.
        #[arg(long)]
        revoke_existing: bool,
        #[command(flatten)]
        node: NodeArg,
    },
    /// A dataset's current record, or one of its versions.
    Show {
        dataset: String,
        #[arg(long)]
        version: Option<u32>,
        #[command(flatten)]
        node: NodeArg,
    },
    /// Search the catalog: words in titles, descriptions and tags, and filters.
    Search {
        /// Words that must all appear.
        words: Vec<String>,
        #[arg(long)]
        provider: Option<String>,
        /// table, file or document.
        #[arg(long)]
        kind: Option<String>,
        #[arg(long)]
        tag: Option<String>,
        #[arg(long)]
        include_delisted: bool,
        #[arg(long, default_value_t = 20)]
        limit: usize,
        /// Continue after this dataset id (printed as `next`).
        #[arg(long)]
        after: Option<String>,
        /// The page as a DCAT-3 catalog in JSON-LD, with each dataset's open offers.
        #[arg(long)]
        dcat: bool,
        #[command(flatten)]
        node: NodeArg,
    },
}

/// A table in PostgreSQL, instead of a file.
#[derive(Args, Debug)]
pub struct PostgresArgs {
    /// A PostgreSQL connection string (postgres://user:password@host:port/db);
    /// kept in this home's sources.json, never on the ledger.
    #[arg(long, requires = "table")]
    pub source: Option<String>,
    /// The table or view to register (name or schema.name).
    #[arg(long, requires = "source")]
    pub table: Option<String>,
}

/// What a registration reads: a file as it is, or a PostgreSQL table
/// through a snapshot kept in the home.
struct Input {
    file: PathBuf,
    postgres: Option<crate::home::PostgresSource>,
}

impl Input {
    /// For a PostgreSQL table: a canonical Arrow IPC snapshot written to
    /// `HOME/snapshots/`, whose bytes the commitment covers.
    async fn prepare(home: &Home, name: &str, file: Option<PathBuf>, pg: PostgresArgs) -> Result<Input> {
        match (file, pg.source, pg.table) {
            (Some(file), None, None) => Ok(Input { file, postgres: None }),
            (None, Some(url), Some(table)) => {
                let source = liutong_connectors::PgSource::new(&url, &table)
                    .map_err(|e| Error::BadRequest(format!("{} ({})", e, e.code())))?;
                let dir = home.dir().join("snapshots");
                std::fs::create_dir_all(&dir).map_err(|e| Error::Io(format!("{}: {e}", dir.display())))?;
                let file = dir.join(format!("{name}-{}.arrows", liutong_core::now_ms()));
                source
                    .snapshot(&file)
                    .await
                    .map_err(|e| Error::BadRequest(format!("{} ({})", e, e.code())))?;
                Ok(Input {
                    file,
                    postgres: Some(crate::home::PostgresSource { url, table }),
                })
            }
            (Some(_), Some(_), _) => Err(Error::BadRequest(
                "give either a file or --source/--table, not both".into(),
            )),
            _ => Err(Error::BadRequest(
                "give a file, or --source postgres://... with --table".into(),
            )),
        }
    }

    /// The descriptor's fields for this input: a PostgreSQL table is a
    /// table, an Arrow IPC stream, tagged `postgresql`, and its description
    /// says what the commitment covers.
    fn about(&self, mut about: About) -> About {
        if let Some(note) = self.note() {
            about.kind = Some("table".into());
            about.media_type = Some(liutong_catalog::ARROW_STREAM_MEDIA_TYPE.into());
            about.tags.push("postgresql".into());
            about.description = Some(match about.description.take() {
                Some(d) if !d.is_empty() => format!("{d}\n\n{note}"),
                _ => note,
            });
        }
        about
    }

    /// After the registration committed: lists the source in the home
    /// (with its PostgreSQL table, if any) and keeps its chunk hash list.
    fn keep(&self, home: &Home, record: &DatasetRecord, hashes: &[liutong_core::Digest]) -> Result<PathBuf> {
        let kept = home.record_source_with(
            &record.id,
            record.version,
            &self.file,
            &record.description.commitment,
            self.postgres.clone(),
        )?;
        crate::serve::keep_hash_list(home, &record.id, record.version, &kept, hashes)?;
        Ok(kept)
    }

    /// What the descriptor says of a PostgreSQL table's commitment.
    fn note(&self) -> Option<String> {
        self.postgres.as_ref().map(|pg| {
            format!(
                "PostgreSQL table {}. The commitment covers a canonical Arrow IPC stream export of a snapshot taken at registration (rows ordered by every column, 8192 rows per batch); downloads deliver that snapshot, queries read the live table.",
                pg.table
            )
        })
    }
}

#[derive(Args, Debug)]
pub struct About {
    #[arg(long)]
    pub title: Option<String>,
    #[arg(long)]
    pub description: Option<String>,
    /// A tag (repeat for several).
    #[arg(long = "tag")]
    pub tags: Vec<String>,
    /// table, file or document [default: table for .csv/.parquet files, else file].
    #[arg(long)]
    pub kind: Option<String>,
    /// [default: from the file's extension].
    #[arg(long)]
    pub media_type: Option<String>,
}

pub async fn run(home: &Home, cmd: DatasetCommand) -> Result<Output> {
    match cmd {
        DatasetCommand::Register {
            file,
            postgres,
            name,
            about,
            node,
        } => {
            let client = Client::new(&node.node)?;
            liutong_catalog::check_name(&name)?;
            let title = about
                .title
                .clone()
                .ok_or_else(|| Error::BadRequest("--title is required to register a dataset".into()))?;
            let genesis = chain_genesis(home, &client, true).await?;
            let input = Input::prepare(home, &name, file, postgres).await?;
            let file = input.file.clone();
            let about = input.about(about);
            let (description, hashes) =
                describe(&file, &about, title, String::new(), None, genesis.catalog.chunk_size)?;
            let r = submit(
                home,
                &client,
                KIND_DATASET_REGISTER,
                &RegisterDataset { name, description },
            )
            .await?;
            let record: DatasetRecord = r.record()?;
            let kept = input.keep(home, &record, &hashes)?;
            Ok(Output::ok(
                format!(
                    "{}\n{}\n  file kept at {} (listed in {} for delivery; it never goes on the ledger)",
                    receipt_text("dataset registered", &r),
                    describe_record(&record),
                    kept.display(),
                    home.sources_path().display()
                ),
                json!({ "receipt": r, "dataset": record, "source": kept }),
            ))
        }
        DatasetCommand::Update {
            dataset,
            file,
            postgres,
            about,
            node,
        } => {
            let client = Client::new(&node.node)?;
            let id = parse_id(&dataset)?;
            let current = client.dataset(&id).await?;
            let input = Input::prepare(home, &current.name, file, postgres).await?;
            let file = input.file.clone();
            let about = input.about(about);
            let genesis = chain_genesis(home, &client, true).await?;
            let d = &current.description;
            let title = about.title.clone().unwrap_or_else(|| d.title.clone());
            let text = about.description.clone().unwrap_or_else(|| d.description.clone());
            let kind = about.kind.clone().or_else(|| Some(d.kind.as_str().to_string()));
            let about = About {
                tags: if about.tags.is_empty() {
                    d.tags.clone()
                } else {
                    about.tags
                },
                kind,
                ..about
            };
            let (description, hashes) = describe(
                &file,
                &about,
                title,
                text,
                Some(d.media_type.clone()),
                genesis.catalog.chunk_size,
            )?;
            let r = submit(
                home,
                &client,
                KIND_DATASET_UPDATE,
                &UpdateDataset {
                    dataset: id,
                    description,
                },
            )
            .await?;
            let record: DatasetRecord = r.record()?;
            let kept = input.keep(home, &record, &hashes)?;
            Ok(Output::ok(
                format!(
                    "{}\n{}\n  file kept at {}",
                    receipt_text("new version registered", &r),
                    describe_record(&record),
                    kept.display()
                ),
                json!({ "receipt": r, "dataset": record, "source": kept }),
            ))
        }
        DatasetCommand::Delist {
            dataset,
            reason,
            revoke_existing,
            node,
        } => {
            let client = Client::new(&node.node)?;
            let id = parse_id(&dataset)?;
            let r = submit(
                home,
                &client,
                KIND_DATASET_DELIST,
                &DelistDataset {
                    dataset: id,
                    reason,
                    revoke_existing,
                },
            )
            .await?;
            let record: DatasetRecord = r.record()?;
            Ok(Output::ok(
                format!("{}\n{}", receipt_text("dataset delisted", &r), describe_record(&record)),
                json!({ "receipt": r, "dataset": record }),
            ))
        }
        DatasetCommand::Show { dataset, version, node } => {
            let client = Client::new(&node.node)?;
            let id = parse_id(&dataset)?;
            match version {
                None => {
                    let record = client.dataset(&id).await?;
                    Ok(Output::ok(describe_record(&record), json!(record)))
                }
                Some(v) => {
                    let version = client.dataset_version(&id, v).await?;
                    let text = format!(
                        "dataset {id} version {v}, registered in block {} (tx {})\n{}",
                        version.height,
                        version.tx_id,
                        describe_description(&version.description)
                    );
                    Ok(Output::ok(text, json!(version)))
                }
            }
        }
        DatasetCommand::Search {
            words,
            provider,
            kind,
            tag,
            include_delisted,
            limit,
            after,
            dcat,
            node,
        } => {
            let client = Client::new(&node.node)?;
            let query = SearchQuery {
                q: (!words.is_empty()).then(|| words.join(" ")),
                provider,
                kind,
                tag,
                include_delisted,
                limit: Some(limit),
                after,
            };
            if dcat {
                return Ok(Output::json_text(client.catalog_dcat(&query).await?));
            }
            let page = client.search_datasets(&query).await?;
            let mut text = String::new();
            for d in &page.datasets {
                text.push_str(&format!(
                    "{}  v{}  {:<8}  {}  ({}){}\n",
                    d.id,
                    d.version,
                    d.description.kind.as_str(),
                    d.description.title,
                    d.provider_name,
                    if d.delisted.is_some() { "  [delisted]" } else { "" }
                ));
            }
            if page.datasets.is_empty() {
                text.push_str("no datasets found\n");
            }
            if let Some(n) = &page.next {
                text.push_str(&format!("more: --after {n}\n"));
            }
            Ok(Output::ok(text.trim_end().to_string(), json!(page)))
        }
    }
}

fn parse_id(text: &str) -> Result<DatasetId> {
    Ok(text.parse()?)
}

/// Streams `file` once for its commitment, reads its table shape when it is a
/// table, and assembles the description, refused locally with the same codes
/// the ledger would use.
fn describe(
    file: &Path,
    about: &About,
    title: String,
    default_text: String,
    default_media: Option<String>,
    chunk_size: u32,
) -> Result<(Description, Vec<liutong_core::Digest>)> {
    let format = TableFormat::of_path(file);
    let kind: DatasetKind = match &about.kind {
        Some(k) => k.parse()?,
        None if format.is_some() => DatasetKind::Table,
        None => DatasetKind::File,
    };
    let table = match (kind, format) {
        (DatasetKind::Table, Some(f)) => Some(infer(file, f)?),
        (DatasetKind::Table, None) => {
            return Err(Error::BadRequest(format!(
                "{}: a table must be a .csv, .parquet, .ndjson/.jsonl or .arrow/.arrows file",
                file.display()
            )))
        }
        _ => None,
    };
    let media_type = about
        .media_type
        .clone()
        .unwrap_or_else(|| match (format, default_media) {
            (None, Some(current)) => current,
            _ => media_type_of(file, format),
        });
    // One pass gives the commitment and the chunk hash list the node keeps for delivery.
    let (hashes, commitment) = file_chunk_hashes(file, chunk_size)?;
    let description = Description {
        title,
        description: about.description.clone().unwrap_or(default_text),
        tags: normalize_tags(about.tags.clone()),
        kind,
        media_type,
        table,
        commitment,
    };
    description.validate(chunk_size)?;
    Ok((description, hashes))
}

fn media_type_of(file: &Path, format: Option<TableFormat>) -> String {
    if let Some(f) = format {
        return f.media_type().into();
    }
    let ext = file
        .extension()
        .and_then(|e| e.to_str())
        .map(|e| e.to_ascii_lowercase())
        .unwrap_or_default();
    match ext.as_str() {
        "pdf" => "application/pdf",
        "json" => "application/json",
        "ndjson" | "jsonl" => "application/x-ndjson",
        "xml" => "application/xml",
        "txt" | "md" => "text/plain",
        "zip" => "application/zip",
        "arrow" | "ipc" | "feather" => "application/vnd.apache.arrow.file",
        "xlsx" => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "docx" => "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        _ => "application/octet-stream",
    }
    .into()
}

pub fn describe_description(d: &Description) -> String {
    let mut t = format!(
        "  title        {}\n  kind         {} ({})\n  content      {} bytes in {} chunk(s) of {} bytes\n  chunk root   {}\n  sha256       {}",
        d.title,
        d.kind.as_str(),
        d.media_type,
        d.commitment.size,
        d.commitment.chunks(),
        d.commitment.chunk_size,
        d.commitment.chunk_root,
        d.commitment.sha256
    );
    if !d.tags.is_empty() {
        t.push_str(&format!("\n  tags         {}", d.tags.join(", ")));
    }
    if let Some(shape) = &d.table {
        let cols: Vec<String> = shape
            .columns
            .iter()
            .map(|c| format!("{} {}", c.name, c.data_type))
            .collect();
        t.push_str(&format!("\n  table        {} rows: {}", shape.rows, cols.join(", ")));
    }
    if !d.description.is_empty() {
        t.push_str(&format!("\n  description  {}", d.description));
    }
    t
}

pub fn describe_record(r: &DatasetRecord) -> String {
    let mut t = format!(
        "dataset {} \"{}\" version {} by {} ({})\n{}",
        r.id,
        r.name,
        r.version,
        r.provider_name,
        r.provider,
        describe_description(&r.description)
    );
    if let Some(d) = &r.delisted {
        t.push_str(&format!("\n  DELISTED in block {}: {}", d.height, d.reason));
    }
    t
}
