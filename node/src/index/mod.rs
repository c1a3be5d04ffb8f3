//! Matching: the perceptual-hash index and the hashers that turn files into fingerprints.

mod perceptual;

pub use perceptual::PerceptualIndex;
