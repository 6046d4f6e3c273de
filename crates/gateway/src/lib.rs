//! The HTTP front door of `sylph dev`: one port serving
//!
//! - the service's `http` (API Gateway REST, payload 1.0, under `/{stage}`) and `httpApi`
//!   (API Gateway HTTP API, payload 2.0) routes, with CORS preflights, and
//! - the Lambda Invoke API (`POST /2015-03-31/functions/{name}/invocations`), so the AWS SDKs
//!   can invoke functions by endpoint alone, and
//! - the DynamoDB JSON protocol (any request with `X-Amz-Target: DynamoDB_20120810.*`), the
//!   way LocalStack's single edge port routes by target.
//!
//! Requests become [`InvokeRequest`]s for the [`Invoker`]; this crate never sees how functions
//! run. Errors are mapped to each protocol's responses here and nowhere else.

mod apigw;
pub mod auth;
mod authorizers;
mod conn;
mod invoke_api;
mod jwt;
mod routes;
mod validation;
mod websocket;

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{HeaderName, HeaderValue};
use hyper::{Request, Response, StatusCode};
use sylph_invoker::{ErrorKind, InvokeRequest, InvokeResult, Invoker};
use sylph_model::{ApiKind, Cors, Service};
use sylph_tables::Tables;
use sylph_telemetry::UtcTime;

pub use apigw::{http_api_response, rest_response, MappedResponse};
pub use authorizers::AccessSettings;
pub use conn::{
    raise_open_file_limit, serve, spawn_instance_connection, spawn_instance_stream, ConnectionLimits, Handler,
    HostPolicy, Tls,
};
pub use invoke_api::MAX_ASYNC_PAYLOAD;
pub use routes::{Route, Router};

/// The URI a request arrived with, when a front door rewrote `parts.uri` before handing it
/// to a service (`sylph server`'s `/apis/{id}/…`): what a SigV4 signature covers.
#[derive(Debug, Clone)]
pub struct OriginalUri(pub hyper::Uri);

/// Where Prometheus metrics are served (a prefix no API Gateway route can take).
pub const METRICS_PATH: &str = "/_sylph/metrics";

/// The largest request body accepted (Lambda's synchronous payload limit).
pub const MAX_REQUEST_BYTES: usize = 6 * 1024 * 1024;

pub type Body = Full<Bytes>;

/// Who answers the table API.
pub enum TableApi {
    /// This process's own table service.
    Local(Tables),
    /// Another Sylph's table API on this machine (`sylph invoke local` next to a running
    /// `sylph dev` of the same service): calls are checked here, then relayed there.
    Relay(SocketAddr),
}

/// Everything needed to answer requests for one service.
pub struct Gateway {
    router: Router,
    invoker: Arc<dyn Invoker>,
    /// The table API, answered on the same port (routed by `X-Amz-Target`).
    tables: Option<TableApi>,
    /// Served at [`METRICS_PATH`].
    metrics: Option<Arc<dyn sylph_telemetry::metrics::MetricsSource>>,
    /// Checks the identity and IAM statements of calls to the table and Invoke APIs.
    authorizer: Option<Arc<sylph_iam::Authorizer>>,
    stage: String,
    region: String,
    /// Which tables this service's functions may see at all (`sylph server`: their own
    /// service's, and those of services their deployer may use), before IAM is asked.
    table_guard: std::sync::OnceLock<Arc<dyn TableGuard>>,
    /// Where `Event` invocations go (see [`Gateway::set_event_queue`]).
    events: std::sync::OnceLock<Arc<dyn EventQueue>>,
    /// The SQS-compatible queue API (see [`Gateway::set_queues`]).
    queues: std::sync::OnceLock<sylph_queues::Queues>,
    /// Served after `metrics` (the event sources' counters).
    more_metrics: std::sync::OnceLock<Arc<dyn sylph_telemetry::metrics::MetricsSource>>,
    /// Authorizers and API keys of the service's routes.
    guard: authorizers::RouteGuard,
    /// The service's WebSocket API, if it has `websocket` events.
    websockets: Option<Arc<websocket::WebSockets>>,
}

/// Where accepted asynchronous (`Event`) invocations are kept until they have run
/// (`sylph server`: durably, so that an accepted event survives a crash). Without one, an
/// event runs in a task of this process.
pub trait EventQueue: Send + Sync {
    /// Keep the event for `function` (its deployed name) and have it run; `Ok` once it is kept.
    fn accept(&self, function: String, payload: Bytes) -> sylph_invoker::BoxFuture<'static, Result<(), QueueError>>;
}

/// Why an event was not accepted.
#[derive(Debug)]
pub enum QueueError {
    /// Too many events wait already: the caller is throttled (429), and may try again.
    Full,
    /// It could not be kept.
    Failed(String),
}

/// Decides which tables a service's functions may reach (see [`Gateway::set_table_guard`]).
pub trait TableGuard: Send + Sync {
    /// `Err(message)` to refuse a function's call on `table`.
    fn check(&self, table: &str) -> Result<(), String>;
}

impl Gateway {
    /// Keep accepted `Event` invocations in `queue` instead of running them in a task.
    pub fn set_event_queue(&self, queue: Arc<dyn EventQueue>) {
        let _ = self.events.set(queue);
    }

    /// Serve the SQS API (JSON and query protocols) from `queues`.
    pub fn set_queues(&self, queues: sylph_queues::Queues) {
        let _ = self.queues.set(queues);
    }

    /// Serve `source`'s metrics at [`METRICS_PATH`] too.
    pub fn add_metrics(&self, source: Arc<dyn sylph_telemetry::metrics::MetricsSource>) {
        let _ = self.more_metrics.set(source);
    }

    /// The API keys `private: true` routes accept, and the context routes with an authorizer
    /// defined outside the service get.
    /// `Err` when the settings cannot be used (a JWKS without RSA keys).
    pub fn set_access(&self, settings: AccessSettings) -> Result<(), String> {
        self.guard.configure(settings)
    }

    /// Refuse functions' calls on tables `guard` rejects, whatever their IAM statements say.
    pub fn set_table_guard(&self, guard: Arc<dyn TableGuard>) {
        let _ = self.table_guard.set(guard);
    }

    pub fn new(
        service: &Service,
        invoker: Arc<dyn Invoker>,
        tables: Option<TableApi>,
        metrics: Option<Arc<dyn sylph_telemetry::metrics::MetricsSource>>,
        authorizer: Option<Arc<sylph_iam::Authorizer>>,
    ) -> Arc<Gateway> {
        Arc::new(Gateway {
            router: Router::new(service),
            websockets: websocket::WebSockets::new(service, invoker.clone()),
            guard: authorizers::RouteGuard::new(service, invoker.clone(), authorizer.clone()),
            invoker,
            tables,
            metrics,
            authorizer,
            stage: service.stage.clone(),
            region: service.region.clone(),
            table_guard: std::sync::OnceLock::new(),
            events: std::sync::OnceLock::new(),
            more_metrics: std::sync::OnceLock::new(),
            queues: std::sync::OnceLock::new(),
        })
    }

    pub fn router(&self) -> &Router {
        &self.router
    }

    /// Close every WebSocket connection (the version that served them is retired).
    pub fn close_websockets(&self) {
        if let Some(ws) = &self.websockets {
            ws.close_all();
        }
    }

    /// The WebSocket API's (route key, function) pairs; empty without `websocket` events.
    pub fn websocket_routes(&self) -> Vec<(String, String)> {
        self.websockets
            .as_ref()
            .map(|w| {
                w.route_keys()
                    .into_iter()
                    .map(|(k, f)| (k.to_owned(), f.to_owned()))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Answer one request. Never fails: every error becomes the protocol's error response.
    /// `instance_key` is set for requests from inside a function instance: the access key it
    /// was issued. The body must arrive within `body_timeout`.
    pub async fn handle(
        self: Arc<Self>,
        req: Request<Incoming>,
        peer: SocketAddr,
        instance_key: Option<&str>,
        body_timeout: std::time::Duration,
    ) -> Response<Body> {
        let (parts, body) = req.into_parts();
        let body = match read_body(&parts, body, body_timeout).await {
            Ok(b) => b,
            Err(refused) => return refused,
        };
        let caller = match instance_key {
            Some(k) => sylph_iam::Caller::Instance(k),
            None => sylph_iam::Caller::Public,
        };
        self.handle_parts(parts, body, peer, caller).await
    }

    /// Answer a request whose body has been read (usable without a socket, in tests).
    pub async fn handle_parts(
        &self,
        parts: hyper::http::request::Parts,
        body: Bytes,
        peer: SocketAddr,
        caller: sylph_iam::Caller<'_>,
    ) -> Response<Body> {
        if let Some(ws) = &self.websockets {
            if websocket::is_upgrade(&parts) && ws.is_endpoint(parts.uri.path()) {
                return ws.upgrade(parts, peer, &self.guard).await;
            }
            if let Some(id) = websocket::connection_path(parts.uri.path()) {
                if let Some(authorizer) = &self.authorizer {
                    let needs = || {
                        vec![(
                            "execute-api:ManageConnections".to_owned(),
                            format!(
                                "arn:aws:execute-api:{}:{}:{}/{}/{}/@connections/{id}",
                                self.region,
                                sylph_model::LOCAL_ACCOUNT_ID,
                                apigw::API_ID,
                                self.stage,
                                parts.method
                            ),
                        )]
                    };
                    if let Err(refused) = auth::check(authorizer, caller, &parts, &body, auth::Protocol::Lambda, needs)
                    {
                        return refused;
                    }
                }
                return ws.manage(&parts.method, &id, body);
            }
        }
        let path = parts.uri.path();
        if let Some(queues) = self.queues.get() {
            if let Some(res) = self.sqs_call(queues, &parts, &body, caller).await {
                return res;
            }
        }
        if let Some(target) = parts.headers.get("x-amz-target").and_then(|v| v.to_str().ok()) {
            if let (Some(op), Some(tables)) = (target.strip_prefix("DynamoDBStreams_20120810."), &self.tables) {
                let table = serde_json::from_slice(&body)
                    .ok()
                    .and_then(|j| sylph_tables::stream::api::table_of_call(op, &j));
                if let Some(authorizer) = &self.authorizer {
                    let needs = || sylph_iam::actions::dynamodb_streams(op, table.as_deref(), &self.region);
                    if let Err(refused) =
                        auth::check(authorizer, caller, &parts, &body, auth::Protocol::DynamoDb, needs)
                    {
                        return refused;
                    }
                }
                if let (Some(guard), sylph_iam::Caller::Instance(_)) = (self.table_guard.get(), caller) {
                    let allowed = match &table {
                        Some(t) => guard.check(t),
                        None => Err(format!(
                            "{op} names no table: a function may list only its own service's streams"
                        )),
                    };
                    if let Err(why) = allowed {
                        return auth::refusal(auth::Protocol::DynamoDb, "AccessDeniedException", &why);
                    }
                }
                return match tables {
                    TableApi::Local(tables) => streams_api(tables, op, &body),
                    TableApi::Relay(upstream) => relay_table_call(*upstream, target, body).await,
                };
            }
            if let (Some(op), Some(tables)) = (target.strip_prefix("DynamoDB_20120810."), &self.tables) {
                if let Err(refused) = self.authorize_table_call(caller, &parts, op, &body) {
                    return refused;
                }
                return match tables {
                    TableApi::Local(tables) => table_api(tables, op, &body).await,
                    TableApi::Relay(upstream) => relay_table_call(*upstream, target, body).await,
                };
            }
        }
        if path == METRICS_PATH {
            if let Some(m) = &self.metrics {
                let mut text = m.render();
                if let Some(more) = self.more_metrics.get() {
                    text.push_str(&more.render());
                }
                let mut res = Response::new(Full::new(Bytes::from(text)));
                res.headers_mut()
                    .insert("content-type", HeaderValue::from_static("text/plain; version=0.0.4"));
                return res;
            }
        }
        if let Some(rest) = path.strip_prefix("/2015-03-31/functions/") {
            if let Some(authorizer) = &self.authorizer {
                let needs = || {
                    let name = routes::decode(rest.trim_end_matches("/invocations"));
                    let arn = match self.invoker.function(&name) {
                        Some(f) => sylph_iam::actions::function_arn(&self.region, &f.name),
                        None if name.starts_with("arn:") => name,
                        None => sylph_iam::actions::function_arn(&self.region, &name),
                    };
                    vec![("lambda:InvokeFunction".to_owned(), arn)]
                };
                if let Err(refused) = auth::check(authorizer, caller, &parts, &body, auth::Protocol::Lambda, needs) {
                    return refused;
                }
            }
            return invoke_api::handle(&self.invoker, self.events.get(), &self.region, &parts, rest, body).await;
        }
        if let Some(refused) = unserved_aws_service(&parts.headers) {
            return refused;
        }
        self.handle_route(parts, body, peer).await
    }

    /// Answer a request to a deployed API's public base (`sylph server`): a WebSocket
    /// handshake for its WebSocket API, or one of its HTTP routes ([`Gateway::handle_route`]).
    pub async fn handle_api(
        &self,
        parts: hyper::http::request::Parts,
        body: Bytes,
        peer: SocketAddr,
    ) -> Response<Body> {
        if let Some(ws) = &self.websockets {
            if websocket::is_upgrade(&parts) && ws.is_endpoint(parts.uri.path()) {
                return ws.upgrade(parts, peer, &self.guard).await;
            }
        }
        self.handle_route(parts, body, peer).await
    }

    /// Answer a request with the service's own HTTP routes only (API Gateway's part): what
    /// `sylph server` uses for a deployed API's public base, where the table, Invoke and
    /// metrics APIs must never answer (they need a key, checked elsewhere).
    pub async fn handle_route(
        &self,
        parts: hyper::http::request::Parts,
        body: Bytes,
        peer: SocketAddr,
    ) -> Response<Body> {
        let path = parts.uri.path();
        let method = parts.method.as_str();
        let Some(m) = self.router.find(method, path) else {
            if method == "OPTIONS" {
                if let Some(res) = self.preflight(&parts) {
                    return res;
                }
            }
            return self.no_route(path);
        };
        let route = m.route;
        let request_id = sylph_telemetry::new_request_id();
        let now = UtcTime::now();
        let source_ip = peer.ip().to_string();
        let protocol = match parts.version {
            hyper::Version::HTTP_10 => "HTTP/1.0",
            _ => "HTTP/1.1",
        };
        let req = apigw::RequestParts {
            method,
            path,
            query: parts.uri.query(),
            headers: &parts.headers,
            body: &body,
            source_ip: &source_ip,
            protocol,
        };
        let id_header = match route.api {
            ApiKind::Rest => "x-amzn-requestid",
            ApiKind::Http => "apigw-requestid",
        };
        // A browser's preflight carries no credentials: API Gateway answers it itself, before
        // any authorizer, on routes with CORS (an ANY or catch-all route matches OPTIONS too).
        if method == "OPTIONS" && route.method.is_none() && route.cors.is_some() {
            if let Some(res) = self.preflight(&parts) {
                return res;
            }
        }
        let access = if route.auth.is_some() || route.private {
            match self.guard.check(route, &m, &req, &parts, &request_id, &now).await {
                Ok(access) => access,
                Err(mut refused) => {
                    if let (ApiKind::Http, Some(cors)) = (route.api, &route.cors) {
                        add_cors_headers(&mut refused, cors, &parts.headers);
                    }
                    if let Ok(v) = HeaderValue::from_str(&request_id) {
                        refused.headers_mut().insert(id_header, v);
                    }
                    return refused;
                }
            }
        } else {
            apigw::Access::default()
        };
        if let Some(validator) = &route.validation {
            if let Err(mut refused) = validator.check(&req, &m) {
                if let Ok(v) = HeaderValue::from_str(&request_id) {
                    refused.headers_mut().insert(id_header, v);
                }
                return refused;
            }
        }
        let event = match route.api {
            ApiKind::Rest => apigw::rest_event(&req, &m, &self.stage, &request_id, &now, &access),
            ApiKind::Http => apigw::http_api_event(&req, &m, &request_id, &now, &access),
        };
        let result = self
            .invoker
            .invoke(
                &route.function,
                InvokeRequest {
                    payload: Bytes::from(event),
                    ..Default::default()
                },
            )
            .await;
        let mut res = match result {
            Ok(r) => match r.result {
                InvokeResult::Success(payload) => {
                    let mapped = match route.api {
                        ApiKind::Rest => apigw::rest_response(&payload),
                        ApiKind::Http => apigw::http_api_response(&payload),
                    };
                    match mapped {
                        Ok(m) => build_response(m),
                        Err(why) => {
                            tracing::warn!(function = %route.function, "malformed Lambda proxy response: {why}");
                            internal_error()
                        }
                    }
                }
                InvokeResult::Error {
                    kind: ErrorKind::Timeout,
                    ..
                } => json_message(StatusCode::GATEWAY_TIMEOUT, "Endpoint request timed out"),
                InvokeResult::Error { .. } => internal_error(),
            },
            // API Gateway answers a throttled Lambda integration with a 500.
            Err(sylph_invoker::InvokeError::Throttled(reason)) => {
                tracing::warn!(function = %route.function, "throttled: {}", reason.as_str());
                json_message(StatusCode::INTERNAL_SERVER_ERROR, "Internal server error")
            }
            Err(e) => {
                tracing::error!(function = %route.function, "cannot invoke: {e}");
                internal_error()
            }
        };
        if let (ApiKind::Http, Some(cors)) = (route.api, &route.cors) {
            add_cors_headers(&mut res, cors, &parts.headers);
        }
        if let Ok(v) = HeaderValue::from_str(&request_id) {
            res.headers_mut().insert(id_header, v);
        }
        res
    }

    /// IAM, then (for a function) the table guard, on a table call. Which tables the call
    /// names is read from the body once, for both.
    #[allow(clippy::result_large_err)]
    fn authorize_table_call(
        &self,
        caller: sylph_iam::Caller<'_>,
        parts: &hyper::http::request::Parts,
        op: &str,
        body: &[u8],
    ) -> Result<(), Response<Body>> {
        let needs = std::cell::OnceCell::new();
        let needs = || {
            needs
                .get_or_init(|| sylph_iam::actions::dynamodb(op, body, &self.region))
                .as_slice()
        };
        if let Some(authorizer) = &self.authorizer {
            auth::check(authorizer, caller, parts, body, auth::Protocol::DynamoDb, needs)?;
        }
        // After the caller is known: refusals name the service and its tables.
        if let (Some(guard), sylph_iam::Caller::Instance(_)) = (self.table_guard.get(), caller) {
            self.guard_tables(guard.as_ref(), op, needs())?;
        }
        Ok(())
    }

    /// Serve the call if it is one to the SQS API (see [`sqs_protocol`]); `None`: not SQS.
    async fn sqs_call(
        &self,
        queues: &sylph_queues::Queues,
        parts: &hyper::http::request::Parts,
        body: &Bytes,
        caller: sylph_iam::Caller<'_>,
    ) -> Option<Response<Body>> {
        let protocol = sqs_protocol(&parts.method, parts.uri.path(), &parts.headers)?;
        let call = SqsCall::read(protocol, parts, body);
        if let Some(authorizer) = &self.authorizer {
            let needs = || sylph_iam::actions::sqs(&call.operation, call.queue.as_deref(), &self.region);
            if let Err(refused) = auth::check(authorizer, caller, parts, body, auth::Protocol::Sqs, needs) {
                return Some(refused);
            }
        }
        // `sylph server`: a function reaches only its own service's queues (and those its
        // deployer may use), whatever its IAM statements say; a call that names no queue
        // (ListQueues) would name other services' queues.
        if let (Some(guard), sylph_iam::Caller::Instance(_)) = (self.table_guard.get(), caller) {
            let Some(queues) = call.queues() else {
                return Some(auth::refusal(
                    auth::Protocol::Sqs,
                    "AccessDeniedException",
                    &format!(
                        "{} names no queue: a function may list or use only its own service's queues",
                        call.operation
                    ),
                ));
            };
            for queue in queues {
                if let Err(why) = guard.check(&format!("{QUEUE_OWNER_PREFIX}{queue}")) {
                    return Some(auth::refusal(auth::Protocol::Sqs, "AccessDeniedException", &why));
                }
            }
        }
        Some(serve_sqs(queues, parts, body, &call).await)
    }

    /// Refuse a function's table call that names a table its guard rejects.
    #[allow(clippy::result_large_err)]
    fn guard_tables(&self, guard: &dyn TableGuard, op: &str, needs: &[(String, String)]) -> Result<(), Response<Body>> {
        for (_, resource) in needs {
            let Some(table) = sylph_iam::actions::table_of_arn(resource) else {
                // A call naming no table is one that lists (ListTables), or one that could
                // not be read: the latter could reach any table.
                if sylph_iam::actions::names_no_table(op) {
                    continue;
                }
                let why = format!("{op} names no table this function may use");
                tracing::warn!("refused a function's {op}: {why}");
                return Err(auth::refusal(auth::Protocol::DynamoDb, "AccessDeniedException", &why));
            };
            if let Err(why) = guard.check(table) {
                tracing::warn!("refused a function's {op} on {table}: {why}");
                return Err(auth::refusal(auth::Protocol::DynamoDb, "AccessDeniedException", &why));
            }
        }
        Ok(())
    }

    /// API Gateway's answer for a path no route serves.
    fn no_route(&self, path: &str) -> Response<Body> {
        if self.router.has_rest_routes() && self.router.strip_stage(path).is_some() {
            // What a REST API says for any unknown resource or method.
            json_message(StatusCode::FORBIDDEN, "Missing Authentication Token")
        } else {
            json_message(StatusCode::NOT_FOUND, "Not Found")
        }
    }

    /// Answer an OPTIONS preflight for a path whose routes have CORS configured.
    fn preflight(&self, parts: &hyper::http::request::Parts) -> Option<Response<Body>> {
        let (cors, methods) = self.router.cors_for_path(parts.uri.path())?;
        let mut res = Response::new(Full::new(Bytes::new()));
        *res.status_mut() = StatusCode::OK;
        add_cors_headers(&mut res, cors, &parts.headers);
        let allow_methods = if cors.allow_methods.is_empty() {
            let mut m: Vec<&str> = vec!["OPTIONS"];
            for method in methods {
                if !m.contains(&method) {
                    m.push(method);
                }
            }
            m.join(",")
        } else {
            cors.allow_methods.join(",")
        };
        let h = res.headers_mut();
        set(h, "access-control-allow-methods", &allow_methods);
        set(h, "access-control-allow-headers", &cors.allow_headers.join(","));
        if let Some(age) = cors.max_age {
            set(h, "access-control-max-age", &age.to_string());
        }
        Some(res)
    }
}

/// The AWS services whose APIs Sylph answers (and `execute-api`: IAM-signed calls to a
/// service's own HTTP routes).
const SERVED_AWS_SERVICES: &[&str] = &["dynamodb", "lambda", "execute-api", "sqs"];

/// Owners of queues share the tables' owner map (`sylph server`), under this prefix: a table
/// name never holds `:`.
pub const QUEUE_OWNER_PREFIX: &str = "sqs:";

/// Which SQS protocol a request speaks, from its headers: the JSON protocol
/// (`X-Amz-Target: AmazonSQS.*`), or the query protocol (a form POST signed for `sqs` or sent
/// to a queue's URL path, `/000000000000/{name}`). `None`: not an SQS call.
pub fn sqs_protocol(method: &hyper::Method, path: &str, headers: &hyper::HeaderMap) -> Option<SqsProtocol> {
    let header = |n: &str| headers.get(n).and_then(|v| v.to_str().ok());
    if header("x-amz-target").is_some_and(|t| t.starts_with("AmazonSQS.")) {
        return Some(SqsProtocol::Json);
    }
    // Every request passes here: only a form POST goes on to the checks below (the signature's
    // service is parsed for those alone, not for every signed table call).
    let form = method == hyper::Method::POST
        && header("content-type").is_some_and(|c| c.starts_with("application/x-www-form-urlencoded"));
    if !form {
        return None;
    }
    let queue_path = path
        .strip_prefix('/')
        .and_then(|p| p.strip_prefix(sylph_model::LOCAL_ACCOUNT_ID))
        .is_some_and(|rest| rest.starts_with('/'));
    let signed_for_sqs = || {
        header("authorization")
            .and_then(|a| sylph_iam::sigv4::parse_authorization(a).ok())
            .is_some_and(|a| a.service == "sqs")
    };
    (queue_path || signed_for_sqs()).then_some(SqsProtocol::Query)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SqsProtocol {
    Json,
    Query,
}

/// An SQS call: its operation, the queue it acts on, and the dead-letter queue it would point
/// that queue at (which then receives its messages).
#[derive(Debug)]
pub struct SqsCall {
    pub protocol: SqsProtocol,
    pub operation: String,
    pub queue: Option<String>,
    pub dead_letter: Option<String>,
}

impl SqsCall {
    /// Every queue the call touches, for ownership checks. `None` for a call that names none
    /// (ListQueues, or a queue URL that names no queue).
    pub fn queues(&self) -> Option<Vec<&str>> {
        let queue = self.queue.as_deref()?;
        Some(std::iter::once(queue).chain(self.dead_letter.as_deref()).collect())
    }
}

impl SqsCall {
    pub fn read(protocol: SqsProtocol, parts: &hyper::http::request::Parts, body: &[u8]) -> SqsCall {
        match protocol {
            SqsProtocol::Json => {
                let operation = parts
                    .headers
                    .get("x-amz-target")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|t| t.strip_prefix("AmazonSQS."))
                    .unwrap_or_default()
                    .to_owned();
                let input: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
                SqsCall {
                    protocol,
                    queue: sylph_queues::wire::queue_of(&operation, &input, ""),
                    dead_letter: sylph_queues::wire::dead_letter_target_of(&input),
                    operation,
                }
            }
            SqsProtocol::Query => {
                let (operation, input) = sylph_queues::wire::parse_query(body);
                SqsCall {
                    protocol,
                    queue: sylph_queues::wire::queue_of(&operation, &input, parts.uri.path()),
                    dead_letter: sylph_queues::wire::dead_letter_target_of(&input),
                    operation,
                }
            }
        }
    }
}

/// Answer an SQS call from `queues` (queue URLs name the host the client used).
pub async fn serve_sqs(
    queues: &sylph_queues::Queues,
    parts: &hyper::http::request::Parts,
    body: &[u8],
    call: &SqsCall,
) -> Response<Body> {
    let host = parts
        .headers
        .get(hyper::header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("localhost");
    let base = format!("http://{host}");
    let answer = match call.protocol {
        SqsProtocol::Json => sylph_queues::wire::handle_json(queues, &call.operation, body, &base).await,
        SqsProtocol::Query => sylph_queues::wire::handle_query(queues, body, parts.uri.path(), &base).await,
    };
    let mut res = Response::new(Full::new(Bytes::from(answer.body)));
    *res.status_mut() = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let h = res.headers_mut();
    h.insert("content-type", HeaderValue::from_static(answer.content_type));
    if let Some(code) = answer.query_error.and_then(|c| HeaderValue::from_str(&c).ok()) {
        h.insert("x-amzn-query-error", code);
    }
    res
}

/// An SDK call (SigV4-signed) to an AWS service Sylph does not serve: every SDK client in a
/// function points at Sylph, so without this an SQS or S3 call got an opaque 404. The answer
/// names the service, in the error shape the client's protocol reads: XML for query-protocol
/// services (SNS, STS, SES, … send forms) and for S3, JSON for the others.
pub fn unserved_aws_service(headers: &hyper::HeaderMap) -> Option<Response<Body>> {
    let authorization = headers.get("authorization")?.to_str().ok()?;
    let auth = sylph_iam::sigv4::parse_authorization(authorization).ok()?;
    if SERVED_AWS_SERVICES.contains(&auth.service) {
        return None;
    }
    // Only letters, digits and `-` of the service name go into the answer (it is the caller's).
    let service: String = auth
        .service
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .take(64)
        .collect();
    let message = format!("Sylph does not serve the AWS service `{service}` (yet): it answers DynamoDB, Lambda and SQS only. Point this client at the real service, or do without it locally.");
    let form = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|c| c.starts_with("application/x-www-form-urlencoded"));
    let (body, content_type) = if service == "s3" {
        (
            format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>NotImplemented</Code><Message>{message}</Message></Error>"),
            "application/xml",
        )
    } else if form {
        (
            format!("<ErrorResponse><Error><Type>Sender</Type><Code>UnsupportedOperation</Code><Message>{message}</Message></Error><RequestId>{}</RequestId></ErrorResponse>", sylph_telemetry::new_request_id()),
            "text/xml",
        )
    } else {
        (
            serde_json::json!({"__type": "UnsupportedOperationException", "message": message}).to_string(),
            "application/x-amz-json-1.0",
        )
    };
    let mut res = Response::new(Full::new(Bytes::from(body)));
    *res.status_mut() = StatusCode::BAD_REQUEST;
    let h = res.headers_mut();
    h.insert("content-type", HeaderValue::from_static(content_type));
    h.insert(
        "x-amzn-errortype",
        HeaderValue::from_static("UnsupportedOperationException"),
    );
    Some(res)
}

/// A request's body, up to [`MAX_REQUEST_BYTES`] within `timeout`; past either, the answer the
/// request's protocol gives (408, or 413 / Lambda's `RequestTooLargeException`).
pub async fn read_body(
    parts: &hyper::http::request::Parts,
    body: Incoming,
    timeout: std::time::Duration,
) -> Result<Bytes, Response<Body>> {
    match tokio::time::timeout(timeout, Limited::new(body, MAX_REQUEST_BYTES).collect()).await {
        Ok(Ok(b)) => Ok(b.to_bytes()),
        // A client that announces a body and never sends it would otherwise hold its
        // connection (and a place under the connection cap) forever.
        Err(_) => Err(json_message(StatusCode::REQUEST_TIMEOUT, "Request Timeout")),
        Ok(Err(_)) if parts.uri.path().starts_with("/2015-03-31/") => Err(invoke_api::error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "RequestTooLargeException",
            "Request must be smaller than 6291456 bytes for the InvokeFunction operation",
        )),
        Ok(Err(_)) => Err(json_message(StatusCode::PAYLOAD_TOO_LARGE, "Request Too Long")),
    }
}

/// One DynamoDB JSON-protocol request.
pub async fn table_api(tables: &Tables, operation: &str, body: &[u8]) -> Response<Body> {
    let (status, bytes) = tables.handle_bytes(operation, body).await;
    let mut res = Response::new(Full::new(Bytes::from(bytes)));
    *res.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let h = res.headers_mut();
    h.insert("content-type", HeaderValue::from_static("application/x-amz-json-1.0"));
    if let Ok(v) = HeaderValue::from_str(&sylph_telemetry::new_request_id()) {
        h.insert("x-amzn-requestid", v);
    }
    res
}

/// Answer a DynamoDB Streams call from `tables`.
pub fn streams_api(tables: &Tables, operation: &str, body: &[u8]) -> Response<Body> {
    let (status, bytes) = tables.handle_streams(operation, body);
    let mut res = Response::new(Full::new(Bytes::from(bytes)));
    *res.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    res.headers_mut()
        .insert("content-type", HeaderValue::from_static("application/x-amz-json-1.0"));
    res
}

/// One table call relayed, already authorized, to another Sylph's table API on this machine.
async fn relay_table_call(upstream: SocketAddr, target: &str, body: Bytes) -> Response<Body> {
    let unavailable = |why: String| {
        tracing::warn!("cannot relay a table call to {upstream}: {why}");
        let mut res = Response::new(Full::new(Bytes::from_static(
            br#"{"__type":"com.amazonaws.dynamodb.v20120810#InternalServerError","message":"The table service is not reachable"}"#,
        )));
        *res.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
        res
    };
    let stream = match tokio::net::TcpStream::connect(upstream).await {
        Ok(s) => s,
        Err(e) => return unavailable(e.to_string()),
    };
    let (mut sender, conn) = match hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await {
        Ok(pair) => pair,
        Err(e) => return unavailable(e.to_string()),
    };
    tokio::spawn(conn);
    let request = Request::post("/")
        .header("host", upstream.to_string())
        .header("x-amz-target", target)
        .header("content-type", "application/x-amz-json-1.0")
        .body(Full::new(body));
    let request = match request {
        Ok(r) => r,
        Err(e) => return unavailable(e.to_string()),
    };
    let response = match sender.send_request(request).await {
        Ok(r) => r,
        Err(e) => return unavailable(e.to_string()),
    };
    let (parts, incoming) = response.into_parts();
    match Limited::new(incoming, MAX_REQUEST_BYTES * 4).collect().await {
        Ok(collected) => Response::from_parts(parts, Full::new(collected.to_bytes())),
        Err(e) => unavailable(e.to_string()),
    }
}

fn set(h: &mut hyper::HeaderMap, name: &'static str, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        h.insert(name, v);
    }
}

/// `Access-Control-Allow-Origin` and friends for an allowed origin.
fn add_cors_headers(res: &mut Response<Body>, cors: &Cors, req_headers: &hyper::HeaderMap) {
    let origin = req_headers.get("origin").and_then(|v| v.to_str().ok());
    let allowed = if cors.allow_origins.iter().any(|o| o == "*") {
        // With credentials, browsers reject `*`, so echo the origin instead.
        match (cors.allow_credentials, origin) {
            (true, Some(o)) => Some(o.to_owned()),
            _ => Some("*".to_owned()),
        }
    } else {
        origin
            .filter(|o| cors.allow_origins.iter().any(|a| a == o))
            .map(str::to_owned)
    };
    let Some(allowed) = allowed else { return };
    let h = res.headers_mut();
    set(h, "access-control-allow-origin", &allowed);
    if cors.allow_credentials {
        set(h, "access-control-allow-credentials", "true");
    }
    if !cors.expose_headers.is_empty() {
        set(h, "access-control-expose-headers", &cors.expose_headers.join(","));
    }
}

fn build_response(m: MappedResponse) -> Response<Body> {
    let mut res = Response::new(Full::new(m.body));
    *res.status_mut() = StatusCode::from_u16(m.status).unwrap_or(StatusCode::BAD_GATEWAY);
    let h = res.headers_mut();
    for (k, v) in m.headers {
        if let (Ok(name), Ok(value)) = (HeaderName::from_bytes(k.as_bytes()), HeaderValue::from_str(&v)) {
            h.append(name, value);
        }
    }
    res
}

/// `{"message": …}` with `status`, as API Gateway answers.
pub fn json_message(status: StatusCode, message: &str) -> Response<Body> {
    let body = serde_json::json!({ "message": message }).to_string();
    let mut res = Response::new(Full::new(Bytes::from(body)));
    *res.status_mut() = status;
    res.headers_mut()
        .insert("content-type", HeaderValue::from_static("application/json"));
    res
}

/// API Gateway's answer when the integration failed.
fn internal_error() -> Response<Body> {
    json_message(StatusCode::BAD_GATEWAY, "Internal server error")
}
