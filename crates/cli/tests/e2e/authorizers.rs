//! Access control on HTTP routes as API Gateway applies it: Lambda authorizers of the service
//! (TOKEN, REQUEST, HTTP API simple responses), `aws_iam` signatures, API keys, and an
//! authorizer defined elsewhere. Each refusal is an attack that reached the function before.

use std::process::Command;

use serde_json::{json, Value};

use crate::harness::{repo_root, Dev, Response};

fn config() -> std::path::PathBuf {
    repo_root().join("crates/cli/tests/fixtures/auth-service/serverless.yml")
}

fn auth(dev: &Dev, path: &str, token: &str) -> Response {
    dev.send("GET", path, &[("Authorization", token)], b"")
}

fn refused(r: &Response, status: u16, error_type: &str, message: Value) {
    assert_eq!(r.status, status, "{}", r.text());
    assert_eq!(r.json(), json!({ "message": message }));
    assert_eq!(r.header("x-amzn-errortype"), Some(error_type), "{}", r.text());
}

/// Sign a GET of `url` with SigV4 (botocore, as the AWS SDKs sign) and send it.
fn signed_get(url: &str, key: &str, secret: &str, token: Option<&str>) -> (u16, Value) {
    let script = r#"
import json, sys, urllib.request, urllib.error
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
url, key, secret, token = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4] or None
req = AWSRequest(method="GET", url=url)
SigV4Auth(Credentials(key, secret, token), "execute-api", "us-east-1").add_auth(req)
r = urllib.request.Request(url, headers=dict(req.headers.items()))
try:
    with urllib.request.urlopen(r) as resp:
        print(json.dumps({"status": resp.status, "body": json.loads(resp.read())}))
except urllib.error.HTTPError as e:
    print(json.dumps({"status": e.code, "body": json.loads(e.read())}))
"#;
    let out = Command::new("python3")
        .args(["-c", script, url, key, secret, token.unwrap_or("")])
        .output()
        .expect("python3");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    (v["status"].as_u64().unwrap() as u16, v["body"].clone())
}

#[test]
fn authorizers_and_api_keys_guard_routes_as_api_gateway_does() {
    let data = std::env::temp_dir().join(format!("sylph-e2e-auth-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&data);
    std::fs::create_dir_all(&data).unwrap();
    let context_file = data.join("authorizer-context.json");
    std::fs::write(&context_file, r#"{"principalId": "ext-user", "tier": "gold"}"#).unwrap();
    let data_dir = data.join("state");
    let args = [
        "--data-dir",
        data_dir.to_str().unwrap(),
        "--authorizer-context",
        context_file.to_str().unwrap(),
        "--cognito-identity-id",
        "us-east-1:local-identity",
    ];
    let mut dev = Dev::start_with(&config(), &args, &[]);
    let out = dev.output();
    assert!(
        out.contains("authorizer arn:aws:lambda:us-east-1:123456789012:function:shared-authorizer is defined outside this service"),
        "{out}"
    );
    assert!(out.contains("api key fixed: fixed-key-value-0123456789"), "{out}");
    let generated = out
        .lines()
        .find_map(|l| l.trim().strip_prefix("api key generated: "))
        .unwrap_or_else(|| panic!("no generated key printed:\n{out}"))
        .to_owned();
    assert_eq!(generated.len(), 40, "{generated}");

    // TOKEN authorizer: a missing token never reaches the authorizer or the function.
    refused(
        &dev.get("/dev/token/1"),
        401,
        "UnauthorizedException",
        json!("Unauthorized"),
    );
    refused(
        &auth(&dev, "/dev/token/1", "unauthorized"),
        401,
        "UnauthorizedException",
        json!("Unauthorized"),
    );
    refused(
        &auth(&dev, "/dev/token/1", "deny-token"),
        403,
        "AccessDeniedException",
        json!("User is not authorized to access this resource with an explicit deny"),
    );
    refused(
        &auth(&dev, "/dev/token/1", "someone-else"),
        403,
        "AccessDeniedException",
        json!("User is not authorized to access this resource"),
    );
    // A failing or malformed authorizer is a configuration error, not an open door.
    refused(
        &auth(&dev, "/dev/token/1", "broken"),
        500,
        "AuthorizerConfigurationException",
        Value::Null,
    );
    refused(
        &auth(&dev, "/dev/token/1", "bad-context"),
        500,
        "AuthorizerConfigurationException",
        Value::Null,
    );

    // Allowed: the context arrives as strings beside the principal.
    let r = auth(&dev, "/dev/token/1", "allow-token");
    assert_eq!(r.status, 200, "{}", r.text());
    let first = r.json()["requestContext"]["authorizer"].clone();
    assert_eq!(first["principalId"], "ada", "{first}");
    assert_eq!(first["user"], "ada");
    assert_eq!(first["level"], "3");
    assert_eq!(first["admin"], "true");
    assert_eq!(first["type"], "TOKEN");
    assert!(first["stamp"].is_string(), "{first}");
    // Cached for the default 300 s: the same answer, for another path the policy allows too.
    let again = auth(&dev, "/dev/token/2", "allow-token").json()["requestContext"]["authorizer"].clone();
    assert_eq!(
        again["stamp"], first["stamp"],
        "a second run instead of the cached answer"
    );
    // A cached policy is evaluated against each request's own method ARN.
    assert_eq!(auth(&dev, "/dev/token/1", "narrow").status, 200);
    refused(
        &auth(&dev, "/dev/token/2", "narrow"),
        403,
        "AccessDeniedException",
        json!("User is not authorized to access this resource"),
    );

    // A cached answer belongs to the authorizer as one route configures it: the same function
    // as a REQUEST authorizer on another route runs for itself (and denies: no token there).
    assert_eq!(
        dev.send("GET", "/dev/request-cached", &[("X-Token", "allow-token")], b"")
            .status,
        403
    );

    // Without caching, each request runs the authorizer; the validation expression refuses
    // a token before it runs (the authorizer itself would allow `allow-token`).
    let a = auth(&dev, "/dev/uncached", "Bearer allow-me");
    let b = auth(&dev, "/dev/uncached", "Bearer allow-me");
    assert_eq!((a.status, b.status), (200, 200), "{}", a.text());
    assert_ne!(
        a.json()["requestContext"]["authorizer"]["stamp"],
        b.json()["requestContext"]["authorizer"]["stamp"]
    );
    refused(
        &auth(&dev, "/dev/uncached", "allow-token"),
        401,
        "UnauthorizedException",
        json!("Unauthorized"),
    );

    // REQUEST authorizer: every identity source must be present.
    let r = dev.send("GET", "/dev/request?tenant=acme", &[("X-Key", "secret")], b"");
    assert_eq!(r.status, 200, "{}", r.text());
    let ctx = &r.json()["requestContext"]["authorizer"];
    assert_eq!(
        (ctx["tenant"].as_str(), ctx["principalId"].as_str()),
        (Some("acme"), Some("acme-user"))
    );
    assert_eq!(ctx["type"], "REQUEST");
    refused(
        &dev.send("GET", "/dev/request", &[("X-Key", "secret")], b""),
        401,
        "UnauthorizedException",
        json!("Unauthorized"),
    );
    assert_eq!(
        dev.send("GET", "/dev/request?tenant=acme", &[("X-Key", "guess")], b"")
            .status,
        403
    );

    // HTTP API authorizer with simple responses.
    let r = auth(&dev, "/simple", "let-me-in");
    assert_eq!(r.status, 200, "{}", r.text());
    let lambda = &r.json()["requestContext"]["authorizer"]["lambda"];
    assert_eq!(lambda["who"], "simple", "{lambda}");
    assert_eq!(lambda["count"], 2, "payload 2.0 keeps the context's types");
    assert_eq!(lambda["source"], "let-me-in");
    assert!(
        lambda["routeArn"].as_str().unwrap().ends_with("/$default/GET/simple"),
        "{lambda}"
    );
    refused(
        &auth(&dev, "/simple", "guess"),
        403,
        "ForbiddenException",
        json!("Forbidden"),
    );
    refused(&dev.get("/simple"), 401, "UnauthorizedException", json!("Unauthorized"));
    // A browser's preflight has no credentials; API Gateway answers it before the authorizer.
    let preflight = dev.send(
        "OPTIONS",
        "/guarded/x",
        &[("Origin", "http://app.test"), ("Access-Control-Request-Method", "GET")],
        b"",
    );
    assert!(preflight.status < 300, "{} {}", preflight.status, preflight.text());
    assert!(preflight.header("access-control-allow-origin").is_some());
    refused(
        &dev.get("/guarded/x"),
        401,
        "UnauthorizedException",
        json!("Unauthorized"),
    );

    // API keys.
    refused(&dev.get("/dev/private"), 403, "ForbiddenException", json!("Forbidden"));
    refused(
        &dev.send(
            "GET",
            "/dev/private",
            &[("x-api-key", "fixed-key-value-0123456788")],
            b"",
        ),
        403,
        "ForbiddenException",
        json!("Forbidden"),
    );
    let r = dev.send(
        "GET",
        "/dev/private",
        &[("x-api-key", "fixed-key-value-0123456789")],
        b"",
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.json()["requestContext"]["identity"]["apiKey"],
        "fixed-key-value-0123456789"
    );
    assert_eq!(
        dev.send("GET", "/dev/private", &[("x-api-key", &generated)], b"")
            .status,
        200
    );

    // Usage plans: a quota of 3 a day, and a burst of 2 refilled once in 1,000 s.
    let with_key = |key: &str| dev.send("GET", "/dev/private", &[("x-api-key", key)], b"");
    for _ in 0..3 {
        assert_eq!(with_key("quota-key-value-0123456789").status, 200);
    }
    refused(
        &with_key("quota-key-value-0123456789"),
        429,
        "LimitExceededException",
        json!("Limit Exceeded"),
    );
    for _ in 0..2 {
        assert_eq!(with_key("burst-key-value-0123456789").status, 200);
    }
    refused(
        &with_key("burst-key-value-0123456789"),
        429,
        "TooManyRequestsException",
        json!("Too Many Requests"),
    );
    // Other keys are not held back by them.
    assert_eq!(with_key("fixed-key-value-0123456789").status, 200);

    // An authorizer elsewhere: the context the operator gave.
    let r = dev.get("/dev/external");
    assert_eq!(r.status, 200, "{}", r.text());
    let ctx = &r.json()["requestContext"]["authorizer"];
    assert_eq!(
        (ctx["principalId"].as_str(), ctx["tier"].as_str()),
        (Some("ext-user"), Some("gold"))
    );

    // aws_iam: unsigned, forged with a live instance's key id, then properly signed.
    refused(
        &dev.get("/dev/iam"),
        403,
        "MissingAuthenticationTokenException",
        json!("Missing Authentication Token"),
    );
    let creds = dev.invoke_ok("credentials", &json!({}));
    let (key, secret, token) = (
        creds["key"].as_str().unwrap(),
        creds["secret"].as_str().unwrap(),
        creds["token"].as_str().unwrap(),
    );
    let url = format!("{}/dev/iam", dev.base);
    let (status, body) = signed_get(&url, key, "not-the-secret", Some(token));
    assert_eq!(status, 403, "{body}");
    let (status, body) = signed_get(&url, key, secret, None);
    assert_eq!(
        (status, &body["message"]),
        (403, &json!("The security token included in the request is invalid."))
    );
    let (status, body) = signed_get(&url, key, secret, Some(token));
    assert_eq!(status, 200, "{body}");
    let identity = &body["requestContext"]["identity"];
    assert_eq!(identity["accessKey"], key);
    assert!(
        identity["userArn"].as_str().unwrap().contains("assumed-role/")
            && identity["userArn"]
                .as_str()
                .unwrap()
                .ends_with("/auth-service-dev-credentials"),
        "{identity}"
    );
    // A developer's own key (not one Sylph issued) is taken as the developer's.
    let (status, body) = signed_get(&url, "AKIDLOCALDEVELOPER01", "dev-secret", None);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["requestContext"]["identity"]["accessKey"], "AKIDLOCALDEVELOPER01");
    // Standing for the Cognito identity the developer named, as identity-pool keys would.
    assert_eq!(
        body["requestContext"]["identity"]["cognitoIdentityId"],
        "us-east-1:local-identity"
    );

    // Routes without access control stay open.
    assert_eq!(dev.get("/dev/open").status, 200);

    // The request validator: required parameters, then the body against its schema.
    let json_type = ("Content-Type", "application/json");
    let r = dev.send(
        "POST",
        "/dev/items?tenant=a",
        &[json_type],
        br#"{"name":"pen","count":2}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    refused(
        &dev.send("POST", "/dev/items", &[json_type], br#"{"name":"pen"}"#),
        400,
        "BadRequestException",
        json!("Missing required request parameters: [tenant]"),
    );
    for bad in [
        &br#"{"count":-1}"#[..],
        br#"{"name":"pen","extra":true}"#,
        br#"{"name":"#,
        b"",
    ] {
        refused(
            &dev.send("POST", "/dev/items?tenant=a", &[json_type], bad),
            400,
            "BadRequestException",
            json!("Invalid request body"),
        );
    }
    // A content type without a schema is not checked, as in API Gateway.
    assert_eq!(
        dev.send(
            "POST",
            "/dev/items?tenant=a",
            &[("Content-Type", "text/plain")],
            b"anything"
        )
        .status,
        200
    );

    // After a restart, the made-up key is the same.
    dev.stop();
    let dev = Dev::start_with(&config(), &args, &[]);
    assert!(
        dev.output().contains(&format!("api key generated: {generated}")),
        "{}",
        dev.output()
    );
    assert_eq!(
        dev.send("GET", "/dev/private", &[("x-api-key", &generated)], b"")
            .status,
        200
    );
    drop(dev);
    let _ = std::fs::remove_dir_all(&data);
}

/// On a shared server nothing vouches for a signer Sylph does not know or for an authorizer
/// it cannot run: both are refused there, where `sylph dev` lets the developer through.
#[test]
fn the_server_refuses_unknown_signers_and_authorizers_it_cannot_run() {
    let server = crate::harness::Server::start_fresh("auth");
    let key = server.admin_key.clone();
    let api = server.deploy(&key, &config())["api_id"].as_str().unwrap().to_owned();
    let base = format!("/apis/{api}");
    // A made-up key on an aws_iam route.
    let forged = "AWS4-HMAC-SHA256 Credential=AKIDMADEUPMADEUP0001/20261129/us-east-1/execute-api/aws4_request, SignedHeaders=host, Signature=00";
    let r = crate::harness::request(
        &server.base,
        "GET",
        &format!("{base}/dev/iam"),
        &[("Authorization", forged)],
        b"",
    );
    refused(
        &r,
        403,
        "UnrecognizedClientException",
        json!("The security token included in the request is invalid."),
    );
    // A route whose authorizer lives in another account.
    let r = server.api(&api, "GET", "/dev/external", b"");
    refused(&r, 401, "UnauthorizedException", json!("Unauthorized"));
    // A key the server issued, signing the URL as the client sent it (path style).
    let (ok, out, err) = server.cli(
        &key,
        &["invoke", "--json", "-f", "credentials", "--name", "auth-service"],
    );
    assert!(ok, "{out}{err}");
    let answer: Value = serde_json::from_str(&out).unwrap();
    let creds: Value = serde_json::from_str(answer["payload"].as_str().unwrap()).unwrap();
    let (status, body) = signed_get(
        &format!("{}{base}/dev/iam", server.base),
        creds["key"].as_str().unwrap(),
        creds["secret"].as_str().unwrap(),
        creds["token"].as_str(),
    );
    assert_eq!(status, 200, "{body}");
    assert!(
        body["requestContext"]["identity"]["userArn"]
            .as_str()
            .unwrap()
            .ends_with("/auth-service-dev-credentials"),
        "{body}"
    );
    // The service's own authorizers run as under sylph dev.
    let r = crate::harness::request(
        &server.base,
        "GET",
        &format!("{base}/dev/token/1"),
        &[("Authorization", "allow-token")],
        b"",
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(server.api(&api, "GET", "/dev/token/1", b"").status, 401);
}
