//! The actioner: makes the platform's systems act on matches, also after the fact.
//!
//! Each match is an event for the configured webhooks, and its entries are remembered as
//! matched by this member. When a matched entry's status later changes — a vote at another
//! node verifies it, a dispute rejects it, its author retracts it, it expires — a
//! `status_changed` event follows, so the platform removes content once an entry is verified
//! and restores it once the entry no longer stands. Events wait in a persistent outbox until
//! each webhook has taken them ([`outbox`]), delivered in order with retries ([`deliver`]).
//!
//! Status changes are found from the writer's announcements of touched entries, and by a
//! sweep over every matched entry each minute (expiry needs no record; an announcement missed
//! while lagging is made up).

mod counters;
mod deliver;
mod outbox;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use hashmesh_protocol::{Action, Category, MemberId, RecordId, Status};
use tokio::sync::broadcast::error::RecvError;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use deliver::signature;

use crate::api::{Event, MatchResult, WebhookEvent, WebhookStatus};
use crate::config::{EventKind, WebhookConfig};
use crate::node::now_ms;
use crate::replica::ReplicaHandle;
use crate::replica::writer::Changed;
use crate::store::{Store, StoreError};
use outbox::Outbox;

/// How often every matched entry is looked at again.
const SWEEP: Duration = Duration::from_secs(60);

/// Events, matched entries and webhooks of one node.
pub struct Actioner {
    me: MemberId,
    outbox: Outbox,
    /// Entry id → the status this member last heard of (`Status::ALL` index).
    matched: sled::Tree,
    /// Day (u32 BE) ‖ category → matches (u64 BE) ‖ removals (u64 BE): this member's daily
    /// counters, published as `stats` records.
    counters: sled::Tree,
    /// Day ‖ category ‖ 0 ‖ follower id → matches ‖ removals: what followers reported.
    followers: sled::Tree,
    hooks: Vec<Hook>,
}

struct Hook {
    config: WebhookConfig,
    /// Its key in the cursor tree.
    key: String,
    state: Mutex<HookState>,
}

#[derive(Default, Clone)]
struct HookState {
    delivered_through: u64,
    failures: u32,
    last_error: Option<String>,
    last_attempt: Option<u64>,
    next_attempt: Option<u64>,
}

impl Hook {
    fn state(&self) -> MutexGuard<'_, HookState> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn failed(&self, why: String, wait: Duration) {
        let mut state = self.state();
        state.failures += 1;
        state.last_error = Some(why);
        state.last_attempt = Some(now_ms());
        state.next_attempt = Some(deliver::retry_at(wait));
    }
}

impl Event {
    fn kind(&self) -> EventKind {
        match self {
            Event::Match { .. } => EventKind::Match,
            Event::StatusChanged { .. } => EventKind::StatusChanged,
        }
    }
}

/// Days since 1970-01-01 (UTC) at `ms`.
pub fn day_of(ms: u64) -> u32 {
    u32::try_from(ms / 86_400_000).unwrap_or(u32::MAX)
}

fn counts_of(bytes: &[u8]) -> (u64, u64) {
    let at = |i: usize| {
        bytes.get(i..i + 8).and_then(|b| <[u8; 8]>::try_from(b).ok()).map_or(0, u64::from_be_bytes)
    };
    (at(0), at(8))
}

fn status_tag(status: Status) -> u8 {
    Status::ALL.iter().position(|s| *s == status).unwrap_or(0) as u8
}

impl Actioner {
    /// Opens the outbox and matched entries in `store`. A webhook seen for the first time
    /// starts with the events made from now on.
    pub fn open(store: &Store, me: MemberId, webhooks: Vec<WebhookConfig>) -> Result<Self, StoreError> {
        let outbox = Outbox::open(store)?;
        let newest = *outbox.newest().borrow();
        let mut hooks = Vec::new();
        for config in webhooks {
            let key = config.url.clone();
            let delivered_through = match outbox.cursor(&key)? {
                Some(held) => held,
                None => {
                    outbox.set_cursor(&key, newest)?;
                    newest
                }
            };
            let state = Mutex::new(HookState { delivered_through, ..HookState::default() });
            hooks.push(Hook { config, key, state });
        }
        Ok(Self {
            me,
            outbox,
            matched: store.local_tree("matched")?,
            counters: store.local_tree("counters")?,
            followers: store.local_tree("follower_counters")?,
            hooks,
        })
    }

    /// Acts on the results of one match request: an event for each fingerprint with hits, its
    /// entries remembered as matched, and the day's counters — each entry the request matched
    /// counts once (a file's several fingerprints, PDQ's variants, hit the same entries), as a
    /// removal if its action is `remove`; allow-list entries are not counted. A storage
    /// failure is logged: the match itself still answers.
    pub fn on_match(&self, results: &[MatchResult]) {
        let mut counted: BTreeMap<RecordId, (&Category, Action)> = BTreeMap::new();
        for hit in results.iter().flat_map(|r| &r.hits).filter(|h| !h.category.is_benign()) {
            counted.insert(hit.entry, (&hit.category, hit.action));
        }
        let day = day_of(now_ms());
        for (category, action) in counted.into_values() {
            if let Err(e) = self.count(day, category, action == Action::Remove) {
                tracing::error!(error = %e, "cannot count a match");
            }
        }
        for result in results.iter().filter(|r| !r.hits.is_empty()) {
            for hit in &result.hits {
                if let Err(e) = self.matched.insert(hit.entry.0, &[status_tag(hit.status)]) {
                    tracing::error!(error = %e, "cannot remember a matched entry");
                }
            }
            let action = result
                .hits
                .iter()
                .map(|h| h.action)
                .min_by_key(|a| crate::node::action_rank(*a))
                .unwrap_or(Action::None);
            self.push(Event::Match { hash: result.hash.clone(), action, hits: result.hits.clone() });
        }
    }

    fn push(&self, event: Event) {
        if !self.hooks.iter().any(|h| h.config.events.contains(&event.kind())) {
            return;
        }
        let made = self.outbox.push(|id| WebhookEvent { id, at: now_ms(), member: self.me, event });
        if let Err(e) = made {
            tracing::error!(error = %e, "cannot store a webhook event");
        }
    }

    /// Looks again at matched entries the commit may have changed, and makes a
    /// `status_changed` event for each whose status moved.
    pub fn on_changed(&self, replica: &ReplicaHandle, changed: &Changed) {
        let ids: Vec<RecordId> = match changed {
            Changed::Entries(ids) => {
                ids.iter().filter(|id| self.matched.contains_key(id.0).unwrap_or(false)).copied().collect()
            }
            Changed::All => self
                .matched
                .iter()
                .keys()
                .filter_map(|k| k.ok().and_then(|k| <[u8; 32]>::try_from(k.as_ref()).ok()).map(RecordId))
                .collect(),
        };
        if ids.is_empty() {
            return;
        }
        let now = now_ms();
        let mut moved = Vec::new();
        {
            let view = replica.view();
            for id in ids {
                let Some(state) = view.catalog().get(&id) else { continue };
                let to = state.votes.status(view.policy(), now);
                let from = match self.matched.get(id.0) {
                    Ok(Some(tag)) => Status::ALL.get(usize::from(tag[0])).copied().unwrap_or(to),
                    _ => continue,
                };
                if from != to {
                    moved.push((id, state.entry.category.clone(), from, to));
                }
            }
        }
        for (entry, category, from, to) in moved {
            // Compare-and-swap: a concurrent match that already recorded `to` wins.
            let swapped =
                self.matched.compare_and_swap(entry.0, Some(&[status_tag(from)]), Some(&[status_tag(to)]));
            if matches!(swapped, Ok(Ok(()))) {
                let action = if category.is_benign() { Action::None } else { to.action() };
                self.push(Event::StatusChanged { entry, category, from, to, action });
            }
        }
    }

    /// Notes that hook `index` took event `id`, and drops events every hook has taken.
    fn delivered(&self, index: usize, id: u64) -> Result<(), StoreError> {
        let hook = &self.hooks[index];
        self.outbox.set_cursor(&hook.key, id)?;
        {
            let mut state = hook.state();
            state.delivered_through = id;
            state.failures = 0;
            state.last_error = None;
            state.last_attempt = Some(now_ms());
            state.next_attempt = None;
        }
        let all = self.hooks.iter().map(|h| h.state().delivered_through).min().unwrap_or(id);
        self.outbox.trim(all)
    }

    /// Every webhook's delivery state.
    pub fn webhooks(&self) -> Vec<WebhookStatus> {
        self.hooks
            .iter()
            .map(|hook| {
                let state = hook.state().clone();
                WebhookStatus {
                    url: hook.config.url.clone(),
                    events: hook.config.events.clone(),
                    delivered_through: state.delivered_through,
                    pending: self.outbox.count_after(state.delivered_through),
                    failures: state.failures,
                    last_error: state.last_error,
                    last_attempt: state.last_attempt,
                    next_attempt: state.next_attempt,
                }
            })
            .collect()
    }

    /// Starts the tasks: one delivering to each webhook, one watching for status changes.
    pub fn spawn(
        self: &Arc<Self>,
        replica: ReplicaHandle,
        cancel: &CancellationToken,
    ) -> Vec<JoinHandle<()>> {
        let mut tasks: Vec<JoinHandle<()>> = (0..self.hooks.len())
            .map(|i| tokio::spawn(deliver::run(Arc::clone(self), i, cancel.clone())))
            .collect();
        let (actioner, cancel) = (Arc::clone(self), cancel.clone());
        tasks.push(tokio::spawn(async move {
            let mut changes = replica.changes();
            let mut sweep = tokio::time::interval(SWEEP);
            loop {
                let changed = tokio::select! {
                    () = cancel.cancelled() => return,
                    got = changes.recv() => match got {
                        Ok(changed) => changed,
                        Err(RecvError::Lagged(_)) => Arc::new(Changed::All),
                        Err(RecvError::Closed) => return,
                    },
                    _ = sweep.tick() => Arc::new(Changed::All),
                };
                let (actioner, replica) = (Arc::clone(&actioner), replica.clone());
                // Reads the store and the view: off the async workers.
                let _ = tokio::task::spawn_blocking(move || actioner.on_changed(&replica, &changed)).await;
            }
        }));
        tasks
    }
}

#[cfg(test)]
mod tests;
