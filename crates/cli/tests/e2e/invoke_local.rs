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

/// `sylph invoke local -f FUNCTION` on `service` with `args`; stdout (the result) and stderr.
fn invoke_local(service: &std::path::Path, function: &str, args: &[&str], stdin: Option<&str>) -> (String, String) {
    use std::io::Write as _;
    let mut child = sylph()
        .args(["invoke", "local", "-f", function, "--config"])
        .arg(service)
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).unwrap();
    }
    drop(input);
    let out = child.wait_with_output().unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert!(out.status.success(), "{stdout}\n{stderr}");
    (stdout, stderr)
}

/// The items a Todo `list` result holds.
fn listed(stdout: &str) -> Vec<String> {
    let result: serde_json::Value = serde_json::from_str(stdout).unwrap();
    let items: serde_json::Value = serde_json::from_str(result["body"].as_str().unwrap()).unwrap();
    items
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["text"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn the_todo_functions_run_under_invoke_local_with_and_without_a_server() {
    let todo = example("todo");
    let data = std::env::temp_dir().join(format!("sylph-invoke-local-todo-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&data);
    let data_arg = data.to_str().unwrap();

    // No server: the service's stored tables, created from resources: if missing.
    let (_, stderr) = invoke_local(
        &todo,
        "create",
        &[
            "--data-dir",
            data_arg,
            "-d",
            r#"{"body": "{\"text\": \"written locally\"}"}"#,
        ],
        None,
    );
    assert!(stderr.contains("no sylph dev is running"), "{stderr}");
    // The event from standard input.
    invoke_local(
        &todo,
        "create",
        &["--data-dir", data_arg, "-d", "-"],
        Some(r#"{"body": "{\"text\": \"piped\"}"}"#),
    );
    let (stdout, _) = invoke_local(&todo, "list", &["--data-dir", data_arg], None);
    let mut items = listed(&stdout);
    items.sort();
    assert_eq!(items, ["piped", "written locally"]);

    // With sylph dev running for the same service: its tables, so what it wrote is listed.
    let dev = crate::harness::Dev::start_with(&todo, &["--data-dir", data_arg], &[]);
    let r = dev.send("POST", "/dev/todos", &[], br#"{"text": "written over HTTP"}"#);
    assert_eq!(r.status, 200, "{}", r.text());
    let (stdout, stderr) = invoke_local(&todo, "list", &["--data-dir", data_arg], None);
    assert!(
        stderr.contains("those of the sylph dev running for this service"),
        "{stderr}"
    );
    assert!(listed(&stdout).contains(&"written over HTTP".to_owned()), "{stdout}");
    invoke_local(
        &todo,
        "create",
        &[
            "--data-dir",
            data_arg,
            "-d",
            r#"{"body": "{\"text\": \"seen over HTTP\"}"}"#,
        ],
        None,
    );
    assert!(dev.get("/dev/todos").text().contains("seen over HTTP"));
    drop(dev);
    let _ = std::fs::remove_dir_all(&data);
}

#[test]
fn the_python_and_rust_examples_run_under_invoke_local() {
    let (stdout, _) = invoke_local(
        &example("hello-python"),
        "hello",
        &["-d", r#"{"queryStringParameters": {"name": "snake"}}"#],
        None,
    );
    assert!(stdout.contains("snake"), "{stdout}");
    let bootstrap = crate::harness::target_dir().join("bootstrap");
    let mut cmd = sylph();
    cmd.env("HELLO_RUST_BOOTSTRAP", &bootstrap)
        .args([
            "invoke",
            "local",
            "-f",
            "hello",
            "-d",
            r#"{"queryStringParameters": {"name": "crab"}}"#,
            "--config",
        ])
        .arg(example("hello-rust"));
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("Hello, crab!"), "{stdout}");
}

#[test]
fn the_context_file_reaches_the_function() {
    let dir = std::env::temp_dir().join(format!("sylph-invoke-local-ctx-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("serverless.yml"),
        "service: ctx\nprovider:\n  runtime: nodejs20.x\nfunctions:\n  ctx:\n    handler: h.ctx\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("h.js"),
        "exports.ctx = async (event, context) => context.clientContext;\n",
    )
    .unwrap();
    let ctx = dir.join("context.json");
    std::fs::write(&ctx, r#"{"custom": {"tenant": "acme"}}"#).unwrap();
    let (stdout, _) = invoke_local(&dir.join("serverless.yml"), "ctx", &["-x", ctx.to_str().unwrap()], None);
    let result: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(result["custom"]["tenant"], "acme", "{stdout}");
    let _ = std::fs::remove_dir_all(&dir);
}
