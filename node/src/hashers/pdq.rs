//! PDQ perceptual image hash (Meta / ThreatExchange), in pure Rust.
//!
//! This is a line-by-line port of the reference C++ (`pdq/cpp/hashing/
//! pdqhashing.cpp`, `pdq/cpp/downscaling/downscaling.cpp`,
//! `pdq/cpp/hashing/torben.cpp`) as built into the `pdqhash` PyPI package,
//! and is bit-exact with `pdqhash.compute` / `pdqhash.compute_dihedral`.
//!
//! Pipeline: RGB → luminance → two passes of a Jarosz box filter per axis
//! (window ≈ 1/128 of the dimension) → decimate to 64×64 → quality score from
//! the 64×64 gradients → 16×16 corner of the 2D DCT → each bit is
//! "coefficient > median".
//!
//! Everything after the luminance step is done in `f32`, with the same
//! operation order as the C++, because PDQ bits are "coefficient > median"
//! and coefficients close to the median flip with any change in rounding;
//! doing the maths in `f64` (or reordering sums) would give hashes a few bits
//! away from every other PDQ implementation.
//!
//! The full pixel grid is hashed. Meta's `pdq-photo-hasher` CLI first squashes
//! images larger than 512 px to 512×512 (CImg nearest-neighbour); the
//! `pdqhash` Python binding does not, and neither does this module.

use image::DynamicImage;
use std::fmt;

/// Smallest width/height the reference hashes; smaller inputs get the
/// all-zero hash and quality 0 (as in the C++ `MIN_HASHABLE_DIM`).
const MIN_HASHABLE_DIM: usize = 5;

/// Box-filter passes per axis ("tent" filter after two passes).
const JAROSZ_PASSES: usize = 2;

/// A 256-bit PDQ hash.
///
/// Bytes are in the order of the reference hex string: `0[0]` holds bits
/// 255..248 of the hash, `0[31]` bits 7..0, where bit `16 * i + j` is DCT
/// coefficient (row `i`, column `j`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct PdqHash(pub [u8; 32]);

impl PdqHash {
    /// Lowercase 64-char hex, identical to the reference's
    /// `Hash256::format()` and ThreatExchange's PDQ signal strings.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Parses 64 hex chars (either case); `None` for anything else.
    pub fn from_hex(s: &str) -> Option<Self> {
        let mut out = [0u8; 32];
        hex::decode_to_slice(s, &mut out).ok()?;
        Some(Self(out))
    }

    /// Hamming distance (number of differing bits, 0..=256).
    pub fn distance(&self, other: &Self) -> u32 {
        self.0.iter().zip(other.0.iter()).map(|(a, b)| (a ^ b).count_ones()).sum()
    }

    /// Sets bit `k` (0..256) using the reference's `Hash256::setBit` layout,
    /// which is a big-endian 256-bit integer once formatted as hex.
    fn set_bit(&mut self, k: usize) {
        self.0[31 - k / 8] |= 1 << (k % 8);
    }
}

impl fmt::Display for PdqHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for PdqHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PdqHash({})", self.to_hex())
    }
}

/// A PDQ hash plus the reference's quality score.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PdqResult {
    /// The hash.
    pub hash: PdqHash,
    /// 0..=100; the PDQ paper suggests ignoring hashes below about 50
    /// (too flat / featureless to be discriminative).
    pub quality: u8,
}

/// Error for raw-buffer inputs whose length does not match `width * height`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BufferSizeError {
    /// Elements expected (`width * height`, times 3 for RGB).
    pub expected: usize,
    /// Elements given.
    pub actual: usize,
}

impl fmt::Display for BufferSizeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PDQ input buffer has {} elements, expected {}", self.actual, self.expected)
    }
}

impl std::error::Error for BufferSizeError {}

/// Hashes a row-major luminance image (`width * height` values, nominally
/// 0..=255). This is the reference's `pdqHash256FromFloatLuma`. Non-finite
/// values give a meaningless hash (but no panic and no hang).
pub fn hash_luma(width: u32, height: u32, luma: &[f32]) -> Result<PdqResult, BufferSizeError> {
    let (cols, rows) = dims(width, height, luma.len(), 1)?;
    Ok(hash_owned_luma(luma.to_vec(), rows, cols))
}

/// Hashes packed 8-bit RGB (`width * height * 3` bytes, row-major).
pub fn hash_rgb(width: u32, height: u32, rgb: &[u8]) -> Result<PdqResult, BufferSizeError> {
    let (cols, rows) = dims(width, height, rgb.len(), 3)?;
    Ok(hash_owned_luma(rgb_to_luma(rgb), rows, cols))
}

/// Hashes a decoded image; any pixel format is first converted to 8-bit RGB
/// with `to_rgb8` (alpha is dropped, not composited, as Pillow's
/// `convert("RGB")` does).
pub fn hash_image(img: &DynamicImage) -> PdqResult {
    let (luma, rows, cols) = image_luma(img);
    hash_owned_luma(luma, rows, cols)
}

/// The hashes of the 8 rotations/flips of a luminance image, computed from
/// one DCT (the reference's `pdqDihedralHash256esFromFloatLuma`).
///
/// Order (same as `pdqhash.compute_dihedral`): original, rotate 90°,
/// rotate 180°, rotate 270°, flip X, flip Y, flip about the main diagonal
/// (transpose), flip about the anti-diagonal. The quality is the same for all
/// 8 and is what [`hash_luma`] reports.
///
/// Like the reference, this always runs the blur, whereas the plain hash
/// skips it for an exact 64×64 input, so for 64×64 images `[0]` can differ
/// from [`hash_luma`] (the window-1 "blur" is not an exact identity in f32).
pub fn dihedral_luma(width: u32, height: u32, luma: &[f32]) -> Result<[PdqHash; 8], BufferSizeError> {
    let (cols, rows) = dims(width, height, luma.len(), 1)?;
    Ok(dihedral_owned_luma(luma.to_vec(), rows, cols))
}

/// [`dihedral_luma`] for packed 8-bit RGB (`width * height * 3` bytes).
pub fn dihedral_rgb(width: u32, height: u32, rgb: &[u8]) -> Result<[PdqHash; 8], BufferSizeError> {
    let (cols, rows) = dims(width, height, rgb.len(), 3)?;
    Ok(dihedral_owned_luma(rgb_to_luma(rgb), rows, cols))
}

/// [`dihedral_luma`] for a decoded image (converted as in [`hash_image`]).
pub fn dihedral(img: &DynamicImage) -> [PdqHash; 8] {
    let (luma, rows, cols) = image_luma(img);
    dihedral_owned_luma(luma, rows, cols)
}

/// Checks the buffer length; returns `(cols, rows)`.
fn dims(width: u32, height: u32, len: usize, channels: usize) -> Result<(usize, usize), BufferSizeError> {
    let (cols, rows) = (width as usize, height as usize);
    let expected = cols.checked_mul(rows).and_then(|n| n.checked_mul(channels));
    match expected {
        Some(expected) if expected == len => Ok((cols, rows)),
        _ => Err(BufferSizeError { expected: expected.unwrap_or(usize::MAX), actual: len }),
    }
}

/// Luminance of any image as `(luma, rows, cols)`, converting to 8-bit RGB
/// first unless it already is (saves a full copy for typical JPEGs).
fn image_luma(img: &DynamicImage) -> (Vec<f32>, usize, usize) {
    let (cols, rows) = (img.width() as usize, img.height() as usize);
    let luma = match img {
        DynamicImage::ImageRgb8(rgb) => rgb_to_luma(rgb.as_raw()),
        other => rgb_to_luma(other.to_rgb8().as_raw()),
    };
    (luma, rows, cols)
}

/// Luminance as the `pdqhash` binding computes it: numpy `uint8 * 0.299 + …`
/// evaluated in f64, then cast to f32. Meta's C++ CLI does this sum in f32
/// instead: at most 1 ulp apart per pixel, which leaves most hashes alone but
/// can move many bits on very smooth images (whose DCT has lots of
/// coefficients near the median). We match the binding, which is what the
/// fixtures come from; [`hash_luma`] accepts any other luma.
fn rgb_to_luma(rgb: &[u8]) -> Vec<f32> {
    rgb.chunks_exact(3)
        .map(|p| {
            let (r, g, b) = (f64::from(p[0]), f64::from(p[1]), f64::from(p[2]));
            (r * 0.299 + g * 0.587 + b * 0.114) as f32
        })
        .collect()
}

/// Luminance as Meta's C++ computes it: `0.299f * r + 0.587f * g + 0.114f * b`, all in `f32`,
/// left to right.
fn rgb_to_luma_f32(rgb: &[u8]) -> Vec<f32> {
    const R: f32 = 0.299;
    const G: f32 = 0.587;
    const B: f32 = 0.114;
    rgb.chunks_exact(3).map(|p| R * f32::from(p[0]) + G * f32::from(p[1]) + B * f32::from(p[2])).collect()
}

/// Blur + decimate to 64×64 (skipping the blur for exact 64×64 input when
/// `allow_shortcut`, as the reference's single-hash path does), then quality
/// and the 16×16 DCT.
fn float256(mut luma: Vec<f32>, rows: usize, cols: usize, allow_shortcut: bool) -> ([[f32; 16]; 16], u8) {
    let mut small = [[0f32; 64]; 64];
    if allow_shortcut && rows == 64 && cols == 64 {
        for (dst, src) in small.iter_mut().zip(luma.chunks_exact(64)) {
            dst.copy_from_slice(src);
        }
    } else {
        let mut scratch = vec![0f32; luma.len()];
        let win_along_rows = jarosz_window(cols);
        let win_along_cols = jarosz_window(rows);
        for _ in 0..JAROSZ_PASSES {
            for (src, dst) in luma.chunks_exact(cols).zip(scratch.chunks_exact_mut(cols)) {
                box_row(src, dst, win_along_rows);
            }
            box_cols(&scratch, &mut luma, cols, win_along_cols);
        }
        for (outi, row) in small.iter_mut().enumerate() {
            // Sample the centre of each output cell, computed in f64 like the C++.
            let ini = ((outi as f64 + 0.5) * rows as f64 / 64.0) as usize;
            for (outj, px) in row.iter_mut().enumerate() {
                let inj = ((outj as f64 + 0.5) * cols as f64 / 64.0) as usize;
                *px = luma[ini * cols + inj];
            }
        }
    }
    (dct_64_to_16(&small), quality(&small))
}

fn hash_owned_luma(luma: Vec<f32>, rows: usize, cols: usize) -> PdqResult {
    if rows < MIN_HASHABLE_DIM || cols < MIN_HASHABLE_DIM {
        return PdqResult { hash: PdqHash::default(), quality: 0 };
    }
    let (dct, quality) = float256(luma, rows, cols, true);
    PdqResult { hash: to_bits(&dct), quality }
}

fn dihedral_owned_luma(luma: Vec<f32>, rows: usize, cols: usize) -> [PdqHash; 8] {
    if rows < MIN_HASHABLE_DIM || cols < MIN_HASHABLE_DIM {
        return [PdqHash::default(); 8];
    }
    let (a, _) = float256(luma, rows, cols, false);
    dihedral_from_dct(&a)
}

/// The hash, quality and 8 dihedral hashes of a decoded image from one luminance pass and
/// one blur: what matching an upload needs. Equal to [`hash_image`] and [`dihedral`]
/// called separately.
pub fn hash_and_dihedral(img: &DynamicImage) -> (PdqResult, [PdqHash; 8]) {
    let (luma, rows, cols) = image_luma(img);
    hash_and_dihedral_owned(luma, rows, cols)
}

/// [`hash_and_dihedral`] for a video frame in packed 8-bit RGB, with the luminance summed in
/// `f32` as Meta's C++ (`fillFloatLumaFromRGB`) does, which is what vPDQ hashes frames with.
pub fn hash_and_dihedral_frame(
    width: u32,
    height: u32,
    rgb: &[u8],
) -> Result<(PdqResult, [PdqHash; 8]), BufferSizeError> {
    let (cols, rows) = dims(width, height, rgb.len(), 3)?;
    Ok(hash_and_dihedral_owned(rgb_to_luma_f32(rgb), rows, cols))
}

fn hash_and_dihedral_owned(luma: Vec<f32>, rows: usize, cols: usize) -> (PdqResult, [PdqHash; 8]) {
    if rows < MIN_HASHABLE_DIM || cols < MIN_HASHABLE_DIM {
        return (PdqResult { hash: PdqHash::default(), quality: 0 }, [PdqHash::default(); 8]);
    }
    if rows == 64 && cols == 64 {
        // The reference's single hash skips the blur for exactly 64×64; its dihedral path
        // does not, so the two differ here and are computed apart.
        return (hash_owned_luma(luma.clone(), rows, cols), dihedral_owned_luma(luma, rows, cols));
    }
    let (dct, quality) = float256(luma, rows, cols, false);
    let variants = dihedral_from_dct(&dct);
    (PdqResult { hash: variants[0], quality }, variants)
}

fn dihedral_from_dct(a: &[[f32; 16]; 16]) -> [PdqHash; 8] {
    // A spatial flip/rotation only flips signs of odd-frequency DCT
    // coefficients and/or transposes them, so no re-hashing is needed.
    // Each entry: (transpose?, sign(i, j) is negative?).
    type Negate = fn(usize, usize) -> bool;
    let variants: [(bool, Negate); 8] = [
        (false, |_, _| false),            // original
        (true, |_, j| j & 1 == 0),        // rotate 90
        (false, |i, j| (i + j) & 1 == 1), // rotate 180
        (true, |i, _| i & 1 == 0),        // rotate 270
        (false, |i, _| i & 1 == 0),       // flip x
        (false, |_, j| j & 1 == 0),       // flip y
        (true, |_, _| false),             // flip +1 (transpose)
        (true, |i, j| (i + j) & 1 == 1),  // flip -1 (anti-transpose)
    ];
    variants.map(|(transpose, negate)| {
        let mut b = [[0f32; 16]; 16];
        for (i, row) in a.iter().enumerate() {
            for (j, &v) in row.iter().enumerate() {
                let v = if negate(i, j) { -v } else { v };
                if transpose { b[j][i] = v } else { b[i][j] = v }
            }
        }
        to_bits(&b)
    })
}

/// Per-pass box window: half of 1/64 of the dimension, rounded up, since two
/// passes together should cover one 64×64 output cell.
fn jarosz_window(dim: usize) -> usize {
    dim.div_ceil(2 * 64)
}

/// Box-filter phase lengths for a centred running mean, exactly as the C++
/// `box1DFloat`: (warm-up adds, growing-window writes, full-window writes,
/// shrinking-window writes). `window <= len` always holds because the window
/// comes from `jarosz_window(len)` and `len >= MIN_HASHABLE_DIM`.
fn box_phases(len: usize, window: usize) -> [usize; 4] {
    let half = (window + 2) / 2;
    [half - 1, window - half + 1, len - window, half - 1]
}

/// Box filter along one contiguous row (`input` and `output` have equal
/// length). Keeps the reference's running f32 sum: its add/subtract rounding
/// drift is part of the reference output, so a "cleaner" mean would not be
/// bit-exact.
fn box_row(input: &[f32], output: &mut [f32], window: usize) {
    let [p1, p2, p3, p4] = box_phases(input.len(), window);
    let (mut li, mut ri, mut oi) = (0, 0, 0);
    let mut sum = 0f32;
    let mut count = 0u32;
    for _ in 0..p1 {
        sum += input[ri];
        count += 1;
        ri += 1;
    }
    for _ in 0..p2 {
        sum += input[ri];
        count += 1;
        output[oi] = sum / count as f32;
        ri += 1;
        oi += 1;
    }
    for _ in 0..p3 {
        sum += input[ri];
        sum -= input[li];
        output[oi] = sum / count as f32;
        li += 1;
        ri += 1;
        oi += 1;
    }
    for _ in 0..p4 {
        sum -= input[li];
        count -= 1;
        output[oi] = sum / count as f32;
        li += 1;
        oi += 1;
    }
}

/// Box filter down every column of a row-major `cols`-wide image. Performs,
/// per column, exactly the operations of [`box_row`] in the same order, but
/// walks the image row by row with one running sum per column: same bits as
/// the reference's strided column walk, without its cache misses.
fn box_cols(input: &[f32], output: &mut [f32], cols: usize, window: usize) {
    let rows = input.len() / cols;
    let [p1, p2, p3, p4] = box_phases(rows, window);
    let row = |i: usize| &input[i * cols..(i + 1) * cols];
    let (mut li, mut ri) = (0, 0);
    let mut out_rows = output.chunks_exact_mut(cols);
    let mut sums = vec![0f32; cols];
    let mut count = 0u32;
    let mut emit = |sums: &[f32], count: u32| {
        if let Some(out) = out_rows.next() {
            for (o, s) in out.iter_mut().zip(sums) {
                *o = s / count as f32;
            }
        }
    };
    for step in 0..p1 + p2 {
        for (s, x) in sums.iter_mut().zip(row(ri)) {
            *s += x;
        }
        count += 1;
        ri += 1;
        if step >= p1 {
            emit(&sums, count);
        }
    }
    for _ in 0..p3 {
        for ((s, x), y) in sums.iter_mut().zip(row(ri)).zip(row(li)) {
            *s += x;
            *s -= y;
        }
        emit(&sums, count);
        li += 1;
        ri += 1;
    }
    for _ in 0..p4 {
        for (s, y) in sums.iter_mut().zip(row(li)) {
            *s -= y;
        }
        count -= 1;
        emit(&sums, count);
        li += 1;
    }
}

/// Heuristic quality: sum of quantised neighbour differences / 90, capped at
/// 100 (the reference's `pdqImageDomainQualityMetric`, same f32 steps).
fn quality(a: &[[f32; 64]; 64]) -> u8 {
    // `as i32` saturates on infinities, so widen before `abs` and add saturating: a
    // degenerate input must give a low or capped quality, never an overflow.
    let step = |u: f32, v: f32| i64::from((((u - v) * 100.0) / 255.0) as i32).abs();
    let mut gradient_sum: i64 = 0;
    for (upper, lower) in a.iter().zip(&a[1..]) {
        for (&u, &v) in upper.iter().zip(lower) {
            gradient_sum = gradient_sum.saturating_add(step(u, v));
        }
    }
    for row in a {
        for pair in row.windows(2) {
            gradient_sum = gradient_sum.saturating_add(step(pair[0], pair[1]));
        }
    }
    (gradient_sum / 90).min(100) as u8
}

/// Rows 1..=16 of the 64-point DCT-II basis, as the reference builds it:
/// f32 scale times f64 cosine, rounded to f32.
fn dct_matrix() -> [[f32; 64]; 16] {
    let scale = (2.0f64 / 64.0).sqrt() as f32;
    let mut d = [[0f32; 64]; 16];
    for (i, row) in d.iter_mut().enumerate() {
        for (j, x) in row.iter_mut().enumerate() {
            let angle = (std::f64::consts::PI / 2.0 / 64.0) * (i + 1) as f64 * (2 * j + 1) as f64;
            *x = (f64::from(scale) * angle.cos()) as f32;
        }
    }
    d
}

/// B = D · A · Dᵀ, accumulating each dot product left to right in f32 like
/// the C++ (no FMA, no reassociation).
fn dct_64_to_16(a: &[[f32; 64]; 64]) -> [[f32; 16]; 16] {
    let d = dct_matrix();
    let mut t = [[0f32; 64]; 16];
    for (i, t_row) in t.iter_mut().enumerate() {
        for (j, t_ij) in t_row.iter_mut().enumerate() {
            *t_ij = (0..64).fold(0f32, |s, k| s + d[i][k] * a[k][j]);
        }
    }
    let mut b = [[0f32; 16]; 16];
    for (i, b_row) in b.iter_mut().enumerate() {
        for (j, b_ij) in b_row.iter_mut().enumerate() {
            *b_ij = (0..64).fold(0f32, |s, k| s + t[i][k] * d[j][k]);
        }
    }
    b
}

/// Bit `16 * i + j` is set iff coefficient (i, j) is strictly above the median.
fn to_bits(dct: &[[f32; 16]; 16]) -> PdqHash {
    let flat = dct.as_flattened();
    let median = torben_median(flat);
    let mut hash = PdqHash::default();
    for (k, &v) in flat.iter().enumerate() {
        if v > median {
            hash.set_bit(k);
        }
    }
    hash
}

/// Torben's median (as in the reference's `torben.cpp`). For an even count
/// it returns the lower middle value in the usual case, so it must be this
/// algorithm, not a sort-and-average median, to get the same bits.
fn torben_median(m: &[f32]) -> f32 {
    let n = m.len();
    let half = n.div_ceil(2);
    let (mut min, mut max) = (m[0], m[0]);
    for &v in &m[1..] {
        if v < min {
            min = v;
        }
        if v > max {
            max = v;
        }
    }
    loop {
        let guess = (min + max) / 2.0;
        let (mut less, mut greater, mut equal) = (0, 0, 0);
        let (mut max_lt, mut min_gt) = (min, max);
        for &v in m {
            if v < guess {
                less += 1;
                if v > max_lt {
                    max_lt = v;
                }
            } else if v > guess {
                greater += 1;
                if v < min_gt {
                    min_gt = v;
                }
            } else {
                equal += 1;
            }
        }
        if less <= half && greater <= half {
            return if less >= half {
                max_lt
            } else if less + equal >= half {
                guess
            } else {
                min_gt
            };
        }
        // Terminates: each step moves `max` below, or `min` above, at least
        // one of the 256 values (a NaN guess counts all as equal and exits).
        if less > greater {
            max = max_lt;
        } else {
            min = min_gt;
        }
    }
}

#[cfg(test)]
mod tests;
