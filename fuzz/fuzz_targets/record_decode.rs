//! Record decoding and signature checking, as every byte from a peer meets them: never a
//! panic, and whatever decodes keeps the encoding's limits and re-decodes to itself.
#![no_main]

use hashmesh_protocol::Record;
use hashmesh_protocol::codec::check_body;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    let Ok(record) = Record::decode(bytes) else { return };
    assert!(check_body(record.body()).is_ok(), "decoded a body the encoder would refuse");
    assert_eq!(Record::decode(record.bytes()).ok().as_ref(), Some(&record));
    let _ = record.verify_signature();
});
