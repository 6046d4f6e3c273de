//! The server's front door: every request on its port goes to the admin API, to one deployed
//! service's API (by `Host: {api_id}.{domain}` or by `/apis/{api_id}/…`), or to the Invoke and
//! table APIs, which require a SigV4 signature from a key allowed for the function's or
//! table's service. Nothing but the services' own HTTP routes (and a content-free health
//! check) answers without a key.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use sylph_control::keys::Key;
use sylph_gateway::auth::{auth_error, refusal, Protocol};
use sylph_iam::{AuthError, SignatureError};

use super::platform::Platform;

type Body = Full<Bytes>;

pub struct Front {
    pub platform: Arc<Platform>,
}

impl sylph_gateway::Handler for Front {
    async fn serve_request(
        self: Arc<Self>,
        req: Request<Incoming>,
        peer: SocketAddr,
        _instance_key: Option<Arc<str>>,
        body_timeout: Duration,
    ) -> Response<Body> {
        self.route(req, peer, body_timeout).await
    }
}

impl Front {
    async fn route(&self, req: Request<Incoming>, peer: SocketAddr, body_timeout: Duration) -> Response<Body> {
        let path = req.uri().path();
        if path == sylph_control::api::HEALTH_PATH {
            return health(&self.platform);
        }
        if path.starts_with(sylph_control::api::ADMIN_PREFIX) || path == sylph_gateway::METRICS_PATH {
            return super::admin::handle(&self.platform, req, body_timeout).await;
        }
        // A deployed API, by host name or by path.
        let host = req
            .headers()
            .get(hyper::header::HOST)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        // A name under the domain that is no API id (the server's own public name, say) falls
        // through to the other APIs.
        if let Some(live) = api_from_host(host, &self.platform.domain).and_then(|id| self.platform.by_api(id)) {
            let (parts, body) = req.into_parts();
            let body = match sylph_gateway::read_body(&parts, body, body_timeout).await {
                Ok(b) => b,
                Err(refused) => return refused,
            };
            let running = live.route();
            return running.hosted.gateway.handle_api(parts, body, peer).await;
        }
        if let Some(rest) = path.strip_prefix("/apis/") {
            let (api_id, tail) = rest.split_once('/').unwrap_or((rest, ""));
            let Some(live) = self.platform.by_api(api_id) else {
                return sylph_gateway::json_message(
                    StatusCode::NOT_FOUND,
                    "Not Found: no API is deployed with this id",
                );
            };
            // The path the service's routes see: what follows its API id.
            let inner = match req.uri().query() {
                Some(q) => format!("/{tail}?{q}"),
                None => format!("/{tail}"),
            };
            let (mut parts, body) = req.into_parts();
            match inner.parse() {
                Ok(uri) => {
                    let original = std::mem::replace(&mut parts.uri, uri);
                    parts.extensions.insert(sylph_gateway::OriginalUri(original));
                }
                Err(_) => return sylph_gateway::json_message(StatusCode::BAD_REQUEST, "Bad Request"),
            }
            let body = match sylph_gateway::read_body(&parts, body, body_timeout).await {
                Ok(b) => b,
                Err(refused) => return refused,
            };
            let running = live.route();
            return running.hosted.gateway.handle_api(parts, body, peer).await;
        }
        let target = req
            .headers()
            .get("x-amz-target")
            .and_then(|v| v.to_str().ok())
            .and_then(|t| t.strip_prefix("DynamoDB_20120810."))
            .map(str::to_owned);
        let sqs = sylph_gateway::sqs_protocol(req.method(), path, req.headers());
        let streams_op = req
            .headers()
            .get("x-amz-target")
            .and_then(|v| v.to_str().ok())
            .and_then(|t| t.strip_prefix("DynamoDBStreams_20120810."))
            .map(str::to_owned);
        let is_api_call =
            target.is_some() || sqs.is_some() || streams_op.is_some() || path.starts_with("/2015-03-31/functions/");
        if let Some(running) = is_api_call.then(|| self.instance_caller(req.headers())).flatten() {
            // A function sharing the host's network, calling with its own credentials: checked
            // as on its own endpoint (signature, IAM, the tables its service may see).
            let key = sigv4_key(req.headers()).unwrap_or_default();
            let (parts, body) = req.into_parts();
            let body = match sylph_gateway::read_body(&parts, body, body_timeout).await {
                Ok(b) => b,
                Err(refused) => return refused,
            };
            return running
                .hosted
                .gateway
                .handle_parts(parts, body, peer, sylph_iam::Caller::Instance(&key))
                .await;
        }
        if let Some(op) = streams_op {
            if let Err(e) = self.known_signer(req.headers()) {
                return auth_error(Protocol::DynamoDb, &e);
            }
            let (parts, body) = req.into_parts();
            let body = match sylph_gateway::read_body(&parts, body, body_timeout).await {
                Ok(b) => b,
                Err(refused) => return refused,
            };
            return self.streams_call(&parts, &op, body);
        }
        if let Some(protocol) = sqs {
            if let Err(e) = self.known_signer(req.headers()) {
                return auth_error(Protocol::Sqs, &e);
            }
            let (parts, body) = req.into_parts();
            let body = match sylph_gateway::read_body(&parts, body, body_timeout).await {
                Ok(b) => b,
                Err(refused) => return refused,
            };
            return self.queue_call(&parts, protocol, body).await;
        }
        if let Some(op) = target {
            // Refused before its body is read: unsigned, or by a key this server does not know.
            if let Err(e) = self.known_signer(req.headers()) {
                return auth_error(Protocol::DynamoDb, &e);
            }
            let (parts, body) = req.into_parts();
            let body = match sylph_gateway::read_body(&parts, body, body_timeout).await {
                Ok(b) => b,
                Err(refused) => return refused,
            };
            return self.table_call(&parts, &op, body).await;
        }
        if let Some(rest) = path.strip_prefix("/2015-03-31/functions/") {
            let (name, qualifier) = function_name(rest, req.uri().query());
            if let Err(e) = self.known_signer(req.headers()) {
                return auth_error(Protocol::Lambda, &e);
            }
            let (parts, body) = req.into_parts();
            let body = match sylph_gateway::read_body(&parts, body, body_timeout).await {
                Ok(b) => b,
                Err(refused) => return refused,
            };
            return self.invoke_call(parts, &name, qualifier.as_deref(), body, peer).await;
        }
        if let Some(refused) = sylph_gateway::unserved_aws_service(req.headers()) {
            return refused;
        }
        sylph_gateway::json_message(
            StatusCode::NOT_FOUND,
            "Not Found: a deployed API is at /apis/{api-id}/ or {api-id}.<domain>; `sylph info` lists them",
        )
    }

    /// A table API call: signed by a key that may use every table it names.
    async fn table_call(&self, parts: &hyper::http::request::Parts, op: &str, body: Bytes) -> Response<Body> {
        let key = match self.signed_by(parts, &body) {
            Ok(k) => k,
            Err(e) => return auth_error(Protocol::DynamoDb, &e),
        };
        let region = parts
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|h| sylph_iam::sigv4::parse_authorization(h).ok())
            .map_or_else(|| "us-east-1".to_owned(), |a| a.region.to_owned());
        for (action, resource) in sylph_iam::actions::dynamodb(op, &body, &region) {
            let allowed = match sylph_iam::actions::table_of_arn(&resource) {
                Some(table) => self.platform.key_may_use_table(&key, table),
                // ListTables and friends name no table; any other call whose tables could not
                // be read (an unreadable PartiQL statement) could reach any: only a key for
                // every service may send it.
                None if sylph_iam::actions::names_no_table(op) => true,
                None => matches!(key.scope, sylph_control::keys::Scope::All) && key.is_live(),
            };
            if !allowed {
                return refusal(
                    Protocol::DynamoDb,
                    "AccessDeniedException",
                    &format!(
                        "User: {} is not authorized to perform: {action} on resource: {resource} because the key may not use that table's service",
                        key.id
                    ),
                );
            }
        }
        if op == "ListTables" && !matches!(key.scope, sylph_control::keys::Scope::All) {
            return self.usable_tables(&key);
        }
        sylph_gateway::table_api(&self.platform.tables, op, &body).await
    }

    /// A DynamoDB Streams call: signed by a key that may use the stream's table (ListStreams
    /// without a table: a key for every service).
    fn streams_call(&self, parts: &hyper::http::request::Parts, op: &str, body: Bytes) -> Response<Body> {
        let key = match self.signed_by(parts, &body) {
            Ok(k) => k,
            Err(e) => return auth_error(Protocol::DynamoDb, &e),
        };
        let table = serde_json::from_slice(&body)
            .ok()
            .and_then(|j| sylph_tables::stream::api::table_of_call(op, &j));
        let allowed = match &table {
            Some(t) => self.platform.key_may_use_table(&key, t),
            None => matches!(key.scope, sylph_control::keys::Scope::All) && key.is_live(),
        };
        if !allowed {
            return refusal(
                Protocol::DynamoDb,
                "AccessDeniedException",
                &format!(
                    "User: {} is not authorized to perform: dynamodb:{op} on that stream because the key may not use its table's service",
                    key.id
                ),
            );
        }
        sylph_gateway::streams_api(&self.platform.tables, op, &body)
    }

    /// An SQS call: signed by a key that may use the queue it names (a queue belongs to the
    /// service that declares it; one made through the API, to no service: only a key for
    /// every service may use it).
    async fn queue_call(
        &self,
        parts: &hyper::http::request::Parts,
        protocol: sylph_gateway::SqsProtocol,
        body: Bytes,
    ) -> Response<Body> {
        let key = match self.signed_by(parts, &body) {
            Ok(k) => k,
            Err(e) => return auth_error(Protocol::Sqs, &e),
        };
        let Some(events) = self.platform.events() else {
            return sylph_gateway::json_message(StatusCode::SERVICE_UNAVAILABLE, "the server is starting");
        };
        let call = sylph_gateway::SqsCall::read(protocol, parts, &body);
        let everything = matches!(key.scope, sylph_control::keys::Scope::All) && key.is_live();
        match call.queues() {
            Some(queues) => {
                for queue in queues {
                    if !self
                        .platform
                        .key_may_use_table(&key, &super::platform::queue_owner_key(queue))
                    {
                        return refusal(
                            Protocol::Sqs,
                            "AccessDeniedException",
                            &format!(
                                "User: {} is not authorized to perform: sqs:{} on resource: {} because the key may not use that queue's service",
                                key.id,
                                call.operation,
                                sylph_iam::actions::queue_arn("us-east-1", queue)
                            ),
                        );
                    }
                }
            }
            // ListQueues would name every service's queues.
            None if !everything => {
                return refusal(
                    Protocol::Sqs,
                    "AccessDeniedException",
                    &format!(
                        "User: {} may not list every queue: it is a key for some services only",
                        key.id
                    ),
                )
            }
            None => {}
        }
        sylph_gateway::serve_sqs(&events.queues, parts, &body, &call).await
    }

    /// ListTables for a key limited to some services: every table it may use, in one page
    /// (paging through the full list would name other services' tables).
    fn usable_tables(&self, key: &Key) -> Response<Body> {
        let mut names: Vec<String> = self
            .platform
            .tables
            .table_names()
            .into_iter()
            .filter(|t| self.platform.key_may_use_table(key, t))
            .collect();
        names.sort();
        let body = serde_json::json!({ "TableNames": names }).to_string();
        let mut res = Response::new(Full::new(Bytes::from(body)));
        res.headers_mut().insert(
            "content-type",
            hyper::header::HeaderValue::from_static("application/x-amz-json-1.0"),
        );
        res
    }

    /// An Invoke API call: signed by a key allowed for the function's service.
    async fn invoke_call(
        &self,
        parts: hyper::http::request::Parts,
        name: &str,
        qualifier: Option<&str>,
        body: Bytes,
        peer: SocketAddr,
    ) -> Response<Body> {
        let key = match self.signed_by(&parts, &body) {
            Ok(k) => k,
            Err(e) => return auth_error(Protocol::Lambda, &e),
        };
        let Some(live) = self.platform.by_function(name) else {
            // Known or not, a key without access learns nothing more than "not found".
            return refusal(
                Protocol::Lambda,
                "ResourceNotFoundException",
                &format!(
                    "Function not found: {}",
                    sylph_iam::actions::function_arn("us-east-1", name)
                ),
            );
        };
        if !key.allows(&live.record.name) {
            return refusal(
                Protocol::Lambda,
                "AccessDeniedException",
                &format!(
                    "User: {} is not authorized to perform: lambda:InvokeFunction on resource: {} because the key may not use service {}",
                    key.id,
                    sylph_iam::actions::function_arn(&live.record.region, name),
                    live.record.name
                ),
            );
        }
        let running = match qualifier {
            None => live.route(),
            Some(q) => match live.qualified(q) {
                Some(r) => r,
                None => {
                    return refusal(
                        Protocol::Lambda,
                        "ResourceNotFoundException",
                        &format!(
                            "Function not found: {}:{q} (a version runs only while it is the serving one or an alias names it)",
                            sylph_iam::actions::function_arn(&live.record.region, name)
                        ),
                    )
                }
            },
        };
        // The gateway's Invoke API knows plain function names (and unqualified ARNs): a
        // qualifier, which has chosen the version already, is taken out of the path.
        let mut parts = parts;
        if qualifier.is_some() {
            let query: Vec<&str> = parts
                .uri
                .query()
                .into_iter()
                .flat_map(|q| q.split('&'))
                .filter(|p| !p.starts_with("Qualifier="))
                .collect();
            let plain = if query.is_empty() {
                format!("/2015-03-31/functions/{name}/invocations")
            } else {
                format!("/2015-03-31/functions/{name}/invocations?{}", query.join("&"))
            };
            match plain.parse() {
                Ok(uri) => parts.uri = uri,
                Err(_) => return sylph_gateway::json_message(StatusCode::BAD_REQUEST, "Bad Request"),
            }
        }
        running
            .hosted
            .gateway
            .handle_parts(parts, body, peer, sylph_iam::Caller::Public)
            .await
    }

    /// The version whose instance signed this request, when it is signed with instance
    /// credentials rather than a server key.
    fn instance_caller(&self, headers: &hyper::HeaderMap) -> Option<Arc<super::platform::Running>> {
        let key = sigv4_key(headers)?;
        if key.starts_with("SYLK") {
            return None;
        }
        self.platform.by_instance_key(&key)
    }

    /// Whether the request is signed by a live key of this server (the signature itself is
    /// checked once the body, which it covers, has been read).
    fn known_signer(&self, headers: &hyper::HeaderMap) -> Result<(), AuthError> {
        let authorization = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .ok_or(AuthError::MissingToken)?;
        let auth = sylph_iam::sigv4::parse_authorization(authorization)?;
        if self.platform.is_live_key(auth.access_key_id) {
            Ok(())
        } else {
            Err(AuthError::UnrecognizedClient)
        }
    }

    /// The key whose SigV4 signature this request carries.
    fn signed_by(&self, parts: &hyper::http::request::Parts, body: &[u8]) -> Result<Key, AuthError> {
        let header = |n: &str| parts.headers.get(n).and_then(|v| v.to_str().ok());
        let authorization = header("authorization").ok_or(AuthError::MissingToken)?;
        let auth = sylph_iam::sigv4::parse_authorization(authorization)?;
        let (key, secret) = self
            .platform
            .key_for_signature(auth.access_key_id)
            .ok_or(AuthError::UnrecognizedClient)?;
        let headers: Vec<(&str, &[u8])> = parts.headers.iter().map(|(k, v)| (k.as_str(), v.as_bytes())).collect();
        let signed = sylph_iam::SignedRequest {
            method: parts.method.as_str(),
            path: parts.uri.path(),
            query: parts.uri.query(),
            headers: &headers,
            body,
        };
        sylph_iam::sigv4::verify(&signed, &auth, &secret).map_err(|e| match e {
            SignatureError::Expired => AuthError::Signature(SignatureError::Expired),
            other => AuthError::Signature(other),
        })?;
        Ok(key)
    }
}

/// The access key id a SigV4 `Authorization` header names.
fn sigv4_key(headers: &hyper::HeaderMap) -> Option<String> {
    let header = headers.get("authorization")?.to_str().ok()?;
    let auth = sylph_iam::sigv4::parse_authorization(header).ok()?;
    Some(auth.access_key_id.to_owned())
}

/// `{api_id}.{domain}[:port]` → `api_id`.
fn api_from_host<'a>(host: &'a str, domain: &str) -> Option<&'a str> {
    let name = match host.rsplit_once(':') {
        Some((n, port)) if port.bytes().all(|b| b.is_ascii_digit()) => n,
        _ => host,
    };
    let (api, rest) = name.split_once('.')?;
    (rest.eq_ignore_ascii_case(domain) && !api.is_empty()).then_some(api)
}

/// The function an Invoke path names (`{name}/invocations`, the name possibly an ARN, with
/// `:qualifier` or `?Qualifier=`), and the qualifier.
fn function_name(rest: &str, query: Option<&str>) -> (String, Option<String>) {
    let raw = rest.trim_end_matches("/invocations");
    let decoded = percent_encoding::percent_decode_str(raw)
        .decode_utf8_lossy()
        .into_owned();
    let bare = match decoded.split_once(":function:") {
        Some((_, tail)) => tail,
        None => decoded.as_str(),
    };
    let (name, in_name) = match bare.split_once(':') {
        Some((n, q)) => (n, Some(q.to_owned())),
        None => (bare, None),
    };
    let in_query = query.into_iter().flat_map(|q| q.split('&')).find_map(|pair| {
        pair.strip_prefix("Qualifier=")
            .map(|v| percent_encoding::percent_decode_str(v).decode_utf8_lossy().into_owned())
    });
    (name.to_owned(), in_name.or(in_query))
}

fn health(platform: &Platform) -> Response<Body> {
    let ready = platform.ready.load(std::sync::atomic::Ordering::Acquire);
    let (status, text) = if ready {
        (StatusCode::OK, "{\"status\":\"ok\"}")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "{\"status\":\"starting\"}")
    };
    let mut res = Response::new(Full::new(Bytes::from_static(text.as_bytes())));
    *res.status_mut() = status;
    res.headers_mut().insert(
        "content-type",
        hyper::header::HeaderValue::from_static("application/json"),
    );
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_ids_come_from_the_host_name_under_the_domain_only() {
        assert_eq!(api_from_host("abc123.localhost:8080", "localhost"), Some("abc123"));
        assert_eq!(api_from_host("abc123.sylph.example", "sylph.example"), Some("abc123"));
        assert_eq!(api_from_host("localhost:8080", "localhost"), None);
        assert_eq!(api_from_host("abc.evil.example", "localhost"), None);
        assert_eq!(api_from_host("127.0.0.1:8080", "localhost"), None);
    }

    #[test]
    fn function_names_come_from_plain_names_and_arns() {
        let plain = |n: &str| (n.to_owned(), None);
        assert_eq!(function_name("todo-dev-list/invocations", None), plain("todo-dev-list"));
        assert_eq!(
            function_name(
                "arn%3Aaws%3Alambda%3Aus-east-1%3A000000000000%3Afunction%3Atodo-dev-list/invocations",
                None
            ),
            plain("todo-dev-list")
        );
        let live = ("todo-dev-list".to_owned(), Some("live".to_owned()));
        assert_eq!(function_name("todo-dev-list:live/invocations", None), live);
        assert_eq!(function_name("todo-dev-list/invocations", Some("Qualifier=live")), live);
    }
}
