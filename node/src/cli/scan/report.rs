//! The scan report: one row per file, as JSON lines or CSV.
//!
//! JSON lines, one object per file:
//! `{"path": …, "action": "remove"|"review"|"none", "hits": [{"entry", "category", "status",
//! "kind", "distance", "action"}…], "error": null|"…", "skipped": ["pdq: …"]}`.
//!
//! CSV (RFC 4180, with a header): `path,action,hits,error,skipped`, where `hits` lists each
//! hit as `entry category status kind distance action`, hits separated by `;`.

use std::io::Write;
use std::path::Path;

use anyhow::Context;
use hashmesh_protocol::Action;
use serde::Serialize;

use super::super::ReportFormat;
use super::strongest;
use crate::api::Hit;

/// One file's row.
#[derive(Debug, Clone, Serialize)]
pub(super) struct Row {
    /// The file, as found under the scanned folder.
    pub(super) path: String,
    /// The strongest action over `hits`; `none` without hits.
    pub(super) action: Action,
    /// One per matching entry, strongest action first, then nearest.
    pub(super) hits: Vec<Hit>,
    /// Why the file was not fully checked: unreadable, or an image that could not be
    /// decoded (its exact hashes were still matched).
    pub(super) error: Option<String>,
    /// Fingerprints computed but not matched, with why (a PDQ too low in quality).
    pub(super) skipped: Vec<String>,
}

impl Row {
    pub(super) fn new(path: &Path, hits: Vec<Hit>, error: Option<String>, skipped: Vec<String>) -> Self {
        Self { path: path.to_string_lossy().into_owned(), action: strongest(&hits), hits, error, skipped }
    }

    /// A file that could not be checked at all.
    pub(super) fn failed(path: &Path, error: String) -> Self {
        Self::new(path, Vec::new(), Some(error), Vec::new())
    }
}

/// Where rows go.
pub(super) struct Report {
    out: Box<dyn Write>,
    format: ReportFormat,
    /// What to call the destination in errors.
    name: String,
}

impl Report {
    /// Opens the report (`None`: stdout) and writes the CSV header.
    pub(super) fn create(path: Option<&Path>, format: ReportFormat) -> anyhow::Result<Self> {
        let (out, name): (Box<dyn Write>, String) = match path {
            Some(path) => (
                Box::new(std::io::BufWriter::new(
                    std::fs::File::create(path)
                        .with_context(|| format!("cannot create the report {}", path.display()))?,
                )),
                path.display().to_string(),
            ),
            None => (Box::new(std::io::BufWriter::new(std::io::stdout())), "stdout".to_owned()),
        };
        let mut report = Self { out, format, name };
        if let ReportFormat::Csv = format {
            report.line("path,action,hits,error,skipped")?;
        }
        Ok(report)
    }

    /// Writes one row.
    pub(super) fn write(&mut self, row: &Row) -> anyhow::Result<()> {
        let line = match self.format {
            ReportFormat::Jsonl => serde_json::to_string(row).context("cannot encode a report row")?,
            ReportFormat::Csv => csv_line(row),
        };
        self.line(&line)
    }

    /// Pushes written rows out, so a reader following the report sees each batch.
    pub(super) fn flush(&mut self) -> anyhow::Result<()> {
        self.out.flush().with_context(|| format!("cannot write the report to {}", self.name))
    }

    /// Flushes the last rows.
    pub(super) fn finish(mut self) -> anyhow::Result<()> {
        self.flush()
    }

    fn line(&mut self, line: &str) -> anyhow::Result<()> {
        writeln!(self.out, "{line}").with_context(|| format!("cannot write the report to {}", self.name))
    }
}

fn csv_line(row: &Row) -> String {
    let hits: Vec<String> = row
        .hits
        .iter()
        .map(|h| {
            format!(
                "{} {} {} {} {} {}",
                h.entry,
                h.category,
                h.status.name(),
                h.kind.name(),
                h.distance,
                h.action.name()
            )
        })
        .collect();
    [
        row.path.as_str(),
        row.action.name(),
        &hits.join(";"),
        row.error.as_deref().unwrap_or(""),
        &row.skipped.join(";"),
    ]
    .map(csv_field)
    .join(",")
}

/// A CSV field, quoted when it holds a comma, quote or line break (RFC 4180).
fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_owned()
    }
}
