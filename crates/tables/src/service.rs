//! The table service: [`Tables`] answers the JSON protocol by parsing each request into its
//! operation's typed request (in `items`, `query`, `batch`, `partiql`, `manage`) and running
//! it: reads against a snapshot of the store, writes through the one group-committing writer
//! ([`crate::writer`]).

use std::ops::Bound;
use std::path::Path as FsPath;
use std::sync::Arc;

use serde_json::{json, Value as Json};

use crate::catalog::{Catalog, TableMeta};
use crate::codec::{decode_item, META_PREFIX};
use crate::error::{DbError, ErrorKind};
use crate::items::{DeleteItem, GetItem, PutItem, UpdateItem};
use crate::storage::{Redb, Storage, StorageError};
use crate::writer::{WriteOp, Writer};
use crate::{batch, query, stats};

pub(crate) struct Inner {
    pub storage: Arc<dyn Storage>,
    writer: Writer,
    pub catalog: Catalog,
    pub region: String,
    /// Woken after each committed write batch (stream readers wait on it).
    pub committed: Arc<tokio::sync::Notify>,
}

/// The DynamoDB-compatible table service.
#[derive(Clone)]
pub struct Tables {
    pub(crate) inner: Arc<Inner>,
}

impl Tables {
    /// Open (or create) the tables stored in `dir`.
    pub fn open(dir: &FsPath, region: &str) -> Result<Tables, StorageError> {
        let storage: Arc<dyn Storage> = Arc::new(Redb::open(dir)?);
        Tables::with_storage(storage, region)
    }

    pub fn with_storage(storage: Arc<dyn Storage>, region: &str) -> Result<Tables, StorageError> {
        let catalog = Catalog::default();
        let end = crate::keys::prefix_end(META_PREFIX).unwrap_or_default();
        let mut bad = None;
        storage.scan(
            Bound::Included(META_PREFIX),
            Bound::Excluded(&end),
            false,
            &mut |_, v| {
                match serde_json::from_slice::<TableMeta>(v) {
                    Ok(m) => catalog.insert(m),
                    Err(e) => bad = Some(e.to_string()),
                }
                true
            },
        )?;
        if let Some(e) = bad {
            return Err(StorageError(format!("corrupt table description: {e}")));
        }
        count_tables_without_statistics(&*storage, &catalog)?;
        let committed = Arc::new(tokio::sync::Notify::new());
        let writer = Writer::start(storage.clone(), committed.clone())?;
        let tables = Tables {
            inner: Arc::new(Inner {
                storage,
                writer,
                catalog,
                region: region.to_owned(),
                committed,
            }),
        };
        tables.seed_stream_sequence();
        Ok(tables)
    }

    /// Names of the tables that exist.
    pub fn table_names(&self) -> Vec<String> {
        self.inner.catalog.names()
    }

    pub(crate) fn table_named(&self, name: &str) -> Result<Arc<TableMeta>, DbError> {
        self.inner.catalog.get(name)
    }

    /// Run a write through the group-committing writer.
    pub(crate) async fn write(&self, op: WriteOp) -> Result<Json, DbError> {
        self.inner.writer.write(op).await
    }

    /// Answer one DynamoDB Streams call (`operation` from `X-Amz-Target:
    /// DynamoDBStreams_20120810.<Operation>`): status and JSON body.
    pub fn handle_streams(&self, operation: &str, body: &[u8]) -> (u16, Vec<u8>) {
        let result = parse_request(body).and_then(|req| crate::stream::api::handle(self, operation, &req));
        match result {
            Ok(j) => (200, j.to_string().into_bytes()),
            Err(e) => (e.kind.status(), e.to_json().to_string().into_bytes()),
        }
    }

    /// Answer one JSON-protocol request as bytes: `operation` is the part of `X-Amz-Target`
    /// after the dot. GetItem, Query and Scan answer with the stored item bytes spliced in, so
    /// the hot reads never decode and re-encode items they only pass through.
    pub async fn handle_bytes(&self, operation: &str, body: &[u8]) -> (u16, Vec<u8>) {
        let req: Json = match parse_request(body) {
            Ok(r) => r,
            Err(e) => return (400, e.to_json().to_string().into_bytes()),
        };
        let (catalog, storage) = (&self.inner.catalog, &*self.inner.storage);
        let result = match operation {
            "GetItem" => GetItem::parse(&req, catalog).and_then(|get| {
                if get.is_plain() {
                    get.run_raw(storage)
                } else {
                    get.run(storage).map(|j| j.to_string().into_bytes())
                }
            }),
            "Query" => query::query(catalog, storage, &req),
            "Scan" => query::scan(catalog, storage, &req),
            other => self
                .dispatch(other, &req)
                .await
                .map(|j| serde_json::to_vec(&j).unwrap_or_default()),
        };
        match result {
            Ok(b) => (200, b),
            Err(e) => (e.kind.status(), e.to_json().to_string().into_bytes()),
        }
    }

    /// Answer one JSON-protocol request: `operation` is the part of `X-Amz-Target` after the dot.
    /// Returns the HTTP status and the JSON body.
    pub async fn handle(&self, operation: &str, body: &[u8]) -> (u16, Json) {
        let req = match parse_request(body) {
            Ok(r) => r,
            Err(e) => return (400, e.to_json()),
        };
        match self.dispatch(operation, &req).await {
            Ok(j) => (200, j),
            Err(e) => (e.kind.status(), e.to_json()),
        }
    }

    /// Run one operation; again (with the new table description) when a table operation changed
    /// its table between the request's checks and its write.
    async fn dispatch(&self, operation: &str, req: &Json) -> Result<Json, DbError> {
        let mut attempts = 0;
        loop {
            match self.dispatch_once(operation, req).await {
                Err(e) if e.kind == ErrorKind::TableChanged && attempts < 100 => {
                    attempts += 1;
                    // The catalog takes the new description just after its commit.
                    tokio::time::sleep(std::time::Duration::from_millis(1)).await;
                }
                other => return other,
            }
        }
    }

    async fn dispatch_once(&self, operation: &str, req: &Json) -> Result<Json, DbError> {
        let (catalog, storage) = (&self.inner.catalog, &*self.inner.storage);
        let from_bytes = |b: Vec<u8>| serde_json::from_slice(&b).map_err(|e| DbError::internal(e.to_string()));
        match operation {
            "CreateTable" => self.create_table(req).await.map(|d| json!({"TableDescription": d})),
            "DescribeTable" => self.describe_table(req),
            "ListTables" => self.list_tables(req),
            "DeleteTable" => self.delete_table(req).await,
            "UpdateTable" => self.update_table(req).await,
            "PutItem" => self.write(PutItem::parse(req, catalog)?.into_write()).await,
            "GetItem" => GetItem::parse(req, catalog)?.run(storage),
            "UpdateItem" => self.write(UpdateItem::parse(req, catalog)?.into_write()).await,
            "DeleteItem" => self.write(DeleteItem::parse(req, catalog)?.into_write()).await,
            "Query" => query::query(catalog, storage, req).and_then(from_bytes),
            "Scan" => query::scan(catalog, storage, req).and_then(from_bytes),
            "BatchGetItem" => batch::batch_get(catalog, storage, req),
            "BatchWriteItem" => self.write(batch::batch_write(catalog, req)?).await,
            "TransactWriteItems" => self.write(batch::transact_write(catalog, req)?).await,
            "TransactGetItems" => batch::transact_get(catalog, storage, req),
            "ExecuteStatement" => self.execute_statement(req).await,
            "BatchExecuteStatement" => self.batch_execute_statement(req).await,
            "ExecuteTransaction" => self.execute_transaction(req).await,
            "UpdateTimeToLive" => self.update_ttl(req).await,
            "DescribeTimeToLive" => self.describe_ttl(req),
            "TagResource" => self.tag(req, true).await,
            "UntagResource" => self.tag(req, false).await,
            "ListTagsOfResource" => self.list_tags(req),
            "DescribeContinuousBackups" => {
                catalog.of_request(req)?;
                Ok(json!({"ContinuousBackupsDescription": {
                    "ContinuousBackupsStatus": "ENABLED",
                    "PointInTimeRecoveryDescription": {"PointInTimeRecoveryStatus": "DISABLED"}
                }}))
            }
            "DescribeEndpoints" => Ok(json!({"Endpoints": [{"Address": "localhost", "CachePeriodInMinutes": 1440}]})),
            "DescribeLimits" => Ok(json!({
                "AccountMaxReadCapacityUnits": 80000, "AccountMaxWriteCapacityUnits": 80000,
                "TableMaxReadCapacityUnits": 40000, "TableMaxWriteCapacityUnits": 40000
            })),
            other => Err(DbError::new(
                ErrorKind::UnknownOperation,
                format!("Unknown operation: {other}"),
            )),
        }
    }
}

/// Tables written before statistics were kept get them counted once, at open.
fn count_tables_without_statistics(storage: &dyn Storage, catalog: &Catalog) -> Result<(), StorageError> {
    for meta in catalog.all() {
        if storage.get(&stats::key(meta.id))?.is_some() {
            continue;
        }
        let prefix = meta.items_prefix();
        let end = crate::keys::prefix_end(&prefix).unwrap_or_default();
        let mut counted = stats::Recount::new(&meta);
        storage.scan(Bound::Included(&prefix), Bound::Excluded(&end), false, &mut |_, v| {
            if let Ok(item) = decode_item(v) {
                counted.add(&item);
            }
            true
        })?;
        let counted = counted.finish();
        storage.write(&mut |b| stats::store(b, &meta, &counted))?;
        tracing::info!(table = %meta.name, "counted the table's items for its statistics");
    }
    Ok(())
}

fn parse_request(body: &[u8]) -> Result<Json, DbError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(json!({}));
    }
    match serde_json::from_slice(body) {
        Ok(j @ Json::Object(_)) => Ok(j),
        Ok(_) | Err(_) => Err(DbError::serialization(
            "Start of structure or map found where not expected",
        )),
    }
}
