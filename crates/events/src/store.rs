//! The durable part: events accepted and not yet finished, and where each schedule stands.
//! One embedded redb file; every change is one fsynced transaction, so an event is on disk
//! before its sender hears it was accepted, and a schedule's tick and the event it makes are
//! written together (a crash between the two can neither lose the tick nor fire it twice).

use std::path::Path;

use redb::{Database, ReadableDatabase as _, ReadableTable as _, TableDefinition};
use serde::{Deserialize, Serialize};

use crate::Target;

/// The store could not be read or written; nothing was changed.
#[derive(Debug, thiserror::Error)]
#[error("event store: {0}")]
pub struct StoreError(pub String);

fn err(e: impl std::fmt::Display) -> StoreError {
    StoreError(e.to_string())
}

/// Keyed by [`Pending::id`], which sorts by acceptance.
const PENDING: TableDefinition<&str, &[u8]> = TableDefinition::new("pending");
/// Keyed by [`crate::schedules::schedule_key`].
const SCHEDULES: TableDefinition<&str, &[u8]> = TableDefinition::new("schedules");
/// How far each table-stream mapping has read: its key → the last sequence number handled.
const CHECKPOINTS: TableDefinition<&str, u64> = TableDefinition::new("checkpoints");

/// Where an event came from (for logs and metrics).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Source {
    /// An `Event` invocation through the Invoke API.
    Invoke,
    /// A schedule's tick: the schedule's name.
    Schedule(String),
    /// An `onSuccess` / `onFailure` destination record: the function it is about.
    Destination(String),
}

impl Source {
    /// The label metrics and logs use.
    pub fn label(&self) -> &str {
        match self {
            Source::Invoke => "invoke",
            Source::Schedule(_) => "schedule",
            Source::Destination(_) => "destination",
        }
    }
}

/// An accepted asynchronous invocation, until it has succeeded or been given up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pending {
    pub id: String,
    pub target: Target,
    pub payload: String,
    pub source: Source,
    /// Unix milliseconds.
    pub accepted_ms: i64,
    /// Runs that ended in a function error so far.
    pub attempts: u32,
    /// Not to be run before this (Unix milliseconds): the back-off after a failed attempt.
    pub not_before_ms: i64,
}

/// Where one schedule stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScheduleState {
    /// When Sylph first ran it (a rate counts its periods from here).
    pub began_ms: i64,
    /// The last tick fired.
    pub last_tick_ms: Option<i64>,
}

pub struct EventStore {
    db: Database,
}

impl EventStore {
    pub fn open(path: &Path) -> Result<EventStore, StoreError> {
        let db = Database::create(path).map_err(err)?;
        let txn = db.begin_write().map_err(err)?;
        txn.open_table(PENDING).map_err(err)?;
        txn.open_table(SCHEDULES).map_err(err)?;
        txn.open_table(CHECKPOINTS).map_err(err)?;
        txn.commit().map_err(err)?;
        Ok(EventStore { db })
    }

    /// Keep `event` (new, or its attempt count and back-off updated).
    pub fn put(&self, event: &Pending) -> Result<(), StoreError> {
        self.change(&[event], &[], None)
    }

    /// `event` has ended; `then` (a destination's record) takes its place, in one transaction.
    pub fn finish(&self, id: &str, then: Option<&Pending>) -> Result<(), StoreError> {
        self.change(then.as_slice(), &[id], None)
    }

    /// Record a schedule's tick and the event it made, together.
    pub fn tick(&self, schedule: &str, state: ScheduleState, event: Option<&Pending>) -> Result<(), StoreError> {
        self.change(event.as_slice(), &[], Some((schedule, state)))
    }

    fn change(
        &self,
        put: &[&Pending],
        remove: &[&str],
        schedule: Option<(&str, ScheduleState)>,
    ) -> Result<(), StoreError> {
        let txn = self.db.begin_write().map_err(err)?;
        {
            let mut pending = txn.open_table(PENDING).map_err(err)?;
            for event in put {
                let bytes = serde_json::to_vec(event).map_err(err)?;
                pending.insert(event.id.as_str(), bytes.as_slice()).map_err(err)?;
            }
            for id in remove {
                pending.remove(*id).map_err(err)?;
            }
            if let Some((key, state)) = schedule {
                let bytes = serde_json::to_vec(&state).map_err(err)?;
                txn.open_table(SCHEDULES)
                    .map_err(err)?
                    .insert(key, bytes.as_slice())
                    .map_err(err)?;
            }
        }
        txn.commit().map_err(err)
    }

    /// Every event not finished, oldest first.
    pub fn pending(&self) -> Result<Vec<Pending>, StoreError> {
        let txn = self.db.begin_read().map_err(err)?;
        let t = txn.open_table(PENDING).map_err(err)?;
        let mut out = Vec::new();
        for entry in t.iter().map_err(err)? {
            let (_, v) = entry.map_err(err)?;
            // One unreadable record (written by a newer Sylph?) must not stop the others.
            match serde_json::from_slice(v.value()) {
                Ok(event) => out.push(event),
                Err(e) => tracing::error!("skipping an unreadable queued event: {e}"),
            }
        }
        Ok(out)
    }

    /// Where a stream mapping stands, if it has started.
    pub fn checkpoint(&self, mapping: &str) -> Result<Option<u64>, StoreError> {
        let txn = self.db.begin_read().map_err(err)?;
        let t = txn.open_table(CHECKPOINTS).map_err(err)?;
        Ok(t.get(mapping).map_err(err)?.map(|v| v.value()))
    }

    pub fn set_checkpoint(&self, mapping: &str, position: u64) -> Result<(), StoreError> {
        let txn = self.db.begin_write().map_err(err)?;
        txn.open_table(CHECKPOINTS)
            .map_err(err)?
            .insert(mapping, position)
            .map_err(err)?;
        txn.commit().map_err(err)
    }

    pub fn schedule_state(&self, schedule: &str) -> Result<Option<ScheduleState>, StoreError> {
        let txn = self.db.begin_read().map_err(err)?;
        let t = txn.open_table(SCHEDULES).map_err(err)?;
        let Some(v) = t.get(schedule).map_err(err)? else {
            return Ok(None);
        };
        serde_json::from_slice(v.value()).map(Some).map_err(err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(id: &str) -> Pending {
        Pending {
            id: id.into(),
            target: Target {
                service: "svc".into(),
                stage: "dev".into(),
                function: "svc-dev-f".into(),
                version: Some(3),
            },
            payload: "{}".into(),
            source: Source::Invoke,
            accepted_ms: 1,
            attempts: 0,
            not_before_ms: 1,
        }
    }

    #[test]
    fn events_and_ticks_survive_a_reopen() {
        let dir = std::env::temp_dir().join(format!("sylph-events-store-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("events.redb");
        {
            let store = EventStore::open(&path).unwrap();
            store.put(&event("a")).unwrap();
            store.put(&event("b")).unwrap();
            let mut retried = event("a");
            retried.attempts = 1;
            store.put(&retried).unwrap();
            // b ends, and its destination record c takes its place.
            store.finish("b", Some(&event("c"))).unwrap();
            let state = ScheduleState {
                began_ms: 10,
                last_tick_ms: Some(20),
            };
            store.tick("svc/dev/nightly", state, Some(&event("d"))).unwrap();
        }
        let store = EventStore::open(&path).unwrap();
        let pending = store.pending().unwrap();
        let ids: Vec<(&str, u32)> = pending.iter().map(|e| (e.id.as_str(), e.attempts)).collect();
        assert_eq!(ids, [("a", 1), ("c", 0), ("d", 0)]);
        assert_eq!(
            store.schedule_state("svc/dev/nightly").unwrap().unwrap().last_tick_ms,
            Some(20)
        );
        assert_eq!(store.schedule_state("svc/dev/other").unwrap(), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
