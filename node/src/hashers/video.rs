//! vPDQ fingerprints of videos, from frames FFmpeg decodes.
//!
//! Meta's vPDQ (`vpdq/cpp/hashing/filehasher.cpp`) decodes the first video stream with libav,
//! keeps every `floor(frame rate)`-th frame the decoder returns (one a second), converts it to
//! RGB24 at the stream's size with libswscale (`SWS_AREA`, BT.601) and PDQ-hashes it, with the
//! luminance summed in `f32`; a frame's timestamp is its number over the frame rate.
//!
//! We do the same with the `ffprobe` and `ffmpeg` programs rather than linking libav: the
//! stream's size and average frame rate come from `ffprobe`, and `ffmpeg` hands back the chosen
//! frames as raw RGB24 through a pipe, with its scaler set as vPDQ sets libswscale (area
//! filter, BT.601 matrix, no auto-rotation, no frame dropped or repeated). A subprocess keeps a
//! hostile file's decoder bugs out of the node and can be bounded: it is killed at a deadline,
//! runs under an address-space limit (`prlimit`, where present) and with `-max_alloc`, and its
//! output is read one frame at a time up to [`vpdq::MAX_FRAMES`] frames of at most
//! [`MAX_FRAME_PIXELS`] pixels.
//!
//! A video stored with a vPDQ fingerprint keeps each distinct frame hash once, at its first
//! timestamp (the reference's `dedupe`), which is all matching reads.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use hashmesh_protocol::vpdq::{self, Frame};
use hashmesh_protocol::{Fingerprint, FingerprintKind};
use serde::{Deserialize, Serialize};

use super::{Computed, pdq};

/// Largest frame decoded, in pixels: 8K UHD (7680×4320) with room to spare.
pub const MAX_FRAME_PIXELS: u64 = 40_000_000;

/// How FFmpeg is run (`[video]` in the config file).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct VideoConfig {
    /// The `ffmpeg` program (a name on `PATH` or a path).
    pub ffmpeg: PathBuf,
    /// The `ffprobe` program.
    pub ffprobe: PathBuf,
    /// Longest time one video may take to hash, all frames included.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// Address space FFmpeg may use, in bytes.
    pub max_memory_bytes: u64,
}

impl Default for VideoConfig {
    fn default() -> Self {
        Self {
            ffmpeg: "ffmpeg".into(),
            ffprobe: "ffprobe".into(),
            timeout: Duration::from_secs(300),
            max_memory_bytes: 4 << 30,
        }
    }
}

/// A video could not be fingerprinted. Its exact fingerprints are still computed.
#[derive(Debug, thiserror::Error)]
pub enum VideoError {
    /// FFmpeg is not installed.
    #[error(
        "cannot run {}: {source}; install FFmpeg (Debian: apt-get install ffmpeg) or set video.ffmpeg and video.ffprobe",
        program.display()
    )]
    Missing {
        /// The program.
        program: PathBuf,
        /// Why it could not start.
        source: std::io::Error,
    },
    /// `ffprobe` found no video in the file.
    #[error("no video stream found: {0}")]
    NotVideo(String),
    /// Frames too large to decode here.
    #[error("frames of {width}×{height} are larger than the {MAX_FRAME_PIXELS} pixels hashed")]
    TooLarge {
        /// Width.
        width: u64,
        /// Height.
        height: u64,
    },
    /// More frames than a `vpdq` value holds.
    #[error(
        "the video runs past {} frames (six hours at one a second), the most a vpdq fingerprint holds",
        vpdq::MAX_FRAMES
    )]
    TooLong,
    /// The deadline passed.
    #[error("hashing the video took longer than video.timeout ({}); it was stopped", humantime::format_duration(*.0))]
    TimedOut(Duration),
    /// FFmpeg failed.
    #[error("ffmpeg could not decode the video: {0}")]
    Decode(String),
}

/// Whether `head` (the first bytes of a file) starts like a video container: MP4/MOV (an
/// `ftyp` box that is not an image's), Matroska/WebM, AVI, FLV, MPEG-TS/PS, ASF.
pub fn looks_like_video(head: &[u8]) -> bool {
    const IMAGE_BRANDS: [&[u8; 4]; 6] = [b"heic", b"heix", b"mif1", b"msf1", b"avif", b"avis"];
    let at = |offset: usize, magic: &[u8]| head.get(offset..offset + magic.len()) == Some(magic);
    (at(4, b"ftyp") && head.get(8..12).is_some_and(|brand| !IMAGE_BRANDS.iter().any(|b| b[..] == *brand)))
        || at(0, &[0x1a, 0x45, 0xdf, 0xa3])
        || (at(0, b"RIFF") && at(8, b"AVI "))
        || at(0, b"FLV\x01")
        || (at(0, &[0x47]) && at(188, &[0x47]))
        || at(0, &[0, 0, 1, 0xba])
        || at(0, &[0x30, 0x26, 0xb2, 0x75])
}

/// The frames vPDQ samples from the video at `path`, in order, each with its PDQ hash, quality
/// and timestamp, and the same frames' 7 other dihedral forms (rotations and mirror images).
pub struct Hashed {
    /// The frames, as the reference reports them.
    pub frames: Vec<Frame>,
    /// For each of the 7 other dihedral forms, the frames' hashes in that form.
    pub variants: [Vec<[u8; 32]>; 7],
}

/// Hashes the video at `path` as vPDQ does (one frame a second).
pub fn hash(path: &Path, config: &VideoConfig) -> Result<Hashed, VideoError> {
    let deadline = std::time::Instant::now() + config.timeout;
    let stream = probe(path, config)?;
    let (width, height) = (stream.width, stream.height);
    // vPDQ: `frameMod = (int)(secondsPerHash * frameRate)`, at least 1.
    let every = (stream.frame_rate as u64).max(1);
    let frame_bytes =
        usize::try_from(width * height * 3).map_err(|_| VideoError::TooLarge { width, height })?;

    let filter = format!(
        "select=not(mod(n\\,{every})),scale={width}:{height}:flags=area:in_color_matrix=bt601,format=rgb24"
    );
    let mut args: Vec<std::ffi::OsString> =
        ["-nostdin", "-hide_banner", "-loglevel", "error"].into_iter().map(Into::into).collect();
    args.extend(["-max_alloc".into(), (config.max_memory_bytes / 4).to_string().into()]);
    args.extend(["-noautorotate".into(), "-i".into(), path.as_os_str().to_owned()]);
    args.extend(
        ["-map", "0:v:0", "-an", "-sn", "-dn", "-fps_mode", "passthrough", "-vf", &filter]
            .into_iter()
            .map(Into::into),
    );
    args.extend(["-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:1"].into_iter().map(Into::into));
    let mut child = spawn(&config.ffmpeg, &args, config.max_memory_bytes)?;
    let mut stdout = child.stdout.take().ok_or_else(|| VideoError::Decode("no output pipe".into()))?;
    let stderr = child.stderr.take();
    let errors = std::thread::spawn(move || read_capped(stderr, 16 * 1024));
    let watchdog = Watchdog::start(child, deadline);

    let mut frames = Vec::new();
    let mut variants: [Vec<[u8; 32]>; 7] = Default::default();
    let mut buf = vec![0u8; frame_bytes];
    let result = loop {
        match read_frame(&mut stdout, &mut buf) {
            Ok(false) => break Ok(()),
            Ok(true) => {}
            Err(e) => break Err(VideoError::Decode(e.to_string())),
        }
        if frames.len() == vpdq::MAX_FRAMES {
            break Err(VideoError::TooLong);
        }
        let (Ok(w), Ok(h)) = (u32::try_from(width), u32::try_from(height)) else {
            break Err(VideoError::TooLarge { width, height });
        };
        let Ok((pdq, dihedral)) = pdq::hash_and_dihedral_frame(w, h, &buf) else {
            break Err(VideoError::Decode("a frame of the wrong size".into()));
        };
        let number = frames.len() as u64 * every;
        // vPDQ: `(float)frameNumber / framerate` with a float frame rate.
        let seconds = number as f32 / stream.frame_rate as f32;
        frames.push(Frame {
            hash: pdq.hash.0,
            quality: pdq.quality,
            timestamp_ms: (f64::from(seconds) * 1000.0).round() as u32,
        });
        for (list, hash) in variants.iter_mut().zip(&dihedral[1..]) {
            list.push(hash.0);
        }
    };
    drop(stdout);
    let (status, timed_out) = watchdog.finish();
    let stderr = errors.join().unwrap_or_default();
    if timed_out {
        return Err(VideoError::TimedOut(config.timeout));
    }
    result?;
    if !status.is_some_and(|s| s.success()) {
        return Err(VideoError::Decode(last_line(&stderr, "ffmpeg exited with an error")));
    }
    if frames.is_empty() {
        return Err(VideoError::Decode("no frame could be decoded".into()));
    }
    Ok(Hashed { frames, variants })
}

/// The video's `vpdq` fingerprint to store and match: repeated frames dropped; with the other
/// dihedral forms as variants, so a mirrored copy is found; skipped when no frame reaches
/// quality 50.
pub fn fingerprint(hashed: &Hashed) -> Option<Computed> {
    let fingerprint =
        Fingerprint::new(FingerprintKind::Vpdq, vpdq::encode(&vpdq::dedupe(hashed.frames.iter().copied())))
            .ok()?;
    let variants = hashed
        .variants
        .iter()
        .filter_map(|hashes| {
            let frames = hashed.frames.iter().zip(hashes).map(|(f, hash)| Frame { hash: *hash, ..*f });
            Fingerprint::new(FingerprintKind::Vpdq, vpdq::encode(&vpdq::dedupe(frames))).ok()
        })
        .collect();
    let comparable = vpdq::comparable(hashed.frames.iter().copied()).len();
    let skipped = (comparable == 0).then(|| {
        format!(
            "no frame of the video reaches PDQ quality {}: too little detail to match",
            vpdq::QUALITY_THRESHOLD
        )
    });
    Some(Computed { fingerprint, quality: None, skipped, variants })
}

/// What `ffprobe` says of the first video stream.
struct Stream {
    width: u64,
    height: u64,
    /// Average frame rate, or the base rate when that is unknown (as vPDQ falls back).
    frame_rate: f64,
}

fn probe(path: &Path, config: &VideoConfig) -> Result<Stream, VideoError> {
    let args: Vec<std::ffi::OsString> = vec![
        "-v".into(),
        "error".into(),
        "-select_streams".into(),
        "v:0".into(),
        "-show_entries".into(),
        "stream=width,height,avg_frame_rate,r_frame_rate".into(),
        "-of".into(),
        "default=noprint_wrappers=1".into(),
        path.as_os_str().to_owned(),
    ];
    let deadline = std::time::Instant::now() + config.timeout.min(Duration::from_secs(60));
    let mut child = spawn(&config.ffprobe, &args, config.max_memory_bytes)?;
    let (stdout, stderr) = (child.stdout.take(), child.stderr.take());
    let errors = std::thread::spawn(move || read_capped(stderr, 16 * 1024));
    let watchdog = Watchdog::start(child, deadline);
    let text = read_capped(stdout, 16 * 1024);
    let (status, timed_out) = watchdog.finish();
    let errors = errors.join().unwrap_or_default();
    if timed_out {
        return Err(VideoError::TimedOut(config.timeout));
    }
    if !status.is_some_and(|s| s.success()) {
        return Err(VideoError::NotVideo(last_line(&errors, "ffprobe could not read the file")));
    }
    let field = |name: &str| {
        text.lines().find_map(|line| line.strip_prefix(name).and_then(|rest| rest.strip_prefix('=')))
    };
    let number = |name: &str| field(name).and_then(|v| v.trim().parse::<u64>().ok()).filter(|&n| n > 0);
    let (Some(width), Some(height)) = (number("width"), number("height")) else {
        return Err(VideoError::NotVideo("the file has no video stream with a size".into()));
    };
    if width.saturating_mul(height) > MAX_FRAME_PIXELS {
        return Err(VideoError::TooLarge { width, height });
    }
    let frame_rate = field("avg_frame_rate")
        .and_then(rate)
        .or_else(|| field("r_frame_rate").and_then(rate))
        .ok_or_else(|| VideoError::NotVideo("the video stream has no frame rate".into()))?;
    Ok(Stream { width, height, frame_rate })
}

/// `num/den` as a number; `None` for `0/0`, `0/1` and the like.
fn rate(text: &str) -> Option<f64> {
    let (num, den) = text.trim().split_once('/')?;
    let (num, den): (u64, u64) = (num.parse().ok()?, den.parse().ok()?);
    (num > 0 && den > 0).then(|| num as f64 / den as f64)
}

/// Starts `program`, under `prlimit --as` when that tool is installed.
fn spawn(program: &Path, args: &[std::ffi::OsString], max_memory: u64) -> Result<Child, VideoError> {
    // Found first: under prlimit, a missing program would only show as prlimit's failure.
    let program = &find(program)?;
    let mut command = match prlimit() {
        Some(prlimit) => {
            let mut c = Command::new(prlimit);
            c.arg(format!("--as={max_memory}")).arg("--").arg(program);
            c
        }
        None => Command::new(program),
    };
    command.args(args).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let child =
        command.spawn().map_err(|source| VideoError::Missing { program: program.to_owned(), source })?;
    Ok(child)
}

/// `program` itself when it names a path, else the first match on `PATH`.
fn find(program: &Path) -> Result<PathBuf, VideoError> {
    let missing = |why: &str| VideoError::Missing {
        program: program.to_owned(),
        source: std::io::Error::new(std::io::ErrorKind::NotFound, why.to_owned()),
    };
    if program.components().count() > 1 {
        return if program.is_file() { Ok(program.to_owned()) } else { Err(missing("no such file")) };
    }
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
        .ok_or_else(|| missing("not found on PATH"))
}

/// `prlimit` (util-linux), if installed: it sets the child's address-space limit, which safe
/// Rust cannot do between fork and exec.
fn prlimit() -> Option<&'static Path> {
    static PRLIMIT: std::sync::OnceLock<Option<PathBuf>> = std::sync::OnceLock::new();
    PRLIMIT
        .get_or_init(|| {
            ["/usr/bin/prlimit", "/bin/prlimit"].into_iter().map(PathBuf::from).find(|p| p.is_file())
        })
        .as_deref()
}

/// Kills a child at its deadline unless it ended first.
struct Watchdog {
    done: mpsc::Sender<()>,
    thread: std::thread::JoinHandle<(Option<std::process::ExitStatus>, bool)>,
}

impl Watchdog {
    fn start(mut child: Child, deadline: std::time::Instant) -> Self {
        let (done, finished) = mpsc::channel();
        let thread = std::thread::spawn(move || {
            let wait = deadline.saturating_duration_since(std::time::Instant::now());
            let timed_out = matches!(finished.recv_timeout(wait), Err(mpsc::RecvTimeoutError::Timeout));
            if timed_out {
                let _ = child.kill();
            }
            (child.wait().ok(), timed_out)
        });
        Self { done, thread }
    }

    /// Waits for the child (killing it if the deadline passes first): its exit status, and
    /// whether it was killed for time.
    fn finish(self) -> (Option<std::process::ExitStatus>, bool) {
        let _ = self.done.send(());
        self.thread.join().unwrap_or((None, false))
    }
}

/// Fills `buf` with the next frame: `Ok(false)` at a clean end of the stream.
fn read_frame(from: &mut impl Read, buf: &mut [u8]) -> std::io::Result<bool> {
    let mut filled = 0;
    while filled < buf.len() {
        match from.read(&mut buf[filled..]) {
            Ok(0) if filled == 0 => return Ok(false),
            Ok(0) => return Err(std::io::Error::other("the output stopped inside a frame")),
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}

/// Up to `cap` bytes of a pipe as text; the rest is read and dropped so the child never blocks.
fn read_capped(pipe: Option<impl Read>, cap: usize) -> String {
    let Some(mut pipe) = pipe else { return String::new() };
    let mut kept = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(n) = pipe.read(&mut buf) {
        if n == 0 {
            break;
        }
        let room = cap.saturating_sub(kept.len());
        kept.extend_from_slice(&buf[..n.min(room)]);
    }
    String::from_utf8_lossy(&kept).into_owned()
}

fn last_line(text: &str, otherwise: &str) -> String {
    text.lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .map_or_else(|| otherwise.to_owned(), |l| l.trim().to_owned())
}

#[cfg(test)]
mod tests;
