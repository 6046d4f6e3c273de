//! API Gateway's request validator on a route (`request.schemas`, `request.parameters`):
//! required parameters first, then the body against the JSON Schema of its content type.
//! Failures are 400 `BadRequestException` with API Gateway's messages.

// A refusal is a whole response, built once per refused request.
#![allow(clippy::result_large_err)]

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::HeaderValue;
use hyper::{Response, StatusCode};
use sylph_model::RequestValidation;

use crate::apigw::RequestParts;
use crate::routes::Match;
use crate::Body;

/// A route's validator, its schemas compiled once.
pub struct Validator {
    schemas: Vec<(String, jsonschema::Validator)>,
    rules: RequestValidation,
}

impl std::fmt::Debug for Validator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Validator").field("rules", &self.rules).finish()
    }
}

impl Validator {
    pub fn new(rules: RequestValidation) -> Validator {
        let schemas = rules
            .schemas
            .iter()
            // Checked when the manifest was read; one that still fails to compile is dropped
            // with a warning rather than refusing every request.
            .filter_map(|(content_type, schema)| match jsonschema::draft4::new(schema) {
                Ok(v) => Some((content_type.clone(), v)),
                Err(e) => {
                    tracing::warn!("request schema for {content_type} is not usable: {e}");
                    None
                }
            })
            .collect();
        Validator { schemas, rules }
    }

    /// `Err` is the 400 API Gateway would send.
    pub fn check(&self, req: &RequestParts<'_>, m: &Match<'_>) -> Result<(), Response<Body>> {
        let query_has = |name: &str| {
            req.query.is_some_and(|q| {
                q.split('&')
                    .any(|pair| crate::routes::decode(pair.split_once('=').map_or(pair, |(k, _)| k)) == name)
            })
        };
        let mut missing: Vec<&str> = Vec::new();
        missing.extend(
            self.rules
                .required_query
                .iter()
                .map(String::as_str)
                .filter(|n| !query_has(n)),
        );
        missing.extend(
            self.rules
                .required_headers
                .iter()
                .map(String::as_str)
                .filter(|n| !req.headers.contains_key(*n)),
        );
        missing.extend(
            self.rules
                .required_paths
                .iter()
                .map(String::as_str)
                .filter(|n| !m.params.iter().any(|(k, v)| k == n && !v.is_empty())),
        );
        if !missing.is_empty() {
            return Err(bad_request(&format!(
                "Missing required request parameters: [{}]",
                missing.join(", ")
            )));
        }
        if self.schemas.is_empty() {
            return Ok(());
        }
        // No Content-Type is taken as JSON, as API Gateway does.
        let content_type = req
            .headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .map(|v| v.split(';').next().unwrap_or("").trim().to_ascii_lowercase())
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| "application/json".to_owned());
        let Some((_, schema)) = self.schemas.iter().find(|(t, _)| *t == content_type) else {
            return Ok(());
        };
        let body: serde_json::Value = match serde_json::from_slice(req.body) {
            Ok(v) => v,
            Err(_) if req.body.is_empty() => serde_json::Value::Null,
            Err(_) => return Err(bad_request("Invalid request body")),
        };
        if schema.is_valid(&body) {
            Ok(())
        } else {
            Err(bad_request("Invalid request body"))
        }
    }
}

fn bad_request(message: &str) -> Response<Body> {
    let body = serde_json::json!({ "message": message }).to_string();
    let mut res = Response::new(Full::new(Bytes::from(body)));
    *res.status_mut() = StatusCode::BAD_REQUEST;
    let h = res.headers_mut();
    h.insert("content-type", HeaderValue::from_static("application/json"));
    h.insert("x-amzn-errortype", HeaderValue::from_static("BadRequestException"));
    res
}
