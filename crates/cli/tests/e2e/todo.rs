//! The Todo service end to end, in Node.js, Rust and Java, through the real binary: the REST API,
//! the page in headless Chromium, and code reload.

use std::process::Command;

use serde_json::{json, Value};

use crate::harness::{example, repo_root, Dev};

/// create → list → get → update → delete, a bad request and a get of a deleted item.
fn crud(dev: &Dev) {
    let r = dev.send(
        "POST",
        "/dev/todos",
        &[("Content-Type", "application/json")],
        br#"{"text": "buy milk"}"#,
    );
    assert_eq!(r.status, 200, "{}\n{}", r.text(), dev.output());
    let created = r.json();
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(created["text"], "buy milk");
    assert_eq!(created["checked"], false);
    assert!(created["createdAt"].as_i64().unwrap() > 0);

    let r = dev.send("POST", "/dev/todos", &[], br#"{"text": "walk the dog"}"#);
    assert_eq!(r.status, 200);

    let r = dev.send("POST", "/dev/todos", &[], br#"{"nottext": 1}"#);
    assert_eq!(r.status, 400, "missing text is a bad request");
    assert!(r.text().contains("text"), "{}", r.text());

    let r = dev.get("/dev/todos");
    assert_eq!(r.status, 200);
    let list = r.json();
    let texts: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["text"].as_str().unwrap())
        .collect();
    assert_eq!(texts, ["buy milk", "walk the dog"]);

    let r = dev.get(&format!("/dev/todos/{id}"));
    assert_eq!((r.status, r.json()["text"].clone()), (200, json!("buy milk")));

    let r = dev.send(
        "PUT",
        &format!("/dev/todos/{id}"),
        &[],
        br#"{"text": "buy oat milk", "checked": true}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let updated = r.json();
    assert_eq!(updated["text"], "buy oat milk");
    assert_eq!(updated["checked"], true);
    assert_eq!(updated["edits"], 1);
    assert_eq!(updated["createdAt"], created["createdAt"]);

    let r = dev.send("PUT", &format!("/dev/todos/{id}"), &[], br#"{"text": 5}"#);
    assert_eq!(r.status, 400);

    let r = dev.send("DELETE", &format!("/dev/todos/{id}"), &[], b"");
    assert_eq!(r.status, 200);
    let r = dev.get(&format!("/dev/todos/{id}"));
    assert_eq!(r.status, 404, "a deleted item is gone");
    let r = dev.send(
        "PUT",
        &format!("/dev/todos/{id}"),
        &[],
        br#"{"text": "x", "checked": false}"#,
    );
    assert_eq!(r.status, 404, "updating a deleted item does not resurrect it");
    assert_eq!(dev.get("/dev/todos").json().as_array().unwrap().len(), 1);

    // CORS preflight from `cors: true`.
    let r = dev.send("OPTIONS", "/dev/todos", &[("Origin", "http://elsewhere.example")], b"");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    assert_eq!(r.header("access-control-allow-methods"), Some("OPTIONS,POST,GET"));

    // The page is served by the service itself.
    let r = dev.get("/dev/");
    assert_eq!(r.status, 200);
    assert!(r.header("content-type").unwrap().starts_with("text/html"));
    assert!(r.text().contains("<title>Todos</title>"));
}

#[test]
fn todo_node_rest_api() {
    let dev = Dev::start(&example("todo"));
    crud(&dev);
}

#[test]
fn todo_rust_rest_api() {
    // sylph dev builds the Rust functions itself (scripts/test builds them beforehand, so this
    // start only checks they are up to date).
    // Its own target folder: its binary is called `bootstrap` like hello-rust's, and a shared
    // folder lets one build overwrite the other's (scripts/test builds it there beforehand).
    let target = crate::harness::target_dir().parent().unwrap().join("todo-rust");
    let dev = Dev::start_with(
        &example("todo-rust"),
        &[],
        &[("CARGO_TARGET_DIR", target.to_str().unwrap())],
    );
    assert!(dev.output().contains("building Rust functions"), "{}", dev.output());
    crud(&dev);
}

#[test]
fn todo_wasm_rest_api() {
    // sylph dev builds the component with cargo for wasm32-wasip2 (scripts/test builds it
    // beforehand into this folder, so this start only checks it is up to date) and serves it in
    // wasmtime; its table calls are signed by Sylph as each function.
    let target = crate::harness::target_dir().parent().unwrap().join("todo-wasm");
    let dev = Dev::start_with(
        &example("todo-wasm"),
        &[],
        &[("CARGO_TARGET_DIR", target.to_str().unwrap())],
    );
    assert!(
        dev.output().contains("building WebAssembly components"),
        "{}",
        dev.output()
    );
    crud(&dev);
    let page = dev.get("/dev/");
    assert_eq!(page.status, 200);
    assert!(page.text().contains("<html"), "{}", page.text());
}

#[test]
fn todo_java_rest_api() {
    // sylph dev builds the zip with Maven when it is missing or older than the sources; the
    // handlers run under AWS's Java runtime client and reach the table with the AWS SDK for
    // Java v2, by AWS_ENDPOINT_URL alone.
    let dev = Dev::start(&example("todo-java"));
    crud(&dev);
}

#[test]
fn todo_page_in_headless_chromium() {
    let sdk = repo_root().join("crates/cli/tests/sdk");
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        std::path::Path::new(&chromium).exists(),
        "{chromium} is missing: install Debian's chromium (.ci/run does)"
    );
    let dev = Dev::start(&example("todo"));
    let shot = std::env::temp_dir().join(format!("sylph-todo-{}.png", std::process::id()));
    let out = Command::new("node")
        .arg(sdk.join("browser_todo.mjs"))
        .arg(format!("{}/dev/", dev.base))
        .arg(&shot)
        .current_dir(&sdk)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        dev.output()
    );
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["count"], "2");
    assert_eq!(
        r["items"],
        json!([
            {"text": "Write the closing notes", "done": false},
            {"text": "Run the benchmark", "done": true}
        ])
    );
    assert!(std::fs::metadata(&shot).unwrap().len() > 1000, "a screenshot was saved");
    // Keep the picture the docs use up to date when asked to.
    if std::env::var_os("SYLPH_UPDATE_SCREENSHOT").is_some() {
        std::fs::copy(&shot, repo_root().join("docs/todo-page.png")).unwrap();
    }
}

#[test]
fn editing_a_handler_takes_effect_without_a_restart() {
    let dir = std::env::temp_dir().join(format!("sylph-reload-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("serverless.yml"),
        "service: reload\nprovider:\n  runtime: nodejs20.x\nfunctions:\n  hi:\n    handler: handler.hi\n    events:\n      - httpApi: GET /hi\n  slow:\n    handler: handler.slow\n    events:\n      - httpApi: GET /slow\n",
    )
    .unwrap();
    let code = |v: &str| {
        format!(
            "exports.hi = async () => ({{ statusCode: 200, body: '{v}' }});\n\
             exports.slow = async () => {{ await new Promise((r) => setTimeout(r, 1500)); return {{ statusCode: 200, body: '{v}' }}; }};\n"
        )
    };
    std::fs::write(dir.join("handler.js"), code("v1")).unwrap();
    let dev = Dev::start(&dir);
    assert_eq!(dev.get("/hi").text(), "v1");

    // A request in flight on an instance that has loaded v1 finishes on v1 when the code
    // changes (warm the instance first: code is loaded when an instance starts).
    assert_eq!(dev.get("/slow").text(), "v1");
    let base = dev.base.clone();
    let slow = std::thread::spawn(move || crate::harness::request(&base, "GET", "/slow", &[], b"").text());
    dev.wait_in_flight("slow");
    std::fs::write(dir.join("handler.js"), code("v2")).unwrap();
    assert!(dev.wait_for_output("code changed"), "{}", dev.output());
    assert_eq!(slow.join().unwrap(), "v1");
    assert_eq!(dev.get("/hi").text(), "v2");
    assert_eq!(dev.get("/slow").text(), "v2");
    let _ = std::fs::remove_dir_all(&dir);
}

/// The events example: a table stream keeps the count of open items, a queue announces each
/// item checked off, and the nightly cleanup (run here through the Invoke API) removes them.
#[test]
fn the_todo_events_example_counts_announces_and_cleans_up() {
    let dev = Dev::start(&crate::harness::example("todo-events"));
    let out = dev.output();
    assert!(
        out.contains("schedule cron(0 3 * * ? *)  cleanup  next:") && out.contains("[Europe/Paris]"),
        "{out}"
    );
    let created: Vec<String> = ["buy milk", "walk the dog"]
        .iter()
        .map(|text| {
            let r = dev.send(
                "POST",
                "/todos",
                &[],
                serde_json::json!({ "text": text }).to_string().as_bytes(),
            );
            assert_eq!(r.status, 201, "{}", r.text());
            r.json()["id"].as_str().unwrap().to_owned()
        })
        .collect();
    let open = |want: i64| {
        let start = std::time::Instant::now();
        loop {
            let got = dev.get("/stats").json()["open"].as_i64().unwrap();
            if got == want {
                return;
            }
            assert!(
                start.elapsed() < std::time::Duration::from_secs(30),
                "open is {got}, not {want}:\n{}",
                dev.output()
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    };
    open(2);
    let r = dev.send("PUT", &format!("/todos/{}/check", created[0]), &[], b"");
    assert_eq!(r.status, 200, "{}", r.text());
    open(1);
    assert!(dev.wait_for_output("done: buy milk"), "{}", dev.output());
    let removed = dev.invoke_ok("todo-events-dev-cleanup", &serde_json::json!({}));
    assert_eq!(removed["removed"], 1);
    // The removal of a checked item leaves the count alone.
    assert!(dev.wait_for_output("open items +0"), "{}", dev.output());
    open(1);
}
