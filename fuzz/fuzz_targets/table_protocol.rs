//! The DynamoDB JSON protocol: any operation name and body against a live table store (on
//! tmpfs, so commits are cheap). Every answer must be a well-formed response; a 5xx is a bug.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;

const OPERATIONS: &[&str] = &[
    "PutItem", "GetItem", "UpdateItem", "DeleteItem", "Query", "Scan", "BatchGetItem", "BatchWriteItem",
    "TransactGetItems", "TransactWriteItems", "CreateTable", "DescribeTable", "DeleteTable", "UpdateTable",
    "ListTables", "UpdateTimeToLive", "DescribeTimeToLive", "TagResource", "ListTagsOfResource", "ExecuteStatement",
    "BatchExecuteStatement", "ExecuteTransaction", "Unknown",
];

struct Store {
    runtime: tokio::runtime::Runtime,
    tables: sylph_tables::service::Tables,
}

fn store() -> &'static Store {
    static STORE: OnceLock<Store> = OnceLock::new();
    STORE.get_or_init(|| {
        let dir = std::path::Path::new("/dev/shm").join(format!("sylph-fuzz-tables-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let tables = sylph_tables::service::Tables::open(&dir, "us-east-1").unwrap();
        let create = br#"{"TableName":"t","BillingMode":"PAY_PER_REQUEST","KeySchema":[{"AttributeName":"pk","KeyType":"HASH"},{"AttributeName":"sk","KeyType":"RANGE"}],"AttributeDefinitions":[{"AttributeName":"pk","AttributeType":"S"},{"AttributeName":"sk","AttributeType":"N"}]}"#;
        runtime.block_on(tables.handle_bytes("CreateTable", create));
        Store { runtime, tables }
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&op, body)) = data.split_first() else { return };
    let operation = OPERATIONS[usize::from(op) % OPERATIONS.len()];
    let s = store();
    let (status, answer) = s.runtime.block_on(s.tables.handle_bytes(operation, body));
    assert!(status < 500, "{operation} answered {status}: {}", String::from_utf8_lossy(&answer));
    assert!(serde_json::from_slice::<serde_json::Value>(&answer).is_ok(), "not JSON: {}", String::from_utf8_lossy(&answer));
});
