//! Every multi-node and RPC scenario, in one test binary so the workspace builds few.

mod federation;
mod followers;
mod governance;
mod hma;
mod lists;
mod matching;
mod metrics;
mod replication;
mod review;
mod rpc;
mod startup;
mod stats;
mod video;
mod webhooks;
