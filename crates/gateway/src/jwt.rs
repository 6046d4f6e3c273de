//! JWT authorizers (HTTP API `jwt`, REST `COGNITO_USER_POOLS`), as API Gateway checks a
//! token: an RSA signature (RS256/384/512) by a key of the issuer's JWKS, `iss` equal to the
//! issuer, `exp` in the future and `nbf` in the past, `aud` (or `client_id`) among the
//! audiences, and one of the route's scopes in `scope`/`scp`.
//!
//! Keys come from a JWKS file the operator gives (`--jwks`, for offline use), or from the
//! issuer: `{issuer}/.well-known/jwks.json` for Cognito, else the `jwks_uri` of
//! `{issuer}/.well-known/openid-configuration`, fetched once and again when an unknown `kid`
//! appears (at most once a minute).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use bytes::Bytes;
use http_body_util::{BodyExt as _, Empty, Limited};
use serde_json::{Map, Value};
use sylph_model::JwtAuthorizer;

/// Why a token was refused.
#[derive(Debug)]
pub enum JwtError {
    /// Missing, malformed, badly signed, expired or for someone else: 401.
    Invalid(String),
    /// Valid, without any of the route's scopes: 403.
    Scope,
}

#[derive(Debug, Clone)]
struct RsaKey {
    kid: Option<String>,
    n: Vec<u8>,
    e: Vec<u8>,
}

/// The largest JWKS or discovery document read from an issuer.
const MAX_DOCUMENT_BYTES: usize = 1024 * 1024;
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// How long fetched keys are used before they are fetched again.
const KEYS_TTL: Duration = Duration::from_secs(3600);
/// The least time between two fetches for one issuer (unknown `kid`s must not make Sylph
/// fetch on every request).
const REFETCH_AFTER: Duration = Duration::from_secs(60);

/// An issuer's keys and when they were fetched.
type Fetched = (Instant, Arc<Vec<RsaKey>>);

/// Keys by issuer.
#[derive(Default)]
pub struct JwtKeys {
    /// The operator's JWKS (`--jwks`): used for every issuer, nothing is fetched.
    fixed: Option<Arc<Vec<RsaKey>>>,
    fetched: tokio::sync::Mutex<HashMap<String, Fetched>>,
    /// When each issuer was last fetched, successful or not.
    tried: Mutex<HashMap<String, Instant>>,
}

impl JwtKeys {
    /// Keys from a JWKS document the operator gave.
    pub fn fixed(jwks: &Value) -> Result<JwtKeys, String> {
        let keys = parse_jwks(jwks)?;
        if keys.is_empty() {
            return Err("the JWKS holds no RSA key".into());
        }
        Ok(JwtKeys {
            fixed: Some(Arc::new(keys)),
            ..JwtKeys::default()
        })
    }

    /// Check `token` for `auth`; `Ok` is its claims.
    pub async fn verify(&self, auth: &JwtAuthorizer, token: &str) -> Result<Map<String, Value>, JwtError> {
        let invalid = |why: &str| JwtError::Invalid(why.to_owned());
        let token = token.strip_prefix("Bearer ").unwrap_or(token).trim();
        let mut parts = token.split('.');
        let (Some(head), Some(body), Some(sig), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
            return Err(invalid("not a JWT"));
        };
        let decode = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(s.trim_end_matches('='));
        let header: Value = decode(head)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or_else(|| invalid("its header is not JSON"))?;
        let claims: Map<String, Value> = decode(body)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or_else(|| invalid("its claims are not a JSON object"))?;
        let signature = decode(sig).map_err(|_| invalid("its signature is not base64url"))?;
        let algorithm: &'static ring::signature::RsaParameters = match header.get("alg").and_then(Value::as_str) {
            Some("RS256") => &ring::signature::RSA_PKCS1_2048_8192_SHA256,
            Some("RS384") => &ring::signature::RSA_PKCS1_2048_8192_SHA384,
            Some("RS512") => &ring::signature::RSA_PKCS1_2048_8192_SHA512,
            // API Gateway takes RSA signatures only; `none` above all must not pass.
            _ => return Err(invalid("its algorithm is not RS256, RS384 or RS512")),
        };
        let kid = header.get("kid").and_then(Value::as_str);
        let signed = &token[..head.len() + 1 + body.len()];
        // Why the keys are missing is logged, not told to an anonymous caller.
        let keys = self
            .keys(&auth.issuer, kid)
            .await
            .map_err(|_| invalid("the issuer's keys are not available"))?;
        let verified = keys
            .iter()
            .filter(|k| kid.is_none() || k.kid.as_deref() == kid)
            .any(|k| {
                ring::signature::RsaPublicKeyComponents { n: &k.n, e: &k.e }
                    .verify(algorithm, signed.as_bytes(), &signature)
                    .is_ok()
            });
        if !verified {
            return Err(invalid("its signature is not by a key of the issuer"));
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs_f64();
        match claims.get("exp").and_then(Value::as_f64) {
            Some(exp) if exp > now => {}
            Some(_) => return Err(invalid("it has expired")),
            None => return Err(invalid("it has no `exp`")),
        }
        if claims.get("nbf").and_then(Value::as_f64).is_some_and(|nbf| nbf > now) {
            return Err(invalid("it is not valid yet (`nbf`)"));
        }
        if claims
            .get("iss")
            .and_then(Value::as_str)
            .map(|i| i.trim_end_matches('/'))
            != Some(auth.issuer.as_str())
        {
            return Err(invalid("its issuer is not the authorizer's"));
        }
        if !auth.audience.is_empty() {
            let mut audiences: Vec<&str> = match claims.get("aud") {
                Some(Value::String(a)) => vec![a.as_str()],
                Some(Value::Array(list)) => list.iter().filter_map(Value::as_str).collect(),
                _ => Vec::new(),
            };
            // Cognito access tokens name their client in `client_id`, not `aud`.
            audiences.extend(claims.get("client_id").and_then(Value::as_str));
            if !audiences.iter().any(|a| auth.audience.iter().any(|w| w == a)) {
                return Err(invalid("its audience is not one the authorizer accepts"));
            }
        }
        if !auth.scopes.is_empty() {
            let granted = token_scopes(&claims);
            if !auth.scopes.iter().any(|s| granted.contains(&s.as_str())) {
                return Err(JwtError::Scope);
            }
        }
        Ok(claims)
    }

    /// The issuer's keys, fetched if needed.
    async fn keys(&self, issuer: &str, kid: Option<&str>) -> Result<Arc<Vec<RsaKey>>, String> {
        if let Some(fixed) = &self.fixed {
            return Ok(fixed.clone());
        }
        let mut fetched = self.fetched.lock().await;
        if let Some((at, keys)) = fetched.get(issuer) {
            let knows_kid = kid.is_none_or(|k| keys.iter().any(|key| key.kid.as_deref() == Some(k)));
            let fresh = at.elapsed() < KEYS_TTL && knows_kid;
            // Old or missing a kid, but fetched (or tried) less than a minute ago: keep what
            // there is rather than fetch for every request.
            if fresh || !self.may_fetch(issuer) {
                return Ok(keys.clone());
            }
        } else if !self.may_fetch(issuer) {
            return Err(format!("the keys of {issuer} could not be fetched a moment ago"));
        }
        self.tried
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(issuer.to_owned(), Instant::now());
        let keys = Arc::new(fetch_keys(issuer).await.map_err(|e| {
            tracing::warn!("cannot fetch the keys of JWT issuer {issuer}: {e}; give them with --jwks for offline use");
            format!("cannot fetch the issuer's keys: {e}")
        })?);
        fetched.insert(issuer.to_owned(), (Instant::now(), keys.clone()));
        Ok(keys)
    }

    fn may_fetch(&self, issuer: &str) -> bool {
        self.tried
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(issuer)
            .is_none_or(|at| at.elapsed() >= REFETCH_AFTER)
    }
}

/// The scopes a token carries: `scope` (space-separated, OAuth) or `scp` (a list or string).
fn token_scopes(claims: &Map<String, Value>) -> Vec<&str> {
    let mut out = Vec::new();
    for key in ["scope", "scp"] {
        match claims.get(key) {
            Some(Value::String(s)) => out.extend(s.split_whitespace()),
            Some(Value::Array(list)) => out.extend(list.iter().filter_map(Value::as_str)),
            _ => {}
        }
    }
    out
}

/// The claims as API Gateway hands them to the function: every value a string.
pub fn claims_as_strings(claims: &Map<String, Value>) -> Map<String, Value> {
    claims
        .iter()
        .map(|(k, v)| {
            let text = match v {
                Value::String(s) => s.clone(),
                Value::Array(items) => format!(
                    "[{}]",
                    items
                        .iter()
                        .map(|i| i.as_str().map_or_else(|| i.to_string(), str::to_owned))
                        .collect::<Vec<_>>()
                        .join(" ")
                ),
                other => other.to_string(),
            };
            (k.clone(), Value::String(text))
        })
        .collect()
}

/// The scopes for `requestContext.authorizer.jwt.scopes` (`None` without any).
pub fn scopes_of(claims: &Map<String, Value>) -> Option<Vec<String>> {
    let scopes = token_scopes(claims);
    (!scopes.is_empty()).then(|| scopes.into_iter().map(str::to_owned).collect())
}

fn parse_jwks(jwks: &Value) -> Result<Vec<RsaKey>, String> {
    let keys = jwks
        .get("keys")
        .and_then(Value::as_array)
        .ok_or("a JWKS is an object with a `keys` list")?;
    let decode = |v: Option<&Value>| {
        v.and_then(Value::as_str).and_then(|s| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(s.trim_end_matches('='))
                .ok()
        })
    };
    Ok(keys
        .iter()
        .filter(|k| k.get("kty").and_then(Value::as_str) == Some("RSA"))
        .filter_map(|k| {
            Some(RsaKey {
                kid: k.get("kid").and_then(Value::as_str).map(str::to_owned),
                n: decode(k.get("n"))?,
                e: decode(k.get("e"))?,
            })
        })
        .collect())
}

async fn fetch_keys(issuer: &str) -> Result<Vec<RsaKey>, String> {
    let jwks_url = if issuer.contains("cognito-idp.") {
        format!("{issuer}/.well-known/jwks.json")
    } else {
        let discovery = fetch_json(&format!("{issuer}/.well-known/openid-configuration")).await?;
        discovery
            .get("jwks_uri")
            .and_then(Value::as_str)
            .ok_or("its openid-configuration has no jwks_uri")?
            .to_owned()
    };
    parse_jwks(&fetch_json(&jwks_url).await?)
}

/// GET a JSON document over http or https (the system's CA bundle), bounded in time and size.
async fn fetch_json(url: &str) -> Result<Value, String> {
    let (tls, rest) = if let Some(r) = url.strip_prefix("https://") {
        (true, r)
    } else if let Some(r) = url.strip_prefix("http://") {
        (false, r)
    } else {
        return Err(format!("{url} is not an http(s) URL"));
    };
    let (authority, path) = rest
        .split_once('/')
        .map_or((rest, "/".to_owned()), |(a, p)| (a, format!("/{p}")));
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || authority.starts_with('[') => (
            h.trim_matches(['[', ']']),
            p.parse::<u16>().map_err(|_| format!("bad port in {url}"))?,
        ),
        _ => (authority, if tls { 443 } else { 80 }),
    };
    let work = async {
        let tcp = tokio::net::TcpStream::connect((host, port))
            .await
            .map_err(|e| e.to_string())?;
        let request = hyper::Request::get(&path)
            .header("host", authority)
            .header("accept", "application/json")
            .body(Empty::<Bytes>::new())
            .map_err(|e| e.to_string())?;
        let response = if tls {
            let stream = tls_connector()?
                .connect(
                    tokio_rustls::rustls::pki_types::ServerName::try_from(host.to_owned())
                        .map_err(|e| e.to_string())?,
                    tcp,
                )
                .await
                .map_err(|e| e.to_string())?;
            send(hyper_util::rt::TokioIo::new(stream), request).await?
        } else {
            send(hyper_util::rt::TokioIo::new(tcp), request).await?
        };
        if !response.status().is_success() {
            return Err(format!("{url} answered {}", response.status()));
        }
        let body = Limited::new(response.into_body(), MAX_DOCUMENT_BYTES)
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        serde_json::from_slice(&body).map_err(|e| format!("{url} is not JSON: {e}"))
    };
    tokio::time::timeout(FETCH_TIMEOUT, work)
        .await
        .map_err(|_| format!("{url} did not answer within {} s", FETCH_TIMEOUT.as_secs()))?
}

async fn send<S>(io: S, request: hyper::Request<Empty<Bytes>>) -> Result<hyper::Response<hyper::body::Incoming>, String>
where
    S: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(conn);
    sender.send_request(request).await.map_err(|e| e.to_string())
}

fn tls_connector() -> Result<tokio_rustls::TlsConnector, String> {
    use tokio_rustls::rustls;
    use tokio_rustls::rustls::pki_types::pem::PemObject as _;
    use tokio_rustls::rustls::pki_types::CertificateDer;
    let mut roots = rustls::RootCertStore::empty();
    let bundle = std::path::Path::new("/etc/ssl/certs/ca-certificates.crt");
    if let Ok(certs) = CertificateDer::pem_file_iter(bundle).and_then(|c| c.collect::<Result<Vec<_>, _>>()) {
        roots.add_parsable_certificates(certs);
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(tokio_rustls::TlsConnector::from(Arc::new(config)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn claims_reach_functions_as_strings() {
        let claims = json!({"sub": "u1", "exp": 5, "groups": ["a", "b"], "email_verified": true});
        let out = claims_as_strings(claims.as_object().unwrap());
        assert_eq!(
            Value::Object(out),
            json!({"sub": "u1", "exp": "5", "groups": "[a b]", "email_verified": "true"})
        );
    }

    #[test]
    fn scopes_come_from_scope_or_scp() {
        let c = json!({"scope": "read write", "scp": ["admin"]});
        assert_eq!(token_scopes(c.as_object().unwrap()), vec!["read", "write", "admin"]);
    }
}
