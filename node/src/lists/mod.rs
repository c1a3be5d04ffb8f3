//! Hash lists in and out: the files trust & safety teams already hold, read a row at a time
//! so a file of any size streams through, and written back in the same formats so an import
//! of an export gives the same set.
//!
//! | format  | a row                                                          | category from        |
//! |---------|----------------------------------------------------------------|----------------------|
//! | `plain` | `kind:hex`, or bare hex with `--kind`                          | `--category`         |
//! | `csv`   | a header naming `hash` and any of `kind`, `category`, `link`, `note`, `expires` | its column or `--category` |
//! | `te`    | `<signal_type> <signal>`: python-threatexchange's local file   | `--category`         |
//! | `hma`   | CSV `signal_type,signal_str,collab,category,tags`              | the bank (`collab`)  |
//! | `jsonl` | one JSON object of our entry shape per line                    | its `category`       |
//!
//! HMA has no export of its own; the `hma` format is the CSV that python-threatexchange's
//! `threatexchange dataset --csv` writes for HMA banks, whose `collab` is the bank name
//! (`CSAM` → `csam`) and whose `NEGATIVE_CLASS` rows are known-benign (our `benign`
//! allow-list category). Signal types map to our kinds: `pdq` → `pdq`, `video_md5` (and
//! `md5`) → `md5`, `url` → `url` (the URL itself travels as the entry's link and its
//! normalised hash as the fingerprint).

mod read;
mod write;

use std::fmt;
use std::str::FromStr;

use hashmesh_protocol::{Category, FingerprintKind};

use crate::signals::SignalType;
use serde::{Deserialize, Serialize};

pub use read::{MAX_LINE_BYTES, Parsed, Row, RowError, rows};
pub use write::Writer;

/// A list format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// `kind:hex` per line (or bare hex with a default kind).
    Plain,
    /// CSV with a header of named columns.
    Csv,
    /// python-threatexchange's local file: `<signal_type> <signal>` per line.
    Te,
    /// The CSV of HMA bank content that `threatexchange dataset --csv` writes.
    Hma,
    /// JSON lines of our entry shape.
    Jsonl,
}

impl Format {
    /// Every format.
    pub const ALL: [Self; 5] = [Self::Plain, Self::Csv, Self::Te, Self::Hma, Self::Jsonl];

    /// The name used on the command line and in the RPC.
    pub fn name(self) -> &'static str {
        match self {
            Self::Plain => "plain",
            Self::Csv => "csv",
            Self::Te => "te",
            Self::Hma => "hma",
            Self::Jsonl => "jsonl",
        }
    }

    /// The HTTP content type of a file in this format.
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Csv | Self::Hma => "text/csv; charset=utf-8",
            Self::Jsonl => "application/x-ndjson",
            Self::Plain | Self::Te => "text/plain; charset=utf-8",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Format {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|f| f.name() == s)
            .ok_or_else(|| format!("unknown list format {s:?}; one of plain, csv, te, hma, jsonl"))
    }
}

/// What a row does not say for itself.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Defaults {
    /// The kind of bare hex values.
    pub kind: Option<FingerprintKind>,
    /// The category of rows that name none.
    pub category: Option<Category>,
}

/// The kind a python-threatexchange signal type names, if hashmesh holds it (`md5` and
/// `sha256` are taken too, for lists written by hand).
pub fn kind_of_signal_type(name: &str) -> Option<FingerprintKind> {
    match name {
        "md5" => Some(FingerprintKind::Md5),
        "sha256" => Some(FingerprintKind::Sha256),
        _ => SignalType::parse(name).ok().map(SignalType::kind),
    }
}

#[cfg(test)]
mod tests;
