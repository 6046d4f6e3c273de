//! The table operations: CreateTable, DescribeTable, ListTables, DeleteTable, UpdateTable,
//! time to live and tags; and the background expiry of items.

use std::ops::Bound;
use std::sync::Arc;

use serde_json::{json, Value as Json};

use crate::catalog::{parse_index, KeyAttr, TableMeta};
use crate::codec::{decode_item, id_key, meta_key, storage_err, store_meta, ID_COUNTER};
use crate::error::{DbError, ErrorKind};
use crate::request::str_param;
use crate::service::Tables;
use crate::stats::{self, TableStats};
use crate::storage::{Batch, Read, StorageError};
use crate::value::item_to_json;
use crate::writer::{same_table, write_item_by};

impl Tables {
    // ---- tables --------------------------------------------------------------------------

    /// Create a table from a CreateTable request (also used to provision `resources:`).
    /// Returns its description.
    pub async fn create_table(&self, req: &Json) -> Result<Json, DbError> {
        let meta = TableMeta::from_create(req, 0, &self.inner.region)?;
        let stored = meta.clone();
        let id = self
            .write(Box::new(move |b| {
                let mut meta = stored;
                let key = meta_key(&meta.name);
                if b.get(&key)?.is_some() {
                    return Ok(Err(DbError::new(
                        ErrorKind::ResourceInUse,
                        format!("Table already exists: {}", meta.name),
                    )));
                }
                let last = b
                    .get(ID_COUNTER)?
                    .and_then(|v| v.try_into().ok())
                    .map(u32::from_be_bytes);
                let id = last.unwrap_or(0) + 1;
                b.put(ID_COUNTER, &id.to_be_bytes())?;
                meta.id = id;
                store_meta(b, &meta)?;
                b.set_stats(&meta, TableStats::default());
                Ok(Ok(json!(id)))
            }))
            .await?;
        let id = id
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .ok_or_else(|| DbError::internal("the writer answered no table id"))?;
        let meta = TableMeta { id, ..meta };
        let description = meta.describe(&TableStats::default(), "ACTIVE");
        tracing::debug!(table = %meta.name, "table created");
        self.inner.catalog.insert(meta);
        Ok(description)
    }

    /// The table's statistics as last committed: one read, whatever the table's size.
    fn stats(&self, meta: &TableMeta) -> Result<TableStats, DbError> {
        stats::read(&*self.inner.storage, meta).map_err(storage_err)
    }

    pub(crate) fn describe_table(&self, req: &Json) -> Result<Json, DbError> {
        let meta = self.inner.catalog.of_request(req).map_err(with_table_name(req))?;
        Ok(json!({"Table": meta.describe(&self.stats(&meta)?, "ACTIVE")}))
    }

    pub(crate) fn list_tables(&self, req: &Json) -> Result<Json, DbError> {
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

    pub(crate) async fn delete_table(&self, req: &Json) -> Result<Json, DbError> {
        let meta = self.inner.catalog.of_request(req).map_err(with_table_name(req))?;
        if meta.deletion_protection {
            return Err(DbError::validation(
                "Resource cannot be deleted as it is currently protected against deletion. Disable deletion protection first.",
            ));
        }
        let description = meta.describe(&self.stats(&meta)?, "DELETING");
        let m = meta.clone();
        self.write(Box::new(move |b| {
            if let Err(e) = same_table(b, &m)? {
                return Ok(Err(e));
            }
            b.delete(&meta_key(&m.name))?;
            b.delete(&id_key(&m.name))?;
            b.forget_stats(&m)?;
            let mut prefixes = vec![m.items_prefix(), m.ttl_prefix(), crate::stream::prefix(m.id)];
            prefixes.extend(m.indexes.iter().map(|i| m.index_prefix(i)));
            for p in prefixes {
                delete_prefix(b, &p)?;
            }
            Ok(Ok(Json::Null))
        }))
        .await?;
        self.inner.catalog.remove(&meta.name);
        Ok(json!({"TableDescription": description}))
    }

    pub(crate) async fn update_table(&self, req: &Json) -> Result<Json, DbError> {
        let meta = self.inner.catalog.of_request(req).map_err(with_table_name(req))?;
        let mut new = (*meta).clone();
        new.version = meta.version.wrapping_add(1);
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
                let id = new
                    .indexes
                    .iter()
                    .map(|i| i.id)
                    .max()
                    .unwrap_or(0)
                    .max(new.last_index_id)
                    + 1;
                new.last_index_id = id;
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
        let description = new.describe(&self.stats(&meta)?, "ACTIVE");
        let (old_meta, new_meta) = ((*meta).clone(), new.clone());
        self.write(Box::new(move |b| {
            if let Err(e) = same_table(b, &old_meta)? {
                return Ok(Err(e));
            }
            for ix in &deleted {
                delete_prefix(b, &old_meta.index_prefix(ix))?;
                stats::drop_index(b, &old_meta, ix.id)?;
            }
            if !created.is_empty() {
                // Backfill new indexes from the items already in the table, and count them.
                let entries = collect_prefix(b, &old_meta.items_prefix())?;
                let mut counted = stats::Recount::new(&new_meta);
                for (_, v) in entries {
                    let Ok(item) = decode_item(&v) else { continue };
                    let key_json = serde_json::to_vec(&item_to_json(&new_meta.key_of(&item))).unwrap_or_default();
                    for ix in &created {
                        if let Some(k) = new_meta.index_key(ix, &item) {
                            b.put(&k, &key_json)?;
                        }
                    }
                    counted.add(&item);
                }
                b.set_stats(&new_meta, counted.finish());
            }
            store_meta(b, &new_meta)?;
            Ok(Ok(Json::Null))
        }))
        .await?;
        self.inner.catalog.insert(new);
        Ok(json!({"TableDescription": description}))
    }

    pub(crate) async fn update_ttl(&self, req: &Json) -> Result<Json, DbError> {
        let meta = self.inner.catalog.of_request(req)?;
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
        new.version = meta.version.wrapping_add(1);
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
            store_meta(b, &new_meta)?;
            Ok(Ok(Json::Null))
        }))
        .await?;
        self.inner.catalog.insert(new);
        Ok(json!({"TimeToLiveSpecification": {"Enabled": enabled, "AttributeName": attr}}))
    }

    pub(crate) fn describe_ttl(&self, req: &Json) -> Result<Json, DbError> {
        let meta = self.inner.catalog.of_request(req)?;
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

    pub(crate) async fn tag(&self, req: &Json, add: bool) -> Result<Json, DbError> {
        let meta = self.table_for_arn(req)?;
        let mut new = (*meta).clone();
        new.version = meta.version.wrapping_add(1);
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
            store_meta(b, &new_meta)?;
            Ok(Ok(Json::Null))
        }))
        .await?;
        self.inner.catalog.insert(new);
        Ok(json!({}))
    }

    pub(crate) fn list_tags(&self, req: &Json) -> Result<Json, DbError> {
        let meta = self.table_for_arn(req)?;
        Ok(json!({"Tags": meta.tags.iter().map(|(k, v)| json!({"Key": k, "Value": v})).collect::<Vec<_>>()}))
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
            .all()
            .into_iter()
            .filter(|m| m.ttl_attribute.is_some())
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
                            write_item_by(b, &m, Some(&item), None, None, crate::stream::Cause::Ttl)?;
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
                if ticks.is_multiple_of(60) {
                    if let Err(e) = tables.trim_streams().await {
                        tracing::warn!("trimming streams failed: {e}");
                    }
                }
            }
        });
    }
}

/// DynamoDB names the missing table in the table operations' error.
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

/// A stored key and its value.
type Entry = (Vec<u8>, Vec<u8>);

fn collect_prefix(b: &dyn Batch, prefix: &[u8]) -> Result<Vec<Entry>, StorageError> {
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
