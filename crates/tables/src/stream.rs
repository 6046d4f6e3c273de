//! Table streams (DynamoDB Streams): every change to an item of a table whose stream is
//! enabled leaves a record — INSERT, MODIFY or REMOVE, with the keys and the images its
//! `StreamViewType` asks for — written in the same storage batch as the change itself, so a
//! change is never committed without its record (nor a record without its change). Records
//! are kept 24 hours, keyed by a sequence number that grows with each change (microseconds
//! since the epoch, or one more than the last), so one table's records read back in the order
//! their changes committed. One shard per stream.
//!
//! `api` serves the DynamoDB Streams API (ListStreams, DescribeStream, GetShardIterator,
//! GetRecords) over them.

use std::ops::Bound;
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::{json, Value as Json};

use crate::catalog::TableMeta;
use crate::error::DbError;
use crate::storage::{Batch, StorageError};
use crate::value::{item_to_json, Item};
use crate::Tables;

/// How long records are kept.
pub const RETENTION_MS: u64 = 24 * 3600 * 1000;
/// Every stream's label: its ARN is `<table ARN>/stream/local`, which is also what
/// `Fn::GetAtt Table.StreamArn` gives in a manifest.
pub const LABEL: &str = "local";

static LAST_SEQ: AtomicU64 = AtomicU64::new(0);

/// Records that sequence numbers up to `seq` are taken (read back from disk at open: a clock
/// set back across a restart must not give new records numbers below old checkpoints).
pub(crate) fn seen_seq(seq: u64) {
    LAST_SEQ.fetch_max(seq, Ordering::Relaxed);
}

/// A new sequence number, above every one given before (in this process, and those read back
/// by [`seen_seq`]); a time in microseconds while the clock allows.
fn next_seq() -> u64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64);
    let mut last = LAST_SEQ.load(Ordering::Relaxed);
    loop {
        let next = now.max(last + 1);
        match LAST_SEQ.compare_exchange_weak(last, next, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => return next,
            Err(seen) => last = seen,
        }
    }
}

/// The table's stream view type, if its stream is enabled (a manifest's
/// `StreamSpecification` may give the view type alone: that enables it too).
pub fn view_type(meta: &TableMeta) -> Option<&str> {
    let spec = meta.stream.as_ref()?;
    let view = spec.get("StreamViewType").and_then(Json::as_str);
    let enabled = spec
        .get("StreamEnabled")
        .and_then(Json::as_bool)
        .unwrap_or(view.is_some());
    enabled.then_some(view.unwrap_or("NEW_AND_OLD_IMAGES"))
}

pub fn stream_arn(meta: &TableMeta) -> String {
    format!("{}/stream/{LABEL}", meta.arn())
}

/// The table a stream ARN names (`…:table/NAME/stream/LABEL`).
pub fn table_of_stream_arn(arn: &str) -> Option<&str> {
    let (_, rest) = arn.rsplit_once(":table/")?;
    let (table, label) = rest.split_once("/stream/")?;
    (!table.is_empty() && !label.is_empty()).then_some(table)
}

pub(crate) fn prefix(table_id: u32) -> Vec<u8> {
    let mut k = vec![b's'];
    k.extend_from_slice(&table_id.to_be_bytes());
    k
}

fn key(table_id: u32, seq: u64) -> Vec<u8> {
    let mut k = prefix(table_id);
    k.extend_from_slice(&seq.to_be_bytes());
    k
}

/// What made a change: a caller, or the table's TTL (whose records name DynamoDB's service
/// principal, as AWS does).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cause {
    Caller,
    Ttl,
}

/// Add the stream record of one item change to the batch that makes it. An unchanged item
/// leaves no record.
pub(crate) fn record(
    b: &mut dyn Batch,
    meta: &TableMeta,
    old: Option<&Item>,
    new: Option<&Item>,
    cause: Cause,
) -> Result<(), StorageError> {
    let Some(view) = view_type(meta) else {
        return Ok(());
    };
    let (event, item) = match (old, new) {
        (None, Some(n)) => ("INSERT", n),
        (Some(o), Some(n)) if o == n => return Ok(()),
        (Some(_), Some(n)) => ("MODIFY", n),
        (Some(o), None) => ("REMOVE", o),
        (None, None) => return Ok(()),
    };
    let seq = next_seq();
    let keys = item_to_json(&meta.key_of(item));
    let mut size = keys.to_string().len();
    let mut dynamodb = json!({
        "ApproximateCreationDateTime": seq / 1_000_000,
        "Keys": keys,
        "SequenceNumber": format!("{seq:021}"),
        "StreamViewType": view,
    });
    if matches!(view, "NEW_IMAGE" | "NEW_AND_OLD_IMAGES") {
        if let Some(n) = new {
            let image = item_to_json(n);
            size += image.to_string().len();
            dynamodb["NewImage"] = image;
        }
    }
    if matches!(view, "OLD_IMAGE" | "NEW_AND_OLD_IMAGES") {
        if let Some(o) = old {
            let image = item_to_json(o);
            size += image.to_string().len();
            dynamodb["OldImage"] = image;
        }
    }
    dynamodb["SizeBytes"] = json!(size);
    let mut id = [0u8; 16];
    sylph_telemetry::fill_random(&mut id);
    let mut record = json!({
        "eventID": id.iter().map(|b| format!("{b:02x}")).collect::<String>(),
        "eventName": event,
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": meta.region,
        "dynamodb": dynamodb,
    });
    if cause == Cause::Ttl {
        record["userIdentity"] = json!({"type": "Service", "principalId": "dynamodb.amazonaws.com"});
    }
    let bytes = serde_json::to_vec(&record).map_err(|e| StorageError(e.to_string()))?;
    b.put(&key(meta.id, seq), &bytes)
}

impl Tables {
    /// Seed the sequence counter from the newest record of every table.
    pub(crate) fn seed_stream_sequence(&self) {
        for table in self.table_names() {
            if let Ok(Some((_, last))) = self.stream_bounds(&table) {
                seen_seq(last);
            }
        }
    }

    /// Up to `limit` records of `table`'s stream with a sequence number above `after`, in
    /// order, each with its sequence number.
    pub fn stream_records(&self, table: &str, after: u64, limit: usize) -> Result<Vec<(u64, Json)>, DbError> {
        let meta = self.table_named(table)?;
        let start = key(meta.id, after.saturating_add(1));
        let end = crate::keys::prefix_end(&prefix(meta.id)).unwrap_or_default();
        let mut out = Vec::new();
        let mut bad = None;
        self.inner
            .storage
            .scan(Bound::Included(&start), Bound::Excluded(&end), false, &mut |k, v| {
                let seq = u64::from_be_bytes(k[5..13].try_into().unwrap_or_default());
                match serde_json::from_slice(v) {
                    Ok(record) => out.push((seq, record)),
                    Err(e) => bad = Some(e.to_string()),
                }
                out.len() < limit
            })
            .map_err(|e| DbError::internal(e.to_string()))?;
        if let Some(e) = bad {
            tracing::error!("skipping an unreadable stream record of {table}: {e}");
        }
        Ok(out)
    }

    /// The sequence numbers of the oldest and newest records kept (`None`: no record).
    pub fn stream_bounds(&self, table: &str) -> Result<Option<(u64, u64)>, DbError> {
        let meta = self.table_named(table)?;
        let p = prefix(meta.id);
        let end = crate::keys::prefix_end(&p).unwrap_or_default();
        let mut first = None;
        let mut last = None;
        let storage = &self.inner.storage;
        let seq_of = |k: &[u8]| u64::from_be_bytes(k[5..13].try_into().unwrap_or_default());
        storage
            .scan(Bound::Included(&p), Bound::Excluded(&end), false, &mut |k, _| {
                first = Some(seq_of(k));
                false
            })
            .map_err(|e| DbError::internal(e.to_string()))?;
        storage
            .scan(Bound::Included(&p), Bound::Excluded(&end), true, &mut |k, _| {
                last = Some(seq_of(k));
                false
            })
            .map_err(|e| DbError::internal(e.to_string()))?;
        Ok(first.zip(last))
    }

    /// Whether `table` has an enabled stream.
    pub fn has_stream(&self, table: &str) -> bool {
        self.table_named(table).is_ok_and(|m| view_type(&m).is_some())
    }

    /// Woken after every committed write batch (for stream readers waiting for records).
    pub fn changes(&self) -> std::sync::Arc<tokio::sync::Notify> {
        self.inner.committed.clone()
    }

    /// Drop records older than [`RETENTION_MS`].
    pub(crate) async fn trim_streams(&self) -> Result<(), DbError> {
        let cutoff_us = (sylph_telemetry::unix_ms().saturating_sub(RETENTION_MS)) * 1000;
        let tables: Vec<std::sync::Arc<TableMeta>> = self.inner.catalog.all();
        for meta in tables {
            let start = prefix(meta.id);
            let end = key(meta.id, cutoff_us);
            let mut keys = Vec::new();
            self.inner
                .storage
                .scan(Bound::Included(&start), Bound::Excluded(&end), false, &mut |k, _| {
                    keys.push(k.to_vec());
                    keys.len() < 10_000
                })
                .map_err(|e| DbError::internal(e.to_string()))?;
            if keys.is_empty() {
                continue;
            }
            self.write(Box::new(move |b| {
                for k in &keys {
                    b.delete(k)?;
                }
                Ok(Ok(Json::Null))
            }))
            .await?;
        }
        Ok(())
    }
}

pub mod api {
    //! The DynamoDB Streams API (`X-Amz-Target: DynamoDBStreams_20120810.*`). Each stream has
    //! one shard; a shard iterator is the table and the sequence number read up to.

    use base64::Engine as _;
    use serde_json::{json, Value as Json};

    use super::{stream_arn, table_of_stream_arn, view_type, LABEL};
    use crate::error::{DbError, ErrorKind};
    use crate::Tables;

    pub const SHARD_ID: &str = "shardId-00000000000000000000-00000001";

    fn not_found(arn: &str) -> DbError {
        DbError::new(
            ErrorKind::ResourceNotFound,
            format!("Requested resource not found: Stream: {arn} not found"),
        )
    }

    fn iterator(table: &str, after: u64) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{table}\n{after}"))
    }

    /// The table and position a shard iterator holds.
    pub fn parse_iterator(token: &str) -> Option<(String, u64)> {
        let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(token.trim())
            .ok()?;
        let text = String::from_utf8(raw).ok()?;
        let (table, after) = text.split_once('\n')?;
        Some((table.to_owned(), after.parse().ok()?))
    }

    /// The table a Streams call is about (for IAM and ownership checks), if it names one.
    pub fn table_of_call(operation: &str, body: &Json) -> Option<String> {
        match operation {
            "GetRecords" => parse_iterator(body.get("ShardIterator")?.as_str()?).map(|(t, _)| t),
            "ListStreams" => body.get("TableName")?.as_str().map(str::to_owned),
            _ => table_of_stream_arn(body.get("StreamArn")?.as_str()?).map(str::to_owned),
        }
    }

    fn stream_table(tables: &Tables, body: &Json) -> Result<(String, String), DbError> {
        let arn = body
            .get("StreamArn")
            .and_then(Json::as_str)
            .ok_or_else(|| DbError::validation("1 validation error detected: Value null at 'streamArn' failed to satisfy constraint: Member must not be null"))?;
        let table = table_of_stream_arn(arn).ok_or_else(|| DbError::validation(format!("Invalid StreamArn: {arn}")))?;
        if !tables.has_stream(table) {
            return Err(not_found(arn));
        }
        Ok((table.to_owned(), arn.to_owned()))
    }

    /// Answer one call.
    pub fn handle(tables: &Tables, operation: &str, body: &Json) -> Result<Json, DbError> {
        match operation {
            "ListStreams" => {
                let only = body.get("TableName").and_then(Json::as_str);
                let streams: Vec<Json> = tables
                    .table_names()
                    .into_iter()
                    .filter(|t| only.is_none_or(|o| o == t))
                    .filter_map(|t| tables.table_named(&t).ok())
                    .filter(|m| view_type(m).is_some())
                    .map(|m| json!({"StreamArn": stream_arn(&m), "TableName": m.name, "StreamLabel": LABEL}))
                    .collect();
                Ok(json!({"Streams": streams}))
            }
            "DescribeStream" => {
                let (table, arn) = stream_table(tables, body)?;
                let meta = tables.table_named(&table)?;
                let mut range = json!({});
                if let Some((first, _)) = tables.stream_bounds(&table)? {
                    range["StartingSequenceNumber"] = json!(format!("{first:021}"));
                }
                let mut key_schema = vec![json!({"AttributeName": meta.hash.name, "KeyType": "HASH"})];
                if let Some(r) = &meta.range {
                    key_schema.push(json!({"AttributeName": r.name, "KeyType": "RANGE"}));
                }
                Ok(json!({"StreamDescription": {
                    "StreamArn": arn,
                    "StreamLabel": LABEL,
                    "StreamStatus": "ENABLED",
                    "StreamViewType": view_type(&meta),
                    "CreationRequestDateTime": meta.created,
                    "TableName": meta.name,
                    "KeySchema": key_schema,
                    "Shards": [{"ShardId": SHARD_ID, "SequenceNumberRange": range}],
                }}))
            }
            "GetShardIterator" => {
                let (table, arn) = stream_table(tables, body)?;
                if body.get("ShardId").and_then(Json::as_str) != Some(SHARD_ID) {
                    return Err(DbError::new(
                        ErrorKind::ResourceNotFound,
                        format!("Requested resource not found: Shard does not exist in stream {arn}"),
                    ));
                }
                let seq = || -> Result<u64, DbError> {
                    body.get("SequenceNumber")
                        .and_then(Json::as_str)
                        .and_then(|s| s.parse().ok())
                        .ok_or_else(|| {
                            DbError::validation(
                                "SequenceNumber is required for this ShardIteratorType and must be a sequence number",
                            )
                        })
                };
                let after = match body.get("ShardIteratorType").and_then(Json::as_str) {
                    Some("TRIM_HORIZON") => 0,
                    Some("LATEST") => tables.stream_bounds(&table)?.map_or(0, |(_, last)| last),
                    Some("AT_SEQUENCE_NUMBER") => seq()?.saturating_sub(1),
                    Some("AFTER_SEQUENCE_NUMBER") => seq()?,
                    other => {
                        return Err(DbError::validation(format!(
                            "1 validation error detected: Value '{}' at 'shardIteratorType' failed to satisfy constraint: Member must satisfy enum value set: [AFTER_SEQUENCE_NUMBER, LATEST, AT_SEQUENCE_NUMBER, TRIM_HORIZON]",
                            other.unwrap_or("null")
                        )))
                    }
                };
                Ok(json!({"ShardIterator": iterator(&table, after)}))
            }
            "GetRecords" => {
                let token = body
                    .get("ShardIterator")
                    .and_then(Json::as_str)
                    .ok_or_else(|| DbError::validation("1 validation error detected: Value null at 'shardIterator' failed to satisfy constraint: Member must not be null"))?;
                let (table, after) =
                    parse_iterator(token).ok_or_else(|| DbError::validation("Invalid ShardIterator"))?;
                let limit = match body.get("Limit") {
                    None | Some(Json::Null) => 1000,
                    Some(v) => match v.as_u64() {
                        Some(n) if (1..=1000).contains(&n) => n as usize,
                        _ => return Err(DbError::validation(format!("1 validation error detected: Value '{v}' at 'limit' failed to satisfy constraint: Member must have value between 1 and 1000"))),
                    },
                };
                let meta = tables.table_named(&table)?;
                let arn = stream_arn(&meta);
                let records = tables.stream_records(&table, after, limit)?;
                let next = records.last().map_or(after, |(seq, _)| *seq);
                let records: Vec<Json> = records
                    .into_iter()
                    .map(|(_, mut r)| {
                        r["eventSourceARN"] = json!(arn);
                        r
                    })
                    .collect();
                Ok(json!({"Records": records, "NextShardIterator": iterator(&table, next)}))
            }
            other => Err(DbError::new(
                ErrorKind::UnknownOperation,
                format!("DynamoDB Streams has no operation {other}"),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::Tables;

    async fn call(tables: &Tables, op: &str, body: serde_json::Value) -> serde_json::Value {
        let (status, answer) = tables.handle(op, body.to_string().as_bytes()).await;
        assert_eq!(status, 200, "{op}: {answer}");
        answer
    }

    #[tokio::test]
    async fn regression_a_blind_put_on_a_plain_table_left_no_stream_record() {
        let dir = std::env::temp_dir().join(format!("sylph-stream-blind-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let tables = Tables::open(&dir, "us-east-1").unwrap();
        // No index and no TTL: the put that needs nothing from the old item.
        call(
            &tables,
            "CreateTable",
            json!({"TableName": "plain", "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
                   "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}], "BillingMode": "PAY_PER_REQUEST",
                   "StreamSpecification": {"StreamEnabled": true, "StreamViewType": "NEW_AND_OLD_IMAGES"}}),
        )
        .await;
        for v in ["1", "2"] {
            call(
                &tables,
                "PutItem",
                json!({"TableName": "plain", "Item": {"pk": {"S": "a"}, "v": {"S": v}}}),
            )
            .await;
        }
        call(
            &tables,
            "DeleteItem",
            json!({"TableName": "plain", "Key": {"pk": {"S": "a"}}}),
        )
        .await;
        let records = tables.stream_records("plain", 0, 10).unwrap();
        let names: Vec<&str> = records.iter().map(|(_, r)| r["eventName"].as_str().unwrap()).collect();
        assert_eq!(names, ["INSERT", "MODIFY", "REMOVE"]);
        assert_eq!(records[1].1["dynamodb"]["OldImage"]["v"]["S"], "1");
        assert_eq!(records[1].1["dynamodb"]["NewImage"]["v"]["S"], "2");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
