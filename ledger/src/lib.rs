//! liutong-ledger: orders and stores signed transactions and proves their inclusion.
//!
//! It owns the transaction envelope and its checks, blocks signed by the
//! orderer, one append-only RFC 6962 Merkle log over every committed
//! transaction, the RocksDB store (a block and all its state changes in one
//! synced write batch), inclusion and consistency proofs, whole-chain
//! verification, and the [`Ordering`] trait with its [`Solo`] implementation.
//!
//! Invariant: the ledger never interprets a transaction body. The
//! application's [`StateMachine`] gives bodies meaning and keeps its state in
//! column families the ledger opens for it and writes in the same batch.

mod block;
mod checker;
mod error;
mod ledger;
pub use liutong_core::merkle;
mod ordering;
mod state;
mod store;
mod tx;

pub use block::{Block, BlockHeader, LedgerGenesis, LedgerParams, SignedHeader, HEADER_SIGNING_DOMAIN};
pub use checker::Checker;
pub use error::{Error, Result};
pub use ledger::{
    BlockContext, ChainReport, ConsistencyProof, InclusionProof, Ledger, Receipt, Sealed, Tip, TxOutcome, TxRecord,
};
pub use ordering::{Ordering, Solo, Submission};
pub use state::{Applied, Overlay, Record, RecordJson, Rejection, Render, StateMachine, WriteSet};
pub use store::Store;
pub use tx::{verify_signatures, CheckedTx, EnvelopeRules, SignedTx, Transaction, TxId, TX_SIGNING_DOMAIN};
