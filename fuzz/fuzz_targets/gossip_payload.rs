//! A gossip message as the ingest stage meets it: the first byte picks the topic (records or
//! proofs), the rest is the payload. Decoding and every check before storing never panic.
#![no_main]

use hashmesh_node::replica::Verified;
use hashmesh_protocol::{EquivocationProof, Record};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    let Some((topic, payload)) = input.split_first() else { return };
    if topic % 2 == 0 {
        if let Ok(record) = Record::decode(payload) {
            let id = record.id();
            if let Ok(verified) = Verified::check(record) {
                assert_eq!(verified.record().id(), id);
            }
        }
    } else if let Ok(proof) = EquivocationProof::decode(payload) {
        assert_eq!(EquivocationProof::decode(&proof.encode()).map(|p| p.encode()).ok(), Some(proof.encode()));
    }
});
