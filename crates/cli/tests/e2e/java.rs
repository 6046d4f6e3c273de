//! Java functions end to end: `sylph dev` builds a Maven project, and AWS's Java runtime
//! interface client runs handlers of each form Lambda accepts, in the sandbox, with the heap
//! sized from memorySize; a crashing or memory-hungry handler costs one request.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::harness::{repo_root, Dev};

/// A copy of the handler fixture without its build output, so that `sylph dev` must build it.
fn fresh_fixture(tag: &str) -> PathBuf {
    let from = repo_root().join("crates/cli/tests/fixtures/java-handlers");
    let dir = std::env::temp_dir().join(format!("sylph-java-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    copy_tree(&from, &dir);
    dir
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        if e.file_name() == "target" {
            continue;
        }
        if e.file_type().unwrap().is_dir() {
            copy_tree(&e.path(), &to.join(e.file_name()));
        } else {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

/// Change the API handler's greeting from "hi" to `greeting`, and call the route for `name`
/// until the new code answers (bounded: Maven rebuilds first); its last answer. Every answer
/// meanwhile is the old code's or the new code's, nothing else.
fn edit_greeting_and_wait(dev: &Dev, dir: &Path, greeting: &str, name: &str) -> String {
    let source = dir.join("src/main/java/fixtures/ApiHandler.java");
    let code = std::fs::read_to_string(&source).unwrap();
    std::fs::write(&source, code.replace("\"hi \"", &format!("\"{greeting} \""))).unwrap();
    assert!(dev.wait_for_output("code changed"), "{}", dev.output());
    let deadline = Instant::now() + Duration::from_secs(180);
    let mut text = String::new();
    while Instant::now() < deadline {
        text = dev.get(&format!("/dev/hello/{name}")).text();
        if text.starts_with(&format!("{greeting} ")) {
            break;
        }
        assert_eq!(
            text,
            format!("hi {name}  via dev"),
            "neither the old nor the new code: {}",
            dev.output()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    text
}

/// What the `method` function's `describe` answer must show, however its JVM started: the
/// runtime client read this function's environment (name, handler, memory), loaded its classes
/// from its own package, which is the working folder, and the heap follows memorySize 256.
fn assert_is_method_function(seen: &Value) {
    assert_eq!(seen["function"], "java-handlers-dev-method", "{seen}");
    assert_eq!(seen["handler"], "fixtures.Methods::describe");
    assert_eq!(seen["greeting"], "hello");
    assert_eq!(seen["memoryLimitInMB"], 256);
    assert_eq!(seen["classFileInTaskRoot"], true, "{seen}");
    let task_root = seen["taskRoot"].as_str().unwrap();
    assert!(
        seen["codeSource"].as_str().unwrap().starts_with(task_root),
        "its classes come from its own package: {seen}"
    );
    assert_eq!(
        seen["relativeClassFile"], true,
        "the working folder is the task root: {seen}"
    );
    let heap = seen["maxHeapMB"].as_u64().unwrap();
    assert!(
        (100..=218).contains(&heap),
        "the heap follows memorySize 256: {heap} MB"
    );
}

/// Invoke through the Lambda Invoke API: (function error header, payload).
fn invoke(dev: &Dev, function: &str, payload: &Value) -> (Option<String>, Value) {
    let r = dev.send(
        "POST",
        &format!("/2015-03-31/functions/{function}/invocations"),
        &[],
        payload.to_string().as_bytes(),
    );
    assert_eq!(r.status, 200, "{function}: {}\n{}", r.text(), dev.output());
    let error = r.header("x-amz-function-error").map(str::to_owned);
    let body = serde_json::from_slice(&r.body).unwrap_or_else(|_| Value::String(r.text()));
    (error, body)
}

#[test]
fn handlers_of_each_form_run_under_the_java_runtime_client_and_reload_on_edit() {
    let dir = fresh_fixture("forms");
    // A file in the home folder: the sandbox must keep it from a function.
    let home = PathBuf::from(std::env::var("HOME").unwrap());
    let secret = home.join(format!(".sylph-java-secret-{}", std::process::id()));
    std::fs::write(&secret, "the host's secret").unwrap();
    // Cold starts of the official client itself, not the pre-started JVMs (tested below).
    let dev = Dev::start_with(&dir, &["--prewarm", "0"], &[]);
    assert!(dev.output().contains("building Java functions"), "{}", dev.output());

    // RequestHandler with POJOs; the context's logger reaches the function's log.
    let (err, out) = invoke(&dev, "pojo", &json!({"item": "tea", "quantity": 2}));
    assert_eq!(err, None, "{out}");
    assert_eq!(
        out,
        json!({"line": "2 x tea", "function": "java-handlers-dev-pojo", "greeting": "hello"})
    );
    assert!(dev.wait_for_output("ordering tea"), "{}", dev.output());
    // With `logs: {logFormat: JSON}` the official client writes the context logger's lines as
    // its JSON records (keyed `AWSRequestId`, as it does on Lambda).
    let r = dev.send(
        "POST",
        "/2015-03-31/functions/pojojson/invocations",
        &[],
        br#"{"item":"jam","quantity":1}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let id = r.header("x-amzn-requestid").unwrap().to_owned();
    assert!(dev.wait_for_output("ordering jam"), "{}", dev.output());
    let record: Value = dev
        .output()
        .lines()
        .filter_map(|l| l.strip_prefix("[pojojson] "))
        .find(|l| l.contains("ordering jam"))
        .and_then(|l| serde_json::from_str(l).ok())
        .unwrap_or_else(|| panic!("no JSON record: {}", dev.output()));
    assert_eq!(record["AWSRequestId"], json!(id), "{record}");
    assert_eq!(record["message"], "ordering jam\n");
    assert!(
        record["timestamp"].as_str().is_some_and(|t| t.ends_with('Z')),
        "{record}"
    );

    // RequestHandler with the events library's API Gateway classes, through an HTTP route.
    let r = dev.get("/dev/hello/bob?q=x");
    assert_eq!(
        (r.status, r.text()),
        (201, "hi bob x via dev".to_owned()),
        "{}",
        dev.output()
    );
    assert_eq!(r.header("x-method"), Some("GET"));

    // RequestStreamHandler: the bytes as sent.
    let (err, out) = invoke(&dev, "stream", &json!("abc"));
    assert_eq!(err, None, "{out}");
    assert_eq!(out["reversed"], "\"cba\"");
    assert_eq!(out["requestId"].as_str().map(str::len), Some(36));

    // `Class::method` with a Map: what the function sees. The attack: read another package
    // where Sylph unpacks packages (another service's, under `sylph server`), beside its own.
    let (err, seen) = invoke(&dev, "method", &json!({}));
    assert_eq!(err, None, "{seen}");
    let task_root = PathBuf::from(seen["taskRoot"].as_str().unwrap());
    let other = task_root.parent().unwrap().join("another-service-0000000000000000");
    std::fs::create_dir_all(&other).unwrap();
    std::fs::write(other.join("Secret.class"), "another tenant's code").unwrap();
    let (err, peeked) = invoke(&dev, "method", &json!({"peek": other.join("Secret.class")}));
    assert_eq!(err, None, "{peeked}");
    assert!(
        peeked["peek"].as_str().unwrap().starts_with("denied"),
        "a function read another package: {peeked}"
    );
    let _ = std::fs::remove_dir_all(&other);
    let (err, seen) = invoke(&dev, "method", &json!({"peek": secret}));
    assert_eq!(err, None, "{seen}");
    assert_is_method_function(&seen);
    assert!(
        seen["peek"].as_str().unwrap().starts_with("denied"),
        "a function read a file of the host's home folder: {seen}"
    );

    // A thrown exception is the function's error, in Lambda's shape.
    let (err, out) = invoke(&dev, "crash", &json!({}));
    assert_eq!(err.as_deref(), Some("Unhandled"), "{out}");
    assert_eq!(out["errorType"], "java.lang.IllegalStateException");
    assert_eq!(out["errorMessage"], "the order book is closed");

    // Allocating without bound costs that request, not the server or the other functions.
    let (err, out) = invoke(&dev, "hungry", &json!({}));
    assert!(err.is_some(), "{out}");
    let text = out.to_string();
    assert!(text.contains("OutOfMemory"), "{text}");
    let (err, _) = invoke(&dev, "pojo", &json!({"item": "jam", "quantity": 1}));
    assert_eq!(err, None);

    // java21 runs on a JDK of 21 or later when the machine has one (it says which).
    if dev.output().contains("runtime: java21 on Java") {
        let (err, seen) = invoke(&dev, "newer", &json!({}));
        assert_eq!(err, None, "{seen}");
        let version: u32 = seen["javaVersion"].as_str().unwrap().parse().unwrap();
        assert!(version >= 21, "{seen}");
    }

    // Editing a handler: sylph dev rebuilds with Maven, and new instances run the new code.
    let text = edit_greeting_and_wait(&dev, &dir, "hello", "bob");
    assert_eq!(text, "hello bob  via dev", "{}", dev.output());
    let _ = std::fs::remove_file(&secret);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_package_that_is_not_a_zip_is_refused_with_what_is_wrong() {
    let dir = std::env::temp_dir().join(format!("sylph-java-bad-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("serverless.yml"),
        "service: bad\nprovider:\n  runtime: java17\npackage:\n  artifact: app.jar\nfunctions:\n  f:\n    handler: a.B\n",
    )
    .unwrap();
    std::fs::write(dir.join("app.jar"), "this is not a zip").unwrap();
    let dev = Dev::start_with(&dir, &["--prewarm", "0"], &[]);
    let r = dev.send("POST", "/2015-03-31/functions/f/invocations", &[], b"{}");
    // The caller learns the function could not start; the log says why.
    assert_eq!(r.status, 502, "{}", r.text());
    assert!(r.text().contains("could not be started"), "{}", r.text());
    assert!(dev.wait_for_output("is not a jar or zip"), "{}", dev.output());
    assert!(dev.output().contains("app.jar"), "{}", dev.output());
    // The server is still there.
    assert_eq!(dev.get("/_sylph/metrics").status, 200);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A gauge or counter from the metrics.
fn metric_value(dev: &Dev, line: &str) -> f64 {
    crate::harness::metric(&dev.get("/_sylph/metrics").text(), line)
}

#[test]
fn a_pre_started_jvm_becomes_the_function_with_its_own_environment_code_and_limits() {
    let dir = fresh_fixture("prestart");
    let dev = Dev::start_with(&dir, &["--prewarm", "1"], &[]);
    // The JVM warms up the runtime client before it is ready; wait for it (bounded).
    let deadline = Instant::now() + Duration::from_secs(60);
    while metric_value(&dev, "sylph_prestarted_runtimes{language=\"java\"}") < 1.0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
    let (err, seen) = invoke(&dev, "method", &json!({"n": 1}));
    assert_eq!(err, None, "{seen}");
    assert_eq!(
        metric_value(&dev, "sylph_starts_total{function=\"method\",kind=\"prewarmed\"}"),
        1.0,
        "the cold start was not served by the pre-started JVM:\n{}",
        dev.output()
    );
    // It is this function, not the generic JVM it was: the runtime client read the function's
    // environment (name, memory), loaded its classes from its own package, and the heap follows
    // the function's memorySize.
    assert_is_method_function(&seen);
    assert_eq!(seen["event"], json!({"n": 1}));

    // JVM options in a function's environment take effect: it starts its own JVM.
    let (err, seen) = invoke(&dev, "options", &json!({}));
    assert_eq!(err, None, "{seen}");
    assert_eq!(seen["option"], "set", "{seen}");

    // The pool refills: a second function becomes the next pre-started JVM, and its events
    // classes come from its own package (the launcher warmed up on its own copy, elsewhere).
    let deadline = Instant::now() + Duration::from_secs(60);
    while metric_value(&dev, "sylph_prestarted_runtimes{language=\"java\"}") < 1.0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
    let r = dev.get("/dev/hello/ada?q=y");
    assert_eq!(
        (r.status, r.text()),
        (201, "hi ada y via dev".to_owned()),
        "{}",
        dev.output()
    );
    assert_eq!(
        metric_value(&dev, "sylph_starts_total{function=\"api\",kind=\"prewarmed\"}"),
        1.0,
        "{}",
        dev.output()
    );

    // A rebuild while JVMs are pre-started with the old package: the next cold start runs the
    // new code (a JVM that preloaded the old version is stopped, not used).
    let text = edit_greeting_and_wait(&dev, &dir, "rebuilt", "ada");
    assert_eq!(text, "rebuilt ada  via dev", "{}", dev.output());
    let _ = std::fs::remove_dir_all(&dir);
}
