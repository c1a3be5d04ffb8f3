//! The canonical binary encoding of records.
//!
//! Fixed-width big-endian integers, length-prefixed strings and lists, one tag byte per enum,
//! and a version byte first. Every value has exactly one encoding, so the record id (a hash of
//! the bytes) is stable across nodes and versions. Decoding checks every limit before it
//! allocates, so a hostile peer cannot make a node allocate more than [`MAX_RECORD_SIZE`].
//!
//! ```text
//! record   = version:u8 author:[32] seq:u64 prev:[32] timestamp:u64 body signature:[64]
//! body     = 1 entry | 2 vote | 3 retract | 4 membership | 5 stats
//! entry    = n:u8 (kind:u8 len value)*n category:str8 n:u8 link:str16*n note:opt(str16) expires:opt(u64)
//! len      = u8, or u32 for vpdq (whose value is one 37-byte frame per sampled video frame)
//! vote     = entry:[32] verdict:u8 reason:opt(str16) reviewer:opt(str8)
//! retract  = entry:[32] reason:opt(str16)
//! membership = epoch:u64 changes:str16 (TOML of the proposed changes)
//! stats    = day:u32 n:u8 (category:str8 matches:u64 removals:u64)*n (categories ascending)
//! opt(x)   = 0 | 1 x
//! ```

use crate::{
    Body, Category, DailyCount, DecodeError, Entry, Fingerprint, FingerprintKind, MemberId, Membership,
    RecordId, Retract, Stats, UnsignedRecord, ValueLen, Verdict, Vote,
};

/// The encoding version this crate writes and reads.
pub const VERSION: u8 = 1;
/// Largest encoded record.
pub const MAX_RECORD_SIZE: usize = 1024 * 1024;
/// Most fingerprints in one entry.
pub const MAX_FINGERPRINTS: usize = 64;
/// Most links in one entry.
pub const MAX_LINKS: usize = 32;
/// Longest link.
pub const MAX_LINK_LEN: usize = 2 * 1024;
/// Longest note or reason.
pub const MAX_NOTE_LEN: usize = 4 * 1024;
/// Longest reviewer name.
pub const MAX_REVIEWER_LEN: usize = 128;
/// Longest change text in a membership record.
pub const MAX_CHANGES_LEN: usize = 48 * 1024;
/// Most categories in one stats record.
pub const MAX_STAT_CATEGORIES: usize = 64;

const SIGNATURE_LEN: usize = 64;

/// Encodes everything the signature covers.
pub(crate) fn encode_unsigned(r: &UnsignedRecord) -> Result<Vec<u8>, DecodeError> {
    let mut w = Writer(Vec::with_capacity(256));
    w.u8(VERSION);
    w.bytes(&r.author.0);
    w.u64(r.seq);
    w.bytes(&r.prev.0);
    w.u64(r.timestamp);
    write_body(&mut w, &r.body)?;
    if w.0.len() + SIGNATURE_LEN > MAX_RECORD_SIZE {
        return Err(DecodeError::TooLarge { size: w.0.len() + SIGNATURE_LEN, limit: MAX_RECORD_SIZE });
    }
    Ok(w.0)
}

/// Bytes of a record besides its body: version, author, seq, prev, timestamp, signature.
const FRAME_LEN: usize = 1 + 32 + 8 + 32 + 8 + SIGNATURE_LEN;

/// Checks that `body` breaks no encoding limit, so a record of it could be signed: how a bulk
/// import finds a bad row before it joins a batch (where it would fail the whole batch).
pub fn check_body(body: &Body) -> Result<(), DecodeError> {
    let mut w = Writer(Vec::with_capacity(256));
    write_body(&mut w, body)?;
    if FRAME_LEN + w.0.len() > MAX_RECORD_SIZE {
        return Err(DecodeError::TooLarge { size: FRAME_LEN + w.0.len(), limit: MAX_RECORD_SIZE });
    }
    Ok(())
}

fn write_body(w: &mut Writer, body: &Body) -> Result<(), DecodeError> {
    match body {
        Body::Entry(e) => {
            w.u8(1);
            w.list_len("fingerprints", e.fingerprints.len(), MAX_FINGERPRINTS)?;
            if e.fingerprints.is_empty() {
                return Err(invalid("fingerprints", "an entry needs at least one fingerprint"));
            }
            for fp in &e.fingerprints {
                w.u8(fp.kind().tag());
                // Fixed-length kinds keep the one-byte length they always had; a video's
                // frames need four.
                match fp.kind().value_len() {
                    ValueLen::Fixed(_) => w.u8(fp.value().len() as u8),
                    ValueLen::Frames => w.u32(fp.value().len() as u32),
                }
                w.bytes(fp.value());
            }
            w.str8("category", e.category.as_str(), crate::category::MAX_CATEGORY_LEN)?;
            w.list_len("links", e.links.len(), MAX_LINKS)?;
            for link in &e.links {
                w.str16("link", link, MAX_LINK_LEN)?;
            }
            w.opt_str16("note", e.note.as_deref(), MAX_NOTE_LEN)?;
            match e.expires_at {
                None => w.u8(0),
                Some(t) => {
                    w.u8(1);
                    w.u64(t);
                }
            }
        }
        Body::Vote(v) => {
            w.u8(2);
            w.bytes(&v.entry.0);
            w.u8(v.verdict.tag());
            w.opt_str16("reason", v.reason.as_deref(), MAX_NOTE_LEN)?;
            match &v.reviewer {
                None => w.u8(0),
                Some(name) => {
                    w.u8(1);
                    w.str8("reviewer", name, MAX_REVIEWER_LEN)?;
                }
            }
        }
        Body::Retract(r) => {
            w.u8(3);
            w.bytes(&r.entry.0);
            w.opt_str16("reason", r.reason.as_deref(), MAX_NOTE_LEN)?;
        }
        Body::Membership(m) => {
            w.u8(4);
            w.u64(m.epoch);
            w.str16("changes", &m.changes, MAX_CHANGES_LEN)?;
        }
        Body::Stats(st) => {
            w.u8(5);
            w.bytes(&st.day.to_be_bytes());
            w.list_len("counts", st.counts.len(), MAX_STAT_CATEGORIES)?;
            check_ascending(&st.counts)?;
            for c in &st.counts {
                w.str8("category", c.category.as_str(), crate::category::MAX_CATEGORY_LEN)?;
                w.u64(c.matches);
                w.u64(c.removals);
            }
        }
    }
    Ok(())
}

/// Each category once, in order: so a day's counters have one encoding, and no category is
/// counted twice.
fn check_ascending(counts: &[DailyCount]) -> Result<(), DecodeError> {
    if counts.windows(2).any(|w| w[0].category >= w[1].category) {
        return Err(invalid("counts", "categories must be in ascending order, each once"));
    }
    if counts.iter().any(|c| c.removals > c.matches) {
        return Err(invalid("counts", "removals cannot exceed matches"));
    }
    Ok(())
}

/// Decodes a signed record into its parts.
pub(crate) fn decode(bytes: &[u8]) -> Result<(UnsignedRecord, [u8; 64]), DecodeError> {
    if bytes.len() > MAX_RECORD_SIZE {
        return Err(DecodeError::TooLarge { size: bytes.len(), limit: MAX_RECORD_SIZE });
    }
    let mut r = Reader(bytes);
    let version = r.u8("version")?;
    if version != VERSION {
        return Err(DecodeError::UnknownVersion(version));
    }
    let author = MemberId(r.array("author")?);
    let seq = r.u64("seq")?;
    let prev = RecordId(r.array("prev")?);
    let timestamp = r.u64("timestamp")?;
    let body = match r.u8("body")? {
        1 => Body::Entry(decode_entry(&mut r)?),
        2 => Body::Vote(Vote {
            entry: RecordId(r.array("vote.entry")?),
            verdict: {
                let tag = r.u8("verdict")?;
                Verdict::from_tag(tag).ok_or(DecodeError::UnknownTag { field: "verdict", tag })?
            },
            reason: r.opt(|r| r.str16("reason", MAX_NOTE_LEN))?,
            reviewer: r.opt(|r| r.str8("reviewer", MAX_REVIEWER_LEN))?,
        }),
        3 => Body::Retract(Retract {
            entry: RecordId(r.array("retract.entry")?),
            reason: r.opt(|r| r.str16("reason", MAX_NOTE_LEN))?,
        }),
        4 => Body::Membership(Membership {
            epoch: r.u64("epoch")?,
            changes: r.str16("changes", MAX_CHANGES_LEN)?,
        }),
        5 => Body::Stats(decode_stats(&mut r)?),
        tag => return Err(DecodeError::UnknownTag { field: "body", tag }),
    };
    let signature: [u8; 64] = r.array("signature")?;
    if !r.0.is_empty() {
        return Err(DecodeError::TrailingBytes(r.0.len()));
    }
    Ok((UnsignedRecord { author, seq, prev, timestamp, body }, signature))
}

fn decode_entry(r: &mut Reader<'_>) -> Result<Entry, DecodeError> {
    let n = r.len8("fingerprints", MAX_FINGERPRINTS)?;
    if n == 0 {
        return Err(invalid("fingerprints", "an entry needs at least one fingerprint"));
    }
    let mut fingerprints = Vec::with_capacity(n);
    for _ in 0..n {
        let tag = r.u8("fingerprint.kind")?;
        let kind = FingerprintKind::from_tag(tag)
            .ok_or(DecodeError::UnknownTag { field: "fingerprint.kind", tag })?;
        let len = match kind.value_len() {
            ValueLen::Fixed(_) => usize::from(r.u8("fingerprint.len")?),
            ValueLen::Frames => r.u32("fingerprint.len")? as usize,
        };
        let value = r.take("fingerprint.value", len)?.to_vec();
        let fp = Fingerprint::new(kind, value).map_err(|e| invalid("fingerprint", &e.to_string()))?;
        fingerprints.push(fp);
    }
    let category = r.str8("category", crate::category::MAX_CATEGORY_LEN)?;
    let category: Category = category
        .parse()
        .map_err(|e: crate::category::ParseCategoryError| invalid("category", &e.to_string()))?;
    let n = r.len8("links", MAX_LINKS)?;
    let mut links = Vec::with_capacity(n);
    for _ in 0..n {
        links.push(r.str16("link", MAX_LINK_LEN)?);
    }
    let note = r.opt(|r| r.str16("note", MAX_NOTE_LEN))?;
    let expires_at = r.opt(|r| r.u64("expires_at"))?;
    Ok(Entry { fingerprints, category, links, note, expires_at })
}

fn decode_stats(r: &mut Reader<'_>) -> Result<Stats, DecodeError> {
    let day = u32::from_be_bytes(r.array("day")?);
    let n = r.len8("counts", MAX_STAT_CATEGORIES)?;
    let mut counts = Vec::with_capacity(n);
    for _ in 0..n {
        let category = r.str8("category", crate::category::MAX_CATEGORY_LEN)?;
        let category: Category = category
            .parse()
            .map_err(|e: crate::category::ParseCategoryError| invalid("category", &e.to_string()))?;
        counts.push(DailyCount { category, matches: r.u64("matches")?, removals: r.u64("removals")? });
    }
    check_ascending(&counts)?;
    Ok(Stats { day, counts })
}

fn invalid(field: &'static str, reason: &str) -> DecodeError {
    DecodeError::Invalid { field, reason: reason.to_owned() }
}

struct Writer(Vec<u8>);

impl Writer {
    fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_be_bytes());
    }
    fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_be_bytes());
    }
    fn bytes(&mut self, b: &[u8]) {
        self.0.extend_from_slice(b);
    }
    fn list_len(&mut self, field: &'static str, len: usize, limit: usize) -> Result<(), DecodeError> {
        if len > limit {
            return Err(DecodeError::LimitExceeded { field, len, limit });
        }
        self.u8(len as u8);
        Ok(())
    }
    fn str8(&mut self, field: &'static str, s: &str, limit: usize) -> Result<(), DecodeError> {
        if s.len() > limit.min(255) {
            return Err(DecodeError::LimitExceeded { field, len: s.len(), limit });
        }
        self.u8(s.len() as u8);
        self.bytes(s.as_bytes());
        Ok(())
    }
    fn str16(&mut self, field: &'static str, s: &str, limit: usize) -> Result<(), DecodeError> {
        if s.len() > limit.min(u16::MAX as usize) {
            return Err(DecodeError::LimitExceeded { field, len: s.len(), limit });
        }
        self.0.extend_from_slice(&(s.len() as u16).to_be_bytes());
        self.bytes(s.as_bytes());
        Ok(())
    }
    fn opt_str16(&mut self, field: &'static str, s: Option<&str>, limit: usize) -> Result<(), DecodeError> {
        match s {
            None => {
                self.u8(0);
                Ok(())
            }
            Some(s) => {
                self.u8(1);
                self.str16(field, s, limit)
            }
        }
    }
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, field: &'static str, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.0.len() < n {
            return Err(DecodeError::Truncated { field, needed: n - self.0.len() });
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Ok(head)
    }
    fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], DecodeError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(field, N)?);
        Ok(out)
    }
    fn u8(&mut self, field: &'static str) -> Result<u8, DecodeError> {
        Ok(self.take(field, 1)?[0])
    }
    fn u32(&mut self, field: &'static str) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(self.array(field)?))
    }
    fn u64(&mut self, field: &'static str) -> Result<u64, DecodeError> {
        Ok(u64::from_be_bytes(self.array(field)?))
    }
    fn len8(&mut self, field: &'static str, limit: usize) -> Result<usize, DecodeError> {
        let len = usize::from(self.u8(field)?);
        if len > limit {
            return Err(DecodeError::LimitExceeded { field, len, limit });
        }
        Ok(len)
    }
    fn utf8(&mut self, field: &'static str, len: usize, limit: usize) -> Result<String, DecodeError> {
        if len > limit {
            return Err(DecodeError::LimitExceeded { field, len, limit });
        }
        let raw = self.take(field, len)?;
        String::from_utf8(raw.to_vec()).map_err(|_| DecodeError::InvalidUtf8(field))
    }
    fn str8(&mut self, field: &'static str, limit: usize) -> Result<String, DecodeError> {
        let len = usize::from(self.u8(field)?);
        self.utf8(field, len, limit)
    }
    fn str16(&mut self, field: &'static str, limit: usize) -> Result<String, DecodeError> {
        let len = usize::from(u16::from_be_bytes(self.array(field)?));
        self.utf8(field, len, limit)
    }
    fn opt<T>(
        &mut self,
        read: impl FnOnce(&mut Self) -> Result<T, DecodeError>,
    ) -> Result<Option<T>, DecodeError> {
        match self.u8("option")? {
            0 => Ok(None),
            1 => read(self).map(Some),
            tag => Err(DecodeError::UnknownTag { field: "option", tag }),
        }
    }
}
