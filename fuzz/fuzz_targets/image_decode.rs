//! An uploaded file as `POST /v1/match` and `hashmesh hash` hash it: exact hashes always, and
//! the perceptual ones when it decodes as an image. Never a panic, and memory stays within
//! libFuzzer's limit (-rss_limit_mb) whatever an image's header claims.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    let hashed = hashmesh_node::hashers::fingerprint_bytes(bytes);
    assert!(!hashed.computed.is_empty(), "exact hashes are always computed");
});
