//! BatchGetItem, BatchWriteItem, TransactWriteItems and TransactGetItems.

use std::sync::Arc;

use serde_json::{json, Map, Value as Json};

use crate::catalog::{Catalog, TableMeta};
use crate::codec::{read_item, storage_err, token_key};
use crate::error::{DbError, ErrorKind};
use crate::expr::{self, Condition, Path, Substitutions, UpdateAction};
use crate::items::{item_param, key_param};
use crate::request::{check_substitutions_need_expressions, old_on_fail, projection, str_param, write_condition};
use crate::storage::{Batch, Storage, StorageError};
use crate::value::{item_size, item_to_json, Item, MAX_ITEM_BYTES};
use crate::writer::{same_table, write_item, WriteOp};

const MAX_BATCH_GET: usize = 100;
const MAX_BATCH_WRITE: usize = 25;
const MAX_TRANSACT: usize = 100;
/// The most a transaction may write.
const MAX_TRANSACTION_BYTES: usize = 4 * 1024 * 1024;
/// How long a transaction's ClientRequestToken is remembered.
const TOKEN_TTL_SECS: u64 = 600;

/// A transaction's ClientRequestToken, with the request it came with: the same request with
/// the same token within ten minutes succeeds again without applying anything; another request
/// with it is refused.
pub(crate) struct RequestToken {
    token: String,
    /// The request without its token.
    fingerprint: String,
}

impl RequestToken {
    /// The request's token, if it has one (1 to 36 characters).
    pub fn of(req: &Json) -> Result<Option<RequestToken>, DbError> {
        let Some(token) = str_param(req, "ClientRequestToken") else {
            return Ok(None);
        };
        let n = token.chars().count();
        if !(1..=36).contains(&n) {
            return Err(DbError::validation(format!(
                "1 validation error detected: Value '{token}' at 'clientRequestToken' failed to satisfy constraint: Member must have length {}",
                if n == 0 { "greater than or equal to 1" } else { "less than or equal to 36" }
            )));
        }
        let mut rest = req.clone();
        if let Some(o) = rest.as_object_mut() {
            o.remove("ClientRequestToken");
        }
        Ok(Some(RequestToken {
            token: token.to_owned(),
            fingerprint: rest.to_string(),
        }))
    }

    fn now() -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)
    }

    /// In the write: the answer to give if this token was used within the window.
    pub fn seen(&self, b: &dyn Batch) -> Result<Option<Result<Json, DbError>>, StorageError> {
        let Some(bytes) = b.get(&token_key(&self.token))? else {
            return Ok(None);
        };
        let seen: Json = serde_json::from_slice(&bytes).unwrap_or(Json::Null);
        let at = seen.get("at").and_then(Json::as_u64).unwrap_or(0);
        if Self::now().saturating_sub(at) >= TOKEN_TTL_SECS {
            return Ok(None);
        }
        if seen.get("request").and_then(Json::as_str) == Some(self.fingerprint.as_str()) {
            return Ok(Some(Ok(json!({}))));
        }
        Ok(Some(Err(DbError::new(
            ErrorKind::IdempotentParameterMismatch,
            "Specified idempotent token was already used with different request parameters",
        ))))
    }

    /// In the write, once it has been applied.
    pub fn remember(&self, b: &mut dyn Batch) -> Result<(), StorageError> {
        let record = json!({"at": Self::now(), "request": self.fingerprint});
        b.put(&token_key(&self.token), record.to_string().as_bytes())
    }
}

fn key_of(meta: &TableMeta, key: &Json) -> Result<Item, DbError> {
    let key = crate::value::item_from_json(key)?;
    meta.check_key(&key)?;
    Ok(key)
}

fn request_items(req: &Json) -> Result<&Map<String, Json>, DbError> {
    match req.get("RequestItems") {
        Some(Json::Object(m)) if !m.is_empty() => Ok(m),
        _ => Err(DbError::validation(
            "1 validation error detected: Value null at 'requestItems' failed to satisfy constraint: Member must not be null",
        )),
    }
}

pub(crate) fn batch_get(catalog: &Catalog, storage: &dyn Storage, req: &Json) -> Result<Json, DbError> {
    let items = request_items(req)?;
    let total: usize = items
        .values()
        .map(|t| t.get("Keys").and_then(Json::as_array).map_or(0, Vec::len))
        .sum();
    if total > MAX_BATCH_GET {
        return Err(DbError::validation(
            "Too many items requested for the BatchGetItem call",
        ));
    }
    let snap = storage.snapshot().map_err(storage_err)?;
    let mut responses = Map::new();
    for (name, spec) in items {
        let meta = catalog.get(name)?;
        check_substitutions_need_expressions(spec, &["ProjectionExpression"])?;
        let subs = Substitutions::new(spec)?;
        let paths = projection(spec, &subs)?;
        subs.check_all_used()?;
        let keys = spec.get("Keys").and_then(Json::as_array).cloned().unwrap_or_default();
        if keys.is_empty() {
            return Err(DbError::validation("1 validation error detected: Value at 'requestItems' failed to satisfy constraint: Member must have length greater than or equal to 1"));
        }
        let mut seen = Vec::with_capacity(keys.len());
        let mut found = Vec::new();
        for k in &keys {
            let key = key_of(&meta, k)?;
            let storage_key = meta.item_key(&key);
            if seen.contains(&storage_key) {
                return Err(DbError::validation("Provided list of item keys contains duplicates"));
            }
            seen.push(storage_key);
            if let Some(item) = read_item(&*snap, &meta, &key).map_err(storage_err)? {
                let item = match &paths {
                    Some(p) => expr::project(&item, p),
                    None => item,
                };
                found.push(item_to_json(&item));
            }
        }
        responses.insert(name.clone(), Json::Array(found));
    }
    Ok(json!({"Responses": responses, "UnprocessedKeys": {}}))
}

enum WriteRequest {
    Put(Item),
    Delete(Item),
}

pub(crate) fn batch_write(catalog: &Catalog, req: &Json) -> Result<WriteOp, DbError> {
    let items = request_items(req)?;
    // One table's list longer than 25 breaks the request's shape; 25 in all across tables is
    // DynamoDB's other limit, worded differently.
    if items
        .values()
        .any(|t| t.as_array().is_some_and(|l| l.len() > MAX_BATCH_WRITE))
    {
        let shown: Vec<String> = items
            .iter()
            .map(|(name, list)| {
                let entries: Vec<String> = list.as_array().into_iter().flatten().map(Json::to_string).collect();
                format!("{name}=[{}]", entries.join(", "))
            })
            .collect();
        return Err(DbError::validation(format!(
            "1 validation error detected: Value '{{{}}}' at 'requestItems' failed to satisfy constraint: Map value must satisfy constraint: [Member must have length less than or equal to 25, Member must have length greater than or equal to 1]",
            shown.join(", ")
        )));
    }
    let total: usize = items.values().map(|t| t.as_array().map_or(0, Vec::len)).sum();
    if total > MAX_BATCH_WRITE {
        return Err(DbError::validation(
            "Too many items requested for the BatchWriteItem call",
        ));
    }
    let mut plan: Vec<(Arc<TableMeta>, Vec<WriteRequest>)> = Vec::new();
    for (name, list) in items {
        let meta = catalog.get(name)?;
        let list = list.as_array().cloned().unwrap_or_default();
        let mut writes = Vec::with_capacity(list.len());
        let mut seen = Vec::with_capacity(list.len());
        for w in &list {
            let (storage_key, write) = if let Some(p) = w.get("PutRequest") {
                let item = item_param(&meta, p)?;
                (meta.item_key(&item), WriteRequest::Put(item))
            } else if let Some(d) = w.get("DeleteRequest") {
                let key = key_param(&meta, d)?;
                (meta.item_key(&key), WriteRequest::Delete(key))
            } else {
                return Err(DbError::validation("1 validation error detected: Value at 'requestItems' failed to satisfy constraint: a WriteRequest must hold a PutRequest or a DeleteRequest"));
            };
            if seen.contains(&storage_key) {
                return Err(DbError::validation("Provided list of item keys contains duplicates"));
            }
            seen.push(storage_key);
            writes.push(write);
        }
        plan.push((meta, writes));
    }
    Ok(Box::new(move |b| {
        for (meta, _) in &plan {
            if let Err(e) = same_table(b, meta)? {
                return Ok(Err(e));
            }
        }
        for (meta, writes) in &plan {
            for w in writes {
                match w {
                    WriteRequest::Put(item) => {
                        let old = read_item(b, meta, item)?;
                        write_item(b, meta, old.as_ref(), Some(item))?;
                    }
                    WriteRequest::Delete(key) => {
                        let old = read_item(b, meta, key)?;
                        write_item(b, meta, old.as_ref(), None)?;
                    }
                }
            }
        }
        Ok(Ok(json!({"UnprocessedItems": {}})))
    }))
}

enum TxKind {
    Check,
    Put(Item),
    Update(Vec<UpdateAction>),
    Delete,
}

struct TxOp {
    meta: Arc<TableMeta>,
    key: Item,
    condition: Option<Condition>,
    return_old: bool,
    kind: TxKind,
}

fn tx_op(catalog: &Catalog, entry: &Json) -> Result<TxOp, DbError> {
    let (kind_name, spec) = ["ConditionCheck", "Put", "Update", "Delete"]
        .iter()
        .find_map(|k| entry.get(*k).map(|v| (*k, v)))
        .ok_or_else(|| {
            DbError::validation("TransactItems can only contain one of ConditionCheck, Put, Update or Delete")
        })?;
    let meta = catalog.of_request(spec)?;
    let expressions: &[&str] = match kind_name {
        "Update" => &["ConditionExpression", "UpdateExpression"],
        _ => &["ConditionExpression"],
    };
    check_substitutions_need_expressions(spec, expressions)?;
    let subs = Substitutions::new(spec)?;
    let condition = write_condition(spec, &subs)?;
    let return_old = old_on_fail(spec)?;
    let (key, kind) = match kind_name {
        "Put" => {
            let item = item_param(&meta, spec)?;
            (meta.key_of(&item), TxKind::Put(item))
        }
        other => {
            let key = key_param(&meta, spec)?;
            let kind = match other {
                "Update" => {
                    let text = str_param(spec, "UpdateExpression").ok_or_else(|| {
                        DbError::validation("UpdateExpression is required for an Update in a transaction")
                    })?;
                    let actions = expr::parse_update(text, &subs)?;
                    expr::check_update_paths(&actions, &meta.key_names())?;
                    TxKind::Update(actions)
                }
                "Delete" => TxKind::Delete,
                _ => {
                    if condition.is_none() {
                        return Err(DbError::validation(
                            "The ConditionCheck must specify a ConditionExpression",
                        ));
                    }
                    TxKind::Check
                }
            };
            (key, kind)
        }
    };
    subs.check_all_used()?;
    Ok(TxOp {
        meta,
        key,
        condition,
        return_old,
        kind,
    })
}

pub(crate) fn transact_write(catalog: &Catalog, req: &Json) -> Result<WriteOp, DbError> {
    let entries = req
        .get("TransactItems")
        .and_then(Json::as_array)
        .cloned()
        .unwrap_or_default();
    if entries.is_empty() || entries.len() > MAX_TRANSACT {
        return Err(DbError::validation(format!(
            "1 validation error detected: Value at 'transactItems' failed to satisfy constraint: Member must have length {} 100",
            if entries.is_empty() { "greater than or equal to 1, less than or equal to" } else { "less than or equal to" }
        )));
    }
    let mut ops = Vec::with_capacity(entries.len());
    let mut seen: Vec<(u32, Vec<u8>)> = Vec::with_capacity(entries.len());
    for e in &entries {
        let op = tx_op(catalog, e)?;
        let id = (op.meta.id, op.meta.item_key(&op.key));
        if seen.contains(&id) {
            return Err(DbError::validation(
                "Transaction request cannot include multiple operations on one item",
            ));
        }
        seen.push(id);
        ops.push(op);
    }
    // DynamoDB's 4 MB limit on what a transaction writes: the items it puts and the keys of
    // its other actions. (The text is ours: DynamoDB's exact wording is not documented.)
    let written: usize = ops
        .iter()
        .map(|op| match &op.kind {
            TxKind::Put(item) => item_size(item),
            _ => item_size(&op.key),
        })
        .sum();
    if written > MAX_TRANSACTION_BYTES {
        return Err(DbError::validation(format!(
            "Transaction request cannot be larger than 4 MB: the items in it total {written} bytes"
        )));
    }
    let token = RequestToken::of(req)?;
    Ok(Box::new(move |b| {
        if let Some(t) = &token {
            if let Some(answer) = t.seen(b)? {
                return Ok(answer);
            }
        }
        for op in &ops {
            if let Err(e) = same_table(b, &op.meta)? {
                return Ok(Err(e));
            }
        }
        // Every condition is checked before anything is written: all or nothing.
        let mut olds = Vec::with_capacity(ops.len());
        let mut reasons = Vec::with_capacity(ops.len());
        let mut failed = false;
        for op in &ops {
            let old = read_item(b, &op.meta, &op.key)?;
            let ok = op
                .condition
                .as_ref()
                .is_none_or(|c| expr::matches(c, old.as_ref().unwrap_or(&Item::new())));
            if ok {
                reasons.push(json!({"Code": "None"}));
            } else {
                failed = true;
                let mut r = json!({"Code": "ConditionalCheckFailed", "Message": "The conditional request failed"});
                if let (true, Some(o)) = (op.return_old, &old) {
                    r["Item"] = item_to_json(o);
                }
                reasons.push(r);
            }
            olds.push(old);
        }
        // Updates can fail on their own (bad types, key attributes): that cancels too.
        let mut news = Vec::with_capacity(ops.len());
        if !failed {
            for (i, op) in ops.iter().enumerate() {
                let new = match &op.kind {
                    TxKind::Check => None,
                    TxKind::Delete => None,
                    TxKind::Put(item) => Some(item.clone()),
                    TxKind::Update(actions) => {
                        let base = olds[i].clone().unwrap_or_else(|| op.key.clone());
                        let applied = expr::apply_update(&base, actions, &op.meta.key_names())
                            .and_then(|o| op.meta.check_item(&o.item).map(|()| o.item))
                            .and_then(|item| {
                                if item_size(&item) > MAX_ITEM_BYTES {
                                    return Err(DbError::validation(
                                        "Item size to update has exceeded the maximum allowed size",
                                    ));
                                }
                                Ok(item)
                            });
                        match applied {
                            Ok(item) => Some(item),
                            // An update that cannot apply to the stored item cancels the
                            // transaction with a ValidationError reason, as DynamoDB does.
                            Err(e) => {
                                reasons[i] = json!({"Code": "ValidationError", "Message": e.message});
                                None
                            }
                        }
                    }
                };
                news.push(new);
            }
            failed = reasons.iter().any(|r| r["Code"] != "None");
        }
        if failed {
            let codes: Vec<&str> = reasons.iter().map(|r| r["Code"].as_str().unwrap_or("None")).collect();
            let message = format!(
                "Transaction cancelled, please refer cancellation reasons for specific reasons [{}]",
                codes.join(", ")
            );
            let mut e = DbError::new(ErrorKind::TransactionCanceled, message);
            e.extra = Some(("CancellationReasons", Json::Array(reasons)));
            return Ok(Err(e));
        }
        for (i, op) in ops.iter().enumerate() {
            match &op.kind {
                TxKind::Check => {}
                TxKind::Delete => write_item(b, &op.meta, olds[i].as_ref(), None)?,
                TxKind::Put(_) | TxKind::Update(_) => write_item(b, &op.meta, olds[i].as_ref(), news[i].as_ref())?,
            }
        }
        if let Some(t) = &token {
            t.remember(b)?;
        }
        Ok(Ok(json!({})))
    }))
}

pub(crate) fn transact_get(catalog: &Catalog, storage: &dyn Storage, req: &Json) -> Result<Json, DbError> {
    let entries = req
        .get("TransactItems")
        .and_then(Json::as_array)
        .cloned()
        .unwrap_or_default();
    if entries.is_empty() || entries.len() > MAX_TRANSACT {
        return Err(DbError::validation("1 validation error detected: Value at 'transactItems' failed to satisfy constraint: Member must have length less than or equal to 100"));
    }
    let mut gets: Vec<(Arc<TableMeta>, Item, Option<Vec<Path>>)> = Vec::with_capacity(entries.len());
    for e in &entries {
        let spec = e
            .get("Get")
            .ok_or_else(|| DbError::validation("TransactGetItems can only contain Get"))?;
        let meta = catalog.of_request(spec)?;
        let key = key_param(&meta, spec)?;
        check_substitutions_need_expressions(spec, &["ProjectionExpression"])?;
        let subs = Substitutions::new(spec)?;
        let paths = projection(spec, &subs)?;
        subs.check_all_used()?;
        gets.push((meta, key, paths));
    }
    let snap = storage.snapshot().map_err(storage_err)?;
    let mut responses = Vec::with_capacity(gets.len());
    for (meta, key, paths) in gets {
        let item = read_item(&*snap, &meta, &key).map_err(storage_err)?;
        responses.push(match item {
            Some(i) => json!({"Item": item_to_json(&match &paths { Some(p) => expr::project(&i, p), None => i })}),
            None => json!({}),
        });
    }
    Ok(json!({"Responses": responses}))
}
