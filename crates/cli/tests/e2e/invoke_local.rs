//! `sylph invoke local`.

use crate::harness::{example, sylph};

#[test]
fn invoke_local_prints_the_result_and_the_logs() {
    let out = sylph()
        .args([
            "invoke",
            "local",
            "-f",
            "context",
            "-d",
            r#"{"a": 1}"#,
            "-e",
            "EXTRA=yes",
            "--config",
        ])
        .arg(example("hello-node"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let result: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(result["event"], serde_json::json!({"a": 1}));
    assert_eq!(result["functionName"], "hello-node-dev-context");
    assert_eq!(result["memoryLimitInMB"], "256");
    assert_eq!(result["env"]["EXTRA"], "yes");
    assert_eq!(result["env"]["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"], "256");
    assert_eq!(result["env"]["AWS_EXECUTION_ENV"], "AWS_Lambda_nodejs20.x");
    assert_eq!(
        result["env"]["AWS_LAMBDA_LOG_GROUP_NAME"],
        "/aws/lambda/hello-node-dev-context"
    );
    assert!(result["remaining"].as_u64().unwrap() > 0);
    assert!(stderr.contains("START RequestId:"), "{stderr}");
    assert!(stderr.contains("REPORT RequestId:"), "{stderr}");

    // --raw passes the data as a string even when it is JSON.
    let out = sylph()
        .args(["invoke", "local", "-f", "context", "-d", "[1,2]", "--raw", "--config"])
        .arg(example("hello-node"))
        .output()
        .unwrap();
    let result: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(result["event"], "[1,2]");
}

#[test]
fn invoke_local_exits_non_zero_on_a_function_error() {
    let out = sylph()
        .args(["invoke", "local", "-f", "fail", "--config"])
        .arg(example("hello-node"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let result: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(result["errorMessage"], "this function always fails");
    assert_eq!(result["errorType"], "Error");

    let out = sylph()
        .args(["invoke", "local", "-f", "nope", "--config"])
        .arg(example("hello-node"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("function `nope` is not in this service"));
}
