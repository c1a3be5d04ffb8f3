//! The hashmesh node: a sled replica of the federation's signed records, the matching index,
//! the HTTP RPC, and (in `net`) replication between member nodes.
//!
//! `main.rs` is only the CLI; everything it starts lives here so the test harness can start
//! many nodes in one process.

pub mod actioner;
pub mod api;
pub mod audit;
pub mod cli;
pub mod config;
pub mod files;
pub mod hashers;
pub mod identity;
pub mod index;
pub mod lists;
pub mod metrics;
pub mod net;
pub mod node;
pub mod replica;
pub mod rpc;
pub mod signals;
pub mod store;
pub mod sync;

pub use node::{NodeHandle, RunningNode};
