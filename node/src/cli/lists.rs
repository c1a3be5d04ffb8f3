//! `hashmesh import` and `hashmesh export`: hash lists streamed to and from the node.

use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use hashmesh_protocol::{Category, FingerprintKind, MemberId, Status};

use super::client::Client;
use super::commands::print_json;
use crate::api::ImportReport;
use crate::lists::Format;

/// `hashmesh import`.
#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    /// The list file (`-` for standard input).
    pub file: PathBuf,
    /// plain (kind:hex lines), csv (header naming hash, kind, category, link, note,
    /// expires), te (python-threatexchange `<signal_type> <signal>` lines), hma (CSV
    /// `signal_type,signal_str,collab,category,tags`), jsonl (our entry shape).
    #[arg(long)]
    pub format: Format,
    /// The kind of bare hex values, e.g. pdq.
    #[arg(long)]
    pub kind: Option<FingerprintKind>,
    /// The category of rows that name none (required for plain and te lists).
    #[arg(long)]
    pub category: Option<Category>,
}

/// `hashmesh export`.
#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    /// plain, csv, te, hma or jsonl.
    #[arg(long, default_value = "jsonl")]
    pub format: Format,
    /// Only entries in this status.
    #[arg(long)]
    pub status: Option<Status>,
    /// Only entries in this category.
    #[arg(long)]
    pub category: Option<Category>,
    /// Only fingerprints of this kind.
    #[arg(long)]
    pub kind: Option<FingerprintKind>,
    /// Only entries by this member.
    #[arg(long)]
    pub author: Option<MemberId>,
    /// Write here instead of standard output.
    #[arg(long, short)]
    pub out: Option<PathBuf>,
}

pub(super) fn import(c: &Client, args: &ImportArgs, json: bool) -> anyhow::Result<()> {
    let (mut input, size): (Box<dyn Read>, Option<u64>) = if args.file == Path::new("-") {
        (Box::new(std::io::stdin().lock()), None)
    } else {
        let file = std::fs::File::open(&args.file)
            .with_context(|| format!("cannot open {}", args.file.display()))?;
        let size = file.metadata().ok().map(|m| m.len());
        (Box::new(file), size)
    };
    let mut query = format!("/v1/import?format={}", args.format);
    if let Some(kind) = args.kind {
        query.push_str(&format!("&kind={kind}"));
    }
    if let Some(category) = &args.category {
        query.push_str(&format!("&category={category}"));
    }
    let sent = Arc::new(AtomicU64::new(0));
    let progress = Progress::start(Arc::clone(&sent), size);
    let mut counting = Counting { inner: &mut input, sent };
    let report: anyhow::Result<ImportReport> =
        c.post_reader(&query, args.format.content_type(), &mut counting);
    progress.stop();
    let report = report?;
    if json {
        print_json(&report);
    } else {
        say!(
            "{} rows: {} imported, {} skipped (the federation already holds them), {} bad",
            report.rows,
            report.imported,
            report.duplicates,
            report.errors
        );
        for bad in &report.bad_rows {
            say!("  line {}: {}", bad.line, bad.reason);
        }
        if report.errors > report.bad_rows.len() as u64 {
            say!("  … and {} more bad rows", report.errors - report.bad_rows.len() as u64);
        }
    }
    if let Some(why) = &report.stopped {
        bail!("the import stopped early: {why}");
    }
    if report.errors > 0 {
        bail!(
            "{} rows were not imported (listed above); fix them and import the file again — rows already imported are skipped",
            report.errors
        );
    }
    Ok(())
}

pub(super) fn export(c: &Client, args: &ExportArgs) -> anyhow::Result<()> {
    let mut query = format!("/v1/export?format={}", args.format);
    if let Some(status) = args.status {
        query.push_str(&format!("&status={}", status.name()));
    }
    if let Some(category) = &args.category {
        query.push_str(&format!("&category={category}"));
    }
    if let Some(kind) = args.kind {
        query.push_str(&format!("&kind={kind}"));
    }
    if let Some(author) = &args.author {
        query.push_str(&format!("&author={author}"));
    }
    match &args.out {
        Some(path) => {
            // Written beside the target and renamed into place, so a failed export never
            // leaves a partial list where a complete one is expected.
            let tmp = path.with_extension("partial");
            let mut file = std::io::BufWriter::new(
                std::fs::File::create(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?,
            );
            let result =
                c.get_to(&query, &mut file).and_then(|n| file.flush().map(|()| n).map_err(Into::into));
            match result {
                Ok(bytes) => {
                    std::fs::rename(&tmp, path)
                        .with_context(|| format!("cannot write {}", path.display()))?;
                    eprintln!("wrote {} ({bytes} bytes)", path.display());
                    Ok(())
                }
                Err(e) => {
                    let _ = std::fs::remove_file(&tmp);
                    Err(e)
                }
            }
        }
        None => {
            let mut out = std::io::stdout().lock();
            match c.get_to(&query, &mut out) {
                // `hashmesh export | head` is fine: the reader has what it wanted.
                Err(e) if e.chain().any(is_broken_pipe) => Ok(()),
                other => other.map(|_| ()),
            }
        }
    }
}

fn is_broken_pipe(e: &(dyn std::error::Error + 'static)) -> bool {
    e.downcast_ref::<std::io::Error>().is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
}

/// Counts the bytes read through it.
struct Counting<'a> {
    inner: &'a mut dyn Read,
    sent: Arc<AtomicU64>,
}

impl Read for Counting<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.sent.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// Progress of an upload on stderr: a bar with rate and ETA on a terminal, a counter line
/// every 10 s otherwise (logs).
struct Progress {
    done: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Progress {
    fn start(sent: Arc<AtomicU64>, size: Option<u64>) -> Self {
        let done = Arc::new(AtomicBool::new(false));
        let stop = Arc::clone(&done);
        let tty = std::io::stderr().is_terminal();
        let thread = std::thread::spawn(move || {
            let started = Instant::now();
            let every = if tty { Duration::from_millis(200) } else { Duration::from_secs(10) };
            let mut last = Instant::now();
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(100));
                if last.elapsed() < every {
                    continue;
                }
                last = Instant::now();
                let line = progress_line(sent.load(Ordering::Relaxed), size, started.elapsed());
                if tty {
                    eprint!("\r\x1b[2K{line}");
                } else {
                    eprintln!("import: {line}");
                }
            }
            if tty {
                eprint!("\r\x1b[2K");
            }
        });
        Self { done, thread: Some(thread) }
    }

    fn stop(mut self) {
        self.done.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// `[#####.....] 52% 48.1 MiB of 92.5 MiB, 12.0 MiB/s, 4s left`.
fn progress_line(sent: u64, size: Option<u64>, elapsed: Duration) -> String {
    let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
    let rate = sent as f64 / elapsed.as_secs_f64().max(0.001);
    match size.filter(|s| *s > 0) {
        Some(size) => {
            let fraction = (sent as f64 / size as f64).min(1.0);
            let filled = (fraction * 30.0) as usize;
            let left = size.saturating_sub(sent) as f64 / rate.max(1.0);
            format!(
                "[{}{}] {:>3.0}% {:.1} MiB of {:.1} MiB, {:.1} MiB/s, {:.0}s left",
                "#".repeat(filled),
                ".".repeat(30 - filled),
                fraction * 100.0,
                mib(sent),
                mib(size),
                mib(rate as u64),
                left
            )
        }
        None => format!("{:.1} MiB sent, {:.1} MiB/s", mib(sent), mib(rate as u64)),
    }
}
