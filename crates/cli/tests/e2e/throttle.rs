//! Concurrency limits: a function's reservedConcurrency and the platform-wide limit throttle
//! with Lambda's TooManyRequestsException (and API Gateway's 500) once the queue wait runs out.

use serde_json::Value;

use crate::harness::{request, Dev};

fn service(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("sylph-throttle-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("serverless.yml"),
        "service: throttle\nprovider:\n  runtime: nodejs20.x\nfunctions:\n  slow:\n    handler: h.slow\n    reservedConcurrency: 1\n    events:\n      - httpApi: GET /slow\n  off:\n    handler: h.slow\n    reservedConcurrency: 0\n  other:\n    handler: h.fast\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("h.js"),
        "exports.slow = async () => { await new Promise((r) => setTimeout(r, 1500)); return { statusCode: 200, body: 'done' }; };\nexports.fast = async () => 'fast';\n",
    )
    .unwrap();
    dir
}

#[test]
fn reserved_concurrency_throttles_with_lambdas_error() {
    let dir = service("reserved");
    let dev = Dev::start_with(&dir, &["--queue-timeout", "0"], &[]);
    let base = dev.base.clone();
    let busy = std::thread::spawn(move || request(&base, "GET", "/slow", &[], b"").status);
    dev.wait_in_flight("slow");

    let r = dev.send("POST", "/2015-03-31/functions/slow/invocations", &[], b"{}");
    assert_eq!(r.status, 429, "{}", r.text());
    assert_eq!(r.header("x-amzn-errortype"), Some("TooManyRequestsException"));
    let body: Value = r.json();
    assert_eq!(body["Reason"], "ReservedFunctionConcurrentInvocationLimitExceeded");

    let r = dev.get("/slow");
    assert_eq!(r.status, 500, "API Gateway answers a throttled integration with a 500");

    // Other functions are not affected.
    let r = dev.send("POST", "/2015-03-31/functions/other/invocations", &[], b"{}");
    assert_eq!((r.status, r.text()), (200, "\"fast\"".to_owned()));
    assert_eq!(busy.join().unwrap(), 200);

    // reservedConcurrency: 0 turns a function off.
    let r = dev.send("POST", "/2015-03-31/functions/off/invocations", &[], b"{}");
    assert_eq!(r.status, 429);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_platform_limit_queues_then_throttles() {
    let dir = service("platform");
    // One slot for the whole platform; a second request waits up to 1 s, the first takes 1.5 s.
    let dev = Dev::start_with(&dir, &["--concurrency", "1", "--queue-timeout", "1"], &[]);
    let base = dev.base.clone();
    let busy =
        std::thread::spawn(move || request(&base, "POST", "/2015-03-31/functions/slow/invocations", &[], b"{}").status);
    dev.wait_in_flight("slow");
    let r = dev.send("POST", "/2015-03-31/functions/other/invocations", &[], b"{}");
    assert_eq!(r.status, 429, "{}", r.text());
    assert_eq!(r.json()["Reason"], "ConcurrentInvocationLimitExceeded");
    assert_eq!(busy.join().unwrap(), 200);
    // Once the slot is free, the queue moves again.
    let r = dev.send("POST", "/2015-03-31/functions/other/invocations", &[], b"{}");
    assert_eq!(r.status, 200);
    let _ = std::fs::remove_dir_all(&dir);
}
