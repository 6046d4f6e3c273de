//! Lambda events as wasi:http requests, and the component's responses as Lambda results.
//!
//! An API Gateway event (REST payload 1.0 or HTTP API 2.0) becomes the HTTP request it
//! describes, so a component sees an ordinary request, as under `wasmtime serve`; its
//! response becomes the proxy result the gateway turns back into HTTP. Any other event
//! (the Invoke API, schedules, queues, streams) is a `POST /events` whose body is the event's
//! JSON, and a 2xx response's body is the result, as the AWS Lambda Web Adapter passes events.

use std::collections::BTreeMap;

use base64::Engine as _;
use bytes::Bytes;
use http_body_util::Full;
use serde::{Deserialize, Serialize};

/// Where non-HTTP events are sent.
pub const EVENTS_PATH: &str = "/events";

/// Which kind of invocation a payload is, and so how the response maps back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// API Gateway REST (payload format 1.0).
    Rest,
    /// HTTP API (payload format 2.0).
    HttpApi,
    /// Anything else.
    Event,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ApiEvent {
    version: Option<String>,
    http_method: Option<String>,
    path: Option<String>,
    multi_value_headers: Option<BTreeMap<String, Vec<String>>>,
    headers: Option<BTreeMap<String, String>>,
    multi_value_query_string_parameters: Option<BTreeMap<String, Vec<String>>>,
    raw_path: Option<String>,
    raw_query_string: Option<String>,
    cookies: Option<Vec<String>>,
    body: Option<String>,
    #[serde(default)]
    is_base64_encoded: bool,
    request_context: Option<RequestContext>,
}

#[derive(Deserialize)]
struct RequestContext {
    http: Option<HttpContext>,
}

#[derive(Deserialize)]
struct HttpContext {
    method: String,
}

/// The wasi:http request for `payload`, with the Lambda invocation's own headers added.
pub fn request(payload: &Bytes, lambda_headers: &[(&str, &str)]) -> (Shape, http::Request<Full<Bytes>>) {
    let api = serde_json::from_slice::<ApiEvent>(payload)
        .ok()
        .filter(|e| e.request_context.is_some());
    let built = api.and_then(|e| {
        let shape = if e.version.as_deref() == Some("2.0") && e.raw_path.is_some() {
            Shape::HttpApi
        } else if e.http_method.is_some() && e.path.is_some() {
            Shape::Rest
        } else {
            return None;
        };
        http_request(e, shape, lambda_headers).map(|r| (shape, r))
    });
    if let Some(built) = built {
        return built;
    }
    let mut request = http::Request::new(Full::new(payload.clone()));
    *request.method_mut() = http::Method::POST;
    *request.uri_mut() = http::Uri::from_static(EVENTS_PATH);
    let headers = request.headers_mut();
    headers.insert(http::header::HOST, http::HeaderValue::from_static("localhost"));
    headers.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    add_lambda_headers(headers, lambda_headers);
    (Shape::Event, request)
}

/// Lambda's invocation headers; a value that cannot be a header (a client context with a
/// newline) is left out rather than failing the invocation.
fn add_lambda_headers(headers: &mut http::HeaderMap, lambda_headers: &[(&str, &str)]) {
    for (name, value) in lambda_headers {
        if let (Ok(name), Ok(value)) = (
            http::HeaderName::from_bytes(name.as_bytes()),
            http::HeaderValue::from_str(value),
        ) {
            headers.insert(name, value);
        }
    }
}

fn http_request(e: ApiEvent, shape: Shape, lambda_headers: &[(&str, &str)]) -> Option<http::Request<Full<Bytes>>> {
    let (method, path, query) = match shape {
        Shape::HttpApi => (
            e.request_context?.http?.method,
            e.raw_path?,
            e.raw_query_string.filter(|q| !q.is_empty()),
        ),
        _ => {
            let query = e.multi_value_query_string_parameters.map(|params| {
                let encode = |s: &str| percent_encoding::utf8_percent_encode(s, QUERY).to_string();
                params
                    .iter()
                    .flat_map(|(k, values)| values.iter().map(move |v| format!("{}={}", encode(k), encode(v))))
                    .collect::<Vec<_>>()
                    .join("&")
            });
            (e.http_method?, e.path?, query.filter(|q| !q.is_empty()))
        }
    };
    let uri = match query {
        Some(q) => format!("{path}?{q}"),
        None => path,
    };
    let body = match e.body {
        Some(b) if e.is_base64_encoded => Bytes::from(base64::engine::general_purpose::STANDARD.decode(b).ok()?),
        Some(b) => Bytes::from(b),
        None => Bytes::new(),
    };
    let mut request = http::Request::new(Full::new(body));
    *request.method_mut() = http::Method::from_bytes(method.as_bytes()).ok()?;
    *request.uri_mut() = uri.parse().ok()?;
    let headers = request.headers_mut();
    // A header that cannot be one (it arrived as bytes that are not text) is left out.
    let mut add = |name: &str, value: &str| {
        if let (Ok(name), Ok(value)) = (
            http::HeaderName::from_bytes(name.as_bytes()),
            http::HeaderValue::from_str(value),
        ) {
            headers.append(name, value);
        }
    };
    match (shape, e.multi_value_headers) {
        (Shape::Rest, Some(multi)) => {
            for (name, values) in &multi {
                for value in values {
                    add(name, value);
                }
            }
        }
        _ => {
            for (name, value) in &e.headers.unwrap_or_default() {
                add(name, value);
            }
        }
    }
    if let Some(cookies) = e.cookies.filter(|c| !c.is_empty()) {
        add("cookie", &cookies.join("; "));
    }
    // wasi:http needs an authority it can read as text: a Host that is not (or none) is
    // `localhost`.
    if headers.get(http::header::HOST).is_none_or(|h| h.to_str().is_err()) {
        headers.insert(http::header::HOST, http::HeaderValue::from_static("localhost"));
    }
    add_lambda_headers(headers, lambda_headers);
    Some(request)
}

/// Characters a query string's names and values keep encoded.
const QUERY: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RestResult<'a> {
    status_code: u16,
    multi_value_headers: BTreeMap<&'a str, Vec<&'a str>>,
    body: &'a str,
    is_base64_encoded: bool,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct HttpApiResult<'a> {
    status_code: u16,
    headers: BTreeMap<&'a str, String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    cookies: Vec<&'a str>,
    body: &'a str,
    is_base64_encoded: bool,
}

/// What the invocation returns for the component's response: the proxy result of an API
/// Gateway event, or for other events the body of a 2xx response (`Err` with the status and
/// body of any other).
pub fn result(shape: Shape, parts: &http::response::Parts, body: &Bytes) -> Result<Bytes, (u16, Bytes)> {
    let (text, is_base64): (std::borrow::Cow<str>, bool) = match std::str::from_utf8(body) {
        Ok(t) => (t.into(), false),
        Err(_) => (base64::engine::general_purpose::STANDARD.encode(body).into(), true),
    };
    let status = parts.status.as_u16();
    fn header_text(v: &http::HeaderValue) -> Option<&str> {
        std::str::from_utf8(v.as_bytes()).ok()
    }
    let json = match shape {
        Shape::Event => {
            if !parts.status.is_success() {
                return Err((status, body.clone()));
            }
            if body.is_empty() {
                return Ok(Bytes::from_static(b"null"));
            }
            return Ok(body.clone());
        }
        Shape::Rest => {
            let mut headers: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
            for (name, value) in &parts.headers {
                if let Some(v) = header_text(value) {
                    headers.entry(name.as_str()).or_default().push(v);
                }
            }
            serde_json::to_vec(&RestResult {
                status_code: status,
                multi_value_headers: headers,
                body: &text,
                is_base64_encoded: is_base64,
            })
        }
        Shape::HttpApi => {
            let mut headers: BTreeMap<&str, String> = BTreeMap::new();
            let mut cookies = Vec::new();
            for (name, value) in &parts.headers {
                let Some(v) = header_text(value) else { continue };
                if name == http::header::SET_COOKIE {
                    cookies.push(v);
                    continue;
                }
                let joined = headers.entry(name.as_str()).or_default();
                if !joined.is_empty() {
                    joined.push_str(", ");
                }
                joined.push_str(v);
            }
            serde_json::to_vec(&HttpApiResult {
                status_code: status,
                headers,
                cookies,
                body: &text,
                is_base64_encoded: is_base64,
            })
        }
    };
    Ok(Bytes::from(json.unwrap_or_default()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_http_api_event_is_the_request_it_describes() {
        let payload = Bytes::from_static(
            br#"{"version":"2.0","routeKey":"GET /todos","rawPath":"/todos/7","rawQueryString":"a=1&b=%20",
                "cookies":["s=1","t=2"],"headers":{"host":"api.local","x-one":"1"},
                "requestContext":{"http":{"method":"GET","path":"/todos/7"}},"isBase64Encoded":true,"body":"AAEC"}"#,
        );
        let (shape, req) = request(&payload, &[("lambda-runtime-aws-request-id", "r1")]);
        assert_eq!(shape, Shape::HttpApi);
        assert_eq!(req.method(), "GET");
        assert_eq!(req.uri(), "/todos/7?a=1&b=%20");
        assert_eq!(req.headers()["host"], "api.local");
        assert_eq!(req.headers()["cookie"], "s=1; t=2");
        assert_eq!(req.headers()["lambda-runtime-aws-request-id"], "r1");
    }

    #[test]
    fn a_rest_event_keeps_repeated_headers_and_query_values() {
        let payload = Bytes::from_static(
            br#"{"resource":"/items","path":"/items","httpMethod":"POST",
                "multiValueHeaders":{"X-Multi":["a","b"],"Host":["h"]},"headers":{"X-Multi":"b"},
                "multiValueQueryStringParameters":{"q":["x y","z"]},"requestContext":{"stage":"dev"},"body":"hi"}"#,
        );
        let (shape, req) = request(&payload, &[]);
        assert_eq!(shape, Shape::Rest);
        assert_eq!(req.uri(), "/items?q=x%20y&q=z");
        let multi: Vec<_> = req.headers().get_all("x-multi").iter().collect();
        assert_eq!(multi, ["a", "b"]);
    }

    #[test]
    fn headers_that_cannot_be_headers_are_left_out_not_fatal() {
        // A Host that is not text, a client context with a newline: still the request.
        let payload = Bytes::from(
            "{\"version\":\"2.0\",\"rawPath\":\"/x\",\"headers\":{\"host\":\"caf\u{e9}.local\",\"x-ok\":\"1\"},\"requestContext\":{\"http\":{\"method\":\"GET\"}}}",
        );
        let (shape, req) = request(&payload, &[("lambda-runtime-client-context", "{\n}")]);
        assert_eq!(shape, Shape::HttpApi);
        assert_eq!(req.headers()["host"], "localhost");
        assert_eq!(req.headers()["x-ok"], "1");
        assert!(req.headers().get("lambda-runtime-client-context").is_none());
        let (shape, req) = request(&Bytes::from_static(b"[]"), &[("lambda-runtime-client-context", "{\n}")]);
        assert_eq!(shape, Shape::Event);
        assert!(req.headers().get("lambda-runtime-client-context").is_none());
    }

    #[test]
    fn other_events_are_posted_as_json() {
        let payload = Bytes::from_static(br#"{"Records":[{"body":"hello"}]}"#);
        let (shape, req) = request(&payload, &[]);
        assert_eq!(shape, Shape::Event);
        assert_eq!((req.method().as_str(), req.uri().path()), ("POST", EVENTS_PATH));
        // A payload that merely names an HTTP method is not an API Gateway event.
        let (shape, _) = request(&Bytes::from_static(br#"{"httpMethod":"GET","path":"/"}"#), &[]);
        assert_eq!(shape, Shape::Event);
        let (shape, _) = request(&Bytes::from_static(b"not json"), &[]);
        assert_eq!(shape, Shape::Event);
    }

    #[test]
    fn responses_become_proxy_results() {
        let response = http::Response::builder()
            .status(201)
            .header("content-type", "text/plain")
            .header("set-cookie", "a=1")
            .header("x-two", "1")
            .header("x-two", "2")
            .body(())
            .unwrap();
        let (parts, ()) = response.into_parts();
        let v2: serde_json::Value =
            serde_json::from_slice(&result(Shape::HttpApi, &parts, &Bytes::from_static(b"made")).unwrap()).unwrap();
        assert_eq!(v2["statusCode"], 201);
        assert_eq!(v2["headers"]["x-two"], "1, 2");
        assert_eq!(v2["cookies"][0], "a=1");
        assert_eq!(v2["body"], "made");
        let v1: serde_json::Value =
            serde_json::from_slice(&result(Shape::Rest, &parts, &Bytes::from_static(&[0xff, 0])).unwrap()).unwrap();
        assert_eq!(v1["multiValueHeaders"]["x-two"], serde_json::json!(["1", "2"]));
        assert_eq!(v1["isBase64Encoded"], true);
        assert_eq!(v1["body"], "/wA=");
        assert_eq!(result(Shape::Event, &parts, &Bytes::from_static(b"{}")).unwrap(), "{}");
        let (failed, ()) = http::Response::builder().status(500).body(()).unwrap().into_parts();
        assert_eq!(
            result(Shape::Event, &failed, &Bytes::from_static(b"no")).unwrap_err(),
            (500, Bytes::from_static(b"no"))
        );
    }
}
