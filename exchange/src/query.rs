//! `liutong query`: compute-to-data from the consumer's side. The consumer
//! signs a request naming the grant, the dataset and the SHA-256 of its SQL,
//! and sends it with the SQL to the provider's node (`POST /v1/queries`).
//! The provider runs it under the grant's terms and streams the permitted
//! result back sealed to the consumer's registered key, framed like a
//! delivery: frame 0 holds the result's digest, its rows and what was
//! enforced, then the result (an Arrow IPC stream) in chunks. The consumer
//! checks the digest, signs a receipt for it, and the provider writes the
//! access-log entry with both digests.

use crate::access::AccessRecord;
use crate::cli::{NodeArg, Output};
use crate::client::Client;
use crate::delivery::{DeliveryReceipt, DeliveryRequest, FrameReader, Refusal, SignedReceipt, SignedRequest, Verdict};
use crate::fetch::Counterpart;
use crate::{Error, Result};
use arrow::record_batch::RecordBatch;
use borsh::{BorshDeserialize, BorshSerialize};
use clap::Args;
use liutong_catalog::DatasetId;
use liutong_core::stream::{Opener, TAG_LEN};
use liutong_core::{decode_canonical, encode_canonical, now_ms, sha256, Digest};
use liutong_policies::query::MAX_SQL;
use liutong_policies::Action;
use serde_json::json;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Bytes per sealed frame of a query result.
pub const QUERY_CHUNK: u32 = 1 << 20;
/// Largest `POST /v1/queries` body: the signed request and the SQL.
pub const MAX_CALL: usize = crate::delivery::MAX_REQUEST + MAX_SQL + 16;

/// The SQL's digest, as the request names it: SHA-256 of its UTF-8 text.
pub fn query_digest(sql: &str) -> Digest {
    sha256(sql.as_bytes())
}

/// What a consumer posts: its signed request and the SQL it names.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct QueryCall {
    pub request: SignedRequest,
    pub sql: String,
}

impl QueryCall {
    pub fn to_bytes(&self) -> Vec<u8> {
        encode_canonical(self)
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<QueryCall, Refusal> {
        if bytes.len() > MAX_CALL {
            return Err(Refusal::new(
                "query.too_long",
                format!("a query call is at most {MAX_CALL} bytes (SQL up to {MAX_SQL})"),
            ));
        }
        decode_canonical("query call", bytes).map_err(|e| Refusal::new("query.malformed", e.to_string()))
    }
}

/// Frame 0 of a result stream.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct ResultHeader {
    /// SHA-256 of the Arrow IPC stream that follows.
    pub result: Digest,
    pub rows: u64,
    /// What the provider's node enforced, one line per term.
    pub enforced: Vec<String>,
}

#[derive(Args, Debug)]
pub struct QueryArgs {
    /// The dataset id.
    pub dataset: String,
    /// One SELECT over the dataset, by its catalog name (quote names with
    /// characters other than letters, digits and _: "trade-2026").
    pub sql: String,
    /// The grant to query under (yours, active, allowing query).
    #[arg(long)]
    pub grant: String,
    /// table, csv, json or arrow (an Arrow IPC stream; needs --out).
    #[arg(long, default_value = "table")]
    pub format: String,
    /// Write the result here instead of printing it.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// The version to query [default: the current one].
    #[arg(long)]
    pub version: Option<u32>,
    /// Largest result accepted, in MiB.
    #[arg(long, default_value_t = 1024)]
    pub max_result: u64,
    /// Private mode (a grant requested with --private): prove the use with a
    /// zero-knowledge proof and a one-time key instead of naming the grant.
    #[arg(long)]
    pub private: bool,
    #[command(flatten)]
    pub node: NodeArg,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Format {
    Table,
    Csv,
    Json,
    Arrow,
}

impl std::str::FromStr for Format {
    type Err = Error;
    fn from_str(s: &str) -> Result<Format> {
        match s {
            "table" => Ok(Format::Table),
            "csv" => Ok(Format::Csv),
            "json" => Ok(Format::Json),
            "arrow" => Ok(Format::Arrow),
            other => Err(Error::BadRequest(format!(
                "unknown format {other:?}: choose table, csv, json or arrow"
            ))),
        }
    }
}

/// A result as received and checked.
pub struct Received {
    pub header: ResultHeader,
    pub ipc: Vec<u8>,
    pub batches: Vec<RecordBatch>,
    pub delivery: Digest,
    pub access: Result<AccessRecord>,
}

pub async fn query(home: &crate::home::Home, a: QueryArgs) -> Result<Output> {
    let started = Instant::now();
    let format: Format = a.format.parse()?;
    if format == Format::Arrow && a.out.is_none() {
        return Err(Error::BadRequest(
            "--format arrow writes binary: give --out PATH".into(),
        ));
    }
    if let Some(out) = &a.out {
        if out.exists() {
            return Err(Refusal::new(
                "fetch.exists",
                format!("{} exists; choose another --out or remove it", out.display()),
            )
            .into());
        }
    }
    let client = Client::new(&a.node.node)?;
    let dataset: DatasetId = a.dataset.parse()?;
    let grant: crate::grants::GrantId = a.grant.parse()?;
    let peer = Counterpart::find(home, &client, dataset, grant, a.version, a.private).await?;
    let got = run(&peer, grant, dataset, &a.sql, a.max_result.saturating_mul(1 << 20)).await?;
    let seconds = started.elapsed().as_secs_f64();
    let rendered = render(&got.batches, format)?;
    let (access_text, access_json) = match &got.access {
        Ok(e) => (
            format!(
                "access log entry {} in block {} (tx {})",
                e.outcome.as_str(),
                e.height,
                e.tx_id
            ),
            json!(e),
        ),
        Err(e) => (
            format!("the provider did not take the receipt ({}: {e})", e.code()),
            json!({ "error": { "code": e.code(), "message": e.to_string() } }),
        ),
    };
    let mut summary = format!(
        "query on dataset {dataset} version {} under grant {grant}: {} row(s), {} bytes in {seconds:.2} s\n  result digest {} (checked)\n  enforced: {}\n  receipt signed: {access_text}",
        peer.version,
        got.header.rows,
        got.ipc.len(),
        got.header.result,
        if got.header.enforced.is_empty() {
            "nothing beyond the grant's window and uses".to_string()
        } else {
            got.header.enforced.join("; ")
        },
    );
    let data = match &a.out {
        Some(out) => {
            let bytes = if format == Format::Arrow {
                got.ipc.clone()
            } else {
                rendered.into_bytes()
            };
            crate::home::write_atomically(out, &bytes, false)?;
            summary.push_str(&format!("\n  written to {}", out.display()));
            None
        }
        None => Some(rendered),
    };
    let text = match &data {
        Some(d) => format!("{}\n{summary}", d.trim_end()),
        None => summary,
    };
    Ok(Output::ok(
        text,
        json!({
            "dataset": dataset,
            "version": peer.version,
            "grant": grant,
            "rows": got.header.rows,
            "bytes": got.ipc.len(),
            "result": got.header.result,
            "enforced": got.header.enforced,
            "delivery": got.delivery,
            "seconds": seconds,
            "data": match format {
                Format::Json if a.out.is_none() => serde_json::from_str::<serde_json::Value>(data.as_deref().unwrap_or("[]")).unwrap_or_default(),
                _ => serde_json::Value::Null,
            },
            "out": a.out,
            "access_log": access_json,
        }),
    ))
}

/// Sends one query and receives, opens and checks its result; signs and
/// hands in the receipt.
pub async fn run(
    peer: &Counterpart,
    grant: crate::grants::GrantId,
    dataset: DatasetId,
    sql: &str,
    max_result: u64,
) -> Result<Received> {
    if sql.len() > MAX_SQL {
        return Err(Refusal::new(
            "query.too_long",
            format!("the query is {} bytes; the limit is {MAX_SQL}", sql.len()),
        )
        .into());
    }
    let signed = peer.sign_request(DeliveryRequest {
        chain_id: peer.chain_id.clone(),
        grant,
        dataset,
        version: peer.version,
        action: Action::Query,
        nonce: rand::random(),
        timestamp: now_ms(),
        from_chunk: 0,
        resumes: None,
        query: Some(query_digest(sql)),
        private: None,
    })?;
    let digest = signed.digest();
    let call = QueryCall {
        request: signed,
        sql: sql.to_string(),
    };
    let resp = peer
        .http
        .post(format!("{}/v1/queries", peer.endpoint))
        .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
        .body(call.to_bytes())
        .send()
        .await
        .map_err(|e| Error::Unreachable {
            url: peer.endpoint.clone(),
            reason: e.to_string(),
        })?;
    if !resp.status().is_success() {
        let status = resp.status().as_u16();
        let bytes = resp.bytes().await.unwrap_or_default();
        return Err(crate::client::remote_error(status, &bytes));
    }
    let (header, ipc) = receive(resp, peer, &digest, max_result).await?;
    let refuse = |why: String| DeliveryReceipt {
        request: digest,
        verdict: Verdict::Refused,
        content: header.result,
        bytes: ipc.len() as u64,
        time: now_ms(),
        reason: why,
    };
    // The result must be what frame 0 says, and readable Arrow; otherwise
    // the consumer signs that it refused it.
    let checked = if sha256(&ipc) != header.result {
        Err("the result does not match its digest".to_string())
    } else {
        read_ipc(&ipc).map_err(|e| format!("the result is not a readable Arrow IPC stream: {e}"))
    };
    match checked {
        Ok(batches) => {
            let rows: u64 = batches.iter().map(|b| b.num_rows() as u64).sum();
            if rows != header.rows {
                let receipt = SignedReceipt::sign(
                    refuse(format!("{rows} rows arrived, the header says {}", header.rows)),
                    &peer.identity.signing,
                );
                let _ = peer.hand_in(&receipt).await;
                return Err(Refusal::new("query.bad_result", "the result's rows do not match its header").into());
            }
            let receipt = SignedReceipt::sign(
                DeliveryReceipt {
                    request: digest,
                    verdict: Verdict::Verified,
                    content: header.result,
                    bytes: ipc.len() as u64,
                    time: now_ms(),
                    reason: String::new(),
                },
                &peer.identity.signing,
            );
            let access = peer.hand_in(&receipt).await;
            Ok(Received {
                header,
                ipc,
                batches,
                delivery: digest,
                access,
            })
        }
        Err(why) => {
            let receipt = SignedReceipt::sign(refuse(why.clone()), &peer.identity.signing);
            let logged = match peer.hand_in(&receipt).await {
                Ok(e) => format!("access log entry {}", e.outcome.as_str()),
                Err(e) => format!("the provider did not take the refusal receipt ({})", e.code()),
            };
            Err(Refusal::new("query.bad_result", format!("{why}; refusal receipt signed: {logged}")).into())
        }
    }
}

/// Reads the sealed stream: the provider-signed header, frame 0, then the
/// result's chunks, each opened in order, the last marked last.
async fn receive(
    mut resp: reqwest::Response,
    peer: &Counterpart,
    digest: &Digest,
    max_result: u64,
) -> Result<(ResultHeader, Vec<u8>)> {
    let malformed = |m: &str| Error::from(Refusal::new("delivery.malformed", m.to_string()));
    let mut frames = FrameReader::new(QUERY_CHUNK as usize + TAG_LEN + 64 * 1024);
    let mut opener: Option<Opener> = None;
    let mut size = 0u64;
    let mut header: Option<ResultHeader> = None;
    let mut ipc = Vec::new();
    let mut frame = Vec::new();
    let mut next: u32 = 0;
    let mut done = false;
    loop {
        let piece = match tokio::time::timeout(Duration::from_secs(120), resp.chunk()).await {
            Ok(Ok(Some(b))) => b,
            Ok(Ok(None)) => break,
            Ok(Err(e)) => return Err(Error::Io(format!("the result stream broke: {e}"))),
            Err(_) => return Err(Error::Io("the result stream stalled for 120 s".into())),
        };
        frames.push(&piece);
        if opener.is_none() {
            let Some(signed_header) = frames.header()? else {
                continue;
            };
            signed_header.verify(&peer.provider_key)?;
            let h = &signed_header.header;
            if &h.request != digest || h.chunk_size != QUERY_CHUNK || h.from_chunk != 0 {
                return Err(malformed("the stream's header does not answer this query"));
            }
            if h.size > max_result {
                return Err(Refusal::new(
                    "query.result_too_large",
                    format!("the result is {} bytes, more than --max-result allows", h.size),
                )
                .into());
            }
            size = h.size;
            opener = Some(Opener::new(&peer.identity.encryption, &h.encapped_key, digest)?);
        }
        let Some(o) = &opener else { continue };
        while frames.next_frame_into(&mut frame)? {
            if done {
                return Err(malformed("frames after the last one"));
            }
            let chunks = size.div_ceil(u64::from(QUERY_CHUNK));
            let last = u64::from(next) == chunks;
            let n = o.open_in_place(next, last, &mut frame)?;
            if next == 0 {
                header = Some(
                    decode_canonical("result header", &frame[..n]).map_err(|e| malformed(&format!("frame 0: {e}")))?,
                );
            } else {
                ipc.extend_from_slice(&frame[..n]);
                if ipc.len() as u64 > size {
                    return Err(malformed("more result than the header announced"));
                }
            }
            done = last;
            next += 1;
        }
    }
    let header = header.ok_or_else(|| malformed("the stream ended before its first frame"))?;
    if !done || ipc.len() as u64 != size {
        return Err(Error::Io(format!(
            "the result stream ended after {} of {size} bytes",
            ipc.len()
        )));
    }
    Ok((header, ipc))
}

pub(crate) fn read_ipc(bytes: &[u8]) -> std::result::Result<Vec<RecordBatch>, arrow::error::ArrowError> {
    arrow::ipc::reader::StreamReader::try_new(std::io::Cursor::new(bytes), None)?.collect()
}

/// The result in the format asked for (Arrow IPC is written as received).
pub(crate) fn render(batches: &[RecordBatch], format: Format) -> Result<String> {
    let fail = |e: arrow::error::ArrowError| Error::Io(format!("formatting the result: {e}"));
    match format {
        Format::Table => Ok(arrow::util::pretty::pretty_format_batches(batches)
            .map_err(fail)?
            .to_string()),
        Format::Csv => {
            let mut out = Vec::new();
            {
                let mut w = arrow::csv::WriterBuilder::new().with_header(true).build(&mut out);
                for b in batches {
                    w.write(b).map_err(fail)?;
                }
            }
            String::from_utf8(out).map_err(|e| Error::Io(e.to_string()))
        }
        Format::Json => {
            let mut w = arrow::json::ArrayWriter::new(Vec::new());
            for b in batches {
                w.write(b).map_err(fail)?;
            }
            w.finish().map_err(fail)?;
            let out = w.into_inner();
            let text = String::from_utf8(out).map_err(|e| Error::Io(e.to_string()))?;
            Ok(if text.is_empty() { "[]".into() } else { text })
        }
        Format::Arrow => Ok(String::new()),
    }
}
