//! Writing a list: entries out in any format the reader takes back.

use std::io::Write;

use hashmesh_protocol::{Entry, Fingerprint, FingerprintKind, MemberId, RecordId, Status};
use serde::Serialize;

use super::Format;
use crate::hashers::url;
use crate::signals::{SignalType, bank_name};

/// Writes entries as one format; fingerprints the format cannot hold are counted, not written.
pub struct Writer<W: Write> {
    format: Format,
    kind: Option<FingerprintKind>,
    out: Out<W>,
    /// Fingerprints written.
    pub written: u64,
    /// Fingerprints left out because the format has no way to write them (a `url` hash
    /// without its link, a kind python-threatexchange does not know).
    pub unwritable: u64,
}

enum Out<W: Write> {
    Lines(W),
    Csv(Box<csv::Writer<W>>),
}

/// One entry row of a JSON lines export: our entry shape, with where it stands.
#[derive(Serialize)]
struct JsonRow<'a> {
    id: RecordId,
    author: MemberId,
    status: Status,
    fingerprints: Vec<&'a Fingerprint>,
    category: &'a hashmesh_protocol::Category,
    links: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    note: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    expires_at: Option<u64>,
}

impl<W: Write> Writer<W> {
    /// A writer of `format` (only fingerprints of `kind`, if given); CSV formats write their
    /// header at once, so even an empty export reads back.
    pub fn new(format: Format, kind: Option<FingerprintKind>, out: W) -> std::io::Result<Self> {
        let out = match format {
            Format::Plain | Format::Te | Format::Jsonl => Out::Lines(out),
            Format::Csv | Format::Hma => {
                let mut csv = csv::Writer::from_writer(out);
                let header: &[&str] = if format == Format::Csv {
                    &["hash", "kind", "category", "link", "note", "expires"]
                } else {
                    &["signal_type", "signal_str", "collab", "category", "tags"]
                };
                csv.write_record(header)?;
                Out::Csv(Box::new(csv))
            }
        };
        Ok(Self { format, kind, out, written: 0, unwritable: 0 })
    }

    /// Writes one entry: a row per fingerprint, or one JSON line.
    pub fn entry(
        &mut self,
        id: RecordId,
        author: MemberId,
        status: Status,
        entry: &Entry,
    ) -> std::io::Result<()> {
        let fingerprints: Vec<&Fingerprint> =
            entry.fingerprints.iter().filter(|fp| self.kind.is_none_or(|k| fp.kind() == k)).collect();
        if fingerprints.is_empty() {
            return Ok(());
        }
        match (&mut self.out, self.format) {
            (Out::Lines(out), Format::Jsonl) => {
                let row = JsonRow {
                    id,
                    author,
                    status,
                    fingerprints,
                    category: &entry.category,
                    links: &entry.links,
                    note: entry.note.as_deref(),
                    expires_at: entry.expires_at,
                };
                serde_json::to_writer(&mut *out, &row)?;
                out.write_all(b"\n")?;
                self.written += row.fingerprints.len() as u64;
            }
            (Out::Lines(out), Format::Plain) => {
                for fp in fingerprints {
                    writeln!(out, "{fp}")?;
                    self.written += 1;
                }
            }
            (Out::Lines(out), _) => {
                for fp in fingerprints {
                    match signal(fp, entry) {
                        Some((name, signal)) => {
                            writeln!(out, "{name} {signal}")?;
                            self.written += 1;
                        }
                        None => self.unwritable += 1,
                    }
                }
            }
            (Out::Csv(csv), Format::Csv) => {
                let links = entry.links.join(" ");
                let expires = entry.expires_at.map(|t| t.to_string()).unwrap_or_default();
                for fp in fingerprints {
                    let hash = hex::encode(fp.value());
                    csv.write_record([
                        hash.as_str(),
                        fp.kind().name(),
                        entry.category.as_str(),
                        &links,
                        entry.note.as_deref().unwrap_or(""),
                        &expires,
                    ])?;
                    self.written += 1;
                }
            }
            (Out::Csv(csv), _) => {
                let collab = bank_name(&entry.category);
                let opinion = match status {
                    _ if entry.category.is_benign() => "NEGATIVE_CLASS",
                    Status::Verified => "POSITIVE_CLASS",
                    _ => "INVESTIGATION_SEED",
                };
                for fp in fingerprints {
                    match signal(fp, entry) {
                        Some((name, signal)) => {
                            csv.write_record([name, signal.as_str(), &collab, opinion, status.name()])?;
                            self.written += 1;
                        }
                        None => self.unwritable += 1,
                    }
                }
            }
        }
        Ok(())
    }

    /// Flushes what is buffered and hands back the output.
    pub fn finish(self) -> std::io::Result<W> {
        match self.out {
            Out::Lines(mut out) => {
                out.flush()?;
                Ok(out)
            }
            Out::Csv(csv) => (*csv).into_inner().map_err(|e| std::io::Error::other(e.to_string())),
        }
    }
}

/// python-threatexchange's signal type and signal for a fingerprint: hex for hashes, and for
/// a `url` hash the entry's link that hashes to it (the hash alone cannot be turned back).
fn signal(fp: &Fingerprint, entry: &Entry) -> Option<(&'static str, String)> {
    let name = SignalType::of_kind(fp.kind())?.name();
    if fp.kind() == FingerprintKind::Url {
        let link = entry.links.iter().find(|l| url::fingerprint(l).is_ok_and(|f| &f == fp))?;
        return Some((name, link.clone()));
    }
    Some((name, hex::encode(fp.value())))
}
