//! SQS's two wire protocols over the typed operations of [`Queues`]:
//!
//! - AWS JSON 1.0 (`X-Amz-Target: AmazonSQS.SendMessage`, JSON in and out), which current SDKs
//!   use; errors carry `x-amzn-query-error` so that clients built for the query protocol's
//!   error codes still see them;
//! - the query protocol (`Action=SendMessage&…` form bodies, XML answers), which older SDKs use.
//!
//! A query request is turned into the JSON request's shape first (`Attribute.1.Name` →
//! `Attributes`, `SendMessageBatchRequestEntry.1.Id` → `Entries[0].Id`), so both protocols
//! share one set of typed requests; answers are built as JSON and written as XML for the query
//! protocol.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::error::SqsError;
use crate::service::{MessageAttribute, Outgoing, Queues, ReceiveOptions};

/// An answer to send.
#[derive(Debug)]
pub struct WireResponse {
    pub status: u16,
    pub content_type: &'static str,
    pub body: String,
    /// `x-amzn-query-error` (JSON protocol errors).
    pub query_error: Option<String>,
}

const OPERATIONS: &[&str] = &[
    "CreateQueue",
    "GetQueueUrl",
    "ListQueues",
    "GetQueueAttributes",
    "SetQueueAttributes",
    "SendMessage",
    "SendMessageBatch",
    "ReceiveMessage",
    "DeleteMessage",
    "DeleteMessageBatch",
    "ChangeMessageVisibility",
    "ChangeMessageVisibilityBatch",
    "PurgeQueue",
    "DeleteQueue",
    "ListQueueTags",
    "TagQueue",
    "UntagQueue",
];

/// The queue a call acts on, for IAM and ownership checks before it is served — the same one
/// [`call`] then uses: `QueueName` for CreateQueue and GetQueueUrl, else `QueueUrl` (or, in
/// the query protocol, the request's path).
pub fn queue_of(operation: &str, input: &Value, path: &str) -> Option<String> {
    if matches!(operation, "CreateQueue" | "GetQueueUrl") {
        return input.get("QueueName").and_then(Value::as_str).map(str::to_owned);
    }
    match input.get("QueueUrl").and_then(Value::as_str) {
        Some(url) => queue_name_of_url(url),
        None => queue_name_of_url(path),
    }
}

/// The dead-letter queue a CreateQueue or SetQueueAttributes would point the queue at (it
/// receives the queue's messages, so the caller must be allowed to send there).
pub fn dead_letter_target_of(input: &Value) -> Option<String> {
    let policy = input.get("Attributes")?.get("RedrivePolicy")?.as_str()?;
    let policy: Value = serde_json::from_str(policy).ok()?;
    let arn = policy.get("deadLetterTargetArn")?.as_str()?;
    arn.rsplit(':').next().map(str::to_owned)
}

/// The name in a queue URL: its last path segment (`…/000000000000/orders`).
pub fn queue_name_of_url(url: &str) -> Option<String> {
    let path = url
        .split_once("://")
        .map_or(url, |(_, rest)| rest.split_once('/').map_or("", |(_, p)| p));
    let mut segments = path.trim_matches('/').split('/').filter(|s| !s.is_empty());
    let (Some(_account), Some(name), None) = (segments.next(), segments.next(), segments.next()) else {
        return None;
    };
    Some(name.to_owned())
}

/// Serve a JSON-protocol call (`operation` from `X-Amz-Target`). `base` is the URL clients
/// reach this server at (`http://127.0.0.1:3000`), for queue URLs.
pub async fn handle_json(queues: &Queues, operation: &str, body: &[u8], base: &str) -> WireResponse {
    let input: Value = if body.is_empty() {
        json!({})
    } else {
        match serde_json::from_slice(body) {
            Ok(v @ Value::Object(_)) => v,
            _ => {
                return json_error(&SqsError::malformed("The request body is not a JSON object."));
            }
        }
    };
    match call(queues, operation, &input, "", base).await {
        Ok(out) => WireResponse {
            status: 200,
            content_type: "application/x-amz-json-1.0",
            body: out.to_string(),
            query_error: None,
        },
        Err(e) => json_error(&e),
    }
}

/// Parameters in one query request, at most (a batch of ten messages with ten attributes each
/// needs about 350).
const MAX_QUERY_PARAMS: usize = 2000;
/// Dot-separated parts of one parameter name, at most (`SendMessageBatchRequestEntry.1.
/// MessageAttribute.1.Value.StringValue` has six): deeper names are dropped, so a hostile form
/// cannot make the tree (and its recursion) deep.
const MAX_QUERY_DEPTH: usize = 8;

/// The JSON form of a query-protocol request (`Action` and the rest of the form), and the
/// action.
pub fn parse_query(form: &[u8]) -> (String, Value) {
    let params: Vec<(String, String)> = form
        .split(|b| *b == b'&')
        .filter(|p| !p.is_empty())
        .take(MAX_QUERY_PARAMS)
        .map(|pair| {
            let (k, v) = match pair.iter().position(|b| *b == b'=') {
                Some(i) => (&pair[..i], &pair[i + 1..]),
                None => (pair, &b""[..]),
            };
            (form_decode(k), form_decode(v))
        })
        .collect();
    let action = params
        .iter()
        .find(|(k, _)| k == "Action")
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    let mut tree = Value::Object(Map::new());
    for (key, value) in &params {
        if matches!(key.as_str(), "Action" | "Version") {
            continue;
        }
        let path: Vec<&str> = key.split('.').collect();
        if path.len() <= MAX_QUERY_DEPTH {
            insert_path(&mut tree, &path, value.clone());
        }
    }
    (action, reshape(tree))
}

/// Serve a query-protocol call.
pub async fn handle_query(queues: &Queues, form: &[u8], path: &str, base: &str) -> WireResponse {
    let (action, input) = parse_query(form);
    if action.is_empty() {
        return query_error(&SqsError::missing("Action"));
    }
    match call(queues, &action, &input, path, base).await {
        Ok(out) => WireResponse {
            status: 200,
            content_type: "text/xml",
            body: to_xml(&action, &out),
            query_error: None,
        },
        Err(e) => query_error(&e),
    }
}

fn json_error(e: &SqsError) -> WireResponse {
    WireResponse {
        status: if e.sender { 400 } else { 500 },
        content_type: "application/x-amz-json-1.0",
        body: json!({"__type": format!("com.amazonaws.sqs#{}", e.code), "message": e.message}).to_string(),
        query_error: Some(format!(
            "{};{}",
            e.query_code,
            if e.sender { "Sender" } else { "Receiver" }
        )),
    }
}

fn query_error(e: &SqsError) -> WireResponse {
    WireResponse {
        status: if e.sender { 400 } else { 500 },
        content_type: "text/xml",
        body: format!(
            "<?xml version=\"1.0\"?><ErrorResponse xmlns=\"http://queue.amazonaws.com/doc/2012-11-05/\"><Error><Type>{}</Type><Code>{}</Code><Message>{}</Message><Detail/></Error><RequestId>{}</RequestId></ErrorResponse>",
            if e.sender { "Sender" } else { "Receiver" },
            escape(e.query_code),
            escape(&e.message),
            sylph_telemetry::new_request_id()
        ),
        query_error: None,
    }
}

fn typed<T: DeserializeOwned>(input: &Value) -> Result<T, SqsError> {
    serde_json::from_value(input.clone()).map_err(|e| SqsError::invalid(format!("The request is not valid: {e}")))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CreateQueue {
    queue_name: Option<String>,
    #[serde(default)]
    attributes: BTreeMap<String, String>,
    #[serde(default, rename = "tags")]
    tags: BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Entry {
    id: Option<String>,
    message_body: Option<String>,
    #[serde(default, deserialize_with = "lenient_u32")]
    delay_seconds: Option<u32>,
    #[serde(default)]
    message_attributes: BTreeMap<String, MessageAttribute>,
    message_group_id: Option<String>,
    message_deduplication_id: Option<String>,
    receipt_handle: Option<String>,
    #[serde(default, deserialize_with = "lenient_u32")]
    visibility_timeout: Option<u32>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Receive {
    #[serde(default, deserialize_with = "lenient_u32")]
    max_number_of_messages: Option<u32>,
    #[serde(default, deserialize_with = "lenient_u32")]
    visibility_timeout: Option<u32>,
    #[serde(default, deserialize_with = "lenient_u32")]
    wait_time_seconds: Option<u32>,
    #[serde(default)]
    attribute_names: Vec<String>,
    #[serde(default)]
    message_system_attribute_names: Vec<String>,
    #[serde(default)]
    message_attribute_names: Vec<String>,
}

/// A number given as a JSON number or (query protocol) a string.
fn lenient_u32<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    match Option::<Value>::deserialize(d)? {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .map(Some)
            .ok_or_else(|| serde::de::Error::custom(format!("{n} is not a whole number in range"))),
        Some(Value::String(s)) => s
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| serde::de::Error::custom(format!("`{s}` is not a whole number"))),
        Some(other) => Err(serde::de::Error::custom(format!("{other} is not a number"))),
    }
}

fn url(base: &str, name: &str) -> String {
    format!("{}/000000000000/{name}", base.trim_end_matches('/'))
}

async fn call(queues: &Queues, operation: &str, input: &Value, path: &str, base: &str) -> Result<Value, SqsError> {
    if !OPERATIONS.contains(&operation) {
        return Err(SqsError::unsupported(operation));
    }
    let queue = || -> Result<String, SqsError> {
        let name = queue_of(operation, input, path).ok_or_else(|| SqsError::missing("QueueUrl"))?;
        if queues.exists(&name) {
            Ok(name)
        } else {
            Err(SqsError::no_queue())
        }
    };
    match operation {
        "CreateQueue" => {
            let r: CreateQueue = typed(input)?;
            let name = r.queue_name.ok_or_else(|| SqsError::missing("QueueName"))?;
            queues.create_queue(&name, r.attributes, r.tags).await?;
            Ok(json!({"QueueUrl": url(base, &name)}))
        }
        "GetQueueUrl" => {
            let name = input
                .get("QueueName")
                .and_then(Value::as_str)
                .ok_or_else(|| SqsError::missing("QueueName"))?;
            if !queues.exists(name) {
                return Err(SqsError::no_queue());
            }
            Ok(json!({"QueueUrl": url(base, name)}))
        }
        "ListQueues" => {
            let prefix = input.get("QueueNamePrefix").and_then(Value::as_str).unwrap_or("");
            let max = match input.get("MaxResults") {
                None | Some(Value::Null) => None,
                Some(v) => Some(
                    v.as_u64()
                        .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
                        .filter(|n| (1..=1000).contains(n))
                        .ok_or_else(|| SqsError::invalid("Value for parameter MaxResults is invalid. Reason: MaxResults must be an integer between 1 and 1000."))? as usize,
                ),
            };
            let after = input.get("NextToken").and_then(Value::as_str).unwrap_or("");
            let names: Vec<String> = queues.list(prefix).into_iter().filter(|n| n.as_str() > after).collect();
            let shown = &names[..max.unwrap_or(1000).min(names.len())];
            let mut out = json!({"QueueUrls": shown.iter().map(|n| url(base, n)).collect::<Vec<_>>()});
            if max.is_some() && shown.len() < names.len() {
                out["NextToken"] = json!(shown.last().cloned().unwrap_or_default());
            }
            Ok(out)
        }
        "GetQueueAttributes" => {
            let name = queue()?;
            let names: Vec<String> = match input.get("AttributeNames") {
                Some(Value::Array(a)) => a.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect(),
                _ => Vec::new(),
            };
            let attributes = queues.attributes(&name, &names)?;
            Ok(if attributes.is_empty() {
                json!({})
            } else {
                json!({"Attributes": attributes})
            })
        }
        "SetQueueAttributes" => {
            let name = queue()?;
            let attributes: BTreeMap<String, String> = match input.get("Attributes") {
                Some(v) => typed(v)?,
                None => return Err(SqsError::missing("Attributes")),
            };
            queues.set_attributes(&name, attributes).await?;
            Ok(json!({}))
        }
        "SendMessage" => {
            let name = queue()?;
            let e: Entry = typed(input)?;
            let outgoing = outgoing(e)?;
            let sent = queues
                .send(&name, vec![outgoing])
                .await?
                .pop()
                .expect("one result per message")?;
            let mut out = json!({"MessageId": sent.message_id, "MD5OfMessageBody": sent.md5_body});
            if let Some(md5) = sent.md5_attributes {
                out["MD5OfMessageAttributes"] = json!(md5);
            }
            if let Some(seq) = sent.sequence_number {
                out["SequenceNumber"] = json!(seq);
            }
            Ok(out)
        }
        "SendMessageBatch" => {
            let name = queue()?;
            let entries = entries(input)?;
            let total: usize = entries
                .iter()
                .map(|e| e.message_body.as_ref().map_or(0, String::len))
                .sum();
            if total > 262_144 {
                return Err(SqsError::batch_too_long(total));
            }
            let mut ids = Vec::new();
            let mut batch = Vec::new();
            let mut failed = Vec::new();
            for e in entries {
                let id = e.id.clone().unwrap_or_default();
                match outgoing(e) {
                    Ok(o) => {
                        ids.push(id);
                        batch.push(o);
                    }
                    Err(err) => failed.push(failure(&id, &err)),
                }
            }
            let results = queues.send(&name, batch).await?;
            let mut successful = Vec::new();
            for (id, r) in ids.into_iter().zip(results) {
                match r {
                    Ok(sent) => {
                        let mut entry =
                            json!({"Id": id, "MessageId": sent.message_id, "MD5OfMessageBody": sent.md5_body});
                        if let Some(md5) = sent.md5_attributes {
                            entry["MD5OfMessageAttributes"] = json!(md5);
                        }
                        if let Some(seq) = sent.sequence_number {
                            entry["SequenceNumber"] = json!(seq);
                        }
                        successful.push(entry);
                    }
                    Err(err) => failed.push(failure(&id, &err)),
                }
            }
            Ok(json!({"Successful": successful, "Failed": failed}))
        }
        "ReceiveMessage" => {
            let name = queue()?;
            let r: Receive = typed(input)?;
            let max = r.max_number_of_messages.unwrap_or(1);
            if !(1..=10).contains(&max) {
                return Err(SqsError::invalid(format!(
                    "Value {max} for parameter MaxNumberOfMessages is invalid. Reason: Must be between 1 and 10, if provided."
                )));
            }
            if let Some(v) = r.visibility_timeout.filter(|v| *v > 43_200) {
                return Err(SqsError::invalid(format!(
                    "Value {v} for parameter VisibilityTimeout is invalid. Reason: Must be between 0 and 43200, if provided."
                )));
            }
            let wait = match r.wait_time_seconds {
                Some(w) if w > 20 => {
                    return Err(SqsError::invalid(format!(
                    "Value {w} for parameter WaitTimeSeconds is invalid. Reason: Must be >= 0 and <= 20, if provided."
                )))
                }
                Some(w) => Duration::from_secs(u64::from(w)),
                None => queues.default_wait(&name)?,
            };
            let options = ReceiveOptions {
                max: max as usize,
                visibility_timeout: r.visibility_timeout,
                wait,
            };
            let received = queues.receive(&name, &options).await?;
            let system: Vec<&str> = r
                .attribute_names
                .iter()
                .chain(&r.message_system_attribute_names)
                .map(String::as_str)
                .collect();
            let messages: Vec<Value> = received
                .iter()
                .map(|m| message_json(m, &system, &r.message_attribute_names))
                .collect();
            Ok(if messages.is_empty() {
                json!({})
            } else {
                json!({"Messages": messages})
            })
        }
        "DeleteMessage" => {
            let name = queue()?;
            let handle = input
                .get("ReceiptHandle")
                .and_then(Value::as_str)
                .ok_or_else(|| SqsError::missing("ReceiptHandle"))?;
            queues
                .delete(&name, &[handle.to_owned()])
                .await?
                .pop()
                .expect("one result")?;
            Ok(json!({}))
        }
        "DeleteMessageBatch" => {
            let name = queue()?;
            let entries = entries(input)?;
            let handles: Vec<String> = entries
                .iter()
                .map(|e| e.receipt_handle.clone().unwrap_or_default())
                .collect();
            let results = queues.delete(&name, &handles).await?;
            Ok(batch_answer(&entries, results))
        }
        "ChangeMessageVisibility" => {
            let name = queue()?;
            let e: Entry = typed(input)?;
            let handle = e.receipt_handle.ok_or_else(|| SqsError::missing("ReceiptHandle"))?;
            let seconds = e
                .visibility_timeout
                .ok_or_else(|| SqsError::missing("VisibilityTimeout"))?;
            queues
                .change_visibility(&name, &[(handle, seconds)])
                .await?
                .pop()
                .expect("one result")?;
            Ok(json!({}))
        }
        "ChangeMessageVisibilityBatch" => {
            let name = queue()?;
            let entries = entries(input)?;
            let changes: Vec<(String, u32)> = entries
                .iter()
                .map(|e| {
                    (
                        e.receipt_handle.clone().unwrap_or_default(),
                        e.visibility_timeout.unwrap_or(0),
                    )
                })
                .collect();
            let results = queues.change_visibility(&name, &changes).await?;
            Ok(batch_answer(&entries, results))
        }
        "PurgeQueue" => {
            queues.purge(&queue()?).await?;
            Ok(json!({}))
        }
        "DeleteQueue" => {
            queues.delete_queue(&queue()?).await?;
            Ok(json!({}))
        }
        "ListQueueTags" => {
            let tags = queues.tags(&queue()?)?;
            Ok(if tags.is_empty() {
                json!({})
            } else {
                json!({"Tags": tags})
            })
        }
        "TagQueue" => {
            let name = queue()?;
            let tags: BTreeMap<String, String> = match input.get("Tags") {
                Some(v) => typed(v)?,
                None => return Err(SqsError::missing("Tags")),
            };
            queues.retag(&name, tags, &[]).await?;
            Ok(json!({}))
        }
        "UntagQueue" => {
            let name = queue()?;
            let keys: Vec<String> = match input.get("TagKeys") {
                Some(v) => typed(v)?,
                None => return Err(SqsError::missing("TagKeys")),
            };
            queues.retag(&name, BTreeMap::new(), &keys).await?;
            Ok(json!({}))
        }
        _ => Err(SqsError::unsupported(operation)),
    }
}

fn outgoing(e: Entry) -> Result<Outgoing, SqsError> {
    Ok(Outgoing {
        body: e.message_body.ok_or_else(|| SqsError::missing("MessageBody"))?,
        delay_seconds: e.delay_seconds,
        attributes: e.message_attributes,
        group_id: e.message_group_id,
        dedup_id: e.message_deduplication_id,
    })
}

/// A batch's entries, checked as SQS checks them: 1 to 10, distinct and well-formed ids.
fn entries(input: &Value) -> Result<Vec<Entry>, SqsError> {
    let list = match input.get("Entries") {
        Some(Value::Array(a)) => a.clone(),
        _ => return Err(SqsError::empty_batch()),
    };
    if list.is_empty() {
        return Err(SqsError::empty_batch());
    }
    if list.len() > 10 {
        return Err(SqsError::too_many_entries(list.len()));
    }
    let entries: Vec<Entry> = list.iter().map(typed).collect::<Result<_, _>>()?;
    let mut seen = std::collections::HashSet::new();
    for e in &entries {
        let id = e.id.as_deref().ok_or_else(|| SqsError::missing("Id"))?;
        if id.is_empty() || id.len() > 80 || !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
            return Err(SqsError::bad_entry_id(id));
        }
        if !seen.insert(id) {
            return Err(SqsError::duplicate_ids());
        }
    }
    Ok(entries)
}

fn failure(id: &str, e: &SqsError) -> Value {
    json!({"Id": id, "Code": e.query_code, "Message": e.message, "SenderFault": e.sender})
}

fn batch_answer(entries: &[Entry], results: Vec<Result<(), SqsError>>) -> Value {
    let mut successful = Vec::new();
    let mut failed = Vec::new();
    for (e, r) in entries.iter().zip(results) {
        let id = e.id.clone().unwrap_or_default();
        match r {
            Ok(()) => successful.push(json!({"Id": id})),
            Err(err) => failed.push(failure(&id, &err)),
        }
    }
    json!({"Successful": successful, "Failed": failed})
}

/// A received message as ReceiveMessage returns it, with the system attributes and message
/// attributes asked for.
pub fn message_json(r: &crate::Received, system: &[&str], wanted: &[String]) -> Value {
    let m = &r.message;
    let mut out = json!({
        "MessageId": m.id,
        "ReceiptHandle": r.receipt_handle,
        "MD5OfBody": m.md5_body,
        "Body": m.body,
    });
    let all = system.contains(&"All");
    let mut attributes = Map::new();
    let mut put = |name: &str, value: Option<String>| {
        if let Some(v) = value {
            if all || system.contains(&name) {
                attributes.insert(name.to_owned(), Value::String(v));
            }
        }
    };
    put("SenderId", Some("000000000000".to_owned()));
    put("SentTimestamp", Some(m.sent_ms.to_string()));
    put("ApproximateReceiveCount", Some(m.receive_count.to_string()));
    put(
        "ApproximateFirstReceiveTimestamp",
        m.first_receive_ms.map(|t| t.to_string()),
    );
    put("MessageGroupId", m.group_id.clone());
    put("MessageDeduplicationId", m.dedup_id.clone());
    if m.dedup_id.is_some() {
        put("SequenceNumber", Some(format!("{:020}", m.seq)));
    }
    if !attributes.is_empty() {
        out["Attributes"] = Value::Object(attributes);
    }
    let chosen: BTreeMap<&String, &MessageAttribute> = m
        .attributes
        .iter()
        .filter(|(name, _)| {
            wanted.iter().any(|w| {
                w == "All"
                    || w == ".*"
                    || w == *name
                    || w.strip_suffix(".*").is_some_and(|p| name.starts_with(&format!("{p}.")))
            })
        })
        .collect();
    if !chosen.is_empty() {
        let owned: BTreeMap<String, MessageAttribute> =
            chosen.iter().map(|(k, v)| ((*k).clone(), (*v).clone())).collect();
        out["MD5OfMessageAttributes"] = json!(crate::service::attributes_md5(&owned));
        out["MessageAttributes"] = serde_json::to_value(&owned).unwrap_or_default();
    }
    out
}

fn form_decode(bytes: &[u8]) -> String {
    let plus: Vec<u8> = bytes.iter().map(|b| if *b == b'+' { b' ' } else { *b }).collect();
    percent_encoding::percent_decode(&plus).decode_utf8_lossy().into_owned()
}

/// Put `value` at `path` (`Entry.2.Id`: numbers are 1-based list positions).
fn insert_path(tree: &mut Value, path: &[&str], value: String) {
    let Some((first, rest)) = path.split_first() else {
        return;
    };
    let Value::Object(map) = tree else { return };
    if rest.is_empty() {
        map.insert((*first).to_owned(), Value::String(value));
        return;
    }
    let child = map
        .entry((*first).to_owned())
        .or_insert_with(|| Value::Object(Map::new()));
    // Lists are kept as objects keyed by position until `reshape`.
    insert_path(child, rest, value);
}

/// Turn the form's tree into the JSON protocol's shapes.
fn reshape(tree: Value) -> Value {
    let Value::Object(map) = tree else { return tree };
    let mut out = Map::new();
    for (key, value) in map {
        let items = positional(&value);
        match (key.as_str(), items) {
            ("Attribute", Some(items)) => {
                out.insert("Attributes".into(), pairs(items, "Name", "Value"));
            }
            // CreateQueue's tags are `tags`; TagQueue's are `Tags` (both `Tag.N.Key` in a form).
            ("Tag", Some(items)) => {
                let tags = pairs(items, "Key", "Value");
                out.insert("Tags".into(), tags.clone());
                out.insert("tags".into(), tags);
            }
            ("TagKey", Some(items)) => {
                out.insert("TagKeys".into(), Value::Array(items));
            }
            ("MessageAttribute", Some(items)) => {
                let mut attrs = Map::new();
                for item in items {
                    if let (Some(name), Some(v)) = (item.get("Name").and_then(Value::as_str), item.get("Value")) {
                        attrs.insert(name.to_owned(), v.clone());
                    }
                }
                out.insert("MessageAttributes".into(), Value::Object(attrs));
            }
            ("AttributeName" | "MessageAttributeName" | "MessageSystemAttributeName", Some(items)) => {
                out.insert(format!("{key}s"), Value::Array(items));
            }
            (k, Some(items)) if k.ends_with("RequestEntry") => {
                out.insert("Entries".into(), Value::Array(items.into_iter().map(reshape).collect()));
            }
            (_, _) => {
                out.insert(key, value);
            }
        }
    }
    Value::Object(out)
}

/// An object keyed `1`, `2`, … as a list in that order.
fn positional(value: &Value) -> Option<Vec<Value>> {
    let Value::Object(map) = value else { return None };
    let mut items: Vec<(usize, Value)> = Vec::with_capacity(map.len());
    for (k, v) in map {
        items.push((k.parse().ok()?, v.clone()));
    }
    items.sort_by_key(|(i, _)| *i);
    Some(items.into_iter().map(|(_, v)| v).collect())
}

fn pairs(items: Vec<Value>, key: &str, value: &str) -> Value {
    let mut out = Map::new();
    for item in items {
        if let (Some(k), Some(v)) = (item.get(key).and_then(Value::as_str), item.get(value)) {
            out.insert(k.to_owned(), v.clone());
        }
    }
    Value::Object(out)
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\r' => out.push_str("&#xD;"),
            c => out.push(c),
        }
    }
    out
}

/// The query protocol's XML for an answer built as JSON.
fn to_xml(action: &str, out: &Value) -> String {
    let mut xml = format!(
        "<?xml version=\"1.0\"?><{action}Response xmlns=\"http://queue.amazonaws.com/doc/2012-11-05/\"><{action}Result>"
    );
    fields_xml(action, out, &mut xml);
    xml.push_str(&format!(
        "</{action}Result><ResponseMetadata><RequestId>{}</RequestId></ResponseMetadata></{action}Response>",
        sylph_telemetry::new_request_id()
    ));
    xml
}

fn fields_xml(action: &str, value: &Value, xml: &mut String) {
    let Value::Object(map) = value else { return };
    for (key, v) in map {
        match (key.as_str(), v) {
            ("QueueUrls", Value::Array(urls)) => {
                for u in urls {
                    xml.push_str(&format!("<QueueUrl>{}</QueueUrl>", escape(u.as_str().unwrap_or(""))));
                }
            }
            ("Attributes", Value::Object(attrs)) => {
                for (name, value) in attrs {
                    xml.push_str(&format!(
                        "<Attribute><Name>{}</Name><Value>{}</Value></Attribute>",
                        escape(name),
                        escape(value.as_str().unwrap_or(""))
                    ));
                }
            }
            ("MessageAttributes", Value::Object(attrs)) => {
                for (name, a) in attrs {
                    xml.push_str(&format!("<MessageAttribute><Name>{}</Name><Value>", escape(name)));
                    for field in ["StringValue", "BinaryValue", "DataType"] {
                        if let Some(s) = a.get(field).and_then(Value::as_str) {
                            xml.push_str(&format!("<{field}>{}</{field}>", escape(s)));
                        }
                    }
                    xml.push_str("</Value></MessageAttribute>");
                }
            }
            ("Messages", Value::Array(messages)) => {
                for m in messages {
                    xml.push_str("<Message>");
                    fields_xml(action, m, xml);
                    xml.push_str("</Message>");
                }
            }
            ("Successful", Value::Array(entries)) => {
                for e in entries {
                    xml.push_str(&format!("<{action}ResultEntry>"));
                    fields_xml(action, e, xml);
                    xml.push_str(&format!("</{action}ResultEntry>"));
                }
            }
            ("Failed", Value::Array(entries)) => {
                for e in entries {
                    xml.push_str("<BatchResultErrorEntry>");
                    fields_xml(action, e, xml);
                    xml.push_str("</BatchResultErrorEntry>");
                }
            }
            (_, Value::String(s)) => xml.push_str(&format!("<{key}>{}</{key}>", escape(s))),
            (_, Value::Bool(b)) => xml.push_str(&format!("<{key}>{b}</{key}>")),
            (_, Value::Number(n)) => xml.push_str(&format!("<{key}>{n}</{key}>")),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_forms_become_the_json_requests_shape() {
        let (action, input) = parse_query(
            b"Action=SendMessageBatch&Version=2012-11-05&SendMessageBatchRequestEntry.2.Id=b&SendMessageBatchRequestEntry.2.MessageBody=two%20words&SendMessageBatchRequestEntry.1.Id=a&SendMessageBatchRequestEntry.1.MessageBody=one+word&SendMessageBatchRequestEntry.1.MessageAttribute.1.Name=k&SendMessageBatchRequestEntry.1.MessageAttribute.1.Value.DataType=String&SendMessageBatchRequestEntry.1.MessageAttribute.1.Value.StringValue=v",
        );
        assert_eq!(action, "SendMessageBatch");
        assert_eq!(
            input,
            json!({"Entries": [
                {"Id": "a", "MessageBody": "one word", "MessageAttributes": {"k": {"DataType": "String", "StringValue": "v"}}},
                {"Id": "b", "MessageBody": "two words"},
            ]})
        );
        let (_, input) = parse_query(b"Action=CreateQueue&QueueName=q&Attribute.1.Name=VisibilityTimeout&Attribute.1.Value=5&Tag.1.Key=team&Tag.1.Value=core");
        assert_eq!(
            input,
            json!({"QueueName": "q", "Attributes": {"VisibilityTimeout": "5"}, "tags": {"team": "core"}, "Tags": {"team": "core"}})
        );
        let (_, input) =
            parse_query(b"Action=ReceiveMessage&AttributeName.1=All&MessageAttributeName.1=k&MaxNumberOfMessages=3");
        assert_eq!(
            input,
            json!({"AttributeNames": ["All"], "MessageAttributeNames": ["k"], "MaxNumberOfMessages": "3"})
        );
    }

    #[test]
    fn regression_a_deeply_dotted_form_key_overflowed_the_stack() {
        let mut form = b"Action=SendMessage&".to_vec();
        form.extend(std::iter::repeat_n(&b"a."[..], 200_000).flatten());
        form.extend_from_slice(b"=1");
        let (action, input) = parse_query(&form);
        assert_eq!(action, "SendMessage");
        assert_eq!(input, json!({}), "names deeper than any SQS parameter are dropped");
        // Many parameters: only the first ones are read.
        let many: Vec<u8> = (0..100_000).flat_map(|i| format!("P{i}=1&").into_bytes()).collect();
        let (_, input) = parse_query(&many);
        assert_eq!(input.as_object().unwrap().len(), MAX_QUERY_PARAMS);
    }

    #[test]
    fn the_queue_checked_is_the_queue_used() {
        let input = json!({"QueueUrl": "http://h/000000000000/mine", "QueueName": "victim"});
        assert_eq!(queue_of("CreateQueue", &input, "").as_deref(), Some("victim"));
        assert_eq!(queue_of("GetQueueUrl", &input, "").as_deref(), Some("victim"));
        assert_eq!(queue_of("SendMessage", &input, "").as_deref(), Some("mine"));
        let redrive = json!({"Attributes": {"RedrivePolicy": "{\"deadLetterTargetArn\":\"arn:aws:sqs:us-east-1:000000000000:theirs\",\"maxReceiveCount\":1}"}});
        assert_eq!(dead_letter_target_of(&redrive).as_deref(), Some("theirs"));
    }

    #[test]
    fn queue_urls_name_their_queue() {
        assert_eq!(
            queue_name_of_url("http://127.0.0.1:3000/000000000000/jobs").as_deref(),
            Some("jobs")
        );
        assert_eq!(
            queue_name_of_url("http://sqs.us-east-1.localhost/000000000000/a.fifo").as_deref(),
            Some("a.fifo")
        );
        assert_eq!(queue_name_of_url("/000000000000/jobs").as_deref(), Some("jobs"));
        assert_eq!(queue_name_of_url("http://host/jobs"), None);
        assert_eq!(queue_name_of_url("http://host/a/b/c"), None);
    }

    #[test]
    fn xml_answers_carry_repeated_elements_and_escape_text() {
        let xml = to_xml(
            "ReceiveMessage",
            &json!({"Messages": [{"Body": "<a&b>", "Attributes": {"SentTimestamp": "1"}, "MessageAttributes": {"k": {"DataType": "String", "StringValue": "v"}}}]}),
        );
        assert!(!xml.contains("<Attributes>"), "{xml}");
        assert!(xml.contains("<Body>&lt;a&amp;b&gt;</Body>"), "{xml}");
        assert!(
            xml.contains("<Attribute><Name>SentTimestamp</Name><Value>1</Value></Attribute>"),
            "{xml}"
        );
        assert!(xml.contains("<MessageAttribute><Name>k</Name><Value><StringValue>v</StringValue><DataType>String</DataType></Value></MessageAttribute>"), "{xml}");
        let xml = to_xml(
            "DeleteMessageBatch",
            &json!({"Successful": [{"Id": "a"}], "Failed": [{"Id": "b", "Code": "ReceiptHandleIsInvalid", "SenderFault": true}]}),
        );
        assert!(
            xml.contains("<DeleteMessageBatchResultEntry><Id>a</Id></DeleteMessageBatchResultEntry>"),
            "{xml}"
        );
        assert!(xml.contains("<BatchResultErrorEntry><Code>ReceiptHandleIsInvalid</Code><Id>b</Id><SenderFault>true</SenderFault></BatchResultErrorEntry>"), "{xml}");
    }
}
