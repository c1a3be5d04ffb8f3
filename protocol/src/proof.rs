//! Proof of equivocation: two records signed by one author at one position of its log.
//!
//! A member's log is append-only and hash-chained, so two different records at one
//! (author, seq) can only exist if the author's key signed two histories. Whoever holds both
//! can prove it to anyone: the proof is checked like any record, needs no trust in the node
//! that relays it, and so replicates like a record.
//!
//! A proof is **minimal** when both records extend the same predecessor (`prev` equal): then
//! the log before the fork is the same in both histories, and every node can agree to keep
//! the author's log up to `seq - 1` and no further, whichever branch it held. Only minimal
//! proofs are accepted, so "the log counts up to the fork point" means the same on every node.
//!
//! Several proofs may exist against one author (it may have forked more than once). Nodes keep
//! one: the least under [`EquivocationProof::rank`] (lowest seq, then lowest ids), so they all
//! end up holding the same one, however proofs arrived.
//!
//! Encoding: `version (1) ‖ len_a (u32 BE) ‖ record a ‖ len_b (u32 BE) ‖ record b`, with
//! `a.id < b.id`, so a proof has exactly one encoding.

use crate::codec::MAX_RECORD_SIZE;
use crate::{DecodeError, MemberId, Record, RecordId, ValidationError};

const VERSION: u8 = 1;

/// Most bytes of an encoded proof.
pub const MAX_PROOF_SIZE: usize = 1 + 2 * (4 + MAX_RECORD_SIZE);

/// Why two records are not a proof of equivocation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    /// The proof's bytes do not decode.
    #[error("proof does not decode: {0}")]
    Decode(#[from] DecodeError),
    /// A record in it does not verify.
    #[error("proof holds an invalid record: {0}")]
    Invalid(#[from] ValidationError),
    /// The two records are by different authors.
    #[error("proof records are by different authors")]
    DifferentAuthors,
    /// The two records are at different positions.
    #[error("proof records are at different seqs ({0} and {1})")]
    DifferentSeqs(u64, u64),
    /// The two records are one and the same.
    #[error("proof records are identical")]
    Identical,
    /// The two records extend different predecessors: the fork is further back.
    #[error("proof at seq {0} is not minimal: its records extend different predecessors")]
    NotMinimal(u64),
}

/// Two valid, different records by one author at one seq, extending the same predecessor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EquivocationProof {
    a: Record,
    b: Record,
}

impl EquivocationProof {
    /// Checks that `x` and `y` prove their author equivocated: both signatures verify
    /// (`verify_strict`), same author, same seq, same `prev`, different ids.
    pub fn new(x: Record, y: Record) -> Result<Self, ProofError> {
        if x.author() != y.author() {
            return Err(ProofError::DifferentAuthors);
        }
        if x.seq() != y.seq() {
            return Err(ProofError::DifferentSeqs(x.seq(), y.seq()));
        }
        if x.id() == y.id() {
            return Err(ProofError::Identical);
        }
        if x.prev() != y.prev() {
            return Err(ProofError::NotMinimal(x.seq()));
        }
        x.verify_signature()?;
        y.verify_signature()?;
        let (a, b) = if x.id() < y.id() { (x, y) } else { (y, x) };
        Ok(Self { a, b })
    }

    /// Decodes and checks a proof.
    pub fn decode(bytes: &[u8]) -> Result<Self, ProofError> {
        let malformed = |reason: &str| DecodeError::Invalid { field: "proof", reason: reason.into() };
        if bytes.len() > MAX_PROOF_SIZE {
            return Err(malformed("longer than a proof can be").into());
        }
        let rest = match bytes.split_first() {
            Some((&VERSION, rest)) => rest,
            Some((v, _)) => return Err(DecodeError::UnknownVersion(*v).into()),
            None => return Err(malformed("empty").into()),
        };
        let (a, rest) = split_record(rest).ok_or_else(|| malformed("first record is cut short"))?;
        let (b, rest) = split_record(rest).ok_or_else(|| malformed("second record is cut short"))?;
        if !rest.is_empty() {
            return Err(malformed("trailing bytes").into());
        }
        let (a, b) = (Record::decode(a)?, Record::decode(b)?);
        if a.id() >= b.id() {
            return Err(malformed("records are not in id order").into());
        }
        Self::new(a, b)
    }

    /// The canonical bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(9 + self.a.bytes().len() + self.b.bytes().len());
        out.push(VERSION);
        for r in [&self.a, &self.b] {
            out.extend_from_slice(&(r.bytes().len() as u32).to_be_bytes());
            out.extend_from_slice(r.bytes());
        }
        out
    }

    /// The equivocating author.
    pub fn author(&self) -> MemberId {
        self.a.author()
    }

    /// The seq both records claim: the author's log counts up to `seq - 1`.
    pub fn seq(&self) -> u64 {
        self.a.seq()
    }

    /// The id of the record both branches extend (zero at seq 1): the last one that counts.
    pub fn base(&self) -> RecordId {
        self.a.prev()
    }

    /// Both records, lower id first.
    pub fn records(&self) -> [&Record; 2] {
        [&self.a, &self.b]
    }

    /// The order in which proofs against one author are preferred: lower is kept.
    pub fn rank(&self) -> (u64, RecordId, RecordId) {
        (self.seq(), self.a.id(), self.b.id())
    }
}

fn split_record(bytes: &[u8]) -> Option<(&[u8], &[u8])> {
    let (len, rest) = bytes.split_first_chunk::<4>()?;
    let len = u32::from_be_bytes(*len) as usize;
    (len <= MAX_RECORD_SIZE && len <= rest.len()).then(|| rest.split_at(len))
}

#[cfg(test)]
mod tests {
    use ed25519_dalek::SigningKey;

    use super::*;
    use crate::{Body, Entry, Fingerprint, FingerprintKind, UnsignedRecord, Verdict, Vote};

    fn key(n: u8) -> SigningKey {
        SigningKey::from_bytes(&[n; 32])
    }

    fn vote(key: &SigningKey, seq: u64, prev: RecordId, verdict: Verdict) -> Record {
        UnsignedRecord {
            author: MemberId::from_key(&key.verifying_key()),
            seq,
            prev,
            timestamp: 1,
            body: Body::Vote(Vote { entry: RecordId([7; 32]), verdict, reason: None, reviewer: None }),
        }
        .sign(key)
        .expect("sign")
    }

    #[test]
    fn two_records_at_one_position_prove_equivocation_and_round_trip() {
        let k = key(1);
        let x = vote(&k, 3, RecordId([5; 32]), Verdict::Confirm);
        let y = vote(&k, 3, RecordId([5; 32]), Verdict::Dispute);
        let proof = EquivocationProof::new(y.clone(), x.clone()).expect("proof");
        assert_eq!(proof.author(), x.author());
        assert_eq!(proof.seq(), 3);
        assert_eq!(proof.base(), RecordId([5; 32]));
        let [a, b] = proof.records();
        assert!(a.id() < b.id());
        assert_eq!(EquivocationProof::new(x, y).expect("either order"), proof);
        assert_eq!(EquivocationProof::decode(&proof.encode()).expect("decodes"), proof);
    }

    #[test]
    fn records_that_do_not_prove_a_fork_are_refused() {
        let (k, other) = (key(1), key(2));
        let x = vote(&k, 3, RecordId([5; 32]), Verdict::Confirm);
        assert_eq!(EquivocationProof::new(x.clone(), x.clone()), Err(ProofError::Identical));
        let by_other = vote(&other, 3, RecordId([5; 32]), Verdict::Dispute);
        assert_eq!(EquivocationProof::new(x.clone(), by_other), Err(ProofError::DifferentAuthors));
        let later = vote(&k, 4, RecordId([5; 32]), Verdict::Dispute);
        assert_eq!(EquivocationProof::new(x.clone(), later), Err(ProofError::DifferentSeqs(3, 4)));
        let elsewhere = vote(&k, 3, RecordId([6; 32]), Verdict::Dispute);
        assert_eq!(EquivocationProof::new(x, elsewhere), Err(ProofError::NotMinimal(3)));
    }

    #[test]
    fn a_forged_record_breaks_the_proof() {
        let k = key(1);
        let x = vote(&k, 3, RecordId([5; 32]), Verdict::Confirm);
        let y = vote(&k, 3, RecordId([5; 32]), Verdict::Dispute);
        let mut bytes = EquivocationProof::new(x, y).expect("proof").encode();
        let last = bytes.len() - 1;
        bytes[last] ^= 1; // inside the second record's signature
        assert!(matches!(EquivocationProof::decode(&bytes), Err(ProofError::Invalid(_))));
    }

    #[test]
    fn malformed_proofs_are_refused_not_panicked_on() {
        let k = key(1);
        let x = vote(&k, 3, RecordId([5; 32]), Verdict::Confirm);
        let y = vote(&k, 3, RecordId([5; 32]), Verdict::Dispute);
        let good = EquivocationProof::new(x, y).expect("proof").encode();
        for cut in 0..good.len() {
            assert!(EquivocationProof::decode(&good[..cut]).is_err(), "cut at {cut}");
        }
        let mut trailing = good.clone();
        trailing.push(0);
        assert!(EquivocationProof::decode(&trailing).is_err());
        let mut swapped = vec![VERSION];
        let [a, b] = EquivocationProof::decode(&good).expect("good").records().map(|r| r.bytes().to_vec());
        for r in [&b, &a] {
            swapped.extend_from_slice(&(r.len() as u32).to_be_bytes());
            swapped.extend_from_slice(r);
        }
        assert!(EquivocationProof::decode(&swapped).is_err(), "records out of order");
    }

    #[test]
    fn lower_seq_ranks_first() {
        let k = key(1);
        let low = EquivocationProof::new(
            vote(&k, 2, RecordId([1; 32]), Verdict::Confirm),
            vote(&k, 2, RecordId([1; 32]), Verdict::Dispute),
        )
        .expect("proof");
        let high = EquivocationProof::new(
            vote(&k, 9, RecordId([1; 32]), Verdict::Confirm),
            vote(&k, 9, RecordId([1; 32]), Verdict::Dispute),
        )
        .expect("proof");
        assert!(low.rank() < high.rank());
    }

    fn forged(record: &Record) -> Record {
        let mut bytes = record.bytes().to_vec();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        Record::decode(&bytes).expect("still well formed")
    }

    #[test]
    fn either_record_forged_breaks_the_proof() {
        let k = key(1);
        let x = vote(&k, 3, RecordId([5; 32]), Verdict::Confirm);
        let y = vote(&k, 3, RecordId([5; 32]), Verdict::Dispute);
        for (a, b) in [(forged(&x), y.clone()), (x.clone(), forged(&y))] {
            let bad = if a.verify_signature().is_err() { a.id() } else { b.id() };
            assert_eq!(
                EquivocationProof::new(a.clone(), b.clone()),
                Err(ProofError::Invalid(ValidationError::BadSignature(bad)))
            );
            assert_eq!(
                EquivocationProof::new(b, a),
                Err(ProofError::Invalid(ValidationError::BadSignature(bad)))
            );
        }
    }

    fn malformed(reason: &str) -> Result<EquivocationProof, ProofError> {
        Err(ProofError::Decode(DecodeError::Invalid { field: "proof", reason: reason.into() }))
    }

    fn encode_raw(records: &[&[u8]]) -> Vec<u8> {
        let mut out = vec![VERSION];
        for r in records {
            out.extend_from_slice(&(r.len() as u32).to_be_bytes());
            out.extend_from_slice(r);
        }
        out
    }

    #[test]
    fn malformed_proofs_say_what_is_wrong() {
        let k = key(1);
        let x = vote(&k, 3, RecordId([5; 32]), Verdict::Confirm);
        let y = vote(&k, 3, RecordId([5; 32]), Verdict::Dispute);
        let good = EquivocationProof::new(x.clone(), y).expect("proof").encode();
        assert_eq!(EquivocationProof::decode(&[]), malformed("empty"));
        let mut version = good.clone();
        version[0] = 2;
        assert_eq!(
            EquivocationProof::decode(&version),
            Err(ProofError::Decode(DecodeError::UnknownVersion(2)))
        );
        assert_eq!(
            EquivocationProof::decode(&good[..good.len() - 1]),
            malformed("second record is cut short")
        );
        assert_eq!(EquivocationProof::decode(&good[..9]), malformed("first record is cut short"));
        let mut trailing = good;
        trailing.push(0);
        assert_eq!(EquivocationProof::decode(&trailing), malformed("trailing bytes"));
        // One record twice is not in (strict) id order.
        assert_eq!(
            EquivocationProof::decode(&encode_raw(&[x.bytes(), x.bytes()])),
            malformed("records are not in id order")
        );
        // A length past the largest record is refused before it is used, even with the bytes there.
        let mut long = encode_raw(&[&vec![0; MAX_RECORD_SIZE + 1]]);
        long.extend_from_slice(&encode_raw(&[x.bytes()])[1..]);
        assert_eq!(EquivocationProof::decode(&long), malformed("first record is cut short"));
        // Record bytes that do not decode.
        assert_eq!(
            EquivocationProof::decode(&encode_raw(&[&[1], x.bytes()])),
            Err(ProofError::Decode(DecodeError::Truncated { field: "author", needed: 32 }))
        );
    }

    /// An entry at seq 3 of exactly `size` bytes (up to 1 MiB): a video fingerprint of
    /// `frames` frames, 31 links of 2 KiB and one that fills the rest. `variant` tells two such
    /// records apart.
    fn entry_of_size(key: &SigningKey, variant: u8, size: usize) -> Record {
        // 64 KiB of links can fill at most that much; frames fill the rest.
        let frames = size.saturating_sub(64 * 1024) / crate::vpdq::FRAME_LEN;
        let frame = crate::vpdq::Frame { hash: [variant; 32], quality: 90, timestamp_ms: 0 };
        let video: Vec<Fingerprint> = vec![frame; frames]
            .chunks(crate::vpdq::MAX_FRAMES)
            .map(|chunk| Fingerprint::new(FingerprintKind::Vpdq, crate::vpdq::encode(chunk)).expect("vpdq"))
            .collect();
        let sign = |links: Vec<String>| {
            UnsignedRecord {
                author: MemberId::from_key(&key.verifying_key()),
                seq: 3,
                prev: RecordId([5; 32]),
                timestamp: 1,
                body: Body::Entry(Entry {
                    fingerprints: std::iter::once(
                        Fingerprint::new(FingerprintKind::Md5, vec![variant; 16]).expect("md5"),
                    )
                    .chain(video.clone())
                    .collect(),
                    category: "csam".parse().expect("valid"),
                    links,
                    note: None,
                    expires_at: None,
                }),
            }
            .sign(key)
            .expect("within limits")
        };
        let mut links = vec!["l".repeat(2048); 31];
        let base = sign(links.clone()).bytes().len();
        links.push("l".repeat(size - base - 2)); // a link is its 2-byte length and its text
        let record = sign(links);
        assert_eq!(record.bytes().len(), size);
        record
    }

    /// Two records of the largest size make the largest proof, 2,097,161 bytes; one byte more
    /// is refused before anything is read.
    #[test]
    fn the_largest_proof_decodes_and_one_byte_more_does_not() {
        let k = key(1);
        let proof = EquivocationProof::new(entry_of_size(&k, 1, 1 << 20), entry_of_size(&k, 2, 1 << 20))
            .expect("proof");
        let bytes = proof.encode();
        assert_eq!(bytes.len(), 2_097_161);
        assert_eq!(EquivocationProof::decode(&bytes), Ok(proof));
        let mut longer = bytes;
        longer.push(0);
        assert_eq!(EquivocationProof::decode(&longer), malformed("longer than a proof can be"));
    }

    #[test]
    fn rank_is_seq_then_ids() {
        let k = key(1);
        let x = vote(&k, 4, RecordId([1; 32]), Verdict::Confirm);
        let y = vote(&k, 4, RecordId([1; 32]), Verdict::Dispute);
        let proof = EquivocationProof::new(x.clone(), y.clone()).expect("proof");
        assert_eq!(proof.rank(), (4, x.id().min(y.id()), x.id().max(y.id())));
    }
}
