//! The table service: the DynamoDB operations over a [`Storage`], with every write going through
//! one group-committing writer thread.
//!
//! Writes are closures run in order inside one storage batch; a batch collects whatever writes
//! are waiting when the previous commit finishes, so concurrent writers share one fsync and
//! throughput grows with concurrency while every acknowledged write is on disk. Each write
//! closure checks everything (conditions, the table's identity) before it changes anything, so
//! a failed operation leaves no trace in the batch it shares with others.

use std::collections::HashMap;
use std::ops::Bound;
use std::path::Path as FsPath;
use std::sync::{Arc, RwLock};

use serde_json::{json, Value as Json};
use tokio::sync::oneshot;

use crate::catalog::{parse_index, validate_table_name, KeyAttr, TableMeta};
use crate::error::{DbError, ErrorKind};
use crate::expr::{self, Condition, ExprKind, Path, Substitutions};
use crate::storage::{Batch, Read, Redb, Storage, StorageError};
use crate::value::{item_from_json, item_size, item_to_json, Item, MAX_ITEM_BYTES};
use crate::{legacy, query};

/// A unit of work for the writer: reads and writes through the batch, returns the response.
pub(crate) type WriteOp = Box<dyn FnOnce(&mut dyn Batch) -> Result<Result<Json, DbError>, StorageError> + Send>;

struct Job {
    op: WriteOp,
    reply: oneshot::Sender<Result<Json, DbError>>,
}

/// The most writes committed together.
const MAX_GROUP: usize = 1024;

pub(crate) const META_PREFIX: &[u8] = b"m\x00";
const ID_COUNTER: &[u8] = b"n\x00table-id";
const TOKEN_PREFIX: &[u8] = b"k\x00";

pub(crate) struct Inner {
    pub storage: Arc<dyn Storage>,
    writer: std::sync::mpsc::Sender<Job>,
    pub catalog: RwLock<HashMap<String, Arc<TableMeta>>>,
    pub region: String,
    /// Woken after each committed write batch (stream readers wait on it).
    pub committed: Arc<tokio::sync::Notify>,
}

/// The DynamoDB-compatible table service.
#[derive(Clone)]
pub struct Tables {
    pub(crate) inner: Arc<Inner>,
}

fn storage_err(e: StorageError) -> DbError {
    tracing::error!("{e}");
    DbError::internal("Internal server error")
}

pub(crate) fn meta_key(name: &str) -> Vec<u8> {
    let mut k = META_PREFIX.to_vec();
    k.extend_from_slice(name.as_bytes());
    k
}

pub(crate) fn decode_item(bytes: &[u8]) -> Result<Item, DbError> {
    let json: Json = serde_json::from_slice(bytes).map_err(|e| DbError::internal(format!("corrupt item: {e}")))?;
    item_from_json(&json)
}

pub(crate) fn encode_item(item: &Item) -> Vec<u8> {
    serde_json::to_vec(&item_to_json(item)).unwrap_or_default()
}

/// Read an item by key through any reader.
pub(crate) fn read_item(r: &dyn Read, meta: &TableMeta, key: &Item) -> Result<Option<Item>, StorageError> {
    match r.get(&meta.item_key(key))? {
        Some(bytes) => Ok(decode_item(&bytes).ok()),
        None => Ok(None),
    }
}

/// Write (or delete, with `new == None`) an item and keep its index and TTL entries and its
/// stream in step.
pub(crate) fn write_item(
    b: &mut dyn Batch,
    meta: &TableMeta,
    old: Option<&Item>,
    new: Option<&Item>,
) -> Result<(), StorageError> {
    write_item_by(b, meta, old, new, crate::stream::Cause::Caller)
}

pub(crate) fn write_item_by(
    b: &mut dyn Batch,
    meta: &TableMeta,
    old: Option<&Item>,
    new: Option<&Item>,
    cause: crate::stream::Cause,
) -> Result<(), StorageError> {
    crate::stream::record(b, meta, old, new, cause)?;
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
            b.put(&meta.item_key(item), &encode_item(item))?;
            let key_json = serde_json::to_vec(&item_to_json(&meta.key_of(item))).unwrap_or_default();
            for index in &meta.indexes {
                if let Some(k) = meta.index_key(index, item) {
                    b.put(&k, &key_json)?;
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

/// Fails (without a storage error) if the table was deleted or re-created since `meta` was read.
pub(crate) fn same_table(b: &dyn Batch, meta: &TableMeta) -> Result<Result<(), DbError>, StorageError> {
    // A 4-byte id per table keeps this check cheap on every write.
    let ok = b
        .get(&id_key(&meta.name))?
        .is_some_and(|id| id.as_slice() == meta.id.to_be_bytes());
    Ok(if ok { Ok(()) } else { Err(DbError::not_found()) })
}

fn id_key(name: &str) -> Vec<u8> {
    let mut k = b"t\x00".to_vec();
    k.extend_from_slice(name.as_bytes());
    k
}

pub(crate) fn str_param<'a>(req: &'a Json, name: &str) -> Option<&'a str> {
    req.get(name).and_then(Json::as_str)
}

/// ExpressionAttributeNames/Values without any expression are an error in DynamoDB.
pub(crate) fn check_substitutions_need_expressions(req: &Json, expressions: &[&str]) -> Result<(), DbError> {
    let any_expr = expressions.iter().any(|e| req.get(*e).is_some_and(|v| !v.is_null()));
    if !any_expr {
        for field in ["ExpressionAttributeNames", "ExpressionAttributeValues"] {
            if req.get(field).is_some_and(|v| !v.is_null()) {
                return Err(DbError::validation(format!(
                    "{field} can only be specified when using expressions"
                )));
            }
        }
    }
    Ok(())
}

/// Reject a mix of legacy and expression parameters.
pub(crate) fn check_no_mix(req: &Json, legacy_params: &[&str], expr_params: &[&str]) -> Result<(), DbError> {
    let present = |names: &[&str]| -> Vec<String> {
        names
            .iter()
            .filter(|n| req.get(**n).is_some_and(|v| !v.is_null()))
            .map(|n| n.to_string())
            .collect()
    };
    let (l, e) = (present(legacy_params), present(expr_params));
    if !l.is_empty() && !e.is_empty() {
        return Err(DbError::validation(format!(
            "Can not use both expression and non-expression parameters in the same request: Non-expression parameters: {{{}}} Expression parameters: {{{}}}",
            l.join(", "),
            e.join(", ")
        )));
    }
    Ok(())
}

/// The condition of a write: ConditionExpression or legacy Expected.
pub(crate) fn write_condition(req: &Json, subs: &Substitutions<'_>) -> Result<Option<Condition>, DbError> {
    check_no_mix(
        req,
        &["Expected", "AttributeUpdates"],
        &["ConditionExpression", "UpdateExpression"],
    )?;
    if let Some(text) = str_param(req, "ConditionExpression") {
        return Ok(Some(expr::parse_condition(text, ExprKind::Condition, subs)?));
    }
    match req.get("Expected").and_then(Json::as_object) {
        Some(m) => legacy::expected(m, str_param(req, "ConditionalOperator")),
        None => Ok(None),
    }
}

/// ProjectionExpression or legacy AttributesToGet.
pub(crate) fn projection(req: &Json, subs: &Substitutions<'_>) -> Result<Option<Vec<Path>>, DbError> {
    check_no_mix(req, &["AttributesToGet"], &["ProjectionExpression"])?;
    if let Some(text) = str_param(req, "ProjectionExpression") {
        return Ok(Some(expr::parse_projection(text, subs)?));
    }
    Ok(req
        .get("AttributesToGet")
        .and_then(Json::as_array)
        .map(|a| legacy::attributes_to_get(a)))
}

fn enum_param<'a>(req: &'a Json, name: &str, allowed: &[&'a str], default: &'a str) -> Result<&'a str, DbError> {
    let v = str_param(req, name).unwrap_or(default);
    if allowed.contains(&v) {
        Ok(v)
    } else {
        Err(DbError::validation(format!(
            "1 validation error detected: Value '{v}' at '{}' failed to satisfy constraint: Member must satisfy enum value set: [{}]",
            name[..1].to_ascii_lowercase() + &name[1..],
            allowed.join(", ")
        )))
    }
}

pub(crate) fn consumed(req: &Json, table: &str, units: f64) -> Option<Json> {
    match str_param(req, "ReturnConsumedCapacity") {
        Some("TOTAL") | Some("INDEXES") => Some(json!({"TableName": table, "CapacityUnits": units})),
        _ => None,
    }
}

impl Tables {
    /// Open (or create) the tables stored in `dir`.
    pub fn open(dir: &FsPath, region: &str) -> Result<Tables, StorageError> {
        let storage: Arc<dyn Storage> = Arc::new(Redb::open(dir)?);
        Tables::with_storage(storage, region)
    }

    pub fn with_storage(storage: Arc<dyn Storage>, region: &str) -> Result<Tables, StorageError> {
        let mut catalog = HashMap::new();
        let end = crate::keys::prefix_end(META_PREFIX).unwrap_or_default();
        let mut bad = None;
        storage.scan(
            Bound::Included(META_PREFIX),
            Bound::Excluded(&end),
            false,
            &mut |_, v| {
                match serde_json::from_slice::<TableMeta>(v) {
                    Ok(m) => {
                        catalog.insert(m.name.clone(), Arc::new(m));
                    }
                    Err(e) => bad = Some(e.to_string()),
                }
                true
            },
        )?;
        if let Some(e) = bad {
            return Err(StorageError(format!("corrupt table description: {e}")));
        }
        let (tx, rx) = std::sync::mpsc::channel::<Job>();
        let writer_storage = storage.clone();
        let committed = Arc::new(tokio::sync::Notify::new());
        let notify = committed.clone();
        std::thread::Builder::new()
            .name("sylph-tables-writer".into())
            .spawn(move || writer_loop(writer_storage, rx, &notify))
            .map_err(|e| StorageError(e.to_string()))?;
        let tables = Tables {
            inner: Arc::new(Inner {
                storage,
                writer: tx,
                catalog: RwLock::new(catalog),
                region: region.to_owned(),
                committed,
            }),
        };
        tables.seed_stream_sequence();
        Ok(tables)
    }

    /// Names of the tables that exist.
    pub fn table_names(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .inner
            .catalog
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .keys()
            .cloned()
            .collect();
        v.sort();
        v
    }

    pub(crate) fn table(&self, req: &Json) -> Result<Arc<TableMeta>, DbError> {
        let name = str_param(req, "TableName").ok_or_else(|| {
            DbError::validation("1 validation error detected: Value null at 'tableName' failed to satisfy constraint: Member must not be null")
        })?;
        self.table_named(name)
    }

    pub(crate) fn table_named(&self, name: &str) -> Result<Arc<TableMeta>, DbError> {
        validate_table_name(name, "tableName")?;
        self.inner
            .catalog
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
            .cloned()
            .ok_or_else(DbError::not_found)
    }

    /// Run a write through the group-committing writer.
    pub(crate) async fn write(&self, op: WriteOp) -> Result<Json, DbError> {
        let (reply, rx) = oneshot::channel();
        self.inner
            .writer
            .send(Job { op, reply })
            .map_err(|_| DbError::internal("the writer has stopped"))?;
        rx.await.map_err(|_| DbError::internal("the writer has stopped"))?
    }

    fn cache(&self, meta: Option<TableMeta>, remove: Option<&str>) {
        let mut c = self.inner.catalog.write().unwrap_or_else(|e| e.into_inner());
        if let Some(name) = remove {
            c.remove(name);
        }
        if let Some(m) = meta {
            c.insert(m.name.clone(), Arc::new(m));
        }
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
        let result = match operation {
            "GetItem" => match self.get_item_raw(&req) {
                Ok(Some(bytes)) => Ok(bytes),
                Ok(None) => self.get_item(&req).map(|j| j.to_string().into_bytes()),
                Err(e) => Err(e),
            },
            "Query" => query::query(self, &req),
            "Scan" => query::scan(self, &req),
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

    /// GetItem without projection or capacity reporting: the stored bytes are the answer.
    fn get_item_raw(&self, req: &Json) -> Result<Option<Vec<u8>>, DbError> {
        let plain = [
            "ProjectionExpression",
            "AttributesToGet",
            "ExpressionAttributeNames",
            "ExpressionAttributeValues",
            "ReturnConsumedCapacity",
        ]
        .iter()
        .all(|k| req.get(*k).is_none_or(Json::is_null));
        if !plain {
            return Ok(None);
        }
        let meta = self.table(req)?;
        let key = item_from_json(req.get("Key").unwrap_or(&Json::Null))?;
        meta.check_key(&key)?;
        let stored = self.inner.storage.get(&meta.item_key(&key)).map_err(storage_err)?;
        Ok(Some(match stored {
            Some(bytes) => {
                let mut out = Vec::with_capacity(bytes.len() + 9);
                out.extend_from_slice(b"{\"Item\":");
                out.extend_from_slice(&bytes);
                out.push(b'}');
                out
            }
            None => b"{}".to_vec(),
        }))
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

    async fn dispatch(&self, operation: &str, req: &Json) -> Result<Json, DbError> {
        match operation {
            "CreateTable" => self.create_table(req).await,
            "DescribeTable" => self.describe_table(req),
            "ListTables" => self.list_tables(req),
            "DeleteTable" => self.delete_table(req).await,
            "UpdateTable" => self.update_table(req).await,
            "PutItem" => self.put_item(req).await,
            "GetItem" => self.get_item(req),
            "UpdateItem" => self.update_item(req).await,
            "DeleteItem" => self.delete_item(req).await,
            "Query" => query::query(self, req)
                .and_then(|b| serde_json::from_slice(&b).map_err(|e| DbError::internal(e.to_string()))),
            "Scan" => query::scan(self, req)
                .and_then(|b| serde_json::from_slice(&b).map_err(|e| DbError::internal(e.to_string()))),
            "BatchGetItem" => crate::batch::batch_get(self, req),
            "BatchWriteItem" => crate::batch::batch_write(self, req).await,
            "TransactWriteItems" => crate::batch::transact_write(self, req).await,
            "TransactGetItems" => crate::batch::transact_get(self, req),
            "UpdateTimeToLive" => self.update_ttl(req).await,
            "DescribeTimeToLive" => self.describe_ttl(req),
            "TagResource" => self.tag(req, true).await,
            "UntagResource" => self.tag(req, false).await,
            "ListTagsOfResource" => self.list_tags(req),
            "DescribeContinuousBackups" => {
                self.table(req)?;
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

    // ---- tables --------------------------------------------------------------------------

    /// Create a table from a CreateTable request (also used to provision `resources:`).
    pub async fn create_table(&self, req: &Json) -> Result<Json, DbError> {
        let mut meta = TableMeta::from_create(req, 0, &self.inner.region)?;
        let name = meta.name.clone();
        let result = self
            .write(Box::new(move |b| {
                let key = meta_key(&meta.name);
                if b.get(&key)?.is_some() {
                    return Ok(Err(DbError::new(ErrorKind::ResourceInUse, format!("Table already exists: {}", meta.name))));
                }
                let next = b.get(ID_COUNTER)?.and_then(|v| v.try_into().ok()).map(u32::from_be_bytes).unwrap_or(0) + 1;
                b.put(ID_COUNTER, &next.to_be_bytes())?;
                meta.id = next;
                b.put(&key, &serde_json::to_vec(&meta).unwrap_or_default())?;
                b.put(&id_key(&meta.name), &next.to_be_bytes())?;
                Ok(Ok(json!({"TableDescription": meta.describe(0, 0, "ACTIVE"), "__meta": serde_json::to_value(&meta).unwrap_or_default()})))
            }))
            .await?;
        let mut result = result;
        if let Some(m) = result.as_object_mut().and_then(|o| o.remove("__meta")) {
            if let Ok(meta) = serde_json::from_value::<TableMeta>(m) {
                self.cache(Some(meta), None);
            }
        }
        tracing::debug!(table = %name, "table created");
        Ok(result)
    }

    fn count(&self, meta: &TableMeta) -> Result<(u64, u64), DbError> {
        let prefix = meta.items_prefix();
        let end = crate::keys::prefix_end(&prefix).unwrap_or_default();
        let (mut n, mut size) = (0u64, 0u64);
        self.inner
            .storage
            .scan(Bound::Included(&prefix), Bound::Excluded(&end), false, &mut |_, v| {
                n += 1;
                size += v.len() as u64;
                true
            })
            .map_err(storage_err)?;
        Ok((n, size))
    }

    fn describe_table(&self, req: &Json) -> Result<Json, DbError> {
        let meta = self.table(req).map_err(with_table_name(req))?;
        let (n, size) = self.count(&meta)?;
        Ok(json!({"Table": meta.describe(n, size, "ACTIVE")}))
    }

    fn list_tables(&self, req: &Json) -> Result<Json, DbError> {
        let limit = match req.get("Limit") {
            Some(Json::Number(n)) => {
                let l = n.as_u64().unwrap_or(0);
                if !(1..=100).contains(&l) {
                    return Err(DbError::validation(format!(
                        "1 validation error detected: Value '{l}' at 'limit' failed to satisfy constraint: Member must have value {}",
                        if l < 1 { "greater than or equal to 1" } else { "less than or equal to 100" }
                    )));
                }
                l as usize
            }
            _ => 100,
        };
        let start = str_param(req, "ExclusiveStartTableName");
        let names: Vec<String> = self
            .table_names()
            .into_iter()
            .filter(|n| start.is_none_or(|s| n.as_str() > s))
            .collect();
        let page: Vec<&String> = names.iter().take(limit).collect();
        let mut out = json!({"TableNames": page});
        if names.len() > limit {
            out["LastEvaluatedTableName"] = json!(page.last());
        }
        Ok(out)
    }

    async fn delete_table(&self, req: &Json) -> Result<Json, DbError> {
        let meta = self.table(req).map_err(with_table_name(req))?;
        if meta.deletion_protection {
            return Err(DbError::validation(format!(
                "Resource cannot be deleted as it is currently protected against deletion. Disable deletion protection first."
            )));
        }
        let (n, size) = self.count(&meta)?;
        let description = meta.describe(n, size, "DELETING");
        let m = meta.clone();
        self.write(Box::new(move |b| {
            if let Err(e) = same_table(b, &m)? {
                return Ok(Err(e));
            }
            b.delete(&meta_key(&m.name))?;
            b.delete(&id_key(&m.name))?;
            let mut prefixes = vec![m.items_prefix(), m.ttl_prefix(), crate::stream::prefix(m.id)];
            prefixes.extend(m.indexes.iter().map(|i| m.index_prefix(i)));
            for p in prefixes {
                delete_prefix(b, &p)?;
            }
            Ok(Ok(Json::Null))
        }))
        .await?;
        self.cache(None, Some(&meta.name));
        Ok(json!({"TableDescription": description}))
    }

    async fn update_table(&self, req: &Json) -> Result<Json, DbError> {
        let meta = self.table(req).map_err(with_table_name(req))?;
        let mut new = (*meta).clone();
        if let Some(mode) = str_param(req, "BillingMode") {
            new.billing_mode = mode.to_owned();
            if mode == "PAY_PER_REQUEST" {
                new.throughput = (0, 0);
            }
        }
        if let Some(tp) = req.get("ProvisionedThroughput") {
            new.throughput = (
                tp.get("ReadCapacityUnits").and_then(Json::as_u64).unwrap_or(0),
                tp.get("WriteCapacityUnits").and_then(Json::as_u64).unwrap_or(0),
            );
        }
        if let Some(p) = req.get("DeletionProtectionEnabled").and_then(Json::as_bool) {
            new.deletion_protection = p;
        }
        if let Some(s) = req.get("StreamSpecification") {
            new.stream = Some(s.clone());
        }
        for d in req
            .get("AttributeDefinitions")
            .and_then(Json::as_array)
            .into_iter()
            .flatten()
        {
            let a = KeyAttr {
                name: d.get("AttributeName").and_then(Json::as_str).unwrap_or("").to_owned(),
                kind: d.get("AttributeType").and_then(Json::as_str).unwrap_or("").to_owned(),
            };
            if !new.attributes.iter().any(|x| x.name == a.name) {
                new.attributes.push(a);
            }
        }
        let mut created = Vec::new();
        let mut deleted = Vec::new();
        for u in req
            .get("GlobalSecondaryIndexUpdates")
            .and_then(Json::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(c) = u.get("Create") {
                let id = new.indexes.iter().map(|i| i.id).max().unwrap_or(0) + 1;
                let ix = parse_index(c, &new.attributes, false, id)?;
                if new.index(&ix.name).is_some() {
                    return Err(DbError::validation(format!(
                        "One or more parameter values were invalid: Index {} already exists",
                        ix.name
                    )));
                }
                created.push(ix.clone());
                new.indexes.push(ix);
            } else if let Some(d) = u.get("Delete") {
                let name = str_param(d, "IndexName").unwrap_or("");
                let Some(pos) = new.indexes.iter().position(|i| i.name == name && !i.local) else {
                    return Err(DbError::new(
                        ErrorKind::ResourceNotFound,
                        format!("Requested resource not found: Index: {name} not found"),
                    ));
                };
                deleted.push(new.indexes.remove(pos));
            } else if let Some(up) = u.get("Update") {
                let name = str_param(up, "IndexName").unwrap_or("");
                let Some(ix) = new.indexes.iter_mut().find(|i| i.name == name) else {
                    return Err(DbError::new(
                        ErrorKind::ResourceNotFound,
                        format!("Requested resource not found: Index: {name} not found"),
                    ));
                };
                if let Some(tp) = up.get("ProvisionedThroughput") {
                    ix.throughput = Some((
                        tp.get("ReadCapacityUnits").and_then(Json::as_u64).unwrap_or(0),
                        tp.get("WriteCapacityUnits").and_then(Json::as_u64).unwrap_or(0),
                    ));
                }
            }
        }
        let (n, size) = self.count(&meta)?;
        let description = new.describe(n, size, "ACTIVE");
        let (old_meta, new_meta) = ((*meta).clone(), new.clone());
        self.write(Box::new(move |b| {
            if let Err(e) = same_table(b, &old_meta)? {
                return Ok(Err(e));
            }
            for ix in &deleted {
                delete_prefix(b, &old_meta.index_prefix(ix))?;
            }
            if !created.is_empty() {
                // Backfill new indexes from the items already in the table.
                let entries = collect_prefix(b, &old_meta.items_prefix())?;
                for (_, v) in entries {
                    let Ok(item) = decode_item(&v) else { continue };
                    let key_json = serde_json::to_vec(&item_to_json(&new_meta.key_of(&item))).unwrap_or_default();
                    for ix in &created {
                        if let Some(k) = new_meta.index_key(ix, &item) {
                            b.put(&k, &key_json)?;
                        }
                    }
                }
            }
            b.put(
                &meta_key(&new_meta.name),
                &serde_json::to_vec(&new_meta).unwrap_or_default(),
            )?;
            Ok(Ok(Json::Null))
        }))
        .await?;
        self.cache(Some(new), None);
        Ok(json!({"TableDescription": description}))
    }

    async fn update_ttl(&self, req: &Json) -> Result<Json, DbError> {
        let meta = self.table(req)?;
        let spec = req.get("TimeToLiveSpecification").cloned().unwrap_or(Json::Null);
        let enabled = spec.get("Enabled").and_then(Json::as_bool).unwrap_or(false);
        let attr = str_param(&spec, "AttributeName").unwrap_or("").to_owned();
        if attr.is_empty() {
            return Err(DbError::validation(
                "TimeToLiveSpecification.AttributeName must be provided",
            ));
        }
        match (&meta.ttl_attribute, enabled) {
            (Some(_), true) => return Err(DbError::validation("TimeToLive is already enabled")),
            (None, false) => return Err(DbError::validation("TimeToLive is already disabled")),
            _ => {}
        }
        let mut new = (*meta).clone();
        new.ttl_attribute = enabled.then(|| attr.clone());
        let (old_meta, new_meta) = ((*meta).clone(), new.clone());
        self.write(Box::new(move |b| {
            if let Err(e) = same_table(b, &old_meta)? {
                return Ok(Err(e));
            }
            delete_prefix(b, &old_meta.ttl_prefix())?;
            if new_meta.ttl_attribute.is_some() {
                for (_, v) in collect_prefix(b, &new_meta.items_prefix())? {
                    if let Some(k) = decode_item(&v).ok().and_then(|item| new_meta.ttl_key(&item)) {
                        b.put(&k, &[])?;
                    }
                }
            }
            b.put(
                &meta_key(&new_meta.name),
                &serde_json::to_vec(&new_meta).unwrap_or_default(),
            )?;
            Ok(Ok(Json::Null))
        }))
        .await?;
        self.cache(Some(new), None);
        Ok(json!({"TimeToLiveSpecification": {"Enabled": enabled, "AttributeName": attr}}))
    }

    fn describe_ttl(&self, req: &Json) -> Result<Json, DbError> {
        let meta = self.table(req)?;
        Ok(match &meta.ttl_attribute {
            Some(a) => json!({"TimeToLiveDescription": {"TimeToLiveStatus": "ENABLED", "AttributeName": a}}),
            None => json!({"TimeToLiveDescription": {"TimeToLiveStatus": "DISABLED"}}),
        })
    }

    fn table_for_arn(&self, req: &Json) -> Result<Arc<TableMeta>, DbError> {
        let arn = str_param(req, "ResourceArn").unwrap_or("");
        let name = arn
            .rsplit_once(":table/")
            .map(|(_, n)| n.split('/').next().unwrap_or(n))
            .unwrap_or("");
        self.table_named(name).map_err(|_| {
            DbError::new(
                ErrorKind::ResourceNotFound,
                format!("Requested resource not found: ResourcArn: {arn} not found"),
            )
        })
    }

    async fn tag(&self, req: &Json, add: bool) -> Result<Json, DbError> {
        let meta = self.table_for_arn(req)?;
        let mut new = (*meta).clone();
        if add {
            for t in req.get("Tags").and_then(Json::as_array).into_iter().flatten() {
                let k = str_param(t, "Key").unwrap_or("").to_owned();
                let v = str_param(t, "Value").unwrap_or("").to_owned();
                new.tags.retain(|(ek, _)| *ek != k);
                new.tags.push((k, v));
            }
        } else {
            let keys: Vec<&str> = req
                .get("TagKeys")
                .and_then(Json::as_array)
                .into_iter()
                .flatten()
                .filter_map(Json::as_str)
                .collect();
            new.tags.retain(|(k, _)| !keys.contains(&k.as_str()));
        }
        let (old_meta, new_meta) = ((*meta).clone(), new.clone());
        self.write(Box::new(move |b| {
            if let Err(e) = same_table(b, &old_meta)? {
                return Ok(Err(e));
            }
            b.put(
                &meta_key(&new_meta.name),
                &serde_json::to_vec(&new_meta).unwrap_or_default(),
            )?;
            Ok(Ok(Json::Null))
        }))
        .await?;
        self.cache(Some(new), None);
        Ok(json!({}))
    }

    fn list_tags(&self, req: &Json) -> Result<Json, DbError> {
        let meta = self.table_for_arn(req)?;
        Ok(json!({"Tags": meta.tags.iter().map(|(k, v)| json!({"Key": k, "Value": v})).collect::<Vec<_>>()}))
    }

    // ---- items ----------------------------------------------------------------------------

    async fn put_item(&self, req: &Json) -> Result<Json, DbError> {
        let meta = self.table(req)?;
        let item = item_from_json(req.get("Item").unwrap_or(&Json::Null))?;
        meta.check_item(&item)?;
        if item_size(&item) > MAX_ITEM_BYTES {
            return Err(DbError::validation("Item size has exceeded the maximum allowed size"));
        }
        check_substitutions_need_expressions(req, &["ConditionExpression"])?;
        let subs = Substitutions::new(req)?;
        let cond = write_condition(req, &subs)?;
        subs.check_all_used()?;
        let return_old = enum_param(req, "ReturnValues", &["NONE", "ALL_OLD"], "NONE")? == "ALL_OLD";
        let old_on_fail =
            enum_param(req, "ReturnValuesOnConditionCheckFailure", &["NONE", "ALL_OLD"], "NONE")? == "ALL_OLD";
        let cc = consumed(req, &meta.name, 1.0);
        // A blind put on a table without indexes, TTL or stream needs nothing from the old item, and its
        // bytes are prepared here rather than on the (single) writer thread.
        let blind = cond.is_none()
            && !return_old
            && meta.indexes.is_empty()
            && meta.ttl_attribute.is_none()
            && crate::stream::view_type(&meta).is_none();
        if blind {
            let (key, bytes) = (meta.item_key(&item), encode_item(&item));
            return self
                .write(Box::new(move |b| {
                    if let Err(e) = same_table(b, &meta)? {
                        return Ok(Err(e));
                    }
                    b.put(&key, &bytes)?;
                    Ok(Ok(old_item_answer(None, cc)))
                }))
                .await;
        }
        self.write(Box::new(move |b| {
            let old = match checked_old(b, &meta, &item, cond.as_ref(), old_on_fail)? {
                Ok(old) => old,
                Err(e) => return Ok(Err(e)),
            };
            write_item(b, &meta, old.as_ref(), Some(&item))?;
            Ok(Ok(old_item_answer(old.as_ref().filter(|_| return_old), cc)))
        }))
        .await
    }

    fn get_item(&self, req: &Json) -> Result<Json, DbError> {
        let meta = self.table(req)?;
        let key = item_from_json(req.get("Key").unwrap_or(&Json::Null))?;
        meta.check_key(&key)?;
        check_substitutions_need_expressions(req, &["ProjectionExpression"])?;
        let subs = Substitutions::new(req)?;
        let paths = projection(req, &subs)?;
        subs.check_all_used()?;
        let item = read_item(&*self.inner.storage, &meta, &key).map_err(storage_err)?;
        let mut out = json!({});
        if let Some(item) = item {
            let item = match &paths {
                Some(p) => expr::project(&item, p),
                None => item,
            };
            out["Item"] = item_to_json(&item);
        }
        if let Some(cc) = consumed(req, &meta.name, 0.5) {
            out["ConsumedCapacity"] = cc;
        }
        Ok(out)
    }

    async fn update_item(&self, req: &Json) -> Result<Json, DbError> {
        let meta = self.table(req)?;
        let key = item_from_json(req.get("Key").unwrap_or(&Json::Null))?;
        meta.check_key(&key)?;
        check_substitutions_need_expressions(req, &["ConditionExpression", "UpdateExpression"])?;
        let subs = Substitutions::new(req)?;
        let cond = write_condition(req, &subs)?;
        let actions = match (
            str_param(req, "UpdateExpression"),
            req.get("AttributeUpdates").and_then(Json::as_object),
        ) {
            (Some(text), _) => expr::parse_update(text, &subs)?,
            (None, Some(m)) => legacy::attribute_updates(m)?,
            (None, None) => Vec::new(),
        };
        subs.check_all_used()?;
        let return_values = enum_param(
            req,
            "ReturnValues",
            &["NONE", "ALL_OLD", "UPDATED_OLD", "ALL_NEW", "UPDATED_NEW"],
            "NONE",
        )?
        .to_owned();
        let old_on_fail =
            enum_param(req, "ReturnValuesOnConditionCheckFailure", &["NONE", "ALL_OLD"], "NONE")? == "ALL_OLD";
        let cc = consumed(req, &meta.name, 1.0);
        self.write(Box::new(move |b| {
            let old = match checked_old(b, &meta, &key, cond.as_ref(), old_on_fail)? {
                Ok(old) => old,
                Err(e) => return Ok(Err(e)),
            };
            let base = old.clone().unwrap_or_else(|| key.clone());
            let outcome = match expr::apply_update(&base, &actions, &meta.key_names()) {
                Ok(o) => o,
                Err(e) => return Ok(Err(e)),
            };
            if let Err(e) = meta.check_item(&outcome.item) {
                return Ok(Err(e));
            }
            if item_size(&outcome.item) > MAX_ITEM_BYTES {
                return Ok(Err(DbError::validation(
                    "Item size to update has exceeded the maximum allowed size",
                )));
            }
            write_item(b, &meta, old.as_ref(), Some(&outcome.item))?;
            let pick = |item: &Item| -> Item {
                item.iter()
                    .filter(|(k, _)| outcome.touched.contains(*k))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect()
            };
            let attributes = match return_values.as_str() {
                "ALL_OLD" => old.clone(),
                "UPDATED_OLD" => old.as_ref().map(pick),
                "ALL_NEW" => Some(outcome.item.clone()),
                "UPDATED_NEW" => Some(pick(&outcome.item)),
                _ => None,
            };
            let mut out = json!({});
            if let Some(a) = attributes.filter(|a| !a.is_empty()) {
                out["Attributes"] = item_to_json(&a);
            }
            if let Some(cc) = cc {
                out["ConsumedCapacity"] = cc;
            }
            Ok(Ok(out))
        }))
        .await
    }

    async fn delete_item(&self, req: &Json) -> Result<Json, DbError> {
        let meta = self.table(req)?;
        let key = item_from_json(req.get("Key").unwrap_or(&Json::Null))?;
        meta.check_key(&key)?;
        check_substitutions_need_expressions(req, &["ConditionExpression"])?;
        let subs = Substitutions::new(req)?;
        let cond = write_condition(req, &subs)?;
        subs.check_all_used()?;
        let return_old = enum_param(req, "ReturnValues", &["NONE", "ALL_OLD"], "NONE")? == "ALL_OLD";
        let old_on_fail =
            enum_param(req, "ReturnValuesOnConditionCheckFailure", &["NONE", "ALL_OLD"], "NONE")? == "ALL_OLD";
        let cc = consumed(req, &meta.name, 1.0);
        self.write(Box::new(move |b| {
            let old = match checked_old(b, &meta, &key, cond.as_ref(), old_on_fail)? {
                Ok(old) => old,
                Err(e) => return Ok(Err(e)),
            };
            write_item(b, &meta, old.as_ref(), None)?;
            Ok(Ok(old_item_answer(old.as_ref().filter(|_| return_old), cc)))
        }))
        .await
    }

    // ---- time to live ---------------------------------------------------------------------

    /// Delete every item whose TTL attribute is in the past. Returns how many were deleted.
    pub async fn expire_items(&self) -> Result<usize, DbError> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let tables: Vec<Arc<TableMeta>> = self
            .inner
            .catalog
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .filter(|m| m.ttl_attribute.is_some())
            .cloned()
            .collect();
        let mut total = 0;
        for meta in tables {
            let prefix = meta.ttl_prefix();
            let mut end = prefix.clone();
            end.extend_from_slice(&(now + 1).to_be_bytes());
            let mut keys = Vec::new();
            self.inner
                .storage
                .scan(Bound::Included(&prefix), Bound::Excluded(&end), false, &mut |k, _| {
                    keys.push(k[prefix.len() + 8..].to_vec());
                    keys.len() < 1000
                })
                .map_err(storage_err)?;
            if keys.is_empty() {
                continue;
            }
            let m = meta.clone();
            let n = self
                .write(Box::new(move |b| {
                    if let Err(e) = same_table(b, &m)? {
                        return Ok(Err(e));
                    }
                    let mut deleted = 0u64;
                    for suffix in keys {
                        let mut item_key = m.items_prefix();
                        item_key.extend_from_slice(&suffix);
                        let Some(bytes) = b.get(&item_key)? else { continue };
                        let Ok(item) = decode_item(&bytes) else { continue };
                        // The item may have been rewritten with a later expiry since the scan.
                        let due = m.ttl_key(&item).is_some_and(|k| k < end);
                        if due {
                            write_item_by(b, &m, Some(&item), None, crate::stream::Cause::Ttl)?;
                            deleted += 1;
                        }
                    }
                    Ok(Ok(json!(deleted)))
                }))
                .await?;
            total += n.as_u64().unwrap_or(0) as usize;
        }
        Ok(total)
    }

    /// Expire items in the background, once a second, for as long as the service lives.
    pub fn spawn_ttl_reaper(&self) {
        let weak = Arc::downgrade(&self.inner);
        tokio::spawn(async move {
            let mut ticks = 0u64;
            loop {
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                let Some(inner) = weak.upgrade() else { break };
                let tables = Tables { inner };
                if let Err(e) = tables.expire_items().await {
                    tracing::warn!("expiring items failed: {e}");
                }
                // Stream records older than a day go, once a minute.
                ticks += 1;
                if ticks % 60 == 0 {
                    if let Err(e) = tables.trim_streams().await {
                        tracing::warn!("trimming streams failed: {e}");
                    }
                }
            }
        });
    }
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

/// The answer of a put or delete: the old item when asked for, the consumed capacity when asked.
fn old_item_answer(old: Option<&Item>, consumed: Option<Json>) -> Json {
    let mut out = json!({});
    if let Some(old) = old {
        out["Attributes"] = item_to_json(old);
    }
    if let Some(cc) = consumed {
        out["ConsumedCapacity"] = cc;
    }
    out
}

pub(crate) fn condition_error(old: Option<&Item>, return_old: bool) -> DbError {
    let e = DbError::condition_failed();
    match (return_old, old) {
        (true, Some(old)) => e.with("Item", item_to_json(old)),
        _ => e,
    }
}

fn with_table_name(req: &Json) -> impl Fn(DbError) -> DbError + '_ {
    move |e| {
        if e.kind == ErrorKind::ResourceNotFound {
            DbError::new(
                ErrorKind::ResourceNotFound,
                format!(
                    "Requested resource not found: Table: {} not found",
                    str_param(req, "TableName").unwrap_or("")
                ),
            )
        } else {
            e
        }
    }
}

fn collect_prefix(b: &dyn Batch, prefix: &[u8]) -> Result<Vec<(Vec<u8>, Vec<u8>)>, StorageError> {
    let end = crate::keys::prefix_end(prefix).unwrap_or_default();
    let mut out = Vec::new();
    b.scan(Bound::Included(prefix), Bound::Excluded(&end), false, &mut |k, v| {
        out.push((k.to_vec(), v.to_vec()));
        true
    })?;
    Ok(out)
}

fn delete_prefix(b: &mut dyn Batch, prefix: &[u8]) -> Result<(), StorageError> {
    for (k, _) in collect_prefix(b, prefix)? {
        b.delete(&k)?;
    }
    Ok(())
}

pub(crate) fn token_key(token: &str) -> Vec<u8> {
    let mut k = TOKEN_PREFIX.to_vec();
    k.extend_from_slice(token.as_bytes());
    k
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
            for (i, op) in ops.iter_mut().enumerate() {
                if let Some(op) = op.take() {
                    results[i] = Some(op(b)?);
                }
            }
            Ok(())
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
