//! Federation manifests (TOML from founders and from membership records): never a panic; a
//! manifest that parses writes back to TOML that parses to the same manifest.
#![no_main]

use hashmesh_protocol::Manifest;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    let Ok(text) = std::str::from_utf8(bytes) else { return };
    let Ok(manifest) = Manifest::from_toml(text) else { return };
    let again = Manifest::from_toml(&manifest.to_toml()).expect("a manifest's own TOML parses");
    assert_eq!(again, manifest);
});
