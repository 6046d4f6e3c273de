//! The Lambda Invoke API (`POST /2015-03-31/functions/{name}/invocations`), as the AWS SDKs
//! call it: `RequestResponse`, `Event` and `DryRun` invocation types, `X-Amz-Log-Type: Tail`,
//! `X-Amz-Client-Context`, and Lambda's REST-JSON errors (`x-amzn-ErrorType`).

use std::sync::Arc;

use base64::Engine as _;
use bytes::Bytes;
use http_body_util::Full;
use hyper::header::HeaderValue;
use hyper::{Method, Response, StatusCode};
use sylph_invoker::{InvokeError, InvokeRequest, InvokeResult, Invoker};
use sylph_model::LOCAL_ACCOUNT_ID;

use crate::routes::decode;
use crate::Body;

/// Lambda's limit for an asynchronous (`Event`) payload.
pub const MAX_ASYNC_PAYLOAD: usize = 1024 * 1024;
/// Log tail returned with `X-Amz-Log-Type: Tail`.
const LOG_TAIL_BYTES: usize = 4096;

pub(crate) async fn handle(
    invoker: &Arc<dyn Invoker>,
    queue: Option<&Arc<dyn crate::EventQueue>>,
    region: &str,
    parts: &hyper::http::request::Parts,
    rest: &str,
    body: Bytes,
) -> Response<Body> {
    let Some(name) = rest.strip_suffix("/invocations") else {
        return error(StatusCode::NOT_FOUND, "UnknownOperationException", "Unknown operation");
    };
    if parts.method != Method::POST {
        return error(
            StatusCode::METHOD_NOT_ALLOWED,
            "UnknownOperationException",
            "Invoke takes POST",
        );
    }
    let name = decode(name);
    if invoker.function(&name).is_none() {
        let arn = if name.starts_with("arn:") {
            name.clone()
        } else {
            format!("arn:aws:lambda:{region}:{LOCAL_ACCOUNT_ID}:function:{name}")
        };
        return error(
            StatusCode::NOT_FOUND,
            "ResourceNotFoundException",
            &format!("Function not found: {arn}"),
        );
    }
    let header = |n: &str| parts.headers.get(n).and_then(|v| v.to_str().ok());
    let invocation_type = header("x-amz-invocation-type").unwrap_or("RequestResponse");
    let tail = header("x-amz-log-type").is_some_and(|v| v.eq_ignore_ascii_case("Tail"));
    let client_context = match header("x-amz-client-context") {
        Some(b64) => match base64::engine::general_purpose::STANDARD.decode(b64) {
            Ok(raw) => Some(String::from_utf8_lossy(&raw).into_owned()),
            Err(_) => {
                return error(
                    StatusCode::BAD_REQUEST,
                    "InvalidRequestContentException",
                    "Client context must be valid base64-encoded JSON",
                )
            }
        },
        None => None,
    };
    // Lambda accepts only JSON payloads; an empty one stands for `{}`.
    let payload = if body.iter().all(u8::is_ascii_whitespace) {
        Bytes::from_static(b"{}")
    } else {
        body
    };
    if let Err(e) = serde_json::from_slice::<serde::de::IgnoredAny>(&payload) {
        return error(
            StatusCode::BAD_REQUEST,
            "InvalidRequestContentException",
            &format!("Could not parse request body into json: {e}"),
        );
    }
    let request = InvokeRequest {
        payload,
        client_context,
        cognito_identity: None,
        want_logs: tail,
    };
    match invocation_type {
        "DryRun" => {
            let mut res = Response::new(Full::new(Bytes::new()));
            *res.status_mut() = StatusCode::NO_CONTENT;
            res
        }
        "Event" => {
            if request.payload.len() > MAX_ASYNC_PAYLOAD {
                return error(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "RequestTooLargeException",
                    &format!("Request must be smaller than {MAX_ASYNC_PAYLOAD} bytes for the InvokeAsync operation"),
                );
            }
            match queue {
                // Kept durably before the 202: an accepted event survives a crash.
                Some(queue) => {
                    let function = invoker.function(&name).map_or_else(|| name.clone(), |f| f.name.clone());
                    match queue.accept(function, request.payload.clone()).await {
                        Ok(()) => {}
                        Err(crate::QueueError::Full) => {
                            return error(
                                StatusCode::TOO_MANY_REQUESTS,
                                "TooManyRequestsException",
                                "Rate Exceeded: too many asynchronous invocations are waiting to run",
                            )
                        }
                        Err(crate::QueueError::Failed(why)) => {
                            tracing::error!("cannot queue an asynchronous invocation: {why}");
                            return error(
                                StatusCode::INTERNAL_SERVER_ERROR,
                                "ServiceException",
                                "The event could not be queued; it was not accepted",
                            );
                        }
                    }
                }
                None => spawn_event(invoker.clone(), name, request),
            }
            let mut res = Response::new(Full::new(Bytes::new()));
            *res.status_mut() = StatusCode::ACCEPTED;
            res
        }
        "RequestResponse" => match invoker.invoke(&name, request).await {
            Ok(r) => {
                let (payload, function_error) = match r.result {
                    InvokeResult::Success(p) => (p, None),
                    InvokeResult::Error { body, .. } => (body, Some("Unhandled")),
                };
                let mut res = Response::new(Full::new(payload));
                let h = res.headers_mut();
                h.insert("content-type", HeaderValue::from_static("application/json"));
                h.insert("x-amz-executed-version", HeaderValue::from_static("$LATEST"));
                if let Ok(v) = HeaderValue::from_str(&r.request_id) {
                    h.insert("x-amzn-requestid", v);
                }
                if let Some(fe) = function_error {
                    h.insert("x-amz-function-error", HeaderValue::from_static(fe));
                }
                if let Some(logs) = r.logs {
                    let bytes = logs.as_bytes();
                    let tail = &bytes[bytes.len().saturating_sub(LOG_TAIL_BYTES)..];
                    let encoded = base64::engine::general_purpose::STANDARD.encode(tail);
                    if let Ok(v) = HeaderValue::from_str(&encoded) {
                        h.insert("x-amz-log-result", v);
                    }
                }
                res
            }
            Err(e) => invoke_error(e, region),
        },
        other => error(
            StatusCode::BAD_REQUEST,
            "InvalidParameterValueException",
            &format!("Invalid invocation type {other}: use RequestResponse, Event or DryRun"),
        ),
    }
}

/// Run an `Event` invocation after the caller has had its 202. Failures are logged; retries
/// and dead-letter queues belong to the event subsystem.
fn spawn_event(invoker: Arc<dyn Invoker>, name: String, request: InvokeRequest) {
    tokio::spawn(async move {
        match invoker.invoke(&name, request).await {
            Ok(r) => {
                if let InvokeResult::Error { error_type, .. } = r.result {
                    tracing::warn!(function = %name, request_id = %r.request_id, "asynchronous invocation failed: {error_type}");
                }
            }
            Err(e) => tracing::error!(function = %name, "asynchronous invocation could not run: {e}"),
        }
    });
}

fn invoke_error(e: InvokeError, region: &str) -> Response<Body> {
    match e {
        InvokeError::FunctionNotFound(name) => error(
            StatusCode::NOT_FOUND,
            "ResourceNotFoundException",
            &format!("Function not found: arn:aws:lambda:{region}:{LOCAL_ACCOUNT_ID}:function:{name}"),
        ),
        InvokeError::Throttled(reason) => {
            let body = serde_json::json!({"Reason": reason.as_str(), "Type": "User", "message": "Rate Exceeded.", "Message": "Rate Exceeded."});
            let mut res = Response::new(Full::new(Bytes::from(body.to_string())));
            *res.status_mut() = StatusCode::TOO_MANY_REQUESTS;
            let h = res.headers_mut();
            h.insert("content-type", HeaderValue::from_static("application/json"));
            h.insert("x-amzn-errortype", HeaderValue::from_static("TooManyRequestsException"));
            res
        }
        InvokeError::Start(e) => {
            tracing::error!("cannot start function: {e}");
            error(
                StatusCode::BAD_GATEWAY,
                "ServiceException",
                "The function could not be started; see the sylph log",
            )
        }
    }
}

/// A Lambda REST-JSON error: the type in `x-amzn-ErrorType` and the body.
pub(crate) fn error(status: StatusCode, error_type: &'static str, message: &str) -> Response<Body> {
    let body = serde_json::json!({ "Type": "User", "Message": message, "message": message }).to_string();
    let mut res = Response::new(Full::new(Bytes::from(body)));
    *res.status_mut() = status;
    let h = res.headers_mut();
    h.insert("content-type", HeaderValue::from_static("application/json"));
    h.insert("x-amzn-errortype", HeaderValue::from_static(error_type));
    res
}
