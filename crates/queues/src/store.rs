//! Queues and messages on disk: one redb file, written by one thread that commits whatever
//! changes are waiting in one fsynced transaction (group commit), so that many senders share
//! each fsync. A change is acknowledged only once its transaction has committed.

use std::path::Path;
use std::sync::mpsc;

use redb::{Database, ReadableDatabase as _, ReadableTable as _, TableDefinition};

/// The store failed; the change was not made durable.
#[derive(Debug, Clone, thiserror::Error)]
#[error("queue store: {0}")]
pub struct StoreError(pub String);

fn err(e: impl std::fmt::Display) -> StoreError {
    StoreError(e.to_string())
}

/// Queue name → its description (JSON).
const QUEUES: TableDefinition<&str, &[u8]> = TableDefinition::new("queues");
/// `{queue}\0{sequence:020}` → message (JSON).
const MESSAGES: TableDefinition<&str, &[u8]> = TableDefinition::new("messages");
/// `{queue}\0{deduplication id}` → when the id may be used again, Unix ms (FIFO queues).
const DEDUP: TableDefinition<&str, u64> = TableDefinition::new("dedup");

/// One change.
#[derive(Debug)]
pub enum Write {
    Queue(String, Vec<u8>),
    /// The queue, its messages and its deduplication ids.
    DropQueue(String),
    /// Every message of the queue (PurgeQueue).
    Purge(String),
    Message(String, Vec<u8>),
    DropMessage(String),
    Dedup(String, u64),
    DropDedup(String),
}

pub fn message_key(queue: &str, seq: u64) -> String {
    format!("{queue}\0{seq:020}")
}

pub fn dedup_key(queue: &str, id: &str) -> String {
    format!("{queue}\0{id}")
}

type Job = (Vec<Write>, tokio::sync::oneshot::Sender<Result<(), StoreError>>);

/// What was on disk at open.
pub struct Loaded {
    pub queues: Vec<Vec<u8>>,
    /// (queue, message JSON), in key order (so by sequence within a queue).
    pub messages: Vec<(String, Vec<u8>)>,
    pub dedup: Vec<(String, String, u64)>,
}

pub struct Store {
    jobs: mpsc::Sender<Job>,
}

impl Store {
    pub fn open(path: &Path) -> Result<(Store, Loaded), StoreError> {
        let db = Database::create(path).map_err(err)?;
        let txn = db.begin_write().map_err(err)?;
        txn.open_table(QUEUES).map_err(err)?;
        txn.open_table(MESSAGES).map_err(err)?;
        txn.open_table(DEDUP).map_err(err)?;
        txn.commit().map_err(err)?;
        let loaded = load(&db)?;
        let (jobs, rx) = mpsc::channel::<Job>();
        let path = path.to_owned();
        std::thread::Builder::new()
            .name("sylph-queues-writer".into())
            .spawn(move || writer(db, &path, rx))
            .map_err(err)?;
        Ok((Store { jobs }, loaded))
    }

    /// Queue `writes` for the next commit; the receiver says when they are durable. Call it in
    /// the order the changes were made in memory (under the queue's lock).
    pub fn submit(&self, writes: Vec<Write>) -> tokio::sync::oneshot::Receiver<Result<(), StoreError>> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        if writes.is_empty() {
            let _ = tx.send(Ok(()));
        } else if let Err(mpsc::SendError((_, tx))) = self.jobs.send((writes, tx)) {
            let _ = tx.send(Err(StoreError("the writer has stopped".into())));
        }
        rx
    }
}

fn load(db: &Database) -> Result<Loaded, StoreError> {
    let txn = db.begin_read().map_err(err)?;
    let mut out = Loaded {
        queues: Vec::new(),
        messages: Vec::new(),
        dedup: Vec::new(),
    };
    for entry in txn.open_table(QUEUES).map_err(err)?.iter().map_err(err)? {
        let (_, v) = entry.map_err(err)?;
        out.queues.push(v.value().to_vec());
    }
    for entry in txn.open_table(MESSAGES).map_err(err)?.iter().map_err(err)? {
        let (k, v) = entry.map_err(err)?;
        let queue = k.value().split('\0').next().unwrap_or_default().to_owned();
        out.messages.push((queue, v.value().to_vec()));
    }
    for entry in txn.open_table(DEDUP).map_err(err)?.iter().map_err(err)? {
        let (k, v) = entry.map_err(err)?;
        if let Some((queue, id)) = k.value().split_once('\0') {
            out.dedup.push((queue.to_owned(), id.to_owned(), v.value()));
        }
    }
    Ok(out)
}

fn writer(mut db: Database, path: &Path, rx: mpsc::Receiver<Job>) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while let Ok(more) = rx.try_recv() {
            batch.push(more);
            if batch.len() >= 512 {
                break;
            }
        }
        let result = commit(&db, batch.iter().flat_map(|(w, _)| w.iter()));
        if let Err(e) = &result {
            tracing::error!("{e}");
            // redb refuses everything after an I/O error until it is reopened.
            drop(db);
            db = match Database::create(path) {
                Ok(d) => d,
                Err(e) => {
                    tracing::error!("cannot reopen the queue store: {e}");
                    for (_, tx) in batch {
                        let _ = tx.send(Err(StoreError(e.to_string())));
                    }
                    return;
                }
            };
        }
        for (_, tx) in batch {
            let _ = tx.send(result.clone());
        }
    }
}

fn commit<'a>(db: &Database, writes: impl Iterator<Item = &'a Write>) -> Result<(), StoreError> {
    let txn = db.begin_write().map_err(err)?;
    {
        let mut queues = txn.open_table(QUEUES).map_err(err)?;
        let mut messages = txn.open_table(MESSAGES).map_err(err)?;
        let mut dedup = txn.open_table(DEDUP).map_err(err)?;
        for w in writes {
            match w {
                Write::Queue(name, bytes) => {
                    queues.insert(name.as_str(), bytes.as_slice()).map_err(err)?;
                }
                Write::DropQueue(name) => {
                    queues.remove(name.as_str()).map_err(err)?;
                    let (from, to) = (format!("{name}\0"), format!("{name}\u{1}"));
                    messages
                        .retain_in(from.as_str()..to.as_str(), |_, _| false)
                        .map_err(err)?;
                    dedup.retain_in(from.as_str()..to.as_str(), |_, _| false).map_err(err)?;
                }
                Write::Purge(name) => {
                    let (from, to) = (format!("{name}\0"), format!("{name}\u{1}"));
                    messages
                        .retain_in(from.as_str()..to.as_str(), |_, _| false)
                        .map_err(err)?;
                }
                Write::Message(key, bytes) => {
                    messages.insert(key.as_str(), bytes.as_slice()).map_err(err)?;
                }
                Write::DropMessage(key) => {
                    messages.remove(key.as_str()).map_err(err)?;
                }
                Write::Dedup(key, until) => {
                    dedup.insert(key.as_str(), *until).map_err(err)?;
                }
                Write::DropDedup(key) => {
                    dedup.remove(key.as_str()).map_err(err)?;
                }
            }
        }
    }
    txn.commit().map_err(err)
}
