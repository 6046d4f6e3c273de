//! Talking to a `sylph server`'s admin API: where it is and which key to use (flags, then
//! `SYLPH_SERVER` / `SYLPH_KEY`, then a profile in `~/.config/sylph/credentials` written by
//! `sylph config credentials`), and one HTTP call at a time.

use std::path::PathBuf;

use anyhow::{bail, Context as _};
use bytes::Bytes;
use clap::Args;
use http_body_util::{BodyExt as _, Full};

/// How to reach the server (every command that talks to one takes these).
#[derive(Args, Debug, Clone)]
pub struct ServerOptions {
    /// The server's URL (default: $SYLPH_SERVER, then the profile).
    #[arg(long)]
    pub server: Option<String>,
    /// The key, as ID:SECRET (default: $SYLPH_KEY, then the profile).
    #[arg(long)]
    pub key: Option<String>,
    /// The profile in ~/.config/sylph/credentials (default: $SYLPH_PROFILE or `default`).
    #[arg(long)]
    pub profile: Option<String>,
    /// A CA certificate (PEM) to trust for an https:// server, besides the system's
    /// (default: $SYLPH_CA, then the profile's `ca`).
    #[arg(long)]
    pub ca: Option<PathBuf>,
}

/// A server and the key to call it with.
pub struct Client {
    pub server: String,
    host_port: String,
    token: String,
    /// For https:// servers.
    tls: Option<(
        tokio_rustls::TlsConnector,
        tokio_rustls::rustls::pki_types::ServerName<'static>,
    )>,
}

/// Anything hyper can speak HTTP/1.1 over.
trait Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static> Io for T {}

/// Trust the system's CA bundle and `extra` (a PEM file).
fn tls_connector(extra: Option<&std::path::Path>) -> anyhow::Result<tokio_rustls::TlsConnector> {
    use tokio_rustls::rustls;
    use tokio_rustls::rustls::pki_types::pem::PemObject as _;
    use tokio_rustls::rustls::pki_types::CertificateDer;
    let mut roots = rustls::RootCertStore::empty();
    let system = std::path::Path::new("/etc/ssl/certs/ca-certificates.crt");
    for path in extra.into_iter().chain(system.is_file().then_some(system)) {
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
            .and_then(|c| c.collect::<Result<_, _>>())
            .map_err(|e| anyhow::anyhow!("{}: cannot read PEM certificates: {e}", path.display()))?;
        roots.add_parsable_certificates(certs);
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(tokio_rustls::TlsConnector::from(std::sync::Arc::new(config)))
}

/// The credentials file.
pub fn credentials_path() -> PathBuf {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))
        .unwrap_or_else(std::env::temp_dir);
    base.join("sylph").join("credentials")
}

/// A profile: server, key, CA file.
type Profile = (Option<String>, Option<String>, Option<String>);

/// `[profile]` sections of `key = value` lines.
fn read_profile(name: &str) -> Option<Profile> {
    let text = std::fs::read_to_string(credentials_path()).ok()?;
    let mut in_section = false;
    let (mut server, mut key, mut ca) = (None, None, None);
    for line in text.lines() {
        let line = line.trim();
        if let Some(section) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            in_section = section.trim() == name;
            continue;
        }
        if !in_section {
            continue;
        }
        if let Some((k, v)) = line.split_once('=') {
            match k.trim() {
                "server" => server = Some(v.trim().to_owned()),
                "key" => key = Some(v.trim().to_owned()),
                "ca" => ca = Some(v.trim().to_owned()),
                _ => {}
            }
        }
    }
    Some((server, key, ca))
}

/// Write (or replace) a profile in the credentials file, readable by its owner only.
pub fn write_profile(name: &str, server: &str, key: &str, ca: Option<&std::path::Path>) -> anyhow::Result<PathBuf> {
    let path = credentials_path();
    let existing = std::fs::read_to_string(&path).unwrap_or_default();
    let mut out = String::new();
    let mut skipping = false;
    for line in existing.lines() {
        if let Some(section) = line.trim().strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            skipping = section.trim() == name;
        }
        if !skipping {
            out.push_str(line);
            out.push('\n');
        }
    }
    out.push_str(&format!("[{name}]\nserver = {server}\nkey = {key}\n"));
    if let Some(ca) = ca {
        let ca = ca
            .canonicalize()
            .with_context(|| format!("cannot open {}", ca.display()))?;
        out.push_str(&format!("ca = {}\n", ca.display()));
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    sylph_control::keys::write_private_file(&path, out.as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(path)
}

impl Client {
    pub fn from_options(opts: &ServerOptions) -> anyhow::Result<Client> {
        let profile_name = opts
            .profile
            .clone()
            .or_else(|| std::env::var("SYLPH_PROFILE").ok())
            .unwrap_or_else(|| "default".to_owned());
        let profile = read_profile(&profile_name);
        let server = opts
            .server
            .clone()
            .or_else(|| std::env::var("SYLPH_SERVER").ok())
            .or_else(|| profile.as_ref().and_then(|p| p.0.clone()));
        let key = opts
            .key
            .clone()
            .or_else(|| std::env::var("SYLPH_KEY").ok())
            .or_else(|| profile.as_ref().and_then(|p| p.1.clone()));
        let Some(server) = server else {
            bail!(
                "no server given\n  help: pass --server URL, set SYLPH_SERVER, or run `sylph config credentials --server URL --key ID:SECRET`"
            );
        };
        let Some(token) = key else {
            bail!("no key given for {server}\n  help: pass --key ID:SECRET, set SYLPH_KEY, or run `sylph config credentials`");
        };
        if sylph_control::keys::split_token(&token).is_none() {
            bail!("the key must be ID:SECRET, as `sylph keys create` prints it");
        }
        let server = server.trim_end_matches('/').to_owned();
        let (https, rest) = if let Some(rest) = server.strip_prefix("https://") {
            (true, rest)
        } else if let Some(rest) = server.strip_prefix("http://") {
            (false, rest)
        } else {
            bail!("{server} is not an http:// or https:// URL");
        };
        let host_port = rest.split('/').next().unwrap_or(rest).to_owned();
        let tls = if https {
            let ca = opts
                .ca
                .clone()
                .or_else(|| std::env::var_os("SYLPH_CA").map(PathBuf::from))
                .or_else(|| profile.as_ref().and_then(|p| p.2.clone()).map(PathBuf::from));
            let host = match host_port.rsplit_once(':') {
                Some((h, p)) if p.bytes().all(|b| b.is_ascii_digit()) => h,
                _ => host_port.as_str(),
            };
            let host = host.trim_start_matches('[').trim_end_matches(']').to_owned();
            let name = tokio_rustls::rustls::pki_types::ServerName::try_from(host)
                .map_err(|e| anyhow::anyhow!("{server}: not a host name TLS can check: {e}"))?;
            Some((tls_connector(ca.as_deref())?, name))
        } else {
            None
        };
        let host_port = if host_port.contains(':') || host_port.starts_with('[') {
            host_port
        } else if https {
            format!("{host_port}:443")
        } else {
            format!("{host_port}:80")
        };
        Ok(Client {
            server,
            host_port,
            token,
            tls,
        })
    }

    /// One call; the answer's status and body. Connection failures say which server.
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        body: Bytes,
        content_type: &str,
    ) -> anyhow::Result<(u16, Bytes)> {
        let stream = tokio::net::TcpStream::connect(&self.host_port).await.map_err(|e| {
            anyhow::anyhow!(
                "cannot reach the sylph server at {}: {e}\n  help: is `sylph server` running there? (the URL comes from --server, SYLPH_SERVER or the profile)",
                self.server
            )
        })?;
        let io: Box<dyn Io> = match &self.tls {
            None => Box::new(stream),
            Some((connector, name)) => Box::new(connector.connect(name.clone(), stream).await.map_err(|e| {
                anyhow::anyhow!(
                    "TLS with {} failed: {e}\n  help: for a certificate no system CA signed, pass --ca FILE (or SYLPH_CA)",
                    self.server
                )
            })?),
        };
        let (mut sender, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(io))
            .await
            .with_context(|| format!("cannot talk HTTP to {}", self.server))?;
        tokio::spawn(conn);
        let req = hyper::Request::builder()
            .method(method)
            .uri(path)
            .header("host", &self.host_port)
            .header("authorization", format!("Bearer {}", self.token))
            .header("content-type", content_type)
            .body(Full::new(body))?;
        let res = sender.send_request(req).await.map_err(|e| {
            anyhow::anyhow!(
                "the sylph server at {} closed the connection before answering ({e}); if it was restarting, nothing was changed: run the command again",
                self.server
            )
        })?;
        let status = res.status().as_u16();
        let bytes = res
            .into_body()
            .collect()
            .await
            .map_err(|e| anyhow::anyhow!("the answer from {} broke off: {e}", self.server))?
            .to_bytes();
        Ok((status, bytes))
    }

    /// A JSON call whose success is JSON; a refusal becomes an error with the server's words.
    pub async fn json<T: serde::de::DeserializeOwned>(
        &self,
        method: &str,
        path: &str,
        body: Option<&impl serde::Serialize>,
    ) -> anyhow::Result<T> {
        let bytes = match body {
            Some(b) => Bytes::from(serde_json::to_vec(b)?),
            None => Bytes::new(),
        };
        let (status, answer) = self.call(method, path, bytes, "application/json").await?;
        if !(200..300).contains(&status) {
            let message = serde_json::from_slice::<sylph_control::api::ErrorBody>(&answer)
                .map(|e| e.error)
                .unwrap_or_else(|_| String::from_utf8_lossy(&answer).into_owned());
            bail!("{} ({status}): {message}", self.server);
        }
        serde_json::from_slice(&answer)
            .with_context(|| format!("{} answered something this sylph cannot read", self.server))
    }
}
