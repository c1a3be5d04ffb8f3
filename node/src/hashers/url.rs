//! The `url` kind: blake3 of a normalised URL, so the same page written differently gets
//! the same fingerprint.
//!
//! Normalisation: parse (WHATWG rules, which lower-case scheme and host, drop default ports,
//! resolve `.`/`..` and normalise percent-encoding of unreserved characters); drop the
//! fragment; drop tracking parameters (`utm_*`, `fbclid`, `gclid`, `mc_eid`, `igshid`, `si`);
//! sort the remaining query parameters; drop an empty query. The fingerprint is
//! blake3 of the resulting string.

use hashmesh_protocol::{Fingerprint, FingerprintKind};

/// A link could not be fingerprinted.
#[derive(Debug, thiserror::Error)]
#[error("{url:?} is not an absolute URL: {reason}")]
pub struct UrlError {
    url: String,
    reason: String,
}

const TRACKING: [&str; 6] = ["fbclid", "gclid", "mc_eid", "igshid", "si", "ref_src"];

/// The normalised text form of `input`.
pub fn normalise(input: &str) -> Result<String, UrlError> {
    let mut url = url::Url::parse(input.trim())
        .map_err(|e| UrlError { url: input.to_owned(), reason: e.to_string() })?;
    url.set_fragment(None);
    let mut pairs: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(k, _)| !k.starts_with("utm_") && !TRACKING.contains(&k.as_ref()))
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    pairs.sort();
    if pairs.is_empty() {
        url.set_query(None);
    } else {
        url.query_pairs_mut().clear().extend_pairs(pairs);
    }
    Ok(url.to_string())
}

/// The `url:` fingerprint of a link.
pub fn fingerprint(input: &str) -> Result<Fingerprint, UrlError> {
    let text = normalise(input)?;
    Fingerprint::new(FingerprintKind::Url, blake3::hash(text.as_bytes()).as_bytes().to_vec())
        .map_err(|e| UrlError { url: input.to_owned(), reason: e.to_string() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equivalent_urls_share_a_fingerprint() {
        let a = fingerprint("HTTPS://Example.COM:443/a/./b?utm_source=x&b=2&a=1#frag").expect("valid");
        let b = fingerprint("https://example.com/a/b?a=1&b=2").expect("valid");
        assert_eq!(a, b);
        assert_eq!(normalise("http://example.com:80/?fbclid=1").expect("valid"), "http://example.com/");
        assert_ne!(a, fingerprint("https://example.com/a/c").expect("valid"));
        assert!(fingerprint("not a url").is_err());
    }
}
