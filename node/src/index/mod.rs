//! The in-memory matching indexes: a multi-index hash for PDQ, one over video frames for
//! vPDQ, and a linear scan for the small perceptual kinds. Exact kinds are a hash map in the replica's catalog.

pub mod mih;
mod perceptual;
pub mod video;

pub use perceptual::PerceptualIndex;
pub use video::{VideoHit, VideoIndex};
