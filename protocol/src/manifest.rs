//! The federation manifest: who the members are and which policy numbers every node applies.
//!
//! Founding members share the genesis manifest (epoch 1) out of band; later epochs travel as
//! [`Membership`](crate::Membership) records. The text form is TOML:
//!
//! ```toml
//! name = "example-federation"
//! epoch = 1
//!
//! [policy]                       # every field optional
//! confirmations_required = 2     # default: min(2, members - 1)
//! resolution_quorum = 3          # default: a majority of members
//! pdq_max_distance = 31          # also the distance at which two video frames match
//! vpdq_query_match_percent = 80  # share of a queried video's frames that must match
//! vpdq_candidate_match_percent = 0  # share of the listed video's frames that must match
//! categories = ["csam", "drugs", "harmful_behavior"]
//!
//! [[members]]
//! name = "alpha"
//! key = "<64 hex digits: the member's ed25519 public key>"
//! peers = ["12D3KooW…"]              # libp2p peer ids of the member's nodes
//! addresses = ["/ip4/192.0.2.1/tcp/7700"]
//! ```
//!
//! Manifests of later epochs also list the keys that left (`[[retired]]`): a removed member's
//! key, or a member's key before a rotation, with the last seq of its log that counts.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::policy::{Former, Policy};
use crate::{Category, MemberId, ValidationError};

/// Default Hamming distance up to which two PDQ hashes match (the industry's usual 31).
pub const DEFAULT_PDQ_MAX_DISTANCE: u32 = 31;

/// Default share (percent) of a queried video's comparable frames that must be near frames of a
/// listed video for the two to match: python-threatexchange's
/// `VPDQ_QUERY_MATCH_THRESHOLD_PERCENT`.
pub const DEFAULT_VPDQ_QUERY_MATCH_PERCENT: u8 = 80;

/// Default share (percent) of the listed video's comparable frames that must be near the
/// query's: python-threatexchange's `VPDQ_INDEX_MATCH_THRESHOLD_PERCENT`, so a short clip cut
/// from a long listed video matches.
pub const DEFAULT_VPDQ_CANDIDATE_MATCH_PERCENT: u8 = 0;

/// A federation manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// The federation's name; also names its gossip topic.
    pub name: String,
    /// Epoch, from 1.
    pub epoch: u64,
    /// Policy numbers.
    #[serde(default)]
    pub policy: PolicyParams,
    /// The members.
    pub members: Vec<MemberInfo>,
    /// Keys no longer in use: their logs end at `last_seq`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub retired: Vec<RetiredKey>,
}

/// A key that left the federation, by removal or by rotation, in some epoch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RetiredKey {
    /// The key.
    pub key: MemberId,
    /// The member it belonged to.
    pub name: String,
    /// The last seq of its log that counts; later records are refused on every node.
    pub last_seq: u64,
    /// The epoch that retired it.
    pub epoch: u64,
    /// The member's key now, if the key was rotated; none if the member was removed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub successor: Option<MemberId>,
    /// Whether its votes still count (always for a rotated key; as the removal said otherwise).
    pub votes_count: bool,
}

/// One member of the federation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MemberInfo {
    /// Human name, unique in the federation.
    pub name: String,
    /// The member's signing key.
    pub key: MemberId,
    /// libp2p peer ids of the member's nodes.
    #[serde(default)]
    pub peers: Vec<String>,
    /// Multiaddresses to dial the member's nodes at.
    #[serde(default)]
    pub addresses: Vec<String>,
}

/// Policy numbers; each absent one takes its documented default.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PolicyParams {
    /// Confirmations that verify an undisputed entry (default `min(2, members - 1)`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub confirmations_required: Option<u32>,
    /// Voters needed to resolve a dispute (default a majority of members).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resolution_quorum: Option<u32>,
    /// PDQ match threshold (default 31).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pdq_max_distance: Option<u32>,
    /// Percent of a queried video's frames that must match a listed video's (default 80;
    /// 1 to 100).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1, maximum = 100)]
    pub vpdq_query_match_percent: Option<u8>,
    /// Percent of the listed video's frames that must match the query's (default 0; 0 to 100).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(maximum = 100)]
    pub vpdq_candidate_match_percent: Option<u8>,
    /// Accepted categories (default the built-in three).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub categories: Option<Vec<Category>>,
}

/// A manifest is malformed or inconsistent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManifestError {
    /// Not valid TOML of the right shape.
    #[error("manifest is not valid: {0}")]
    Syntax(String),
    /// Valid TOML, but breaks a rule.
    #[error("manifest is not valid: {0}")]
    Rule(String),
}

impl Manifest {
    /// Parses and checks a manifest.
    pub fn from_toml(text: &str) -> Result<Self, ManifestError> {
        let manifest: Self = toml::from_str(text).map_err(|e| ManifestError::Syntax(e.to_string()))?;
        manifest.check()?;
        Ok(manifest)
    }

    /// The TOML text.
    pub fn to_toml(&self) -> String {
        // Serialising plain strings, integers and lists cannot fail.
        toml::to_string_pretty(self).unwrap_or_default()
    }

    /// An identifier of this exact manifest: blake3 of its canonical TOML form.
    pub fn digest(&self) -> [u8; 32] {
        *blake3::hash(self.to_toml().as_bytes()).as_bytes()
    }

    pub(crate) fn check(&self) -> Result<(), ManifestError> {
        let rule = |m: String| Err(ManifestError::Rule(m));
        if self.name.is_empty()
            || !self.name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return rule(format!("name {:?} must be non-empty letters, digits, - or _", self.name));
        }
        if self.epoch == 0 {
            return rule("epoch starts at 1".into());
        }
        if self.members.is_empty() {
            return rule("a federation needs at least one member".into());
        }
        let mut names = BTreeSet::new();
        let mut keys = BTreeSet::new();
        for m in &self.members {
            if !names.insert(&m.name) {
                return rule(format!("member name {:?} appears twice", m.name));
            }
            if !keys.insert(m.key) {
                return rule(format!("member key {} appears twice", m.key));
            }
            if m.key.verifying_key().is_none() {
                return rule(format!("member {:?} has a key that is not an ed25519 public key", m.name));
            }
        }
        let n = self.members.len() as u32;
        let mut retired = BTreeSet::new();
        for r in &self.retired {
            if keys.contains(&r.key) || !retired.insert(r.key) {
                return rule(format!("key {} is retired and cannot be listed again", r.key));
            }
        }
        if let Some(q) = self.policy.resolution_quorum
            && (q == 0 || q > n)
        {
            return rule(format!("resolution_quorum {q} must be between 1 and the member count {n}"));
        }
        if let Some(c) = self.policy.confirmations_required
            && (c == 0 || c > (n - 1).max(1))
        {
            return rule(format!(
                "confirmations_required {c} must be between 1 and {} (0 would verify every entry unreviewed; more than the other members could never be reached)",
                (n - 1).max(1)
            ));
        }
        if self.policy.pdq_max_distance.is_some_and(|d| d > 128) {
            return rule("pdq_max_distance above 128 would match unrelated images".into());
        }
        if let Some(p) = self.policy.vpdq_query_match_percent
            && !(1..=100).contains(&p)
        {
            return rule(format!(
                "vpdq_query_match_percent {p} must be between 1 and 100 (0 would match videos that share no frame)"
            ));
        }
        if let Some(p) = self.policy.vpdq_candidate_match_percent
            && p > 100
        {
            return rule(format!("vpdq_candidate_match_percent {p} must be between 0 and 100"));
        }
        Ok(())
    }

    /// The member with this key.
    pub fn member(&self, key: &MemberId) -> Option<&MemberInfo> {
        self.members.iter().find(|m| m.key == *key)
    }

    /// Whether `key` is a member now.
    pub fn is_member(&self, key: &MemberId) -> bool {
        self.member(key).is_some()
    }

    /// Every key whose log counts: the members' and the retired ones'.
    pub fn log_keys(&self) -> BTreeSet<MemberId> {
        self.members.iter().map(|m| m.key).chain(self.retired.iter().map(|r| r.key)).collect()
    }

    /// The retired key `key`, if it is one.
    pub fn retired_key(&self, key: &MemberId) -> Option<&RetiredKey> {
        self.retired.iter().find(|r| r.key == *key)
    }

    /// Whether a record at `seq` in `author`'s log counts: the author is a member, or a
    /// retired key and `seq` is not past the end of its log.
    pub fn accepts(&self, author: &MemberId, seq: u64) -> Result<(), ValidationError> {
        if self.is_member(author) {
            return Ok(());
        }
        match self.retired_key(author) {
            Some(r) if seq <= r.last_seq => Ok(()),
            Some(r) => {
                Err(ValidationError::Retired { author: *author, epoch: r.epoch, last_seq: r.last_seq })
            }
            None => Err(ValidationError::NotMember(*author)),
        }
    }

    /// The member a libp2p peer id (as text) belongs to.
    pub fn member_of_peer(&self, peer: &str) -> Option<&MemberInfo> {
        self.members.iter().find(|m| m.peers.iter().any(|p| p == peer))
    }

    /// Whether the federation accepts entries in `category`. The allow-list category
    /// (`benign`) is always accepted.
    pub fn allows_category(&self, category: &Category) -> bool {
        if category.is_benign() {
            return true;
        }
        match &self.policy.categories {
            Some(list) => list.contains(category),
            None => Category::BUILT_IN.contains(&category.as_str()),
        }
    }

    /// The PDQ match threshold.
    pub fn pdq_max_distance(&self) -> u32 {
        self.policy.pdq_max_distance.unwrap_or(DEFAULT_PDQ_MAX_DISTANCE)
    }

    /// The percentages at which two videos match: (query, candidate).
    pub fn vpdq_match_percents(&self) -> (u8, u8) {
        (
            self.policy.vpdq_query_match_percent.unwrap_or(DEFAULT_VPDQ_QUERY_MATCH_PERCENT),
            self.policy.vpdq_candidate_match_percent.unwrap_or(DEFAULT_VPDQ_CANDIDATE_MATCH_PERCENT),
        )
    }

    /// Whether two videos match by the federation's percentages, as python-threatexchange's
    /// `VPDQSignal.compare_hash` decides: both shares at least their threshold.
    pub fn videos_match(&self, score: &crate::vpdq::Score) -> bool {
        let (query, candidate) = self.vpdq_match_percents();
        score.query_percent >= f64::from(query) && score.candidate_percent >= f64::from(candidate)
    }

    /// The policy numbers with defaults filled in. A lone member's entries stay pending: no
    /// entry is verified by its author alone.
    pub fn policy(&self) -> Policy {
        let n = self.members.len();
        Policy {
            members: self.members.iter().map(|m| m.key).collect(),
            former: self
                .retired
                .iter()
                .filter(|r| r.votes_count)
                .map(|r| (r.key, Former { member: r.successor.unwrap_or(r.key), retired_at: r.epoch }))
                .collect(),
            confirmations_required: self
                .policy
                .confirmations_required
                .map_or(2.min(n.saturating_sub(1)).max(1), |c| c as usize),
            resolution_quorum: self.policy.resolution_quorum.map_or(n / 2 + 1, |q| q as usize),
            forked: std::collections::BTreeSet::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u8) -> String {
        let sk = ed25519_dalek::SigningKey::from_bytes(&[n; 32]);
        MemberId::from_key(&sk.verifying_key()).to_string()
    }

    #[test]
    fn parses_with_defaults() {
        let text = format!(
            "name = \"fed\"\nepoch = 1\n[[members]]\nname = \"a\"\nkey = \"{}\"\n[[members]]\nname = \"b\"\nkey = \"{}\"\npeers = [\"p\"]\n",
            key(1),
            key(2)
        );
        let m = Manifest::from_toml(&text).expect("valid manifest");
        let p = m.policy();
        assert_eq!(p.confirmations_required, 1);
        assert_eq!(p.resolution_quorum, 2);
        assert_eq!(m.pdq_max_distance(), 31);
        assert_eq!(m.vpdq_match_percents(), (80, 0));
        let score = |query_percent, candidate_percent| crate::vpdq::Score {
            query_percent,
            candidate_percent,
            min_distance: 0,
        };
        // At the thresholds exactly, as the reference's `>=`.
        assert!(m.videos_match(&score(80.0, 0.0)));
        assert!(!m.videos_match(&score(79.99, 100.0)));
        let mut strict = m.clone();
        strict.policy.vpdq_query_match_percent = Some(50);
        strict.policy.vpdq_candidate_match_percent = Some(60);
        assert_eq!(strict.vpdq_match_percents(), (50, 60));
        assert!(strict.videos_match(&score(50.0, 60.0)));
        assert!(!strict.videos_match(&score(100.0, 59.9)));
        assert!(!strict.videos_match(&score(49.9, 100.0)));
        assert_eq!(m.member_of_peer("p").map(|m| m.name.as_str()), Some("b"));
        assert!(m.allows_category(&"csam".parse().expect("valid")));
        assert!(!m.allows_category(&"spam".parse().expect("valid")));
        assert!(m.allows_category(&Category::benign()));
        assert_eq!(Manifest::from_toml(&m.to_toml()), Ok(m));
    }

    #[test]
    fn rejects_duplicates_and_bad_numbers() {
        let dup = format!(
            "name = \"fed\"\nepoch = 1\n[[members]]\nname = \"a\"\nkey = \"{k}\"\n[[members]]\nname = \"b\"\nkey = \"{k}\"\n",
            k = key(1)
        );
        assert!(matches!(Manifest::from_toml(&dup), Err(ManifestError::Rule(_))));
        let quorum = format!(
            "name = \"fed\"\nepoch = 1\n[policy]\nresolution_quorum = 5\n[[members]]\nname = \"a\"\nkey = \"{}\"\n",
            key(1)
        );
        assert!(matches!(Manifest::from_toml(&quorum), Err(ManifestError::Rule(_))));
        assert!(matches!(Manifest::from_toml("name = 3"), Err(ManifestError::Syntax(_))));
        let unreviewed = format!(
            "name = \"fed\"\nepoch = 1\n[policy]\nconfirmations_required = 0\n[[members]]\nname = \"a\"\nkey = \"{}\"\n[[members]]\nname = \"b\"\nkey = \"{}\"\n",
            key(1),
            key(2)
        );
        assert!(matches!(Manifest::from_toml(&unreviewed), Err(ManifestError::Rule(_))));
    }

    /// A manifest named `name` with `policy` lines and `n` members a, b, c, …
    fn text(name: &str, policy: &str, n: u8) -> String {
        let mut t = format!("name = \"{name}\"\nepoch = 1\n[policy]\n{policy}\n");
        for i in 1..=n {
            t += &format!("[[members]]\nname = \"{}\"\nkey = \"{}\"\n", char::from(b'a' + i - 1), key(i));
        }
        t
    }

    fn accepted(text: &str) -> bool {
        match Manifest::from_toml(text) {
            Ok(_) => true,
            Err(ManifestError::Rule(_)) => false,
            Err(e) => panic!("{text}: not a rule failure: {e}"),
        }
    }

    /// Each rule at its boundary: the last accepted value and the first refused one.
    #[test]
    fn each_rule_at_its_boundary() {
        let cases: &[(&str, &str, u8, bool)] = &[
            ("fed-1_X", "", 1, true),
            ("", "", 1, false),
            ("fed 1", "", 1, false),
            ("fed.1", "", 1, false),
            ("fed", "resolution_quorum = 3", 3, true),
            ("fed", "resolution_quorum = 4", 3, false),
            ("fed", "resolution_quorum = 1", 3, true),
            ("fed", "resolution_quorum = 0", 3, false),
            ("fed", "confirmations_required = 2", 3, true),
            ("fed", "confirmations_required = 3", 3, false),
            ("fed", "confirmations_required = 1", 3, true),
            ("fed", "confirmations_required = 0", 3, false),
            // A lone member has no one to confirm its entries: the number is not checked.
            ("fed", "confirmations_required = 1", 1, true),
            ("fed", "pdq_max_distance = 128", 1, true),
            ("fed", "pdq_max_distance = 129", 1, false),
            ("fed", "vpdq_query_match_percent = 100", 1, true),
            ("fed", "vpdq_query_match_percent = 1", 1, true),
            ("fed", "vpdq_query_match_percent = 0", 1, false),
            ("fed", "vpdq_query_match_percent = 101", 1, false),
            ("fed", "vpdq_candidate_match_percent = 0", 1, true),
            ("fed", "vpdq_candidate_match_percent = 100", 1, true),
            ("fed", "vpdq_candidate_match_percent = 101", 1, false),
        ];
        for (name, policy, n, ok) in cases {
            assert_eq!(accepted(&text(name, policy, *n)), *ok, "name {name:?}, {policy:?}, {n} members");
        }
        assert!(!accepted(&text("fed", "", 1).replace("epoch = 1", "epoch = 0")));
        assert!(!accepted("name = \"fed\"\nepoch = 1\nmembers = []\n"));
        assert!(!accepted(&text("fed", "", 2).replace("name = \"b\"", "name = \"a\"")), "duplicate name");
        let mut not_a_point = [0u8; 32];
        not_a_point[0] = 2;
        assert!(!accepted(&text("fed", "", 1).replace(&key(1), &MemberId(not_a_point).to_string())));
    }

    #[test]
    fn members_are_found_by_key() {
        let m = Manifest::from_toml(&text("fed", "", 2)).expect("valid");
        let b: MemberId = key(2).parse().expect("hex");
        assert_eq!(m.member(&b).map(|i| i.name.as_str()), Some("b"));
        assert!(m.is_member(&b));
        let stranger: MemberId = key(9).parse().expect("hex");
        assert_eq!(m.member(&stranger), None);
        assert!(!m.is_member(&stranger));
    }

    #[test]
    fn digest_is_blake3_of_the_toml_form() {
        let one = Manifest::from_toml(&text("fed", "", 2)).expect("valid");
        let other = Manifest::from_toml(&text("fed", "", 3)).expect("valid");
        assert_eq!(one.digest(), *blake3::hash(one.to_toml().as_bytes()).as_bytes());
        assert_ne!(one.digest(), other.digest());
    }
}
