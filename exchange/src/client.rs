//! The HTTP client of a liutong node, used by the CLI, the demo, the bench
//! and followers; and the builder that signs transactions with a home's keys.

use crate::datasets::SearchQuery;
use crate::genesis::Genesis;
use crate::notary::Notarization;
use crate::party::Party;
use crate::wire::*;
use crate::{Error, Result};
use borsh::BorshSerialize;
use liutong_core::{encode_canonical, now_ms, Canonical, Digest, SigningKey};
use liutong_ledger::{Block, SignedTx, Transaction};
use serde::de::DeserializeOwned;
use std::time::Duration;

/// Signs a transaction of `kind` with a fresh random nonce and the current time.
pub fn sign_tx(chain_id: &str, kind: &str, body: &impl BorshSerialize, key: &SigningKey) -> SignedTx {
    Transaction {
        chain_id: chain_id.to_string(),
        kind: kind.to_string(),
        body: encode_canonical(body),
        signer: key.public_key(),
        nonce: rand::random(),
        timestamp: now_ms(),
    }
    .sign(key)
}

#[derive(Clone, Debug)]
pub struct Client {
    base: String,
    http: reqwest::Client,
}

impl Client {
    /// `url` is a node's base URL, e.g. `http://127.0.0.1:7700`.
    pub fn new(url: &str) -> Result<Client> {
        let base = url.trim().trim_end_matches('/').to_string();
        if !(base.starts_with("http://") || base.starts_with("https://")) || base.len() < 8 {
            return Err(Error::BadRequest(format!(
                "node URL {url:?} must start with http:// or https://"
            )));
        }
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .pool_max_idle_per_host(64)
            .build()
            .map_err(|e| Error::Io(format!("HTTP client: {e}")))?;
        Ok(Client { base, http })
    }

    pub fn url(&self) -> &str {
        &self.base
    }

    fn unreachable(&self, e: reqwest::Error) -> Error {
        Error::Unreachable {
            url: self.base.clone(),
            reason: e.to_string(),
        }
    }

    /// Sends a request to this node; a transport failure names the node.
    async fn send(&self, req: reqwest::RequestBuilder) -> Result<reqwest::Response> {
        req.send().await.map_err(|e| self.unreachable(e))
    }

    async fn answer<T: DeserializeOwned>(&self, resp: reqwest::Response) -> Result<T> {
        let status = resp.status();
        let bytes = resp.bytes().await.map_err(|e| self.unreachable(e))?;
        if status.is_success() {
            serde_json::from_slice(&bytes)
                .map_err(|e| Error::Io(format!("node {} answered with unexpected JSON: {e}", self.base)))
        } else {
            Err(remote_error(status.as_u16(), &bytes))
        }
    }

    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T> {
        let resp = self.send(self.http.get(format!("{}{path}", self.base))).await?;
        self.answer(resp).await
    }

    async fn post<B: serde::Serialize, T: DeserializeOwned>(&self, path: &str, body: &B) -> Result<T> {
        let resp = self
            .send(self.http.post(format!("{}{path}", self.base)).json(body))
            .await?;
        self.answer(resp).await
    }

    /// Posts a binary body (borsh) and answers the binary (or JSON) body.
    pub async fn post_bytes(&self, path: &str, body: Vec<u8>) -> Result<Vec<u8>> {
        let resp = self.post_octets(path, body).await?;
        self.binary_answer(resp).await
    }

    async fn post_octets(&self, path: &str, body: Vec<u8>) -> Result<reqwest::Response> {
        self.send(
            self.http
                .post(format!("{}{path}", self.base))
                .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
                .body(body),
        )
        .await
    }

    async fn binary_answer(&self, resp: reqwest::Response) -> Result<Vec<u8>> {
        let status = resp.status();
        let bytes = resp.bytes().await.map_err(|e| self.unreachable(e))?;
        if status.is_success() {
            Ok(bytes.to_vec())
        } else {
            Err(remote_error(status.as_u16(), &bytes))
        }
    }

    /// A binary resource.
    pub async fn bytes(&self, path: &str) -> Result<Vec<u8>> {
        let resp = self.send(self.http.get(format!("{}{path}", self.base))).await?;
        self.binary_answer(resp).await
    }

    pub async fn status(&self) -> Result<StatusView> {
        self.get("/v1/status").await
    }

    pub async fn genesis(&self) -> Result<Genesis> {
        let g: Genesis = self.get("/v1/genesis").await?;
        g.validate()?;
        Ok(g)
    }

    pub async fn submit(&self, tx: &SignedTx) -> Result<ReceiptView> {
        self.submit_bytes(&tx.canonical_bytes()).await
    }

    pub async fn submit_bytes(&self, bytes: &[u8]) -> Result<ReceiptView> {
        self.post(
            "/v1/txs",
            &SubmitTx {
                tx: liutong_core::to_base64(bytes),
            },
        )
        .await
    }

    pub async fn submit_batch(&self, txs: &[Vec<u8>]) -> Result<Vec<Result<ReceiptView>>> {
        let body = SubmitBatch {
            txs: txs.iter().map(|t| liutong_core::to_base64(t)).collect(),
        };
        let answer: BatchResults = self.post("/v1/txs/batch", &body).await?;
        Ok(batch_answers(answer))
    }

    /// [`Client::submit_batch`] without JSON and base64 (`/v1/txs/batch/raw`,
    /// borsh `Vec<Vec<u8>>`); with `ReceiptDetail::Compact` the receipts
    /// carry no records.
    pub async fn submit_batch_raw(&self, txs: &[Vec<u8>], detail: ReceiptDetail) -> Result<Vec<Result<ReceiptView>>> {
        let body = borsh::to_vec(txs).map_err(|e| Error::Io(e.to_string()))?;
        let path = match detail {
            ReceiptDetail::Full => "/v1/txs/batch/raw",
            ReceiptDetail::Compact => "/v1/txs/batch/raw?receipts=compact",
        };
        let resp = self.post_octets(path, body).await?;
        let answer: BatchResults = self.answer(resp).await?;
        Ok(batch_answers(answer))
    }

    /// One page of a catalog search (`/v1/datasets`).
    pub async fn search_datasets(&self, q: &SearchQuery) -> Result<crate::datasets::SearchPage> {
        self.get_query("/v1/datasets", q).await
    }

    /// The same page as a DCAT-3 catalog in JSON-LD (`/v1/catalog/dcat`).
    pub async fn catalog_dcat(&self, q: &SearchQuery) -> Result<serde_json::Value> {
        self.get_query("/v1/catalog/dcat", q).await
    }

    async fn get_query<T: DeserializeOwned>(&self, path: &str, q: &impl serde::Serialize) -> Result<T> {
        let resp = self
            .send(self.http.get(format!("{}{path}", self.base)).query(q))
            .await?;
        self.answer(resp).await
    }

    /// An offer as ODRL 2.2 JSON-LD.
    pub async fn offer_odrl(&self, dataset: &liutong_catalog::DatasetId, number: u32) -> Result<serde_json::Value> {
        self.get(&format!("/v1/datasets/{dataset}/offers/{number}/odrl")).await
    }

    /// A grant as ODRL 2.2 JSON-LD.
    pub async fn grant_odrl(&self, id: &crate::grants::GrantId) -> Result<serde_json::Value> {
        self.get(&format!("/v1/grants/{id}/odrl")).await
    }

    /// The grants a party provides, requested, or holds or held.
    pub async fn grants_of_party(&self, party: &str) -> Result<Vec<crate::grants::GrantView>> {
        self.get_query("/v1/grants", &[("party", party)]).await
    }

    pub async fn dataset(&self, id: &liutong_catalog::DatasetId) -> Result<crate::datasets::DatasetRecord> {
        self.get(&format!("/v1/datasets/{id}")).await
    }

    pub async fn dataset_version(
        &self,
        id: &liutong_catalog::DatasetId,
        version: u32,
    ) -> Result<crate::datasets::DatasetVersion> {
        self.get(&format!("/v1/datasets/{id}/versions/{version}")).await
    }

    pub async fn offers(&self, dataset: &liutong_catalog::DatasetId) -> Result<Vec<crate::grants::OfferRecord>> {
        self.get(&format!("/v1/datasets/{dataset}/offers")).await
    }

    pub async fn grants_of_dataset(
        &self,
        dataset: &liutong_catalog::DatasetId,
    ) -> Result<Vec<crate::grants::GrantView>> {
        self.get(&format!("/v1/datasets/{dataset}/grants")).await
    }

    pub async fn grant(&self, id: &crate::grants::GrantId) -> Result<crate::grants::GrantView> {
        self.get(&format!("/v1/grants/{id}")).await
    }

    pub async fn tx(&self, id: &Digest) -> Result<TxView> {
        self.get(&format!("/v1/txs/{id}")).await
    }

    pub async fn notarization(&self, digest: &Digest) -> Result<Notarization> {
        self.get(&format!("/v1/notarizations/{digest}")).await
    }

    pub async fn inclusion_proof(&self, tx_id: &Digest, height: Option<u64>) -> Result<InclusionProofView> {
        match height {
            Some(h) => self.get(&format!("/v1/proofs/inclusion/{tx_id}?height={h}")).await,
            None => self.get(&format!("/v1/proofs/inclusion/{tx_id}")).await,
        }
    }

    pub async fn consistency_proof(&self, from: u64, to: u64) -> Result<ConsistencyProofView> {
        self.get(&format!("/v1/proofs/consistency?from={from}&to={to}")).await
    }

    pub async fn parties(&self) -> Result<Vec<Party>> {
        self.get("/v1/parties").await
    }

    pub async fn party(&self, credit_code: &str) -> Result<Party> {
        self.get(&format!("/v1/parties/{credit_code}")).await
    }

    pub async fn key_binding(&self, key: &liutong_core::PublicKey) -> Result<KeyBindingView> {
        self.get(&format!("/v1/keys/{key}")).await
    }

    /// Blocks from height `from` on (the follower stream), waiting up to
    /// `wait_ms` for the first if none is there yet.
    pub async fn blocks(&self, from: u64, wait_ms: u64) -> Result<Vec<Block>> {
        let resp = self
            .send(
                self.http
                    .get(format!("{}/v1/blocks?from={from}&wait_ms={wait_ms}", self.base))
                    .timeout(Duration::from_millis(wait_ms + 30_000)),
            )
            .await?;
        let status = resp.status();
        let bytes = resp.bytes().await.map_err(|e| self.unreachable(e))?;
        if !status.is_success() {
            return Err(remote_error(status.as_u16(), &bytes));
        }
        liutong_core::decode_canonical("block stream", &bytes).map_err(Error::from)
    }
}

pub(crate) fn remote_error(status: u16, bytes: &[u8]) -> Error {
    match serde_json::from_slice::<ErrorBody>(bytes) {
        Ok(e) => Error::Remote {
            code: e.code,
            message: e.message,
            status,
        },
        Err(_) => Error::Remote {
            code: "http.unexpected".into(),
            message: format!(
                "HTTP {status}: {}",
                String::from_utf8_lossy(&bytes[..bytes.len().min(200)])
            ),
            status,
        },
    }
}

/// One result per submitted transaction: its receipt or its refusal.
fn batch_answers(answer: BatchResults) -> Vec<Result<ReceiptView>> {
    answer
        .results
        .into_iter()
        .map(|item| match item {
            BatchItem::Receipt(r) => Ok(r),
            BatchItem::Error { error } => Err(Error::Remote {
                code: error.code,
                message: error.message,
                status: 200,
            }),
        })
        .collect()
}
