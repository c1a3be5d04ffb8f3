//! The in-memory matching indexes: a multi-index hash for PDQ and a linear scan for the
//! small perceptual kinds. Exact kinds are a hash map in the replica's catalog.

pub mod mih;
mod perceptual;

pub use perceptual::PerceptualIndex;
