//! Connections: how many the server takes, how long one may take to send its headers or sit
//! idle, and which `Host` names it answers. Network clients are never trusted: without these,
//! ~20,000 idle sockets used up the descriptor limit and every new client was refused, and a
//! web page could reach `sylph dev` on loopback through DNS rebinding.

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::HeaderValue;
use hyper::{Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt as _, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

use crate::Gateway;

/// TLS for a listener: a certificate chain and its private key, both PEM files.
pub struct Tls(tokio_rustls::TlsAcceptor);

impl Tls {
    /// Read `cert` (the chain, leaf first) and `key`; an error names the file and what is wrong.
    pub fn load(cert: &std::path::Path, key: &std::path::Path) -> Result<Tls, String> {
        use tokio_rustls::rustls;
        use tokio_rustls::rustls::pki_types::pem::PemObject as _;
        use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
            .and_then(|certs| certs.collect::<Result<_, _>>())
            .map_err(|e| format!("{}: cannot read a PEM certificate chain: {e}", cert.display()))?;
        if chain.is_empty() {
            return Err(format!("{}: holds no certificate", cert.display()));
        }
        let private = PrivateKeyDer::from_pem_file(key)
            .map_err(|e| format!("{}: cannot read a PEM private key: {e}", key.display()))?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_no_client_auth()
            .with_single_cert(chain, private)
            .map_err(|e| {
                format!(
                    "{} and {} do not make a usable certificate: {e}",
                    cert.display(),
                    key.display()
                )
            })?;
        let mut config = config;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Tls(tokio_rustls::TlsAcceptor::from(Arc::new(config))))
    }
}

/// What answers a connection's requests: one service's [`Gateway`] (`sylph dev`), or a server
/// that routes each request to one of many.
pub trait Handler: Send + Sync + 'static {
    /// Answer one request; never fails (errors are the protocol's error responses).
    /// `instance_key` is set on connections from inside a function instance.
    fn serve_request(
        self: Arc<Self>,
        req: hyper::Request<hyper::body::Incoming>,
        peer: SocketAddr,
        instance_key: Option<Arc<str>>,
        body_timeout: Duration,
    ) -> impl std::future::Future<Output = Response<Full<Bytes>>> + Send;
}

impl Handler for Gateway {
    async fn serve_request(
        self: Arc<Self>,
        req: hyper::Request<hyper::body::Incoming>,
        peer: SocketAddr,
        instance_key: Option<Arc<str>>,
        body_timeout: Duration,
    ) -> Response<Full<Bytes>> {
        self.handle(req, peer, instance_key.as_deref(), body_timeout).await
    }
}

/// Limits on the connections one listener takes.
#[derive(Debug, Clone)]
pub struct ConnectionLimits {
    /// Connections open at once; past it a new client gets 503 and is closed.
    pub max_connections: usize,
    /// Time a client has to send a request's complete headers, and then again its body.
    pub header_timeout: Duration,
    /// Time a connection may stay open with no request in flight and no bytes moving.
    pub idle_timeout: Duration,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            max_connections: default_max_connections(),
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
        }
    }
}

/// Half the descriptor limit: the other half is for instances (pipes, sockets), storage and
/// the connections functions open to Sylph's APIs.
fn default_max_connections() -> usize {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes the struct we pass.
    let files = if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0 {
        limit.rlim_cur as usize
    } else {
        1024
    };
    (files / 2).clamp(64, 10_000)
}

/// Raise the soft limit on open files to the hard limit, as servers do; returns the new limit.
pub fn raise_open_file_limit() -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit / setrlimit read and write the struct we pass.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return 0;
        }
        if limit.rlim_cur < limit.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: limit.rlim_max,
                rlim_max: limit.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                return raised.rlim_cur;
            }
        }
    }
    limit.rlim_cur
}

/// Which `Host` headers a listener answers. A browser page on another site can make a name
/// it controls resolve to 127.0.0.1 (DNS rebinding) and then talk to `sylph dev` as if it were
/// that site; refusing names that are not the listening address stops it.
#[derive(Debug, Clone)]
pub struct HostPolicy {
    listen: IpAddr,
    /// Names the user allowed (`--allow-host`), lower case.
    names: Vec<String>,
}

impl HostPolicy {
    pub fn new(listen: IpAddr, names: &[String]) -> HostPolicy {
        HostPolicy {
            listen,
            names: names.iter().map(|n| n.to_ascii_lowercase()).collect(),
        }
    }

    /// Whether a request with this `Host` header is answered. No header (HTTP/1.0) is: the
    /// attack needs a browser, and browsers always send one.
    pub fn allows(&self, host: Option<&str>) -> bool {
        let Some(host) = host else { return true };
        // Compared without folding into a new string: this runs on every request.
        let name = strip_port(host);
        if self.names.iter().any(|n| match n.strip_prefix("*.") {
            // `*.example.com`: any name under it (one label or more), not the name itself.
            Some(domain) => name.len().checked_sub(domain.len() + 1).is_some_and(|i| {
                name.as_bytes()[i] == b'.' && name.get(i + 1..).is_some_and(|d| d.eq_ignore_ascii_case(domain))
            }),
            None => n.eq_ignore_ascii_case(name),
        }) {
            return true;
        }
        let local_listener = self.listen.is_loopback() || self.listen.is_unspecified();
        let localhost = name.eq_ignore_ascii_case("localhost")
            || name
                .len()
                .checked_sub(".localhost".len())
                .and_then(|i| name.get(i..))
                .is_some_and(|tail| tail.eq_ignore_ascii_case(".localhost"));
        if localhost {
            return local_listener;
        }
        let literal = name.trim_start_matches('[').trim_end_matches(']');
        match literal.parse::<IpAddr>() {
            // An address is not a name an attacker's DNS can point somewhere else.
            Ok(_) if self.listen.is_unspecified() => true,
            Ok(ip) if self.listen.is_loopback() => ip.is_loopback(),
            Ok(ip) => ip == self.listen,
            Err(_) => false,
        }
    }
}

fn strip_port(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        // `[::1]:3000`
        return rest.split(']').next().unwrap_or(rest);
    }
    match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) && !name.contains(':') => name,
        _ => host,
    }
}

/// Serve `gateway` on `listener` within `limits`, answering only `hosts`, until `shutdown`.
pub async fn serve<H: Handler>(
    listener: TcpListener,
    gateway: Arc<H>,
    limits: ConnectionLimits,
    hosts: HostPolicy,
    tls: Option<Arc<Tls>>,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let open = Arc::new(AtomicUsize::new(0));
    let hosts = Arc::new(hosts);
    let refused_log = RateLimitedLog::default();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            _ = &mut shutdown => return,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of descriptors, most likely: back off instead of spinning.
                    refused_log.warn(|| format!("accept failed: {e}"));
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        if open.load(Ordering::Relaxed) >= limits.max_connections {
            refused_log.warn(|| {
                format!(
                    "{} connections are open, the most this server takes (--max-connections); refusing new ones with 503",
                    limits.max_connections
                )
            });
            tokio::spawn(refuse(stream));
            continue;
        }
        let guard = OpenConnection::new(open.clone());
        let gateway = gateway.clone();
        let hosts = hosts.clone();
        let limits = limits.clone();
        let tls = tls.clone();
        let _ = stream.set_nodelay(true);
        tokio::spawn(async move {
            match tls {
                None => serve_connection(gateway, stream, peer, &limits, Some(&hosts), None).await,
                Some(tls) => {
                    // The handshake is bounded like a request's headers: a client that
                    // connects and says nothing holds a place under the cap no longer.
                    match tokio::time::timeout(limits.header_timeout, tls.0.accept(stream)).await {
                        Ok(Ok(stream)) => serve_connection(gateway, stream, peer, &limits, Some(&hosts), None).await,
                        Ok(Err(e)) => tracing::debug!("TLS handshake with {peer} failed: {e}"),
                        Err(_) => tracing::debug!("TLS handshake with {peer} timed out"),
                    }
                }
            }
            drop(guard);
        });
    }
}

/// Serve one connection that function code opened to Sylph's APIs from inside its network
/// namespace (Host checks do not apply: it can only have come from that instance), whose
/// calls must be signed with `access_key`, the credentials that instance was issued.
/// `held` is kept until the connection ends (the instance's connection permit).
pub fn spawn_instance_connection(
    gateway: Arc<Gateway>,
    stream: TcpStream,
    access_key: Option<Arc<str>>,
    held: impl Send + 'static,
) {
    let peer = stream
        .peer_addr()
        .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0)));
    let limits = instance_limits();
    let _ = stream.set_nodelay(true);
    tokio::spawn(async move {
        serve_connection(gateway, stream, peer, limits, None, access_key).await;
        drop(held);
    });
}

/// Serve requests arriving on an in-memory stream from a WebAssembly instance holding
/// `access_key`, exactly as a connection from inside a process instance's namespace is served.
pub fn spawn_instance_stream(gateway: Arc<Gateway>, stream: tokio::io::DuplexStream, access_key: Option<Arc<str>>) {
    let limits = instance_limits();
    let peer = SocketAddr::from(([127, 0, 0, 1], 0));
    tokio::spawn(async move {
        serve_connection(gateway, stream, peer, limits, None, access_key).await;
    });
}

/// The limits of instances' connections. The defaults read the open-file limit (a system
/// call): once, not per connection.
fn instance_limits() -> &'static ConnectionLimits {
    static LIMITS: std::sync::OnceLock<ConnectionLimits> = std::sync::OnceLock::new();
    LIMITS.get_or_init(ConnectionLimits::default)
}

async fn serve_connection<H: Handler, S: AsyncRead + AsyncWrite + Unpin + Send + 'static>(
    gateway: Arc<H>,
    stream: S,
    peer: SocketAddr,
    limits: &ConnectionLimits,
    hosts: Option<&Arc<HostPolicy>>,
    access_key: Option<Arc<str>>,
) {
    let activity = Arc::new(Activity::new());
    let io = TokioIo::new(Tracked {
        inner: stream,
        activity: activity.clone(),
    });
    let hosts = hosts.cloned();
    let service_activity = activity.clone();
    let body_timeout = limits.header_timeout;
    let service = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
        let gateway = gateway.clone();
        let activity = service_activity.clone();
        let access_key = access_key.clone();
        let allowed = hosts.as_ref().is_none_or(|h| {
            h.allows(
                req.headers()
                    .get(hyper::header::HOST)
                    .and_then(|v| v.to_str().ok())
                    .or_else(|| req.uri().authority().map(|a| a.as_str())),
            )
        });
        async move {
            if !allowed {
                return Ok::<_, Infallible>(host_refused());
            }
            activity.in_flight.fetch_add(1, Ordering::Relaxed);
            let res = gateway.serve_request(req, peer, access_key, body_timeout).await;
            activity.in_flight.fetch_sub(1, Ordering::Relaxed);
            activity.touch();
            Ok(res)
        }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .keep_alive(true)
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .serve_connection(io, service)
        // A WebSocket handshake hands the connection over to its own task.
        .with_upgrades();
    tokio::pin!(conn);
    let idle = limits.idle_timeout;
    let check_every = (idle / 4).max(Duration::from_millis(50));
    loop {
        tokio::select! {
            _ = &mut conn => return,
            _ = tokio::time::sleep(check_every) => {
                if activity.idle_for() >= idle && activity.in_flight.load(Ordering::Relaxed) == 0 {
                    // Dropping the connection closes the socket.
                    return;
                }
            }
        }
    }
}

/// Answer a connection past the cap with 503, without reading its request.
async fn refuse(mut stream: TcpStream) {
    const BODY: &str = "{\"message\":\"Service Unavailable: too many open connections\"}";
    let head = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\nretry-after: 1\r\n\r\n{BODY}",
        BODY.len()
    );
    let _ = tokio::time::timeout(Duration::from_secs(1), stream.write_all(head.as_bytes())).await;
}

fn host_refused() -> Response<Full<Bytes>> {
    let body = "{\"message\":\"Forbidden: this server does not answer for that Host; start sylph with --allow-host NAME to serve a name\"}";
    let mut res = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *res.status_mut() = StatusCode::FORBIDDEN;
    res.headers_mut()
        .insert("content-type", HeaderValue::from_static("application/json"));
    res
}

/// Counts an open connection for as long as it lives.
struct OpenConnection(Arc<AtomicUsize>);

impl OpenConnection {
    fn new(count: Arc<AtomicUsize>) -> OpenConnection {
        count.fetch_add(1, Ordering::Relaxed);
        OpenConnection(count)
    }
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// When a connection last moved bytes, and how many of its requests are being answered.
struct Activity {
    epoch: Instant,
    last_ms: AtomicU64,
    in_flight: AtomicUsize,
}

impl Activity {
    fn new() -> Activity {
        Activity {
            epoch: Instant::now(),
            last_ms: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
        }
    }

    fn touch(&self) {
        self.last_ms
            .store(self.epoch.elapsed().as_millis() as u64, Ordering::Relaxed);
    }

    fn idle_for(&self) -> Duration {
        let now = self.epoch.elapsed().as_millis() as u64;
        Duration::from_millis(now.saturating_sub(self.last_ms.load(Ordering::Relaxed)))
    }
}

/// A socket that records when bytes last moved through it.
struct Tracked<S> {
    inner: S,
    activity: Arc<Activity>,
}

impl<S: AsyncRead + Unpin> AsyncRead for Tracked<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let res = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(res, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.touch();
        }
        res
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Tracked<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<std::io::Result<usize>> {
        let res = Pin::new(&mut self.inner).poll_write(cx, data);
        if matches!(res, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        res
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let res = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(res, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        res
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// A warning logged at most once a second, however often it happens.
#[derive(Default)]
struct RateLimitedLog {
    last_second: AtomicU64,
}

impl RateLimitedLog {
    fn warn(&self, message: impl FnOnce() -> String) {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        if self.last_second.swap(now, Ordering::Relaxed) != now {
            tracing::warn!("{}", message());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_on_a_loopback_listener() {
        let p = HostPolicy::new("127.0.0.1".parse().unwrap(), &["dev.example".to_owned()]);
        for ok in [
            "127.0.0.1:3000",
            "localhost:3000",
            "LOCALHOST",
            "app.localhost",
            "[::1]:3000",
            "dev.example:80",
        ] {
            assert!(p.allows(Some(ok)), "{ok}");
        }
        for refused in [
            "attacker.example",
            "attacker.example:3000",
            "10.0.0.1:3000",
            "127.0.0.1.nip.io",
        ] {
            assert!(!p.allows(Some(refused)), "{refused}");
        }
        assert!(p.allows(None));
    }

    #[test]
    fn hosts_on_an_address_listener() {
        let wild = HostPolicy::new("127.0.0.1".parse().unwrap(), &["*.apps.example".to_owned()]);
        assert!(wild.allows(Some("abc123.apps.example:8080")));
        assert!(wild.allows(Some("ABC.APPS.EXAMPLE")));
        assert!(!wild.allows(Some("apps.example")));
        assert!(!wild.allows(Some("abcapps.example")));
        assert!(!wild.allows(Some("x.apps.example.evil.example")));
        let p = HostPolicy::new("192.0.2.7".parse().unwrap(), &[]);
        assert!(p.allows(Some("192.0.2.7:3000")));
        assert!(!p.allows(Some("localhost:3000")));
        assert!(!p.allows(Some("192.0.2.8")));
        let any = HostPolicy::new("0.0.0.0".parse().unwrap(), &[]);
        assert!(any.allows(Some("192.0.2.8:3000")));
        assert!(any.allows(Some("localhost")));
        assert!(!any.allows(Some("rebound.example")));
    }
}
