//! Creating the tables a service declares under `resources:` (CloudFormation's
//! `AWS::DynamoDB::Table` properties mirror the CreateTable API closely).

use serde_json::{json, Map, Value as Json};

use crate::error::{DbError, ErrorKind};
use crate::service::Tables;

/// What provisioning did with one table.
#[derive(Debug, PartialEq, Eq)]
pub enum Provisioned {
    Created,
    /// The table was there already (its data is kept).
    Existing,
}

/// CloudFormation allows numbers as strings (`ReadCapacityUnits: "5"`); the API does not.
fn numbers(v: &Json) -> Json {
    match v {
        Json::Object(m) => Json::Object(
            m.iter()
                .map(|(k, v)| {
                    let v = match (k.as_str(), v) {
                        ("ReadCapacityUnits" | "WriteCapacityUnits", Json::String(s)) => {
                            s.parse::<u64>().map(Json::from).unwrap_or_else(|_| v.clone())
                        }
                        _ => numbers(v),
                    };
                    (k.clone(), v)
                })
                .collect(),
        ),
        Json::Array(a) => Json::Array(a.iter().map(numbers).collect()),
        other => other.clone(),
    }
}

impl Tables {
    /// Create table `name` from CloudFormation `properties` unless it exists; apply its
    /// TimeToLiveSpecification.
    pub async fn provision(&self, name: &str, properties: &Json) -> Result<Provisioned, DbError> {
        let props = numbers(properties);
        let mut req = Map::new();
        req.insert("TableName".into(), json!(name));
        for key in [
            "KeySchema",
            "AttributeDefinitions",
            "GlobalSecondaryIndexes",
            "LocalSecondaryIndexes",
            "BillingMode",
            "ProvisionedThroughput",
            "StreamSpecification",
            "Tags",
            "DeletionProtectionEnabled",
        ] {
            if let Some(v) = props.get(key) {
                req.insert(key.into(), v.clone());
            }
        }
        if !req.contains_key("ProvisionedThroughput") && !req.contains_key("BillingMode") {
            req.insert("BillingMode".into(), json!("PAY_PER_REQUEST"));
        }
        // GSIs of an on-demand table carry no throughput, and CloudFormation lets them omit it.
        let outcome = match self.create_table(&Json::Object(req)).await {
            Ok(_) => Provisioned::Created,
            Err(e) if e.kind == ErrorKind::ResourceInUse => Provisioned::Existing,
            Err(e) => return Err(e),
        };
        if outcome == Provisioned::Existing {
            self.sync_stream(name, &props).await?;
        }
        if let Some(ttl) = props.get("TimeToLiveSpecification") {
            let enabled = ttl.get("Enabled").and_then(Json::as_bool).unwrap_or(false);
            let current = self.table_named(name)?.ttl_attribute.clone();
            if enabled != current.is_some() {
                self.handle(
                    "UpdateTimeToLive",
                    json!({"TableName": name, "TimeToLiveSpecification": ttl})
                        .to_string()
                        .as_bytes(),
                )
                .await;
            }
        }
        Ok(outcome)
    }

    /// Bring an existing table in line with `properties` on a redeploy, as CloudFormation
    /// would update it: global secondary indexes the manifest adds are created and those it
    /// drops are deleted (with their data; the table's items are untouched). A change to the
    /// key schema or the local indexes would need a new table, and is refused with a message
    /// saying so, before anything changes. A missing table is created.
    ///
    /// `phase` splits this so that a deploy changes nothing until every table is known to be
    /// fine ([`Phase::Check`]), adds what the new version needs before it serves
    /// ([`Phase::Grow`]: new tables, new indexes) and takes away what it no longer declares
    /// only once it serves ([`Phase::Shrink`]), so the version serving until then never loses
    /// an index it queries.
    pub async fn reconcile(&self, name: &str, properties: &Json, phase: Phase) -> Result<Reconciled, DbError> {
        let Ok(meta) = self.table_named(name) else {
            if phase != Phase::Grow {
                return Ok(Reconciled::Unchanged);
            }
            self.provision(name, properties).await?;
            return Ok(Reconciled::Created);
        };
        let props = numbers(properties);
        let wanted_keys = key_schema(props.get("KeySchema"), props.get("AttributeDefinitions"));
        let mut have_keys = vec![(meta.hash.name.clone(), "HASH".to_owned(), meta.hash.kind.clone())];
        if let Some(r) = &meta.range {
            have_keys.push((r.name.clone(), "RANGE".to_owned(), r.kind.clone()));
        }
        if wanted_keys != have_keys {
            return Err(DbError::validation(format!(
                "table {name} has key schema {}, the manifest now says {}: a key schema cannot change in place (CloudFormation would replace the table and its data). Keep the key schema, or give the table a new name and copy the data",
                show_keys(&have_keys),
                show_keys(&wanted_keys)
            )));
        }
        let index_names = |list: Option<&Json>| -> Vec<String> {
            list.and_then(Json::as_array)
                .into_iter()
                .flatten()
                .filter_map(|i| i.get("IndexName").and_then(Json::as_str).map(str::to_owned))
                .collect()
        };
        let wanted_local = index_names(props.get("LocalSecondaryIndexes"));
        let mut have_local: Vec<String> = meta
            .indexes
            .iter()
            .filter(|i| i.local)
            .map(|i| i.name.clone())
            .collect();
        let mut sorted_wanted_local = wanted_local.clone();
        sorted_wanted_local.sort();
        have_local.sort();
        if sorted_wanted_local != have_local {
            return Err(DbError::validation(format!(
                "table {name}: local secondary indexes can only be set when a table is created (it has [{}], the manifest says [{}])",
                have_local.join(", "),
                sorted_wanted_local.join(", ")
            )));
        }
        let wanted_global = props
            .get("GlobalSecondaryIndexes")
            .and_then(Json::as_array)
            .cloned()
            .unwrap_or_default();
        let have_global: Vec<String> = meta
            .indexes
            .iter()
            .filter(|i| !i.local)
            .map(|i| i.name.clone())
            .collect();
        let mut updates = Vec::new();
        let mut added = Vec::new();
        let mut removed = Vec::new();
        for gone in have_global.iter().filter(|h| {
            !wanted_global
                .iter()
                .any(|w| w.get("IndexName").and_then(Json::as_str) == Some(h.as_str()))
        }) {
            if phase == Phase::Shrink {
                updates.push(json!({"Delete": {"IndexName": gone}}));
                removed.push(gone.clone());
            }
        }
        for index in &wanted_global {
            let Some(index_name) = index.get("IndexName").and_then(Json::as_str) else {
                continue;
            };
            if !have_global.iter().any(|h| h == index_name) && phase == Phase::Grow {
                updates.push(json!({"Create": index}));
                added.push(index_name.to_owned());
            }
        }
        if phase == Phase::Grow {
            self.sync_stream(name, &props).await?;
        }
        if updates.is_empty() {
            return Ok(Reconciled::Unchanged);
        }
        // One update per index, as DynamoDB takes them.
        for update in updates {
            let req = json!({
                "TableName": name,
                "AttributeDefinitions": props.get("AttributeDefinitions").cloned().unwrap_or(json!([])),
                "GlobalSecondaryIndexUpdates": [update],
            });
            let (status, answer) = self.handle("UpdateTable", req.to_string().as_bytes()).await;
            if status != 200 {
                let message = answer
                    .get("message")
                    .or_else(|| answer.get("Message"))
                    .and_then(Json::as_str)
                    .unwrap_or("");
                return Err(DbError::validation(format!(
                    "table {name}: cannot update its indexes: {message}"
                )));
            }
        }
        Ok(Reconciled::Updated { added, removed })
    }
}

impl Tables {
    /// Turn an existing table's stream on, off or to another view type, as `properties`'
    /// StreamSpecification says (its records so far are kept).
    async fn sync_stream(&self, name: &str, props: &Json) -> Result<(), DbError> {
        let meta = self.table_named(name)?;
        let have = crate::stream::view_type(&meta).map(str::to_owned);
        let wanted = props
            .get("StreamSpecification")
            .and_then(|s| s.get("StreamViewType"))
            .and_then(Json::as_str)
            .map(str::to_owned);
        if have == wanted {
            return Ok(());
        }
        let spec = match &wanted {
            Some(view) => json!({"StreamEnabled": true, "StreamViewType": view}),
            None => json!({"StreamEnabled": false}),
        };
        let req = json!({"TableName": name, "StreamSpecification": spec});
        let (status, answer) = self.handle("UpdateTable", req.to_string().as_bytes()).await;
        if status != 200 {
            return Err(DbError::validation(format!(
                "table {name}: cannot change its stream: {answer}"
            )));
        }
        Ok(())
    }
}

/// A step of [`Tables::reconcile`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Refuse what cannot be done in place; change nothing.
    Check,
    /// Create missing tables and add indexes.
    Grow,
    /// Remove indexes no longer declared.
    Shrink,
}

/// What [`Tables::reconcile`] did.
#[derive(Debug, PartialEq, Eq)]
pub enum Reconciled {
    Created,
    Unchanged,
    Updated { added: Vec<String>, removed: Vec<String> },
}

/// (attribute, HASH/RANGE, S/N/B) of a KeySchema, HASH first.
fn key_schema(schema: Option<&Json>, definitions: Option<&Json>) -> Vec<(String, String, String)> {
    let type_of = |name: &str| -> String {
        definitions
            .and_then(Json::as_array)
            .into_iter()
            .flatten()
            .find(|d| d.get("AttributeName").and_then(Json::as_str) == Some(name))
            .and_then(|d| d.get("AttributeType").and_then(Json::as_str))
            .unwrap_or("")
            .to_owned()
    };
    let mut keys: Vec<(String, String, String)> = schema
        .and_then(Json::as_array)
        .into_iter()
        .flatten()
        .map(|k| {
            let name = k.get("AttributeName").and_then(Json::as_str).unwrap_or("").to_owned();
            let kind = type_of(&name);
            (
                name,
                k.get("KeyType").and_then(Json::as_str).unwrap_or("").to_owned(),
                kind,
            )
        })
        .collect();
    keys.sort_by_key(|(_, key_type, _)| key_type != "HASH");
    keys
}

fn show_keys(keys: &[(String, String, String)]) -> String {
    keys.iter()
        .map(|(n, k, t)| format!("{n} {t} ({k})"))
        .collect::<Vec<_>>()
        .join(", ")
}
