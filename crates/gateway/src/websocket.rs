//! API Gateway WebSocket APIs: `websocket` events. A client connects to `ws://host/{stage}`
//! (or `/`); `$connect` (after its authorizer, if any) decides whether it may; each message
//! goes to the route its body's selection expression names (`$request.body.action`), else to
//! `$default`; `$disconnect` hears when it has gone. Functions talk back through the
//! `@connections` management API (PostToConnection, GetConnection, DeleteConnection), which
//! the SDKs' `ApiGatewayManagementApi` clients call unchanged.
//!
//! Limits are API Gateway's: 128 KB messages in frames of at most 32 KB, 10 minutes idle and 2
//! hours in all per connection; and a cap on connections per service.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use futures_util::{SinkExt as _, StreamExt as _};
use http_body_util::Full;
use hyper::header::HeaderValue;
use hyper::{Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{json, Map, Value};
use sylph_invoker::{InvokeRequest, InvokeResult, Invoker};
use sylph_model::{Service, LOCAL_ACCOUNT_ID};
use sylph_telemetry::UtcTime;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::protocol::{frame::coding::CloseCode, CloseFrame, Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::Message;

use crate::authorizers::{RouteAuth, RouteGuard};
use crate::Body;

/// API Gateway's largest WebSocket message, and its largest frame.
pub const MAX_MESSAGE_BYTES: usize = 128 * 1024;
const MAX_FRAME_BYTES: usize = 32 * 1024;
/// A connection with no message either way for this long is closed.
const IDLE_TIMEOUT: Duration = Duration::from_secs(10 * 60);
/// No connection lasts longer than this.
const MAX_DURATION: Duration = Duration::from_secs(2 * 60 * 60);
/// Connections open at once per service; past it a handshake gets 429.
const MAX_CONNECTIONS: usize = 10_000;
/// Messages waiting to be written to one client; a PostToConnection past it gets 429.
const OUTGOING_QUEUE: usize = 64;
/// Messages of one connection whose functions run at once; past it Sylph stops reading from
/// the client until one finishes, so a fast sender cannot pile up tasks and memory.
const IN_FLIGHT_PER_CONNECTION: usize = 16;
/// How long a write to a client may wait (a client that stops reading fills its socket): past
/// it the connection is dropped, so its task ends and `$disconnect` runs.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug)]
struct WsRoute {
    function: String,
    respond: bool,
}

enum Outgoing {
    Message(Message),
    Close,
}

/// One open connection, as the management API sees it.
struct Connection {
    sender: mpsc::Sender<Outgoing>,
    connected_at: UtcTime,
    /// Milliseconds since the epoch of the last message either way.
    last_active: AtomicU64,
    source_ip: String,
    user_agent: String,
    /// What the `$connect` authorizer said, handed to every later event.
    authorizer: Option<Value>,
    domain: String,
}

/// A service's WebSocket API.
pub struct WebSockets {
    routes: HashMap<String, WsRoute>,
    /// The JSON path into a message whose value is its route key.
    selection: Vec<String>,
    connect_auth: Option<Arc<RouteAuth>>,
    connections: Mutex<HashMap<String, Arc<Connection>>>,
    invoker: Arc<dyn Invoker>,
    stage: String,
}

impl WebSockets {
    /// `None` when the service has no `websocket` events.
    pub fn new(service: &Service, invoker: Arc<dyn Invoker>) -> Option<Arc<WebSockets>> {
        let mut routes = HashMap::new();
        let mut connect_auth = None;
        for f in &service.functions {
            for event in &f.events {
                let sylph_model::Event::WebSocket(r) = event else {
                    continue;
                };
                if let (Some(a), "$connect") = (&r.authorizer, r.route.as_str()) {
                    // `$connect` authorizers take REST's event and policy shapes.
                    connect_auth = Some(Arc::new(RouteAuth::new(a.clone(), sylph_model::ApiKind::Rest)));
                }
                routes.insert(
                    r.route.clone(),
                    WsRoute {
                        function: f.name.clone(),
                        respond: r.respond,
                    },
                );
            }
        }
        if routes.is_empty() {
            return None;
        }
        Some(Arc::new(WebSockets {
            routes,
            selection: service.websocket_route_selection.clone(),
            connect_auth,
            connections: Mutex::new(HashMap::new()),
            invoker,
            stage: service.stage.clone(),
        }))
    }

    /// Whether `path` is where clients connect: `/{stage}` or `/`.
    pub fn is_endpoint(&self, path: &str) -> bool {
        path == "/"
            || path
                .strip_prefix('/')
                .is_some_and(|p| p.trim_end_matches('/') == self.stage)
    }

    /// The route keys, for the start-up listing.
    pub fn route_keys(&self) -> Vec<(&str, &str)> {
        let mut keys: Vec<(&str, &str)> = self
            .routes
            .iter()
            .map(|(k, r)| (k.as_str(), r.function.as_str()))
            .collect();
        keys.sort();
        keys
    }

    /// Close every connection (with a close frame, as DeleteConnection does).
    pub fn close_all(&self) {
        for connection in self.connections.lock().unwrap_or_else(|e| e.into_inner()).values() {
            let _ = connection.sender.try_send(Outgoing::Close);
        }
    }

    fn connection(&self, id: &str) -> Option<Arc<Connection>> {
        self.connections
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
            .cloned()
    }

    /// Answer a WebSocket handshake: run the authorizer and `$connect`, then switch protocols
    /// and serve the connection in a task of its own.
    pub async fn upgrade(
        self: &Arc<Self>,
        mut parts: hyper::http::request::Parts,
        peer: SocketAddr,
        guard: &RouteGuard,
    ) -> Response<Body> {
        let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok());
        let Some(key) = header("sec-websocket-key").map(str::to_owned) else {
            return message(StatusCode::BAD_REQUEST, "Bad Request: no Sec-WebSocket-Key");
        };
        if header("sec-websocket-version") != Some("13") {
            return message(
                StatusCode::BAD_REQUEST,
                "Bad Request: only WebSocket version 13 is spoken",
            );
        }
        if self.connections.lock().unwrap_or_else(|e| e.into_inner()).len() >= MAX_CONNECTIONS {
            return message(StatusCode::TOO_MANY_REQUESTS, "Too many connections");
        }
        let Some(on_upgrade) = parts.extensions.remove::<hyper::upgrade::OnUpgrade>() else {
            return message(
                StatusCode::BAD_REQUEST,
                "Bad Request: the connection cannot be upgraded",
            );
        };
        let id = connection_id();
        let request_id = sylph_telemetry::new_request_id();
        let now = UtcTime::now();
        let domain = header("host").unwrap_or("localhost").to_owned();
        let (sender, receiver) = mpsc::channel(OUTGOING_QUEUE);
        let mut connection = Connection {
            sender,
            connected_at: now,
            last_active: AtomicU64::new(now.epoch_millis),
            source_ip: peer.ip().to_string(),
            user_agent: header("user-agent").unwrap_or("").to_owned(),
            authorizer: None,
            domain,
        };
        if let Some(auth) = &self.connect_auth {
            let event = self.connect_event(&parts, &connection, &id, &request_id, &now);
            match guard.check_websocket_connect(auth, &parts, &self.stage, event).await {
                Ok(context) => connection.authorizer = Some(context),
                Err(refused) => return refused,
            }
        }
        if let Some(route) = self.routes.get("$connect") {
            // Its `requestContext` carries what the authorizer said.
            let event = self.connect_event(&parts, &connection, &id, &request_id, &now);
            match self.invoke(&route.function, &event).await {
                Ok(answer) => {
                    let status = answer.get("statusCode").and_then(Value::as_u64).unwrap_or(200);
                    if !(200..300).contains(&status) {
                        let body = answer.get("body").and_then(Value::as_str).unwrap_or("").to_owned();
                        let mut res = Response::new(Full::new(Bytes::from(body)));
                        *res.status_mut() = StatusCode::from_u16(status as u16).unwrap_or(StatusCode::FORBIDDEN);
                        return res;
                    }
                }
                Err(()) => return message(StatusCode::INTERNAL_SERVER_ERROR, "Internal server error"),
            }
        }
        let connection = Arc::new(connection);
        self.connections
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id.clone(), connection.clone());
        let this = self.clone();
        tokio::spawn(async move {
            match on_upgrade.await {
                Ok(upgraded) => this.serve(&id, connection, TokioIo::new(upgraded), receiver).await,
                Err(e) => {
                    tracing::debug!("WebSocket {id}: the upgrade did not happen: {e}");
                    this.closed(&id, &connection, 1006, "Connection lost");
                }
            }
        });
        let mut res = Response::new(Full::new(Bytes::new()));
        *res.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
        let h = res.headers_mut();
        h.insert("upgrade", HeaderValue::from_static("websocket"));
        h.insert("connection", HeaderValue::from_static("Upgrade"));
        if let Ok(v) = HeaderValue::from_str(&tokio_tungstenite::tungstenite::handshake::derive_accept_key(
            key.as_bytes(),
        )) {
            h.insert("sec-websocket-accept", v);
        }
        res
    }

    async fn serve<S>(
        self: Arc<Self>,
        id: &str,
        connection: Arc<Connection>,
        io: S,
        mut outgoing: mpsc::Receiver<Outgoing>,
    ) where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    {
        let config = WebSocketConfig::default()
            .max_message_size(Some(MAX_MESSAGE_BYTES))
            .max_frame_size(Some(MAX_FRAME_BYTES));
        let mut ws = tokio_tungstenite::WebSocketStream::from_raw_socket(io, Role::Server, Some(config)).await;
        let deadline = tokio::time::Instant::now() + MAX_DURATION;
        let in_flight = Arc::new(tokio::sync::Semaphore::new(IN_FLIGHT_PER_CONNECTION));
        let (code, reason) = loop {
            let idle_since = connection.last_active.load(Ordering::Relaxed);
            let idle_left = IDLE_TIMEOUT.saturating_sub(Duration::from_millis(
                UtcTime::now().epoch_millis.saturating_sub(idle_since),
            ));
            tokio::select! {
                incoming = ws.next() => match incoming {
                    Some(Ok(message @ (Message::Text(_) | Message::Binary(_)))) => {
                        self.touch(&connection);
                        let Ok(permit) = in_flight.clone().acquire_owned().await else { break (1011, String::new()) };
                        let (body, binary) = match message {
                            Message::Binary(data) => (base64::engine::general_purpose::STANDARD.encode(&data), true),
                            Message::Text(text) => (text.as_str().to_owned(), false),
                            _ => unreachable!("matched above"),
                        };
                        self.clone().dispatch(id, &connection, body, binary, permit);
                    }
                    Some(Ok(Message::Close(frame))) => {
                        break frame.map_or((1005, String::new()), |f| (u16::from(f.code), f.reason.to_string()));
                    }
                    Some(Ok(_)) => {}
                    Some(Err(e)) => {
                        tracing::debug!("WebSocket {id}: {e}");
                        close(&mut ws, CloseCode::Size, "Message too big").await;
                        break (1009, e.to_string());
                    }
                    None => break (1006, "Connection lost".to_owned()),
                },
                out = outgoing.recv() => match out {
                    Some(Outgoing::Message(m)) => {
                        self.touch(&connection);
                        if !matches!(tokio::time::timeout(WRITE_TIMEOUT, ws.send(m)).await, Ok(Ok(()))) {
                            break (1006, "Connection lost".to_owned());
                        }
                    }
                    Some(Outgoing::Close) | None => {
                        close(&mut ws, CloseCode::Normal, "Connection closed by the server").await;
                        break (1000, "Connection closed by the server".to_owned());
                    }
                },
                _ = tokio::time::sleep(idle_left) => {
                    close(&mut ws, CloseCode::Away, "Idle timeout").await;
                    break (1001, "Going away".to_owned());
                }
                _ = tokio::time::sleep_until(deadline) => {
                    close(&mut ws, CloseCode::Away, "Connection time limit").await;
                    break (1001, "Going away".to_owned());
                }
            }
        };
        self.closed(id, &connection, code, &reason);
    }

    fn touch(&self, connection: &Connection) {
        connection
            .last_active
            .store(UtcTime::now().epoch_millis, Ordering::Relaxed);
    }

    /// Forget a connection and tell `$disconnect` (API Gateway's best effort: once, no retry).
    fn closed(self: &Arc<Self>, id: &str, connection: &Connection, code: u16, reason: &str) {
        self.connections.lock().unwrap_or_else(|e| e.into_inner()).remove(id);
        let Some(route) = self.routes.get("$disconnect") else {
            return;
        };
        let mut event = self.message_event(id, connection, "$disconnect", "DISCONNECT", None, false);
        if let Some(ctx) = event.get_mut("requestContext") {
            ctx["disconnectStatusCode"] = json!(code);
            ctx["disconnectReason"] = json!(reason);
        }
        let this = self.clone();
        let function = route.function.clone();
        tokio::spawn(async move {
            let _ = this.invoke(&function, &event).await;
        });
    }

    /// Run the route a message selects, in a task of its own (API Gateway does not wait for
    /// one message's function before taking the next).
    fn dispatch(
        self: Arc<Self>,
        id: &str,
        connection: &Arc<Connection>,
        body: String,
        binary: bool,
        permit: tokio::sync::OwnedSemaphorePermit,
    ) {
        let selected = if binary {
            None
        } else {
            serde_json::from_str::<Value>(&body).ok().and_then(|v| {
                let mut at = &v;
                for key in &self.selection {
                    at = at.get(key)?;
                }
                at.as_str().map(str::to_owned)
            })
        };
        let route_key = match selected {
            Some(k) if self.routes.contains_key(&k) && !k.starts_with('$') => k,
            _ => "$default".to_owned(),
        };
        let id = id.to_owned();
        let connection = connection.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let Some(route) = self.routes.get(&route_key) else {
                // API Gateway's answer to a message no route takes.
                let text =
                    json!({"message": "Forbidden", "connectionId": id, "requestId": sylph_telemetry::new_request_id()});
                let _ = connection
                    .sender
                    .try_send(Outgoing::Message(Message::text(text.to_string())));
                return;
            };
            let event = self.message_event(&id, &connection, &route_key, "MESSAGE", Some(body), binary);
            let answer = self.invoke(&route.function, &event).await;
            if !route.respond {
                return;
            }
            let reply = match answer {
                Ok(Value::Object(obj)) if obj.contains_key("body") => match obj.get("body") {
                    Some(Value::String(s)) => s.clone(),
                    Some(other) => other.to_string(),
                    None => return,
                },
                Ok(Value::Null) => return,
                Ok(other) => other.to_string(),
                Err(()) => json!({"message": "Internal server error", "connectionId": id, "requestId": sylph_telemetry::new_request_id()}).to_string(),
            };
            let _ = connection.sender.try_send(Outgoing::Message(Message::text(reply)));
        });
    }

    async fn invoke(&self, function: &str, event: &Value) -> Result<Value, ()> {
        let result = self
            .invoker
            .invoke(
                function,
                InvokeRequest {
                    payload: Bytes::from(serde_json::to_vec(event).unwrap_or_default()),
                    ..Default::default()
                },
            )
            .await;
        match result {
            Ok(r) => match r.result {
                InvokeResult::Success(p) => Ok(serde_json::from_slice(&p).unwrap_or(Value::Null)),
                InvokeResult::Error { .. } => Err(()),
            },
            Err(e) => {
                tracing::warn!(function, "cannot invoke: {e}");
                Err(())
            }
        }
    }

    fn request_context(
        &self,
        id: &str,
        connection: &Connection,
        route: &str,
        kind: &str,
        request_id: &str,
        now: &UtcTime,
    ) -> Value {
        let mut ctx = json!({
            "routeKey": route,
            "eventType": kind,
            "extendedRequestId": request_id,
            "requestTime": now.clf(),
            "messageDirection": "IN",
            "stage": self.stage,
            "connectedAt": connection.connected_at.epoch_millis,
            "requestTimeEpoch": now.epoch_millis,
            "identity": {"sourceIp": connection.source_ip, "userAgent": connection.user_agent},
            "requestId": request_id,
            "domainName": connection.domain,
            "connectionId": id,
            "apiId": crate::apigw::API_ID,
            "accountId": LOCAL_ACCOUNT_ID,
        });
        if let Some(a) = &connection.authorizer {
            ctx["authorizer"] = a.clone();
        }
        ctx
    }

    fn connect_event(
        &self,
        parts: &hyper::http::request::Parts,
        connection: &Connection,
        id: &str,
        request_id: &str,
        now: &UtcTime,
    ) -> Value {
        let mut headers = Map::new();
        let mut multi: HashMap<String, Vec<Value>> = HashMap::new();
        for (name, value) in &parts.headers {
            let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
            headers.insert(name.as_str().to_owned(), json!(value));
            multi.entry(name.as_str().to_owned()).or_default().push(json!(value));
        }
        let mut query = Map::new();
        let mut multi_query: HashMap<String, Vec<Value>> = HashMap::new();
        for pair in parts.uri.query().unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let (k, v) = (
                crate::routes::decode(&k.replace('+', " ")),
                crate::routes::decode(&v.replace('+', " ")),
            );
            query.insert(k.clone(), json!(v));
            multi_query.entry(k).or_default().push(json!(v));
        }
        let mut event = json!({
            "headers": headers,
            "multiValueHeaders": multi,
            "requestContext": self.request_context(id, connection, "$connect", "CONNECT", request_id, now),
            "isBase64Encoded": false,
        });
        if !query.is_empty() {
            event["queryStringParameters"] = Value::Object(query);
            event["multiValueQueryStringParameters"] = json!(multi_query);
        }
        event
    }

    fn message_event(
        &self,
        id: &str,
        connection: &Connection,
        route: &str,
        kind: &str,
        body: Option<String>,
        binary: bool,
    ) -> Value {
        let request_id = sylph_telemetry::new_request_id();
        let now = UtcTime::now();
        let mut ctx = self.request_context(id, connection, route, kind, &request_id, &now);
        let mut event = json!({ "isBase64Encoded": binary });
        if kind == "MESSAGE" {
            ctx["messageId"] = json!(sylph_telemetry::new_request_id());
        }
        event["requestContext"] = ctx;
        if let Some(body) = body {
            event["body"] = json!(body);
        }
        event
    }

    /// The `@connections/{id}` management API: POST sends data, GET describes, DELETE closes.
    pub fn manage(&self, method: &hyper::Method, id: &str, body: Bytes) -> Response<Body> {
        let gone = || error(StatusCode::GONE, "GoneException", None);
        let Some(connection) = self.connection(id) else {
            return gone();
        };
        match *method {
            hyper::Method::POST => {
                if body.len() > MAX_MESSAGE_BYTES {
                    return error(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        "PayloadTooLargeException",
                        Some("Message too long"),
                    );
                }
                let message = match String::from_utf8(body.to_vec()) {
                    Ok(text) => Message::text(text),
                    Err(_) => Message::Binary(body),
                };
                match connection.sender.try_send(Outgoing::Message(message)) {
                    Ok(()) => Response::new(Full::new(Bytes::new())),
                    Err(mpsc::error::TrySendError::Full(_)) => error(
                        StatusCode::TOO_MANY_REQUESTS,
                        "LimitExceededException",
                        Some("Too many messages wait for this connection"),
                    ),
                    Err(mpsc::error::TrySendError::Closed(_)) => gone(),
                }
            }
            hyper::Method::GET => {
                let last = UtcTime::from_system(
                    std::time::UNIX_EPOCH + Duration::from_millis(connection.last_active.load(Ordering::Relaxed)),
                );
                let body = json!({
                    "ConnectedAt": connection.connected_at.iso8601(),
                    "Identity": {"SourceIp": connection.source_ip, "UserAgent": connection.user_agent},
                    "LastActiveAt": last.iso8601(),
                });
                let mut res = Response::new(Full::new(Bytes::from(body.to_string())));
                res.headers_mut()
                    .insert("content-type", HeaderValue::from_static("application/json"));
                res
            }
            hyper::Method::DELETE => {
                let _ = connection.sender.try_send(Outgoing::Close);
                let mut res = Response::new(Full::new(Bytes::new()));
                *res.status_mut() = StatusCode::NO_CONTENT;
                res
            }
            _ => error(
                StatusCode::METHOD_NOT_ALLOWED,
                "BadRequestException",
                Some("Use POST, GET or DELETE"),
            ),
        }
    }
}

/// Send a close frame, but never wait long for a client that does not read.
async fn close<S>(ws: &mut tokio_tungstenite::WebSocketStream<S>, code: CloseCode, reason: &str)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let frame = CloseFrame {
        code,
        reason: reason.to_owned().into(),
    };
    let _ = tokio::time::timeout(WRITE_TIMEOUT, ws.close(Some(frame))).await;
}

/// The connection id in `…/@connections/{id}` (with or without the stage in front).
pub fn connection_path(path: &str) -> Option<String> {
    let (_, raw) = path.split_once("/@connections/")?;
    (!raw.is_empty() && !raw.contains('/')).then(|| crate::routes::decode(raw))
}

/// Ids in API Gateway's shape (16 characters of 12 random bytes), in base64's URL alphabet so
/// that an id is one path segment however a client escapes it.
fn connection_id() -> String {
    let mut bytes = [0u8; 12];
    sylph_telemetry::fill_random(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn message(status: StatusCode, text: &str) -> Response<Body> {
    let mut res = Response::new(Full::new(Bytes::from(json!({ "message": text }).to_string())));
    *res.status_mut() = status;
    res.headers_mut()
        .insert("content-type", HeaderValue::from_static("application/json"));
    res
}

fn error(status: StatusCode, error_type: &'static str, text: Option<&str>) -> Response<Body> {
    let mut res = message(status, text.unwrap_or(""));
    if text.is_none() {
        *res.body_mut() = Full::new(Bytes::from_static(b"{\"message\":null}"));
    }
    res.headers_mut()
        .insert("x-amzn-errortype", HeaderValue::from_static(error_type));
    res
}

/// Whether a request asks to become a WebSocket.
pub fn is_upgrade(parts: &hyper::http::request::Parts) -> bool {
    parts.method == hyper::Method::GET
        && parts
            .headers
            .get("upgrade")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}
