//! Where a component's outgoing HTTP requests may go: Sylph's own APIs, as the function's
//! identity, and the hosts its `allowedOutboundHosts` lists. Anything else is refused with
//! wasi:http's `HTTP-request-denied` before any connection is made.

use std::future::Future;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use sylph_model::OutboundHost;
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttpHooks};

/// Connects an in-memory stream to Sylph's API handler as an instance holding `access_key`
/// (`None` without identities: the caller is then an unauthenticated local client).
pub type SylphApi = Arc<dyn Fn(tokio::io::DuplexStream, Option<Arc<str>>) + Send + Sync>;

/// DynamoDB's largest request (a BatchWriteItem of 25 items of 400 KB) fits easily.
const MAX_SYLPH_REQUEST: usize = 16 * 1024 * 1024;

/// Calls into Sylph one instance may have in flight at once (each buffers its request).
pub const MAX_SYLPH_CALLS: usize = 8;

type Sent = Box<dyn Future<Output = Result<(), Error>> + Send>;
type Answer = Result<(http::Response<WasiBody>, Sent), Error>;

pub struct Outbound {
    pub allowed: Arc<[OutboundHost]>,
    pub sylph: Option<Arc<SylphLink>>,
}

/// How an instance reaches Sylph's APIs: requests to `authority` (the host and port of its
/// `AWS_ENDPOINT_URL`) are signed with its credentials and served in memory, never over a
/// socket.
pub struct SylphLink {
    /// `host:port` as `AWS_ENDPOINT_URL` names it.
    pub authority: String,
    /// Its port: any loopback name with this port is Sylph too (`localhost:3000`, `[::1]:3000`).
    pub port: u16,
    pub calls: tokio::sync::Semaphore,
    pub api: SylphApi,
    pub identity: Option<Identity>,
    pub region: String,
    /// A connection kept between calls (one request at a time, as HTTP/1.1 carries them).
    pub idle: Mutex<Option<SendRequest<Full<Bytes>>>>,
}

pub struct Identity {
    pub access_key_id: Arc<str>,
    pub secret_access_key: String,
    pub session_token: String,
}

impl WasiHttpHooks for Outbound {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        fut: Sent,
    ) -> Box<dyn Future<Output = Answer> + Send> {
        drop(fut);
        let uri = request.uri();
        let scheme = uri.scheme_str().unwrap_or("https").to_ascii_lowercase();
        let host = uri.host().unwrap_or("").to_ascii_lowercase();
        let port = uri.port_u16().unwrap_or(if scheme == "http" { 80 } else { 443 });
        // Sylph's port under any loopback spelling is Sylph: always the signed link, never its
        // public port, where an unsigned call would be a local developer's and unchecked.
        let sylph = self.sylph.clone().filter(|link| link.port == port);
        if let Some(link) = &sylph {
            let authority = uri.authority().map(|a| a.as_str()).unwrap_or("");
            if authority.eq_ignore_ascii_case(&link.authority) || is_loopback_name(&host) {
                let link = link.clone();
                return Box::new(async move { link.send(request).await });
            }
        }
        // The host as a URL writes it: an IPv6 address in brackets.
        let host = if host.contains(':') && !host.starts_with('[') {
            format!("[{host}]")
        } else {
            host
        };
        if self.allowed.iter().any(|rule| rule.allows(&scheme, &host, port)) {
            return Box::new(async move {
                // A listed name that resolves to this machine on Sylph's port is Sylph too.
                if let Some(link) = sylph {
                    let name = host.trim_start_matches('[').trim_end_matches(']').to_owned();
                    if let Ok(mut addrs) = tokio::net::lookup_host((name, port)).await {
                        if addrs.any(|a| a.ip().is_loopback() || a.ip().is_unspecified()) {
                            return link.send(request).await;
                        }
                    }
                }
                let (response, io) = wasmtime_wasi_http::default_send_request(request, options).await?;
                Ok((response.map(BodyExt::boxed_unsync), Box::new(io) as Sent))
            });
        }
        Box::new(async { Err(Error::HttpRequestDenied) })
    }
}

/// `localhost`, `127.0.0.0/8`, `::1`, `0.0.0.0`: names that reach this machine's loopback.
fn is_loopback_name(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    bare == "localhost"
        || bare.ends_with(".localhost")
        || bare
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback() || ip.is_unspecified())
}

impl SylphLink {
    async fn send(&self, request: http::Request<WasiBody>) -> Answer {
        let _call = self.calls.acquire().await.map_err(|_| Error::ConnectionLimitReached)?;
        let (mut parts, body) = request.into_parts();
        let body = Limited::new(body, MAX_SYLPH_REQUEST)
            .collect()
            .await
            .map_err(|_| Error::HttpRequestBodySize(Some(MAX_SYLPH_REQUEST as u64)))?
            .to_bytes();
        // The guest signs nothing: whatever it claims is replaced by its instance's identity.
        for name in [
            "authorization",
            "x-amz-security-token",
            "x-amz-date",
            "x-amz-content-sha256",
        ] {
            parts.headers.remove(name);
        }
        let path_and_query = parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/").to_owned();
        parts.uri = path_and_query.parse().map_err(|_| Error::HttpRequestUriInvalid)?;
        parts.headers.insert(
            http::header::HOST,
            http::HeaderValue::from_str(&self.authority).map_err(|_| Error::HttpRequestUriInvalid)?,
        );
        if let Some(identity) = &self.identity {
            self.sign(&mut parts, &body, identity)?;
        }
        let request = http::Request::from_parts(parts, Full::new(body));
        let mut sender = self.connection().await?;
        let response = sender.send_request(request).await.map_err(Error::from)?;
        // Kept for the next call once this one's answer has been read (HTTP/1.1).
        *self.idle.lock().unwrap_or_else(|e| e.into_inner()) = Some(sender);
        let response = response.map(|b| b.map_err(Error::from).boxed_unsync());
        Ok((response, Box::new(async { Ok(()) }) as Sent))
    }

    /// The kept connection if it can take a request now, else a new one.
    async fn connection(&self) -> Result<SendRequest<Full<Bytes>>, Error> {
        let kept = self.idle.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(sender) = kept.filter(|s| s.is_ready()) {
            return Ok(sender);
        }
        let (client, server) = tokio::io::duplex(64 * 1024);
        (self.api)(server, self.identity.as_ref().map(|i| i.access_key_id.clone()));
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(client))
            .await
            .map_err(Error::from)?;
        tokio::spawn(connection);
        sender.ready().await.map_err(Error::from)?;
        Ok(sender)
    }

    /// SigV4 over the request as it will arrive, as the AWS SDKs sign their calls.
    fn sign(&self, parts: &mut http::request::Parts, body: &Bytes, identity: &Identity) -> Result<(), Error> {
        let amz_date = sylph_telemetry::UtcTime::now().amz_date();
        let invalid = |_| Error::InternalError(Some("the identity cannot be written as a header".to_owned()));
        parts
            .headers
            .insert("x-amz-date", http::HeaderValue::from_str(&amz_date).map_err(invalid)?);
        parts.headers.insert(
            "x-amz-security-token",
            http::HeaderValue::from_str(&identity.session_token).map_err(invalid)?,
        );
        let service = match parts.headers.get("x-amz-target").map(|v| v.as_bytes()) {
            Some(t) if t.starts_with(b"DynamoDBStreams") => "streams.dynamodb",
            Some(t) if t.starts_with(b"DynamoDB") => "dynamodb",
            Some(t) if t.starts_with(b"AmazonSQS") => "sqs",
            _ => "lambda",
        };
        let headers: Vec<(&str, &[u8])> = parts
            .headers
            .iter()
            .filter(|(name, _)| {
                matches!(name.as_str(), "host" | "content-type" | "x-amz-target") || name.as_str().starts_with("x-amz-")
            })
            .map(|(name, value)| (name.as_str(), value.as_bytes()))
            .collect();
        let signed = sylph_iam::sigv4::SignedRequest {
            method: parts.method.as_str(),
            path: parts.uri.path(),
            query: parts.uri.query(),
            headers: &headers,
            body,
        };
        let authorization = sylph_iam::sigv4::sign(
            &signed,
            &identity.access_key_id,
            &identity.secret_access_key,
            &self.region,
            service,
            &amz_date,
        );
        parts.headers.insert(
            http::header::AUTHORIZATION,
            http::HeaderValue::from_str(&authorization).map_err(invalid)?,
        );
        Ok(())
    }
}
