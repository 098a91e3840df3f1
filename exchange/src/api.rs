//! The HTTP API under `/v1` (axum). Every answer is JSON (the follower block
//! stream is borsh), every error `{"code", "message"}` with a fitting HTTP
//! status; bodies are size-limited, requests time out, a panic becomes a 500
//! JSON error. The OpenAPI document is generated from these handlers.

use crate::datasets::{self, DatasetRecord, DatasetVersion, SearchPage, SearchQuery};
use crate::genesis::Genesis;
use crate::grants::{self, GrantId, GrantView, OfferRecord};
use crate::machine::{describe_body, CF_NOTARIZATIONS, CF_PARTIES, CF_PARTY_KEYS};
use crate::notary::Notarization;
use crate::party::KeyBinding;
use crate::party::Party;
use crate::standards::{self, ImportedPolicy};
use crate::wire::*;
use axum::extract::{DefaultBodyLimit, FromRequest, FromRequestParts, Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use liutong_catalog::DatasetId;
use liutong_core::{now_ms, CreditCode, Digest};
use liutong_ledger::{CheckedTx, Ledger, Ordering, Receipt};
use liutong_policies::odrl;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use std::sync::Arc;
use std::time::Duration;
use utoipa::OpenApi;

/// Largest JSON body of a single submission (a 64 KiB transaction is ~87 KiB of base64).
pub const MAX_SUBMIT_BODY: usize = 1 << 20;
/// Largest JSON body of a batch submission.
pub const MAX_BATCH_BODY: usize = 48 << 20;
/// Most transactions in one batch request.
pub const MAX_BATCH_TXS: usize = 16_384;
/// Every request not a long poll must finish within this.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// Longest a follower's block-stream request waits for a new block.
pub const MAX_WAIT_MS: u64 = 30_000;
/// Bytes of blocks sent in one block-stream answer (at least one block is always sent).
const STREAM_BYTES: usize = 16 << 20;
/// How long a follower waits to see a block it forwarded a transaction into.
const READ_YOUR_WRITES: Duration = Duration::from_secs(10);

/// What every handler shares.
pub struct AppState {
    pub ledger: Arc<Ledger>,
    pub ordering: Arc<dyn Ordering>,
    /// Checks submissions' envelopes and signatures before they are ordered.
    pub checker: liutong_ledger::Checker,
    pub genesis: Genesis,
    /// The orderer URL, when this node is a follower.
    pub following: Option<String>,
    /// Turns true when the node stops, so long polls end at once.
    pub stopping: tokio::sync::watch::Receiver<bool>,
    /// The delivery service, on a node whose home holds a party identity.
    pub provider: Option<Arc<crate::serve::Provider>>,
    /// The node's home (for the proving key it serves).
    pub home: crate::home::Home,
    /// The ledger tables audit SQL reads (kept between queries).
    pub audit: Arc<crate::audit::sql::LedgerTables>,
    /// Limits on the queries this node runs (audit SQL too).
    pub queries: crate::serve::QueryConfig,
    /// The queries running now, in total and per caller.
    pub limiter: Arc<crate::serve::QueryLimiter>,
}

/// Submits a transaction this node signed itself and waits for its block:
/// the committed result, or the rejection as an error with its code.
pub async fn submit_own(s: &Arc<AppState>, bytes: Vec<u8>) -> crate::Result<serde_json::Value> {
    let answer = submit_raw(s, vec![Ok(bytes)]).await.pop();
    match answer {
        Some(Ok(receipt)) => {
            let result = match receipt.outcome {
                liutong_ledger::TxOutcome::Committed { result, .. }
                | liutong_ledger::TxOutcome::Existing { result } => result,
            };
            let mut value: serde_json::Value =
                serde_json::from_str(result.json().get()).map_err(|e| crate::Error::Io(e.to_string()))?;
            if let Some(map) = value.as_object_mut() {
                map.entry("tx_id").or_insert_with(|| serde_json::json!(receipt.tx_id));
            }
            Ok(value)
        }
        Some(Err(e)) => Err(crate::Error::Remote {
            code: e.code,
            message: e.message,
            status: e.status.as_u16(),
        }),
        None => Err(crate::Error::Io("no answer for a submission".into())),
    }
}

type Shared = State<Arc<AppState>>;

/// A JSON error answer.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: String,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: impl Into<String>, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code: code.into(),
            message: message.into(),
        }
    }

    fn from_code(code: &str, message: String) -> Self {
        ApiError::new(status_for(code), code, message)
    }
}

/// The HTTP status of each error code family.
pub fn status_for(code: &str) -> StatusCode {
    match code {
        "not_found" | "route.not_found" | "party.not_found" => StatusCode::NOT_FOUND,
        "tx.oversize" | "request.too_large" => StatusCode::PAYLOAD_TOO_LARGE,
        "tx.bad_signature" | "delivery.bad_signature" | "receipt.bad_signature" | "audit.bad_signature" => {
            StatusCode::UNAUTHORIZED
        }
        "audit.malformed" | "audit.wrong_chain" | "audit.stale" | "audit.wrong_operation" => StatusCode::BAD_REQUEST,
        "audit.not_visible" => StatusCode::FORBIDDEN,
        "delivery.not_here" => StatusCode::MISDIRECTED_REQUEST,
        "delivery.unknown_grant" | "delivery.unknown" | "delivery.not_offered" | "receipt.unknown_delivery" => {
            StatusCode::NOT_FOUND
        }
        "delivery.replayed" | "delivery.closed" | "delivery.resume_limit" | "receipt.late" | "zk.nullifier_spent" => {
            StatusCode::CONFLICT
        }
        "zk.malformed_proof" | "zk.bad_field" | "zk.no_proof" | "zk.no_opening" | "zk.grant_named" => {
            StatusCode::BAD_REQUEST
        }
        "zk.invalid_proof" | "zk.unknown_root" | "zk.stale_root" | "zk.bad_time" => StatusCode::FORBIDDEN,
        "delivery.not_holder" | "receipt.wrong_signer" => StatusCode::FORBIDDEN,
        "delivery.malformed"
        | "receipt.malformed"
        | "delivery.stale"
        | "delivery.bad_range"
        | "delivery.wrong_action"
        | "query.malformed"
        | "query.bad_request"
        | "query.digest_mismatch" => StatusCode::BAD_REQUEST,
        "delivery.source_missing" | "delivery.source_changed" | "query.source_unavailable" => {
            StatusCode::SERVICE_UNAVAILABLE
        }
        "query.timeout" => StatusCode::GATEWAY_TIMEOUT,
        "query.too_many" => StatusCode::TOO_MANY_REQUESTS,
        "query.busy" => StatusCode::SERVICE_UNAVAILABLE,
        "party.unknown_signer"
        | "party.pending"
        | "party.rejected"
        | "party.suspended"
        | "party.expelled"
        | "party.not_operator"
        | "party.key_retired"
        | "dataset.not_provider"
        | "dataset.not_owner"
        | "grant.not_consumer"
        | "grant.not_provider"
        | "grant.not_holder" => StatusCode::FORBIDDEN,
        "tx.replayed_nonce"
        | "tx.duplicate"
        | "party.exists"
        | "party.key_in_use"
        | "party.bad_transition"
        | "dataset.exists"
        | "grant.bad_transition" => StatusCode::CONFLICT,
        "node.shutting_down" | "node.unreachable" => StatusCode::SERVICE_UNAVAILABLE,
        "request.timeout" => StatusCode::GATEWAY_TIMEOUT,
        "store.error" | "store.corrupt" | "internal.panic" | "io.error" => StatusCode::INTERNAL_SERVER_ERROR,
        "request.method_not_allowed" => StatusCode::METHOD_NOT_ALLOWED,
        "request.content_type" => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        c if c.starts_with("tx.")
            || c.starts_with("encoding.")
            || c.starts_with("request.")
            || c == "key.malformed" =>
        {
            StatusCode::BAD_REQUEST
        }
        _ => StatusCode::UNPROCESSABLE_ENTITY,
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            code: self.code,
            message: self.message,
        };
        (self.status, Json(body)).into_response()
    }
}

impl From<liutong_ledger::Error> for ApiError {
    fn from(e: liutong_ledger::Error) -> Self {
        ApiError::from_code(e.code(), e.to_string())
    }
}
impl From<liutong_core::Error> for ApiError {
    fn from(e: liutong_core::Error) -> Self {
        ApiError::from_code(e.code(), e.to_string())
    }
}
impl From<crate::Error> for ApiError {
    fn from(e: crate::Error) -> Self {
        ApiError::from_code(e.code(), e.to_string())
    }
}

impl From<crate::delivery::Refusal> for ApiError {
    fn from(r: crate::delivery::Refusal) -> Self {
        ApiError::from_code(r.code, r.message)
    }
}

impl From<axum::extract::rejection::JsonRejection> for ApiError {
    fn from(r: axum::extract::rejection::JsonRejection) -> Self {
        let code = match r.status() {
            StatusCode::PAYLOAD_TOO_LARGE => "request.too_large",
            StatusCode::UNSUPPORTED_MEDIA_TYPE => "request.content_type",
            _ => "request.malformed_json",
        };
        ApiError::new(r.status(), code, r.body_text())
    }
}

/// `Json` whose rejections are our JSON errors.
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;
    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        Ok(ApiJson(Json::<T>::from_request(req, state).await?.0))
    }
}

/// `Path` whose rejections are our JSON errors.
pub struct ApiPath<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut axum::http::request::Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| ApiPath(p.0))
            .map_err(|r| ApiError::new(StatusCode::BAD_REQUEST, "request.bad_path", r.body_text()))
    }
}

/// `Query` whose rejections are our JSON errors.
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut axum::http::request::Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| ApiQuery(q.0))
            .map_err(|r| ApiError::new(StatusCode::BAD_REQUEST, "request.bad_query", r.body_text()))
    }
}

/// Decodes a record the state machine stored; failing to is store corruption.
fn decode_stored<T: borsh::BorshDeserialize>(cf: &str, bytes: &[u8]) -> Result<T, ApiError> {
    borsh::from_slice(bytes).map_err(|e| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "store.corrupt",
            format!("{cf} entry is unreadable: {e}"),
        )
    })
}

/// One stored record by key, or the given not-found error.
fn read_record<T: borsh::BorshDeserialize>(
    s: &AppState,
    cf: &str,
    key: &[u8],
    not_found: impl FnOnce() -> ApiError,
) -> Result<T, ApiError> {
    let bytes = s.ledger.store().get(cf, key)?.ok_or_else(not_found)?;
    decode_stored(cf, &bytes)
}

fn parse_digest(what: &str, text: &str) -> Result<Digest, ApiError> {
    text.parse::<Digest>()
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e.code(), format!("{what}: {e}")))
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "liutong node API",
        description = "A liutong node: submit signed transactions, read the ledger, get proofs."
    ),
    paths(
        status,
        genesis,
        submit_tx,
        submit_batch,
        submit_batch_raw,
        get_tx,
        get_block,
        block_stream,
        inclusion_proof,
        consistency_proof,
        get_notarization,
        list_parties,
        get_party,
        get_key,
        search_datasets,
        get_dataset,
        get_dataset_version,
        dataset_offers,
        dataset_grants,
        offer_odrl,
        list_grants,
        get_grant,
        grant_odrl,
        catalog_dcat,
        import_odrl,
        start_delivery,
        start_query,
        take_receipt,
        access_log,
        access_entry,
        audit_trace,
        audit_sql,
        audit_bundle,
        zk_path,
        zk_nullifier,
        zk_proving_key,
        openapi
    ),
    // Named only by a query parameter's type, which utoipa does not collect.
    components(schemas(ReceiptDetail))
)]
pub struct ApiDoc;

/// The router with every `/v1` route and the JSON error, limit and timeout layers.
pub fn router(state: Arc<AppState>) -> Router {
    let limits = state.queries;
    let api = Router::new()
        .route("/v1/status", get(status))
        .route("/v1/genesis", get(genesis))
        .route("/v1/txs", post(submit_tx).layer(DefaultBodyLimit::max(MAX_SUBMIT_BODY)))
        .route(
            "/v1/txs/batch",
            post(submit_batch).layer(DefaultBodyLimit::max(MAX_BATCH_BODY)),
        )
        .route(
            "/v1/txs/batch/raw",
            post(submit_batch_raw).layer(DefaultBodyLimit::max(MAX_BATCH_BODY)),
        )
        .route("/v1/txs/{id}", get(get_tx))
        .route("/v1/blocks", get(block_stream))
        .route("/v1/blocks/{height}", get(get_block))
        .route("/v1/proofs/inclusion/{tx_id}", get(inclusion_proof))
        .route("/v1/proofs/consistency", get(consistency_proof))
        .route("/v1/notarizations/{digest}", get(get_notarization))
        .route("/v1/parties", get(list_parties))
        .route("/v1/parties/{credit_code}", get(get_party))
        .route("/v1/keys/{public_key}", get(get_key))
        .route("/v1/datasets", get(search_datasets))
        .route("/v1/datasets/{id}", get(get_dataset))
        .route("/v1/datasets/{id}/versions/{version}", get(get_dataset_version))
        .route("/v1/datasets/{id}/offers", get(dataset_offers))
        .route("/v1/datasets/{id}/grants", get(dataset_grants))
        .route("/v1/datasets/{id}/offers/{number}/odrl", get(offer_odrl))
        .route("/v1/grants", get(list_grants))
        .route("/v1/grants/{id}", get(get_grant))
        .route("/v1/grants/{id}/odrl", get(grant_odrl))
        .route("/v1/catalog/dcat", get(catalog_dcat))
        .route("/v1/policies/odrl", post(import_odrl))
        .route("/v1/deliveries", post(start_delivery))
        .route("/v1/deliveries/receipts", post(take_receipt))
        .route("/v1/queries", post(start_query))
        .route("/v1/access-log", get(access_log))
        .route("/v1/access-log/{request}", get(access_entry))
        .route("/v1/audit/trace", post(audit_trace))
        .route("/v1/audit/sql", post(audit_sql))
        .route("/v1/audit/bundle", post(audit_bundle))
        .route("/v1/zk/paths/{leaf}", get(zk_path))
        .route("/v1/zk/nullifiers/{nullifier}", get(zk_nullifier))
        .route("/v1/zk/proving-key", get(zk_proving_key))
        .route("/v1/openapi.json", get(openapi))
        .fallback(|| async {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "route.not_found",
                "no such route; see /v1/openapi.json",
            )
        })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "request.method_not_allowed",
                "this route does not take that method; see /v1/openapi.json",
            )
        })
        .with_state(state);
    api.layer(axum::middleware::from_fn_with_state(limits, time_limit))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(|_panic| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal.panic",
                "the node hit an internal error",
            )
            .into_response()
        }))
}

async fn time_limit(
    State(queries): State<crate::serve::QueryConfig>,
    req: Request,
    next: axum::middleware::Next,
) -> Response {
    // The block stream bounds its own wait below this. A query plans and
    // runs within the node's query timeout each, then counts its use: its
    // request may take longer than others, so a counted result is never
    // cut off here.
    let limit = match req.uri().path() {
        "/v1/queries" | "/v1/audit/sql" => queries.request_timeout(),
        _ => REQUEST_TIMEOUT,
    };
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(r) => r,
        Err(_) => ApiError::new(
            StatusCode::GATEWAY_TIMEOUT,
            "request.timeout",
            "the request took too long",
        )
        .into_response(),
    }
}

#[utoipa::path(get, path = "/v1/status", responses((status = 200, body = StatusView)))]
async fn status(State(s): Shared) -> Result<Json<StatusView>, ApiError> {
    let head = s.ledger.head();
    Ok(Json(StatusView {
        chain_id: s.genesis.chain_id.clone(),
        genesis_digest: s.genesis.digest().to_string(),
        role: if s.following.is_some() { "follower" } else { "orderer" }.into(),
        height: head.as_ref().map_or(0, |h| h.header.height),
        log_size: head.as_ref().map_or(0, |h| h.header.log_size),
        log_root: head
            .as_ref()
            .map_or_else(liutong_ledger::merkle::empty_root, |h| h.header.log_root)
            .to_string(),
        orderer_key: s.genesis.orderer.to_string(),
        following: s.following.clone(),
        version: env!("CARGO_PKG_VERSION").into(),
    }))
}

#[utoipa::path(get, path = "/v1/genesis", responses((status = 200, body = Genesis)))]
async fn genesis(State(s): Shared) -> Json<Genesis> {
    Json(s.genesis.clone())
}

/// Checks envelopes and signatures (batched with concurrent submissions), orders the valid
/// ones and waits until their block is durable.
async fn submit_raw(s: &Arc<AppState>, raw: Vec<Result<Vec<u8>, ApiError>>) -> Vec<Result<Receipt, ApiError>> {
    let mut answers: Vec<Option<Result<Receipt, ApiError>>> = Vec::with_capacity(raw.len());
    let mut bytes = Vec::new();
    let mut slots = Vec::new();
    for (i, r) in raw.into_iter().enumerate() {
        match r {
            Ok(b) => {
                bytes.push(b);
                slots.push(i);
                answers.push(None);
            }
            Err(e) => answers.push(Some(Err(e))),
        }
    }
    let Some(checked) = s.checker.check(bytes, now_ms()).await else {
        return answers
            .into_iter()
            .map(|a| {
                a.unwrap_or_else(|| {
                    Err(ApiError::new(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "internal.panic",
                        "signature check failed",
                    ))
                })
            })
            .collect();
    };
    let mut ok: Vec<CheckedTx> = Vec::new();
    let mut ok_slots = Vec::new();
    for (slot, c) in slots.into_iter().zip(checked) {
        match c {
            Ok(c) => {
                ok.push(c);
                ok_slots.push(slot);
            }
            Err(e) => answers[slot] = Some(Err(e.into())),
        }
    }
    let receivers = s.ordering.submit(ok);
    let mut highest = 0;
    for (slot, rx) in ok_slots.into_iter().zip(receivers) {
        let answer = match rx.await {
            Ok(Ok(receipt)) => {
                if let liutong_ledger::TxOutcome::Committed { height, .. } = receipt.outcome {
                    highest = highest.max(height);
                }
                Ok(receipt)
            }
            Ok(Err(e)) => Err(e.into()),
            Err(_) => Err(liutong_ledger::Error::Shutdown.into()),
        };
        answers[slot] = Some(answer);
    }
    if s.following.is_some() && highest > 0 {
        // Read-your-writes on a follower: answer once our own copy has the block.
        let mut heights = s.ledger.subscribe();
        let _ = tokio::time::timeout(READ_YOUR_WRITES, heights.wait_for(|h| *h >= highest)).await;
    }
    answers
        .into_iter()
        .map(|a| a.expect("every submission slot is answered"))
        .collect()
}

fn decode_base64(text: &str) -> Result<Vec<u8>, ApiError> {
    liutong_core::from_base64("transaction", text).map_err(ApiError::from)
}

/// Submit one signed transaction; answers once it is durably committed.
#[utoipa::path(post, path = "/v1/txs", request_body = SubmitTx, responses(
    (status = 200, body = ReceiptView, description = "committed, or the existing record"),
    (status = "4XX", body = ErrorBody, description = "refused; nothing was stored"),
))]
async fn submit_tx(State(s): Shared, ApiJson(req): ApiJson<SubmitTx>) -> Result<Json<ReceiptView>, ApiError> {
    let mut answers = submit_raw(&s, vec![decode_base64(&req.tx)]).await;
    let answer = answers.pop().expect("one answer for one submission");
    Ok(Json(ReceiptView::of(answer?, ReceiptDetail::Full)))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct BatchQuery {
    /// `full` (the default): each receipt carries its record; `compact`:
    /// only tx id, status, index and height.
    #[param(value_type = Option<ReceiptDetail>)]
    receipts: Option<ReceiptDetail>,
}

/// Submit many signed transactions; each is answered in order, a refusal of
/// one does not affect the others.
#[utoipa::path(post, path = "/v1/txs/batch", params(BatchQuery), request_body = SubmitBatch, responses(
    (status = 200, body = BatchResults),
    (status = "4XX", body = ErrorBody),
))]
async fn submit_batch(
    State(s): Shared,
    ApiQuery(q): ApiQuery<BatchQuery>,
    ApiJson(req): ApiJson<SubmitBatch>,
) -> Result<Json<BatchResults>, ApiError> {
    batch_limit(req.txs.len())?;
    let raw = req.txs.iter().map(|t| decode_base64(t)).collect();
    Ok(Json(batch_results(
        submit_raw(&s, raw).await,
        q.receipts.unwrap_or_default(),
    )))
}

/// The same as `/v1/txs/batch` without JSON and base64: the body is borsh
/// `Vec<Vec<u8>>` (a `u32` little-endian count, then for each transaction a
/// `u32` little-endian length and its canonical signed bytes). The answer is
/// the same JSON. For gateways that submit in bulk.
#[utoipa::path(post, path = "/v1/txs/batch/raw", params(BatchQuery),
    request_body(content = Vec<u8>, content_type = "application/octet-stream", description = "borsh Vec<Vec<u8>> of signed transactions"),
    responses((status = 200, body = BatchResults), (status = "4XX", body = ErrorBody)))]
async fn submit_batch_raw(
    State(s): Shared,
    ApiQuery(q): ApiQuery<BatchQuery>,
    req: Request,
) -> Result<Json<BatchResults>, ApiError> {
    let body = raw_body(req, MAX_BATCH_BODY).await?;
    let raw = split_batch(&body)?;
    Ok(Json(batch_results(
        submit_raw(&s, raw.into_iter().map(Ok).collect()).await,
        q.receipts.unwrap_or_default(),
    )))
}

fn batch_limit(n: usize) -> Result<(), ApiError> {
    if n > MAX_BATCH_TXS {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "request.too_large",
            format!("{n} transactions in one batch; the limit is {MAX_BATCH_TXS}"),
        ));
    }
    Ok(())
}

/// Splits a borsh `Vec<Vec<u8>>` into its byte strings, refusing a count over
/// the batch limit before reading further, a cut body and trailing bytes.
fn split_batch(body: &[u8]) -> Result<Vec<Vec<u8>>, ApiError> {
    let malformed = |what: String| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "request.malformed_batch",
            format!("the body is not a borsh Vec<Vec<u8>> of transactions: {what}"),
        )
    };
    fn take_u32(rest: &mut &[u8]) -> Option<usize> {
        let (head, tail) = rest.split_first_chunk::<4>()?;
        *rest = tail;
        Some(u32::from_le_bytes(*head) as usize)
    }
    let mut rest = body;
    let count = take_u32(&mut rest).ok_or_else(|| malformed("no transaction count".into()))?;
    batch_limit(count)?;
    let mut txs = Vec::with_capacity(count);
    for i in 0..count {
        let len = take_u32(&mut rest).ok_or_else(|| malformed(format!("transaction {i} has no length")))?;
        if len > rest.len() {
            return Err(malformed(format!(
                "transaction {i} claims {len} bytes, {} are left",
                rest.len()
            )));
        }
        let (tx, tail) = rest.split_at(len);
        txs.push(tx.to_vec());
        rest = tail;
    }
    if !rest.is_empty() {
        return Err(malformed(format!("{} bytes after the last transaction", rest.len())));
    }
    Ok(txs)
}

fn batch_results(answers: Vec<Result<Receipt, ApiError>>, detail: ReceiptDetail) -> BatchResults {
    let results = answers
        .into_iter()
        .map(|r| match r {
            Ok(receipt) => BatchItem::Receipt(ReceiptView::of(receipt, detail)),
            Err(e) => BatchItem::Error {
                error: ErrorBody {
                    code: e.code,
                    message: e.message,
                },
            },
        })
        .collect();
    BatchResults { results }
}

#[utoipa::path(get, path = "/v1/txs/{id}", params(("id" = String, Path, description = "transaction id (hex SHA-256)")),
    responses((status = 200, body = TxView), (status = 404, body = ErrorBody)))]
async fn get_tx(State(s): Shared, ApiPath(id): ApiPath<String>) -> Result<Json<TxView>, ApiError> {
    let id = parse_digest("transaction id", &id)?;
    let rec = s.ledger.tx(&id)?;
    let t = &rec.tx.tx;
    Ok(Json(TxView {
        id: rec.id.to_string(),
        index: rec.index,
        height: rec.height,
        chain_id: t.chain_id.clone(),
        kind: t.kind.clone(),
        signer: t.signer.to_string(),
        nonce: t.nonce,
        timestamp: t.timestamp,
        signature: rec.tx.signature.to_string(),
        body: describe_body(&t.kind, &t.body),
        bytes: liutong_core::to_hex(&rec.bytes),
    }))
}

#[utoipa::path(get, path = "/v1/blocks/{height}", params(("height" = u64, Path)),
    responses((status = 200, body = BlockView), (status = 404, body = ErrorBody)))]
async fn get_block(State(s): Shared, ApiPath(height): ApiPath<u64>) -> Result<Json<BlockView>, ApiError> {
    let block = s.ledger.block(height)?;
    Ok(Json(BlockView {
        header: HeaderJson::from(&block.header),
        tx_ids: block.txs.iter().map(|b| liutong_core::sha256(b).to_string()).collect(),
    }))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct StreamQuery {
    /// First height wanted (≥ 1).
    from: u64,
    /// How long to wait for block `from` if it does not exist yet (ms, at most 30000).
    #[serde(default)]
    wait_ms: u64,
}

/// The follower block stream: borsh `Vec<Block>` from height `from` on,
/// long-polling up to `wait_ms` when there is none yet.
#[utoipa::path(get, path = "/v1/blocks", params(StreamQuery), responses(
    (status = 200, content_type = "application/octet-stream", body = Vec<u8>, description = "borsh-encoded Vec<Block> (possibly empty)"),
    (status = 400, body = ErrorBody),
))]
async fn block_stream(State(s): Shared, ApiQuery(q): ApiQuery<StreamQuery>) -> Result<Response, ApiError> {
    if q.from == 0 {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "request.invalid",
            "heights start at 1",
        ));
    }
    let wait = Duration::from_millis(q.wait_ms.min(MAX_WAIT_MS));
    let mut heights = s.ledger.subscribe();
    let mut stopping = s.stopping.clone();
    tokio::select! {
        _ = tokio::time::timeout(wait, heights.wait_for(|h| *h >= q.from)) => {}
        _ = stopping.wait_for(|stop| *stop) => {}
    }
    let ledger = s.ledger.clone();
    let bytes = tokio::task::spawn_blocking(move || -> Result<Vec<u8>, ApiError> {
        let head = ledger.height();
        let mut blocks = Vec::new();
        let mut size = 0;
        let mut h = q.from;
        while h <= head && (blocks.is_empty() || size < STREAM_BYTES) {
            let b = ledger.block(h)?;
            size += b.txs.iter().map(Vec::len).sum::<usize>() + 200;
            blocks.push(b);
            h += 1;
        }
        Ok(liutong_core::encode_canonical(&blocks))
    })
    .await
    .map_err(|_| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal.panic",
            "reading blocks failed",
        )
    })??;
    Ok(([(header::CONTENT_TYPE, "application/octet-stream")], bytes).into_response())
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct InclusionQuery {
    /// Prove against this block's header (default: the head).
    height: Option<u64>,
}

#[utoipa::path(get, path = "/v1/proofs/inclusion/{tx_id}", params(("tx_id" = String, Path), InclusionQuery),
    responses((status = 200, body = InclusionProofView), (status = 404, body = ErrorBody)))]
async fn inclusion_proof(
    State(s): Shared,
    ApiPath(tx_id): ApiPath<String>,
    ApiQuery(q): ApiQuery<InclusionQuery>,
) -> Result<Json<InclusionProofView>, ApiError> {
    let id = parse_digest("transaction id", &tx_id)?;
    let p = s.ledger.inclusion_proof(&id, q.height)?;
    Ok(Json(InclusionProofView {
        tx_id: id.to_string(),
        root: p.header.header.log_root.to_string(),
        header: HeaderJson::from(&p.header),
        leaf_index: p.leaf_index,
        tree_size: p.tree_size,
        audit_path: digests_to_hex(&p.audit_path),
        tx_bytes: liutong_core::to_hex(&p.tx_bytes),
    }))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct ConsistencyQuery {
    from: u64,
    to: u64,
}

#[utoipa::path(get, path = "/v1/proofs/consistency", params(ConsistencyQuery),
    responses((status = 200, body = ConsistencyProofView), (status = 400, body = ErrorBody)))]
async fn consistency_proof(
    State(s): Shared,
    ApiQuery(q): ApiQuery<ConsistencyQuery>,
) -> Result<Json<ConsistencyProofView>, ApiError> {
    let p = s.ledger.consistency_proof(q.from, q.to)?;
    Ok(Json(ConsistencyProofView {
        from: HeaderJson::from(&p.from),
        to: HeaderJson::from(&p.to),
        path: digests_to_hex(&p.path),
    }))
}

#[utoipa::path(get, path = "/v1/notarizations/{digest}", params(("digest" = String, Path, description = "hex SHA-256 of the file")),
    responses((status = 200, body = Notarization), (status = 404, body = ErrorBody)))]
async fn get_notarization(State(s): Shared, ApiPath(digest): ApiPath<String>) -> Result<Json<Notarization>, ApiError> {
    let digest = parse_digest("digest", &digest)?;
    Ok(Json(read_record(&s, CF_NOTARIZATIONS, digest.as_bytes(), || {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("digest {digest} was never notarized"),
        )
    })?))
}

/// Search the catalog on this node's own copy of the ledger.
#[utoipa::path(get, path = "/v1/datasets", params(SearchQuery),
    responses((status = 200, body = SearchPage), (status = 400, body = ErrorBody)))]
async fn search_datasets(State(s): Shared, ApiQuery(q): ApiQuery<SearchQuery>) -> Result<Json<SearchPage>, ApiError> {
    let s2 = s.clone();
    let page = tokio::task::spawn_blocking(move || datasets::search(s2.ledger.store(), &q))
        .await
        .map_err(|_| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal.panic", "search failed"))??;
    Ok(Json(page))
}

fn parse_dataset_id(text: &str) -> Result<DatasetId, ApiError> {
    text.parse::<DatasetId>()
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "request.invalid", e.to_string()))
}

#[utoipa::path(get, path = "/v1/datasets/{id}", params(("id" = String, Path, description = "dataset id (32 hex digits)")),
    responses((status = 200, body = DatasetRecord), (status = 404, body = ErrorBody)))]
async fn get_dataset(State(s): Shared, ApiPath(id): ApiPath<String>) -> Result<Json<DatasetRecord>, ApiError> {
    Ok(Json(datasets::dataset(s.ledger.store(), &parse_dataset_id(&id)?)?))
}

#[utoipa::path(get, path = "/v1/datasets/{id}/versions/{version}",
    params(("id" = String, Path, description = "dataset id"), ("version" = u32, Path, description = "1 for the first")),
    responses((status = 200, body = DatasetVersion), (status = 404, body = ErrorBody)))]
async fn get_dataset_version(
    State(s): Shared,
    ApiPath((id, version)): ApiPath<(String, u32)>,
) -> Result<Json<DatasetVersion>, ApiError> {
    Ok(Json(datasets::version(
        s.ledger.store(),
        &parse_dataset_id(&id)?,
        version,
    )?))
}

#[utoipa::path(get, path = "/v1/datasets/{id}/offers", params(("id" = String, Path, description = "dataset id")),
    responses((status = 200, body = Vec<OfferRecord>), (status = 404, body = ErrorBody)))]
async fn dataset_offers(State(s): Shared, ApiPath(id): ApiPath<String>) -> Result<Json<Vec<OfferRecord>>, ApiError> {
    let id = parse_dataset_id(&id)?;
    datasets::dataset(s.ledger.store(), &id)?;
    Ok(Json(grants::offers(s.ledger.store(), &id)?))
}

#[utoipa::path(get, path = "/v1/datasets/{id}/grants", params(("id" = String, Path, description = "dataset id")),
    responses((status = 200, body = Vec<GrantView>), (status = 404, body = ErrorBody)))]
async fn dataset_grants(State(s): Shared, ApiPath(id): ApiPath<String>) -> Result<Json<Vec<GrantView>>, ApiError> {
    let id = parse_dataset_id(&id)?;
    datasets::dataset(s.ledger.store(), &id)?;
    let now = now_ms();
    Ok(Json(
        grants::grants_of_dataset(s.ledger.store(), &id)?
            .into_iter()
            .map(|g| GrantView::at(g, now))
            .collect(),
    ))
}

#[utoipa::path(get, path = "/v1/grants/{id}", params(("id" = String, Path, description = "grant id (32 hex digits)")),
    responses((status = 200, body = GrantView), (status = 404, body = ErrorBody)))]
async fn get_grant(State(s): Shared, ApiPath(id): ApiPath<String>) -> Result<Json<GrantView>, ApiError> {
    let id = parse_grant_id(&id)?;
    Ok(Json(GrantView::at(grants::grant(s.ledger.store(), &id)?, now_ms())))
}

fn parse_grant_id(text: &str) -> Result<GrantId, ApiError> {
    text.parse()
        .map_err(|e: crate::Error| ApiError::new(StatusCode::BAD_REQUEST, "request.invalid", e.to_string()))
}

/// A JSON-LD answer (`application/ld+json`).
pub struct JsonLd(pub serde_json::Value);

impl IntoResponse for JsonLd {
    fn into_response(self) -> Response {
        ([(header::CONTENT_TYPE, "application/ld+json")], Json(self.0)).into_response()
    }
}

/// One offer as an ODRL 2.2 `odrl:Offer` (JSON-LD).
#[utoipa::path(get, path = "/v1/datasets/{id}/offers/{number}/odrl",
    params(("id" = String, Path, description = "dataset id"), ("number" = u32, Path, description = "1 for the first offer")),
    responses((status = 200, body = Object, content_type = "application/ld+json"), (status = 404, body = ErrorBody)))]
async fn offer_odrl(State(s): Shared, ApiPath((id, number)): ApiPath<(String, u32)>) -> Result<JsonLd, ApiError> {
    let id = parse_dataset_id(&id)?;
    let dataset = datasets::dataset(s.ledger.store(), &id)?;
    let offer = grants::offer(s.ledger.store(), &id, number)?;
    Ok(JsonLd(odrl::export(&standards::offer_policy(
        &offer,
        &dataset.provider,
    ))))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct GrantsQuery {
    /// A party's credit code: the grants it provides, requested, or holds or held.
    pub party: String,
}

/// A party's grants, as provider, requester or holder.
#[utoipa::path(get, path = "/v1/grants", params(GrantsQuery),
    responses((status = 200, body = Vec<GrantView>), (status = 400, body = ErrorBody)))]
async fn list_grants(State(s): Shared, ApiQuery(q): ApiQuery<GrantsQuery>) -> Result<Json<Vec<GrantView>>, ApiError> {
    let party =
        CreditCode::parse(&q.party).map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e.code(), e.to_string()))?;
    let now = now_ms();
    Ok(Json(
        grants::grants_of_party(s.ledger.store(), &party)?
            .into_iter()
            .map(|g| GrantView::at(g, now))
            .collect(),
    ))
}

/// One grant as an ODRL 2.2 `odrl:Agreement` (`odrl:Request` until issued), JSON-LD.
#[utoipa::path(get, path = "/v1/grants/{id}/odrl", params(("id" = String, Path, description = "grant id")),
    responses((status = 200, body = Object, content_type = "application/ld+json"), (status = 404, body = ErrorBody)))]
async fn grant_odrl(State(s): Shared, ApiPath(id): ApiPath<String>) -> Result<JsonLd, ApiError> {
    let grant = grants::grant(s.ledger.store(), &parse_grant_id(&id)?)?;
    Ok(JsonLd(odrl::export(&standards::grant_policy(&GrantView::at(
        grant,
        now_ms(),
    )))))
}

/// The catalog as a DCAT-3 `dcat:Catalog` (JSON-LD): the datasets a search
/// finds, each with its current distribution and open offers (`odrl:hasPolicy`).
#[utoipa::path(get, path = "/v1/catalog/dcat", params(SearchQuery),
    responses((status = 200, body = Object, content_type = "application/ld+json"), (status = 400, body = ErrorBody)))]
async fn catalog_dcat(State(s): Shared, ApiQuery(q): ApiQuery<SearchQuery>) -> Result<JsonLd, ApiError> {
    let s2 = s.clone();
    let doc = tokio::task::spawn_blocking(move || {
        let store = s2.ledger.store();
        let page = datasets::search(store, &q)?;
        standards::dcat_catalog(&s2.genesis.chain_id, &page, |id| grants::offers(store, id))
    })
    .await
    .map_err(|_| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal.panic",
            "catalog export failed",
        )
    })??;
    Ok(JsonLd(doc))
}

/// Reads an ODRL 2.2 policy (JSON-LD) into liutong terms, or names what
/// liutong cannot enforce. Nothing is stored: submit the terms in a signed
/// `offer.add`, `grant.request` or `grant.issue` transaction.
#[utoipa::path(post, path = "/v1/policies/odrl", request_body(content = Object, content_type = "application/ld+json"),
    responses((status = 200, body = ImportedPolicy), (status = 422, body = ErrorBody)))]
async fn import_odrl(body: String) -> Result<Json<ImportedPolicy>, ApiError> {
    let policy =
        odrl::import(&body).map_err(|e| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, e.code(), e.to_string()))?;
    Ok(Json(ImportedPolicy::from(policy)))
}

#[utoipa::path(get, path = "/v1/parties", responses((status = 200, body = Vec<Party>)))]
async fn list_parties(State(s): Shared) -> Result<Json<Vec<Party>>, ApiError> {
    let mut out = Vec::new();
    for (_, v) in s.ledger.store().scan(CF_PARTIES)? {
        out.push(decode_stored::<Party>(CF_PARTIES, &v)?);
    }
    Ok(Json(out))
}

#[utoipa::path(get, path = "/v1/parties/{credit_code}", params(("credit_code" = String, Path)),
    responses((status = 200, body = Party), (status = 404, body = ErrorBody)))]
async fn get_party(State(s): Shared, ApiPath(code): ApiPath<String>) -> Result<Json<Party>, ApiError> {
    let code = CreditCode::parse(&code).map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e.code(), e.to_string()))?;
    Ok(Json(read_record(&s, CF_PARTIES, code.as_str().as_bytes(), || {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "party.not_found",
            format!("no party {code} is registered"),
        )
    })?))
}

#[utoipa::path(get, path = "/v1/keys/{public_key}", params(("public_key" = String, Path, description = "hex Ed25519 public key")),
    responses((status = 200, body = KeyBindingView), (status = 404, body = ErrorBody)))]
async fn get_key(State(s): Shared, ApiPath(key): ApiPath<String>) -> Result<Json<KeyBindingView>, ApiError> {
    let key: liutong_core::PublicKey = key.parse()?;
    let b: KeyBinding = read_record(&s, CF_PARTY_KEYS, key.as_bytes(), || {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("key {key} belongs to no party"),
        )
    })?;
    Ok(Json(KeyBindingView {
        public_key: key.to_string(),
        party: b.party.to_string(),
        current: b.current,
        bound_by: b.bound_by.map(|d| d.to_string()),
    }))
}

/// This document.
#[utoipa::path(get, path = "/v1/openapi.json", responses((status = 200, body = Object)))]
async fn openapi() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}

/// A raw body of at most `limit` bytes.
async fn raw_body(req: Request, limit: usize) -> Result<axum::body::Bytes, ApiError> {
    axum::body::to_bytes(req.into_body(), limit).await.map_err(|_| {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "request.too_large",
            format!("the body is larger than {limit} bytes, or was cut"),
        )
    })
}

fn provider_of(s: &AppState) -> Result<Arc<crate::serve::Provider>, ApiError> {
    s.provider.clone().ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "delivery.not_offered",
            "this node's home holds no party identity, so it serves no deliveries",
        )
    })
}

/// The media type of a delivery stream.
pub const DELIVERY_MEDIA_TYPE: &str = "application/vnd.liutong.delivery";

/// Start or resume a delivery: the body is the consumer's signed request
/// (borsh). The answer streams the content sealed to the consumer's
/// registered key: `LTD1`, the clear header, then length-prefixed sealed
/// frames (the chunk hash list, then the chunks). A new delivery's use is
/// counted on the ledger before the first byte is sent.
#[utoipa::path(post, path = "/v1/deliveries", request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    responses((status = 200, description = "the sealed stream", content_type = "application/vnd.liutong.delivery"),
        (status = "4XX", body = ErrorBody), (status = 503, body = ErrorBody)))]
async fn start_delivery(State(s): Shared, req: Request) -> Result<Response, ApiError> {
    let provider = provider_of(&s)?;
    let body = raw_body(req, crate::delivery::MAX_REQUEST).await?;
    let signed = crate::delivery::SignedRequest::from_bytes(&body)?;
    let delivery = provider.start(&s, signed).await?;
    stream_response(delivery.into_stream())
}

/// A sealed stream as the response body.
fn stream_response(rx: tokio::sync::mpsc::Receiver<std::io::Result<axum::body::Bytes>>) -> Result<Response, ApiError> {
    let stream = futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|item| (item, rx)) });
    Response::builder()
        .header(header::CONTENT_TYPE, DELIVERY_MEDIA_TYPE)
        .body(axum::body::Body::from_stream(stream))
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal.error", e.to_string()))
}

/// Run a query under a grant: the body is borsh of the consumer's signed
/// request (action query, naming SHA-256 of the SQL) and the SQL. The node
/// plans it under the grant's terms, runs it, counts the use and streams
/// the result sealed to the consumer like a delivery: frame 0 holds the
/// result's digest, rows and what was enforced; then an Arrow IPC stream.
#[utoipa::path(post, path = "/v1/queries", request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    responses((status = 200, description = "the sealed result", content_type = "application/vnd.liutong.delivery"),
        (status = 422, description = "refused under the grant's terms, with the reason", body = ErrorBody)))]
async fn start_query(State(s): Shared, req: Request) -> Result<Response, ApiError> {
    let provider = provider_of(&s)?;
    let body = raw_body(req, crate::query::MAX_CALL).await?;
    let call = crate::query::QueryCall::from_bytes(&body)?;
    let result = provider.query(&s, call).await?;
    stream_response(result.into_stream())
}

/// Hand in the consumer's signed receipt (borsh) for a delivery; the node
/// writes the access-log entry with it and answers the committed entry.
#[utoipa::path(post, path = "/v1/deliveries/receipts", request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    responses((status = 200, body = crate::access::AccessRecord), (status = "4XX", body = ErrorBody)))]
async fn take_receipt(State(s): Shared, req: Request) -> Result<Json<serde_json::Value>, ApiError> {
    let provider = provider_of(&s)?;
    let body = raw_body(req, crate::delivery::MAX_REQUEST).await?;
    let receipt = crate::delivery::SignedReceipt::from_bytes(&body)?;
    Ok(Json(provider.receipt(&s, receipt).await?))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AccessLogQuery {
    /// Entries of this grant (32 hex digits).
    pub grant: Option<String>,
    /// Entries of this dataset (32 hex digits).
    pub dataset: Option<String>,
    /// Entries where this party (credit code) provided or received.
    pub party: Option<String>,
    /// A previous page's `next`.
    pub cursor: Option<String>,
    /// Entries per page (1 to 1000; default 100).
    pub limit: Option<usize>,
}

/// The access log, by exactly one of grant, dataset or party, oldest first.
#[utoipa::path(get, path = "/v1/access-log", params(AccessLogQuery),
    responses((status = 200, body = crate::access::AccessPage), (status = 400, body = ErrorBody)))]
async fn access_log(
    State(s): Shared,
    ApiQuery(q): ApiQuery<AccessLogQuery>,
) -> Result<Json<crate::access::AccessPage>, ApiError> {
    use crate::access::AccessQuery;
    let bad = |m: String| ApiError::new(StatusCode::BAD_REQUEST, "request.bad_query", m);
    let by = match (&q.grant, &q.dataset, &q.party) {
        (Some(g), None, None) => AccessQuery::Grant(parse_grant_id(g)?),
        (None, Some(d), None) => {
            AccessQuery::Dataset(d.parse::<DatasetId>().map_err(|e| bad(format!("dataset: {e}")))?)
        }
        (None, None, Some(p)) => AccessQuery::Party(CreditCode::parse(p).map_err(|e| bad(format!("party: {e}")))?),
        _ => return Err(bad("name exactly one of grant, dataset or party".into())),
    };
    let cursor = match &q.cursor {
        Some(c) => Some(hex::decode(c).map_err(|_| bad("cursor: not a page cursor".into()))?),
        None => None,
    };
    let limit = q.limit.unwrap_or(100);
    if limit == 0 || limit > crate::access::MAX_PAGE {
        return Err(bad(format!("limit must be 1 to {}", crate::access::MAX_PAGE)));
    }
    Ok(Json(crate::access::list(
        s.ledger.store(),
        &by,
        cursor.as_deref(),
        limit,
    )?))
}

/// One access-log entry, by its delivery (the first request's digest).
#[utoipa::path(get, path = "/v1/access-log/{request}", params(("request" = String, Path, description = "the delivery's first request digest (hex)")),
    responses((status = 200, body = crate::access::AccessRecord), (status = 404, body = ErrorBody)))]
async fn access_entry(
    State(s): Shared,
    ApiPath(request): ApiPath<String>,
) -> Result<Json<crate::access::AccessRecord>, ApiError> {
    let digest = parse_digest("request", &request)?;
    crate::access::entry(s.ledger.store(), &digest)?
        .map(Json)
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "not_found",
                format!("no access-log entry for {digest}"),
            )
        })
}

/// A signed audit call from the body, checked: the caller's party and what it may see.
async fn audit_call(
    s: &Arc<AppState>,
    req: Request,
) -> Result<(crate::audit::AuditOp, crate::party::Party, crate::audit::Scope), ApiError> {
    let body = raw_body(req, crate::audit::MAX_CALL).await?;
    let call = crate::audit::SignedAuditCall::from_bytes(&body)?;
    let (party, scope) = call.authorize(s.ledger.store(), &s.genesis, liutong_core::now_ms())?;
    Ok((call.call.op, party, scope))
}

fn wrong_op(route: &str) -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "audit.wrong_operation",
        format!("this call asks for another operation than {route}"),
    )
}

/// A page of a trace: access-log entries by dataset (all versions), party,
/// grant, action and time range, oldest first, as the caller may see them.
/// The body is a signed audit call (borsh, operation `Trace`).
#[utoipa::path(post, path = "/v1/audit/trace", request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    responses((status = 200, body = crate::audit::TracePage), (status = "4XX", body = ErrorBody)))]
async fn audit_trace(State(s): Shared, req: Request) -> Result<Json<crate::audit::TracePage>, ApiError> {
    let (op, _, scope) = audit_call(&s, req).await?;
    let crate::audit::AuditOp::Trace { filter, cursor, limit } = op else {
        return Err(wrong_op("/v1/audit/trace"));
    };
    let ledger = s.ledger.clone();
    let page = tokio::task::spawn_blocking(move || {
        let head = ledger.height();
        let page = crate::audit::trace(ledger.store(), &filter, &scope, cursor.as_deref(), limit as usize)?;
        let (parties, datasets) = crate::audit::names_of(ledger.store(), &page.entries)?;
        Ok::<_, crate::Error>(crate::audit::TracePage {
            entries: page.entries,
            next: page.next,
            parties,
            datasets,
            head,
            visibility: scope.describe(),
        })
    })
    .await
    .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal.error", e.to_string()))??;
    Ok(Json(page))
}

/// The media type of an Arrow IPC stream.
pub const ARROW_MEDIA_TYPE: &str = "application/vnd.apache.arrow.stream";

/// Read-only SQL over the ledger's tables (parties, datasets, offers,
/// grants, access_log, notarizations, blocks), as the caller may see them.
/// The body is a signed audit call (borsh, operation `Sql`); the answer is
/// the result as an Arrow IPC stream.
#[utoipa::path(post, path = "/v1/audit/sql", request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    responses((status = 200, description = "the result", content_type = "application/vnd.apache.arrow.stream"),
        (status = 422, description = "refused, with the reason", body = ErrorBody)))]
async fn audit_sql(State(s): Shared, req: Request) -> Result<Response, ApiError> {
    let (op, party, scope) = audit_call(&s, req).await?;
    let crate::audit::AuditOp::Sql { sql } = op else {
        return Err(wrong_op("/v1/audit/sql"));
    };
    let _turn = s
        .limiter
        .enter(crate::serve::QueryCaller::Key(party.profile.signing_key))?;
    let q = s.queries;
    let limits = liutong_policies::query::QueryLimits {
        memory_bytes: q.memory_bytes,
        ..Default::default()
    };
    let caller = crate::audit::sql::Caller {
        scope,
        roles: party.profile.roles,
    };
    let run = s.audit.run(
        &s.ledger,
        &caller,
        &sql,
        limits,
        q.max_result_bytes,
        liutong_core::now_ms(),
    );
    let (ipc, rows) = tokio::time::timeout(q.timeout, run).await.map_err(|_| {
        crate::Error::from(crate::delivery::Refusal::new(
            "query.timeout",
            format!("the query ran longer than this node allows ({} s)", q.timeout.as_secs()),
        ))
    })??;
    Response::builder()
        .header(header::CONTENT_TYPE, ARROW_MEDIA_TYPE)
        .header("x-liutong-rows", rows.to_string())
        .body(axum::body::Body::from(ipc))
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal.error", e.to_string()))
}

/// An evidence bundle (`liutong-evidence/2`, without the exporter's
/// attestation, which the exporter adds) for an entry, a grant or a trace,
/// as the caller may see it. The body is a signed audit call (operation `Bundle`).
#[utoipa::path(post, path = "/v1/audit/bundle", request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    responses((status = 200, description = "the bundle (liutong-evidence/2 JSON)", body = Object), (status = "4XX", body = ErrorBody)))]
async fn audit_bundle(State(s): Shared, req: Request) -> Result<Response, ApiError> {
    let (op, party, scope) = audit_call(&s, req).await?;
    let crate::audit::AuditOp::Bundle { subject } = op else {
        return Err(wrong_op("/v1/audit/bundle"));
    };
    // The exporter is the caller: `authorize` checked the key is its party's current one.
    let (ledger, genesis, exporter) = (s.ledger.clone(), s.genesis.clone(), party.profile.signing_key);
    let bundle = tokio::task::spawn_blocking(move || {
        crate::audit::bundle::build(&ledger, &genesis, &subject, &scope, &exporter)
    })
    .await
    .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal.error", e.to_string()))??;
    Response::builder()
        .header(header::CONTENT_TYPE, "application/json")
        .body(axum::body::Body::from(bundle.to_canonical_json()))
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal.error", e.to_string()))
}

/// A grant-tree leaf's authentication path at the tree's current root. Ask
/// your own node: the leaf you ask for is the grant you are about to use.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct ZkPathView {
    pub leaf: u64,
    /// The leaf's value (the grant's commitment, or 0 once revoked or expired).
    pub value: String,
    pub root: String,
    /// Siblings from the leaf up, hex.
    pub siblings: Vec<String>,
    /// The block this is the root after.
    pub height: u64,
}

#[utoipa::path(get, path = "/v1/zk/paths/{leaf}", params(("leaf" = u64, Path, description = "the leaf index (a private grant's `private.leaf`)")),
    responses((status = 200, body = ZkPathView), (status = 400, body = ErrorBody)))]
async fn zk_path(State(s): Shared, ApiPath(leaf): ApiPath<String>) -> Result<Json<ZkPathView>, ApiError> {
    let leaf: u64 = leaf
        .parse()
        .ok()
        .filter(|l| *l < liutong_zk::tree::CAPACITY)
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "request.bad_path",
                format!("leaf must be a number below {}", liutong_zk::tree::CAPACITY),
            )
        })?;
    Ok(Json(crate::private::path_view(&s.ledger, leaf)?))
}

#[utoipa::path(get, path = "/v1/zk/nullifiers/{nullifier}", params(("nullifier" = String, Path, description = "a nullifier (hex)")),
    responses((status = 200, body = crate::private::NullifierRecord), (status = 404, body = ErrorBody)))]
async fn zk_nullifier(
    State(s): Shared,
    ApiPath(n): ApiPath<String>,
) -> Result<Json<crate::private::NullifierRecord>, ApiError> {
    let n: crate::private::FieldHex = n
        .parse()
        .map_err(|e: crate::Error| ApiError::new(StatusCode::BAD_REQUEST, "request.bad_path", e.to_string()))?;
    crate::private::nullifier(s.ledger.store(), &n)?
        .map(Json)
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "not_found",
                format!("nullifier {n} is not spent"),
            )
        })
}

/// The use circuit's Groth16 proving key (arkworks' uncompressed encoding),
/// as `liutong init` made it; a follower fetches it with the genesis and
/// checks that its verifying key is the genesis's.
#[utoipa::path(get, path = "/v1/zk/proving-key",
    responses((status = 200, content_type = "application/octet-stream", body = Vec<u8>), (status = 404, body = ErrorBody)))]
async fn zk_proving_key(State(s): Shared) -> Result<axum::response::Response, ApiError> {
    let path = s.home.proving_key_path();
    let bytes = tokio::fs::read(&path).await.map_err(|_| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "this node has no proving key; ask the orderer's node".to_string(),
        )
    })?;
    Ok(([(axum::http::header::CONTENT_TYPE, "application/octet-stream")], bytes).into_response())
}
