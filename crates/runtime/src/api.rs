//! The Lambda Runtime API, served to one instance on its own loopback port.
//!
//! Paths and headers follow the AWS documentation for the `2018-06-01` API so that the
//! official runtime interface clients (npm `aws-lambda-ric`, PyPI `awslambdaric`, the Rust
//! `lambda_runtime` crate) work against it unchanged.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use tokio::sync::{mpsc, oneshot, watch};

use crate::MAX_RESPONSE_BYTES;

/// What the runtime sends back for one invocation.
#[derive(Debug)]
pub(crate) enum Reply {
    Response(Bytes),
    Error { error_type: Option<String>, body: Bytes },
    TooLarge,
}

/// An invocation waiting for the runtime's `GET /next`.
pub(crate) struct Pending {
    pub request_id: Arc<str>,
    pub payload: Bytes,
    pub client_context: Option<String>,
    pub cognito_identity: Option<String>,
    pub timeout_ms: u64,
    pub dispatched: oneshot::Sender<Instant>,
    pub reply: oneshot::Sender<Reply>,
}

/// The life of the runtime process, as the Runtime API and the process watcher see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Status {
    Running,
    InitFailed { error_type: Option<String>, body: Bytes },
    Exited(String),
}

pub(crate) struct ApiState {
    pub function_arn: HeaderValue,
    pub next: tokio::sync::Mutex<mpsc::Receiver<Pending>>,
    /// The invocation the runtime is working on: its id and where its answer goes.
    pub current: Mutex<Option<(Arc<str>, oneshot::Sender<Reply>)>>,
    /// When the runtime first asked for work (the end of its init phase).
    pub ready_at: Mutex<Option<Instant>>,
    pub status: watch::Sender<Status>,
}

type Body = Full<Bytes>;

pub(crate) async fn handle(state: Arc<ApiState>, req: Request<Incoming>) -> Result<Response<Body>, Infallible> {
    let path = req.uri().path();
    let Some(rest) = path.strip_prefix("/2018-06-01/runtime/") else {
        return Ok(error(
            StatusCode::NOT_FOUND,
            "InvalidRequest",
            "unknown Runtime API path",
        ));
    };
    let rest = rest.to_owned();
    Ok(match (req.method(), rest.as_str()) {
        (&Method::GET, "invocation/next") => next(&state).await,
        (&Method::POST, "init/error") => {
            let error_type = error_type_header(&req);
            let body = read_body(req).await.unwrap_or_default();
            let _ = state.status.send(Status::InitFailed { error_type, body });
            accepted()
        }
        (&Method::POST, tail) => match tail.strip_prefix("invocation/").and_then(|t| t.split_once('/')) {
            Some((id, "response")) => {
                let id = id.to_owned();
                match read_body(req).await {
                    Some(body) => complete(&state, &id, Reply::Response(body)),
                    None => {
                        complete(&state, &id, Reply::TooLarge);
                        error(
                            StatusCode::PAYLOAD_TOO_LARGE,
                            "RequestEntityTooLarge",
                            "response payload too large",
                        )
                    }
                }
            }
            Some((id, "error")) => {
                let id = id.to_owned();
                let error_type = error_type_header(&req);
                let body = read_body(req).await.unwrap_or_default();
                complete(&state, &id, Reply::Error { error_type, body })
            }
            _ => error(StatusCode::NOT_FOUND, "InvalidRequest", "unknown Runtime API path"),
        },
        _ => error(StatusCode::METHOD_NOT_ALLOWED, "InvalidRequest", "method not allowed"),
    })
}

/// An invocation handed to the runtime, with the metadata its headers carry.
pub(crate) struct Dispatched {
    pub request_id: Arc<str>,
    pub payload: Bytes,
    pub deadline_ms: u64,
    pub trace_id: String,
    pub client_context: Option<String>,
    pub cognito_identity: Option<String>,
}

/// The runtime asks for work: wait for the next invocation and make it the current one.
/// `None` when the instance is shutting down.
pub(crate) async fn take_next(state: &ApiState) -> Option<Dispatched> {
    {
        let mut ready = state.ready_at.lock().unwrap_or_else(|e| e.into_inner());
        if ready.is_none() {
            *ready = Some(Instant::now());
        }
    }
    let p = state.next.lock().await.recv().await?;
    let now = Instant::now();
    let deadline_ms = epoch_ms() + p.timeout_ms;
    let _ = p.dispatched.send(now);
    *state.current.lock().unwrap_or_else(|e| e.into_inner()) = Some((p.request_id.clone(), p.reply));
    Some(Dispatched {
        trace_id: trace_id(&p.request_id),
        request_id: p.request_id,
        payload: p.payload,
        deadline_ms,
        client_context: p.client_context,
        cognito_identity: p.cognito_identity,
    })
}

async fn next(state: &ApiState) -> Response<Body> {
    let Some(d) = take_next(state).await else {
        // The instance is being shut down; the runtime will be killed right after.
        return error(StatusCode::GONE, "ShuttingDown", "instance is stopping");
    };
    let mut res = Response::new(Full::new(d.payload));
    let h = res.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if let Ok(v) = HeaderValue::from_str(&d.request_id) {
        h.insert("lambda-runtime-aws-request-id", v);
    }
    h.insert("lambda-runtime-deadline-ms", HeaderValue::from(d.deadline_ms));
    h.insert("lambda-runtime-invoked-function-arn", state.function_arn.clone());
    if let Ok(v) = HeaderValue::from_str(&d.trace_id) {
        h.insert("lambda-runtime-trace-id", v);
    }
    if let Some(v) = d.client_context.as_deref().and_then(|c| HeaderValue::from_str(c).ok()) {
        h.insert("lambda-runtime-client-context", v);
    }
    if let Some(v) = d
        .cognito_identity
        .as_deref()
        .and_then(|c| HeaderValue::from_str(c).ok())
    {
        h.insert("lambda-runtime-cognito-identity", v);
    }
    res
}

/// Deliver the runtime's answer for invocation `id`; false if `id` is not the current one.
pub(crate) fn complete_reply(state: &ApiState, id: &str, reply: Reply) -> bool {
    let mut current = state.current.lock().unwrap_or_else(|e| e.into_inner());
    match current.take() {
        Some((cur_id, tx)) if &*cur_id == id => {
            let _ = tx.send(reply);
            true
        }
        other => {
            *current = other;
            false
        }
    }
}

fn complete(state: &ApiState, id: &str, reply: Reply) -> Response<Body> {
    if complete_reply(state, id, reply) {
        accepted()
    } else {
        error(
            StatusCode::BAD_REQUEST,
            "InvalidRequestID",
            "no invocation with this request id is in progress",
        )
    }
}

fn error_type_header(req: &Request<Incoming>) -> Option<String> {
    req.headers()
        .get("lambda-runtime-function-error-type")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// Read a body up to Lambda's response limit; `None` if it is larger.
async fn read_body(req: Request<Incoming>) -> Option<Bytes> {
    Limited::new(req.into_body(), MAX_RESPONSE_BYTES)
        .collect()
        .await
        .ok()
        .map(|c| c.to_bytes())
}

fn accepted() -> Response<Body> {
    let mut res = Response::new(Full::new(Bytes::from_static(b"{\"status\":\"OK\"}")));
    *res.status_mut() = StatusCode::ACCEPTED;
    res.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    res
}

fn error(status: StatusCode, error_type: &str, message: &str) -> Response<Body> {
    let body = serde_json::json!({ "errorType": error_type, "errorMessage": message }).to_string();
    let mut res = Response::new(Full::new(Bytes::from(body)));
    *res.status_mut() = status;
    res.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    res
}

fn epoch_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// An X-Ray style trace header derived from the request id.
fn trace_id(request_id: &str) -> String {
    let hex: String = request_id.chars().filter(char::is_ascii_hexdigit).collect();
    let secs = epoch_ms() / 1000;
    format!(
        "Root=1-{secs:08x}-{};Parent={};Sampled=0",
        hex.get(..24).unwrap_or("000000000000000000000000"),
        hex.get(16..32).unwrap_or("0000000000000000")
    )
}
