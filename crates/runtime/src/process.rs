//! The process runtime: each instance is a child process with its own Runtime API endpoint.
//!
//! Node.js and Python functions run under small bootstraps written for Sylph (embedded in the
//! binary and written to a cache folder once); `provided.*` functions run the package's own
//! executable `bootstrap`. Every instance gets its own process group, and the kernel kills it
//! if Sylph dies (`PR_SET_PDEATHSIG`), so no function process outlives the server.

use std::collections::{BTreeMap, HashMap};
use std::os::fd::AsRawFd as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use hyper::header::HeaderValue;
use hyper_util::rt::TokioIo;
use sylph_model::Runtime as RuntimeId;
use sylph_telemetry::{LogSink, UtcTime};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use crate::api::{self, ApiState, Pending, Reply, Status};
use crate::logs::LogCapture;
use crate::netns::{InstanceNet, RUNTIME_API_ADDR};
use crate::{
    BoxFuture, Completed, Failure, Instance, InstanceConfig, Invocation, Outcome, Runtime, StartError, StartKind,
    INIT_TIMEOUT,
};

/// Lambda's limit on open files per execution environment.
const MAX_OPEN_FILES: libc::rlim_t = 1024;

const NODE_BOOTSTRAP: &str = include_str!("../bootstrap/node.js");
const PYTHON_BOOTSTRAP: &str = include_str!("../bootstrap/python.py");

/// Host variables passed through to functions; everything else comes from Lambda's set and the
/// function's `environment`, so a function sees what it would see on Lambda.
const PASSTHROUGH_ENV: &[&str] = &[
    "PATH",
    "HOME",
    "LANG",
    "LC_ALL",
    "PYENV_ROOT",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
];

/// Cheap to clone: clones share the same runtime.
#[derive(Clone)]
pub struct ProcessRuntime {
    inner: Arc<Inner>,
}

/// Serves one connection that function code opened to Sylph's APIs (tables, Invoke) from
/// inside its network namespace, with the access key that instance was issued (if any). The
/// permit must be held as long as the connection is served.
pub type ApiHandler = Arc<dyn Fn(tokio::net::TcpStream, Option<Arc<str>>, ConnectionPermit) + Send + Sync>;

/// Connections one instance may have open to Sylph's APIs at once; more are closed at once.
/// (Each costs Sylph a descriptor and a task; a function has 1,024 descriptors per process
/// and up to 1,024 processes.)
pub const MAX_INSTANCE_CONNECTIONS: usize = 64;

/// One of an instance's [`MAX_INSTANCE_CONNECTIONS`]; dropping it frees the place.
pub struct ConnectionPermit(#[allow(dead_code)] tokio::sync::OwnedSemaphorePermit);

/// Issues each instance credentials of its own, as Lambda gives each execution environment a
/// session of the function's role.
pub trait CredentialIssuer: Send + Sync {
    fn issue(&self, function: &sylph_model::Function) -> InstanceCredentials;
}

/// One instance's credentials, put in its environment as `AWS_ACCESS_KEY_ID`,
/// `AWS_SECRET_ACCESS_KEY` and `AWS_SESSION_TOKEN`.
pub struct InstanceCredentials {
    pub access_key_id: Arc<str>,
    pub secret_access_key: String,
    pub session_token: String,
    /// Held by the instance; dropping it revokes the credentials.
    pub lease: Box<dyn Send + Sync>,
}

/// A language runtime whose processes can be started before any function needs them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Family {
    Node,
    Python,
}

impl Family {
    fn of(runtime: &RuntimeId) -> Option<Family> {
        match runtime {
            RuntimeId::Node(_) => Some(Family::Node),
            RuntimeId::Python(_) => Some(Family::Python),
            RuntimeId::Provided(_) => None,
        }
    }
}

/// Whether a pre-started runtime has sent its `W` frame (preloading finished), without
/// consuming it.
fn preloaded(channel: &std::os::unix::net::UnixStream) -> bool {
    const READY: [u8; 5] = [1, 0, 0, 0, b'W'];
    let mut buf = [0u8; 5];
    // SAFETY: a non-blocking peek into our own buffer on a socket we own.
    let n = unsafe {
        libc::recv(
            channel.as_raw_fd(),
            buf.as_mut_ptr().cast(),
            buf.len(),
            libc::MSG_PEEK | libc::MSG_DONTWAIT,
        )
    };
    n == 5 && buf == READY
}

/// Whether a pre-started runtime has finished preloading; consumes its `W` frame if so.
fn preload_done(channel: &mut std::os::unix::net::UnixStream) -> bool {
    let ready = preloaded(channel);
    if ready {
        let mut buf = [0u8; 5];
        let _ = std::io::Read::read_exact(channel, &mut buf);
    }
    ready
}

/// A started process, not yet an instance of any particular function. Dropping it kills the
/// process (`kill_on_drop`).
struct Spawned {
    child: tokio::process::Child,
    pid: u32,
    out_r: std::os::fd::OwnedFd,
    err_r: std::os::fd::OwnedFd,
    channel: Option<std::os::unix::net::UnixStream>,
    /// The HTTP Runtime API listener, for runtimes that do not use the frame channel.
    runtime_api: Option<TcpListener>,
    /// The instance's own network namespace, with Sylph's API listener inside it.
    net: Option<InstanceNet>,
    spawned_at: Instant,
    /// The limit groups the process was started in.
    memory: Option<crate::limits::InstanceGroup>,
    pids: Option<crate::limits::InstanceGroup>,
    freezer: Option<crate::limits::InstanceGroup>,
}

/// Pre-started runtime processes per language, and how many to keep.
#[derive(Default)]
struct WarmPool {
    ready: HashMap<Family, Vec<Spawned>>,
    /// Being started right now, so that a refill never starts more than the target.
    starting: HashMap<Family, usize>,
    /// How many to keep, at least (`--prewarm`).
    target: HashMap<Family, usize>,
    /// Recent demand: cold starts per language, to size the pool for bursts.
    demand: HashMap<Family, Demand>,
    last_used: Option<Instant>,
}

/// The largest burst of cold starts of one language seen lately, so that the pool is refilled
/// to meet the next one: 8 cold starts at once are served by 8 pre-started runtimes the next
/// time. The peak fades after [`Demand::MEMORY`]; the pool never grows past [`MAX_STANDBY`].
#[derive(Default)]
struct Demand {
    arrivals: std::collections::VecDeque<Instant>,
    peak: usize,
    peak_at: Option<Instant>,
}

/// The most pre-started runtimes kept per language, whatever the demand: what idle may cost.
const MAX_STANDBY: usize = 8;

impl Demand {
    /// Cold starts this close together count as one burst.
    const BURST: Duration = Duration::from_secs(2);
    /// How long a burst is remembered.
    const MEMORY: Duration = Duration::from_secs(60);

    fn record(&mut self, now: Instant) {
        while self
            .arrivals
            .front()
            .is_some_and(|t| now.duration_since(*t) > Self::BURST)
        {
            self.arrivals.pop_front();
        }
        self.arrivals.push_back(now);
        let burst = self.arrivals.len();
        if burst >= self.peak || self.peak_at.is_none_or(|t| now.duration_since(t) > Self::MEMORY) {
            self.peak = burst;
            self.peak_at = Some(now);
        }
    }

    /// The recent peak, or 0 once it has faded.
    fn recent_peak(&self, now: Instant) -> usize {
        match self.peak_at {
            Some(t) if now.duration_since(t) <= Self::MEMORY => self.peak,
            _ => 0,
        }
    }
}

struct Inner {
    sink: Arc<dyn LogSink>,
    bootstrap_dir: PathBuf,
    node: OnceLock<PathBuf>,
    python: OnceLock<PathBuf>,
    /// Placeholder credentials and endpoints every function gets.
    base_env: Vec<(String, String)>,
    warm: Mutex<WarmPool>,
    /// Where memorySize is enforced; `None` where the host does not let Sylph.
    memory: Option<crate::limits::Cgroups>,
    /// Where the process-count limit is enforced.
    pids: Option<crate::limits::Cgroups>,
    /// Where instances are frozen between invocations (cgroup v1; v2 uses the memory group).
    freezer: Option<crate::limits::Cgroups>,
    /// Every process runs inside it, unless running unsandboxed was asked for.
    sandbox: Option<crate::sandbox::Sandbox>,
    /// Whether every instance gets its own network namespace (see `netns.rs`).
    isolated_network: bool,
    /// How instances reach the outside world; unset: they do not.
    outbound: OnceLock<crate::netns::Outbound>,
    /// The port Sylph's APIs are served on inside each instance's network namespace.
    sylph_api_port: OnceLock<u16>,
    /// Serves the connections function code opens to Sylph's APIs.
    sylph_api_handler: OnceLock<ApiHandler>,
    /// Issues each instance its own credentials; without it every instance gets placeholders.
    credentials: OnceLock<Arc<dyn CredentialIssuer>>,
    /// Folders each interpreter needs inside the sandbox (its installation prefix).
    node_dirs: OnceLock<Vec<PathBuf>>,
    python_dirs: OnceLock<Vec<PathBuf>>,
}

impl ProcessRuntime {
    /// `bootstrap_dir` is where the embedded runtime clients are written (once, if missing).
    pub fn new(
        sink: Arc<dyn LogSink>,
        bootstrap_dir: PathBuf,
        base_env: Vec<(String, String)>,
        sandbox: Option<crate::sandbox::Sandbox>,
    ) -> std::io::Result<ProcessRuntime> {
        std::fs::create_dir_all(&bootstrap_dir)?;
        for (name, text) in [("node.js", NODE_BOOTSTRAP), ("python.py", PYTHON_BOOTSTRAP)] {
            let path = bootstrap_dir.join(name);
            if std::fs::read_to_string(&path).ok().as_deref() != Some(text) {
                // Write then rename, so a concurrently starting sylph never reads half a file.
                let tmp = bootstrap_dir.join(format!(".{name}.{}", std::process::id()));
                std::fs::write(&tmp, text)?;
                std::fs::rename(&tmp, &path)?;
            }
        }
        // The freezer first: its clean-up thaws what a killed Sylph left frozen, so that the
        // memory and pids groups of the same instances empty at once when swept next.
        let freezer = crate::limits::Cgroups::detect(crate::limits::Controller::Freezer);
        let memory = crate::limits::Cgroups::detect(crate::limits::Controller::Memory);
        // With cgroup v2 a process belongs to one group only: the memory group caps pids too
        // (and freezes, with cgroup.freeze), and a sibling group would pull the process out of
        // its memory limit.
        let v2 = memory.as_ref().is_some_and(|m| m.mode() == crate::limits::Mode::V2);
        let pids = if v2 {
            None
        } else {
            crate::limits::Cgroups::detect(crate::limits::Controller::Pids)
        };
        let freezer = freezer.filter(|_| !v2);
        let isolated_network = match (&sandbox, crate::netns::probe()) {
            (Some(_), Ok(())) => true,
            (Some(_), Err(why)) => {
                tracing::warn!("functions share the host's network: {why}");
                false
            }
            (None, _) => false,
        };
        Ok(ProcessRuntime {
            inner: Arc::new(Inner {
                sink,
                bootstrap_dir,
                node: OnceLock::new(),
                python: OnceLock::new(),
                base_env,
                warm: Mutex::new(WarmPool::default()),
                memory,
                pids,
                freezer,
                sandbox,
                isolated_network,
                outbound: OnceLock::new(),
                sylph_api_port: OnceLock::new(),
                sylph_api_handler: OnceLock::new(),
                credentials: OnceLock::new(),
                node_dirs: OnceLock::new(),
                python_dirs: OnceLock::new(),
            }),
        })
    }

    /// How instances are frozen between invocations, or `None` where this host cannot.
    pub fn freezing(&self) -> Option<String> {
        match (&self.inner.freezer, &self.inner.memory) {
            (Some(f), _) => Some(f.describe()),
            (None, Some(m)) if m.mode() == crate::limits::Mode::V2 => {
                Some(format!("cgroup.freeze of the {}", m.describe()))
            }
            _ => None,
        }
    }

    /// Let instances started from now on reach the outside world through slirp4netns (never
    /// the host itself or link-local addresses). Returns how, or why not.
    pub fn allow_outbound(&self) -> Result<String, String> {
        if !self.inner.isolated_network {
            return Err("instances share the host's network".into());
        }
        let outbound = crate::netns::Outbound::detect()
            .ok_or("slirp4netns is not installed (apt-get install slirp4netns); instances have no outbound network")?;
        let how = outbound.describe();
        let resolv = self.inner.bootstrap_dir.join("resolv.conf");
        std::fs::write(&resolv, format!("nameserver {}\n", crate::netns::NAMESERVER))
            .map_err(|e| format!("cannot write {}: {e}", resolv.display()))?;
        let _ = self.inner.outbound.set(outbound);
        Ok(how)
    }

    /// Give instances the host's network instead of their own namespaces (`--host-network`:
    /// for measurement, or hosts that cannot create network namespaces). Only before the
    /// runtime is shared; returns whether it took effect.
    pub fn share_host_network(&mut self) -> bool {
        match Arc::get_mut(&mut self.inner) {
            Some(inner) => {
                inner.isolated_network = false;
                true
            }
            None => false,
        }
    }

    /// The folders of this Sylph's instance groups, freezer first (for the guard, see
    /// [`crate::limits::guard_main`]).
    pub fn group_dirs(&self) -> Vec<PathBuf> {
        [&self.inner.freezer, &self.inner.memory, &self.inner.pids]
            .into_iter()
            .flatten()
            .map(|c| c.parent().to_path_buf())
            .collect()
    }

    /// Whether each instance has a network namespace of its own.
    pub fn network_isolated(&self) -> bool {
        self.inner.isolated_network
    }

    /// Serve Sylph's APIs inside every instance's network namespace at `127.0.0.1:port`,
    /// with `handler` (set later with [`ProcessRuntime::set_sylph_api_handler`]). Call before
    /// the first instance starts; without a network namespace this does nothing.
    pub fn serve_sylph_api_on(&self, port: u16) {
        let _ = self.inner.sylph_api_port.set(port);
    }

    /// Give every instance started from now on credentials from `issuer`.
    pub fn set_credential_issuer(&self, issuer: Arc<dyn CredentialIssuer>) {
        let _ = self.inner.credentials.set(issuer);
    }

    /// What serves the connections function code opens to Sylph's APIs. Connections made
    /// before it is set are closed.
    pub fn set_sylph_api_handler(&self, handler: ApiHandler) {
        let _ = self.inner.sylph_api_handler.set(handler);
    }
}

impl Inner {
    /// The real interpreter path: version-manager shims (pyenv, nvm) cost tens of
    /// milliseconds per start, so resolve them once.
    pub(crate) fn interpreter(cell: &OnceLock<PathBuf>, program: &str, probe: &[&str]) -> PathBuf {
        cell.get_or_init(|| {
            std::process::Command::new(program)
                .args(probe)
                .stderr(Stdio::null())
                .output()
                .ok()
                .filter(|o| o.status.success())
                .and_then(|o| String::from_utf8(o.stdout).ok())
                .map(|s| PathBuf::from(s.trim()))
                .filter(|p| p.is_file())
                .unwrap_or_else(|| PathBuf::from(program))
        })
        .clone()
    }

    /// The interpreter and Sylph's bootstrap for a language runtime.
    fn family_command(&self, family: Family) -> (PathBuf, Vec<String>) {
        match family {
            Family::Node => (
                Self::interpreter(&self.node, "node", &["-e", "process.stdout.write(process.execPath)"]),
                vec![self.bootstrap_dir.join("node.js").to_string_lossy().into_owned()],
            ),
            Family::Python => (
                Self::interpreter(&self.python, "python3", &["-c", "import sys; print(sys.executable)"]),
                vec![
                    "-u".into(),
                    self.bootstrap_dir.join("python.py").to_string_lossy().into_owned(),
                ],
            ),
        }
    }

    /// The folders `family`'s interpreter needs inside the sandbox, found once.
    fn interpreter_dirs(&self, family: Family) -> &[PathBuf] {
        let cell = match family {
            Family::Node => &self.node_dirs,
            Family::Python => &self.python_dirs,
        };
        cell.get_or_init(|| {
            let (program, _) = self.family_command(family);
            let prefixes: Vec<PathBuf> = match family {
                // `<prefix>/bin/node`, with its libraries under `<prefix>/lib`.
                Family::Node => program.parent().and_then(Path::parent).map(Path::to_path_buf).into_iter().collect(),
                // A virtualenv's base installation holds the standard library.
                Family::Python => std::process::Command::new(&program)
                    .args([
                        "-c",
                        "import sys, site; print(sys.prefix); print(sys.base_prefix); print(site.getusersitepackages())",
                    ])
                    .stderr(Stdio::null())
                    .output()
                    .map(|o| String::from_utf8_lossy(&o.stdout).lines().map(PathBuf::from).collect())
                    .unwrap_or_default(),
            };
            crate::sandbox::interpreter_dirs(&prefixes)
        })
    }

    /// Everything an instance of `runtime` sees beyond the system folders and its code: Sylph's
    /// runtime clients and the interpreter it runs on (for `provided.*`, the machine's Node.js
    /// and Python, which bootstrap scripts may call, as the official clients' examples do).
    fn visible_dirs(&self, runtime: Option<Family>) -> Vec<PathBuf> {
        let mut out = vec![self.bootstrap_dir.clone()];
        if self.sandbox.is_none() {
            return out;
        }
        match runtime {
            Some(f) => out.extend_from_slice(self.interpreter_dirs(f)),
            None => {
                out.extend_from_slice(self.interpreter_dirs(Family::Node));
                out.extend_from_slice(self.interpreter_dirs(Family::Python));
            }
        }
        out
    }

    /// The instance's network: its own namespace when isolated, with an HTTP Runtime API
    /// listener when `http_api`; and the address the runtime is told (AWS_LAMBDA_RUNTIME_API).
    async fn network(&self, http_api: bool) -> Result<(Option<InstanceNet>, Option<TcpListener>, String), StartError> {
        if self.isolated_network {
            let mut net = InstanceNet::create(http_api, self.sylph_api_port.get().copied(), self.outbound.get())
                .map_err(StartError::Listen)?;
            let listener = net
                .runtime_api
                .take()
                .map(TcpListener::from_std)
                .transpose()
                .map_err(StartError::Listen)?;
            return Ok((Some(net), listener, RUNTIME_API_ADDR.to_string()));
        }
        if http_api {
            let listener = TcpListener::bind(("127.0.0.1", 0)).await.map_err(StartError::Listen)?;
            let addr = listener.local_addr().map_err(StartError::Listen)?.to_string();
            return Ok((None, Some(listener), addr));
        }
        // Frame-channel runtimes never use HTTP; the variable is set as Lambda sets it.
        Ok((None, None, RUNTIME_API_ADDR.to_string()))
    }

    /// `PATH` inside the sandbox: the interpreters' own folders, then the system's, as Lambda
    /// puts `/var/lang/bin` first. The host's `PATH` names folders the sandbox does not hold.
    fn sandbox_path(&self, dirs: &[PathBuf]) -> String {
        let mut parts: Vec<String> = dirs
            .iter()
            .map(|d| d.join("bin"))
            .filter(|b| b.is_dir())
            .map(|b| b.to_string_lossy().into_owned())
            .collect();
        parts.extend(["/usr/local/bin", "/usr/bin", "/bin"].map(String::from));
        parts.join(":")
    }

    fn command_for(&self, config: &InstanceConfig) -> Result<(PathBuf, Vec<String>), StartError> {
        let f = &config.function;
        Ok(match &f.runtime {
            RuntimeId::Node(_) => self.family_command(Family::Node),
            RuntimeId::Python(_) => self.family_command(Family::Python),
            RuntimeId::Provided(_) => (provided_bootstrap(config)?, Vec::new()),
        })
    }

    fn environment(
        &self,
        config: &InstanceConfig,
        api_addr: &str,
        credentials: Option<&InstanceCredentials>,
    ) -> BTreeMap<String, String> {
        let f = &config.function;
        let mut env = BTreeMap::new();
        for key in PASSTHROUGH_ENV {
            if let Ok(v) = std::env::var(key) {
                env.insert((*key).to_owned(), v);
            }
        }
        for (k, v) in &self.base_env {
            env.insert(k.clone(), v.clone());
        }
        for (k, v) in &f.environment {
            env.insert(k.clone(), v.clone());
        }
        for (k, v) in &config.extra_env {
            env.insert(k.clone(), v.clone());
        }
        let root = config.root.to_string_lossy().into_owned();
        let now = UtcTime::now();
        let stream = format!(
            "{}/[$LATEST]{}",
            now.slash_date(),
            sylph_telemetry::new_request_id().replace('-', "")
        );
        // Lambda's reserved variables win over the function's, as on AWS.
        let reserved = [
            ("AWS_LAMBDA_RUNTIME_API", api_addr.to_owned()),
            ("_HANDLER", f.handler.clone()),
            ("LAMBDA_TASK_ROOT", root),
            ("LAMBDA_RUNTIME_DIR", self.bootstrap_dir.to_string_lossy().into_owned()),
            ("AWS_LAMBDA_FUNCTION_NAME", f.name.clone()),
            ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".to_owned()),
            ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", f.memory_mb.to_string()),
            ("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{}", f.name)),
            ("AWS_LAMBDA_LOG_STREAM_NAME", stream),
            ("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand".to_owned()),
            ("AWS_REGION", config.region.clone()),
            ("AWS_DEFAULT_REGION", config.region.clone()),
            ("AWS_EXECUTION_ENV", format!("AWS_Lambda_{}", f.runtime.id())),
            ("TZ", ":UTC".to_owned()),
            ("PYTHONUNBUFFERED", "1".to_owned()),
        ];
        for (k, v) in reserved {
            env.insert(k.to_owned(), v);
        }
        if let Some(c) = credentials {
            // The instance's own identity: reserved, as on Lambda.
            env.insert("AWS_ACCESS_KEY_ID".to_owned(), c.access_key_id.to_string());
            env.insert("AWS_SECRET_ACCESS_KEY".to_owned(), c.secret_access_key.clone());
            env.insert("AWS_SESSION_TOKEN".to_owned(), c.session_token.clone());
        }
        for (k, v) in [
            ("AWS_ACCESS_KEY_ID", "SYLPHLOCALACCESSKEY"),
            ("AWS_SECRET_ACCESS_KEY", "sylph-local-secret-access-key"),
            ("AWS_SESSION_TOKEN", "sylph-local-session-token"),
        ] {
            env.entry(k.to_owned()).or_insert_with(|| v.to_owned());
        }
        if self.sandbox.is_some() {
            let dirs = self.visible_dirs(Family::of(&f.runtime));
            env.insert("PATH".to_owned(), self.sandbox_path(&dirs));
        }
        env
    }

    /// Start a process: its output pipes, its Runtime API listener and (for Sylph's own
    /// bootstraps) its frame channel. `env` is the whole environment it starts with.
    async fn spawn_process(
        &self,
        program: &Path,
        args: &[String],
        env: &BTreeMap<String, String>,
        cwd: &Path,
        channel: bool,
        runtime_api: Option<TcpListener>,
        net: Option<InstanceNet>,
        label: &str,
        memory_mb: u32,
        tmp_mb: u32,
        visible: &[PathBuf],
    ) -> Result<Spawned, StartError> {
        let memory = self.limit_group(self.memory.as_ref(), memory_mb, label);
        let pids = self.limit_group(self.pids.as_ref(), 0, label);
        let freezer = self.limit_group(self.freezer.as_ref(), 0, label);
        let groups: Vec<&crate::limits::InstanceGroup> =
            memory.iter().chain(pids.iter()).chain(freezer.iter()).collect();
        let spawn_err = |source| StartError::Spawn {
            function: label.to_owned(),
            program: program.display().to_string(),
            source,
        };
        let (out_r, out_w) = std::io::pipe().map_err(spawn_err)?;
        let (err_r, err_w) = std::io::pipe().map_err(spawn_err)?;
        // Sylph's own bootstraps talk over a socketpair (fd 3) instead of HTTP: see pipe.rs.
        let channel = if channel {
            Some(std::os::unix::net::UnixStream::pair().map_err(spawn_err)?)
        } else {
            None
        };
        let child_fd = channel.as_ref().map(|(_, child)| child.as_raw_fd());
        let procs: Vec<std::ffi::CString> = groups.iter().map(|g| g.procs.clone()).collect();
        let seccomp = match &self.sandbox {
            // Fail closed: no instance starts without its filters.
            Some(_) => crate::sandbox::seccomp_programs().map_err(spawn_err)?,
            None => Vec::new(),
        };
        // Descriptors the child gets at fixed numbers: (ours, theirs). At most four: the frame
        // channel and three seccomp filters; a fixed array, as nothing may allocate after fork.
        let mut inherited = [(-1, -1); 4];
        if let Some(fd) = child_fd {
            inherited[0] = (fd, crate::pipe::RUNTIME_FD);
        }
        for (i, f) in seccomp.iter().take(3).enumerate() {
            inherited[1 + i] = (f.as_raw_fd(), crate::sandbox::FIRST_SECCOMP_FD + i as i32);
        }
        let seccomp_filters = seccomp.len().min(3);
        let netns_fd = net.as_ref().map(InstanceNet::namespace_fd);
        let (program, args): (PathBuf, Vec<String>) = match &self.sandbox {
            Some(sb) => {
                let mut seen: Vec<&Path> = visible.iter().map(PathBuf::as_path).collect();
                // The working folder (the service) and the program itself (a `provided`
                // bootstrap may live in a build folder); never `/` or `/tmp`, which would
                // expose the host's.
                for p in [cwd, program] {
                    if p != Path::new("/") && p != Path::new("/tmp") {
                        seen.push(p);
                    }
                }
                let resolv_conf = self.outbound.get().map(|_| self.bootstrap_dir.join("resolv.conf"));
                sb.wrap(
                    program,
                    args,
                    cwd,
                    &seen,
                    seccomp_filters,
                    tmp_mb,
                    resolv_conf.as_deref(),
                )
            }
            None => (program.to_path_buf(), args.to_vec()),
        };
        let mut cmd = tokio::process::Command::new(&program);
        cmd.args(&args)
            .current_dir(cwd)
            .env_clear()
            .envs(env)
            .stdin(Stdio::null())
            .stdout(out_w)
            .stderr(err_w)
            .process_group(0)
            .kill_on_drop(true);
        if child_fd.is_some() {
            cmd.env("SYLPH_RUNTIME_FD", crate::pipe::RUNTIME_FD.to_string());
        }
        let sandboxed = self.sandbox.is_some();
        // SAFETY: prctl, setns, setrlimit and dup2 are async-signal-safe and touch no memory of
        // the parent.
        let sylph_pid = std::process::id() as libc::pid_t;
        unsafe {
            cmd.pre_exec(move || {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                // Sylph may have exited between the fork and the line above, in which case no
                // signal will ever come: do not start at all (this left orphans when Sylph was
                // stopped while pre-started runtimes were being spawned).
                if libc::getppid() != sylph_pid {
                    return Err(std::io::Error::other("sylph has exited"));
                }
                if let Some(fd) = netns_fd {
                    // The instance's own network, before bubblewrap builds the rest.
                    crate::netns::join_from_child(fd)?;
                }
                for p in &procs {
                    // Join the limit groups before exec, so everything the runtime does counts.
                    crate::limits::join_from_child(p)?;
                }
                // Move each inherited descriptor out of the way first (to 100 and up), so that
                // placing one at its number never closes another still to be placed.
                let mut moved = [-1; 4];
                for (i, (ours, _)) in inherited.iter().enumerate() {
                    if *ours >= 0 {
                        moved[i] = libc::fcntl(*ours, libc::F_DUPFD_CLOEXEC, 100);
                        if moved[i] < 0 {
                            return Err(std::io::Error::last_os_error());
                        }
                    }
                }
                for (i, (_, theirs)) in inherited.iter().enumerate() {
                    // dup2 clears close-on-exec on the new descriptor, so the child inherits it
                    // (bubblewrap reads the seccomp filters; the runtime keeps the channel).
                    if moved[i] >= 0 && libc::dup2(moved[i], *theirs) < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                if sandboxed {
                    // Lambda's limit on open files, for the runtime and everything it starts.
                    // Last: the moves above may need descriptors past it (a busy Sylph holds
                    // many); those copies are close-on-exec and gone once bubblewrap starts.
                    let files = libc::rlimit {
                        rlim_cur: MAX_OPEN_FILES,
                        rlim_max: MAX_OPEN_FILES,
                    };
                    if libc::setrlimit(libc::RLIMIT_NOFILE, &files) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                Ok(())
            });
        }
        let spawned_at = Instant::now();
        let child = cmd.spawn().map_err(spawn_err)?;
        // Drop our copies of the pipes' write ends so the readers see EOF when the child exits.
        drop(cmd);
        drop(seccomp);
        let pid = child.id().unwrap_or(0);
        let channel = channel.map(|(ours, theirs)| {
            drop(theirs);
            ours
        });
        Ok(Spawned {
            child,
            pid,
            out_r: out_r.into(),
            err_r: err_r.into(),
            channel,
            runtime_api,
            net,
            spawned_at,
            memory,
            pids,
            freezer,
        })
    }

    async fn start_instance(self: Arc<Self>, config: Arc<InstanceConfig>) -> Result<Box<dyn Instance>, StartError> {
        // A pre-started runtime of the right language becomes this function: no process start,
        // and what every function loads (the AWS SDK) is already loaded.
        // Pre-started runtimes have the default /tmp; a function with another size starts anew.
        let default_tmp = config.function.ephemeral_mb == crate::sandbox::TMP_MB;
        if let Some(family) = Family::of(&config.function.runtime).filter(|_| default_tmp) {
            let taken = self.take_warm(family);
            // Taken or not, refill: a cold start that found none (after the pool expired, or
            // while it was still loading) is the sign the next one will want one too.
            Inner::replenish(&self, family);
            if let Some(mut warm) = taken {
                let credentials = self.credentials.get().map(|i| i.issue(&config.function));
                let env = self.environment(&config, &RUNTIME_API_ADDR.to_string(), credentials.as_ref());
                let spec = serde_json::json!({"env": env, "cwd": config.root}).to_string();
                let mut frame = Vec::with_capacity(spec.len() + 5);
                frame.extend_from_slice(&((spec.len() + 1) as u32).to_le_bytes());
                frame.push(b'S');
                frame.extend_from_slice(spec.as_bytes());
                // The process tree already lives in its own groups: give it the function's limit.
                if let Some(g) = warm.memory.as_mut() {
                    if let Err(e) = g.set_limit_mb(config.function.memory_mb) {
                        tracing::warn!("cannot apply the memory limit to a pre-started runtime: {e}");
                    }
                }
                let sent = warm
                    .channel
                    .as_mut()
                    .map(|c| std::io::Write::write_all(c, &frame).is_ok())
                    .unwrap_or(false);
                if sent {
                    warm.spawned_at = Instant::now();
                    return Ok(self.assemble(config, warm, StartKind::Prewarmed, credentials));
                }
            }
        }
        let (program, args) = self.command_for(&config)?;
        let channel = !matches!(config.function.runtime, RuntimeId::Provided(_));
        let (net, runtime_api, api_addr) = self.network(!channel).await?;
        let credentials = self.credentials.get().map(|i| i.issue(&config.function));
        let env = self.environment(&config, &api_addr, credentials.as_ref());
        let visible = self.visible_dirs(Family::of(&config.function.runtime));
        let spawned = self
            .spawn_process(
                &program,
                &args,
                &env,
                &config.root,
                channel,
                runtime_api,
                net,
                &config.function.name,
                config.function.memory_mb,
                config.function.ephemeral_mb,
                &visible,
            )
            .await?;
        Ok(self.assemble(config, spawned, StartKind::Cold, credentials))
    }

    fn limit_group(
        &self,
        cgroups: Option<&crate::limits::Cgroups>,
        limit_mb: u32,
        label: &str,
    ) -> Option<crate::limits::InstanceGroup> {
        match cgroups?.create(limit_mb) {
            Ok(g) => Some(g),
            Err(e) => {
                tracing::warn!(function = %label, "limit not applied: {e}");
                None
            }
        }
    }

    /// Wire a started process up as an instance of `config`'s function.
    fn assemble(
        &self,
        config: Arc<InstanceConfig>,
        spawned: Spawned,
        start: StartKind,
        credentials: Option<InstanceCredentials>,
    ) -> Box<dyn Instance> {
        let Spawned {
            mut child,
            pid,
            out_r,
            err_r,
            channel,
            runtime_api,
            net,
            spawned_at,
            memory,
            pids,
            freezer,
        } = spawned;
        let logs = LogCapture::new(config.function.key.clone(), self.sink.clone());
        for fd in [out_r, err_r] {
            // Readers end by themselves at EOF, after draining what a dying process wrote.
            if let Ok(reader) = logs.attach(fd) {
                tokio::spawn(reader);
            }
        }
        let mut tasks = Vec::with_capacity(4);
        let mut net = net;
        if let Some(listener) = net.as_mut().and_then(|n| n.sylph_api.take()) {
            match TcpListener::from_std(listener) {
                Ok(listener) => tasks.push(tokio::spawn(serve_sylph_api(
                    listener,
                    self.sylph_api_handler.get().cloned(),
                    credentials.as_ref().map(|c| c.access_key_id.clone()),
                ))),
                Err(e) => tracing::error!("Sylph's API unavailable to an instance: {e}"),
            }
        }

        let (tx, rx) = mpsc::channel::<Pending>(1);
        let (status_tx, status_rx) = watch::channel(Status::Running);
        let state = Arc::new(ApiState {
            function_arn: HeaderValue::from_str(&config.function.arn(&config.region))
                .unwrap_or_else(|_| HeaderValue::from_static("arn:aws:lambda:::function:invalid")),
            next: tokio::sync::Mutex::new(rx),
            current: Mutex::new(None),
            ready_at: Mutex::new(None),
            status: status_tx,
        });
        // Sylph's own bootstraps use the frame channel only: no HTTP Runtime API is served for
        // them, so no other local process can take their invocations.
        let mut channel_closed = None;
        match channel {
            Some(ours) => {
                let (closed_tx, closed_rx) = oneshot::channel::<()>();
                channel_closed = Some(closed_rx);
                let serve_state = state.clone();
                match ours
                    .set_nonblocking(true)
                    .and_then(|()| tokio::net::UnixStream::from_std(ours))
                {
                    Ok(stream) => tasks.push(tokio::spawn(async move {
                        crate::pipe::serve(stream, serve_state).await;
                        let _ = closed_tx.send(());
                    })),
                    Err(e) => tracing::error!("runtime channel unavailable: {e}"),
                }
            }
            None => match runtime_api {
                Some(listener) => tasks.push(tokio::spawn(serve_api(listener, state.clone()))),
                None => tracing::error!("an HTTP runtime without a Runtime API listener"),
            },
        }
        let watcher_state = state.clone();
        let reaped = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let watcher_reaped = reaped.clone();
        tasks.push(tokio::spawn(async move {
            let status = match child.wait().await {
                Ok(s) => describe_exit(s),
                Err(e) => format!("wait failed: {e}"),
            };
            // The pid may be reused from now on: never signal it again.
            watcher_reaped.store(true, std::sync::atomic::Ordering::SeqCst);
            // A runtime that wrote its answer (or init error) and exited: let the channel
            // deliver that frame before the exit is published.
            if let Some(closed) = channel_closed {
                let _ = tokio::time::timeout(Duration::from_millis(200), closed).await;
            }
            watcher_state.status.send_if_modified(|cur| {
                if *cur == Status::Running {
                    *cur = Status::Exited(status);
                    true
                } else {
                    false
                }
            });
        }));

        Box::new(ProcessInstance {
            config,
            pid,
            state,
            tx,
            status: status_rx,
            spawned_at,
            start,
            invoked: false,
            healthy: true,
            logs,
            tasks,
            memory,
            _pids: pids,
            freezer,
            frozen: false,
            _credentials: credentials,
            net,
            reaped,
        })
    }
}

impl ProcessRuntime {
    /// The sandbox functions run in, or `None` when running unsandboxed.
    pub fn sandbox(&self) -> Option<String> {
        self.inner.sandbox.as_ref().map(|s| s.describe())
    }

    /// How memorySize is enforced on this host, or `None` if it is not.
    pub fn memory_limits(&self) -> Option<String> {
        self.inner.memory.as_ref().map(|m| m.describe())
    }

    /// How the per-instance process-count limit is enforced, or `None` if it is not.
    pub fn process_limits(&self) -> Option<String> {
        match (&self.inner.pids, &self.inner.memory) {
            (Some(p), _) => Some(p.describe()),
            (None, Some(m)) if m.mode() == crate::limits::Mode::V2 => Some(format!("pids.max of the {}", m.describe())),
            _ => None,
        }
    }

    /// Keep `count` runtime processes of `family` started ahead of demand, so that a cold start
    /// only loads the function's code. They are stopped after `idle` without use (and started
    /// again on the next cold start), so a quiet service holds no process.
    pub fn prewarm(&self, family: Family, count: usize, idle: Duration) {
        {
            let mut w = self.inner.warm.lock().unwrap_or_else(|e| e.into_inner());
            w.target.insert(family, count);
            // Keep-warm counts from now: without this, a service not called within the first
            // check period (5 s) lost its pre-started runtimes for good.
            w.last_used.get_or_insert_with(Instant::now);
        }
        Inner::replenish(&self.inner, family);
        let weak = Arc::downgrade(&self.inner);
        let period = (idle / 4).clamp(Duration::from_millis(100), Duration::from_secs(5));
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(period).await;
                let Some(inner) = weak.upgrade() else { break };
                let expired: Vec<Spawned> = {
                    let mut w = inner.warm.lock().unwrap_or_else(|e| e.into_inner());
                    let quiet = w.last_used.map_or(true, |t| t.elapsed() >= idle);
                    if quiet {
                        w.ready.get_mut(&family).map(std::mem::take).unwrap_or_default()
                    } else {
                        Vec::new()
                    }
                };
                drop(expired);
            }
        });
    }

    /// Pre-started processes of `family` ready right now.
    pub fn prewarmed(&self, family: Family) -> usize {
        self.inner
            .warm
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .ready
            .get(&family)
            .map_or(0, Vec::len)
    }
}

impl Inner {
    /// A pre-started runtime that has finished preloading, if one is ready now. One still
    /// loading is left to finish: a plain cold start beats waiting for it.
    fn take_warm(&self, family: Family) -> Option<Spawned> {
        let mut w = self.warm.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        w.last_used = Some(now);
        w.demand.entry(family).or_default().record(now);
        let list = w.ready.get_mut(&family)?;
        let mut i = 0;
        while i < list.len() {
            if !matches!(list[i].child.try_wait(), Ok(None)) {
                list.remove(i);
                continue;
            }
            if list[i].channel.as_mut().is_some_and(preload_done) {
                return Some(list.remove(i));
            }
            i += 1;
        }
        None
    }

    /// Start processes of `family` in the background until the target count is ready.
    fn replenish(this: &Arc<Inner>, family: Family) {
        let missing = {
            let mut w = this.warm.lock().unwrap_or_else(|e| e.into_inner());
            let base = w.target.get(&family).copied().unwrap_or(0);
            let peak = w.demand.get(&family).map_or(0, |d| d.recent_peak(Instant::now()));
            // Recent bursts raise the pool, up to what idle may cost; `--prewarm 0` keeps it off.
            let target = if base == 0 { 0 } else { base.max(peak.min(MAX_STANDBY)) };
            let have = w.ready.get(&family).map_or(0, Vec::len) + w.starting.get(&family).copied().unwrap_or(0);
            let missing = target.saturating_sub(have);
            *w.starting.entry(family).or_default() += missing;
            missing
        };
        for _ in 0..missing {
            let inner = this.clone();
            tokio::spawn(async move {
                let started = inner.spawn_generic(family).await;
                let mut w = inner.warm.lock().unwrap_or_else(|e| e.into_inner());
                if let Some(n) = w.starting.get_mut(&family) {
                    *n = n.saturating_sub(1);
                }
                match started {
                    Ok(s) => w.ready.entry(family).or_default().push(s),
                    Err(e) => tracing::warn!("cannot pre-start a runtime: {e}"),
                }
            });
        }
    }

    /// A runtime process that preloads what every function of its language loads, then waits
    /// to be told which function it is.
    async fn spawn_generic(&self, family: Family) -> Result<Spawned, StartError> {
        let (net, _, api_addr) = self.network(false).await?;
        let (program, args) = self.family_command(family);
        let mut env = BTreeMap::new();
        for key in PASSTHROUGH_ENV {
            if let Ok(v) = std::env::var(key) {
                env.insert((*key).to_owned(), v);
            }
        }
        for (k, v) in &self.base_env {
            env.insert(k.clone(), v.clone());
        }
        env.insert("AWS_LAMBDA_RUNTIME_API".into(), api_addr);
        env.insert("SYLPH_PREWARM".into(), "1".into());
        env.insert("PYTHONUNBUFFERED".into(), "1".into());
        env.insert("TZ".into(), ":UTC".into());
        let visible = self.visible_dirs(Some(family));
        if self.sandbox.is_some() {
            env.insert("PATH".into(), self.sandbox_path(&visible));
        }
        let cwd = PathBuf::from("/");
        self.spawn_process(
            &program,
            &args,
            &env,
            &cwd,
            true,
            None,
            net,
            "pre-started runtime",
            10240,
            crate::sandbox::TMP_MB,
            &visible,
        )
        .await
    }
}

impl Runtime for ProcessRuntime {
    fn start(&self, config: Arc<InstanceConfig>) -> BoxFuture<'static, Result<Box<dyn Instance>, StartError>> {
        let inner = self.inner.clone();
        Box::pin(async move { inner.start_instance(config).await })
    }

    fn standby(&self) -> Vec<(&'static str, usize)> {
        let w = self.inner.warm.lock().unwrap_or_else(|e| e.into_inner());
        [(Family::Node, "nodejs"), (Family::Python, "python")]
            .into_iter()
            .filter(|(f, _)| w.target.contains_key(f))
            .map(|(f, name)| {
                let ready = w.ready.get(&f).map_or(0, |list| {
                    list.iter()
                        .filter(|s| s.channel.as_ref().is_some_and(preloaded))
                        .count()
                });
                (name, ready)
            })
            .collect()
    }
}

async fn serve_api(listener: TcpListener, state: Arc<ApiState>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            // Out of descriptors, most likely: back off instead of spinning.
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let _ = stream.set_nodelay(true);
        let state = state.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| api::handle(state.clone(), req));
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// Hand each connection function code opens to Sylph's APIs to `handler`.
async fn serve_sylph_api(listener: TcpListener, handler: Option<ApiHandler>, access_key: Option<Arc<str>>) {
    let places = Arc::new(tokio::sync::Semaphore::new(MAX_INSTANCE_CONNECTIONS));
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let _ = stream.set_nodelay(true);
        match (&handler, places.clone().try_acquire_owned()) {
            (Some(h), Ok(permit)) => h(stream, access_key.clone(), ConnectionPermit(permit)),
            _ => drop(stream),
        }
    }
}

fn describe_exit(status: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt as _;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit status {code}"),
        (None, Some(sig)) => format!("signal: {sig} ({})", signal_name(sig)),
        _ => "unknown exit status".to_owned(),
    }
}

fn signal_name(sig: i32) -> &'static str {
    match sig {
        libc::SIGKILL => "killed",
        libc::SIGSEGV => "segmentation fault",
        libc::SIGABRT => "aborted",
        libc::SIGTERM => "terminated",
        _ => "signal",
    }
}

/// Where a `provided.*` function's executable `bootstrap` is.
fn provided_bootstrap(config: &InstanceConfig) -> Result<PathBuf, StartError> {
    let f = &config.function;
    let mut candidates = Vec::new();
    if let Some(artifact) = &f.artifact {
        if artifact.is_dir() {
            candidates.push(artifact.join("bootstrap"));
        } else {
            candidates.push(artifact.clone());
        }
    }
    candidates.push(config.root.join("bootstrap"));
    candidates.push(config.root.join("target/lambda").join(&f.key).join("bootstrap"));
    if let Some(found) = candidates.iter().find(|p| is_executable(p)) {
        return Ok(found.clone());
    }
    if let Some(zip) = candidates.iter().find(|p| p.extension().is_some_and(|e| e == "zip")) {
        return Err(StartError::NotFound {
            function: f.name.clone(),
            what: format!("an unpacked bootstrap ({} is a zip)", zip.display()),
            help: "point package.artifact at the folder or the bootstrap file itself".into(),
        });
    }
    Err(StartError::NotFound {
        function: f.name.clone(),
        what: format!(
            "an executable `bootstrap` (looked at {})",
            candidates
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
        help: "build it (for example with `cargo lambda build`) or set package.artifact to it".into(),
    })
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

struct ProcessInstance {
    config: Arc<InstanceConfig>,
    pid: u32,
    state: Arc<ApiState>,
    tx: mpsc::Sender<Pending>,
    status: watch::Receiver<Status>,
    spawned_at: Instant,
    start: StartKind,
    invoked: bool,
    healthy: bool,
    logs: Arc<LogCapture>,
    tasks: Vec<JoinHandle<()>>,
    memory: Option<crate::limits::InstanceGroup>,
    /// Held for its lifetime: dropping it removes the (then empty) group.
    _pids: Option<crate::limits::InstanceGroup>,
    /// The group that freezes the instance between invocations (v1's freezer group).
    freezer: Option<crate::limits::InstanceGroup>,
    /// Whether the instance is frozen now.
    frozen: bool,
    /// The instance's credentials, revoked when it goes.
    _credentials: Option<InstanceCredentials>,
    /// Its network namespace (and slirp4netns, for outbound traffic), kept for its lifetime.
    net: Option<InstanceNet>,
    /// Set once the process has been reaped, after which its pid may belong to someone else.
    reaped: Arc<std::sync::atomic::AtomicBool>,
}

impl ProcessInstance {
    /// The group whose processes freeze together: v1's freezer group, or the v2 group.
    fn freeze_group(&self) -> Option<&crate::limits::InstanceGroup> {
        self.freezer
            .as_ref()
            .or(self.memory.as_ref())
            .filter(|g| g.can_freeze())
    }

    /// Freeze the instance between invocations or thaw it for the next, as Lambda does.
    fn set_frozen(&mut self, frozen: bool) {
        if self.frozen == frozen {
            return;
        }
        let Some(group) = self.freeze_group() else { return };
        match group.set_frozen(frozen) {
            Ok(()) => self.frozen = frozen,
            Err(e) => tracing::warn!(function = %self.config.function.name, "cannot change the freezer state: {e}"),
        }
    }

    fn kill(&self) {
        if self.frozen {
            // A frozen process does not act on SIGKILL (cgroup v1) until thawed.
            if let Some(group) = self.freeze_group() {
                let _ = group.set_frozen(false);
            }
        }
        if self.pid > 1 && !self.reaped.load(std::sync::atomic::Ordering::SeqCst) {
            // SAFETY: signalling our own child's process group.
            unsafe {
                libc::kill(-(self.pid as i32), libc::SIGKILL);
            }
        }
    }

    /// Resolves when the process has died or reported an init error.
    async fn died(status: &mut watch::Receiver<Status>) -> Failure {
        let st = match status.wait_for(|s| *s != Status::Running).await {
            Ok(s) => s.clone(),
            Err(_) => Status::Exited("instance stopped".into()),
        };
        match st {
            Status::InitFailed { error_type, body } => Failure::InitError { error_type, body },
            Status::Exited(how) => Failure::Exited(how),
            Status::Running => Failure::Unavailable("instance stopped".into()),
        }
    }

    fn max_memory_mb(&self) -> u64 {
        if let Some(peak) = self.memory.as_ref().and_then(|g| g.peak_mb()) {
            return peak;
        }
        let Ok(status) = std::fs::read_to_string(format!("/proc/{}/status", self.pid)) else {
            return 0;
        };
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map(|kb| kb.div_ceil(1024))
            .unwrap_or(0)
    }

    async fn run(&mut self, inv: Invocation) -> Completed {
        let first = !self.invoked;
        self.invoked = true;
        self.set_frozen(false);
        if first {
            if let Some(net) = &mut self.net {
                // slirp4netns starts beside the runtime; the handler gets a working network.
                if !net.outbound_ready().await {
                    tracing::warn!(function = %self.config.function.name, "outbound network not available for this instance");
                }
            }
        }
        let timeout = self.config.function.timeout;
        let (dispatched_tx, dispatched_rx) = oneshot::channel();
        let (reply_tx, reply_rx) = oneshot::channel();
        self.logs.begin(inv.request_id.clone(), inv.capture_logs);
        let pending = Pending {
            request_id: inv.request_id.clone(),
            payload: inv.payload,
            client_context: inv.client_context,
            cognito_identity: inv.cognito_identity,
            timeout_ms: timeout.as_millis() as u64,
            dispatched: dispatched_tx,
            reply: reply_tx,
        };
        let start = Instant::now();
        if self.tx.send(pending).await.is_err() {
            return self
                .fail(Failure::Unavailable("the instance has stopped".into()), start, first)
                .await;
        }

        // Phase 1: the runtime picks the invocation up (immediately when warm; after its init
        // when cold, which Lambda bounds separately from the function's timeout).
        let mut status = self.status.clone();
        let dispatched_at = tokio::select! {
            biased;
            d = dispatched_rx => match d {
                Ok(at) => at,
                Err(_) => return self.fail(Failure::Unavailable("the instance has stopped".into()), start, first).await,
            },
            failure = Self::died(&mut status) => {
                // A warm instance that died before taking the invocation never ran it.
                let failure = if first { failure } else { Failure::Unavailable(format!("the instance had stopped: {failure:?}")) };
                return self.fail(failure, start, first).await;
            }
            _ = tokio::time::sleep(INIT_TIMEOUT) => return self.fail(Failure::InitTimeout, start, first).await,
        };

        // Phase 2: the function runs, bounded by its timeout.
        let deadline = tokio::time::Instant::from_std(dispatched_at + timeout);
        let reply = tokio::select! {
            biased;
            r = reply_rx => r.ok(),
            failure = Self::died(&mut status) => return self.fail(failure, dispatched_at, first).await,
            _ = tokio::time::sleep_until(deadline) => return self.fail(Failure::Timeout(timeout), dispatched_at, first).await,
        };
        let duration = dispatched_at.elapsed();
        let outcome = match reply {
            Some(Reply::Response(body)) => Outcome::Response(body),
            Some(Reply::Error { error_type, body }) => Outcome::FunctionError { error_type, body },
            Some(Reply::TooLarge) => {
                self.healthy = false;
                self.kill();
                Outcome::InstanceFailed(Failure::ResponseTooLarge)
            }
            None => {
                self.healthy = false;
                Outcome::InstanceFailed(Failure::Unavailable("the runtime dropped the invocation".into()))
            }
        };
        let completed = Completed {
            outcome,
            duration,
            init_duration: if first { self.init_duration() } else { None },
            start: if first { self.start } else { StartKind::Warm },
            max_memory_mb: self.max_memory_mb(),
            logs: self.logs.finish().await,
        };
        if self.healthy {
            // Nothing runs between invocations: background work waits for the next one.
            self.set_frozen(true);
        }
        completed
    }

    fn init_duration(&self) -> Option<Duration> {
        let ready = *self.state.ready_at.lock().unwrap_or_else(|e| e.into_inner());
        ready.map(|r| r.saturating_duration_since(self.spawned_at))
    }

    async fn fail(&mut self, failure: Failure, since: Instant, first: bool) -> Completed {
        self.healthy = false;
        // A process killed by the kernel for its memory group's limit: say so.
        let failure = match (&failure, &self.memory) {
            (Failure::Exited(_), Some(g)) if g.hit_limit() => Failure::OutOfMemory(g.limit_mb),
            _ => failure,
        };
        let max_memory_mb = self.max_memory_mb();
        self.kill();
        // Give the output readers a moment to drain what the process wrote before it died.
        let _ = tokio::time::timeout(Duration::from_millis(200), async {
            let mut status = self.status.clone();
            let _ = status.wait_for(|s| matches!(s, Status::Exited(_))).await;
        })
        .await;
        Completed {
            outcome: Outcome::InstanceFailed(failure),
            duration: since.elapsed(),
            init_duration: if first { self.init_duration() } else { None },
            start: if first { self.start } else { StartKind::Warm },
            max_memory_mb,
            logs: self.logs.finish().await,
        }
    }
}

impl Instance for ProcessInstance {
    fn invoke(&mut self, invocation: Invocation) -> BoxFuture<'_, Completed> {
        Box::pin(self.run(invocation))
    }

    fn is_healthy(&self) -> bool {
        self.healthy && *self.status.borrow() == Status::Running
    }

    fn pid(&self) -> Option<u32> {
        Some(self.pid)
    }
}

impl Drop for ProcessInstance {
    fn drop(&mut self) {
        self.kill();
        // The Runtime API server and the exit watcher (which owns the child) stop with us.
        for task in &self.tasks {
            task.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demand_remembers_the_largest_recent_burst_for_a_minute() {
        let t0 = Instant::now();
        let mut d = Demand::default();
        for _ in 0..8 {
            d.record(t0);
        }
        assert_eq!(d.recent_peak(t0), 8);
        // A trickle afterwards keeps the peak while it is remembered…
        d.record(t0 + Duration::from_secs(10));
        assert_eq!(d.recent_peak(t0 + Duration::from_secs(10)), 8);
        // …and then it fades.
        assert_eq!(d.recent_peak(t0 + Duration::from_secs(61)), 0);
        // Cold starts seconds apart are no burst.
        let mut trickle = Demand::default();
        for i in 0..5 {
            trickle.record(t0 + Duration::from_secs(3 * i));
        }
        assert_eq!(trickle.recent_peak(t0 + Duration::from_secs(12)), 1);
    }
}
