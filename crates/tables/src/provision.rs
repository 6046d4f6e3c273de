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
}
