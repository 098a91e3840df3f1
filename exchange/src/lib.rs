//! liutong-exchange: the node of a liutong consortium.
//!
//! It owns the exchange's state machine (parties and their standing,
//! notarizations, datasets and their search index; later grants and the
//! access log), the genesis
//! document, the HTTP API under `/v1` and its client, the follower loop,
//! evidence bundles, and the `liutong` command line with its demo and
//! benchmarks. The ledger below it orders and proves; this crate gives the
//! transactions meaning.

pub mod access;
pub mod api;
pub mod audit;
pub mod audit_cli;
pub mod bench;
pub mod bench_audit;
pub mod bench_delivery;
pub mod bench_query;
pub mod bench_zk;
pub mod cli;
pub mod client;
pub mod dataset_cli;
pub mod datasets;
pub mod delivery;
pub mod demo;
mod error;
pub mod evidence;
pub mod fetch;
pub mod genesis;
pub mod grant_cli;
pub mod grants;
pub mod home;
pub mod machine;
pub mod node;
pub mod notary;
pub mod party;
pub mod private;
pub mod query;
pub mod serve;
pub mod standards;
pub mod wire;
pub mod zk_cli;

pub use error::{Error, Result};
