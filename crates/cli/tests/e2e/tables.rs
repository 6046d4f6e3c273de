//! The table API through the real clients (aws-sdk v2 DocumentClient, @aws-sdk v3
//! lib-dynamodb, boto3), durability across a `kill -9`, and provisioning from `resources:`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::harness::{repo_root, request, sylph, Dev};

fn sdk_dir() -> PathBuf {
    repo_root().join("crates/cli/tests/sdk")
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sylph-e2e-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// `sylph tables` on a free port.
struct TablesServer {
    child: Child,
    base: String,
}

impl TablesServer {
    fn start(data_dir: &Path) -> TablesServer {
        let mut child = sylph()
            .args(["tables", "--port", "0", "--data-dir"])
            .arg(data_dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(url) = line.strip_prefix("listening on ") {
                    let _ = tx.send(url.to_owned());
                }
            }
        });
        let base = rx.recv_timeout(Duration::from_secs(30)).expect("sylph tables started");
        TablesServer { child, base }
    }

    fn call(&self, op: &str, body: Value) -> (u16, Value) {
        let target = format!("DynamoDB_20120810.{op}");
        let r = request(
            &self.base,
            "POST",
            "/",
            &[
                ("X-Amz-Target", &target),
                ("Content-Type", "application/x-amz-json-1.0"),
            ],
            body.to_string().as_bytes(),
        );
        (r.status, serde_json::from_slice(&r.body).unwrap_or(Value::Null))
    }

    fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for TablesServer {
    fn drop(&mut self) {
        self.kill9();
    }
}

fn run_client(cmd: &mut Command) -> Value {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "client failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
}

#[test]
fn aws_sdk_v2_document_client() {
    let data = temp_dir("v2");
    let server = TablesServer::start(&data);
    let r = run_client(
        Command::new("node")
            .arg(sdk_dir().join("tables_v2.js"))
            .arg(&server.base)
            .current_dir(sdk_dir()),
    );
    assert_eq!(r["get"]["text"], "first");
    assert_eq!(r["get"]["checked"], false);
    assert_eq!(r["get"]["tags"], json!(["x", "y"]));
    assert_eq!(r["updated"]["text"], "edited");
    assert_eq!(r["updated"]["checked"], true);
    assert_eq!(r["updated"]["edits"], 1);
    assert_eq!(r["scanCount"], 2);
    assert_eq!(r["conditional"], "ConditionalCheckFailedException");
    assert_eq!(r["batchGet"], json!(["a", "c"]));
    assert_eq!(r["afterDelete"], Value::Null);
    assert_eq!(r["missingTable"], "ResourceNotFoundException");
    assert_eq!(r["tables"], json!(["todos-v2"]));
}

#[test]
fn aws_sdk_v3_lib_dynamodb() {
    let data = temp_dir("v3");
    let server = TablesServer::start(&data);
    let r = run_client(
        Command::new("node")
            .arg(sdk_dir().join("tables_v3.mjs"))
            .arg(&server.base)
            .current_dir(sdk_dir()),
    );
    assert_eq!(r["status"], "ACTIVE");
    assert_eq!(r["gsi"], json!(["byStatus"]));
    // 22 items (orderId 4..=25) in pages of 10, in numeric order.
    let pages: Vec<Vec<u64>> = serde_json::from_value(r["pages"].clone()).unwrap();
    assert_eq!(pages.iter().map(Vec::len).collect::<Vec<_>>()[..3], [10, 10, 2]);
    assert_eq!(pages.concat(), (4..=25).collect::<Vec<u64>>());
    assert_eq!(r["filtered"]["count"], 5, "{}", r["filtered"]);
    assert_eq!(r["filtered"]["scanned"], 25);
    assert_eq!(r["filtered"]["items"][0], json!({"orderId": 25, "status": "open"}));
    // KEYS_ONLY projection: table and index keys only.
    assert_eq!(
        r["gsiItems"],
        json!([
            {"customer": "c1", "orderId": 1, "status": "open"}, {"customer": "c1", "orderId": 3, "status": "open"},
            {"customer": "c1", "orderId": 5, "status": "open"}, {"customer": "c1", "orderId": 7, "status": "open"},
            {"customer": "c1", "orderId": 9, "status": "open"}
        ])
    );
    assert_eq!(r["count"], 25);
    assert_eq!(r["cancelled"]["name"], "TransactionCanceledException");
    assert_eq!(r["cancelled"]["reasons"], json!(["None", "ConditionalCheckFailed"]));
    assert_eq!(r["c4"], Value::Null, "a cancelled transaction writes nothing");
    assert_eq!(r["c1first"], "done");
    assert_eq!(r["keyUpdate"], "ValidationException");
    assert_eq!(
        r["ttl"],
        json!({"TimeToLiveStatus": "ENABLED", "AttributeName": "expiresAt"})
    );
    assert_eq!(r["expired"], true);
    assert_eq!(r["notExpired"], true);
}

#[test]
fn boto3_numbers_binary_sets_and_errors() {
    let data = temp_dir("boto3");
    let server = TablesServer::start(&data);
    let r = run_client(
        Command::new("python3")
            .arg(sdk_dir().join("tables_boto3.py"))
            .arg(&server.base),
    );
    assert_eq!(r["order"], json!(["-10", "-1.5", "0", "0.25", "2", "10", "100.5"]));
    assert_eq!(r["big"], "12345678901234567890123456789012345678");
    assert_eq!(r["blob"], json!([3, 0, 255]));
    assert_eq!(r["set"], json!(["a", "b"]));
    assert_eq!(r["lsi"], json!(["l1", "l2", "l3"]));
    assert_eq!(r["lsiLastKey"], json!(["label", "pk", "sk"]));
    assert_eq!(
        r["overflow"],
        // DynamoDB reports a sum needing more than 38 digits as an overflow.
        "Number overflow. Attempting to store a number with magnitude larger than supported range"
    );
    assert_eq!(r["segments"], 7);
    assert_eq!(r["scanFilter"], 4);
    let e = &r["errors"];
    assert_eq!(e["emptyKey"], "ValidationException");
    assert_eq!(e["tooBig"], "Item size has exceeded the maximum allowed size");
    assert_eq!(e["badKey"], "The provided key element does not match the schema");
    assert_eq!(e["inUse"], "ResourceInUseException");
    assert_eq!(e["conditionalItem"], json!(["big", "blob", "label", "pk", "set", "sk"]));
    assert_eq!(r["tags"], json!([{"Key": "team", "Value": "core"}]));
    assert_eq!(r["pitr"], "ENABLED");
}

#[test]
fn wire_protocol_errors() {
    let data = temp_dir("wire");
    let server = TablesServer::start(&data);
    let (status, body) = server.call("NoSuchOperation", json!({}));
    assert_eq!(status, 400);
    assert_eq!(body["__type"], "com.amazon.coral.service#UnknownOperationException");
    let r = request(
        &server.base,
        "POST",
        "/",
        &[("X-Amz-Target", "DynamoDB_20120810.ListTables")],
        b"{not json",
    );
    assert_eq!(r.status, 400);
    assert_eq!(
        serde_json::from_slice::<Value>(&r.body).unwrap()["__type"],
        "com.amazon.coral.service#SerializationException"
    );
    assert!(r.header("x-amzn-requestid").is_some());
    let (status, body) = server.call(
        "CreateTable",
        json!({"TableName": "ab", "KeySchema": [], "AttributeDefinitions": []}),
    );
    assert_eq!(status, 400);
    assert_eq!(body["__type"], "com.amazon.coral.validate#ValidationException");
    assert!(
        body["message"].as_str().unwrap().contains("greater than or equal to 3"),
        "{body}"
    );
}

/// Writes under load, `kill -9`, restart: every acknowledged item is there.
#[test]
fn acknowledged_writes_survive_kill_9() {
    let data = temp_dir("crash");
    let mut server = TablesServer::start(&data);
    let (status, _) = server.call(
        "CreateTable",
        json!({
            "TableName": "crash", "BillingMode": "PAY_PER_REQUEST",
            "KeySchema": [{"AttributeName": "id", "KeyType": "HASH"}],
            "AttributeDefinitions": [{"AttributeName": "id", "AttributeType": "S"}]
        }),
    );
    assert_eq!(status, 200);
    let acked = Arc::new(Mutex::new(Vec::<String>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let mut writers = Vec::new();
    for w in 0..8 {
        let (acked, stop, base) = (acked.clone(), stop.clone(), server.base.clone());
        writers.push(std::thread::spawn(move || {
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                let id = format!("w{w}-{i}");
                let body =
                    json!({"TableName": "crash", "Item": {"id": {"S": id}, "n": {"N": i.to_string()}}}).to_string();
                let result = std::panic::catch_unwind(|| {
                    request(
                        &base,
                        "POST",
                        "/",
                        &[("X-Amz-Target", "DynamoDB_20120810.PutItem")],
                        body.as_bytes(),
                    )
                    .status
                });
                match result {
                    Ok(200) => acked.lock().unwrap().push(id),
                    _ => break, // the server is gone
                }
                i += 1;
            }
        }));
    }
    let start = Instant::now();
    while acked.lock().unwrap().len() < 300 && start.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(10));
    }
    server.kill9();
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        let _ = w.join();
    }
    let acked = acked.lock().unwrap().clone();
    assert!(
        acked.len() >= 300,
        "only {} writes were acknowledged before the kill",
        acked.len()
    );

    let server = TablesServer::start(&data);
    let mut found = std::collections::HashSet::new();
    let mut start_key = Value::Null;
    loop {
        let mut req = json!({"TableName": "crash"});
        if !start_key.is_null() {
            req["ExclusiveStartKey"] = start_key.clone();
        }
        let (status, body) = server.call("Scan", req);
        assert_eq!(status, 200, "{body}");
        for item in body["Items"].as_array().unwrap() {
            found.insert(item["id"]["S"].as_str().unwrap().to_owned());
        }
        start_key = body.get("LastEvaluatedKey").cloned().unwrap_or(Value::Null);
        if start_key.is_null() {
            break;
        }
    }
    let lost: Vec<&String> = acked.iter().filter(|id| !found.contains(*id)).collect();
    assert!(
        lost.is_empty(),
        "{} of {} acknowledged writes were lost: {:?}",
        lost.len(),
        acked.len(),
        &lost[..lost.len().min(5)]
    );
    // The statistics are written in the same commits as the items: after the crash they still
    // count exactly the items that are there (DescribeTable reads them, it does not count).
    let (status, d) = server.call("DescribeTable", json!({"TableName": "crash"}));
    assert_eq!(status, 200, "{d}");
    assert_eq!(d["Table"]["ItemCount"], json!(found.len()), "{d}");
}

/// Runs one of the conformance suites (each case says what DynamoDB answers) against a fresh
/// `sylph tables`: every case must pass.
fn conformance(program: &str, script: &str, name: &str) {
    let data = temp_dir(name);
    let server = TablesServer::start(&data);
    let out = Command::new(program)
        .arg(sdk_dir().join(script))
        .arg(&server.base)
        .current_dir(sdk_dir())
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let summary: Value = stdout
        .lines()
        .last()
        .and_then(|l| serde_json::from_str(l).ok())
        .unwrap_or_else(|| {
            panic!(
                "{script} printed no summary:\n{stdout}\n{}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
    let failed = summary["failed"].as_array().cloned().unwrap_or_default();
    let listed: Vec<String> = failed
        .iter()
        .map(|f| format!("[{}] {}: {}", f["op"], f["case"], f["error"]))
        .collect();
    assert!(
        failed.is_empty() && out.status.success(),
        "{} cases failed:\n{}",
        failed.len(),
        listed.join("\n")
    );
    assert!(summary["passed"].as_u64().unwrap_or(0) > 50, "{summary}");
}

#[test]
fn conformance_boto3() {
    conformance("python3", "tables_conformance_boto3.py", "conformance-boto3");
}

#[test]
fn conformance_aws_sdk_v3() {
    conformance("node", "tables_conformance_v3.mjs", "conformance-v3");
}

/// `sylph dev` creates the tables of `resources:`, functions reach them through the AWS SDKs
/// Sylph ships (aws-sdk v2 without bundling it, boto3), data survives a restart, --reset empties.
#[test]
fn dev_provisions_tables_and_functions_use_them() {
    let service = repo_root().join("crates/cli/tests/fixtures/tables-service");
    let data = temp_dir("provision");
    let data_arg = data.to_str().unwrap().to_owned();
    {
        let dev = Dev::start_with(&service, &["--data-dir", &data_arg], &[]);
        assert!(
            dev.output().contains("table tables-service-dev-notes created"),
            "{}",
            dev.output()
        );
        let r = dev.send(
            "POST",
            "/dev/notes",
            &[("Content-Type", "application/json")],
            br#"{"id": "n1", "text": "hello"}"#,
        );
        assert_eq!(r.status, 201, "{}\n{}", r.text(), dev.output());
        let r = dev.get("/dev/notes/n1");
        assert_eq!(
            (r.status, r.json()["text"].clone()),
            (200, json!("hello")),
            "{}",
            dev.output()
        );
        // The Python function reads what the Node.js one wrote.
        let r = dev.get("/dev/py/notes/n1");
        assert_eq!(
            (r.status, r.json()["text"].clone()),
            (200, json!("hello")),
            "{}",
            dev.output()
        );
    }
    {
        let dev = Dev::start_with(&service, &["--data-dir", &data_arg], &[]);
        assert!(
            dev.output().contains("table tables-service-dev-notes kept"),
            "{}",
            dev.output()
        );
        assert_eq!(dev.get("/dev/notes/n1").status, 200, "data survives a restart");
    }
    {
        let dev = Dev::start_with(&service, &["--data-dir", &data_arg, "--reset"], &[]);
        assert_eq!(dev.get("/dev/notes/n1").status, 404, "--reset starts from empty");
    }
}

/// A small tmpfs the test mounts (and unmounts), to fill up.
struct SmallDisk(PathBuf);

impl SmallDisk {
    fn mount(name: &str, megabytes: u32) -> Option<SmallDisk> {
        let dir = temp_dir(name);
        std::fs::create_dir_all(&dir).unwrap();
        let ok = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={megabytes}m"), "tmpfs"])
            .arg(&dir)
            .status()
            .is_ok_and(|s| s.success());
        ok.then_some(SmallDisk(dir))
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn regression_a_full_disk_kept_every_write_failing_until_restart() {
    let Some(disk) = SmallDisk::mount("full-disk", 24) else {
        panic!("cannot mount a tmpfs (the test needs root, as .ci/run has)");
    };
    let server = TablesServer::start(&disk.0.join("tables"));
    let (status, _) = server.call(
        "CreateTable",
        json!({
            "TableName": "disk", "BillingMode": "PAY_PER_REQUEST",
            "KeySchema": [{"AttributeName": "id", "KeyType": "HASH"}],
            "AttributeDefinitions": [{"AttributeName": "id", "AttributeType": "S"}]
        }),
    );
    assert_eq!(status, 200);
    let put = |id: &str| {
        server.call(
            "PutItem",
            json!({"TableName": "disk", "Item": {"id": {"S": id}, "pad": {"S": "x".repeat(100_000)}}}),
        )
    };
    assert_eq!(put("before").0, 200);
    // Fill the disk with something else, then keep writing until the disk is full.
    let filler = disk.0.join("filler");
    let mut f = std::fs::File::create(&filler).unwrap();
    let chunk = vec![1u8; 1 << 20];
    while std::io::Write::write_all(&mut f, &chunk).is_ok() {}
    drop(f);
    let mut failed = None;
    for i in 0..200 {
        let (status, body) = put(&format!("during-{i}"));
        if status != 200 {
            failed = Some((status, body));
            break;
        }
    }
    let (status, body) = failed.expect("writes fail once the disk is full");
    assert_eq!(status, 500, "{body}");
    assert!(
        body["message"].as_str().unwrap_or_default().contains("not applied"),
        "a clear message: {body}"
    );
    // Reads keep working while the disk is full.
    let (status, got) = server.call("GetItem", json!({"TableName": "disk", "Key": {"id": {"S": "before"}}}));
    assert_eq!(status, 200, "{got}");
    assert_eq!(got["Item"]["id"]["S"], "before");
    // Space comes back: the next write succeeds, with no restart.
    std::fs::remove_file(&filler).unwrap();
    assert_eq!(put("after").0, 200);
    let (status, got) = server.call("GetItem", json!({"TableName": "disk", "Key": {"id": {"S": "after"}}}));
    assert_eq!((status, &got["Item"]["id"]["S"]), (200, &json!("after")));
    drop(server);
}

#[test]
fn regression_2000_nested_parentheses_aborted_the_whole_server() {
    let data = temp_dir("nested");
    let server = TablesServer::start(&data);
    let (status, _) = server.call(
        "CreateTable",
        json!({
            "TableName": "nested", "BillingMode": "PAY_PER_REQUEST",
            "KeySchema": [{"AttributeName": "id", "KeyType": "HASH"}],
            "AttributeDefinitions": [{"AttributeName": "id", "AttributeType": "S"}]
        }),
    );
    assert_eq!(status, 200);
    let filter = format!("{}id = :v{}", "(".repeat(2000), ")".repeat(2000));
    for op in ["Scan", "Query"] {
        let mut body = json!({
            "TableName": "nested",
            "FilterExpression": filter,
            "ExpressionAttributeValues": {":v": {"S": "x"}}
        });
        if op == "Query" {
            body["KeyConditionExpression"] = json!("id = :v");
        }
        let (status, answer) = server.call(op, body);
        assert_eq!(status, 400, "{answer}");
        assert!(
            answer["__type"].as_str().unwrap().ends_with("ValidationException"),
            "{answer}"
        );
    }
    // The server is still there and answering.
    let (status, answer) = server.call("DescribeTable", json!({"TableName": "nested"}));
    assert_eq!(status, 200, "{answer}");
}
