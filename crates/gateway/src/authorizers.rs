//! Access control on the service's own HTTP routes, as API Gateway applies it before a
//! function runs: Lambda authorizers (REST TOKEN and REQUEST, HTTP API payload 1.0 and 2.0
//! with IAM-policy or simple answers, results cached per identity), `aws_iam` (SigV4), and the
//! API keys of `private: true` routes. Refusals carry API Gateway's status, body and
//! `x-amzn-ErrorType`.

// A refusal is a whole response; it is built once per refused request, never copied around.
#![allow(clippy::result_large_err)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::HeaderValue;
use hyper::{Response, StatusCode};
use serde_json::{json, Map, Value};
use sylph_invoker::{InvokeRequest, InvokeResult, Invoker};
use sylph_model::{
    ApiKind, FunctionAuthorizer, IamStatement, IdentitySource, QuotaPeriod, Role, RouteAuthorizer, UsagePlan,
    LOCAL_ACCOUNT_ID,
};
use sylph_telemetry::UtcTime;

use crate::apigw::{self, Access, ApiKeyUsed, IamCaller, RequestParts};
use crate::routes::{Match, Route};
use crate::Body;

/// How many authorizer results are kept at most; past it, expired ones are dropped first,
/// then everything (a flood of distinct tokens must not grow memory without bound).
const MAX_CACHED_RESULTS: usize = 10_000;

/// Per route, what was compiled from the manifest once.
#[derive(Debug)]
pub struct RouteAuth {
    pub authorizer: RouteAuthorizer,
    /// `identityValidationExpression`, anchored at both ends as API Gateway matches it.
    validation: Option<regex_lite::Regex>,
    /// Whose cached answers this route may reuse: everything that shapes an answer, since one
    /// authorizer function may be configured differently on two routes (another identity
    /// source, another API flavour, simple responses).
    cache_scope: Arc<str>,
}

impl RouteAuth {
    pub fn new(authorizer: RouteAuthorizer, api: ApiKind) -> RouteAuth {
        let cache_scope = match &authorizer {
            RouteAuthorizer::Function(f) => format!(
                "{api:?}|{}|{}|{}|{}|{:?}",
                f.function, f.request, f.payload_v2, f.simple_responses, f.identity_sources
            ),
            _ => String::new(),
        };
        let validation = match &authorizer {
            RouteAuthorizer::Function(f) => f
                .validation_expression
                .as_ref()
                // Checked when the manifest was read; a failure here leaves tokens unchecked
                // by the expression but still checked by the authorizer.
                .and_then(|e| regex_lite::Regex::new(&format!("^(?:{e})$")).ok()),
            _ => None,
        };
        RouteAuth {
            authorizer,
            validation,
            cache_scope: cache_scope.into(),
        }
    }
}

/// The settings of access control the operator gives at start.
#[derive(Debug, Default, Clone)]
pub struct AccessSettings {
    /// (name, value) of every API key `private: true` routes accept.
    pub api_keys: Vec<(String, String)>,
    /// The `requestContext.authorizer` to hand over on routes whose authorizer is defined
    /// outside the service (`--authorizer-context`).
    pub external_context: Option<Map<String, Value>>,
    /// A JWKS that JWT authorizers check tokens against instead of fetching their issuer's
    /// (`--jwks`, for offline use).
    pub jwks: Option<Value>,
    /// `sylph dev`: the developer's own SigV4 keys (which Sylph cannot check) pass `aws_iam`,
    /// and routes whose authorizer lives outside the service pass with the context above.
    /// `sylph server` leaves it off: both are refused there, as nothing could vouch for them.
    pub development: bool,
    /// `sylph dev --cognito-identity-id`: the Cognito identity `aws_iam` requests signed by the
    /// developer's own keys stand for (identity pools hand out such keys on AWS).
    pub cognito_identity_id: Option<String>,
}

/// What an authorizer answered, kept for its TTL.
#[derive(Debug)]
enum Outcome {
    /// An IAM policy, evaluated against each request's method ARN (also when cached, as
    /// API Gateway does: a policy cached for one path may deny another).
    Policy {
        principal_id: String,
        policy: Role,
        context: Map<String, Value>,
    },
    /// An HTTP API simple response.
    Simple {
        authorized: bool,
        context: Map<String, Value>,
    },
}

/// (the authorizer as configured on the route, identity source values): whose answer a
/// cached result is.
type CacheKey = (Arc<str>, String);

/// Runs the checks; one per gateway.
pub struct RouteGuard {
    invoker: Arc<dyn Invoker>,
    iam: Option<Arc<sylph_iam::Authorizer>>,
    region: String,
    stage: String,
    settings: std::sync::OnceLock<AccessSettings>,
    /// Keys of JWT issuers (the operator's JWKS, or fetched).
    jwt_keys: std::sync::OnceLock<crate::jwt::JwtKeys>,
    cache: Mutex<HashMap<CacheKey, (Instant, Arc<Outcome>)>>,
    /// Each API key's usage plan, by key name.
    plans: HashMap<String, UsagePlan>,
    /// What each key has used (in memory: a restart starts every key afresh).
    usage: Mutex<HashMap<String, Usage>>,
}

/// One key's throttle bucket and quota count.
#[derive(Debug)]
struct Usage {
    tokens: f64,
    refilled: Instant,
    /// The quota period the count is for (see [`period_index`]).
    period: i64,
    used: u64,
}

/// A refusal: the response API Gateway would send.
type Refused = Response<Body>;

impl RouteGuard {
    pub fn new(
        service: &sylph_model::Service,
        invoker: Arc<dyn Invoker>,
        iam: Option<Arc<sylph_iam::Authorizer>>,
    ) -> RouteGuard {
        let plans = service
            .api_keys
            .iter()
            .filter_map(|key| {
                let plan = service.usage_plans.iter().find(|p| p.name == key.plan)?;
                Some((key.name.clone(), plan.clone()))
            })
            .collect();
        let (region, stage) = (service.region.clone(), service.stage.clone());
        RouteGuard {
            plans,
            usage: Mutex::new(HashMap::new()),
            invoker,
            iam,
            region,
            stage,
            settings: std::sync::OnceLock::new(),
            jwt_keys: std::sync::OnceLock::new(),
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// `Err` when the operator's JWKS cannot be used.
    pub fn configure(&self, settings: AccessSettings) -> Result<(), String> {
        if let Some(jwks) = &settings.jwks {
            let _ = self.jwt_keys.set(crate::jwt::JwtKeys::fixed(jwks)?);
        }
        let _ = self.settings.set(settings);
        Ok(())
    }

    fn jwt_keys(&self) -> &crate::jwt::JwtKeys {
        self.jwt_keys.get_or_init(crate::jwt::JwtKeys::default)
    }

    /// A JWT authorizer: the token in its header, checked; the claims for the event.
    async fn check_jwt(
        &self,
        route: &Route,
        auth: &sylph_model::JwtAuthorizer,
        req: &RequestParts<'_>,
    ) -> Result<Value, Refused> {
        let unauthorized = |why: &str| {
            tracing::debug!(authorizer = %auth.name, "refused a token: {why}");
            let mut res = refuse(StatusCode::UNAUTHORIZED, "UnauthorizedException", json!("Unauthorized"));
            if route.api == ApiKind::Http {
                let value = format!("Bearer error=\"invalid_token\" error_description=\"{why}\"");
                if let Ok(v) = HeaderValue::from_str(&value) {
                    res.headers_mut().insert("www-authenticate", v);
                }
            }
            res
        };
        let Some(token) = req.headers.get(auth.header.as_str()).and_then(|v| v.to_str().ok()) else {
            return Err(unauthorized("no token"));
        };
        match self.jwt_keys().verify(auth, token).await {
            Ok(claims) => Ok(if auth.rest {
                json!({ "claims": crate::jwt::claims_as_strings(&claims) })
            } else {
                json!({ "jwt": {
                    "claims": crate::jwt::claims_as_strings(&claims),
                    "scopes": crate::jwt::scopes_of(&claims),
                }})
            }),
            Err(crate::jwt::JwtError::Invalid(why)) => Err(unauthorized(&why)),
            Err(crate::jwt::JwtError::Scope) => Err(match route.api {
                ApiKind::Rest => refuse(StatusCode::UNAUTHORIZED, "UnauthorizedException", json!("Unauthorized")),
                ApiKind::Http => refuse(StatusCode::FORBIDDEN, "ForbiddenException", json!("Forbidden")),
            }),
        }
    }

    fn settings(&self) -> &AccessSettings {
        static NONE: std::sync::OnceLock<AccessSettings> = std::sync::OnceLock::new();
        self.settings
            .get()
            .unwrap_or_else(|| NONE.get_or_init(AccessSettings::default))
    }

    /// Check a request against its route's authorizer and API key. `Ok` carries what the
    /// function's event should say about the caller.
    pub async fn check(
        &self,
        route: &Route,
        m: &Match<'_>,
        req: &RequestParts<'_>,
        parts: &hyper::http::request::Parts,
        request_id: &str,
        now: &UtcTime,
    ) -> Result<Access, Refused> {
        let mut access = Access::default();
        if let Some(auth) = &route.auth {
            match &auth.authorizer {
                RouteAuthorizer::Function(f) => {
                    access.authorizer = Some(self.run_authorizer(route, auth, f, m, req, request_id, now).await?);
                }
                RouteAuthorizer::External { .. } => {
                    if !self.settings().development {
                        return Err(refuse(
                            StatusCode::UNAUTHORIZED,
                            "UnauthorizedException",
                            json!("Unauthorized"),
                        ));
                    }
                    let context = self.settings().external_context.clone().unwrap_or_default();
                    access.authorizer = Some(match route.api {
                        ApiKind::Rest => {
                            let mut c = context;
                            c.entry("principalId")
                                .or_insert_with(|| Value::String("sylph-local".into()));
                            Value::Object(c)
                        }
                        ApiKind::Http => json!({ "lambda": context }),
                    });
                }
                RouteAuthorizer::Iam => {
                    access.iam = Some(self.check_signature(route, req, parts)?);
                }
                RouteAuthorizer::Jwt(jwt) => {
                    access.authorizer = Some(self.check_jwt(route, jwt, req).await?);
                }
            }
        }
        if route.private {
            let given = parts.headers.get("x-api-key").and_then(|v| v.to_str().ok());
            let key = given.and_then(|g| {
                self.settings()
                    .api_keys
                    .iter()
                    .find(|(_, value)| constant_time_eq(value.as_bytes(), g.as_bytes()))
            });
            match key {
                Some((name, value)) => {
                    if let Some(plan) = self.plans.get(name) {
                        self.meter(name, plan)?;
                    }
                    access.api_key = Some(ApiKeyUsed {
                        id: name.clone(),
                        value: value.clone(),
                    })
                }
                None => return Err(refuse(StatusCode::FORBIDDEN, "ForbiddenException", json!("Forbidden"))),
            }
        }
        Ok(access)
    }

    /// Count one request of `key` against its usage plan: the throttle's token bucket, then
    /// the quota of the current period.
    fn meter(&self, key: &str, plan: &UsagePlan) -> Result<(), Refused> {
        let now = Instant::now();
        let period = plan
            .quota
            .as_ref()
            .map_or(0, |q| period_index(q.period, &UtcTime::now()));
        let mut usage = self.usage.lock().unwrap_or_else(|e| e.into_inner());
        let u = usage.entry(key.to_owned()).or_insert_with(|| Usage {
            tokens: plan.throttle.map_or(0.0, |(_, burst)| f64::from(burst)),
            refilled: now,
            period,
            used: 0,
        });
        if let Some((rate, burst)) = plan.throttle {
            let elapsed = now.duration_since(u.refilled).as_secs_f64();
            u.tokens = (u.tokens + rate * elapsed).min(f64::from(burst.max(1)));
            u.refilled = now;
            if u.tokens < 1.0 {
                return Err(refuse(
                    StatusCode::TOO_MANY_REQUESTS,
                    "TooManyRequestsException",
                    json!("Too Many Requests"),
                ));
            }
            u.tokens -= 1.0;
        }
        if let Some(quota) = &plan.quota {
            if u.period != period {
                u.period = period;
                u.used = 0;
            }
            if u.used >= quota.limit {
                return Err(refuse(
                    StatusCode::TOO_MANY_REQUESTS,
                    "LimitExceededException",
                    json!("Limit Exceeded"),
                ));
            }
            u.used += 1;
        }
        Ok(())
    }

    /// `arn:aws:execute-api:{region}:{account}:{api}/{stage}/{METHOD}/{path}`: what an
    /// authorizer's policy is evaluated against.
    fn method_arn(&self, route: &Route, req: &RequestParts<'_>) -> String {
        let (stage, path) = match route.api {
            ApiKind::Rest => {
                let path = req
                    .path
                    .strip_prefix('/')
                    .and_then(|p| p.strip_prefix(self.stage.as_str()))
                    .filter(|p| p.is_empty() || p.starts_with('/'))
                    .unwrap_or(req.path);
                (self.stage.as_str(), if path.is_empty() { "/" } else { path })
            }
            ApiKind::Http => ("$default", req.path),
        };
        format!(
            "arn:aws:execute-api:{}:{LOCAL_ACCOUNT_ID}:{}/{stage}/{}{path}",
            self.region,
            apigw::API_ID,
            req.method
        )
    }

    #[allow(clippy::too_many_arguments)]
    async fn run_authorizer(
        &self,
        route: &Route,
        auth: &RouteAuth,
        f: &FunctionAuthorizer,
        m: &Match<'_>,
        req: &RequestParts<'_>,
        request_id: &str,
        now: &UtcTime,
    ) -> Result<Value, Refused> {
        let unauthorized = || refuse(StatusCode::UNAUTHORIZED, "UnauthorizedException", json!("Unauthorized"));
        // Identity sources first: a request missing one is refused before the authorizer runs.
        let mut identity = Vec::with_capacity(f.identity_sources.len());
        for source in &f.identity_sources {
            match identity_value(source, req, request_id, &self.stage) {
                Some(v) if !v.is_empty() => identity.push(v),
                _ => return Err(unauthorized()),
            }
        }
        if let (Some(expr), Some(token)) = (&auth.validation, identity.first()) {
            if !expr.is_match(token) {
                return Err(unauthorized());
            }
        }
        let method_arn = self.method_arn(route, req);
        // Only an authorizer that caches needs the key.
        let cache_key = (f.ttl_seconds > 0).then(|| (auth.cache_scope.clone(), identity.join("\u{0}")));
        let cached = cache_key.as_ref().and_then(|key| {
            let cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
            cache
                .get(key)
                .filter(|(expires, _)| *expires > Instant::now())
                .map(|(_, o)| o.clone())
        });
        let started = Instant::now();
        let outcome = match cached {
            Some(o) => o,
            None => {
                let event = self.authorizer_event(route, f, m, req, request_id, now, &method_arn, &identity);
                let outcome = Arc::new(self.invoke_authorizer(route.api, f, event).await?);
                if let Some(key) = cache_key {
                    self.remember(key, Duration::from_secs(u64::from(f.ttl_seconds)), outcome.clone());
                }
                outcome
            }
        };
        let latency = started.elapsed().as_millis() as u64;
        decide(route.api, f, &outcome, &method_arn, latency)
    }

    /// The `$connect` authorizer of a WebSocket API, a REQUEST authorizer: `event` is the
    /// `$connect` event, to which the authorizer's `type` and `methodArn` are added. `Ok` is
    /// the `requestContext.authorizer` of the connection's events.
    pub async fn check_websocket_connect(
        &self,
        auth: &RouteAuth,
        parts: &hyper::http::request::Parts,
        stage: &str,
        mut event: Value,
    ) -> Result<Value, Refused> {
        let f = match &auth.authorizer {
            RouteAuthorizer::Function(f) => f,
            _ if !self.settings().development => {
                return Err(refuse(
                    StatusCode::UNAUTHORIZED,
                    "UnauthorizedException",
                    json!("Unauthorized"),
                ));
            }
            _ => {
                let mut context = self.settings().external_context.clone().unwrap_or_default();
                context
                    .entry("principalId")
                    .or_insert_with(|| Value::String("sylph-local".into()));
                return Ok(Value::Object(context));
            }
        };
        let req = RequestParts {
            method: parts.method.as_str(),
            path: parts.uri.path(),
            query: parts.uri.query(),
            headers: &parts.headers,
            body: &[],
            source_ip: "",
            protocol: "HTTP/1.1",
        };
        for source in &f.identity_sources {
            if identity_value(source, &req, "", stage).is_none_or(|v| v.is_empty()) {
                return Err(refuse(
                    StatusCode::UNAUTHORIZED,
                    "UnauthorizedException",
                    json!("Unauthorized"),
                ));
            }
        }
        let method_arn = format!(
            "arn:aws:execute-api:{}:{LOCAL_ACCOUNT_ID}:{}/{stage}/$connect",
            self.region,
            apigw::API_ID
        );
        event["type"] = json!("REQUEST");
        event["methodArn"] = json!(method_arn);
        let started = Instant::now();
        let outcome = self
            .invoke_authorizer(ApiKind::Rest, f, serde_json::to_vec(&event).unwrap_or_default())
            .await?;
        decide(
            ApiKind::Rest,
            f,
            &outcome,
            &method_arn,
            started.elapsed().as_millis() as u64,
        )
    }
}

/// What an authorizer's answer means for one request: the `requestContext.authorizer` to
/// hand over, or API Gateway's refusal.
fn decide(
    api: ApiKind,
    f: &FunctionAuthorizer,
    outcome: &Outcome,
    method_arn: &str,
    latency: u64,
) -> Result<Value, Refused> {
    {
        let forbidden = |message: &str| match api {
            ApiKind::Rest => refuse(StatusCode::FORBIDDEN, "AccessDeniedException", json!(message)),
            ApiKind::Http => refuse(StatusCode::FORBIDDEN, "ForbiddenException", json!("Forbidden")),
        };
        match outcome {
            Outcome::Simple { authorized: false, .. } => Err(forbidden("Forbidden")),
            Outcome::Simple { context, .. } => Ok(json!({ "lambda": context })),
            Outcome::Policy {
                principal_id,
                policy,
                context,
            } => {
                match sylph_iam::policy::evaluate(policy, "execute-api:Invoke", method_arn) {
                    sylph_iam::Decision::Allowed => {}
                    sylph_iam::Decision::ExplicitDeny(_) => {
                        return Err(forbidden(
                            "User is not authorized to access this resource with an explicit deny",
                        ))
                    }
                    sylph_iam::Decision::ImplicitDeny => {
                        return Err(forbidden("User is not authorized to access this resource"))
                    }
                }
                Ok(match (api, f.payload_v2) {
                    // REST hands the context over with every value as a string.
                    (ApiKind::Rest, _) => {
                        let mut out: Map<String, Value> = context
                            .iter()
                            .map(|(k, v)| {
                                let text = match v {
                                    Value::String(s) => s.clone(),
                                    other => other.to_string(),
                                };
                                (k.clone(), Value::String(text))
                            })
                            .collect();
                        out.insert("principalId".into(), Value::String(principal_id.clone()));
                        out.insert("integrationLatency".into(), json!(latency));
                        Value::Object(out)
                    }
                    (ApiKind::Http, true) => json!({ "lambda": context }),
                    (ApiKind::Http, false) => {
                        let mut lambda = context.clone();
                        lambda.insert("principalId".into(), Value::String(principal_id.clone()));
                        json!({ "lambda": lambda })
                    }
                })
            }
        }
    }
}

impl RouteGuard {
    fn remember(&self, key: CacheKey, ttl: Duration, outcome: Arc<Outcome>) {
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if cache.len() >= MAX_CACHED_RESULTS {
            let now = Instant::now();
            cache.retain(|_, (expires, _)| *expires > now);
            if cache.len() >= MAX_CACHED_RESULTS {
                cache.clear();
            }
        }
        cache.insert(key, (Instant::now() + ttl, outcome));
    }

    /// The event an authorizer function receives.
    #[allow(clippy::too_many_arguments)]
    fn authorizer_event(
        &self,
        route: &Route,
        f: &FunctionAuthorizer,
        m: &Match<'_>,
        req: &RequestParts<'_>,
        request_id: &str,
        now: &UtcTime,
        method_arn: &str,
        identity: &[String],
    ) -> Vec<u8> {
        let none = Access::default();
        let event = match (route.api, f.request, f.payload_v2) {
            (ApiKind::Rest, false, _) => json!({
                "type": "TOKEN",
                "authorizationToken": identity.first().cloned().unwrap_or_default(),
                "methodArn": method_arn,
            }),
            (ApiKind::Http, _, true) => {
                let mut event = apigw::http_api_event_value(req, m, request_id, now, &none);
                if let Some(obj) = event.as_object_mut() {
                    obj.remove("body");
                    obj.remove("isBase64Encoded");
                    obj.insert("type".into(), json!("REQUEST"));
                    obj.insert("routeArn".into(), json!(method_arn));
                    obj.insert("identitySource".into(), json!(identity));
                }
                event
            }
            (api, _, _) => {
                let mut event = apigw::rest_event_value(req, m, &self.stage, request_id, now, &none);
                if let Some(obj) = event.as_object_mut() {
                    obj.remove("body");
                    obj.remove("isBase64Encoded");
                    obj.insert("type".into(), json!("REQUEST"));
                    obj.insert("methodArn".into(), json!(method_arn));
                    if api == ApiKind::Http {
                        obj.insert("version".into(), json!("1.0"));
                        obj.insert("identitySource".into(), json!(identity.join(",")));
                    }
                }
                event
            }
        };
        serde_json::to_vec(&event).unwrap_or_default()
    }

    async fn invoke_authorizer(
        &self,
        api: ApiKind,
        f: &FunctionAuthorizer,
        event: Vec<u8>,
    ) -> Result<Outcome, Refused> {
        let misconfigured = |why: &str| {
            tracing::warn!(authorizer = %f.name, "authorizer {} failed: {why}", f.function);
            match api {
                ApiKind::Rest => refuse(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "AuthorizerConfigurationException",
                    Value::Null,
                ),
                ApiKind::Http => refuse(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "InternalServerErrorException",
                    json!("Internal Server Error"),
                ),
            }
        };
        let result = self
            .invoker
            .invoke(
                &f.function,
                InvokeRequest {
                    payload: Bytes::from(event),
                    ..Default::default()
                },
            )
            .await;
        let payload = match result {
            Ok(r) => match r.result {
                InvokeResult::Success(p) => p,
                InvokeResult::Error { body, .. } => {
                    // An authorizer refuses a token by failing with the message "Unauthorized".
                    let message = serde_json::from_slice::<Value>(&body)
                        .ok()
                        .and_then(|v| v.get("errorMessage").and_then(Value::as_str).map(str::to_owned));
                    if message.as_deref() == Some("Unauthorized") {
                        return Err(refuse(
                            StatusCode::UNAUTHORIZED,
                            "UnauthorizedException",
                            json!("Unauthorized"),
                        ));
                    }
                    return Err(misconfigured(&format!(
                        "it failed: {}",
                        message.unwrap_or_else(|| String::from_utf8_lossy(&body).into_owned())
                    )));
                }
            },
            Err(e) => return Err(misconfigured(&e.to_string())),
        };
        let answer: Value = serde_json::from_slice(&payload).map_err(|_| misconfigured("its answer is not JSON"))?;
        let context = match answer.get("context") {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(c)) => {
                // API Gateway takes only strings, numbers and booleans in a REST context.
                if api == ApiKind::Rest && c.values().any(|v| v.is_object() || v.is_array()) {
                    return Err(misconfigured(
                        "its context holds an object or a list; only strings, numbers and booleans are allowed",
                    ));
                }
                c.clone()
            }
            Some(_) => return Err(misconfigured("its `context` is not an object")),
        };
        if f.simple_responses {
            return match answer.get("isAuthorized") {
                Some(Value::Bool(authorized)) => Ok(Outcome::Simple {
                    authorized: *authorized,
                    context,
                }),
                _ => Err(misconfigured("a simple response needs `isAuthorized`: true or false")),
            };
        }
        let principal_id = match answer.get("principalId") {
            Some(Value::String(p)) => p.clone(),
            Some(Value::Number(n)) => n.to_string(),
            _ if api == ApiKind::Http => String::new(),
            _ => return Err(misconfigured("its answer has no `principalId`")),
        };
        let policy = answer
            .get("policyDocument")
            .ok_or_else(|| misconfigured("its answer has no `policyDocument`"))
            .and_then(|doc| policy_of(doc).map_err(|why| misconfigured(&why)))?;
        Ok(Outcome::Policy {
            principal_id,
            policy,
            context,
        })
    }

    /// `aws_iam`: the request must be signed with SigV4. A key Sylph issued (a function's)
    /// must verify and its role must allow `execute-api:Invoke`; any other key is the
    /// developer's own, which Sylph cannot check (as the table and Invoke APIs treat it).
    fn check_signature(
        &self,
        route: &Route,
        req: &RequestParts<'_>,
        parts: &hyper::http::request::Parts,
    ) -> Result<IamCaller, Refused> {
        let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok());
        let Some(authorization) = header("authorization") else {
            return Err(refuse(
                StatusCode::FORBIDDEN,
                "MissingAuthenticationTokenException",
                json!("Missing Authentication Token"),
            ));
        };
        let bad_signature = || {
            refuse(
                StatusCode::FORBIDDEN,
                "InvalidSignatureException",
                json!("The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details."),
            )
        };
        let parsed = sylph_iam::sigv4::parse_authorization(authorization).map_err(|_| {
            refuse(
                StatusCode::FORBIDDEN,
                "IncompleteSignatureException",
                json!("The Authorization header is not a valid SigV4 signature."),
            )
        })?;
        let access_key = parsed.access_key_id.to_owned();
        let unknown_signer = || {
            refuse(
                StatusCode::FORBIDDEN,
                "UnrecognizedClientException",
                json!("The security token included in the request is invalid."),
            )
        };
        let Some(iam) = &self.iam else {
            return if self.settings().development {
                Ok(developer(access_key, self.settings().cognito_identity_id.clone()))
            } else {
                Err(unknown_signer())
            };
        };
        let headers: Vec<(&str, &[u8])> = parts.headers.iter().map(|(k, v)| (k.as_str(), v.as_bytes())).collect();
        // The signature covers the URI the client sent, before any front door rewrote it.
        let uri = parts
            .extensions
            .get::<crate::OriginalUri>()
            .map_or(&parts.uri, |o| &o.0);
        let call = sylph_iam::CallParts {
            signed: sylph_iam::SignedRequest {
                method: parts.method.as_str(),
                path: uri.path(),
                query: uri.query(),
                headers: &headers,
                body: req.body,
            },
            authorization: Some(authorization),
            security_token: header("x-amz-security-token"),
        };
        match iam.authenticate(sylph_iam::Caller::Public, &call) {
            Ok(Some(principal)) => {
                let arn = self.method_arn(route, req);
                if let Err(denied) = iam.authorize(&principal, &[("execute-api:Invoke".to_owned(), arn)]) {
                    return Err(refuse(
                        StatusCode::FORBIDDEN,
                        "AccessDeniedException",
                        json!(denied.message),
                    ));
                }
                Ok(IamCaller {
                    caller: format!("{access_key}:{}", principal.function),
                    access_key,
                    user_arn: principal.arn(),
                    cognito_identity_id: None,
                })
            }
            Ok(None) if self.settings().development => {
                Ok(developer(access_key, self.settings().cognito_identity_id.clone()))
            }
            Ok(None) | Err(sylph_iam::AuthError::UnrecognizedClient) => Err(unknown_signer()),
            Err(_) => Err(bad_signature()),
        }
    }
}

/// Which quota period `now` falls in (UTC calendar days, weeks from Monday, months).
fn period_index(period: QuotaPeriod, now: &UtcTime) -> i64 {
    let days = (now.epoch_millis / 86_400_000) as i64;
    match period {
        QuotaPeriod::Day => days,
        // 1970-01-01 was a Thursday: three days on, weeks start on Mondays.
        QuotaPeriod::Week => (days + 3) / 7,
        QuotaPeriod::Month => now.year * 12 + i64::from(now.month),
    }
}

/// A signer Sylph did not issue: the developer's own key.
fn developer(access_key: String, cognito_identity_id: Option<String>) -> IamCaller {
    IamCaller {
        caller: access_key.clone(),
        user_arn: format!("arn:aws:iam::{LOCAL_ACCOUNT_ID}:user/{access_key}"),
        access_key,
        cognito_identity_id,
    }
}

/// One identity source's value in this request.
fn identity_value(source: &IdentitySource, req: &RequestParts<'_>, request_id: &str, stage: &str) -> Option<String> {
    match source {
        IdentitySource::Header(name) => {
            let values: Vec<&str> = req
                .headers
                .get_all(name.as_str())
                .iter()
                .filter_map(|v| v.to_str().ok())
                .collect();
            (!values.is_empty()).then(|| values.join(","))
        }
        IdentitySource::Query(name) => req.query.and_then(|q| {
            q.split('&').find_map(|pair| {
                let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                (crate::routes::decode(&k.replace('+', " ")) == *name)
                    .then(|| crate::routes::decode(&v.replace('+', " ")))
            })
        }),
        IdentitySource::Context(name) => match name.as_str() {
            "requestId" => Some(request_id.to_owned()),
            "stage" => Some(stage.to_owned()),
            "httpMethod" => Some(req.method.to_owned()),
            "identity.sourceIp" | "sourceIp" => Some(req.source_ip.to_owned()),
            "identity.userAgent" => req
                .headers
                .get("user-agent")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
            _ => None,
        },
        // Sylph has no stage variables.
        IdentitySource::StageVariable(_) => None,
    }
}

/// An authorizer's `policyDocument` as statements the IAM evaluator reads.
fn policy_of(doc: &Value) -> Result<Role, String> {
    let statements = match doc.get("Statement") {
        Some(Value::Array(list)) => list.iter().collect::<Vec<_>>(),
        Some(one @ Value::Object(_)) => vec![one],
        _ => return Err("its policyDocument has no `Statement`".into()),
    };
    let strings = |v: &Value| -> Option<Vec<String>> {
        match v {
            Value::String(s) => Some(vec![s.clone()]),
            Value::Array(items) => items.iter().map(|i| i.as_str().map(str::to_owned)).collect(),
            _ => None,
        }
    };
    let mut out = Vec::with_capacity(statements.len());
    for (i, st) in statements.into_iter().enumerate() {
        let allow = match st.get("Effect").and_then(Value::as_str) {
            Some(e) if e.eq_ignore_ascii_case("allow") => true,
            Some(e) if e.eq_ignore_ascii_case("deny") => false,
            _ => return Err(format!("statement {i} of its policy has no Effect Allow or Deny")),
        };
        let (actions, not_action) = match (st.get("Action"), st.get("NotAction")) {
            (Some(a), None) => (strings(a), false),
            (None, Some(a)) => (strings(a), true),
            _ => (None, false),
        };
        let (resources, not_resource) = match (st.get("Resource"), st.get("NotResource")) {
            (Some(r), None) => (strings(r), false),
            (None, Some(r)) => (strings(r), true),
            _ => (None, false),
        };
        let (Some(actions), Some(resources)) = (actions, resources) else {
            return Err(format!(
                "statement {i} of its policy needs one Action and one Resource (strings or lists)"
            ));
        };
        out.push(IamStatement {
            allow,
            actions,
            not_action,
            resources,
            not_resource,
            origin: format!("the authorizer's statement {i}"),
        });
    }
    Ok(Role {
        name: "authorizer policy".into(),
        statements: out,
    })
}

/// Compare secrets without stopping at the first difference.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// API Gateway's refusal: `{"message": …}` with the error type in `x-amzn-ErrorType`.
fn refuse(status: StatusCode, error_type: &'static str, message: Value) -> Refused {
    let body = json!({ "message": message }).to_string();
    let mut res = Response::new(Full::new(Bytes::from(body)));
    *res.status_mut() = status;
    let h = res.headers_mut();
    h.insert("content-type", HeaderValue::from_static("application/json"));
    h.insert("x-amzn-errortype", HeaderValue::from_static(error_type));
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_policy_document_becomes_statements_and_deny_wins() {
        let doc = json!({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "execute-api:Invoke", "Resource": "arn:aws:execute-api:*:*:*/dev/GET/*"},
            {"Effect": "Deny", "Action": ["execute-api:*"], "Resource": ["arn:aws:execute-api:*:*:*/dev/GET/admin*"]},
        ]});
        let role = policy_of(&doc).unwrap();
        let arn = |p: &str| format!("arn:aws:execute-api:us-east-1:000000000000:sylphlocal/dev/GET{p}");
        assert_eq!(
            sylph_iam::policy::evaluate(&role, "execute-api:Invoke", &arn("/todos")),
            sylph_iam::Decision::Allowed
        );
        assert!(matches!(
            sylph_iam::policy::evaluate(&role, "execute-api:Invoke", &arn("/admin/users")),
            sylph_iam::Decision::ExplicitDeny(_)
        ));
        assert_eq!(
            sylph_iam::policy::evaluate(
                &role,
                "execute-api:Invoke",
                "arn:aws:execute-api:us-east-1:000000000000:sylphlocal/dev/POST/todos"
            ),
            sylph_iam::Decision::ImplicitDeny
        );
    }

    #[test]
    fn malformed_policies_are_refused_not_allowed() {
        for doc in [
            json!({}),
            json!({"Statement": [{"Action": "*", "Resource": "*"}]}),
            json!({"Statement": [{"Effect": "Allow", "Resource": "*"}]}),
            json!({"Statement": [{"Effect": "Allow", "Action": 5, "Resource": "*"}]}),
        ] {
            assert!(policy_of(&doc).is_err(), "{doc}");
        }
    }

    #[test]
    fn keys_compare_whole() {
        assert!(constant_time_eq(b"abcdef", b"abcdef"));
        assert!(!constant_time_eq(b"abcdef", b"abcdeg"));
        assert!(!constant_time_eq(b"abc", b"abcdef"));
    }
}
