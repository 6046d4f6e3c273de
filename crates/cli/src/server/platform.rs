//! The services a `sylph server` runs: what is deployed (kept in the control store), which
//! version of each is serving (in memory, swapped atomically), and the operations that change
//! them — deploy, rollback, alias, remove — each of which either completes or leaves the
//! running version untouched.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use sylph_control::api::{AliasInfo, DeployRequest, FunctionInfo, RouteInfo, ServiceInfo};
use sylph_control::blobs::BlobStore;
use sylph_control::keys::{Key, MasterKey};
use sylph_control::store::{Alias, ControlStore, ServiceRecord, VersionRecord};
use sylph_model::Service;

use crate::host::{HostSettings, Hosted};
use sylph_tables::provision::Phase;

/// A line for the operator on standard output. Never panics: a server whose output was closed
/// (a pipe whose reader went away) must keep serving, where `println!` would panic.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout().lock(), $($arg)*);
    }};
}

/// A refusal of an admin operation: an HTTP status and a message naming what was wrong.
#[derive(Debug)]
pub struct ApiError {
    pub status: u16,
    pub message: String,
}

impl ApiError {
    pub fn new(status: u16, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
        }
    }
    fn bad(message: impl Into<String>) -> ApiError {
        ApiError::new(400, message)
    }
    pub fn internal(message: impl std::fmt::Display) -> ApiError {
        ApiError::new(500, message.to_string())
    }
}

/// One version of a service, running.
pub struct Running {
    pub version: u32,
    pub service: Service,
    pub hosted: Hosted,
}

impl Drop for Running {
    fn drop(&mut self) {
        // The last request on a retired version has finished (each holds an `Arc`): stop its
        // pre-started runtimes and idle instances now rather than at keep-warm's end.
        self.hosted.shutdown();
    }
}

/// The alias that, when set, a service's HTTP routes and unqualified invocations follow
/// instead of the newest deployed version (what a canary deploy moves step by step).
pub const LIVE_ALIAS: &str = "live";

/// A deployed service as requests see it.
pub struct Live {
    pub record: ServiceRecord,
    /// Every version something points at: the serving one and those its aliases name.
    pub versions: BTreeMap<u32, Arc<Running>>,
    /// Requests routed through a weighted alias so far, to split them exactly by weight.
    routed: std::sync::atomic::AtomicU64,
}

impl Live {
    /// The version `sylph deploy` and `sylph rollback` last made current.
    pub fn active(&self) -> &Arc<Running> {
        &self.versions[&self.record.active]
    }

    /// Where an HTTP request or an unqualified invocation goes: through the `live` alias when
    /// there is one, else to the active version.
    pub fn route(&self) -> Arc<Running> {
        match self.record.aliases.get(LIVE_ALIAS) {
            Some(alias) => self.through(alias),
            None => self.active().clone(),
        }
    }

    /// An invocation qualified with a version number, an alias or `$LATEST`.
    pub fn qualified(&self, qualifier: &str) -> Option<Arc<Running>> {
        if qualifier == "$LATEST" {
            return Some(self.active().clone());
        }
        if let Ok(n) = qualifier.parse::<u32>() {
            return self.versions.get(&n).cloned();
        }
        self.record.aliases.get(qualifier).map(|a| self.through(a))
    }

    /// The version for the next request through `alias`. With a weight `w` for a second
    /// version, request n goes there when ⌊(n+1)·w⌋ > ⌊n·w⌋: exactly `w` of every run of
    /// requests, evenly spread, with no random draw on the request path.
    fn through(&self, alias: &Alias) -> Arc<Running> {
        if let Some((other, weight)) = alias.additional {
            let n = self.routed.fetch_add(1, std::sync::atomic::Ordering::Relaxed) as f64;
            if ((n + 1.0) * weight).floor() > (n * weight).floor() {
                if let Some(r) = self.versions.get(&other) {
                    return r.clone();
                }
            }
        }
        self.versions
            .get(&alias.version)
            .unwrap_or_else(|| self.active())
            .clone()
    }

    /// Requests running on this service right now (each holds its version).
    pub fn in_flight(&self) -> usize {
        self.versions
            .values()
            .map(|r| Arc::strong_count(r).saturating_sub(1))
            .sum()
    }
}

/// The versions a record points at.
fn needed_versions(record: &ServiceRecord) -> Vec<u32> {
    let mut v = vec![record.active];
    for a in record.aliases.values() {
        v.push(a.version);
        if let Some((other, _)) = a.additional {
            v.push(other);
        }
    }
    v.sort_unstable();
    v.dedup();
    v
}

#[derive(Default)]
struct State {
    /// By API id.
    services: HashMap<String, Arc<Live>>,
    /// Deployed function name → API id.
    functions: HashMap<String, String>,
    /// Table name → the service (name) that declares it.
    tables: HashMap<String, String>,
    keys: HashMap<String, Key>,
    /// Function and table names a deploy under way is about to take (`function:…`,
    /// `table:…` → the service), so that two services deployed at once cannot both take one.
    /// (the service, how many of its deploys under way claim it).
    claimed_names: HashMap<String, (String, usize)>,
}

/// Names a deploy has claimed; released when it ends (it has installed them by then, or failed).
struct NameClaim<'a> {
    platform: &'a Platform,
    names: Vec<String>,
}

impl Drop for NameClaim<'_> {
    fn drop(&mut self) {
        let mut state = self.platform.write();
        for n in &self.names {
            // Released when the last deploy of the service claiming it ends (two stages may
            // declare one table and deploy at once).
            if let Some((_, count)) = state.claimed_names.get_mut(n) {
                *count -= 1;
                if *count == 0 {
                    state.claimed_names.remove(n);
                }
            }
        }
    }
}

/// A resource a service declares and owns.
#[derive(Clone, Copy)]
enum Resource {
    Table,
    Queue,
}

impl State {
    /// Whether `service` may declare the table or queue `name` (`logical_id` in its manifest):
    /// not if another service owns or is claiming it, and one that exists but belongs to no
    /// service (`unowned`, made through the API) only with a key for every service.
    fn check_claim(
        &self,
        key: &Key,
        service: &str,
        logical_id: &str,
        kind: Resource,
        name: &str,
        unowned: bool,
    ) -> Result<(), ApiError> {
        let (what, owner_key, made_through) = match kind {
            Resource::Table => ("table", name.to_owned(), "the table API"),
            Resource::Queue => ("queue", queue_owner_key(name), "the SQS API"),
        };
        let owner = self
            .tables
            .get(&owner_key)
            .or_else(|| {
                self.claimed_names
                    .get(&format!("{what}:{name}"))
                    .map(|(owner, _)| owner)
            })
            .filter(|owner| **owner != service);
        if let Some(owner) = owner {
            return Err(ApiError::new(
                409,
                format!("resources.Resources.{logical_id}: {what} {name} already belongs to service {owner}"),
            ));
        }
        if unowned && !matches!(key.scope, sylph_control::keys::Scope::All) {
            return Err(ApiError::new(
                403,
                format!(
                    "resources.Resources.{logical_id}: {what} {name} exists and belongs to no service (it was made through {made_through}); only a key for every service may give it to a service"
                ),
            ));
        }
        Ok(())
    }
}

pub struct Platform {
    data: PathBuf,
    store: Arc<dyn ControlStore>,
    blobs: Arc<dyn BlobStore>,
    master: MasterKey,
    pub tables: sylph_tables::Tables,
    settings: HostSettings,
    /// Every function's log lines, for `sylph logs`.
    pub logs: Arc<dyn sylph_telemetry::logstore::LogStore>,
    /// Recent metrics per function, for `sylph metrics`.
    pub history: sylph_telemetry::metrics::History,
    /// Print function output and START/END/REPORT lines too.
    echo_logs: bool,
    /// `{api_id}.{domain}` serves that API.
    pub domain: String,
    /// How clients reach this server (`http://127.0.0.1:8080`), for the URLs it prints.
    pub public_url: String,
    state: RwLock<State>,
    /// `name/stage` of services with a deploy, rollback or removal under way.
    busy: Mutex<HashSet<String>>,
    /// Set once every deployed service has been loaded at start.
    pub ready: std::sync::atomic::AtomicBool,
    /// Asynchronous invocations and schedules (set once at start, before services load).
    events: std::sync::OnceLock<Events>,
    /// Warm a new version up before switching to it (off only for measurements).
    pub warm_up: std::sync::atomic::AtomicBool,
}

/// Holds a service's operation slot; freed when dropped.
struct Busy<'a> {
    platform: &'a Platform,
    id: String,
}

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        self.platform
            .busy
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.id);
    }
}

#[allow(clippy::too_many_arguments)]
impl Platform {
    pub fn new(
        data: PathBuf,
        store: Arc<dyn ControlStore>,
        blobs: Arc<dyn BlobStore>,
        master: MasterKey,
        tables: sylph_tables::Tables,
        settings: HostSettings,
        logs: Arc<dyn sylph_telemetry::logstore::LogStore>,
        echo_logs: bool,
        domain: String,
        public_url: String,
    ) -> Result<Arc<Platform>, ApiError> {
        let keys = store.keys().map_err(ApiError::internal)?;
        let owners = store.table_owners().map_err(ApiError::internal)?;
        let state = State {
            keys: keys.into_iter().map(|k| (k.id.clone(), k)).collect(),
            tables: owners.into_iter().collect(),
            ..State::default()
        };
        Ok(Arc::new(Platform {
            data,
            store,
            blobs,
            master,
            tables,
            settings,
            logs,
            history: sylph_telemetry::metrics::History::new(HISTORY_SAMPLES),
            echo_logs,
            domain,
            public_url,
            state: RwLock::new(state),
            busy: Mutex::new(HashSet::new()),
            ready: std::sync::atomic::AtomicBool::new(false),
            events: std::sync::OnceLock::new(),
            warm_up: std::sync::atomic::AtomicBool::new(true),
        }))
    }

    pub fn blobs(&self) -> &dyn BlobStore {
        self.blobs.as_ref()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(|e| e.into_inner())
    }

    // ---- keys ----

    /// The admin key made on a first start: `Some((id, secret))` if one was made now.
    pub fn ensure_admin_key(&self) -> Result<Option<(String, String)>, ApiError> {
        if !self.read().keys.is_empty() {
            return Ok(None);
        }
        let key = Key::new("admin", sylph_control::keys::Scope::All, true);
        self.store.put_key(&key).map_err(ApiError::internal)?;
        let secret = self.master.secret(&key.id);
        let id = key.id.clone();
        self.write().keys.insert(id.clone(), key);
        Ok(Some((id, secret)))
    }

    /// The live key whose `ID:SECRET` this is.
    pub fn key_for_token(&self, token: &str) -> Option<Key> {
        let (id, secret) = sylph_control::keys::split_token(token)?;
        let key = self.read().keys.get(id).filter(|k| k.is_live()).cloned()?;
        self.master.verify(id, secret).then_some(key)
    }

    /// A live key and its secret, for checking a SigV4 signature.
    /// Whether `access_key_id` is a live key of this server (no secret derived).
    pub fn is_live_key(&self, access_key_id: &str) -> bool {
        self.read().keys.get(access_key_id).is_some_and(Key::is_live)
    }

    pub fn key_for_signature(&self, access_key_id: &str) -> Option<(Key, String)> {
        let key = self.read().keys.get(access_key_id).filter(|k| k.is_live()).cloned()?;
        let secret = self.master.secret(&key.id);
        Some((key, secret))
    }

    pub fn create_key(&self, name: &str, services: Vec<String>, admin: bool) -> Result<(Key, String), ApiError> {
        if name.is_empty() || name.len() > 64 {
            return Err(ApiError::bad("a key's name must be 1 to 64 characters"));
        }
        if admin && !services.is_empty() {
            return Err(ApiError::bad(
                "an admin key manages every key, so it is a key for every service: drop --admin or --service",
            ));
        }
        for s in &services {
            check_name(s, "service")?;
        }
        let scope = if services.is_empty() {
            sylph_control::keys::Scope::All
        } else {
            sylph_control::keys::Scope::Services(services)
        };
        let key = Key::new(name, scope, admin);
        self.store.put_key(&key).map_err(ApiError::internal)?;
        let secret = self.master.secret(&key.id);
        self.write().keys.insert(key.id.clone(), key.clone());
        Ok((key, secret))
    }

    pub fn keys(&self) -> Vec<Key> {
        let mut keys: Vec<Key> = self.read().keys.values().cloned().collect();
        keys.sort_by(|a, b| (a.created, &a.id).cmp(&(b.created, &b.id)));
        keys
    }

    pub fn revoke_key(&self, id: &str, by: &Key) -> Result<Key, ApiError> {
        if id == by.id {
            return Err(ApiError::bad(
                "a key cannot revoke itself (make another admin key first, and revoke this one with it)",
            ));
        }
        let mut key = self
            .read()
            .keys
            .get(id)
            .cloned()
            .ok_or_else(|| ApiError::new(404, format!("no key {id}")))?;
        if key.revoked.is_none() {
            key.revoked = Some(sylph_control::now_secs());
            self.store.put_key(&key).map_err(ApiError::internal)?;
            self.write().keys.insert(key.id.clone(), key.clone());
        }
        Ok(key)
    }

    // ---- lookups on the request path ----

    pub fn by_api(&self, api_id: &str) -> Option<Arc<Live>> {
        self.read().services.get(api_id).cloned()
    }

    pub fn by_function(&self, name: &str) -> Option<Arc<Live>> {
        let state = self.read();
        let api = state.functions.get(name)?;
        state.services.get(api).cloned()
    }

    pub fn by_service(&self, name: &str, stage: &str) -> Option<Arc<Live>> {
        self.read()
            .services
            .values()
            .find(|l| l.record.name == name && l.record.stage == stage)
            .cloned()
    }

    /// The running version whose instance was issued `access_key`: functions that share the
    /// host's network (`--unsandboxed`) call the public port with their own credentials.
    pub fn by_instance_key(&self, access_key: &str) -> Option<Arc<Running>> {
        self.read().services.values().find_map(|live| {
            live.versions
                .values()
                .find(|r| {
                    r.hosted
                        .identities
                        .as_ref()
                        .is_some_and(|i| i.lookup(access_key).is_some())
                })
                .cloned()
        })
    }

    /// The service (name) that declares `table`, if any.
    pub fn table_owner(&self, table: &str) -> Option<String> {
        self.read().tables.get(table).cloned()
    }

    /// Whether `key` may use `table`: it belongs to a service the key may use; a table no
    /// service declares (made through the API) only for keys that may use every service.
    pub fn key_may_use_table(&self, key: &Key, table: &str) -> bool {
        match self.table_owner(table) {
            Some(owner) => key.allows(&owner),
            None => key.is_live() && matches!(key.scope, sylph_control::keys::Scope::All),
        }
    }

    pub fn all_live(&self) -> Vec<Arc<Live>> {
        let mut v: Vec<Arc<Live>> = self.read().services.values().cloned().collect();
        v.sort_by(|a, b| (&a.record.name, &a.record.stage).cmp(&(&b.record.name, &b.record.stage)));
        v
    }

    // ---- start ----

    /// Run every deployed service's serving version, as the store has it.
    pub async fn load_all(self: &Arc<Self>) {
        let records = match self.store.services() {
            Ok(r) => r,
            Err(e) => {
                say!("error: cannot read the deployed services: {e}");
                return;
            }
        };
        for record in records {
            let what = format!("{} (stage {}) version {}", record.name, record.stage, record.active);
            match self.assemble(&record, None).await {
                Ok(versions) => {
                    for running in versions.values() {
                        self.persist_owners(&running.service);
                    }
                    self.install(record, versions);
                    say!("serving {what}");
                }
                Err(e) => say!("error: cannot start {what}: {}", e.message),
            }
        }
        self.ready.store(true, std::sync::atomic::Ordering::Release);
    }

    fn code_dir(&self, name: &str, stage: &str, version: u32) -> PathBuf {
        self.data
            .join("code")
            .join(name)
            .join(stage)
            .join(format!("v{version}"))
    }

    /// Start version `number` of a service from its stored record (its code folder is made
    /// again from the uploaded files if it is missing).
    async fn start_version(self: &Arc<Self>, record: &ServiceRecord, number: u32) -> Result<Arc<Running>, ApiError> {
        let version = self
            .store
            .version(&record.name, &record.stage, number)
            .map_err(ApiError::internal)?
            .ok_or_else(|| ApiError::new(404, format!("{} has no version {number}", record.name)))?;
        let dir = self.code_dir(&record.name, &record.stage, number);
        if !dir.join(".complete").exists() {
            self.materialize(&version.files, &dir).await?;
        }
        self.run_version(version, &dir)
    }

    fn run_version(self: &Arc<Self>, version: VersionRecord, dir: &Path) -> Result<Arc<Running>, ApiError> {
        let mut service = version.service;
        place_code(&mut service, dir);
        let sink = Arc::new(ServiceLogs {
            names: service
                .functions
                .iter()
                .map(|f| {
                    let stored = telemetry_key(&service.name, &service.stage, &f.name);
                    (f.key.clone(), (stored, f.name.clone()))
                })
                .collect(),
            store: self.logs.clone(),
            echo: self.echo_logs.then(sylph_telemetry::TerminalSink::default),
        });
        let settings = HostSettings {
            version: Some(version.number),
            ..self.settings.clone()
        };
        let hosted = crate::host::host_service(&service, self.tables.clone(), sink, &settings, &mut |line| {
            tracing::debug!("{}: {line}", service.name)
        })
        .map_err(|e| ApiError::internal(format!("{e:#}")))?;
        if let Some(events) = self.events.get() {
            hosted.gateway.set_queues(events.queues.clone());
            hosted.gateway.set_event_queue(Arc::new(crate::events::GatewayEvents {
                queue: events.queue.clone(),
                service: service.name.clone(),
                stage: service.stage.clone(),
                version: Some(version.number),
            }));
        }
        // API keys made up for this service stay the same across versions and restarts.
        let keys_dir = self.data.join("api-keys").join(&service.name).join(&service.stage);
        let (access, _) = crate::access::settings(&service, &keys_dir, None, None, false, None)
            .map_err(|e| ApiError::internal(format!("{e:#}")))?;
        hosted.gateway.set_access(access).map_err(ApiError::internal)?;
        hosted.gateway.set_table_guard(Arc::new(DeployerTables {
            service: service.name.clone(),
            deployed_by: version.deployed_by.clone(),
            platform: Arc::downgrade(self),
        }));
        Ok(Arc::new(Running {
            version: version.number,
            service,
            hosted,
        }))
    }

    /// Make a version's code folder from uploaded files; marked complete only at the end.
    async fn materialize(&self, files: &[sylph_control::package::FileEntry], dir: &Path) -> Result<(), ApiError> {
        let blobs = self.blobs.clone();
        let files = files.to_vec();
        let dir = dir.to_owned();
        tokio::task::spawn_blocking(move || {
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir)?;
            for f in &files {
                blobs
                    .materialize(&f.hash, &dir.join(&f.path), f.executable)
                    .map_err(|e| std::io::Error::other(format!("{}: {e}", f.path)))?;
            }
            std::fs::write(dir.join(".complete"), b"")?;
            Ok::<(), std::io::Error>(())
        })
        .await
        .map_err(ApiError::internal)?
        .map_err(|e| ApiError::internal(format!("cannot place the code: {e}")))
    }

    /// Every version `record` points at, running: `fresh` (just started), those already
    /// running, and the rest started now.
    async fn assemble(
        self: &Arc<Self>,
        record: &ServiceRecord,
        fresh: Option<Arc<Running>>,
    ) -> Result<BTreeMap<u32, Arc<Running>>, ApiError> {
        let current = self.by_service(&record.name, &record.stage);
        let mut versions = BTreeMap::new();
        for n in needed_versions(record) {
            let running = match (&fresh, current.as_ref().and_then(|c| c.versions.get(&n))) {
                (Some(f), _) if f.version == n => f.clone(),
                (_, Some(r)) => r.clone(),
                _ => self.start_version(record, n).await?,
            };
            versions.insert(n, running);
        }
        Ok(versions)
    }

    /// Make `record` (and its running `versions`) what requests see, at once.
    fn install(&self, record: ServiceRecord, versions: BTreeMap<u32, Arc<Running>>) {
        let mut state = self.write();
        let api = record.api_id.clone();
        state.functions.retain(|_, a| a != &api);
        // Ownership is by service name: every stage of a service may use its tables.
        for running in versions.values() {
            for f in &running.service.functions {
                state.functions.insert(f.name.clone(), api.clone());
            }
            for t in &running.service.tables {
                state.tables.insert(t.name.clone(), record.name.clone());
            }
            for q in &running.service.queues {
                state.tables.insert(queue_owner_key(&q.name), record.name.clone());
            }
        }
        // Schedules and queue pollers follow the version that serves (they move with a deploy or a rollback).
        let scheduled = versions.get(&record.active).cloned();
        let retired = state.services.insert(
            api,
            Arc::new(Live {
                record,
                versions,
                routed: std::sync::atomic::AtomicU64::new(0),
            }),
        );
        // A retired version may be stopped right here (its last reference): never while every
        // request's lookup waits on this lock.
        drop(state);
        drop(retired);
        if let (Some(events), Some(running)) = (self.events.get(), scheduled) {
            if let Err(e) = events.scheduler.set_service(&running.service, Some(running.version)) {
                say!("error: cannot start the schedules of {}: {e}", running.service.name);
            }
            events.sqs.set_service(&running.service, Some(running.version));
            events.streams.set_service(&running.service, Some(running.version));
        }
    }

    fn claim(&self, name: &str, stage: &str) -> Result<Busy<'_>, ApiError> {
        let id = format!("{name}/{stage}");
        let mut busy = self.busy.lock().unwrap_or_else(|e| e.into_inner());
        if !busy.insert(id.clone()) {
            return Err(ApiError::new(
                409,
                format!("another deploy, rollback or removal of {name} (stage {stage}) is under way; try again when it has finished"),
            ));
        }
        Ok(Busy { platform: self, id })
    }

    // ---- deploy ----

    pub async fn deploy(self: &Arc<Self>, key: &Key, request: DeployRequest) -> Result<ServiceInfo, ApiError> {
        let service = request.service;
        check_name(&service.name, "service")?;
        check_name(&service.stage, "stage")?;
        validate_service(&service)?;
        if !key.allows(&service.name) {
            return Err(ApiError::new(
                403,
                format!("key {} may not deploy service {}", key.id, service.name),
            ));
        }
        self.check_package(&service, &request.files)?;
        let _busy = self.claim(&service.name, &service.stage)?;
        let existing = self
            .store
            .service(&service.name, &service.stage)
            .map_err(ApiError::internal)?;
        let _names = self.claim_names(key, &service, existing.as_ref())?;
        // Nothing changes before every table is known to be fine.
        self.reconcile_tables(&service, Phase::Check).await?;

        let number = existing.as_ref().map_or(1, |r| r.latest + 1);
        let dir = self.code_dir(&service.name, &service.stage, number);
        let version = VersionRecord {
            number,
            service: service.clone(),
            files: request.files,
            deployed_by: key.id.clone(),
            created: sylph_control::now_secs(),
        };
        // Every step before `publish` can fail without a trace in what is served.
        let started = std::time::Instant::now();
        let mut phases: Vec<(&str, std::time::Duration)> = Vec::new();
        let mut mark = |name: &'static str, since: &mut std::time::Instant| {
            phases.push((name, since.elapsed()));
            *since = std::time::Instant::now();
        };
        let result = async {
            let mut t = std::time::Instant::now();
            self.materialize(&version.files, &dir).await?;
            mark("code", &mut t);
            self.reconcile_tables(&service, Phase::Grow).await?;
            mark("tables", &mut t);
            let fresh = self.run_version(version.clone(), &dir)?;
            mark("start", &mut t);
            let warm_up = self.warm_up.load(std::sync::atomic::Ordering::Relaxed);
            if let Some(current) = self.by_service(&service.name, &service.stage).filter(|_| warm_up) {
                self.warm_up_like(&fresh, &current.route()).await;
            }
            mark("warm-up", &mut t);
            let now = sylph_control::now_secs();
            let record = match &existing {
                Some(r) => ServiceRecord {
                    active: number,
                    latest: number,
                    region: service.region.clone(),
                    updated: now,
                    ..r.clone()
                },
                None => ServiceRecord {
                    name: service.name.clone(),
                    stage: service.stage.clone(),
                    region: service.region.clone(),
                    api_id: self.new_api_id(),
                    active: number,
                    latest: number,
                    aliases: Default::default(),
                    created: now,
                    updated: now,
                },
            };
            let running = self.assemble(&record, Some(fresh)).await?;
            let store = self.store.clone();
            let (r, v) = (record.clone(), version.clone());
            tokio::task::spawn_blocking(move || store.publish(&r, Some(&v)))
                .await
                .map_err(ApiError::internal)?
                .map_err(ApiError::internal)?;
            mark("record", &mut t);
            Ok::<_, ApiError>((record, running))
        }
        .await;
        match result {
            Ok((record, running)) => {
                self.install(record.clone(), running);
                self.settle(&record);
                self.persist_owners(&service);
                self.shrink_tables(&service).await;
                let took: Vec<String> = phases
                    .iter()
                    .map(|(name, d)| format!("{name} {} ms", d.as_millis()))
                    .collect();
                say!(
                    "deployed {} (stage {}) version {number} in {} ms ({}), by key {}",
                    record.name,
                    record.stage,
                    started.elapsed().as_millis(),
                    took.join(", "),
                    key.id
                );
                self.info_of(&record.name, &record.stage)
                    .ok_or_else(|| ApiError::internal("the service is not running after its deploy"))
            }
            Err(e) => {
                let _ = std::fs::remove_dir_all(&dir);
                Err(e)
            }
        }
    }

    /// Have `fresh` ready to take over from `serving` without a burst of cold starts: as many
    /// pre-started runtimes per language as `serving` has instances (at most 8), started at
    /// normal priority. Waits for them at most [`WARM_UP_LIMIT`]; the switch happens either way.
    async fn warm_up_like(&self, fresh: &Running, serving: &Running) {
        let mut want: HashMap<sylph_runtime::Family, usize> = HashMap::new();
        for (f, _, reading) in serving.hosted.pool.function_metrics() {
            let Some(family) = sylph_runtime::Family::of(&f.runtime) else {
                continue;
            };
            let instances = reading.concurrent.max(0) as usize + serving.hosted.pool.idle_instances(&f.name);
            *want.entry(family).or_default() += instances;
        }
        want.retain(|_, n| *n > self.settings.prewarm);
        if want.is_empty() || self.settings.prewarm == 0 {
            return;
        }
        for (family, n) in &want {
            fresh.hosted.runtime.warm_up(*family, *n);
        }
        let deadline = tokio::time::Instant::now() + WARM_UP_LIMIT;
        while tokio::time::Instant::now() < deadline
            && want
                .iter()
                .any(|(family, n)| fresh.hosted.runtime.preloaded(*family) < (*n).min(8))
        {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    /// After a switch: the serving version's pre-started runtimes go back to the usual pool.
    fn settle(&self, record: &ServiceRecord) {
        if let Some(live) = self.by_service(&record.name, &record.stage) {
            for running in live.versions.values() {
                for family in [sylph_runtime::Family::Node, sylph_runtime::Family::Python] {
                    running.hosted.runtime.settle(family, self.settings.prewarm);
                }
            }
        }
    }

    /// Every file is named safely, uploaded, and within Lambda's size limit.
    fn check_package(&self, service: &Service, files: &[sylph_control::package::FileEntry]) -> Result<(), ApiError> {
        let mut total = 0u64;
        let mut missing = Vec::new();
        let mut seen = HashSet::new();
        for f in files {
            sylph_control::package::check_path(&f.path).map_err(|e| ApiError::bad(e.to_string()))?;
            sylph_control::blobs::check_hash(&f.hash).map_err(|e| ApiError::bad(format!("{}: {e}", f.path)))?;
            if !seen.insert(f.path.as_str()) {
                return Err(ApiError::bad(format!("{} is listed twice", f.path)));
            }
            total = total.saturating_add(f.size);
            if !self.blobs.contains(&f.hash) {
                missing.push(f.path.as_str());
            }
        }
        if total > sylph_control::package::MAX_UNZIPPED_BYTES {
            return Err(ApiError::new(
                413,
                sylph_control::package::PackageError::TooLarge { size: total }.to_string(),
            ));
        }
        if !missing.is_empty() {
            return Err(ApiError::bad(format!(
                "{} file(s) of the package were never uploaded: {}",
                missing.len(),
                missing.iter().take(5).copied().collect::<Vec<_>>().join(", ")
            )));
        }
        for f in &service.functions {
            if let Some(a) = &f.artifact {
                let a = a.to_string_lossy();
                let inside = sylph_control::package::check_path(&a).is_ok()
                    && files
                        .iter()
                        .any(|file| file.path == a || file.path.starts_with(&format!("{a}/")));
                if !inside {
                    return Err(ApiError::bad(format!(
                        "functions.{}: its artifact {a} is not a file of the package",
                        f.key
                    )));
                }
            }
        }
        Ok(())
    }

    /// Function names and tables are one namespace across the server, as in one AWS account.
    /// Function and table names are one namespace across the server, as in one AWS account:
    /// refuse names another service has or is deploying right now, and claim ours until the
    /// deploy ends.
    fn claim_names(
        &self,
        key: &Key,
        service: &Service,
        existing: Option<&ServiceRecord>,
    ) -> Result<NameClaim<'_>, ApiError> {
        self.check_event_sources(key, service)?;
        // Tables that exist but belong to no service (made through the table API): only a key
        // for every service may hand one to a service.
        let existing_tables = self.tables.table_names();
        let mut state = self.write();
        let own_api = existing.map(|r| r.api_id.as_str());
        for f in &service.functions {
            let other = match state.functions.get(&f.name) {
                Some(api) if Some(api.as_str()) != own_api => Some(
                    state
                        .services
                        .get(api)
                        .map(|l| l.record.name.clone())
                        .unwrap_or_default(),
                ),
                _ => state
                    .claimed_names
                    .get(&format!("function:{}", f.name))
                    .map(|(owner, _)| owner)
                    .filter(|owner| **owner != service.name)
                    .cloned(),
            };
            if let Some(other) = other {
                return Err(ApiError::new(
                    409,
                    format!(
                        "functions.{}: a function named {} already belongs to service {other}",
                        f.key, f.name
                    ),
                ));
            }
        }
        for t in &service.tables {
            let unowned = !state.tables.contains_key(&t.name) && existing_tables.contains(&t.name);
            state.check_claim(key, &service.name, &t.logical_id, Resource::Table, &t.name, unowned)?;
        }
        let existing_queues = self.events.get().map(|e| e.queues.list("")).unwrap_or_default();
        for q in &service.queues {
            let unowned = !state.tables.contains_key(&queue_owner_key(&q.name)) && existing_queues.contains(&q.name);
            state.check_claim(key, &service.name, &q.logical_id, Resource::Queue, &q.name, unowned)?;
        }
        let names: Vec<String> = service
            .functions
            .iter()
            .map(|f| format!("function:{}", f.name))
            .chain(service.tables.iter().map(|t| format!("table:{}", t.name)))
            .chain(service.queues.iter().map(|q| format!("queue:{}", q.name)))
            .collect();
        for n in &names {
            state
                .claimed_names
                .entry(n.clone())
                .or_insert_with(|| (service.name.clone(), 0))
                .1 += 1;
        }
        Ok(NameClaim { platform: self, names })
    }

    /// The queues and tables a service's events read or deliver to (`sqs` and `stream` events,
    /// destinations, `onError`, a queue's dead-letter queue) must be its own or ones the
    /// deploying key may use: else a deploy could read another service's table stream, drain
    /// its queue or fill it.
    fn check_event_sources(&self, key: &Key, service: &Service) -> Result<(), ApiError> {
        use sylph_model::{Destination, Event};
        let mut queues: Vec<(String, String)> = Vec::new();
        let mut tables: Vec<(String, String)> = Vec::new();
        let queue_of = |d: &Option<Destination>| match d {
            Some(Destination::Queue(q)) => Some(q.clone()),
            _ => None,
        };
        for f in &service.functions {
            let at = format!("functions.{}", f.key);
            for event in &f.events {
                match event {
                    Event::Sqs(e) => queues.push((at.clone(), e.queue.clone())),
                    Event::Stream(e) => {
                        tables.push((at.clone(), e.table.clone()));
                        queues.extend(queue_of(&e.on_failure).map(|q| (at.clone(), q)));
                    }
                    _ => {}
                }
            }
            let a = &f.on_async;
            for q in [
                queue_of(&a.on_success),
                queue_of(&a.on_failure),
                queue_of(&a.dead_letter),
            ]
            .into_iter()
            .flatten()
            {
                queues.push((at.clone(), q));
            }
        }
        for q in &service.queues {
            let target = q
                .attributes
                .get("RedrivePolicy")
                .and_then(|p| serde_json::from_str::<serde_json::Value>(p).ok())
                .and_then(|p| {
                    p["deadLetterTargetArn"]
                        .as_str()
                        .map(|a| a.rsplit(':').next().unwrap_or(a).to_owned())
                });
            queues.extend(target.map(|t| (format!("resources.Resources.{}", q.logical_id), t)));
        }
        for (at, queue) in queues {
            let own = service.queues.iter().any(|q| q.name == queue);
            if !own && !self.key_may_use_table(key, &queue_owner_key(&queue)) {
                return Err(ApiError::new(
                    403,
                    format!(
                        "{at}: queue {queue} is not this service's, and key {} may not use it",
                        key.id
                    ),
                ));
            }
        }
        for (at, table) in tables {
            let own = service.tables.iter().any(|t| t.name == table);
            if !own && !self.key_may_use_table(key, &table) {
                return Err(ApiError::new(
                    403,
                    format!(
                        "{at}: table {table} is not this service's, and key {} may not use it",
                        key.id
                    ),
                ));
            }
        }
        Ok(())
    }

    /// One step of bringing the tables in line with `service` (see [`Phase`]). Indexes are
    /// never removed from a table another stage of the service declares too.
    async fn reconcile_tables(&self, service: &Service, phase: Phase) -> Result<(), ApiError> {
        for t in &service.tables {
            if phase == Phase::Shrink
                && (self.other_stage_declares(service, &t.name) || self.versions_declaring(service, &t.name) > 1)
            {
                continue;
            }
            let outcome = self
                .tables
                .reconcile(&t.name, &t.properties, phase)
                .await
                .map_err(|e| ApiError::bad(format!("resources.Resources.{}: {}", t.logical_id, e.message)))?;
            if let sylph_tables::provision::Reconciled::Updated { added, removed } = outcome {
                say!(
                    "table {}: indexes added [{}], removed [{}]",
                    t.name,
                    added.join(", "),
                    removed.join(", ")
                );
            }
        }
        // Queues are created, or given the attributes the version declares, with the tables.
        if let (Phase::Grow, Some(events)) = (phase, self.events.get()) {
            crate::events::provision_queues(&events.queues, service)
                .await
                .map_err(|e| ApiError::bad(format!("{e:#}")))?;
        }
        Ok(())
    }

    /// How many running versions of `service`'s stage (the serving one and those its aliases
    /// name) declare `table`: an index one of them may still query is not removed.
    fn versions_declaring(&self, service: &Service, table: &str) -> usize {
        self.by_service(&service.name, &service.stage).map_or(0, |live| {
            live.versions
                .values()
                .filter(|r| r.service.tables.iter().any(|t| t.name == table))
                .count()
        })
    }

    /// Whether a running stage of `service` other than its own declares `table`.
    fn other_stage_declares(&self, service: &Service, table: &str) -> bool {
        self.read().services.values().any(|l| {
            l.record.name == service.name
                && l.record.stage != service.stage
                && l.versions
                    .values()
                    .any(|r| r.service.tables.iter().any(|t| t.name == table))
        })
    }

    /// Record that `service`'s tables belong to it, durably (kept after a removal that retains
    /// them, so that no other service can take them over).
    fn persist_owners(&self, service: &Service) {
        let queues = service.queues.iter().map(|q| queue_owner_key(&q.name));
        for name in service.tables.iter().map(|t| t.name.clone()).chain(queues) {
            if let Err(e) = self.store.set_table_owner(&name, Some(&service.name)) {
                say!("error: cannot record that {name} belongs to {}: {e}", service.name);
            }
        }
    }

    /// The last step of a switch: indexes the serving version no longer declares go.
    async fn shrink_tables(&self, service: &Service) {
        if let Err(e) = self.reconcile_tables(service, Phase::Shrink).await {
            say!(
                "error: after switching {} (stage {}): {}",
                service.name,
                service.stage,
                e.message
            );
        }
    }

    fn new_api_id(&self) -> String {
        loop {
            let id = sylph_control_random_id();
            if !self.read().services.contains_key(&id) {
                return id;
            }
        }
    }

    // ---- rollback, aliases, removal ----

    pub async fn rollback(
        self: &Arc<Self>,
        key: &Key,
        name: &str,
        stage: &str,
        to: Option<u32>,
    ) -> Result<ServiceInfo, ApiError> {
        self.check_key_for(key, name)?;
        let _busy = self.claim(name, stage)?;
        let record = self.record(name, stage)?;
        let numbers = self.store.version_numbers(name, stage).map_err(ApiError::internal)?;
        let target = match to {
            Some(n) if numbers.contains(&n) => n,
            Some(n) => {
                return Err(ApiError::new(
                    404,
                    format!("{name} (stage {stage}) has no version {n}; it has {numbers:?}"),
                ))
            }
            None => *numbers.iter().rev().find(|n| **n < record.active).ok_or_else(|| {
                ApiError::bad(format!(
                    "{name} (stage {stage}) has no version before {}",
                    record.active
                ))
            })?,
        };
        if target == record.active {
            if let Some(info) = self.info_of(name, stage) {
                return Ok(info);
            }
        }
        let version = self
            .store
            .version(name, stage, target)
            .map_err(ApiError::internal)?
            .ok_or_else(|| ApiError::new(404, format!("{name} (stage {stage}) has no version {target}")))?;
        // An older version may name functions or tables another service has taken since.
        let _names = self.claim_names(key, &version.service, Some(&record))?;
        self.reconcile_tables(&version.service, Phase::Check).await?;
        self.reconcile_tables(&version.service, Phase::Grow).await?;
        let mut new_record = ServiceRecord {
            active: target,
            updated: sylph_control::now_secs(),
            ..record
        };
        // A rollback is for everyone: the `live` alias (if any) goes back with it, whole.
        if let Some(live) = new_record.aliases.get_mut(LIVE_ALIAS) {
            *live = Alias {
                version: target,
                additional: None,
            };
        }
        let running = self.assemble(&new_record, None).await?;
        let warm_up = self.warm_up.load(std::sync::atomic::Ordering::Relaxed);
        if let (Some(current), Some(target), true) = (self.by_service(name, stage), running.get(&target), warm_up) {
            self.warm_up_like(target, &current.route()).await;
        }
        self.store.publish(&new_record, None).map_err(ApiError::internal)?;
        let settled = new_record.clone();
        self.install(new_record, running);
        self.settle(&settled);
        self.persist_owners(&version.service);
        self.shrink_tables(&version.service).await;
        self.info_of(name, stage)
            .ok_or_else(|| ApiError::internal("the service is not running after its rollback"))
    }

    pub async fn set_alias(
        self: &Arc<Self>,
        key: &Key,
        name: &str,
        stage: &str,
        alias: &str,
        value: Alias,
    ) -> Result<ServiceInfo, ApiError> {
        self.check_key_for(key, name)?;
        check_name(alias, "alias")?;
        if !alias.as_bytes()[0].is_ascii_alphabetic() {
            return Err(ApiError::bad(format!(
                "alias {alias:?} must start with a letter (a number names a version)"
            )));
        }
        let _busy = self.claim(name, stage)?;
        let mut record = self.record(name, stage)?;
        let numbers = self.store.version_numbers(name, stage).map_err(ApiError::internal)?;
        let mut claims = Vec::new();
        let mut services = Vec::new();
        for v in std::iter::once(value.version).chain(value.additional.map(|(v, _)| v)) {
            if let Some(version) = self.store.version(name, stage, v).map_err(ApiError::internal)? {
                claims.push(self.claim_names(key, &version.service, Some(&record))?);
                services.push(version.service);
            }
        }
        // The tables an older version needs (an index since removed comes back).
        for service in &services {
            self.reconcile_tables(service, Phase::Check).await?;
        }
        for service in &services {
            self.reconcile_tables(service, Phase::Grow).await?;
        }
        for v in std::iter::once(value.version).chain(value.additional.map(|(v, _)| v)) {
            if !numbers.contains(&v) {
                return Err(ApiError::new(404, format!("{name} (stage {stage}) has no version {v}")));
            }
        }
        if let Some((_, w)) = value.additional {
            if !(w > 0.0 && w < 1.0) {
                return Err(ApiError::bad(format!(
                    "a weight must be between 0 and 1 (exclusive), not {w}"
                )));
            }
        }
        if !record.aliases.contains_key(alias) && record.aliases.len() >= MAX_ALIASES {
            return Err(ApiError::bad(format!(
                "{name} (stage {stage}) has {MAX_ALIASES} aliases, the most a service may have (each keeps its versions running); point one of them elsewhere"
            )));
        }
        record.aliases.insert(alias.to_owned(), value);
        record.updated = sylph_control::now_secs();
        let running = self.assemble(&record, None).await?;
        let store = self.store.clone();
        let kept = record.clone();
        tokio::task::spawn_blocking(move || store.publish(&kept, None))
            .await
            .map_err(ApiError::internal)?
            .map_err(ApiError::internal)?;
        self.install(record, running);
        for service in &services {
            self.persist_owners(service);
        }
        drop(claims);
        self.info_of(name, stage)
            .ok_or_else(|| ApiError::internal("the service is not running after the alias change"))
    }

    pub async fn remove(&self, key: &Key, name: &str, stage: &str) -> Result<Vec<String>, ApiError> {
        self.check_key_for(key, name)?;
        let _busy = self.claim(name, stage)?;
        let record = self.record(name, stage)?;
        let live = self.by_service(name, stage);
        self.store.remove_service(name, stage).map_err(ApiError::internal)?;
        let mut said = Vec::new();
        {
            let mut state = self.write();
            state.services.remove(&record.api_id);
            state.functions.retain(|_, a| a != &record.api_id);
        }
        if let Some(events) = self.events.get() {
            // The queues stay, with their messages and owner, like retained tables.
            events.scheduler.remove_service(name, stage);
            events.sqs.remove_service(name, stage);
            events.streams.remove_service(name, stage);
        }
        if let Some(live) = live {
            for running in live.versions.values() {
                for f in &running.service.functions {
                    let key = telemetry_key(name, stage, &f.name);
                    self.logs.remove(&key);
                    self.history.forget(&key);
                }
            }
            let active = live.active();
            for t in &active.service.tables {
                let retain = active
                    .service
                    .resources
                    .pointer(&format!("/Resources/{}/DeletionPolicy", t.logical_id))
                    .and_then(serde_json::Value::as_str)
                    == Some("Retain");
                if self.other_stage_declares(&active.service, &t.name) {
                    said.push(format!("table {} kept (another stage of {name} declares it)", t.name));
                } else if retain {
                    // Still the service's: deploying it again takes it back, nobody else can.
                    said.push(format!("table {} kept (DeletionPolicy: Retain)", t.name));
                } else {
                    self.write().tables.remove(&t.name);
                    if let Err(e) = self.store.set_table_owner(&t.name, None) {
                        say!("error: cannot forget the owner of table {}: {e}", t.name);
                    }
                    let body = serde_json::json!({"TableName": t.name}).to_string();
                    let (status, _) = self.tables.handle("DeleteTable", body.as_bytes()).await;
                    said.push(if status == 200 {
                        format!("table {} deleted", t.name)
                    } else {
                        format!("table {} could not be deleted", t.name)
                    });
                }
            }
        }
        let _ = std::fs::remove_dir_all(self.data.join("code").join(name).join(stage));
        said.push(format!("service {name} (stage {stage}) removed"));
        Ok(said)
    }

    fn check_key_for(&self, key: &Key, name: &str) -> Result<(), ApiError> {
        if key.allows(name) {
            Ok(())
        } else {
            Err(ApiError::new(
                403,
                format!("key {} may not manage service {name}", key.id),
            ))
        }
    }

    fn record(&self, name: &str, stage: &str) -> Result<ServiceRecord, ApiError> {
        self.store
            .service(name, stage)
            .map_err(ApiError::internal)?
            .ok_or_else(|| ApiError::new(404, format!("service {name} (stage {stage}) is not deployed")))
    }

    // ---- info ----

    pub fn info(&self, key: &Key, name: &str, stage: &str) -> Result<ServiceInfo, ApiError> {
        self.check_key_for(key, name)?;
        self.info_of(name, stage)
            .ok_or_else(|| ApiError::new(404, format!("service {name} (stage {stage}) is not deployed")))
    }

    fn info_of(&self, name: &str, stage: &str) -> Option<ServiceInfo> {
        let live = self.by_service(name, stage)?;
        let record = &live.record;
        let active = live.active();
        let service = &active.service;
        let versions = self.store.version_numbers(name, stage).unwrap_or_default();
        let path_base = format!("{}/apis/{}", self.public_url, record.api_id);
        let host_base = self.host_url(&record.api_id);
        let routes = active
            .hosted
            .gateway
            .router()
            .routes()
            .iter()
            .map(|r| RouteInfo {
                method: r.method.clone().unwrap_or_else(|| "ANY".to_owned()),
                url: match r.api {
                    sylph_model::ApiKind::Rest => format!("{path_base}/{}{}", service.stage, r.resource),
                    sylph_model::ApiKind::Http => format!("{path_base}{}", r.resource),
                },
                function: service
                    .functions
                    .iter()
                    .find(|f| f.name == r.function)
                    .map_or_else(String::new, |f| f.key.clone()),
            })
            .collect();
        Some(ServiceInfo {
            name: record.name.clone(),
            stage: record.stage.clone(),
            region: record.region.clone(),
            api_id: record.api_id.clone(),
            version: active.version,
            versions,
            updated: record.updated,
            endpoints: vec![host_base, path_base],
            routes,
            functions: service
                .functions
                .iter()
                .map(|f| FunctionInfo {
                    key: f.key.clone(),
                    name: f.name.clone(),
                    runtime: f.runtime.id().to_owned(),
                    memory_mb: f.memory_mb,
                    timeout_secs: f.timeout.as_secs(),
                    version: active.version,
                })
                .collect(),
            tables: service.tables.iter().map(|t| t.name.clone()).collect(),
            aliases: record
                .aliases
                .iter()
                .map(|(n, a)| AliasInfo {
                    name: n.clone(),
                    version: a.version,
                    additional: a.additional,
                })
                .collect(),
        })
    }

    /// `http://{api_id}.{domain}:{port}`.
    pub fn host_url(&self, api_id: &str) -> String {
        let (scheme, rest) = self.public_url.split_once("://").unwrap_or(("http", &self.public_url));
        let port = rest.rsplit_once(':').map(|(_, p)| p).unwrap_or("");
        if port.is_empty() {
            format!("{scheme}://{api_id}.{}", self.domain)
        } else {
            format!("{scheme}://{api_id}.{}:{port}", self.domain)
        }
    }

    pub fn services_for(&self, key: &Key) -> Vec<ServiceInfo> {
        self.all_live()
            .iter()
            .filter(|l| key.allows(&l.record.name))
            .filter_map(|l| self.info_of(&l.record.name, &l.record.stage))
            .collect()
    }
}

/// Point the service at its code folder on this server.
fn place_code(service: &mut Service, dir: &Path) {
    service.root = dir.to_owned();
    for f in &mut service.functions {
        if let Some(a) = &f.artifact {
            f.artifact = Some(dir.join(a));
        }
        for layer in &mut f.layers {
            *layer = dir.join(&*layer);
        }
    }
}

/// What the server accepts in a deployed service, whatever the client sent: the manifest is
/// resolved on the developer's machine, so a hand-made request must not get past the limits
/// `serverless.yml` would have been held to (Lambda's, where it has them).
fn validate_service(service: &Service) -> Result<(), ApiError> {
    const MAX_FUNCTIONS: usize = 100;
    const MAX_TABLES: usize = 50;
    let region_ok = !service.region.is_empty()
        && service.region.len() <= 32
        && service
            .region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if !region_ok {
        return Err(ApiError::bad(format!(
            "region {:?} is not a region name (lower-case letters, digits and `-`)",
            service.region.chars().take(40).collect::<String>()
        )));
    }
    if service.functions.is_empty() {
        return Err(ApiError::bad("the service declares no functions"));
    }
    if service.functions.len() > MAX_FUNCTIONS {
        return Err(ApiError::bad(format!(
            "the service declares {} functions; a deploy takes at most {MAX_FUNCTIONS}",
            service.functions.len()
        )));
    }
    if service.tables.len() > MAX_TABLES {
        return Err(ApiError::bad(format!("at most {MAX_TABLES} tables per service")));
    }
    let mut names = HashSet::new();
    for f in &service.functions {
        let at = |what: String| {
            ApiError::bad(format!(
                "functions.{}: {what}",
                f.key.chars().take(64).collect::<String>()
            ))
        };
        check_name(&f.key, "function key")?;
        // Lambda's function names: letters, digits, `-` and `_`, at most 64.
        let valid_name = !f.name.is_empty()
            && f.name.len() <= 64
            && f.name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !valid_name {
            return Err(at(format!(
                "the function name {:?} is not one Lambda allows (1 to 64 letters, digits, `-` or `_`)",
                f.name.chars().take(80).collect::<String>()
            )));
        }
        if !names.insert(f.name.as_str()) {
            return Err(at(format!("the function name {} is used twice", f.name)));
        }
        if !(128..=10_240).contains(&f.memory_mb) {
            return Err(at(format!(
                "memorySize {} is outside Lambda's 128 to 10240 MB",
                f.memory_mb
            )));
        }
        if !(512..=10_240).contains(&f.ephemeral_mb) {
            return Err(at(format!(
                "ephemeralStorageSize {} is outside Lambda's 512 to 10240 MB",
                f.ephemeral_mb
            )));
        }
        if f.timeout.is_zero() || f.timeout > std::time::Duration::from_secs(900) {
            return Err(at("timeout must be 1 to 900 seconds".to_owned()));
        }
        if f.reserved_concurrency.is_some_and(|n| n > 10_000) {
            return Err(at("reservedConcurrency is over 10000".to_owned()));
        }
        if f.handler.is_empty() || f.handler.len() > 256 || f.handler.contains('\0') {
            return Err(at("the handler must be 1 to 256 characters".to_owned()));
        }
        // Code paths are joined to the version's own folder: an absolute path or `..` would
        // hand a function (its bootstrap, or a layer at /opt) any file of the host.
        let inside = |p: &Path| {
            p.is_relative()
                && p.components()
                    .all(|c| matches!(c, std::path::Component::Normal(_) | std::path::Component::CurDir))
        };
        if f.artifact.as_deref().is_some_and(|a| !inside(a)) {
            return Err(at("its artifact must be a path inside the service's code".to_owned()));
        }
        if f.layers.iter().any(|l| !inside(l)) {
            return Err(at("its layers must be folders inside the service's code".to_owned()));
        }
        // A WebAssembly function's handler is its component's path when it has no artifact.
        if matches!(f.runtime, sylph_model::Runtime::Wasm(_)) && f.artifact.is_none() && !inside(Path::new(&f.handler))
        {
            return Err(at(
                "its handler (the component) must be a path inside the service's code".to_owned(),
            ));
        }
        let env: usize = f.environment.iter().map(|(k, v)| k.len() + v.len()).sum();
        if env > 4096 {
            return Err(at(format!("its environment is {env} bytes; Lambda's limit is 4 KB")));
        }
        for event in &f.events {
            if let sylph_model::Event::Http(route) = event {
                let path_ok = route.path.starts_with('/')
                    && route.path.len() <= 1024
                    && route.path.bytes().all(|b| b.is_ascii_graphic());
                let method_ok = route
                    .method
                    .as_deref()
                    .is_none_or(|m| ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"].contains(&m));
                if !path_ok || !method_ok {
                    return Err(at(format!(
                        "the route {:?} {:?} is not valid",
                        route.method,
                        route.path.chars().take(80).collect::<String>()
                    )));
                }
            }
        }
    }
    for t in &service.tables {
        sylph_tables::catalog::validate_table_name(&t.name, "TableName")
            .map_err(|e| ApiError::bad(format!("resources.Resources.{}: {}", t.logical_id, e.message)))?;
    }
    Ok(())
}

/// Names that become paths and URLs: letters, digits and `-`, starting with a letter or digit.
fn check_name(name: &str, what: &str) -> Result<(), ApiError> {
    let ok = !name.is_empty()
        && name.len() <= 128
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        && name.as_bytes()[0].is_ascii_alphanumeric();
    if ok {
        Ok(())
    } else {
        Err(ApiError::bad(format!(
            "{what} name {:?} is not valid: use 1 to 128 letters, digits, `-` or `_`, starting with a letter or digit",
            name.chars().take(140).collect::<String>()
        )))
    }
}

/// Ten lower-case letters and digits, like an API Gateway id.
fn sylph_control_random_id() -> String {
    let mut bytes = [0u8; 10];
    sylph_telemetry::fill_random(&mut bytes);
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    bytes
        .iter()
        .map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char)
        .collect()
}

/// Aliases a service may have: each keeps the versions it names running.
const MAX_ALIASES: usize = 10;
/// The longest a deploy waits for the new version's runtimes to be ready before switching.
const WARM_UP_LIMIT: std::time::Duration = std::time::Duration::from_secs(10);

/// How many metric samples are kept per function (every [`SAMPLE_EVERY`]: six hours).
const HISTORY_SAMPLES: usize = 6 * 360;
/// How often every function's counters are sampled for `sylph metrics`.
pub const SAMPLE_EVERY: std::time::Duration = std::time::Duration::from_secs(10);

/// Log lines of one service's functions: stored under the function's deployed name (keys
/// repeat across services), and printed too unless the server is quiet.
/// Where a function's logs and metrics history are kept: by service, stage and function,
/// never by the function's name alone, which another service may take once it is free (and
/// would then read what the first one logged). `.` appears in none of the three names.
pub fn telemetry_key(service: &str, stage: &str, function: &str) -> String {
    format!("{service}.{stage}.{function}")
}

struct ServiceLogs {
    /// Function key → (where its logs go, the name printed).
    names: HashMap<String, (String, String)>,
    store: Arc<dyn sylph_telemetry::logstore::LogStore>,
    echo: Option<sylph_telemetry::TerminalSink>,
}

impl sylph_telemetry::LogSink for ServiceLogs {
    fn line(&self, function: &str, request_id: Option<&str>, text: &str) {
        let Some((stored, shown)) = self.names.get(function) else {
            return;
        };
        self.store.append(stored, request_id, text);
        if let Some(echo) = &self.echo {
            echo.line(shown, request_id, text);
        }
    }
}

impl Platform {
    /// Record every serving function's counters (see [`SAMPLE_EVERY`]).
    pub fn sample_metrics(&self) {
        let now = sylph_telemetry::unix_ms();
        for live in self.all_live() {
            for (f, pool, reading) in live.active().hosted.pool.function_metrics() {
                let key = telemetry_key(&live.record.name, &live.record.stage, &f.name);
                self.history.record(&key, pool, reading, now);
            }
        }
    }
}

/// The key a queue's owner is kept under, in the map tables' owners share.
pub fn queue_owner_key(queue: &str) -> String {
    format!("{}{queue}", sylph_gateway::QUEUE_OWNER_PREFIX)
}

/// The event sources of the server: one durable queue and one scheduler for every service.
pub struct Events {
    pub queue: Arc<sylph_events::queue::AsyncQueue>,
    pub scheduler: Arc<sylph_events::schedules::Scheduler>,
    /// Every service's queues (one namespace, as an AWS account's), and their pollers.
    pub queues: sylph_queues::Queues,
    pub sqs: Arc<sylph_events::sqs::SqsSources>,
    pub streams: Arc<sylph_events::streams::StreamSources>,
}

/// How the event sources find a deployed function: the version that accepted the event while
/// it runs, else where the service's traffic goes.
struct DeployedFunctions(std::sync::Weak<Platform>);

impl sylph_events::Functions for DeployedFunctions {
    fn find(&self, target: &sylph_events::Target) -> sylph_events::Lookup {
        use sylph_events::Lookup;
        let Some(platform) = self.0.upgrade() else {
            return Lookup::Later;
        };
        let Some(live) = platform.by_service(&target.service, &target.stage) else {
            return match platform.store.service(&target.service, &target.stage) {
                // Deployed, but not running (it failed to load): kept for later.
                Ok(Some(_)) | Err(_) => Lookup::Later,
                Ok(None) => Lookup::Gone,
            };
        };
        let running = target
            .version
            .and_then(|v| live.versions.get(&v).cloned())
            .unwrap_or_else(|| live.route());
        Lookup::Found(running.hosted.pool.clone())
    }
}

impl Platform {
    /// Open the event store in the data folder and start the event sources (before any
    /// service loads, so that every gateway gets the queue).
    pub fn start_events(self: &Arc<Self>, args: &crate::events::EventArgs) -> anyhow::Result<()> {
        let queue = crate::events::open_queue(
            &self.data.join("events.redb"),
            Arc::new(DeployedFunctions(Arc::downgrade(self))),
            args,
            "us-east-1",
            self.settings.concurrency,
        )?;
        let scheduler = sylph_events::schedules::Scheduler::new(queue.clone());
        tokio::spawn(scheduler.clone().run());
        let dir = self.data.join("queues");
        let queues = sylph_queues::Queues::open(&dir, "us-east-1")
            .map_err(|e| anyhow::anyhow!("cannot open the queue store in {}: {e}", dir.display()))?;
        queue.set_queues(queues.clone());
        let sqs = sylph_events::sqs::SqsSources::new(
            queues.clone(),
            Arc::new(DeployedFunctions(Arc::downgrade(self))),
            self.settings.concurrency,
        );
        let streams = sylph_events::streams::StreamSources::new(
            self.tables.clone(),
            Arc::new(DeployedFunctions(Arc::downgrade(self))),
            queue.store().clone(),
            Some(queues.clone()),
        );
        let _ = self.events.set(Events {
            queue,
            scheduler,
            queues,
            sqs,
            streams,
        });
        Ok(())
    }

    pub fn events(&self) -> Option<&Events> {
        self.events.get()
    }
}

/// What a service's functions may see: their own service's tables, and those of services the
/// key that deployed them may use.
struct DeployerTables {
    service: String,
    deployed_by: String,
    platform: std::sync::Weak<Platform>,
}

impl sylph_gateway::TableGuard for DeployerTables {
    fn check(&self, table: &str) -> Result<(), String> {
        let Some(platform) = self.platform.upgrade() else {
            return Err("the server is stopping".to_owned());
        };
        // Its own service's table, the common case: one read lock, nothing copied.
        if platform
            .read()
            .tables
            .get(table)
            .is_some_and(|owner| *owner == self.service)
        {
            return Ok(());
        }
        let deployer = platform.read().keys.get(&self.deployed_by).cloned();
        match deployer {
            Some(key) if platform.key_may_use_table(&key, table) => Ok(()),
            _ => Err(format!(
                "{} does not belong to service {} (and the key that deployed it may not use it)",
                match table.strip_prefix(sylph_gateway::QUEUE_OWNER_PREFIX) {
                    Some(queue) => format!("queue {queue}"),
                    None => format!("table {table}"),
                },
                self.service
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn platform(dir: &Path) -> Arc<Platform> {
        let _ = std::fs::remove_dir_all(dir);
        std::fs::create_dir_all(dir).unwrap();
        let store = sylph_control::store::RedbStore::open(&dir.join("control.redb")).unwrap();
        let blobs = sylph_control::blobs::FsBlobs::open(&dir.join("blobs"), &dir.join("uploads")).unwrap();
        let master = MasterKey::load_or_create(&dir.join("master.key")).unwrap();
        let tables = sylph_tables::Tables::open(&dir.join("tables"), "us-east-1").unwrap();
        let logs = sylph_telemetry::logstore::FileLogs::open(&dir.join("logs"), 1 << 20).unwrap();
        let settings = HostSettings {
            keep_warm: std::time::Duration::from_secs(1),
            concurrency: 2,
            queue_timeout: std::time::Duration::from_secs(1),
            prewarm: 0,
            unsandboxed: true,
            host_network: false,
            no_iam: false,
            strict_iam: false,
            port: 1,
            host_url: "http://127.0.0.1:1".into(),
            version: None,
        };
        Platform::new(
            dir.to_owned(),
            Arc::new(store),
            Arc::new(blobs),
            master,
            tables,
            settings,
            Arc::new(logs),
            false,
            "localhost".into(),
            "http://127.0.0.1:1".into(),
        )
        .unwrap()
    }

    #[test]
    fn a_second_operation_on_a_service_is_refused_while_one_runs() {
        let p = platform(&std::env::temp_dir().join(format!("sylph-claim-{}", std::process::id())));
        let first = p.claim("todo", "dev").unwrap();
        let second = p.claim("todo", "dev").err().expect("refused while the first runs");
        assert_eq!(second.status, 409);
        assert!(second.message.contains("under way"), "{}", second.message);
        // Another stage, or another service, is independent.
        assert!(p.claim("todo", "prod").is_ok());
        assert!(p.claim("shop", "dev").is_ok());
        drop(first);
        assert!(p.claim("todo", "dev").is_ok());
    }

    /// A service with one function named `function` and one table named `table`.
    fn service(name: &str, function: &str, table: &str) -> Service {
        serde_json::from_value(serde_json::json!({
            "name": name, "stage": "dev", "region": "us-east-1", "root": "/nowhere",
            "functions": [{
                "key": "f", "name": function, "handler": "h.f", "runtime": {"Node": "nodejs20.x"},
                "memory_mb": 128, "ephemeral_mb": 512, "timeout": {"secs": 3, "nanos": 0},
                "environment": {}, "reserved_concurrency": null, "events": [], "artifact": null, "role": null
            }],
            "http_api_cors": null, "resources": null, "custom": null, "package_patterns": [],
            "tables": [{"logical_id": "T", "name": table, "properties": {}}]
        }))
        .unwrap()
    }

    #[test]
    fn two_services_deployed_at_once_cannot_both_take_a_name() {
        let p = platform(&std::env::temp_dir().join(format!("sylph-names-{}", std::process::id())));
        let all_key = Key::new("ops", sylph_control::keys::Scope::All, false);
        let alpha = p
            .claim_names(&all_key, &service("alpha", "shared-fn", "alpha-items"), None)
            .unwrap();
        let err = p
            .claim_names(&all_key, &service("beta", "shared-fn", "beta-items"), None)
            .err()
            .expect("the function name is being taken");
        assert_eq!(err.status, 409);
        assert!(err.message.contains("belongs to service alpha"), "{}", err.message);
        let err = p
            .claim_names(&all_key, &service("beta", "beta-fn", "alpha-items"), None)
            .err()
            .expect("the table name is being taken");
        assert!(err.message.contains("table alpha-items"), "{}", err.message);
        // The same service deploying again (another stage) is not refused by itself, and the
        // names stay claimed until both its deploys end.
        let alpha_prod = p
            .claim_names(&all_key, &service("alpha", "shared-fn", "alpha-items"), None)
            .unwrap();
        drop(alpha);
        assert!(p
            .claim_names(&all_key, &service("beta", "shared-fn", "alpha-items"), None)
            .is_err());
        drop(alpha_prod);
        assert!(p
            .claim_names(&all_key, &service("beta", "shared-fn", "alpha-items"), None)
            .is_ok());
    }

    #[test]
    fn the_server_refuses_a_hand_made_service_past_the_manifest_limits() {
        assert!(validate_service(&service("ok", "ok-dev-f", "ok-items")).is_ok());
        let broken: [(&str, fn(&mut Service)); 11] = [
            ("region", |s| s.region = "x:table/mine/".into()),
            ("function name", |s| s.functions[0].name = "victim-dev-f.1".into()),
            ("memorySize", |s| s.functions[0].memory_mb = u32::MAX),
            ("ephemeralStorageSize", |s| s.functions[0].ephemeral_mb = 100),
            ("timeout", |s| {
                s.functions[0].timeout = std::time::Duration::from_secs(u64::MAX)
            }),
            ("TableName", |s| s.tables[0].name = "a/b".into()),
            // Host folders mounted into a function: its bootstrap, or a layer at /opt.
            ("artifact", |s| s.functions[0].artifact = Some("/usr/bin/env".into())),
            ("layer", |s| s.functions[0].layers = vec!["/root".into()]),
            ("layer", |s| {
                s.functions[0].layers = vec!["layers/../../../../etc".into()]
            }),
            // Another tenant's component, by path.
            ("component", |s| {
                s.functions[0].runtime = sylph_model::Runtime::Wasm("wasi-http".into());
                s.functions[0].handler = "/srv/other/app.wasm".into();
            }),
            ("component", |s| {
                s.functions[0].runtime = sylph_model::Runtime::Wasm("wasi-http".into());
                s.functions[0].handler = "../other/app.wasm".into();
            }),
        ];
        for (what, breaks) in broken {
            let mut s = service("ok", "ok-dev-f", "ok-items");
            breaks(&mut s);
            let err = validate_service(&s)
                .err()
                .unwrap_or_else(|| panic!("{what} was accepted"));
            assert_eq!(err.status, 400, "{what}");
        }
    }

    #[test]
    fn keys_verify_only_with_their_secret_and_stop_when_revoked() {
        let p = platform(&std::env::temp_dir().join(format!("sylph-keys-{}", std::process::id())));
        let (admin_id, admin_secret) = p.ensure_admin_key().unwrap().expect("made on first start");
        assert!(p.ensure_admin_key().unwrap().is_none(), "only once");
        let admin = p.key_for_token(&format!("{admin_id}:{admin_secret}")).expect("valid");
        assert!(p.key_for_token(&format!("{admin_id}:{}", "x".repeat(40))).is_none());
        let (team, secret) = p.create_key("team", vec!["todo".into()], false).unwrap();
        assert!(p.key_for_token(&format!("{}:{secret}", team.id)).is_some());
        assert!(p.revoke_key(&admin.id, &admin).is_err(), "a key cannot revoke itself");
        p.revoke_key(&team.id, &admin).unwrap();
        assert!(p.key_for_token(&format!("{}:{secret}", team.id)).is_none());
        assert!(p.key_for_signature(&team.id).is_none());
    }
}
