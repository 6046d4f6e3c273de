//! The admin API's bodies (JSON), shared by `sylph server` and the `sylph` commands that call
//! it. Every admin call carries `Authorization: Bearer ID:SECRET`.

use serde::{Deserialize, Serialize};

use crate::package::FileEntry;

/// The prefix of every admin API path.
pub const ADMIN_PREFIX: &str = "/_sylph/admin/";
/// Health: `{"status":"ok"}` once every deployed service is loaded.
pub const HEALTH_PATH: &str = "/_sylph/health";

/// `POST /_sylph/admin/blobs/missing`: which of these hashes the server lacks.
#[derive(Debug, Serialize, Deserialize)]
pub struct MissingBlobs {
    pub hashes: Vec<String>,
}

/// `POST /_sylph/admin/services/{name}/{stage}/deploy`.
#[derive(Debug, Serialize, Deserialize)]
pub struct DeployRequest {
    pub service: sylph_model::Service,
    pub files: Vec<FileEntry>,
}

/// What a deploy, a rollback or `info` answers: the service as it now runs.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ServiceInfo {
    pub name: String,
    pub stage: String,
    pub region: String,
    pub api_id: String,
    /// The version serving requests.
    pub version: u32,
    pub versions: Vec<u32>,
    /// Unix seconds of the last deploy or rollback.
    pub updated: u64,
    /// Base URLs of its API: host-based first, then path-based.
    pub endpoints: Vec<String>,
    pub routes: Vec<RouteInfo>,
    pub functions: Vec<FunctionInfo>,
    pub tables: Vec<String>,
    pub aliases: Vec<AliasInfo>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RouteInfo {
    pub method: String,
    /// Full path-based URL.
    pub url: String,
    pub function: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FunctionInfo {
    /// The key under `functions:`.
    pub key: String,
    /// The deployed name (`{service}-{stage}-{key}`), what the Invoke API takes.
    pub name: String,
    pub runtime: String,
    pub memory_mb: u32,
    pub timeout_secs: u64,
    pub version: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AliasInfo {
    pub name: String,
    pub version: u32,
    pub additional: Option<(u32, f64)>,
}

/// `POST …/rollback`.
#[derive(Debug, Serialize, Deserialize)]
pub struct RollbackRequest {
    /// Default: the version before the one serving.
    pub version: Option<u32>,
}

/// `PUT …/aliases/{name}`.
#[derive(Debug, Serialize, Deserialize)]
pub struct AliasRequest {
    pub version: u32,
    pub additional: Option<(u32, f64)>,
}

/// `POST …/invoke`.
#[derive(Debug, Serialize, Deserialize)]
pub struct InvokeRequest {
    pub function: String,
    /// JSON text.
    pub payload: String,
    /// `RequestResponse` (default) or `Event`.
    pub invocation_type: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct InvokeResponse {
    pub status: u16,
    pub payload: String,
    /// `Unhandled` when the function failed.
    pub function_error: Option<String>,
    /// The invocation's log lines (START … REPORT).
    pub log: String,
}

/// `POST /_sylph/admin/keys`.
#[derive(Debug, Serialize, Deserialize)]
pub struct CreateKey {
    pub name: String,
    /// Service names; empty means every service.
    pub services: Vec<String>,
    pub admin: bool,
}

/// A key just made: the only time its secret is shown.
#[derive(Debug, Serialize, Deserialize)]
pub struct CreatedKey {
    pub id: String,
    pub secret: String,
    pub key: crate::keys::Key,
}

/// Any refusal: `{"error": "..."}` with a status.
#[derive(Debug, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: String,
}

/// `GET …/logs?function=F&since=MS&filter=TEXT&limit=N`.
#[derive(Debug, Serialize, Deserialize)]
pub struct LogsResponse {
    pub lines: Vec<LogLine>,
    /// The server's clock (Unix ms) when it answered: where a `--tail` continues from.
    pub now_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogLine {
    pub time_ms: u64,
    pub request_id: Option<String>,
    pub text: String,
}

/// `GET …/metrics?function=F&since=MS`: one row per function.
#[derive(Debug, Serialize, Deserialize)]
pub struct MetricsResponse {
    pub since_ms: u64,
    pub functions: Vec<FunctionMetrics>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct FunctionMetrics {
    pub function: String,
    pub invocations: u64,
    pub errors: u64,
    pub throttles: u64,
    pub cold_starts: u64,
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub max_concurrency: i64,
}
