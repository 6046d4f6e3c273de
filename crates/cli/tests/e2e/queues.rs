//! The SQS API and `sqs` events through `sylph dev`: the real SDKs (@aws-sdk/client-sqs v3,
//! aws-sdk v2, boto3) and the query protocol; batches with partial failures, redrive to a
//! dead-letter queue, FIFO order per group, filters, an asynchronous function's dead-letter
//! queue, and messages that outlive a kill -9.

use std::collections::BTreeMap;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::harness::{repo_root, Dev, Response};

fn sdk_dir() -> std::path::PathBuf {
    repo_root().join("crates/cli/tests/sdk")
}

fn service() -> std::path::PathBuf {
    repo_root().join("crates/cli/tests/fixtures/queues-service/serverless.yml")
}

/// One JSON-protocol SQS call.
fn sqs(dev: &Dev, operation: &str, body: Value) -> Response {
    dev.send(
        "POST",
        "/",
        &[
            ("X-Amz-Target", &format!("AmazonSQS.{operation}")),
            ("Content-Type", "application/x-amz-json-1.0"),
        ],
        body.to_string().as_bytes(),
    )
}

fn queue_url(dev: &Dev, name: &str) -> String {
    format!("{}/000000000000/{name}", dev.base)
}

/// Receive (and delete) every message of `queue` until one receive comes back empty.
fn drain(dev: &Dev, queue: &str) -> Vec<Value> {
    let mut all = Vec::new();
    loop {
        let r = sqs(
            dev,
            "ReceiveMessage",
            json!({"QueueUrl": queue_url(dev, queue), "MaxNumberOfMessages": 10, "WaitTimeSeconds": 1, "MessageAttributeNames": ["All"]}),
        );
        assert_eq!(r.status, 200, "{}", r.text());
        let got = r.json()["Messages"].as_array().cloned().unwrap_or_default();
        if got.is_empty() {
            return all;
        }
        for m in &got {
            let d = sqs(
                dev,
                "DeleteMessage",
                json!({"QueueUrl": queue_url(dev, queue), "ReceiptHandle": m["ReceiptHandle"]}),
            );
            assert_eq!(d.status, 200, "{}", d.text());
        }
        all.extend(got);
    }
}

fn wait_for(dev: &Dev, what: &str, limit: Duration, done: impl Fn(&str) -> bool) {
    let start = Instant::now();
    while !done(&dev.output()) {
        assert!(start.elapsed() < limit, "{what} did not happen:\n{}", dev.output());
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn run_script(program: &str, script: &str, base: &str, prefix: &str) -> Value {
    let out = Command::new(program)
        .arg(sdk_dir().join(script))
        .args([base, prefix])
        .current_dir(sdk_dir())
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e}"));
    assert!(
        out.status.success(),
        "{script} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{script}: {e}: {}", String::from_utf8_lossy(&out.stdout)))
}

#[test]
fn the_sqs_api_serves_the_real_sdks_and_the_query_protocol() {
    let dev = Dev::start(&service());
    let out = dev.output();
    assert!(
        out.contains("queue qs-jobs-dlq created") && out.contains("queue qs-orders.fifo created"),
        "{out}"
    );

    let v3 = run_script("node", "sqs_v3.mjs", &dev.base, "v3");
    assert_eq!(v3["listed"], 2);
    assert_eq!(
        v3["batch"],
        json!({"ok": 2, "failed": ["c"]}),
        "an empty body is refused alone"
    );
    assert_eq!(v3["received"], json!(["hello", "one", "two"]));
    assert_eq!(
        v3["attributes"],
        json!({"kind": "greeting", "blob": [1, 2, 3], "receiveCount": "1"})
    );
    assert_eq!(v3["whileInFlight"], 0);
    assert_eq!(v3["notVisible"], "3");
    assert_eq!(v3["badHandle"], "ReceiptHandleIsInvalid");
    assert_eq!(v3["deleted"], 2);
    assert_eq!(v3["again"], json!([["one", "2"]]));
    assert_eq!(v3["afterRedrive"], 0, "received twice: moved to the dead-letter queue");
    assert_eq!(v3["deadLettered"], json!(["one"]));
    assert_eq!(v3["longPoll"], json!(["late"]));
    assert_eq!(
        v3["fifo"],
        json!(["g1-a", "g2-a", "g1-b", "g2-b", "g1-c"]),
        "in order per group, duplicate dropped"
    );
    assert_eq!(v3["fifoWithoutGroup"], "MissingParameter");
    assert_eq!(v3["missing"], "QueueDoesNotExist");
    assert_eq!(v3["delay"], "5");
    assert_eq!(v3["tags"], json!({"team": "core"}));
    assert_eq!(v3["left"], 0);

    let v2 = run_script("node", "sqs_v2.js", &dev.base, "v2");
    assert_eq!(v2["received"], json!(["a", "b", "{\"n\":1}"]));
    assert_eq!(v2["source"], "v2");
    assert_eq!(v2["deleted"], 3);
    assert_eq!(v2["arn"], "arn:aws:sqs:us-east-1:000000000000:v2-v2");
    assert_eq!(v2["tooMany"], "InvalidParameterValue");

    let py = run_script("python3", "sqs_boto3.py", &dev.base, "py");
    let seen: Vec<(String, String)> = py["seen"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m[1].as_str().unwrap().to_owned(), m[0].as_str().unwrap().to_owned()))
        .collect();
    let mut per_group: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (group, body) in seen {
        per_group.entry(group).or_default().push(body);
    }
    assert_eq!(per_group["a"], ["a0", "a2", "a3"], "{py}");
    assert_eq!(per_group["b"], ["b1", "b4"], "{py}");
    assert_eq!(py["resource"], json!(["via resource"]));
    assert_eq!(py["missing"], "AWS.SimpleQueueService.NonExistentQueue");

    // The query protocol older SDKs speak: a form to the queue's URL, XML back.
    let form = |body: &str| {
        dev.send(
            "POST",
            "/000000000000/qs-later",
            &[("Content-Type", "application/x-www-form-urlencoded")],
            body.as_bytes(),
        )
    };
    let sent = form("Action=SendMessage&MessageBody=from+a+form&MessageAttribute.1.Name=k&MessageAttribute.1.Value.DataType=String&MessageAttribute.1.Value.StringValue=v&Version=2012-11-05");
    assert_eq!(sent.status, 200, "{}", sent.text());
    assert!(sent.text().contains("<MD5OfMessageBody>"), "{}", sent.text());
    let got = form("Action=ReceiveMessage&MessageAttributeName.1=All&AttributeName.1=All");
    let text = got.text();
    assert!(text.contains("<Body>from a form</Body>"), "{text}");
    assert!(
        text.contains("<MessageAttribute><Name>k</Name><Value><StringValue>v</StringValue>"),
        "{text}"
    );
    let handle = text
        .split("<ReceiptHandle>")
        .nth(1)
        .and_then(|r| r.split('<').next())
        .unwrap();
    let deleted = form(&format!("Action=DeleteMessage&ReceiptHandle={handle}"));
    assert_eq!(deleted.status, 200, "{}", deleted.text());
    let missing = dev.send(
        "POST",
        "/000000000000/qs-nothing",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        b"Action=GetQueueAttributes&AttributeName.1=All",
    );
    assert_eq!(missing.status, 400);
    assert!(
        missing
            .text()
            .contains("<Code>AWS.SimpleQueueService.NonExistentQueue</Code>"),
        "{}",
        missing.text()
    );
}

#[test]
fn sqs_events_deliver_batches_retry_only_failed_records_keep_fifo_order_and_filter() {
    let dev = Dev::start_with(&service(), &["--async-retry-delay", "1"], &[]);
    // A batch of five with one bad record: the four are handled once, the bad one comes back
    // (ReportBatchItemFailures) and after two receives lands in the dead-letter queue.
    let entries: Vec<Value> = ["ok-1", "ok-2", "bad-3", "ok-4", "ok-5"]
        .iter()
        .enumerate()
        .map(|(i, b)| json!({"Id": format!("m{i}"), "MessageBody": b}))
        .collect();
    let r = sqs(
        &dev,
        "SendMessageBatch",
        json!({"QueueUrl": queue_url(&dev, "qs-jobs"), "Entries": entries}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["Successful"].as_array().unwrap().len(), 5);

    // FIFO: two groups sent interleaved, consumed in batches of three.
    for i in 1..=5 {
        for g in ["g1", "g2"] {
            let r = sqs(
                &dev,
                "SendMessage",
                json!({"QueueUrl": queue_url(&dev, "qs-orders.fifo"), "MessageBody": format!("{g}-{i}"), "MessageGroupId": g}),
            );
            assert_eq!(r.status, 200, "{}", r.text());
        }
    }
    // Filtered: only `kind: keep` reaches the function.
    for (i, kind) in ["keep", "skip", "keep", "skip"].iter().enumerate() {
        let body = json!({"kind": kind, "n": i}).to_string();
        let r = sqs(
            &dev,
            "SendMessage",
            json!({"QueueUrl": queue_url(&dev, "qs-mixed"), "MessageBody": body}),
        );
        assert_eq!(r.status, 200, "{}", r.text());
    }

    wait_for(&dev, "the bad record's second try", Duration::from_secs(60), |o| {
        o.contains("REJECTED bad-3 receive 2")
    });
    wait_for(&dev, "ten ordered messages", Duration::from_secs(60), |o| {
        o.matches("ORDER ").count() >= 10
    });
    wait_for(&dev, "two kept messages", Duration::from_secs(60), |o| {
        o.matches("KEPT ").count() >= 2
    });
    let out = dev.output();
    for ok in ["ok-1", "ok-2", "ok-4", "ok-5"] {
        assert_eq!(
            out.matches(&format!(
                "CONSUMED {ok} from arn:aws:sqs:us-east-1:000000000000:qs-jobs"
            ))
            .count(),
            1,
            "{ok} handled exactly once:\n{out}"
        );
    }
    // After maxReceiveCount (2) the bad record is in the dead-letter queue, not redelivered.
    let start = Instant::now();
    let dead = loop {
        let dead = drain(&dev, "qs-jobs-dlq");
        if !dead.is_empty() || start.elapsed() > Duration::from_secs(30) {
            break dead;
        }
    };
    assert_eq!(
        dead.iter().map(|m| m["Body"].as_str().unwrap()).collect::<Vec<_>>(),
        ["bad-3"]
    );
    assert_eq!(dev.output().matches("REJECTED bad-3").count(), 2);
    for g in ["g1", "g2"] {
        let order: Vec<&str> = out
            .lines()
            .filter_map(|l| l.split_once(&format!("ORDER {g} ")).map(|(_, b)| b.trim()))
            .collect();
        let want: Vec<String> = (1..=5).map(|i| format!("{g}-{i}")).collect();
        assert_eq!(order, want, "{g} in order:\n{out}");
    }
    let kept: Vec<&str> = out.lines().filter(|l| l.contains("KEPT ")).collect();
    assert_eq!(kept.len(), 2, "{out}");
    assert!(kept.iter().all(|l| l.contains("\"keep\"")), "{kept:?}");
    let metrics = dev.get("/_sylph/metrics").text();
    assert!(
        metrics.contains("sylph_sqs_filtered_total{function=\"qs-dev-filtered\",queue=\"qs-mixed\"} 2"),
        "{metrics}"
    );
    assert!(
        metrics.contains("sylph_sqs_delivered_total{function=\"qs-dev-consume\",queue=\"qs-jobs\"} 4"),
        "{metrics}"
    );

    // An asynchronous invocation that keeps failing: three runs, then its event lands in the
    // onError queue with the error attached.
    let r = dev.send(
        "POST",
        "/2015-03-31/functions/qs-dev-failing/invocations",
        &[("X-Amz-Invocation-Type", "Event")],
        br#"{"id": "order-9"}"#,
    );
    assert_eq!(r.status, 202, "{}", r.text());
    let start = Instant::now();
    let failed = loop {
        let got = drain(&dev, "qs-failed-events");
        if !got.is_empty() {
            break got;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "no dead letter:\n{}",
            dev.output()
        );
    };
    assert_eq!(dev.output().matches("FAILING {\"id\":\"order-9\"}").count(), 3);
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0]["Body"], r#"{"id": "order-9"}"#);
    let attrs = &failed[0]["MessageAttributes"];
    assert_eq!(attrs["ErrorMessage"]["StringValue"], "cannot handle order-9");
    assert_eq!(attrs["ErrorCode"]["StringValue"], "200");
    assert!(
        attrs["RequestID"]["StringValue"]
            .as_str()
            .is_some_and(|s| s.len() == 36),
        "{attrs}"
    );
}

#[test]
fn messages_sent_before_a_kill_9_are_all_there_after_the_restart() {
    let data = std::env::temp_dir().join(format!("sylph-e2e-queues-kill-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&data);
    let data_arg = data.to_str().unwrap();
    let mut first = Dev::start_with(&service(), &["--data-dir", data_arg], &[]);
    const N: usize = 30;
    for chunk in 0..N / 10 {
        let entries: Vec<Value> = (0..10)
            .map(|i| json!({"Id": format!("m{i}"), "MessageBody": format!("msg-{}", chunk * 10 + i)}))
            .collect();
        let r = sqs(
            &first,
            "SendMessageBatch",
            json!({"QueueUrl": queue_url(&first, "qs-later"), "Entries": entries}),
        );
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.json()["Successful"].as_array().unwrap().len(), 10);
    }
    first.kill9();
    let second = Dev::start_with(&service(), &["--data-dir", data_arg], &[]);
    assert!(second.output().contains("queue qs-later kept"), "{}", second.output());
    let mut bodies: Vec<String> = drain(&second, "qs-later")
        .iter()
        .map(|m| m["Body"].as_str().unwrap().to_owned())
        .collect();
    bodies.sort();
    let mut want: Vec<String> = (0..N).map(|i| format!("msg-{i}")).collect();
    want.sort();
    assert_eq!(bodies, want);
    drop(second);
    let _ = std::fs::remove_dir_all(&data);
}
