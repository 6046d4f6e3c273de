//! Table and index statistics (DescribeTable's ItemCount, TableSizeBytes, IndexSizeBytes),
//! kept up to date by every item write so that describing a table reads one record, whatever
//! its size.
//!
//! One record per table (`c` + table id) holds a (count, bytes) pair for the table and for each
//! index. The writer's transaction for a group commit ([`Tx`]) reads it once, each item write
//! of the group updates it, and it is written once at the end of the group, in the same commit
//! as the items: so it commits (or not) with them and stays exact across crashes. Sizes are DynamoDB's item size (attribute
//! names plus values, [`item_size`]); an index counts the items that have its key attributes,
//! at the size of the attributes it projects.

use crate::catalog::TableMeta;
use crate::storage::{Batch, Read, StorageError};
use crate::value::{item_size, Item};
use crate::writer::Tx;

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

    pub(crate) fn encode(&self) -> Vec<u8> {
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

    /// Count `item` in (`added`) or out of the table and the indexes it is in.
    fn count(&mut self, meta: &TableMeta, item: &Item, added: bool) {
        self.index_mut(TABLE).count(item_size(item) as u64, added);
        for index in &meta.indexes {
            if meta.in_index(index, item) {
                self.index_mut(index.id)
                    .count(meta.index_item_size(index, item) as u64, added);
            }
        }
    }
}

/// The statistics of `meta`'s table as last committed (or as written so far in a batch).
pub(crate) fn read(r: &dyn Read, meta: &TableMeta) -> Result<TableStats, StorageError> {
    Ok(r.get(&key(meta.id))?
        .map(|b| TableStats::decode(&b))
        .unwrap_or_default())
}

/// Account for an item replaced (`old` → `new`; either may be absent) in the group's
/// statistics (written when the group commits).
pub(crate) fn record_write(
    tx: &mut Tx<'_>,
    meta: &TableMeta,
    old: Option<&Item>,
    new: Option<&Item>,
) -> Result<(), StorageError> {
    let stats = tx.stats_mut(meta)?;
    for (item, added) in old.map(|i| (i, false)).into_iter().chain(new.map(|i| (i, true))) {
        stats.count(meta, item, added);
    }
    Ok(())
}

/// Counting a table's items from scratch, one item at a time (for stores written before
/// statistics were kept, and for indexes added to a table that has items).
pub(crate) struct Recount<'m> {
    meta: &'m TableMeta,
    stats: TableStats,
}

impl<'m> Recount<'m> {
    pub fn new(meta: &'m TableMeta) -> Recount<'m> {
        let mut stats = TableStats::default();
        for index in &meta.indexes {
            stats.index_mut(index.id);
        }
        Recount { meta, stats }
    }

    pub fn add(&mut self, item: &Item) {
        self.stats.count(self.meta, item, true);
    }

    pub fn finish(self) -> TableStats {
        self.stats
    }
}

/// Store statistics counted outside the writer (at open, before it starts).
pub(crate) fn store(b: &mut dyn Batch, meta: &TableMeta, stats: &TableStats) -> Result<(), StorageError> {
    b.put(&key(meta.id), &stats.encode())
}

/// Forget a dropped index's counts.
pub(crate) fn drop_index(tx: &mut Tx<'_>, meta: &TableMeta, index_id: u16) -> Result<(), StorageError> {
    tx.stats_mut(meta)?.indexes.retain(|(i, _)| *i != index_id);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Tables;
    use serde_json::{json, Value as Json};

    async fn call(tables: &Tables, op: &str, body: Json) -> Json {
        let (status, answer) = tables.handle(op, body.to_string().as_bytes()).await;
        assert_eq!(status, 200, "{op}: {answer}");
        answer
    }

    async fn counts(tables: &Tables) -> (Json, Json, Json) {
        let d = call(tables, "DescribeTable", json!({"TableName": "tab"})).await;
        let t = &d["Table"];
        let gsi = t["GlobalSecondaryIndexes"]
            .as_array()
            .and_then(|a| a.first())
            .map(|i| json!([i["ItemCount"], i["IndexSizeBytes"]]))
            .unwrap_or(Json::Null);
        (t["ItemCount"].clone(), t["TableSizeBytes"].clone(), gsi)
    }

    fn temp(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("sylph-stats-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    async fn table_with_gsi(tables: &Tables) {
        call(
            tables,
            "CreateTable",
            json!({"TableName": "tab", "BillingMode": "PAY_PER_REQUEST",
                   "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}, {"AttributeName": "g", "AttributeType": "S"}],
                   "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
                   "GlobalSecondaryIndexes": [{"IndexName": "byG", "KeySchema": [{"AttributeName": "g", "KeyType": "HASH"}],
                                               "Projection": {"ProjectionType": "KEYS_ONLY"}}]}),
        )
        .await;
    }

    #[tokio::test]
    async fn every_kind_of_write_keeps_the_counts() {
        let dir = temp("writes");
        let tables = Tables::open(&dir, "us-east-1").unwrap();
        table_with_gsi(&tables).await;
        assert_eq!(counts(&tables).await, (json!(0), json!(0), json!([0, 0])));
        // "pk" + "a" + "g" + "x": 2 + 1 + 1 + 1 = 5 bytes (the index keeps both: 5); "pk" + "b": 3.
        call(
            &tables,
            "PutItem",
            json!({"TableName": "tab", "Item": {"pk": {"S": "a"}, "g": {"S": "x"}}}),
        )
        .await;
        call(
            &tables,
            "PutItem",
            json!({"TableName": "tab", "Item": {"pk": {"S": "b"}}}),
        )
        .await;
        assert_eq!(counts(&tables).await, (json!(2), json!(8), json!([1, 5])));
        // An overwrite changes the size, not the count; an update that removes the index key
        // takes the item out of the index.
        call(
            &tables,
            "PutItem",
            json!({"TableName": "tab", "Item": {"pk": {"S": "b"}, "s": {"S": "12345"}}}),
        )
        .await;
        call(
            &tables,
            "UpdateItem",
            json!({"TableName": "tab", "Key": {"pk": {"S": "a"}}, "UpdateExpression": "REMOVE g"}),
        )
        .await;
        assert_eq!(counts(&tables).await, (json!(2), json!(12), json!([0, 0])));
        call(
            &tables,
            "BatchWriteItem",
            json!({"RequestItems": {"tab": [
                {"PutRequest": {"Item": {"pk": {"S": "c"}, "g": {"S": "y"}}}},
                {"DeleteRequest": {"Key": {"pk": {"S": "a"}}}}
            ]}}),
        )
        .await;
        call(
            &tables,
            "TransactWriteItems",
            json!({"TransactItems": [
                {"Delete": {"TableName": "tab", "Key": {"pk": {"S": "b"}}}},
                {"Put": {"TableName": "tab", "Item": {"pk": {"S": "d"}}}}
            ]}),
        )
        .await;
        call(
            &tables,
            "ExecuteStatement",
            json!({"Statement": "INSERT INTO tab VALUE {'pk': 'e', 'g': 'z'}"}),
        )
        .await;
        call(
            &tables,
            "ExecuteStatement",
            json!({"Statement": "DELETE FROM tab WHERE pk = 'd'"}),
        )
        .await;
        // Left: c (pk, g: 5 bytes) and e (5 bytes), both in the index.
        assert_eq!(counts(&tables).await, (json!(2), json!(10), json!([2, 10])));
        // A failed conditional write changes nothing.
        let (status, _) = tables
            .handle("PutItem", json!({"TableName": "tab", "Item": {"pk": {"S": "c"}}, "ConditionExpression": "attribute_not_exists(pk)"}).to_string().as_bytes())
            .await;
        assert_eq!(status, 400);
        assert_eq!(counts(&tables).await, (json!(2), json!(10), json!([2, 10])));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn an_index_added_later_counts_the_items_already_there() {
        let dir = temp("gsi");
        let tables = Tables::open(&dir, "us-east-1").unwrap();
        call(
            &tables,
            "CreateTable",
            json!({"TableName": "tab", "BillingMode": "PAY_PER_REQUEST",
                   "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
                   "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}]}),
        )
        .await;
        for (k, g) in [("a", Some("x")), ("b", None), ("c", Some("y"))] {
            let mut item = json!({"pk": {"S": k}});
            if let Some(g) = g {
                item["g"] = json!({"S": g});
            }
            call(&tables, "PutItem", json!({"TableName": "tab", "Item": item})).await;
        }
        call(&tables, "UpdateTable", json!({"TableName": "tab",
            "AttributeDefinitions": [{"AttributeName": "g", "AttributeType": "S"}],
            "GlobalSecondaryIndexUpdates": [{"Create": {"IndexName": "byG", "KeySchema": [{"AttributeName": "g", "KeyType": "HASH"}],
                                                        "Projection": {"ProjectionType": "ALL"}}}]})).await;
        assert_eq!(counts(&tables).await, (json!(3), json!(13), json!([2, 10])));
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A write checked against the description an UpdateTable then replaced must not run with
    /// it: it would miss the new index (its entry and its count).
    #[tokio::test]
    async fn a_write_checked_before_an_index_was_added_runs_again() {
        let dir = temp("stale");
        let tables = Tables::open(&dir, "us-east-1").unwrap();
        call(
            &tables,
            "CreateTable",
            json!({"TableName": "tab", "BillingMode": "PAY_PER_REQUEST",
                   "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
                   "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}]}),
        )
        .await;
        let put = json!({"TableName": "tab", "Item": {"pk": {"S": "a"}, "g": {"S": "x"}}});
        let early = crate::items::PutItem::parse(&put, &tables.inner.catalog).unwrap();
        call(&tables, "UpdateTable", json!({"TableName": "tab",
            "AttributeDefinitions": [{"AttributeName": "g", "AttributeType": "S"}],
            "GlobalSecondaryIndexUpdates": [{"Create": {"IndexName": "byG", "KeySchema": [{"AttributeName": "g", "KeyType": "HASH"}],
                                                        "Projection": {"ProjectionType": "ALL"}}}]})).await;
        let e = tables.write(early.into_write()).await.unwrap_err();
        assert_eq!(e.kind, crate::ErrorKind::TableChanged);
        // Sent again (as the service does), it is checked against the new description.
        call(&tables, "PutItem", put).await;
        assert_eq!(counts(&tables).await, (json!(1), json!(5), json!([1, 5])));
        let q = call(
            &tables,
            "Query",
            json!({"TableName": "tab", "IndexName": "byG", "KeyConditionExpression": "g = :g",
            "ExpressionAttributeValues": {":g": {"S": "x"}}}),
        )
        .await;
        assert_eq!(q["Count"], 1);
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A store written before statistics were kept has none: they are counted once, at open.
    #[tokio::test]
    async fn tables_without_statistics_are_counted_when_opened() {
        let dir = temp("migrate");
        {
            let tables = Tables::open(&dir, "us-east-1").unwrap();
            table_with_gsi(&tables).await;
            for k in ["a", "b", "c"] {
                call(
                    &tables,
                    "PutItem",
                    json!({"TableName": "tab", "Item": {"pk": {"S": k}, "g": {"S": k}}}),
                )
                .await;
            }
            let meta = tables.table_named("tab").unwrap();
            tables
                .write(Box::new(move |b| {
                    b.delete(&key(meta.id))?;
                    Ok(Ok(Json::Null))
                }))
                .await
                .unwrap();
            assert_eq!(counts(&tables).await, (json!(0), json!(0), json!([0, 0])));
        }
        // The writer thread lets go of the store once the last handle is gone.
        let mut reopened = Tables::open(&dir, "us-east-1");
        for _ in 0..100 {
            if reopened.is_ok() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            reopened = Tables::open(&dir, "us-east-1");
        }
        let tables = reopened.unwrap();
        assert_eq!(counts(&tables).await, (json!(3), json!(15), json!([3, 15])));
        let _ = std::fs::remove_dir_all(&dir);
    }

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
