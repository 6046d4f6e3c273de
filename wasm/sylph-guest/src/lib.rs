//! Writing Sylph's WebAssembly functions in Rust: a component built for `wasm32-wasip2` that
//! exports `wasi:http/incoming-handler` (the `wasi:http/proxy` world).
//!
//! ```ignore
//! struct App;
//! impl sylph_guest::Handler for App {
//!     fn handle(request: sylph_guest::Request) -> sylph_guest::Response {
//!         sylph_guest::Response::text(200, "hello")
//!     }
//! }
//! sylph_guest::export!(App);
//! ```
//!
//! [`tables`] calls Sylph's DynamoDB-compatible table API. Sylph signs those calls itself, as
//! the function's identity (its IAM statements apply), so a component holds no credentials.
//! [`fetch`] sends any other outgoing request, which Sylph allows only to hosts the function's
//! `allowedOutboundHosts` lists.

pub mod tables;

use wasip2::http::types::{
    ErrorCode, Fields, IncomingBody, IncomingRequest, Method, OutgoingBody, OutgoingRequest, OutgoingResponse,
    ResponseOutparam, Scheme,
};
use wasip2::io::streams::{InputStream, OutputStream, StreamError};

#[doc(hidden)]
pub use wasip2 as __wasi;

/// A request as the component received it (an API Gateway event arrives as the HTTP request
/// it describes; any other event as `POST /events` with the event's JSON).
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    /// The path, without the query.
    pub path: String,
    /// The query string, without `?` (empty when there is none).
    pub query: String,
    /// Lower-case names.
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Vec<u8>,
}

impl Request {
    /// The first value of a header, as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .and_then(|(_, v)| std::str::from_utf8(v).ok())
    }

    /// A query parameter (not percent-decoded beyond `%20` and `+`).
    pub fn param(&self, name: &str) -> Option<String> {
        self.query.split('&').find_map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (k == name).then(|| v.replace("%20", " ").replace('+', " "))
        })
    }

    /// The path's segments: `/todos/7` → `["todos", "7"]`.
    pub fn segments(&self) -> Vec<&str> {
        self.path.split('/').filter(|s| !s.is_empty()).collect()
    }
}

/// A response to write.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn new(status: u16, content_type: &str, body: impl Into<Vec<u8>>) -> Response {
        Response {
            status,
            headers: vec![("content-type".to_owned(), content_type.as_bytes().to_vec())],
            body: body.into(),
        }
    }

    pub fn text(status: u16, body: impl Into<Vec<u8>>) -> Response {
        Response::new(status, "text/plain; charset=utf-8", body)
    }

    pub fn json(status: u16, value: &serde_json::Value) -> Response {
        Response::new(status, "application/json", value.to_string())
    }

    pub fn with_header(mut self, name: &str, value: &str) -> Response {
        self.headers.push((name.to_owned(), value.as_bytes().to_vec()));
        self
    }
}

/// What a component implements; [`export!`] makes it the component's `incoming-handler`.
pub trait Handler {
    fn handle(request: Request) -> Response;
}

/// Export `$handler` (a type implementing [`Handler`]) as the component's
/// `wasi:http/incoming-handler`.
#[macro_export]
macro_rules! export {
    ($handler:ty) => {
        struct __SylphComponent;
        impl $crate::__wasi::exports::http::incoming_handler::Guest for __SylphComponent {
            fn handle(
                request: $crate::__wasi::http::types::IncomingRequest,
                out: $crate::__wasi::http::types::ResponseOutparam,
            ) {
                $crate::serve::<$handler>(request, out)
            }
        }
        $crate::__wasi::http::proxy::export!(__SylphComponent with_types_in $crate::__wasi);
    };
}

#[doc(hidden)]
pub fn serve<H: Handler>(request: IncomingRequest, out: ResponseOutparam) {
    let request = read_request(request);
    let response = H::handle(request);
    write_response(response, out);
}

fn method_text(method: &Method) -> String {
    match method {
        Method::Get => "GET".into(),
        Method::Head => "HEAD".into(),
        Method::Post => "POST".into(),
        Method::Put => "PUT".into(),
        Method::Delete => "DELETE".into(),
        Method::Connect => "CONNECT".into(),
        Method::Options => "OPTIONS".into(),
        Method::Trace => "TRACE".into(),
        Method::Patch => "PATCH".into(),
        Method::Other(m) => m.clone(),
    }
}

fn read_request(request: IncomingRequest) -> Request {
    let target = request.path_with_query().unwrap_or_else(|| "/".to_owned());
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p.to_owned(), q.to_owned()),
        None => (target, String::new()),
    };
    let headers = request.headers().entries();
    let body = match request.consume() {
        Ok(body) => read_body(body),
        Err(()) => Vec::new(),
    };
    Request {
        method: method_text(&request.method()),
        path,
        query,
        headers,
        body,
    }
}

fn read_body(body: IncomingBody) -> Vec<u8> {
    let mut out = Vec::new();
    if let Ok(stream) = body.stream() {
        read_all(&stream, &mut out);
    }
    let _ = IncomingBody::finish(body);
    out
}

fn read_all(stream: &InputStream, out: &mut Vec<u8>) {
    loop {
        match stream.blocking_read(64 * 1024) {
            Ok(chunk) => out.extend_from_slice(&chunk),
            Err(StreamError::Closed) | Err(StreamError::LastOperationFailed(_)) => break,
        }
    }
}

fn write_all(stream: &OutputStream, data: &[u8]) -> Result<(), StreamError> {
    // `blocking-write-and-flush` takes at most 4096 bytes a call.
    for chunk in data.chunks(4096) {
        stream.blocking_write_and_flush(chunk)?;
    }
    Ok(())
}

fn fields(headers: &[(String, Vec<u8>)]) -> Fields {
    let fields = Fields::new();
    for (name, value) in headers {
        let _ = fields.append(name, value);
    }
    fields
}

fn write_response(response: Response, out: ResponseOutparam) {
    let outgoing = OutgoingResponse::new(fields(&response.headers));
    let _ = outgoing.set_status_code(response.status);
    let body = outgoing.body().expect("a new response has a body");
    ResponseOutparam::set(out, Ok(outgoing));
    if let Ok(stream) = body.write() {
        let _ = write_all(&stream, &response.body);
    }
    let _ = OutgoingBody::finish(body, None);
}

/// An answer to an outgoing request.
#[derive(Debug, Clone)]
pub struct Fetched {
    pub status: u16,
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Vec<u8>,
}

/// Send a request to `url` (`http://host:port/path?query`) and read the whole answer. A host
/// the function may not reach fails with `ErrorCode::HttpRequestDenied`.
pub fn fetch(method: &str, url: &str, headers: &[(&str, &str)], body: &[u8]) -> Result<Fetched, ErrorCode> {
    let (scheme, rest) = url.split_once("://").ok_or(ErrorCode::HttpRequestUriInvalid)?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let owned: Vec<(String, Vec<u8>)> = headers
        .iter()
        .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()))
        .collect();
    let request = OutgoingRequest::new(fields(&owned));
    let method = match method {
        "GET" => Method::Get,
        "POST" => Method::Post,
        "PUT" => Method::Put,
        "DELETE" => Method::Delete,
        "HEAD" => Method::Head,
        "PATCH" => Method::Patch,
        other => Method::Other(other.to_owned()),
    };
    let scheme = match scheme {
        "http" => Scheme::Http,
        "https" => Scheme::Https,
        other => Scheme::Other(other.to_owned()),
    };
    request
        .set_method(&method)
        .map_err(|()| ErrorCode::HttpRequestMethodInvalid)?;
    request
        .set_scheme(Some(&scheme))
        .map_err(|()| ErrorCode::HttpRequestUriInvalid)?;
    request
        .set_authority(Some(authority))
        .map_err(|()| ErrorCode::HttpRequestUriInvalid)?;
    request
        .set_path_with_query(Some(path))
        .map_err(|()| ErrorCode::HttpRequestUriInvalid)?;
    let outgoing_body = request.body().expect("a new request has a body");
    let pending = wasip2::http::outgoing_handler::handle(request, None)?;
    if let Ok(stream) = outgoing_body.write() {
        write_all(&stream, body).map_err(|_| ErrorCode::HttpRequestBodySize(None))?;
    }
    OutgoingBody::finish(outgoing_body, None)?;
    pending.subscribe().block();
    let response = match pending.get() {
        Some(Ok(result)) => result?,
        _ => {
            return Err(ErrorCode::InternalError(Some(
                "the response was already taken".to_owned(),
            )))
        }
    };
    let status = response.status();
    let headers = response.headers().entries();
    let body = match response.consume() {
        Ok(body) => read_body(body),
        Err(()) => Vec::new(),
    };
    Ok(Fetched { status, headers, body })
}
