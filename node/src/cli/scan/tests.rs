//! Merging the node's per-fingerprint answers back into per-file hits, and the exit status.

use hashmesh_protocol::{Action, Fingerprint, FingerprintKind, RecordId, Status};

use super::report::Row;
use super::{Batch, Summary, merge};
use crate::api::{Hit, MatchResult};
use crate::hashers::{Computed, Hashed};

fn hit(entry: u8, kind: FingerprintKind, distance: u32, status: Status) -> Hit {
    Hit {
        entry: RecordId([entry; 32]),
        category: "csam".parse().expect("category"),
        status,
        kind,
        distance,
        action: status.action(),
        video: None,
    }
}

fn fp(kind: FingerprintKind, byte: u8) -> Fingerprint {
    Fingerprint::new(kind, vec![byte; kind.fixed_len().expect("a fixed-length kind")]).expect("fingerprint")
}

fn result(kind: FingerprintKind, hits: Vec<Hit>) -> MatchResult {
    MatchResult { hash: fp(kind, 0), quality: None, skipped: None, hits, suppressed: Vec::new() }
}

#[test]
fn a_file_gets_one_hit_per_entry_at_its_nearest_variant() {
    use FingerprintKind::{Md5, Pdq};
    // File 0: its PDQ is 40 from entry 1, a mirrored variant 6 from it; md5 hits entry 2,
    // which is rejected. File 1 has no hits.
    let results = vec![
        result(Md5, vec![hit(2, Md5, 0, Status::Rejected)]),
        result(Pdq, vec![hit(1, Pdq, 40, Status::Pending)]),
        result(Pdq, vec![hit(1, Pdq, 6, Status::Pending)]),
        result(Md5, vec![]),
    ];
    let merged = merge(&results, &[0, 0, 0, 1], 2);
    assert_eq!(merged[0], vec![hit(1, Pdq, 6, Status::Pending), hit(2, Md5, 0, Status::Rejected)]);
    assert!(merged[1].is_empty());
    let row = Row::new("a.png".as_ref(), merged[0].clone(), None, vec![]);
    assert_eq!(row.action, Action::Review, "the strongest action over the file's hits");
}

#[test]
fn exact_and_perceptual_hits_on_one_entry_keep_the_exact_one() {
    use FingerprintKind::{Pdq, Sha256};
    let results = vec![
        result(Sha256, vec![hit(1, Sha256, 0, Status::Verified)]),
        result(Pdq, vec![hit(1, Pdq, 0, Status::Verified)]),
    ];
    assert_eq!(merge(&results, &[0, 0], 1), vec![vec![hit(1, Sha256, 0, Status::Verified)]]);
}

#[test]
fn low_quality_pdq_is_noted_not_sent_and_unreadable_files_are_rows() {
    let mut batch = Batch::default();
    let mut low = Computed::plain(fp(FingerprintKind::Pdq, 7));
    low.skipped = Some("quality 12 below 50".into());
    low.variants = vec![fp(FingerprintKind::Pdq, 8)];
    let hashed =
        Hashed { computed: vec![Computed::plain(fp(FingerprintKind::Md5, 1)), low], ..Hashed::default() };
    batch.push("flat.png".as_ref(), Ok(hashed));
    batch.push("locked".as_ref(), Err(std::io::Error::from(std::io::ErrorKind::PermissionDenied)));
    assert_eq!(batch.hashes, vec![fp(FingerprintKind::Md5, 1)], "neither the PDQ nor its variants go");
    assert_eq!(batch.owner, vec![0]);
    assert_eq!(batch.files[0].skipped, vec!["pdq: quality 12 below 50".to_owned()]);
    assert!(batch.files[1].error.as_deref().is_some_and(|e| e.starts_with("cannot read: ")));
}

#[test]
fn exit_status_puts_a_match_before_an_error() {
    let summary = |matched, errors| Summary { files: 10, matched, errors };
    assert_eq!(summary(0, 0).exit_code(), 0);
    assert_eq!(summary(1, 0).exit_code(), 1);
    assert_eq!(summary(1, 3).exit_code(), 1, "a match is what the caller must act on");
    assert_eq!(summary(0, 3).exit_code(), 2, "some file was not fully checked");
}
