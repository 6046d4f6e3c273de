//! WebAssembly functions (`runtime: wasi-http`): a real component, built from
//! `wasm/test-component` for wasm32-wasip2 in the set-up, served by `sylph dev` in wasmtime —
//! HTTP routes, the Invoke API, asynchronous and queue events, its environment, logs, calls
//! to the table API as the function's identity, outgoing requests only to listed hosts, and
//! memory limits, timeouts, busy loops, traps and disconnects costing one request each. And
//! the same file under `wasmtime serve` answering the same way.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::harness::{metric, repo_root, target_dir, Dev, Response};

/// The tests' component, built once per test run (cargo skips it when it is up to date).
fn component() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let target = target_dir().parent().unwrap().join("wasm-guests");
            let status = Command::new("cargo")
                .args([
                    "build",
                    "--quiet",
                    "--release",
                    "--target",
                    "wasm32-wasip2",
                    "--manifest-path",
                ])
                .arg(repo_root().join("wasm/test-component/Cargo.toml"))
                .env("CARGO_TARGET_DIR", &target)
                .status()
                .expect("run cargo");
            assert!(status.success(), "building wasm/test-component failed");
            target.join("wasm32-wasip2/release/sylph_test_component.wasm")
        })
        .clone()
}

/// A service of three functions on the one component: `app` (HTTP routes, a queue, the
/// `items` table, one allowed loopback host), `other` (a table its role does not grant) and
/// `small` (128 MB, a 2 s timeout).
fn service(name: &str, allowed_port: u16) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sylph-wasm-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let wasm = component();
    std::fs::write(
        dir.join("serverless.yml"),
        format!(
            r#"service: wasmtest
provider:
  name: aws
  runtime: wasi-http
  environment:
    GREETING: hello from the manifest
    TABLE: wasm-items
  iam:
    role:
      statements:
        - Effect: Allow
          Action: [dynamodb:GetItem, dynamodb:PutItem]
          Resource: !GetAtt ItemsTable.Arn
functions:
  app:
    handler: {wasm}
    allowedOutboundHosts:
      - http://127.0.0.1:{allowed_port}
    events:
      - httpApi: '*'
      - http: ANY rest/{{proxy+}}
      - sqs:
          arn: !GetAtt Jobs.Arn
  other:
    handler: {wasm}
    environment:
      TABLE: wasm-secrets
    # Everywhere: even so, Sylph's own port is reached only as the function.
    allowedOutboundHosts: ['*://*:*']
  small:
    handler: {wasm}
    memorySize: 128
    timeout: 2
  spinner:
    handler: {wasm}
    timeout: 60
resources:
  Resources:
    Jobs:
      Type: AWS::SQS::Queue
      Properties:
        QueueName: wasm-jobs
    ItemsTable:
      Type: AWS::DynamoDB::Table
      Properties:
        TableName: wasm-items
        AttributeDefinitions: [{{AttributeName: id, AttributeType: S}}]
        KeySchema: [{{AttributeName: id, KeyType: HASH}}]
        BillingMode: PAY_PER_REQUEST
    SecretsTable:
      Type: AWS::DynamoDB::Table
      Properties:
        TableName: wasm-secrets
        AttributeDefinitions: [{{AttributeName: id, AttributeType: S}}]
        KeySchema: [{{AttributeName: id, KeyType: HASH}}]
        BillingMode: PAY_PER_REQUEST
"#,
            wasm = wasm.display()
        ),
    )
    .unwrap();
    dir.join("serverless.yml")
}

fn base64_of(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// An HTTP API event for `method path` with `body`.
fn http_event(method: &str, path: &str, body: &str) -> String {
    json!({
        "version": "2.0",
        "rawPath": path,
        "rawQueryString": "",
        "headers": {"host": "wasm.test"},
        "requestContext": {"http": {"method": method, "path": path}},
        "isBase64Encoded": false,
        "body": body,
    })
    .to_string()
}

/// Invoke `function` with an HTTP API event for `method path`, through the Invoke API.
fn invoke_http(dev: &Dev, function: &str, method: &str, path: &str) -> Response {
    let event = http_event(method, path, "");
    dev.send(
        "POST",
        &format!("/2015-03-31/functions/{function}/invocations"),
        &[],
        event.as_bytes(),
    )
}

/// The error type of a failed invocation, or the proxy result's status and body.
fn outcome(r: &Response) -> Result<(u64, String), String> {
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    if r.header("x-amz-function-error").is_some() {
        return Err(format!(
            "{}: {}",
            v["errorType"].as_str().unwrap_or("?"),
            v["errorMessage"]
        ));
    }
    Ok((
        v["statusCode"].as_u64().unwrap(),
        v["body"].as_str().unwrap_or("").to_owned(),
    ))
}

/// A loopback HTTP server answering every request with `body`; counts its connections.
fn loopback_server(body: &'static str) -> (u16, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let connections = Arc::new(AtomicUsize::new(0));
    let seen = connections.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            seen.fetch_add(1, Ordering::SeqCst);
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf);
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    (port, connections)
}

fn wait_for(dev: &Dev, what: &str, done: impl Fn(&str) -> bool) {
    let start = Instant::now();
    while !done(&dev.output()) {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "{what} did not happen:\n{}",
            dev.output()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_component_serves_routes_and_events_with_its_environment_and_logs_from_a_warm_instance() {
    let dev = Dev::start_with(&service("serve", 1), &["--prewarm", "0"], &[]);

    // An HTTP API route: the component sees the request itself, and its instance stays warm.
    let first = dev.get("/hello");
    assert_eq!(
        (first.status, first.text().as_str()),
        (200, "hello from a component\n"),
        "{}",
        dev.output()
    );
    assert_eq!(first.header("x-served"), Some("1"));
    assert_eq!(
        dev.get("/hello").header("x-served"),
        Some("2"),
        "the warm instance served it"
    );
    let echo = dev.send("POST", "/echo?a=1&b=two%20words", &[("X-Custom", "yes")], b"payload");
    let echoed = echo.json();
    assert_eq!(echoed["method"], "POST");
    assert_eq!(echoed["path"], "/echo");
    assert_eq!(echoed["query"], "a=1&b=two%20words");
    assert_eq!(echoed["headers"]["x-custom"], "yes");
    assert_eq!(echoed["body"], "payload");

    // A REST route: the path without its stage, repeated query values and headers.
    let rest = dev.send(
        "POST",
        "/dev/rest/echo?q=1&q=two%20words",
        &[("X-Multi", "a")],
        b"rest body",
    );
    assert_eq!(rest.status, 200, "{}\n{}", rest.text(), dev.output());
    let rest = rest.json();
    assert_eq!(rest["path"], "/rest/echo");
    assert_eq!(rest["query"], "q=1&q=two%20words");
    assert_eq!(rest["headers"]["x-multi"], "a");
    assert_eq!(rest["body"], "rest body");

    // Its environment: the manifest's, Lambda's reserved variables, and no credentials.
    assert_eq!(dev.get("/env/GREETING").text(), "hello from the manifest");
    assert_eq!(dev.get("/env/AWS_LAMBDA_FUNCTION_NAME").text(), "wasmtest-dev-app");
    assert_eq!(dev.get("/env/AWS_LAMBDA_FUNCTION_MEMORY_SIZE").text(), "1024");
    assert_eq!(dev.get("/env/AWS_SECRET_ACCESS_KEY").status, 404);

    // Any other event is POSTed to /events; the response body is the result. A client context
    // that cannot be a header (JSON with a newline) does not stop the invocation.
    let result = dev.invoke_ok("app", &json!({"order": 7}));
    assert_eq!(result, json!({"received": {"order": 7}}));
    let context = base64_of(b"{\n  \"custom\": {\"k\": 1}\n}");
    let with_context = dev.send(
        "POST",
        "/2015-03-31/functions/app/invocations",
        &[("X-Amz-Client-Context", &context)],
        br#"{"order": 8}"#,
    );
    assert_eq!(with_context.status, 200, "{}", with_context.text());
    assert_eq!(with_context.json(), json!({"received": {"order": 8}}));

    // Its stdout and stderr, tagged with the invocation's request id.
    let r = invoke_http(&dev, "app", "GET", "/log");
    let id = r.header("x-amzn-requestid").unwrap().to_owned();
    assert_eq!(outcome(&r), Ok((200, "logged".to_owned())));
    wait_for(&dev, "the component's log lines", |o| {
        o.lines().any(|l| l.contains(&id) && l.contains("a line on stdout"))
            && o.lines().any(|l| l.contains(&id) && l.contains("a line on stderr"))
    });

    // An asynchronous invocation and a queue message reach it through the event sources.
    let accepted = dev.send(
        "POST",
        "/2015-03-31/functions/app/invocations",
        &[("X-Amz-Invocation-Type", "Event")],
        br#"{"async": true}"#,
    );
    assert_eq!(accepted.status, 202, "{}", accepted.text());
    let sent = dev.send(
        "POST",
        "/",
        &[
            ("X-Amz-Target", "AmazonSQS.SendMessage"),
            ("Content-Type", "application/x-amz-json-1.0"),
        ],
        json!({"QueueUrl": format!("{}/000000000000/wasm-jobs", dev.base), "MessageBody": "a job"})
            .to_string()
            .as_bytes(),
    );
    assert_eq!(sent.status, 200, "{}", sent.text());
    // The two invokes above, the asynchronous event and the queue's batch: four events.
    wait_for(&dev, "the asynchronous and queue events", |o| {
        o.matches("event for request").count() >= 4
    });
    let metrics = dev.get("/_sylph/metrics").text();
    // The pool's rules and metrics as for any function: instances reused, not one per request
    // (the asynchronous and queue events may have run beside another, on a second instance).
    let cold = metric(&metrics, "sylph_starts_total{function=\"app\",kind=\"cold\"}");
    let warm = metric(&metrics, "sylph_starts_total{function=\"app\",kind=\"warm\"}");
    assert!((1.0..=2.0).contains(&cold) && warm >= 8.0, "{metrics}");
}

#[test]
fn calls_out_reach_the_table_api_as_the_function_and_only_the_listed_hosts() {
    let (allowed_port, allowed_seen) = loopback_server("from the allowed host");
    let (unlisted_port, unlisted_seen) = loopback_server("must not be reached");
    let dev = Dev::start_with(&service("outbound", allowed_port), &["--prewarm", "0"], &[]);

    // The table API, signed by Sylph as the function: its role allows the items table...
    let put = dev.send("PUT", "/items/1", &[], b"first item");
    assert_eq!((put.status, put.text().as_str()), (200, "stored"), "{}", dev.output());
    let got = dev.get("/items/1");
    assert_eq!((got.status, got.text().as_str()), (200, "first item"));
    // ...and not the secrets table, which another function of the service is pointed at.
    let denied = invoke_http(&dev, "other", "PUT", "/items/1");
    let (status, body) = outcome(&denied).unwrap();
    assert_eq!(status, 500);
    assert!(body.starts_with("AccessDeniedException"), "{body}");

    // Outgoing HTTP: the listed loopback host answers; an unlisted one is never connected to.
    let fetched = dev.get(&format!("/fetch?url=http://127.0.0.1:{allowed_port}/x"));
    assert_eq!(
        (fetched.status, fetched.text().as_str()),
        (200, "from the allowed host")
    );
    assert_eq!(allowed_seen.load(Ordering::SeqCst), 1);
    let refused = dev.get(&format!("/fetch?url=http://127.0.0.1:{unlisted_port}/x"));
    assert_eq!(
        (refused.status, refused.text().as_str()),
        (502, "ErrorCode::HttpRequestDenied")
    );
    let refused = dev.get(&format!("/fetch?url=http://localhost:{allowed_port}/x"));
    assert_eq!(
        (refused.status, refused.text().as_str()),
        (502, "ErrorCode::HttpRequestDenied")
    );
    assert_eq!(unlisted_seen.load(Ordering::SeqCst), 0);
    assert_eq!(allowed_seen.load(Ordering::SeqCst), 1);

    // Sylph's own port under another name is still Sylph, as the function: a call with forged
    // credentials to `localhost:<port>` is signed again as `other`, whose role does not grant
    // the secrets table (unsigned on the public port, it would be a local tool's, unchecked).
    let port = dev.base.rsplit(':').next().unwrap();
    for host in ["localhost", "127.0.0.2", "[::1]"] {
        let relay = json!({
            "method": "POST",
            "url": format!("http://{host}:{port}/"),
            "headers": [
                ["content-type", "application/x-amz-json-1.0"],
                ["x-amz-target", "DynamoDB_20120810.PutItem"],
                ["authorization", "AWS4-HMAC-SHA256 Credential=SYLPHLOCALACCESSKEY/20260101/us-east-1/dynamodb/aws4_request, SignedHeaders=host, Signature=00"],
            ],
            "body": json!({"TableName": "wasm-secrets", "Item": {"id": {"S": "stolen"}}}).to_string(),
        });
        let event = http_event("POST", "/relay", &relay.to_string());
        let r = dev.send("POST", "/2015-03-31/functions/other/invocations", &[], event.as_bytes());
        let (status, body) = outcome(&r).unwrap();
        assert_eq!(status, 200, "{host}: {body}");
        let answer: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(answer["status"], 400, "{host}: {answer}");
        assert!(
            answer["body"].as_str().unwrap().contains("AccessDeniedException"),
            "{host}: {answer}"
        );
    }
}

#[test]
fn memory_timeouts_busy_loops_and_traps_cost_one_request_each() {
    let dev = Dev::start_with(&service("limits", 1), &["--prewarm", "0", "--concurrency", "16"], &[]);

    // memorySize 128: growing past it fails the request as a process function's would.
    let r = invoke_http(&dev, "small", "GET", "/grow/200");
    let err = outcome(&r).unwrap_err();
    assert!(
        err.starts_with("Runtime.OutOfMemory") && err.contains("128 MB"),
        "{err}"
    );
    assert_eq!(
        outcome(&invoke_http(&dev, "small", "GET", "/grow/16")),
        Ok((200, "grew by 16 MB".to_owned()))
    );

    // A 2 s timeout.
    let err = outcome(&invoke_http(&dev, "small", "GET", "/sleep/10000")).unwrap_err();
    assert!(err.starts_with("Sandbox.Timedout"), "{err}");
    let err = outcome(&invoke_http(&dev, "small", "GET", "/spin")).unwrap_err();
    assert!(err.starts_with("Sandbox.Timedout"), "{err}");
    assert_eq!(outcome(&invoke_http(&dev, "small", "GET", "/hello")).unwrap().0, 200);

    // Busy loops on more instances than there are worker threads hold none of them: the
    // server answers another request while every loop is still running (their timeout is 60 s).
    let spinning: Vec<TcpStream> = (0..4).map(|_| start_spin(&dev)).collect();
    let start = Instant::now();
    while metric(
        &dev.get("/_sylph/metrics").text(),
        "sylph_concurrent_executions{function=\"spinner\"}",
    ) < 4.0
    {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the busy loops did not start"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(dev.get("/hello").status, 200);
    // Their callers leave: the loops stop.
    drop(spinning);

    // A trap (a Rust panic) fails its request; the next one gets a new instance.
    let err = outcome(&invoke_http(&dev, "small", "GET", "/trap")).unwrap_err();
    assert!(
        err.starts_with("Runtime.ExitError") && err.contains("wasm trap"),
        "{err}"
    );
    assert!(
        dev.wait_for_output("the component was asked to trap"),
        "{}",
        dev.output()
    );
    assert_eq!(outcome(&invoke_http(&dev, "small", "GET", "/hello")).unwrap().0, 200);
}

#[test]
fn a_caller_that_disconnects_stops_the_component_and_a_restart_does_not_recompile() {
    let config = service("disconnect", 1);
    let mut dev = Dev::start_with(&config, &["--prewarm", "0"], &[]);
    wait_for(&dev, "the component to be ready", |o| {
        o.contains("compiled in") || o.contains("read from the compiled-code cache")
    });

    // A busy loop whose caller goes away: its work stops (the 60 s timeout is far off).
    let stream = start_spin(&dev);
    dev.wait_in_flight("spinner");
    drop(stream);
    let start = Instant::now();
    while metric(
        &dev.get("/_sylph/metrics").text(),
        "sylph_concurrent_executions{function=\"spinner\"}",
    ) > 0.0
    {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the component kept running after its caller left"
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    // The compiled component was kept: a restart reads it instead of compiling again.
    dev.stop();
    let dev = Dev::start_with(&config, &["--prewarm", "0"], &[]);
    wait_for(&dev, "the cached component", |o| {
        o.contains("read from the compiled-code cache")
    });
    assert_eq!(dev.get("/hello").status, 200);
}

/// Invoke `spinner` (a busy loop, 60 s timeout) on a connection of its own, left open.
fn start_spin(dev: &Dev) -> TcpStream {
    let authority = dev.base.strip_prefix("http://").unwrap();
    let mut stream = TcpStream::connect(authority).unwrap();
    let event = http_event("GET", "/spin", "");
    write!(
        stream,
        "POST /2015-03-31/functions/spinner/invocations HTTP/1.1\r\nHost: {authority}\r\nContent-Length: {}\r\n\r\n{event}",
        event.len()
    )
    .unwrap();
    stream
}

/// `wasmtime serve` (the wasmtime CLI that scripts/test installs) on a free loopback port.
struct WasmtimeServe {
    child: std::process::Child,
    base: String,
}

impl Drop for WasmtimeServe {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn wasmtime_serve(wasm: &std::path::Path) -> WasmtimeServe {
    let program = std::env::var_os("WASMTIME").map(PathBuf::from).unwrap_or_else(|| {
        PathBuf::from(std::env::var_os("HOME").unwrap()).join(".cache/sylph-bench-tools/wasmtime/bin/wasmtime")
    });
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let child = Command::new(&program)
        .args([
            "serve",
            "-S",
            "cli",
            "--env",
            "GREETING=hello from the manifest",
            "--addr",
        ])
        .arg(format!("127.0.0.1:{port}"))
        .arg(wasm)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {} (scripts/test installs it): {e}", program.display()));
    let served = WasmtimeServe {
        child,
        base: format!("http://127.0.0.1:{port}"),
    };
    let start = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "wasmtime serve did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    served
}

#[test]
fn the_same_file_answers_the_same_under_wasmtime_serve_and_under_sylph() {
    let dev = Dev::start_with(&service("same", 1), &["--prewarm", "0"], &[]);
    let wasmtime = wasmtime_serve(&component());
    let both = |method: &str, path: &str, body: &[u8]| {
        let ours = dev.send(method, path, &[("X-Custom", "yes")], body);
        let theirs = crate::harness::request(&wasmtime.base, method, path, &[("X-Custom", "yes")], body);
        (ours, theirs)
    };
    for (method, path) in [
        ("GET", "/hello"),
        ("GET", "/env/GREETING"),
        ("GET", "/nowhere"),
        ("GET", "/env/UNSET"),
    ] {
        let (ours, theirs) = both(method, path, b"");
        assert_eq!(
            (ours.status, ours.text()),
            (theirs.status, theirs.text()),
            "{method} {path}"
        );
        assert_eq!(
            ours.header("content-type"),
            theirs.header("content-type"),
            "{method} {path}"
        );
    }
    let (ours, theirs) = both("POST", "/echo?a=1&b=two%20words", b"the body");
    let (ours, theirs): (Value, Value) = (ours.json(), theirs.json());
    for key in ["method", "path", "query", "body"] {
        assert_eq!(ours[key], theirs[key], "{key}");
    }
    assert_eq!(ours["headers"]["x-custom"], theirs["headers"]["x-custom"]);
    assert_eq!(ours["headers"]["content-length"], theirs["headers"]["content-length"]);
}
