//! Proofs of equivocation from peers' gossip: never a panic; a proof that decodes re-encodes
//! to bytes that decode to the same proof.
#![no_main]

use hashmesh_protocol::EquivocationProof;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    let Ok(proof) = EquivocationProof::decode(bytes) else { return };
    let again = EquivocationProof::decode(&proof.encode()).expect("a proof's own encoding decodes");
    assert_eq!(again.encode(), proof.encode());
});
