//! The one writer: every write runs on one thread, as a closure inside a storage batch that
//! groups whatever writes are waiting (group commit), so concurrent writers share one fsync
//! while every acknowledged write is on disk. Each write closure checks everything (conditions,
//! the table's identity) before it changes anything, so a failed operation leaves no trace in
//! the batch it shares with others.
//!
//! Also here: what every item write does besides storing the item (index and TTL entries,
//! stream records, statistics), so no operation can forget one of them.

use std::collections::HashMap;
use std::ops::Bound;
use std::sync::Arc;

use serde_json::Value as Json;
use tokio::sync::oneshot;

use crate::catalog::TableMeta;
use crate::codec::{decode_identity, encode_item, id_key, read_item};
use crate::error::{DbError, ErrorKind};
use crate::expr::{self, Condition};
use crate::stats::{self, TableStats};
use crate::storage::{Batch, Read, Storage, StorageError};
use crate::value::{item_to_json, Item};

/// A unit of work for the writer: reads and writes through the group's transaction, returns
/// the response. The outer error (storage) fails the whole group; the inner one answers this
/// request only.
pub(crate) type WriteOp = Box<dyn FnOnce(&mut Tx<'_>) -> Result<Result<Json, DbError>, StorageError> + Send>;

/// One group's storage batch, and the table statistics its writes changed. Each table's
/// statistics record is read once per group and written once, when the group ends, instead of
/// by every write (a group holds up to [`MAX_GROUP`] writes, often to one table).
pub(crate) struct Tx<'b> {
    batch: &'b mut dyn Batch,
    stats: HashMap<u32, TableStats>,
}

impl<'b> Tx<'b> {
    fn new(batch: &'b mut dyn Batch) -> Tx<'b> {
        Tx {
            batch,
            stats: HashMap::new(),
        }
    }

    /// The table's statistics as this group has them so far.
    pub fn stats_mut(&mut self, meta: &TableMeta) -> Result<&mut TableStats, StorageError> {
        if !self.stats.contains_key(&meta.id) {
            let current = stats::read(&*self.batch, meta)?;
            self.stats.insert(meta.id, current);
        }
        Ok(self.stats.entry(meta.id).or_default())
    }

    /// Replace the table's statistics (a new table, a recount).
    pub fn set_stats(&mut self, meta: &TableMeta, counted: TableStats) {
        self.stats.insert(meta.id, counted);
    }

    /// Drop the table's statistics with the table.
    pub fn forget_stats(&mut self, meta: &TableMeta) -> Result<(), StorageError> {
        self.stats.remove(&meta.id);
        self.batch.delete(&stats::key(meta.id))
    }

    /// Write the statistics the group changed, once per table.
    fn finish(self) -> Result<(), StorageError> {
        for (id, counted) in &self.stats {
            self.batch.put(&stats::key(*id), &counted.encode())?;
        }
        Ok(())
    }
}

impl Read for Tx<'_> {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        self.batch.get(key)
    }

    fn scan(
        &self,
        start: Bound<&[u8]>,
        end: Bound<&[u8]>,
        reverse: bool,
        visit: crate::storage::Visit<'_>,
    ) -> Result<(), StorageError> {
        self.batch.scan(start, end, reverse, visit)
    }
}

impl Batch for Tx<'_> {
    fn put(&mut self, key: &[u8], value: &[u8]) -> Result<(), StorageError> {
        self.batch.put(key, value)
    }

    fn delete(&mut self, key: &[u8]) -> Result<(), StorageError> {
        self.batch.delete(key)
    }
}

struct Job {
    op: WriteOp,
    reply: oneshot::Sender<Result<Json, DbError>>,
}

/// The most writes committed together.
const MAX_GROUP: usize = 1024;

/// The handle to the writer thread (which ends when the last handle is dropped).
pub(crate) struct Writer {
    jobs: std::sync::mpsc::Sender<Job>,
}

impl Writer {
    /// Start the writer thread; `committed` is woken after each committed batch.
    pub fn start(storage: Arc<dyn Storage>, committed: Arc<tokio::sync::Notify>) -> Result<Writer, StorageError> {
        let (jobs, rx) = std::sync::mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("sylph-tables-writer".into())
            .spawn(move || writer_loop(storage, rx, &committed))
            .map_err(|e| StorageError(e.to_string()))?;
        Ok(Writer { jobs })
    }

    /// Run `op` in the next group and wait until it is committed (or refused).
    pub async fn write(&self, op: WriteOp) -> Result<Json, DbError> {
        let (reply, rx) = oneshot::channel();
        self.jobs
            .send(Job { op, reply })
            .map_err(|_| DbError::internal("the writer has stopped"))?;
        rx.await.map_err(|_| DbError::internal("the writer has stopped"))?
    }
}

/// Write (or delete, with `new == None`) an item and keep its index, TTL and statistics
/// entries and its stream in step.
pub(crate) fn write_item(
    b: &mut Tx<'_>,
    meta: &TableMeta,
    old: Option<&Item>,
    new: Option<&Item>,
) -> Result<(), StorageError> {
    write_item_by(b, meta, old, new, None, crate::stream::Cause::Caller)
}

/// [`write_item`], with the new item's stored bytes when the caller encoded them already
/// (off the writer thread), and what made the change.
pub(crate) fn write_item_by(
    b: &mut Tx<'_>,
    meta: &TableMeta,
    old: Option<&Item>,
    new: Option<&Item>,
    new_bytes: Option<&[u8]>,
    cause: crate::stream::Cause,
) -> Result<(), StorageError> {
    crate::stream::record(b, meta, old, new, cause)?;
    stats::record_write(b, meta, old, new)?;
    if let Some(old) = old {
        for index in &meta.indexes {
            if let Some(k) = meta.index_key(index, old) {
                b.delete(&k)?;
            }
        }
        if let Some(k) = meta.ttl_key(old) {
            b.delete(&k)?;
        }
    }
    match new {
        Some(item) => {
            match new_bytes {
                Some(bytes) => b.put(&meta.item_key(item), bytes)?,
                None => b.put(&meta.item_key(item), &encode_item(item))?,
            }
            if !meta.indexes.is_empty() {
                let key_json = serde_json::to_vec(&item_to_json(&meta.key_of(item))).unwrap_or_default();
                for index in &meta.indexes {
                    if let Some(k) = meta.index_key(index, item) {
                        b.put(&k, &key_json)?;
                    }
                }
            }
            if let Some(k) = meta.ttl_key(item) {
                b.put(&k, &[])?;
            }
        }
        None => {
            if let Some(old) = old {
                b.delete(&meta.item_key(old))?;
            }
        }
    }
    Ok(())
}

/// Fails (without a storage error) if the table was deleted or re-created since `meta` was read
/// (ResourceNotFound), or its description changed (TableChanged: the request runs again).
pub(crate) fn same_table(b: &dyn Batch, meta: &TableMeta) -> Result<Result<(), DbError>, StorageError> {
    // 8 bytes per table keep this check cheap on every write.
    let stored = b.get(&id_key(&meta.name))?;
    Ok(match stored.as_deref().and_then(decode_identity) {
        Some((id, version)) if id == meta.id => {
            if version == meta.version {
                Ok(())
            } else {
                Err(DbError::new(
                    ErrorKind::TableChanged,
                    "The table's description changed while the request ran; send it again",
                ))
            }
        }
        _ => Err(DbError::not_found()),
    })
}

/// In a write: the table is still the one the request saw, and the item's current state passes
/// the condition. Returns the current item.
pub(crate) fn checked_old(
    b: &dyn Batch,
    meta: &TableMeta,
    key: &Item,
    cond: Option<&Condition>,
    old_on_fail: bool,
) -> Result<Result<Option<Item>, DbError>, StorageError> {
    if let Err(e) = same_table(b, meta)? {
        return Ok(Err(e));
    }
    let old = read_item(b, meta, key)?;
    if let Some(c) = cond {
        if !expr::matches(c, old.as_ref().unwrap_or(&Item::new())) {
            return Ok(Err(condition_error(old.as_ref(), old_on_fail)));
        }
    }
    Ok(Ok(old))
}

pub(crate) fn condition_error(old: Option<&Item>, return_old: bool) -> DbError {
    let e = DbError::condition_failed();
    match (return_old, old) {
        (true, Some(old)) => e.with("Item", item_to_json(old)),
        _ => e,
    }
}

fn writer_loop(storage: Arc<dyn Storage>, rx: std::sync::mpsc::Receiver<Job>, committed: &tokio::sync::Notify) {
    // Set after a failed batch: the storage is brought back (reopened) before the next one,
    // so a write after space returns succeeds without a restart.
    let mut needs_recovery = false;
    loop {
        // While the store needs reopening, try again every second even with no write waiting,
        // so that reads come back too.
        let first = if needs_recovery {
            match rx.recv_timeout(std::time::Duration::from_secs(1)) {
                Ok(job) => Some(job),
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => None,
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => return,
            }
        } else {
            match rx.recv() {
                Ok(job) => Some(job),
                Err(_) => return,
            }
        };
        if needs_recovery {
            match storage.recover() {
                Ok(()) => {
                    tracing::info!("table storage reopened after the earlier write error");
                    needs_recovery = false;
                }
                Err(e) => tracing::error!("table storage cannot be reopened yet: {e}"),
            }
        }
        let Some(first) = first else { continue };
        let mut jobs = vec![first];
        while jobs.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(j) => jobs.push(j),
                Err(_) => break,
            }
        }
        let mut ops: Vec<Option<WriteOp>> = Vec::with_capacity(jobs.len());
        let mut replies = Vec::with_capacity(jobs.len());
        for j in jobs {
            ops.push(Some(j.op));
            replies.push(j.reply);
        }
        let mut results: Vec<Option<Result<Json, DbError>>> = (0..ops.len()).map(|_| None).collect();
        let outcome = storage.write(&mut |b| {
            let mut tx = Tx::new(b);
            for (i, op) in ops.iter_mut().enumerate() {
                if let Some(op) = op.take() {
                    results[i] = Some(op(&mut tx)?);
                }
            }
            tx.finish()
        });
        match outcome {
            Ok(()) => {
                for (reply, result) in replies.into_iter().zip(results) {
                    let _ = reply.send(result.unwrap_or_else(|| Err(DbError::internal("write was not run"))));
                }
                committed.notify_waiters();
            }
            Err(e) => {
                tracing::error!("write batch failed: {e}");
                // Reopen now, so reads work again at once; if that fails too, retry before the
                // next batch.
                needs_recovery = storage.recover().is_err();
                // Say what happened (a full disk, most often), and that nothing was applied.
                let message = format!("The write was not applied: {e}");
                for reply in replies {
                    let _ = reply.send(Err(DbError::internal(message.clone())));
                }
            }
        }
    }
}
