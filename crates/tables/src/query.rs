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

fn count_only(req: &Json, index: Option<&IndexMeta>, has_projection: bool) -> Result<bool, DbError> {
    let s = str_param(req, "Select");
    match s {
        None => Ok(false),
        Some("COUNT") => Ok(false).map(|_: bool| true),
        Some("ALL_ATTRIBUTES") => {
            if let Some(ix) = index {
                if !ix.local && ix.projection != Projection::All {
                    return Err(DbError::validation(format!(
                        "One or more parameter values were invalid: Select type ALL_ATTRIBUTES is not supported for global secondary index {} because its projection type is not ALL",
                        ix.name
                    )));
                }
            }
            Ok(false)
        }
        Some("ALL_PROJECTED_ATTRIBUTES") => {
            if index.is_none() {
                return Err(DbError::validation("One or more parameter values were invalid: Select type ALL_PROJECTED_ATTRIBUTES is supported only for index queries"));
            }
            Ok(false)
        }
        Some("SPECIFIC_ATTRIBUTES") => {
            if !has_projection {
                return Err(DbError::validation("One or more parameter values were invalid: Must specify the AttributesToGet or ProjectionExpression when choosing to get SPECIFIC_ATTRIBUTES"));
            }
            Ok(false)
        }
        Some(other) => Err(DbError::validation(format!(
            "1 validation error detected: Value '{other}' at 'select' failed to satisfy constraint: Member must satisfy enum value set: [SPECIFIC_ATTRIBUTES, COUNT, ALL_ATTRIBUTES, ALL_PROJECTED_ATTRIBUTES]"
        ))),
    }
}

/// The storage key to resume after, from ExclusiveStartKey.
fn start_key(meta: &TableMeta, index: Option<&IndexMeta>, req: &Json) -> Result<Option<Vec<u8>>, DbError> {
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
    Ok(Some(match index {
        Some(ix) => meta.index_key(ix, &key).ok_or_else(invalid)?,
        None => meta.item_key(&key),
    }))
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
    let mut parts = Vec::new();
    flatten(cond, &mut parts);
    let unsupported = || DbError::validation("Query key condition not supported");
    let attr_of = |o: &Operand| match o {
        Operand::Path(p) if p.len() == 1 => match &p[0] {
            PathElem::Name(n) => Some(n.clone()),
            PathElem::Index(_) => None,
        },
        _ => None,
    };
    let type_check = |v: &Value, attr: &KeyAttr| {
        if v.type_name() == attr.kind {
            Ok(())
        } else {
            Err(DbError::validation(
                "One or more parameter values were invalid: Condition parameter type does not match schema type",
            ))
        }
    };
    let mut hash_value = None;
    let mut sort = None;
    if parts.len() > 2 {
        return Err(DbError::validation("Conditions can be of length 1 or 2 only"));
    }
    for part in parts {
        let name = match &part {
            Condition::Compare(a, _, _) | Condition::Between(a, _, _) | Condition::BeginsWith(a, _) => attr_of(a),
            _ => None,
        }
        .ok_or_else(unsupported)?;
        if name == hash.name {
            match part {
                Condition::Compare(_, Comparator::Eq, Operand::Value(v)) => {
                    type_check(&v, hash)?;
                    if hash_value.replace(v).is_some() {
                        return Err(unsupported());
                    }
                }
                _ => return Err(unsupported()),
            }
        } else if let Some(r) = range.filter(|r| r.name == name) {
            let ok = match &part {
                Condition::Compare(_, Comparator::Ne, _) => false,
                Condition::Compare(_, _, Operand::Value(v)) => type_check(v, r).is_ok(),
                Condition::Between(_, Operand::Value(a), Operand::Value(b)) => {
                    type_check(a, r).is_ok() && type_check(b, r).is_ok()
                }
                Condition::BeginsWith(_, Operand::Value(v)) => {
                    if r.kind == "N" {
                        return Err(DbError::validation("Invalid KeyConditionExpression: Incorrect operand type for operator or function; operator or function: begins_with, operand type: N"));
                    }
                    type_check(v, r).is_ok()
                }
                _ => false,
            };
            if !ok {
                return Err(unsupported());
            }
            if sort.replace(part).is_some() {
                return Err(unsupported());
            }
        } else {
            return Err(DbError::validation(format!(
                "Query condition missed key schema element: {}",
                hash.name
            )));
        }
    }
    let hash_value = hash_value
        .ok_or_else(|| DbError::validation(format!("Query condition missed key schema element: {}", hash.name)))?;
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
        &["KeyConditionExpression", "FilterExpression", "ProjectionExpression"],
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
    let count_only = count_only(req, index, projection.is_some())?;
    let plan = Plan {
        meta: &meta,
        index,
        filter,
        projection,
        count_only,
        limit: limit(req)?,
        reverse: req.get("ScanIndexForward").and_then(Json::as_bool) == Some(false),
        start_after: start_key(&meta, index, req)?,
        capacity: Capacity::of(req)?,
    };
    let mut partition = match index {
        Some(ix) => meta.index_prefix(ix),
        None => meta.items_prefix(),
    };
    encode_key_value(&hash_value, &mut partition);
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
        (Some(s), Some(t)) if t >= 1 && t <= 1_000_000 && s < t => Some((s, t)),
        (Some(_), Some(t)) if t >= 1 && t <= 1_000_000 => {
            return Err(DbError::validation("The Segment parameter is zero-based and must be less than parameter TotalSegments"))
        }
        (Some(_), None) => return Err(DbError::validation("The TotalSegments parameter is required but was not present in the request when Segment parameter is present")),
        (None, Some(_)) => return Err(DbError::validation("The Segment parameter is required but was not present in the request when parameter TotalSegments is present")),
        _ => return Err(DbError::validation("1 validation error detected: Value at 'totalSegments' failed to satisfy constraint: Member must have value between 1 and 1000000")),
    };
    let count_only = count_only(req, index, projection.is_some())?;
    let plan = Plan {
        meta: &meta,
        index,
        filter,
        projection,
        count_only,
        limit: limit(req)?,
        reverse: false,
        start_after: start_key(&meta, index, req)?,
        capacity: Capacity::of(req)?,
    };
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
