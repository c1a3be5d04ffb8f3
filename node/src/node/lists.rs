//! Bulk import and export of hash lists ([`crate::lists`] holds the formats). Both stream:
//! an import takes rows in batches as they are read, an export writes a page of entries at
//! a time, so neither holds a whole list in memory.

use std::collections::HashSet;
use std::io::{Read, Write};
use std::time::{Duration, Instant};

use hashmesh_protocol::{Entry, Fingerprint, MemberId, RecordId, Status};

use super::{NodeError, NodeHandle, now_ms};
use crate::api::{ExportQuery, ImportReport, SubmitEntry};
use crate::lists::{self, Defaults, Format, RowError};
use crate::replica::Catalog;

/// Rows signed and stored together: one writer round and one flush each.
const BATCH: usize = 4096;
/// Bad rows listed in a report; the rest are only counted.
const MAX_LISTED: usize = 1000;
/// Entries read under one hold of the view lock during an export.
const PAGE: usize = 1024;

impl ImportReport {
    fn new(format: Format) -> Self {
        Self { format, rows: 0, imported: 0, duplicates: 0, errors: 0, bad_rows: Vec::new(), stopped: None }
    }

    fn bad(&mut self, row: RowError) {
        self.errors += 1;
        if self.bad_rows.len() < MAX_LISTED {
            self.bad_rows.push(row);
        }
    }
}

/// What an export wrote.
#[derive(Debug, Clone, Copy, Default)]
pub struct Exported {
    /// Entries written.
    pub entries: u64,
    /// Fingerprints written.
    pub fingerprints: u64,
    /// Fingerprints the format cannot hold, left out.
    pub unwritable: u64,
}

impl NodeHandle {
    /// Imports a list as entries signed by this member: rows whose fingerprints the federation
    /// already holds are skipped and counted, bad rows are reported with their line and do not
    /// stop the import. Blocking (it reads `input`): call it from a blocking thread inside the
    /// runtime. Fails before reading if this member cannot write or the format needs a default
    /// it was not given; a failure part-way is in the report's `stopped`.
    pub fn import_list(
        &self,
        format: Format,
        defaults: &Defaults,
        input: impl Read,
    ) -> Result<ImportReport, NodeError> {
        self.check_may_author()?;
        let rows = lists::rows(format, defaults, input).map_err(NodeError::Invalid)?;
        let runtime = tokio::runtime::Handle::current();
        let mut report = ImportReport::new(format);
        let mut batch: Vec<lists::Parsed> = Vec::with_capacity(BATCH);
        let mut logged = Instant::now();
        for row in rows {
            match row {
                Ok(Ok(parsed)) => {
                    report.rows += 1;
                    batch.push(parsed);
                }
                Ok(Err(bad)) => {
                    report.rows += 1;
                    report.bad(bad);
                }
                Err(e) => {
                    report.stopped = Some(format!("reading the list failed after {} rows: {e}", report.rows));
                    break;
                }
            }
            if batch.len() == BATCH {
                if let Err(e) = self.import_batch(&runtime, &mut batch, &mut report) {
                    report.stopped = Some(format!("{e}; the rows before were imported"));
                    return Ok(report);
                }
                if logged.elapsed() > Duration::from_secs(5) {
                    logged = Instant::now();
                    tracing::info!(
                        rows = report.rows,
                        imported = report.imported,
                        duplicates = report.duplicates,
                        errors = report.errors,
                        "importing"
                    );
                }
            }
        }
        if let Err(e) = self.import_batch(&runtime, &mut batch, &mut report) {
            report.stopped = Some(format!("{e}; the rows before were imported"));
        }
        tracing::info!(%format, rows = report.rows, imported = report.imported, duplicates = report.duplicates, errors = report.errors, "import done");
        Ok(report)
    }

    /// Signs and stores a batch of rows, less the ones the federation already holds or that
    /// break its rules (reported), and empties the batch.
    fn import_batch(
        &self,
        runtime: &tokio::runtime::Handle,
        batch: &mut Vec<lists::Parsed>,
        report: &mut ImportReport,
    ) -> Result<(), NodeError> {
        if batch.is_empty() {
            return Ok(());
        }
        let now = now_ms();
        let mut fresh: Vec<SubmitEntry> = Vec::with_capacity(batch.len());
        {
            let view = self.shared.replica.view();
            let (catalog, manifest) = (view.catalog(), view.manifest());
            let mut seen: HashSet<Fingerprint> = HashSet::new();
            for lists::Parsed { line, mut entry } in batch.drain(..) {
                if !manifest.allows_category(&entry.category) {
                    report.bad(RowError {
                        line,
                        reason: format!(
                            "category {} is not one this federation accepts (its manifest lists them)",
                            entry.category
                        ),
                    });
                    continue;
                }
                if let Some(at) = entry.expires_at.filter(|at| *at <= now) {
                    report
                        .bad(RowError { line, reason: format!("expires {at} (unix ms) has already passed") });
                    continue;
                }
                entry.fingerprints.retain(|fp| !held(catalog, fp) && seen.insert(fp.clone()));
                if entry.fingerprints.is_empty() {
                    report.duplicates += 1;
                } else {
                    fresh.push(SubmitEntry::from(entry));
                }
            }
        }
        let n = fresh.len() as u64;
        runtime.block_on(self.submit_batch(fresh))?;
        report.imported += n;
        Ok(())
    }

    /// Writes the entries `query` selects to `out`, a page at a time. Blocking.
    pub fn export_list(&self, query: &ExportQuery, out: impl Write) -> std::io::Result<Exported> {
        let format = query.format.unwrap_or(Format::Jsonl);
        let mut writer = lists::Writer::new(format, query.kind, out)?;
        let mut cursor = None;
        let mut done = Exported::default();
        loop {
            let now = now_ms();
            let mut scanned = 0;
            let page: Vec<(RecordId, MemberId, Status, Entry)> = {
                let view = self.shared.replica.view();
                let policy = view.policy();
                view.catalog()
                    .after(cursor)
                    .take(PAGE)
                    .inspect(|s| {
                        cursor = Some(s.id);
                        scanned += 1;
                    })
                    .filter_map(|s| {
                        let status = s.votes.status(policy, now);
                        let wanted = query.status.is_none_or(|w| w == status)
                            && query.category.as_ref().is_none_or(|c| *c == s.entry.category)
                            && query.author.is_none_or(|a| a == s.votes.author())
                            && query
                                .kind
                                .is_none_or(|k| s.entry.fingerprints.iter().any(|fp| fp.kind() == k));
                        wanted.then(|| (s.id, s.votes.author(), status, s.entry.clone()))
                    })
                    .collect()
            };
            for (id, author, status, entry) in &page {
                writer.entry(*id, *author, *status, entry)?;
                done.entries += 1;
            }
            if scanned < PAGE {
                break;
            }
        }
        done.fingerprints = writer.written;
        done.unwritable = writer.unwritable;
        writer.finish()?;
        Ok(done)
    }
}

/// Whether the federation already holds this exact fingerprint.
fn held(catalog: &Catalog, fp: &Fingerprint) -> bool {
    if fp.kind().is_perceptual() { catalog.perceptual().contains(fp) } else { !catalog.exact(fp).is_empty() }
}
