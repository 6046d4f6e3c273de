//! Validate the resolved tree and convert it into the service model.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use sylph_model::{
    ApiKind, AsyncConfig, Cors, Destination, Event, Function, HttpRoute, QueueResource, Runtime, ScheduleEvent,
    ScheduleInput, Service, SqsEvent, StreamEvent, TableResource, WebSocketRoute,
};

use crate::auth::AuthContext;
use crate::cfn::Stack;
use crate::error::Problem;
use crate::yaml::{Node, Value};
use crate::Loaded;

/// Plugins whose job `sylph dev` does itself.
const REPLACED_PLUGINS: &[(&str, &str)] = &[
    (
        "serverless-offline",
        "sylph dev serves HTTP events and the Lambda API itself",
    ),
    (
        "serverless-dynamodb-local",
        "sylph serves the tables under resources: itself",
    ),
    ("serverless-dynamodb", "sylph serves the tables under resources: itself"),
    ("serverless-offline-sqs", "sylph runs queue events itself"),
    ("serverless-offline-scheduler", "sylph runs schedule events itself"),
    (
        "serverless-iam-roles-per-function",
        "sylph gives each function with iamRoleStatements a role of its own itself",
    ),
    (
        "serverless-dotenv-plugin",
        "sylph reads .env and .env.<stage> itself and hands their variables to every function",
    ),
    ("serverless-rust", "sylph runs provided.* bootstrap binaries itself"),
];

/// A node plus its path in the document, for error messages.
#[derive(Clone, Copy)]
pub(crate) struct At<'a, 'p> {
    pub node: &'a Node,
    pub path: &'p str,
}

impl<'a> At<'a, '_> {
    pub(crate) fn problem(&self, message: impl Into<String>) -> Problem {
        Problem::new(self.node.mark, self.path, message)
    }

    pub(crate) fn expected(&self, what: &str) -> Problem {
        self.problem(format!("expected {what}, found {}", self.node.kind()))
    }

    pub(crate) fn str(&self) -> Result<&'a str, Problem> {
        match &self.node.value {
            Value::Str(s) => Ok(s),
            _ => Err(self.expected("a string")),
        }
    }

    pub(crate) fn entries(&self) -> Result<&'a [(String, Node)], Problem> {
        match &self.node.value {
            Value::Map(e) => Ok(e),
            _ => Err(self.expected("a mapping")),
        }
    }

    pub(crate) fn items(&self) -> Result<&'a [Node], Problem> {
        match &self.node.value {
            Value::Seq(i) => Ok(i),
            _ => Err(self.expected("a list")),
        }
    }

    pub(crate) fn number(&self, min: i64, max: i64) -> Result<i64, Problem> {
        let n = match &self.node.value {
            Value::Int(i) => *i,
            Value::Float(f) if f.fract() == 0.0 => *f as i64,
            // Variables such as ${env:TIMEOUT} produce strings; accept them if they are numbers.
            Value::Str(s) => s.trim().parse().map_err(|_| self.expected("a whole number"))?,
            _ => return Err(self.expected("a whole number")),
        };
        if n < min || n > max {
            return Err(self.problem(format!("{n} is out of range; use a value from {min} to {max}")));
        }
        Ok(n)
    }

    pub(crate) fn bool(&self) -> Result<bool, Problem> {
        match &self.node.value {
            Value::Bool(b) => Ok(*b),
            Value::Str(s) if s == "true" => Ok(true),
            Value::Str(s) if s == "false" => Ok(false),
            _ => Err(self.expected("true or false")),
        }
    }

    pub(crate) fn strings(&self) -> Result<Vec<String>, Problem> {
        match &self.node.value {
            Value::Str(s) => Ok(vec![s.clone()]),
            Value::Seq(items) => items
                .iter()
                .map(|n| match &n.value {
                    Value::Str(s) => Ok(s.clone()),
                    _ => Err(Problem::new(
                        n.mark,
                        self.path,
                        format!("expected a string, found {}", n.kind()),
                    )),
                })
                .collect(),
            _ => Err(self.expected("a list of strings")),
        }
    }
}

pub(crate) fn field<'a>(node: &'a Node, key: &str) -> Option<&'a Node> {
    node.get(key).filter(|n| n.value != Value::Null)
}

pub(crate) fn service(
    root: &Node,
    stage: String,
    region: String,
    dir: &Path,
    params: &crate::params::Params,
    dotenv: &[(String, String)],
) -> Result<Loaded, Problem> {
    let mut notices = Vec::new();
    let name = match root.get("service") {
        None | Some(Node { value: Value::Null, .. }) => {
            return Err(Problem::new(root.mark, "service", "`service` is missing")
                .help("add `service: my-service` at the top of the file"))
        }
        Some(n) => match &n.value {
            // Serverless Framework v1 allowed `service: { name: x }`.
            Value::Map(_) => At {
                node: field(n, "name").unwrap_or(n),
                path: "service.name",
            }
            .str()?,
            _ => At {
                node: n,
                path: "service",
            }
            .str()?,
        },
    };
    check_name(
        At {
            node: root.get("service").unwrap_or(root),
            path: "service",
        },
        name,
    )?;

    let provider = root.get("provider").unwrap_or(root);
    let provider_at = At {
        node: provider,
        path: "provider",
    };
    provider_at.entries()?;
    if let Some(n) = field(provider, "name") {
        let provider_name = At {
            node: n,
            path: "provider.name",
        }
        .str()?;
        if provider_name != "aws" {
            return Err(At {
                node: n,
                path: "provider.name",
            }
            .problem(format!("provider `{provider_name}` is not supported"))
            .help("sylph runs AWS Lambda services: use `name: aws`"));
        }
    }
    let default_runtime = match field(provider, "runtime") {
        Some(n) => Some(runtime(At {
            node: n,
            path: "provider.runtime",
        })?),
        None => None,
    };
    let default_memory = memory(provider, "provider")?.unwrap_or(1024);
    let default_timeout = timeout(provider, "provider")?.unwrap_or(6);
    let provider_env = environment_nodes(provider, "provider")?;
    let http_api_cors = match field(provider, "httpApi").and_then(|h| field(h, "cors")) {
        Some(n) => http_api_cors(At {
            node: n,
            path: "provider.httpApi.cors",
        })?,
        None => None,
    };
    let provider_role = crate::iam::provider_role(Some(provider), format!("{name}-{stage}-{region}-lambdaRole"));

    let service_artifact = field(root, "package").and_then(|p| field(p, "artifact"));
    let package_patterns = match field(root, "package").and_then(|p| field(p, "patterns")) {
        Some(n) => At {
            node: n,
            path: "package.patterns",
        }
        .strings()?,
        None => Vec::new(),
    };

    let mut resources = match root.get("resources") {
        Some(node) => resources_of(node)?,
        None => serde_json::Value::Null,
    };
    let conditions = crate::conditions::apply(&mut resources, &region, &format!("{name}-{stage}")).map_err(|e| {
        Problem::new(root.get("resources").map_or(root.mark, |n| n.mark), e.path, e.message)
            .help("CloudFormation conditions compare values known before deploying: variables and pseudo parameters")
    })?;
    let custom = root.get("custom").map(Node::to_json).unwrap_or(serde_json::Value::Null);

    let plugin_names = match field(root, "plugins") {
        Some(n) => plugins(n, &mut notices)?,
        None => Vec::new(),
    };
    let node_build = crate::bundle::node_build(&plugin_names, root, &mut notices)?;
    let python_requirements = crate::bundle::python_requirements(&plugin_names, root, dir, &mut notices)?;
    let wsgi_app = crate::bundle::wsgi_app(&plugin_names, root, &mut notices)?;

    let function_nodes: &[(String, Node)] = match field(root, "functions") {
        Some(n) => At {
            node: n,
            path: "functions",
        }
        .entries()?,
        None => &[],
    };
    let stack_name = format!("{name}-{stage}");
    // Every function's deployed name, first: an event's authorizer may name any function.
    let mut deployed = Vec::with_capacity(function_nodes.len());
    for (key, node) in function_nodes {
        let path = format!("functions.{key}");
        At { node, path: &path }.entries()?;
        let fname = match field(node, "name") {
            Some(n) => At {
                node: n,
                path: &format!("{path}.name"),
            }
            .str()?
            .to_owned(),
            None => format!("{stack_name}-{key}"),
        };
        deployed.push((key.clone(), fname));
    }
    let auth = AuthContext {
        http_api: crate::auth::http_api_authorizers(provider, &deployed)?,
        functions: deployed,
    };
    let api_keys = crate::auth::api_keys(provider)?;
    let usage_plans = crate::auth::usage_plans(provider, &api_keys)?;
    let resource_policy = field(provider, "apiGateway")
        .and_then(|g| field(g, "resourcePolicy"))
        .or_else(|| field(provider, "resourcePolicy"));
    if resource_policy.is_some() {
        notices.push(
            "provider.apiGateway.resourcePolicy is not enforced by sylph: every caller that passes the routes' authorizers and keys gets through"
                .to_owned(),
        );
    }
    let websocket_route_selection = route_selection(provider)?;
    let layers = crate::layers::ServiceLayers::read(root, dir, &mut notices)?;
    let mut functions = Vec::with_capacity(function_nodes.len());
    let mut routes = RoutesSeen::default();
    for ((key, node), (_, fname)) in function_nodes.iter().zip(&auth.functions) {
        let fname = fname.clone();
        let path = format!("functions.{key}");
        let at = At { node, path: &path };
        let handler = match field(node, "handler") {
            Some(n) => At {
                node: n,
                path: &format!("{path}.handler"),
            }
            .str()?
            .to_owned(),
            None => {
                return Err(at
                    .problem(format!("function `{key}` has no `handler`"))
                    .help("add `handler: file.function` (for example `handler: handler.hello`)"))
            }
        };
        let runtime = match field(node, "runtime") {
            Some(n) => runtime(At {
                node: n,
                path: &format!("{path}.runtime"),
            })?,
            None => default_runtime.clone().ok_or_else(|| {
                at.problem(format!("function `{key}` has no runtime"))
                    .help("set `provider.runtime` (for example `nodejs20.x`) or `runtime` on the function")
            })?,
        };
        let memory_mb = memory(node, &path)?.unwrap_or(default_memory);
        let ephemeral_mb = match field(node, "ephemeralStorageSize").or_else(|| field(provider, "ephemeralStorageSize"))
        {
            Some(n) => At {
                node: n,
                path: &format!("{path}.ephemeralStorageSize"),
            }
            .number(512, 10240)? as u32,
            None => 512,
        };
        let timeout_s = timeout(node, &path)?.unwrap_or(default_timeout);
        let reserved_concurrency = match field(node, "reservedConcurrency") {
            Some(n) => Some(
                At {
                    node: n,
                    path: &format!("{path}.reservedConcurrency"),
                }
                .number(0, 100_000)? as u32,
            ),
            None => None,
        };
        let mut env_nodes = provider_env.clone();
        for (k, v, env_path) in environment_nodes(node, &path)? {
            env_nodes.retain(|(ek, _, _)| *ek != k);
            env_nodes.push((k, v, env_path));
        }
        // `sqs` events' queue ARNs (often `Fn::GetAtt`), resolved once the stack is known.
        let mut queue_arns = Vec::new();
        let events = match field(node, "events") {
            Some(n) => {
                let events_path = format!("{path}.events");
                let items = At {
                    node: n,
                    path: &events_path,
                }
                .items()?;
                let mut events = Vec::with_capacity(items.len());
                for (i, ev) in items.iter().enumerate() {
                    event(
                        ev,
                        &format!("{events_path}[{i}]"),
                        &fname,
                        &auth,
                        &mut routes,
                        &mut events,
                        &mut queue_arns,
                    )?;
                }
                events
            }
            None => Vec::new(),
        };
        let artifact = field(node, "package")
            .and_then(|p| field(p, "artifact"))
            .or(service_artifact)
            .and_then(|n| match &n.value {
                Value::Str(s) => Some(dir.join(s)),
                _ => None,
            });
        let outbound_hosts = outbound_hosts(node, provider, &path)?;
        if field(node, "url").is_some_and(|u| u.value != Value::Bool(false)) {
            notices.push(format!(
                "{path}.url: function URLs are not served by sylph; call {key} through the Invoke API, or give it an httpApi event"
            ));
        }
        let role_source = crate::iam::function_role(
            node,
            &path,
            &provider_role,
            format!("{name}-{stage}-{key}-{region}-lambdaRole"),
        );
        let (on_async, destinations) = async_config(node, &path)?;
        functions.push((
            Function {
                key: key.clone(),
                name: fname,
                handler,
                runtime,
                memory_mb,
                ephemeral_mb,
                timeout: Duration::from_secs(timeout_s),
                environment: BTreeMap::new(),
                reserved_concurrency,
                events,
                artifact,
                platform_logs: Default::default(),
                outbound_hosts,
                role: None,
                on_async,
                layers: layers.of_function(node, provider, &path, &mut notices)?,
            },
            env_nodes,
            role_source,
            destinations,
            queue_arns,
        ));
    }

    // Environment values may be CloudFormation intrinsics (`TABLE: !Ref TodosTable`); they can
    // only be resolved once every function's name is known.
    let empty = serde_json::Value::Null;
    let stack = Stack {
        name: stack_name,
        region: &region,
        resources: resources.get("Resources").unwrap_or(&empty),
        params,
        conditions: &conditions,
        functions: functions
            .iter()
            .map(|(f, ..)| (logical_id(&f.key), f.name.clone()))
            .collect(),
    };
    let mut tables = Vec::new();
    let mut queues = Vec::new();
    if let Some(serde_json::Value::Object(res)) = resources.get("Resources") {
        for (logical_id, r) in res {
            if r.get("Type").and_then(serde_json::Value::as_str) == Some("AWS::SQS::Queue") {
                queues.push(queue_resource(logical_id, r, &stack, root.mark)?);
                continue;
            }
            if r.get("Type").and_then(serde_json::Value::as_str) != Some("AWS::DynamoDB::Table") {
                continue;
            }
            let name = stack.physical_name(logical_id, 0).ok_or_else(|| {
                Problem::new(
                    root.mark,
                    format!("resources.Resources.{logical_id}.Properties.TableName"),
                    "cannot resolve the table name locally",
                )
                .help("use a plain string or variables for TableName")
            })?;
            tables.push(TableResource {
                logical_id: logical_id.clone(),
                name,
                properties: r.get("Properties").cloned().unwrap_or(serde_json::Value::Null),
            });
        }
    }
    let service_role = crate::iam::resolve(&provider_role, &stack, &mut notices)?;
    let mut resolved = Vec::with_capacity(functions.len());
    let names: Vec<(String, String)> = functions
        .iter()
        .map(|(f, ..)| (f.key.clone(), f.name.clone()))
        .collect();
    for (mut function, env_nodes, role_source, destinations, queue_arns) in functions {
        for (index, node, path) in queue_arns {
            let at = At {
                node: &node,
                path: &path,
            };
            let arn = match &node.value {
                Value::Str(s) => s.clone(),
                _ => stack.resolve(&node.to_json()).ok_or_else(|| {
                    at.problem("cannot resolve the queue's ARN locally")
                        .help("use `arn: !GetAtt MyQueue.Arn` for a queue under resources, or the queue's ARN")
                })?,
            };
            let is_stream = matches!(function.events.get(index), Some(Event::Stream(_)));
            let name = match (arn.split(':').collect::<Vec<_>>().as_slice(), is_stream) {
                (["arn", _, "sqs", _, _, name], false) if !name.is_empty() => (*name).to_owned(),
                (["arn", _, "dynamodb", _, _, resource], true) => {
                    match resource.split('/').collect::<Vec<_>>().as_slice() {
                        ["table", table, "stream", _] if !table.is_empty() => (*table).to_owned(),
                        _ => {
                            return Err(at
                                .problem(format!("`{arn}` is not a table stream's ARN"))
                                .help("write `arn: !GetAtt MyTable.StreamArn`"))
                        }
                    }
                }
                (_, true) => {
                    return Err(at
                        .problem(format!("`{arn}` is not a table stream's ARN"))
                        .help("write `arn: !GetAtt MyTable.StreamArn`"))
                }
                _ => {
                    return Err(at
                        .problem(format!("`{arn}` is not a queue ARN"))
                        .help("write arn:aws:sqs:<region>:<account>:<name>, or !GetAtt MyQueue.Arn"))
                }
            };
            match function.events.get_mut(index) {
                Some(Event::Sqs(e)) => e.queue = name,
                Some(Event::Stream(e)) => e.table = name,
                _ => {}
            }
        }
        for (which, node, path) in destinations {
            let at = At {
                node: &node,
                path: &path,
            };
            let target = destination(at, &stack, &names)?;
            if let Destination::Unsupported(arn) = &target {
                notices.push(format!(
                    "{path}: sylph does not deliver to {arn}; each outcome is logged instead"
                ));
            }
            let slot = match which {
                DestinationKind::OnSuccess => &mut function.on_async.on_success,
                DestinationKind::OnFailure => &mut function.on_async.on_failure,
                DestinationKind::DeadLetter => &mut function.on_async.dead_letter,
            };
            *slot = Some(target);
        }
        function.role = match role_source {
            crate::iam::RoleSource::None => service_role.clone(),
            own => crate::iam::resolve(&own, &stack, &mut notices)?,
        };
        for (key, node, path) in env_nodes {
            let at = At {
                node: &node,
                path: &format!("{path}.{key}"),
            };
            let value = match &node.value {
                Value::Null => continue,
                Value::Seq(_) => return Err(at.expected("a string")),
                _ => stack.resolve(&node.to_json()).ok_or_else(|| {
                    at.problem(format!(
                        "cannot resolve {} locally",
                        serde_json::to_string(&node.to_json()).unwrap_or_default()
                    ))
                    .help(format!("sylph resolves Ref, Fn::GetAtt, Fn::Sub, Fn::Join and Fn::Select of resources declared in this file; for anything from outside it, give the value under ImportValue:, GetAtt: or Ref: in {}", crate::params::PARAMS_FILE))
                })?,
            };
            function.environment.insert(key, value);
        }
        // Lambda's own: they win over the function's `environment`.
        let function_node = function_nodes.iter().find(|(k, _)| *k == function.key).map(|(_, n)| n);
        let (logging, platform_logs) = logging_env(provider, function_node, &format!("functions.{}", function.key))?;
        for (key, value) in logging {
            function.environment.insert(key, value);
        }
        function.platform_logs = platform_logs;
        if plugin_names.iter().any(|p| p == "serverless-dotenv-plugin") {
            // The plugin adds every variable of the .env files, below what the file sets.
            for (key, value) in dotenv {
                function.environment.entry(key.clone()).or_insert_with(|| value.clone());
            }
        }
        if let (Some(app), Runtime::Python(_)) = (&wsgi_app, &function.runtime) {
            if function.handler == crate::bundle::WSGI_HANDLER {
                function.handler = crate::bundle::SYLPH_WSGI_HANDLER.to_owned();
                function.environment.insert("SYLPH_WSGI_APP".into(), app.clone());
            }
        }
        resolved.push(function);
    }

    Ok(Loaded {
        service: Service {
            name: name.to_owned(),
            stage,
            region,
            root: dir.to_owned(),
            functions: {
                unserved_events(&resolved, &api_keys, &mut notices);
                resolved
            },
            http_api_cors,
            resources,
            custom,
            package_patterns,
            tables,
            queues,
            api_keys,
            usage_plans,
            node_build,
            python_requirements,
            websocket_route_selection,
        },
        notices,
    })
}

/// `resources:`, which the Framework also takes as a list of fragments (often
/// `${file(resources/table.yml)}` each): the list is merged into one, later fragments adding to
/// and overriding earlier ones key by key (`Resources`, `Outputs`, `Conditions`, …).
fn resources_of(node: &Node) -> Result<serde_json::Value, Problem> {
    let Value::Seq(items) = &node.value else {
        return Ok(node.to_json());
    };
    let mut merged = serde_json::Value::Object(serde_json::Map::new());
    for (i, item) in items.iter().enumerate() {
        match item.to_json() {
            fragment @ serde_json::Value::Object(_) => deep_merge(&mut merged, fragment),
            serde_json::Value::Null => {}
            _ => {
                return Err(At {
                    node: item,
                    path: &format!("resources[{i}]"),
                }
                .expected("a mapping (with Resources, Outputs, …)"))
            }
        }
    }
    Ok(merged)
}

/// Merge `from` into `into`: mappings key by key, anything else replaced.
fn deep_merge(into: &mut serde_json::Value, from: serde_json::Value) {
    match (into, from) {
        (serde_json::Value::Object(a), serde_json::Value::Object(b)) => {
            for (k, v) in b {
                match a.get_mut(&k) {
                    Some(existing) => deep_merge(existing, v),
                    None => {
                        a.insert(k, v);
                    }
                }
            }
        }
        (slot, other) => *slot = other,
    }
}

/// An `AWS::SQS::Queue` as the attributes SQS creates it with: each property that is an SQS
/// attribute, as text, with intrinsics (a RedrivePolicy's `Fn::GetAtt DeadLetters.Arn`)
/// resolved.
fn queue_resource(
    logical_id: &str,
    r: &serde_json::Value,
    stack: &Stack<'_>,
    mark: crate::yaml::Mark,
) -> Result<QueueResource, Problem> {
    let at = |prop: &str| format!("resources.Resources.{logical_id}.Properties.{prop}");
    let name = stack.physical_name(logical_id, 0).ok_or_else(|| {
        Problem::new(mark, at("QueueName"), "cannot resolve the queue name locally")
            .help("use a plain string or variables for QueueName")
    })?;
    let mut attributes = BTreeMap::new();
    let mut tags = BTreeMap::new();
    let empty = serde_json::Map::new();
    let props = r
        .get("Properties")
        .and_then(serde_json::Value::as_object)
        .unwrap_or(&empty);
    let text = |prop: &str, v: &serde_json::Value| -> Result<String, Problem> {
        match v {
            serde_json::Value::String(s) => Ok(s.clone()),
            serde_json::Value::Number(n) => Ok(n.to_string()),
            serde_json::Value::Bool(b) => Ok(b.to_string()),
            other => stack.resolve(other).ok_or_else(|| {
                Problem::new(mark, at(prop), "cannot resolve this value locally")
                    .help("use a plain value, or Ref / Fn::GetAtt of a resource in this file")
            }),
        }
    };
    for (prop, v) in props {
        match prop.as_str() {
            "QueueName" => {}
            "RedrivePolicy" | "RedriveAllowPolicy" => {
                let policy = match v {
                    serde_json::Value::Object(o) => {
                        let mut resolved = serde_json::Map::new();
                        for (k, inner) in o {
                            let value = match inner {
                                serde_json::Value::Object(_) => serde_json::Value::String(text(prop, inner)?),
                                other => other.clone(),
                            };
                            resolved.insert(k.clone(), value);
                        }
                        serde_json::Value::Object(resolved).to_string()
                    }
                    other => text(prop, other)?,
                };
                attributes.insert(prop.clone(), policy);
            }
            "Tags" => {
                for tag in v.as_array().into_iter().flatten() {
                    if let (Some(k), Some(val)) = (tag.get("Key").and_then(|k| k.as_str()), tag.get("Value")) {
                        tags.insert(k.to_owned(), text(prop, val)?);
                    }
                }
            }
            "DelaySeconds"
            | "MaximumMessageSize"
            | "MessageRetentionPeriod"
            | "ReceiveMessageWaitTimeSeconds"
            | "VisibilityTimeout"
            | "FifoQueue"
            | "ContentBasedDeduplication"
            | "DeduplicationScope"
            | "FifoThroughputLimit"
            | "KmsMasterKeyId"
            | "KmsDataKeyReusePeriodSeconds"
            | "SqsManagedSseEnabled" => {
                attributes.insert(prop.clone(), text(prop, v)?);
            }
            other => {
                return Err(Problem::new(
                    mark,
                    at(other),
                    format!("`{other}` is not a property of AWS::SQS::Queue"),
                )
                .help("see the AWS::SQS::Queue reference for the properties it has"))
            }
        }
    }
    Ok(QueueResource {
        logical_id: logical_id.to_owned(),
        name,
        attributes,
        tags,
    })
}

/// Say which events Sylph does not run yet, rather than leave them silently untriggered.
fn unserved_events(functions: &[Function], api_keys: &[sylph_model::ApiKey], notices: &mut Vec<String>) {
    for f in functions {
        for (i, event) in f.events.iter().enumerate() {
            match event {
                Event::Other { kind, .. } => notices.push(format!(
                    "functions.{}.events[{i}]: `{kind}` events are not run by sylph yet; {} runs only when called over HTTP or the Invoke API",
                    f.key, f.key
                )),
                Event::Http(route) => {
                    if let Some(sylph_model::RouteAuthorizer::External { reference }) = &route.authorizer {
                        notices.push(format!(
                            "functions.{}.events[{i}]: authorizer {reference} is defined outside this service and cannot run here: under sylph dev requests pass with the context given by --authorizer-context (or an empty one); sylph server refuses them with 401",
                            f.key
                        ));
                    }
                    if route.private && api_keys.is_empty() {
                        notices.push(format!(
                            "functions.{}.events[{i}]: the route is private but provider.apiGateway.apiKeys lists no key, so every request gets 403",
                            f.key
                        ));
                    }
                }
                _ => {}
            }
        }
    }
}

/// The logical id Serverless Framework gives a function's `AWS::Lambda::Function`.
pub(crate) fn logical_id(key: &str) -> String {
    let mut out = logical_id_base(key);
    out.push_str("LambdaFunction");
    out
}

/// A key normalized as the Framework does for logical ids (`my-fn` → `MyDashfn`).
pub(crate) fn logical_id_base(key: &str) -> String {
    let mut out = String::with_capacity(key.len() + 14);
    let mut upper = true;
    for ch in key.chars() {
        match ch {
            '-' => out.push_str("Dash"),
            '_' => out.push_str("Underscore"),
            c if upper => {
                out.extend(c.to_uppercase());
                upper = false;
                continue;
            }
            c => out.push(c),
        }
        upper = false;
    }
    out
}

fn check_name(at: At<'_, '_>, name: &str) -> Result<(), Problem> {
    let valid = !name.is_empty()
        && name.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    if valid {
        Ok(())
    } else {
        Err(at
            .problem(format!("service name `{name}` is not valid"))
            .help("start with a letter and use only letters, digits and hyphens"))
    }
}

fn runtime(at: At<'_, '_>) -> Result<Runtime, Problem> {
    let id = at.str()?;
    Runtime::parse(id).ok_or_else(|| {
        at.problem(format!("runtime `{id}` is not supported")).help(format!(
            "use one of: {} (older and newer nodejsN.x and python3.N run on the closest interpreter installed)",
            Runtime::SUPPORTED.join(", ")
        ))
    })
}

fn memory(node: &Node, path: &str) -> Result<Option<u32>, Problem> {
    field(node, "memorySize")
        .map(|n| {
            At {
                node: n,
                path: &format!("{path}.memorySize"),
            }
            .number(128, 10240)
            .map(|v| v as u32)
        })
        .transpose()
}

/// `allowedOutboundHosts` of the function, else of the provider: where a WebAssembly function
/// may send HTTP requests (`scheme://host:port`, `*` wildcards).
fn outbound_hosts(node: &Node, provider: &Node, path: &str) -> Result<Vec<sylph_model::OutboundHost>, Problem> {
    let (list, list_path) = match field(node, "allowedOutboundHosts") {
        Some(n) => (n, format!("{path}.allowedOutboundHosts")),
        None => match field(provider, "allowedOutboundHosts") {
            Some(n) => (n, "provider.allowedOutboundHosts".to_owned()),
            None => return Ok(Vec::new()),
        },
    };
    let items = At {
        node: list,
        path: &list_path,
    }
    .items()?;
    let mut hosts = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let at = At {
            node: item,
            path: &format!("{list_path}[{i}]"),
        };
        let host = sylph_model::OutboundHost::parse(at.str()?).map_err(|why| {
            at.problem(why)
                .help("for example `https://api.example.com` or `http://127.0.0.1:8080`")
        })?;
        hosts.push(host);
    }
    Ok(hosts)
}

fn timeout(node: &Node, path: &str) -> Result<Option<u64>, Problem> {
    field(node, "timeout")
        .map(|n| {
            At {
                node: n,
                path: &format!("{path}.timeout"),
            }
            .number(1, 900)
            .map(|v| v as u64)
        })
        .transpose()
}

/// Lambda's logging settings (`LoggingConfig`) from `provider.logs.lambda` and the function's
/// `logs`, each key from the function if it sets it, else from the provider (as the Serverless
/// Framework v4 merges them), as the variables Lambda gives the runtimes:
/// `AWS_LAMBDA_LOG_FORMAT` (`JSON` or `Text`) and, with the JSON format only (levels need it),
/// `AWS_LAMBDA_LOG_LEVEL` (the application log level; INFO, Lambda's default, when unset).
/// With the JSON format the platform's lines are JSON records too, unless `systemLogLevel` is WARN.
fn logging_env(
    provider: &Node,
    function: Option<&Node>,
    path: &str,
) -> Result<(Vec<(String, String)>, sylph_model::PlatformLogs), Problem> {
    let provider_logs = field(provider, "logs").and_then(|l| field(l, "lambda"));
    let function_logs = function.and_then(|f| field(f, "logs"));
    let one_of = |key: &str, allowed: &[&str]| -> Result<Option<String>, Problem> {
        let found = match function_logs.and_then(|l| field(l, key)) {
            Some(n) => Some((n, format!("{path}.logs.{key}"))),
            None => provider_logs
                .and_then(|l| field(l, key))
                .map(|n| (n, format!("provider.logs.lambda.{key}"))),
        };
        let Some((node, at_path)) = found else {
            return Ok(None);
        };
        let at = At { node, path: &at_path };
        let value = at.str()?;
        if !allowed.contains(&value) {
            return Err(at
                .problem(format!("`{value}` is not a {key}"))
                .help(format!("use one of: {}", allowed.join(", "))));
        }
        Ok(Some(value.to_owned()))
    };
    let format = one_of("logFormat", &["JSON", "Text"])?;
    let level = one_of(
        "applicationLogLevel",
        &["TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"],
    )?;
    let system = one_of("systemLogLevel", &["DEBUG", "INFO", "WARN"])?;
    let mut env = Vec::new();
    let mut platform = sylph_model::PlatformLogs::Text;
    if let Some(format) = format {
        if format == "JSON" {
            env.push((
                "AWS_LAMBDA_LOG_LEVEL".to_owned(),
                level.unwrap_or_else(|| "INFO".to_owned()),
            ));
            platform = if system.as_deref() == Some("WARN") {
                sylph_model::PlatformLogs::JsonWarnOnly
            } else {
                sylph_model::PlatformLogs::Json
            };
        }
        env.push(("AWS_LAMBDA_LOG_FORMAT".to_owned(), format));
    }
    Ok((env, platform))
}

/// `environment:` entries as (name, value node, path of the mapping).
fn environment_nodes(node: &Node, path: &str) -> Result<Vec<(String, Node, String)>, Problem> {
    let Some(env) = field(node, "environment") else {
        return Ok(Vec::new());
    };
    let env_path = format!("{path}.environment");
    let entries = At {
        node: env,
        path: &env_path,
    }
    .entries()?;
    let mut out = Vec::with_capacity(entries.len());
    for (k, v) in entries {
        let valid = k.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
            && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            return Err(At {
                node: v,
                path: &format!("{env_path}.{k}"),
            }
            .problem(format!("`{k}` is not a valid environment variable name"))
            .help("start with a letter and use only letters, digits and underscores"));
        }
        out.push((k.clone(), v.clone(), env_path.clone()));
    }
    Ok(out)
}

/// The plugins listed, after a notice for each that Sylph does not run (bundlers are left to
/// [`crate::bundle`], which says what it does instead).
fn plugins(node: &Node, notices: &mut Vec<String>) -> Result<Vec<String>, Problem> {
    // v3 also allows `plugins: { localPath: ..., modules: [...] }`.
    let list = match field(node, "modules") {
        Some(modules) => At {
            node: modules,
            path: "plugins.modules",
        }
        .strings()?,
        None => At { node, path: "plugins" }.strings()?,
    };
    for plugin in &list {
        match REPLACED_PLUGINS.iter().find(|(name, _)| name == plugin) {
            Some((name, why)) => notices.push(format!("plugin {name} is not needed: {why}")),
            None if crate::bundle::BUILD_PLUGINS.contains(&plugin.as_str()) || crate::bundle::is_bundler(plugin) => {}
            None => notices.push(format!("plugin {plugin} is not run by sylph")),
        }
    }
    Ok(list)
}

/// The routes declared so far, to refuse a second function on the same method and path (API
/// Gateway refuses to deploy it; serving one of the two would hide the other).
#[derive(Default)]
struct RoutesSeen {
    /// (API flavour, method, path shape) and where it was declared.
    seen: Vec<(ApiKind, String, String, String)>,
    /// WebSocket route keys and where each was declared.
    websocket: Vec<(String, String)>,
}

impl RoutesSeen {
    fn check_websocket(&mut self, at: At<'_, '_>, route: WebSocketRoute) -> Result<WebSocketRoute, Problem> {
        if let Some((.., first)) = self.websocket.iter().find(|(key, _)| *key == route.route) {
            return Err(at
                .problem(format!("WebSocket route `{}` is already taken by {first}", route.route))
                .help("each route key goes to one function"));
        }
        self.websocket.push((route.route.clone(), at.path.to_owned()));
        Ok(route)
    }

    fn check(&mut self, at: At<'_, '_>, route: HttpRoute) -> Result<HttpRoute, Problem> {
        let method = route.method.clone().unwrap_or_else(|| "ANY".into());
        // `/items/{id}` and `/items/{itemId}` are one resource to API Gateway.
        let shape: Vec<&str> = route
            .path
            .split('/')
            .map(|seg| match (seg.starts_with('{'), seg.ends_with("+}")) {
                (true, true) => "{+}",
                (true, false) => "{}",
                _ => seg,
            })
            .collect();
        let shape = shape.join("/");
        if let Some((.., first)) = self
            .seen
            .iter()
            .find(|(api, m, p, _)| *api == route.api && *m == method && *p == shape)
        {
            return Err(at
                .problem(format!("{method} {} is already a route of {first}", route.path))
                .help("API Gateway takes one integration per method and path: remove one of them, or change its path or method"));
        }
        self.seen.push((route.api, method, shape, at.path.to_owned()));
        Ok(route)
    }
}

/// A `websocket` event: `websocket: $connect`, or a mapping with `route`, `authorizer` (on
/// `$connect`) and `routeResponseSelectionExpression`.
fn websocket_event(at: At<'_, '_>, auth: &AuthContext) -> Result<WebSocketRoute, Problem> {
    let (route, authorizer, respond) = match &at.node.value {
        Value::Str(route) => (route.clone(), None, false),
        Value::Map(_) => {
            let route_node = field(at.node, "route").ok_or_else(|| {
                at.problem("`route` is missing")
                    .help("add `route: $default` (or $connect, $disconnect, a route key)")
            })?;
            let route = At {
                node: route_node,
                path: &format!("{}.route", at.path),
            }
            .str()?
            .to_owned();
            let authorizer = match field(at.node, "authorizer") {
                Some(n) => {
                    let a_at = At {
                        node: n,
                        path: &format!("{}.authorizer", at.path),
                    };
                    if route != "$connect" {
                        return Err(a_at
                            .problem(format!(
                                "an authorizer runs on the $connect route only, not on `{route}`"
                            ))
                            .help("move `authorizer` to the function with `route: $connect`"));
                    }
                    Some(crate::auth::websocket_authorizer(a_at, auth)?)
                }
                None => None,
            };
            let respond = match field(at.node, "routeResponseSelectionExpression") {
                Some(n) => {
                    let r_at = At {
                        node: n,
                        path: &format!("{}.routeResponseSelectionExpression", at.path),
                    };
                    if r_at.str()? != "$default" {
                        return Err(r_at.problem("the only route response selection expression is `$default`"));
                    }
                    true
                }
                None => false,
            };
            (route, authorizer, respond)
        }
        _ => return Err(at.expected("a route key such as `$default`, or a mapping with `route`")),
    };
    if route.is_empty() || route.len() > 128 {
        return Err(at.problem("a route key is 1 to 128 characters"));
    }
    Ok(WebSocketRoute {
        route,
        authorizer,
        respond,
    })
}

/// `provider.websocketsApiRouteSelectionExpression`: `$request.body.<path>`.
fn route_selection(provider: &Node) -> Result<Vec<String>, Problem> {
    let Some(n) = field(provider, "websocketsApiRouteSelectionExpression") else {
        return Ok(vec!["action".to_owned()]);
    };
    let at = At {
        node: n,
        path: "provider.websocketsApiRouteSelectionExpression",
    };
    let text = at.str()?;
    let path: Vec<String> = text
        .strip_prefix("$request.body.")
        .map(|p| p.split('.').map(str::to_owned).collect())
        .unwrap_or_default();
    if path.is_empty() || path.iter().any(String::is_empty) {
        return Err(at
            .problem(format!("`{text}` is not a route selection expression"))
            .help("write `$request.body.action` (a field of the message's JSON body)"));
    }
    Ok(path)
}

const METHODS: &[&str] = &["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"];

/// Parse one entry of `events:` into `out` (a `schedule` with a list of rates becomes one
/// event per rate). An `sqs` event's ARN node goes to `queue_arns` with the event's index.
fn event(
    node: &Node,
    path: &str,
    function_name: &str,
    auth: &AuthContext,
    routes: &mut RoutesSeen,
    out: &mut Vec<Event>,
    queue_arns: &mut Vec<(usize, Node, String)>,
) -> Result<(), Problem> {
    let at = At { node, path };
    let entries = at
        .entries()
        .map_err(|p| p.help("an event is a mapping such as `- http: GET hello`"))?;
    let [(kind, config)] = entries else {
        return Err(at.problem("an event must have exactly one key (http, httpApi, schedule, …)"));
    };
    let path = format!("{path}.{kind}");
    let at = At {
        node: config,
        path: &path,
    };
    match kind.as_str() {
        "http" => out.push(Event::Http(routes.check(at, http_event(at, auth)?)?)),
        "httpApi" => out.push(Event::Http(routes.check(at, http_api_event(at, auth)?)?)),
        "websocket" => out.push(Event::WebSocket(
            routes.check_websocket(at, websocket_event(at, auth)?)?,
        )),
        "sqs" => {
            let (event, arn, arn_path) = sqs_event(at)?;
            queue_arns.push((out.len(), arn, arn_path));
            out.push(Event::Sqs(event));
        }
        "stream" => match stream_event(at)? {
            Some((event, arn, arn_path)) => {
                queue_arns.push((out.len(), arn, arn_path));
                out.push(Event::Stream(event));
            }
            // A Kinesis stream: not served.
            None => out.push(Event::Other {
                kind: "stream (kinesis)".into(),
                config: config.to_json(),
            }),
        },
        "schedule" => {
            let before = out.iter().filter(|e| matches!(e, Event::Schedule(_))).count();
            out.extend(
                schedule_events(at, function_name, before)?
                    .into_iter()
                    .map(Event::Schedule),
            );
        }
        // An EventBridge rule with `schedule:` is a scheduled rule: the same as `schedule`.
        "eventBridge" if field(config, "schedule").is_some() && field(config, "pattern").is_none() => {
            let Value::Map(entries) = &config.value else {
                return Err(at.expected("a mapping"));
            };
            let as_schedule: Vec<(String, Node)> = entries
                .iter()
                .filter_map(|(k, v)| match k.as_str() {
                    "schedule" => Some(("rate".to_owned(), v.clone())),
                    "enabled" | "input" | "inputPath" | "inputTransformer" | "name" | "description" => {
                        Some((k.clone(), v.clone()))
                    }
                    _ => None,
                })
                .collect();
            let node = Node::new(Value::Map(as_schedule), config.mark);
            let before = out.iter().filter(|e| matches!(e, Event::Schedule(_))).count();
            out.extend(
                schedule_events(
                    At {
                        node: &node,
                        path: &path,
                    },
                    function_name,
                    before,
                )?
                .into_iter()
                .map(Event::Schedule),
            );
        }
        _ => out.push(Event::Other {
            kind: kind.clone(),
            config: config.to_json(),
        }),
    }
    Ok(())
}

/// A `schedule` event: `schedule: rate(1 hour)`, or a mapping with `rate` (one expression or a
/// list), `enabled`, `name`, `method`, `timezone`, and one of `input`, `inputPath` or
/// `inputTransformer`. `earlier` schedules of the function come before it (for default names).
fn schedule_events(at: At<'_, '_>, function_name: &str, earlier: usize) -> Result<Vec<ScheduleEvent>, Problem> {
    let sub = |key: &str| field(at.node, key).map(|n| (n, format!("{}.{key}", at.path)));
    let (rates_node, rates_path) = match &at.node.value {
        Value::Str(_) => (at.node, at.path.to_owned()),
        Value::Map(_) => sub("rate").ok_or_else(|| {
            at.problem("`rate` is missing")
                .help("add `rate: rate(1 hour)` or `rate: cron(0 12 * * ? *)`")
        })?,
        _ => return Err(at.expected("a schedule expression or a mapping with `rate`")),
    };
    let rates = At {
        node: rates_node,
        path: &rates_path,
    };
    let expressions = rates.strings()?;
    let method = match sub("method") {
        Some((n, p)) => match (At { node: n, path: &p }).str()? {
            "scheduler" => true,
            "eventBus" => false,
            other => {
                return Err(At { node: n, path: &p }
                    .problem(format!("method `{other}` is not a schedule method"))
                    .help("use `eventBus` (an EventBridge rule, the default) or `scheduler` (EventBridge Scheduler)"))
            }
        },
        None => false,
    };
    let timezone = match sub("timezone") {
        Some((n, p)) => {
            let at = At { node: n, path: &p };
            if !method {
                return Err(at
                    .problem("`timezone` needs `method: scheduler`")
                    .help("EventBridge rules run in UTC; add `method: scheduler` for a time zone"));
            }
            let name = at.str()?;
            sylph_schedule::time_zone(Some(name)).map_err(|e| at.problem(e.0))?;
            Some(name.to_owned())
        }
        None => None,
    };
    for (i, text) in expressions.iter().enumerate() {
        let (node, path) = match &rates_node.value {
            Value::Seq(items) => (&items[i], format!("{rates_path}[{i}]")),
            _ => (rates_node, rates_path.clone()),
        };
        sylph_schedule::Schedule::parse(text, timezone.as_deref(), method).map_err(|e| {
            At { node, path: &path }
                .problem(e.0)
                .help("see https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-scheduled-rule-pattern.html")
        })?;
    }
    let enabled = match sub("enabled") {
        Some((n, p)) => At { node: n, path: &p }.bool()?,
        None => true,
    };
    let inputs: Vec<(&Node, String)> = ["input", "inputPath", "inputTransformer"]
        .iter()
        .filter_map(|k| sub(k))
        .collect();
    let input = match inputs.as_slice() {
        [] => ScheduleInput::Event,
        [(node, path)] => {
            let at = At { node, path };
            let key = path.rsplit('.').next().unwrap_or_default();
            if method && key != "input" {
                return Err(at
                    .problem(format!("`{key}` is not available with `method: scheduler`"))
                    .help("use `input`, or drop `method: scheduler`"));
            }
            schedule_input(at, key)?
        }
        [_, (node, path), ..] => {
            return Err(At { node, path }
                .problem("`input`, `inputPath` and `inputTransformer` exclude each other")
                .help("keep one of them"))
        }
    };
    let name = match sub("name") {
        Some((n, p)) => Some(At { node: n, path: &p }.str()?.to_owned()),
        None => None,
    };
    let count = expressions.len();
    Ok(expressions
        .into_iter()
        .enumerate()
        .map(|(i, expression)| ScheduleEvent {
            expression,
            name: match (&name, count) {
                (Some(name), 1) => name.clone(),
                (Some(name), _) => format!("{name}-{}", i + 1),
                (None, _) => format!("{function_name}-schedule-{}", earlier + i + 1),
            },
            enabled,
            scheduler: method,
            timezone: timezone.clone(),
            input: input.clone(),
        })
        .collect())
}

/// `functionResponseType` of an event source mapping: whether it is ReportBatchItemFailures.
fn report_batch_item_failures(at: At<'_, '_>) -> Result<bool, Problem> {
    let Some(node) = field(at.node, "functionResponseType") else {
        return Ok(false);
    };
    let at = At {
        node,
        path: &format!("{}.functionResponseType", at.path),
    };
    match at.str()? {
        "ReportBatchItemFailures" => Ok(true),
        other => Err(at
            .problem(format!("functionResponseType `{other}` is not one AWS has"))
            .help("use ReportBatchItemFailures, or remove it")),
    }
}

/// `filterPatterns` of an event source mapping, each checked as an EventBridge pattern.
fn filter_patterns(at: At<'_, '_>) -> Result<Vec<serde_json::Value>, Problem> {
    let Some(node) = field(at.node, "filterPatterns") else {
        return Ok(Vec::new());
    };
    let path = format!("{}.filterPatterns", at.path);
    At { node, path: &path }
        .items()?
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let value = item.to_json();
            sylph_schedule::pattern::Pattern::parse(&value).map_err(|e| {
                At {
                    node: item,
                    path: &format!("{path}[{i}]"),
                }
                .problem(e.0)
            })?;
            Ok(value)
        })
        .collect()
}

/// An `sqs` event: `sqs: <arn>` or a mapping with `arn` and the batching settings; the ARN
/// node is returned to be resolved later.
fn sqs_event(at: At<'_, '_>) -> Result<(SqsEvent, Node, String), Problem> {
    let sub = |key: &str| field(at.node, key).map(|n| (n, format!("{}.{key}", at.path)));
    let (arn, arn_path) = match &at.node.value {
        Value::Str(_) => (at.node.clone(), at.path.to_owned()),
        Value::Map(_) if field(at.node, "arn").is_some() => {
            let (n, p) = sub("arn").expect("checked");
            (n.clone(), p)
        }
        Value::Map(_) => {
            // `sqs: !GetAtt Queue.Arn` arrives as a mapping holding the intrinsic.
            if at.node.get("Fn::GetAtt").is_some() || at.node.get("Ref").is_some() || at.node.get("Fn::Sub").is_some() {
                (at.node.clone(), at.path.to_owned())
            } else {
                return Err(at.problem("`arn` is missing").help("add `arn: !GetAtt MyQueue.Arn`"));
            }
        }
        _ => return Err(at.expected("a queue ARN or a mapping with `arn`")),
    };
    let number = |key: &str, min: i64, max: i64| -> Result<Option<u32>, Problem> {
        match sub(key) {
            Some((n, p)) => Ok(Some(At { node: n, path: &p }.number(min, max)? as u32)),
            None => Ok(None),
        }
    };
    let batch_size = number("batchSize", 1, 10_000)?.unwrap_or(10);
    let window = number("maximumBatchingWindow", 0, 300)?.unwrap_or(0);
    if batch_size > 10 && window == 0 {
        let (n, p) = sub("batchSize").expect("set above 10");
        return Err(At { node: n, path: &p }
            .problem(format!("a batchSize of {batch_size} needs maximumBatchingWindow"))
            .help("AWS allows more than 10 messages per batch only with `maximumBatchingWindow: 1` or more seconds"));
    }
    let report = report_batch_item_failures(at)?;
    let enabled = match sub("enabled") {
        Some((n, p)) => At { node: n, path: &p }.bool()?,
        None => true,
    };
    let filter_patterns = filter_patterns(at)?;
    Ok((
        SqsEvent {
            queue: String::new(),
            batch_size,
            maximum_batching_window: window,
            report_batch_item_failures: report,
            maximum_concurrency: number("maximumConcurrency", 2, 1000)?,
            enabled,
            filter_patterns,
        },
        arn,
        arn_path,
    ))
}

/// A `stream` event of a table (`type: dynamodb`, or an ARN of a table's stream); `None` for a
/// Kinesis stream. The ARN node is returned to be resolved later.
fn stream_event(at: At<'_, '_>) -> Result<Option<(StreamEvent, Node, String)>, Problem> {
    let sub = |key: &str| field(at.node, key).map(|n| (n, format!("{}.{key}", at.path)));
    let (arn, arn_path) = match &at.node.value {
        Value::Str(_) => (at.node.clone(), at.path.to_owned()),
        Value::Map(_) if field(at.node, "arn").is_some() => {
            let (n, p) = sub("arn").expect("checked");
            (n.clone(), p)
        }
        Value::Map(_) if at.node.get("Fn::GetAtt").is_some() => (at.node.clone(), at.path.to_owned()),
        Value::Map(_) => {
            return Err(at
                .problem("`arn` is missing")
                .help("add `arn: !GetAtt MyTable.StreamArn`"))
        }
        _ => return Err(at.expected("a stream ARN or a mapping with `arn`")),
    };
    if let Some((n, p)) = sub("type") {
        match (At { node: n, path: &p }).str()? {
            "dynamodb" => {}
            "kinesis" => return Ok(None),
            other => {
                return Err(At { node: n, path: &p }
                    .problem(format!("stream type `{other}` is not one AWS has"))
                    .help("use dynamodb (or kinesis)"))
            }
        }
    } else if let Value::Str(s) = &arn.value {
        if s.contains(":kinesis:") {
            return Ok(None);
        }
    }
    let number = |key: &str, min: i64, max: i64| -> Result<Option<i64>, Problem> {
        match sub(key) {
            Some((n, p)) => Ok(Some(At { node: n, path: &p }.number(min, max)?)),
            None => Ok(None),
        }
    };
    let from_oldest = match sub("startingPosition") {
        Some((n, p)) => match (At { node: n, path: &p }).str()? {
            "TRIM_HORIZON" => true,
            "LATEST" => false,
            other => {
                return Err(At { node: n, path: &p }
                    .problem(format!("startingPosition `{other}` is not one a table stream takes"))
                    .help("use TRIM_HORIZON or LATEST"))
            }
        },
        None => false,
    };
    let flag = |key: &str| -> Result<Option<bool>, Problem> {
        match sub(key) {
            Some((n, p)) => Ok(Some(At { node: n, path: &p }.bool()?)),
            None => Ok(None),
        }
    };
    let report = report_batch_item_failures(at)?;
    let filter_patterns = filter_patterns(at)?;
    let on_failure = match sub("destinations")
        .and_then(|(n, p)| field(n, "onFailure").map(|f| (f.clone(), format!("{p}.onFailure"))))
    {
        Some((n, p)) => {
            let at = At { node: &n, path: &p };
            let arn = match &n.value {
                Value::Str(s) => s.clone(),
                Value::Map(_) => match field(&n, "arn") {
                    Some(a) => match &a.value {
                        Value::Str(s) => s.clone(),
                        _ => {
                            return Err(at
                                .problem("give the destination's ARN as text here")
                                .help("write arn:aws:sqs:<region>:<account>:<queue>"))
                        }
                    },
                    None => return Err(at.problem("`arn` is missing")),
                },
                _ => return Err(at.expected("an ARN")),
            };
            Some(match arn.split(':').collect::<Vec<_>>().as_slice() {
                ["arn", _, "sqs", _, _, name] => Destination::Queue((*name).to_owned()),
                _ => Destination::Unsupported(arn),
            })
        }
        None => None,
    };
    let maximum_retry_attempts = match number("maximumRetryAttempts", -1, 10_000)? {
        None | Some(-1) => None,
        Some(n) => Some(n as u32),
    };
    let maximum_record_age = match number("maximumRecordAgeInSeconds", -1, 604_800)? {
        None | Some(-1) => None,
        Some(n) if n < 60 => {
            let (node, p) = sub("maximumRecordAgeInSeconds").expect("set");
            return Err(
                At { node, path: &p }.problem(format!("{n} is out of range; use -1 or a value from 60 to 604800"))
            );
        }
        Some(n) => Some(n as u32),
    };
    Ok(Some((
        StreamEvent {
            table: String::new(),
            batch_size: number("batchSize", 1, 10_000)?.unwrap_or(100) as u32,
            maximum_batching_window: number("maximumBatchingWindow", 0, 300)?.unwrap_or(0) as u32,
            from_oldest,
            maximum_retry_attempts,
            maximum_record_age,
            bisect_batch_on_function_error: flag("bisectBatchOnFunctionError")?.unwrap_or(false),
            report_batch_item_failures: report,
            enabled: flag("enabled")?.unwrap_or(true),
            filter_patterns,
            on_failure,
        },
        arn,
        arn_path,
    )))
}

fn schedule_input(at: At<'_, '_>, key: &str) -> Result<ScheduleInput, Problem> {
    let json_path = |at: At<'_, '_>| -> Result<String, Problem> {
        let text = at.str()?;
        sylph_schedule::json_path::JsonPath::parse(text).map_err(|e| at.problem(e.0))?;
        Ok(text.to_owned())
    };
    match key {
        // A string is JSON text, as the Framework passes it to EventBridge.
        "input" => match &at.node.value {
            Value::Str(text) => serde_json::from_str(text).map(ScheduleInput::Constant).map_err(|e| {
                at.problem(format!("`input` is not JSON: {e}"))
                    .help("write the input as YAML, or as JSON text")
            }),
            _ => Ok(ScheduleInput::Constant(at.node.to_json())),
        },
        "inputPath" => Ok(ScheduleInput::Path(json_path(at)?)),
        _ => {
            let paths_node = field(at.node, "inputPathsMap");
            let template_node = field(at.node, "inputTemplate").ok_or_else(|| {
                at.problem("`inputTemplate` is missing")
                    .help("add `inputTemplate: '{\"time\": <time>}'` with `inputPathsMap: {time: $.time}`")
            })?;
            let mut paths = BTreeMap::new();
            if let Some(n) = paths_node {
                let map_path = format!("{}.inputPathsMap", at.path);
                for (name, value) in (At {
                    node: n,
                    path: &map_path,
                })
                .entries()?
                {
                    let path = format!("{map_path}.{name}");
                    paths.insert(
                        name.clone(),
                        json_path(At {
                            node: value,
                            path: &path,
                        })?,
                    );
                }
            }
            let template = At {
                node: template_node,
                path: &format!("{}.inputTemplate", at.path),
            }
            .str()?
            .to_owned();
            Ok(ScheduleInput::Transformer { paths, template })
        }
    }
}

#[derive(Clone, Copy)]
enum DestinationKind {
    OnSuccess,
    OnFailure,
    DeadLetter,
}

/// `maximumRetryAttempts`, `maximumEventAge`; and the nodes of `destinations` and `onError`,
/// which are resolved once every function's name is known.
#[allow(clippy::type_complexity)]
fn async_config(node: &Node, path: &str) -> Result<(AsyncConfig, Vec<(DestinationKind, Node, String)>), Problem> {
    let mut config = AsyncConfig::default();
    if let Some(n) = field(node, "maximumRetryAttempts") {
        let p = format!("{path}.maximumRetryAttempts");
        config.maximum_retry_attempts = At { node: n, path: &p }.number(0, 2)? as u32;
    }
    if let Some(n) = field(node, "maximumEventAge") {
        let p = format!("{path}.maximumEventAge");
        config.maximum_event_age = Duration::from_secs(At { node: n, path: &p }.number(60, 21_600)? as u64);
    }
    let mut destinations = Vec::new();
    if let Some(n) = field(node, "destinations") {
        let p = format!("{path}.destinations");
        for (key, value) in (At { node: n, path: &p }).entries()? {
            let kind = match key.as_str() {
                "onSuccess" => DestinationKind::OnSuccess,
                "onFailure" => DestinationKind::OnFailure,
                other => {
                    return Err(At {
                        node: value,
                        path: &format!("{p}.{other}"),
                    }
                    .problem(format!("`{other}` is not a destination"))
                    .help("use onSuccess or onFailure"))
                }
            };
            if value.value != Value::Null {
                destinations.push((kind, value.clone(), format!("{p}.{key}")));
            }
        }
    }
    if let Some(n) = field(node, "onError") {
        destinations.push((DestinationKind::DeadLetter, n.clone(), format!("{path}.onError")));
    }
    Ok((config, destinations))
}

/// A destination: a function of this service (key or name), an ARN, an intrinsic that gives an
/// ARN, or `{type, arn}`.
fn destination(at: At<'_, '_>, stack: &Stack<'_>, names: &[(String, String)]) -> Result<Destination, Problem> {
    let (target, typed) = match &at.node.value {
        Value::Map(_) if field(at.node, "arn").is_some() => {
            let kind = match field(at.node, "type") {
                Some(n) => Some(
                    At {
                        node: n,
                        path: &format!("{}.type", at.path),
                    }
                    .str()?
                    .to_owned(),
                ),
                None => None,
            };
            (field(at.node, "arn").expect("checked"), kind)
        }
        _ => (at.node, None),
    };
    let text = match &target.value {
        Value::Str(s) => s.clone(),
        Value::Map(_) => stack.resolve(&target.to_json()).ok_or_else(|| {
            at.problem("cannot resolve this destination locally")
                .help("use a function name, an ARN, or Fn::GetAtt of a resource in this file")
        })?,
        _ => return Err(at.expected("a function name, an ARN, or a mapping with `arn`")),
    };
    if let Some((_, name)) = names.iter().find(|(key, name)| *key == text || *name == text) {
        return Ok(Destination::Function(name.clone()));
    }
    let parts: Vec<&str> = text.split(':').collect();
    match (parts.as_slice(), typed.as_deref()) {
        (["arn", _, "lambda", _, _, "function", name, ..], None | Some("function")) => {
            Ok(Destination::Function((*name).to_owned()))
        }
        (["arn", _, "sqs", _, _, name], None | Some("sqs")) => Ok(Destination::Queue((*name).to_owned())),
        (["arn", ..], _) => Ok(Destination::Unsupported(text)),
        _ => Err(at
            .problem(format!("`{text}` is neither a function of this service nor an ARN"))
            .help(format!(
                "use one of: {}, or an ARN",
                names.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>().join(", ")
            ))),
    }
}

fn http_event(at: At<'_, '_>, auth: &AuthContext) -> Result<HttpRoute, Problem> {
    let (method, raw_path, cors) = match &at.node.value {
        Value::Str(s) => {
            let (m, p) = split_method_path(at, s, "`GET hello/{id}`")?;
            (m, p, None)
        }
        Value::Map(_) => {
            let method_node = field(at.node, "method").ok_or_else(|| {
                at.problem("`method` is missing")
                    .help("add `method: get` (or post, put, patch, delete, any)")
            })?;
            let path_node =
                field(at.node, "path").ok_or_else(|| at.problem("`path` is missing").help("add `path: hello/{id}`"))?;
            if let Some(n) = field(at.node, "integration") {
                let kind = At {
                    node: n,
                    path: &format!("{}.integration", at.path),
                }
                .str()?;
                if !matches!(kind, "lambda-proxy" | "LAMBDA-PROXY" | "aws_proxy" | "AWS_PROXY") {
                    return Err(At {
                        node: n,
                        path: &format!("{}.integration", at.path),
                    }
                    .problem(format!("integration `{kind}` is not supported"))
                    .help("sylph serves lambda-proxy integrations (the default); remove `integration`"));
                }
            }
            let cors = match field(at.node, "cors") {
                Some(n) => rest_cors(At {
                    node: n,
                    path: &format!("{}.cors", at.path),
                })?,
                None => None,
            };
            let m = At {
                node: method_node,
                path: &format!("{}.method", at.path),
            };
            let p = At {
                node: path_node,
                path: &format!("{}.path", at.path),
            };
            (method(m, m.str()?)?, route_path(p, p.str()?)?, cors)
        }
        _ => return Err(at.expected("a string like `GET hello` or a mapping with `method` and `path`")),
    };
    let (authorizer, private) = match &at.node.value {
        Value::Map(_) => {
            let authorizer = match field(at.node, "authorizer") {
                Some(n) => Some(crate::auth::rest_authorizer(
                    At {
                        node: n,
                        path: &format!("{}.authorizer", at.path),
                    },
                    auth,
                )?),
                None => None,
            };
            let private = match field(at.node, "private") {
                Some(n) => At {
                    node: n,
                    path: &format!("{}.private", at.path),
                }
                .bool()?,
                None => false,
            };
            (authorizer, private)
        }
        _ => (None, false),
    };
    let validation = match field(at.node, "request").filter(|_| matches!(at.node.value, Value::Map(_))) {
        Some(n) => crate::validation::request_validation(At {
            node: n,
            path: &format!("{}.request", at.path),
        })?,
        None => None,
    };
    Ok(HttpRoute {
        api: ApiKind::Rest,
        method,
        path: raw_path,
        catch_all: false,
        cors,
        authorizer,
        private,
        validation,
    })
}

fn http_api_event(at: At<'_, '_>, auth: &AuthContext) -> Result<HttpRoute, Problem> {
    let authorizer = match field(at.node, "authorizer").filter(|_| matches!(at.node.value, Value::Map(_))) {
        Some(n) => Some(crate::auth::http_api_route_authorizer(
            At {
                node: n,
                path: &format!("{}.authorizer", at.path),
            },
            auth,
        )?),
        None => None,
    };
    let (method, path) = match &at.node.value {
        Value::Str(s) if s.trim() == "*" => {
            return Ok(HttpRoute {
                api: ApiKind::Http,
                method: None,
                path: "/{proxy+}".into(),
                catch_all: true,
                cors: None,
                authorizer: None,
                private: false,
                validation: None,
            })
        }
        Value::Str(s) => split_method_path(at, s, "`GET /hello/{id}` or `*`")?,
        Value::Map(_) => {
            let method_node = field(at.node, "method");
            let path_node = field(at.node, "path")
                .ok_or_else(|| at.problem("`path` is missing").help("add `path: /hello/{id}`"))?;
            let p = At {
                node: path_node,
                path: &format!("{}.path", at.path),
            };
            let m = match method_node {
                Some(n) => {
                    let m = At {
                        node: n,
                        path: &format!("{}.method", at.path),
                    };
                    method(m, m.str()?)?
                }
                None => None,
            };
            if p.str()? == "*" {
                return Ok(HttpRoute {
                    api: ApiKind::Http,
                    method: m,
                    path: "/{proxy+}".into(),
                    catch_all: true,
                    cors: None,
                    authorizer,
                    private: false,
                    validation: None,
                });
            }
            (m, route_path(p, p.str()?)?)
        }
        _ => return Err(at.expected("a string like `GET /hello` or a mapping with `method` and `path`")),
    };
    Ok(HttpRoute {
        api: ApiKind::Http,
        method,
        path,
        catch_all: false,
        cors: None,
        authorizer,
        private: false,
        validation: None,
    })
}

fn split_method_path(at: At<'_, '_>, s: &str, example: &str) -> Result<(Option<String>, String), Problem> {
    let mut parts = s.split_whitespace();
    match (parts.next(), parts.next(), parts.next()) {
        (Some(m), Some(p), None) => Ok((method(at, m)?, route_path(at, p)?)),
        _ => Err(at
            .problem(format!("`{s}` is not a route"))
            .help(format!("write it as {example}"))),
    }
}

fn method(at: At<'_, '_>, m: &str) -> Result<Option<String>, Problem> {
    let upper = m.to_ascii_uppercase();
    if upper == "ANY" || upper == "*" {
        return Ok(None);
    }
    if METHODS.contains(&upper.as_str()) {
        Ok(Some(upper))
    } else {
        Err(at
            .problem(format!("`{m}` is not an HTTP method"))
            .help("use get, post, put, patch, delete, head, options or any"))
    }
}

fn route_path(at: At<'_, '_>, raw: &str) -> Result<String, Problem> {
    let trimmed = raw.trim().trim_matches('/');
    let mut out = String::with_capacity(trimmed.len() + 1);
    let segments: Vec<&str> = if trimmed.is_empty() {
        Vec::new()
    } else {
        trimmed.split('/').collect()
    };
    for (i, seg) in segments.iter().enumerate() {
        if seg.is_empty() {
            return Err(at.problem(format!("path `{raw}` has an empty segment (`//`)")));
        }
        if seg.starts_with('{') != seg.ends_with('}') || (seg.contains(['{', '}']) && !seg.starts_with('{')) {
            return Err(at
                .problem(format!("path segment `{seg}` is not valid"))
                .help("a path parameter takes a whole segment: `/items/{id}`"));
        }
        if seg.ends_with("+}") && i + 1 != segments.len() {
            return Err(at.problem(format!("greedy parameter `{seg}` must be the last segment of the path")));
        }
        out.push('/');
        out.push_str(seg);
    }
    if out.is_empty() {
        out.push('/');
    }
    Ok(out)
}

/// The `cors` settings of one API flavour: the field names and what `true` means.
struct CorsFields {
    default: fn() -> Cors,
    origin: Option<&'static str>,
    origins: &'static str,
    headers: &'static str,
    methods: &'static str,
}

const REST_CORS: CorsFields = CorsFields {
    default: Cors::rest_default,
    origin: Some("origin"),
    origins: "origins",
    headers: "headers",
    methods: "methods",
};
const HTTP_API_CORS: CorsFields = CorsFields {
    default: Cors::http_api_default,
    origin: None,
    origins: "allowedOrigins",
    headers: "allowedHeaders",
    methods: "allowedMethods",
};

fn rest_cors(at: At<'_, '_>) -> Result<Option<Cors>, Problem> {
    cors(at, &REST_CORS)
}

fn http_api_cors(at: At<'_, '_>) -> Result<Option<Cors>, Problem> {
    cors(at, &HTTP_API_CORS)
}

/// `cors: true`, `false` or the object form.
fn cors(at: At<'_, '_>, fields: &CorsFields) -> Result<Option<Cors>, Problem> {
    match &at.node.value {
        Value::Bool(false) => Ok(None),
        Value::Bool(true) => Ok(Some((fields.default)())),
        Value::Map(_) => {
            let mut cors = (fields.default)();
            let sub = |k: &str| field(at.node, k).map(|n| (n, format!("{}.{k}", at.path)));
            if let Some((n, p)) = fields.origin.and_then(sub) {
                cors.allow_origins = vec![At { node: n, path: &p }.str()?.to_owned()];
            }
            if let Some((n, p)) = sub(fields.origins) {
                cors.allow_origins = At { node: n, path: &p }.strings()?;
            }
            if let Some((n, p)) = sub(fields.headers) {
                cors.allow_headers = At { node: n, path: &p }.strings()?;
            }
            if let Some((n, p)) = sub(fields.methods) {
                cors.allow_methods = At { node: n, path: &p }.strings()?;
            }
            if let Some((n, p)) = sub("allowCredentials") {
                cors.allow_credentials = At { node: n, path: &p }.bool()?;
            }
            if let Some((n, p)) = sub("exposedResponseHeaders") {
                cors.expose_headers = At { node: n, path: &p }.strings()?;
            }
            if let Some((n, p)) = sub("maxAge") {
                cors.max_age = Some(At { node: n, path: &p }.number(0, 86400)? as u64);
            }
            Ok(Some(cors))
        }
        _ => Err(at.expected("true, false or a mapping")),
    }
}

#[cfg(test)]
mod tests {
    use super::logical_id;

    #[test]
    fn logical_ids_match_serverless_framework() {
        assert_eq!(logical_id("hello"), "HelloLambdaFunction");
        assert_eq!(logical_id("get-todo"), "GetDashtodoLambdaFunction");
    }
}
