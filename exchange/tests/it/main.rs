//! Integration tests of the exchange node: real RocksDB in temp dirs, real
//! loopback sockets, the real `liutong` binary where a process matters.

mod api_bad_input;
mod audit;
mod cli;
mod common;
mod crash;
mod datasets;
mod delivery;
mod evidence;
mod follower;
mod grants;
mod parties;
mod query;
mod standards;
mod tamper;
