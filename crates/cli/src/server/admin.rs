//! The admin API (JSON over HTTP) that `sylph deploy`, `info`, `invoke`, `rollback`, `alias`,
//! `remove` and `keys` call, and the Prometheus metrics. Every call needs
//! `Authorization: Bearer ID:SECRET` of a live key; a key acts only on the services it is
//! allowed, and only admin keys manage keys.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use serde::Serialize;
use sylph_control::api;
use sylph_control::keys::Key;
use sylph_invoker::{InvokeResult, Invoker as _};

use super::platform::{ApiError, Platform};

type Body = Full<Bytes>;

/// The largest JSON body of an admin call (a deploy's service and file list).
const MAX_JSON_BYTES: usize = 16 * 1024 * 1024;
/// An upload may take this long (250 MB at 2 MB/s), past which it is dropped.
const UPLOAD_TIMEOUT: Duration = Duration::from_secs(120);

pub async fn handle(platform: &Arc<Platform>, req: Request<Incoming>, body_timeout: Duration) -> Response<Body> {
    match route(platform, req, body_timeout).await {
        Ok(res) => res,
        Err(e) => error(e),
    }
}

fn error(e: ApiError) -> Response<Body> {
    let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if status.is_server_error() {
        tracing::error!("admin API: {}", e.message);
    }
    let mut res = json(&api::ErrorBody { error: e.message });
    *res.status_mut() = status;
    res
}

fn json(value: &impl Serialize) -> Response<Body> {
    let body = serde_json::to_vec(value).unwrap_or_default();
    let mut res = Response::new(Full::new(Bytes::from(body)));
    res.headers_mut().insert(
        "content-type",
        hyper::header::HeaderValue::from_static("application/json"),
    );
    res
}

/// The key a call is made with.
fn authenticate(platform: &Platform, req: &Request<Incoming>) -> Result<Key, ApiError> {
    let header = req
        .headers()
        .get(hyper::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| {
            ApiError::new(
                401,
                "this call needs a key: Authorization: Bearer ID:SECRET (`sylph config credentials` sets one up)",
            )
        })?;
    let token = header
        .strip_prefix("Bearer ")
        .ok_or_else(|| ApiError::new(401, "the Authorization header must be `Bearer ID:SECRET`"))?;
    platform
        .key_for_token(token)
        .ok_or_else(|| ApiError::new(401, "the key is not valid: unknown, revoked, or a wrong secret"))
}

async fn read_json<T: serde::de::DeserializeOwned>(body: Incoming, timeout: Duration) -> Result<T, ApiError> {
    let bytes = match tokio::time::timeout(
        timeout.max(Duration::from_secs(30)),
        Limited::new(body, MAX_JSON_BYTES).collect(),
    )
    .await
    {
        Ok(Ok(b)) => b.to_bytes(),
        Ok(Err(_)) => {
            return Err(ApiError::new(
                413,
                format!("the request body is over {MAX_JSON_BYTES} bytes"),
            ))
        }
        Err(_) => return Err(ApiError::new(408, "the request body did not arrive in time")),
    };
    serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::new(400, format!("the request body is not what this call takes: {e}")))
}

async fn route(
    platform: &Arc<Platform>,
    req: Request<Incoming>,
    body_timeout: Duration,
) -> Result<Response<Body>, ApiError> {
    let key = authenticate(platform, &req)?;
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    if path == sylph_gateway::METRICS_PATH {
        return Ok(metrics(platform, &key));
    }
    let rest = path.strip_prefix(api::ADMIN_PREFIX).unwrap_or("");
    let parts: Vec<&str> = rest.split('/').filter(|p| !p.is_empty()).collect();
    match (&method, parts.as_slice()) {
        (&Method::GET, ["whoami"]) => Ok(json(&key)),
        (&Method::POST, ["blobs", "missing"]) => {
            let ask: api::MissingBlobs = read_json(req.into_body(), body_timeout).await?;
            let missing: Vec<String> = ask
                .hashes
                .into_iter()
                .filter(|h| !platform.blobs().contains(h))
                .collect();
            Ok(json(&api::MissingBlobs { hashes: missing }))
        }
        (&Method::PUT, ["blobs", hash]) => {
            let size = upload(platform, hash, req.into_body()).await?;
            Ok(json(&serde_json::json!({"hash": hash, "size": size})))
        }
        (&Method::GET, ["services"]) => Ok(json(&platform.services_for(&key))),
        (&Method::GET, ["services", name, stage]) => Ok(json(&platform.info(&key, name, stage)?)),
        (&Method::DELETE, ["services", name, stage]) => {
            let (p, k, n, st) = (platform.clone(), key.clone(), name.to_string(), stage.to_string());
            let said = to_completion(async move { p.remove(&k, &n, &st).await }).await?;
            Ok(json(&serde_json::json!({ "removed": said })))
        }
        (&Method::POST, ["services", name, stage, "deploy"]) => {
            let deploy: api::DeployRequest = read_json(req.into_body(), body_timeout).await?;
            if deploy.service.name != *name || deploy.service.stage != *stage {
                return Err(ApiError::new(
                    400,
                    format!(
                        "the path names {name} (stage {stage}) but the body deploys {} (stage {})",
                        deploy.service.name, deploy.service.stage
                    ),
                ));
            }
            let (p, k) = (platform.clone(), key.clone());
            Ok(json(&to_completion(async move { p.deploy(&k, deploy).await }).await?))
        }
        (&Method::POST, ["services", name, stage, "rollback"]) => {
            let ask: api::RollbackRequest = read_json(req.into_body(), body_timeout).await?;
            let (p, k, n, st) = (platform.clone(), key.clone(), name.to_string(), stage.to_string());
            Ok(json(
                &to_completion(async move { p.rollback(&k, &n, &st, ask.version).await }).await?,
            ))
        }
        (&Method::PUT, ["services", name, stage, "aliases", alias]) => {
            let ask: api::AliasRequest = read_json(req.into_body(), body_timeout).await?;
            let value = sylph_control::store::Alias {
                version: ask.version,
                additional: ask.additional,
            };
            let (p, k, n, st, a) = (
                platform.clone(),
                key.clone(),
                name.to_string(),
                stage.to_string(),
                alias.to_string(),
            );
            Ok(json(
                &to_completion(async move { p.set_alias(&k, &n, &st, &a, value).await }).await?,
            ))
        }
        (&Method::POST, ["services", name, stage, "invoke"]) => {
            let ask: api::InvokeRequest = read_json(req.into_body(), body_timeout).await?;
            invoke(platform, &key, name, stage, ask).await
        }
        (&Method::GET, ["services", name, stage, "logs"]) => {
            let q = Query(req.uri().query().unwrap_or(""));
            let function = q
                .get("function")
                .ok_or_else(|| ApiError::new(400, "which function? ?function=NAME"))?;
            let service = platform.info(&key, name, stage)?;
            let function = service
                .functions
                .iter()
                .find(|f| f.key == function || f.name == function)
                .ok_or_else(|| ApiError::new(404, format!("service {name} has no function {function}")))?;
            let since = q.get("since").and_then(|v| v.parse().ok()).unwrap_or(0);
            let limit = q
                .get("limit")
                .and_then(|v| v.parse().ok())
                .unwrap_or(1000usize)
                .min(10_000);
            let filter = q.get("filter");
            let logs = platform.logs.clone();
            let function_name = super::platform::telemetry_key(name, stage, &function.name);
            let now_ms = now_ms();
            let lines = tokio::task::spawn_blocking(move || logs.read(&function_name, since, filter.as_deref(), limit))
                .await
                .map_err(|e| ApiError::new(500, e.to_string()))?;
            Ok(json(&api::LogsResponse {
                lines: lines
                    .into_iter()
                    .map(|l| api::LogLine {
                        time_ms: l.time_ms,
                        request_id: l.request_id,
                        text: l.text,
                    })
                    .collect(),
                now_ms,
            }))
        }
        (&Method::GET, ["services", name, stage, "metrics"]) => {
            let q = Query(req.uri().query().unwrap_or(""));
            let service = platform.info(&key, name, stage)?;
            let only = q.get("function");
            let since_ms = q.get("since").and_then(|v| v.parse().ok()).unwrap_or(0);
            platform.sample_metrics();
            let functions = service
                .functions
                .iter()
                .filter(|f| only.as_deref().is_none_or(|o| o == f.key || o == f.name))
                .map(|f| {
                    let key = super::platform::telemetry_key(name, stage, &f.name);
                    let s = platform.history.summary(&key, since_ms);
                    api::FunctionMetrics {
                        function: f.key.clone(),
                        invocations: s.invocations,
                        errors: s.errors,
                        throttles: s.throttles,
                        cold_starts: s.cold_starts,
                        p50_ms: s.p50_ms,
                        p99_ms: s.p99_ms,
                        max_concurrency: s.max_concurrency,
                    }
                })
                .collect::<Vec<_>>();
            if functions.is_empty() {
                return Err(ApiError::new(404, format!("service {name} has no such function")));
            }
            Ok(json(&api::MetricsResponse { since_ms, functions }))
        }
        (&Method::GET, ["keys"]) => {
            require_admin(&key)?;
            Ok(json(&platform.keys()))
        }
        (&Method::POST, ["keys"]) => {
            require_admin(&key)?;
            let ask: api::CreateKey = read_json(req.into_body(), body_timeout).await?;
            let (made, secret) = platform.create_key(&ask.name, ask.services, ask.admin)?;
            Ok(json(&api::CreatedKey {
                id: made.id.clone(),
                secret,
                key: made,
            }))
        }
        (&Method::DELETE, ["keys", id]) => {
            require_admin(&key)?;
            Ok(json(&platform.revoke_key(id, &key)?))
        }
        _ => Err(ApiError::new(404, format!("no admin call {method} {path}"))),
    }
}

/// `a=1&b=two` (values percent-decoded).
struct Query<'a>(&'a str);

impl Query<'_> {
    fn get(&self, name: &str) -> Option<String> {
        self.0.split('&').find_map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (k == name).then(|| {
                percent_encoding::percent_decode_str(&v.replace('+', " "))
                    .decode_utf8_lossy()
                    .into_owned()
            })
        })
    }
}

use sylph_telemetry::unix_ms as now_ms;

/// Run an operation that changes what is deployed in a task of its own: a client that goes
/// away mid-way must not cut it between its record in the store and the switch in memory.
async fn to_completion<T: Send + 'static>(
    operation: impl std::future::Future<Output = Result<T, ApiError>> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::spawn(operation)
        .await
        .map_err(|e| ApiError::new(500, format!("the operation failed: {e}")))?
}

fn require_admin(key: &Key) -> Result<(), ApiError> {
    // Only keys for every service: a key scoped to some services could otherwise make itself
    // a key for all of them.
    if key.admin && matches!(key.scope, sylph_control::keys::Scope::All) {
        Ok(())
    } else {
        Err(ApiError::new(
            403,
            format!("key {} is not an admin key: only admin keys manage keys", key.id),
        ))
    }
}

/// Receive one file of a package, streamed to disk and checked against its hash.
async fn upload(platform: &Arc<Platform>, hash: &str, mut body: Incoming) -> Result<u64, ApiError> {
    sylph_control::blobs::check_hash(hash).map_err(|e| ApiError::new(400, e.to_string()))?;
    if platform.blobs().contains(hash) {
        return Ok(0);
    }
    let mut upload = platform
        .blobs()
        .begin()
        .map_err(|e| ApiError::new(500, e.to_string()))?;
    let mut size = 0u64;
    let deadline = tokio::time::Instant::now() + UPLOAD_TIMEOUT;
    loop {
        let frame = match tokio::time::timeout_at(deadline, body.frame()).await {
            Err(_) => return Err(ApiError::new(408, "the upload did not finish in time")),
            Ok(None) => break,
            Ok(Some(Err(e))) => return Err(ApiError::new(400, format!("the upload broke off: {e}"))),
            Ok(Some(Ok(frame))) => frame,
        };
        if let Ok(data) = frame.into_data() {
            size += data.len() as u64;
            if size > sylph_control::package::MAX_UNZIPPED_BYTES {
                return Err(ApiError::new(413, "a file over 250 MB cannot be part of a package"));
            }
            upload.write(&data).map_err(|e| ApiError::new(500, e.to_string()))?;
        }
    }
    let expected = hash.to_owned();
    tokio::task::spawn_blocking(move || upload.finish(&expected))
        .await
        .map_err(|e| ApiError::new(500, e.to_string()))?
        .map_err(|e| match e {
            sylph_control::blobs::BlobError::Mismatch { .. } => ApiError::new(400, e.to_string()),
            other => ApiError::new(500, other.to_string()),
        })
}

async fn invoke(
    platform: &Arc<Platform>,
    key: &Key,
    name: &str,
    stage: &str,
    ask: api::InvokeRequest,
) -> Result<Response<Body>, ApiError> {
    // Checks the key and that the service exists.
    platform.info(key, name, stage)?;
    let live = platform
        .by_service(name, stage)
        .ok_or_else(|| ApiError::new(404, format!("service {name} (stage {stage}) is not deployed")))?;
    let running = live.route();
    let function = running
        .service
        .function(&ask.function)
        .ok_or_else(|| ApiError::new(404, format!("service {name} has no function {}", ask.function)))?
        .name
        .clone();
    let payload = if ask.payload.trim().is_empty() {
        "{}".to_owned()
    } else {
        ask.payload
    };
    if serde_json::from_str::<serde_json::Value>(&payload).is_err() {
        return Err(ApiError::new(400, "the payload is not JSON"));
    }
    let request = sylph_invoker::InvokeRequest {
        payload: Bytes::from(payload),
        want_logs: true,
        ..Default::default()
    };
    if ask.invocation_type.as_deref() == Some("Event") {
        if request.payload.len() > sylph_gateway::MAX_ASYNC_PAYLOAD {
            return Err(ApiError::new(
                413,
                "an Event payload must be smaller than 1 MB (Lambda's limit)",
            ));
        }
        let payload = String::from_utf8_lossy(&request.payload).into_owned();
        let events = platform
            .events()
            .ok_or_else(|| ApiError::new(503, "the server is starting"))?;
        let target = sylph_events::Target {
            service: name.to_owned(),
            stage: stage.to_owned(),
            function: function.clone(),
            version: Some(running.version),
        };
        events
            .queue
            .accept(target, payload, sylph_events::store::Source::Invoke)
            .await
            .map_err(|e| match e {
                sylph_events::queue::AcceptError::Full(_) => ApiError::new(429, e.to_string()),
                sylph_events::queue::AcceptError::Store(e) => ApiError::internal(e),
            })?;
        return Ok(json(&api::InvokeResponse {
            status: 202,
            payload: String::new(),
            function_error: None,
            log: String::new(),
        }));
    }
    let answer = running
        .hosted
        .pool
        .invoke(&function, request)
        .await
        .map_err(|e| ApiError::new(429, e.to_string()))?;
    let (payload, function_error) = match answer.result {
        InvokeResult::Success(p) => (String::from_utf8_lossy(&p).into_owned(), None),
        InvokeResult::Error { body, .. } => (
            String::from_utf8_lossy(&body).into_owned(),
            Some("Unhandled".to_owned()),
        ),
    };
    Ok(json(&api::InvokeResponse {
        status: 200,
        payload,
        function_error,
        log: answer.logs.unwrap_or_default(),
    }))
}

/// Prometheus metrics of every function of the services the key may use, labelled by the
/// deployed function name.
fn metrics(platform: &Platform, key: &Key) -> Response<Body> {
    let lives: Vec<_> = platform
        .all_live()
        .into_iter()
        .filter(|l| key.allows(&l.record.name))
        .collect();
    // Only the active version's counters: a version behind an alias counts under its own
    // pool, which a later change may label by version.
    let pools: Vec<_> = lives.iter().map(|l| l.active().hosted.pool.function_pools()).collect();
    let mut rows = Vec::new();
    for (live, p) in lives.iter().zip(pools.iter()) {
        rows.extend(live.active().hosted.pool.metric_rows(p, true));
    }
    let mut text = sylph_telemetry::metrics::render(&rows);
    if let Some(events) = platform.events() {
        // The event sources' counters of the functions shown above, and no others.
        let shown: std::collections::HashSet<&str> = lives
            .iter()
            .flat_map(|l| l.versions.values())
            .flat_map(|r| r.service.functions.iter().map(|f| f.name.as_str()))
            .collect();
        text.push_str(&events.queue.render_metrics(|f| shown.contains(f)));
        text.push_str(&events.sqs.render_metrics(|f| shown.contains(f)));
        text.push_str(&events.streams.render_metrics(|f| shown.contains(f)));
    }
    let mut res = Response::new(Full::new(Bytes::from(text)));
    res.headers_mut().insert(
        "content-type",
        hyper::header::HeaderValue::from_static("text/plain; version=0.0.4"),
    );
    res
}
