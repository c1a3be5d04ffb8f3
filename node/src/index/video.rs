//! The video index: vPDQ fingerprints found through their frames.
//!
//! Every comparable frame (repeats dropped, quality ≥ 50: [`vpdq::comparable`]) of every
//! indexed video goes into one [`MihIndex`], under its own *frame number*; `frame_video` maps a
//! frame number to the video it belongs to. A query looks up each of its comparable frames
//! once. The answers say, exactly, which query frames have a near frame in which video and which
//! of that video's frames were near some query frame — the two counts of the reference's
//! brute-force matcher — so the percentages come out of the lookups themselves, for every video
//! that shares at least one frame with the query, and no frame is compared twice.
//!
//! That is the reference's result, not an approximation: a video that shares no frame within
//! the distance scores 0 % both ways and is left out, and policy never accepts a 0 % query
//! match (the manifest refuses a query threshold of 0).
//!
//! # Memory
//!
//! Per frame: the multi-index's 89 bytes (113 in its levels under 2^19 frames) and 4 bytes of
//! `frame_video`; per video 36 bytes (entry id, frame count) and a 32-byte digest of its value
//! in a set. The frame hashes are not kept a second time.

use std::collections::{HashMap, HashSet};

use hashmesh_protocol::RecordId;
use hashmesh_protocol::vpdq::{self, Score};

use super::mih::{Hash256, MihIndex};

/// Every indexed video's comparable frames.
#[derive(Default)]
pub struct VideoIndex {
    frames: MihIndex,
    /// Video of each frame number.
    frame_video: Vec<u32>,
    videos: Vec<Video>,
    /// BLAKE3 of each indexed value, to tell whether a fingerprint is held.
    values: HashSet<[u8; 32]>,
}

struct Video {
    entry: RecordId,
    /// Comparable frames: the denominator of the candidate percentage.
    frames: u32,
}

/// A video that shares frames with the query, and how much.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VideoHit {
    /// The entry holding the video's fingerprint.
    pub entry: RecordId,
    /// The percentages, as the reference's matcher computes them.
    pub score: Score,
}

impl VideoIndex {
    /// An empty index whose frames are indexed in one go by [`Self::loaded`]
    /// ([`MihIndex::loading`]).
    pub fn loading() -> Self {
        VideoIndex { frames: MihIndex::loading(), ..Self::default() }
    }

    /// Indexes the frames held back since [`Self::loading`].
    pub fn loaded(&mut self) {
        self.frames.loaded();
    }

    /// Indexes a video's frames (a `vpdq` value) under `entry`. A video with no comparable
    /// frame (all below quality 50) can never match and is not kept. `false` when the index
    /// is full (2³² frames).
    pub fn insert(&mut self, value: &[u8], entry: RecordId) -> bool {
        self.values.insert(*blake3::hash(value).as_bytes());
        let hashes = vpdq::comparable(vpdq::frames(value));
        let (Ok(count), Ok(slot)) = (u32::try_from(hashes.len()), u32::try_from(self.videos.len())) else {
            return false;
        };
        if count == 0 {
            return true;
        }
        if self.frame_video.len().saturating_add(hashes.len()) >= u32::MAX as usize {
            return false;
        }
        for hash in hashes {
            let frame = self.frame_video.len() as u32;
            self.frames.insert(hash, frame);
            self.frame_video.push(slot);
        }
        self.videos.push(Video { entry, frames: count });
        true
    }

    /// Every video with a frame within `max_distance` of a comparable frame of `query`, with
    /// its score. `query` is the list [`vpdq::comparable`] returns.
    pub fn query(&self, query: &[Hash256], max_distance: u32) -> Vec<VideoHit> {
        struct Tally {
            query_frames: u32,
            candidate_frames: Vec<u32>,
            min_distance: u32,
        }
        if query.is_empty() {
            return Vec::new();
        }
        let mut tallies: HashMap<u32, Tally> = HashMap::new();
        for hash in query {
            let mut counted: Vec<u32> = Vec::new();
            for (frame, distance) in self.frames.query(hash, max_distance) {
                let Some(&slot) = self.frame_video.get(frame as usize) else { continue };
                let tally = tallies.entry(slot).or_insert_with(|| Tally {
                    query_frames: 0,
                    candidate_frames: Vec::new(),
                    min_distance: u32::MAX,
                });
                if !counted.contains(&slot) {
                    counted.push(slot);
                    tally.query_frames += 1;
                }
                tally.candidate_frames.push(frame);
                tally.min_distance = tally.min_distance.min(distance);
            }
        }
        let mut hits: Vec<VideoHit> = tallies
            .into_iter()
            .filter_map(|(slot, mut tally)| {
                let video = self.videos.get(slot as usize)?;
                tally.candidate_frames.sort_unstable();
                tally.candidate_frames.dedup();
                Some(VideoHit {
                    entry: video.entry,
                    score: Score {
                        query_percent: vpdq::percent(tally.query_frames as usize, query.len()),
                        candidate_percent: vpdq::percent(tally.candidate_frames.len(), video.frames as usize),
                        min_distance: tally.min_distance,
                    },
                })
            })
            .collect();
        hits.sort_by_key(|h| h.entry);
        hits
    }

    /// Whether this very value (every frame alike) is indexed.
    pub fn contains(&self, value: &[u8]) -> bool {
        self.values.contains(blake3::hash(value).as_bytes())
    }

    /// Indexed frames.
    pub fn frames(&self) -> usize {
        self.frame_video.len()
    }

    /// Indexed videos.
    pub fn videos(&self) -> usize {
        self.videos.len()
    }

    /// Estimated heap bytes held by the index.
    pub fn memory_bytes(&self) -> usize {
        self.frames.memory_bytes()
            + self.frame_video.capacity() * std::mem::size_of::<u32>()
            + self.videos.capacity() * std::mem::size_of::<Video>()
    }
}

#[cfg(test)]
mod tests;
