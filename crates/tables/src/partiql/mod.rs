//! PartiQL for DynamoDB: ExecuteStatement, BatchExecuteStatement and ExecuteTransaction.
//!
//! Statements are parsed ([`parser`]) into the same condition and update trees as the
//! expression languages and run on the same paths: a SELECT reads one partition when its WHERE
//! pins the partition key with `=`, and the whole table or index otherwise (as DynamoDB does);
//! INSERT, UPDATE and DELETE are single-item writes whose WHERE must give the whole key, its
//! other predicates becoming the write's condition. INSERT never overwrites
//! (DuplicateItemException) and UPDATE never creates (ConditionalCheckFailedException).

mod parser;

pub use parser::{parse, Returning, Statement, Target};
#[cfg(test)]
mod tests;

use std::sync::Arc;

use base64::Engine as _;
use serde_json::{json, Value as Json};

use crate::catalog::{Catalog, IndexMeta, TableMeta};
use crate::codec::{read_item, storage_err};
use crate::error::{DbError, ErrorKind};
use crate::expr::{self, Comparator, Condition, Operand, Path, PathElem, UpdateAction};
use crate::query::{self, Select};
use crate::request::{limit, str_param};
use crate::service::Tables;
use crate::storage::{Batch, StorageError};
use crate::value::{item_size, item_to_json, Item, Value, MAX_ITEM_BYTES};
use crate::writer::{same_table, write_item, Tx};

/// What one statement of a PartiQL call does, for authorization: its IAM action
/// (`PartiQLSelect`, `PartiQLInsert`, `PartiQLUpdate`, `PartiQLDelete`), table and index.
pub struct StatementTarget {
    pub action: &'static str,
    pub table: String,
    pub index: Option<String>,
}

/// The targets of every statement of an ExecuteStatement, BatchExecuteStatement or
/// ExecuteTransaction body, read with the parser that runs them (so what is authorized is what
/// runs). `None` when any statement cannot be read: the call is then authorized as naming no
/// table, and the service refuses it anyway.
pub fn statement_targets(operation: &str, body: &Json) -> Option<Vec<StatementTarget>> {
    let statements: Vec<&Json> = match operation {
        "ExecuteStatement" => vec![body],
        "BatchExecuteStatement" => body.get("Statements")?.as_array()?.iter().collect(),
        "ExecuteTransaction" => body.get("TransactStatements")?.as_array()?.iter().collect(),
        _ => return None,
    };
    if statements.is_empty() {
        return None;
    }
    statements
        .into_iter()
        .map(|s| {
            let stmt = statement_of(s).ok()?;
            let action = match &stmt {
                Statement::Select { .. } => "PartiQLSelect",
                Statement::Insert { .. } => "PartiQLInsert",
                Statement::Update { .. } => "PartiQLUpdate",
                Statement::Delete { .. } => "PartiQLDelete",
            };
            let t = stmt.target();
            Some(StatementTarget {
                action,
                table: t.table.clone(),
                index: t.index.clone(),
            })
        })
        .collect()
}

const MAX_BATCH_STATEMENTS: usize = 25;
const MAX_TRANSACTION_STATEMENTS: usize = 100;

/// `Parameters`: the values of the statement's `?`s, in order.
fn parameters(req: &Json) -> Result<Vec<Value>, DbError> {
    match req.get("Parameters") {
        None | Some(Json::Null) => Ok(Vec::new()),
        Some(Json::Array(a)) if a.is_empty() => Err(DbError::validation(
            "1 validation error detected: Value '[]' at 'parameters' failed to satisfy constraint: Member must have length greater than or equal to 1",
        )),
        Some(Json::Array(a)) => a.iter().map(Value::from_json).collect(),
        Some(_) => Err(DbError::serialization("Parameters must be a list of attribute values")),
    }
}

fn statement_of(req: &Json) -> Result<Statement, DbError> {
    let text = str_param(req, "Statement").ok_or_else(|| {
        DbError::validation(
            "1 validation error detected: Value null at 'statement' failed to satisfy constraint: Member must not be null",
        )
    })?;
    parser::parse(text, &parameters(req)?)
}

/// The table (and index) a statement names.
fn target(catalog: &Catalog, stmt: &Statement) -> Result<(Arc<TableMeta>, Option<String>), DbError> {
    let t = stmt.target();
    let meta = catalog.get(&t.table)?;
    if let Some(ix) = &t.index {
        if meta.index(ix).is_none() {
            return Err(DbError::validation("The table does not have the specified index"));
        }
        if !stmt.is_read() {
            return Err(DbError::validation(format!(
                "Statement wasn't well formed, can't be processed: an index ({ix}) can only be read"
            )));
        }
    }
    Ok((meta, t.index.clone()))
}

/// The conjuncts of a condition's top-level ANDs.
fn conjuncts(c: Condition, out: &mut Vec<Condition>) {
    match c {
        Condition::And(a, b) => {
            conjuncts(*a, out);
            conjuncts(*b, out);
        }
        other => out.push(other),
    }
}

fn and_all(mut parts: Vec<Condition>) -> Option<Condition> {
    let first = if parts.is_empty() { return None } else { parts.remove(0) };
    Some(
        parts
            .into_iter()
            .fold(first, |a, b| Condition::And(Box::new(a), Box::new(b))),
    )
}

/// `attr = value` (either way round) on a top-level attribute: its name and value.
fn equality(c: &Condition) -> Option<(&str, &Value)> {
    let Condition::Compare(a, Comparator::Eq, b) = c else {
        return None;
    };
    let (path, v) = match (a, b) {
        (Operand::Path(p), Operand::Value(v)) | (Operand::Value(v), Operand::Path(p)) => (p, v),
        _ => return None,
    };
    match path.as_slice() {
        [PathElem::Name(n)] => Some((n.as_str(), v)),
        _ => None,
    }
}

/// Split a WHERE into the item's whole key and the rest (the write's condition).
fn key_and_rest(meta: &TableMeta, filter: Condition) -> Result<(Item, Option<Condition>), DbError> {
    let mut parts = Vec::new();
    conjuncts(filter, &mut parts);
    let mut key = Item::new();
    let mut rest = Vec::new();
    for part in parts {
        let key_part = equality(&part)
            .filter(|(name, _)| meta.key_names().contains(name) && !key.contains_key(*name))
            .map(|(name, v)| (name.to_owned(), v.clone()));
        match key_part {
            Some((name, v)) => {
                key.insert(name, v);
            }
            None => rest.push(part),
        }
    }
    if key.len() != meta.key_names().len() {
        return Err(DbError::validation(
            "Where clause does not contain a mandatory equality on all key attributes",
        ));
    }
    meta.check_key(&key)?;
    Ok((key, and_all(rest)))
}

/// A single-item write, checked and ready for the writer.
struct Write {
    meta: Arc<TableMeta>,
    key: Item,
    kind: WriteKind,
    /// The WHERE's predicates beyond the key.
    condition: Option<Condition>,
    returning: Returning,
}

enum WriteKind {
    Insert(Item),
    Update(Vec<UpdateAction>),
    Delete,
}

impl Write {
    fn parse(catalog: &Catalog, stmt: Statement) -> Result<Write, DbError> {
        let (meta, _) = target(catalog, &stmt)?;
        match stmt {
            Statement::Insert { item, .. } => {
                meta.check_item(&item)?;
                if item_size(&item) > MAX_ITEM_BYTES {
                    return Err(DbError::validation("Item size has exceeded the maximum allowed size"));
                }
                Ok(Write {
                    key: meta.key_of(&item),
                    kind: WriteKind::Insert(item),
                    condition: None,
                    returning: Returning::None,
                    meta,
                })
            }
            Statement::Update {
                actions,
                filter,
                returning,
                ..
            } => {
                let (key, condition) = key_and_rest(&meta, filter)?;
                expr::check_update_paths(&actions, &meta.key_names())?;
                Ok(Write {
                    key,
                    kind: WriteKind::Update(actions),
                    condition,
                    returning,
                    meta,
                })
            }
            Statement::Delete { filter, returning, .. } => {
                if matches!(
                    returning,
                    Returning::AllNew | Returning::ModifiedNew | Returning::ModifiedOld
                ) {
                    return Err(DbError::validation(
                        "Statement wasn't well formed, can't be processed: DELETE can only return ALL OLD *",
                    ));
                }
                let (key, condition) = key_and_rest(&meta, filter)?;
                Ok(Write {
                    key,
                    kind: WriteKind::Delete,
                    condition,
                    returning,
                    meta,
                })
            }
            Statement::Select { .. } => Err(DbError::internal("a SELECT is not a write")),
        }
    }

    /// Check the write against the current item: its error, or the new item (`None`: delete,
    /// or nothing to do) and the old one.
    fn check(&self, b: &dyn Batch) -> Result<Result<Checked, DbError>, StorageError> {
        if let Err(e) = same_table(b, &self.meta)? {
            return Ok(Err(e));
        }
        let old = read_item(b, &self.meta, &self.key)?;
        let passes = |item: &Item| self.condition.as_ref().is_none_or(|c| expr::matches(c, item));
        let mut updated = Vec::new();
        let new = match (&self.kind, &old) {
            (WriteKind::Insert(_), Some(_)) => {
                return Ok(Err(DbError::new(
                    ErrorKind::DuplicateItem,
                    "Duplicate primary key exists in table",
                )))
            }
            (WriteKind::Insert(item), None) => Some(item.clone()),
            // UPDATE never creates an item.
            (WriteKind::Update(_), None) => return Ok(Err(DbError::condition_failed())),
            (WriteKind::Update(actions), Some(old)) => {
                if !passes(old) {
                    return Ok(Err(DbError::condition_failed()));
                }
                let outcome = match expr::apply_update(old, actions, &self.meta.key_names()) {
                    Ok(o) => o,
                    Err(e) => return Ok(Err(e)),
                };
                if let Err(e) = self.meta.check_item(&outcome.item) {
                    return Ok(Err(e));
                }
                if item_size(&outcome.item) > MAX_ITEM_BYTES {
                    return Ok(Err(DbError::validation(
                        "Item size to update has exceeded the maximum allowed size",
                    )));
                }
                updated = outcome.updated;
                Some(outcome.item)
            }
            // The WHERE's other predicates are the delete's condition, checked against the item
            // or, when it is not there, against nothing (so `x = 1` fails); a delete of a
            // missing item by its key alone does nothing, as DynamoDB does.
            (WriteKind::Delete, old) => {
                if !passes(old.as_ref().unwrap_or(&Item::new())) {
                    return Ok(Err(DbError::condition_failed()));
                }
                None
            }
        };
        Ok(Ok(Checked { old, new, updated }))
    }

    /// Apply a checked write; the items RETURNING asks for.
    fn apply(&self, b: &mut Tx<'_>, checked: Checked) -> Result<Vec<Json>, StorageError> {
        let Checked { old, new, updated } = checked;
        if old.is_some() || new.is_some() {
            write_item(b, &self.meta, old.as_ref(), new.as_ref())?;
        }
        let returned = match self.returning {
            Returning::None => None,
            Returning::AllOld => old,
            Returning::AllNew => new,
            Returning::ModifiedOld => old.map(|o| expr::project(&o, &updated)),
            Returning::ModifiedNew => new.map(|n| expr::project(&n, &updated)),
        };
        Ok(returned
            .filter(|i| !i.is_empty())
            .map(|i| vec![item_to_json(&i)])
            .unwrap_or_default())
    }
}

struct Checked {
    old: Option<Item>,
    new: Option<Item>,
    /// The paths an UPDATE wrote (what `RETURNING MODIFIED` returns).
    updated: Vec<Path>,
}

/// A key lookup (the SELECTs batches and transactions allow): the item, filtered and projected.
struct Lookup {
    meta: Arc<TableMeta>,
    key: Item,
    filter: Option<Condition>,
    projection: Option<Vec<Path>>,
}

impl Lookup {
    fn parse(catalog: &Catalog, stmt: Statement, api: &str) -> Result<Lookup, DbError> {
        let (meta, index) = target(catalog, &stmt)?;
        let Statement::Select { projection, filter, .. } = stmt else {
            return Err(DbError::internal("not a SELECT"));
        };
        let must = || {
            DbError::validation(format!(
                "Select statements within {api} must specify the primary key in the where clause."
            ))
        };
        if index.is_some() {
            return Err(DbError::validation(format!(
                "Reads on indices are not supported within {api}."
            )));
        }
        let (key, filter) = key_and_rest(&meta, filter.ok_or_else(must)?).map_err(|_| must())?;
        Ok(Lookup {
            meta,
            key,
            filter,
            projection,
        })
    }

    fn run(&self, r: &dyn crate::storage::Read) -> Result<Option<Item>, DbError> {
        let item = read_item(r, &self.meta, &self.key).map_err(storage_err)?;
        Ok(item
            .filter(|i| self.filter.as_ref().is_none_or(|f| expr::matches(f, i)))
            .map(|i| match &self.projection {
                Some(p) => expr::project_leaves(&i, p),
                None => i,
            }))
    }
}

fn encode_token(key: &Item) -> String {
    base64::engine::general_purpose::STANDARD.encode(item_to_json(key).to_string())
}

fn decode_token(token: &str) -> Result<Item, DbError> {
    let invalid = || DbError::validation("Invalid NextToken");
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(token)
        .map_err(|_| invalid())?;
    let json: Json = serde_json::from_slice(&bytes).map_err(|_| invalid())?;
    crate::value::item_from_json(&json).map_err(|_| invalid())
}

/// The partition a SELECT's WHERE pins with `=` on the partition key, if any: one of the
/// conjuncts of its top-level ANDs.
fn pinned_partition(filter: Option<&Condition>, hash: &str) -> Option<Value> {
    match filter? {
        Condition::And(a, b) => pinned_partition(Some(a), hash).or_else(|| pinned_partition(Some(b), hash)),
        other => equality(other).filter(|(n, _)| *n == hash).map(|(_, v)| v.clone()),
    }
}

fn index_of<'m>(meta: &'m TableMeta, name: Option<&str>) -> Option<&'m IndexMeta> {
    name.and_then(|n| meta.index(n))
}

impl Tables {
    pub(crate) async fn execute_statement(&self, req: &Json) -> Result<Json, DbError> {
        let catalog = &self.inner.catalog;
        let stmt = statement_of(req)?;
        let limit = limit(req)?;
        let token = str_param(req, "NextToken");
        if !stmt.is_read() {
            if token.is_some() {
                return Err(DbError::validation("NextToken is only valid on a SELECT statement"));
            }
            let write = Write::parse(catalog, stmt)?;
            let items = self
                .write(Box::new(move |b| {
                    let checked = match write.check(b)? {
                        Ok(c) => c,
                        Err(e) => return Ok(Err(e)),
                    };
                    Ok(Ok(Json::Array(write.apply(b, checked)?)))
                }))
                .await?;
            return Ok(json!({ "Items": items }));
        }
        let (meta, index_name) = target(catalog, &stmt)?;
        let Statement::Select {
            projection,
            filter,
            order_by,
            descending,
            ..
        } = stmt
        else {
            return Err(DbError::internal("not a SELECT"));
        };
        let index = index_of(&meta, index_name.as_deref());
        if let Some(path) = &order_by {
            let (hash, range) = match index {
                Some(ix) => (&ix.hash, ix.range.as_ref()),
                None => (&meta.hash, meta.range.as_ref()),
            };
            let is_key = matches!(path.as_slice(), [PathElem::Name(n)] if *n == hash.name || range.is_some_and(|r| r.name == *n));
            if !is_key {
                return Err(DbError::validation(format!(
                    "Variable reference {} in ORDER BY clause must be part of the primary key",
                    expr::path_to_string(path)
                )));
            }
        }
        if index.is_some_and(|i| !i.local) && req.get("ConsistentRead").and_then(Json::as_bool) == Some(true) {
            return Err(DbError::validation(
                "Strongly consistent read is not supported on Global Secondary Indexes",
            ));
        }
        let hash = index.map_or(&meta.hash, |i| &i.hash);
        let partition = pinned_partition(filter.as_ref(), &hash.name).filter(|v| v.type_name() == hash.kind);
        let (items, last) = query::select_page(
            &*self.inner.storage,
            Select {
                meta: &meta,
                index,
                partition,
                filter,
                projection,
                limit,
                reverse: descending,
                start_after: token.map(decode_token).transpose()?,
            },
        )?;
        let mut out = Vec::with_capacity(items.len() + 64);
        out.extend_from_slice(b"{\"Items\":[");
        out.extend_from_slice(&items);
        out.push(b']');
        if let Some(k) = last {
            out.extend_from_slice(format!(",\"NextToken\":\"{}\"", encode_token(&k)).as_bytes());
            out.extend_from_slice(b",\"LastEvaluatedKey\":");
            out.extend_from_slice(item_to_json(&k).to_string().as_bytes());
        }
        out.push(b'}');
        serde_json::from_slice(&out).map_err(|e| DbError::internal(e.to_string()))
    }

    pub(crate) async fn batch_execute_statement(&self, req: &Json) -> Result<Json, DbError> {
        let catalog = &self.inner.catalog;
        let list = match req.get("Statements") {
            Some(Json::Array(a)) => a,
            _ => {
                return Err(DbError::validation(
                    "1 validation error detected: Value null at 'statements' failed to satisfy constraint: Member must not be null",
                ))
            }
        };
        if list.is_empty() || list.len() > MAX_BATCH_STATEMENTS {
            return Err(DbError::validation(format!(
                "1 validation error detected: Value at 'statements' failed to satisfy constraint: Member must have length {}",
                if list.is_empty() { "greater than or equal to 1" } else { "less than or equal to 25" }
            )));
        }
        // Each statement stands alone: one that fails gets an error entry, the others run.
        let parsed: Vec<Result<Statement, DbError>> = list.iter().map(statement_of).collect();
        let reads = parsed
            .iter()
            .filter(|s| s.as_ref().is_ok_and(Statement::is_read))
            .count();
        let writes = parsed.iter().filter(|s| s.as_ref().is_ok_and(|s| !s.is_read())).count();
        if reads > 0 && writes > 0 {
            return Err(DbError::validation(
                "Read and write requests together in the same batch is not supported.",
            ));
        }
        let mut responses: Vec<Json> = Vec::with_capacity(list.len());
        if writes == 0 {
            let snap = self.inner.storage.snapshot().map_err(storage_err)?;
            for stmt in parsed {
                let entry = stmt
                    .and_then(|s| Lookup::parse(catalog, s, "BatchExecuteStatement"))
                    .and_then(|l| Ok((l.meta.name.clone(), l.run(&*snap)?)));
                responses.push(match entry {
                    Ok((table, Some(item))) => json!({"TableName": table, "Item": item_to_json(&item)}),
                    Ok((table, None)) => json!({ "TableName": table }),
                    Err(e) => batch_error(&e, None),
                });
            }
            return Ok(json!({ "Responses": responses }));
        }
        let prepared: Vec<Result<Write, DbError>> = parsed
            .into_iter()
            .map(|s| s.and_then(|s| Write::parse(catalog, s)))
            .collect();
        let answers = self
            .write(Box::new(move |b| {
                let mut out = Vec::with_capacity(prepared.len());
                for w in &prepared {
                    out.push(match w {
                        Err(e) => batch_error(e, None),
                        Ok(w) => match w.check(b)? {
                            Err(e) => batch_error(&e, Some(&w.meta.name)),
                            Ok(checked) => {
                                w.apply(b, checked)?;
                                json!({ "TableName": w.meta.name })
                            }
                        },
                    });
                }
                Ok(Ok(Json::Array(out)))
            }))
            .await?;
        Ok(json!({ "Responses": answers }))
    }

    pub(crate) async fn execute_transaction(&self, req: &Json) -> Result<Json, DbError> {
        let catalog = &self.inner.catalog;
        let token = crate::batch::RequestToken::of(req)?;
        let list = match req.get("TransactStatements") {
            Some(Json::Array(a)) => a,
            _ => {
                return Err(DbError::validation(
                    "1 validation error detected: Value null at 'transactStatements' failed to satisfy constraint: Member must not be null",
                ))
            }
        };
        if list.is_empty() || list.len() > MAX_TRANSACTION_STATEMENTS {
            return Err(DbError::validation(format!(
                "1 validation error detected: Value at 'transactStatements' failed to satisfy constraint: Member must have length {}",
                if list.is_empty() { "greater than or equal to 1" } else { "less than or equal to 100" }
            )));
        }
        // Errors about one statement say which; syntax errors are answered as they are.
        let failed_at = |i: usize| {
            move |e: DbError| {
                if e.kind == ErrorKind::Validation && !e.message.starts_with("Statement wasn't well formed") {
                    DbError::validation(format!("Validation failed in TransactStatements[{i}]: {}", e.message))
                } else {
                    e
                }
            }
        };
        let mut stmts = Vec::with_capacity(list.len());
        for (i, s) in list.iter().enumerate() {
            stmts.push(statement_of(s).map_err(failed_at(i))?);
        }
        let reads = stmts.iter().filter(|s| s.is_read()).count();
        if reads > 0 && reads < stmts.len() {
            return Err(DbError::validation(
                "ExecuteTransaction API does not support both read and write operations in the same request.",
            ));
        }
        if reads > 0 {
            let lookups = stmts
                .into_iter()
                .enumerate()
                .map(|(i, s)| Lookup::parse(catalog, s, "ExecuteTransaction").map_err(failed_at(i)))
                .collect::<Result<Vec<_>, _>>()?;
            let snap = self.inner.storage.snapshot().map_err(storage_err)?;
            let mut responses = Vec::with_capacity(lookups.len());
            for l in &lookups {
                responses.push(match l.run(&*snap)? {
                    Some(item) => json!({ "Item": item_to_json(&item) }),
                    None => json!({}),
                });
            }
            return Ok(json!({ "Responses": responses }));
        }
        let writes = stmts
            .into_iter()
            .enumerate()
            .map(|(i, s)| Write::parse(catalog, s).map_err(failed_at(i)))
            .collect::<Result<Vec<_>, _>>()?;
        let mut seen: Vec<(u32, Vec<u8>)> = Vec::with_capacity(writes.len());
        for w in &writes {
            let id = (w.meta.id, w.meta.item_key(&w.key));
            if seen.contains(&id) {
                return Err(DbError::validation(
                    "Transaction request cannot include multiple operations on one item",
                ));
            }
            seen.push(id);
        }
        self.write(Box::new(move |b| {
            if let Some(t) = &token {
                if let Some(answer) = t.seen(b)? {
                    return Ok(answer);
                }
            }
            // Every statement is checked before anything is written: all or nothing.
            let mut checked = Vec::with_capacity(writes.len());
            let mut reasons = Vec::with_capacity(writes.len());
            let mut failed = false;
            for w in &writes {
                match w.check(b)? {
                    Ok(c) => {
                        reasons.push(json!({"Code": "None"}));
                        checked.push(Some(c));
                    }
                    Err(e) if e.kind == ErrorKind::ResourceNotFound => return Ok(Err(e)),
                    Err(e) => {
                        failed = true;
                        reasons.push(json!({"Code": reason_code(e.kind), "Message": e.message}));
                        checked.push(None);
                    }
                }
            }
            if failed {
                let codes: Vec<&str> = reasons.iter().map(|r| r["Code"].as_str().unwrap_or("None")).collect();
                let e = DbError::new(
                    ErrorKind::TransactionCanceled,
                    format!(
                        "Transaction cancelled, please refer cancellation reasons for specific reasons [{}]",
                        codes.join(", ")
                    ),
                );
                return Ok(Err(e.with("CancellationReasons", Json::Array(reasons))));
            }
            for (w, c) in writes.iter().zip(checked) {
                if let Some(c) = c {
                    w.apply(b, c)?;
                }
            }
            if let Some(t) = &token {
                t.remember(b)?;
            }
            Ok(Ok(json!({})))
        }))
        .await
    }
}

/// The short code a batch or transaction reports an error under.
fn reason_code(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::ConditionalCheckFailed => "ConditionalCheckFailed",
        ErrorKind::DuplicateItem => "DuplicateItem",
        ErrorKind::ResourceNotFound => "ResourceNotFound",
        ErrorKind::Validation | ErrorKind::Serialization => "ValidationError",
        _ => "InternalServerError",
    }
}

/// A BatchExecuteStatement entry for a statement that failed.
fn batch_error(e: &DbError, table: Option<&str>) -> Json {
    let mut entry = json!({"Error": {"Code": reason_code(e.kind), "Message": e.message}});
    if let Some(t) = table {
        entry["TableName"] = json!(t);
    }
    entry
}
