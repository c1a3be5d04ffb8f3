//! Content categories. Three are built in; a federation may add more in its manifest.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Longest category name.
pub const MAX_CATEGORY_LEN: usize = 32;

/// What kind of illegal content an entry fingerprints: a short lowercase name such as
/// `csam`. Any `[a-z0-9_]{1,32}` name is well formed; which names a federation accepts is
/// set by its manifest (`policy.categories`), so members can extend the list without a
/// protocol change.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub struct Category(String);

impl Category {
    /// Child sexual abuse material.
    pub const CSAM: &'static str = "csam";
    /// Illegal drug promotion.
    pub const DRUGS: &'static str = "drugs";
    /// Promotion of criminal or harmful behaviour.
    pub const HARMFUL_BEHAVIOR: &'static str = "harmful_behavior";
    /// The categories every federation accepts unless its manifest says otherwise.
    pub const BUILT_IN: [&'static str; 3] = [Self::CSAM, Self::DRUGS, Self::HARMFUL_BEHAVIOR];
    /// Known-benign content (a common meme, a logo whose perceptual hash collides): an
    /// allow-list entry. Every federation accepts it; once verified, it suppresses perceptual
    /// hits on the content it fingerprints, and a match on it asks for no action.
    pub const BENIGN: &'static str = "benign";

    /// The allow-list category.
    pub fn benign() -> Self {
        Self(Self::BENIGN.to_owned())
    }

    /// Whether this is the allow-list category.
    pub fn is_benign(&self) -> bool {
        self.0 == Self::BENIGN
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&self.0)
    }
}

impl fmt::Debug for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

/// A category name is not of the form `[a-z0-9_]{1,32}`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "category {0:?} is not a name of 1 to 32 characters from a-z, 0-9 and _ (built in: csam, drugs, harmful_behavior)"
)]
pub struct ParseCategoryError(pub String);

impl FromStr for Category {
    type Err = ParseCategoryError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let ok = !s.is_empty()
            && s.len() <= MAX_CATEGORY_LEN
            && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if ok { Ok(Self(s.to_owned())) } else { Err(ParseCategoryError(s.to_owned())) }
    }
}

impl From<Category> for String {
    fn from(c: Category) -> Self {
        c.0
    }
}

impl TryFrom<String> for Category {
    type Error = ParseCategoryError;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_1_to_32_of_lowercase_digits_and_underscore() {
        for ok in ["a", "csam", "x_1", "0", &"z".repeat(32)] {
            assert_eq!(ok.parse::<Category>().map(|c| c.as_str().to_owned()), Ok(ok.to_owned()), "{ok:?}");
        }
        for bad in ["", "Csam", "a-b", "a b", "é", &"z".repeat(33)] {
            assert_eq!(bad.parse::<Category>(), Err(ParseCategoryError(bad.to_owned())), "{bad:?}");
        }
    }

    #[test]
    fn text_forms_agree() {
        let c: Category = "drugs".parse().expect("valid");
        assert_eq!(c.to_string(), "drugs");
        assert_eq!(format!("[{c:<7}]"), "[drugs  ]", "padding applies, for tables");
        assert_eq!(format!("{c:?}"), "\"drugs\"");
        assert_eq!(String::from(c.clone()), "drugs");
        assert_eq!(Category::try_from("drugs".to_owned()), Ok(c));
    }
}
