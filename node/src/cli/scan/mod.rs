//! `hashmesh match --dir`: scan a folder against the node, the way a platform sweeps an
//! archive or a seized drive.
//!
//! The pipeline, all on this machine except the lookups:
//!
//! 1. **Walk** the folder (sorted by name, so two scans of one tree list it alike). Regular
//!    files are scanned, and symbolic links to regular files; links to folders are not
//!    followed (a link to `/` would scan the machine), and FIFOs, sockets and devices are
//!    skipped (opening a FIFO blocks forever).
//! 2. **Hash** on every core: `jobs` threads take the next file from a shared counter and
//!    run [`hashers::fingerprint_file`]; results go to the main thread over a bounded
//!    channel, so hashing runs at most [`QUEUED_FILES`] files ahead of the lookups.
//! 3. **Match** in batches of [`FILES_PER_CALL`] files with `POST /v1/match/hashes`: only
//!    fingerprints leave the machine, PDQ with its 7 dihedral variants (so a mirrored or
//!    rotated copy matches), except a PDQ too low in quality to trust, which is noted and not
//!    sent. The node's answers are merged back per file: one hit per entry at its smallest
//!    distance over all of the file's fingerprints, strongest action first.
//! 4. **Report** one row per file, in the order files finish hashing (sort by path if order
//!    matters). A file that cannot be read, or an image that cannot be decoded, is a row with
//!    an `error`; it never stops the scan.
//!
//! The exit status is what a script branches on; see [`EXIT_STATUS_HELP`].

mod progress;
mod report;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use anyhow::{Context, bail};
use hashmesh_protocol::{Action, Fingerprint, RecordId};

use super::ReportFormat;
use super::client::Client;
use crate::api::{Hit, MAX_MATCH_HASHES, MatchHashes, MatchResponse, MatchResult};
use crate::hashers::{self, Hashed};
use crate::node::action_rank;
use progress::Progress;
use report::{Report, Row};

/// The exit statuses of `match --dir`, shown in `hashmesh match --help`.
pub(super) const EXIT_STATUS_HELP: &str = "\
Exit status with --dir (like clamscan's):
  0  the scan completed and nothing matched
  1  at least one file matches an entry whose action is `remove` or `review` (hits on
     rejected, retracted or expired entries are reported but do not count)
  2  nothing matched, but some file could not be read or its image decoded (its row has an
     `error`); or the scan stopped early (node unreachable, token refused, report not
     writable) — the rows written before that are in the report

Without --dir: 0 when the lookups succeeded (whatever they found), 1 on error.";

/// Files per `POST /v1/match/hashes`: an image is 14 fingerprints with PDQ's variants, so a
/// batch is ~3,600 lookups — under the node's limit, and a few milliseconds of its time.
pub(super) const FILES_PER_CALL: usize = 256;

/// Hashed files waiting for their lookup, at most: bounds memory when the node is slower than
/// the disks.
const QUEUED_FILES: usize = 2 * FILES_PER_CALL;

/// Fingerprints one file may send at most (4 exact + 8 PDQ + dhash + phash); a batch is sent
/// before it could pass [`MAX_MATCH_HASHES`].
const MAX_HASHES_PER_FILE: usize = 16;

/// What `match --dir` was asked.
pub(super) struct ScanOptions {
    /// The folder.
    pub(super) dir: PathBuf,
    /// Report file; stdout if `None`.
    pub(super) report: Option<PathBuf>,
    /// Report format.
    pub(super) format: ReportFormat,
    /// Hashing threads.
    pub(super) jobs: usize,
}

/// What a scan found, for its exit status.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(super) struct Summary {
    /// Rows written.
    pub(super) files: usize,
    /// Files whose strongest action is `remove` or `review`.
    pub(super) matched: usize,
    /// Rows with an error.
    pub(super) errors: usize,
}

impl Summary {
    /// 1 if anything matched, else 2 if some file was not fully checked, else 0.
    pub(super) fn exit_code(self) -> u8 {
        if self.matched > 0 {
            1
        } else if self.errors > 0 {
            2
        } else {
            0
        }
    }
}

/// Runs a scan and turns its outcome into the exit status; a scan that stops early prints
/// why and exits 2.
pub(super) fn run(client: &Client, options: &ScanOptions) -> ExitCode {
    match scan(client, options) {
        Ok(summary) => {
            eprintln!(
                "scanned {} files: {} matched, {} with errors",
                summary.files, summary.matched, summary.errors
            );
            ExitCode::from(summary.exit_code())
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn scan(client: &Client, options: &ScanOptions) -> anyhow::Result<Summary> {
    let dir = &options.dir;
    if !std::fs::metadata(dir).with_context(|| format!("cannot scan {}", dir.display()))?.is_dir() {
        bail!("{} is not a folder: pass files to match without --dir", dir.display());
    }
    let mut report = Report::create(options.report.as_deref(), options.format)?;
    let (files, unlisted) = walk(dir);
    let mut summary = Summary::default();
    for (path, error) in unlisted {
        let row = Row::failed(&path, error);
        report.write(&row)?;
        summary.add(&row);
    }
    let mut progress = Progress::new(files.len());
    let next = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let video = super::commands::video_config();
    std::thread::scope(|scope| {
        let (tx, rx) = std::sync::mpsc::sync_channel::<(usize, std::io::Result<Hashed>)>(QUEUED_FILES);
        for _ in 0..options.jobs.max(1) {
            let (tx, files, next, stop, video) = (tx.clone(), &files, &next, &stop, &video);
            scope.spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(path) = files.get(i) else { break };
                    if tx.send((i, hashers::fingerprint_file(path, video))).is_err() {
                        break;
                    }
                }
            });
        }
        drop(tx);
        let result = (|| {
            let mut batch = Batch::default();
            let mut sent = |batch: &mut Batch| -> anyhow::Result<()> {
                let rows = batch.send(client, &mut report)?;
                summary.add_all(&rows);
                progress.advance(rows.len());
                Ok(())
            };
            for (i, hashed) in rx.iter() {
                batch.push(&files[i], hashed);
                if batch.is_full() {
                    sent(&mut batch)?;
                }
            }
            sent(&mut batch)
        })();
        // Workers blocked on a full channel see it closed once `rx` is gone.
        stop.store(true, Ordering::Relaxed);
        drop(rx);
        result
    })?;
    progress.finish();
    report.finish()?;
    Ok(summary)
}

impl Summary {
    fn add(&mut self, row: &Row) {
        self.files += 1;
        self.matched += usize::from(row.action != Action::None);
        self.errors += usize::from(row.error.is_some());
    }

    fn add_all(&mut self, rows: &[Row]) {
        rows.iter().for_each(|r| self.add(r));
    }
}

/// Every file to scan under `dir`, sorted by name, and the paths that could not be listed
/// with why.
fn walk(dir: &Path) -> (Vec<PathBuf>, Vec<(PathBuf, String)>) {
    let (mut files, mut unlisted) = (Vec::new(), Vec::new());
    for entry in walkdir::WalkDir::new(dir).sort_by_file_name() {
        match entry {
            Ok(entry) if entry.file_type().is_file() => files.push(entry.into_path()),
            // A link to a regular file is scanned; a link to a folder is not followed.
            Ok(entry) if entry.path_is_symlink() => {
                if std::fs::metadata(entry.path()).is_ok_and(|m| m.is_file()) {
                    files.push(entry.into_path());
                }
            }
            Ok(_) => {}
            Err(e) => {
                let path = e.path().map_or_else(|| dir.to_path_buf(), Path::to_path_buf);
                let why = e.io_error().map_or_else(|| e.to_string(), ToString::to_string);
                unlisted.push((path, format!("cannot list: {why}")));
            }
        }
    }
    (files, unlisted)
}

/// Files hashed and waiting for one lookup call.
#[derive(Default)]
struct Batch {
    files: Vec<FileQuery>,
    /// Every fingerprint to look up, in file order.
    hashes: Vec<Fingerprint>,
    /// For each of `hashes`, the index of its file in `files`.
    owner: Vec<usize>,
}

/// One file of a batch.
struct FileQuery {
    path: PathBuf,
    error: Option<String>,
    skipped: Vec<String>,
}

impl Batch {
    fn push(&mut self, path: &Path, hashed: std::io::Result<Hashed>) {
        let index = self.files.len();
        let mut file = FileQuery { path: path.to_path_buf(), error: None, skipped: Vec::new() };
        match hashed {
            Err(e) => file.error = Some(format!("cannot read: {e}")),
            Ok(hashed) => {
                file.error = hashed.image_error.or(hashed.video_error);
                for c in hashed.computed {
                    if let Some(why) = c.skipped {
                        // Too low in quality to trust: the node would not match it either.
                        file.skipped.push(format!("{}: {why}", c.fingerprint.kind().name()));
                        continue;
                    }
                    for fp in std::iter::once(c.fingerprint).chain(c.variants) {
                        self.hashes.push(fp);
                        self.owner.push(index);
                    }
                }
            }
        }
        self.files.push(file);
    }

    fn is_full(&self) -> bool {
        self.files.len() >= FILES_PER_CALL || self.hashes.len() + MAX_HASHES_PER_FILE > MAX_MATCH_HASHES
    }

    /// Looks the batch up, writes its rows and empties it.
    fn send(&mut self, client: &Client, report: &mut Report) -> anyhow::Result<Vec<Row>> {
        let batch = std::mem::take(self);
        let results = if batch.hashes.is_empty() {
            Vec::new()
        } else {
            let response: MatchResponse =
                client.post("/v1/match/hashes", &MatchHashes { hashes: batch.hashes })?;
            if response.results.len() != batch.owner.len() {
                bail!(
                    "the node answered {} results for {} fingerprints; is it a different hashmesh version?",
                    response.results.len(),
                    batch.owner.len()
                );
            }
            response.results
        };
        let hits = merge(&results, &batch.owner, batch.files.len());
        let rows: Vec<Row> = batch
            .files
            .into_iter()
            .zip(hits)
            .map(|(file, hits)| Row::new(&file.path, hits, file.error, file.skipped))
            .collect();
        for row in &rows {
            report.write(row)?;
        }
        report.flush()?;
        Ok(rows)
    }
}

/// Each file's hits from the results of its fingerprints (`owner[i]` owns `results[i]`):
/// one hit per entry, at the smallest distance any of the file's fingerprints (or PDQ
/// variants) had to it, strongest action first, then nearest.
fn merge(results: &[MatchResult], owner: &[usize], files: usize) -> Vec<Vec<Hit>> {
    let mut best: Vec<BTreeMap<RecordId, Hit>> = vec![BTreeMap::new(); files];
    for (result, &file) in results.iter().zip(owner) {
        for hit in &result.hits {
            let slot = best[file].entry(hit.entry).or_insert_with(|| hit.clone());
            if hit.distance < slot.distance {
                *slot = hit.clone();
            }
        }
    }
    best.into_iter()
        .map(|by_entry| {
            let mut hits: Vec<Hit> = by_entry.into_values().collect();
            hits.sort_by_key(|h| (action_rank(h.action), h.distance, h.entry));
            hits
        })
        .collect()
}

/// The strongest action of `hits` (`none` without hits).
fn strongest(hits: &[Hit]) -> Action {
    hits.iter().map(|h| h.action).min_by_key(|a| action_rank(*a)).unwrap_or(Action::None)
}

#[cfg(test)]
mod tests;
