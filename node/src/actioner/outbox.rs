//! The outbox: webhook events in the node's store, numbered in the order they were made, kept
//! until every webhook has taken them; and each webhook's cursor (the last event it took).
//! Both survive restarts, so no event is lost while the node or a receiver is down.

use std::sync::Mutex;

use tokio::sync::watch;

use crate::api::WebhookEvent;
use crate::store::{Store, StoreError};

pub(super) struct Outbox {
    events: sled::Tree,
    cursors: sled::Tree,
    /// The id the next event gets, held while it is stored so ids appear in order: a reader
    /// that has seen id n never later finds an id below n appear.
    next: Mutex<u64>,
    /// The id of the newest event stored.
    newest: watch::Sender<u64>,
}

impl Outbox {
    pub(super) fn open(store: &Store) -> Result<Self, StoreError> {
        let events = store.local_tree("outbox")?;
        let cursors = store.local_tree("webhook_cursors")?;
        let last = match events.last()? {
            Some((key, _)) => id_of(&key),
            // An empty outbox after deliveries: ids go on from the furthest cursor.
            None => cursors.iter().values().filter_map(Result::ok).map(|v| id_of(&v)).max().unwrap_or(0),
        };
        Ok(Self { events, cursors, next: Mutex::new(last + 1), newest: watch::channel(last).0 })
    }

    /// Stores an event made by `make` from its id.
    pub(super) fn push(&self, make: impl FnOnce(u64) -> WebhookEvent) -> Result<u64, StoreError> {
        let mut next = self.next.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let id = *next;
        let event = make(id);
        let bytes = serde_json::to_vec(&event).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        self.events.insert(id.to_be_bytes(), bytes)?;
        *next += 1;
        drop(next);
        self.newest.send_replace(id);
        Ok(id)
    }

    /// The first event after `id`.
    pub(super) fn after(&self, id: u64) -> Result<Option<(u64, Vec<u8>)>, StoreError> {
        Ok(self
            .events
            .range((id + 1).to_be_bytes()..)
            .next()
            .transpose()?
            .map(|(k, v)| (id_of(&k), v.to_vec())))
    }

    /// Events after `id`.
    pub(super) fn count_after(&self, id: u64) -> u64 {
        self.events.range((id + 1).to_be_bytes()..).count() as u64
    }

    /// News of each event stored.
    pub(super) fn newest(&self) -> watch::Receiver<u64> {
        self.newest.subscribe()
    }

    /// The last event `hook` took; `None` for a hook never seen.
    pub(super) fn cursor(&self, hook: &str) -> Result<Option<u64>, StoreError> {
        Ok(self.cursors.get(hook)?.map(|v| id_of(&v)))
    }

    pub(super) fn set_cursor(&self, hook: &str, id: u64) -> Result<(), StoreError> {
        self.cursors.insert(hook, &id.to_be_bytes())?;
        Ok(())
    }

    /// Drops the events up to `id`, which every webhook has taken.
    pub(super) fn trim(&self, id: u64) -> Result<(), StoreError> {
        for key in self.events.range(..=id.to_be_bytes()).keys() {
            self.events.remove(key?)?;
        }
        Ok(())
    }
}

fn id_of(bytes: &[u8]) -> u64 {
    bytes.try_into().map_or(0, u64::from_be_bytes)
}
