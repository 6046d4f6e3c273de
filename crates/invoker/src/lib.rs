//! The invoker: the one way anything in Sylph runs a function.
//!
//! The gateway and event sources call the [`Invoker`] trait; [`Pool`] implements it with a set
//! of instances per function in Lambda's model — one in-flight request per instance, a new
//! instance when all are busy, idle instances reused and stopped after a keep-warm window. It
//! writes the START / END / REPORT records for every invocation. It knows nothing of HTTP or
//! YAML and does not know how an instance runs (that is the runtime's business).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

// tokio's clock, so that tests under paused time drive keep-warm and queue timeouts.
use tokio::time::Instant;

use bytes::Bytes;
use sylph_model::{Function, PlatformLogs, Service};
pub use sylph_runtime::BoxFuture;
use sylph_runtime::{Completed, Instance, InstanceConfig, Invocation, Outcome, Runtime, StartError};
use sylph_telemetry::{LogSink, Report};

/// One request to run a function.
#[derive(Debug, Clone, Default)]
pub struct InvokeRequest {
    pub payload: Bytes,
    /// Decoded `X-Amz-Client-Context` JSON.
    pub client_context: Option<String>,
    pub cognito_identity: Option<String>,
    /// Return the invocation's log (START … REPORT) with the result.
    pub want_logs: bool,
}

#[derive(Debug)]
pub struct InvokeResponse {
    pub request_id: Arc<str>,
    pub result: InvokeResult,
    /// The invocation's log, when asked for.
    pub logs: Option<String>,
}

#[derive(Debug)]
pub enum InvokeResult {
    /// The function's JSON result.
    Success(Bytes),
    /// The function failed; `body` is Lambda's `{"errorType", "errorMessage", …}` payload.
    Error {
        kind: ErrorKind,
        error_type: String,
        body: Bytes,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The function threw or reported an error.
    Function,
    /// The function ran past its timeout and was stopped.
    Timeout,
    /// The runtime failed: crashed, exited, could not load the handler.
    Runtime,
}

/// Why an invocation could not run at all.
#[derive(Debug, thiserror::Error)]
pub enum InvokeError {
    #[error("Function not found: {0}")]
    FunctionNotFound(String),
    /// A concurrency limit was reached and no instance freed up within the queue timeout.
    #[error("Rate Exceeded.")]
    Throttled(ThrottleReason),
    #[error(transparent)]
    Start(#[from] StartError),
}

/// Which limit throttled an invocation (Lambda's `Reason` field).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThrottleReason {
    /// The function's `reservedConcurrency`.
    ReservedFunctionConcurrentInvocationLimitExceeded,
    /// The platform-wide limit (Lambda's account limit).
    ConcurrentInvocationLimitExceeded,
}

impl ThrottleReason {
    pub fn as_str(self) -> &'static str {
        match self {
            ThrottleReason::ReservedFunctionConcurrentInvocationLimitExceeded => {
                "ReservedFunctionConcurrentInvocationLimitExceeded"
            }
            ThrottleReason::ConcurrentInvocationLimitExceeded => "ConcurrentInvocationLimitExceeded",
        }
    }
}

/// What the gateway and event sources call. Implementations must be cheap to call concurrently.
pub trait Invoker: Send + Sync + 'static {
    /// Find a function by its deployed name, its key in `serverless.yml`, or its ARN.
    fn function(&self, name: &str) -> Option<&Function>;
    /// Run `function` once and wait for its result.
    fn invoke<'a>(
        &'a self,
        function: &'a str,
        request: InvokeRequest,
    ) -> BoxFuture<'a, Result<InvokeResponse, InvokeError>>;
}

/// Settings for the pool.
#[derive(Debug, Clone)]
pub struct PoolConfig {
    /// How long an idle instance is kept for reuse before it is stopped.
    pub keep_warm: Duration,
    /// In-flight invocations across all functions (Lambda's account concurrency limit).
    pub concurrency_limit: usize,
    /// How long an invocation waits for a free slot under a concurrency limit before it is
    /// throttled.
    pub queue_timeout: Duration,
    /// Extra environment for every instance (e.g. `sylph invoke local -e K=V`).
    pub extra_env: Vec<(String, String)>,
    /// The published version these functions are (`sylph server`); `None` is `$LATEST`.
    pub version: Option<u32>,
}

impl Default for PoolConfig {
    fn default() -> Self {
        PoolConfig {
            keep_warm: Duration::from_secs(300),
            concurrency_limit: 1000,
            queue_timeout: Duration::from_secs(5),
            extra_env: Vec::new(),
            version: None,
        }
    }
}

struct Idle {
    instance: Box<dyn Instance>,
    since: Instant,
    /// The code generation the instance loaded (see [`Pool::reload`]).
    generation: u64,
}

/// One function's instances and metrics.
pub struct FunctionPool {
    config: Arc<InstanceConfig>,
    runtime: Arc<dyn Runtime>,
    /// Most recently used last, so reuse favours warm caches and the oldest are reaped first.
    idle: Mutex<Vec<Idle>>,
    /// `reservedConcurrency`: at most this many in flight for this function.
    reserved: Option<Arc<tokio::sync::Semaphore>>,
    metrics: sylph_telemetry::metrics::FunctionMetrics,
}

/// Instances per function, scaled per request.
pub struct Pool {
    functions: Vec<Function>,
    pools: HashMap<String, Arc<FunctionPool>>,
    region: String,
    sink: Arc<dyn LogSink>,
    keep_warm: Duration,
    /// Bumped when function code changes; instances of older generations are not reused.
    generation: AtomicU64,
    /// Platform-wide in-flight limit.
    platform: Arc<tokio::sync::Semaphore>,
    queue_timeout: Duration,
    /// What START lines name as the version.
    version_label: Arc<str>,
}

impl Pool {
    /// A pool for every function of `service`, each started through `runtime`.
    pub fn new(service: &Service, runtime: Arc<dyn Runtime>, sink: Arc<dyn LogSink>, config: PoolConfig) -> Arc<Pool> {
        let mut pools = HashMap::new();
        for f in &service.functions {
            let pool = Arc::new(FunctionPool {
                config: Arc::new(InstanceConfig {
                    function: f.clone(),
                    service: service.name.clone(),
                    region: service.region.clone(),
                    root: service.root.clone(),
                    extra_env: config.extra_env.clone(),
                }),
                runtime: runtime.clone(),
                idle: Mutex::new(Vec::new()),
                reserved: f
                    .reserved_concurrency
                    .map(|n| Arc::new(tokio::sync::Semaphore::new(n as usize))),
                metrics: Default::default(),
            });
            pools.insert(f.name.clone(), pool.clone());
            pools.entry(f.key.clone()).or_insert(pool);
        }
        let pool = Arc::new(Pool {
            functions: service.functions.clone(),
            pools,
            region: service.region.clone(),
            sink,
            keep_warm: config.keep_warm,
            generation: AtomicU64::new(0),
            platform: Arc::new(tokio::sync::Semaphore::new(config.concurrency_limit.max(1))),
            queue_timeout: config.queue_timeout,
            version_label: config
                .version
                .map_or_else(|| Arc::from("$LATEST"), |v| Arc::from(v.to_string())),
        });
        Pool::spawn_reaper(&pool);
        pool
    }

    fn spawn_reaper(pool: &Arc<Pool>) {
        let weak = Arc::downgrade(pool);
        let period = (pool.keep_warm / 4).clamp(Duration::from_millis(100), Duration::from_secs(5));
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(period).await;
                let Some(pool) = weak.upgrade() else { break };
                pool.reap_idle();
            }
        });
    }

    /// Stop instances idle longer than the keep-warm window.
    fn reap_idle(&self) {
        for pool in self.unique_pools() {
            let expired: Vec<Idle> = {
                let mut idle = pool.idle.lock().unwrap_or_else(|e| e.into_inner());
                let (old, keep): (Vec<Idle>, Vec<Idle>) =
                    idle.drain(..).partition(|i| i.since.elapsed() >= self.keep_warm);
                *idle = keep;
                old
            };
            if !expired.is_empty() {
                tracing::debug!(function = %pool.config.function.name, count = expired.len(), "stopping idle instances");
            }
            drop(expired);
        }
    }

    fn unique_pools(&self) -> Vec<Arc<FunctionPool>> {
        self.functions
            .iter()
            .filter_map(|f| self.pools.get(&f.name).cloned())
            .collect()
    }

    /// Every function's metrics, labelled by its key (`sylph dev`: one service) or by its
    /// deployed name (`sylph server`, where keys repeat across services), for
    /// [`sylph_telemetry::metrics::render`].
    pub fn metric_rows<'a>(
        &'a self,
        pools: &'a [Arc<FunctionPool>],
        by_name: bool,
    ) -> Vec<(&'a str, &'a sylph_telemetry::metrics::FunctionMetrics, usize)> {
        self.functions
            .iter()
            .zip(pools.iter())
            .map(|(f, p)| {
                let label = if by_name { f.name.as_str() } else { f.key.as_str() };
                (
                    label,
                    &p.metrics,
                    p.idle.lock().unwrap_or_else(|e| e.into_inner()).len(),
                )
            })
            .collect()
    }

    /// Each function with its counters, and an identity for its pool (new with every pool, so
    /// that a history of readings sees a deploy or restart start again from zero).
    pub fn function_metrics(&self) -> Vec<(&Function, usize, sylph_telemetry::metrics::Reading)> {
        self.functions
            .iter()
            .filter_map(|f| {
                let p = self.pools.get(&f.name)?;
                Some((f, Arc::as_ptr(p) as usize, p.metrics.read()))
            })
            .collect()
    }

    /// The per-function pools, in manifest order (what [`Pool::metric_rows`] reads).
    pub fn function_pools(&self) -> Vec<Arc<FunctionPool>> {
        self.unique_pools()
    }

    /// Number of idle (warm) instances of a function.
    pub fn idle_instances(&self, function: &str) -> usize {
        self.pools
            .get(function)
            .map(|p| p.idle.lock().unwrap_or_else(|e| e.into_inner()).len())
            .unwrap_or(0)
    }

    /// The function code changed: stop idle instances and let in-flight ones finish on the old
    /// code; every later invocation runs in a new instance that loads the new code.
    pub fn reload(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        self.shutdown();
    }

    /// Stop every idle instance. In-flight instances stop when their invocations end.
    pub fn shutdown(&self) {
        for pool in self.unique_pools() {
            let drained: Vec<Idle> = pool.idle.lock().unwrap_or_else(|e| e.into_inner()).drain(..).collect();
            drop(drained);
        }
    }

    fn lookup(&self, name: &str) -> Option<&Arc<FunctionPool>> {
        // Accept an ARN (`arn:aws:lambda:…:function:NAME[:QUALIFIER]`) as the SDKs allow.
        let name = match name.split_once(":function:") {
            Some((_, rest)) => rest.split(':').next().unwrap_or(rest),
            None => name,
        };
        self.pools.get(name)
    }

    /// Wait (bounded) for a slot under `semaphore`; a reserved concurrency of 0 always throttles.
    async fn slot(
        &self,
        semaphore: &Arc<tokio::sync::Semaphore>,
        reason: ThrottleReason,
    ) -> Result<tokio::sync::OwnedSemaphorePermit, InvokeError> {
        if let Ok(p) = semaphore.clone().try_acquire_owned() {
            return Ok(p);
        }
        match tokio::time::timeout(self.queue_timeout, semaphore.clone().acquire_owned()).await {
            Ok(Ok(p)) => Ok(p),
            _ => Err(InvokeError::Throttled(reason)),
        }
    }

    async fn run(&self, pool: &FunctionPool, request: InvokeRequest) -> Result<InvokeResponse, InvokeError> {
        let m = &pool.metrics;
        m.invocations.fetch_add(1, Ordering::Relaxed);
        let result = self.run_counted(pool, request).await;
        match &result {
            Err(InvokeError::Throttled(_)) => {
                m.throttles.fetch_add(1, Ordering::Relaxed);
            }
            Err(_)
            | Ok(InvokeResponse {
                result: InvokeResult::Error { .. },
                ..
            }) => {
                m.errors.fetch_add(1, Ordering::Relaxed);
            }
            Ok(_) => {}
        }
        if let Ok(InvokeResponse {
            result: InvokeResult::Error {
                kind: ErrorKind::Timeout,
                ..
            },
            ..
        }) = &result
        {
            m.timeouts.fetch_add(1, Ordering::Relaxed);
        }
        result
    }

    async fn run_counted(&self, pool: &FunctionPool, request: InvokeRequest) -> Result<InvokeResponse, InvokeError> {
        let f = &pool.config.function;
        let _reserved = match &pool.reserved {
            Some(s) if f.reserved_concurrency == Some(0) => {
                let _ = s;
                return Err(InvokeError::Throttled(
                    ThrottleReason::ReservedFunctionConcurrentInvocationLimitExceeded,
                ));
            }
            Some(s) => Some(
                self.slot(s, ThrottleReason::ReservedFunctionConcurrentInvocationLimitExceeded)
                    .await?,
            ),
            None => None,
        };
        let _platform = self
            .slot(&self.platform, ThrottleReason::ConcurrentInvocationLimitExceeded)
            .await?;
        let request_id: Arc<str> = Arc::from(sylph_telemetry::new_request_id());
        let current = self.generation.load(Ordering::SeqCst);
        let reused = {
            let mut idle = pool.idle.lock().unwrap_or_else(|e| e.into_inner());
            loop {
                match idle.pop() {
                    Some(i) if i.instance.is_healthy() && i.generation == current => break Some(i.instance),
                    Some(_) => continue,
                    None => break None,
                }
            }
        };
        let was_reused = reused.is_some();
        let mut instance = match reused {
            Some(i) => i,
            None => pool.runtime.start(pool.config.clone()).await?,
        };
        let m = &pool.metrics;
        m.concurrent.fetch_add(1, Ordering::Relaxed);
        // Counted down however this invocation ends (a dropped future included).
        struct InFlight<'a>(&'a std::sync::atomic::AtomicI64);
        impl Drop for InFlight<'_> {
            fn drop(&mut self) {
                self.0.fetch_sub(1, Ordering::Relaxed);
            }
        }
        let _in_flight = InFlight(&m.concurrent);
        let start_line = match f.platform_logs {
            PlatformLogs::Text => Some(format!("START RequestId: {request_id} Version: {}", self.version_label)),
            PlatformLogs::Json => Some(sylph_telemetry::platform_start_record(
                &sylph_telemetry::UtcTime::now().iso8601(),
                &request_id,
                &f.arn(&self.region),
                &self.version_label,
            )),
            PlatformLogs::JsonWarnOnly => None,
        };
        if let Some(line) = &start_line {
            self.sink.line(&f.key, None, line);
        }
        let invocation = Invocation {
            request_id: request_id.clone(),
            payload: request.payload,
            client_context: request.client_context,
            cognito_identity: request.cognito_identity,
            capture_logs: request.want_logs,
        };
        let mut completed = instance.invoke(invocation.clone()).await;
        // A warm instance that died while idle (a stray timer that threw, say) never saw this
        // invocation: run it once more on a new instance rather than fail a request that never ran.
        if was_reused
            && matches!(
                completed.outcome,
                Outcome::InstanceFailed(sylph_runtime::Failure::Unavailable(_))
            )
        {
            instance = pool.runtime.start(pool.config.clone()).await?;
            completed = instance.invoke(invocation).await;
        }
        let Completed {
            outcome,
            duration,
            init_duration,
            max_memory_mb,
            logs,
            start,
        } = completed;
        match start {
            sylph_runtime::StartKind::Cold => m.cold_starts.fetch_add(1, Ordering::Relaxed),
            sylph_runtime::StartKind::Prewarmed => {
                self.sink
                    .line(&f.key, Some(&request_id), "cold start served by a pre-started runtime");
                m.prewarmed_starts.fetch_add(1, Ordering::Relaxed)
            }
            sylph_runtime::StartKind::Warm => m.warm_starts.fetch_add(1, Ordering::Relaxed),
        };
        m.duration.observe(duration.as_secs_f64());
        if let Some(init) = init_duration {
            m.init_duration.observe(init.as_secs_f64());
        }
        let report = Report {
            request_id: &request_id,
            duration,
            memory_size_mb: f.memory_mb,
            max_memory_used_mb: max_memory_mb,
            init_duration,
        };
        // Lambda's status of the invocation, for the JSON `platform.report` record.
        let status = match &outcome {
            Outcome::Response(_) => "success",
            Outcome::FunctionError { .. } => "error",
            Outcome::InstanceFailed(sylph_runtime::Failure::Timeout(_)) => "timeout",
            Outcome::InstanceFailed(_) => "failure",
        };
        // The platform's closing lines, without a collection per invocation.
        let platform_lines: [Option<String>; 2] = match f.platform_logs {
            PlatformLogs::Text => [Some(format!("END RequestId: {request_id}")), Some(report.to_string())],
            // At the default system log level Lambda writes no record for END.
            PlatformLogs::Json => [
                None,
                Some(report.json_record(status, &sylph_telemetry::UtcTime::now().iso8601())),
            ],
            PlatformLogs::JsonWarnOnly => [None, None],
        };
        let result = match outcome {
            Outcome::Response(body) => InvokeResult::Success(body),
            Outcome::FunctionError { error_type, body } => InvokeResult::Error {
                kind: ErrorKind::Function,
                error_type: error_type.unwrap_or_else(|| "Unhandled".to_owned()),
                body,
            },
            Outcome::InstanceFailed(failure) => {
                let (error_type, body) = failure.error_payload(&request_id);
                let kind = match failure {
                    sylph_runtime::Failure::Timeout(_) => ErrorKind::Timeout,
                    _ => ErrorKind::Runtime,
                };
                // Lambda logs the platform's reason for the failure before END.
                let message = String::from_utf8_lossy(&body).into_owned();
                self.sink.line(&f.key, Some(&request_id), &message);
                InvokeResult::Error { kind, error_type, body }
            }
        };
        for line in platform_lines.iter().flatten() {
            self.sink.line(&f.key, None, line);
        }
        // An instance started before a code change finishes its request on the old code, then goes.
        if instance.is_healthy() && self.generation.load(Ordering::SeqCst) == current {
            pool.idle.lock().unwrap_or_else(|e| e.into_inner()).push(Idle {
                instance,
                since: Instant::now(),
                generation: current,
            });
        }
        let logs = logs.map(|function_output| {
            let mut text = String::with_capacity(function_output.len() + 256);
            if let Some(line) = &start_line {
                text.push_str(line);
                text.push('\n');
            }
            text.push_str(&String::from_utf8_lossy(&function_output));
            if let InvokeResult::Error {
                kind: ErrorKind::Timeout | ErrorKind::Runtime,
                body,
                ..
            } = &result
            {
                text.push_str(&String::from_utf8_lossy(body));
                text.push('\n');
            }
            for line in platform_lines.iter().flatten() {
                text.push_str(line);
                text.push('\n');
            }
            text
        });
        Ok(InvokeResponse {
            request_id,
            result,
            logs,
        })
    }

    pub fn region(&self) -> &str {
        &self.region
    }
}

impl sylph_telemetry::metrics::MetricsSource for Pool {
    fn render(&self) -> String {
        let pools = self.unique_pools();
        let rows = self.metric_rows(&pools, false);
        let mut out = sylph_telemetry::metrics::render(&rows);
        if let Some(pool) = self.pools.values().next() {
            let standby = pool.runtime.standby();
            if !standby.is_empty() {
                out.push_str("# HELP sylph_prestarted_runtimes Runtime processes started ahead of demand, ready for a cold start.\n# TYPE sylph_prestarted_runtimes gauge\n");
                for (language, n) in standby {
                    out.push_str(&format!("sylph_prestarted_runtimes{{language=\"{language}\"}} {n}\n"));
                }
            }
        }
        out
    }
}

impl Invoker for Pool {
    fn function(&self, name: &str) -> Option<&Function> {
        self.lookup(name).map(|p| &p.config.function)
    }

    fn invoke<'a>(
        &'a self,
        function: &'a str,
        request: InvokeRequest,
    ) -> BoxFuture<'a, Result<InvokeResponse, InvokeError>> {
        Box::pin(async move {
            let pool = self
                .lookup(function)
                .ok_or_else(|| InvokeError::FunctionNotFound(function.to_owned()))?;
            self.run(pool, request).await
        })
    }
}

#[cfg(test)]
mod tests;
