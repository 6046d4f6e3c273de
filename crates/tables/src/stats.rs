//! Table and index statistics (DescribeTable's ItemCount, TableSizeBytes, IndexSizeBytes),
//! kept up to date by every item write so that describing a table reads one record, whatever
//! its size.
//!
//! One record per table (`c` + table id) holds a (count, bytes) pair for the table and for each
//! index. It is read and rewritten inside the write batch that changes the items, so it commits
//! (or not) with them and stays exact across crashes. Sizes are DynamoDB's item size (attribute
//! names plus values, [`item_size`]); an index counts the items that have its key attributes,
//! at the size of the attributes it projects.

use crate::catalog::{IndexMeta, Projection, TableMeta};
use crate::storage::{Batch, Read, StorageError};
use crate::value::{item_size, Item};

/// Items and their total size.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub items: u64,
    pub bytes: u64,
}

impl Counts {
    /// Count one item of `size` bytes in (`added`) or out.
    fn count(&mut self, size: u64, added: bool) {
        if added {
            self.items += 1;
            self.bytes += size;
        } else {
            self.items = self.items.saturating_sub(1);
            self.bytes = self.bytes.saturating_sub(size);
        }
    }
}

/// The statistics of a table and of each of its indexes (by index id).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TableStats {
    pub table: Counts,
    pub indexes: Vec<(u16, Counts)>,
}

/// The id the table's own counts are stored under (index ids start at 1).
const TABLE: u16 = 0;
/// Index id, item count, byte count.
const ENTRY: usize = 2 + 8 + 8;

pub(crate) fn key(table_id: u32) -> Vec<u8> {
    let mut k = vec![b'c'];
    k.extend_from_slice(&table_id.to_be_bytes());
    k
}

impl TableStats {
    pub fn index(&self, id: u16) -> Counts {
        self.indexes
            .iter()
            .find(|(i, _)| *i == id)
            .map(|(_, c)| *c)
            .unwrap_or_default()
    }

    fn index_mut(&mut self, id: u16) -> &mut Counts {
        if id == TABLE {
            return &mut self.table;
        }
        let pos = match self.indexes.iter().position(|(i, _)| *i == id) {
            Some(p) => p,
            None => {
                self.indexes.push((id, Counts::default()));
                self.indexes.len() - 1
            }
        };
        &mut self.indexes[pos].1
    }

    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(ENTRY * (1 + self.indexes.len()));
        for (id, c) in std::iter::once((TABLE, self.table)).chain(self.indexes.iter().copied()) {
            out.extend_from_slice(&id.to_be_bytes());
            out.extend_from_slice(&c.items.to_be_bytes());
            out.extend_from_slice(&c.bytes.to_be_bytes());
        }
        out
    }

    fn decode(bytes: &[u8]) -> TableStats {
        let mut stats = TableStats::default();
        for entry in bytes.chunks_exact(ENTRY) {
            let id = u16::from_be_bytes([entry[0], entry[1]]);
            let counts = Counts {
                items: u64::from_be_bytes(entry[2..10].try_into().unwrap_or_default()),
                bytes: u64::from_be_bytes(entry[10..18].try_into().unwrap_or_default()),
            };
            *stats.index_mut(id) = counts;
        }
        stats
    }
}

/// The statistics of `meta`'s table as last committed (or as written so far in a batch).
pub(crate) fn read(r: &dyn Read, meta: &TableMeta) -> Result<TableStats, StorageError> {
    Ok(r.get(&key(meta.id))?
        .map(|b| TableStats::decode(&b))
        .unwrap_or_default())
}

/// The size an item takes in an index: the attributes the index projects.
fn index_size(meta: &TableMeta, index: &IndexMeta, item: &Item) -> u64 {
    match index.projection {
        Projection::All => item_size(item) as u64,
        _ => item_size(&meta.project_for_index(index, item)) as u64,
    }
}

/// Account for an item replaced (`old` → `new`; either may be absent) in the same batch.
pub(crate) fn record_write(
    b: &mut dyn Batch,
    meta: &TableMeta,
    old: Option<&Item>,
    new: Option<&Item>,
) -> Result<(), StorageError> {
    let mut stats = read(b, meta)?;
    for (item, added) in old.map(|i| (i, false)).into_iter().chain(new.map(|i| (i, true))) {
        stats.index_mut(TABLE).count(item_size(item) as u64, added);
        for index in &meta.indexes {
            if meta.index_key(index, item).is_some() {
                stats.index_mut(index.id).count(index_size(meta, index, item), added);
            }
        }
    }
    b.put(&key(meta.id), &stats.encode())
}

/// Count a table's items from scratch (for tables written before statistics were kept, and
/// for indexes added to a table that has items).
pub(crate) fn recount(meta: &TableMeta, items: impl Iterator<Item = Item>) -> TableStats {
    let mut stats = TableStats::default();
    for index in &meta.indexes {
        stats.index_mut(index.id);
    }
    for item in items {
        stats.index_mut(TABLE).count(item_size(&item) as u64, true);
        for index in &meta.indexes {
            if meta.index_key(index, &item).is_some() {
                stats.index_mut(index.id).count(index_size(meta, index, &item), true);
            }
        }
    }
    stats
}

/// Store statistics computed elsewhere ([`recount`]).
pub(crate) fn store(b: &mut dyn Batch, meta: &TableMeta, stats: &TableStats) -> Result<(), StorageError> {
    b.put(&key(meta.id), &stats.encode())
}

/// Forget a dropped index's counts.
pub(crate) fn drop_index(b: &mut dyn Batch, meta: &TableMeta, index_id: u16) -> Result<(), StorageError> {
    let mut stats = read(b, meta)?;
    stats.indexes.retain(|(i, _)| *i != index_id);
    b.put(&key(meta.id), &stats.encode())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoding_round_trips() {
        let s = TableStats {
            table: Counts {
                items: 3,
                bytes: 1_000_000_000_000,
            },
            indexes: vec![(1, Counts { items: 2, bytes: 40 }), (7, Counts::default())],
        };
        assert_eq!(TableStats::decode(&s.encode()), s);
        assert_eq!(TableStats::decode(&[]), TableStats::default());
    }
}
