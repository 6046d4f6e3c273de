//! JWT authorizers as API Gateway checks tokens: an HTTP API `jwt` authorizer whose keys are
//! fetched from its issuer (an OpenID provider the test runs on loopback), route scopes, and a
//! REST `COGNITO_USER_POOLS` authorizer checked against a JWKS file (offline use). Tokens are
//! made and signed by Node.js's own crypto; each refusal is a token that must not pass.

use std::io::{BufRead as _, BufReader, Write as _};
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use serde_json::{json, Value};

use crate::harness::Dev;

/// Make an RSA key pair (and a second, unrelated one) and sign the test's tokens.
const TOKENS: &str = r#"
const crypto = require('crypto');
const [issuer, cognito] = process.argv.slice(1);
const key = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
const other = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
const now = Math.floor(Date.now() / 1000);
function sign(claims, { signer = key.privateKey, alg = 'RS256', kid = 'k1' } = {}) {
  const head = b64({ alg, kid, typ: 'JWT' });
  const body = b64(Object.assign({ iss: issuer, aud: 'my-client', sub: 'user-1', exp: now + 3600, iat: now }, claims));
  if (alg === 'none') return `${head}.${body}.`;
  const sig = crypto.sign('sha256', Buffer.from(`${head}.${body}`), signer).toString('base64url');
  return `${head}.${body}.${sig}`;
}
const jwk = key.publicKey.export({ format: 'jwk' });
console.log(JSON.stringify({
  jwks: { keys: [Object.assign({ kid: 'k1', use: 'sig', alg: 'RS256' }, jwk)] },
  tokens: {
    good: sign({ scope: 'read', groups: ['a', 'b'] }),
    admin: sign({ scope: 'read admin' }),
    accessToken: sign({ aud: undefined, client_id: 'my-client', scope: 'admin' }),
    expired: sign({ exp: now - 60 }),
    notYet: sign({ nbf: now + 600 }),
    wrongAudience: sign({ aud: 'someone-else' }),
    wrongIssuer: sign({ iss: 'http://127.0.0.1:9/evil' }),
    forged: sign({}, { signer: other.privateKey }),
    unsigned: sign({}, { alg: 'none' }),
    cognito: sign({ iss: cognito, aud: 'pool-client', token_use: 'id', email: 'ada@example.test' }),
  },
}));
"#;

fn make_tokens(issuer: &str, cognito: &str) -> Value {
    let out = std::process::Command::new("node")
        .args(["-e", TOKENS, issuer, cognito])
        .output()
        .expect("node");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// A minimal OpenID provider on loopback: discovery and JWKS, counting the JWKS fetches.
fn serve_issuer(listener: TcpListener, jwks: Value, fetches: Arc<AtomicUsize>) {
    let base = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut line = String::new();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            if reader.read_line(&mut line).is_err() {
                continue;
            }
            loop {
                let mut header = String::new();
                if reader.read_line(&mut header).is_err() || header == "\r\n" || header.is_empty() {
                    break;
                }
            }
            let body = if line.contains("/.well-known/openid-configuration") {
                json!({"issuer": base, "jwks_uri": format!("{base}/keys")}).to_string()
            } else if line.contains("/keys") {
                fetches.fetch_add(1, Ordering::SeqCst);
                jwks.to_string()
            } else {
                String::new()
            };
            let status = if body.is_empty() { "404 Not Found" } else { "200 OK" };
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
}

const SERVICE: &str = "service: jwt-service\nprovider:\n  name: aws\n  runtime: nodejs20.x\n  httpApi:\n    authorizers:\n      oidc:\n        type: jwt\n        identitySource: $request.header.Authorization\n        issuerUrl: ${env:ISSUER}\n        audience:\n          - my-client\nfunctions:\n  echo:\n    handler: handler.echo\n    events:\n      - httpApi:\n          path: /me\n          method: get\n          authorizer: oidc\n      - httpApi:\n          path: /admin\n          method: get\n          authorizer:\n            name: oidc\n            scopes: [admin]\n      - http:\n          path: pool\n          method: get\n          authorizer:\n            type: COGNITO_USER_POOLS\n            arn: arn:aws:cognito-idp:us-east-1:000000000000:userpool/us-east-1_local\n";

const HANDLER: &str =
    "exports.echo = async (event) => ({ statusCode: 200, body: JSON.stringify(event.requestContext.authorizer) });\n";

#[test]
fn jwt_and_cognito_authorizers_check_tokens_as_api_gateway_does() {
    let dir = std::env::temp_dir().join(format!("sylph-e2e-jwt-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("serverless.yml"), SERVICE).unwrap();
    std::fs::write(dir.join("handler.js"), HANDLER).unwrap();

    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let issuer = format!("http://{}", listener.local_addr().unwrap());
    let cognito = "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_local";
    let made = make_tokens(&issuer, cognito);
    let fetches = Arc::new(AtomicUsize::new(0));
    serve_issuer(listener, made["jwks"].clone(), fetches.clone());
    let token = |name: &str| format!("Bearer {}", made["tokens"][name].as_str().unwrap());

    // Keys fetched from the issuer (discovery, then its jwks_uri), once.
    let dev = Dev::start_with(&dir.join("serverless.yml"), &[], &[("ISSUER", issuer.as_str())]);
    let r = dev.send("GET", "/me", &[("Authorization", &token("good"))], b"");
    assert_eq!(r.status, 200, "{}", r.text());
    let jwt = &r.json()["jwt"];
    assert_eq!(jwt["claims"]["sub"], "user-1");
    assert_eq!(jwt["claims"]["groups"], "[a b]");
    assert_eq!(jwt["scopes"], json!(["read"]));
    for refused in [
        "expired",
        "notYet",
        "wrongAudience",
        "wrongIssuer",
        "forged",
        "unsigned",
    ] {
        let r = dev.send("GET", "/me", &[("Authorization", &token(refused))], b"");
        assert_eq!(r.status, 401, "{refused}: {}", r.text());
        assert_eq!(r.json(), json!({"message": "Unauthorized"}), "{refused}");
        assert!(
            r.header("www-authenticate").is_some_and(|h| h.starts_with("Bearer")),
            "{refused}"
        );
    }
    assert_eq!(dev.get("/me").status, 401, "no token");
    // Route scopes: a valid token without `admin` is forbidden.
    assert_eq!(
        dev.send("GET", "/admin", &[("Authorization", &token("good"))], b"")
            .status,
        403
    );
    assert_eq!(
        dev.send("GET", "/admin", &[("Authorization", &token("admin"))], b"")
            .status,
        200
    );
    // An access token names its client in client_id.
    assert_eq!(
        dev.send("GET", "/admin", &[("Authorization", &token("accessToken"))], b"")
            .status,
        200
    );
    assert_eq!(fetches.load(Ordering::SeqCst), 1, "the keys are fetched once and kept");
    drop(dev);

    // Offline: a Cognito user pool's tokens checked with a JWKS file.
    let jwks_file = dir.join("jwks.json");
    std::fs::write(&jwks_file, made["jwks"].to_string()).unwrap();
    let dev = Dev::start_with(
        &dir.join("serverless.yml"),
        &["--jwks", jwks_file.to_str().unwrap()],
        &[("ISSUER", issuer.as_str())],
    );
    let raw = made["tokens"]["cognito"].as_str().unwrap();
    let r = dev.send("GET", "/dev/pool", &[("Authorization", raw)], b"");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["claims"]["email"], "ada@example.test");
    // A token of another issuer, even well signed, is not the pool's.
    assert_eq!(
        dev.send("GET", "/dev/pool", &[("Authorization", &token("good"))], b"")
            .status,
        401
    );
    assert_eq!(dev.get("/dev/pool").status, 401);
    drop(dev);
    let _ = std::fs::remove_dir_all(&dir);
}
