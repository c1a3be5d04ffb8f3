//! Answering sync requests from the replica: the same answers whether the request came from a
//! member peer over libp2p or from a follower over the RPC.

use super::ReplicaHandle;
use crate::sync::{SyncRequest, SyncResponse, wire};

impl ReplicaHandle {
    /// The answer to `request`. Reads the store: call it on a blocking thread.
    pub fn answer(&self, request: SyncRequest) -> SyncResponse {
        match request {
            SyncRequest::Heads => {
                let manifest = self.manifest().borrow().clone();
                SyncResponse::Heads {
                    clock: self.clock(),
                    epoch: manifest.epoch,
                    manifest: manifest.digest(),
                }
            }
            SyncRequest::Range { author, from_seq, limit } => {
                let limit = limit.min(wire::BATCH) as usize;
                match self.range_bytes(&author, from_seq, limit, wire::MAX_RESPONSE_BYTES) {
                    Ok(records) => {
                        SyncResponse::Records(records.into_iter().map(serde_bytes::ByteBuf::from).collect())
                    }
                    Err(e) => SyncResponse::Refused(e.to_string()),
                }
            }
            SyncRequest::Proof { author } => match self.proof(&author) {
                Some(bytes) => SyncResponse::Proof(serde_bytes::ByteBuf::from(bytes)),
                None => SyncResponse::Refused(format!("no proof held against {author}")),
            },
        }
    }
}
