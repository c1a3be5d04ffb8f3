use ed25519_dalek::SigningKey;
use proptest::prelude::*;

use super::*;
use crate::{FingerprintKind, codec};

fn key() -> SigningKey {
    SigningKey::from_bytes(&[7; 32])
}

fn fingerprint() -> impl Strategy<Value = Fingerprint> {
    (proptest::sample::select(FingerprintKind::ALL.to_vec()), any::<[u8; 32]>()).prop_map(|(kind, bytes)| {
        Fingerprint::new(kind, bytes[..kind.value_len()].to_vec()).expect("length matches kind")
    })
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
        (1u64..10, text(100)).prop_map(|(epoch, manifest)| Body::Membership(Membership { epoch, manifest }));
    prop_oneof![entry, vote, retract, membership]
}

fn signed(seq: u64, body: Body) -> Record {
    let key = key();
    UnsignedRecord {
        author: MemberId::from_key(&key.verifying_key()),
        seq,
        prev: RecordId([seq as u8; 32]),
        timestamp: 1_700_000_000_000 + seq,
        body,
    }
    .sign(&key)
    .expect("within limits")
}

proptest! {
    #[test]
    fn encode_decode_round_trips(seq in 1u64..u64::MAX, body in body()) {
        let record = signed(seq, body);
        let decoded = Record::decode_verified(record.bytes()).expect("own record decodes");
        prop_assert_eq!(decoded.id(), record.id());
        prop_assert_eq!(decoded.body(), record.body());
        prop_assert_eq!(decoded.bytes(), record.bytes());
        prop_assert_eq!(&decoded, &record);
    }

    #[test]
    fn flipping_any_byte_breaks_the_record(body in body(), index in any::<prop::sample::Index>(), bit in 0u8..8) {
        let record = signed(3, body);
        let mut bytes = record.bytes().to_vec();
        let at = index.index(bytes.len());
        bytes[at] ^= 1 << bit;
        prop_assert!(Record::decode_verified(&bytes).is_err(), "byte {} flipped still verifies", at);
    }

    #[test]
    fn decoding_garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = Record::decode(&bytes);
    }
}

#[test]
fn limits_are_enforced_on_both_sides() {
    let fp = Fingerprint::new(FingerprintKind::Md5, vec![1; 16]).expect("valid");
    let too_many = Body::Entry(Entry {
        fingerprints: vec![fp; codec::MAX_FINGERPRINTS + 1],
        category: "csam".parse().expect("valid"),
        links: vec![],
        note: None,
        expires_at: None,
    });
    let key = key();
    let unsigned = UnsignedRecord {
        author: MemberId::from_key(&key.verifying_key()),
        seq: 1,
        prev: RecordId::ZERO,
        timestamp: 0,
        body: too_many,
    };
    assert!(matches!(unsigned.sign(&key), Err(DecodeError::LimitExceeded { field: "fingerprints", .. })));
    assert!(matches!(
        Record::decode(&vec![1; codec::MAX_RECORD_SIZE + 1]),
        Err(DecodeError::TooLarge { .. })
    ));
    let mut trailing =
        signed(1, Body::Retract(Retract { entry: RecordId::ZERO, reason: None })).bytes().to_vec();
    trailing.push(0);
    assert!(matches!(Record::decode(&trailing), Err(DecodeError::TrailingBytes(1))));
}

#[test]
fn verifying_with_another_key_fails() {
    let record = signed(1, Body::Retract(Retract { entry: RecordId::ZERO, reason: None }));
    assert!(record.verify_signature_with(&key().verifying_key()).is_ok());
    let other = SigningKey::from_bytes(&[8; 32]).verifying_key();
    assert!(record.verify_signature_with(&other).is_err());
}

#[test]
fn chain_rules() {
    let first = signed(1, Body::Retract(Retract { entry: RecordId::ZERO, reason: None }));
    assert_eq!(first.check_follows(None), Err(ValidationError::FirstPrevNotZero));
    let second = signed(2, Body::Retract(Retract { entry: RecordId::ZERO, reason: None }));
    assert!(second.check_follows(Some(RecordId([2; 32]))).is_ok());
    assert!(matches!(
        second.check_follows(Some(RecordId([9; 32]))),
        Err(ValidationError::BrokenChain { .. })
    ));
}
