//! Table streams through `sylph dev`: a put, an update, a transaction, a batch write and a TTL
//! expiry reach a `stream` handler in order with the right images; a poison record is retried
//! then skipped to the onFailure queue; boto3 reads the same records through the DynamoDB
//! Streams API; and records not yet delivered when Sylph is killed are delivered after.

use std::collections::BTreeMap;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::harness::{repo_root, Dev, Response};

fn service() -> std::path::PathBuf {
    repo_root().join("crates/cli/tests/fixtures/streams-service/serverless.yml")
}

fn call(dev: &Dev, target: &str, body: Value) -> Response {
    let r = dev.send(
        "POST",
        "/",
        &[("X-Amz-Target", target), ("Content-Type", "application/x-amz-json-1.0")],
        body.to_string().as_bytes(),
    );
    assert_eq!(r.status, 200, "{target}: {}", r.text());
    r
}

fn put(dev: &Dev, item: Value) {
    call(
        dev,
        "DynamoDB_20120810.PutItem",
        json!({"TableName": "st-items", "Item": item}),
    );
}

/// The `CHANGE` lines printed so far.
fn changes(output: &str) -> Vec<Value> {
    output
        .lines()
        .filter_map(|l| l.split_once("CHANGE ").map(|(_, j)| serde_json::from_str(j).unwrap()))
        .collect()
}

fn wait_for(dev: &Dev, what: &str, done: impl Fn(&str) -> bool) {
    let start = Instant::now();
    while !done(&dev.output()) {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "{what} did not happen:\n{}",
            dev.output()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn writes_transactions_batches_and_ttl_expiry_reach_the_stream_handler_in_order() {
    let dev = Dev::start(&service());
    put(&dev, json!({"pk": {"S": "a"}, "v": {"S": "1"}}));
    call(
        &dev,
        "DynamoDB_20120810.UpdateItem",
        json!({"TableName": "st-items", "Key": {"pk": {"S": "a"}}, "UpdateExpression": "SET v = :v", "ExpressionAttributeValues": {":v": {"S": "2"}}}),
    );
    call(
        &dev,
        "DynamoDB_20120810.TransactWriteItems",
        json!({"TransactItems": [
            {"Put": {"TableName": "st-items", "Item": {"pk": {"S": "t1"}, "v": {"S": "x"}}}},
            {"Put": {"TableName": "st-items", "Item": {"pk": {"S": "t2"}, "v": {"S": "y"}}}},
        ]}),
    );
    call(
        &dev,
        "DynamoDB_20120810.BatchWriteItem",
        json!({"RequestItems": {"st-items": [{"DeleteRequest": {"Key": {"pk": {"S": "t1"}}}}]}}),
    );
    // Already expired: the TTL reaper removes it within a second or two.
    put(
        &dev,
        json!({"pk": {"S": "old"}, "v": {"S": "z"}, "expires": {"N": "1000"}}),
    );
    put(
        &dev,
        json!({"pk": {"S": "poison"}, "v": {"S": "p"}, "poison": {"BOOL": true}}),
    );
    put(&dev, json!({"pk": {"S": "b"}, "v": {"S": "3"}}));
    // An unchanged item leaves no record.
    put(&dev, json!({"pk": {"S": "b"}, "v": {"S": "3"}}));

    wait_for(&dev, "nine changes", |o| changes(o).len() >= 9);
    let seen = changes(&dev.output());
    assert_eq!(seen.len(), 9, "{seen:#?}");
    let mut per_key: BTreeMap<String, Vec<(String, Value, Value, Value)>> = BTreeMap::new();
    for c in &seen {
        per_key.entry(c["pk"].as_str().unwrap().to_owned()).or_default().push((
            c["event"].as_str().unwrap().to_owned(),
            c["old"].clone(),
            c["new"].clone(),
            c["by"].clone(),
        ));
        assert_eq!(c["source"], "aws:dynamodb");
    }
    let n = Value::Null;
    let s = |v: &str| json!(v);
    assert_eq!(
        per_key["a"],
        [
            ("INSERT".into(), n.clone(), s("1"), n.clone()),
            ("MODIFY".into(), s("1"), s("2"), n.clone())
        ]
    );
    assert_eq!(
        per_key["t1"],
        [
            ("INSERT".into(), n.clone(), s("x"), n.clone()),
            ("REMOVE".into(), s("x"), n.clone(), n.clone())
        ]
    );
    assert_eq!(per_key["t2"], [("INSERT".into(), n.clone(), s("y"), n.clone())]);
    assert_eq!(
        per_key["old"],
        [
            ("INSERT".into(), n.clone(), s("z"), n.clone()),
            ("REMOVE".into(), s("z"), n.clone(), s("dynamodb.amazonaws.com"))
        ],
        "a TTL expiry names DynamoDB's service principal"
    );
    assert_eq!(per_key["b"].len(), 1);
    // Delivered in commit order.
    let seqs: Vec<&str> = seen.iter().map(|c| c["seq"].as_str().unwrap()).collect();
    let mut sorted = seqs.clone();
    sorted.sort();
    assert_eq!(seqs, sorted);

    // The poison record: three attempts (one and two retries), then skipped to the queue;
    // `b`, after it, is still handled.
    wait_for(&dev, "b after the poison record", |o| o.contains("PICKY b"));
    let out = dev.output();
    assert_eq!(out.matches("PICKY poison").count(), 3, "{out}");
    let r = call(
        &dev,
        "AmazonSQS.ReceiveMessage",
        json!({"QueueUrl": format!("{}/000000000000/st-skipped", dev.base), "WaitTimeSeconds": 5}),
    );
    let body: Value = serde_json::from_str(r.json()["Messages"][0]["Body"].as_str().unwrap()).unwrap();
    assert_eq!(body["requestContext"]["condition"], "RetryAttemptsExhausted");
    assert_eq!(body["DDBStreamBatchInfo"]["batchSize"], 1);
    assert_eq!(
        body["DDBStreamBatchInfo"]["streamArn"],
        "arn:aws:dynamodb:us-east-1:000000000000:table/st-items/stream/local"
    );
    let metrics = dev.get("/_sylph/metrics").text();
    assert!(
        metrics.contains("sylph_stream_skipped_total{function=\"st-dev-picky\",table=\"st-items\"} 1"),
        "{metrics}"
    );

    // The same records through the DynamoDB Streams API, with boto3.
    let out = Command::new("python3")
        .arg(repo_root().join("crates/cli/tests/sdk/streams_boto3.py"))
        .args([&dev.base, "st-items"])
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let read: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        read["arn"],
        "arn:aws:dynamodb:us-east-1:000000000000:table/st-items/stream/local"
    );
    assert_eq!(read["listed"], json!([read["arn"]]));
    assert_eq!(
        (read["view"].as_str(), read["status"].as_str()),
        (Some("NEW_AND_OLD_IMAGES"), Some("ENABLED"))
    );
    assert_eq!(read["events"].as_array().unwrap().len(), 9, "{read}");
    assert_eq!(read["events"][0], json!(["INSERT", "a"]));
    assert_eq!(read["events"][1], json!(["MODIFY", "a"]));
    assert_eq!(read["ordered"], true);
    assert_eq!(read["afterLatest"], 0);
}

#[test]
fn stream_records_not_yet_delivered_at_a_kill_9_are_delivered_after_the_restart() {
    let data = std::env::temp_dir().join(format!("sylph-e2e-streams-kill-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&data);
    let data_arg = data.to_str().unwrap();
    let mut first = Dev::start_with(&service(), &["--data-dir", data_arg], &[]);
    const N: usize = 40;
    let items: Vec<Value> = (0..N)
        .map(|i| json!({"PutRequest": {"Item": {"pk": {"S": format!("k{i:02}")}, "v": {"S": "1"}}}}))
        .collect();
    for chunk in items.chunks(20) {
        call(
            &first,
            "DynamoDB_20120810.BatchWriteItem",
            json!({"RequestItems": {"st-items": chunk}}),
        );
    }
    first.kill9();
    let before: Vec<Value> = changes(&first.output());
    assert!(
        before.len() < N,
        "every record was delivered before the kill; the test proves nothing"
    );
    let second = Dev::start_with(&service(), &["--data-dir", data_arg], &[]);
    let start = Instant::now();
    loop {
        let mut keys: Vec<String> = before
            .iter()
            .chain(changes(&second.output()).iter())
            .map(|c| c["pk"].as_str().unwrap().to_owned())
            .collect();
        keys.sort();
        keys.dedup();
        if keys.len() == N {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "only {} of {N}:\n{}",
            keys.len(),
            second.output()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    drop(second);
    let _ = std::fs::remove_dir_all(&data);
}
