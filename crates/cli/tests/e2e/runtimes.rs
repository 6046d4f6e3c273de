//! Python under Sylph's bootstrap, Python under the official `awslambdaric`, and a Rust
//! function built with the official `lambda_runtime` crate.

use serde_json::json;

use crate::harness::{example, target_dir, Dev};

#[test]
fn python_functions_and_the_official_python_runtime_client() {
    let dev = Dev::start_with(&example("hello-python"), &[], &[("GREETING", "Hi")]);

    let r = dev.get("/dev/hello?name=py");
    assert_eq!(r.status, 200, "{}", r.text());
    let body = r.json();
    assert_eq!(body["message"], "Hi, py!");
    assert_eq!(body["function"], "hello-python-dev-hello");
    assert_eq!(body["runtime"], "AWS_Lambda_python3.12");
    assert_eq!(body["version"], "1.0");

    let r = dev.get("/dev/items/x1");
    assert_eq!(r.json(), json!({"id": "x1", "path": "/items/x1"}));

    let r = dev.get("/dev/fail");
    assert_eq!(r.status, 502);
    assert!(dev.wait_for_output("ValueError: python says no"), "{}", dev.output());

    // The same handler under PyPI awslambdaric, unchanged, as a provided.al2023 function.
    let r = dev.get("/ric?name=ric");
    assert_eq!(r.status, 200, "{}\n{}", r.text(), dev.output());
    let body = r.json();
    assert_eq!(body["message"], "Hi, ric!");
    assert_eq!(body["function"], "hello-python-dev-ric");
    assert_eq!(body["version"], "2.0");
}

#[test]
fn rust_function_built_with_lambda_runtime() {
    let bootstrap = target_dir().join("bootstrap");
    assert!(
        bootstrap.is_file(),
        "{} is missing: build it with `cargo build -p hello-rust` (scripts/test does)",
        bootstrap.display()
    );
    let dev = Dev::start_with(
        &example("hello-rust"),
        &[],
        &[("HELLO_RUST_BOOTSTRAP", bootstrap.to_str().unwrap())],
    );
    let r = dev.get("/hello?name=crab");
    assert_eq!(r.status, 200, "{}\n{}", r.text(), dev.output());
    let body = r.json();
    assert_eq!(body["message"], "Hello, crab!");
    assert_eq!(body["route"], "GET /hello");
    assert_eq!(body["memory"], 128);
    assert_eq!(
        body["functionArn"],
        "arn:aws:lambda:us-east-1:000000000000:function:hello-rust-dev-hello"
    );
    assert_eq!(body["requestId"].as_str().unwrap().len(), 36);

    let r = dev.get("/hello?name=error");
    assert_eq!(r.status, 502);
}

/// Older runtimes (6 of 12 public projects named one) run on the closest interpreter, and the
/// start says so.
#[test]
fn older_runtimes_run_on_the_closest_interpreter_and_say_so() {
    let dir = std::env::temp_dir().join(format!("sylph-old-runtimes-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("serverless.yml"),
        "service: oldrt\nprovider:\n  runtime: nodejs14.x\nfunctions:\n  node:\n    handler: h.a\n  py:\n    handler: p.b\n    runtime: python3.8\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("h.js"),
        "exports.a = async () => ({ node: process.version });\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("p.py"),
        "import sys\ndef b(e, c):\n    return {'python': sys.version.split()[0]}\n",
    )
    .unwrap();
    let dev = crate::harness::Dev::start(&dir.join("serverless.yml"));
    let out = dev.output();
    assert!(
        out.contains("runtime: nodejs14.x on Node.js v") && out.contains("no exact interpreter for nodejs14.x here"),
        "{out}"
    );
    assert!(out.contains("runtime: python3.8 on Python 3."), "{out}");
    assert!(dev.invoke_ok("node", &serde_json::json!({}))["node"]
        .as_str()
        .unwrap()
        .starts_with('v'));
    assert!(dev.invoke_ok("py", &serde_json::json!({}))["python"]
        .as_str()
        .unwrap()
        .starts_with("3."));
    let _ = std::fs::remove_dir_all(&dir);
}
