//! Function runtimes: how an instance of a function is started and how one invocation is run
//! on it.
//!
//! The [`Runtime`] and [`Instance`] traits are the boundary the invoker calls through; the
//! [`process`] runtime implements them with one child process per instance speaking the AWS
//! Lambda Runtime API, so the official runtime interface clients run unchanged. The
//! WebAssembly runtime (`sylph-wasm`) implements them beside it.
//!
//! This crate does not route requests, pick instances or scale; that is the invoker's job.

pub mod process;

mod api;
pub mod frame;
pub mod limits;
mod logs;
pub use logs::{MAX_CAPTURE_BYTES, MAX_LOG_BYTES_PER_INVOCATION};
pub mod netns;
pub mod pipe;
pub mod sandbox;

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use sylph_model::Function;

pub use process::{
    ApiHandler, ConnectionPermit, CredentialIssuer, Family, InstanceCredentials, Interpreter, ProcessRuntime,
    MAX_INSTANCE_CONNECTIONS,
};

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Lambda's limit on a synchronous response payload (6 MB as Lambda counts it).
pub const MAX_RESPONSE_BYTES: usize = 6_291_556;

/// How long a runtime may take to become ready (Lambda's init phase limit).
pub const INIT_TIMEOUT: Duration = Duration::from_secs(10);

/// Everything needed to start an instance of one function.
#[derive(Debug, Clone)]
pub struct InstanceConfig {
    pub function: Function,
    pub service: String,
    pub region: String,
    /// The service folder: `LAMBDA_TASK_ROOT` and the working directory.
    pub root: PathBuf,
    /// Extra environment set after the function's own (e.g. `sylph invoke local -e`).
    pub extra_env: Vec<(String, String)>,
}

/// One invocation as handed to an instance.
#[derive(Debug, Clone)]
pub struct Invocation {
    pub request_id: Arc<str>,
    pub payload: Bytes,
    /// JSON text for `Lambda-Runtime-Client-Context`.
    pub client_context: Option<String>,
    /// JSON text for `Lambda-Runtime-Cognito-Identity`.
    pub cognito_identity: Option<String>,
    /// Keep the function's output of this invocation (for `X-Amz-Log-Type: Tail`, `invoke local`).
    pub capture_logs: bool,
}

/// What happened to one invocation.
#[derive(Debug)]
pub struct Completed {
    pub outcome: Outcome,
    /// Time from the runtime picking the invocation up to its answer.
    pub duration: Duration,
    /// Set when this invocation started the instance: how long the runtime took to get ready.
    pub init_duration: Option<Duration>,
    pub max_memory_mb: u64,
    /// The function's output during the invocation, if capture was asked for.
    pub logs: Option<Vec<u8>>,
    /// How the instance that served this invocation came to be.
    pub start: StartKind,
}

/// Cold: a new process was started for this invocation. Pre-warmed: a runtime process started
/// ahead of time became this function. Warm: an instance that had served before.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartKind {
    Cold,
    Prewarmed,
    Warm,
}

impl StartKind {
    pub fn as_str(self) -> &'static str {
        match self {
            StartKind::Cold => "cold",
            StartKind::Prewarmed => "prewarmed",
            StartKind::Warm => "warm",
        }
    }
}

#[derive(Debug)]
pub enum Outcome {
    /// The function answered; the body is its JSON result.
    Response(Bytes),
    /// The function reported an error through the Runtime API; the instance stays usable.
    FunctionError { error_type: Option<String>, body: Bytes },
    /// The instance failed and is gone; it must not be used again.
    InstanceFailed(Failure),
}

#[derive(Debug, Clone)]
pub enum Failure {
    Timeout(Duration),
    /// The runtime process exited or was killed mid-invocation (`exit status 1`, `signal 9`).
    Exited(String),
    /// The runtime reported `/runtime/init/error` (bad handler, import error, …).
    InitError {
        error_type: Option<String>,
        body: Bytes,
    },
    /// The runtime did not ask for work within [`INIT_TIMEOUT`].
    InitTimeout,
    ResponseTooLarge,
    /// The kernel stopped the instance for using more than the function's memorySize (MB).
    OutOfMemory(u32),
    /// The instance could not be reached (it died before the invocation was handed over).
    Unavailable(String),
}

impl Failure {
    /// The error payload Lambda returns to the caller for this failure, with its type.
    pub fn error_payload(&self, request_id: &str) -> (String, Bytes) {
        let (error_type, message) = match self {
            Failure::Timeout(d) => (
                "Sandbox.Timedout".to_owned(),
                format!("RequestId: {request_id} Error: Task timed out after {:.2} seconds", d.as_secs_f64()),
            ),
            Failure::Exited(status) => (
                "Runtime.ExitError".to_owned(),
                format!("RequestId: {request_id} Error: Runtime exited with error: {status}"),
            ),
            Failure::InitError { error_type, body } => {
                // Pass the runtime's own error through, as Lambda does.
                let t = error_type.clone().unwrap_or_else(|| "Runtime.Unknown".to_owned());
                return (t, body.clone());
            }
            Failure::InitTimeout => (
                "Sandbox.Timedout".to_owned(),
                format!(
                    "RequestId: {request_id} Error: Runtime did not become ready within {} seconds",
                    INIT_TIMEOUT.as_secs()
                ),
            ),
            Failure::OutOfMemory(limit) => (
                "Runtime.OutOfMemory".to_owned(),
                format!(
                    "RequestId: {request_id} Error: Runtime exited with error: signal: killed (the function used more than its memorySize of {limit} MB)"
                ),
            ),
            Failure::ResponseTooLarge => (
                "Function.ResponseSizeTooLarge".to_owned(),
                format!("Response payload size exceeded maximum allowed payload size ({MAX_RESPONSE_BYTES} bytes)."),
            ),
            Failure::Unavailable(why) => (
                "Runtime.Unavailable".to_owned(),
                format!("RequestId: {request_id} Error: {why}"),
            ),
        };
        let body = serde_json::json!({ "errorType": error_type, "errorMessage": message });
        (error_type, Bytes::from(body.to_string()))
    }
}

/// Why an instance could not be started.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("function {function}: {what} was not found; {help}")]
    NotFound {
        function: String,
        what: String,
        help: String,
    },
    #[error("function {function}: cannot start {program}: {source}")]
    Spawn {
        function: String,
        program: String,
        source: std::io::Error,
    },
    #[error("cannot open a Runtime API port: {0}")]
    Listen(std::io::Error),
    #[error("function {function}: its package cannot be used: {reason}")]
    Package { function: String, reason: String },
}

/// Starts instances of functions. One per runtime family, shared by all functions.
pub trait Runtime: Send + Sync + 'static {
    /// Start a new instance. Returns once the instance exists (its process is spawned); the
    /// function's init runs concurrently and is awaited by its first invocation.
    fn start(&self, config: Arc<InstanceConfig>) -> BoxFuture<'static, Result<Box<dyn Instance>, StartError>>;

    /// Processes started ahead of demand and ready to serve a cold start now, by language
    /// (what idle costs, for the metrics). None by default.
    fn standby(&self) -> Vec<(&'static str, usize)> {
        Vec::new()
    }
}

/// A started instance of one function. It serves one invocation at a time (Lambda's model);
/// the invoker never calls `invoke` concurrently on one instance. Dropping it stops it.
pub trait Instance: Send + Sync {
    /// Run one invocation to completion, enforcing the function's timeout.
    fn invoke(&mut self, invocation: Invocation) -> BoxFuture<'_, Completed>;
    /// False once the instance has failed and must be thrown away.
    fn is_healthy(&self) -> bool;
    /// The process id, where there is one.
    fn pid(&self) -> Option<u32>;
}
