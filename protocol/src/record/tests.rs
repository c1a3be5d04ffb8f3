//! Records: the wire format pinned byte for byte, round trips, damaged encodings, chain rules.
//!
//! Limits are probed in `tests/limits.rs`, signatures that only `verify_strict` refuses in
//! `tests/strict.rs`. `tests/raw.rs` is a second encoder, written from the grammar in
//! [`codec`]'s module doc with no limits, so tests can build bytes the real encoder refuses
//! to write.

use ed25519_dalek::SigningKey;
use proptest::prelude::*;

use super::*;
use crate::{FingerprintKind, codec};

mod limits;
mod raw;
mod strict;

fn key() -> SigningKey {
    SigningKey::from_bytes(&[7; 32])
}

fn author() -> MemberId {
    MemberId::from_key(&key().verifying_key())
}

fn unsigned(seq: u64, body: Body) -> UnsignedRecord {
    UnsignedRecord {
        author: author(),
        seq,
        prev: RecordId([seq as u8; 32]),
        timestamp: 1_700_000_000_000 + seq,
        body,
    }
}

fn signed(seq: u64, body: Body) -> Record {
    unsigned(seq, body).sign(&key()).expect("within limits")
}

fn retract() -> Body {
    Body::Retract(Retract { entry: RecordId::ZERO, reason: None })
}

fn fp(kind: FingerprintKind, byte: u8) -> Fingerprint {
    Fingerprint::new(kind, value_of(kind, [byte; 32], 1)).expect("length matches kind")
}

/// A valid value of `kind` made from `bytes`: its first bytes, or `frames` video frames.
fn value_of(kind: FingerprintKind, bytes: [u8; 32], frames: usize) -> Vec<u8> {
    match kind.value_len() {
        crate::ValueLen::Fixed(len) => bytes[..len].to_vec(),
        crate::ValueLen::Frames => crate::vpdq::encode(
            &(0..frames)
                .map(|i| crate::vpdq::Frame {
                    hash: bytes,
                    quality: bytes[0] % 101,
                    timestamp_ms: u32::try_from(i).unwrap_or(u32::MAX) * 1000,
                })
                .collect::<Vec<_>>(),
        ),
    }
}

fn fingerprint() -> impl Strategy<Value = Fingerprint> {
    (proptest::sample::select(FingerprintKind::ALL.to_vec()), any::<[u8; 32]>(), 1usize..4).prop_map(
        |(kind, bytes, frames)| {
            Fingerprint::new(kind, value_of(kind, bytes, frames)).expect("length matches kind")
        },
    )
}

fn text(max: usize) -> impl Strategy<Value = String> {
    proptest::string::string_regex(&format!(".{{0,{max}}}")).expect("valid regex")
}

fn body() -> impl Strategy<Value = Body> {
    let entry = (
        proptest::collection::vec(fingerprint(), 1..8),
        proptest::sample::select(vec!["csam", "drugs", "harmful_behavior", "x_1"]),
        proptest::collection::vec(text(40), 0..4),
        proptest::option::of(text(60)),
        proptest::option::of(any::<u64>()),
    )
        .prop_map(|(fingerprints, category, links, note, expires_at)| {
            Body::Entry(Entry {
                fingerprints,
                category: category.parse().expect("valid category"),
                links,
                note,
                expires_at,
            })
        });
    let vote =
        (any::<[u8; 32]>(), any::<bool>(), proptest::option::of(text(30)), proptest::option::of(text(20)))
            .prop_map(|(entry, confirm, reason, reviewer)| {
                Body::Vote(Vote {
                    entry: RecordId(entry),
                    verdict: if confirm { Verdict::Confirm } else { Verdict::Dispute },
                    reason,
                    reviewer: reviewer.filter(|r| r.len() <= codec::MAX_REVIEWER_LEN),
                })
            });
    let retract = (any::<[u8; 32]>(), proptest::option::of(text(30)))
        .prop_map(|(entry, reason)| Body::Retract(Retract { entry: RecordId(entry), reason }));
    let membership =
        (1u64..10, text(100)).prop_map(|(epoch, changes)| Body::Membership(Membership { epoch, changes }));
    let stats =
        (any::<u32>(), proptest::collection::btree_map("[a-z_]{1,8}", (any::<u64>(), any::<u64>()), 0..5))
            .prop_map(|(day, counts)| {
                let counts = counts
                    .into_iter()
                    .map(|(category, (a, b))| DailyCount {
                        category: category.parse().expect("valid category"),
                        matches: a.max(b),
                        removals: a.min(b),
                    })
                    .collect();
                Body::Stats(Stats { day, counts })
            });
    prop_oneof![entry, vote, retract, membership, stats]
}

/// One change to an encoding: overwrite, insert or delete a byte.
#[derive(Debug, Clone)]
enum Edit {
    Set(prop::sample::Index, u8),
    Insert(prop::sample::Index, u8),
    Delete(prop::sample::Index),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<prop::sample::Index>(), any::<u8>()).prop_map(|(at, b)| Edit::Set(at, b)),
        (any::<prop::sample::Index>(), any::<u8>()).prop_map(|(at, b)| Edit::Insert(at, b)),
        any::<prop::sample::Index>().prop_map(Edit::Delete),
    ]
}

fn apply(bytes: &mut Vec<u8>, edit: &Edit) {
    match edit {
        Edit::Set(at, b) if !bytes.is_empty() => {
            let at = at.index(bytes.len());
            bytes[at] = *b;
        }
        Edit::Insert(at, b) => {
            let at = at.index(bytes.len() + 1);
            bytes.insert(at, *b);
        }
        Edit::Delete(at) if !bytes.is_empty() => {
            let at = at.index(bytes.len());
            bytes.remove(at);
        }
        Edit::Set(..) | Edit::Delete(_) => {}
    }
}

proptest! {
    #[test]
    fn encode_decode_round_trips(seq in 1u64..u64::MAX, body in body()) {
        let record = signed(seq, body);
        let decoded = Record::decode_verified(record.bytes()).expect("own record decodes");
        prop_assert_eq!(decoded.id(), record.id());
        prop_assert_eq!(decoded.id(), RecordId(*blake3::hash(record.bytes()).as_bytes()));
        prop_assert_eq!(decoded.body(), record.body());
        prop_assert_eq!(decoded.bytes(), record.bytes());
        prop_assert_eq!(decoded.signed_bytes(), &record.bytes()[..record.bytes().len() - 64]);
        prop_assert_eq!(&decoded.signature()[..], &record.bytes()[record.bytes().len() - 64..]);
        prop_assert_eq!(
            (decoded.author(), decoded.seq(), decoded.prev(), decoded.timestamp()),
            (author(), seq, RecordId([seq as u8; 32]), 1_700_000_000_000 + seq)
        );
        prop_assert_eq!(&decoded, &record);
    }

    /// The codec agrees with a second encoder written from the grammar alone.
    #[test]
    fn encoding_follows_the_documented_grammar(seq in 1u64..u64::MAX, body in body()) {
        let record = signed(seq, body);
        prop_assert_eq!(record.signed_bytes(), &raw::unsigned(&record.unsigned)[..]);
    }

    #[test]
    fn flipping_any_byte_breaks_the_record(body in body(), index in any::<prop::sample::Index>(), bit in 0u8..8) {
        let record = signed(3, body);
        let mut bytes = record.bytes().to_vec();
        let at = index.index(bytes.len());
        bytes[at] ^= 1 << bit;
        prop_assert!(Record::decode_verified(&bytes).is_err(), "byte {} flipped still verifies", at);
    }

    /// A record cut anywhere is refused as truncated, and the error says how much is missing.
    #[test]
    fn truncated_records_are_refused(body in body(), cut in any::<prop::sample::Index>()) {
        let bytes = signed(3, body).bytes().to_vec();
        let cut = cut.index(bytes.len());
        match Record::decode(&bytes[..cut]) {
            Err(DecodeError::Truncated { field, needed }) => {
                let missing = bytes.len() - cut;
                prop_assert!((1..=missing).contains(&needed), "needed {} of {} missing", needed, missing);
                if missing <= 64 {
                    prop_assert_eq!((field, needed), ("signature", missing));
                }
            }
            other => prop_assert!(false, "cut at {} of {}: {:?}", cut, bytes.len(), other),
        }
    }

    /// Damaged encodings of valid records reach every body decoder. None panics; anything that
    /// still decodes encodes back to exactly the bytes it came from (one encoding per value,
    /// so one id per record) and no longer verifies.
    #[test]
    fn damaged_records_decode_canonically_or_not_at_all(
        body in body(),
        edits in proptest::collection::vec(edit(), 1..4),
    ) {
        let original = signed(3, body).bytes().to_vec();
        let mut bytes = original.clone();
        for e in &edits {
            apply(&mut bytes, e);
        }
        if let Ok(record) = Record::decode(&bytes) {
            let mut again = codec::encode_unsigned(&record.unsigned).expect("decoded values are within limits");
            again.extend_from_slice(record.signature());
            prop_assert_eq!(&again, &bytes);
            if bytes != original {
                prop_assert!(record.verify_signature().is_err());
            }
        }
    }
}

/// The public key of `SigningKey::from_bytes(&[7; 32])`.
const AUTHOR: &str = "ea4a6c63e29c520abef5507b132ec5f9954776aebebe7b92421eea691446d22c";

fn ascii(s: &str) -> String {
    hex::encode(s)
}

/// The wire format, byte for byte, for one record of each shape, signed with a fixed key.
/// Each body is spelled out field by field from the grammar in [`codec`]. A change to any of
/// these bytes is a protocol change: it changes every record id, so it must fail here first.
#[test]
fn wire_format_is_pinned() {
    let entry_full = Body::Entry(Entry {
        fingerprints: vec![fp(FingerprintKind::Md5, 0x11), fp(FingerprintKind::Phash, 0x22)],
        category: "csam".parse().expect("valid"),
        links: vec!["https://a.example/x".into()],
        note: Some("seen twice".into()),
        expires_at: Some(0x0102_0304_0506_0708),
    });
    let entry_bare = Body::Entry(Entry {
        fingerprints: vec![fp(FingerprintKind::Blake3, 0x33)],
        category: "drugs".parse().expect("valid"),
        links: vec![],
        note: None,
        expires_at: None,
    });
    let dispute = Body::Vote(Vote {
        entry: RecordId([0xcd; 32]),
        verdict: Verdict::Dispute,
        reason: Some("wrong category".into()),
        reviewer: Some("ana".into()),
    });
    let confirm = Body::Vote(Vote {
        entry: RecordId([0xcd; 32]),
        verdict: Verdict::Confirm,
        reason: None,
        reviewer: None,
    });
    let retract = Body::Retract(Retract { entry: RecordId([0xef; 32]), reason: Some("duplicate".into()) });
    let membership = Body::Membership(Membership { epoch: 2, changes: "name = \"f\"".into() });
    let stats = Body::Stats(Stats {
        day: 20_420,
        counts: vec![
            DailyCount { category: "csam".parse().expect("valid"), matches: 7, removals: 5 },
            DailyCount { category: "drugs".parse().expect("valid"), matches: 1, removals: 0 },
        ],
    });

    let cases = [
        (
            entry_full,
            [
                "01",                                                 // body: entry
                "02",                                                 // 2 fingerprints
                &format!("04 10 {}", "11".repeat(16)),                // md5, 16 bytes
                &format!("08 08 {}", "22".repeat(8)),                 // phash, 8 bytes
                &format!("04 {}", ascii("csam")),                     // category
                &format!("01 0013 {}", ascii("https://a.example/x")), // 1 link of 19 bytes
                &format!("01 000a {}", ascii("seen twice")),          // some note
                "01 0102030405060708",                                // some expiry
            ]
            .concat(),
            "00b393281b2ba9be06a09c96784ec7eb377372d70776d84378df97708066b498b94c189cf00847260e002bb9656cfded1df6ad1362b04a726f3a4442fc813d08",
            "3a9777dec37d9461672f431e964d8cfe33587b6d3275a300289bb6fa57c0ae64",
        ),
        (
            entry_bare,
            [
                "01",                                  // body: entry
                "01",                                  // 1 fingerprint
                &format!("01 20 {}", "33".repeat(32)), // blake3, 32 bytes
                &format!("05 {}", ascii("drugs")),     // category
                "00",                                  // no links
                "00",                                  // no note
                "00",                                  // no expiry
            ]
            .concat(),
            "64c874cd11c3c640970115caedf9455f0e2966088796484dfc8dec44f0d6d3608d8e7e8ee7d56b23d79f70630a52b1aa5d75f2a7f54b7674d60c28c926bb440a",
            "f950f19a81ae01c8d1dc1769f02b20c90747519a7883a3f38a1fc6c9336bb24f",
        ),
        (
            dispute,
            [
                "02",                                            // body: vote
                &"cd".repeat(32),                                // entry
                "02",                                            // dispute
                &format!("01 000e {}", ascii("wrong category")), // some reason
                &format!("01 03 {}", ascii("ana")),              // some reviewer
            ]
            .concat(),
            "66865f669dca49436b13271b2a43f9ddcc4d6a2bb3b6a1f57dd142c7c578d7604fd519383620075e0f97d0e19ed38b5cabdc09c4b1fb4b08a5ba04456436e505",
            "65e6a6c57cbe68a5baf675b65d727b72ed8e0f5bf6482760dba0687f364c3fb6",
        ),
        (
            confirm,
            [
                "02",             // body: vote
                &"cd".repeat(32), // entry
                "01",             // confirm
                "00",             // no reason
                "00",             // no reviewer
            ]
            .concat(),
            "1f212fc9c90878fa5ed3b20d6da7a9a918cd0be40435267514fbba8c8beb1f75bdeec1996c37212691c5d09dbef74cc73b0f454a7c952ddbde90c51193ad6405",
            "446798a6f692d6cb339344632c2f202cd6d2185fb3cbd0fd23e8445e6ad20d7a",
        ),
        (
            retract,
            [
                "03",                                       // body: retract
                &"ef".repeat(32),                           // entry
                &format!("01 0009 {}", ascii("duplicate")), // some reason
            ]
            .concat(),
            "28717f89b83a89c19136539be905b72d0f641081a90387416817a45e6975d2814d1816bf33c093c00722fd8131e5bfbbaf3797df3f701c51e908b80e31305c09",
            "582782a6d43815fa135570cec0082653321f3b85eb3b151deefdc2c6364f8495",
        ),
        (
            membership,
            [
                "04",                                       // body: membership
                "0000000000000002",                         // epoch
                &format!("000a {}", ascii("name = \"f\"")), // changes
            ]
            .concat(),
            "4df41159648c57949254dbd80827b57a889b838462c24006eba4b580f999735821ce59c4860c9e88ce74895f36903c38064620af886a2be329694e15718f440e",
            "2723b5d5064cf45786c9b0f581f91549f06e0ec2fc2dcbfba440de49c07e518a",
        ),
        (
            stats,
            [
                "05",                                                                // body: stats
                "00004fc4",                                                          // day 20420
                "02",                                                                // 2 categories
                &format!("04 {} 0000000000000007 0000000000000005", ascii("csam")),  // csam 7, 5
                &format!("05 {} 0000000000000001 0000000000000000", ascii("drugs")), // drugs 1, 0
            ]
            .concat(),
            "87ce595e3473ad57c66cca70fc0d544209a8d3d60eb153a1ae3aff6e560cd717ad71afc02223a0fe65523e8968f69de7518e8a9067b540b76f73d809687a3f0b",
            "77965f5bb664bafdc1b9bd91380f00ba86d0056f59e6174b902352bef6e0380e",
        ),
    ];
    for (body, body_hex, signature, id) in cases {
        let header = format!(
            "01 {AUTHOR} {seq} {prev} {timestamp}",
            seq = "0000000000000002",
            prev = "ab".repeat(32),
            timestamp = "0000018bcfe56800", // 1_700_000_000_000 ms
        );
        let expected = format!("{header}{body_hex}{signature}").replace(' ', "");
        let record = UnsignedRecord {
            author: author(),
            seq: 2,
            prev: RecordId([0xab; 32]),
            timestamp: 1_700_000_000_000,
            body: body.clone(),
        }
        .sign(&key())
        .expect("within limits");
        assert_eq!(hex::encode(record.bytes()), expected, "encoding of {body:?}");
        assert_eq!(record.id().to_string(), id, "id of {body:?}");
        let decoded =
            Record::decode_verified(&hex::decode(&expected).expect("hex")).expect("pinned bytes verify");
        assert_eq!(decoded.body(), &body);
        assert_eq!(decoded.id(), record.id());
    }
}

#[test]
fn trailing_bytes_are_refused() {
    let mut bytes = signed(1, retract()).bytes().to_vec();
    bytes.push(0);
    assert_eq!(Record::decode(&bytes), Err(DecodeError::TrailingBytes(1)));
}

#[test]
fn verifying_with_another_key_fails() {
    let record = signed(1, retract());
    assert!(record.verify_signature_with(&key().verifying_key()).is_ok());
    let other = SigningKey::from_bytes(&[8; 32]).verifying_key();
    assert_eq!(record.verify_signature_with(&other), Err(ValidationError::BadSignature(record.id())));
}

/// A signature that is valid, but under a key that is not the record's author, is refused:
/// the key handed in must be the author's, not merely one that happens to verify.
#[test]
fn a_valid_signature_by_someone_else_is_refused() {
    let other = SigningKey::from_bytes(&[8; 32]);
    let mut bytes = codec::encode_unsigned(&unsigned(1, retract())).expect("within limits");
    let signature = other.sign(&bytes);
    bytes.extend_from_slice(&signature.to_bytes());
    let record = Record::decode(&bytes).expect("well formed");
    assert!(other.verifying_key().verify_strict(record.signed_bytes(), &signature).is_ok());
    assert_eq!(
        record.verify_signature_with(&other.verifying_key()),
        Err(ValidationError::BadSignature(record.id()))
    );
    assert_eq!(record.verify_signature(), Err(ValidationError::BadSignature(record.id())));
    assert_eq!(Record::decode_verified(&bytes), Err(ValidationError::BadSignature(record.id())));
}

#[test]
fn chain_rules() {
    let first = signed(1, retract());
    assert_eq!(first.check_follows(None), Err(ValidationError::FirstPrevNotZero));
    let zero_prev = UnsignedRecord { prev: RecordId::ZERO, ..unsigned(1, retract()) };
    let first = zero_prev.sign(&key()).expect("within limits");
    assert_eq!(first.check_follows(None), Ok(()));
    assert_eq!(first.check_follows(Some(RecordId([3; 32]))), Ok(()), "seq 1 follows nothing");
    let zero = UnsignedRecord { seq: 0, prev: RecordId::ZERO, ..unsigned(1, retract()) };
    assert_eq!(zero.sign(&key()).expect("within limits").check_follows(None), Err(ValidationError::ZeroSeq));

    let second = signed(2, retract());
    assert_eq!(second.check_follows(Some(RecordId([2; 32]))), Ok(()));
    assert_eq!(
        second.check_follows(Some(RecordId([9; 32]))),
        Err(ValidationError::BrokenChain { seq: 2, got: RecordId([2; 32]), expected: RecordId([9; 32]) })
    );
}

#[test]
fn record_ids_print_and_parse_as_hex() {
    let id = RecordId([0xab; 32]);
    assert_eq!(id.to_string(), "ab".repeat(32));
    assert_eq!(format!("{id:?}"), "RecordId(abababab)");
    assert_eq!("ab".repeat(32).parse::<RecordId>(), Ok(id));
    assert_eq!(RecordId::try_from("ab".repeat(32)), Ok(id));
    assert_eq!(String::from(id), "ab".repeat(32));
    assert_eq!("abc".parse::<RecordId>(), Err(ParseRecordIdError("abc".into())));
    assert_eq!(RecordId::of_bytes(b"abc").to_string(), blake3::hash(b"abc").to_hex().as_str());
}

#[test]
fn body_target_names_the_entry_voted_on_or_retracted() {
    let vote = Body::Vote(Vote {
        entry: RecordId([1; 32]),
        verdict: Verdict::Confirm,
        reason: None,
        reviewer: None,
    });
    assert_eq!(vote.target(), Some(RecordId([1; 32])));
    assert_eq!(
        Body::Retract(Retract { entry: RecordId([2; 32]), reason: None }).target(),
        Some(RecordId([2; 32]))
    );
    assert_eq!(Body::Membership(Membership { epoch: 1, changes: String::new() }).target(), None);
    assert_eq!(Body::Stats(Stats { day: 1, counts: Vec::new() }).target(), None);
}

#[test]
fn stats_name_each_category_once_in_order_and_never_more_removals_than_matches() {
    let count = |category: &str, matches, removals| DailyCount {
        category: category.parse().expect("valid"),
        matches,
        removals,
    };
    let bad = [
        vec![count("drugs", 1, 0), count("csam", 1, 0)],
        vec![count("csam", 1, 0), count("csam", 2, 0)],
        vec![count("csam", 1, 2)],
    ];
    for counts in bad {
        let body = Body::Stats(Stats { day: 1, counts });
        let refused = unsigned(1, body.clone()).sign(&key()).err();
        assert!(matches!(refused, Some(DecodeError::Invalid { field: "counts", .. })), "signing {body:?}");
        let bytes = raw::signed(raw::unsigned(&unsigned(1, body.clone())), &key());
        let refused = Record::decode(&bytes).err();
        assert!(matches!(refused, Some(DecodeError::Invalid { field: "counts", .. })), "decoding {body:?}");
    }
    let fine = Body::Stats(Stats { day: 1, counts: vec![count("csam", 2, 2), count("drugs", 0, 0)] });
    assert!(unsigned(1, fine).sign(&key()).is_ok());
}

#[test]
fn debug_output_names_the_record() {
    let record = signed(1, retract());
    let text = format!("{record:?}");
    assert!(
        text.starts_with(&format!("Record {{ id: {:?}, author: {:?}, seq: 1", record.id(), author())),
        "{text}"
    );
}
