//! Query and Scan: key conditions, filters, projections, Select, Limit, 1 MB pages,
//! ExclusiveStartKey / LastEvaluatedKey, reverse order, indexes and parallel scan segments.

use std::ops::Bound;

use serde_json::Value as Json;

use crate::catalog::Catalog;
use crate::catalog::{IndexMeta, KeyAttr, Projection, TableMeta};
use crate::codec::{decode_item, storage_err};
use crate::error::DbError;
use crate::expr::{self, Comparator, Condition, ExprKind, Operand, Path, PathElem, Substitutions};
use crate::keys::{encode_key_value, prefix_end};
use crate::legacy;
use crate::request::{check_no_mix, check_substitutions_need_expressions, limit, projection, str_param, Capacity};
use crate::storage::{Read, Storage};
use crate::value::{item_from_json, item_to_json, Item, Value};

/// DynamoDB stops a page after 1 MB of items read.
const PAGE_BYTES: usize = 1024 * 1024;

struct Plan<'m> {
    meta: &'m TableMeta,
    index: Option<&'m IndexMeta>,
    filter: Option<Condition>,
    projection: Option<Vec<Path>>,
    /// PartiQL's projection: each value under its last name (`SELECT m.x` answers `{x: …}`),
    /// not rebuilt inside its parents as ProjectionExpression does.
    leaf_names: bool,
    count_only: bool,
    limit: Option<usize>,
    reverse: bool,
    /// Storage key to start strictly after (before, in reverse).
    start_after: Option<Vec<u8>>,
    capacity: Capacity,
}

/// The index a Query or Scan reads (`IndexName`), checking DynamoDB's rule for consistent reads.
fn index<'m>(meta: &'m TableMeta, req: &Json) -> Result<Option<&'m IndexMeta>, DbError> {
    let index = match str_param(req, "IndexName") {
        None => None,
        Some(name) => Some(
            meta.index(name)
                .ok_or_else(|| DbError::validation(format!("The table does not have the specified index: {name}")))?,
        ),
    };
    if index.is_some_and(|i| !i.local) && req.get("ConsistentRead").and_then(Json::as_bool) == Some(true) {
        return Err(DbError::validation(
            "Consistent reads are not supported on global secondary indexes",
        ));
    }
    Ok(index)
}

/// FilterExpression, or the legacy `legacy_param` (QueryFilter / ScanFilter).
fn filter(req: &Json, legacy_param: &str, subs: &Substitutions<'_>) -> Result<Option<Condition>, DbError> {
    match (
        str_param(req, "FilterExpression"),
        req.get(legacy_param).and_then(Json::as_object),
    ) {
        (Some(text), _) => Ok(Some(expr::parse_condition(text, ExprKind::Filter, subs)?)),
        (None, Some(m)) => legacy::conditions(m, str_param(req, "ConditionalOperator")),
        (None, None) => Ok(None),
    }
}

/// Which operation a rule is checked for: DynamoDB words a few messages differently.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Op {
    Query,
    Scan,
}

impl Op {
    /// Query's Select errors come in the "1 validation error detected: " envelope, Scan's not.
    fn select_error(self, message: &str) -> DbError {
        match self {
            Op::Query => DbError::validation(format!("1 validation error detected: {message}")),
            Op::Scan => DbError::validation(message),
        }
    }
}

/// `Select`: whether only the count is answered, after DynamoDB's checks of how it combines
/// with a projection and an index.
fn count_only(req: &Json, op: Op, index: Option<&IndexMeta>) -> Result<bool, DbError> {
    let projection_param = ["ProjectionExpression", "AttributesToGet"]
        .into_iter()
        .find(|p| req.get(*p).is_some_and(|v| !v.is_null()));
    match str_param(req, "Select") {
        None => Ok(false),
        Some("COUNT") => match projection_param {
            Some(p) => Err(op.select_error(&format!("Cannot specify the {p} when choosing to get only the Count"))),
            None => Ok(true),
        },
        Some(all @ ("ALL_ATTRIBUTES" | "ALL_PROJECTED_ATTRIBUTES")) => {
            if let Some(p) = projection_param {
                return Err(op.select_error(&format!("Cannot specify the {p} when choosing to get {all}")));
            }
            match index {
                None if all == "ALL_PROJECTED_ATTRIBUTES" => {
                    Err(op.select_error("ALL_PROJECTED_ATTRIBUTES can be used only when Querying using an IndexName"))
                }
                Some(ix) if all == "ALL_ATTRIBUTES" && !ix.local && ix.projection != Projection::All => {
                    Err(DbError::validation(format!(
                        "One or more parameter values were invalid: Select type ALL_ATTRIBUTES is not supported for global secondary index {} because its projection type is not ALL",
                        ix.name
                    )))
                }
                _ => Ok(false),
            }
        }
        Some("SPECIFIC_ATTRIBUTES") => match projection_param {
            Some(_) => Ok(false),
            None => Err(op.select_error(
                "Must specify the AttributesToGet or ProjectionExpression when choosing to get SPECIFIC_ATTRIBUTES",
            )),
        },
        Some(other) => Err(DbError::validation(format!(
            "1 validation error detected: Value '{other}' at 'select' failed to satisfy constraint: Member must satisfy enum value set: [SPECIFIC_ATTRIBUTES, COUNT, ALL_ATTRIBUTES, ALL_PROJECTED_ATTRIBUTES]"
        ))),
    }
}

/// Query's `Limit`, whose error DynamoDB words apart from Scan's: no value, a capital L.
fn query_limit(req: &Json) -> Result<Option<usize>, DbError> {
    limit(req).map_err(|_| {
        DbError::validation(
            "1 validation error detected: Value at 'Limit' failed to satisfy constraint: Member must have value greater than or equal to 1",
        )
    })
}

/// A FilterExpression (or QueryFilter) of a Query may not touch the key being queried.
fn check_filter_keys(filter: Option<&Condition>, keys: &[&KeyAttr], legacy: bool) -> Result<(), DbError> {
    let Some(filter) = filter else { return Ok(()) };
    let mut names = Vec::new();
    expr::top_level_names(filter, &mut names);
    if let Some(k) = keys.iter().find(|k| names.iter().any(|n| *n == k.name)) {
        let what = if legacy { "QueryFilter" } else { "Filter Expression" };
        return Err(DbError::validation(format!(
            "{what} can only contain non-primary key attributes: Primary key attribute: {}",
            k.name
        )));
    }
    Ok(())
}

/// The storage key to resume after, from ExclusiveStartKey.
/// ExclusiveStartKey, checked against the key schema: the storage key to resume after, and the
/// key as an item.
fn start_key(meta: &TableMeta, index: Option<&IndexMeta>, req: &Json) -> Result<Option<(Vec<u8>, Item)>, DbError> {
    let Some(esk) = req.get("ExclusiveStartKey").filter(|v| !v.is_null()) else {
        return Ok(None);
    };
    let key = item_from_json(esk)?;
    let invalid = || {
        DbError::validation("The provided starting key is invalid: The provided key element does not match the schema")
    };
    let mut needed: Vec<&KeyAttr> = vec![&meta.hash];
    needed.extend(meta.range.iter());
    if let Some(ix) = index {
        needed.push(&ix.hash);
        needed.extend(ix.range.iter());
    }
    for attr in &needed {
        match key.get(&attr.name) {
            Some(v) if v.type_name() == attr.kind => {}
            _ => return Err(invalid()),
        }
    }
    // Nothing but the key attributes (an index's and the table's may be the same attribute).
    if key.keys().any(|k| !needed.iter().any(|a| a.name == *k)) {
        return Err(invalid());
    }
    let storage_key = match index {
        Some(ix) => meta.index_key(ix, &key).ok_or_else(invalid)?,
        None => meta.item_key(&key),
    };
    Ok(Some((storage_key, key)))
}

/// One condition of a key condition, as DynamoDB accepts it: a top-level attribute first,
/// constants after (`:v = pk` is turned round to `pk = :v`).
fn key_part(c: Condition) -> Result<(String, Condition), DbError> {
    let invalid_operator =
        |op: &str| DbError::validation(format!("Invalid operator used in KeyConditionExpression: {op}"));
    let invalid = |m: &str| DbError::validation(format!("Invalid condition in KeyConditionExpression: {m}"));
    let name_of = |p: &Path| -> Result<String, DbError> {
        match p.as_slice() {
            [PathElem::Name(n)] => Ok(n.clone()),
            _ => Err(DbError::validation(
                "KeyConditionExpressions cannot have conditions on nested attributes",
            )),
        }
    };
    let nested = || DbError::validation("KeyConditionExpressions cannot contain nested operations");
    match c {
        Condition::Or(..) => Err(invalid_operator("OR")),
        Condition::Not(..) => Err(invalid_operator("NOT")),
        Condition::In(..) => Err(invalid_operator("IN")),
        Condition::Compare(_, Comparator::Ne, _) => Err(invalid_operator("<>")),
        Condition::AttributeExists(_) => Err(invalid_operator("attribute_exists")),
        Condition::AttributeNotExists(_) => Err(invalid_operator("attribute_not_exists")),
        Condition::AttributeType(..) => Err(invalid_operator("attribute_type")),
        Condition::Contains(..) => Err(invalid_operator("contains")),
        Condition::And(..) => Err(invalid_operator("AND")),
        Condition::Compare(a, cmp, b) => match (a, b) {
            (Operand::Size(_), _) | (_, Operand::Size(_)) => Err(nested()),
            (Operand::Path(_), Operand::Path(_)) => Err(invalid("Multiple attribute names used in one condition")),
            (Operand::Value(_), Operand::Value(_)) => Err(invalid("No key attribute specified")),
            (Operand::Path(p), v @ Operand::Value(_)) => {
                Ok((name_of(&p)?, Condition::Compare(Operand::Path(p), cmp, v)))
            }
            (v @ Operand::Value(_), Operand::Path(p)) => {
                let mirrored = match cmp {
                    Comparator::Lt => Comparator::Gt,
                    Comparator::Le => Comparator::Ge,
                    Comparator::Gt => Comparator::Lt,
                    Comparator::Ge => Comparator::Le,
                    other => other,
                };
                Ok((name_of(&p)?, Condition::Compare(Operand::Path(p), mirrored, v)))
            }
        },
        Condition::Between(x, lo, hi) => match (x, &lo, &hi) {
            (Operand::Size(_), _, _) => Err(nested()),
            (Operand::Value(_), _, _) => Err(invalid(
                "BETWEEN operator must have the key attribute as its first operand",
            )),
            (Operand::Path(p), Operand::Value(_), Operand::Value(_)) => {
                Ok((name_of(&p)?, Condition::Between(Operand::Path(p), lo, hi)))
            }
            _ => Err(invalid("Multiple attribute names used in one condition")),
        },
        Condition::BeginsWith(a, b) => match (a, b) {
            (Operand::Size(_), _) => Err(nested()),
            (Operand::Value(_), _) => Err(invalid(
                "begins_with operator must have the key attribute as its first operand",
            )),
            (Operand::Path(p), v @ Operand::Value(_)) => Ok((name_of(&p)?, Condition::BeginsWith(Operand::Path(p), v))),
            _ => Err(invalid("Multiple attribute names used in one condition")),
        },
    }
}

/// Split `hash = :v AND <sort condition>` into its parts.
fn key_condition(
    cond: Condition,
    hash: &KeyAttr,
    range: Option<&KeyAttr>,
) -> Result<(Value, Option<Condition>), DbError> {
    fn flatten(c: Condition, out: &mut Vec<Condition>) {
        match c {
            Condition::And(a, b) => {
                flatten(*a, out);
                flatten(*b, out);
            }
            other => out.push(other),
        }
    }
    let mut conditions = Vec::new();
    flatten(cond, &mut conditions);
    if conditions.len() > 2 {
        return Err(DbError::validation("Conditions can be of length 1 or 2 only"));
    }
    let mut parts = Vec::with_capacity(2);
    for c in conditions {
        let (name, part) = key_part(c)?;
        if parts.iter().any(|(n, _)| *n == name) {
            return Err(DbError::validation(
                "KeyConditionExpressions must only contain one condition per key",
            ));
        }
        parts.push((name, part));
    }
    let type_check = |v: &Value, attr: &KeyAttr| {
        if v.type_name() == attr.kind {
            Ok(())
        } else {
            Err(DbError::validation(
                "One or more parameter values were invalid: Condition parameter type does not match schema type",
            ))
        }
    };
    let missed = |name: &str| DbError::validation(format!("Query condition missed key schema element: {name}"));
    let mut hash_value = None;
    let mut sort = None;
    for (name, part) in parts {
        if name == hash.name {
            match part {
                Condition::Compare(_, Comparator::Eq, Operand::Value(v)) => {
                    type_check(&v, hash)?;
                    hash_value = Some(v);
                }
                _ => return Err(DbError::validation("Query key condition not supported")),
            }
        } else if let Some(r) = range.filter(|r| r.name == name) {
            match &part {
                Condition::Compare(_, _, Operand::Value(v)) => type_check(v, r)?,
                Condition::Between(_, Operand::Value(a), Operand::Value(b)) => {
                    type_check(a, r)?;
                    type_check(b, r)?;
                }
                Condition::BeginsWith(_, Operand::Value(v)) => {
                    if r.kind == "N" {
                        return Err(DbError::validation("Invalid KeyConditionExpression: Incorrect operand type for operator or function; operator or function: begins_with, operand type: N"));
                    }
                    type_check(v, r)?;
                }
                _ => return Err(DbError::validation("Query key condition not supported")),
            }
            sort = Some(part);
        } else {
            // A condition on another attribute: DynamoDB names the key element it misses.
            return Err(missed(match (&hash_value, range) {
                (Some(_), Some(r)) => &r.name,
                _ => &hash.name,
            }));
        }
    }
    let hash_value = hash_value.ok_or_else(|| missed(&hash.name))?;
    Ok((hash_value, sort))
}

/// Where in the partition a sort condition's matches begin (for a forward scan).
fn sort_seek(partition: &[u8], sort: &Condition) -> Option<Vec<u8>> {
    let mut out = partition.to_vec();
    match sort {
        Condition::Compare(_, Comparator::Eq | Comparator::Ge | Comparator::Gt, Operand::Value(v))
        | Condition::Between(_, Operand::Value(v), _) => {
            encode_key_value(v, &mut out);
            Some(out)
        }
        Condition::BeginsWith(_, Operand::Value(v)) => {
            encode_key_value(v, &mut out);
            out.truncate(out.len() - 2); // drop the terminator: a prefix, not a whole value
            Some(out)
        }
        _ => None,
    }
}

struct Page {
    /// The returned items as DynamoDB JSON, comma-separated (ready to splice into the answer).
    items: Vec<u8>,
    count: usize,
    scanned: usize,
    last_key: Option<Item>,
}

/// Walk storage entries in `[start, end)`, resolving each to an item and applying the plan.
///
/// Items are stored as DynamoDB JSON, so when nothing needs to look inside them (no sort
/// condition, filter or projection) their stored bytes go straight into the answer; only the
/// last one is decoded, for LastEvaluatedKey.
fn run(
    snap: &dyn Read,
    plan: &Plan<'_>,
    start: Bound<&[u8]>,
    end: Bound<&[u8]>,
    sort: Option<&Condition>,
    segment: Option<(u64, u64)>,
) -> Result<Page, DbError> {
    let index_projects = plan.index.is_some_and(|ix| ix.projection != Projection::All);
    let need_item = sort.is_some() || plan.filter.is_some() || plan.projection.is_some() || index_projects;
    let mut page = Page {
        items: Vec::new(),
        count: 0,
        scanned: 0,
        last_key: None,
    };
    let mut bytes = 0usize;
    let mut matched_sort = false;
    let mut stopped_early = false;
    let mut error = None;
    let mut last_raw: Vec<u8> = Vec::new();
    let visit = &mut |k: &[u8], v: &[u8]| -> bool {
        if page.scanned >= plan.limit.unwrap_or(usize::MAX) || bytes >= PAGE_BYTES {
            // One more entry exists past the page: the caller gets a LastEvaluatedKey.
            stopped_early = true;
            return false;
        }
        if let Some((seg, total)) = segment {
            if partition_hash(plan, k) % total != seg {
                return true;
            }
        }
        let fetched;
        let raw: &[u8] = match plan.index {
            None => v,
            Some(_) => {
                let base_key = match serde_json::from_slice::<Json>(v)
                    .map_err(|e| DbError::internal(e.to_string()))
                    .and_then(|j| item_from_json(&j))
                {
                    Ok(k) => k,
                    Err(e) => {
                        error = Some(e);
                        return false;
                    }
                };
                match snap.get(&plan.meta.item_key(&base_key)) {
                    Ok(Some(b)) => {
                        fetched = b;
                        &fetched
                    }
                    Ok(None) => return true,
                    Err(e) => {
                        error = Some(DbError::internal(e.to_string()));
                        return false;
                    }
                }
            }
        };
        if need_item {
            let item = match decode_item(raw) {
                Ok(i) => i,
                Err(e) => {
                    error = Some(e);
                    return false;
                }
            };
            if let Some(s) = sort {
                if !expr::matches(s, &item) {
                    // Sort-key matches are contiguous: past them, the query is done.
                    return !matched_sort;
                }
                matched_sort = true;
            }
            page.scanned += 1;
            bytes += raw.len();
            let item = match plan.index {
                Some(ix) if index_projects => plan.meta.project_for_index(ix, &item),
                _ => item,
            };
            if plan.filter.as_ref().is_none_or(|f| expr::matches(f, &item)) {
                page.count += 1;
                if !plan.count_only {
                    let shown = match &plan.projection {
                        Some(p) if plan.leaf_names => expr::project_leaves(&item, p),
                        Some(p) => expr::project(&item, p),
                        None => item.clone(),
                    };
                    if !page.items.is_empty() {
                        page.items.push(b',');
                    }
                    page.items
                        .extend_from_slice(&serde_json::to_vec(&item_to_json(&shown)).unwrap_or_default());
                }
            }
            last_raw.clear();
            last_raw.extend_from_slice(&serde_json::to_vec(&item_to_json(&item)).unwrap_or_default());
        } else {
            page.scanned += 1;
            page.count += 1;
            bytes += raw.len();
            if !plan.count_only {
                if !page.items.is_empty() {
                    page.items.push(b',');
                }
                page.items.extend_from_slice(raw);
            }
            last_raw.clear();
            last_raw.extend_from_slice(raw);
        }
        true
    };
    snap.scan(start, end, plan.reverse, visit)
        .map_err(|e| DbError::internal(e.to_string()))?;
    if let Some(e) = error {
        return Err(e);
    }
    if stopped_early && !last_raw.is_empty() {
        let item = decode_item(&last_raw)?;
        let mut key = plan.meta.key_of(&item);
        if let Some(ix) = plan.index {
            for attr in std::iter::once(&ix.hash).chain(ix.range.iter()) {
                if let Some(v) = item.get(&attr.name) {
                    key.insert(attr.name.clone(), v.clone());
                }
            }
        }
        page.last_key = Some(key);
    }
    Ok(page)
}

/// Which parallel-scan segment an entry belongs to: FNV-1a of its encoded partition key.
fn partition_hash(plan: &Plan<'_>, storage_key: &[u8]) -> u64 {
    let skip = if plan.index.is_some() { 7 } else { 5 };
    let rest = &storage_key[skip.min(storage_key.len())..];
    // The partition key's encoding ends at its first terminator.
    let end = partition_end(rest);
    rest[..end].iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn partition_end(enc: &[u8]) -> usize {
    match enc.first() {
        Some(0x01) => enc
            .iter()
            .skip(3)
            .position(|b| *b == 0xFF)
            .map(|p| p + 4)
            .unwrap_or(enc.len()),
        Some(0x02) => 1,
        Some(0x03) => enc
            .iter()
            .skip(3)
            .position(|b| *b == 0x00)
            .map(|p| p + 4)
            .unwrap_or(enc.len()),
        _ => {
            let mut i = 0;
            while i + 1 < enc.len() {
                if enc[i] == 0 {
                    if enc[i + 1] == 1 {
                        return i + 2;
                    }
                    i += 2;
                } else {
                    i += 1;
                }
            }
            enc.len()
        }
    }
}

/// The answer as bytes: the items are spliced in as they are.
fn page_bytes(page: Page, plan: &Plan<'_>) -> Vec<u8> {
    let mut out = Vec::with_capacity(page.items.len() + 128);
    out.extend_from_slice(b"{");
    if !plan.count_only {
        out.extend_from_slice(b"\"Items\":[");
        out.extend_from_slice(&page.items);
        out.extend_from_slice(b"],");
    }
    out.extend_from_slice(format!("\"Count\":{},\"ScannedCount\":{}", page.count, page.scanned).as_bytes());
    if let Some(k) = page.last_key {
        out.extend_from_slice(b",\"LastEvaluatedKey\":");
        out.extend_from_slice(&serde_json::to_vec(&item_to_json(&k)).unwrap_or_default());
    }
    if let Some(cc) = plan
        .capacity
        .report(&plan.meta.name, (page.scanned as f64 * 0.5).max(0.5))
    {
        out.extend_from_slice(b",\"ConsumedCapacity\":");
        out.extend_from_slice(cc.to_string().as_bytes());
    }
    out.push(b'}');
    out
}

pub(crate) fn query(catalog: &Catalog, storage: &dyn Storage, req: &Json) -> Result<Vec<u8>, DbError> {
    let meta = catalog.of_request(req)?;
    let index = index(&meta, req)?;
    check_no_mix(
        req,
        &["KeyConditions", "QueryFilter"],
        &["KeyConditionExpression", "FilterExpression"],
    )?;
    check_substitutions_need_expressions(
        req,
        &["FilterExpression", "KeyConditionExpression", "ProjectionExpression"],
    )?;
    let subs = Substitutions::new(req)?;
    let key_cond = match (
        str_param(req, "KeyConditionExpression"),
        req.get("KeyConditions").and_then(Json::as_object),
    ) {
        (Some(text), _) => expr::parse_condition(text, ExprKind::KeyCondition, &subs)?,
        (None, Some(m)) => {
            legacy::conditions(m, None)?.ok_or_else(|| DbError::validation("KeyConditions must not be empty"))?
        }
        (None, None) => {
            return Err(DbError::validation(
                "Either the KeyConditions or KeyConditionExpression parameter must be specified in the request.",
            ))
        }
    };
    let filter = filter(req, "QueryFilter", &subs)?;
    let projection = projection(req, &subs)?;
    subs.check_all_used()?;
    let (hash, range) = match index {
        Some(ix) => (&ix.hash, ix.range.as_ref()),
        None => (&meta.hash, meta.range.as_ref()),
    };
    let (hash_value, sort) = key_condition(key_cond, hash, range)?;
    let keys: Vec<&KeyAttr> = std::iter::once(hash).chain(range).collect();
    check_filter_keys(
        filter.as_ref(),
        &keys,
        req.get("QueryFilter").is_some_and(|v| !v.is_null()),
    )?;
    let count_only = count_only(req, Op::Query, index)?;
    let (start_after, start_item) = start_key(&meta, index, req)?.unzip();
    let plan = Plan {
        meta: &meta,
        index,
        filter,
        projection,
        leaf_names: false,
        count_only,
        limit: query_limit(req)?,
        reverse: req.get("ScanIndexForward").and_then(Json::as_bool) == Some(false),
        start_after,
        capacity: Capacity::of(req)?,
    };
    let mut partition = match index {
        Some(ix) => meta.index_prefix(ix),
        None => meta.items_prefix(),
    };
    encode_key_value(&hash_value, &mut partition);
    if let (Some(k), Some(esk)) = (&plan.start_after, &start_item) {
        if index.is_none() && meta.range.is_none() {
            // In a table without a sort key, one partition key is one item: nothing to resume.
            // (A partition of an index may hold many.)
            return Err(DbError::validation(
                "The query can return at most one row and cannot be restarted",
            ));
        }
        if !k.starts_with(&partition) {
            return Err(DbError::validation(
                "The provided starting key is outside query boundaries based on provided conditions",
            ));
        }
        if sort.as_ref().is_some_and(|c| !expr::matches(c, esk)) {
            return Err(DbError::validation(
                "The provided starting key does not match the range key predicate",
            ));
        }
    }
    let partition_end = prefix_end(&partition).unwrap_or_default();
    let seek = if plan.reverse {
        None
    } else {
        sort.as_ref().and_then(|s| sort_seek(&partition, s))
    };
    let (start, end): (Bound<&[u8]>, Bound<&[u8]>) = match (&plan.start_after, plan.reverse) {
        (Some(k), false) => (Bound::Excluded(k), Bound::Excluded(&partition_end)),
        (Some(k), true) => (Bound::Included(&partition), Bound::Excluded(k)),
        (None, _) => (
            Bound::Included(seek.as_deref().unwrap_or(&partition)),
            Bound::Excluded(&partition_end),
        ),
    };
    let snap = storage.snapshot().map_err(storage_err)?;
    let page = run(&*snap, &plan, start, end, sort.as_ref(), None)?;
    Ok(page_bytes(page, &plan))
}

pub(crate) fn scan(catalog: &Catalog, storage: &dyn Storage, req: &Json) -> Result<Vec<u8>, DbError> {
    let meta = catalog.of_request(req)?;
    let index = index(&meta, req)?;
    check_no_mix(req, &["ScanFilter"], &["FilterExpression"])?;
    check_substitutions_need_expressions(req, &["FilterExpression", "ProjectionExpression"])?;
    let subs = Substitutions::new(req)?;
    let filter = filter(req, "ScanFilter", &subs)?;
    let projection = projection(req, &subs)?;
    subs.check_all_used()?;
    let segment = match (req.get("Segment").and_then(Json::as_u64), req.get("TotalSegments").and_then(Json::as_u64)) {
        (None, None) => None,
        (Some(s), Some(t)) if (1..=1_000_000).contains(&t) && s < t => Some((s, t)),
        (Some(s), Some(t)) if (1..=1_000_000).contains(&t) => {
            return Err(DbError::validation(format!("The Segment parameter is zero-based and must be less than parameter TotalSegments: Segment: {s} is not less than TotalSegments: {t}")))
        }
        (Some(_), None) => return Err(DbError::validation("The TotalSegments parameter is required but was not present in the request when Segment parameter is present")),
        (None, Some(_)) => return Err(DbError::validation("The Segment parameter is required but was not present in the request when parameter TotalSegments is present")),
        _ => return Err(DbError::validation("1 validation error detected: Value at 'totalSegments' failed to satisfy constraint: Member must have value between 1 and 1000000")),
    };
    let count_only = count_only(req, Op::Scan, index)?;
    let plan = Plan {
        meta: &meta,
        index,
        filter,
        projection,
        leaf_names: false,
        count_only,
        limit: limit(req)?,
        reverse: false,
        start_after: start_key(&meta, index, req)?.map(|(k, _)| k),
        capacity: Capacity::of(req)?,
    };
    if let (Some((segment, total)), Some(k)) = (segment, &plan.start_after) {
        if partition_hash(&plan, k) % total != segment {
            return Err(DbError::validation(format!(
                "The provided starting key is invalid: Invalid ExclusiveStartKey. Please use ExclusiveStartKey with correct Segment. TotalSegments: {total} Segment: {segment}"
            )));
        }
    }
    let prefix = match index {
        Some(ix) => meta.index_prefix(ix),
        None => meta.items_prefix(),
    };
    let end = prefix_end(&prefix).unwrap_or_default();
    let start = match &plan.start_after {
        Some(k) => Bound::Excluded(k.as_slice()),
        None => Bound::Included(prefix.as_slice()),
    };
    let snap = storage.snapshot().map_err(storage_err)?;
    let page = run(&*snap, &plan, start, Bound::Excluded(&end), None, segment)?;
    Ok(page_bytes(page, &plan))
}

/// A PartiQL SELECT as a read: one partition when the statement pins the partition key,
/// otherwise the whole table or index, filtered and projected.
pub(crate) struct Select<'m> {
    pub meta: &'m TableMeta,
    pub index: Option<&'m IndexMeta>,
    pub partition: Option<Value>,
    pub filter: Option<Condition>,
    pub projection: Option<Vec<Path>>,
    pub limit: Option<usize>,
    pub reverse: bool,
    /// The key the previous page ended on (from its NextToken).
    pub start_after: Option<Item>,
}

/// One page of a [`Select`]: the items as comma-separated DynamoDB JSON, and the key to
/// continue after when there is more.
pub(crate) fn select_page(storage: &dyn Storage, s: Select<'_>) -> Result<(Vec<u8>, Option<Item>), DbError> {
    let start_after = match &s.start_after {
        None => None,
        Some(key) => Some(
            match s.index {
                Some(ix) => s.meta.index_key(ix, key),
                None => Some(s.meta.item_key(key)),
            }
            .ok_or_else(|| DbError::validation("Invalid NextToken"))?,
        ),
    };
    let plan = Plan {
        meta: s.meta,
        index: s.index,
        filter: s.filter,
        projection: s.projection,
        leaf_names: true,
        count_only: false,
        limit: s.limit,
        reverse: s.reverse,
        start_after,
        capacity: Capacity::default(),
    };
    let mut prefix = match s.index {
        Some(ix) => s.meta.index_prefix(ix),
        None => s.meta.items_prefix(),
    };
    if let Some(v) = &s.partition {
        encode_key_value(v, &mut prefix);
    }
    // A token from another statement (another partition) would start the read elsewhere.
    if plan.start_after.as_ref().is_some_and(|k| !k.starts_with(&prefix)) {
        return Err(DbError::validation("Invalid NextToken"));
    }
    let end = prefix_end(&prefix).unwrap_or_default();
    let (start, end): (Bound<&[u8]>, Bound<&[u8]>) = match (&plan.start_after, plan.reverse) {
        (Some(k), false) => (Bound::Excluded(k), Bound::Excluded(&end)),
        (Some(k), true) => (Bound::Included(&prefix), Bound::Excluded(k)),
        (None, _) => (Bound::Included(&prefix), Bound::Excluded(&end)),
    };
    let snap = storage.snapshot().map_err(storage_err)?;
    let page = run(&*snap, &plan, start, end, None, None)?;
    Ok((page.items, page.last_key))
}
