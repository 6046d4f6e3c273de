//! `sylph-bench storage`: the storage engine candidates for the table service, measured on the
//! operations it needs — durable (fsynced) commits of one write and of a group of 64, point reads
//! and short ordered range scans — on this machine's disk.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context as _;

const VALUE: &[u8] = &[b'x'; 200];

fn key(i: u64) -> [u8; 12] {
    let mut k = [0u8; 12];
    k[..4].copy_from_slice(b"d\0\0\x01");
    k[4..].copy_from_slice(&i.to_be_bytes());
    k
}

trait Engine {
    fn name(&self) -> &'static str;
    /// Write `keys` in one durable commit.
    fn commit(&mut self, keys: std::ops::Range<u64>) -> anyhow::Result<()>;
    fn get(&mut self, i: u64) -> anyhow::Result<bool>;
    fn scan10(&mut self, from: u64) -> anyhow::Result<usize>;
}

struct RedbEngine(redb::Database);
const T: redb::TableDefinition<&[u8], &[u8]> = redb::TableDefinition::new("kv");

impl Engine for RedbEngine {
    fn name(&self) -> &'static str {
        "redb 4 (Durability::Immediate)"
    }
    fn commit(&mut self, keys: std::ops::Range<u64>) -> anyhow::Result<()> {
        let txn = self.0.begin_write()?;
        {
            let mut t = txn.open_table(T)?;
            for i in keys {
                t.insert(key(i).as_slice(), VALUE)?;
            }
        }
        txn.commit()?;
        Ok(())
    }
    fn get(&mut self, i: u64) -> anyhow::Result<bool> {
        use redb::ReadableDatabase as _;
        let txn = self.0.begin_read()?;
        let t = txn.open_table(T)?;
        Ok(t.get(key(i).as_slice())?.is_some())
    }
    fn scan10(&mut self, from: u64) -> anyhow::Result<usize> {
        use redb::ReadableDatabase as _;
        let txn = self.0.begin_read()?;
        let t = txn.open_table(T)?;
        let start = key(from);
        Ok(t.range::<&[u8]>(start.as_slice()..)?.take(10).count())
    }
}

struct SqliteEngine(rusqlite::Connection);

impl Engine for SqliteEngine {
    fn name(&self) -> &'static str {
        "SQLite (WAL, synchronous=FULL)"
    }
    fn commit(&mut self, keys: std::ops::Range<u64>) -> anyhow::Result<()> {
        let txn = self.0.transaction()?;
        {
            let mut st = txn.prepare_cached("INSERT OR REPLACE INTO kv (k, v) VALUES (?1, ?2)")?;
            for i in keys {
                st.execute(rusqlite::params![key(i).as_slice(), VALUE])?;
            }
        }
        txn.commit()?;
        Ok(())
    }
    fn get(&mut self, i: u64) -> anyhow::Result<bool> {
        let mut st = self.0.prepare_cached("SELECT v FROM kv WHERE k = ?1")?;
        Ok(st.exists([key(i).as_slice()])?)
    }
    fn scan10(&mut self, from: u64) -> anyhow::Result<usize> {
        let mut st = self
            .0
            .prepare_cached("SELECT k, v FROM kv WHERE k >= ?1 ORDER BY k LIMIT 10")?;
        let rows = st.query_map([key(from).as_slice()], |_| Ok(()))?;
        Ok(rows.count())
    }
}

fn open_redb(dir: &Path) -> anyhow::Result<Box<dyn Engine>> {
    let db = redb::Database::create(dir.join("bench.redb"))?;
    let txn = db.begin_write()?;
    txn.open_table(T)?;
    txn.commit()?;
    Ok(Box::new(RedbEngine(db)))
}

fn open_sqlite(dir: &Path) -> anyhow::Result<Box<dyn Engine>> {
    let c = rusqlite::Connection::open(dir.join("bench.sqlite"))?;
    c.pragma_update(None, "journal_mode", "WAL")?;
    c.pragma_update(None, "synchronous", "FULL")?;
    c.execute(
        "CREATE TABLE IF NOT EXISTS kv (k BLOB PRIMARY KEY, v BLOB NOT NULL) WITHOUT ROWID",
        [],
    )?;
    Ok(Box::new(SqliteEngine(c)))
}

/// Run `f` repeatedly for `d`; returns operations per second.
fn rate(d: Duration, mut f: impl FnMut(u64) -> anyhow::Result<u64>) -> anyhow::Result<f64> {
    let start = Instant::now();
    let (mut ops, mut n) = (0u64, 0u64);
    while start.elapsed() < d {
        ops += f(n)?;
        n += 1;
    }
    Ok(ops as f64 / start.elapsed().as_secs_f64())
}

pub fn run(seconds: u64) -> anyhow::Result<()> {
    let d = Duration::from_secs(seconds);
    println!("| engine | 1 write per fsynced commit (writes/s) | 64 writes per fsynced commit (writes/s) | point reads/s | 10-key range scans/s |");
    println!("|---|---:|---:|---:|---:|");
    let openers: [fn(&Path) -> anyhow::Result<Box<dyn Engine>>; 2] = [open_redb, open_sqlite];
    for open in openers {
        let dir = std::env::temp_dir().join(format!("sylph-bench-storage-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)?;
        let mut e = open(&dir).context("open engine")?;
        let mut next = 0u64;
        let single = rate(d, |_| {
            e.commit(next..next + 1)?;
            next += 1;
            Ok(1)
        })?;
        let grouped = rate(d, |_| {
            e.commit(next..next + 64)?;
            next += 64;
            Ok(64)
        })?;
        let total = next;
        let reads = rate(d, |n| Ok(u64::from(e.get(n.wrapping_mul(7919) % total)?)))?;
        let scans = rate(d, |n| Ok(u64::from(e.scan10(n.wrapping_mul(7919) % total)? == 10)))?;
        println!(
            "| {} | {single:.0} | {grouped:.0} | {reads:.0} | {scans:.0} |",
            e.name()
        );
        drop(e);
        let _ = std::fs::remove_dir_all(&dir);
    }
    Ok(())
}
