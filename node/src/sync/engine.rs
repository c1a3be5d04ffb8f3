//! The sync engine: an I/O-free state machine that decides what to ask which peer.
//!
//! Events go in — a peer connected or left, a peer's clock arrived, a range answer arrived, a
//! batch was stored, a timer ticked — and outputs come out: ask a peer for its clock, send a
//! fetch, count a fault against a peer, tell the node whether its own log is confirmed. The
//! libp2p event loop only maps outputs to requests and answers to events; the simulator in
//! `sim.rs` drives the same engine with a seeded RNG, message loss and partitions.
//!
//! Rules it keeps:
//! - one fetch per author at a time, so records of a log arrive in order and are never
//!   fetched twice; a catch-up fetch asks for the next batch as soon as one arrives, while
//!   up to [`PIPELINE`] batches are verified and stored;
//! - a fetch ends when the peer's advertised head is reached, when a batch adds nothing, or
//!   when an answer is wrong (wrong author or seqs, bad signature, a broken chain): the last
//!   two count against the peer, so a peer that replays or stalls cannot keep a fetch going;
//! - a forked author's log is fetched only up to its fork point, and a better proof is
//!   fetched as soon as a peer's clock shows one;
//! - a node does not author until its own log is confirmed: some peer has shown its clock,
//!   and every own record a peer holds has been fetched back (a restored backup or a lost disk
//!   would otherwise reuse seqs and fork the member's own log).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use hashmesh_protocol::{MemberId, RecordId};

use super::clock::{Clock, LogClock};
use super::wire::{BATCH, SyncRequest};

/// Batches of one catch-up fetch that may wait to be stored while the next one is asked for.
/// One request is in flight at a time, so each starts right where the last answer ended.
pub const PIPELINE: u32 = 2;

/// What the replica tells the engine about itself.
pub trait Local {
    /// Its vector clock.
    fn clock(&self) -> &Clock;
    /// The id of the record it holds at (author, seq).
    fn id_at(&self, author: &MemberId, seq: u64) -> Option<RecordId>;
}

/// Why a request is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// Records the peer holds and we lack.
    CatchUp,
    /// A window of the peer's log, to find where it forks from ours.
    Search,
    /// The peer's proof of equivocation, which ranks before ours.
    Proof,
}

/// One request to a peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fetch {
    /// Whose log or proof.
    pub author: MemberId,
    /// First seq (ranges).
    pub from_seq: u64,
    /// At most this many records (ranges).
    pub limit: u32,
    /// Why.
    pub purpose: Purpose,
}

impl Fetch {
    /// The request on the wire.
    pub fn request(&self) -> SyncRequest {
        match self.purpose {
            Purpose::CatchUp | Purpose::Search => {
                SyncRequest::Range { author: self.author, from_seq: self.from_seq, limit: self.limit }
            }
            Purpose::Proof => SyncRequest::Proof { author: self.author },
        }
    }
}

/// What came of a fetch once its answer was used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchResult {
    /// A catch-up batch was stored.
    Stored {
        /// Records new to us.
        new: u64,
        /// Records we already held.
        duplicates: u64,
    },
    /// A catch-up batch does not chain to our log at or before `seq`: search for the fork.
    Conflict {
        /// The highest seq at which the histories are known to differ.
        seq: u64,
    },
    /// A proof of equivocation was found or received, and took effect (or one as good is held).
    Proven,
    /// Every record of a search window differs from ours: look below `below`.
    SearchLower {
        /// The lowest seq of the window.
        below: u64,
    },
    /// Nothing to act on (a search found no fork; a proof ranked no better than ours).
    Nothing,
    /// The answer is wrong, and it is the peer's fault.
    Bad(String),
}

/// Whether this node may author: its own log must be confirmed by its peers first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OwnLog {
    /// Waiting for a peer's clock, or for own records peers hold.
    Waiting,
    /// Confirmed: no peer holds an own record this node lacks.
    Confirmed,
    /// No peer answered in time; writes allowed because the config says so.
    Unconfirmed,
    /// No peer answered in time; writes refused until one does.
    Stuck,
}

impl OwnLog {
    /// Every state, in the order above.
    pub const ALL: [Self; 4] = [Self::Waiting, Self::Confirmed, Self::Unconfirmed, Self::Stuck];

    /// Whether own writes may go ahead.
    pub fn may_author(self) -> bool {
        matches!(self, Self::Confirmed | Self::Unconfirmed)
    }

    /// The lowercase word `/v1/status` and `/metrics` show: `waiting`, `confirmed`,
    /// `unconfirmed` or `stuck`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Waiting => "waiting",
            Self::Confirmed => "confirmed",
            Self::Unconfirmed => "unconfirmed",
            Self::Stuck => "stuck",
        }
    }
}

/// Inputs.
#[derive(Debug)]
pub enum Event<P> {
    /// A peer connected.
    Connected(P),
    /// A peer's last connection closed.
    Disconnected(P),
    /// Time passed (since the engine started): periodic clock exchange and timeouts.
    Tick(Duration),
    /// A peer's clock arrived.
    Heads(P, Clock),
    /// A clock request failed.
    HeadsFailed(P),
    /// Something from the peer (a gossiped record off our log, or past a gap) calls for
    /// comparing clocks now rather than at the next round.
    Compare(P),
    /// A range answer arrived and passed the range check; it is being verified and stored.
    Arrived(P, Fetch, usize),
    /// A fetch's answer was used.
    Done(P, Fetch, FetchResult),
    /// A request failed or was refused (not necessarily the peer's fault).
    Failed(P, Fetch),
}

/// Outputs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output<P> {
    /// Ask the peer for its clock.
    AskHeads(P),
    /// Send this request to the peer.
    Send(P, Fetch),
    /// The peer did something wrong: count it.
    Strike(P, String),
    /// The own log's state changed.
    OwnLog(OwnLog),
}

/// Engine settings.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// This node's member.
    pub me: MemberId,
    /// The keys whose logs count (members, and retired keys up to their end): clocks are
    /// read only for them.
    pub members: BTreeSet<MemberId>,
    /// Whether this node's member has no other nodes to ask (the only member): it may author
    /// at once.
    pub alone: bool,
    /// How long to wait for a peer before the own log counts as unconfirmed.
    pub own_log_timeout: Duration,
    /// Whether to author anyway once that time has passed with no peer.
    pub start_unconfirmed: bool,
}

#[derive(Default)]
struct PeerState {
    asking: bool,
    clock: Option<Clock>,
    /// The peer answered wrongly (or with a clock its log does not bear out) since the last
    /// tick: it is not asked again before the next one, so a misbehaving peer costs at most
    /// one exchange per sync interval.
    cooling: bool,
}

struct Fetching<P> {
    peer: P,
    purpose: Purpose,
    /// Next seq to ask for (catch-up).
    next: u64,
    /// Last seq the peer advertised (catch-up).
    until: u64,
    /// Requests sent and not yet answered.
    in_flight: u32,
    /// Answers received and not yet stored.
    storing: u32,
}

/// The sync state machine. `P` names a peer (a libp2p `PeerId`, or an index in the simulator).
pub struct Engine<P> {
    config: EngineConfig,
    peers: BTreeMap<P, PeerState>,
    fetching: BTreeMap<MemberId, Fetching<P>>,
    own: OwnLog,
    now: Duration,
}

impl<P: Copy + Ord + std::fmt::Debug> Engine<P> {
    /// A new engine.
    pub fn new(config: EngineConfig) -> Self {
        let own = if config.alone { OwnLog::Confirmed } else { OwnLog::Waiting };
        Self { config, peers: BTreeMap::new(), fetching: BTreeMap::new(), own, now: Duration::ZERO }
    }

    /// A new membership epoch took effect: from now on clocks are read for these keys.
    pub fn set_members(&mut self, members: BTreeSet<MemberId>) {
        self.config.members = members;
    }

    /// The own log's state.
    pub fn own_log(&self) -> OwnLog {
        self.own
    }

    /// Fetches in progress (for status and tests).
    pub fn fetches(&self) -> usize {
        self.fetching.len()
    }

    /// Takes one event; returns what to do.
    pub fn handle(&mut self, event: Event<P>, local: &impl Local) -> Vec<Output<P>> {
        let mut out = Vec::new();
        match event {
            Event::Connected(peer) => {
                self.peers.entry(peer).or_default();
                self.ask_heads(peer, &mut out);
            }
            Event::Disconnected(peer) => {
                self.peers.remove(&peer);
                let abandoned: Vec<MemberId> =
                    self.fetching.iter().filter(|(_, f)| f.peer == peer).map(|(a, _)| *a).collect();
                for author in abandoned {
                    self.end(author, peer, local, &mut out);
                }
            }
            Event::Tick(now) => {
                self.now = now;
                for state in self.peers.values_mut() {
                    state.cooling = false;
                }
                let peers: Vec<P> = self.peers.keys().copied().collect();
                for peer in peers {
                    self.ask_heads(peer, &mut out);
                }
            }
            Event::Heads(peer, clock) => {
                let members = &self.config.members;
                let clock: Clock = clock.into_iter().filter(|(a, _)| members.contains(a)).collect();
                let Some(state) = self.peers.get_mut(&peer) else { return out };
                state.asking = false;
                state.clock = Some(clock);
                self.plan(peer, local, &mut out);
            }
            Event::Compare(peer) => self.ask_heads(peer, &mut out),
            Event::HeadsFailed(peer) => {
                if let Some(state) = self.peers.get_mut(&peer) {
                    state.asking = false;
                }
            }
            Event::Arrived(peer, fetch, count) => self.arrived(peer, fetch, count, local, &mut out),
            Event::Done(peer, fetch, result) => self.done(peer, fetch, result, local, &mut out),
            Event::Failed(peer, fetch) => {
                if self.is_current(peer, &fetch) {
                    self.end(fetch.author, peer, local, &mut out);
                }
            }
        }
        self.check_own_log(local, &mut out);
        out
    }

    fn ask_heads(&mut self, peer: P, out: &mut Vec<Output<P>>) {
        if let Some(state) = self.peers.get_mut(&peer)
            && !state.asking
            && !state.cooling
        {
            state.asking = true;
            out.push(Output::AskHeads(peer));
        }
    }

    /// Counts a fault against the peer and lets it cool down until the next tick.
    fn strike(&mut self, peer: P, reason: String, out: &mut Vec<Output<P>>) {
        if let Some(state) = self.peers.get_mut(&peer) {
            state.cooling = true;
            state.clock = None;
        }
        out.push(Output::Strike(peer, reason));
    }

    fn is_current(&self, peer: P, fetch: &Fetch) -> bool {
        self.fetching.get(&fetch.author).is_some_and(|f| f.peer == peer && f.purpose == fetch.purpose)
    }

    /// Starts every fetch the peer's clock calls for whose author is free.
    fn plan(&mut self, peer: P, local: &impl Local, out: &mut Vec<Output<P>>) {
        let Some(theirs) = self.peers.get(&peer).and_then(|s| s.clock.as_ref()) else { return };
        let wanted = plan(theirs, local);
        for (fetch, until) in wanted {
            if self.fetching.contains_key(&fetch.author) {
                continue; // asked again when that fetch ends
            }
            self.fetching.insert(
                fetch.author,
                Fetching {
                    peer,
                    purpose: fetch.purpose,
                    next: fetch.from_seq,
                    until,
                    in_flight: 0,
                    storing: 0,
                },
            );
            self.send(peer, fetch, out);
        }
    }

    fn send(&mut self, peer: P, fetch: Fetch, out: &mut Vec<Output<P>>) {
        if let Some(f) = self.fetching.get_mut(&fetch.author) {
            f.in_flight += 1;
        }
        out.push(Output::Send(peer, fetch));
    }

    fn arrived(&mut self, peer: P, fetch: Fetch, count: usize, local: &impl Local, out: &mut Vec<Output<P>>) {
        if !self.is_current(peer, &fetch) {
            return;
        }
        let Some(f) = self.fetching.get_mut(&fetch.author) else { return };
        f.in_flight = f.in_flight.saturating_sub(1);
        if fetch.purpose != Purpose::CatchUp {
            // Proof and search answers are one at a time: no pipeline to keep count of.
            return;
        }
        if count == 0 {
            let reason = format!(
                "advertised {}'s log up to {} but sent nothing from {}",
                fetch.author.short(),
                f.until,
                fetch.from_seq
            );
            self.strike(peer, reason, out);
            self.end(fetch.author, peer, local, out);
            return;
        }
        f.storing += 1;
        // Continue right after what came (an answer may be cut short by size).
        f.next = fetch.from_seq + count as u64;
        self.pump(fetch.author, peer, out);
    }

    /// Keeps a catch-up fetch's pipeline full.
    fn pump(&mut self, author: MemberId, peer: P, out: &mut Vec<Output<P>>) {
        while let Some(f) = self.fetching.get(&author) {
            if f.purpose != Purpose::CatchUp || f.in_flight > 0 || f.storing >= PIPELINE || f.next > f.until {
                break;
            }
            let limit = (f.until - f.next + 1).min(u64::from(BATCH)) as u32;
            let fetch = Fetch { author, from_seq: f.next, limit, purpose: Purpose::CatchUp };
            self.send(peer, fetch, out);
        }
    }

    fn done(
        &mut self,
        peer: P,
        fetch: Fetch,
        result: FetchResult,
        local: &impl Local,
        out: &mut Vec<Output<P>>,
    ) {
        if !self.is_current(peer, &fetch) {
            return;
        }
        let author = fetch.author;
        let Some(f) = self.fetching.get_mut(&author) else { return };
        f.storing = f.storing.saturating_sub(1);
        if fetch.purpose != Purpose::CatchUp {
            // Proof and search requests are answered one at a time.
            f.in_flight = 0;
        }
        match result {
            FetchResult::Stored { new, duplicates } => {
                if new == 0 {
                    if duplicates == 0 {
                        self.strike(peer, format!("a batch of {}'s log added nothing", author.short()), out);
                    }
                    self.end(author, peer, local, out);
                    return;
                }
                let finished = f.next > f.until && f.in_flight == 0 && f.storing == 0;
                if finished {
                    self.end(author, peer, local, out);
                } else {
                    self.pump(author, peer, out);
                }
            }
            FetchResult::Conflict { seq } => {
                self.fetching.remove(&author);
                self.start_search(peer, author, seq, out);
            }
            FetchResult::SearchLower { below } => {
                if below == 0 {
                    self.end(author, peer, local, out);
                } else {
                    self.fetching.remove(&author);
                    self.start_search(peer, author, below, out);
                }
            }
            FetchResult::Proven => self.end(author, peer, local, out),
            FetchResult::Nothing => {
                if fetch.purpose == Purpose::Search {
                    // Its clock said its log differs from ours, its log says not: a stale
                    // clock, or a lie. Do not ask again before the next tick.
                    if let Some(state) = self.peers.get_mut(&peer) {
                        state.cooling = true;
                        state.clock = None;
                    }
                }
                self.end(author, peer, local, out);
            }
            FetchResult::Bad(reason) => {
                self.strike(peer, reason, out);
                self.end(author, peer, local, out);
            }
        }
    }

    fn start_search(&mut self, peer: P, author: MemberId, upper: u64, out: &mut Vec<Output<P>>) {
        let upper = upper.max(1);
        let from_seq = upper.saturating_sub(u64::from(BATCH) - 1).max(1);
        let fetch =
            Fetch { author, from_seq, limit: (upper - from_seq + 1) as u32, purpose: Purpose::Search };
        self.fetching.insert(
            author,
            Fetching {
                peer,
                purpose: Purpose::Search,
                next: from_seq,
                until: upper,
                in_flight: 0,
                storing: 0,
            },
        );
        self.send(peer, fetch, out);
    }

    /// A fetch of `author` from `peer` is over: free the author, and ask the peers that had
    /// more of it for a fresh clock (theirs may have moved on).
    fn end(&mut self, author: MemberId, peer: P, local: &impl Local, out: &mut Vec<Output<P>>) {
        if self.fetching.get(&author).is_some_and(|f| f.peer == peer) {
            self.fetching.remove(&author);
        }
        let offering: Vec<P> = self
            .peers
            .iter()
            .filter(|(_, s)| {
                s.clock.as_ref().is_some_and(|c| plan(c, local).iter().any(|(f, _)| f.author == author))
            })
            .map(|(p, _)| *p)
            .collect();
        for other in offering {
            if let Some(state) = self.peers.get_mut(&other) {
                state.clock = None; // stale: use it no more
            }
            self.ask_heads(other, out);
        }
    }

    fn check_own_log(&mut self, local: &impl Local, out: &mut Vec<Output<P>>) {
        if self.own == OwnLog::Confirmed {
            return;
        }
        let me = self.config.me;
        let mine = local.clock().get(&me).map_or(0, |c| c.seq);
        let heard: Vec<&Clock> = self.peers.values().filter_map(|s| s.clock.as_ref()).collect();
        let caught_up = heard.iter().all(|c| c.get(&me).is_none_or(|t| visible(t) <= mine));
        let next = if heard.is_empty() {
            if self.own == OwnLog::Waiting && self.now >= self.config.own_log_timeout {
                if self.config.start_unconfirmed { OwnLog::Unconfirmed } else { OwnLog::Stuck }
            } else {
                self.own
            }
        } else if caught_up {
            OwnLog::Confirmed
        } else {
            // A peer holds own records this node lacks: no more own writes until they are
            // fetched back, even if it was writing unconfirmed.
            OwnLog::Waiting
        };
        if next != self.own {
            self.own = next;
            out.push(Output::OwnLog(next));
        }
    }
}

/// The seq up to which a log counts: its head, or just before its fork.
fn visible(log: &LogClock) -> u64 {
    log.fork.map_or(log.seq, |f| log.seq.min(f.seq - 1))
}

/// What a peer's clock calls for, author by author: a better proof, missing records (with
/// the last seq the peer advertised), or a search where the two logs disagree.
fn plan(theirs: &Clock, local: &impl Local) -> Vec<(Fetch, u64)> {
    let mine = local.clock();
    let none = LogClock { seq: 0, id: RecordId::ZERO, fork: None };
    let mut wanted = Vec::new();
    for (author, t) in theirs {
        let l = mine.get(author).unwrap_or(&none);
        if let Some(tf) = t.fork
            && l.fork.is_none_or(|lf| tf < lf)
        {
            wanted.push((Fetch { author: *author, from_seq: 0, limit: 0, purpose: Purpose::Proof }, 0));
            continue;
        }
        let cap = [l.fork, t.fork].into_iter().flatten().map(|f| f.seq - 1).min().unwrap_or(u64::MAX);
        let (ours, their) = (l.seq.min(cap), t.seq.min(cap));
        if their > ours {
            let limit = (their - ours).min(u64::from(BATCH)) as u32;
            wanted.push((
                Fetch { author: *author, from_seq: ours + 1, limit, purpose: Purpose::CatchUp },
                their,
            ));
        } else if their > 0 && their == t.seq {
            let ours_there = if their == l.seq { Some(l.id) } else { local.id_at(author, their) };
            if ours_there.is_some_and(|id| id != t.id) {
                let from_seq = their.saturating_sub(u64::from(BATCH) - 1).max(1);
                let limit = (their - from_seq + 1) as u32;
                wanted.push((Fetch { author: *author, from_seq, limit, purpose: Purpose::Search }, their));
            }
        }
    }
    wanted
}

#[cfg(test)]
mod tests;
