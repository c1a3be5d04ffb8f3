//! The JSON shapes of the RPC, shared by the server (`rpc`) and its client (the CLI).

use hashmesh_protocol::{
    Action, Category, Changes, Fingerprint, FingerprintKind, Manifest, MemberId, MemberInfo, PolicyParams,
    ProposalId, RecordId, Rotation, Status, Verdict,
};
use serde::{Deserialize, Serialize};

/// `POST /v1/entries`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SubmitEntry {
    /// Fingerprints as `kind:hex`.
    #[schema(min_items = 1)]
    pub fingerprints: Vec<Fingerprint>,
    /// Category name.
    pub category: Category,
    /// Links where the content was seen.
    #[serde(default)]
    pub links: Vec<String>,
    /// Note for reviewers.
    #[serde(default)]
    pub note: Option<String>,
    /// Unix ms after which the entry lapses.
    #[serde(default)]
    pub expires_at: Option<u64>,
}

/// `POST /v1/entries/{id}/votes`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CastVote {
    /// `confirm` or `dispute`.
    pub verdict: Verdict,
    /// Why.
    #[serde(default)]
    pub reason: Option<String>,
}

/// `POST /v1/entries/{id}/retract`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RetractEntry {
    /// Why.
    #[serde(default)]
    pub reason: Option<String>,
}

/// A record just written: what the write endpoints answer.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Written {
    /// The new record's id (for an entry, the entry id).
    pub id: RecordId,
    /// Its seq in this member's log.
    pub seq: u64,
}

/// One member's vote as shown on an entry.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct VoteView {
    /// The voter.
    pub member: MemberId,
    /// The voter's name in the manifest.
    pub member_name: Option<String>,
    /// Its latest verdict.
    pub verdict: Verdict,
    /// The vote's seq in the voter's log.
    pub seq: u64,
    /// Why (when shown with the entry).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The voter's admin who cast it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reviewer: Option<String>,
    /// When the voter signed it (its clock, unix ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<u64>,
}

/// An entry with its current status.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct EntryView {
    /// Entry id.
    pub id: RecordId,
    /// Author.
    pub author: MemberId,
    /// Author's name in the manifest.
    pub author_name: Option<String>,
    /// Seq in the author's log.
    pub seq: u64,
    /// Author's timestamp, unix ms.
    pub timestamp: u64,
    /// Fingerprints.
    pub fingerprints: Vec<Fingerprint>,
    /// Category.
    pub category: Category,
    /// Links.
    pub links: Vec<String>,
    /// Note.
    pub note: Option<String>,
    /// Expiry, unix ms.
    pub expires_at: Option<u64>,
    /// Status under the federation's policy.
    pub status: Status,
    /// What to do with matching content.
    pub action: Action,
    /// Latest vote of each member.
    pub votes: Vec<VoteView>,
}

/// `GET /v1/entries` query.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct EntryFilter {
    /// Only entries in this status.
    pub status: Option<Status>,
    /// Only entries in this category.
    pub category: Option<Category>,
    /// Only entries by this author.
    pub author: Option<MemberId>,
    /// At most this many (default 100; 0 is taken as 1, more than 1000 as 1000).
    pub limit: Option<u32>,
    /// Continue after this entry id (the previous page's `next_cursor`).
    pub cursor: Option<RecordId>,
}

/// A page of entries.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct EntryPage {
    /// The entries, in id order.
    pub entries: Vec<EntryView>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    pub next_cursor: Option<RecordId>,
}

/// Fingerprints one `POST /v1/match/hashes` may look up.
pub const MAX_MATCH_HASHES: usize = 10_000;

/// `POST /v1/match/hashes`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MatchHashes {
    /// Fingerprints to look up, each `kind:hex` (at most [`MAX_MATCH_HASHES`] per call).
    #[schema(min_items = 1, max_items = 10_000)]
    pub hashes: Vec<Fingerprint>,
}

/// One matching entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Hit {
    /// The entry.
    pub entry: RecordId,
    /// Its category.
    pub category: Category,
    /// Its status.
    pub status: Status,
    /// Kind of fingerprint that matched.
    pub kind: FingerprintKind,
    /// Hamming distance (0 for exact kinds; for a video, the closest pair of frames).
    pub distance: u32,
    /// What to do.
    pub action: Action,
    /// For a video (`vpdq`): how much of each video matched.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub video: Option<VideoMatch>,
}

/// How much of two videos match, as Meta's vPDQ matcher computes it: repeated frames dropped,
/// frames below quality 50 dropped, frames within the federation's `pdq_max_distance`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct VideoMatch {
    /// Percent of the queried video's frames near a frame of the listed video; a match needs
    /// the manifest's `vpdq_query_match_percent` (80 by default).
    pub query_percent: f64,
    /// Percent of the listed video's frames near a frame of the queried one; a match needs the
    /// manifest's `vpdq_candidate_match_percent` (0 by default).
    pub candidate_percent: f64,
}

/// The result for one queried fingerprint.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct MatchResult {
    /// The fingerprint queried.
    pub hash: Fingerprint,
    /// Quality (0–100) for kinds that have one (pdq).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub quality: Option<u8>,
    /// Why it was not matched, if it was not (e.g. quality below the threshold).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub skipped: Option<String>,
    /// Matching entries, strongest action first.
    pub hits: Vec<Hit>,
    /// Hits set aside because the content matches a verified allow-list (`benign`) entry.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub suppressed: Vec<Suppressed>,
}

/// A hit the allow-list set aside, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Suppressed {
    /// The hit.
    #[serde(flatten)]
    pub hit: Hit,
    /// The verified `benign` entry that suppressed it.
    pub by: RecordId,
    /// That entry's note: why the content is known benign.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Answer of the match endpoints.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct MatchResponse {
    /// One result per queried fingerprint, in request order.
    pub results: Vec<MatchResult>,
    /// The strongest action over all hits.
    pub action: Action,
    /// For file uploads: why the file, which looked like an image, could not be decoded
    /// (only its exact kinds were matched).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub image_error: Option<String>,
    /// For file uploads: why the file, which looked like a video, got no vPDQ fingerprint
    /// (FFmpeg missing, the file damaged, too long): only its exact kinds were matched.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub video_error: Option<String>,
}

/// `GET /v1/alerts`: proofs that members equivocated.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AlertList {
    /// One per forked member.
    pub alerts: Vec<Alert>,
}

/// Proof that a member signed two records at one position of its log: its key signed two
/// histories (a leaked key, or two nodes running from one data dir).
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Alert {
    /// The member.
    pub author: MemberId,
    /// Its name in the manifest.
    pub author_name: Option<String>,
    /// The position both records claim; the member's log counts up to the one before.
    pub seq: u64,
    /// The two records, each verifiable on its own.
    pub records: Vec<RawRecord>,
}

/// A raw signed record, for audit.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RawRecord {
    /// Record id.
    pub id: RecordId,
    /// Author.
    pub author: MemberId,
    /// Seq.
    pub seq: u64,
    /// Canonical bytes, hex (verify with any ed25519 library against `author`).
    pub bytes: String,
}

impl RawRecord {
    /// The record, for the API.
    pub fn of(record: &hashmesh_protocol::Record) -> Self {
        Self {
            id: record.id(),
            author: record.author(),
            seq: record.seq(),
            bytes: hex::encode(record.bytes()),
        }
    }
}

/// `GET /v1/records` query.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct RecordsQuery {
    /// Whose log.
    pub author: MemberId,
    /// First seq (default 1).
    pub from_seq: Option<u64>,
    /// At most this many (default 100; 0 is taken as 1, more than 1000 as 1000).
    pub limit: Option<u32>,
}

/// One author's log as this node holds it.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LogHead {
    /// The author.
    pub author: MemberId,
    /// Its name in the manifest.
    pub name: Option<String>,
    /// Highest contiguous seq held.
    pub seq: u64,
    /// Id of that record.
    pub head: RecordId,
    /// If the author is proven to have equivocated: the seq of the fork. Its log counts up
    /// to the record before it, its votes do not count, and its entries are `disputed`.
    pub forked_at: Option<u64>,
}

/// `GET /readyz`: whether the node should be sent traffic (200) or not yet (503).
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Readiness {
    /// Its replica is worth matching against: the only member, or caught up with a peer.
    pub ready: bool,
    /// Why, or what it waits for.
    pub reason: String,
}

/// `GET /v1/status`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct StatusView {
    /// Federation name.
    pub federation: String,
    /// Manifest epoch.
    pub epoch: u64,
    /// This node's member.
    pub member: MemberId,
    /// Its name.
    pub member_name: Option<String>,
    /// libp2p peer id, once the network is up.
    pub peer_id: Option<String>,
    /// Records held.
    pub records: usize,
    /// Entries held.
    pub entries: usize,
    /// Out-of-order records waiting for a gap to fill.
    pub buffered: usize,
    /// blake3 over every author's head: equal digests mean identical replicas.
    pub digest: String,
    /// Every author's log head.
    pub logs: Vec<LogHead>,
    /// Authors proven to have signed two records at one position (see `GET /v1/alerts`).
    pub equivocators: Vec<MemberId>,
    /// Whether this node's own log is confirmed by its peers: `confirmed` (own writes
    /// accepted), `waiting` (checking with peers; own writes answer 503), `stuck` (no peer
    /// reachable; own writes refused), `unconfirmed` (no peer reachable; writes accepted
    /// because `p2p.start_unconfirmed` is set).
    pub own_log: String,
    /// Peers whose digest equals ours at the last comparison.
    pub in_sync_with: Vec<String>,
    /// Connections refused because the peer is not a member.
    pub refused_connections: u64,
    /// The member node this node follows, read-only (`run --follow`); absent for a member node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub follows: Option<String>,
}

/// An RPC error body.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// What went wrong and what to do.
    pub error: String,
}

/// `GET /v1/peers`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PeerList {
    /// Every member peer this node knows, connected or not.
    pub peers: Vec<crate::net::PeerView>,
}

/// `POST /v1/membership/proposals`: changes for the next epoch.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProposeChanges {
    /// The epoch the changes make; if given, it must be the next one (a guard against
    /// proposing on a stale view).
    #[serde(default)]
    pub epoch: Option<u64>,
    /// Members to add.
    #[serde(default)]
    pub add: Vec<MemberInfo>,
    /// Members to remove.
    #[serde(default)]
    pub remove: Vec<RemoveMember>,
    /// Members whose key, peer ids or addresses change (a new key's `last_seq` defaults to
    /// the old key's last record this node holds).
    #[serde(default)]
    pub rotate: Vec<Rotation>,
    /// New policy numbers (all of them: an absent number takes its default).
    #[serde(default)]
    pub policy: Option<PolicyParams>,
}

/// A member to remove.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RemoveMember {
    /// Its key.
    pub key: MemberId,
    /// The last seq of its log that counts (default: the last this node holds).
    #[serde(default)]
    pub last_seq: Option<u64>,
    /// Whether its votes keep counting (default false).
    #[serde(default)]
    pub votes_count: bool,
}

/// A membership record just written.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ProposalWritten {
    /// The proposal.
    pub proposal: ProposalId,
    /// The epoch it would make.
    pub epoch: u64,
    /// The record written (this member's approval).
    pub record: Written,
}

/// `GET /v1/membership`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct MembershipView {
    /// The epoch in force.
    pub epoch: u64,
    /// blake3 of the manifest in force, hex: equal on nodes that agree on the membership.
    pub digest: String,
    /// The manifest in force.
    pub manifest: Manifest,
    /// Approvals a proposal for the next epoch needs (a strict majority of the members).
    pub majority: usize,
    /// Proposals not yet in effect.
    pub pending: Vec<ProposalView>,
    /// Every epoch from genesis, with the proposal and approvals that made it.
    pub history: Vec<EpochView>,
}

/// A proposal and who approved it.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ProposalView {
    /// Its id.
    pub id: ProposalId,
    /// The epoch it would make.
    pub epoch: u64,
    /// The changes.
    pub changes: Changes,
    /// Members that signed a record for it.
    pub approvals: Vec<ApprovalView>,
}

/// One member's approval.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ApprovalView {
    /// The member's key.
    pub member: MemberId,
    /// Its name.
    pub name: Option<String>,
    /// The seq of its record.
    pub seq: u64,
    /// The record's id.
    pub record: RecordId,
}

/// An epoch of the chain.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct EpochView {
    /// The epoch.
    pub epoch: u64,
    /// The proposal that made it (none for genesis).
    pub proposal: Option<ProposalId>,
    /// The approvals held for it.
    pub approvals: Vec<ApprovalView>,
}

/// `GET /v1/queue` query.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct QueueQuery {
    /// At most this many (default 100; 0 is taken as 1, more than 1000 as 1000).
    #[serde(default)]
    pub limit: Option<u32>,
}

/// `GET /v1/queue`: entries awaiting this member's vote, oldest first.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct QueueView {
    /// The entries, each with every member's vote and reason.
    pub entries: Vec<QueueItem>,
    /// How many entries await this member's vote in all.
    pub total: usize,
}

/// An entry in the review queue.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct QueueItem {
    /// The entry with its votes.
    #[serde(flatten)]
    pub entry: EntryView,
    /// Members' latest votes that confirm it.
    pub confirms: usize,
    /// Members' latest votes that dispute it.
    pub disputes: usize,
}

/// `GET /v1/entries/{id}/history`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct HistoryView {
    /// The entry.
    pub entry: RecordId,
    /// Its status now.
    pub status: Status,
    /// The entry record, then each vote and retraction, in the order their authors signed
    /// them, with the status after each.
    pub events: Vec<HistoryEvent>,
}

/// One signed record in an entry's history.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct HistoryEvent {
    /// `entry`, `vote` or `retract`.
    pub kind: String,
    /// Who signed it.
    pub author: MemberId,
    /// Their name.
    pub author_name: Option<String>,
    /// Its seq in their log.
    pub seq: u64,
    /// The record's id.
    pub id: RecordId,
    /// When they signed it (their clock, unix ms).
    pub timestamp: u64,
    /// For a vote: the verdict.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verdict: Option<Verdict>,
    /// Why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The admin who cast a vote.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reviewer: Option<String>,
    /// The entry's status with this record and those before it.
    pub status: Status,
    /// The ed25519 signature, hex.
    pub signature: String,
}

/// `POST /v1/import` query: how to read the uploaded list.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ImportQuery {
    /// `plain`, `csv`, `te`, `hma` or `jsonl`.
    pub format: crate::lists::Format,
    /// The kind of bare hex values (`plain`, `csv` without a kind column).
    #[serde(default)]
    pub kind: Option<FingerprintKind>,
    /// The category of rows that name none (required for `plain` and `te`).
    #[serde(default)]
    pub category: Option<Category>,
}

/// What an import did.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ImportReport {
    /// The format read.
    pub format: crate::lists::Format,
    /// Rows read (blank lines, comments and a CSV header are not rows).
    pub rows: u64,
    /// Rows that became entries signed by this member.
    pub imported: u64,
    /// Rows skipped because the federation already holds every fingerprint they name.
    pub duplicates: u64,
    /// Rows that could not become entries.
    pub errors: u64,
    /// The first bad rows (up to 1000), each with its line and the reason.
    pub bad_rows: Vec<crate::lists::RowError>,
    /// Set if the import stopped before the end of the list, saying why; every row before
    /// that point was imported or reported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped: Option<String>,
}

/// `GET /v1/export` query: which entries, in which format.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ExportQuery {
    /// `plain`, `csv`, `te`, `hma` or `jsonl` (default `jsonl`).
    #[serde(default)]
    pub format: Option<crate::lists::Format>,
    /// Only entries in this status.
    #[serde(default)]
    pub status: Option<Status>,
    /// Only entries in this category.
    #[serde(default)]
    pub category: Option<Category>,
    /// Only fingerprints of this kind.
    #[serde(default)]
    pub kind: Option<FingerprintKind>,
    /// Only entries by this author.
    #[serde(default)]
    pub author: Option<MemberId>,
}

impl From<hashmesh_protocol::Entry> for SubmitEntry {
    fn from(e: hashmesh_protocol::Entry) -> Self {
        Self {
            fingerprints: e.fingerprints,
            category: e.category,
            links: e.links,
            note: e.note,
            expires_at: e.expires_at,
        }
    }
}

/// A webhook delivery: the JSON body POSTed to each configured URL, signed with
/// `X-Hashmesh-Signature: sha256=<hex HMAC-SHA256 of the body, keyed with the hook's secret>`.
/// Events go out one at a time in `id` order, each until the receiver answers 2xx; an event
/// may come again if the node stopped between delivery and noting it, so receivers drop an
/// `id` they have seen.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct WebhookEvent {
    /// Increases by one per event on this node; never reused.
    pub id: u64,
    /// When the node made it (unix ms).
    pub at: u64,
    /// The member whose node it is.
    pub member: MemberId,
    /// What happened.
    #[serde(flatten)]
    pub event: Event,
}

/// What a webhook event says.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// Content matched: the fingerprint, its hits and the strongest action.
    Match {
        /// The fingerprint queried.
        hash: Fingerprint,
        /// What to do.
        action: Action,
        /// The entries it matched.
        hits: Vec<Hit>,
    },
    /// An entry this member matched before changed status: remove content when it becomes
    /// `verified`, restore it when it is `rejected`, `retracted` or `expired`.
    StatusChanged {
        /// The entry.
        entry: RecordId,
        /// Its category.
        category: Category,
        /// Its status when last reported.
        from: Status,
        /// Its status now.
        to: Status,
        /// What to do with content that matched it, now.
        action: Action,
    },
}

/// `GET /v1/webhooks`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct WebhookList {
    /// One per configured webhook.
    pub webhooks: Vec<WebhookStatus>,
}

/// Delivery state of one webhook.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct WebhookStatus {
    /// Its URL.
    pub url: String,
    /// The events it receives.
    pub events: Vec<crate::config::EventKind>,
    /// The id of the last event it took (0: none yet).
    pub delivered_through: u64,
    /// Events waiting for it.
    pub pending: u64,
    /// Failed attempts at the event now due, in a row.
    pub failures: u32,
    /// Why the last attempt failed, if it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// When the last attempt was made (unix ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_attempt: Option<u64>,
    /// When the next attempt is due, while retrying (unix ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_attempt: Option<u64>,
}

/// `GET /v1/stats` query.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct StatsQuery {
    /// First day, `YYYY-MM-DD` (default 30 days before `to`).
    #[serde(default)]
    #[param(format = Date)]
    pub from: Option<String>,
    /// Last day, `YYYY-MM-DD` (default today, UTC).
    #[serde(default)]
    #[param(format = Date)]
    pub to: Option<String>,
}

/// `GET /v1/stats`: members' published counters summed by day and category.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct StatsView {
    /// First day.
    pub from: String,
    /// Last day.
    pub to: String,
    /// Each day with any counters, oldest first.
    pub days: Vec<DayStats>,
    /// The whole range, by category.
    pub totals: Vec<CategoryStats>,
}

/// One day's sums.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DayStats {
    /// `YYYY-MM-DD` (UTC).
    pub day: String,
    /// Members that published counters for it.
    pub members: usize,
    /// Sums by category.
    pub categories: Vec<CategoryStats>,
}

/// Sums of one category.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CategoryStats {
    /// The category.
    pub category: Category,
    /// Content matched to its entries.
    pub matches: u64,
    /// Of those, content removed.
    pub removals: u64,
}

/// `POST /v1/stats/followers`: a follower's daily counters, for its member node to publish
/// with its own. Each day holds its counts so far (the whole day, not what is new).
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FollowerCounters {
    /// The follower's id: random, made once per follower data dir.
    #[schema(pattern = "^[A-Za-z0-9-]{1,64}$")]
    pub follower: String,
    /// Its counters by day.
    #[schema(max_items = 31)]
    pub days: Vec<hashmesh_protocol::Stats>,
}

/// `POST /v1/stats/followers`: how many days were taken.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CountersTaken {
    /// Days in the report.
    pub days: usize,
}

/// `POST /v1/stats/publish`: the records just signed.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct StatsPublished {
    /// One `stats` record per day whose counters changed since they were last published.
    pub records: Vec<Written>,
}
