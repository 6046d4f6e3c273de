//! Table descriptions: parsed from CreateTable, stored as JSON, described back as DynamoDB does.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value as Json};

use crate::error::DbError;
use crate::keys::encode_key_value;
use crate::value::{Item, Value};

pub const ACCOUNT: &str = "000000000000";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyAttr {
    pub name: String,
    /// `S`, `N` or `B`.
    pub kind: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Projection {
    All,
    KeysOnly,
    Include(Vec<String>),
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IndexMeta {
    pub name: String,
    pub id: u16,
    pub hash: KeyAttr,
    pub range: Option<KeyAttr>,
    pub projection: Projection,
    pub local: bool,
    pub throughput: Option<(u64, u64)>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TableMeta {
    pub name: String,
    pub id: u32,
    pub hash: KeyAttr,
    pub range: Option<KeyAttr>,
    pub attributes: Vec<KeyAttr>,
    pub indexes: Vec<IndexMeta>,
    pub billing_mode: String,
    pub throughput: (u64, u64),
    pub created: f64,
    pub ttl_attribute: Option<String>,
    pub tags: Vec<(String, String)>,
    pub stream: Option<Json>,
    pub deletion_protection: bool,
    pub uuid: String,
    pub region: String,
    /// Bumped by every change of the description (UpdateTable, TTL, tags): a write checked
    /// against an older one runs again.
    #[serde(default)]
    pub version: u32,
    /// The highest index id ever given, so a deleted index's id is never reused (its entries
    /// may still be on their way out when the next index is created).
    #[serde(default)]
    pub last_index_id: u16,
}

pub fn validate_table_name(name: &str, field: &str) -> Result<(), DbError> {
    if name.len() < 3 || name.len() > 255 {
        return Err(DbError::validation(format!(
            "1 validation error detected: Value '{name}' at '{field}' failed to satisfy constraint: Member must have length {}",
            if name.len() < 3 { "greater than or equal to 3" } else { "less than or equal to 255" }
        )));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
    {
        return Err(DbError::validation(format!(
            "1 validation error detected: Value '{name}' at '{field}' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+"
        )));
    }
    Ok(())
}

/// Key values are limited to 2,048 bytes for a partition key and 1,024 for a sort key, in the
/// table and in its indexes alike.
fn check_key_size(v: &Value, is_hash: bool) -> Result<(), DbError> {
    let len = match v {
        Value::S(s) => s.len(),
        Value::B(b) => b.len(),
        // A number's encoding is at most 21 bytes.
        _ => 0,
    };
    if is_hash && len > 2048 {
        // DynamoDB's text, without a space before the number.
        return Err(DbError::validation(
            "One or more parameter values were invalid: Size of hashkey has exceeded the maximum size limit of2048 bytes",
        ));
    }
    if !is_hash && len > 1024 {
        return Err(DbError::validation(
            "One or more parameter values were invalid: Aggregated size of all range keys has exceeded the size limit of 1024 bytes",
        ));
    }
    Ok(())
}

fn key_schema(schema: &Json, defs: &[KeyAttr], what: &str) -> Result<(KeyAttr, Option<KeyAttr>), DbError> {
    let elems = schema
        .as_array()
        .ok_or_else(|| DbError::validation(format!("{what}: KeySchema must be a list")))?;
    let find = |name: &str| {
        defs.iter().find(|d| d.name == name).cloned().ok_or_else(|| {
            DbError::validation(format!(
                "One or more parameter values were invalid: Some index key attributes are not defined in AttributeDefinitions. Keys: [{name}], AttributeDefinitions: [{}]",
                defs.iter().map(|d| d.name.as_str()).collect::<Vec<_>>().join(", ")
            ))
        })
    };
    fn attr(e: &Json) -> &str {
        e.get("AttributeName").and_then(Json::as_str).unwrap_or("")
    }
    fn kind(e: &Json) -> &str {
        e.get("KeyType").and_then(Json::as_str).unwrap_or("")
    }
    match elems.as_slice() {
        [h] if kind(h) == "HASH" => Ok((find(attr(h))?, None)),
        [h, r] if kind(h) == "HASH" && kind(r) == "RANGE" => {
            if attr(h) == attr(r) {
                return Err(DbError::validation("Both the Hash Key and the Range Key element in the KeySchema have the same name"));
            }
            Ok((find(attr(h))?, Some(find(attr(r))?)))
        }
        [] => Err(DbError::validation(format!("1 validation error detected: Value '[]' at '{what}' failed to satisfy constraint: Member must have length greater than or equal to 1"))),
        _ => Err(DbError::validation("Invalid KeySchema: The first KeySchemaElement is not a HASH key type")),
    }
}

fn projection(j: Option<&Json>) -> Result<Projection, DbError> {
    let Some(p) = j else {
        return Err(DbError::validation("Projection is required for an index"));
    };
    let non_key = p.get("NonKeyAttributes").filter(|v| !v.is_null());
    let kind = p.get("ProjectionType").and_then(Json::as_str).unwrap_or("ALL");
    match (kind, non_key) {
        ("ALL" | "KEYS_ONLY", Some(_)) => Err(DbError::validation(format!(
            "One or more parameter values were invalid: ProjectionType is {kind}, but NonKeyAttributes is specified"
        ))),
        ("ALL", None) => Ok(Projection::All),
        ("KEYS_ONLY", None) => Ok(Projection::KeysOnly),
        ("INCLUDE", None) => Err(DbError::validation(
            "One or more parameter values were invalid: ProjectionType is INCLUDE, but NonKeyAttributes is not specified",
        )),
        ("INCLUDE", Some(names)) => {
            let names: Vec<String> = names
                .as_array()
                .map(|a| a.iter().filter_map(Json::as_str).map(String::from).collect())
                .unwrap_or_default();
            if names.is_empty() {
                return Err(DbError::validation(
                    "1 validation error detected: Value '[]' at 'projection.nonKeyAttributes' failed to satisfy constraint: Member must have length greater than or equal to 1",
                ));
            }
            Ok(Projection::Include(names))
        }
        (other, _) => Err(DbError::validation(format!(
            "One or more parameter values were invalid: Unknown ProjectionType: {other}"
        ))),
    }
}

fn throughput(j: Option<&Json>) -> Option<(u64, u64)> {
    let j = j?;
    Some((
        j.get("ReadCapacityUnits").and_then(Json::as_u64).unwrap_or(0),
        j.get("WriteCapacityUnits").and_then(Json::as_u64).unwrap_or(0),
    ))
}

pub fn parse_index(j: &Json, defs: &[KeyAttr], local: bool, id: u16) -> Result<IndexMeta, DbError> {
    let name = j
        .get("IndexName")
        .and_then(Json::as_str)
        .ok_or_else(|| DbError::validation("IndexName is required"))?;
    validate_table_name(name, "indexName")?;
    let (hash, range) = key_schema(j.get("KeySchema").unwrap_or(&Json::Null), defs, "keySchema")?;
    Ok(IndexMeta {
        name: name.to_owned(),
        id,
        hash,
        range,
        projection: projection(j.get("Projection"))?,
        local,
        throughput: throughput(j.get("ProvisionedThroughput")),
    })
}

impl TableMeta {
    /// Validate a CreateTable request. `id` is assigned by the caller.
    pub fn from_create(req: &Json, id: u32, region: &str) -> Result<TableMeta, DbError> {
        let name = req.get("TableName").and_then(Json::as_str).ok_or_else(|| {
            DbError::validation("1 validation error detected: Value null at 'tableName' failed to satisfy constraint: Member must not be null")
        })?;
        validate_table_name(name, "tableName")?;
        let mut attributes = Vec::new();
        for d in req
            .get("AttributeDefinitions")
            .and_then(Json::as_array)
            .into_iter()
            .flatten()
        {
            let n = d.get("AttributeName").and_then(Json::as_str).unwrap_or("").to_owned();
            let k = d.get("AttributeType").and_then(Json::as_str).unwrap_or("").to_owned();
            if !matches!(k.as_str(), "S" | "N" | "B") {
                return Err(DbError::validation(format!(
                    "1 validation error detected: Value '{k}' at 'attributeDefinitions.member.attributeType' failed to satisfy constraint: Member must satisfy enum value set: [B, N, S]"
                )));
            }
            if attributes.iter().any(|a: &KeyAttr| a.name == n) {
                return Err(DbError::validation(format!("Attribute Name is duplicated: {n}")));
            }
            attributes.push(KeyAttr { name: n, kind: k });
        }
        let (hash, range) = key_schema(req.get("KeySchema").unwrap_or(&Json::Null), &attributes, "keySchema")?;
        let mut indexes = Vec::new();
        let mut next_id = 1u16;
        for (field, local) in [("GlobalSecondaryIndexes", false), ("LocalSecondaryIndexes", true)] {
            for ix in req.get(field).and_then(Json::as_array).into_iter().flatten() {
                let meta = parse_index(ix, &attributes, local, next_id)?;
                next_id += 1;
                if local {
                    if range.is_none() {
                        return Err(DbError::validation("One or more parameter values were invalid: Table KeySchema does not have a range key, which is required when specifying a LocalSecondaryIndex"));
                    }
                    if meta.hash != hash {
                        return Err(DbError::validation(format!(
                            "One or more parameter values were invalid: Index KeySchema does not have the same leading hash key as table KeySchema for index: {}. index hash key: {}, table hash key: {}",
                            meta.name, meta.hash.name, hash.name
                        )));
                    }
                    if meta.range.is_none() {
                        return Err(DbError::validation(format!(
                            "One or more parameter values were invalid: Index KeySchema does not have a range key for index: {}",
                            meta.name
                        )));
                    }
                }
                if indexes.iter().any(|i: &IndexMeta| i.name == meta.name) {
                    return Err(DbError::validation(format!(
                        "One or more parameter values were invalid: Duplicate index name: {}",
                        meta.name
                    )));
                }
                indexes.push(meta);
            }
        }
        // Every defined attribute must be a key of the table or of an index.
        let used = |a: &KeyAttr| {
            hash.name == a.name
                || range.as_ref().is_some_and(|r| r.name == a.name)
                || indexes
                    .iter()
                    .any(|i| i.hash.name == a.name || i.range.as_ref().is_some_and(|r| r.name == a.name))
        };
        if attributes.iter().any(|a| !used(a)) {
            if indexes.is_empty() {
                return Err(DbError::validation("One or more parameter values were invalid: Number of attributes in KeySchema does not exactly match number of attributes defined in AttributeDefinitions"));
            }
            // With indexes DynamoDB lists both sides, sorted.
            let mut defined: Vec<&str> = attributes.iter().map(|a| a.name.as_str()).collect();
            defined.sort_unstable();
            let mut keys: Vec<&str> = attributes.iter().filter(|a| used(a)).map(|a| a.name.as_str()).collect();
            keys.sort_unstable();
            return Err(DbError::validation(format!(
                "One or more parameter values were invalid: Some AttributeDefinitions are not used. AttributeDefinitions: [{}], keys used: [{}]",
                defined.join(", "),
                keys.join(", ")
            )));
        }
        let billing_mode = req
            .get("BillingMode")
            .and_then(Json::as_str)
            .unwrap_or("PROVISIONED")
            .to_owned();
        let tp = throughput(req.get("ProvisionedThroughput"));
        let throughput = match (billing_mode.as_str(), tp) {
            ("PAY_PER_REQUEST", None) => (0, 0),
            ("PAY_PER_REQUEST", Some(_)) => {
                return Err(DbError::validation("One or more parameter values were invalid: Neither ReadCapacityUnits nor WriteCapacityUnits can be specified when BillingMode is PAY_PER_REQUEST"))
            }
            ("PROVISIONED", Some(t)) => t,
            ("PROVISIONED", None) => {
                return Err(DbError::validation("One or more parameter values were invalid: ReadCapacityUnits and WriteCapacityUnits must both be specified when BillingMode is PROVISIONED"))
            }
            (other, _) => return Err(DbError::validation(format!("Unknown BillingMode: {other}"))),
        };
        let tags = req
            .get("Tags")
            .and_then(Json::as_array)
            .map(|a| {
                a.iter()
                    .map(|t| {
                        (
                            t.get("Key").and_then(Json::as_str).unwrap_or("").to_owned(),
                            t.get("Value").and_then(Json::as_str).unwrap_or("").to_owned(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0);
        Ok(TableMeta {
            name: name.to_owned(),
            id,
            hash,
            range,
            attributes,
            indexes,
            billing_mode,
            throughput,
            created: (now * 1000.0).round() / 1000.0,
            ttl_attribute: None,
            tags,
            stream: req.get("StreamSpecification").cloned(),
            deletion_protection: req
                .get("DeletionProtectionEnabled")
                .and_then(Json::as_bool)
                .unwrap_or(false),
            uuid: format!("{:08x}-0000-4000-8000-{:012x}", id, (now * 1000.0) as u64),
            region: region.to_owned(),
            version: 0,
            last_index_id: next_id - 1,
        })
    }

    pub fn arn(&self) -> String {
        format!("arn:aws:dynamodb:{}:{ACCOUNT}:table/{}", self.region, self.name)
    }

    pub fn index(&self, name: &str) -> Option<&IndexMeta> {
        self.indexes.iter().find(|i| i.name == name)
    }

    pub fn key_names(&self) -> Vec<&str> {
        let mut v = vec![self.hash.name.as_str()];
        if let Some(r) = &self.range {
            v.push(r.name.as_str());
        }
        v
    }

    fn key_schema_json(hash: &KeyAttr, range: &Option<KeyAttr>) -> Json {
        let mut v = vec![json!({"AttributeName": hash.name, "KeyType": "HASH"})];
        if let Some(r) = range {
            v.push(json!({"AttributeName": r.name, "KeyType": "RANGE"}));
        }
        Json::Array(v)
    }

    /// The table's description as DynamoDB answers it, with its statistics.
    pub fn describe(&self, stats: &crate::stats::TableStats, status: &str) -> Json {
        let tp =
            |t: (u64, u64)| json!({"NumberOfDecreasesToday": 0, "ReadCapacityUnits": t.0, "WriteCapacityUnits": t.1});
        let mut d = json!({
            "AttributeDefinitions": self.attributes.iter().map(|a| json!({"AttributeName": a.name, "AttributeType": a.kind})).collect::<Vec<_>>(),
            "TableName": self.name,
            "KeySchema": Self::key_schema_json(&self.hash, &self.range),
            "TableStatus": status,
            "CreationDateTime": self.created,
            "ProvisionedThroughput": tp(self.throughput),
            "TableSizeBytes": stats.table.bytes,
            "ItemCount": stats.table.items,
            "TableArn": self.arn(),
            "TableId": self.uuid,
            "DeletionProtectionEnabled": self.deletion_protection,
        });
        if self.billing_mode == "PAY_PER_REQUEST" {
            d["BillingModeSummary"] =
                json!({"BillingMode": "PAY_PER_REQUEST", "LastUpdateToPayPerRequestDateTime": self.created});
        }
        let index_json = |i: &IndexMeta| {
            let projection = match &i.projection {
                Projection::All => json!({"ProjectionType": "ALL"}),
                Projection::KeysOnly => json!({"ProjectionType": "KEYS_ONLY"}),
                Projection::Include(a) => json!({"ProjectionType": "INCLUDE", "NonKeyAttributes": a}),
            };
            let mut j = json!({
                "IndexName": i.name,
                "KeySchema": Self::key_schema_json(&i.hash, &i.range),
                "Projection": projection,
                "IndexSizeBytes": stats.index(i.id).bytes,
                "ItemCount": stats.index(i.id).items,
                "IndexArn": format!("{}/index/{}", self.arn(), i.name),
            });
            if !i.local {
                j["IndexStatus"] = json!("ACTIVE");
                j["ProvisionedThroughput"] = tp(i.throughput.unwrap_or((0, 0)));
            }
            j
        };
        let gsis: Vec<Json> = self.indexes.iter().filter(|i| !i.local).map(index_json).collect();
        let lsis: Vec<Json> = self.indexes.iter().filter(|i| i.local).map(index_json).collect();
        if !gsis.is_empty() {
            d["GlobalSecondaryIndexes"] = Json::Array(gsis);
        }
        if !lsis.is_empty() {
            d["LocalSecondaryIndexes"] = Json::Array(lsis);
        }
        if let Some(view) = crate::stream::view_type(self) {
            d["StreamSpecification"] = json!({"StreamEnabled": true, "StreamViewType": view});
            d["LatestStreamLabel"] = json!(crate::stream::LABEL);
            d["LatestStreamArn"] = json!(crate::stream::stream_arn(self));
        }
        d
    }

    /// Storage key of an item: `d` + table id + encoded partition and sort key.
    pub fn item_key(&self, key: &Item) -> Vec<u8> {
        let mut out = Vec::with_capacity(32);
        out.push(b'd');
        out.extend_from_slice(&self.id.to_be_bytes());
        if let Some(v) = key.get(&self.hash.name) {
            encode_key_value(v, &mut out);
        }
        if let Some(r) = &self.range {
            if let Some(v) = key.get(&r.name) {
                encode_key_value(v, &mut out);
            }
        }
        out
    }

    pub fn items_prefix(&self) -> Vec<u8> {
        let mut out = vec![b'd'];
        out.extend_from_slice(&self.id.to_be_bytes());
        out
    }

    pub fn index_prefix(&self, index: &IndexMeta) -> Vec<u8> {
        let mut out = vec![b'x'];
        out.extend_from_slice(&self.id.to_be_bytes());
        out.extend_from_slice(&index.id.to_be_bytes());
        out
    }

    /// The index entry key for `item`, if the item has the index's key attributes.
    pub fn index_key(&self, index: &IndexMeta, item: &Item) -> Option<Vec<u8>> {
        let hv = item
            .get(&index.hash.name)
            .filter(|v| v.type_name() == index.hash.kind)?;
        let mut out = self.index_prefix(index);
        encode_key_value(hv, &mut out);
        if let Some(r) = &index.range {
            let rv = item.get(&r.name).filter(|v| v.type_name() == r.kind)?;
            encode_key_value(rv, &mut out);
        }
        let base = self.item_key(item);
        out.extend_from_slice(&base[5..]);
        Some(out)
    }

    /// Whether `item` has the index's key attributes, with the index's types (the test
    /// [`TableMeta::index_key`] makes, without building the key).
    pub fn in_index(&self, index: &IndexMeta, item: &Item) -> bool {
        let typed = |attr: &KeyAttr| item.get(&attr.name).is_some_and(|v| v.type_name() == attr.kind);
        typed(&index.hash) && index.range.as_ref().is_none_or(typed)
    }

    /// DynamoDB's size of what an index keeps of `item`: its projected attributes.
    pub fn index_item_size(&self, index: &IndexMeta, item: &Item) -> usize {
        match &index.projection {
            Projection::All => crate::value::item_size(item),
            projection => item
                .iter()
                .filter(|(k, _)| {
                    self.key_names().contains(&k.as_str())
                        || index.hash.name == **k
                        || index.range.as_ref().is_some_and(|r| r.name == **k)
                        || matches!(projection, Projection::Include(extra) if extra.contains(k))
                })
                .map(|(k, v)| k.len() + v.size())
                .sum(),
        }
    }

    pub fn ttl_prefix(&self) -> Vec<u8> {
        let mut out = vec![b'e'];
        out.extend_from_slice(&self.id.to_be_bytes());
        out
    }

    /// The TTL index entry for `item`: `e` + id + expiry seconds + item key.
    pub fn ttl_key(&self, item: &Item) -> Option<Vec<u8>> {
        let attr = self.ttl_attribute.as_ref()?;
        let Some(Value::N(n)) = item.get(attr) else { return None };
        let secs: u64 = n.to_string().split('.').next()?.parse().ok()?;
        let mut out = self.ttl_prefix();
        out.extend_from_slice(&secs.to_be_bytes());
        let base = self.item_key(item);
        out.extend_from_slice(&base[5..]);
        Some(out)
    }

    fn check_key_value(&self, attr: &KeyAttr, v: &Value, is_hash: bool) -> Result<(), DbError> {
        if v.type_name() != attr.kind {
            return Err(DbError::validation(format!(
                "One or more parameter values were invalid: Type mismatch for key {} expected: {} actual: {}",
                attr.name,
                attr.kind,
                v.type_name()
            )));
        }
        let empty = match v {
            Value::S(s) => s.is_empty(),
            Value::B(b) => b.is_empty(),
            _ => false,
        };
        if empty {
            let kind = if matches!(v, Value::S(_)) { "string" } else { "binary" };
            return Err(DbError::validation(format!(
                "One or more parameter values are not valid. The AttributeValue for a key attribute cannot contain an empty {kind} value. Key: {}",
                attr.name
            )));
        }
        check_key_size(v, is_hash)
    }

    /// Check an item for PutItem: key attributes present with the right types; index keys typed.
    pub fn check_item(&self, item: &Item) -> Result<(), DbError> {
        for (attr, is_hash) in std::iter::once((&self.hash, true)).chain(self.range.iter().map(|r| (r, false))) {
            let v = item.get(&attr.name).ok_or_else(|| {
                DbError::validation(format!(
                    "One or more parameter values were invalid: Missing the key {} in the item",
                    attr.name
                ))
            })?;
            self.check_key_value(attr, v, is_hash)?;
        }
        for index in &self.indexes {
            for attr in std::iter::once(&index.hash).chain(index.range.iter()) {
                if let Some(v) = item.get(&attr.name) {
                    if v.type_name() != attr.kind {
                        return Err(DbError::validation(format!(
                            "One or more parameter values were invalid: Type mismatch for Index Key {} Expected: {} Actual: {} IndexName: {}",
                            attr.name, attr.kind, v.type_name(), index.name
                        )));
                    }
                    if matches!(v, Value::S(s) if s.is_empty()) || matches!(v, Value::B(b) if b.is_empty()) {
                        return Err(DbError::validation(format!(
                            "One or more parameter values are not valid. A value specified for a secondary index key is not supported. The AttributeValue for a key attribute cannot contain an empty string value. IndexName: {}, IndexKey: {}",
                            index.name, attr.name
                        )));
                    }
                    check_key_size(v, attr.name == index.hash.name)?;
                }
            }
        }
        Ok(())
    }

    /// Check a `Key` parameter: exactly the key attributes, with the right types.
    pub fn check_key(&self, key: &Item) -> Result<(), DbError> {
        let mismatch = || DbError::validation("The provided key element does not match the schema");
        if key.len() != self.key_names().len() {
            return Err(mismatch());
        }
        for (attr, is_hash) in std::iter::once((&self.hash, true)).chain(self.range.iter().map(|r| (r, false))) {
            let v = key.get(&attr.name).ok_or_else(mismatch)?;
            if v.type_name() != attr.kind {
                return Err(mismatch());
            }
            self.check_key_value(attr, v, is_hash)?;
        }
        Ok(())
    }

    /// The key attributes of `item`.
    pub fn key_of(&self, item: &Item) -> Item {
        self.key_names()
            .into_iter()
            .filter_map(|n| item.get(n).map(|v| (n.to_owned(), v.clone())))
            .collect()
    }

    /// Attributes an index query returns for `item`, given the index's projection.
    pub fn project_for_index(&self, index: &IndexMeta, item: &Item) -> Item {
        match &index.projection {
            Projection::All => item.clone(),
            Projection::KeysOnly | Projection::Include(_) => {
                let mut keep: Vec<&str> = self.key_names();
                keep.push(&index.hash.name);
                if let Some(r) = &index.range {
                    keep.push(&r.name);
                }
                if let Projection::Include(extra) = &index.projection {
                    keep.extend(extra.iter().map(String::as_str));
                }
                item.iter()
                    .filter(|(k, _)| keep.contains(&k.as_str()))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect()
            }
        }
    }
}

/// The tables that exist, by name: the in-memory copy of every stored description, read by
/// every request and changed only by the table operations after their write commits.
#[derive(Default)]
pub struct Catalog {
    tables: std::sync::RwLock<std::collections::HashMap<String, std::sync::Arc<TableMeta>>>,
}

impl Catalog {
    fn read(&self) -> std::sync::RwLockReadGuard<'_, std::collections::HashMap<String, std::sync::Arc<TableMeta>>> {
        self.tables.read().unwrap_or_else(|e| e.into_inner())
    }

    /// The table called `name` (checked to be a valid name first, as DynamoDB does).
    pub fn get(&self, name: &str) -> Result<std::sync::Arc<TableMeta>, DbError> {
        validate_table_name(name, "tableName")?;
        self.read().get(name).cloned().ok_or_else(DbError::not_found)
    }

    /// The table a request's `TableName` names.
    pub fn of_request(&self, req: &Json) -> Result<std::sync::Arc<TableMeta>, DbError> {
        let name = req.get("TableName").and_then(Json::as_str).ok_or_else(|| {
            DbError::validation(
                "1 validation error detected: Value null at 'tableName' failed to satisfy constraint: Member must not be null",
            )
        })?;
        self.get(name)
    }

    /// Names in order.
    pub fn names(&self) -> Vec<String> {
        let mut v: Vec<String> = self.read().keys().cloned().collect();
        v.sort();
        v
    }

    pub fn all(&self) -> Vec<std::sync::Arc<TableMeta>> {
        self.read().values().cloned().collect()
    }

    pub(crate) fn insert(&self, meta: TableMeta) {
        let mut c = self.tables.write().unwrap_or_else(|e| e.into_inner());
        c.insert(meta.name.clone(), std::sync::Arc::new(meta));
    }

    pub(crate) fn remove(&self, name: &str) {
        self.tables.write().unwrap_or_else(|e| e.into_inner()).remove(name);
    }
}
