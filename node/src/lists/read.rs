//! Reading a list: a row at a time, each either an entry or the reason it is not one, with
//! its line number. A bad row never stops the reading; only the input failing does.

use std::io::{BufRead, BufReader, Read};

use hashmesh_protocol::{Body, Category, Entry, Fingerprint, FingerprintKind, codec};
use serde::Deserialize;

use super::{Defaults, Format, kind_of_signal_type};
use crate::hashers::url;
use crate::signals::bank_category;

/// Longest line read; a longer one is reported as bad and skipped.
pub const MAX_LINE_BYTES: usize = 256 * 1024;

/// A row that makes an entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    /// Its line in the file, from 1.
    pub line: u64,
    /// The entry it makes.
    pub entry: Entry,
}

/// A row that makes no entry, and why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, Deserialize, utoipa::ToSchema)]
pub struct RowError {
    /// Its line in the file, from 1.
    pub line: u64,
    /// What is wrong with it.
    pub reason: String,
}

/// One row: an entry, or why the row makes none.
pub type Row = Result<Parsed, RowError>;

/// The rows of `input`, read as `format`. Fails at once if the format needs something the
/// defaults do not give (a `plain` list names no category), or if a CSV has no usable header.
/// The iterator ends with an `Err` item if reading the input fails.
pub fn rows<'a>(
    format: Format,
    defaults: &Defaults,
    input: impl Read + 'a,
) -> Result<Box<dyn Iterator<Item = std::io::Result<Row>> + 'a>, String> {
    let defaults = defaults.clone();
    match format {
        Format::Plain | Format::Te => {
            if defaults.category.is_none() {
                return Err(format!(
                    "a {format} list names no category: give one (--category csam, or `category=` in the RPC query)"
                ));
            }
            let parse = if format == Format::Plain { plain_row } else { te_row };
            Ok(Box::new(Lines::new(input).filter_map(move |line| {
                let (n, text) = match line {
                    Err(e) => return Some(Err(e)),
                    Ok(numbered) => numbered,
                };
                let row = match text {
                    Err(reason) => Err(reason),
                    Ok(text) => parse(text.trim(), &defaults)?.and_then(checked),
                };
                Some(Ok(row
                    .map(|entry| Parsed { line: n, entry })
                    .map_err(|reason| RowError { line: n, reason })))
            })))
        }
        Format::Jsonl => Ok(Box::new(Lines::new(input).filter_map(move |line| {
            match line {
                Err(e) => Some(Err(e)),
                Ok((n, Err(reason))) => Some(Ok(Err(RowError { line: n, reason }))),
                Ok((_, Ok(text))) if text.trim().is_empty() => None,
                Ok((n, Ok(text))) => Some(Ok(json_row(&text, &defaults)
                    .and_then(checked)
                    .map(|entry| Parsed { line: n, entry })
                    .map_err(|reason| RowError { line: n, reason }))),
            }
        }))),
        Format::Csv | Format::Hma => {
            let mut reader =
                csv::ReaderBuilder::new().flexible(true).trim(csv::Trim::All).from_reader(Retry(input));
            let header = reader.headers().map_err(|e| format!("cannot read the CSV header row: {e}"))?;
            let columns = Columns::of(header, format)?;
            Ok(Box::new(reader.into_records().map(move |record| match record {
                Ok(record) => {
                    let line = record.position().map_or(0, csv::Position::line);
                    Ok(columns
                        .row(&record, &defaults)
                        .and_then(checked)
                        .map(|entry| Parsed { line, entry })
                        .map_err(|reason| RowError { line, reason }))
                }
                Err(e) => match e.kind() {
                    csv::ErrorKind::Io(_) => Err(std::io::Error::other(e.to_string())),
                    _ => {
                        let line = e.position().map_or(0, csv::Position::line);
                        Ok(Err(RowError { line, reason: e.to_string() }))
                    }
                },
            })))
        }
    }
}

/// An entry that can be signed: every encoding limit checked now, so a bad row is reported
/// alone instead of failing the batch it would join.
fn checked(entry: Entry) -> Result<Entry, String> {
    let body = Body::Entry(entry);
    codec::check_body(&body).map_err(|e| e.to_string())?;
    match body {
        Body::Entry(entry) => Ok(entry),
        _ => Err("not an entry".into()),
    }
}

fn entry(fingerprints: Vec<Fingerprint>, category: Category) -> Entry {
    Entry { fingerprints, category, links: Vec::new(), note: None, expires_at: None }
}

fn category(defaults: &Defaults) -> Result<Category, String> {
    defaults.category.clone().ok_or_else(|| "the row names no category and none was given".into())
}

/// `kind:hex`, or bare hex of the default kind.
fn fingerprint(text: &str, kind: Option<FingerprintKind>) -> Result<Fingerprint, String> {
    if text.contains(':') {
        return text
            .parse()
            .map_err(|e: hashmesh_protocol::fingerprint::ParseFingerprintError| e.to_string());
    }
    let kind = kind.ok_or_else(|| {
        format!("{text:?} is bare hex with no kind: write kind:hex, or give the kind (--kind pdq)")
    })?;
    format!("{kind}:{}", text.to_ascii_lowercase())
        .parse()
        .map_err(|e: hashmesh_protocol::fingerprint::ParseFingerprintError| e.to_string())
}

fn plain_row(text: &str, defaults: &Defaults) -> Option<Result<Entry, String>> {
    if text.is_empty() || text.starts_with('#') {
        return None;
    }
    Some(fingerprint(text, defaults.kind).and_then(|fp| Ok(entry(vec![fp], category(defaults)?))))
}

/// python-threatexchange's local file: the type, one space, the signal (its parser splits at
/// the first space and skips blank lines). A `#` line is skipped too, though it has no
/// comments: such a line could never be a signal.
fn te_row(text: &str, defaults: &Defaults) -> Option<Result<Entry, String>> {
    if text.is_empty() || text.starts_with('#') {
        return None;
    }
    let (kind, signal) = match (text.split_once(' '), defaults.kind) {
        (None, Some(kind)) => (kind, text),
        (Some((name, signal)), _) => match kind_of_signal_type(name) {
            Some(kind) => (kind, signal),
            None => {
                return Some(Err(format!(
                    "signal type {name:?} is not one hashmesh holds (pdq, video_md5, video_sha256, url)"
                )));
            }
        },
        (None, None) => {
            return Some(Err(format!("{text:?} is not `<signal_type> <signal>`")));
        }
    };
    Some(signal_entry(kind, signal, category(defaults)))
}

/// An entry of one python-threatexchange signal: a URL is fingerprinted and kept as the link.
fn signal_entry(
    kind: FingerprintKind,
    signal: &str,
    category: Result<Category, String>,
) -> Result<Entry, String> {
    let category = category?;
    if kind == FingerprintKind::Url {
        let fp = url::fingerprint(signal).map_err(|e| e.to_string())?;
        let mut e = entry(vec![fp], category);
        e.links.push(signal.trim().to_owned());
        return Ok(e);
    }
    Ok(entry(vec![fingerprint(signal, Some(kind))?], category))
}

/// A JSON line: our entry shape. Fields our export adds (`id`, `author`, `status`, …) are
/// ignored, so an export reads back.
#[derive(Deserialize)]
struct JsonRow {
    fingerprints: Vec<Fingerprint>,
    #[serde(default)]
    category: Option<Category>,
    #[serde(default)]
    links: Vec<String>,
    #[serde(default)]
    note: Option<String>,
    #[serde(default)]
    expires_at: Option<u64>,
}

fn json_row(text: &str, defaults: &Defaults) -> Result<Entry, String> {
    let row: JsonRow = serde_json::from_str(text).map_err(|e| format!("not an entry in JSON: {e}"))?;
    let category = match row.category {
        Some(c) => c,
        None => category(defaults)?,
    };
    Ok(Entry {
        fingerprints: row.fingerprints,
        category,
        links: row.links,
        note: row.note,
        expires_at: row.expires_at,
    })
}

/// Where each known column of a CSV sits.
struct Columns {
    format: Format,
    hash: usize,
    kind: Option<usize>,
    category: Option<usize>,
    link: Option<usize>,
    note: Option<usize>,
    expires: Option<usize>,
}

impl Columns {
    fn of(header: &csv::StringRecord, format: Format) -> Result<Self, String> {
        let find =
            |names: &[&str]| header.iter().position(|h| names.contains(&h.to_ascii_lowercase().as_str()));
        let named = header.iter().collect::<Vec<_>>().join(",");
        match format {
            Format::Hma => Ok(Self {
                format,
                hash: find(&["signal_str"]).ok_or_else(|| {
                    format!("an hma CSV has a header `signal_type,signal_str,collab,category,tags`; this one is `{named}`")
                })?,
                kind: Some(find(&["signal_type"]).ok_or("an hma CSV needs a `signal_type` column")?),
                category: find(&["collab"]),
                link: None,
                note: None,
                // The opinion category (POSITIVE_CLASS, NEGATIVE_CLASS, …).
                expires: find(&["category"]),
            }),
            _ => Ok(Self {
                format,
                hash: find(&["hash", "fingerprint"]).ok_or_else(|| {
                    format!(
                        "a CSV list needs a header row naming a `hash` column (and any of kind, category, link, note, expires); this one is `{named}`"
                    )
                })?,
                kind: find(&["kind"]),
                category: find(&["category"]),
                link: find(&["link", "links", "url"]),
                note: find(&["note"]),
                expires: find(&["expires", "expires_at"]),
            }),
        }
    }

    fn row(&self, record: &csv::StringRecord, defaults: &Defaults) -> Result<Entry, String> {
        let field = |i: Option<usize>| i.and_then(|i| record.get(i)).filter(|s| !s.is_empty());
        let hash = field(Some(self.hash)).ok_or("the hash column is empty")?;
        if self.format == Format::Hma {
            let name = field(self.kind).ok_or("the signal_type column is empty")?;
            let kind = kind_of_signal_type(name).ok_or_else(|| {
                format!("signal type {name:?} is not one hashmesh holds (pdq, video_md5, video_sha256, url)")
            })?;
            let category = match (field(self.expires), field(self.category)) {
                // A negative opinion: HMA's way to say the content is known benign.
                (Some("NEGATIVE_CLASS"), _) => Ok(benign()),
                (_, Some(bank)) => {
                    bank_category(bank).ok_or_else(|| format!("bank {bank:?} does not name a category"))
                }
                (_, None) => category(defaults),
            };
            return signal_entry(kind, hash, category);
        }
        let kind = match field(self.kind) {
            Some(name) => Some(name.parse::<FingerprintKind>().map_err(|e| e.to_string())?),
            None => defaults.kind,
        };
        let category = match field(self.category) {
            Some(name) => {
                name.parse().map_err(|e: hashmesh_protocol::category::ParseCategoryError| e.to_string())?
            }
            None => category(defaults)?,
        };
        let mut e = entry(vec![fingerprint(hash, kind)?], category);
        e.links =
            field(self.link).map(|l| l.split_whitespace().map(str::to_owned).collect()).unwrap_or_default();
        e.note = field(self.note).map(str::to_owned);
        e.expires_at = field(self.expires).map(parse_time).transpose()?;
        Ok(e)
    }
}

fn benign() -> Category {
    Category::benign()
}

/// Unix ms, or an RFC 3339 time (`2027-01-31T00:00:00Z`).
pub(super) fn parse_time(text: &str) -> Result<u64, String> {
    if let Ok(ms) = text.parse::<u64>() {
        return Ok(ms);
    }
    humantime::parse_rfc3339_weak(text)
        .map_err(|_| {
            format!("expires {text:?} is neither unix ms nor an RFC 3339 time (2027-01-31T00:00:00Z)")
        })
        .and_then(|t| {
            t.duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis() as u64)
                .map_err(|_| format!("expires {text:?} is before 1970"))
        })
}

/// Numbered lines of text; a line that is not UTF-8 or is too long is an `Err` with why.
struct Lines<R> {
    reader: BufReader<Retry<R>>,
    line: u64,
    buf: Vec<u8>,
}

impl<R: Read> Lines<R> {
    fn new(input: R) -> Self {
        Self { reader: BufReader::with_capacity(1 << 16, Retry(input)), line: 0, buf: Vec::new() }
    }
}

/// Retries a read a signal interrupted, which neither `csv` nor `BufReader::fill_buf` does.
struct Retry<R>(R);

impl<R: Read> Read for Retry<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        loop {
            match self.0.read(buf) {
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                done => return done,
            }
        }
    }
}

impl<R: Read> Iterator for Lines<R> {
    type Item = std::io::Result<(u64, Result<String, String>)>;

    fn next(&mut self) -> Option<Self::Item> {
        self.buf.clear();
        let mut too_long = false;
        loop {
            let available = match self.reader.fill_buf() {
                Ok(b) => b,
                Err(e) => return Some(Err(e)),
            };
            if available.is_empty() {
                if self.buf.is_empty() && !too_long {
                    return None;
                }
                break;
            }
            let (chunk, done) = match available.iter().position(|&b| b == b'\n') {
                Some(i) => (&available[..=i], true),
                None => (available, false),
            };
            let used = chunk.len();
            if self.buf.len() + used > MAX_LINE_BYTES {
                too_long = true;
            } else {
                self.buf.extend_from_slice(chunk);
            }
            self.reader.consume(used);
            if done {
                break;
            }
        }
        self.line += 1;
        if too_long {
            return Some(Ok((self.line, Err(format!("line is longer than {} KiB", MAX_LINE_BYTES >> 10)))));
        }
        let text = String::from_utf8(std::mem::take(&mut self.buf))
            .map(|s| s.trim_end_matches(['\n', '\r']).to_owned())
            .map_err(|_| "line is not UTF-8 text".to_owned());
        Some(Ok((self.line, text)))
    }
}
