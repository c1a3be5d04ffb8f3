//! Every limit of the encoding, probed at the limit and one past it, when signing (our own
//! records) and when decoding (a peer's). The limits are written here as numbers, not read
//! from `codec`'s constants: a test that reads the constant would follow it wherever it went.

use super::*;
use crate::codec;

/// One limit: the field the error names, the largest allowed value, and a body with `n` of it.
struct Probe {
    field: &'static str,
    limit: usize,
    body: fn(usize) -> Body,
}

fn entry(edit: impl FnOnce(&mut Entry)) -> Body {
    let mut e = Entry {
        fingerprints: vec![fp(FingerprintKind::Md5, 1)],
        category: "csam".parse().expect("valid"),
        links: vec![],
        note: None,
        expires_at: None,
    };
    edit(&mut e);
    Body::Entry(e)
}

fn vote(edit: impl FnOnce(&mut Vote)) -> Body {
    let mut v = Vote { entry: RecordId([1; 32]), verdict: Verdict::Dispute, reason: None, reviewer: None };
    edit(&mut v);
    Body::Vote(v)
}

fn probes() -> [Probe; 8] {
    [
        Probe {
            field: "fingerprints",
            limit: 64,
            body: |n| entry(|e| e.fingerprints = vec![fp(FingerprintKind::Md5, 1); n]),
        },
        Probe { field: "links", limit: 32, body: |n| entry(|e| e.links = vec!["l".into(); n]) },
        Probe { field: "link", limit: 2 * 1024, body: |n| entry(|e| e.links = vec!["l".repeat(n)]) },
        Probe { field: "note", limit: 4 * 1024, body: |n| entry(|e| e.note = Some("n".repeat(n))) },
        Probe { field: "reason", limit: 4 * 1024, body: |n| vote(|v| v.reason = Some("r".repeat(n))) },
        Probe {
            field: "reason",
            limit: 4 * 1024,
            body: |n| Body::Retract(Retract { entry: RecordId([1; 32]), reason: Some("r".repeat(n)) }),
        },
        Probe { field: "reviewer", limit: 128, body: |n| vote(|v| v.reviewer = Some("a".repeat(n))) },
        Probe {
            field: "changes",
            limit: 48 * 1024,
            body: |n| Body::Membership(Membership { epoch: 2, changes: "m".repeat(n) }),
        },
    ]
}

#[test]
fn every_limit_holds_at_the_limit_and_fails_one_past_it() {
    for Probe { field, limit, body } in probes() {
        let record = unsigned(1, body(limit))
            .sign(&key())
            .unwrap_or_else(|e| panic!("{field} at its limit {limit} must sign: {e}"));
        let decoded = Record::decode_verified(record.bytes())
            .unwrap_or_else(|e| panic!("{field} at its limit {limit} must decode: {e}"));
        assert_eq!(decoded.body(), &body(limit));
        assert_eq!(codec::check_body(&body(limit)), Ok(()), "{field} at its limit passes the check");

        let over = unsigned(1, body(limit + 1));
        let refused = Some(DecodeError::LimitExceeded { field, len: limit + 1, limit });
        assert_eq!(codec::check_body(&over.body).err(), refused, "checking {field} one past its limit");
        assert_eq!(over.clone().sign(&key()).err(), refused, "signing {field} one past its limit");
        let bytes = raw::signed(raw::unsigned(&over), &key());
        assert_eq!(Record::decode(&bytes).err(), refused, "decoding {field} one past its limit");
    }
}

/// A `Category` cannot hold a name longer than 32 bytes, so only a peer can send one.
#[test]
fn category_is_limited_to_32_bytes() {
    let longest = "c".repeat(32);
    let record = unsigned(1, entry(|e| e.category = longest.parse().expect("32 bytes is a category")))
        .sign(&key())
        .expect("a 32-byte category signs");
    assert!(Record::decode_verified(record.bytes()).is_ok());
    assert!("c".repeat(33).parse::<Category>().is_err());

    let bytes =
        raw::signed(raw::unsigned_with_category(&unsigned(1, entry(|_| {})), Some(&"c".repeat(33))), &key());
    assert_eq!(
        Record::decode(&bytes).err(),
        Some(DecodeError::LimitExceeded { field: "category", len: 33, limit: 32 })
    );
    let bytes = raw::signed(raw::unsigned_with_category(&unsigned(1, entry(|_| {})), Some("CSAM")), &key());
    assert!(matches!(Record::decode(&bytes), Err(DecodeError::Invalid { field: "category", .. })));
}

/// An entry whose signed record is `size` bytes: a video fingerprint with enough frames to
/// pass `size`, then 32 links of 2 KiB cut short from the last to land on it.
fn entry_of_size(size: usize) -> UnsignedRecord {
    let mut record = unsigned(1, entry(|e| e.links = vec!["l".repeat(2 * 1024); 32]));
    let base = raw::unsigned(&record).len() + 64;
    // Each vpdq fingerprint adds its tag, a 4-byte length and 37 bytes a frame; they overshoot
    // `size` by less than a frame and its header, which the links give back.
    let mut remaining = size.saturating_sub(base);
    while remaining > 0
        && let Body::Entry(e) = &mut record.body
    {
        let frames =
            remaining.saturating_sub(5).div_ceil(crate::vpdq::FRAME_LEN).clamp(1, crate::vpdq::MAX_FRAMES);
        let frame = crate::vpdq::Frame { hash: [7; 32], quality: 80, timestamp_ms: 0 };
        let value = crate::vpdq::encode(&vec![frame; frames]);
        e.fingerprints.push(Fingerprint::new(crate::FingerprintKind::Vpdq, value).expect("valid vpdq"));
        remaining = remaining.saturating_sub(5 + frames * crate::vpdq::FRAME_LEN);
    }
    let mut excess = raw::unsigned(&record).len() + 64 - size;
    if let Body::Entry(e) = &mut record.body {
        for link in e.links.iter_mut().rev() {
            let cut = excess.min(link.len());
            link.truncate(link.len() - cut);
            excess -= cut;
        }
    }
    assert_eq!(raw::unsigned(&record).len() + 64, size, "entry_of_size could not reach {size}");
    record
}

#[test]
fn a_whole_record_is_at_most_1_mib() {
    let record = entry_of_size(1 << 20).sign(&key()).expect("a record of exactly 1 MiB signs");
    assert_eq!(record.bytes().len(), 1_048_576);
    assert!(Record::decode_verified(record.bytes()).is_ok());
    assert_eq!(codec::check_body(record.body()), Ok(()));

    let over = entry_of_size((1 << 20) + 1);
    let refused = Some(DecodeError::TooLarge { size: 1_048_577, limit: 1_048_576 });
    assert_eq!(codec::check_body(&over.body).err(), refused);
    assert_eq!(over.clone().sign(&key()).err(), refused);
    assert_eq!(Record::decode(&raw::signed(raw::unsigned(&over), &key())).err(), refused);
}

#[test]
fn an_entry_needs_a_fingerprint_on_both_sides() {
    let none = unsigned(1, entry(|e| e.fingerprints.clear()));
    assert!(matches!(none.clone().sign(&key()), Err(DecodeError::Invalid { field: "fingerprints", .. })));
    assert!(matches!(codec::check_body(&none.body), Err(DecodeError::Invalid { field: "fingerprints", .. })));
    let bytes = raw::signed(raw::unsigned(&none), &key());
    assert!(matches!(Record::decode(&bytes), Err(DecodeError::Invalid { field: "fingerprints", .. })));
}

/// Header: 81 bytes (version, author, seq, prev, timestamp); the body tag is byte 81.
const BODY: usize = 81;

/// Decodes `record` with the byte at `at` set to `value`.
fn decode_with(record: &Record, at: usize, value: u8) -> Result<Record, DecodeError> {
    let mut bytes = record.bytes().to_vec();
    bytes[at] = value;
    Record::decode(&bytes)
}

#[test]
fn unknown_tags_and_bad_values_are_named() {
    let entry = signed(1, entry(|e| e.note = Some("é".into())));
    // entry = n, then kind, len, value.
    assert_eq!(
        decode_with(&entry, BODY + 2, 10).err(),
        Some(DecodeError::UnknownTag { field: "fingerprint.kind", tag: 10 })
    );
    // An md5 value (16 bytes) labelled sha1 (20 bytes).
    assert!(matches!(
        decode_with(&entry, BODY + 2, 3),
        Err(DecodeError::Invalid { field: "fingerprint", .. })
    ));
    // The note's option tag follows n, kind, len, 16 bytes, category (1 + 4), the link count.
    let note = BODY + 2 + 2 + 16 + 5 + 1;
    assert_eq!(decode_with(&entry, note, 2).err(), Some(DecodeError::UnknownTag { field: "option", tag: 2 }));
    // "é" is c3 a9; a lone continuation byte is not UTF-8.
    assert_eq!(decode_with(&entry, note + 3, 0xa9).err(), Some(DecodeError::InvalidUtf8("note")));

    let vote = signed(1, vote(|_| {}));
    assert_eq!(
        decode_with(&vote, BODY + 33, 3).err(),
        Some(DecodeError::UnknownTag { field: "verdict", tag: 3 })
    );
    assert_eq!(decode_with(&vote, BODY, 6).err(), Some(DecodeError::UnknownTag { field: "body", tag: 6 }));
    assert_eq!(decode_with(&vote, 0, 2).err(), Some(DecodeError::UnknownVersion(2)));
}
