//! Tests for the PDQ module against vectors produced by the reference
//! implementation (`pdqhash` PyPI package) with `make_pdq_fixtures.py`.
//! Fixtures live in `tests/fixtures/pdq/` of this crate.

use super::*;
use serde::Deserialize;

const FIXTURE_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/pdq/");

#[derive(Deserialize)]
struct Fixtures {
    images: Vec<Fixture>,
}

#[derive(Deserialize)]
struct Fixture {
    file: String,
    format: String,
    width: u32,
    height: u32,
    hash: String,
    quality: u8,
    dihedral: Vec<String>,
}

fn load_fixtures() -> Vec<Fixture> {
    let path = format!("{FIXTURE_DIR}pdq_fixtures.json");
    let text = std::fs::read_to_string(&path).expect("read pdq_fixtures.json");
    let fixtures: Fixtures = serde_json::from_str(&text).expect("parse pdq_fixtures.json");
    assert!(fixtures.images.len() >= 10, "too few fixtures");
    fixtures.images
}

fn parse(hex: &str) -> PdqHash {
    PdqHash::from_hex(hex).expect("fixture hash is 64 hex chars")
}

/// Hashes one fixture file; returns (hash, quality, dihedral) after checking
/// that the decoded size matches what the reference saw.
fn hash_fixture(f: &Fixture) -> (PdqResult, [PdqHash; 8]) {
    let img = image::open(format!("{FIXTURE_DIR}{}", f.file)).expect("decode fixture image");
    assert_eq!((img.width(), img.height()), (f.width, f.height), "{}: size", f.file);
    (hash_image(&img), dihedral(&img))
}

#[test]
fn png_fixtures_match_reference_exactly() {
    let mut checked = 0;
    for f in load_fixtures().iter().filter(|f| f.format == "png") {
        let (got, variants) = hash_fixture(f);
        assert_eq!(got.hash.to_hex(), f.hash, "{}: hash", f.file);
        assert_eq!(got.hash.distance(&parse(&f.hash)), 0, "{}: distance", f.file);
        assert_eq!(got.quality, f.quality, "{}: quality", f.file);
        assert_eq!(f.dihedral.len(), 8, "{}: fixture dihedral count", f.file);
        for (k, (ours, theirs)) in variants.iter().zip(&f.dihedral).enumerate() {
            assert_eq!(&ours.to_hex(), theirs, "{}: dihedral variant {k}", f.file);
        }
        checked += 1;
    }
    assert!(checked >= 10, "only {checked} PNG fixtures");
}

/// JPEG decoders (libjpeg-turbo in Pillow vs the `image` crate's) may differ
/// by ±1 per pixel, so allow a couple of bits.
#[test]
fn jpeg_fixture_close_to_reference() {
    let mut checked = 0;
    for f in load_fixtures().iter().filter(|f| f.format == "jpeg") {
        let (got, variants) = hash_fixture(f);
        let d = got.hash.distance(&parse(&f.hash));
        assert!(d <= 2, "{}: distance {d} to reference", f.file);
        assert!(got.quality.abs_diff(f.quality) <= 2, "{}: quality", f.file);
        for (k, (ours, theirs)) in variants.iter().zip(&f.dihedral).enumerate() {
            let d = ours.distance(&parse(theirs));
            assert!(d <= 2, "{}: dihedral variant {k} distance {d}", f.file);
        }
        checked += 1;
    }
    assert!(checked >= 1, "no JPEG fixture");
}

#[test]
fn tiny_and_degenerate_images_do_not_panic() {
    for (w, h) in [
        (0, 0),
        (1, 1),
        (0, 7),
        (4, 4),
        (4, 100),
        (100, 4),
        (5, 5),
        (10, 7),
        (17, 9),
        (1, 1000),
        (64, 64),
        (65, 63),
    ] {
        let rgb: Vec<u8> = (0..w * h * 3).map(|i| (i * 37 % 251) as u8).collect();
        let r = hash_rgb(w, h, &rgb).expect("sized buffer");
        let v = dihedral_rgb(w, h, &rgb).expect("sized buffer");
        if w < 5 || h < 5 {
            // Reference behaviour below MIN_HASHABLE_DIM.
            assert_eq!(r, PdqResult { hash: PdqHash::default(), quality: 0 });
            assert_eq!(v, [PdqHash::default(); 8]);
        }
        let img = image::RgbImage::from_raw(w, h, rgb).expect("sized buffer");
        assert_eq!(hash_image(&DynamicImage::ImageRgb8(img)), r);
    }
    let flat = hash_rgb(32, 32, &[200; 32 * 32 * 3]).expect("sized buffer");
    assert_eq!(flat.quality, 0);
    // Non-finite luma must terminate (Torben's loop) and not panic.
    for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
        let mut luma: Vec<f32> = (0..30 * 20).map(|i| (i % 256) as f32).collect();
        luma[17] = bad;
        luma[400] = -bad;
        assert!(hash_luma(30, 20, &luma).is_ok());
        assert!(dihedral_luma(30, 20, &luma).is_ok());
    }
}

#[test]
fn wrong_buffer_size_is_an_error() {
    assert_eq!(hash_rgb(2, 2, &[0; 11]), Err(BufferSizeError { expected: 12, actual: 11 }));
    assert!(hash_luma(u32::MAX, u32::MAX, &[]).is_err());
    assert!(dihedral_luma(3, 3, &[0.0; 8]).is_err());
}

#[test]
fn hex_round_trip_and_distance() {
    let hex = "f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22";
    let h = PdqHash::from_hex(hex).expect("valid hex");
    assert_eq!(h.to_hex(), hex);
    assert_eq!(PdqHash::from_hex(&hex.to_uppercase()), Some(h));
    assert_eq!(PdqHash::from_hex(&hex[1..]), None);
    assert_eq!(PdqHash::from_hex("zz"), None);
    assert_eq!(h.distance(&h), 0);
    let zero = PdqHash::default();
    let ones = PdqHash([0xff; 32]);
    assert_eq!(zero.distance(&ones), 256);
    // Bit 0 is the last hex digit's low bit, as in the reference format.
    let mut one = PdqHash::default();
    one.set_bit(0);
    assert!(one.to_hex().ends_with("0001"));
    one.set_bit(255);
    assert!(one.to_hex().starts_with('8'));
}

#[test]
fn luma_and_rgb_entry_points_agree() {
    let (w, h) = (40u32, 30u32);
    let grey: Vec<u8> = (0..w * h).map(|i| (i * 7 % 256) as u8).collect();
    let rgb: Vec<u8> = grey.iter().flat_map(|&g| [g, g, g]).collect();
    let luma = rgb_to_luma(&rgb);
    assert_eq!(hash_luma(w, h, &luma), hash_rgb(w, h, &rgb));
    assert_eq!(dihedral_luma(w, h, &luma), dihedral_rgb(w, h, &rgb));
}

#[test]
fn one_pass_equals_separate_calls() {
    for f in load_fixtures() {
        let bytes = std::fs::read(format!("{FIXTURE_DIR}{}", f.file)).expect("read fixture");
        let img = image::load_from_memory(&bytes).expect("decode fixture");
        let (single, variants) = hash_and_dihedral(&img);
        assert_eq!(single, hash_image(&img), "{}", f.file);
        assert_eq!(variants, dihedral(&img), "{}", f.file);
    }
}
