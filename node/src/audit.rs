//! Proofs of an entry's status that anyone can check offline, with no node running.
//!
//! A [`ProofBundle`] holds signed records only: the federation's genesis manifest, every
//! membership record the exporting node held (from which the epoch chain is derived exactly as
//! nodes derive it), the entry, and every vote and retraction naming it. [`ProofBundle::verify`]
//! checks each signature with `verify_strict`, rebuilds the chain, checks each author counted
//! in it, and recomputes the status. Nothing in the bundle is taken on trust but the genesis
//! manifest, which the verifier compares with its own copy.

use hashmesh_protocol::{Body, Governance, Manifest, Policy, Record, RecordId, Status, ValidationError};
use serde::{Deserialize, Serialize};

/// The bundle's format tag.
pub const FORMAT: &str = "hashmesh-proof/1";

/// An entry with everything needed to check its status offline.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ProofBundle {
    /// [`FORMAT`].
    pub format: String,
    /// The genesis manifest, TOML.
    pub genesis: String,
    /// Canonical bytes (hex) of every membership record.
    pub membership: Vec<String>,
    /// Canonical bytes (hex) of the entry record.
    pub entry: String,
    /// Canonical bytes (hex) of every vote and retraction naming the entry.
    pub events: Vec<String>,
    /// Encoded proofs of equivocation (hex) the exporter held: a forked member's votes do not
    /// count, and its entries are disputed.
    #[serde(default)]
    pub proofs: Vec<String>,
    /// The status the exporting node showed.
    pub status: Status,
    /// When it was exported (the exporter's clock, unix ms); expiry is judged at this time.
    pub exported_at: u64,
}

/// What a bundle proves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The entry.
    pub entry: RecordId,
    /// Its status, recomputed.
    pub status: Status,
    /// The epoch the membership records make.
    pub epoch: u64,
    /// blake3 of that epoch's manifest.
    pub manifest_digest: [u8; 32],
    /// Votes and retractions counted.
    pub events: usize,
}

/// Why a bundle does not prove what it says.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// Not a bundle this version reads.
    #[error("not a hashmesh proof bundle: {0}")]
    Format(String),
    /// A record does not decode or its signature does not verify.
    #[error("{what}: {error}")]
    Record {
        /// Which record.
        what: String,
        /// Why.
        error: String,
    },
    /// A record was signed by a key the membership chain does not accept at its seq.
    #[error("{what} is not accepted by the membership chain: {error}")]
    NotAccepted {
        /// Which record.
        what: String,
        /// Why (the author and the rule).
        error: String,
    },
    /// A vote or retraction does not name the entry.
    #[error("{0} does not name the entry")]
    Unrelated(String),
    /// The recomputed status is not the one the exporter showed.
    #[error("the records give status {computed}, but the bundle claims {claimed}")]
    StatusMismatch {
        /// Recomputed.
        computed: &'static str,
        /// Claimed.
        claimed: &'static str,
    },
}

impl ProofBundle {
    /// Checks the bundle against `genesis` (the verifier's own copy, if it has one).
    pub fn verify(&self, genesis: Option<&Manifest>) -> Result<Verified, AuditError> {
        if self.format != FORMAT {
            return Err(AuditError::Format(format!("format {:?}, expected {FORMAT:?}", self.format)));
        }
        let bundled = Manifest::from_toml(&self.genesis).map_err(|e| AuditError::Format(e.to_string()))?;
        if genesis.is_some_and(|g| g.digest() != bundled.digest()) {
            return Err(AuditError::Format("its genesis manifest is not the one given".into()));
        }
        let mut membership = self
            .membership
            .iter()
            .enumerate()
            .map(|(i, hex)| record(hex, &format!("membership record {i}")))
            .collect::<Result<Vec<_>, _>>()?;
        // The chain does not depend on the order records are taken in, but a log's own
        // order is how nodes take them.
        membership.sort_by_key(|r| (r.author(), r.seq()));
        let mut governance = Governance::new(bundled);
        for r in &membership {
            governance.add(r);
        }
        let manifest = governance.current();
        let entry = record(&self.entry, "the entry")?;
        accepted(manifest, &entry, "the entry")?;
        let Body::Entry(body) = entry.body() else {
            return Err(AuditError::Format("the entry record is not an entry".into()));
        };
        let mut votes = hashmesh_protocol::EntryVotes::new(entry.author(), body.expires_at);
        for (i, hex) in self.events.iter().enumerate() {
            let what = format!("event {i}");
            let event = record(hex, &what)?;
            accepted(manifest, &event, &what)?;
            match event.body() {
                Body::Vote(v) if v.entry == entry.id() => {
                    votes.add_vote(event.author(), event.seq(), v.verdict)
                }
                Body::Retract(r) if r.entry == entry.id() => votes.add_retraction(event.author()),
                _ => return Err(AuditError::Unrelated(what)),
            }
        }
        let mut policy: Policy = manifest.policy();
        for (i, hex) in self.proofs.iter().enumerate() {
            let bytes =
                hex::decode(hex).map_err(|e| AuditError::Format(format!("proof {i} is not hex: {e}")))?;
            let proof = hashmesh_protocol::EquivocationProof::decode(&bytes)
                .map_err(|e| AuditError::Format(format!("proof {i} does not prove a fork: {e}")))?;
            if manifest.is_member(&proof.author()) {
                policy.forked.insert(proof.author());
            }
        }
        let status = votes.status(&policy, self.exported_at);
        if status != self.status {
            return Err(AuditError::StatusMismatch { computed: status.name(), claimed: self.status.name() });
        }
        Ok(Verified {
            entry: entry.id(),
            status,
            epoch: manifest.epoch,
            manifest_digest: manifest.digest(),
            events: self.events.len(),
        })
    }
}

fn record(hex: &str, what: &str) -> Result<Record, AuditError> {
    let bytes = hex::decode(hex).map_err(|e| AuditError::Format(format!("{what} is not hex: {e}")))?;
    Record::decode_verified(&bytes)
        .map_err(|e: ValidationError| AuditError::Record { what: what.to_owned(), error: e.to_string() })
}

fn accepted(manifest: &Manifest, record: &Record, what: &str) -> Result<(), AuditError> {
    manifest
        .accepts(&record.author(), record.seq())
        .map_err(|e| AuditError::NotAccepted { what: what.to_owned(), error: e.to_string() })
}
