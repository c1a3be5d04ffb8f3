//! Hashers: from content to fingerprints. Pure functions, but for reading the file the caller
//! names and, for a video, running FFmpeg on it ([`video`]).

mod exact;
pub mod image;
pub mod pdq;
pub mod url;
pub mod video;

use hashmesh_protocol::Fingerprint;

pub use exact::ExactHasher;

/// A fingerprint computed from content, with its quality where the kind has one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Computed {
    /// The fingerprint.
    pub fingerprint: Fingerprint,
    /// Quality 0–100 (pdq).
    pub quality: Option<u8>,
    /// Set when the fingerprint must not be used for matching, saying why.
    pub skipped: Option<String>,
    /// Other forms of the same content to look up too: PDQ's 7 other dihedral variants
    /// (rotations and mirror images), so a flipped copy still matches.
    pub variants: Vec<Fingerprint>,
}

impl Computed {
    /// A fingerprint with no quality and no variants.
    pub fn plain(fingerprint: Fingerprint) -> Self {
        Self { fingerprint, quality: None, skipped: None, variants: Vec::new() }
    }
}

/// Everything computed from some content.
#[derive(Debug, Clone, Default)]
pub struct Hashed {
    /// The fingerprints.
    pub computed: Vec<Computed>,
    /// Set when the content looked like an image but could not be decoded.
    pub image_error: Option<String>,
    /// Set when the content looked like a video but no vPDQ fingerprint could be made.
    pub video_error: Option<String>,
}

/// Every fingerprint that can be computed from `bytes`. A video is written to a temporary file
/// for FFmpeg to read (MP4's index may sit at the end, past what a pipe can seek to).
pub fn fingerprint_bytes(bytes: &[u8], video: &video::VideoConfig) -> Hashed {
    let mut hasher = ExactHasher::default();
    hasher.update(bytes);
    let mut hashed =
        Hashed { computed: hasher.finish().into_iter().map(Computed::plain).collect(), ..Hashed::default() };
    add_image_kinds(bytes, &mut hashed);
    if video::looks_like_video(bytes) {
        let spooled = tempfile::Builder::new().prefix("hashmesh-video-").tempfile().and_then(|mut file| {
            std::io::Write::write_all(&mut file, bytes)?;
            Ok(file)
        });
        match spooled {
            Ok(file) => add_video_kind(file.path(), video, &mut hashed),
            Err(e) => {
                hashed.video_error = Some(format!(
                    "cannot write the video to a temporary file for FFmpeg ({e}); set TMPDIR to a writable folder"
                ));
            }
        }
    }
    hashed
}

/// Largest image file read into memory to be decoded.
pub const MAX_IMAGE_FILE_BYTES: usize = 64 * 1024 * 1024;

/// Every fingerprint of the file at `path`. Exact kinds are streamed, so any size is fine; an
/// image is also read whole to be decoded, up to [`MAX_IMAGE_FILE_BYTES`]; a video is decoded
/// by FFmpeg from the file.
pub fn fingerprint_file(path: &std::path::Path, video: &video::VideoConfig) -> std::io::Result<Hashed> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = ExactHasher::default();
    let mut buf = vec![0u8; 1 << 16];
    // `Some` while the file looks like an image small enough to decode.
    let mut image_bytes: Option<Vec<u8>> = None;
    let mut is_video = false;
    let mut first = true;
    let mut too_large = false;
    loop {
        let n = std::io::Read::read(&mut file, &mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        if first && image::looks_like_image(&buf[..n]) {
            image_bytes = Some(Vec::new());
        }
        if first {
            is_video = video::looks_like_video(&buf[..n]);
        }
        first = false;
        if let Some(bytes) = &mut image_bytes {
            if bytes.len() + n > MAX_IMAGE_FILE_BYTES {
                image_bytes = None;
                too_large = true;
            } else {
                bytes.extend_from_slice(&buf[..n]);
            }
        }
    }
    let mut hashed =
        Hashed { computed: hasher.finish().into_iter().map(Computed::plain).collect(), ..Hashed::default() };
    if too_large {
        hashed.image_error = Some(format!(
            "image file is larger than {} MiB; only exact kinds computed",
            MAX_IMAGE_FILE_BYTES >> 20
        ));
    }
    if let Some(bytes) = image_bytes {
        add_image_kinds(&bytes, &mut hashed);
    }
    if is_video {
        add_video_kind(path, video, &mut hashed);
    }
    Ok(hashed)
}

fn add_video_kind(path: &std::path::Path, config: &video::VideoConfig, hashed: &mut Hashed) {
    match video::hash(path, config) {
        Ok(frames) => hashed.computed.extend(video::fingerprint(&frames)),
        Err(e) => hashed.video_error = Some(e.to_string()),
    }
}

fn add_image_kinds(bytes: &[u8], hashed: &mut Hashed) {
    if !image::looks_like_image(bytes) {
        return;
    }
    match image::decode(bytes) {
        Ok(img) => hashed.computed.extend(image::fingerprints(&img)),
        Err(e) => hashed.image_error = Some(e.to_string()),
    }
}
