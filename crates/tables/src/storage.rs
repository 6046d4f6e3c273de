//! The storage boundary: an ordered, durable key-value store with atomic write batches.
//!
//! The table service needs only point reads, ordered range scans and atomic batches of puts and
//! deletes, so that is all the trait asks for; a PostgreSQL backend can implement the same four
//! calls. [`Redb`] is the embedded engine (see docs/STORAGE.md for why redb and its figures).

use std::ops::Bound;
use std::path::Path;

use redb::{Database, Durability, ReadableDatabase, ReadableTable, TableDefinition};

#[derive(Debug, thiserror::Error)]
#[error("storage: {0}")]
pub struct StorageError(pub String);

fn err(e: impl std::fmt::Display) -> StorageError {
    StorageError(e.to_string())
}

/// Called for each entry of a scan; return `false` to stop.
pub type Visit<'a> = &'a mut dyn FnMut(&[u8], &[u8]) -> bool;

/// Reads, inside or outside a write batch.
pub trait Read {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError>;
    /// Visit entries in `(start, end)` in key order (or reverse order).
    fn scan(&self, start: Bound<&[u8]>, end: Bound<&[u8]>, reverse: bool, visit: Visit<'_>)
        -> Result<(), StorageError>;
}

/// A batch being written: reads see the batch's own writes.
pub trait Batch: Read {
    fn put(&mut self, key: &[u8], value: &[u8]) -> Result<(), StorageError>;
    fn delete(&mut self, key: &[u8]) -> Result<(), StorageError>;
}

pub trait Storage: Read + Send + Sync + 'static {
    /// A consistent view of the last committed state, for multi-step reads.
    fn snapshot(&self) -> Result<Box<dyn Read + '_>, StorageError>;

    /// Run `f` on a new batch and commit it durably (fsync) if `f` returns `Ok`; nothing of it
    /// is applied otherwise. Returns once the batch is on disk.
    fn write(&self, f: &mut dyn FnMut(&mut dyn Batch) -> Result<(), StorageError>) -> Result<(), StorageError>;

    /// Get back to a working state after a failed write (a full disk, an I/O error), keeping
    /// everything committed before it. Called by the writer before the next batch.
    fn recover(&self) -> Result<(), StorageError> {
        Ok(())
    }
}

const KV: TableDefinition<&[u8], &[u8]> = TableDefinition::new("kv");

/// redb: a copy-on-write B-tree in one file, with checksummed, fsynced commits.
pub struct Redb {
    /// Replaced when the database is reopened after an I/O error: redb refuses every operation
    /// after one (`PreviousIo`) until it is reopened, so without this a full disk kept every
    /// write failing after space was freed, until Sylph was restarted.
    /// `None` while a reopen has failed (the next recovery tries again).
    db: std::sync::RwLock<Option<std::sync::Arc<Database>>>,
    path: std::path::PathBuf,
}

impl Redb {
    pub fn open(dir: &Path) -> Result<Redb, StorageError> {
        std::fs::create_dir_all(dir).map_err(err)?;
        let path = dir.join("tables.redb");
        let db = Self::open_file(&path)?;
        Ok(Redb {
            db: std::sync::RwLock::new(Some(std::sync::Arc::new(db))),
            path,
        })
    }

    fn open_file(path: &Path) -> Result<Database, StorageError> {
        let db = Database::create(path).map_err(err)?;
        // Make sure the table exists so that reads never fail on a fresh database; an existing
        // one is not written to (a reopen on a still-full disk must keep reads working).
        let exists = db.begin_read().ok().is_some_and(|t| t.open_table(KV).is_ok());
        if !exists {
            let txn = db.begin_write().map_err(err)?;
            txn.open_table(KV).map_err(err)?;
            txn.commit().map_err(err)?;
        }
        Ok(db)
    }

    fn database(&self) -> Result<std::sync::Arc<Database>, StorageError> {
        self.db
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .ok_or_else(|| StorageError("the database could not be reopened after a write error".into()))
    }
}

fn scan_table<T: ReadableTable<&'static [u8], &'static [u8]>>(
    table: &T,
    start: Bound<&[u8]>,
    end: Bound<&[u8]>,
    reverse: bool,
    visit: Visit<'_>,
) -> Result<(), StorageError> {
    let range = table.range::<&[u8]>((start, end)).map_err(err)?;
    let mut step = |entry: Result<(redb::AccessGuard<'_, &[u8]>, redb::AccessGuard<'_, &[u8]>), redb::StorageError>| {
        let (k, v) = entry.map_err(err)?;
        Ok::<bool, StorageError>(visit(k.value(), v.value()))
    };
    if reverse {
        for entry in range.rev() {
            if !step(entry)? {
                break;
            }
        }
    } else {
        for entry in range {
            if !step(entry)? {
                break;
            }
        }
    }
    Ok(())
}

impl Redb {
    /// The last committed state, on the stack (no allocation for a single read).
    fn view(&self) -> Result<TableView<redb::ReadOnlyTable<&'static [u8], &'static [u8]>>, StorageError> {
        let txn = self.database()?.begin_read().map_err(err)?;
        Ok(TableView(txn.open_table(KV).map_err(err)?))
    }
}

impl Read for Redb {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        self.view()?.get(key)
    }

    fn scan(
        &self,
        start: Bound<&[u8]>,
        end: Bound<&[u8]>,
        reverse: bool,
        visit: Visit<'_>,
    ) -> Result<(), StorageError> {
        self.view()?.scan(start, end, reverse, visit)
    }
}

/// A redb table, read-only (a snapshot) or being written (a batch): both read the same way.
struct TableView<T>(T);

impl<T: ReadableTable<&'static [u8], &'static [u8]>> Read for TableView<T> {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        Ok(self.0.get(key).map_err(err)?.map(|v| v.value().to_vec()))
    }

    fn scan(
        &self,
        start: Bound<&[u8]>,
        end: Bound<&[u8]>,
        reverse: bool,
        visit: Visit<'_>,
    ) -> Result<(), StorageError> {
        scan_table(&self.0, start, end, reverse, visit)
    }
}

type RedbBatch<'t> = TableView<redb::Table<'t, &'static [u8], &'static [u8]>>;

impl Batch for RedbBatch<'_> {
    fn put(&mut self, key: &[u8], value: &[u8]) -> Result<(), StorageError> {
        self.0.insert(key, value).map_err(err)?;
        Ok(())
    }

    fn delete(&mut self, key: &[u8]) -> Result<(), StorageError> {
        self.0.remove(key).map_err(err)?;
        Ok(())
    }
}

impl Storage for Redb {
    fn snapshot(&self) -> Result<Box<dyn Read + '_>, StorageError> {
        Ok(Box::new(self.view()?))
    }

    fn write(&self, f: &mut dyn FnMut(&mut dyn Batch) -> Result<(), StorageError>) -> Result<(), StorageError> {
        let db = self.database()?;
        let mut txn = db.begin_write().map_err(err)?;
        txn.set_durability(Durability::Immediate).map_err(err)?;
        {
            let table = txn.open_table(KV).map_err(err)?;
            let mut batch: RedbBatch<'_> = TableView(table);
            if let Err(e) = f(&mut batch) {
                drop(batch);
                let _ = txn.abort();
                return Err(e);
            }
        }
        txn.commit().map_err(err)?;
        Ok(())
    }

    fn recover(&self) -> Result<(), StorageError> {
        // Holding the write lock, nobody takes a new handle; readers let go of theirs within
        // one request. The file lock lasts as long as any handle, so wait for the last one.
        let mut slot = self.db.write().unwrap_or_else(|e| e.into_inner());
        if let Some(old) = slot.take() {
            // Readers wait on this lock meanwhile: keep it short, a failed reopen is retried.
            let mut waited = 0;
            while std::sync::Arc::strong_count(&old) > 1 && waited < 20 {
                std::thread::sleep(std::time::Duration::from_millis(5));
                waited += 1;
            }
            drop(old);
        }
        let db = Self::open_file(&self.path)?;
        *slot = Some(std::sync::Arc::new(db));
        Ok(())
    }
}
