//! The `/hashmesh/sync/3` messages as a peer (libp2p's CBOR codec) or a member node answering a
//! follower (`POST /v1/sync`) sends them: any bytes decode to a message or an error, never a
//! panic, and a range answer is checked as the ingest stage checks it.
#![no_main]

use hashmesh_node::sync::wire::decode_range;
use hashmesh_node::sync::{SyncRequest, SyncResponse};
use hashmesh_protocol::{EquivocationProof, Record};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    if let Ok(request) = cbor4ii::serde::from_slice::<SyncRequest>(bytes) {
        let again = cbor4ii::serde::to_vec(Vec::new(), &request).expect("a request encodes");
        assert_eq!(cbor4ii::serde::from_slice::<SyncRequest>(&again).ok(), Some(request));
    }
    match cbor4ii::serde::from_slice::<SyncResponse>(bytes) {
        Ok(SyncResponse::Records(records)) => {
            // Asked of the first record's author from its seq, as a follower or peer would.
            let Some(first) = records.first().and_then(|b| Record::decode(b).ok()) else { return };
            for limit in [0, 1, records.len() as u32, u32::MAX] {
                if let Ok(decoded) = decode_range(first.author(), first.seq(), limit, &records) {
                    assert!(decoded.len() <= limit as usize);
                    assert!(decoded.iter().all(|r| r.author() == first.author()));
                }
            }
        }
        Ok(SyncResponse::Proof(proof)) => {
            let _ = EquivocationProof::decode(&proof);
        }
        Ok(_) | Err(_) => {}
    }
});
