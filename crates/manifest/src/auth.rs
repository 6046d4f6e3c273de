//! Who may call an HTTP route, as `serverless.yml` says it: Lambda authorizers (`authorizer:` on
//! an `http` event, `provider.httpApi.authorizers` for `httpApi` events), `aws_iam`, and the API
//! keys that `private: true` routes require.
//!
//! An authorizer that is a function of this service becomes a [`FunctionAuthorizer`] that the
//! gateway runs as API Gateway would. One defined elsewhere (a Lambda ARN of another service, a
//! Cognito user pool, a shared `authorizerId`, a `jwt` issuer) cannot run here: it becomes
//! [`RouteAuthorizer::External`] and the caller prints a notice naming it.

use sylph_model::{
    ApiKey, FunctionAuthorizer, IdentitySource, JwtAuthorizer, Quota, QuotaPeriod, RouteAuthorizer, UsagePlan,
};

use crate::build::{field, logical_id, At};
use crate::error::Problem;
use crate::yaml::{Node, Value};

/// What an event's `authorizer` may refer to.
pub(crate) struct AuthContext {
    /// (key, deployed name) of every function of the service.
    pub functions: Vec<(String, String)>,
    /// `provider.httpApi.authorizers`, by name.
    pub http_api: Vec<(String, RouteAuthorizer)>,
}

/// API Gateway's (and the Framework's) default cache time for REST Lambda authorizers.
const REST_DEFAULT_TTL: u32 = 300;
/// The longest cache time API Gateway accepts.
const MAX_TTL: i64 = 3600;
const DEFAULT_TOKEN_SOURCE: &str = "method.request.header.Authorization";

impl AuthContext {
    fn function(&self, at: At<'_, '_>, key: &str) -> Result<String, Problem> {
        match self.functions.iter().find(|(k, _)| k == key) {
            Some((_, name)) => Ok(name.clone()),
            None => {
                let known: Vec<&str> = self.functions.iter().map(|(k, _)| k.as_str()).collect();
                Err(at
                    .problem(format!("authorizer function `{key}` is not a function of this service"))
                    .help(format!(
                        "name one of: {}; or give an authorizer elsewhere by `arn:`",
                        known.join(", ")
                    )))
            }
        }
    }

    /// The deployed name of this service's function an `arn` names (a Lambda ARN string, or
    /// `Fn::GetAtt: [XLambdaFunction, Arn]`), if it names one.
    fn function_of_arn(&self, node: &Node) -> Option<String> {
        match &node.value {
            Value::Str(arn) => {
                let name = arn.strip_prefix("arn:")?.split(':').nth(5)?;
                self.functions.iter().find(|(_, n)| n == name).map(|(_, n)| n.clone())
            }
            Value::Map(_) => {
                let json = node.to_json();
                let target = json.get("Fn::GetAtt")?.get(0)?.as_str()?.to_owned();
                self.functions
                    .iter()
                    .find(|(k, _)| logical_id(k) == target)
                    .map(|(_, n)| n.clone())
            }
            _ => None,
        }
    }
}

fn describe(node: &Node) -> String {
    match &node.value {
        Value::Str(s) => s.clone(),
        _ => serde_json::to_string(&node.to_json()).unwrap_or_default(),
    }
}

/// `authorizer:` on an `http` (REST) event.
pub(crate) fn rest_authorizer(at: At<'_, '_>, ctx: &AuthContext) -> Result<RouteAuthorizer, Problem> {
    let mut auth = FunctionAuthorizer {
        name: String::new(),
        function: String::new(),
        request: false,
        identity_sources: Vec::new(),
        validation_expression: None,
        ttl_seconds: REST_DEFAULT_TTL,
        payload_v2: false,
        simple_responses: false,
    };
    let sub = |key: &str| field(at.node, key).map(|n| (n, format!("{}.{key}", at.path)));
    match &at.node.value {
        Value::Str(s) if s == "aws_iam" => return Ok(RouteAuthorizer::Iam),
        Value::Str(s) if s.starts_with("arn:") => {
            return Ok(match ctx.function_of_arn(at.node) {
                Some(function) => {
                    auth.name = function.clone();
                    auth.function = function;
                    auth.identity_sources = rest_identity_sources(at, DEFAULT_TOKEN_SOURCE)?;
                    RouteAuthorizer::Function(auth)
                }
                None => RouteAuthorizer::External { reference: s.clone() },
            })
        }
        Value::Str(key) => {
            auth.function = ctx.function(at, key)?;
            auth.name = key.clone();
            auth.identity_sources = rest_identity_sources(at, DEFAULT_TOKEN_SOURCE)?;
            return Ok(RouteAuthorizer::Function(auth));
        }
        Value::Map(_) => {}
        _ => return Err(at.expected("a function name, an ARN, `aws_iam` or a mapping")),
    }
    let kind = match sub("type") {
        Some((n, path)) => At { node: n, path: &path }.str()?.to_ascii_lowercase(),
        None => "token".to_owned(),
    };
    match kind.as_str() {
        "aws_iam" => return Ok(RouteAuthorizer::Iam),
        "token" | "request" => auth.request = kind == "request",
        "cognito_user_pools" => {
            // `arn: arn:aws:cognito-idp:REGION:ACCOUNT:userpool/POOL_ID` names the issuer.
            let pool = sub("arn").and_then(|(n, _)| match &n.value {
                Value::Str(arn) => {
                    let mut parts = arn.split(':');
                    let region = parts.nth(3)?;
                    let pool = parts.nth(1)?.strip_prefix("userpool/")?;
                    Some((region.to_owned(), pool.to_owned()))
                }
                _ => None,
            });
            let Some((region, pool)) = pool else {
                let reference = sub("arn")
                    .or_else(|| sub("authorizerId"))
                    .map(|(n, _)| describe(n))
                    .unwrap_or_else(|| "a Cognito user pool".into());
                return Ok(RouteAuthorizer::External { reference });
            };
            let header = match sub("identitySource") {
                Some((n, path)) => match rest_identity_sources(At { node: n, path: &path }, "")?.as_slice() {
                    [IdentitySource::Header(h)] => h.clone(),
                    _ => {
                        return Err(At { node: n, path: &path }
                            .problem("a Cognito authorizer reads its token from one header")
                            .help("write `identitySource: method.request.header.Authorization`"))
                    }
                },
                None => "authorization".to_owned(),
            };
            let scopes = match sub("scopes") {
                Some((n, path)) => At { node: n, path: &path }.strings()?,
                None => Vec::new(),
            };
            return Ok(RouteAuthorizer::Jwt(JwtAuthorizer {
                name: pool.clone(),
                issuer: format!("https://cognito-idp.{region}.amazonaws.com/{pool}"),
                audience: Vec::new(),
                header,
                scopes,
                rest: true,
            }));
        }
        "custom" => {}
        other => {
            let (n, path) = sub("type").expect("type was read above");
            return Err(At { node: n, path: &path }
                .problem(format!("authorizer type `{other}` is not known"))
                .help("use token, request, aws_iam or COGNITO_USER_POOLS"));
        }
    }
    if let Some((n, _)) = sub("authorizerId") {
        return Ok(RouteAuthorizer::External { reference: describe(n) });
    }
    match (sub("arn"), sub("name")) {
        (Some((n, _)), _) => match ctx.function_of_arn(n) {
            Some(function) => {
                auth.name = function.clone();
                auth.function = function;
            }
            None => return Ok(RouteAuthorizer::External { reference: describe(n) }),
        },
        (None, Some((n, path))) => {
            let key = At { node: n, path: &path }.str()?;
            auth.function = ctx.function(At { node: n, path: &path }, key)?;
            auth.name = key.to_owned();
        }
        (None, None) => {
            return Err(at
                .problem("the authorizer names no function")
                .help("add `name: myAuthorizerFunction` (a function of this service) or `arn:`"))
        }
    }
    if let Some((n, path)) = sub("resultTtlInSeconds") {
        auth.ttl_seconds = At { node: n, path: &path }.number(0, MAX_TTL)? as u32;
    }
    auth.identity_sources = match sub("identitySource") {
        Some((n, path)) => rest_identity_sources(At { node: n, path: &path }, "")?,
        None if auth.request && auth.ttl_seconds == 0 => Vec::new(),
        None => rest_identity_sources(at, DEFAULT_TOKEN_SOURCE)?,
    };
    if auth.request && auth.ttl_seconds > 0 && auth.identity_sources.is_empty() {
        return Err(at
            .problem("a REQUEST authorizer with caching needs an `identitySource`")
            .help("add `identitySource: method.request.header.Authorization`, or `resultTtlInSeconds: 0`"));
    }
    if !auth.request && auth.identity_sources.len() != 1 {
        return Err(at
            .problem("a TOKEN authorizer takes exactly one header as its `identitySource`")
            .help("write `identitySource: method.request.header.Authorization`"));
    }
    if let Some((n, path)) = sub("identityValidationExpression") {
        let at = At { node: n, path: &path };
        let expression = at.str()?;
        if let Err(e) = regex_lite::Regex::new(expression) {
            return Err(at.problem(format!("`{expression}` is not a valid regular expression: {e}")));
        }
        auth.validation_expression = Some(expression.to_owned());
    }
    Ok(RouteAuthorizer::Function(auth))
}

/// `identitySource` of a REST authorizer: a comma-separated list of
/// `method.request.header.X`, `method.request.querystring.X`, `context.X`, `stageVariables.X`.
/// `default` applies when `at` is the authorizer itself rather than its `identitySource`.
fn rest_identity_sources(at: At<'_, '_>, default: &str) -> Result<Vec<IdentitySource>, Problem> {
    let text = if default.is_empty() { at.str()? } else { default };
    identity_sources(at, &[text.to_owned()], &REST_SOURCES)
}

/// How each API flavour spells where an identity comes from: a header, a query string
/// parameter, a context variable, a stage variable (WebSockets: the first two only).
const REST_SOURCES: [&str; 4] = [
    "method.request.header.",
    "method.request.querystring.",
    "context.",
    "stageVariables.",
];
const HTTP_SOURCES: [&str; 4] = [
    "$request.header.",
    "$request.querystring.",
    "$context.",
    "$stageVariables.",
];
const WEBSOCKET_SOURCES: [&str; 2] = ["route.request.header.", "route.request.querystring."];

/// Comma-separated identity sources in `texts`, spelled with `prefixes`.
fn identity_sources(at: At<'_, '_>, texts: &[String], prefixes: &[&str]) -> Result<Vec<IdentitySource>, Problem> {
    let mut out = Vec::new();
    for part in texts
        .iter()
        .flat_map(|t| t.split(','))
        .map(str::trim)
        .filter(|p| !p.is_empty())
    {
        let source = prefixes.iter().enumerate().find_map(|(kind, prefix)| {
            let name = part.strip_prefix(prefix)?;
            Some(match kind {
                0 => IdentitySource::Header(name.to_ascii_lowercase()),
                1 => IdentitySource::Query(name.to_owned()),
                2 => IdentitySource::Context(name.to_owned()),
                _ => IdentitySource::StageVariable(name.to_owned()),
            })
        });
        match source {
            Some(s) => out.push(s),
            None => {
                let spelled: Vec<String> = prefixes.iter().map(|p| format!("{p}NAME")).collect();
                return Err(at
                    .problem(format!("`{part}` is not an identity source"))
                    .help(format!("use {}", spelled.join(", "))));
            }
        }
    }
    Ok(out)
}

/// `identitySource` of an HTTP API authorizer: one or a list of `$request.header.X`,
/// `$request.querystring.X`, `$context.X`, `$stageVariables.X`.
fn http_identity_sources(at: At<'_, '_>) -> Result<Vec<IdentitySource>, Problem> {
    identity_sources(at, &at.strings()?, &HTTP_SOURCES)
}

/// `provider.httpApi.authorizers`: named authorizers that `httpApi` events refer to.
pub(crate) fn http_api_authorizers(
    provider: &Node,
    functions: &[(String, String)],
) -> Result<Vec<(String, RouteAuthorizer)>, Problem> {
    let Some(node) = field(provider, "httpApi").and_then(|h| field(h, "authorizers")) else {
        return Ok(Vec::new());
    };
    let ctx = AuthContext {
        functions: functions.to_vec(),
        http_api: Vec::new(),
    };
    let mut out = Vec::new();
    for (name, def) in (At {
        node,
        path: "provider.httpApi.authorizers",
    })
    .entries()?
    {
        let path = format!("provider.httpApi.authorizers.{name}");
        let at = At { node: def, path: &path };
        at.entries()?;
        let sub = |key: &str| field(def, key).map(|n| (n, format!("{path}.{key}")));
        let kind = match sub("type") {
            Some((n, p)) => At { node: n, path: &p }.str()?.to_ascii_lowercase(),
            None if sub("functionName").is_some() || sub("functionArn").is_some() => "request".into(),
            None => "jwt".into(),
        };
        let authorizer = match kind.as_str() {
            "jwt" => {
                let issuer = match sub("issuerUrl") {
                    Some((n, p)) => At { node: n, path: &p }.str()?.trim_end_matches('/').to_owned(),
                    None => {
                        return Err(at
                            .problem(format!("jwt authorizer `{name}` has no `issuerUrl`"))
                            .help("add `issuerUrl: https://cognito-idp.REGION.amazonaws.com/POOL_ID` (or your identity provider's issuer)"))
                    }
                };
                let audience = match sub("audience") {
                    Some((n, p)) => At { node: n, path: &p }.strings()?,
                    None => {
                        return Err(at
                            .problem(format!("jwt authorizer `{name}` has no `audience`"))
                            .help("add `audience: [CLIENT_ID]`: API Gateway requires one"))
                    }
                };
                let header = match sub("identitySource") {
                    Some((n, p)) => match http_identity_sources(At { node: n, path: &p })?.as_slice() {
                        [IdentitySource::Header(h)] => h.clone(),
                        _ => {
                            return Err(At { node: n, path: &p }
                                .problem("a jwt authorizer reads its token from one header")
                                .help("write `identitySource: $request.header.Authorization`"))
                        }
                    },
                    None => "authorization".to_owned(),
                };
                RouteAuthorizer::Jwt(JwtAuthorizer {
                    name: name.clone(),
                    issuer,
                    audience,
                    header,
                    scopes: Vec::new(),
                    rest: false,
                })
            }
            "request" => {
                let function = match (sub("functionName"), sub("functionArn")) {
                    (Some((n, p)), _) => {
                        let key_at = At { node: n, path: &p };
                        Some(ctx.function(key_at, key_at.str()?)?)
                    }
                    (None, Some((n, _))) => ctx.function_of_arn(n),
                    (None, None) => {
                        return Err(at
                            .problem(format!("request authorizer `{name}` names no function"))
                            .help("add `functionName: myAuthorizerFunction` or `functionArn:`"))
                    }
                };
                match function {
                    None => RouteAuthorizer::External {
                        reference: sub("functionArn").map(|(n, _)| describe(n)).unwrap_or_default(),
                    },
                    Some(function) => {
                        let ttl_seconds = match sub("resultTtlInSeconds") {
                            Some((n, p)) => At { node: n, path: &p }.number(0, MAX_TTL)? as u32,
                            None => 0,
                        };
                        let payload_v2 = match sub("payloadVersion") {
                            None => true,
                            Some((n, p)) => {
                                let v_at = At { node: n, path: &p };
                                match &n.value {
                                    Value::Str(s) if s == "2.0" => true,
                                    Value::Str(s) if s == "1.0" => false,
                                    Value::Float(f) if *f == 2.0 => true,
                                    Value::Float(f) if *f == 1.0 => false,
                                    _ => return Err(v_at.expected("'1.0' or '2.0'")),
                                }
                            }
                        };
                        let simple_responses = match sub("enableSimpleResponses") {
                            Some((n, p)) => At { node: n, path: &p }.bool()?,
                            None => false,
                        };
                        if simple_responses && !payload_v2 {
                            return Err(at
                                .problem("enableSimpleResponses needs payloadVersion '2.0'")
                                .help("remove `payloadVersion: '1.0'` or `enableSimpleResponses`"));
                        }
                        let identity_sources = match sub("identitySource") {
                            Some((n, p)) => http_identity_sources(At { node: n, path: &p })?,
                            None => Vec::new(),
                        };
                        if ttl_seconds > 0 && identity_sources.is_empty() {
                            return Err(at
                                .problem(format!(
                                    "authorizer `{name}` caches results but has no `identitySource`"
                                ))
                                .help(
                                    "add `identitySource: $request.header.Authorization`, or `resultTtlInSeconds: 0`",
                                ));
                        }
                        RouteAuthorizer::Function(FunctionAuthorizer {
                            name: name.clone(),
                            function,
                            request: true,
                            identity_sources,
                            validation_expression: None,
                            ttl_seconds,
                            payload_v2,
                            simple_responses,
                        })
                    }
                }
            }
            other => {
                return Err(at
                    .problem(format!("authorizer type `{other}` is not known"))
                    .help("use `type: jwt` or `type: request`"))
            }
        };
        out.push((name.clone(), authorizer));
    }
    Ok(out)
}

/// `authorizer:` on an `httpApi` event: a name from `provider.httpApi.authorizers`,
/// `{ name, scopes }`, `{ type: aws_iam }` or `{ id }` (an authorizer made elsewhere).
pub(crate) fn http_api_route_authorizer(at: At<'_, '_>, ctx: &AuthContext) -> Result<RouteAuthorizer, Problem> {
    let name = match &at.node.value {
        Value::Str(s) if s == "aws_iam" => return Ok(RouteAuthorizer::Iam),
        Value::Str(s) => s.as_str(),
        Value::Map(_) => {
            if let Some(t) = field(at.node, "type") {
                let t_at = At {
                    node: t,
                    path: &format!("{}.type", at.path),
                };
                if t_at.str()?.eq_ignore_ascii_case("aws_iam") {
                    return Ok(RouteAuthorizer::Iam);
                }
            }
            if let Some(id) = field(at.node, "id") {
                return Ok(RouteAuthorizer::External {
                    reference: describe(id),
                });
            }
            match field(at.node, "name") {
                Some(n) => At {
                    node: n,
                    path: &format!("{}.name", at.path),
                }
                .str()?,
                None => {
                    return Err(at
                        .problem("the authorizer has no `name`")
                        .help("name one of provider.httpApi.authorizers, or write `type: aws_iam`"))
                }
            }
        }
        _ => return Err(at.expected("an authorizer name or a mapping")),
    };
    match ctx.http_api.iter().find(|(n, _)| n == name) {
        Some((_, RouteAuthorizer::Jwt(jwt))) => {
            let mut jwt = jwt.clone();
            if let Some(n) = field(at.node, "scopes").filter(|_| matches!(at.node.value, Value::Map(_))) {
                jwt.scopes = At {
                    node: n,
                    path: &format!("{}.scopes", at.path),
                }
                .strings()?;
            }
            Ok(RouteAuthorizer::Jwt(jwt))
        }
        Some((_, a)) => Ok(a.clone()),
        None => {
            let known: Vec<&str> = ctx.http_api.iter().map(|(n, _)| n.as_str()).collect();
            Err(at
                .problem(format!("authorizer `{name}` is not defined"))
                .help(if known.is_empty() {
                    "define it under provider.httpApi.authorizers".to_owned()
                } else {
                    format!(
                        "define it under provider.httpApi.authorizers (defined: {})",
                        known.join(", ")
                    )
                }))
        }
    }
}

/// `provider.apiGateway.apiKeys` (or the older `provider.apiKeys`): names, `{ name, value }`
/// mappings, or usage plans mapping to such lists.
pub(crate) fn api_keys(provider: &Node) -> Result<Vec<ApiKey>, Problem> {
    let (node, path) = match field(provider, "apiGateway").and_then(|g| field(g, "apiKeys")) {
        Some(n) => (n, "provider.apiGateway.apiKeys"),
        None => match field(provider, "apiKeys") {
            Some(n) => (n, "provider.apiKeys"),
            None => return Ok(Vec::new()),
        },
    };
    let mut out = Vec::new();
    collect_keys(At { node, path }, &mut out, None)?;
    Ok(out)
}

fn collect_keys(at: At<'_, '_>, out: &mut Vec<ApiKey>, plan: Option<&str>) -> Result<(), Problem> {
    for (i, item) in at.items()?.iter().enumerate() {
        let path = format!("{}[{i}]", at.path);
        let item_at = At {
            node: item,
            path: &path,
        };
        match &item.value {
            Value::Str(name) => out.push(ApiKey {
                name: name.clone(),
                value: None,
                plan: plan.map(str::to_owned),
            }),
            Value::Map(_) if field(item, "name").is_some() || field(item, "value").is_some() => {
                let name = match field(item, "name") {
                    Some(n) => At {
                        node: n,
                        path: &format!("{path}.name"),
                    }
                    .str()?
                    .to_owned(),
                    None => format!("key{}", out.len() + 1),
                };
                let value = match field(item, "value") {
                    Some(n) => {
                        let v_at = At {
                            node: n,
                            path: &format!("{path}.value"),
                        };
                        let v = v_at.str()?;
                        // API Gateway's own rule for imported key values.
                        if v.len() < 20 {
                            return Err(v_at
                                .problem("an API key value must be at least 20 characters long")
                                .help("use a longer value, or leave `value` out to have one made up"));
                        }
                        Some(v.to_owned())
                    }
                    None => None,
                };
                out.push(ApiKey {
                    name,
                    value,
                    plan: plan.map(str::to_owned),
                });
            }
            // A usage plan: `- free: [key1, key2]`.
            Value::Map(entries) if plan.is_none() => {
                for (name, keys) in entries {
                    collect_keys(
                        At {
                            node: keys,
                            path: &format!("{path}.{name}"),
                        },
                        out,
                        Some(name),
                    )?;
                }
            }
            _ => return Err(item_at.expected("a key name or a mapping with `name` and `value`")),
        }
    }
    Ok(())
}

/// `authorizer:` on a `websocket` `$connect` route: a function of this service (by name, or
/// `{ name, identitySource }`) run as a REQUEST authorizer, or an ARN from elsewhere.
pub(crate) fn websocket_authorizer(at: At<'_, '_>, ctx: &AuthContext) -> Result<RouteAuthorizer, Problem> {
    let (key_node, sources) = match &at.node.value {
        Value::Str(s) if s.starts_with("arn:") => {
            return Ok(match ctx.function_of_arn(at.node) {
                Some(function) => {
                    RouteAuthorizer::Function(websocket_function_authorizer(function.clone(), function, Vec::new()))
                }
                None => RouteAuthorizer::External { reference: s.clone() },
            })
        }
        Value::Str(_) => (at.node, None),
        Value::Map(_) => {
            if let Some(arn) = field(at.node, "arn") {
                if ctx.function_of_arn(arn).is_none() {
                    return Ok(RouteAuthorizer::External {
                        reference: describe(arn),
                    });
                }
            }
            let key = field(at.node, "name").ok_or_else(|| {
                at.problem("the authorizer has no `name`")
                    .help("name the authorizer function of this service: `name: auth`")
            })?;
            (key, field(at.node, "identitySource"))
        }
        _ => return Err(at.expected("a function name or a mapping with `name`")),
    };
    let key_path = format!("{}.name", at.path);
    let key_at = At {
        node: key_node,
        path: if std::ptr::eq(key_node, at.node) {
            at.path
        } else {
            &key_path
        },
    };
    let key = key_at.str()?;
    let function = ctx.function(key_at, key)?;
    let source_path = format!("{}.identitySource", at.path);
    let identity_sources = match sources {
        Some(n) => {
            let s_at = At {
                node: n,
                path: &source_path,
            };
            identity_sources(s_at, &s_at.strings()?, &WEBSOCKET_SOURCES)?
        }
        // The Framework's default for WebSocket authorizers.
        None => vec![IdentitySource::Header("auth".to_owned())],
    };
    Ok(RouteAuthorizer::Function(websocket_function_authorizer(
        key.to_owned(),
        function,
        identity_sources,
    )))
}

fn websocket_function_authorizer(
    name: String,
    function: String,
    identity_sources: Vec<IdentitySource>,
) -> FunctionAuthorizer {
    FunctionAuthorizer {
        name,
        function,
        request: true,
        identity_sources,
        validation_expression: None,
        // WebSocket authorizers run once per connection; nothing to reuse.
        ttl_seconds: 0,
        payload_v2: false,
        simple_responses: false,
    }
}

/// `provider.apiGateway.usagePlan`: one plan (`{ quota, throttle }`) for every key, or a list
/// of named plans (`- free: { quota, throttle }`) that `apiKeys` groups keys under.
pub(crate) fn usage_plans(provider: &Node, keys: &[ApiKey]) -> Result<Vec<UsagePlan>, Problem> {
    let Some(node) = field(provider, "apiGateway").and_then(|g| field(g, "usagePlan")) else {
        return Ok(Vec::new());
    };
    let path = "provider.apiGateway.usagePlan";
    let at = At { node, path };
    let mut out = Vec::new();
    match &node.value {
        Value::Map(_) => out.push(usage_plan(at, None)?),
        Value::Seq(items) => {
            for (i, item) in items.iter().enumerate() {
                let item_path = format!("{path}[{i}]");
                for (name, plan) in (At {
                    node: item,
                    path: &item_path,
                })
                .entries()?
                {
                    out.push(usage_plan(
                        At {
                            node: plan,
                            path: &format!("{item_path}.{name}"),
                        },
                        Some(name.clone()),
                    )?);
                }
            }
        }
        _ => return Err(at.expected("a mapping with quota and throttle, or a list of named plans")),
    }
    for key in keys {
        if let Some(plan) = &key.plan {
            if !out.iter().any(|p| p.name.as_deref() == Some(plan)) {
                return Err(at
                    .problem(format!(
                        "API key {} is in usage plan `{plan}`, which is not defined here",
                        key.name
                    ))
                    .help(format!("add `- {plan}: {{ quota: ..., throttle: ... }}` to usagePlan")));
            }
        }
    }
    Ok(out)
}

fn usage_plan(at: At<'_, '_>, name: Option<String>) -> Result<UsagePlan, Problem> {
    at.entries()?;
    let quota = match field(at.node, "quota") {
        Some(q) => {
            let q_path = format!("{}.quota", at.path);
            let limit = match field(q, "limit") {
                Some(n) => At {
                    node: n,
                    path: &format!("{q_path}.limit"),
                }
                .number(0, i64::MAX)? as u64,
                None => return Err(At { node: q, path: &q_path }.problem("a quota needs a `limit`")),
            };
            let period = match field(q, "period") {
                Some(n) => {
                    let p_at = At {
                        node: n,
                        path: &format!("{q_path}.period"),
                    };
                    match p_at.str()?.to_ascii_uppercase().as_str() {
                        "DAY" => QuotaPeriod::Day,
                        "WEEK" => QuotaPeriod::Week,
                        "MONTH" => QuotaPeriod::Month,
                        other => {
                            return Err(p_at
                                .problem(format!("`{other}` is not a quota period"))
                                .help("use DAY, WEEK or MONTH"))
                        }
                    }
                }
                None => QuotaPeriod::Month,
            };
            Some(Quota { limit, period })
        }
        None => None,
    };
    let throttle = match field(at.node, "throttle") {
        Some(t) => {
            let t_path = format!("{}.throttle", at.path);
            let rate = match field(t, "rateLimit").map(|n| &n.value) {
                Some(Value::Int(i)) if *i >= 0 => *i as f64,
                Some(Value::Float(f)) if *f >= 0.0 => *f,
                Some(Value::Str(s)) => s.parse::<f64>().ok().filter(|f| *f >= 0.0).ok_or_else(|| {
                    At { node: t, path: &t_path }.problem("rateLimit must be a number of requests per second")
                })?,
                None => 10_000.0,
                Some(_) => {
                    return Err(
                        At { node: t, path: &t_path }.problem("rateLimit must be a number of requests per second")
                    )
                }
            };
            let burst = match field(t, "burstLimit") {
                Some(n) => At {
                    node: n,
                    path: &format!("{t_path}.burstLimit"),
                }
                .number(0, 5_000_000)? as u32,
                None => 5_000,
            };
            Some((rate, burst))
        }
        None => None,
    };
    Ok(UsagePlan { name, quota, throttle })
}
