//! The engine driven event by event, with its outputs checked exactly: the rules in the module
//! doc, one test each. The simulator (`sim.rs`) checks that they add up to convergence.

use std::collections::BTreeMap;

use super::*;
use crate::sync::ForkMark;

fn member(i: u8) -> MemberId {
    MemberId([i; 32])
}

fn id(n: u8) -> RecordId {
    RecordId([n; 32])
}

/// Peer 1 speaks for member 1, peer 2 for member 2; this node is member 0.
fn engine() -> Engine<u8> {
    Engine::new(EngineConfig {
        me: member(0),
        members: [0, 1, 2].map(member).into_iter().collect(),
        alone: false,
        own_log_timeout: Duration::from_secs(10),
        start_unconfirmed: false,
    })
}

#[derive(Default)]
struct FakeReplica {
    clock: Clock,
    ids: BTreeMap<(MemberId, u64), RecordId>,
}

impl Local for FakeReplica {
    fn clock(&self) -> &Clock {
        &self.clock
    }

    fn id_at(&self, author: &MemberId, seq: u64) -> Option<RecordId> {
        self.ids.get(&(*author, seq)).copied()
    }
}

fn log(seq: u64, n: u8) -> LogClock {
    LogClock { seq, id: id(n), fork: None }
}

fn clock(logs: &[(u8, LogClock)]) -> Clock {
    logs.iter().map(|(m, l)| (member(*m), *l)).collect()
}

fn catch_up(author: u8, from_seq: u64, limit: u32) -> Fetch {
    Fetch { author: member(author), from_seq, limit, purpose: Purpose::CatchUp }
}

fn search(author: u8, from_seq: u64, limit: u32) -> Fetch {
    Fetch { author: member(author), from_seq, limit, purpose: Purpose::Search }
}

/// An engine connected to `peers`, each of which has answered with `their` clock; what it
/// asked for (own-log news left out).
fn planned(local: &FakeReplica, peers: &[u8], their: &Clock) -> (Engine<u8>, Vec<Output<u8>>) {
    let mut e = engine();
    let mut sends = Vec::new();
    for p in peers {
        assert_eq!(e.handle(Event::Connected(*p), local), vec![Output::AskHeads(*p)]);
        let out = e.handle(Event::Heads(*p, their.clone()), local);
        sends.extend(out.into_iter().filter(|o| !matches!(o, Output::OwnLog(_))));
    }
    (e, sends)
}

fn stored(new: u64) -> FetchResult {
    FetchResult::Stored { new, duplicates: 0 }
}

#[test]
fn a_peer_is_asked_for_its_clock_once_until_it_answers_or_fails() {
    let local = FakeReplica::default();
    let mut e = engine();
    assert_eq!(e.handle(Event::Connected(1), &local), vec![Output::AskHeads(1)]);
    assert_eq!(e.handle(Event::Compare(1), &local), vec![], "already asking");
    assert_eq!(e.handle(Event::Tick(Duration::from_secs(1)), &local), vec![]);
    assert_eq!(e.handle(Event::HeadsFailed(1), &local), vec![]);
    assert_eq!(e.handle(Event::Compare(1), &local), vec![Output::AskHeads(1)]);
    assert_eq!(e.handle(Event::Compare(7), &local), vec![], "not connected");
    assert_eq!(e.handle(Event::Heads(7, clock(&[(1, log(3, 3))])), &local), vec![], "not connected");
    assert_eq!(e.fetches(), 0);
}

#[test]
fn a_long_log_is_fetched_in_batches_with_two_in_the_pipeline() {
    let local = FakeReplica::default();
    let (mut e, sends) = planned(&local, &[1], &clock(&[(1, log(10_000, 1))]));
    let first = catch_up(1, 1, BATCH);
    assert_eq!(sends, vec![Output::Send(1, first)]);
    assert_eq!(first.request(), SyncRequest::Range { author: member(1), from_seq: 1, limit: BATCH });
    let second = catch_up(1, 4_001, BATCH);
    assert_eq!(e.handle(Event::Arrived(1, first, 4_000), &local), vec![Output::Send(1, second)]);
    // An answer cut short by size: the next request starts right after what came.
    let third = catch_up(1, 7_001, 3_000);
    assert_eq!(e.handle(Event::Arrived(1, second, 3_000), &local), vec![], "two batches being stored");
    assert_eq!(e.handle(Event::Done(1, first, stored(4_000)), &local), vec![Output::Send(1, third)]);
    assert_eq!(e.handle(Event::Arrived(1, third, 3_000), &local), vec![], "the advertised head is reached");
    assert_eq!(e.handle(Event::Done(1, second, stored(3_000)), &local), vec![], "one batch still storing");
    assert_eq!(e.fetches(), 1);
    // The last batch is stored: the fetch ends, and the peer is asked for a fresh clock (this
    // fake replica's clock did not move, so the peer still seems to offer more).
    assert_eq!(e.handle(Event::Done(1, third, stored(3_000)), &local), vec![Output::AskHeads(1)]);
    assert_eq!(e.fetches(), 0);
}

#[test]
fn the_last_batch_asks_only_for_what_the_peer_advertised() {
    let local = FakeReplica { clock: clock(&[(1, log(10, 1))]), ..FakeReplica::default() };
    let (mut e, sends) = planned(&local, &[1], &clock(&[(1, log(4_011, 2))]));
    let first = catch_up(1, 11, BATCH);
    assert_eq!(sends, vec![Output::Send(1, first)]);
    let last = catch_up(1, 4_011, 1);
    assert_eq!(e.handle(Event::Arrived(1, first, 4_000), &local), vec![Output::Send(1, last)]);
    // The first batch is stored while the last is in flight: nothing more to ask.
    assert_eq!(e.handle(Event::Done(1, first, stored(4_000)), &local), vec![]);
    assert_eq!(e.handle(Event::Arrived(1, last, 1), &local), vec![]);
    assert_eq!(e.handle(Event::Done(1, last, stored(1)), &local), vec![Output::AskHeads(1)]);
    assert_eq!(e.fetches(), 0);
}

#[test]
fn one_fetch_per_author_whoever_offers_it() {
    let local = FakeReplica::default();
    let their = clock(&[(1, log(5, 1)), (2, log(3, 2))]);
    let (mut e, sends) = planned(&local, &[1, 2], &their);
    assert_eq!(sends, vec![Output::Send(1, catch_up(1, 1, 5)), Output::Send(1, catch_up(2, 1, 3))]);
    assert_eq!(e.fetches(), 2);
    // Peer 1 leaves: its fetches end, and peer 2, which offers the same logs, is asked again.
    assert_eq!(e.handle(Event::Disconnected(1), &local), vec![Output::AskHeads(2)]);
    assert_eq!(e.fetches(), 0);
    assert_eq!(
        e.handle(Event::Heads(2, their), &local),
        vec![Output::Send(2, catch_up(1, 1, 5)), Output::Send(2, catch_up(2, 1, 3))]
    );
}

#[test]
fn a_peer_that_sends_nothing_or_nothing_new_is_struck_and_cools_down() {
    let local = FakeReplica::default();
    let their = clock(&[(1, log(5, 1))]);
    let fetch = catch_up(1, 1, 5);
    // An empty answer to a range it advertised.
    let (mut e, _) = planned(&local, &[1], &their);
    let out = e.handle(Event::Arrived(1, fetch, 0), &local);
    assert!(
        matches!(&out[..], [Output::Strike(1, reason)] if reason.contains("sent nothing from 1")),
        "{out:?}"
    );
    assert_eq!(e.fetches(), 0);
    assert_eq!(e.handle(Event::Compare(1), &local), vec![], "cooling down");
    assert_eq!(e.handle(Event::Tick(Duration::from_secs(1)), &local), vec![Output::AskHeads(1)]);
    // A batch that added nothing, not even duplicates.
    let (mut e, _) = planned(&local, &[1], &their);
    e.handle(Event::Arrived(1, fetch, 5), &local);
    let none = FetchResult::Stored { new: 0, duplicates: 0 };
    let out = e.handle(Event::Done(1, fetch, none), &local);
    assert!(matches!(&out[..], [Output::Strike(1, reason)] if reason.contains("added nothing")), "{out:?}");
    assert_eq!(e.fetches(), 0);
    // Only duplicates: nothing wrong, but the fetch ends.
    let (mut e, _) = planned(&local, &[1], &their);
    e.handle(Event::Arrived(1, fetch, 5), &local);
    let dups = FetchResult::Stored { new: 0, duplicates: 5 };
    assert_eq!(e.handle(Event::Done(1, fetch, dups), &local), vec![Output::AskHeads(1)]);
    assert_eq!(e.fetches(), 0);
    // A bad answer.
    let (mut e, _) = planned(&local, &[1], &their);
    e.handle(Event::Arrived(1, fetch, 5), &local);
    let out = e.handle(Event::Done(1, fetch, FetchResult::Bad("bad signature".into())), &local);
    assert_eq!(out, vec![Output::Strike(1, "bad signature".into())]);
    assert_eq!((e.fetches(), e.handle(Event::Compare(1), &local)), (0, vec![]));
}

#[test]
fn answers_to_a_fetch_that_is_not_current_are_ignored() {
    let local = FakeReplica::default();
    let (mut e, _) = planned(&local, &[1], &clock(&[(1, log(5, 1))]));
    let fetch = catch_up(1, 1, 5);
    for event in [
        Event::Arrived(2, fetch, 0),
        Event::Done(2, fetch, FetchResult::Bad("x".into())),
        Event::Failed(2, fetch),
        Event::Done(1, search(1, 1, 5), FetchResult::Bad("x".into())),
        Event::Arrived(1, catch_up(2, 1, 5), 0),
    ] {
        assert_eq!(e.handle(event, &local), vec![]);
        assert_eq!(e.fetches(), 1);
    }
    // A request that failed through no fault of the peer ends the fetch without a strike.
    assert_eq!(e.handle(Event::Failed(1, fetch), &local), vec![Output::AskHeads(1)]);
    assert_eq!(e.fetches(), 0);
}

#[test]
fn a_conflict_starts_a_search_that_walks_down_window_by_window() {
    let local = FakeReplica::default();
    let (mut e, _) = planned(&local, &[1], &clock(&[(1, log(9_000, 1))]));
    let fetch = catch_up(1, 1, BATCH);
    e.handle(Event::Arrived(1, fetch, 4_000), &local);
    let out = e.handle(Event::Done(1, fetch, FetchResult::Conflict { seq: 5_000 }), &local);
    let window = search(1, 1_001, BATCH);
    assert_eq!(out, vec![Output::Send(1, window)]);
    assert_eq!(window.request(), SyncRequest::Range { author: member(1), from_seq: 1_001, limit: BATCH });
    assert_eq!(e.handle(Event::Arrived(1, window, 4_000), &local), vec![], "one search request at a time");
    let out = e.handle(Event::Done(1, window, FetchResult::SearchLower { below: 1_001 }), &local);
    let lower = search(1, 1, 1_001);
    assert_eq!(out, vec![Output::Send(1, lower)]);
    let out = e.handle(Event::Done(1, lower, FetchResult::SearchLower { below: 0 }), &local);
    assert!(!out.iter().any(|o| matches!(o, Output::Send(..))), "{out:?}");
    assert_eq!(e.fetches(), 0);
}

#[test]
fn a_search_that_finds_no_difference_cools_the_peer_down() {
    let local = FakeReplica::default();
    let (mut e, _) = planned(&local, &[1], &clock(&[(1, log(3, 1))]));
    let fetch = catch_up(1, 1, 3);
    e.handle(Event::Arrived(1, fetch, 3), &local);
    let out = e.handle(Event::Done(1, fetch, FetchResult::Conflict { seq: 0 }), &local);
    let window = search(1, 1, 1);
    assert_eq!(out, vec![Output::Send(1, window)], "a search never starts below seq 1");
    assert_eq!(e.handle(Event::Done(1, window, FetchResult::Nothing), &local), vec![]);
    assert_eq!(e.handle(Event::Compare(1), &local), vec![], "cooling down");
    // Nothing in answer to a catch-up or a proof fetch is no fault.
    let (mut e, _) = planned(&local, &[1], &clock(&[(1, log(3, 1))]));
    assert_eq!(e.handle(Event::Done(1, fetch, FetchResult::Nothing), &local), vec![Output::AskHeads(1)]);
}

#[test]
fn logs_that_differ_at_the_same_or_a_lower_seq_are_searched() {
    let mut local =
        FakeReplica { clock: clock(&[(1, log(5_000, 1)), (2, log(7, 7))]), ..FakeReplica::default() };
    local.ids.insert((member(2), 4), id(4));
    // Same seq, another id: a window ending there. Lower seq than ours: compare our id there.
    let their = clock(&[(1, log(5_000, 9)), (2, log(4, 5))]);
    let (_, sends) = planned(&local, &[1], &their);
    assert_eq!(sends, vec![Output::Send(1, search(1, 1_001, BATCH)), Output::Send(1, search(2, 1, 4))]);
    // The same ids: nothing to do.
    let their = clock(&[(1, log(5_000, 1)), (2, log(4, 4))]);
    assert_eq!(planned(&local, &[1], &their).1, vec![]);
    // An id we do not hold (a gap below our head is impossible; a fake replica allows it).
    let their = clock(&[(2, log(3, 3))]);
    assert_eq!(planned(&local, &[1], &their).1, vec![]);
}

#[test]
fn non_members_in_a_peers_clock_are_ignored() {
    let local = FakeReplica::default();
    let (_, sends) = planned(&local, &[1], &clock(&[(9, log(5, 1)), (1, log(2, 2))]));
    assert_eq!(sends, vec![Output::Send(1, catch_up(1, 1, 2))]);
    // A clock claiming an empty log (whatever id it names) calls for nothing.
    assert_eq!(planned(&local, &[1], &clock(&[(1, log(0, 9))])).1, vec![]);
}

fn mark(seq: u64, n: u8) -> ForkMark {
    ForkMark { seq, a: id(n), b: id(n + 1) }
}

#[test]
fn a_forked_log_is_fetched_up_to_the_fork_and_a_better_proof_first() {
    // We hold member 1's proof at seq 6: fetch its log up to seq 5 only.
    let ours = LogClock { seq: 2, id: id(2), fork: Some(mark(6, 1)) };
    let local = FakeReplica { clock: clock(&[(1, ours)]), ..FakeReplica::default() };
    let (_, sends) = planned(&local, &[1], &clock(&[(1, log(100, 1))]));
    assert_eq!(sends, vec![Output::Send(1, catch_up(1, 3, 3))]);
    // The peer holds a better proof (lower seq): ask for it before anything else.
    let theirs = LogClock { seq: 2, id: id(2), fork: Some(mark(4, 1)) };
    let (mut e, sends) = planned(&local, &[1], &clock(&[(1, theirs)]));
    let proof = Fetch { author: member(1), from_seq: 0, limit: 0, purpose: Purpose::Proof };
    assert_eq!(sends, vec![Output::Send(1, proof)]);
    assert_eq!(proof.request(), SyncRequest::Proof { author: member(1) });
    assert_eq!(e.handle(Event::Arrived(1, proof, 1), &local), vec![], "answered once");
    assert_eq!(e.handle(Event::Done(1, proof, FetchResult::Proven), &local), vec![Output::AskHeads(1)]);
    assert_eq!(e.fetches(), 0);
    // A proof no better than ours is not asked for; the peer's log up to its fork is.
    let worse = LogClock { seq: 100, id: id(2), fork: Some(mark(6, 2)) };
    assert_eq!(planned(&local, &[1], &clock(&[(1, worse)])).1, vec![Output::Send(1, catch_up(1, 3, 3))]);
    let same = LogClock { seq: 5, id: id(2), fork: Some(mark(6, 1)) };
    assert_eq!(planned(&local, &[1], &clock(&[(1, same)])).1, vec![Output::Send(1, catch_up(1, 3, 3))]);
    // Both logs reach our fork point (the same proof): they are not compared past it.
    let at_fork = FakeReplica {
        clock: clock(&[(1, LogClock { seq: 5, id: id(5), fork: Some(mark(6, 1)) })]),
        ..FakeReplica::default()
    };
    let longer = LogClock { seq: 100, id: id(9), fork: Some(mark(6, 1)) };
    assert_eq!(planned(&at_fork, &[1], &clock(&[(1, longer)])).1, vec![]);
    // We hold no proof: theirs is fetched first.
    let (_, sends) = planned(&FakeReplica::default(), &[1], &clock(&[(1, worse)]));
    assert_eq!(sends, vec![Output::Send(1, proof)]);
}

#[test]
fn the_own_log_is_confirmed_once_no_peer_holds_more_of_it() {
    let me = 0;
    let mut local = FakeReplica::default();
    let mut e = engine();
    assert_eq!(e.own_log(), OwnLog::Waiting);
    assert!(!e.own_log().may_author());
    e.handle(Event::Connected(1), &local);
    // The peer holds own records 1..=3 this node lost: fetch them, do not write yet.
    let out = e.handle(Event::Heads(1, clock(&[(me, log(3, 3))])), &local);
    assert_eq!(out, vec![Output::Send(1, catch_up(me, 1, 3))]);
    assert_eq!(e.own_log(), OwnLog::Waiting);
    assert_eq!(e.handle(Event::Arrived(1, catch_up(me, 1, 3), 3), &local), vec![]);
    local.clock = clock(&[(me, log(3, 3))]);
    let out = e.handle(Event::Done(1, catch_up(me, 1, 3), stored(3)), &local);
    assert_eq!(out, vec![Output::OwnLog(OwnLog::Confirmed)]);
    assert!(e.own_log().may_author());
    assert_eq!(e.handle(Event::Tick(Duration::from_secs(99)), &local), vec![Output::AskHeads(1)], "stays");
}

#[test]
fn records_past_a_fork_do_not_hold_back_the_own_log() {
    let local = FakeReplica { clock: clock(&[(0, log(2, 2))]), ..FakeReplica::default() };
    let mut e = engine();
    e.handle(Event::Connected(1), &local);
    let forked = LogClock { seq: 5, id: id(5), fork: Some(mark(3, 1)) };
    let out = e.handle(Event::Heads(1, clock(&[(0, forked)])), &local);
    assert!(out.contains(&Output::OwnLog(OwnLog::Confirmed)), "{out:?}");
}

#[test]
fn with_no_peer_in_time_the_own_log_is_stuck_or_unconfirmed_as_configured() {
    let local = FakeReplica::default();
    let mut e = engine();
    assert_eq!(e.handle(Event::Tick(Duration::from_secs(9)), &local), vec![]);
    assert_eq!(e.handle(Event::Tick(Duration::from_secs(10)), &local), vec![Output::OwnLog(OwnLog::Stuck)]);
    assert!(!e.own_log().may_author());
    // A peer shows up later: confirmed after all.
    e.handle(Event::Connected(1), &local);
    assert_eq!(e.handle(Event::Heads(1, Clock::new()), &local), vec![Output::OwnLog(OwnLog::Confirmed)]);
    let mut e = Engine::<u8>::new(EngineConfig { start_unconfirmed: true, ..engine().config });
    let out = e.handle(Event::Tick(Duration::from_secs(10)), &local);
    assert_eq!(out, vec![Output::OwnLog(OwnLog::Unconfirmed)]);
    assert!(e.own_log().may_author());
    // A peer that connected but never answered does not count as heard.
    let mut e = engine();
    e.handle(Event::Connected(1), &local);
    assert_eq!(e.handle(Event::Tick(Duration::from_secs(10)), &local), vec![Output::OwnLog(OwnLog::Stuck)]);
    let alone = Engine::<u8>::new(EngineConfig { alone: true, ..engine().config });
    assert_eq!(alone.own_log(), OwnLog::Confirmed);
}

/// A peer's log of this member counts up to its head, or up to just before its fork: own
/// writes wait while either is past what this node holds.
#[test]
fn the_own_log_waits_while_a_peer_shows_more_of_it_up_to_any_fork() {
    let local = FakeReplica { clock: clock(&[(0, log(2, 2))]), ..FakeReplica::default() };
    for (theirs, confirmed) in [
        (LogClock { seq: 5, id: id(5), fork: None }, false),
        (LogClock { seq: 5, id: id(5), fork: Some(mark(4, 1)) }, false),
        (LogClock { seq: 5, id: id(5), fork: Some(mark(3, 1)) }, true),
        (LogClock { seq: 2, id: id(2), fork: None }, true),
    ] {
        let mut e = engine();
        e.handle(Event::Connected(1), &local);
        let out = e.handle(Event::Heads(1, clock(&[(0, theirs)])), &local);
        assert_eq!(out.contains(&Output::OwnLog(OwnLog::Confirmed)), confirmed, "{theirs:?}: {out:?}");
    }
}

/// A member added by a new epoch is read from peers' clocks from then on.
#[test]
fn a_key_added_by_an_epoch_is_fetched_once_the_engine_knows_it() {
    let local = FakeReplica::default();
    let theirs = clock(&[(9, log(3, 1))]);
    let (mut e, sends) = planned(&local, &[1], &theirs);
    assert_eq!(sends, vec![], "9 is no member yet");
    e.set_members([0, 1, 2, 9].map(member).into_iter().collect());
    assert_eq!(e.handle(Event::Compare(1), &local), vec![Output::AskHeads(1)]);
    assert_eq!(e.handle(Event::Heads(1, theirs), &local), vec![Output::Send(1, catch_up(9, 1, 3))]);
}
