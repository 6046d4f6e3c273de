//! Wiring one service up to run: its process runtime (sandbox, network, limits, identities,
//! pre-started runtimes), its pool and its gateway. `sylph dev` hosts one service this way;
//! `sylph server` hosts each deployed version this way.

use std::sync::Arc;
use std::time::Duration;

use sylph_gateway::Gateway;
use sylph_invoker::{Pool, PoolConfig};
use sylph_model::Service;
use sylph_runtime::{BoxFuture, Instance, InstanceConfig, ProcessRuntime, Runtime, StartError};
use sylph_wasm::WasmRuntime;

/// How services are run (the flags `sylph dev` and `sylph server` share).
#[derive(Debug, Clone)]
pub struct HostSettings {
    pub keep_warm: Duration,
    pub concurrency: usize,
    pub queue_timeout: Duration,
    pub prewarm: usize,
    pub unsandboxed: bool,
    pub host_network: bool,
    pub no_iam: bool,
    pub strict_iam: bool,
    /// The port the server listens on; functions reach Sylph's APIs at 127.0.0.1 on it.
    pub port: u16,
    /// The URL functions use when they share the host's network.
    pub host_url: String,
    /// The published version being hosted (`sylph server`), named in START lines.
    pub version: Option<u32>,
}

/// One service, running.
pub struct Hosted {
    pub runtime: ProcessRuntime,
    pub pool: Arc<Pool>,
    pub gateway: Arc<Gateway>,
    /// The credentials its instances were issued (`None` with `--no-iam`).
    pub identities: Option<Arc<sylph_iam::Registry>>,
}

impl Hosted {
    /// Stop its pre-started runtimes and idle instances.
    pub fn shutdown(&self) {
        self.runtime.stop_prewarmed();
        // Its WebSocket clients would otherwise stay connected to functions that are gone:
        // closed, they reconnect to the version that serves now.
        self.gateway.close_websockets();
        self.pool.shutdown();
    }
}

/// Run `service` (its code in `service.root`) with `tables`. `say` gets the lines describing
/// how functions are isolated and limited.
pub fn host_service(
    service: &Service,
    tables: sylph_tables::Tables,
    sink: Arc<dyn sylph_telemetry::LogSink>,
    settings: &HostSettings,
    say: &mut dyn FnMut(String),
) -> anyhow::Result<Hosted> {
    let sandbox = crate::options::sandbox(settings.unsandboxed, service, &mut *say)?;
    // Functions reach this server for the Lambda and DynamoDB APIs with no code change: in
    // their own network namespace Sylph serves its APIs at 127.0.0.1 on the same port.
    let isolated_network = !settings.host_network && sandbox.is_some() && sylph_runtime::netns::probe().is_ok();
    let function_url = if isolated_network {
        format!("http://127.0.0.1:{}", settings.port)
    } else {
        settings.host_url.clone()
    };
    // `Ref` of a queue gives `http://sqs.<region>.localhost/<account>/<name>` (the port is not
    // known when the manifest is read); the SQS SDKs send to a queue URL's host, so functions
    // get it at the endpoint they reach Sylph at.
    let local_urls = with_reachable_queue_urls(service, &function_url);
    let service = local_urls.as_ref().unwrap_or(service);
    let mut base_env = crate::options::function_endpoint_env(&function_url);
    // Pre-started runtimes load the AWS SDK before they know their function; the SDK reads its
    // region then, and it is the same for every function of the service.
    base_env.push(("AWS_REGION".to_owned(), service.region.clone()));
    base_env.push(("AWS_DEFAULT_REGION".to_owned(), service.region.clone()));
    let wasm = wasm_runtime(service, sink.clone(), &base_env, &mut *say)?;
    let mut runtime = crate::options::process_runtime(sink.clone(), base_env, sandbox)?;
    // Pre-started runtimes run the interpreter of the service's own runtime ids.
    runtime.prefer_runtimes(&service.functions);
    if settings.host_network && runtime.share_host_network() {
        say(
            "warning: --host-network: functions share this machine's network and can reach every service on it"
                .to_owned(),
        );
    }
    if runtime.network_isolated() {
        runtime.serve_sylph_api_on(settings.port);
        say(format!(
            "network: each instance has its own network namespace (no host loopback, no other instances); Sylph's APIs at 127.0.0.1:{} inside it",
            settings.port
        ));
        if crate::options::outbound_allowed(service) {
            match runtime.allow_outbound() {
                Ok(how) => say(format!("network: {how}")),
                Err(why) => say(format!("network: no outbound traffic: {why}")),
            }
        } else {
            say("network: no outbound traffic (custom.sylph.outbound: false)".to_owned());
        }
    } else if settings.host_network {
        // Said above.
    } else if let Err(why) = sylph_runtime::netns::probe() {
        say(format!("network: functions share the host's network: {why}"));
    }
    match runtime.memory_limits() {
        Some(how) => say(format!("memory limits: memorySize enforced with the {how}")),
        None => say("memory limits: not enforced (no writable memory cgroup on this host)".to_owned()),
    }
    match runtime.process_limits() {
        Some(how) => say(format!(
            "process limits: {} processes and threads per instance, with the {how}",
            sylph_runtime::limits::MAX_PROCESSES
        )),
        None => say("process limits: not enforced (no writable pids cgroup on this host)".to_owned()),
    }
    match runtime.freezing() {
        Some(how) => say(format!(
            "freezer: instances are frozen between invocations, with the {how}"
        )),
        None => {
            say("freezer: not available (no writable freezer cgroup); instances run between invocations".to_owned())
        }
    }
    describe_interpreters(service, &runtime, &mut *say);
    if settings.prewarm > 0 {
        let families: std::collections::HashSet<_> = service
            .functions
            .iter()
            .filter_map(|f| sylph_runtime::Family::of(&f.runtime))
            .collect();
        for family in families {
            runtime.prewarm(family, settings.prewarm, settings.keep_warm);
        }
    }
    let pool = Pool::new(
        service,
        Arc::new(Runtimes {
            process: runtime.clone(),
            wasm: wasm.clone(),
        }),
        sink,
        PoolConfig {
            keep_warm: settings.keep_warm,
            concurrency_limit: settings.concurrency.max(1),
            queue_timeout: settings.queue_timeout,
            extra_env: Vec::new(),
            version: settings.version,
        },
    );
    let (authorizer, identities) = if settings.no_iam {
        say("warning: --no-iam: calls from functions into Sylph are neither authenticated nor checked".to_owned());
        (None, None)
    } else {
        let identities = sylph_iam::Registry::new();
        runtime.set_credential_issuer(Arc::new(crate::options::Issuer(identities.clone())));
        if let Some(wasm) = &wasm {
            wasm.set_credential_issuer(Arc::new(crate::options::Issuer(identities.clone())));
        }
        describe_iam(service, settings.strict_iam, &mut *say);
        (
            Some(Arc::new(sylph_iam::Authorizer::new(
                identities.clone(),
                settings.strict_iam,
            ))),
            Some(identities),
        )
    };
    let gateway = Gateway::new(
        service,
        pool.clone(),
        Some(sylph_gateway::TableApi::Local(tables)),
        Some(pool.clone()),
        authorizer,
    );
    // Weak: the gateway owns the pool, which owns the runtime, which owns this handler; a
    // strong reference would keep a retired version alive forever.
    let api_gateway = Arc::downgrade(&gateway);
    runtime.set_sylph_api_handler(Arc::new(move |stream, access_key, permit| {
        if let Some(gateway) = api_gateway.upgrade() {
            sylph_gateway::spawn_instance_connection(gateway, stream, access_key, permit)
        }
    }));
    if let Some(wasm) = &wasm {
        let api_gateway = Arc::downgrade(&gateway);
        wasm.set_sylph_api(Arc::new(move |stream, access_key| {
            if let Some(gateway) = api_gateway.upgrade() {
                sylph_gateway::spawn_instance_stream(gateway, stream, access_key)
            }
        }));
    }
    Ok(Hosted {
        runtime,
        pool,
        gateway,
        identities,
    })
}

/// Say which interpreter runs which runtimes, and when it is not the version they name (an
/// older runtime such as `nodejs14.x` runs on the machine's Node.js, as with serverless-offline).
fn describe_interpreters(service: &Service, runtime: &ProcessRuntime, say: &mut dyn FnMut(String)) {
    let mut ids: Vec<&sylph_model::Runtime> = service.functions.iter().map(|f| &f.runtime).collect();
    ids.sort_by(|a, b| a.id().cmp(b.id()));
    ids.dedup();
    // Runtime ids grouped by the interpreter that serves them: (interpreter, ids, notes).
    let mut lines: Vec<(sylph_runtime::Interpreter, Vec<&str>, Vec<String>)> = Vec::new();
    for id in ids {
        let Some(interpreter) = runtime.interpreter_of(id) else {
            continue;
        };
        let note = match (&interpreter.note, interpreter.exact) {
            (Some(why), _) => Some(format!("{}: {why}", id.id())),
            (None, false) => Some(format!(
                "no exact interpreter for {} here: the closest one serves it",
                id.id()
            )),
            (None, true) => None,
        };
        let at = match lines.iter().position(|(i, ..)| i.path == interpreter.path) {
            Some(at) => at,
            None => {
                lines.push((interpreter, Vec::new(), Vec::new()));
                lines.len() - 1
            }
        };
        lines[at].1.push(id.id());
        lines[at].2.extend(note);
    }
    for (interpreter, ids, notes) in lines {
        let shown = match (
            &interpreter.version,
            ids.first().is_some_and(|id| id.starts_with("nodejs")),
        ) {
            (Some(v), true) => format!("Node.js {v}"),
            (Some(v), false) => v.clone(),
            (None, true) => "Node.js (version unknown)".to_owned(),
            (None, false) => "Python (version unknown)".to_owned(),
        };
        let note = if notes.is_empty() {
            String::new()
        } else {
            format!(" ({})", notes.join("; "))
        };
        say(format!(
            "runtime: {} on {shown} ({}){note}",
            ids.join(", "),
            interpreter.path.display()
        ));
    }
}

/// `service` with every queue URL in its functions' environment pointing at `endpoint`, or
/// `None` when none does.
fn with_reachable_queue_urls(service: &Service, endpoint: &str) -> Option<Service> {
    let prefix = format!("http://sqs.{}.localhost/", service.region);
    let uses_queue_urls = service
        .functions
        .iter()
        .any(|f| f.environment.values().any(|v| v.starts_with(&prefix)));
    if !uses_queue_urls {
        return None;
    }
    let mut rewritten = service.clone();
    for f in &mut rewritten.functions {
        for value in f.environment.values_mut() {
            if let Some(rest) = value.strip_prefix(&prefix) {
                *value = format!("{}/{rest}", endpoint.trim_end_matches('/'));
            }
        }
    }
    Some(rewritten)
}

/// Say how calls from functions into Sylph are checked.
fn describe_iam(service: &Service, strict: bool, say: &mut dyn FnMut(String)) {
    let ungranted: Vec<&str> = service
        .functions
        .iter()
        .filter(|f| f.role.is_none())
        .map(|f| f.key.as_str())
        .collect();
    if ungranted.len() < service.functions.len() {
        say("iam: each instance has its own credentials; its calls to the table and Invoke APIs are checked against its role's statements".to_owned());
    }
    if !ungranted.is_empty() {
        let (verb, their) = if ungranted.len() == 1 {
            ("declares", "its")
        } else {
            ("declare", "their")
        };
        let names = ungranted.join(", ");
        if strict {
            say(format!(
                "iam: {names} {verb} no IAM statements: {their} calls into Sylph are refused (--strict-iam)"
            ));
        } else {
            say(format!(
                "iam: {names} {verb} no IAM statements: {their} calls into Sylph are allowed, with a warning naming each action (AWS would refuse them; --strict-iam does)"
            ));
        }
    }
}

/// The URL functions that share the host's network use to reach a server listening on
/// `addr`: loopback when it listens on every address.
pub fn host_url(scheme: &str, addr: std::net::SocketAddr) -> String {
    if addr.ip().is_unspecified() {
        format!("{scheme}://127.0.0.1:{}", addr.port())
    } else {
        format!("{scheme}://{addr}")
    }
}

pub fn default_concurrency() -> usize {
    std::thread::available_parallelism().map(|n| n.get() * 2).unwrap_or(4)
}

/// The WebAssembly runtime, if the service has `wasi-http` functions, with their components
/// compiling (or loading from the cache) in the background from now.
pub fn wasm_runtime(
    service: &Service,
    sink: Arc<dyn sylph_telemetry::LogSink>,
    base_env: &[(String, String)],
    say: &mut dyn FnMut(String),
) -> anyhow::Result<Option<WasmRuntime>> {
    let functions: Vec<_> = service
        .functions
        .iter()
        .filter(|f| matches!(f.runtime, sylph_model::Runtime::Wasm(_)))
        .collect();
    if functions.is_empty() {
        return Ok(None);
    }
    let how = WasmRuntime::describe().map_err(|why| anyhow::anyhow!("WebAssembly functions cannot run: {why}"))?;
    say(format!(
        "webassembly: {} function(s) as wasi:http components in wasmtime, no process; instances with {how}",
        functions.len()
    ));
    let wasm = WasmRuntime::new(sink, base_env.to_vec(), crate::options::wasm_code_cache());
    for f in functions {
        wasm.prepare(f, &service.root);
    }
    Ok(Some(wasm))
}

/// The pool's runtime: WebAssembly components in the wasm runtime, everything else in the
/// process runtime.
pub struct Runtimes {
    pub process: ProcessRuntime,
    pub wasm: Option<WasmRuntime>,
}

impl Runtime for Runtimes {
    fn start(&self, config: Arc<InstanceConfig>) -> BoxFuture<'static, Result<Box<dyn Instance>, StartError>> {
        match (&config.function.runtime, &self.wasm) {
            (sylph_model::Runtime::Wasm(_), Some(wasm)) => wasm.start(config),
            _ => self.process.start(config),
        }
    }

    fn standby(&self) -> Vec<(&'static str, usize)> {
        self.process.standby()
    }
}
