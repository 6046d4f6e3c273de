//! API Gateway's Lambda proxy integration: building the event a function receives (REST API
//! payload 1.0, HTTP API payload 2.0) and turning the function's answer into an HTTP response.

use std::collections::BTreeMap;

use base64::Engine as _;
use bytes::Bytes;
use hyper::HeaderMap;
use serde_json::{json, Map, Value};
use sylph_model::LOCAL_ACCOUNT_ID;
use sylph_telemetry::UtcTime;

use crate::routes::{decode, Match};

/// The parts of an HTTP request an event is built from.
pub struct RequestParts<'a> {
    pub method: &'a str,
    /// The raw (still percent-encoded) path.
    pub path: &'a str,
    pub query: Option<&'a str>,
    pub headers: &'a HeaderMap,
    pub body: &'a [u8],
    pub source_ip: &'a str,
    pub protocol: &'a str,
}

/// An HTTP response produced from a function's result.
#[derive(Debug, PartialEq)]
pub struct MappedResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
}

pub(crate) const API_ID: &str = "sylphlocal";

/// `content-type` → `Content-Type`: REST APIs hand headers over with the case the client sent;
/// HTTP/1.1 clients send title case, and hyper has already folded names to lower case.
fn title_case(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut upper = true;
    for ch in name.chars() {
        if upper {
            out.extend(ch.to_uppercase());
        } else {
            out.push(ch);
        }
        upper = ch == '-';
    }
    out
}

fn user_agent(headers: &HeaderMap) -> &str {
    headers.get("user-agent").and_then(|v| v.to_str().ok()).unwrap_or("")
}

fn host(headers: &HeaderMap) -> &str {
    headers.get("host").and_then(|v| v.to_str().ok()).unwrap_or("localhost")
}

/// Query string pairs, decoded (`+` is a space, as API Gateway treats it).
fn query_pairs(query: Option<&str>) -> Vec<(String, String)> {
    let Some(q) = query else { return Vec::new() };
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(&k.replace('+', " ")), decode(&v.replace('+', " ")))
        })
        .collect()
}

/// Whether a body can be handed over as text; anything else is base64-encoded.
fn is_text(headers: &HeaderMap, body: &[u8]) -> bool {
    let ct = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    let textual = ct.is_empty()
        || ct.starts_with("text/")
        || ct.contains("json")
        || ct.contains("xml")
        || ct.contains("javascript")
        || ct.contains("x-www-form-urlencoded")
        || ct.contains("graphql")
        || ct.contains("yaml");
    textual && std::str::from_utf8(body).is_ok()
}

fn body_value(headers: &HeaderMap, body: &[u8]) -> (Value, bool) {
    if body.is_empty() {
        return (Value::Null, false);
    }
    if is_text(headers, body) {
        (Value::String(String::from_utf8_lossy(body).into_owned()), false)
    } else {
        (
            Value::String(base64::engine::general_purpose::STANDARD.encode(body)),
            true,
        )
    }
}

fn params_value(params: &[(String, String)]) -> Value {
    if params.is_empty() {
        Value::Null
    } else {
        Value::Object(
            params
                .iter()
                .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                .collect(),
        )
    }
}

/// What access control learned about a request, handed to the function in its event.
#[derive(Debug, Default)]
pub struct Access {
    /// `requestContext.authorizer`, in the shape of the API flavour.
    pub authorizer: Option<Value>,
    /// The API key the request carried (`private: true` routes).
    pub api_key: Option<ApiKeyUsed>,
    /// The signer of an `aws_iam` request.
    pub iam: Option<IamCaller>,
}

#[derive(Debug)]
pub struct ApiKeyUsed {
    pub id: String,
    pub value: String,
}

/// Who signed an `aws_iam` request.
#[derive(Debug)]
pub struct IamCaller {
    pub access_key: String,
    /// `AROA…:function` or the key itself for a key Sylph did not issue.
    pub caller: String,
    pub user_arn: String,
    /// The Cognito identity the signer's credentials came from (`--cognito-identity-id`).
    pub cognito_identity_id: Option<String>,
}

/// REST API (payload format 1.0) event.
pub fn rest_event(
    req: &RequestParts<'_>,
    m: &Match<'_>,
    stage: &str,
    request_id: &str,
    now: &UtcTime,
    access: &Access,
) -> Vec<u8> {
    serde_json::to_vec(&rest_event_value(req, m, stage, request_id, now, access)).unwrap_or_default()
}

/// The REST API event as a JSON value (a REQUEST authorizer's event is built from it).
pub fn rest_event_value(
    req: &RequestParts<'_>,
    m: &Match<'_>,
    stage: &str,
    request_id: &str,
    now: &UtcTime,
    access: &Access,
) -> Value {
    let mut headers = Map::new();
    let mut multi_headers: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for (name, value) in req.headers {
        let name = title_case(name.as_str());
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        headers.insert(name.clone(), Value::String(value.clone()));
        multi_headers.entry(name).or_default().push(Value::String(value));
    }
    let pairs = query_pairs(req.query);
    let mut query = Map::new();
    let mut multi_query: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for (k, v) in &pairs {
        query.insert(k.clone(), Value::String(v.clone()));
        multi_query.entry(k.clone()).or_default().push(Value::String(v.clone()));
    }
    let (body, is_base64) = body_value(req.headers, req.body);
    let path_without_stage = req
        .path
        .strip_prefix('/')
        .and_then(|p| p.strip_prefix(stage))
        .filter(|p| p.starts_with('/'))
        .unwrap_or(req.path);
    json!({
        "resource": m.route.resource,
        "path": path_without_stage,
        "httpMethod": req.method,
        "headers": if headers.is_empty() { Value::Null } else { Value::Object(headers) },
        "multiValueHeaders": if multi_headers.is_empty() { Value::Null } else { json!(multi_headers) },
        "queryStringParameters": if query.is_empty() { Value::Null } else { Value::Object(query) },
        "multiValueQueryStringParameters": if multi_query.is_empty() { Value::Null } else { json!(multi_query) },
        "pathParameters": params_value(&m.params),
        "stageVariables": Value::Null,
        "requestContext": {
            "accountId": LOCAL_ACCOUNT_ID,
            "apiId": API_ID,
            "resourceId": "local",
            "resourcePath": m.route.resource,
            "httpMethod": req.method,
            "extendedRequestId": request_id,
            "requestTime": now.clf(),
            "requestTimeEpoch": now.epoch_millis,
            "path": req.path,
            "protocol": req.protocol,
            "stage": stage,
            "domainPrefix": API_ID,
            "domainName": host(req.headers),
            "requestId": request_id,
            "identity": {
                "sourceIp": req.source_ip,
                "userAgent": user_agent(req.headers),
                "accountId": access.iam.as_ref().map(|_| LOCAL_ACCOUNT_ID),
                "apiKey": access.api_key.as_ref().map(|k| k.value.as_str()),
                "apiKeyId": access.api_key.as_ref().map(|k| k.id.as_str()),
                "caller": access.iam.as_ref().map(|i| i.caller.as_str()),
                "user": access.iam.as_ref().map(|i| i.caller.as_str()),
                "userArn": access.iam.as_ref().map(|i| i.user_arn.as_str()),
                "accessKey": access.iam.as_ref().map(|i| i.access_key.as_str()),
                "cognitoIdentityId": access.iam.as_ref().and_then(|i| i.cognito_identity_id.as_deref()),
                "cognitoIdentityPoolId": Value::Null,
                "cognitoAuthenticationType": access.iam.as_ref().and_then(|i| i.cognito_identity_id.as_ref()).map(|_| "authenticated"),
                "cognitoAuthenticationProvider": Value::Null,
            },
            "authorizer": access.authorizer.clone().unwrap_or(Value::Null),
        },
        "body": body,
        "isBase64Encoded": is_base64,
    })
}

/// HTTP API (payload format 2.0) event.
pub fn http_api_event(
    req: &RequestParts<'_>,
    m: &Match<'_>,
    request_id: &str,
    now: &UtcTime,
    access: &Access,
) -> Vec<u8> {
    serde_json::to_vec(&http_api_event_value(req, m, request_id, now, access)).unwrap_or_default()
}

/// The HTTP API event as a JSON value (a payload 2.0 authorizer's event is built from it).
pub fn http_api_event_value(
    req: &RequestParts<'_>,
    m: &Match<'_>,
    request_id: &str,
    now: &UtcTime,
    access: &Access,
) -> Value {
    let mut headers: BTreeMap<String, String> = BTreeMap::new();
    let mut cookies = Vec::new();
    for (name, value) in req.headers {
        let value = String::from_utf8_lossy(value.as_bytes());
        if name.as_str() == "cookie" {
            cookies.extend(value.split(';').map(|c| c.trim().to_owned()).filter(|c| !c.is_empty()));
            continue;
        }
        headers
            .entry(name.as_str().to_owned())
            .and_modify(|v| {
                v.push(',');
                v.push_str(&value);
            })
            .or_insert_with(|| value.into_owned());
    }
    let mut query: BTreeMap<String, String> = BTreeMap::new();
    for (k, v) in query_pairs(req.query) {
        query
            .entry(k)
            .and_modify(|e| {
                e.push(',');
                e.push_str(&v);
            })
            .or_insert(v);
    }
    let (body, is_base64) = body_value(req.headers, req.body);
    let mut event = json!({
        "version": "2.0",
        "routeKey": m.route.route_key,
        "rawPath": req.path,
        "rawQueryString": req.query.unwrap_or(""),
        "headers": headers,
        "requestContext": {
            "accountId": LOCAL_ACCOUNT_ID,
            "apiId": API_ID,
            "domainName": host(req.headers),
            "domainPrefix": API_ID,
            "http": {
                "method": req.method,
                "path": req.path,
                "protocol": req.protocol,
                "sourceIp": req.source_ip,
                "userAgent": user_agent(req.headers),
            },
            "requestId": request_id,
            "routeKey": m.route.route_key,
            "stage": "$default",
            "time": now.clf(),
            "timeEpoch": now.epoch_millis,
        },
        "isBase64Encoded": is_base64,
    });
    let obj = event.as_object_mut().expect("event is an object");
    if !cookies.is_empty() {
        obj.insert("cookies".into(), json!(cookies));
    }
    if !query.is_empty() {
        obj.insert("queryStringParameters".into(), json!(query));
    }
    if !m.params.is_empty() {
        obj.insert("pathParameters".into(), params_value(&m.params));
    }
    if !body.is_null() {
        obj.insert("body".into(), body);
    }
    let context = obj
        .get_mut("requestContext")
        .and_then(Value::as_object_mut)
        .expect("requestContext is an object");
    if let Some(authorizer) = &access.authorizer {
        context.insert("authorizer".into(), authorizer.clone());
    }
    if let Some(iam) = &access.iam {
        context.insert(
            "authorizer".into(),
            json!({"iam": {
                "accessKey": iam.access_key,
                "accountId": LOCAL_ACCOUNT_ID,
                "callerId": iam.caller,
                "principalOrgId": Value::Null,
                "userArn": iam.user_arn,
                "userId": iam.caller,
            }}),
        );
    }
    event
}

fn header_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn status_of(v: &Value) -> Result<u16, String> {
    let n = match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    };
    n.filter(|n| (100..=599).contains(n))
        .map(|n| n as u16)
        .ok_or_else(|| format!("statusCode {v} is not a valid HTTP status"))
}

fn mapped_body(obj: &Map<String, Value>) -> Result<Bytes, String> {
    let body = match obj.get("body") {
        None | Some(Value::Null) => return Ok(Bytes::new()),
        Some(Value::String(s)) => s,
        Some(other) => return Err(format!("body must be a string, found {other}")),
    };
    if obj.get("isBase64Encoded").and_then(Value::as_bool).unwrap_or(false) {
        base64::engine::general_purpose::STANDARD
            .decode(body.as_bytes())
            .map(Bytes::from)
            .map_err(|e| format!("body is marked isBase64Encoded but is not valid base64: {e}"))
    } else {
        Ok(Bytes::from(body.clone()))
    }
}

fn with_default_content_type(mut headers: Vec<(String, String)>) -> Vec<(String, String)> {
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("content-type")) {
        headers.push(("Content-Type".into(), "application/json".into()));
    }
    headers
}

/// Map a REST API (1.0) proxy response; `Err` says why it is malformed (API Gateway answers 502).
pub fn rest_response(payload: &[u8]) -> Result<MappedResponse, String> {
    let value: Value = serde_json::from_slice(payload).map_err(|e| format!("response is not JSON: {e}"))?;
    let Value::Object(obj) = value else {
        return Err(format!("response must be an object with statusCode, found {value}"));
    };
    let status = status_of(obj.get("statusCode").ok_or("response has no statusCode")?)?;
    let mut headers = Vec::new();
    if let Some(Value::Object(h)) = obj.get("headers") {
        for (k, v) in h {
            if let Some(v) = header_text(v) {
                headers.push((k.clone(), v));
            }
        }
    }
    if let Some(Value::Object(h)) = obj.get("multiValueHeaders") {
        for (k, vs) in h {
            let Value::Array(vs) = vs else { continue };
            // Single-value headers of the same name are replaced by the multi-value list.
            headers.retain(|(hk, _)| !hk.eq_ignore_ascii_case(k));
            headers.extend(vs.iter().filter_map(header_text).map(|v| (k.clone(), v)));
        }
    }
    Ok(MappedResponse {
        status,
        headers: with_default_content_type(headers),
        body: mapped_body(&obj)?,
    })
}

/// Map an HTTP API (2.0) response, including the inferred form: a result without `statusCode`
/// is sent as a 200 JSON body.
pub fn http_api_response(payload: &[u8]) -> Result<MappedResponse, String> {
    let value: Value = serde_json::from_slice(payload).map_err(|e| format!("response is not JSON: {e}"))?;
    let obj = match value {
        Value::Object(obj) if obj.contains_key("statusCode") => obj,
        other => {
            return Ok(MappedResponse {
                status: 200,
                headers: vec![("Content-Type".into(), "application/json".into())],
                body: Bytes::from(serde_json::to_vec(&other).unwrap_or_default()),
            })
        }
    };
    let status = status_of(&obj["statusCode"])?;
    let mut headers = Vec::new();
    if let Some(Value::Object(h)) = obj.get("headers") {
        for (k, v) in h {
            if let Some(v) = header_text(v) {
                headers.push((k.clone(), v));
            }
        }
    }
    if let Some(Value::Array(cookies)) = obj.get("cookies") {
        headers.extend(
            cookies
                .iter()
                .filter_map(header_text)
                .map(|c| ("Set-Cookie".to_owned(), c)),
        );
    }
    Ok(MappedResponse {
        status,
        headers: with_default_content_type(headers),
        body: mapped_body(&obj)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routes::Router;
    use hyper::header::HeaderValue;
    use sylph_model::{ApiKind, Event, HttpRoute, Service};

    fn router(api: ApiKind, path: &str) -> Router {
        let f = sylph_model::Function {
            key: "f".into(),
            name: "svc-dev-f".into(),
            handler: "h.f".into(),
            runtime: sylph_model::Runtime::Node("nodejs20.x".into()),
            memory_mb: 128,
            ephemeral_mb: 512,
            timeout: std::time::Duration::from_secs(3),
            environment: Default::default(),
            reserved_concurrency: None,
            events: vec![Event::Http(HttpRoute {
                api,
                method: Some("POST".into()),
                path: path.into(),
                catch_all: false,
                cors: None,
                authorizer: None,
                private: false,
                validation: None,
            })],
            artifact: None,
            platform_logs: Default::default(),
            outbound_hosts: Vec::new(),
            role: None,
            on_async: Default::default(),
            layers: Vec::new(),
        };
        Router::new(&Service {
            name: "svc".into(),
            stage: "dev".into(),
            region: "us-east-1".into(),
            root: ".".into(),
            functions: vec![f],
            http_api_cors: None,
            resources: Value::Null,
            custom: Value::Null,
            package_patterns: vec![],
            tables: vec![],
            queues: Vec::new(),
            api_keys: Vec::new(),
            usage_plans: Vec::new(),
            node_build: None,
            python_requirements: None,
            websocket_route_selection: Vec::new(),
        })
    }

    fn headers() -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("content-type", HeaderValue::from_static("application/json"));
        h.append("x-multi", HeaderValue::from_static("a"));
        h.append("x-multi", HeaderValue::from_static("b"));
        h.insert("cookie", HeaderValue::from_static("a=1; b=2"));
        h
    }

    #[test]
    fn rest_event_has_payload_1_0_shape() {
        let r = router(ApiKind::Rest, "/items/{id}");
        let m = r.find("POST", "/dev/items/7").unwrap();
        let h = headers();
        let req = RequestParts {
            method: "POST",
            path: "/dev/items/7",
            query: Some("a=1&a=2&b=x+y"),
            headers: &h,
            body: b"{\"k\":1}",
            source_ip: "127.0.0.1",
            protocol: "HTTP/1.1",
        };
        let now = UtcTime::now();
        let ev: Value = serde_json::from_slice(&rest_event(&req, &m, "dev", "rid", &now, &Access::default())).unwrap();
        assert_eq!(ev["resource"], "/items/{id}");
        assert_eq!(ev["path"], "/items/7");
        assert_eq!(ev["requestContext"]["path"], "/dev/items/7");
        assert_eq!(ev["pathParameters"], json!({"id": "7"}));
        assert_eq!(ev["queryStringParameters"], json!({"a": "2", "b": "x y"}));
        assert_eq!(
            ev["multiValueQueryStringParameters"],
            json!({"a": ["1", "2"], "b": ["x y"]})
        );
        assert_eq!(ev["headers"]["Content-Type"], "application/json");
        assert_eq!(ev["multiValueHeaders"]["X-Multi"], json!(["a", "b"]));
        assert_eq!(ev["body"], "{\"k\":1}");
        assert_eq!(ev["isBase64Encoded"], false);
        assert_eq!(ev["requestContext"]["stage"], "dev");
    }

    #[test]
    fn http_api_event_has_payload_2_0_shape() {
        let r = router(ApiKind::Http, "/items/{id}");
        let m = r.find("POST", "/items/7").unwrap();
        let mut h = headers();
        h.insert("content-type", HeaderValue::from_static("image/png"));
        let req = RequestParts {
            method: "POST",
            path: "/items/7",
            query: Some("a=1&a=2"),
            headers: &h,
            body: &[0xff, 0x00, 0x10],
            source_ip: "127.0.0.1",
            protocol: "HTTP/1.1",
        };
        let ev: Value =
            serde_json::from_slice(&http_api_event(&req, &m, "rid", &UtcTime::now(), &Access::default())).unwrap();
        assert_eq!(ev["version"], "2.0");
        assert_eq!(ev["routeKey"], "POST /items/{id}");
        assert_eq!(ev["rawQueryString"], "a=1&a=2");
        assert_eq!(ev["queryStringParameters"], json!({"a": "1,2"}));
        assert_eq!(ev["headers"]["x-multi"], "a,b");
        assert_eq!(ev["cookies"], json!(["a=1", "b=2"]));
        assert!(ev["headers"].get("cookie").is_none());
        assert_eq!(ev["isBase64Encoded"], true);
        assert_eq!(ev["body"], "/wAQ");
        assert_eq!(ev["requestContext"]["http"]["method"], "POST");
    }

    #[test]
    fn rest_response_mapping() {
        let r = rest_response(br#"{"statusCode":201,"headers":{"X-A":"1","X-N":5},"multiValueHeaders":{"Set-Cookie":["a=1","b=2"]},"body":"hi"}"#).unwrap();
        assert_eq!(r.status, 201);
        assert_eq!(r.body, Bytes::from_static(b"hi"));
        assert!(r.headers.contains(&("X-N".into(), "5".into())));
        assert_eq!(r.headers.iter().filter(|(k, _)| k == "Set-Cookie").count(), 2);
        assert!(r.headers.contains(&("Content-Type".into(), "application/json".into())));
        let b = rest_response(br#"{"statusCode":200,"body":"AAEC","isBase64Encoded":true}"#).unwrap();
        assert_eq!(b.body, Bytes::from_static(&[0, 1, 2]));
        assert!(rest_response(br#"{"body":"x"}"#).is_err());
        assert!(rest_response(br#""just a string""#).is_err());
        assert!(rest_response(br#"{"statusCode":200,"body":{"x":1}}"#).is_err());
    }

    #[test]
    fn http_api_response_inference() {
        let r = http_api_response(br#"{"hello":"world"}"#).unwrap();
        assert_eq!((r.status, r.body.as_ref()), (200, br#"{"hello":"world"}"#.as_ref()));
        let r = http_api_response(br#"{"statusCode":404,"cookies":["a=1"],"body":"nope"}"#).unwrap();
        assert_eq!(r.status, 404);
        assert!(r.headers.contains(&("Set-Cookie".into(), "a=1".into())));
    }
}
