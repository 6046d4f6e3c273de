//! The WebAssembly runtime: functions whose runtime is `wasi-http` are WebAssembly components
//! exporting `wasi:http/incoming-handler` (the `wasi:http/proxy` world that `wasmtime serve`
//! runs), served inside Sylph with wasmtime and `wasmtime-wasi-http`: no process, no sandbox to
//! build, an instance in microseconds.
//!
//! It implements the same [`Runtime`] / [`Instance`] traits as the process runtime, so the pool
//! (scaling, reuse, keep-warm, concurrency limits, metrics), the gateway and every event source
//! treat a component like any other function. An instance is one wasmtime store: it serves
//! invocations one after another, as a warm Lambda execution environment does, and is dropped
//! when it fails, times out, or is stopped idle.

mod engine;
pub mod event;
mod outbound;
mod state;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use sylph_model::Function;
use sylph_runtime::{
    BoxFuture, Completed, CredentialIssuer, Failure, Instance, InstanceConfig, Invocation, Outcome, Runtime,
    StartError, StartKind, INIT_TIMEOUT, MAX_RESPONSE_BYTES,
};
use sylph_telemetry::LogSink;
use wasmtime::component::ResourceTable;
use wasmtime::Store;
use wasmtime_wasi::WasiCtxBuilder;
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
use wasmtime_wasi_http::p2::bindings::Proxy;
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpView};

pub use engine::EPOCH_TICK;
pub use outbound::SylphApi;

use engine::{Components, Prepared};
use outbound::{Identity, Outbound, SylphLink};
use state::{LogStream, MemoryLimit, State};

/// Runs `wasi-http` functions. Cheap to clone; clones share compiled components.
#[derive(Clone)]
pub struct WasmRuntime {
    inner: Arc<Inner>,
}

struct Inner {
    sink: Arc<dyn LogSink>,
    /// What every function's environment starts with (Sylph's endpoints, the region).
    base_env: Vec<(String, String)>,
    /// The host and port of `AWS_ENDPOINT_URL`: requests there are Sylph's own APIs.
    sylph_authority: Option<String>,
    /// Where compiled components are kept between runs.
    cache_dir: PathBuf,
    components: Components,
    issuer: OnceLock<Arc<dyn CredentialIssuer>>,
    sylph_api: OnceLock<SylphApi>,
}

impl WasmRuntime {
    /// `base_env` is the environment every function starts with; its `AWS_ENDPOINT_URL` names
    /// where components reach Sylph's APIs. Compiled components are cached in `cache_dir`.
    pub fn new(sink: Arc<dyn LogSink>, base_env: Vec<(String, String)>, cache_dir: PathBuf) -> WasmRuntime {
        let sylph_authority = base_env
            .iter()
            .find(|(k, _)| k == "AWS_ENDPOINT_URL")
            .and_then(|(_, url)| url.parse::<http::Uri>().ok())
            .and_then(|uri| uri.authority().map(|a| a.as_str().to_ascii_lowercase()));
        WasmRuntime {
            inner: Arc::new(Inner {
                sink,
                base_env,
                sylph_authority,
                cache_dir,
                components: Components::default(),
                issuer: OnceLock::new(),
                sylph_api: OnceLock::new(),
            }),
        }
    }

    /// How instances are allocated on this host, or why WebAssembly cannot run here.
    pub fn describe() -> Result<String, String> {
        engine::host().map(|h| h.allocation.clone())
    }

    /// Issue each instance credentials of its own (its identity for calls into Sylph).
    pub fn set_credential_issuer(&self, issuer: Arc<dyn CredentialIssuer>) {
        let _ = self.inner.issuer.set(issuer);
    }

    /// Where instances' calls to Sylph's APIs are served.
    pub fn set_sylph_api(&self, api: SylphApi) {
        let _ = self.inner.sylph_api.set(api);
    }

    /// Compile (or load from the cache) `function`'s component now, in the background, so
    /// that its first request only instantiates it. Errors are left for that request to report.
    pub fn prepare(&self, function: &Function, root: &Path) {
        let inner = self.inner.clone();
        let path = component_path(function, root);
        let key = function.key.clone();
        tokio::spawn(async move {
            let line = match inner.components.get(&path, &inner.cache_dir).await {
                Ok(p) if p.compiled => format!(
                    "component {} compiled in {} ms (kept for the next start)",
                    path.display(),
                    p.took.as_millis()
                ),
                Ok(p) => format!(
                    "component {} read from the compiled-code cache in {} ms",
                    path.display(),
                    p.took.as_millis()
                ),
                Err(why) => why,
            };
            inner.sink.line(&key, None, &line);
        });
    }
}

/// The component a function runs: its `package.artifact` (where `sylph dev` points a function
/// after building it), else its handler as a path under the service folder.
pub fn component_path(function: &Function, root: &Path) -> PathBuf {
    match &function.artifact {
        Some(artifact) => artifact.clone(),
        None => root.join(&function.handler),
    }
}

impl Runtime for WasmRuntime {
    fn start(&self, config: Arc<InstanceConfig>) -> BoxFuture<'static, Result<Box<dyn Instance>, StartError>> {
        let inner = self.inner.clone();
        Box::pin(async move {
            let function = &config.function;
            let path = component_path(function, &config.root);
            if !path.is_file() {
                return Err(StartError::NotFound {
                    function: function.name.clone(),
                    what: format!("the component {}", path.display()),
                    help: "build it for wasm32-wasip2 (a Rust service with a Cargo.toml is built by sylph dev), and point `handler` or `package.artifact` at the .wasm file".to_owned(),
                });
            }
            let prepared =
                inner
                    .components
                    .get(&path, &inner.cache_dir)
                    .await
                    .map_err(|reason| StartError::Package {
                        function: function.name.clone(),
                        reason,
                    })?;
            let credentials = inner.issuer.get().map(|issuer| issuer.issue(function));
            let link = match (&inner.sylph_authority, inner.sylph_api.get()) {
                (Some(authority), Some(api)) => Some(Arc::new(SylphLink {
                    authority: authority.clone(),
                    port: authority
                        .rsplit_once(':')
                        .and_then(|(_, p)| p.parse().ok())
                        .unwrap_or(80),
                    calls: tokio::sync::Semaphore::new(outbound::MAX_SYLPH_CALLS),
                    api: api.clone(),
                    identity: credentials.as_ref().map(|c| Identity {
                        access_key_id: c.access_key_id.clone(),
                        secret_access_key: c.secret_access_key.clone(),
                        session_token: c.session_token.clone(),
                    }),
                    region: config.region.clone(),
                    idle: Mutex::new(None),
                })),
                _ => None,
            };
            let logs = LogStream::new(function.key.clone(), inner.sink.clone());
            Ok(Box::new(WasmInstance {
                arn: function.arn(&config.region),
                env: environment(&inner.base_env, &config),
                allowed: function.outbound_hosts.clone().into(),
                config,
                prepared,
                live: Mutex::new(None),
                healthy: true,
                served: false,
                logs,
                link,
                _lease: credentials.map(|c| c.lease),
            }) as Box<dyn Instance>)
        })
    }
}

/// The guest's environment: Sylph's base, the function's own, then Lambda's reserved
/// variables. No credentials: calls to Sylph are signed by the host as the instance.
fn environment(base: &[(String, String)], config: &InstanceConfig) -> Vec<(String, String)> {
    let f = &config.function;
    let mut env: Vec<(String, String)> = base.to_vec();
    let mut set = |k: &str, v: String| match env.iter_mut().find(|(key, _)| key == k) {
        Some(slot) => slot.1 = v,
        None => env.push((k.to_owned(), v)),
    };
    for (k, v) in f.environment.iter().chain(config.extra_env.iter().map(|(k, v)| (k, v))) {
        set(k, v.clone());
    }
    for (k, v) in [
        ("_HANDLER", f.handler.clone()),
        ("AWS_LAMBDA_FUNCTION_NAME", f.name.clone()),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".to_owned()),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", f.memory_mb.to_string()),
        ("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{}", f.name)),
        ("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand".to_owned()),
        ("AWS_REGION", config.region.clone()),
        ("AWS_DEFAULT_REGION", config.region.clone()),
        ("AWS_EXECUTION_ENV", format!("AWS_Lambda_{}", f.runtime.id())),
        ("TZ", ":UTC".to_owned()),
    ] {
        set(k, v);
    }
    env
}

/// Resources (requests, headers, bodies, streams, pollables) one instance may hold at once.
const MAX_RESOURCES: usize = 4096;
/// The largest set of headers a guest may build (wasmtime counts its in-memory size).
const MAX_FIELDS_BYTES: usize = 64 * 1024;

struct WasmInstance {
    config: Arc<InstanceConfig>,
    prepared: Arc<Prepared>,
    /// The function's ARN, for `lambda-runtime-invoked-function-arn`.
    arn: String,
    env: Vec<(String, String)>,
    allowed: Arc<[sylph_model::OutboundHost]>,
    /// The store and its instantiated component, made by the first invocation. (A store is
    /// not `Sync`; the mutex is only ever reached through `&mut self`, never locked.)
    live: Mutex<Option<Live>>,
    healthy: bool,
    served: bool,
    logs: LogStream,
    link: Option<Arc<SylphLink>>,
    /// Revokes the instance's credentials when it is dropped.
    _lease: Option<Box<dyn Send + Sync>>,
}

struct Live {
    store: Store<State>,
    proxy: Proxy,
}

/// How one request to the component ended.
enum Served {
    Answered(http::response::Parts, Bytes),
    /// The component answered with a wasi:http error code instead of a response.
    ErrorCode(String),
    /// The request could not be handed to the component; the instance is untouched.
    Refused(String),
    Failed(Failure),
}

impl WasmInstance {
    async fn instantiate(&self) -> Result<Live, Failure> {
        let host = engine::host().map_err(Failure::Unavailable)?;
        let f = &self.config.function;
        let mut wasi = WasiCtxBuilder::new();
        wasi.envs(&self.env)
            .stdout(self.logs.clone())
            .stderr(self.logs.clone())
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false);
        // Host-side resources a guest can create (headers, bodies, streams), bounded: they live
        // outside its linear memory and so outside memorySize.
        let mut table = ResourceTable::new();
        table.set_max_capacity(MAX_RESOURCES);
        let mut http = WasiHttpCtx::new();
        http.set_field_size_limit(MAX_FIELDS_BYTES);
        let state = State {
            wasi: wasi.build(),
            http,
            table,
            outbound: Outbound {
                allowed: self.allowed.clone(),
                sylph: self.link.clone(),
            },
            memory: MemoryLimit::new(f.memory_mb),
        };
        let mut store = Store::new(&host.engine, state);
        store.limiter(|s| &mut s.memory);
        // Every tick a computing guest gives its thread back, so a busy loop holds no worker;
        // its timeout (a dropped future) stops it at the next tick.
        store.set_epoch_deadline(1);
        store.epoch_deadline_async_yield_and_update(1);
        match self.prepared.pre.instantiate_async(&mut store).await {
            Ok(proxy) => Ok(Live { store, proxy }),
            Err(_) if store.data().memory.refused => Err(Failure::OutOfMemory(f.memory_mb)),
            Err(e) => Err(Failure::InitError {
                error_type: Some("Runtime.InitError".to_owned()),
                body: error_body(
                    "Runtime.InitError",
                    &format!("the component could not be instantiated: {e:#}"),
                ),
            }),
        }
    }

    fn lambda_headers<'a>(
        &self,
        invocation: &'a Invocation,
        deadline: &'a str,
        arn: &'a str,
    ) -> Vec<(&'a str, &'a str)> {
        let mut headers = vec![
            ("lambda-runtime-aws-request-id", &*invocation.request_id),
            ("lambda-runtime-deadline-ms", deadline),
            ("lambda-runtime-invoked-function-arn", arn),
        ];
        if let Some(c) = &invocation.client_context {
            headers.push(("lambda-runtime-client-context", c));
        }
        if let Some(c) = &invocation.cognito_identity {
            headers.push(("lambda-runtime-cognito-identity", c));
        }
        headers
    }
}

impl Instance for WasmInstance {
    fn invoke(&mut self, invocation: Invocation) -> BoxFuture<'_, Completed> {
        Box::pin(async move {
            let f = &self.config.function;
            self.logs.begin(invocation.request_id.clone(), invocation.capture_logs);
            let start = if self.served { StartKind::Warm } else { StartKind::Cold };
            self.served = true;
            let mut init_duration = None;
            if self.live.get_mut().unwrap_or_else(|e| e.into_inner()).is_none() {
                let began = Instant::now();
                // A component's start-up runs guest code too (a constructor that loops): bounded
                // like a process runtime's init.
                let instantiated = match tokio::time::timeout(INIT_TIMEOUT, self.instantiate()).await {
                    Ok(result) => result,
                    Err(_) => Err(Failure::InitTimeout),
                };
                match instantiated {
                    Ok(live) => *self.live.get_mut().unwrap_or_else(|e| e.into_inner()) = Some(live),
                    Err(failure) => {
                        self.healthy = false;
                        let logs = self.logs.end();
                        return Completed {
                            outcome: Outcome::InstanceFailed(failure),
                            duration: Duration::ZERO,
                            init_duration: Some(began.elapsed()),
                            max_memory_mb: 0,
                            logs,
                            start,
                        };
                    }
                }
                init_duration = Some(began.elapsed());
            }
            let deadline = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default()
                .saturating_add(f.timeout)
                .as_millis()
                .to_string();
            let headers = self.lambda_headers(&invocation, &deadline, &self.arn);
            let (shape, request) = event::request(&invocation.payload, &headers);
            let began = Instant::now();
            let live = self
                .live
                .get_mut()
                .unwrap_or_else(|e| e.into_inner())
                .as_mut()
                .expect("instantiated above");
            let served = match tokio::time::timeout(f.timeout, serve(live, request)).await {
                Ok(served) => served,
                // Dropping the call stopped the guest wherever it was (at its next epoch tick
                // if it was computing); the store may be mid-call, so it is not used again.
                Err(_) => Served::Failed(Failure::Timeout(f.timeout)),
            };
            let duration = began.elapsed();
            let max_memory_mb = live.store.data().memory.peak.div_ceil(1024 * 1024) as u64;
            let outcome = match served {
                Served::Answered(parts, body) => match event::result(shape, &parts, &body) {
                    Ok(result) if result.len() > MAX_RESPONSE_BYTES => Outcome::FunctionError {
                        error_type: Some("Function.ResponseSizeTooLarge".to_owned()),
                        body: Failure::ResponseTooLarge.error_payload(&invocation.request_id).1,
                    },
                    Ok(result) => Outcome::Response(result),
                    Err((status, body)) => Outcome::FunctionError {
                        error_type: Some("HttpError".to_owned()),
                        body: error_body(
                            "HttpError",
                            &format!(
                                "the component answered {status}: {}",
                                String::from_utf8_lossy(&body[..body.len().min(1024)])
                            ),
                        ),
                    },
                },
                Served::Refused(why) => Outcome::FunctionError {
                    error_type: Some("Runtime.InvalidRequest".to_owned()),
                    body: error_body("Runtime.InvalidRequest", &why),
                },
                Served::ErrorCode(code) => Outcome::FunctionError {
                    error_type: Some("HttpErrorCode".to_owned()),
                    body: error_body(
                        "HttpErrorCode",
                        &format!("the component answered with an error: {code}"),
                    ),
                },
                Served::Failed(failure) => {
                    self.healthy = false;
                    Outcome::InstanceFailed(failure)
                }
            };
            if !self.healthy {
                *self.live.get_mut().unwrap_or_else(|e| e.into_inner()) = None;
            }
            Completed {
                outcome,
                duration,
                init_duration,
                max_memory_mb,
                logs: self.logs.end(),
                start,
            }
        })
    }

    fn is_healthy(&self) -> bool {
        self.healthy
    }

    fn pid(&self) -> Option<u32> {
        None
    }
}

/// Run one request through the component: its response, with the whole body, or how it failed.
async fn serve(live: &mut Live, request: http::Request<Full<Bytes>>) -> Served {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let data = live.store.data_mut();
    data.memory.refused = false;
    let mut http = data.http();
    let handles = http
        .new_incoming_request(Scheme::Http, request)
        .and_then(|req| Ok((req, http.new_response_outparam(tx)?)));
    let (req, out) = match handles {
        Ok(h) => h,
        Err(e) => return Served::Refused(format!("the request could not be handed to the component: {e}")),
    };
    let call = live
        .proxy
        .wasi_http_incoming_handler()
        .call_handle(&mut live.store, req, out);
    // The body is written while `handle` runs (and may be after it has set the response), so
    // the call and the reading of its response go on together.
    let response = async move {
        match rx.await {
            Ok(Ok(response)) => {
                let (parts, body) = response.into_parts();
                match Limited::new(body, MAX_RESPONSE_BYTES).collect().await {
                    Ok(body) => Ok(Some(Served::Answered(parts, body.to_bytes()))),
                    Err(e) if e.is::<http_body_util::LengthLimitError>() => {
                        Ok(Some(Served::Failed(Failure::ResponseTooLarge)))
                    }
                    Err(e) => Err(e.to_string()),
                }
            }
            Ok(Err(code)) => Ok(Some(Served::ErrorCode(format!("{code:?}")))),
            // The outparam was dropped unset.
            Err(_) => Ok(None),
        }
    };
    let (called, answered) = {
        tokio::pin!(call, response);
        tokio::select! {
            answered = &mut response => (call.await, Some(answered)),
            called = &mut call => match called {
                Ok(()) => (Ok(()), Some(response.await)),
                Err(e) => (Err(e), None),
            },
        }
    };
    let refused = live.store.data().memory.refused;
    match (called, answered) {
        (Err(_), _) if refused => Served::Failed(Failure::OutOfMemory(live.store.data().memory.limit_mb())),
        (Err(e), _) => Served::Failed(Failure::Exited(trap_text(&e))),
        (Ok(()), Some(Ok(Some(served)))) => served,
        (Ok(()), Some(Err(body_error))) => Served::Failed(Failure::Exited(format!(
            "the component's response body failed: {body_error}"
        ))),
        (Ok(()), _) => Served::Failed(Failure::Exited(
            "the component returned without setting a response".to_owned(),
        )),
    }
}

/// What a trap was, in a line: `wasm trap: wasm `unreachable` instruction executed`.
fn trap_text(e: &wasmtime::Error) -> String {
    match e.downcast_ref::<wasmtime::Trap>() {
        Some(trap) => format!("wasm trap: {trap}"),
        None => format!("wasm trap: {}", e.root_cause()),
    }
}

fn error_body(error_type: &str, message: &str) -> Bytes {
    Bytes::from(serde_json::json!({ "errorType": error_type, "errorMessage": message }).to_string())
}
