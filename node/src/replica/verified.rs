//! Records whose signature has been checked: the only kind the replica takes from outside.
//!
//! [`Verified`] can be made only by checking a signature with `verify_strict` (or by this
//! crate signing a record itself), so no path — gossip, catch-up sync, import — can store a
//! record whose signature nobody checked: the compiler refuses it.

use ed25519_dalek::VerifyingKey;
use hashmesh_protocol::{Record, ValidationError};

/// A record whose signature verifies under its author's key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified(Record);

impl Verified {
    /// Checks `record`'s signature.
    pub fn check(record: Record) -> Result<Self, ValidationError> {
        record.verify_signature()?;
        Ok(Self(record))
    }

    /// The record.
    pub fn record(&self) -> &Record {
        &self.0
    }

    /// The record, taken out.
    pub fn into_record(self) -> Record {
        self.0
    }
}

/// Checks the signatures of one author's records, spread over the machine's cores (signature
/// checks are much of what catch-up costs), the author's key decompressed once. Returns the
/// verified prefix, and the error that ended it early, if one did.
pub fn verify_run(records: Vec<Record>) -> (Vec<Verified>, Option<ValidationError>) {
    let threads = std::thread::available_parallelism().map_or(1, std::num::NonZero::get).min(8);
    let key = records.first().and_then(|r| r.author().verifying_key());
    let check = |r: &Record, key: Option<&VerifyingKey>| match key {
        Some(key) => r.verify_signature_with(key),
        None => r.verify_signature(),
    };
    let checks: Vec<Result<(), ValidationError>> = if records.len() < 64 || threads == 1 {
        records.iter().map(|r| check(r, key.as_ref())).collect()
    } else {
        let chunk = records.len().div_ceil(threads);
        std::thread::scope(|scope| {
            let workers: Vec<_> = records
                .chunks(chunk)
                .map(|part| {
                    let key = key.as_ref();
                    scope.spawn(move || part.iter().map(|r| check(r, key)).collect::<Vec<_>>())
                })
                .collect();
            // A worker that panicked ends the results there: the caller keeps the prefix
            // before it, and the rest is fetched again later.
            let mut checks = Vec::with_capacity(records.len());
            for worker in workers {
                match worker.join() {
                    Ok(part) => checks.extend(part),
                    Err(_) => break,
                }
            }
            checks
        })
    };
    let mut verified = Vec::with_capacity(records.len());
    let mut checks = checks.into_iter();
    for record in records {
        match checks.next() {
            Some(Ok(())) => verified.push(Verified(record)),
            Some(Err(e)) => return (verified, Some(e)),
            None => return (verified, None),
        }
    }
    (verified, None)
}
