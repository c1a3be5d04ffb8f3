//! A node's `config.toml`, with `HASHMESH_*` variables over it: any text is a config that
//! passes its checks or an error naming what is wrong, never a panic; a config that passes
//! reads back from the text it writes.
#![no_main]

use hashmesh_node::config::Config;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    let Ok(text) = std::str::from_utf8(input) else { return };
    // The text after a NUL, if any, is one variable's value: HASHMESH_RPC_LISTEN's.
    let (file, value) = text.split_once('\0').unwrap_or((text, ""));
    let var = |name: &str| (name == "HASHMESH_RPC_LISTEN" && !value.is_empty()).then(|| value.to_owned());
    if let Ok((config, _)) = Config::parse(file, var) {
        let written = config.to_toml();
        assert!(Config::parse(&written, |_| None).is_ok(), "a valid config reads back:\n{written}");
    }
});
