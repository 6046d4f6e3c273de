//! The process runtime: each instance is a child process with its own Runtime API endpoint.
//!
//! Node.js and Python functions run under small bootstraps written for Sylph (embedded in the
//! binary and written to a cache folder once); `provided.*` functions run the package's own
//! executable `bootstrap`. Every instance gets its own process group, and the kernel kills it
//! if Sylph dies (`PR_SET_PDEATHSIG`), so no function process outlives the server.
//!
//! - `spawn.rs`: starting a process (pipes, network, limit groups, sandbox, descriptors);
//! - `env.rs`: the environment a function sees;
//! - `prestart.rs`: runtime processes started ahead of demand, and how many to keep;
//! - `instance.rs`: a started process wired up as an instance, and one invocation on it.

mod env;
mod instance;
mod interpreters;
mod java;
mod prestart;
mod spawn;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex, OnceLock};

use sylph_model::Runtime as RuntimeId;
use sylph_telemetry::LogSink;

use crate::{BoxFuture, Instance, InstanceConfig, Runtime, StartError, StartKind};
use prestart::WarmPool;

const NODE_BOOTSTRAP: &str = include_str!("../../bootstrap/node.js");
const PYTHON_BOOTSTRAP: &str = include_str!("../../bootstrap/python.py");
/// The WSGI adapter that `serverless-wsgi` services' handlers are pointed at; beside the
/// Python bootstrap, so its folder (first on `sys.path`) holds it.
const WSGI_ADAPTER: &str = include_str!("../../bootstrap/sylph_wsgi.py");

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
    Java,
}

impl Family {
    /// The language of a runtime id; `None` for `provided.*` (the package's own executable)
    /// and WebAssembly components (no process).
    pub fn of(runtime: &RuntimeId) -> Option<Family> {
        match runtime {
            RuntimeId::Node(_) => Some(Family::Node),
            RuntimeId::Python(_) => Some(Family::Python),
            RuntimeId::Java(_) => Some(Family::Java),
            RuntimeId::Provided(_) | RuntimeId::Wasm(_) => None,
        }
    }

    /// Whether its runtimes speak Sylph's frame channel (Sylph's own bootstraps) rather than
    /// the HTTP Runtime API (AWS's Java runtime client, `provided` bootstraps).
    fn uses_channel(runtime: &RuntimeId) -> bool {
        matches!(runtime, RuntimeId::Node(_) | RuntimeId::Python(_))
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
    java_dirs: OnceLock<Vec<PathBuf>>,
    /// Per runtime id, an interpreter of exactly its version, if one serves it (see
    /// `interpreters.rs`); decided once.
    exact: Mutex<std::collections::HashMap<String, Arc<ExactChoice>>>,
    /// The sandbox folders of those interpreters, by program.
    exact_dirs: Mutex<std::collections::HashMap<PathBuf, Vec<PathBuf>>>,
    /// Per language, the runtime id whose interpreter pre-started runtimes run.
    preferred: Mutex<std::collections::HashMap<Family, RuntimeId>>,
    /// `$SYLPH_HOME/runtime/java`: AWS's Java runtime client and its jars.
    java_dir: OnceLock<PathBuf>,
    /// The JDKs of this machine, found once.
    jdks: OnceLock<Vec<java::Jdk>>,
    /// The memorySize pre-started JVMs are sized for (see [`ProcessRuntime::prefer_runtimes`]).
    java_prestart_mb: std::sync::atomic::AtomicU32,
    /// The command of pre-started JVMs, decided once (see `java.rs`).
    java_prestart: OnceLock<Option<(PathBuf, Vec<String>)>>,
    /// The package pre-started JVMs preload: the most common among the Java functions of that
    /// memorySize.
    java_prestart_package: Mutex<Option<PathBuf>>,
    /// The sandbox folders of each JDK, by home.
    jdk_dirs: Mutex<std::collections::HashMap<PathBuf, Vec<PathBuf>>>,
}

/// The interpreter that serves a runtime id, as the start-up lines describe it.
#[derive(Debug, Clone)]
pub struct Interpreter {
    pub path: PathBuf,
    /// What it reports (`v20.11.1`, `Python 3.11.7`).
    pub version: Option<String>,
    /// Its version is the one the runtime id names.
    pub exact: bool,
    /// Why an installed interpreter of the exact version is not used, when it is not.
    pub note: Option<String>,
}

/// How a runtime id is served when it is not by the default interpreter.
#[derive(Debug, Default)]
pub(crate) struct ExactChoice {
    /// The interpreter of exactly its version; `None`: the default one serves it.
    program: Option<PathBuf>,
    /// The `PYTHONPATH` that replaces the default SDK folder for it (`<folder>-3.X`).
    sdk_path: Option<String>,
    /// Why an installed exact interpreter is not used, for the start-up line.
    note: Option<String>,
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
        for (name, text) in [
            ("node.js", NODE_BOOTSTRAP),
            ("python.py", PYTHON_BOOTSTRAP),
            ("sylph_wsgi.py", WSGI_ADAPTER),
        ] {
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
                java_dirs: OnceLock::new(),
                exact: Mutex::new(std::collections::HashMap::new()),
                exact_dirs: Mutex::new(std::collections::HashMap::new()),
                preferred: Mutex::new(std::collections::HashMap::new()),
                java_dir: OnceLock::new(),
                jdks: OnceLock::new(),
                java_prestart_mb: std::sync::atomic::AtomicU32::new(1024),
                java_prestart: OnceLock::new(),
                java_prestart_package: Mutex::new(None),
                jdk_dirs: Mutex::new(std::collections::HashMap::new()),
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

    /// Run Java functions with AWS's Java runtime client installed in `dir` (`lib/*.jar`, and
    /// its native client extracted to `jni/`), as `scripts/install-runtimes` installs it.
    pub fn use_java_runtime(&self, dir: PathBuf) {
        let _ = self.inner.java_dir.set(dir);
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

impl ProcessRuntime {
    /// Pre-start runtimes of each language on the interpreter of its most common id among
    /// `ids` (the service's functions), so those functions start from them. Call before
    /// anything is pre-started.
    pub fn prefer_runtimes(&self, functions: &[sylph_model::Function]) {
        let ids: Vec<&RuntimeId> = functions.iter().map(|f| &f.runtime).collect();
        let mut counts: Vec<(&RuntimeId, usize)> = Vec::new();
        for id in ids {
            match counts.iter_mut().find(|(known, _)| *known == id) {
                Some((_, n)) => *n += 1,
                None => counts.push((id, 1)),
            }
        }
        let mut preferred = self.inner.preferred.lock().unwrap_or_else(|e| e.into_inner());
        // A JVM's heap is fixed when it starts: pre-started JVMs are sized for the most common
        // memorySize of the Java functions, and only functions of that size take them.
        let mut sizes: Vec<(u32, usize)> = Vec::new();
        for f in functions
            .iter()
            .filter(|f| Family::of(&f.runtime) == Some(Family::Java))
        {
            match sizes.iter_mut().find(|(mb, _)| *mb == f.memory_mb) {
                Some((_, n)) => *n += 1,
                None => sizes.push((f.memory_mb, 1)),
            }
        }
        if let Some((mb, _)) = sizes.iter().max_by_key(|(_, n)| *n) {
            self.inner
                .java_prestart_mb
                .store(*mb, std::sync::atomic::Ordering::Relaxed);
            let mut packages: Vec<(&Path, usize)> = Vec::new();
            for f in functions
                .iter()
                .filter(|f| Family::of(&f.runtime) == Some(Family::Java) && f.memory_mb == *mb)
            {
                let Some(artifact) = f.artifact.as_deref() else {
                    continue;
                };
                match packages.iter_mut().find(|(p, _)| *p == artifact) {
                    Some((_, n)) => *n += 1,
                    None => packages.push((artifact, 1)),
                }
            }
            *self
                .inner
                .java_prestart_package
                .lock()
                .unwrap_or_else(|e| e.into_inner()) =
                packages.iter().max_by_key(|(_, n)| *n).map(|(p, _)| p.to_path_buf());
        }
        for family in [Family::Node, Family::Python, Family::Java] {
            if let Some((id, _)) = counts
                .iter()
                .filter(|(id, _)| Family::of(id) == Some(family))
                .max_by_key(|(_, n)| *n)
            {
                preferred.insert(family, (*id).clone());
            }
        }
    }

    /// The interpreter that runs functions of `runtime` (an exact one, or the default), for
    /// the start-up lines; `None` for `provided` runtimes.
    pub fn interpreter_of(&self, runtime: &RuntimeId) -> Option<Interpreter> {
        let family = Family::of(runtime)?;
        if family == Family::Java {
            return self.inner.jdk_interpreter(runtime);
        }
        let choice = self.inner.exact_choice(runtime);
        let (path, _) = self.inner.program_for(runtime, family);
        let version = interpreters::reported_version(&path);
        let exact = match (&version, interpreters::wanted(runtime)) {
            (Some(v), Some((_, want))) => interpreters::short_version(family, v) == want,
            _ => false,
        };
        Some(Interpreter {
            path,
            version,
            exact,
            note: choice.note.clone(),
        })
    }

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

    /// The machine's default interpreter for a language, and Sylph's bootstrap for it.
    fn default_command(&self, family: Family) -> (PathBuf, Vec<String>) {
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
            // Where none can be pre-started, `java` names no folder the sandbox needs.
            Family::Java => self
                .java_prestart_command()
                .cloned()
                .unwrap_or_else(|| (PathBuf::from("java"), Vec::new())),
        }
    }

    /// The interpreter pre-started runtimes of `family` run, and Sylph's bootstrap for it: the
    /// one that serves the service's most common runtime id of that language (see
    /// [`ProcessRuntime::prefer_runtimes`]), so that its functions start from them, else the
    /// machine's default.
    fn family_command(&self, family: Family) -> (PathBuf, Vec<String>) {
        let (default, args) = self.default_command(family);
        match self.preferred_choice(family).and_then(|c| c.program.clone()) {
            Some(exact) => (exact, args),
            None => (default, args),
        }
    }

    /// The folders `family`'s interpreter needs inside the sandbox, found once.
    fn interpreter_dirs(&self, family: Family) -> &[PathBuf] {
        let cell = match family {
            Family::Node => &self.node_dirs,
            Family::Python => &self.python_dirs,
            Family::Java => &self.java_dirs,
        };
        cell.get_or_init(|| {
            let (program, _) = self.family_command(family);
            program_dirs(family, &program)
        })
    }

    /// How `runtime` is served, decided once: an installed interpreter of exactly its version
    /// that loads the SDK Sylph provides, or the default one.
    /// The interpreter choice of the runtime id pre-started runtimes of `family` serve (see
    /// [`ProcessRuntime::prefer_runtimes`]), if the service named one.
    fn preferred_choice(&self, family: Family) -> Option<Arc<ExactChoice>> {
        let preferred = self
            .preferred
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&family)
            .cloned();
        preferred.map(|id| self.exact_choice(&id))
    }

    fn exact_choice(&self, runtime: &RuntimeId) -> Arc<ExactChoice> {
        let mut cache = self.exact.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(c) = cache.get(runtime.id()) {
            return c.clone();
        }
        let choice = Arc::new(self.decide_exact(runtime));
        cache.insert(runtime.id().to_owned(), choice.clone());
        choice
    }

    fn decide_exact(&self, runtime: &RuntimeId) -> ExactChoice {
        let Some((family, want)) = interpreters::wanted(runtime) else {
            return ExactChoice::default();
        };
        let (default, _) = self.default_command(family);
        let have = interpreters::reported_version(&default).map(|v| interpreters::short_version(family, &v));
        if have.as_deref() == Some(want.as_str()) {
            return ExactChoice::default();
        }
        let Some(program) = interpreters::find_exact(family, &want) else {
            return ExactChoice::default();
        };
        let key = match family {
            Family::Python => "PYTHONPATH",
            Family::Node => "NODE_PATH",
            // JDKs are chosen in `java.rs`; `wanted` names no version for them.
            Family::Java => return ExactChoice::default(),
        };
        let base = self.base_env.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone());
        // An SDK installed for this Python version, beside the default one.
        let own_sdk = match family {
            Family::Python => base
                .as_ref()
                .map(|b| format!("{b}-{want}"))
                .filter(|p| Path::new(p).is_dir()),
            Family::Node | Family::Java => None,
        };
        if interpreters::loads_sdk(family, &program, own_sdk.as_deref().or(base.as_deref())) {
            ExactChoice {
                program: Some(program),
                sdk_path: own_sdk,
                note: None,
            }
        } else {
            ExactChoice {
                note: Some(format!(
                    "{} is installed, but the AWS SDK Sylph provides does not load on it (scripts/install-runtimes installs one for it)",
                    program.display()
                )),
                ..ExactChoice::default()
            }
        }
    }

    /// The interpreter that runs `runtime`'s functions: an exact one, or the default.
    fn program_for(&self, runtime: &RuntimeId, family: Family) -> (PathBuf, Vec<String>) {
        let (default, args) = self.default_command(family);
        match &self.exact_choice(runtime).program {
            Some(exact) => (exact.clone(), args),
            None => (default, args),
        }
    }

    /// The sandbox folders of the interpreter that runs `runtime`.
    fn dirs_for(&self, runtime: &RuntimeId) -> Vec<PathBuf> {
        let Some(family) = Family::of(runtime) else {
            return self.visible_dirs(None);
        };
        if family == Family::Java {
            let mut out = vec![self.bootstrap_dir.clone()];
            if let (Some(_), Some(jdk)) = (&self.sandbox, self.jdk_for(runtime)) {
                out.extend(self.jdk_sandbox_dirs(&jdk));
            }
            return out;
        }
        let Some(program) = self.exact_choice(runtime).program.clone() else {
            return self.visible_dirs(Some(family));
        };
        let mut out = vec![self.bootstrap_dir.clone()];
        if self.sandbox.is_none() {
            return out;
        }
        out.extend(self.dirs_of_program(family, &program));
        out
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
            // `provided` bootstraps call `node` / `python3` from PATH: the machine's defaults.
            None => {
                for family in [Family::Node, Family::Python] {
                    let (program, _) = self.default_command(family);
                    out.extend(self.dirs_of_program(family, &program));
                }
            }
        }
        out
    }

    /// The sandbox folders of `program` (cached): its prefix and its own folder.
    fn dirs_of_program(&self, family: Family, program: &Path) -> Vec<PathBuf> {
        let mut cache = self.exact_dirs.lock().unwrap_or_else(|e| e.into_inner());
        cache
            .entry(program.to_path_buf())
            .or_insert_with(|| {
                let mut dirs = program_dirs(family, program);
                // The program's own folder (a pyenv version's `bin`), whatever its prefix says.
                dirs.extend(program.parent().map(Path::to_path_buf));
                dirs
            })
            .clone()
    }

    async fn start_instance(self: Arc<Self>, config: Arc<InstanceConfig>) -> Result<Box<dyn Instance>, StartError> {
        // A Java package is unpacked (once per version) off the async workers: it may be large.
        let code = match config.function.runtime {
            RuntimeId::Java(_) => {
                let (inner, cfg) = (self.clone(), config.clone());
                let unpacked = tokio::task::spawn_blocking(move || inner.java_code(&cfg))
                    .await
                    .map_err(|e| StartError::Package {
                        function: config.function.name.clone(),
                        reason: format!("unpacking stopped: {e}"),
                    })??;
                Some(unpacked)
            }
            _ => None,
        };
        if let Some(instance) = self.start_prewarmed(&config, code.as_deref()) {
            return Ok(instance);
        }
        let (program, args) = self.command_for(&config)?;
        let channel = Family::uses_channel(&config.function.runtime);
        let (net, runtime_api, api_addr) = self.network(!channel).await?;
        let channel = if channel {
            spawn::ChannelAt::RuntimeFd
        } else {
            spawn::ChannelAt::None
        };
        let credentials = self.credentials.get().map(|i| i.issue(&config.function));
        let mut env = self.environment(&config, &api_addr, credentials.as_ref());
        let mut visible = self.dirs_for(&config.function.runtime);
        if let Some(code) = &code {
            // A Java function runs from its unpacked jar, which Lambda would put at /var/task.
            env.insert("LAMBDA_TASK_ROOT".to_owned(), code.to_string_lossy().into_owned());
            visible.push(code.clone());
        }
        let cwd = code.as_deref().unwrap_or(&config.root);
        let mounts = match &self.sandbox {
            Some(_) => crate::sandbox::layer_mounts(&config.function.layers),
            None => Vec::new(),
        };
        let spawned = self
            .spawn_process(spawn::ProcessSpec {
                program: &program,
                args: &args,
                env: &env,
                cwd,
                channel,
                runtime_api,
                net,
                label: &config.function.name,
                memory_mb: config.function.memory_mb,
                tmp_mb: config.function.ephemeral_mb,
                visible: &visible,
                mounts: &mounts,
                background: false,
            })
            .await?;
        Ok(self.assemble(config, spawned, StartKind::Cold, credentials))
    }
}

impl Runtime for ProcessRuntime {
    fn start(&self, config: Arc<InstanceConfig>) -> BoxFuture<'static, Result<Box<dyn Instance>, StartError>> {
        let inner = self.inner.clone();
        Box::pin(async move { inner.start_instance(config).await })
    }

    fn standby(&self) -> Vec<(&'static str, usize)> {
        self.inner.standby()
    }
}

/// The folders an interpreter needs inside the sandbox: its installation prefix (for Python,
/// also a virtualenv's base installation and the user site).
fn program_dirs(family: Family, program: &Path) -> Vec<PathBuf> {
    let prefixes: Vec<PathBuf> = match family {
        // `<prefix>/bin/node`, with its libraries under `<prefix>/lib`.
        Family::Node => program
            .parent()
            .and_then(Path::parent)
            .map(Path::to_path_buf)
            .into_iter()
            .collect(),
        Family::Python => std::process::Command::new(program)
            .args([
                "-c",
                "import sys, site; print(sys.prefix); print(sys.base_prefix); print(site.getusersitepackages())",
            ])
            .stderr(Stdio::null())
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).lines().map(PathBuf::from).collect())
            .unwrap_or_default(),
        // `<home>/bin/java`: the JDK's home, and where its links lead.
        Family::Java => {
            return program
                .parent()
                .and_then(Path::parent)
                .and_then(java::jdk_at)
                .map(|jdk| java::sandbox_dirs(&jdk))
                .unwrap_or_default()
        }
    };
    crate::sandbox::interpreter_dirs(&prefixes)
}
