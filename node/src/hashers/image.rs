//! Perceptual kinds from decoded images: PDQ (with its 8 dihedral variants) and two
//! image_hasher kinds with fixed parameters.
//!
//! Decoding is bounded: a decompression bomb or a truncated file is an error, never an OOM or
//! a panic.

use hashmesh_protocol::{Fingerprint, FingerprintKind};
use image::{DynamicImage, ImageReader, Limits};
use image_hasher::{HashAlg, HasherConfig};

use super::Computed;
use super::pdq;

/// Widest or tallest image decoded.
pub const MAX_SIDE: u32 = 16_384;
/// Most memory one decode may allocate: about 64 megapixels of RGB. Hashing then needs about
/// 8 more bytes per pixel, so one upload costs at most ~700 MiB, and the RPC runs at most
/// one hashing job per core.
pub const MAX_DECODE_BYTES: u64 = 192 * 1024 * 1024;
/// PDQ hashes below this quality are not matched, as the industry does.
pub const MIN_PDQ_QUALITY: u8 = 50;

/// Why an image could not be hashed.
#[derive(Debug, thiserror::Error)]
#[error("cannot decode image: {0}")]
pub struct DecodeImageError(String);

/// Whether the bytes look like an image format we decode (JPEG, PNG, GIF, WebP, BMP).
pub fn looks_like_image(bytes: &[u8]) -> bool {
    image::guess_format(bytes).is_ok_and(|f| {
        use image::ImageFormat::{Bmp, Gif, Jpeg, Png, WebP};
        matches!(f, Jpeg | Png | Gif | WebP | Bmp)
    })
}

/// Decodes an image (GIF: first frame) within the size limits.
pub fn decode(bytes: &[u8]) -> Result<DynamicImage, DecodeImageError> {
    let mut reader = ImageReader::new(std::io::Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| DecodeImageError(e.to_string()))?;
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(MAX_DECODE_BYTES);
    reader.limits(limits);
    reader.decode().map_err(|e| DecodeImageError(e.to_string()))
}

/// PDQ (quality-checked, with dihedral variants), dhash and phash of a decoded image.
pub fn fingerprints(img: &DynamicImage) -> Vec<Computed> {
    let mut out = Vec::with_capacity(3);
    let (pdq, variants) = pdq::hash_and_dihedral(img);
    let fp = |kind, bytes: &[u8]| Fingerprint::new(kind, bytes.to_vec()).ok();
    if let Some(fingerprint) = fp(FingerprintKind::Pdq, &pdq.hash.0) {
        let skipped = (pdq.quality < MIN_PDQ_QUALITY).then(|| {
            format!(
                "PDQ quality {} is below {MIN_PDQ_QUALITY}: too little detail to match reliably",
                pdq.quality
            )
        });
        let variants = variants.iter().skip(1).filter_map(|v| fp(FingerprintKind::Pdq, &v.0)).collect();
        out.push(Computed { fingerprint, quality: Some(pdq.quality), skipped, variants });
    }
    for (kind, alg) in
        [(FingerprintKind::Dhash, HashAlg::DoubleGradient), (FingerprintKind::Phash, HashAlg::Mean)]
    {
        if let Some(fingerprint) = fp(kind, image_hash(img, kind, alg).as_slice()) {
            out.push(Computed::plain(fingerprint));
        }
    }
    out
}

/// image_hasher with parameters pinned so the bytes are stable. `dhash`: double gradient at
/// hash size 16×16 (a 9×9 grid's row and column gradients, 144 bits). `phash`: mean of an
/// 8×8 DCT, 64 bits. Bits are in image_hasher's `as_bytes` order; the test below pins the
/// lengths, and a change of order in a new image_hasher would show as failing match tests.
fn image_hash(img: &DynamicImage, kind: FingerprintKind, alg: HashAlg) -> Vec<u8> {
    let mut config = HasherConfig::new().hash_alg(alg);
    config = match kind {
        FingerprintKind::Dhash => config.hash_size(16, 16),
        _ => config.hash_size(8, 8).preproc_dct(),
    };
    config.to_hasher().hash_image(img).as_bytes().to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Vec<u8> {
        std::fs::read(format!("{}/tests/fixtures/pdq/{name}", env!("CARGO_MANIFEST_DIR"))).expect("fixture")
    }

    #[test]
    fn photo_gets_every_perceptual_kind() {
        let img = decode(&fixture("coffee.png")).expect("decodes");
        let kinds: Vec<FingerprintKind> = fingerprints(&img).iter().map(|c| c.fingerprint.kind()).collect();
        assert_eq!(kinds, vec![FingerprintKind::Pdq, FingerprintKind::Dhash, FingerprintKind::Phash]);
        let pdq = &fingerprints(&img)[0];
        assert!(pdq.quality.is_some_and(|q| q >= MIN_PDQ_QUALITY));
        assert_eq!(pdq.variants.len(), 7);
    }

    #[test]
    fn image_hasher_lengths_are_pinned() {
        let img = decode(&fixture("coffee.png")).expect("decodes");
        for (kind, alg) in
            [(FingerprintKind::Dhash, HashAlg::DoubleGradient), (FingerprintKind::Phash, HashAlg::Mean)]
        {
            assert_eq!(Some(image_hash(&img, kind, alg).len()), kind.fixed_len(), "{kind}");
        }
    }

    /// The values, not just the lengths: a change of algorithm, grid size, resize filter or bit
    /// order in `image_hasher` changes every stored dhash and phash, and the federation's
    /// older entries would stop matching. The values are what this code (image_hasher 3)
    /// computed for the fixtures; a deliberate change of algorithm updates them.
    #[test]
    fn dhash_and_phash_values_are_pinned() {
        for (file, dhash, phash) in [
            ("coffee.png", "cf9792c6ccf0d8d06cefd94185a42113c4a2", "1d41000030100444"),
            // The same photo as a JPEG: the decoder's rounding does not reach these hashes.
            ("coffee_600x400.jpg", "cf9792c6ccf0d8d06cefd94185a42113c4a2", "1d41000030100444"),
            ("camera.png", "06593ceeb33ca6363763c9e03430b9131383", "690f030000203000"),
        ] {
            let img = decode(&fixture(file)).expect("decodes");
            let got: Vec<String> =
                fingerprints(&img)[1..].iter().map(|c| c.fingerprint.to_string()).collect();
            assert_eq!(got, vec![format!("dhash:{dhash}"), format!("phash:{phash}")], "{file}");
        }
    }

    #[test]
    fn flat_image_pdq_is_flagged_low_quality() {
        let img = DynamicImage::new_rgb8(128, 128);
        let pdq = &fingerprints(&img)[0];
        assert!(pdq.skipped.as_deref().is_some_and(|s| s.contains("quality")), "{pdq:?}");
    }

    #[test]
    fn truncated_and_garbage_images_are_errors() {
        let bytes = fixture("coffee_600x400.jpg");
        assert!(decode(&bytes[..100]).is_err(), "a JPEG cut inside its headers cannot decode");
        assert!(decode(b"\x89PNG\r\n\x1a\nnot really").is_err());
    }

    #[test]
    fn decompression_bomb_is_refused() {
        // A valid PNG header claiming 100000 x 100000 pixels.
        let mut png = Vec::new();
        let encoder = image::codecs::png::PngEncoder::new(&mut png);
        image::ImageEncoder::write_image(encoder, &[0u8; 3], 1, 1, image::ExtendedColorType::Rgb8)
            .expect("encode");
        // Patch the IHDR width/height (bytes 16..24) and fix its CRC.
        png[16..20].copy_from_slice(&100_000u32.to_be_bytes());
        png[20..24].copy_from_slice(&100_000u32.to_be_bytes());
        let crc = crc32(&png[12..29]);
        png[29..33].copy_from_slice(&crc.to_be_bytes());
        let err = decode(&png).expect_err("must refuse");
        assert!(err.to_string().contains("limit") || err.to_string().contains("Limit"), "{err}");
    }

    fn crc32(bytes: &[u8]) -> u32 {
        let mut crc = 0xffff_ffffu32;
        for b in bytes {
            crc ^= u32::from(*b);
            for _ in 0..8 {
                crc = if crc & 1 == 1 { (crc >> 1) ^ 0xedb8_8320 } else { crc >> 1 };
            }
        }
        !crc
    }
}
