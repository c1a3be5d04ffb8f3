//! Exact catch-up between replicas, with no I/O: vector clocks, the wire messages and their
//! checks, the fork search, and the [`Engine`] state machine that decides what to fetch.
//!
//! The network layer (`net/`) maps the engine's outputs to libp2p requests and answers back
//! to events; the simulator in `sim.rs` drives the same engine between in-process replicas
//! with message loss, duplication, reordering, partitions and equivocating authors.

mod clock;
mod engine;
pub mod fork;
pub mod wire;

pub use clock::{Clock, ForkMark, LogClock, digest};
pub use engine::{Engine, EngineConfig, Event, Fetch, FetchResult, Local, Output, OwnLog, PIPELINE, Purpose};
pub use wire::{SyncRequest, SyncResponse};

#[cfg(test)]
mod sim;
#[cfg(test)]
mod tests;
