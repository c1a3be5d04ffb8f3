//! vPDQ video fingerprints: the value of a `vpdq` fingerprint, and how two are compared.
//!
//! Meta's vPDQ hashes a video as a list of frames, one about every second, each with its PDQ
//! hash, PDQ quality and timestamp. The value packs each frame in [`FRAME_LEN`] bytes — the 32
//! hash bytes in the reference's hex order, the quality, then the timestamp in milliseconds as
//! a big-endian `u32` — so a one-hour video is about 130 KB, against the reference's ~300 KB
//! of JSON text.
//!
//! Comparison is the reference's brute-force matcher (python-threatexchange's
//! `match_VPDQ_hash_brute`): drop repeated hashes (the first copy stays), drop frames below
//! quality [`QUALITY_THRESHOLD`], then the *query* percentage is the share of the query's
//! frames within the distance of some candidate frame, and the *candidate* percentage the
//! share of the candidate's frames within the distance of some query frame. Policy decides
//! which percentages make a match. It lives here, not in the node, because every node must
//! reach the same decision from the same two values.

use std::collections::HashSet;

/// Bytes one frame takes in a `vpdq` value: hash, quality, timestamp.
pub const FRAME_LEN: usize = 32 + 1 + 4;

/// Most frames in one `vpdq` value: six hours at the reference's one frame a second, before
/// repeated frames are dropped. 21,600 frames are 799,200 bytes, which fits a record.
pub const MAX_FRAMES: usize = 6 * 60 * 60;

// The longest value must fit a record, with room for the rest of the entry.
const _: () = assert!(MAX_FRAMES * FRAME_LEN + 64 * 1024 < crate::codec::MAX_RECORD_SIZE);

/// Frames below this PDQ quality are too flat to compare (the reference's
/// `VPDQ_QUALITY_THRESHOLD`).
pub const QUALITY_THRESHOLD: u8 = 50;

/// One hashed frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Frame {
    /// PDQ hash, bytes in the order of its hex form.
    pub hash: [u8; 32],
    /// PDQ quality, 0 to 100.
    pub quality: u8,
    /// Where the frame sits in the video, in milliseconds.
    pub timestamp_ms: u32,
}

/// A `vpdq` value is malformed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VpdqError {
    /// The length is not a whole number of frames.
    #[error("a vpdq value is a whole number of {FRAME_LEN}-byte frames; {0} bytes is not")]
    PartialFrame(usize),
    /// No frame at all.
    #[error("a vpdq value needs at least one frame")]
    Empty,
    /// More frames than [`MAX_FRAMES`].
    #[error("a vpdq value holds at most {MAX_FRAMES} frames; this one has {0}")]
    TooManyFrames(usize),
    /// A quality above 100.
    #[error("frame {index} of a vpdq value has quality {quality}; quality is 0 to 100")]
    BadQuality {
        /// The frame's index.
        index: usize,
        /// Its quality.
        quality: u8,
    },
}

/// Checks a packed value: whole frames, 1 to [`MAX_FRAMES`] of them, qualities 0 to 100.
pub fn validate(value: &[u8]) -> Result<(), VpdqError> {
    if !value.len().is_multiple_of(FRAME_LEN) {
        return Err(VpdqError::PartialFrame(value.len()));
    }
    let count = value.len() / FRAME_LEN;
    if count == 0 {
        return Err(VpdqError::Empty);
    }
    if count > MAX_FRAMES {
        return Err(VpdqError::TooManyFrames(count));
    }
    match frames(value).enumerate().find(|(_, f)| f.quality > 100) {
        Some((index, f)) => Err(VpdqError::BadQuality { index, quality: f.quality }),
        None => Ok(()),
    }
}

/// The frames of a packed value; a trailing partial frame is ignored (a value that passed
/// [`validate`] has none).
pub fn frames(value: &[u8]) -> impl Iterator<Item = Frame> + '_ {
    value.chunks_exact(FRAME_LEN).map(|chunk| {
        let (hash, rest) = chunk.split_at(32);
        let (quality, time) = rest.split_at(1);
        let mut h = [0u8; 32];
        h.copy_from_slice(hash);
        let mut t = [0u8; 4];
        t.copy_from_slice(time);
        Frame { hash: h, quality: quality[0], timestamp_ms: u32::from_be_bytes(t) }
    })
}

/// Packs frames into a value, in the order given.
pub fn encode(frames: &[Frame]) -> Vec<u8> {
    let mut out = Vec::with_capacity(frames.len() * FRAME_LEN);
    for f in frames {
        out.extend_from_slice(&f.hash);
        out.push(f.quality);
        out.extend_from_slice(&f.timestamp_ms.to_be_bytes());
    }
    out
}

/// The frames with repeated hashes dropped, the first copy kept (the reference's `dedupe`).
pub fn dedupe(frames: impl IntoIterator<Item = Frame>) -> Vec<Frame> {
    let mut seen = HashSet::new();
    frames.into_iter().filter(|f| seen.insert(f.hash)).collect()
}

/// The hashes that take part in matching: repeats dropped, then frames below
/// [`QUALITY_THRESHOLD`] (the reference's `quality_filter(dedupe(…))`).
pub fn comparable(frames: impl IntoIterator<Item = Frame>) -> Vec<[u8; 32]> {
    dedupe(frames).into_iter().filter(|f| f.quality >= QUALITY_THRESHOLD).map(|f| f.hash).collect()
}

/// How much of two videos match.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Score {
    /// Share of the query's comparable frames near some candidate frame, 0 to 100.
    pub query_percent: f64,
    /// Share of the candidate's comparable frames near some query frame, 0 to 100.
    pub candidate_percent: f64,
    /// The smallest distance between a query frame and a candidate frame.
    pub min_distance: u32,
}

/// Compares two lists of comparable hashes (see [`comparable`]) frame by frame; frames match
/// at a Hamming distance of at most `max_distance`. `None` when either list is empty, as no
/// percentage of nothing means anything.
pub fn score(query: &[[u8; 32]], candidate: &[[u8; 32]], max_distance: u32) -> Option<Score> {
    if query.is_empty() || candidate.is_empty() {
        return None;
    }
    let mut candidate_hit = vec![false; candidate.len()];
    let mut query_hits = 0usize;
    let mut min_distance = u32::MAX;
    for q in query {
        let mut hit = false;
        for (c, seen) in candidate.iter().zip(&mut candidate_hit) {
            let d = distance(q, c);
            min_distance = min_distance.min(d);
            if d <= max_distance {
                hit = true;
                *seen = true;
            }
        }
        query_hits += usize::from(hit);
    }
    let candidate_hits = candidate_hit.iter().filter(|&&h| h).count();
    Some(Score {
        query_percent: percent(query_hits, query.len()),
        candidate_percent: percent(candidate_hits, candidate.len()),
        min_distance,
    })
}

/// Hamming distance between two 256-bit hashes.
pub fn distance(a: &[u8; 32], b: &[u8; 32]) -> u32 {
    a.iter().zip(b).map(|(x, y)| (x ^ y).count_ones()).sum()
}

/// `count` of `of` in percent, computed as the reference does (`count * 100 / of` in floating
/// point), so a threshold of exactly 80 decides the same way at 4 frames of 5.
pub fn percent(count: usize, of: usize) -> f64 {
    count as f64 * 100.0 / of as f64
}

#[cfg(test)]
mod tests;
