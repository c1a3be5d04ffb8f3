//! The levels of a [`super::MihIndex`] and their background merges.
//!
//! Queries take a snapshot (an `Arc` of the level list) and never wait for a merge: a merge
//! builds its new level on a thread of its own from levels that stay in the list, and swaps
//! it in when done, under a lock held only for the swap.
//!
//! Two rules decide what merges, checked whenever a level is added or a merge ends:
//!
//! - **Tiered**: two adjacent idle levels merge when the older is less than
//!   [`MERGE_FACTOR`] times the newer. Inserts arrive as small levels, so this keeps their
//!   number logarithmic during a stream of inserts, at `O(log n)` rebuilds per hash.
//! - **Compaction**: the idle levels at the end that fit in one level merge into one, so that
//!   after a stream of inserts the index is again a single level per [`MAX_LEVEL`] hashes and
//!   answers as fast as a freshly built one. A compaction rebuilds the largest level, so the
//!   next may start only after [`COMPACTION_GAP`] times the last one's duration: a steady
//!   trickle of inserts costs at most a fifth of a core, and the last compaction after a
//!   stream comes at most that long after it.

use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use super::level::Level;
use super::{Hash256, MAX_LEVEL, bucket_bits};

/// Two adjacent levels merge while the older is smaller than this many times the newer.
const MERGE_FACTOR: usize = 8;

/// A compaction may start once this many times the previous one's duration has passed since
/// it ended.
const COMPACTION_GAP: u32 = 4;

/// The levels, shared by the index and its merge threads.
pub(super) struct Levels {
    shared: Arc<Shared>,
}

struct Shared {
    state: Mutex<State>,
    /// Notified whenever a job ends.
    changed: Condvar,
}

#[derive(Default)]
struct State {
    /// Oldest (largest) first.
    slots: Vec<Slot>,
    /// The levels as queries see them, in the same order.
    published: Arc<[Arc<Level>]>,
    /// Merges in flight, and the compaction timer when armed.
    jobs: usize,
    /// Whether a compaction is in flight.
    compacting: bool,
    /// Whether a thread waits for `next_compaction`.
    timer: bool,
    /// Earliest start of the next compaction; `None` at once.
    next_compaction: Option<Instant>,
    /// Bucket-key width override (tests); `None` derives it from each level's size.
    bits: Option<u32>,
    /// Most hashes a merge may produce: [`MAX_LEVEL`], less in tests.
    max_level: usize,
}

struct Slot {
    level: Arc<Level>,
    /// Being merged: it stays queried until the merged level replaces it.
    busy: bool,
}

/// Background work.
#[derive(Clone)]
enum Job {
    /// Merge these adjacent levels (oldest first) into one.
    Merge { run: Vec<Arc<Level>>, compaction: bool },
    /// Wait until a compaction may start, then look again.
    Timer { at: Instant },
}

impl Levels {
    /// No levels, merged up to [`MAX_LEVEL`] hashes each.
    pub(super) fn new() -> Self {
        Self::with(None, MAX_LEVEL)
    }

    /// No levels; `bits` fixes the bucket-key width of every level and merges stop at
    /// `max_level` hashes (tests).
    pub(super) fn with(bits: Option<u32>, max_level: usize) -> Self {
        let state = State { bits, max_level: max_level.min(MAX_LEVEL), ..State::default() };
        Levels { shared: Arc::new(Shared { state: Mutex::new(state), changed: Condvar::new() }) }
    }

    /// Most hashes in one level.
    pub(super) fn max_level(&self) -> usize {
        self.lock().max_level
    }

    /// The bucket-key width for a level of `n` hashes.
    pub(super) fn bits_for(&self, n: usize) -> u32 {
        self.lock().bits.unwrap_or_else(|| bucket_bits(n))
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.shared.lock()
    }

    /// The levels now, for a query.
    pub(super) fn snapshot(&self) -> Arc<[Arc<Level>]> {
        Arc::clone(&self.lock().published)
    }

    /// Adds `level` as the newest, and starts the merges it calls for.
    pub(super) fn push(&self, level: Level) {
        let jobs = {
            let mut state = self.lock();
            state.slots.push(Slot { level: Arc::new(level), busy: false });
            state.publish();
            state.plan()
        };
        Shared::start(&self.shared, jobs);
    }

    /// Waits until no merge is in flight and none is due, compacting at once rather than
    /// after the usual gap (benchmarks and tests).
    pub(super) fn settle(&self) {
        let mut state = self.lock();
        loop {
            // Only the timer left: the compaction it waits for may start now.
            if state.jobs == 0 || (state.jobs == 1 && state.timer) {
                state.next_compaction = None;
                let jobs = state.plan();
                if jobs.is_empty() {
                    return;
                }
                drop(state);
                Shared::start(&self.shared, jobs);
                state = self.lock();
                continue;
            }
            state = self.shared.changed.wait(state).unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// Number of levels (tests).
    #[cfg(test)]
    pub(super) fn count(&self) -> usize {
        self.lock().slots.len()
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // The state is only changed by swaps that cannot panic half-way.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs each job on a thread of its own (on this one if no thread can be started).
    fn start(shared: &Arc<Shared>, jobs: Vec<Job>) {
        for job in jobs {
            let (mine, theirs) = (Arc::clone(shared), Arc::clone(shared));
            let copy = job.clone();
            let spawned = std::thread::Builder::new().name("mih-merge".into()).spawn(move || theirs.run(job));
            if let Err(e) = spawned {
                tracing::warn!(error = %e, "cannot start a thread for an index merge; merging on this one");
                mine.run(copy);
            }
        }
    }

    fn run(self: Arc<Self>, job: Job) {
        background_priority();
        let jobs = match job {
            Job::Timer { at } => {
                std::thread::sleep(at.saturating_duration_since(Instant::now()));
                let mut state = self.lock();
                state.timer = false;
                state.jobs -= 1;
                state.plan()
            }
            Job::Merge { run, compaction } => {
                let started = Instant::now();
                let items: Vec<(Hash256, u32)> = run.iter().flat_map(|level| level.items()).collect();
                let bits = self.lock().bits.unwrap_or_else(|| bucket_bits(items.len()));
                let merged = Arc::new(Level::build(&items, bits, 1));
                drop(items);
                let mut state = self.lock();
                state.replace(&run, merged);
                state.jobs -= 1;
                if compaction {
                    state.compacting = false;
                    state.next_compaction = Some(Instant::now() + started.elapsed() * COMPACTION_GAP);
                }
                state.plan()
            }
        };
        self.changed.notify_all();
        Shared::start(&self, jobs);
    }
}

/// Lowers this thread's priority to the least (nice 19), so that a merge takes only the CPU
/// that queries and writes leave: on Linux, unlike POSIX, `setpriority` on `PRIO_PROCESS` 0
/// applies to the calling thread alone.
fn background_priority() {
    #[cfg(target_os = "linux")]
    if let Err(e) = rustix::process::setpriority_process(None, 19) {
        tracing::debug!(error = %e, "cannot lower a merge thread's priority");
    }
}

impl State {
    fn publish(&mut self) {
        self.published = self.slots.iter().map(|s| Arc::clone(&s.level)).collect();
    }

    /// Puts `merged` in place of the levels of `run`, which are busy and adjacent.
    fn replace(&mut self, run: &[Arc<Level>], merged: Arc<Level>) {
        let Some(first) = run.first() else { return };
        let Some(at) = self.slots.iter().position(|s| Arc::ptr_eq(&s.level, first)) else { return };
        self.slots.splice(at..at + run.len(), [Slot { level: merged, busy: false }]);
        self.publish();
    }

    /// Marks `range` busy and returns the job that merges it.
    fn claim(&mut self, range: std::ops::Range<usize>, compaction: bool) -> Job {
        self.jobs += 1;
        let slots = &mut self.slots[range];
        for slot in slots.iter_mut() {
            slot.busy = true;
        }
        Job::Merge { run: slots.iter().map(|s| Arc::clone(&s.level)).collect(), compaction }
    }

    /// The merges due now (already claimed), and the timer if a compaction must wait.
    fn plan(&mut self) -> Vec<Job> {
        let mut jobs = Vec::new();
        // Tiered, newest first.
        let mut i = self.slots.len();
        while i >= 2 {
            let (a, b) = (&self.slots[i - 2], &self.slots[i - 1]);
            let (na, nb) = (a.level.len(), b.level.len());
            if !a.busy && !b.busy && na < MERGE_FACTOR.saturating_mul(nb) && na + nb <= self.max_level {
                jobs.push(self.claim(i - 2..i, false));
                i -= 2;
            } else {
                i -= 1;
            }
        }
        if !jobs.is_empty() || self.compacting {
            return jobs;
        }
        // Compaction: the idle levels at the end that fit in one.
        let (mut start, mut total) = (self.slots.len(), 0usize);
        while let Some(slot) = start.checked_sub(1).and_then(|s| self.slots.get(s)) {
            if slot.busy || total + slot.level.len() > self.max_level {
                break;
            }
            total += slot.level.len();
            start -= 1;
        }
        if self.slots.len() - start < 2 {
            return jobs;
        }
        match self.next_compaction {
            Some(at) if at > Instant::now() => {
                if !self.timer {
                    self.timer = true;
                    self.jobs += 1;
                    jobs.push(Job::Timer { at });
                }
            }
            _ => {
                self.compacting = true;
                let len = self.slots.len();
                jobs.push(self.claim(start..len, true));
            }
        }
        jobs
    }
}
