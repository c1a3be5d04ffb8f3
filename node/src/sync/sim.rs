//! A simulator: 3–7 replicas, each with its own store and [`Engine`], exchanging messages
//! through a queue that loses, duplicates and reorders them, across links that partition and
//! heal, while members write entries and votes and some sign conflicting records. The same
//! engine, range checks, fork search and replica the node runs — only the transport is
//! replaced. At the end, with every link healed and nothing lost, all replicas must hold the
//! same clock and derive the same status for every entry.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::Duration;

use ed25519_dalek::SigningKey;
use hashmesh_protocol::{
    Body, Entry, EquivocationProof, Fingerprint, FingerprintKind, Manifest, MemberId, MemberInfo,
    PolicyParams, Record, RecordId, Status, UnsignedRecord, Verdict, Vote,
};
use proptest::prelude::*;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use serde_bytes::ByteBuf;

use super::fork::{self, Search};
use super::wire::{self, SyncRequest, SyncResponse};
use super::{Clock, Engine, EngineConfig, Event, Fetch, FetchResult, Local, Output, Purpose, digest};
use crate::replica::{Ingested, MAX_BUFFERED, Replica, Verified, verify_run};
use crate::store::Store;

fn key(i: usize) -> SigningKey {
    SigningKey::from_bytes(&[i as u8 + 1; 32])
}

fn member(i: usize) -> MemberId {
    MemberId::from_key(&key(i).verifying_key())
}

enum Msg {
    Request { from: usize, to: usize, fetch: Option<Fetch> },
    Response { from: usize, to: usize, fetch: Option<Fetch>, response: SyncResponse },
    Gossip { from: usize, to: usize, bytes: Vec<u8> },
}

struct Node {
    replica: Replica,
    engine: Engine<usize>,
    _dir: tempfile::TempDir,
}

struct Snapshot<'a> {
    replica: &'a Replica,
    clock: Clock,
}

impl Local for Snapshot<'_> {
    fn clock(&self) -> &Clock {
        &self.clock
    }

    fn id_at(&self, author: &MemberId, seq: u64) -> Option<RecordId> {
        self.replica.record_at(author, seq).ok().flatten().map(|r| r.id())
    }
}

struct Sim {
    nodes: Vec<Node>,
    links: BTreeSet<(usize, usize)>,
    queue: VecDeque<Msg>,
    rng: StdRng,
    now: Duration,
    writes: u64,
}

impl Sim {
    fn new(n: usize, seed: u64) -> Self {
        let manifest = Manifest {
            name: "sim".into(),
            epoch: 1,
            policy: PolicyParams::default(),
            retired: Vec::new(),
            members: (0..n)
                .map(|i| MemberInfo {
                    name: format!("m{i}"),
                    key: member(i),
                    peers: vec![],
                    addresses: vec![],
                })
                .collect(),
        };
        let nodes = (0..n)
            .map(|i| {
                let dir = tempfile::tempdir().expect("tempdir");
                let store = Store::open(dir.path(), "sim", member(i)).expect("store");
                let replica = Replica::open(store, manifest.clone()).expect("replica");
                let engine = Engine::new(EngineConfig {
                    me: member(i),
                    members: (0..n).map(member).collect(),
                    alone: false,
                    own_log_timeout: Duration::from_secs(3600),
                    start_unconfirmed: false,
                });
                Node { replica, engine, _dir: dir }
            })
            .collect();
        let mut sim = Self {
            nodes,
            links: BTreeSet::new(),
            queue: VecDeque::new(),
            rng: StdRng::seed_from_u64(seed),
            now: Duration::ZERO,
            writes: 0,
        };
        for a in 0..n {
            for b in a + 1..n {
                sim.link(a, b, true);
            }
        }
        sim
    }

    fn link(&mut self, a: usize, b: usize, up: bool) {
        let changed = if up { self.links.insert((a, b)) } else { self.links.remove(&(a, b)) };
        if changed {
            let (ea, eb) = if up {
                (Event::Connected(b), Event::Connected(a))
            } else {
                (Event::Disconnected(b), Event::Disconnected(a))
            };
            self.event(a, ea);
            self.event(b, eb);
        }
    }

    fn linked(&self, a: usize, b: usize) -> bool {
        self.links.contains(&(a.min(b), a.max(b)))
    }

    fn event(&mut self, at: usize, event: Event<usize>) {
        let node = &mut self.nodes[at];
        let local = Snapshot { replica: &node.replica, clock: node.replica.read_view().clock().clone() };
        for output in node.engine.handle(event, &local) {
            match output {
                Output::AskHeads(to) => self.queue.push_back(Msg::Request { from: at, to, fetch: None }),
                Output::Send(to, fetch) => {
                    self.queue.push_back(Msg::Request { from: at, to, fetch: Some(fetch) })
                }
                Output::Strike(..) | Output::OwnLog(_) => {}
            }
        }
    }

    /// A member writes an entry or a vote, if its node may author.
    fn write(&mut self, at: usize) {
        if !self.nodes[at].engine.own_log().may_author() {
            return;
        }
        self.writes += 1;
        let body = {
            let view = self.nodes[at].replica.read_view();
            let others: Vec<RecordId> =
                view.catalog().after(None).filter(|e| e.votes.author() != member(at)).map(|e| e.id).collect();
            if !others.is_empty() && self.rng.random_bool(0.5) {
                let entry = others[self.rng.random_range(0..others.len())];
                let verdict = if self.rng.random_bool(0.5) { Verdict::Confirm } else { Verdict::Dispute };
                Body::Vote(Vote { entry, verdict, reason: None, reviewer: None })
            } else {
                entry_body(self.writes)
            }
        };
        let node = &mut self.nodes[at];
        let Ok(records) = node.replica.author(&key(at), vec![body], 0) else { return };
        node.replica.commit(true).expect("commit");
        self.gossip(at, &records);
    }

    /// Member `author`'s key signs one to three records that extend `at`'s copy of its log —
    /// a second history, unless `at` is the author's own up-to-date node — so forks come
    /// both as single conflicting records and as longer branches.
    fn equivocate(&mut self, at: usize, author: usize) {
        let mut records = Vec::new();
        for _ in 0..self.rng.random_range(1..=3) {
            let head = self.nodes[at].replica.head(&member(author));
            self.writes += 1;
            let record = UnsignedRecord {
                author: member(author),
                seq: head.map_or(1, |h| h.seq + 1),
                prev: head.map_or(RecordId::ZERO, |h| h.id),
                timestamp: 1,
                body: entry_body(self.writes + 1_000_000),
            }
            .sign(&key(author))
            .expect("sign");
            self.receive_gossip(at, None, record.bytes());
            records.push(record);
        }
        self.gossip(at, &records);
    }

    fn gossip(&mut self, from: usize, records: &[Record]) {
        for to in 0..self.nodes.len() {
            if to != from && self.linked(from, to) {
                for r in records {
                    self.queue.push_back(Msg::Gossip { from, to, bytes: r.bytes().to_vec() });
                }
            }
        }
    }

    fn receive_gossip(&mut self, at: usize, from: Option<usize>, bytes: &[u8]) {
        let record = Verified::check(Record::decode(bytes).expect("decodes")).expect("verifies");
        let outcome = self.nodes[at].replica.ingest(record);
        self.nodes[at].replica.commit(false).expect("commit");
        if let (Some(from), Ok(Ingested::Buffered { .. } | Ingested::Conflict { .. })) = (from, outcome) {
            self.event(at, Event::Compare(from));
        }
    }

    /// What node `at` answers to a request.
    fn answer(&self, at: usize, fetch: Option<Fetch>) -> SyncResponse {
        let replica = &self.nodes[at].replica;
        let view = replica.read_view();
        match fetch.map(|f| f.request()) {
            None | Some(SyncRequest::Heads) => SyncResponse::Heads {
                clock: view.clock().clone(),
                epoch: view.manifest().epoch,
                manifest: view.manifest().digest(),
            },
            Some(SyncRequest::Range { author, from_seq, limit }) => {
                let to = view.clock().get(&author).map_or(0, |c| c.seq);
                let bytes = replica
                    .store()
                    .range_bytes(
                        &author,
                        from_seq.max(1),
                        to,
                        limit.min(wire::BATCH) as usize,
                        wire::MAX_RESPONSE_BYTES,
                    )
                    .expect("range");
                SyncResponse::Records(bytes.into_iter().map(ByteBuf::from).collect())
            }
            Some(SyncRequest::Proof { author }) => match view.proofs().get(&author) {
                Some(p) => SyncResponse::Proof(ByteBuf::from(p.encode())),
                None => SyncResponse::Refused("no proof".into()),
            },
        }
    }

    /// Node `at` uses an answer from `peer`, as the network's ingest stages do.
    fn use_answer(&mut self, at: usize, peer: usize, fetch: Option<Fetch>, response: SyncResponse) {
        let (fetch, response) = match (fetch, response) {
            (None, SyncResponse::Heads { clock, .. }) => return self.event(at, Event::Heads(peer, clock)),
            (None, _) => return self.event(at, Event::HeadsFailed(peer)),
            (Some(fetch), response) => (fetch, response),
        };
        let result = match (fetch.purpose, response) {
            (Purpose::CatchUp | Purpose::Search, SyncResponse::Records(records)) => {
                self.event(at, Event::Arrived(peer, fetch, records.len()));
                self.use_range(at, fetch, &records)
            }
            (Purpose::Proof, SyncResponse::Proof(bytes)) => {
                self.event(at, Event::Arrived(peer, fetch, 1));
                match EquivocationProof::decode(&bytes) {
                    Ok(proof) => self.offer(at, proof),
                    Err(e) => FetchResult::Bad(e.to_string()),
                }
            }
            _ => return self.event(at, Event::Failed(peer, fetch)),
        };
        self.event(at, Event::Done(peer, fetch, result));
    }

    fn use_range(&mut self, at: usize, fetch: Fetch, records: &[ByteBuf]) -> FetchResult {
        let decoded = match wire::decode_range(fetch.author, fetch.from_seq, fetch.limit, records) {
            Ok(d) => d,
            Err(e) => return FetchResult::Bad(e.to_string()),
        };
        if fetch.purpose == Purpose::Search {
            let replica = &self.nodes[at].replica;
            return match fork::search(&decoded, |seq| replica.record_at(&fetch.author, seq).ok().flatten()) {
                Search::Found(proof) => self.offer(at, *proof),
                Search::Lower { below } => FetchResult::SearchLower { below },
                Search::Agree => FetchResult::Nothing,
                Search::Bad(reason) => FetchResult::Bad(reason),
            };
        }
        let (verified, error) = verify_run(decoded);
        let replica = &mut self.nodes[at].replica;
        let outcome = replica.ingest_run(verified);
        replica.commit(false).expect("commit");
        outcome.fetch_result(error.map(|e| e.to_string())).expect("the store works")
    }

    fn offer(&mut self, at: usize, proof: EquivocationProof) -> FetchResult {
        let replica = &mut self.nodes[at].replica;
        let taken = replica.offer_proof(proof);
        replica.commit(true).expect("commit");
        if taken { FetchResult::Proven } else { FetchResult::Nothing }
    }

    /// Delivers one message. With `lossy`, it may be lost (a lost request or answer ends as a
    /// failed request, as a libp2p timeout would) or delivered twice.
    fn deliver(&mut self, msg: Msg, lossy: bool) {
        let lost = lossy && self.rng.random_bool(0.1);
        let twice = lossy && !lost && self.rng.random_bool(0.05);
        match msg {
            Msg::Gossip { from, to, bytes } => {
                if !lost && self.linked(from, to) {
                    self.receive_gossip(to, Some(from), &bytes);
                    if twice {
                        self.receive_gossip(to, Some(from), &bytes);
                    }
                }
            }
            Msg::Request { from, to, fetch } => {
                if lost || !self.linked(from, to) {
                    return self.fail(from, to, fetch);
                }
                let response = self.answer(to, fetch);
                self.queue.push_back(Msg::Response { from: to, to: from, fetch, response });
            }
            Msg::Response { from, to, fetch, response } => {
                if lost || !self.linked(from, to) {
                    return self.fail(to, from, fetch);
                }
                if twice {
                    // A duplicated answer reaches the engine as a stale one, which it ignores.
                    self.use_answer(to, from, fetch, response.clone());
                }
                self.use_answer(to, from, fetch, response);
            }
        }
    }

    fn fail(&mut self, at: usize, peer: usize, fetch: Option<Fetch>) {
        match fetch {
            None => self.event(at, Event::HeadsFailed(peer)),
            Some(fetch) => self.event(at, Event::Failed(peer, fetch)),
        }
    }

    fn step(&mut self) {
        let n = self.nodes.len();
        match self.rng.random_range(0..100) {
            0..25 => {
                let at = self.rng.random_range(0..n);
                self.write(at);
            }
            25..30 => {
                let (a, b) = (self.rng.random_range(0..n), self.rng.random_range(0..n));
                if a != b {
                    let up = self.rng.random_bool(0.5);
                    self.link(a.min(b), a.max(b), up);
                }
            }
            30..32 => {
                let (at, author) = (self.rng.random_range(0..n), self.rng.random_range(0..n));
                self.equivocate(at, author);
            }
            32..37 => {
                self.now += Duration::from_secs(1);
                let at = self.rng.random_range(0..n);
                self.event(at, Event::Tick(self.now));
            }
            _ => {
                if !self.queue.is_empty() {
                    // Any message may be next: reordering.
                    let i = self.rng.random_range(0..self.queue.len());
                    if let Some(msg) = self.queue.remove(i) {
                        self.deliver(msg, true);
                    }
                }
            }
        }
    }

    /// Heals every link and runs without loss until nothing is in flight, ticking every node.
    fn settle(&mut self) {
        let n = self.nodes.len();
        for a in 0..n {
            for b in a + 1..n {
                self.link(a, b, true);
            }
        }
        for _ in 0..50 {
            self.now += Duration::from_secs(1);
            for at in 0..n {
                self.event(at, Event::Tick(self.now));
            }
            let mut budget = 200_000;
            while let Some(msg) = self.queue.pop_front() {
                self.deliver(msg, false);
                budget -= 1;
                assert!(budget > 0, "messages never stop");
            }
            if self.converged() {
                return;
            }
        }
    }

    fn converged(&self) -> bool {
        let first = digest(self.nodes[0].replica.read_view().clock());
        self.nodes.iter().all(|node| digest(node.replica.read_view().clock()) == first)
    }

    fn statuses(&self, at: usize) -> BTreeMap<RecordId, Status> {
        let view = self.nodes[at].replica.read_view();
        view.catalog().after(None).map(|e| (e.id, e.votes.status(view.policy(), 0))).collect()
    }
}

fn entry_body(n: u64) -> Body {
    Body::Entry(Entry {
        fingerprints: vec![Fingerprint::new(FingerprintKind::Md5, n.to_be_bytes().repeat(2)).expect("valid")],
        category: "csam".parse().expect("valid"),
        links: vec![],
        note: None,
        expires_at: None,
    })
}

fn run(n: usize, seed: u64, steps: usize) -> Sim {
    let mut sim = Sim::new(n, seed);
    for _ in 0..steps {
        sim.step();
    }
    sim.settle();
    sim
}

fn assert_converged(sim: &Sim) {
    let clocks: Vec<Clock> = sim.nodes.iter().map(|n| n.replica.read_view().clock().clone()).collect();
    for (i, clock) in clocks.iter().enumerate() {
        assert_eq!(clock, &clocks[0], "replica {i}'s clock differs from replica 0's");
    }
    let statuses = sim.statuses(0);
    for i in 1..sim.nodes.len() {
        assert_eq!(sim.statuses(i), statuses, "replica {i} derives other statuses than replica 0");
    }
    for node in &sim.nodes {
        let view = node.replica.read_view();
        assert!(view.buffered() <= MAX_BUFFERED);
        assert!(view.proofs().len() <= sim.nodes.len(), "at most one proof per member");
        assert_eq!(node.engine.fetches(), 0, "no fetch left hanging");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    #[test]
    fn replicas_converge_under_loss_partitions_and_equivocation(n in 3usize..=7, seed in any::<u64>()) {
        let sim = run(n, seed, 400);
        assert_converged(&sim);
    }
}

#[test]
fn a_simulated_federation_writes_and_converges_with_forks() {
    // A fixed seed that is known to exercise writes, votes and forks, so this scenario is
    // always covered whatever proptest draws.
    let sim = run(5, 7, 600);
    assert_converged(&sim);
    let view = sim.nodes[0].replica.read_view();
    assert!(view.records() > 20, "the run wrote records: {}", view.records());
    assert!(!view.proofs().is_empty(), "the run produced a fork");
}
