//! API Gateway REST (payload 1.0) and HTTP API (payload 2.0) events, response mapping, CORS and
//! unknown routes, through the real server and a real Node.js function.

use serde_json::json;

use crate::harness::{example, Dev};

#[test]
fn rest_and_http_api_events_reach_node_functions() {
    let dev = Dev::start(&example("hello-node"));

    let r = dev.get("/dev/hello?name=ada");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(
        r.json(),
        json!({"message": "Hello from hello-node-dev-hello", "stage": "dev", "name": "ada"})
    );

    // Payload 1.0: greedy path parameter, multi-value query and headers, text body.
    let r = dev.send(
        "POST",
        "/dev/echo/a/b%20c?x=1&x=2&y=z",
        &[("X-Custom", "one"), ("Content-Type", "text/plain"), ("Cookie", "k=v")],
        b"plain body",
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header_all("set-cookie"), vec!["a=1", "b=2"]);
    let ev = r.json();
    assert_eq!(ev["resource"], "/echo/{proxy+}");
    assert_eq!(ev["httpMethod"], "POST");
    assert_eq!(ev["path"], "/echo/a/b%20c");
    assert_eq!(ev["pathParameters"], json!({"proxy": "a/b c"}));
    assert_eq!(ev["queryStringParameters"], json!({"x": "2", "y": "z"}));
    assert_eq!(
        ev["multiValueQueryStringParameters"],
        json!({"x": ["1", "2"], "y": ["z"]})
    );
    assert_eq!(ev["headers"]["X-Custom"], "one");
    assert_eq!(ev["multiValueHeaders"]["X-Custom"], json!(["one"]));
    assert_eq!(ev["body"], "plain body");
    assert_eq!(ev["isBase64Encoded"], false);
    assert_eq!(ev["requestContext"]["stage"], "dev");
    assert_eq!(ev["requestContext"]["path"], "/dev/echo/a/b%20c");

    // Payload 2.0 for the same function through an httpApi route.
    let r = dev.send(
        "POST",
        "/v2/echo/42?a=1&a=2",
        &[("Cookie", "c1=x; c2=y"), ("Content-Type", "application/json")],
        b"{\"k\":true}",
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let ev = r.json();
    assert_eq!(ev["version"], "2.0");
    assert_eq!(ev["routeKey"], "POST /v2/echo/{id}");
    assert_eq!(ev["rawPath"], "/v2/echo/42");
    assert_eq!(ev["rawQueryString"], "a=1&a=2");
    assert_eq!(ev["queryStringParameters"], json!({"a": "1,2"}));
    assert_eq!(ev["pathParameters"], json!({"id": "42"}));
    assert_eq!(ev["cookies"], json!(["c1=x", "c2=y"]));
    assert_eq!(ev["body"], "{\"k\":true}");
    assert_eq!(ev["requestContext"]["http"]["method"], "POST");

    // Payload 2.0 response inference: a bare object becomes a 200 JSON response.
    let r = dev.get("/v2/hello");
    assert_eq!((r.status, r.json()), (200, json!({"hello": "world"})));

    // A nested-path callback-style handler.
    let r = dev.get("/dev/callback");
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["style"], "callback");

    // Binary bodies travel base64-encoded both ways.
    let r = dev.send(
        "POST",
        "/v2/binary",
        &[("Content-Type", "application/octet-stream")],
        &[1, 2, 3, 255],
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.body, vec![255, 3, 2, 1]);
    assert_eq!(r.header("content-type"), Some("application/octet-stream"));
}

#[test]
fn cors_preflight_and_unknown_routes() {
    let dev = Dev::start(&example("hello-node"));

    // `cors: true` on an http event: API Gateway answers the preflight itself.
    let r = dev.send(
        "OPTIONS",
        "/dev/hello",
        &[
            ("Origin", "http://example.com"),
            ("Access-Control-Request-Method", "GET"),
        ],
        b"",
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    assert_eq!(r.header("access-control-allow-methods"), Some("OPTIONS,GET"));
    assert!(r
        .header("access-control-allow-headers")
        .unwrap()
        .contains("Content-Type"));

    // provider.httpApi.cors: preflight for httpApi routes, and CORS headers on responses.
    let r = dev.send("OPTIONS", "/v2/hello", &[("Origin", "http://example.com")], b"");
    assert_eq!(r.status, 200);
    assert!(r.header("access-control-allow-methods").unwrap().contains("GET"));
    let r = dev.send("GET", "/v2/hello", &[("Origin", "http://example.com")], b"");
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));

    // Unknown routes: a REST API answers 403 Missing Authentication Token, an HTTP API 404.
    let r = dev.get("/dev/no/such/route");
    assert_eq!(
        (r.status, r.json()),
        (403, json!({"message": "Missing Authentication Token"}))
    );
    let r = dev.send("DELETE", "/dev/hello", &[], b"");
    assert_eq!(r.status, 403);
    let r = dev.get("/nothing-here");
    assert_eq!((r.status, r.json()), (404, json!({"message": "Not Found"})));
}
