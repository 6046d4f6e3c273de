//! The resolved service model.
//!
//! `sylph-manifest` turns a `serverless.yml` into a [`Service`]; everything downstream (runtimes,
//! the invoker, the gateway, event sources) reads only these types. All variables are resolved,
//! defaults are applied and values are validated by the time a `Service` exists, so consumers
//! never re-check them. This crate knows nothing about YAML, processes or HTTP.
//!
//! Every type serializes (serde): `sylph deploy` resolves the manifest on the developer's
//! machine, as the Serverless Framework does, and sends the `Service` to `sylph server`, which
//! keeps it with each version it deploys.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Account id used wherever AWS would put a real one (ARNs, `${aws:accountId}`).
pub const LOCAL_ACCOUNT_ID: &str = "000000000000";

/// One service, as `sylph dev` serves it or a `sylph server` version holds it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Service {
    /// `service:` from the manifest.
    pub name: String,
    pub stage: String,
    pub region: String,
    /// The folder holding `serverless.yml`; function code is loaded relative to it.
    pub root: PathBuf,
    /// Functions in manifest order.
    pub functions: Vec<Function>,
    /// `provider.httpApi.cors`, which applies to every `httpApi` route.
    pub http_api_cors: Option<Cors>,
    /// `resources:` with variables resolved; CloudFormation intrinsics kept in long form
    /// (`{"Ref": ..}`, `{"Fn::GetAtt": [..]}`), resolved later where Sylph knows the answer.
    pub resources: serde_json::Value,
    /// `custom:` with variables resolved.
    pub custom: serde_json::Value,
    /// `package.patterns`, kept for later (packaging is not needed to run locally).
    pub package_patterns: Vec<String>,
    /// The `AWS::DynamoDB::Table` resources, with their physical names resolved.
    pub tables: Vec<TableResource>,
    /// The `AWS::SQS::Queue` resources.
    #[serde(default)]
    pub queues: Vec<QueueResource>,
    /// `provider.apiGateway.apiKeys`: what `private: true` routes accept.
    #[serde(default)]
    pub api_keys: Vec<ApiKey>,
    /// `provider.apiGateway.usagePlan`: quotas and throttles of the keys.
    #[serde(default)]
    pub usage_plans: Vec<UsagePlan>,
    /// Set when a bundler plugin is listed: Node.js handlers are built before they run.
    #[serde(default)]
    pub node_build: Option<NodeBuild>,
    /// `serverless-python-requirements`: the requirements file whose packages Python functions
    /// get (installed into a cache, mounted as their last layer).
    #[serde(default)]
    pub python_requirements: Option<PathBuf>,
    /// `provider.websocketsApiRouteSelectionExpression`: the JSON path into a message's body
    /// whose value picks its route (`$request.body.action` gives `["action"]`).
    #[serde(default)]
    pub websocket_route_selection: Vec<String>,
}

/// How Node.js handlers are built, as a bundler plugin (`serverless-esbuild`,
/// `serverless-plugin-typescript`, `serverless-bundle`, `serverless-webpack`) builds them on
/// deploy: Sylph runs esbuild with the options that map.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeBuild {
    /// The plugin that asked for it, for messages.
    pub plugin: String,
    /// Inline dependencies (`false`: compile each handler file only).
    pub bundle: bool,
    /// Bundle the service's own modules but leave every npm package to `node_modules` at run
    /// time (what serverless-plugin-typescript's per-file compile amounts to).
    #[serde(default)]
    pub packages_external: bool,
    pub minify: bool,
    pub sourcemap: bool,
    /// esbuild's `target` (`node20`); `None`: the function's runtime decides.
    pub target: Option<String>,
    /// Packages left out of the bundle, found at run time instead (the AWS SDK by default).
    pub external: Vec<String>,
    /// `define`: identifier → replacement text.
    pub define: BTreeMap<String, String>,
    /// Emit ES modules (`.mjs`) instead of CommonJS.
    pub esm: bool,
    /// `tsconfig` path relative to the service folder.
    pub tsconfig: Option<String>,
    pub keep_names: bool,
}

/// A queue declared under `resources:`, as the SQS attributes it is created with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueResource {
    pub logical_id: String,
    pub name: String,
    /// SQS attribute → value (`VisibilityTimeout` → `"30"`; `RedrivePolicy` as JSON text with
    /// its target's ARN resolved).
    pub attributes: BTreeMap<String, String>,
    pub tags: BTreeMap<String, String>,
}

/// A table declared under `resources:`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TableResource {
    pub logical_id: String,
    /// The table's name: `TableName`, or what CloudFormation would generate (`<stack>-<id>`).
    pub name: String,
    /// The resource's `Properties` (KeySchema, AttributeDefinitions, indexes, billing, TTL, …).
    pub properties: serde_json::Value,
}

impl Service {
    pub fn function(&self, key_or_name: &str) -> Option<&Function> {
        self.functions
            .iter()
            .find(|f| f.key == key_or_name || f.name == key_or_name)
    }
}

/// One function with every provider default applied.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Function {
    /// The key under `functions:` (what `sylph invoke local -f` takes).
    pub key: String,
    /// The deployed name: `name:` or `<service>-<stage>-<key>`.
    pub name: String,
    pub handler: String,
    pub runtime: Runtime,
    pub memory_mb: u32,
    /// `ephemeralStorageSize`: the size of its `/tmp` in MB (Lambda's 512 to 10,240).
    pub ephemeral_mb: u32,
    pub timeout: Duration,
    /// Provider environment overlaid with the function's own.
    pub environment: BTreeMap<String, String>,
    pub reserved_concurrency: Option<u32>,
    pub events: Vec<Event>,
    /// `package.artifact` of the function (or the service), for `provided.*` runtimes.
    pub artifact: Option<PathBuf>,
    /// The role its calls into Sylph are checked against; `None` when the manifest grants it
    /// nothing Sylph can read (no statements, or a role defined outside the file).
    pub role: Option<std::sync::Arc<Role>>,
    /// How its asynchronous invocations are retried and where their results go.
    #[serde(default)]
    pub on_async: AsyncConfig,
    /// The folders of its layers, in order: merged into `/opt` as Lambda extracts them, a
    /// later layer's file replacing an earlier one's.
    #[serde(default)]
    pub layers: Vec<PathBuf>,
    /// How the platform's own lines (START, END, REPORT) are written for it.
    #[serde(default)]
    pub platform_logs: PlatformLogs,
    /// `allowedOutboundHosts`: where a WebAssembly function may send HTTP requests besides
    /// Sylph's own APIs (checked when read; see [`OutboundHost`]).
    #[serde(default)]
    pub outbound_hosts: Vec<OutboundHost>,
}

/// One entry of `allowedOutboundHosts`: `scheme://host:port`, where the scheme, the port and the
/// host (whole, or its first labels as `*.example.com`) may be `*`; no port means the scheme's
/// default port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboundHost {
    /// `http`, `https`, or `None` for `*`.
    pub scheme: Option<String>,
    /// Lower case; `*` for any host, `*.suffix` for any host under the suffix.
    pub host: String,
    /// `None` for `*`.
    pub port: Option<u16>,
}

impl OutboundHost {
    /// Read `scheme://host[:port]`; the error says what is wrong with it.
    pub fn parse(text: &str) -> Result<OutboundHost, String> {
        let (scheme, rest) = text
            .split_once("://")
            .ok_or_else(|| format!("`{text}` has no scheme: write it as `https://host:port` (`*` for any scheme)"))?;
        let scheme = match scheme {
            "*" => None,
            "http" | "https" => Some(scheme.to_owned()),
            other => return Err(format!("`{text}`: the scheme `{other}` is not http, https or *")),
        };
        if rest.contains(['/', '?', '#', '@']) {
            return Err(format!(
                "`{text}`: give only the scheme, host and port (no path or user)"
            ));
        }
        // `[::1]:8080` keeps its brackets in the host, as a URL's authority does.
        let (host, port) = match rest.strip_prefix('[').and_then(|r| r.split_once(']')) {
            Some((v6, after)) => (&rest[..v6.len() + 2], after.strip_prefix(':')),
            None => match rest.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (rest, None),
            },
        };
        let port = match (port, scheme.as_deref()) {
            (Some("*"), _) => None,
            (Some(p), _) => Some(
                p.parse::<u16>()
                    .ok()
                    .filter(|p| *p > 0)
                    .ok_or_else(|| format!("`{text}`: the port `{p}` is not a number from 1 to 65535 or *"))?,
            ),
            (None, Some("http")) => Some(80),
            (None, Some("https")) => Some(443),
            (None, _) => return Err(format!("`{text}`: with any scheme, give the port too (`*` for any)")),
        };
        let host = host.to_ascii_lowercase();
        // `*`, a name or address, or `*.` before a name; an IPv6 address only in brackets.
        let name = host.strip_prefix("*.").unwrap_or(&host);
        let plain_name = !name.is_empty()
            && !name.starts_with('.')
            && name.chars().any(|c| c.is_ascii_alphanumeric())
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-'));
        let bracketed_v6 = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .is_some_and(|a| a.parse::<std::net::Ipv6Addr>().is_ok());
        if !(host == "*" || plain_name || bracketed_v6) {
            return Err(format!(
                "`{text}`: `{host}` is not a host name, an address (IPv6 in brackets), `*` or `*.domain`"
            ));
        }
        Ok(OutboundHost { scheme, host, port })
    }

    /// Whether a request to `scheme://host:port` is allowed by this entry.
    pub fn allows(&self, scheme: &str, host: &str, port: u16) -> bool {
        self.scheme.as_deref().is_none_or(|s| s.eq_ignore_ascii_case(scheme))
            && self.port.is_none_or(|p| p == port)
            && match self.host.strip_prefix("*.") {
                _ if self.host == "*" => true,
                Some(suffix) => {
                    host.len() > suffix.len() + 1
                        && host[host.len() - suffix.len()..].eq_ignore_ascii_case(suffix)
                        && host.as_bytes()[host.len() - suffix.len() - 1] == b'.'
                }
                None => host.eq_ignore_ascii_case(&self.host),
            }
    }
}

/// `maximumRetryAttempts`, `maximumEventAge`, `destinations` and `onError` of a function: what
/// happens to an asynchronous invocation (an `Event` invoke, a schedule's tick) that fails.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AsyncConfig {
    /// Retries after a function error (Lambda's 0 to 2; 2 by default).
    pub maximum_retry_attempts: u32,
    /// How long an event may wait, retries and throttles included, before it is given up
    /// (Lambda's 60 s to 6 h; 6 h by default).
    pub maximum_event_age: Duration,
    /// Where a record of each success goes.
    pub on_success: Option<Destination>,
    /// Where a record of each event given up goes.
    pub on_failure: Option<Destination>,
    /// `onError`: the dead-letter target that gets the original event of each event given up.
    pub dead_letter: Option<Destination>,
}

impl Default for AsyncConfig {
    fn default() -> Self {
        AsyncConfig {
            maximum_retry_attempts: 2,
            maximum_event_age: Duration::from_secs(6 * 3600),
            on_success: None,
            on_failure: None,
            dead_letter: None,
        }
    }
}

/// Where an asynchronous invocation's outcome is sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Destination {
    /// A function, by its deployed name.
    Function(String),
    /// A queue, by name.
    Queue(String),
    /// A target Sylph does not deliver to (an SNS topic, an event bus): its ARN.
    Unsupported(String),
}

/// An IAM role as far as Sylph enforces it: its policy statements.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Role {
    /// The role's name, for messages (`<service>-<stage>-<region>-lambdaRole` by default).
    pub name: String,
    pub statements: Vec<IamStatement>,
}

/// One policy statement, with `Action`/`Resource` lists and every ARN resolved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IamStatement {
    pub allow: bool,
    /// Patterns (`dynamodb:Get*`, `*`) of `Action`, or of `NotAction` when `not_action`.
    pub actions: Vec<String>,
    pub not_action: bool,
    /// ARN patterns of `Resource`, or of `NotResource` when `not_resource`.
    pub resources: Vec<String>,
    pub not_resource: bool,
    /// Where the statement was written (`provider.iam.role.statements[0]`), for messages.
    pub origin: String,
}

impl Function {
    pub fn arn(&self, region: &str) -> String {
        format!("arn:aws:lambda:{region}:{LOCAL_ACCOUNT_ID}:function:{}", self.name)
    }
}

/// How Lambda writes the platform's lines of a function's log: as text (START, END, REPORT), or
/// with the JSON log format as `platform.start` / `platform.report` records, which a
/// `systemLogLevel` of WARN leaves out.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum PlatformLogs {
    #[default]
    Text,
    Json,
    /// JSON format, system log level WARN: no platform records.
    JsonWarnOnly,
}

/// The Lambda runtime identifier, grouped by how Sylph starts it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Runtime {
    /// `nodejs18.x` … `nodejs22.x`, run on the machine's `node`.
    Node(String),
    /// `python3.9` … `python3.13`, run on the machine's `python3`.
    Python(String),
    /// `provided`, `provided.al2`, `provided.al2023`: an executable `bootstrap`.
    Provided(String),
    /// `java8.al2`, `java11`, `java17`, `java21`, `java25`: a jar or zip run by AWS's Java
    /// runtime interface client on a JDK of this machine.
    Java(String),
    /// `wasi-http`: a WebAssembly component exporting `wasi:http/incoming-handler` (the
    /// `wasi:http/proxy` world), run inside Sylph with wasmtime, no process. Sylph's own id.
    Wasm(String),
}

impl Runtime {
    pub const SUPPORTED: &'static [&'static str] = &[
        "nodejs18.x",
        "nodejs20.x",
        "nodejs22.x",
        "python3.9",
        "python3.10",
        "python3.11",
        "python3.12",
        "python3.13",
        "provided",
        "provided.al2",
        "provided.al2023",
        "java8.al2",
        "java11",
        "java17",
        "java21",
        "java25",
        Runtime::WASI_HTTP,
    ];

    /// Sylph's runtime id for WebAssembly components (not an AWS id).
    pub const WASI_HTTP: &'static str = "wasi-http";

    /// The runtime `id` names: one of [`Runtime::SUPPORTED`], or an older or newer Node.js or
    /// Python 3 runtime (`nodejs14.x`, `nodejs8.10`, `python3.8`), which runs on the closest
    /// interpreter this machine has, as serverless-offline runs them.
    pub fn parse(id: &str) -> Option<Runtime> {
        let node_like = id.strip_prefix("nodejs").is_some_and(|v| {
            let (major, rest) = v.split_once('.').unwrap_or((v, ""));
            major.parse::<u32>().is_ok_and(|m| (4..=40).contains(&m)) && matches!(rest, "x" | "10" | "3")
        });
        let python_like = id
            .strip_prefix("python3.")
            .is_some_and(|minor| minor.parse::<u32>().is_ok_and(|m| (6..=40).contains(&m)));
        if !Self::SUPPORTED.contains(&id) && !node_like && !python_like {
            return None;
        }
        Some(if id.starts_with("nodejs") {
            Runtime::Node(id.to_owned())
        } else if id.starts_with("python") {
            Runtime::Python(id.to_owned())
        } else if id.starts_with("java") {
            Runtime::Java(id.to_owned())
        } else if id == Self::WASI_HTTP {
            Runtime::Wasm(id.to_owned())
        } else {
            Runtime::Provided(id.to_owned())
        })
    }

    /// The identifier as written in `serverless.yml`.
    pub fn id(&self) -> &str {
        match self {
            Runtime::Node(id) | Runtime::Python(id) | Runtime::Provided(id) | Runtime::Java(id) | Runtime::Wasm(id) => {
                id
            }
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Event {
    Http(HttpRoute),
    WebSocket(WebSocketRoute),
    Schedule(ScheduleEvent),
    Sqs(SqsEvent),
    Stream(StreamEvent),
    /// An event kind Sylph does not serve yet (schedule, sqs, stream, …), kept as data.
    Other {
        kind: String,
        config: serde_json::Value,
    },
}

/// A `schedule` event: one expression (a list in `serverless.yml` becomes one event each).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScheduleEvent {
    /// `rate(…)`, `cron(…)` or (with the scheduler method) `at(…)`, checked when loaded.
    pub expression: String,
    /// The rule's (or schedule's) name: `name:`, else `<function name>-schedule-<n>`.
    pub name: String,
    pub enabled: bool,
    /// `method: scheduler` (EventBridge Scheduler) rather than an EventBridge rule.
    pub scheduler: bool,
    /// IANA time zone of a cron's fields (scheduler only); UTC when `None`.
    pub timezone: Option<String>,
    pub input: ScheduleInput,
}

/// An `sqs` event: batches of a queue's messages.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SqsEvent {
    /// The queue's name (from its ARN).
    pub queue: String,
    /// Messages per invocation, at most (1 to 10,000; 10 by default).
    pub batch_size: u32,
    /// Seconds to gather a batch before invoking (0 to 300).
    pub maximum_batching_window: u32,
    /// `functionResponseType: ReportBatchItemFailures`.
    pub report_batch_item_failures: bool,
    /// Batches in flight at once, at most.
    pub maximum_concurrency: Option<u32>,
    pub enabled: bool,
    /// EventBridge patterns; a message matching none of them is deleted unseen.
    pub filter_patterns: Vec<serde_json::Value>,
}

/// A `stream` event: batches of a table's changes, in order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StreamEvent {
    /// The table whose stream it reads (from the stream's ARN).
    pub table: String,
    /// Records per invocation, at most (1 to 10,000; 100 by default).
    pub batch_size: u32,
    /// Seconds to gather a batch before invoking (0 to 300).
    pub maximum_batching_window: u32,
    /// Start from the oldest record kept (`TRIM_HORIZON`) rather than from new ones (`LATEST`).
    pub from_oldest: bool,
    /// Retries of a failing batch before it is skipped; `None`: until its records expire
    /// (Lambda's -1, the default).
    pub maximum_retry_attempts: Option<u32>,
    /// Records older than this (seconds) are skipped; `None`: never.
    pub maximum_record_age: Option<u32>,
    /// Split a failing batch in two and retry each half.
    pub bisect_batch_on_function_error: bool,
    /// `functionResponseType: ReportBatchItemFailures`.
    pub report_batch_item_failures: bool,
    pub enabled: bool,
    /// EventBridge patterns a record must match (others are skipped).
    pub filter_patterns: Vec<serde_json::Value>,
    /// `destinations.onFailure`: where a record of a skipped batch goes.
    pub on_failure: Option<Destination>,
}

/// What a schedule's tick delivers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ScheduleInput {
    /// EventBridge's `Scheduled Event` (an event rule), or `{}` (the scheduler).
    Event,
    /// `input`: this JSON instead.
    Constant(serde_json::Value),
    /// `inputPath`: the part of the event at this JSONPath.
    Path(String),
    /// `inputTransformer`: values picked from the event by JSONPath, put into a template.
    Transformer {
        paths: BTreeMap<String, String>,
        template: String,
    },
}

/// Which API Gateway flavour a route belongs to; it decides the event and response shapes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ApiKind {
    /// `http` events: API Gateway REST API, payload format 1.0, URLs prefixed with `/{stage}`.
    Rest,
    /// `httpApi` events: API Gateway HTTP API, payload format 2.0, no prefix.
    Http,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HttpRoute {
    pub api: ApiKind,
    /// Upper-case method, or `None` for `any` / `*`.
    pub method: Option<String>,
    /// The path as declared, always starting with `/`, without the stage prefix
    /// (`/todos/{id}`, `/{proxy+}`). For an `httpApi` catch-all (`*`) this is `/{proxy+}`
    /// and `catch_all` is set.
    pub path: String,
    pub catch_all: bool,
    /// Per-route CORS (`http` events); `httpApi` routes use [`Service::http_api_cors`].
    pub cors: Option<Cors>,
    /// Who may call the route, checked before its function runs.
    #[serde(default)]
    pub authorizer: Option<RouteAuthorizer>,
    /// `private: true` (`http` events): a request needs one of [`Service::api_keys`] in
    /// `x-api-key`.
    #[serde(default)]
    pub private: bool,
    /// `request.schemas` and `request.parameters` (`http` events): checked before the
    /// function runs, as API Gateway's request validator does.
    #[serde(default)]
    pub validation: Option<RequestValidation>,
}

/// What API Gateway's request validator checks on one route.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RequestValidation {
    /// (content type, JSON Schema draft 4) for the body.
    pub schemas: Vec<(String, serde_json::Value)>,
    /// Query string parameters, headers (lower case) and path parameters that must be there.
    pub required_query: Vec<String>,
    pub required_headers: Vec<String>,
    pub required_paths: Vec<String>,
}

/// An API Gateway authorizer on one route.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum RouteAuthorizer {
    /// A Lambda authorizer that is a function of this service: run as API Gateway runs it.
    Function(FunctionAuthorizer),
    /// An authorizer that lives outside the service (a Lambda ARN, a user pool, a shared
    /// authorizer id). It cannot run here: requests pass, with the context the operator
    /// supplies, and a notice at start names it.
    External {
        /// What the manifest names (an ARN or an authorizer id), for messages.
        reference: String,
    },
    /// `aws_iam`: the request must be signed with SigV4.
    Iam,
    /// An HTTP API `jwt` authorizer, or a REST `COGNITO_USER_POOLS` one: a JSON Web Token
    /// checked against its issuer's keys.
    Jwt(JwtAuthorizer),
}

/// A JWT authorizer on one route.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JwtAuthorizer {
    /// The authorizer's name (or the user pool), for messages.
    pub name: String,
    /// `iss` must be exactly this; its keys are at `{issuer}/.well-known/jwks.json` (Cognito)
    /// or where `{issuer}/.well-known/openid-configuration` says.
    pub issuer: String,
    /// `aud` (or `client_id`) must be one of these; empty: not checked (Cognito on REST).
    pub audience: Vec<String>,
    /// The header the token comes in (lower case).
    pub header: String,
    /// The route's scopes: the token must carry one of them (none: no check).
    pub scopes: Vec<String>,
    /// REST (`COGNITO_USER_POOLS`): claims go to `requestContext.authorizer.claims`; HTTP API:
    /// to `requestContext.authorizer.jwt`.
    pub rest: bool,
}

/// A Lambda authorizer of this service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FunctionAuthorizer {
    /// The authorizer's name in the manifest; results are cached per name.
    pub name: String,
    /// The authorizer function's deployed name.
    pub function: String,
    /// `REQUEST` (the whole request) rather than `TOKEN` (one header).
    pub request: bool,
    /// Where the identity comes from; a request missing any of them is refused with 401
    /// without running the authorizer. Also the cache key.
    pub identity_sources: Vec<IdentitySource>,
    /// `identityValidationExpression` (TOKEN authorizers): a token that does not match is
    /// refused with 401 without running the authorizer.
    pub validation_expression: Option<String>,
    /// How long a result is reused for the same identity (0: never).
    pub ttl_seconds: u32,
    /// HTTP API authorizers: payload format 2.0 (otherwise 1.0, the REST shape).
    pub payload_v2: bool,
    /// HTTP API `enableSimpleResponses`: the answer is `{"isAuthorized": bool, "context": {..}}`.
    pub simple_responses: bool,
}

/// One `identitySource` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum IdentitySource {
    /// A request header (lower case).
    Header(String),
    /// A query string parameter.
    Query(String),
    /// A `$context` / `context.` variable.
    Context(String),
    /// A stage variable (Sylph has none, so it is always missing).
    StageVariable(String),
}

/// A `websocket` event: one route of the service's WebSocket API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebSocketRoute {
    /// `$connect`, `$disconnect`, `$default` or a route key the selection expression yields.
    pub route: String,
    /// On `$connect` only: who may connect.
    pub authorizer: Option<RouteAuthorizer>,
    /// `routeResponseSelectionExpression` is set: the function's answer is sent back to the
    /// client on its connection.
    pub respond: bool,
}

/// An API key of `provider.apiGateway.apiKeys`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKey {
    pub name: String,
    /// The key's value when the manifest gives one; otherwise Sylph makes one up at start.
    pub value: Option<String>,
    /// The usage plan it belongs to (`apiKeys: [{ free: [...] }]`); `None` with a single,
    /// unnamed `usagePlan`, which then applies to every key.
    #[serde(default)]
    pub plan: Option<String>,
}

/// `provider.apiGateway.usagePlan`: how much a key may be used.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UsagePlan {
    /// `None`: the single plan of every key.
    pub name: Option<String>,
    /// Requests per period.
    pub quota: Option<Quota>,
    /// Steady requests per second, and the burst above it (a token bucket).
    pub throttle: Option<(f64, u32)>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quota {
    pub limit: u64,
    pub period: QuotaPeriod,
}

/// Quota periods as API Gateway counts them (calendar, UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum QuotaPeriod {
    Day,
    Week,
    Month,
}

/// CORS settings as Serverless Framework fills them in for `cors: true` or the object form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cors {
    pub allow_origins: Vec<String>,
    pub allow_headers: Vec<String>,
    /// Empty means "the methods declared on this path".
    pub allow_methods: Vec<String>,
    pub allow_credentials: bool,
    pub expose_headers: Vec<String>,
    pub max_age: Option<u64>,
}

/// The headers Serverless Framework allows by default with `cors: true`.
const DEFAULT_CORS_HEADERS: [&str; 7] = [
    "Content-Type",
    "X-Amz-Date",
    "Authorization",
    "X-Api-Key",
    "X-Amz-Security-Token",
    "X-Amz-User-Agent",
    "X-Amzn-Trace-Id",
];

impl Cors {
    /// What `cors: true` means for an `http` event in Serverless Framework v3.
    pub fn rest_default() -> Cors {
        Cors {
            allow_origins: vec!["*".into()],
            allow_headers: DEFAULT_CORS_HEADERS.map(String::from).to_vec(),
            allow_methods: Vec::new(),
            allow_credentials: false,
            expose_headers: Vec::new(),
            max_age: None,
        }
    }

    /// What `provider.httpApi.cors: true` means in Serverless Framework v3.
    pub fn http_api_default() -> Cors {
        Cors {
            allow_origins: vec!["*".into()],
            allow_headers: DEFAULT_CORS_HEADERS.map(String::from).to_vec(),
            allow_methods: ["OPTIONS", "GET", "POST", "PUT", "PATCH", "DELETE"]
                .map(String::from)
                .to_vec(),
            allow_credentials: false,
            expose_headers: Vec::new(),
            max_age: None,
        }
    }
}

#[cfg(test)]
mod outbound_host_tests {
    use super::OutboundHost;

    #[test]
    fn entries_match_scheme_host_and_port() {
        let exact = OutboundHost::parse("http://127.0.0.1:8080").unwrap();
        assert!(exact.allows("http", "127.0.0.1", 8080));
        assert!(!exact.allows("http", "127.0.0.1", 8081));
        assert!(!exact.allows("https", "127.0.0.1", 8080));
        let default_port = OutboundHost::parse("https://API.example.com").unwrap();
        assert!(default_port.allows("https", "api.example.com", 443));
        assert!(!default_port.allows("https", "api.example.com", 8443));
        let wild = OutboundHost::parse("*://*.example.com:*").unwrap();
        assert!(wild.allows("http", "a.b.example.com", 1));
        assert!(!wild.allows("http", "example.com", 80));
        assert!(!wild.allows("http", "badexample.com", 80));
        let v6 = OutboundHost::parse("http://[::1]:9000").unwrap();
        assert!(v6.allows("http", "[::1]", 9000));
    }

    #[test]
    fn malformed_entries_say_what_is_wrong() {
        for (text, says) in [
            ("example.com", "has no scheme"),
            ("ftp://example.com", "`ftp` is not http"),
            ("http://example.com/path", "no path"),
            ("http://example.com:0", "not a number"),
            ("*://example.com", "give the port"),
            ("http://exa mple.com", "is not a host name"),
            ("http://a.*.com", "is not a host name"),
            ("http://*.*.example.com", "is not a host name"),
            ("https://*.", "is not a host name"),
            ("http://::1:8080", "is not a host name"),
        ] {
            let err = OutboundHost::parse(text).unwrap_err();
            assert!(err.contains(says), "{text}: {err}");
        }
    }
}
