//! The range check every sync answer passes, the fork search, and the wire limits.

use ed25519_dalek::SigningKey;
use hashmesh_protocol::{
    Body, Entry, Fingerprint, FingerprintKind, MemberId, Record, RecordId, UnsignedRecord,
};
use serde_bytes::ByteBuf;

use super::fork::{Search, search};
use super::wire::{self, RangeError};
use super::{ForkMark, digest};

fn key(n: u8) -> SigningKey {
    SigningKey::from_bytes(&[n; 32])
}

/// Member `n`'s log: one record per `variants` entry, chained from seq 1.
fn chain(n: u8, variants: &[u8]) -> Vec<Record> {
    let author = MemberId::from_key(&key(n).verifying_key());
    let mut prev = RecordId::ZERO;
    let mut out = Vec::new();
    for (i, v) in variants.iter().enumerate() {
        let body = Body::Entry(Entry {
            fingerprints: vec![Fingerprint::new(FingerprintKind::Md5, vec![*v; 16]).expect("valid")],
            category: "drugs".parse().expect("valid"),
            links: vec![],
            note: None,
            expires_at: None,
        });
        let record = UnsignedRecord { author, seq: i as u64 + 1, prev, timestamp: 0, body }
            .sign(&key(n))
            .expect("within limits");
        prev = record.id();
        out.push(record);
    }
    out
}

fn bufs(records: &[Record]) -> Vec<ByteBuf> {
    records.iter().map(|r| ByteBuf::from(r.bytes().to_vec())).collect()
}

#[test]
fn a_range_answer_must_be_the_authors_records_from_the_seq_asked_within_the_limit() {
    let log = chain(1, &[1, 2, 3]);
    let author = log[0].author();
    let got = wire::decode_range(author, 2, 2, &bufs(&log[1..])).expect("what was asked");
    assert_eq!(got, log[1..].to_vec());
    assert!(wire::decode_range(author, 1, 3, &[]).expect("an empty answer passes").is_empty());
    let err = wire::decode_range(author, 1, 2, &bufs(&log)).expect_err("over the limit");
    assert!(matches!(err, RangeError::TooMany { asked: 2, got: 3 }), "{err}");
    let err = wire::decode_range(author, 1, 3, &bufs(&log[1..])).expect_err("starts at 2");
    assert!(matches!(err, RangeError::WrongSeq { index: 0, expected: 1, got: 2 }), "{err}");
    let skipped = [log[0].clone(), log[2].clone()];
    let err = wire::decode_range(author, 1, 3, &bufs(&skipped)).expect_err("a gap");
    assert!(matches!(err, RangeError::WrongSeq { index: 1, expected: 2, got: 3 }), "{err}");
    let other = chain(2, &[1]);
    let err = wire::decode_range(author, 1, 3, &bufs(&other)).expect_err("another author");
    assert!(
        matches!(err, RangeError::WrongAuthor { asked, got } if asked == author && got == other[0].author())
    );
    let mut garbage = bufs(&log[..2]);
    garbage[1] = ByteBuf::from(vec![0u8; 10]);
    let err = wire::decode_range(author, 1, 3, &garbage).expect_err("garbage");
    assert!(matches!(err, RangeError::Decode { index: 1, .. }), "{err}");
}

#[test]
fn the_wire_limits_are_what_peers_agree_on() {
    // Both ends of `/hashmesh/sync/2` size their codecs from these: a change is a protocol
    // change, and the wire maximum must hold a full answer (the byte budget plus the one
    // record that may cross it) with its framing (at most 3 bytes per record, 5 for the list).
    assert_eq!(wire::BATCH, 4_000);
    assert_eq!(wire::MAX_RESPONSE_BYTES, 8 << 20);
    assert_eq!(wire::MAX_REQUEST_BYTES, 64 << 10);
    let record = hashmesh_protocol::codec::MAX_RECORD_SIZE;
    let framing = 3 * wire::BATCH as usize + 5;
    assert!(wire::MAX_WIRE_RESPONSE_BYTES >= wire::MAX_RESPONSE_BYTES + record + framing);
    assert_eq!(wire::MAX_WIRE_RESPONSE_BYTES, wire::MAX_RESPONSE_BYTES + 2 * record);
}

#[test]
fn a_search_window_finds_the_first_position_where_the_logs_part() {
    let ours = chain(1, &[1, 2, 3, 4]);
    let theirs = chain(1, &[1, 2, 9, 9]);
    let at = |seq: u64| ours.get(seq as usize - 1).cloned();
    match search(&theirs[1..], at) {
        Search::Found(proof) => {
            assert_eq!(proof.seq(), 3);
            assert_eq!(ForkMark::of(&proof).seq, 3);
        }
        other => panic!("expected a proof at seq 3: {other:?}"),
    }
    // They part at seq 1: the proof needs no agreed record before it.
    let other_start = chain(1, &[7, 2]);
    match search(&other_start, at) {
        Search::Found(proof) => assert_eq!(proof.seq(), 1),
        other => panic!("expected a proof at seq 1: {other:?}"),
    }
    // They part before the window: look below it.
    assert!(matches!(search(&theirs[2..], at), Search::Lower { below: 2 }));
    // The same window: no fork here (a stale clock).
    assert!(matches!(search(&ours[1..3], at), Search::Agree));
    // We hold less of the log than the window: nothing more to compare.
    let longer = chain(1, &[1, 2, 3, 4, 5]);
    assert!(matches!(search(&longer[3..], at), Search::Agree));
    // Their record after an agreed one does not chain to it: not a piece of a log.
    let mut spliced = theirs[..3].to_vec();
    spliced[1] = ours[1].clone();
    spliced[2] = chain(1, &[5, 5, 9])[2].clone();
    match search(&spliced, at) {
        Search::Bad(reason) => assert!(reason.contains("does not chain at seq 3"), "{reason}"),
        other => panic!("expected a bad window: {other:?}"),
    }
}

#[test]
fn the_digest_tells_clocks_apart() {
    let log = chain(1, &[1, 2]);
    let mut clock = super::Clock::new();
    let empty = digest(&clock);
    clock.insert(log[0].author(), super::LogClock { seq: 2, id: log[1].id(), fork: None });
    let one = digest(&clock);
    assert_ne!(one, empty);
    let fork = ForkMark { seq: 2, a: log[0].id(), b: log[1].id() };
    clock.insert(log[0].author(), super::LogClock { seq: 2, id: log[1].id(), fork: Some(fork) });
    assert_ne!(digest(&clock), one, "a fork mark counts");
    assert_ne!(digest(&clock), [0; 32]);
    assert_ne!(digest(&clock), [1; 32]);
}
