//! Checking an AWS Signature Version 4 `Authorization` header, as AWS does for every API call
//! the SDKs make: rebuild the canonical request from what arrived, derive the signing key from
//! the secret Sylph issued, and compare signatures in constant time.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use crate::SignatureError;

type HmacSha256 = Hmac<Sha256>;

/// What an `Authorization: AWS4-HMAC-SHA256 …` header says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorization<'a> {
    pub access_key_id: &'a str,
    /// `YYYYMMDD/region/service/aws4_request`.
    pub scope: &'a str,
    pub date: &'a str,
    pub region: &'a str,
    pub service: &'a str,
    /// Lower-case header names, `;`-separated, as signed.
    pub signed_headers: &'a str,
    pub signature: &'a str,
}

/// Parse an `Authorization` header value.
pub fn parse_authorization(value: &str) -> Result<Authorization<'_>, SignatureError> {
    let rest = value.strip_prefix("AWS4-HMAC-SHA256").ok_or(SignatureError::Malformed(
        "the Authorization header is not AWS4-HMAC-SHA256",
    ))?;
    let (mut credential, mut signed_headers, mut signature) = (None, None, None);
    for part in rest.split(',') {
        let part = part.trim();
        if let Some(v) = part.strip_prefix("Credential=") {
            credential = Some(v);
        } else if let Some(v) = part.strip_prefix("SignedHeaders=") {
            signed_headers = Some(v);
        } else if let Some(v) = part.strip_prefix("Signature=") {
            signature = Some(v);
        }
    }
    let credential = credential.ok_or(SignatureError::Malformed("Authorization has no Credential"))?;
    let signed_headers = signed_headers.ok_or(SignatureError::Malformed("Authorization has no SignedHeaders"))?;
    let signature = signature.ok_or(SignatureError::Malformed("Authorization has no Signature"))?;
    let (access_key_id, scope) = credential
        .split_once('/')
        .ok_or(SignatureError::Malformed("the Credential has no scope"))?;
    let mut parts = scope.split('/');
    let (date, region, service, terminal) = (parts.next(), parts.next(), parts.next(), parts.next());
    match (date, region, service, terminal, parts.next()) {
        (Some(date), Some(region), Some(service), Some("aws4_request"), None) => Ok(Authorization {
            access_key_id,
            scope,
            date,
            region,
            service,
            signed_headers,
            signature,
        }),
        _ => Err(SignatureError::Malformed(
            "the Credential scope is not date/region/service/aws4_request",
        )),
    }
}

/// The parts of a request a signature covers.
pub struct SignedRequest<'a> {
    pub method: &'a str,
    /// The path as it arrived (percent-encoded).
    pub path: &'a str,
    pub query: Option<&'a str>,
    /// Header name (any case) and value, every header of the request.
    pub headers: &'a [(&'a str, &'a [u8])],
    pub body: &'a [u8],
}

/// Check `auth` over `req` with `secret`.
pub fn verify(req: &SignedRequest<'_>, auth: &Authorization<'_>, secret: &str) -> Result<(), SignatureError> {
    let header = |name: &str| -> Option<&[u8]> {
        req.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| *v)
    };
    let amz_date = header("x-amz-date")
        .and_then(|v| std::str::from_utf8(v).ok())
        .ok_or(SignatureError::Malformed("the request has no X-Amz-Date header"))?;
    if !amz_date.starts_with(auth.date) {
        return Err(SignatureError::Malformed(
            "X-Amz-Date does not match the Credential scope",
        ));
    }
    check_skew(amz_date)?;
    if !auth.signed_headers.split(';').any(|h| h == "host") {
        return Err(SignatureError::Malformed("the Host header is not signed"));
    }
    let payload_hash = match header("x-amz-content-sha256").and_then(|v| std::str::from_utf8(v).ok()) {
        Some(h) if h == "UNSIGNED-PAYLOAD" => h.to_owned(),
        _ => hex(&Sha256::digest(req.body)),
    };
    let canonical_headers = canonical_headers(req, auth.signed_headers.split(';'))
        .ok_or(SignatureError::Malformed("a signed header is missing from the request"))?;
    let query = canonical_query(req.query.unwrap_or(""));
    let key = signing_key(secret, auth.date, auth.region, auth.service);
    // SDKs differ in whether they encode the (already encoded) path once more; AWS's own
    // services accept the form each SDK sends, and either needs the secret.
    let once = uri_encode(req.path, false);
    for path in [once.as_str(), req.path] {
        let canonical = Canonical {
            method: req.method,
            path,
            query: &query,
            headers: &canonical_headers,
            signed_headers: auth.signed_headers,
            payload_hash: &payload_hash,
        };
        let expected = canonical.signature(amz_date, auth.scope, &key);
        if constant_time_eq(expected.as_bytes(), auth.signature.as_bytes()) {
            return Ok(());
        }
    }
    Err(SignatureError::Mismatch)
}

/// The `Authorization` header value that signs `req` with every one of its headers (which must
/// include `host` and `x-amz-date`, whose value is `amz_date`), as an SDK would sign it. Sylph
/// signs WebAssembly functions' calls into its APIs this way, as the function's identity.
pub fn sign(
    req: &SignedRequest<'_>,
    access_key_id: &str,
    secret: &str,
    region: &str,
    service: &str,
    amz_date: &str,
) -> String {
    let date = amz_date.get(..8).unwrap_or(amz_date);
    let scope = format!("{date}/{region}/{service}/aws4_request");
    let mut names: Vec<String> = req.headers.iter().map(|(k, _)| k.to_ascii_lowercase()).collect();
    names.sort();
    names.dedup();
    let canonical_headers = canonical_headers(req, names.iter().map(String::as_str)).unwrap_or_default();
    let signed_headers = names.join(";");
    let canonical = Canonical {
        method: req.method,
        path: &uri_encode(req.path, false),
        query: &canonical_query(req.query.unwrap_or("")),
        headers: &canonical_headers,
        signed_headers: &signed_headers,
        payload_hash: &hex(&Sha256::digest(req.body)),
    };
    let signature = canonical.signature(amz_date, &scope, &signing_key(secret, date, region, service));
    format!(
        "AWS4-HMAC-SHA256 Credential={access_key_id}/{scope}, SignedHeaders={signed_headers}, Signature={signature}"
    )
}

/// `name:value,value\n` for each of `names` (lower case), from the request's headers of that
/// name (any case); `None` if one is missing.
fn canonical_headers<'a>(req: &SignedRequest<'_>, names: impl Iterator<Item = &'a str>) -> Option<String> {
    let mut out = String::new();
    for name in names {
        let values: Vec<String> = req
            .headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| collapse_spaces(&String::from_utf8_lossy(v)))
            .collect();
        if values.is_empty() {
            return None;
        }
        out.push_str(name);
        out.push(':');
        out.push_str(&values.join(","));
        out.push('\n');
    }
    Some(out)
}

/// SigV4's canonical request.
struct Canonical<'a> {
    method: &'a str,
    path: &'a str,
    query: &'a str,
    headers: &'a str,
    signed_headers: &'a str,
    payload_hash: &'a str,
}

impl Canonical<'_> {
    /// The hex signature of this request at `amz_date` in `scope` with the signing `key`.
    fn signature(&self, amz_date: &str, scope: &str, key: &[u8]) -> String {
        let canonical = format!(
            "{}\n{}\n{}\n{}\n{}\n{}",
            self.method, self.path, self.query, self.headers, self.signed_headers, self.payload_hash
        );
        let to_sign = format!(
            "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
            hex(&Sha256::digest(canonical.as_bytes()))
        );
        let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes any key length");
        mac.update(to_sign.as_bytes());
        hex(&mac.finalize().into_bytes())
    }
}

/// The signing key for a date, region and service.
pub fn signing_key(secret: &str, date: &str, region: &str, service: &str) -> Vec<u8> {
    let mut key = format!("AWS4{secret}").into_bytes();
    for part in [date, region, service, "aws4_request"] {
        let mut mac = HmacSha256::new_from_slice(&key).expect("HMAC takes any key length");
        mac.update(part.as_bytes());
        key = mac.finalize().into_bytes().to_vec();
    }
    key
}

/// Signatures older or newer than this are refused, as AWS does (replays of old requests).
const MAX_SKEW_SECONDS: i64 = 15 * 60;

fn check_skew(amz_date: &str) -> Result<(), SignatureError> {
    let then = parse_amz_date(amz_date).ok_or(SignatureError::Malformed("X-Amz-Date is not YYYYMMDDTHHMMSSZ"))?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    if (now - then).abs() > MAX_SKEW_SECONDS {
        return Err(SignatureError::Expired);
    }
    Ok(())
}

/// Seconds since the epoch of `YYYYMMDDTHHMMSSZ`.
fn parse_amz_date(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> { s.get(r)?.parse().ok() };
    let (y, m, d) = (num(0..4)?, num(4..6)?, num(6..8)?);
    let (hh, mm, ss) = (num(9..11)?, num(11..13)?, num(13..15)?);
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) || hh > 23 || mm > 59 || ss > 60 {
        return None;
    }
    // Days from civil (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + hh * 3600 + mm * 60 + ss)
}

fn collapse_spaces(v: &str) -> String {
    v.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The query string with parameters sorted and each name and value encoded as SigV4 wants.
fn canonical_query(query: &str) -> String {
    if query.is_empty() {
        return String::new();
    }
    let mut pairs: Vec<(String, String)> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (
                uri_encode(&percent_decode(k), true),
                uri_encode(&percent_decode(v), true),
            )
        })
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 3 <= b.len() {
            if let Some(v) = s.get(i + 1..i + 3).and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// SigV4's URI encoding: everything but unreserved characters, and `/` unless `slash`.
fn uri_encode(s: &str, slash: bool) -> String {
    let mut out = String::with_capacity(s.len() * 3 / 2);
    for &c in s.as_bytes() {
        let unreserved = c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.' | b'~');
        if unreserved || (c == b'/' && !slash) {
            out.push(c as char);
        } else {
            out.push_str(&format!("%{c:02X}"));
        }
    }
    out
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(HEX[usize::from(b >> 4)] as char);
        out.push(HEX[usize::from(b & 0xF)] as char);
    }
    out
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signing_key_matches_the_aws_documentation_example() {
        // From the SigV4 documentation ("Examples of how to derive a signing key").
        let key = signing_key(
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            "20120215",
            "us-east-1",
            "iam",
        );
        assert_eq!(
            hex(&key),
            "f4780e2d9f65fa895f9c67b32ce1baf0b0d8a43505a000a1a9e090d414db404d"
        );
    }

    #[test]
    fn signing_matches_the_aws_test_suite_get_vanilla() {
        // AWS's SigV4 test suite, "get-vanilla".
        let headers: Vec<(&str, &[u8])> = vec![("Host", b"example.amazonaws.com"), ("X-Amz-Date", b"20150830T123600Z")];
        let req = SignedRequest {
            method: "GET",
            path: "/",
            query: None,
            headers: &headers,
            body: b"",
        };
        let value = sign(
            &req,
            "AKIDEXAMPLE",
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            "us-east-1",
            "service",
            "20150830T123600Z",
        );
        assert_eq!(
            value,
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
        );
    }

    #[test]
    fn a_request_sylph_signs_verifies_and_a_changed_one_does_not() {
        let amz_date = sylph_telemetry::UtcTime::now().amz_date();
        let headers: Vec<(&str, &[u8])> = vec![
            ("Host", b"127.0.0.1:3000"),
            ("X-Amz-Date", amz_date.as_bytes()),
            ("X-Amz-Target", b"DynamoDB_20120810.GetItem"),
        ];
        let req = SignedRequest {
            method: "POST",
            path: "/",
            query: None,
            headers: &headers,
            body: b"{\"TableName\":\"todos\"}",
        };
        let value = sign(&req, "AKID", "secret", "us-east-1", "dynamodb", &amz_date);
        let auth = parse_authorization(&value).unwrap();
        assert_eq!(auth.signed_headers, "host;x-amz-date;x-amz-target");
        verify(&req, &auth, "secret").unwrap();
        assert!(verify(&req, &auth, "another secret").is_err());
        let changed = SignedRequest {
            body: b"{\"TableName\":\"other\"}",
            ..req
        };
        assert!(matches!(
            verify(&changed, &auth, "secret"),
            Err(SignatureError::Mismatch)
        ));
    }

    #[test]
    fn parses_an_authorization_header() {
        let a = parse_authorization(
            "AWS4-HMAC-SHA256 Credential=AKID/20240101/us-east-1/dynamodb/aws4_request, SignedHeaders=host;x-amz-date, Signature=abc",
        )
        .unwrap();
        assert_eq!(a.access_key_id, "AKID");
        assert_eq!(a.service, "dynamodb");
        assert_eq!(a.signed_headers, "host;x-amz-date");
        assert!(parse_authorization("Basic abc").is_err());
        assert!(parse_authorization("AWS4-HMAC-SHA256 Credential=AKID/x, SignedHeaders=host, Signature=a").is_err());
    }

    #[test]
    fn amz_dates() {
        assert_eq!(parse_amz_date("19700101T000000Z"), Some(0));
        assert_eq!(parse_amz_date("20150830T123600Z"), Some(1_440_938_160));
        assert_eq!(parse_amz_date("2015083T123600Z"), None);
    }

    /// Sign like an SDK does, then check that verification accepts it and refuses any change.
    #[test]
    fn a_signature_verifies_and_any_change_breaks_it() {
        let secret = "s3cr3t";
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        let date = format_amz_date(now);
        let body = br#"{"TableName":"t"}"#;
        let headers_owned = [
            ("Host".to_owned(), b"127.0.0.1:3000".to_vec()),
            ("X-Amz-Date".to_owned(), date.clone().into_bytes()),
            ("X-Amz-Target".to_owned(), b"DynamoDB_20120810.Scan".to_vec()),
        ];
        let headers: Vec<(&str, &[u8])> = headers_owned.iter().map(|(k, v)| (k.as_str(), v.as_slice())).collect();
        let signed = "host;x-amz-date;x-amz-target";
        let scope = format!("{}/us-east-1/dynamodb/aws4_request", &date[..8]);
        let canonical = format!(
            "POST\n/\n\nhost:127.0.0.1:3000\nx-amz-date:{date}\nx-amz-target:DynamoDB_20120810.Scan\n\n{signed}\n{}",
            hex(&Sha256::digest(body))
        );
        let to_sign = format!(
            "AWS4-HMAC-SHA256\n{date}\n{scope}\n{}",
            hex(&Sha256::digest(canonical.as_bytes()))
        );
        let mut mac = HmacSha256::new_from_slice(&signing_key(secret, &date[..8], "us-east-1", "dynamodb")).unwrap();
        mac.update(to_sign.as_bytes());
        let signature = hex(&mac.finalize().into_bytes());
        let header = format!("AWS4-HMAC-SHA256 Credential=AK/{scope}, SignedHeaders={signed}, Signature={signature}");
        let auth = parse_authorization(&header).unwrap();
        let req = SignedRequest {
            method: "POST",
            path: "/",
            query: None,
            headers: &headers,
            body,
        };
        verify(&req, &auth, secret).unwrap();
        assert_eq!(verify(&req, &auth, "other"), Err(SignatureError::Mismatch));
        let tampered = SignedRequest {
            body: br#"{"TableName":"other"}"#,
            ..req
        };
        assert_eq!(verify(&tampered, &auth, secret), Err(SignatureError::Mismatch));
    }

    fn format_amz_date(secs: i64) -> String {
        let days = secs.div_euclid(86_400);
        let rem = secs.rem_euclid(86_400);
        // Civil from days (Howard Hinnant's algorithm).
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let d = doy - (153 * mp + 2) / 5 + 1;
        let m = if mp < 10 { mp + 3 } else { mp - 9 };
        let y = yoe + era * 400 + i64::from(m <= 2);
        format!(
            "{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z",
            rem / 3600,
            rem / 60 % 60,
            rem % 60
        )
    }
}
