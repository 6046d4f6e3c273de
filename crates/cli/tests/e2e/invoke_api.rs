//! The Lambda Invoke API through the real AWS SDKs: @aws-sdk/client-lambda (v3) and boto3.

use std::process::Command;

use crate::harness::{example, repo_root, Dev};

fn sdk_dir() -> std::path::PathBuf {
    repo_root().join("crates/cli/tests/sdk")
}

#[test]
fn aws_sdk_v3_invokes_functions_by_endpoint() {
    let dir = sdk_dir();
    assert!(
        dir.join("node_modules/@aws-sdk/client-lambda").is_dir(),
        "run `npm ci` in {} (scripts/test does)",
        dir.display()
    );
    let dev = Dev::start(&example("hello-node"));
    let out = Command::new("node")
        .arg(dir.join("invoke.mjs"))
        .arg(&dev.base)
        .current_dir(&dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        dev.output()
    );
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();

    assert_eq!(r["ok"]["status"], 200);
    assert_eq!(r["ok"]["functionError"], serde_json::Value::Null);
    assert_eq!(r["ok"]["executedVersion"], "$LATEST");
    assert_eq!(r["ok"]["payload"]["event"], serde_json::json!({"from": "sdk-v3"}));
    assert_eq!(r["ok"]["payload"]["clientContext"]["custom"]["who"], "v3");
    let log = r["ok"]["log"].as_str().unwrap();
    assert!(
        log.starts_with("START RequestId: ") && log.contains("REPORT RequestId: "),
        "{log}"
    );

    assert_eq!(r["failed"]["status"], 200);
    assert_eq!(r["failed"]["functionError"], "Unhandled");
    assert_eq!(r["failed"]["payload"]["errorMessage"], "this function always fails");

    assert_eq!(r["event"]["status"], 202);
    assert_eq!(r["dryRun"]["status"], 204);
    assert_eq!(r["missing"]["error"], "ResourceNotFoundException");
    assert_eq!(r["missing"]["status"], 404);

    // The Event invocation ran after its 202.
    let out_text = dev.output();
    assert!(dev.wait_for_output("[context] REPORT") || out_text.contains("[context] REPORT"));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while dev.output().matches("[context] REPORT").count() < 2 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert_eq!(dev.output().matches("[context] REPORT").count(), 2, "{}", dev.output());
}

#[test]
fn boto3_invokes_functions_by_endpoint() {
    let dev = Dev::start(&example("hello-node"));
    let out = Command::new("python3")
        .arg(sdk_dir().join("invoke_boto3.py"))
        .arg(&dev.base)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        dev.output()
    );
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();

    assert_eq!(r["ok"]["status"], 200);
    assert_eq!(r["ok"]["functionError"], serde_json::Value::Null);
    assert_eq!(r["ok"]["payload"]["event"], serde_json::json!({"from": "boto3"}));
    assert_eq!(r["ok"]["payload"]["clientContext"]["custom"]["who"], "boto3");
    assert!(r["ok"]["log"].as_str().unwrap().contains("END RequestId: "));

    assert_eq!(r["timeout"]["functionError"], "Unhandled");
    let message = r["timeout"]["payload"]["errorMessage"].as_str().unwrap();
    assert!(message.contains("Task timed out after 1.00 seconds"), "{message}");

    assert_eq!(r["missing"]["error"], "ResourceNotFoundException");
    assert!(r["missing"]["message"].as_str().unwrap().contains("Function not found"));
    assert_eq!(r["badJson"]["error"], "InvalidRequestContentException");
}
