//! Signatures that plain ed25519 verification lets through and `verify_strict` refuses.
//!
//! A record has one id only if it has one valid encoding, so [`Record::verify_signature`]
//! must refuse small-order keys, small-order `R` and a non-reduced `S`. Each vector is built
//! for a record's own bytes; where plain `verify` accepts it, the test asserts so, which makes
//! it fail if the check were ever relaxed to `verify`.

use ed25519_dalek::{Digest, Sha512, Signature, Verifier, VerifyingKey};

use super::*;

/// The encoding of the neutral point (y = 1): a point of order 1, so of small order.
const IDENTITY: [u8; 32] = {
    let mut p = [0; 32];
    p[0] = 1;
    p
};

/// The encoding of the ed25519 base point B (y = 4/5), whose discrete log is 1.
const BASEPOINT: [u8; 32] = [
    0x58, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66,
    0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66,
];

/// ℓ, the order of B, as little-endian 64-bit limbs: 2^252 + 27742317777372353535851937790883648493.
const L: [u64; 4] = [0x5812_631a_5cf5_d3ed, 0x14de_f9de_a2f7_9cd6, 0, 0x1000_0000_0000_0000];

fn limbs(bytes: &[u8; 32]) -> [u64; 4] {
    std::array::from_fn(|i| u64::from_le_bytes(bytes[8 * i..8 * i + 8].try_into().expect("8 bytes")))
}

fn from_limbs(limbs: [u64; 4]) -> [u8; 32] {
    let mut out = [0; 32];
    for (chunk, limb) in out.chunks_exact_mut(8).zip(limbs) {
        chunk.copy_from_slice(&limb.to_le_bytes());
    }
    out
}

/// `a + b`, which must not overflow 256 bits.
fn add(a: [u64; 4], b: [u64; 4]) -> [u64; 4] {
    let mut out = [0; 4];
    let mut carry = false;
    for i in 0..4 {
        let (s, c1) = a[i].overflowing_add(b[i]);
        let (s, c2) = s.overflowing_add(u64::from(carry));
        out[i] = s;
        carry = c1 || c2;
    }
    assert!(!carry, "sum overflows 256 bits");
    out
}

/// `x mod ℓ` for a little-endian 512-bit `x`, by shift and subtract, one bit at a time:
/// slow and plainly right, which is what a test vector wants.
fn reduce(x: &[u8; 64]) -> [u8; 32] {
    let mut r = [0u64; 4];
    for bit in (0..512).rev() {
        // r < ℓ < 2^253, so 2r + 1 fits in 256 bits.
        let mut carry = u64::from((x[bit / 8] >> (bit % 8)) & 1);
        for limb in &mut r {
            let top = *limb >> 63;
            *limb = (*limb << 1) | carry;
            carry = top;
        }
        let below_l = (0..4).rev().find(|&i| r[i] != L[i]).is_some_and(|i| r[i] < L[i]);
        if !below_l {
            let mut borrow = false;
            for i in 0..4 {
                let (d, b1) = r[i].overflowing_sub(L[i]);
                let (d, b2) = d.overflowing_sub(u64::from(borrow));
                r[i] = d;
                borrow = b1 || b2;
            }
        }
    }
    from_limbs(r)
}

/// A record by `author` with `signature(signed bytes)` appended, decoded: the codec looks at
/// neither keys nor signatures.
fn record_by(author: [u8; 32], signature: impl FnOnce(&[u8]) -> [u8; 64]) -> Record {
    let unsigned = UnsignedRecord { author: MemberId(author), ..super::unsigned(1, retract()) };
    let mut bytes = codec::encode_unsigned(&unsigned).expect("within limits");
    let signature = signature(&bytes);
    bytes.extend_from_slice(&signature);
    Record::decode(&bytes).expect("well formed")
}

/// Whether plain (non-strict) ed25519 verification accepts the record.
fn plain_verify_accepts(record: &Record) -> bool {
    let key = VerifyingKey::from_bytes(&record.author().0).expect("a curve point");
    key.verify(record.signed_bytes(), &Signature::from_bytes(record.signature())).is_ok()
}

fn refused(record: &Record) {
    assert_eq!(record.verify_signature(), Err(ValidationError::BadSignature(record.id())));
    assert_eq!(Record::decode_verified(record.bytes()), Err(ValidationError::BadSignature(record.id())));
}

/// Key A = the neutral point, R = the neutral point, S = 0: [S]B = R + [k]A holds for every
/// message, so this one signature "signs" anything.
#[test]
fn small_order_key_is_refused() {
    let record = record_by(IDENTITY, |_| {
        let mut signature = [0; 64];
        signature[..32].copy_from_slice(&IDENTITY);
        signature
    });
    assert!(plain_verify_accepts(&record), "the vector must be one plain verify accepts");
    refused(&record);
}

/// Key A = B (not of small order), R = the neutral point, S = k = H(R ‖ A ‖ M) mod ℓ:
/// [S]B = [k]B = R + [k]A.
#[test]
fn small_order_r_is_refused() {
    let record = record_by(BASEPOINT, |message| {
        let mut h = Sha512::new();
        h.update(IDENTITY);
        h.update(BASEPOINT);
        h.update(message);
        let k: [u8; 64] = h.finalize().as_slice().try_into().expect("sha512 is 64 bytes");
        let mut signature = [0; 64];
        signature[..32].copy_from_slice(&IDENTITY);
        signature[32..].copy_from_slice(&reduce(&k));
        signature
    });
    assert!(!VerifyingKey::from_bytes(&BASEPOINT).expect("a curve point").is_weak());
    assert!(plain_verify_accepts(&record), "the vector must be one plain verify accepts");
    refused(&record);
}

/// A genuine signature with S replaced by S + ℓ: the same point [S]B, a second encoding of one
/// signature, so a second id for one record. ed25519-dalek's plain `verify` refuses it too
/// unless its `legacy_compatibility` feature is on, which feature unification could turn on
/// from anywhere in the build: then only this test notices. S + ℓ < 2^253, so even the
/// legacy check (top three bits clear) lets it through.
#[test]
fn non_canonical_s_is_refused() {
    let key = key();
    let record = record_by(author().0, |message| {
        let mut signature = key.sign(message).to_bytes();
        let s: [u8; 32] = signature[32..].try_into().expect("32 bytes");
        let malleated = from_limbs(add(limbs(&s), L));
        assert_eq!(malleated[31] & 0xe0, 0, "S + ℓ stays below 2^253");
        let mut wide = [0; 64];
        wide[..32].copy_from_slice(&malleated);
        assert_eq!(reduce(&wide), s, "S + ℓ is S modulo ℓ");
        signature[32..].copy_from_slice(&malleated);
        signature
    });
    refused(&record);
}

/// Author bytes that are not a curve point cannot verify anything.
#[test]
fn an_author_that_is_not_a_point_is_refused() {
    let not_a_point = (2..=u8::MAX)
        .map(|y| {
            let mut p = [0; 32];
            p[0] = y;
            p
        })
        .find(|p| VerifyingKey::from_bytes(p).is_err())
        .expect("about half of all y are not on the curve");
    let record = record_by(not_a_point, |_| [0; 64]);
    assert_eq!(record.verify_signature(), Err(ValidationError::BadAuthorKey(MemberId(not_a_point))));
}

/// The reduction used above, on values with known answers. (The small-order-R vector checks
/// it on a full 512-bit hash: a wrong reduction would make plain `verify` refuse that vector.)
#[test]
fn reduce_is_mod_l() {
    let wide = |limbs4: [u64; 4]| {
        let mut x = [0; 64];
        x[..32].copy_from_slice(&from_limbs(limbs4));
        x
    };
    assert_eq!(reduce(&[0; 64]), [0; 32]);
    assert_eq!(reduce(&wide(L)), [0; 32]);
    assert_eq!(reduce(&wide(add(L, [5, 0, 0, 0]))), from_limbs([5, 0, 0, 0]));
    assert_eq!(reduce(&wide(add(add(L, L), [7, 0, 0, 0]))), from_limbs([7, 0, 0, 0]));
    let below = [L[0] - 1, L[1], L[2], L[3]];
    assert_eq!(reduce(&wide(below)), from_limbs(below));
}
