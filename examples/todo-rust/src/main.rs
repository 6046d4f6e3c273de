//! The Todo REST API (see examples/todo) as one Rust program: `_HANDLER` names the function
//! (create, list, get, update, delete, site). Uses the official `lambda_runtime` crate and the
//! AWS SDK for Rust, which finds Sylph's table API through `AWS_ENDPOINT_URL_DYNAMODB`.

use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use aws_sdk_dynamodb::Client;
use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::{json, Value};

/// The same page as the Node.js example, compiled in.
const PAGE: &str = include_str!("../../todo/public/index.html");

struct App {
    db: Client,
    table: String,
}

fn response(status: u16, body: Value) -> Value {
    json!({
        "statusCode": status,
        "headers": {"Content-Type": "application/json", "Access-Control-Allow-Origin": "*"},
        "body": body.to_string(),
    })
}

fn error(status: u16, message: &str) -> Value {
    json!({"statusCode": status, "headers": {"Content-Type": "text/plain"}, "body": message})
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// A stored item as the JSON the API returns.
fn to_json(item: &HashMap<String, AttributeValue>) -> Value {
    let mut out = serde_json::Map::new();
    for (k, v) in item {
        let j = match v {
            AttributeValue::S(s) => json!(s),
            AttributeValue::Bool(b) => json!(b),
            AttributeValue::N(n) => n.parse::<i64>().map(Value::from).unwrap_or_else(|_| json!(n)),
            _ => continue,
        };
        out.insert(k.clone(), j);
    }
    Value::Object(out)
}

fn body(event: &Value) -> Option<Value> {
    event["body"].as_str().and_then(|b| serde_json::from_str(b).ok())
}

impl App {
    async fn handle(&self, handler: &str, event: Value) -> Result<Value, Error> {
        let id = event["pathParameters"]["id"].as_str().unwrap_or_default().to_owned();
        match handler {
            "site" => {
                Ok(json!({"statusCode": 200, "headers": {"Content-Type": "text/html; charset=utf-8"}, "body": PAGE}))
            }
            "create" => {
                let text = body(&event)
                    .and_then(|b| b["text"].as_str().map(str::to_owned))
                    .filter(|t| !t.trim().is_empty());
                let Some(text) = text else {
                    eprintln!("Validation failed: text is missing");
                    return Ok(error(
                        400,
                        "Couldn't create the todo item: `text` must be a non-empty string.",
                    ));
                };
                let now = now_ms().to_string();
                let item = HashMap::from([
                    ("id".to_owned(), AttributeValue::S(uuid::Uuid::new_v4().to_string())),
                    ("text".to_owned(), AttributeValue::S(text)),
                    ("checked".to_owned(), AttributeValue::Bool(false)),
                    ("createdAt".to_owned(), AttributeValue::N(now.clone())),
                    ("updatedAt".to_owned(), AttributeValue::N(now)),
                ]);
                self.db
                    .put_item()
                    .table_name(&self.table)
                    .set_item(Some(item.clone()))
                    .send()
                    .await?;
                Ok(response(200, to_json(&item)))
            }
            "list" => {
                let out = self.db.scan().table_name(&self.table).send().await?;
                let mut items: Vec<Value> = out.items().iter().map(to_json).collect();
                items.sort_by_key(|i| i["createdAt"].as_i64().unwrap_or(0));
                Ok(response(200, Value::Array(items)))
            }
            "get" => {
                let out = self
                    .db
                    .get_item()
                    .table_name(&self.table)
                    .key("id", AttributeValue::S(id))
                    .send()
                    .await?;
                Ok(match out.item() {
                    Some(item) => response(200, to_json(item)),
                    None => error(404, "Todo item not found."),
                })
            }
            "update" => {
                let data = body(&event).unwrap_or(Value::Null);
                let (Some(text), Some(checked)) = (data["text"].as_str(), data["checked"].as_bool()) else {
                    return Ok(error(
                        400,
                        "Couldn't update the todo item: send `text` (string) and `checked` (boolean).",
                    ));
                };
                let result = self
                    .db
                    .update_item()
                    .table_name(&self.table)
                    .key("id", AttributeValue::S(id))
                    .expression_attribute_names("#todo_text", "text")
                    .expression_attribute_values(":text", AttributeValue::S(text.to_owned()))
                    .expression_attribute_values(":checked", AttributeValue::Bool(checked))
                    .expression_attribute_values(":updatedAt", AttributeValue::N(now_ms().to_string()))
                    .expression_attribute_values(":zero", AttributeValue::N("0".into()))
                    .expression_attribute_values(":one", AttributeValue::N("1".into()))
                    .update_expression("SET #todo_text = :text, checked = :checked, updatedAt = :updatedAt, edits = if_not_exists(edits, :zero) + :one")
                    .condition_expression("attribute_exists(id)")
                    .return_values(ReturnValue::AllNew)
                    .send()
                    .await;
                match result {
                    Ok(out) => Ok(response(200, out.attributes().map(to_json).unwrap_or(Value::Null))),
                    Err(e)
                        if e.as_service_error()
                            .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
                    {
                        Ok(error(404, "Todo item not found."))
                    }
                    Err(e) => Err(e.into()),
                }
            }
            "delete" => {
                self.db
                    .delete_item()
                    .table_name(&self.table)
                    .key("id", AttributeValue::S(id))
                    .send()
                    .await?;
                Ok(response(200, json!({})))
            }
            other => Err(format!("unknown handler {other}").into()),
        }
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let config = aws_config::load_from_env().await;
    let app = App {
        db: Client::new(&config),
        table: std::env::var("DYNAMODB_TABLE")?,
    };
    let handler = std::env::var("_HANDLER")?;
    let (app, handler) = (&app, handler.as_str());
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        app.handle(handler, event.payload).await
    }))
    .await
}
