//! Scan progress: a line redrawn in place when stderr is a terminal (files done / total,
//! rate, ETA), and a log line every [`LOG_EVERY`] otherwise, so a scan run by cron or a
//! pipeline leaves a readable trace rather than a wall of carriage returns.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

/// How often the terminal line is redrawn, at most.
const DRAW_EVERY: Duration = Duration::from_millis(200);

/// How often a counter line is logged when stderr is not a terminal.
const LOG_EVERY: Duration = Duration::from_secs(5);

/// Counts files done against the total.
pub(super) struct Progress {
    total: usize,
    done: usize,
    started: Instant,
    last: Instant,
    terminal: bool,
}

impl Progress {
    /// Progress over `total` files, drawn if stderr is a terminal.
    pub(super) fn new(total: usize) -> Self {
        let now = Instant::now();
        Self { total, done: 0, started: now, last: now, terminal: std::io::stderr().is_terminal() }
    }

    /// `n` more files are done.
    pub(super) fn advance(&mut self, n: usize) {
        self.done += n;
        let now = Instant::now();
        let every = if self.terminal { DRAW_EVERY } else { LOG_EVERY };
        if now.duration_since(self.last) < every && self.done < self.total {
            return;
        }
        self.last = now;
        let (rate, eta) = self.rate_and_eta(now);
        if self.terminal {
            let mut err = std::io::stderr().lock();
            let _ = write!(
                err,
                "\r\x1b[2K{}/{} files  {rate:.0} files/s  ETA {}",
                self.done,
                self.total,
                human(eta)
            );
            let _ = err.flush();
        } else {
            tracing::info!(
                done = self.done,
                total = self.total,
                files_per_s = rate.round() as u64,
                eta = %human(eta),
                "scanning"
            );
        }
    }

    /// Ends the terminal line.
    pub(super) fn finish(&self) {
        if self.terminal {
            eprintln!();
        }
    }

    fn rate_and_eta(&self, now: Instant) -> (f64, Duration) {
        let elapsed = now.duration_since(self.started).as_secs_f64();
        let rate = if elapsed > 0.0 { self.done as f64 / elapsed } else { 0.0 };
        let left = self.total.saturating_sub(self.done) as f64;
        let eta = if rate > 0.0 { Duration::from_secs_f64(left / rate) } else { Duration::ZERO };
        (rate, eta)
    }
}

/// `1h02m`, `3m05s`, `12s`.
fn human(d: Duration) -> String {
    let s = d.as_secs();
    match (s / 3600, s / 60 % 60, s % 60) {
        (0, 0, s) => format!("{s}s"),
        (0, m, s) => format!("{m}m{s:02}s"),
        (h, m, _) => format!("{h}h{m:02}m"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_a_clock() {
        assert_eq!(human(Duration::from_secs(12)), "12s");
        assert_eq!(human(Duration::from_secs(185)), "3m05s");
        assert_eq!(human(Duration::from_secs(3720)), "1h02m");
    }
}
