//! A hash list as `hashmesh import` and `POST /v1/import` read it, in each format: every line
//! becomes a row or a row error, never a panic.
#![no_main]

use hashmesh_node::lists::{Defaults, Format, rows};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    let Some((selector, list)) = input.split_first() else { return };
    let formats = [Format::Plain, Format::Csv, Format::Te, Format::Hma, Format::Jsonl];
    let format = formats[usize::from(*selector) % formats.len()];
    let defaults = Defaults { kind: Some(hashmesh_protocol::FingerprintKind::Md5), category: "drugs".parse().ok() };
    let Ok(read) = rows(format, &defaults, list) else { return };
    for row in read.take(10_000) {
        if row.is_err() {
            break;
        }
    }
});
