//! The single-item operations — PutItem, GetItem, UpdateItem, DeleteItem — each parsed into a
//! typed request (every check of its parameters happens there, before anything is read or
//! written), then run: reads against the store, writes as a [`WriteOp`] for the writer.

use std::sync::Arc;

use serde_json::{json, Value as Json};

use crate::catalog::{Catalog, TableMeta};
use crate::codec::{encode_item, read_item, storage_err};
use crate::error::DbError;
use crate::expr::{self, Condition, Path, Substitutions, UpdateAction};
use crate::legacy;
use crate::request::{
    check_substitutions_need_expressions, enum_param, old_on_fail, projection, str_param, write_condition, Capacity,
};
use crate::storage::{Read, StorageError};
use crate::stream::Cause;
use crate::value::{item_from_json, item_size, item_to_json, Item, MAX_ITEM_BYTES};
use crate::writer::{checked_old, write_item, write_item_by, Tx, WriteOp};

/// The `Key` parameter, checked against the table's key schema.
pub(crate) fn key_param(meta: &TableMeta, req: &Json) -> Result<Item, DbError> {
    let key = item_from_json(req.get("Key").unwrap_or(&Json::Null))?;
    meta.check_key(&key)?;
    Ok(key)
}

/// The `Item` parameter of a put, checked against the table's keys and the size limit.
pub(crate) fn item_param(meta: &TableMeta, req: &Json) -> Result<Item, DbError> {
    let item = item_from_json(req.get("Item").unwrap_or(&Json::Null))?;
    meta.check_item(&item)?;
    if item_size(&item) > MAX_ITEM_BYTES {
        return Err(DbError::validation("Item size has exceeded the maximum allowed size"));
    }
    Ok(item)
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

/// What PutItem and DeleteItem share: their condition (ConditionExpression or Expected),
/// ReturnValues (NONE or ALL_OLD), ReturnValuesOnConditionCheckFailure and
/// ReturnConsumedCapacity.
struct ReplaceOptions {
    condition: Option<Condition>,
    return_old: bool,
    old_on_fail: bool,
    capacity: Capacity,
}

impl ReplaceOptions {
    fn parse(req: &Json) -> Result<ReplaceOptions, DbError> {
        check_substitutions_need_expressions(req, &["ConditionExpression"])?;
        let subs = Substitutions::new(req)?;
        let condition = write_condition(req, &subs)?;
        subs.check_all_used()?;
        Ok(ReplaceOptions {
            condition,
            return_old: enum_param(req, "ReturnValues", &["NONE", "ALL_OLD"], "NONE")? == "ALL_OLD",
            old_on_fail: old_on_fail(req)?,
            capacity: Capacity::of(req)?,
        })
    }

    /// In the write: replace the item at `key` by `new` (an item and its stored bytes; `None`
    /// deletes) if the condition holds.
    fn replace(
        &self,
        b: &mut Tx<'_>,
        meta: &TableMeta,
        key: &Item,
        new: Option<(&Item, &[u8])>,
    ) -> Result<Result<Json, DbError>, StorageError> {
        let old = match checked_old(b, meta, key, self.condition.as_ref(), self.old_on_fail)? {
            Ok(old) => old,
            Err(e) => return Ok(Err(e)),
        };
        let (item, bytes) = new.unzip();
        write_item_by(b, meta, old.as_ref(), item, bytes, Cause::Caller)?;
        let cc = self.capacity.report(&meta.name, 1.0);
        Ok(Ok(old_item_answer(old.as_ref().filter(|_| self.return_old), cc)))
    }
}

pub(crate) struct PutItem {
    meta: Arc<TableMeta>,
    item: Item,
    options: ReplaceOptions,
}

impl PutItem {
    pub fn parse(req: &Json, catalog: &Catalog) -> Result<PutItem, DbError> {
        let meta = catalog.of_request(req)?;
        let item = item_param(&meta, req)?;
        let options = ReplaceOptions::parse(req)?;
        Ok(PutItem { meta, item, options })
    }

    pub fn into_write(self) -> WriteOp {
        // Encoded here, on the caller's thread: the writer thread is shared by every write.
        let bytes = encode_item(&self.item);
        Box::new(move |b| {
            self.options
                .replace(b, &self.meta, &self.item, Some((&self.item, &bytes)))
        })
    }
}

pub(crate) struct GetItem {
    meta: Arc<TableMeta>,
    key: Item,
    projection: Option<Vec<Path>>,
    capacity: Capacity,
}

impl GetItem {
    pub fn parse(req: &Json, catalog: &Catalog) -> Result<GetItem, DbError> {
        let meta = catalog.of_request(req)?;
        let key = key_param(&meta, req)?;
        check_substitutions_need_expressions(req, &["ProjectionExpression"])?;
        let subs = Substitutions::new(req)?;
        let projection = projection(req, &subs)?;
        subs.check_all_used()?;
        if let Some(v) = req.get("ConsistentRead").filter(|v| !v.is_null() && !v.is_boolean()) {
            return Err(DbError::serialization(format!(
                "ConsistentRead must be a boolean, not {v}"
            )));
        }
        Ok(GetItem {
            meta,
            key,
            projection,
            capacity: Capacity::of(req)?,
        })
    }

    /// Whether the stored bytes are the whole answer (no projection, no capacity report).
    pub fn is_plain(&self) -> bool {
        self.projection.is_none() && !self.capacity.wanted()
    }

    /// The answer, with the stored item bytes spliced in as they are (for [`GetItem::is_plain`]).
    pub fn run_raw(&self, r: &dyn Read) -> Result<Vec<u8>, DbError> {
        let stored = r.get(&self.meta.item_key(&self.key)).map_err(storage_err)?;
        Ok(match stored {
            Some(bytes) => {
                let mut out = Vec::with_capacity(bytes.len() + 9);
                out.extend_from_slice(b"{\"Item\":");
                out.extend_from_slice(&bytes);
                out.push(b'}');
                out
            }
            None => b"{}".to_vec(),
        })
    }

    pub fn run(&self, r: &dyn Read) -> Result<Json, DbError> {
        let item = read_item(r, &self.meta, &self.key).map_err(storage_err)?;
        let mut out = json!({});
        if let Some(item) = item {
            let item = match &self.projection {
                Some(p) => expr::project(&item, p),
                None => item,
            };
            out["Item"] = item_to_json(&item);
        }
        if let Some(cc) = self.capacity.report(&self.meta.name, 0.5) {
            out["ConsumedCapacity"] = cc;
        }
        Ok(out)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ReturnValues {
    None,
    AllOld,
    UpdatedOld,
    AllNew,
    UpdatedNew,
}

pub(crate) struct UpdateItem {
    meta: Arc<TableMeta>,
    key: Item,
    condition: Option<Condition>,
    actions: Vec<UpdateAction>,
    return_values: ReturnValues,
    old_on_fail: bool,
    capacity: Capacity,
    /// Whether the update creates a missing item. The legacy AttributeUpdates made only of
    /// DELETE actions do not: DynamoDB leaves the item absent.
    creates: bool,
}

impl UpdateItem {
    pub fn parse(req: &Json, catalog: &Catalog) -> Result<UpdateItem, DbError> {
        let meta = catalog.of_request(req)?;
        let key = key_param(&meta, req)?;
        check_substitutions_need_expressions(req, &["UpdateExpression", "ConditionExpression"])?;
        let subs = Substitutions::new(req)?;
        let condition = write_condition(req, &subs)?;
        let (actions, creates) = match (
            str_param(req, "UpdateExpression"),
            req.get("AttributeUpdates").and_then(Json::as_object),
        ) {
            (Some(text), _) => (expr::parse_update(text, &subs)?, true),
            (None, Some(m)) => {
                let actions = legacy::attribute_updates(m)?;
                let only_deletes = !actions.is_empty()
                    && actions
                        .iter()
                        .all(|a| matches!(a, UpdateAction::Remove(_) | UpdateAction::Delete(..)));
                (actions, !only_deletes)
            }
            (None, None) => (Vec::new(), true),
        };
        subs.check_all_used()?;
        // Checked before the item is read, as DynamoDB does: a key attribute in an update is
        // refused even when the item does not exist.
        expr::check_update_paths(&actions, &meta.key_names())?;
        let return_values = match enum_param(
            req,
            "ReturnValues",
            &["NONE", "ALL_OLD", "UPDATED_OLD", "ALL_NEW", "UPDATED_NEW"],
            "NONE",
        )? {
            "ALL_OLD" => ReturnValues::AllOld,
            "UPDATED_OLD" => ReturnValues::UpdatedOld,
            "ALL_NEW" => ReturnValues::AllNew,
            "UPDATED_NEW" => ReturnValues::UpdatedNew,
            _ => ReturnValues::None,
        };
        Ok(UpdateItem {
            key,
            condition,
            actions,
            return_values,
            old_on_fail: old_on_fail(req)?,
            capacity: Capacity::of(req)?,
            creates,
            meta,
        })
    }

    pub fn into_write(self) -> WriteOp {
        let cc = self.capacity.report(&self.meta.name, 1.0);
        Box::new(move |b| {
            let meta = &self.meta;
            let old = match checked_old(b, meta, &self.key, self.condition.as_ref(), self.old_on_fail)? {
                Ok(old) => old,
                Err(e) => return Ok(Err(e)),
            };
            if old.is_none() && !self.creates {
                return Ok(Ok(json!({})));
            }
            let base = old.clone().unwrap_or_else(|| self.key.clone());
            let outcome = match expr::apply_update(&base, &self.actions, &meta.key_names()) {
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
            write_item(b, meta, old.as_ref(), Some(&outcome.item))?;
            let attributes = match self.return_values {
                ReturnValues::AllOld => old.clone(),
                ReturnValues::UpdatedOld => old.as_ref().map(|o| expr::project(o, &outcome.updated)),
                ReturnValues::AllNew => Some(outcome.item.clone()),
                ReturnValues::UpdatedNew => Some(expr::project(&outcome.item, &outcome.updated)),
                ReturnValues::None => None,
            };
            let mut out = json!({});
            if let Some(a) = attributes.filter(|a| !a.is_empty()) {
                out["Attributes"] = item_to_json(&a);
            }
            if let Some(cc) = cc {
                out["ConsumedCapacity"] = cc;
            }
            Ok(Ok(out))
        })
    }
}

pub(crate) struct DeleteItem {
    meta: Arc<TableMeta>,
    key: Item,
    options: ReplaceOptions,
}

impl DeleteItem {
    pub fn parse(req: &Json, catalog: &Catalog) -> Result<DeleteItem, DbError> {
        let meta = catalog.of_request(req)?;
        let key = key_param(&meta, req)?;
        let options = ReplaceOptions::parse(req)?;
        Ok(DeleteItem { meta, key, options })
    }

    pub fn into_write(self) -> WriteOp {
        Box::new(move |b| self.options.replace(b, &self.meta, &self.key, None))
    }
}
