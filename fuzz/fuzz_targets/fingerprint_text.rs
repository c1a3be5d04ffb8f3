//! Fingerprint text (`kind:hex`) from requests and lists: never a panic; what parses prints
//! back to text that parses to the same fingerprint.
#![no_main]

use hashmesh_protocol::Fingerprint;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    let Ok(text) = std::str::from_utf8(bytes) else { return };
    let Ok(fingerprint) = text.parse::<Fingerprint>() else { return };
    let printed = fingerprint.to_string();
    assert_eq!(printed.parse::<Fingerprint>().ok(), Some(fingerprint));
});
