//! The Todo REST API (see examples/todo) as one WebAssembly component: it answers the
//! requests API Gateway's routes send it by method and path, and keeps the items in Sylph's
//! table API, which Sylph calls as the function (its IAM statements apply).

use serde_json::{json, Map, Value};
use sylph_guest::tables::{TableError, Tables};
use sylph_guest::{Request, Response};

/// The same page as the Node.js example, compiled in.
const PAGE: &str = include_str!("../../todo/public/index.html");

fn table() -> String {
    std::env::var("DYNAMODB_TABLE").unwrap_or_else(|_| "todo-dev".to_owned())
}

fn ok(body: Value) -> Response {
    Response::json(200, &body).with_header("access-control-allow-origin", "*")
}

fn error(status: u16, message: &str) -> Response {
    Response::text(status, message)
}

fn failed(e: TableError) -> Response {
    eprintln!("table call failed: {e}");
    error(500, "Couldn't reach the todo items.")
}

fn now_ms() -> String {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0)
        .to_string()
}

/// A version 4 UUID from WASI's random source.
fn new_id() -> String {
    let (a, b) = (
        sylph_guest::__wasi::random::random::get_random_u64(),
        sylph_guest::__wasi::random::random::get_random_u64(),
    );
    let a = (a & 0xffff_ffff_ffff_0fff) | 0x4000;
    let b = (b & 0x3fff_ffff_ffff_ffff) | 0x8000_0000_0000_0000;
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0xffff,
        b >> 48,
        b & 0xffff_ffff_ffff
    )
}

/// A stored item (DynamoDB's typed JSON) as the plain JSON the API returns.
fn plain(item: &Value) -> Value {
    let mut out = Map::new();
    for (k, v) in item.as_object().into_iter().flatten() {
        let value = if let Some(s) = v["S"].as_str() {
            json!(s)
        } else if let Some(b) = v["BOOL"].as_bool() {
            json!(b)
        } else if let Some(n) = v["N"].as_str() {
            n.parse::<i64>().map(Value::from).unwrap_or_else(|_| json!(n))
        } else {
            continue;
        };
        out.insert(k.clone(), value);
    }
    Value::Object(out)
}

fn body(request: &Request) -> Value {
    serde_json::from_slice(&request.body).unwrap_or(Value::Null)
}

struct Todo;

impl sylph_guest::Handler for Todo {
    fn handle(request: Request) -> Response {
        let db = Tables::from_env();
        match (request.method.as_str(), request.segments().as_slice()) {
            ("GET", []) => Response::new(200, "text/html; charset=utf-8", PAGE),
            ("POST", ["todos"]) => {
                let Some(text) = body(&request)["text"].as_str().filter(|t| !t.trim().is_empty()).map(str::to_owned)
                else {
                    eprintln!("Validation failed: text is missing");
                    return error(400, "Couldn't create the todo item: `text` must be a non-empty string.");
                };
                let now = now_ms();
                let item = json!({
                    "id": {"S": new_id()},
                    "text": {"S": text},
                    "checked": {"BOOL": false},
                    "createdAt": {"N": now},
                    "updatedAt": {"N": now},
                });
                match db.call("PutItem", &json!({"TableName": table(), "Item": item})) {
                    Ok(_) => ok(plain(&item)),
                    Err(e) => failed(e),
                }
            }
            ("GET", ["todos"]) => {
                let mut items = Vec::new();
                let mut start: Option<Value> = None;
                loop {
                    let mut scan = json!({"TableName": table()});
                    if let Some(key) = start.take() {
                        scan["ExclusiveStartKey"] = key;
                    }
                    match db.call("Scan", &scan) {
                        Ok(page) => {
                            items.extend(page["Items"].as_array().into_iter().flatten().map(plain));
                            match page.get("LastEvaluatedKey") {
                                Some(key) if !key.is_null() => start = Some(key.clone()),
                                _ => break,
                            }
                        }
                        Err(e) => return failed(e),
                    }
                }
                items.sort_by_key(|i| i["createdAt"].as_i64().unwrap_or(0));
                ok(Value::Array(items))
            }
            ("GET", ["todos", id]) => {
                match db.call("GetItem", &json!({"TableName": table(), "Key": {"id": {"S": id}}})) {
                    Ok(found) if found["Item"].is_object() => ok(plain(&found["Item"])),
                    Ok(_) => error(404, "Todo item not found."),
                    Err(e) => failed(e),
                }
            }
            ("PUT", ["todos", id]) => {
                let data = body(&request);
                let (Some(text), Some(checked)) = (data["text"].as_str(), data["checked"].as_bool()) else {
                    return error(400, "Couldn't update the todo item: send `text` (string) and `checked` (boolean).");
                };
                let update = json!({
                    "TableName": table(),
                    "Key": {"id": {"S": id}},
                    "ExpressionAttributeNames": {"#todo_text": "text"},
                    "ExpressionAttributeValues": {
                        ":text": {"S": text},
                        ":checked": {"BOOL": checked},
                        ":updatedAt": {"N": now_ms()},
                        ":zero": {"N": "0"},
                        ":one": {"N": "1"},
                    },
                    "UpdateExpression": "SET #todo_text = :text, checked = :checked, updatedAt = :updatedAt, edits = if_not_exists(edits, :zero) + :one",
                    "ConditionExpression": "attribute_exists(id)",
                    "ReturnValues": "ALL_NEW",
                });
                match db.call("UpdateItem", &update) {
                    Ok(out) => ok(plain(&out["Attributes"])),
                    Err(e) if e.kind == "ConditionalCheckFailedException" => error(404, "Todo item not found."),
                    Err(e) => failed(e),
                }
            }
            ("DELETE", ["todos", id]) => {
                match db.call("DeleteItem", &json!({"TableName": table(), "Key": {"id": {"S": id}}})) {
                    Ok(_) => ok(json!({})),
                    Err(e) => failed(e),
                }
            }
            _ => error(404, "Not found."),
        }
    }
}

sylph_guest::export!(Todo);
