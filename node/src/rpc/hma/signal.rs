//! HMA's names for things, and ours: signal types and content types, banks, content ids. Pure
//! functions, so every mapping is unit-tested without a node.

use hashmesh_protocol::{FingerprintKind, RecordId};

use crate::hashers;
pub(super) use crate::signals::{SignalType, bank_category, bank_name};

/// HMA's content types that uploads name as their multipart field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ContentType {
    /// `photo`: hashed to `pdq`.
    Photo,
    /// `video`: hashed to `video_md5` and `video_sha256` (of the file bytes).
    Video,
}

impl ContentType {
    /// Both, as `GET /c/content_type` lists them.
    pub(super) const ALL: [Self; 2] = [Self::Photo, Self::Video];

    /// HMA's name.
    pub(super) fn name(self) -> &'static str {
        match self {
            Self::Photo => "photo",
            Self::Video => "video",
        }
    }

    /// The content type named `name`, or HMA's message.
    pub(super) fn parse(name: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|c| c.name() == name)
            .ok_or_else(|| format!("no such content_type: '{name}'"))
    }
}

/// What an upload hashes to, per signal type: `None` for a PDQ too low in quality to match
/// (HMA answers `""` for it), else the fingerprint with its variants.
pub(super) type UploadHashes = Vec<(SignalType, Option<hashers::Computed>)>;

/// Hashes an upload as HMA hashes its content type. CPU work: call from a blocking thread.
pub(super) fn hash_upload(content: ContentType, bytes: &[u8]) -> Result<UploadHashes, String> {
    match content {
        ContentType::Photo => {
            let img = hashers::image::decode(bytes).map_err(|e| format!("cannot hash the photo: {e}"))?;
            let pdq = hashers::image::fingerprints(&img)
                .into_iter()
                .find(|c| c.fingerprint.kind() == FingerprintKind::Pdq)
                .filter(|c| c.skipped.is_none());
            Ok(vec![(SignalType::Pdq, pdq)])
        }
        ContentType::Video => {
            let mut exact = hashers::ExactHasher::default();
            exact.update(bytes);
            let mut out: UploadHashes = exact
                .finish()
                .into_iter()
                .filter_map(|fp| Some((SignalType::of_kind(fp.kind())?, Some(hashers::Computed::plain(fp)))))
                .collect();
            out.sort_by_key(|(t, _)| *t);
            Ok(out)
        }
    }
}

/// Largest HMA content id we hand out, plus one: 2^53, so every id is exact in a JSON
/// number read as a double (JavaScript, and most JSON libraries by default).
const CONTENT_ID_LIMIT: u64 = 1 << 53;

/// The HMA content id of an entry: the first 53 bits of its 32-byte id. Stable on every node,
/// and ordered as entry ids are, so the entries of one content id are adjacent.
pub(super) fn content_id(entry: &RecordId) -> u64 {
    let mut first = [0u8; 8];
    first.copy_from_slice(&entry.0[..8]);
    u64::from_be_bytes(first) >> 11
}

/// The entry id just before every entry whose content id is `id` (a cursor for
/// `NodeHandle::entries`, which lists ids after it); `Ok(None)`: start from the first entry.
/// `Err`: `id` is too large to be a content id.
pub(super) fn cursor_before(id: u64) -> Result<Option<RecordId>, ()> {
    if id >= CONTENT_ID_LIMIT {
        return Err(());
    }
    let mut first = [0u8; 32];
    first[..8].copy_from_slice(&(id << 11).to_be_bytes());
    // Big-endian decrement; the all-zero id has no predecessor.
    for byte in first.iter_mut().rev() {
        if *byte > 0 {
            *byte -= 1;
            return Ok(Some(RecordId(first)));
        }
        *byte = 0xff;
    }
    Ok(None)
}

/// HMA's `include_distance` and other query booleans, read as pydantic reads them.
pub(super) fn parse_bool(name: &str, text: &str) -> Result<bool, String> {
    match text.to_ascii_lowercase().as_str() {
        "1" | "on" | "t" | "true" | "y" | "yes" => Ok(true),
        "0" | "off" | "f" | "false" | "n" | "no" => Ok(false),
        _ => Err(format!("{name}: input should be a valid boolean (true or false), not {text:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hashmesh_protocol::Category;

    #[test]
    fn signals_are_validated_as_python_threatexchange_does() {
        let pdq = "f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22";
        assert_eq!(
            SignalType::Pdq.fingerprint(pdq).map(|f| f.map(|f| f.to_string())),
            Ok(Some(format!("pdq:{pdq}")))
        );
        assert_eq!(
            SignalType::Pdq.fingerprint(&pdq.to_uppercase()),
            Err("invalid signal: invalid PDQ hash".into())
        );
        assert!(SignalType::Pdq.fingerprint(&pdq[1..]).is_err());
        let md5 =
            SignalType::VideoMd5.fingerprint(" D41D8CD98F00B204E9800998ECF8427E\n").expect("strip, lower");
        assert_eq!(md5.map(|f| f.to_string()), Some("md5:d41d8cd98f00b204e9800998ecf8427e".into()));
        assert!(
            SignalType::VideoMd5.fingerprint("d41d8").is_err_and(|e| e.contains("is not a valid MD5 hash"))
        );
        assert!(SignalType::VideoSha256.fingerprint("zz").is_err_and(|e| e.contains("SHA256")));
        assert_eq!(SignalType::Url.fingerprint(""), Err("invalid signal: empty hash".into()));
        assert_eq!(SignalType::Url.fingerprint("not a url"), Ok(None), "valid to HMA, matches nothing");
        assert_eq!(
            SignalType::Url.fingerprint("HTTPS://Example.com/a?utm_source=x").expect("valid"),
            hashers::url::fingerprint("https://example.com/a").ok()
        );
        assert!(SignalType::parse("url_md5").is_err_and(|e| e.starts_with("No such SignalType 'url_md5'")));
    }

    #[test]
    fn content_ids_are_53_bit_prefixes_and_the_cursor_lands_just_before_them() {
        let mut bytes = [0u8; 32];
        bytes[..8].copy_from_slice(&0x0123_4567_89ab_cdefu64.to_be_bytes());
        let id = content_id(&RecordId(bytes));
        assert_eq!(id, 0x0123_4567_89ab_cdef >> 11);
        assert!(id < CONTENT_ID_LIMIT);
        let cursor = cursor_before(id).expect("in range").expect("not the first id");
        assert!(cursor < RecordId(bytes));
        assert_ne!(content_id(&cursor), id, "the cursor is the last id of the content id before");
        let mut first = [0u8; 32];
        first[..8].copy_from_slice(&(id << 11).to_be_bytes());
        assert_eq!(content_id(&RecordId(first)), id);
        assert_eq!(cursor_before(0), Ok(None), "content id 0 starts at the first id");
        assert_eq!(content_id(&RecordId([0xff; 32])), CONTENT_ID_LIMIT - 1);
        assert!(cursor_before(CONTENT_ID_LIMIT).is_err());
    }

    #[test]
    fn banks_are_categories_in_upper_case() {
        let csam: Category = "harmful_behavior".parse().expect("category");
        assert_eq!(bank_name(&csam), "HARMFUL_BEHAVIOR");
        assert_eq!(bank_category("HARMFUL_BEHAVIOR"), Some(csam));
        assert_eq!(bank_category("NOT A BANK"), None);
        assert_eq!(parse_bool("include_distance", "True"), Ok(true));
        assert_eq!(parse_bool("include_distance", "0"), Ok(false));
        assert!(parse_bool("include_distance", "maybe").is_err());
    }

    #[test]
    fn a_video_upload_hashes_to_its_md5_and_sha256() {
        let hashes = hash_upload(ContentType::Video, b"abc").expect("any bytes");
        let text: Vec<(&str, String)> = hashes
            .iter()
            .map(|(t, c)| (t.name(), c.as_ref().map(|c| c.fingerprint.value_hex()).unwrap_or_default()))
            .collect();
        assert_eq!(
            text,
            vec![
                ("video_md5", "900150983cd24fb0d6963f7d28e17f72".to_owned()),
                (
                    "video_sha256",
                    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad".to_owned()
                ),
            ]
        );
        assert!(
            hash_upload(ContentType::Photo, b"abc").is_err_and(|e| e.starts_with("cannot hash the photo"))
        );
    }
}
