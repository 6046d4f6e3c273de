//! A Flask service as serverless-wsgi and serverless-python-requirements run it: Sylph installs
//! requirements.txt with pip (from wheels the test set-up downloaded, so the test stays on this
//! machine) and serves the app through its WSGI adapter, on REST and HTTP API routes.

use serde_json::json;

use crate::harness::{repo_root, Dev};

#[test]
fn a_flask_service_runs_unchanged() {
    let wheels = repo_root().join("crates/cli/tests/sdk/wheels");
    assert!(
        wheels.is_dir(),
        "scripts/test downloads the wheels into {}",
        wheels.display()
    );
    let config = repo_root().join("crates/cli/tests/fixtures/flask-service/serverless.yml");
    let dev = Dev::start_with(
        &config,
        &[],
        &[("PIP_NO_INDEX", "1"), ("PIP_FIND_LINKS", wheels.to_str().unwrap())],
    );
    let out = dev.output();
    assert!(
        out.contains("plugin serverless-wsgi: functions with handler wsgi_handler.handler serve app.app"),
        "{out}"
    );

    // REST (payload 1.0), under the stage: the app's own URLs carry it.
    let r = dev.get("/dev/items/42?q=a&q=b");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json(), json!({"id": "42", "q": ["a", "b"], "url": "/dev/items/42"}));

    // Binary bodies both ways, and the app's status code.
    let body: Vec<u8> = (0..=255u8).collect();
    let r = dev.send(
        "POST",
        "/dev/echo",
        &[("Content-Type", "application/octet-stream")],
        &body,
    );
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.body, body);

    // HTTP API (payload 2.0): cookies in and out.
    let r = dev.send("GET", "/cookies", &[("Cookie", "session=abc")], b"");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json(), json!({"seen": "abc"}));
    let mut set = r.header_all("set-cookie");
    set.sort();
    assert!(set[0].starts_with("a=1") && set[1].starts_with("b=2"), "{set:?}");
    let r = dev.get("/items/7");
    assert_eq!(r.json()["url"], "/items/7");

    // Flask's own 404 comes back as the app answered it.
    assert_eq!(dev.get("/dev/nothing-here").status, 404);
}
