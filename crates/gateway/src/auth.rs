//! Identity and IAM on the table and Invoke APIs: who is calling (a function instance, by the
//! credentials it was issued and the endpoint it called from) and whether its role allows the
//! call. Refusals are mapped here to each protocol's answer, the way AWS writes them.

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::HeaderValue;
use hyper::{Response, StatusCode};
use sylph_iam::{AuthError, Authorizer, CallParts, Caller, SignedRequest};

use crate::Body;

/// Which API a refusal is written for.
#[derive(Clone, Copy, Debug)]
pub enum Protocol {
    DynamoDb,
    Lambda,
    /// SQS's JSON protocol (refusals also carry the query protocol's code).
    Sqs,
}

/// Check a call; `needs` says which (action, resource) pairs it is, computed only when the
/// caller is an instance. `Err` is the answer to send instead of serving the call (built only
/// when refusing, so its size costs nothing on the way through).
#[allow(clippy::result_large_err)]
pub(crate) fn check<N: AsRef<[(String, String)]>>(
    authorizer: &Authorizer,
    caller: Caller<'_>,
    parts: &hyper::http::request::Parts,
    body: &[u8],
    protocol: Protocol,
    needs: impl FnOnce() -> N,
) -> Result<(), Response<Body>> {
    let header = |n: &str| parts.headers.get(n).and_then(|v| v.to_str().ok());
    let authorization = header("authorization");
    if authorization.is_none() && matches!(caller, Caller::Public) {
        // The developer's own unsigned tools on the public port: nothing to check.
        return Ok(());
    }
    let headers: Vec<(&str, &[u8])> = parts.headers.iter().map(|(k, v)| (k.as_str(), v.as_bytes())).collect();
    let call = CallParts {
        signed: SignedRequest {
            method: parts.method.as_str(),
            path: parts.uri.path(),
            query: parts.uri.query(),
            headers: &headers,
            body,
        },
        authorization,
        security_token: header("x-amz-security-token"),
    };
    let principal = match authorizer.authenticate(caller, &call) {
        Ok(Some(p)) => p,
        Ok(None) => return Ok(()),
        Err(e) => {
            tracing::warn!("refused a call: {e}");
            return Err(auth_error(protocol, &e));
        }
    };
    authorizer
        .authorize(&principal, needs().as_ref())
        .map_err(|denied| refusal(protocol, "AccessDeniedException", &denied.message))
}

/// AWS's answer to a call whose caller could not be authenticated.
pub fn auth_error(protocol: Protocol, e: &AuthError) -> Response<Body> {
    let (kind, message) = match e {
        AuthError::MissingToken => ("MissingAuthenticationTokenException", e.to_string()),
        AuthError::UnrecognizedClient => ("UnrecognizedClientException", e.to_string()),
        AuthError::Signature(sylph_iam::SignatureError::Expired) => (
            "InvalidSignatureException",
            "Signature expired: the request's X-Amz-Date is more than 15 minutes from the server's time.".to_owned(),
        ),
        AuthError::Signature(_) => (
            "InvalidSignatureException",
            "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method.".to_owned(),
        ),
    };
    refusal(protocol, kind, &message)
}

/// AWS's answer to a call refused with error type `kind` (`AccessDeniedException`, …).
pub fn refusal(protocol: Protocol, kind: &'static str, message: &str) -> Response<Body> {
    match protocol {
        Protocol::Lambda => crate::invoke_api::error(StatusCode::FORBIDDEN, kind, message),
        Protocol::Sqs => {
            let code = match kind {
                "AccessDeniedException" => "AccessDenied",
                other => other,
            };
            let body =
                serde_json::json!({"__type": format!("com.amazonaws.sqs#{code}"), "message": message}).to_string();
            let mut res = Response::new(Full::new(Bytes::from(body)));
            *res.status_mut() = StatusCode::FORBIDDEN;
            let h = res.headers_mut();
            h.insert("content-type", HeaderValue::from_static("application/x-amz-json-1.0"));
            if let Ok(v) = HeaderValue::from_str(&format!("{code};Sender")) {
                h.insert("x-amzn-query-error", v);
            }
            res
        }
        Protocol::DynamoDb => {
            let body = serde_json::json!({
                "__type": format!("com.amazon.coral.service#{kind}"),
                "Message": message,
            })
            .to_string();
            let mut res = Response::new(Full::new(Bytes::from(body)));
            *res.status_mut() = StatusCode::BAD_REQUEST;
            res.headers_mut()
                .insert("content-type", HeaderValue::from_static("application/x-amz-json-1.0"));
            res
        }
    }
}
